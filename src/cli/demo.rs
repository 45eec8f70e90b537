//! `areo demo`: a workspace seeded with the sample shipped in `data/`.
//!
//! For now it imports the sample ODE reply and shows the catalog; it grows into the whole
//! crater pipeline and the dashboard as those land.

use super::catalog::{describe_import, print_rows};
use super::Session;
use crate::catalog::ProductQuery;
use crate::pipeline::import::import_reply;
use crate::progress::Silent;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The sample reply, built into the binary so the demo runs from any directory.
const SAMPLE_REPLY: (&str, &[u8]) = (
    "data/ode/ESP_013951_1955_RED.json",
    include_bytes!("../../data/ode/ESP_013951_1955_RED.json"),
);

pub fn run(dir: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let session = Session::open(dir)?;
    let (name, bytes) = SAMPLE_REPLY;
    let report = import_reply(&session.catalog, Path::new(name), bytes, &Silent)?;
    session.catalog.flush()?;
    let rows = session.catalog.query(&ProductQuery::default())?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "workspace": session.workspace.root(),
                "import": report,
                "products": rows,
            })
        );
    } else {
        println!("demo workspace: {}", session.workspace.root().display());
        println!("{}", describe_import(&report));
        println!();
        print_rows(&rows);
        println!();
        println!(
            "next: areo --workspace {} catalog show {}",
            session.workspace.root().display(),
            rows.first().map_or("PDSID", |r| r.product.pdsid.as_str())
        );
    }
    Ok(ExitCode::SUCCESS)
}
