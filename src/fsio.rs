//! Durable file writes shared by every step that writes results.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `NAME.part`: where `NAME` is written before it is renamed into place.
pub fn part_path(path: &Path) -> PathBuf {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    PathBuf::from(part)
}

/// Writes a file whole or not at all: to `NAME.part`, fsynced, then renamed over `NAME`, so a
/// crash never leaves a half-written file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let part = part_path(path);
    let mut file = std::fs::File::create(&part)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&part, path)
}

/// Waits until everything written to the file system holding `dir` is on disk: one call
/// after writing many files, instead of an fsync per file.
pub fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    // SAFETY: the descriptor is valid for as long as `handle` lives.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_appears_whole_and_no_part_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert!(!dir.path().join("out.json.part").exists());
        assert!(write_atomically(&dir.path().join("missing/dir/x"), b"x").is_err());
    }
}
