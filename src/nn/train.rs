//! Training any family of the zoo (`nn::models::Family`): one-cycle AdamW over seeded,
//! augmented batches; validation, metrics and an atomic checkpoint after every epoch (and
//! every `checkpoint_every` steps); resuming from the checkpoint after a crash gives the
//! weights an uninterrupted run would have.
//!
//! The run folder (`nn::run`) gets `checkpoint.safetensors` (weights, optimiser, state) and
//! `best.safetensors` (the weights of the best validation epoch); inference takes the weights
//! of the one the configuration's `keep` names.

use super::checkpoint;
use super::config::{KeptWeights, RunConfig};
use super::data::{
    batches_per_epoch, eval_batches, train_batches, BatchPlan, Normalisation, Sample,
};
use super::device_memory;
use super::models::{self, Family, Figures, Mode};
use super::optim::{AdamW, OneCycle, StepRates};
use super::run::{
    append_metrics, write_metrics, Best, EpochMetrics, RunRecord, RunState, TrainError,
};
use crate::metrics::{macro_mean, ConfusionMatrix};
use crate::progress::Progress;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Where training stands, stored in the checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The epoch in progress (or the number done, at an epoch's end).
    epoch: usize,
    /// The next batch of that epoch.
    batch: usize,
    step: u64,
    loss_sum: f64,
    /// Sums of the loss's named parts over the epoch's steps so far.
    #[serde(default)]
    part_sums: BTreeMap<String, f64>,
    history: Vec<EpochMetrics>,
    best: Option<Best>,
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
    /// Names of the class ids, kept in the run's record.
    pub class_names: BTreeMap<usize, String>,
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
) -> Result<Box<dyn Family>, TrainError> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(models::build(config, vb)?)
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
        class_names,
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
    let model = models::build(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    model.initialise(&varmap, settings.seed)?;
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
        class_names,
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
        channels: config.model.in_channels(),
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
            let images = host.images_on(&device)?;
            let losses = model.losses(&images, &host, Mode::train(frozen))?;
            let scalar = losses.total.to_scalar::<f32>()?;
            if !scalar.is_finite() {
                return Err(TrainError::Diverged {
                    value: scalar,
                    step: state.step,
                    lr,
                });
            }
            let grads = losses.total.backward()?;
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
            for (name, part) in &losses.parts {
                let value = part.to_scalar::<f32>()? as f64;
                *state.part_sums.entry(name.to_string()).or_default() += value;
                progress.metric(&format!("train.loss.{name}"), state.step, value);
            }
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
        let evaluation = if validation_batches.is_empty() {
            None
        } else {
            let evaluator = inference_model(&config, weights, &device)?;
            Some(evaluator.evaluate(&validation_batches, &device)?)
        };
        let confusion = match evaluation.as_ref().map(|e| &e.figures) {
            Some(Figures::Pixels(confusion)) => Some(confusion),
            _ => None,
        };
        let scores = confusion.map(ConfusionMatrix::scores);
        let steps = state.batch.max(1) as f64;
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            train_loss,
            train_losses: state
                .part_sums
                .iter()
                .map(|(name, sum)| (name.clone(), sum / steps))
                .collect(),
            val_loss: evaluation.as_ref().map(|e| e.loss),
            lr,
            iou: scores.iter().flatten().map(|s| s.iou).collect(),
            f1: scores.iter().flatten().map(|s| s.f1).collect(),
            mean_iou: scores.as_ref().map(|s| macro_mean(s, |c| c.iou)),
            pixel_accuracy: confusion.map(ConfusionMatrix::accuracy),
            scores: match evaluation.map(|e| e.figures) {
                Some(Figures::Boxes(figures)) => figures,
                _ => BTreeMap::new(),
            },
            seconds,
            tiles_per_second: (trained * settings.batch) as f64 / seconds.max(1e-9),
            gpu_memory,
        };
        let val_loss = metrics.val_loss;
        // The figure the family is judged by (-1: COCO found nothing to score).
        let score = metrics
            .headline()
            .0
            .filter(|v| *v >= 0.0)
            .unwrap_or(-train_loss);
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
        state.part_sums.clear();
        save_checkpoint(&state, &optimiser)?;
        append_metrics(&run_dir, &metrics)?;
        progress.metric("train.epoch_loss", state.step, train_loss);
        if let Some(v) = val_loss {
            progress.metric("val.loss", state.step, v);
        }
        if let Some(m) = metrics.mean_iou {
            progress.metric("val.mean_iou", state.step, m);
        }
        if let Some(ap50) = metrics.scores.get("AP50") {
            progress.metric("val.ap50", state.step, *ap50);
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
                .or_else(|| metrics
                    .scores
                    .get("AP50")
                    .map(|ap| format!(", AP50 {ap:.3}")))
                .unwrap_or_default(),
            metrics.tiles_per_second
        ));
        record.epochs_done = state.history.len();
        record.step = state.step;
        record.best = state.best.clone();
        record.updated = now();
        if progress.stop_at_boundary() && state.epoch < settings.epochs {
            record.state = RunState::Cancelled;
            record.write(&run_dir)?;
            return Err(TrainError::Stopped {
                epoch: state.epoch,
                epochs: settings.epochs,
            });
        }
        record.write(&run_dir)?;
    }
    progress.finish();
    record.state = RunState::Finished;
    record.updated = now();
    record.write(&run_dir)?;
    Ok(record)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
