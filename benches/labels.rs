//! Annotation throughput: convert 10,000 VOC files to YOLO, and rasterise 1,000 VIA files
//! of polygons (1024 x 1024 masks) into PNGs, through the same batch code `areo labels` runs.
//!
//! `cargo bench --bench labels` (AREO_BENCH_SCALE=0.1 for a tenth of the files).

use areo::labels::via::ViaOptions;
use areo::labels::{ClassMap, ImageSize};
use areo::pipeline::labels::{
    input_files, rasterize_all, read_all, write_all, Format, ReadOptions, Summary,
};
use std::time::Instant;

fn main() {
    let scale: f64 = std::env::var("AREO_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let classes = ClassMap::mars();

    let voc_files = (10_000.0 * scale) as usize;
    let voc_dir = dir.path().join("voc");
    std::fs::create_dir(&voc_dir).unwrap();
    for i in 0..voc_files {
        let objects: String = (0..4)
            .map(|k| {
                let (x, y) = (1 + (i * 37 + k * 101) % 900, 1 + (i * 53 + k * 71) % 900);
                format!("\t<object>\n\t\t<name>{}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x}</xmin>\n\t\t\t<ymin>{y}</ymin>\n\t\t\t<xmax>{}</xmax>\n\t\t\t<ymax>{}</ymax>\n\t\t</bndbox>\n\t</object>\n", classes.names()[1 + k], x + 20 + k, y + 30)
            })
            .collect();
        let xml = format!("<annotation>\n\t<folder>images</folder>\n\t<filename>tile_{i:05}.jpg</filename>\n\t<size>\n\t\t<width>1024</width>\n\t\t<height>1024</height>\n\t\t<depth>1</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objects}</annotation>\n");
        std::fs::write(voc_dir.join(format!("tile_{i:05}.xml")), xml).unwrap();
    }
    let started = Instant::now();
    let mut summary = Summary::default();
    let files = input_files(std::slice::from_ref(&voc_dir), Format::Voc);
    let (images, _) = read_all(Format::Voc, &files, &ReadOptions::default(), &mut summary);
    write_all(
        Format::Yolo,
        &images,
        &dir.path().join("yolo"),
        &classes,
        &mut summary,
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(summary.failed.is_empty(), "{:?}", &summary.failed[..1]);
    println!(
        "VOC -> YOLO: {} files ({} objects) in {seconds:.2} s: {:.0} files/s",
        summary.files_read,
        summary.objects,
        summary.files_read as f64 / seconds
    );

    let via_files = (1_000.0 * scale) as usize;
    let via_dir = dir.path().join("via");
    std::fs::create_dir(&via_dir).unwrap();
    for i in 0..via_files {
        let regions: Vec<String> = (0..8)
            .map(|k| {
                let (cx, cy) = (100.0 + ((i * 131 + k * 97) % 800) as f64, 100.0 + ((i * 71 + k * 193) % 800) as f64);
                let xs: Vec<String> = (0..24).map(|j| format!("{:.0}", cx + 60.0 * (j as f64 * 0.2618).cos() * (1.0 + 0.3 * ((j * 7) % 3) as f64))).collect();
                let ys: Vec<String> = (0..24).map(|j| format!("{:.0}", cy + 60.0 * (j as f64 * 0.2618).sin())).collect();
                format!(r#"{{"shape_attributes":{{"name":"polygon","all_points_x":[{}],"all_points_y":[{}]}},"region_attributes":{{"anomaly":"{}"}}}}"#, xs.join(","), ys.join(","), 1 + k % 8)
            })
            .collect();
        let json = format!(
            r#"{{"scene_{i:04}.jpg1":{{"filename":"scene_{i:04}.jpg","size":1,"file_attributes":{{}},"regions":[{}]}}}}"#,
            regions.join(",")
        );
        std::fs::write(via_dir.join(format!("scene_{i:04}.json")), json).unwrap();
    }
    let options = ReadOptions {
        via: ViaOptions::default(),
        size: Some(ImageSize {
            width: 1024,
            height: 1024,
            depth: 1,
        }),
        ..ReadOptions::default()
    };
    let started = Instant::now();
    let mut summary = Summary::default();
    let files = input_files(std::slice::from_ref(&via_dir), Format::Via);
    let (images, _) = read_all(Format::Via, &files, &options, &mut summary);
    rasterize_all(
        &images,
        &dir.path().join("masks"),
        &classes,
        false,
        false,
        &mut summary,
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(summary.failed.is_empty(), "{:?}", &summary.failed[..1]);
    println!(
        "VIA polygons -> 1024x1024 PNG masks: {} files ({} polygons) in {seconds:.2} s: {:.0} files/s",
        summary.files_read,
        summary.objects,
        summary.files_read as f64 / seconds
    );
}
