//! Any image file areo reads, as rows (for tiling) or whole (for prep and inference): PNGs
//! decode row by row, JPEG 2000 a strip at a time, PDS3 IMG products a range of lines at a
//! time, other formats whole.
//!
//! An IMG's samples become 8- or 16-bit image samples by one rule ([`SampleValues`] records
//! it, so the physical values can be had back):
//! - unsigned 8- or 16-bit samples are kept as they are stored (CTX and HiRISE DNs: their
//!   `SCALING_FACTOR`/`OFFSET` are linear, so nothing is lost); no-data samples become one
//!   marker that is itself no data (the first declared constant, else 0 or the type's
//!   largest value when the valid range leaves it out), so a valid 0 stays valid. When no
//!   such value exists, they are mapped as the next case;
//! - anything else (signed, 32-bit, real: DTMs, I/F products) is scaled linearly from its
//!   valid range (the label's `VALID_MINIMUM`/`VALID_MAXIMUM`, else the range a first pass
//!   over the file finds) onto 1..=65535, and no data (constants, NaN, out of range) is 0.

use crate::pds::img::{ImageLayout, ImgError, ImgFile};
use crate::pds::Label;
use crate::raster::jp2::{is_jpeg2000, Jp2Rows};
use crate::raster::rows::{ImageRows, PngRows, RowSource};
use crate::raster::{BitDepth, Image, RasterError};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// Rows of a JPEG 2000 source decoded at a time: a 55,000 px wide HiRISE strip of 512 rows
/// is about 110 MB of samples.
const JP2_STRIP_ROWS: u32 = 512;

/// Lines of an IMG read per pass when looking for its value range.
const IMG_SCAN_ROWS: u32 = 256;

/// What a stored sample means: `physical = sample * scale + offset`, except `no_data`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleValues {
    pub scale: f64,
    pub offset: f64,
    /// The sample that marks no data, when the product has any.
    pub no_data: Option<f32>,
}

/// How an IMG's raw samples become image samples.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mapping {
    /// Raw DNs kept, no data as the marker (a value that is itself no data).
    Raw { no_data: Option<f32> },
    /// Physical values from `low` in steps of `step` onto 1..=65535, no data as 0.
    Linear { low: f64, step: f64 },
}

/// An image file as a row source, with what its samples mean when it is a PDS product.
pub struct Source {
    rows: Box<dyn RowSource>,
    /// The PDS3 label the file starts with (or is), for its map projection.
    pub label: Option<Label>,
    pub values: Option<SampleValues>,
}

impl Source {
    pub fn rows(&mut self) -> &mut dyn RowSource {
        self.rows.as_mut()
    }
}

fn img_error(error: ImgError) -> RasterError {
    RasterError::Invalid(error.to_string())
}

/// The first bytes of a file (enough to tell the formats apart).
fn head(path: &Path) -> Result<Vec<u8>, RasterError> {
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| RasterError::Decode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(head)
}

/// Opens `path` to be read top to bottom: a PDS3 IMG (its attached or detached label), a
/// JPEG 2000 file, a PNG, or any other format `Image::open` reads (decoded whole).
pub fn open_rows(path: &Path) -> Result<Source, RasterError> {
    let head = head(path)?;
    if crate::pds::img::starts_with_label(&head) {
        let img = ImgRows::open(path)?;
        return Ok(Source {
            label: Some(img.file.label().clone()),
            values: Some(img.values()),
            rows: Box::new(img),
        });
    }
    let rows: Box<dyn RowSource> = if is_jpeg2000(&head) {
        Box::new(Jp2Rows::open(path, 0, JP2_STRIP_ROWS)?)
    } else {
        match PngRows::open(path) {
            Ok(Some(png)) => Box::new(png),
            // Not a PNG, or one decoded whole (Image::open names what is wrong with it).
            Ok(None) | Err(_) => Box::new(ImageRows::new(Image::open(path)?)),
        }
    };
    Ok(Source {
        rows,
        label: None,
        values: None,
    })
}

/// Reads a whole image of any kind `open_rows` knows.
pub fn open_image(path: &Path) -> Result<(Image, Option<SampleValues>), RasterError> {
    if !crate::pds::img::starts_with_label(&head(path)?) {
        return Ok((Image::open(path)?, None));
    }
    let mut img = ImgRows::open(path)?;
    let (width, height, bands, depth) = (img.width(), img.height(), img.bands(), img.depth());
    let mut data = Vec::with_capacity(width as usize * height as usize * bands as usize);
    img.read_rows(height, &mut data)?;
    let image = Image {
        width,
        height,
        bands,
        depth,
        data,
    };
    Ok((image, Some(img.values())))
}

/// A PDS3 IMG read a range of lines at a time, its samples mapped as the module says.
struct ImgRows {
    file: ImgFile,
    mapping: Mapping,
    next: u32,
}

impl ImgRows {
    fn open(path: &Path) -> Result<Self, RasterError> {
        let mut file = ImgFile::open(path).map_err(img_error)?;
        let layout = file.layout();
        let valid = layout
            .valid_range
            .map(|(low, high)| (layout.scaled(low), layout.scaled(high)));
        let mapping = if let Some(no_data) = raw_marker(layout) {
            Mapping::Raw { no_data }
        } else {
            let (low, high) = match valid {
                Some((a, b)) => (a.min(b), a.max(b)),
                None => physical_range(&mut file)?,
            };
            Mapping::Linear {
                low,
                step: (high - low) / 65534.0,
            }
        };
        Ok(ImgRows {
            file,
            mapping,
            next: 0,
        })
    }

    fn values(&self) -> SampleValues {
        let layout = self.file.layout();
        match self.mapping {
            Mapping::Raw { no_data } => SampleValues {
                scale: layout.scaling_factor,
                offset: layout.value_offset,
                no_data,
            },
            Mapping::Linear { low, step } => SampleValues {
                scale: step,
                offset: low - step,
                no_data: Some(0.0),
            },
        }
    }
}

/// For unsigned 8/16-bit samples kept as stored: the value no data is written as (`None`
/// inside when the product has no no-data rule). `None` when no stored value can mark it
/// without also being a valid sample.
fn raw_marker(layout: &ImageLayout) -> Option<Option<f32>> {
    if !layout.unsigned_16() {
        return None;
    }
    if layout.no_data.is_empty() && layout.valid_range.is_none() {
        return Some(None);
    }
    let largest = ((1u64 << layout.sample_bits()) - 1) as f64;
    layout
        .no_data
        .iter()
        .copied()
        .chain([0.0, largest])
        .find(|&v| v.fract() == 0.0 && (0.0..=largest).contains(&v) && layout.is_no_data(v))
        .map(|v| Some(v as f32))
}

/// The smallest and largest physical value of the valid samples ((0, 0) when none is).
fn physical_range(file: &mut ImgFile) -> Result<(f64, f64), RasterError> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut first = 0;
    while first < file.layout().lines {
        // Physical values in f32, as every path that keeps them does.
        let strip = file
            .read_physical(first, IMG_SCAN_ROWS)
            .map_err(img_error)?;
        for &v in strip.values.iter().filter(|v| !v.is_nan()) {
            low = low.min(v as f64);
            high = high.max(v as f64);
        }
        first += strip.height;
    }
    Ok(if low <= high { (low, high) } else { (0.0, 0.0) })
}

impl RowSource for ImgRows {
    fn width(&self) -> u32 {
        self.file.layout().samples
    }
    fn height(&self) -> u32 {
        self.file.layout().lines
    }
    fn bands(&self) -> u32 {
        self.file.layout().bands
    }
    fn depth(&self) -> BitDepth {
        match (self.mapping, self.file.layout().sample_bits()) {
            (Mapping::Raw { .. }, 8) => BitDepth::Eight,
            _ => BitDepth::Sixteen,
        }
    }
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError> {
        let mapping = self.mapping;
        let read = self
            .file
            .read_rows(
                self.next,
                rows,
                |layout, raw| match (mapping, layout.physical(raw)) {
                    (Mapping::Raw { no_data }, None) => no_data.unwrap_or(0.0),
                    (Mapping::Linear { .. }, None) => 0.0,
                    (Mapping::Raw { .. }, Some(_)) => raw as f32,
                    (Mapping::Linear { low, step }, Some(value)) if step > 0.0 => {
                        (1.0 + ((value as f32 as f64 - low) / step).round()).clamp(1.0, 65535.0)
                            as f32
                    }
                    (Mapping::Linear { .. }, Some(_)) => 1.0,
                },
                out,
            )
            .map_err(img_error)?;
        self.next += read;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::tile::{tile, tile_rows, Edge, TileSpec};

    /// An IMG with its label attached: the label padded to 512-byte records, then `samples`.
    fn write_img(path: &Path, image_object: &str, samples: &[u8]) {
        let mut bytes = format!(
            "PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = 512\r\n\
             ^IMAGE = 2\r\nOBJECT = IMAGE\r\n{image_object}END_OBJECT = IMAGE\r\nEND\r\n"
        )
        .into_bytes();
        assert!(bytes.len() <= 512);
        bytes.resize(512, b' ');
        bytes.extend_from_slice(samples);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn unsigned_dns_are_kept_with_their_scaling_recorded_and_no_data_as_its_constant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("red.img");
        let dns: [u16; 6] = [0, 1, 1022, 1023, 500, 7];
        let samples: Vec<u8> = dns.iter().flat_map(|v| v.to_be_bytes()).collect();
        write_img(
            &path,
            " LINES = 2\r\n LINE_SAMPLES = 3\r\n SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\r\n \
             SAMPLE_BITS = 16\r\n SCALING_FACTOR = 1.0e-4\r\n OFFSET = 0.08\r\n \
             CORE_NULL = 1023\r\n",
            &samples,
        );
        let (image, values) = open_image(&path).unwrap();
        assert_eq!((image.width, image.height, image.bands), (3, 2, 1));
        assert_eq!(image.depth, BitDepth::Sixteen);
        // The 0 is a valid DN: only CORE_NULL's 1023 is no data, and it stays 1023.
        assert_eq!(image.data, [0.0, 1.0, 1022.0, 1023.0, 500.0, 7.0]);
        assert_eq!(
            values,
            Some(SampleValues {
                scale: 1.0e-4,
                offset: 0.08,
                no_data: Some(1023.0)
            })
        );

        let path = dir.path().join("ctx.img");
        write_img(
            &path,
            " LINES = 1\r\n LINE_SAMPLES = 4\r\n SAMPLE_BITS = 8\r\n LINE_PREFIX_BYTES = 2\r\n",
            &[99, 99, 0, 10, 200, 255],
        );
        let (image, values) = open_image(&path).unwrap();
        assert_eq!(image.depth, BitDepth::Eight);
        assert_eq!(
            image.data,
            [0.0, 10.0, 200.0, 255.0],
            "the line prefix skipped"
        );
        assert_eq!(
            values.unwrap().no_data,
            None,
            "0 is a DN like any other here"
        );
    }

    /// No data is written as a value that is itself no data, never over a valid 0: NULL = 255
    /// of 8-bit samples, 0 when only the valid range rules (HiRISE's VALID_MINIMUM = 1), the
    /// type's largest value when the range leaves out the top, and a rescale when every
    /// stored value is valid but for a constant the type cannot hold.
    #[test]
    fn no_data_of_unsigned_samples_never_takes_a_valid_value() {
        let dir = tempfile::tempdir().unwrap();
        // (the label's rule, the stored samples, the image samples, the no-data sample)
        type Case<'a> = (&'a str, &'a [u8], [f32; 4], Option<f32>);
        let cases: [Case; 3] = [
            (
                " NULL = 255\r\n",
                &[0, 255, 7, 254],
                [0.0, 255.0, 7.0, 254.0],
                Some(255.0),
            ),
            (
                " VALID_MINIMUM = 1\r\n VALID_MAXIMUM = 200\r\n",
                &[0, 201, 7, 200],
                [0.0, 0.0, 7.0, 200.0],
                Some(0.0),
            ),
            (
                " VALID_MINIMUM = 0\r\n VALID_MAXIMUM = 254\r\n",
                &[0, 255, 7, 254],
                [0.0, 255.0, 7.0, 254.0],
                Some(255.0),
            ),
        ];
        for (rule, samples, expected, marker) in cases {
            let path = dir.path().join("u8.img");
            write_img(
                &path,
                &format!(" LINES = 1\r\n LINE_SAMPLES = 4\r\n SAMPLE_BITS = 8\r\n{rule}"),
                samples,
            );
            let (image, values) = open_image(&path).unwrap();
            assert_eq!(image.data, expected, "{rule}");
            assert_eq!(values.unwrap().no_data, marker, "{rule}");
        }
        // MISSING_CONSTANT = -1 cannot be stored in unsigned samples and 0..=65535 are all
        // valid: the samples are rescaled (1..=65535), no data 0.
        let path = dir.path().join("u16.img");
        let samples: Vec<u8> = [0u16, 65535].iter().flat_map(|v| v.to_be_bytes()).collect();
        write_img(
            &path,
            " LINES = 1\r\n LINE_SAMPLES = 2\r\n SAMPLE_BITS = 16\r\n MISSING_CONSTANT = -1\r\n",
            &samples,
        );
        let (image, values) = open_image(&path).unwrap();
        assert_eq!(image.data, [1.0, 65535.0]);
        assert_eq!(values.unwrap().no_data, Some(0.0));
    }

    /// Elevations in metres (real samples) onto 1..=65535 from the range a first pass finds;
    /// every no-data kind becomes 0 and the recorded scale gives the metres back.
    #[test]
    fn real_samples_are_scaled_from_their_range_and_can_be_had_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dtm.img");
        let metres = [
            -4000.0f32,
            -3000.0,
            f32::NAN,
            2553.5,
            f32::from_bits(0xFF7F_FFFB), // ISIS NULL
            2000.0,
        ];
        let samples: Vec<u8> = metres.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_img(
            &path,
            " LINES = 3\r\n LINE_SAMPLES = 2\r\n SAMPLE_TYPE = PC_REAL\r\n SAMPLE_BITS = 32\r\n \
             MISSING_CONSTANT = 16#FF7FFFFB#\r\n",
            &samples,
        );
        let (image, values) = open_image(&path).unwrap();
        let values = values.unwrap();
        let step = (2553.5 + 4000.0) / 65534.0;
        assert_eq!((values.scale, values.offset), (step, -4000.0 - step));
        assert_eq!(image.depth, BitDepth::Sixteen);
        // step = 6553.5 / 65534 m: -3000 m is 1 + round(1000 / step) = 1 + round(9999.85)
        // = 10001, 2000 m is 1 + round(6000 / step) = 1 + round(59999.08) = 60000.
        assert_eq!(image.data, [1.0, 10001.0, 0.0, 65535.0, 0.0, 60000.0]);
        for (sample, truth) in image.data.iter().zip(metres) {
            if *sample != 0.0 {
                let back = *sample as f64 * values.scale + values.offset;
                assert!(
                    (back - truth as f64).abs() <= step / 2.0,
                    "{back} vs {truth}"
                );
            }
        }

        // With a valid range the label's bounds are used, and values outside it are no data.
        write_img(
            &path,
            " LINES = 3\r\n LINE_SAMPLES = 2\r\n SAMPLE_TYPE = PC_REAL\r\n SAMPLE_BITS = 32\r\n \
             VALID_MINIMUM = -3500\r\n VALID_MAXIMUM = 29267\r\n",
            &samples,
        );
        let (image, values) = open_image(&path).unwrap();
        assert_eq!(values.unwrap().offset, -3500.0 - 0.5);
        assert_eq!(image.data[..2], [0.0, 1001.0]);
    }

    #[test]
    fn an_img_tiles_strip_by_strip_as_it_does_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LINES.LBL");
        let (width, height) = (37u32, 29u32);
        // Three bands stored line-interleaved in a detached file, signed samples.
        let mut data = Vec::new();
        for y in 0..height {
            for band in 0..3i32 {
                for x in 0..width as i32 {
                    let v = (x * 31 + y as i32 * 17 + band * 1000) % 2000 - 1000;
                    data.extend((v as i16).to_be_bytes());
                }
            }
        }
        std::fs::write(dir.path().join("LINES.IMG"), &data).unwrap();
        let label = format!(
            "PDS_VERSION_ID = PDS3\nRECORD_BYTES = {}\n^IMAGE = \"LINES.IMG\"\nOBJECT = IMAGE\n \
             LINES = {height}\n LINE_SAMPLES = {width}\n BANDS = 3\n \
             BAND_STORAGE_TYPE = LINE_INTERLEAVED\n SAMPLE_TYPE = MSB_INTEGER\n SAMPLE_BITS = 16\n\
             END_OBJECT = IMAGE\nEND\n",
            width * 2
        );
        std::fs::write(&path, label).unwrap();
        let (whole, _) = open_image(&path).unwrap();
        assert_eq!((whole.width, whole.height, whole.bands), (width, height, 3));
        assert_eq!(whole.get(0, 0, 0), 1.0, "-1000, the smallest, is sample 1");
        let spec = TileSpec {
            size: 8,
            stride: 6,
            edge: Edge::Pad(0.0),
            skip_no_data: None,
        };
        let mut source = open_rows(&path).unwrap();
        let mut streamed = Vec::new();
        tile_rows(source.rows(), &spec, |chip| {
            streamed.push(chip);
            Ok::<(), RasterError>(())
        })
        .unwrap();
        assert_eq!(streamed, tile(&whole, &spec).unwrap());
    }

    #[test]
    fn a_cut_short_img_and_a_missing_data_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.img");
        write_img(
            &path,
            " LINES = 10\r\n LINE_SAMPLES = 10\r\n SAMPLE_BITS = 8\r\n",
            &[1; 50],
        );
        let error = open_image(&path).err().unwrap().to_string();
        assert!(
            error.ends_with("cut.img: the image needs 100 bytes from offset 512, the file has 562"),
            "{error}"
        );
        let label = dir.path().join("gone.lbl");
        std::fs::write(&label, "PDS_VERSION_ID = PDS3\n^IMAGE = \"GONE.IMG\"\nOBJECT = IMAGE\n LINES = 1\n LINE_SAMPLES = 1\n SAMPLE_BITS = 8\nEND_OBJECT = IMAGE\nEND\n").unwrap();
        let error = open_rows(&label).err().unwrap().to_string();
        assert!(error.contains("GONE.IMG"), "{error}");
    }
}
