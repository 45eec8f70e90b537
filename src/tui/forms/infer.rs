//! The inference form (runs view, `i`): a run and its weights over a catalog product or an
//! image file, with flips and the device. It becomes `areo infer ...`; the prediction goes to
//! `runs/RUN/predictions/`, and the evaluation form offers it once done.

use super::{devices, Field, Form, FormKind, Submit};
use crate::product::FileState;
use crate::tui::app::App;

const RUN: &str = "run";
const WEIGHTS: &str = "weights";
const INPUT: &str = "input";
const FILE: &str = "image file";
const FLIPS: &str = "flips";
const PROBABILITIES: &str = "probabilities";
const DEVICE: &str = "device";

/// The input choice that means the image file field.
const A_FILE: &str = "an image file";
const CONFIGURED: &str = "as configured";

pub fn form(app: &App, run: Option<&str>) -> Form {
    let runs: Vec<String> = app.runs.iter().map(|r| r.name.clone()).collect();
    // Products with something downloaded: the planner finds their image (or says what to fetch).
    let inputs: Vec<String> = app
        .products
        .iter()
        .filter(|p| p.state != FileState::Remote)
        .map(|p| p.product.pdsid.clone())
        .chain(std::iter::once(A_FILE.to_string()))
        .collect();
    Form::new(
        FormKind::Infer,
        "Run a model over an image",
        vec![
            Field::choice(RUN, "--run", runs).choosing(run.unwrap_or_default()),
            Field::choice(
                WEIGHTS,
                "--weights",
                vec![CONFIGURED.into(), "last".into(), "best".into()],
            ),
            Field::choice(INPUT, "--product", inputs),
            Field::text(FILE, "--image", ""),
            Field::toggle(FLIPS, "--flips", false),
            Field::toggle(PROBABILITIES, "--probabilities", false),
            Field::choice(DEVICE, "--device", devices(app)),
        ],
    )
}

pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let run = form.value(RUN).to_string();
    if run.is_empty() || !app.runs.iter().any(|r| r.name == run) {
        form.fail(RUN, "no run yet: n in the runs view trains one");
    }
    let mut words = vec!["infer".to_string()];
    if form.value(WEIGHTS) == CONFIGURED {
        words.extend(form.options(&[RUN]));
    } else {
        words.extend(form.options(&[RUN, WEIGHTS]));
    }
    if form.value(INPUT) == A_FILE {
        if form.value(FILE).is_empty() {
            form.fail(FILE, "which image? (a path, or choose a product as input)");
        }
        words.extend(form.options(&[FILE]));
    } else {
        words.extend(form.options(&[INPUT]));
    }
    words.extend(form.options(&[FLIPS, PROBABILITIES, DEVICE]));
    Some(Submit::Line(words))
}
