//! The PDS Orbital Data Explorer (ODE) REST service: its reply format.
//!
//! `reply` turns what the service sends (JSON or XML) into [`crate::product`] records; the
//! catalog stores them and the pipeline glues the two together.

pub mod reply;

pub use reply::{parse_reply, OdeReply, ReplyError};
