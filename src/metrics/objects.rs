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

/// Each crater in the mask of `class` as a circle: the centroid of its pixels (pixel centres
/// at whole coordinates, as crater lists and the rasteriser place them) and the diameter of a
/// disc of the same area, divided by `fill` (the fraction of the crater's diameter its
/// training disc covered). A component is one crater unless its distance transform has
/// several peaks farther apart than the larger one's radius: discs of touching craters that
/// merged into one blob. Its pixels are then shared among the peaks, each pixel to the peak
/// nearest relative to that peak's radius, and each share is a crater. Craters smaller than
/// `min_pixels` are dropped.
pub fn circles(mask: &[u8], width: usize, class: u8, fill: f64, min_pixels: u64) -> Vec<Circle> {
    let (labels, count) = components(mask, width, class);
    let height = mask.len().checked_div(width).unwrap_or(0);
    let depth = distance_to_outside(mask, width, class);
    let peaks = separated_peaks(&labels, &depth, width, height, count as usize);
    // Every component has at least one peak (its deepest pixel); its shares are numbered
    // from first_share, in the order of its peaks.
    let mut first_share = Vec::with_capacity(peaks.len());
    let mut shares = 0;
    for list in &peaks {
        first_share.push(shares);
        shares += list.len();
    }
    let mut sums = vec![(0f64, 0f64, 0u64); shares];
    for (i, &label) in labels.iter().enumerate() {
        if label == 0 {
            continue;
        }
        let component = label as usize - 1;
        let (x, y) = ((i % width) as f64, (i / width) as f64);
        let nearest = peaks[component]
            .iter()
            .enumerate()
            .map(|(k, p)| (k, ((x - p.x).powi(2) + (y - p.y).powi(2)).sqrt() / p.radius))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(k, _)| k);
        let entry = &mut sums[first_share[component] + nearest];
        entry.0 += x;
        entry.1 += y;
        entry.2 += 1;
    }
    sums.into_iter()
        .filter(|(_, _, n)| *n >= min_pixels.max(1))
        .map(|(sx, sy, n)| Circle {
            x: sx / n as f64,
            y: sy / n as f64,
            diameter: 2.0 * (n as f64 / std::f64::consts::PI).sqrt() / fill,
        })
        .collect()
}

/// A maximum of the distance transform: where, and how deep inside the blob.
struct Peak {
    x: f64,
    y: f64,
    radius: f64,
}

/// Per component (label - 1), its distance-transform maxima, deepest first, each kept only
/// when farther than the larger radius from every deeper one kept (plateaus and ridges of one
/// disc collapse to one peak).
fn separated_peaks(
    labels: &[u32],
    depth: &[f64],
    width: usize,
    height: usize,
    count: usize,
) -> Vec<Vec<Peak>> {
    let mut candidates: Vec<(f64, usize)> = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        if label == 0 {
            continue;
        }
        let (x, y) = (i % width, i / width);
        let is_max = (y.saturating_sub(1)..=(y + 1).min(height - 1)).all(|ny| {
            (x.saturating_sub(1)..=(x + 1).min(width - 1))
                .all(|nx| depth[ny * width + nx] <= depth[i])
        });
        if is_max {
            candidates.push((depth[i], i));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut peaks: Vec<Vec<Peak>> = (0..count).map(|_| Vec::new()).collect();
    for (radius, i) in candidates {
        let (x, y) = ((i % width) as f64, (i / width) as f64);
        let kept = &mut peaks[labels[i] as usize - 1];
        let apart = kept
            .iter()
            .all(|p| ((x - p.x).powi(2) + (y - p.y).powi(2)).sqrt() > p.radius.max(radius));
        if apart {
            kept.push(Peak { x, y, radius });
        }
    }
    peaks
}

/// Euclidean distance from each pixel of `class` to the nearest pixel that is not (or to
/// just outside the image): 0 elsewhere. Exact, by Felzenszwalb and Huttenlocher's two passes
/// of one-dimensional lower envelopes of parabolas.
fn distance_to_outside(mask: &[u8], width: usize, class: u8) -> Vec<f64> {
    let height = mask.len().checked_div(width).unwrap_or(0);
    // Squared distances; the image border counts as outside, one pixel beyond the edge.
    let far = ((width + height + 2) * (width + height + 2)) as f64;
    let mut squared: Vec<f64> = mask
        .iter()
        .map(|&v| if v == class { far } else { 0.0 })
        .collect();
    let mut line = Vec::new();
    let mut out = Vec::new();
    for y in 0..height {
        line.clear();
        line.push(0.0);
        line.extend_from_slice(&squared[y * width..(y + 1) * width]);
        line.push(0.0);
        lower_envelope(&line, &mut out);
        squared[y * width..(y + 1) * width].copy_from_slice(&out[1..=width]);
    }
    for x in 0..width {
        line.clear();
        line.push(0.0);
        line.extend((0..height).map(|y| squared[y * width + x]));
        line.push(0.0);
        lower_envelope(&line, &mut out);
        for y in 0..height {
            squared[y * width + x] = out[y + 1];
        }
    }
    squared.into_iter().map(f64::sqrt).collect()
}

/// `out[q] = min over p of (q - p)^2 + f[p]`.
fn lower_envelope(f: &[f64], out: &mut Vec<f64>) {
    let n = f.len();
    out.clear();
    out.resize(n, 0.0);
    let mut vertices = vec![0usize; n];
    let mut bounds = vec![0f64; n + 1];
    let mut k = 0;
    bounds[0] = f64::NEG_INFINITY;
    bounds[1] = f64::INFINITY;
    let meet = |p: usize, q: usize| {
        ((f[q] + (q * q) as f64) - (f[p] + (p * p) as f64)) / (2.0 * (q as f64 - p as f64))
    };
    for q in 1..n {
        let mut s = meet(vertices[k], q);
        while s <= bounds[k] {
            k -= 1;
            s = meet(vertices[k], q);
        }
        k += 1;
        vertices[k] = q;
        bounds[k] = s;
        bounds[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, slot) in out.iter_mut().enumerate() {
        while bounds[k + 1] < q as f64 {
            k += 1;
        }
        let p = vertices[k];
        *slot = (q as f64 - p as f64).powi(2) + f[p];
    }
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

    fn discs(width: usize, height: usize, discs: &[(f64, f64, f64)]) -> Vec<u8> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                u8::from(
                    discs
                        .iter()
                        .any(|(cx, cy, r)| (x - cx).powi(2) + (y - cy).powi(2) <= r * r),
                )
            })
            .collect()
    }

    #[test]
    fn distance_transform_is_the_distance_to_the_nearest_outside_pixel() {
        // A blob with a hole and a notch; the border counts as outside one pixel beyond.
        #[rustfmt::skip]
        let mask = [
            1, 1, 1, 1, 1, 1, 0,
            1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 0, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1,
        ];
        let (width, height) = (7i64, 5i64);
        let depth = distance_to_outside(&mask, width as usize, 1);
        for y in 0..height {
            for x in 0..width {
                let i = (y * width + x) as usize;
                let mut nearest = f64::INFINITY;
                for oy in -1..=height {
                    for ox in -1..=width {
                        let inside = ox >= 0 && oy >= 0 && ox < width && oy < height;
                        if !inside || mask[(oy * width + ox) as usize] == 0 {
                            let d = (((x - ox).pow(2) + (y - oy).pow(2)) as f64).sqrt();
                            nearest = nearest.min(d);
                        }
                    }
                }
                let expected = if mask[i] == 1 { nearest } else { 0.0 };
                assert!(
                    (depth[i] - expected).abs() < 1e-9,
                    "({x}, {y}): {} vs {expected}",
                    depth[i]
                );
            }
        }
    }

    #[test]
    fn touching_discs_in_one_component_are_two_craters() {
        // Radii 6 and 4 whose discs overlap by a pixel: one component, two craters.
        let mask = discs(40, 24, &[(12.0, 12.0, 6.0), (21.0, 12.0, 4.0)]);
        assert_eq!(components(&mask, 40, 1).1, 1);
        let mut found = circles(&mask, 40, 1, 1.0, 1);
        found.sort_by(|a, b| a.x.total_cmp(&b.x));
        assert_eq!(found.len(), 2, "{found:?}");
        for (circle, (x, diameter)) in found.iter().zip([(12.0, 12.0), (21.0, 8.0)]) {
            assert!((circle.x - x).abs() < 1.0, "{circle:?}");
            assert!((circle.y - 12.0).abs() < 0.5, "{circle:?}");
            assert!((circle.diameter - diameter).abs() < 1.5, "{circle:?}");
        }
    }

    #[test]
    fn a_square_or_an_ellipse_stays_one_crater() {
        let mut square = vec![0u8; 20 * 20];
        for y in 4..16 {
            for x in 4..16 {
                square[y * 20 + x] = 1;
            }
        }
        assert_eq!(circles(&square, 20, 1, 1.0, 1).len(), 1);
        // Semi-axes 8 and 6: the ridge of maxima is shorter than the radius.
        let ellipse: Vec<u8> = (0..30 * 30)
            .map(|i| {
                let (x, y) = ((i % 30) as f64 - 15.0, (i / 30) as f64 - 15.0);
                u8::from((x / 8.0).powi(2) + (y / 6.0).powi(2) <= 1.0)
            })
            .collect();
        assert_eq!(circles(&ellipse, 30, 1, 1.0, 1).len(), 1);
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
