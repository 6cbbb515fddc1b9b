//! What each precision computes differently: the [`MlpFloat`] bound and its sealed
//! [`Kernels`] part, implemented in [`f32`](mod@f32) (the fused layer kernels) and
//! [`f64`](mod@f64) (the `f64` products, and the exact sparse first-layer update of the
//! notebook replay).
//!
//! The generic code of the model ([`Mlp::forward`], [`Mlp::train_step`], ...) calls these
//! hooks at fixed points; every call into `glorot_tensor::fused` is in the two precision
//! files, with the buffers it needs in that precision's [`Kernels::Buffers`] (kept by the
//! [`Workspace`]). Each hook either does its work or says it did nothing (`false`), in
//! which case the generic code does the unfused arithmetic; the conditions under which a
//! hook acts are stated on each implementation.

use glorot_tensor::Float;
use glorot_tensor::isa::Isa;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::{Mlp, Workspace};
use crate::config::{Arithmetic, ValidModelConfig};

mod f32;
mod f64;

/// An element type the model computes in: [`f32`](prim@f32) or [`f64`](prim@f64), each with its own fast
/// path.
///
/// This is [`Float`] plus the per-precision part of a forward pass and a training step
/// (the fused `f32` layer kernels; the `f64` products and the exact sparse update of the
/// first layer), chosen at compile time by the type. The trait is sealed: it is
/// implemented for `f32` and `f64` only. Generic code that computes with an [`Mlp`] or a
/// [`Workspace`] writes `F: MlpFloat` where it wrote `F: Float`.
///
/// ```
/// # extern crate blas_src;
/// use glorot_mlp::{Head, Mlp, ModelConfig, MlpFloat, WeightSource, Workspace};
/// use glorot_tensor::{Activation, Init};
/// use ndarray::Array2;
///
/// fn first_output<F: MlpFloat>(model: &Mlp<F>, x: &Array2<F>) -> F {
///     let mut ws = Workspace::inference(model.config(), x.nrows());
///     model.forward(x.view(), &mut ws);
///     ws.output()[[0, 0]]
/// }
///
/// let config = ModelConfig {
///     layers: vec![3, 4, 1],
///     activation: Activation::Tanh,
///     head: Head::SigmoidBce,
///     init: Init::GlorotUniform,
/// }
/// .validate()?;
/// let model = Mlp::<f32>::new(config, WeightSource::Seed(1))?;
/// let p = first_output(&model, &Array2::ones((2, 3)));
/// assert!(p > 0.0 && p < 1.0);
/// # Ok::<(), glorot_mlp::Error>(())
/// ```
pub trait MlpFloat: Float + Kernels {}

impl MlpFloat for f32 {}
impl MlpFloat for f64 {}

/// The per-precision hooks behind [`MlpFloat`]. Public only so that it can be a supertrait;
/// its module is private, so no other crate can name, implement or call it.
///
/// Every hook sees the same arguments the generic code would use for its unfused
/// arithmetic; "standard layout" below means [`ndarray::ArrayBase::is_standard_layout`]
/// (the model's parameters and the workspace's buffers always are; a caller's `x` may not
/// be).
pub trait Kernels: Float {
    /// The buffers this precision's kernels need, made once per [`Workspace`].
    type Buffers: Clone + std::fmt::Debug + Send + Sync;

    /// The buffers of a workspace for `config`, batches of up to `capacity` rows, with
    /// deltas (`trainable`) or not, computing as `arithmetic` says.
    fn buffers(
        config: &ValidModelConfig,
        capacity: usize,
        trainable: bool,
        arithmetic: Arithmetic,
    ) -> Self::Buffers;

    /// The whole of [`Mlp::forward`] after its checks (`ws.rows` set) through fused layer
    /// kernels; `false` when this precision or workspace has none, or `x` does not fit
    /// them (nothing computed).
    fn forward_fused(model: &Mlp<Self>, x: ArrayView2<'_, Self>, ws: &mut Workspace<Self>) -> bool
    where
        Self: MlpFloat;

    /// `z = input @ w`, layer `layer`'s product in the unfused forward pass.
    fn forward_product(
        buffers: &mut Self::Buffers,
        layer: usize,
        input: ArrayView2<'_, Self>,
        w: ArrayView2<'_, Self>,
        z: ArrayViewMut2<'_, Self>,
    );

    /// The backpropagation and update of [`Mlp::train_step`] after a finite loss, through
    /// fused kernels; `false` when this precision or workspace has none, or `x` does not
    /// fit them (parameters untouched; `deltas[top]` may have been written).
    fn step_fused(
        model: &mut Mlp<Self>,
        x: ArrayView2<'_, Self>,
        y: ArrayView2<'_, Self>,
        lr: Self,
        ws: &mut Workspace<Self>,
    ) -> bool
    where
        Self: MlpFloat;

    /// Whether the unfused [`Mlp::train_step`] on `x` skips the first layer's weight
    /// gradient and updates that layer from the nonzeros of `x`
    /// ([`Kernels::sgd_first_sparse`]).
    fn sparse_first_update(
        buffers: &Self::Buffers,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, Self>,
    ) -> bool;

    /// After the unfused backward pass of [`Mlp::train_step`]: record, once per batch size,
    /// whether the first layer's weight gradient `g` (computed by BLAS) equals the sparse
    /// chains of `x` and `delta` bit for bit.
    fn check_sparse_chain(
        buffers: &mut Self::Buffers,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, Self>,
        delta: ArrayView2<'_, Self>,
        g: ArrayView2<'_, Self>,
    );

    /// `w = w - lr * ((x^T @ delta) / rows)` from the nonzeros of `x`, for the first layer
    /// when [`Kernels::sparse_first_update`] said so; `false` when not done.
    fn sgd_first_sparse(
        buffers: &mut Self::Buffers,
        x: ArrayView2<'_, Self>,
        delta: ArrayView2<'_, Self>,
        lr: Self,
        w: ArrayViewMut2<'_, Self>,
    ) -> bool;

    /// `g = x^T @ delta` of the first layer as [`Kernels::sgd_first_sparse`] sums it, in
    /// the unfused backward pass; `false` when not done.
    fn first_weight_gradient_sparse(
        buffers: &mut Self::Buffers,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, Self>,
        delta: ArrayView2<'_, Self>,
        g: ArrayViewMut2<'_, Self>,
    ) -> bool;

    /// `g = input^T @ delta`, a weight gradient in the unfused backward pass.
    fn weight_gradient(
        buffers: &mut Self::Buffers,
        input: ArrayView2<'_, Self>,
        delta: ArrayView2<'_, Self>,
        g: ArrayViewMut2<'_, Self>,
    );

    /// `d = delta @ w^T`, the delta of the layer below before its activation's derivative,
    /// in the unfused backward pass.
    fn delta_product(
        buffers: &mut Self::Buffers,
        delta: ArrayView2<'_, Self>,
        w: ArrayView2<'_, Self>,
        d: ArrayViewMut2<'_, Self>,
    );
}

/// `a` viewed again with the standard strides when it is in standard layout, else `None`.
fn standard<T>(a: ArrayView2<'_, T>) -> Option<ArrayView2<'_, T>> {
    let dim = a.dim();
    ArrayView2::from_shape(dim, a.to_slice()?).ok()
}

/// Mutable [`standard`].
fn standard_mut<T>(a: ArrayViewMut2<'_, T>) -> Option<ArrayViewMut2<'_, T>> {
    let dim = a.dim();
    ArrayViewMut2::from_shape(dim, a.into_slice()?).ok()
}

/// [`standard`] for a vector.
fn standard_1<T>(a: ArrayView1<'_, T>) -> Option<ArrayView1<'_, T>> {
    Some(ArrayView1::from(a.to_slice()?))
}

/// Mutable [`standard_1`].
fn standard_1_mut<T>(a: ArrayViewMut1<'_, T>) -> Option<ArrayViewMut1<'_, T>> {
    Some(ArrayViewMut1::from(a.into_slice()?))
}

/// The instruction set of a new workspace's kernels ([`Isa::default_for_process`]): the
/// one place the model asks, when a workspace's buffers are made; the buffers keep it and
/// pass it to every kernel call.
fn workspace_isa() -> Isa {
    Isa::default_for_process()
}

/// The widest layer of `config` (the scratch buffers' width).
fn widest(config: &ValidModelConfig) -> usize {
    config.layers().iter().copied().max().unwrap_or(0)
}
