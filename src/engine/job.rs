//! Jobs: what to run (`JobSpec`), what it needs (`Resources`), and everything known about
//! one run of it (`JobRecord`), as stored in the catalog and sent to clients.

use crate::lineage::{Artifact, ArtifactKind, Input};
use crate::ode::{OdeQuery, Selector};
use crate::pipeline::dataset::DatasetRequest;
use crate::pipeline::detections::DetectionRequest;
use crate::pipeline::evaluate::EvalRequest;
use crate::pipeline::fetch::FetchKind;
use crate::pipeline::labels::{LabelOutput, LabelRequest};
use crate::pipeline::local::AddLocal;
use crate::pipeline::tile::TileRequest;
use crate::pipeline::train::{InferJob, TrainJob};
use crate::product::UtcTime;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub type JobId = u64;

/// Where a job is in its life. `Interrupted` means the daemon stopped (or died) while the job
/// ran; such jobs are queued again when the daemon starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    /// No more will happen to the job unless someone retries it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!(
                    "unknown job state {text:?}: expected queued, running, succeeded, failed, \
                     cancelled or interrupted"
                )
            })
    }
}

/// What a job holds while it runs. The daemon has a fixed number of each (CPU workers, GPUs
/// found at start, concurrent network jobs) and starts a job only when all it needs is free.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Resources {
    pub cpu: u32,
    pub gpu: u32,
    pub net: u32,
}

impl Resources {
    pub fn fits_in(self, free: Resources) -> bool {
        self.cpu <= free.cpu && self.gpu <= free.gpu && self.net <= free.net
    }

    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu + other.cpu,
            gpu: self.gpu + other.gpu,
            net: self.net + other.net,
        }
    }

    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_sub(other.cpu),
            gpu: self.gpu.saturating_sub(other.gpu),
            net: self.net.saturating_sub(other.net),
        }
    }
}

impl std::fmt::Display for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cpu {}, gpu {}, net {}", self.cpu, self.gpu, self.net)
    }
}

/// One pipeline step, with everything it needs to run without the client that asked for it.
/// Paths are absolute: the daemon does not share the client's working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Import saved ODE replies into the catalog.
    Import { files: Vec<PathBuf> },
    /// Register local images (and their PDS label) as catalog products.
    AddLocal(AddLocal),
    /// Search ODE and store every page in the catalog as it arrives.
    Search {
        ode_url: String,
        query: OdeQuery,
        page_size: u64,
        max: Option<u64>,
    },
    /// Download chosen files of catalogued products into the workspace.
    Fetch {
        pdsids: Vec<String>,
        kinds: Vec<FetchKind>,
        parallel: usize,
    },
    /// Cut an image into chips (and masks) with a manifest.
    Tile(TileRequest),
    /// Convert annotations to another format, or paint them into masks.
    Labels(LabelRequest),
    /// Split tile sets into a training dataset.
    Dataset(DatasetRequest),
    /// Train a model on a dataset.
    Train(TrainJob),
    /// Run a trained model over an image.
    Infer(InferJob),
    /// Score a predicted mask against the truth; kept as `evals/<name>.json`.
    Eval(EvalRequest),
    /// Detections scored against COCO truth, kept as a named report.
    EvalDetections(DetectionRequest),
    /// A file-to-file command of the CLI run by the daemon.
    Command(CommandJob),
    /// A job that only sleeps, counts and (optionally) fails: for testing and measuring the
    /// scheduler. Not offered by the CLI.
    #[doc(hidden)]
    Probe(Probe),
}

/// A file-to-file command of the CLI (`prep`, `stitch`, `labels`, `tile FILE`), run by the
/// daemon as `areo --json ARGS` in `cwd`: how the dashboard's palette queues the commands
/// that have no job of their own. The words are the child's arguments as they are; nothing
/// reaches a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandJob {
    pub args: Vec<String>,
    /// Where its relative paths are taken from (the dashboard's working directory).
    pub cwd: PathBuf,
}

impl CommandJob {
    /// The subcommands that only read and write the files they name.
    pub const SUBCOMMANDS: [&'static str; 4] = ["prep", "stitch", "labels", "tile"];

    fn check(&self) -> Result<(), String> {
        match self.args.first() {
            Some(first) if Self::SUBCOMMANDS.contains(&first.as_str()) => {}
            other => {
                return Err(format!(
                    "a command job runs {} only, not {other:?}",
                    Self::SUBCOMMANDS.join(", ")
                ))
            }
        }
        // A catalog product is tiled by a tile job, which records its lineage.
        if let Some(word) = self.args.iter().find(|a| {
            a.starts_with("--workspace") || (self.args[0] == "tile" && a.starts_with("--product"))
        }) {
            return Err(format!("a command job does not take {word}"));
        }
        Ok(())
    }
}

/// See [`JobSpec::Probe`].
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub steps: u32,
    pub step_ms: u64,
    /// Fails at its first step while this file does not exist.
    pub fail_unless: Option<PathBuf>,
    /// Appends "job ID attempt N" to this file when it starts, so a test can count runs.
    pub record_runs: Option<PathBuf>,
    /// What it claims to need (default: one CPU worker).
    pub needs: Option<Resources>,
}

/// How lineage names a path: relative to the workspace when inside it, else as given.
pub fn artifact_name(path: &Path, workspace: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A file as an input: the product whose folder (`products/<PDSID>/`) holds it, else itself.
fn file_input(path: &Path, workspace: &Path) -> Input {
    match path.strip_prefix(workspace.join("products")) {
        Ok(inside) if inside.components().count() >= 2 => {
            let pdsid = inside.components().next().expect("two components");
            Input::Product(pdsid.as_os_str().to_string_lossy().into_owned())
        }
        _ => Input::File(path.to_path_buf()),
    }
}

impl JobSpec {
    /// What this job made when it succeeded, with what from, for the catalog's lineage;
    /// `None` for steps that make no artefact (imports, searches, downloads, conversions).
    pub fn artifact(
        &self,
        workspace: &Path,
        job: JobId,
        result: Option<&serde_json::Value>,
    ) -> Option<Artifact> {
        let file = |path: &Path| file_input(path, workspace);
        let made = |kind, name: String, path: PathBuf, inputs: Vec<Input>| Artifact {
            kind,
            name,
            path,
            created: UtcTime::now(),
            job: Some(job),
            inputs,
            summary: result.map_or_else(|| "{}".into(), |r| r.to_string()),
        };
        // An evaluation kept as evals/NAME.json, made from its run and files.
        let report = |name: &String, run: Option<&String>, files: &[&PathBuf]| {
            let mut inputs: Vec<Input> = run
                .map(|run| Input::Artifact(ArtifactKind::Run, run.clone()))
                .into_iter()
                .collect();
            inputs.extend(files.iter().map(|path| file(path)));
            made(
                ArtifactKind::Report,
                name.clone(),
                workspace.join("evals").join(format!("{name}.json")),
                inputs,
            )
        };
        Some(match self {
            JobSpec::Tile(request) => {
                let companions = [
                    request.label.as_deref(),
                    request.labels.as_ref().map(|(path, _)| path.as_path()),
                    request.classes.as_deref(),
                ];
                let mut inputs = vec![file(&request.input)];
                inputs.extend(companions.into_iter().flatten().map(file));
                inputs.dedup();
                made(
                    ArtifactKind::TileSet,
                    artifact_name(&request.out, workspace),
                    request.out.clone(),
                    inputs,
                )
            }
            JobSpec::Dataset(request) => made(
                ArtifactKind::Dataset,
                request.name.clone(),
                workspace
                    .join("datasets")
                    .join(format!("{}.json", request.name)),
                request
                    .tile_sets
                    .iter()
                    .map(|t| Input::Artifact(ArtifactKind::TileSet, artifact_name(t, workspace)))
                    .collect(),
            ),
            JobSpec::Train(job) => {
                let mut inputs = vec![Input::Artifact(ArtifactKind::Dataset, job.dataset.clone())];
                inputs.extend(job.encoder_weights.as_deref().map(file));
                made(
                    ArtifactKind::Run,
                    job.run.clone(),
                    workspace.join("runs").join(&job.run),
                    inputs,
                )
            }
            JobSpec::Infer(job) => made(
                ArtifactKind::Prediction,
                artifact_name(&job.out, workspace),
                job.out.clone(),
                vec![
                    Input::Artifact(ArtifactKind::Run, job.run.clone()),
                    file(&job.image),
                ],
            ),
            JobSpec::Eval(request) => {
                let mut files = vec![&request.truth, &request.predicted];
                files.extend(request.craters.as_ref().map(|c| &c.list));
                report(request.name.as_ref()?, request.run.as_ref(), &files)
            }
            JobSpec::EvalDetections(request) => report(
                request.name.as_ref()?,
                request.run.as_ref(),
                &[&request.truth, &request.results],
            ),
            JobSpec::Import { .. }
            | JobSpec::AddLocal(_)
            | JobSpec::Search { .. }
            | JobSpec::Fetch { .. }
            | JobSpec::Labels(_)
            | JobSpec::Command(_)
            | JobSpec::Probe(_) => return None,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            JobSpec::Import { .. } => "import",
            JobSpec::AddLocal(_) => "add-local",
            JobSpec::Search { .. } => "search",
            JobSpec::Fetch { .. } => "fetch",
            JobSpec::Tile(_) => "tile",
            JobSpec::Labels(_) => "labels",
            JobSpec::Dataset(_) => "dataset",
            JobSpec::Train(_) => "train",
            JobSpec::Infer(_) => "infer",
            JobSpec::Eval(_) | JobSpec::EvalDetections(_) => "eval",
            JobSpec::Command(_) => "command",
            JobSpec::Probe(_) => "probe",
        }
    }

    pub fn needs(&self) -> Resources {
        let cpu = Resources {
            cpu: 1,
            ..Resources::default()
        };
        let net = Resources {
            net: 1,
            ..Resources::default()
        };
        match self {
            JobSpec::Import { .. }
            | JobSpec::AddLocal(_)
            | JobSpec::Tile(_)
            | JobSpec::Labels(_)
            | JobSpec::Dataset(_)
            | JobSpec::Eval(_)
            | JobSpec::EvalDetections(_)
            | JobSpec::Command(_) => cpu,
            JobSpec::Train(TrainJob { device, .. }) | JobSpec::Infer(InferJob { device, .. }) => {
                if device.starts_with("cuda") {
                    Resources {
                        gpu: 1,
                        ..Resources::default()
                    }
                } else {
                    cpu
                }
            }
            JobSpec::Search { .. } | JobSpec::Fetch { .. } => net,
            JobSpec::Probe(probe) => probe.needs.unwrap_or(cpu),
        }
    }

    /// One line for tables: the kind and its main argument.
    pub fn describe(&self) -> String {
        let names = |paths: &[PathBuf]| {
            let first = paths.first().map_or(String::new(), |p| file_name(p));
            match paths.len() {
                0 | 1 => first,
                n => format!("{first} +{}", n - 1),
            }
        };
        match self {
            JobSpec::Import { files } => format!("import {}", names(files)),
            JobSpec::AddLocal(request) => format!("add-local {}", names(&request.files)),
            JobSpec::Search { query, .. } => match &query.selector {
                Selector::Instrument {
                    instrument,
                    product_type,
                    ..
                } => format!("search {instrument} {product_type}"),
                Selector::PdsId(pdsid) => format!("search {pdsid}"),
                Selector::OdeId(id) => format!("search ODE id {id}"),
            },
            JobSpec::Fetch { pdsids, kinds, .. } => {
                let kinds: Vec<String> = kinds
                    .iter()
                    .map(|k| format!("{k:?}").to_lowercase())
                    .collect();
                let first = pdsids.first().cloned().unwrap_or_default();
                let more = match pdsids.len() {
                    0 | 1 => String::new(),
                    n => format!(" +{}", n - 1),
                };
                format!("fetch {first}{more} ({})", kinds.join(","))
            }
            JobSpec::Tile(request) => format!(
                "tile {} -> {}",
                file_name(&request.input),
                request.out.display()
            ),
            JobSpec::Labels(request) => {
                let what = match &request.output {
                    LabelOutput::Convert { to, .. } => format!("to {to:?}").to_lowercase(),
                    LabelOutput::Rasterize { .. } => "masks".into(),
                };
                format!(
                    "labels {} {} -> {}",
                    names(&request.source.inputs),
                    what,
                    request.out().display()
                )
            }
            JobSpec::Dataset(request) => format!(
                "dataset {} from {}",
                request.name,
                names(&request.tile_sets)
            ),
            JobSpec::Train(job) => format!(
                "train {} ({}) on {} [{}]",
                job.run, job.config.name, job.dataset, job.device
            ),
            JobSpec::Infer(job) => format!(
                "infer {} on {} -> {}",
                job.run,
                file_name(&job.image),
                job.out.display()
            ),
            JobSpec::Eval(request) => format!(
                "eval {} against {}",
                file_name(&request.predicted),
                file_name(&request.truth)
            ),
            JobSpec::EvalDetections(request) => format!(
                "eval {} against {}",
                file_name(&request.results),
                file_name(&request.truth)
            ),
            JobSpec::Command(command) => format!("areo {}", command.args.join(" ")),
            JobSpec::Probe(probe) => format!("probe {} x {} ms", probe.steps, probe.step_ms),
        }
    }

    /// Makes relative paths absolute against `base` (a pipeline file's folder, the CLI's
    /// working directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        match self {
            JobSpec::Import { files } => files.iter_mut().for_each(resolve),
            JobSpec::AddLocal(request) => {
                request.files.iter_mut().for_each(resolve);
                request.label.iter_mut().for_each(resolve);
            }
            JobSpec::Search { .. } | JobSpec::Fetch { .. } => {}
            JobSpec::Tile(request) => {
                resolve(&mut request.input);
                resolve(&mut request.out);
                request.label.iter_mut().for_each(resolve);
                request
                    .labels
                    .iter_mut()
                    .for_each(|(path, _)| resolve(path));
                request.classes.iter_mut().for_each(resolve);
            }
            JobSpec::Labels(request) => {
                let source = &mut request.source;
                source.inputs.iter_mut().for_each(resolve);
                source.classes.iter_mut().for_each(resolve);
                source.images.iter_mut().for_each(resolve);
                match &mut request.output {
                    LabelOutput::Convert { out, .. } | LabelOutput::Rasterize { out, .. } => {
                        resolve(out)
                    }
                }
            }
            JobSpec::Dataset(request) => request.tile_sets.iter_mut().for_each(resolve),
            JobSpec::Train(job) => job.encoder_weights.iter_mut().for_each(resolve),
            JobSpec::Infer(job) => {
                resolve(&mut job.image);
                resolve(&mut job.out);
            }
            JobSpec::EvalDetections(request) => {
                resolve(&mut request.truth);
                resolve(&mut request.results);
            }
            JobSpec::Eval(request) => {
                resolve(&mut request.truth);
                resolve(&mut request.predicted);
                request
                    .craters
                    .iter_mut()
                    .for_each(|scoring| resolve(&mut scoring.list));
            }
            JobSpec::Command(command) => resolve(&mut command.cwd),
            JobSpec::Probe(probe) => {
                probe.fail_unless.iter_mut().for_each(resolve);
                probe.record_runs.iter_mut().for_each(resolve);
            }
        }
    }

    /// Refuses what cannot run: relative paths (the daemon has its own working directory),
    /// empty lists.
    pub fn validate(&self) -> Result<(), String> {
        let absolute = |path: &Path, what: &str| {
            if path.is_absolute() {
                Ok(())
            } else {
                Err(format!(
                    "{what} {} is relative: the daemon needs absolute paths",
                    path.display()
                ))
            }
        };
        match self {
            JobSpec::Import { files } => {
                if files.is_empty() {
                    return Err("import: no files".into());
                }
                files.iter().try_for_each(|f| absolute(f, "reply file"))
            }
            JobSpec::AddLocal(request) => {
                if request.files.is_empty() {
                    return Err("add-local: no files".into());
                }
                request
                    .files
                    .iter()
                    .try_for_each(|f| absolute(f, "image"))?;
                match &request.label {
                    Some(label) => absolute(label, "label"),
                    None => Ok(()),
                }
            }
            JobSpec::Search { page_size, .. } => match page_size {
                0 => Err("search: page size 0".into()),
                _ => Ok(()),
            },
            JobSpec::Fetch {
                pdsids,
                kinds,
                parallel,
            } => {
                if pdsids.is_empty() || kinds.is_empty() {
                    return Err("fetch: no products or no kinds of file".into());
                }
                if *parallel == 0 {
                    return Err("fetch: parallel 0".into());
                }
                Ok(())
            }
            JobSpec::Tile(request) => {
                absolute(&request.input, "image")?;
                absolute(&request.out, "output folder")?;
                if let Some(label) = &request.label {
                    absolute(label, "label")?;
                }
                if let Some((labels, _)) = &request.labels {
                    absolute(labels, "annotations")?;
                }
                if let Some(classes) = &request.classes {
                    absolute(classes, "class map")?;
                }
                if request.spec.size == 0 || request.spec.stride == 0 {
                    return Err("tile: size and stride must be positive".into());
                }
                Ok(())
            }
            JobSpec::Labels(request) => {
                let source = &request.source;
                if source.inputs.is_empty() {
                    return Err("labels: no inputs".into());
                }
                source
                    .inputs
                    .iter()
                    .try_for_each(|p| absolute(p, "annotations"))?;
                if let Some(classes) = &source.classes {
                    absolute(classes, "class map")?;
                }
                if let Some(images) = &source.images {
                    absolute(images, "image folder")?;
                }
                absolute(request.out(), "output folder")
            }
            JobSpec::Dataset(request) => {
                if request.tile_sets.is_empty() {
                    return Err("dataset: no tile sets".into());
                }
                request
                    .tile_sets
                    .iter()
                    .try_for_each(|p| absolute(p, "tile set"))
            }
            JobSpec::Train(job) => {
                job.config.check()?;
                crate::nn::check_device_name(&job.device)?;
                match &job.encoder_weights {
                    Some(path) => absolute(path, "encoder weights"),
                    None => Ok(()),
                }
            }
            JobSpec::Infer(job) => {
                crate::nn::check_device_name(&job.device)?;
                absolute(&job.image, "image")?;
                absolute(&job.out, "output folder")
            }
            JobSpec::EvalDetections(request) => {
                let name = request.name.as_deref().unwrap_or_default();
                crate::product::check_plain_name("evaluation name", name)
                    .map_err(|e| e.to_string())?;
                absolute(&request.truth, "truth")?;
                absolute(&request.results, "detections")
            }
            JobSpec::Eval(request) => {
                let name = request.name.as_deref().unwrap_or_default();
                crate::product::check_plain_name("evaluation name", name)
                    .map_err(|e| e.to_string())?;
                absolute(&request.truth, "true mask")?;
                absolute(&request.predicted, "predicted mask")?;
                match &request.craters {
                    Some(scoring) => absolute(&scoring.list, "crater list"),
                    None => Ok(()),
                }
            }
            JobSpec::Command(command) => {
                absolute(&command.cwd, "working folder")?;
                command.check()
            }
            JobSpec::Probe(probe) => {
                if let Some(path) = &probe.fail_unless {
                    absolute(path, "probe file")?;
                }
                if let Some(path) = &probe.record_runs {
                    absolute(path, "probe file")?;
                }
                Ok(())
            }
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// A job to add: its spec, priority (higher first; FIFO within one) and the jobs it waits
/// for, either already known (`after`) or earlier in the same submission (`after_new`, by
/// position), so a whole pipeline can be queued in one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub spec: JobSpec,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub after: Vec<JobId>,
    #[serde(default)]
    pub after_new: Vec<usize>,
}

impl NewJob {
    pub fn new(spec: JobSpec) -> Self {
        NewJob {
            spec,
            priority: 0,
            after: Vec::new(),
            after_new: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    pub label: String,
    pub done: u64,
    pub total: u64,
}

/// The newest lines a job logged; older ones go to `areo.log` only.
pub const LOG_LINES_KEPT: usize = 200;

/// Everything known about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub spec: JobSpec,
    pub priority: i32,
    /// Jobs that must succeed before this one starts.
    pub after: Vec<JobId>,
    pub state: JobState,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// Times it has been started.
    pub attempts: u32,
    pub progress: Option<JobProgress>,
    pub error: Option<String>,
    /// What the step reported (its own JSON: import reports, download outcomes, a manifest).
    pub result: Option<serde_json::Value>,
    /// Files and records it produced.
    pub outputs: Vec<String>,
    pub log: Vec<String>,
}

impl JobRecord {
    pub fn new(id: JobId, new: &NewJob, after: Vec<JobId>) -> Self {
        JobRecord {
            id,
            spec: new.spec.clone(),
            priority: new.priority,
            after,
            state: JobState::Queued,
            created: Utc::now(),
            started: None,
            finished: None,
            attempts: 0,
            progress: None,
            error: None,
            result: None,
            outputs: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The record without its log and result, for lists and state-change events.
    pub fn summary(&self) -> JobRecord {
        JobRecord {
            log: Vec::new(),
            result: None,
            ..self.clone()
        }
    }

    pub fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES_KEPT {
            self.log.remove(0);
        }
        self.log.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_job_runs_only_file_to_file_subcommands_from_an_absolute_folder() {
        let job = |args: &[&str], cwd: &str| {
            JobSpec::Command(CommandJob {
                args: args.iter().map(|a| a.to_string()).collect(),
                cwd: cwd.into(),
            })
        };
        assert_eq!(
            job(
                &["prep", "scale", "a.png", "--factor", "0.5", "--out", "b.png"],
                "/data"
            )
            .validate(),
            Ok(())
        );
        assert_eq!(
            job(&["tile", "a.png", "--out", "chips"], "/data").validate(),
            Ok(())
        );
        for (args, why) in [
            (&["serve"][..], "not Some(\"serve\")"),
            (&[][..], "not None"),
            (&["tile", "--product", "P"][..], "does not take --product"),
            (
                &["prep", "crop", "--workspace=/elsewhere"][..],
                "does not take --workspace",
            ),
        ] {
            let error = job(args, "/data").validate().unwrap_err();
            assert!(error.contains(why), "{args:?}: {error}");
        }
        let relative = job(&["stitch", "chips"], "data").validate().unwrap_err();
        assert!(
            relative.contains("working folder data is relative"),
            "{relative}"
        );
        let mut resolved = job(&["stitch", "chips"], "data");
        resolved.resolve_paths(Path::new("/home/ada"));
        assert_eq!(resolved.validate(), Ok(()));
        assert_eq!(resolved.describe(), "areo stitch chips");
        assert_eq!(resolved.kind(), "command");
    }

    #[test]
    fn specs_travel_as_tagged_json_and_come_back_equal() {
        let spec = JobSpec::Fetch {
            pdsids: vec!["ESP_013951_1955_RED".into()],
            kinds: vec![FetchKind::Browse, FetchKind::Label],
            parallel: 2,
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"fetch","pdsids":["ESP_013951_1955_RED"],"kinds":["browse","label"],"parallel":2}"#
        );
        assert_eq!(serde_json::from_str::<JobSpec>(&text).unwrap(), spec);
    }

    #[test]
    fn relative_paths_and_empty_lists_are_refused() {
        let relative = JobSpec::Import {
            files: vec!["page.json".into()],
        };
        assert!(relative.validate().unwrap_err().contains("page.json"));
        assert!(JobSpec::Import { files: vec![] }.validate().is_err());
        let fetch = JobSpec::Fetch {
            pdsids: vec!["X".into()],
            kinds: vec![FetchKind::Browse],
            parallel: 0,
        };
        assert!(fetch.validate().unwrap_err().contains("parallel"));
    }

    #[test]
    fn the_log_keeps_the_newest_lines() {
        let mut record = JobRecord::new(1, &NewJob::new(JobSpec::Probe(Probe::default())), vec![]);
        for i in 0..LOG_LINES_KEPT + 5 {
            record.push_log(format!("line {i}"));
        }
        assert_eq!(record.log.len(), LOG_LINES_KEPT);
        assert_eq!(record.log[0], "line 5");
        assert_eq!(
            record.log.last().unwrap(),
            &format!("line {}", LOG_LINES_KEPT + 4)
        );
    }

    #[test]
    fn resources_fit_only_when_every_kind_is_free() {
        let free = Resources {
            cpu: 2,
            gpu: 0,
            net: 1,
        };
        assert!(Resources {
            cpu: 2,
            gpu: 0,
            net: 1
        }
        .fits_in(free));
        assert!(!Resources {
            cpu: 0,
            gpu: 1,
            net: 0
        }
        .fits_in(free));
    }
}
