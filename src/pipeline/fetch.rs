//! Fetching product files into the workspace, with their state kept in the catalog.

use crate::catalog::{Catalog, CatalogError};
use crate::ode::{DownloadError, Downloaded, FileRequest, OdeClient};
use crate::product::{FileKind, FileState, ProductFile};
use crate::progress::Progress;
use crate::workspace::Workspace;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which of a product's files to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchKind {
    Browse,
    Thumbnail,
    Label,
    /// The product's data file: a HiRISE RDR JP2, a CTX EDR IMG.
    Rdr,
    All,
}

impl FetchKind {
    pub fn wants(self, file: &ProductFile) -> bool {
        match self {
            FetchKind::Browse => file.kind() == FileKind::Browse,
            FetchKind::Thumbnail => file.kind() == FileKind::Thumbnail,
            FetchKind::Label => file.kind() == FileKind::Label,
            FetchKind::Rdr => {
                file.kind() == FileKind::Image && file.file_type.eq_ignore_ascii_case("Product")
            }
            FetchKind::All => true,
        }
    }
}

/// Where a product's file is downloaded to, relative to the workspace.
pub fn local_path(pdsid: &str, name: &str) -> PathBuf {
    PathBuf::from("products").join(pdsid).join(name)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no product {0} in the catalog: search with --save or import a reply first")]
    NoProduct(String),
    #[error("product {pdsid} lists no {kinds} file")]
    NoFiles { pdsid: String, kinds: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Downloaded(Downloaded),
    /// Complete before this run, and still on disk at the recorded size.
    AlreadyComplete {
        path: PathBuf,
        size: u64,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileOutcome {
    pub pdsid: String,
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Sends bytes to the file's own sink and to the running total.
struct FileProgress<'a> {
    file: Box<dyn Progress>,
    total: &'a dyn Progress,
}

impl Progress for FileProgress<'_> {
    fn start(&self, label: &str, total: u64) {
        self.file.start(label, total);
    }

    fn advance(&self, units: u64) {
        self.file.advance(units);
        self.total.advance(units);
    }

    fn finish(&self) {
        self.file.finish();
    }
}

/// Fetches the chosen files of each product, `parallel` files at a time, into
/// `products/<PDSID>/`. Every product is checked first; then each file is marked downloading,
/// downloaded (resuming any `.part` an earlier run left), and marked complete (size, SHA-256,
/// path) or failed (the reason). One file failing does not stop the others.
#[allow(clippy::too_many_arguments)]
pub async fn fetch(
    client: &OdeClient,
    catalog: &Catalog,
    workspace: &Workspace,
    pdsids: &[String],
    kinds: &[FetchKind],
    parallel: usize,
    total: &dyn Progress,
    file_progress: &(dyn Fn() -> Box<dyn Progress> + Sync),
) -> Result<Vec<FileOutcome>, FetchError> {
    let mut jobs = Vec::new();
    for pdsid in pdsids {
        let product = catalog
            .product(pdsid)?
            .ok_or_else(|| FetchError::NoProduct(pdsid.clone()))?;
        let chosen: Vec<ProductFile> = catalog
            .files(&product.pdsid)?
            .into_iter()
            .filter(|f| kinds.iter().any(|k| k.wants(f)))
            .collect();
        if chosen.is_empty() {
            let kinds: Vec<String> = kinds
                .iter()
                .map(|k| format!("{k:?}").to_lowercase())
                .collect();
            return Err(FetchError::NoFiles {
                pdsid: product.pdsid,
                kinds: kinds.join("/"),
            });
        }
        jobs.extend(chosen.into_iter().map(|file| (product.pdsid.clone(), file)));
    }
    let expected: u64 = jobs
        .iter()
        .filter_map(|(_, f)| f.max_expected_bytes())
        .sum();
    total.start("total", expected);
    let outcomes = stream::iter(jobs)
        .map(|(pdsid, file)| async move {
            let progress = FileProgress {
                file: file_progress(),
                total,
            };
            let outcome = fetch_one(client, catalog, workspace, &pdsid, &file, &progress).await;
            FileOutcome {
                pdsid,
                name: file.name,
                outcome,
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<_>>()
        .await;
    total.finish();
    Ok(outcomes)
}

async fn fetch_one(
    client: &OdeClient,
    catalog: &Catalog,
    workspace: &Workspace,
    pdsid: &str,
    file: &ProductFile,
    progress: &dyn Progress,
) -> Outcome {
    let dir = workspace.products_dir().join(pdsid);
    let relative = local_path(pdsid, &file.name);
    if file.state == FileState::Complete {
        let on_disk = std::fs::metadata(workspace.root().join(&relative)).map(|m| m.len());
        if let (Ok(size), Some(recorded)) = (on_disk, file.size) {
            if size == recorded {
                return Outcome::AlreadyComplete {
                    path: relative,
                    size,
                };
            }
        }
    }
    let update = |change: &dyn Fn(&mut ProductFile)| {
        tokio::task::block_in_place(|| catalog.update_file(pdsid, &file.name, change))
    };
    if let Err(e) = update(&|f| {
        f.state = FileState::Downloading;
        f.error = None;
    }) {
        return Outcome::Failed {
            error: e.to_string(),
        };
    }
    let request = FileRequest {
        url: file.url.clone(),
        name: file.name.clone(),
        kbytes: file.kbytes,
    };
    let result: Result<Downloaded, DownloadError> = client.download(&request, &dir, progress).await;
    let recorded = match &result {
        Ok(done) => update(&|f| {
            f.state = FileState::Complete;
            f.size = Some(done.size);
            f.sha256 = Some(done.sha256.clone());
            f.local_path = Some(relative.clone());
            f.error = None;
        }),
        Err(error) => update(&|f| {
            f.state = FileState::Failed;
            f.error = Some(error.to_string());
        }),
    };
    match (result, recorded) {
        (Ok(mut done), Ok(_)) => {
            done.path = relative;
            Outcome::Downloaded(done)
        }
        (Err(error), _) => Outcome::Failed {
            error: error.to_string(),
        },
        (Ok(_), Err(error)) => Outcome::Failed {
            error: format!("downloaded, but the catalog could not record it: {error}"),
        },
    }
}
