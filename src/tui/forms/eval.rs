//! The evaluation form (runs and metrics views, `e`): one of the predictions the dashboard
//! has seen made, scored against the truth and kept under a name, so it appears in Metrics.
//! A segmentation's mask is scored by pixels (and craters, given their list), a detector's
//! boxes by COCO's rules. It becomes `areo eval ... --name NAME`.

use super::{free_name, is_box, plain_name, Field, Form, FormKind, Submit};
use crate::engine::job::{JobSpec, JobState};
use crate::pipeline::train::InferJob;
use crate::tui::app::App;
use std::path::Path;

pub const PREDICTION: &str = "prediction";
const TRUTH: &str = "truth";
const TRUTH_FORMAT: &str = "truth format";
const SIZE: &str = "image size WxH";
const BOX: &str = "held-out box";
const CRATERS: &str = "crater list";
const NAME: &str = "name";

/// The truth formats a detector's boxes are scored against (`--truth-from`; COCO as is).
const FORMATS: [&str; 6] = ["coco", "voc", "yolo", "labelme", "via", "craters"];

/// The predictions the dashboard has seen made, newest first, optionally of one run.
fn predictions<'a>(app: &'a App, run: Option<&str>) -> Vec<(String, &'a InferJob)> {
    app.jobs
        .values()
        .rev()
        .filter(|job| job.state == JobState::Succeeded)
        .filter_map(|job| match &job.spec {
            JobSpec::Infer(infer) if run.is_none_or(|r| r == infer.run) => {
                Some((label(job.id, infer), infer))
            }
            _ => None,
        })
        .collect()
}

fn label(id: u64, infer: &InferJob) -> String {
    format!("{} on {} (job {id})", infer.run, stem(&infer.out))
}

fn stem(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned())
}

pub fn form(app: &App, run: Option<&str>) -> Form {
    let mut choices = predictions(app, run);
    if choices.is_empty() {
        choices = predictions(app, None);
    }
    let mut form = Form::new(
        FormKind::Eval,
        "Score a prediction (kept in Metrics)",
        vec![Field::choice(
            PREDICTION,
            "",
            choices.into_iter().map(|(label, _)| label).collect(),
        )],
    );
    refit(&mut form, app);
    form
}

/// The chosen prediction, and whether a detector made it.
fn chosen(form: &Form, app: &App) -> Option<(InferJob, bool)> {
    let infer = predictions(app, None)
        .into_iter()
        .find(|(label, _)| label == form.value(PREDICTION))
        .map(|(_, infer)| infer.clone())?;
    let detector = app
        .runs
        .iter()
        .find(|r| r.name == infer.run)
        .is_some_and(|r| r.config.model.kind() != "unet");
    Some((infer, detector))
}

/// The fields the chosen prediction needs: a mask is scored in a box and by its craters, a
/// detector's boxes against labels in some format. Values typed already are kept.
pub fn refit(form: &mut Form, app: &App) {
    let chosen = chosen(form, app);
    let detector = chosen.as_ref().is_some_and(|(_, detector)| *detector);
    let kept = |label: &str| form.field(label).map(|f| f.value.clone());
    let name = kept(NAME).unwrap_or_else(|| {
        chosen.as_ref().map_or_else(String::new, |(infer, _)| {
            free_name(&format!("{}-{}", infer.run, stem(&infer.out)), |name| {
                app.evals.iter().any(|e| e.name() == Some(name))
            })
        })
    });
    let mut fields = vec![
        form.fields[0].clone(),
        Field::text(TRUTH, "--truth", kept(TRUTH).unwrap_or_default()),
    ];
    if detector {
        fields.push(
            Field::choice(
                TRUTH_FORMAT,
                "--truth-from",
                FORMATS.map(String::from).to_vec(),
            )
            .choosing(&kept(TRUTH_FORMAT).unwrap_or_default()),
        );
        fields.push(Field::text(SIZE, "--size", kept(SIZE).unwrap_or_default()));
    } else {
        fields.push(Field::text(BOX, "--box", kept(BOX).unwrap_or_default()));
        fields.push(Field::text(
            CRATERS,
            "--craters",
            kept(CRATERS).unwrap_or_default(),
        ));
    }
    fields.push(Field::text(NAME, "--name", name));
    form.fields = fields;
}

pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let Some((infer, detector)) = chosen(form, app) else {
        form.fail(
            PREDICTION,
            "no prediction yet: i in the runs view makes one",
        );
        return None;
    };
    if form.value(TRUTH).is_empty() {
        form.fail(TRUTH, "the true mask (or labels) to score against");
    }
    if !form.value(BOX).is_empty() && !is_box(form.value(BOX)) {
        form.fail(BOX, "X,Y,W,H in whole pixels");
    }
    let name = form.value(NAME).to_string();
    if let Err(why) = plain_name("evaluation name", &name) {
        form.fail(NAME, why);
    } else if app.evals.iter().any(|e| e.name() == Some(name.as_str())) {
        form.fail(NAME, format!("an evaluation {name} is kept already"));
    }
    let mut words = vec!["eval".to_string()];
    words.extend(form.options(&[TRUTH]));
    if detector {
        words.push("--detections".into());
        words.push(infer.out.join("detections.json").display().to_string());
        if form.value(TRUTH_FORMAT) != "coco" {
            words.extend(form.options(&[TRUTH_FORMAT, SIZE]));
        }
    } else {
        words.push("--predicted".into());
        words.push(infer.out.join("mask.png").display().to_string());
        words.extend(form.options(&[BOX, CRATERS]));
    }
    words.extend(form.options(&[NAME]));
    words.extend(["--run".into(), infer.run.clone()]);
    Some(Submit::Lines(vec![words]))
}
