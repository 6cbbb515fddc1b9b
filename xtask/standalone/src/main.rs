extern crate netlib_src; // links the BLAS provider (here the reference BLAS)

use glorot_tensor::{
    Activation, Init, accuracy_percent, add_row_bias, argmax_rows, column_means, gemm, loss,
    one_hot,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A two-layer tanh network learns which side of the line x0 + x1 = 0 a point is on:
/// 200 full-batch SGD steps on 64 points.
fn main() -> Result<(), glorot_tensor::Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (batch, inputs, hidden, outputs) = (64, 2, 16, 2);
    // x: (batch, inputs), uniform in [-1, 1)^2; class 1 above the line.
    let x = Array2::from_shape_simple_fn((batch, inputs), || rng.random::<f64>() * 2.0 - 1.0);
    let labels: Vec<u8> = x
        .rows()
        .into_iter()
        .map(|r| u8::from(r[0] + r[1] > 0.0))
        .collect();
    let y = one_hot::<f64>(&labels, outputs); // (batch, outputs)

    // Parameters: weights (fan_in, fan_out), biases (fan_out,).
    let act = Activation::Tanh;
    let mut w0 = Init::GlorotUniform.weights::<f64, _>(inputs, hidden, &mut rng)?;
    let mut w1 = Init::GlorotUniform.weights::<f64, _>(hidden, outputs, &mut rng)?;
    let (mut b0, mut b1) = (Array1::zeros(hidden), Array1::zeros(outputs));

    // Buffers, allocated once: activations, deltas, gradients.
    let (mut h, mut z) = (
        Array2::zeros((batch, hidden)),
        Array2::zeros((batch, outputs)),
    );
    let (mut d0, mut d1) = (h.clone(), z.clone());
    let (mut gw0, mut gw1) = (Array2::zeros(w0.dim()), Array2::zeros(w1.dim()));
    let (mut gb0, mut gb1) = (Array1::zeros(hidden), Array1::zeros(outputs));

    let inv_n = 1.0 / batch as f64;
    let mut losses = Vec::new();
    for _ in 0..200 {
        gemm(1.0, x.view(), w0.view(), 0.0, h.view_mut()); // h = tanh(x w0 + b0)
        act.forward_bias_inplace(h.view_mut(), b0.view());
        gemm(1.0, h.view(), w1.view(), 0.0, z.view_mut()); // z = h w1 + b1, the logits
        add_row_bias(z.view_mut(), b1.view());
        losses.push(loss::softmax_cross_entropy(z.view(), y.view()));
        loss::softmax_cross_entropy_delta(z.view(), y.view(), d1.view_mut());
        gemm(inv_n, h.t(), d1.view(), 0.0, gw1.view_mut()); // gw1 = h^T d1 / batch
        column_means(d1.view(), gb1.view_mut());
        gemm(1.0, d1.view(), w1.t(), 0.0, d0.view_mut()); // back through w1, then tanh
        act.backward_inplace(h.view(), d0.view_mut());
        gemm(inv_n, x.t(), d0.view(), 0.0, gw0.view_mut()); // gw0 = x^T d0 / batch
        column_means(d0.view(), gb0.view_mut());
        w0.scaled_add(-0.5, &gw0);
        w1.scaled_add(-0.5, &gw1);
        b0.scaled_add(-0.5, &gb0);
        b1.scaled_add(-0.5, &gb1);
    }

    let mut pred = vec![0; batch];
    argmax_rows(z.view(), &mut pred);
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    let accuracy = accuracy_percent(&pred, &labels);
    println!("loss {first:.4} -> {last:.4}, training accuracy {accuracy:.1} %");
    assert!(last < first / 4.0 && accuracy >= 90.0, "did not learn");
    Ok(())
}
