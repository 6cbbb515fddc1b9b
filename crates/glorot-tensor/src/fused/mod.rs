//! Fast kernels for the products of a training step: in `f32` with the element-wise work
//! done while the results are still in registers, in `f64` with a stated summation order
//! and the notebook's update fused into the weight-gradient product.
//!
//! | function | computes | replaces |
//! | --- | --- | --- |
//! | [`linear_forward`] (`f32`) | `out = f(x w + b)` | [`gemm`], [`Activation::forward_bias_inplace`] |
//! | [`linear_backward_input`] (`f32`) | `out = (d w^T) * f'(a)` | [`gemm`], [`Activation::backward_inplace`] |
//! | [`sgd_update`] (`f32`) | `w -= s x^T d`, `b -= s colsum(d)` | [`gemm`], [`column_sums`](crate::column_sums), the update |
//! | [`linear_forward_sparse`], [`sgd_update_sparse`] (`f32`) | the same from the nonzeros of `x` | the dense kernels |
//! | [`product_f64`], [`product_nt_f64`] | `a b`, `a b^T` | [`gemm`] |
//! | [`product_sparse_f64`] | `x w` from the nonzeros of `x` | [`gemm`] |
//! | [`sgd_update_f64`] | `w = w - lr * ((x^T d) / n)` | [`gemm`], the update |
//! | [`tanh_f64_slice`], [`activate_slice`] | `tanh`, `f` of every element | [`Activation::apply`] |
//!
//! Every function takes the instruction set to run with, an [`Isa`] obtained once by
//! detection (see [`crate::isa`]). With [`Isa::detect`] they run register-tiled vector
//! kernels with fused multiply-adds: AVX-512F (16 `f32` or 8 `f64` lanes) or AVX2 with FMA
//! (8 or 4) on x86-64, NEON (4 or 2) on aarch64, in `f32` with a vectorized `tanh`, `exp`
//! and sigmoid; **every vector instruction set gives the same bits** (the same operations
//! in the same order, whatever the vector width). With [`Isa::portable`] (every CPU) they
//! are the unfused functions of this crate or BLAS, with the same results up to
//! rounding. Results never depend on the thread count ([`set_threads`]). The sparse
//! update that reproduces a BLAS product bit for bit is in [`crate::replay`].
//!
//! # Arithmetic
//!
//! Every product here computes each element as **one fused multiply-add chain over `k` in
//! order, from `+0`** (BLAS also uses FMA chains, possibly split into blocks of `k`); the
//! sparse variants skip zero terms, which contribute exactly nothing to such a chain.
//! Beyond that order:
//!
//! - the `f32` [`sgd_update`] applies `w + (-s) * dot` as one fused multiply-add per
//!   element, where the notebook computes `w - lr * (dot / n)` with three roundings (the
//!   `f64` updates keep the notebook's three operations);
//! - the `f32` `tanh`, `exp` and sigmoid are polynomial approximations with an error of a
//!   few ulp instead of the C library's (tests bound it against `f64`); in `f64` the
//!   element-wise work stays outside these kernels, exact.
//!
//! To replay a NumPy program bit for bit (in `f64`), use [`gemm`] and the unfused
//! functions (`glorot-mlp`'s `Arithmetic::Blas`).
//!
//! # Layouts
//!
//! Every matrix must have contiguous rows (column stride 1), which includes standard
//! arrays and row ranges of them. Other layouts take the portable path.
//!
//! # Allocation
//!
//! None, on every instruction set, once the buffers ([`Scratch`], [`SparseInput`],
//! [`ScratchF64`], [`SparseRowsF64`]) exist: make them with the [`Isa`] the functions
//! will be called with (`tests/suite/no_alloc.rs` checks every one this machine has).
//! Only [`sgd_update_f64`] given operands the vector kernels cannot address, with a
//! [`ScratchF64`] made for them, allocates its gradient.

#[cfg(doc)]
use crate::isa::Isa;
#[cfg(doc)]
use crate::{Activation, gemm};

mod activate;
mod dense;
mod dense_f64;
mod sparse;
mod sparse_f64;
pub(crate) mod team;

pub use activate::{activate_slice, tanh_f64_slice};
pub(crate) use dense::update_bias;
pub use dense::{Scratch, linear_backward_input, linear_forward, sgd_update};
pub(crate) use dense_f64::sgd_update_f64_blas;
pub use dense_f64::{ScratchF64, product_f64, product_nt_f64, sgd_update_f64};
pub use sparse::{SparseInput, linear_forward_sparse, sgd_update_sparse};
pub(crate) use sparse_f64::product_sparse_f64_chains;
pub use sparse_f64::{SparseRowsF64, product_sparse_f64};

/// Rows of an input processed per pass by the sparse kernels.
pub(crate) const PASS_ROWS: usize = 128;
/// Above this fraction of nonzeros a pass of the sparse kernels is done dense.
pub(crate) const PASS_MAX_DENSITY: f64 = 0.4;

/// Sets the number of threads the fused kernels use, process-wide (at least 1; default
/// 1), as `openblas_set_num_threads` does for BLAS. With more than one, each kernel splits
/// its tiles among a team of threads that spin briefly between calls; results do not
/// depend on the thread count (every element is computed the same way by whichever
/// thread takes its tile). A kernel called while another thread is using the team runs
/// on its calling thread alone, so parallel trainers never oversubscribe through it.
pub fn set_threads(n: usize) {
    team::set_threads(n);
}

/// The thread count set by [`set_threads`].
pub fn threads() -> usize {
    team::threads()
}

pub use team::TeamStats;

/// What the thread team of [`set_threads`] did since the process started: parallel
/// regions, those run on the calling thread alone, and stalls (the caller waiting for a
/// helper that another process had taken the core from; after one, the team runs alone
/// for a while, so a busy machine costs at most about the speed of one thread). For
/// benchmarks; results never depend on any of it.
pub fn team_stats() -> TeamStats {
    team::stats()
}

/// Calls `f(i, chunk)` for the consecutive chunks of `chunk` elements of `data` (the last
/// may be shorter) on the team of [`set_threads`], each chunk exactly once, and returns
/// when all are done. For element-wise work in any precision: the result is the same for
/// any thread count when `f` treats each element on its own.
///
/// ```
/// let mut v = vec![1.0f64; 1000];
/// glorot_tensor::fused::for_each_chunk(&mut v, 256, &|_, c| c.iter_mut().for_each(|x| *x *= 2.0));
/// assert!(v.iter().all(|&x| x == 2.0));
/// ```
pub fn for_each_chunk<T: Send>(data: &mut [T], chunk: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
    team::chunks_mut(data, chunk, f);
}

#[cfg(test)]
mod team_tests {
    use super::*;
    use crate::Activation;
    use crate::isa::Isa;
    use ndarray::{Array1, Array2};

    /// Splitting tiles among threads never changes a result: every element is computed
    /// the same way by whichever thread takes its tile, on every instruction set.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = Array2::from_shape_fn((40, 300), |(i, j)| {
            if (i + j) % 3 == 0 {
                ((i * 7 + j) % 13) as f32 / 13.0
            } else {
                0.0
            }
        });
        let w = Array2::from_shape_fn((300, 70), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 / 23.0 - 0.5
        });
        let b = Array1::from_shape_fn(70, |j| j as f32 / 70.0);
        let d = Array2::from_shape_fn((40, 70), |(i, j)| ((i * 3 + j) % 11) as f32 / 11.0 - 0.5);
        for isa in Isa::supported() {
            let run = |threads: usize| {
                set_threads(threads);
                let mut out = Array2::zeros((40, 70));
                let mut sparse = SparseInput::new(isa, 300);
                linear_forward_sparse(
                    isa,
                    x.view(),
                    w.view(),
                    b.view(),
                    Some(Activation::Tanh),
                    out.view_mut(),
                    &mut sparse,
                );
                let mut back = Array2::zeros((40, 300));
                let mut scratch = Scratch::new(isa, 300);
                linear_backward_input(
                    isa,
                    d.view(),
                    w.view(),
                    Activation::Tanh,
                    x.view(),
                    back.view_mut(),
                    &mut scratch,
                );
                let (mut w2, mut b2) = (w.clone(), b.clone());
                sgd_update_sparse(
                    isa,
                    x.view(),
                    d.view(),
                    0.1,
                    w2.view_mut(),
                    b2.view_mut(),
                    &mut sparse,
                );
                let (mut w3, mut b3) = (w.clone(), b.clone());
                sgd_update(
                    isa,
                    out.view(),
                    d.view().slice(ndarray::s![.., ..]).to_owned().view(),
                    0.1,
                    w3.slice_mut(ndarray::s![..70, ..]),
                    b3.view_mut(),
                );
                (out, back, w2, b2, w3, b3)
            };
            let one = run(1);
            let two = run(2);
            let three = run(3);
            set_threads(1);
            assert_eq!(one, two, "{}", isa.name());
            assert_eq!(one, three, "{}", isa.name());
        }
    }
}
