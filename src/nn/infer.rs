//! Tiled inference over an image of any size: overlapping chips in batches, softmax
//! probabilities blended with weights that fall off toward each chip's edges (so seams get
//! the chips that see them best), then the most likely class per pixel.

use super::config::RunConfig;
use super::data::Normalisation;
use super::model::{probabilities, UNet};
use super::train::{inference_model, RunRecord, TrainError};
use crate::progress::Progress;
use crate::raster::rows::ImageRows;
use crate::raster::tile::{chip_count, tile_rows, Chip, Edge, TileSpec};
use crate::raster::Image;
use candle_core::{Device, Tensor};
use std::path::Path;

/// A trained run ready to predict.
pub struct Predictor {
    model: UNet,
    pub config: RunConfig,
    pub normalisation: Normalisation,
    device: Device,
}

#[derive(Debug, Clone, Copy)]
pub struct InferOptions {
    /// Chip side (a multiple of 32); the run's training tile by default.
    pub tile: Option<u32>,
    /// Pixels neighbouring chips share.
    pub overlap: u32,
    pub batch: usize,
    /// Test-time augmentation: average the probabilities of each chip as given, flipped left
    /// to right, top to bottom and both (each flipped back): four passes, smoother masks.
    pub flips: bool,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            tile: None,
            overlap: 32,
            batch: 8,
            flips: false,
        }
    }
}

pub struct Prediction {
    pub width: u32,
    pub height: u32,
    pub classes: usize,
    /// Class per pixel, row by row.
    pub mask: Vec<u8>,
    /// Blended probabilities, class-major (C, H, W).
    pub probabilities: Vec<f32>,
}

impl Predictor {
    /// The run's best weights (`best.safetensors`) with its configuration.
    pub fn load(run_dir: &Path, device: Device) -> Result<Self, TrainError> {
        let record = RunRecord::read(run_dir)?;
        let path = run_dir.join("best.safetensors");
        let (tensors, _) = super::checkpoint::load(&path, &device)?;
        let model = inference_model(&record.config, tensors, &device)?;
        Ok(Predictor {
            model,
            config: record.config,
            normalisation: record.normalisation,
            device,
        })
    }

    pub fn from_parts(
        model: UNet,
        config: RunConfig,
        normalisation: Normalisation,
        device: Device,
    ) -> Self {
        Predictor {
            model,
            config,
            normalisation,
            device,
        }
    }

    /// Class logits of one batch of normalised chips (N, C, S, S).
    pub fn logits(&self, images: &Tensor) -> Result<Tensor, TrainError> {
        Ok(self.model.forward(images, false, false)?)
    }

    /// Class probabilities of one batch (N, C, S, S), averaged over the flips when asked.
    pub fn probabilities(&self, images: &Tensor, flips: bool) -> Result<Tensor, TrainError> {
        if !flips {
            return Ok(probabilities(&self.logits(images)?)?);
        }
        let mut sum = probabilities(&self.logits(images)?)?;
        for dims in [&[3][..], &[2], &[2, 3]] {
            let flipped = probabilities(&self.logits(&images.flip(dims)?)?)?;
            sum = (sum + flipped.flip(dims)?)?;
        }
        Ok((sum / 4.0)?)
    }

    pub fn predict(
        &self,
        image: &Image,
        options: &InferOptions,
        progress: &dyn Progress,
    ) -> Result<Prediction, TrainError> {
        let tile = options.tile.unwrap_or(self.config.train.tile);
        if tile == 0 || !tile.is_multiple_of(32) {
            return Err(TrainError::Invalid(format!(
                "tile {tile}: a positive multiple of 32"
            )));
        }
        if options.overlap >= tile {
            return Err(TrainError::Invalid(format!(
                "overlap {} must be smaller than the tile {tile}",
                options.overlap
            )));
        }
        let classes = self.config.model.classes;
        let (width, height) = (image.width as usize, image.height as usize);
        let scale = image.depth.max();
        // Chips past a small image's edge are filled with the mean, which normalises to 0.
        let spec = TileSpec {
            size: tile,
            stride: tile - options.overlap,
            edge: if image.width < tile || image.height < tile {
                Edge::Pad(self.normalisation.mean * scale)
            } else {
                Edge::ShiftInward
            },
            skip_no_data: None,
        };
        let window = blend_window(tile as usize, options.overlap as usize);
        let mut scores = vec![0f32; classes * width * height];
        let mut weights = vec![0f32; width * height];
        progress.start(
            "inference",
            chip_count(image.width, image.height, &spec) as u64,
        );
        let mut pending: Vec<Chip> = Vec::new();
        let mut run_batch = |chips: &mut Vec<Chip>| -> Result<(), TrainError> {
            if chips.is_empty() {
                return Ok(());
            }
            let input = self.chips_tensor(chips, tile as usize, scale)?;
            let probs = self
                .probabilities(&input, options.flips)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let s = tile as usize;
            for (i, chip) in chips.iter().enumerate() {
                let (x0, y0) = (chip.x as usize, chip.y as usize);
                for r in 0..s.min(height.saturating_sub(y0)) {
                    for c in 0..s.min(width.saturating_sub(x0)) {
                        let w = window[r] * window[c];
                        let at = (y0 + r) * width + x0 + c;
                        weights[at] += w;
                        for k in 0..classes {
                            scores[k * width * height + at] +=
                                w * probs[((i * classes + k) * s + r) * s + c];
                        }
                    }
                }
            }
            progress.advance(chips.len() as u64);
            chips.clear();
            Ok(())
        };
        tile_rows(
            &mut ImageRows::new(image),
            &spec,
            |chip| -> Result<(), TrainError> {
                pending.push(chip);
                if pending.len() >= options.batch.max(1) {
                    run_batch(&mut pending)?;
                }
                Ok(())
            },
        )?;
        run_batch(&mut pending)?;
        progress.finish();
        let plane = width * height;
        for (at, &w) in weights.iter().enumerate() {
            for k in 0..classes {
                scores[k * plane + at] /= w.max(f32::MIN_POSITIVE);
            }
        }
        let mask = (0..plane)
            .map(|at| {
                (0..classes)
                    .max_by(|&a, &b| {
                        scores[a * plane + at]
                            .total_cmp(&scores[b * plane + at])
                            .then(b.cmp(&a))
                    })
                    .unwrap_or(0) as u8
            })
            .collect();
        Ok(Prediction {
            width: image.width,
            height: image.height,
            classes,
            mask,
            probabilities: scores,
        })
    }

    fn chips_tensor(&self, chips: &[Chip], size: usize, scale: f32) -> Result<Tensor, TrainError> {
        let channels = self.config.model.in_channels;
        let plane = size * size;
        let norm = self.normalisation;
        let mut data = vec![0f32; chips.len() * channels * plane];
        for (i, chip) in chips.iter().enumerate() {
            let bands = chip.image.bands as usize;
            for p in 0..plane {
                for c in 0..channels {
                    let v = chip.image.data[p * bands + c.min(bands - 1)] / scale;
                    data[(i * channels + c) * plane + p] = (v - norm.mean) / norm.std;
                }
            }
        }
        Ok(Tensor::from_vec(
            data,
            (chips.len(), channels, size, size),
            &self.device,
        )?)
    }
}

/// Per-axis blending weights: 1 in the middle, falling linearly over `overlap / 2` pixels at
/// each edge (never 0, so an image border covered by one chip keeps its prediction).
pub fn blend_window(size: usize, overlap: usize) -> Vec<f32> {
    let ramp = (overlap / 2).max(1) as f32;
    (0..size)
        .map(|i| {
            let from_edge = i.min(size - 1 - i) as f32 + 1.0;
            (from_edge / ramp).min(1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blend_window_ramps_over_half_the_overlap() {
        assert_eq!(
            blend_window(8, 4),
            vec![0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
        );
        assert_eq!(blend_window(4, 0), vec![1.0; 4]);
    }
}
