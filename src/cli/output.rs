//! Drawing for people: aligned tables, sizes, and progress bars.

use crate::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Bytes in SI units, as ODE counts them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A bar on a terminal; plain lines when stderr is a pipe or a log, so scripts and logs still
/// see how far the work got.
pub enum CliProgress {
    Bar(ProgressBar),
    Lines(std::sync::Mutex<(String, u64, u64)>),
}

impl CliProgress {
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            CliProgress::Bar(ProgressBar::hidden())
        } else {
            CliProgress::Lines(std::sync::Mutex::new((String::new(), 0, 0)))
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, label: &str, total: u64) {
        match self {
            CliProgress::Bar(bar) => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bar.set_message(label.to_string());
                bar.set_length(total);
                bar.set_position(0);
            }
            CliProgress::Lines(state) => {
                *state.lock().expect("progress lock") = (label.to_string(), 0, total);
            }
        }
    }

    fn advance(&self, units: u64) {
        match self {
            CliProgress::Bar(bar) => bar.inc(units),
            CliProgress::Lines(state) => {
                let mut state = state.lock().expect("progress lock");
                state.1 += units;
                eprintln!("{}: {}/{}", state.0, state.1, state.2);
            }
        }
    }

    fn finish(&self) {
        if let CliProgress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
