//! Training on real Mars craters: a tiny U-Net learns, a cancelled or killed run resumes to
//! the weights an uninterrupted run reaches, inference covers a whole image, and bad inputs
//! are refused with errors that name them.

use areo::nn::checkpoint;
use areo::nn::config::{Flips, KeptWeights, ModelConfig, RunConfig};
use areo::nn::infer::{InferOptions, Predictor};
use areo::nn::run::{read_metrics, RunRecord, TrainError};
use areo::nn::train::{train, TrainRequest};
use areo::pipeline::dataset::{DatasetRecord, DatasetRequest, Split, SplitRule};
use areo::pipeline::labels::Format;
use areo::pipeline::tile::TileRequest;
use areo::pipeline::train::{InferJob, TrainJob};
use areo::progress::{Progress, Silent};
use areo::raster::rows::ImageRows;
use areo::raster::tile::{Edge, TileSpec};
use areo::raster::Image;
use areo::workspace::Workspace;
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[path = "support/http.rs"]
mod http;

const REPLY: &str = include_str!("../data/ode/ESP_013951_1955_RED.json");

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/craters/nanedi-512x320.png"
);
const CRATERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/craters/nanedi-512x320.csv"
);

fn config(epochs: usize, checkpoint_every: usize) -> RunConfig {
    RunConfig::parse(
        "test.toml",
        &format!(
            r#"
name = "test-tiny"
[model]
encoder = "resnet"
blocks = [1, 1, 1, 1]
widths = [8, 8, 16, 16, 32]
decoder = [16, 16, 8, 8, 8]
in_channels = 1
classes = 2
[train]
tile = 64
batch = 4
epochs = {epochs}
lr = 1e-2
loss = "cross-entropy-dice"
seed = 3
checkpoint_every = {checkpoint_every}
"#
        ),
    )
    .unwrap()
}

/// A tiny SSD on the same backbone: heads at strides 8, 16 and 32 of the 64 px chips, anchors
/// 8 to 48 px for the sample's 8 to 70 px craters.
fn ssd_config(epochs: usize) -> RunConfig {
    RunConfig::parse(
        "ssd.toml",
        &format!(
            r#"
name = "test-ssd"
[model]
kind = "ssd"
encoder = "resnet"
blocks = [1, 1, 1, 1]
widths = [8, 8, 16, 16, 32]
in_channels = 1
classes = 2
grids = [8, 4, 2]
zooms = [1.0, 1.5]
head = 16
[train]
tile = 64
batch = 4
epochs = {epochs}
lr = 1e-2
seed = 3
"#
        ),
    )
    .unwrap()
}

/// Tiles the crater sample into 64 px chips with crater masks under `root/tiles` and makes
/// dataset `craters` in `root/datasets`: the right quarter (x >= 384) validates.
fn dataset(root: &Path) -> DatasetRecord {
    let tiles = root.join("tiles");
    TileRequest {
        input: SAMPLE.into(),
        spec: TileSpec {
            size: 64,
            stride: 64,
            edge: Edge::Drop,
            skip_no_data: None,
        },
        label: None,
        labels: Some((CRATERS.into(), Format::Craters)),
        classes: None,
        circle_scale: None,
        min_visible: None,
        out: tiles.clone(),
    }
    .run(&Silent)
    .unwrap();
    std::fs::create_dir_all(root.join("datasets")).unwrap();
    DatasetRequest {
        name: "craters".into(),
        tile_sets: vec![tiles],
        rule: SplitRule {
            validation_box: Some([384, 0, 128, 320]),
            ..SplitRule::default()
        },
        replace: false,
    }
    .run(&root.join("datasets"))
    .unwrap()
}

fn request(root: &Path, record: &DatasetRecord, config: RunConfig, run: &str) -> TrainRequest {
    let boxes = record.boxes().unwrap();
    TrainRequest {
        config,
        name: run.into(),
        dataset: record.name.clone(),
        train: record.samples(Split::Train, &boxes).unwrap(),
        validation: record.samples(Split::Validation, &boxes).unwrap(),
        run_dir: root.join("runs").join(run),
        device: Device::Cpu,
        device_name: "cpu".into(),
        resume: true,
        encoder_weights: None,
        class_names: Default::default(),
    }
}

/// Inference of `run` over the sample into `out` on the CPU, in chips overlapping by 16 px
/// in batches of 4, writing what a run writes by default.
fn infer_sample(run: &str, out: &Path) -> InferJob {
    InferJob {
        run: run.into(),
        image: SAMPLE.into(),
        out: out.to_path_buf(),
        device: "cpu".into(),
        tile: None,
        overlap: 16,
        batch: 4,
        probabilities: false,
        flips: false,
        weights: None,
        boxes_as: Default::default(),
    }
}

/// Every tensor of a checkpoint file, by name, as raw f32 values.
fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let (tensors, _) = checkpoint::load(path, &Device::Cpu).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = tensors
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_tiny_unet_learns_real_craters_and_predicts_a_whole_image() {
    let dir = tempfile::tempdir().unwrap();
    let record = dataset(dir.path());
    assert_eq!(
        record.count(Split::Train),
        30,
        "6 columns x 5 rows left of x = 384"
    );
    assert_eq!(record.count(Split::Validation), 10);
    let crater_pixels = record.class_pixels[&Split::Train][&1];
    assert!(
        crater_pixels > 1000,
        "the sample's craters are in the masks: {crater_pixels}"
    );

    let run = train(request(dir.path(), &record, config(8, 0), "learn"), &Silent).unwrap();
    assert_eq!(run.epochs_done, 8);
    assert_eq!(
        run.step,
        8 * 7,
        "30 chips in batches of 4: 7 full batches per epoch"
    );
    let metrics = read_metrics(&dir.path().join("runs/learn")).unwrap();
    assert_eq!(metrics.len(), 8);
    let lines = std::fs::read_to_string(dir.path().join("runs/learn/metrics.jsonl")).unwrap();
    assert!(
        metrics.iter().all(|m| m.gpu_memory.is_none()) && !lines.contains("gpu_memory"),
        "a CPU run reads no GPU memory and writes the lines older areo reads"
    );
    let (first, last) = (&metrics[0], &metrics[7]);
    assert!(
        last.train_loss < 0.75 * first.train_loss,
        "training loss fell: {} -> {}",
        first.train_loss,
        last.train_loss
    );
    let best_crater_iou = metrics.iter().map(|m| m.iou[1]).fold(0.0, f64::max);
    assert!(
        best_crater_iou > first.iou[1] && best_crater_iou > 0.15,
        "validation crater IoU rose: {} -> best {best_crater_iou}",
        first.iou[1]
    );

    let out = dir.path().join("prediction");
    let summary = InferJob {
        probabilities: true,
        ..infer_sample("learn", &out)
    }
    .run(dir.path(), &Silent)
    .unwrap();
    assert_eq!(
        summary.weights,
        KeptWeights::Last,
        "the configuration's default"
    );
    assert_eq!((summary.width, summary.height), (512, 320));
    assert_eq!(summary.class_pixels.iter().sum::<u64>(), 512 * 320);
    assert!(summary.class_pixels[1] > 500, "{:?}", summary.class_pixels);
    let mask = image::open(summary.mask.as_ref().unwrap())
        .unwrap()
        .into_luma8();
    assert_eq!(mask.dimensions(), (512, 320));
    let crater_pixels = mask.pixels().filter(|p| p.0[0] == 1).count() as u64;
    assert_eq!(crater_pixels, summary.class_pixels[1]);
    let overlay = image::open(summary.overlay.as_ref().unwrap()).unwrap();
    assert_eq!(overlay.color(), image::ColorType::Rgb8);
    let probability = image::open(&summary.probabilities[1])
        .unwrap()
        .into_luma16();
    // Where the mask says crater, crater is the more likely class.
    for (m, p) in mask.pixels().zip(probability.pixels()).step_by(97) {
        assert_eq!(m.0[0] == 1, p.0[0] > 32768, "{} {}", m.0[0], p.0[0]);
    }

    let run_dir = dir.path().join("runs").join("learn");
    let chip = Image::open(Path::new(SAMPLE))
        .unwrap()
        .crop(0, 0, 64, 64)
        .unwrap();
    kept_weights_are_the_last_epochs_and_the_best_epochs(&run_dir, &run, &chip);

    // Averaging over flips makes a chip's prediction mirror-symmetric: the mirrored chip gets
    // the mirrored probabilities, which the network alone does not give.
    let mut predictor = Predictor::load(&run_dir, None, Device::Cpu).unwrap();
    let largest_asymmetry = |predictor: &Predictor, upside_down: bool, flips: bool| {
        let options = InferOptions {
            flips,
            ..InferOptions::default()
        };
        let straight = predictor.predict(&chip, &options, &Silent).unwrap();
        let mirror = if upside_down {
            chip.flip_vertical()
        } else {
            chip.flip_horizontal()
        };
        let mirrored = predictor.predict(&mirror, &options, &Silent).unwrap();
        let mut largest = 0f32;
        for (i, a) in straight.probabilities.iter().enumerate() {
            let (x, y, plane) = (i % 64, i / 64 % 64, i / 4096);
            let (x, y) = if upside_down {
                (x, 63 - y)
            } else {
                (63 - x, y)
            };
            let b = mirrored.probabilities[(plane * 64 + y) * 64 + x];
            largest = largest.max((a - b).abs());
        }
        largest
    };
    for upside_down in [false, true] {
        let averaged = largest_asymmetry(&predictor, upside_down, true);
        assert!(averaged < 1e-5, "{averaged}");
        let alone = largest_asymmetry(&predictor, upside_down, false);
        assert!(alone > 1e-3, "{alone}");
    }
    // A run that trained with top-to-bottom mirroring only is averaged over that one alone
    // (left to right, the network never learnt to see through it).
    predictor.config.train.augment.flips = Flips::Vertical;
    let upside_down = largest_asymmetry(&predictor, true, true);
    assert!(upside_down < 1e-5, "{upside_down}");
    let left_right = largest_asymmetry(&predictor, false, true);
    assert!(left_right > 1e-3, "{left_right}");

    // Streamed: rows come out top to bottom, each once, in strips no taller than a chip,
    // and how chips are batched (which decides where strips end) changes nothing.
    let image = Image::open(Path::new(SAMPLE)).unwrap();
    let streamed = |batch: usize| {
        let options = InferOptions {
            tile: Some(64),
            overlap: 16,
            batch,
            flips: false,
        };
        let (mut next, mut tallest, mut strips) = (0, 0, 0);
        let mut mask = Vec::new();
        let mut crater = Vec::new();
        let mut rows = ImageRows::new(&image);
        predictor
            .predict_rows(&mut rows, &options, &Silent, |done| {
                assert_eq!(done.y, next, "strips in order, none skipped");
                assert_eq!(
                    done.image.len(),
                    done.mask.len(),
                    "the source's rows with them"
                );
                next += done.rows;
                tallest = tallest.max(done.rows);
                strips += 1;
                mask.extend_from_slice(done.mask);
                for r in 0..done.rows as usize {
                    crater.extend_from_slice(done.probabilities(r, 1));
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(next, 320);
        assert!(
            tallest <= 64 && strips >= 5,
            "{strips} strips, tallest {tallest}"
        );
        (mask, crater)
    };
    let (one, one_crater) = streamed(1);
    let (seven, seven_crater) = streamed(7);
    assert_eq!(one, seven);
    let largest = one_crater
        .iter()
        .zip(&seven_crater)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(largest < 1e-5, "{largest}");
}

#[test]
fn a_tiny_ssd_learns_real_crater_boxes_and_finds_them_in_a_whole_image() {
    let dir = tempfile::tempdir().unwrap();
    let record = dataset(dir.path());
    let boxes: usize = record
        .samples(Split::Train, &record.boxes().unwrap())
        .unwrap()
        .iter()
        .map(|s| s.boxes.len())
        .sum();
    assert!(boxes >= 30, "the chips' crater boxes: {boxes}");
    let mut req = request(dir.path(), &record, ssd_config(60), "ssd");
    req.class_names = record.boxes().unwrap().class_names;
    assert_eq!(req.class_names.get(&1).map(String::as_str), Some("crater"));
    let run = train(req, &Silent).unwrap();
    assert_eq!(run.step, 60 * 7);
    let metrics = read_metrics(&dir.path().join("runs/ssd")).unwrap();
    let (first, last) = (&metrics[0], &metrics[59]);
    assert!(
        last.train_loss < 0.6 * first.train_loss,
        "training loss fell: {} -> {}",
        first.train_loss,
        last.train_loss
    );
    for m in &metrics {
        let parts = m.train_losses["class"] + m.train_losses["box"];
        assert!(
            (parts - m.train_loss).abs() < 1e-4 * m.train_loss,
            "the parts add up to the loss: {:?} vs {}",
            m.train_losses,
            m.train_loss
        );
        assert!(m.iou.is_empty() && m.mean_iou.is_none(), "no pixel scores");
    }
    let best_ap50 = metrics.iter().map(|m| m.scores["AP50"]).fold(0.0, f64::max);
    assert!(
        best_ap50 > 0.05,
        "validation AP50 per epoch: {:?}",
        metrics.iter().map(|m| m.scores["AP50"]).collect::<Vec<_>>()
    );

    let out = dir.path().join("found");
    let summary = infer_sample("ssd", &out).run(dir.path(), &Silent).unwrap();
    assert_eq!(summary.mask, None);
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("detections.json")).unwrap()).unwrap();
    assert_eq!(results.len() as u64, summary.objects[1]);
    let mut found = Vec::new();
    for result in &results {
        assert_eq!(result["image_id"], 1);
        assert_eq!(result["category_id"], 1);
        let b: Vec<f64> = serde_json::from_value(result["bbox"].clone()).unwrap();
        assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[2] > 0.0 && b[3] > 0.0);
        assert!(
            b[0] + b[2] <= 512.0 + 1e-3 && b[1] + b[3] <= 320.0 + 1e-3,
            "{b:?}"
        );
        found.push(areo::metrics::coco::ImageBox {
            image: 0,
            class: 1,
            bbox: [b[0], b[1], b[0] + b[2], b[1] + b[3]],
            score: result["score"].as_f64(),
        });
    }
    let craters = std::fs::read_to_string(summary.craters.as_ref().unwrap()).unwrap();
    assert!(craters.starts_with("x,y,diameter,score\n"));
    assert_eq!(craters.lines().count(), results.len() + 1);
    // Scored against the sample's 50 craters as boxes, over the whole image.
    let truth: Vec<_> = std::fs::read_to_string(CRATERS)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            let r = v[2] / 2.0;
            areo::metrics::coco::ImageBox {
                image: 0,
                class: 1,
                bbox: [v[0] - r, v[1] - r, v[0] + r, v[1] + r],
                score: None,
            }
        })
        .collect();
    let figures = areo::metrics::coco::box_figures(&truth, &found, 1, &[1]).unwrap();
    // An untrained detector scores 0 here; the tiny one finds about an eighth of the craters
    // (bench/craters.sh measures a real configuration).
    assert!(
        figures["AP50"] > 0.08 && figures["AR100"] > 0.08,
        "{figures:?}"
    );

    // On request the boxes scoring at least a threshold (here between the fifth and sixth
    // best scores: the tiny model is not confident) also as VOC XML and YOLO lines, which
    // read back as those boxes.
    let mut scores: Vec<f64> = found.iter().map(|b| b.score.unwrap()).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    assert!(scores.len() > 5 && scores[4] > scores[5], "{scores:?}");
    let threshold = (scores[4] + scores[5]) / 2.0;
    let labelled = dir.path().join("labelled");
    let summary = InferJob {
        boxes_as: areo::pipeline::train::BoxOutputs {
            voc: true,
            yolo: true,
            threshold,
        },
        ..infer_sample("ssd", &labelled)
    }
    .run(dir.path(), &Silent)
    .unwrap();
    assert_eq!(summary.labelled.len(), 3, "{:?}", summary.labelled);
    let confident: Vec<&areo::metrics::coco::ImageBox> = found
        .iter()
        .filter(|b| b.score.unwrap() >= threshold)
        .collect();
    assert_eq!(confident.len(), 5);
    let xml = std::fs::read_to_string(labelled.join("detections.xml")).unwrap();
    let voc = areo::labels::voc::read("detections.xml", &xml).unwrap();
    assert_eq!(voc.image, "nanedi-512x320.png");
    assert_eq!(voc.objects.len(), confident.len());
    for (object, b) in voc.objects.iter().zip(&confident) {
        assert_eq!(object.class, "crater");
        let got = object.shape.bbox();
        for (g, w) in got.iter().zip(b.bbox) {
            assert!((g - w).abs() < 2e-3, "{got:?} vs {:?}", b.bbox);
        }
    }
    let yolo = std::fs::read_to_string(labelled.join("detections.txt")).unwrap();
    assert_eq!(yolo.lines().count(), confident.len());
    assert!(yolo.lines().all(|l| l.starts_with("1 ")), "crater is id 1");
    assert_eq!(
        std::fs::read_to_string(labelled.join("classes.txt")).unwrap(),
        "1,crater\n"
    );

    // A detector cannot write probabilities; a segmentation run cannot detect.
    let error = InferJob {
        probabilities: true,
        ..infer_sample("ssd", &out)
    }
    .run(dir.path(), &Silent)
    .unwrap_err()
    .to_string();
    assert!(error.contains("not probabilities"), "{error}");
}

/// Cancels after `after` steps.
struct CancelAfter {
    after: u64,
    done: AtomicU64,
}

impl Progress for CancelAfter {
    fn start(&self, _label: &str, _total: u64) {}
    fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::SeqCst);
    }
    fn finish(&self) {}
    fn cancelled(&self) -> bool {
        self.done.load(Ordering::SeqCst) >= self.after
    }
}

/// Trains `config` whole, and again cancelled after 5 steps and resumed: the same weights,
/// optimiser moments and figures per epoch.
fn resumes_to_the_weights_of_an_uninterrupted_run(config: RunConfig) {
    let dir = tempfile::tempdir().unwrap();
    let record = dataset(dir.path());
    train(
        request(dir.path(), &record, config.clone(), "whole"),
        &Silent,
    )
    .unwrap();

    let cancel = CancelAfter {
        after: 5,
        done: AtomicU64::new(0),
    };
    let error = train(
        request(dir.path(), &record, config.clone(), "halves"),
        &cancel,
    )
    .err()
    .unwrap();
    assert!(
        matches!(error, TrainError::Cancelled { step: 5 }),
        "{error}"
    );
    let halted = RunRecord::read(&dir.path().join("runs/halves")).unwrap();
    assert_eq!(format!("{:?}", halted.state), "Cancelled");
    let resumed = train(request(dir.path(), &record, config, "halves"), &Silent).unwrap();
    assert_eq!(resumed.step, 14);

    let whole = tensors(&dir.path().join("runs/whole/checkpoint.safetensors"));
    let halves = tensors(&dir.path().join("runs/halves/checkpoint.safetensors"));
    assert_eq!(whole.len(), halves.len());
    assert!(whole.iter().any(|(name, _)| name.starts_with("adam.m.")));
    for ((name, a), (other, b)) in whole.iter().zip(&halves) {
        assert_eq!(name, other);
        assert_eq!(a, b, "{name} differs after resuming");
    }
    let figures = |run: &str| -> Vec<_> {
        read_metrics(&dir.path().join("runs").join(run))
            .unwrap()
            .into_iter()
            .map(|m| {
                let losses = serde_json::to_string(&m.train_losses).unwrap();
                let scores = serde_json::to_string(&m.scores).unwrap();
                (
                    m.epoch,
                    m.step,
                    m.train_loss,
                    m.val_loss,
                    m.iou,
                    m.f1,
                    losses,
                    scores,
                )
            })
            .collect()
    };
    assert_eq!(
        figures("whole"),
        figures("halves"),
        "losses and scores per epoch"
    );
}

#[test]
fn a_cancelled_run_resumes_to_the_weights_of_an_uninterrupted_one() {
    resumes_to_the_weights_of_an_uninterrupted_run(config(2, 0));
}

#[test]
fn a_cancelled_ssd_run_resumes_to_the_weights_of_an_uninterrupted_one() {
    resumes_to_the_weights_of_an_uninterrupted_run(ssd_config(2));
}

/// A detector's bad boxes are named: a tile set whose manifest lists a zero-size box or one
/// outside its chip, and a box of a class the model lacks; a dataset tiled without labels
/// has no boxes to train on.
#[test]
fn a_detectors_bad_boxes_are_refused_with_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let record = dataset(dir.path());
    let manifest_path = dir.path().join("tiles/manifest.json");
    let pristine = std::fs::read_to_string(&manifest_path).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&pristine).unwrap();
    let (chip, index) = manifest["chips"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .find(|(_, c)| !c["boxes"].as_array().unwrap().is_empty())
        .map(|(i, c)| (c["file"].as_str().unwrap().to_string(), i))
        .unwrap();
    for (bbox, what) in [
        (serde_json::json!([3.0, 4.0, 3.0, 9.0]), "[3, 4, 3, 9]"),
        (serde_json::json!([60.0, 4.0, 70.0, 9.0]), "[60, 4, 70, 9]"),
    ] {
        manifest["chips"][index]["boxes"][0]["bbox"] = bbox;
        std::fs::write(&manifest_path, manifest.to_string()).unwrap();
        let error = record.boxes().unwrap_err().to_string();
        assert!(
            error.contains("tiles/manifest.json")
                && error.contains(&format!("chip {chip} box 1 (crater) is {what}"))
                && error.contains("inside the 64 x 64 chip"),
            "{error}"
        );
    }
    std::fs::write(&manifest_path, &pristine).unwrap();

    // A box of class id 2 for a model of two classes (background and crater).
    let mut req = request(dir.path(), &record, ssd_config(1), "bad-class");
    let sample = req.train.iter_mut().find(|s| !s.boxes.is_empty()).unwrap();
    sample.boxes[0].class = 2;
    let error = train(req, &Silent).err().unwrap().to_string();
    assert!(
        error.contains("a box of class id 2 (the model's classes are 1 to 1; 0 is background)"),
        "{error}"
    );

    // Chips tiled without boxes cannot train a detector.
    let mut manifest: serde_json::Value = serde_json::from_str(&pristine).unwrap();
    for chip in manifest["chips"].as_array_mut().unwrap() {
        chip.as_object_mut().unwrap().remove("boxes");
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let job = TrainJob {
        run: "unboxed".into(),
        config: ssd_config(1),
        dataset: record.name.clone(),
        device: "cpu".into(),
        encoder_weights: None,
    };
    let error = job.run(dir.path(), &Silent).err().unwrap().to_string();
    assert!(
        error.contains("has chips without boxes: a detector trains on boxes"),
        "{error}"
    );
}

#[test]
fn bad_inputs_are_refused_with_errors_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let record = dataset(dir.path());

    // A mask value the model has no class for.
    let mut three = config(1, 0);
    let ModelConfig::UNet(unet) = &mut three.model else {
        unreachable!("a U-Net configuration")
    };
    unet.classes = 2;
    let mut req = request(dir.path(), &record, three, "bad-mask");
    req.train[0].mask[10] = 7;
    let error = train(req, &Silent).err().unwrap().to_string();
    assert!(error.contains("mask value 7"), "{error}");

    // Chips smaller than the training tile.
    let mut big = config(1, 0);
    big.train.tile = 128;
    let error = train(request(dir.path(), &record, big, "big"), &Silent)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("smaller than train.tile 128"), "{error}");

    // A corrupt checkpoint is reported and left as it was.
    let run_dir = dir.path().join("runs/corrupt");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("checkpoint.safetensors"), b"\x10\x00\x00").unwrap();
    let error = train(
        request(dir.path(), &record, config(1, 0), "corrupt"),
        &Silent,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains("checkpoint.safetensors") && error.contains("not a safetensors file"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(run_dir.join("checkpoint.safetensors")).unwrap(),
        b"\x10\x00\x00"
    );

    // A dataset that does not exist, and a hostile run name.
    let job = TrainJob {
        run: "x".into(),
        config: config(1, 0),
        dataset: "nowhere".into(),
        device: "cpu".into(),
        encoder_weights: None,
    };
    let error = job.run(dir.path(), &Silent).err().unwrap().to_string();
    assert!(error.contains("no dataset named nowhere"), "{error}");
    let hostile = TrainJob {
        run: "../escape".into(),
        ..job.clone()
    };
    let error = hostile.run(dir.path(), &Silent).err().unwrap().to_string();
    assert!(error.contains("run name"), "{error}");
    let cuda = TrainJob {
        device: "cuda:0".into(),
        ..job
    };
    if !candle_core::utils::cuda_is_available() {
        let error = cuda.run(dir.path(), &Silent).err().unwrap().to_string();
        assert!(error.contains("built without CUDA"), "{error}");
    }
}

fn areo(workspace: &Path, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(workspace)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "areo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "areo {args:?}: {e}: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn a_training_run_whose_daemon_is_killed_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let record = dataset(&workspace);
    // The reference: the same configuration trained without interruption, in-process.
    let reference = dir.path().join("reference");
    train(request(&reference, &record, config(3, 1), "whole"), &Silent).unwrap();

    let config_path: PathBuf = dir.path().join("tiny.toml");
    std::fs::write(&config_path, toml::to_string(&config(3, 1)).unwrap()).unwrap();
    let queued = areo(
        &workspace,
        &[
            "train",
            "--config",
            config_path.to_str().unwrap(),
            "--dataset",
            "craters",
            "--name",
            "killed",
            "--detach",
        ],
    );
    let job = queued["job"].as_u64().unwrap().to_string();
    // Wait for a mid-run checkpoint (one is written every step), then kill -9 the daemon.
    let checkpoint = workspace.join("runs/killed/checkpoint.safetensors");
    wait_for_step(&checkpoint, 4);
    let daemon: i32 = std::fs::read_to_string(workspace.join("areo.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    while Workspace::open(&workspace).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }

    // Any command restarts the daemon; the interrupted job runs again and resumes.
    let ended = areo(&workspace, &["jobs", "watch", &job]);
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["attempts"], 2, "{ended}");
    assert!(
        ended["log"].to_string().contains("resumed at epoch"),
        "{ended}"
    );
    let listed = areo(&workspace, &["runs", "list"]);
    assert_eq!(listed[0]["name"], "killed");
    assert_eq!(listed[0]["state"], "finished");
    assert_eq!(listed[0]["epochs_done"], 3);
    areo(&workspace, &["stop"]);

    let whole = tensors(&reference.join("runs/whole/checkpoint.safetensors"));
    let resumed = tensors(&checkpoint);
    assert_eq!(whole.len(), resumed.len());
    for ((name, a), (_, b)) in whole.iter().zip(&resumed) {
        assert_eq!(a, b, "{name} differs after the kill and resume");
    }
}

/// Waits until a training run's checkpoint has reached `step`.
fn wait_for_step(checkpoint: &Path, step: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let reached = checkpoint::load(checkpoint, &Device::Cpu)
            .ok()
            .and_then(|(_, state)| state)
            .and_then(|s| s["step"].as_u64())
            .unwrap_or(0);
        if reached >= step {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint at step {step}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `areo` expected to fail: its error message.
fn areo_error(workspace: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "areo {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What the dashboard's training form and `x`, `r` and `d` keys ask for, from the command
/// line: a run with changed settings, stopped when an epoch ends, resumed with its own
/// configuration, copied into a new run, and deleted (not while it trains).
#[test]
fn a_run_stopped_at_an_epoch_end_resumes_and_runs_are_copied_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    dataset(&workspace);
    let config_path: PathBuf = dir.path().join("tiny.toml");
    std::fs::write(&config_path, toml::to_string(&config(3, 1)).unwrap()).unwrap();
    let queued = areo(
        &workspace,
        &[
            "train",
            "--config",
            config_path.to_str().unwrap(),
            "--dataset",
            "craters",
            "--name",
            "gentle",
            "--epochs",
            "12",
            "--lr",
            "2e-3",
            "--seed",
            "7",
            "--detach",
        ],
    );
    let job = queued["job"].as_u64().unwrap().to_string();
    let checkpoint = workspace.join("runs/gentle/checkpoint.safetensors");
    wait_for_step(&checkpoint, 1);
    let asked = areo(&workspace, &["jobs", "cancel", &job, "--after-epoch"]);
    assert_eq!(asked["after_epoch"], true);
    // Not a success: `jobs watch` says so with its exit status, and prints the job.
    let watched = std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
        .arg("--workspace")
        .arg(&workspace)
        .args(["--json", "jobs", "watch", &job])
        .output()
        .unwrap();
    assert!(!watched.status.success());
    let ended: serde_json::Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(ended["state"], "cancelled", "{ended}");
    let shown = areo(&workspace, &["runs", "show", "gentle"]);
    let done = shown["run"]["epochs_done"].as_u64().unwrap() as usize;
    assert!((1..12).contains(&done), "{shown}");
    assert_eq!(
        ended["error"],
        format!(
            "stopped after epoch {done} of 12, as asked; the checkpoint lets `--resume` continue"
        )
    );
    assert_eq!(shown["run"]["state"], "cancelled");
    assert_eq!(shown["metrics"].as_array().unwrap().len(), done);
    let train = &shown["run"]["config"]["train"];
    assert_eq!(
        (train["epochs"].as_u64(), train["seed"].as_u64()),
        (Some(12), Some(7))
    );
    assert_eq!(train["lr"].as_f64(), Some(2e-3));
    // Stopped between epochs: the checkpoint starts the next one at its first batch.
    let (_, state) = checkpoint::load(&checkpoint, &Device::Cpu).unwrap();
    let state = state.unwrap();
    assert_eq!(
        (state["epoch"].as_u64(), state["batch"].as_u64()),
        (Some(done as u64), Some(0))
    );

    // Resumed with nothing but its name; changing its settings is refused.
    let refused = areo_error(
        &workspace,
        &["train", "--resume", "gentle", "--epochs", "20"],
    );
    assert!(
        refused.contains("'--resume <RUN>' cannot be used with '--epochs <EPOCHS>'"),
        "{refused}"
    );
    let resumed = areo(&workspace, &["train", "--resume", "gentle"]);
    assert_eq!(resumed["epochs"], 12, "{resumed}");

    // A run like it, for one epoch.
    let copied = areo(
        &workspace,
        &[
            "train",
            "--from-run",
            "gentle",
            "--dataset",
            "craters",
            "--name",
            "copy",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(copied["epochs"], 1, "{copied}");
    let copy = areo(&workspace, &["runs", "show", "copy"]);
    let mut expected = shown["run"]["config"].clone();
    expected["train"]["epochs"] = 1.into();
    assert_eq!(copy["run"]["config"], expected);
    let taken = areo_error(
        &workspace,
        &[
            "train",
            "--from-run",
            "gentle",
            "--dataset",
            "craters",
            "--name",
            "copy",
        ],
    );
    assert!(taken.contains("run copy exists"), "{taken}");

    // Deleting: refused while a job trains the run, done once it has ended.
    let busy = areo(
        &workspace,
        &[
            "train",
            "--from-run",
            "gentle",
            "--dataset",
            "craters",
            "--name",
            "busy",
            "--epochs",
            "40",
            "--detach",
        ],
    );
    let busy_job = busy["job"].as_u64().unwrap();
    let refused = areo_error(&workspace, &["runs", "delete", "busy"]);
    assert!(
        refused.contains(&format!("job {busy_job} trains run busy: cancel it first")),
        "{refused}"
    );
    areo(&workspace, &["jobs", "cancel", &busy_job.to_string()]);
    areo_error(&workspace, &["jobs", "watch", &busy_job.to_string()]);
    assert_eq!(
        areo(&workspace, &["runs", "delete", "gentle"])["deleted"],
        "gentle"
    );
    assert!(!workspace.join("runs/gentle").exists());
    assert!(
        workspace.join("runs/copy/run.json").exists(),
        "only that run goes"
    );
    let missing = areo_error(&workspace, &["runs", "delete", "gentle"]);
    assert!(missing.contains("no run gentle"), "{missing}");
    let hostile = areo_error(&workspace, &["runs", "delete", "../ws"]);
    assert!(hostile.contains("path separator"), "{hostile}");
    assert!(workspace.join("runs/copy/run.json").exists());
    areo(&workspace, &["stop"]);
}

fn areo_plain(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_areo"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_speed_bench_times_real_chips_and_finds_the_cpu_agrees_with_itself() {
    let output = areo_plain(&[
        "--json",
        "bench",
        "unet",
        "--config",
        "models/unet-tiny.toml",
        "--infer-batches",
        "1,2",
        "--train-batch",
        "2",
        "--repeats",
        "1",
        "--agree-with",
        "cpu",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for figure in ["infer_b1", "infer_b2", "train_b2"] {
        assert!(report[figure].as_f64().unwrap() > 0.0, "{report}");
    }
    // One timed step: its phases lie inside it and make up nearly all of it.
    let phases: f64 = ["forward", "backward", "optimiser"]
        .iter()
        .map(|phase| report[format!("train_b2_{phase}")].as_f64().unwrap())
        .inspect(|&seconds| assert!(seconds > 0.0, "{report}"))
        .sum();
    let step = report["train_b2"].as_f64().unwrap();
    assert!(phases <= step && phases > 0.5 * step, "{report}");
    assert_eq!(report["agreement"]["fraction"], 1.0, "{report}");
    // 96 px chips at stride 48 over 512 x 320: 10 columns (the last shifted in) x 6 rows.
    assert_eq!(report["agreement"]["pixels"], 10 * 6 * 96 * 96, "{report}");
    if !candle_core::utils::cuda_is_available() {
        let output = areo_plain(&[
            "bench",
            "unet",
            "--config",
            "models/unet-tiny.toml",
            "--device",
            "cuda:1",
        ]);
        assert!(!output.status.success());
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("built without CUDA"), "{error}");
    }
}

#[test]
fn eval_scores_masks_by_hand_computed_counts() {
    let dir = tempfile::tempdir().unwrap();
    // 4 x 2 masks. truth: 0 0 1 1 / 0 2 2 255; predicted: 0 1 1 1 / 2 2 0 0.
    let write = |name: &str, values: [u8; 8]| {
        let path = dir.path().join(name);
        image::GrayImage::from_raw(4, 2, values.to_vec())
            .unwrap()
            .save(&path)
            .unwrap();
        path
    };
    let truth = write("truth.png", [0, 0, 1, 1, 0, 2, 2, 255]);
    let predicted = write("predicted.png", [0, 1, 1, 1, 2, 2, 0, 0]);
    let csv = dir.path().join("scores.csv");
    let output = areo_plain(&[
        "--json",
        "eval",
        "--truth",
        truth.to_str().unwrap(),
        "--predicted",
        predicted.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // Class 0: tp 1, fp 1 (pixel 2 of row 2), fn 2; class 1: tp 2, fp 1, fn 0;
    // class 2: tp 1, fp 1, fn 1. Pixel 8 (255) is ignored.
    assert_eq!(
        report["pixel"]["confusion"],
        serde_json::json!([[1, 1, 1], [0, 2, 0], [1, 0, 1]])
    );
    let class = |c: usize, field: &str| report["pixel"]["per_class"][c][field].as_f64().unwrap();
    assert!((class(0, "precision") - 0.5).abs() < 1e-12);
    assert!((class(0, "recall") - 1.0 / 3.0).abs() < 1e-12);
    assert!((class(1, "iou") - 2.0 / 3.0).abs() < 1e-12);
    assert!((class(2, "f1") - 0.5).abs() < 1e-12);
    assert!((report["pixel"]["accuracy"].as_f64().unwrap() - 4.0 / 7.0).abs() < 1e-12);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(text.starts_with("class,precision,recall,f1,iou,support,predicted\n0,0.5,"));

    let small = dir.path().join("small.png");
    image::GrayImage::from_raw(2, 2, vec![0; 4])
        .unwrap()
        .save(&small)
        .unwrap();
    let output = areo_plain(&[
        "eval",
        "--truth",
        truth.to_str().unwrap(),
        "--predicted",
        small.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("small.png is 2 x 2"), "{error}");

    // Crater blobs: a probability map needs a crater list, and diameters must make sense.
    let list = dir.path().join("craters.csv");
    std::fs::write(&list, "x,y,diameter\n1,1,2\n").unwrap();
    let with = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--truth",
            truth.to_str().unwrap(),
            "--predicted",
            predicted.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        areo_plain(&args)
    };
    let output = with(&["--probabilities", "p.png"]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("--craters"), "{error}");
    let crater_list = list.to_str().unwrap();
    for bad in ["10,5", "0,8", "8", "a,b"] {
        let output = with(&[
            "--craters",
            crater_list,
            "--probabilities",
            "p.png",
            "--diameters",
            bad,
        ]);
        assert!(!output.status.success());
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("--diameters"), "{bad}: {error}");
        assert!(error.contains("expected MIN,MAX"), "{bad}: {error}");
    }
    let output = with(&["--craters", crater_list, "--probabilities", "missing.png"]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("missing.png"), "{error}");
}

#[test]
fn narrower_crater_discs_paint_a_quarter_of_the_pixels_at_half_the_radius() {
    let dir = tempfile::tempdir().unwrap();
    let crater_pixels = |scale: Option<f64>, name: &str| -> usize {
        let out = dir.path().join(name);
        TileRequest {
            input: SAMPLE.into(),
            spec: TileSpec {
                size: 64,
                stride: 64,
                edge: Edge::Drop,
                skip_no_data: None,
            },
            label: None,
            labels: Some((CRATERS.into(), Format::Craters)),
            classes: None,
            circle_scale: scale,
            min_visible: None,
            out: out.clone(),
        }
        .run(&Silent)
        .unwrap()
        .chips
        .iter()
        .map(|chip| {
            let mask = image::open(out.join(chip.mask.as_ref().unwrap()))
                .unwrap()
                .into_luma8();
            mask.pixels().filter(|p| p.0[0] == 1).count()
        })
        .sum()
    };
    let full = crater_pixels(None, "full");
    let half = crater_pixels(Some(0.5), "half");
    let ratio = half as f64 / full as f64;
    // Discs of half the radius cover a quarter of the area, a little more for the outline
    // pixel the rasteriser adds and where craters overlap less.
    assert!(
        full > 3000 && (0.22..0.35).contains(&ratio),
        "{full} -> {half}: {ratio}"
    );
}

/// Inference takes the weights the run ended with (its checkpoint's) unless asked for the
/// best epoch's, which differ unless the last epoch was the best; a run without the asked-for
/// file says which it lacks.
fn kept_weights_are_the_last_epochs_and_the_best_epochs(
    run_dir: &Path,
    run: &RunRecord,
    chip: &Image,
) {
    let predict = |weights| {
        Predictor::load(run_dir, weights, Device::Cpu)
            .unwrap()
            .predict(chip, &InferOptions::default(), &Silent)
            .unwrap()
            .probabilities
    };
    let by_default = predict(None);
    assert_eq!(by_default, predict(Some(KeptWeights::Last)));
    let best_epoch = run.best.as_ref().unwrap().epoch;
    assert_eq!(
        by_default == predict(Some(KeptWeights::Best)),
        best_epoch == run.epochs_done,
        "best epoch {best_epoch} of {}",
        run.epochs_done
    );
    let moved = run_dir.join("moved.safetensors");
    std::fs::rename(run_dir.join("best.safetensors"), &moved).unwrap();
    let error = Predictor::load(run_dir, Some(KeptWeights::Best), Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("has no best.safetensors"), "{error}");
    std::fs::rename(moved, run_dir.join("best.safetensors")).unwrap();
}

/// `areo infer --product P --fetch browse` (what the catalog's `i` queues for picked
/// products): a product whose browse image is not here is downloaded by a job the inference
/// waits for; once it is here, no second download.
#[test]
fn an_inference_over_a_remote_product_downloads_its_browse_image_first() {
    let mut browse = Vec::new();
    let scene = image::GrayImage::from_fn(200, 120, |x, y| {
        image::Luma([((x * 7 + y * 3) % 251) as u8])
    });
    image::DynamicImage::ImageLuma8(scene)
        .write_to(
            &mut std::io::Cursor::new(&mut browse),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let served = browse.clone();
    let server = http::serve(move |request| {
        if request.path.ends_with("ESP_013951_1955_RED.browse.jpg") {
            http::Response::new(200, served.clone())
        } else {
            http::Response::new(404, "not here")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let record = dataset(&workspace);
    train(request(&workspace, &record, config(1, 0), "tiny"), &Silent).unwrap();
    let reply = dir.path().join("reply.json");
    std::fs::write(
        &reply,
        REPLY.replace("https://hirise.lpl.arizona.edu", &server.url("")),
    )
    .unwrap();
    areo(&workspace, &["catalog", "import", reply.to_str().unwrap()]);

    let args = [
        "infer",
        "--run",
        "tiny",
        "--product",
        "ESP_013951_1955_RED",
        "--fetch",
        "browse",
    ];
    let inferred = areo(&workspace, &args);
    assert_eq!(
        (inferred["width"].as_u64(), inferred["height"].as_u64()),
        (Some(200), Some(120))
    );
    let product = workspace.join("products/ESP_013951_1955_RED");
    assert_eq!(
        std::fs::read(product.join("ESP_013951_1955_RED.BROWSE.JPG")).unwrap(),
        browse
    );
    assert!(workspace
        .join("runs/tiny/predictions/ESP_013951_1955_RED/mask.png")
        .exists());
    let jobs = areo(&workspace, &["jobs", "list"]);
    let kinds: Vec<(&str, &str)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["spec"]["kind"].as_str().unwrap_or("?"),
                j["state"].as_str().unwrap(),
            )
        })
        .collect();
    let [infer, fetch, import] = jobs.as_array().unwrap().as_slice() else {
        panic!("{jobs}")
    };
    assert_eq!(
        infer["after"],
        serde_json::json!([fetch["id"]]),
        "{kinds:?}"
    );
    assert_eq!(fetch["state"], "succeeded");
    assert_eq!(import["state"], "succeeded");

    // Here now: the inference alone.
    areo(&workspace, &args);
    assert_eq!(
        areo(&workspace, &["jobs", "list"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // A download that fails stops the wait with its reason; the inference waits for a retry.
    let failed = areo_error(
        &workspace,
        &[
            "infer",
            "--run",
            "tiny",
            "--product",
            "ESP_013951_1955_RED",
            "--fetch",
            "rdr",
        ],
    );
    assert!(failed.contains("1 of 1 file(s) failed"), "{failed}");
    let jobs = areo(&workspace, &["jobs", "list"]);
    assert_eq!(jobs[0]["state"], "queued", "{jobs}");
    assert_eq!(jobs[1]["state"], "failed", "{jobs}");
    areo(&workspace, &["stop"]);
}
