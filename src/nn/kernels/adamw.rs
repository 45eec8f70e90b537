//! AdamW's update done in place: as candle tensor ops it is fourteen passes over every
//! parameter, each allocating its result (0.10 s of a 1.1 s ResNet-18 U-Net step here); in
//! place it is three streaming passes with no allocation.

use super::{contiguous_f32, contiguous_f32_mut, ELEMENTWISE_CHUNK as CHUNK};
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result};
use rayon::prelude::*;

fn same_length(a: usize, b: usize, what: &str) -> Result<()> {
    if a != b {
        candle_core::bail!("AdamW: {what} has {b} values for {a} parameters")
    }
    Ok(())
}

/// `moment = decay * moment + (1 - decay) * f(grad)`, with f the identity (first moment) or
/// the square (second moment).
pub struct MomentUpdate {
    pub decay: f32,
    pub squared: bool,
}

impl InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "areo-adamw-moment"
    }

    fn cpu_fwd(
        &self,
        moment: &mut CpuStorage,
        moment_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<()> {
        let moment = contiguous_f32_mut(moment, moment_layout, "AdamW moment")?;
        let grad = contiguous_f32(grad, grad_layout, "AdamW gradient")?;
        same_length(moment.len(), grad.len(), "the gradient")?;
        let (decay, rest) = (self.decay, 1.0 - self.decay);
        let squared = self.squared;
        moment
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(moment, grad)| {
                for (m, g) in moment.iter_mut().zip(grad) {
                    let g = if squared { g * g } else { *g };
                    *m = decay * *m + rest * g;
                }
            });
        Ok(())
    }
}

/// `param = param * (1 - lr * weight_decay) - lr * (m / c1) / (sqrt(v / c2) + eps)`, with c1
/// and c2 the bias corrections.
pub struct ParameterUpdate {
    pub lr: f32,
    pub weight_decay: f32,
    pub correction1: f32,
    pub correction2: f32,
    pub eps: f32,
}

impl InplaceOp3 for ParameterUpdate {
    fn name(&self) -> &'static str {
        "areo-adamw-update"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        param_layout: &Layout,
        m: &CpuStorage,
        m_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<()> {
        let param = contiguous_f32_mut(param, param_layout, "AdamW parameter")?;
        let m = contiguous_f32(m, m_layout, "AdamW first moment")?;
        let v = contiguous_f32(v, v_layout, "AdamW second moment")?;
        same_length(param.len(), m.len(), "the first moment")?;
        same_length(param.len(), v.len(), "the second moment")?;
        let keep = 1.0 - self.lr * self.weight_decay;
        let ParameterUpdate {
            lr,
            correction1,
            correction2,
            eps,
            ..
        } = *self;
        param
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(param, (m, v))| {
                for (p, (m, v)) in param.iter_mut().zip(m.iter().zip(v)) {
                    let step = (m / correction1) / ((v / correction2).sqrt() + eps);
                    *p = *p * keep - step * lr;
                }
            });
        Ok(())
    }
}
