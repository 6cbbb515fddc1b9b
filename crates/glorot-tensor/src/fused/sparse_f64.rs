//! The sparse-input `f64` product: `x w` from the nonzeros of `x`, each element the
//! stated chain of fused multiply-adds, whatever the instruction set.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{PASS_MAX_DENSITY, PASS_ROWS};
#[cfg(doc)]
use crate::gemm;
use crate::isa::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::RowScan;

/// The nonzeros of an `f64` batch by rows, for [`product_sparse_f64`]: rebuilt from the
/// dense inputs on every call (a vectorized scan), in buffers made once for up to
/// [`SparseRowsF64::ROWS`] rows at a time.
#[derive(Clone, Debug)]
pub struct SparseRowsF64 {
    pub(crate) cols: usize,
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) rows: RowScan<f64>,
}

impl SparseRowsF64 {
    /// Rows processed per pass (larger inputs are done in several passes).
    pub const ROWS: usize = PASS_ROWS;

    /// Above this fraction of nonzeros a pass uses BLAS instead.
    pub const MAX_DENSITY: f64 = PASS_MAX_DENSITY;

    /// Buffers for inputs with `cols` columns, for the kernels of `isa` (empty for an
    /// instruction set without kernels of its own: [`product_sparse_f64`] then computes
    /// its chains one element at a time).
    pub fn new(isa: Isa, cols: usize) -> Self {
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = isa;
        Self {
            cols,
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            rows: RowScan::new(isa, Self::ROWS, cols),
        }
    }
}

/// `out = x w` for an `f64` input `x` with many zeros (such as MNIST images), each element
/// computed as **one fused multiply-add chain over the nonzeros of its row of `x`, in
/// column order, from `+0`**: `fma(x[i, pk], w[pk, j], ... fma(x[i, p1], w[p1, j], +0))`.
/// A zero term would contribute exactly nothing to such a chain, so this is also the dense
/// chain over all columns in order: the result depends on the data alone, not on the
/// thread count, the CPU or the BLAS. With vector kernels each pass of up to
/// [`SparseRowsF64::ROWS`] rows is scanned into its nonzeros and summed with vector fused
/// multiply-adds (5x fewer operations than the dense product on MNIST), except passes
/// with more than [`SparseRowsF64::MAX_DENSITY`] nonzeros, which go to BLAS ([`gemm`]:
/// its own summation order). With [`Isa::portable`] the chains are computed one element
/// at a time.
///
/// Shapes: `x: (rows, fan_in)`, `w: (fan_in, fan_out)`, `out: (rows, fan_out)`.
///
/// # Panics
/// If the shapes disagree or `sparse` was made for another width than `x`'s.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::fused::{self, SparseRowsF64};
/// use glorot_tensor::isa::Isa;
/// use ndarray::{Array2, array};
///
/// let isa = Isa::detect();
/// let x = array![[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]];
/// let w = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let mut out = Array2::zeros((2, 2));
/// fused::product_sparse_f64(isa, x.view(), w.view(), out.view_mut(), &mut SparseRowsF64::new(isa, 3));
/// assert_eq!(out, array![[6.0, 8.0], [1.0, 2.0]]);
/// ```
#[track_caller]
pub fn product_sparse_f64(
    isa: Isa,
    x: ArrayView2<'_, f64>,
    w: ArrayView2<'_, f64>,
    out: ArrayViewMut2<'_, f64>,
    sparse: &mut SparseRowsF64,
) {
    let (rows, fan_in) = x.dim();
    let fan_out = w.ncols();
    assert!(
        w.nrows() == fan_in && out.dim() == (rows, fan_out) && sparse.cols == fan_in,
        "product_sparse_f64: x is {:?}, w {:?}, out {:?}, sparse rows of {} columns",
        x.dim(),
        w.dim(),
        out.dim(),
        sparse.cols
    );
    isa.kernels().product_sparse_f64(x, w, out, sparse);
}

/// The portable [`product_sparse_f64`]: the chains one element at a time.
pub(crate) fn product_sparse_f64_chains(
    x: ArrayView2<'_, f64>,
    w: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
) {
    for (xr, mut or) in x.rows().into_iter().zip(out.rows_mut()) {
        for (j, o) in or.iter_mut().enumerate() {
            let mut acc = 0.0f64;
            for (p, &v) in xr.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    acc = v.mul_add(w[[p, j]], acc);
                }
            }
            *o = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::set_threads;
    use ndarray::Array2;

    /// The chain the documentation of `product_sparse_f64` states, one element at a time.
    fn chains(x: &Array2<f64>, w: &Array2<f64>) -> Array2<f64> {
        Array2::from_shape_fn((x.nrows(), w.ncols()), |(i, j)| {
            let mut acc = 0.0f64;
            for p in 0..x.ncols() {
                if x[[i, p]] != 0.0 {
                    acc = x[[i, p]].mul_add(w[[p, j]], acc);
                }
            }
            acc
        })
    }

    /// `product_sparse_f64(x, w)` on `threads` threads, into an output filled with NaN.
    fn product_with(isa: Isa, x: &Array2<f64>, w: &Array2<f64>, threads: usize) -> Array2<f64> {
        set_threads(threads);
        let mut out = Array2::from_elem((x.nrows(), w.ncols()), f64::NAN);
        let mut sparse = SparseRowsF64::new(isa, x.ncols());
        product_sparse_f64(isa, x.view(), w.view(), out.view_mut(), &mut sparse);
        out
    }

    /// Every element is the stated chain, bit for bit, for any thread count, across passes
    /// of `SparseRowsF64::ROWS` rows and at widths that are not multiples of the 64-column
    /// blocks; a dense pass gives BLAS's product (equal up to rounding).
    #[test]
    fn sparse_f64_product_is_the_stated_chain_for_any_thread_count() {
        let cases = [(32, 5, 150), (300, 4, 70), (7, 5, 9), (40, 1, 33)];
        for (isa, (rows, density, cols)) in Isa::supported().flat_map(|i| cases.map(|c| (i, c))) {
            let x = Array2::from_shape_fn((rows, 90), |(i, j)| {
                if (i * 5 + j * 3) % density == 0 {
                    ((i + 2 * j) % 17) as f64 / 17.0 + 1e-3
                } else {
                    0.0
                }
            });
            let w = Array2::from_shape_fn((90, cols), |(i, j)| {
                ((i * 13 + j * 7) % 29) as f64 / 29.0 - 0.5 + (i as f64) * 1e-9
            });
            let expected = chains(&x, &w);
            for threads in [1, 2, 3] {
                let out = product_with(isa, &x, &w, threads);
                if density == 1 && isa.accelerated() {
                    // All nonzero: the pass goes to BLAS.
                    for (a, b) in out.iter().zip(&expected) {
                        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
                    }
                } else {
                    let same = out
                        .iter()
                        .zip(&expected)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{} {rows} rows, {cols} columns, {threads} threads",
                        isa.name()
                    );
                }
            }
            set_threads(1);
        }
    }

    /// Rows whose numbers of nonzeros differ widely (0 to all 90, in no order), with
    /// zeros of both signs, subnormals, infinities and NaN among the values: every element
    /// is still the stated chain, bit for bit (the vector kernels sum rows of similar
    /// length together, then each row's remaining nonzeros alone).
    #[test]
    fn sparse_f64_product_is_the_stated_chain_for_rows_of_any_length() {
        let special = [
            f64::MIN_POSITIVE / 8.0,
            -0.0,
            f64::INFINITY,
            -3.5e300,
            1e-300,
        ];
        for isa in Isa::supported() {
            for rows in [1, 5, 33, 130] {
                let x = Array2::from_shape_fn((rows, 90), |(i, j)| {
                    let len = (i * 37 + 11) % 91;
                    if j >= len || (i + j) % 3 == 0 {
                        return if j % 2 == 0 { 0.0 } else { -0.0 };
                    }
                    match (i * 7 + j) % 41 {
                        0..5 => special[(i + j) % special.len()],
                        _ => ((i + 2 * j) % 17) as f64 / 17.0 - 0.4,
                    }
                });
                for cols in [3, 8, 13, 64, 70] {
                    let mut w = Array2::from_shape_fn((90, cols), |(i, j)| {
                        ((i * 13 + j * 7) % 29) as f64 / 29.0 - 0.5 + (i as f64) * 1e-9
                    });
                    w[[40, cols - 1]] = f64::NAN;
                    w[[41, 0]] = -0.0;
                    let expected = chains(&x, &w);
                    for threads in [1, 2] {
                        let out = product_with(isa, &x, &w, threads);
                        for ((i, j), a) in out.indexed_iter() {
                            let b = expected[[i, j]];
                            assert!(
                                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                                "{} {rows}x{cols}, {threads} threads, [{i}, {j}]: {a} vs {b}",
                                isa.name()
                            );
                        }
                    }
                    set_threads(1);
                }
            }
        }
    }
}
