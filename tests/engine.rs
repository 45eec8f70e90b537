//! The daemon as clients meet it: a real `areo serve` on a temporary workspace, spoken to
//! over its Unix socket.

use areo::engine::daemon::{socket_path, spawn_detached};
use areo::engine::job::Probe;
use areo::engine::protocol::{read_frame, write_frame, ClientFrame, ServerFrame};
use areo::engine::{
    Client, ClientError, Event, JobId, JobRecord, JobSpec, JobState, NewJob, Request, Resources,
    Response,
};
use areo::pipeline::detections::DetectionRequest;
use areo::pipeline::evaluate::KeptReport;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AREO: &str = env!("CARGO_BIN_EXE_areo");

/// A daemon on its own temporary workspace, stopped when dropped.
struct Daemon {
    dir: tempfile::TempDir,
    ws: PathBuf,
}

impl Daemon {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        spawn_detached(Path::new(AREO), &ws, &args).unwrap();
        Daemon { dir, ws }
    }

    fn client(&self) -> Client {
        Client::connect(&self.ws).unwrap()
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.ws.join("areo.lock"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.ws.join("areo.log")).unwrap_or_default()
    }

    fn kill_9(&self) {
        let pid = self.pid();
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // The workspace lock is released when the process is gone.
        wait_until("the killed daemon to let go of its workspace", || {
            areo::workspace::Workspace::open(&self.ws).is_ok()
        });
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&self.ws) {
            let _ = client.call(Request::Shutdown);
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for(
    client: &mut Client,
    id: JobId,
    what: &str,
    done: impl Fn(&JobRecord) -> bool,
) -> JobRecord {
    let mut last = None;
    wait_until(what, || {
        let job = client.job(id).unwrap();
        let finished = done(&job);
        last = Some(job);
        finished
    });
    last.unwrap()
}

fn settled(client: &mut Client, id: JobId) -> JobRecord {
    wait_for(client, id, "the job to settle", |j| j.state.is_final())
}

fn probe(steps: u32, step_ms: u64) -> Probe {
    Probe {
        steps,
        step_ms,
        ..Probe::default()
    }
}

fn job(probe: Probe) -> NewJob {
    NewJob::new(JobSpec::Probe(probe))
}

fn submit_one(client: &mut Client, new: NewJob) -> JobId {
    client.submit(vec![new]).unwrap()[0]
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_submitted_job_runs_and_its_events_arrive_in_order() {
    let daemon = Daemon::start(&[]);
    let mut watcher = daemon.client();
    watcher.subscribe(None).unwrap();
    let mut client = daemon.client();
    let id = submit_one(&mut client, job(probe(20, 5)));

    let mut states = Vec::new();
    let mut progress = Vec::new();
    let mut metric_steps = Vec::new();
    loop {
        let event = watcher
            .next_event(Some(Duration::from_secs(30)))
            .unwrap()
            .expect("events keep coming");
        match event {
            Event::Job { job } if job.id == id => {
                states.push(job.state);
                if job.state.is_final() {
                    break;
                }
            }
            Event::Progress {
                job, done, total, ..
            } if job == id => progress.push((done, total)),
            Event::Metric { job, step, .. } if job == id => metric_steps.push(step),
            _ => {}
        }
    }
    assert_eq!(
        states,
        [JobState::Queued, JobState::Running, JobState::Succeeded]
    );
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    assert_eq!(progress.last(), Some(&(20, 20)));
    assert_eq!(metric_steps, (0..20).collect::<Vec<u64>>());

    let record = client.job(id).unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.result, Some(serde_json::json!({"steps": 20})));
    assert!(record.started.unwrap() <= record.finished.unwrap());
}

#[test]
fn cancelling_a_running_job_stops_it_and_the_jobs_after_it() {
    let daemon = Daemon::start(&["--cpu-slots", "1"]);
    let mut client = daemon.client();
    let long = job(probe(10_000, 10));
    let mut next = job(probe(1, 0));
    next.after_new = vec![0];
    let ids = client.submit(vec![long, next]).unwrap();
    wait_for(&mut client, ids[0], "progress", |j| {
        j.progress.as_ref().is_some_and(|p| p.done > 0)
    });
    client.call(Request::Cancel { id: ids[0] }).unwrap();

    let cancelled = settled(&mut client, ids[0]);
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(cancelled.progress.unwrap().done < 10_000);
    let dependent = settled(&mut client, ids[1]);
    assert_eq!(dependent.state, JobState::Cancelled);
    assert_eq!(dependent.attempts, 0, "it never started");
    assert!(
        dependent
            .error
            .as_deref()
            .unwrap()
            .contains(&format!("job {}", ids[0])),
        "{:?}",
        dependent.error
    );
    let Response::Status(status) = client.call(Request::Status).unwrap() else {
        panic!("status")
    };
    assert_eq!(
        status.in_use,
        Resources::default(),
        "the CPU slot is free again"
    );
    let again = client.call(Request::Cancel { id: ids[0] }).unwrap_err();
    assert!(again.to_string().contains("already cancelled"), "{again}");
}

#[test]
fn a_failed_job_says_why_and_a_retry_runs_it_again() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let needed = daemon.path("needed-file");
    let id = submit_one(
        &mut client,
        job(Probe {
            fail_unless: Some(needed.clone()),
            ..probe(3, 1)
        }),
    );
    let failed = settled(&mut client, id);
    assert_eq!(failed.state, JobState::Failed);
    let error = failed.error.unwrap();
    assert!(
        error.contains("needed-file") && error.contains("does not exist"),
        "{error}"
    );
    assert!(
        failed.log.iter().any(|l| l.contains("failing")),
        "{:?}",
        failed.log
    );

    std::fs::write(&needed, "now it exists").unwrap();
    client.call(Request::Retry { id }).unwrap();
    let retried = settled(&mut client, id);
    assert_eq!(retried.state, JobState::Succeeded);
    assert_eq!(retried.attempts, 2);
    assert_eq!(retried.error, None);

    let refused = client.call(Request::Retry { id }).unwrap_err();
    assert!(refused.to_string().contains("is succeeded"), "{refused}");
    let missing = client.call(Request::Retry { id: 999 }).unwrap_err();
    assert!(missing.to_string().contains("no job 999"), "{missing}");
}

#[test]
fn jobs_start_by_priority_then_order_once_what_they_follow_succeeded() {
    let daemon = Daemon::start(&["--cpu-slots", "1"]);
    let mut client = daemon.client();
    let mut after_first = job(probe(2, 20));
    after_first.after_new = vec![0];
    let mut urgent = job(probe(2, 20));
    urgent.priority = 5;
    let ids = client
        .submit(vec![
            job(probe(2, 20)),
            after_first,
            urgent,
            job(probe(2, 20)),
        ])
        .unwrap();
    let mut records: Vec<JobRecord> = ids.iter().map(|id| settled(&mut client, *id)).collect();
    assert!(records.iter().all(|r| r.state == JobState::Succeeded));
    records.sort_by_key(|r| r.started.unwrap());
    let order: Vec<JobId> = records.iter().map(|r| r.id).collect();
    // The urgent one first; then FIFO; the dependent one is ready (and older than the last)
    // once the first succeeded.
    assert_eq!(order, [ids[2], ids[0], ids[1], ids[3]]);
    for pair in records.windows(2) {
        assert!(
            pair[0].finished.unwrap() <= pair[1].started.unwrap(),
            "one CPU slot: no overlap"
        );
    }
}

#[test]
fn impossible_or_malformed_submissions_are_refused_whole() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let gpu = Probe {
        needs: Some(Resources {
            cpu: 0,
            gpu: 1,
            net: 0,
        }),
        ..probe(1, 0)
    };
    let error = client
        .submit(vec![job(probe(1, 0)), job(gpu)])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("job 2 of the submission") && error.contains("gpu 1"),
        "{error}"
    );
    let relative = NewJob::new(JobSpec::Import {
        files: vec!["reply.json".into()],
    });
    let error = client.submit(vec![relative]).unwrap_err().to_string();
    assert!(error.contains("absolute"), "{error}");
    let mut forward = job(probe(1, 0));
    forward.after_new = vec![0];
    let error = client.submit(vec![forward]).unwrap_err().to_string();
    assert!(error.contains("not before it"), "{error}");
    let Response::Jobs { jobs } = client
        .call(Request::Jobs {
            state: None,
            limit: None,
        })
        .unwrap()
    else {
        panic!("jobs")
    };
    assert!(
        jobs.is_empty(),
        "nothing of a refused submission is kept: {jobs:?}"
    );
}

#[test]
fn two_clients_at_once_each_see_every_job() {
    let daemon = Daemon::start(&[]);
    let mut first = daemon.client();
    let mut second = daemon.client();
    first.subscribe(None).unwrap();
    second.subscribe(None).unwrap();
    let twice = first.subscribe(None).unwrap_err();
    assert!(twice.to_string().contains("already subscribed"), "{twice}");
    let a = submit_one(&mut first, job(probe(3, 5)));
    let b = submit_one(&mut second, job(probe(3, 5)));
    for client in [&mut first, &mut second] {
        let mut succeeded = Vec::new();
        while succeeded.len() < 2 {
            match client.next_event(Some(Duration::from_secs(30))).unwrap() {
                Some(Event::Job { job }) if job.state == JobState::Succeeded => {
                    succeeded.push(job.id)
                }
                Some(_) => {}
                None => panic!("no events for 30 s"),
            }
        }
        succeeded.sort_unstable();
        assert_eq!(succeeded, [a, b]);
    }
}

#[test]
fn clients_that_vanish_or_never_read_do_not_hold_the_daemon_up() {
    let daemon = Daemon::start(&[]);
    // One subscribes and leaves mid-stream.
    let mut leaver = daemon.client();
    leaver.subscribe(None).unwrap();
    // One subscribes and never reads: its socket buffer fills up.
    let mut sleeper = daemon.client();
    sleeper.subscribe(None).unwrap();
    let mut client = daemon.client();
    // A metric event per step: far more than a socket buffer holds.
    let id = submit_one(&mut client, job(probe(200_000, 0)));
    for _ in 0..3 {
        leaver.next_event(Some(Duration::from_secs(30))).unwrap();
    }
    drop(leaver);
    let done = settled(&mut client, id);
    assert_eq!(done.state, JobState::Succeeded);
    // The daemon still answers, and new jobs still run.
    let next = submit_one(&mut client, job(probe(1, 0)));
    assert_eq!(settled(&mut client, next).state, JobState::Succeeded);
    // The sleeper finds out it missed events rather than the daemon waiting for it.
    let mut lagged = false;
    while let Ok(Some(event)) = sleeper.next_event(Some(Duration::from_secs(2))) {
        if matches!(event, Event::Lagged { missed } if missed > 0) {
            lagged = true;
            break;
        }
    }
    assert!(lagged, "the slow client was told it lagged");
}

#[test]
fn after_kill_9_running_jobs_resume_and_finished_ones_do_not_run_again() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let finished_runs = daemon.path("finished-runs");
    let running_runs = daemon.path("running-runs");
    let finished = submit_one(
        &mut client,
        job(Probe {
            record_runs: Some(finished_runs.clone()),
            ..probe(2, 1)
        }),
    );
    let before = settled(&mut client, finished);
    assert_eq!(before.state, JobState::Succeeded);
    let running = submit_one(
        &mut client,
        job(Probe {
            record_runs: Some(running_runs.clone()),
            ..probe(150, 10)
        }),
    );
    wait_for(&mut client, running, "progress", |j| {
        j.progress.as_ref().is_some_and(|p| p.done > 0)
    });
    let queued = submit_one(&mut client, {
        let mut later = job(probe(1, 0));
        later.after = vec![running];
        later
    });
    drop(client);
    daemon.kill_9();
    assert!(
        socket_path(&daemon.ws).exists(),
        "a killed daemon leaves its socket behind"
    );
    assert!(matches!(
        Client::connect(&daemon.ws),
        Err(ClientError::NotRunning(_))
    ));

    let mut client = Client::connect_or_start(&daemon.ws, Path::new(AREO)).unwrap();
    let resumed = settled(&mut client, running);
    assert_eq!(resumed.state, JobState::Succeeded);
    assert_eq!(resumed.attempts, 2);
    assert!(
        resumed.log.iter().any(|l| l.contains("interrupted")),
        "{:?}",
        resumed.log
    );
    assert_eq!(
        lines(&running_runs),
        2,
        "started twice: before and after the kill"
    );
    assert_eq!(settled(&mut client, queued).state, JobState::Succeeded);
    let after = client.job(finished).unwrap();
    assert_eq!(after, before, "the finished job is untouched");
    assert_eq!(lines(&finished_runs), 1, "and was not run again");
    assert!(
        daemon.log().contains("removing the stale socket"),
        "{}",
        daemon.log()
    );
}

#[test]
fn stop_interrupts_running_jobs_and_the_next_daemon_runs_them_again() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let id = submit_one(&mut client, job(probe(100, 10)));
    wait_for(&mut client, id, "progress", |j| {
        j.progress.as_ref().is_some_and(|p| p.done > 0)
    });
    drop(client);
    let stop = std::process::Command::new(AREO)
        .arg("--workspace")
        .arg(&daemon.ws)
        .arg("stop")
        .output()
        .unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(
        !socket_path(&daemon.ws).exists(),
        "a stopped daemon removes its socket"
    );
    assert!(
        daemon.log().contains(&format!("job {id} interrupted")),
        "{}",
        daemon.log()
    );

    let mut client = Client::connect_or_start(&daemon.ws, Path::new(AREO)).unwrap();
    let done = settled(&mut client, id);
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.attempts, 2);
}

#[test]
fn a_second_daemon_on_one_workspace_is_refused() {
    let daemon = Daemon::start(&[]);
    let second = std::process::Command::new(AREO)
        .arg("--workspace")
        .arg(&daemon.ws)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains(&format!(
            "in use by another areo process (pid {})",
            daemon.pid()
        )),
        "{message}"
    );
    // The first one is unharmed.
    let mut client = daemon.client();
    assert!(matches!(
        client.call(Request::Status),
        Ok(Response::Status(_))
    ));
}

#[test]
fn a_stale_socket_is_removed_and_the_socket_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    drop(std::os::unix::net::UnixListener::bind(socket_path(&ws)).unwrap());
    assert!(matches!(
        Client::connect(&ws),
        Err(ClientError::NotRunning(_))
    ));

    let mut client = Client::connect_or_start(&ws, Path::new(AREO)).unwrap();
    assert!(matches!(
        client.call(Request::Status),
        Ok(Response::Status(_))
    ));
    let mode = std::fs::metadata(socket_path(&ws))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = std::fs::read_to_string(ws.join("areo.log")).unwrap();
    assert!(log.contains("removing the stale socket"), "{log}");
    client.call(Request::Shutdown).unwrap();
}

/// Sends raw bytes as a frame and reads the reply.
fn raw_call(stream: &mut UnixStream, body: &[u8]) -> Option<ServerFrame> {
    use std::io::Write;
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    read_frame(stream)
        .ok()
        .flatten()
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
}

fn error_of(frame: Option<ServerFrame>) -> (u64, String) {
    match frame {
        Some(ServerFrame::Reply {
            id,
            response: Response::Error { message },
        }) => (id, message),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn malformed_frames_and_unknown_requests_get_errors_without_harm() {
    let daemon = Daemon::start(&[]);
    let socket = socket_path(&daemon.ws);

    // Requests before the handshake, and the wrong protocol, are refused.
    let mut early = UnixStream::connect(&socket).unwrap();
    let (_, message) = error_of(raw_call(
        &mut early,
        br#"{"id":1,"request":{"type":"status"}}"#,
    ));
    assert!(message.contains("hello"), "{message}");
    let mut old = UnixStream::connect(&socket).unwrap();
    let hello = br#"{"id":1,"request":{"type":"hello","protocol":999,"client":"old"}}"#;
    let (_, message) = error_of(raw_call(&mut old, hello));
    assert!(
        message.contains(&format!(
            "protocol {}",
            areo::engine::protocol::PROTOCOL_VERSION
        )) && message.contains("999"),
        "{message}"
    );

    let mut stream = UnixStream::connect(&socket).unwrap();
    let hello = ClientFrame {
        id: 1,
        request: Request::Hello {
            protocol: areo::engine::protocol::PROTOCOL_VERSION,
            client: "test".into(),
        },
    };
    write_frame(&mut stream, &hello).unwrap();
    read_frame(&mut stream).unwrap().unwrap();
    let (id, message) = error_of(raw_call(&mut stream, b"{not json"));
    assert_eq!(id, 0);
    assert!(message.contains("malformed"), "{message}");
    let (id, message) = error_of(raw_call(
        &mut stream,
        br#"{"id":7,"request":{"type":"frobnicate"}}"#,
    ));
    assert_eq!(id, 7, "the error answers the request it is about");
    assert!(message.contains("frobnicate"), "{message}");
    // The same connection still works.
    write_frame(
        &mut stream,
        &ClientFrame {
            id: 8,
            request: Request::Status,
        },
    )
    .unwrap();
    let reply: ServerFrame =
        serde_json::from_slice(&read_frame(&mut stream).unwrap().unwrap()).unwrap();
    assert!(matches!(
        reply,
        ServerFrame::Reply {
            id: 8,
            response: Response::Status(_)
        }
    ));

    // A frame claiming 4 GB is refused and that connection closed.
    use std::io::Write;
    stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let (_, message) = error_of(
        read_frame(&mut stream)
            .unwrap()
            .map(|b| serde_json::from_slice(&b).unwrap()),
    );
    assert!(message.contains("limit"), "{message}");
    assert!(read_frame(&mut stream).unwrap().is_none(), "closed");
    // A frame cut off by a vanishing client.
    let mut cut = UnixStream::connect(&socket).unwrap();
    cut.write_all(&100u32.to_be_bytes()).unwrap();
    cut.write_all(b"{\"id\":").unwrap();
    drop(cut);

    let mut client = daemon.client();
    let id = submit_one(&mut client, job(probe(1, 0)));
    assert_eq!(settled(&mut client, id).state, JobState::Succeeded);
}

#[test]
fn a_tile_job_cuts_a_real_image_in_the_daemon() {
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let input = std::path::absolute("data/samples/nanedi-256.png").unwrap();
    let out = daemon.path("chips");
    let request = areo::pipeline::tile::TileRequest {
        input,
        spec: areo::raster::tile::TileSpec {
            size: 128,
            stride: 128,
            edge: areo::raster::tile::Edge::Drop,
            skip_no_data: None,
        },
        label: None,
        labels: None,
        classes: None,
        circle_scale: None,
        min_visible: None,
        out: out.clone(),
    };
    let id = submit_one(&mut client, NewJob::new(JobSpec::Tile(request)));
    let done = settled(&mut client, id);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.result.as_ref().unwrap()["chips"], 4);
    assert_eq!(done.outputs, [out.display().to_string()]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["chips"].as_array().unwrap().len(), 4);
    assert!(out.join("nanedi-256_128_128.png").exists());
}

#[test]
fn a_labels_job_paints_masks_and_names_the_files_it_could_not_read() {
    use areo::labels::ImageSize;
    use areo::pipeline::labels::{Format, LabelOutput, LabelRequest, LabelSource};
    let daemon = Daemon::start(&[]);
    let mut client = daemon.client();
    let inputs = daemon.path("craters");
    std::fs::create_dir_all(&inputs).unwrap();
    // The second crater lies wholly outside the 32 x 32 image: dropped, and the log says so.
    std::fs::write(inputs.join("site.csv"), "x,y,diameter\n10,10,6\n50,50,4\n").unwrap();
    let out = daemon.path("masks");
    let request = |inputs: Vec<PathBuf>| LabelRequest {
        source: LabelSource {
            format: Format::Craters,
            inputs,
            classes: None,
            size: Some(ImageSize {
                width: 32,
                height: 32,
                depth: 1,
            }),
            images: None,
            class_attribute: None,
            default_class: None,
            circle_scale: None,
        },
        output: LabelOutput::Rasterize {
            out: out.clone(),
            palette: false,
            instances: false,
        },
    };
    let id = submit_one(
        &mut client,
        NewJob::new(JobSpec::Labels(request(vec![inputs.clone()]))),
    );
    let done = settled(&mut client, id);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert_eq!(done.result.as_ref().unwrap()["summary"]["files_written"], 1);
    assert!(
        done.log.iter().any(|l| l.starts_with("dropped ")
            && l.ends_with(
                "object 2 (crater) at (48, 48)-(52, 52) lies outside the 32 x 32 image"
            )),
        "{:?}",
        done.log
    );
    let mask_path = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .expect("a mask");
    let mask = image::open(&mask_path).unwrap().to_luma8();
    assert_eq!(mask.get_pixel(10, 10)[0], 1, "crater class at its centre");
    assert_eq!(mask.get_pixel(30, 30)[0], 0, "background far from it");

    std::fs::write(inputs.join("broken.csv"), "a,b\n1,2\n").unwrap();
    let id = submit_one(
        &mut client,
        NewJob::new(JobSpec::Labels(request(vec![inputs.clone()]))),
    );
    let failed = settled(&mut client, id);
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.error.as_deref(), Some("1 file(s) failed"));
    assert!(
        failed.log.iter().any(|l| l.contains("broken.csv")),
        "{:?}",
        failed.log
    );
}

#[test]
fn runs_evaluations_and_the_log_come_through_the_daemon() {
    let daemon = Daemon::start(&[]);
    let mut client = Client::connect(&daemon.ws).unwrap();
    match client.call(Request::Runs).unwrap() {
        Response::Runs { runs } => assert!(runs.is_empty()),
        other => panic!("{other:?}"),
    }
    match client.call(Request::Evals).unwrap() {
        Response::Evals { reports } => assert!(reports.is_empty()),
        other => panic!("{other:?}"),
    }
    let error = client
        .call(Request::Run {
            name: "../catalog".into(),
        })
        .unwrap_err()
        .to_string();
    assert!(error.contains("run name"), "{error}");
    let error = client
        .call(Request::Run {
            name: "missing".into(),
        })
        .unwrap_err()
        .to_string();
    assert_eq!(error, "no run missing");
    // A named detection evaluation is a job whose report is kept and listed beside the
    // segmentation reports.
    let truth = daemon.ws.join("truth.json");
    std::fs::write(
        &truth,
        r#"{"images":[{"id":1,"file_name":"a.png","width":64,"height":64}],
            "categories":[{"id":1,"name":"crater"}],
            "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[10,10,8,8],
                            "area":64,"iscrowd":0}]}"#,
    )
    .unwrap();
    let results = daemon.ws.join("detections.json");
    std::fs::write(
        &results,
        r#"[{"image_id":1,"category_id":1,"bbox":[10,10,8,8],"score":0.9}]"#,
    )
    .unwrap();
    let id = submit_one(
        &mut client,
        NewJob::new(JobSpec::EvalDetections(DetectionRequest {
            name: Some("found".into()),
            run: Some("ssd1".into()),
            truth,
            truth_format: None,
            results,
            threshold: 0.5,
        })),
    );
    let done = settled(&mut client, id);
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    match client.call(Request::Evals).unwrap() {
        Response::Evals { reports } => match &reports[..] {
            [KeptReport::Detections(report)] => {
                assert_eq!(report.name.as_deref(), Some("found"));
                assert!(
                    (report.metrics["AP50"] - 1.0).abs() < 1e-12,
                    "{:?}",
                    report.metrics
                );
                assert_eq!(report.confusion, [[1, 0], [0, 0]]);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    // A file in evals/ that is not a report is named in the error.
    std::fs::write(daemon.ws.join("evals/broken.json"), b"{\"name\":").unwrap();
    let error = client.call(Request::Evals).unwrap_err().to_string();
    assert!(
        error.contains("broken.json") && error.contains("not an evaluation report"),
        "{error}"
    );
    match client.call(Request::DaemonLog { lines: 3 }).unwrap() {
        Response::LogLines { lines } => {
            assert!(!lines.is_empty() && lines.len() <= 3, "{lines:?}");
        }
        other => panic!("{other:?}"),
    }
}
