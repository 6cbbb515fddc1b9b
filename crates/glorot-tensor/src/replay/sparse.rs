//! The exact sparse update of the notebook replay: the first layer's SGD update in `f64`
//! from the nonzeros of its input, equal bit for bit to the BLAS product it replaces
//! (where that BLAS sums each element as one chain over the rows, which
//! [`matches_sparse_chain`] checks).

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::isa::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::RowScan;

/// The nonzeros of an `f64` batch by columns, for [`sgd_update_sparse_exact`]: rebuilt
/// from the dense inputs on every call (a vectorized scan by rows, then a transpose, with
/// vector kernels), in buffers made once for up to `max_rows` rows.
#[derive(Clone, Debug)]
pub struct SparseColumns {
    cols: usize,
    max_rows: usize,
    pub(crate) ptr: Vec<u32>,
    pub(crate) cursor: Vec<u32>,
    pub(crate) rows: Vec<u32>,
    pub(crate) vals: Vec<f64>,
    /// The same nonzeros by rows, from the vector scan (empty for an instruction set
    /// without kernels of its own).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) scan: RowScan<f64>,
}

impl SparseColumns {
    /// Buffers for inputs of up to `max_rows` rows and `cols` columns, for the kernels of
    /// `isa`.
    pub fn new(isa: Isa, max_rows: usize, cols: usize) -> Self {
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = isa;
        Self {
            cols,
            max_rows,
            ptr: vec![0; cols + 1],
            cursor: vec![0; cols],
            rows: vec![0; max_rows * cols],
            vals: vec![0.0; max_rows * cols],
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            scan: RowScan::new(isa, max_rows, cols),
        }
    }

    /// The columns of `x`, one element at a time (the portable
    /// `Kernels::build_columns`): column `p` holds the rows `i`
    /// (increasing) with `x[i, p] != 0` (NaN included) and their values.
    pub(crate) fn build_portable(&mut self, x: ArrayView2<'_, f64>) {
        self.ptr.fill(0);
        for row in x.rows() {
            for (p, &v) in row.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    self.ptr[p + 1] += 1;
                }
            }
        }
        for p in 0..self.cols {
            self.ptr[p + 1] += self.ptr[p];
        }
        self.cursor.copy_from_slice(&self.ptr[..self.cols]);
        for (i, row) in x.rows().into_iter().enumerate() {
            for (p, &v) in row.iter().enumerate() {
                if v != 0.0 || v.is_nan() {
                    let at = self.cursor[p] as usize;
                    self.rows[at] = i as u32;
                    self.vals[at] = v;
                    self.cursor[p] += 1;
                }
            }
        }
    }

    /// The portable update of [`sgd_update_sparse_exact`] from the columns of a batch of
    /// `rows` rows, one element at a time.
    pub(crate) fn sgd_update_portable(
        &self,
        rows: usize,
        delta: ArrayView2<'_, f64>,
        lr: f64,
        mut w: ArrayViewMut2<'_, f64>,
    ) {
        let (fan_in, fan_out) = w.dim();
        let divide = !rows.is_power_of_two();
        let (n, inv_n) = (rows as f64, 1.0 / rows as f64);
        let columns = self;
        for p in 0..fan_in {
            let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
            if lo == hi {
                continue;
            }
            for j in 0..fan_out {
                let mut g = 0.0f64;
                for k in lo..hi {
                    g = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], g);
                }
                let g = if divide { g / n } else { g * inv_n };
                w[[p, j]] -= lr * g;
            }
        }
    }
}

/// The notebook's SGD update of a layer's weights for an `f64` input with many zeros,
/// reproducing, bit for bit, `w - lr * (g / n)` with `g = input^T delta` computed by a BLAS
/// that sums each element as one fused multiply-add chain over the rows in order (which
/// [`matches_sparse_chain`] checks): zero inputs are skipped (`fma(0, d, acc) = acc`),
/// and rows of `w` whose input column is zero in the whole batch are left as they are
/// (`w - lr * (0 / n) = w`). `g / n` is `g * (1 / n)` when `n` is a power of two (the same
/// bits, see `glorot-mlp`'s `train_step`).
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `w: (fan_in, fan_out)`;
/// `columns` made for at least `n` rows and `fan_in` columns.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn sgd_update_sparse_exact(
    isa: Isa,
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    lr: f64,
    w: ArrayViewMut2<'_, f64>,
    columns: &mut SparseColumns,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && w.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "sgd_update_sparse_exact: input is {:?}, delta {:?}, w {:?}, columns for {}x{}",
        input.dim(),
        delta.dim(),
        w.dim(),
        columns.max_rows,
        columns.cols
    );
    let kernels = isa.kernels();
    kernels.build_columns(columns, input);
    kernels.sgd_update_columns(columns, rows, delta, lr, w);
}

/// `g = input^T delta` for an `f64` input with many zeros, each element the fused
/// multiply-add chain [`sgd_update_sparse_exact`] uses: over the rows with a nonzero
/// input, in order, from `+0` (`+0` for input columns that are zero in the whole batch).
/// For gradients that must equal that update's (`glorot-mlp`'s `Mlp::gradients`).
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `g: (fan_in, fan_out)`;
/// `columns` made for at least `n` rows and `fan_in` columns.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn weight_gradient_sparse_f64(
    isa: Isa,
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    mut g: ArrayViewMut2<'_, f64>,
    columns: &mut SparseColumns,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && g.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "weight_gradient_sparse_f64: input is {:?}, delta {:?}, g {:?}, columns for {}x{}",
        input.dim(),
        delta.dim(),
        g.dim(),
        columns.max_rows,
        columns.cols
    );
    isa.kernels().build_columns(columns, input);
    for p in 0..fan_in {
        let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
        for j in 0..fan_out {
            let mut acc = 0.0f64;
            for k in lo..hi {
                acc = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], acc);
            }
            g[[p, j]] = acc;
        }
    }
}

/// Whether `g` equals, bit for bit, the sums [`sgd_update_sparse_exact`] computes in
/// place of `input^T delta`: each element one fused multiply-add chain over the rows with
/// nonzero input, in order, from `+0`, and exactly zero (`+0` or `-0`) for input columns
/// that are zero in the whole batch. Checked once against a BLAS product, it tells
/// whether the sparse update may replace that BLAS's product bit for bit.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn matches_sparse_chain(
    isa: Isa,
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    g: ArrayView2<'_, f64>,
    columns: &mut SparseColumns,
) -> bool {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows
            && g.dim() == (fan_in, fan_out)
            && columns.cols == fan_in
            && columns.max_rows >= rows,
        "matches_sparse_chain: shapes disagree"
    );
    isa.kernels().build_columns(columns, input);
    (0..fan_in).all(|p| {
        let (lo, hi) = (columns.ptr[p] as usize, columns.ptr[p + 1] as usize);
        (0..fan_out).all(|j| {
            if lo == hi {
                return g[[p, j]] == 0.0;
            }
            let mut acc = 0.0f64;
            for k in lo..hi {
                acc = columns.vals[k].mul_add(delta[[columns.rows[k] as usize, j]], acc);
            }
            acc.to_bits() == g[[p, j]].to_bits()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// The column form holds, for each column in order, exactly the rows with a nonzero
    /// (NaN included), increasing, and their values, for any number of rows up to the
    /// capacity and a width that is not a multiple of the scan's 8 lanes.
    #[test]
    fn sparse_columns_are_the_nonzeros_by_column() {
        for (isa, rows) in Isa::supported().flat_map(|i| [1, 5, 32, 40].map(|r| (i, r))) {
            let x = Array2::from_shape_fn((rows, 37), |(i, j)| match (i * 7 + j * 3) % 5 {
                0 => (i + j) as f64 + 0.5,
                1 if i == j => f64::NAN,
                _ => 0.0,
            });
            let mut c = SparseColumns::new(isa, 40, 37);
            isa.kernels().build_columns(&mut c, x.view());
            for p in 0..37 {
                let (lo, hi) = (c.ptr[p] as usize, c.ptr[p + 1] as usize);
                let expected: Vec<(u32, u64)> = (0..rows)
                    .filter(|&i| x[[i, p]] != 0.0 || x[[i, p]].is_nan())
                    .map(|i| (i as u32, x[[i, p]].to_bits()))
                    .collect();
                let found: Vec<(u32, u64)> =
                    (lo..hi).map(|k| (c.rows[k], c.vals[k].to_bits())).collect();
                assert_eq!(found, expected, "{} {rows} rows, column {p}", isa.name());
            }
        }
    }

    /// The exact sparse update on every instruction set and thread count is, bit for bit,
    /// `w - lr * (g / n)` (`g * (1 / n)` for a power of two) with `g` the stated chains
    /// ([`weight_gradient_sparse_f64`], checked against a one-element-at-a-time fold);
    /// [`matches_sparse_chain`] accepts that `g` and rejects it with one last bit changed.
    #[test]
    fn the_sparse_update_is_the_stated_chain_on_every_instruction_set() {
        for rows in [32, 20] {
            let x = Array2::from_shape_fn((rows, 37), |(i, j)| {
                if (i * 7 + j * 3) % 4 == 0 {
                    ((i + j) as f64 * 0.37).sin()
                } else {
                    0.0
                }
            });
            let d =
                Array2::from_shape_fn((rows, 70), |(i, j)| ((i * 5 + j * 11) as f64 * 0.13).cos());
            let w0 = Array2::from_shape_fn((37, 70), |(i, j)| (i as f64 - j as f64) * 0.01);
            let chains = Array2::from_shape_fn((37, 70), |(p, j)| {
                (0..rows)
                    .filter(|&i| x[[i, p]] != 0.0)
                    .fold(0.0f64, |acc, i| x[[i, p]].mul_add(d[[i, j]], acc))
            });
            let n = rows as f64;
            let manual = ndarray::Zip::from(&w0).and(&chains).map_collect(|&w, &g| {
                let g = if rows.is_power_of_two() {
                    g * (1.0 / n)
                } else {
                    g / n
                };
                w - 0.05 * g
            });
            let same = |a: &Array2<f64>, b: &Array2<f64>| {
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            };
            for isa in Isa::supported() {
                let mut columns = SparseColumns::new(isa, rows, 37);
                let mut g = Array2::from_elem((37, 70), f64::NAN);
                weight_gradient_sparse_f64(isa, x.view(), d.view(), g.view_mut(), &mut columns);
                assert!(same(&g, &chains), "{} gradient, {rows} rows", isa.name());
                assert!(matches_sparse_chain(
                    isa,
                    x.view(),
                    d.view(),
                    g.view(),
                    &mut columns
                ));
                g[[0, 3]] = f64::from_bits(g[[0, 3]].to_bits() ^ 1);
                assert!(!matches_sparse_chain(
                    isa,
                    x.view(),
                    d.view(),
                    g.view(),
                    &mut columns
                ));
                for threads in [1, 2] {
                    crate::fused::set_threads(threads);
                    let mut w = w0.clone();
                    sgd_update_sparse_exact(
                        isa,
                        x.view(),
                        d.view(),
                        0.05,
                        w.view_mut(),
                        &mut columns,
                    );
                    crate::fused::set_threads(1);
                    assert!(
                        same(&w, &manual),
                        "{} update, {rows} rows, {threads} threads",
                        isa.name()
                    );
                }
            }
        }
    }
}
