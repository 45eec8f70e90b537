//! Images read top to bottom a few rows at a time, so a 20,000 x 20,000 scene can be cut
//! into chips holding only a strip of it in memory.

use super::{BitDepth, Image, RasterError};
use std::borrow::Borrow;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// An image's rows, in order.
pub trait RowSource {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    fn bands(&self) -> u32;
    fn depth(&self) -> BitDepth;
    /// Appends the next `rows` rows (samples interleaved by band) to `out`.
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError>;
}

/// The rows of an image already in memory, borrowed or owned.
pub struct ImageRows<B> {
    image: B,
    next: u32,
}

impl<B: Borrow<Image>> ImageRows<B> {
    pub fn new(image: B) -> Self {
        ImageRows { image, next: 0 }
    }
}

impl<B: Borrow<Image>> RowSource for ImageRows<B> {
    fn width(&self) -> u32 {
        self.image.borrow().width
    }
    fn height(&self) -> u32 {
        self.image.borrow().height
    }
    fn bands(&self) -> u32 {
        self.image.borrow().bands
    }
    fn depth(&self) -> BitDepth {
        self.image.borrow().depth
    }
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError> {
        let image = self.image.borrow();
        let end = (self.next + rows).min(image.height);
        let row = (image.width * image.bands) as usize;
        out.extend_from_slice(&image.data[self.next as usize * row..end as usize * row]);
        self.next = end;
        Ok(())
    }
}

/// A PNG decoded row by row: greyscale or RGB, 8 or 16 bits, not interlaced (the forms
/// `Image::open` gives the same bands for; others are decoded whole instead).
pub struct PngRows {
    path: PathBuf,
    reader: png::Reader<BufReader<std::fs::File>>,
    bands: u32,
    depth: BitDepth,
}

impl PngRows {
    /// `Ok(None)` when the file is a PNG this reader does not stream (palette, alpha,
    /// interlaced, 1-4 bit).
    pub fn open(path: &Path) -> Result<Option<Self>, RasterError> {
        let fail = |message: String| RasterError::Decode {
            path: path.to_path_buf(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let reader = png::Decoder::new(BufReader::new(file))
            .read_info()
            .map_err(|e| fail(e.to_string()))?;
        let info = reader.info();
        let bands = match info.color_type {
            png::ColorType::Grayscale => 1,
            png::ColorType::Rgb => 3,
            _ => return Ok(None),
        };
        let depth = match info.bit_depth {
            png::BitDepth::Eight => BitDepth::Eight,
            png::BitDepth::Sixteen => BitDepth::Sixteen,
            _ => return Ok(None),
        };
        if info.interlaced {
            return Ok(None);
        }
        Ok(Some(PngRows {
            path: path.to_path_buf(),
            reader,
            bands,
            depth,
        }))
    }
}

impl RowSource for PngRows {
    fn width(&self) -> u32 {
        self.reader.info().width
    }
    fn height(&self) -> u32 {
        self.reader.info().height
    }
    fn bands(&self) -> u32 {
        self.bands
    }
    fn depth(&self) -> BitDepth {
        self.depth
    }
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError> {
        for _ in 0..rows {
            let row = self.reader.next_row().map_err(|e| RasterError::Decode {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            let Some(row) = row else {
                return Err(RasterError::Decode {
                    path: self.path.clone(),
                    message: "the image ends before its last row".into(),
                });
            };
            match self.depth {
                BitDepth::Eight => out.extend(row.data().iter().map(|v| *v as f32)),
                BitDepth::Sixteen => out.extend(
                    row.data()
                        .chunks_exact(2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32),
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::tile::{tile, tile_rows, Chip, Edge, TileSpec};

    fn pattern(width: u32, height: u32, bands: u32, depth: BitDepth) -> Image {
        let mut image = Image::new(width, height, bands, depth);
        for (i, v) in image.data.iter_mut().enumerate() {
            *v = ((i * 37) % depth.max() as usize) as f32;
        }
        image
    }

    fn streamed(path: &Path, spec: &TileSpec) -> Vec<Chip> {
        let mut rows = PngRows::open(path).unwrap().expect("a streamable PNG");
        let mut chips = Vec::new();
        tile_rows(&mut rows, spec, |chip| {
            chips.push(chip);
            Ok::<(), RasterError>(())
        })
        .unwrap();
        chips
    }

    #[test]
    fn png_strips_give_the_same_chips_as_the_whole_image() {
        let dir = tempfile::tempdir().unwrap();
        let specs = [
            TileSpec {
                size: 16,
                stride: 16,
                edge: Edge::ShiftInward,
                skip_no_data: None,
            },
            TileSpec {
                size: 16,
                stride: 10,
                edge: Edge::Pad(3.0),
                skip_no_data: None,
            },
            // Gaps between chips: rows are read and dropped.
            TileSpec {
                size: 8,
                stride: 20,
                edge: Edge::Drop,
                skip_no_data: None,
            },
        ];
        for (bands, depth) in [
            (1, BitDepth::Eight),
            (1, BitDepth::Sixteen),
            (3, BitDepth::Eight),
        ] {
            let image = pattern(45, 37, bands, depth);
            let path = dir.path().join(format!("p{bands}{depth:?}.png"));
            image.save_png(&path).unwrap();
            for spec in &specs {
                let expected = tile(&image, spec).unwrap();
                let got = streamed(&path, spec);
                assert_eq!(got, expected, "{bands} band(s), {depth:?}, {spec:?}");
            }
        }
    }

    #[test]
    fn a_truncated_png_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.png");
        pattern(64, 64, 1, BitDepth::Eight).save_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let spec = TileSpec {
            size: 16,
            stride: 16,
            edge: Edge::Drop,
            skip_no_data: None,
        };
        let mut rows = PngRows::open(&path).unwrap().unwrap();
        let error = tile_rows(&mut rows, &spec, |_| Ok::<(), RasterError>(())).unwrap_err();
        assert!(error.to_string().contains("cut.png"), "{error}");
    }
}
