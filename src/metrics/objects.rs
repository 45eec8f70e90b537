//! Object-level scores: connected components of a class, matched one-to-one between truth
//! and prediction, and craters (components as circles) matched to a crater list.

use super::DetectionScores;
use std::collections::HashMap;

/// Connected components (8-neighbourhood) of the pixels equal to `class` in a `width`-wide
/// mask: a label per pixel (0 = not in the class, components numbered from 1) and the count.
pub fn components(mask: &[u8], width: usize, class: u8) -> (Vec<u32>, u32) {
    let height = mask.len().checked_div(width).unwrap_or(0);
    let mut labels = vec![0u32; mask.len()];
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] != class || labels[start] != 0 {
            continue;
        }
        next += 1;
        labels[start] = next;
        stack.push(start);
        while let Some(at) = stack.pop() {
            let (x, y) = ((at % width) as i64, (at / width) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let n = ny as usize * width + nx as usize;
                    if mask[n] == class && labels[n] == 0 {
                        labels[n] = next;
                        stack.push(n);
                    }
                }
            }
        }
    }
    (labels, next)
}

/// Components of `class` in truth and prediction matched one-to-one at IoU >= 0.5, greedily
/// by decreasing IoU (at that threshold a component can overlap at most one other by more
/// than half, so greedy order does not change the count).
pub fn match_objects(truth: &[u8], predicted: &[u8], width: usize, class: u8) -> DetectionScores {
    let (true_labels, true_count) = components(truth, width, class);
    let (pred_labels, pred_count) = components(predicted, width, class);
    let mut true_area = vec![0u64; true_count as usize + 1];
    let mut pred_area = vec![0u64; pred_count as usize + 1];
    let mut overlap: HashMap<(u32, u32), u64> = HashMap::new();
    for (&t, &p) in true_labels.iter().zip(&pred_labels) {
        true_area[t as usize] += 1;
        pred_area[p as usize] += 1;
        if t != 0 && p != 0 {
            *overlap.entry((t, p)).or_default() += 1;
        }
    }
    let mut pairs: Vec<(f64, u32, u32)> = overlap
        .into_iter()
        .map(|((t, p), both)| {
            let union = true_area[t as usize] + pred_area[p as usize] - both;
            (both as f64 / union as f64, t, p)
        })
        .filter(|(iou, _, _)| *iou >= 0.5)
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let matched = greedy_pairs(pairs.into_iter().map(|(_, t, p)| (t, p)));
    DetectionScores::new(pred_count as usize, true_count as usize, matched)
}

fn greedy_pairs(pairs: impl Iterator<Item = (u32, u32)>) -> usize {
    let (mut used_true, mut used_pred) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    let mut matched = 0;
    for (t, p) in pairs {
        if !used_true.contains(&t) && !used_pred.contains(&p) {
            used_true.insert(t);
            used_pred.insert(p);
            matched += 1;
        }
    }
    matched
}

/// A crater: centre (pixels, x right, y down) and diameter (pixels).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Circle {
    pub x: f64,
    pub y: f64,
    pub diameter: f64,
}

/// Each component of `class` as a circle: its centroid (pixel centres at whole coordinates,
/// as crater lists and the rasteriser place them) and the
/// diameter of a disc of the same area, divided by `fill` (the fraction of the crater's
/// diameter its training disc covered). Components smaller than `min_pixels` are dropped.
pub fn circles(mask: &[u8], width: usize, class: u8, fill: f64, min_pixels: u64) -> Vec<Circle> {
    let (labels, count) = components(mask, width, class);
    let mut sums = vec![(0f64, 0f64, 0u64); count as usize + 1];
    for (i, &label) in labels.iter().enumerate() {
        if label != 0 {
            let entry = &mut sums[label as usize];
            entry.0 += (i % width) as f64;
            entry.1 += (i / width) as f64;
            entry.2 += 1;
        }
    }
    sums.into_iter()
        .skip(1)
        .filter(|(_, _, n)| *n >= min_pixels.max(1))
        .map(|(sx, sy, n)| Circle {
            x: sx / n as f64,
            y: sy / n as f64,
            diameter: 2.0 * (n as f64 / std::f64::consts::PI).sqrt() / fill,
        })
        .collect()
}

/// PyCDA's rule: a prediction matches a true crater when the distance in (x, y, diameter)
/// divided by the true diameter is at most `threshold` (0.4); one-to-one, greedily by
/// increasing distance.
pub fn match_craters(predicted: &[Circle], truth: &[Circle], threshold: f64) -> DetectionScores {
    let mut pairs = Vec::new();
    for (p, a) in predicted.iter().enumerate() {
        for (t, b) in truth.iter().enumerate() {
            let distance =
                ((a.x - b.x).powi(2) + (a.y - b.y).powi(2) + (a.diameter - b.diameter).powi(2))
                    .sqrt()
                    / b.diameter;
            if distance <= threshold {
                pairs.push((distance, t as u32, p as u32));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let matched = greedy_pairs(pairs.into_iter().map(|(_, t, p)| (t, p)));
    DetectionScores::new(predicted.len(), truth.len(), matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_join_diagonal_neighbours() {
        #[rustfmt::skip]
        let mask = [
            1, 0, 0, 1,
            0, 1, 0, 1,
            0, 0, 0, 0,
            1, 1, 0, 0,
        ];
        let (labels, count) = components(&mask, 4, 1);
        assert_eq!(count, 3);
        assert_eq!(
            labels[0], labels[5],
            "diagonal neighbours are one component"
        );
        assert_eq!(labels[3], labels[7]);
        assert_ne!(labels[12], labels[0]);
    }

    #[test]
    fn objects_match_at_half_overlap_one_to_one() {
        #[rustfmt::skip]
        let truth = [
            1, 1, 0, 0, 0, 1,
            1, 1, 0, 0, 0, 1,
        ];
        // First object: 4 true pixels, 2 predicted inside -> IoU 0.5, matched.
        // Second: 2 true pixels, prediction of 2 shifted left by one column is separate:
        // overlap 0 -> unmatched; so P 1/2, R 1/2.
        #[rustfmt::skip]
        let predicted = [
            1, 0, 0, 0, 1, 0,
            1, 0, 0, 0, 1, 0,
        ];
        let scores = match_objects(&truth, &predicted, 6, 1);
        assert_eq!((scores.truth, scores.predicted, scores.matched), (2, 2, 1));
        assert!((scores.f1 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn circles_recover_centre_and_diameter_of_a_disc() {
        let (width, cx, cy, r) = (40usize, 20.0, 15.0, 8.0);
        let mask: Vec<u8> = (0..width * 32)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                u8::from((x - cx).powi(2) + (y - cy).powi(2) <= r * r)
            })
            .collect();
        let found = circles(&mask, width, 1, 1.0, 1);
        assert_eq!(found.len(), 1);
        assert!((found[0].x - cx).abs() < 1e-9 && (found[0].y - cy).abs() < 1e-9);
        assert!(
            (found[0].diameter - 16.0).abs() < 0.3,
            "{}",
            found[0].diameter
        );
        let halved = circles(&mask, width, 1, 0.5, 1);
        assert!((halved[0].diameter - 2.0 * found[0].diameter).abs() < 1e-9);
    }

    #[test]
    fn craters_match_by_pycdas_rule() {
        let truth = [
            Circle {
                x: 10.0,
                y: 10.0,
                diameter: 10.0,
            },
            Circle {
                x: 50.0,
                y: 50.0,
                diameter: 20.0,
            },
        ];
        let predicted = [
            // Distance sqrt(9 + 16 + 0) / 10 = 0.5 > 0.4: no match.
            Circle {
                x: 13.0,
                y: 14.0,
                diameter: 10.0,
            },
            // sqrt(4 + 0 + 16) / 20 = 0.22: within 0.4 of the second crater, but...
            Circle {
                x: 52.0,
                y: 50.0,
                diameter: 24.0,
            },
            // ...this one is closer (3 / 20 = 0.15) and takes it.
            Circle {
                x: 50.0,
                y: 53.0,
                diameter: 20.0,
            },
        ];
        let scores = match_craters(&predicted, &truth, 0.4);
        assert_eq!(scores.matched, 1);
        assert!((scores.precision - 1.0 / 3.0).abs() < 1e-12);
        assert!((scores.recall - 0.5).abs() < 1e-12);
        assert!((scores.f1 - 0.4).abs() < 1e-12);
    }
}
