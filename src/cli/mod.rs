//! The command line: clap subcommands, human tables by default, `--json` for scripts.

mod bench;
mod catalog;
mod demo;
mod fetch;
mod imagery;
mod jobs;
mod labels;
mod learn;
mod ode;
mod output;
mod palette;

use crate::workspace::Workspace;
use clap::{Parser, Subcommand};
use jobs::Daemon;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "areo",
    version,
    about = "A terminal console for machine learning on Mars orbital imagery"
)]
pub struct Cli {
    /// The workspace folder (default: the XDG data directory's `areo`).
    #[arg(long, global = true, env = "AREO_HOME", value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Without one, the dashboard opens.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The dashboard (also what `areo` alone opens).
    Tui(TuiArgs),
    /// The local catalog of products and files.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Search the PDS Orbital Data Explorer.
    Ode(Box<ode::OdeArgs>),
    /// Download products' files into the workspace, resumably and verified.
    Fetch(fetch::FetchArgs),
    /// Preprocess an image: crop, translate, flip, rot90, rotate, scale, convert, align.
    #[command(subcommand)]
    Prep(imagery::PrepCommand),
    /// Cut an image into chips (with per-chip masks and ground coordinates when given).
    Tile(imagery::TileArgs),
    /// Put a tile set's chips, masks or per-chip predictions back into one image.
    Stitch(imagery::StitchArgs),
    /// Annotations: convert between formats, rasterise into masks, count.
    #[command(subcommand)]
    Labels(labels::LabelsCommand),
    /// Run the whole crater pipeline on the shipped sample in a demo workspace.
    Demo(demo::DemoArgs),
    /// Run the workspace's daemon, which owns the catalog and runs jobs (other commands
    /// start it when needed).
    Serve(jobs::ServeArgs),
    /// Stop the workspace's daemon; running jobs are interrupted and resume at its next start.
    Stop,
    /// The daemon: pid, slots, job counts.
    Status,
    /// The job queue: list, show, cancel, retry, watch.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Queue a pipeline of jobs (a JSON file of steps and their order) in one go.
    Pipeline(jobs::PipelineArgs),
    /// Training datasets: tile sets split by area into training, validation and test chips.
    #[command(subcommand)]
    Dataset(learn::DatasetCommand),
    /// Train a U-Net (models/*.toml) on a dataset, in the daemon; --resume continues a run.
    Train(learn::TrainArgs),
    /// Training runs: their state, best epoch and per-epoch metrics.
    #[command(subcommand)]
    Runs(learn::RunsCommand),
    /// Run a trained model over a whole image: class mask, overlay, probabilities.
    Infer(learn::InferArgs),
    /// Score a predicted mask: per-class precision/recall/F1/IoU, confusion, objects, craters.
    Eval(learn::EvalArgs),
    /// Speed of a model on a device (bench/unet.sh compares it with PyTorch).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Debug, clap::Args)]
struct TuiArgs {
    /// The ODE REST endpoint the catalog view searches.
    #[arg(long, env = "AREO_ODE_URL", default_value = crate::ode::client::DEFAULT_URL)]
    ode_url: String,
}

fn tui(workspace: Option<PathBuf>, ode_url: String) -> anyhow::Result<ExitCode> {
    let root = std::path::absolute(Workspace::locate(workspace)?)?;
    crate::tui::run(root, None, ode_url, palette::command_line())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the command line; errors are reported by the caller.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Some(command) = cli.command else {
        return tui(cli.workspace, crate::tui::default_ode_url());
    };
    match command {
        Command::Tui(args) => tui(cli.workspace, args.ode_url),
        Command::Catalog(command) => {
            catalog::run(&mut Daemon::connect(cli.workspace)?, command, cli.json)
        }
        Command::Ode(args) => ode::run(*args, cli.workspace, cli.json),
        Command::Labels(command) => labels::run(command, cli.json),
        Command::Prep(command) => imagery::prep(command, cli.json),
        Command::Tile(args) => imagery::tile(cli.workspace, args, cli.json),
        Command::Stitch(args) => imagery::stitch(args, cli.json),
        Command::Fetch(args) => fetch::run(&mut Daemon::connect(cli.workspace)?, args, cli.json),
        Command::Demo(args) => {
            let dir = match cli.workspace {
                Some(dir) => dir,
                None => Workspace::locate(None)?.with_file_name("areo-demo"),
            };
            demo::run(dir, args, cli.json)
        }
        Command::Serve(args) => jobs::serve(cli.workspace, args, cli.json),
        Command::Stop => jobs::stop(cli.workspace, cli.json),
        Command::Status => jobs::status(cli.workspace, cli.json),
        Command::Jobs(command) => jobs::jobs(cli.workspace, command, cli.json),
        Command::Pipeline(args) => jobs::pipeline(cli.workspace, args, cli.json),
        Command::Dataset(command) => learn::dataset(cli.workspace, command, cli.json),
        Command::Train(args) => learn::train(cli.workspace, args, cli.json),
        Command::Runs(command) => learn::runs(cli.workspace, command, cli.json),
        Command::Infer(args) => learn::infer(cli.workspace, args, cli.json),
        Command::Eval(args) => learn::eval(cli.workspace, args, cli.json),
        Command::Bench(command) => bench::run(command, cli.json),
    }
}
