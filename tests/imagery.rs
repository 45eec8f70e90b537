//! `areo tile` and `areo prep` as a user runs them.

use areo::raster::tile::{stitch, Chip};
use areo::raster::{BitDepth, Image};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn areo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_areo"))
        .args(args)
        .output()
        .expect("run areo")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a command that must fail printed to stderr.
fn refused(args: &[&str]) -> String {
    let output = areo(args);
    assert!(!output.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scene(path: &Path, width: u32, height: u32) -> Image {
    let mut image = Image::new(width, height, 1, BitDepth::Eight);
    for y in 0..height {
        for x in 0..width {
            image.set(x, y, 0, ((x * 7 + y * 13) % 251) as f32);
        }
    }
    image.save_png(path).unwrap();
    image
}

#[test]
fn tiles_carry_masks_and_ground_boxes_and_stitch_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("scene.png");
    let image = scene(&source, 100, 70);
    std::fs::write(dir.path().join("craters.csv"), "x,y,diameter\n40,20,10\n").unwrap();
    let label = "PDS_VERSION_ID = PDS3\nOBJECT = IMAGE_MAP_PROJECTION\n MAP_PROJECTION_TYPE = \"EQUIRECTANGULAR\"\n MAP_SCALE = 0.25 <METERS/PIXEL>\n LINE_PROJECTION_OFFSET = 1000.5 <PIXEL>\n SAMPLE_PROJECTION_OFFSET = -2000.5 <PIXEL>\nEND_OBJECT = IMAGE_MAP_PROJECTION\nOBJECT = IMAGE\n LINES = 70\n LINE_SAMPLES = 100\nEND_OBJECT = IMAGE\nEND\n";
    std::fs::write(dir.path().join("scene.lbl"), label).unwrap();
    let out = dir.path().join("chips");
    let text = ok(areo(&[
        "tile",
        source.to_str().unwrap(),
        "--size",
        "32",
        "--label",
        dir.path().join("scene.lbl").to_str().unwrap(),
        "--labels",
        dir.path().join("craters.csv").to_str().unwrap(),
        "--from",
        "craters",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(text.contains("100 x 70 -> 12 chip(s) of 32 px"), "{text}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let chips = manifest["chips"].as_array().unwrap();
    let origins: Vec<(u64, u64)> = chips
        .iter()
        .map(|c| {
            (
                c["pixels"][0].as_u64().unwrap(),
                c["pixels"][1].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        origins,
        [
            (0, 0),
            (32, 0),
            (64, 0),
            (68, 0),
            (0, 32),
            (32, 32),
            (64, 32),
            (68, 32),
            (0, 38),
            (32, 38),
            (64, 38),
            (68, 38)
        ]
    );
    // Chip (32, 0): west = (0.5 + 2000.5 + 32) * 0.25 = 508.25, north = (1000.5 - 0.5) * 0.25 = 250.
    assert_eq!(
        chips[1]["ground"],
        serde_json::json!([508.25, 250.0, 516.25, 242.0])
    );
    // The crater's box (35..45 x 15..25) is whole in chip (32, 0); chip (0, 0) has none of
    // it, and no other chip reaches it.
    assert_eq!(
        chips[1]["boxes"],
        serde_json::json!([{"class": "crater", "id": 1, "bbox": [3.0, 15.0, 13.0, 25.0], "visible": 1.0}])
    );
    let boxed: Vec<usize> = (0..chips.len())
        .filter(|&i| !chips[i]["boxes"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(boxed, [1]);
    let error = refused(&[
        "tile",
        source.to_str().unwrap(),
        "--size",
        "32",
        "--labels",
        dir.path().join("craters.csv").to_str().unwrap(),
        "--from",
        "craters",
        "--min-visible",
        "1.5",
        "--out",
        dir.path().join("no").to_str().unwrap(),
    ]);
    assert!(
        error.contains("--min-visible 1.5: expected a fraction between 0 and 1"),
        "{error}"
    );
    // The crater (radius 5 at 40,20) lies in chip (32, 0) only: 81 pixel centres.
    let mask = Image::open(&out.join("scene_32_0.mask.png")).unwrap();
    assert_eq!(mask.data.iter().filter(|v| **v == 1.0).count(), 81);
    assert_eq!(mask.get(8, 20, 0), 1.0);
    assert_eq!(chips[0]["objects"], 0);

    let pieces: Vec<Chip> = chips
        .iter()
        .map(|c| Chip {
            x: c["pixels"][0].as_u64().unwrap() as u32,
            y: c["pixels"][1].as_u64().unwrap() as u32,
            image: Image::open(&out.join(c["file"].as_str().unwrap())).unwrap(),
        })
        .collect();
    assert_eq!(
        stitch(&pieces, 100, 70, 1, BitDepth::Eight),
        image,
        "tile -> stitch is identical"
    );

    // The same through `areo stitch`: the chips, then the masks, which put the crater's 81
    // pixels back where the whole-image mask has them.
    let stitched = dir.path().join("stitched.png");
    let text = ok(areo(&[
        "stitch",
        out.to_str().unwrap(),
        "--out",
        stitched.to_str().unwrap(),
    ]));
    assert!(text.contains("(100 x 70)"), "{text}");
    assert_eq!(Image::open(&stitched).unwrap(), image);
    ok(areo(&[
        "stitch",
        out.to_str().unwrap(),
        "--masks",
        "--out",
        stitched.to_str().unwrap(),
    ]));
    let whole_mask = Image::open(&stitched).unwrap();
    assert_eq!(whole_mask.data.iter().filter(|v| **v == 1.0).count(), 81);
    assert_eq!(whole_mask.get(40, 20, 0), 1.0);
    assert_eq!(whole_mask.get(40 + 8, 20, 0), 0.0);

    // Per-chip predictions come from another folder; a missing one is named, and a manifest
    // naming a file outside its folder is refused.
    let predictions = dir.path().join("predictions");
    std::fs::create_dir(&predictions).unwrap();
    let error = refused(&[
        "stitch",
        out.to_str().unwrap(),
        "--predictions",
        predictions.to_str().unwrap(),
        "--out",
        stitched.to_str().unwrap(),
    ]);
    assert!(error.contains("predictions/scene_0_0.png"), "{error}");
    let manifest_path = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        text.replace("\"scene_0_0.png\"", "\"../scene.png\""),
    )
    .unwrap();
    let error = refused(&[
        "stitch",
        out.to_str().unwrap(),
        "--out",
        stitched.to_str().unwrap(),
    ]);
    assert!(
        error.contains("\"../scene.png\" is not a plain file name"),
        "{error}"
    );
}

#[test]
fn a_jpeg2000_product_tiles_into_the_same_16_bit_chips_as_its_png() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/jp2");
    let mut chips = Vec::new();
    for source in ["nanedi-16bit.jp2", "nanedi-16bit.png"] {
        let out = dir.path().join(source);
        ok(areo(&[
            "tile",
            data.join(source).to_str().unwrap(),
            "--size",
            "64",
            "--stride",
            "48",
            "--out",
            out.to_str().unwrap(),
        ]));
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
                .unwrap();
        let listed = manifest["chips"].as_array().unwrap().clone();
        assert_eq!(listed.len(), 12, "4 x 3 chips of 64 px every 48 px");
        chips.push(
            listed
                .iter()
                .map(|c| Image::open(&out.join(c["file"].as_str().unwrap())).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(chips[0], chips[1]);
    assert_eq!(chips[0][0].depth, BitDepth::Sixteen);
    assert!(chips[0].iter().any(|c| c.data.iter().any(|v| *v > 255.0)));
}

/// A map-projected HiRISE-like IMG (label attached, 16-bit DNs with a scaling to I/F and a
/// null value): tiled by its own label's projection, DNs kept, the scaling recorded; and
/// `areo prep` reads it too.
#[test]
fn a_pds_img_product_tiles_with_its_own_projection_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (width, height) = (40u32, 24u32);
    let dns: Vec<u16> = (0..width * height)
        .map(|i| {
            if i % width < 4 {
                0
            } else {
                (i % 1000) as u16 + 1
            }
        })
        .collect();
    let mut bytes = format!(
        "PDS_VERSION_ID = PDS3\r\nRECORD_TYPE = FIXED_LENGTH\r\nRECORD_BYTES = {}\r\n\
         ^IMAGE = 9\r\nOBJECT = IMAGE_MAP_PROJECTION\r\n MAP_PROJECTION_TYPE = \"EQUIRECTANGULAR\"\r\n\
         MAP_SCALE = 0.25 <METERS/PIXEL>\r\n LINE_PROJECTION_OFFSET = 1000.5 <PIXEL>\r\n\
         SAMPLE_PROJECTION_OFFSET = -2000.5 <PIXEL>\r\nEND_OBJECT = IMAGE_MAP_PROJECTION\r\n\
         OBJECT = IMAGE\r\n LINES = {height}\r\n LINE_SAMPLES = {width}\r\n\
         SAMPLE_TYPE = MSB_UNSIGNED_INTEGER\r\n SAMPLE_BITS = 16\r\n\
         SCALING_FACTOR = 1.07543902665525e-04\r\n OFFSET = 0.081203337858079\r\n\
         CORE_NULL = 0\r\nEND_OBJECT = IMAGE\r\nEND\r\n",
        width * 2
    )
    .into_bytes();
    assert!(
        bytes.len() <= 8 * width as usize * 2,
        "the label fits in 8 records"
    );
    bytes.resize(8 * width as usize * 2, b' ');
    bytes.extend(dns.iter().flat_map(|v| v.to_be_bytes()));
    let product = dir.path().join("ESP_000001_0000_RED.IMG");
    std::fs::write(&product, &bytes).unwrap();

    let out = dir.path().join("chips");
    let text = ok(areo(&[
        "tile",
        product.to_str().unwrap(),
        "--size",
        "16",
        "--edge",
        "drop",
        "--skip-no-data",
        "0:0.2",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(text.contains("40 x 24 -> 1 chip(s) of 16 px"), "{text}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["bit_depth"], 16);
    assert_eq!(manifest["projection"], "EQUIRECTANGULAR");
    assert_eq!(
        manifest["values"],
        serde_json::json!({"scale": 1.07543902665525e-04, "offset": 0.081203337858079, "no_data": 0.0})
    );
    // Chip (0, 0) is a quarter null columns, over the 0.2 allowed; chip (16, 0) is kept:
    // west = (0.5 + 2000.5 + 16) * 0.25 = 504.25.
    let chips = manifest["chips"].as_array().unwrap();
    assert_eq!(chips[0]["pixels"], serde_json::json!([16, 0, 16, 16]));
    assert_eq!(
        chips[0]["ground"],
        serde_json::json!([504.25, 250.0, 508.25, 246.0])
    );
    let chip = Image::open(&out.join(chips[0]["file"].as_str().unwrap())).unwrap();
    assert_eq!(chip.depth, BitDepth::Sixteen);
    assert_eq!(chip.get(3, 1, 0), (dns[(width + 19) as usize]) as f32);

    let cropped = dir.path().join("crop.png");
    ok(areo(&[
        "prep",
        "crop",
        product.to_str().unwrap(),
        "--auto",
        "--out",
        cropped.to_str().unwrap(),
    ]));
    let cropped = Image::open(&cropped).unwrap();
    assert_eq!(
        (cropped.width, cropped.height),
        (36, 24),
        "the null columns trimmed"
    );
    assert_eq!(cropped.get(0, 0, 0), dns[4] as f32);

    // A label that promises more lines than the file holds.
    let short = dir.path().join("short.img");
    std::fs::write(&short, &bytes[..bytes.len() - 10]).unwrap();
    let error = refused(&[
        "tile",
        short.to_str().unwrap(),
        "--out",
        dir.path().join("no").to_str().unwrap(),
    ]);
    assert!(
        error.contains("short.img: the image needs 1920 bytes"),
        "{error}"
    );
}

/// Annotations follow `prep crop`, `translate`, `scale`, `rot90` and `flip`: written in their
/// format next to the output, moved, clipped at the new edges, dropped when they leave,
/// scaled, turned, mirrored.
#[test]
fn labels_follow_the_image_through_crop_translate_scale_turn_and_flip() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("scene.png");
    scene(&source, 100, 70);
    let labelme = serde_json::json!({
        "version": "5.0.1", "flags": {}, "imagePath": "scene.png", "imageData": null,
        "imageWidth": 100, "imageHeight": 70,
        "shapes": [
            {"label": "crater", "shape_type": "rectangle", "points": [[20, 20], [40, 30]],
             "group_id": null, "flags": {}},
            {"label": "crater", "shape_type": "polygon", "points": [[70, 50], [90, 50], [80, 66]],
             "group_id": null, "flags": {}}
        ]
    });
    let labels = dir.path().join("scene.json");
    std::fs::write(&labels, labelme.to_string()).unwrap();
    let run = |op: &[&str], out: &str| -> (Value, Value) {
        let out_path = dir.path().join(out);
        let mut args = vec!["--json", "prep"];
        args.extend_from_slice(op);
        let labels_out = dir.path().join("labels");
        args.extend([
            source.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--from",
            "labelme",
            "--labels-out",
            labels_out.to_str().unwrap(),
        ]);
        let report: Value = serde_json::from_str(&ok(areo(&args))).unwrap();
        let stem = Path::new(out).file_stem().unwrap().to_str().unwrap();
        let written: Value = serde_json::from_str(
            &std::fs::read_to_string(labels_out.join(format!("{stem}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(written["imagePath"], out);
        (report, written)
    };
    let points = |written: &Value, i: usize| written["shapes"][i]["points"].clone();

    // The window 10,10 40x50 keeps the box (moved by -10) and loses the triangle.
    let (report, written) = run(&["crop", "--box", "10,10,40,50"], "crop.png");
    assert_eq!(report["labels"]["objects"], 1);
    assert_eq!(report["labels"]["dropped"], 1);
    assert_eq!(written["imageWidth"], 40);
    assert_eq!(
        points(&written, 0),
        serde_json::json!([[10.0, 10.0], [30.0, 20.0]])
    );

    // 20 px right: the box moves, the triangle's right half leaves the canvas and is clipped
    // to its far edge (x = the width, as labelling tools allow).
    let (report, written) = run(&["translate", "--dx", "20", "--dy", "0"], "moved.png");
    assert_eq!(report["labels"]["objects"], 2);
    assert_eq!(report["labels"]["clipped"], 1);
    assert_eq!(
        points(&written, 0),
        serde_json::json!([[40.0, 20.0], [60.0, 30.0]])
    );
    let xs: Vec<f64> = points(&written, 1)
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_f64().unwrap())
        .collect();
    assert!(
        xs.iter().all(|x| *x <= 100.0) && xs.contains(&100.0),
        "{xs:?}"
    );

    // Half size: every coordinate halves.
    let (_, written) = run(&["scale", "--factor", "0.5"], "half.png");
    assert_eq!(
        (&written["imageWidth"], &written["imageHeight"]),
        (&serde_json::json!(50), &serde_json::json!(35))
    );
    assert_eq!(
        points(&written, 0),
        serde_json::json!([[10.0, 10.0], [20.0, 15.0]])
    );
    assert_eq!(
        points(&written, 1),
        serde_json::json!([[35.0, 25.0], [45.0, 25.0], [40.0, 33.0]])
    );

    // A clockwise quarter turn of the 100 x 70 image sends the point (x, y) to (70 - y, x); a
    // mirror sends x to 100 - x (pixel i to pixel 99 - i).
    let (_, written) = run(&["rot90", "--quarters", "1"], "turned.png");
    assert_eq!(written["imageWidth"], 70);
    assert_eq!(
        points(&written, 0),
        serde_json::json!([[40.0, 20.0], [50.0, 40.0]])
    );
    let (_, written) = run(&["flip", "--horizontal"], "mirrored.png");
    assert_eq!(
        points(&written, 0),
        serde_json::json!([[60.0, 20.0], [80.0, 30.0]])
    );

    // Labels without a place to go are refused before anything is written.
    let error = refused(&[
        "prep",
        "crop",
        source.to_str().unwrap(),
        "--box",
        "0,0,10,10",
        "--out",
        dir.path().join("x.png").to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--from",
        "labelme",
    ]);
    assert!(error.contains("--labels-out"), "{error}");
}

/// The crater list areo wrote: `(x, y, diameter)` per line.
fn crater_list(path: &Path) -> Vec<[f64; 3]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let v: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
            [v[0], v[1], v[2]]
        })
        .collect()
}

/// `prep rotate` by any angle turns crater labels onto the pixels they marked, on the same
/// canvas and on a grown one; `prep align` brings a moved image's labels back onto the
/// reference, by shift alone and with rotation.
#[test]
fn labels_follow_prep_rotate_and_align_onto_the_pixels_they_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // Two bright discs on a dark 100 x 70 image, labelled as craters (positions on the image:
    // pixel (x, y) has its centre at (x + 0.5, y + 0.5)).
    let mut image = Image::new(100, 70, 1, BitDepth::Eight);
    let discs = [(30.0, 20.0, 5.0), (70.0, 50.0, 4.0)];
    let centre = |i: u32| i as f64 + 0.5;
    for y in 0..70 {
        for x in 0..100 {
            let lit = discs
                .iter()
                .any(|(cx, cy, r)| (centre(x) - cx).hypot(centre(y) - cy) <= *r);
            image.set(x, y, 0, if lit { 240.0 } else { 20.0 });
        }
    }
    image.save_png(Path::new(&path("discs.png"))).unwrap();
    std::fs::write(path("discs.csv"), "x,y,diameter\n30,20,10\n70,50,8\n").unwrap();
    let follow = |op: &[&str], input: &str, labels: &str, out: &str| -> Value {
        let mut args = vec!["--json", "prep"];
        args.extend_from_slice(op);
        let (input, out, labels, labels_out) =
            (path(input), path(out), path(labels), path("labels"));
        args.extend([
            input.as_str(),
            "--out",
            out.as_str(),
            "--labels",
            labels.as_str(),
        ]);
        args.extend(["--from", "craters", "--labels-out", labels_out.as_str()]);
        serde_json::from_str(&ok(areo(&args))).unwrap()
    };
    // The lit pixels' centroid near each written crater is where the crater now is.
    let check_discs = |image: &str, labels: &str| {
        let turned = Image::open(Path::new(&path(image))).unwrap();
        let craters = crater_list(&dir.path().join("labels").join(labels));
        assert_eq!(craters.len(), 2, "{craters:?}");
        for ([x, y, d], (_, _, r)) in craters.iter().zip(&discs) {
            assert_eq!(*d, 2.0 * r, "a turn keeps the size");
            let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
            for py in 0..turned.height {
                for px in 0..turned.width {
                    let v = turned.get(px, py, 0) as f64 - 20.0;
                    let (px, py) = (centre(px), centre(py));
                    if (px - x).hypot(py - y) <= r + 3.0 && v > 0.0 {
                        (sum, sx, sy) = (sum + v, sx + v * px, sy + v * py);
                    }
                }
            }
            let (cx, cy) = (sx / sum, sy / sum);
            assert!(
                (cx - x).hypot(cy - y) < 0.3,
                "{image}: label at ({x:.2}, {y:.2}), disc at ({cx:.2}, {cy:.2})"
            );
        }
    };
    let bilinear = ["--sampling", "bilinear"];
    let rotate = |degrees: &str, expand: bool, out: &str| {
        let mut op = vec!["rotate", "--degrees", degrees];
        op.extend(bilinear);
        if expand {
            op.push("--expand");
        }
        follow(&op, "discs.png", "discs.csv", out)
    };
    // Labels that do not parse are refused, naming the file, and no image is written.
    std::fs::write(path("broken.json"), "{\"shapes\": [").unwrap();
    let error = refused(&[
        "prep",
        "rotate",
        &path("discs.png"),
        "--degrees",
        "30",
        "--out",
        &path("never.png"),
        "--labels",
        &path("broken.json"),
        "--from",
        "labelme",
        "--labels-out",
        &path("labels"),
    ]);
    assert!(
        error.contains("broken.json: malformed JSON at line 1"),
        "{error}"
    );
    assert!(!dir.path().join("never.png").exists());

    let report = rotate("30", false, "turned.png");
    assert_eq!(report["labels"]["objects"], 2, "{report}");
    check_discs("turned.png", "turned.csv");
    rotate("-130", true, "grown.png");
    check_discs("grown.png", "grown.csv");

    // A real Mars image moved by (7, -4), then aligned back: its labels return exactly.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/nanedi-256.png");
    std::fs::copy(&sample, path("mars.png")).unwrap();
    let original = [
        [100.0, 100.0, 12.0],
        [150.0, 90.0, 8.0],
        [128.0, 160.0, 20.0],
    ];
    let list = |craters: &[[f64; 3]]| {
        craters
            .iter()
            .fold(String::from("x,y,diameter\n"), |text, [x, y, d]| {
                text + &format!("{x},{y},{d}\n")
            })
    };
    std::fs::write(path("mars.csv"), list(&original)).unwrap();
    let moved = ["translate", "--dx", "7", "--dy", "-4"];
    follow(&moved, "mars.png", "mars.csv", "moved.png");
    std::fs::copy(dir.path().join("labels/moved.csv"), path("moved.csv")).unwrap();
    let report = follow(
        &["align", &path("mars.png")],
        "moved.png",
        "moved.csv",
        "back.png",
    );
    assert_eq!(report["labels"]["objects"], 3, "{report}");
    assert_eq!(crater_list(&dir.path().join("labels/back.csv")), original);

    // Turned 11 degrees, then aligned back with --rotation: the labels land within a pixel of
    // where they started (the registration's own error), their sizes within 2 %.
    follow(
        &["rotate", "--degrees", "11"],
        "mars.png",
        "mars.csv",
        "turned-mars.png",
    );
    let turned = crater_list(&dir.path().join("labels/turned-mars.csv"));
    assert!(
        (turned[0][0] - 100.0).abs() > 2.0,
        "the turn moved them: {turned:?}"
    );
    std::fs::copy(
        dir.path().join("labels/turned-mars.csv"),
        path("turned-mars.csv"),
    )
    .unwrap();
    follow(
        &["align", &path("mars.png"), "--rotation"],
        "turned-mars.png",
        "turned-mars.csv",
        "unturned.png",
    );
    let back = crater_list(&dir.path().join("labels/unturned.csv"));
    for ([x, y, d], [ox, oy, od]) in back.iter().zip(&original) {
        assert!(
            (x - ox).hypot(y - oy) < 1.0,
            "({x:.2}, {y:.2}) for ({ox}, {oy})"
        );
        assert!((d / od - 1.0).abs() < 0.02, "{d} for {od}");
    }
}

#[test]
fn prep_commands_do_what_they_say_and_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("s.png");
    let image = scene(&source, 20, 10);
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(areo(&[
        "prep",
        "crop",
        &path("s.png"),
        "--box",
        "2,3,4,5",
        "--out",
        &path("crop.png"),
    ]));
    assert_eq!(
        Image::open(Path::new(&path("crop.png"))).unwrap(),
        image.crop(2, 3, 4, 5).unwrap()
    );
    ok(areo(&[
        "prep",
        "convert",
        &path("s.png"),
        "--depth",
        "16",
        "--out",
        &path("wide.png"),
    ]));
    ok(areo(&[
        "prep",
        "convert",
        &path("wide.png"),
        "--depth",
        "8",
        "--out",
        &path("back.png"),
    ]));
    assert_eq!(
        Image::open(Path::new(&path("back.png"))).unwrap(),
        image,
        "8 -> 16 -> 8"
    );
    ok(areo(&[
        "prep",
        "rot90",
        &path("s.png"),
        "--quarters",
        "3",
        "--out",
        &path("r.png"),
    ]));
    assert_eq!(
        Image::open(Path::new(&path("r.png"))).unwrap(),
        image.rot90(3)
    );

    ok(areo(&[
        "prep",
        "scale",
        &path("s.png"),
        "--factor",
        "0.5",
        "--out",
        &path("half.png"),
    ]));
    let half = Image::open(Path::new(&path("half.png"))).unwrap();
    assert_eq!((half.width, half.height), (10, 5));
    let block = [
        image.get(2, 2, 0),
        image.get(3, 2, 0),
        image.get(2, 3, 0),
        image.get(3, 3, 0),
    ];
    assert_eq!(
        half.get(1, 1, 0),
        (block.iter().sum::<f32>() / 4.0).round(),
        "area averaging"
    );

    let mut framed = Image::new(12, 9, 1, BitDepth::Eight);
    framed.set(3, 2, 0, 5.0);
    framed.set(7, 6, 0, 6.0);
    framed.save_png(Path::new(&path("framed.png"))).unwrap();
    ok(areo(&[
        "prep",
        "crop",
        &path("framed.png"),
        "--auto",
        "--out",
        &path("trim.png"),
    ]));
    let trimmed = Image::open(Path::new(&path("trim.png"))).unwrap();
    assert_eq!(
        (
            trimmed.width,
            trimmed.height,
            trimmed.get(0, 0, 0),
            trimmed.get(4, 4, 0)
        ),
        (5, 5, 5.0, 6.0)
    );

    let empty = areo(&[
        "prep",
        "crop",
        &path("s.png"),
        "--box",
        "0,0,0,4",
        "--out",
        &path("e.png"),
    ]);
    assert!(String::from_utf8_lossy(&empty.stderr).contains("crop of 0 x 4 pixels is empty"));
    let bytes = std::fs::read(&source).unwrap();
    std::fs::write(dir.path().join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    let truncated = areo(&["tile", &path("cut.png"), "--out", &path("never")]);
    assert_eq!(truncated.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&truncated.stderr).contains("cut.png"),
        "{}",
        String::from_utf8_lossy(&truncated.stderr)
    );
    assert!(!dir.path().join("never").join("manifest.json").exists());
}

/// A real Mars scene shipped in data/ (see data/README.md).
fn mars() -> Image {
    Image::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/nanedi-256.png")).unwrap()
}

#[test]
fn shifts_of_a_real_mars_image_are_recovered() {
    let reference = mars();
    for (dx, dy) in [(7i64, -4i64), (-12, 9), (0, 0)] {
        let moving = reference.translate(dx, dy, 0.0);
        let shift = areo::raster::align::phase_correlate(&reference, &moving).unwrap();
        assert!(
            (shift.dx - dx as f64).abs() <= 0.5 && (shift.dy - dy as f64).abs() <= 0.5,
            "({dx},{dy}): {shift:?}"
        );
        assert!(shift.quality > 0.2, "{shift:?}");
    }
    // Half a pixel to the right: each pixel the mean of itself and its left neighbour.
    let mut half = reference.clone();
    for y in 0..reference.height {
        for x in 1..reference.width {
            half.set(
                x,
                y,
                0,
                (reference.get(x, y, 0) + reference.get(x - 1, y, 0)) / 2.0,
            );
        }
    }
    let shift = areo::raster::align::phase_correlate(&reference, &half).unwrap();
    assert!(
        (shift.dx - 0.5).abs() <= 0.25 && shift.dy.abs() <= 0.25,
        "{shift:?}"
    );
}

#[test]
fn prep_rotate_and_prep_align_rotation_round_trip_a_real_mars_image() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/samples/nanedi-256.png");
    let expanded = dir.path().join("expanded.png");
    let text = ok(areo(&[
        "prep",
        "rotate",
        sample.to_str().unwrap(),
        "--degrees",
        "-30",
        "--expand",
        "--out",
        expanded.to_str().unwrap(),
    ]));
    // 256 (cos 30 + sin 30) = 349.7 -> 350 px square.
    assert!(text.contains("(350 x 350)"), "{text}");
    let expanded = Image::open(&expanded).unwrap();
    assert_eq!(expanded.get(0, 0, 0), 0.0, "corners take the fill");

    let turned = dir.path().join("turned.png");
    ok(areo(&[
        "prep",
        "rotate",
        sample.to_str().unwrap(),
        "--degrees",
        "11",
        "--out",
        turned.to_str().unwrap(),
    ]));
    let aligned = dir.path().join("aligned.png");
    let found: Value = serde_json::from_str(&ok(areo(&[
        "--json",
        "prep",
        "align",
        sample.to_str().unwrap(),
        turned.to_str().unwrap(),
        "--rotation",
        "--out",
        aligned.to_str().unwrap(),
    ])))
    .unwrap();
    let rotation = found["rotation"].as_f64().unwrap();
    let scale = found["scale"].as_f64().unwrap();
    assert!((rotation - 11.0).abs() < 0.5, "{found}");
    assert!((scale - 1.0).abs() < 0.01, "{found}");
    let (reference, aligned) = (mars(), Image::open(&aligned).unwrap());
    let centre = |image: &Image| image.crop(78, 78, 100, 100).unwrap();
    let error = centre(&reference)
        .data
        .iter()
        .zip(&centre(&aligned).data)
        .map(|(a, b)| (a - b).abs() as f64)
        .sum::<f64>()
        / 10_000.0;
    assert!(
        error < 4.0,
        "turned back, the centre matches: mean error {error}"
    );
}
