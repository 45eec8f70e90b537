//! The PDS Orbital Data Explorer (ODE) REST service: queries, the client, its reply format.
//!
//! `reply` turns what the service sends (JSON or XML) into [`crate::product`] records; the
//! catalog stores them and the pipeline glues the two together.

pub mod client;
pub mod download;
pub mod query;
pub mod reply;

pub use client::{ClientConfig, OdeClient, OdeError, RetryPolicy, SearchSummary};
pub use download::{DownloadError, Downloaded, FileRequest};
pub use query::{OdeQuery, Selector};
pub use reply::{parse_reply, OdeReply, ReplyError};
