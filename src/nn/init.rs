//! Seeded weight initialisation: candle's CPU generator cannot be seeded, and a run must be
//! reproducible from its seed.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;

/// Gaussian samples from a seeded generator (Box-Muller).
pub struct Normal {
    rng: fastrand::Rng,
    spare: Option<f64>,
}

impl Normal {
    pub fn new(seed: u64) -> Self {
        Normal {
            rng: fastrand::Rng::with_seed(seed),
            spare: None,
        }
    }

    pub fn sample(&mut self) -> f64 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        // 1 - f64() is in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.rng.f64()).ln()).sqrt();
        let angle = std::f64::consts::TAU * self.rng.f64();
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }
}

/// Sets every variable of a fresh network from `seed`, visiting them in name order:
/// convolutions followed by batch norm get He (Kaiming) normal weights scaled by fan-out as
/// torchvision does; convolutions with a bias (the heads) get PyTorch's default uniform
/// bounds 1/sqrt(fan-in) for both; batch norm starts at gamma 1, beta 0 (candle's defaults,
/// left as they are).
pub fn initialise(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut normal = Normal::new(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let layer = name.rsplit_once('.').map_or("", |(layer, _)| layer);
        let weight = data
            .get(&format!("{layer}.weight"))
            .filter(|w| w.rank() == 4);
        let biased = data.contains_key(&format!("{layer}.bias"));
        let values: Vec<f32> = if let (Some(weight), true) = (weight, biased) {
            let (_, input, kh, kw) = weight.dims4()?;
            let bound = 1.0 / ((input * kh * kw) as f64).sqrt();
            (0..var.elem_count())
                .map(|_| ((normal.rng.f64() * 2.0 - 1.0) * bound) as f32)
                .collect()
        } else if dims.len() == 4 {
            let (output, _, kh, kw) = var.dims4()?;
            let std = (2.0 / (output * kh * kw) as f64).sqrt();
            (0..var.elem_count())
                .map(|_| (normal.sample() * std) as f32)
                .collect()
        } else {
            continue;
        };
        let tensor =
            Tensor::from_vec(values, dims.as_slice(), var.device())?.to_dtype(var.dtype())?;
        var.set(&tensor)?;
    }
    Ok(())
}
