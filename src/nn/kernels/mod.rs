//! areo's own CPU kernels for the layers candle 0.11 runs slowly on the CPU (its conv2d
//! gathers im2col one strided scalar at a time and computes every input gradient through a
//! naive conv_transpose2d; its batch norm is a dozen single-threaded element-wise passes; its
//! ReLU backward is a comparison and a conversion that cost more than the convolution).
//! They are candle custom ops, so the model code and autograd stay as they are, and they are
//! used for f32 tensors on the CPU unless `AREO_KERNELS=candle` (or [`set_backend`]) asks for
//! candle's own ops, which every other device and dtype uses anyway.

pub mod adamw;
pub mod conv;
pub mod norm;
pub mod resample;
pub mod residual;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Result, Shape, Tensor};
use std::sync::atomic::{AtomicU8, Ordering};

/// Which implementation runs convolutions and batch norm on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// areo's kernels (the default).
    Areo,
    /// candle's built-in ops, for comparison.
    Candle,
}

const UNSET: u8 = 0;
static BACKEND: AtomicU8 = AtomicU8::new(UNSET);

impl Backend {
    fn code(self) -> u8 {
        match self {
            Backend::Areo => 1,
            Backend::Candle => 2,
        }
    }

    /// `areo` or `candle`.
    pub fn parse(name: &str) -> std::result::Result<Self, String> {
        match name {
            "areo" => Ok(Backend::Areo),
            "candle" => Ok(Backend::Candle),
            other => Err(format!("kernels {other:?}: areo or candle")),
        }
    }
}

/// The backend in use: the last [`set_backend`], else `AREO_KERNELS`, else areo's.
pub fn backend() -> Backend {
    match BACKEND.load(Ordering::Relaxed) {
        1 => Backend::Areo,
        2 => Backend::Candle,
        _ => {
            let chosen = std::env::var("AREO_KERNELS")
                .ok()
                .and_then(|name| Backend::parse(&name).ok())
                .unwrap_or(Backend::Areo);
            BACKEND.store(chosen.code(), Ordering::Relaxed);
            chosen
        }
    }
}

pub fn set_backend(backend: Backend) {
    BACKEND.store(backend.code(), Ordering::Relaxed);
}

/// Whether areo's kernels take this tensor: f32 on the CPU, with the areo backend chosen.
pub fn applies_to(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu)
        && x.dtype() == candle_core::DType::F32
        && backend() == Backend::Areo
}

/// conv2d without bias (N, C, H, W) * (O, C, KH, KW), square stride and padding.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if applies_to(x) {
        x.contiguous()?
            .apply_op2(&weight.contiguous()?, conv::Conv2d { stride, padding })
    } else {
        x.conv2d(weight, padding, stride, 1, 1)
    }
}

/// `relu(a + b)`, the end of a ResNet block, as one op with a one-pass backward.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if applies_to(a) {
        a.contiguous()?
            .apply_op2(&b.contiguous()?, residual::AddRelu)
    } else {
        (a + b)?.relu()
    }
}

/// Nearest-neighbour upsampling by 2 on both axes, (N, C, H, W) -> (N, C, 2H, 2W), with the
/// skip map (N, S, 2H, 2W) after it on the channel axis when there is one: a U-Net decoder's
/// input, made in one op on the CPU.
pub fn upsample_join(x: &Tensor, skip: Option<&Tensor>) -> Result<Tensor> {
    if applies_to(x) {
        let x = x.contiguous()?;
        return match skip {
            Some(skip) => x.apply_op2(&skip.contiguous()?, resample::UpsampleJoin),
            None => x.apply_op1(resample::Upsample2x),
        };
    }
    let (_, _, h, w) = x.dims4()?;
    let up = x.upsample_nearest2d(2 * h, 2 * w)?;
    match skip {
        Some(skip) => Tensor::cat(&[&up, skip], 1),
        None => Ok(up),
    }
}

/// Inference only (no gradient, no graph kept): conv2d with a per-channel bias (batch norm
/// folded into the weights gives one) and an optional ReLU, in one pass over the output.
pub fn conv2d_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    relu: bool,
) -> Result<Tensor> {
    if applies_to(x) {
        let op = FoldedConv2d {
            stride,
            padding,
            relu,
        };
        x.contiguous()?
            .apply_op3_no_bwd(&weight.contiguous()?, &bias.contiguous()?, &op)
    } else {
        let y = x
            .conv2d(weight, padding, stride, 1, 1)?
            .broadcast_add(&bias.reshape((1, (), 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

struct FoldedConv2d {
    stride: usize,
    padding: usize,
    relu: bool,
}

impl CustomOp3 for FoldedConv2d {
    fn name(&self) -> &'static str {
        "areo-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = conv::Geometry::of(
            input_layout.dims(),
            weight_layout.dims(),
            self.stride,
            self.padding,
        )?;
        let bias = contiguous_f32(bias, bias_layout, "conv2d bias")?;
        if bias.len() != g.out_channels {
            candle_core::bail!(
                "conv2d: {} bias values for {} output channels",
                bias.len(),
                g.out_channels
            )
        }
        let output = conv::forward(
            &g,
            contiguous_f32(input, input_layout, "conv2d input")?,
            contiguous_f32(weight, weight_layout, "conv2d weights")?,
            conv::Epilogue {
                bias: Some(bias),
                relu: self.relu,
            },
        );
        Ok((CpuStorage::F32(output), g.output_shape()))
    }
}

/// The f32 values of a contiguous CPU tensor (the wrappers make them contiguous first).
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{what}: areo's kernels take f32 tensors")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("{what}: areo's kernels take contiguous tensors"),
    }
}

/// The same for a tensor written in place.
fn contiguous_f32_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{what}: areo's kernels take f32 tensors")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut values[start..end]),
        None => candle_core::bail!("{what}: areo's kernels take contiguous tensors"),
    }
}

/// Values per rayon task of the element-wise kernels: enough that spawning pays.
const ELEMENTWISE_CHUNK: usize = 32 * 1024;

/// A read-only matrix operand: element (i, j) at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    fn row_major(data: &'a [f32], columns: usize) -> Self {
        Operand {
            data,
            row_stride: columns,
            col_stride: 1,
        }
    }

    /// Whether every element of an m x n matrix lies inside the slice.
    fn holds(&self, rows: usize, columns: usize) -> bool {
        rows == 0
            || columns == 0
            || (rows - 1) * self.row_stride + (columns - 1) * self.col_stride < self.data.len()
    }
}

/// `dst (m x n, row-major) = [dst +] lhs (m x k) . rhs (k x n)` on the gemm crate (the one
/// candle uses), over rayon's threads.
fn gemm_f32(
    dst: &mut [f32],
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
    mnk: (usize, usize, usize),
) {
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    gemm_f32_with(dst, accumulate, lhs, rhs, mnk, parallelism)
}

/// [`gemm_f32`] with the threading chosen by the caller.
fn gemm_f32_with(
    dst: &mut [f32],
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
    (m, n, k): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert!(dst.len() >= m * n, "gemm destination too small");
    // SAFETY: `dst` holds the m x n row-major block and is borrowed mutably.
    unsafe {
        gemm_raw(
            dst.as_mut_ptr(),
            n,
            accumulate,
            lhs,
            rhs,
            (m, n, k),
            parallelism,
        )
    }
}

/// The gemm into an m x n block at `dst` with rows `dst_row_stride` apart.
///
/// # Safety
/// Every `dst + i * dst_row_stride + j` (i < m, j < n) must be valid for writes and not be
/// read or written by anyone else during the call.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_row_stride: usize,
    accumulate: bool,
    lhs: Operand,
    rhs: Operand,
    (m, n, k): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert!(lhs.holds(m, k) && rhs.holds(k, n), "gemm operand too small");
    // SAFETY: the operands' indices are inside their slices (asserted above), the
    // destination's are the caller's promise.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
