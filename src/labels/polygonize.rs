//! Masks back into polygons, so a predicted mask can be corrected in VIA, LabelMe or a COCO
//! tool: each 8-connected region of one class is traced along its outer boundary (Moore
//! neighbour tracing, stopping as Jacob's criterion says) and simplified (Douglas-Peucker).
//! Holes are not traced: the formats' polygons have none.

use super::rasterize::Raster;
use super::Pt;

/// Clockwise in image coordinates (y down), starting west.
const DIRECTIONS: [(i64, i64); 8] = [
    (-1, 0),
    (-1, -1),
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
];

/// A region of one class: its value in the mask and its outline.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub value: u8,
    /// At least three points, at pixel centres (corners of the pixel for regions of one or
    /// two pixels, so that they still enclose an area).
    pub outline: Vec<Pt>,
    /// Pixels in the region.
    pub area: usize,
}

/// Every region of every non-zero value, in raster order of their first pixel.
pub fn regions(mask: &Raster<u8>, tolerance: f64) -> Vec<Region> {
    let (width, height) = (mask.width as i64, mask.height as i64);
    let value_at = |x: i64, y: i64| {
        (x >= 0 && y >= 0 && x < width && y < height).then(|| mask.pixels[(y * width + x) as usize])
    };
    let mut seen = vec![false; mask.pixels.len()];
    let mut found = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let value = mask.pixels[(y * width + x) as usize];
            if value == 0 || seen[(y * width + x) as usize] {
                continue;
            }
            // Mark the whole region, then trace it from this, its top-left pixel.
            let mut stack = vec![(x, y)];
            let mut area = 0;
            seen[(y * width + x) as usize] = true;
            while let Some((px, py)) = stack.pop() {
                area += 1;
                for (dx, dy) in DIRECTIONS {
                    let (nx, ny) = (px + dx, py + dy);
                    if value_at(nx, ny) == Some(value) && !seen[(ny * width + nx) as usize] {
                        seen[(ny * width + nx) as usize] = true;
                        stack.push((nx, ny));
                    }
                }
            }
            let inside = |px: i64, py: i64| value_at(px, py) == Some(value);
            let boundary = trace(&inside, (x, y), area);
            let mut outline: Vec<Pt> = boundary
                .iter()
                .map(|&(px, py)| [px as f64, py as f64])
                .collect();
            outline = simplify(&outline, tolerance);
            if outline.len() < 3 {
                let xs = boundary.iter().map(|p| p.0);
                let ys = boundary.iter().map(|p| p.1);
                let (x0, x1) = (
                    xs.clone().min().unwrap() as f64 - 0.5,
                    xs.max().unwrap() as f64 + 0.5,
                );
                let (y0, y1) = (
                    ys.clone().min().unwrap() as f64 - 0.5,
                    ys.max().unwrap() as f64 + 0.5,
                );
                outline = vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
            }
            found.push(Region {
                value,
                outline,
                area,
            });
        }
    }
    found
}

/// The outer boundary of the region containing `start`, whose west neighbour is outside.
/// The walk ends when it leaves the start pixel towards the same pixel as the first time.
fn trace(inside: &dyn Fn(i64, i64) -> bool, start: (i64, i64), area: usize) -> Vec<(i64, i64)> {
    let step = |current: (i64, i64), back: (i64, i64)| {
        let from = DIRECTIONS
            .iter()
            .position(|&(dx, dy)| (current.0 + dx, current.1 + dy) == back)
            .expect("the backtrack pixel is a neighbour");
        (1..=8).find_map(|k| {
            let (dx, dy) = DIRECTIONS[(from + k) % 8];
            let candidate = (current.0 + dx, current.1 + dy);
            inside(candidate.0, candidate.1).then(|| {
                let (bx, by) = DIRECTIONS[(from + k - 1) % 8];
                (candidate, (current.0 + bx, current.1 + by))
            })
        })
    };
    let mut boundary = vec![start];
    let (mut current, mut back) = (start, (start.0 - 1, start.1));
    let mut second = None;
    // A boundary passes each pixel at most four times.
    for _ in 0..4 * area + 8 {
        let Some((next, behind)) = step(current, back) else {
            break; // a single pixel
        };
        if current == start {
            match second {
                None => second = Some(next),
                Some(second) if second == next => {
                    boundary.pop();
                    break;
                }
                Some(_) => {}
            }
        }
        boundary.push(next);
        (current, back) = (next, behind);
    }
    boundary
}

/// Douglas-Peucker on a closed ring: split at the point farthest from the first, then keep
/// the points that stray more than `tolerance` from the chords.
pub fn simplify(ring: &[Pt], tolerance: f64) -> Vec<Pt> {
    if ring.len() < 4 || tolerance <= 0.0 {
        return ring.to_vec();
    }
    let distance = |p: Pt, q: Pt| (p[0] - q[0]).hypot(p[1] - q[1]);
    let far = (1..ring.len())
        .max_by(|&a, &b| distance(ring[a], ring[0]).total_cmp(&distance(ring[b], ring[0])))
        .unwrap();
    let mut first: Vec<Pt> = ring[..=far].to_vec();
    let mut second: Vec<Pt> = ring[far..].to_vec();
    second.push(ring[0]);
    first = chain(&first, tolerance);
    second = chain(&second, tolerance);
    first.pop();
    second.pop();
    first.extend(second);
    first
}

fn chain(points: &[Pt], tolerance: f64) -> Vec<Pt> {
    let (a, b) = (points[0], points[points.len() - 1]);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length = dx.hypot(dy);
    let off = |p: Pt| {
        if length == 0.0 {
            (p[0] - a[0]).hypot(p[1] - a[1])
        } else {
            ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / length
        }
    };
    let worst = (1..points.len().saturating_sub(1))
        .max_by(|&i, &j| off(points[i]).total_cmp(&off(points[j])));
    match worst {
        Some(i) if off(points[i]) > tolerance => {
            let mut left = chain(&points[..=i], tolerance);
            left.pop();
            left.extend(chain(&points[i..], tolerance));
            left
        }
        _ => vec![a, b],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Shape;

    fn mask(rows: &[&str]) -> Raster<u8> {
        let mut raster = Raster::new(rows[0].len() as u32, rows.len() as u32);
        raster.pixels = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| b - b'0'))
            .collect();
        raster
    }

    #[test]
    fn a_square_traces_to_its_corner_pixels() {
        let m = mask(&["00000", "01110", "01110", "01110", "00000"]);
        let found = regions(&m, 0.5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].area, 9);
        assert_eq!(
            found[0].outline,
            vec![[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]]
        );
    }

    #[test]
    fn classes_and_components_are_separate_regions() {
        let m = mask(&["1100022", "1100022", "0000000", "0330000", "0000001"]);
        let found = regions(&m, 0.0);
        let summary: Vec<(u8, usize, usize)> = found
            .iter()
            .map(|r| (r.value, r.area, r.outline.len()))
            .collect();
        assert_eq!(summary, [(1, 4, 4), (2, 4, 4), (3, 2, 4), (1, 1, 4)]);
        assert_eq!(
            found[3].outline,
            vec![[5.5, 3.5], [6.5, 3.5], [6.5, 4.5], [5.5, 4.5]],
            "a lone pixel becomes its square"
        );
    }

    #[test]
    fn traced_outlines_paint_back_the_same_pixels() {
        let mut original = Raster::<u8>::new(60, 50);
        original.paint(
            &Shape::Circle {
                cx: 20.0,
                cy: 20.0,
                r: 12.0,
            },
            1,
        );
        original.paint(
            &Shape::Polygon(vec![[35.0, 5.0], [58.0, 10.0], [50.0, 45.0], [40.0, 30.0]]),
            2,
        );
        let mut painted = Raster::<u8>::new(60, 50);
        for region in regions(&original, 0.0) {
            painted.paint(&Shape::Polygon(region.outline), region.value);
        }
        let same = original
            .pixels
            .iter()
            .zip(&painted.pixels)
            .filter(|(a, b)| a == b)
            .count();
        assert_eq!(same, original.pixels.len());
        // Simplified with a one-pixel tolerance: far fewer points, nearly the same pixels.
        let coarse = regions(&original, 1.0);
        assert!(coarse[0].outline.len() < 40, "{}", coarse[0].outline.len());
        let mut repainted = Raster::<u8>::new(60, 50);
        for region in coarse {
            repainted.paint(&Shape::Polygon(region.outline), region.value);
        }
        let same = original
            .pixels
            .iter()
            .zip(&repainted.pixels)
            .filter(|(a, b)| a == b)
            .count();
        assert!(same as f64 / original.pixels.len() as f64 > 0.98);
    }
}
