//! The daemon's socket protocol: JSON frames, each preceded by its length (u32, big-endian).
//!
//! A client opens with `Hello`; the daemon answers `Welcome` when it speaks the same
//! protocol version and an error otherwise. After that every client frame is a request with
//! an id, answered by one reply with that id; a subscribed client also receives event frames
//! between replies, in the order the daemon emitted them.

use super::job::{JobId, JobRecord, JobState, NewJob, Resources};
use crate::catalog::{CatalogStats, ProductQuery, ProductRow};
use crate::lineage::{Artifact, ArtifactKind, Input};
use crate::nn::run::{EpochMetrics, RunRecord};
use crate::nn::DeviceMemory;
use crate::pipeline::dataset::DatasetSummary;
use crate::pipeline::evaluate::KeptReport;
use crate::product::ProductFile;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bumped whenever a frame's meaning changes.
pub const PROTOCOL_VERSION: u32 = 4;

/// Frames larger than this are refused (a catalog listing of 100,000 products is ~60 MB).
pub const MAX_FRAME: u32 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: u64,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        client: String,
    },
    Status,
    Submit {
        jobs: Vec<NewJob>,
    },
    /// Jobs (without their logs and results), newest first, optionally of one state.
    Jobs {
        state: Option<JobState>,
        limit: Option<usize>,
    },
    Job {
        id: JobId,
    },
    Cancel {
        id: JobId,
    },
    /// Asks a job to end at its next boundary: a training run after its current epoch,
    /// checkpoint written, resumable (a queued job is cancelled).
    EndEarly {
        id: JobId,
    },
    /// Removes a run's folder (refused while a job trains it).
    DeleteRun {
        name: String,
    },
    Retry {
        id: JobId,
    },
    /// Starts the event stream on this connection: every job's events, or one job's.
    Subscribe {
        job: Option<JobId>,
    },
    Catalog {
        query: CatalogRequest,
    },
    /// The training runs' records, by name.
    Runs,
    /// One run's record and its per-epoch metrics.
    Run {
        name: String,
    },
    /// The kept evaluation reports, by name.
    Evals,
    /// The datasets, by name, with their chips per split.
    Datasets,
    /// The newest lines of the daemon's log.
    DaemonLog {
        lines: usize,
    },
    /// Stops the daemon: running jobs are interrupted (and resume at the next start).
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum CatalogRequest {
    List {
        query: ProductQuery,
    },
    Rows {
        pdsids: Vec<String>,
    },
    Show {
        pdsid: String,
    },
    Stats,
    Check,
    /// What the pipeline made: of one kind or all, or only what was made from one input.
    Lineage {
        kind: Option<ArtifactKind>,
        made_from: Option<Input>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Welcome {
        protocol: u32,
        version: String,
        pid: u32,
    },
    Status(DaemonStatus),
    Submitted {
        ids: Vec<JobId>,
    },
    Jobs {
        jobs: Vec<JobRecord>,
    },
    Job {
        job: Box<JobRecord>,
    },
    Rows {
        rows: Vec<ProductRow>,
    },
    Product {
        row: Box<ProductRow>,
        files: Vec<ProductFile>,
        /// What the pipeline made from the product.
        made: Vec<Artifact>,
    },
    Artifacts {
        artifacts: Vec<Artifact>,
    },
    Stats {
        stats: CatalogStats,
    },
    Problems {
        problems: Vec<String>,
    },
    Runs {
        runs: Vec<RunRecord>,
    },
    Run {
        run: Box<RunRecord>,
        metrics: Vec<EpochMetrics>,
    },
    Evals {
        reports: Vec<KeptReport>,
    },
    Datasets {
        datasets: Vec<DatasetSummary>,
    },
    LogLines {
        lines: Vec<String>,
    },
    /// The request was done and has nothing to say.
    Done,
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub workspace: String,
    pub started: chrono::DateTime<chrono::Utc>,
    pub resources: Resources,
    pub in_use: Resources,
    pub jobs: std::collections::BTreeMap<JobState, u64>,
    /// Each GPU's memory as the driver last reported it (none without nvidia-smi).
    #[serde(default)]
    pub gpus: Vec<GpuReading>,
}

/// One GPU's memory in use, by its CUDA ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuReading {
    pub index: u32,
    pub memory: DeviceMemory,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job was added or changed state (the record without log and result).
    Job {
        job: Box<JobRecord>,
    },
    Progress {
        job: JobId,
        label: String,
        done: u64,
        total: u64,
    },
    Log {
        job: JobId,
        line: String,
    },
    Metric {
        job: JobId,
        name: String,
        step: u64,
        value: f64,
    },
    /// This client fell behind and `missed` events were dropped for it.
    Lagged {
        missed: u64,
    },
    /// The daemon is shutting down.
    Stopping,
}

impl Event {
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            Event::Job { job } => Some(job.id),
            Event::Progress { job, .. } | Event::Log { job, .. } | Event::Metric { job, .. } => {
                Some(*job)
            }
            Event::Lagged { .. } | Event::Stopping => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum ServerFrame {
    Reply { id: u64, response: Response },
    Event { event: Event },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection: {0}")]
    Io(io::Error),
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(u32),
    #[error("the connection closed in the middle of a frame")]
    Truncated,
}

impl From<io::Error> for FrameError {
    fn from(error: io::Error) -> Self {
        FrameError::Io(error)
    }
}

/// A whole frame: the length, then the JSON.
pub fn frame_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = vec![0; 4];
    serde_json::to_writer(&mut bytes, value).expect("protocol types serialise");
    let len = (bytes.len() - 4) as u32;
    bytes[..4].copy_from_slice(&len.to_be_bytes());
    bytes
}

pub fn write_frame(writer: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    writer.write_all(&frame_bytes(value))?;
    writer.flush()
}

/// The next frame's bytes, or `None` when the peer closed between frames.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read(&mut len[..1])? {
        0 => return Ok(None),
        _ => reader.read_exact(&mut len[1..]).map_err(truncated)?,
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0; len as usize];
    reader.read_exact(&mut body).map_err(truncated)?;
    Ok(Some(body))
}

pub async fn read_frame_async(
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    match reader.read(&mut len[..1]).await? {
        0 => return Ok(None),
        _ => reader.read_exact(&mut len[1..]).await.map_err(truncated)?,
    };
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0; len as usize];
    reader.read_exact(&mut body).await.map_err(truncated)?;
    Ok(Some(body))
}

fn truncated(error: io::Error) -> FrameError {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_its_length_then_json() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &Request::Status).unwrap();
        assert_eq!(&bytes[..4], &17u32.to_be_bytes());
        assert_eq!(&bytes[4..], br#"{"type":"status"}"#);
        let body = read_frame(&mut bytes.as_slice()).unwrap().unwrap();
        assert_eq!(
            serde_json::from_slice::<Request>(&body).unwrap(),
            Request::Status
        );
    }

    /// Map keys are text in JSON, and a tagged enum hands them on as text: a run whose
    /// classes are named (a detector's) once made every `Runs` reply unreadable.
    #[test]
    fn a_run_with_named_classes_crosses_the_protocol() {
        let config = crate::nn::config::RunConfig::parse(
            "ssd-craters.toml",
            include_str!("../../models/ssd-craters.toml"),
        )
        .unwrap();
        let run: RunRecord = serde_json::from_value(serde_json::json!({
            "name": "ssd-1", "config": config, "dataset": "craters", "device": "cpu",
            "normalisation": {"mean": 0.5, "std": 0.2},
            "class_names": {"1": "crater", "2": "dune"},
            "state": "finished", "parameters": 10, "train_samples": 4,
            "validation_samples": 1, "epochs_done": 1, "step": 2, "best": null,
            "error": null, "started": "2026-11-27T09:04:05Z", "updated": "2026-11-27T09:05:00Z",
        }))
        .unwrap();
        let frame = ServerFrame::Reply {
            id: 7,
            response: Response::Runs {
                runs: vec![run.clone()],
            },
        };
        let bytes = frame_bytes(&frame);
        let back: ServerFrame = serde_json::from_slice(&bytes[4..]).unwrap();
        assert_eq!(back, frame);
        let ServerFrame::Reply {
            response: Response::Runs { runs },
            ..
        } = back
        else {
            unreachable!()
        };
        assert_eq!(runs[0].class_names[&2], "dune");
        let bad = serde_json::json!({"class_names": {"one": "crater"}});
        let mut record = serde_json::to_value(&run).unwrap();
        record["class_names"] = bad["class_names"].clone();
        let error = serde_json::from_value::<RunRecord>(record).unwrap_err();
        assert!(error.to_string().contains("class index \"one\""), "{error}");
    }

    #[test]
    fn a_clean_close_is_not_an_error_but_a_cut_frame_is() {
        assert!(read_frame(&mut &b""[..]).unwrap().is_none());
        let mut cut = 10u32.to_be_bytes().to_vec();
        cut.extend_from_slice(b"{\"ty");
        assert!(matches!(
            read_frame(&mut cut.as_slice()),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[0u8, 0][..]),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn oversized_frames_are_refused_before_reading_them() {
        let huge = (MAX_FRAME + 1).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..]),
            Err(FrameError::TooLarge(n)) if n == MAX_FRAME + 1
        ));
    }
}
