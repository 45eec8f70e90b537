//! `areo bench model` (or `unet`): the speed of a model configuration of any family on a
//! device (inference per image at several batch sizes, one training step), on real chips, as
//! `<figure> areo=<seconds>` lines that `bench/unet.sh` and `bench/ssd.sh` set beside
//! PyTorch's. The chips carry no objects, so a detector's step matches no anchor (its loss is
//! the focal term over every anchor). With `--agree-with cpu` it also checks that a
//! segmentation's classes on the device match the CPU's for the same weights and chips.

use crate::nn::config::RunConfig;
use crate::nn::data::{eval_batches, BatchPlan, Normalisation, Sample};
use crate::nn::models::unet::argmax_classes;
use crate::nn::models::{self, ChipPrediction, Mode};
use crate::nn::optim::{AdamW, StepRates};
use crate::nn::train::{inference_model, parameter_count};
use crate::raster::tile::{tile, Edge, TileSpec};
use crate::raster::Image;
use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time a model configuration of any family: inference per image and a training step
    /// (`unet` is its older name).
    #[command(alias = "unet")]
    Model(ModelBenchArgs),
    /// Time each distinct convolution of a U-Net configuration: forward, input gradient and
    /// weight gradient, with areo's kernels and candle's.
    Conv(ConvBenchArgs),
}

#[derive(Debug, Args)]
pub struct ConvBenchArgs {
    #[arg(long, default_value = "models/unet-resnet18.toml")]
    pub config: PathBuf,
    /// Input side (default: the configuration's tile).
    #[arg(long)]
    pub tile: Option<u32>,
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
}

#[derive(Debug, Args)]
pub struct ModelBenchArgs {
    #[arg(long, default_value = "models/unet-resnet18.toml")]
    pub config: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Chip side (default: the configuration's tile).
    #[arg(long)]
    pub tile: Option<u32>,
    /// An image to cut the chips from.
    #[arg(long, default_value = "data/craters/nanedi-512x320.png")]
    pub image: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub infer_batches: Vec<usize>,
    /// Batch of the timed training step (0: none).
    #[arg(long, default_value_t = 4)]
    pub train_batch: usize,
    /// Timed repetitions of each figure (the median is reported), after two warm-up runs.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Also run the same weights on this device and report how many pixels get the same class.
    #[arg(long)]
    pub agree_with: Option<String>,
    /// CPU kernels: areo's own or candle's built-in ops (default: AREO_KERNELS, else areo).
    #[arg(long, value_parser = crate::nn::kernels::Backend::parse)]
    pub kernels: Option<crate::nn::kernels::Backend>,
}

pub fn run(command: BenchCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Model(args) => model(args, json),
        BenchCommand::Conv(args) => conv(args, json),
    }
}

fn model(args: ModelBenchArgs, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(kernels) = args.kernels {
        crate::nn::kernels::set_backend(kernels);
    }
    let mut config = RunConfig::read(&args.config).map_err(anyhow::Error::msg)?;
    if let Some(tile) = args.tile {
        config.train.tile = tile;
    }
    config.check().map_err(anyhow::Error::msg)?;
    let device = crate::nn::device(&args.device).map_err(anyhow::Error::msg)?;
    let size = config.train.tile as usize;
    let samples = chips(&args.image, size)?;
    let normalisation = Normalisation::of(&samples);
    let plan = |batch: usize| BatchPlan {
        batch,
        tile: size,
        channels: config.model.in_channels(),
        normalisation,
        augment: Default::default(),
        seed: 0,
    };
    let batch_of =
        |batch: usize| -> Vec<Sample> { samples.iter().cycle().take(batch).cloned().collect() };

    let varmap = VarMap::new();
    let trainable = models::build(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &device),
    )?;
    trainable.initialise(&varmap, config.train.seed)?;
    let weights = crate::nn::checkpoint::weights(&varmap);
    let model = inference_model(&config, weights.iter().cloned().collect(), &device)?;
    let mut figures = Vec::new();
    for &batch in &args.infer_batches {
        let host = &eval_batches(&batch_of(batch), &plan(batch))[0];
        let images = Tensor::from_slice(&host.images, (batch, host.channels, size, size), &device)?;
        let seconds = median_time(args.repeats, &device, || {
            model.predict(&images)?;
            Ok(())
        })?;
        figures.push((format!("infer_b{batch}"), seconds / batch as f64));
    }
    // Before the training step: inference models copy batch-norm statistics when built, and
    // training changes them.
    let agreement = match &args.agree_with {
        Some(other) => {
            let other_device = crate::nn::device(other).map_err(anyhow::Error::msg)?;
            let reference =
                inference_model(&config, weights.iter().cloned().collect(), &other_device)?;
            let classes = |prediction: ChipPrediction| -> anyhow::Result<Vec<u8>> {
                match prediction {
                    ChipPrediction::Planes(planes) => Ok(argmax_classes(&planes)?),
                    ChipPrediction::Boxes(_) => {
                        bail!("--agree-with compares class maps: a segmentation configuration")
                    }
                }
            };
            let mut same = 0usize;
            let mut total = 0usize;
            for host in eval_batches(&samples, &plan(4)) {
                let here = classes(model.predict(&host.images_on(&device)?)?)?;
                let there = classes(reference.predict(&host.images_on(&other_device)?)?)?;
                same += here.iter().zip(&there).filter(|(a, b)| a == b).count();
                total += here.len();
            }
            Some((other.clone(), same as f64 / total.max(1) as f64, total))
        }
        None => None,
    };

    if args.train_batch > 0 {
        let batch = args.train_batch;
        let host = &eval_batches(&batch_of(batch), &plan(batch))[0];
        let images = host.images_on(&device)?;
        let named: Vec<_> = {
            let data = varmap.data().lock().expect("varmap lock");
            data.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
        };
        let mut optimiser = AdamW::new(named, config.train.weight_decay);
        let rates = StepRates {
            lr: 1e-4,
            encoder_factor: 1.0,
            beta1: 0.9,
        };
        // Seconds of each phase per step (CPU only: on a GPU they would need a sync each).
        let mut phases: Vec<[f64; 3]> = Vec::new();
        let seconds = median_time(args.repeats, &device, || {
            let start = Instant::now();
            let value = trainable.losses(&images, host, Mode::train(false))?.total;
            let forward = Instant::now();
            let grads = value.backward()?;
            let backward = Instant::now();
            optimiser.step(&grads, rates)?;
            phases.push([
                (forward - start).as_secs_f64(),
                (backward - forward).as_secs_f64(),
                backward.elapsed().as_secs_f64(),
            ]);
            Ok(())
        })?;
        figures.push((format!("train_b{batch}"), seconds));
        if device.is_cpu() {
            // After the two warm-up steps.
            let timed = &phases[2.min(phases.len())..];
            for (i, name) in ["forward", "backward", "optimiser"].iter().enumerate() {
                if let Some(phase) = median(timed.iter().map(|p| p[i]).collect()) {
                    figures.push((format!("train_b{batch}_{name}"), phase));
                }
            }
        }
    }

    if json {
        let mut out = serde_json::Map::new();
        for (name, seconds) in &figures {
            out.insert(name.clone(), json!(seconds));
        }
        out.insert("config".into(), json!(config.name));
        out.insert("device".into(), json!(args.device));
        out.insert(
            "kernels".into(),
            json!(format!("{:?}", crate::nn::kernels::backend()).to_lowercase()),
        );
        out.insert("tile".into(), json!(size));
        out.insert("parameters".into(), json!(parameter_count(&varmap)));
        if let Some((other, fraction, pixels)) = &agreement {
            out.insert(
                "agreement".into(),
                json!({"with": other, "fraction": fraction, "pixels": pixels}),
            );
        }
        println!("{}", serde_json::Value::Object(out));
    } else {
        eprintln!(
            "{} ({} parameters) at {size} px on {}",
            config.name,
            parameter_count(&varmap),
            args.device
        );
        for (name, seconds) in &figures {
            println!("{name} areo={seconds:.6}");
        }
        if let Some((other, fraction, pixels)) = &agreement {
            println!("agreement_with_{other} areo={fraction:.6} ({pixels} pixels)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One convolution shape of the U-Net and how many layers have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ConvLayer {
    channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    side: usize,
}

impl ConvLayer {
    fn new(
        channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        side: usize,
    ) -> Self {
        ConvLayer {
            channels,
            out_channels,
            kernel,
            stride,
            padding: kernel / 2,
            side,
        }
    }

    /// `conv_<in>_<out>_k<kernel>_s<stride>_<side>px`, the key the PyTorch side prints too.
    fn key(&self) -> String {
        format!(
            "conv_{}_{}_k{}_s{}_{}px",
            self.channels, self.out_channels, self.kernel, self.stride, self.side
        )
    }
}

/// The convolutions of the U-Net `model` at `tile` px, as src/nn/models/unet builds it, with
/// the number of layers of each shape.
fn conv_layers(
    model: &crate::nn::config::ModelConfig,
    tile: usize,
) -> anyhow::Result<Vec<(ConvLayer, usize)>> {
    let crate::nn::config::ModelConfig::UNet(model) = model else {
        bail!("bench conv measures a U-Net's convolutions: a kind = \"unet\" configuration");
    };
    let (blocks, widths) = model.shape().map_err(anyhow::Error::msg)?;
    let mut layers = vec![ConvLayer::new(model.in_channels, widths[0], 7, 2, tile)];
    let (mut channels, mut side) = (widths[0], tile / 4);
    for (stage, &count) in blocks.iter().enumerate() {
        let width = widths[stage + 1];
        for block in 0..count {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            layers.push(ConvLayer::new(channels, width, 3, stride, side));
            if stride != 1 || channels != width {
                layers.push(ConvLayer::new(channels, width, 1, stride, side));
            }
            side /= stride;
            layers.push(ConvLayer::new(width, width, 3, 1, side));
            channels = width;
        }
    }
    let input_skip = if model.input_skip {
        model.in_channels
    } else {
        0
    };
    let skips = [widths[3], widths[2], widths[1], widths[0], input_skip];
    for (&out, skip) in model.decoder.iter().zip(skips) {
        side *= 2;
        layers.push(ConvLayer::new(channels + skip, out, 3, 1, side));
        layers.push(ConvLayer::new(out, out, 3, 1, side));
        channels = out;
    }
    layers.push(ConvLayer::new(channels, model.classes, 3, 1, side));
    let mut counted: Vec<(ConvLayer, usize)> = Vec::new();
    for layer in layers {
        match counted.iter_mut().find(|(known, _)| *known == layer) {
            Some((_, count)) => *count += 1,
            None => counted.push((layer, 1)),
        }
    }
    Ok(counted)
}

/// Per convolution shape: forward, input gradient and weight gradient with areo's kernels,
/// forward and whole backward with candle's, milliseconds per call.
fn conv(args: ConvBenchArgs, json: bool) -> anyhow::Result<ExitCode> {
    use crate::nn::kernels::conv::{forward, input_gradient, weight_gradient, Epilogue, Geometry};
    let mut config = RunConfig::read(&args.config).map_err(anyhow::Error::msg)?;
    if let Some(tile) = args.tile {
        config.train.tile = tile;
    }
    let device = Device::Cpu;
    let mut rows = Vec::new();
    let mut rng = fastrand::Rng::with_seed(7);
    for (layer, count) in conv_layers(&config.model, config.train.tile as usize)? {
        let input_shape = [args.batch, layer.channels, layer.side, layer.side];
        let weight_shape = [
            layer.out_channels,
            layer.channels,
            layer.kernel,
            layer.kernel,
        ];
        let g = Geometry::of(&input_shape, &weight_shape, layer.stride, layer.padding)?;
        let random = |n: usize, rng: &mut fastrand::Rng| -> Vec<f32> {
            (0..n).map(|_| rng.f32() - 0.5).collect()
        };
        let input = random(input_shape.iter().product(), &mut rng);
        let weight = random(weight_shape.iter().product(), &mut rng);
        let output_grad = random(g.output_shape().elem_count(), &mut rng);
        let time = |work: &mut dyn FnMut() -> candle_core::Result<()>| {
            median_time(args.repeats, &device, work).map(|s| s * 1e3)
        };
        let fwd = time(&mut || {
            forward(&g, &input, &weight, Epilogue::default());
            Ok(())
        })?;
        let input_grad = time(&mut || {
            input_gradient(&g, &output_grad, &weight);
            Ok(())
        })?;
        let weight_grad = time(&mut || {
            weight_gradient(&g, &input, &output_grad);
            Ok(())
        })?;
        let x = candle_core::Var::from_slice(&input, &input_shape[..], &device)?;
        let w = candle_core::Var::from_slice(&weight, &weight_shape[..], &device)?;
        let grad = Tensor::from_slice(&output_grad, g.output_shape(), &device)?;
        let candle_fwd = time(&mut || {
            x.conv2d(&w, layer.padding, layer.stride, 1, 1)?;
            Ok(())
        })?;
        let candle_bwd = time(&mut || {
            let y = x.conv2d(&w, layer.padding, layer.stride, 1, 1)?;
            (y * &grad)?.sum_all()?.backward()?;
            Ok(())
        })? - candle_fwd;
        rows.push((
            layer,
            count,
            [fwd, input_grad, weight_grad, candle_fwd, candle_bwd],
        ));
    }
    if json {
        let layers: Vec<_> = rows
            .iter()
            .map(|(layer, count, [fwd, gx, gw, cf, cb])| {
                json!({"layer": layer.key(), "count": count, "areo_forward_ms": fwd,
                       "areo_input_grad_ms": gx, "areo_weight_grad_ms": gw,
                       "candle_forward_ms": cf, "candle_backward_ms": cb})
            })
            .collect();
        println!("{}", json!({"batch": args.batch, "layers": layers}));
    } else {
        eprintln!(
            "{} at {} px, batch {}: ms per call (candle's backward is the whole of it)",
            config.name, config.train.tile, args.batch
        );
        for (layer, count, [fwd, gx, gw, cf, cb]) in &rows {
            println!(
                "{}:x{count} forward areo={fwd:.2} candle={cf:.2} input_grad areo={gx:.2} \
                 weight_grad areo={gw:.2} backward candle={cb:.2}",
                layer.key()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Real chips of `size` from the image, each with an all-background mask.
fn chips(path: &Path, size: usize) -> anyhow::Result<Vec<Sample>> {
    let image = Image::open(path).with_context(|| format!("reading {}", path.display()))?;
    if (image.width as usize) < size || (image.height as usize) < size {
        bail!(
            "{} is {} x {}, smaller than the {size} px tile",
            path.display(),
            image.width,
            image.height
        );
    }
    let spec = TileSpec {
        size: size as u32,
        stride: (size / 2) as u32,
        edge: Edge::ShiftInward,
        skip_no_data: None,
    };
    let scale = image.depth.max();
    Ok(tile(&image, &spec)?
        .into_iter()
        .map(|chip| Sample {
            image: chip.image.data.iter().map(|v| v / scale).collect(),
            mask: vec![0; size * size],
            boxes: Vec::new(),
            width: size,
            height: size,
            bands: chip.image.bands as usize,
        })
        .collect())
}

/// Median seconds of `repeats` runs of `work` after two warm-up runs, waiting for the device
/// to finish each.
fn median_time(
    repeats: usize,
    device: &Device,
    mut work: impl FnMut() -> candle_core::Result<()>,
) -> anyhow::Result<f64> {
    for _ in 0..2 {
        work()?;
    }
    device.synchronize()?;
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        work()?;
        device.synchronize()?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(times).expect("at least one repeat"))
}

/// The middle value (the upper of the two middle ones for an even count); none of none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}
