//! The command line: clap subcommands, human tables by default, `--json` for scripts.

mod catalog;
mod demo;
mod fetch;
mod imagery;
mod labels;
mod ode;
mod output;

use crate::catalog::Catalog;
use crate::workspace::Workspace;
use anyhow::Context;
use clap::{Parser, Subcommand};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The local catalog of products and files.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Search the PDS Orbital Data Explorer.
    Ode(Box<ode::OdeArgs>),
    /// Download products' files into the workspace, resumably and verified.
    Fetch(fetch::FetchArgs),
    /// Preprocess an image: crop, translate, flip, rot90, scale, convert, align.
    #[command(subcommand)]
    Prep(imagery::PrepCommand),
    /// Cut an image into chips (with per-chip masks and ground coordinates when given).
    Tile(imagery::TileArgs),
    /// Annotations: convert between formats, rasterise into masks, count.
    #[command(subcommand)]
    Labels(labels::LabelsCommand),
    /// Seed a demo workspace with the shipped sample and show it.
    Demo,
}

/// What the front end needs: the workspace (locked) and its catalog.
pub(crate) struct Session {
    pub workspace: Workspace,
    pub catalog: Catalog,
}

impl Session {
    pub fn open(dir: PathBuf) -> anyhow::Result<Self> {
        let workspace = Workspace::open(&dir)?;
        let catalog = Catalog::open(&workspace.catalog_dir())
            .with_context(|| format!("opening the catalog of workspace {}", dir.display()))?;
        Ok(Self { workspace, catalog })
    }
}

/// Runs the command line; errors are reported by the caller.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Catalog(command) => {
            let session = Session::open(Workspace::locate(cli.workspace)?)?;
            catalog::run(&session, command, cli.json)
        }
        Command::Ode(args) => ode::run(*args, cli.workspace, cli.json),
        Command::Labels(command) => labels::run(command, cli.json),
        Command::Prep(command) => imagery::prep(command, cli.json),
        Command::Tile(args) => imagery::tile(args, cli.json),
        Command::Fetch(args) => {
            let session = Session::open(Workspace::locate(cli.workspace)?)?;
            fetch::run(&session, args, cli.json)
        }
        Command::Demo => {
            let dir = match cli.workspace {
                Some(dir) => dir,
                None => Workspace::locate(None)?.with_file_name("areo-demo"),
            };
            demo::run(dir, cli.json)
        }
    }
}
