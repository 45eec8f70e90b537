//! The workspace: one folder holding the catalog, downloaded products, tiles and runs.
//!
//! ```text
//! catalog/            sled database (records only)
//! products/<PDSID>/   downloaded files
//! tiles/<tileset>/    tiles, masks, manifest.json
//! datasets/<name>.json tile sets split into training, validation and test chips
//! runs/<run>/         configs, checkpoints, metrics, predictions
//! areo.lock           held by the process that owns the workspace
//! areo.sock, areo.log the daemon's socket and log
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "no workspace given and no data directory found: pass --workspace DIR or set AREO_HOME"
    )]
    NoDefault,
    #[error("cannot use {path} as a workspace: {source}")]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("workspace {path} is in use by another areo process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
}

/// An open workspace. Holding it holds an exclusive lock on the folder, released on drop.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    _lock: File,
}

const SUBDIRS: [&str; 6] = ["catalog", "products", "tiles", "datasets", "runs", "evals"];

impl Workspace {
    /// The folder to use: the one given (`--workspace` or `AREO_HOME`), else the XDG data
    /// directory's `areo`.
    pub fn locate(given: Option<PathBuf>) -> Result<PathBuf, WorkspaceError> {
        given
            .or_else(|| dirs::data_dir().map(|d| d.join("areo")))
            .ok_or(WorkspaceError::NoDefault)
    }

    /// Opens the workspace at `root`, creating its layout on first use, and locks it.
    pub fn open(root: &Path) -> Result<Self, WorkspaceError> {
        let unwritable = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WorkspaceError::Unwritable { path, source }
        };
        for sub in SUBDIRS {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(unwritable(&dir))?;
        }
        let lock_path = root.join("areo.lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(unwritable(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = lock
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(WorkspaceError::Locked {
                    path: root.to_path_buf(),
                    pid,
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(unwritable(&lock_path)(e)),
        }
        // The pid is only for the message another process shows; the lock is the flock.
        lock.set_len(0)
            .and_then(|_| lock.rewind())
            .and_then(|_| write!(lock, "{}", std::process::id()))
            .map_err(unwritable(&lock_path))?;
        Ok(Self {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn catalog_dir(&self) -> PathBuf {
        self.root.join("catalog")
    }

    pub fn products_dir(&self) -> PathBuf {
        self.root.join("products")
    }

    pub fn datasets_dir(&self) -> PathBuf {
        self.root.join("datasets")
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn evals_dir(&self) -> PathBuf {
        self.root.join("evals")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_creates_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let ws = Workspace::open(&root).unwrap();
        for sub in SUBDIRS {
            assert!(root.join(sub).is_dir(), "{sub}");
        }
        assert_eq!(ws.catalog_dir(), root.join("catalog"));
        assert_eq!(
            fs::read_to_string(root.join("areo.lock")).unwrap(),
            std::process::id().to_string()
        );
    }

    #[test]
    fn a_second_open_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = Workspace::open(dir.path()).unwrap();
        let err = Workspace::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, WorkspaceError::Locked { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        drop(first);
        Workspace::open(dir.path()).unwrap();
    }

    #[test]
    fn a_path_through_a_file_is_reported_as_unwritable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = Workspace::open(&file.join("ws")).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, WorkspaceError::Unwritable { .. }));
        assert!(message.contains("plain-file"), "{message}");
    }
}
