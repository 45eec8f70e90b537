//! COCO's box figures (AP@[.5:.95], AP50, AP75, AP and AR by size, AR at 1, 10 and 100) of
//! detections held in memory, by hotcoco (pycocotools' definitions; see ARCHITECTURE.md):
//! what a detector's validation pass reports each epoch.

use hotcoco::params::IouType;
use hotcoco::{COCOeval, COCO};
use serde_json::json;
use std::collections::BTreeMap;

/// A box on image `image` (0-based), of class id `class`, `[x0, y0, x1, y1]` in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageBox {
    pub image: usize,
    pub class: usize,
    pub bbox: [f64; 4],
    /// None for truth.
    pub score: Option<f64>,
}

fn coco_box(b: &[f64; 4]) -> [f64; 4] {
    [b[0], b[1], b[2] - b[0], b[3] - b[1]]
}

/// The summary figures by pycocotools' names (-1 where there is nothing to score) of
/// `found` against `truth` over `images` images and the class ids `classes`.
pub fn box_figures(
    truth: &[ImageBox],
    found: &[ImageBox],
    images: usize,
    classes: &[usize],
) -> Result<BTreeMap<String, f64>, String> {
    let dataset = json!({
        "images": (0..images).map(|i| json!({"id": i + 1})).collect::<Vec<_>>(),
        "categories": classes
            .iter()
            .map(|c| json!({"id": c, "name": format!("class {c}")}))
            .collect::<Vec<_>>(),
        "annotations": truth
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let bbox = coco_box(&t.bbox);
                json!({"id": i + 1, "image_id": t.image + 1, "category_id": t.class,
                       "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
            })
            .collect::<Vec<_>>(),
    });
    let dataset = serde_json::from_value(dataset).map_err(|e| e.to_string())?;
    let truth = COCO::from_dataset(dataset);
    let results: Vec<hotcoco::Annotation> = found
        .iter()
        .map(|d| {
            serde_json::from_value(json!({
                "image_id": d.image + 1, "category_id": d.class,
                "bbox": coco_box(&d.bbox), "score": d.score.unwrap_or(1.0)
            }))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let found = truth.load_res_anns(results).map_err(|e| e.to_string())?;
    let mut evaluation = COCOeval::new(truth, found, IouType::Bbox);
    evaluation.evaluate().map_err(|e| e.to_string())?;
    evaluation.accumulate();
    evaluation.summarize_lines();
    Ok(evaluation.get_results(None, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(image: usize, bbox: [f64; 4], score: Option<f64>) -> ImageBox {
        ImageBox {
            image,
            class: 1,
            bbox,
            score,
        }
    }

    /// pipeline::detections' hand-computed case, in memory: two craters found exactly at
    /// 0.9 and 0.7 with a false box at 0.8 between; and no detections at all.
    #[test]
    fn in_memory_figures_are_the_hand_computed_ones() {
        let truth = [
            object(0, [10.0, 10.0, 30.0, 30.0], None),
            object(0, [60.0, 60.0, 80.0, 80.0], None),
        ];
        let found = [
            object(0, [10.0, 10.0, 30.0, 30.0], Some(0.9)),
            object(0, [30.0, 60.0, 40.0, 70.0], Some(0.8)),
            object(0, [60.0, 60.0, 80.0, 80.0], Some(0.7)),
        ];
        let figures = box_figures(&truth, &found, 1, &[1]).unwrap();
        let expected = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        assert!((figures["AP50"] - expected).abs() < 1e-12, "{figures:?}");
        assert_eq!(figures["AR100"], 1.0);
        let none = box_figures(&truth, &[], 1, &[1]).unwrap();
        assert_eq!(none["AP50"], 0.0, "{none:?}");
    }
}
