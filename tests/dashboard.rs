//! The dashboard end to end: the real binary in a pseudo-terminal (its screen read back by a
//! terminal emulator) against a real daemon and a real HTTP server. It opens, filters the
//! catalog, queues a download from the catalog view, sees the job finish, quits leaving the
//! terminal as it was, and on reopening still lists the job.

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
        let deadline = Instant::now() + Duration::from_secs(30);
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
