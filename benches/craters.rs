//! Crater extraction speed on a 1,700 x 850 crater probability map (the PyCDA tile's size)
//! with 300 craters of 4-120 px, some faint: the disc search over diameters 4-200 px that
//! `areo eval --probabilities` runs, and mask components as circles for comparison.
//!
//! `cargo bench --bench craters`

use areo::metrics::blobs::{disc_blobs, BlobSearch};
use areo::metrics::objects::circles;
use std::time::Instant;

fn main() {
    let (width, height) = (1700usize, 850usize);
    let mut probability = vec![0.01f32; width * height];
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for _ in 0..300 {
        let (cx, cy) = (next() * width as f64, next() * height as f64);
        // Mostly small craters, as on Mars: diameter 4 * 30^u.
        let r = 2.0 * 30f64.powf(next());
        let p = if next() < 0.3 { 0.4 } else { 0.95 } as f32;
        let reach = r.ceil() as i64;
        for y in (cy as i64 - reach).max(0)..(cy as i64 + reach + 1).min(height as i64) {
            for x in (cx as i64 - reach).max(0)..(cx as i64 + reach + 1).min(width as i64) {
                if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r * r {
                    let slot = &mut probability[y as usize * width + x as usize];
                    *slot = slot.max(p);
                }
            }
        }
    }
    let mask: Vec<u8> = probability.iter().map(|&p| u8::from(p >= 0.5)).collect();
    let search = BlobSearch::default();
    let runs = 5;
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..runs {
        found = disc_blobs(&probability, width, &search).len();
    }
    let blobs = started.elapsed().as_secs_f64() / runs as f64;
    let started = Instant::now();
    let mut components = 0;
    for _ in 0..runs {
        components = circles(&mask, width, 1, 1.0, 4).len();
    }
    let masks = started.elapsed().as_secs_f64() / runs as f64;
    println!(
        "probability discs: {found} craters in {blobs:.3} s ({:.1} Mpx/s); mask components: {components} in {masks:.3} s",
        (width * height) as f64 / blobs / 1e6
    );
}
