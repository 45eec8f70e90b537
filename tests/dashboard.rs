//! The dashboard end to end: the real binary in a pseudo-terminal (its screen read back by a
//! terminal emulator) against a real daemon and a real HTTP server, driven by keys alone.
//! It opens, filters the catalog, queues a download from the catalog view, sees the job
//! finish, quits leaving the terminal as it was, and on reopening still lists the job; and on
//! the demo workspace it trains a second run, runs it over an unlabelled scene and the
//! labelled image, scores it and finds the score in Metrics.

#[path = "support/http.rs"]
mod http;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REPLY: &str = include_str!("../data/ode/ESP_013951_1955_RED.json");
const ROWS: u16 = 30;
const TAB: &str = "\t";
const ENTER: &str = "\r";
const RIGHT: &str = "\x1b[C";
/// ctrl-u: clears a form's text field.
const CLEAR: &str = "\x15";
const COLUMNS: u16 = 100;

/// The dashboard running in a pseudo-terminal.
struct Dashboard {
    child: Child,
    keys: File,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Everything the program wrote, raw.
    output: Arc<Mutex<Vec<u8>>>,
}

impl Dashboard {
    fn open(workspace: &Path) -> Dashboard {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors we then own.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are open and ours alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        let mut command = Command::new(env!("CARGO_BIN_EXE_areo"));
        command
            .arg("--workspace")
            .arg(workspace)
            // Paths typed into forms are relative to where the dashboard runs, as in a shell.
            .current_dir(workspace)
            .env("TERM", "xterm-256color")
            .env_remove("AREO_HOME")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // Its own session with the pty as controlling terminal, as a login shell has.
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start areo");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLUMNS, 0)));
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let (screen_in, output_in) = (screen.clone(), output.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            // Ends with EIO once the program has gone and the slave side is closed.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                screen_in.lock().unwrap().process(&buffer[..n]);
                output_in.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Dashboard {
            child,
            keys: master,
            screen,
            output,
        }
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows every one of `texts`.
    fn wait_for(&self, texts: &[&str]) {
        self.wait_longer_for(texts, Duration::from_secs(30));
    }

    fn wait_longer_for(&self, texts: &[&str], patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let screen = self.contents();
            if texts.iter().all(|t| screen.contains(t)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {texts:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Presses → until the focused choice starts with `choice`.
    fn choose(&mut self, choice: &str) {
        for _ in 0..10 {
            if self.contents().contains(&format!("◂ {choice}")) {
                return;
            }
            self.press(RIGHT);
        }
        panic!("no choice {choice}:\n{}", self.contents());
    }

    fn press(&mut self, keys: &str) {
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
        // One key at a time, as a person types.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Quits with `q` and returns the exit status.
    fn quit(&mut self) -> (std::process::ExitStatus, Vec<u8>) {
        self.press("q");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the dashboard did not quit");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let output = self.output.lock().unwrap().clone();
        (status, output)
    }
}

impl Drop for Dashboard {
    /// A failed test must not leave the program running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the workspace's daemon when the test ends, passed or not.
struct StopDaemon<'a>(&'a Path);

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        areo(self.0, &["stop"]);
    }
}

fn areo(workspace: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .env_remove("AREO_HOME")
        .output()
        .unwrap()
}

#[test]
fn the_dashboard_filters_queues_a_download_sees_it_finish_and_still_lists_it_after_reopening() {
    let browse = b"\xff\xd8\xff\xe0 a browse image \xff\xd9".to_vec();
    let served = browse.clone();
    let server = http::serve(move |request| {
        if request.path.ends_with("ESP_013951_1955_RED.browse.jpg") {
            http::Response::new(200, served.clone())
        } else {
            http::Response::new(404, "not here")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    // The sample reply, its files served from here.
    let reply = dir.path().join("reply.json");
    std::fs::write(
        &reply,
        REPLY.replace("https://hirise.lpl.arizona.edu", &server.url("")),
    )
    .unwrap();
    let imported = areo(&workspace, &["catalog", "import", reply.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");
    let _daemon = StopDaemon(&workspace);

    let mut dashboard = Dashboard::open(&workspace);
    dashboard.wait_for(&[
        "1 Catalog",
        "Jobs: 1 of 1",
        "import reply.json",
        "succeeded",
    ]);
    dashboard.press("1");
    dashboard.wait_for(&["Catalog: 1 of 1 products", "ESP_013951_1955_RED", "HIRISE"]);
    dashboard.press("/");
    for key in "zzz".chars() {
        dashboard.press(&key.to_string());
    }
    dashboard.wait_for(&["Catalog: 0 of 1 products", "No product matches"]);
    dashboard.press("\x1b");
    dashboard.press("/");
    for key in "1955".chars() {
        dashboard.press(&key.to_string());
    }
    dashboard.press("\r");
    dashboard.wait_for(&["Catalog: 1 of 1 products", "filter: 1955"]);
    dashboard.press("f");
    dashboard.press("2");
    dashboard.wait_for(&["Jobs: 2 of 2", "fetch ESP_013951_1955_RED"]);
    dashboard.wait_for(&["done"]);
    let screen = dashboard.contents();
    let fetch_line = screen
        .lines()
        .find(|l| l.contains("fetch ESP_013951_1955_RED"))
        .unwrap();
    assert!(fetch_line.contains("succeeded"), "{screen}");
    let (status, output) = dashboard.quit();
    assert!(status.success(), "{status:?}");
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains("\x1b[?1049l"),
        "the terminal left the alternate screen"
    );

    let downloaded = workspace.join("products/ESP_013951_1955_RED/ESP_013951_1955_RED.BROWSE.JPG");
    assert_eq!(std::fs::read(&downloaded).unwrap(), browse);

    // The daemon kept everything: the reopened dashboard lists the job as it ended.
    let mut dashboard = Dashboard::open(&workspace);
    dashboard.wait_for(&["Jobs: 2 of 2", "fetch ESP_013951_1955_RED", "succeeded"]);
    let (status, _) = dashboard.quit();
    assert!(status.success());
}

#[test]
fn on_the_demo_workspace_the_dashboard_trains_infers_and_scores_from_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    // The demo with a two-epoch model, so the test trains in seconds.
    let config = dir.path().join("demo-small.toml");
    let tiny = include_str!("../models/unet-tiny.toml");
    assert!(tiny.contains("epochs = 15"));
    std::fs::write(
        &config,
        tiny.replace("epochs = 15", "epochs = 2")
            .replace("name = \"unet-tiny\"", "name = \"demo-small\""),
    )
    .unwrap();
    let demo = areo(
        &workspace,
        &["demo", "--headless", "--config", config.to_str().unwrap()],
    );
    assert!(demo.status.success(), "{demo:?}");
    let _daemon = StopDaemon(&workspace);

    let mut dashboard = Dashboard::open(&workspace);
    dashboard.press("3");
    dashboard.wait_for(&["demo-demo-small", "finished", "2/2"]);
    // A run like the demo's, with three epochs.
    dashboard.press("c");
    dashboard.wait_for(&["Train a run like demo-demo-small", "demo-demo-small-2"]);
    dashboard.press(TAB);
    dashboard.press(TAB);
    dashboard.press(TAB);
    dashboard.press(CLEAR);
    dashboard.press("3");
    dashboard.press(ENTER);
    dashboard.wait_for(&["queued job 10: train demo-demo-small-2"]);
    dashboard.wait_longer_for(&["3/3"], Duration::from_secs(600));

    // Over an unlabelled scene, then over the labelled image.
    dashboard.press("j");
    for product in ["SELECTION3-384", "NANEDI-512X320"] {
        dashboard.press("i");
        dashboard.wait_for(&["Run a model over an image", "◂ demo-demo-small-2 ▸"]);
        dashboard.press(TAB);
        dashboard.press(TAB);
        dashboard.choose(product);
        dashboard.press(ENTER);
        dashboard.wait_for(&["queued job", "infer demo-demo-small-2"]);
    }

    // Scored once its prediction is done: the form offers finished predictions only.
    let prediction = "demo-demo-small-2 on NANEDI-512X320";
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        dashboard.press("e");
        dashboard.wait_for(&["Score a prediction"]);
        if dashboard.contents().contains(prediction) {
            break;
        }
        dashboard.press("\x1b");
        assert!(Instant::now() < deadline, "{}", dashboard.contents());
        std::thread::sleep(Duration::from_millis(500));
    }
    dashboard.choose(prediction);
    dashboard.press(TAB);
    dashboard.press("demo/truth/nanedi-512x320.png");
    dashboard.press(TAB);
    dashboard.press("384,160,128,160");
    dashboard.press(TAB);
    dashboard.press("demo/nanedi-512x320.csv");
    dashboard.press(ENTER);
    dashboard.wait_for(&["queued job", "eval mask.png against nanedi-512x320.png"]);
    dashboard.press("4");
    dashboard.wait_longer_for(
        &["demo-demo-small-2-NANEDI-512X320", "run demo-demo-small-2"],
        Duration::from_secs(120),
    );
    // The palette is the CLI: its parser's words and its planner's refusals.
    dashboard.press(":");
    dashboard.press("train --from-run nothing-here --dataset demo-craters");
    dashboard.press(ENTER);
    dashboard.wait_for(&["no run nothing-here"]);
    dashboard.press(":");
    dashboard.press("train --epochs");
    dashboard.press(ENTER);
    dashboard.wait_for(&["a value is required for '--epochs <EPOCHS>'"]);
    // Labels painted into masks by a job, paths taken from where the dashboard runs.
    dashboard.press(":");
    dashboard.press(
        "labels rasterize --from craters demo/nanedi-512x320.csv --size 512x320 --out masks",
    );
    dashboard.press(ENTER);
    dashboard.wait_for(&["queued job", "labels"]);
    let mask = workspace.join("masks/nanedi-512x320.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mask.exists() {
        assert!(Instant::now() < deadline, "no {}", mask.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(image_size(&mask), (512, 320));
    // A file-to-file command (no job of its own) runs as `areo ...` in the daemon; one that
    // fails says why in its job.
    dashboard.press(":");
    dashboard.press("prep scale demo/nanedi-512x320.png --factor 0.5 --out half.png");
    dashboard.press(ENTER);
    dashboard.wait_for(&["queued job", "areo prep scale"]);
    dashboard.press(":");
    dashboard.press("prep scale demo/missing.png --factor 0.5 --out never.png");
    dashboard.press(ENTER);
    dashboard.wait_for(&["queued job", "missing.png"]);
    let half = workspace.join("half.png");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !half.exists() {
        assert!(Instant::now() < deadline, "no {}", half.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(image_size(&half), (256, 160));
    let (status, _) = dashboard.quit();
    assert!(status.success(), "{status:?}");
    let history = std::fs::read_to_string(workspace.join("palette-history")).unwrap();
    assert!(
        history
            .starts_with("train --from-run nothing-here --dataset demo-craters\ntrain --epochs\n"),
        "{history}"
    );

    // What the keys made is what the CLI would have made.
    let shown = areo(&workspace, &["--json", "runs", "show", "demo-demo-small-2"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(run["run"]["epochs_done"], 3, "{run}");
    assert_eq!(run["run"]["config"]["train"]["epochs"], 3, "{run}");
    let scene = workspace.join("runs/demo-demo-small-2/predictions/SELECTION3-384/mask.png");
    let (width, height) = image_size(&scene);
    assert_eq!((width, height), (384, 384));
    let kept = workspace.join("evals/demo-demo-small-2-NANEDI-512X320.json");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(report["run"], "demo-demo-small-2");
    assert_eq!(report["region"], serde_json::json!([384, 160, 128, 160]));
    assert_eq!(report["pixel"]["scored"], 128 * 160);
    assert_eq!(report["craters"]["truth"], 4, "{report}");
    let listed = areo(&workspace, &["--json", "jobs", "list"]);
    let jobs: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let failed = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["spec"]["kind"] == "command" && j["state"] == "failed")
        .unwrap_or_else(|| panic!("{jobs}"));
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("missing.png"), "{error}");
    assert!(!workspace.join("never.png").exists());
}

/// A PNG's width and height, from its header.
fn image_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}
