//! The metrics view: kept evaluations, the selected one's per-class scores and confusion (a second one under it when compared).

use super::{empty, titled, window, HEADER, SELECTED};
use crate::metrics::ClassScores;
use crate::tui::app::Command;
use crate::tui::app::{App, METRIC_COLUMNS};
use crate::tui::forms;
use crate::tui::keymap::Action;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

pub(super) fn metric_value(s: &ClassScores, column: usize) -> f64 {
    match column {
        1 => s.precision,
        2 => s.recall,
        3 => s.f1,
        4 => s.iou,
        5 => s.support as f64,
        6 => s.predicted as f64,
        _ => s.class as f64,
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
    use crate::pipeline::evaluate::KeptReport;
    let evals = app.visible_evals();
    let title = format!(" Evaluations: {} ", evals.len());
    if evals.is_empty() {
        let text = if app.evals.is_empty() {
            "No evaluation kept yet. `areo eval --truth T --predicted P --name NAME` keeps one; `areo demo` scores its held-out area."
        } else {
            "No evaluation matches the filter (esc clears it)."
        };
        return empty(frame, area, titled(title), text);
    }
    let list_height = (evals.len() as u16 + 2).min(area.height / 4).max(3);
    let [list, scores_area, bottom] = Layout::vertical([
        Constraint::Length(list_height),
        Constraint::Min(6),
        Constraint::Length(0),
    ])
    .areas(area);
    let cursor = app.cursor("metrics");
    let selected = cursor.selected.min(evals.len() - 1);
    let (first, last) = window(
        selected,
        evals.len(),
        list_height.saturating_sub(2) as usize,
    );
    let lines: Vec<Line> = evals[first..last]
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let summary = match e {
                KeptReport::Pixels(e) => format!(
                    "mIoU {:.4} · accuracy {:.4}{}",
                    e.pixel.mean_iou,
                    e.pixel.accuracy,
                    e.craters
                        .map(|c| format!(" · crater F1 {:.3}", c.f1))
                        .unwrap_or_default()
                ),
                KeptReport::Detections(e) => {
                    let figure = |key: &str| e.metrics.get(key).copied().unwrap_or(-1.0);
                    format!(
                        "AP {:.4} · AP50 {:.4} · AR100 {:.4}",
                        figure("AP"),
                        figure("AP50"),
                        figure("AR100")
                    )
                }
            };
            let text = format!(
                "{:<16} run {:<18} {summary}",
                e.name().unwrap_or("-"),
                e.run().unwrap_or("-"),
            );
            if first + i == selected {
                Line::styled(text, SELECTED)
            } else {
                Line::raw(text)
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(titled(title)), list);
    let _ = bottom;
    let draw_report = |frame: &mut Frame, report: &KeptReport, area: Rect| match report {
        KeptReport::Pixels(report) => draw_pixel_report(frame, app, report, area),
        KeptReport::Detections(report) => draw_detection_report(frame, app, report, area),
    };
    let compared = app
        .compare_eval
        .as_deref()
        .filter(|name| evals[selected].name() != Some(*name))
        .and_then(|name| app.evals.iter().find(|e| e.name() == Some(name)));
    let Some(compared) = compared else {
        return draw_report(frame, evals[selected], scores_area);
    };
    // Side by side: the selected evaluation above the compared one, each under its name.
    let [label_a, report_a, label_b, report_b] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(scores_area);
    for (label, report, area, what) in [
        (label_a, evals[selected], report_a, "selected"),
        (label_b, compared, report_b, "compared"),
    ] {
        let name = report.name().unwrap_or("-");
        let run = report.run().unwrap_or("-");
        frame.render_widget(
            Line::styled(format!("▸ {what}: {name} (run {run})"), HEADER),
            label,
        );
        draw_report(frame, report, area);
    }
}

/// A segmentation's per-class scores (sorted by the chosen column) and confusion matrix.
pub(super) fn draw_pixel_report(
    frame: &mut Frame,
    app: &App,
    report: &crate::pipeline::evaluate::EvalReport,
    area: Rect,
) {
    let [scores, matrix] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Min(0)]).areas(area);

    let mut per_class = report.pixel.per_class.clone();
    let column = app.sort_column;
    per_class.sort_by(|a, b| {
        let order = metric_value(b, column).total_cmp(&metric_value(a, column));
        if column == 0 {
            order.reverse()
        } else {
            order
        }
    });
    let mut rows: Vec<Row> = per_class
        .iter()
        .map(|s| {
            Row::new(vec![
                s.class.to_string(),
                format!("{:.3}", s.precision),
                format!("{:.3}", s.recall),
                format!("{:.3}", s.f1),
                format!("{:.3}", s.iou),
                s.support.to_string(),
            ])
        })
        .collect();
    if let Some(c) = &report.craters {
        rows.push(
            Row::new(vec![
                "craters".to_string(),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                "-".into(),
                c.truth.to_string(),
            ])
            .style(HEADER),
        );
    }
    let header: Vec<String> = METRIC_COLUMNS[..6]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if i == column {
                format!("{name}▼")
            } else {
                name.to_string()
            }
        })
        .collect();
    let [bx, by, bw, bh] = report.region;
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Min(7),
        ],
    )
    .header(Row::new(header).style(HEADER))
    .block(titled(format!(" Per class · {bw}x{bh} at {bx},{by} ")));
    frame.render_widget(table, scores);
    draw_confusion(frame, app, report, matrix);
}

/// A detector's COCO figures and per-class AP and P/R/F1 at the threshold, beside the
/// confusion matrix at IoU 0.5 (background last: missed objects and false boxes).
pub(super) fn draw_detection_report(
    frame: &mut Frame,
    app: &App,
    report: &crate::pipeline::detections::DetectionReport,
    area: Rect,
) {
    let [left, matrix] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Min(0)]).areas(area);
    let [figures_area, classes_area] =
        Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(left);
    let figure = |key: &str| {
        report
            .metrics
            .get(key)
            .filter(|v| **v >= 0.0)
            .map_or("-".to_string(), |v| format!("{v:.3}"))
    };
    let line = |keys: &[&str]| {
        Line::raw(
            keys.iter()
                .map(|k| format!("{k} {}", figure(k)))
                .collect::<Vec<_>>()
                .join(" · "),
        )
    };
    let figures = Paragraph::new(vec![
        line(&["AP", "AP50", "AP75"]),
        line(&["APs", "APm", "APl"]),
        line(&["AR1", "AR10", "AR100"]),
        line(&["ARs", "ARm", "ARl"]),
    ])
    .block(titled(" COCO (pycocotools' definitions) ".to_string()));
    frame.render_widget(figures, figures_area);
    let rows: Vec<Row> = report
        .classes
        .iter()
        .map(|c| {
            Row::new(vec![
                c.class.clone(),
                c.ap.map_or("-".into(), |ap| format!("{ap:.3}")),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                format!(
                    "{}/{}/{}",
                    c.true_positives, c.false_positives, c.false_negatives
                ),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(12),
        ],
    )
    .header(Row::new(["class", "AP", "P", "R", "F1", "TP/FP/FN"]).style(HEADER))
    .block(titled(format!(
        " Per class · score >= {} · IoU 0.5 ",
        report.threshold
    )));
    frame.render_widget(table, classes_area);
    let size = report.confusion_names.len();
    let rows: Vec<Row> = report
        .confusion
        .iter()
        .enumerate()
        .map(|(truth, counts)| {
            let total = counts.iter().sum::<u64>().max(1) as f64;
            let mut cells =
                vec![Cell::from(truth_label(&report.confusion_names, truth)).style(HEADER)];
            cells.extend(counts.iter().map(|&count| {
                let share = count as f64 / total;
                let text = if app.normalised {
                    format!("{share:.3}")
                } else {
                    count.to_string()
                };
                Cell::from(text).style(shade(share))
            }));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(11)];
    widths.extend(std::iter::repeat_n(Constraint::Length(11), size));
    let header: Vec<String> = std::iter::once("t\\p".to_string())
        .chain((0..size).map(|c| truth_label(&report.confusion_names, c)))
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(HEADER))
        .block(titled(format!(
            " Confusion ({}) ",
            if app.normalised {
                "row share"
            } else {
                "objects"
            }
        )));
    frame.render_widget(table, matrix);
}

/// A class's name cut to fit a confusion matrix's column.
pub(super) fn truth_label(names: &[String], index: usize) -> String {
    names
        .get(index)
        .map_or("?".into(), |n| n.chars().take(10).collect())
}

/// The confusion matrix as a grid of cells shaded by their row's share.
pub(super) fn draw_confusion(
    frame: &mut Frame,
    app: &App,
    report: &crate::pipeline::evaluate::EvalReport,
    area: Rect,
) {
    let pixel = &report.pixel;
    let classes = report.classes;
    let mut rows = Vec::new();
    for truth in 0..classes {
        let mut cells = vec![Cell::from(truth.to_string()).style(HEADER)];
        for predicted in 0..classes {
            let share = pixel
                .confusion_normalised
                .get(truth)
                .and_then(|r| r.get(predicted))
                .copied()
                .unwrap_or(0.0);
            let count = pixel
                .confusion
                .get(truth)
                .and_then(|r| r.get(predicted))
                .copied()
                .unwrap_or(0);
            let text = if app.normalised {
                format!("{share:.3}")
            } else {
                count.to_string()
            };
            cells.push(Cell::from(text).style(shade(share)));
        }
        rows.push(Row::new(cells));
    }
    let mut widths = vec![Constraint::Length(6)];
    widths.extend(std::iter::repeat_n(Constraint::Length(9), classes));
    let header: Vec<String> = std::iter::once("t\\p".to_string())
        .chain((0..classes).map(|c| c.to_string()))
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(HEADER))
        .block(titled(format!(
            " Confusion ({}) ",
            if app.normalised {
                "row share"
            } else {
                "pixels"
            }
        )));
    frame.render_widget(table, area);
}

/// Five steps of blue for a share of a row: readable on dark and light terminals because
/// the text takes the contrasting colour.
pub(super) fn shade(share: f64) -> Style {
    let step = (share * 4.0).round() as u8;
    match step {
        0 => Style::new(),
        1 => Style::new().bg(Color::Indexed(153)).fg(Color::Black),
        2 => Style::new().bg(Color::Indexed(111)).fg(Color::Black),
        3 => Style::new().bg(Color::Indexed(69)).fg(Color::White),
        _ => Style::new().bg(Color::Indexed(25)).fg(Color::White),
    }
}

/// The metrics view's keys: a new evaluation, a second one drawn under the selected one,
/// the confusion's counts or shares, the class table's order.
pub(in crate::tui) fn act(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::Evaluate => return app.open(forms::eval::form(app, None)),
        Action::Compare => {
            let selected = app.selected_eval().and_then(|e| e.name()).map(String::from);
            app.compare_eval = if app.compare_eval == selected {
                None
            } else {
                selected
            };
        }
        Action::ToggleNormalised => app.normalised = !app.normalised,
        Action::Sort => app.sort_column = (app.sort_column + 1) % METRIC_COLUMNS.len(),
        _ => {}
    }
    Vec::new()
}
