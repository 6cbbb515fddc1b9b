//! A two-layer network trained with glorot-tensor alone: no model crate, no dataset.
//!
//! The task: points in the square [-1, 1]^2, labelled by the XOR of their coordinates'
//! signs (class 1 when x and y have different signs). A linear model gets 50 %; a hidden
//! tanh layer of 16 units solves it. The program allocates every buffer once, then each
//! minibatch step is gemm, bias, activation, loss, backward gemms and an SGD update.
//!
//! ```text
//! cargo run -p glorot-tensor --example tiny_mlp
//! ```
//!
//! Outside the workspace it needs exactly the dependencies the crate's README lists
//! (glorot-tensor, ndarray, rand, rand_chacha and a BLAS provider, whose `extern crate`
//! line replaces `blas_src` below when it is not OpenBLAS); `cargo xtask standalone`
//! builds it that way with the reference BLAS.
#![allow(clippy::print_stdout)] // an example program reports on stdout

extern crate blas_src;

use glorot_tensor::{
    Activation, Init, accuracy_percent, add_row_bias, argmax_rows, column_means, gemm, loss,
    one_hot, permutation,
};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), glorot_tensor::Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (n, hidden, batch, lr, epochs) = (2048, 16, 32, 0.5f64, 40);

    // Data: x (n, 2) uniform in [-1, 1)^2; labels by XOR of signs; one-hot targets (n, 2).
    let x = Array2::from_shape_simple_fn((n, 2), || rng.random::<f64>() * 2.0 - 1.0);
    let labels: Vec<u8> = x
        .rows()
        .into_iter()
        .map(|r| u8::from((r[0] > 0.0) != (r[1] > 0.0)))
        .collect();
    let y = one_hot::<f64>(&labels, 2);

    // Parameters (Glorot uniform weights, zero biases) and their gradients.
    let act = Activation::Tanh;
    let mut w0 = Init::GlorotUniform.weights::<f64, _>(2, hidden, &mut rng)?;
    let mut w1 = Init::GlorotUniform.weights::<f64, _>(hidden, 2, &mut rng)?;
    let (mut b0, mut b1) = (Array1::<f64>::zeros(hidden), Array1::<f64>::zeros(2));
    let (mut gw0, mut gw1) = (Array2::zeros(w0.dim()), Array2::zeros(w1.dim()));
    let (mut gb0, mut gb1) = (Array1::zeros(hidden), Array1::zeros(2));

    // Per-batch buffers, allocated once.
    let mut xb = Array2::<f64>::zeros((batch, 2));
    let mut yb = Array2::<f64>::zeros((batch, 2));
    let mut h = Array2::<f64>::zeros((batch, hidden));
    let mut z = Array2::<f64>::zeros((batch, 2));
    let mut d1 = Array2::<f64>::zeros((batch, 2));
    let mut d0 = Array2::<f64>::zeros((batch, hidden));

    for epoch in 1..=epochs {
        let order = permutation(n, &mut rng);
        let mut total = 0.0;
        for chunk in order.chunks_exact(batch) {
            // Gather the shuffled rows into the batch buffers.
            for (k, &i) in chunk.iter().enumerate() {
                xb.row_mut(k).assign(&x.row(i));
                yb.row_mut(k).assign(&y.row(i));
            }
            // Forward: h = tanh(x w0 + b0), z = h w1 + b1 (logits).
            gemm(1.0, xb.view(), w0.view(), 0.0, h.view_mut());
            act.forward_bias_inplace(h.view_mut(), b0.view());
            gemm(1.0, h.view(), w1.view(), 0.0, z.view_mut());
            add_row_bias(z.view_mut(), b1.view());
            total += loss::softmax_cross_entropy(z.view(), yb.view());
            // Backward: per-row deltas, then batch-averaged gradients.
            let inv_n = 1.0 / batch as f64;
            loss::softmax_cross_entropy_delta(z.view(), yb.view(), d1.view_mut());
            gemm(inv_n, h.t(), d1.view(), 0.0, gw1.view_mut());
            column_means(d1.view(), gb1.view_mut());
            gemm(1.0, d1.view(), w1.t(), 0.0, d0.view_mut());
            act.backward_inplace(h.view(), d0.view_mut());
            gemm(inv_n, xb.t(), d0.view(), 0.0, gw0.view_mut());
            column_means(d0.view(), gb0.view_mut());
            // SGD.
            w0.scaled_add(-lr, &gw0);
            w1.scaled_add(-lr, &gw1);
            b0.scaled_add(-lr, &gb0);
            b1.scaled_add(-lr, &gb1);
        }
        if epoch % 10 == 0 {
            // Evaluate on all points at once.
            let mut hall = x.dot(&w0);
            act.forward_bias_inplace(hall.view_mut(), b0.view());
            let mut zall = hall.dot(&w1);
            add_row_bias(zall.view_mut(), b1.view());
            let mut pred = vec![0; n];
            argmax_rows(zall.view(), &mut pred);
            let batches = (n / batch) as f64;
            println!(
                "epoch {epoch:>3}  loss {:.4}  accuracy {:.2} %",
                total / batches,
                accuracy_percent(&pred, &labels)
            );
        }
    }
    Ok(())
}
