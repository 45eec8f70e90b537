//! The logs view: the daemon's log, by level, following its end.

use super::{empty, titled, DIM};
use crate::tui::app::Command;
use crate::tui::app::{level_of, App, LEVELS};
use crate::tui::keymap::Action;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub(super) fn draw(frame: &mut Frame, app: &App, area: Rect) {
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

/// The logs view's keys: the lowest level shown, following the end.
pub(in crate::tui) fn act(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::Level => app.min_level = (app.min_level + 1) % LEVELS.len(),
        Action::Follow => app.follow = !app.follow,
        _ => {}
    }
    Vec::new()
}
