//! Rotation by any angle and similarity transforms (rotation, scale, shift), sampled with
//! imageproc's nearest, bilinear or bicubic interpolation, one band at a time.
//!
//! Pixel centres sit at whole coordinates, so an image's centre is `((w - 1) / 2,
//! (h - 1) / 2)` and a quarter turn lands every sample exactly on another.

use super::Image;
use image::{ImageBuffer, Luma};
use imageproc::geometric_transformations::{warp_into_with, Border, Interpolation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    Nearest,
    Bilinear,
    Bicubic,
}

impl From<Sampling> for Interpolation {
    fn from(value: Sampling) -> Self {
        match value {
            Sampling::Nearest => Interpolation::Nearest,
            Sampling::Bilinear => Interpolation::Bilinear,
            Sampling::Bicubic => Interpolation::Bicubic,
        }
    }
}

/// Where a moving image's content came from in a reference: the reference rotated
/// counter-clockwise (as seen on screen) by `rotation` degrees about the image centre,
/// scaled by `scale` about it, then moved right by `dx` and down by `dy` pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Similarity {
    pub rotation: f64,
    pub scale: f64,
    pub dx: f64,
    pub dy: f64,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity {
        rotation: 0.0,
        scale: 1.0,
        dx: 0.0,
        dy: 0.0,
    };

    /// Where the point `(x, y)` (relative to the centre) goes: `scale * R * p + d`.
    pub fn forward(&self, x: f64, y: f64) -> (f64, f64) {
        let (sin, cos) = self.rotation.to_radians().sin_cos();
        // Counter-clockwise on screen, where y points down.
        let (rx, ry) = (cos * x + sin * y, -sin * x + cos * y);
        (self.scale * rx + self.dx, self.scale * ry + self.dy)
    }

    /// The transform that undoes this one.
    pub fn inverse(&self) -> Similarity {
        let undo = Similarity {
            rotation: -self.rotation,
            scale: 1.0 / self.scale,
            dx: 0.0,
            dy: 0.0,
        };
        let (dx, dy) = undo.forward(-self.dx, -self.dy);
        Similarity { dx, dy, ..undo }
    }
}

/// The centre of a `width` x `height` canvas, pixel centres sitting at whole coordinates:
/// what rotations and similarity warps turn about.
pub fn centre(width: u32, height: u32) -> [f64; 2] {
    [(width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0]
}

impl Image {
    /// Samples a `width` x `height` image whose pixel `(x, y)` is this image's at
    /// `source(x, y)`; what falls outside takes `fill`.
    fn resample(
        &self,
        width: u32,
        height: u32,
        sampling: Sampling,
        fill: f32,
        source: impl Fn(f32, f32) -> (f32, f32) + Send + Sync,
    ) -> Image {
        let bands = self.bands as usize;
        let mut out = Image::new(width, height, self.bands, self.depth);
        for band in 0..bands {
            let plane: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_vec(
                self.width,
                self.height,
                self.data
                    .iter()
                    .skip(band)
                    .step_by(bands)
                    .copied()
                    .collect(),
            )
            .expect("the plane has width x height samples");
            let mut warped = ImageBuffer::new(width, height);
            warp_into_with(
                &plane,
                &source,
                sampling.into(),
                Border::Constant(Luma([fill])),
                &mut warped,
            );
            for (slot, value) in out
                .data
                .iter_mut()
                .skip(band)
                .step_by(bands)
                .zip(warped.into_raw())
            {
                *slot = value;
            }
        }
        out
    }

    /// Rotates counter-clockwise by `degrees` about the centre. `expand` grows the canvas to
    /// hold the whole rotated image; otherwise it keeps its size and the corners are cut.
    pub fn rotate(&self, degrees: f64, sampling: Sampling, expand: bool, fill: f32) -> Image {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let (w, h) = (self.width as f64, self.height as f64);
        let fit = |extent: f64| {
            // 90 degrees gives 511.99999 for 512: round what is a whole number but for noise.
            if (extent - extent.round()).abs() < 1e-6 {
                extent.round() as u32
            } else {
                extent.ceil() as u32
            }
        };
        let (width, height) = if expand {
            (
                fit(w * cos.abs() + h * sin.abs()),
                fit(w * sin.abs() + h * cos.abs()),
            )
        } else {
            (self.width, self.height)
        };
        let rotation = Similarity {
            rotation: degrees,
            ..Similarity::IDENTITY
        };
        self.transformed(&rotation, width, height, sampling, fill)
    }

    /// This image transformed by `t` (see [`Similarity`]), on a `width` x `height` canvas
    /// with the same centre.
    pub fn transformed(
        &self,
        t: &Similarity,
        width: u32,
        height: u32,
        sampling: Sampling,
        fill: f32,
    ) -> Image {
        let back = t.inverse();
        let [cx_in, cy_in] = centre(self.width, self.height);
        let [cx_out, cy_out] = centre(width, height);
        self.resample(width, height, sampling, fill, move |x, y| {
            let (sx, sy) = back.forward(x as f64 - cx_out, y as f64 - cy_out);
            ((sx + cx_in) as f32, (sy + cy_in) as f32)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::BitDepth;

    fn ramp(width: u32, height: u32, bands: u32) -> Image {
        let mut image = Image::new(width, height, bands, BitDepth::Eight);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = (i % 251) as f32;
        }
        image
    }

    #[test]
    fn a_quarter_turn_matches_rot90_exactly() {
        let image = ramp(7, 4, 3);
        for sampling in [Sampling::Nearest, Sampling::Bilinear, Sampling::Bicubic] {
            let turned = image.rotate(90.0, sampling, true, -1.0);
            let expected = image.rot90(3);
            assert_eq!((turned.width, turned.height), (4, 7), "{sampling:?}");
            for (got, want) in turned.data.iter().zip(&expected.data) {
                assert!((got - want).abs() < 1e-3, "{sampling:?}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn four_quarter_turns_give_the_image_back() {
        let image = ramp(6, 6, 1);
        let mut turned = image.clone();
        for _ in 0..4 {
            turned = turned.rotate(90.0, Sampling::Bilinear, false, 0.0);
        }
        for (got, want) in turned.data.iter().zip(&image.data) {
            assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn a_45_degree_turn_moves_a_pixel_where_the_geometry_says() {
        // One bright pixel 4 px right of the centre of a 9x9 image; turned 45 degrees
        // counter-clockwise it lands at (4 + 4 cos 45, 4 - 4 sin 45) = (6.83, 1.17).
        let mut image = Image::new(9, 9, 1, BitDepth::Eight);
        image.data[4 * 9 + 8] = 200.0;
        let turned = image.rotate(45.0, Sampling::Nearest, false, 0.0);
        assert_eq!(turned.data[9 + 7], 200.0);
        assert_eq!(turned.data.iter().filter(|v| **v > 0.0).count(), 1);
        let expanded = image.rotate(45.0, Sampling::Bilinear, true, 0.0);
        // 9 * (cos 45 + sin 45) = 12.73 -> 13.
        assert_eq!((expanded.width, expanded.height), (13, 13));
        // Its centre is (6, 6): the pixel lands near (8.83, 3.17), brightest at (9, 3).
        let brightest = (0..expanded.data.len())
            .max_by(|a, b| expanded.data[*a].total_cmp(&expanded.data[*b]))
            .unwrap();
        assert_eq!((brightest % 13, brightest / 13), (9, 3));
    }

    #[test]
    fn what_rotates_out_of_the_image_takes_the_fill() {
        let image = ramp(10, 10, 1);
        let turned = image.rotate(30.0, Sampling::Bilinear, true, 7.0);
        assert_eq!(turned.data[0], 7.0, "a corner of the grown canvas");
    }

    #[test]
    fn a_transform_and_its_inverse_cancel() {
        let t = Similarity {
            rotation: 17.0,
            scale: 1.3,
            dx: 4.5,
            dy: -2.0,
        };
        let (x, y) = t.forward(3.0, -8.0);
        let (bx, by) = t.inverse().forward(x, y);
        assert!((bx - 3.0).abs() < 1e-9 && (by + 8.0).abs() < 1e-9);
        let shifted = Similarity {
            dx: 2.0,
            dy: 1.0,
            ..Similarity::IDENTITY
        };
        let image = ramp(8, 8, 1);
        let moved = image.transformed(&shifted, 8, 8, Sampling::Nearest, 0.0);
        assert_eq!(moved.data[8 + 2], image.data[0], "(0,0) moved to (2,1)");
    }
}
