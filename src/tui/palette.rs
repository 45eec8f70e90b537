//! The `:` palette: a view's name, `quit`, or one of the CLI's own subcommands that queue
//! work (`train --config models/unet-tiny.toml --dataset craters --epochs 30`), parsed by the
//! CLI's clap definitions when it reaches the feed. Here: the line being typed, the history
//! (↑ ↓), and Tab completion of subcommands, options and the names the dashboard knows
//! (configurations, datasets, runs, products).

use super::app::App;
use super::forms::{chosen_value, devices};
use crate::product::FileState;

/// A palette line being typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Palette {
    pub text: String,
    /// Where ↑ has gone in the history (0: the newest line).
    pub back: Option<usize>,
    /// What Tab offered when more than one word fits.
    pub offered: Vec<String>,
}

/// What the palette's words may start with besides the subcommands.
pub const VIEW_WORDS: [&str; 6] = ["catalog", "jobs", "runs", "metrics", "logs", "quit"];

/// Lines kept in the history.
pub const HISTORY: usize = 200;

impl Palette {
    /// ↑ (older) or ↓ (newer) through `history` (oldest first).
    pub fn browse(&mut self, history: &[String], older: bool) {
        if history.is_empty() {
            return;
        }
        let back = match (self.back, older) {
            (None, true) => Some(0),
            (None, false) => None,
            (Some(n), true) => Some((n + 1).min(history.len() - 1)),
            (Some(0), false) => None,
            (Some(n), false) => Some(n - 1),
        };
        self.back = back;
        self.text = back.map_or_else(String::new, |n| history[history.len() - 1 - n].clone());
        self.offered.clear();
    }

    /// Tab: completes the word under the cursor (the line's end) as far as every candidate
    /// agrees, and offers them all when they differ.
    pub fn complete(&mut self, app: &App) {
        let candidates = candidates(&self.text, app);
        let current = current_word(&self.text);
        let fitting: Vec<String> = candidates
            .into_iter()
            .filter(|c| c.starts_with(current))
            .collect();
        self.offered.clear();
        match fitting.as_slice() {
            [] => {}
            [only] => {
                self.replace_current(only);
                self.text.push(' ');
            }
            several => {
                let common = common_prefix(several);
                if common.len() > current.len() {
                    self.replace_current(&common);
                }
                self.offered = several.to_vec();
            }
        }
    }

    fn replace_current(&mut self, word: &str) {
        let keep = self.text.len() - current_word(&self.text).len();
        self.text.truncate(keep);
        self.text.push_str(&shell_word(word));
    }
}

/// The word being typed: what follows the last space.
fn current_word(text: &str) -> &str {
    text.rsplit(' ').next().unwrap_or_default()
}

/// A word as a shell would need it written (quoted when it has spaces or quotes).
fn shell_word(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| word.to_string(), |quoted| quoted.into_owned())
}

fn common_prefix(words: &[String]) -> String {
    let first = &words[0];
    let mut end = first.len();
    for word in &words[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(word.chars())
                .find(|((_, a), b)| a != b)
                .map_or(first.len().min(word.len()), |((i, _), _)| i),
        );
    }
    first[..end].to_string()
}

/// What may come at the end of `text`: subcommands first, then the options of the
/// subcommand typed, or the values the option before takes.
fn candidates(text: &str, app: &App) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let typing_new = text.is_empty() || text.ends_with(' ');
    let done = if typing_new {
        &words[..]
    } else {
        &words[..words.len().saturating_sub(1)]
    };
    // The longest subcommand path the finished words start with.
    let command = app
        .commands
        .iter()
        .filter(|(path, _)| {
            let path: Vec<&str> = path.split(' ').collect();
            done.len() >= path.len() && done[..path.len()] == path[..]
        })
        .max_by_key(|(path, _)| path.len());
    let Some((path, options)) = command else {
        // Still choosing the subcommand: its next word.
        let mut next: Vec<String> = app
            .commands
            .iter()
            .filter_map(|(path, _)| {
                let path: Vec<&str> = path.split(' ').collect();
                (path.len() > done.len() && path[..done.len()] == done[..])
                    .then(|| path[done.len()].to_string())
            })
            .collect();
        if done.is_empty() {
            next.extend(VIEW_WORDS.map(String::from));
        }
        next.dedup();
        return next;
    };
    let current = if typing_new {
        ""
    } else {
        words.last().copied().unwrap_or_default()
    };
    if current.starts_with('-') {
        return options.clone();
    }
    let previous = done.last().copied().unwrap_or_default();
    let runs = || app.runs.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    let products = || {
        app.products
            .iter()
            .filter(|p| path != "fetch" || p.state != FileState::Complete)
            .map(|p| p.product.pdsid.clone())
            .collect::<Vec<_>>()
    };
    match previous {
        "--config" => app.configs.iter().map(|c| c.path.clone()).collect(),
        "--dataset" => app.datasets.iter().map(|d| d.name.clone()).collect(),
        "--run" | "--resume" | "--from-run" => runs(),
        "--product" => products(),
        "--weights" => vec!["last".into(), "best".into()],
        "--device" => devices(app)
            .iter()
            .map(|d| chosen_value(d).to_string())
            .collect(),
        _ if path == "fetch" => products(),
        _ => Vec::new(),
    }
}
