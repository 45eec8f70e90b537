//! The tiling form (catalog, `T`): the picked products (downloaded) cut into chips by the
//! daemon, with their annotations painted into per-chip masks and kept as per-chip boxes
//! when a label file is given: the tile sets a dataset is split from. It becomes
//! `areo tile --product PDSID ...`, once per product, into `tiles/PDSID`.

use super::{products_shown, whole, Field, Form, FormKind, Submit};

const SIZE: &str = "chip size";
const STRIDE: &str = "stride";
const LABELS: &str = "labels file";
const FORMAT: &str = "labels format";
const CIRCLES: &str = "circle scale";

/// The label formats `--from` takes; `none` tiles without labels.
const FORMATS: [&str; 8] = [
    "none", "voc", "yolo", "yolo-seg", "via", "labelme", "coco", "craters",
];

pub fn form(products: Vec<String>) -> Form {
    let shown = products_shown(&products);
    let mut form = Form::new(
        FormKind::Tile,
        format!("Tile {shown} into chips"),
        vec![
            Field::text(SIZE, "--size", "256"),
            Field::text(STRIDE, "--stride", ""),
            Field::text(LABELS, "--labels", ""),
            Field::choice(FORMAT, "--from", FORMATS.map(String::from).to_vec()),
            Field::text(CIRCLES, "--circle-scale", ""),
        ],
    );
    form.targets = products;
    form.note = Some((
        "the downloaded image (f or F first); stride empty: the chip size".into(),
        false,
    ));
    form
}

pub fn submit(form: &mut Form) -> Option<Submit> {
    if let Err(why) = whole(form.value(SIZE), 1) {
        form.fail(SIZE, why);
    }
    if !form.value(STRIDE).is_empty() {
        if let Err(why) = whole(form.value(STRIDE), 1) {
            form.fail(STRIDE, why);
        }
    }
    let labelled = !form.value(LABELS).is_empty();
    match (labelled, form.value(FORMAT) == "none") {
        (true, true) => form.fail(FORMAT, "which format is the labels file in?"),
        (false, false) => form.fail(LABELS, "the labels file of that format"),
        _ => {}
    }
    if !form.value(CIRCLES).is_empty() {
        match form.value(CIRCLES).parse::<f64>() {
            Ok(scale) if scale > 0.0 && scale <= 1.0 => {}
            _ => form.fail(CIRCLES, "a fraction of the radius in (0, 1]"),
        }
        if !labelled {
            form.fail(CIRCLES, "circles come from a labels file");
        }
    }
    let mut options = form.options(&[SIZE, STRIDE]);
    if labelled {
        options.extend(form.options(&[LABELS, FORMAT, CIRCLES]));
    }
    let lines = form
        .targets
        .iter()
        .map(|pdsid| {
            let mut words = vec!["tile".into(), "--product".into(), pdsid.clone()];
            words.extend(options.iter().cloned());
            words
        })
        .collect();
    Some(Submit::Lines(lines))
}
