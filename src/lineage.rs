//! What the pipeline made and what from: tile sets, datasets, training runs, predictions and
//! evaluation reports, each naming the products, files and earlier artefacts it came from, so
//! a score can be traced back to the products, labels and settings behind it.

use crate::product::UtcTime;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    TileSet,
    Dataset,
    Run,
    Prediction,
    Report,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 5] = [
        ArtifactKind::TileSet,
        ArtifactKind::Dataset,
        ArtifactKind::Run,
        ArtifactKind::Prediction,
        ArtifactKind::Report,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::TileSet => "tile-set",
            ArtifactKind::Dataset => "dataset",
            ArtifactKind::Run => "run",
            ArtifactKind::Prediction => "prediction",
            ArtifactKind::Report => "report",
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ArtifactKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ArtifactKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = ArtifactKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("{text:?} is not a kind of artefact ({})", known.join(", "))
            })
    }
}

/// Something an artefact was made from. (Externally tagged, `{"product": "ESP_..."}`, which
/// the catalog's binary encoding can read back.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// A catalog product, by pdsid (its files under `products/<pdsid>/`).
    Product(String),
    /// A file that is not a product's: annotations, a class map, an image from elsewhere.
    File(PathBuf),
    /// An earlier artefact.
    Artifact(ArtifactKind, String),
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Product(pdsid) => write!(f, "product {pdsid}"),
            Input::File(path) => write!(f, "file {}", path.display()),
            Input::Artifact(kind, name) => write!(f, "{kind} {name}"),
        }
    }
}

/// One thing the pipeline made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub kind: ArtifactKind,
    /// Unique within its kind: a run's or dataset's name; a tile set's, prediction's or
    /// report's folder or file, relative to the workspace when it lies inside it.
    pub name: String,
    /// Where it is on disk (absolute).
    pub path: PathBuf,
    pub created: UtcTime,
    /// The job that made it.
    pub job: Option<u64>,
    pub inputs: Vec<Input>,
    /// The step's settings and counts, as JSON text (what `areo jobs show` calls its result).
    pub summary: String,
}
