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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("object 4 (spider) at (45, -5)-(45, -5) lies outside the 48 x 40 image"),
        "{stdout}"
    );
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
    assert_eq!(count(7), 0, "the point above the image, dropped");
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

/// A COCO file as areo reads it: one annotation is one object (its polygons together, its
/// `bbox` its box, to the hundredth of a pixel), a box wholly outside the image is dropped and
/// named, and every box format writes exactly the corners it was given.
#[test]
fn coco_objects_convert_whole_and_exact_and_outside_boxes_are_dropped_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let coco = dir.path().join("c.json");
    std::fs::write(
        &coco,
        r#"{"images":[{"id":3,"file_name":"a.jpg","width":100,"height":50}],
        "categories":[{"id":7,"name":"crater"}],
        "annotations":[
          {"id":11,"image_id":3,"category_id":7,"iscrowd":0,"bbox":[10.5,20.25,30.7,20.9],
           "segmentation":[[12,22,40,22,40,30],[15,35,41,35,41,41]]},
          {"id":12,"image_id":3,"category_id":7,"iscrowd":0,"bbox":[0,0,10,10],"segmentation":[]},
          {"id":13,"image_id":3,"category_id":7,"iscrowd":0,"bbox":[-20,5,10,3]}]}"#,
    )
    .unwrap();
    let convert = |to: &str, out: &Path| {
        let output = areo(&[
            "labels",
            "convert",
            "--from",
            "coco",
            "--to",
            to,
            coco.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let yolo = dir.path().join("yolo");
    let report = convert("yolo", &yolo);
    assert!(
        report.contains("1 image(s), 3 object(s)"),
        "one object per annotation: {report}"
    );
    assert!(
        report.contains("dropped ")
            && report.contains("c.json: a.jpg: object 4 (crater) at (-20, 5)-(-10, 8) lies outside the 100 x 50 image"),
        "{report}"
    );
    // (10.5 + 41.2) / 2 / 100, (20.25 + 41.15) / 2 / 50, 30.7 / 100, 20.9 / 50; the second box's
    // corners stay on the image's corner.
    assert_eq!(
        std::fs::read_to_string(yolo.join("a.txt")).unwrap(),
        "7 0.258500 0.614000 0.307000 0.418000\n7 0.050000 0.100000 0.100000 0.200000\n"
    );
    assert_eq!(
        std::fs::read_to_string(yolo.join("classes.txt")).unwrap(),
        "\n\n\n\n\n\n\ncrater\n",
        "the COCO category keeps its id"
    );

    let voc = dir.path().join("voc");
    convert("voc", &voc);
    let text = std::fs::read_to_string(voc.join("a.xml")).unwrap();
    assert!(
        text.contains("<xmin>10.5</xmin>\n\t\t\t<ymin>20.25</ymin>\n\t\t\t<xmax>41.2</xmax>\n\t\t\t<ymax>41.15</ymax>"),
        "{text}"
    );
    assert!(
        text.contains("<xmin>0</xmin>\n\t\t\t<ymin>0</ymin>\n\t\t\t<xmax>10</xmax>"),
        "{text}"
    );
    let back = areo::labels::voc::read("a.xml", &text).unwrap();
    assert_eq!(back.objects.len(), 2);

    let again = dir.path().join("coco");
    convert("coco", &again);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("annotations.json")).unwrap())
            .unwrap();
    let annotations = written["annotations"].as_array().unwrap();
    assert_eq!(annotations.len(), 2);
    assert_eq!(
        (annotations[0]["id"].as_u64(), annotations[1]["id"].as_u64()),
        (Some(1), Some(2)),
        "ids count from 1"
    );
    assert_eq!(written["images"][0]["id"], 1);
    assert_eq!(annotations[0]["category_id"], 7);
    assert_eq!(
        annotations[0]["bbox"],
        serde_json::json!([10.5, 20.25, 30.7, 20.9])
    );
    assert_eq!(
        annotations[0]["segmentation"],
        serde_json::json!([[12, 22, 40, 22, 40, 30], [15, 35, 41, 35, 41, 41]])
    );
    assert_eq!(
        written["categories"],
        serde_json::json!([{"id": 7, "name": "crater", "supercategory": ""}])
    );
}

/// Boxes with negative sizes and numbers written as strings are errors naming the file and
/// the entry, never mirrored or read; when no file converts, nothing is written.
#[test]
fn bad_boxes_are_refused_by_name_and_a_batch_that_converts_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = |from: &str, file: &Path, extra: &[&str], out: &Path| {
        let mut args = vec![
            "labels",
            "convert",
            "--from",
            from,
            "--to",
            "coco",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = areo(&args);
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let cases = [
        (
            "c.json",
            r#"{"images":[{"id":1,"file_name":"a.jpg","width":"500","height":50}]}"#,
            "c.json: image 1: width: expected a number, found the string \"500\"",
        ),
        (
            "d.json",
            r#"{"images":[{"id":1,"file_name":"a.jpg","width":100,"height":50}],"categories":[{"id":1,"name":"crater"}],
               "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[50,10,-20,5]}]}"#,
            "d.json: annotation 1: bbox width is -20: a box cannot have a negative size",
        ),
    ];
    for (name, text, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let stderr = run("coco", &file, &[], &out);
        assert!(stderr.contains(expected), "{stderr}");
        let written: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(written.is_empty(), "{name}: wrote {written:?}");
    }
    let yolo = dir.path().join("y");
    std::fs::create_dir(&yolo).unwrap();
    std::fs::write(yolo.join("a.txt"), "0 0.5 0.5 -0.1 0.2\n").unwrap();
    std::fs::write(yolo.join("classes.txt"), "crater\n").unwrap();
    let out = dir.path().join("out-yolo");
    let stderr = run("yolo", &yolo, &["--size", "100x50"], &out);
    assert!(
        stderr.contains("a.txt: line 1: width is -0.1: a box cannot have a negative size"),
        "{stderr}"
    );
    assert!(!out.join("classes.txt").exists() && !out.join("annotations.json").exists());
}

/// COCO categories become the class map, ids and all, unless one gives id 0 to a real class:
/// masks paint class ids with 0 the background, so such a class would vanish from its mask.
#[test]
fn coco_categories_number_the_mask_classes_unless_a_real_class_takes_id_0() {
    let dir = tempfile::tempdir().unwrap();
    let mask_value = |categories: &str| {
        let coco = dir.path().join("c.json");
        std::fs::write(
            &coco,
            format!(
                r#"{{"images":[{{"id":1,"file_name":"m.png","width":10,"height":10}}],"categories":{categories},
                "annotations":[{{"id":1,"image_id":1,"category_id":5,"bbox":[2,2,4,4]}}]}}"#
            ),
        )
        .unwrap();
        let out = dir.path().join("masks");
        let output = areo(&[
            "labels",
            "rasterize",
            "--from",
            "coco",
            coco.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        image::open(out.join("m.png"))
            .unwrap()
            .to_luma8()
            .get_pixel(3, 3)[0]
    };
    assert_eq!(
        mask_value(r#"[{"id":0,"name":"_background_"},{"id":5,"name":"dune"}]"#),
        5,
        "the file's own id"
    );
    assert_eq!(
        mask_value(r#"[{"id":0,"name":"rock"},{"id":5,"name":"crater"}]"#),
        1,
        "rock at 0 would be background: the Mars classes number them (crater 1)"
    );
}

/// `areo eval --detections` scores COCO results against COCO truth as pycocotools does (the
/// hand-computed case is in `pipeline::detections`): both craters found exactly is AP 1.
#[test]
fn coco_results_are_scored_from_the_cli_and_a_mask_eval_still_needs_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.json");
    std::fs::write(
        &truth,
        r#"{"images":[{"id":1,"file_name":"a.png","width":100,"height":100}],
        "categories":[{"id":1,"name":"crater"}],
        "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[10,10,40,40],"area":1600,"iscrowd":0},
          {"id":2,"image_id":1,"category_id":1,"bbox":[60,60,30,30],"area":900,"iscrowd":0}]}"#,
    )
    .unwrap();
    let results = dir.path().join("results.json");
    std::fs::write(
        &results,
        r#"[{"image_id":1,"category_id":1,"bbox":[10,10,40,40],"score":0.9},
            {"image_id":1,"category_id":1,"bbox":[60,60,30,30],"score":0.4}]"#,
    )
    .unwrap();
    let (truth, results) = (truth.to_str().unwrap(), results.to_str().unwrap());
    let output = areo(&["--json", "eval", "--truth", truth, "--detections", results]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in ["AP", "AP50", "APm", "AR100"] {
        let value = report["metrics"][key].as_f64().unwrap();
        assert!((value - 1.0).abs() < 1e-12, "{key}: {value}");
    }
    // At the default 0.5 threshold the second crater (0.4) counts as missed.
    assert_eq!(report["classes"][0]["recall"], 0.5);
    assert_eq!(report["confusion"], serde_json::json!([[1, 1], [0, 0]]));
    let output = areo(&["eval", "--truth", truth]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--predicted"));
}
