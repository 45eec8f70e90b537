//! The engine under load: 10,000 trivial jobs through a real daemon.
//!
//! Reports the enqueue rate (one request holding all jobs, and one request per job),
//! scheduling overhead per job (queue to succeeded, nothing to do in between), and how many
//! events per second reach a subscribed client.
//!
//! `cargo bench --bench engine`

use areo::engine::daemon::spawn_detached;
use areo::engine::job::Probe;
use areo::engine::{Client, Event, JobSpec, JobState, NewJob, Request, Response};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: usize = 10_000;

fn trivial() -> NewJob {
    NewJob::new(JobSpec::Probe(Probe::default()))
}

/// Events received and events dropped for falling behind, on one subscribed connection.
#[derive(Default)]
struct Counts {
    received: AtomicU64,
    missed: AtomicU64,
    /// When the latest event arrived.
    last: std::sync::Mutex<Option<Instant>>,
}

fn subscribe(ws: &Path) -> Arc<Counts> {
    let mut client = Client::connect(ws).unwrap();
    client.subscribe(None).unwrap();
    let counts = Arc::new(Counts::default());
    let counting = counts.clone();
    std::thread::spawn(move || {
        while let Ok(Some(event)) = client.next_event(None) {
            counting.received.fetch_add(1, Ordering::Relaxed);
            *counting.last.lock().unwrap() = Some(Instant::now());
            if let Event::Lagged { missed } = event {
                counting.missed.fetch_add(missed, Ordering::Relaxed);
            }
        }
    });
    counts
}

/// Polls until `count` jobs have succeeded.
fn wait_for_succeeded(client: &mut Client, count: u64) -> Instant {
    loop {
        let Ok(Response::Status(status)) = client.call(Request::Status) else {
            panic!("status")
        };
        if status.jobs.get(&JobState::Succeeded).copied().unwrap_or(0) >= count {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    spawn_detached(Path::new(env!("CARGO_BIN_EXE_areo")), &ws, &[]).unwrap();
    let mut client = Client::connect(&ws).unwrap();
    let Ok(Response::Status(status)) = client.call(Request::Status) else {
        panic!("status")
    };
    println!("daemon slots: {}", status.resources);

    let counts = subscribe(&ws);
    let started = Instant::now();
    let ids = client
        .submit((0..JOBS).map(|_| trivial()).collect())
        .unwrap();
    let enqueued = started.elapsed();
    assert_eq!(ids.len(), JOBS);
    let finished = wait_for_succeeded(&mut client, JOBS as u64);
    let all = finished - started;
    let received = counts.received.load(Ordering::Relaxed);
    let missed = counts.missed.load(Ordering::Relaxed);
    println!(
        "enqueue {JOBS} jobs in one request: {:.1} ms ({:.0} jobs/s, stored and flushed)",
        enqueued.as_secs_f64() * 1e3,
        JOBS as f64 / enqueued.as_secs_f64()
    );
    println!(
        "queued to all succeeded: {:.2} s = {:.0} jobs/s, {:.0} us of scheduling per job",
        all.as_secs_f64(),
        JOBS as f64 / all.as_secs_f64(),
        all.as_secs_f64() * 1e6 / JOBS as f64
    );
    println!(
        "events to a subscriber meanwhile: {received} received ({:.0}/s), {missed} missed",
        received as f64 / all.as_secs_f64()
    );

    // One request per job: what a script submitting jobs one by one sees.
    let singles = 1_000;
    let started = Instant::now();
    for _ in 0..singles {
        client.submit(vec![trivial()]).unwrap();
    }
    let each = started.elapsed() / singles;
    println!(
        "enqueue one job per request: {:.2} ms per request",
        each.as_secs_f64() * 1e3
    );

    // Event throughput alone: one job emitting a metric per step.
    let steps = 200_000u32;
    let counts = subscribe(&ws);
    let before = wait_for_succeeded(&mut client, (JOBS + singles as usize) as u64);
    let base = counts.received.load(Ordering::Relaxed);
    client
        .submit(vec![NewJob::new(JobSpec::Probe(Probe {
            steps,
            ..Probe::default()
        }))])
        .unwrap();
    let finished = wait_for_succeeded(&mut client, (JOBS + singles as usize + 1) as u64);
    // Let the subscriber drain what is already on its way.
    std::thread::sleep(Duration::from_millis(500));
    let received = counts.received.load(Ordering::Relaxed) - base;
    let missed = counts.missed.load(Ordering::Relaxed);
    let drained = counts.last.lock().unwrap().unwrap() - before;
    println!(
        "a job emitting {steps} metric events ran {:.3} s; the subscriber received {received} \
         in {:.3} s ({:.0} events/s) and was told it missed {missed}",
        (finished - before).as_secs_f64(),
        drained.as_secs_f64(),
        received as f64 / drained.as_secs_f64()
    );
    client.call(Request::Shutdown).unwrap();
}
