//! Registration: how far a moving image is shifted from a reference, by phase correlation.
//!
//! Both images (averaged to one band) are windowed (Hann, so the image borders do not
//! correlate), transformed (2-D FFT), and their normalised cross-power spectrum transformed
//! back: its peak sits at the shift. A parabola through the peak and its neighbours gives
//! the sub-pixel part. The peak's height (near 1 for a clean match, near 0 for none) is the
//! quality score.

use super::{Image, RasterError, Sampling, Similarity};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// The moving image shows the reference moved right by `dx` and down by `dy` pixels.
    pub dx: f64,
    pub dy: f64,
    /// Height of the correlation peak, 0..=1.
    pub quality: f64,
}

fn grey(image: &Image) -> Vec<f64> {
    image
        .data
        .chunks_exact(image.bands as usize)
        .map(|pixel| pixel.iter().map(|v| *v as f64).sum::<f64>() / pixel.len() as f64)
        .collect()
}

fn fft2(data: &mut [Complex<f64>], width: usize, height: usize, inverse: bool) {
    let mut planner = FftPlanner::new();
    let (row, column) = if inverse {
        (
            planner.plan_fft_inverse(width),
            planner.plan_fft_inverse(height),
        )
    } else {
        (
            planner.plan_fft_forward(width),
            planner.plan_fft_forward(height),
        )
    };
    for line in data.chunks_exact_mut(width) {
        row.process(line);
    }
    let mut buffer = vec![Complex::default(); height];
    for x in 0..width {
        for y in 0..height {
            buffer[y] = data[y * width + x];
        }
        column.process(&mut buffer);
        for y in 0..height {
            data[y * width + x] = buffer[y];
        }
    }
}

/// Refuses pairs that cannot be registered: different sizes, or too small to correlate.
fn check_pair(reference: &Image, moving: &Image) -> Result<(), RasterError> {
    if (reference.width, reference.height) != (moving.width, moving.height) {
        return Err(RasterError::Invalid(format!(
            "cannot align a {}x{} image onto a {}x{} one: crop them to the same size",
            moving.width, moving.height, reference.width, reference.height
        )));
    }
    if reference.width < 4 || reference.height < 4 {
        return Err(RasterError::Invalid(format!(
            "{}x{} is too small to align",
            reference.width, reference.height
        )));
    }
    Ok(())
}

/// The shift of `moving` relative to `reference` (same size).
pub fn phase_correlate(reference: &Image, moving: &Image) -> Result<Shift, RasterError> {
    check_pair(reference, moving)?;
    let (w, h) = (reference.width as usize, reference.height as usize);
    let values = |image: &Image| grey(image);
    Ok(correlate(
        &values(reference),
        &values(moving),
        w,
        h,
        Window::Both,
    ))
}

/// Which axes to taper before correlating: the image's borders are not periodic, but the
/// angle axis of a log-polar spectrum is.
#[derive(Clone, Copy, PartialEq)]
enum Window {
    Both,
    RowsOnly,
}

fn hann(i: usize, n: usize) -> f64 {
    0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / (n - 1) as f64).cos()
}

/// Phase correlation of two `w` x `h` grids of samples.
fn correlate(reference: &[f64], moving: &[f64], w: usize, h: usize, window: Window) -> Shift {
    let prepare = |values: &[f64]| {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let mut out: Vec<Complex<f64>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let across = match window {
                    Window::Both => hann(i % w, w),
                    Window::RowsOnly => 1.0,
                };
                Complex::new((v - mean) * across * hann(i / w, h), 0.0)
            })
            .collect();
        fft2(&mut out, w, h, false);
        out
    };
    let (a, b) = (prepare(reference), prepare(moving));
    let mut cross: Vec<Complex<f64>> = a
        .iter()
        .zip(&b)
        .map(|(a, b)| {
            let product = b * a.conj();
            let norm = product.norm();
            if norm > 1e-12 {
                product / norm
            } else {
                Complex::default()
            }
        })
        .collect();
    fft2(&mut cross, w, h, true);
    let surface: Vec<f64> = cross.iter().map(|c| c.re / (w * h) as f64).collect();
    let (peak, &height) = surface
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("the surface is not empty");
    let (px, py) = (peak % w, peak / w);
    let at = |x: isize, y: isize| {
        surface[(y.rem_euclid(h as isize) as usize) * w + x.rem_euclid(w as isize) as usize]
    };
    let refine = |minus: f64, centre: f64, plus: f64| {
        let denominator = minus - 2.0 * centre + plus;
        if denominator.abs() < 1e-12 {
            0.0
        } else {
            (0.5 * (minus - plus) / denominator).clamp(-0.5, 0.5)
        }
    };
    let (x, y) = (px as isize, py as isize);
    let sub_x = refine(at(x - 1, y), height, at(x + 1, y));
    let sub_y = refine(at(x, y - 1), height, at(x, y + 1));
    let signed = |p: usize, n: usize| {
        if p > n / 2 {
            p as f64 - n as f64
        } else {
            p as f64
        }
    };
    Shift {
        dx: signed(px, w) + sub_x,
        dy: signed(py, h) + sub_y,
        quality: height.clamp(0.0, 1.0),
    }
}

/// A moving image registered onto a reference: the transform that took the reference to it,
/// and the height of the final (translation) correlation peak as the quality score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Registration {
    pub transform: Similarity,
    pub quality: f64,
}

/// Angle samples over half a turn (a magnitude spectrum repeats after 180 degrees).
const ANGLES: usize = 720;

/// Rotation, scale and shift of `moving` relative to `reference` (same size), by log-polar
/// phase correlation (Reddy & Chatterji, 1996):
///
/// 1. The magnitude of an image's spectrum ignores shifts, turns with the image and shrinks
///    as it grows; in log-polar coordinates a turn and a scale become two shifts, which
///    phase correlation finds. Both are measured on the central square (a spectrum turns
///    with the image only when its axes have the same number of samples).
/// 2. The magnitude cannot tell a turn from one half a turn further: both candidates are
///    undone, and the one whose translation correlates better wins, giving the shift too.
pub fn register(reference: &Image, moving: &Image) -> Result<Registration, RasterError> {
    check_pair(reference, moving)?;
    let (w, h) = (reference.width as usize, reference.height as usize);
    let side = w.min(h);
    if side < 16 {
        return Err(RasterError::Invalid(format!(
            "{w}x{h} is too small to find a rotation and scale (16 px at least)"
        )));
    }
    let square = |image: &Image| {
        let values = grey(image);
        let (x0, y0) = ((w - side) / 2, (h - side) / 2);
        (0..side * side)
            .map(|i| values[(y0 + i / side) * w + x0 + i % side])
            .collect::<Vec<f64>>()
    };
    let radii = side;
    let r_max = side as f64 / 2.0 * 0.95;
    let log_step = r_max.ln() / (radii - 1) as f64;
    let polar = |image: &Image| log_polar(&spectrum(&square(image), side), side, radii, r_max);
    let turn = correlate(
        &polar(reference),
        &polar(moving),
        ANGLES,
        radii,
        Window::RowsOnly,
    );
    let rotation = turn.dx * 180.0 / ANGLES as f64;
    // A larger image has a smaller spectrum: its log-polar rows move up, to smaller radii.
    let scale = (-turn.dy * log_step).exp();
    let fill = moving.data.iter().map(|v| *v as f64).sum::<f64>() / moving.data.len() as f64;
    let mut best: Option<Registration> = None;
    for rotation in [rotation, rotation + 180.0] {
        let turned = Similarity {
            rotation: normalise_degrees(rotation),
            scale,
            dx: 0.0,
            dy: 0.0,
        };
        let undone = moving.transformed(
            &turned.inverse(),
            moving.width,
            moving.height,
            Sampling::Bilinear,
            fill as f32,
        );
        let shift = phase_correlate(reference, &undone)?;
        // The shift was measured before the turn and scale: carry it through them.
        let (dx, dy) = turned.forward(shift.dx, shift.dy);
        let found = Registration {
            transform: Similarity { dx, dy, ..turned },
            quality: shift.quality,
        };
        if best.is_none_or(|b| found.quality > b.quality) {
            best = Some(found);
        }
    }
    Ok(best.expect("two candidates were tried"))
}

/// Degrees in (-180, 180].
fn normalise_degrees(degrees: f64) -> f64 {
    let turned = degrees.rem_euclid(360.0);
    if turned > 180.0 {
        turned - 360.0
    } else {
        turned
    }
}

/// The centred magnitude spectrum of an `n` x `n` grid, windowed first, emphasised by the
/// high-pass `(1 - X)(2 - X)`, `X = cos(pi u) cos(pi v)` (low frequencies, which every
/// image shares, would otherwise dominate), and log-compressed.
fn spectrum(values: &[f64], n: usize) -> Vec<f64> {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let mut data: Vec<Complex<f64>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Complex::new((v - mean) * hann(i % n, n) * hann(i / n, n), 0.0))
        .collect();
    fft2(&mut data, n, n, false);
    let mut out = vec![0.0; n * n];
    for y in 0..n {
        for x in 0..n {
            let (sx, sy) = ((x + n / 2) % n, (y + n / 2) % n);
            let (u, v) = (
                (sx as f64 - (n / 2) as f64) / n as f64,
                (sy as f64 - (n / 2) as f64) / n as f64,
            );
            let cross = (std::f64::consts::PI * u).cos() * (std::f64::consts::PI * v).cos();
            let emphasis = (1.0 - cross) * (2.0 - cross);
            out[sy * n + sx] = (1.0 + emphasis * data[y * n + x].norm()).ln();
        }
    }
    out
}

/// Resamples a centred `n` x `n` spectrum at `ANGLES` angles over half a turn (columns)
/// and `radii` radii spaced evenly in log from 1 to `r_max` (rows), bilinearly.
fn log_polar(spectrum: &[f64], n: usize, radii: usize, r_max: f64) -> Vec<f64> {
    let centre = (n / 2) as f64;
    let at = |x: usize, y: usize| spectrum[y.min(n - 1) * n + x.min(n - 1)];
    let mut out = vec![0.0; ANGLES * radii];
    for row in 0..radii {
        let r = r_max.powf(row as f64 / (radii - 1) as f64);
        for column in 0..ANGLES {
            let angle = std::f64::consts::PI * column as f64 / ANGLES as f64;
            let (x, y) = (centre + r * angle.cos(), centre - r * angle.sin());
            let (x0, y0) = (x.floor().max(0.0), y.floor().max(0.0));
            let (fx, fy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as usize, y0 as usize);
            out[row * ANGLES + column] = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::BitDepth;

    fn texture(width: u32, height: u32) -> Image {
        let mut image = Image::new(width, height, 1, BitDepth::Eight);
        let mut state = 12345u64;
        for v in image.data.iter_mut() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = (state >> 56) as f32;
        }
        image
    }

    #[test]
    fn whole_pixel_shifts_are_found_exactly() {
        let reference = texture(64, 48);
        let moving = reference.translate(5, -3, 0.0);
        let shift = phase_correlate(&reference, &moving).unwrap();
        assert!(
            (shift.dx - 5.0).abs() < 0.1 && (shift.dy + 3.0).abs() < 0.1,
            "{shift:?}"
        );
        assert!(shift.quality > 0.3, "{shift:?}");
        let unrelated = phase_correlate(&reference, &texture(64, 48).rot90(2)).unwrap();
        assert!(unrelated.quality < shift.quality / 2.0, "{unrelated:?}");
    }

    fn nanedi() -> Image {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/samples/nanedi-256.png");
        Image::open(std::path::Path::new(path)).unwrap()
    }

    fn centre(image: &Image, side: u32) -> Image {
        let (x, y) = ((image.width - side) / 2, (image.height - side) / 2);
        image.crop(x, y, side, side).unwrap()
    }

    fn recover(truth: Similarity) -> Registration {
        let image = nanedi();
        let moved = image.transformed(&truth, image.width, image.height, Sampling::Bicubic, 0.0);
        register(&centre(&image, 160), &centre(&moved, 160)).unwrap()
    }

    #[test]
    fn rotation_scale_and_shift_of_a_real_mars_image_are_recovered() {
        for truth in [
            Similarity {
                rotation: 7.0,
                scale: 1.08,
                dx: 3.3,
                dy: -2.1,
            },
            Similarity {
                rotation: -23.5,
                scale: 0.93,
                dx: -1.0,
                dy: 4.0,
            },
            // Beyond a quarter turn: the half-turn ambiguity must be settled the right way.
            Similarity {
                rotation: 120.0,
                scale: 1.0,
                dx: 0.0,
                dy: 0.0,
            },
        ] {
            let found = recover(truth);
            let t = found.transform;
            assert!(
                (t.rotation - truth.rotation).abs() < 0.5,
                "{truth:?} -> {found:?}"
            );
            assert!(
                (t.scale / truth.scale - 1.0).abs() < 0.01,
                "{truth:?} -> {found:?}"
            );
            assert!(
                (t.dx - truth.dx).abs() < 1.0 && (t.dy - truth.dy).abs() < 1.0,
                "{truth:?} -> {found:?}"
            );
            assert!(found.quality > 0.2, "{found:?}");
        }
    }

    #[test]
    fn a_registered_image_undone_matches_its_reference() {
        let truth = Similarity {
            rotation: 12.0,
            scale: 1.05,
            dx: 2.0,
            dy: 1.0,
        };
        let image = centre(&nanedi(), 200);
        let moved = image.transformed(&truth, 200, 200, Sampling::Bicubic, 0.0);
        let found = register(&image, &moved).unwrap();
        let undone =
            moved.transformed(&found.transform.inverse(), 200, 200, Sampling::Bicubic, 0.0);
        // Away from the borders the aligned copy is the reference to within a few levels.
        let (reference, aligned) = (centre(&image, 100), centre(&undone, 100));
        let mean_error = reference
            .data
            .iter()
            .zip(&aligned.data)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / reference.data.len() as f64;
        assert!(mean_error < 4.0, "mean absolute error {mean_error}");
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let error = phase_correlate(&texture(8, 8), &texture(9, 8)).unwrap_err();
        assert!(error.to_string().contains("crop them to the same size"));
    }
}
