//! The views: one module each, holding its drawing and its own keys (`act`), over the state
//! in [`App`]. Here: the frame around them (a header with the views and the daemon, a footer
//! with the view's keys, or the filter, the command being typed, a message), the popups and
//! forms drawn over them, and what they share. Colours are the terminal's own named ones, so
//! they read on dark and light backgrounds alike.

pub(super) mod catalog;
pub(super) mod jobs;
pub(super) mod logs;
pub(super) mod metrics;
mod popups;
pub(super) mod runs;

use super::app::{App, Mode, View};
use super::keymap::{Action, Scope};
use crate::engine::job::JobState;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
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
        View::Catalog => catalog::draw(frame, app, body),
        View::Jobs => jobs::draw(frame, app, body),
        View::Runs => runs::draw(frame, app, body),
        View::Metrics => metrics::draw(frame, app, body),
        View::Logs => logs::draw(frame, app, body),
    }
    draw_footer(frame, app, footer);
    match &app.mode {
        Mode::Help => popups::draw_help(frame, app, body),
        Mode::Detail => popups::draw_detail(frame, app, body),
        Mode::Form(form) => super::forms::draw(frame, form, body),
        Mode::Confirm(question, _) => popups::draw_question(frame, question, body),
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
pub(super) fn window(selected: usize, len: usize, visible: usize) -> (usize, usize) {
    if len <= visible {
        return (0, len);
    }
    let first = selected.saturating_sub(visible / 2).min(len - visible);
    (first, first + visible)
}

pub(super) fn empty(frame: &mut Frame, area: Rect, block: Block, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(DIM)
            .wrap(Wrap { trim: true })
            .block(block),
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
