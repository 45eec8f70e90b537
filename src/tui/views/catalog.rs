//! The catalog view: products (picked ones marked), their state and size on disk.

use super::{empty, titled, window, HEADER, SELECTED};
use crate::engine::job::{JobSpec, NewJob};
use crate::pipeline::fetch::FetchKind;
use crate::progress::human_bytes;
use crate::tui::app::App;
use crate::tui::app::{Command, Mode};
use crate::tui::forms;
use crate::tui::keymap::Action;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Row, Table, TableState};
use ratatui::Frame;
use std::collections::BTreeSet;

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let visible = app.visible_products();
    let cursor = app.cursor("catalog");
    let picked = if app.picked.is_empty() {
        String::new()
    } else {
        format!("· {} picked ", app.picked.len())
    };
    let title = format!(
        " Catalog: {} of {} products {picked}",
        visible.len(),
        app.products.len()
    );
    if visible.is_empty() {
        let text = if app.products.is_empty() {
            "The catalog is empty. Search ODE with `areo ode search ... --save`, or import saved replies with `areo catalog import FILE`."
        } else {
            "No product matches the filter (esc clears it)."
        };
        return empty(frame, area, titled(title), text);
    }
    let rows_fit = area.height.saturating_sub(3) as usize;
    let selected = cursor.selected.min(visible.len() - 1);
    let (first, last) = window(selected, visible.len(), rows_fit.max(1));
    let rows: Vec<Row> = visible[first..last]
        .iter()
        .map(|i| {
            let row = &app.products[*i];
            let p = &row.product;
            let number = |v: Option<f64>, digits: usize| {
                v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
            };
            let mark = if app.picked.contains(&p.pdsid) {
                "● "
            } else {
                "  "
            };
            Row::new(vec![
                format!("{mark}{}", p.pdsid),
                p.instrument.clone(),
                p.product_type.clone(),
                number(p.center_latitude, 3),
                number(p.center_longitude, 3),
                number(p.map_scale, 2),
                row.state.to_string(),
                if row.bytes_on_disk == 0 {
                    "-".into()
                } else {
                    human_bytes(row.bytes_on_disk)
                },
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(22),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(11),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new([
            "  PDSID", "INSTR", "TYPE", "LAT", "LON", "M/PX", "STATE", "ON DISK",
        ])
        .style(HEADER),
    )
    .row_highlight_style(SELECTED)
    .block(titled(title));
    let mut state = TableState::default().with_selected(Some(selected - first));
    frame.render_stateful_widget(table, area, &mut state);
}

/// The catalog's keys: details, picking, downloads, tiling, inference and the ODE search.
/// Each acts on the picked products, else on the one under the cursor.
pub(in crate::tui) fn act(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::Open => {
            if let Some(pdsid) = app.selected_product() {
                app.product_detail = None;
                app.mode = Mode::Detail;
                return vec![Command::Product(pdsid)];
            }
        }
        Action::FetchBrowse | Action::FetchAll => {
            let pdsids = app.chosen_products();
            if !pdsids.is_empty() {
                let (kind, what) = match action {
                    Action::FetchAll => (FetchKind::All, "files"),
                    _ => (FetchKind::Browse, "browse images"),
                };
                app.say(
                    format!("queueing a download of {} {what}", described(&pdsids)),
                    false,
                );
                return vec![Command::Submit(vec![NewJob::new(JobSpec::Fetch {
                    pdsids,
                    kinds: vec![kind],
                    parallel: 4,
                })])];
            }
        }
        Action::Pick => {
            if let Some(pdsid) = app.selected_product() {
                if !app.picked.remove(&pdsid) {
                    app.picked.insert(pdsid);
                }
                app.move_cursor(Action::Down);
            }
        }
        Action::PickAll => {
            let shown: BTreeSet<String> = app
                .visible_products()
                .iter()
                .map(|i| app.products[*i].product.pdsid.clone())
                .collect();
            if shown.is_subset(&app.picked) {
                app.picked.retain(|p| !shown.contains(p));
            } else {
                app.picked.extend(shown);
            }
        }
        Action::InferProducts => {
            let pdsids = app.chosen_products();
            if !pdsids.is_empty() {
                return app.open(forms::infer::over_products(app, pdsids));
            }
        }
        Action::TileProduct => {
            return app
                .chosen_products()
                .into_iter()
                .map(Command::TileProduct)
                .collect();
        }
        Action::TileWithLabels => {
            let pdsids = app.chosen_products();
            if !pdsids.is_empty() {
                return app.open(forms::tile::form(pdsids));
            }
        }
        Action::Search => return app.open(forms::search::form(app)),
        _ => {}
    }
    Vec::new()
}

/// Products as a status line names them: one by its id, several by their count.
fn described(pdsids: &[String]) -> String {
    match pdsids {
        [one] => format!("{one}'s"),
        many => format!("{} products'", many.len()),
    }
}
