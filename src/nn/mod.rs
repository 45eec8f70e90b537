//! Neural networks on candle: the U-Net, its losses, optimiser and schedule, data loading,
//! checkpoints, training and tiled inference (layer 2: tensors on a device, run files on disk).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod infer;
pub mod init;
pub mod kernels;
pub mod loss;
pub mod model;
pub mod optim;
pub mod train;

use candle_core::Device;

/// `cpu`, `cuda` or `cuda:N`. A binary built without the `cuda` feature says so.
pub fn device(name: &str) -> Result<Device, String> {
    match parse_device(name)? {
        None => Ok(Device::Cpu),
        Some(ordinal) => cuda(ordinal),
    }
}

/// Checks a device name without opening the device.
pub fn check_device_name(name: &str) -> Result<(), String> {
    parse_device(name).map(|_| ())
}

/// None for the CPU, else the CUDA ordinal.
fn parse_device(name: &str) -> Result<Option<usize>, String> {
    match name {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => Ok(Some(ordinal)),
            _ => Err(format!("device {other:?}: cpu, cuda or cuda:N")),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device, String> {
    if !candle_core::utils::cuda_is_available() {
        return Err(format!(
            "device cuda:{ordinal}: this areo was built without CUDA (cargo build --release \
             --features cuda)"
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| format!("device cuda:{ordinal}: {e}"))
}
