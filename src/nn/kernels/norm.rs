//! Training batch norm over f32 NCHW tensors, fused with the convolution before it and the
//! ReLU after it (when there is one): the convolution, one parallel pass for the batch
//! statistics, one for the normalised output; a backward that computes the conv output's,
//! scale's and shift's gradients together in two passes (per-channel sums, then the input
//! gradient) instead of candle's chain of broadcast element-wise ops and transposed copies,
//! and hands the first straight to the convolution's backward.

use super::contiguous_f32;
use super::conv::{self, Conv2d};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, Var};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

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

/// Per-channel mean and biased variance of `x` (N, C, HW): the mean first, then the
/// variance of the deviations from it (two passes, so large offsets lose no precision).
fn batch_moments(x: &[f32], (n, c, hw): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>) {
    let count = (n * hw) as f64;
    (0..c)
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
        .unzip()
}

/// The batch statistics one training forward normalised with.
struct Statistics {
    mean: Vec<f32>,
    variance: Vec<f32>,
    inverse_std: Vec<f32>,
}

/// What the forward leaves for the backward: the convolution's output (taken by the
/// backward) and the batch statistics.
struct Saved {
    conv_output: Option<Vec<f32>>,
    statistics: Statistics,
}

/// A convolution (no bias) followed by training-mode batch norm and, if asked, ReLU, as one
/// op on (input, conv weights, [batch-norm weight; batch-norm bias] as (2, C)). The
/// convolution's output and its gradient stay inside the op: as a tensor of its own, candle's
/// autograd zero-filled a gradient buffer for it and added the real one in, a third of all
/// the gradient traffic of a ResNet U-Net's step.
struct ConvBnTrain {
    conv: Conv2d,
    eps: f64,
    relu: bool,
    saved: Arc<Mutex<Option<Saved>>>,
}

impl ConvBnTrain {
    fn saved(&self) -> std::sync::MutexGuard<'_, Option<Saved>> {
        self.saved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The convolution, batch norm (batch statistics) and optional ReLU of a ResNet layer in
/// training, `relu?(bn(conv2d(x, weight)))`, with the running mean and (unbiased) variance
/// updated in place with `momentum`, as PyTorch and candle do.
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_train(
    x: &Tensor,
    weight: &Tensor,
    (stride, padding): (usize, usize),
    (bn_weight, bn_bias): (&Tensor, &Tensor),
    (running_mean, running_var): (&Var, &Var),
    eps: f64,
    momentum: f64,
    relu: bool,
) -> Result<Tensor> {
    let saved = Arc::new(Mutex::new(None));
    let op = ConvBnTrain {
        conv: Conv2d { stride, padding },
        eps,
        relu,
        saved: saved.clone(),
    };
    let affine = Tensor::stack(&[bn_weight, bn_bias], 0)?;
    let output = x
        .contiguous()?
        .apply_op3(&weight.contiguous()?, &affine, op)?;
    let (n, _, h, w) = output.dims4()?;
    let count = (n * h * w) as f64;
    let (mean, variance) = {
        let saved = saved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let statistics = &saved
            .as_ref()
            .expect("the forward saves statistics")
            .statistics;
        (statistics.mean.clone(), statistics.variance.clone())
    };
    let device = x.device();
    let mean = Tensor::from_vec(mean, running_mean.dims(), device)?;
    let variance = Tensor::from_vec(variance, running_var.dims(), device)?;
    running_mean.set(&((running_mean.as_tensor() * (1.0 - momentum))? + (mean * momentum)?)?)?;
    running_var.set(
        &((running_var.as_tensor() * (1.0 - momentum))?
            + (variance * (momentum * count / (count - 1.0)))?)?,
    )?;
    Ok(output)
}

impl CustomOp3 for ConvBnTrain {
    fn name(&self) -> &'static str {
        "areo-conv2d-batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        affine: &CpuStorage,
        affine_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.conv.geometry(x_layout.dims(), weight_layout.dims())?;
        let c = g.out_channels;
        let affine = contiguous_f32(affine, affine_layout, "batch norm weight and bias")?;
        if affine.len() != 2 * c {
            candle_core::bail!(
                "batch norm: {c} channels, {} weight and bias values",
                affine.len()
            )
        }
        let dims = (g.batch, c, g.out_height() * g.out_width());
        if dims.0 * dims.2 < 2 {
            candle_core::bail!("batch norm in training needs more than one value per channel")
        }
        let y = conv::forward(
            &g,
            contiguous_f32(x, x_layout, "conv2d input")?,
            contiguous_f32(weight, weight_layout, "conv2d weights")?,
            conv::Epilogue::default(),
        );
        let (mean, variance) = batch_moments(&y, dims);
        let inverse_std: Vec<f32> = variance
            .iter()
            .map(|&v| (1.0 / (v as f64 + self.eps).sqrt()) as f32)
            .collect();
        let (scale, shift) = affine.split_at(c);
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(dims.2)
            .zip(y.par_chunks(dims.2))
            .enumerate()
            .for_each(|(plane, (out, input))| {
                let channel = plane % c;
                let factor = inverse_std[channel] * scale[channel];
                let offset = shift[channel] - mean[channel] * factor;
                for (o, &v) in out.iter_mut().zip(input) {
                    let value = v * factor + offset;
                    *o = if self.relu { value.max(0.0) } else { value };
                }
            });
        *self.saved() = Some(Saved {
            conv_output: Some(y),
            statistics: Statistics {
                mean,
                variance,
                inverse_std,
            },
        });
        Ok((CpuStorage::F32(out), g.output_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        affine: &Tensor,
        output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.conv.geometry(x.dims(), weight.dims())?;
        let (conv_output, backward) = {
            let mut saved = self.saved();
            let Some(saved) = saved.as_mut() else {
                candle_core::bail!("conv2d + batch norm: backward before forward")
            };
            let Some(conv_output) = saved.conv_output.take() else {
                candle_core::bail!("conv2d + batch norm: a second backward through one forward")
            };
            let backward = NormaliseBackward {
                mean: saved.statistics.mean.clone(),
                inverse_std: saved.statistics.inverse_std.clone(),
                weight: affine.get(0)?.to_vec1::<f32>()?,
                relu: self.relu,
            };
            (conv_output, backward)
        };
        let c = g.out_channels;
        let conv_output = Tensor::from_vec(conv_output, g.output_shape(), x.device())?;
        // One packed result: the conv output's gradient, then the weight and bias gradients.
        let grads = conv_output.apply_op3_no_bwd(output, &output_grad.contiguous()?, &backward)?;
        let elements = conv_output.elem_count();
        let conv_grad = grads.narrow(0, 0, elements)?.reshape(g.output_shape())?;
        let affine_grad = grads.narrow(0, elements, 2 * c)?.reshape((2, c))?;
        let (input_grad, weight_grad) = conv::gradients(&g, x, weight, &conv_grad)?;
        Ok((input_grad, Some(weight_grad), Some(affine_grad)))
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

    /// Against candle's conv2d, `BatchNorm::forward_train` and ReLU: the output, the running
    /// statistics and the gradients of the input, conv weights and batch-norm weight and bias.
    /// A 1 x 1 identity convolution tests the batch norm alone.
    #[test]
    fn conv_and_training_batch_norm_match_candles_outputs_gradients_and_running_statistics() {
        let mut rng = fastrand::Rng::with_seed(9);
        // (input shape, output channels, kernel, stride, padding, relu); 0 output channels:
        // the identity.
        let cases = [
            ((4, 3, 5, 7), 0, 1, 1, 0, false),
            ((2, 5, 8, 3), 0, 1, 1, 0, true),
            ((3, 2, 1, 1), 0, 1, 1, 0, true),
            ((2, 3, 9, 8), 4, 3, 1, 1, true),
            ((3, 2, 7, 7), 3, 3, 2, 1, false),
        ];
        for (shape, outputs, k, stride, padding, relu) in cases {
            let (n, c_in, h, w) = shape;
            let data: Vec<f32> = (0..n * c_in * h * w)
                .map(|_| rng.f32() * 6.0 + 2.0)
                .collect();
            let x = Var::from_vec(data, shape, &Device::Cpu).unwrap();
            let (c, kernel) = if outputs == 0 {
                let identity: Vec<f32> = (0..c_in * c_in)
                    .map(|i| if i % (c_in + 1) == 0 { 1.0 } else { 0.0 })
                    .collect();
                (c_in, identity)
            } else {
                let values = (0..outputs * c_in * k * k)
                    .map(|_| rng.f32() - 0.5)
                    .collect();
                (outputs, values)
            };
            let kernel = Var::from_vec(kernel, (c, c_in, k, k), &Device::Cpu).unwrap();
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
            let ours = conv_bn_train(
                &x,
                &kernel,
                (stride, padding),
                (&gamma, &beta),
                (&mean, &var),
                1e-5,
                0.1,
                relu,
            )
            .unwrap();
            let convolved = x.conv2d(&kernel, padding, stride, 1, 1).unwrap();
            let mut theirs = reference.forward_t(&convolved, true).unwrap();
            if relu {
                theirs = theirs.relu().unwrap();
            }
            let what = format!("{shape:?} -> {c} k{k} s{stride} relu {relu}");
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
            let projection: Vec<f32> = (0..ours.elem_count()).map(|_| rng.f32() - 0.5).collect();
            let projection = Tensor::from_vec(projection, ours.shape(), &Device::Cpu).unwrap();
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
            let variables = [
                (&x, "input"),
                (&kernel, "conv weight"),
                (&gamma, "weight"),
                (&beta, "bias"),
            ];
            for (var, name) in variables {
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
        let (means, variances) = batch_moments(&values, (n, 1, hw));
        assert!((means[0] as f64 - mean).abs() < 1e-4, "{means:?} {mean}");
        assert!(
            (variances[0] as f64 - variance).abs() < 1e-4 * variance,
            "{variances:?} {variance}"
        );
    }

    #[test]
    fn one_value_per_channel_is_refused() {
        let x = Tensor::ones((1, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let kernel = Tensor::ones((2, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let ones = Tensor::ones(2, DType::F32, &Device::Cpu).unwrap();
        let stat = Var::ones(2, DType::F32, &Device::Cpu).unwrap();
        let error = conv_bn_train(
            &x,
            &kernel,
            (1, 0),
            (&ones, &ones),
            (&stat, &stat),
            1e-5,
            0.1,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("more than one value per channel"), "{error}");
    }
}
