//! The model: parameters, forward pass, loss, backpropagation and the SGD step.

use glorot_tensor::isa::Isa;
use glorot_tensor::{Activation, Float, column_sums, fused, gemm, replay, softmax_rows_inplace};
use glorot_tensor::{add_row_bias, loss};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip, s};

use crate::config::{Arithmetic, Head, ValidModelConfig};
use crate::error::{Error, Result};
use crate::init::{WeightSource, fill_numpy, init_rng};
use crate::param::{ParamId, ParamKind};

/// A multilayer perceptron: `depth` dense layers, the hidden ones followed by the config's
/// activation, the last one by the head.
///
/// Layer `l` computes `z = h @ w_l + b_l` with `w_l: (fan_in, fan_out)` (the notebook's
/// layout) and `b_l: (fan_out,)`; parameters are named `w0, b0, w1, b1, ...`
/// ([`ParamId`]). All buffers a step needs live in a [`Workspace`]; the model only holds
/// parameters, so one model can be evaluated through several workspaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<F: Float> {
    config: ValidModelConfig,
    weights: Vec<Array2<F>>,
    biases: Vec<Array1<F>>,
}

impl<F: Float> Mlp<F> {
    /// A model with zero biases and weights from `source` (see [`WeightSource`]).
    ///
    /// # Errors
    /// [`Error::Init`] when the initializer fails (the orthogonal QR), and
    /// [`Error::NoNumpyReplay`] for a NumPy replay of an initializer the notebook lacks.
    pub fn new(config: ValidModelConfig, source: WeightSource<'_>) -> Result<Self> {
        let mut model = Self::zeros(config);
        let init = model.config.init();
        match source {
            WeightSource::Seed(seed) => {
                let mut rng = init_rng(seed);
                for w in &mut model.weights {
                    init.fill(w.view_mut(), &mut rng)?;
                }
            }
            WeightSource::Rng(rng) => {
                for w in &mut model.weights {
                    init.fill(w.view_mut(), rng)?;
                }
            }
            WeightSource::NumpyReplay(rs) => {
                for w in &mut model.weights {
                    fill_numpy(init, w.view_mut(), rs)?;
                }
            }
        }
        Ok(model)
    }

    /// A model whose parameters are all zero (whatever the config's initializer says).
    pub fn zeros(config: ValidModelConfig) -> Self {
        let (weights, biases) = config
            .layers()
            .windows(2)
            .map(|p| (Array2::zeros((p[0], p[1])), Array1::zeros(p[1])))
            .unzip();
        Self {
            config,
            weights,
            biases,
        }
    }

    /// A model from given parameters, `weights[l]: (layers[l], layers[l + 1])` and
    /// `biases[l]: (layers[l + 1],)`.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the count or a shape disagrees with the config.
    pub fn from_parameters(
        config: ValidModelConfig,
        weights: Vec<Array2<F>>,
        biases: Vec<Array1<F>>,
    ) -> Result<Self> {
        let depth = config.depth();
        for (what, found) in [
            ("weight matrices", weights.len()),
            ("bias vectors", biases.len()),
        ] {
            if found != depth {
                return Err(Error::DataShape {
                    what,
                    expected: depth,
                    found,
                });
            }
        }
        for (l, pair) in config.layers().windows(2).enumerate() {
            let (rows, cols) = weights[l].dim();
            let checks = [
                ("weight matrix rows (fan_in)", pair[0], rows),
                ("weight matrix columns (fan_out)", pair[1], cols),
                ("bias length (fan_out)", pair[1], biases[l].len()),
            ];
            for (what, expected, found) in checks {
                if expected != found {
                    return Err(Error::DataShape {
                        what,
                        expected,
                        found,
                    });
                }
            }
        }
        // Our buffers are in standard layout so that parameters are contiguous slices.
        let weights = weights
            .into_iter()
            .map(|w| w.as_standard_layout().into_owned())
            .collect();
        let biases = biases
            .into_iter()
            .map(|b| b.as_standard_layout().into_owned())
            .collect();
        Ok(Self {
            config,
            weights,
            biases,
        })
    }

    /// The validated architecture.
    pub fn config(&self) -> &ValidModelConfig {
        &self.config
    }

    /// Number of weight layers.
    pub fn depth(&self) -> usize {
        self.weights.len()
    }

    /// The number of trainable parameters: the sum over layers of
    /// `fan_in * fan_out + fan_out` (weights plus biases).
    ///
    /// For the notebook's 784-500-500-10 this is 648,010: weights
    /// 392,000 + 250,000 + 5,000 = 647,000 plus biases 500 + 500 + 10 = 1,010. The notebook
    /// printed "0.648784 million" because its `num_parameters` adds each layer's *input*
    /// width (`pars += self.network_units[i]`, 784 + 500 + 500 = 1,784) where the bias
    /// count, the layer's *output* width, belongs: 647,000 + 1,784 = 648,784.
    pub fn num_parameters(&self) -> usize {
        self.config.num_parameters()
    }

    /// `w<layer>: (fan_in, fan_out)`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn weights(&self, layer: usize) -> ArrayView2<'_, F> {
        self.weights[layer].view()
    }

    /// `b<layer>: (fan_out,)`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn bias(&self, layer: usize) -> ArrayView1<'_, F> {
        self.biases[layer].view()
    }

    /// Mutable `w<layer>`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn weights_mut(&mut self, layer: usize) -> ArrayViewMut2<'_, F> {
        self.weights[layer].view_mut()
    }

    /// Mutable `b<layer>`.
    ///
    /// # Panics
    /// If `layer >= depth()`.
    #[track_caller]
    pub fn bias_mut(&mut self, layer: usize) -> ArrayViewMut1<'_, F> {
        self.biases[layer].view_mut()
    }

    /// The shape of a parameter (`[fan_in, fan_out]` or `[fan_out]`).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param_shape(&self, id: ParamId) -> Result<Vec<usize>> {
        self.check_param(id)?;
        Ok(match id.kind {
            ParamKind::Weight => self.weights[id.layer].shape().to_vec(),
            ParamKind::Bias => self.biases[id.layer].shape().to_vec(),
        })
    }

    /// A parameter's values in row-major order.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param(&self, id: ParamId) -> Result<&[F]> {
        self.check_param(id)?;
        let slice = match id.kind {
            ParamKind::Weight => self.weights[id.layer].as_slice(),
            ParamKind::Bias => self.biases[id.layer].as_slice(),
        };
        Ok(slice.expect("parameters are kept in standard layout"))
    }

    /// A parameter's values in row-major order, mutable.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] when the layer does not exist.
    pub fn param_mut(&mut self, id: ParamId) -> Result<&mut [F]> {
        self.check_param(id)?;
        let slice = match id.kind {
            ParamKind::Weight => self.weights[id.layer].as_slice_mut(),
            ParamKind::Bias => self.biases[id.layer].as_slice_mut(),
        };
        Ok(slice.expect("parameters are kept in standard layout"))
    }

    fn check_param(&self, id: ParamId) -> Result<()> {
        if id.layer < self.depth() {
            Ok(())
        } else {
            Err(Error::UnknownParameter {
                name: id.to_string(),
                reason: format!("the model has {} weight layers", self.depth()),
            })
        }
    }

    /// The same model in another precision (`as` conversions).
    pub fn cast<G: Float>(&self) -> Mlp<G> {
        Mlp {
            config: self.config.clone(),
            weights: self
                .weights
                .iter()
                .map(|w| w.mapv(|v| G::from_f64(v.to_f64())))
                .collect(),
            biases: self
                .biases
                .iter()
                .map(|b| b.mapv(|v| G::from_f64(v.to_f64())))
                .collect(),
        }
    }

    /// Forward pass of `x: (rows, inputs)` into `ws`; read the result with
    /// [`Workspace::output`].
    ///
    /// Each layer is `z = x @ w` (GEMM with beta 0), then `z + b` and the activation in one
    /// pass, as the notebook's `forward`; the head applies the sigmoid (`expit`) for
    /// [`Head::SigmoidBce`] and keeps the logits for [`Head::SoftmaxCrossEntropy`]. With
    /// [`Arithmetic::Fast`] on CPUs with AVX-512, in `f32` each layer is one
    /// [`fused::linear_forward`] instead (same math, rounding as documented there), and in
    /// `f64` the first layer's product is [`fused::product_sparse_f64`] (the rest as
    /// above); with [`Arithmetic::Blas`] every product is BLAS's.
    ///
    /// # Panics
    /// If `x` has more rows than the workspace holds or the wrong number of columns, or `ws`
    /// was made for another architecture.
    #[track_caller]
    pub fn forward(&self, x: ArrayView2<'_, F>, ws: &mut Workspace<F>) {
        self.check_workspace(ws, x);
        let rows = x.nrows();
        ws.rows = rows;
        if ws.scratch.is_some() && self.forward_fused(x, ws) {
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
            // f64 with `Arithmetic::Fast`: the first layer from its input's nonzeros, the
            // others through the f64 kernels.
            let fast64 = match (
                ws.rows64.as_mut(),
                view64(input),
                view64(self.weights[l].view()),
            ) {
                (Some(sparse), Some(x), Some(w)) => view64_mut(z.view_mut())
                    .map(|z| match l {
                        0 => fused::product_sparse_f64(ws.isa, x, w, z, sparse),
                        _ => fused::product_f64(ws.isa, x, w, z),
                    })
                    .is_some(),
                _ => false,
            };
            if !fast64 {
                gemm(
                    F::one(),
                    input,
                    self.weights[l].view(),
                    F::zero(),
                    z.view_mut(),
                );
            }
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
    fn layer_activation(&self, l: usize) -> Option<Activation> {
        if l + 1 < self.depth() {
            Some(self.config.activation())
        } else if self.config.head() == Head::SigmoidBce {
            Some(Activation::Sigmoid)
        } else {
            None
        }
    }

    /// [`Mlp::forward`] through [`fused::linear_forward`], for `f32`; false (nothing done)
    /// when a buffer is not an `f32` contiguous array.
    fn forward_fused(&self, x: ArrayView2<'_, F>, ws: &mut Workspace<F>) -> bool {
        let rows = x.nrows();
        let Some(x32) = view32(x) else {
            return false;
        };
        for l in 0..self.depth() {
            let (done, rest) = ws.acts.split_at_mut(l);
            let input = if l == 0 {
                Some(x32)
            } else {
                view32(done[l - 1].slice(s![..rows, ..]))
            };
            let (Some(input), Some(w), Some(b), Some(out)) = (
                input,
                view32(self.weights[l].view()),
                view32_1(self.biases[l].view()),
                view32_mut(rest[0].slice_mut(s![..rows, ..])),
            ) else {
                return false;
            };
            let act = self.layer_activation(l);
            match (l, ws.sparse.as_mut()) {
                (0, Some(sparse)) => {
                    fused::linear_forward_sparse(ws.isa, input, w, b, act, out, sparse);
                }
                _ => fused::linear_forward(ws.isa, input, w, b, act, out),
            }
        }
        true
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
        if ws.scratch.is_some() || ws.scratch64.is_some() {
            self.output_delta(y, ws);
        }
        if ws.scratch.is_some() && self.backward_fused(x, lr, ws) {
            ws.grads.valid = false;
            return loss;
        }
        if ws.scratch64.is_some() && self.backward_fast_f64(x, lr, ws) {
            ws.grads.valid = false;
            return loss;
        }
        let rows = x.nrows();
        // f64 with a sparse first-layer input: with `Arithmetic::Fast`, or once the BLAS
        // gradient of this batch size has been seen to equal the sparse chains bit for
        // bit, the first layer is updated from the nonzeros alone
        // (`replay::sgd_update_sparse_exact`), skipping its product.
        let fast = ws.arithmetic == Arithmetic::Fast;
        let chain = ws.columns.is_some()
            && view64(x).is_some()
            && (fast || ws.chain_checked.contains(&(rows, true)));
        self.backward_raw(x, y, ws, chain);
        ws.grads.valid = false;
        let unchecked = !ws.chain_checked.iter().any(|&(r, _)| r == rows);
        if !fast && ws.columns.is_some() && unchecked && ws.chain_checked.len() < CHAIN_CHECKS {
            let delta = ws.deltas[0].slice(s![..rows, ..]);
            let ok = match (view64(x), view64(delta), view64(ws.grads.weights[0].view())) {
                (Some(x), Some(d), Some(g)) => ws
                    .columns
                    .as_mut()
                    .is_some_and(|c| replay::matches_sparse_chain(ws.isa, x, d, g, c)),
                _ => false,
            };
            ws.chain_checked.push((rows, ok));
        }
        // `g / n` is computed as `g * (1 / n)` when `n` is a power of two: `1 / n` is then
        // exact and both are the correctly rounded `g / n`, bit for bit, and a product is
        // several times cheaper than a division.
        let n = F::from_f64(rows as f64);
        let inv_n = F::from_f64(1.0 / rows as f64);
        let exact_inverse = rows.is_power_of_two();
        let standard = "parameters and gradients are kept in standard layout";
        for (l, (p, g)) in self.weights.iter_mut().zip(&ws.grads.weights).enumerate() {
            if l == 0 && chain {
                let delta = ws.deltas[0].slice(s![..rows, ..]);
                if let (Some(x), Some(d), Some(w), Some(columns)) = (
                    view64(x),
                    view64(delta),
                    view64_mut(p.view_mut()),
                    ws.columns.as_mut(),
                ) {
                    replay::sgd_update_sparse_exact(ws.isa, x, d, lr.to_f64(), w, columns);
                    continue;
                }
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

    /// Backpropagation and update through [`fused::linear_backward_input`] and
    /// [`fused::sgd_update`], for `f32` after [`Mlp::forward_fused`]; false (nothing done)
    /// when a buffer is not an `f32` contiguous array.
    ///
    /// For each layer from the top: the delta below is computed with the weights *before*
    /// their update (as the notebook's `backward` computes every gradient first), then the
    /// layer is updated with `w -= (lr / rows) * (h^T @ delta)`.
    fn backward_fused(&mut self, x: ArrayView2<'_, F>, lr: F, ws: &mut Workspace<F>) -> bool {
        let (rows, isa) = (ws.rows, ws.isa);
        let depth = self.depth();
        let Some(x32) = view32(x) else {
            return false;
        };
        let scale = (lr.to_f64() / rows as f64) as f32;
        let activation = self.config.activation();
        let (Some(scratch), Some(sparse)) = (ws.scratch.as_mut(), ws.sparse.as_mut()) else {
            return false;
        };
        for l in (0..depth).rev() {
            let (below, here) = ws.deltas.split_at_mut(l);
            let Some(delta) = view32(here[0].slice(s![..rows, ..])) else {
                return false;
            };
            let input = if l == 0 {
                Some(x32)
            } else {
                view32(ws.acts[l - 1].slice(s![..rows, ..]))
            };
            let Some(input) = input else {
                return false;
            };
            if l > 0 {
                let (Some(w), Some(d)) = (
                    view32(self.weights[l].view()),
                    view32_mut(below[l - 1].slice_mut(s![..rows, ..])),
                ) else {
                    return false;
                };
                fused::linear_backward_input(isa, delta, w, activation, input, d, scratch);
            }
            let (Some(w), Some(b)) = (
                view32_mut(self.weights[l].view_mut()),
                view32_1_mut(self.biases[l].view_mut()),
            ) else {
                return false;
            };
            if l == 0 {
                fused::sgd_update_sparse(isa, input, delta, scale, w, b, sparse);
            } else {
                fused::sgd_update(isa, input, delta, scale, w, b);
            }
        }
        true
    }

    /// Backpropagation and update in `f64` with [`Arithmetic::Fast`], after
    /// [`Mlp::forward`] and the output delta: for each layer from the top, the delta below
    /// through [`fused::product_nt_f64`] and the activation's derivative (with the weights
    /// before their update, as the notebook's `backward`), then the bias update as in
    /// [`Mlp::sgd_step`] and the weights' through [`fused::sgd_update_f64`] (the first
    /// layer's from its input's nonzeros, [`replay::sgd_update_sparse_exact`]). The same
    /// bits as [`Mlp::gradients`] then [`Mlp::sgd_step`] in this arithmetic. False (nothing
    /// done) when a buffer is not an `f64` contiguous array.
    fn backward_fast_f64(&mut self, x: ArrayView2<'_, F>, lr: F, ws: &mut Workspace<F>) -> bool {
        let (rows, isa) = (ws.rows, ws.isa);
        let depth = self.depth();
        let activation = self.config.activation();
        let Some(x64) = view64(x) else {
            return false;
        };
        let (n, inv_n) = (F::from_f64(rows as f64), F::from_f64(1.0 / rows as f64));
        let exact_inverse = rows.is_power_of_two();
        for l in (0..depth).rev() {
            let (below, here) = ws.deltas.split_at_mut(l);
            let Some(delta) = view64(here[0].slice(s![..rows, ..])) else {
                return false;
            };
            let input = if l == 0 {
                Some(x64)
            } else {
                view64(ws.acts[l - 1].slice(s![..rows, ..]))
            };
            let (Some(input), Some(scratch)) = (input, ws.scratch64.as_mut()) else {
                return false;
            };
            if l > 0 {
                let (Some(w), Some(mut d)) = (
                    view64(self.weights[l].view()),
                    view64_mut(below[l - 1].slice_mut(s![..rows, ..])),
                ) else {
                    return false;
                };
                fused::product_nt_f64(isa, delta, w, d.view_mut(), scratch);
                activation.backward_inplace(input, d);
            }
            column_sums(here[0].slice(s![..rows, ..]), ws.grads.biases[l].view_mut());
            let (Some(p), Some(g)) = (self.biases[l].as_slice_mut(), ws.grads.biases[l].as_slice())
            else {
                return false;
            };
            sgd(p, g, lr, n, inv_n, exact_inverse);
            let Some(w) = view64_mut(self.weights[l].view_mut()) else {
                return false;
            };
            match (l, ws.columns.as_mut()) {
                (0, Some(columns)) => {
                    replay::sgd_update_sparse_exact(isa, input, delta, lr.to_f64(), w, columns);
                }
                _ => fused::sgd_update_f64(isa, input, delta, lr.to_f64(), w, scratch),
            }
        }
        true
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

    /// Raw (not yet divided by the batch size) gradients of the last forward into
    /// `ws.grads`.
    #[track_caller]
    /// With `skip_first_weights`, the first layer's weight gradient is not computed (the
    /// caller updates that layer from its sparse input). In `f64` with
    /// [`Arithmetic::Fast`] it is computed as the sparse update would
    /// ([`replay::weight_gradient_sparse_f64`]), so that a step equals gradients then update.
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
                && ws.arithmetic == Arithmetic::Fast
                && match (view64(x), view64(delta), ws.columns.as_mut()) {
                    (Some(x), Some(d), Some(columns)) => view64_mut(ws.grads.weights[0].view_mut())
                        .map(|g| replay::weight_gradient_sparse_f64(ws.isa, x, d, g, columns))
                        .is_some(),
                    _ => false,
                };
            let skipped = l == 0 && skip_first_weights;
            let fast64 = !(skipped || chain_gradient)
                && ws.scratch64.is_some()
                && match (view64(input), view64(delta)) {
                    (Some(i), Some(d)) => view64_mut(ws.grads.weights[l].view_mut())
                        .map(|g| fused::product_f64(ws.isa, i.t(), d, g))
                        .is_some(),
                    _ => false,
                };
            if !(skipped || chain_gradient || fast64) {
                gemm(
                    F::one(),
                    input.t(),
                    delta,
                    F::zero(),
                    ws.grads.weights[l].view_mut(),
                );
            }
            column_sums(delta, ws.grads.biases[l].view_mut());
            if l > 0 {
                let mut d = below[l - 1].slice_mut(s![..rows, ..]);
                let fast64 = match (
                    ws.scratch64.as_mut(),
                    view64(delta),
                    view64(self.weights[l].view()),
                ) {
                    (Some(scratch), Some(dl), Some(w)) => view64_mut(d.view_mut())
                        .map(|d| fused::product_nt_f64(ws.isa, dl, w, d, scratch))
                        .is_some(),
                    _ => false,
                };
                if !fast64 {
                    gemm(
                        F::one(),
                        delta,
                        self.weights[l].t(),
                        F::zero(),
                        d.view_mut(),
                    );
                }
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
    fn output_delta(&self, y: ArrayView2<'_, F>, ws: &mut Workspace<F>) {
        let rows = ws.rows;
        let top = self.depth() - 1;
        let out = ws.acts[top].slice(s![..rows, ..]);
        let delta = ws.deltas[top].slice_mut(s![..rows, ..]);
        match self.config.head() {
            Head::SigmoidBce => loss::bce_notebook_delta(out, y, delta),
            Head::SoftmaxCrossEntropy => loss::softmax_cross_entropy_delta(out, y, delta),
        }
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

/// Largest batch for which an `f64` workspace keeps the first layer's input by columns.
const MAX_SPARSE_ROWS: usize = 1024;
/// Batch sizes remembered in [`Workspace::chain_checked`].
const CHAIN_CHECKS: usize = 8;

/// `p = p - lr * (g / n)` element-wise, the notebook's `update` of one parameter; `g / n`
/// as `g * inv_n` when `exact_inverse` (see [`Mlp::train_step`]).
fn sgd<F: Float>(p: &mut [F], g: &[F], lr: F, n: F, inv_n: F, exact_inverse: bool) {
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

/// `a` as an `f32` view when `F` is `f32` and `a` is contiguous in standard order.
fn view32<F: Float>(a: ArrayView2<'_, F>) -> Option<ArrayView2<'_, f32>> {
    let dim = a.dim();
    let s = F::as_f32_slice(a.to_slice()?)?;
    ArrayView2::from_shape(dim, s).ok()
}

/// `a` as an `f64` view when `F` is `f64` and `a` is contiguous in standard order.
fn view64<F: Float>(a: ArrayView2<'_, F>) -> Option<ArrayView2<'_, f64>> {
    let dim = a.dim();
    let s = F::as_f64_slice(a.to_slice()?)?;
    ArrayView2::from_shape(dim, s).ok()
}

/// Mutable [`view64`].
fn view64_mut<F: Float>(a: ArrayViewMut2<'_, F>) -> Option<ArrayViewMut2<'_, f64>> {
    let dim = a.dim();
    let s = F::as_f64_slice_mut(a.into_slice()?)?;
    ArrayViewMut2::from_shape(dim, s).ok()
}

/// [`view32`] for a vector.
fn view32_1<F: Float>(a: ArrayView1<'_, F>) -> Option<ArrayView1<'_, f32>> {
    Some(ArrayView1::from(F::as_f32_slice(a.to_slice()?)?))
}

/// Mutable [`view32`].
fn view32_mut<F: Float>(a: ArrayViewMut2<'_, F>) -> Option<ArrayViewMut2<'_, f32>> {
    let dim = a.dim();
    let s = F::as_f32_slice_mut(a.into_slice()?)?;
    ArrayViewMut2::from_shape(dim, s).ok()
}

/// Mutable [`view32_1`].
fn view32_1_mut<F: Float>(a: ArrayViewMut1<'_, F>) -> Option<ArrayViewMut1<'_, f32>> {
    Some(ArrayViewMut1::from(F::as_f32_slice_mut(a.into_slice()?)?))
}

/// Parameter gradients, shaped like the model's parameters.
#[derive(Clone, Debug)]
pub struct Gradients<F: Float> {
    weights: Vec<Array2<F>>,
    biases: Vec<Array1<F>>,
    /// True when the buffers hold finished gradients (divided by the batch size).
    valid: bool,
}

impl<F: Float> Gradients<F> {
    /// Gradient of `w<layer>`.
    ///
    /// # Panics
    /// If `layer` is out of range.
    #[track_caller]
    pub fn weights(&self, layer: usize) -> ArrayView2<'_, F> {
        self.weights[layer].view()
    }

    /// Gradient of `b<layer>`.
    ///
    /// # Panics
    /// If `layer` is out of range.
    #[track_caller]
    pub fn bias(&self, layer: usize) -> ArrayView1<'_, F> {
        self.biases[layer].view()
    }

    /// Gradient of a parameter in row-major order, or `None` when the layer does not exist.
    pub fn param(&self, id: ParamId) -> Option<&[F]> {
        let slice = match id.kind {
            ParamKind::Weight => self.weights.get(id.layer)?.as_slice(),
            ParamKind::Bias => self.biases.get(id.layer)?.as_slice(),
        };
        Some(slice.expect("gradients are kept in standard layout"))
    }
}

/// Every buffer a forward and backward pass needs, for batches of up to `capacity` rows:
/// per layer its output (activations), its delta, and the parameter gradients. Made once,
/// reused by every step; steps allocate nothing.
#[derive(Clone, Debug)]
pub struct Workspace<F: Float> {
    layers: Vec<usize>,
    capacity: usize,
    rows: usize,
    /// Made by [`Workspace::new`] (with deltas), not [`Workspace::inference`].
    trainable: bool,
    /// `acts[l]: (capacity, layers[l + 1])`, the output of layer `l` after its activation
    /// (the head's sigmoid outputs, or the softmax head's logits, for the last one).
    acts: Vec<Array2<F>>,
    /// `deltas[l]: (capacity, layers[l + 1])`, d loss / d z of layer `l` (times rows).
    deltas: Vec<Array2<F>>,
    grads: Gradients<F>,
    /// The instruction set of the fused kernels ([`Isa::default_for_process`]).
    isa: Isa,
    /// Buffers of the fused `f32` kernels; `Some` exactly when they are used (`F` is `f32`
    /// and the instruction set is [`Isa::accelerated`]).
    scratch: Option<fused::Scratch>,
    /// The nonzeros of the first layer's input (MNIST images are about 80 % zeros), for
    /// the fused kernels; `Some` with `scratch`.
    sparse: Option<fused::SparseInput>,
    /// For `f64` training on CPUs with the fused kernels: the first layer's input by
    /// columns, for [`replay::sgd_update_sparse_exact`].
    columns: Option<replay::SparseColumns>,
    /// For `f64` with [`Arithmetic::Fast`] on CPUs with the fused kernels: the first
    /// layer's input by rows, for [`fused::product_sparse_f64`].
    rows64: Option<fused::SparseRowsF64>,
    /// For `f64` training with [`Arithmetic::Fast`] on CPUs with the fused kernels: the
    /// transposes of [`fused::product_nt_f64`].
    scratch64: Option<fused::ScratchF64>,
    /// How the products are computed.
    arithmetic: Arithmetic,
    /// Batch sizes for which the BLAS gradient of the first layer was compared with the
    /// sparse chains ([`replay::matches_sparse_chain`]), and whether they agreed bit for
    /// bit. Fixed capacity: pushing never allocates.
    chain_checked: Vec<(usize, bool)>,
}

impl<F: Float> Workspace<F> {
    /// Buffers for `config`'s architecture and batches of at most `capacity` rows: for
    /// training steps ([`Mlp::train_step`], [`Mlp::gradients`]) and forward passes.
    ///
    /// The memory is written once here, so that no page of it is first touched (and
    /// faulted in by the kernel) inside a step or an evaluation.
    pub fn new(config: &ValidModelConfig, capacity: usize) -> Self {
        Self::build(config, capacity, true, Arithmetic::Fast)
    }

    /// [`Workspace::new`] computing its products as `arithmetic` says
    /// ([`Arithmetic::Blas`] for a NumPy replay).
    pub fn with_arithmetic(
        config: &ValidModelConfig,
        capacity: usize,
        arithmetic: Arithmetic,
    ) -> Self {
        Self::build(config, capacity, true, arithmetic)
    }

    /// Buffers for forward passes only ([`Mlp::forward`], evaluation) of up to `capacity`
    /// rows: no deltas, about half the memory of [`Workspace::new`].
    pub fn inference(config: &ValidModelConfig, capacity: usize) -> Self {
        Self::build(config, capacity, false, Arithmetic::Fast)
    }

    /// [`Workspace::inference`] computing its products as `arithmetic` says.
    pub fn inference_with_arithmetic(
        config: &ValidModelConfig,
        capacity: usize,
        arithmetic: Arithmetic,
    ) -> Self {
        Self::build(config, capacity, false, arithmetic)
    }

    /// How this workspace's products are computed.
    pub fn arithmetic(&self) -> Arithmetic {
        self.arithmetic
    }

    fn build(
        config: &ValidModelConfig,
        capacity: usize,
        trainable: bool,
        arithmetic: Arithmetic,
    ) -> Self {
        // `from_shape_simple_fn` writes every element (where `zeros` may map untouched
        // zero pages that fault later, in the middle of a timed step).
        let touched =
            |rows: usize, cols: usize| Array2::from_shape_simple_fn((rows, cols), F::zero);
        let widths = &config.layers()[1..];
        let acts: Vec<Array2<F>> = widths.iter().map(|&w| touched(capacity, w)).collect();
        let delta_rows = if trainable { capacity } else { 0 };
        let deltas: Vec<Array2<F>> = widths.iter().map(|&w| touched(delta_rows, w)).collect();
        let (weights, biases) = config
            .layers()
            .windows(2)
            .map(|p| (touched(p[0], p[1]), Array1::zeros(p[1])))
            .unzip();
        let isa = Isa::default_for_process();
        let fast = arithmetic == Arithmetic::Fast && isa.accelerated();
        let (is_f32, is_f64) = (
            F::as_f32_slice(&[]).is_some(),
            F::as_f64_slice(&[]).is_some(),
        );
        let widest = config.layers().iter().copied().max().unwrap_or(0);
        Self {
            layers: config.layers().to_vec(),
            capacity,
            rows: 0,
            trainable,
            deltas,
            acts,
            grads: Gradients {
                weights,
                biases,
                valid: false,
            },
            scratch: (fast && is_f32).then(|| fused::Scratch::new(isa, widest)),
            sparse: (fast && is_f32).then(|| fused::SparseInput::new(isa, config.inputs())),
            columns: (trainable && is_f64 && isa.accelerated() && capacity <= MAX_SPARSE_ROWS)
                .then(|| replay::SparseColumns::new(isa, capacity, config.inputs())),
            rows64: (fast && is_f64).then(|| fused::SparseRowsF64::new(isa, config.inputs())),
            scratch64: (fast && is_f64 && trainable).then(|| fused::ScratchF64::new(isa, widest)),
            isa,
            arithmetic,
            chain_checked: Vec::with_capacity(CHAIN_CHECKS),
        }
    }

    /// The largest batch this workspace holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows of the last forward pass.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The head's output of the last forward pass, `(rows, outputs)`: sigmoid outputs for
    /// [`Head::SigmoidBce`], logits for [`Head::SoftmaxCrossEntropy`] (argmax is the same).
    pub fn output(&self) -> ArrayView2<'_, F> {
        let top = self.acts.len() - 1;
        self.acts[top].slice(s![..self.rows, ..])
    }

    /// Output of hidden layer `layer` (0-based, `layer < depth - 1`) after its activation,
    /// `(rows, layers[layer + 1])`, from the last forward pass.
    ///
    /// # Panics
    /// If `layer` is out of range.
    #[track_caller]
    pub fn hidden(&self, layer: usize) -> ArrayView2<'_, F> {
        assert!(
            layer + 1 < self.acts.len(),
            "hidden layer {layer} out of range"
        );
        self.acts[layer].slice(s![..self.rows, ..])
    }

    /// Gradients of the last [`Mlp::gradients`].
    ///
    /// # Panics
    /// If the buffers do not hold finished gradients (no [`Mlp::gradients`] call yet, or a
    /// [`Mlp::train_step`] since, which leaves them undivided).
    #[track_caller]
    pub fn gradients(&self) -> &Gradients<F> {
        assert!(
            self.grads.valid,
            "no gradients: call Mlp::gradients first (train_step leaves raw sums)"
        );
        &self.grads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use approx::assert_relative_eq;
    use glorot_tensor::{Activation, Init};
    use ndarray::array;

    fn config(layers: &[usize], activation: Activation, head: Head) -> ValidModelConfig {
        ModelConfig {
            layers: layers.to_vec(),
            activation,
            head,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap()
    }

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

    /// For both arithmetics, on a dense input and on one with zeros (which takes the
    /// sparse first layer with `Arithmetic::Fast`).
    #[test]
    fn fused_step_equals_gradients_then_update_bit_for_bit() {
        let dense = Array2::from_shape_fn((5, 40), |(i, j)| ((i * 40 + j) as f64).sin());
        let sparse = dense.mapv(|v| if v > 0.5 { v } else { 0.0 });
        for arithmetic in [Arithmetic::Fast, Arithmetic::Blas] {
            for x in [&dense, &sparse] {
                for head in [Head::SigmoidBce, Head::SoftmaxCrossEntropy] {
                    for act in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
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
    fn cast_round_trips_f32_values() {
        let cfg = config(&[4, 3, 2], Activation::Relu, Head::SigmoidBce);
        let m = Mlp::<f32>::new(cfg, WeightSource::Seed(9)).unwrap();
        assert_eq!(m.cast::<f64>().cast::<f32>(), m);
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

    #[test]
    fn from_parameters_refuses_wrong_shapes() {
        let cfg = config(&[3, 2], Activation::Tanh, Head::SigmoidBce);
        let err = Mlp::<f64>::from_parameters(
            cfg.clone(),
            vec![Array2::zeros((2, 3))],
            vec![Array1::zeros(2)],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::DataShape {
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = Mlp::<f64>::from_parameters(cfg, vec![], vec![]).unwrap_err();
        assert!(matches!(err, Error::DataShape { .. }), "{err}");
    }

    #[test]
    fn params_by_name() {
        let cfg = config(&[3, 2], Activation::Tanh, Head::SigmoidBce);
        let mut m = Mlp::<f64>::zeros(cfg);
        m.param_mut(ParamId::bias(0)).unwrap()[1] = 4.0;
        assert_eq!(m.bias(0)[1], 4.0);
        assert_eq!(m.param_shape(ParamId::weight(0)).unwrap(), vec![3, 2]);
        assert!(m.param(ParamId::weight(1)).is_err());
    }
}
