//! Training a U-Net: one-cycle AdamW over seeded, augmented batches; validation, metrics and
//! an atomic checkpoint after every epoch (and every `checkpoint_every` steps); resuming from
//! the checkpoint after a crash gives the weights an uninterrupted run would have.
//!
//! A run folder holds `run.json` (the record), `metrics.jsonl` (one line per epoch),
//! `checkpoint.safetensors` (weights, optimiser, state) and `best.safetensors` (the weights of
//! the best validation epoch); inference takes the weights of the one the configuration's
//! `keep` names.

use super::checkpoint::{self, CheckpointError};
use super::config::{KeptWeights, RunConfig};
use super::data::{
    batches_per_epoch, eval_batches, train_batches, BatchPlan, HostBatch, Normalisation, Sample,
};
use super::init::initialise;
use super::loss::{loss, Targets};
use super::model::{argmax_classes, UNet};
use super::optim::{AdamW, OneCycle, StepRates};
use super::{device_memory, DeviceMemory};
use crate::fsio::write_atomically;
use crate::metrics::{macro_mean, ConfusionMatrix};
use crate::progress::Progress;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

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
}

/// One epoch's figures, a line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub lr: f64,
    /// Validation IoU and F1 per class (empty without validation samples).
    pub iou: Vec<f64>,
    pub f1: Vec<f64>,
    pub mean_iou: Option<f64>,
    pub pixel_accuracy: Option<f64>,
    pub seconds: f64,
    pub tiles_per_second: f64,
    /// On a GPU, the device's memory at the epoch's busiest reading (one after every step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<DeviceMemory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub epoch: usize,
    /// Validation mean IoU, or minus the training loss without validation samples.
    pub score: f64,
}

/// Where training stands, stored in the checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The epoch in progress (or the number done, at an epoch's end).
    epoch: usize,
    /// The next batch of that epoch.
    batch: usize,
    step: u64,
    loss_sum: f64,
    history: Vec<EpochMetrics>,
    best: Option<Best>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Finished,
    Failed,
    Cancelled,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub config: RunConfig,
    pub dataset: String,
    pub device: String,
    pub normalisation: Normalisation,
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

    fn write(&self, run_dir: &Path) -> Result<(), TrainError> {
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

pub struct TrainRequest {
    pub config: RunConfig,
    pub name: String,
    pub dataset: String,
    pub train: Vec<Sample>,
    pub validation: Vec<Sample>,
    pub run_dir: PathBuf,
    pub device: Device,
    pub device_name: String,
    pub resume: bool,
    pub encoder_weights: Option<PathBuf>,
}

pub fn parameter_count(varmap: &VarMap) -> usize {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter()
        .filter(|(name, _)| !name.ends_with(".running_mean") && !name.ends_with(".running_var"))
        .map(|(_, var)| var.elem_count())
        .sum()
}

/// The model with its weights as plain tensors (no graph is recorded through them).
pub fn inference_model(
    config: &RunConfig,
    tensors: std::collections::HashMap<String, Tensor>,
    device: &Device,
) -> Result<UNet, TrainError> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(UNet::new(&config.model, vb)?)
}

/// Trains (or resumes) the run and returns its final record.
pub fn train(request: TrainRequest, progress: &dyn Progress) -> Result<RunRecord, TrainError> {
    let TrainRequest {
        config,
        name,
        dataset,
        train,
        validation,
        run_dir,
        device,
        device_name,
        resume,
        encoder_weights,
    } = request;
    let settings = &config.train;
    let tile = settings.tile as usize;
    if let Some(small) = train
        .iter()
        .chain(&validation)
        .find(|s| s.width < tile || s.height < tile)
    {
        return Err(TrainError::Invalid(format!(
            "a {} x {} chip is smaller than train.tile {tile}",
            small.width, small.height
        )));
    }
    let per_epoch = batches_per_epoch(train.len(), settings.batch);
    if per_epoch == 0 {
        return Err(TrainError::Invalid(format!(
            "{} training sample(s) do not fill one batch of {}",
            train.len(),
            settings.batch
        )));
    }
    // The checkpoint holds the last weights inference may take.
    let checkpoint_path = run_dir.join(KeptWeights::Last.file_name());
    let exists = checkpoint_path.exists();
    if exists && !resume {
        return Err(TrainError::Invalid(format!(
            "run {name} already has a checkpoint: resume it or choose another name"
        )));
    }
    std::fs::create_dir_all(&run_dir).map_err(|source| TrainError::Io {
        path: run_dir.clone(),
        source,
    })?;

    let varmap = VarMap::new();
    let model = UNet::new(
        &config.model,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    initialise(&varmap, settings.seed)?;
    let pretrained = match &encoder_weights {
        Some(path) => {
            let count = checkpoint::load_encoder(&varmap, path)?;
            progress.log(&format!(
                "loaded {count} encoder tensors from {}",
                path.display()
            ));
            true
        }
        None => false,
    };
    let (freeze_epochs, encoder_factor) = if pretrained {
        (settings.freeze_epochs, settings.encoder_lr_factor)
    } else {
        if settings.freeze_epochs > 0 || settings.encoder_lr_factor != 1.0 {
            progress.log("no encoder weights: the encoder trains from scratch at the full rate");
        }
        (0, 1.0)
    };
    let named_vars: Vec<_> = {
        let data = varmap.data().lock().expect("varmap lock");
        data.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
    };
    let mut optimiser = AdamW::new(named_vars, settings.weight_decay);
    let mut state = State::default();
    if exists {
        let (tensors, saved) = checkpoint::load(&checkpoint_path, &device)?;
        checkpoint::restore(&varmap, &tensors, &checkpoint_path)?;
        state = saved
            .and_then(|s| serde_json::from_value(s).ok())
            .ok_or_else(|| {
                TrainError::Invalid(format!("{}: no training state", checkpoint_path.display()))
            })?;
        optimiser.restore(state.step, &tensors)?;
        // metrics.jsonl may hold a line the checkpoint does not (killed in between).
        write_metrics(&run_dir, &state.history)?;
        progress.log(&format!(
            "resumed at epoch {} step {}",
            state.epoch + 1,
            state.step
        ));
    }

    let normalisation = Normalisation::of(&train);
    let mut record = RunRecord {
        name: name.clone(),
        config: config.clone(),
        dataset,
        device: device_name,
        normalisation,
        state: RunState::Running,
        parameters: parameter_count(&varmap),
        train_samples: train.len(),
        validation_samples: validation.len(),
        epochs_done: state.history.len(),
        step: state.step,
        best: state.best.clone(),
        error: None,
        started: now(),
        updated: now(),
    };
    record.write(&run_dir)?;

    let plan = BatchPlan {
        batch: settings.batch,
        tile,
        channels: config.model.in_channels,
        normalisation,
        augment: settings.augment.clone(),
        seed: settings.seed,
    };
    let schedule = OneCycle {
        max_lr: settings.lr,
        total_steps: (per_epoch * settings.epochs) as u64,
        pct_start: settings.pct_start,
    };
    let validation_batches = eval_batches(&validation, &plan);
    let train = Arc::new(train);
    progress.start("training", schedule.total_steps);
    progress.advance(state.step);

    let save_checkpoint = |state: &State, optimiser: &AdamW| -> Result<(), TrainError> {
        let mut tensors = checkpoint::weights(&varmap);
        tensors.extend(optimiser.state());
        let value = serde_json::to_value(state).expect("state serialises");
        Ok(checkpoint::save(&checkpoint_path, tensors, Some(&value))?)
    };

    while state.epoch < settings.epochs {
        let epoch = state.epoch;
        let frozen = epoch < freeze_epochs;
        let started = Instant::now();
        let first_batch = state.batch;
        let (batches, loader) = train_batches(train.clone(), plan.clone(), epoch, first_batch);
        let mut lr = 0.0;
        let mut gpu_memory = None;
        for host in batches.iter() {
            if progress.cancelled() {
                drop(batches);
                let _ = loader.join();
                save_checkpoint(&state, &optimiser)?;
                record.state = RunState::Cancelled;
                record.updated = now();
                record.write(&run_dir)?;
                return Err(TrainError::Cancelled { step: state.step });
            }
            let beta1;
            (lr, beta1) = schedule.at(state.step);
            let (images, targets) = to_device(&host, &config, &device)?;
            let logits = model.forward(&images, true, frozen)?;
            let value = loss(settings.loss, &logits, &targets)?;
            let scalar = value.to_scalar::<f32>()?;
            if !scalar.is_finite() {
                return Err(TrainError::Diverged {
                    value: scalar,
                    step: state.step,
                    lr,
                });
            }
            let grads = value.backward()?;
            let encoder_factor = if frozen { 0.0 } else { encoder_factor };
            optimiser.step(
                &grads,
                StepRates {
                    lr,
                    encoder_factor,
                    beta1,
                },
            )?;
            gpu_memory = gpu_memory.max(device_memory(&device));
            state.step += 1;
            state.batch += 1;
            state.loss_sum += scalar as f64;
            progress.advance(1);
            progress.metric("train.loss", state.step, scalar as f64);
            if settings.checkpoint_every > 0 && state.step % settings.checkpoint_every as u64 == 0 {
                save_checkpoint(&state, &optimiser)?;
            }
        }
        let _ = loader.join();
        let trained = state.batch - first_batch;
        let seconds = started.elapsed().as_secs_f64();
        let train_loss = state.loss_sum / state.batch.max(1) as f64;

        let weights: std::collections::HashMap<String, Tensor> =
            checkpoint::weights(&varmap).into_iter().collect();
        let evaluator = inference_model(&config, weights, &device)?;
        let (val_loss, confusion) = validate(&evaluator, &validation_batches, &config, &device)?;
        let scores = confusion.as_ref().map(|m| m.scores());
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            train_loss,
            val_loss,
            lr,
            iou: scores.iter().flatten().map(|s| s.iou).collect(),
            f1: scores.iter().flatten().map(|s| s.f1).collect(),
            mean_iou: scores.as_ref().map(|s| macro_mean(s, |c| c.iou)),
            pixel_accuracy: confusion.as_ref().map(ConfusionMatrix::accuracy),
            seconds,
            tiles_per_second: (trained * settings.batch) as f64 / seconds.max(1e-9),
            gpu_memory,
        };
        let score = metrics.mean_iou.unwrap_or(-train_loss);
        if state.best.as_ref().is_none_or(|b| score > b.score) {
            state.best = Some(Best {
                epoch: epoch + 1,
                score,
            });
            checkpoint::save(
                &run_dir.join(KeptWeights::Best.file_name()),
                checkpoint::weights(&varmap),
                None,
            )?;
        }
        state.history.push(metrics.clone());
        state.epoch += 1;
        state.batch = 0;
        state.loss_sum = 0.0;
        save_checkpoint(&state, &optimiser)?;
        append_metrics(&run_dir, &metrics)?;
        progress.metric("train.epoch_loss", state.step, train_loss);
        if let Some(v) = val_loss {
            progress.metric("val.loss", state.step, v);
        }
        if let Some(m) = metrics.mean_iou {
            progress.metric("val.mean_iou", state.step, m);
        }
        progress.log(&format!(
            "epoch {}/{}: train loss {train_loss:.4}{}{} ({seconds:.1} s, {:.1} tiles/s)",
            epoch + 1,
            settings.epochs,
            val_loss
                .map(|v| format!(", val loss {v:.4}"))
                .unwrap_or_default(),
            metrics
                .mean_iou
                .map(|m| format!(", mIoU {m:.3}"))
                .unwrap_or_default(),
            metrics.tiles_per_second
        ));
        record.epochs_done = state.history.len();
        record.step = state.step;
        record.best = state.best.clone();
        record.updated = now();
        record.write(&run_dir)?;
    }
    progress.finish();
    record.state = RunState::Finished;
    record.updated = now();
    record.write(&run_dir)?;
    Ok(record)
}

/// Images and targets of a host batch as tensors on `device`.
pub fn to_device(
    host: &HostBatch,
    config: &RunConfig,
    device: &Device,
) -> Result<(Tensor, Targets), TrainError> {
    let size = host.size;
    let images = Tensor::from_slice(
        &host.images,
        (host.count, host.channels, size, size),
        device,
    )?;
    let targets = Targets::new(
        &host.masks,
        (host.count, size, size),
        config.model.classes,
        config.train.class_weights.as_deref(),
        config.train.ignore_index,
        device,
    )?;
    Ok((images, targets))
}

/// Mean validation loss (weighted by batch size) and the pixel confusion matrix.
fn validate(
    model: &UNet,
    batches: &[HostBatch],
    config: &RunConfig,
    device: &Device,
) -> Result<(Option<f64>, Option<ConfusionMatrix>), TrainError> {
    if batches.is_empty() {
        return Ok((None, None));
    }
    let mut confusion = ConfusionMatrix::new(config.model.classes);
    let (mut sum, mut count) = (0.0, 0usize);
    for host in batches {
        let (images, targets) = to_device(host, config, device)?;
        let logits = model.forward(&images, false, false)?;
        sum += loss(config.train.loss, &logits, &targets)?.to_scalar::<f32>()? as f64
            * host.count as f64;
        count += host.count;
        let predicted = argmax_classes(&logits)?;
        confusion
            .add(&host.masks, &predicted, config.train.ignore_index)
            .map_err(TrainError::Invalid)?;
    }
    Ok((Some(sum / count as f64), Some(confusion)))
}

fn write_metrics(run_dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let path = run_dir.join("metrics.jsonl");
    let mut text = String::new();
    for line in history {
        text.push_str(&serde_json::to_string(line).expect("metrics serialise"));
        text.push('\n');
    }
    write_atomically(&path, text.as_bytes()).map_err(|source| TrainError::Io { path, source })
}

fn append_metrics(run_dir: &Path, metrics: &EpochMetrics) -> Result<(), TrainError> {
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

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
