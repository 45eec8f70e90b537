//! `areo fetch PDSID...`: download product files into the workspace.

use super::ode::runtime;
use super::output::{human_bytes, print_table, ProgressGroup};
use super::Session;
use crate::ode::{ClientConfig, OdeClient};
use crate::pipeline::fetch::{fetch, FetchKind, Outcome};
use crate::progress::Progress;
use clap::{Args, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Browse,
    Thumbnail,
    Label,
    /// The product's data file (HiRISE RDR JP2, CTX EDR IMG).
    Rdr,
    All,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Products to fetch (already in the catalog).
    #[arg(required = true, value_name = "PDSID")]
    pdsids: Vec<String>,
    /// Which files; repeat for several.
    #[arg(long, value_enum, default_values_t = [KindArg::Browse])]
    kind: Vec<KindArg>,
    /// Files downloaded at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
}

pub fn run(session: &Session, args: FetchArgs, json: bool) -> anyhow::Result<ExitCode> {
    let client = OdeClient::new(&ClientConfig::default())?;
    let kinds: Vec<FetchKind> = args
        .kind
        .iter()
        .map(|kind| match kind {
            KindArg::Browse => FetchKind::Browse,
            KindArg::Thumbnail => FetchKind::Thumbnail,
            KindArg::Label => FetchKind::Label,
            KindArg::Rdr => FetchKind::Rdr,
            KindArg::All => FetchKind::All,
        })
        .collect();
    let pdsids: Vec<String> = args.pdsids.iter().map(|p| p.to_ascii_uppercase()).collect();
    let group = ProgressGroup::new();
    let total = group.add(true);
    let file_progress = || Box::new(group.add(true)) as Box<dyn Progress>;
    let outcomes = runtime()?.block_on(fetch(
        &client,
        &session.catalog,
        &session.workspace,
        &pdsids,
        &kinds,
        args.parallel,
        &total,
        &file_progress,
    ))?;
    session.catalog.flush()?;
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Failed { .. }))
        .count();
    if json {
        println!("{}", serde_json::to_string(&outcomes)?);
    } else {
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| {
                let (size, sha, status) = match &o.outcome {
                    Outcome::Downloaded(d) => (
                        human_bytes(d.size),
                        d.sha256[..16].to_string(),
                        if d.resumed_from > 0 {
                            format!("downloaded (resumed at {})", human_bytes(d.resumed_from))
                        } else {
                            "downloaded".into()
                        },
                    ),
                    Outcome::AlreadyComplete { size, .. } => {
                        (human_bytes(*size), "-".into(), "already complete".into())
                    }
                    Outcome::Failed { error } => {
                        ("-".into(), "-".into(), format!("FAILED: {error}"))
                    }
                };
                vec![o.pdsid.clone(), o.name.clone(), size, sha, status]
            })
            .collect();
        print_table(&["PDSID", "FILE", "SIZE", "SHA-256", "RESULT"], &rows);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
