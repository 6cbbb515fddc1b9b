//! Matrix products against a slow, obvious triple loop.

use glorot_tensor::{Float, gemm};
use ndarray::{Array2, ArrayView2, s};
use proptest::prelude::*;

use super::common::{eps, random_matrix, rng};

/// The naive product in f64: `alpha * a * b + beta * c`, plus the bound
/// `sum_l |a_il| |b_lj|` per entry used for the rounding tolerance.
fn naive(
    alpha: f64,
    a: ArrayView2<f64>,
    b: ArrayView2<f64>,
    beta: f64,
    c: ArrayView2<f64>,
) -> (Array2<f64>, Array2<f64>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut out = Array2::zeros((m, n));
    let mut mag = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            let mut abs = 0.0;
            for l in 0..k {
                acc += a[[i, l]] * b[[l, j]];
                abs += (a[[i, l]] * b[[l, j]]).abs();
            }
            out[[i, j]] = alpha * acc + beta * c[[i, j]];
            mag[[i, j]] = alpha.abs() * abs + beta.abs() * c[[i, j]].abs();
        }
    }
    (out, mag)
}

#[derive(Debug, Clone)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
    alpha: f64,
    beta: f64,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    // Shapes straddle ndarray's BLAS cutoff (every dimension <= 7 uses matrixmultiply).
    (
        1usize..40,
        1usize..40,
        1usize..40,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(m, k, n, ta, tb)| {
            (
                Just((m, k, n, ta, tb)),
                prop_oneof![Just(1.0), Just(0.0), Just(-0.5), -2.0f64..2.0],
                prop_oneof![Just(0.0), Just(1.0), Just(-1.5), -2.0f64..2.0],
                any::<u64>(),
            )
        })
        .prop_map(|((m, k, n, trans_a, trans_b), alpha, beta, seed)| Case {
            m,
            k,
            n,
            trans_a,
            trans_b,
            alpha,
            beta,
            seed,
        })
}

/// Runs one case in `F`: operands stored transposed when asked and passed as `.t()` views.
fn check<F: Float>(c: &Case) {
    let mut r = rng(c.seed);
    // Stored shapes: a as (k, m) when transposed, so a.t() is (m, k).
    let a_store: Array2<F> = if c.trans_a {
        random_matrix(c.k, c.m, &mut r)
    } else {
        random_matrix(c.m, c.k, &mut r)
    };
    let b_store: Array2<F> = if c.trans_b {
        random_matrix(c.n, c.k, &mut r)
    } else {
        random_matrix(c.k, c.n, &mut r)
    };
    let a = if c.trans_a {
        a_store.t()
    } else {
        a_store.view()
    };
    let b = if c.trans_b {
        b_store.t()
    } else {
        b_store.view()
    };
    let mut out: Array2<F> = random_matrix(c.m, c.n, &mut r);
    let c0 = out.mapv(|v| v.to_f64());
    let (a64, b64) = (a.mapv(|v| v.to_f64()), b.mapv(|v| v.to_f64()));
    let (expected, mag) = naive(c.alpha, a64.view(), b64.view(), c.beta, c0.view());

    gemm(
        F::from_f64(c.alpha),
        a,
        b,
        F::from_f64(c.beta),
        out.view_mut(),
    );

    // Each entry is a k-term dot product: rounding error is at most about
    // (k + 2) * eps * sum |terms| (Higham, Accuracy and Stability, eq. 3.5); alpha and beta
    // themselves are rounded to F, which adds eps relative error to each term.
    let tol_scale = (c.k as f64 + 4.0) * eps::<F>();
    for ((i, j), &got) in out.indexed_iter() {
        let tol = tol_scale * mag[[i, j]] + f64::MIN_POSITIVE;
        assert!(
            (got.to_f64() - expected[[i, j]]).abs() <= tol,
            "{} {c:?}: c[{i},{j}] = {got}, naive {} (tolerance {tol:e})",
            F::NAME,
            expected[[i, j]]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gemm_matches_naive_triple_loop_f32(c in case()) {
        check::<f32>(&c);
    }

    #[test]
    fn gemm_matches_naive_triple_loop_f64(c in case()) {
        check::<f64>(&c);
    }
}

/// The products of one training step at the notebook's shapes (batch 32, 784-500-500-10):
/// forward x w, backward h^T delta and delta w^T, all against the naive loop.
fn model_shapes<F: Float>() {
    for (m, k, n, ta, tb) in [
        (32, 500, 10, false, false), // h2 w2
        (500, 32, 10, true, false),  // h2^T del2
        (32, 10, 500, false, true),  // del2 w2^T
        (784, 32, 20, true, false),  // x^T del0, narrowed to keep the test fast
    ] {
        check::<F>(&Case {
            m,
            k,
            n,
            trans_a: ta,
            trans_b: tb,
            alpha: 1.0 / 32.0,
            beta: 0.0,
            seed: (m * k * n) as u64,
        });
    }
}

/// Strided (non-BLAS) views take the matrixmultiply fallback and must give the same
/// result as contiguous copies.
fn strided_views_fall_back_correctly<F: Float>() {
    let mut r = rng(11);
    let a: Array2<F> = random_matrix(40, 30, &mut r);
    let b: Array2<F> = random_matrix(30, 50, &mut r);
    let a_s = a.slice(s![..;2, ..]); // (20, 30), row stride 60
    let b_s = b.slice(s![.., ..;3]); // (30, 17), column stride 3
    let mut c1 = Array2::<F>::zeros((20, 17));
    let mut c2 = Array2::<F>::zeros((20, 17));
    gemm(F::one(), a_s, b_s, F::zero(), c1.view_mut());
    gemm(
        F::one(),
        a_s.to_owned().view(),
        b_s.to_owned().view(),
        F::zero(),
        c2.view_mut(),
    );
    let tol = 40.0 * eps::<F>() * 30.0;
    for (&x, &y) in c1.iter().zip(&c2) {
        assert!((x.to_f64() - y.to_f64()).abs() <= tol);
    }
    // Writing into a strided output view as well.
    let mut big = Array2::<F>::zeros((40, 34));
    gemm(F::one(), a_s, b_s, F::zero(), big.slice_mut(s![..;2, ..;2]));
    for (&x, &y) in big.slice(s![..;2, ..;2]).iter().zip(&c2) {
        assert!((x.to_f64() - y.to_f64()).abs() <= tol);
    }
    assert!(big.slice(s![1..;2, ..]).iter().all(|&v| v == F::zero()));
}

/// BLAS semantics: with beta = 0 the old contents of c are not read, even NaN.
fn beta_zero_ignores_nan<F: Float>() {
    let mut r = rng(3);
    let a: Array2<F> = random_matrix(16, 9, &mut r);
    let b: Array2<F> = random_matrix(9, 12, &mut r);
    let mut c = Array2::from_elem((16, 12), F::nan());
    gemm(F::one(), a.view(), b.view(), F::zero(), c.view_mut());
    assert!(c.iter().all(|v| v.is_finite()));
}

crate::both_floats!(
    model_shapes,
    strided_views_fall_back_correctly,
    beta_zero_ignores_nan
);
