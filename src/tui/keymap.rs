//! Keys and what they do: the default bindings, overrides from the workspace's
//! `keymap.toml`, and the help text made from whatever is bound now.
//!
//! ```toml
//! # keymap.toml: action = "key" (or a list of keys); unlisted actions keep their defaults.
//! cancel-job = "x"
//! down = ["j", "down"]
//! ```

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;
use std::fmt;

/// Where a binding applies: everywhere, or in one view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Catalog,
    Jobs,
    Runs,
    Metrics,
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    Palette,
    Filter,
    Back,
    ViewCatalog,
    ViewJobs,
    ViewRuns,
    ViewMetrics,
    ViewLogs,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Refresh,
    Open,
    FetchBrowse,
    FetchAll,
    Pick,
    PickAll,
    InferProducts,
    TileWithLabels,
    Search,
    TileProduct,
    Compare,
    NewRun,
    LikeRun,
    ResumeRun,
    InferRun,
    Evaluate,
    NewDataset,
    StopRun,
    DeleteRun,
    CancelJob,
    RetryJob,
    ToggleSmooth,
    ToggleSteps,
    ToggleNormalised,
    Sort,
    Level,
    Follow,
}

/// Every action: its name in `keymap.toml`, its scope, its default keys and what it does.
const ACTIONS: &[(Action, &str, Scope, &[&str], &str)] = &[
    (
        Action::Quit,
        "quit",
        Scope::Global,
        &["q", "ctrl-c"],
        "quit (jobs keep running)",
    ),
    (Action::Help, "help", Scope::Global, &["?"], "this help"),
    (
        Action::Palette,
        "palette",
        Scope::Global,
        &[":"],
        "a view (:runs), or a command that queues work (:train …)",
    ),
    (
        Action::Filter,
        "filter",
        Scope::Global,
        &["/"],
        "filter the table",
    ),
    (
        Action::Back,
        "back",
        Scope::Global,
        &["esc"],
        "close, clear the filter",
    ),
    (
        Action::ViewCatalog,
        "view-catalog",
        Scope::Global,
        &["1"],
        "catalog",
    ),
    (Action::ViewJobs, "view-jobs", Scope::Global, &["2"], "jobs"),
    (
        Action::ViewRuns,
        "view-runs",
        Scope::Global,
        &["3"],
        "training runs",
    ),
    (
        Action::ViewMetrics,
        "view-metrics",
        Scope::Global,
        &["4"],
        "evaluation metrics",
    ),
    (
        Action::ViewLogs,
        "view-logs",
        Scope::Global,
        &["5"],
        "daemon log",
    ),
    (
        Action::Up,
        "up",
        Scope::Global,
        &["up", "k"],
        "previous row",
    ),
    (
        Action::Down,
        "down",
        Scope::Global,
        &["down", "j"],
        "next row",
    ),
    (
        Action::PageUp,
        "page-up",
        Scope::Global,
        &["pgup"],
        "page up",
    ),
    (
        Action::PageDown,
        "page-down",
        Scope::Global,
        &["pgdn"],
        "page down",
    ),
    (
        Action::Top,
        "top",
        Scope::Global,
        &["home", "g"],
        "first row",
    ),
    (
        Action::Bottom,
        "bottom",
        Scope::Global,
        &["end", "G"],
        "last row",
    ),
    (
        Action::Refresh,
        "refresh",
        Scope::Global,
        &["R"],
        "reload from the daemon",
    ),
    (
        Action::Open,
        "open",
        Scope::Catalog,
        &["enter"],
        "product details",
    ),
    (
        Action::Pick,
        "pick",
        Scope::Catalog,
        &["space"],
        "pick the product (the keys below act on the picked ones, else on the row)",
    ),
    (
        Action::PickAll,
        "pick-all",
        Scope::Catalog,
        &["a"],
        "pick every product the filter shows (again: none)",
    ),
    (
        Action::FetchBrowse,
        "fetch",
        Scope::Catalog,
        &["f"],
        "download the products' browse images",
    ),
    (
        Action::FetchAll,
        "fetch-all",
        Scope::Catalog,
        &["F"],
        "download the products' files, data files included",
    ),
    (
        Action::TileProduct,
        "tile",
        Scope::Catalog,
        &["t"],
        "tile the browse images into 256 px chips (fetching them first)",
    ),
    (
        Action::TileWithLabels,
        "tile-labelled",
        Scope::Catalog,
        &["T"],
        "tile the downloaded images with their labels: chip size, stride (form)",
    ),
    (
        Action::InferProducts,
        "infer",
        Scope::Catalog,
        &["i"],
        "run a trained model over the products, downloading first (form)",
    ),
    (
        Action::Search,
        "search",
        Scope::Catalog,
        &["s"],
        "search ODE and store what it finds",
    ),
    (
        Action::Open,
        "open",
        Scope::Jobs,
        &["enter"],
        "the job's log",
    ),
    (
        Action::CancelJob,
        "cancel-job",
        Scope::Jobs,
        &["c"],
        "cancel the job",
    ),
    (
        Action::RetryJob,
        "retry-job",
        Scope::Jobs,
        &["r"],
        "retry a failed or cancelled job",
    ),
    (
        Action::ToggleSmooth,
        "smooth",
        Scope::Runs,
        &["s"],
        "smoothed / raw loss",
    ),
    (
        Action::ToggleSteps,
        "steps",
        Scope::Runs,
        &["t"],
        "per epoch / per step (live)",
    ),
    (
        Action::Compare,
        "compare",
        Scope::Runs,
        &["m"],
        "compare with the selected run (again: stop)",
    ),
    (
        Action::NewRun,
        "new-run",
        Scope::Runs,
        &["n"],
        "train a new run (form)",
    ),
    (
        Action::LikeRun,
        "like-run",
        Scope::Runs,
        &["c"],
        "train a run like the selected one, with changes (form)",
    ),
    (
        Action::ResumeRun,
        "resume-run",
        Scope::Runs,
        &["r"],
        "resume the selected run from its checkpoint",
    ),
    (
        Action::InferRun,
        "infer",
        Scope::Runs,
        &["i"],
        "run the selected run over a product or image (form)",
    ),
    (
        Action::Evaluate,
        "evaluate",
        Scope::Runs,
        &["e"],
        "score one of its predictions, kept in Metrics (form)",
    ),
    (
        Action::NewDataset,
        "new-dataset",
        Scope::Runs,
        &["D"],
        "split tile sets into a dataset (form)",
    ),
    (
        Action::StopRun,
        "stop-run",
        Scope::Runs,
        &["x"],
        "stop the selected run when its epoch ends (checkpoint kept)",
    ),
    (
        Action::DeleteRun,
        "delete-run",
        Scope::Runs,
        &["d"],
        "delete the selected run (asks first)",
    ),
    (
        Action::Compare,
        "compare",
        Scope::Metrics,
        &["m"],
        "compare with the selected evaluation (again: stop)",
    ),
    (
        Action::Evaluate,
        "evaluate",
        Scope::Metrics,
        &["e"],
        "score a prediction, kept here (form)",
    ),
    (
        Action::ToggleNormalised,
        "normalised",
        Scope::Metrics,
        &["n"],
        "confusion: counts / normalised",
    ),
    (
        Action::Sort,
        "sort",
        Scope::Metrics,
        &["s"],
        "sort classes by the next column",
    ),
    (
        Action::Level,
        "level",
        Scope::Logs,
        &["l"],
        "lowest level shown",
    ),
    (
        Action::Follow,
        "follow",
        Scope::Logs,
        &["f"],
        "follow the end of the log",
    ),
];

/// A key as written in `keymap.toml` and in the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    code: KeyCodeName,
    ctrl: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyCodeName {
    Char(char),
    Enter,
    Esc,
    Tab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
}

const NAMED: [(&str, KeyCodeName); 12] = [
    ("space", KeyCodeName::Char(' ')),
    ("enter", KeyCodeName::Enter),
    ("esc", KeyCodeName::Esc),
    ("tab", KeyCodeName::Tab),
    ("up", KeyCodeName::Up),
    ("down", KeyCodeName::Down),
    ("left", KeyCodeName::Left),
    ("right", KeyCodeName::Right),
    ("pgup", KeyCodeName::PageUp),
    ("pgdn", KeyCodeName::PageDown),
    ("home", KeyCodeName::Home),
    ("end", KeyCodeName::End),
];

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let (ctrl, rest) = match text.strip_prefix("ctrl-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCodeName::Char(c),
            _ => NAMED
                .iter()
                .find(|(name, _)| *name == rest)
                .map(|(_, code)| *code)
                .ok_or_else(|| {
                    format!(
                        "unknown key {text:?}: use one character, ctrl-X, or one of {}",
                        NAMED.map(|(n, _)| n).join(", ")
                    )
                })?,
        };
        Ok(Key { code, ctrl })
    }

    pub fn from_event(event: &KeyEvent) -> Option<Key> {
        let code = match event.code {
            KeyCode::Char(c) => KeyCodeName::Char(c),
            KeyCode::Enter => KeyCodeName::Enter,
            KeyCode::Esc => KeyCodeName::Esc,
            KeyCode::Tab => KeyCodeName::Tab,
            KeyCode::Up => KeyCodeName::Up,
            KeyCode::Down => KeyCodeName::Down,
            KeyCode::Left => KeyCodeName::Left,
            KeyCode::Right => KeyCodeName::Right,
            KeyCode::PageUp => KeyCodeName::PageUp,
            KeyCode::PageDown => KeyCodeName::PageDown,
            KeyCode::Home => KeyCodeName::Home,
            KeyCode::End => KeyCodeName::End,
            _ => return None,
        };
        Some(Key {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        match self.code {
            KeyCodeName::Char(' ') => f.write_str("space"),
            KeyCodeName::Char(c) => write!(f, "{c}"),
            named => f.write_str(
                NAMED
                    .iter()
                    .find(|(_, code)| *code == named)
                    .map_or("?", |(name, _)| name),
            ),
        }
    }
}

/// The bindings in force.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<(Scope, Key), Action>,
}

impl Default for Keymap {
    fn default() -> Self {
        let mut bindings = BTreeMap::new();
        for (action, _, scope, keys, _) in ACTIONS {
            for key in *keys {
                bindings.insert(
                    (*scope, Key::parse(key).expect("default keys parse")),
                    *action,
                );
            }
        }
        Keymap { bindings }
    }
}

impl Keymap {
    /// The defaults with the overrides in `text` (a `keymap.toml`); `source` names it in errors.
    pub fn with_overrides(source: &str, text: &str) -> Result<Keymap, String> {
        let table: toml::Table = text.parse().map_err(|e| format!("{source}: {e}"))?;
        let mut keymap = Keymap::default();
        for (name, value) in table {
            let entries: Vec<_> = ACTIONS.iter().filter(|a| a.1 == name).collect();
            if entries.is_empty() {
                let names: Vec<&str> = ACTIONS.iter().map(|a| a.1).collect();
                return Err(format!(
                    "{source}: unknown action {name:?} (actions: {})",
                    names.join(", ")
                ));
            }
            let keys: Vec<Key> = match &value {
                toml::Value::String(key) => vec![Key::parse(key)],
                toml::Value::Array(keys) => keys
                    .iter()
                    .map(|k| match k.as_str() {
                        Some(key) => Key::parse(key),
                        None => Err(format!("{k} is not a key name")),
                    })
                    .collect(),
                other => vec![Err(format!("{other} is not a key name"))],
            }
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{source}: {name}: {e}"))?;
            for (action, _, scope, _, _) in entries {
                keymap
                    .bindings
                    .retain(|(s, _), a| !(s == scope && a == action));
                for key in &keys {
                    keymap.bindings.insert((*scope, *key), *action);
                }
            }
        }
        Ok(keymap)
    }

    /// The action of a key in a view: the view's own binding first, then the global one.
    pub fn action(&self, scope: Scope, event: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(event)?;
        self.bindings
            .get(&(scope, key))
            .or_else(|| self.bindings.get(&(Scope::Global, key)))
            .copied()
    }

    /// Help lines for a view: its own keys, then the global ones, as bound now.
    pub fn help(&self, scope: Scope) -> Vec<(String, &'static str)> {
        let mut lines = Vec::new();
        for wanted in [scope, Scope::Global] {
            for (action, _, action_scope, _, text) in ACTIONS {
                if *action_scope != wanted {
                    continue;
                }
                let keys: Vec<String> = self
                    .bindings
                    .iter()
                    .filter(|((s, _), a)| *s == wanted && *a == action)
                    .map(|((_, key), _)| key.to_string())
                    .collect();
                if !keys.is_empty() {
                    lines.push((keys.join(" "), *text));
                }
            }
            if scope == Scope::Global {
                break;
            }
        }
        lines
    }

    /// A key bound to an action in a scope, for hints: a plain one before a ctrl- one.
    pub fn key_for(&self, scope: Scope, action: Action) -> Option<Key> {
        self.bindings
            .iter()
            .filter(|((s, _), a)| *s == scope && **a == action)
            .map(|((_, key), _)| *key)
            .min_by_key(|key| key.ctrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn view_keys_come_before_global_ones() {
        let keymap = Keymap::default();
        assert_eq!(
            keymap.action(Scope::Jobs, &press('c')),
            Some(Action::CancelJob)
        );
        assert_eq!(
            keymap.action(Scope::Runs, &press('c')),
            Some(Action::LikeRun)
        );
        assert_eq!(keymap.action(Scope::Logs, &press('c')), None);
        assert_eq!(
            keymap.action(Scope::Runs, &press('s')),
            Some(Action::ToggleSmooth)
        );
        assert_eq!(
            keymap.action(Scope::Metrics, &press('s')),
            Some(Action::Sort)
        );
        assert_eq!(keymap.action(Scope::Logs, &press('q')), Some(Action::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(keymap.action(Scope::Jobs, &ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn overrides_replace_an_actions_keys_and_show_in_the_help() {
        let keymap = Keymap::with_overrides(
            "keymap.toml",
            "cancel-job = \"x\"\ndown = [\"n\", \"down\"]",
        )
        .unwrap();
        assert_eq!(
            keymap.action(Scope::Jobs, &press('x')),
            Some(Action::CancelJob)
        );
        assert_eq!(keymap.action(Scope::Jobs, &press('c')), None);
        assert_eq!(keymap.action(Scope::Jobs, &press('n')), Some(Action::Down));
        assert_eq!(keymap.action(Scope::Jobs, &press('j')), None);
        let help = keymap.help(Scope::Jobs);
        assert_eq!(help[1], ("x".to_string(), "cancel the job"));
        assert!(
            help.contains(&("n down".to_string(), "next row")),
            "{help:?}"
        );
    }

    #[test]
    fn bad_keymaps_name_the_file_and_the_problem() {
        let error = Keymap::with_overrides("km.toml", "launch = \"x\"").unwrap_err();
        assert!(
            error.starts_with("km.toml: unknown action \"launch\""),
            "{error}"
        );
        let error = Keymap::with_overrides("km.toml", "quit = \"shift-q\"").unwrap_err();
        assert!(error.contains("quit: unknown key \"shift-q\""), "{error}");
        let error = Keymap::with_overrides("km.toml", "quit = 3").unwrap_err();
        assert!(error.contains("quit: 3 is not a key name"), "{error}");
        assert!(Keymap::with_overrides("km.toml", "quit = ").is_err());
    }
}
