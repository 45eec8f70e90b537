//! Drawing for people: aligned tables, sizes, and progress bars.

pub use crate::progress::human_bytes;
use crate::progress::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

pub fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Progress bars on a terminal, several at once; plain throttled lines when stderr is a pipe
/// or a log, so scripts and logs still see how far the work got.
pub struct ProgressGroup {
    bars: Option<MultiProgress>,
}

impl ProgressGroup {
    pub fn new() -> Self {
        ProgressGroup {
            bars: std::io::stderr().is_terminal().then(MultiProgress::new),
        }
    }

    /// A new bar counting items, or bytes.
    pub fn add(&self, bytes: bool) -> CliProgress {
        match &self.bars {
            Some(bars) => {
                let template = if bytes {
                    "{msg:40!} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
                } else {
                    "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})"
                };
                let bar = bars.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("static template")
                        .progress_chars("=> "),
                );
                CliProgress::Bar(bar)
            }
            None => CliProgress::Lines(Mutex::new(Lines::default())),
        }
    }
}

#[derive(Default)]
pub struct Lines {
    label: String,
    done: u64,
    total: u64,
    printed: Option<Instant>,
}

pub enum CliProgress {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

impl CliProgress {
    /// A single bar of items.
    pub fn new() -> Self {
        ProgressGroup::new().add(false)
    }
}

/// At most this often per line-mode task.
const LINE_INTERVAL: Duration = Duration::from_millis(250);

impl Progress for CliProgress {
    fn start(&self, label: &str, total: u64) {
        match self {
            CliProgress::Bar(bar) => {
                bar.set_message(label.to_string());
                bar.set_length(total);
                bar.set_position(0);
            }
            CliProgress::Lines(lines) => {
                *lines.lock().expect("progress lock") = Lines {
                    label: label.to_string(),
                    total,
                    ..Lines::default()
                };
            }
        }
    }

    fn advance(&self, units: u64) {
        match self {
            CliProgress::Bar(bar) => bar.inc(units),
            CliProgress::Lines(lines) => {
                let mut lines = lines.lock().expect("progress lock");
                lines.done += units;
                if lines.printed.is_none_or(|at| at.elapsed() >= LINE_INTERVAL) {
                    eprintln!("{}: {}/{}", lines.label, lines.done, lines.total);
                    lines.printed = Some(Instant::now());
                }
            }
        }
    }

    fn finish(&self) {
        match self {
            CliProgress::Bar(bar) => bar.finish_and_clear(),
            CliProgress::Lines(lines) => {
                let lines = lines.lock().expect("progress lock");
                if lines.printed.is_some() {
                    eprintln!("{}: {}/{} done", lines.label, lines.done, lines.total);
                }
            }
        }
    }
}

/// `X,Y,W,H` in whole pixels, for a flag named `flag`.
pub fn parse_box(flag: &str, text: &str) -> anyhow::Result<[u32; 4]> {
    let parts: Vec<u32> = text
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{flag} {text:?}: expected four whole numbers X,Y,W,H"))?;
    parts[..]
        .try_into()
        .map_err(|_| anyhow::anyhow!("{flag} {text:?}: expected X,Y,W,H"))
}
