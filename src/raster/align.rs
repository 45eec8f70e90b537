//! Registration: how far a moving image is shifted from a reference, by phase correlation.
//!
//! Both images (averaged to one band) are windowed (Hann, so the image borders do not
//! correlate), transformed (2-D FFT), and their normalised cross-power spectrum transformed
//! back: its peak sits at the shift. A parabola through the peak and its neighbours gives
//! the sub-pixel part. The peak's height (near 1 for a clean match, near 0 for none) is the
//! quality score.

use super::{Image, RasterError};
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

/// The shift of `moving` relative to `reference` (same size).
pub fn phase_correlate(reference: &Image, moving: &Image) -> Result<Shift, RasterError> {
    if (reference.width, reference.height) != (moving.width, moving.height) {
        return Err(RasterError::Invalid(format!(
            "cannot align a {}x{} image onto a {}x{} one: crop them to the same size",
            moving.width, moving.height, reference.width, reference.height
        )));
    }
    let (w, h) = (reference.width as usize, reference.height as usize);
    if w < 4 || h < 4 {
        return Err(RasterError::Invalid(format!(
            "{w}x{h} is too small to align"
        )));
    }
    let hann =
        |i: usize, n: usize| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / (n - 1) as f64).cos();
    let prepare = |image: &Image| {
        let values = grey(image);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let mut out: Vec<Complex<f64>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Complex::new((v - mean) * hann(i % w, w) * hann(i / w, h), 0.0))
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
    Ok(Shift {
        dx: signed(px, w) + sub_x,
        dy: signed(py, h) + sub_y,
        quality: height.clamp(0.0, 1.0),
    })
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

    #[test]
    fn mismatched_sizes_are_refused() {
        let error = phase_correlate(&texture(8, 8), &texture(9, 8)).unwrap_err();
        assert!(error.to_string().contains("crop them to the same size"));
    }
}
