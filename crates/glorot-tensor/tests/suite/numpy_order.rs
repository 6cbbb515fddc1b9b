//! Bit-exact agreement with NumPy/SciPy, on values printed by
//! `tests/reference/numpy_reference.py` (NumPy 2.4.6, SciPy 1.17.1, x86_64 Linux).
//! Each input is rebuilt here with the script's own integer arithmetic.

use glorot_tensor::{column_means, column_sums, loss, one_hot, pairwise_sum, sigmoid};
use ndarray::{Array1, Array2};

const SCALES: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// The script's `value(k)`.
fn value(k: usize) -> f64 {
    (((k * 7919) % 1013) as f64 - 506.0) / (1 + k % 13) as f64 * SCALES[k % 5]
}

/// The script's `prob(k)`.
fn prob(k: usize) -> f64 {
    ((k * 7919) % 1013) as f64 / 1013.0 * 0.998 + 0.001
}

/// `np.sum` of `value(0..n)`: (n, bits of np.sum, bits of a left-to-right loop). The last
/// column shows the test can tell the orders apart from n = 17 on.
const SUMS: [(usize, u64, u64); 9] = [
    (5, 13885287367497265534, 13885287367497265534),
    (8, 13885250769729158044, 13885250769729158044),
    (10, 13886796194405976533, 13886796194405976533),
    (17, 13888504345910940020, 13888504345910940019),
    (128, 13895233122490989854, 13895233122490989852),
    (129, 13895204260310760736, 13895204260310760732),
    (300, 13901093914285319520, 13901093914285319516),
    (1000, 13899196455594064187, 13899196455594064184),
    (1037, 13890748741724095760, 13890748741724095738),
];

#[test]
fn pairwise_sum_matches_np_sum() {
    for (n, numpy, sequential) in SUMS {
        let a = Array1::from_shape_fn(n, value);
        let ours = pairwise_sum(a.view());
        assert_eq!(
            ours.to_bits(),
            numpy,
            "n = {n}: {ours} vs NumPy {}",
            f64::from_bits(numpy)
        );
        let seq = a.iter().fold(0.0, |s, &v| s + v);
        assert_eq!(
            seq.to_bits(),
            sequential,
            "n = {n}: the script's sequential sum"
        );
    }
}

/// `np.sum(A, axis=0)` and `np.mean(A, axis=0)` for `A[i, j] = value(7 i + j)`, (50, 7).
#[test]
fn column_sums_match_np_sum_axis0() {
    let numpy_sum: [u64; 7] = [
        13892061020205884454,
        13886947216376589091,
        13880816168754582422,
        13898188083556887417,
        4675920626050765907,
        13893163022158770261,
        13899032963108387555,
    ];
    let numpy_mean: [u64; 7] = [
        13866856209220879671,
        13861844504762167832,
        13855257771701663035,
        13872449791065958473,
        4650491615777460166,
        13867561490470726588,
        13873531236891878650,
    ];
    let a = Array2::from_shape_fn((50, 7), |(i, j)| value(7 * i + j));
    let mut s = Array1::zeros(7);
    column_sums(a.view(), s.view_mut());
    for j in 0..7 {
        assert_eq!(s[j].to_bits(), numpy_sum[j], "column {j}");
    }
    let mut m = Array1::zeros(7);
    column_means(a.view(), m.view_mut());
    for j in 0..7 {
        assert_eq!(m[j].to_bits(), numpy_mean[j], "mean of column {j}");
    }
}

/// The notebook's loss on `out[i, j] = prob(10 i + j)`, `y = one_hot(3 i % 10)`:
/// (batch, bits of NumPy's loss). Batch 200 exercises the recursive split of the mean.
#[test]
fn bce_notebook_matches_numpy() {
    for (batch, numpy) in [
        (1usize, 4624886805493394786u64),
        (7, 4622279351867551109),
        (32, 4622020898744752344),
        (200, 4621818881679291251),
    ] {
        let out = Array2::from_shape_fn((batch, 10), |(i, j)| prob(10 * i + j));
        let labels: Vec<u8> = (0..batch).map(|i| (3 * i % 10) as u8).collect();
        let y = one_hot::<f64>(&labels, 10);
        let l = loss::bce_notebook(out.view(), y.view());
        assert_eq!(
            l.to_bits(),
            numpy,
            "batch {batch}: {l} vs NumPy {}",
            f64::from_bits(numpy)
        );
    }
}

/// `scipy.special.expit` on `value(k) / 7` for k in 0..40, then -745.5, -709, -40, 37,
/// 710, 1e300, -1e300.
#[test]
fn sigmoid_matches_scipy_expit() {
    let scipy: [u64; 47] = [
        4599558079195050862,
        4606361656133474603,
        4607169215022810600,
        4495512100521568583,
        281439198564545836,
        4602230973379109864,
        4604460236555079565,
        4607023230024518100,
        4607166700486529581,
        3261120507460100573,
        4602485837297183297,
        4603976039955135318,
        4606902459563101857,
        4607182418800017408,
        1961469422218041019,
        4602160406505117999,
        4595607318330465506,
        4607182323561800250,
        4607182418800017408,
        4607182418800017408,
        4602554977987370551,
        4600312281864109038,
        4607174094819289866,
        4607182418800017408,
        4607182418800017408,
        4602646155846002527,
        4583430609273703025,
        4404745501200556018,
        4607182418800017408,
        4607182418800017408,
        4602692973296301700,
        4600952605960514267,
        4560727709131895797,
        4607182418800017408,
        4607182418800017408,
        4602714203870139045,
        4602240503351395866,
        4586401600525688689,
        4289078018841633741,
        4607182418800017408,
        0,
        2462791657071416,
        4346984719898581540,
        4607182418800017408,
        4607182418800017408,
        4607182418800017408,
        0,
    ];
    let xs: Vec<f64> = (0..40)
        .map(|k| value(k) / 7.0)
        .chain([-745.5, -709.0, -40.0, 37.0, 710.0, 1e300, -1e300])
        .collect();
    for (x, bits) in xs.into_iter().zip(scipy) {
        let s = sigmoid(x);
        assert_eq!(
            s.to_bits(),
            bits,
            "expit({x}) = {} but ours is {s}",
            f64::from_bits(bits)
        );
    }
}
