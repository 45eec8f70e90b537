//! Realistic dashboard state for the TestBackend tests: a daemon status, a catalog, the
//! demo's jobs and runs, an evaluation, and the helpers that draw and type.
#![allow(dead_code)]

use areo::catalog::ProductRow;
use areo::engine::job::{JobProgress, JobRecord, JobSpec, JobState, NewJob, Probe};
use areo::engine::protocol::DaemonStatus;
use areo::metrics::{ClassScores, DetectionScores};
use areo::nn::config::RunConfig;
use areo::nn::run::{EpochMetrics, RunRecord};
use areo::pipeline::evaluate::{EvalReport, KeptReport, ObjectScores, PixelScores};
use areo::product::FileState;
use areo::tui::app::{App, Update};
use areo::tui::keymap::Keymap;
use areo::tui::views;
use chrono::{DateTime, TimeZone, Utc};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::json;

pub const REPLY: &[u8] = include_bytes!("../../data/ode/ESP_013951_1955_RED.json");

pub fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, minute, second)
        .unwrap()
}

pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| views::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..height {
        let line: String = (0..width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

pub fn code(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn app() -> App {
    let mut app = App::new("/home/ada/areo".into(), Keymap::default());
    app.now = at(30, 0);
    app.update(Update::Status(DaemonStatus {
        pid: 4242,
        version: "0.1.0".into(),
        workspace: "/home/ada/areo".into(),
        started: at(0, 0),
        resources: Default::default(),
        in_use: Default::default(),
        jobs: [(JobState::Running, 1), (JobState::Queued, 2)]
            .into_iter()
            .collect(),
        gpus: Vec::new(),
    }));
    app
}

/// The sample product, and `n - 1` made-up neighbours of it.
pub fn products(n: usize) -> Vec<ProductRow> {
    let reply = areo::ode::parse_reply(REPLY).unwrap();
    let product = reply.products[0].product.clone();
    (0..n)
        .map(|i| {
            let mut row = ProductRow::not_stored(product.clone());
            if i > 0 {
                row.product.pdsid = format!("ESP_{:06}_1955_RED", 13951 + i);
                row.product.center_latitude = product.center_latitude.map(|v| v + i as f64 * 0.01);
            }
            if i % 3 == 1 {
                row.state = FileState::Complete;
                row.bytes_on_disk = 1_234_567 * i as u64;
            }
            row
        })
        .collect()
}

pub fn job(id: u64, spec: JobSpec, state: JobState) -> JobRecord {
    let mut record = JobRecord::new(id, &NewJob::new(spec), Vec::new());
    record.created = at(id as u32, 0);
    record.state = state;
    if state != JobState::Queued {
        record.started = Some(at(id as u32, 5));
        record.attempts = 1;
    }
    if state.is_final() {
        record.finished = Some(at(id as u32 + 1, 0));
    }
    record
}

pub fn demo_jobs() -> Vec<JobRecord> {
    let config = tiny_config();
    let train = JobSpec::Train(areo::pipeline::train::TrainJob {
        run: "demo-unet-tiny".into(),
        config,
        dataset: "demo-craters".into(),
        device: "cpu".into(),
        encoder_weights: None,
    });
    let mut running = job(4, train, JobState::Running);
    running.progress = Some(JobProgress {
        label: "training".into(),
        done: 150,
        total: 330,
    });
    let mut failed = job(
        2,
        JobSpec::Import {
            files: vec!["/home/ada/replies/page-9.json".into()],
        },
        JobState::Failed,
    );
    failed.error = Some(
        "page-9.json: product 3 (ESP_0123_RED): Center_latitude \"north\" is not a number".into(),
    );
    vec![
        job(
            1,
            JobSpec::Import {
                files: vec!["/home/ada/areo/demo/ESP_013951_1955_RED.json".into()],
            },
            JobState::Succeeded,
        ),
        failed,
        job(
            3,
            JobSpec::Probe(Probe {
                steps: 3,
                step_ms: 10,
                ..Probe::default()
            }),
            JobState::Cancelled,
        ),
        running,
        job(
            5,
            JobSpec::Probe(Probe {
                steps: 5,
                step_ms: 10,
                ..Probe::default()
            }),
            JobState::Queued,
        ),
    ]
}

pub fn tiny_config() -> RunConfig {
    RunConfig::read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/unet-tiny.toml"
    )))
    .unwrap()
}

pub fn run_record(name: &str, state: &str, epochs_done: usize) -> RunRecord {
    serde_json::from_value(json!({
        "name": name,
        "config": tiny_config(),
        "dataset": "demo-craters",
        "device": "cpu",
        "normalisation": {"mean": 0.4752, "std": 0.2022},
        "state": state,
        "parameters": 513810,
        "train_samples": 42,
        "validation_samples": 4,
        "epochs_done": epochs_done,
        "step": epochs_done * 11,
        "best": {"epoch": 12, "score": 0.5755},
        "error": null,
        "started": "2026-11-27T09:04:05Z",
        "updated": "2026-11-27T09:29:00Z",
    }))
    .unwrap()
}

/// A loss curve that falls as real ones do, with validation above it.
pub fn epochs(n: usize) -> Vec<EpochMetrics> {
    (1..=n)
        .map(|epoch| {
            let e = epoch as f64;
            EpochMetrics {
                epoch,
                step: epoch as u64 * 11,
                train_loss: 0.45 + 0.6 / e,
                train_losses: Default::default(),
                val_loss: Some(0.58 + 0.4 / e),
                lr: 3e-3 * (1.0 - e / 31.0),
                iou: vec![0.95, 0.05 + 0.15 * (1.0 - 1.0 / e)],
                f1: vec![0.97, 0.1 + 0.2 * (1.0 - 1.0 / e)],
                mean_iou: Some(0.5 + 0.075 * (1.0 - 1.0 / e)),
                pixel_accuracy: Some(0.95),
                scores: Default::default(),
                seconds: 11.5,
                tiles_per_second: 3.7,
                gpu_memory: None,
            }
        })
        .collect()
}

pub fn report() -> EvalReport {
    let scores = |class, precision, recall, f1, iou, support, predicted| ClassScores {
        class,
        precision,
        recall,
        f1,
        iou,
        support,
        predicted,
    };
    EvalReport {
        name: Some("demo".into()),
        run: Some("demo-unet-tiny".into()),
        truth: "/home/ada/areo/demo/truth/nanedi-512x320.png".into(),
        predicted: "/home/ada/areo/runs/demo-unet-tiny/predictions/nanedi-512x320/mask.png".into(),
        classes: 2,
        region: [384, 160, 128, 160],
        pixel: PixelScores {
            scored: 20480,
            accuracy: 0.9568,
            mean_iou: 0.5136,
            mean_f1: 0.5547,
            per_class: vec![
                scores(0, 0.9774, 0.9783, 0.9779, 0.9567, 19962, 19980),
                scores(1, 0.1340, 0.1293, 0.1316, 0.0705, 518, 500),
            ],
            confusion: vec![vec![19529, 433], vec![451, 67]],
            confusion_normalised: vec![
                vec![19529.0 / 19962.0, 433.0 / 19962.0],
                vec![451.0 / 518.0, 67.0 / 518.0],
            ],
        },
        objects: vec![ObjectScores {
            class: 1,
            scores: DetectionScores::new(6, 4, 1),
        }],
        craters: Some(DetectionScores::new(5, 4, 2)),
        crater_blobs: None,
    }
}

pub fn busy_app() -> App {
    let mut app = app();
    app.update(Update::Products(products(3)));
    app.update(Update::Jobs(demo_jobs()));
    app.update(Update::Runs(vec![
        run_record("demo-unet-tiny", "running", 14),
        run_record("tiny-lr1e-2", "finished", 15),
    ]));
    app.update(Update::Run(
        Box::new(run_record("demo-unet-tiny", "running", 14)),
        epochs(14),
    ));
    app.update(Update::Evals(vec![KeptReport::Pixels(report())]));
    app.update(Update::Log(vec![
        "2026-11-27T09:00:00.1Z  INFO areo::engine::daemon: daemon 4242 serving /home/ada/areo"
            .into(),
        "2026-11-27T09:02:00.5Z  INFO areo::engine::daemon: job 2 queued: import page-9.json"
            .into(),
        "2026-11-27T09:02:01.0Z ERROR areo::engine::runner: job 2 failed: page-9.json: product 3"
            .into(),
        "2026-11-27T09:03:00.0Z  WARN areo::engine::daemon: client went away mid-frame".into(),
        "2026-11-27T09:03:00.0Z DEBUG areo::engine::daemon: a debug line hidden at INFO".into(),
        "2026-11-27T09:04:05.0Z  INFO areo::engine::runner: job 4 started: train demo-unet-tiny"
            .into(),
    ]));
    app
}
