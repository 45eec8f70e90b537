//! areo's CPU kernels train the U-Net as candle's own ops do: the same initial weights, the
//! same batches and optimiser give the same losses and weights after several steps, within
//! float tolerance. One test in its own process, since the kernel choice is process-wide.

use areo::nn::config::{LossKind, UNetConfig};
use areo::nn::init::initialise;
use areo::nn::kernels::{set_backend, Backend};
use areo::nn::models::unet::loss::{loss, Targets};
use areo::nn::models::unet::UNet;
use areo::nn::optim::{AdamW, StepRates};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::collections::BTreeMap;

type Named = BTreeMap<String, Vec<f32>>;

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Trains `steps` steps from seeded weights on seeded batches: the losses, the first step's
/// gradients, the initial and the final weights.
fn train(backend: Backend, steps: usize) -> (Vec<f32>, Named, Named, Named) {
    set_backend(backend);
    let config = UNetConfig {
        encoder: "resnet".into(),
        blocks: Some([1, 1, 1, 1]),
        widths: Some([8, 8, 16, 16, 32]),
        decoder: [16, 16, 8, 8, 8],
        in_channels: 1,
        classes: 3,
        input_skip: true,
    };
    let varmap = VarMap::new();
    let model = UNet::new(
        &config,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    initialise(&varmap, 17).unwrap();
    let weights = |varmap: &VarMap| -> Named {
        let data = varmap.data().lock().unwrap();
        data.iter()
            .map(|(name, var)| (name.clone(), flat(var.as_tensor())))
            .collect()
    };
    let initial = weights(&varmap);
    let mut first_grads = Named::new();
    let named: Vec<_> = {
        let data = varmap.data().lock().unwrap();
        data.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
    };
    let mut optimiser = AdamW::new(named, 0.01);
    let rates = StepRates {
        lr: 1e-3,
        encoder_factor: 1.0,
        beta1: 0.9,
    };
    let mut rng = fastrand::Rng::with_seed(23);
    let (batch, side) = (4, 64);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let pixels = batch * side * side;
        // Smooth-ish images whose class follows their brightness, so there is signal.
        let images: Vec<f32> = (0..pixels).map(|_| rng.f32()).collect();
        let masks: Vec<u8> = images.iter().map(|v| (v * 2.99) as u8).collect();
        let images = Tensor::from_vec(images, (batch, 1, side, side), &Device::Cpu).unwrap();
        let targets =
            Targets::new(&masks, (batch, side, side), 3, None, None, &Device::Cpu).unwrap();
        let logits = model.forward(&images, true, false).unwrap();
        let value = loss(LossKind::CrossEntropyDice, &logits, &targets).unwrap();
        losses.push(value.to_scalar::<f32>().unwrap());
        let grads = value.backward().unwrap();
        if first_grads.is_empty() {
            for (name, var) in varmap.data().lock().unwrap().iter() {
                if let Some(grad) = grads.get(var.as_tensor()) {
                    first_grads.insert(name.clone(), flat(grad));
                }
            }
        }
        optimiser.step(&grads, rates).unwrap();
    }
    (losses, first_grads, initial, weights(&varmap))
}

#[test]
fn areos_kernels_train_the_unet_as_candles_ops_do() {
    let steps = 6;
    let (our_losses, our_grads, initial, our_weights) = train(Backend::Areo, steps);
    let (their_losses, their_grads, _, their_weights) = train(Backend::Candle, steps);
    for (step, (ours, theirs)) in our_losses.iter().zip(&their_losses).enumerate() {
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs.abs(),
            "step {step}: loss {ours} against {theirs}"
        );
    }
    assert!(
        our_losses[steps - 1] < our_losses[0],
        "the loss fell: {our_losses:?}"
    );
    // Same weights in: every parameter's gradient agrees to float rounding (relative to the
    // size of that parameter's gradient).
    assert_eq!(our_grads.len(), their_grads.len());
    assert!(our_grads.len() > 30, "{} gradients", our_grads.len());
    for (name, ours) in &our_grads {
        let theirs = &their_grads[name];
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(theirs) {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{name}: gradient {a} against {b}"
            );
        }
    }
    // After several AdamW steps the weights still agree. Adam divides by the gradient's root
    // mean square, so its first step is +-lr whatever the gradient's size: where rounding flips
    // the sign of a near-zero gradient, a weight may differ by up to 2 lr per step. So: no
    // weight beyond that bound, and on average the difference a tiny part of the movement.
    let lr = 1e-3;
    let (mut difference, mut movement, mut count) = (0f64, 0f64, 0usize);
    for (name, ours) in &our_weights {
        let theirs = &their_weights[name];
        for ((a, b), start) in ours.iter().zip(theirs).zip(&initial[name]) {
            assert!(
                (a - b).abs() as f64 <= 2.0 * lr * steps as f64,
                "{name}: weight {a} against {b}"
            );
            difference += (a - b).abs() as f64;
            movement += (a - start).abs() as f64;
            count += 1;
        }
    }
    let (difference, movement) = (difference / count as f64, movement / count as f64);
    assert!(
        difference <= 0.01 * movement,
        "mean difference {difference} against mean movement {movement}"
    );
    eprintln!("{count} weights: mean difference {difference:.2e}, mean movement {movement:.2e}");
}
