//! The U-Net's resampling with gradients that candle 0.11 lacks or gets wrong on the CPU:
//! ResNet's stem max pool (3 x 3, stride 2, padding 1; candle's has no padding and no
//! backward unless kernel == stride) and nearest x2 upsampling (candle's backward is a grouped
//! convolution, one conv per channel, and it overwrites the input's gradient instead of adding
//! to it), and the decoder's upsample-then-concatenate as one op. All work plane by plane, in
//! parallel over (image, channel).

use super::contiguous_f32;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// (planes, height, width) of an NCHW tensor.
fn plane_dims(layout: &Layout) -> Result<(usize, usize, usize)> {
    match layout.dims() {
        &[n, c, h, w] => Ok((n * c, h, w)),
        other => candle_core::bail!("resampling takes (N, C, H, W), got {other:?}"),
    }
}

fn pooled_side(side: usize) -> usize {
    (side - 1) / 2 + 1
}

/// PyTorch's `max_pool2d(x, 3, stride 2, padding 1)`: cells outside the image never win.
pub struct MaxPool3x3S2;

impl MaxPool3x3S2 {
    /// The window of output (oy, ox): input rows and columns, clipped to the image.
    fn window(o: usize, side: usize) -> std::ops::Range<usize> {
        (2 * o).saturating_sub(1)..(2 * o + 2).min(side)
    }
}

impl CustomOp1 for MaxPool3x3S2 {
    fn name(&self) -> &'static str {
        "areo-max-pool-3x3-s2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "max pool input")?;
        let (planes, h, w) = plane_dims(layout)?;
        let (oh, ow) = (pooled_side(h), pooled_side(w));
        let mut out = vec![0f32; planes * oh * ow];
        out.par_chunks_mut(oh * ow)
            .zip(x.par_chunks(h * w))
            .for_each(|(out, plane)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut best = f32::NEG_INFINITY;
                        for y in Self::window(oy, h) {
                            for v in &plane[y * w..][Self::window(ox, w)] {
                                best = best.max(*v);
                            }
                        }
                        out[oy * ow + ox] = best;
                    }
                }
            });
        let dims = layout.dims();
        Ok((
            CpuStorage::F32(out),
            Shape::from((dims[0], dims[1], oh, ow)),
        ))
    }

    fn bwd(&self, x: &Tensor, pooled: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op3_no_bwd(
            pooled,
            &grad.contiguous()?,
            &MaxPoolBackward,
        )?))
    }
}

/// (x, pooled maxima, output gradient) -> input gradient: each window's gradient goes
/// whole to the first cell (in row-major order) that holds its maximum, as in PyTorch.
struct MaxPoolBackward;

impl candle_core::CustomOp3 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "areo-max-pool-3x3-s2-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        pooled: &CpuStorage,
        pooled_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(x, x_layout, "max pool input")?;
        let pooled = contiguous_f32(pooled, pooled_layout, "max pool output")?;
        let grad = contiguous_f32(grad, grad_layout, "max pool gradient")?;
        let (_, h, w) = plane_dims(x_layout)?;
        let (oh, ow) = (pooled_side(h), pooled_side(w));
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h * w)
            .zip(x.par_chunks(h * w))
            .zip(pooled.par_chunks(oh * ow).zip(grad.par_chunks(oh * ow)))
            .for_each(|((out, plane), (pooled, grad))| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let best = pooled[oy * ow + ox];
                        let winner = MaxPool3x3S2::window(oy, h)
                            .flat_map(|y| MaxPool3x3S2::window(ox, w).map(move |x| y * w + x))
                            .find(|&i| plane[i] == best);
                        if let Some(i) = winner {
                            out[i] += grad[oy * ow + ox];
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }
}

/// Nearest-neighbour upsampling by 2 on both axes.
pub struct Upsample2x;

impl CustomOp1 for Upsample2x {
    fn name(&self) -> &'static str {
        "areo-upsample-nearest-2x"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "upsample input")?;
        let (planes, h, w) = plane_dims(layout)?;
        let mut out = vec![0f32; planes * 4 * h * w];
        out.par_chunks_mut(4 * h * w)
            .zip(x.par_chunks(h * w))
            .for_each(|(out, plane)| upsample_plane(plane, w, out));
        let dims = layout.dims();
        Ok((
            CpuStorage::F32(out),
            Shape::from((dims[0], dims[1], 2 * h, 2 * w)),
        ))
    }

    fn bwd(&self, x: &Tensor, _up: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // A join with no skip map: every plane is upsampled.
        let gradient = JoinGradient {
            channels: x.dim(1)?,
            part: JoinPart::Upsampled,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&gradient)?))
    }
}

/// One plane `w` wide repeated into `out` (2h x 2w).
fn upsample_plane(plane: &[f32], w: usize, out: &mut [f32]) {
    for (y, row) in plane.chunks_exact(w).enumerate() {
        let (top, bottom) = out[2 * y * 2 * w..(2 * y + 2) * 2 * w].split_at_mut(2 * w);
        for (pair, v) in top.chunks_exact_mut(2).zip(row) {
            pair.fill(*v);
        }
        bottom.copy_from_slice(top);
    }
}

/// The 2 x 2 block sums of `plane` (2h x 2w) into `out` (h x w, `w` wide).
fn sum_pool_plane(plane: &[f32], w: usize, out: &mut [f32]) {
    let w2 = 2 * w;
    for (y, row) in out.chunks_exact_mut(w).enumerate() {
        let top = &plane[2 * y * w2..][..w2];
        let bottom = &plane[(2 * y + 1) * w2..][..w2];
        for (x, o) in row.iter_mut().enumerate() {
            *o = top[2 * x] + top[2 * x + 1] + bottom[2 * x] + bottom[2 * x + 1];
        }
    }
}

/// A U-Net decoder's input: the deeper map upsampled by 2 with the skip map after it on the
/// channel axis, (N, C, H, W) and (N, S, 2H, 2W) -> (N, C + S, 2H, 2W). One op instead of an
/// upsample and a `cat`, so the upsampled map is never a tensor of its own: it was the
/// largest gradient candle's autograd zero-filled and added (8 M values per decoder input at
/// 256 px, batch 4), and the `cat` copied it once more each way.
pub struct UpsampleJoin;

impl UpsampleJoin {
    /// (images, deeper channels, skip channels, deeper height, deeper width), checked.
    fn dims(x: &Layout, skip: &Layout) -> Result<(usize, usize, usize, usize, usize)> {
        let (&[n, c, h, w], &[skip_n, s, skip_h, skip_w]) = (x.dims(), skip.dims()) else {
            candle_core::bail!(
                "upsample-join takes two (N, C, H, W) maps, got {:?} and {:?}",
                x.dims(),
                skip.dims()
            )
        };
        if skip_n != n || skip_h != 2 * h || skip_w != 2 * w {
            candle_core::bail!(
                "upsample-join: the skip map is {skip_n} x {s} x {skip_h} x {skip_w}, it must be \
                 {n} x S x {} x {} to join a {n} x {c} x {h} x {w} map upsampled",
                2 * h,
                2 * w
            )
        }
        Ok((n, c, s, h, w))
    }
}

impl CustomOp2 for UpsampleJoin {
    fn name(&self) -> &'static str {
        "areo-upsample-join"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        skip: &CpuStorage,
        skip_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, s, h, w) = Self::dims(x_layout, skip_layout)?;
        let x = contiguous_f32(x, x_layout, "upsample-join input")?;
        let skip = contiguous_f32(skip, skip_layout, "upsample-join skip")?;
        let plane = 4 * h * w;
        let mut out = vec![0f32; n * (c + s) * plane];
        out.par_chunks_mut(plane).enumerate().for_each(|(i, out)| {
            let (image, channel) = (i / (c + s), i % (c + s));
            if channel < c {
                let source = &x[(image * c + channel) * h * w..][..h * w];
                upsample_plane(source, w, out);
            } else {
                out.copy_from_slice(&skip[(image * s + channel - c) * plane..][..plane]);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c + s, 2 * h, 2 * w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        skip: &Tensor,
        _joined: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, channels, _, _) = x.dims4()?;
        let x_grad = grad.apply_op1_no_bwd(&JoinGradient {
            channels,
            part: JoinPart::Upsampled,
        })?;
        let skip_grad = grad.apply_op1_no_bwd(&JoinGradient {
            channels,
            part: JoinPart::Skip,
        })?;
        debug_assert_eq!(skip_grad.dims(), skip.dims());
        Ok((Some(x_grad), Some(skip_grad)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinPart {
    Upsampled,
    Skip,
}

/// One operand's share of an [`UpsampleJoin`]'s gradient (or all of an [`Upsample2x`]'s):
/// the 2 x 2 sums of the first `channels` planes of each image, or a copy of the rest.
struct JoinGradient {
    channels: usize,
    part: JoinPart,
}

impl CustomOp1 for JoinGradient {
    fn name(&self) -> &'static str {
        "areo-upsample-join-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let grad = contiguous_f32(storage, layout, "upsample-join gradient")?;
        let &[n, total, h2, w2] = layout.dims() else {
            candle_core::bail!("upsample-join gradient is not (N, C, H, W)")
        };
        let c = self.channels;
        let plane = h2 * w2;
        let image_planes = |image: usize| &grad[image * total * plane..(image + 1) * total * plane];
        match self.part {
            JoinPart::Upsampled => {
                let (h, w) = (h2 / 2, w2 / 2);
                let mut out = vec![0f32; n * c * h * w];
                out.par_chunks_mut(h * w).enumerate().for_each(|(i, out)| {
                    let source = &image_planes(i / c)[(i % c) * plane..][..plane];
                    sum_pool_plane(source, w, out);
                });
                Ok((CpuStorage::F32(out), Shape::from((n, c, h, w))))
            }
            JoinPart::Skip => {
                let s = total - c;
                let mut out = vec![0f32; n * s * plane];
                out.par_chunks_mut(s * plane)
                    .enumerate()
                    .for_each(|(image, out)| {
                        out.copy_from_slice(&image_planes(image)[c * plane..])
                    });
                Ok((CpuStorage::F32(out), Shape::from((n, s, h2, w2))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn upsampling_repeats_each_pixel_and_its_gradient_adds_to_other_uses_of_the_input() {
        let x = Var::from_vec(vec![1f32, 2., 3., 4., 5., 6.], (1, 1, 2, 3), &Device::Cpu).unwrap();
        let up = x.apply_op1(Upsample2x).unwrap();
        assert_eq!(
            up.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [
                1., 1., 2., 2., 3., 3., 1., 1., 2., 2., 3., 3., //
                4., 4., 5., 5., 6., 6., 4., 4., 5., 5., 6., 6.
            ]
        );
        // d/dx [sum(up(x) * r) + sum(x)]: each input gets its four cells of r, plus one
        // (candle's own upsample would drop the second term: 4 where 5 is right).
        let r: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let r = Tensor::from_vec(r, (1, 1, 4, 6), &Device::Cpu).unwrap();
        let loss = ((up * r).unwrap().sum_all().unwrap() + x.sum_all().unwrap()).unwrap();
        let grad = loss
            .backward()
            .unwrap()
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap();
        // Input (0, 0) covers cells 0, 1, 6 and 7 of r: 14, plus one.
        assert_eq!(
            grad.to_vec1::<f32>().unwrap(),
            [15., 23., 31., 63., 71., 79.]
        );
    }

    #[test]
    fn upsample_join_equals_upsampling_then_concatenating_values_and_gradients() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut random = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.f32() - 0.5).collect() };
        let (n, c, s, h, w) = (2, 3, 2, 3, 5);
        let x = Var::from_vec(random(n * c * h * w), (n, c, h, w), &Device::Cpu).unwrap();
        let skip = Var::from_vec(
            random(n * s * 4 * h * w),
            (n, s, 2 * h, 2 * w),
            &Device::Cpu,
        )
        .unwrap();
        let r = Tensor::from_vec(
            random(n * (c + s) * 4 * h * w),
            (n, c + s, 2 * h, 2 * w),
            &Device::Cpu,
        )
        .unwrap();
        let joined = x.apply_op2(&skip, UpsampleJoin).unwrap();
        let up = x.apply_op1(Upsample2x).unwrap();
        let reference = Tensor::cat(&[&up, skip.as_tensor()], 1).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&joined), values(&reference));
        let gradients = |t: &Tensor| {
            let grads = (t * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (
                values(grads.get(&x).unwrap()),
                values(grads.get(&skip).unwrap()),
            )
        };
        let (x_grad, skip_grad) = gradients(&joined);
        let (x_want, skip_want) = gradients(&reference);
        assert_eq!(skip_grad, skip_want);
        for (got, want) in x_grad.iter().zip(&x_want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn upsample_join_refuses_a_skip_map_of_the_wrong_size() {
        let x = Tensor::zeros((1, 2, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let skip = Tensor::zeros((1, 4, 6, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = x.apply_op2(&skip, UpsampleJoin).unwrap_err().to_string();
        assert!(error.contains("the skip map is 1 x 4 x 6 x 5"), "{error}");
    }

    #[test]
    fn the_max_pool_gives_a_tied_windows_gradient_to_its_first_maximum() {
        // A constant image: every window ties, PyTorch gives it to the window's first cell.
        let x = Var::ones((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let pooled = x.apply_op1(MaxPool3x3S2).unwrap();
        assert_eq!(pooled.dims(), [1, 1, 2, 2]);
        let grad = pooled.sum_all().unwrap().backward().unwrap();
        let grad = grad
            .get(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Windows start at (0, 0), (0, 1), (1, 0) and (1, 1).
        let mut want = [0f32; 16];
        for i in [0, 1, 4, 5] {
            want[i] = 1.0;
        }
        assert_eq!(grad, want);
    }
}
