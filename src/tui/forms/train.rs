//! The training form (runs view: `n` a new run, `c` a run like the selected one): a
//! configuration from `models/` or another run's, the dataset, and the keys people change.
//! It becomes `areo train ...`.

use super::{devices, free_name, plain_name, whole, Field, Form, FormKind, Submit};
use crate::nn::config::RunConfig;
use crate::nn::run::RunRecord;
use crate::tui::app::App;

pub const CONFIG: &str = "configuration";
const DATASET: &str = "dataset";
const NAME: &str = "run name";
const EPOCHS: &str = "epochs";
const BATCH: &str = "batch";
const LR: &str = "learning rate";
const SEED: &str = "seed";
const DEVICE: &str = "device";
const WEIGHTS: &str = "backbone weights";

/// A configuration choice that is another run's configuration.
const FROM_RUN: &str = "as run ";

/// A new run; `like` is the run whose configuration and dataset it starts from.
pub fn form(app: &App, like: Option<&RunRecord>) -> Form {
    let mut configs: Vec<String> = like
        .map(|run| format!("{FROM_RUN}{}", run.name))
        .into_iter()
        .collect();
    configs.extend(app.configs.iter().map(|c| c.path.clone()));
    let datasets: Vec<String> = app
        .datasets
        .iter()
        .map(|d| {
            format!(
                "{} · chips {} train {} val {} test",
                d.name, d.train, d.validation, d.test
            )
        })
        .collect();
    let base = like.map_or_else(
        || {
            app.configs
                .iter()
                .find_map(|c| c.config.as_ref().ok())
                .map_or("run".into(), |c| c.name.clone())
        },
        |run| run.name.clone(),
    );
    let title = match like {
        Some(run) => format!("Train a run like {}", run.name),
        None => "Train a new run".to_string(),
    };
    let mut form = Form::new(
        FormKind::Train,
        title,
        vec![
            Field::choice(CONFIG, "--config", configs),
            Field::choice(DATASET, "--dataset", datasets)
                .choosing(like.map_or("", |run| run.dataset.as_str())),
            Field::text(
                NAME,
                "--name",
                free_name(&base, |name| app.runs.iter().any(|r| r.name == name)),
            ),
            Field::text(EPOCHS, "--epochs", ""),
            Field::text(BATCH, "--batch", ""),
            Field::text(LR, "--lr", ""),
            Field::text(SEED, "--seed", ""),
            Field::choice(DEVICE, "--device", devices(app))
                .choosing(like.map_or("cpu", |run| run.device.as_str())),
            Field::text(WEIGHTS, "--encoder-weights", ""),
        ],
    );
    refill(&mut form, app);
    form
}

/// The configuration the form's choice names, or why there is none.
fn chosen<'a>(form: &Form, app: &'a App) -> Result<&'a RunConfig, String> {
    let choice = form.value(CONFIG);
    if let Some(run) = choice.strip_prefix(FROM_RUN) {
        return app
            .runs
            .iter()
            .find(|r| r.name == run)
            .map(|r| &r.config)
            .ok_or_else(|| format!("no run {run}"));
    }
    match app.configs.iter().find(|c| c.path == choice) {
        Some(found) => found.config.as_ref().map_err(Clone::clone),
        None => Err("no configuration: put one in models/ (here or in the workspace)".into()),
    }
}

/// Puts the chosen configuration's epochs, batch, learning rate and seed in their fields.
pub fn refill(form: &mut Form, app: &App) {
    if let Ok(config) = chosen(form, app) {
        let train = config.train.clone();
        form.set(EPOCHS, train.epochs.to_string());
        form.set(BATCH, train.batch.to_string());
        form.set(LR, train.lr.to_string());
        form.set(SEED, train.seed.to_string());
    }
}

pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let mut words = vec!["train".to_string()];
    match chosen(form, app) {
        Ok(_) => match form.value(CONFIG).strip_prefix(FROM_RUN) {
            Some(run) => words.extend(["--from-run".into(), run.to_string()]),
            None => words.extend(["--config".into(), form.value(CONFIG).to_string()]),
        },
        Err(why) => form.fail(CONFIG, why),
    }
    if form.value(DATASET).is_empty() {
        form.fail(
            DATASET,
            "no dataset yet: :dataset create NAME --tiles DIR (or D in this view)",
        );
    }
    let name = form.value(NAME).to_string();
    if let Err(why) = plain_name("run name", &name) {
        form.fail(NAME, why);
    } else if app.runs.iter().any(|r| r.name == name) {
        form.fail(NAME, format!("run {name} exists: r resumes it"));
    }
    for (label, min) in [(EPOCHS, 1), (BATCH, 1), (SEED, 0)] {
        if let Err(why) = whole(form.value(label), min) {
            form.fail(label, why);
        }
    }
    match form.value(LR).parse::<f64>() {
        Ok(lr) if lr > 0.0 && lr.is_finite() => {}
        _ => form.fail(LR, "a positive number, such as 3e-3"),
    }
    words.extend(form.options(&[DATASET, NAME, EPOCHS, BATCH, LR, SEED, DEVICE, WEIGHTS]));
    Some(Submit::Lines(vec![words]))
}
