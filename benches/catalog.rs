//! Catalog at scale: import 100,000 generated products (in the real ODE reply format, as
//! 100 pages of 1,000), then time queries by bounding box and by instrument/type.
//!
//! `cargo bench --bench catalog` (set AREO_BENCH_PRODUCTS to change the size). The import is
//! timed once (it is the thing being measured, not a loop body); queries go through criterion.

#[path = "../tests/support/replies.rs"]
mod replies;

use areo::catalog::{Catalog, ProductQuery};
use areo::geo::LonLatBox;
use areo::pipeline::import::import_reply_files;
use areo::progress::Silent;
use criterion::Criterion;
use std::hint::black_box;
use std::time::Instant;

const PAGE: u64 = 1000;

fn main() {
    let total: u64 = std::env::var("AREO_BENCH_PRODUCTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut reply_bytes = 0;
    for first in (0..total).step_by(PAGE as usize) {
        let path = dir.path().join(format!("page-{first:07}.json"));
        let text = replies::reply(first, PAGE.min(total - first), 7, "2026-11-26T00:00:00.000");
        reply_bytes += text.len();
        std::fs::write(&path, text).expect("write page");
        pages.push(path);
    }
    println!(
        "generated {total} products in {} pages ({:.0} MB of JSON) in {:.1} s",
        pages.len(),
        reply_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let catalog = Catalog::open(&dir.path().join("catalog")).expect("open catalog");
    let started = Instant::now();
    for result in import_reply_files(&catalog, &pages, &Silent) {
        result.expect("import");
    }
    catalog.flush().expect("flush");
    let seconds = started.elapsed().as_secs_f64();
    let stats = catalog.stats().expect("stats");
    println!(
        "imported {} products ({} files) in {seconds:.1} s: {:.0} products/s, {:.1} MB/s of reply",
        stats.products,
        stats.files,
        stats.products as f64 / seconds,
        reply_bytes as f64 / 1e6 / seconds
    );
    println!(
        "catalog on disk: {:.0} MB",
        stats.catalog_bytes as f64 / 1e6
    );

    // About 10 x 10 degrees at the equator: a few hundred of 100k products.
    let bbox: LonLatBox = "100,110,-5,5".parse().unwrap();
    let across: LonLatBox = "355,5,-5,5".parse().unwrap();
    let polar: LonLatBox = "0,360,80,90".parse().unwrap();
    for (name, query) in [
        ("bbox 10x10", bbox),
        ("bbox across 0/360", across),
        ("bbox north polar cap", polar),
    ] {
        let hits = catalog
            .query(&ProductQuery {
                bbox: Some(query),
                ..Default::default()
            })
            .expect("query")
            .len();
        println!("{name} ({query}): {hits} products");
    }
    let ctx = ProductQuery {
        instrument: Some("CTX".into()),
        product_type: Some("EDR".into()),
        limit: Some(100),
        ..Default::default()
    };

    let mut criterion = Criterion::default().configure_from_args().sample_size(30);
    criterion.bench_function("query bbox 10x10 deg", |b| {
        b.iter(|| {
            catalog
                .query(&ProductQuery {
                    bbox: Some(bbox),
                    ..Default::default()
                })
                .unwrap()
        })
    });
    criterion.bench_function("query bbox across 0/360", |b| {
        b.iter(|| {
            catalog
                .query(&ProductQuery {
                    bbox: Some(across),
                    ..Default::default()
                })
                .unwrap()
        })
    });
    criterion.bench_function("query bbox polar cap", |b| {
        b.iter(|| {
            catalog
                .query(&ProductQuery {
                    bbox: Some(polar),
                    ..Default::default()
                })
                .unwrap()
        })
    });
    criterion.bench_function("query instrument CTX/EDR first 100", |b| {
        b.iter(|| black_box(catalog.query(&ctx).unwrap()))
    });
    let some_pdsid = replies::product(total / 2 + 1, 7)["pdsid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(catalog.product(&some_pdsid).unwrap().is_some());
    criterion.bench_function("show one product with files", |b| {
        b.iter(|| {
            let product = catalog.product(&some_pdsid).unwrap();
            black_box((product, catalog.files(&some_pdsid).unwrap()))
        })
    });
    criterion.final_summary();
}
