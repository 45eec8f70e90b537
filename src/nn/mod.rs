//! Neural networks on candle: the model zoo (`models/`: U-Net, SSD) on shared backbones,
//! kernels, optimiser and schedule, data loading, checkpoints, one training loop, tiled
//! inference and the run folder (layer 2: tensors on a device, run files on disk).

pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod infer;
pub mod init;
pub mod kernels;
pub mod models;
pub mod optim;
pub mod run;
pub mod train;

use candle_core::Device;
use serde::{Deserialize, Serialize};

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

/// Memory on a GPU in bytes: in use on the whole device (every process's, as the driver counts
/// it) and its total. Readings of one device order by use, so the busiest is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceMemory {
    pub used: u64,
    pub total: u64,
}

impl std::fmt::Display for DeviceMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const GIB: f64 = (1u64 << 30) as f64;
        write!(
            f,
            "{:.1}/{:.1} GiB",
            self.used as f64 / GIB,
            self.total as f64 / GIB
        )
    }
}

/// The CUDA driver's reading of `device`'s memory; None on the CPU, or if the driver cannot
/// say (a reading must never stop a run).
pub fn device_memory(device: &Device) -> Option<DeviceMemory> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => {
            let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
            Some(DeviceMemory {
                used: total.saturating_sub(free) as u64,
                total: total as u64,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_memory_reads_nothing_on_the_cpu_and_prints_gib() {
        assert_eq!(device_memory(&Device::Cpu), None);
        let h200 = 150_754_820_096;
        let early = DeviceMemory {
            used: 6 << 30,
            total: h200,
        };
        assert_eq!(early.to_string(), "6.0/140.4 GiB");
        let busier = DeviceMemory {
            used: 7 << 30,
            total: h200,
        };
        // The peak a run keeps: no reading yet, then the busier of each two.
        assert_eq!(None.max(Some(early)).max(Some(busier)), Some(busier));
        assert_eq!(Some(busier).max(Some(early)), Some(busier));
    }
}
