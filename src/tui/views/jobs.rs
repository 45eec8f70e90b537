//! The jobs view: every job with its state, progress, rate, elapsed time and ETA.

use super::{empty, titled, window, DIM, HEADER, SELECTED};
use crate::engine::job::{JobRecord, JobState};
use crate::progress::human_bytes;
use crate::tui::app::App;
use crate::tui::app::{Command, Mode};
use crate::tui::keymap::Action;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

/// A progress bar drawn in text, for a table cell.
pub(super) fn bar(done: u64, total: u64, width: usize) -> String {
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

pub(super) fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

pub(super) fn state_style(state: JobState) -> Style {
    match state {
        JobState::Running => Style::new().fg(Color::Cyan),
        JobState::Succeeded => Style::new().fg(Color::Green),
        JobState::Failed => Style::new().fg(Color::Red),
        JobState::Cancelled | JobState::Interrupted => Style::new().fg(Color::Yellow),
        JobState::Queued => DIM,
    }
}

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
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

pub(super) fn job_row<'a>(app: &App, job: &JobRecord, narrow: bool) -> Row<'a> {
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

/// The jobs view's keys: a job's log, cancel, retry.
pub(in crate::tui) fn act(app: &mut App, action: Action) -> Vec<Command> {
    let Some(id) = app.selected_job() else {
        return Vec::new();
    };
    match action {
        Action::Open => {
            app.job_detail = app.jobs.get(&id).cloned();
            app.mode = Mode::Detail;
            vec![Command::Job(id)]
        }
        Action::CancelJob => vec![Command::Cancel(id)],
        Action::RetryJob => vec![Command::Retry(id)],
        _ => Vec::new(),
    }
}
