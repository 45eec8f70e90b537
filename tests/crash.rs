//! Crash safety: SIGKILL the daemon half way through an import, then reopen the catalog.

#[path = "support/replies.rs"]
mod replies;

use areo::catalog::Catalog;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const PAGES: u64 = 40;
const PAGE: u64 = 1000;

#[test]
fn a_killed_import_leaves_whole_records_and_can_be_finished() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let pages: Vec<_> = (0..PAGES)
        .map(|page| {
            let path = dir.path().join(format!("page-{page:02}.json"));
            let text = replies::reply(page * PAGE, PAGE, 11, "2026-01-01T00:00:00.000");
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let import = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_areo"));
        command
            .arg("--workspace")
            .arg(&ws)
            .args(["catalog", "import"])
            .args(&pages)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };

    let mut child = import().spawn().unwrap();
    // The import runs in the workspace's daemon, which this command starts; with stderr not
    // a terminal, the command prints the job's progress lines (at most four a second).
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut progress = 0;
    while progress < 6 {
        let line = lines.next().expect("import ended early").unwrap();
        if line.contains(".json: ") {
            progress += 1;
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still importing when killed"
    );
    let daemon: i32 = std::fs::read_to_string(ws.join("areo.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    let watcher = child.wait_with_output().unwrap();
    assert!(!watcher.status.success(), "the command saw its daemon die");
    // The lock goes with the process.
    while areo::workspace::Workspace::open(&ws).is_err() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    {
        let catalog = Catalog::open(&ws.join("catalog")).unwrap();
        let products = catalog.stats().unwrap().products;
        eprintln!("{products} products stored when the import was killed");
        assert!(
            products < PAGES * PAGE,
            "the kill landed mid-import ({products} stored)"
        );
        assert_eq!(
            catalog.verify().unwrap(),
            Vec::<String>::new(),
            "only whole records"
        );
        for row in catalog.query(&Default::default()).unwrap() {
            let files = catalog.files(&row.product.pdsid).unwrap();
            let expected = if row.product.instrument == "CTX" {
                6
            } else {
                24
            };
            assert_eq!(
                files.len(),
                expected,
                "{} has all its files",
                row.product.pdsid
            );
        }
    }

    // The restarted daemon queues the interrupted import again, and runs this one too.
    let finished = import().stderr(Stdio::null()).status().unwrap();
    assert!(finished.success());
    let stop = Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(&ws)
        .arg("stop")
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&stop.stderr),
        std::fs::read_to_string(ws.join("areo.log")).unwrap_or_default()
    );
    let catalog = Catalog::open(&ws.join("catalog")).unwrap();
    assert_eq!(catalog.stats().unwrap().products, PAGES * PAGE);
    assert_eq!(catalog.verify().unwrap(), Vec::<String>::new());
}
