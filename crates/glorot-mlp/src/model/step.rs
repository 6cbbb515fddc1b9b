//! Backpropagation and the SGD update: [`Mlp::gradients`], [`Mlp::sgd_step`] and the
//! fused [`Mlp::train_step`].

use glorot_tensor::{Float, column_sums, fused, loss};
use ndarray::{ArrayView2, Zip, s};

use super::kernels::MlpFloat;
use super::{Mlp, Workspace};
use crate::config::Head;

impl<F: MlpFloat> Mlp<F> {
    /// Forward, loss and backpropagation of the batch `x: (rows, inputs)`,
    /// `y: (rows, outputs)`; the gradients of the batch-mean loss end up in
    /// [`Workspace::gradients`] and the loss is returned.
    ///
    /// The arithmetic is the notebook's `backward` generalized to any depth:
    /// `delta = out*(1-out)*dout` (or `softmax(z) - y`); for each layer from the top,
    /// `gw = (h^T @ delta) / rows` (the product with alpha 1, divided afterwards, because
    /// `dot/n` and `(1/n)*dot` differ in the last bit), `gb = column_sums(delta) / rows`
    /// (`np.mean(delta, axis=0)`), then `delta_below = act'(h) * (delta @ w^T)`.
    ///
    /// # Panics
    /// As [`Mlp::forward`], and if `y` does not have `x`'s rows and the model's outputs.
    #[track_caller]
    pub fn gradients(
        &self,
        x: ArrayView2<'_, F>,
        y: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
    ) -> F {
        Self::check_trainable(ws);
        self.forward(x, ws);
        let loss = self.loss(ws, y);
        self.backward_raw(x, y, ws, false);
        let n = F::from_f64(x.nrows() as f64);
        for g in &mut ws.grads.weights {
            g.mapv_inplace(|v| v / n);
        }
        for g in &mut ws.grads.biases {
            g.mapv_inplace(|v| v / n);
        }
        ws.grads.valid = true;
        loss
    }

    /// Applies `p = p - lr * g` to every parameter, with the gradients of the last
    /// [`Mlp::gradients`] in `ws` (the notebook's `update`).
    ///
    /// # Panics
    /// If `ws` holds no gradients (no [`Mlp::gradients`] since the last forward or step).
    #[track_caller]
    pub fn sgd_step(&mut self, ws: &Workspace<F>, lr: F) {
        assert!(
            ws.grads.valid,
            "sgd_step needs the gradients of Mlp::gradients in this workspace"
        );
        for (p, g) in self.weights.iter_mut().zip(&ws.grads.weights) {
            Zip::from(p).and(g).for_each(|p, &g| *p = *p - lr * g);
        }
        for (p, g) in self.biases.iter_mut().zip(&ws.grads.biases) {
            Zip::from(p).and(g).for_each(|p, &g| *p = *p - lr * g);
        }
    }

    /// One SGD step on the batch `x: (rows, inputs)`, `y: (rows, outputs)`; returns the
    /// batch loss computed before the update. Allocates nothing.
    ///
    /// Same floating-point operations as [`Mlp::gradients`] followed by [`Mlp::sgd_step`]
    /// (the division by `rows` is fused into the update as `p - lr * (g / rows)`), so
    /// results are bit-identical to the unfused pair. When the loss is not finite the
    /// parameters are left untouched and the loss is returned: the trainer then stops.
    ///
    /// # Panics
    /// As [`Mlp::gradients`].
    #[track_caller]
    pub fn train_step(
        &mut self,
        x: ArrayView2<'_, F>,
        y: ArrayView2<'_, F>,
        lr: F,
        ws: &mut Workspace<F>,
    ) -> F {
        Self::check_trainable(ws);
        self.forward(x, ws);
        let loss = self.loss(ws, y);
        if !loss.is_finite() {
            return loss;
        }
        if F::step_fused(self, x, y, lr, ws) {
            ws.grads.valid = false;
            return loss;
        }
        let rows = x.nrows();
        // f64 with a sparse first-layer input: with `Arithmetic::Fast`, or once the BLAS
        // gradient of this batch size has been seen to equal the sparse chains bit for
        // bit, the first layer is updated from the nonzeros alone
        // (`replay::sgd_update_sparse_exact`), skipping its product.
        let chain = F::sparse_first_update(&ws.kernels, ws.arithmetic, x);
        self.backward_raw(x, y, ws, chain);
        ws.grads.valid = false;
        F::check_sparse_chain(
            &mut ws.kernels,
            ws.arithmetic,
            x,
            ws.deltas[0].slice(s![..rows, ..]),
            ws.grads.weights[0].view(),
        );
        // `g / n` is computed as `g * (1 / n)` when `n` is a power of two: `1 / n` is then
        // exact and both are the correctly rounded `g / n`, bit for bit, and a product is
        // several times cheaper than a division.
        let n = F::from_f64(rows as f64);
        let inv_n = F::from_f64(1.0 / rows as f64);
        let exact_inverse = rows.is_power_of_two();
        let standard = "parameters and gradients are kept in standard layout";
        for (l, (p, g)) in self.weights.iter_mut().zip(&ws.grads.weights).enumerate() {
            if l == 0
                && chain
                && F::sgd_first_sparse(
                    &mut ws.kernels,
                    x,
                    ws.deltas[0].slice(s![..rows, ..]),
                    lr,
                    p.view_mut(),
                )
            {
                continue;
            }
            let (p, g) = (
                p.as_slice_mut().expect(standard),
                g.as_slice().expect(standard),
            );
            sgd(p, g, lr, n, inv_n, exact_inverse);
        }
        for (p, g) in self.biases.iter_mut().zip(&ws.grads.biases) {
            let (p, g) = (
                p.as_slice_mut().expect(standard),
                g.as_slice().expect(standard),
            );
            sgd(p, g, lr, n, inv_n, exact_inverse);
        }
        loss
    }

    /// Raw (not yet divided by the batch size) gradients of the last forward into
    /// `ws.grads`.
    ///
    /// With `skip_first_weights`, the first layer's weight gradient is not computed (the
    /// caller updates that layer from its sparse input). In `f64` with
    /// [`Arithmetic::Fast`](crate::Arithmetic::Fast) it is computed as the sparse update
    /// would ([`replay::weight_gradient_sparse_f64`]), so that a step equals gradients then
    /// update.
    #[track_caller]
    fn backward_raw(
        &self,
        x: ArrayView2<'_, F>,
        y: ArrayView2<'_, F>,
        ws: &mut Workspace<F>,
        skip_first_weights: bool,
    ) {
        let rows = ws.rows;
        assert_eq!(
            x.nrows(),
            rows,
            "backward: x is not the batch of the last forward"
        );
        let depth = self.depth();
        self.output_delta(y, ws);
        let activation = self.config.activation();
        for l in (0..depth).rev() {
            let (below, here) = ws.deltas.split_at_mut(l);
            let delta = here[0].slice(s![..rows, ..]);
            let input = if l == 0 {
                x
            } else {
                ws.acts[l - 1].slice(s![..rows, ..])
            };
            let chain_gradient = l == 0
                && !skip_first_weights
                && F::first_weight_gradient_sparse(
                    &mut ws.kernels,
                    ws.arithmetic,
                    x,
                    delta,
                    ws.grads.weights[0].view_mut(),
                );
            let skipped = l == 0 && skip_first_weights;
            if !(skipped || chain_gradient) {
                F::weight_gradient(
                    &mut ws.kernels,
                    input,
                    delta,
                    ws.grads.weights[l].view_mut(),
                );
            }
            column_sums(delta, ws.grads.biases[l].view_mut());
            if l > 0 {
                let mut d = below[l - 1].slice_mut(s![..rows, ..]);
                F::delta_product(&mut ws.kernels, delta, self.weights[l].view(), d.view_mut());
                activation.backward_inplace(input, d);
            }
        }
    }

    #[track_caller]
    fn check_trainable(ws: &Workspace<F>) {
        assert!(
            ws.trainable,
            "a workspace from Workspace::inference holds no deltas: use Workspace::new to train"
        );
    }

    /// `deltas[top]`: the head's gradient with respect to its pre-activation.
    #[track_caller]
    pub(super) fn output_delta(&self, y: ArrayView2<'_, F>, ws: &mut Workspace<F>) {
        let rows = ws.rows;
        let top = self.depth() - 1;
        let out = ws.acts[top].slice(s![..rows, ..]);
        let delta = ws.deltas[top].slice_mut(s![..rows, ..]);
        match self.config.head() {
            Head::SigmoidBce => loss::bce_notebook_delta(out, y, delta),
            Head::SoftmaxCrossEntropy => loss::softmax_cross_entropy_delta(out, y, delta),
        }
    }
}

/// `p = p - lr * (g / n)` element-wise, the notebook's `update` of one parameter; `g / n`
/// as `g * inv_n` when `exact_inverse` (see [`Mlp::train_step`]).
pub(super) fn sgd<F: Float>(p: &mut [F], g: &[F], lr: F, n: F, inv_n: F, exact_inverse: bool) {
    // Large parameters: chunks shared among the thread team of `fused::set_threads`
    // (each element computed the same way on any thread).
    const CHUNK: usize = 16 * 1024;
    if fused::threads() > 1 && p.len() >= 2 * CHUNK {
        fused::for_each_chunk(p, CHUNK, &|i, part| {
            let g = &g[i * CHUNK..i * CHUNK + part.len()];
            sgd(part, g, lr, n, inv_n, exact_inverse);
        });
        return;
    }
    if exact_inverse {
        for (p, &g) in p.iter_mut().zip(g) {
            *p = *p - lr * (g * inv_n);
        }
    } else {
        for (p, &g) in p.iter_mut().zip(g) {
            *p = *p - lr * (g / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;
    use crate::config::Arithmetic;
    use crate::init::WeightSource;
    use approx::assert_relative_eq;
    use glorot_tensor::Activation;
    use ndarray::Array2;

    /// For both arithmetics, on a dense input and on one with zeros (which takes the
    /// sparse first layer with `Arithmetic::Fast`).
    #[test]
    fn fused_step_equals_gradients_then_update_bit_for_bit() {
        let dense = Array2::from_shape_fn((5, 40), |(i, j)| ((i * 40 + j) as f64).sin());
        let sparse = dense.mapv(|v| if v > 0.5 { v } else { 0.0 });
        for arithmetic in [Arithmetic::Fast, Arithmetic::Blas] {
            for x in [&dense, &sparse] {
                for head in [Head::SigmoidBce, Head::SoftmaxCrossEntropy] {
                    for act in Activation::ALL {
                        let cfg = config(&[40, 7, 6, 3], act, head);
                        let model = Mlp::<f64>::new(cfg.clone(), WeightSource::Seed(3)).unwrap();
                        // 5 rows: not a power of two, so dividing afterwards matters.
                        let y =
                            Array2::from_shape_fn((5, 3), |(i, j)| f64::from(u8::from(i % 3 == j)));
                        let lr = 0.1;
                        let mut a = model.clone();
                        let mut ws = Workspace::with_arithmetic(&cfg, 8, arithmetic);
                        let la = a.gradients(x.view(), y.view(), &mut ws);
                        a.sgd_step(&ws, lr);
                        let mut b = model.clone();
                        let mut ws2 = Workspace::with_arithmetic(&cfg, 5, arithmetic);
                        let lb = b.train_step(x.view(), y.view(), lr, &mut ws2);
                        assert_eq!(la.to_bits(), lb.to_bits());
                        assert_eq!(a, b, "{act} {head} {arithmetic}");
                        assert_ne!(a, model);
                    }
                }
            }
        }
    }

    /// `Arithmetic::Fast` in `f64` gives the same bits for any thread count and agrees with
    /// `Arithmetic::Blas` up to rounding, on MNIST-like inputs (most pixels zero).
    #[test]
    fn fast_f64_is_thread_independent_and_agrees_with_blas() {
        let cfg = config(&[196, 64, 64, 10], Activation::Tanh, Head::SigmoidBce);
        let model = Mlp::<f64>::new(cfg.clone(), WeightSource::Seed(9)).unwrap();
        let x = Array2::from_shape_fn((32, 196), |(i, j)| {
            let v = ((i * 196 + j) as f64 * 0.37).sin();
            if v > 0.6 { v } else { 0.0 }
        });
        let y = Array2::from_shape_fn((32, 10), |(i, j)| f64::from(u8::from(i % 10 == j)));
        let run = |arithmetic: Arithmetic, threads: usize| {
            fused::set_threads(threads);
            let mut m = model.clone();
            let mut ws = Workspace::with_arithmetic(&cfg, 32, arithmetic);
            let losses: Vec<f64> = (0..5)
                .map(|_| m.train_step(x.view(), y.view(), 0.1, &mut ws))
                .collect();
            fused::set_threads(1);
            (m, losses)
        };
        let (fast1, l1) = run(Arithmetic::Fast, 1);
        let (fast2, l2) = run(Arithmetic::Fast, 2);
        assert_eq!(fast1, fast2);
        assert_eq!(l1, l2);
        let (blas, lb) = run(Arithmetic::Blas, 1);
        for (a, b) in l1.iter().zip(&lb) {
            assert_relative_eq!(a, b, max_relative = 1e-12);
        }
        for l in 0..3 {
            for (a, b) in fast1.weights(l).iter().zip(blas.weights(l)) {
                assert_relative_eq!(a, b, max_relative = 1e-10, epsilon = 1e-14);
            }
        }
    }
}
