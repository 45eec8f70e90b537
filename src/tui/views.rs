//! Drawing the dashboard from [`App`]: a header with the views and the daemon, the current
//! view, a footer with its keys (or the filter, the command being typed, a message), and
//! popups for help and details. Colours are the terminal's own named ones, so they read on
//! dark and light backgrounds alike.

use super::app::{level_of, smoothed, App, Mode, View, LEVELS, METRIC_COLUMNS};
use super::keymap::{Action, Scope};
use crate::engine::job::{JobRecord, JobState};
use crate::metrics::ClassScores;
use crate::progress::human_bytes;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;

pub const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);
pub const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);
pub const DIM: Style = Style::new().add_modifier(Modifier::DIM);

pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, app, header);
    match app.view {
        View::Catalog => draw_catalog(frame, app, body),
        View::Jobs => draw_jobs(frame, app, body),
        View::Runs => draw_runs(frame, app, body),
        View::Metrics => draw_metrics(frame, app, body),
        View::Logs => draw_logs(frame, app, body),
    }
    draw_footer(frame, app, footer);
    match &app.mode {
        Mode::Help => draw_help(frame, app, body),
        Mode::Detail => draw_detail(frame, app, body),
        Mode::Form(form) => super::forms::draw(frame, form, body),
        Mode::Confirm(question, _) => draw_question(frame, question, body),
        _ => {}
    }
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let mut tabs = vec![Span::styled(" areo ", HEADER.reversed())];
    for (i, view) in View::ALL.iter().enumerate() {
        tabs.push(Span::raw(" "));
        let text = format!("{} {}", i + 1, view.title());
        tabs.push(if *view == app.view {
            Span::styled(text, HEADER.underlined())
        } else {
            Span::styled(text, DIM)
        });
    }
    let daemon = match (&app.disconnected, &app.status) {
        (Some(why), _) => Span::styled(format!(" daemon: {why} "), Color::Red),
        (None, Some(status)) => {
            let running = status.jobs.get(&JobState::Running).copied().unwrap_or(0);
            let queued = status.jobs.get(&JobState::Queued).copied().unwrap_or(0);
            Span::raw(format!(
                " {running} running · {queued} queued · pid {} ",
                status.pid
            ))
        }
        (None, None) => Span::styled("connecting… ", DIM),
    };
    let [left, right] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(daemon.width() as u16),
    ])
    .areas(area);
    frame.render_widget(Line::from(tabs), left);
    frame.render_widget(Line::from(daemon).right_aligned(), right);
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let cursor = app.cursor(app.view.table());
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("/", HEADER),
            Span::raw(cursor.filter.clone()),
            Span::styled("▏ enter keeps it, esc clears it", DIM),
        ]),
        Mode::Palette(palette) => {
            let hint = if palette.offered.is_empty() {
                "▏ tab completes · ↑↓ history · a view, quit, or a command: train infer eval …"
                    .to_string()
            } else {
                format!("▏ {}", palette.offered.join(" "))
            };
            Line::from(vec![
                Span::styled(":", HEADER),
                Span::raw(palette.text.clone()),
                Span::styled(hint, DIM),
            ])
        }
        _ => match &app.message {
            Some((text, true)) => Line::from(Span::styled(text.clone(), Color::Red)),
            Some((text, false)) => Line::from(text.clone()),
            None => {
                let mut hints: Vec<String> = Vec::new();
                if !cursor.filter.is_empty() {
                    hints.push(format!("filter: {}", cursor.filter));
                }
                for (scope, action, what) in view_hints(app.view) {
                    if let Some(key) = app.keymap.key_for(scope, action) {
                        hints.push(format!("{key} {what}"));
                    }
                }
                for (action, what) in [(Action::Help, "help"), (Action::Quit, "quit")] {
                    if let Some(key) = app.keymap.key_for(Scope::Global, action) {
                        hints.push(format!("{key} {what}"));
                    }
                }
                Line::from(Span::styled(hints.join(" · "), DIM))
            }
        },
    };
    frame.render_widget(line, area);
}

fn view_hints(view: View) -> Vec<(Scope, Action, &'static str)> {
    let global = |action, what| (Scope::Global, action, what);
    match view {
        View::Catalog => vec![
            (Scope::Catalog, Action::Pick, "pick"),
            (Scope::Catalog, Action::FetchBrowse, "browse"),
            (Scope::Catalog, Action::FetchAll, "files"),
            (Scope::Catalog, Action::TileProduct, "tile"),
            (Scope::Catalog, Action::InferProducts, "infer"),
            (Scope::Catalog, Action::Search, "search"),
        ],
        View::Jobs => vec![
            (Scope::Jobs, Action::Open, "log"),
            (Scope::Jobs, Action::CancelJob, "cancel"),
            (Scope::Jobs, Action::RetryJob, "retry"),
            global(Action::Filter, "filter"),
        ],
        View::Runs => vec![
            (Scope::Runs, Action::NewRun, "new"),
            (Scope::Runs, Action::LikeRun, "like"),
            (Scope::Runs, Action::ResumeRun, "resume"),
            (Scope::Runs, Action::InferRun, "infer"),
            (Scope::Runs, Action::Evaluate, "eval"),
            (Scope::Runs, Action::Compare, "compare"),
        ],
        View::Metrics => vec![
            (Scope::Metrics, Action::Evaluate, "eval"),
            (Scope::Metrics, Action::Compare, "compare"),
            (
                Scope::Metrics,
                Action::ToggleNormalised,
                "counts/normalised",
            ),
            (Scope::Metrics, Action::Sort, "sort"),
        ],
        View::Logs => vec![
            (Scope::Logs, Action::Level, "level"),
            (Scope::Logs, Action::Follow, "follow"),
            global(Action::Filter, "filter"),
        ],
    }
}

pub fn titled(title: String) -> Block<'static> {
    Block::bordered().title(Span::styled(title, HEADER))
}

/// Renders rows `first..first + visible` of a long table: only those rows are built, so a
/// table of 100,000 products costs what a screenful does.
fn window(selected: usize, len: usize, visible: usize) -> (usize, usize) {
    if len <= visible {
        return (0, len);
    }
    let first = selected.saturating_sub(visible / 2).min(len - visible);
    (first, first + visible)
}

fn empty(frame: &mut Frame, area: Rect, block: Block, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(DIM)
            .wrap(Wrap { trim: true })
            .block(block),
        area,
    );
}

fn draw_catalog(frame: &mut Frame, app: &App, area: Rect) {
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

/// A progress bar drawn in text, for a table cell.
fn bar(done: u64, total: u64, width: usize) -> String {
    if total == 0 {
        return format!("{done}");
    }
    let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
    let filled = (fraction * width as f64).round() as usize;
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        fraction * 100.0
    )
}

fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

fn state_style(state: JobState) -> Style {
    match state {
        JobState::Running => Style::new().fg(Color::Cyan),
        JobState::Succeeded => Style::new().fg(Color::Green),
        JobState::Failed => Style::new().fg(Color::Red),
        JobState::Cancelled | JobState::Interrupted => Style::new().fg(Color::Yellow),
        JobState::Queued => DIM,
    }
}

fn draw_jobs(frame: &mut Frame, app: &App, area: Rect) {
    let jobs = app.visible_jobs();
    let cursor = app.cursor("jobs");
    let title = format!(" Jobs: {} of {} ", jobs.len(), app.jobs.len());
    if jobs.is_empty() {
        let text = if app.jobs.is_empty() {
            "No jobs yet. Every long command (fetch, tile, train, infer, `areo demo`) runs here as a job."
        } else {
            "No job matches the filter (esc clears it)."
        };
        return empty(frame, area, titled(title), text);
    }
    let rows_fit = area.height.saturating_sub(3) as usize;
    let selected = cursor.selected.min(jobs.len() - 1);
    let (first, last) = window(selected, jobs.len(), rows_fit.max(1));
    let narrow = area.width < 100;
    let rows: Vec<Row> = jobs[first..last]
        .iter()
        .map(|job| job_row(app, job, narrow))
        .collect();
    let widths: Vec<Constraint> = if narrow {
        vec![
            Constraint::Length(4),
            Constraint::Length(9),
            Constraint::Min(20),
            Constraint::Length(14),
            Constraint::Length(6),
        ]
    } else {
        vec![
            Constraint::Length(4),
            Constraint::Length(10),
            Constraint::Min(30),
            Constraint::Length(18),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(7),
        ]
    };
    let header: Vec<&str> = if narrow {
        vec!["ID", "STATE", "JOB", "PROGRESS", "ETA"]
    } else {
        vec!["ID", "STATE", "JOB", "PROGRESS", "RATE", "ELAPSED", "ETA"]
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(HEADER))
        .row_highlight_style(SELECTED)
        .block(titled(title));
    let mut state = TableState::default().with_selected(Some(selected - first));
    frame.render_stateful_widget(table, area, &mut state);
}

fn job_row<'a>(app: &App, job: &JobRecord, narrow: bool) -> Row<'a> {
    let progress = job.progress.as_ref();
    let (done, total) = progress.map_or((0, 0), |p| (p.done, p.total));
    let progress_text = match (job.state, progress) {
        (JobState::Running, Some(_)) => bar(done, total, if narrow { 8 } else { 12 }),
        (JobState::Succeeded, _) => "done".to_string(),
        (JobState::Failed, _) => job.error.clone().unwrap_or_default(),
        (JobState::Queued, _) if !job.after.is_empty() => {
            let ids: Vec<String> = job.after.iter().map(u64::to_string).collect();
            format!("after {}", ids.join(", "))
        }
        (_, Some(p)) if p.total > 0 => format!("{}/{}", p.done, p.total),
        _ => String::new(),
    };
    let rate = app.rates.get(&job.id).and_then(|r| r.per_second());
    let elapsed = job
        .started
        .map(|start| job.finished.unwrap_or(app.now) - start)
        .map(|d| duration(d.num_seconds()))
        .unwrap_or_default();
    let eta = match (job.state, rate) {
        (JobState::Running, Some(rate)) if total > done => {
            duration(((total - done) as f64 / rate).round() as i64)
        }
        _ => String::new(),
    };
    let label = progress.map_or("", |p| p.label.as_str());
    let rate_text = rate.map_or(String::new(), |r| {
        let unit = if label == "total" { "B/s" } else { "/s" };
        if unit == "B/s" {
            format!("{}/s", human_bytes(r as u64))
        } else {
            format!("{r:.1}/s")
        }
    });
    let mut cells = vec![
        Cell::from(job.id.to_string()),
        Cell::from(job.state.as_str()).style(state_style(job.state)),
        Cell::from(job.spec.describe()),
        Cell::from(progress_text),
    ];
    if !narrow {
        cells.push(Cell::from(rate_text));
        cells.push(Cell::from(elapsed));
    }
    cells.push(Cell::from(eta));
    Row::new(cells)
}

fn draw_runs(frame: &mut Frame, app: &App, area: Rect) {
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

fn draw_run_chart(
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

fn draw_epoch_table(
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

fn metric_value(s: &ClassScores, column: usize) -> f64 {
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

fn draw_metrics(frame: &mut Frame, app: &App, area: Rect) {
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
fn draw_pixel_report(
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
fn draw_detection_report(
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
fn truth_label(names: &[String], index: usize) -> String {
    names
        .get(index)
        .map_or("?".into(), |n| n.chars().take(10).collect())
}

/// The confusion matrix as a grid of cells shaded by their row's share.
fn draw_confusion(
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
fn shade(share: f64) -> Style {
    let step = (share * 4.0).round() as u8;
    match step {
        0 => Style::new(),
        1 => Style::new().bg(Color::Indexed(153)).fg(Color::Black),
        2 => Style::new().bg(Color::Indexed(111)).fg(Color::Black),
        3 => Style::new().bg(Color::Indexed(69)).fg(Color::White),
        _ => Style::new().bg(Color::Indexed(25)).fg(Color::White),
    }
}

fn draw_logs(frame: &mut Frame, app: &App, area: Rect) {
    let lines = app.visible_log();
    let title = format!(
        " Daemon log · {}+ · {} ",
        LEVELS[app.min_level],
        if app.follow { "following" } else { "paused" }
    );
    if lines.is_empty() {
        return empty(frame, area, titled(title), "Nothing logged at this level.");
    }
    let fits = area.height.saturating_sub(2) as usize;
    let cursor = app.cursor("logs");
    let end = if app.follow {
        lines.len()
    } else {
        (cursor.selected + 1).clamp(fits.min(lines.len()), lines.len())
    };
    let start = end.saturating_sub(fits);
    let shown: Vec<Line> = lines[start..end]
        .iter()
        .map(|line| {
            let style = match level_of(line) {
                3 => Style::new().fg(Color::Red),
                2 => Style::new().fg(Color::Yellow),
                0 => DIM,
                _ => Style::new(),
            };
            Line::styled(line.to_string(), style)
        })
        .collect();
    frame.render_widget(Paragraph::new(shown).block(titled(title)), area);
}

fn draw_question(frame: &mut Frame, question: &str, area: Rect) {
    let width = (question.chars().count() as u16 + 4).min(area.width);
    let area = popup(area, width, 4);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(Line::styled(question.to_string(), HEADER))
            .wrap(Wrap { trim: true })
            .block(titled(" Sure? ".into())),
        area,
    );
}

pub fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
    let scope = app.view.scope();
    let lines: Vec<Line> = app
        .keymap
        .help(scope)
        .into_iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!("{keys:>12}  "), HEADER),
                Span::raw(what),
            ])
        })
        .collect();
    let area = popup(area, 72, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(titled(format!(
            " Keys: {} (keymap.toml in the workspace changes them) ",
            app.view.title()
        ))),
        area,
    );
}

fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let inner = popup(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, inner);
    let (title, lines): (String, Vec<Line>) = match app.view {
        View::Jobs => match &app.job_detail {
            Some(job) => {
                let mut lines = vec![
                    Line::from(format!("{} · {}", job.state, job.spec.describe())),
                    Line::from(format!(
                        "attempts {} · created {}{}",
                        job.attempts,
                        job.created.format("%Y-%m-%d %H:%M:%S"),
                        if job.after.is_empty() {
                            String::new()
                        } else {
                            let ids: Vec<String> = job.after.iter().map(u64::to_string).collect();
                            format!(" · after job {}", ids.join(", "))
                        }
                    )),
                ];
                if let Some(error) = &job.error {
                    lines.push(Line::styled(format!("error: {error}"), Color::Red));
                }
                lines.push(Line::from(""));
                let fits = inner.height.saturating_sub(2) as usize;
                let room = fits.saturating_sub(lines.len());
                let start = job.log.len().saturating_sub(room);
                lines.extend(job.log[start..].iter().map(|l| Line::from(l.clone())));
                (format!(" Job {} ", job.id), lines)
            }
            None => (" Job ".into(), vec![Line::styled("loading…", DIM)]),
        },
        _ => match &app.product_detail {
            Some(detail) => {
                let p = &detail.row.product;
                let mut lines = vec![
                    Line::from(format!(
                        "{} {} · {}",
                        p.instrument_host, p.instrument, p.product_type
                    )),
                    Line::from(format!(
                        "centre {} · {} m/px · observed {}",
                        match (p.center_latitude, p.center_longitude) {
                            (Some(lat), Some(lon)) => format!("{lat:.4}°N {lon:.4}°E"),
                            _ => "-".into(),
                        },
                        p.map_scale.map_or("-".into(), |s| format!("{s:.2}")),
                        p.observation_time
                            .map_or("-".into(), |t| t.0.format("%Y-%m-%d %H:%M").to_string())
                    )),
                    Line::from(""),
                    Line::styled("files", HEADER),
                ];
                for file in &detail.files {
                    lines.push(Line::from(format!(
                        "{:<11} {:<36} {:>10}  {}",
                        // As text first: the state's Display does not pad.
                        file.state.to_string(),
                        file.name,
                        file.size
                            .or(file.kbytes.map(|k| k * 1000))
                            .map_or("-".into(), human_bytes),
                        file.file_type
                    )));
                }
                if !detail.made.is_empty() {
                    lines.push(Line::from(""));
                    lines.push(Line::styled("made from it", HEADER));
                    for artifact in &detail.made {
                        lines.push(Line::from(format!(
                            "{:<11} {:<48} job {}",
                            artifact.kind.as_str(),
                            artifact.name,
                            artifact.job.map_or("-".into(), |j| j.to_string())
                        )));
                    }
                }
                (format!(" {} ", p.pdsid), lines)
            }
            None => (" Product ".into(), vec![Line::styled("loading…", DIM)]),
        },
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(titled(title)),
        inner,
    );
}
