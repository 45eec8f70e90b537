//! 2-D convolution of f32 NCHW tensors on the CPU: a packed im2col (whole rows copied, the
//! padding written as zero spans) and one gemm per image, so the output lands in NCHW with no
//! repacking. The backward pass stays on the same path: the weight gradient is one gemm per
//! image against the same im2col matrix, the input gradient one gemm by the transposed weights
//! and a col2im that scatters (adds) the columns back, in parallel over channels. A 1 x 1
//! stride-1 convolution needs no im2col at all: the image is already the matrix.

use super::{contiguous_f32, gemm_f32, gemm_f32_with, gemm_raw, Operand};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The shapes of one convolution: input (batch, channels, height, width), weights
/// (out_channels, channels, kernel_h, kernel_w), square stride and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
}

impl Geometry {
    /// The geometry of convolving `input` (N, C, H, W) with `weight` (O, C, KH, KW), checked.
    pub fn of(input: &[usize], weight: &[usize], stride: usize, padding: usize) -> Result<Self> {
        let (
            &[batch, channels, height, width],
            &[out_channels, weight_channels, kernel_h, kernel_w],
        ) = (input, weight)
        else {
            candle_core::bail!("conv2d takes (N, C, H, W) input and (O, C, KH, KW) weights, got {input:?} and {weight:?}")
        };
        if weight_channels != channels {
            candle_core::bail!(
                "conv2d: the input has {channels} channels, the weights expect {weight_channels}"
            )
        }
        if stride == 0 {
            candle_core::bail!("conv2d: stride 0")
        }
        if height + 2 * padding < kernel_h || width + 2 * padding < kernel_w {
            candle_core::bail!(
                "conv2d: a {kernel_h} x {kernel_w} kernel does not fit a {height} x {width} input padded by {padding}"
            )
        }
        Ok(Geometry {
            batch,
            channels,
            height,
            width,
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            padding,
        })
    }

    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel_h) / self.stride + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel_w) / self.stride + 1
    }

    fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    fn in_pixels(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col matrix: one per (channel, kernel row, kernel column).
    fn patch(&self) -> usize {
        self.channels * self.kernel_h * self.kernel_w
    }

    /// A 1 x 1 stride-1 unpadded convolution, whose im2col matrix is the image itself.
    fn is_pointwise(&self) -> bool {
        self.kernel_h == 1 && self.kernel_w == 1 && self.stride == 1 && self.padding == 0
    }

    pub fn output_shape(&self) -> Shape {
        Shape::from((
            self.batch,
            self.out_channels,
            self.out_height(),
            self.out_width(),
        ))
    }

    /// Output columns `lo..hi` whose input column `ox * stride + kx - padding` is inside the
    /// image; the others read padding.
    fn inside(&self, offset: usize, out_len: usize, in_len: usize) -> (usize, usize) {
        let (s, p) = (self.stride as isize, self.padding as isize);
        let offset = offset as isize - p;
        // Smallest ox with ox * s + offset >= 0, and smallest with ox * s + offset >= in_len.
        let lo = if offset >= 0 {
            0
        } else {
            (-offset + s - 1) / s
        };
        let hi = (in_len as isize - offset + s - 1).div_euclid(s);
        let hi = hi.clamp(0, out_len as isize) as usize;
        let lo = (lo as usize).min(hi);
        (lo, hi)
    }

    /// The input row read by output row `oy` at kernel row `ky`, if inside the image.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let row = (oy * self.stride + ky) as isize - self.padding as isize;
        (row >= 0 && (row as usize) < self.height).then_some(row as usize)
    }
}

/// Rows of col2im work per rayon task: enough floats that spawning pays.
fn rows_per_task(row_len: usize) -> usize {
    (16_384 / row_len.max(1)).max(1)
}

/// The most floats a band's im2col matrix should hold: it is filled and read at once, so it
/// stays in a core's L2 cache instead of streaming a whole image's worth through memory.
const BAND_FLOATS: usize = 96 * 1024;

thread_local! {
    /// Each thread's im2col buffer, kept between calls: a fresh one per band cost a page-
    /// faulting allocation and a zero fill of the whole band (half of im2col's time).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's im2col buffer, or an empty one if a band on this thread already holds it
/// (rayon may start another band while a gemm waits).
fn take_scratch() -> Vec<f32> {
    SCRATCH.with(|cell| cell.take())
}

/// Returns a buffer from [`take_scratch`] for the next band on this thread.
fn give_back_scratch(scratch: Vec<f32>) {
    SCRATCH.with(|cell| {
        let held = cell.take();
        cell.set(if held.capacity() >= scratch.capacity() {
            held
        } else {
            scratch
        });
    })
}

/// A band of whole output rows of one image: the unit of work of the forward pass and the
/// weight gradient.
#[derive(Clone, Copy, Debug)]
struct Band {
    image: usize,
    first_row: usize,
    rows: usize,
}

impl Band {
    /// The first output pixel and the number of pixels of the band.
    fn pixels(&self, g: &Geometry) -> (usize, usize) {
        let width = g.out_width();
        (self.first_row * width, self.rows * width)
    }
}

/// The fewest output pixels a band should have: the gemm's other dimension (its inner one,
/// for the weight gradient) must be long enough to amortise packing and the destination.
const BAND_MIN_PIXELS: usize = 256;

/// The bands of every image, each at most `BAND_FLOATS` of im2col unless that would leave
/// fewer than `BAND_MIN_PIXELS` pixels (and at least one row).
fn bands(g: &Geometry) -> Vec<Band> {
    let width = g.out_width();
    let per_row = g.patch() * width;
    let rows = (BAND_FLOATS / per_row.max(1))
        .max(BAND_MIN_PIXELS.div_ceil(width))
        .clamp(1, g.out_height());
    (0..g.batch)
        .flat_map(|image| {
            (0..g.out_height())
                .step_by(rows)
                .map(move |first_row| Band {
                    image,
                    first_row,
                    rows: rows.min(g.out_height() - first_row),
                })
        })
        .collect()
}

/// The gemm of one band runs on one thread when there are bands enough to share out, else
/// spreads over all of them.
fn band_parallelism(bands: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && bands < 2 * threads {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// The band's im2col matrix, patch x band pixels (row r: channel r / (KH KW), kernel offset
/// r % (KH KW)), read from `image` (channels x H x W). Pointwise convolutions read the image
/// in place; others fill the front of `scratch`, which only ever grows (filling it anew for
/// every band cost as much as the im2col itself).
fn band_columns<'a>(
    g: &Geometry,
    image: &'a [f32],
    band: Band,
    scratch: &'a mut Vec<f32>,
) -> Operand<'a> {
    let (first, count) = band.pixels(g);
    if g.is_pointwise() {
        return Operand {
            data: &image[first..],
            row_stride: g.in_pixels(),
            col_stride: 1,
        };
    }
    let needed = g.patch() * count;
    if scratch.len() < needed {
        scratch.resize(needed, 0.0);
    }
    let scratch = &mut scratch[..needed];
    if g.stride == 1 && g.out_width() == g.width {
        fill_shifted_columns(g, image, band, scratch);
        return Operand::row_major(scratch, count);
    }
    let (ow, kk) = (g.out_width(), g.kernel_h * g.kernel_w);
    let plane = g.in_pixels();
    for (row, out) in scratch.chunks_exact_mut(count).enumerate() {
        let (c, ky, kx) = (row / kk, (row % kk) / g.kernel_w, row % g.kernel_w);
        let source = &image[c * plane..(c + 1) * plane];
        let (lo, hi) = g.inside(kx, ow, g.width);
        for (oy, out_row) in (band.first_row..).zip(out.chunks_exact_mut(ow)) {
            let Some(iy) = g.input_row(oy, ky) else {
                out_row.fill(0.0);
                continue;
            };
            let line = &source[iy * g.width..(iy + 1) * g.width];
            out_row[..lo].fill(0.0);
            out_row[hi..].fill(0.0);
            if lo == hi {
                continue;
            }
            let first = lo * g.stride + kx - g.padding;
            if g.stride == 1 {
                out_row[lo..hi].copy_from_slice(&line[first..first + hi - lo]);
            } else {
                for (dst, src) in out_row[lo..hi]
                    .iter_mut()
                    .zip(line[first..].iter().step_by(g.stride))
                {
                    *dst = *src;
                }
            }
        }
    }
    Operand::row_major(scratch, count)
}

/// [`band_columns`] for a stride-1 convolution whose output is as wide as its input (padding
/// (kernel - 1) / 2): an im2col row is then the image shifted by a constant, so each row is one
/// block copy of the input rows it reads, with the few columns that wrapped round from the
/// neighbouring row zeroed after. Row-by-row copies cost a call per image row and patch row,
/// which dominated the narrow deep layers (8-16 px rows).
fn fill_shifted_columns(g: &Geometry, image: &[f32], band: Band, columns: &mut [f32]) {
    let (width, kk) = (g.width, g.kernel_h * g.kernel_w);
    let plane = g.in_pixels();
    let count = band.rows * width;
    // Band rows whose input row (oy + ky - padding) is inside the image: a range.
    let band_end = band.first_row + band.rows;
    for (row, out) in columns.chunks_exact_mut(count).enumerate() {
        let (c, ky, kx) = (row / kk, (row % kk) / g.kernel_w, row % g.kernel_w);
        let source = &image[c * plane..(c + 1) * plane];
        let first = band.first_row.max(g.padding.saturating_sub(ky));
        let end = band_end.min((g.height + g.padding).saturating_sub(ky));
        if first >= end {
            out.fill(0.0);
            continue;
        }
        let (top, bottom) = (
            (first - band.first_row) * width,
            (end - band.first_row) * width,
        );
        out[..top].fill(0.0);
        out[bottom..].fill(0.0);
        let block = &mut out[top..bottom];
        // Columns lo..hi of each row read inside the image; block[j] (lo <= j % width < hi)
        // is source[shift + j].
        let (lo, hi) = g.inside(kx, width, width);
        let shift = ((first + ky - g.padding) * width + kx) as isize - g.padding as isize;
        let (from, to) = (lo, block.len() - (width - hi));
        if from < to {
            let start = (shift + from as isize) as usize;
            block[from..to].copy_from_slice(&source[start..start + (to - from)]);
        }
        if lo > 0 || hi < width {
            for line in block.chunks_exact_mut(width) {
                let (left, rest) = line.split_at_mut(lo);
                for value in left.iter_mut().chain(&mut rest[hi - lo..]) {
                    *value = 0.0;
                }
            }
        }
    }
}

/// Adds `columns` (patch x out_pixels) back onto one image gradient (channels x H x W),
/// which it overwrites: the inverse scatter of `im2col`. Parallel over channels, each of
/// which only its own rows touch.
fn col2im(g: &Geometry, columns: &[f32], image: &mut [f32]) {
    let (ow, kk) = (g.out_width(), g.kernel_h * g.kernel_w);
    let out_pixels = g.out_pixels();
    image
        .par_chunks_mut(g.in_pixels())
        .with_min_len(rows_per_task(g.in_pixels() * kk))
        .enumerate()
        .for_each(|(c, plane)| {
            plane.fill(0.0);
            for ky in 0..g.kernel_h {
                for kx in 0..g.kernel_w {
                    let row = c * kk + ky * g.kernel_w + kx;
                    let source = &columns[row * out_pixels..(row + 1) * out_pixels];
                    let (lo, hi) = g.inside(kx, ow, g.width);
                    if lo == hi {
                        continue;
                    }
                    let first = lo * g.stride + kx - g.padding;
                    for (oy, source_row) in source.chunks_exact(ow).enumerate() {
                        let Some(iy) = g.input_row(oy, ky) else {
                            continue;
                        };
                        let line = &mut plane[iy * g.width..(iy + 1) * g.width];
                        if g.stride == 1 {
                            for (dst, src) in line[first..first + hi - lo]
                                .iter_mut()
                                .zip(&source_row[lo..hi])
                            {
                                *dst += *src;
                            }
                        } else {
                            for (dst, src) in line[first..]
                                .iter_mut()
                                .step_by(g.stride)
                                .zip(&source_row[lo..hi])
                            {
                                *dst += *src;
                            }
                        }
                    }
                }
            }
        });
}

/// What to do to the output after the convolution, for inference with batch norm folded in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Epilogue<'a> {
    /// One value per output channel, added.
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// A pointer that rayon tasks may share because each writes only its own band of it.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: see the callers: the bands a task writes never overlap another task's.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer `offset` floats on (a method, so closures capture the whole `Shared`).
    ///
    /// # Safety
    /// As for `pointer::add`: the result must stay inside the allocation.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// The convolution of `input` (N, C, H, W) by `weight` (O, C, KH, KW), as (N, O, OH, OW):
/// band by band in parallel, each band's im2col made and multiplied while in cache.
pub fn forward(g: &Geometry, input: &[f32], weight: &[f32], epilogue: Epilogue) -> Vec<f32> {
    let (patch, out_pixels, image_len) = (g.patch(), g.out_pixels(), g.channels * g.in_pixels());
    assert_eq!(input.len(), g.batch * image_len, "conv2d input size");
    assert_eq!(weight.len(), g.out_channels * patch, "conv2d weight size");
    let mut output = vec![0f32; g.batch * g.out_channels * out_pixels];
    let bands = bands(g);
    let parallelism = band_parallelism(bands.len());
    let output_ptr = Shared(output.as_mut_ptr());
    bands.par_iter().for_each(|&band| {
        let mut scratch = take_scratch();
        let image = &input[band.image * image_len..(band.image + 1) * image_len];
        let columns = band_columns(g, image, band, &mut scratch);
        let (first, count) = band.pixels(g);
        let offset = band.image * g.out_channels * out_pixels + first;
        // SAFETY: the band's block (out_channels rows of `count` pixels at row stride
        // `out_pixels`, from `offset`) lies inside `output`, and no two bands share a pixel.
        unsafe {
            gemm_raw(
                output_ptr.at(offset),
                out_pixels,
                false,
                Operand::row_major(weight, patch),
                columns,
                (g.out_channels, count, patch),
                parallelism,
            );
            if epilogue.bias.is_some() || epilogue.relu {
                for o in 0..g.out_channels {
                    let row = std::slice::from_raw_parts_mut(
                        output_ptr.at(offset + o * out_pixels),
                        count,
                    );
                    let shift = epilogue.bias.map_or(0.0, |b| b[o]);
                    for v in row {
                        *v += shift;
                        if epilogue.relu && *v < 0.0 {
                            *v = 0.0;
                        }
                    }
                }
            }
        }
        give_back_scratch(scratch);
    });
    output
}

/// The gradient of the loss with respect to the input, from the output's gradient. At stride
/// 1 it is itself a convolution (of the output gradient by the weights turned 180 degrees
/// with input and output channels swapped, padded by kernel - 1 - padding) and runs on the
/// forward path; otherwise a gemm by the transposed weights and a col2im.
pub fn input_gradient(g: &Geometry, output_grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let square = g.kernel_h == g.kernel_w && g.padding < g.kernel_h;
    if g.stride == 1 && square {
        let k = g.kernel_h;
        let kk = k * k;
        let mut turned = vec![0f32; weight.len()];
        for o in 0..g.out_channels {
            for c in 0..g.channels {
                let from = &weight[(o * g.channels + c) * kk..][..kk];
                let to = &mut turned[(c * g.out_channels + o) * kk..][..kk];
                for (t, f) in to.iter_mut().zip(from.iter().rev()) {
                    *t = *f;
                }
            }
        }
        let transposed = Geometry {
            batch: g.batch,
            channels: g.out_channels,
            height: g.out_height(),
            width: g.out_width(),
            out_channels: g.channels,
            kernel_h: k,
            kernel_w: k,
            stride: 1,
            padding: k - 1 - g.padding,
        };
        return forward(&transposed, output_grad, &turned, Epilogue::default());
    }
    let (patch, out_pixels) = (g.patch(), g.out_pixels());
    let mut input_grad = vec![0f32; g.batch * g.channels * g.in_pixels()];
    let mut columns = if g.is_pointwise() {
        Vec::new()
    } else {
        vec![0f32; patch * out_pixels]
    };
    // Weights read as their transpose (patch x out_channels).
    let weight_t = Operand {
        data: weight,
        row_stride: 1,
        col_stride: patch,
    };
    for (grad, image_grad) in output_grad
        .chunks_exact(g.out_channels * out_pixels)
        .zip(input_grad.chunks_exact_mut(g.channels * g.in_pixels()))
    {
        let rhs = Operand::row_major(grad, out_pixels);
        let shape = (patch, out_pixels, g.out_channels);
        if g.is_pointwise() {
            gemm_f32(image_grad, false, weight_t, rhs, shape);
        } else {
            gemm_f32(&mut columns, false, weight_t, rhs, shape);
            col2im(g, &columns, image_grad);
        }
    }
    input_grad
}

/// How many partial sums the weight gradient splits its bands into. Fixed, not the thread
/// count, so a gradient is the same float for float on every run and machine (a resumed run
/// must reproduce an uninterrupted one); each partial is a whole weight tensor.
const WEIGHT_GRAD_GROUPS: usize = 4;

/// The gradient of the loss with respect to the weights (O, C, KH, KW), summed over the batch:
/// the bands are cut into a fixed number of consecutive groups, each summing its bands' gemms
/// in order into its own copy in parallel, and the copies are added in order at the end.
pub fn weight_gradient(g: &Geometry, input: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let (patch, out_pixels, image_len) = (g.patch(), g.out_pixels(), g.channels * g.in_pixels());
    let bands = bands(g);
    let parallelism = band_parallelism(bands.len());
    let size = g.out_channels * patch;
    let per_group = bands.len().div_ceil(WEIGHT_GRAD_GROUPS).max(1);
    let transposed = weight_gradient_transposed(g);
    let partials: Vec<Vec<f32>> = bands
        .par_chunks(per_group)
        .map(|group| {
            let mut sum = vec![0f32; size];
            let mut scratch = take_scratch();
            for (index, &band) in group.iter().enumerate() {
                let image = &input[band.image * image_len..(band.image + 1) * image_len];
                let columns = band_columns(g, image, band, &mut scratch);
                let (first, count) = band.pixels(g);
                let grad = Operand {
                    data: &output_grad[band.image * g.out_channels * out_pixels + first..],
                    row_stride: out_pixels,
                    col_stride: 1,
                };
                if transposed {
                    // dW^T += columns (patch x band) . dY^T (band x O)
                    let grad_t = Operand {
                        data: grad.data,
                        row_stride: grad.col_stride,
                        col_stride: grad.row_stride,
                    };
                    let shape = (patch, g.out_channels, count);
                    gemm_f32_with(&mut sum, index > 0, columns, grad_t, shape, parallelism);
                } else {
                    // dW += dY (O x band) . columns^T (band x patch)
                    let columns_t = Operand {
                        data: columns.data,
                        row_stride: columns.col_stride,
                        col_stride: columns.row_stride,
                    };
                    let shape = (g.out_channels, patch, count);
                    gemm_f32_with(&mut sum, index > 0, grad, columns_t, shape, parallelism);
                }
            }
            give_back_scratch(scratch);
            sum
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().unwrap_or_else(|| vec![0f32; size]);
    for part in partials {
        for (t, p) in total.iter_mut().zip(&part) {
            *t += p;
        }
    }
    if !transposed {
        return total;
    }
    let mut weight_grad = vec![0f32; size];
    for (p, row) in total.chunks_exact(g.out_channels).enumerate() {
        for (o, &value) in row.iter().enumerate() {
            weight_grad[o * patch + p] = value;
        }
    }
    weight_grad
}

/// Whether the weight gradient is better summed transposed, as patch x O. The im2col
/// (patch x band pixels, pixels contiguous) is the big operand: in the O x patch product gemm
/// must repack it, a transposing gather costing as much as the few multiply-adds per element
/// a narrow layer does with it. Transposed, gemm streams it in place while the product has at
/// most 128 rows (two of its 64-row AVX-512 panels). Measured with `areo bench conv`: 2-4x
/// faster for the full-resolution decoder layers (O = 2..64), level at O = 128, slower for
/// the strided encoder layers.
fn weight_gradient_transposed(g: &Geometry) -> bool {
    g.stride == 1 && g.out_channels <= 128
}

/// conv2d as a candle op: `conv2d(input, weight)` with a backward on the same kernels.
#[derive(Clone, Copy, Debug)]
pub struct Conv2d {
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    pub(super) fn geometry(&self, input: &[usize], weight: &[usize]) -> Result<Geometry> {
        Geometry::of(input, weight, self.stride, self.padding)
    }
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "areo-conv2d"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry(input_layout.dims(), weight_layout.dims())?;
        let output = forward(
            &g,
            contiguous_f32(input, input_layout, "conv2d input")?,
            contiguous_f32(weight, weight_layout, "conv2d weights")?,
            Epilogue::default(),
        );
        Ok((CpuStorage::F32(output), g.output_shape()))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        _output: &Tensor,
        output_grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry(input.dims(), weight.dims())?;
        let (input_grad, weight_grad) = gradients(&g, input, weight, output_grad)?;
        Ok((input_grad, Some(weight_grad)))
    }
}

/// The input gradient (none when the input needs none) and the weight gradient of a
/// convolution, from its output's gradient.
pub(super) fn gradients(
    g: &Geometry,
    input: &Tensor,
    weight: &Tensor,
    output_grad: &Tensor,
) -> Result<(Option<Tensor>, Tensor)> {
    let output_grad = output_grad.contiguous()?;
    // The image fed to the first layer needs no gradient: skip its (large) computation.
    let input_grad = if input.track_op() {
        Some(output_grad.apply_op2_no_bwd(weight, &InputGradient(*g))?)
    } else {
        None
    };
    let weight_grad = input.apply_op2_no_bwd(&output_grad, &WeightGradient(*g))?;
    Ok((input_grad, weight_grad))
}

/// (output gradient, weights) -> input gradient.
struct InputGradient(Geometry);

impl CustomOp2 for InputGradient {
    fn name(&self) -> &'static str {
        "areo-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let values = input_gradient(
            g,
            contiguous_f32(grad, grad_layout, "conv2d output gradient")?,
            contiguous_f32(weight, weight_layout, "conv2d weights")?,
        );
        let shape = Shape::from((g.batch, g.channels, g.height, g.width));
        Ok((CpuStorage::F32(values), shape))
    }
}

/// (input, output gradient) -> weight gradient.
struct WeightGradient(Geometry);

impl CustomOp2 for WeightGradient {
    fn name(&self) -> &'static str {
        "areo-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let values = weight_gradient(
            g,
            contiguous_f32(input, input_layout, "conv2d input")?,
            contiguous_f32(grad, grad_layout, "conv2d output gradient")?,
        );
        let shape = Shape::from((g.out_channels, g.channels, g.kernel_h, g.kernel_w));
        Ok((CpuStorage::F32(values), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(n: usize, rng: &mut fastrand::Rng) -> Vec<f32> {
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * scale,
                "{what}[{i}]: {g} against {w} (scale {scale})"
            );
        }
    }

    /// (batch, channels, height, width, out channels, kernel, stride, padding)
    type Shape8 = (usize, usize, usize, usize, usize, usize, usize, usize);
    const SHAPES: [Shape8; 13] = [
        (1, 1, 9, 7, 4, 1, 1, 0),
        (8, 3, 11, 13, 5, 3, 1, 1),
        (2, 3, 15, 9, 4, 7, 2, 3),
        (1, 3, 10, 10, 6, 3, 2, 1),
        (8, 1, 7, 9, 3, 3, 2, 0),
        (2, 4, 6, 5, 3, 1, 2, 0),
        (1, 2, 5, 5, 3, 3, 1, 0),
        (3, 3, 8, 8, 2, 7, 1, 3),
        (1, 1, 4, 4, 2, 3, 1, 3),
        // Same-width stride 1 (shifted im2col blocks): one pixel wide, kernel taller than
        // the image.
        (2, 2, 6, 1, 3, 3, 1, 1),
        (1, 2, 3, 4, 2, 5, 1, 2),
        // Several bands per image, so band edges are crossed.
        (2, 5, 33, 300, 4, 3, 1, 1),
        (1, 3, 64, 200, 2, 7, 2, 3),
    ];

    #[test]
    fn forward_and_both_gradients_match_candles_own_conv2d_over_many_shapes() {
        let mut rng = fastrand::Rng::with_seed(11);
        for (n, c, h, w, o, k, stride, padding) in SHAPES {
            let what = format!("n{n} c{c} {h}x{w} o{o} k{k} s{stride} p{padding}");
            let x =
                Var::from_vec(random(n * c * h * w, &mut rng), (n, c, h, w), &Device::Cpu).unwrap();
            let weight =
                Var::from_vec(random(o * c * k * k, &mut rng), (o, c, k, k), &Device::Cpu).unwrap();
            let ours = x
                .apply_op2(weight.as_tensor(), Conv2d { stride, padding })
                .unwrap();
            let theirs = x.conv2d(&weight, padding, stride, 1, 1).unwrap();
            assert_eq!(ours.dims(), theirs.dims(), "{what}");
            assert_close(&values(&ours), &values(&theirs), &format!("{what} output"));
            // The gradients of a random projection of the output.
            let projection = Tensor::from_vec(
                random(ours.elem_count(), &mut rng),
                ours.shape(),
                &Device::Cpu,
            )
            .unwrap();
            let our_grads = (ours * &projection)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let their_grads = (theirs * &projection)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward();
            // candle's input gradient (a conv_transpose2d) comes out a row or column short
            // when the stride does not divide the padded extent; the finite-difference test
            // below covers those shapes.
            let uneven = (h + 2 * padding - k) % stride != 0 || (w + 2 * padding - k) % stride != 0;
            let their_grads = match their_grads {
                Ok(grads) => grads,
                Err(error) if uneven => {
                    assert!(
                        error.to_string().contains("shape mismatch"),
                        "{what}: {error}"
                    );
                    assert_eq!(our_grads.get(&x).unwrap().dims(), [n, c, h, w], "{what}");
                    continue;
                }
                Err(error) => panic!("{what}: {error}"),
            };
            for (var, name) in [(&x, "input"), (&weight, "weight")] {
                assert_close(
                    &values(our_grads.get(var).unwrap()),
                    &values(their_grads.get(var).unwrap()),
                    &format!("{what} {name} gradient"),
                );
            }
        }
    }

    /// The loss sum(conv(x, w) * r) in f64, straight from the definition.
    fn naive_loss(x: &[f32], w: &[f32], r: &[f32], g: &Geometry) -> f64 {
        let (oh, ow) = (g.out_height(), g.out_width());
        let mut total = 0f64;
        for b in 0..g.batch {
            for o in 0..g.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut sum = 0f64;
                        for c in 0..g.channels {
                            for ky in 0..g.kernel_h {
                                for kx in 0..g.kernel_w {
                                    let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy as usize >= g.height
                                        || ix as usize >= g.width
                                    {
                                        continue;
                                    }
                                    let xi = ((b * g.channels + c) * g.height + iy as usize)
                                        * g.width
                                        + ix as usize;
                                    let wi =
                                        ((o * g.channels + c) * g.kernel_h + ky) * g.kernel_w + kx;
                                    sum += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        total += sum * r[((b * g.out_channels + o) * oh + oy) * ow + ox] as f64;
                    }
                }
            }
        }
        total
    }

    #[test]
    fn the_gradients_match_finite_differences_of_the_definition() {
        let mut rng = fastrand::Rng::with_seed(5);
        for (n, c, h, w, o, k, stride, padding) in [
            (2, 3, 7, 6, 2, 3, 1, 1),
            (1, 2, 9, 8, 3, 3, 2, 1),
            (2, 1, 6, 7, 2, 1, 2, 0),
        ] {
            let g = Geometry::of(&[n, c, h, w], &[o, c, k, k], stride, padding).unwrap();
            let x = random(n * c * h * w, &mut rng);
            let weight = random(o * c * k * k, &mut rng);
            let r = random(g.output_shape().elem_count(), &mut rng);
            let input_grad = input_gradient(&g, &r, &weight);
            let weight_grad = weight_gradient(&g, &x, &r);
            let step = 1e-2;
            for i in (0..x.len()).step_by(5) {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += step;
                down[i] -= step;
                let numeric = (naive_loss(&up, &weight, &r, &g)
                    - naive_loss(&down, &weight, &r, &g))
                    / (2.0 * step as f64);
                assert!(
                    (input_grad[i] as f64 - numeric).abs() < 1e-3,
                    "input {i}: {} against {numeric}",
                    input_grad[i]
                );
            }
            for i in 0..weight.len() {
                let (mut up, mut down) = (weight.clone(), weight.clone());
                up[i] += step;
                down[i] -= step;
                let numeric = (naive_loss(&x, &up, &r, &g) - naive_loss(&x, &down, &r, &g))
                    / (2.0 * step as f64);
                assert!(
                    (weight_grad[i] as f64 - numeric).abs() < 1e-3,
                    "weight {i}: {} against {numeric}",
                    weight_grad[i]
                );
            }
        }
    }

    #[test]
    fn an_input_that_needs_no_gradient_gets_none_and_the_weights_still_do() {
        let x = Tensor::ones((1, 1, 5, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let weight = Var::ones((2, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = x
            .apply_op2(
                weight.as_tensor(),
                Conv2d {
                    stride: 1,
                    padding: 1,
                },
            )
            .unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        // Each weight tap sees the ones it covers: 4 x 5 cells for edge taps, 16 corners...
        let weight_grad = values(grads.get(&weight).unwrap());
        assert_eq!(
            &weight_grad[..9],
            &[16., 20., 16., 20., 25., 20., 16., 20., 16.]
        );
    }

    #[test]
    fn the_bias_and_relu_epilogue_equals_adding_and_clamping_afterwards() {
        let mut rng = fastrand::Rng::with_seed(2);
        let g = Geometry::of(&[2, 3, 9, 11], &[4, 3, 3, 3], 1, 1).unwrap();
        let x = random(2 * 3 * 9 * 11, &mut rng);
        let weight = random(4 * 27, &mut rng);
        let bias = [0.5, -0.25, 0.0, 1.0];
        let plain = forward(&g, &x, &weight, Epilogue::default());
        let fused = forward(
            &g,
            &x,
            &weight,
            Epilogue {
                bias: Some(&bias),
                relu: true,
            },
        );
        let pixels = g.out_pixels();
        for (i, (p, f)) in plain.iter().zip(&fused).enumerate() {
            let channel = (i / pixels) % 4;
            assert_eq!(*f, (p + bias[channel]).max(0.0), "{i}");
        }
        assert!(fused.contains(&0.0) && fused.iter().any(|v| *v > 0.0));
    }

    #[test]
    fn mismatched_shapes_are_refused_by_name() {
        let error = Geometry::of(&[1, 3, 8, 8], &[4, 2, 3, 3], 1, 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("3 channels") && error.contains("expect 2"),
            "{error}"
        );
        let error = Geometry::of(&[1, 1, 2, 2], &[1, 1, 7, 7], 1, 1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not fit"), "{error}");
    }
}
