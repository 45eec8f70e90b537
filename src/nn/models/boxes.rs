//! Box geometry the detecting families share: IoU and per-class non-maximum suppression.
//!
//! Boxes are `[x0, y0, x1, y1]` positions (pixel i spans i to i + 1), so a box's area is
//! `(x1 - x0) * (y1 - y0)`, as COCO and torchvision compute it. candle-transformers'
//! `object_detection` adds 1 to every side (the old VOC convention of inclusive pixel
//! indices), which for a 4 px crater turns an IoU of 0.6 into one of 0.68, and its sort
//! panics on a NaN score; so these are areo's own.

use super::Detection;

pub fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// The area two boxes share.
pub fn intersection(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let width = a[2].min(b[2]) - a[0].max(b[0]);
    let height = a[3].min(b[3]) - a[1].max(b[1]);
    width.max(0.0) * height.max(0.0)
}

/// Intersection over union; 0 for two empty boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let shared = intersection(a, b);
    let union = area(a) + area(b) - shared;
    if union > 0.0 {
        shared / union
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression within each class: boxes in order of `rank` (the first
/// first), each kept unless `suppresses(kept, it)` holds for a box of its class kept
/// before it; then at most `limit` kept, best first. Returns the kept boxes' indices.
pub fn suppress<K: Ord>(
    detections: &[Detection],
    rank: impl Fn(&Detection) -> K,
    suppresses: impl Fn(usize, usize) -> bool,
    limit: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..detections.len()).collect();
    order.sort_by_key(|&i| rank(&detections[i]));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() == limit {
            break;
        }
        let dropped = kept
            .iter()
            .any(|&k| detections[k].class == detections[i].class && suppresses(k, i));
        if !dropped {
            kept.push(i);
        }
    }
    kept
}

/// torchvision's `batched_nms`: per class, by score (ties: the earlier box), a box is
/// dropped when its IoU with a kept box exceeds `threshold`; at most `limit` kept.
pub fn nms(detections: &[Detection], threshold: f32, limit: usize) -> Vec<Detection> {
    let by_score = |d: &Detection| std::cmp::Reverse(OrderedScore(d.score));
    suppress(
        detections,
        by_score,
        |k, i| iou(&detections[k].bbox, &detections[i].bbox) > threshold,
        limit,
    )
    .into_iter()
    .map(|i| detections[i])
    .collect()
}

/// A box found on one chip of an image, in the image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetection {
    pub detection: Detection,
    /// Which chip found it.
    pub chip: usize,
    /// It touches an edge of its chip that lies inside the image (a seam), so it may be
    /// the cut part of an object the neighbouring chip sees whole.
    pub cut: bool,
}

/// The objects of a whole image from its overlapping chips' boxes: per class, whole boxes
/// before cut ones and then by score, a box is dropped when its IoU with a kept box exceeds
/// `threshold` (the same object seen by two chips), or when it is a cut box from another chip
/// lying mostly (over half its area) inside a kept one (an object's part at a seam).
pub fn merge_chips(found: &[ChipDetection], threshold: f32) -> Vec<Detection> {
    let detections: Vec<Detection> = found.iter().map(|f| f.detection).collect();
    let rank = |i: usize| {
        (
            found[i].cut,
            std::cmp::Reverse(OrderedScore(found[i].detection.score)),
        )
    };
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by_key(|&i| rank(i));
    let ranked: Vec<Detection> = order.iter().map(|&i| detections[i]).collect();
    // Already in order: `suppress`'s sort is stable under a constant key.
    suppress(
        &ranked,
        |_| 0u8,
        |k, i| {
            let (kept, other) = (&found[order[k]], &found[order[i]]);
            let (a, b) = (&kept.detection.bbox, &other.detection.bbox);
            iou(a, b) > threshold
                || (other.cut && kept.chip != other.chip && intersection(a, b) > 0.5 * area(b))
        },
        usize::MAX,
    )
    .into_iter()
    .map(|i| ranked[i])
    .collect()
}

/// A score ordered totally (NaN below every number), for sorting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderedScore(pub f32);

impl Eq for OrderedScore {}

impl PartialOrd for OrderedScore {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedScore {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self.0.is_nan(), other.0.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => self.0.total_cmp(&other.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(class: usize, bbox: [f32; 4], score: f32) -> Detection {
        Detection { class, bbox, score }
    }

    #[test]
    fn iou_of_positions_is_the_shared_area_over_the_union() {
        // Two 4 x 4 boxes shifted by one pixel: 12 shared of 20.
        assert_eq!(iou(&[0.0, 0.0, 4.0, 4.0], &[1.0, 0.0, 5.0, 4.0]), 0.6);
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[2.0, 0.0, 4.0, 2.0]), 0.0);
        assert_eq!(iou(&[1.0, 1.0, 1.0, 1.0], &[1.0, 1.0, 1.0, 1.0]), 0.0);
    }

    /// An object across a seam: chip 0 sees it whole, chip 1 its cut right part at a higher
    /// score; a nested small crater inside it, seen whole by chip 1, stays.
    #[test]
    fn seams_keep_each_object_once() {
        let chip = |chip, bbox, score, cut| ChipDetection {
            detection: detection(1, bbox, score),
            chip,
            cut,
        };
        let found = [
            chip(0, [90.0, 10.0, 110.0, 30.0], 0.7, false),
            chip(1, [100.0, 10.0, 110.0, 30.0], 0.9, true), // IoU 0.5, inside the whole one
            chip(1, [100.0, 15.0, 104.0, 19.0], 0.6, false),
            chip(0, [90.0, 10.0, 110.0, 30.0], 0.65, false), // the same box twice
        ];
        let merged = merge_chips(&found, 0.5);
        assert_eq!(
            merged,
            vec![found[0].detection, found[2].detection],
            "the whole box, then the nested crater"
        );
    }

    #[test]
    fn nms_keeps_the_best_of_each_overlapping_group_per_class() {
        let found = [
            detection(1, [0.0, 0.0, 10.0, 10.0], 0.8),
            detection(1, [1.0, 0.0, 11.0, 10.0], 0.9), // IoU 9/11 with the first
            detection(2, [1.0, 0.0, 11.0, 10.0], 0.3), // another class: kept
            detection(1, [20.0, 20.0, 30.0, 30.0], 0.5),
            detection(1, [0.0, 0.0, 10.0, 10.0], f32::NAN),
        ];
        let kept = nms(&found, 0.5, 10);
        assert_eq!(kept, vec![found[1], found[3], found[2]]);
        assert_eq!(nms(&found, 0.5, 2), vec![found[1], found[3]]);
        // Above 9/11, the two overlapping boxes both stay.
        assert_eq!(nms(&found, 0.85, 10).len(), 4);
    }
}
