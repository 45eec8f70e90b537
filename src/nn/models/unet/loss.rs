//! Pixel losses for segmentation. candle's `cross_entropy` takes (N, C) logits only and has
//! no class weights or ignore index, so these are written here.

use crate::nn::config::LossKind;
use candle_core::{Device, Result, Tensor};

/// A batch of class masks in the forms the losses need.
pub struct Targets {
    /// Class per pixel (N, 1, H, W), u32; ignored pixels hold 0.
    pub classes: Tensor,
    /// Weight per pixel (N, 1, H, W): its class's weight, 0 where ignored.
    pub weights: Tensor,
    /// One-hot (N, C, H, W), all 0 where ignored.
    pub one_hot: Tensor,
    /// 1 where a pixel counts, 0 where ignored (N, 1, H, W).
    pub valid: Tensor,
    /// Sum of `weights`, known on the host (no device round trip per step).
    pub weight_total: f64,
}

impl Targets {
    /// From masks laid out (N, H, W). A value at or above `classes` that is not the ignore
    /// index is an error naming the value.
    pub fn new(
        masks: &[u8],
        shape: (usize, usize, usize),
        classes: usize,
        class_weights: Option<&[f32]>,
        ignore_index: Option<u8>,
        device: &Device,
    ) -> Result<Self> {
        let (n, h, w) = shape;
        let plane = h * w;
        let mut class = Vec::with_capacity(masks.len());
        let mut weight = Vec::with_capacity(masks.len());
        let mut valid = Vec::with_capacity(masks.len());
        let mut one_hot = vec![0f32; n * classes * plane];
        for (i, &value) in masks.iter().enumerate() {
            if Some(value) == ignore_index {
                class.push(0u32);
                weight.push(0f32);
                valid.push(0f32);
                continue;
            }
            let c = value as usize;
            if c >= classes {
                candle_core::bail!(
                    "mask value {value} is not a class (the model has {classes}) and not the \
                     ignore index"
                )
            }
            class.push(value as u32);
            weight.push(class_weights.map_or(1.0, |weights| weights[c]));
            valid.push(1.0);
            let (image, pixel) = (i / plane, i % plane);
            one_hot[(image * classes + c) * plane + pixel] = 1.0;
        }
        let weight_total = weight.iter().map(|w| *w as f64).sum();
        Ok(Targets {
            weight_total,
            classes: Tensor::from_vec(class, (n, 1, h, w), device)?,
            weights: Tensor::from_vec(weight, (n, 1, h, w), device)?,
            one_hot: Tensor::from_vec(one_hot, (n, classes, h, w), device)?,
            valid: Tensor::from_vec(valid, (n, 1, h, w), device)?,
        })
    }
}

/// Weighted mean cross-entropy over the pixels that count, PyTorch's definition with
/// `weight` and `ignore_index`: sum(w_i * -log p_i(y_i)) / sum(w_i). A batch in which no
/// pixel counts gives 0.
pub fn cross_entropy(logits: &Tensor, targets: &Targets) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&targets.classes, 1)?;
    let sum = (picked * &targets.weights)?.sum_all()?;
    if targets.weight_total <= 0.0 {
        return sum.zeros_like();
    }
    sum.neg()? / targets.weight_total
}

/// Soft Dice loss, 1 minus the mean over classes of (2|P∩Y| + 1) / (|P| + |Y| + 1), with
/// P the softmax and ignored pixels left out of both sets.
pub fn dice(logits: &Tensor, targets: &Targets) -> Result<Tensor> {
    let p = candle_nn::ops::softmax(logits, 1)?.broadcast_mul(&targets.valid)?;
    let y = &targets.one_hot;
    let per_class = |t: &Tensor| -> Result<Tensor> { t.sum(3)?.sum(2)?.sum(0) };
    let intersection = per_class(&(&p * y)?)?;
    let cardinality = (per_class(&p)? + per_class(y)?)?;
    let score = ((intersection * 2.0)? + 1.0)?.div(&(cardinality + 1.0)?)?;
    score.mean_all()?.neg()? + 1.0
}

pub fn loss(kind: LossKind, logits: &Tensor, targets: &Targets) -> Result<Tensor> {
    match kind {
        LossKind::CrossEntropy => cross_entropy(logits, targets),
        LossKind::Dice => dice(logits, targets),
        LossKind::CrossEntropyDice => cross_entropy(logits, targets)? + dice(logits, targets)?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};

    fn logits_and_targets() -> (Vec<f32>, Vec<u8>) {
        // N=1, C=3, 2x2 pixels.
        let logits = vec![
            1.0, -0.5, 0.2, 0.0, //
            0.3, 0.8, -1.0, 0.5, //
            -0.2, 0.1, 0.4, 2.0,
        ];
        let masks = vec![0, 1, 255, 2];
        (logits, masks)
    }

    #[test]
    fn cross_entropy_matches_the_hand_computed_weighted_mean() {
        let (logits, masks) = logits_and_targets();
        let weights = [1.0f32, 2.0, 0.5];
        let device = Device::Cpu;
        let targets =
            Targets::new(&masks, (1, 2, 2), 3, Some(&weights), Some(255), &device).unwrap();
        let x = Tensor::from_vec(logits.clone(), (1, 3, 2, 2), &device).unwrap();
        let got = cross_entropy(&x, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let nll = |pixel: usize, class: usize| -> f64 {
            let z: Vec<f64> = (0..3).map(|c| logits[c * 4 + pixel] as f64).collect();
            let sum: f64 = z.iter().map(|v| v.exp()).sum();
            -(z[class].exp() / sum).ln()
        };
        // Pixel 2 is ignored.
        let want = (1.0 * nll(0, 0) + 2.0 * nll(1, 1) + 0.5 * nll(3, 2)) / 3.5;
        assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn a_mask_value_that_is_no_class_is_an_error() {
        let error = Targets::new(&[0, 7, 0, 0], (1, 2, 2), 3, None, Some(255), &Device::Cpu)
            .err()
            .unwrap();
        assert!(error.to_string().contains("mask value 7"), "{error}");
    }

    /// The analytic gradients of both losses against central finite differences.
    #[test]
    fn loss_gradients_match_finite_differences() {
        let (logits, masks) = logits_and_targets();
        let device = Device::Cpu;
        let targets = Targets::new(
            &masks,
            (1, 2, 2),
            3,
            Some(&[1.0, 2.0, 0.5]),
            Some(255),
            &device,
        )
        .unwrap();
        for kind in [
            LossKind::CrossEntropy,
            LossKind::Dice,
            LossKind::CrossEntropyDice,
        ] {
            let x64: Vec<f64> = logits.iter().map(|v| *v as f64).collect();
            let var = Var::from_vec(x64.clone(), (1, 3, 2, 2), &device).unwrap();
            let t64 = Targets {
                classes: targets.classes.clone(),
                weights: targets.weights.to_dtype(DType::F64).unwrap(),
                one_hot: targets.one_hot.to_dtype(DType::F64).unwrap(),
                valid: targets.valid.to_dtype(DType::F64).unwrap(),
                weight_total: targets.weight_total,
            };
            let value = |values: &[f64]| -> f64 {
                let t = Tensor::from_vec(values.to_vec(), (1, 3, 2, 2), &device).unwrap();
                loss(kind, &t, &t64).unwrap().to_scalar::<f64>().unwrap()
            };
            let grads = loss(kind, var.as_tensor(), &t64)
                .unwrap()
                .backward()
                .unwrap();
            let analytic = grads
                .get(&var)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for i in 0..x64.len() {
                let (mut up, mut down) = (x64.clone(), x64.clone());
                up[i] += 1e-5;
                down[i] -= 1e-5;
                let numeric = (value(&up) - value(&down)) / 2e-5;
                assert!(
                    (numeric - analytic[i]).abs() < 1e-6,
                    "{kind:?} logit {i}: numeric {numeric}, analytic {}",
                    analytic[i]
                );
            }
        }
    }
}
