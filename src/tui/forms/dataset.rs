//! The dataset form (runs view, `D`): tile sets split into training, validation and test
//! chips, by a held-out box or a random fraction of the area. It becomes
//! `areo dataset create ...`.

use super::{is_box, plain_name, whole, Field, Form, FormKind, Submit};

const NAME: &str = "name";
const TILES: &str = "tile sets";
const VALIDATION: &str = "validation share";
const VALIDATION_BOX: &str = "validation box";
const TEST: &str = "test share";
const TEST_BOX: &str = "test box";
const SEED: &str = "seed";
const REPLACE: &str = "replace";

pub fn form() -> Form {
    let mut form = Form::new(
        FormKind::Dataset,
        "Split tile sets into a dataset",
        vec![
            Field::text(NAME, "", ""),
            Field::text(TILES, "--tiles", ""),
            Field::text(VALIDATION, "--validation", "0.2"),
            Field::text(VALIDATION_BOX, "--validation-box", ""),
            Field::text(TEST, "--test", "0"),
            Field::text(TEST_BOX, "--test-box", ""),
            Field::text(SEED, "--seed", "42"),
            Field::toggle(REPLACE, "--replace", false),
        ],
    );
    form.note = Some((
        "a box (X,Y,W,H of every source) is held out instead of random squares".into(),
        false,
    ));
    form
}

pub fn submit(form: &mut Form) -> Option<Submit> {
    let name = form.value(NAME).to_string();
    if let Err(why) = plain_name("dataset name", &name) {
        form.fail(NAME, why);
    }
    // Folders separated by commas (a folder's own comma is not supported here).
    let tiles: Vec<String> = form
        .value(TILES)
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    if tiles.is_empty() {
        form.fail(TILES, "tile set folders, separated by commas (tiles/NAME)");
    }
    for (share, area) in [(VALIDATION, VALIDATION_BOX), (TEST, TEST_BOX)] {
        match form.value(share).parse::<f64>() {
            Ok(v) if (0.0..1.0).contains(&v) => {}
            _ => form.fail(share, "a share of the area in [0, 1)"),
        }
        if !form.value(area).is_empty() && !is_box(form.value(area)) {
            form.fail(area, "X,Y,W,H in whole pixels");
        }
    }
    if let Err(why) = whole(form.value(SEED), 0) {
        form.fail(SEED, why);
    }
    let mut words = vec!["dataset".to_string(), "create".to_string(), name];
    for tile_set in tiles {
        words.extend(["--tiles".to_string(), tile_set]);
    }
    words.extend(form.options(&[VALIDATION, VALIDATION_BOX, TEST, TEST_BOX, SEED, REPLACE]));
    Some(Submit::Lines(vec![words]))
}
