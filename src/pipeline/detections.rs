//! Detections scored against COCO truth: AP@[.5:.95], AP50, AP75, AP and AR by size, AR at 1,
//! 10 and 100 detections, per-class AP (pycocotools' definitions, computed by hotcoco, which
//! matches pycocotools bit for bit), and at a chosen score threshold the confusion matrix at
//! IoU 0.5 with a background row and column, and each class's precision, recall and F1.
//!
//! Both files are checked here first, so a bad entry is named (file, entry, field) instead of
//! surfacing as an evaluator's error.

use crate::labels::coco;
use crate::metrics::ConfusionMatrix;
use crate::tree::Node;
use hotcoco::params::IouType;
use hotcoco::{COCOeval, COCO};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A reader's error, which names its file already.
    #[error("{0}")]
    Invalid(String),
    #[error("evaluation: {0}")]
    Evaluator(String),
}

/// Truth and detections to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRequest {
    /// Kept as `evals/<name>.json` when run as a job; `None` scores without keeping.
    #[serde(default)]
    pub name: Option<String>,
    /// The run that made the detections, for the report.
    #[serde(default)]
    pub run: Option<String>,
    /// COCO instances, or a file of another format (`truth_format`).
    pub truth: PathBuf,
    /// The truth's format when not COCO: it is read as `areo labels` reads it (classes by
    /// the Mars class map's ids, the ids areo's detectors write) and scored as COCO with
    /// images numbered from 1 in the file's order (`areo infer` writes image id 1).
    #[serde(default)]
    pub truth_format: Option<TruthFormat>,
    /// COCO results: `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]`.
    pub results: PathBuf,
    /// Detections below this score are left out of the confusion matrix and P/R/F1.
    pub threshold: f64,
}

/// One class at the score threshold and IoU 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassDetections {
    pub class: String,
    pub category_id: u64,
    /// AP@[.5:.95] (`None`: the class has no truth objects).
    pub ap: Option<f64>,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub run: Option<String>,
    pub truth: PathBuf,
    pub results: PathBuf,
    /// `AP`, `AP50`, `AP75`, `APs`, `APm`, `APl`, `AR1`, `AR10`, `AR100`, `ARs`, `ARm`, `ARl`
    /// (-1: nothing to score, as pycocotools prints it).
    pub metrics: BTreeMap<String, f64>,
    pub classes: Vec<ClassDetections>,
    pub threshold: f64,
    /// Rows: truth class, then background (a false positive); columns: predicted class, then
    /// background (a missed object). Names in row order, "background" last.
    pub confusion_names: Vec<String>,
    pub confusion: Vec<Vec<u64>>,
}

fn file_error(path: &Path, message: impl Into<String>) -> DetectionError {
    DetectionError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A truth file's format other than COCO, and the image size formats without one need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthFormat {
    pub format: super::labels::Format,
    pub size: Option<crate::labels::ImageSize>,
}

/// The truth, checked by areo's readers (a bad box, number or id is named, file first),
/// then loaded for the evaluator: COCO as it is, another format as the COCO areo writes.
fn load_truth(path: &Path, format: Option<&TruthFormat>) -> Result<COCO, DetectionError> {
    let invalid = |e: crate::labels::LabelError| DetectionError::Invalid(e.to_string());
    let text = match format {
        None => {
            let text =
                std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?;
            coco::read(&path.display().to_string(), &text).map_err(invalid)?;
            text
        }
        Some(TruthFormat { format, size }) => {
            let options = super::labels::ReadOptions {
                size: *size,
                ..Default::default()
            };
            let read = super::labels::read_file(*format, path, &options).map_err(invalid)?;
            let classes = read.classes.unwrap_or_else(crate::labels::ClassMap::mars);
            // The writer names the image; the file is what the user gave.
            coco::write(&read.images, &classes)
                .map_err(|e| file_error(path, e.to_string()))?
                .0
        }
    };
    let dataset = serde_json::from_str(&text).map_err(|e| file_error(path, e.to_string()))?;
    Ok(COCO::from_dataset(dataset))
}

/// Checks every result names an image and a category of the truth, with a box and a score.
fn check_results(path: &Path, truth_path: &Path, truth: &COCO) -> Result<(), DetectionError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?;
    let root = crate::labels::parse_json(&text).map_err(|e| file_error(path, e.to_string()))?;
    let Node::List(results) = &root else {
        return Err(file_error(
            path,
            format!("expected a list of results, found {}", root.describe()),
        ));
    };
    let truth_name = truth_path.display();
    for (index, result) in results.iter().enumerate() {
        let context = format!("result {}", index + 1);
        let problem = |e: crate::labels::LabelError| file_error(path, e.to_string());
        let image =
            crate::labels::whole(&context, "image_id", result.get("image_id")).map_err(problem)?;
        if !u64::try_from(image).is_ok_and(|id| truth.get_img(id).is_some()) {
            return Err(file_error(
                path,
                format!("{context}: image_id {image} is not among the images of {truth_name}"),
            ));
        }
        let category = crate::labels::whole(&context, "category_id", result.get("category_id"))
            .map_err(problem)?;
        if !u64::try_from(category).is_ok_and(|id| truth.get_cat(id).is_some()) {
            return Err(file_error(
                path,
                format!(
                    "{context}: category_id {category} is not among the categories of {truth_name}"
                ),
            ));
        }
        let bbox = crate::labels::numbers(&context, "bbox", result.get("bbox")).map_err(problem)?;
        let [_, _, w, h] = bbox[..] else {
            return Err(file_error(
                path,
                format!("{context}: bbox has {} numbers, expected 4", bbox.len()),
            ));
        };
        crate::labels::box_extent(&context, "bbox width", w).map_err(problem)?;
        crate::labels::box_extent(&context, "bbox height", h).map_err(problem)?;
        crate::labels::number(&context, "score", result.get("score")).map_err(problem)?;
    }
    Ok(())
}

impl DetectionRequest {
    /// Scores, then keeps the report as `evals_dir/<name>.json` (atomically).
    pub fn run_and_keep(&self, evals_dir: &Path) -> Result<DetectionReport, DetectionError> {
        let path = super::evaluate::kept_path(evals_dir, self.name.as_deref())
            .map_err(DetectionError::Invalid)?;
        let report = self.run()?;
        let bytes = serde_json::to_vec_pretty(&report).expect("reports serialise");
        crate::fsio::write_atomically(&path, &bytes)
            .map_err(|e| file_error(&path, e.to_string()))?;
        Ok(report)
    }

    pub fn run(&self) -> Result<DetectionReport, DetectionError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(DetectionError::Evaluator(format!(
                "score threshold {}: expected a number between 0 and 1",
                self.threshold
            )));
        }
        let truth = load_truth(&self.truth, self.truth_format.as_ref())?;
        check_results(&self.results, &self.truth, &truth)?;
        let evaluator = |e: hotcoco::error::Error| DetectionError::Evaluator(e.to_string());
        let found = truth.load_res(&self.results).map_err(evaluator)?;
        let mut evaluation = COCOeval::new(truth, found, IouType::Bbox);
        // evaluate + accumulate + the summary's numbers (`run` would print them on stdout).
        evaluation.evaluate().map_err(evaluator)?;
        evaluation.accumulate();
        evaluation.summarize_lines();
        let all = evaluation.get_results(None, true);
        let metrics: BTreeMap<String, f64> = all
            .iter()
            .filter(|(k, _)| !k.contains('/'))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let found = evaluation.confusion_matrix(0.5, None, Some(self.threshold));
        // The same layout as areo's pixel matrix (rows truth, columns predicted), background
        // last: its per-class scores are the detections' at the threshold.
        let confusion = ConfusionMatrix {
            classes: found.num_cats + 1,
            counts: found.matrix.clone(),
        };
        let classes = confusion
            .scores()
            .into_iter()
            .take(found.num_cats)
            .map(|s| {
                let class = found.cat_names[s.class].clone();
                let true_positives = confusion.get(s.class, s.class);
                ClassDetections {
                    ap: all.get(&format!("AP/{class}")).copied(),
                    class,
                    category_id: found.cat_ids[s.class],
                    true_positives,
                    false_positives: s.predicted - true_positives,
                    false_negatives: s.support - true_positives,
                    precision: s.precision,
                    recall: s.recall,
                    f1: s.f1,
                }
            })
            .collect();
        let mut confusion_names = found.cat_names.clone();
        confusion_names.push("background".into());
        Ok(DetectionReport {
            name: self.name.clone(),
            run: self.run.clone(),
            truth: self.truth.clone(),
            results: self.results.clone(),
            metrics,
            classes,
            threshold: self.threshold,
            confusion_names,
            confusion: confusion
                .counts
                .chunks(confusion.classes)
                .map(<[u64]>::to_vec)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(truth: &str, results: &str) -> (tempfile::TempDir, DetectionRequest) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("truth.json"), truth).unwrap();
        std::fs::write(dir.path().join("results.json"), results).unwrap();
        let request = DetectionRequest {
            name: None,
            run: None,
            truth_format: None,
            truth: dir.path().join("truth.json"),
            results: dir.path().join("results.json"),
            threshold: 0.75,
        };
        (dir, request)
    }

    const TRUTH: &str = r#"{"images":[{"id":1,"file_name":"a.png","width":100,"height":100}],
        "categories":[{"id":1,"name":"crater"}],
        "annotations":[
          {"id":1,"image_id":1,"category_id":1,"bbox":[10,10,20,20],"area":400,"iscrowd":0},
          {"id":2,"image_id":1,"category_id":1,"bbox":[60,60,20,20],"area":400,"iscrowd":0}]}"#;

    /// Two craters found exactly, at scores 0.9 and 0.7, with a miss at 0.8 between them:
    /// precision is 1 up to recall 0.5 and 2/3 beyond, at every IoU threshold, so the
    /// 101-point AP is (51 * 1 + 50 * 2/3) / 101. At the 0.75 threshold one crater is found
    /// (0.9), one box is false (0.8) and one crater missed.
    #[test]
    fn average_precision_and_the_threshold_counts_are_the_hand_computed_ones() {
        let results = r#"[
          {"image_id":1,"category_id":1,"bbox":[10,10,20,20],"score":0.9},
          {"image_id":1,"category_id":1,"bbox":[30,60,10,10],"score":0.8},
          {"image_id":1,"category_id":1,"bbox":[60,60,20,20],"score":0.7}]"#;
        let (_dir, request) = files(TRUTH, results);
        let report = request.run().unwrap();
        let expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        // 20 x 20 px craters: small (under 32 x 32).
        for key in ["AP", "AP50", "AP75", "APs"] {
            assert!(
                (report.metrics[key] - expected).abs() < 1e-12,
                "{key}: {:?}",
                report.metrics
            );
        }
        assert_eq!(
            (report.metrics["APm"], report.metrics["APl"]),
            (-1.0, -1.0),
            "no medium or large craters: nothing to score"
        );
        assert_eq!(report.metrics["ARs"], 1.0);
        assert_eq!(report.metrics["AR1"], 0.5);
        assert_eq!(report.metrics["AR100"], 1.0);
        let crater = &report.classes[0];
        assert_eq!(
            (
                crater.true_positives,
                crater.false_positives,
                crater.false_negatives
            ),
            (1, 1, 1)
        );
        assert_eq!(
            (crater.precision, crater.recall, crater.f1),
            (0.5, 0.5, 0.5)
        );
        assert!((crater.ap.unwrap() - expected).abs() < 1e-12);
        assert_eq!(report.confusion_names, ["crater", "background"]);
        assert_eq!(report.confusion, [[1, 1], [1, 0]]);
    }

    /// The same case with the truth as a crater list: its circles' boxes are the COCO truth's,
    /// so AP50 is the hand-computed one.
    #[test]
    fn truth_in_another_format_is_scored_as_coco() {
        let results = r#"[
          {"image_id":1,"category_id":1,"bbox":[10,10,20,20],"score":0.9},
          {"image_id":1,"category_id":1,"bbox":[30,60,10,10],"score":0.8},
          {"image_id":1,"category_id":1,"bbox":[60,60,20,20],"score":0.7}]"#;
        let (dir, mut request) = files("x,y,diameter\n20,20,20\n70,70,20\n", results);
        std::fs::rename(dir.path().join("truth.json"), dir.path().join("truth.csv")).unwrap();
        request.truth = dir.path().join("truth.csv");
        request.truth_format = Some(TruthFormat {
            format: super::super::labels::Format::Craters,
            size: None,
        });
        let error = request.run().unwrap_err().to_string();
        assert!(
            error.contains("truth.csv: truth.jpg: the image size is unknown"),
            "{error}"
        );
        request.truth_format = Some(TruthFormat {
            format: super::super::labels::Format::Craters,
            size: Some(crate::labels::ImageSize {
                width: 100,
                height: 100,
                depth: 1,
            }),
        });
        let report = request.run().unwrap();
        let expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert!(
            (report.metrics["AP50"] - expected).abs() < 1e-12,
            "{:?}",
            report.metrics
        );
        // Every class of the Mars map is a category; craters keep their id 1.
        let crater = report.classes.iter().find(|c| c.class == "crater").unwrap();
        assert_eq!(crater.category_id, 1);
    }

    #[test]
    fn results_naming_what_the_truth_lacks_are_refused_by_file_and_entry() {
        let cases = [
            (
                r#"[{"image_id":1,"category_id":1,"bbox":[1,1,2,2],"score":0.5},{"image_id":9,"category_id":1,"bbox":[1,1,2,2],"score":0.5}]"#,
                "results.json: result 2: image_id 9 is not among the images of",
            ),
            (
                r#"[{"image_id":1,"category_id":4,"bbox":[1,1,2,2],"score":0.5}]"#,
                "results.json: result 1: category_id 4 is not among the categories of",
            ),
            (
                r#"[{"image_id":1,"category_id":1,"bbox":[1,1,-2,2],"score":0.5}]"#,
                "results.json: result 1: bbox width is -2: a box cannot have a negative size",
            ),
            (
                r#"[{"image_id":1,"category_id":1,"bbox":[1,1,2,2]}]"#,
                "results.json: result 1: score is missing",
            ),
            (
                r#"{"image_id":1}"#,
                "results.json: expected a list of results, found an object",
            ),
        ];
        for (results, expected) in cases {
            let (_dir, request) = files(TRUTH, results);
            let error = request.run().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let bad_truth = TRUTH.replace("[60,60,20,20]", "[60,60,\"20\",20]");
        let (_dir, request) = files(&bad_truth, "[]");
        let error = request.run().unwrap_err().to_string();
        assert!(
            error.ends_with(
                "truth.json: annotation 2: bbox[2]: expected a number, found the string \"20\""
            ),
            "{error}"
        );
    }
}
