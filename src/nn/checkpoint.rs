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
        if tensor.dims() != var.dims() {
            return Err(problem(
                path,
                format!(
                    "{name} is {:?}, the model wants {:?}",
                    tensor.dims(),
                    var.dims()
                ),
            ));
        }
        let tensor = tensor
            .to_dtype(var.dtype())
            .and_then(|t| t.to_device(var.device()))
            .map_err(|e| problem(path, e))?;
        var.set(&tensor).map_err(|e| problem(path, e))?;
    }
    Ok(())
}

/// Loads torchvision-named ResNet weights into the encoder (`encoder.` + their names). A
/// 3-band stem loads into a 1-band model summed over its bands (as timm adapts it). Returns
/// how many tensors were loaded; names the model lacks (the classifier `fc.*`) are skipped.
pub fn load_encoder(varmap: &VarMap, path: &Path) -> Result<usize, CheckpointError> {
    let (tensors, _) = load(path, &Device::Cpu)?;
    let data = varmap.data().lock().expect("varmap lock");
    let mut loaded = 0;
    for (name, tensor) in &tensors {
        let Some(var) = data.get(&format!("encoder.{name}")) else {
            continue;
        };
        let mut tensor = tensor.to_dtype(var.dtype()).map_err(|e| problem(path, e))?;
        if name == "conv1.weight" && tensor.dims().get(1) == Some(&3) && var.dims()[1] == 1 {
            tensor = tensor.sum_keepdim(1).map_err(|e| problem(path, e))?;
        }
        if tensor.dims() != var.dims() {
            return Err(problem(
                path,
                format!(
                    "{name} is {:?}, the encoder wants {:?}",
                    tensor.dims(),
                    var.dims()
                ),
            ));
        }
        let tensor = tensor
            .to_device(var.device())
            .map_err(|e| problem(path, e))?;
        var.set(&tensor).map_err(|e| problem(path, e))?;
        loaded += 1;
    }
    if loaded == 0 {
        return Err(problem(path, "has no tensor with a torchvision ResNet name (conv1.weight, layer1.0.conv1.weight, ...)"));
    }
    Ok(loaded)
}
