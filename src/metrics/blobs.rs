//! Craters found in a class-probability map rather than in its thresholded mask: discs whose
//! mean probability stands out from the ring around them, searched over position and size
//! (scale-space blob detection with a disc-minus-annulus kernel). Thresholding at one half
//! first loses the small, faint craters whose probability peaks lower; the contrast of a
//! disc against its own ring keeps them, and keeps touching craters apart.

use super::objects::Circle;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What to search for: crater diameters in pixels, and how much the mean probability inside
/// a disc must exceed the mean in the ring around it (radius r to 1.5 r) to count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlobSearch {
    pub min_diameter: f64,
    pub max_diameter: f64,
    pub contrast: f32,
}

impl Default for BlobSearch {
    /// Craters from 4 px (smaller ones are a handful of pixels, below what a 2x2-subsampling
    /// U-Net resolves) to 200 px; a contrast of 0.3 (the disc at least 30 points more
    /// probable than its surroundings).
    fn default() -> Self {
        Self {
            min_diameter: 4.0,
            max_diameter: 200.0,
            contrast: 0.3,
        }
    }
}

/// The ring's outer radius, as a multiple of the disc's.
const RING: f64 = 1.5;
/// Successive radii grow by this factor: the size error stays under 6 %, well inside the
/// 40 % that PyCDA's matching rule tolerates.
const RADIUS_STEP: f64 = 1.12;
/// A peak must be the largest contrast within this many grid steps (across neighbouring
/// radii).
const PEAK_REACH: usize = 2;
/// Discs of radius r are tried at every `r / GRID_PER_RADIUS`-th pixel (at least every
/// one): a large crater's centre needs no pixel precision (PyCDA's rule allows 40 % of its
/// diameter; the grid's error stays under 5 %), and the work per radius stops growing with
/// its square.
const GRID_PER_RADIUS: f64 = 8.0;

/// A disc's mean is at most its bounding square's sum over its own pixel count, and a disc
/// (cut by the image edges or not) holds at least this fraction of the pixels its square
/// holds (pi/4 for large discs, 13/25 at radius 2), so where the square's mean is below this
/// fraction of the threshold no disc there can reach it and the ring is not summed.
const DISC_SHARE_OF_SQUARE: f64 = 0.5;

fn grid_step(r: f64) -> usize {
    ((r / GRID_PER_RADIUS).floor() as usize).max(1)
}

/// A disc found, with its contrast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blob {
    pub circle: Circle,
    pub contrast: f32,
}

/// The blobs of `probability` (row-major, `width` wide, values 0..=1): local maxima of the
/// disc-minus-ring contrast over position and radius, at least `search.contrast`, strongest
/// first; a weaker one whose centre lies within half the larger diameter of a stronger one
/// kept is the same crater and dropped. Only pixels inside the image enter the means.
pub fn disc_blobs(probability: &[f32], width: usize, search: &BlobSearch) -> Vec<Blob> {
    let height = probability.len().checked_div(width).unwrap_or(0);
    if height == 0 || search.max_diameter < search.min_diameter || search.min_diameter <= 0.0 {
        return Vec::new();
    }
    let sums = Sums::new(probability, width, height);
    let radii = radii(search.min_diameter / 2.0, search.max_diameter / 2.0);
    // Three successive contrast maps are enough to find maxima across radii.
    let contrast_at = |k: usize| radii.get(k).map(|&r| sums.contrast_map(r, search.contrast));
    let mut previous = None;
    let mut current = contrast_at(0);
    let mut candidates = Vec::new();
    for (k, &r) in radii.iter().enumerate() {
        let next = contrast_at(k + 1);
        let here = current.as_deref().expect("a map for every radius");
        let layers = [previous.as_deref(), Some(here), next.as_deref()];
        candidates.extend(
            peaks(&layers, width, height, grid_step(r), search.contrast)
                .into_iter()
                .map(|(i, contrast)| Blob {
                    circle: Circle {
                        x: (i % width) as f64,
                        y: (i / width) as f64,
                        diameter: 2.0 * r,
                    },
                    contrast,
                }),
        );
        previous = current;
        current = next;
    }
    suppress_duplicates(candidates, search.max_diameter)
}

/// Radii from `low` to `high` in steps of RADIUS_STEP, `high` included when it lies past the
/// last step.
fn radii(low: f64, high: f64) -> Vec<f64> {
    let mut radii = Vec::new();
    let mut r = low;
    while r < high * (1.0 + 1e-9) {
        radii.push(r);
        r *= RADIUS_STEP;
    }
    if radii
        .last()
        .is_some_and(|&last| last < high / RADIUS_STEP.sqrt())
    {
        radii.push(high);
    }
    radii
}

/// Prefix sums along each row, so a disc's sum is one subtraction per row it spans, and a
/// summed-area table, so a square's is four lookups.
struct Sums {
    rows: Vec<f64>,
    table: Vec<f64>,
    width: usize,
    height: usize,
}

impl Sums {
    fn new(values: &[f32], width: usize, height: usize) -> Self {
        let mut rows = vec![0f64; (width + 1) * height];
        let mut table = vec![0f64; (width + 1) * (height + 1)];
        for (y, (row, out)) in values
            .chunks(width)
            .zip(rows.chunks_mut(width + 1))
            .enumerate()
        {
            let mut total = 0f64;
            for (x, (value, slot)) in row.iter().zip(&mut out[1..]).enumerate() {
                total += *value as f64;
                *slot = total;
                table[(y + 1) * (width + 1) + x + 1] = table[y * (width + 1) + x + 1] + total;
            }
        }
        Self {
            rows,
            table,
            width,
            height,
        }
    }

    /// Sum and count of the pixels within `reach` of (x, y) in both directions that lie in
    /// the image.
    fn square_sum(&self, x: usize, y: usize, reach: usize) -> (f64, usize) {
        let (x0, x1) = (x.saturating_sub(reach), (x + reach + 1).min(self.width));
        let (y0, y1) = (y.saturating_sub(reach), (y + reach + 1).min(self.height));
        let at = |x: usize, y: usize| self.table[y * (self.width + 1) + x];
        (
            at(x1, y1) - at(x0, y1) - at(x1, y0) + at(x0, y0),
            (x1 - x0) * (y1 - y0),
        )
    }

    /// Sum and count of the pixels of a disc centred on (x, y) that lie in the image, the
    /// disc given by its half-widths per row offset (`half[|dy|]`).
    fn disc_sum(&self, x: usize, y: usize, half: &[usize]) -> (f64, usize) {
        let reach = half.len() - 1;
        let rows = y.saturating_sub(reach)..(y + reach + 1).min(self.height);
        let (mut total, mut count) = (0.0, 0);
        for row in rows {
            let h = half[row.abs_diff(y)];
            let from = x.saturating_sub(h);
            let to = (x + h + 1).min(self.width);
            let line = &self.rows[row * (self.width + 1)..];
            total += line[to] - line[from];
            count += to - from;
        }
        (total, count)
    }

    /// Per pixel, the mean over the disc of radius `r` minus the mean over the ring from `r`
    /// to RING x `r` (pixels whose centres lie within the radius belong to a disc; only the
    /// pixels inside the image count, so an image edge is no contrast). Where the contrast
    /// cannot reach `threshold`, and off the radius's grid (every `grid_step(r)`-th row and
    /// column), the map holds minus infinity instead.
    fn contrast_map(&self, r: f64, threshold: f32) -> Vec<f32> {
        let inner = half_widths(r);
        let outer = half_widths(RING * r);
        let reach = inner.len() - 1;
        let step = grid_step(r);
        let least_square_mean = DISC_SHARE_OF_SQUARE * threshold as f64;
        let mut map = vec![f32::NEG_INFINITY; self.width * self.height];
        map.par_chunks_mut(self.width)
            .enumerate()
            .filter(|(y, _)| y % step == 0)
            .for_each(|(y, row)| {
                for (x, slot) in row.iter_mut().enumerate().step_by(step) {
                    let (square, square_pixels) = self.square_sum(x, y, reach);
                    if square < least_square_mean * square_pixels as f64 {
                        *slot = f32::NEG_INFINITY;
                        continue;
                    }
                    let (disc, disc_pixels) = self.disc_sum(x, y, &inner);
                    let (all, all_pixels) = self.disc_sum(x, y, &outer);
                    let ring_pixels = all_pixels - disc_pixels;
                    let ring_mean = if ring_pixels == 0 {
                        0.0
                    } else {
                        (all - disc) / ring_pixels as f64
                    };
                    *slot = (disc / disc_pixels as f64 - ring_mean) as f32;
                }
            });
        map
    }
}

/// A disc of radius `r` as the half-width of each row at offset 0, 1, ... from the centre.
fn half_widths(r: f64) -> Vec<usize> {
    let reach = r.floor() as usize;
    (0..=reach)
        .map(|dy| (r * r - (dy * dy) as f64).max(0.0).sqrt().floor() as usize)
        .collect()
}

/// Pixels of the middle layer at least `threshold` and no smaller than any value within
/// PEAK_REACH grid steps (`step` pixels each) in it or the layers beside it (missing layers
/// are skipped).
fn peaks(
    layers: &[Option<&[f32]>; 3],
    width: usize,
    height: usize,
    step: usize,
    threshold: f32,
) -> Vec<(usize, f32)> {
    let middle = layers[1].expect("the middle layer");
    let reach = PEAK_REACH * step;
    (0..height)
        .into_par_iter()
        .flat_map_iter(|y| {
            let rows = y.saturating_sub(reach)..(y + reach + 1).min(height);
            (0..width).filter_map(move |x| {
                let value = middle[y * width + x];
                if value < threshold {
                    return None;
                }
                let columns = x.saturating_sub(reach)..(x + reach + 1).min(width);
                let highest = layers.iter().flatten().all(|layer| {
                    rows.clone().all(|ny| {
                        layer[ny * width + columns.start..ny * width + columns.end]
                            .iter()
                            .all(|&v| v <= value)
                    })
                });
                highest.then_some((y * width + x, value))
            })
        })
        .collect()
}

/// Keeps blobs strongest first (ties by position, then size, so the result does not depend
/// on thread timing), dropping any whose centre lies within half the larger diameter of one
/// kept. Kept blobs are filed in a grid of cells as wide as the largest such distance, so
/// each check looks at the nine cells around.
fn suppress_duplicates(mut candidates: Vec<Blob>, max_diameter: f64) -> Vec<Blob> {
    candidates.sort_by(|a, b| {
        b.contrast
            .total_cmp(&a.contrast)
            .then(a.circle.y.total_cmp(&b.circle.y))
            .then(a.circle.x.total_cmp(&b.circle.x))
            .then(a.circle.diameter.total_cmp(&b.circle.diameter))
    });
    let cell = (max_diameter / 2.0).max(1.0);
    let cell_of = |c: &Circle| ((c.x / cell).floor() as i64, (c.y / cell).floor() as i64);
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let mut kept: Vec<Blob> = Vec::new();
    for blob in candidates {
        let (cx, cy) = cell_of(&blob.circle);
        let duplicate = (cx - 1..=cx + 1)
            .flat_map(|gx| (cy - 1..=cy + 1).map(move |gy| (gx, gy)))
            .filter_map(|key| grid.get(&key))
            .flatten()
            .any(|&k| {
                let other = &kept[k].circle;
                let apart = (blob.circle.x - other.x).hypot(blob.circle.y - other.y);
                apart <= 0.5 * blob.circle.diameter.max(other.diameter)
            });
        if !duplicate {
            grid.entry((cx, cy)).or_default().push(kept.len());
            kept.push(blob);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probability map with discs of probability `p` at (x, y, radius).
    fn discs(width: usize, height: usize, discs: &[(f64, f64, f64, f32)]) -> Vec<f32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f64, (i / width) as f64);
                discs
                    .iter()
                    .filter(|(cx, cy, r, _)| (x - cx).powi(2) + (y - cy).powi(2) <= r * r)
                    .map(|d| d.3)
                    .fold(0.0, f32::max)
            })
            .collect()
    }

    #[test]
    fn a_disc_is_found_at_its_centre_and_size() {
        let map = discs(64, 48, &[(30.0, 20.0, 9.0, 1.0)]);
        let found = disc_blobs(&map, 64, &BlobSearch::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let c = found[0].circle;
        assert_eq!((c.x, c.y), (30.0, 20.0));
        // The radii searched are 2 x 1.12^k: 8.73 and 9.77 bracket 9; at 8.73 the disc
        // is all inside and only its outermost pixels fall in the ring.
        assert!((c.diameter - 18.0).abs() / 18.0 < 0.06, "{c:?}");
        // Inside the disc all 1, the ring at r = 8.86 still holds the disc's edge pixels.
        assert!(found[0].contrast > 0.8, "{:?}", found[0]);
    }

    #[test]
    fn touching_discs_stay_two_craters_and_faint_small_ones_are_found() {
        // Two discs of radius 6 touching (a thresholded mask merges them), and a small faint
        // one (probability 0.4, below one half) far from both.
        let map = discs(
            80,
            40,
            &[
                (20.0, 20.0, 6.0, 1.0),
                (32.0, 20.0, 6.0, 1.0),
                (62.0, 12.0, 3.0, 0.4),
            ],
        );
        let mut found = disc_blobs(&map, 80, &BlobSearch::default());
        found.sort_by(|a, b| a.circle.x.total_cmp(&b.circle.x));
        let centres: Vec<(f64, f64)> = found.iter().map(|b| (b.circle.x, b.circle.y)).collect();
        assert_eq!(centres, [(20.0, 20.0), (32.0, 20.0), (62.0, 12.0)]);
        // At radius 3.15 the disc holds exactly the faint crater's pixels, its ring none.
        assert!((found[2].contrast - 0.4).abs() < 1e-6, "{:?}", found[2]);
    }

    #[test]
    fn weak_contrast_flat_fields_and_edge_cases_find_nothing() {
        // A disc only 0.2 above its surroundings.
        let mut map = discs(40, 40, &[(20.0, 20.0, 5.0, 0.2)]);
        assert!(disc_blobs(&map, 40, &BlobSearch::default()).is_empty());
        // Everything certain: no disc stands out from its ring.
        map.iter_mut().for_each(|v| *v = 1.0);
        let inside = BlobSearch {
            max_diameter: 20.0,
            ..BlobSearch::default()
        };
        assert!(disc_blobs(&map, 40, &inside).is_empty());
        assert!(disc_blobs(&[], 0, &BlobSearch::default()).is_empty());
        let inverted = BlobSearch {
            min_diameter: 10.0,
            max_diameter: 5.0,
            contrast: 0.3,
        };
        assert!(disc_blobs(&map, 40, &inverted).is_empty());
    }

    #[test]
    fn radii_step_geometrically_and_reach_the_largest() {
        let r = radii(2.0, 10.0);
        assert_eq!(r[0], 2.0);
        assert!(r
            .windows(2)
            .all(|w| (w[1] / w[0] - RADIUS_STEP).abs() < 1e-9 || w[1] == 10.0));
        assert!(*r.last().unwrap() >= 10.0 / RADIUS_STEP.sqrt());
        assert_eq!(radii(3.0, 3.0), [3.0]);
    }

    #[test]
    fn disc_sums_count_the_pixels_within_the_radius_and_the_image() {
        let (width, height) = (30, 20);
        let values: Vec<f32> = (0..width * height).map(|i| (i % 7) as f32).collect();
        let sums = Sums::new(&values, width, height);
        for r in [0.5f64, 1.0, 2.0, 2.5, 7.3, 13.0] {
            for (cx, cy) in [(15i64, 10i64), (0, 0), (29, 3)] {
                let reach = r.floor() as i64;
                let (mut total, mut count) = (0.0, 0);
                for y in (cy - reach).max(0)..=(cy + reach).min(height as i64 - 1) {
                    for x in (cx - reach).max(0)..=(cx + reach).min(width as i64 - 1) {
                        if (((x - cx).pow(2) + (y - cy).pow(2)) as f64) <= r * r {
                            total += values[y as usize * width + x as usize] as f64;
                            count += 1;
                        }
                    }
                }
                let found = sums.disc_sum(cx as usize, cy as usize, &half_widths(r));
                assert_eq!(found, (total, count), "radius {r} at ({cx}, {cy})");
            }
        }
    }
}
