//! Datasets, training, runs, inference and evaluation. Dataset creation, training and
//! inference are daemon jobs (they outlive the terminal); reading runs and scoring masks
//! happen here.

use super::jobs::{job_failure, product_image, Daemon};
use super::output::{optional, parse_box, print_table};
use crate::engine::job::JobSpec;
use crate::engine::{Client, NewJob};
use crate::metrics::blobs::BlobSearch;
use crate::nn::config::{KeptWeights, RunConfig};
use crate::nn::run::{list_runs, read_metrics, RunRecord};
use crate::pipeline::dataset::{list_datasets, DatasetRecord, DatasetRequest, SplitRule};
use crate::pipeline::detections::{DetectionReport, DetectionRequest, TruthFormat};
use crate::pipeline::evaluate::CraterListRequest;
use crate::pipeline::evaluate::{
    BlobScoring, CraterScoring, EvalReport, EvalRequest, ObjectScores, CLASS_SCORE_COLUMNS,
};
use crate::pipeline::fetch::{local_path, FetchKind};
use crate::pipeline::train::{BoxOutputs, InferJob, TrainJob};
use crate::product::FileState;
use crate::workspace::Workspace;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Split tile sets (tiled with --labels) into training, validation and test chips.
    Create(DatasetCreateArgs),
    List,
    Show {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct DatasetCreateArgs {
    pub name: String,
    /// Tile set folders (each with manifest.json and masks).
    #[arg(long = "tiles", required = true, num_args = 1..)]
    pub tiles: Vec<PathBuf>,
    /// Fraction of the area held out for validation (random squares of --area px).
    #[arg(long, default_value_t = 0.2)]
    pub validation: f64,
    #[arg(long, default_value_t = 0.0)]
    pub test: f64,
    /// Side of the squares the source is split by, in pixels.
    #[arg(long, default_value_t = 1024)]
    pub area: u32,
    /// Hold out this box X,Y,W,H of every source for validation instead of random squares.
    #[arg(long)]
    pub validation_box: Option<String>,
    #[arg(long)]
    pub test_box: Option<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A configuration, such as models/unet-tiny.toml.
    #[arg(long, required_unless_present_any = ["from_run", "resume"], conflicts_with = "from_run")]
    pub config: Option<PathBuf>,
    /// Start from the configuration another run trained with (changed by the options below).
    #[arg(long, value_name = "RUN", conflicts_with = "resume")]
    pub from_run: Option<String>,
    /// The dataset (default with --resume: the run's).
    #[arg(long, required_unless_present = "resume")]
    pub dataset: Option<String>,
    /// The run's name (default: the configuration's name and the time).
    #[arg(long, conflicts_with = "resume")]
    pub name: Option<String>,
    /// Continue this run from its checkpoint, with its configuration and dataset.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<String>,
    /// Train for this many epochs instead of the configuration's `train.epochs`.
    #[arg(long, conflicts_with = "resume")]
    pub epochs: Option<usize>,
    /// Chips per step instead of `train.batch`.
    #[arg(long, conflicts_with = "resume")]
    pub batch: Option<usize>,
    /// Peak learning rate instead of `train.lr`.
    #[arg(long, conflicts_with = "resume")]
    pub lr: Option<f64>,
    /// Seed instead of `train.seed`.
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// torchvision ResNet weights for the backbone, of any family: the `.pth` torchvision
    /// downloads (or any state dict PyTorch saved) or safetensors.
    #[arg(long)]
    pub encoder_weights: Option<PathBuf>,
    /// Queue the run and return (`areo jobs watch ID` follows it).
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every run with its state, epochs and best score.
    List,
    /// A run's record and its per-epoch metrics.
    Show { run: String },
    /// Remove a run's folder: checkpoints, metrics, predictions (refused while it trains).
    Delete { run: String },
}

#[derive(Debug, Args)]
pub struct InferArgs {
    #[arg(long)]
    pub run: String,
    /// The image: any format `areo tile` reads, whole-product sizes included.
    #[arg(long, required_unless_present = "product", conflicts_with = "product")]
    pub image: Option<PathBuf>,
    /// A downloaded catalog product instead: its science image, else its browse image.
    #[arg(long, value_name = "PDSID")]
    pub product: Option<String>,
    /// Download the product's browse image (or its data file) first when it is not here;
    /// the inference waits for the download.
    #[arg(long, value_enum, requires = "product")]
    pub fetch: Option<FetchFirst>,
    /// Output folder (default: runs/RUN/predictions/IMAGE-STEM, or .../PDSID).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Chip side (default: the run's training tile).
    #[arg(long)]
    pub tile: Option<u32>,
    #[arg(long, default_value_t = 32)]
    pub overlap: u32,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Also write each class's probability (16-bit PNG).
    #[arg(long)]
    pub probabilities: bool,
    /// Test-time augmentation: average each chip's prediction with its copies mirrored the
    /// ways the run trained with (`flips` in its configuration; up to four passes).
    #[arg(long)]
    pub flips: bool,
    /// The run's weights to use: `last` (the end of training) or `best` (its best validation
    /// epoch); default: those its configuration's `keep` names.
    #[arg(long, value_parser = KeptWeights::parse)]
    pub weights: Option<KeptWeights>,
    /// A detector's boxes also as LabelImg VOC XML (`detections.xml`).
    #[arg(long)]
    pub voc: bool,
    /// A detector's boxes also as YOLO lines (`detections.txt`, ids in `classes.txt`).
    #[arg(long)]
    pub yolo: bool,
    /// The score a detection needs to be written as VOC or YOLO (they keep no score).
    #[arg(long, default_value_t = 0.5)]
    pub box_threshold: f64,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// True class mask (8-bit PNG); with --detections, COCO instances (other formats:
    /// `areo labels convert --to coco` first); with --found, the true crater list.
    #[arg(long)]
    pub truth: PathBuf,
    /// Predicted class mask of the same size.
    #[arg(long, required_unless_present_any = ["detections", "found"])]
    pub predicted: Option<PathBuf>,
    /// A detector's crater list (`x,y,diameter[,score]`, the `craters.csv` of `areo infer`)
    /// to score against the true list (--truth) by PyCDA's rule, as a segmentation's craters
    /// are; those scoring under --threshold are left out.
    #[arg(long, conflicts_with_all = ["predicted", "detections", "craters", "name", "csv"])]
    pub found: Option<PathBuf>,
    /// COCO results to score against the COCO truth instead: AP@[.5:.95], AP50, AP75, AP and
    /// AR by size, AR@1/10/100 and AP per class as pycocotools defines them, the confusion
    /// matrix at IoU 0.5 and P/R/F1 at --threshold.
    #[arg(long, conflicts_with_all = ["predicted", "craters", "region", "csv"])]
    pub detections: Option<PathBuf>,
    /// With --detections: the truth's format when it is not COCO (read as `areo labels`
    /// reads it; images numbered from 1 in the file's order, as `areo infer` numbers its one).
    #[arg(long, value_enum, requires = "detections")]
    pub truth_from: Option<super::labels::FormatArg>,
    /// With --truth-from: the image size formats without one need (YOLO, crater lists), WxH.
    #[arg(long, value_parser = super::labels::parse_size, requires = "truth_from")]
    pub size: Option<crate::labels::ImageSize>,
    /// With --detections or --found: the score a detection needs to count (the confusion
    /// matrix and P/R/F1).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Classes scored (default: one more than the largest value seen).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Truth value left out of the scores.
    #[arg(long, default_value_t = 255)]
    pub ignore: u8,
    /// Score only this box X,Y,W,H (a held-out area).
    #[arg(long = "box")]
    pub region: Option<String>,
    /// A crater list (x,y,diameter in pixels of the full image): score crater detection.
    #[arg(long)]
    pub craters: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub crater_class: u8,
    /// The fraction of a crater's diameter its training disc covered.
    #[arg(long, default_value_t = 1.0)]
    pub fill: f64,
    /// Smallest component taken as a crater, in pixels.
    #[arg(long, default_value_t = 4)]
    pub min_pixels: u64,
    /// Find craters as discs that stand out in this map of the crater class's probability
    /// (the 16-bit PNG of `areo infer --probabilities`) instead of as components of the
    /// predicted mask: finds the faint small craters the mask's threshold loses.
    #[arg(long, requires = "craters")]
    pub probabilities: Option<PathBuf>,
    /// How much a disc's mean probability must exceed its surrounding ring's (0-1).
    #[arg(long, default_value_t = BlobSearch::default().contrast, requires = "probabilities")]
    pub contrast: f32,
    /// Also write the craters found in the box to this file (x,y,diameter in pixels).
    #[arg(long, requires = "craters")]
    pub found_craters: Option<PathBuf>,
    /// Crater diameters searched in the probability map, in pixels: MIN,MAX.
    #[arg(long, default_value = "4,200", value_parser = parse_diameters, requires = "probabilities")]
    pub diameters: (f64, f64),
    /// Also write the per-class table as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Keep the report in the workspace as evals/NAME.json (the console shows it).
    #[arg(long)]
    pub name: Option<String>,
    /// The run that made the prediction, noted in a kept report.
    #[arg(long)]
    pub run: Option<String>,
}

pub fn dataset(
    workspace: Option<PathBuf>,
    command: DatasetCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Create(args) => {
            let spec = dataset_job(&args, &std::env::current_dir()?)?;
            let mut daemon = Daemon::connect(workspace)?;
            daemon.run_and_print(spec, json, |result| {
                format!(
                    "dataset {}: {} train, {} validation, {} test chip(s); {} left out at split \
                     borders",
                    result["name"].as_str().unwrap_or_default(),
                    result["train"],
                    result["validation"],
                    result["test"],
                    result["dropped"]
                )
            })
        }
        DatasetCommand::List => {
            let datasets = list_datasets(&workspace_dir(workspace)?.join("datasets"))?;
            if json {
                println!("{}", serde_json::to_string(&datasets)?);
            } else {
                let rows: Vec<Vec<String>> = datasets
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.clone(),
                            d.train.to_string(),
                            d.validation.to_string(),
                            d.test.to_string(),
                            d.created.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &["dataset", "train", "validation", "test", "created"],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DatasetCommand::Show { name } => {
            let record = DatasetRecord::read(&workspace_dir(workspace)?.join("datasets"), &name)?;
            if json {
                println!("{}", serde_json::to_string(&record)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("dataset {} (created {})", record.name, record.created);
            for (set, source) in record.tile_sets.iter().zip(&record.sources) {
                println!("  tiles {} (from {})", set.display(), source.display());
            }
            println!("  split: {:?}", record.rule);
            println!("  {} chip(s) left out at split borders", record.dropped);
            let mut rows = Vec::new();
            for (split, counts) in &record.class_pixels {
                let total: u64 = counts.values().sum();
                for (value, pixels) in counts {
                    rows.push(vec![
                        format!("{split:?}").to_lowercase(),
                        record.count(*split).to_string(),
                        value.to_string(),
                        pixels.to_string(),
                        format!("{:.2} %", 100.0 * *pixels as f64 / total.max(1) as f64),
                    ]);
                }
            }
            print_table(&["split", "chips", "class", "pixels", "share"], &rows);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The split `areo dataset create` asks for (the dashboard's palette and form too).
pub fn dataset_job(args: &DatasetCreateArgs, cwd: &Path) -> anyhow::Result<JobSpec> {
    crate::product::check_plain_name("dataset name", &args.name)?;
    let rule = SplitRule {
        seed: args.seed,
        area: args.area,
        validation: args.validation,
        test: args.test,
        validation_box: args
            .validation_box
            .as_deref()
            .map(|b| parse_box("--validation-box", b))
            .transpose()?,
        test_box: args
            .test_box
            .as_deref()
            .map(|b| parse_box("--test-box", b))
            .transpose()?,
    };
    Ok(JobSpec::Dataset(DatasetRequest {
        name: args.name.clone(),
        tile_sets: args.tiles.iter().map(|t| cwd.join(t)).collect(),
        rule,
        replace: args.replace,
    }))
}

pub fn train(workspace: Option<PathBuf>, args: TrainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let workspace_root = workspace_dir(workspace.clone())?;
    let job = train_job(&args, &workspace_root, &std::env::current_dir()?)?;
    let run = job.run.clone();
    let spec = JobSpec::Train(job);
    let mut daemon = Daemon::connect(Some(workspace_root))?;
    if args.detach {
        let id = daemon.submit(spec)?;
        if json {
            println!("{}", json!({ "job": id, "run": run }));
        } else {
            println!("run {run} queued as job {id}: `areo jobs watch {id}` to follow it");
        }
        return Ok(ExitCode::SUCCESS);
    }
    daemon.run_and_print(spec, json, |result| {
        format!(
            "run {run}: {} epoch(s), best {}",
            result["epochs"], result["best"]
        )
    })
}

/// The training job `areo train` asks for (the dashboard's palette and form too): the
/// configuration from a file, another run or the resumed run, changed by the options, on a
/// run name not taken (unless resuming it).
pub fn train_job(args: &TrainArgs, root: &Path, cwd: &Path) -> anyhow::Result<TrainJob> {
    let runs = root.join("runs");
    let read_run = |run: &str| {
        crate::product::check_plain_name("run name", run)?;
        RunRecord::read(&runs.join(run)).with_context(|| format!("no run {run}"))
    };
    let resumed = args.resume.as_deref().map(read_run).transpose()?;
    let mut config = match (&args.config, &args.from_run, &resumed) {
        (Some(path), ..) => RunConfig::read(&cwd.join(path)).map_err(anyhow::Error::msg)?,
        (None, Some(run), _) => read_run(run)?.config,
        (None, None, Some(record)) => record.config.clone(),
        (None, None, None) => bail!("give --config FILE, --from-run RUN or --resume RUN"),
    };
    let train = &mut config.train;
    train.epochs = args.epochs.unwrap_or(train.epochs);
    train.batch = args.batch.unwrap_or(train.batch);
    train.lr = args.lr.unwrap_or(train.lr);
    train.seed = args.seed.unwrap_or(train.seed);
    config.check().map_err(anyhow::Error::msg)?;
    crate::nn::check_device_name(&args.device).map_err(anyhow::Error::msg)?;
    let (run, dataset) = match (&resumed, &args.name) {
        (Some(record), _) => {
            if record.config != config {
                bail!(
                    "run {} was trained with another configuration than {}",
                    record.name,
                    args.config.as_deref().unwrap_or(Path::new("-")).display()
                );
            }
            if args.dataset.as_ref().is_some_and(|d| *d != record.dataset) {
                bail!(
                    "run {} trains on dataset {}, not {}",
                    record.name,
                    record.dataset,
                    args.dataset.as_deref().unwrap_or_default()
                );
            }
            (record.name.clone(), record.dataset.clone())
        }
        (None, name) => {
            let run = match name {
                Some(name) => name.clone(),
                None => format!(
                    "{}-{}",
                    config.name,
                    chrono::Utc::now().format("%Y%m%d-%H%M%S")
                ),
            };
            crate::product::check_plain_name("run name", &run)?;
            if runs.join(&run).exists() {
                bail!("run {run} exists: --resume {run} continues it, or choose another name");
            }
            let dataset = args.dataset.clone().context("give --dataset NAME")?;
            (run, dataset)
        }
    };
    Ok(TrainJob {
        run,
        config,
        dataset,
        device: args.device.clone(),
        encoder_weights: args.encoder_weights.as_ref().map(|p| cwd.join(p)),
    })
}

pub fn runs(
    workspace: Option<PathBuf>,
    command: RunsCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dir = workspace_dir(workspace)?.join("runs");
    match command {
        RunsCommand::List => {
            let records = list_runs(&dir)?;
            if json {
                println!("{}", serde_json::to_string(&records)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.config.name.clone(),
                        r.dataset.clone(),
                        format!("{:?}", r.state).to_lowercase(),
                        format!("{}/{}", r.epochs_done, r.config.train.epochs),
                        optional(r.best.as_ref().map(|b| b.epoch)),
                        optional(r.best.as_ref().map(|b| format!("{:.3}", b.score))),
                        r.device.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "run", "config", "dataset", "state", "epochs", "best", "score", "device",
                ],
                &rows,
            );
        }
        RunsCommand::Delete { run } => {
            let mut daemon =
                Daemon::connect(Some(dir.parent().expect("runs/ has a parent").into()))?;
            daemon
                .client
                .call(crate::engine::Request::DeleteRun { name: run.clone() })?;
            if json {
                println!("{}", json!({ "deleted": run }));
            } else {
                println!("run {run} deleted");
            }
        }
        RunsCommand::Show { run } => {
            let run_dir = dir.join(&run);
            let record = RunRecord::read(&run_dir).with_context(|| format!("no run {run}"))?;
            let metrics = read_metrics(&run_dir)?;
            if json {
                println!("{}", json!({ "run": record, "metrics": metrics }));
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "run {} ({}) on {}: {:?}, {} parameters, {} train / {} validation chips, {}",
                record.name,
                record.config.name,
                record.dataset,
                record.state,
                record.parameters,
                record.train_samples,
                record.validation_samples,
                record.device
            );
            if let Some(best) = &record.best {
                println!(
                    "best epoch {} (score {:.4}); inference takes the {} weights",
                    best.epoch,
                    best.score,
                    match record.config.train.keep {
                        KeptWeights::Last => "last epoch's",
                        KeptWeights::Best => "best epoch's",
                    }
                );
            }
            // A run on a GPU also shows the device's memory at each epoch's busiest step.
            let on_gpu = metrics.iter().any(|m| m.gpu_memory.is_some());
            let rows: Vec<Vec<String>> = metrics
                .iter()
                .map(|m| {
                    let (headline, detail) = m.headline();
                    let mut row = vec![
                        m.epoch.to_string(),
                        format!("{:.4}", m.train_loss),
                        optional(m.val_loss.map(|v| format!("{v:.4}"))),
                        optional(headline.map(|v| format!("{v:.3}"))),
                        detail,
                        format!("{:.2e}", m.lr),
                        format!("{:.1}", m.tiles_per_second),
                        format!("{:.1}", m.seconds),
                    ];
                    if on_gpu {
                        row.push(optional(m.gpu_memory.map(|g| g.to_string())));
                    }
                    row
                })
                .collect();
            let [headline, detail] = record.headline_names();
            let mut header = vec![
                "epoch",
                "train loss",
                "val loss",
                headline,
                detail,
                "lr",
                "tiles/s",
                "s",
            ];
            if on_gpu {
                header.push("GPU memory");
            }
            print_table(&header, &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn infer(workspace: Option<PathBuf>, args: InferArgs, json: bool) -> anyhow::Result<ExitCode> {
    let root = workspace_dir(workspace)?;
    let mut daemon = Daemon::connect(Some(root.clone()))?;
    let jobs = infer_jobs(&args, &mut daemon.client, &root, &std::env::current_dir()?)?;
    daemon.run_all_and_print(jobs, json, |result| {
        let head = format!(
            "{} x {} px in {:.1} s with the {} weights",
            result["width"],
            result["height"],
            result["seconds"].as_f64().unwrap_or_default(),
            result["weights"].as_str().unwrap_or_default(),
        );
        let path = |key: &str| result[key].as_str().unwrap_or_default().to_string();
        if result["detections"].is_string() {
            let craters = result["craters"]
                .as_str()
                .map(|c| format!(", craters {c}"))
                .unwrap_or_default();
            format!(
                "{head}: detections {}{craters}; objects per class {}",
                path("detections"),
                result["objects"]
            )
        } else {
            format!(
                "{head}: mask {}, overlay {}; pixels per class {}",
                path("mask"),
                path("overlay"),
                result["class_pixels"]
            )
        }
    })
}

/// What `--fetch` downloads before an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FetchFirst {
    Browse,
    /// The data file (HiRISE RDR JP2, CTX EDR IMG).
    Rdr,
}

/// The jobs `areo infer` asks for (the dashboard's palette and forms too): a download of the
/// product's image when `--fetch` asks for one it lacks, then the inference, which waits
/// for it. A catalog product's files are looked up through the daemon.
pub fn infer_jobs(
    args: &InferArgs,
    client: &mut Client,
    root: &Path,
    cwd: &Path,
) -> anyhow::Result<Vec<NewJob>> {
    crate::product::check_plain_name("run name", &args.run)?;
    crate::nn::check_device_name(&args.device).map_err(anyhow::Error::msg)?;
    let mut jobs = Vec::new();
    let (image, stem) = match (&args.image, &args.product, args.fetch) {
        (Some(image), ..) => {
            let image = cwd.join(image);
            let stem = image
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            (image, stem)
        }
        (None, Some(pdsid), None) => (
            product_image(client, root, pdsid)?.0,
            pdsid.to_ascii_uppercase(),
        ),
        (None, Some(pdsid), Some(first)) => {
            let pdsid = pdsid.to_ascii_uppercase();
            let (image, download) = image_to_fetch(client, root, &pdsid, first)?;
            jobs.extend(download.map(NewJob::new));
            (image, pdsid)
        }
        (None, None, _) => bail!("give --image FILE or --product PDSID"),
    };
    let out = match &args.out {
        Some(out) => cwd.join(out),
        None => root
            .join("runs")
            .join(&args.run)
            .join("predictions")
            .join(stem),
    };
    let infer = InferJob {
        run: args.run.clone(),
        image,
        out,
        device: args.device.clone(),
        tile: args.tile,
        overlap: args.overlap,
        batch: args.batch,
        probabilities: args.probabilities,
        flips: args.flips,
        weights: args.weights,
        boxes_as: BoxOutputs {
            voc: args.voc,
            yolo: args.yolo,
            threshold: args.box_threshold,
        },
    };
    jobs.push(NewJob {
        after_new: (0..jobs.len()).collect(),
        ..NewJob::new(JobSpec::Infer(infer))
    });
    Ok(jobs)
}

/// The product's image of the kind `first` names, where it is (or will be once downloaded),
/// and the download it needs when it is not complete yet.
fn image_to_fetch(
    client: &mut Client,
    root: &Path,
    pdsid: &str,
    first: FetchFirst,
) -> anyhow::Result<(PathBuf, Option<JobSpec>)> {
    let files = client.product_files(pdsid)?;
    let kind = match first {
        FetchFirst::Browse => FetchKind::Browse,
        FetchFirst::Rdr => FetchKind::Rdr,
    };
    let file = files.iter().find(|f| kind.wants(f)).with_context(|| {
        let what = match first {
            FetchFirst::Browse => "browse image",
            FetchFirst::Rdr => "data file",
        };
        format!("{pdsid} lists no {what} to fetch")
    })?;
    let image = root.join(local_path(pdsid, &file.name));
    let download = (file.state != FileState::Complete).then(|| JobSpec::Fetch {
        pdsids: vec![pdsid.to_string()],
        kinds: vec![kind],
        parallel: 2,
    });
    Ok((image, download))
}

pub fn eval(workspace: Option<PathBuf>, args: EvalArgs, json: bool) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    if args.detections.is_some() {
        let request = detection_request(&args, &cwd)?;
        // A named evaluation is kept in the workspace (by its daemon, which owns it).
        let report = match &request.name {
            None => request.run()?,
            Some(_) => {
                let mut daemon = Daemon::connect(workspace)?;
                let job = daemon.run_job(JobSpec::EvalDetections(request), json)?;
                match job.result {
                    Some(result) => serde_json::from_value(result)?,
                    None => bail!(job_failure(&job)),
                }
            }
        };
        print_detections(&report, json);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(found) = &args.found {
        let request = CraterListRequest {
            truth: cwd.join(&args.truth),
            found: cwd.join(found),
            region: args
                .region
                .as_deref()
                .map(|text| parse_box("--box", text))
                .transpose()?,
            min_score: args.threshold,
        };
        let report = request.run()?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            let s = &report.craters;
            println!(
                "craters (PyCDA rule, 0.4; found with score >= {}): {} true, {} predicted, {} matched; P {:.3} R {:.3} F1 {:.3}",
                report.min_score, s.truth, s.predicted, s.matched, s.precision, s.recall, s.f1
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let request = eval_request(&args, &cwd)?;
    // A named evaluation is kept in the workspace (by its daemon, which owns it).
    let report = match &request.name {
        None => request.run()?,
        Some(_) => {
            let mut daemon = Daemon::connect(workspace)?;
            let job = daemon.run_job(JobSpec::Eval(request), json)?;
            match job.result {
                Some(result) => serde_json::from_value(result)?,
                None => bail!(job_failure(&job)),
            }
        }
    };
    if let Some(path) = &args.csv {
        let mut text = String::from("class,precision,recall,f1,iou,support,predicted\n");
        for s in &report.pixel.per_class {
            text.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                s.class, s.precision, s.recall, s.f1, s.iou, s.support, s.predicted
            ));
        }
        crate::fsio::write_atomically(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The kept evaluation `areo eval --name` asks for, as a daemon job (the dashboard's palette
/// and form): a detector's results or a predicted mask against the truth.
pub fn eval_job(args: &EvalArgs, cwd: &Path) -> anyhow::Result<JobSpec> {
    if args.name.is_none() {
        bail!("name the evaluation (--name NAME) to keep it in the workspace's Metrics");
    }
    if args.found.is_some() {
        bail!("a crater list scored with --found is printed, not kept: run it in a shell");
    }
    if args.csv.is_some() {
        bail!("--csv writes a file from the command line's own process: run it in a shell");
    }
    Ok(match args.detections {
        Some(_) => JobSpec::EvalDetections(detection_request(args, cwd)?),
        None => JobSpec::Eval(eval_request(args, cwd)?),
    })
}

fn detection_request(args: &EvalArgs, cwd: &Path) -> anyhow::Result<DetectionRequest> {
    let results = args
        .detections
        .as_ref()
        .context("give --detections RESULTS")?;
    Ok(DetectionRequest {
        name: args.name.clone(),
        run: args.run.clone(),
        truth: cwd.join(&args.truth),
        truth_format: args.truth_from.map(|format| TruthFormat {
            format: format.into(),
            size: args.size,
        }),
        results: cwd.join(results),
        threshold: args.threshold,
    })
}

fn eval_request(args: &EvalArgs, cwd: &Path) -> anyhow::Result<EvalRequest> {
    let predicted = args
        .predicted
        .as_ref()
        .context("give --predicted MASK (or --detections RESULTS)")?;
    let blobs = args.probabilities.as_ref().map(|map| BlobScoring {
        probabilities: cwd.join(map),
        search: BlobSearch {
            min_diameter: args.diameters.0,
            max_diameter: args.diameters.1,
            contrast: args.contrast,
        },
    });
    Ok(EvalRequest {
        name: args.name.clone(),
        truth: cwd.join(&args.truth),
        predicted: cwd.join(predicted),
        classes: args.classes,
        ignore: args.ignore,
        region: args
            .region
            .as_deref()
            .map(|text| parse_box("--box", text))
            .transpose()?,
        craters: args.craters.as_ref().map(|list| CraterScoring {
            list: cwd.join(list),
            class: args.crater_class,
            fill: args.fill,
            min_pixels: args.min_pixels,
            blobs,
            found_out: args.found_craters.as_ref().map(|path| cwd.join(path)),
        }),
        run: args.run.clone(),
    })
}

/// The report as tables: per-class scores, the confusion matrix, objects and craters.
pub fn print_report(report: &EvalReport) {
    let pixel = &report.pixel;
    let [bx, by, bw, bh] = report.region;
    println!(
        "{} pixels scored ({bw} x {bh} at {bx},{by}); accuracy {:.4}, mean IoU {:.4}, mean F1 {:.4}",
        pixel.scored, pixel.accuracy, pixel.mean_iou, pixel.mean_f1
    );
    let rows: Vec<Vec<String>> = pixel
        .per_class
        .iter()
        .map(|s| {
            vec![
                s.class.to_string(),
                format!("{:.4}", s.precision),
                format!("{:.4}", s.recall),
                format!("{:.4}", s.f1),
                format!("{:.4}", s.iou),
                s.support.to_string(),
                s.predicted.to_string(),
            ]
        })
        .collect();
    print_table(&CLASS_SCORE_COLUMNS, &rows);
    println!("confusion (rows: truth, columns: predicted)");
    let rows: Vec<Vec<String>> = pixel
        .confusion
        .iter()
        .enumerate()
        .map(|(truth, row)| {
            std::iter::once(truth.to_string())
                .chain(row.iter().map(u64::to_string))
                .collect()
        })
        .collect();
    let header: Vec<String> = std::iter::once("truth".to_string())
        .chain((0..report.classes).map(|c| c.to_string()))
        .collect();
    print_table(
        &header.iter().map(String::as_str).collect::<Vec<_>>(),
        &rows,
    );
    for ObjectScores { class, scores: s } in &report.objects {
        println!(
            "objects of class {class} (IoU >= 0.5): {} true, {} predicted, {} matched; P {:.3} R {:.3} F1 {:.3}",
            s.truth, s.predicted, s.matched, s.precision, s.recall, s.f1
        );
    }
    if let Some(s) = &report.craters {
        let found_as = match &report.crater_blobs {
            None => "mask components".to_string(),
            Some(b) => format!(
                "discs of contrast >= {} in {}",
                b.search.contrast,
                b.probabilities.display()
            ),
        };
        println!(
            "craters (PyCDA rule, 0.4; {found_as}): {} true, {} predicted, {} matched; P {:.3} R {:.3} F1 {:.3}",
            s.truth, s.predicted, s.matched, s.precision, s.recall, s.f1
        );
    }
}

/// A detection report as pycocotools prints its summary, then the classes at the threshold
/// and the confusion matrix; `--json` prints the report.
fn print_detections(report: &DetectionReport, json: bool) {
    if json {
        println!("{}", json!(report));
        return;
    }
    let lines = [
        ("AP", "IoU=0.50:0.95", "all"),
        ("AP50", "IoU=0.50", "all"),
        ("AP75", "IoU=0.75", "all"),
        ("APs", "IoU=0.50:0.95", "small"),
        ("APm", "IoU=0.50:0.95", "medium"),
        ("APl", "IoU=0.50:0.95", "large"),
        ("AR1", "IoU=0.50:0.95, 1 detection", "all"),
        ("AR10", "IoU=0.50:0.95, 10 detections", "all"),
        ("AR100", "IoU=0.50:0.95, 100 detections", "all"),
        ("ARs", "IoU=0.50:0.95", "small"),
        ("ARm", "IoU=0.50:0.95", "medium"),
        ("ARl", "IoU=0.50:0.95", "large"),
    ];
    let rows: Vec<Vec<String>> = lines
        .iter()
        .filter_map(|(key, iou, area)| {
            let value = report.metrics.get(*key)?;
            Some(vec![
                key.to_string(),
                iou.to_string(),
                area.to_string(),
                format!("{value:.4}"),
            ])
        })
        .collect();
    print_table(&["metric", "over", "area", "value"], &rows);
    println!(
        "classes (IoU >= 0.5, score >= {}; AP over IoU 0.50:0.95)",
        report.threshold
    );
    let rows: Vec<Vec<String>> = report
        .classes
        .iter()
        .map(|c| {
            vec![
                c.class.clone(),
                c.category_id.to_string(),
                optional(c.ap.map(|ap| format!("{ap:.4}"))),
                c.true_positives.to_string(),
                c.false_positives.to_string(),
                c.false_negatives.to_string(),
                format!("{:.4}", c.precision),
                format!("{:.4}", c.recall),
                format!("{:.4}", c.f1),
            ]
        })
        .collect();
    print_table(
        &[
            "class",
            "id",
            "AP",
            "TP",
            "FP",
            "FN",
            "precision",
            "recall",
            "F1",
        ],
        &rows,
    );
    println!("confusion (rows: truth, columns: predicted; background: missed or false)");
    let rows: Vec<Vec<String>> = report
        .confusion
        .iter()
        .zip(&report.confusion_names)
        .map(|(row, name)| {
            std::iter::once(name.clone())
                .chain(row.iter().map(u64::to_string))
                .collect()
        })
        .collect();
    let header: Vec<&str> = std::iter::once("truth")
        .chain(report.confusion_names.iter().map(String::as_str))
        .collect();
    print_table(&header, &rows);
}

/// `MIN,MAX` diameters in pixels, 0 < MIN <= MAX.
fn parse_diameters(text: &str) -> Result<(f64, f64), String> {
    let parsed = text
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((low, high)) if low > 0.0 && low <= high && high.is_finite() => Ok((low, high)),
        _ => Err("expected MIN,MAX in pixels with 0 < MIN <= MAX".into()),
    }
}

fn workspace_dir(workspace: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(Workspace::locate(workspace)?)?)
}
