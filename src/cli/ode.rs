//! `areo ode search|count`: ask the ODE service, optionally saving into the catalog.

use super::catalog::print_rows;
use super::jobs::{job_failure, Daemon};
use super::output::CliProgress;
use crate::catalog::{ProductRow, UpsertCounts};
use crate::engine::protocol::CatalogRequest;
use crate::engine::{JobSpec, JobState};
use crate::geo::LonLatBox;
use crate::ode::query::{AngleRange, Location, Output};
use crate::ode::{ClientConfig, OdeClient, OdeQuery, SearchSummary, Selector};
use crate::pipeline::search::search;
use crate::product::UtcTime;
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct OdeArgs {
    /// The ODE REST endpoint.
    #[arg(long, global = true, env = "AREO_ODE_URL", default_value = crate::ode::client::DEFAULT_URL)]
    ode_url: String,
    #[command(subcommand)]
    command: OdeCommand,
}

#[derive(Debug, Subcommand)]
enum OdeCommand {
    /// Search for products; `--save` stores them in the catalog as the pages arrive.
    Search {
        #[command(flatten)]
        filter: Filter,
        /// At most this many products (0: all that match).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Products asked for per request.
        #[arg(long, default_value_t = 500)]
        page_size: u64,
        /// Store the products (and their file lists) in the catalog.
        #[arg(long)]
        save: bool,
    },
    /// Count matching products.
    Count {
        #[command(flatten)]
        filter: Filter,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LocationArg {
    Footprint,
    Center,
}

#[derive(Debug, Args)]
struct Filter {
    /// Instrument id (HIRISE, CTX, ...); needs --type.
    #[arg(long, requires = "product_type")]
    instrument: Option<String>,
    /// Product type (RDRV11, EDR, DTM, ...).
    #[arg(long = "type", value_name = "TYPE", requires = "instrument")]
    product_type: Option<String>,
    /// Instrument host; known for the usual instruments (HIRISE and CTX: MRO).
    #[arg(long)]
    host: Option<String>,
    /// A PDS product id; `*` is a wildcard.
    #[arg(long, conflicts_with_all = ["instrument", "odeid"])]
    pdsid: Option<String>,
    /// ODE's numeric product id.
    #[arg(long, conflicts_with = "instrument")]
    odeid: Option<u64>,
    #[arg(long, default_value = "mars")]
    target: String,
    /// Bounding box W,E,S,N (longitudes 0-360 east; W > E crosses 0/360).
    #[arg(long, value_name = "W,E,S,N", allow_hyphen_values = true)]
    bbox: Option<LonLatBox>,
    /// Match the box by footprint or by centre point.
    #[arg(long, value_enum)]
    loc: Option<LocationArg>,
    /// Observed at or after this time (2010-01-27 or 2010-01-27T17:48:41).
    #[arg(long, value_parser = parse_time)]
    after: Option<UtcTime>,
    /// Observed at or before this time.
    #[arg(long, value_parser = parse_time)]
    before: Option<UtcTime>,
    /// Incidence angle range MIN:MAX in degrees (either side may be empty).
    #[arg(long, value_parser = parse_range, value_name = "MIN:MAX")]
    incidence: Option<AngleRange>,
    #[arg(long, value_parser = parse_range, value_name = "MIN:MAX")]
    emission: Option<AngleRange>,
    #[arg(long, value_parser = parse_range, value_name = "MIN:MAX")]
    phase: Option<AngleRange>,
    /// Ask for XML replies instead of JSON.
    #[arg(long)]
    xml: bool,
}

fn parse_time(text: &str) -> Result<UtcTime, String> {
    UtcTime::parse(text).ok_or_else(|| format!("{text:?} is not a time like 2010-01-27T17:48:41"))
}

fn parse_range(text: &str) -> Result<AngleRange, String> {
    let (min, max) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected MIN:MAX, e.g. 0:60 or :45"))?;
    let side = |value: &str| -> Result<Option<f64>, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| format!("{value:?} is not a number"))
    };
    Ok(AngleRange {
        min: side(min)?,
        max: side(max)?,
    })
}

/// The host of the instruments people search for most.
impl Filter {
    fn query(&self) -> anyhow::Result<OdeQuery> {
        let selector = if let Some(pattern) = &self.pdsid {
            Selector::PdsId(pattern.clone())
        } else if let Some(id) = self.odeid {
            Selector::OdeId(id)
        } else if let (Some(instrument), Some(product_type)) =
            (&self.instrument, &self.product_type)
        {
            let host = match &self.host {
                Some(host) => host.clone(),
                None => crate::ode::query::host_of(instrument)
                    .with_context(|| format!("which spacecraft carries {instrument}? give --host"))?
                    .to_string(),
            };
            Selector::Instrument {
                host,
                instrument: instrument.clone(),
                product_type: product_type.clone(),
            }
        } else {
            bail!("say which products: --instrument and --type, --pdsid, or --odeid");
        };
        let mut query = OdeQuery::new(selector);
        query.target = self.target.clone();
        query.bbox = self.bbox;
        query.location = self.loc.map(|loc| match loc {
            LocationArg::Footprint => Location::Footprint,
            LocationArg::Center => Location::Center,
        });
        query.observed_after = self.after;
        query.observed_before = self.before;
        query.incidence = self.incidence.unwrap_or_default();
        query.emission = self.emission.unwrap_or_default();
        query.phase = self.phase.unwrap_or_default();
        query.output = if self.xml { Output::Xml } else { Output::Json };
        query.params()?;
        Ok(query)
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(args: OdeArgs, workspace: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let client = OdeClient::new(&ClientConfig {
        base_url: args.ode_url.clone(),
        ..ClientConfig::default()
    })?;
    let runtime = runtime()?;
    match args.command {
        OdeCommand::Count { filter } => {
            let query = filter.query()?;
            let count = runtime.block_on(client.count(&query))?;
            if json {
                println!("{}", json!({ "count": count }));
            } else {
                println!("{count}");
            }
        }
        OdeCommand::Search {
            filter,
            limit,
            page_size,
            save,
        } => {
            let query = filter.query()?;
            let max = (limit > 0).then_some(limit);
            let (summary, stored, rows) = if save {
                // The daemon owns the catalog: it runs the search and stores each page.
                let mut daemon = Daemon::connect(workspace)?;
                let spec = JobSpec::Search {
                    ode_url: args.ode_url.clone(),
                    query,
                    page_size,
                    max,
                };
                let job = daemon.run_job(spec, json)?;
                let (Some(result), JobState::Succeeded) = (&job.result, job.state) else {
                    anyhow::bail!(job_failure(&job));
                };
                let summary: SearchSummary = serde_json::from_value(result["summary"].clone())?;
                let stored: UpsertCounts = serde_json::from_value(result["stored"].clone())?;
                let pdsids: Vec<String> = serde_json::from_value(result["pdsids"].clone())?;
                let rows = daemon.rows(CatalogRequest::Rows { pdsids })?;
                (summary, stored, rows)
            } else {
                let progress = CliProgress::new();
                let mut found = Vec::new();
                let (summary, stored) = runtime.block_on(search(
                    &client,
                    &query,
                    page_size,
                    max,
                    None,
                    &progress,
                    |page| found.extend(page.into_iter().map(|entry| entry.product)),
                ))?;
                let rows: Vec<ProductRow> = found.into_iter().map(ProductRow::not_stored).collect();
                (summary, stored, rows)
            };
            if json {
                let mut out = json!({"count": summary.count, "summary": summary, "products": rows});
                if save {
                    out["stored"] = json!(stored);
                }
                println!("{out}");
            } else {
                print_rows(&rows);
                println!(
                    "{} of {} matching product(s){}",
                    rows.len(),
                    summary.count,
                    if save {
                        format!(
                            "; saved: {} new, {} updated, {} unchanged",
                            stored.inserted, stored.updated, stored.unchanged
                        )
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
