//! The product model: what the catalog knows about one PDS product and its files.
//!
//! These are plain types shared by the ODE reply parser (which makes them) and the catalog
//! (which stores them); neither module imports the other.

use crate::geo::LonLatBox;
use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A UTC instant as ODE writes it (`2010-01-27T17:48:41.108`, no zone: ODE times are UTC).
///
/// Serialised as that text for people (JSON) and as microseconds since 1970 in the binary
/// catalog encoding, so records stay small and compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub NaiveDateTime);

impl UtcTime {
    /// Accepts the forms ODE uses: with or without fractional seconds, an optional `Z`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_end_matches('Z');
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"]
            .iter()
            .find_map(|format| {
                NaiveDateTime::parse_from_str(text, format)
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDate::parse_from_str(text, format)
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                    })
            })
            .map(UtcTime)
    }

    pub fn now() -> Self {
        UtcTime(chrono::Utc::now().naive_utc())
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%.3f"))
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0.and_utc().timestamp_micros())
        }
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            UtcTime::parse(&text).ok_or_else(|| D::Error::custom(format!("bad time {text:?}")))
        } else {
            let micros = i64::deserialize(deserializer)?;
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|t| UtcTime(t.naive_utc()))
                .ok_or_else(|| D::Error::custom(format!("time out of range: {micros} µs")))
        }
    }
}

/// The footprint geometries ODE reports, kept verbatim as WKT.
///
/// `geometry` is split at the meridian; `gl` is the same outline in global longitudes;
/// `c0` is centred on 0°; `np`/`sp` are the polar stereographic versions for polar products.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Footprints {
    pub geometry: Option<String>,
    pub c0: Option<String>,
    pub gl: Option<String>,
    pub np: Option<String>,
    pub sp: Option<String>,
    pub source: Option<String>,
    pub crosses_meridian: Option<bool>,
}

/// One PDS product as ODE describes it. Every field of an ODE product reply has a typed home
/// here; keys this build does not know land in `extra`, verbatim, so nothing is dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The PDS product id, upper case (ODE's `pdsid`): the catalog key and the folder name.
    pub pdsid: String,
    pub instrument_host: String,
    pub instrument: String,
    pub product_type: String,
    pub target: Option<String>,
    pub data_set_id: Option<String>,
    pub observation_id: Option<String>,
    pub volume_id: Option<String>,
    pub producer_id: Option<String>,
    pub product_version: Option<String>,
    pub relative_path: Option<String>,
    pub comment: Option<String>,
    pub description: Option<String>,

    pub center_latitude: Option<f64>,
    pub center_longitude: Option<f64>,
    /// From `Westernmost_longitude`, `Easternmost_longitude`, `Minimum_latitude`,
    /// `Maximum_latitude`; wraps when the footprint crosses 0/360.
    pub bbox: Option<LonLatBox>,
    pub footprints: Footprints,
    pub bb_georeferenced: Option<bool>,
    pub center_georeferenced: Option<bool>,
    pub pole_state: Option<String>,
    /// Metres per pixel.
    pub map_scale: Option<f64>,
    /// Pixels per degree.
    pub map_resolution: Option<f64>,

    pub incidence_angle: Option<f64>,
    pub emission_angle: Option<f64>,
    pub phase_angle: Option<f64>,
    pub solar_longitude: Option<f64>,
    /// Local solar time in hours.
    pub solar_time: Option<f64>,

    pub observation_time: Option<UtcTime>,
    pub start_time: Option<UtcTime>,
    pub stop_time: Option<UtcTime>,
    pub creation_time: Option<UtcTime>,
    pub spacecraft_clock_start: Option<String>,
    pub spacecraft_clock_stop: Option<String>,
    pub start_orbit: Option<u32>,
    pub stop_orbit: Option<u32>,

    pub label_file_name: Option<String>,
    pub label_url: Option<String>,
    pub product_url: Option<String>,
    pub files_url: Option<String>,
    pub external_url: Option<String>,
    pub external_url2: Option<String>,
    pub ode_notes: Vec<String>,
    pub extra: BTreeMap<String, String>,

    /// When ODE produced the reply this record came from (its `QuerySummary.Date`): a reply
    /// older than the stored one never overwrites it.
    pub retrieved_at: Option<UtcTime>,
}

impl Product {
    /// A product known by its id, host, instrument and type alone (a local image); every
    /// other field empty.
    pub fn new(pdsid: &str, instrument_host: &str, instrument: &str, product_type: &str) -> Self {
        Product {
            pdsid: pdsid.to_string(),
            instrument_host: instrument_host.to_string(),
            instrument: instrument.to_string(),
            product_type: product_type.to_string(),
            target: None,
            data_set_id: None,
            observation_id: None,
            volume_id: None,
            producer_id: None,
            product_version: None,
            relative_path: None,
            comment: None,
            description: None,
            center_latitude: None,
            center_longitude: None,
            bbox: None,
            footprints: Footprints::default(),
            bb_georeferenced: None,
            center_georeferenced: None,
            pole_state: None,
            map_scale: None,
            map_resolution: None,
            incidence_angle: None,
            emission_angle: None,
            phase_angle: None,
            solar_longitude: None,
            solar_time: None,
            observation_time: None,
            start_time: None,
            stop_time: None,
            creation_time: None,
            spacecraft_clock_start: None,
            spacecraft_clock_stop: None,
            start_orbit: None,
            stop_orbit: None,
            label_file_name: None,
            label_url: None,
            product_url: None,
            files_url: None,
            external_url: None,
            external_url2: None,
            ode_notes: Vec::new(),
            extra: BTreeMap::new(),
            retrieved_at: None,
        }
    }
}

/// A product with the files a reply listed for it. `files` is `None` when the reply carried
/// no file list (a query without `f` in `results`), which is not the same as no files.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductEntry {
    pub product: Product,
    pub files: Option<Vec<ProductFile>>,
}

/// How far a file has come from the server to this disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Remote,
    Downloading,
    Complete,
    Failed,
}

impl FileState {
    pub const ALL: [FileState; 4] = [
        FileState::Remote,
        FileState::Downloading,
        FileState::Complete,
        FileState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Remote => "remote",
            FileState::Downloading => "downloading",
            FileState::Complete => "complete",
            FileState::Failed => "failed",
        }
    }

    /// One byte for index keys; the order is the declaration order.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FileState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown state {text:?}: expected remote, downloading, complete or failed")
            })
    }
}

/// A product's state is its most active file's: downloading beats failed beats complete beats
/// remote, so `--state downloading` finds products with work in flight and `--state complete`
/// those with something on disk and nothing pending or broken.
pub fn product_state<'a>(files: impl IntoIterator<Item = &'a ProductFile>) -> FileState {
    let rank = |s: FileState| match s {
        FileState::Remote => 0,
        FileState::Complete => 1,
        FileState::Failed => 2,
        FileState::Downloading => 3,
    };
    files
        .into_iter()
        .map(|f| f.state)
        .max_by_key(|s| rank(*s))
        .unwrap_or(FileState::Remote)
}

/// What a file is for, read from ODE's `Type`, `Description` and the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Browse,
    Thumbnail,
    Label,
    /// The science raster: a HiRISE RDR JP2, an EDR or CTX `.IMG`, a quick-look JP2.
    Image,
    /// Footprints ODE derives (KML, shapefiles).
    Derived,
    /// Catalog and documentation files a label refers to.
    Reference,
    Other,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Browse => "browse",
            FileKind::Thumbnail => "thumbnail",
            FileKind::Label => "label",
            FileKind::Image => "image",
            FileKind::Derived => "derived",
            FileKind::Reference => "reference",
            FileKind::Other => "other",
        }
    }
}

/// One file of a product, with where it stands locally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductFile {
    pub name: String,
    /// ODE's `Type`: Product, Browse, Derived, Referenced.
    pub file_type: String,
    pub description: Option<String>,
    pub url: String,
    /// ODE's `KBytes`: the size in 1000-byte units, rounded up.
    pub kbytes: Option<u64>,
    pub created: Option<UtcTime>,
    pub state: FileState,
    pub local_path: Option<PathBuf>,
    /// Bytes on disk once complete.
    pub size: Option<u64>,
    /// Hex SHA-256 of the complete file (ODE publishes no checksums; this is ours).
    pub sha256: Option<String>,
    pub error: Option<String>,
}

impl ProductFile {
    /// A file as a reply lists it: nothing of it local yet.
    pub fn remote(name: &str, file_type: &str, url: &str) -> Self {
        ProductFile {
            name: name.to_string(),
            file_type: file_type.to_string(),
            description: None,
            url: url.to_string(),
            kbytes: None,
            created: None,
            state: FileState::Remote,
            local_path: None,
            size: None,
            sha256: None,
            error: None,
        }
    }

    pub fn kind(&self) -> FileKind {
        let name = self.name.to_ascii_uppercase();
        let description = self
            .description
            .as_deref()
            .unwrap_or("")
            .to_ascii_uppercase();
        let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
        if extension == "LBL" {
            FileKind::Label
        } else if description.contains("THUMBNAIL")
            || name.contains(".THUMB.")
            || extension == "JPEG_SMALL"
        {
            FileKind::Thumbnail
        } else if matches!(extension, "JP2" | "IMG") {
            FileKind::Image
        } else if matches!(extension, "JPG" | "JPEG" | "PNG" | "GIF") {
            FileKind::Browse
        } else if self.file_type.eq_ignore_ascii_case("Derived") {
            FileKind::Derived
        } else if self.file_type.eq_ignore_ascii_case("Referenced") {
            FileKind::Reference
        } else {
            FileKind::Other
        }
    }

    /// The most bytes the server can send given `KBytes` (rounded-up thousands).
    pub fn max_expected_bytes(&self) -> Option<u64> {
        self.kbytes.map(|k| k * 1000)
    }
}

/// Why a product id or file name cannot become a path on disk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} {value:?} is not a safe name: {reason}")]
pub struct UnsafeName {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Product ids and file names become `products/<PDSID>/<FileName>`, so they must be plain
/// names: no separators, no `..`, no control characters, and not absurdly long.
pub fn check_plain_name(what: &'static str, value: &str) -> Result<(), UnsafeName> {
    let fail = |reason| {
        Err(UnsafeName {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("it is empty");
    }
    if value.len() > 200 {
        return fail("it is longer than 200 bytes");
    }
    if value == "." || value == ".." {
        return fail("it names a directory");
    }
    if value.contains(['/', '\\']) {
        return fail("it contains a path separator");
    }
    if value.chars().any(|c| c.is_control()) {
        return fail("it contains a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, file_type: &str, description: &str) -> ProductFile {
        ProductFile {
            description: Some(description.into()),
            ..ProductFile::remote(name, file_type, &format!("https://example.org/{name}"))
        }
    }

    #[test]
    fn file_kinds_follow_hirise_and_ctx_naming() {
        let cases = [
            (
                "ESP_016430_2095_COLOR.JP2",
                "Product",
                "PRODUCT DATA FILE",
                FileKind::Image,
            ),
            (
                "ESP_016430_2095_COLOR.LBL",
                "Product",
                "PRODUCT LABEL FILE",
                FileKind::Label,
            ),
            (
                "ESP_016430_2095_MIRB.LBL",
                "Browse",
                "MERGED IRB LABEL",
                FileKind::Label,
            ),
            (
                "ESP_016430_2095_COLOR.BROWSE.JPG",
                "Browse",
                "BROWSE",
                FileKind::Browse,
            ),
            (
                "ESP_016430_2095_COLOR.THUMB.JPG",
                "Browse",
                "THUMBNAIL",
                FileKind::Thumbnail,
            ),
            (
                "ESP_016430_2095_COLOR.QLOOK.JP2",
                "Browse",
                "QUICKLOOK JP2",
                FileKind::Image,
            ),
            (
                "B18_016496_2076_XN_27N287W.IMG",
                "Product",
                "PRODUCT DATA FILE WITH LABEL",
                FileKind::Image,
            ),
            (
                "B18_016496_2076_XN_27N287W.IMG.JPEG",
                "Browse",
                "BROWSE IMAGE",
                FileKind::Browse,
            ),
            (
                "B18_016496_2076_XN_27N287W.IMG.JPEG_SMALL",
                "Browse",
                "THUMBNAIL IMAGE",
                FileKind::Thumbnail,
            ),
            (
                "B18_016496_2076_XN_27N287W_IMG.KML",
                "Derived",
                "PRODUCT KML FILE",
                FileKind::Derived,
            ),
            (
                "DSMAP.CAT",
                "Referenced",
                "MAP PROJECTION FILE",
                FileKind::Reference,
            ),
        ];
        for (name, file_type, description, kind) in cases {
            assert_eq!(file(name, file_type, description).kind(), kind, "{name}");
        }
    }

    #[test]
    fn product_state_prefers_activity_over_completion() {
        let mut a = file("a.JP2", "Product", "");
        let mut b = file("b.LBL", "Product", "");
        assert_eq!(product_state([] as [&ProductFile; 0]), FileState::Remote);
        assert_eq!(product_state([&a, &b]), FileState::Remote);
        b.state = FileState::Complete;
        assert_eq!(product_state([&a, &b]), FileState::Complete);
        a.state = FileState::Failed;
        assert_eq!(product_state([&a, &b]), FileState::Failed);
        a.state = FileState::Downloading;
        assert_eq!(product_state([&a, &b]), FileState::Downloading);
    }

    #[test]
    fn times_parse_the_forms_ode_writes() {
        let t = UtcTime::parse("2010-01-27T17:48:41.108").unwrap();
        assert_eq!(t.to_string(), "2010-01-27T17:48:41.108");
        assert_eq!(
            UtcTime::parse("2009-08-09T01:26:11").unwrap().to_string(),
            "2009-08-09T01:26:11.000"
        );
        assert!(UtcTime::parse("yesterday").is_none());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2010-01-27T17:48:41.108\"");
        let bytes = postcard::to_stdvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<UtcTime>(&bytes).unwrap(), t);
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(check_plain_name("pdsid", "ESP_016430_2095_COLOR").is_ok());
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "x\u{0}y",
            &"A".repeat(201),
        ] {
            assert!(check_plain_name("pdsid", bad).is_err(), "{bad:?}");
        }
    }
}
