//! `areo` (or `areo tui`): the dashboard. A client of the workspace's daemon like every
//! other command, so quitting it (or losing the SSH session) leaves the jobs running, and
//! opening it again shows them as they are.
//!
//! One loop owns the terminal. Key presses (from an input thread) and daemon news (from
//! [`feed`]) arrive on one channel; the loop applies them to [`app::App`] and draws when
//! something changed, at most `FRAME` apart, so a busy training run does not flood an SSH
//! link with redraws.

pub mod app;
mod feed;
pub mod forms;
pub mod keymap;
pub mod palette;
pub mod views;

use crate::engine::{Client, NewJob};
use app::{App, Command};
use feed::Input;
use keymap::Keymap;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The palette's lines, kept in the workspace between sessions.
const HISTORY_FILE: &str = "palette-history";

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(50);
/// How often the clock in elapsed times and ETAs moves on when nothing else happens.
const TICK: Duration = Duration::from_millis(1000);

/// Set by SIGTERM and SIGHUP: the loop restores the terminal and returns.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The command line the `:` palette and the forms speak. The CLI gives it (the dashboard does
/// not import the CLI), so a line typed here is parsed and planned exactly as in a shell.
#[derive(Clone)]
pub struct CommandLine {
    /// The subcommand paths that queue work (`train`, `dataset create`) with their long
    /// options: what Tab completes.
    pub commands: Vec<(String, Vec<String>)>,
    /// A line's words (without `areo`) -> the jobs it asks for and a line saying what they
    /// are, or what is wrong with it. Runs on the feed's thread, with its connection.
    pub plan: Planner,
}

pub type Planner = fn(&[String], &mut Client, &Path) -> Result<(Vec<NewJob>, String), String>;

/// Where searches go when nothing says otherwise: `AREO_ODE_URL`, else ODE itself.
pub fn default_ode_url() -> String {
    std::env::var("AREO_ODE_URL").unwrap_or_else(|_| crate::ode::client::DEFAULT_URL.to_string())
}

/// The keymap of a workspace: `keymap.toml` when it has one, else the defaults.
pub fn load_keymap(workspace: &Path) -> anyhow::Result<Keymap> {
    let path = workspace.join("keymap.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Keymap::with_overrides(&path.display().to_string(), &text).map_err(anyhow::Error::msg)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Opens the dashboard on `workspace` (starting its daemon when none runs) until the user
/// quits or a signal asks it to stop.
/// `ode_url` is where the catalog view's searches go.
pub fn run(
    workspace: PathBuf,
    view: Option<app::View>,
    ode_url: String,
    command_line: CommandLine,
) -> anyhow::Result<()> {
    let keymap = load_keymap(&workspace)?;
    let exe = std::env::current_exe()?;
    // Started (or found) before the terminal changes, so a failure prints plainly.
    crate::engine::client::Client::connect_or_start(&workspace, &exe)?;

    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            request_stop as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGHUP,
            request_stop as *const () as libc::sighandler_t,
        );
    }
    let mut app = App::new(workspace.display().to_string(), keymap);
    app.ode_url = ode_url;
    app.commands = command_line.commands;
    let history = workspace.join(HISTORY_FILE);
    app.history = std::fs::read_to_string(&history)
        .map(|text| text.lines().map(String::from).collect())
        .unwrap_or_default();
    if let Some(view) = view {
        app.view = view;
    }
    let (input_tx, input_rx) = mpsc::channel();
    let (command_tx, command_rx) = mpsc::channel();
    feed::start(
        workspace,
        exe,
        command_line.plan,
        command_rx,
        input_tx.clone(),
    );
    std::thread::spawn(move || read_terminal(&input_tx));

    // ratatui::init restores the terminal on panic as well.
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut app, &input_rx, &command_tx);
    ratatui::restore();
    let kept = app.history.join("\n") + "\n";
    if let Err(error) = crate::fsio::write_atomically(&history, kept.as_bytes()) {
        eprintln!("the palette's history was not kept: {error}");
    }
    result
}

fn read_terminal(out: &mpsc::Sender<Input>) {
    loop {
        // Polling lets the thread notice the dashboard has gone.
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(event) => {
                    if out.send(Input::Terminal(event)).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(false) => {}
            Err(_) => return,
        }
    }
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    inputs: &mpsc::Receiver<Input>,
    commands: &mpsc::Sender<Command>,
) -> anyhow::Result<()> {
    let mut last_frame = Instant::now() - FRAME;
    let mut last_tick = Instant::now();
    loop {
        if app.dirty && last_frame.elapsed() >= FRAME {
            app.now = chrono::Utc::now();
            terminal.draw(|frame| views::draw(frame, app))?;
            app.dirty = false;
            last_frame = Instant::now();
        }
        if app.quit || STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        let wait = if app.dirty {
            FRAME.saturating_sub(last_frame.elapsed())
        } else {
            Duration::from_millis(200)
        };
        let follow_ups = match inputs.recv_timeout(wait) {
            Ok(Input::Terminal(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
                app.key(key)
            }
            Ok(Input::Terminal(TermEvent::Resize(..))) => {
                app.dirty = true;
                Vec::new()
            }
            Ok(Input::Terminal(_)) => Vec::new(),
            Ok(Input::Update(update)) => {
                // Progress samples are timed by the clock, for rates and ETAs.
                app.now = chrono::Utc::now();
                app.update(update)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        for command in follow_ups {
            if commands.send(command).is_err() {
                anyhow::bail!("the connection to the daemon ended");
            }
        }
        if last_tick.elapsed() >= TICK {
            app.dirty = true;
            last_tick = Instant::now();
        }
    }
}
