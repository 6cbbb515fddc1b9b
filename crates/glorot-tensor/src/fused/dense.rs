//! The dense `f32` kernels of a layer: forward with bias and activation, backward
//! through the weights and the activation's derivative, and the SGD update.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::Activation;
#[cfg(doc)]
use crate::gemm;
use crate::isa::Isa;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::kernels::Transposes;

/// Buffers [`linear_backward_input`] transposes through, for up to [`Scratch::ROWS`]
/// rows at a time. Made once per model, for the instruction set the kernel will run
/// with; the kernels allocate nothing.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub(crate) width: usize,
    /// `delta^T` and the product's transpose, `ROWS` columns each.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub(crate) transposes: Transposes<f32>,
}

impl Scratch {
    /// Rows of a batch processed per pass (larger batches are done in several passes).
    pub const ROWS: usize = 128;

    /// Buffers for matrices up to `max_width` columns wide, for the kernels of `isa`
    /// (empty for an instruction set without kernels of its own).
    pub fn new(isa: Isa, max_width: usize) -> Self {
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = isa;
        Self {
            width: max_width,
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            transposes: Transposes::new(isa, max_width, Self::ROWS),
        }
    }
}

/// `out = f(x w + bias)` with `f = act` (identity for `None`): one layer's forward pass.
///
/// Shapes: `x: (rows, fan_in)`, `w: (fan_in, fan_out)`, `bias: (fan_out,)`,
/// `out: (rows, fan_out)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::{Activation, fused, isa::Isa};
/// use ndarray::{Array2, array};
///
/// let x = array![[1.0f32, 2.0]];
/// let w = array![[0.5f32, -1.0], [0.25, 0.5]];
/// let mut out = Array2::zeros((1, 2));
/// let isa = Isa::detect();
/// fused::linear_forward(isa, x.view(), w.view(), array![0.0, 1.0].view(), Some(Activation::Relu), out.view_mut());
/// assert_eq!(out, array![[1.0, 1.0]]);
/// ```
#[track_caller]
pub fn linear_forward(
    isa: Isa,
    x: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    act: Option<Activation>,
    out: ArrayViewMut2<'_, f32>,
) {
    check_forward_shapes(&x, &w, &bias, &out);
    isa.kernels().linear_forward(x, w, bias, act, out);
}

/// `out = (delta w^T) * f'(a)`: backpropagation through one layer's weights and the
/// activation below it, with `f'` taken from the output `a = f(z)` as in
/// [`Activation::backward_inplace`].
///
/// Shapes: `delta: (rows, fan_out)`, `w: (fan_in, fan_out)`, `a` and `out`:
/// `(rows, fan_in)`; `scratch` made for widths up to `max(fan_in, fan_out)`.
///
/// # Panics
/// If the shapes disagree or `scratch` is too narrow.
#[track_caller]
pub fn linear_backward_input(
    isa: Isa,
    delta: ArrayView2<'_, f32>,
    w: ArrayView2<'_, f32>,
    act: Activation,
    a: ArrayView2<'_, f32>,
    out: ArrayViewMut2<'_, f32>,
    scratch: &mut Scratch,
) {
    let (rows, fan_out) = delta.dim();
    let fan_in = w.nrows();
    assert!(
        w.ncols() == fan_out && a.dim() == (rows, fan_in) && out.dim() == (rows, fan_in),
        "linear_backward_input: delta is {:?}, w {:?}, a {:?}, out {:?}",
        delta.dim(),
        w.dim(),
        a.dim(),
        out.dim()
    );
    assert!(
        scratch.width >= fan_in.max(fan_out),
        "linear_backward_input: scratch holds {} columns, the layer needs {}",
        scratch.width,
        fan_in.max(fan_out)
    );
    isa.kernels()
        .linear_backward_input(delta, w, act, a, out, scratch);
}

/// One SGD update of a layer from its batch: `w -= scale * (input^T delta)` and
/// `bias -= scale * column_sums(delta)`, where `scale` is the learning rate divided by the
/// batch size.
///
/// Shapes: `input: (rows, fan_in)`, `delta: (rows, fan_out)`, `w: (fan_in, fan_out)`,
/// `bias: (fan_out,)`.
///
/// # Panics
/// If the shapes disagree.
///
/// ```
/// # extern crate blas_src;
/// use glorot_tensor::{fused, isa::Isa};
/// use ndarray::array;
///
/// let x = array![[1.0f32, 2.0]];
/// let d = array![[0.5f32]];
/// let mut w = array![[1.0f32], [1.0]];
/// let mut b = array![0.0f32];
/// fused::sgd_update(Isa::detect(), x.view(), d.view(), 0.5, w.view_mut(), b.view_mut());
/// assert_eq!(w, array![[0.75], [0.5]]);
/// assert_eq!(b, array![-0.25]);
/// ```
#[track_caller]
pub fn sgd_update(
    isa: Isa,
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    scale: f32,
    w: ArrayViewMut2<'_, f32>,
    bias: ArrayViewMut1<'_, f32>,
) {
    check_update_shapes(&input, &delta, &w, &bias);
    update_bias(delta, scale, bias);
    isa.kernels().weights_update(input, delta, scale, w);
}

/// `bias -= scale * column_sums(delta)`: column sums (rows added in order), then one
/// update per element, 64 columns at a time so that the sums run along contiguous rows.
/// The same on every instruction set.
pub(crate) fn update_bias(
    delta: ArrayView2<'_, f32>,
    scale: f32,
    mut bias: ArrayViewMut1<'_, f32>,
) {
    let fan_out = delta.ncols();
    let mut j0 = 0;
    while j0 < fan_out {
        let cols = 64.min(fan_out - j0);
        let mut sums = [0.0f32; 64];
        for row in delta.rows() {
            for (s, &d) in sums[..cols].iter_mut().zip(row.iter().skip(j0)) {
                *s += d;
            }
        }
        for (b, s) in bias.iter_mut().skip(j0).zip(&sums[..cols]) {
            *b -= scale * s;
        }
        j0 += cols;
    }
}

/// The shape check of [`linear_forward`] and its sparse variant.
#[track_caller]
pub(super) fn check_forward_shapes(
    x: &ArrayView2<'_, f32>,
    w: &ArrayView2<'_, f32>,
    bias: &ArrayView1<'_, f32>,
    out: &ArrayViewMut2<'_, f32>,
) {
    let (rows, fan_in) = x.dim();
    let fan_out = w.ncols();
    assert!(
        w.nrows() == fan_in && bias.len() == fan_out && out.dim() == (rows, fan_out),
        "linear_forward: x is {:?}, w {:?}, bias {}, out {:?}",
        x.dim(),
        w.dim(),
        bias.len(),
        out.dim()
    );
}

/// The shape check of [`sgd_update`] and its sparse variant.
#[track_caller]
pub(super) fn check_update_shapes(
    input: &ArrayView2<'_, f32>,
    delta: &ArrayView2<'_, f32>,
    w: &ArrayViewMut2<'_, f32>,
    bias: &ArrayViewMut1<'_, f32>,
) {
    let (rows, fan_in) = input.dim();
    let fan_out = delta.ncols();
    assert!(
        delta.nrows() == rows && w.dim() == (fan_in, fan_out) && bias.len() == fan_out,
        "sgd_update: input is {:?}, delta {:?}, w {:?}, bias {}",
        input.dim(),
        delta.dim(),
        w.dim(),
        bias.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm;
    use ndarray::{Array1, Array2, s};

    /// A deterministic matrix with values in (-1, 1), some exact zeros.
    fn mat(rows: usize, cols: usize, salt: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i * 131 + j * 71 + salt * 977) % 1009;
            if h.is_multiple_of(7) {
                0.0
            } else {
                (h as f32 / 1009.0) * 2.0 - 1.0
            }
        })
    }

    /// `a b` by the obvious triple loop in f64.
    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|k| f64::from(a[[i, k]]) * f64::from(b[[k, j]]))
                .sum()
        })
    }

    #[track_caller]
    fn assert_close(found: f32, expected: f64, tol: f64, what: &str) {
        let err = (f64::from(found) - expected).abs();
        assert!(
            err <= tol * (1.0 + expected.abs()),
            "{what}: {found} vs {expected} (error {err:e})"
        );
    }

    /// Shapes covering full tiles, row and column remainders, every tile width.
    const SHAPES: [(usize, usize, usize); 7] = [
        (32, 784, 500),
        (16, 500, 10),
        (7, 33, 17),
        (1, 5, 1),
        (13, 20, 64),
        (128, 30, 128),
        (25, 3, 49),
    ];

    /// On every instruction set this machine has.
    #[test]
    fn forward_matches_the_naive_product_for_every_activation() {
        for (isa, &(m, k, n)) in Isa::supported().flat_map(|i| SHAPES.iter().map(move |s| (i, s))) {
            let x = mat(m, k, 1);
            let w = mat(k, n, 2).mapv(|v| v * 0.1);
            let b = Array1::from_shape_fn(n, |j| j as f32 * 0.01 - 0.2);
            let z = naive(&x, &w);
            for act in [
                None,
                Some(Activation::Relu),
                Some(Activation::Sigmoid),
                Some(Activation::Tanh),
                Some(Activation::Softsign),
            ] {
                let mut out = Array2::from_elem((m, n), f32::NAN);
                linear_forward(isa, x.view(), w.view(), b.view(), act, out.view_mut());
                for ((i, j), &o) in out.indexed_iter() {
                    let zb = z[[i, j]] + f64::from(b[j]);
                    let expected = match act {
                        None => zb,
                        Some(Activation::Relu) => zb.max(0.0),
                        Some(Activation::Sigmoid) => 1.0 / (1.0 + (-zb).exp()),
                        Some(Activation::Tanh) => zb.tanh(),
                        Some(Activation::Softsign) => zb / (1.0 + zb.abs()),
                    };
                    assert_close(
                        o,
                        expected,
                        1e-5,
                        &format!("{} {m}x{k}x{n} {act:?} [{i},{j}]", isa.name()),
                    );
                }
            }
        }
    }

    #[test]
    fn backward_input_matches_gemm_then_derivative() {
        for (isa, &(m, k, n)) in Isa::supported().flat_map(|i| SHAPES.iter().map(move |s| (i, s))) {
            // delta: (m, n), w: (k, n), a/out: (m, k).
            let delta = mat(m, n, 3);
            let w = mat(k, n, 4);
            let a = mat(m, k, 5).mapv(|v| v * 0.9);
            let mut scratch = Scratch::new(isa, k.max(n));
            for act in Activation::ALL {
                let mut out = Array2::from_elem((m, k), f32::NAN);
                linear_backward_input(
                    isa,
                    delta.view(),
                    w.view(),
                    act,
                    a.view(),
                    out.view_mut(),
                    &mut scratch,
                );
                let dw = naive(&delta, &w.t().to_owned());
                for ((i, j), &o) in out.indexed_iter() {
                    let d = f64::from(act.derivative_from_output(a[[i, j]]));
                    assert_close(
                        o,
                        d * dw[[i, j]],
                        1e-5,
                        &format!("{} {m}x{k}x{n} {act} [{i},{j}]", isa.name()),
                    );
                }
            }
        }
    }

    #[test]
    fn update_matches_the_unfused_update() {
        for (isa, &(m, k, n)) in Isa::supported().flat_map(|i| SHAPES.iter().map(move |s| (i, s))) {
            let x = mat(m, k, 6);
            let d = mat(m, n, 7);
            let w0 = mat(k, n, 8);
            let b0 = Array1::from_shape_fn(n, |j| j as f32 * 0.5);
            let (mut w, mut b) = (w0.clone(), b0.clone());
            sgd_update(isa, x.view(), d.view(), 0.25, w.view_mut(), b.view_mut());
            let g = naive(&x.t().to_owned(), &d);
            for ((i, j), &v) in w.indexed_iter() {
                assert_close(v, f64::from(w0[[i, j]]) - 0.25 * g[[i, j]], 1e-5, "w");
            }
            for j in 0..n {
                let s: f64 = (0..m).map(|i| f64::from(d[[i, j]])).sum();
                assert_close(b[j], f64::from(b0[j]) - 0.25 * s, 1e-5, "b");
            }
        }
    }

    #[test]
    fn strided_views_take_the_fallback_and_agree() {
        let x = mat(10, 24, 9);
        let w = mat(12, 6, 10);
        let b = Array1::zeros(6);
        let xs = x.slice(s![.., ..;2]); // column stride 2
        let mut slow = Array2::zeros((10, 6));
        gemm(1.0, xs, w.view(), 0.0, slow.view_mut());
        for isa in Isa::supported() {
            let mut fast = Array2::zeros((10, 6));
            linear_forward(isa, xs, w.view(), b.view(), None, fast.view_mut());
            for (f, s) in fast.iter().zip(&slow) {
                assert!((f - s).abs() <= 1e-5 * (1.0 + s.abs()));
            }
        }
    }

    /// Column-major `delta`, `a` and `out` (rows not contiguous) take the portable path on
    /// every instruction set and give its result (the kernels address rows only).
    #[test]
    fn backward_input_with_column_major_operands_agrees() {
        let (m, k, n) = (7, 20, 9);
        let delta_c = mat(n, m, 11).reversed_axes(); // (m, n), column-major
        let w = mat(k, n, 12);
        let a_c = mat(k, m, 13).mapv(|v| v * 0.9).reversed_axes(); // (m, k)
        for isa in Isa::supported() {
            for act in Activation::ALL {
                let mut scratch = Scratch::new(isa, k.max(n));
                let mut out_c = Array2::from_elem((k, m), f32::NAN).reversed_axes();
                linear_backward_input(
                    isa,
                    delta_c.view(),
                    w.view(),
                    act,
                    a_c.view(),
                    out_c.view_mut(),
                    &mut scratch,
                );
                let mut expected = Array2::zeros((m, k));
                gemm(1.0, delta_c.view(), w.t(), 0.0, expected.view_mut());
                act.backward_inplace(a_c.view(), expected.view_mut());
                assert_eq!(out_c, expected, "{} {act}", isa.name());
            }
        }
    }
}
