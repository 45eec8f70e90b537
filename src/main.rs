use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `areo catalog list | head` should end quietly when head exits, as other Unix tools do,
    // instead of panicking on the closed pipe (Rust ignores SIGPIPE by default).
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // candle's CPU thread pool spins 25,000 rounds after each of its ops before it sleeps;
    // areo's kernels run on rayon's threads right after, and on a machine of few cores the
    // spinning took their time (4 % of a U-Net training step on 2 cores). A limit the user
    // set is kept. Set before any thread exists, as the environment must be.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AREO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // The daemon's stderr is areo.log: no colour codes in files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match areo::cli::run(areo::cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
