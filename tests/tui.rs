//! The dashboard's views drawn on a ratatui `TestBackend` from realistic state, compared
//! with the snapshots in `tests/snapshots/` (review changes with `cargo insta review`, or
//! read the `.snap.new` files): every view, empty states, an error, a long table, a narrow
//! terminal, the help and the detail popups; and keys doing what the help says.

use areo::catalog::ProductRow;
use areo::engine::job::{JobSpec, JobState};
use areo::engine::protocol::Event;
use areo::lineage::{Artifact, ArtifactKind, Input};
use areo::nn::config::RunConfig;
use areo::nn::run::EpochMetrics;
use areo::nn::DeviceMemory;
use areo::pipeline::detections::{ClassDetections, DetectionReport};
use areo::pipeline::evaluate::KeptReport;
use areo::product::FileState;
use areo::tui::app::{Command, Mode, ProductDetail, Update, View};
use areo::tui::forms::FormKind;
use areo::tui::keymap::Keymap;
use ratatui::crossterm::event::KeyCode;

#[path = "support/tui_state.rs"]
mod state;

use state::*;

#[test]
fn every_view_draws_realistic_state_at_80_by_24() {
    let mut app = busy_app();
    for view in View::ALL {
        app.view = view;
        insta::assert_snapshot!(
            format!("view_{}", view.title().to_lowercase()),
            render(&app, 80, 24)
        );
    }
}

/// An SSD run: per-epoch AP50, AP and the class and box parts of its loss; and its kept
/// detection report: COCO's figures, AP and P/R/F1 per class, the confusion with background.
#[test]
fn a_detector_shows_its_ap_loss_parts_and_detection_report() {
    let mut app = busy_app();
    let mut run = run_record("ssd-craters", "finished", 3);
    run.config = RunConfig::read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/ssd-craters.toml"
    )))
    .unwrap();
    let metrics: Vec<EpochMetrics> = epochs(3)
        .into_iter()
        .map(|m| {
            let e = m.epoch as f64;
            EpochMetrics {
                iou: Vec::new(),
                f1: Vec::new(),
                mean_iou: None,
                pixel_accuracy: None,
                train_losses: [("box".to_string(), 0.4 / e), ("class".to_string(), 0.3 / e)]
                    .into_iter()
                    .collect(),
                scores: [("AP".to_string(), 0.1 * e), ("AP50".to_string(), 0.2 * e)]
                    .into_iter()
                    .collect(),
                ..m
            }
        })
        .collect();
    app.update(Update::Runs(vec![run.clone()]));
    app.update(Update::Run(Box::new(run.clone()), metrics));
    app.view = View::Runs;
    insta::assert_snapshot!("detector_runs", render(&app, 100, 24));

    // Live, per step: the loss and its parts as the training job publishes them.
    let mut jobs = demo_jobs();
    jobs.push(job(
        9,
        JobSpec::Train(areo::pipeline::train::TrainJob {
            run: "ssd-craters".into(),
            config: run.config.clone(),
            dataset: "demo-craters".into(),
            device: "cpu".into(),
            encoder_weights: None,
        }),
        JobState::Running,
    ));
    app.update(Update::Jobs(jobs));
    for step in 1..=30u64 {
        let fall = 1.0 / (step as f64).sqrt();
        for (name, value) in [
            ("train.loss", 1.5 * fall),
            ("train.loss.class", 0.5 * fall),
            ("train.loss.box", fall),
        ] {
            app.update(Update::Event(Event::Metric {
                job: 9,
                name: name.into(),
                step,
                value,
            }));
        }
    }
    app.key(key('t'));
    let text = render(&app, 100, 24);
    assert!(
        text.contains("class loss") && text.contains("box loss"),
        "{text}"
    );
    insta::assert_snapshot!("detector_runs_live", text);

    let figures = [
        ("AP", 0.412),
        ("AP50", 0.733),
        ("AP75", 0.38),
        ("APs", 0.4),
        ("APm", 0.51),
        ("APl", -1.0),
        ("AR1", 0.02),
        ("AR10", 0.19),
        ("AR100", 0.6),
        ("ARs", 0.58),
        ("ARm", 0.7),
        ("ARl", -1.0),
    ];
    let detections = DetectionReport {
        name: Some("ssd-test".into()),
        run: Some("ssd-craters".into()),
        truth: "/home/ada/areo/truth/annotations.json".into(),
        results: "/home/ada/areo/found/detections.json".into(),
        metrics: figures.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        classes: vec![ClassDetections {
            class: "crater".into(),
            category_id: 1,
            ap: Some(0.412),
            true_positives: 37,
            false_positives: 2,
            false_negatives: 13,
            precision: 37.0 / 39.0,
            recall: 37.0 / 50.0,
            f1: 74.0 / 89.0,
        }],
        threshold: 0.5,
        confusion_names: vec!["crater".into(), "background".into()],
        confusion: vec![vec![37, 13], vec![2, 0]],
    };
    app.update(Update::Evals(vec![
        KeptReport::Pixels(report()),
        KeptReport::Detections(detections),
    ]));
    app.view = View::Metrics;
    app.key(key('j'));
    insta::assert_snapshot!("detector_metrics", render(&app, 100, 24));
}

#[test]
fn empty_workspaces_say_what_to_do() {
    let mut app = app();
    for view in View::ALL {
        app.view = view;
        insta::assert_snapshot!(
            format!("empty_{}", view.title().to_lowercase()),
            render(&app, 80, 12)
        );
    }
}

#[test]
fn a_lost_daemon_and_a_refused_request_show_in_red_words() {
    let mut app = busy_app();
    app.update(Update::Error("no job 99".into()));
    app.update(Update::Disconnected(
        "no areo daemon is running for workspace /home/ada/areo".into(),
    ));
    insta::assert_snapshot!(render(&app, 100, 8));
}

#[test]
fn a_long_catalog_keeps_the_selection_on_screen() {
    let mut app = busy_app();
    app.update(Update::Products(products(100_000)));
    app.key(key('1'));
    for _ in 0..3 {
        app.key(code(KeyCode::PageDown));
    }
    app.key(key('j'));
    let text = render(&app, 100, 16);
    assert!(
        text.contains("Catalog: 100000 of 100000 products"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    app.key(key('G'));
    let text = render(&app, 100, 16);
    assert!(
        text.contains("ESP_113950_1955_RED"),
        "the last product shows: {text}"
    );
}

#[test]
fn a_narrow_terminal_drops_columns_and_nothing_panics() {
    let mut app = busy_app();
    app.view = View::Jobs;
    insta::assert_snapshot!(render(&app, 60, 14));
    for view in View::ALL {
        app.view = view;
        for (width, height) in [(1, 1), (10, 3), (20, 5), (40, 10), (200, 60)] {
            render(&app, width, height);
        }
    }
}

#[test]
fn the_filter_narrows_the_jobs_and_esc_clears_it() {
    let mut app = busy_app();
    app.key(key('2'));
    app.key(key('/'));
    for c in "import".chars() {
        app.key(key(c));
    }
    assert_eq!(app.mode, Mode::Filter);
    app.key(code(KeyCode::Enter));
    assert_eq!(app.visible_jobs().len(), 2);
    let text = render(&app, 80, 10);
    assert!(text.contains("Jobs: 2 of 5"), "{text}");
    assert!(text.contains("filter: import"), "{text}");
    app.key(code(KeyCode::Esc));
    assert_eq!(app.visible_jobs().len(), 5);
}

#[test]
fn keys_in_the_jobs_view_ask_the_daemon_for_the_selected_job() {
    let mut app = busy_app();
    app.key(key('2'));
    // Newest first: 5 (queued), 4 (running), ...
    app.key(key('j'));
    assert_eq!(app.key(key('c')), vec![Command::Cancel(4)]);
    app.key(key('j'));
    app.key(key('j'));
    assert_eq!(app.key(key('r')), vec![Command::Retry(2)]);
    assert_eq!(app.key(code(KeyCode::Enter)), vec![Command::Job(2)]);
    assert_eq!(app.mode, Mode::Detail);
    insta::assert_snapshot!(render(&app, 80, 14));
    app.key(code(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn the_palette_switches_views_and_names_unknown_commands() {
    let mut app = busy_app();
    app.key(key(':'));
    for c in "metrics".chars() {
        app.key(key(c));
    }
    app.key(code(KeyCode::Enter));
    assert_eq!(app.view, View::Metrics);
    // Anything else is a command line for the CLI's parser, which answers through the feed.
    app.key(key(':'));
    for c in "launch --now".chars() {
        app.key(key(c));
    }
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(vec!["launch".into(), "--now".into()])]
    );
    app.update(Update::Planned(Err(
        "unrecognized subcommand 'launch'".into()
    )));
    assert_eq!(app.view, View::Metrics);
    let text = render(&app, 80, 24);
    assert!(text.contains("unrecognized subcommand 'launch'"), "{text}");
    app.key(key('n'));
    assert!(
        render(&app, 80, 24).contains("0.978"),
        "normalised confusion shows shares"
    );
    app.key(key(':'));
    app.key(key('q'));
    app.key(code(KeyCode::Enter));
    assert!(app.quit);
}

#[test]
fn the_help_lists_the_live_keymap() {
    let mut app = busy_app();
    app.keymap = Keymap::with_overrides("keymap.toml", "cancel-job = \"x\"").unwrap();
    app.key(key('2'));
    app.key(key('?'));
    assert_eq!(app.mode, Mode::Help);
    let text = render(&app, 80, 30);
    assert!(text.contains("x  cancel the job"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn live_step_losses_feed_the_runs_chart_and_the_progress_gives_a_rate() {
    let mut app = busy_app();
    app.key(key('3'));
    app.key(key('t'));
    for step in 1..=40u64 {
        app.update(Update::Event(Event::Metric {
            job: 4,
            name: "train.loss".into(),
            step,
            value: 1.0 / (step as f64).sqrt(),
        }));
    }
    let text = render(&app, 80, 24);
    assert!(text.contains("train loss (smoothed)"), "{text}");
    assert!(text.contains("step (live"), "{text}");
    insta::assert_snapshot!(text);

    app.key(key('2'));
    app.now = at(30, 0);
    app.update(Update::Event(Event::Progress {
        job: 4,
        label: "training".into(),
        done: 150,
        total: 330,
    }));
    app.now = at(30, 10);
    app.update(Update::Event(Event::Progress {
        job: 4,
        label: "training".into(),
        done: 180,
        total: 330,
    }));
    let text = render(&app, 100, 12);
    assert!(text.contains("3.0/s"), "30 steps in 10 s: {text}");
    assert!(text.contains("50s"), "150 steps left at 3/s: {text}");
}

#[test]
fn a_run_on_a_gpu_shows_the_device_memory_of_its_last_epoch() {
    let mut app = busy_app();
    app.key(key('3'));
    assert!(!render(&app, 80, 24).contains("GPU"), "a CPU run has none");
    let mut run = run_record("demo-unet-tiny", "running", 14);
    run.device = "cuda:0".into();
    let total = 150_754_820_096; // an H200's 140.4 GiB
    let metrics = epochs(14)
        .into_iter()
        .map(|m| EpochMetrics {
            gpu_memory: Some(DeviceMemory {
                used: (10 + m.epoch as u64) << 28,
                total,
            }),
            ..m
        })
        .collect();
    app.update(Update::Runs(vec![
        run.clone(),
        run_record("tiny-lr1e-2", "finished", 15),
    ]));
    app.update(Update::Run(Box::new(run), metrics));
    // The 14th epoch's busiest step: 24 x 2^28 bytes = 6 GiB.
    let text = render(&app, 80, 24);
    assert!(text.contains("· cuda:0 ·"), "{text}");
    assert!(text.contains("GPU 6.0/140.4 GiB"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_search_form_queues_an_ode_search_and_names_what_is_wrong() {
    let mut app = busy_app();
    app.ode_url = "http://127.0.0.1:9/ode/".into();
    app.key(key('1'));
    app.key(key('s'));
    assert!(matches!(&app.mode, Mode::Form(form) if form.kind == FormKind::Search));
    // To the box field: W,E,S,N.
    for _ in 0..3 {
        app.key(code(KeyCode::Tab));
    }
    for c in "359.5,0.5,-0.5,0.5".chars() {
        app.key(key(c));
    }
    insta::assert_snapshot!(render(&app, 80, 16));
    let commands = app.key(code(KeyCode::Enter));
    let [Command::Submit(jobs)] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    let JobSpec::Search {
        ode_url,
        query,
        max,
        ..
    } = &jobs[0].spec
    else {
        panic!("{jobs:?}");
    };
    assert_eq!(ode_url, "http://127.0.0.1:9/ode/");
    assert_eq!(*max, Some(100));
    let params = query.params().unwrap();
    for (name, value) in [
        ("ihid", "MRO"),
        ("iid", "HIRISE"),
        ("pt", "RDRV11"),
        ("westernlon", "359.5"),
        ("minlat", "-0.5"),
    ] {
        assert!(
            params.iter().any(|(n, v)| *n == name && v == value),
            "{name}={value} in {params:?}"
        );
    }
    assert_eq!(app.mode, Mode::Normal);

    app.key(key('s'));
    for _ in 0..6 {
        app.key(code(KeyCode::Backspace));
    }
    for c in "VIKING".chars() {
        app.key(key(c));
    }
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    assert!(
        matches!(&app.mode, Mode::Form(form) if form.kind == FormKind::Search),
        "the form stays open"
    );
    let text = render(&app, 80, 16);
    insta::assert_snapshot!("search_form_error", text);
    assert!(
        text.contains("which spacecraft carries \"VIKING\"?"),
        "{text}"
    );
    app.key(code(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn catalog_and_runs_keys_queue_tiling_and_compare_runs() {
    let mut app = busy_app();
    app.key(key('1'));
    app.key(key('j'));
    assert_eq!(
        app.key(key('t')),
        vec![Command::TileProduct("ESP_013952_1955_RED".into())]
    );
    app.key(key('3'));
    assert_eq!(
        app.key(key('m')),
        vec![Command::Runs(
            Some("demo-unet-tiny".into()),
            Some("demo-unet-tiny".into())
        )]
    );
    assert_eq!(
        app.key(key('j')),
        vec![Command::Runs(
            Some("tiny-lr1e-2".into()),
            Some("demo-unet-tiny".into())
        )]
    );
    let mut longer = epochs(15);
    for m in &mut longer {
        m.train_loss *= 0.9;
        m.val_loss = m.val_loss.map(|v| v * 0.95);
    }
    app.update(Update::Run(
        Box::new(run_record("tiny-lr1e-2", "finished", 15)),
        longer,
    ));
    let text = render(&app, 80, 24);
    assert!(text.contains("vs demo-unet-tiny (dots)"), "{text}");
    insta::assert_snapshot!(text);
    // Pressing it on the compared run itself stops comparing.
    app.key(key('k'));
    assert_eq!(
        app.key(key('m')),
        vec![Command::Runs(Some("demo-unet-tiny".into()), None)]
    );
}

/// The product popup: its fields, its files, and what the pipeline made from it.
#[test]
fn the_product_detail_lists_its_files_and_what_was_made_from_it() {
    let mut app = app();
    app.view = View::Catalog;
    app.update(Update::Products(products(3)));
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Product("ESP_013951_1955_RED".into())]
    );
    assert_eq!(app.mode, Mode::Detail);
    let reply = areo::ode::parse_reply(REPLY).unwrap();
    let entry = &reply.products[0];
    let mut files = entry.files.clone().unwrap();
    files.truncate(4);
    files[0].state = FileState::Complete;
    let created = areo::product::UtcTime::parse("2026-11-27T09:12:00").unwrap();
    let made = |kind, name: &str, job, inputs| Artifact {
        kind,
        name: name.into(),
        path: format!("/home/ada/areo/{name}").into(),
        created,
        job: Some(job),
        inputs,
        summary: "{}".into(),
    };
    let product = Input::Product("ESP_013951_1955_RED".into());
    app.update(Update::Product(Box::new(ProductDetail {
        row: ProductRow::not_stored(entry.product.clone()),
        files,
        made: vec![
            made(
                ArtifactKind::Prediction,
                "runs/craters/predictions/ESP_013951_1955_RED",
                12,
                vec![product.clone()],
            ),
            made(
                ArtifactKind::TileSet,
                "tiles/ESP_013951_1955_RED",
                7,
                vec![product],
            ),
        ],
    })));
    insta::assert_snapshot!("product_detail", render(&app, 100, 24));
}
