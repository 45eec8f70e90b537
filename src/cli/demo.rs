//! `areo demo`: a workspace seeded with the sample shipped in `data/`.
//!
//! For now it imports the sample ODE reply (through the workspace's daemon, like every
//! other workspace command) and shows the catalog; it grows into the whole
//! crater pipeline and the dashboard as those land.

use super::catalog::{describe_import, print_rows};
use super::jobs::{job_failure, Daemon};
use crate::catalog::ProductQuery;
use crate::engine::protocol::CatalogRequest;
use crate::engine::{JobSpec, JobState};
use crate::pipeline::import::ImportReport;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The sample reply, built into the binary so the demo runs from any directory.
const SAMPLE_REPLY: (&str, &[u8]) = (
    "data/ode/ESP_013951_1955_RED.json",
    include_bytes!("../../data/ode/ESP_013951_1955_RED.json"),
);

pub fn run(dir: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let (name, bytes) = SAMPLE_REPLY;
    let file_name = Path::new(name).file_name().expect("the sample has a name");
    let sample = std::path::absolute(dir.join("demo").join(file_name))?;
    std::fs::create_dir_all(sample.parent().expect("joined above"))
        .with_context(|| format!("cannot use {} as a workspace", dir.display()))?;
    crate::fsio::write_atomically(&sample, bytes)
        .with_context(|| format!("writing {}", sample.display()))?;
    let mut daemon = Daemon::connect(Some(dir))?;
    let job = daemon.run_job(
        JobSpec::Import {
            files: vec![sample],
        },
        true,
    )?;
    let report: ImportReport = match (&job.result, job.state) {
        (Some(result), JobState::Succeeded) => {
            serde_json::from_value(result["imported"][0].clone())?
        }
        _ => anyhow::bail!(job_failure(&job)),
    };
    let rows = daemon.rows(CatalogRequest::List {
        query: ProductQuery::default(),
    })?;
    let root = daemon.workspace.display();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "workspace": daemon.workspace,
                "import": report,
                "products": rows,
            })
        );
    } else {
        println!("demo workspace: {root}");
        println!("{}", describe_import(&report));
        println!();
        print_rows(&rows);
        println!();
        println!(
            "next: areo --workspace {root} catalog show {}",
            rows.first().map_or("PDSID", |r| r.product.pdsid.as_str())
        );
        println!(
            "(the workspace's daemon stays in the background for the next command; \
             `areo --workspace {root} stop` ends it)"
        );
    }
    Ok(ExitCode::SUCCESS)
}
