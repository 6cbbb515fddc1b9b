//! The forward pass, the loss and predictions.

use glorot_tensor::{Activation, add_row_bias, loss, softmax_rows_inplace};
use ndarray::{Array2, ArrayView2, s};

use super::kernels::MlpFloat;
use super::{Mlp, Workspace};
use crate::config::Head;

impl<F: MlpFloat> Mlp<F> {
    /// Forward pass of `x: (rows, inputs)` into `ws`; read the result with
    /// [`Workspace::output`].
    ///
    /// Each layer is `z = x @ w` (GEMM with beta 0), then `z + b` and the activation in one
    /// pass, as the notebook's `forward`; the head applies the sigmoid (`expit`) for
    /// [`Head::SigmoidBce`] and keeps the logits for [`Head::SoftmaxCrossEntropy`]. With
    /// [`Arithmetic::Fast`](crate::Arithmetic::Fast) on CPUs with AVX-512, in `f32` each
    /// layer is one [`fused::linear_forward`](glorot_tensor::fused::linear_forward) instead
    /// (same math, rounding as documented there), and in `f64` the first layer's product
    /// is [`fused::product_sparse_f64`](glorot_tensor::fused::product_sparse_f64) (the rest
    /// as above); with [`Arithmetic::Blas`](crate::Arithmetic::Blas) every product is
    /// BLAS's.
    ///
    /// # Panics
    /// If `x` has more rows than the workspace holds or the wrong number of columns, or `ws`
    /// was made for another architecture.
    #[track_caller]
    pub fn forward(&self, x: ArrayView2<'_, F>, ws: &mut Workspace<F>) {
        self.check_workspace(ws, x);
        let rows = x.nrows();
        ws.rows = rows;
        if F::forward_fused(self, x, ws) {
            return;
        }
        let depth = self.depth();
        for l in 0..depth {
            let (done, rest) = ws.acts.split_at_mut(l);
            let input = if l == 0 {
                x
            } else {
                done[l - 1].slice(s![..rows, ..])
            };
            let mut z = rest[0].slice_mut(s![..rows, ..]);
            F::forward_product(
                &mut ws.kernels,
                l,
                input,
                self.weights[l].view(),
                z.view_mut(),
            );
            // `f(z + b)` in one pass: bit for bit `z += b` then `f(z)`.
            let bias = self.biases[l].view();
            match self.layer_activation(l) {
                Some(f) => f.forward_bias_inplace(z, bias),
                None => add_row_bias(z, bias),
            }
        }
    }

    /// The element-wise function after layer `l`: the hidden activation, the head's
    /// sigmoid, or nothing (softmax logits).
    pub(super) fn layer_activation(&self, l: usize) -> Option<Activation> {
        if l + 1 < self.depth() {
            Some(self.config.activation())
        } else if self.config.head() == Head::SigmoidBce {
            Some(Activation::Sigmoid)
        } else {
            None
        }
    }

    /// The batch-mean loss of the last [`Mlp::forward`] in `ws` against targets
    /// `y: (rows, outputs)`: the notebook's `loss` ([`loss::bce_notebook`]) or the softmax
    /// cross-entropy from the logits.
    ///
    /// # Panics
    /// If `y`'s shape is not the last forward's output shape.
    #[track_caller]
    pub fn loss(&self, ws: &Workspace<F>, y: ArrayView2<'_, F>) -> F {
        let out = ws.output();
        match self.config.head() {
            Head::SigmoidBce => loss::bce_notebook(out, y),
            Head::SoftmaxCrossEntropy => loss::softmax_cross_entropy(out, y),
        }
    }

    /// Output probabilities for `x: (rows, inputs)`: the sigmoid outputs, or the softmax of
    /// the logits. Allocates a workspace; for repeated calls use [`Mlp::forward`].
    ///
    /// # Panics
    /// If `x` does not have the model's input width.
    #[track_caller]
    pub fn predict(&self, x: ArrayView2<'_, F>) -> Array2<F> {
        let mut ws = Workspace::inference(self.config(), x.nrows());
        self.forward(x, &mut ws);
        let mut out = ws.output().to_owned();
        if self.config.head() == Head::SoftmaxCrossEntropy {
            softmax_rows_inplace(out.view_mut());
        }
        out
    }

    #[track_caller]
    fn check_workspace(&self, ws: &Workspace<F>, x: ArrayView2<'_, F>) {
        assert_eq!(
            ws.layers,
            self.config.layers(),
            "workspace made for another architecture"
        );
        assert!(
            x.nrows() <= ws.capacity,
            "batch of {} rows exceeds the workspace's {} rows",
            x.nrows(),
            ws.capacity
        );
        assert_eq!(
            x.ncols(),
            self.config.inputs(),
            "input width: the model takes {} columns",
            self.config.inputs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;
    use crate::init::WeightSource;
    use approx::assert_relative_eq;
    use glorot_tensor::Activation;
    use ndarray::array;

    /// A 2-2-1 tanh network worked by hand (values computed with Python floats).
    #[test]
    fn forward_matches_a_hand_calculation() {
        let cfg = config(&[2, 2, 1], Activation::Tanh, Head::SigmoidBce);
        let model = Mlp::from_parameters(
            cfg.clone(),
            vec![array![[0.5, -1.0], [0.25, 2.0]], array![[1.5], [-0.5]]],
            vec![array![0.1, -0.2], array![0.3]],
        )
        .unwrap();
        let x = array![[1.0, 2.0]];
        let mut ws = Workspace::new(&cfg, 4);
        model.forward(x.view(), &mut ws);
        // z0 = [0.5 + 0.5 + 0.1, -1 + 4 - 0.2] = [1.1, 2.8]; h = tanh(z0)
        let h = [1.1f64.tanh(), 2.8f64.tanh()];
        let z1 = 1.5 * h[0] - 0.5 * h[1] + 0.3;
        let out = 1.0 / (1.0 + (-z1).exp());
        assert_relative_eq!(ws.hidden(0)[[0, 0]], h[0], max_relative = 1e-15);
        assert_relative_eq!(ws.output()[[0, 0]], out, max_relative = 1e-15);
        let y = array![[1.0]];
        let l = model.loss(&ws, y.view());
        assert_relative_eq!(l, -(out + 1e-8).ln(), max_relative = 1e-14);
    }

    #[test]
    fn partial_batches_use_the_leading_rows_of_the_workspace() {
        let cfg = config(&[3, 4, 2], Activation::Sigmoid, Head::SigmoidBce);
        let model = Mlp::<f32>::new(cfg.clone(), WeightSource::Seed(1)).unwrap();
        let x = Array2::from_shape_fn((3, 3), |(i, j)| (i + 2 * j) as f32 / 7.0);
        let mut big = Workspace::new(&cfg, 10);
        let mut exact = Workspace::new(&cfg, 3);
        model.forward(x.view(), &mut big);
        model.forward(x.view(), &mut exact);
        assert_eq!(big.output(), exact.output());
        assert_eq!(big.rows(), 3);
    }

    #[test]
    fn predict_gives_probabilities() {
        let cfg = config(&[4, 3, 3], Activation::Tanh, Head::SoftmaxCrossEntropy);
        let m = Mlp::<f64>::new(cfg, WeightSource::Seed(2)).unwrap();
        let x = Array2::from_shape_fn((6, 4), |(i, j)| (i as f64 - j as f64) / 3.0);
        let p = m.predict(x.view());
        for row in p.rows() {
            assert_relative_eq!(row.sum(), 1.0, max_relative = 1e-12);
        }
    }
}
