//! AdamW with parameter groups and fastai's one-cycle schedule. candle's AdamW has neither
//! groups (so it decays batch-norm parameters) nor state that can be saved and restored.

use super::kernels;
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// Which group a parameter is in: the encoder can be frozen or given a lower rate; biases
/// and batch-norm parameters take no weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub encoder: bool,
    pub decay: bool,
}

impl Group {
    /// By name: `encoder.*` is the encoder; only convolution weights are decayed.
    pub fn of(name: &str, var: &Var) -> Group {
        Group {
            encoder: name.starts_with("encoder."),
            decay: name.ends_with(".weight") && var.rank() == 4,
        }
    }
}

pub struct AdamW {
    params: Vec<(String, Var, Group)>,
    /// First and second moments, by parameter name.
    moments: HashMap<String, (Tensor, Tensor)>,
    pub step: u64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// The rates for one step.
#[derive(Debug, Clone, Copy)]
pub struct StepRates {
    pub lr: f64,
    /// The encoder's rate as a fraction of `lr`; 0 leaves it untouched (frozen).
    pub encoder_factor: f64,
    pub beta1: f64,
}

impl AdamW {
    /// Over the trainable variables (batch-norm running statistics get no gradient and are
    /// left out by name).
    pub fn new(vars: Vec<(String, Var)>, weight_decay: f64) -> Self {
        let mut params: Vec<(String, Var, Group)> = vars
            .into_iter()
            .filter(|(name, _)| !name.ends_with(".running_mean") && !name.ends_with(".running_var"))
            .map(|(name, var)| {
                let group = Group::of(&name, &var);
                (name, var, group)
            })
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        AdamW {
            params,
            moments: HashMap::new(),
            step: 0,
            beta2: 0.99,
            eps: 1e-5,
            weight_decay,
        }
    }

    /// One update: decoupled weight decay, then the bias-corrected Adam step; in place on the
    /// CPU (areo's kernels), as tensor ops elsewhere.
    pub fn step(&mut self, grads: &GradStore, rates: StepRates) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let correction1 = 1.0 - rates.beta1.powi(t);
        let correction2 = 1.0 - self.beta2.powi(t);
        for (name, var, group) in &self.params {
            let lr = if group.encoder {
                rates.lr * rates.encoder_factor
            } else {
                rates.lr
            };
            if lr == 0.0 {
                continue;
            }
            let Some(grad) = grads.get(var) else { continue };
            let weight_decay = if group.decay { self.weight_decay } else { 0.0 };
            if kernels::applies_to(var.as_tensor()) {
                let (m, v) = match self.moments.entry(name.clone()) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert((var.zeros_like()?, var.zeros_like()?)),
                };
                let grad = grad.contiguous()?;
                let first = kernels::adamw::MomentUpdate {
                    decay: rates.beta1 as f32,
                    squared: false,
                };
                let second = kernels::adamw::MomentUpdate {
                    decay: self.beta2 as f32,
                    squared: true,
                };
                m.inplace_op2(&grad, &first)?;
                v.inplace_op2(&grad, &second)?;
                let update = kernels::adamw::ParameterUpdate {
                    lr: lr as f32,
                    weight_decay: weight_decay as f32,
                    correction1: correction1 as f32,
                    correction2: correction2 as f32,
                    eps: self.eps as f32,
                };
                var.as_tensor().inplace_op3(m, v, &update)?;
                continue;
            }
            let (m, v) = match self.moments.get(name) {
                Some((m, v)) => (
                    ((m * rates.beta1)? + (grad * (1.0 - rates.beta1))?)?,
                    ((v * self.beta2)? + (grad.sqr()? * (1.0 - self.beta2))?)?,
                ),
                None => (
                    (grad * (1.0 - rates.beta1))?,
                    (grad.sqr()? * (1.0 - self.beta2))?,
                ),
            };
            let update = ((&m / correction1)? / ((&v / correction2)?.sqrt()? + self.eps)?)?;
            let decayed = if weight_decay > 0.0 {
                (var.as_tensor() * (1.0 - lr * weight_decay))?
            } else {
                var.as_tensor().clone()
            };
            var.set(&(decayed - (update * lr)?)?)?;
            self.moments.insert(name.clone(), (m.detach(), v.detach()));
        }
        Ok(())
    }

    /// The moments to save, as `adam.m.NAME` and `adam.v.NAME`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, (m, v)) in &self.moments {
            out.push((format!("adam.m.{name}"), m.clone()));
            out.push((format!("adam.v.{name}"), v.clone()));
        }
        out
    }

    /// Restores moments saved by `state`, checking each against its parameter's shape.
    pub fn restore(&mut self, step: u64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        self.step = step;
        self.moments.clear();
        for (name, var, _) in &self.params {
            let m = tensors.get(&format!("adam.m.{name}"));
            let v = tensors.get(&format!("adam.v.{name}"));
            match (m, v) {
                (Some(m), Some(v)) => {
                    if m.dims() != var.dims() || v.dims() != var.dims() {
                        candle_core::bail!("optimiser state for {name} has the wrong shape")
                    }
                    let device = var.device();
                    // Copies: the update may write the moments in place.
                    let (m, v) = (m.to_device(device)?.copy()?, v.to_device(device)?.copy()?);
                    self.moments.insert(name.clone(), (m, v));
                }
                (None, None) => {}
                _ => candle_core::bail!("optimiser state for {name} is half missing"),
            }
        }
        Ok(())
    }
}

/// fastai's `fit_one_cycle`: the rate rises from lr/25 to lr over the first `pct_start` of
/// the steps and falls to lr/1e5 over the rest, both along half cosines, while beta1 moves
/// the other way between 0.95 and 0.85.
#[derive(Debug, Clone, Copy)]
pub struct OneCycle {
    pub max_lr: f64,
    pub total_steps: u64,
    pub pct_start: f64,
}

impl OneCycle {
    const DIV: f64 = 25.0;
    const DIV_FINAL: f64 = 1e5;
    const MOMENTUM: (f64, f64) = (0.95, 0.85);

    /// Learning rate and beta1 for a step counted from 0.
    pub fn at(&self, step: u64) -> (f64, f64) {
        let warm = (self.total_steps as f64 * self.pct_start).round();
        let step = step as f64;
        let anneal = |from: f64, to: f64, fraction: f64| {
            to + (from - to) / 2.0 * (1.0 + (std::f64::consts::PI * fraction.clamp(0.0, 1.0)).cos())
        };
        let (high, low) = Self::MOMENTUM;
        if step < warm {
            let fraction = step / warm;
            (
                anneal(self.max_lr / Self::DIV, self.max_lr, fraction),
                anneal(high, low, fraction),
            )
        } else {
            let rest = (self.total_steps as f64 - warm).max(1.0);
            let fraction = (step - warm) / rest;
            (
                anneal(self.max_lr, self.max_lr / Self::DIV_FINAL, fraction),
                anneal(low, high, fraction),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn one_cycle_rises_to_the_peak_then_anneals() {
        let schedule = OneCycle {
            max_lr: 1e-2,
            total_steps: 100,
            pct_start: 0.25,
        };
        let (lr0, beta0) = schedule.at(0);
        assert!((lr0 - 4e-4).abs() < 1e-12 && (beta0 - 0.95).abs() < 1e-12);
        let (peak, beta_peak) = schedule.at(25);
        assert!((peak - 1e-2).abs() < 1e-12 && (beta_peak - 0.85).abs() < 1e-12);
        // Halfway through the warm-up the half cosine is at its mean.
        let (mid, _) = schedule.at(12);
        let want = 4e-4 + (1e-2 - 4e-4) / 2.0 * (1.0 - (std::f64::consts::PI * 12.0 / 25.0).cos());
        assert!((mid - want).abs() < 1e-12);
        let (end, beta_end) = schedule.at(100);
        assert!((end - 1e-7).abs() < 1e-15 && (beta_end - 0.95).abs() < 1e-12);
        let rates: Vec<f64> = (25..=100).map(|s| schedule.at(s).0).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
    }

    /// Two steps by hand (in f64): m, v, bias correction and decoupled decay, checked on
    /// variables of `dtype` to within `tolerance`.
    fn adamw_matches_the_hand_computed_update(dtype: DType, tolerance: f64) {
        let device = Device::Cpu;
        let weight = Var::from_vec(vec![1.0f64, -2.0], (1, 2, 1, 1), &device).unwrap();
        let weight = Var::from_tensor(&weight.to_dtype(dtype).unwrap()).unwrap();
        let bias = Var::from_tensor(
            &Tensor::new(&[0.5f64], &device)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let mut optimiser = AdamW::new(
            vec![
                ("head.weight".into(), weight.clone()),
                ("head.bias".into(), bias.clone()),
            ],
            0.1,
        );
        let rates = StepRates {
            lr: 0.01,
            encoder_factor: 1.0,
            beta1: 0.9,
        };
        let (mut w, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        let mut b = 0.5f64;
        let (mut mb, mut vb) = (0.0f64, 0.0f64);
        for t in 1..=2 {
            // loss = sum(w^2) + 3 b: gradients 2w and 3.
            let loss = (weight.as_tensor().sqr().unwrap().sum_all().unwrap()
                + (bias.as_tensor() * 3.0).unwrap().sum_all().unwrap())
            .unwrap();
            optimiser.step(&loss.backward().unwrap(), rates).unwrap();
            let (c1, c2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.99f64.powi(t));
            for i in 0..2 {
                let g = 2.0 * w[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.99 * v[i] + 0.01 * g * g;
                w[i] = w[i] * (1.0 - 0.01 * 0.1) - 0.01 * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-5);
            }
            mb = 0.9 * mb + 0.1 * 3.0;
            vb = 0.99 * vb + 0.01 * 9.0;
            b -= 0.01 * (mb / c1) / ((vb / c2).sqrt() + 1e-5);
        }
        let values = |t: &Tensor| {
            let t = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
            t.to_vec1::<f64>().unwrap()
        };
        let got = values(weight.as_tensor());
        assert!(
            (got[0] - w[0]).abs() < tolerance && (got[1] - w[1]).abs() < tolerance,
            "{got:?} {w:?}"
        );
        let got_b = values(bias.as_tensor())[0];
        assert!(
            (got_b - b).abs() < tolerance,
            "bias is not decayed: {got_b} vs {b}"
        );
    }

    /// f64 runs candle's tensor ops.
    #[test]
    fn adamw_as_tensor_ops_matches_the_hand_computed_update() {
        adamw_matches_the_hand_computed_update(DType::F64, 1e-12);
    }

    /// f32 on the CPU runs areo's in-place kernels (unless AREO_KERNELS=candle).
    #[test]
    fn adamw_in_place_matches_the_hand_computed_update() {
        adamw_matches_the_hand_computed_update(DType::F32, 1e-6);
    }
}
