//! Progress reporting for long work: one small trait that every step reports through; the
//! CLI draws it as a bar, the engine turns it into events.

/// Receives progress from a long-running step. Implementations must be cheap: steps call
/// `advance` in their inner loops.
pub trait Progress: Send + Sync {
    /// Announces how many units the step will do (products, bytes, tiles...).
    fn start(&self, label: &str, total: u64);
    fn advance(&self, units: u64);
    fn finish(&self);
    /// Whether whoever started the step wants it to stop; long steps check this between
    /// units of work and return early, leaving what they wrote whole.
    fn cancelled(&self) -> bool {
        false
    }
    /// Whether whoever started the step wants it to end at its next natural boundary (a
    /// training run: when the epoch ends, checkpoint written), rather than at once.
    fn stop_at_boundary(&self) -> bool {
        false
    }
    /// A named value at a step (a loss, a score), for live charts.
    fn metric(&self, _name: &str, _step: u64, _value: f64) {}
    /// A line for the step's log.
    fn log(&self, _line: &str) {}
}

/// Discards progress (tests, `--json` runs).
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _label: &str, _total: u64) {}
    fn advance(&self, _units: u64) {}
    fn finish(&self) {}
}

/// Bytes in SI units (powers of 1000, as ODE counts them): 999 B, 1.2 kB, 3.4 MB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
