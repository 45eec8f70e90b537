//! Popups over any view: the help, a job's or a product's details, a question.

use super::{popup, titled, DIM, HEADER};
use crate::progress::human_bytes;
use crate::tui::app::{App, View};
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

pub(super) fn draw_question(frame: &mut Frame, question: &str, area: Rect) {
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

pub(super) fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
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

pub(super) fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
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
