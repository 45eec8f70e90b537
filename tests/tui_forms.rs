//! The dashboard's forms, palette and questions on a `TestBackend`: each form drawn filled
//! in and with its validation errors beside the fields (insta snapshots), and the command
//! line each one hands to the CLI's planner, word for word.

#[path = "support/tui_state.rs"]
mod state;

use areo::engine::job::{JobSpec, JobState};
use areo::pipeline::dataset::DatasetSummary;
use areo::pipeline::evaluate::KeptReport;
use areo::pipeline::train::InferJob;
use areo::tui::app::{Command, ConfigChoice, Mode, Update, View};
use areo::tui::forms::FormKind;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use state::*;

fn typed(app: &mut areo::tui::app::App, text: &str) {
    for c in text.chars() {
        app.key(key(c));
    }
}

fn clear(app: &mut areo::tui::app::App) {
    app.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
}

fn tab(app: &mut areo::tui::app::App, times: usize) {
    for _ in 0..times {
        app.key(code(KeyCode::Tab));
    }
}

fn words(line: &str) -> Vec<String> {
    line.split(' ').map(String::from).collect()
}

fn form_kind(app: &areo::tui::app::App) -> Option<FormKind> {
    match &app.mode {
        Mode::Form(form) => Some(form.kind),
        _ => None,
    }
}

/// An inference of `run` over the demo's image `stem`, into the run's predictions.
fn infer_spec(run: &str, stem: &str) -> JobSpec {
    JobSpec::Infer(InferJob {
        run: run.into(),
        image: format!("/home/ada/areo/demo/{stem}.png").into(),
        out: format!("/home/ada/areo/runs/{run}/predictions/{stem}").into(),
        device: "cpu".into(),
        tile: None,
        overlap: 32,
        batch: 8,
        probabilities: false,
        flips: false,
        weights: None,
        boxes_as: Default::default(),
    })
}

/// The line the palette holds.
fn palette_text(app: &areo::tui::app::App) -> String {
    match &app.mode {
        Mode::Palette(palette) => palette.text.clone(),
        other => panic!("not typing: {other:?}"),
    }
}

/// The busy dashboard with what forms choose from: two configurations (one that does not
/// read), a dataset, and a finished inference of the demo run.
fn app_with_choices() -> areo::tui::app::App {
    let mut app = busy_app();
    app.update(Update::Configs(vec![
        ConfigChoice {
            path: "models/broken.toml".into(),
            config: Err("models/broken.toml: train.tile is 90: a positive multiple of 32".into()),
        },
        ConfigChoice {
            path: "models/unet-tiny.toml".into(),
            config: Ok(tiny_config()),
        },
    ]));
    app.update(Update::Datasets(vec![DatasetSummary {
        name: "demo-craters".into(),
        created: "2026-11-27T09:03:00Z".into(),
        train: 42,
        validation: 4,
        test: 4,
        tile_sets: vec!["/home/ada/areo/tiles/demo-nanedi".into()],
    }]));
    let mut jobs = demo_jobs();
    jobs.push(job(
        6,
        infer_spec("tiny-lr1e-2", "nanedi-512x320"),
        JobState::Succeeded,
    ));
    jobs.push(job(
        7,
        infer_spec("tiny-lr1e-2", "selection3-384"),
        JobState::Failed,
    ));
    app.update(Update::Jobs(jobs));
    app
}

#[test]
fn the_training_form_starts_a_run_like_the_selected_one_and_checks_every_field() {
    let mut app = app_with_choices();
    app.key(key('3'));
    assert_eq!(
        app.key(key('c')),
        vec![Command::Choices],
        "fresh choices are asked for"
    );
    assert_eq!(form_kind(&app), Some(FormKind::Train));
    // The run's own configuration first, its numbers in the fields, a free name.
    insta::assert_snapshot!("train_form", render(&app, 80, 24));

    // A configuration that does not read says why beside it; the next one refills the
    // numbers from its file.
    app.key(code(KeyCode::Right));
    assert!(render(&app, 80, 24).contains("◂ models/broken.toml ▸ 2/3"));
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "runs/evil");
    tab(&mut app, 1);
    clear(&mut app);
    typed(&mut app, "0");
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "fast");
    assert!(
        app.key(code(KeyCode::Enter)).is_empty(),
        "nothing is queued"
    );
    assert_eq!(
        form_kind(&app),
        Some(FormKind::Train),
        "the form stays open"
    );
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("train_form_errors", text);
    for error in [
        "train.tile is 90",
        "run name \"runs/evil\" is not a safe name",
        "at least 1",
        "a positive number",
    ] {
        assert!(text.contains(error), "{error} in\n{text}");
    }

    // The first wrong field has the focus. Put right: the tiny configuration, a new name,
    // 30 epochs.
    let Mode::Form(form) = &app.mode else {
        panic!("the form is open")
    };
    assert_eq!(form.focus, 0);
    app.key(code(KeyCode::Right));
    assert!(render(&app, 80, 24).contains("◂ models/unet-tiny.toml ▸ 3/3"));
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "tiny-e30");
    tab(&mut app, 1);
    clear(&mut app);
    typed(&mut app, "30");
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "3e-3");
    let commands = app.key(code(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::Plan(words(
            "train --config models/unet-tiny.toml --dataset demo-craters --name tiny-e30 \
             --epochs 30 --batch 8 --lr 3e-3 --seed 42 --device cpu"
        ))]
    );
    // The planner refuses a value: the message lands beside the field it names.
    app.update(Update::Planned(Err(
        "invalid value '3e-3' for '--lr <LR>': not what you meant".into(),
    )));
    let text = render(&app, 80, 24);
    assert!(
        text.contains("3e-3▏  invalid value '3e-3' for '--lr <LR>'"),
        "{text}"
    );
    app.key(code(KeyCode::Enter));
    app.update(Update::Planned(Ok(
        "queued job 9: train tiny-e30 (unet-tiny) on demo-craters [cpu]".into(),
    )));
    assert_eq!(app.mode, Mode::Normal, "queued: the form closes");
    assert!(render(&app, 80, 24).contains("queued job 9: train tiny-e30"));
}

#[test]
fn a_new_run_needs_a_dataset_and_a_name_not_taken() {
    let mut app = app_with_choices();
    app.update(Update::Datasets(Vec::new()));
    app.key(key('3'));
    app.key(key('n'));
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "tiny-lr1e-2");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("train_form_no_dataset", text);
    assert!(text.contains("no dataset yet"), "{text}");
    assert!(
        text.contains("run tiny-lr1e-2 exists: r resumes it"),
        "{text}"
    );
    app.key(code(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn the_inference_form_runs_the_selected_run_over_a_product_or_a_file() {
    let mut app = app_with_choices();
    app.key(key('3'));
    app.key(key('j'));
    app.key(key('i'));
    assert_eq!(form_kind(&app), Some(FormKind::Infer));
    insta::assert_snapshot!("infer_form", render(&app, 80, 24));
    // The best epoch's weights, over an image file, mirrored.
    tab(&mut app, 1);
    app.key(code(KeyCode::Right));
    app.key(code(KeyCode::Right));
    tab(&mut app, 1);
    app.key(code(KeyCode::Left));
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("infer_form_errors", text);
    assert!(text.contains("which image?"), "{text}");
    typed(&mut app, "scenes/site 3.png");
    tab(&mut app, 1);
    app.key(key(' '));
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(vec![
            "infer".into(),
            "--run".into(),
            "tiny-lr1e-2".into(),
            "--weights".into(),
            "best".into(),
            "--image".into(),
            "scenes/site 3.png".into(),
            "--flips".into(),
            "--device".into(),
            "cpu".into(),
        ])]
    );

    // From the catalog's products: the first one with files here.
    app.update(Update::Planned(Ok("queued job 10".into())));
    app.key(key('i'));
    tab(&mut app, 2);
    let Mode::Form(form) = &app.mode else {
        panic!("the form is open")
    };
    let product = form.fields[2].value.clone();
    assert_ne!(product, "an image file");
    let commands = app.key(code(KeyCode::Enter));
    let [Command::Plan(line)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert_eq!(line[3..5], ["--product".to_string(), product]);
}

#[test]
fn the_evaluation_form_scores_a_finished_prediction_under_a_name() {
    let mut app = app_with_choices();
    app.key(key('4'));
    app.key(key('e'));
    assert_eq!(form_kind(&app), Some(FormKind::Eval));
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("eval_form_errors", text);
    assert!(
        text.contains("◂ tiny-lr1e-2 on nanedi-512x320 (job 6) ▸ 1/1"),
        "only the succeeded inference: {text}"
    );
    assert!(text.contains("the true mask"), "{text}");
    typed(&mut app, "demo/truth/nanedi-512x320.png");
    tab(&mut app, 1);
    typed(&mut app, "384,160,128");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    assert!(render(&app, 80, 24).contains("X,Y,W,H in whole pixels"));
    typed(&mut app, ",160");
    tab(&mut app, 1);
    typed(&mut app, "demo/nanedi-512x320.csv");
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(words(
            "eval --truth demo/truth/nanedi-512x320.png \
             --predicted /home/ada/areo/runs/tiny-lr1e-2/predictions/nanedi-512x320/mask.png \
             --box 384,160,128,160 --craters demo/nanedi-512x320.csv \
             --name tiny-lr1e-2-nanedi-512x320 --run tiny-lr1e-2"
        ))]
    );
}

#[test]
fn the_dataset_form_splits_tile_sets_by_a_box_or_a_share() {
    let mut app = app_with_choices();
    app.key(key('3'));
    app.key(key('D'));
    assert_eq!(form_kind(&app), Some(FormKind::Dataset));
    tab(&mut app, 2);
    clear(&mut app);
    typed(&mut app, "1.5");
    tab(&mut app, 1);
    typed(&mut app, "0,0,64");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("dataset_form_errors", text);
    for error in ["it is empty", "tile set folders", "in [0, 1)", "X,Y,W,H"] {
        assert!(text.contains(error), "{error} in\n{text}");
    }
    typed(&mut app, "craters-2");
    tab(&mut app, 1);
    typed(&mut app, "tiles/a, tiles/b");
    tab(&mut app, 1);
    clear(&mut app);
    typed(&mut app, "0");
    tab(&mut app, 1);
    typed(&mut app, ",64");
    tab(&mut app, 4);
    app.key(key(' '));
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(words(
            "dataset create craters-2 --tiles tiles/a --tiles tiles/b --validation 0 \
             --validation-box 0,0,64,64 --test 0 --seed 42 --replace"
        ))]
    );
}

#[test]
fn the_palette_completes_names_and_remembers_lines() {
    let mut app = app_with_choices();
    app.commands = vec![
        (
            "train".into(),
            words("--config --from-run --dataset --epochs --device"),
        ),
        ("dataset create".into(), words("--tiles --validation")),
        ("infer".into(), words("--run --product --image")),
    ];
    app.key(key(':'));
    typed(&mut app, "tr");
    app.key(code(KeyCode::Tab));
    typed(&mut app, "--c");
    app.key(code(KeyCode::Tab));
    app.key(code(KeyCode::Tab));
    let text = render(&app, 80, 24);
    assert!(text.contains(":train --config models/"), "{text}");
    assert!(
        text.contains("models/broken.toml models/unet-tiny.toml"),
        "both are offered: {text}"
    );
    typed(&mut app, "u");
    app.key(code(KeyCode::Tab));
    typed(&mut app, "--da");
    app.key(code(KeyCode::Tab));
    app.key(code(KeyCode::Tab));
    typed(&mut app, "--epochs 30");
    let line = "train --config models/unet-tiny.toml --dataset demo-craters --epochs 30";
    insta::assert_snapshot!("palette_completed", render(&app, 80, 24));
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(words(line))]
    );

    // Subcommands of subcommands, runs after --run.
    app.key(key(':'));
    typed(&mut app, "da");
    app.key(code(KeyCode::Tab));
    app.key(code(KeyCode::Tab));
    assert_eq!(palette_text(&app), "dataset create ");
    app.key(code(KeyCode::Esc));
    app.key(key(':'));
    typed(&mut app, "infer --run t");
    app.key(code(KeyCode::Tab));
    assert_eq!(palette_text(&app), "infer --run tiny-lr1e-2 ");
    app.key(code(KeyCode::Esc));

    // ↑ brings back the lines run, newest first; ↓ goes forward again.
    app.key(key(':'));
    typed(&mut app, "runs");
    app.key(code(KeyCode::Enter));
    assert_eq!(app.view, View::Runs);
    app.key(key(':'));
    app.key(code(KeyCode::Up));
    app.key(code(KeyCode::Up));
    assert_eq!(palette_text(&app), line);
    app.key(code(KeyCode::Down));
    assert_eq!(palette_text(&app), "runs");
    app.key(code(KeyCode::Esc));
    // Quotes group words as in a shell; an open quote is named.
    app.key(key(':'));
    typed(&mut app, "infer --run r --image 'site 3.png'");
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(vec![
            "infer".into(),
            "--run".into(),
            "r".into(),
            "--image".into(),
            "site 3.png".into()
        ])]
    );
    app.key(key(':'));
    typed(&mut app, "infer --image 'site");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    assert!(render(&app, 80, 24).contains("a quote is not closed"));
}

#[test]
fn runs_are_stopped_at_their_epoch_end_resumed_and_deleted_after_asking() {
    let mut app = app_with_choices();
    app.key(key('3'));
    // demo-unet-tiny is training as job 4.
    assert_eq!(app.key(key('x')), vec![Command::EndEarly(4)]);
    assert!(app.key(key('r')).is_empty(), "it is training: no resume");
    assert!(render(&app, 80, 24).contains("run demo-unet-tiny is training now"));
    app.key(key('j'));
    assert!(app.key(key('x')).is_empty());
    assert!(render(&app, 80, 24).contains("the selected run is not training"));
    assert!(app.key(key('r')).is_empty(), "finished: nothing to resume");
    assert!(app.key(key('d')).is_empty(), "deleting asks first");
    insta::assert_snapshot!("delete_question", render(&app, 80, 24));
    assert!(app.key(key('n')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    app.key(key('d'));
    assert_eq!(
        app.key(key('y')),
        vec![Command::DeleteRun("tiny-lr1e-2".into())]
    );

    // An interrupted run resumes with its own configuration.
    app.update(Update::Runs(vec![
        run_record("demo-unet-tiny", "running", 14),
        run_record("tiny-lr1e-2", "cancelled", 6),
    ]));
    assert_eq!(
        app.key(key('r')),
        vec![Command::Plan(words(
            "train --resume tiny-lr1e-2 --device cpu"
        ))]
    );
}

#[test]
fn two_evaluations_are_drawn_one_above_the_other() {
    let mut app = app_with_choices();
    let mut second = report();
    second.name = Some("tiny-lr1e-2-nanedi".into());
    second.run = Some("tiny-lr1e-2".into());
    second.pixel.mean_iou = 0.61;
    app.update(Update::Evals(vec![
        KeptReport::Pixels(report()),
        KeptReport::Pixels(second),
    ]));
    app.key(key('4'));
    app.key(key('m'));
    app.key(key('j'));
    let text = render(&app, 80, 30);
    insta::assert_snapshot!("metrics_compared", text);
    assert!(
        text.contains("▸ selected: tiny-lr1e-2-nanedi (run tiny-lr1e-2)"),
        "{text}"
    );
    assert!(
        text.contains("▸ compared: demo (run demo-unet-tiny)"),
        "{text}"
    );
    app.key(key('k'));
    app.key(key('m'));
    assert!(!render(&app, 80, 30).contains("▸ compared"));
}

#[test]
fn picked_catalog_products_are_downloaded_tiled_and_run_through_a_model_together() {
    let mut app = app_with_choices();
    app.key(key('1'));
    // space picks and moves down; `a` picks every shown product, again none.
    app.key(key(' '));
    app.key(key('j'));
    app.key(key(' '));
    let first = "ESP_013951_1955_RED".to_string();
    let third = "ESP_013953_1955_RED".to_string();
    assert_eq!(app.chosen_products(), [first.clone(), third.clone()]);
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("catalog_picked", text);
    assert!(
        text.contains("Catalog: 3 of 3 products · 2 picked"),
        "{text}"
    );
    assert!(text.contains("● ESP_013953_1955_RED"), "{text}");
    app.key(key('a'));
    assert_eq!(app.picked.len(), 3);
    app.key(key('a'));
    assert!(app.picked.is_empty());
    // Without picks, the keys act on the row under the cursor.
    app.key(key('g'));
    let commands = app.key(key('F'));
    let [Command::Submit(jobs)] = commands.as_slice() else {
        panic!("{commands:?}")
    };
    assert!(
        matches!(&jobs[0].spec, JobSpec::Fetch { pdsids, kinds, .. }
            if *pdsids == [first.clone()] && kinds[0] == areo::pipeline::fetch::FetchKind::All),
        "{jobs:?}"
    );
    app.key(key(' '));
    app.key(key('j'));
    app.key(key(' '));
    assert_eq!(
        app.key(key('t')),
        vec![
            Command::TileProduct(first.clone()),
            Command::TileProduct(third.clone())
        ]
    );

    // A model over both, each fetched first: one command line per product.
    assert_eq!(app.key(key('i')), vec![Command::Choices]);
    insta::assert_snapshot!("infer_over_products", render(&app, 80, 24));
    let commands = app.key(code(KeyCode::Enter));
    let line = |pdsid: &str| {
        Command::Plan(words(&format!(
            "infer --run demo-unet-tiny --product {pdsid} --fetch browse --device cpu"
        )))
    };
    assert_eq!(commands, vec![line(&first), line(&third)]);
    // The form waits for both: one refusal keeps it open with the reason.
    app.update(Update::Planned(Ok("queued job 8, 9".into())));
    assert_eq!(form_kind(&app), Some(FormKind::Infer));
    app.update(Update::Planned(Err(
        "ESP_013953_1955_RED lists no browse image to fetch".into(),
    )));
    assert_eq!(form_kind(&app), Some(FormKind::Infer));
    assert!(render(&app, 80, 24).contains("lists no browse image to fetch"));
}

#[test]
fn a_job_waiting_for_others_says_which() {
    let mut app = app_with_choices();
    let mut waiting = job(
        8,
        JobSpec::Fetch {
            pdsids: vec!["ESP_013951_1955_RED".into()],
            kinds: vec![areo::pipeline::fetch::FetchKind::Browse],
            parallel: 2,
        },
        JobState::Queued,
    );
    waiting.after = vec![6, 7];
    app.update(Update::Job(Box::new(waiting)));
    app.key(key('2'));
    assert!(render(&app, 80, 24).contains("after 6, 7"));
}

#[test]
fn each_gpu_is_offered_with_its_memory_in_use_and_the_line_names_its_ordinal() {
    let mut app = app_with_choices();
    let mut status = app.status.clone().unwrap();
    status.resources.gpu = 2;
    status.gpus = vec![areo::engine::protocol::GpuReading {
        index: 1,
        memory: areo::nn::DeviceMemory {
            used: 3 << 30,
            total: 80 << 30,
        },
    }];
    app.update(Update::Status(status));
    app.key(key('3'));
    app.key(key('n'));
    // The readable configuration, then the device.
    app.key(code(KeyCode::Right));
    tab(&mut app, 7);
    app.key(code(KeyCode::Left));
    let text = render(&app, 80, 24);
    assert!(
        text.contains("◂ cuda:1 · 3.0/80.0 GiB in use ▸ 3/3"),
        "{text}"
    );
    app.key(code(KeyCode::Left));
    assert!(
        render(&app, 80, 24).contains("◂ cuda:0 ▸ 2/3"),
        "no reading: no figure"
    );
    app.key(code(KeyCode::Right));
    let commands = app.key(code(KeyCode::Enter));
    let [Command::Plan(line)] = commands.as_slice() else {
        panic!("{commands:?}\n{}", render(&app, 80, 24))
    };
    let device = line.iter().position(|w| w == "--device").unwrap();
    assert_eq!(line[device + 1], "cuda:1");
    let dataset = line.iter().position(|w| w == "--dataset").unwrap();
    assert_eq!(
        line[dataset + 1],
        "demo-craters",
        "the choice's comment is left out"
    );
}

#[test]
fn the_tile_form_cuts_each_picked_product_with_its_labels() {
    let mut app = app_with_choices();
    app.key(key('1'));
    app.key(key('a'));
    app.key(key('T'));
    assert_eq!(form_kind(&app), Some(FormKind::Tile));
    // A labels file without its format, a stride of nothing, circles without labels.
    clear(&mut app);
    typed(&mut app, "0");
    tab(&mut app, 1);
    typed(&mut app, "half");
    tab(&mut app, 3);
    typed(&mut app, "0.7");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("tile_form_errors", text);
    for error in [
        "at least 1",
        "\"half\" is not a whole number",
        "circles come from",
    ] {
        assert!(text.contains(error), "{error} in\n{text}");
    }
    clear(&mut app);
    typed(&mut app, "256");
    tab(&mut app, 1);
    clear(&mut app);
    typed(&mut app, "128");
    tab(&mut app, 1);
    typed(&mut app, "labels/site.csv");
    assert!(app.key(code(KeyCode::Enter)).is_empty());
    assert!(render(&app, 80, 24).contains("which format is the labels file in?"));
    for _ in 0..7 {
        app.key(code(KeyCode::Right));
    }
    let commands = app.key(code(KeyCode::Enter));
    let line = |pdsid: &str| {
        Command::Plan(words(&format!(
            "tile --product {pdsid} --size 256 --stride 128 --labels labels/site.csv \
             --from craters --circle-scale 0.7"
        )))
    };
    assert_eq!(
        commands,
        vec![
            line("ESP_013951_1955_RED"),
            line("ESP_013952_1955_RED"),
            line("ESP_013953_1955_RED")
        ]
    );
}

#[test]
fn a_detectors_prediction_is_scored_against_labels_in_any_format() {
    let mut app = app_with_choices();
    let mut ssd = run_record("ssd-craters", "finished", 3);
    ssd.config = areo::nn::config::RunConfig::read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/ssd-craters.toml"
    )))
    .unwrap();
    app.update(Update::Runs(vec![ssd]));
    let mut jobs = demo_jobs();
    jobs.push(job(
        9,
        infer_spec("ssd-craters", "nanedi-512x320"),
        JobState::Succeeded,
    ));
    app.update(Update::Jobs(jobs));
    app.key(key('4'));
    app.key(key('e'));
    // A detector's fields: the truth's format and size, no box or crater list.
    tab(&mut app, 1);
    typed(&mut app, "demo/nanedi-512x320.csv");
    tab(&mut app, 1);
    for _ in 0..5 {
        app.key(code(KeyCode::Right));
    }
    let text = render(&app, 80, 24);
    insta::assert_snapshot!("eval_form_detector", text);
    assert!(text.contains("◂ craters ▸ 6/6"), "{text}");
    assert!(!text.contains("held-out box"), "{text}");
    tab(&mut app, 1);
    typed(&mut app, "512x320");
    assert_eq!(
        app.key(code(KeyCode::Enter)),
        vec![Command::Plan(words(
            "eval --truth demo/nanedi-512x320.csv \
             --detections /home/ada/areo/runs/ssd-craters/predictions/nanedi-512x320/detections.json \
             --truth-from craters --size 512x320 --name ssd-craters-nanedi-512x320 --run ssd-craters"
        ))]
    );
}

#[test]
fn a_run_deleted_under_the_cursor_loads_the_one_that_takes_its_place() {
    let mut app = app_with_choices();
    app.key(key('3'));
    app.key(key('j'));
    assert!(app
        .update(Update::Runs(vec![
            run_record("demo-unet-tiny", "running", 14),
            run_record("tiny-lr1e-2", "finished", 15),
        ]))
        .is_empty());
    assert_eq!(
        app.update(Update::Runs(vec![run_record(
            "demo-unet-tiny",
            "running",
            14
        )])),
        vec![Command::Runs(Some("demo-unet-tiny".into()), None)]
    );
}
