//! Rasters and the pixel operations on them: decode, crop (also of no-data margins), shift,
//! flip and quarter turns, bit depth and contrast stretches, tiles and their stitching.
//!
//! An [`Image`] holds samples as `f32` (exact for 8- and 16-bit data), interleaved by pixel,
//! and remembers the bit depth it came in and goes out at.

pub mod align;
pub mod jp2;
pub mod rows;
pub mod tile;
mod warp;
pub use warp::{centre, Sampling, Similarity};

use std::path::Path;

/// A PNG encoder for `bands` (grey or RGB) samples at `depth`, writing to `out`.
fn png_encoder<W: std::io::Write>(
    out: W,
    width: u32,
    height: u32,
    bands: u32,
    depth: BitDepth,
) -> Result<png::Encoder<'static, W>, String> {
    let mut encoder = png::Encoder::new(out, width, height);
    // fdeflate: several times faster than zlib's default level, files a little larger;
    // chips are written by the thousand and read back by training, not archived.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_color(match bands {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        n => return Err(format!("cannot write {n} bands as PNG")),
    });
    encoder.set_depth(match depth {
        BitDepth::Eight => png::BitDepth::Eight,
        BitDepth::Sixteen => png::BitDepth::Sixteen,
    });
    Ok(encoder)
}

/// Samples as PNG bytes at `depth` (rounded, clamped to the depth's range), appended to `out`.
fn png_samples(depth: BitDepth, samples: &[f32], out: &mut Vec<u8>) {
    let max = depth.max();
    match depth {
        BitDepth::Eight => out.extend(samples.iter().map(|v| v.round().clamp(0.0, max) as u8)),
        BitDepth::Sixteen => out.extend(
            samples
                .iter()
                .flat_map(|v| (v.round().clamp(0.0, max) as u16).to_be_bytes()),
        ),
    }
}

/// Resampling for [`Image::resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Nearest,
    Bilinear,
    /// Each output pixel the mean of the input pixels it covers: the one for shrinking.
    Area,
    Lanczos3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    Eight,
    Sixteen,
}

impl BitDepth {
    pub fn max(self) -> f32 {
        match self {
            BitDepth::Eight => 255.0,
            BitDepth::Sixteen => 65535.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub bands: u32,
    pub depth: BitDepth,
    /// `(y * width + x) * bands + band`.
    pub data: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("{}: {message}", path.display())]
    Decode {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(message: impl Into<String>) -> Result<T, RasterError> {
    Err(RasterError::Invalid(message.into()))
}

impl Image {
    pub fn new(width: u32, height: u32, bands: u32, depth: BitDepth) -> Self {
        Image {
            width,
            height,
            bands,
            depth,
            data: vec![0.0; (width * height * bands) as usize],
        }
    }

    pub fn get(&self, x: u32, y: u32, band: u32) -> f32 {
        self.data[((y * self.width + x) * self.bands + band) as usize]
    }

    pub fn set(&mut self, x: u32, y: u32, band: u32, value: f32) {
        self.data[((y * self.width + x) * self.bands + band) as usize] = value;
    }

    fn pixel(&self, x: u32, y: u32) -> &[f32] {
        let start = ((y * self.width + x) * self.bands) as usize;
        &self.data[start..start + self.bands as usize]
    }

    /// Reads PNG, JPEG, TIFF, PGM or JPEG 2000, 8 or 16 bits, grey or colour (alpha
    /// dropped), whole: large JPEG 2000 products are read by region ([`jp2`]) instead.
    pub fn open(path: &Path) -> Result<Self, RasterError> {
        let fail = |message: String| RasterError::Decode {
            path: path.to_path_buf(),
            message,
        };
        // One open: the first bytes tell JPEG 2000 (decoded by OpenJPEG) from the formats
        // the image crate guesses from the same bytes.
        let mut file =
            std::io::BufReader::new(std::fs::File::open(path).map_err(|e| fail(e.to_string()))?);
        let start = std::io::BufRead::fill_buf(&mut file).map_err(|e| fail(e.to_string()))?;
        if jp2::is_jpeg2000(start) {
            return jp2::decode(path, 0);
        }
        let decoded = image::ImageReader::new(file)
            .with_guessed_format()
            .map_err(|e| fail(e.to_string()))?
            .decode()
            .map_err(|e| fail(e.to_string()))?;
        let (width, height) = (decoded.width(), decoded.height());
        let sixteen = matches!(
            decoded.color().bytes_per_pixel() / decoded.color().channel_count(),
            2 | 4
        );
        let grey = !decoded.color().has_color();
        fn samples<T: Into<f32>>(raw: Vec<T>) -> Vec<f32> {
            raw.into_iter().map(Into::into).collect()
        }
        let (bands, data) = match (grey, sixteen) {
            (true, false) => (1, samples(decoded.into_luma8().into_raw())),
            (true, true) => (1, samples(decoded.into_luma16().into_raw())),
            (false, false) => (3, samples(decoded.into_rgb8().into_raw())),
            (false, true) => (3, samples(decoded.into_rgb16().into_raw())),
        };
        let depth = if sixteen {
            BitDepth::Sixteen
        } else {
            BitDepth::Eight
        };
        Ok(Image {
            width,
            height,
            bands,
            depth,
            data,
        })
    }

    /// Writes a PNG at the image's bit depth (values rounded and clamped), atomically.
    pub fn save_png(&self, path: &Path) -> Result<(), RasterError> {
        let fail = |e: std::io::Error| RasterError::Decode {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        crate::fsio::write_atomically(path, &self.encode_png()?).map_err(fail)
    }

    /// The image as PNG bytes, at its bit depth (values rounded and clamped).
    pub fn encode_png(&self) -> Result<Vec<u8>, RasterError> {
        let mut out = Vec::new();
        let encoder = png_encoder(&mut out, self.width, self.height, self.bands, self.depth)
            .map_err(RasterError::Invalid)?;
        let mut bytes = Vec::new();
        png_samples(self.depth, &self.data, &mut bytes);
        let mut writer = encoder
            .write_header()
            .map_err(|e| RasterError::Invalid(e.to_string()))?;
        writer
            .write_image_data(&bytes)
            .map_err(|e| RasterError::Invalid(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| RasterError::Invalid(e.to_string()))?;
        Ok(out)
    }

    /// The window `x, y, width, height`, which must lie inside the image and not be empty.
    pub fn crop(&self, x: u32, y: u32, width: u32, height: u32) -> Result<Image, RasterError> {
        if width == 0 || height == 0 {
            return invalid(format!("crop of {width} x {height} pixels is empty"));
        }
        if x.checked_add(width).is_none_or(|r| r > self.width)
            || y.checked_add(height).is_none_or(|b| b > self.height)
        {
            return invalid(format!(
                "crop {width}x{height} at ({x},{y}) reaches outside the {}x{} image",
                self.width, self.height
            ));
        }
        let mut out = Image::new(width, height, self.bands, self.depth);
        let row = (width * self.bands) as usize;
        for r in 0..height {
            let from = (((y + r) * self.width + x) * self.bands) as usize;
            out.data[r as usize * row..(r as usize + 1) * row]
                .copy_from_slice(&self.data[from..from + row]);
        }
        Ok(out)
    }

    /// The smallest window holding every pixel with a band other than `no_data` (the black
    /// margins around map-projected HiRISE products), or `None` if all of it is no data.
    pub fn data_window(&self, no_data: f32) -> Option<(u32, u32, u32, u32)> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.pixel(x, y).iter().any(|v| *v != no_data) {
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                }
            }
        }
        (x0 != u32::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
    }

    /// Shifted by whole pixels; uncovered pixels take `fill`.
    pub fn translate(&self, dx: i64, dy: i64, fill: f32) -> Image {
        let mut out = Image {
            data: vec![fill; self.data.len()],
            ..self.clone()
        };
        for y in 0..self.height as i64 {
            for x in 0..self.width as i64 {
                let (sx, sy) = (x - dx, y - dy);
                if sx >= 0 && sy >= 0 && sx < self.width as i64 && sy < self.height as i64 {
                    for b in 0..self.bands {
                        out.set(x as u32, y as u32, b, self.get(sx as u32, sy as u32, b));
                    }
                }
            }
        }
        out
    }

    pub fn flip_horizontal(&self) -> Image {
        self.remap(self.width, self.height, |x, y| (self.width - 1 - x, y))
    }

    pub fn flip_vertical(&self) -> Image {
        self.remap(self.width, self.height, |x, y| (x, self.height - 1 - y))
    }

    /// Turned clockwise by `quarters` quarter turns.
    pub fn rot90(&self, quarters: u32) -> Image {
        let (w, h) = (self.width, self.height);
        match quarters % 4 {
            0 => self.clone(),
            1 => self.remap(h, w, |x, y| (y, h - 1 - x)),
            2 => self.remap(w, h, |x, y| (w - 1 - x, h - 1 - y)),
            _ => self.remap(h, w, |x, y| (w - 1 - y, x)),
        }
    }

    /// A new image whose pixel (x, y) is this one's `source(x, y)`.
    fn remap(&self, width: u32, height: u32, source: impl Fn(u32, u32) -> (u32, u32)) -> Image {
        let mut out = Image::new(width, height, self.bands, self.depth);
        for y in 0..height {
            for x in 0..width {
                let (sx, sy) = source(x, y);
                for b in 0..self.bands {
                    out.set(x, y, b, self.get(sx, sy, b));
                }
            }
        }
        out
    }

    /// Resampled to `width` x `height` (SIMD convolution from fast_image_resize, in f32).
    pub fn resize(&self, width: u32, height: u32, filter: Filter) -> Result<Image, RasterError> {
        use fast_image_resize::{images, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
        if width == 0 || height == 0 {
            return invalid(format!("cannot scale to {width} x {height} pixels"));
        }
        let pixel = match self.bands {
            1 => PixelType::F32,
            3 => PixelType::F32x3,
            n => return invalid(format!("cannot scale an image of {n} bands")),
        };
        let mut source = images::Image::new(self.width, self.height, pixel);
        for (bytes, value) in source.buffer_mut().chunks_exact_mut(4).zip(&self.data) {
            bytes.copy_from_slice(&value.to_ne_bytes());
        }
        let mut target = images::Image::new(width, height, pixel);
        let algorithm = match filter {
            Filter::Nearest => ResizeAlg::Nearest,
            Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Filter::Area => ResizeAlg::Convolution(FilterType::Box),
            Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        };
        Resizer::new()
            .resize(
                &source,
                &mut target,
                &ResizeOptions::new().resize_alg(algorithm),
            )
            .map_err(|e| RasterError::Invalid(format!("resize: {e}")))?;
        let data = target
            .buffer()
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Image {
            width,
            height,
            data,
            ..self.clone()
        })
    }

    /// The same picture at another bit depth: 8 -> 16 multiplies by 257 (255 becomes 65535),
    /// 16 -> 8 divides and rounds, so 8 -> 16 -> 8 is exact.
    pub fn to_depth(&self, depth: BitDepth) -> Image {
        let factor = depth.max() / self.depth.max();
        Image {
            depth,
            data: self.data.iter().map(|v| (v * factor).round()).collect(),
            ..self.clone()
        }
    }

    /// Values at the `low` and `high` percentiles (0-100) of all samples except `no_data`.
    pub fn percentiles(&self, low: f64, high: f64, no_data: Option<f32>) -> Option<(f32, f32)> {
        let mut values: Vec<f32> = self
            .data
            .iter()
            .copied()
            .filter(|v| Some(*v) != no_data && !v.is_nan())
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f32::total_cmp);
        let at = |p: f64| {
            values[((p / 100.0 * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)]
        };
        Some((at(low), at(high)))
    }

    /// Linear stretch of `[low, high]` onto the full range of `depth`, clamped, then a gamma
    /// (1.0 for none). `no_data` stays 0.
    pub fn stretch(
        &self,
        low: f32,
        high: f32,
        gamma: f32,
        depth: BitDepth,
        no_data: Option<f32>,
    ) -> Result<Image, RasterError> {
        if high <= low {
            return invalid(format!("stretch range {low}..{high} is empty"));
        }
        let max = depth.max();
        let data = self
            .data
            .iter()
            .map(|v| {
                if Some(*v) == no_data || v.is_nan() {
                    return 0.0;
                }
                let t = ((v - low) / (high - low)).clamp(0.0, 1.0);
                (t.powf(1.0 / gamma) * max).round()
            })
            .collect();
        Ok(Image {
            depth,
            data,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(width: u32, height: u32) -> Image {
        let mut image = Image::new(width, height, 1, BitDepth::Eight);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = i as f32;
        }
        image
    }

    #[test]
    fn crops_take_the_window_and_refuse_bad_ones() {
        let image = grid(4, 3);
        assert_eq!(image.crop(1, 1, 2, 2).unwrap().data, [5.0, 6.0, 9.0, 10.0]);
        assert_eq!(
            image.crop(0, 0, 0, 3).unwrap_err().to_string(),
            "crop of 0 x 3 pixels is empty"
        );
        assert_eq!(
            image.crop(3, 0, 2, 1).unwrap_err().to_string(),
            "crop 2x1 at (3,0) reaches outside the 4x3 image"
        );
    }

    #[test]
    fn the_data_window_skips_no_data_margins() {
        let mut image = Image::new(6, 5, 1, BitDepth::Eight);
        image.set(2, 1, 0, 7.0);
        image.set(4, 3, 0, 9.0);
        assert_eq!(image.data_window(0.0), Some((2, 1, 3, 3)));
        assert_eq!(Image::new(2, 2, 1, BitDepth::Eight).data_window(0.0), None);
    }

    #[test]
    fn shifts_flips_and_quarter_turns() {
        let image = grid(3, 2); // 0 1 2 / 3 4 5
        assert_eq!(
            image.translate(1, 0, 9.0).data,
            [9.0, 0.0, 1.0, 9.0, 3.0, 4.0]
        );
        assert_eq!(
            image.translate(0, -1, 9.0).data,
            [3.0, 4.0, 5.0, 9.0, 9.0, 9.0]
        );
        assert_eq!(image.flip_horizontal().data, [2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        assert_eq!(image.flip_vertical().data, [3.0, 4.0, 5.0, 0.0, 1.0, 2.0]);
        let turned = image.rot90(1);
        assert_eq!((turned.width, turned.height), (2, 3));
        assert_eq!(turned.data, [3.0, 0.0, 4.0, 1.0, 5.0, 2.0], "clockwise");
        assert_eq!(image.rot90(3).data, [2.0, 5.0, 1.0, 4.0, 0.0, 3.0]);
        assert_eq!(image.rot90(1).rot90(1).rot90(1).rot90(1), image);
    }

    #[test]
    fn bit_depths_round_trip_and_stretches_map_percentiles() {
        let image = grid(16, 16); // 0..=255
        let wide = image.to_depth(BitDepth::Sixteen);
        assert_eq!((wide.get(1, 0, 0), wide.get(15, 15, 0)), (257.0, 65535.0));
        assert_eq!(wide.to_depth(BitDepth::Eight), image);
        let (low, high) = image.percentiles(2.0, 98.0, None).unwrap();
        assert_eq!(
            (low, high),
            (5.0, 250.0),
            "2% of 255 steps is 5.1 -> 5; 98% is 249.9 -> 250"
        );
        let stretched = image
            .stretch(low, high, 1.0, BitDepth::Eight, None)
            .unwrap();
        assert_eq!(
            (
                stretched.get(5, 0, 0),
                stretched.get(0, 0, 0),
                stretched.get(10, 15, 0)
            ),
            (0.0, 0.0, 255.0)
        );
        assert_eq!(
            stretched.get(15, 7, 0),
            127.0,
            "(127 - 5) / 245 * 255 = 126.98"
        );
        // Gamma 2 on 63: sqrt(63 / 255) * 255 = 126.75.
        assert_eq!(
            image
                .stretch(0.0, 255.0, 2.0, BitDepth::Eight, None)
                .unwrap()
                .get(15, 3, 0),
            127.0
        );
        assert!(image.stretch(3.0, 3.0, 1.0, BitDepth::Eight, None).is_err());
    }

    #[test]
    fn pngs_round_trip_at_16_bits_and_truncated_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut image = Image::new(3, 2, 1, BitDepth::Sixteen);
        image.data = vec![0.0, 1.0, 257.0, 1000.0, 40000.0, 65535.0];
        let path = dir.path().join("x.png");
        image.save_png(&path).unwrap();
        assert_eq!(Image::open(&path).unwrap(), image);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let error = Image::open(&path).unwrap_err().to_string();
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        std::fs::write(&path, b"not an image at all").unwrap();
        assert!(Image::open(&path).is_err());
    }

    #[test]
    fn resizing_averages_areas_and_repeats_nearest_pixels() {
        let mut image = Image::new(4, 2, 1, BitDepth::Eight);
        image.data = vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0];
        let half = image.resize(2, 1, Filter::Area).unwrap();
        assert_eq!(half.data, [25.0, 45.0], "means of the 2 x 2 blocks");
        let double = image.resize(8, 4, Filter::Nearest).unwrap();
        assert_eq!(
            &double.data[..8],
            &[0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0, 30.0]
        );
        assert_eq!(double.get(7, 3, 0), 70.0);
        let flat = Image {
            data: vec![100.0; 8],
            ..image.clone()
        };
        for filter in [Filter::Bilinear, Filter::Lanczos3] {
            assert!(
                flat.resize(3, 5, filter)
                    .unwrap()
                    .data
                    .iter()
                    .all(|v| (v - 100.0).abs() < 1e-3),
                "{filter:?} keeps a flat image flat"
            );
        }
        assert!(image.resize(0, 3, Filter::Area).is_err());
    }
}
