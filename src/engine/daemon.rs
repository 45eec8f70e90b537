//! `areo serve`: the process that owns a workspace, keeps its job queue and runs the jobs.
//!
//! One daemon per workspace (the workspace lock guarantees it). It listens on
//! `areo.sock` (mode 0600) and keeps every job in the catalog's `jobs` tree, so a restart
//! after a crash knows what was queued and what was running: running jobs become
//! `interrupted` and are queued again; finished ones stay finished.

use super::job::{artifact_name, JobId, JobRecord, JobSpec, JobState, NewJob, Resources};
use super::protocol::{
    frame_bytes, read_frame_async, CatalogRequest, ClientFrame, DaemonStatus, Event, FrameError,
    GpuReading, Request, Response, ServerFrame, PROTOCOL_VERSION,
};
use super::runner::{self, Finished, Stop};
use super::scheduler::Scheduler;
use crate::catalog::Catalog;
use crate::lineage::{ArtifactKind, Input};
use crate::nn::run::{list_runs, read_metrics, RunRecord};
use crate::nn::DeviceMemory;
use crate::pipeline::dataset::list_datasets;
use crate::pipeline::evaluate::list_reports;
use crate::product::check_plain_name;
use crate::workspace::Workspace;
use anyhow::Context;
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch, Notify};

pub const SOCKET_NAME: &str = "areo.sock";
pub const LOG_NAME: &str = "areo.log";

/// Version of the JSON job records in the catalog.
const JOB_RECORD_VERSION: u16 = 1;
/// Events buffered per subscriber before a slow one starts losing them.
const EVENT_BUFFER: usize = 4096;
/// Frames queued for one client's socket before its producers wait.
const CLIENT_QUEUE: usize = 256;
/// A client that takes longer than this to accept one frame is dropped.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long running jobs get to stop when the daemon shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub fn socket_path(workspace: &Path) -> PathBuf {
    workspace.join(SOCKET_NAME)
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub workspace: PathBuf,
    /// Jobs that need a CPU worker at once (default: the number of cores).
    pub cpu_slots: Option<u32>,
    /// Network jobs (searches, fetches) at once.
    pub net_slots: u32,
}

/// GPUs this machine shows (`/dev/nvidia0`, `/dev/nvidia1`, ...).
fn count_gpus() -> u32 {
    std::fs::read_dir("/dev").map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.strip_prefix("nvidia")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as u32
    })
}

/// How often the GPUs' memory is read for the status (what the dashboard's device choices
/// show); a reading takes nvidia-smi about a tenth of a second.
const GPU_READING_EVERY: Duration = Duration::from_secs(10);

/// Keeps the GPUs' memory readings fresh, from nvidia-smi when it answers (a machine without
/// it, or a driver that does not answer in time, leaves them empty: the status goes on).
async fn read_gpus_now_and_then(shared: Arc<Shared>) {
    loop {
        let readings = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::process::Command::new("nvidia-smi")
                .args([
                    "--query-gpu=index,memory.used,memory.total",
                    "--format=csv,noheader,nounits",
                ])
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let parsed = match readings {
            Ok(Ok(output)) if output.status.success() => {
                parse_gpu_readings(&String::from_utf8_lossy(&output.stdout))
            }
            _ => Vec::new(),
        };
        *shared.gpus.lock().expect("GPU readings") = parsed;
        tokio::time::sleep(GPU_READING_EVERY).await;
    }
}

/// nvidia-smi's `index, memory.used, memory.total` lines (MiB, no units); lines that do not
/// read (a GPU reporting `[N/A]`) are left out.
fn parse_gpu_readings(text: &str) -> Vec<GpuReading> {
    const MIB: u64 = 1 << 20;
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, used, total] = fields.as_slice() else {
                return None;
            };
            Some(GpuReading {
                index: index.parse().ok()?,
                memory: DeviceMemory {
                    used: used.parse::<u64>().ok()? * MIB,
                    total: total.parse::<u64>().ok()? * MIB,
                },
            })
        })
        .collect()
}

/// Runs the daemon in this process until it is stopped (`Shutdown`, SIGTERM, SIGINT, or its
/// socket being removed).
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let workspace = Workspace::open(&options.workspace)?;
    let socket = socket_path(workspace.root());
    if socket.as_os_str().len() >= 100 {
        anyhow::bail!(
            "the socket path {} is too long for a Unix socket (over 100 bytes): use a shorter \
             workspace path",
            socket.display()
        );
    }
    // We hold the workspace lock, so no live daemon owns a socket found here.
    if std::fs::symlink_metadata(&socket).is_ok() {
        tracing::warn!("removing the stale socket {}", socket.display());
        std::fs::remove_file(&socket)
            .with_context(|| format!("removing the stale socket {}", socket.display()))?;
    }
    let catalog = Catalog::open(&workspace.catalog_dir()).with_context(|| {
        format!(
            "opening the catalog of workspace {}",
            workspace.root().display()
        )
    })?;
    let resources = Resources {
        cpu: options
            .cpu_slots
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32)),
        gpu: count_gpus(),
        net: options.net_slots.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("areo-daemon")
        .build()?;
    let result = runtime.block_on(async {
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("listening on {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        let inode = std::fs::metadata(&socket)?.ino();
        let shared = Shared::recover(catalog, workspace, resources)?;
        tracing::info!(
            "areo {} serving {} (pid {}; {resources})",
            env!("CARGO_PKG_VERSION"),
            shared.workspace.root().display(),
            std::process::id()
        );
        run(shared, listener, socket.clone(), inode).await;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The daemon's state, shared by its tasks.
pub(super) struct Shared {
    pub catalog: Catalog,
    pub workspace: Workspace,
    started: chrono::DateTime<Utc>,
    state: Mutex<State>,
    events: broadcast::Sender<Event>,
    /// Something may be ready to start.
    wake: Notify,
    /// Finished jobs wait here until they are on disk; then their events go out.
    unflushed: Mutex<Vec<JobId>>,
    flush_wanted: Notify,
    stopping: watch::Sender<bool>,
    /// The GPUs' memory, refreshed by [`read_gpus_now_and_then`].
    gpus: Mutex<Vec<GpuReading>>,
}

struct State {
    jobs: BTreeMap<JobId, JobRecord>,
    next_id: JobId,
    scheduler: Scheduler,
    running: HashMap<JobId, watch::Sender<Option<Stop>>>,
}

fn encode(record: &JobRecord) -> Vec<u8> {
    let mut bytes = JOB_RECORD_VERSION.to_be_bytes().to_vec();
    serde_json::to_writer(&mut bytes, record).expect("job records serialise");
    bytes
}

fn decode(id: JobId, bytes: &[u8]) -> anyhow::Result<JobRecord> {
    let Some((version, json)) = bytes.split_first_chunk::<2>() else {
        anyhow::bail!("job record {id} is {} byte(s), too short", bytes.len());
    };
    let version = u16::from_be_bytes(*version);
    if version != JOB_RECORD_VERSION {
        anyhow::bail!(
            "job record {id} has version {version}; this build reads {JOB_RECORD_VERSION}"
        );
    }
    serde_json::from_slice(json).with_context(|| format!("job record {id} is unreadable"))
}

impl Shared {
    /// Loads the stored jobs; those that were running when the last daemon ended (a crash,
    /// kill -9, or a stop that outlived the grace period) are marked interrupted and queued
    /// again.
    fn recover(
        catalog: Catalog,
        workspace: Workspace,
        resources: Resources,
    ) -> anyhow::Result<Arc<Self>> {
        let mut jobs = BTreeMap::new();
        for (id, bytes) in catalog.jobs()? {
            jobs.insert(id, decode(id, &bytes)?);
        }
        let mut changed = Vec::new();
        for job in jobs.values_mut() {
            if job.state == JobState::Running {
                job.state = JobState::Interrupted;
                job.push_log(format!(
                    "{}: interrupted: the daemon ended while the job ran",
                    Utc::now().to_rfc3339()
                ));
            }
            if job.state == JobState::Interrupted {
                job.state = JobState::Queued;
                job.progress = None;
                job.push_log(format!(
                    "{}: queued again by the restarted daemon",
                    Utc::now().to_rfc3339()
                ));
                tracing::info!("job {} ({}) queued again", job.id, job.spec.describe());
                changed.push((job.id, encode(job)));
            }
        }
        catalog.put_jobs(&changed)?;
        catalog.flush()?;
        let mut scheduler = Scheduler::new(resources);
        for job in jobs.values().filter(|j| j.state == JobState::Queued) {
            scheduler.enqueue(job.id, job.priority, job.spec.needs(), &job.after, |dep| {
                jobs.get(&dep).map(|d| d.state)
            });
        }
        let next_id = jobs.keys().next_back().map_or(1, |last| last + 1);
        Ok(Arc::new(Shared {
            catalog,
            workspace,
            started: Utc::now(),
            state: Mutex::new(State {
                jobs,
                next_id,
                scheduler,
                running: HashMap::new(),
            }),
            events: broadcast::channel(EVENT_BUFFER).0,
            wake: Notify::new(),
            unflushed: Mutex::new(Vec::new()),
            flush_wanted: Notify::new(),
            stopping: watch::channel(false).0,
            gpus: Mutex::new(Vec::new()),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("daemon state lock")
    }

    pub fn emit(&self, event: Event) {
        // No subscribers is fine: events are for whoever is watching.
        let _ = self.events.send(event);
    }

    /// Stores job records and flushes them to disk: these are state changes (queued,
    /// started, ended), and one lost to a kill -9 within sled's flush interval would make a
    /// finished job run again or an interrupted one restart without counting the attempt.
    fn store(&self, records: &[&JobRecord]) {
        let encoded: Vec<_> = records.iter().map(|r| (r.id, encode(r))).collect();
        if let Err(error) = self
            .catalog
            .put_jobs(&encoded)
            .and_then(|()| self.catalog.flush())
        {
            tracing::error!("storing job records: {error}");
        }
    }

    /// Updates a running job's progress (kept in memory; stored when the job ends).
    pub fn set_progress(&self, id: JobId, label: &str, done: u64, total: u64) {
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            let progress = job.progress.get_or_insert_with(Default::default);
            if progress.label != label {
                progress.label = label.to_string();
            }
            progress.done = done;
            progress.total = total;
        }
        self.emit(Event::Progress {
            job: id,
            label: label.to_string(),
            done,
            total,
        });
    }

    pub fn log(&self, id: JobId, line: String) {
        tracing::info!("job {id}: {line}");
        if let Some(job) = self.lock().jobs.get_mut(&id) {
            job.push_log(line.clone());
        }
        self.emit(Event::Log { job: id, line });
    }

    fn submit(&self, new_jobs: Vec<NewJob>) -> Result<Vec<JobRecord>, String> {
        if new_jobs.is_empty() {
            return Err("nothing to submit".into());
        }
        let mut state = self.lock();
        let first_id = state.next_id;
        let mut records = Vec::with_capacity(new_jobs.len());
        for (position, new) in new_jobs.iter().enumerate() {
            let what = format!(
                "job {} of the submission ({})",
                position + 1,
                new.spec.kind()
            );
            new.spec.validate().map_err(|e| format!("{what}: {e}"))?;
            let needs = new.spec.needs();
            if !state.scheduler.can_ever_run(needs) {
                return Err(format!(
                    "{what} needs {needs}, more than this daemon has ({})",
                    state.scheduler.total()
                ));
            }
            let mut after = Vec::new();
            for dep in &new.after {
                if !state.jobs.contains_key(dep) {
                    return Err(format!(
                        "{what} comes after job {dep}, which does not exist"
                    ));
                }
                after.push(*dep);
            }
            for &index in &new.after_new {
                if index >= position {
                    return Err(format!(
                        "{what} comes after job {} of the submission, which is not before it",
                        index + 1
                    ));
                }
                after.push(first_id + index as JobId);
            }
            records.push(JobRecord::new(first_id + position as JobId, new, after));
        }
        state.next_id += records.len() as JobId;
        let refs: Vec<&JobRecord> = records.iter().collect();
        self.store(&refs);
        for record in &records {
            state.jobs.insert(record.id, record.clone());
        }
        Ok(records)
    }

    /// Queues freshly stored jobs (after they are on disk) and announces them.
    fn enqueue(&self, records: &[JobRecord]) {
        {
            let mut state = self.lock();
            let State {
                jobs, scheduler, ..
            } = &mut *state;
            for record in records {
                scheduler.enqueue(
                    record.id,
                    record.priority,
                    record.spec.needs(),
                    &record.after,
                    |dep| jobs.get(&dep).map(|d| d.state),
                );
            }
        }
        for record in records {
            self.emit(Event::Job {
                job: Box::new(record.summary()),
            });
        }
        self.wake.notify_one();
    }

    /// Starts every ready job that fits, each on its own task.
    fn start_ready(self: &Arc<Self>) {
        let mut starting = Vec::new();
        {
            let mut state = self.lock();
            let State {
                jobs,
                scheduler,
                running,
                ..
            } = &mut *state;
            for id in scheduler.start_next() {
                let job = jobs.get_mut(&id).expect("scheduled jobs exist");
                job.state = JobState::Running;
                job.started = Some(Utc::now());
                job.finished = None;
                job.attempts += 1;
                let (stop, stop_rx) = watch::channel(None);
                running.insert(id, stop);
                starting.push((job.clone(), stop_rx));
            }
            let refs: Vec<&JobRecord> = starting.iter().map(|(job, _)| job).collect();
            self.store(&refs);
        }
        for (job, stop_rx) in starting {
            tracing::info!(
                "job {} started (attempt {}): {}",
                job.id,
                job.attempts,
                job.spec.describe()
            );
            self.emit(Event::Job {
                job: Box::new(job.summary()),
            });
            let shared = self.clone();
            tokio::spawn(async move {
                let finished = runner::run(shared.clone(), job.id, job.spec, stop_rx).await;
                shared.finish(job.id, finished);
            });
        }
    }

    /// Records how a job ended and lets its dependents move.
    fn finish(&self, id: JobId, finished: Finished) {
        let mut cancelled_dependents = Vec::new();
        {
            let mut state = self.lock();
            let stop = state.running.remove(&id).and_then(|s| *s.borrow());
            let Some(job) = state.jobs.get_mut(&id) else {
                return;
            };
            job.state = match (stop, &finished.error) {
                (Some(Stop::Shutdown), _) => JobState::Interrupted,
                (Some(Stop::Cancel), _) => JobState::Cancelled,
                // Ended early at a boundary, as asked (a step without one just finished).
                (Some(Stop::AtBoundary), Some(_)) => JobState::Cancelled,
                (None | Some(Stop::AtBoundary), None) => JobState::Succeeded,
                (None, Some(_)) => JobState::Failed,
            };
            job.finished = Some(Utc::now());
            job.error = match (job.state, stop) {
                (JobState::Cancelled, Some(Stop::AtBoundary)) => finished.error,
                (JobState::Cancelled, _) => Some("cancelled".into()),
                (JobState::Interrupted, _) => Some("interrupted: the daemon stopped".into()),
                _ => finished.error,
            };
            job.result = finished.result;
            job.outputs = finished.outputs;
            let needs = job.spec.needs();
            let final_state = job.state;
            tracing::info!(
                "job {id} {final_state}{}",
                job.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            let record = job.clone();
            state.scheduler.release(needs);
            self.store(&[&record]);
            if final_state == JobState::Succeeded {
                self.record_artifact(&record);
            }
            if final_state != JobState::Interrupted {
                cancelled_dependents = self.settle(&mut state, id, final_state);
            }
        }
        self.unflushed
            .lock()
            .expect("flush list")
            .extend(std::iter::once(id).chain(cancelled_dependents));
        self.flush_wanted.notify_one();
        self.wake.notify_one();
    }

    /// Keeps what a succeeded job made in the catalog's lineage (before its "finished"
    /// event, which waits for the next flush).
    fn record_artifact(&self, job: &JobRecord) {
        let root = self.workspace.root();
        let Some(mut artifact) = job.spec.artifact(root, job.id, job.result.as_ref()) else {
            return;
        };
        // A file inside a recorded tile set or prediction folder (a predicted mask being
        // scored) names that artefact instead, so the chain is unbroken.
        for input in &mut artifact.inputs {
            let Input::File(path) = input else { continue };
            let owner = path
                .ancestors()
                .skip(1)
                .take_while(|folder| folder.starts_with(root) && *folder != root)
                .flat_map(|folder| {
                    let name = artifact_name(folder, root);
                    [ArtifactKind::Prediction, ArtifactKind::TileSet]
                        .map(|kind| (kind, name.clone()))
                })
                .find(|(kind, name)| matches!(self.catalog.artifact(*kind, name), Ok(Some(_))));
            if let Some((kind, name)) = owner {
                *input = Input::Artifact(kind, name);
            }
        }
        if let Err(error) = self.catalog.put_artifact(&artifact) {
            tracing::error!(
                "job {}: recording {} {}: {error}",
                job.id,
                artifact.kind,
                artifact.name
            );
        }
    }

    /// Tells the scheduler a job settled; cancels (transitively) queued jobs that can no
    /// longer run. Returns those.
    fn settle(&self, state: &mut State, id: JobId, settled: JobState) -> Vec<JobId> {
        let mut cancelled = Vec::new();
        let mut todo = vec![(id, settled)];
        while let Some((id, settled)) = todo.pop() {
            for (dependent, dependency) in state.scheduler.settled(id, settled).doomed {
                if let Some(job) = state.jobs.get_mut(&dependent) {
                    job.state = JobState::Cancelled;
                    job.finished = Some(Utc::now());
                    job.error = Some(format!("job {dependency} it comes after was cancelled"));
                    let record = job.clone();
                    self.store(&[&record]);
                    cancelled.push(dependent);
                    todo.push((dependent, JobState::Cancelled));
                }
            }
        }
        cancelled
    }

    fn cancel(&self, id: JobId) -> Result<(), String> {
        let mut cancelled = Vec::new();
        {
            let mut state = self.lock();
            let job_state = state
                .jobs
                .get(&id)
                .map(|j| j.state)
                .ok_or_else(|| format!("no job {id}"))?;
            match job_state {
                JobState::Running => {
                    if let Some(stop) = state.running.get(&id) {
                        stop.send_replace(Some(Stop::Cancel));
                    }
                    return Ok(());
                }
                JobState::Queued | JobState::Interrupted => {
                    state.scheduler.remove(id);
                    let job = state.jobs.get_mut(&id).expect("checked above");
                    job.state = JobState::Cancelled;
                    job.finished = Some(Utc::now());
                    job.error = Some("cancelled before it started".into());
                    let record = job.clone();
                    self.store(&[&record]);
                    cancelled.push(id);
                    cancelled.extend(self.settle(&mut state, id, JobState::Cancelled));
                }
                done => return Err(format!("job {id} already {done}")),
            }
        }
        self.unflushed.lock().expect("flush list").extend(cancelled);
        self.flush_wanted.notify_one();
        Ok(())
    }

    fn end_early(&self, id: JobId) -> Result<(), String> {
        {
            let state = self.lock();
            let job = state.jobs.get(&id).ok_or_else(|| format!("no job {id}"))?;
            match job.state {
                JobState::Running => {
                    if let Some(stop) = state.running.get(&id) {
                        // A cancel or shutdown already asked for stays as it is.
                        stop.send_if_modified(|stop| {
                            let ask = stop.is_none();
                            if ask {
                                *stop = Some(Stop::AtBoundary);
                            }
                            ask
                        });
                    }
                    return Ok(());
                }
                JobState::Queued | JobState::Interrupted => {}
                done => return Err(format!("job {id} already {done}")),
            }
        }
        self.cancel(id)
    }

    /// Removes `runs/NAME` unless a job that has not ended trains it.
    fn delete_run(&self, name: &str) -> Result<(), String> {
        check_plain_name("run name", name).map_err(|e| e.to_string())?;
        let state = self.lock();
        if let Some(job) = state.jobs.values().find(|job| {
            !job.state.is_final() && matches!(&job.spec, JobSpec::Train(train) if train.run == name)
        }) {
            return Err(format!("job {} trains run {name}: cancel it first", job.id));
        }
        let dir = self.workspace.root().join("runs").join(name);
        if !dir.join("run.json").exists() {
            return Err(format!("no run {name}"));
        }
        // Held under the lock, so no training job for it starts meanwhile.
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
        tracing::info!("deleted run {name}");
        Ok(())
    }

    fn retry(&self, id: JobId) -> Result<JobRecord, String> {
        let mut state = self.lock();
        let State {
            jobs, scheduler, ..
        } = &mut *state;
        let job = jobs.get(&id).ok_or_else(|| format!("no job {id}"))?;
        match job.state {
            JobState::Failed | JobState::Cancelled | JobState::Interrupted => {}
            other => {
                return Err(format!(
                "job {id} is {other}; only failed, cancelled or interrupted jobs can be retried"
            ))
            }
        }
        if let Some(dead) = job.after.iter().find(|dep| {
            jobs.get(dep)
                .is_some_and(|d| d.state == JobState::Cancelled)
        }) {
            return Err(format!(
                "job {id} comes after job {dead}, which was cancelled: retry job {dead} first"
            ));
        }
        let job = jobs.get_mut(&id).expect("checked above");
        job.state = JobState::Queued;
        job.error = None;
        job.result = None;
        job.progress = None;
        job.finished = None;
        job.push_log(format!("{}: retried", Utc::now().to_rfc3339()));
        let record = job.clone();
        scheduler.enqueue(
            id,
            record.priority,
            record.spec.needs(),
            &record.after,
            |dep| jobs.get(&dep).map(|d| d.state),
        );
        self.store(&[&record]);
        Ok(record)
    }

    fn status(&self) -> DaemonStatus {
        let state = self.lock();
        let mut jobs = BTreeMap::new();
        for job in state.jobs.values() {
            *jobs.entry(job.state).or_insert(0) += 1;
        }
        DaemonStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            workspace: self.workspace.root().display().to_string(),
            started: self.started,
            resources: state.scheduler.total(),
            in_use: state.scheduler.in_use(),
            jobs,
            gpus: self.gpus.lock().expect("GPU readings").clone(),
        }
    }

    fn request_stop(&self) {
        self.stopping.send_replace(true);
    }
}

async fn run(shared: Arc<Shared>, listener: UnixListener, socket: PathBuf, inode: u64) {
    tokio::spawn(schedule(shared.clone()));
    tokio::spawn(flush_finished(shared.clone()));
    tokio::spawn(watch_socket(shared.clone(), socket.clone(), inode));
    if shared.lock().scheduler.total().gpu > 0 {
        tokio::spawn(read_gpus_now_and_then(shared.clone()));
    }
    let mut stopping = shared.stopping.subscribe();
    // One clone per connection: the count says how many are still open.
    let connections = Arc::new(());
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let open = connections.clone();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        serve_client(shared, stream).await;
                        drop(open);
                    });
                }
                Err(error) => tracing::warn!("accepting a client: {error}"),
            },
            _ = stopping.wait_for(|stop| *stop) => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
        }
    }
    tracing::info!("stopping");
    shared.request_stop();
    shared.emit(Event::Stopping);
    drop(listener);
    let stops: Vec<_> = shared.lock().running.values().cloned().collect();
    for stop in &stops {
        stop.send_replace(Some(Stop::Shutdown));
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !shared.lock().running.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        // Jobs that did not stop in time are left `running` on disk: the next start
        // recovers them as interrupted.
        let state = shared.lock();
        for id in state.running.keys() {
            tracing::warn!("job {id} did not stop within {SHUTDOWN_GRACE:?}");
        }
    }
    if let Err(error) = shared.catalog.flush() {
        tracing::error!("flushing the catalog: {error}");
    }
    // Let connections deliver their last replies (the one to `Shutdown` among them).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&connections) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if std::fs::metadata(&socket).is_ok_and(|m| m.ino() == inode) {
        let _ = std::fs::remove_file(&socket);
    }
    tracing::info!("stopped");
}

async fn schedule(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.subscribe();
    loop {
        if *stopping.borrow() {
            return;
        }
        shared.start_ready();
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
    }
}

/// Makes finished jobs durable in groups (one fsync for all that ended meanwhile), then
/// announces them, so a client never hears "succeeded" for a job a crash could re-run.
async fn flush_finished(shared: Arc<Shared>) {
    loop {
        shared.flush_wanted.notified().await;
        let ids = std::mem::take(&mut *shared.unflushed.lock().expect("flush list"));
        if ids.is_empty() {
            continue;
        }
        let catalog = shared.catalog.clone();
        match tokio::task::spawn_blocking(move || catalog.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!("flushing job records: {error}"),
            Err(error) => tracing::error!("flushing job records: {error}"),
        }
        let records: Vec<JobRecord> = {
            let state = shared.lock();
            ids.iter()
                .filter_map(|id| state.jobs.get(id).map(JobRecord::summary))
                .collect()
        };
        for job in records {
            shared.emit(Event::Job { job: Box::new(job) });
        }
    }
}

/// Stops the daemon when its socket is removed or replaced: nobody can reach it any more
/// (its workspace was deleted, or someone cleaned up by hand).
async fn watch_socket(shared: Arc<Shared>, socket: PathBuf, inode: u64) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !std::fs::metadata(&socket).is_ok_and(|m| m.ino() == inode) {
            tracing::warn!("{} was removed; stopping", socket.display());
            shared.request_stop();
            return;
        }
    }
}

/// One client connection: a reader that answers requests in order and a writer task that
/// owns the socket's write half, fed by a bounded queue. Events reach the writer through
/// the client's own broadcast receiver, so a slow client only ever loses its own events.
async fn serve_client(shared: Arc<Shared>, stream: UnixStream) {
    let (mut reader, writer) = stream.into_split();
    let (frames, mut outgoing) = mpsc::channel::<ServerFrame>(CLIENT_QUEUE);
    let writer_task = tokio::spawn(async move {
        // Frames queued together go out in one write.
        let mut writer = tokio::io::BufWriter::new(writer);
        while let Some(frame) = outgoing.recv().await {
            let batch = async {
                writer.write_all(&frame_bytes(&frame)).await?;
                while let Ok(frame) = outgoing.try_recv() {
                    writer.write_all(&frame_bytes(&frame)).await?;
                }
                writer.flush().await
            };
            match tokio::time::timeout(CLIENT_WRITE_TIMEOUT, batch).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
    });
    let reply = |id: u64, response: Response| ServerFrame::Reply { id, response };
    let mut greeted = false;
    let mut subscribed = false;
    let mut stopping = shared.stopping.subscribe();
    loop {
        let body = tokio::select! {
            body = read_frame_async(&mut reader) => body,
            _ = stopping.wait_for(|stop| *stop) => break,
        };
        let body = match body {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(error @ FrameError::TooLarge(_)) => {
                // The stream cannot be resynchronised after an unread frame.
                let _ = frames
                    .send(reply(0, error_response(error.to_string())))
                    .await;
                break;
            }
            Err(_) => break,
        };
        let frame: ClientFrame = match serde_json::from_slice(&body) {
            Ok(frame) => frame,
            Err(error) => {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                    .unwrap_or(0);
                let response = error_response(format!("malformed or unknown request: {error}"));
                if frames.send(reply(id, response)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if !greeted {
            let response = match frame.request {
                Request::Hello { protocol, .. } if protocol == PROTOCOL_VERSION => {
                    greeted = true;
                    Response::Welcome {
                        protocol,
                        version: env!("CARGO_PKG_VERSION").into(),
                        pid: std::process::id(),
                    }
                }
                Request::Hello { protocol, .. } => error_response(format!(
                    "this daemon speaks protocol {PROTOCOL_VERSION}, the client {protocol}: \
                     stop the daemon (`areo stop`) and use one version of areo"
                )),
                _ => error_response("say hello first".into()),
            };
            let refused = !greeted;
            if frames.send(reply(frame.id, response)).await.is_err() || refused {
                break;
            }
            continue;
        }
        let subscribe = match &frame.request {
            Request::Subscribe { job } => Some(*job),
            _ => None,
        };
        if subscribe.is_some() && subscribed {
            // A second stream on one connection would deliver every event twice.
            let refusal = error_response("this connection is already subscribed".into());
            if frames.send(reply(frame.id, refusal)).await.is_err() {
                break;
            }
            continue;
        }
        subscribed |= subscribe.is_some();
        let shutdown = frame.request == Request::Shutdown;
        // Subscribe before replying, so no event after the reply is missed.
        let receiver = subscribe.map(|_| shared.events.subscribe());
        let response = handle(&shared, frame.request).await;
        if frames.send(reply(frame.id, response)).await.is_err() {
            break;
        }
        if let (Some(filter), Some(receiver)) = (subscribe, receiver) {
            tokio::spawn(forward_events(receiver, filter, frames.clone()));
        }
        if shutdown {
            shared.request_stop();
        }
    }
    drop(frames);
    let _ = writer_task.await;
}

async fn forward_events(
    mut receiver: broadcast::Receiver<Event>,
    filter: Option<JobId>,
    frames: mpsc::Sender<ServerFrame>,
) {
    loop {
        let event = match receiver.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => Event::Lagged { missed },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let wanted = match (filter, event.job_id()) {
            (Some(want), Some(id)) => want == id,
            _ => true,
        };
        if wanted {
            let stopping = event == Event::Stopping;
            if frames.send(ServerFrame::Event { event }).await.is_err() || stopping {
                return;
            }
        }
    }
}

fn error_response(message: String) -> Response {
    Response::Error { message }
}

async fn handle(shared: &Arc<Shared>, request: Request) -> Response {
    let result: Result<Response, String> = match request {
        Request::Hello { .. } => Err("already greeted".into()),
        Request::Status => Ok(Response::Status(shared.status())),
        Request::Submit { jobs } => submit(shared, jobs).await,
        Request::Jobs { state, limit } => {
            let state_filter = state;
            let jobs: Vec<JobRecord> = {
                let state = shared.lock();
                state
                    .jobs
                    .values()
                    .rev()
                    .filter(|j| state_filter.is_none_or(|s| j.state == s))
                    .take(limit.unwrap_or(usize::MAX))
                    .map(JobRecord::summary)
                    .collect()
            };
            Ok(Response::Jobs { jobs })
        }
        Request::Job { id } => shared
            .lock()
            .jobs
            .get(&id)
            .map(|job| Response::Job {
                job: Box::new(job.clone()),
            })
            .ok_or_else(|| format!("no job {id}")),
        Request::Cancel { id } => shared.cancel(id).map(|()| Response::Done),
        Request::EndEarly { id } => shared.end_early(id).map(|()| Response::Done),
        Request::DeleteRun { name } => shared.delete_run(&name).map(|()| Response::Done),
        Request::Retry { id } => match shared.retry(id) {
            Ok(record) => {
                flush(shared).await;
                shared.emit(Event::Job {
                    job: Box::new(record.summary()),
                });
                shared.wake.notify_one();
                Ok(Response::Done)
            }
            Err(e) => Err(e),
        },
        Request::Subscribe { .. } | Request::Shutdown => Ok(Response::Done),
        Request::Catalog { query } => {
            let catalog = shared.catalog.clone();
            tokio::task::spawn_blocking(move || catalog_request(&catalog, query))
                .await
                .unwrap_or_else(|e| Err(format!("catalog request failed: {e}")))
        }
        request @ (Request::Runs
        | Request::Run { .. }
        | Request::Evals
        | Request::Datasets
        | Request::DaemonLog { .. }) => {
            let root = shared.workspace.root().to_path_buf();
            tokio::task::spawn_blocking(move || workspace_request(&root, request))
                .await
                .unwrap_or_else(|e| Err(format!("reading the workspace failed: {e}")))
        }
    };
    result.unwrap_or_else(error_response)
}

async fn flush(shared: &Shared) {
    let catalog = shared.catalog.clone();
    match tokio::task::spawn_blocking(move || catalog.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!("flushing the catalog: {error}"),
        Err(error) => tracing::error!("flushing the catalog: {error}"),
    }
}

async fn submit(shared: &Arc<Shared>, jobs: Vec<NewJob>) -> Result<Response, String> {
    let records = shared.submit(jobs)?;
    // On disk before anyone hears of them.
    flush(shared).await;
    shared.enqueue(&records);
    for record in &records {
        tracing::info!("job {} queued: {}", record.id, record.spec.describe());
    }
    Ok(Response::Submitted {
        ids: records.iter().map(|r| r.id).collect(),
    })
}

/// Requests answered from the workspace's files: runs, evaluations, the log.
fn workspace_request(root: &Path, request: Request) -> Result<Response, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match request {
        Request::Runs => Ok(Response::Runs {
            runs: list_runs(&root.join("runs")).map_err(|e| text(&e))?,
        }),
        Request::Run { name } => {
            check_plain_name("run name", &name).map_err(|e| text(&e))?;
            let dir = root.join("runs").join(&name);
            if !dir.join("run.json").exists() {
                return Err(format!("no run {name}"));
            }
            Ok(Response::Run {
                run: Box::new(RunRecord::read(&dir).map_err(|e| text(&e))?),
                metrics: read_metrics(&dir).map_err(|e| text(&e))?,
            })
        }
        Request::Evals => Ok(Response::Evals {
            reports: list_reports(&root.join("evals")).map_err(|e| text(&e))?,
        }),
        Request::Datasets => Ok(Response::Datasets {
            datasets: list_datasets(&root.join("datasets")).map_err(|e| text(&e))?,
        }),
        Request::DaemonLog { lines } => Ok(Response::LogLines {
            lines: log_tail(&root.join(LOG_NAME), lines).map_err(|e| text(&e))?,
        }),
        other => Err(format!("not a workspace request: {other:?}")),
    }
}

/// The last `count` lines of a log, reading only its end.
fn log_tail(path: &Path, count: usize) -> std::io::Result<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    // Lines are short: 256 bytes a line is plenty, and a log never needs reading whole.
    let window = (count as u64 * 256).min(len);
    file.seek(SeekFrom::Start(len - window))?;
    let mut bytes = Vec::with_capacity(window as usize);
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if window < len && !lines.is_empty() {
        lines.remove(0); // it began mid-line
    }
    let skip = lines.len().saturating_sub(count);
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

fn catalog_request(catalog: &Catalog, request: CatalogRequest) -> Result<Response, String> {
    let text = |e: crate::catalog::CatalogError| e.to_string();
    match request {
        CatalogRequest::List { query } => Ok(Response::Rows {
            rows: catalog.query(&query).map_err(text)?,
        }),
        CatalogRequest::Rows { pdsids } => {
            let mut rows = Vec::with_capacity(pdsids.len());
            for pdsid in pdsids {
                if let Some(product) = catalog.product(&pdsid).map_err(text)? {
                    rows.push(catalog.row(product).map_err(text)?);
                }
            }
            Ok(Response::Rows { rows })
        }
        CatalogRequest::Show { pdsid } => {
            let product = catalog
                .product(&pdsid.to_ascii_uppercase())
                .map_err(text)?
                .ok_or_else(|| format!("no product {pdsid} in the catalog"))?;
            let files = catalog.files(&product.pdsid).map_err(text)?;
            let made = catalog
                .made_from(&Input::Product(product.pdsid.clone()))
                .map_err(text)?;
            let row = catalog.row(product).map_err(text)?;
            Ok(Response::Product {
                row: Box::new(row),
                files,
                made,
            })
        }
        CatalogRequest::Stats => Ok(Response::Stats {
            stats: catalog.stats().map_err(text)?,
        }),
        CatalogRequest::Check => Ok(Response::Problems {
            problems: catalog.verify().map_err(text)?,
        }),
        CatalogRequest::Lineage { kind, made_from } => {
            let mut artifacts = match &made_from {
                Some(input) => catalog.made_from(input).map_err(text)?,
                None => catalog.artifacts(kind).map_err(text)?,
            };
            artifacts.retain(|a| kind.is_none_or(|k| a.kind == k));
            Ok(Response::Artifacts { artifacts })
        }
    }
}

/// Starts `exe serve` for `workspace` as a detached process (its own session, output to
/// `areo.log`) and waits until it answers on its socket. Returns its pid.
pub fn spawn_detached(exe: &Path, workspace: &Path, extra_args: &[String]) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(workspace)
        .with_context(|| format!("cannot use {} as a workspace", workspace.display()))?;
    let log_path = workspace.join(LOG_NAME);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log_start = log.metadata()?.len();
    let mut command = std::process::Command::new(exe);
    command
        .arg("--workspace")
        .arg(workspace)
        .arg("serve")
        .args(extra_args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if std::env::var_os("AREO_LOG").is_none() {
        command.env("AREO_LOG", "info");
    }
    // Its own session: closing the terminal (SSH dropping) sends it no SIGHUP.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {} serve", exe.display()))?;
    let socket = socket_path(workspace);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait()? {
            let mut text = std::fs::read(&log_path).unwrap_or_default();
            text.drain(..(log_start as usize).min(text.len()));
            let text = String::from_utf8_lossy(&text);
            let last: Vec<&str> = text.lines().rev().take(5).collect();
            let last: Vec<&str> = last.into_iter().rev().collect();
            anyhow::bail!(
                "the daemon exited ({status}) before it was ready: {}",
                last.join(" / ")
            );
        }
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(child.id());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the daemon did not open {} within 30 s; see {}",
                socket.display(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_readings_come_from_nvidia_smi_lines_and_skip_what_does_not_read() {
        let text = "0, 1234, 81559\n1, [N/A], 81559\n2,0,40960\nno gpu here\n";
        let memory = |used: u64, total: u64| DeviceMemory {
            used: used << 20,
            total: total << 20,
        };
        assert_eq!(
            parse_gpu_readings(text),
            [
                GpuReading {
                    index: 0,
                    memory: memory(1234, 81559)
                },
                GpuReading {
                    index: 2,
                    memory: memory(0, 40960)
                },
            ]
        );
        assert!(parse_gpu_readings("").is_empty());
    }
}
