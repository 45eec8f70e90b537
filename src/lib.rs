//! areo: a terminal console for machine learning on Mars orbital imagery.
//!
//! Layers (lower never imports higher; see ARCHITECTURE.md):
//! 1. pure formats and maths: [`geo`], [`product`], [`progress`], [`tree`], [`labels`],
//!    [`raster`], [`pds`], [`metrics`]; [`fsio`] for durable writes
//! 2. outside world: [`ode`], [`catalog`], [`workspace`], [`nn`] (candle)
//! 3. pipeline steps: [`pipeline`]
//! 4. jobs: [`engine`] (daemon, queue, scheduler, socket protocol)
//! 5. front ends: [`cli`]

pub mod catalog;
pub mod cli;
pub mod engine;
pub mod fsio;
pub mod geo;
pub mod labels;
pub mod lineage;
pub mod metrics;
pub mod nn;
pub mod ode;
pub mod pds;
pub mod pipeline;
pub mod product;
pub mod progress;
pub mod raster;
pub mod tree;
pub mod tui;
pub mod workspace;
