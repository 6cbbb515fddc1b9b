//! Helpers the model needs around the math: argmax, accuracy, one-hot, permutations.

use ndarray::{Array2, ArrayView2};
use rand::Rng;

use crate::Float;

/// The index of the largest value in each row, as `np.argmax(a, axis=1)`.
///
/// Ties go to the first maximum. NaN follows NumPy too: NaN counts as the largest value,
/// so a row containing NaN yields the index of its first NaN (`np.argmax([1, nan, nan])`
/// is 1). This keeps the accuracy of a diverged network identical to the notebook's
/// rather than silently different. An empty row (no columns) yields 0.
///
/// Shapes: `a: (batch, classes)`, `out.len() == batch`.
///
/// # Panics
/// If `out.len() != a.nrows()`.
///
/// ```
/// use glorot_tensor::argmax_rows;
/// use ndarray::array;
///
/// let a = array![[0.1f64, 0.7, 0.7], [f64::NAN, 2.0, 1.0], [3.0, 1.0, f64::NAN]];
/// let mut out = [0; 3];
/// argmax_rows(a.view(), &mut out);
/// assert_eq!(out, [1, 0, 2]);
/// ```
#[track_caller]
pub fn argmax_rows<F: Float>(a: ArrayView2<F>, out: &mut [usize]) {
    assert!(
        out.len() == a.nrows(),
        "argmax_rows: out has {} entries but a has {} rows",
        out.len(),
        a.nrows()
    );
    for (row, o) in a.rows().into_iter().zip(out.iter_mut()) {
        let mut best = 0;
        let mut best_v = F::neg_infinity();
        for (j, &v) in row.iter().enumerate() {
            if v.is_nan() {
                best = j;
                break;
            }
            if j == 0 || v > best_v {
                best = j;
                best_v = v;
            }
        }
        *o = best;
    }
}

/// Accuracy in percent: `100 * correct / n`, where `correct` counts `pred[i] == labels[i]`.
///
/// Computed as `(correct * 100.0) / n` in `f64`. Both operands are exact integers, so the
/// result is the correctly rounded value of `100 * correct / n`; for the notebook's
/// `n = 10_000` that is bit for bit its `np.sum(labels == targets) / 100`. An empty input
/// gives NaN (0 / 0).
///
/// # Panics
/// If `pred.len() != labels.len()`.
///
/// ```
/// use glorot_tensor::accuracy_percent;
///
/// assert_eq!(accuracy_percent(&[1, 2, 3, 0], &[1, 2, 0, 0]), 75.0);
/// ```
#[track_caller]
pub fn accuracy_percent(pred: &[usize], labels: &[u8]) -> f64 {
    assert!(
        pred.len() == labels.len(),
        "accuracy_percent: {} predictions but {} labels",
        pred.len(),
        labels.len()
    );
    let correct = pred
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p == usize::from(l))
        .count();
    (correct as f64 * 100.0) / pred.len() as f64
}

/// One-hot rows: `out[i, labels[i]] = 1`, zeros elsewhere; shape `(labels.len(), classes)`.
/// The notebook's `vectorized_result`, for a whole label vector.
///
/// # Panics
/// If a label is `>= classes`.
///
/// ```
/// use glorot_tensor::one_hot;
/// use ndarray::array;
///
/// assert_eq!(one_hot::<f32>(&[2, 0], 3), array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
/// ```
#[track_caller]
pub fn one_hot<F: Float>(labels: &[u8], classes: usize) -> Array2<F> {
    let mut out = Array2::zeros((labels.len(), classes));
    for (i, &l) in labels.iter().enumerate() {
        let l = usize::from(l);
        assert!(
            l < classes,
            "one_hot: label {l} at index {i} is not below {classes} classes"
        );
        out[[i, l]] = F::one();
    }
    out
}

/// A uniformly random permutation of `0..n`, by Fisher-Yates: for `i` from `n - 1` down
/// to 1, swap position `i` with a position drawn uniformly from `0..=i`
/// (`rng.random_range` on `u64`, so 32- and 64-bit targets draw the same stream). The
/// same seed gives the same permutation.
///
/// This is not NumPy's shuffle; to replay NumPy's stream use
/// [`numpy_rng`](crate::numpy_rng).
///
/// ```
/// use glorot_tensor::permutation;
/// use rand::SeedableRng;
/// use rand_chacha::ChaCha8Rng;
///
/// let p = permutation(5, &mut ChaCha8Rng::seed_from_u64(0));
/// let mut sorted = p.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// assert_eq!(p, permutation(5, &mut ChaCha8Rng::seed_from_u64(0)));
/// ```
pub fn permutation<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // `i as u64` is lossless (usize is at most 64 bits), and so is the way back (j <= i).
        let j = rng.random_range(0..=i as u64) as usize;
        p.swap(i, j);
    }
    p
}
