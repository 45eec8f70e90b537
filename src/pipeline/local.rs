//! Images that did not come from ODE, registered in the catalog so they flow through the
//! same pipeline: each becomes a product (named by its PDS label's `PRODUCT_ID`, else by its
//! file name) whose file is complete in `products/<PDSID>/`, hard-linked when the disk allows
//! it and copied otherwise, with its size and SHA-256 recorded.

use crate::catalog::{Catalog, CatalogError, Upsert};
use crate::geo::LonLatBox;
use crate::pds::img::MapProjection;
use crate::pds::pvl::{self, Label};
use crate::product::{check_plain_name, FileState, Product, ProductEntry, ProductFile, UtcTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}: {message}", .path.display())]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What to register: image files, and optionally the detached PDS3 label they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddLocal {
    pub files: Vec<PathBuf>,
    pub label: Option<PathBuf>,
}

/// One registered image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Added {
    pub pdsid: String,
    pub file: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// `inserted`, `updated` or `unchanged`.
    pub outcome: String,
}

impl AddLocal {
    /// Registers every file, or none: all are read and checked before the catalog changes.
    pub fn run(&self, catalog: &Catalog, workspace: &Path) -> Result<Vec<Added>, LocalError> {
        let label = match &self.label {
            Some(path) => Some((path, read_label(path)?)),
            None => None,
        };
        let mut entries = Vec::new();
        let mut added = Vec::new();
        for file in &self.files {
            let file_error = |message: String| LocalError::File {
                path: file.clone(),
                message,
            };
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| file_error("not a file name".into()))?;
            check_plain_name("file name", &name).map_err(|e| file_error(e.to_string()))?;
            // A label given, else one attached to the file itself (an IMG), else none.
            let attached = match &label {
                Some(_) => None,
                None => attached_label(file),
            };
            let label = label.as_ref().map(|(_, l)| l).or(attached.as_ref());
            let product = product(&name, label).map_err(file_error)?;
            let image = placed(file, workspace, &product.pdsid, &name)?;
            let mut files = vec![image.clone()];
            if let Some(label_path) = &self.label {
                let label_name = label_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push(placed(label_path, workspace, &product.pdsid, &label_name)?);
            }
            added.push(Added {
                pdsid: product.pdsid.clone(),
                file: workspace.join(image.local_path.expect("placed files are local")),
                bytes: image.size.unwrap_or_default(),
                sha256: image.sha256.unwrap_or_default(),
                outcome: String::new(),
            });
            entries.push(ProductEntry {
                product,
                files: Some(files),
            });
        }
        let outcomes = catalog.upsert(&entries)?;
        for (added, outcome) in added.iter_mut().zip(outcomes) {
            added.outcome = match outcome {
                Upsert::Inserted => "inserted",
                Upsert::Updated => "updated",
                Upsert::Unchanged | Upsert::SkippedOlder => "unchanged",
            }
            .into();
        }
        Ok(added)
    }
}

fn read_label(path: &Path) -> Result<Label, LocalError> {
    let bytes = std::fs::read(path).map_err(|e| LocalError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    pvl::parse(&bytes).map_err(|e| LocalError::File {
        path: path.to_path_buf(),
        message: format!("not a PDS3 label: {e}"),
    })
}

/// The label at the head of a file, when it has one (PDS3 IMG files usually do).
fn attached_label(path: &Path) -> Option<Label> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut head)
        .ok()?;
    if !head.starts_with(b"PDS_VERSION_ID") {
        return None;
    }
    pvl::parse(&head).ok()
}

/// The product record of a local image: what its label says, else its name alone.
fn product(file_name: &str, label: Option<&Label>) -> Result<Product, String> {
    let text = |key: &str| {
        label
            .and_then(|l| l.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let pdsid = text("PRODUCT_ID")
        .unwrap_or_else(|| stem.to_string())
        .to_uppercase();
    check_plain_name("product id", &pdsid).map_err(|e| e.to_string())?;
    let mut product = Product::new(
        &pdsid,
        &text("INSTRUMENT_HOST_ID").unwrap_or_else(|| "LOCAL".into()),
        &text("INSTRUMENT_ID").unwrap_or_else(|| "LOCAL".into()),
        &text("PRODUCT_TYPE").unwrap_or_else(|| "LOCAL".into()),
    );
    product.target = text("TARGET_NAME");
    product.data_set_id = text("DATA_SET_ID");
    product.observation_id = text("OBSERVATION_ID");
    product.product_version = text("PRODUCT_VERSION_ID");
    product.start_time = text("START_TIME").and_then(|t| UtcTime::parse(&t));
    product.stop_time = text("STOP_TIME").and_then(|t| UtcTime::parse(&t));
    product.observation_time = product.start_time;
    product.comment = Some(format!("registered from a local file ({file_name})"));
    if let Some(Ok(projection)) = label.and_then(MapProjection::from_label) {
        product.map_scale = Some(projection.map_scale);
        product.map_resolution = projection.map_resolution;
        if let (Some(west), Some(east), Some(south), Some(north)) = (
            projection.westernmost_longitude,
            projection.easternmost_longitude,
            projection.minimum_latitude,
            projection.maximum_latitude,
        ) {
            let bbox = LonLatBox::new(west, east, south, north)
                .map_err(|e| format!("the label's footprint: {e}"))?;
            product.bbox = Some(bbox);
            product.center_latitude = Some((south + north) / 2.0);
            product.center_longitude = Some((bbox.west + bbox.lon_span() / 2.0) % 360.0);
        }
    }
    Ok(product)
}

/// `source` placed in `products/<pdsid>/<name>`, as a complete file record.
fn placed(
    source: &Path,
    workspace: &Path,
    pdsid: &str,
    name: &str,
) -> Result<ProductFile, LocalError> {
    let relative = PathBuf::from("products").join(pdsid).join(name);
    let (bytes, sha256) = place(source, &workspace.join(&relative))?;
    let absolute = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
    let mut file = ProductFile::remote(name, "Product", &format!("file://{}", absolute.display()));
    file.state = FileState::Complete;
    file.local_path = Some(relative);
    file.size = Some(bytes);
    file.kbytes = Some(bytes.div_ceil(1000));
    file.sha256 = Some(sha256);
    Ok(file)
}

/// Puts `source` at `target` (a hard link, else a copy through a temporary name) and returns
/// its size and SHA-256. A target that is already the same file is left alone.
fn place(source: &Path, target: &Path) -> Result<(u64, String), LocalError> {
    let io = |path: &Path, e: std::io::Error| LocalError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut file = std::fs::File::open(source).map_err(|e| io(source, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| io(source, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let sha256 = format!("{:x}", hasher.finalize());
    let dir = target.parent().expect("targets are inside products/");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let same = match (std::fs::metadata(source), std::fs::metadata(target)) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.dev() == b.dev() && a.ino() == b.ino()
        }
        _ => false,
    };
    if !same {
        let part = target.with_extension("part");
        let _ = std::fs::remove_file(&part);
        if std::fs::hard_link(source, &part).is_err() {
            std::fs::copy(source, &part).map_err(|e| io(&part, e))?;
        }
        std::fs::rename(&part, target).map_err(|e| io(target, e))?;
    }
    Ok((bytes, sha256))
}
