//! Anchors, the matching of anchors to objects, and the offsets a head predicts.
//!
//! Each head's map has a cell every `stride` pixels; every cell has one anchor per zoom and
//! ratio, centred on the cell, `stride * zoom` across (times sqrt(ratio) wide and divided by
//! it high). Anchors are listed head by head, then row, column, zoom, ratio: the order the
//! heads' outputs are flattened in.

use crate::nn::config::SsdConfig;
use crate::nn::data::ClassBox;
use crate::nn::models::boxes::iou;

/// SSD's and torchvision's box-coder variances: centre offsets are in tenths of the anchor,
/// log sizes in fifths.
const CENTRE_SCALE: f32 = 1.0;
const SIZE_SCALE: f32 = 1.0;
/// torchvision's clamp on decoded log sizes (a box at most 1000/16 times its anchor).
const MAX_LOG_SIZE: f32 = 4.135_166_6;

/// Every anchor of a `width` x `height` input, `[x0, y0, x1, y1]`.
pub fn anchors(config: &SsdConfig, strides: &[u32], width: usize, height: usize) -> Vec<[f32; 4]> {
    let mut all = Vec::new();
    for &stride in strides {
        let s = stride as usize;
        let (columns, rows) = (width.div_ceil(s), height.div_ceil(s));
        for y in 0..rows {
            for x in 0..columns {
                let centre = ((x as f32 + 0.5) * s as f32, (y as f32 + 0.5) * s as f32);
                for &zoom in &config.zooms {
                    for &ratio in &config.ratios {
                        let side = stride as f32 * zoom as f32;
                        let (w, h) = (side * (ratio as f32).sqrt(), side / (ratio as f32).sqrt());
                        all.push([
                            centre.0 - w / 2.0,
                            centre.1 - h / 2.0,
                            centre.0 + w / 2.0,
                            centre.1 + h / 2.0,
                        ]);
                    }
                }
            }
        }
    }
    all
}

/// Anchors per cell.
pub fn per_cell(config: &SsdConfig) -> usize {
    config.zooms.len() * config.ratios.len()
}

/// One image's training targets, anchor by anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// (anchors, classes - 1): 1 in the column of the object's class (class id - 1).
    pub classes: Vec<f32>,
    /// (anchors): 0 for an anchor between the background and match IoUs (left out).
    pub counted: Vec<f32>,
    /// (anchors, 4): the encoded offsets of the matched object (0 elsewhere).
    pub offsets: Vec<f32>,
    /// (anchors): 1 where an anchor learns an object.
    pub positive: Vec<f32>,
    pub positives: usize,
}

/// Matches `objects` to `anchors`: an anchor learns the object it overlaps most if that IoU
/// is at least `match_iou`, background below `background_iou`, nothing in between; every
/// object also keeps the anchor that overlaps it most (so a small crater between anchors
/// is still learnt). An object of class 0 (background) or beyond `classes` is an error.
pub fn match_anchors(
    anchors: &[[f32; 4]],
    objects: &[ClassBox],
    config: &SsdConfig,
) -> Result<Matched, String> {
    let foreground = config.classes - 1;
    for object in objects {
        if object.class == 0 || object.class > foreground {
            return Err(format!(
                "a box of class id {} (the model's classes are 1 to {foreground}; 0 is \
                 background)",
                object.class
            ));
        }
    }
    let count = anchors.len();
    // The best object of every anchor, by IoU (ties: the earlier object).
    let mut best: Vec<(f32, usize)> = vec![(0.0, usize::MAX); count];
    let mut forced: Vec<Option<usize>> = vec![None; count];
    for (o, object) in objects.iter().enumerate() {
        let mut own = (0.0f32, usize::MAX);
        for (a, anchor) in anchors.iter().enumerate() {
            let overlap = iou(anchor, &object.bbox);
            if overlap > best[a].0 {
                best[a] = (overlap, o);
            }
            if overlap > own.0 {
                own = (overlap, a);
            }
        }
        if own.1 != usize::MAX {
            forced[own.1] = Some(o);
        }
    }
    let mut matched = Matched {
        classes: vec![0.0; count * foreground],
        counted: vec![1.0; count],
        offsets: vec![0.0; count * 4],
        positive: vec![0.0; count],
        positives: 0,
    };
    for a in 0..count {
        let object = match forced[a] {
            Some(o) => o,
            None if best[a].0 >= config.match_iou as f32 => best[a].1,
            None if best[a].0 >= config.background_iou as f32 => {
                matched.counted[a] = 0.0;
                continue;
            }
            None => continue,
        };
        let target = &objects[object];
        matched.classes[a * foreground + target.class - 1] = 1.0;
        matched.positive[a] = 1.0;
        matched.positives += 1;
        matched.offsets[a * 4..a * 4 + 4].copy_from_slice(&encode(&anchors[a], &target.bbox));
    }
    Ok(matched)
}

fn centre_size(b: &[f32; 4]) -> [f32; 4] {
    [
        (b[0] + b[2]) / 2.0,
        (b[1] + b[3]) / 2.0,
        b[2] - b[0],
        b[3] - b[1],
    ]
}

/// The offsets that move `anchor` onto `target` (both of positive size).
pub fn encode(anchor: &[f32; 4], target: &[f32; 4]) -> [f32; 4] {
    let [ax, ay, aw, ah] = centre_size(anchor);
    let [tx, ty, tw, th] = centre_size(target);
    [
        (tx - ax) / aw * CENTRE_SCALE,
        (ty - ay) / ah * CENTRE_SCALE,
        (tw / aw).ln() * SIZE_SCALE,
        (th / ah).ln() * SIZE_SCALE,
    ]
}

/// The box `offsets` make of `anchor`.
pub fn decode(anchor: &[f32; 4], offsets: &[f32]) -> [f32; 4] {
    let [ax, ay, aw, ah] = centre_size(anchor);
    let x = ax + offsets[0] / CENTRE_SCALE * aw;
    let y = ay + offsets[1] / CENTRE_SCALE * ah;
    let w = aw * (offsets[2] / SIZE_SCALE).min(MAX_LOG_SIZE).exp();
    let h = ah * (offsets[3] / SIZE_SCALE).min(MAX_LOG_SIZE).exp();
    [x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SsdConfig {
        toml::from_str(
            r#"
            encoder = "resnet"
            blocks = [1, 1, 1, 1]
            in_channels = 1
            classes = 3
            grids = [4, 2]
            zooms = [1.0, 2.0]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn anchors_sit_on_each_cell_head_by_head() {
        // A 16 px input: strides 4 and 8 give 4 x 4 and 2 x 2 cells, two zooms each.
        let all = anchors(&config(), &[4, 8], 16, 16);
        assert_eq!(all.len(), (16 + 4) * 2);
        assert_eq!(all[0], [0.0, 0.0, 4.0, 4.0]);
        assert_eq!(all[1], [-2.0, -2.0, 6.0, 6.0]);
        // Row 0, column 1.
        assert_eq!(all[2], [4.0, 0.0, 8.0, 4.0]);
        // The second head's first cell.
        assert_eq!(all[32], [0.0, 0.0, 8.0, 8.0]);
        let mut wide = config();
        wide.ratios = vec![4.0];
        wide.zooms = vec![1.0];
        assert_eq!(anchors(&wide, &[4], 4, 4), vec![[-2.0, 1.0, 6.0, 3.0]]);
    }

    #[test]
    fn offsets_decode_back_to_their_box() {
        let anchor = [10.0, 20.0, 18.0, 24.0];
        let target = [11.5, 19.0, 23.0, 27.5];
        let offsets = encode(&anchor, &target);
        let back = decode(&anchor, &offsets);
        for (a, b) in back.iter().zip(target) {
            assert!((a - b).abs() < 1e-5, "{back:?}");
        }
        assert_eq!(encode(&anchor, &anchor), [0.0; 4]);
    }

    #[test]
    fn anchors_learn_their_object_background_or_nothing() {
        let config = config();
        let anchors = [
            [0.0, 0.0, 4.0, 4.0],     // IoU 1 with object 1
            [1.0, 0.0, 5.0, 4.0],     // 0.6: positive
            [2.0, 0.0, 6.0, 4.0],     // 8/24: background
            [0.0, 1.0, 4.0, 4.75],    // 12/19: positive
            [1.5, 0.0, 5.5, 4.0],     // 10/22: left out
            [20.0, 20.0, 22.0, 22.0], // 1/7 with object 2, its best: forced positive
            [20.0, 20.0, 30.0, 30.0], // 4/100: background
        ];
        let objects = [
            ClassBox {
                class: 2,
                bbox: [0.0, 0.0, 4.0, 4.0],
            },
            ClassBox {
                class: 1,
                bbox: [21.0, 21.0, 23.0, 23.0],
            },
        ];
        let m = match_anchors(&anchors, &objects, &config).unwrap();
        assert_eq!(m.positive, [1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.counted, [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        assert_eq!(m.positives, 4);
        // Class ids 1 and 2 are columns 0 and 1.
        assert_eq!(&m.classes[..4], [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(&m.classes[10..12], [1.0, 0.0]);
        assert_eq!(&m.offsets[..4], [0.0; 4]);
        let error = match_anchors(
            &anchors,
            &[ClassBox {
                class: 3,
                bbox: [0.0, 0.0, 1.0, 1.0],
            }],
            &config,
        )
        .unwrap_err();
        assert!(error.contains("class id 3"), "{error}");
    }
}
