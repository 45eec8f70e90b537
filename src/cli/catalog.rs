//! `areo catalog ...`

use super::jobs::{exit_code, job_failure, Daemon};
use super::output::{human_bytes, optional, print_table};
use crate::catalog::{CatalogStats, ProductQuery, ProductRow};
use crate::engine::client::unexpected;
use crate::engine::protocol::CatalogRequest;
use crate::engine::{JobSpec, Response};
use crate::geo::LonLatBox;
use crate::lineage::{Artifact, ArtifactKind, Input};
use crate::pipeline::import::ImportReport;
use crate::pipeline::local::AddLocal;
use crate::product::FileState;
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import ODE product-query replies saved from the REST API (JSON or XML).
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Register local images as products (named by their PDS label's PRODUCT_ID, else
    /// their file name), so they flow through the same pipeline.
    AddLocal {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// A detached PDS3 label describing the images (IMG files may carry their own).
        #[arg(long)]
        label: Option<PathBuf>,
    },
    /// List products, filtered.
    List {
        /// Instrument id, e.g. HIRISE or CTX.
        #[arg(long)]
        instrument: Option<String>,
        /// Product type, e.g. RDRV11 or EDR.
        #[arg(long = "type", value_name = "TYPE")]
        product_type: Option<String>,
        /// Bounding box W,E,S,N in degrees (longitudes 0-360 east; W > E crosses 0/360).
        #[arg(long, value_name = "W,E,S,N", allow_hyphen_values = true)]
        bbox: Option<LonLatBox>,
        /// Product state: remote, downloading, complete or failed.
        #[arg(long)]
        state: Option<FileState>,
        /// At most this many products (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one product with its files.
    Show { pdsid: String },
    /// Counts by instrument, type and state; bytes on disk.
    Stats,
    /// Check that every record and index entry is whole and consistent.
    Check,
    /// What the pipeline made (tile sets, datasets, runs, predictions, reports) and from what.
    Lineage {
        /// Only artefacts of this kind: tile-set, dataset, run, prediction or report.
        #[arg(long)]
        kind: Option<ArtifactKind>,
        /// Only what was made from this product (a PDSID).
        #[arg(long, value_name = "PDSID", conflicts_with_all = ["from_file", "from_artifact"])]
        from_product: Option<String>,
        /// Only what was made from this file.
        #[arg(long, value_name = "PATH", conflicts_with = "from_artifact")]
        from_file: Option<PathBuf>,
        /// Only what was made from this artefact (KIND:NAME, e.g. dataset:craters).
        #[arg(long, value_name = "KIND:NAME")]
        from_artifact: Option<String>,
    },
}

pub fn run(daemon: &mut Daemon, command: CatalogCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::AddLocal { files, label } => {
            let request = AddLocal {
                files: files
                    .iter()
                    .map(std::path::absolute)
                    .collect::<Result<Vec<_>, _>>()?,
                label: label.map(std::path::absolute).transpose()?,
            };
            daemon.run_and_print(JobSpec::AddLocal(request), json, |result| {
                let lines: Vec<String> = result["added"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        format!(
                            "{} {} ({} bytes, sha256 {})",
                            a["outcome"].as_str().unwrap_or_default(),
                            a["pdsid"].as_str().unwrap_or_default(),
                            a["bytes"],
                            &a["sha256"].as_str().unwrap_or_default()
                                [..12.min(a["sha256"].as_str().unwrap_or_default().len())]
                        )
                    })
                    .collect();
                lines.join("\n")
            })
        }
        CatalogCommand::Import { files } => {
            let files = files
                .iter()
                .map(std::path::absolute)
                .collect::<Result<Vec<_>, _>>()?;
            let job = daemon.run_job(JobSpec::Import { files }, json)?;
            let Some(result) = &job.result else {
                anyhow::bail!(job_failure(&job));
            };
            if json {
                println!("{result}");
            } else {
                let reports: Vec<ImportReport> =
                    serde_json::from_value(result["imported"].clone())?;
                for report in &reports {
                    println!("{}", describe_import(report));
                }
                for failure in result["failed"].as_array().into_iter().flatten() {
                    eprintln!(
                        "error: {}: {}",
                        failure["file"].as_str().unwrap_or_default(),
                        failure["error"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(exit_code(&job))
        }
        CatalogCommand::List {
            instrument,
            product_type,
            bbox,
            state,
            limit,
        } => {
            let query = ProductQuery {
                instrument,
                product_type,
                bbox,
                state,
                limit: (limit > 0).then_some(limit + 1),
            };
            let mut rows = daemon.rows(CatalogRequest::List { query })?;
            let truncated = limit > 0 && rows.len() > limit;
            rows.truncate(if limit > 0 { limit } else { rows.len() });
            if json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                print_rows(&rows);
                if truncated {
                    println!("(first {limit} shown; --limit N for more, --limit 0 for all)");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Show { pdsid } => {
            let (row, files, made) = match daemon.catalog(CatalogRequest::Show { pdsid })? {
                Response::Product { row, files, made } => (row, files, made),
                other => return Err(unexpected(other).into()),
            };
            if json {
                let mut value = serde_json::to_value(&row)?;
                value["files"] = files
                    .iter()
                    .map(|f| {
                        let mut file = serde_json::to_value(f).expect("files serialise");
                        file["kind"] = json!(f.kind().as_str());
                        file
                    })
                    .collect();
                value["made"] = serde_json::to_value(&made)?;
                println!("{value}");
            } else {
                print_product(&row);
                println!();
                print_table(
                    &["FILE", "KIND", "SIZE", "STATE", "URL"],
                    &files
                        .iter()
                        .map(|f| {
                            vec![
                                f.name.clone(),
                                f.kind().as_str().to_string(),
                                f.max_expected_bytes().map_or("-".into(), human_bytes),
                                f.state.to_string(),
                                f.url.clone(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                );
                if !made.is_empty() {
                    println!();
                    print_artifacts(&made);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Lineage {
            kind,
            from_product,
            from_file,
            from_artifact,
        } => {
            let made_from = match (from_product, from_file, from_artifact) {
                (Some(pdsid), _, _) => Some(Input::Product(pdsid.to_ascii_uppercase())),
                (_, Some(path), _) => Some(Input::File(std::path::absolute(path)?)),
                (_, _, Some(text)) => {
                    let (kind, name) = text.split_once(':').with_context(|| {
                        format!("--from-artifact: expected KIND:NAME, found {text:?}")
                    })?;
                    let kind = kind
                        .parse()
                        .map_err(|e: String| anyhow::anyhow!("--from-artifact: {e}"))?;
                    Some(Input::Artifact(kind, name.to_string()))
                }
                _ => None,
            };
            let artifacts = match daemon.catalog(CatalogRequest::Lineage { kind, made_from })? {
                Response::Artifacts { artifacts } => artifacts,
                other => return Err(unexpected(other).into()),
            };
            if json {
                println!("{}", serde_json::to_string(&artifacts)?);
            } else if artifacts.is_empty() {
                println!("nothing recorded");
            } else {
                print_artifacts(&artifacts);
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Stats => {
            let stats = match daemon.catalog(CatalogRequest::Stats)? {
                Response::Stats { stats } => stats,
                other => return Err(unexpected(other).into()),
            };
            if json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                print_stats(&stats, &daemon.workspace);
            }
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Check => {
            let problems = match daemon.catalog(CatalogRequest::Check)? {
                Response::Problems { problems } => problems,
                other => return Err(unexpected(other).into()),
            };
            if json {
                println!(
                    "{}",
                    json!({"consistent": problems.is_empty(), "problems": problems})
                );
            } else if problems.is_empty() {
                println!("catalog is consistent");
            } else {
                for problem in &problems {
                    println!("{problem}");
                }
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

pub fn describe_import(report: &ImportReport) -> String {
    format!(
        "{}: {} product(s): {} new, {} updated, {} unchanged, {} older than stored",
        report.file.display(),
        report.products,
        report.stored.inserted,
        report.stored.updated,
        report.stored.unchanged,
        report.stored.skipped_older
    )
}

pub fn print_rows(rows: &[ProductRow]) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let p = &row.product;
            vec![
                p.pdsid.clone(),
                p.instrument.clone(),
                p.product_type.clone(),
                optional(p.center_latitude.map(|v| format!("{v:.3}"))),
                optional(p.center_longitude.map(|v| format!("{v:.3}"))),
                optional(p.map_scale),
                row.state.to_string(),
                human_bytes(row.bytes_on_disk),
                optional(
                    p.observation_time
                        .map(|t| t.0.format("%Y-%m-%d").to_string()),
                ),
            ]
        })
        .collect();
    print_table(
        &[
            "PDSID",
            "INSTRUMENT",
            "TYPE",
            "LAT",
            "LON",
            "M/PX",
            "STATE",
            "ON DISK",
            "OBSERVED",
        ],
        &cells,
    );
}

fn print_product(row: &ProductRow) {
    let p = &row.product;
    let fields: Vec<(&str, String)> = vec![
        ("pdsid", p.pdsid.clone()),
        (
            "instrument",
            format!("{} {}", p.instrument_host, p.instrument),
        ),
        ("type", p.product_type.clone()),
        ("state", row.state.to_string()),
        ("on disk", human_bytes(row.bytes_on_disk)),
        ("observation", optional(p.observation_id.as_ref())),
        ("target", optional(p.target.as_ref())),
        ("data set", optional(p.data_set_id.as_ref())),
        ("comment", optional(p.comment.as_ref())),
        (
            "centre lat/lon",
            format!(
                "{} / {}",
                optional(p.center_latitude),
                optional(p.center_longitude)
            ),
        ),
        ("box W,E,S,N", optional(p.bbox)),
        ("crosses 0/360", optional(p.footprints.crosses_meridian)),
        (
            "footprint",
            optional(p.footprints.gl.as_ref().or(p.footprints.geometry.as_ref())),
        ),
        ("map scale m/px", optional(p.map_scale)),
        ("map res px/deg", optional(p.map_resolution)),
        (
            "incidence/emission/phase",
            format!(
                "{} / {} / {}",
                optional(p.incidence_angle),
                optional(p.emission_angle),
                optional(p.phase_angle)
            ),
        ),
        ("solar longitude", optional(p.solar_longitude)),
        ("observed", optional(p.observation_time)),
        (
            "start / stop",
            format!("{} / {}", optional(p.start_time), optional(p.stop_time)),
        ),
        (
            "orbits",
            format!("{} - {}", optional(p.start_orbit), optional(p.stop_orbit)),
        ),
        ("label", optional(p.label_url.as_ref())),
        ("retrieved", optional(p.retrieved_at)),
    ];
    for (name, value) in fields {
        println!("{name:>24}  {value}");
    }
}

fn print_stats(stats: &CatalogStats, workspace: &std::path::Path) {
    println!("workspace     {}", workspace.display());
    println!("products      {}", stats.products);
    println!("files         {}", stats.files);
    println!("on disk       {}", human_bytes(stats.bytes_on_disk));
    println!("catalog size  {}", human_bytes(stats.catalog_bytes));
    println!();
    let mut rows = Vec::new();
    for (instrument, types) in &stats.by_instrument {
        for (product_type, count) in types {
            rows.push(vec![
                instrument.clone(),
                product_type.clone(),
                count.to_string(),
            ]);
        }
    }
    print_table(&["INSTRUMENT", "TYPE", "PRODUCTS"], &rows);
    println!();
    let rows: Vec<Vec<String>> = FileState::ALL
        .iter()
        .map(|state| {
            vec![
                state.to_string(),
                stats
                    .products_by_state
                    .get(state)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                stats
                    .files_by_state
                    .get(state)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ]
        })
        .collect();
    print_table(&["STATE", "PRODUCTS", "FILES"], &rows);
}

/// Artefacts as a table: kind, name, when, the job, and what they came from.
fn print_artifacts(artifacts: &[Artifact]) {
    print_table(
        &["KIND", "NAME", "CREATED", "JOB", "MADE FROM"],
        &artifacts
            .iter()
            .map(|a| {
                vec![
                    a.kind.to_string(),
                    a.name.clone(),
                    a.created.to_string(),
                    a.job.map_or("-".into(), |j| j.to_string()),
                    a.inputs
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect::<Vec<_>>(),
    );
}
