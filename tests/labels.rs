//! `areo labels` as a user runs it, on files written here.

use image::GenericImageView;
use std::path::Path;
use std::process::{Command, Output};

fn areo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_areo"))
        .args(args)
        .output()
        .expect("run areo")
}

fn voc(name: &str, boxes: &[(&str, u32, u32, u32, u32)]) -> String {
    let objects: String = boxes
        .iter()
        .map(|(class, x0, y0, x1, y1)| format!("<object><name>{class}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"))
        .collect();
    format!("<annotation><filename>{name}.jpg</filename><size><width>640</width><height>480</height><depth>1</depth></size>{objects}</annotation>")
}

fn boxes_of(path: &Path) -> Vec<(String, i64, i64, i64, i64)> {
    let labels = areo::labels::voc::read("x", &std::fs::read_to_string(path).unwrap()).unwrap();
    labels
        .objects
        .iter()
        .map(|o| {
            let [a, b, c, d] = o.shape.bbox();
            (o.class.clone(), a as i64, b as i64, c as i64, d as i64)
        })
        .collect()
}

#[test]
fn a_voc_folder_round_trips_through_yolo_and_a_bad_file_does_not_stop_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("voc");
    std::fs::create_dir(&input).unwrap();
    let a = [("crater", 10, 20, 30, 40), ("dark dune", 1, 1, 640, 480)];
    let b = [("Slope Streak", 100, 101, 333, 222)];
    std::fs::write(input.join("a.xml"), voc("a", &a)).unwrap();
    std::fs::write(input.join("b.xml"), voc("b", &b)).unwrap();
    std::fs::write(input.join("broken.xml"), "<annotation><object>").unwrap();
    std::fs::write(input.join("notes.txt"), "not an annotation").unwrap();
    let yolo = dir.path().join("yolo");
    let out = areo(&[
        "labels",
        "convert",
        "--from",
        "voc",
        "--to",
        "yolo",
        input.to_str().unwrap(),
        "--out",
        yolo.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "one file failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.xml: malformed XML"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("read 2 file(s): 2 image(s), 3 object(s); wrote 3 file(s)"));
    assert_eq!(
        std::fs::read_to_string(yolo.join("a.txt")).unwrap(),
        "1 0.031250 0.062500 0.031250 0.041667\n2 0.500781 0.501042 0.998437 0.997917\n"
    );
    assert_eq!(
        std::fs::read_to_string(yolo.join("classes.txt"))
            .unwrap()
            .lines()
            .nth(3),
        Some("slope streak")
    );

    let back = dir.path().join("back");
    let out = areo(&[
        "labels",
        "convert",
        "--from",
        "yolo",
        "--to",
        "voc",
        yolo.to_str().unwrap(),
        "--size",
        "640x480",
        "--classes",
        yolo.join("classes.txt").to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = |boxes: &[(&str, u32, u32, u32, u32)]| -> Vec<(String, i64, i64, i64, i64)> {
        boxes
            .iter()
            .map(|(c, a, b, x, y)| (c.to_lowercase(), *a as i64, *b as i64, *x as i64, *y as i64))
            .collect()
    };
    assert_eq!(boxes_of(&back.join("a.xml")), expected(&a));
    assert_eq!(boxes_of(&back.join("b.xml")), expected(&b));

    std::fs::remove_file(yolo.join("classes.txt")).unwrap();
    let out = areo(&[
        "labels",
        "stats",
        "--from",
        "yolo",
        yolo.to_str().unwrap(),
        "--size",
        "640x480",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YOLO class ids need their names"));
}

#[test]
fn via_polygons_and_circles_rasterise_to_class_masks() {
    let dir = tempfile::tempdir().unwrap();
    let via = r#"{"tile.png1":{"filename":"tile.png","size":1,"file_attributes":{},"regions":[
        {"shape_attributes":{"name":"rect","x":0,"y":0,"width":9,"height":4},"region_attributes":{"class":"dark dune"}},
        {"shape_attributes":{"name":"circle","cx":10,"cy":10,"r":3},"region_attributes":{"class":"crater"}},
        {"shape_attributes":{"name":"polygon","all_points_x":[30,39,39,30],"all_points_y":[30,30,39,39]},"region_attributes":{"class":"8"}},
        {"shape_attributes":{"name":"point","cx":45,"cy":-5},"region_attributes":{"class":"spider"}}]}}"#;
    std::fs::write(dir.path().join("via.json"), via).unwrap();
    let out_dir = dir.path().join("masks");
    let out = areo(&[
        "labels",
        "rasterize",
        "--from",
        "via",
        dir.path().join("via.json").to_str().unwrap(),
        "--size",
        "48x40",
        "--out",
        out_dir.to_str().unwrap(),
        "--instances",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("1 shape(s) reached outside their image and were clipped"));
    let mask = image::open(out_dir.join("tile.png")).unwrap();
    assert_eq!(mask.dimensions(), (48, 40));
    let mask = mask.into_luma8();
    let count = |value: u8| mask.pixels().filter(|p| p.0[0] == value).count();
    assert_eq!(
        count(2),
        10 * 5,
        "the 9x4 rect covers pixel columns 0-9 and rows 0-4"
    );
    assert_eq!(count(1), 29, "a radius-3 circle covers 29 pixel centres");
    assert_eq!(count(8), 100, "the technosignature square, given by id");
    assert_eq!(count(7), 1, "the point, clipped to the top row");
    assert_eq!(mask.get_pixel(45, 0).0[0], 7);
    let instances = image::open(out_dir.join("tile.instances.png"))
        .unwrap()
        .into_luma16();
    assert_eq!(
        (
            instances.get_pixel(10, 10).0[0],
            instances.get_pixel(35, 35).0[0]
        ),
        (2, 3)
    );
}

#[test]
fn hostile_names_and_unknown_classes_are_reported_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let labelme = |path: &str, label: &str| {
        format!(
            r#"{{"version":"5.7.0","shapes":[{{"label":"{label}","points":[[1,1],[5,1],[5,5]],"shape_type":"polygon"}}],"imagePath":"{path}","imageHeight":8,"imageWidth":8}}"#
        )
    };
    std::fs::write(
        dir.path().join("a.json"),
        labelme("../../etc/cron.jpg", "crater"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), labelme("..", "crater")).unwrap();
    std::fs::write(dir.path().join("c.json"), labelme("c.jpg", "volcano")).unwrap();
    let classes = dir.path().join("classes.txt");
    std::fs::write(&classes, "background\ncrater\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = areo(&[
        "labels",
        "rasterize",
        "--from",
        "labelme",
        dir.path().to_str().unwrap(),
        "--classes",
        classes.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("image name \"\" is not a safe name")
            || stderr.contains("is not a safe name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("c.jpg: object 1: unknown class \"volcano\""),
        "{stderr}"
    );
    let written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        written,
        ["cron.png"],
        "only inside the output folder, only the good image"
    );
}

#[test]
fn masks_trace_back_into_polygons_that_paint_the_same_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let via = r#"{"scene.png1":{"filename":"scene.png","size":1,"file_attributes":{},"regions":[
        {"shape_attributes":{"name":"circle","cx":20,"cy":18,"r":9},"region_attributes":{"class":"crater"}},
        {"shape_attributes":{"name":"polygon","all_points_x":[40,70,60,45],"all_points_y":[5,12,35,30]},"region_attributes":{"class":"dark dune"}}]}}"#;
    std::fs::write(dir.path().join("via.json"), via).unwrap();
    let masks = dir.path().join("masks");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = areo(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(vec![
        "labels".into(),
        "rasterize".into(),
        "--from".into(),
        "via".into(),
        path(&dir.path().join("via.json")),
        "--size".into(),
        "80x48".into(),
        "--out".into(),
        path(&masks),
    ]);
    let coco = dir.path().join("coco");
    run(vec![
        "labels".into(),
        "from-masks".into(),
        path(&masks),
        "--to".into(),
        "coco".into(),
        "--tolerance".into(),
        "0".into(),
        "--out".into(),
        path(&coco),
    ]);
    let again = dir.path().join("again");
    run(vec![
        "labels".into(),
        "rasterize".into(),
        "--from".into(),
        "coco".into(),
        path(&coco.join("annotations.json")),
        "--out".into(),
        path(&again),
    ]);
    let first = image::open(masks.join("scene.png")).unwrap().into_luma8();
    let second = image::open(again.join("scene.png")).unwrap().into_luma8();
    assert_eq!(first.as_raw(), second.as_raw());
    assert_eq!(
        first.pixels().filter(|p| p.0[0] == 1).count(),
        253,
        "a radius-9 circle: 253 pixel centres"
    );
}
