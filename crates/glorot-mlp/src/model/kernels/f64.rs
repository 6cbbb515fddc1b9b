//! `f64`: the notebook replay's precision. Every path keeps the notebook's operations per
//! element; what changes is how each product's sums are formed.
//!
//! - With [`Arithmetic::Fast`] on CPUs with the fused kernels ([`Isa::accelerated`]): the
//!   forward products through [`fused::product_sparse_f64`] (first layer, from its
//!   input's nonzeros) and [`fused::product_f64`]; a training step through
//!   [`backward_fast`] ([`fused::product_nt_f64`], [`fused::sgd_update_f64`] and, for
//!   the first layer, [`replay::sgd_update_sparse_exact`]); the gradients of
//!   [`Mlp::gradients`] through the same sums ([`replay::weight_gradient_sparse_f64`],
//!   [`fused::product_f64`]).
//! - With [`Arithmetic::Blas`] every product is BLAS's ([`gemm`]), except that a training
//!   step may update the first layer from its input's nonzeros
//!   ([`replay::sgd_update_sparse_exact`]) once, for its batch size, BLAS's gradient was
//!   seen to equal those sums bit for bit ([`replay::matches_sparse_chain`]).

use glorot_tensor::isa::Isa;
use glorot_tensor::{column_sums, fused, gemm, replay};
use ndarray::{ArrayView2, ArrayViewMut2, s};

use super::{Kernels, standard, standard_mut, widest, workspace_isa};
use crate::config::{Arithmetic, ValidModelConfig};
use crate::model::step::sgd;
use crate::model::{Mlp, Workspace};

/// Largest batch for which an `f64` workspace keeps the first layer's input by columns.
const MAX_SPARSE_ROWS: usize = 1024;
/// Batch sizes remembered in [`SparseUpdate64::chain_checked`].
const CHAIN_CHECKS: usize = 8;

/// The buffers of the `f64` kernels of a [`Workspace`].
#[derive(Clone, Debug)]
pub struct Buffers64 {
    /// The instruction set every kernel call of this workspace uses.
    isa: Isa,
    /// For training on CPUs with the fused kernels, in either arithmetic, with batches of
    /// at most [`MAX_SPARSE_ROWS`] rows: the exact sparse update of the first layer.
    sparse_update: Option<SparseUpdate64>,
    /// `Some` exactly with [`Arithmetic::Fast`] on CPUs with the fused kernels.
    fast: Option<Fast64>,
}

/// The exact sparse update of the first layer ([`replay::sgd_update_sparse_exact`]).
#[derive(Clone, Debug)]
struct SparseUpdate64 {
    /// The first layer's input by columns.
    columns: replay::SparseColumns,
    /// Batch sizes for which the BLAS gradient of the first layer was compared with the
    /// sparse chains ([`replay::matches_sparse_chain`]), and whether they agreed bit for
    /// bit. Fixed capacity: pushing never allocates.
    chain_checked: Vec<(usize, bool)>,
}

/// The buffers of the `f64` kernels of [`Arithmetic::Fast`].
#[derive(Clone, Debug)]
struct Fast64 {
    /// The first layer's input by rows, for [`fused::product_sparse_f64`].
    rows: fused::SparseRowsF64,
    /// The transposes of [`fused::product_nt_f64`]; `Some` in a training workspace (the
    /// backward pass's products, [`Kernels::weight_gradient`] and
    /// [`Kernels::delta_product`], use the kernels exactly when it is).
    products: Option<fused::ScratchF64>,
}

impl Buffers64 {
    /// The transposes of the backward products, when the fast kernels compute them.
    fn products(&mut self) -> Option<&mut fused::ScratchF64> {
        self.fast.as_mut().and_then(|f| f.products.as_mut())
    }
}

impl Kernels for f64 {
    type Buffers = Buffers64;

    fn buffers(
        config: &ValidModelConfig,
        capacity: usize,
        trainable: bool,
        arithmetic: Arithmetic,
    ) -> Buffers64 {
        let isa = workspace_isa();
        let available = isa.accelerated();
        let fast = arithmetic == Arithmetic::Fast && available;
        let columns = (trainable && available && capacity <= MAX_SPARSE_ROWS)
            .then(|| replay::SparseColumns::new(isa, capacity, config.inputs()));
        let rows = fast.then(|| fused::SparseRowsF64::new(isa, config.inputs()));
        let products = (fast && trainable).then(|| fused::ScratchF64::new(isa, widest(config)));
        Buffers64 {
            isa,
            sparse_update: columns.map(|columns| SparseUpdate64 {
                columns,
                chain_checked: Vec::with_capacity(CHAIN_CHECKS),
            }),
            fast: rows.map(|rows| Fast64 { rows, products }),
        }
    }

    /// Never: `f64` has no fused layer kernels (the forward pass is generic).
    fn forward_fused(_: &Mlp<f64>, _: ArrayView2<'_, f64>, _: &mut Workspace<f64>) -> bool {
        false
    }

    /// With [`Arithmetic::Fast`] and every operand in standard layout:
    /// [`fused::product_sparse_f64`] for the first layer, [`fused::product_f64`] for the
    /// others. Else BLAS.
    fn forward_product(
        buffers: &mut Buffers64,
        layer: usize,
        input: ArrayView2<'_, f64>,
        w: ArrayView2<'_, f64>,
        mut z: ArrayViewMut2<'_, f64>,
    ) {
        let isa = buffers.isa;
        let done = match (buffers.fast.as_mut(), standard(input), standard(w)) {
            (Some(fast), Some(x), Some(w)) => standard_mut(z.view_mut())
                .map(|z| match layer {
                    0 => fused::product_sparse_f64(isa, x, w, z, &mut fast.rows),
                    _ => fused::product_f64(isa, x, w, z),
                })
                .is_some(),
            _ => false,
        };
        if !done {
            gemm(1.0, input, w, 0.0, z);
        }
    }

    /// With [`Arithmetic::Fast`] in a training workspace: the output delta, then
    /// [`backward_fast`] (`false` when `x` is not in standard layout).
    fn step_fused(
        model: &mut Mlp<f64>,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        lr: f64,
        ws: &mut Workspace<f64>,
    ) -> bool {
        if ws.kernels.products().is_none() {
            return false;
        }
        model.output_delta(y, ws);
        backward_fast(model, x, lr, ws)
    }

    /// When the workspace has the sparse update, `x` is in standard layout, and either
    /// the arithmetic is [`Arithmetic::Fast`] or the BLAS gradient of `x`'s batch size was
    /// seen to equal the sparse chains ([`Kernels::check_sparse_chain`]).
    fn sparse_first_update(
        buffers: &Buffers64,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, f64>,
    ) -> bool {
        let fast = arithmetic == Arithmetic::Fast;
        let rows = x.nrows();
        buffers.sparse_update.as_ref().is_some_and(|sparse| {
            standard(x).is_some() && (fast || sparse.chain_checked.contains(&(rows, true)))
        })
    }

    /// With [`Arithmetic::Blas`] and the sparse update, for the first
    /// [`CHAIN_CHECKS`] batch sizes seen: [`replay::matches_sparse_chain`] (`false` when an
    /// operand is not in standard layout).
    fn check_sparse_chain(
        buffers: &mut Buffers64,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        g: ArrayView2<'_, f64>,
    ) {
        let rows = x.nrows();
        let fast = arithmetic == Arithmetic::Fast;
        let isa = buffers.isa;
        let Some(sparse) = buffers.sparse_update.as_mut() else {
            return;
        };
        let unchecked = !sparse.chain_checked.iter().any(|&(r, _)| r == rows);
        if !fast && unchecked && sparse.chain_checked.len() < CHAIN_CHECKS {
            let ok = match (standard(x), standard(delta), standard(g)) {
                (Some(x), Some(d), Some(g)) => {
                    replay::matches_sparse_chain(isa, x, d, g, &mut sparse.columns)
                }
                _ => false,
            };
            sparse.chain_checked.push((rows, ok));
        }
    }

    /// [`replay::sgd_update_sparse_exact`] when the workspace has the sparse update and
    /// every operand is in standard layout.
    fn sgd_first_sparse(
        buffers: &mut Buffers64,
        x: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        w: ArrayViewMut2<'_, f64>,
    ) -> bool {
        let isa = buffers.isa;
        match (
            standard(x),
            standard(delta),
            standard_mut(w),
            buffers.sparse_update.as_mut(),
        ) {
            (Some(x), Some(d), Some(w), Some(sparse)) => {
                replay::sgd_update_sparse_exact(isa, x, d, lr, w, &mut sparse.columns);
                true
            }
            _ => false,
        }
    }

    /// [`replay::weight_gradient_sparse_f64`] with [`Arithmetic::Fast`], when the workspace
    /// has the sparse update and every operand is in standard layout.
    fn first_weight_gradient_sparse(
        buffers: &mut Buffers64,
        arithmetic: Arithmetic,
        x: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        g: ArrayViewMut2<'_, f64>,
    ) -> bool {
        let isa = buffers.isa;
        arithmetic == Arithmetic::Fast
            && match (standard(x), standard(delta), buffers.sparse_update.as_mut()) {
                (Some(x), Some(d), Some(sparse)) => standard_mut(g)
                    .map(|g| replay::weight_gradient_sparse_f64(isa, x, d, g, &mut sparse.columns))
                    .is_some(),
                _ => false,
            }
    }

    /// [`fused::product_f64`] with [`Arithmetic::Fast`] in a training workspace and every
    /// operand in standard layout; else BLAS.
    fn weight_gradient(
        buffers: &mut Buffers64,
        input: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        mut g: ArrayViewMut2<'_, f64>,
    ) {
        let isa = buffers.isa;
        let done = buffers.products().is_some()
            && match (standard(input), standard(delta)) {
                (Some(i), Some(d)) => standard_mut(g.view_mut())
                    .map(|g| fused::product_f64(isa, i.t(), d, g))
                    .is_some(),
                _ => false,
            };
        if !done {
            gemm(1.0, input.t(), delta, 0.0, g);
        }
    }

    /// [`fused::product_nt_f64`] with [`Arithmetic::Fast`] in a training workspace and
    /// every operand in standard layout; else BLAS.
    fn delta_product(
        buffers: &mut Buffers64,
        delta: ArrayView2<'_, f64>,
        w: ArrayView2<'_, f64>,
        mut d: ArrayViewMut2<'_, f64>,
    ) {
        let isa = buffers.isa;
        let done = match (buffers.products(), standard(delta), standard(w)) {
            (Some(scratch), Some(dl), Some(w)) => standard_mut(d.view_mut())
                .map(|d| fused::product_nt_f64(isa, dl, w, d, scratch))
                .is_some(),
            _ => false,
        };
        if !done {
            gemm(1.0, delta, w.t(), 0.0, d);
        }
    }
}

/// Backpropagation and update in `f64` with [`Arithmetic::Fast`], after
/// [`Mlp::forward`] and the output delta: for each layer from the top, the delta below
/// through [`fused::product_nt_f64`] and the activation's derivative (with the weights
/// before their update, as the notebook's `backward`), then the bias update as in
/// [`Mlp::sgd_step`] and the weights' through [`fused::sgd_update_f64`] (the first
/// layer's from its input's nonzeros, [`replay::sgd_update_sparse_exact`]). The same
/// bits as [`Mlp::gradients`] then [`Mlp::sgd_step`] in this arithmetic. `false` (nothing
/// done) when a buffer is not in standard layout.
fn backward_fast(
    model: &mut Mlp<f64>,
    x: ArrayView2<'_, f64>,
    lr: f64,
    ws: &mut Workspace<f64>,
) -> bool {
    let (rows, isa) = (ws.rows, ws.kernels.isa);
    let depth = model.depth();
    let activation = model.config.activation();
    let Some(x64) = standard(x) else {
        return false;
    };
    let (n, inv_n) = (rows as f64, 1.0 / rows as f64);
    let exact_inverse = rows.is_power_of_two();
    for l in (0..depth).rev() {
        let (below, here) = ws.deltas.split_at_mut(l);
        let Some(delta) = standard(here[0].slice(s![..rows, ..])) else {
            return false;
        };
        let input = if l == 0 {
            Some(x64)
        } else {
            standard(ws.acts[l - 1].slice(s![..rows, ..]))
        };
        // Disjoint borrows of the buffers: the backward products' transposes and the
        // first layer's sparse update.
        let Buffers64 {
            fast,
            sparse_update,
            ..
        } = &mut ws.kernels;
        let products = fast.as_mut().and_then(|f| f.products.as_mut());
        let (Some(input), Some(scratch)) = (input, products) else {
            return false;
        };
        if l > 0 {
            let (Some(w), Some(mut d)) = (
                standard(model.weights[l].view()),
                standard_mut(below[l - 1].slice_mut(s![..rows, ..])),
            ) else {
                return false;
            };
            fused::product_nt_f64(isa, delta, w, d.view_mut(), scratch);
            activation.backward_inplace(input, d);
        }
        column_sums(here[0].slice(s![..rows, ..]), ws.grads.biases[l].view_mut());
        let (Some(p), Some(g)) = (
            model.biases[l].as_slice_mut(),
            ws.grads.biases[l].as_slice(),
        ) else {
            return false;
        };
        sgd(p, g, lr, n, inv_n, exact_inverse);
        let Some(w) = standard_mut(model.weights[l].view_mut()) else {
            return false;
        };
        match (l, sparse_update.as_mut()) {
            (0, Some(sparse)) => {
                replay::sgd_update_sparse_exact(isa, input, delta, lr, w, &mut sparse.columns);
            }
            _ => fused::sgd_update_f64(isa, input, delta, lr, w, scratch),
        }
    }
    true
}
