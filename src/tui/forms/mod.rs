//! Forms: the dashboard's way of asking for the few settings a job needs. One component
//! ([`Form`]: fields, focus, keys, drawing) and one module per form, which builds it from
//! what the dashboard knows and turns it into work: each field checked first, its error shown
//! beside it. Every form but the ODE search becomes a command line, planned by the same code
//! as the `:` palette and the CLI, so a form queues exactly the jobs its command would.

pub mod dataset;
pub mod eval;
pub mod infer;
pub mod search;
pub mod tile;
pub mod train;

use super::app::App;
use super::views::{popup, titled, DIM, HEADER, SELECTED};
use crate::engine::job::NewJob;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Which form it is: what its fields become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    Search,
    Train,
    Infer,
    Eval,
    Dataset,
    Tile,
}

/// How a field is edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text,
    /// One of these; ← → step through them.
    Choice(Vec<String>),
    /// "yes" or "no"; space or ← → flip it.
    Toggle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
    pub input: Input,
    /// What is wrong with the value, shown beside it.
    pub error: Option<String>,
    /// The command-line option this field becomes, so the planner's errors naming it land
    /// beside it.
    pub option: &'static str,
}

impl Field {
    pub fn text(label: &'static str, option: &'static str, value: impl Into<String>) -> Field {
        Field {
            label,
            value: value.into(),
            input: Input::Text,
            error: None,
            option,
        }
    }

    pub fn choice(label: &'static str, option: &'static str, choices: Vec<String>) -> Field {
        Field {
            label,
            value: choices.first().cloned().unwrap_or_default(),
            input: Input::Choice(choices),
            error: None,
            option,
        }
    }

    pub fn toggle(label: &'static str, option: &'static str, on: bool) -> Field {
        Field {
            label,
            value: if on { "yes" } else { "no" }.into(),
            input: Input::Toggle,
            error: None,
            option,
        }
    }

    /// Chooses `value` when it is one of the choices.
    pub fn choosing(mut self, value: &str) -> Field {
        if let Input::Choice(choices) = &self.input {
            if let Some(choice) = choices.iter().find(|c| chosen_value(c) == value) {
                self.value = choice.clone();
            }
        }
        self
    }
}

/// What a form asks for once every field is right.
#[derive(Debug, Clone, PartialEq)]
pub enum Submit {
    /// Jobs made here (the ODE search, which needs the dashboard's ODE address).
    Jobs(Vec<NewJob>),
    /// Command lines (without `areo`), each planned as the palette plans it.
    Lines(Vec<Vec<String>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub kind: FormKind,
    pub title: String,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// A line under the fields: what the form does, or why the daemon refused it.
    pub note: Option<(String, bool)>,
    /// Lines submitted that the daemon has not planned and queued yet.
    pub pending: usize,
    /// What the form acts on when it was opened on a selection (the picked products).
    pub targets: Vec<String>,
}

/// What a key did to a form.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Editing,
    Cancel,
    Submit,
}

impl Form {
    pub fn new(kind: FormKind, title: impl Into<String>, fields: Vec<Field>) -> Form {
        Form {
            kind,
            title: title.into(),
            fields,
            focus: 0,
            note: None,
            pending: 0,
            targets: Vec::new(),
        }
    }

    pub fn value(&self, label: &str) -> &str {
        self.field(label).map_or("", |f| f.value.trim())
    }

    pub fn field(&self, label: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.label == label)
    }

    fn field_mut(&mut self, label: &str) -> Option<&mut Field> {
        self.fields.iter_mut().find(|f| f.label == label)
    }

    pub fn set(&mut self, label: &str, value: impl Into<String>) {
        if let Some(field) = self.field_mut(label) {
            field.value = value.into();
        }
    }

    pub fn is_on(&self, label: &str) -> bool {
        self.value(label) == "yes"
    }

    /// Marks a field wrong.
    pub fn fail(&mut self, label: &str, error: impl Into<String>) {
        if let Some(field) = self.field_mut(label) {
            field.error = Some(error.into());
        }
    }

    pub fn errors(&self) -> usize {
        self.fields.iter().filter(|f| f.error.is_some()).count()
    }

    fn clear_errors(&mut self) {
        for field in &mut self.fields {
            field.error = None;
        }
        self.note = None;
    }

    /// The daemon (or the planner) refused the form: the message goes beside the field whose
    /// option it names, else under the fields.
    pub fn refused(&mut self, message: &str) {
        // The longest option named: `--validation-box` rather than `--validation`.
        let named = (0..self.fields.len())
            .filter(|i| {
                let option = self.fields[*i].option;
                !option.is_empty() && message.contains(option)
            })
            .max_by_key(|i| self.fields[*i].option.len());
        match named {
            Some(i) => {
                self.fields[i].error = Some(message.to_string());
                self.focus = i;
            }
            None => self.note = Some((message.to_string(), true)),
        }
    }

    pub fn key(&mut self, event: KeyEvent) -> Outcome {
        if self.pending > 0 {
            // Only leaving is possible while the daemon is asked.
            return if event.code == KeyCode::Esc {
                Outcome::Cancel
            } else {
                Outcome::Editing
            };
        }
        let count = self.fields.len();
        let field = &mut self.fields[self.focus];
        match event.code {
            KeyCode::Esc => return Outcome::Cancel,
            KeyCode::Enter => {
                self.clear_errors();
                return Outcome::Submit;
            }
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % count,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + count - 1) % count,
            KeyCode::Left | KeyCode::Right => {
                let forward = event.code == KeyCode::Right;
                match &field.input {
                    Input::Choice(choices) if !choices.is_empty() => {
                        let at = choices.iter().position(|c| *c == field.value).unwrap_or(0);
                        let next = if forward {
                            (at + 1) % choices.len()
                        } else {
                            (at + choices.len() - 1) % choices.len()
                        };
                        field.value = choices[next].clone();
                        field.error = None;
                    }
                    Input::Toggle => flip(field),
                    _ => {}
                }
            }
            KeyCode::Char(' ') if field.input == Input::Toggle => flip(field),
            KeyCode::Char('u')
                if event.modifiers.contains(KeyModifiers::CONTROL)
                    && field.input == Input::Text =>
            {
                field.value.clear();
            }
            KeyCode::Char(c)
                if field.input == Input::Text
                    && !event.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                field.value.push(c);
                field.error = None;
            }
            KeyCode::Backspace if field.input == Input::Text => {
                field.value.pop();
                field.error = None;
            }
            _ => {}
        }
        Outcome::Editing
    }

    /// The command line this form's fields make: `--option value` for each text or choice
    /// field with a value, `--option` for each toggle that is on.
    pub fn options(&self, labels: &[&str]) -> Vec<String> {
        let mut words = Vec::new();
        for label in labels {
            let Some(field) = self.field(label) else {
                continue;
            };
            let value = field.value.trim();
            match field.input {
                Input::Toggle if value == "yes" => words.push(field.option.to_string()),
                Input::Toggle => {}
                _ if value.is_empty() => {}
                _ => {
                    words.push(field.option.to_string());
                    words.push(chosen_value(value).to_string());
                }
            }
        }
        words
    }
}

fn flip(field: &mut Field) {
    field.value = if field.value == "yes" { "no" } else { "yes" }.into();
}

/// The value other fields of the form follow, when it has one: a training form's numbers
/// are the chosen configuration's, an evaluation's fields the chosen prediction's.
pub fn leading_value(form: &Form) -> Option<String> {
    let label = match form.kind {
        FormKind::Train => train::CONFIG,
        FormKind::Eval => eval::PREDICTION,
        _ => return None,
    };
    Some(form.value(label).to_string())
}

/// Brings the fields that follow the leading value in line with it, after it changed.
pub fn follow_leading_value(form: &mut Form, app: &App) {
    match form.kind {
        FormKind::Train => train::refill(form, app),
        FormKind::Eval => eval::refit(form, app),
        _ => {}
    }
}

/// Checks a form against what the dashboard knows and turns it into work; `None` when a
/// field is wrong (its error set).
pub fn submit(form: &mut Form, app: &App) -> Option<Submit> {
    let submitted = match form.kind {
        FormKind::Search => search::submit(form, app),
        FormKind::Train => train::submit(form, app),
        FormKind::Infer => infer::submit(form, app),
        FormKind::Eval => eval::submit(form, app),
        FormKind::Dataset => dataset::submit(form),
        FormKind::Tile => tile::submit(form),
    };
    (form.errors() == 0).then_some(submitted).flatten()
}

/// A whole number of at least `min`, or what is wrong with the text.
pub fn whole(text: &str, min: u64) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("at least {min}")),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Choices may say more after ` · ` (a GPU's memory, a dataset's chips): what comes
/// before it is the value a command line takes.
const COMMENT: &str = " · ";

pub fn chosen_value(choice: &str) -> &str {
    choice.split(COMMENT).next().unwrap_or(choice)
}

/// `base`, or `base-2`, `base-3`... whichever is not `taken`: a name to offer.
pub fn free_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    std::iter::once(base.to_string())
        .chain((2..).map(|n| format!("{base}-{n}")))
        .find(|name| !taken(name))
        .expect("some suffix is free")
}

/// Products a form acts on, as its input shows them: one by its id, several by their count.
pub fn products_shown(products: &[String]) -> String {
    match products {
        [one] => one.clone(),
        many => format!("{} picked products", many.len()),
    }
}

/// Whether `text` is a box `X,Y,W,H` in whole pixels (as `--box` takes it).
pub fn is_box(text: &str) -> bool {
    let parts: Vec<_> = text.split(',').map(str::trim).collect();
    parts.len() == 4 && parts.iter().all(|p| p.parse::<u32>().is_ok())
}

/// A workspace name (run, dataset, evaluation): what `check_plain_name` allows.
pub fn plain_name(what: &'static str, text: &str) -> Result<(), String> {
    crate::product::check_plain_name(what, text).map_err(|e| e.to_string())
}

/// Device choices: the CPU, then each GPU the daemon counts, with its memory in use when the
/// driver said.
pub fn devices(app: &App) -> Vec<String> {
    let Some(status) = &app.status else {
        return vec!["cpu".into()];
    };
    let gpu = |i: u32| match status.gpus.iter().find(|g| g.index == i) {
        Some(reading) => format!("cuda:{i}{COMMENT}{} in use", reading.memory),
        None => format!("cuda:{i}"),
    };
    std::iter::once("cpu".to_string())
        .chain((0..status.resources.gpu).map(gpu))
        .collect()
}

/// Width of the label column.
const LABEL: usize = 16;

pub fn draw(frame: &mut Frame, form: &Form, area: Rect) {
    let width = area.width.saturating_sub(2).min(96);
    let value_room = (width as usize).saturating_sub(LABEL + 6);
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let shown = match &field.input {
            Input::Text if focused => format!("{}▏", field.value),
            Input::Text => field.value.clone(),
            Input::Choice(choices) if choices.is_empty() => "(none)".into(),
            Input::Choice(choices) => {
                let at = choices.iter().position(|c| *c == field.value).unwrap_or(0);
                format!("◂ {} ▸ {}/{}", field.value, at + 1, choices.len())
            }
            Input::Toggle => format!("[{}]", if field.value == "yes" { "x" } else { " " }),
        };
        let shown = tail(&shown, value_room);
        let mut spans = vec![
            Span::styled(format!("{:>LABEL$}  ", field.label), HEADER),
            Span::styled(shown.clone(), if focused { SELECTED } else { Style::new() }),
        ];
        if let Some(error) = &field.error {
            let room = value_room.saturating_sub(shown.chars().count() + 2);
            spans.push(Span::styled(
                format!("  {}", head(error, room)),
                Style::new().fg(Color::Red),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    // The focused field's whole error, which may not fit beside it.
    let footer = match (&form.fields[form.focus].error, &form.note) {
        (Some(error), _) => Line::styled(error.clone(), Color::Red),
        (None, Some((note, true))) => Line::styled(note.clone(), Color::Red),
        (None, Some((note, false))) => Line::styled(note.clone(), DIM),
        (None, None) if form.pending > 0 => Line::styled("asking the daemon…", DIM),
        (None, None) => Line::styled(
            "tab/↓ next · ←→ choose · space tick · enter queue · esc cancel",
            DIM,
        ),
    };
    lines.push(footer);
    let height = lines.len() as u16 + 2;
    let area = popup(area, width, height);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(titled(format!(" {} ", form.title))),
        area,
    );
}

/// The last `room` characters of `text` (a long path shows its end).
fn tail(text: &str, room: usize) -> String {
    let count = text.chars().count();
    if count <= room || room < 2 {
        return text.to_string();
    }
    let skipped: String = text.chars().skip(count - room + 1).collect();
    format!("…{skipped}")
}

/// The first `room` characters of `text`.
fn head(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_string();
    }
    let kept: String = text.chars().take(room.saturating_sub(1)).collect();
    format!("{kept}…")
}
