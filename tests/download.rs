//! Downloads against a real HTTP server on 127.0.0.1: resumption, verification, hostile
//! names, flaky servers, and a process killed mid-download.

#[path = "support/http.rs"]
mod http;
#[path = "support/replies.rs"]
mod replies;

use areo::catalog::Catalog;
use areo::ode::{ClientConfig, DownloadError, FileRequest, OdeClient, RetryPolicy};
use areo::pipeline::fetch::{fetch, FetchKind, Outcome};
use areo::pipeline::import::import_reply_files;
use areo::product::FileState;
use areo::progress::{Progress, Silent};
use areo::workspace::Workspace;
use http::{runtime, serve, Request, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut stream = replies::Stream::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&stream.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn client() -> OdeClient {
    OdeClient::new(&ClientConfig {
        retry: RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
        },
        read_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })
    .unwrap()
}

fn request(url: String, name: &str, kbytes: Option<u64>) -> FileRequest {
    FileRequest {
        url,
        name: name.into(),
        kbytes,
    }
}

fn download(file: &FileRequest, dir: &Path) -> Result<areo::ode::Downloaded, DownloadError> {
    runtime().block_on(client().download(file, dir, &Silent))
}

#[test]
fn a_cut_connection_is_resumed_into_a_byte_identical_file() {
    let body = data(3_000_000, 1);
    let served = body.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = serve(move |request: &Request| {
        let response = Response::ranged(request, &served);
        match counter.fetch_add(1, Ordering::SeqCst) {
            0 => response.cut_after(1_000_000),
            1 => response.cut_after(700_000),
            _ => response,
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = request(
        server.url("/data/ESP_1_RED.JP2"),
        "ESP_1_RED.JP2",
        Some(3000),
    );
    let done = download(&file, dir.path()).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("ESP_1_RED.JP2")).unwrap(),
        body
    );
    assert_eq!((done.size, done.sha256.clone()), (3_000_000, sha256(&body)));
    assert!(!dir.path().join("ESP_1_RED.JP2.part").exists());
    let ranges: Vec<Option<u64>> = server.requests().iter().map(Request::range_start).collect();
    assert_eq!(ranges, [None, Some(1_000_000), Some(1_700_000)]);
}

#[test]
fn a_part_left_by_an_earlier_run_is_continued() {
    let body = data(500_000, 2);
    let served = body.clone();
    let server = serve(move |request: &Request| Response::ranged(request, &served));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("B.IMG.part"), &body[..123_456]).unwrap();
    let done = download(&request(server.url("/B.IMG"), "B.IMG", None), dir.path()).unwrap();
    assert_eq!(done.resumed_from, 123_456);
    assert_eq!(
        done.sha256,
        sha256(&body),
        "the hash covers the resumed bytes too"
    );
    assert_eq!(std::fs::read(dir.path().join("B.IMG")).unwrap(), body);
    assert_eq!(server.requests()[0].range_start(), Some(123_456));
}

#[test]
fn a_server_that_ignores_range_gets_a_fresh_download() {
    let body = data(400_000, 3);
    let served = body.clone();
    let server = serve(move |_: &Request| Response::new(200, served.clone()));
    let dir = tempfile::tempdir().unwrap();
    // A stale part whose bytes differ from the file: it must not survive.
    std::fs::write(dir.path().join("C.JPG.part"), vec![0xAA; 100_000]).unwrap();
    let done = download(
        &request(server.url("/C.JPG"), "C.JPG", Some(400)),
        dir.path(),
    )
    .unwrap();
    assert_eq!(std::fs::read(dir.path().join("C.JPG")).unwrap(), body);
    assert_eq!(done.sha256, sha256(&body));
    assert_eq!(
        server.requests()[0].range_start(),
        Some(100_000),
        "it asked"
    );
}

#[test]
fn sizes_that_disagree_with_kbytes_or_content_length_are_errors() {
    let body = data(10_500, 4);
    let served = body.clone();
    let server = serve(move |request: &Request| Response::ranged(request, &served));
    let dir = tempfile::tempdir().unwrap();
    let error = download(&request(server.url("/D.LBL"), "D.LBL", Some(9)), dir.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "D.LBL: 10500 bytes does not match ODE's size of 9 KBytes (8001 to 9000 bytes)"
    );
    assert!(!dir.path().join("D.LBL").exists() && !dir.path().join("D.LBL.part").exists());
    // KBytes rounds up: 10,500 bytes is 11 KBytes.
    download(
        &request(server.url("/D.LBL"), "D.LBL", Some(11)),
        dir.path(),
    )
    .unwrap();

    // A server that promises more than it ever sends, every time.
    let short = serve(|_: &Request| Response::new(200, vec![7u8; 5000]).cut_after(4000));
    let error = download(&request(short.url("/E.JPG"), "E.JPG", None), dir.path()).unwrap_err();
    assert!(
        matches!(error, DownloadError::GaveUp { attempts: 5, .. }),
        "{error}"
    );
}

#[test]
fn hostile_file_names_are_refused_before_any_request() {
    let server = serve(|_: &Request| Response::new(200, "x"));
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "../evil.JP2",
        "/etc/passwd",
        "sub/dir.JPG",
        "..",
        "a\0b",
        "a\\b",
        "",
    ] {
        let error = download(&request(server.url("/x"), name, None), dir.path()).unwrap_err();
        assert!(matches!(error, DownloadError::Name(_)), "{name:?}: {error}");
    }
    assert!(server.requests().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn busy_servers_are_retried_and_missing_files_are_not() {
    let body = data(50_000, 5);
    let served = body.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = serve(
        move |request: &Request| match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Response::new(503, "busy"),
            1 => Response::new(429, "slow down").header("Retry-After", "0"),
            _ => Response::ranged(request, &served),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    download(
        &request(server.url("/F.JPG"), "F.JPG", Some(50)),
        dir.path(),
    )
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let gone = serve(|_: &Request| Response::new(404, "no such file"));
    let error = download(&request(gone.url("/G.JPG"), "G.JPG", None), dir.path()).unwrap_err();
    assert!(
        matches!(error, DownloadError::Status { status: 404, .. }),
        "{error}"
    );
    assert_eq!(gone.requests().len(), 1);
}

/// A workspace whose catalog holds one product with files served by `server`.
fn workspace_with_product(
    dir: &Path,
    files: &[(&str, &str, usize)],
    base: &str,
) -> (Workspace, Catalog) {
    let workspace = Workspace::open(dir).unwrap();
    let catalog = Catalog::open(&workspace.catalog_dir()).unwrap();
    let listed: Vec<_> = files
        .iter()
        .map(|(name, file_type, len)| {
            json!({"FileName": name, "Type": file_type, "URL": format!("{base}/{name}"), "KBytes": len.div_ceil(1000).to_string(), "Description": "test"})
        })
        .collect();
    let reply = json!({"ODEResults": {"Products": {"Product": {
        "pdsid": "ESP_012345_1234_RED", "ihid": "MRO", "iid": "HIRISE", "pt": "RDRV11",
        "Product_files": {"Product_file": listed}
    }}, "Status": "Success"}});
    let path = dir.join("reply.json");
    std::fs::write(&path, reply.to_string()).unwrap();
    import_reply_files(&catalog, &[path], &Silent)
        .pop()
        .unwrap()
        .unwrap();
    (workspace, catalog)
}

#[test]
fn fetch_downloads_the_chosen_kinds_and_records_them() {
    let files: HashMap<&str, Vec<u8>> = [
        ("ESP_012345_1234_RED.BROWSE.JPG", data(120_000, 6)),
        ("ESP_012345_1234_RED.THUMB.JPG", data(9_000, 7)),
        ("ESP_012345_1234_RED.LBL", data(8_212, 8)),
        ("ESP_012345_1234_RED.JP2", data(900_000, 9)),
    ]
    .into_iter()
    .collect();
    let served = files.clone();
    let server = serve(move |request: &Request| {
        let name = request.path.trim_start_matches("/data/");
        match served.get(name) {
            Some(body) => Response::ranged(request, body),
            None => Response::new(404, ""),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let listing: Vec<(&str, &str, usize)> = vec![
        ("ESP_012345_1234_RED.BROWSE.JPG", "Browse", 120_000),
        ("ESP_012345_1234_RED.THUMB.JPG", "Browse", 9_000),
        ("ESP_012345_1234_RED.LBL", "Product", 8_212),
        ("ESP_012345_1234_RED.JP2", "Product", 900_000),
        ("ESP_012345_1234_RED.MISSING.JPG", "Browse", 10),
    ];
    let (workspace, catalog) = workspace_with_product(dir.path(), &listing, &server.url("/data"));
    let ids = vec!["ESP_012345_1234_RED".to_string()];
    let silent = || Box::new(Silent) as Box<dyn Progress>;
    let run = |kinds: &[FetchKind]| {
        runtime()
            .block_on(fetch(
                &client(),
                &catalog,
                &workspace,
                &ids,
                kinds,
                3,
                &Silent,
                &silent,
            ))
            .unwrap()
    };

    let outcomes = run(&[FetchKind::Label, FetchKind::Rdr]);
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        let Outcome::Downloaded(done) = &outcome.outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(done.sha256, sha256(&files[outcome.name.as_str()]));
        let on_disk = dir.path().join(&done.path);
        assert_eq!(
            std::fs::read(on_disk).unwrap(),
            files[outcome.name.as_str()]
        );
    }
    let stored = catalog.files("ESP_012345_1234_RED").unwrap();
    let label = stored.iter().find(|f| f.name.ends_with(".LBL")).unwrap();
    assert_eq!(
        (label.state, label.size),
        (FileState::Complete, Some(8_212))
    );
    assert_eq!(
        label.sha256.as_deref(),
        Some(sha256(&files["ESP_012345_1234_RED.LBL"]).as_str())
    );
    assert_eq!(
        label.local_path.as_deref(),
        Some(Path::new(
            "products/ESP_012345_1234_RED/ESP_012345_1234_RED.LBL"
        ))
    );
    assert_eq!(catalog.stats().unwrap().bytes_on_disk, 908_212);

    // Browse: one file is served, the other is missing; the first still lands.
    let outcomes = run(&[FetchKind::Browse]);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "ESP_012345_1234_RED.MISSING.JPG");
    let missing = catalog
        .files("ESP_012345_1234_RED")
        .unwrap()
        .into_iter()
        .find(|f| f.name.contains("MISSING"))
        .unwrap();
    assert_eq!(missing.state, FileState::Failed);
    assert!(missing.error.unwrap().contains("HTTP 404"));
    assert_eq!(
        catalog.product_state("ESP_012345_1234_RED").unwrap(),
        FileState::Failed
    );

    // Again: what is complete is not downloaded twice.
    let requests = server.requests().len();
    let again = run(&[FetchKind::Label, FetchKind::Rdr]);
    assert!(again
        .iter()
        .all(|o| matches!(o.outcome, Outcome::AlreadyComplete { .. })));
    assert_eq!(server.requests().len(), requests);
    assert_eq!(catalog.verify().unwrap(), Vec::<String>::new());

    let error = runtime()
        .block_on(fetch(
            &client(),
            &catalog,
            &workspace,
            &["NOPE".to_string()],
            &[FetchKind::All],
            1,
            &Silent,
            &silent,
        ))
        .unwrap_err();
    assert!(
        error.to_string().contains("no product NOPE in the catalog"),
        "{error}"
    );
}

#[test]
fn a_fetch_whose_daemon_is_killed_finishes_from_where_it_stopped() {
    let body = data(6_000_000, 10);
    let served = body.clone();
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pace = slow.clone();
    let server = serve(move |request: &Request| {
        let response = Response::ranged(request, &served);
        if pace.load(Ordering::SeqCst) {
            response.throttle(64 * 1024, Duration::from_millis(20))
        } else {
            response
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let name = "ESP_012345_1234_RED.JP2";
    {
        let _ = workspace_with_product(
            dir.path(),
            &[(name, "Product", body.len())],
            &server.url("/data"),
        );
    }
    let areo = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
            .arg("--workspace")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "areo {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let queued = areo(&[
        "--json",
        "fetch",
        "ESP_012345_1234_RED",
        "--kind",
        "rdr",
        "--detach",
    ]);
    let job = queued["job"].as_u64().unwrap();
    let part = dir
        .path()
        .join("products/ESP_012345_1234_RED")
        .join(format!("{name}.part"));
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < 1_000_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon: i32 = std::fs::read_to_string(dir.path().join("areo.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    while Workspace::open(dir.path()).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept >= 1_000_000 && kept < body.len() as u64, "{kept}");

    // Any command restarts the daemon, which queues the interrupted job again.
    slow.store(false, Ordering::SeqCst);
    let ended = areo(&["--json", "jobs", "watch", &job.to_string()]);
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["attempts"], 2, "{ended}");
    let log = ended["log"].to_string();
    assert!(log.contains("interrupted"), "{log}");
    let outcome = &ended["result"][0];
    assert_eq!(outcome["outcome"], "downloaded", "{outcome}");
    let resumed = outcome["resumed_from"].as_u64().unwrap();
    assert!(resumed >= kept, "resumed at {resumed}, kept {kept}");
    let file = dir.path().join("products/ESP_012345_1234_RED").join(name);
    assert_eq!(std::fs::read(&file).unwrap(), body);
    let last = server.requests().last().unwrap().range_start().unwrap();
    assert!(
        last >= kept,
        "resumed at {last}, at least what was on disk ({kept})"
    );

    areo(&["--json", "stop"]);
    let workspace = Workspace::open(dir.path()).unwrap();
    let catalog = Catalog::open(&workspace.catalog_dir()).unwrap();
    let stored = &catalog.files("ESP_012345_1234_RED").unwrap()[0];
    assert_eq!(stored.state, FileState::Complete);
    assert_eq!(stored.sha256.as_deref(), Some(sha256(&body).as_str()));
}
