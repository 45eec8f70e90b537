//! The dashboard's link to the daemon: two connections on two threads. One is subscribed
//! and passes every event on; the other answers the dashboard's commands and, every
//! `POLL`, reloads what events do not carry (status, runs, evaluations, the log).
//! Everything arrives on one channel, next to the key presses.

use super::app::{Command, ConfigChoice, ProductDetail, Update};
use super::Planner;
use crate::catalog::ProductQuery;
use crate::engine::client::{unexpected, Client, ClientError};
use crate::engine::job::{JobSpec, NewJob};
use crate::engine::protocol::{CatalogRequest, Request, Response};
use crate::nn::config::RunConfig;
use crate::pipeline::fetch::FetchKind;
use crate::pipeline::tile::TileRequest;
use crate::product::{FileKind, FileState};
use crate::raster::tile::{Edge, TileSpec};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_secs(1);
/// Daemon log lines kept for the logs view.
const LOG_LINES: usize = 2000;

/// What the loop receives: news from the daemon, or the terminal's input.
pub enum Input {
    Update(Update),
    Terminal(ratatui::crossterm::event::Event),
}

/// Starts both threads; they end when the channel to the dashboard closes.
pub fn start(
    workspace: PathBuf,
    exe: PathBuf,
    plan: Planner,
    commands: Receiver<Command>,
    out: Sender<Input>,
) {
    let events_out = out.clone();
    let events_workspace = workspace.clone();
    std::thread::spawn(move || follow_events(&events_workspace, &events_out));
    std::thread::spawn(move || serve_commands(&workspace, &exe, plan, &commands, &out));
}

fn send(out: &Sender<Input>, update: Update) -> bool {
    out.send(Input::Update(update)).is_ok()
}

/// Passes the daemon's events on, reconnecting after it went away.
fn follow_events(workspace: &std::path::Path, out: &Sender<Input>) {
    loop {
        let result = (|| -> Result<(), ClientError> {
            let mut client = Client::connect(workspace)?;
            client.subscribe(None)?;
            loop {
                if let Some(event) = client.next_event(Some(POLL))? {
                    if !send(out, Update::Event(event)) {
                        return Ok(());
                    }
                }
            }
        })();
        match result {
            Ok(()) => return,
            Err(error) => {
                if !send(out, Update::Disconnected(error.to_string())) {
                    return;
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

fn serve_commands(
    workspace: &std::path::Path,
    exe: &std::path::Path,
    plan: Planner,
    commands: &Receiver<Command>,
    out: &Sender<Input>,
) {
    let mut client: Option<Client> = None;
    let mut last_poll: Option<Instant> = None;
    let mut watched_runs: Vec<String> = Vec::new();
    // Jobs arrive as events once listed; the whole list is asked for again only when events
    // may have been missed: at the start, after a reconnection, or when the dashboard asks.
    let mut jobs_stale = true;
    let mut queue: Vec<Command> = vec![Command::RefreshAll, Command::Products, Command::Choices];
    loop {
        if queue.is_empty() {
            let wait = last_poll.map_or(Duration::ZERO, |at| POLL.saturating_sub(at.elapsed()));
            match commands.recv_timeout(wait) {
                Ok(command) => {
                    jobs_stale |= command == Command::RefreshAll;
                    queue.push(command);
                }
                Err(RecvTimeoutError::Timeout) => queue.push(Command::RefreshAll),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let command = queue.remove(0);
        if command == Command::RefreshAll {
            last_poll = Some(Instant::now());
        }
        if let Command::Runs(selected, compared) = &command {
            watched_runs = selected.iter().chain(compared).cloned().collect();
        }
        if client.is_none() {
            match Client::connect_or_start(workspace, exe) {
                Ok(connected) => client = Some(connected),
                Err(error) => {
                    if !send(out, Update::Disconnected(error.to_string())) {
                        return;
                    }
                    std::thread::sleep(POLL);
                    continue;
                }
            }
        }
        let connection = client.as_mut().expect("connected above");
        let with_jobs = jobs_stale && command == Command::RefreshAll;
        match answer(
            connection,
            workspace,
            plan,
            &command,
            &watched_runs,
            with_jobs,
        ) {
            Ok(updates) => {
                jobs_stale &= !with_jobs;
                for update in updates {
                    if !send(out, update) {
                        return;
                    }
                }
            }
            // The daemon refused this request: say so and carry on.
            Err(ClientError::Daemon(message)) => {
                if !send(out, Update::Error(message)) {
                    return;
                }
            }
            Err(error) => {
                client = None;
                jobs_stale = true;
                if !send(out, Update::Disconnected(error.to_string())) {
                    return;
                }
            }
        }
    }
}

/// Asks the daemon what a command needs and turns the replies into updates.
fn answer(
    client: &mut Client,
    workspace: &std::path::Path,
    plan: Planner,
    command: &Command,
    watched_runs: &[String],
    with_jobs: bool,
) -> Result<Vec<Update>, ClientError> {
    let mut updates = Vec::new();
    match command {
        Command::RefreshAll => {
            match client.call(Request::Status)? {
                Response::Status(status) => updates.push(Update::Status(status)),
                other => return Err(unexpected(other)),
            }
            if with_jobs {
                match client.call(Request::Jobs {
                    state: None,
                    limit: Some(1000),
                })? {
                    Response::Jobs { jobs } => updates.push(Update::Jobs(jobs)),
                    other => return Err(unexpected(other)),
                }
            }
            match client.call(Request::Runs)? {
                Response::Runs { runs } => updates.push(Update::Runs(runs)),
                other => return Err(unexpected(other)),
            }
            for name in watched_runs {
                updates.extend(run(client, name)?);
            }
            match client.call(Request::Evals)? {
                Response::Evals { reports } => updates.push(Update::Evals(reports)),
                other => return Err(unexpected(other)),
            }
            match client.call(Request::DaemonLog { lines: LOG_LINES })? {
                Response::LogLines { lines } => updates.push(Update::Log(lines)),
                other => return Err(unexpected(other)),
            }
        }
        Command::Products => match client.call(Request::Catalog {
            query: CatalogRequest::List {
                query: ProductQuery::default(),
            },
        })? {
            Response::Rows { rows } => updates.push(Update::Products(rows)),
            other => return Err(unexpected(other)),
        },
        Command::Product(pdsid) => match client.call(Request::Catalog {
            query: CatalogRequest::Show {
                pdsid: pdsid.clone(),
            },
        })? {
            Response::Product { row, files, made } => {
                updates.push(Update::Product(Box::new(ProductDetail {
                    row: *row,
                    files,
                    made,
                })))
            }
            other => return Err(unexpected(other)),
        },
        Command::Job(id) => updates.push(Update::Job(Box::new(client.job(*id)?))),
        Command::Runs(..) => {
            for name in watched_runs {
                updates.extend(run(client, name)?);
            }
        }
        Command::TileProduct(pdsid) => updates.push(tile_product(client, workspace, pdsid)?),
        Command::Cancel(id) => {
            client.call(Request::Cancel { id: *id })?;
            updates.push(Update::Done(format!("job {id}: cancel requested")));
        }
        Command::EndEarly(id) => {
            client.call(Request::EndEarly { id: *id })?;
            updates.push(Update::Done(format!(
                "job {id}: stops when its epoch ends (its checkpoint kept)"
            )));
        }
        Command::DeleteRun(name) => {
            client.call(Request::DeleteRun { name: name.clone() })?;
            updates.push(Update::Done(format!("run {name} deleted")));
            // The list and the charts without it.
            updates.extend(answer(
                client,
                workspace,
                plan,
                &Command::RefreshAll,
                &[],
                false,
            )?);
        }
        Command::Retry(id) => {
            client.call(Request::Retry { id: *id })?;
            updates.push(Update::Done(format!("job {id} queued again")));
        }
        Command::Submit(jobs) => {
            let ids = client.submit(jobs.clone())?;
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            updates.push(Update::Done(format!("queued job {}", ids.join(", "))));
        }
        Command::Plan(words) => match plan(words, client, workspace) {
            Ok((jobs, summary)) => {
                let ids: Vec<String> = client.submit(jobs)?.iter().map(u64::to_string).collect();
                updates.push(Update::Planned(Ok(format!(
                    "queued job {}: {summary}",
                    ids.join(", ")
                ))));
            }
            Err(why) => updates.push(Update::Planned(Err(why))),
        },
        Command::Choices => {
            updates.push(Update::Configs(configs(workspace)));
            match client.call(Request::Datasets)? {
                Response::Datasets { datasets } => updates.push(Update::Datasets(datasets)),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(updates)
}

/// Queues tiling of a product's browse image into `tiles/<PDSID>-browse`, after a download
/// of it when it is not complete yet.
fn tile_product(
    client: &mut Client,
    workspace: &std::path::Path,
    pdsid: &str,
) -> Result<Update, ClientError> {
    let files = client.product_files(pdsid)?;
    let Some(browse) = files.iter().find(|f| f.kind() == FileKind::Browse) else {
        return Ok(Update::Error(format!(
            "{pdsid} has no browse image to tile"
        )));
    };
    let tile = JobSpec::Tile(TileRequest {
        input: workspace.join("products").join(pdsid).join(&browse.name),
        spec: TileSpec {
            size: 256,
            stride: 256,
            edge: Edge::ShiftInward,
            skip_no_data: Some((0.0, 0.5)),
        },
        label: None,
        labels: None,
        classes: None,
        circle_scale: None,
        min_visible: None,
        out: workspace.join("tiles").join(format!("{pdsid}-browse")),
    });
    let mut jobs = Vec::new();
    if browse.state != FileState::Complete {
        jobs.push(NewJob::new(JobSpec::Fetch {
            pdsids: vec![pdsid.to_string()],
            kinds: vec![FetchKind::Browse],
            parallel: 2,
        }));
    }
    jobs.push(NewJob {
        after_new: (0..jobs.len()).collect(),
        ..NewJob::new(tile)
    });
    let ids: Vec<String> = client.submit(jobs)?.iter().map(u64::to_string).collect();
    Ok(Update::Done(format!(
        "queued job {} to tile {pdsid}'s browse image",
        ids.join(", ")
    )))
}

/// The model configurations in `models/` here and in the workspace, as `--config` takes
/// them (relative here, absolute in the workspace), each read or with why it does not read.
fn configs(workspace: &std::path::Path) -> Vec<ConfigChoice> {
    let mut found = Vec::new();
    let here = PathBuf::from("models");
    let in_workspace = workspace.join("models");
    for dir in [here, in_workspace] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            // The same folder twice when the dashboard runs in the workspace.
            let same = |c: &ConfigChoice| {
                std::fs::canonicalize(&c.path).ok() == std::fs::canonicalize(&path).ok()
            };
            if found.iter().any(same) {
                continue;
            }
            found.push(ConfigChoice {
                path: path.display().to_string(),
                config: RunConfig::read(&path),
            });
        }
    }
    found
}

fn run(client: &mut Client, name: &str) -> Result<Vec<Update>, ClientError> {
    match client.call(Request::Run {
        name: name.to_string(),
    }) {
        Ok(Response::Run { run, metrics }) => Ok(vec![Update::Run(run, metrics)]),
        Ok(other) => Err(unexpected(other)),
        // The run was removed, or has no record yet: nothing to show.
        Err(ClientError::Daemon(_)) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}
