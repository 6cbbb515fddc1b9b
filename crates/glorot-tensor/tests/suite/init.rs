//! Initializers: sample statistics, bounds, orthogonality, determinism, errors.
//!
//! Tolerances are five standard errors of the statistic at the sample size used, so a
//! correct initializer fails with probability below 1e-6 per check (and the seeds are
//! fixed, so the tests are deterministic). For N draws with variance s2 and fourth central
//! moment m4: the sample mean has standard error sqrt(s2 / N) and the sample variance
//! sqrt((m4 - s2^2) / N). Normal: m4 = 3 s2^2, so the variance's relative standard error
//! is sqrt(2 / N). Uniform on (-r, r): s2 = r^2 / 3, m4 = r^4 / 5, so it is
//! sqrt((9/5 - 1) / N) = sqrt(0.8 / N).

use glorot_tensor::{Error, Float, Init};
use ndarray::{Array2, ArrayView2};
use rand_distr::{Distribution, StandardNormal};

use super::common::{assert_close, emulated, eps, rng};

/// (mean, variance, max |w|) of the entries, computed in f64.
fn stats<F: Float>(w: ArrayView2<F>) -> (f64, f64, f64) {
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v.to_f64()).sum::<f64>() / n;
    let var = w.iter().map(|&v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
    let max = w.iter().fold(0.0f64, |m, &v| m.max(v.to_f64().abs()));
    (mean, var, max)
}

#[track_caller]
fn check_moments<F: Float>(name: &str, w: ArrayView2<F>, mean: f64, var: f64, rel_var_se: f64) {
    let n = w.len() as f64;
    let (m, v, _) = stats(w);
    let mean_tol = 5.0 * (var / n).sqrt();
    assert!(
        (m - mean).abs() <= mean_tol,
        "{name} ({}): mean {m}, expected {mean} +- {mean_tol}",
        F::NAME
    );
    let var_tol = 5.0 * rel_var_se * var;
    assert!(
        (v - var).abs() <= var_tol,
        "{name} ({}): variance {v}, expected {var} +- {var_tol}",
        F::NAME
    );
}

/// The notebook's first layer: 784 x 500 = 392,000 draws from U(-r, r) with
/// r = sqrt(6 / 1284). All inside the bound; the largest within 0.1 % of it
/// (P(all 392,000 below 0.999 r) = 0.999^392000 < 1e-170).
fn glorot_uniform<F: Float>() {
    let (fan_in, fan_out) = (784, 500);
    let w: Array2<F> = Init::GlorotUniform
        .weights(fan_in, fan_out, &mut rng(5))
        .unwrap();
    let r = (6.0f64 / (fan_in + fan_out) as f64).sqrt();
    let n = (fan_in * fan_out) as f64;
    check_moments("glorot", w.view(), 0.0, r * r / 3.0, (0.8 / n).sqrt());
    let (_, _, max) = stats(w.view());
    // f32 rounding may land exactly on r; f64 draws are strictly inside.
    assert!(
        max <= F::from_f64(r).to_f64() && max > 0.999 * r,
        "max |w| = {max}, r = {r}"
    );
}

/// Glorot and Bengio's (2010) standard initialization, their eq. (1): U(-r, r) with
/// r = 1 / sqrt(fan_in), variance r^2 / 3 = 1 / (3 fan_in) (= 1/900 for fan_in 300), on
/// 300 x 200 = 60,000 draws (relative standard error of a uniform's sample variance
/// sqrt(0.8 / n), as for he_uniform); serialized as `{"kind":"standard"}`.
fn standard<F: Float>() {
    let w: Array2<F> = Init::Standard.weights(300, 200, &mut rng(7)).unwrap();
    let r = 1.0 / 300f64.sqrt();
    check_moments(
        "standard",
        w.view(),
        0.0,
        1.0 / 900.0,
        (0.8 / 60_000.0f64).sqrt(),
    );
    assert!(stats(w.view()).2 <= F::from_f64(r).to_f64());
    assert_eq!(
        serde_json::to_string(&Init::Standard).unwrap(),
        r#"{"kind":"standard"}"#
    );
}

fn he_uniform<F: Float>() {
    let w: Array2<F> = Init::HeUniform.weights(300, 200, &mut rng(6)).unwrap();
    let r = (6.0f64 / 300.0).sqrt();
    check_moments(
        "he_uniform",
        w.view(),
        0.0,
        2.0 / 300.0,
        (0.8 / 60_000.0f64).sqrt(),
    );
    assert!(stats(w.view()).2 <= F::from_f64(r).to_f64());
}

/// N(0, 1) as the notebook's "normal" and N(3, 0.25): 500 x 500 = 250,000 draws.
fn normal<F: Float>() {
    let n = 250_000.0f64;
    let w: Array2<F> = Init::Normal {
        mean: 0.0,
        std: 1.0,
    }
    .weights(500, 500, &mut rng(7))
    .unwrap();
    check_moments("normal(0, 1)", w.view(), 0.0, 1.0, (2.0 / n).sqrt());
    let w: Array2<F> = Init::Normal {
        mean: 3.0,
        std: 0.5,
    }
    .weights(500, 500, &mut rng(8))
    .unwrap();
    check_moments("normal(3, 0.5)", w.view(), 3.0, 0.25, (2.0 / n).sqrt());
}

fn he_and_lecun_normal<F: Float>() {
    let n = 300.0f64 * 400.0;
    let w: Array2<F> = Init::HeNormal.weights(300, 400, &mut rng(9)).unwrap();
    check_moments("he_normal", w.view(), 0.0, 2.0 / 300.0, (2.0 / n).sqrt());
    let w: Array2<F> = Init::LecunNormal.weights(300, 400, &mut rng(10)).unwrap();
    check_moments("lecun_normal", w.view(), 0.0, 1.0 / 300.0, (2.0 / n).sqrt());
}

fn zero<F: Float>() {
    let w: Array2<F> = Init::Zero.weights(7, 3, &mut rng(0)).unwrap();
    assert!(w.iter().all(|&v| v == F::zero()));
}

/// ||W^T W - gain^2 I||_max (or W W^T for wide W) against rounding, relative to gain^2:
/// the f64 QR's own error, at most one rounding per term of a dot product of up to
/// max(rows, cols) terms (max(rows, cols) * eps_f64; measured 4.4e-15 at 300x40, 5.6e-15
/// at 784x500), plus for f32 the rounding of each entry to f32 (a relative eps_f32 / 2 on
/// both factors of every product, at most eps_f32 over a column of norm one).
/// Under emulation (`common::emulated`) without 784x500, whose QR alone takes 4 to 20 s
/// there; the other shapes run the same code.
fn orthogonal<F: Float>() {
    for (rows, cols, gain) in [
        (64, 64, 1.0),
        (300, 40, 2.0),
        (40, 300, 1.0),
        (784, 500, 0.5),
        (1, 1, 1.0),
    ] {
        if (rows, cols) == (784, 500) && emulated() {
            continue;
        }
        let w: Array2<F> = Init::Orthogonal { gain }
            .weights(rows, cols, &mut rng(12))
            .unwrap();
        let w64 = w.mapv(|v| v.to_f64());
        let g = if rows >= cols {
            w64.t().dot(&w64)
        } else {
            w64.dot(&w64.t())
        };
        let k = rows.min(cols);
        assert_eq!(g.dim(), (k, k));
        let tol = gain * gain * (rows.max(cols) as f64 * f64::EPSILON + 2.0 * eps::<F>());
        let worst = g
            .indexed_iter()
            .map(|((i, j), &v)| (v - if i == j { gain * gain } else { 0.0 }).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= tol,
            "{rows}x{cols} ({}): ||Q^T Q - g^2 I||_max = {worst:e} > {tol:e}",
            F::NAME
        );
    }
}

/// `Init::Orthogonal` as it was before the QR moved into the crate:
/// `(rows, cols, gain, seed, w row by row)`, printed with `{:?}` (shortest round-trip
/// form) by the ndarray-linalg implementation (LAPACK `dgeqrf`/`dorgqr` from Debian's
/// OpenBLAS 0.3.21) at commit bed0af9, as
/// `Init::Orthogonal { gain }.weights::<f64, _>(rows, cols, &mut ChaCha8Rng::seed_from_u64(seed))`.
/// Tall, wide (with a gain) and square shapes; the last one is `orthogonal_two_by_two`'s.
#[rustfmt::skip]
const LAPACK_ORTHOGONAL: &[(usize, usize, f64, u64, &[f64])] = &[
    (4, 3, 1.0, 2026, &[
        0.18814106291742383, -0.14860822767290768, -0.9700398104190032,
        -0.5355672105794947, -0.6500362816635727, -0.026082545725583144,
        0.7034566147763875, -0.0020637483585313667, 0.1083241183825788,
        -0.42769088665033045, 0.7452275948538312, -0.2158896764261187,
    ]),
    (3, 5, 1.5, 2027, &[
        -0.88551770876885, 0.6432882843560717, 0.1186640451711842, -0.9364060650202659, -0.40137401067316214,
        0.7602960190726487, 1.0295747952083079, -0.685490958325726, 0.060863715427433365, -0.37191861831871154,
        0.11526677599637156, -0.70930351271624, -1.0606296074351311, -0.7736917546390272, 0.10033943310278066,
    ]),
    (4, 4, 1.0, 2028, &[
        -0.49488184084633424, 0.4769411471455999, 0.22828429707376965, -0.6895689852868367,
        0.33202555663805633, -0.04147540460202319, 0.941299742190954, 0.044649926131304175,
        0.14621181861594074, 0.8639150338117108, -0.03630362783940464, 0.4805777409086149,
        -0.7896031265368392, -0.15638972896788386, 0.24601447450602673, 0.5399500287712963,
    ]),
    (2, 2, 1.0, 1, &[
        -0.5763031950827402, -0.8172359679660613,
        0.8172359679660613, -0.5763031950827401,
    ]),
];

/// The Householder QR gives LAPACK's matrices up to rounding: the sign-corrected thin QR
/// of a full-rank matrix is unique, so only the order of operations differs. 1e-14 is
/// about 50 ulps of entries below 1.5 (LAPACK's blocked and this unblocked algorithm
/// round differently; measured differences are up to 5e-16). f32 is the same draws
/// rounded (`seeded_and_precision_independent`).
#[test]
fn orthogonal_matches_lapack() {
    for &(rows, cols, gain, seed, expected) in LAPACK_ORTHOGONAL {
        let w: Array2<f64> = Init::Orthogonal { gain }
            .weights(rows, cols, &mut rng(seed))
            .unwrap();
        assert_eq!(w.len(), expected.len());
        for (k, (&got, &want)) in w.iter().zip(expected).enumerate() {
            assert_close(
                &format!("{rows}x{cols} entry ({}, {})", k / cols, k % cols),
                got,
                want,
                1e-14,
            );
        }
    }
}

/// A 2x2 case checked by hand. Seed 1 draws (ChaCha8, rand_distr's ziggurat, row by row)
/// a = [[-0.23485, -1.41082], [0.33303, -1.12677]]. Gram-Schmidt: the first column has
/// norm sqrt(0.055153 + 0.110908) = 0.40751, so q0 = (c, s) = (-0.57630, 0.81724); q1 is
/// the unit vector orthogonal to q0 on the side of the second column (diag(R) >= 0):
/// (-s, c) = (-0.81724, -0.57630), whose dot product with (-1.41082, -1.12677) is
/// 1.15297 + 0.64936 = 1.80233 > 0. So w = [[c, -s], [s, c]], checked here to full
/// precision from the draws themselves.
fn orthogonal_two_by_two<F: Float>() {
    let mut draws = rng(1);
    let a: [f64; 4] = std::array::from_fn(|_| StandardNormal.sample(&mut draws));
    for (got, by_hand) in a.into_iter().zip([-0.23485, -1.41082, 0.33303, -1.12677]) {
        assert_close("draw", got, by_hand, 1e-5);
    }
    let norm = a[0].hypot(a[2]);
    let (c, s) = (a[0] / norm, a[2] / norm);
    assert_close("|a0|", norm, 0.40751, 1e-5);
    assert_close("r11", -s * a[1] + c * a[3], 1.80233, 1e-5);
    let expected = [[c, -s], [s, c]];
    let w: Array2<F> = Init::Orthogonal { gain: 1.0 }
        .weights(2, 2, &mut rng(1))
        .unwrap();
    for (i, row) in expected.iter().enumerate() {
        for (j, &want) in row.iter().enumerate() {
            let what = format!("w[{i}, {j}] ({})", F::NAME);
            assert_close(&what, w[[i, j]].to_f64(), want, 4.0 * eps::<F>());
        }
    }
}

/// The same seed gives the same weights, and the f32 weights are the f64 weights rounded:
/// every initializer draws in f64.
fn seeded_and_precision_independent<F: Float>() {
    for init in [
        Init::GlorotUniform,
        Init::Normal {
            mean: 0.0,
            std: 1.0,
        },
        Init::HeNormal,
        Init::Orthogonal { gain: 1.0 },
    ] {
        let a: Array2<F> = init.weights(20, 10, &mut rng(42)).unwrap();
        let b: Array2<F> = init.weights(20, 10, &mut rng(42)).unwrap();
        assert_eq!(a, b, "{init:?}");
        let c: Array2<f64> = init.weights(20, 10, &mut rng(42)).unwrap();
        assert_eq!(a, c.mapv(F::from_f64), "{init:?}");
        let d: Array2<F> = init.weights(20, 10, &mut rng(43)).unwrap();
        assert_ne!(a, d, "{init:?}");
    }
}

/// Bad parameters are errors, not panics, and leave the matrix untouched.
fn invalid_parameters<F: Float>() {
    let mut w = Array2::<F>::from_elem((3, 3), F::one());
    for init in [
        Init::Normal {
            mean: 0.0,
            std: -1.0,
        },
        Init::Normal {
            mean: 0.0,
            std: f64::NAN,
        },
        Init::Normal {
            mean: f64::INFINITY,
            std: 1.0,
        },
        Init::Orthogonal { gain: f64::NAN },
    ] {
        let e = init.fill(w.view_mut(), &mut rng(0)).unwrap_err();
        assert!(
            matches!(e, Error::InvalidInitParameter { .. }),
            "{init:?}: {e}"
        );
    }
    assert!(w.iter().all(|&v| v == F::one()));
}

/// Empty matrices are fine for every initializer.
fn empty_shapes<F: Float>() {
    for init in [
        Init::GlorotUniform,
        Init::HeNormal,
        Init::Orthogonal { gain: 1.0 },
        Init::Zero,
    ] {
        let w: Array2<F> = init.weights(0, 5, &mut rng(0)).unwrap();
        assert_eq!(w.dim(), (0, 5));
    }
}

#[test]
fn serde_form_is_tagged() {
    let json = serde_json::to_string(&Init::Normal {
        mean: 0.0,
        std: 1.0,
    })
    .unwrap();
    assert_eq!(json, r#"{"kind":"normal","mean":0.0,"std":1.0}"#);
    let back: Init = serde_json::from_str(r#"{"kind":"glorot_uniform"}"#).unwrap();
    assert_eq!(back, Init::GlorotUniform);
    let o: Init = serde_json::from_str(r#"{"kind":"orthogonal","gain":1.5}"#).unwrap();
    assert_eq!(o, Init::Orthogonal { gain: 1.5 });
}

crate::both_floats!(
    glorot_uniform,
    he_uniform,
    standard,
    normal,
    he_and_lecun_normal,
    zero,
    orthogonal,
    orthogonal_two_by_two,
    seeded_and_precision_independent,
    invalid_parameters,
    empty_shapes,
);
