//! The ResNet backbone every model family builds on: torchvision's BasicBlock ResNet (depths
//! and widths from the configuration) without its classifier, with torchvision's parameter
//! names below wherever a family mounts it (`encoder.` in the U-Net), so torchvision weights
//! load as a pretrained backbone.
//!
//! Convolutions with their batch norm, the stem's 3x3 stride-2 max pool and the residual
//! add+ReLU go through `nn::kernels` (areo's CPU ops, candle's elsewhere). On candle's ops the
//! pool is built from ops that have a gradient (candle's own has none unless kernel ==
//! stride). candle-transformers' `resnet.rs` has the same names but fixes batch norm in
//! evaluation mode and returns an opaque function, so it cannot be trained.

use crate::nn::kernels;
use candle_core::{Result, Tensor, Var};
use candle_nn::{BatchNorm, BatchNormConfig, VarBuilder};
use std::sync::OnceLock;

/// A convolution without bias followed by batch norm (and, when asked, ReLU). In training the
/// batch statistics normalise and the running ones follow; in evaluation the running
/// statistics are folded into the convolution's weights and a bias, one pass with no graph
/// kept (so evaluation computes no gradient).
pub(crate) struct ConvBn {
    weight: Tensor,
    stride: usize,
    padding: usize,
    bn: BatchNorm,
    /// The folded weights and bias, kept when the weights are constants (inference models).
    folded: OnceLock<(Tensor, Tensor)>,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conv_vb: VarBuilder,
        bn_vb: VarBuilder,
        input: usize,
        output: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let weight = conv_vb.get_with_hints(
            (output, input, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bn = candle_nn::batch_norm(output, BatchNormConfig::default(), bn_vb)?;
        Ok(ConvBn {
            weight,
            stride,
            padding,
            bn,
            folded: OnceLock::new(),
        })
    }

    pub(crate) fn forward_t(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if !kernels::applies_to(x) {
            let y = kernels::conv2d(x, &self.weight, self.stride, self.padding)?
                .apply_t(&self.bn, train)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        let (gamma, beta) = self.bn.weight_and_bias().expect("affine batch norm");
        if train {
            // The batch norm's running statistics are variables: these share their storage.
            let running_mean = Var::from_tensor(self.bn.running_mean())?;
            let running_var = Var::from_tensor(self.bn.running_var())?;
            return kernels::norm::conv_bn_train(
                x,
                &self.weight,
                (self.stride, self.padding),
                (gamma, beta),
                (&running_mean, &running_var),
                self.bn.eps(),
                self.bn.momentum(),
                relu,
            );
        }
        let fold = || -> Result<(Tensor, Tensor)> {
            let scale = (gamma / (self.bn.running_var() + self.bn.eps())?.sqrt()?)?.detach();
            let weight = self
                .weight
                .detach()
                .broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
            let bias = (beta.detach() - (self.bn.running_mean().detach() * &scale)?)?;
            Ok((weight, bias))
        };
        let folded;
        let (weight, bias) = if self.weight.is_variable() {
            folded = fold()?;
            &folded
        } else {
            match self.folded.get() {
                Some(cached) => cached,
                None => {
                    let made = fold()?;
                    self.folded.get_or_init(|| made)
                }
            }
        };
        kernels::conv2d_bias(x, weight, bias, self.stride, self.padding, relu)
    }
}

/// torchvision's BasicBlock: two 3x3 convs and a shortcut (1x1 conv + BN when the shape
/// changes).
struct BasicBlock {
    first: ConvBn,
    second: ConvBn,
    downsample: Option<ConvBn>,
}

impl BasicBlock {
    fn new(vb: VarBuilder, input: usize, output: usize, stride: usize) -> Result<Self> {
        let first = ConvBn::new(vb.pp("conv1"), vb.pp("bn1"), input, output, 3, stride, 1)?;
        let second = ConvBn::new(vb.pp("conv2"), vb.pp("bn2"), output, output, 3, 1, 1)?;
        let downsample = if stride != 1 || input != output {
            let ds = vb.pp("downsample");
            Some(ConvBn::new(
                ds.pp("0"),
                ds.pp("1"),
                input,
                output,
                1,
                stride,
                0,
            )?)
        } else {
            None
        };
        Ok(BasicBlock {
            first,
            second,
            downsample,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self.first.forward_t(x, train, true)?;
        let y = self.second.forward_t(&y, train, false)?;
        let shortcut = match &self.downsample {
            Some(downsample) => downsample.forward_t(x, train, false)?,
            None => x.clone(),
        };
        kernels::add_relu(&y, &shortcut)
    }
}

/// ResNet without its classifier, giving the maps at strides 2, 4, 8, 16 and 32.
pub struct Encoder {
    stem: ConvBn,
    stages: Vec<Vec<BasicBlock>>,
}

impl Encoder {
    pub fn new(
        vb: VarBuilder,
        input: usize,
        blocks: [usize; 4],
        widths: [usize; 5],
    ) -> Result<Self> {
        let stem = ConvBn::new(vb.pp("conv1"), vb.pp("bn1"), input, widths[0], 7, 2, 3)?;
        let mut stages = Vec::new();
        let mut channels = widths[0];
        for (stage, &count) in blocks.iter().enumerate() {
            let vb = vb.pp(format!("layer{}", stage + 1));
            let width = widths[stage + 1];
            let mut layer = Vec::new();
            for block in 0..count {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                layer.push(BasicBlock::new(vb.pp(block), channels, width, stride)?);
                channels = width;
            }
            stages.push(layer);
        }
        Ok(Encoder { stem, stages })
    }

    /// The stem's map (stride 2) and each stage's (strides 4 to 32).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        let stem = self.stem.forward_t(x, train, true)?;
        let mut y = max_pool_3x3_s2_p1(&stem)?;
        let mut features = vec![stem];
        for stage in &self.stages {
            for block in stage {
                y = block.forward_t(&y, train)?;
            }
            features.push(y.clone());
        }
        Ok(features)
    }
}

/// PyTorch's `max_pool2d(kernel 3, stride 2, padding 1)`: areo's kernel on the CPU, else
/// built from pad, narrow, reshape and `maximum`, which all have a backward. Padding repeats the edge, which never changes a
/// window's maximum (the edge value is in the window already), so it equals padding with
/// minus infinity.
pub fn max_pool_3x3_s2_p1(x: &Tensor) -> Result<Tensor> {
    if kernels::applies_to(x) {
        return x.contiguous()?.apply_op1(kernels::resample::MaxPool3x3S2);
    }
    max_pool_composed(x)
}

/// The stem pool from candle ops, for candle's backend and devices other than the CPU.
fn max_pool_composed(x: &Tensor) -> Result<Tensor> {
    let pooled = pool_axis(x, 3)?;
    pool_axis(&pooled, 2)
}

/// Max over windows of 3 at stride 2 with padding 1 along one axis of an NCHW tensor.
fn pool_axis(x: &Tensor, axis: usize) -> Result<Tensor> {
    let length = x.dim(axis)?;
    let out = (length - 1) / 2 + 1;
    // Padded so that positions 0..2*out+2 exist: one in front, one or two behind.
    let padded = x.pad_with_same(axis, 1, 2 * out + 1 - length)?;
    let mut pairs_shape = padded.dims().to_vec();
    pairs_shape[axis] = out;
    pairs_shape.insert(axis + 1, 2);
    // Elements 2i and 2i+1 of the padded axis, then 2i+2 (the first of the next pair).
    let pairs = padded
        .narrow(axis, 0, 2 * out)?
        .reshape(pairs_shape.clone())?;
    let next = padded.narrow(axis, 2, 2 * out)?.reshape(pairs_shape)?;
    let left = pairs.narrow(axis + 1, 0, 1)?;
    let middle = pairs.narrow(axis + 1, 1, 1)?;
    let right = next.narrow(axis + 1, 0, 1)?;
    left.maximum(&middle)?.maximum(&right)?.squeeze(axis + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    /// PyTorch's definition: the maximum over the 3 x 3 window at (2i - 1, 2j - 1), cells
    /// outside the image left out.
    fn naive_pool(x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        let mut out = vec![f32::NEG_INFINITY; oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (y, xx) = ((2 * oy + ky) as i64 - 1, (2 * ox + kx) as i64 - 1);
                        if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                            let v = x[y as usize * w + xx as usize];
                            out[oy * ow + ox] = out[oy * ow + ox].max(v);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_stem_pool_equals_pytorchs_and_routes_each_gradient_to_its_maximum() {
        let mut rng = fastrand::Rng::with_seed(3);
        let sizes = [(8, 8), (7, 9), (5, 4), (1, 3)];
        let pools: [fn(&Tensor) -> Result<Tensor>; 2] = [max_pool_3x3_s2_p1, max_pool_composed];
        for ((h, w), pool) in sizes.into_iter().flat_map(|s| pools.map(|p| (s, p))) {
            let values: Vec<f32> = (0..h * w).map(|_| rng.f32() * 10.0 - 5.0).collect();
            let x = Var::from_vec(values.clone(), (1, 1, h, w), &Device::Cpu).unwrap();
            let pooled = pool(x.as_tensor()).unwrap();
            let got = pooled.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(got, naive_pool(&values, h, w), "{h} x {w}");
            // Distinct random values: each output's gradient goes whole to one input.
            let grads = pooled.sum_all().unwrap().backward().unwrap();
            let grad = grads
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let total: f32 = grad.iter().sum();
            assert!(
                (total - got.len() as f32).abs() < 1e-5,
                "{h} x {w}: {total}"
            );
            for (i, g) in grad.iter().enumerate() {
                if *g > 0.0 {
                    assert!(got.contains(&values[i]), "gradient on a non-maximum");
                }
            }
        }
    }

    #[test]
    fn training_updates_the_saved_running_statistics_and_evaluation_folds_them_exactly() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let layer = ConvBn::new(vb.pp("conv"), vb.pp("bn"), 3, 4, 3, 2, 1).unwrap();
        let mut rng = fastrand::Rng::with_seed(4);
        let mut image = || {
            let values: Vec<f32> = (0..2 * 3 * 9 * 10).map(|_| rng.f32() * 4.0 + 1.0).collect();
            Tensor::from_vec(values, (2, 3, 9, 10), &Device::Cpu).unwrap()
        };
        for _ in 0..3 {
            layer.forward_t(&image(), true, true).unwrap();
        }
        // The statistics the checkpoint saves are the ones training moved.
        let saved_mean = varmap.data().lock().unwrap()["bn.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap();
        assert!(saved_mean.iter().all(|m| m.abs() > 1e-3), "{saved_mean:?}");

        let x = image();
        let reference = x
            .conv2d(&layer.weight, 1, 2, 1, 1)
            .unwrap()
            .apply_t(&layer.bn, false)
            .unwrap()
            .relu()
            .unwrap();
        let want = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Variable weights fold on every call; an inference copy folds once and keeps it.
        let weights: std::collections::HashMap<String, Tensor> = varmap
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().copy().unwrap()))
            .collect();
        let constant = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let inference = ConvBn::new(constant.pp("conv"), constant.pp("bn"), 3, 4, 3, 2, 1).unwrap();
        for (layer, what) in [
            (&layer, "variables"),
            (&inference, "constants"),
            (&inference, "cached"),
        ] {
            let got = layer.forward_t(&x, false, true).unwrap();
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{what} [{i}]: {g} against {w}"
                );
            }
        }
        assert!(inference.folded.get().is_some() && layer.folded.get().is_none());
    }
}
