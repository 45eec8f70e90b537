//! The engine: a daemon per workspace that owns the catalog, keeps a persistent job queue,
//! schedules jobs onto CPU, GPU and network slots, and streams what happens to clients over
//! a Unix socket.
//!
//! - [`job`]: what a job is and what is known about it
//! - [`scheduler`]: which queued job starts next (pure)
//! - [`protocol`]: the frames on the socket
//! - [`daemon`]: `areo serve` (state, recovery, connections)
//! - [`client`]: the blocking client the front ends use

pub mod client;
pub mod daemon;
pub mod job;
pub mod protocol;
mod runner;
pub mod scheduler;

pub use client::{Client, ClientError};
pub use job::{JobId, JobRecord, JobSpec, JobState, NewJob, Resources};
pub use protocol::{Event, Request, Response};
