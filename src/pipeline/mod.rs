//! Pipeline steps: each takes inputs, settings and a progress sink and produces catalog
//! records. This is where the outside-world modules (ODE, catalog) meet.

pub mod dataset;
pub mod detections;
pub mod evaluate;
pub mod fetch;
pub mod import;
pub mod labels;
pub mod local;
pub mod search;
pub mod source;
pub mod tile;
pub mod train;
