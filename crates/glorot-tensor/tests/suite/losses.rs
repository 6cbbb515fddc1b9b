//! Losses and their gradients: hand-worked examples and central differences.

use glorot_tensor::{Float, loss, one_hot, sigmoid};
use ndarray::{Array2, ArrayView2, array};

use super::common::{assert_close, eps, random_matrix, rng};

/// A batch of logits and one-hot targets.
fn batch<F: Float>(rows: usize, cols: usize, seed: u64, scale: f64) -> (Array2<F>, Array2<F>) {
    let mut r = rng(seed);
    let z = random_matrix::<F>(rows, cols, &mut r).mapv(|v| v * F::from_f64(scale));
    let labels: Vec<u8> = (0..rows).map(|i| ((i * 7) % cols) as u8).collect();
    (z, one_hot(&labels, cols))
}

fn to64<F: Float>(a: ArrayView2<F>) -> Array2<f64> {
    a.mapv(|v| v.to_f64())
}

/// Central differences of `loss(z)` in f64 against `delta / batch`. h = 1e-6 on losses of
/// order 1: truncation h^2 |L'''| / 6 < 1e-12, rounding ~ eps * |L| / h ~ 1e-10; the
/// tolerance 1e-7 leaves room for L''' of larger logits.
fn check_gradient(
    name: &str,
    loss_fn: impl Fn(ArrayView2<f64>) -> f64,
    z: &Array2<f64>,
    delta: ArrayView2<f64>,
) {
    let h = 1e-6;
    let n = z.nrows() as f64;
    for ((i, j), &d) in delta.indexed_iter() {
        let mut zp = z.clone();
        zp[[i, j]] += h;
        let mut zm = z.clone();
        zm[[i, j]] -= h;
        let fd = (loss_fn(zp.view()) - loss_fn(zm.view())) / (2.0 * h);
        assert_close(&format!("{name} gradient at [{i},{j}]"), d / n, fd, 1e-7);
    }
}

/// Hand-worked: out = [[0.9, 0.2]], y = [[1, 0]] gives
/// -ln(0.9 + 1e-8) - ln(1 - 0.2 + 1e-8). With ln 0.9 = -0.10536051565782630 and
/// ln 0.8 = -0.22314355131420976 and ln(p + 1e-8) = ln p + 1e-8 / p to first order:
/// 0.10536051565782630 - 1.1111111e-8 + 0.22314355131420976 - 1.25e-8 = 0.3285040433609251
/// (40-digit `decimal` arithmetic agrees: 0.32850404336092508573...).
fn bce_notebook_hand_worked<F: Float>() {
    let f = F::from_f64;
    let l = loss::bce_notebook(
        array![[f(0.9), f(0.2)]].view(),
        array![[f(1.0), f(0.0)]].view(),
    );
    assert_close(
        "bce_notebook",
        l.to_f64(),
        0.3285040433609251,
        1e-15 + 4.0 * eps::<F>(),
    );
    // Averaged over the batch: a second identical row leaves the mean unchanged, a row of
    // perfect predictions (out = y exactly) halves it, up to the 1e-8 terms (2e-8 / 2).
    let l2 = loss::bce_notebook(
        array![[f(0.9), f(0.2)], [f(1.0), f(0.0)]].view(),
        array![[f(1.0), f(0.0)], [f(1.0), f(0.0)]].view(),
    );
    assert_close(
        "bce_notebook mean",
        l2.to_f64(),
        0.3285040433609251 / 2.0,
        2e-8 + 4.0 * eps::<F>(),
    );
}

/// Hand-worked delta: out = 0.5, y = 1: dout = -1 / 0.50000001 = -1.9999999600000008,
/// delta = 0.5 * 0.5 * dout = -0.4999999900000002. out = 0.25, y = 0:
/// dout = 1 / (0.75 + 1e-8) = 1.3333333155555558, delta = 0.1875 * dout = 0.24999999666666671.
fn bce_notebook_delta_hand_worked<F: Float>() {
    let f = F::from_f64;
    let mut d = Array2::zeros((1, 2));
    loss::bce_notebook_delta(
        array![[f(0.5), f(0.25)]].view(),
        array![[f(1.0), f(0.0)]].view(),
        d.view_mut(),
    );
    assert_close(
        "delta y=1",
        d[[0, 0]].to_f64(),
        -0.4999999900000002,
        1e-16 + 4.0 * eps::<F>(),
    );
    assert_close(
        "delta y=0",
        d[[0, 1]].to_f64(),
        0.2499999966666667,
        1e-16 + 4.0 * eps::<F>(),
    );
}

/// The notebook's delta is the exact gradient of its loss (1e-8 included) with respect to
/// the logits when out = sigmoid(z): checked by central differences in f64. In F, the
/// delta agrees with the f64 delta to F's precision.
fn bce_notebook_gradient<F: Float>() {
    let (z, y) = batch::<F>(4, 10, 21, 3.0);
    let sig = |z: ArrayView2<f64>| z.mapv(sigmoid);
    let (z64, y64) = (to64(z.view()), to64(y.view()));
    let mut d64 = Array2::zeros(z64.dim());
    loss::bce_notebook_delta(sig(z64.view()).view(), y64.view(), d64.view_mut());
    check_gradient(
        "bce_notebook",
        |z| loss::bce_notebook(sig(z).view(), y64.view()),
        &z64,
        d64.view(),
    );

    let mut d = Array2::zeros(z.dim());
    loss::bce_notebook_delta(z.mapv(sigmoid).view(), y.view(), d.view_mut());
    for (&a, &b) in d.iter().zip(&d64) {
        assert_close("delta precision", a.to_f64(), b, 16.0 * eps::<F>());
    }
}

/// Hand-worked, with softplus(x) = ln(1 + e^x): z = 0 gives ln 2 = 0.6931471805599453;
/// z = 2, y = 1 gives ln(1 + e^-2) = 0.1269280110429725; z = -3, y = 1 gives
/// 3 + ln(1 + e^-3) = 3.0485873515737420; z = 800, y = 0 gives 800 (no overflow).
fn bce_with_logits_hand_worked<F: Float>() {
    let f = F::from_f64;
    let l = loss::bce_with_logits(
        array![[f(0.0), f(2.0), f(-3.0)]].view(),
        array![[f(0.0), f(1.0), f(1.0)]].view(),
    );
    let expected = std::f64::consts::LN_2 + 0.1269280110429725 + 3.048587351573742;
    assert_close(
        "bce_with_logits",
        l.to_f64(),
        expected,
        8.0 * eps::<F>() * expected,
    );
    let big = loss::bce_with_logits(array![[f(800.0)]].view(), array![[f(0.0)]].view());
    assert_eq!(big, f(800.0));
    let mut d = Array2::zeros((1, 2));
    loss::bce_with_logits_delta(
        array![[f(0.0), f(800.0)]].view(),
        array![[f(1.0), f(1.0)]].view(),
        d.view_mut(),
    );
    assert_eq!(d, array![[f(-0.5), f(0.0)]]);
}

/// The stable loss equals the notebook's loss without its 1e-8 where both are accurate,
/// and its delta is the gradient by central differences.
fn bce_with_logits_gradient<F: Float>() {
    let (z, y) = batch::<F>(5, 10, 22, 4.0);
    let (z64, y64) = (to64(z.view()), to64(y.view()));
    let stable = loss::bce_with_logits(z64.view(), y64.view());
    let naive = loss::bce_notebook(z64.mapv(sigmoid).view(), y64.view());
    // The notebook's 1e-8 terms change each of the 50 log terms by at most 1e-8 / 0.01.
    assert_close("stable vs notebook", stable, naive, 50.0 * 1e-6);
    let mut d64 = Array2::zeros(z64.dim());
    loss::bce_with_logits_delta(z64.view(), y64.view(), d64.view_mut());
    check_gradient(
        "bce_with_logits",
        |z| loss::bce_with_logits(z, y64.view()),
        &z64,
        d64.view(),
    );

    let l = loss::bce_with_logits(z.view(), y.view()).to_f64();
    assert_close(
        "bce_with_logits precision",
        l,
        stable,
        32.0 * eps::<F>() * stable,
    );
}

/// Hand-worked: z = [0, ln 3], y = [0, 1]: softmax = [1/4, 3/4], loss = -ln(3/4) =
/// 0.2876820724517809, delta = [0.25, -0.25]. Logits of 1e4 stay finite.
fn softmax_cross_entropy_hand_worked<F: Float>() {
    let f = F::from_f64;
    let z = array![[f(0.0), f(3f64.ln())]];
    let y = array![[f(0.0), f(1.0)]];
    let l = loss::softmax_cross_entropy(z.view(), y.view());
    assert_close(
        "softmax CE",
        l.to_f64(),
        0.2876820724517809,
        8.0 * eps::<F>(),
    );
    let mut d = Array2::zeros((1, 2));
    loss::softmax_cross_entropy_delta(z.view(), y.view(), d.view_mut());
    assert_close(
        "softmax CE delta",
        d[[0, 0]].to_f64(),
        0.25,
        4.0 * eps::<F>(),
    );
    assert_close(
        "softmax CE delta",
        d[[0, 1]].to_f64(),
        -0.25,
        4.0 * eps::<F>(),
    );
    // z = [1e4, 0], y = [0, 1]: loss = 1e4 + ln(1 + e^-1e4) = 1e4.
    let big = loss::softmax_cross_entropy(array![[f(1e4), f(0.0)]].view(), y.view());
    assert_eq!(big, f(1e4));
}

fn softmax_cross_entropy_gradient<F: Float>() {
    let (z, y) = batch::<F>(6, 10, 23, 3.0);
    let (z64, y64) = (to64(z.view()), to64(y.view()));
    let mut d64 = Array2::zeros(z64.dim());
    loss::softmax_cross_entropy_delta(z64.view(), y64.view(), d64.view_mut());
    check_gradient(
        "softmax_cross_entropy",
        |z| loss::softmax_cross_entropy(z, y64.view()),
        &z64,
        d64.view(),
    );
    let mut d = Array2::zeros(z.dim());
    loss::softmax_cross_entropy_delta(z.view(), y.view(), d.view_mut());
    for (&a, &b) in d.iter().zip(&d64) {
        assert_close("delta precision", a.to_f64(), b, 16.0 * eps::<F>());
    }
}

/// An empty batch is a mean over nothing: NaN, as np.mean of an empty array.
fn empty_batch_is_nan<F: Float>() {
    let e = Array2::<F>::zeros((0, 10));
    assert!(loss::bce_notebook(e.view(), e.view()).is_nan());
    assert!(loss::bce_with_logits(e.view(), e.view()).is_nan());
    assert!(loss::softmax_cross_entropy(e.view(), e.view()).is_nan());
}

#[test]
#[should_panic(expected = "shapes differ")]
fn mismatched_shapes_panic() {
    let a = Array2::<f64>::zeros((2, 10));
    let b = Array2::<f64>::zeros((2, 9));
    loss::bce_notebook(a.view(), b.view());
}

crate::both_floats!(
    bce_notebook_hand_worked,
    bce_notebook_delta_hand_worked,
    bce_notebook_gradient,
    bce_with_logits_hand_worked,
    bce_with_logits_gradient,
    softmax_cross_entropy_hand_worked,
    softmax_cross_entropy_gradient,
    empty_batch_is_nan,
);
