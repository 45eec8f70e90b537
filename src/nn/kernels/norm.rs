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

/// Lanes of the vectorised sums: one AVX-512 register of f32.
const LANES: usize = 16;

/// Values summed in f32 lanes before the block's total joins an f64 sum: each lane adds 64
/// values, so rounding stays near f32's own precision however large the plane.
const SUM_BLOCK: usize = 64 * LANES;

/// The sum of `f(v)` over `values`, in f64. Summed in independent lanes, which the compiler
/// turns into vector adds (a single running sum is a chain of dependent scalar adds, and was
/// most of batch norm's time).
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    values
        .chunks(SUM_BLOCK)
        .map(|block| {
            let mut lanes = [0f32; LANES];
            let mut chunks = block.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += f(v);
                }
            }
            let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
            (lanes.iter().sum::<f32>() + rest) as f64
        })
        .sum()
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
                let sum: f64 = (0..n).map(|b| lane_sum(plane(b), |v| v)).sum();
                let mean = (sum / count) as f32;
                let squares: f64 = (0..n)
                    .map(|b| lane_sum(plane(b), |v| (v - mean) * (v - mean)))
                    .sum();
                (mean, (squares / count) as f32)
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
        let gated = |dy: f32, y: f32| if self.relu && y <= 0.0 { 0.0 } else { dy };
        // Per channel: sum of dy and of dy * x_hat, which are the bias and weight gradients.
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|channel| {
                let (mean, inverse_std) = (self.mean[channel], self.inverse_std[channel]);
                let (mut sum, mut sum_centred) = (0f64, 0f64);
                for b in 0..n {
                    let plane = (b * c + channel) * hw..(b * c + channel + 1) * hw;
                    let (x, y, dy) = (&x[plane.clone()], &output[plane.clone()], &grad[plane]);
                    for ((x, y), dy) in x
                        .chunks(SUM_BLOCK)
                        .zip(y.chunks(SUM_BLOCK))
                        .zip(dy.chunks(SUM_BLOCK))
                    {
                        let (mut lanes, mut centred) = ([0f32; LANES], [0f32; LANES]);
                        let chunks = x.chunks(LANES).zip(y.chunks(LANES)).zip(dy.chunks(LANES));
                        for ((x, y), dy) in chunks {
                            for (lane, ((&x, &y), &dy)) in x.iter().zip(y).zip(dy).enumerate() {
                                let dy = gated(dy, y);
                                lanes[lane] += dy;
                                centred[lane] += dy * (x - mean);
                            }
                        }
                        sum += lanes.iter().sum::<f32>() as f64;
                        sum_centred += centred.iter().sum::<f32>() as f64;
                    }
                }
                (sum as f32, (sum_centred * inverse_std as f64) as f32)
            })
            .collect();
        let elements = x.len();
        let mut result = vec![0f32; elements + 2 * c];
        let (input_grad, parameter_grads) = result.split_at_mut(elements);
        input_grad
            .par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .zip(output.par_chunks(hw).zip(grad.par_chunks(hw)))
            .enumerate()
            .for_each(|(plane, ((out, x), (y, dy)))| {
                let channel = plane % c;
                let (mean, inverse_std) = (self.mean[channel], self.inverse_std[channel]);
                let (sum, sum_xhat) = sums[channel];
                let factor = self.weight[channel] * inverse_std;
                let (mean_dy, mean_dy_xhat) = (sum / count, sum_xhat / count);
                for (((o, &x), &y), &dy) in out.iter_mut().zip(x).zip(y).zip(dy) {
                    let xhat = (x - mean) * inverse_std;
                    *o = factor * (gated(dy, y) - mean_dy - xhat * mean_dy_xhat);
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
    fn batch_moments_keep_their_precision_over_large_offset_planes() {
        // Two images of one channel, 200 x 163 pixels (not a multiple of the lanes or the
        // block), values 1000 + a pattern of spread about 0.3: an f32 running sum would lose
        // the variance in rounding.
        let (n, hw) = (2, 200 * 163);
        let values: Vec<f32> = (0..n * hw)
            .map(|i| 1000.0 + ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        let variance = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        let x = Tensor::from_vec(values, (n, 1, 200, 163), &Device::Cpu).unwrap();
        let moments = x
            .apply_op1_no_bwd(&Moments)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(
            (moments[0][0] as f64 - mean).abs() < 1e-4,
            "{moments:?} {mean}"
        );
        assert!(
            (moments[1][0] as f64 - variance).abs() < 1e-4 * variance,
            "{moments:?} {variance}"
        );
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
