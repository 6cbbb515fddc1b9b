//! Matrix products through BLAS, bias broadcasting and column sums.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use crate::Float;

/// `c = alpha * a * b + beta * c`, written into the preallocated `c`.
///
/// Shapes: `a: (m, k)`, `b: (k, n)`, `c: (m, n)`. To multiply by a transpose, pass the
/// transposed view (`w.t()`): no data is copied, BLAS reads the operand as transposed.
///
/// The product goes through [`ndarray::linalg::general_mat_mul`], which hands `f32`/`f64`
/// to BLAS `sgemm`/`dgemm` when every operand has a BLAS-compatible layout (C- or
/// Fortran-contiguous rows/columns, which includes `.t()` of a standard array and
/// row slices of one). Other layouts fall back to the pure-Rust `matrixmultiply` kernel,
/// which is correct but allocates packing buffers. As in BLAS, `beta == 0` ignores the
/// previous contents of `c` (even NaN).
///
/// # Panics
/// If the inner dimensions differ or `c` is not `(m, n)`.
///
/// ```
/// use glorot_tensor::gemm;
/// use ndarray::{array, Array2};
///
/// let x = array![[1.0f64, 2.0], [3.0, 4.0]];
/// let w = array![[1.0f64, 0.0], [1.0, 1.0]];
/// let mut c = Array2::<f64>::zeros((2, 2));
/// // c = x^T * w
/// gemm(1.0, x.t(), w.view(), 0.0, c.view_mut());
/// assert_eq!(c, array![[4.0, 3.0], [6.0, 4.0]]);
/// ```
#[track_caller]
pub fn gemm<F: Float>(
    alpha: F,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    beta: F,
    mut c: ArrayViewMut2<F>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2,
        "gemm: inner dimensions differ: a is {m}x{k}, b is {k2}x{n}"
    );
    assert!(
        c.dim() == (m, n),
        "gemm: c is {}x{} but a * b is {m}x{n}",
        c.nrows(),
        c.ncols()
    );
    ndarray::linalg::general_mat_mul(alpha, &a, &b, beta, &mut c);
}

/// Adds `bias` to every row: `z[i, j] += bias[j]`, the broadcast of NumPy's `z + b`.
///
/// Shapes: `z: (batch, n)`, `bias: (n,)`.
///
/// # Panics
/// If `bias.len() != z.ncols()`.
///
/// ```
/// use glorot_tensor::add_row_bias;
/// use ndarray::array;
///
/// let mut z = array![[1.0f32, 2.0], [3.0, 4.0]];
/// add_row_bias(z.view_mut(), array![10.0, 20.0].view());
/// assert_eq!(z, array![[11.0, 22.0], [13.0, 24.0]]);
/// ```
#[track_caller]
pub fn add_row_bias<F: Float>(mut z: ArrayViewMut2<F>, bias: ArrayView1<F>) {
    assert!(
        bias.len() == z.ncols(),
        "add_row_bias: bias has {} entries but z has {} columns",
        bias.len(),
        z.ncols()
    );
    for row in z.rows_mut() {
        Zip::from(row).and(&bias).for_each(|z, &b| *z = *z + b);
    }
}

/// Column sums: `out[j] = sum_i a[i, j]`, accumulated row by row in order
/// `i = 0, 1, 2, ...`.
///
/// This is exactly the order NumPy uses for `np.sum(a, axis=0)` (and the sum inside
/// `np.mean(a, axis=0)`) on a C-contiguous `a`: the reduction's inner loop runs along a
/// row and adds it to the running result, which starts at `0.0` (so a column of `-0.0`
/// sums to `+0.0`, as in NumPy 2.4). Bias gradients replayed from the notebook depend on
/// it. An empty `a` gives zeros.
///
/// Shapes: `a: (batch, n)`, `out: (n,)`.
///
/// # Panics
/// If `out.len() != a.ncols()`.
///
/// ```
/// use glorot_tensor::column_sums;
/// use ndarray::{array, Array1};
///
/// let a = array![[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let mut out = Array1::zeros(2);
/// column_sums(a.view(), out.view_mut());
/// assert_eq!(out, array![9.0, 12.0]);
/// ```
#[track_caller]
pub fn column_sums<F: Float>(a: ArrayView2<F>, mut out: ArrayViewMut1<F>) {
    assert!(
        out.len() == a.ncols(),
        "column_sums: out has {} entries but a has {} columns",
        out.len(),
        a.ncols()
    );
    out.fill(F::zero());
    for row in a.rows() {
        Zip::from(&mut out).and(row).for_each(|o, &x| *o = *o + x);
    }
}

/// Column means: [`column_sums`] divided by the number of rows, `out[j] = (sum_i a[i, j]) / n`.
///
/// The same operations as NumPy's `np.mean(a, axis=0)` on a C-contiguous `a` (its sum,
/// then a true division by the count), so the notebook's bias gradients
/// (`np.mean(delta, axis=0)`) replay bit for bit. An empty `a` gives NaN, as NumPy.
///
/// Shapes: `a: (batch, n)`, `out: (n,)`.
///
/// # Panics
/// If `out.len() != a.ncols()`.
///
/// ```
/// use glorot_tensor::column_means;
/// use ndarray::{array, Array1};
///
/// let a = array![[1.0f32, 2.0], [3.0, 5.0]];
/// let mut out = Array1::zeros(2);
/// column_means(a.view(), out.view_mut());
/// assert_eq!(out, array![2.0, 3.5]);
/// ```
#[track_caller]
pub fn column_means<F: Float>(a: ArrayView2<F>, mut out: ArrayViewMut1<F>) {
    column_sums(a, out.view_mut());
    let n = F::from_f64(a.nrows() as f64);
    out.mapv_inplace(|s| s / n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, array};

    #[test]
    fn column_sums_start_from_positive_zero() {
        // NumPy 2.4.6 prints array([0.]) for np.sum(np.array([[-0.0]]), axis=0):
        // the reduction starts from +0.0, and 0.0 + -0.0 is +0.0.
        let a = array![[-0.0f64]];
        let mut out = Array1::from_elem(1, 7.0);
        column_sums(a.view(), out.view_mut());
        assert!(out[0] == 0.0 && out[0].is_sign_positive());
    }

    #[test]
    #[should_panic(expected = "inner dimensions differ")]
    fn gemm_rejects_mismatched_inner_dimensions() {
        let a = Array2::<f64>::zeros((2, 3));
        let b = Array2::<f64>::zeros((2, 3));
        let mut c = Array2::<f64>::zeros((2, 3));
        gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    }

    #[test]
    #[should_panic(expected = "c is 2x2")]
    fn gemm_rejects_wrong_output_shape() {
        let a = Array2::<f32>::zeros((2, 3));
        let b = Array2::<f32>::zeros((3, 4));
        let mut c = Array2::<f32>::zeros((2, 2));
        gemm(1.0, a.view(), b.view(), 0.0, c.view_mut());
    }
}
