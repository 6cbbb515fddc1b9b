//! The sparse-input `f32` kernels: a layer's forward pass and SGD update from the
//! nonzeros of its input (MNIST images are about 80 % zeros).

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::dense::{check_forward_shapes, check_update_shapes};
use super::{PASS_MAX_DENSITY, PASS_ROWS};
#[cfg(doc)]
use super::{linear_forward, sgd_update};
use crate::Activation;
use crate::isa::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::{ColumnForm, RowScan};

/// The nonzeros of a batch of inputs (such as MNIST images, about 80 % zeros), by rows
/// and by columns, for [`linear_forward_sparse`] and [`sgd_update_sparse`]. Rebuilt from
/// the dense inputs on every call (a vectorized scan), in buffers made once for up to
/// [`SparseInput::ROWS`] rows at a time.
#[derive(Clone, Debug)]
pub struct SparseInput {
    pub(crate) cols: usize,
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) rows: RowScan<f32>,
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) columns: ColumnForm<f32>,
}

impl SparseInput {
    /// Rows processed per pass (larger inputs are done in several passes).
    pub const ROWS: usize = PASS_ROWS;

    /// Above this fraction of nonzeros a pass uses the dense kernel instead.
    pub const MAX_DENSITY: f64 = PASS_MAX_DENSITY;

    /// Buffers for inputs with `cols` columns, for the kernels of `isa` (empty for an
    /// instruction set without kernels of its own).
    pub fn new(isa: Isa, cols: usize) -> Self {
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = isa;
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        let rows = RowScan::new(isa, Self::ROWS, cols);
        Self {
            cols,
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            columns: ColumnForm::for_rows(&rows),
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            rows,
        }
    }
}

/// [`linear_forward`] for a sparse `x`: each pass of up to [`SparseInput::ROWS`] rows
/// finds the nonzeros of `x` and sums only their rows of `w`, or uses the dense kernel
/// when more than [`SparseInput::MAX_DENSITY`] of the pass is nonzero. Same results up to
/// the order of the sums (zeros contribute exactly nothing). With [`Isa::portable`],
/// [`linear_forward`].
///
/// # Panics
/// As [`linear_forward`], and if `sparse` was made for another width than `x`'s.
#[track_caller]
pub fn linear_forward_sparse(
    isa: Isa,
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    act: Option<Activation>,
    out: ArrayViewMut2<'_, f32>,
    sparse: &mut SparseInput,
) {
    assert_eq!(
        sparse.cols,
        x.ncols(),
        "linear_forward_sparse: SparseInput made for another width"
    );
    check_forward_shapes(&x, &w, &bias, &out);
    isa.kernels()
        .linear_forward_sparse(x, w, bias, act, out, sparse);
}

/// [`sgd_update`] for a sparse `input`: each pass of up to [`SparseInput::ROWS`] rows
/// updates only the rows of `w` whose input column has a nonzero in the pass, summing
/// only the nonzeros (or uses the dense kernel when the pass is dense). Batches of more
/// than [`SparseInput::ROWS`] rows update `w` once per pass. With [`Isa::portable`],
/// [`sgd_update`].
///
/// # Panics
/// As [`sgd_update`], and if `sparse` was made for another width than `input`'s.
#[track_caller]
pub fn sgd_update_sparse(
    isa: Isa,
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    scale: f32,
    w: ArrayViewMut2<'_, f32>,
    bias: ArrayViewMut1<'_, f32>,
    sparse: &mut SparseInput,
) {
    assert_eq!(
        sparse.cols,
        input.ncols(),
        "sgd_update_sparse: SparseInput made for another width"
    );
    check_update_shapes(&input, &delta, &w, &bias);
    isa.kernels()
        .sgd_update_sparse(input, delta, scale, w, bias, sparse);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::{linear_forward, sgd_update};
    use ndarray::{Array1, Array2};

    /// Skipping zeros leaves each element's chain of fused multiply-adds unchanged
    /// (`fma(0, w, acc) = acc`), so the sparse kernels equal the dense ones bit for bit,
    /// also across passes of `SparseInput::ROWS` rows and for dense passes.
    #[test]
    fn sparse_kernels_equal_the_dense_ones_bit_for_bit() {
        for (isa, (rows, density)) in
            Isa::supported().flat_map(|i| [(32, 5), (300, 3), (7, 1)].map(|c| (i, c)))
        {
            let x = Array2::from_shape_fn((rows, 90), |(i, j)| {
                if (i * 5 + j * 3) % density == 0 {
                    ((i + 2 * j) % 17) as f32 / 17.0
                } else {
                    0.0
                }
            });
            let w = Array2::from_shape_fn((90, 150), |(i, j)| {
                ((i * 13 + j * 7) % 29) as f32 / 29.0 - 0.5
            });
            let b = Array1::from_shape_fn(150, |j| j as f32 / 150.0 - 0.3);
            let mut sparse = SparseInput::new(isa, 90);
            let (mut a, mut c) = (Array2::zeros((rows, 150)), Array2::zeros((rows, 150)));
            linear_forward_sparse(
                isa,
                x.view(),
                w.view(),
                b.view(),
                Some(Activation::Sigmoid),
                a.view_mut(),
                &mut sparse,
            );
            linear_forward(
                isa,
                x.view(),
                w.view(),
                b.view(),
                Some(Activation::Sigmoid),
                c.view_mut(),
            );
            assert_eq!(a, c, "forward, {rows} rows");
            if rows <= SparseInput::ROWS {
                let d = a.mapv(|v| v - 0.5);
                let (mut w1, mut b1, mut w2, mut b2) = (w.clone(), b.clone(), w.clone(), b.clone());
                sgd_update_sparse(
                    isa,
                    x.view(),
                    d.view(),
                    0.05,
                    w1.view_mut(),
                    b1.view_mut(),
                    &mut sparse,
                );
                sgd_update(isa, x.view(), d.view(), 0.05, w2.view_mut(), b2.view_mut());
                assert_eq!((w1, b1), (w2, b2), "update, {rows} rows");
            }
        }
    }
}
