//! Scoring a predicted class mask against the truth as a pipeline step: per-class pixel
//! scores and the confusion matrix, objects matched at IoU >= 0.5, and craters matched as
//! circles. A named evaluation is kept as `evals/<name>.json` for the console to show.

use super::dataset::{read_mask, DatasetError};
use super::detections::DetectionReport;
use crate::fsio::write_atomically;
use crate::labels::craters::{self, Crater};
use crate::metrics::blobs::{disc_blobs, BlobSearch};
use crate::metrics::objects::{circles, match_craters, match_objects, Circle};
use crate::metrics::{macro_mean, ClassScores, ConfusionMatrix, DetectionScores};
use crate::product::check_plain_name;
use crate::raster::Image;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Mask(#[from] DatasetError),
    #[error("{}: {message}", .path.display())]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// What to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRequest {
    /// Kept as `evals/<name>.json` when run as a job; `None` scores without keeping.
    pub name: Option<String>,
    /// The true class mask (8-bit PNG).
    pub truth: PathBuf,
    /// The predicted class mask, the same size.
    pub predicted: PathBuf,
    /// Classes scored (default: one more than the largest value seen, at least 2).
    pub classes: Option<usize>,
    /// The truth value left out of the scores.
    pub ignore: u8,
    /// Only this box x, y, width, height (a held-out area); default the whole mask.
    pub region: Option<[u32; 4]>,
    pub craters: Option<CraterScoring>,
    /// Also the run that made the prediction, for the report.
    #[serde(default)]
    pub run: Option<String>,
}

/// Crater detection against a crater list: the predicted mask's components as circles, or
/// the discs that stand out in the crater class's probability map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CraterScoring {
    /// x,y,diameter in pixels of the full image.
    pub list: PathBuf,
    pub class: u8,
    /// The fraction of a crater's diameter its training disc covered.
    pub fill: f64,
    /// The smallest component taken as a crater, in pixels (mask components only).
    pub min_pixels: u64,
    /// Find craters as blobs in this map of the class's probability (the 16-bit PNG `areo
    /// infer --probabilities` writes, the mask's size) instead of as mask components.
    #[serde(default)]
    pub blobs: Option<BlobScoring>,
    /// Also write the craters found in the region here, as a crater list (x,y,diameter in
    /// pixels, one per line, `areo labels` reads it).
    #[serde(default)]
    pub found_out: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobScoring {
    pub probabilities: PathBuf,
    pub search: BlobSearch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub name: Option<String>,
    pub run: Option<String>,
    pub truth: PathBuf,
    pub predicted: PathBuf,
    pub classes: usize,
    pub region: [u32; 4],
    pub pixel: PixelScores,
    pub objects: Vec<ObjectScores>,
    pub craters: Option<DetectionScores>,
    /// How craters were found when blobs of a probability map (else mask components).
    #[serde(default)]
    pub crater_blobs: Option<BlobScoring>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelScores {
    pub scored: u64,
    pub accuracy: f64,
    pub mean_iou: f64,
    pub mean_f1: f64,
    pub per_class: Vec<ClassScores>,
    /// Rows: truth; columns: predicted.
    pub confusion: Vec<Vec<u64>>,
    pub confusion_normalised: Vec<Vec<f64>>,
}

/// The per-class table's columns, in [`ClassScores`] order, as every front end heads them.
pub const CLASS_SCORE_COLUMNS: [&str; 7] = [
    "class",
    "precision",
    "recall",
    "F1",
    "IoU",
    "support",
    "predicted",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectScores {
    pub class: usize,
    pub scores: DetectionScores,
}

impl EvalRequest {
    pub fn run(&self) -> Result<EvalReport, EvalError> {
        let (width, height, truth) = read_mask(&self.truth)?;
        let (pw, ph, predicted) = read_mask(&self.predicted)?;
        if (pw, ph) != (width, height) {
            return Err(EvalError::Invalid(format!(
                "{} is {pw} x {ph}, {} is {width} x {height}",
                self.predicted.display(),
                self.truth.display()
            )));
        }
        let [bx, by, bw, bh] = self.region.unwrap_or([0, 0, width, height]);
        if bw == 0 || bh == 0 || bx + bw > width || by + bh > height {
            return Err(EvalError::Invalid(format!(
                "box {bx},{by},{bw},{bh} is not inside the {width} x {height} masks"
            )));
        }
        let crop = |mask: &[u8]| -> Vec<u8> {
            (by..by + bh)
                .flat_map(|y| {
                    let start = (y * width + bx) as usize;
                    mask[start..start + bw as usize].to_vec()
                })
                .collect()
        };
        let craters = match &self.craters {
            Some(scoring) => Some(scoring.score(&predicted, width, [bx, by, bw, bh])?),
            None => None,
        };
        let (truth, predicted) = (crop(&truth), crop(&predicted));
        let seen = truth
            .iter()
            .chain(&predicted)
            .filter(|v| **v != self.ignore)
            .max()
            .map_or(1, |m| *m as usize + 1);
        let classes = self.classes.unwrap_or(seen.max(2));
        let mut matrix = ConfusionMatrix::new(classes);
        matrix
            .add(&truth, &predicted, Some(self.ignore))
            .map_err(EvalError::Invalid)?;
        let per_class = matrix.scores();
        let objects = (1..classes)
            .map(|class| ObjectScores {
                class,
                scores: match_objects(&truth, &predicted, bw as usize, class as u8),
            })
            .collect();
        Ok(EvalReport {
            name: self.name.clone(),
            run: self.run.clone(),
            truth: self.truth.clone(),
            predicted: self.predicted.clone(),
            classes,
            region: [bx, by, bw, bh],
            pixel: PixelScores {
                scored: matrix.total(),
                accuracy: matrix.accuracy(),
                mean_iou: macro_mean(&per_class, |s| s.iou),
                mean_f1: macro_mean(&per_class, |s| s.f1),
                per_class,
                confusion: matrix.counts.chunks(classes).map(<[u64]>::to_vec).collect(),
                confusion_normalised: matrix.normalised(),
            },
            objects,
            craters,
            crater_blobs: self.craters.as_ref().and_then(|c| c.blobs.clone()),
        })
    }

    /// Scores and keeps the report as `evals/<name>.json` in `evals_dir`.
    pub fn run_and_keep(&self, evals_dir: &Path) -> Result<EvalReport, EvalError> {
        let path = kept_path(evals_dir, self.name.as_deref()).map_err(EvalError::Invalid)?;
        let report = self.run()?;
        let bytes = serde_json::to_vec_pretty(&report).expect("reports serialise");
        write_atomically(&path, &bytes).map_err(|e| EvalError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(report)
    }
}

impl CraterScoring {
    /// Crater scores inside the region: the craters found in the whole predicted mask (so one
    /// cut by the region's edge is still whole) against the listed ones, each side keeping
    /// those whose centres lie in the region.
    fn score(
        &self,
        predicted: &[u8],
        width: u32,
        [bx, by, bw, bh]: [u32; 4],
    ) -> Result<DetectionScores, EvalError> {
        let file_error = |message: String| EvalError::File {
            path: self.list.clone(),
            message,
        };
        let text = std::fs::read_to_string(&self.list).map_err(|e| file_error(e.to_string()))?;
        let listed = craters::read(&self.list.display().to_string(), &text)
            .map_err(|e| EvalError::Invalid(e.to_string()))?;
        let inside = |x: f64, y: f64| {
            x >= bx as f64 && y >= by as f64 && x < (bx + bw) as f64 && y < (by + bh) as f64
        };
        let mut truth = Vec::new();
        for crater in listed {
            let Crater::Pixels { x, y, diameter } = crater else {
                return Err(file_error(
                    "craters in degrees need a projection; give x,y,diameter in pixels".into(),
                ));
            };
            if inside(x, y) {
                truth.push(Circle { x, y, diameter });
            }
        }
        let mut found = match &self.blobs {
            None => circles(
                predicted,
                width as usize,
                self.class,
                self.fill,
                self.min_pixels,
            ),
            Some(blobs) => blobs.circles(width, predicted.len() as u32 / width, self.fill)?,
        };
        found.retain(|c| inside(c.x, c.y));
        if let Some(path) = &self.found_out {
            let listed: Vec<Crater> = found
                .iter()
                .map(|c| Crater::Pixels {
                    x: c.x,
                    y: c.y,
                    diameter: c.diameter,
                })
                .collect();
            let labels = craters::to_labels("found craters", &listed, "", None)
                .expect("craters in pixels always become labels");
            let (text, _) = craters::write(&labels);
            write_atomically(path, text.as_bytes()).map_err(|e| EvalError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(match_craters(&found, &truth, 0.4))
    }
}

impl BlobScoring {
    /// The discs of the probability map, which must be `width` x `height`, with diameters
    /// divided by `fill` (the search itself is in crater diameters, so it is scaled to the
    /// painted discs first).
    fn circles(&self, width: u32, height: u32, fill: f64) -> Result<Vec<Circle>, EvalError> {
        let file_error = |message: String| EvalError::File {
            path: self.probabilities.clone(),
            message,
        };
        let map = Image::open(&self.probabilities).map_err(|e| file_error(e.to_string()))?;
        if map.bands != 1 {
            return Err(file_error(format!(
                "a probability map has one band, this has {}",
                map.bands
            )));
        }
        if (map.width, map.height) != (width, height) {
            return Err(file_error(format!(
                "the probability map is {} x {}, the masks {width} x {height}",
                map.width, map.height
            )));
        }
        let scale = map.depth.max();
        let probability: Vec<f32> = map.data.iter().map(|v| v / scale).collect();
        let search = BlobSearch {
            min_diameter: self.search.min_diameter * fill,
            max_diameter: self.search.max_diameter * fill,
            ..self.search
        };
        Ok(disc_blobs(&probability, width as usize, &search)
            .into_iter()
            .map(|blob| Circle {
                diameter: blob.circle.diameter / fill,
                ..blob.circle
            })
            .collect())
    }
}

/// A detector's crater list (`x,y,diameter[,score]`, as `areo infer` writes `craters.csv`)
/// scored against the true list by PyCDA's rule, as the U-Net's craters are: each side keeps
/// the craters whose centres lie in the region; found craters below `min_score` are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CraterListRequest {
    pub truth: PathBuf,
    pub found: PathBuf,
    pub region: Option<[u32; 4]>,
    pub min_score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CraterListReport {
    pub min_score: f64,
    pub region: Option<[u32; 4]>,
    pub craters: DetectionScores,
}

impl CraterListRequest {
    pub fn run(&self) -> Result<CraterListReport, EvalError> {
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(EvalError::Invalid(format!(
                "score threshold {}: expected a number between 0 and 1",
                self.min_score
            )));
        }
        let inside = |c: &Circle| {
            self.region.is_none_or(|[x, y, w, h]| {
                c.x >= x as f64 && c.y >= y as f64 && c.x < (x + w) as f64 && c.y < (y + h) as f64
            })
        };
        let truth: Vec<Circle> = read_circles(&self.truth)?
            .into_iter()
            .map(|(c, _)| c)
            .filter(inside)
            .collect();
        let found: Vec<Circle> = read_circles(&self.found)?
            .into_iter()
            .filter(|(c, score)| score.is_none_or(|s| s >= self.min_score) && inside(c))
            .map(|(c, _)| c)
            .collect();
        Ok(CraterListReport {
            min_score: self.min_score,
            region: self.region,
            craters: match_craters(&found, &truth, 0.4),
        })
    }
}

/// A pixel crater list's circles, each with its `score` column's value when the list has one.
fn read_circles(path: &Path) -> Result<Vec<(Circle, Option<f64>)>, EvalError> {
    let file_error = |message: String| EvalError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let listed = craters::read(&path.display().to_string(), &text)
        .map_err(|e| EvalError::Invalid(e.to_string()))?;
    // The same non-blank lines the reader took, for the score column it does not read.
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let score_column = lines.next().and_then(|(_, header)| {
        header
            .split(',')
            .position(|c| c.trim().eq_ignore_ascii_case("score"))
    });
    listed
        .into_iter()
        .zip(lines)
        .map(|(crater, (number, line))| {
            let Crater::Pixels { x, y, diameter } = crater else {
                return Err(file_error(
                    "craters in degrees need a projection; give x,y,diameter in pixels".into(),
                ));
            };
            let score = match score_column {
                None => None,
                Some(column) => {
                    let text = line.split(',').nth(column).unwrap_or("").trim();
                    let score = text.parse::<f64>().ok().filter(|s| s.is_finite());
                    Some(score.ok_or_else(|| {
                        file_error(format!(
                            "line {}: score: expected a number, found {text:?}",
                            number + 1
                        ))
                    })?)
                }
            };
            Ok((Circle { x, y, diameter }, score))
        })
        .collect()
}

/// A report kept in `evals/`: a segmentation's scores, or a detector's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeptReport {
    Pixels(EvalReport),
    Detections(DetectionReport),
}

impl KeptReport {
    pub fn name(&self) -> Option<&str> {
        match self {
            KeptReport::Pixels(report) => report.name.as_deref(),
            KeptReport::Detections(report) => report.name.as_deref(),
        }
    }

    pub fn run(&self) -> Option<&str> {
        match self {
            KeptReport::Pixels(report) => report.run.as_deref(),
            KeptReport::Detections(report) => report.run.as_deref(),
        }
    }

    pub fn read(path: &Path) -> Result<KeptReport, EvalError> {
        let bytes = std::fs::read(path).map_err(|e| EvalError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let problem = |e: serde_json::Error| EvalError::File {
            path: path.to_path_buf(),
            message: format!("not an evaluation report ({e})"),
        };
        // Read as the kind its keys say, so a damaged file's error names the field.
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(problem)?;
        if value.get("metrics").is_some() {
            serde_json::from_value(value).map(KeptReport::Detections)
        } else {
            serde_json::from_value(value).map(KeptReport::Pixels)
        }
        .map_err(problem)
    }
}

/// Every report kept in `evals_dir`, by name.
pub fn list_reports(evals_dir: &Path) -> Result<Vec<KeptReport>, EvalError> {
    let entries = match std::fs::read_dir(evals_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(EvalError::File {
                path: evals_dir.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths.iter().map(|path| KeptReport::read(path)).collect()
}

impl EvalReport {
    pub fn path(evals_dir: &Path, name: &str) -> PathBuf {
        evals_dir.join(format!("{name}.json"))
    }
}

/// Where a report of either kind named `name` is kept, the name checked first (before any
/// scoring is spent on it).
pub(crate) fn kept_path(evals_dir: &Path, name: Option<&str>) -> Result<PathBuf, String> {
    let name = name.ok_or("an evaluation job needs a name")?;
    check_plain_name("evaluation name", name).map_err(|e| e.to_string())?;
    Ok(EvalReport::path(evals_dir, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three true craters, two in the region; found: one match (distance 1.5/10 of its
    /// diameter), one too far off (5/10 > 0.4), one below the score threshold, one outside.
    #[test]
    fn a_found_crater_list_is_scored_by_pycdas_rule_above_the_score() {
        let dir = tempfile::tempdir().unwrap();
        let truth = dir.path().join("truth.csv");
        std::fs::write(&truth, "x,y,diameter\n10,10,10\n50,50,10\n500,500,8\n").unwrap();
        let found = dir.path().join("found.csv");
        std::fs::write(
            &found,
            "x,y,diameter,score\n11.5,10,10,0.9\n\n55,50,10,0.8\n10,10,10,0.2\n500,500,8,0.99\n",
        )
        .unwrap();
        let request = CraterListRequest {
            truth: truth.clone(),
            found: found.clone(),
            region: Some([0, 0, 100, 100]),
            min_score: 0.5,
        };
        let report = request.run().unwrap();
        assert_eq!(
            (
                report.craters.truth,
                report.craters.predicted,
                report.craters.matched
            ),
            (2, 2, 1)
        );
        assert_eq!(report.craters.f1, 0.5);
        std::fs::write(&found, "x,y,diameter,score\n1,1,4,high\n").unwrap();
        let error = request.run().unwrap_err().to_string();
        assert!(
            error.contains("found.csv: line 2: score: expected a number, found \"high\""),
            "{error}"
        );
    }

    fn disc_mask(width: u32, height: u32, discs: &[(f64, f64, f64)]) -> image::GrayImage {
        image::GrayImage::from_fn(width, height, |x, y| {
            let inside = discs
                .iter()
                .any(|(cx, cy, r)| (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r * r);
            image::Luma([u8::from(inside)])
        })
    }

    #[test]
    fn craters_on_the_regions_edge_count_by_their_centres() {
        let dir = tempfile::tempdir().unwrap();
        // Region x >= 40. Crater A (centre 44) reaches across the edge: found whole, matched.
        // Crater B (centre 35, outside) reaches into the region: neither side counts it.
        let craters = [(44.0, 20.0, 8.0), (35.0, 50.0, 8.0), (70.0, 30.0, 5.0)];
        let list = dir.path().join("craters.csv");
        let mut text = String::from("x,y,diameter\n");
        for (x, y, r) in craters {
            text.push_str(&format!("{x},{y},{}\n", 2.0 * r));
        }
        std::fs::write(&list, text).unwrap();
        let truth = dir.path().join("truth.png");
        let predicted = dir.path().join("predicted.png");
        disc_mask(100, 80, &craters).save(&truth).unwrap();
        // The prediction has A and B but misses the third crater.
        disc_mask(100, 80, &craters[..2]).save(&predicted).unwrap();
        let report = EvalRequest {
            name: None,
            truth,
            predicted,
            classes: Some(2),
            ignore: 255,
            region: Some([40, 0, 60, 80]),
            craters: Some(CraterScoring {
                list,
                class: 1,
                fill: 1.0,
                min_pixels: 4,
                blobs: None,
                found_out: None,
            }),
            run: None,
        }
        .run()
        .unwrap();
        let craters = report.craters.unwrap();
        assert_eq!(
            (craters.truth, craters.predicted, craters.matched),
            (2, 1, 1),
            "{craters:?}"
        );
        assert!((craters.precision - 1.0).abs() < 1e-12);
        assert!((craters.recall - 0.5).abs() < 1e-12);
    }

    /// Three listed craters: two touching (radius 7 at x 20 and 34) and a small one (radius 3)
    /// that the model saw only faintly (probability 0.4). The mask (probability >= 0.5) loses
    /// the faint one; the probability map's discs find all three.
    #[test]
    fn blobs_of_the_probability_map_split_touching_craters_and_find_faint_ones() {
        let dir = tempfile::tempdir().unwrap();
        let craters = [
            (20.0, 20.0, 7.0, 1.0),
            (34.0, 20.0, 7.0, 0.9),
            (60.0, 30.0, 3.0, 0.4),
        ];
        let list = dir.path().join("craters.csv");
        let mut text = String::from("x,y,diameter\n");
        for (x, y, r, _) in craters {
            text.push_str(&format!("{x},{y},{}\n", 2.0 * r));
        }
        std::fs::write(&list, text).unwrap();
        let (width, height) = (80u32, 48u32);
        let probability = |x: u32, y: u32| {
            craters
                .iter()
                .filter(|(cx, cy, r, _)| (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r * r)
                .map(|c| c.3)
                .fold(0.0f64, f64::max)
        };
        let map = dir.path().join("probability-1.png");
        image::ImageBuffer::<image::Luma<u16>, _>::from_fn(width, height, |x, y| {
            image::Luma([(probability(x, y) * 65535.0).round() as u16])
        })
        .save(&map)
        .unwrap();
        let mask = dir.path().join("mask.png");
        image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([u8::from(probability(x, y) >= 0.5)])
        })
        .save(&mask)
        .unwrap();
        let truth = dir.path().join("truth.png");
        let listed: Vec<(f64, f64, f64)> = craters.iter().map(|c| (c.0, c.1, c.2)).collect();
        disc_mask(width, height, &listed).save(&truth).unwrap();
        let found = dir.path().join("found.csv");
        let request = |blobs| EvalRequest {
            name: None,
            truth: truth.clone(),
            predicted: mask.clone(),
            classes: Some(2),
            ignore: 255,
            region: None,
            craters: Some(CraterScoring {
                list: list.clone(),
                class: 1,
                fill: 1.0,
                min_pixels: 4,
                blobs,
                found_out: Some(found.clone()),
            }),
            run: None,
        };
        let counts = |report: EvalReport| {
            let c = report.craters.unwrap();
            (c.truth, c.predicted, c.matched)
        };
        // Components: the touching pair split by its distance transform, the faint one lost.
        assert_eq!(counts(request(None).run().unwrap()), (3, 2, 2));
        let blobs = BlobScoring {
            probabilities: map.clone(),
            search: BlobSearch::default(),
        };
        let report = request(Some(blobs.clone())).run().unwrap();
        assert_eq!(report.crater_blobs.as_ref(), Some(&blobs));
        assert_eq!(counts(report), (3, 3, 3));
        // The found craters, as a list: centres exact, diameters on the radius grid.
        let text = std::fs::read_to_string(&found).unwrap();
        let mut rows: Vec<(f64, f64, f64)> = text
            .lines()
            .skip(1)
            .map(|line| {
                let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(text.lines().next(), Some("x,y,diameter"));
        for ((x, y, d), (tx, ty, r, _)) in rows.iter().zip(&craters) {
            assert_eq!((*x, *y), (*tx, *ty));
            assert!((d - 2.0 * r).abs() / (2.0 * r) < 0.12, "{d} for radius {r}");
        }

        // A map of another size, or not an image at all, is an error naming it.
        let small = dir.path().join("small.png");
        image::ImageBuffer::<image::Luma<u16>, _>::new(40, 48)
            .save(&small)
            .unwrap();
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"\x89PNG not really").unwrap();
        for (path, says) in [(&small, "is 40 x 48, the masks 80 x 48"), (&broken, "")] {
            let wrong = BlobScoring {
                probabilities: path.clone(),
                search: BlobSearch::default(),
            };
            let error = request(Some(wrong)).run().unwrap_err().to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains(says), "{error}");
        }
    }
}
