//! Losses over a batch and their gradients with respect to the last layer.
//!
//! Every loss takes `(batch, outputs)` views and returns the mean over rows of a per-row
//! sum over outputs. Every `*_delta` writes the gradient of the per-row loss with respect
//! to the last layer's pre-activation `z`, **not divided by the batch size**: the notebook
//! divides after the weight products (`np.dot(h.T, delta) / len(x)`), and callers that
//! replay it must do the same. The gradient of the batch mean is `delta / batch`.

use ndarray::{ArrayView2, ArrayViewMut2, Zip};

use crate::activation::{row_max, sigmoid};
use crate::{Float, sum::pairwise_sum_by};

/// The notebook's `1e-8`, added inside both logarithms of its loss and in the
/// denominators of its gradient.
pub const NOTEBOOK_EPS: f64 = 1e-8;

#[track_caller]
fn check_same_shape<F>(what: &str, a: &ArrayView2<F>, b: &ArrayView2<F>) {
    assert!(
        a.dim() == b.dim(),
        "{what}: shapes differ: {:?} and {:?}",
        a.dim(),
        b.dim()
    );
}

/// Mean over rows of per-row sums `row_term(i)`, each sum and the mean in NumPy's order
/// (`np.mean(np.sum(l, axis=1))` on C-order arrays: pairwise sums, then divide by `n`).
#[inline]
fn mean_of_row_sums<F: Float>(rows: usize, row_sum: impl Fn(usize) -> F) -> F {
    pairwise_sum_by(rows, row_sum) / F::from_f64(rows as f64)
}

/// The notebook's loss, reproduced operation for operation:
///
/// ```text
/// l = -y*np.log(out+1e-8) - (1-y)*np.log(1-out+1e-8)
/// loss = np.mean(np.sum(l, axis=1))
/// ```
///
/// `out` are the sigmoid outputs and `y` the one-hot targets, both `(batch, outputs)`.
/// Each row is summed in NumPy's pairwise order ([`pairwise_sum`](crate::pairwise_sum)),
/// the row sums likewise, then divided by the batch size, so an `f64` replay matches
/// NumPy bit for bit (given the same `log`). An empty batch gives NaN, as `np.mean([])`.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use glorot_tensor::loss::bce_notebook;
/// use ndarray::array;
///
/// let out = array![[0.5f64, 0.5]];
/// let y = array![[1.0, 0.0]];
/// // -ln(0.5 + 1e-8) - ln(1 - 0.5 + 1e-8), by hand: 2 * 0.6931471605599454
/// assert!((bce_notebook(out.view(), y.view()) - 1.3862943211198908).abs() < 1e-15);
/// ```
#[track_caller]
pub fn bce_notebook<F: Float>(out: ArrayView2<F>, y: ArrayView2<F>) -> F {
    check_same_shape("bce_notebook", &out, &y);
    let eps = F::from_f64(NOTEBOOK_EPS);
    let one = F::one();
    let cols = out.ncols();
    mean_of_row_sums(out.nrows(), |i| {
        let (o, t) = (out.row(i), y.row(i));
        pairwise_sum_by(cols, |j| {
            let (o, t) = (o[j], t[j]);
            (-t) * num_traits::Float::ln(o + eps) - (one - t) * num_traits::Float::ln(one - o + eps)
        })
    })
}

/// The gradient of the notebook's per-row loss with respect to the output layer's
/// pre-activation, in the notebook's expression order (`del2` in its `backward`):
///
/// ```text
/// dout  = (-y/(out+1e-8)) + (1-y) * (1/(1-out+1e-8))
/// delta = out*(1-out)*dout          # evaluated left to right
/// ```
///
/// Not divided by the batch size. Shapes: all `(batch, outputs)`.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use glorot_tensor::loss::bce_notebook_delta;
/// use ndarray::{array, Array2};
///
/// let out = array![[0.5f64]];
/// let y = array![[1.0]];
/// let mut d = Array2::zeros((1, 1));
/// bce_notebook_delta(out.view(), y.view(), d.view_mut());
/// // 0.25 * (-1 / (0.5 + 1e-8)) = -0.49999999000000020..., close to sigmoid(z) - y = -0.5
/// assert!((d[[0, 0]] + 0.5).abs() < 1e-8);
/// ```
#[track_caller]
pub fn bce_notebook_delta<F: Float>(out: ArrayView2<F>, y: ArrayView2<F>, delta: ArrayViewMut2<F>) {
    check_same_shape("bce_notebook_delta", &out, &y);
    check_same_shape("bce_notebook_delta", &out, &delta.view());
    let eps = F::from_f64(NOTEBOOK_EPS);
    let one = F::one();
    Zip::from(delta).and(&out).and(&y).for_each(|d, &o, &t| {
        let dout = (-t / (o + eps)) + (one - t) * (one / (one - o + eps));
        *d = o * (one - o) * dout;
    });
}

/// Binary cross-entropy from logits `z` (the sigmoid is inside), numerically stable for
/// any finite `z`: the mean over rows of the per-row sum of
/// `max(z, 0) - z*y + ln(1 + exp(-|z|))` (`ln_1p`). Mathematically equal to the
/// notebook's loss without its `1e-8`, but never takes the log of 0. An empty batch gives
/// NaN.
///
/// Shapes: `z`, `y` both `(batch, outputs)`.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use glorot_tensor::loss::bce_with_logits;
/// use ndarray::array;
///
/// // z = 0: ln(2) per output. z = -800, y = 1: 800 + ln(1 + e^-800) = 800, no overflow.
/// let l = bce_with_logits(array![[0.0f64, -800.0]].view(), array![[0.0, 1.0]].view());
/// assert!((l - (std::f64::consts::LN_2 + 800.0)).abs() < 1e-12);
/// ```
#[track_caller]
pub fn bce_with_logits<F: Float>(z: ArrayView2<F>, y: ArrayView2<F>) -> F {
    check_same_shape("bce_with_logits", &z, &y);
    let cols = z.ncols();
    mean_of_row_sums(z.nrows(), |i| {
        let (zr, yr) = (z.row(i), y.row(i));
        pairwise_sum_by(cols, |j| {
            let (z, t) = (zr[j], yr[j]);
            let pos = if z > F::zero() { z } else { F::zero() };
            pos - z * t
                + num_traits::Float::ln_1p(num_traits::Float::exp(-num_traits::Float::abs(z)))
        })
    })
}

/// Gradient of [`bce_with_logits`]'s per-row loss with respect to `z`:
/// `delta = sigmoid(z) - y`. Not divided by the batch size.
///
/// Shapes: all `(batch, outputs)`.
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn bce_with_logits_delta<F: Float>(
    z: ArrayView2<F>,
    y: ArrayView2<F>,
    delta: ArrayViewMut2<F>,
) {
    check_same_shape("bce_with_logits_delta", &z, &y);
    check_same_shape("bce_with_logits_delta", &z, &delta.view());
    Zip::from(delta)
        .and(&z)
        .and(&y)
        .for_each(|d, &z, &t| *d = sigmoid(z) - t);
}

/// Softmax cross-entropy from logits, with a stable log-sum-exp: the mean over rows of
/// `-sum_j y[i, j] * log_softmax(z)[i, j]`, where
/// `log_softmax(z)_j = z_j - (m + ln(sum_k exp(z_k - m)))` and `m` is the row maximum.
/// `y` may hold one-hot or soft targets (rows summing to 1). An empty batch gives NaN.
///
/// Shapes: `z`, `y` both `(batch, classes)`.
///
/// # Panics
/// If the shapes differ.
///
/// ```
/// use glorot_tensor::loss::softmax_cross_entropy;
/// use ndarray::array;
///
/// // Four equal logits: the loss is ln(4) whatever the target.
/// let l = softmax_cross_entropy(array![[7.0f64, 7.0, 7.0, 7.0]].view(), array![[0.0, 1.0, 0.0, 0.0]].view());
/// assert!((l - 4f64.ln()).abs() < 1e-15);
/// ```
#[track_caller]
pub fn softmax_cross_entropy<F: Float>(z: ArrayView2<F>, y: ArrayView2<F>) -> F {
    check_same_shape("softmax_cross_entropy", &z, &y);
    let cols = z.ncols();
    mean_of_row_sums(z.nrows(), |i| {
        let (zr, yr) = (z.row(i), y.row(i));
        let m = row_max(zr);
        let lse =
            m + num_traits::Float::ln(pairwise_sum_by(cols, |j| num_traits::Float::exp(zr[j] - m)));
        pairwise_sum_by(cols, |j| yr[j] * (lse - zr[j]))
    })
}

/// Gradient of [`softmax_cross_entropy`]'s per-row loss with respect to `z`:
/// `delta = softmax(z) - y` (exact when each row of `y` sums to 1). Not divided by the
/// batch size.
///
/// Shapes: all `(batch, classes)`.
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn softmax_cross_entropy_delta<F: Float>(
    z: ArrayView2<F>,
    y: ArrayView2<F>,
    mut delta: ArrayViewMut2<F>,
) {
    check_same_shape("softmax_cross_entropy_delta", &z, &y);
    check_same_shape("softmax_cross_entropy_delta", &z, &delta.view());
    delta.assign(&z);
    crate::softmax_rows_inplace(delta.view_mut());
    Zip::from(&mut delta).and(&y).for_each(|d, &t| *d = *d - t);
}
