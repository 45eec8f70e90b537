//! Importing saved ODE replies into the catalog.

use crate::catalog::{Catalog, CatalogError, UpsertCounts};
use crate::ode::{parse_reply, OdeReply, ReplyError};
use crate::progress::Progress;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Replies larger than this are refused before reading: an ODE page is a few MB, and parsing
/// holds the whole reply in memory.
pub const MAX_REPLY_BYTES: u64 = 1 << 30;

/// Products stored per transaction: large enough to amortise the commit, small enough that a
/// crash loses little and memory stays flat.
const BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ImportError {
    pub path: PathBuf,
    pub problem: ImportProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportProblem {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("{size} bytes is larger than the {max} bytes an ODE reply may be")]
    TooLarge { size: u64, max: u64 },
    #[error(transparent)]
    Reply(#[from] ReplyError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ImportReport {
    pub file: PathBuf,
    pub products: usize,
    /// The reply's `Count` (all pages), when the query asked for it.
    pub count: Option<u64>,
    #[serde(flatten)]
    pub stored: UpsertCounts,
}

/// Imports saved replies. Each file is parsed and checked whole before anything of it is
/// written, then stored in batches, each atomic, so an interrupted import can simply be run
/// again. The next file is read and parsed on a second thread while the current one is
/// written, so parsing and storage overlap. Results come back in the order of `paths`.
pub fn import_reply_files(
    catalog: &Catalog,
    paths: &[PathBuf],
    progress: &dyn Progress,
) -> Vec<Result<ImportReport, ImportError>> {
    let (parsed_tx, parsed_rx) = std::sync::mpsc::sync_channel(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for path in paths {
                if parsed_tx.send((path, read_and_parse(path))).is_err() {
                    break;
                }
            }
        });
        parsed_rx
            .into_iter()
            .map(|(path, parsed)| parsed.and_then(|reply| store(catalog, path, reply, progress)))
            .collect()
    })
}

/// Reads and checks a whole reply file before anything is written, so a bad file leaves the
/// catalog exactly as it was.
fn read_and_parse(path: &Path) -> Result<OdeReply, ImportError> {
    let fail = |problem: ImportProblem| ImportError {
        path: path.to_path_buf(),
        problem,
    };
    let size = std::fs::metadata(path).map_err(|e| fail(e.into()))?.len();
    if size > MAX_REPLY_BYTES {
        return Err(fail(ImportProblem::TooLarge {
            size,
            max: MAX_REPLY_BYTES,
        }));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.into()))?;
    parse_reply(&bytes).map_err(|e| fail(e.into()))
}

/// Imports a reply already in memory; `source` names it in the report and in errors.
pub fn import_reply(
    catalog: &Catalog,
    source: &Path,
    bytes: &[u8],
    progress: &dyn Progress,
) -> Result<ImportReport, ImportError> {
    let fail = |problem: ImportProblem| ImportError {
        path: source.to_path_buf(),
        problem,
    };
    let reply = parse_reply(bytes).map_err(|e| fail(e.into()))?;
    store(catalog, source, reply, progress)
}

/// Writes a parsed reply in atomic batches.
fn store(
    catalog: &Catalog,
    source: &Path,
    reply: OdeReply,
    progress: &dyn Progress,
) -> Result<ImportReport, ImportError> {
    let fail = |problem: ImportProblem| ImportError {
        path: source.to_path_buf(),
        problem,
    };
    let mut report = ImportReport {
        file: source.to_path_buf(),
        products: reply.products.len(),
        count: reply.count,
        ..ImportReport::default()
    };
    progress.start(&source.display().to_string(), reply.products.len() as u64);
    for batch in reply.products.chunks(BATCH) {
        let outcomes = catalog.upsert(batch).map_err(|e| fail(e.into()))?;
        report.stored.add(&outcomes);
        progress.advance(batch.len() as u64);
    }
    progress.finish();
    Ok(report)
}
