//! `areo fetch PDSID...`: download product files into the workspace.

use super::jobs::{job_failure, Daemon};
use super::output::{human_bytes, print_table};
use crate::engine::JobSpec;
use crate::pipeline::fetch::{FetchKind, FileOutcome, Outcome};
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
    /// Queue the download and return at once (`areo jobs watch ID` follows it).
    #[arg(long)]
    detach: bool,
}

pub fn run(daemon: &mut Daemon, args: FetchArgs, json: bool) -> anyhow::Result<ExitCode> {
    let spec = fetch_job(&args);
    if args.detach {
        let id = daemon.submit(spec)?;
        if json {
            println!("{}", serde_json::json!({ "job": id }));
        } else {
            println!("job {id} queued: `areo jobs watch {id}` to follow it");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let job = daemon.run_job(spec, json)?;
    let Some(result) = job.result.clone() else {
        anyhow::bail!(job_failure(&job));
    };
    let outcomes: Vec<FileOutcome> = serde_json::from_value(result)?;
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

/// The download `areo fetch` asks for (the dashboard's palette too).
pub fn fetch_job(args: &FetchArgs) -> JobSpec {
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
    JobSpec::Fetch {
        pdsids: args.pdsids.iter().map(|p| p.to_ascii_uppercase()).collect(),
        kinds,
        parallel: args.parallel,
    }
}
