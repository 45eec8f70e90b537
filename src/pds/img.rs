//! PDS3 IMG rasters described by a label (attached or detached), and map projections.

use super::pvl::{Entry, Label, Value};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    U8,
    I8,
    U16 {
        big_endian: bool,
    },
    I16 {
        big_endian: bool,
    },
    U32 {
        big_endian: bool,
    },
    I32 {
        big_endian: bool,
    },
    F32 {
        big_endian: bool,
    },
    F64 {
        big_endian: bool,
    },
    /// `VAX_REAL`, 32 bits: VAX F_floating.
    VaxF,
    /// `VAX_REAL`, 64 bits: VAX D_floating.
    VaxD,
    /// `VAXG_REAL`: VAX G_floating.
    VaxG,
}

/// A VAX floating-point number (PDS3 Standards Reference, appendix C): 16-bit little-endian
/// words, the most significant first; sign, exponent of `exponent_bits` biased by
/// `2^(exponent_bits - 1)`, and a fraction with a hidden leading 1 read as `0.1f`, so the value
/// is `1.f * 2^(e - bias - 1)`. An exponent of 0 is zero (sign clear) or the reserved operand
/// (sign set), read as NaN.
fn vax_float(bytes: &[u8], exponent_bits: u32) -> f64 {
    let bits = bytes.chunks_exact(2).fold(0u64, |acc, word| {
        (acc << 16) | u16::from_le_bytes([word[0], word[1]]) as u64
    });
    let total = bytes.len() as u32 * 8;
    let fraction_bits = total - 1 - exponent_bits;
    let sign = bits >> (total - 1) != 0;
    let exponent = ((bits >> fraction_bits) & ((1 << exponent_bits) - 1)) as i32;
    let fraction = bits & ((1u64 << fraction_bits) - 1);
    if exponent == 0 {
        return if sign { f64::NAN } else { 0.0 };
    }
    let bias = 1i32 << (exponent_bits - 1);
    let magnitude =
        (1.0 + fraction as f64 / (1u64 << fraction_bits) as f64) * 2f64.powi(exponent - bias - 1);
    if sign {
        -magnitude
    } else {
        magnitude
    }
}

impl SampleType {
    fn bytes(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 { .. } | SampleType::I16 { .. } => 2,
            SampleType::U32 { .. }
            | SampleType::I32 { .. }
            | SampleType::F32 { .. }
            | SampleType::VaxF => 4,
            SampleType::F64 { .. } | SampleType::VaxD | SampleType::VaxG => 8,
        }
    }

    /// Whether samples are real numbers (compared with no-data constants as stored).
    fn is_real(self) -> bool {
        matches!(
            self,
            SampleType::F32 { .. }
                | SampleType::F64 { .. }
                | SampleType::VaxF
                | SampleType::VaxD
                | SampleType::VaxG
        )
    }

    fn decode(self, b: &[u8]) -> f64 {
        // Bytes in most-significant-first order.
        fn ordered<const N: usize>(b: &[u8], big_endian: bool) -> [u8; N] {
            let mut out: [u8; N] = b[..N].try_into().expect("a sample's bytes");
            if !big_endian {
                out.reverse();
            }
            out
        }
        match self {
            SampleType::U8 => b[0] as f64,
            SampleType::I8 => b[0] as i8 as f64,
            SampleType::U16 { big_endian } => u16::from_be_bytes(ordered(b, big_endian)) as f64,
            SampleType::I16 { big_endian } => i16::from_be_bytes(ordered(b, big_endian)) as f64,
            SampleType::U32 { big_endian } => u32::from_be_bytes(ordered(b, big_endian)) as f64,
            SampleType::I32 { big_endian } => i32::from_be_bytes(ordered(b, big_endian)) as f64,
            SampleType::F32 { big_endian } => f32::from_be_bytes(ordered(b, big_endian)) as f64,
            SampleType::F64 { big_endian } => f64::from_be_bytes(ordered(b, big_endian)),
            SampleType::VaxF => vax_float(&b[..4], 8),
            SampleType::VaxD => vax_float(&b[..8], 8),
            SampleType::VaxG => vax_float(&b[..8], 11),
        }
    }

    /// A no-data constant given as a bit pattern (`16#FF7FFFFB#`): the value those bits have
    /// as a sample of this type (most significant byte first).
    fn pattern_value(self, bits: u64) -> Option<f64> {
        let bytes = bits.to_be_bytes();
        match self {
            SampleType::F32 { .. } => Some(f32::from_bits(u32::try_from(bits).ok()?) as f64),
            SampleType::F64 { .. } => Some(f64::from_bits(bits)),
            // VAX words are stored low byte first: the pattern's words in their stored form.
            SampleType::VaxF | SampleType::VaxD | SampleType::VaxG => {
                let stored: Vec<u8> = bytes[8 - self.bytes()..]
                    .chunks_exact(2)
                    .flat_map(|word| [word[1], word[0]])
                    .collect();
                Some(self.decode(&stored))
            }
            _ => None,
        }
    }

    /// A real no-data constant as the sample stored for it reads back (an f32 for 32-bit
    /// types).
    fn as_stored(self, value: f64) -> f64 {
        match self {
            SampleType::F32 { .. } | SampleType::VaxF => value as f32 as f64,
            _ => value,
        }
    }
}

/// How the bands of a multi-band IMAGE are laid out (`BAND_STORAGE_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandStorage {
    /// Each band a whole image after the other (the default).
    Sequential,
    /// Line 1 of every band, then line 2 of every band, ...
    LineInterleaved,
    /// The bands of each pixel side by side.
    SampleInterleaved,
}

/// Where an IMAGE's samples are and how to read them.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLayout {
    /// The data file named by the pointer, relative to the label; `None`: the label's file.
    pub file: Option<String>,
    /// Byte offset of the first sample.
    pub offset: u64,
    pub lines: u32,
    pub samples: u32,
    pub bands: u32,
    pub band_storage: BandStorage,
    pub sample_type: SampleType,
    pub line_prefix: u32,
    pub line_suffix: u32,
    pub scaling_factor: f64,
    pub value_offset: f64,
    /// Raw values that mean "no data" (`MISSING_CONSTANT`, `NULL`, `CORE_NULL`, ...). For
    /// real samples, integers beyond 2^24 are bit patterns (`16#FF7FFFFB#`, ISIS's NULL).
    /// Only these values are special: an unsigned image whose NULL is 255 keeps its 0s.
    pub no_data: Vec<f64>,
    /// Raw values outside `VALID_MINIMUM..=VALID_MAXIMUM` are no data too.
    pub valid_range: Option<(f64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImgError {
    #[error("{0}")]
    Label(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the image needs {needed} bytes from offset {offset}, the file has {size}", path.display())]
    Short {
        path: PathBuf,
        offset: u64,
        needed: u64,
        size: u64,
    },
}

fn label_error<T>(message: impl Into<String>) -> Result<T, ImgError> {
    Err(ImgError::Label(message.into()))
}

/// The `^IMAGE` pointer and the `RECORD_BYTES` of the block that holds it.
fn image_pointer(label: &Label) -> Option<(&Value, Option<i64>)> {
    if let Some(pointer) = label.pointer("IMAGE") {
        return Some((pointer, label.get("RECORD_BYTES").and_then(Value::as_i64)));
    }
    label.entries.iter().find_map(|(_, entry)| match entry {
        Entry::Block { label, .. } => image_pointer(label),
        Entry::Value(_) => None,
    })
}

/// Whether `bytes` (a file's first bytes) begin with a PDS3 label.
pub fn starts_with_label(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii_start();
    text.starts_with(b"PDS_VERSION_ID") || text.starts_with(b"ODL_VERSION_ID")
}

impl ImageLayout {
    pub fn from_label(label: &Label) -> Result<Self, ImgError> {
        let Some((pointer, record_bytes)) = image_pointer(label) else {
            return label_error("the label has no ^IMAGE pointer");
        };
        let records = |n: i64| -> Result<u64, ImgError> {
            let size = record_bytes.ok_or_else(|| {
                ImgError::Label("^IMAGE counts records but RECORD_BYTES is missing".into())
            })?;
            if n < 1 || size < 1 {
                return label_error(format!(
                    "^IMAGE record {n} with RECORD_BYTES {size} is not a place in a file"
                ));
            }
            Ok((n as u64 - 1) * size as u64)
        };
        let place = |value: &Value| -> Result<u64, ImgError> {
            match value {
                Value::Integer(n) => records(*n),
                Value::Measure(n, unit) if unit.eq_ignore_ascii_case("BYTES") => match n.as_i64() {
                    Some(n) if n >= 1 => Ok(n as u64 - 1),
                    _ => label_error(format!("^IMAGE byte {value} is not a place in a file")),
                },
                other => label_error(format!("^IMAGE: cannot read {other} as a position")),
            }
        };
        let (file, offset) = match pointer {
            Value::Text(name) | Value::Symbol(name) => (Some(name.clone()), 0),
            Value::Sequence(items) => match &items[..] {
                [name, at] => (name.as_str().map(String::from), place(at)?),
                _ => {
                    return label_error(format!(
                        "^IMAGE = {pointer}: expected (\"FILE\", position)"
                    ))
                }
            },
            other => (None, place(other)?),
        };
        let Some(image) = label.block("IMAGE") else {
            return label_error("the label has no IMAGE object");
        };
        let whole = |key: &str| -> Result<u32, ImgError> {
            match image.get(key).and_then(Value::as_i64) {
                Some(v) if v >= 0 && v <= u32::MAX as i64 => Ok(v as u32),
                Some(v) => label_error(format!("IMAGE.{key} = {v} is out of range")),
                None => label_error(format!("IMAGE.{key} is missing")),
            }
        };
        let optional = |key: &str, default: u32| -> Result<u32, ImgError> {
            if image.get(key).is_some() {
                whole(key)
            } else {
                Ok(default)
            }
        };
        let bits = whole("SAMPLE_BITS")?;
        let kind = image
            .get("SAMPLE_TYPE")
            .and_then(Value::as_str)
            .unwrap_or("UNSIGNED_INTEGER")
            .to_ascii_uppercase();
        // PDS3 Standards Reference, appendix C: MSB_, SUN_, MAC_ and bare names are big
        // endian, LSB_, PC_ and VAX_ little endian; reals are IEEE except VAX's own formats.
        let big_endian =
            !(kind.starts_with("LSB") || kind.starts_with("PC") || kind.starts_with("VAX"));
        let signed = !kind.contains("UNSIGNED");
        let real = kind.contains("REAL") || kind == "FLOAT";
        let vax = kind.starts_with("VAX");
        let sample_type = match (bits, real, signed) {
            _ if kind.contains("COMPLEX") || kind.contains("BIT_STRING") => {
                return label_error(format!(
                    "SAMPLE_TYPE {kind} is not an image sample areo reads (integers and reals)"
                ))
            }
            (8, false, false) => SampleType::U8,
            (8, false, true) => SampleType::I8,
            (16, false, false) => SampleType::U16 { big_endian },
            (16, false, true) => SampleType::I16 { big_endian },
            (32, false, false) => SampleType::U32 { big_endian },
            (32, false, true) => SampleType::I32 { big_endian },
            (64, true, _) if kind.starts_with("VAXG") => SampleType::VaxG,
            (32, true, _) if vax => SampleType::VaxF,
            (64, true, _) if vax => SampleType::VaxD,
            (32, true, _) => SampleType::F32 { big_endian },
            (64, true, _) => SampleType::F64 { big_endian },
            _ => {
                return label_error(format!(
                    "SAMPLE_BITS {bits} with SAMPLE_TYPE {kind} is not supported"
                ))
            }
        };
        let band_storage = match image.get("BAND_STORAGE_TYPE").and_then(Value::as_str) {
            None => BandStorage::Sequential,
            Some(kind) => match kind.to_ascii_uppercase().as_str() {
                "BAND_SEQUENTIAL" => BandStorage::Sequential,
                "LINE_INTERLEAVED" => BandStorage::LineInterleaved,
                "SAMPLE_INTERLEAVED" => BandStorage::SampleInterleaved,
                other => return label_error(format!("BAND_STORAGE_TYPE {other} is not supported")),
            },
        };
        let number =
            |key: &str, default: f64| image.get(key).and_then(Value::as_f64).unwrap_or(default);
        let real = sample_type.is_real();
        let no_data = ["MISSING_CONSTANT", "NULL", "CORE_NULL", "INVALID_CONSTANT"]
            .iter()
            .filter_map(|key| match image.get(key)? {
                Value::Integer(bits) if real && bits.unsigned_abs() > 1 << 24 => {
                    sample_type.pattern_value(*bits as u64)
                }
                // A real sample is compared as the value it was stored as.
                value if real => Some(sample_type.as_stored(value.as_f64()?)),
                value => value.as_f64(),
            })
            .collect();
        let valid = |key: &str| image.get(key).and_then(Value::as_f64);
        let layout = ImageLayout {
            file,
            offset,
            lines: whole("LINES")?,
            samples: whole("LINE_SAMPLES")?,
            bands: optional("BANDS", 1)?,
            band_storage,
            sample_type,
            line_prefix: optional("LINE_PREFIX_BYTES", 0)?,
            line_suffix: optional("LINE_SUFFIX_BYTES", 0)?,
            scaling_factor: number("SCALING_FACTOR", 1.0),
            value_offset: number("OFFSET", 0.0),
            no_data,
            valid_range: valid("VALID_MINIMUM").zip(valid("VALID_MAXIMUM")),
        };
        if layout.lines == 0 || layout.samples == 0 || layout.bands == 0 {
            return label_error(format!(
                "IMAGE is {} x {} x {}: nothing to read",
                layout.samples, layout.lines, layout.bands
            ));
        }
        // Sizes multiplied from a label's numbers can wrap round (to 0, say) and then pass
        // the file-size check: refused here, once, so every later product fits in a u64.
        if layout.sizes().is_none() {
            return label_error(format!(
                "IMAGE of {} lines x {} samples x {} bands of {} bytes (and {} + {} bytes \
                 round each line) is larger than any file",
                layout.lines,
                layout.samples,
                layout.bands,
                layout.sample_type.bytes(),
                layout.line_prefix,
                layout.line_suffix
            ));
        }
        Ok(layout)
    }

    /// Bytes of one stored line and of the whole image, `None` when they overflow.
    fn sizes(&self) -> Option<(u64, u64)> {
        let (per_line, stored_lines) = match self.band_storage {
            BandStorage::SampleInterleaved => (self.bands as u64, self.lines as u64),
            _ => (1, self.lines as u64 * self.bands as u64),
        };
        let line = (self.samples as u64)
            .checked_mul(per_line)?
            .checked_mul(self.sample_type.bytes() as u64)?
            .checked_add(self.line_prefix as u64)?
            .checked_add(self.line_suffix as u64)?;
        Some((line, line.checked_mul(stored_lines)?))
    }

    /// Bytes of one stored line: one band's, or every band's when samples interleave.
    fn line_bytes(&self) -> u64 {
        self.sizes().expect("checked when the label was read").0
    }

    /// Bytes the whole image occupies.
    pub fn byte_len(&self) -> u64 {
        self.sizes().expect("checked when the label was read").1
    }

    /// Whether a raw sample is no data: a no-data constant, outside the valid range, or
    /// (real samples) not finite.
    pub fn is_no_data(&self, raw: f64) -> bool {
        !raw.is_finite()
            || self.no_data.contains(&raw)
            || self
                .valid_range
                .is_some_and(|(low, high)| raw < low || raw > high)
    }

    /// A raw value scaled to its physical value: `raw * SCALING_FACTOR + OFFSET`.
    pub fn scaled(&self, raw: f64) -> f64 {
        raw * self.scaling_factor + self.value_offset
    }

    /// The physical value of a raw sample, `None` when it is no data.
    pub fn physical(&self, raw: f64) -> Option<f64> {
        (!self.is_no_data(raw)).then_some(self.scaled(raw))
    }

    /// Whether samples are stored as unsigned integers of at most 16 bits.
    pub fn unsigned_16(&self) -> bool {
        matches!(self.sample_type, SampleType::U8 | SampleType::U16 { .. })
    }

    pub fn sample_bits(&self) -> u32 {
        self.sample_type.bytes() as u32 * 8
    }
}

/// Samples scaled to physical values (`raw * SCALING_FACTOR + OFFSET`), NaN where no data.
#[derive(Debug, Clone, PartialEq)]
pub struct ImgRaster {
    pub width: u32,
    pub height: u32,
    pub bands: u32,
    /// Row-major, the bands of a pixel side by side.
    pub values: Vec<f32>,
}

/// An IMAGE's data file, open, with its layout checked against the file's size.
pub struct ImgFile {
    label: Label,
    layout: ImageLayout,
    data: PathBuf,
    file: BufReader<std::fs::File>,
}

impl ImgFile {
    /// Opens the IMAGE that the label at `path` (attached or detached) describes; the data
    /// file is found next to the label when the pointer names one.
    pub fn open(path: &Path) -> Result<Self, ImgError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImgError::Io { path, source }
        };
        let mut head = Vec::new();
        std::fs::File::open(path)
            .map_err(io(path))?
            .take(1 << 20)
            .read_to_end(&mut head)
            .map_err(io(path))?;
        let label = super::pvl::parse(&head)
            .map_err(|e| ImgError::Label(format!("{}: {e}", path.display())))?;
        let layout = ImageLayout::from_label(&label).map_err(|e| match e {
            ImgError::Label(message) => ImgError::Label(format!("{}: {message}", path.display())),
            other => other,
        })?;
        let data = match &layout.file {
            Some(name) => {
                let plain = Path::new(name).file_name().ok_or_else(|| {
                    ImgError::Label(format!(
                        "{}: ^IMAGE names {name:?}, not a file",
                        path.display()
                    ))
                })?;
                path.with_file_name(plain)
            }
            None => path.to_path_buf(),
        };
        let file = std::fs::File::open(&data).map_err(io(&data))?;
        let size = file.metadata().map_err(io(&data))?.len();
        let needed = layout.byte_len();
        if layout
            .offset
            .checked_add(needed)
            .is_none_or(|end| end > size)
        {
            return Err(ImgError::Short {
                path: data,
                offset: layout.offset,
                needed,
                size,
            });
        }
        Ok(ImgFile {
            label,
            layout,
            data,
            file: BufReader::with_capacity(1 << 20, file),
        })
    }

    pub fn label(&self) -> &Label {
        &self.label
    }

    pub fn layout(&self) -> &ImageLayout {
        &self.layout
    }

    /// Appends lines `first..first + count` (fewer at the end of the image) to `out`,
    /// row-major with each pixel's bands side by side, each raw sample through `value`
    /// (given the layout, for its scaling and no-data rules). Returns the lines read.
    pub fn read_rows(
        &mut self,
        first: u32,
        count: u32,
        mut value: impl FnMut(&ImageLayout, f64) -> f32,
        out: &mut Vec<f32>,
    ) -> Result<u32, ImgError> {
        let layout = &self.layout;
        let count = count.min(layout.lines.saturating_sub(first));
        let (samples, bands) = (layout.samples as usize, layout.bands as usize);
        let start = out.len();
        out.resize(start + count as usize * samples * bands, 0.0);
        let rows = &mut out[start..];
        let line_bytes = layout.line_bytes();
        let mut line = vec![0u8; line_bytes as usize];
        let body = layout.line_prefix as usize..line.len() - layout.line_suffix as usize;
        let width = layout.sample_type.bytes();
        let io = |source| ImgError::Io {
            path: self.data.clone(),
            source,
        };
        let at = |stored_line: u64| SeekFrom::Start(layout.offset + stored_line * line_bytes);
        let mut scatter = |line: &[u8], row: usize, band: usize| {
            let row = &mut rows[row * samples * bands..(row + 1) * samples * bands];
            for (x, raw) in line.chunks_exact(width).enumerate() {
                row[x * bands + band] = value(layout, layout.sample_type.decode(raw));
            }
        };
        match layout.band_storage {
            BandStorage::Sequential => {
                for band in 0..bands {
                    let first_line = band as u64 * layout.lines as u64 + first as u64;
                    self.file.seek(at(first_line)).map_err(io)?;
                    for row in 0..count as usize {
                        self.file.read_exact(&mut line).map_err(io)?;
                        scatter(&line[body.clone()], row, band);
                    }
                }
            }
            BandStorage::LineInterleaved => {
                self.file
                    .seek(at(first as u64 * bands as u64))
                    .map_err(io)?;
                for row in 0..count as usize {
                    for band in 0..bands {
                        self.file.read_exact(&mut line).map_err(io)?;
                        scatter(&line[body.clone()], row, band);
                    }
                }
            }
            // Interleaved samples are already in the order rows want: one "band" as wide as
            // all of them.
            BandStorage::SampleInterleaved => {
                self.file.seek(at(first as u64)).map_err(io)?;
                for row in 0..count as usize {
                    self.file.read_exact(&mut line).map_err(io)?;
                    let row = &mut rows[row * samples * bands..(row + 1) * samples * bands];
                    for (slot, raw) in row.iter_mut().zip(line[body.clone()].chunks_exact(width)) {
                        *slot = value(layout, layout.sample_type.decode(raw));
                    }
                }
            }
        }
        Ok(count)
    }

    /// Lines `first..first + count` as physical values, NaN where no data.
    pub fn read_physical(&mut self, first: u32, count: u32) -> Result<ImgRaster, ImgError> {
        let mut values = Vec::new();
        let height = self.read_rows(
            first,
            count,
            |layout, raw| layout.physical(raw).map_or(f32::NAN, |v| v as f32),
            &mut values,
        )?;
        Ok(ImgRaster {
            width: self.layout.samples,
            height,
            bands: self.layout.bands,
            values,
        })
    }
}

/// Reads a whole IMG as physical values: `path` is the label (attached or detached).
pub fn read(path: &Path) -> Result<(Label, ImageLayout, ImgRaster), ImgError> {
    let mut file = ImgFile::open(path)?;
    let raster = file.read_physical(0, file.layout.lines)?;
    Ok((file.label, file.layout, raster))
}

/// The map projection of a map-projected product (`IMAGE_MAP_PROJECTION`).
#[derive(Debug, Clone, PartialEq)]
pub struct MapProjection {
    pub projection: String,
    /// Metres per pixel.
    pub map_scale: f64,
    /// Pixels per degree.
    pub map_resolution: Option<f64>,
    pub center_latitude: f64,
    pub center_longitude: f64,
    pub line_projection_offset: f64,
    pub sample_projection_offset: f64,
    /// Kilometres.
    pub a_axis_radius: Option<f64>,
    pub minimum_latitude: Option<f64>,
    pub maximum_latitude: Option<f64>,
    pub westernmost_longitude: Option<f64>,
    pub easternmost_longitude: Option<f64>,
}

impl MapProjection {
    /// `None` when the product is not map-projected.
    pub fn from_label(label: &Label) -> Option<Result<Self, ImgError>> {
        let block = label.block("IMAGE_MAP_PROJECTION")?;
        let number = |key: &str| block.get(key).and_then(Value::as_f64);
        let required = |key: &str| {
            number(key)
                .ok_or_else(|| ImgError::Label(format!("IMAGE_MAP_PROJECTION.{key} is missing")))
        };
        let build = || -> Result<Self, ImgError> {
            let mut map_scale = required("MAP_SCALE")?;
            // Some labels give the scale in km/pixel.
            if block
                .get("MAP_SCALE")
                .and_then(Value::unit)
                .is_some_and(|u| u.to_ascii_uppercase().starts_with("KM"))
            {
                map_scale *= 1000.0;
            }
            Ok(MapProjection {
                projection: block
                    .get("MAP_PROJECTION_TYPE")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                map_scale,
                map_resolution: number("MAP_RESOLUTION"),
                center_latitude: number("CENTER_LATITUDE").unwrap_or(0.0),
                center_longitude: number("CENTER_LONGITUDE").unwrap_or(0.0),
                line_projection_offset: required("LINE_PROJECTION_OFFSET")?,
                sample_projection_offset: required("SAMPLE_PROJECTION_OFFSET")?,
                a_axis_radius: number("A_AXIS_RADIUS"),
                minimum_latitude: number("MINIMUM_LATITUDE"),
                maximum_latitude: number("MAXIMUM_LATITUDE"),
                westernmost_longitude: number("WESTERNMOST_LONGITUDE"),
                easternmost_longitude: number("EASTERNMOST_LONGITUDE"),
            })
        };
        Some(build())
    }

    /// GDAL's geotransform: projected metres of pixel corners, `x = t[0] + col * t[1]`,
    /// `y = t[3] + row * t[5]`. The first pixel's corner is half a pixel inside the offsets, as
    /// GDAL reads HiRISE RDR labels.
    pub fn geotransform(&self) -> [f64; 6] {
        let s = self.map_scale;
        [
            (0.5 - self.sample_projection_offset) * s,
            s,
            0.0,
            (self.line_projection_offset - 0.5) * s,
            0.0,
            -s,
        ]
    }

    /// Projected metres of a pixel position (corners at whole numbers).
    pub fn pixel_to_map(&self, col: f64, row: f64) -> (f64, f64) {
        let t = self.geotransform();
        (t[0] + col * t[1], t[3] + row * t[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attached-label IMG: the label padded to whole records, then the samples.
    fn attached(label_body: &str, record_bytes: usize, samples: &[u8]) -> Vec<u8> {
        let mut label = format!("PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = {record_bytes}\r\n{label_body}END\r\n").into_bytes();
        label.resize(label.len().div_ceil(record_bytes) * record_bytes, b' ');
        label.extend_from_slice(samples);
        label
    }

    #[test]
    fn a_16_bit_img_reads_back_scaled_with_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let raw: [u16; 12] = [0, 1, 2, 3, 100, 200, 300, 400, 65535, 1023, 7, 0];
        let samples: Vec<u8> = raw.iter().flat_map(|v| v.to_be_bytes()).collect();
        let body = "^IMAGE = 5\r\nOBJECT = IMAGE\r\n LINES = 3\r\n LINE_SAMPLES = 4\r\n SAMPLE_BITS = 16\r\n SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\r\n SCALING_FACTOR = 0.5\r\n OFFSET = 10\r\n CORE_NULL = 0\r\nEND_OBJECT = IMAGE\r\n";
        let bytes = attached(body, 80, &samples);
        assert_eq!(
            bytes.len(),
            4 * 80 + 24,
            "the label takes four records, the image starts at record 5"
        );
        let path = dir.path().join("x.img");
        std::fs::write(&path, &bytes).unwrap();
        let (_, layout, raster) = read(&path).unwrap();
        assert_eq!(
            (layout.offset, layout.sample_type),
            (320, SampleType::U16 { big_endian: true })
        );
        assert_eq!((raster.width, raster.height), (4, 3));
        assert!(raster.values[0].is_nan() && raster.values[11].is_nan());
        assert_eq!(
            &raster.values[1..11],
            &[10.5, 11.0, 11.5, 60.0, 110.0, 160.0, 210.0, 32777.5, 521.5, 13.5]
        );
        let middle = ImgFile::open(&path).unwrap().read_physical(1, 1).unwrap();
        assert_eq!(middle.values, [60.0, 110.0, 160.0, 210.0]);
    }

    #[test]
    fn detached_labels_byte_pointers_and_signed_lsb_samples() {
        let dir = tempfile::tempdir().unwrap();
        let raw: [i16; 4] = [-2, -1, 0, 300];
        let mut data = vec![9u8; 10];
        data.extend(raw.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(dir.path().join("D.IMG"), &data).unwrap();
        let label = "PDS_VERSION_ID = PDS3\nRECORD_BYTES = 4\n^IMAGE = (\"D.IMG\", 11 <BYTES>)\nOBJECT = IMAGE\n LINES = 2\n LINE_SAMPLES = 2\n SAMPLE_BITS = 16\n SAMPLE_TYPE = LSB_INTEGER\n MISSING_CONSTANT = -2\nEND_OBJECT = IMAGE\nEND\n";
        std::fs::write(dir.path().join("D.LBL"), label).unwrap();
        let (_, layout, raster) = read(&dir.path().join("D.LBL")).unwrap();
        assert_eq!((layout.file.as_deref(), layout.offset), (Some("D.IMG"), 10));
        assert!(raster.values[0].is_nan());
        assert_eq!(&raster.values[1..], &[-1.0, 0.0, 300.0]);
    }

    #[test]
    fn labels_that_point_past_the_data_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let body = "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 10\r\n LINE_SAMPLES = 10\r\n SAMPLE_BITS = 8\r\nEND_OBJECT = IMAGE\r\n";
        let path = dir.path().join("short.img");
        std::fs::write(&path, attached(body, 200, &[1, 2, 3])).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.ends_with(
                "short.img: the image needs 100 bytes from offset 200, the file has 203"
            ),
            "{error}"
        );
        let no_lines = "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINE_SAMPLES = 10\r\n SAMPLE_BITS = 8\r\nEND_OBJECT = IMAGE\r\n";
        std::fs::write(&path, attached(no_lines, 200, &[0; 100])).unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .ends_with("short.img: IMAGE.LINES is missing"));
    }

    /// A label whose sizes multiply past 2^64 (they once wrapped round, passed the file-size
    /// check and then asked for 2^56 bytes) is refused, naming its sizes.
    #[test]
    fn sizes_that_overflow_are_refused_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for (samples, bands, storage) in [
            (4294967295u64, 4294967295u64, "SAMPLE_INTERLEAVED"),
            // Each band's line fits; lines x bands x the line's bytes does not.
            (4294967295, 4294967295, "BAND_SEQUENTIAL"),
        ] {
            let body = format!(
                "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 4294967295\r\n LINE_SAMPLES = {samples}\r\n BANDS = {bands}\r\n BAND_STORAGE_TYPE = {storage}\r\n SAMPLE_BITS = 64\r\n SAMPLE_TYPE = IEEE_REAL\r\nEND_OBJECT = IMAGE\r\n"
            );
            let path = dir.path().join(format!("{storage}.img"));
            std::fs::write(&path, attached(&body, 1000, &[0; 64])).unwrap();
            let error = ImgFile::open(&path).err().expect("refused");
            let text = error.to_string();
            assert!(
                text.contains("is larger than any file"),
                "{storage}: {text}"
            );
            assert!(text.contains("4294967295 lines"), "{storage}: {text}");
        }
    }

    /// Two bands of 2 x 2 pixels, band 1 = 10 + pixel index, band 2 = 20 + pixel index,
    /// stored each of the three ways: every way reads back as the same pixels.
    #[test]
    fn band_storage_orders_read_back_as_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let stored: [(&str, [u8; 8]); 3] = [
            ("BAND_SEQUENTIAL", [10, 11, 12, 13, 20, 21, 22, 23]),
            ("LINE_INTERLEAVED", [10, 11, 20, 21, 12, 13, 22, 23]),
            ("SAMPLE_INTERLEAVED", [10, 20, 11, 21, 12, 22, 13, 23]),
        ];
        for (storage, samples) in stored {
            let body = format!("^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 2\r\n LINE_SAMPLES = 2\r\n BANDS = 2\r\n BAND_STORAGE_TYPE = {storage}\r\n SAMPLE_BITS = 8\r\nEND_OBJECT = IMAGE\r\n");
            let path = dir.path().join(format!("{storage}.img"));
            std::fs::write(&path, attached(&body, 1000, &samples)).unwrap();
            let (_, layout, raster) = read(&path).unwrap();
            assert_eq!(layout.byte_len(), 8, "{storage}");
            assert_eq!(
                raster.values,
                [10.0, 20.0, 11.0, 21.0, 12.0, 22.0, 13.0, 23.0],
                "{storage}"
            );
            let second_line = ImgFile::open(&path).unwrap().read_physical(1, 5).unwrap();
            assert_eq!(second_line.height, 1, "{storage}: clipped to the image");
            assert_eq!(second_line.values, [12.0, 22.0, 13.0, 23.0], "{storage}");
        }
        let body = "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 2\r\n LINE_SAMPLES = 2\r\n BAND_STORAGE_TYPE = BAND_SHUFFLED\r\n SAMPLE_BITS = 8\r\nEND_OBJECT = IMAGE\r\n";
        let path = dir.path().join("odd.img");
        std::fs::write(&path, attached(body, 200, &[0; 4])).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("odd.img: BAND_STORAGE_TYPE BAND_SHUFFLED is not supported"),
            "{error}"
        );
    }

    /// VAX F, D and G floating samples and 64-bit IEEE reals of either byte order read as
    /// the values they encode (bytes from an independent encoder: IEEE bits with the exponent
    /// raised by 2 for F, frexp for D and G). A VAX reserved operand is no data.
    #[test]
    fn vax_reals_and_64_bit_ieee_reals_read_as_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let values = [1.0, -2.5, 1234.5678, 3.0e-5];
        let vax_f: [[u8; 4]; 4] = [
            [128, 64, 0, 0],
            [32, 193, 0, 0],
            [154, 69, 43, 82],
            [251, 56, 130, 168],
        ];
        let vax_d: [[u8; 8]; 4] = [
            [128, 64, 0, 0, 0, 0, 0, 0],
            [32, 193, 0, 0, 0, 0, 0, 0],
            [154, 69, 43, 82, 231, 106, 104, 213],
            [251, 56, 130, 168, 168, 106, 72, 235],
        ];
        let vax_g: [[u8; 8]; 4] = [
            [16, 64, 0, 0, 0, 0, 0, 0],
            [36, 192, 0, 0, 0, 0, 0, 0],
            [179, 64, 69, 74, 92, 109, 173, 250],
            [31, 63, 16, 117, 85, 77, 105, 29],
        ];
        let ieee_big: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_be_bytes()).collect();
        let ieee_little: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
        let cases: [(&str, u32, Vec<u8>, [f64; 4]); 5] = [
            (
                "VAX_REAL",
                32,
                vax_f.concat(),
                values.map(|v| v as f32 as f64),
            ),
            ("VAX_REAL", 64, vax_d.concat(), values),
            ("VAXG_REAL", 64, vax_g.concat(), values),
            ("IEEE_REAL", 64, ieee_big, values),
            ("PC_REAL", 64, ieee_little, values),
        ];
        for (kind, bits, samples, expected) in cases {
            let body = format!("^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 2\r\n LINE_SAMPLES = 2\r\n SAMPLE_BITS = {bits}\r\n SAMPLE_TYPE = {kind}\r\nEND_OBJECT = IMAGE\r\n");
            let path = dir.path().join("real.img");
            std::fs::write(&path, attached(&body, 400, &samples)).unwrap();
            let (_, _, raster) = read(&path).unwrap();
            let read: Vec<f64> = raster.values.iter().map(|v| *v as f64).collect();
            let expected: Vec<f64> = expected.iter().map(|v| *v as f32 as f64).collect();
            assert_eq!(read, expected, "{kind} {bits}");
        }
        // Sign set with a zero exponent: the reserved operand.
        assert!(SampleType::VaxF.decode(&[0, 0x80, 0, 0]).is_nan());
        assert_eq!(SampleType::VaxF.decode(&[0, 0, 0, 0]), 0.0);
        let complex = "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 1\r\n LINE_SAMPLES = 1\r\n SAMPLE_BITS = 64\r\n SAMPLE_TYPE = IEEE_COMPLEX\r\nEND_OBJECT = IMAGE\r\n";
        let path = dir.path().join("complex.img");
        std::fs::write(&path, attached(complex, 400, &[0; 8])).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("SAMPLE_TYPE IEEE_COMPLEX is not an image sample"),
            "{error}"
        );
    }

    /// Real samples as ISIS writes them: NULL given as a bit pattern and as a real, NaN,
    /// and values outside VALID_MINIMUM..VALID_MAXIMUM are all no data.
    #[test]
    fn real_samples_know_bit_pattern_constants_nan_and_the_valid_range() {
        let dir = tempfile::tempdir().unwrap();
        let null = f32::from_bits(0xFF7F_FFFB);
        let low_saturation = f32::from_bits(0xFF7F_FFFC);
        let raw = [-1500.25f32, null, f32::NAN, low_saturation, 2.5, 9000.0];
        let samples: Vec<u8> = raw.iter().flat_map(|v| v.to_le_bytes()).collect();
        let body = "^IMAGE = 2\r\nOBJECT = IMAGE\r\n LINES = 2\r\n LINE_SAMPLES = 3\r\n SAMPLE_BITS = 32\r\n SAMPLE_TYPE = PC_REAL\r\n NULL = 16#FF7FFFFB#\r\n MISSING_CONSTANT = -3.4028226550889045e+38\r\n VALID_MINIMUM = -8000\r\n VALID_MAXIMUM = 8000\r\nEND_OBJECT = IMAGE\r\n";
        let path = dir.path().join("dtm.img");
        std::fs::write(&path, attached(body, 1000, &samples)).unwrap();
        let (_, layout, raster) = read(&path).unwrap();
        assert_eq!(layout.no_data, [null as f64, null as f64]);
        assert_eq!(raster.values[0], -1500.25);
        assert_eq!(raster.values[4], 2.5);
        for (i, v) in raster.values.iter().enumerate() {
            assert_eq!(v.is_nan(), [1, 2, 3, 5].contains(&i), "sample {i}: {v}");
        }
    }
}
