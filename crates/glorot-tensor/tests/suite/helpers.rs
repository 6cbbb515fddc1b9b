//! argmax, accuracy, one-hot, permutations, bias and column sums.

use glorot_tensor::{
    Float, accuracy_percent, add_row_bias, argmax_rows, column_sums, one_hot, permutation,
};
use ndarray::{Array1, Array2, array};

use super::common::{random_matrix, rng};

/// First maximum wins; NaN wins like np.argmax (NumPy 2.4.6: np.argmax([1, nan, nan]) is 1,
/// np.argmax([nan, 2]) is 0).
fn argmax_follows_numpy<F: Float>() {
    let f = F::from_f64;
    let nan = F::nan();
    let a = array![
        [f(0.1), f(0.7), f(0.7)],
        [f(1.0), nan, nan],
        [nan, f(2.0), f(1.0)],
        [f(-3.0), f(-1.0), f(-2.0)],
        [F::neg_infinity(), F::neg_infinity(), F::neg_infinity()],
    ];
    let mut out = [9; 5];
    argmax_rows(a.view(), &mut out);
    assert_eq!(out, [1, 1, 0, 1, 0]);
    // On a strided (transposed) view as well.
    let t = array![[f(1.0), f(5.0)], [f(3.0), f(2.0)]];
    let mut out = [9; 2];
    argmax_rows(t.t(), &mut out);
    assert_eq!(out, [1, 0]);
}

/// For the notebook's 10,000 validation images, every possible count of correct answers
/// gives exactly NumPy's `count / 100` (an int64 divided by 100 in float64), checked
/// exhaustively.
#[test]
fn accuracy_is_bit_exact_for_ten_thousand() {
    let labels = vec![3u8; 10_000];
    let mut pred = vec![0usize; 10_000];
    for correct in 0..=10_000 {
        if correct > 0 {
            pred[correct - 1] = 3;
        }
        let a = accuracy_percent(&pred, &labels);
        assert_eq!(
            a.to_bits(),
            (correct as f64 / 100.0).to_bits(),
            "{correct} correct"
        );
    }
    assert_eq!(accuracy_percent(&[1, 2, 3, 4], &[1, 2, 3, 0]), 75.0);
    assert!(accuracy_percent(&[], &[]).is_nan());
}

fn one_hot_rows<F: Float>() {
    let y = one_hot::<F>(&[3, 0, 9], 10);
    assert_eq!(y.dim(), (3, 10));
    for (row, label) in y.rows().into_iter().zip([3, 0, 9]) {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(v, if j == label { F::one() } else { F::zero() });
        }
    }
}

#[test]
#[should_panic(expected = "label 10 at index 1")]
fn one_hot_rejects_out_of_range_labels() {
    one_hot::<f32>(&[1, 10], 10);
}

/// A permutation of 0..n, reproducible from the seed, and uniform: over 6,000 draws for
/// n = 3 each of the 6 orders appears 1,000 times on average with standard deviation
/// sqrt(6000 * (1/6) * (5/6)) = 28.9; five of those (145) bound the deviation.
#[test]
fn permutations_are_seeded_and_uniform() {
    let p = permutation(1000, &mut rng(1));
    let mut sorted = p.clone();
    sorted.sort_unstable();
    assert!(sorted.iter().copied().eq(0..1000));
    assert_eq!(p, permutation(1000, &mut rng(1)));
    assert_ne!(p, permutation(1000, &mut rng(2)));
    assert!(permutation(0, &mut rng(1)).is_empty());

    let mut r = rng(3);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..6000 {
        *counts.entry(permutation(3, &mut r)).or_insert(0i32) += 1;
    }
    assert_eq!(counts.len(), 6);
    for (perm, c) in counts {
        assert!((c - 1000).abs() <= 145, "{perm:?} drawn {c} times");
    }
}

fn bias_and_column_sums<F: Float>() {
    let mut r = rng(4);
    let z: Array2<F> = random_matrix(33, 12, &mut r);
    let b: Array1<F> = random_matrix::<F>(1, 12, &mut r).row(0).to_owned();
    let mut zb = z.clone();
    add_row_bias(zb.view_mut(), b.view());
    for ((i, j), &v) in zb.indexed_iter() {
        assert_eq!(v, z[[i, j]] + b[j]);
    }
    // column_sums adds whole rows in order: the same as a sequential loop, bit for bit.
    let mut s = Array1::from_elem(12, F::nan());
    column_sums(z.view(), s.view_mut());
    for j in 0..12 {
        let mut acc = F::zero();
        for i in 0..33 {
            acc = acc + z[[i, j]];
        }
        assert_eq!(s[j], acc);
    }
    // Works on a transposed view too, and an empty batch gives zeros.
    let mut st = Array1::zeros(33);
    column_sums(z.t(), st.view_mut());
    for i in 0..33 {
        let mut acc = F::zero();
        for j in 0..12 {
            acc = acc + z[[i, j]];
        }
        assert_eq!(st[i], acc);
    }
    let mut e = Array1::from_elem(4, F::one());
    column_sums(Array2::<F>::zeros((0, 4)).view(), e.view_mut());
    assert!(e.iter().all(|&v| v == F::zero()));
}

#[test]
#[should_panic(expected = "bias has 3 entries but z has 4 columns")]
fn bias_length_is_checked() {
    let mut z = Array2::<f64>::zeros((2, 4));
    add_row_bias(z.view_mut(), Array1::zeros(3).view());
}

crate::both_floats!(argmax_follows_numpy, one_hot_rows, bias_and_column_sums);
