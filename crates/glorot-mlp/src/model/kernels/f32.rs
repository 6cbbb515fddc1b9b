//! `f32`: with [`Arithmetic::Fast`] on CPUs with the fused kernels
//! ([`Isa::accelerated`]), the forward pass is one [`fused::linear_forward`] per layer
//! (the first from its input's nonzeros, [`fused::linear_forward_sparse`]) and a training
//! step's backward pass and update are [`fused::linear_backward_input`] and
//! [`fused::sgd_update`] ([`fused::sgd_update_sparse`] for the first layer). Otherwise
//! every product is BLAS's ([`gemm`]) and the element-wise work is the generic code's.

use glorot_tensor::isa::Isa;
use glorot_tensor::{fused, gemm};
use ndarray::{ArrayView2, ArrayViewMut2, s};

use super::{Kernels, standard, standard_1, standard_1_mut, standard_mut, widest, workspace_isa};
use crate::config::{Arithmetic, ValidModelConfig};
use crate::model::{Mlp, Workspace};

/// The buffers of the `f32` kernels of a [`Workspace`].
#[derive(Clone, Debug)]
pub struct Buffers32 {
    /// The instruction set every kernel call of this workspace uses.
    isa: Isa,
    /// `Some` exactly when the fused kernels are used: [`Arithmetic::Fast`] and an
    /// [`Isa::accelerated`] instruction set.
    fused: Option<Fused32>,
}

/// The buffers of the fused `f32` kernels.
#[derive(Clone, Debug)]
struct Fused32 {
    /// The transposes of [`fused::linear_backward_input`].
    scratch: fused::Scratch,
    /// The nonzeros of the first layer's input (MNIST images are about 80 % zeros).
    sparse: fused::SparseInput,
}

impl Kernels for f32 {
    type Buffers = Buffers32;

    fn buffers(
        config: &ValidModelConfig,
        _capacity: usize,
        _trainable: bool,
        arithmetic: Arithmetic,
    ) -> Buffers32 {
        let isa = workspace_isa();
        let fast = arithmetic == Arithmetic::Fast && isa.accelerated();
        Buffers32 {
            isa,
            fused: fast.then(|| Fused32 {
                scratch: fused::Scratch::new(isa, widest(config)),
                sparse: fused::SparseInput::new(isa, config.inputs()),
            }),
        }
    }

    /// With the fused kernels and `x` in standard layout: each layer through
    /// [`fused::linear_forward`], the first through [`fused::linear_forward_sparse`].
    fn forward_fused(model: &Mlp<f32>, x: ArrayView2<'_, f32>, ws: &mut Workspace<f32>) -> bool {
        let isa = ws.kernels.isa;
        let Some(fused) = ws.kernels.fused.as_mut() else {
            return false;
        };
        let rows = x.nrows();
        let Some(x32) = standard(x) else {
            return false;
        };
        for l in 0..model.depth() {
            let (done, rest) = ws.acts.split_at_mut(l);
            let input = if l == 0 {
                Some(x32)
            } else {
                standard(done[l - 1].slice(s![..rows, ..]))
            };
            let (Some(input), Some(w), Some(b), Some(out)) = (
                input,
                standard(model.weights[l].view()),
                standard_1(model.biases[l].view()),
                standard_mut(rest[0].slice_mut(s![..rows, ..])),
            ) else {
                return false;
            };
            let act = model.layer_activation(l);
            if l == 0 {
                fused::linear_forward_sparse(isa, input, w, b, act, out, &mut fused.sparse);
            } else {
                fused::linear_forward(isa, input, w, b, act, out);
            }
        }
        true
    }

    fn forward_product(
        _buffers: &mut Buffers32,
        _layer: usize,
        input: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        z: ArrayViewMut2<'_, f32>,
    ) {
        gemm(1.0, input, w, 0.0, z);
    }

    /// With the fused kernels: the output delta, then [`backward_fused`] (`false` when `x`
    /// is not in standard layout).
    fn step_fused(
        model: &mut Mlp<f32>,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        lr: f32,
        ws: &mut Workspace<f32>,
    ) -> bool {
        if ws.kernels.fused.is_none() {
            return false;
        }
        model.output_delta(y, ws);
        backward_fused(model, x, lr, ws)
    }

    /// Never: `f32` has no exact sparse update.
    fn sparse_first_update(_: &Buffers32, _: Arithmetic, _: ArrayView2<'_, f32>) -> bool {
        false
    }

    /// Nothing to record in `f32`.
    fn check_sparse_chain(
        _: &mut Buffers32,
        _: Arithmetic,
        _: ArrayView2<'_, f32>,
        _: ArrayView2<'_, f32>,
        _: ArrayView2<'_, f32>,
    ) {
    }

    /// Never (see [`Kernels::sparse_first_update`]).
    fn sgd_first_sparse(
        _: &mut Buffers32,
        _: ArrayView2<'_, f32>,
        _: ArrayView2<'_, f32>,
        _: f32,
        _: ArrayViewMut2<'_, f32>,
    ) -> bool {
        false
    }

    /// Never: the first layer's gradient is BLAS's, as the others.
    fn first_weight_gradient_sparse(
        _: &mut Buffers32,
        _: Arithmetic,
        _: ArrayView2<'_, f32>,
        _: ArrayView2<'_, f32>,
        _: ArrayViewMut2<'_, f32>,
    ) -> bool {
        false
    }

    fn weight_gradient(
        _buffers: &mut Buffers32,
        input: ArrayView2<'_, f32>,
        delta: ArrayView2<'_, f32>,
        g: ArrayViewMut2<'_, f32>,
    ) {
        gemm(1.0, input.t(), delta, 0.0, g);
    }

    fn delta_product(
        _buffers: &mut Buffers32,
        delta: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        d: ArrayViewMut2<'_, f32>,
    ) {
        gemm(1.0, delta, w.t(), 0.0, d);
    }
}

/// Backpropagation and update through [`fused::linear_backward_input`] and
/// [`fused::sgd_update`], after the fused forward pass and the output delta; `false`
/// (nothing done) when a buffer is not in standard layout.
///
/// For each layer from the top: the delta below is computed with the weights *before*
/// their update (as the notebook's `backward` computes every gradient first), then the
/// layer is updated with `w -= (lr / rows) * (h^T @ delta)`.
fn backward_fused(
    model: &mut Mlp<f32>,
    x: ArrayView2<'_, f32>,
    lr: f32,
    ws: &mut Workspace<f32>,
) -> bool {
    let rows = ws.rows;
    let depth = model.depth();
    let Some(x32) = standard(x) else {
        return false;
    };
    let scale = (f64::from(lr) / rows as f64) as f32;
    let activation = model.config.activation();
    let isa = ws.kernels.isa;
    let Some(fused) = ws.kernels.fused.as_mut() else {
        return false;
    };
    for l in (0..depth).rev() {
        let (below, here) = ws.deltas.split_at_mut(l);
        let Some(delta) = standard(here[0].slice(s![..rows, ..])) else {
            return false;
        };
        let input = if l == 0 {
            Some(x32)
        } else {
            standard(ws.acts[l - 1].slice(s![..rows, ..]))
        };
        let Some(input) = input else {
            return false;
        };
        if l > 0 {
            let (Some(w), Some(d)) = (
                standard(model.weights[l].view()),
                standard_mut(below[l - 1].slice_mut(s![..rows, ..])),
            ) else {
                return false;
            };
            fused::linear_backward_input(isa, delta, w, activation, input, d, &mut fused.scratch);
        }
        let (Some(w), Some(b)) = (
            standard_mut(model.weights[l].view_mut()),
            standard_1_mut(model.biases[l].view_mut()),
        ) else {
            return false;
        };
        if l == 0 {
            fused::sgd_update_sparse(isa, input, delta, scale, w, b, &mut fused.sparse);
        } else {
            fused::sgd_update(isa, input, delta, scale, w, b);
        }
    }
    true
}
