//! The ODE search form (catalog view, `s`): instrument and product type, or a PDS id, a box
//! and a cap; the search is a job whose results go to the catalog.

use super::{whole, Field, Form, FormKind, Submit};
use crate::engine::job::{JobSpec, NewJob};
use crate::geo::LonLatBox;
use crate::ode::query::{host_of, OdeQuery, Selector};
use crate::tui::app::App;

const INSTRUMENT: &str = "instrument";
const PRODUCT_TYPE: &str = "product type";
const PDS_ID: &str = "or PDS id (*)";
const BOX: &str = "box W,E,S,N";
const AT_MOST: &str = "at most (0 all)";

pub fn form(app: &App) -> Form {
    let mut form = Form::new(
        FormKind::Search,
        "Search ODE (results go to the catalog)",
        vec![
            Field::text(INSTRUMENT, "", "HIRISE"),
            Field::text(PRODUCT_TYPE, "", "RDRV11"),
            Field::text(PDS_ID, "", ""),
            Field::text(BOX, "", ""),
            Field::text(AT_MOST, "", "100"),
        ],
    );
    form.note = Some((format!("searches {}", app.ode_url), false));
    form
}

pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let selector = if !form.value(PDS_ID).is_empty() {
        Selector::PdsId(form.value(PDS_ID).to_uppercase())
    } else {
        let instrument = form.value(INSTRUMENT).to_uppercase();
        match host_of(&instrument) {
            Some(host) => Selector::Instrument {
                host: host.into(),
                instrument,
                product_type: form.value(PRODUCT_TYPE).to_uppercase(),
            },
            None => {
                form.fail(
                    INSTRUMENT,
                    format!("which spacecraft carries {instrument:?}?"),
                );
                return None;
            }
        }
    };
    let mut query = OdeQuery::new(selector);
    if !form.value(BOX).is_empty() {
        match form.value(BOX).parse::<LonLatBox>() {
            Ok(bbox) => query.bbox = Some(bbox),
            Err(e) => form.fail(BOX, e.to_string()),
        }
    }
    if let Err(e) = query.params() {
        form.fail(PRODUCT_TYPE, e.to_string());
    }
    let max = whole(form.value(AT_MOST), 0)
        .map_err(|e| form.fail(AT_MOST, e))
        .ok()?;
    let spec = JobSpec::Search {
        ode_url: app.ode_url.clone(),
        query,
        page_size: 100,
        max: (max > 0).then_some(max),
    };
    Some(Submit::Jobs(vec![NewJob::new(spec)]))
}
