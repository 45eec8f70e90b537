//! Running one job: the pipeline step behind each `JobSpec`, with progress, log lines and
//! metrics turned into events, and cancellation checked by the step.
//!
//! CPU-bound steps run on blocking threads (`spawn_blocking`), never on the async workers;
//! network steps run on the runtime and are dropped mid-flight when cancelled (a download
//! keeps its `.part` file and resumes from it next time).

use super::daemon::Shared;
use super::job::{CommandJob, JobId, JobSpec, Probe};
use super::protocol::Event;
use crate::ode::{ClientConfig, OdeClient};
use crate::pipeline::dataset::Split;
use crate::pipeline::evaluate::EvalReport;
use crate::pipeline::fetch::{fetch, Outcome};
use crate::pipeline::import::import_reply_files;
use crate::pipeline::search::search;
use crate::progress::{Progress, Silent};
use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a running job is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled it: it ends `cancelled`.
    Cancel,
    /// The daemon is stopping: it ends `interrupted` and runs again at the next start.
    Shutdown,
    /// Someone asked it to end at its next boundary (a training run: after its epoch, with
    /// its checkpoint): it ends `cancelled`, resumable; a step without boundaries runs on.
    AtBoundary,
}

fn stops_now(stop: Option<Stop>) -> bool {
    matches!(stop, Some(Stop::Cancel | Stop::Shutdown))
}

/// What a job left behind.
#[derive(Debug, Default)]
pub struct Finished {
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    pub outputs: Vec<String>,
}

impl Finished {
    fn failed(error: impl ToString) -> Self {
        Finished {
            error: Some(error.to_string()),
            ..Finished::default()
        }
    }
}

/// Progress events at most this often per job (and always at the end of a step).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The job's side of the daemon: progress, log lines, metrics, and whether to stop.
struct JobContext {
    id: JobId,
    shared: Arc<Shared>,
    stop: watch::Receiver<Option<Stop>>,
    label: Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
    last_sent: Mutex<Option<Instant>>,
}

impl JobContext {
    fn send_progress(&self, force: bool) {
        let mut last = self.last_sent.lock().expect("progress lock");
        if !force && last.is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let label = self.label.lock().expect("progress lock").clone();
        self.shared.set_progress(
            self.id,
            &label,
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
    }

    /// Resolves when the job is asked to stop now.
    async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| stops_now(*s)).await;
    }
}

impl Progress for JobContext {
    fn start(&self, label: &str, total: u64) {
        *self.label.lock().expect("progress lock") = label.to_string();
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.send_progress(true);
    }

    fn advance(&self, units: u64) {
        let done = self.done.fetch_add(units, Ordering::Relaxed) + units;
        self.send_progress(done >= self.total.load(Ordering::Relaxed));
    }

    fn finish(&self) {
        self.send_progress(true);
    }

    fn cancelled(&self) -> bool {
        stops_now(*self.stop.borrow())
    }

    fn stop_at_boundary(&self) -> bool {
        *self.stop.borrow() == Some(Stop::AtBoundary)
    }

    fn metric(&self, name: &str, step: u64, value: f64) {
        self.shared.emit(Event::Metric {
            job: self.id,
            name: name.to_string(),
            step,
            value,
        });
    }

    fn log(&self, line: &str) {
        self.shared.log(self.id, line.to_string());
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    id: JobId,
    spec: JobSpec,
    stop: watch::Receiver<Option<Stop>>,
) -> Finished {
    let context = Arc::new(JobContext {
        id,
        shared,
        stop,
        label: Mutex::new(String::new()),
        done: AtomicU64::new(0),
        total: AtomicU64::new(0),
        last_sent: Mutex::new(None),
    });
    match spec {
        JobSpec::AddLocal(request) => {
            blocking(&context, move |ctx| {
                let root = ctx.shared.workspace.root().to_path_buf();
                match request.run(&ctx.shared.catalog, &root) {
                    Ok(added) => {
                        for a in &added {
                            ctx.log(&format!("{} {}: {} bytes", a.outcome, a.pdsid, a.bytes));
                        }
                        Finished {
                            error: None,
                            outputs: added.iter().map(|a| a.file.display().to_string()).collect(),
                            result: Some(json!({ "added": added })),
                        }
                    }
                    Err(error) => Finished::failed(error),
                }
            })
            .await
        }
        JobSpec::Import { files } => {
            blocking(&context, move |ctx| {
                let mut imported = Vec::new();
                let mut failed = Vec::new();
                for result in import_reply_files(&ctx.shared.catalog, &files, ctx) {
                    match result {
                        Ok(report) => imported.push(report),
                        Err(error) => {
                            ctx.log(&format!("failed: {error}"));
                            failed.push(
                                json!({"file": error.path, "error": error.problem.to_string()}),
                            );
                        }
                    }
                    if ctx.cancelled() {
                        break;
                    }
                }
                Finished {
                    error: (!failed.is_empty())
                        .then(|| format!("{} of {} file(s) failed", failed.len(), files.len())),
                    result: Some(json!({"imported": imported, "failed": failed})),
                    outputs: Vec::new(),
                }
            })
            .await
        }
        JobSpec::Search {
            ode_url,
            query,
            page_size,
            max,
        } => {
            let config = ClientConfig {
                base_url: ode_url,
                ..ClientConfig::default()
            };
            let client = match OdeClient::new(&config) {
                Ok(client) => client,
                Err(error) => return Finished::failed(error),
            };
            let ctx = context.clone();
            let work = async move {
                let mut pdsids = Vec::new();
                let result = search(
                    &client,
                    &query,
                    page_size,
                    max,
                    Some(&ctx.shared.catalog),
                    &*ctx,
                    |page| pdsids.extend(page.into_iter().map(|entry| entry.product.pdsid)),
                )
                .await;
                match result {
                    Ok((summary, stored)) => Finished {
                        error: None,
                        result: Some(
                            json!({"summary": summary, "stored": stored, "pdsids": pdsids}),
                        ),
                        outputs: Vec::new(),
                    },
                    Err(error) => Finished::failed(error),
                }
            };
            until_stopped(&context, work).await
        }
        JobSpec::Fetch {
            pdsids,
            kinds,
            parallel,
        } => {
            let client = match OdeClient::new(&ClientConfig::default()) {
                Ok(client) => client,
                Err(error) => return Finished::failed(error),
            };
            let ctx = context.clone();
            let work = async move {
                let files = || Box::new(Silent) as Box<dyn Progress>;
                let shared = &ctx.shared;
                let result = fetch(
                    &client,
                    &shared.catalog,
                    &shared.workspace,
                    &pdsids,
                    &kinds,
                    parallel,
                    &*ctx,
                    &files,
                )
                .await;
                let outcomes = match result {
                    Ok(outcomes) => outcomes,
                    Err(error) => return Finished::failed(error),
                };
                let mut outputs = Vec::new();
                let mut failed = 0;
                for outcome in &outcomes {
                    match &outcome.outcome {
                        Outcome::Downloaded(done) => {
                            outputs.push(done.path.display().to_string());
                            ctx.log(&format!(
                                "{} {}: {} bytes{}",
                                outcome.pdsid,
                                outcome.name,
                                done.size,
                                if done.resumed_from > 0 {
                                    format!(" (resumed at {})", done.resumed_from)
                                } else {
                                    String::new()
                                }
                            ));
                        }
                        Outcome::AlreadyComplete { path, .. } => {
                            outputs.push(path.display().to_string());
                        }
                        Outcome::Failed { error } => {
                            failed += 1;
                            ctx.log(&format!("{} {}: {error}", outcome.pdsid, outcome.name));
                        }
                    }
                }
                Finished {
                    error: (failed > 0)
                        .then(|| format!("{failed} of {} file(s) failed", outcomes.len())),
                    result: Some(json!(outcomes)),
                    outputs,
                }
            };
            until_stopped(&context, work).await
        }
        JobSpec::Tile(request) => {
            blocking(&context, move |ctx| match request.run(ctx) {
                Ok(manifest) => {
                    ctx.log(&format!(
                        "{} chip(s) of {} px in {}",
                        manifest.chips.len(),
                        manifest.size,
                        request.out.display()
                    ));
                    Finished {
                        error: None,
                        result: Some(json!({
                            "source": manifest.source,
                            "width": manifest.width,
                            "height": manifest.height,
                            "chips": manifest.chips.len(),
                            "manifest": request.out.join("manifest.json"),
                        })),
                        outputs: vec![request.out.display().to_string()],
                    }
                }
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Labels(request) => {
            blocking(&context, move |ctx| match request.run() {
                Ok((summary, added)) => {
                    for line in summary.failure_lines().chain(summary.dropped_lines()) {
                        ctx.log(&line);
                    }
                    let failed = summary.failed.len();
                    Finished {
                        error: (failed > 0).then(|| format!("{failed} file(s) failed")),
                        result: Some(json!({"summary": summary, "classes_added": added})),
                        outputs: vec![request.out().display().to_string()],
                    }
                }
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Dataset(request) => {
            let datasets = context.shared.workspace.datasets_dir();
            blocking(&context, move |ctx| match request.run(&datasets) {
                Ok(record) => {
                    ctx.log(&format!(
                        "dataset {}: {} chip(s), {} left out at split borders",
                        record.name,
                        record.chips.len(),
                        record.dropped
                    ));
                    Finished {
                        error: None,
                        outputs: vec![datasets
                            .join(format!("{}.json", record.name))
                            .display()
                            .to_string()],
                        result: Some(json!({
                            "name": record.name,
                            "train": record.count(Split::Train),
                            "validation": record.count(Split::Validation),
                            "test": record.count(Split::Test),
                            "dropped": record.dropped,
                            "class_pixels": record.class_pixels,
                        })),
                    }
                }
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Train(job) => {
            let root = context.shared.workspace.root().to_path_buf();
            blocking(&context, move |ctx| match job.run(&root, ctx) {
                Ok(record) => Finished {
                    error: None,
                    outputs: vec![root.join("runs").join(&job.run).display().to_string()],
                    result: Some(json!({
                        "run": record.name,
                        "epochs": record.epochs_done,
                        "steps": record.step,
                        "best": record.best,
                    })),
                },
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Infer(job) => {
            let root = context.shared.workspace.root().to_path_buf();
            blocking(&context, move |ctx| match job.run(&root, ctx) {
                Ok(summary) => Finished {
                    error: None,
                    outputs: vec![job.out.display().to_string()],
                    result: Some(serde_json::to_value(&summary).expect("serialises")),
                },
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Eval(request) => {
            let evals = context.shared.workspace.evals_dir();
            blocking(&context, move |ctx| match request.run_and_keep(&evals) {
                Ok(report) => {
                    ctx.log(&format!(
                        "{} pixels scored: accuracy {:.4}, mean IoU {:.4}, mean F1 {:.4}",
                        report.pixel.scored,
                        report.pixel.accuracy,
                        report.pixel.mean_iou,
                        report.pixel.mean_f1
                    ));
                    let name = report.name.clone().unwrap_or_default();
                    Finished {
                        error: None,
                        outputs: vec![EvalReport::path(&evals, &name).display().to_string()],
                        result: Some(serde_json::to_value(&report).expect("serialises")),
                    }
                }
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::EvalDetections(request) => {
            let evals = context.shared.workspace.evals_dir();
            blocking(&context, move |ctx| match request.run_and_keep(&evals) {
                Ok(report) => {
                    let figure = |key: &str| report.metrics.get(key).copied().unwrap_or(-1.0);
                    ctx.log(&format!(
                        "detections scored: AP {:.4}, AP50 {:.4}, AR100 {:.4}",
                        figure("AP"),
                        figure("AP50"),
                        figure("AR100")
                    ));
                    let name = report.name.clone().unwrap_or_default();
                    Finished {
                        error: None,
                        outputs: vec![EvalReport::path(&evals, &name).display().to_string()],
                        result: Some(serde_json::to_value(&report).expect("serialises")),
                    }
                }
                Err(error) => Finished::failed(error),
            })
            .await
        }
        JobSpec::Command(command) => {
            until_stopped(&context, run_command(context.clone(), command)).await
        }
        JobSpec::Probe(probe) => blocking(&context, move |ctx| run_probe(ctx, &probe)).await,
    }
}

/// Runs `areo --json ARGS` in the command's folder: its stderr lines go to the job's log,
/// its JSON on stdout is the result, a non-zero exit fails the job with its last words. Asked
/// to stop, the child is killed (the future is dropped with it).
async fn run_command(ctx: Arc<JobContext>, command: CommandJob) -> Finished {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => return Finished::failed(format!("finding the areo executable: {error}")),
    };
    ctx.start("running", 1);
    let spawned = tokio::process::Command::new(exe)
        .arg("--json")
        .args(&command.args)
        .current_dir(&command.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return Finished::failed(format!(
                "starting areo in {}: {error}",
                command.cwd.display()
            ))
        }
    };
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let log = ctx.clone();
    let last_words = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut last = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            log.log(&line);
            if !line.trim().is_empty() {
                last = line;
            }
        }
        last
    });
    let mut output = String::new();
    let read = stdout.read_to_string(&mut output).await;
    let status = child.wait().await;
    let last = last_words.await.unwrap_or_default();
    ctx.advance(1);
    match (status, read) {
        (Err(error), _) => Finished::failed(format!("running areo: {error}")),
        (Ok(_), Err(error)) => Finished::failed(format!("reading areo's output: {error}")),
        (Ok(status), Ok(_)) if status.success() => Finished {
            error: None,
            result: Some(
                serde_json::from_str(&output)
                    .unwrap_or_else(|_| serde_json::json!({ "stdout": output })),
            ),
            outputs: Vec::new(),
        },
        (Ok(status), Ok(_)) => Finished::failed(if last.is_empty() {
            format!("areo {} ended with {status}", command.args.join(" "))
        } else {
            last.trim_start_matches("error: ").to_string()
        }),
    }
}

/// Runs a CPU-bound step on a blocking thread.
async fn blocking(
    context: &Arc<JobContext>,
    step: impl FnOnce(&JobContext) -> Finished + Send + 'static,
) -> Finished {
    let ctx = context.clone();
    tokio::task::spawn_blocking(move || step(&ctx))
        .await
        .unwrap_or_else(|panic| Finished::failed(format!("the job panicked: {panic}")))
}

/// Runs an async step until it ends or the job is asked to stop (then it is dropped).
async fn until_stopped(
    context: &Arc<JobContext>,
    work: impl std::future::Future<Output = Finished> + Send + 'static,
) -> Finished {
    let work = tokio::spawn(work);
    let abort = work.abort_handle();
    tokio::select! {
        finished = work => finished.unwrap_or_else(|e| Finished::failed(format!("the job panicked: {e}"))),
        _ = context.stopped() => {
            abort.abort();
            Finished::failed("stopped")
        }
    }
}

fn run_probe(ctx: &JobContext, probe: &Probe) -> Finished {
    if let Some(path) = &probe.record_runs {
        let line = format!("job {} ran\n", ctx.id);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            return Finished::failed(format!("{}: {error}", path.display()));
        }
    }
    ctx.start("steps", probe.steps as u64);
    for step in 0..probe.steps {
        if ctx.cancelled() {
            return Finished::failed(format!("stopped at step {step}"));
        }
        if let Some(path) = &probe.fail_unless {
            if !path.exists() {
                let error = format!("{} does not exist", path.display());
                ctx.log(&format!("failing: {error}"));
                return Finished::failed(error);
            }
        }
        if probe.step_ms > 0 {
            std::thread::sleep(Duration::from_millis(probe.step_ms));
        }
        ctx.metric("probe.step", step as u64, step as f64);
        ctx.advance(1);
    }
    ctx.finish();
    Finished {
        error: None,
        result: Some(json!({"steps": probe.steps})),
        outputs: Vec::new(),
    }
}
