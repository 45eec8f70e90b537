//! JPEG 2000, the form HiRISE RDR products come in: up to about 55,000 x 17,000 px in one
//! tile, so they are decoded a region at a time and at reduced resolution, never whole at
//! full size. The header (size, bands, precision, wavelet levels) is read here from the JP2
//! boxes and the codestream's SIZ and COD markers, so a file that is not JPEG 2000 is named
//! as such before any decoding; the pixels come from OpenJPEG (through the `jpeg2k` crate),
//! the reference decoder, which decodes only the code-blocks a region touches.

use super::rows::RowSource;
use super::{BitDepth, Image, RasterError};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jp2Info {
    pub width: u32,
    pub height: u32,
    pub bands: u32,
    /// Bits per sample of the first band.
    pub precision: u32,
    pub signed: bool,
    /// Wavelet decomposition levels: the file can be decoded at 1/2, 1/4 ... 1/2^levels.
    pub levels: u32,
}

impl Jp2Info {
    pub fn depth(&self) -> BitDepth {
        if self.precision <= 8 {
            BitDepth::Eight
        } else {
            BitDepth::Sixteen
        }
    }

    /// An error unless the file can be decoded at 1/2^`reduce`.
    fn check_reduce(&self, reduce: u32) -> Result<(), String> {
        if reduce > self.levels {
            return Err(format!(
                "cannot decode at 1/{}: the file has {} wavelet levels (1/{} at most)",
                1u64 << reduce,
                self.levels,
                1u64 << self.levels
            ));
        }
        Ok(())
    }

    /// Width and height when decoded at 1/2^reduce.
    pub fn reduced_size(&self, reduce: u32) -> (u32, u32) {
        (
            self.width.div_ceil(1 << reduce),
            self.height.div_ceil(1 << reduce),
        )
    }
}

/// True when `start` (a file's first bytes) begins a JP2 file or a raw codestream.
pub fn is_jpeg2000(start: &[u8]) -> bool {
    start.starts_with(&JP2_SIGNATURE) || start.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
}

const JP2_SIGNATURE: [u8; 12] = [0, 0, 0, 12, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A];

/// The main header sits near the start; 64 KiB holds it in every file seen (HiRISE's XML
/// box is about 10 KiB).
const HEADER_BYTES: usize = 1 << 16;

/// Reads the header of a JP2 file or a raw J2K codestream.
pub fn info(path: &Path) -> Result<Jp2Info, RasterError> {
    let fail = |message: String| RasterError::Decode {
        path: path.to_path_buf(),
        message,
    };
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(HEADER_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| fail(e.to_string()))?;
    parse_header(&head).map_err(fail)
}

fn parse_header(bytes: &[u8]) -> Result<Jp2Info, String> {
    let codestream = if bytes.starts_with(&JP2_SIGNATURE) {
        codestream_box(bytes)?
    } else if bytes.starts_with(&[0xFF, 0x4F]) {
        bytes
    } else {
        return Err("not a JPEG 2000 file (no JP2 signature or codestream start)".into());
    };
    let mut info = None;
    let mut at = 2; // after SOC
    loop {
        let marker = read_u16(codestream, at).ok_or("the codestream header is cut short")?;
        let length =
            read_u16(codestream, at + 2).ok_or("the codestream header is cut short")? as usize;
        let segment = codestream
            .get(at + 4..at + 2 + length)
            .ok_or("a codestream marker segment is cut short")?;
        match marker {
            0xFF51 => info = Some(parse_siz(segment)?),
            0xFF52 => {
                let levels = *segment.get(5).ok_or("the COD marker is cut short")?;
                let mut info = info.ok_or("COD comes before SIZ")?;
                info.levels = levels as u32;
                return Ok(info);
            }
            0xFF90 | 0xFF93 => return Err("the main header has no COD marker".into()),
            _ => {}
        }
        at += 2 + length;
    }
}

/// The contents of the `jp2c` box.
fn codestream_box(bytes: &[u8]) -> Result<&[u8], String> {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let length = read_u32(bytes, at).ok_or("a JP2 box is cut short")? as usize;
        let kind = &bytes[at + 4..at + 8];
        let (header, length) = match length {
            0 => (8, bytes.len() - at),
            1 => {
                let long = u64::from_be_bytes(
                    bytes
                        .get(at + 8..at + 16)
                        .ok_or("a JP2 box is cut short")?
                        .try_into()
                        .expect("8 bytes"),
                );
                (
                    16,
                    usize::try_from(long).map_err(|_| "a JP2 box is too long")?,
                )
            }
            n if n < 8 => return Err(format!("a JP2 box claims {n} bytes")),
            n => (8, n),
        };
        if kind == b"jp2c" {
            return Ok(&bytes[(at + header).min(bytes.len())..]);
        }
        at += length;
    }
    Err(if bytes.len() < HEADER_BYTES {
        "the file ends before its codestream (no jp2c box)".into()
    } else {
        "no codestream (jp2c box) in the file's first 64 KiB".into()
    })
}

fn parse_siz(segment: &[u8]) -> Result<Jp2Info, String> {
    let short = || "the SIZ marker is cut short".to_string();
    let word = |offset: usize| read_u32(segment, offset).ok_or_else(short);
    let (x1, y1, x0, y0) = (word(2)?, word(6)?, word(10)?, word(14)?);
    let bands = read_u16(segment, 34).ok_or_else(short)? as u32;
    let ssiz = *segment.get(36).ok_or_else(short)?;
    if x1 <= x0 || y1 <= y0 || bands == 0 {
        return Err(format!(
            "the SIZ marker describes an empty image ({x0}..{x1} x {y0}..{y1}, {bands} bands)"
        ));
    }
    let precision = (ssiz & 0x7F) as u32 + 1;
    if precision > 16 {
        return Err(format!("{precision}-bit samples: at most 16 are read"));
    }
    Ok(Jp2Info {
        width: x1 - x0,
        height: y1 - y0,
        bands,
        precision,
        signed: ssiz & 0x80 != 0,
        levels: 0,
    })
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the box `x, y, width, height` (full-resolution pixels) at 1/2^`reduce` of full
/// size: the result is ceil(width / 2^reduce) pixels wide when `x` is a multiple of
/// 2^reduce. Samples keep their values (16-bit stays 16-bit); one band per component.
pub fn decode_region(
    path: &Path,
    [x, y, width, height]: [u32; 4],
    reduce: u32,
) -> Result<Image, RasterError> {
    let info = info(path)?;
    decode_with(path, &info, [x, y, width, height], reduce)
}

fn decode_with(
    path: &Path,
    info: &Jp2Info,
    [x, y, width, height]: [u32; 4],
    reduce: u32,
) -> Result<Image, RasterError> {
    let fail = |message: String| RasterError::Decode {
        path: path.to_path_buf(),
        message,
    };
    info.check_reduce(reduce).map_err(fail)?;
    if width == 0 || height == 0 || x + width > info.width || y + height > info.height {
        return Err(fail(format!(
            "region {x},{y},{width},{height} is not inside the {} x {} image",
            info.width, info.height
        )));
    }
    // Strict: a cut file is an error, not an image with its last code-blocks blank.
    let parameters = jpeg2k::DecodeParameters::new()
        .strict(true)
        .reduce(reduce)
        .decode_area(Some(jpeg2k::DecodeArea::new(x, y, x + width, y + height)));
    let decoded = jpeg2k::Image::from_file_with(path, parameters)
        .map_err(|e| fail(format!("OpenJPEG: {e}")))?;
    let components = decoded.components();
    let (out_width, out_height) = (decoded.width(), decoded.height());
    if components
        .iter()
        .any(|c| (c.width(), c.height()) != (out_width, out_height))
    {
        return Err(fail(
            "bands of different sizes (subsampled components) are not read".into(),
        ));
    }
    let bands = components.len() as u32;
    let plane = (out_width * out_height) as usize;
    let mut data = vec![0f32; plane * bands as usize];
    for (band, component) in components.iter().enumerate() {
        let samples = component.data();
        if samples.len() < plane {
            return Err(fail("OpenJPEG returned fewer samples than pixels".into()));
        }
        for (i, &value) in samples[..plane].iter().enumerate() {
            data[i * bands as usize + band] = value as f32;
        }
    }
    Ok(Image {
        width: out_width,
        height: out_height,
        bands,
        depth: info.depth(),
        data,
    })
}

/// The whole file at 1/2^`reduce`.
pub fn decode(path: &Path, reduce: u32) -> Result<Image, RasterError> {
    let info = info(path)?;
    decode_with(path, &info, [0, 0, info.width, info.height], reduce)
}

/// A JPEG 2000 file read top to bottom in strips of full width, each decoded as a region:
/// memory holds one strip, however tall the image.
pub struct Jp2Rows {
    path: PathBuf,
    info: Jp2Info,
    reduce: u32,
    /// Output rows per decoded strip.
    strip: u32,
    /// Next output row to decode, and decoded rows not handed out yet.
    next: u32,
    pending: Vec<f32>,
}

impl Jp2Rows {
    /// Decoding at 1/2^`reduce`, `strip` output rows at a time.
    pub fn open(path: &Path, reduce: u32, strip: u32) -> Result<Self, RasterError> {
        let info = info(path)?;
        info.check_reduce(reduce)
            .map_err(|message| RasterError::Decode {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(Jp2Rows {
            path: path.to_path_buf(),
            info,
            reduce,
            strip: strip.max(1),
            next: 0,
            pending: Vec::new(),
        })
    }

    pub fn info(&self) -> &Jp2Info {
        &self.info
    }
}

impl RowSource for Jp2Rows {
    fn width(&self) -> u32 {
        self.info.reduced_size(self.reduce).0
    }
    fn height(&self) -> u32 {
        self.info.reduced_size(self.reduce).1
    }
    fn bands(&self) -> u32 {
        self.info.bands
    }
    fn depth(&self) -> BitDepth {
        self.info.depth()
    }
    fn read_rows(&mut self, rows: u32, out: &mut Vec<f32>) -> Result<(), RasterError> {
        let row = (self.width() * self.bands()) as usize;
        let wanted = rows as usize * row;
        while self.pending.len() < wanted && self.next < self.height() {
            let count = self.strip.min(self.height() - self.next);
            // Output rows [next, next + count) come from full-resolution rows scaled up by
            // 2^reduce, clipped to the image.
            let scale = 1u32 << self.reduce;
            let top = self.next * scale;
            let bottom = ((self.next + count) * scale).min(self.info.height);
            let strip = decode_with(
                &self.path,
                &self.info,
                [0, top, self.info.width, bottom - top],
                self.reduce,
            )?;
            if strip.height != count {
                return Err(RasterError::Decode {
                    path: self.path.clone(),
                    message: format!(
                        "rows {top}..{bottom} decoded to {} rows, not {count}",
                        strip.height
                    ),
                });
            }
            self.pending.extend_from_slice(&strip.data);
            self.next += count;
        }
        if self.pending.len() < wanted {
            return Err(RasterError::Decode {
                path: self.path.clone(),
                message: "rows asked for past the image's end".into(),
            });
        }
        out.extend(self.pending.drain(..wanted));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/jp2/");

    fn data(name: &str) -> PathBuf {
        PathBuf::from(DATA).join(name)
    }

    #[test]
    fn the_header_gives_size_bands_precision_and_levels() {
        let sixteen = info(&data("nanedi-16bit.jp2")).unwrap();
        assert_eq!(
            sixteen,
            Jp2Info {
                width: 200,
                height: 120,
                bands: 1,
                precision: 16,
                signed: false,
                levels: 3,
            }
        );
        let eight = info(&data("nanedi-8bit.jp2")).unwrap();
        assert_eq!((eight.precision, eight.levels), (8, 2));
        assert_eq!(eight.depth(), BitDepth::Eight);
    }

    #[test]
    fn a_lossless_file_decodes_to_the_same_pixels_whole_and_by_region() {
        for name in ["nanedi-16bit", "nanedi-8bit"] {
            let expected = Image::open(&data(&format!("{name}.png"))).unwrap();
            let whole = decode(&data(&format!("{name}.jp2")), 0).unwrap();
            assert_eq!(whole.depth, expected.depth, "{name}");
            assert_eq!(whole.data, expected.data, "{name}");
            // A region across the 8-bit file's 64 px tile boundaries.
            let region = decode_region(&data(&format!("{name}.jp2")), [37, 21, 90, 70], 0).unwrap();
            assert_eq!(
                region.data,
                expected.crop(37, 21, 90, 70).unwrap().data,
                "{name}"
            );
        }
    }

    #[test]
    fn reduced_resolution_halves_the_size_per_level_and_keeps_the_values() {
        let path = data("nanedi-16bit.jp2");
        let full = Image::open(&data("nanedi-16bit.png")).unwrap();
        let half = decode(&path, 1).unwrap();
        assert_eq!((half.width, half.height), (100, 60));
        let eighth = decode(&path, 3).unwrap();
        assert_eq!((eighth.width, eighth.height), (25, 15));
        // The low-pass image keeps the values' scale: its mean is the full image's mean.
        let mean = |image: &Image| image.data.iter().sum::<f32>() / image.data.len() as f32;
        assert!((mean(&half) - mean(&full)).abs() < 0.01 * mean(&full));
        assert!((mean(&eighth) - mean(&full)).abs() < 0.02 * mean(&full));
        assert!(half.data.iter().any(|v| *v > 255.0), "16-bit values kept");
        let error = decode(&path, 4).unwrap_err().to_string();
        assert!(error.contains("3 wavelet levels"), "{error}");
    }

    #[test]
    fn strips_give_the_same_rows_as_one_decode() {
        let path = data("nanedi-16bit.jp2");
        for (reduce, strip) in [(0, 7), (0, 200), (1, 11), (2, 4)] {
            let whole = decode(&path, reduce).unwrap();
            let mut rows = Jp2Rows::open(&path, reduce, strip).unwrap();
            assert_eq!((rows.width(), rows.height()), (whole.width, whole.height));
            let mut out = Vec::new();
            let mut read = 0;
            while read < whole.height {
                let take = 5.min(whole.height - read);
                rows.read_rows(take, &mut out).unwrap();
                read += take;
            }
            assert_eq!(out, whole.data, "reduce {reduce}, strips of {strip}");
            assert!(rows.read_rows(1, &mut out).is_err(), "past the end");
        }
    }

    #[test]
    fn files_that_are_not_jpeg2000_or_are_cut_short_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let png = data("nanedi-16bit.png");
        let error = info(&png).unwrap_err().to_string();
        assert!(
            error.contains("nanedi-16bit.png") && error.contains("not a JPEG 2000 file"),
            "{error}"
        );
        let bytes = std::fs::read(data("nanedi-16bit.jp2")).unwrap();
        // Cut inside the header, then inside the compressed data.
        for (cut, expect) in [
            (70, "ends before its codestream"),
            (100, "marker segment is cut short"),
            (bytes.len() / 2, "OpenJPEG"),
        ] {
            let path = dir.path().join(format!("cut-{cut}.jp2"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let error = decode(&path, 0).unwrap_err().to_string();
            assert!(
                error.contains(&format!("cut-{cut}.jp2")) && error.contains(expect),
                "{error}"
            );
        }
        let error = decode_region(&data("nanedi-8bit.jp2"), [150, 0, 60, 10], 0)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not inside the 200 x 120 image"), "{error}");
    }
}
