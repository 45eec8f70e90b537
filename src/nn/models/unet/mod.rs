//! The U-Net: the ResNet backbone (`nn::backbone::resnet`, mounted as `encoder.`, so
//! torchvision weights load as a pretrained encoder) and a decoder of nearest x2 upsampling,
//! skip concatenation and two 3x3 conv-BN-ReLU layers per scale.
//!
//! The decoder's convolutions and its upsample-and-join go through `nn::kernels` (areo's CPU
//! ops, candle's elsewhere). On candle's ops the input of every upsampling has no other
//! consumer (candle overwrites, rather than adds, the gradient of an upsample's input).

pub mod loss;

use super::{ChipPrediction, Evaluation, Family, Figures, HeadConv, Losses, Mode};
use crate::metrics::ConfusionMatrix;
use crate::nn::backbone::resnet::{ConvBn, Encoder};
use crate::nn::config::{LossKind, TrainConfig, UNetConfig};
use crate::nn::data::HostBatch;
use crate::nn::kernels;
use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;
use loss::{loss, Targets};

struct DecoderBlock {
    first: ConvBn,
    second: ConvBn,
}

impl DecoderBlock {
    fn new(vb: VarBuilder, input: usize, output: usize) -> Result<Self> {
        Ok(DecoderBlock {
            first: ConvBn::new(vb.pp("conv1"), vb.pp("bn1"), input, output, 3, 1, 1)?,
            second: ConvBn::new(vb.pp("conv2"), vb.pp("bn2"), output, output, 3, 1, 1)?,
        })
    }

    fn forward_t(&self, x: &Tensor, skip: Option<&Tensor>, train: bool) -> Result<Tensor> {
        let joined = kernels::upsample_join(x, skip)?;
        let y = self.first.forward_t(&joined, train, true)?;
        self.second.forward_t(&y, train, true)
    }
}

pub struct UNet {
    pub encoder: Encoder,
    decoder: Vec<DecoderBlock>,
    head: HeadConv,
    pub config: UNetConfig,
}

/// Inputs must be a multiple of this on both sides (five halvings).
pub const SIZE_MULTIPLE: usize = 32;

impl UNet {
    /// Builds the network, its variables named `encoder.*` (torchvision's names below that),
    /// `decoder.N.*` and `head.*`.
    pub fn new(config: &UNetConfig, vb: VarBuilder) -> Result<Self> {
        let (blocks, widths) = config.shape().map_err(candle_core::Error::msg)?;
        let encoder = Encoder::new(vb.pp("encoder"), config.in_channels, blocks, widths)?;
        // Skips, deepest first: stage 3, 2, 1, the stem, and the input when asked.
        let input_skip = if config.input_skip {
            config.in_channels
        } else {
            0
        };
        let skips = [widths[3], widths[2], widths[1], widths[0], input_skip];
        let mut decoder = Vec::new();
        let mut channels = widths[4];
        for (i, (&out, skip)) in config.decoder.iter().zip(skips).enumerate() {
            decoder.push(DecoderBlock::new(
                vb.pp(format!("decoder.{i}")),
                channels + skip,
                out,
            )?);
            channels = out;
        }
        let head = HeadConv::new(vb.pp("head"), channels, config.classes)?;
        Ok(UNet {
            encoder,
            decoder,
            head,
            config: config.clone(),
        })
    }

    /// Class logits (N, classes, H, W) for images (N, in_channels, H, W). With
    /// `frozen_encoder` the encoder's maps are detached, so its weights get no gradient
    /// (its batch-norm statistics still follow the data, as in fastai).
    pub fn forward(&self, x: &Tensor, train: bool, frozen_encoder: bool) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        if !h.is_multiple_of(SIZE_MULTIPLE) || !w.is_multiple_of(SIZE_MULTIPLE) {
            candle_core::bail!("input is {w} x {h}: both sides must be multiples of 32")
        }
        let mut features = self.encoder.forward_t(x, train)?;
        if frozen_encoder {
            features = features.iter().map(Tensor::detach).collect();
        }
        let mut y = features.pop().expect("five maps");
        if self.config.input_skip {
            features.insert(0, x.clone());
        }
        for block in &self.decoder {
            let skip = features.pop();
            y = block.forward_t(&y, skip.as_ref(), train)?;
        }
        self.head.forward_t(&y, train)
    }
}

/// The U-Net with the pixel loss its run trains it with.
pub struct UNetFamily {
    pub net: UNet,
    loss: LossKind,
    class_weights: Option<Vec<f32>>,
    ignore_index: Option<u8>,
}

impl UNetFamily {
    pub fn new(config: &UNetConfig, train: &TrainConfig, vb: VarBuilder) -> Result<Self> {
        Ok(UNetFamily {
            net: UNet::new(config, vb)?,
            loss: train.loss,
            class_weights: train.class_weights.clone(),
            ignore_index: train.ignore_index,
        })
    }

    /// A batch's masks as the losses take them.
    fn targets(&self, batch: &HostBatch, device: &Device) -> Result<Targets> {
        let size = batch.size;
        Targets::new(
            &batch.masks,
            (batch.count, size, size),
            self.net.config.classes,
            self.class_weights.as_deref(),
            self.ignore_index,
            device,
        )
    }
}

impl Family for UNetFamily {
    fn losses(&self, images: &Tensor, batch: &HostBatch, mode: Mode) -> Result<Losses> {
        let targets = self.targets(batch, images.device())?;
        let logits = self.net.forward(images, mode.train, mode.frozen_encoder)?;
        Ok(Losses {
            total: loss(self.loss, &logits, &targets)?,
            parts: Vec::new(),
        })
    }

    fn evaluate(&self, batches: &[HostBatch], device: &Device) -> Result<Evaluation> {
        let mut confusion = ConfusionMatrix::new(self.net.config.classes);
        let (mut sum, mut count) = (0.0, 0usize);
        for batch in batches {
            let images = batch.images_on(device)?;
            let targets = self.targets(batch, device)?;
            let logits = self.net.forward(&images, false, false)?;
            sum +=
                loss(self.loss, &logits, &targets)?.to_scalar::<f32>()? as f64 * batch.count as f64;
            count += batch.count;
            let predicted = argmax_classes(&logits)?;
            confusion
                .add(&batch.masks, &predicted, self.ignore_index)
                .map_err(candle_core::Error::msg)?;
        }
        Ok(Evaluation {
            loss: sum / count.max(1) as f64,
            figures: Figures::Pixels(confusion),
        })
    }

    fn predict(&self, images: &Tensor) -> Result<ChipPrediction> {
        let logits = self.net.forward(images, false, false)?;
        Ok(ChipPrediction::Planes(probabilities(&logits)?))
    }
}

/// The most likely class of every pixel of logits (N, C, H, W), as (N, H, W) u8.
pub fn argmax_classes(logits: &Tensor) -> Result<Vec<u8>> {
    let classes = logits.argmax(1)?.to_dtype(candle_core::DType::U8)?;
    classes.flatten_all()?.to_vec1::<u8>()
}

/// Softmax over classes of logits (N, C, H, W).
pub fn probabilities(logits: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(logits, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarMap;

    #[test]
    fn the_unet_gives_logits_at_full_size_with_torchvision_names() {
        let config = UNetConfig {
            encoder: "resnet18".into(),
            blocks: None,
            widths: Some([8, 8, 16, 16, 32]),
            decoder: [16, 16, 8, 8, 8],
            in_channels: 1,
            classes: 3,
            input_skip: false,
        };
        let varmap = VarMap::new();
        let model = UNet::new(
            &config,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let x = Tensor::zeros((2, 1, 64, 96), DType::F32, &Device::Cpu).unwrap();
        let logits = model.forward(&x, true, false).unwrap();
        assert_eq!(logits.dims(), [2, 3, 64, 96]);
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        for name in [
            "encoder.conv1.weight",
            "encoder.bn1.running_var",
            "encoder.layer1.1.conv2.weight",
            "encoder.layer2.0.downsample.0.weight",
            "encoder.layer4.0.downsample.1.bias",
            "decoder.4.conv2.weight",
            "head.bias",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        assert!(!names
            .iter()
            .any(|n| n.starts_with("encoder.layer1.0.downsample")));
        let odd = Tensor::zeros((1, 1, 48, 64), DType::F32, &Device::Cpu).unwrap();
        let error = model.forward(&odd, false, false).err().unwrap().to_string();
        assert!(error.contains("multiples of 32"), "{error}");
    }

    #[test]
    fn the_input_skip_feeds_the_image_to_the_last_decoder_block() {
        let config = UNetConfig {
            encoder: "resnet".into(),
            blocks: Some([1, 1, 1, 1]),
            widths: Some([4, 4, 8, 8, 8]),
            decoder: [8, 8, 4, 4, 4],
            in_channels: 3,
            classes: 2,
            input_skip: true,
        };
        let varmap = VarMap::new();
        let model = UNet::new(
            &config,
            VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let first = varmap.data().lock().unwrap()["decoder.4.conv1.weight"]
            .dims()
            .to_vec();
        // Four channels from the block below and the three of the image, at full size.
        assert_eq!(first, [4, 4 + 3, 3, 3]);
        let x = Tensor::zeros((1, 3, 32, 64), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            model.forward(&x, false, false).unwrap().dims(),
            [1, 2, 32, 64]
        );
    }
}
