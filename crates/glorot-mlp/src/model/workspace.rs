//! The buffers of forward and backward passes ([`Workspace`]) and the gradients they hold
//! ([`Gradients`]).

use glorot_tensor::Float;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};

use super::kernels::MlpFloat;
#[cfg(doc)]
use super::{Mlp, kernels::Kernels};
#[cfg(doc)]
use crate::config::Head;
use crate::config::{Arithmetic, ValidModelConfig};
use crate::param::{ParamId, ParamKind};

/// Parameter gradients, shaped like the model's parameters.
#[derive(Clone, Debug)]
pub struct Gradients<F: Float> {
    pub(super) weights: Vec<Array2<F>>,
    pub(super) biases: Vec<Array1<F>>,
    /// True when the buffers hold finished gradients (divided by the batch size).
    pub(super) valid: bool,
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
/// reused by every step; steps allocate nothing. The buffers of the fast kernels of `F`'s
/// precision are made here too, when [`Workspace::arithmetic`] and the CPU use them.
#[derive(Clone, Debug)]
pub struct Workspace<F: MlpFloat> {
    pub(super) layers: Vec<usize>,
    pub(super) capacity: usize,
    pub(super) rows: usize,
    /// Made by [`Workspace::new`] (with deltas), not [`Workspace::inference`].
    pub(super) trainable: bool,
    /// `acts[l]: (capacity, layers[l + 1])`, the output of layer `l` after its activation
    /// (the head's sigmoid outputs, or the softmax head's logits, for the last one).
    pub(super) acts: Vec<Array2<F>>,
    /// `deltas[l]: (capacity, layers[l + 1])`, d loss / d z of layer `l` (times rows).
    pub(super) deltas: Vec<Array2<F>>,
    pub(super) grads: Gradients<F>,
    /// How the products are computed.
    pub(super) arithmetic: Arithmetic,
    /// The buffers of this precision's kernels (see [`Kernels::Buffers`]).
    pub(super) kernels: F::Buffers,
}

impl<F: MlpFloat> Workspace<F> {
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
            arithmetic,
            kernels: F::buffers(config, capacity, trainable, arithmetic),
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

    /// The back-propagated gradient of layer `layer` (0-based, any layer up to the head):
    /// `dL/dz` with respect to its pre-activation `z`, one row per example of the last
    /// [`Mlp::gradients`], each row the gradient of that example's own loss (the
    /// batch-mean loss's gradient times the rows), `(rows, layers[layer + 1])`.
    ///
    /// # Panics
    /// If `layer` is out of range, or the buffers do not hold finished gradients (as
    /// [`Workspace::gradients`]).
    #[track_caller]
    pub fn delta(&self, layer: usize) -> ArrayView2<'_, F> {
        assert!(
            self.grads.valid,
            "no gradients: call Mlp::gradients first (train_step leaves raw sums)"
        );
        assert!(layer < self.deltas.len(), "layer {layer} out of range");
        self.deltas[layer].slice(s![..self.rows, ..])
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
