//! The daemon from the command line: `areo serve|stop|status`, `areo jobs ...`,
//! `areo pipeline FILE`, and the helpers every workspace command uses to reach the daemon
//! and wait for its jobs.

use super::output::{print_table, ProgressGroup};
use crate::catalog::ProductRow;
use crate::engine::client::unexpected;
use crate::engine::daemon::{self, ServeOptions};
use crate::engine::protocol::{CatalogRequest, DaemonStatus};
use crate::engine::{
    Client, ClientError, Event, JobId, JobRecord, JobSpec, JobState, NewJob, Request, Response,
};
use crate::product::{FileKind, FileState};
use crate::progress::Progress;
use crate::workspace::Workspace;
use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A connection to the workspace's daemon (started when none runs).
pub struct Daemon {
    pub workspace: PathBuf,
    pub client: Client,
}

impl Daemon {
    pub fn connect(workspace: Option<PathBuf>) -> anyhow::Result<Self> {
        let workspace = std::path::absolute(Workspace::locate(workspace)?)?;
        let exe = std::env::current_exe().context("finding the areo executable")?;
        let client = Client::connect_or_start(&workspace, &exe)?;
        Ok(Daemon { workspace, client })
    }

    pub fn catalog(&mut self, query: CatalogRequest) -> Result<Response, ClientError> {
        self.client.call(Request::Catalog { query })
    }

    pub fn rows(&mut self, query: CatalogRequest) -> anyhow::Result<Vec<ProductRow>> {
        match self.catalog(query)? {
            Response::Rows { rows } => Ok(rows),
            other => Err(unexpected(other).into()),
        }
    }

    /// Queues a job and waits for it, drawing its progress; the job goes on in the daemon
    /// if this process is interrupted.
    pub fn run_job(&mut self, spec: JobSpec, json: bool) -> anyhow::Result<JobRecord> {
        self.run_jobs(vec![NewJob::new(spec)], json)
    }

    /// Queues jobs (waiting on each other as their `after_new` says) and waits for the last.
    /// Returns the last job, or the earlier one that failed (the later ones wait for its retry).
    pub fn run_jobs(&mut self, jobs: Vec<NewJob>, json: bool) -> anyhow::Result<JobRecord> {
        let ids = self.client.submit(jobs)?;
        let last = *ids.last().context("the daemon queued nothing")?;
        if !json {
            let listed: Vec<String> = ids.iter().map(u64::to_string).collect();
            eprintln!(
                "job {} queued (Ctrl-C leaves {}: `areo jobs watch {last}`)",
                listed.join(", "),
                if ids.len() == 1 {
                    "it running"
                } else {
                    "them running"
                }
            );
        }
        let mut jobs = self.wait_all(&ids)?;
        // The first that failed says why the others did not run; else the last's result.
        let shown = jobs
            .iter()
            .position(|j| matches!(j.state, JobState::Failed | JobState::Cancelled))
            .unwrap_or(jobs.len() - 1);
        Ok(jobs.swap_remove(shown))
    }

    /// Runs a job and prints its result: the JSON with `--json`, else `line(result)`.
    /// Fails with the job's reason when it left no result.
    pub fn run_and_print(
        &mut self,
        spec: JobSpec,
        json: bool,
        line: impl FnOnce(&serde_json::Value) -> String,
    ) -> anyhow::Result<ExitCode> {
        self.run_all_and_print(vec![NewJob::new(spec)], json, line)
    }

    /// [`Daemon::run_and_print`] for jobs that wait on each other: the last one's result.
    pub fn run_all_and_print(
        &mut self,
        jobs: Vec<NewJob>,
        json: bool,
        line: impl FnOnce(&serde_json::Value) -> String,
    ) -> anyhow::Result<ExitCode> {
        let job = self.run_jobs(jobs, json)?;
        let Some(result) = &job.result else {
            anyhow::bail!(job_failure(&job));
        };
        if json {
            println!("{result}");
        } else {
            println!("{}", line(result));
        }
        Ok(exit_code(&job))
    }

    pub fn submit(&mut self, spec: JobSpec) -> anyhow::Result<JobId> {
        let ids = self.client.submit(vec![NewJob::new(spec)])?;
        ids.first()
            .copied()
            .context("the daemon queued nothing for the job")
    }

    /// Follows one job until it settles, showing progress on stderr.
    pub fn wait(&mut self, id: JobId) -> anyhow::Result<JobRecord> {
        let mut ended = self.wait_all(&[id])?;
        Ok(ended.remove(0))
    }

    /// Follows jobs queued together until each has settled: ended, or waiting on a job that
    /// failed or was cancelled (the daemon keeps such a job queued for a retry of that one,
    /// so it would never end here). Returns them in `ids`' order, as they are then.
    pub fn wait_all(&mut self, ids: &[JobId]) -> anyhow::Result<Vec<JobRecord>> {
        self.client.subscribe((ids.len() == 1).then_some(ids[0]))?;
        let mut jobs: HashMap<JobId, JobRecord> = HashMap::new();
        let mut view = Watcher::new();
        for id in ids {
            let job = self.client.job(*id)?;
            if !job.state.is_final() {
                view.show_job(&job);
            }
            jobs.insert(*id, job);
        }
        while !ids.iter().all(|id| settled(&jobs, *id)) {
            match self.client.next_event(None)? {
                Some(Event::Job { job }) if jobs.contains_key(&job.id) => {
                    if job.state.is_final() {
                        view.end(&job);
                    }
                    jobs.insert(job.id, *job);
                }
                Some(Event::Stopping) => anyhow::bail!(
                    "the daemon stopped; the jobs run again when it starts (`areo jobs watch`)"
                ),
                Some(event) if event.job_id().is_some_and(|id| jobs.contains_key(&id)) => {
                    view.event(&event)
                }
                _ => {}
            }
        }
        // The ended ones whole (their logs and results); the waiting ones as they are.
        ids.iter()
            .map(|id| {
                if jobs[id].state.is_final() {
                    Ok(self.client.job(*id)?)
                } else {
                    Ok(jobs[id].clone())
                }
            })
            .collect()
    }
}

/// Whether a job has ended, or waits on one that failed or was cancelled (directly or
/// through the jobs between them).
fn settled(jobs: &HashMap<JobId, JobRecord>, id: JobId) -> bool {
    let Some(job) = jobs.get(&id) else {
        return true;
    };
    job.state.is_final()
        || job.after.iter().any(|dep| match jobs.get(dep) {
            Some(d) => {
                matches!(d.state, JobState::Failed | JobState::Cancelled)
                    || (!d.state.is_final() && settled(jobs, *dep))
            }
            None => false,
        })
}

/// A downloaded product's image to work on (its science image, else its browse image)
/// and its detached label when it has one, as absolute paths.
pub fn product_image(
    client: &mut Client,
    workspace: &Path,
    pdsid: &str,
) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let files = client.product_files(pdsid)?;
    let here = |kind: FileKind| {
        files
            .iter()
            .filter(move |f| f.kind() == kind && f.state == FileState::Complete)
            .filter_map(|f| f.local_path.as_ref())
            .map(|path| workspace.join(path))
    };
    let Some(image) = here(FileKind::Image).chain(here(FileKind::Browse)).next() else {
        anyhow::bail!(
            "{pdsid} has no downloaded image or browse file: `areo fetch {pdsid} --kind rdr` \
             (or --kind browse) first"
        );
    };
    let label = here(FileKind::Label).next();
    Ok((image, label))
}

/// Why a job did not succeed, in one line.
pub fn job_failure(job: &JobRecord) -> String {
    format!(
        "job {} {}: {}",
        job.id,
        job.state,
        job.error.as_deref().unwrap_or("no reason given")
    )
}

pub fn exit_code(job: &JobRecord) -> ExitCode {
    if job.state == JobState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Progress of watched jobs: bars on a terminal, plain lines otherwise.
pub(super) struct Watcher {
    group: ProgressGroup,
    bars: HashMap<JobId, (String, super::output::CliProgress, u64)>,
    lines: bool,
    last_line: HashMap<JobId, Instant>,
}

impl Watcher {
    pub(super) fn new() -> Self {
        Watcher {
            group: ProgressGroup::new(),
            bars: HashMap::new(),
            lines: !std::io::stderr().is_terminal(),
            last_line: HashMap::new(),
        }
    }

    fn show_job(&mut self, job: &JobRecord) {
        if let Some(progress) = &job.progress {
            self.progress(job.id, &progress.label, progress.done, progress.total);
        }
    }

    fn progress(&mut self, job: JobId, label: &str, done: u64, total: u64) {
        let bytes = label == "total";
        let (shown, bar, at) = self
            .bars
            .entry(job)
            .or_insert_with(|| (String::new(), self.group.add(bytes), 0));
        if shown != label {
            bar.start(&format!("job {job} {label}"), total);
            *shown = label.to_string();
            *at = 0;
        }
        if done > *at {
            bar.advance(done - *at);
            *at = done;
        }
    }

    pub(super) fn event(&mut self, event: &Event) {
        match event {
            Event::Progress {
                job,
                label,
                done,
                total,
            } => self.progress(*job, label, *done, *total),
            Event::Log { job, line } => eprintln!("job {job}: {line}"),
            Event::Job { job } => {
                if self.lines {
                    eprintln!("job {} {}", job.id, job.state);
                }
            }
            Event::Lagged { missed } => {
                if self.lines {
                    eprintln!("({missed} event(s) skipped: this terminal fell behind)");
                }
            }
            Event::Metric {
                job,
                name,
                step,
                value,
            } => {
                let due = self
                    .last_line
                    .get(job)
                    .is_none_or(|at| at.elapsed() >= Duration::from_millis(500));
                if self.lines && due {
                    eprintln!("job {job} {name} step {step}: {value}");
                    self.last_line.insert(*job, Instant::now());
                }
            }
            Event::Stopping => {}
        }
    }

    pub(super) fn end(&mut self, job: &JobRecord) {
        if let Some((_, bar, _)) = self.bars.remove(&job.id) {
            bar.finish();
        }
        if self.lines || job.state != JobState::Succeeded {
            eprintln!(
                "job {} {}{}",
                job.id,
                job.state,
                job.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Start in the background (its own session, output in the workspace's areo.log) and
    /// return once it is listening.
    #[arg(long)]
    detach: bool,
    /// CPU-bound jobs at once (default: the number of cores).
    #[arg(long)]
    cpu_slots: Option<u32>,
    /// Network jobs (searches, fetches) at once.
    #[arg(long, default_value_t = 2)]
    net_slots: u32,
}

pub fn serve(workspace: Option<PathBuf>, args: ServeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let workspace = std::path::absolute(Workspace::locate(workspace)?)?;
    if args.detach {
        let mut extra = vec!["--net-slots".to_string(), args.net_slots.to_string()];
        if let Some(cpu) = args.cpu_slots {
            extra.extend(["--cpu-slots".to_string(), cpu.to_string()]);
        }
        let exe = std::env::current_exe().context("finding the areo executable")?;
        let pid = daemon::spawn_detached(&exe, &workspace, &extra)?;
        if json {
            println!(
                "{}",
                serde_json::json!({"pid": pid, "workspace": workspace, "socket": daemon::socket_path(&workspace)})
            );
        } else {
            println!(
                "areo daemon {pid} serving {} (log: {})",
                workspace.display(),
                workspace.join(daemon::LOG_NAME).display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // A client that goes away mid-write must not kill the daemon.
    // SAFETY: no other thread exists yet, and ignoring SIGPIPE is how Rust programs start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    daemon::serve(ServeOptions {
        workspace,
        cpu_slots: args.cpu_slots,
        net_slots: args.net_slots,
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn stop(workspace: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let workspace = std::path::absolute(Workspace::locate(workspace)?)?;
    let mut client = match Client::connect(&workspace) {
        Ok(client) => client,
        Err(ClientError::NotRunning(_)) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"stopped": false, "running": false})
                );
            } else {
                println!("no daemon is running for {}", workspace.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error.into()),
    };
    let pid = client.daemon_pid();
    client.call(Request::Shutdown)?;
    // The daemon closes the connection once it has stopped its jobs; then the lock is free.
    loop {
        match client.next_event(Some(Duration::from_secs(60))) {
            Ok(Some(_)) => continue,
            Ok(None) => anyhow::bail!("daemon {pid} is still stopping after 60 s"),
            Err(_) => break,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Workspace::open(&workspace).is_err() {
        if Instant::now() > deadline {
            anyhow::bail!(
                "daemon {pid} still holds {} after 60 s",
                workspace.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if json {
        println!("{}", serde_json::json!({"stopped": true, "pid": pid}));
    } else {
        println!("stopped daemon {pid}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(workspace: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let mut daemon = Daemon::connect(workspace)?;
    let status: DaemonStatus = match daemon.client.call(Request::Status)? {
        Response::Status(status) => status,
        other => return Err(unexpected(other).into()),
    };
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        println!("daemon      pid {} (areo {})", status.pid, status.version);
        println!("workspace   {}", status.workspace);
        println!("since       {}", status.started.to_rfc3339());
        println!("slots       {}", status.resources);
        println!("in use      {}", status.in_use);
        let counts: Vec<String> = status
            .jobs
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        println!("jobs        {}", counts.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        #[arg(long)]
        state: Option<JobState>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One job with its log and result.
    Show { id: JobId },
    /// Cancel a queued or running job (jobs after it are cancelled too).
    Cancel {
        id: JobId,
        /// Let a training run finish the epoch it is in and write its checkpoint first
        /// (`areo train --resume RUN` continues it).
        #[arg(long)]
        after_epoch: bool,
    },
    /// Queue a failed, cancelled or interrupted job again.
    Retry { id: JobId },
    /// Follow one job until it ends, or every job until interrupted.
    Watch { id: Option<JobId> },
}

pub fn jobs(
    workspace: Option<PathBuf>,
    command: JobsCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut daemon = Daemon::connect(workspace)?;
    match command {
        JobsCommand::List { state, limit } => {
            let jobs = match daemon.client.call(Request::Jobs {
                state,
                limit: (limit > 0).then_some(limit),
            })? {
                Response::Jobs { jobs } => jobs,
                other => return Err(unexpected(other).into()),
            };
            if json {
                println!("{}", serde_json::to_string(&jobs)?);
            } else {
                print_jobs(&jobs);
            }
        }
        JobsCommand::Show { id } => {
            let job = daemon.client.job(id)?;
            if json {
                println!("{}", serde_json::to_string(&job)?);
            } else {
                print_job(&job);
            }
        }
        JobsCommand::Cancel { id, after_epoch } => {
            if after_epoch {
                daemon.client.call(Request::EndEarly { id })?;
            } else {
                daemon.client.call(Request::Cancel { id })?;
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"cancelled": id, "after_epoch": after_epoch})
                );
            } else if after_epoch {
                println!("job {id}: asked to stop at the end of its epoch");
            } else {
                println!("job {id}: cancel requested");
            }
        }
        JobsCommand::Retry { id } => {
            daemon.client.call(Request::Retry { id })?;
            if json {
                println!("{}", serde_json::json!({"retried": id}));
            } else {
                println!("job {id} queued again");
            }
        }
        JobsCommand::Watch { id: Some(id) } => {
            let job = daemon.wait(id)?;
            if json {
                println!("{}", serde_json::to_string(&job)?);
            } else {
                println!("{}", describe_end(&job));
            }
            return Ok(exit_code(&job));
        }
        JobsCommand::Watch { id: None } => {
            daemon.client.subscribe(None)?;
            let mut view = Watcher::new();
            loop {
                let Some(event) = daemon.client.next_event(None)? else {
                    continue;
                };
                if json {
                    println!("{}", serde_json::to_string(&event)?);
                    continue;
                }
                if let Event::Job { job } = &event {
                    if job.state.is_final() {
                        view.end(job);
                        continue;
                    }
                }
                if event == Event::Stopping {
                    eprintln!("the daemon is stopping");
                    return Ok(ExitCode::SUCCESS);
                }
                view.event(&event);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_end(job: &JobRecord) -> String {
    match job.state {
        JobState::Succeeded => format!("job {} succeeded: {}", job.id, job.spec.describe()),
        JobState::Queued => {
            let after: Vec<String> = job.after.iter().map(u64::to_string).collect();
            format!(
                "job {} is still queued after job {}, which did not succeed: it runs once \
                 that one is retried (`areo jobs retry ID`) and succeeds",
                job.id,
                after.join(", ")
            )
        }
        _ => job_failure(job),
    }
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn print_jobs(jobs: &[JobRecord]) {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            let progress = job.progress.as_ref().map_or("-".into(), |p| {
                if p.total > 0 {
                    format!("{:.0}%", 100.0 * p.done as f64 / p.total as f64)
                } else {
                    format!("{}", p.done)
                }
            });
            vec![
                job.id.to_string(),
                job.state.to_string(),
                job.priority.to_string(),
                job.attempts.to_string(),
                progress,
                time(Some(job.created)),
                job.spec.describe(),
                job.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "STATE", "PRIO", "TRIES", "DONE", "CREATED", "JOB", "ERROR",
        ],
        &rows,
    );
}

fn print_job(job: &JobRecord) {
    let after: Vec<String> = job.after.iter().map(|id| id.to_string()).collect();
    let fields = [
        ("id", job.id.to_string()),
        ("job", job.spec.describe()),
        ("state", job.state.to_string()),
        ("priority", job.priority.to_string()),
        ("after", after.join(", ")),
        ("attempts", job.attempts.to_string()),
        ("created", time(Some(job.created))),
        ("started", time(job.started)),
        ("finished", time(job.finished)),
        (
            "progress",
            job.progress.as_ref().map_or("-".into(), |p| {
                format!("{} {}/{}", p.label, p.done, p.total)
            }),
        ),
        ("error", job.error.clone().unwrap_or_default()),
        ("outputs", job.outputs.join(", ")),
    ];
    for (name, value) in fields {
        println!("{name:>10}  {value}");
    }
    println!(
        "{:>10}  {}",
        "spec",
        serde_json::to_string(&job.spec).expect("specs serialise")
    );
    if let Some(result) = &job.result {
        println!("{:>10}  {result}", "result");
    }
    if !job.log.is_empty() {
        println!();
        for line in &job.log {
            println!("  {line}");
        }
    }
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// A JSON file: `{"steps": [{"name": "...", "job": {"kind": ...}, "after": ["..."],
    /// "priority": 0}]}`. Relative paths in jobs are taken from the file's folder.
    file: PathBuf,
    /// Wait for every step and show progress.
    #[arg(long)]
    wait: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    steps: Vec<PipelineStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineStep {
    name: String,
    job: JobSpec,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    priority: i32,
}

/// Turns a pipeline file into jobs for one submission, dependencies by position.
fn pipeline_jobs(text: &str, base: &Path) -> anyhow::Result<(Vec<String>, Vec<NewJob>)> {
    let file: PipelineFile = serde_json::from_str(text)?;
    let mut names: Vec<String> = Vec::new();
    let mut jobs = Vec::new();
    for step in file.steps {
        if names.contains(&step.name) {
            anyhow::bail!("step {:?} is named twice", step.name);
        }
        let after_new = step
            .after
            .iter()
            .map(|dep| {
                names.iter().position(|n| n == dep).with_context(|| {
                    format!(
                        "step {:?} comes after {dep:?}, which is not an earlier step",
                        step.name
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut spec = step.job;
        spec.resolve_paths(base);
        names.push(step.name);
        jobs.push(NewJob {
            spec,
            priority: step.priority,
            after: Vec::new(),
            after_new,
        });
    }
    if jobs.is_empty() {
        anyhow::bail!("the pipeline has no steps");
    }
    Ok((names, jobs))
}

/// A pipeline file's steps (their names) and jobs, its relative paths taken from its folder
/// (the dashboard's palette queues them too).
pub fn pipeline_plan(args: &PipelineArgs) -> anyhow::Result<(Vec<String>, Vec<NewJob>)> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let base = std::path::absolute(&args.file)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    pipeline_jobs(&text, &base).with_context(|| format!("pipeline {}", args.file.display()))
}

pub fn pipeline(
    workspace: Option<PathBuf>,
    args: PipelineArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (names, jobs) = pipeline_plan(&args)?;
    let mut daemon = Daemon::connect(workspace)?;
    let ids = daemon.client.submit(jobs)?;
    if !args.wait {
        if json {
            let steps: Vec<_> = names
                .iter()
                .zip(&ids)
                .map(|(name, id)| serde_json::json!({"step": name, "job": id}))
                .collect();
            println!("{}", serde_json::json!({ "jobs": steps }));
        } else {
            for (name, id) in names.iter().zip(&ids) {
                println!("job {id}: {name}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let ended = daemon.wait_all(&ids)?;
    if json {
        println!("{}", serde_json::to_string(&ended)?);
    } else {
        for (name, job) in names.iter().zip(&ended) {
            println!("{name}: {}", describe_end(job));
        }
    }
    Ok(if ended.iter().all(|j| j.state == JobState::Succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_steps_become_jobs_with_dependencies_by_position() {
        let text = r#"{"steps": [
            {"name": "import", "job": {"kind": "import", "files": ["replies/a.json"]}},
            {"name": "fetch", "after": ["import"], "priority": 3,
             "job": {"kind": "fetch", "pdsids": ["ESP_013951_1955_RED"], "kinds": ["browse"], "parallel": 2}}
        ]}"#;
        let (names, jobs) = pipeline_jobs(text, Path::new("/data/run")).unwrap();
        assert_eq!(names, ["import", "fetch"]);
        assert_eq!(
            jobs[0].spec,
            JobSpec::Import {
                files: vec![PathBuf::from("/data/run/replies/a.json")]
            }
        );
        assert_eq!(jobs[1].after_new, vec![0]);
        assert_eq!(jobs[1].priority, 3);
    }

    #[test]
    fn the_readme_pipeline_is_a_valid_pipeline() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```json\n").expect("a json block") + 8;
        let end = start + readme[start..].find("```").unwrap();
        let (names, jobs) = pipeline_jobs(&readme[start..end], Path::new("/data")).unwrap();
        assert_eq!(names, ["fetch", "tile"]);
        assert!(matches!(&jobs[1].spec, JobSpec::Tile(t) if t.out == Path::new("/data/chips")));
        assert!(jobs.iter().all(|j| j.spec.validate().is_ok()));
    }

    #[test]
    fn pipelines_with_unknown_steps_or_fields_are_refused() {
        let forward = r#"{"steps": [{"name": "a", "after": ["b"], "job": {"kind": "import", "files": ["x"]}}]}"#;
        let message = format!("{:#}", pipeline_jobs(forward, Path::new("/")).unwrap_err());
        assert!(message.contains("\"b\""), "{message}");
        let typo = r#"{"steps": [{"name": "a", "job": {"kind": "import", "files": ["x"]}, "affter": []}]}"#;
        let message = format!("{:#}", pipeline_jobs(typo, Path::new("/")).unwrap_err());
        assert!(message.contains("affter"), "{message}");
        let kind = r#"{"steps": [{"name": "a", "job": {"kind": "segment"}}]}"#;
        let message = format!("{:#}", pipeline_jobs(kind, Path::new("/")).unwrap_err());
        assert!(message.contains("segment"), "{message}");
    }
}
