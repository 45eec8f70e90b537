//! The detector's losses: sigmoid focal loss over every counted anchor and class (Lin et al.,
//! as fastai's SSD and torchvision's `sigmoid_focal_loss` define it), and L1 on the offsets
//! of the anchors that learn an object; both summed and divided by the number of those
//! anchors (at least 1).

use candle_core::{Device, Result, Tensor};

/// A batch's matched targets on the device.
pub struct Targets {
    /// (N, A, K) one-hot over the foreground classes.
    pub classes: Tensor,
    /// (N, A, 1): 1 for anchors the class loss counts.
    pub counted: Tensor,
    /// (N, A, 4) encoded offsets.
    pub offsets: Tensor,
    /// (N, A, 1): 1 for anchors that learn an object.
    pub positive: Tensor,
    /// Known on the host.
    pub positives: usize,
}

impl Targets {
    pub fn new(
        matched: &[super::anchors::Matched],
        anchors: usize,
        foreground: usize,
        device: &Device,
    ) -> Result<Self> {
        let n = matched.len();
        let gather = |pick: &dyn Fn(&super::anchors::Matched) -> &Vec<f32>| -> Vec<f32> {
            matched
                .iter()
                .flat_map(|m| pick(m).iter().copied())
                .collect()
        };
        Ok(Targets {
            classes: Tensor::from_vec(gather(&|m| &m.classes), (n, anchors, foreground), device)?,
            counted: Tensor::from_vec(gather(&|m| &m.counted), (n, anchors, 1), device)?,
            offsets: Tensor::from_vec(gather(&|m| &m.offsets), (n, anchors, 4), device)?,
            positive: Tensor::from_vec(gather(&|m| &m.positive), (n, anchors, 1), device)?,
            positives: matched.iter().map(|m| m.positives).sum(),
        })
    }
}

/// Sum over counted anchors and classes of alpha_t (1 - p_t)^gamma BCE(x, t), with p the
/// sigmoid of the logit, p_t = p for a positive and 1 - p otherwise, alpha_t = alpha for a
/// positive and 1 - alpha otherwise. The cross-entropy is the stable max(x, 0) - x t +
/// ln(1 + e^-|x|).
pub fn focal_sum(logits: &Tensor, targets: &Targets, alpha: f64, gamma: f64) -> Result<Tensor> {
    let t = &targets.classes;
    let bce = ((logits.relu()? - (logits * t)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let p = candle_nn::ops::sigmoid(logits)?;
    let not_t = t.affine(-1.0, 1.0)?;
    let mut terms = bce;
    if gamma != 0.0 {
        // 1 - p_t = p (1 - t) + (1 - p) t.
        let miss = ((&p * &not_t)? + (p.affine(-1.0, 1.0)? * t)?)?;
        let factor = if gamma == 1.0 {
            miss
        } else {
            miss.powf(gamma)?
        };
        terms = (terms * factor)?;
    }
    let alpha_t = t.affine(2.0 * alpha - 1.0, 1.0 - alpha)?;
    (terms * alpha_t)?
        .broadcast_mul(&targets.counted)?
        .sum_all()
}

/// Sum of |predicted - target| over the offsets of positive anchors.
pub fn l1_sum(offsets: &Tensor, targets: &Targets) -> Result<Tensor> {
    (offsets - &targets.offsets)?
        .abs()?
        .broadcast_mul(&targets.positive)?
        .sum_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::models::ssd::anchors::Matched;
    use candle_core::{DType, Var};

    fn targets(dtype: DType) -> Targets {
        // One image, three anchors, two classes: anchor 0 is class 2, anchor 1 background,
        // anchor 2 left out.
        let matched = Matched {
            classes: vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            counted: vec![1.0, 1.0, 0.0],
            offsets: vec![0.5, -0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            positive: vec![1.0, 0.0, 0.0],
            positives: 1,
        };
        let t = Targets::new(&[matched], 3, 2, &Device::Cpu).unwrap();
        let cast = |x: &Tensor| x.to_dtype(dtype).unwrap();
        Targets {
            classes: cast(&t.classes),
            counted: cast(&t.counted),
            offsets: cast(&t.offsets),
            positive: cast(&t.positive),
            positives: t.positives,
        }
    }

    const LOGITS: [f64; 6] = [0.3, 1.2, -2.0, 0.7, 5.0, -5.0];

    #[test]
    fn the_focal_sum_is_the_hand_computed_one() {
        let t = targets(DType::F64);
        let x = Tensor::from_vec(LOGITS.to_vec(), (1, 3, 2), &Device::Cpu).unwrap();
        let got = focal_sum(&x, &t, 0.25, 2.0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let term = |x: f64, positive: bool| {
            let p = sigmoid(x);
            let (p_t, alpha_t) = if positive { (p, 0.25) } else { (1.0 - p, 0.75) };
            -alpha_t * (1.0 - p_t).powi(2) * p_t.ln()
        };
        // Anchor 2 is not counted.
        let want = term(0.3, false) + term(1.2, true) + term(-2.0, false) + term(0.7, false);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let offsets = Tensor::zeros((1, 3, 4), DType::F64, &Device::Cpu).unwrap();
        let l1 = l1_sum(&offsets, &t).unwrap().to_scalar::<f64>().unwrap();
        assert_eq!(l1, 2.0, "only anchor 0's offsets count");
    }

    /// The analytic gradient of the focal sum against central finite differences, for
    /// gamma 0 (plain cross-entropy), 1 (the original project's) and 2 (RetinaNet's).
    #[test]
    fn focal_gradients_match_finite_differences() {
        let t = targets(DType::F64);
        for gamma in [0.0, 1.0, 2.0] {
            let value = |values: &[f64]| -> f64 {
                let x = Tensor::from_vec(values.to_vec(), (1, 3, 2), &Device::Cpu).unwrap();
                focal_sum(&x, &t, 0.25, gamma)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let var = Var::from_vec(LOGITS.to_vec(), (1, 3, 2), &Device::Cpu).unwrap();
            let grads = focal_sum(var.as_tensor(), &t, 0.25, gamma)
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
            for i in 0..LOGITS.len() {
                let (mut up, mut down) = (LOGITS.to_vec(), LOGITS.to_vec());
                up[i] += 1e-6;
                down[i] -= 1e-6;
                let numeric = (value(&up) - value(&down)) / 2e-6;
                assert!(
                    (numeric - analytic[i]).abs() < 1e-7,
                    "gamma {gamma} logit {i}: numeric {numeric}, analytic {}",
                    analytic[i]
                );
            }
        }
    }
}
