//! A run's folder: `run.json` (the record), `metrics.jsonl` (one line per epoch), the
//! weights (`checkpoint.safetensors`, `best.safetensors`). Read by the console, the daemon and
//! inference, written by training.

use super::checkpoint::CheckpointError;
use super::config::RunConfig;
use super::data::Normalisation;
use super::DeviceMemory;
use crate::fsio::write_atomically;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Raster(#[from] crate::raster::RasterError),
    #[error("{0}")]
    Invalid(String),
    #[error("the loss became {value} at step {step} (learning rate {lr:.2e}): lower train.lr")]
    Diverged { value: f32, step: u64, lr: f64 },
    #[error("cancelled at step {step}; the checkpoint lets `--resume` continue")]
    Cancelled { step: u64 },
    #[error("stopped after epoch {epoch} of {epochs}, as asked; the checkpoint lets `--resume` continue")]
    Stopped { epoch: usize, epochs: usize },
}

/// One epoch's figures, a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub lr: f64,
    /// The training loss's parts, mean per step, when it has several (an SSD's `class`
    /// and `box`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub train_losses: BTreeMap<String, f64>,
    /// Segmentation: validation IoU and F1 per class (empty without validation samples).
    pub iou: Vec<f64>,
    pub f1: Vec<f64>,
    pub mean_iou: Option<f64>,
    pub pixel_accuracy: Option<f64>,
    /// Detection: COCO's validation figures by pycocotools' names (`AP`, `AP50`, `AR100`,
    /// ...; -1 where there was nothing to score).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f64>,
    pub seconds: f64,
    pub tiles_per_second: f64,
    /// On a GPU, the device's memory at the epoch's busiest reading (one after every step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<DeviceMemory>,
}

impl EpochMetrics {
    /// The validation figure the epoch is judged by (the best epoch has the highest), and the
    /// detail shown beside it: a segmentation's mean IoU and IoU per class; a detector's AP50
    /// (the PASCAL figure: a small crater's box moves a lot in IoU for a pixel of error, so
    /// the stricter IoUs of AP@[.5:.95] mostly measure the labels), then its AP@[.5:.95] and
    /// the class and box parts of its training loss.
    pub fn headline(&self) -> (Option<f64>, String) {
        if self.scores.is_empty() && self.train_losses.is_empty() {
            let per_class: Vec<String> = self.iou.iter().map(|v| format!("{v:.3}")).collect();
            return (self.mean_iou, per_class.join(" "));
        }
        let mut detail: Vec<String> = Vec::new();
        if let Some(ap) = self.scores.get("AP") {
            detail.push(format!("AP {ap:.3}"));
        }
        for (name, value) in &self.train_losses {
            detail.push(format!("{name} {value:.3}"));
        }
        (self.scores.get("AP50").copied(), detail.join(" "))
    }
}

impl RunRecord {
    /// Names of the two columns [`EpochMetrics::headline`] fills for this run's family.
    pub fn headline_names(&self) -> [&'static str; 2] {
        match self.config.model.kind() {
            "unet" => ["mIoU", "IoU/CLASS"],
            _ => ["AP50", "AP, LOSS PARTS"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    /// The validation figure the family picks by (mean IoU for segmentation, AP50 for
    /// detection), or minus the training loss without one.
    pub score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Finished,
    Failed,
    Cancelled,
}

/// Class names by index. JSON writes map keys as text, and serde hands them on as text
/// when the record sits inside one of the protocol's tagged enums (where its integer-key
/// parsing does not apply), so the index is parsed here.
fn class_names_by_index<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<usize, String>, D::Error> {
    use serde::de::Error;
    BTreeMap::<String, String>::deserialize(deserializer)?
        .into_iter()
        .map(|(index, name)| match index.parse::<usize>() {
            Ok(index) => Ok((index, name)),
            Err(_) => Err(D::Error::custom(format!(
                "class index {index:?} is not a whole number"
            ))),
        })
        .collect()
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub config: RunConfig,
    pub dataset: String,
    pub device: String,
    pub normalisation: Normalisation,
    /// The names of the class ids its dataset's boxes use (for detections' outputs).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "class_names_by_index"
    )]
    pub class_names: BTreeMap<usize, String>,
    pub state: RunState,
    pub parameters: usize,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub epochs_done: usize,
    pub step: u64,
    pub best: Option<Best>,
    pub error: Option<String>,
    pub started: String,
    pub updated: String,
}

impl RunRecord {
    pub fn read(run_dir: &Path) -> Result<RunRecord, TrainError> {
        let path = run_dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
    }

    pub(crate) fn write(&self, run_dir: &Path) -> Result<(), TrainError> {
        let path = run_dir.join("run.json");
        let bytes = serde_json::to_vec_pretty(self).expect("a run record serialises");
        write_atomically(&path, &bytes).map_err(|source| TrainError::Io { path, source })
    }
}

/// The records of every run under `runs_dir` (folders with a `run.json`), by name.
pub fn list_runs(runs_dir: &Path) -> Result<Vec<RunRecord>, TrainError> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TrainError::Io {
                path: runs_dir.to_path_buf(),
                source,
            })
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("run.json").exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|dir| RunRecord::read(dir)).collect()
}

/// Reads `metrics.jsonl` of a run.
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = run_dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(TrainError::Io { path, source }),
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| TrainError::Invalid(format!("{} line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

pub(crate) fn write_metrics(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let path = run_dir.join("metrics.jsonl");
    let mut text = String::new();
    for line in history {
        text.push_str(&serde_json::to_string(line).expect("metrics serialise"));
        text.push('\n');
    }
    write_atomically(&path, text.as_bytes()).map_err(|source| TrainError::Io { path, source })
}

pub(crate) fn append_metrics(run_dir: &Path, metrics: &EpochMetrics) -> Result<(), TrainError> {
    use std::io::Write;
    let path = run_dir.join("metrics.jsonl");
    let io = |source| TrainError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    let mut line = serde_json::to_string(metrics).expect("metrics serialise");
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_data().map_err(io)
}
