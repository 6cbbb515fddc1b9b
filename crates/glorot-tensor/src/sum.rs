//! NumPy's pairwise summation, reproduced operation for operation.

use ndarray::ArrayView1;

use crate::Float;

/// NumPy's unroll block: below this many elements the sum is one unrolled pass.
const PW_BLOCKSIZE: usize = 128;

/// Sums `a` in exactly the order NumPy's `np.sum` uses for a contiguous 1-D run of
/// values (`pairwise_sum` in `numpy/_core/src/umath/loops_utils.h.src`), so results agree
/// with NumPy bit for bit.
///
/// The order: fewer than 8 values are added left to right; up to 128 values go into 8
/// interleaved accumulators (`r[j] += a[i + j]`), combined as
/// `((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`, then the tail is added in order;
/// longer runs split at half the length rounded down to a multiple of 8 and recurse.
/// It is also more accurate than a left-to-right loop (error grows like `log n`).
///
/// Like NumPy's reduction, the pairwise result is added to a starting `0.0`, so only the
/// sign of a zero sum can differ from the bare pairwise value (`np.sum([-0.0])` is `0.0`).
///
/// This is the order of `np.sum(a, axis=-1)` and `np.mean(a, axis=-1)` on C-contiguous
/// arrays; reductions over other axes of a C-order array add whole rows in order instead
/// (see [`column_sums`](crate::column_sums)).
///
/// ```
/// use glorot_tensor::pairwise_sum;
/// use ndarray::array;
///
/// let a = array![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
/// assert_eq!(pairwise_sum(a.view()), 55.0);
/// ```
pub fn pairwise_sum<F: Float>(a: ArrayView1<F>) -> F {
    match a.as_slice() {
        Some(s) => pairwise_sum_by(s.len(), |i| s[i]),
        None => pairwise_sum_by(a.len(), |i| a[i]),
    }
}

/// [`pairwise_sum`] over values produced on demand: sums `f(0), f(1), ..., f(n - 1)` in
/// NumPy's pairwise order, calling `f` exactly once per index. Lets a loss sum terms
/// without materialising them.
///
/// ```
/// use glorot_tensor::pairwise_sum_by;
///
/// let s: f64 = pairwise_sum_by(4, |i| i as f64);
/// assert_eq!(s, 6.0);
/// ```
#[inline]
pub fn pairwise_sum_by<F: Float>(n: usize, f: impl Fn(usize) -> F) -> F {
    // NumPy's reduce loop computes `*out += pairwise_sum(...)` with `*out` starting at 0.0.
    F::zero() + pairwise_rec(0, n, &f)
}

fn pairwise_rec<F: Float>(start: usize, n: usize, f: &impl Fn(usize) -> F) -> F {
    if n < 8 {
        // NumPy starts from `res = 0.` and adds every element.
        let mut res = F::zero();
        for i in start..start + n {
            res = res + f(i);
        }
        res
    } else if n <= PW_BLOCKSIZE {
        let mut r = [F::zero(); 8];
        for (j, rj) in r.iter_mut().enumerate() {
            *rj = f(start + j);
        }
        let end8 = n - n % 8;
        let mut i = 8;
        while i < end8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj = *rj + f(start + i + j);
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res = res + f(start + i);
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_rec(start, n2, f) + pairwise_rec(start + n2, n - n2, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sums_are_left_to_right() {
        // (0.1 + 0.2) + 0.3 = 0.6000000000000001 in f64, while 0.1 + (0.2 + 0.3) = 0.6:
        // the left-to-right result is the one NumPy prints for np.sum([0.1, 0.2, 0.3]).
        let v = [0.1f64, 0.2, 0.3];
        assert_eq!(pairwise_sum_by(3, |i| v[i]), 0.6000000000000001);
    }

    #[test]
    fn empty_sum_is_zero() {
        assert_eq!(pairwise_sum_by::<f32>(0, |_| unreachable!()), 0.0);
    }
}
