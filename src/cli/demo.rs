//! `areo demo`: the whole crater pipeline on the sample shipped in `data/`, as real engine
//! jobs in a demo workspace: import the sample ODE reply, register the sample image as a
//! local product, paint the crater list into a mask,
//! tile the image with per-chip masks, split a dataset with a held-out area, train a U-Net,
//! run it over the whole image and score the held-out area (pixels and craters).
//!
//! The pipeline's job ids are kept in `demo/pipeline.json`, so running the demo again while
//! it works re-attaches to it, and running it after it finished runs it again: every step
//! rewrites its outputs, and training resumes (or, finished, keeps) its run.

use super::jobs::{job_failure, Daemon, Watcher};
use super::learn::print_report;
use crate::engine::job::{JobId, JobRecord, NewJob};
use crate::engine::protocol::Event;
use crate::engine::{JobSpec, JobState};
use crate::labels::ImageSize;
use crate::nn::config::RunConfig;
use crate::pipeline::dataset::{DatasetRequest, SplitRule};
use crate::pipeline::evaluate::{CraterScoring, EvalReport, EvalRequest};
use crate::pipeline::labels::{Format, LabelOutput, LabelRequest, LabelSource};
use crate::pipeline::local::AddLocal;
use crate::pipeline::tile::TileRequest;
use crate::pipeline::train::{InferJob, TrainJob};
use crate::raster::tile::{Edge, TileSpec};
use crate::tui::app::View;
use anyhow::{bail, Context};
use clap::Args;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The sample files, built into the binary so the demo runs from any directory.
const SAMPLES: [(&str, &[u8]); 5] = [
    (
        "ESP_013951_1955_RED.json",
        include_bytes!("../../data/ode/ESP_013951_1955_RED.json"),
    ),
    (
        "nanedi-512x320.png",
        include_bytes!("../../data/craters/nanedi-512x320.png"),
    ),
    (
        "nanedi-512x320.csv",
        include_bytes!("../../data/craters/nanedi-512x320.csv"),
    ),
    (
        "selection3-384.png",
        include_bytes!("../../data/scenes/selection3-384.png"),
    ),
    (
        "selection5-384.png",
        include_bytes!("../../data/scenes/selection5-384.png"),
    ),
];
/// Unlabelled scenes: registered too, and the first one run through the trained model.
const SCENES: [&str; 2] = ["selection3-384.png", "selection5-384.png"];
const REPLY: &str = "ESP_013951_1955_RED.json";
const IMAGE: &str = "nanedi-512x320.png";
const CRATERS: &str = "nanedi-512x320.csv";
const SAMPLE_SIZE: ImageSize = ImageSize {
    width: 512,
    height: 320,
    depth: 1,
};

/// The default model, built in for the same reason.
const DEFAULT_CONFIG: (&str, &str) = (
    "models/unet-tiny.toml",
    include_str!("../../models/unet-tiny.toml"),
);

/// Craters are painted at this fraction of their diameter: narrower discs keep neighbouring
/// craters apart, so each one becomes one component (scored with the same fill).
const CIRCLE_SCALE: f64 = 0.7;
/// Training uses x < 384; the right strip is held out: its top half validates each epoch
/// (and picks the best epoch), its bottom half is the test area scored at the end.
const VALIDATION_BOX: [u32; 4] = [384, 0, 128, 160];
const TEST_BOX: [u32; 4] = [384, 160, 128, 160];

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print progress and exit when the pipeline is done (non-zero when a step failed),
    /// instead of opening the dashboard on the training run.
    #[arg(long)]
    pub headless: bool,
    /// The model configuration to train (default: models/unet-tiny.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The pipeline's steps, in order, with what each waits for.
struct Step {
    name: &'static str,
    spec: JobSpec,
    after: Vec<usize>,
}

pub fn run(dir: PathBuf, args: DemoArgs, json: bool) -> anyhow::Result<ExitCode> {
    let dir = std::path::absolute(&dir)?;
    let demo = dir.join("demo");
    std::fs::create_dir_all(&demo)
        .with_context(|| format!("cannot use {} as a workspace", dir.display()))?;
    for (name, bytes) in SAMPLES {
        let path = demo.join(name);
        crate::fsio::write_atomically(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let (config_name, config_text) = match &args.config {
        Some(path) => (
            path.file_name()
                .map_or_else(|| "demo.toml".into(), |n| n.to_string_lossy().into_owned()),
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => (
            Path::new(DEFAULT_CONFIG.0)
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned(),
            DEFAULT_CONFIG.1.to_string(),
        ),
    };
    let source = args
        .config
        .as_ref()
        .map_or_else(|| DEFAULT_CONFIG.0.to_string(), |p| p.display().to_string());
    let config = RunConfig::parse(&source, &config_text).map_err(anyhow::Error::msg)?;
    // The workspace keeps the configuration, so the dashboard's training form offers it
    // wherever the dashboard is opened from (one the user changed there is left alone).
    let kept = dir.join("models").join(&config_name);
    if !kept.exists() {
        std::fs::create_dir_all(dir.join("models"))?;
        crate::fsio::write_atomically(&kept, config_text.as_bytes())
            .with_context(|| format!("writing {}", kept.display()))?;
    }
    crate::nn::check_device_name(&args.device).map_err(anyhow::Error::msg)?;

    let mut daemon = Daemon::connect(Some(dir.clone()))?;
    let record_path = demo.join("pipeline.json");
    let ids = match running_pipeline(&mut daemon, &record_path)? {
        Some(ids) => {
            if !json {
                eprintln!("the demo pipeline is still at work: following it");
            }
            ids
        }
        None => {
            let steps = steps(&dir, config, &args.device);
            let ids = daemon.client.submit(
                steps
                    .iter()
                    .map(|step| NewJob {
                        after_new: step.after.clone(),
                        ..NewJob::new(step.spec.clone())
                    })
                    .collect(),
            )?;
            let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
            let record = serde_json::json!({ "steps": names, "jobs": ids });
            crate::fsio::write_atomically(&record_path, record.to_string().as_bytes())?;
            ids
        }
    };
    // The dashboard when a person is watching; progress lines otherwise.
    if !args.headless && !json && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
    {
        drop(daemon);
        crate::tui::run(
            dir.clone(),
            Some(View::Runs),
            crate::tui::default_ode_url(),
            super::palette::command_line(),
        )?;
        println!(
            "the demo goes on in the workspace's daemon: `areo --workspace {} demo --headless` follows it to the end",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        eprintln!("demo workspace: {}", dir.display());
        eprintln!(
            "(Ctrl-C leaves the pipeline running in the workspace's daemon; `areo --workspace {} demo` follows it again)",
            dir.display()
        );
    }
    let jobs = follow(&mut daemon, &ids, json)?;
    let failed: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| j.state != JobState::Succeeded)
        .collect();
    let report: Option<EvalReport> = jobs
        .last()
        .and_then(|j| j.result.clone())
        .map(serde_json::from_value)
        .transpose()?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "workspace": dir,
                "jobs": jobs.iter().map(JobRecord::summary).collect::<Vec<_>>(),
                "evaluation": report,
            })
        );
    } else {
        for job in &jobs {
            println!("{:>4} {:<11} {}", job.id, job.state, job.spec.describe());
        }
        if let Some(report) = &report {
            println!();
            println!(
                "held-out test area {:?} (x, y, width, height), scored by {}:",
                report.region,
                report.run.as_deref().unwrap_or("the run")
            );
            print_report(report);
        }
        for job in &failed {
            eprintln!("{}", job_failure(job));
        }
        if !failed.is_empty() {
            eprintln!(
                "`areo --workspace {} jobs retry ID` runs a failed step again; the steps after it follow",
                dir.display()
            );
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The ids of the demo pipeline recorded in `path` when any of its jobs is still queued or
/// running; `None` when there is none or it is over.
fn running_pipeline(daemon: &mut Daemon, path: &Path) -> anyhow::Result<Option<Vec<JobId>>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(None);
    };
    // A record that cannot be read is a pipeline we cannot follow: start a new one.
    let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    let Ok(ids) = serde_json::from_value::<Vec<JobId>>(record["jobs"].clone()) else {
        return Ok(None);
    };
    for id in &ids {
        match daemon.client.job(*id) {
            Ok(job) if !job.state.is_final() => return Ok(Some(ids)),
            Ok(_) => {}
            // The daemon forgot the job (a new job store): the pipeline is not running.
            Err(crate::engine::client::ClientError::Daemon(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(None)
}

fn steps(workspace: &Path, config: RunConfig, device: &str) -> Vec<Step> {
    let demo = workspace.join("demo");
    let image = demo.join(IMAGE);
    let craters = demo.join(CRATERS);
    let truth_dir = demo.join("truth");
    let tiles = workspace.join("tiles").join("demo-nanedi");
    let dataset = "demo-craters".to_string();
    let run = format!("demo-{}", config.name);
    let prediction = workspace
        .join("runs")
        .join(&run)
        .join("predictions")
        .join("nanedi-512x320");
    // Chips a little larger than the training tile, every 32 px: each epoch sees a random
    // crop of each, so the small training area gives more varied batches (measured on the
    // sample: test-area crater pixel F1 0.33 against 0.13 with tile-sized chips).
    let chip = config.train.tile + 32;
    vec![
        Step {
            name: "import the sample ODE reply",
            spec: JobSpec::Import {
                files: vec![demo.join(REPLY)],
            },
            after: vec![],
        },
        Step {
            name: "register the sample image and two unlabelled scenes as local products",
            spec: JobSpec::AddLocal(AddLocal {
                files: std::iter::once(image.clone())
                    .chain(SCENES.iter().map(|scene| demo.join(scene)))
                    .collect(),
                label: None,
            }),
            after: vec![],
        },
        Step {
            name: "paint the crater list into a class mask",
            spec: JobSpec::Labels(LabelRequest {
                source: LabelSource {
                    format: Format::Craters,
                    inputs: vec![craters.clone()],
                    classes: None,
                    size: Some(SAMPLE_SIZE),
                    images: Some(demo.clone()),
                    class_attribute: None,
                    default_class: None,
                    circle_scale: Some(CIRCLE_SCALE),
                },
                output: LabelOutput::Rasterize {
                    out: truth_dir.clone(),
                    palette: false,
                    instances: false,
                },
            }),
            after: vec![],
        },
        Step {
            name: "tile the image with crater masks",
            spec: JobSpec::Tile(TileRequest {
                input: image.clone(),
                spec: TileSpec {
                    size: chip,
                    stride: 32,
                    edge: Edge::ShiftInward,
                    skip_no_data: None,
                },
                label: None,
                labels: Some((craters.clone(), Format::Craters)),
                classes: None,
                circle_scale: Some(CIRCLE_SCALE),
                min_visible: None,
                out: tiles.clone(),
            }),
            after: vec![],
        },
        Step {
            name: "split a dataset with a held-out area",
            spec: JobSpec::Dataset(DatasetRequest {
                name: dataset.clone(),
                tile_sets: vec![tiles],
                rule: SplitRule {
                    validation_box: Some(VALIDATION_BOX),
                    test_box: Some(TEST_BOX),
                    ..SplitRule::default()
                },
                replace: true,
            }),
            after: vec![3],
        },
        Step {
            name: "train the U-Net",
            spec: JobSpec::Train(TrainJob {
                run: run.clone(),
                config,
                dataset,
                device: device.to_string(),
                encoder_weights: None,
            }),
            after: vec![4],
        },
        Step {
            name: "run it over the whole image",
            spec: infer(&run, image, prediction.clone(), device),
            after: vec![5],
        },
        Step {
            name: "run it over an unlabelled scene",
            spec: infer(
                &run,
                demo.join(SCENES[0]),
                workspace
                    .join("runs")
                    .join(&run)
                    .join("predictions")
                    .join("selection3-384"),
                device,
            ),
            after: vec![5],
        },
        Step {
            name: "score the held-out test area",
            spec: JobSpec::Eval(EvalRequest {
                name: Some("demo".into()),
                truth: truth_dir.join(IMAGE),
                predicted: prediction.join("mask.png"),
                classes: Some(2),
                ignore: 255,
                region: Some(TEST_BOX),
                craters: Some(CraterScoring {
                    list: craters,
                    class: 1,
                    fill: CIRCLE_SCALE,
                    min_pixels: 4,
                    blobs: None,
                    found_out: None,
                }),
                run: Some(run),
            }),
            after: vec![2, 6],
        },
    ]
}

/// Tiled inference of `run` over `image` into `out`, as the demo runs it.
fn infer(run: &str, image: PathBuf, out: PathBuf, device: &str) -> JobSpec {
    JobSpec::Infer(InferJob {
        run: run.to_string(),
        image,
        out,
        device: device.to_string(),
        tile: None,
        overlap: 32,
        batch: 8,
        probabilities: false,
        flips: false,
        weights: None,
        boxes_as: Default::default(),
    })
}

/// Shows the pipeline's progress until every job has settled or one failed (its
/// dependents would wait for a retry); returns the jobs as they are then.
fn follow(daemon: &mut Daemon, ids: &[JobId], json: bool) -> anyhow::Result<Vec<JobRecord>> {
    daemon.client.subscribe(None)?;
    let mut states: HashMap<JobId, JobState> = HashMap::new();
    for id in ids {
        states.insert(*id, daemon.client.job(*id)?.state);
    }
    let mut view = Watcher::new();
    let over = |states: &HashMap<JobId, JobState>| {
        states.values().all(|s| s.is_final())
            || states
                .values()
                .any(|s| matches!(s, JobState::Failed | JobState::Cancelled))
    };
    while !over(&states) {
        let Some(event) = daemon.client.next_event(None)? else {
            continue;
        };
        if !event.job_id().is_some_and(|id| states.contains_key(&id)) {
            if event == Event::Stopping {
                bail!("the daemon stopped; the demo's jobs resume when it starts again");
            }
            continue;
        }
        match &event {
            Event::Job { job } => {
                states.insert(job.id, job.state);
                if job.state.is_final() {
                    if !json {
                        view.end(job);
                    }
                } else if job.state == JobState::Running && !json {
                    eprintln!("job {} started: {}", job.id, job.spec.describe());
                }
            }
            // Epoch lines (logged) say more than per-step metrics in a demo's output.
            Event::Metric { .. } => {}
            event if !json => view.event(event),
            _ => {}
        }
    }
    ids.iter().map(|id| Ok(daemon.client.job(*id)?)).collect()
}
