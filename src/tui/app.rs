//! The dashboard's state and how keys and daemon news change it: the modes (filter, palette,
//! forms, popups), the keys every view shares, and news from the daemon; a view's own keys
//! are its module's (`views::*::act`). Nothing here draws or talks to the daemon: keys become
//! [`Command`]s for the feed, news arrives as [`Update`]s, so every view can be built from
//! realistic state in tests.

use super::forms::{self, Form, Outcome, Submit};
use super::keymap::{Action, Keymap, Scope};
use super::palette::{self, Palette};
use super::views;
use crate::catalog::ProductRow;
use crate::engine::job::{JobId, JobRecord, JobSpec, JobState, NewJob};
use crate::engine::protocol::{DaemonStatus, Event};
use crate::lineage::Artifact;
use crate::nn::config::RunConfig;
use crate::nn::run::{EpochMetrics, RunRecord};
use crate::pipeline::dataset::DatasetSummary;
use crate::pipeline::evaluate::KeptReport;
use crate::product::ProductFile;
use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Catalog,
    Jobs,
    Runs,
    Metrics,
    Logs,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Catalog,
        View::Jobs,
        View::Runs,
        View::Metrics,
        View::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Catalog => "Catalog",
            View::Jobs => "Jobs",
            View::Runs => "Runs",
            View::Metrics => "Metrics",
            View::Logs => "Logs",
        }
    }

    /// The keymap scope of the view's own keys.
    pub fn scope(self) -> Scope {
        match self {
            View::Catalog => Scope::Catalog,
            View::Jobs => Scope::Jobs,
            View::Runs => Scope::Runs,
            View::Metrics => Scope::Metrics,
            View::Logs => Scope::Logs,
        }
    }

    /// The name its table's cursor and filter are kept under.
    pub fn table(self) -> &'static str {
        match self {
            View::Catalog => "catalog",
            View::Jobs => "jobs",
            View::Runs => "runs",
            View::Metrics => "metrics",
            View::Logs => "logs",
        }
    }

    fn from_name(name: &str) -> Option<View> {
        View::ALL
            .into_iter()
            .find(|v| v.title().eq_ignore_ascii_case(name))
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a `/` filter for the current view.
    Filter,
    /// Typing a `:` command.
    Palette(Palette),
    Help,
    /// A popup: a job's log or a product's details.
    Detail,
    /// A form: the ODE search, training, inference, evaluation, a dataset.
    Form(Box<Form>),
    /// A question: `y` sends the command, any other key drops it.
    Confirm(String, Command),
}

/// A model configuration the training form offers: its path as given to `--config`, and
/// what it holds (or why it does not read).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigChoice {
    pub path: String,
    pub config: Result<RunConfig, String>,
}

/// Requests for the feed, which talks to the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RefreshAll,
    Products,
    Product(String),
    Job(JobId),
    /// Load this run now and keep it fresh; the second is the run compared with it.
    Runs(Option<String>, Option<String>),
    /// Tile a product's browse image, downloading it first when it is not here.
    TileProduct(String),
    Cancel(JobId),
    /// Ask a job to end at its next boundary (a training run: its epoch's end).
    EndEarly(JobId),
    DeleteRun(String),
    Retry(JobId),
    Submit(Vec<NewJob>),
    /// A command line (the palette's or a form's), planned into jobs by the CLI's code and
    /// queued; answered by [`Update::Planned`].
    Plan(Vec<String>),
    /// The choices forms offer that events do not bring: configurations and datasets.
    Choices,
}

/// One product as its detail popup shows it.
#[derive(Debug, Clone)]
pub struct ProductDetail {
    pub row: ProductRow,
    pub files: Vec<ProductFile>,
    /// What the pipeline made from it.
    pub made: Vec<Artifact>,
}

/// News for the dashboard.
#[derive(Debug, Clone)]
pub enum Update {
    Status(DaemonStatus),
    Jobs(Vec<JobRecord>),
    Job(Box<JobRecord>),
    Products(Vec<ProductRow>),
    Product(Box<ProductDetail>),
    Runs(Vec<RunRecord>),
    Run(Box<RunRecord>, Vec<EpochMetrics>),
    Evals(Vec<KeptReport>),
    Log(Vec<String>),
    Configs(Vec<ConfigChoice>),
    Datasets(Vec<DatasetSummary>),
    /// A planned command line: what was queued, or why nothing was.
    Planned(Result<String, String>),
    Event(Event),
    /// A request was done: a line for the status bar.
    Done(String),
    Error(String),
    Disconnected(String),
}

/// Progress samples of a running job, for its rate and ETA.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    /// (when, done) of the first sample after the job's first unit (warm-up skipped) and
    /// the latest one.
    first: Option<(DateTime<Utc>, u64)>,
    last: Option<(DateTime<Utc>, u64)>,
}

impl Rate {
    fn sample(&mut self, at: DateTime<Utc>, done: u64) {
        if done == 0 {
            return;
        }
        if self.first.is_none_or(|(_, first)| done < first) {
            self.first = Some((at, done));
        }
        self.last = Some((at, done));
    }

    /// Units per second since warm-up.
    pub fn per_second(&self) -> Option<f64> {
        let ((t0, d0), (t1, d1)) = (self.first?, self.last?);
        let seconds = (t1 - t0).num_milliseconds() as f64 / 1000.0;
        (seconds > 0.5 && d1 > d0).then(|| (d1 - d0) as f64 / seconds)
    }
}

/// A table's selection and filter.
#[derive(Debug, Clone, Default)]
pub struct TableCursor {
    pub selected: usize,
    pub filter: String,
}

impl TableCursor {
    fn moved(&mut self, action: Action, len: usize, page: usize) {
        let last = len.saturating_sub(1);
        self.selected = match action {
            Action::Up => self.selected.saturating_sub(1),
            Action::Down => (self.selected + 1).min(last),
            Action::PageUp => self.selected.saturating_sub(page),
            Action::PageDown => (self.selected + page).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            _ => self.selected,
        };
    }
}

/// Log levels in the order the level filter steps through them.
pub const LEVELS: [&str; 4] = ["TRACE", "INFO", "WARN", "ERROR"];

pub struct App {
    pub keymap: Keymap,
    pub workspace: String,
    pub view: View,
    pub mode: Mode,
    pub status: Option<DaemonStatus>,
    /// Why the daemon cannot be reached, while it cannot.
    pub disconnected: Option<String>,
    /// The last message for the status bar, and whether it is an error.
    pub message: Option<(String, bool)>,
    pub now: DateTime<Utc>,

    pub products: Vec<ProductRow>,
    /// Indices of the products the catalog filter keeps, kept up to date as the products
    /// or the filter change (filtering 100,000 rows every frame would cost 30 ms).
    catalog_rows: Vec<usize>,
    pub product_detail: Option<ProductDetail>,
    /// Products picked in the catalog (space), by PDS id.
    pub picked: BTreeSet<String>,
    pub jobs: BTreeMap<JobId, JobRecord>,
    pub rates: HashMap<JobId, Rate>,
    pub job_detail: Option<JobRecord>,
    pub runs: Vec<RunRecord>,
    /// Runs loaded whole (record and per-epoch metrics): the selected one, the compared one.
    pub run_details: HashMap<String, (RunRecord, Vec<EpochMetrics>)>,
    /// The run drawn beside the selected one.
    pub compare: Option<String>,
    /// Where searches go (`AREO_ODE_URL`, or ODE itself).
    pub ode_url: String,
    /// Training loss per step, by job, as heard live.
    pub step_losses: HashMap<JobId, Vec<(f64, f64)>>,
    /// The named parts of a training job's loss per step (a detector's `class` and `box`).
    pub step_loss_parts: HashMap<JobId, BTreeMap<String, Vec<(f64, f64)>>>,
    pub smooth: bool,
    pub per_step: bool,
    pub evals: Vec<KeptReport>,
    /// The evaluation drawn under the selected one.
    pub compare_eval: Option<String>,
    pub normalised: bool,
    /// The per-class column the metrics table is sorted by (0: class).
    pub sort_column: usize,
    pub log: Vec<String>,
    pub min_level: usize,
    pub follow: bool,

    /// The CLI's subcommands that queue work and their options, for the palette's Tab.
    pub commands: Vec<(String, Vec<String>)>,
    /// Palette lines run, oldest first.
    pub history: Vec<String>,
    pub configs: Vec<ConfigChoice>,
    pub datasets: Vec<DatasetSummary>,

    pub cursors: HashMap<&'static str, TableCursor>,
    pub quit: bool,
    /// Set whenever something visible changed; the loop draws and clears it.
    pub dirty: bool,
}

/// Sortable per-class columns of the metrics view.
pub use crate::pipeline::evaluate::CLASS_SCORE_COLUMNS as METRIC_COLUMNS;

impl App {
    pub fn new(workspace: String, keymap: Keymap) -> Self {
        App {
            keymap,
            workspace,
            view: View::Jobs,
            mode: Mode::Normal,
            status: None,
            disconnected: None,
            message: None,
            now: Utc::now(),
            products: Vec::new(),
            catalog_rows: Vec::new(),
            product_detail: None,
            picked: BTreeSet::new(),
            jobs: BTreeMap::new(),
            rates: HashMap::new(),
            job_detail: None,
            runs: Vec::new(),
            run_details: HashMap::new(),
            compare: None,
            ode_url: crate::ode::client::DEFAULT_URL.to_string(),
            step_losses: HashMap::new(),
            step_loss_parts: HashMap::new(),
            smooth: true,
            per_step: false,
            evals: Vec::new(),
            compare_eval: None,
            normalised: false,
            sort_column: 0,
            log: Vec::new(),
            min_level: 1,
            follow: true,
            commands: Vec::new(),
            history: Vec::new(),
            configs: Vec::new(),
            datasets: Vec::new(),
            cursors: HashMap::new(),
            quit: false,
            dirty: true,
        }
    }

    pub fn cursor(&self, table: &'static str) -> TableCursor {
        self.cursors.get(table).cloned().unwrap_or_default()
    }

    fn cursor_mut(&mut self) -> &mut TableCursor {
        self.cursors.entry(self.view.table()).or_default()
    }

    fn filter_of(&self, table: &'static str) -> String {
        self.cursors
            .get(table)
            .map(|c| c.filter.to_lowercase())
            .unwrap_or_default()
    }

    /// Indices of the products the catalog filter keeps.
    pub fn visible_products(&self) -> &[usize] {
        &self.catalog_rows
    }

    fn filter_products(&mut self) {
        let filter = self.filter_of("catalog");
        self.catalog_rows = (0..self.products.len())
            .filter(|i| {
                let p = &self.products[*i].product;
                filter.is_empty()
                    || [&p.pdsid, &p.instrument, &p.product_type]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&filter))
            })
            .collect();
    }

    /// Jobs, newest first, that the jobs filter keeps.
    pub fn visible_jobs(&self) -> Vec<&JobRecord> {
        let filter = self.filter_of("jobs");
        self.jobs
            .values()
            .rev()
            .filter(|job| {
                filter.is_empty()
                    || job.spec.describe().to_lowercase().contains(&filter)
                    || job.state.as_str().contains(&filter)
                    || job.id.to_string() == filter
            })
            .collect()
    }

    pub fn visible_runs(&self) -> Vec<&RunRecord> {
        let filter = self.filter_of("runs");
        self.runs
            .iter()
            .filter(|r| {
                filter.is_empty()
                    || r.name.to_lowercase().contains(&filter)
                    || r.config.name.to_lowercase().contains(&filter)
                    || r.dataset.to_lowercase().contains(&filter)
            })
            .collect()
    }

    pub fn visible_evals(&self) -> Vec<&KeptReport> {
        let filter = self.filter_of("metrics");
        self.evals
            .iter()
            .filter(|e| {
                filter.is_empty()
                    || e.name()
                        .unwrap_or_default()
                        .to_lowercase()
                        .contains(&filter)
                    || e.run().unwrap_or_default().to_lowercase().contains(&filter)
            })
            .collect()
    }

    /// Log lines at or above the chosen level that the filter keeps.
    pub fn visible_log(&self) -> Vec<&str> {
        let filter = self.filter_of("logs");
        self.log
            .iter()
            .map(String::as_str)
            .filter(|line| level_of(line) >= self.min_level)
            .filter(|line| filter.is_empty() || line.to_lowercase().contains(&filter))
            .collect()
    }

    pub fn selected_run(&self) -> Option<&RunRecord> {
        let runs = self.visible_runs();
        runs.get(
            self.cursor("runs")
                .selected
                .min(runs.len().saturating_sub(1)),
        )
        .copied()
    }

    pub fn selected_eval(&self) -> Option<&KeptReport> {
        let evals = self.visible_evals();
        evals
            .get(
                self.cursor("metrics")
                    .selected
                    .min(evals.len().saturating_sub(1)),
            )
            .copied()
    }

    /// The runs the runs view draws: the selected one and the compared one.
    pub(super) fn runs_wanted(&self) -> Command {
        Command::Runs(
            self.selected_run().map(|r| r.name.clone()),
            self.compare.clone(),
        )
    }

    pub(super) fn selected_job(&self) -> Option<JobId> {
        let jobs = self.visible_jobs();
        jobs.get(self.cursor("jobs").selected).map(|j| j.id)
    }

    pub(super) fn selected_product(&self) -> Option<String> {
        let rows = self.visible_products();
        rows.get(self.cursor("catalog").selected)
            .map(|i| self.products[*i].product.pdsid.clone())
    }

    /// What the catalog's keys act on: the picked products, else the one under the cursor.
    pub fn chosen_products(&self) -> Vec<String> {
        if self.picked.is_empty() {
            self.selected_product().into_iter().collect()
        } else {
            self.picked.iter().cloned().collect()
        }
    }

    /// The job training a run, newest first.
    pub fn training_job(&self, run: &str) -> Option<&JobRecord> {
        self.jobs
            .values()
            .rev()
            .find(|j| matches!(&j.spec, JobSpec::Train(t) if t.run == run))
    }

    /// Moves the current view's cursor (up, down, a page, to an end).
    pub(super) fn move_cursor(&mut self, action: Action) {
        let len = self.rows_in_view();
        self.cursor_mut().moved(action, len, 10);
    }

    fn rows_in_view(&self) -> usize {
        match self.view {
            View::Catalog => self.visible_products().len(),
            View::Jobs => self.visible_jobs().len(),
            View::Runs => self.visible_runs().len(),
            View::Metrics => self.visible_evals().len(),
            View::Logs => self.visible_log().len(),
        }
    }

    pub(super) fn say(&mut self, text: impl Into<String>, error: bool) {
        self.message = Some((text.into(), error));
    }

    /// A key press: changes the state, and returns what to ask the daemon.
    pub fn key(&mut self, event: KeyEvent) -> Vec<Command> {
        self.dirty = true;
        // The mode is taken, not cloned (a form may hold every product as choices); each
        // branch puts back the mode the key leaves.
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Filter => {
                self.mode = Mode::Filter;
                let cursor = self.cursor_mut();
                match event.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        cursor.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        cursor.filter.pop();
                    }
                    KeyCode::Char(c) => {
                        cursor.filter.push(c);
                        cursor.selected = 0;
                    }
                    _ => {}
                }
                if self.view == View::Catalog {
                    self.filter_products();
                }
                return Vec::new();
            }
            Mode::Palette(mut palette) => {
                match event.code {
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        return self.palette(palette.text.trim());
                    }
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Up | KeyCode::Down => {
                        palette.browse(&self.history, event.code == KeyCode::Up);
                        self.mode = Mode::Palette(palette);
                    }
                    KeyCode::Tab => {
                        palette.complete(self);
                        self.mode = Mode::Palette(palette);
                    }
                    KeyCode::Backspace => {
                        palette.text.pop();
                        palette.offered.clear();
                        self.mode = Mode::Palette(palette);
                    }
                    KeyCode::Char(c) => {
                        palette.text.push(c);
                        palette.offered.clear();
                        self.mode = Mode::Palette(palette);
                    }
                    _ => self.mode = Mode::Palette(palette),
                }
                return Vec::new();
            }
            Mode::Form(mut form) => {
                let leading = forms::leading_value(&form);
                match form.key(event) {
                    Outcome::Cancel => self.mode = Mode::Normal,
                    Outcome::Editing => {
                        if forms::leading_value(&form) != leading {
                            forms::follow_leading_value(&mut form, self);
                        }
                        self.mode = Mode::Form(form);
                    }
                    Outcome::Submit => match forms::submit(&mut form, self) {
                        Some(Submit::Jobs(jobs)) => {
                            self.mode = Mode::Normal;
                            return vec![Command::Submit(jobs)];
                        }
                        Some(Submit::Lines(lines)) => {
                            form.pending = lines.len();
                            self.mode = Mode::Form(form);
                            return lines.into_iter().map(Command::Plan).collect();
                        }
                        None => {
                            // The first wrong field takes the focus.
                            form.focus = form
                                .fields
                                .iter()
                                .position(|f| f.error.is_some())
                                .unwrap_or(form.focus);
                            form.note = Some((
                                format!("{} field(s) to put right first", form.errors()),
                                true,
                            ));
                            self.mode = Mode::Form(form);
                        }
                    },
                }
                return Vec::new();
            }
            Mode::Confirm(_, command) => {
                self.mode = Mode::Normal;
                if event.code == KeyCode::Char('y') {
                    return vec![command];
                }
                self.say("left as it was", false);
                return Vec::new();
            }
            popup @ (Mode::Help | Mode::Detail) => {
                self.mode = popup;
                match self.keymap.action(self.view.scope(), &event) {
                    Some(Action::Quit) => self.quit = true,
                    Some(Action::Help | Action::Back | Action::Open) => self.mode = Mode::Normal,
                    _ => {}
                }
                return Vec::new();
            }
            Mode::Normal => {}
        }
        let Some(action) = self.keymap.action(self.view.scope(), &event) else {
            return Vec::new();
        };
        self.act(action)
    }

    fn act(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.mode = Mode::Help,
            Action::Palette => self.mode = Mode::Palette(Palette::default()),
            Action::Filter => self.mode = Mode::Filter,
            Action::Back => {
                self.cursor_mut().filter.clear();
                self.message = None;
                if self.view == View::Catalog {
                    self.filter_products();
                }
            }
            Action::ViewCatalog => return self.show(View::Catalog),
            Action::ViewJobs => return self.show(View::Jobs),
            Action::ViewRuns => return self.show(View::Runs),
            Action::ViewMetrics => return self.show(View::Metrics),
            Action::ViewLogs => return self.show(View::Logs),
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                if self.view == View::Logs {
                    self.follow = action == Action::Bottom;
                }
                self.move_cursor(action);
                if self.view == View::Runs {
                    return vec![self.runs_wanted()];
                }
            }
            Action::Refresh => return vec![Command::RefreshAll, Command::Products],
            // The view's own keys.
            _ => {
                return match self.view {
                    View::Catalog => views::catalog::act(self, action),
                    View::Jobs => views::jobs::act(self, action),
                    View::Runs => views::runs::act(self, action),
                    View::Metrics => views::metrics::act(self, action),
                    View::Logs => views::logs::act(self, action),
                }
            }
        }
        Vec::new()
    }

    fn show(&mut self, view: View) -> Vec<Command> {
        self.view = view;
        match view {
            View::Catalog => vec![Command::Products],
            View::Runs => vec![self.runs_wanted()],
            _ => Vec::new(),
        }
    }

    /// Opens a form (and asks for fresh choices: a new configuration or dataset shows).
    pub(super) fn open(&mut self, form: Form) -> Vec<Command> {
        self.message = None;
        self.mode = Mode::Form(Box::new(form));
        vec![Command::Choices]
    }

    fn palette(&mut self, text: &str) -> Vec<Command> {
        if !text.is_empty() && self.history.last().is_none_or(|last| last != text) {
            self.history.push(text.to_string());
            if self.history.len() > palette::HISTORY {
                self.history.remove(0);
            }
        }
        match text {
            "" => Vec::new(),
            "q" | "quit" => {
                self.quit = true;
                Vec::new()
            }
            line => match View::from_name(line) {
                Some(view) => self.show(view),
                None => match shlex::split(line) {
                    Some(words) => {
                        self.say(format!("asking the daemon to queue :{line}"), false);
                        vec![Command::Plan(words)]
                    }
                    None => {
                        self.say(format!(":{line}: a quote is not closed"), true);
                        Vec::new()
                    }
                },
            },
        }
    }

    /// News from the daemon; returns follow-up requests.
    pub fn update(&mut self, update: Update) -> Vec<Command> {
        self.dirty = true;
        match update {
            Update::Status(status) => {
                self.status = Some(status);
                // Back after a lost connection: events may have been missed meanwhile.
                if self.disconnected.take().is_some() {
                    return vec![Command::RefreshAll];
                }
            }
            Update::Jobs(jobs) => {
                self.jobs = jobs.into_iter().map(|j| (j.id, j)).collect();
            }
            Update::Job(job) => {
                if self.job_detail.as_ref().is_some_and(|j| j.id == job.id) {
                    self.job_detail = Some((*job).clone());
                }
                self.jobs.insert(job.id, job.summary());
            }
            Update::Products(rows) => {
                self.products = rows;
                self.filter_products();
            }
            Update::Product(detail) => self.product_detail = Some(*detail),
            Update::Runs(runs) => {
                // A run came or went under the cursor (the first runs, one deleted): load it.
                let before = self.selected_run().map(|r| r.name.clone());
                self.runs = runs;
                if self.selected_run().map(|r| &r.name) != before.as_ref() {
                    return vec![self.runs_wanted()];
                }
            }
            Update::Run(run, metrics) => {
                self.run_details.insert(run.name.clone(), (*run, metrics));
            }
            Update::Evals(evals) => self.evals = evals,
            Update::Log(lines) => self.log = lines,
            Update::Configs(configs) => self.configs = configs,
            Update::Datasets(datasets) => self.datasets = datasets,
            Update::Planned(answer) => self.planned(answer),
            Update::Event(event) => return self.event(event),
            Update::Done(text) => self.say(text, false),
            Update::Error(text) => self.say(text, true),
            Update::Disconnected(why) => self.disconnected = Some(why),
        }
        Vec::new()
    }

    fn event(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::Job { job } => {
                let finished = job.state.is_final();
                let kind = job.spec.kind();
                if let Some(detail) = &mut self.job_detail {
                    if detail.id == job.id {
                        detail.state = job.state;
                        detail.error = job.error.clone();
                    }
                }
                self.jobs.insert(job.id, *job);
                if finished && matches!(kind, "import" | "search" | "fetch" | "add-local") {
                    return vec![Command::Products];
                }
                if finished && kind == "dataset" {
                    return vec![Command::Choices];
                }
            }
            Event::Progress {
                job,
                label,
                done,
                total,
            } => {
                self.rates.entry(job).or_default().sample(self.now, done);
                if let Some(record) = self.jobs.get_mut(&job) {
                    record.progress = Some(crate::engine::job::JobProgress { label, done, total });
                }
            }
            Event::Log { job, line } => {
                if let Some(detail) = &mut self.job_detail {
                    if detail.id == job {
                        detail.push_log(line);
                    }
                }
            }
            Event::Metric {
                job,
                name,
                step,
                value,
            } => {
                if name == "train.loss" {
                    self.step_losses
                        .entry(job)
                        .or_default()
                        .push((step as f64, value));
                } else if let Some(part) = name.strip_prefix("train.loss.") {
                    self.step_loss_parts
                        .entry(job)
                        .or_default()
                        .entry(part.to_string())
                        .or_default()
                        .push((step as f64, value));
                }
            }
            Event::Lagged { .. } => return vec![Command::RefreshAll],
            Event::Stopping => {
                self.disconnected = Some("the daemon is stopping".into());
            }
        }
        Vec::new()
    }

    /// A planned line's answer: a pending form closes when all its lines are queued, and
    /// shows a refusal beside the field it names.
    fn planned(&mut self, answer: Result<String, String>) {
        if let Mode::Form(form) = &mut self.mode {
            if form.pending > 0 {
                form.pending -= 1;
                if let Err(why) = &answer {
                    form.refused(why);
                }
                let refused = form.errors() > 0 || form.note.as_ref().is_some_and(|n| n.1);
                if form.pending == 0 && !refused {
                    self.mode = Mode::Normal;
                }
            }
        }
        match answer {
            Ok(done) => self.say(done, false),
            Err(why) => self.say(why, true),
        }
    }

    /// Whether a job is running or waiting.
    pub fn active_jobs(&self) -> usize {
        self.jobs
            .values()
            .filter(|j| matches!(j.state, JobState::Running | JobState::Queued))
            .count()
    }
}

/// The level of a daemon log line (tracing's format: time, level, message); lines without
/// one count as INFO.
pub fn level_of(line: &str) -> usize {
    line.split_whitespace()
        .take(3)
        .find_map(|word| {
            LEVELS
                .iter()
                .position(|l| word == *l)
                .or_else(|| (word == "DEBUG").then_some(0))
        })
        .unwrap_or(1)
}

/// An exponential moving average, as the smoothed loss curve.
pub fn smoothed(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut average = None;
    points
        .iter()
        .map(|(x, y)| {
            let value = match average {
                None => *y,
                Some(previous) => weight * previous + (1.0 - weight) * y,
            };
            average = Some(value);
            (*x, value)
        })
        .collect()
}
