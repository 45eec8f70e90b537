//! Training and inference as pipeline steps: a dataset and a configuration become a run
//! folder under `runs/`; a run and an image become a class mask, an overlay and (optionally)
//! probabilities.

use super::dataset::{DatasetError, DatasetRecord, Split};
use crate::fsio::write_atomically;
use crate::labels::rasterize::palette;
use crate::nn::config::{KeptWeights, ModelConfig, RunConfig};
use crate::nn::infer::{InferOptions, Predictor};
use crate::nn::run::{RunRecord, TrainError};
use crate::nn::train::{train, TrainRequest};
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
        let boxes = dataset.boxes()?;
        if let ModelConfig::Ssd(_) = self.config.model {
            if !boxes.complete {
                return Err(StepError::Invalid(format!(
                    "dataset {} has chips without boxes: a detector trains on boxes; tile \
                     with --labels again and recreate the dataset",
                    dataset.name
                )));
            }
        }
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
            train: dataset.samples(Split::Train, &boxes)?,
            validation: dataset.samples(Split::Validation, &boxes)?,
            run_dir,
            device,
            device_name: self.device.clone(),
            resume: true,
            encoder_weights: self.encoder_weights.clone(),
            class_names: boxes.class_names.clone(),
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
    /// A detector's boxes also as LabelImg VOC XML and as YOLO lines (with `classes.txt`),
    /// keeping those scoring at least `box_threshold` (neither format has a score).
    #[serde(default)]
    pub boxes_as: BoxOutputs,
}

/// The label formats a detector's boxes are also written in.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BoxOutputs {
    pub voc: bool,
    pub yolo: bool,
    pub threshold: f64,
}

/// What an inference wrote: for a segmentation a mask, an overlay and probabilities; for a
/// detector its objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferSummary {
    pub run: String,
    pub image: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Pixels predicted per class (segmentation).
    #[serde(default)]
    pub class_pixels: Vec<u64>,
    pub mask: Option<PathBuf>,
    pub overlay: Option<PathBuf>,
    #[serde(default)]
    pub probabilities: Vec<PathBuf>,
    /// Objects found per class id, background's 0 first (detection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<u64>,
    /// COCO results: `[{"image_id": 1, "category_id", "bbox": [x, y, w, h], "score"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detections: Option<PathBuf>,
    /// The objects of classes named as craters, as `x,y,diameter,score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub craters: Option<PathBuf>,
    /// The boxes as VOC and YOLO files, when asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labelled: Vec<PathBuf>,
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
        let options = InferOptions {
            tile: self.tile,
            overlap: self.overlap,
            batch: self.batch,
            flips: self.flips,
        };
        std::fs::create_dir_all(&self.out)
            .map_err(|e| StepError::Invalid(format!("{}: {e}", self.out.display())))?;
        let mut summary = match predictor.config.model {
            ModelConfig::UNet(_) => self.segment(&predictor, rows, &options, progress)?,
            ModelConfig::Ssd(_) => {
                let record =
                    crate::nn::run::RunRecord::read(&workspace.join("runs").join(&self.run))?;
                self.detect(&predictor, &record, rows, &options, progress)?
            }
        };
        summary.seconds = started.elapsed().as_secs_f64();
        let path = self.out.join("prediction.json");
        write_atomically(
            &path,
            &serde_json::to_vec_pretty(&summary).expect("serialises"),
        )
        .map_err(|e| StepError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(summary)
    }

    /// A class per pixel: `mask.png`, `overlay.png` and, when asked, `probability-K.png`.
    fn segment(
        &self,
        predictor: &Predictor,
        rows: &mut dyn crate::raster::rows::RowSource,
        options: &InferOptions,
        progress: &dyn Progress,
    ) -> Result<InferSummary, StepError> {
        let (width, height, depth) = (rows.width(), rows.height(), rows.depth());
        let classes = predictor.config.model.classes();
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
        predictor.predict_rows(rows, options, progress, |done| {
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
        Ok(InferSummary {
            run: self.run.clone(),
            image: self.image.clone(),
            width,
            height,
            class_pixels,
            mask: Some(mask_path),
            overlay: Some(overlay_path),
            probabilities,
            objects: Vec::new(),
            detections: None,
            craters: None,
            labelled: Vec::new(),
            seconds: 0.0,
            weights: self.weights.unwrap_or(predictor.config.train.keep),
        })
    }

    /// Objects: `detections.json` (COCO results for image id 1) and, for classes whose name
    /// says crater, `craters.csv` (centre and diameter: the mean of the box's sides).
    fn detect(
        &self,
        predictor: &Predictor,
        record: &crate::nn::run::RunRecord,
        rows: &mut dyn crate::raster::rows::RowSource,
        options: &InferOptions,
        progress: &dyn Progress,
    ) -> Result<InferSummary, StepError> {
        if self.probabilities {
            return Err(StepError::Invalid(format!(
                "run {} is a detector: it writes boxes, not probabilities",
                self.run
            )));
        }
        let (width, height, rows_bands) = (rows.width(), rows.height(), rows.bands());
        let found = predictor.detect(rows, options, progress)?;
        let mut objects = vec![0u64; predictor.config.model.classes()];
        let mut results = Vec::with_capacity(found.len());
        let mut craters = String::from("x,y,diameter,score\n");
        let crater_classes: Vec<usize> = record
            .class_names
            .iter()
            .filter(|(_, name)| name.to_ascii_lowercase().contains("crater"))
            .map(|(id, _)| *id)
            .collect();
        // f32 values printed through f64 would show float noise (0.1f32 as 0.10000000149):
        // positions to a thousandth of a pixel, scores to a millionth.
        let pixels = |v: f64| (v * 1e3).round() / 1e3;
        for d in &found {
            objects[d.class] += 1;
            let [x0, y0, x1, y1] = d.bbox.map(f64::from);
            let score = (d.score as f64 * 1e6).round() / 1e6;
            results.push(serde_json::json!({
                "image_id": 1,
                "category_id": d.class,
                "bbox": [pixels(x0), pixels(y0), pixels(x1 - x0), pixels(y1 - y0)],
                "score": score,
            }));
            if crater_classes.contains(&d.class) {
                craters += &format!(
                    "{},{},{},{score}\n",
                    pixels((x0 + x1) / 2.0),
                    pixels((y0 + y1) / 2.0),
                    pixels((x1 - x0 + y1 - y0) / 2.0),
                );
            }
        }
        let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, StepError> {
            let path = self.out.join(name);
            write_atomically(&path, bytes)
                .map_err(|e| StepError::Invalid(format!("{}: {e}", path.display())))?;
            Ok(path)
        };
        let detections = write(
            "detections.json",
            &serde_json::to_vec_pretty(&results).expect("serialises"),
        )?;
        let craters = if crater_classes.is_empty() {
            None
        } else {
            Some(write("craters.csv", craters.as_bytes())?)
        };
        let mut labelled = Vec::new();
        if self.boxes_as.voc || self.boxes_as.yolo {
            let labels = self.labels_of(&found, record, width, height, rows_bands)?;
            let invalid = |e: crate::labels::LabelError| StepError::Invalid(e.to_string());
            if self.boxes_as.voc {
                labelled.push(write(
                    "detections.xml",
                    crate::labels::voc::write(&labels)
                        .map_err(invalid)?
                        .as_bytes(),
                )?);
            }
            if self.boxes_as.yolo {
                let classes = crate::labels::ClassMap::numbered(
                    "the run's classes",
                    record
                        .class_names
                        .iter()
                        .map(|(id, name)| (*id, name.clone())),
                )
                .map_err(invalid)?;
                let lines = crate::labels::yolo::write_boxes(&labels, &classes).map_err(invalid)?;
                labelled.push(write("detections.txt", lines.as_bytes())?);
                let names: String = record
                    .class_names
                    .iter()
                    .map(|(id, name)| format!("{id},{name}\n"))
                    .collect();
                labelled.push(write("classes.txt", names.as_bytes())?);
            }
        }
        progress.log(&format!("{} object(s) found", found.len()));
        Ok(InferSummary {
            run: self.run.clone(),
            image: self.image.clone(),
            width,
            height,
            class_pixels: Vec::new(),
            mask: None,
            overlay: None,
            probabilities: Vec::new(),
            objects,
            detections: Some(detections),
            craters,
            labelled,
            seconds: 0.0,
            weights: self.weights.unwrap_or(predictor.config.train.keep),
        })
    }

    /// The detections scoring at least the threshold as labels of the input image (boxes of
    /// the run's class names).
    fn labels_of(
        &self,
        found: &[crate::nn::models::Detection],
        record: &crate::nn::run::RunRecord,
        width: u32,
        height: u32,
        bands: u32,
    ) -> Result<crate::labels::ImageLabels, StepError> {
        use crate::labels::{ImageLabels, ImageSize, Object, Shape};
        let image = self
            .image
            .file_name()
            .map_or("image".into(), |n| n.to_string_lossy().into_owned());
        let mut labels = ImageLabels::new(
            image,
            Some(ImageSize {
                width,
                height,
                depth: bands,
            }),
        );
        for d in found
            .iter()
            .filter(|d| d.score as f64 >= self.boxes_as.threshold)
        {
            let name = record.class_names.get(&d.class).cloned().ok_or_else(|| {
                StepError::Invalid(format!(
                    "run {} has no name for class id {} (trained before runs kept their \
                     class names): write detections.json only",
                    self.run, d.class
                ))
            })?;
            let [x0, y0, x1, y1] = d.bbox.map(f64::from);
            labels
                .objects
                .push(Object::new(name, Shape::Rect { x0, y0, x1, y1 }));
        }
        Ok(labels)
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
