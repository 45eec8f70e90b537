//! The model zoo: one folder per family (`unet/`, `ssd/`), each plain structs with a `forward`
//! built from a `VarBuilder` (candle-transformers' layout and weight-naming), its backbone
//! from `nn::backbone` mounted as `encoder.`.
//!
//! A family plugs into the shared training loop (`nn::train`), inference driver (`nn::infer`)
//! and run folder through [`Family`]: what a batch's loss is, how a validation pass scores,
//! and what a chip's prediction holds. Everything else (epochs, schedule, optimiser,
//! checkpoints, resume, cancellation, progress, tiling) is written once.

pub mod boxes;
pub mod ssd;
pub mod unet;

use super::config::RunConfig;
use super::data::HostBatch;
use crate::metrics::ConfusionMatrix;
use candle_core::{Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use std::collections::BTreeMap;

/// How a forward pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Batch statistics (and a graph for the gradient) instead of the running ones.
    pub train: bool,
    /// The backbone's maps are detached, so its weights get no gradient.
    pub frozen_encoder: bool,
}

impl Mode {
    pub const EVAL: Mode = Mode {
        train: false,
        frozen_encoder: false,
    };

    pub fn train(frozen_encoder: bool) -> Mode {
        Mode {
            train: true,
            frozen_encoder,
        }
    }
}

/// A batch's loss: the total that is minimised, and its named parts when it has several
/// (an SSD's `class` and `box`), each already weighted as the total adds them.
pub struct Losses {
    pub total: Tensor,
    pub parts: Vec<(&'static str, Tensor)>,
}

/// What a validation pass found.
pub enum Figures {
    /// Pixels: truth class by predicted class.
    Pixels(ConfusionMatrix),
    /// Boxes: COCO's summary figures by name (`AP`, `AP50`, `AR100`, ...).
    Boxes(BTreeMap<String, f64>),
}

pub struct Evaluation {
    /// Mean loss per chip.
    pub loss: f64,
    pub figures: Figures,
}

/// One object found on a chip or an image: its class id (as the class map numbers it, 0
/// being background), box `[x0, y0, x1, y1]` in pixels (positions from the top-left corner)
/// and score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: usize,
    pub bbox: [f32; 4],
    pub score: f32,
}

/// A batch of chips' prediction.
pub enum ChipPrediction {
    /// Class probabilities (N, C, S, S), blended across chip overlaps.
    Planes(Tensor),
    /// Each chip's objects in its pixels, merged across chip seams.
    Boxes(Vec<Vec<Detection>>),
}

/// A model family as the training loop and the inference driver see it.
pub trait Family {
    /// Sets every variable from `seed` (the shared rule by default; a family may then set
    /// its own priors).
    fn initialise(&self, varmap: &VarMap, seed: u64) -> Result<()> {
        super::init::initialise(varmap, seed)
    }

    /// The loss of one batch: `images` (N, C, S, S) on the device, the targets from `batch`.
    fn losses(&self, images: &Tensor, batch: &HostBatch, mode: Mode) -> Result<Losses>;

    /// A validation pass over `batches` (this model holding inference weights).
    fn evaluate(&self, batches: &[HostBatch], device: &Device) -> Result<Evaluation>;

    /// What a batch of normalised chips (N, C, S, S) shows.
    fn predict(&self, images: &Tensor) -> Result<ChipPrediction>;
}

/// The family `config` names, its variables from `vb`.
pub fn build(config: &RunConfig, vb: VarBuilder) -> Result<Box<dyn Family>> {
    use super::config::ModelConfig;
    Ok(match &config.model {
        ModelConfig::UNet(model) => Box::new(unet::UNetFamily::new(model, &config.train, vb)?),
        ModelConfig::Ssd(model) => Box::new(ssd::Ssd::new(model, config.train.tile, vb)?),
    })
}

/// A 3 x 3 convolution with bias, the last layer of a head.
pub(crate) struct HeadConv {
    weight: Tensor,
    bias: Tensor,
}

impl HeadConv {
    pub(crate) fn new(vb: VarBuilder, input: usize, output: usize) -> Result<Self> {
        let weight = vb.get_with_hints(
            (output, input, 3, 3),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        // candle_nn::conv2d's bias initialisation (`nn::init` draws seeded values later).
        let bound = 1. / (input as f64).sqrt();
        let bias = vb.get_with_hints(
            output,
            "bias",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(HeadConv { weight, bias })
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        use super::kernels;
        if train {
            kernels::conv2d(x, &self.weight, 1, 1)?.broadcast_add(&self.bias.reshape((
                1,
                (),
                1,
                1,
            ))?)
        } else {
            kernels::conv2d_bias(x, &self.weight.detach(), &self.bias.detach(), 1, 1, false)
        }
    }
}
