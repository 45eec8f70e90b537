//! Tiled inference over an image of any size, for every family: overlapping chips in
//! batches; a segmentation's softmax probabilities blended with weights that fall off toward
//! each chip's edges (so seams get the chips that see them best), then the most likely class
//! per pixel; a detector's boxes moved into the image and merged across chip seams, so an
//! object on a seam is found once.

use super::config::{KeptWeights, ModelConfig, RunConfig};
use super::data::Normalisation;
use super::models::boxes::{merge_chips, ChipDetection};
use super::models::{ChipPrediction, Detection, Family};
use super::run::{RunRecord, TrainError};
use super::train::inference_model;
use crate::progress::Progress;
use crate::raster::rows::{ImageRows, RowSource};
use crate::raster::tile::{chip_count, tile_rows, Chip, Edge, TileSpec};
use crate::raster::{Image, RasterError};
use candle_core::{Device, Tensor};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A trained run ready to predict.
pub struct Predictor {
    model: Box<dyn Family>,
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
    /// Test-time augmentation: average the probabilities of each chip as given and mirrored
    /// (each mirrored back) the ways the run trained with: up to four passes, smoother masks.
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
    /// The run's configuration with its `weights` (by default those its configuration keeps).
    pub fn load(
        run_dir: &Path,
        weights: Option<KeptWeights>,
        device: Device,
    ) -> Result<Self, TrainError> {
        let record = RunRecord::read(run_dir)?;
        let kept = weights.unwrap_or(record.config.train.keep);
        let path = run_dir.join(kept.file_name());
        if !path.exists() {
            return Err(TrainError::Invalid(format!(
                "{} has no {} yet (no epoch has finished)",
                run_dir.display(),
                kept.file_name(),
            )));
        }
        let (tensors, _) = super::checkpoint::load(&path, &device)?;
        let model = inference_model(&record.config, tensors, &device)?;
        Ok(Predictor {
            model,
            config: record.config,
            normalisation: record.normalisation,
            device,
        })
    }

    /// Class probabilities of one batch of normalised chips (N, C, S, S), from a family
    /// that predicts them.
    fn planes(&self, images: &Tensor) -> Result<Tensor, TrainError> {
        match self.model.predict(images)? {
            ChipPrediction::Planes(planes) => Ok(planes),
            ChipPrediction::Boxes(_) => Err(TrainError::Invalid(format!(
                "run {} is a {} detector: it finds boxes, not a class per pixel",
                self.config.name,
                self.config.model.kind()
            ))),
        }
    }

    /// Class probabilities of one batch (N, C, S, S), averaged when asked over the mirrorings
    /// the run was trained with (a model trained without one has not learned to see through it).
    pub fn probabilities(&self, images: &Tensor, flips: bool) -> Result<Tensor, TrainError> {
        let mut sum = self.planes(images)?;
        if !flips {
            return Ok(sum);
        }
        let trained = self.config.train.augment.flips;
        let mirrorings: &[&[usize]] = match (trained.horizontal(), trained.vertical()) {
            (true, true) => &[&[3], &[2], &[2, 3]],
            (true, false) => &[&[3]],
            (false, true) => &[&[2]],
            (false, false) => &[],
        };
        for &dims in mirrorings {
            let flipped = self.planes(&images.flip(dims)?)?;
            sum = (sum + flipped.flip(dims)?)?;
        }
        Ok((sum / (1 + mirrorings.len()) as f64)?)
    }

    /// The whole image's prediction in memory (see [`Predictor::predict_rows`] for images
    /// too large for that).
    pub fn predict(
        &self,
        image: &Image,
        options: &InferOptions,
        progress: &dyn Progress,
    ) -> Result<Prediction, TrainError> {
        let classes = self.config.model.classes();
        let plane = (image.width * image.height) as usize;
        let mut mask = Vec::with_capacity(plane);
        let mut probabilities = vec![0f32; classes * plane];
        self.predict_rows(&mut ImageRows::new(image), options, progress, |done| {
            mask.extend_from_slice(done.mask);
            let width = image.width as usize;
            for r in 0..done.rows as usize {
                for k in 0..classes {
                    let at = k * plane + (done.y as usize + r) * width;
                    probabilities[at..at + width].copy_from_slice(done.probabilities(r, k));
                }
            }
            Ok(())
        })?;
        Ok(Prediction {
            width: image.width,
            height: image.height,
            classes,
            mask,
            probabilities,
        })
    }

    /// Predicts the image `source` reads, top to bottom, handing each strip of rows to `emit`
    /// as soon as no later chip can change it. Memory holds about one chip's height of rows
    /// (image, blended scores and weights), whatever the image's height.
    pub fn predict_rows(
        &self,
        source: &mut dyn RowSource,
        options: &InferOptions,
        progress: &dyn Progress,
        mut emit: impl FnMut(PredictedRows) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let (width, height) = (source.width(), source.height());
        let scale = source.depth().max();
        let spec = self.tiling(options, width, height, scale)?;
        let tile = spec.size;
        progress.start("inference", chip_count(width, height, &spec) as u64);
        let read = Rc::new(RefCell::new(Vec::new()));
        let mut tee = Tee {
            source,
            read: Rc::clone(&read),
        };
        let mut blend = Blend {
            classes: self.config.model.classes(),
            width: width as usize,
            bands: tee.bands() as usize,
            window: blend_window(tile as usize, options.overlap as usize),
            first: 0,
            scores: Vec::new(),
            weights: Vec::new(),
            image: read,
        };
        let mut pending: Vec<Chip> = Vec::new();
        let mut run_batch = |chips: &mut Vec<Chip>,
                             emit: &mut dyn FnMut(PredictedRows) -> Result<(), TrainError>|
         -> Result<(), TrainError> {
            let Some(last) = chips.last().map(|c| c.y) else {
                return Ok(());
            };
            let input = self.chips_tensor(chips, tile as usize, scale)?;
            let probs = self
                .probabilities(&input, options.flips)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            blend.add(chips, &probs, tile as usize, height as usize);
            progress.advance(chips.len() as u64);
            chips.clear();
            // Chips come row by row: nothing after this batch starts above `last`.
            blend.emit_until(last, emit)
        };
        tile_rows(&mut tee, &spec, |chip| -> Result<(), TrainError> {
            pending.push(chip);
            if pending.len() >= options.batch.max(1) {
                run_batch(&mut pending, &mut emit)?;
            }
            Ok(())
        })?;
        run_batch(&mut pending, &mut emit)?;
        blend.emit_until(height, &mut emit)?;
        progress.finish();
        Ok(())
    }

    /// The objects in the image `source` reads, in its pixels: each chip's boxes moved into
    /// the image and cut at its edges, then merged across chip seams (`merge_chips`).
    pub fn detect(
        &self,
        source: &mut dyn RowSource,
        options: &InferOptions,
        progress: &dyn Progress,
    ) -> Result<Vec<Detection>, TrainError> {
        let ModelConfig::Ssd(model) = &self.config.model else {
            return Err(TrainError::Invalid(format!(
                "run {} is a {} model: it predicts a class per pixel, not boxes",
                self.config.name,
                self.config.model.kind()
            )));
        };
        if options.flips {
            return Err(TrainError::Invalid(
                "--flips averages probability maps: segmentation runs only".into(),
            ));
        }
        let (width, height) = (source.width(), source.height());
        let scale = source.depth().max();
        let spec = self.tiling(options, width, height, scale)?;
        let tile = spec.size;
        progress.start("inference", chip_count(width, height, &spec) as u64);
        let mut found: Vec<ChipDetection> = Vec::new();
        let mut pending: Vec<Chip> = Vec::new();
        let mut chip_index = 0usize;
        let mut run_batch = |chips: &mut Vec<Chip>| -> Result<(), TrainError> {
            if chips.is_empty() {
                return Ok(());
            }
            let input = self.chips_tensor(chips, tile as usize, scale)?;
            let ChipPrediction::Boxes(boxes) = self.model.predict(&input)? else {
                return Err(TrainError::Invalid("the detector gave no boxes".into()));
            };
            for (chip, detections) in chips.iter().zip(boxes) {
                let (x0, y0) = (chip.x as f32, chip.y as f32);
                let (x1, y1) = (x0 + tile as f32, y0 + tile as f32);
                // A chip edge inside the image is a seam: a box touching it may be a cut one.
                let seams = [x0 > 0.0, y0 > 0.0, x1 < width as f32, y1 < height as f32];
                for d in detections {
                    let b = d.bbox;
                    let cut = (seams[0] && b[0] <= 0.5)
                        || (seams[1] && b[1] <= 0.5)
                        || (seams[2] && b[2] >= tile as f32 - 0.5)
                        || (seams[3] && b[3] >= tile as f32 - 0.5);
                    let bbox = [
                        (x0 + b[0]).min(width as f32),
                        (y0 + b[1]).min(height as f32),
                        (x0 + b[2]).min(width as f32),
                        (y0 + b[3]).min(height as f32),
                    ];
                    if bbox[2] > bbox[0] && bbox[3] > bbox[1] {
                        found.push(ChipDetection {
                            detection: Detection { bbox, ..d },
                            chip: chip_index,
                            cut,
                        });
                    }
                }
                chip_index += 1;
            }
            progress.advance(chips.len() as u64);
            chips.clear();
            Ok(())
        };
        tile_rows(source, &spec, |chip| -> Result<(), TrainError> {
            pending.push(chip);
            if pending.len() >= options.batch.max(1) {
                run_batch(&mut pending)?;
            }
            Ok(())
        })?;
        run_batch(&mut pending)?;
        progress.finish();
        Ok(merge_chips(&found, model.nms_iou as f32))
    }

    /// The chips inference reads: the run's tile (or the one asked for), overlapping by
    /// `options.overlap`; past a small image's edge filled with the mean, which normalises to 0.
    fn tiling(
        &self,
        options: &InferOptions,
        width: u32,
        height: u32,
        scale: f32,
    ) -> Result<TileSpec, TrainError> {
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
        Ok(TileSpec {
            size: tile,
            stride: tile - options.overlap,
            edge: if width < tile || height < tile {
                Edge::Pad(self.normalisation.mean * scale)
            } else {
                Edge::ShiftInward
            },
            skip_no_data: None,
        })
    }

    fn chips_tensor(&self, chips: &[Chip], size: usize, scale: f32) -> Result<Tensor, TrainError> {
        let channels = self.config.model.in_channels();
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

/// Rows of a prediction that no later chip changes.
pub struct PredictedRows<'a> {
    /// The first row's index in the image.
    pub y: u32,
    pub rows: u32,
    pub width: u32,
    pub classes: usize,
    /// Class per pixel, row by row.
    pub mask: &'a [u8],
    /// The source's samples of these rows (bands interleaved), for overlays.
    pub image: &'a [f32],
    /// Blended probabilities, row by row and class by class within a row.
    scores: &'a [f32],
}

impl PredictedRows<'_> {
    /// Row `r`'s probabilities of class `k`.
    pub fn probabilities(&self, r: usize, k: usize) -> &[f32] {
        let width = self.width as usize;
        let at = (r * self.classes + k) * width;
        &self.scores[at..at + width]
    }
}

/// A row source that keeps what it hands out, for the rows' outputs.
struct Tee<'a> {
    source: &'a mut dyn RowSource,
    read: Rc<RefCell<Vec<f32>>>,
}

impl RowSource for Tee<'_> {
    fn width(&self) -> u32 {
        self.source.width()
    }
    fn height(&self) -> u32 {
        self.source.height()
    }
    fn bands(&self) -> u32 {
        self.source.bands()
    }
    fn depth(&self) -> crate::raster::BitDepth {
        self.source.depth()
    }
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError> {
        let start = out.len();
        self.source.read_rows(rows, out)?;
        self.read.borrow_mut().extend_from_slice(&out[start..]);
        Ok(())
    }
}

/// Weighted sums of chip probabilities for the rows from `first` on that are not final yet.
struct Blend {
    classes: usize,
    width: usize,
    bands: usize,
    window: Vec<f32>,
    first: u32,
    /// Row by row from `first`, class by class within a row.
    scores: Vec<f32>,
    /// Row by row from `first`.
    weights: Vec<f32>,
    /// The source rows read from `first` on.
    image: Rc<RefCell<Vec<f32>>>,
}

impl Blend {
    fn add(&mut self, chips: &[Chip], probs: &[f32], s: usize, height: usize) {
        let (width, classes) = (self.width, self.classes);
        let first = self.first as usize;
        for (i, chip) in chips.iter().enumerate() {
            let (x0, y0) = (chip.x as usize, chip.y as usize);
            let bottom = (y0 + s).min(height);
            if self.weights.len() < (bottom - first) * width {
                self.weights.resize((bottom - first) * width, 0.0);
                self.scores.resize((bottom - first) * classes * width, 0.0);
            }
            for r in 0..bottom - y0 {
                let row = y0 + r - first;
                for c in 0..s.min(width.saturating_sub(x0)) {
                    let w = self.window[r] * self.window[c];
                    self.weights[row * width + x0 + c] += w;
                    for k in 0..classes {
                        self.scores[(row * classes + k) * width + x0 + c] +=
                            w * probs[((i * classes + k) * s + r) * s + c];
                    }
                }
            }
        }
    }

    /// Normalises rows `first..until` (those accumulated), hands them to `emit` and drops them.
    fn emit_until(
        &mut self,
        until: u32,
        emit: &mut dyn FnMut(PredictedRows) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let (width, classes) = (self.width, self.classes);
        let rows = (until.saturating_sub(self.first) as usize).min(self.weights.len() / width);
        if rows == 0 {
            return Ok(());
        }
        let mut mask = Vec::with_capacity(rows * width);
        for r in 0..rows {
            for x in 0..width {
                let w = self.weights[r * width + x].max(f32::MIN_POSITIVE);
                let at = |k: usize| (r * classes + k) * width + x;
                for k in 0..classes {
                    self.scores[at(k)] /= w;
                }
                let best = (0..classes)
                    .max_by(|&a, &b| {
                        self.scores[at(a)]
                            .total_cmp(&self.scores[at(b)])
                            .then(b.cmp(&a))
                    })
                    .unwrap_or(0);
                mask.push(best as u8);
            }
        }
        let mut image = self.image.borrow_mut();
        emit(PredictedRows {
            y: self.first,
            rows: rows as u32,
            width: width as u32,
            classes,
            mask: &mask,
            image: &image[..rows * width * self.bands],
            scores: &self.scores[..rows * classes * width],
        })?;
        image.drain(..rows * width * self.bands);
        self.weights.drain(..rows * width);
        self.scores.drain(..rows * classes * width);
        self.first += rows as u32;
        Ok(())
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
