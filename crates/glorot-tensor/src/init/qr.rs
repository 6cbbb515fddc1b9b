//! Thin QR decomposition by Householder reflections, for the orthogonal initializer.
//!
//! The orthogonal initializer needs the `Q` factor of a tall matrix of standard normal
//! draws. This is the textbook unblocked algorithm (Golub and Van Loan, *Matrix
//! Computations*, chapter 5: Householder QR, then `Q` by backward accumulation) with
//! LAPACK's reflector convention (`dlarfg`): column `j` is mapped onto `beta e_j` with
//! `beta = -sign(x_j) ||x||`, and a column that is already zero below the diagonal gets
//! no reflection at all. LAPACK's blocked `dgeqrf`/`dorgqr` compute the same factors up
//! to rounding (`tests/suite/init.rs` compares against values LAPACK gave).
//!
//! The norms are plain sums of squares, without LAPACK's rescaling against overflow:
//! entries beyond about `1e150` in magnitude would overflow, which standard normal draws
//! never reach.

use ndarray::{Array2, ArrayView2, ShapeBuilder};

/// The reduced factors of a `(m, n)` matrix `a` with `m >= n`: `a = q r`.
///
/// The signs are LAPACK's, not normalized: `r`'s diagonal may be negative.
#[derive(Debug)]
pub(super) struct ThinQr {
    /// `(m, n)`, orthonormal columns.
    pub(super) q: Array2<f64>,
    /// `(n, n)`, upper triangular.
    pub(super) r: Array2<f64>,
}

/// Householder QR of `a: (m, n)`, `m >= n`.
///
/// # Panics
/// If `a` has more columns than rows.
#[track_caller]
pub(super) fn thin_qr(a: ArrayView2<f64>) -> ThinQr {
    let (m, n) = a.dim();
    assert!(m >= n, "thin_qr: a is {m}x{n}, needs rows >= cols");
    // Column-major working copy: column j is `work[j * m..(j + 1) * m]`, so every
    // reflection reads and writes contiguous memory. After step j, rows j.. of column j
    // hold the reflector v_j (H_j = I - tau_j v_j v_j^T), and rows ..j of the later
    // columns hold R's entries above the diagonal.
    let mut work: Vec<f64> = a.t().iter().copied().collect();
    let mut tau = vec![0.0; n];
    let mut r = Array2::zeros((n, n));
    for j in 0..n {
        let (done, rest) = work.split_at_mut((j + 1) * m);
        let x = &mut done[j * m + j..];
        let tail = dot(&x[1..], &x[1..]).sqrt();
        if tail == 0.0 {
            // Already zero below the diagonal: H_j = I (LAPACK's tau = 0).
            r[[j, j]] = x[0];
            x.fill(0.0);
            continue;
        }
        let beta = -x[0].hypot(tail).copysign(x[0]);
        // v = x - beta e_1; x[0] and -beta have the same sign, so nothing cancels.
        x[0] -= beta;
        tau[j] = 2.0 / dot(x, x);
        r[[j, j]] = beta;
        for col in rest.chunks_exact_mut(m) {
            reflect(tau[j], x, &mut col[j..]);
        }
    }
    for i in 0..n {
        for k in i + 1..n {
            r[[i, k]] = work[k * m + i];
        }
    }
    // Q = H_0 H_1 ... H_{n-1} I[:, ..n], applied right to left (Golub and Van Loan's
    // backward accumulation): H_j only touches rows j.., where the columns before j of
    // the partial product are still zero.
    let mut q = vec![0.0; m * n];
    for j in 0..n {
        q[j * m + j] = 1.0;
    }
    for j in (0..n).rev() {
        if tau[j] == 0.0 {
            continue;
        }
        let v = &work[j * m + j..(j + 1) * m];
        for col in q.chunks_exact_mut(m).skip(j) {
            reflect(tau[j], v, &mut col[j..]);
        }
    }
    let q = Array2::from_shape_vec((m, n).f(), q).expect("m * n entries, column-major");
    ThinQr { q, r }
}

/// `y = (I - tau v v^T) y`.
fn reflect(tau: f64, v: &[f64], y: &mut [f64]) {
    let s = tau * dot(v, y);
    for (y, &v) in y.iter_mut().zip(v) {
        *y -= s * v;
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, array};

    use super::{ThinQr, thin_qr};

    /// `max |actual - expected| <= tol`, entry by entry.
    #[track_caller]
    fn assert_close(actual: &Array2<f64>, expected: &Array2<f64>, tol: f64) {
        assert_eq!(actual.dim(), expected.dim());
        let worst = (actual - expected)
            .iter()
            .fold(0.0, |m: f64, d| m.max(d.abs()));
        assert!(
            worst <= tol,
            "off by {worst:e} > {tol:e}:\n{actual}\nvs\n{expected}"
        );
    }

    /// The factors with `diag(R) >= 0` (unique for a full-rank matrix).
    fn positive(ThinQr { mut q, mut r }: ThinQr) -> (Array2<f64>, Array2<f64>) {
        for j in 0..r.nrows() {
            if r[[j, j]] < 0.0 {
                q.column_mut(j).mapv_inplace(|v| -v);
                r.row_mut(j).mapv_inplace(|v| -v);
            }
        }
        (q, r)
    }

    /// Gram-Schmidt by hand: a = [[3, 1], [4, 2]]. q0 = (3, 4) / 5, r00 = 5;
    /// r01 = q0 . (1, 2) = (3 + 8) / 5 = 2.2; (1, 2) - 2.2 q0 = (-0.32, 0.24), of norm 0.4,
    /// so q1 = (-0.8, 0.6) and r11 = 0.4.
    #[test]
    fn square_by_hand() {
        let (q, r) = positive(thin_qr(array![[3.0, 1.0], [4.0, 2.0]].view()));
        assert_close(&q, &array![[0.6, -0.8], [0.8, 0.6]], 1e-15);
        assert_close(&r, &array![[5.0, 2.2], [0.0, 0.4]], 1e-15);
    }

    /// Gram-Schmidt by hand: a = [[1, 1], [2, 0], [2, 1]]. q0 = (1, 2, 2) / 3, r00 = 3;
    /// r01 = q0 . (1, 0, 1) = 1; (1, 0, 1) - q0 = (2, -2, 1) / 3, of norm 1, so
    /// q1 = (2, -2, 1) / 3 and r11 = 1.
    #[test]
    fn tall_by_hand() {
        let (q, r) = positive(thin_qr(array![[1.0, 1.0], [2.0, 0.0], [2.0, 1.0]].view()));
        let third = 1.0 / 3.0;
        let expected = array![[1.0, 2.0], [2.0, -2.0], [2.0, 1.0]] * third;
        assert_close(&q, &expected, 1e-15);
        assert_close(&r, &array![[3.0, 1.0], [0.0, 1.0]], 1e-15);
    }

    /// Columns already zero below the diagonal get no reflection (LAPACK's `tau = 0`):
    /// Q stays the identity and R is `a`, zero column included.
    #[test]
    fn no_reflection_needed() {
        let a = array![[0.0, 1.0], [0.0, 2.0]];
        let ThinQr { q, r } = thin_qr(a.view());
        assert_eq!(q, Array2::eye(2));
        assert_eq!(r, a);
        let ThinQr { q, r } = thin_qr(array![[-2.0]].view());
        assert_eq!((q, r), (array![[1.0]], array![[-2.0]]));
    }

    /// `q r = a`, `q^T q = I` and `r` upper triangular on a 7x4 matrix with entries from a
    /// fixed formula (a sine keeps it full rank and unstructured). Tolerance: a few
    /// hundred ulps of the entries' size (Householder QR is backward stable, with errors
    /// of order m * n * eps).
    #[test]
    fn reconstructs_and_is_orthonormal() {
        let a = Array2::from_shape_fn((7, 4), |(i, j)| ((3 * i + 5 * j) as f64).sin() + 0.1);
        let ThinQr { q, r } = thin_qr(a.view());
        assert_eq!((q.dim(), r.dim()), ((7, 4), (4, 4)));
        assert_close(&q.dot(&r), &a, 1e-14);
        assert_close(&q.t().dot(&q), &Array2::eye(4), 1e-14);
        for i in 0..4 {
            for k in 0..i {
                assert_eq!(r[[i, k]], 0.0);
            }
        }
    }

    #[test]
    #[should_panic(expected = "needs rows >= cols")]
    fn wide_panics() {
        thin_qr(Array2::zeros((2, 3)).view());
    }
}
