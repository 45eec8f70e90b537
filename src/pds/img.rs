//! PDS3 IMG rasters described by a label (attached or detached), and map projections.

use super::pvl::{Entry, Label, Value};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    U8,
    I8,
    U16 { big_endian: bool },
    I16 { big_endian: bool },
    U32 { big_endian: bool },
    I32 { big_endian: bool },
    F32 { big_endian: bool },
}

impl SampleType {
    fn bytes(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 { .. } | SampleType::I16 { .. } => 2,
            SampleType::U32 { .. } | SampleType::I32 { .. } | SampleType::F32 { .. } => 4,
        }
    }

    fn decode(self, b: &[u8]) -> f64 {
        let two = |big: bool| if big { [b[0], b[1]] } else { [b[1], b[0]] };
        let four = |big: bool| {
            if big {
                [b[0], b[1], b[2], b[3]]
            } else {
                [b[3], b[2], b[1], b[0]]
            }
        };
        match self {
            SampleType::U8 => b[0] as f64,
            SampleType::I8 => b[0] as i8 as f64,
            SampleType::U16 { big_endian } => u16::from_be_bytes(two(big_endian)) as f64,
            SampleType::I16 { big_endian } => i16::from_be_bytes(two(big_endian)) as f64,
            SampleType::U32 { big_endian } => u32::from_be_bytes(four(big_endian)) as f64,
            SampleType::I32 { big_endian } => i32::from_be_bytes(four(big_endian)) as f64,
            SampleType::F32 { big_endian } => f32::from_be_bytes(four(big_endian)) as f64,
        }
    }
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
    pub sample_type: SampleType,
    pub line_prefix: u32,
    pub line_suffix: u32,
    pub scaling_factor: f64,
    pub value_offset: f64,
    /// Raw values that mean "no data" (`MISSING_CONSTANT`, `NULL`, `CORE_NULL`, ...).
    pub no_data: Vec<f64>,
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
        let big_endian =
            !(kind.starts_with("LSB") || kind.starts_with("PC") || kind.starts_with("VAX"));
        let signed = !kind.contains("UNSIGNED");
        let sample_type = match (bits, kind.contains("REAL"), signed) {
            (8, false, false) => SampleType::U8,
            (8, false, true) => SampleType::I8,
            (16, false, false) => SampleType::U16 { big_endian },
            (16, false, true) => SampleType::I16 { big_endian },
            (32, false, false) => SampleType::U32 { big_endian },
            (32, false, true) => SampleType::I32 { big_endian },
            (32, true, _) => SampleType::F32 { big_endian },
            _ => {
                return label_error(format!(
                    "SAMPLE_BITS {bits} with SAMPLE_TYPE {kind} is not supported"
                ))
            }
        };
        let number =
            |key: &str, default: f64| image.get(key).and_then(Value::as_f64).unwrap_or(default);
        let no_data = ["MISSING_CONSTANT", "NULL", "CORE_NULL", "INVALID_CONSTANT"]
            .iter()
            .filter_map(|key| image.get(key).and_then(Value::as_f64))
            .collect();
        let layout = ImageLayout {
            file,
            offset,
            lines: whole("LINES")?,
            samples: whole("LINE_SAMPLES")?,
            bands: optional("BANDS", 1)?,
            sample_type,
            line_prefix: optional("LINE_PREFIX_BYTES", 0)?,
            line_suffix: optional("LINE_SUFFIX_BYTES", 0)?,
            scaling_factor: number("SCALING_FACTOR", 1.0),
            value_offset: number("OFFSET", 0.0),
            no_data,
        };
        if layout.lines == 0 || layout.samples == 0 || layout.bands == 0 {
            return label_error(format!(
                "IMAGE is {} x {} x {}: nothing to read",
                layout.samples, layout.lines, layout.bands
            ));
        }
        Ok(layout)
    }

    fn line_bytes(&self) -> u64 {
        self.line_prefix as u64
            + self.samples as u64 * self.sample_type.bytes() as u64
            + self.line_suffix as u64
    }

    /// Bytes the whole image occupies (band sequential).
    pub fn byte_len(&self) -> u64 {
        self.line_bytes() * self.lines as u64 * self.bands as u64
    }
}

/// Samples scaled to physical values (`raw * SCALING_FACTOR + OFFSET`), NaN where no data.
#[derive(Debug, Clone, PartialEq)]
pub struct ImgRaster {
    pub width: u32,
    pub height: u32,
    pub bands: u32,
    /// Band-sequential, row-major.
    pub values: Vec<f32>,
}

/// Reads lines `first..first + count` of every band. `data` is the file holding the samples.
pub fn read_lines(
    data: &Path,
    layout: &ImageLayout,
    first: u32,
    count: u32,
) -> Result<ImgRaster, ImgError> {
    let io = |source| ImgError::Io {
        path: data.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(data).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let needed = layout.byte_len();
    if layout
        .offset
        .checked_add(needed)
        .is_none_or(|end| end > size)
    {
        return Err(ImgError::Short {
            path: data.to_path_buf(),
            offset: layout.offset,
            needed,
            size,
        });
    }
    let count = count.min(layout.lines.saturating_sub(first));
    let mut values =
        Vec::with_capacity(layout.samples as usize * count as usize * layout.bands as usize);
    let mut line = vec![0u8; layout.line_bytes() as usize];
    let width = layout.sample_type.bytes();
    for band in 0..layout.bands as u64 {
        let start =
            layout.offset + (band * layout.lines as u64 + first as u64) * layout.line_bytes();
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        for _ in 0..count {
            file.read_exact(&mut line).map_err(io)?;
            let samples =
                &line[layout.line_prefix as usize..line.len() - layout.line_suffix as usize];
            values.extend(samples.chunks_exact(width).map(|b| {
                let raw = layout.sample_type.decode(b);
                if layout.no_data.contains(&raw) {
                    f32::NAN
                } else {
                    (raw * layout.scaling_factor + layout.value_offset) as f32
                }
            }));
        }
    }
    Ok(ImgRaster {
        width: layout.samples,
        height: count,
        bands: layout.bands,
        values,
    })
}

/// Reads a whole IMG: `path` is the label (attached or detached); the data file is found next
/// to it when the pointer names one.
pub fn read(path: &Path) -> Result<(Label, ImageLayout, ImgRaster), ImgError> {
    let io = |source| ImgError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(io)?;
    let label = super::pvl::parse(&head)
        .map_err(|e| ImgError::Label(format!("{}: {e}", path.display())))?;
    let layout = ImageLayout::from_label(&label).map_err(|e| match e {
        ImgError::Label(message) => ImgError::Label(format!("{}: {message}", path.display())),
        other => other,
    })?;
    let data = match &layout.file {
        Some(name) => {
            let plain = Path::new(name)
                .file_name()
                .ok_or_else(|| ImgError::Label(format!("^IMAGE names {name:?}, not a file")))?;
            path.with_file_name(plain)
        }
        None => path.to_path_buf(),
    };
    let raster = read_lines(&data, &layout, 0, layout.lines)?;
    Ok((label, layout, raster))
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
        let middle = read_lines(&path, &layout, 1, 1).unwrap();
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
}
