//! Training and inference as pipeline steps: a dataset and a configuration become a run
//! folder under `runs/`; a run and an image become a class mask, an overlay and (optionally)
//! probabilities.

use super::dataset::{DatasetError, DatasetRecord, Split};
use crate::fsio::write_atomically;
use crate::labels::rasterize::palette;
use crate::nn::config::{KeptWeights, RunConfig};
use crate::nn::infer::{InferOptions, Predictor};
use crate::nn::train::{train, RunRecord, TrainError, TrainRequest};
use crate::product::check_plain_name;
use crate::progress::Progress;
use crate::raster::rows::PngRowWriter;
use crate::raster::{BitDepth, RasterError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Raster(#[from] RasterError),
    #[error("{0}")]
    Invalid(String),
}

/// Trains `config` on `dataset` into `runs/<run>`. A run that has a checkpoint resumes from
/// it (after a crash, or an interrupted daemon), provided its configuration is the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainJob {
    pub run: String,
    pub config: RunConfig,
    pub dataset: String,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    pub encoder_weights: Option<PathBuf>,
}

impl TrainJob {
    pub fn run(&self, workspace: &Path, progress: &dyn Progress) -> Result<RunRecord, StepError> {
        check_plain_name("run name", &self.run).map_err(|e| StepError::Invalid(e.to_string()))?;
        let run_dir = workspace.join("runs").join(&self.run);
        if run_dir.join("run.json").exists() {
            let existing = RunRecord::read(&run_dir)?;
            if existing.config != self.config || existing.dataset != self.dataset {
                return Err(StepError::Invalid(format!(
                    "run {} exists with another configuration or dataset: choose another name",
                    self.run
                )));
            }
        }
        let device = crate::nn::device(&self.device).map_err(StepError::Invalid)?;
        let dataset = DatasetRecord::read(&workspace.join("datasets"), &self.dataset)?;
        progress.log(&format!(
            "dataset {}: {} training, {} validation chip(s)",
            dataset.name,
            dataset.count(Split::Train),
            dataset.count(Split::Validation)
        ));
        let request = TrainRequest {
            config: self.config.clone(),
            name: self.run.clone(),
            dataset: self.dataset.clone(),
            train: dataset.samples(Split::Train)?,
            validation: dataset.samples(Split::Validation)?,
            run_dir,
            device,
            device_name: self.device.clone(),
            resume: true,
            encoder_weights: self.encoder_weights.clone(),
        };
        Ok(train(request, progress)?)
    }
}

/// Runs a trained model over a whole image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferJob {
    pub run: String,
    pub image: PathBuf,
    pub out: PathBuf,
    pub device: String,
    pub tile: Option<u32>,
    pub overlap: u32,
    pub batch: usize,
    /// Also write each class's probability as a 16-bit PNG.
    pub probabilities: bool,
    /// Average over flipped copies of each chip (four passes).
    #[serde(default)]
    pub flips: bool,
    /// Which of the run's weights (default: those its configuration keeps).
    #[serde(default)]
    pub weights: Option<KeptWeights>,
}

/// What an inference wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferSummary {
    pub run: String,
    pub image: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Pixels predicted per class.
    pub class_pixels: Vec<u64>,
    pub mask: PathBuf,
    pub overlay: PathBuf,
    pub probabilities: Vec<PathBuf>,
    pub seconds: f64,
    /// Which of the run's weights made it.
    #[serde(default)]
    pub weights: KeptWeights,
}

impl InferJob {
    pub fn run(
        &self,
        workspace: &Path,
        progress: &dyn Progress,
    ) -> Result<InferSummary, StepError> {
        check_plain_name("run name", &self.run).map_err(|e| StepError::Invalid(e.to_string()))?;
        let started = std::time::Instant::now();
        let device = crate::nn::device(&self.device).map_err(StepError::Invalid)?;
        let predictor = Predictor::load(
            &workspace.join("runs").join(&self.run),
            self.weights,
            device,
        )?;
        let mut source = super::source::open_rows(&self.image)?;
        let rows = source.rows();
        let (width, height, depth) = (rows.width(), rows.height(), rows.depth());
        let options = InferOptions {
            tile: self.tile,
            overlap: self.overlap,
            batch: self.batch,
            flips: self.flips,
        };
        let classes = predictor.config.model.classes;
        std::fs::create_dir_all(&self.out)
            .map_err(|e| StepError::Invalid(format!("{}: {e}", self.out.display())))?;
        // Every output is written strip by strip as the rows are final.
        let mask_path = self.out.join("mask.png");
        let mut mask = PngRowWriter::create(&mask_path, width, height, 1, BitDepth::Eight)?;
        let overlay_path = self.out.join("overlay.png");
        let mut overlay = PngRowWriter::create(&overlay_path, width, height, 3, BitDepth::Eight)?;
        let probabilities: Vec<PathBuf> = if self.probabilities {
            (0..classes)
                .map(|class| self.out.join(format!("probability-{class}.png")))
                .collect()
        } else {
            Vec::new()
        };
        let mut planes = probabilities
            .iter()
            .map(|path| PngRowWriter::create(path, width, height, 1, BitDepth::Sixteen))
            .collect::<Result<Vec<_>, _>>()?;
        let colours = palette(classes.max(2));
        let mut class_pixels = vec![0u64; classes];
        let mut row_values = Vec::new();
        predictor.predict_rows(rows, &options, progress, |done| {
            for &class in done.mask {
                class_pixels[class as usize] += 1;
            }
            let classes_as_samples: Vec<f32> = done.mask.iter().map(|&c| c as f32).collect();
            mask.write_rows(&classes_as_samples)?;
            overlay.write_rows(&overlay_rows(done.image, depth, done.mask, &colours))?;
            for (k, plane) in planes.iter_mut().enumerate() {
                row_values.clear();
                for r in 0..done.rows as usize {
                    row_values.extend(done.probabilities(r, k).iter().map(|p| p * 65535.0));
                }
                plane.write_rows(&row_values)?;
            }
            Ok(())
        })?;
        mask.finish()?;
        overlay.finish()?;
        for plane in planes {
            plane.finish()?;
        }
        let summary = InferSummary {
            run: self.run.clone(),
            image: self.image.clone(),
            width,
            height,
            class_pixels,
            mask: mask_path,
            overlay: overlay_path,
            probabilities,
            seconds: started.elapsed().as_secs_f64(),
            weights: self.weights.unwrap_or(predictor.config.train.keep),
        };
        let path = self.out.join("prediction.json");
        write_atomically(
            &path,
            &serde_json::to_vec_pretty(&summary).expect("serialises"),
        )
        .map_err(|e| StepError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(summary)
    }
}

/// Rows of an image (bands interleaved, `depth` as read) in grey, every class but the
/// background tinted half-way to its colour: RGB samples for the overlay.
fn overlay_rows(image: &[f32], depth: BitDepth, mask: &[u8], colours: &[[u8; 3]]) -> Vec<f32> {
    let scale = 255.0 / depth.max();
    let bands = image.len() / mask.len().max(1);
    let mut data = Vec::with_capacity(mask.len() * 3);
    for (pixel, &class) in image.chunks_exact(bands).zip(mask) {
        let grey = pixel.iter().sum::<f32>() / bands as f32 * scale;
        for tint in colours[class as usize] {
            data.push(if class == 0 {
                grey
            } else {
                0.5 * grey + 0.5 * tint as f32
            });
        }
    }
    data
}
