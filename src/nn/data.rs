//! Training samples in memory, seeded augmentation, and batches made on a background
//! thread so the network never waits for them.
//!
//! Every random choice is drawn from a generator seeded by (run seed, epoch, position), so
//! an epoch's batches are the same whichever step a run resumes at.

use super::config::Augment;
use candle_core::Tensor;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One chip, its class mask and its objects' boxes, samples in [0, 1], bands interleaved.
#[derive(Debug, Clone)]
pub struct Sample {
    pub image: Vec<f32>,
    pub mask: Vec<u8>,
    pub boxes: Vec<ClassBox>,
    pub width: usize,
    pub height: usize,
    pub bands: usize,
}

/// An object's box: its class id (the class map's, as in the mask) and `[x0, y0, x1, y1]`
/// in pixels of its chip (positions from the top-left corner, x0 < x1, y0 < y1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassBox {
    pub class: usize,
    pub bbox: [f32; 4],
}

/// A box cut by a training crop is kept when at least this share of it stays inside, the
/// rule tiling applies at chip edges by default (`--min-visible`).
pub const MIN_VISIBLE: f32 = 0.5;

/// Mean and standard deviation of the training samples, applied to every input.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalisation {
    pub mean: f32,
    pub std: f32,
}

impl Normalisation {
    pub fn of(samples: &[Sample]) -> Normalisation {
        let (mut sum, mut squares, mut count) = (0f64, 0f64, 0f64);
        for sample in samples {
            for &v in &sample.image {
                sum += v as f64;
                squares += (v as f64) * (v as f64);
                count += 1.0;
            }
        }
        if count == 0.0 {
            return Normalisation {
                mean: 0.0,
                std: 1.0,
            };
        }
        let mean = sum / count;
        let std = (squares / count - mean * mean).max(0.0).sqrt();
        Normalisation {
            mean: mean as f32,
            std: if std > 1e-6 { std as f32 } else { 1.0 },
        }
    }
}

/// A batch on the host: images (N, C, H, W) normalised, masks (N, H, W), and each image's
/// boxes, all moved by the same crop, flips and turns.
pub struct HostBatch {
    pub images: Vec<f32>,
    pub masks: Vec<u8>,
    pub boxes: Vec<Vec<ClassBox>>,
    pub count: usize,
    pub channels: usize,
    pub size: usize,
}

/// How a batch is drawn.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub batch: usize,
    /// Side of the square crops.
    pub tile: usize,
    /// Bands the model takes; greyscale samples are repeated to fill 3.
    pub channels: usize,
    pub normalisation: Normalisation,
    pub augment: Augment,
    pub seed: u64,
}

/// The order of the samples in `epoch`: a seeded shuffle.
pub fn epoch_order(samples: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..samples).collect();
    fastrand::Rng::with_seed(mix(seed, epoch as u64, u64::MAX)).shuffle(&mut order);
    order
}

/// Full training batches per epoch (the last partial one is dropped, as fastai does, so
/// batch norm never sees a batch of one).
pub fn batches_per_epoch(samples: usize, batch: usize) -> usize {
    samples / batch
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    // SplitMix64 finaliser over the three inputs: nearby inputs give unrelated streams.
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Starts a thread that makes the training batches of `epoch` from `first` on, two ahead.
pub fn train_batches(
    samples: Arc<Vec<Sample>>,
    plan: BatchPlan,
    epoch: usize,
    first: usize,
) -> (Receiver<HostBatch>, JoinHandle<()>) {
    let (send, receive) = sync_channel(2);
    let handle = std::thread::spawn(move || {
        let order = epoch_order(samples.len(), plan.seed, epoch);
        let count = batches_per_epoch(samples.len(), plan.batch);
        for index in first..count {
            let members = &order[index * plan.batch..(index + 1) * plan.batch];
            let mut batch = HostBatch::new(members.len(), plan.channels, plan.tile);
            for (slot, &sample) in members.iter().enumerate() {
                let mut rng = fastrand::Rng::with_seed(mix(
                    plan.seed,
                    epoch as u64,
                    (index * plan.batch + slot) as u64,
                ));
                batch.put(slot, &samples[sample], &plan, Some(&mut rng));
            }
            if send.send(batch).is_err() {
                return; // the trainer stopped
            }
        }
    });
    (receive, handle)
}

/// Validation batches: centre crops, no augmentation, every sample once.
pub fn eval_batches(samples: &[Sample], plan: &BatchPlan) -> Vec<HostBatch> {
    samples
        .chunks(plan.batch)
        .map(|chunk| {
            let mut batch = HostBatch::new(chunk.len(), plan.channels, plan.tile);
            for (slot, sample) in chunk.iter().enumerate() {
                batch.put(slot, sample, plan, None);
            }
            batch
        })
        .collect()
}

impl HostBatch {
    fn new(count: usize, channels: usize, size: usize) -> Self {
        HostBatch {
            images: vec![0.0; count * channels * size * size],
            masks: vec![0; count * size * size],
            boxes: vec![Vec::new(); count],
            count,
            channels,
            size,
        }
    }

    /// The images as a tensor (N, C, S, S) on `device`.
    pub fn images_on(&self, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        let size = self.size;
        Tensor::from_slice(
            &self.images,
            (self.count, self.channels, size, size),
            device,
        )
    }

    /// Writes `sample` into slot `slot`: a crop (random with `rng`, else centred), then with
    /// `rng` flips, a quarter turn and a brightness/contrast change; then normalised.
    fn put(
        &mut self,
        slot: usize,
        sample: &Sample,
        plan: &BatchPlan,
        mut rng: Option<&mut fastrand::Rng>,
    ) {
        let size = self.size;
        let (x0, y0) = match rng.as_deref_mut() {
            Some(rng) => (
                rng.usize(0..=sample.width - size),
                rng.usize(0..=sample.height - size),
            ),
            None => ((sample.width - size) / 2, (sample.height - size) / 2),
        };
        let augment = &plan.augment;
        let (mut flip_x, mut flip_y, mut turns, mut gain, mut shift) = (false, false, 0, 1.0, 0.0);
        let jittered = rng.is_some() && (augment.brightness > 0.0 || augment.contrast > 0.0);
        if let Some(rng) = rng {
            flip_x = augment.flips.horizontal() && rng.bool();
            flip_y = augment.flips.vertical() && rng.bool();
            if augment.rot90 {
                turns = rng.u8(0..4);
            }
            gain = 1.0 + augment.contrast * (rng.f32() * 2.0 - 1.0);
            shift = augment.brightness * (rng.f32() * 2.0 - 1.0);
        }
        self.boxes[slot] = sample
            .boxes
            .iter()
            .filter_map(|b| {
                let bbox = crop_box(b.bbox, (x0, y0), size)?;
                Some(ClassBox {
                    class: b.class,
                    bbox: place_box(bbox, size, turns, flip_x, flip_y),
                })
            })
            .collect();
        let mean = mean_of(sample);
        let norm = plan.normalisation;
        let plane = size * size;
        for y in 0..size {
            for x in 0..size {
                // Where output pixel (x, y) comes from in the crop: turn, then flip.
                let (mut u, mut v) = match turns {
                    0 => (x, y),
                    1 => (size - 1 - y, x),
                    2 => (size - 1 - x, size - 1 - y),
                    _ => (y, size - 1 - x),
                };
                if flip_x {
                    u = size - 1 - u;
                }
                if flip_y {
                    v = size - 1 - v;
                }
                let (sx, sy) = (x0 + u, y0 + v);
                let at = sy * sample.width + sx;
                self.masks[slot * plane + y * size + x] = sample.mask[at];
                for c in 0..self.channels {
                    let band = c.min(sample.bands - 1);
                    let raw = sample.image[at * sample.bands + band];
                    let value = if jittered {
                        ((raw - mean) * gain + mean + shift).clamp(0.0, 1.0)
                    } else {
                        raw
                    };
                    self.images[(slot * self.channels + c) * plane + y * size + x] =
                        (value - norm.mean) / norm.std;
                }
            }
        }
    }
}

/// `bbox` in the crop of side `size` at `corner`, cut at its edges; None when less than
/// [`MIN_VISIBLE`] of it (or nothing) stays inside.
fn crop_box(bbox: [f32; 4], corner: (usize, usize), size: usize) -> Option<[f32; 4]> {
    let (left, top, side) = (corner.0 as f32, corner.1 as f32, size as f32);
    let [x0, y0, x1, y1] = [bbox[0] - left, bbox[1] - top, bbox[2] - left, bbox[3] - top];
    let cut = [x0.max(0.0), y0.max(0.0), x1.min(side), y1.min(side)];
    let (width, height) = (cut[2] - cut[0], cut[3] - cut[1]);
    if width <= 0.0 || height <= 0.0 {
        return None;
    }
    let whole = (x1 - x0) * (y1 - y0);
    (width * height >= MIN_VISIBLE * whole).then_some(cut)
}

/// Where a box of the crop lands in the batch image that `put` makes: output pixel (x, y)
/// shows crop pixel (u, v) = turn(x, y), then mirrored; so a crop position goes through
/// the mirrorings, then the inverse turn. Positions map as p -> size - p where pixel indices
/// map as i -> size - 1 - i.
fn place_box(bbox: [f32; 4], size: usize, turns: u8, flip_x: bool, flip_y: bool) -> [f32; 4] {
    let side = size as f32;
    let place = |(mut u, mut v): (f32, f32)| -> (f32, f32) {
        if flip_x {
            u = side - u;
        }
        if flip_y {
            v = side - v;
        }
        match turns {
            0 => (u, v),
            1 => (v, side - u),
            2 => (side - u, side - v),
            _ => (side - v, u),
        }
    };
    let (ax, ay) = place((bbox[0], bbox[1]));
    let (bx, by) = place((bbox[2], bbox[3]));
    [ax.min(bx), ay.min(by), ax.max(bx), ay.max(by)]
}

fn mean_of(sample: &Sample) -> f32 {
    sample.image.iter().sum::<f32>() / sample.image.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::Flips;

    fn sample(size: usize) -> Sample {
        Sample {
            image: (0..size * size)
                .map(|i| i as f32 / (size * size) as f32)
                .collect(),
            mask: (0..size * size).map(|i| (i % 3) as u8).collect(),
            boxes: Vec::new(),
            width: size,
            height: size,
            bands: 1,
        }
    }

    fn plan(augment: Augment) -> BatchPlan {
        BatchPlan {
            batch: 2,
            tile: 4,
            channels: 1,
            normalisation: Normalisation {
                mean: 0.0,
                std: 1.0,
            },
            augment,
            seed: 7,
        }
    }

    #[test]
    fn geometric_augmentation_moves_image_and_mask_together() {
        let samples: Vec<Sample> = (0..4).map(|_| sample(6)).collect();
        let augment = Augment {
            brightness: 0.0,
            contrast: 0.0,
            ..Augment::default()
        };
        let (batches, thread) = train_batches(Arc::new(samples.clone()), plan(augment), 0, 0);
        let batches: Vec<HostBatch> = batches.iter().collect();
        thread.join().unwrap();
        assert_eq!(batches.len(), 2);
        let lookup = |value: f32| -> u8 {
            let index = samples[0].image.iter().position(|v| *v == value).unwrap();
            samples[0].mask[index]
        };
        for batch in &batches {
            for (pixel, mask) in batch.images.iter().zip(&batch.masks) {
                assert_eq!(lookup(*pixel), *mask, "pixel {pixel} kept its own class");
            }
        }
    }

    /// A bright rectangle's box, after crops, flips and turns, encloses exactly the bright
    /// pixels of the batch image.
    #[test]
    fn boxes_follow_the_crop_the_flips_and_the_turns() {
        let (side, tile) = (12, 8);
        let mut chip = sample(side);
        chip.image = vec![0.0; side * side];
        // Pixels x 5..8 and y 3..5 (positions 5 to 8 and 3 to 5).
        for y in 3..5 {
            for x in 5..8 {
                chip.image[y * side + x] = 1.0;
            }
        }
        chip.boxes = vec![ClassBox {
            class: 1,
            bbox: [5.0, 3.0, 8.0, 5.0],
        }];
        let samples: Vec<Sample> = (0..16).map(|_| chip.clone()).collect();
        let augment = Augment {
            brightness: 0.0,
            contrast: 0.0,
            ..Augment::default()
        };
        let mut plan = plan(augment);
        plan.tile = tile;
        let (batches, thread) = train_batches(Arc::new(samples), plan, 0, 0);
        let batches: Vec<HostBatch> = batches.iter().collect();
        thread.join().unwrap();
        let (mut whole, mut cut, mut gone) = (0, 0, 0);
        for batch in &batches {
            for (slot, boxes) in batch.boxes.iter().enumerate() {
                let image = &batch.images[slot * tile * tile..(slot + 1) * tile * tile];
                let bright: Vec<(usize, usize)> = (0..tile * tile)
                    .filter(|&i| image[i] > 0.5)
                    .map(|i| (i % tile, i / tile))
                    .collect();
                let Some(found) = boxes.first() else {
                    // Under half of the 6 bright pixels stayed in the crop.
                    assert!(bright.len() < 3, "{} bright pixels, no box", bright.len());
                    gone += 1;
                    continue;
                };
                assert_eq!(found.class, 1);
                let left = bright.iter().map(|p| p.0).min().unwrap() as f32;
                let right = bright.iter().map(|p| p.0).max().unwrap() as f32 + 1.0;
                let top = bright.iter().map(|p| p.1).min().unwrap() as f32;
                let bottom = bright.iter().map(|p| p.1).max().unwrap() as f32 + 1.0;
                assert_eq!(found.bbox, [left, top, right, bottom]);
                if bright.len() == 6 {
                    whole += 1;
                } else {
                    cut += 1;
                }
            }
        }
        assert!(
            whole > 0 && cut + gone > 0,
            "{whole} whole, {cut} cut, {gone} gone"
        );
    }

    #[test]
    fn vertical_flips_never_mirror_left_to_right() {
        let samples: Vec<Sample> = (0..8).map(|_| sample(6)).collect();
        let augment = Augment {
            flips: Flips::Vertical,
            rot90: false,
            brightness: 0.0,
            contrast: 0.0,
        };
        let (batches, thread) = train_batches(Arc::new(samples), plan(augment), 0, 0);
        let batches: Vec<HostBatch> = batches.iter().collect();
        thread.join().unwrap();
        let mut upside_down = 0;
        for chip in batches.iter().flat_map(|b| b.images.chunks(16)) {
            let rows: Vec<&[f32]> = chip.chunks(4).collect();
            for row in &rows {
                assert!(row.windows(2).all(|p| p[0] < p[1]), "mirrored row {row:?}");
            }
            if rows[0][0] > rows[3][0] {
                upside_down += 1;
            }
        }
        assert!(
            upside_down > 0 && upside_down < 8,
            "{upside_down} of 8 flipped"
        );
    }

    #[test]
    fn an_epoch_is_the_same_from_any_starting_batch() {
        let samples = Arc::new((0..6).map(|_| sample(6)).collect::<Vec<_>>());
        let (all, t1) = train_batches(samples.clone(), plan(Augment::default()), 3, 0);
        let all: Vec<HostBatch> = all.iter().collect();
        let (rest, t2) = train_batches(samples, plan(Augment::default()), 3, 1);
        let rest: Vec<HostBatch> = rest.iter().collect();
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(rest.len(), 2);
        for (a, b) in all[1..].iter().zip(&rest) {
            assert_eq!(a.images, b.images);
            assert_eq!(a.masks, b.masks);
        }
        assert_ne!(epoch_order(100, 7, 0), epoch_order(100, 7, 1));
    }

    #[test]
    fn evaluation_crops_the_centre_without_changes() {
        let mut s = sample(6);
        s.image = (0..36).map(|i| i as f32).collect();
        let batches = eval_batches(&[s], &plan(Augment::default()));
        assert_eq!(batches[0].images[0], 7.0, "(1, 1) of the 6 x 6 chip");
        assert_eq!(batches[0].images[15], 28.0, "(4, 4)");
    }
}
