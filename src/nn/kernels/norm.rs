//! Batch norm in training mode over f32 NCHW tensors, with an optional ReLU fused in: one
//! parallel pass for the batch statistics, one for the normalised output, and a backward that
//! computes the input, scale and shift gradients together in two passes (per-channel sums,
//! then the input gradient) instead of candle's chain of broadcast element-wise ops and
//! transposed copies.

use super::contiguous_f32;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, Var};
use rayon::prelude::*;

/// (batch, channels, pixels per channel) of an NCHW tensor.
fn planes(dims: &[usize]) -> Result<(usize, usize, usize)> {
    match dims {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => candle_core::bail!("batch norm takes (N, C, ...) input, got {dims:?}"),
    }
}

/// Per-channel mean and biased variance, (2, C): the mean first, then the variance of the
/// deviations from it (two passes, so large offsets lose no precision).
struct Moments;

impl CustomOp1 for Moments {
    fn name(&self) -> &'static str {
        "areo-batch-moments"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "batch norm input")?;
        let (n, c, hw) = planes(layout.dims())?;
        let count = (n * hw) as f64;
        let moments: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|channel| {
                let plane = |b: usize| &x[(b * c + channel) * hw..(b * c + channel + 1) * hw];
                let sum: f64 = (0..n)
                    .map(|b| plane(b).iter().map(|&v| v as f64).sum::<f64>())
                    .sum();
                let mean = sum / count;
                let squares: f64 = (0..n)
                    .map(|b| {
                        plane(b)
                            .iter()
                            .map(|&v| (v as f64 - mean).powi(2))
                            .sum::<f64>()
                    })
                    .sum();
                (mean as f32, (squares / count) as f32)
            })
            .collect();
        let (means, variances): (Vec<f32>, Vec<f32>) = moments.into_iter().unzip();
        Ok((
            CpuStorage::F32([means, variances].concat()),
            Shape::from((2, c)),
        ))
    }
}

/// Normalises `x` (N, C, ...) with its batch statistics, scales by `weight` and shifts by
/// `bias` (C each), then applies ReLU if asked. Updates the running mean and (unbiased)
/// variance in place with `momentum`, as PyTorch and candle do.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running: (&Var, &Var),
    eps: f64,
    momentum: f64,
    relu: bool,
) -> Result<Tensor> {
    let x = x.contiguous()?;
    let (n, _, hw) = planes(x.dims())?;
    let moments = x.apply_op1_no_bwd(&Moments)?.to_vec2::<f32>()?;
    let (mean, variance) = (&moments[0], &moments[1]);
    let count = (n * hw) as f64;
    if count < 2.0 {
        candle_core::bail!("batch norm in training needs more than one value per channel")
    }
    let (running_mean, running_var) = running;
    let mean_t = Tensor::from_slice(mean, mean.len(), x.device())?;
    let variance_t = Tensor::from_slice(variance, variance.len(), x.device())?;
    running_mean.set(&((running_mean.as_tensor() * (1.0 - momentum))? + (mean_t * momentum)?)?)?;
    running_var.set(
        &((running_var.as_tensor() * (1.0 - momentum))?
            + (variance_t * (momentum * count / (count - 1.0)))?)?,
    )?;
    let inverse_std = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    x.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        Normalise {
            mean: mean.clone(),
            inverse_std,
            relu,
        },
    )
}

/// `relu?(((x - mean) * inverse_std) * weight + bias)` per channel, batch statistics fixed.
struct Normalise {
    mean: Vec<f32>,
    inverse_std: Vec<f32>,
    relu: bool,
}

impl CustomOp3 for Normalise {
    fn name(&self) -> &'static str {
        "areo-batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x, x_layout, "batch norm input")?;
        let weight = contiguous_f32(weight, weight_layout, "batch norm weight")?;
        let bias = contiguous_f32(bias, bias_layout, "batch norm bias")?;
        let (_, c, hw) = planes(x_layout.dims())?;
        if weight.len() != c || bias.len() != c || self.mean.len() != c {
            candle_core::bail!("batch norm: {c} channels, {} weights", weight.len())
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .enumerate()
            .for_each(|(plane, (out, input))| {
                let channel = plane % c;
                let scale = self.inverse_std[channel] * weight[channel];
                let shift = bias[channel] - self.mean[channel] * scale;
                for (o, &v) in out.iter_mut().zip(input) {
                    let value = v * scale + shift;
                    *o = if self.relu { value.max(0.0) } else { value };
                }
            });
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = self.mean.len();
        let backward = NormaliseBackward {
            mean: self.mean.clone(),
            inverse_std: self.inverse_std.clone(),
            weight: weight.to_vec1::<f32>()?,
            relu: self.relu,
        };
        // One packed result: the input gradient, then the weight and bias gradients.
        let grads = x.apply_op3_no_bwd(output, &output_grad.contiguous()?, &backward)?;
        let elements = x.elem_count();
        let input_grad = grads.narrow(0, 0, elements)?.reshape(x.shape())?;
        let weight_grad = grads.narrow(0, elements, c)?;
        let bias_grad = grads.narrow(0, elements + c, c)?;
        Ok((Some(input_grad), Some(weight_grad), Some(bias_grad)))
    }
}

/// (x, output, output gradient) -> [input gradient.., weight gradient (C), bias gradient (C)].
struct NormaliseBackward {
    mean: Vec<f32>,
    inverse_std: Vec<f32>,
    weight: Vec<f32>,
    relu: bool,
}

impl CustomOp3 for NormaliseBackward {
    fn name(&self) -> &'static str {
        "areo-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        output: &CpuStorage,
        output_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x, x_layout, "batch norm input")?;
        let output = contiguous_f32(output, output_layout, "batch norm output")?;
        let grad = contiguous_f32(grad, grad_layout, "batch norm output gradient")?;
        let (n, c, hw) = planes(x_layout.dims())?;
        let count = (n * hw) as f32;
        // The gradient reaching the normalisation: ReLU passes it where the output is positive.
        let gate = |i: usize| {
            if self.relu && output[i] <= 0.0 {
                0.0
            } else {
                grad[i]
            }
        };
        // Per channel: sum of dy and of dy * x_hat, which are the bias and weight gradients.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|channel| {
                let (mean, inverse_std) = (self.mean[channel], self.inverse_std[channel]);
                let mut sum = 0f64;
                let mut sum_xhat = 0f64;
                for b in 0..n {
                    let start = (b * c + channel) * hw;
                    let mut s = 0f32;
                    let mut sx = 0f32;
                    for (i, &value) in (start..).zip(&x[start..start + hw]) {
                        let dy = gate(i);
                        s += dy;
                        sx += dy * (value - mean) * inverse_std;
                    }
                    sum += s as f64;
                    sum_xhat += sx as f64;
                }
                (sum as f32, sum_xhat as f32)
            })
            .collect();
        let elements = x.len();
        let mut result = vec![0f32; elements + 2 * c];
        let (input_grad, parameter_grads) = result.split_at_mut(elements);
        input_grad
            .par_chunks_mut(hw)
            .enumerate()
            .for_each(|(plane, out)| {
                let channel = plane % c;
                let (mean, inverse_std) = (self.mean[channel], self.inverse_std[channel]);
                let (sum, sum_xhat) = sums[channel];
                let factor = self.weight[channel] * inverse_std;
                let (mean_dy, mean_dy_xhat) = (sum / count, sum_xhat / count);
                let start = plane * hw;
                for (j, o) in out.iter_mut().enumerate() {
                    let i = start + j;
                    let xhat = (x[i] - mean) * inverse_std;
                    *o = factor * (gate(i) - mean_dy - xhat * mean_dy_xhat);
                }
            });
        for (channel, (sum, sum_xhat)) in sums.into_iter().enumerate() {
            parameter_grads[channel] = sum_xhat;
            parameter_grads[c + channel] = sum;
        }
        Ok((CpuStorage::F32(result), Shape::from(elements + 2 * c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{BatchNorm, ModuleT};

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{what}[{i}]: {g} against {w}"
            );
        }
    }

    #[test]
    fn training_batch_norm_matches_candles_outputs_gradients_and_running_statistics() {
        let mut rng = fastrand::Rng::with_seed(9);
        for (shape, relu) in [
            ((4, 3, 5, 7), false),
            ((2, 5, 8, 3), true),
            ((3, 2, 1, 1), true),
        ] {
            let (n, c, h, w) = shape;
            let data: Vec<f32> = (0..n * c * h * w).map(|_| rng.f32() * 6.0 + 2.0).collect();
            let x = Var::from_vec(data, shape, &Device::Cpu).unwrap();
            let gamma =
                Var::from_vec((0..c).map(|i| 0.5 + i as f32).collect(), c, &Device::Cpu).unwrap();
            let beta = Var::from_vec(
                (0..c).map(|i| i as f32 * 0.3 - 0.2).collect(),
                c,
                &Device::Cpu,
            )
            .unwrap();
            let stats = |value: f32| Var::from_vec(vec![value; c], c, &Device::Cpu).unwrap();
            let (mean, var) = (stats(0.5), stats(2.0));
            let reference = BatchNorm::new(
                c,
                stats(0.5).as_tensor().clone(),
                stats(2.0).as_tensor().clone(),
                gamma.as_tensor().clone(),
                beta.as_tensor().clone(),
                1e-5,
            )
            .unwrap();
            let ours = batch_norm_train(&x, &gamma, &beta, (&mean, &var), 1e-5, 0.1, relu).unwrap();
            let mut theirs = reference.forward_t(x.as_tensor(), true).unwrap();
            if relu {
                theirs = theirs.relu().unwrap();
            }
            let what = format!("{shape:?} relu {relu}");
            assert_close(&values(&ours), &values(&theirs), &format!("{what} output"));
            assert_close(
                &values(mean.as_tensor()),
                &values(reference.running_mean()),
                &format!("{what} running mean"),
            );
            assert_close(
                &values(var.as_tensor()),
                &values(reference.running_var()),
                &format!("{what} running variance"),
            );
            let projection: Vec<f32> = (0..n * c * h * w).map(|_| rng.f32() - 0.5).collect();
            let projection = Tensor::from_vec(projection, shape, &Device::Cpu).unwrap();
            let ours = (ours * &projection)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let theirs = (theirs * &projection)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for (var, name) in [(&x, "input"), (&gamma, "weight"), (&beta, "bias")] {
                assert_close(
                    &values(ours.get(var).unwrap()),
                    &values(theirs.get(var).unwrap()),
                    &format!("{what} {name} gradient"),
                );
            }
        }
    }

    #[test]
    fn one_value_per_channel_is_refused() {
        let x = Tensor::ones((1, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let ones = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
        let stat = Var::ones(2, DType::F32, &Device::Cpu).unwrap();
        let error = batch_norm_train(&x, &ones, &ones, (&stat, &stat), 1e-5, 0.1, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than one value per channel"), "{error}");
    }
}
