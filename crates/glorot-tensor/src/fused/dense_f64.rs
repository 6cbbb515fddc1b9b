//! The dense `f64` kernels: products with a stated summation order, and the notebook's
//! SGD update fused into the weight-gradient product.

use ndarray::{ArrayView2, ArrayViewMut2};

#[cfg(doc)]
use super::set_threads;
use crate::gemm;
use crate::isa::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::Transposes;

/// Buffers [`product_nt_f64`] transposes through (for up to [`ScratchF64::ROWS`] rows at
/// a time, with vector kernels) or [`sgd_update_f64`] stores the gradient in (with
/// [`Isa::portable`]). Made once per model, for the instruction set the kernels will run
/// with; the kernels allocate nothing.
#[derive(Clone, Debug)]
pub struct ScratchF64 {
    pub(crate) width: usize,
    /// `a^T` and the product's transpose, `ROWS` columns each.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) transposes: Transposes<f64>,
    /// `width * width` elements for the portable [`sgd_update_f64`], else empty.
    pub(crate) gradient: Vec<f64>,
}

impl ScratchF64 {
    /// Rows of `a` processed per pass.
    pub const ROWS: usize = 128;

    /// Buffers for matrices up to `max_width` columns wide, for the kernels of `isa`.
    pub fn new(isa: Isa, max_width: usize) -> Self {
        Self {
            width: max_width,
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            transposes: Transposes::new(isa, max_width, Self::ROWS),
            gradient: if isa.accelerated() {
                Vec::new()
            } else {
                vec![0.0; max_width * max_width]
            },
        }
    }
}

/// `out = a b` in `f64`, each element **one fused multiply-add chain over `k` in order,
/// from `+0`**, with vector kernels (register-tiled, shared among the threads of
/// [`set_threads`]; the result does not depend on the thread count). `a` may have any
/// layout (a transposed view included); `b` and `out` need contiguous rows. With
/// [`Isa::portable`], or for other layouts, BLAS ([`gemm`]), with its own summation order.
///
/// Shapes: `a: (m, k)`, `b: (k, n)`, `out: (m, n)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::{fused, isa::Isa};
/// use ndarray::{Array2, array};
///
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let mut out = Array2::zeros((2, 2));
/// fused::product_f64(Isa::detect(), a.t(), a.view(), out.view_mut()); // a^T a
/// assert_eq!(out, array![[10.0, 14.0], [14.0, 20.0]]);
/// ```
#[track_caller]
pub fn product_f64(
    isa: Isa,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    out: ArrayViewMut2<'_, f64>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert!(
        b.nrows() == k && out.dim() == (m, n),
        "product_f64: a is {:?}, b {:?}, out {:?}",
        a.dim(),
        b.dim(),
        out.dim()
    );
    isa.kernels().product_f64(a, b, out);
}

/// The notebook's SGD update of a layer's weights in `f64`,
/// `w = w - lr * (g / n)` with `g = input^T delta` and `n` the batch's rows, with `g`
/// computed as [`product_f64`] computes it: with vector kernels never stored (each element of
/// `w` is updated as its tile of products finishes), with [`Isa::portable`] into
/// `scratch`. `g / n` is `g * (1 / n)` when `n` is a power of two (the same bits). So the
/// result equals [`product_f64`]`(input^T, delta)` followed by the notebook's update, bit
/// for bit.
///
/// Shapes: `input: (n, fan_in)`, `delta: (n, fan_out)`, `w: (fan_in, fan_out)`;
/// `scratch` made for widths up to `max(fan_in, fan_out)`.
///
/// # Panics
/// If the shapes disagree.
#[track_caller]
pub fn sgd_update_f64(
    isa: Isa,
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    lr: f64,
    w: ArrayViewMut2<'_, f64>,
    scratch: &mut ScratchF64,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows && w.dim() == (fan_in, fan_out),
        "sgd_update_f64: input is {:?}, delta {:?}, w {:?}",
        input.dim(),
        delta.dim(),
        w.dim()
    );
    isa.kernels().sgd_update_f64(input, delta, lr, w, scratch);
}

/// [`sgd_update_f64`] through BLAS: `g` into `scratch`'s gradient buffer (a fresh array
/// if that is too small: only when `scratch` was made for vector kernels that could not
/// address these operands), then the update.
pub(crate) fn sgd_update_f64_blas(
    input: ArrayView2<'_, f64>,
    delta: ArrayView2<'_, f64>,
    lr: f64,
    mut w: ArrayViewMut2<'_, f64>,
    scratch: &mut ScratchF64,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    let (n, inv_n, divide) = (rows as f64, 1.0 / rows as f64, !rows.is_power_of_two());
    let mut fresh;
    let mut g = match scratch.gradient.get_mut(..fan_in * fan_out) {
        Some(buffer) => ArrayViewMut2::from_shape((fan_in, fan_out), buffer)
            .expect("a standard layout of fan_in * fan_out elements"),
        None => {
            fresh = ndarray::Array2::zeros((fan_in, fan_out));
            fresh.view_mut()
        }
    };
    gemm(1.0, input.t(), delta, 0.0, g.view_mut());
    ndarray::Zip::from(&mut w).and(&g).for_each(|w, &g| {
        let g = if divide { g / n } else { g * inv_n };
        *w -= lr * g;
    });
}

/// `out = a b^T` in `f64` (backpropagation through a layer's weights: `delta w^T`), each
/// element one fused multiply-add chain over `k` in order from `+0`, as [`product_f64`]:
/// computed as `(b a^T)^T` through `scratch`, up to [`ScratchF64::ROWS`] rows of `a` per
/// pass. With [`Isa::portable`], BLAS.
///
/// Shapes: `a: (m, k)`, `b: (n, k)`, `out: (m, n)`; `scratch` made for widths up to
/// `max(k, n)`.
///
/// # Panics
/// If the shapes disagree or `scratch` is too narrow.
#[track_caller]
pub fn product_nt_f64(
    isa: Isa,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    out: ArrayViewMut2<'_, f64>,
    scratch: &mut ScratchF64,
) {
    let ((m, k), n) = (a.dim(), b.nrows());
    assert!(
        b.ncols() == k && out.dim() == (m, n),
        "product_nt_f64: a is {:?}, b {:?}, out {:?}",
        a.dim(),
        b.dim(),
        out.dim()
    );
    assert!(
        scratch.width >= k.max(n),
        "product_nt_f64: scratch holds {} columns, the product needs {}",
        scratch.width,
        k.max(n)
    );
    isa.kernels().product_nt_f64(a, b, out, scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::set_threads;
    use ndarray::Array2;

    /// `sum_k a[i, k] b[k, j]` as one fused multiply-add chain in `k` order from `+0`.
    fn dense_chains(
        a: ndarray::ArrayView2<'_, f64>,
        b: ndarray::ArrayView2<'_, f64>,
    ) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).fold(0.0f64, |acc, k| a[[i, k]].mul_add(b[[k, j]], acc))
        })
    }

    /// The dense `f64` kernels compute the stated chains bit for bit (where they run), for
    /// any thread count, tile shape (widths 5, 13, 40, 500) and operand layout, and the
    /// fused update equals product-then-update.
    #[test]
    fn dense_f64_kernels_are_the_stated_chains() {
        let same = |x: &Array2<f64>, y: &Array2<f64>| {
            x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
        };
        let cases = [(32, 500, 500), (7, 33, 13), (130, 40, 5), (3, 9, 40)];
        for (isa, (m, k, n)) in Isa::supported().flat_map(|i| cases.map(|c| (i, c))) {
            // The portable products are BLAS's: equal up to rounding only.
            let exact = isa.accelerated();
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 17) as f64 * 0.1).sin());
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 7 + j * 11) as f64 * 0.3).cos());
            let bt = b.t().to_owned(); // (n, k), standard layout
            let at = a.t().to_owned(); // (k, m)
            let expected = dense_chains(a.view(), b.view());
            for threads in [1, 2] {
                set_threads(threads);
                let mut out = Array2::from_elem((m, n), f64::NAN);
                product_f64(isa, a.view(), b.view(), out.view_mut());
                assert!(
                    !exact || same(&out, &expected),
                    "{} {m}x{k}x{n}, {threads} threads",
                    isa.name()
                );
                assert!(out.abs_diff_eq(&expected, 1e-10));
                // A transposed view as `a`.
                let mut out_t = Array2::from_elem((m, n), f64::NAN);
                product_f64(isa, at.t(), b.view(), out_t.view_mut());
                assert!(!exact || same(&out_t, &expected));
                assert!(out_t.abs_diff_eq(&expected, 1e-10));
                // a b^T through the scratch.
                let mut scratch = ScratchF64::new(isa, k.max(n));
                let mut out_nt = Array2::from_elem((m, n), f64::NAN);
                product_nt_f64(isa, a.view(), bt.view(), out_nt.view_mut(), &mut scratch);
                assert!(!exact || same(&out_nt, &expected), "nt {m}x{k}x{n}");
                assert!(out_nt.abs_diff_eq(&expected, 1e-10));
                // The fused update: w - lr * (g / rows), with a = input^T.
                let w0 = Array2::from_shape_fn((m, n), |(i, j)| (i as f64 - j as f64) * 0.01);
                let mut w = w0.clone();
                sgd_update_f64(isa, at.view(), b.view(), 0.05, w.view_mut(), &mut scratch);
                let rows = k as f64;
                let manual = ndarray::Zip::from(&w0)
                    .and(&expected)
                    .map_collect(|&w, &g| {
                        let g = if k.is_power_of_two() {
                            g * (1.0 / rows)
                        } else {
                            g / rows
                        };
                        w - 0.05 * g
                    });
                assert!(!exact || same(&w, &manual), "update {m}x{k}x{n}");
                assert!(w.abs_diff_eq(&manual, 1e-12));
            }
            set_threads(1);
        }
    }
}
