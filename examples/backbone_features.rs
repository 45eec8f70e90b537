//! The backbone's maps for bench/backbone.sh: loads torchvision-named ResNet weights (a
//! PyTorch `.pth` or safetensors) the way `--encoder-weights` does for every family, runs the
//! input in evaluation mode and writes the stem's map and each stage's as safetensors.
//!
//! usage: backbone_features WEIGHTS INPUT.safetensors OUT.safetensors resnet18|resnet34|tiny

use areo::nn::backbone::resnet::Encoder;
use areo::nn::checkpoint::{load, load_encoder, save};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, input, out, shape] = &args[..] else {
        return Err("usage: backbone_features WEIGHTS INPUT.safetensors OUT.safetensors resnet18|resnet34|tiny".into());
    };
    let (bands, blocks, widths) = match shape.as_str() {
        "resnet18" => (3, [2, 2, 2, 2], [64, 64, 128, 256, 512]),
        "resnet34" => (3, [3, 4, 6, 3], [64, 64, 128, 256, 512]),
        "tiny" => (1, [1, 1, 1, 1], [4, 4, 8, 8, 8]),
        other => return Err(format!("unknown shape {other}").into()),
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let encoder = Encoder::new(vb.pp("encoder"), bands, blocks, widths)?;
    let loaded = load_encoder(&varmap, &PathBuf::from(weights))?;
    let variables = varmap.data().lock().expect("varmap lock").len();
    if loaded != variables {
        return Err(format!("loaded {loaded} tensors for {variables} variables").into());
    }
    let (inputs, _) = load(&PathBuf::from(input), &Device::Cpu)?;
    let x = &inputs["input"];
    let maps = encoder.forward_t(x, false)?;
    let names = ["stem", "layer1", "layer2", "layer3", "layer4"];
    let named = names.iter().map(|n| n.to_string()).zip(maps).collect();
    save(&PathBuf::from(out), named, None)?;
    eprintln!("{loaded} tensors loaded from {weights}");
    Ok(())
}
