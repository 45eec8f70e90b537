//! Weights and checkpoints as safetensors files, written atomically (a kill -9 leaves the
//! previous file whole). A checkpoint holds the weights, the optimiser's moments and, in the
//! file's metadata, the training state as JSON.

use crate::fsio::write_atomically;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::Path;

/// The metadata key the training state is stored under.
const STATE_KEY: &str = "areo.state";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

fn problem(path: &Path, reason: impl ToString) -> CheckpointError {
    CheckpointError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `tensors` (and the state, when given) to `path` atomically.
pub fn save(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    state: Option<&serde_json::Value>,
) -> Result<(), CheckpointError> {
    let metadata = state.map(|state| HashMap::from([(STATE_KEY.to_string(), state.to_string())]));
    let mut tensors = tensors;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = safetensors::serialize(tensors, metadata).map_err(|e| problem(path, e))?;
    write_atomically(path, &bytes).map_err(|e| problem(path, e))
}

/// The model's variables by name.
pub fn weights(varmap: &VarMap) -> Vec<(String, Tensor)> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect()
}

/// Reads a file written by `save`: its tensors (on `device`) and its state.
pub fn load(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, Option<serde_json::Value>), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| problem(path, e))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| problem(path, format!("not a safetensors file ({e})")))?;
    let state = match metadata.metadata().as_ref().and_then(|m| m.get(STATE_KEY)) {
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| problem(path, format!("training state is not JSON: {e}")))?,
        ),
        None => None,
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| problem(path, format!("unreadable tensors ({e})")))?;
    Ok((tensors, state))
}

/// Sets every variable of `varmap` from `tensors`; each must be there with its shape.
pub fn restore(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, var) in data.iter() {
        let tensor = tensors
            .get(name)
            .ok_or_else(|| problem(path, format!("has no {name}: not this model's weights")))?;
        set_checked(var, tensor, name, "the model", path)?;
    }
    Ok(())
}

/// Sets `var` from `tensor` (converted to its dtype and device) after checking the shape.
fn set_checked(
    var: &candle_core::Var,
    tensor: &Tensor,
    name: &str,
    wanted_by: &str,
    path: &Path,
) -> Result<(), CheckpointError> {
    if tensor.dims() != var.dims() {
        return Err(problem(
            path,
            format!(
                "{name} is {:?}, {wanted_by} wants {:?}",
                tensor.dims(),
                var.dims()
            ),
        ));
    }
    let tensor = tensor
        .to_dtype(var.dtype())
        .and_then(|t| t.to_device(var.device()))
        .map_err(|e| problem(path, e))?;
    var.set(&tensor).map_err(|e| problem(path, e))
}

/// Pretrained weights: a safetensors file, or a PyTorch file (`torch.save` of a state dict,
/// such as torchvision's downloads, or of a checkpoint holding one under `state_dict` or
/// `model`) read by candle's pickle reader.
fn pretrained(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    if safetensors {
        return Ok(load(path, &Device::Cpu)?.0);
    }
    let mut last_error = None;
    for key in [None, Some("state_dict"), Some("model")] {
        match candle_core::pickle::read_all_with_key(path, key) {
            Ok(tensors) if !tensors.is_empty() => return Ok(tensors.into_iter().collect()),
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    Err(problem(
        path,
        match last_error {
            Some(e) => format!("neither safetensors nor a readable PyTorch file ({e})"),
            None => {
                "a PyTorch file with no tensors (looked at the top, state_dict and model)".into()
            }
        },
    ))
}

/// Loads torchvision-named ResNet weights (safetensors or a PyTorch `.pth`) into the backbone
/// every family mounts as `encoder.` (+ their names). A 3-band stem loads into a 1-band model
/// summed over its bands (as timm adapts it). Returns how many tensors were loaded; names the
/// model lacks (the classifier `fc.*`, batch norm's `num_batches_tracked`) are skipped.
pub fn load_encoder(varmap: &VarMap, path: &Path) -> Result<usize, CheckpointError> {
    let tensors = pretrained(path)?;
    let data = varmap.data().lock().expect("varmap lock");
    let mut loaded = 0;
    for (name, tensor) in &tensors {
        let Some(var) = data.get(&format!("encoder.{name}")) else {
            continue;
        };
        let mut tensor = tensor.clone();
        if name == "conv1.weight" && tensor.dims().get(1) == Some(&3) && var.dims()[1] == 1 {
            tensor = tensor.sum_keepdim(1).map_err(|e| problem(path, e))?;
        }
        set_checked(var, &tensor, name, "the encoder", path)?;
        loaded += 1;
    }
    if loaded == 0 {
        return Err(problem(path, "has no tensor with a torchvision ResNet name (conv1.weight, layer1.0.conv1.weight, ...)"));
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::UNetConfig;
    use crate::nn::models::unet::UNet;
    use candle_core::DType;
    use candle_nn::VarBuilder;

    fn model(varmap: &VarMap) -> UNet {
        let config = UNetConfig {
            encoder: "resnet".into(),
            blocks: Some([1, 1, 1, 1]),
            widths: Some([4, 4, 8, 8, 8]),
            decoder: [8, 8, 4, 4, 4],
            in_channels: 1,
            classes: 2,
            input_skip: false,
        };
        UNet::new(
            &config,
            VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
        )
        .unwrap()
    }

    #[test]
    fn torchvision_weights_load_into_the_encoder_with_the_stem_summed_over_bands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet.safetensors");
        let stem: Vec<f32> = (0..4 * 3 * 7 * 7).map(|i| i as f32).collect();
        let stem = Tensor::from_vec(stem, (4, 3, 7, 7), &Device::Cpu).unwrap();
        let bn = Tensor::from_vec(vec![0.5f32, 1.5, 2.5, 3.5], 4, &Device::Cpu).unwrap();
        let fc = Tensor::zeros((1000, 8), DType::F32, &Device::Cpu).unwrap();
        save(
            &path,
            vec![
                ("conv1.weight".into(), stem.clone()),
                ("bn1.running_mean".into(), bn.clone()),
                ("fc.weight".into(), fc),
            ],
            None,
        )
        .unwrap();
        let varmap = VarMap::new();
        let _model = model(&varmap);
        assert_eq!(load_encoder(&varmap, &path).unwrap(), 2, "fc.* is skipped");
        let data = varmap.data().lock().unwrap();
        let loaded = data["encoder.conv1.weight"].as_tensor();
        assert_eq!(loaded.dims(), [4, 1, 7, 7]);
        let want = stem.sum_keepdim(1).unwrap();
        let diff = (loaded - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        let mean = data["encoder.bn1.running_mean"]
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(mean, vec![0.5, 1.5, 2.5, 3.5]);
    }

    /// A torchvision-named ResNet saved by PyTorch (`data/backbones/tiny-resnet`, made by
    /// bench/backbone_torch.py) loads as the backbone of a detector, and its maps in
    /// evaluation mode are PyTorch's.
    #[test]
    fn a_pytorch_pth_loads_as_the_backbone_with_pytorchs_maps() {
        use crate::nn::backbone::resnet::Encoder;
        use crate::nn::config::RunConfig;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/backbones/tiny-resnet");
        let config = RunConfig::parse(
            "ssd.toml",
            "name = \"s\"\n[model]\nkind = \"ssd\"\nencoder = \"resnet\"\n\
             blocks = [1, 1, 1, 1]\nwidths = [4, 4, 8, 8, 8]\nin_channels = 1\nclasses = 2\n\
             grids = [4]\n[train]\ntile = 64\n",
        )
        .unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let _detector = crate::nn::models::build(&config, vb.clone()).unwrap();
        let loaded = load_encoder(&varmap, &dir.join("backbone.pth")).unwrap();
        // Every encoder variable: the stem's convolution and batch norm (5 tensors), the four
        // blocks' two of each (40) and three downsampling pairs (15).
        let encoder_variables = varmap
            .data()
            .lock()
            .unwrap()
            .keys()
            .filter(|n| n.starts_with("encoder."))
            .count();
        assert_eq!(loaded, encoder_variables);
        assert_eq!(loaded, 60);
        // The encoder again over the loaded variables, to read its maps.
        let encoder = Encoder::new(vb.pp("encoder"), 1, [1, 1, 1, 1], [4, 4, 8, 8, 8]).unwrap();
        let (input, _) = load(&dir.join("input.safetensors"), &Device::Cpu).unwrap();
        let (want, _) = load(&dir.join("features.safetensors"), &Device::Cpu).unwrap();
        let maps = encoder.forward_t(&input["input"], false).unwrap();
        for (name, got) in ["stem", "layer1", "layer2", "layer3", "layer4"]
            .iter()
            .zip(maps)
        {
            let want = &want[*name];
            assert_eq!(got.dims(), want.dims(), "{name}");
            let largest = want
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let difference = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                difference <= 1e-5 * largest,
                "{name}: {difference} off, largest value {largest}"
            );
        }
    }

    #[test]
    fn weights_of_another_shape_or_no_resnet_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wrong = dir.path().join("wrong.safetensors");
        let t = Tensor::zeros((9, 1, 7, 7), DType::F32, &Device::Cpu).unwrap();
        save(&wrong, vec![("conv1.weight".into(), t.clone())], None).unwrap();
        let varmap = VarMap::new();
        let _model = model(&varmap);
        let error = load_encoder(&varmap, &wrong).unwrap_err().to_string();
        assert!(error.contains("conv1.weight is [9, 1, 7, 7]"), "{error}");
        let unrelated = dir.path().join("unrelated.safetensors");
        save(&unrelated, vec![("backbone.stem".into(), t)], None).unwrap();
        let error = load_encoder(&varmap, &unrelated).unwrap_err().to_string();
        assert!(
            error.contains("no tensor with a torchvision ResNet name"),
            "{error}"
        );
    }
}
