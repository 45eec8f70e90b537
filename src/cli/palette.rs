//! The dashboard's `:` palette speaks the command line: a line is parsed by the same clap
//! definitions as `areo` itself (one parser, one set of errors) and the commands that queue
//! work give the same jobs they give in a shell.

use super::{fetch, imagery, labels, learn, Cli, Command};
use crate::engine::job::CommandJob;
use crate::engine::{Client, JobSpec, NewJob};
use crate::tui::CommandLine;
use clap::{CommandFactory, Parser};
use std::path::Path;

/// The command line as the dashboard's palette uses it.
pub fn command_line() -> CommandLine {
    CommandLine {
        commands: commands(),
        plan,
    }
}

/// Every subcommand path that queues work from the palette, with its long options.
fn commands() -> Vec<(String, Vec<String>)> {
    let root = Cli::command();
    let mut out = Vec::new();
    for command in root.get_subcommands() {
        let nested: Vec<_> = command.get_subcommands().collect();
        let leaves: Vec<(String, &clap::Command)> = if nested.is_empty() {
            vec![(command.get_name().to_string(), command)]
        } else {
            nested
                .into_iter()
                .map(|sub| (format!("{} {}", command.get_name(), sub.get_name()), sub))
                .collect()
        };
        for (path, leaf) in leaves {
            let queued = QUEUED
                .iter()
                .any(|q| path == *q || path.starts_with(&format!("{q} ")));
            if !queued {
                continue;
            }
            let options = leaf
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|long| !["workspace", "json", "detach", "wait", "help"].contains(long))
                .map(|long| format!("--{long}"))
                .collect();
            out.push((path, options));
        }
    }
    out
}

/// The subcommands (and their subcommands) whose work is a daemon job: one of its own, or
/// the CLI run by the daemon for those that only read and write the files they name.
const QUEUED: [&str; 10] = [
    "train",
    "infer",
    "eval",
    "dataset create",
    "fetch",
    "tile",
    "labels",
    "prep",
    "stitch",
    "pipeline",
];

/// The jobs a palette line asks for and a line saying what they are, or what is wrong with
/// it: clap's own message for a bad line.
fn plan(
    words: &[String],
    client: &mut Client,
    workspace: &Path,
) -> Result<(Vec<NewJob>, String), String> {
    let cli = Cli::try_parse_from(std::iter::once("areo").chain(words.iter().map(String::as_str)))
        .map_err(|e| one_line(&e.render().to_string()))?;
    if cli.workspace.is_some() {
        return Err("the dashboard works on its own workspace: leave out --workspace".into());
    }
    let cwd = std::env::current_dir().map_err(|e| format!("the current folder: {e}"))?;
    let planned =
        plan_command(cli.command, words, client, workspace, &cwd).map_err(|e| format!("{e:#}"))?;
    Ok(planned)
}

fn plan_command(
    command: Option<Command>,
    words: &[String],
    client: &mut Client,
    workspace: &Path,
    cwd: &Path,
) -> anyhow::Result<(Vec<NewJob>, String)> {
    let one = |spec: JobSpec| {
        let summary = spec.describe();
        Ok((vec![NewJob::new(spec)], summary))
    };
    // Commands that only read and write the files they name run as `areo ARGS` in the
    // daemon, from this folder.
    let as_command = || {
        one(JobSpec::Command(CommandJob {
            args: words.to_vec(),
            cwd: cwd.to_path_buf(),
        }))
    };
    match command {
        Some(Command::Train(args)) => one(JobSpec::Train(learn::train_job(&args, workspace, cwd)?)),
        Some(Command::Infer(args)) => {
            let jobs = learn::infer_jobs(&args, client, workspace, cwd)?;
            let summary = jobs
                .iter()
                .map(|job| job.spec.describe())
                .collect::<Vec<_>>()
                .join(", then ");
            Ok((jobs, summary))
        }
        Some(Command::Eval(args)) => one(learn::eval_job(&args, cwd)?),
        Some(Command::Dataset(learn::DatasetCommand::Create(args))) => {
            one(learn::dataset_job(&args, cwd)?)
        }
        Some(Command::Fetch(args)) => one(fetch::fetch_job(&args)),
        Some(Command::Labels(command)) => match labels::label_request(&command)? {
            Some(request) => one(JobSpec::Labels(request)),
            None => as_command(),
        },
        Some(Command::Prep(_) | Command::Stitch(_)) => as_command(),
        Some(Command::Pipeline(args)) => {
            let (names, jobs) = super::jobs::pipeline_plan(&args)?;
            Ok((
                jobs,
                format!("pipeline of {} step(s): {}", names.len(), names.join(", ")),
            ))
        }
        Some(Command::Tile(args)) => match &args.product {
            Some(pdsid) => one(imagery::tile_product_job(&args, pdsid, client, workspace)?),
            None => as_command(),
        },
        _ => anyhow::bail!(
            "the palette queues work: {} (views: :catalog :jobs :runs :metrics :logs)",
            QUEUED.map(|c| format!(":{c}")).join(" ")
        ),
    }
}

/// clap's message on one line, for the status bar: what is wrong, without the usage and the
/// pointer to `--help` that follow it.
fn one_line(message: &str) -> String {
    let what = message.split("\n\nUsage").next().unwrap_or(message);
    let what = what.strip_prefix("error: ").unwrap_or(what);
    what.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_knows_the_queueing_subcommands_and_their_options() {
        let commands = commands();
        let options = |path: &str| {
            commands
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, o)| o.clone())
                .unwrap_or_else(|| panic!("no {path} in {commands:?}"))
        };
        let train = options("train");
        for option in ["--config", "--from-run", "--resume", "--epochs", "--device"] {
            assert!(train.contains(&option.to_string()), "{option} in {train:?}");
        }
        for global in ["--json", "--workspace", "--detach", "--help"] {
            assert!(
                !train.contains(&global.to_string()),
                "{global} in {train:?}"
            );
        }
        assert!(options("dataset create").contains(&"--tiles".to_string()));
        let paths: Vec<&str> = commands.iter().map(|(p, _)| p.as_str()).collect();
        for path in [
            "fetch",
            "tile",
            "stitch",
            "labels convert",
            "labels from-masks",
            "prep crop",
            "prep align",
            "dataset create",
            "train",
            "infer",
            "eval",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        for shell_only in ["dataset list", "runs list", "demo", "serve", "bench model"] {
            assert!(!paths.contains(&shell_only), "{shell_only} in {paths:?}");
        }
    }

    #[test]
    fn a_bad_line_is_named_on_one_line_as_clap_words_it() {
        let error = Cli::try_parse_from(["areo", "train", "--dataset", "d", "--epochs", "many"])
            .unwrap_err();
        let line = one_line(&error.render().to_string());
        assert!(
            line.starts_with("invalid value 'many' for '--epochs <EPOCHS>'"),
            "{line}"
        );
        assert!(!line.contains('\n') && !line.contains("Usage"), "{line}");
    }
}
