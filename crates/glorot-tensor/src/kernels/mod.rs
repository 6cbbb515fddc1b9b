//! The kernels behind [`crate::fused`] and [`crate::replay`], one implementation of
//! [`Kernels`] per instruction set, chosen by [`Isa::kernels`](crate::isa::Isa).
//!
//! The trait's default methods are the portable code (the unfused functions of this
//! crate, BLAS, scalar loops): an instruction set overrides the kernels it has and
//! inherits the rest. Every method is called with shapes already checked by the public
//! function; an override falls back to the default (or to another of its own methods)
//! for the layouts it cannot address.
//!
//! `avx512` holds the AVX-512 kernels; `vector` the AVX2+FMA and NEON ones, written once
//! over a crate-private `Simd` trait and giving the AVX-512 kernels' bits.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::fused::{Scratch, ScratchF64, SparseInput, SparseRowsF64};
use crate::replay::SparseColumns;
use crate::{Activation, gemm};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod simd;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) mod vector;

// The buffers of the vector kernels, held by the public buffer types (in fields that
// exist only on targets with vector kernels). A target that gains vector kernels joins
// these `cfg`s.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use simd::{ColumnForm, RowScan, Transposes};

/// One method per kernel; the defaults are the portable code. See the module docs.
pub(crate) trait Kernels: Sync {
    /// The instruction set's name in manifests and logs.
    fn name(&self) -> &'static str;

    /// Whether any method is overridden (buffers for the overrides are made only then).
    fn accelerated(&self) -> bool {
        false
    }

    /// [`crate::fused::linear_forward`]: `out = f(x w + bias)`.
    fn linear_forward(
        &self,
        x: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        act: Option<Activation>,
        mut out: ArrayViewMut2<'_, f32>,
    ) {
        gemm(1.0, x, w, 0.0, out.view_mut());
        match act {
            Some(f) => f.forward_bias_inplace(out, bias),
            None => crate::add_row_bias(out, bias),
        }
    }

    /// [`crate::fused::linear_backward_input`]: `out = (delta w^T) * f'(a)`.
    fn linear_backward_input(
        &self,
        delta: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        act: Activation,
        a: ArrayView2<'_, f32>,
        mut out: ArrayViewMut2<'_, f32>,
        _scratch: &mut Scratch,
    ) {
        gemm(1.0, delta, w.t(), 0.0, out.view_mut());
        act.backward_inplace(a, out);
    }

    /// The weights' part of [`crate::fused::sgd_update`]: `w -= scale * (input^T delta)`.
    fn weights_update(
        &self,
        input: ArrayView2<'_, f32>,
        delta: ArrayView2<'_, f32>,
        scale: f32,
        w: ArrayViewMut2<'_, f32>,
    ) {
        gemm(-scale, input.t(), delta, 1.0, w);
    }

    /// [`crate::fused::linear_forward_sparse`].
    fn linear_forward_sparse(
        &self,
        x: ArrayView2<'_, f32>,
        w: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        act: Option<Activation>,
        out: ArrayViewMut2<'_, f32>,
        _sparse: &mut SparseInput,
    ) {
        self.linear_forward(x, w, bias, act, out);
    }

    /// [`crate::fused::sgd_update_sparse`].
    fn sgd_update_sparse(
        &self,
        input: ArrayView2<'_, f32>,
        delta: ArrayView2<'_, f32>,
        scale: f32,
        w: ArrayViewMut2<'_, f32>,
        bias: ArrayViewMut1<'_, f32>,
        _sparse: &mut SparseInput,
    ) {
        crate::fused::update_bias(delta, scale, bias);
        self.weights_update(input, delta, scale, w);
    }

    /// [`crate::fused::product_f64`]: `out = a b`.
    fn product_f64(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) {
        gemm(1.0, a, b, 0.0, out);
    }

    /// [`crate::fused::sgd_update_f64`]: the notebook's update with `g = input^T delta`.
    fn sgd_update_f64(
        &self,
        input: ArrayView2<'_, f64>,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        w: ArrayViewMut2<'_, f64>,
        scratch: &mut ScratchF64,
    ) {
        crate::fused::sgd_update_f64_blas(input, delta, lr, w, scratch);
    }

    /// [`crate::fused::product_nt_f64`]: `out = a b^T`.
    fn product_nt_f64(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
        _scratch: &mut ScratchF64,
    ) {
        gemm(1.0, a, b.t(), 0.0, out);
    }

    /// [`crate::fused::product_sparse_f64`]: `out = x w`, the chains over the nonzeros.
    fn product_sparse_f64(
        &self,
        x: ArrayView2<'_, f64>,
        w: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
        _sparse: &mut SparseRowsF64,
    ) {
        crate::fused::product_sparse_f64_chains(x, w, out);
    }

    /// The nonzeros of `x` by columns into `columns` (see [`SparseColumns`]).
    fn build_columns(&self, columns: &mut SparseColumns, x: ArrayView2<'_, f64>) {
        columns.build_portable(x);
    }

    /// [`crate::replay::sgd_update_sparse_exact`] after [`Kernels::build_columns`]:
    /// the notebook's update from the columns of a batch of `rows` rows.
    fn sgd_update_columns(
        &self,
        columns: &SparseColumns,
        rows: usize,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        w: ArrayViewMut2<'_, f64>,
    ) {
        columns.sgd_update_portable(rows, delta, lr, w);
    }

    /// [`crate::fused::tanh_f64_slice`]: the platform's `tanh` of every element.
    fn tanh_f64_slice(&self, xs: &mut [f64]) {
        for x in xs {
            *x = x.tanh();
        }
    }

    /// [`crate::fused::activate_slice`]: `xs[i] = f(xs[i])`.
    fn activate_slice(&self, act: Activation, xs: &mut [f32]) {
        for x in xs {
            *x = act.apply(*x);
        }
    }
}

/// [`Kernels::product_nt_f64`] of an instruction set with a tiled `f64` product: `out =
/// a b^T` as `(b a^T)^T` through [`Kernels::product_f64`], `a` transposed into
/// `scratch` in blocks of [`ScratchF64::ROWS`] rows (the portable code when `scratch`
/// holds no transposes).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn product_nt_by_transposes<K: Kernels + ?Sized>(
    kernels: &K,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
    scratch: &mut ScratchF64,
) {
    if scratch.transposes.input.nrows() == 0 {
        return Portable.product_nt_f64(a, b, out, scratch);
    }
    let ((m, k), n) = (a.dim(), b.nrows());
    let mut start = 0;
    while start < m {
        let len = ScratchF64::ROWS.min(m - start);
        let part = ndarray::s![start..start + len, ..];
        let mut at = scratch.transposes.input.slice_mut(ndarray::s![..k, ..len]);
        at.assign(&a.slice(part).t());
        let mut ct = scratch.transposes.output.slice_mut(ndarray::s![..n, ..len]);
        kernels.product_f64(b, at.view(), ct.view_mut());
        out.slice_mut(part).assign(&ct.t());
        start += len;
    }
}

/// The portable code: every method is the trait's default.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

impl Kernels for Portable {
    fn name(&self) -> &'static str {
        "scalar"
    }
}
