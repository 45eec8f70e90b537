//! Downloading product files: streamed to `NAME.part`, resumed with HTTP Range after a drop
//! or a restart, checked against the server's length and ODE's `KBytes`, hashed (SHA-256),
//! then renamed into place atomically.

use super::client::{describe, OdeClient};
use crate::product::{check_plain_name, UnsafeName};
use crate::progress::Progress;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITE_BUFFER: usize = 1 << 20;

/// What to download and where.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub url: String,
    /// The remote file name; becomes the local name, so it must be a plain name.
    pub name: String,
    /// ODE's `KBytes` (1000-byte units, rounded up), when known.
    pub kbytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Bytes already on disk from an earlier, interrupted attempt.
    pub resumed_from: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("refusing to download: {0}")]
    Name(#[from] UnsafeName),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("{name}: the server sent {got} bytes but announced {announced}")]
    Length {
        name: String,
        got: u64,
        announced: u64,
    },
    #[error("{name}: {size} bytes does not match ODE's size of {kbytes} KBytes ({} to {} bytes)", kbytes.saturating_sub(1) * 1000 + 1, kbytes * 1000)]
    Size {
        name: String,
        size: u64,
        kbytes: u64,
    },
}

/// One attempt's end: done, or worth another try (the part file keeps what arrived).
enum Attempt {
    Done(u64),
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `Content-Range: bytes START-END/TOTAL` -> (START, TOTAL).
fn content_range(headers: &reqwest::header::HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (span, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match span.trim() {
        "*" => return Some((0, total)),
        span => span.split_once('-')?.0.trim().parse().ok()?,
    };
    Some((start, total))
}

async fn hash_existing(path: &Path, hasher: &mut Sha256) -> Result<u64, DownloadError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = file.read(&mut buffer).await.map_err(io_error(path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
}

impl OdeClient {
    /// Downloads one file into `dir`, resuming a `.part` left by an earlier attempt.
    pub async fn download(
        &self,
        file: &FileRequest,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<Downloaded, DownloadError> {
        check_plain_name("file name", &file.name)?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io_error(dir))?;
        let target = dir.join(&file.name);
        let part = dir.join(format!("{}.part", file.name));
        let mut hasher = Sha256::new();
        let resumed_from = hash_existing(&part, &mut hasher).await?;
        let mut have = resumed_from;
        let mut last = String::new();
        let mut started = false;
        let retry = self.retry_policy();
        for attempt in 0..retry.attempts {
            if attempt > 0 {
                tracing::info!(url = %file.url, have, "resuming download: {last}");
            }
            match self
                .download_attempt(file, &part, &mut hasher, &mut have, &mut started, progress)
                .await?
            {
                Attempt::Done(size) => {
                    progress.finish();
                    if let Some(kbytes) = file.kbytes {
                        if size.div_ceil(1000) != kbytes {
                            let _ = tokio::fs::remove_file(&part).await;
                            return Err(DownloadError::Size {
                                name: file.name.clone(),
                                size,
                                kbytes,
                            });
                        }
                    }
                    tokio::fs::rename(&part, &target)
                        .await
                        .map_err(io_error(&target))?;
                    if let Ok(dir) = std::fs::File::open(dir) {
                        let _ = dir.sync_all();
                    }
                    return Ok(Downloaded {
                        path: target,
                        size,
                        sha256: format!("{:x}", hasher.finalize()),
                        resumed_from,
                    });
                }
                Attempt::Retry { reason, wait } => {
                    last = reason;
                    if attempt + 1 < retry.attempts {
                        tokio::time::sleep(retry.wait(attempt, wait)).await;
                    }
                }
            }
        }
        Err(DownloadError::GaveUp {
            url: file.url.clone(),
            attempts: retry.attempts,
            last,
        })
    }

    async fn download_attempt(
        &self,
        file: &FileRequest,
        part: &Path,
        hasher: &mut Sha256,
        have: &mut u64,
        started: &mut bool,
        progress: &dyn Progress,
    ) -> Result<Attempt, DownloadError> {
        let retry = |reason: String| Ok(Attempt::Retry { reason, wait: None });
        let mut request = self.download_client().get(&file.url);
        if *have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return retry(describe(&e)),
        };
        let status = response.status().as_u16();
        let range = content_range(response.headers());
        let total = match status {
            206 => match range {
                Some((start, total)) if start == *have => {
                    total.or(response.content_length().map(|n| n + start))
                }
                // A range we did not ask for: start again from nothing.
                _ => return start_over(part, hasher, have, "unexpected Content-Range").await,
            },
            200 => {
                if *have > 0 {
                    tracing::info!(url = %file.url, "the server ignored Range; downloading afresh");
                    discard(part, hasher, have).await?;
                }
                response.content_length()
            }
            416 => {
                // Nothing left to send: either the part is whole, or it is longer than the
                // file now is.
                return match range {
                    Some((_, Some(total))) if total == *have => Ok(Attempt::Done(*have)),
                    _ => start_over(part, hasher, have, "range not satisfiable").await,
                };
            }
            429 | 500..=599 => {
                let wait = super::client::retry_after(response.headers());
                return Ok(Attempt::Retry {
                    reason: format!("HTTP {status}"),
                    wait,
                });
            }
            _ => {
                return Err(DownloadError::Status {
                    url: file.url.clone(),
                    status,
                })
            }
        };
        if !*started {
            progress.start(&file.name, total.unwrap_or(0));
            progress.advance(*have);
            *started = true;
        }
        let part_file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .await
            .map_err(io_error(part))?;
        // tokio runs each file write on a blocking thread: write megabytes, not network chunks.
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, part_file);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    out.write_all(&chunk).await.map_err(io_error(part))?;
                    hasher.update(&chunk);
                    *have += chunk.len() as u64;
                    progress.advance(chunk.len() as u64);
                }
                Ok(None) => break,
                Err(e) => {
                    out.flush().await.map_err(io_error(part))?;
                    return retry(describe(&e));
                }
            }
        }
        out.flush().await.map_err(io_error(part))?;
        out.get_ref().sync_all().await.map_err(io_error(part))?;
        match total {
            Some(total) if *have < total => {
                retry(format!("connection closed at {have} of {total} bytes"))
            }
            Some(total) if *have > total => Err(DownloadError::Length {
                name: file.name.clone(),
                got: *have,
                announced: total,
            }),
            _ => Ok(Attempt::Done(*have)),
        }
    }
}

/// Throws away a part file that cannot be continued.
async fn discard(part: &Path, hasher: &mut Sha256, have: &mut u64) -> Result<(), DownloadError> {
    match tokio::fs::remove_file(part).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(part)(e)),
    }
    *hasher = Sha256::new();
    *have = 0;
    Ok(())
}

/// Discards the part file and asks for an immediate fresh attempt.
async fn start_over(
    part: &Path,
    hasher: &mut Sha256,
    have: &mut u64,
    reason: &str,
) -> Result<Attempt, DownloadError> {
    discard(part, hasher, have).await?;
    Ok(Attempt::Retry {
        reason: reason.to_string(),
        wait: Some(Duration::ZERO),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("content-range", "bytes 100-199/1000".parse().unwrap());
        assert_eq!(content_range(&headers), Some((100, Some(1000))));
        headers.insert("content-range", "bytes */1000".parse().unwrap());
        assert_eq!(content_range(&headers), Some((0, Some(1000))));
        headers.insert("content-range", "bytes 5-9/*".parse().unwrap());
        assert_eq!(content_range(&headers), Some((5, None)));
        headers.insert("content-range", "pages 1-2/3".parse().unwrap());
        assert_eq!(content_range(&headers), None);
    }
}
