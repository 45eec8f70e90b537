//! The inference form: from the runs view (`i`), a run and its weights over a catalog
//! product or an image file; from the catalog (`i`), over the picked products, each
//! downloaded first when asked (the download and the inference queued as dependent jobs).
//! It becomes `areo infer ...`, once per product; the prediction goes to
//! `runs/RUN/predictions/`, and the evaluation form offers it once done.

use super::{devices, products_shown, Field, Form, FormKind, Submit};
use crate::product::FileState;
use crate::tui::app::App;

const RUN: &str = "run";
const WEIGHTS: &str = "weights";
const INPUT: &str = "input";
const FILE: &str = "image file";
const FETCH: &str = "download first";
const FLIPS: &str = "flips";
const PROBABILITIES: &str = "probabilities";
const DEVICE: &str = "device";

/// The input choice that means the image file field.
const A_FILE: &str = "an image file";
const CONFIGURED: &str = "as configured";
const NO: &str = "no";

/// Over an image of the user's choosing (runs view), the selected run first.
pub fn form(app: &App, run: Option<&str>) -> Form {
    // Products with something downloaded: the planner finds their image (or says what to fetch).
    let inputs: Vec<String> = app
        .products
        .iter()
        .filter(|p| p.state != FileState::Remote)
        .map(|p| p.product.pdsid.clone())
        .chain(std::iter::once(A_FILE.to_string()))
        .collect();
    let mut fields = common(app, run);
    fields.insert(2, Field::choice(INPUT, "--product", inputs));
    fields.insert(3, Field::text(FILE, "--image", ""));
    Form::new(FormKind::Infer, "Run a model over an image", fields)
}

/// Over catalog products (the catalog's picked ones), each downloaded first when asked.
pub fn over_products(app: &App, products: Vec<String>) -> Form {
    let mut fields = common(app, None);
    let shown = products_shown(&products);
    fields.insert(2, Field::choice(INPUT, "--product", vec![shown]));
    fields.insert(
        3,
        Field::choice(
            FETCH,
            "--fetch",
            vec!["browse".into(), "rdr".into(), NO.into()],
        ),
    );
    let mut form = Form::new(FormKind::Infer, "Run a model over products", fields);
    form.targets = products;
    form.note = Some((
        "browse: the browse image; rdr: the data file (HiRISE JP2, CTX IMG)".into(),
        false,
    ));
    form
}

fn common(app: &App, run: Option<&str>) -> Vec<Field> {
    let runs: Vec<String> = app.runs.iter().map(|r| r.name.clone()).collect();
    vec![
        Field::choice(RUN, "--run", runs).choosing(run.unwrap_or_default()),
        Field::choice(
            WEIGHTS,
            "--weights",
            vec![CONFIGURED.into(), "last".into(), "best".into()],
        ),
        Field::toggle(FLIPS, "--flips", false),
        Field::toggle(PROBABILITIES, "--probabilities", false),
        Field::choice(DEVICE, "--device", devices(app)),
    ]
}

pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let run = form.value(RUN).to_string();
    if run.is_empty() || !app.runs.iter().any(|r| r.name == run) {
        form.fail(RUN, "no run yet: n in the runs view trains one");
    }
    let mut head = vec!["infer".to_string()];
    if form.value(WEIGHTS) == CONFIGURED {
        head.extend(form.options(&[RUN]));
    } else {
        head.extend(form.options(&[RUN, WEIGHTS]));
    }
    let tail = form.options(&[FLIPS, PROBABILITIES, DEVICE]);
    let line = |input: Vec<String>| [head.clone(), input, tail.clone()].concat();
    if !form.targets.is_empty() {
        let fetch = match form.value(FETCH) {
            NO => Vec::new(),
            _ => form.options(&[FETCH]),
        };
        let lines = form
            .targets
            .iter()
            .map(|pdsid| line([vec!["--product".into(), pdsid.clone()], fetch.clone()].concat()))
            .collect();
        return Some(Submit::Lines(lines));
    }
    let input = if form.value(INPUT) == A_FILE {
        if form.value(FILE).is_empty() {
            form.fail(FILE, "which image? (a path, or choose a product as input)");
        }
        form.options(&[FILE])
    } else {
        form.options(&[INPUT])
    };
    Some(Submit::Lines(vec![line(input)]))
}
