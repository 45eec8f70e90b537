//! Images read top to bottom a few rows at a time, so a 20,000 x 20,000 scene can be cut
//! into chips holding only a strip of it in memory.

use super::{png_encoder, png_samples, BitDepth, Image, RasterError};
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

/// A PNG written a strip of rows at a time (grey or RGB, 8 or 16 bits), so an output as
/// large as a whole product never has to be in memory. It is written to `NAME.part` and
/// appears under its name, fsynced, only when [`PngRowWriter::finish`] succeeds; dropped
/// unfinished, the part is removed.
pub struct PngRowWriter {
    path: PathBuf,
    part: PathBuf,
    /// The same file as the encoder's, for the fsync after the encoder is done with it.
    file: std::fs::File,
    stream: Option<png::StreamWriter<'static, std::io::BufWriter<std::fs::File>>>,
    depth: BitDepth,
    bytes: Vec<u8>,
    in_place: bool,
}

impl PngRowWriter {
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        bands: u32,
        depth: BitDepth,
    ) -> Result<Self, RasterError> {
        let fail = |message: String| RasterError::Decode {
            path: path.to_path_buf(),
            message,
        };
        let part = crate::fsio::part_path(path);
        let file = std::fs::File::create(&part).map_err(|e| fail(e.to_string()))?;
        let sync_handle = file.try_clone().map_err(|e| fail(e.to_string()))?;
        let stream = png_encoder(std::io::BufWriter::new(file), width, height, bands, depth)
            .map_err(fail)
            .and_then(|encoder| {
                encoder
                    .write_header()
                    .and_then(|w| w.into_stream_writer())
                    .map_err(|e| fail(e.to_string()))
            });
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                let _ = std::fs::remove_file(&part);
                return Err(error);
            }
        };
        Ok(PngRowWriter {
            path: path.to_path_buf(),
            part,
            file: sync_handle,
            stream: Some(stream),
            depth,
            bytes: Vec::new(),
            in_place: false,
        })
    }

    /// Writes whole rows of samples (bands interleaved), rounded and clamped to the depth.
    pub fn write_rows(&mut self, samples: &[f32]) -> Result<(), RasterError> {
        self.bytes.clear();
        png_samples(self.depth, samples, &mut self.bytes);
        let stream = self.stream.as_mut().expect("not finished");
        std::io::Write::write_all(stream, &self.bytes).map_err(|e| RasterError::Decode {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Completes the file (every row must have been written), syncs it and puts it in place.
    pub fn finish(mut self) -> Result<(), RasterError> {
        let fail = |message: String| RasterError::Decode {
            path: self.path.clone(),
            message,
        };
        let stream = self.stream.take().expect("finished once");
        stream.finish().map_err(|e| fail(e.to_string()))?;
        self.file.sync_all().map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&self.part, &self.path).map_err(|e| fail(e.to_string()))?;
        self.in_place = true;
        Ok(())
    }
}

impl Drop for PngRowWriter {
    fn drop(&mut self) {
        if !self.in_place {
            // The encoder's own drop writes an end marker to the short file; then it goes.
            drop(self.stream.take());
            let _ = std::fs::remove_file(&self.part);
        }
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

    #[test]
    fn a_png_written_in_strips_reads_back_and_an_unfinished_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for (bands, depth) in [(1, BitDepth::Sixteen), (3, BitDepth::Eight)] {
            let image = pattern(23, 17, bands, depth);
            let path = dir.path().join(format!("strips{bands}.png"));
            let mut writer = PngRowWriter::create(&path, 23, 17, bands, depth).unwrap();
            let row = (23 * bands) as usize;
            for strip in image.data.chunks(row * 5) {
                assert!(!path.exists(), "not in place before it is whole");
                writer.write_rows(strip).unwrap();
            }
            writer.finish().unwrap();
            assert_eq!(Image::open(&path).unwrap(), image);
            assert!(!dir.path().join(format!("strips{bands}.png.part")).exists());
        }
        let path = dir.path().join("short.png");
        let mut writer = PngRowWriter::create(&path, 4, 4, 1, BitDepth::Eight).unwrap();
        writer.write_rows(&[1.0; 8]).unwrap();
        drop(writer);
        assert!(!path.exists() && !dir.path().join("short.png.part").exists());
        let mut writer = PngRowWriter::create(&path, 4, 4, 1, BitDepth::Eight).unwrap();
        writer.write_rows(&[1.0; 8]).unwrap();
        let error = writer.finish().unwrap_err().to_string();
        assert!(error.contains("short.png"), "{error}");
        assert!(!path.exists() && !dir.path().join("short.png.part").exists());
    }
}
