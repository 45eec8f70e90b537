//! Cutting images into chips and stitching chips (or per-chip predictions) back together.

use super::rows::{ImageRows, RowSource};
use super::{BitDepth, Image, RasterError};

/// What to do where the last chip of a row or column would run past the image.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// Keep the chip, filling what lies outside with this value.
    Pad(f32),
    /// Move the last chip back so it ends at the edge (it overlaps its neighbour).
    ShiftInward,
    /// Leave the partial chip out.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TileSpec {
    pub size: u32,
    pub stride: u32,
    pub edge: Edge,
    /// Skip chips where more than this fraction of pixels is `no_data` in every band.
    pub skip_no_data: Option<(f32, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chip {
    pub x: u32,
    pub y: u32,
    pub image: Image,
}

/// Chip starts along one axis.
pub fn starts(extent: u32, size: u32, stride: u32, edge: Edge) -> Vec<u32> {
    let mut out = Vec::new();
    let mut at = 0u32;
    while at + size <= extent {
        out.push(at);
        at += stride;
    }
    let covered = out.last().map_or(0, |last| last + size);
    if covered < extent {
        match edge {
            Edge::Pad(_) => out.push(at.min(extent - 1)),
            Edge::ShiftInward if extent >= size => out.push(extent - size),
            Edge::ShiftInward => out.push(0),
            Edge::Drop => {}
        }
    }
    out.dedup();
    out
}

/// Every chip of `image`, in rows.
pub fn tile(image: &Image, spec: &TileSpec) -> Result<Vec<Chip>, RasterError> {
    let mut chips = Vec::new();
    tile_rows(&mut ImageRows::new(image), spec, |chip| {
        chips.push(chip);
        Ok::<(), RasterError>(())
    })?;
    Ok(chips)
}

/// How many chips `tile_rows` considers (before skipping no-data ones).
pub fn chip_count(width: u32, height: u32, spec: &TileSpec) -> usize {
    starts(width, spec.size, spec.stride, spec.edge).len()
        * starts(height, spec.size, spec.stride, spec.edge).len()
}

/// Cuts chips from an image read top to bottom, handing each to `each` in rows, holding at
/// most one chip's height of rows (plus what one read brings) in memory.
pub fn tile_rows<E: From<RasterError>>(
    source: &mut dyn RowSource,
    spec: &TileSpec,
    mut each: impl FnMut(Chip) -> Result<(), E>,
) -> Result<(), E> {
    if spec.size == 0 || spec.stride == 0 {
        return Err(RasterError::Invalid(format!(
            "chip size {} and stride {} must be positive",
            spec.size, spec.stride
        ))
        .into());
    }
    let fill = match spec.edge {
        Edge::Pad(value) => value,
        _ => 0.0,
    };
    let (width, height, bands) = (source.width(), source.height(), source.bands());
    let row = (width * bands) as usize;
    let columns = starts(width, spec.size, spec.stride, spec.edge);
    // Rows top.. of the image are in `window`.
    let mut window: Vec<f32> = Vec::new();
    let mut top = 0u32;
    let mut read = 0u32;
    for y in starts(height, spec.size, spec.stride, spec.edge) {
        if y > top {
            let drop = (y - top).min(read - top);
            window.drain(..drop as usize * row);
            top += drop;
            if top < y {
                // A stride longer than the chip: rows between chips are read and dropped.
                let mut skipped = Vec::new();
                source.read_rows(y - top, &mut skipped)?;
                read = y;
                top = y;
            }
        }
        let bottom = (y + spec.size).min(height);
        if read < bottom {
            source.read_rows(bottom - read, &mut window)?;
            read = bottom;
        }
        for &x in &columns {
            let mut chip = Image {
                data: vec![fill; (spec.size * spec.size * bands) as usize],
                width: spec.size,
                height: spec.size,
                bands,
                depth: source.depth(),
            };
            let w = (width - x).min(spec.size);
            for r in 0..bottom - y {
                let from = ((y - top + r) as usize) * row + (x * bands) as usize;
                let to = (r * spec.size * bands) as usize;
                let n = (w * bands) as usize;
                chip.data[to..to + n].copy_from_slice(&window[from..from + n]);
            }
            if let Some((no_data, fraction)) = spec.skip_no_data {
                let empty = chip
                    .data
                    .chunks_exact(bands as usize)
                    .filter(|pixel| pixel.iter().all(|v| *v == no_data))
                    .count();
                if empty as f64 > fraction * (spec.size * spec.size) as f64 {
                    continue;
                }
            }
            each(Chip { x, y, image: chip })?;
        }
    }
    Ok(())
}

/// Puts chips back into a `width` x `height` image, averaging where they overlap; pixels no
/// chip covers are 0.
pub fn stitch(chips: &[Chip], width: u32, height: u32, bands: u32, depth: BitDepth) -> Image {
    let mut sum = vec![0.0f64; (width * height * bands) as usize];
    let mut count = vec![0u32; (width * height) as usize];
    for chip in chips {
        for r in 0..chip.image.height.min(height.saturating_sub(chip.y)) {
            for c in 0..chip.image.width.min(width.saturating_sub(chip.x)) {
                let (x, y) = (chip.x + c, chip.y + r);
                count[(y * width + x) as usize] += 1;
                for b in 0..bands {
                    sum[((y * width + x) * bands + b) as usize] += chip.image.get(c, r, b) as f64;
                }
            }
        }
    }
    let data = sum
        .iter()
        .enumerate()
        .map(|(i, s)| match count[i / bands as usize] {
            0 => 0.0,
            n => (s / n as f64) as f32,
        })
        .collect();
    Image {
        width,
        height,
        bands,
        depth,
        data,
    }
}

/// Puts class masks (or per-chip predictions) back together: a pixel covered by several
/// chips takes its value from the chip whose centre is nearest (the first such chip on a
/// tie), since class values cannot be averaged and a chip's edge is where it saw least.
pub fn stitch_nearest(chips: &[Chip], width: u32, height: u32, depth: BitDepth) -> Image {
    let mut image = Image::new(width, height, 1, depth);
    let mut nearest = vec![f64::INFINITY; (width * height) as usize];
    for chip in chips {
        let [cx, cy] = super::centre(chip.image.width, chip.image.height);
        for r in 0..chip.image.height.min(height.saturating_sub(chip.y)) {
            for c in 0..chip.image.width.min(width.saturating_sub(chip.x)) {
                let at = ((chip.y + r) * width + chip.x + c) as usize;
                let distance = (c as f64 - cx).powi(2) + (r as f64 - cy).powi(2);
                if distance < nearest[at] {
                    nearest[at] = distance;
                    image.data[at] = chip.image.get(c, r, 0);
                }
            }
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(width: u32, height: u32) -> Image {
        let mut image = Image::new(width, height, 1, BitDepth::Sixteen);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        image
    }

    #[test]
    fn overlapping_masks_take_each_pixel_from_the_nearest_chip_centre() {
        let chip = |x, y, value| Chip {
            x,
            y,
            image: Image {
                width: 4,
                height: 2,
                bands: 1,
                depth: BitDepth::Eight,
                data: vec![value; 8],
            },
        };
        // Two 4 x 2 chips overlapping in columns 2-3 of a 6 x 3 image; row 2 is uncovered.
        let stitched = stitch_nearest(&[chip(0, 0, 1.0), chip(2, 0, 2.0)], 6, 3, BitDepth::Eight);
        // Column 2 is 0.5 px from the first chip's centre (x 1.5), 1.5 px from the second's
        // (x 3.5): the first; column 3 the other way round.
        assert_eq!(
            stitched.data,
            [
                1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0,
                0.0, 0.0
            ]
        );
    }

    #[test]
    fn chip_starts_follow_the_edge_policy() {
        assert_eq!(starts(10, 4, 4, Edge::Drop), [0, 4]);
        assert_eq!(starts(10, 4, 4, Edge::Pad(0.0)), [0, 4, 8]);
        assert_eq!(starts(10, 4, 4, Edge::ShiftInward), [0, 4, 6]);
        assert_eq!(starts(10, 4, 3, Edge::ShiftInward), [0, 3, 6]);
        assert_eq!(
            starts(8, 4, 4, Edge::Pad(0.0)),
            [0, 4],
            "an exact fit needs no extra chip"
        );
        assert_eq!(starts(3, 4, 4, Edge::ShiftInward), [0]);
    }

    #[test]
    fn chips_hold_their_window_and_padding() {
        let image = grid(5, 3);
        let spec = TileSpec {
            size: 4,
            stride: 4,
            edge: Edge::Pad(-1.0),
            skip_no_data: None,
        };
        let chips = tile(&image, &spec).unwrap();
        let origins: Vec<(u32, u32)> = chips.iter().map(|c| (c.x, c.y)).collect();
        assert_eq!(origins, [(0, 0), (4, 0)]);
        assert_eq!(&chips[1].image.data[..4], &[4.0, -1.0, -1.0, -1.0]);
        assert_eq!(
            &chips[1].image.data[12..],
            &[-1.0, -1.0, -1.0, -1.0],
            "row 3 is below the image"
        );
    }

    #[test]
    fn tiles_stitch_back_identically_with_overlaps() {
        let image = grid(37, 23);
        for edge in [Edge::Pad(0.0), Edge::ShiftInward] {
            let spec = TileSpec {
                size: 8,
                stride: 5,
                edge,
                skip_no_data: None,
            };
            let chips = tile(&image, &spec).unwrap();
            assert_eq!(
                stitch(&chips, 37, 23, 1, BitDepth::Sixteen),
                image,
                "{edge:?}"
            );
        }
    }

    #[test]
    fn mostly_empty_chips_are_skipped() {
        let mut image = Image::new(8, 4, 1, BitDepth::Eight);
        image.set(1, 1, 0, 9.0);
        image.set(2, 1, 0, 9.0);
        let spec = TileSpec {
            size: 4,
            stride: 4,
            edge: Edge::Drop,
            skip_no_data: Some((0.0, 0.9)),
        };
        let chips = tile(&image, &spec).unwrap();
        // The first chip is 14/16 = 87.5 % empty (kept), the second 100 % (skipped).
        assert_eq!(chips.iter().map(|c| c.x).collect::<Vec<_>>(), [0]);
    }
}
