//! The runs view: the runs, the selected one's loss curves (and the compared one's) and its epochs.

use super::jobs::duration;
use super::{empty, titled, window, HEADER, SELECTED};
use crate::nn::run::RunState;
use crate::tui::app::{smoothed, App};
use crate::tui::app::{Command, Mode};
use crate::tui::forms;
use crate::tui::keymap::Action;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Row, Table, TableState};
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let runs = app.visible_runs();
    let title = format!(" Runs: {} ", runs.len());
    if runs.is_empty() {
        let text = if app.runs.is_empty() {
            "No training runs yet. `areo train --config models/unet-tiny.toml --dataset NAME` starts one; `areo demo` trains one on the shipped sample."
        } else {
            "No run matches the filter (esc clears it)."
        };
        return empty(frame, area, titled(title), text);
    }
    let list_height = (runs.len() as u16 + 3).min(area.height / 3).max(4);
    let [list, detail] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
    let cursor = app.cursor("runs");
    let selected = cursor.selected.min(runs.len() - 1);
    let (first, last) = window(selected, runs.len(), list_height.saturating_sub(3) as usize);
    let rows: Vec<Row> = runs[first..last]
        .iter()
        .map(|r| {
            Row::new(vec![
                r.name.clone(),
                r.config.name.clone(),
                r.dataset.clone(),
                format!("{:?}", r.state).to_lowercase(),
                format!("{}/{}", r.epochs_done, r.config.train.epochs),
                r.best
                    .as_ref()
                    .map_or("-".into(), |b| format!("{:.3}@{}", b.score, b.epoch)),
                r.device.clone(),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(6),
        ],
    )
    .header(
        Row::new([
            "RUN", "CONFIG", "DATASET", "STATE", "EPOCHS", "BEST", "DEVICE",
        ])
        .style(HEADER),
    )
    .row_highlight_style(SELECTED)
    .block(titled(title));
    let mut state = TableState::default().with_selected(Some(selected - first));
    frame.render_stateful_widget(table, list, &mut state);

    let Some(run) = app.selected_run() else {
        return;
    };
    let metrics = app
        .run_details
        .get(&run.name)
        .map_or(&[][..], |(_, metrics)| metrics.as_slice());
    let [chart_area, table_area] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Min(0)]).areas(detail);
    draw_run_chart(frame, app, run, metrics, chart_area);
    draw_epoch_table(frame, run, metrics, table_area);
}

/// Points of a loss curve: (epoch or step, loss).
type Curve = Vec<(f64, f64)>;

pub(super) fn draw_run_chart(
    frame: &mut Frame,
    app: &App,
    run: &crate::nn::run::RunRecord,
    metrics: &[crate::nn::run::EpochMetrics],
    area: Rect,
) {
    let job = app.training_job(&run.name);
    let live = job.and_then(|j| app.step_losses.get(&j.id));
    // A loss of several parts (a detector's class and box) shows them too.
    let parts: Vec<(String, Curve)> = if app.per_step {
        job.and_then(|j| app.step_loss_parts.get(&j.id))
            .map(|parts| {
                parts
                    .iter()
                    .map(|(name, raw)| {
                        let shown = if app.smooth {
                            smoothed(raw, 0.9)
                        } else {
                            raw.clone()
                        };
                        (name.clone(), shown)
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        let names: std::collections::BTreeSet<&String> =
            metrics.iter().flat_map(|m| m.train_losses.keys()).collect();
        names
            .into_iter()
            .map(|name| {
                let curve = metrics
                    .iter()
                    .filter_map(|m| m.train_losses.get(name).map(|v| (m.epoch as f64, *v)))
                    .collect();
                (name.clone(), curve)
            })
            .collect()
    };
    let (train, validation, x_title): (Curve, Curve, &str) = if app.per_step {
        let raw = live.cloned().unwrap_or_default();
        let shown = if app.smooth { smoothed(&raw, 0.9) } else { raw };
        (shown, Vec::new(), "step (live since the console opened)")
    } else {
        (
            metrics
                .iter()
                .map(|m| (m.epoch as f64, m.train_loss))
                .collect(),
            metrics
                .iter()
                .filter_map(|m| m.val_loss.map(|v| (m.epoch as f64, v)))
                .collect(),
            "epoch",
        )
    };
    let last = metrics.last();
    let eta = match (last, run.state) {
        (Some(m), crate::nn::run::RunState::Running) => {
            let left = run.config.train.epochs.saturating_sub(run.epochs_done);
            format!(" · ETA {}", duration((m.seconds * left as f64) as i64))
        }
        _ => String::new(),
    };
    let versus = match app.compare.as_deref() {
        Some(other) if other != run.name && !app.per_step => format!(" · vs {other} (dots)"),
        _ => String::new(),
    };
    let title = format!(
        " {} · {} · lr {} · {} tiles/s{eta}{versus} ",
        run.name,
        run.device,
        last.map_or("-".into(), |m| format!("{:.2e}", m.lr)),
        last.map_or("-".into(), |m| format!("{:.1}", m.tiles_per_second)),
    );
    let block = titled(title);
    if train.is_empty() {
        let text = if app.per_step {
            "No step losses heard yet: they appear while the run trains (t shows epochs)."
        } else {
            "No epoch finished yet."
        };
        return empty(frame, area, block, text);
    }
    // The compared run, per epoch, on the same axes.
    let compared = app
        .compare
        .as_deref()
        .filter(|name| *name != run.name && !app.per_step);
    let other = compared
        .and_then(|name| app.run_details.get(name))
        .map_or(&[][..], |(_, metrics)| metrics.as_slice());
    let other_train: Curve = other
        .iter()
        .map(|m| (m.epoch as f64, m.train_loss))
        .collect();
    let other_validation: Curve = other
        .iter()
        .filter_map(|m| m.val_loss.map(|v| (m.epoch as f64, v)))
        .collect();
    let all = train
        .iter()
        .chain(&validation)
        .chain(&other_train)
        .chain(&other_validation)
        .chain(parts.iter().flat_map(|(_, curve)| curve));
    let (x_max, y_min, y_max) = all.fold((1.0f64, f64::MAX, f64::MIN), |(x, lo, hi), p| {
        (x.max(p.0), lo.min(p.1), hi.max(p.1))
    });
    let x_min = if app.per_step { train[0].0 } else { 1.0 };
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let (y_lo, y_hi) = ((y_min - pad).max(0.0), y_max + pad);
    let mut datasets = vec![Dataset::default()
        .name(if app.per_step && app.smooth {
            "train loss (smoothed)"
        } else {
            "train loss"
        })
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Cyan))
        .data(&train)];
    if !validation.is_empty() {
        datasets.push(
            Dataset::default()
                .name("validation loss")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(Color::Magenta))
                .data(&validation),
        );
    }
    for ((name, curve), colour) in parts
        .iter()
        .zip([Color::Yellow, Color::Green, Color::White])
    {
        datasets.push(
            Dataset::default()
                .name(format!("{name} loss"))
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(colour))
                .data(curve),
        );
    }
    for (name, curve, colour) in [
        ("train", &other_train, Color::Blue),
        ("validation", &other_validation, Color::Red),
    ] {
        if !curve.is_empty() {
            datasets.push(
                Dataset::default()
                    .name(format!("vs {name}"))
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Scatter)
                    .style(Style::new().fg(colour))
                    .data(curve),
            );
        }
    }
    let chart = Chart::new(datasets)
        .block(block)
        .hidden_legend_constraints((Constraint::Percentage(50), Constraint::Percentage(100)))
        .x_axis(
            Axis::default()
                .title(x_title)
                .bounds([x_min, x_max.max(x_min + 1.0)])
                .labels([format!("{x_min:.0}"), format!("{x_max:.0}")]),
        )
        .y_axis(
            Axis::default()
                .bounds([y_lo, y_hi])
                .labels([format!("{y_lo:.3}"), format!("{y_hi:.3}")]),
        );
    frame.render_widget(chart, area);
}

pub(super) fn draw_epoch_table(
    frame: &mut Frame,
    run: &crate::nn::run::RunRecord,
    metrics: &[crate::nn::run::EpochMetrics],
    area: Rect,
) {
    let best = run.best.as_ref().map(|b| b.epoch);
    let fits = area.height.saturating_sub(3) as usize;
    // The newest epochs, oldest first.
    let shown = &metrics[metrics.len().saturating_sub(fits)..];
    let rows: Vec<Row> = shown
        .iter()
        .map(|m| {
            let number = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
            let (headline, detail) = m.headline();
            let row = Row::new(vec![
                m.epoch.to_string(),
                format!("{:.4}", m.train_loss),
                number(m.val_loss),
                number(headline),
                detail,
                format!("{:.1}", m.tiles_per_second),
                format!("{:.1}", m.seconds),
            ]);
            if Some(m.epoch) == best {
                row.style(Style::new().fg(Color::Green))
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Min(12),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .header({
        let [headline, detail] = run.headline_names();
        Row::new(["EPOCH", "TRAIN", "VAL", headline, detail, "TILES/S", "S"]).style(HEADER)
    })
    .block(titled(format!(
        " Epochs ({} done, best in green){} ",
        metrics.len(),
        // The chart's title has no room left at 80 columns.
        metrics
            .last()
            .and_then(|m| m.gpu_memory)
            .map_or(String::new(), |g| format!(" · GPU {g}"))
    )));
    frame.render_widget(table, area);
}

/// The runs view's keys: new runs, a run like the selected one, resume, stop, delete,
/// inference, evaluation, a dataset; the chart's comparison and its axes.
pub(in crate::tui) fn act(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::NewRun => return app.open(forms::train::form(app, None)),
        Action::LikeRun => match app.selected_run() {
            Some(run) => return app.open(forms::train::form(app, Some(run))),
            None => app.say("no run selected to start from", true),
        },
        Action::ResumeRun => return resume_selected(app),
        Action::InferRun => {
            let run = app.selected_run().map(|r| r.name.clone());
            return app.open(forms::infer::form(app, run.as_deref()));
        }
        Action::Evaluate => {
            let run = app.selected_run().map(|r| r.name.clone());
            return app.open(forms::eval::form(app, run.as_deref()));
        }
        Action::NewDataset => return app.open(forms::dataset::form()),
        Action::StopRun => {
            let run = app.selected_run().map(|r| r.name.clone());
            match run.and_then(|run| {
                app.training_job(&run)
                    .filter(|job| !job.state.is_final())
                    .map(|job| (run, job.id))
            }) {
                Some((run, id)) => {
                    app.say(format!("run {run} stops when its epoch ends"), false);
                    return vec![Command::EndEarly(id)];
                }
                None => app.say("the selected run is not training", true),
            }
        }
        Action::DeleteRun => {
            if let Some(run) = app.selected_run() {
                let name = run.name.clone();
                app.mode = Mode::Confirm(
                    format!("Delete run {name}: its checkpoints, metrics and predictions? (y/n)"),
                    Command::DeleteRun(name),
                );
            }
        }
        Action::Compare => {
            let selected = app.selected_run().map(|r| r.name.clone());
            app.compare = if app.compare == selected {
                None
            } else {
                selected
            };
            return vec![app.runs_wanted()];
        }
        Action::ToggleSmooth => app.smooth = !app.smooth,
        Action::ToggleSteps => app.per_step = !app.per_step,
        _ => {}
    }
    Vec::new()
}

/// Resumes the selected run unless it is training now or finished.
fn resume_selected(app: &mut App) -> Vec<Command> {
    let Some(run) = app.selected_run() else {
        app.say("no run selected to resume", true);
        return Vec::new();
    };
    let name = run.name.clone();
    let device = run.device.clone();
    let finished = run.state == RunState::Finished;
    if app
        .training_job(&name)
        .is_some_and(|job| !job.state.is_final())
    {
        app.say(format!("run {name} is training now"), true);
        return Vec::new();
    }
    if finished {
        app.say(
            format!("run {name} finished: c trains a run like it, with more epochs"),
            true,
        );
        return Vec::new();
    }
    app.say(format!("resuming run {name}…"), false);
    vec![Command::Plan(vec![
        "train".into(),
        "--resume".into(),
        name,
        "--device".into(),
        device,
    ])]
}
