//! SSD: the ResNet backbone (`encoder.`, torchvision's names) with a head on each map the
//! configuration's grids pick (`heads.N.`): a 3x3 conv-BN-ReLU, then 3x3 convolutions giving
//! every anchor of every cell a logit per foreground class and four box offsets. Trained with
//! focal loss and L1 (`loss`) on anchors matched by IoU (`anchors`); a chip's boxes are the
//! decoded anchors above the least score, suppressed per class (`nn::models::boxes`).

pub mod anchors;
pub mod loss;

use super::boxes::nms;
use super::{ChipPrediction, Detection, Evaluation, Family, Figures, HeadConv, Losses, Mode};
use crate::metrics::coco::{box_figures, ImageBox};
use crate::nn::backbone::resnet::{ConvBn, Encoder};
use crate::nn::config::{SsdConfig, BACKBONE_STRIDES};
use crate::nn::data::HostBatch;
use candle_core::{Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use loss::Targets;

/// Candidates per chip and class before suppression (torchvision's RetinaNet keeps 1000).
const CANDIDATES: usize = 1000;

/// RetinaNet's prior: every anchor starts at this foreground probability, so the many
/// background anchors do not swamp the first steps' loss.
const PRIOR: f64 = 0.01;

struct Head {
    hidden: ConvBn,
    classes: HeadConv,
    boxes: HeadConv,
}

pub struct Ssd {
    encoder: Encoder,
    heads: Vec<Head>,
    /// Which backbone map each head reads (0: the stem's).
    maps: Vec<usize>,
    strides: Vec<u32>,
    pub config: SsdConfig,
}

impl Ssd {
    /// The network for training chips of `tile` pixels (which fixes each head's stride).
    pub fn new(config: &SsdConfig, tile: u32, vb: VarBuilder) -> Result<Self> {
        let (blocks, widths) = config.shape().map_err(candle_core::Error::msg)?;
        let encoder = Encoder::new(vb.pp("encoder"), config.in_channels, blocks, widths)?;
        let strides = config.strides(tile);
        let per_cell = anchors::per_cell(config);
        let foreground = config.classes - 1;
        let mut heads = Vec::new();
        let mut maps = Vec::new();
        for (i, stride) in strides.iter().enumerate() {
            let map = BACKBONE_STRIDES
                .iter()
                .position(|s| s == stride)
                .ok_or_else(|| {
                    candle_core::Error::msg(format!("no backbone map at stride {stride}"))
                })?;
            let vb = vb.pp(format!("heads.{i}"));
            heads.push(Head {
                hidden: ConvBn::new(
                    vb.pp("conv"),
                    vb.pp("bn"),
                    widths[map],
                    config.head,
                    3,
                    1,
                    1,
                )?,
                classes: HeadConv::new(vb.pp("classes"), config.head, per_cell * foreground)?,
                boxes: HeadConv::new(vb.pp("boxes"), config.head, per_cell * 4)?,
            });
            maps.push(map);
        }
        Ok(Ssd {
            encoder,
            heads,
            maps,
            strides,
            config: config.clone(),
        })
    }

    /// Class logits (N, A, classes - 1) and box offsets (N, A, 4) for every anchor, in the
    /// order `anchors::anchors` lists them.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<(Tensor, Tensor)> {
        let (n, _, h, w) = x.dims4()?;
        let deepest = *self.strides.iter().max().expect("a head") as usize;
        if !h.is_multiple_of(deepest) || !w.is_multiple_of(deepest) {
            candle_core::bail!("input is {w} x {h}: both sides must be multiples of {deepest}")
        }
        let mut features = self.encoder.forward_t(x, mode.train)?;
        if mode.frozen_encoder {
            features = features.iter().map(Tensor::detach).collect();
        }
        let foreground = self.config.classes - 1;
        let per_cell = anchors::per_cell(&self.config);
        let (mut classes, mut boxes) = (Vec::new(), Vec::new());
        for (head, &map) in self.heads.iter().zip(&self.maps) {
            let hidden = head.hidden.forward_t(&features[map], mode.train, true)?;
            // (N, a * K, h, w) -> (N, h, w, a, K) -> (N, h * w * a, K).
            let flatten = |y: Tensor, k: usize| -> Result<Tensor> {
                let (_, _, rows, columns) = y.dims4()?;
                y.reshape((n, per_cell, k, rows, columns))?
                    .permute((0, 3, 4, 1, 2))?
                    .contiguous()?
                    .reshape((n, rows * columns * per_cell, k))
            };
            classes.push(flatten(
                head.classes.forward_t(&hidden, mode.train)?,
                foreground,
            )?);
            boxes.push(flatten(head.boxes.forward_t(&hidden, mode.train)?, 4)?);
        }
        Ok((Tensor::cat(&classes, 1)?, Tensor::cat(&boxes, 1)?))
    }

    fn anchors(&self, size: usize) -> Vec<[f32; 4]> {
        anchors::anchors(&self.config, &self.strides, size, size)
    }

    /// The batch's boxes matched to the anchors of its chips, on `device`.
    fn targets(&self, batch: &HostBatch, device: &Device) -> Result<Targets> {
        let anchors = self.anchors(batch.size);
        let matched = batch
            .boxes
            .iter()
            .map(|objects| anchors::match_anchors(&anchors, objects, &self.config))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(candle_core::Error::msg)?;
        Targets::new(&matched, anchors.len(), self.config.classes - 1, device)
    }

    fn losses_of(&self, classes: &Tensor, offsets: &Tensor, targets: &Targets) -> Result<Losses> {
        let config = &self.config;
        let scale = 1.0 / targets.positives.max(1) as f64;
        let class =
            (loss::focal_sum(classes, targets, config.focal_alpha, config.focal_gamma)? * scale)?;
        let boxes = (loss::l1_sum(offsets, targets)? * (scale * config.box_weight))?;
        Ok(Losses {
            total: (&class + &boxes)?,
            parts: vec![("class", class), ("box", boxes)],
        })
    }

    /// Each chip's detections: anchors scoring at least `min_score` for a class (the best
    /// `CANDIDATES` of each class), decoded, cut at the chip's edges and suppressed.
    fn detections(
        &self,
        classes: &Tensor,
        offsets: &Tensor,
        size: usize,
    ) -> Result<Vec<Vec<Detection>>> {
        let anchors = self.anchors(size);
        let foreground = self.config.classes - 1;
        let scores = candle_nn::ops::sigmoid(classes)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let offsets = offsets.flatten_all()?.to_vec1::<f32>()?;
        let per_chip = anchors.len();
        let side = size as f32;
        let mut chips = Vec::new();
        for chip in 0..scores.len() / (per_chip * foreground) {
            let mut candidates = Vec::new();
            for k in 0..foreground {
                let mut class: Vec<(f32, usize)> = (0..per_chip)
                    .map(|a| (scores[(chip * per_chip + a) * foreground + k], a))
                    .filter(|(score, _)| *score >= self.config.min_score as f32)
                    .collect();
                class.sort_by(|a, b| b.0.total_cmp(&a.0));
                class.truncate(CANDIDATES);
                for (score, a) in class {
                    let at = (chip * per_chip + a) * 4;
                    let b = anchors::decode(&anchors[a], &offsets[at..at + 4]);
                    let bbox = [b[0].max(0.0), b[1].max(0.0), b[2].min(side), b[3].min(side)];
                    if bbox[2] > bbox[0] && bbox[3] > bbox[1] {
                        candidates.push(Detection {
                            class: k + 1,
                            bbox,
                            score,
                        });
                    }
                }
            }
            chips.push(nms(
                &candidates,
                self.config.nms_iou as f32,
                self.config.max_detections,
            ));
        }
        Ok(chips)
    }
}

impl Family for Ssd {
    fn initialise(&self, varmap: &VarMap, seed: u64) -> Result<()> {
        crate::nn::init::initialise(varmap, seed)?;
        let prior = -((1.0 - PRIOR) / PRIOR).ln();
        let data = varmap.data().lock().expect("varmap lock");
        for (name, var) in data.iter() {
            if name.starts_with("heads.") && name.ends_with(".classes.bias") {
                var.set(&var.ones_like()?.affine(prior, 0.0)?)?;
            }
        }
        Ok(())
    }

    fn losses(&self, images: &Tensor, batch: &HostBatch, mode: Mode) -> Result<Losses> {
        let targets = self.targets(batch, images.device())?;
        let (classes, offsets) = self.forward(images, mode)?;
        self.losses_of(&classes, &offsets, &targets)
    }

    fn evaluate(&self, batches: &[HostBatch], device: &Device) -> Result<Evaluation> {
        let (mut sum, mut count) = (0.0, 0usize);
        let (mut truth, mut found) = (Vec::new(), Vec::new());
        for batch in batches {
            let images = batch.images_on(device)?;
            let targets = self.targets(batch, device)?;
            let (classes, offsets) = self.forward(&images, Mode::EVAL)?;
            let losses = self.losses_of(&classes, &offsets, &targets)?;
            sum += losses.total.to_scalar::<f32>()? as f64 * batch.count as f64;
            let chips = self.detections(&classes, &offsets, batch.size)?;
            for (slot, (objects, detections)) in batch.boxes.iter().zip(chips).enumerate() {
                let image = count + slot;
                truth.extend(objects.iter().map(|o| ImageBox {
                    image,
                    class: o.class,
                    bbox: o.bbox.map(f64::from),
                    score: None,
                }));
                found.extend(detections.iter().map(|d| ImageBox {
                    image,
                    class: d.class,
                    bbox: d.bbox.map(f64::from),
                    score: Some(d.score as f64),
                }));
            }
            count += batch.count;
        }
        let classes: Vec<usize> = (1..self.config.classes).collect();
        let figures =
            box_figures(&truth, &found, count, &classes).map_err(candle_core::Error::msg)?;
        Ok(Evaluation {
            loss: sum / count.max(1) as f64,
            figures: Figures::Boxes(figures),
        })
    }

    fn predict(&self, images: &Tensor) -> Result<ChipPrediction> {
        let (_, _, size, _) = images.dims4()?;
        let (classes, offsets) = self.forward(images, Mode::EVAL)?;
        Ok(ChipPrediction::Boxes(
            self.detections(&classes, &offsets, size)?,
        ))
    }
}
