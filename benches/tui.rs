//! Time per frame of the dashboard: the catalog view over 100,000 products (scrolled to the
//! middle, filtered and not), and the runs view with 10,000 live step losses (smoothed) over
//! 1,000 epochs of metrics, drawn on a 200 x 60 `TestBackend` as the terminal loop draws.
//!
//! `cargo bench --bench tui`

use areo::catalog::ProductRow;
use areo::engine::job::{JobRecord, JobSpec, JobState, NewJob};
use areo::engine::protocol::Event;
use areo::nn::config::RunConfig;
use areo::nn::run::{EpochMetrics, RunRecord};
use areo::tui::app::{App, Update, View};
use areo::tui::keymap::Keymap;
use areo::tui::views;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use std::time::Instant;

const REPLY: &[u8] = include_bytes!("../data/ode/ESP_013951_1955_RED.json");

fn frame_ms(app: &App, frames: u32) -> f64 {
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    terminal.draw(|frame| views::draw(frame, app)).unwrap();
    let started = Instant::now();
    for _ in 0..frames {
        terminal.draw(|frame| views::draw(frame, app)).unwrap();
    }
    started.elapsed().as_secs_f64() * 1000.0 / frames as f64
}

fn main() {
    let reply = areo::ode::parse_reply(REPLY).unwrap();
    let product = reply.products[0].product.clone();
    let rows: Vec<ProductRow> = (0..100_000)
        .map(|i| {
            let mut row = ProductRow::not_stored(product.clone());
            row.product.pdsid = format!("ESP_{:06}_{:04}_RED", 10_000 + i, i % 3600);
            row
        })
        .collect();
    let mut app = App::new("/bench".into(), Keymap::default());
    app.update(Update::Products(rows));
    app.view = View::Catalog;
    for _ in 0..5000 {
        app.key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    println!(
        "catalog, 100,000 products, row 50,000: {:.3} ms/frame",
        frame_ms(&app, 50)
    );
    app.key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE));
    for c in "_0042_".chars() {
        app.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    println!(
        "catalog, 100,000 products filtered to {}: {:.3} ms/frame",
        app.visible_products().len(),
        frame_ms(&app, 50)
    );

    let config = RunConfig::read(std::path::Path::new("models/unet-tiny.toml")).unwrap();
    let record: RunRecord = serde_json::from_value(serde_json::json!({
        "name": "long", "config": config.clone(), "dataset": "d", "device": "cpu",
        "normalisation": {"mean": 0.5, "std": 0.2}, "state": "running", "parameters": 1,
        "train_samples": 1, "validation_samples": 1, "epochs_done": 1000, "step": 10_000,
        "best": null, "error": null, "started": "", "updated": ""
    }))
    .unwrap();
    let epochs: Vec<EpochMetrics> = (1..=1000)
        .map(|epoch| EpochMetrics {
            epoch,
            step: epoch as u64 * 10,
            train_loss: 1.0 / epoch as f64,
            train_losses: Default::default(),
            val_loss: Some(1.2 / epoch as f64),
            lr: 1e-3,
            iou: vec![0.9, 0.3],
            f1: vec![0.95, 0.4],
            mean_iou: Some(0.6),
            pixel_accuracy: Some(0.9),
            scores: Default::default(),
            seconds: 10.0,
            tiles_per_second: 5.0,
            gpu_memory: None,
        })
        .collect();
    let mut job = JobRecord::new(
        1,
        &NewJob::new(JobSpec::Train(areo::pipeline::train::TrainJob {
            run: "long".into(),
            config,
            dataset: "d".into(),
            device: "cpu".into(),
            encoder_weights: None,
        })),
        Vec::new(),
    );
    job.state = JobState::Running;
    app.update(Update::Jobs(vec![job]));
    app.update(Update::Runs(vec![record.clone()]));
    app.update(Update::Run(Box::new(record), epochs));
    for step in 1..=10_000u64 {
        app.update(Update::Event(Event::Metric {
            job: 1,
            name: "train.loss".into(),
            step,
            value: 1.0 / (step as f64).sqrt(),
        }));
    }
    app.view = View::Runs;
    println!(
        "runs, 1,000 epochs per epoch: {:.3} ms/frame",
        frame_ms(&app, 50)
    );
    app.per_step = true;
    println!(
        "runs, 10,000 live step losses, smoothed: {:.3} ms/frame",
        frame_ms(&app, 50)
    );
}
