//! Scores of a segmentation against the truth: pixel confusion matrices and per-class
//! precision, recall, F1 and IoU; objects (connected components matched one-to-one at
//! IoU >= 0.5); craters (components as circles, or discs standing out in a probability map,
//! matched to a crater list by PyCDA's rule).
//!
//! Zero divisions give 0, as scikit-learn's `precision_recall_fscore_support` and
//! `jaccard_score` do by default: a class that is neither in the truth nor predicted scores
//! 0 everywhere, and its `support` of 0 says why.

pub mod blobs;
pub mod coco;
pub mod objects;

use serde::{Deserialize, Serialize};

/// Pixel counts: row = true class, column = predicted class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub classes: usize,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub iou: f64,
    /// Pixels of this class in the truth.
    pub support: u64,
    /// Pixels predicted as this class.
    pub predicted: u64,
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

impl ConfusionMatrix {
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Counts pixel pairs, leaving out pixels whose truth is `ignore`. A value that is no
    /// class is an error naming it.
    pub fn add(
        &mut self,
        truth: &[u8],
        predicted: &[u8],
        ignore: Option<u8>,
    ) -> Result<(), String> {
        if truth.len() != predicted.len() {
            return Err(format!(
                "truth has {} pixels, the prediction {}",
                truth.len(),
                predicted.len()
            ));
        }
        for (&t, &p) in truth.iter().zip(predicted) {
            if Some(t) == ignore {
                continue;
            }
            let (t, p) = (t as usize, p as usize);
            if t >= self.classes || p >= self.classes {
                return Err(format!(
                    "class {} is outside the {} classes scored",
                    t.max(p),
                    self.classes
                ));
            }
            self.counts[t * self.classes + p] += 1;
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &ConfusionMatrix) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn accuracy(&self) -> f64 {
        ratio(
            (0..self.classes).map(|c| self.get(c, c)).sum(),
            self.total(),
        )
    }

    pub fn scores(&self) -> Vec<ClassScores> {
        (0..self.classes)
            .map(|c| {
                let tp = self.get(c, c);
                let support: u64 = (0..self.classes).map(|p| self.get(c, p)).sum();
                let predicted: u64 = (0..self.classes).map(|t| self.get(t, c)).sum();
                let (fp, fn_) = (predicted - tp, support - tp);
                ClassScores {
                    class: c,
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    f1: ratio(2 * tp, 2 * tp + fp + fn_),
                    iou: ratio(tp, tp + fp + fn_),
                    support,
                    predicted,
                }
            })
            .collect()
    }

    /// Each row divided by its sum (rows of an absent class stay 0).
    pub fn normalised(&self) -> Vec<Vec<f64>> {
        (0..self.classes)
            .map(|t| {
                let row: u64 = (0..self.classes).map(|p| self.get(t, p)).sum();
                (0..self.classes)
                    .map(|p| ratio(self.get(t, p), row))
                    .collect()
            })
            .collect()
    }
}

/// The mean over classes of a score (scikit-learn's macro average over all classes).
pub fn macro_mean(scores: &[ClassScores], pick: impl Fn(&ClassScores) -> f64) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().map(pick).sum::<f64>() / scores.len() as f64
}

/// The original project's definition for comparison: IoU per class computed on each image
/// alone, then averaged over the images where the class is in the truth or predicted.
pub fn per_image_mean_iou(images: &[ConfusionMatrix], classes: usize) -> Vec<f64> {
    (0..classes)
        .map(|c| {
            let values: Vec<f64> = images
                .iter()
                .map(|m| m.scores().swap_remove(c))
                .filter(|s| s.support > 0 || s.predicted > 0)
                .map(|s| s.iou)
                .collect();
            if values.is_empty() {
                0.0
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        })
        .collect()
}

/// Precision, recall and F1 of matched detections.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectionScores {
    pub predicted: usize,
    pub truth: usize,
    pub matched: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl DetectionScores {
    pub fn new(predicted: usize, truth: usize, matched: usize) -> Self {
        let precision = ratio(matched as u64, predicted as u64);
        let recall = ratio(matched as u64, truth as u64);
        DetectionScores {
            predicted,
            truth,
            matched,
            precision,
            recall,
            f1: ratio(2 * matched as u64, (predicted + truth) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// truth 0 0 1 1 2 2 255, predicted 0 1 1 1 0 2 2: by hand,
    /// class 0: tp 1, fp 1, fn 1; class 1: tp 2, fp 1, fn 0; class 2: tp 1, fp 0, fn 1.
    #[test]
    fn scores_match_a_hand_computed_matrix() {
        let mut matrix = ConfusionMatrix::new(4);
        matrix
            .add(&[0, 0, 1, 1, 2, 2, 255], &[0, 1, 1, 1, 0, 2, 2], Some(255))
            .unwrap();
        assert_eq!(matrix.total(), 6);
        assert_eq!(matrix.get(0, 1), 1);
        assert_eq!(matrix.get(2, 0), 1);
        let scores = matrix.scores();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(scores[0].precision, 0.5) && close(scores[0].recall, 0.5));
        assert!(close(scores[0].iou, 1.0 / 3.0) && close(scores[0].f1, 0.5));
        assert!(close(scores[1].precision, 2.0 / 3.0) && close(scores[1].recall, 1.0));
        assert!(close(scores[1].f1, 0.8) && close(scores[1].iou, 2.0 / 3.0));
        assert!(close(scores[2].precision, 1.0) && close(scores[2].recall, 0.5));
        assert!(close(scores[2].f1, 2.0 / 3.0) && close(scores[2].iou, 0.5));
        // Class 3 is absent from truth and prediction: 0 everywhere, support 0.
        assert_eq!(scores[3].support, 0);
        assert_eq!(
            (scores[3].precision, scores[3].f1, scores[3].iou),
            (0.0, 0.0, 0.0)
        );
        assert!(close(matrix.accuracy(), 4.0 / 6.0));
        assert_eq!(matrix.normalised()[1], vec![0.0, 1.0, 0.0, 0.0]);
        assert!(close(matrix.normalised()[0][1], 0.5));
        assert!(close(
            macro_mean(&scores, |s| s.iou),
            (1.0 / 3.0 + 2.0 / 3.0 + 0.5) / 4.0
        ));
    }

    #[test]
    fn a_value_outside_the_classes_is_an_error() {
        let mut matrix = ConfusionMatrix::new(2);
        let error = matrix.add(&[0, 5], &[0, 1], None).unwrap_err();
        assert!(error.contains("class 5"), "{error}");
        assert!(matrix
            .add(&[0], &[0, 1], None)
            .unwrap_err()
            .contains("1 pixels"));
    }

    #[test]
    fn per_image_iou_averages_only_where_the_class_appears() {
        let mut a = ConfusionMatrix::new(2);
        a.add(&[0, 0, 1, 1], &[0, 0, 1, 0], None).unwrap(); // class 1 IoU 1/2
        let mut b = ConfusionMatrix::new(2);
        b.add(&[0, 0, 0, 0], &[0, 0, 0, 0], None).unwrap(); // class 1 absent
        let means = per_image_mean_iou(&[a, b], 2);
        assert!((means[1] - 0.5).abs() < 1e-12);
        assert!((means[0] - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
    }
}
