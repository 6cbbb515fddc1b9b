//! Sparse-input kernels written once over [`Simd`]: the scan of an input's nonzeros, and
//! the products and updates that sum only them (`f32` and `f64`), each element the same
//! fused multiply-add chain over the nonzeros, in the same order, as the AVX-512 ones.
//!
//! Building one of these operations is safe, running it ([`Simd::vectorize`]) is sound
//! only under the `# Safety` stated on its type: the parent module's wrappers check it.
#![allow(unsafe_code)]

use super::math::{Act, apply};
use super::simd::{Simd, WithSimd};
use super::tiled::{Elem, load_v, sgd_step, store_v};

/// Vectors per block of output columns of the sparse kernels.
pub(super) const SPARSE_NV: usize = 8;

/// The nonzeros of `rows` rows of `x` (`x[i, j] = x[i * ldx + j]`, `cols` columns), row
/// by row in column order (CSR): row `i` holds `idx[ptr[i]..ptr[i + 1]]` and `vals[..]`.
/// NaN counts as nonzero, `-0` does not. Returns the number of nonzeros.
///
/// # Safety
/// `x` addresses `rows x cols` elements with row stride `ldx`; `ptr.len() > rows`;
/// `idx` and `vals` hold at least `rows * cols` elements (else a panic).
pub(super) struct Scan<'a, T> {
    pub(super) x: *const T,
    pub(super) shape: (usize, usize, usize),
    pub(super) ptr: &'a mut [u32],
    pub(super) idx: &'a mut [u32],
    pub(super) vals: &'a mut [T],
}

impl<S: Simd, T: Elem<S>> WithSimd<S> for Scan<'_, T> {
    type Output = usize;

    #[inline(always)]
    fn with_simd(self, s: S) -> usize {
        let (rows, cols, ldx) = self.shape;
        let l = T::LANES;
        let mut pos = 0usize;
        for i in 0..rows {
            self.ptr[i] = pos as u32;
            let mut j = 0;
            while j < cols {
                let left = cols - j;
                // SAFETY: row i, columns j.. (all L when left >= L, else the tail's).
                let (mut bits, row) = unsafe {
                    let p = self.x.add(i * ldx + j);
                    let v = if left >= l {
                        T::load(s, p)
                    } else {
                        T::load_tail(s, T::tail(s, left), p)
                    };
                    (T::nonzero_bits(s, v), p)
                };
                if left < l {
                    bits &= (1u32 << left) - 1;
                }
                while bits != 0 {
                    let lane = bits.trailing_zeros() as usize;
                    self.idx[pos] = (j + lane) as u32;
                    // SAFETY: lane < min(left, L): a column of row i.
                    self.vals[pos] = unsafe { *row.add(lane) };
                    pos += 1;
                    bits &= bits - 1;
                }
                j += l;
            }
        }
        self.ptr[rows] = pos as u32;
        pos
    }
}

/// `sum over k of vals[k] * m[idx[k], j0 ..]` for `SPARSE_NV` vectors of columns (the
/// tails' lanes), one fused multiply-add chain per lane in `k` order from `+0`, the
/// accumulators in registers (run through [`Simd::vectorize`]: a function of its own).
///
/// Safety: every `idx[k]` is a row of `m` (row stride `ldm`) whose columns from `j0`
/// under the tails (all when `FULL`) are in bounds.
struct SparseDots<'a, S: Simd, T: Elem<S>, const FULL: bool> {
    idx: &'a [u32],
    vals: &'a [T],
    m: *const T,
    ldm: usize,
    j0: usize,
    tails: [T::Tail; SPARSE_NV],
}

impl<S: Simd, T: Elem<S>, const FULL: bool> WithSimd<S> for SparseDots<'_, S, T, FULL> {
    type Output = [T::V; SPARSE_NV];

    #[inline(always)]
    fn with_simd(self, s: S) -> [T::V; SPARSE_NV] {
        let mut acc = [T::zero(s); SPARSE_NV];
        for (&p, &x) in self.idx.iter().zip(self.vals) {
            let xv = T::splat(s, x);
            // SAFETY: row p of m, the tails' columns (the builder's obligation).
            let row = unsafe { self.m.add(p as usize * self.ldm + self.j0) };
            #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
            for v in 0..SPARSE_NV {
                // SAFETY: as above.
                let mv = unsafe { load_v::<S, T, FULL>(s, self.tails[v], row.add(T::LANES * v)) };
                acc[v] = T::fmadd(s, xv, mv, acc[v]);
            }
        }
        acc
    }
}

/// Calls `f::<FULL>` for each block of `LANES * SPARSE_NV` columns from `c0` to `n`,
/// with the block's first column and tails.
macro_rules! for_column_blocks {
    ($s:ident, $t:ty, ($c0:expr, $n:expr), |$j0:ident, $tails:ident, $full:ident| $body:block) => {{
        let nr = <$t as Elem<S>>::LANES * SPARSE_NV;
        let mut $j0 = $c0;
        while $j0 < $n {
            let cols = nr.min($n - $j0);
            let $tails: [<$t as Elem<S>>::Tail; SPARSE_NV] = std::array::from_fn(|v| {
                <$t as Elem<S>>::tail($s, cols.saturating_sub(<$t as Elem<S>>::LANES * v))
            });
            if cols == nr {
                const $full: bool = true;
                $body
            } else {
                const $full: bool = false;
                $body
            }
            $j0 += nr;
        }
    }};
}

/// `out[i, j] = act(bias[j] + sum over the nonzeros (p, v) of row i of v * w[p, j])` for
/// rows `r0..r1` of a CSR matrix and output columns `c0..n`.
///
/// # Safety
/// Every index in `idx[ptr[r0]..ptr[r1]]` is a row of `w` (row stride `ldw`); `w`
/// addresses those rows' `n` columns, `bias` `n` elements, `out` `r1 x n` with row
/// stride `ldo`; no other thread writes the same part of `out` meanwhile.
pub(super) struct CsrForward<'a> {
    pub(super) rows: (usize, usize),
    pub(super) cols: (usize, usize),
    pub(super) csr: (&'a [u32], &'a [u32], &'a [f32]),
    pub(super) w: (*const f32, usize),
    pub(super) bias: *const f32,
    pub(super) act: Act,
    pub(super) out: (*mut f32, usize),
}

impl<S: Simd> WithSimd<S> for CsrForward<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        let (ptr, idx, vals) = self.csr;
        let ((w, ldw), (out, ldo), l) = (self.w, self.out, S::L32);
        for_column_blocks!(s, f32, (self.cols.0, self.cols.1), |j0, tails, FULL| {
            // SAFETY: the tails' lanes stay below n.
            let bv: [S::F32; SPARSE_NV] = std::array::from_fn(|v| unsafe {
                load_v::<S, f32, FULL>(s, tails[v], self.bias.add(j0 + l * v))
            });
            for i in self.rows.0..self.rows.1 {
                let (lo, hi) = (ptr[i] as usize, ptr[i + 1] as usize);
                let acc = s.vectorize(SparseDots::<S, f32, FULL> {
                    idx: &idx[lo..hi],
                    vals: &vals[lo..hi],
                    m: w,
                    ldm: ldw,
                    j0,
                    tails,
                });
                for v in 0..SPARSE_NV {
                    let z = apply(s, self.act, s.add(acc[v], bv[v]));
                    // SAFETY: row i < r1, the tails' columns below n.
                    unsafe {
                        store_v::<S, f32, FULL>(s, tails[v], out.add(i * ldo + j0 + l * v), z)
                    };
                }
            }
        });
    }
}

/// `w[p, j] += neg_scale * sum over the nonzeros (i, v) of column p of v * d[i, j]` for
/// the columns `p0..p1` of a CSC matrix and the columns `c0..n` of `w` and `d`; columns
/// without nonzeros are left alone.
///
/// # Safety
/// `w` addresses `p1 x n` elements with row stride `ldw`; every row index of the
/// columns is a row of `d` (row stride `ldd`, `n` columns); no other thread touches the
/// same part of `w` meanwhile.
pub(super) struct CscUpdate<'a> {
    pub(super) pixels: (usize, usize),
    pub(super) cols: (usize, usize),
    pub(super) csc: (&'a [u32], &'a [u32], &'a [f32]),
    pub(super) d: (*const f32, usize),
    pub(super) w: (*mut f32, usize),
    pub(super) neg_scale: f32,
}

impl<S: Simd> WithSimd<S> for CscUpdate<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        let (ptr, rows_idx, vals) = self.csc;
        let ((d, ldd), (w, ldw), l) = (self.d, self.w, S::L32);
        let k = s.splat(self.neg_scale);
        for_column_blocks!(s, f32, (self.cols.0, self.cols.1), |j0, tails, FULL| {
            for p in self.pixels.0..self.pixels.1 {
                let (lo, hi) = (ptr[p] as usize, ptr[p + 1] as usize);
                if lo == hi {
                    continue; // the pixel is zero in the whole batch: no change
                }
                let acc = s.vectorize(SparseDots::<S, f32, FULL> {
                    idx: &rows_idx[lo..hi],
                    vals: &vals[lo..hi],
                    m: d,
                    ldm: ldd,
                    j0,
                    tails,
                });
                for v in 0..SPARSE_NV {
                    // SAFETY: row p of w, the tails' columns below n.
                    unsafe {
                        let q = w.add(p * ldw + j0 + l * v);
                        let old = load_v::<S, f32, FULL>(s, tails[v], q);
                        store_v::<S, f32, FULL>(s, tails[v], q, s.fmadd(k, acc[v], old));
                    }
                }
            }
        });
    }
}

/// `out[i, j] = sum over the nonzeros (p, v) of row i of v * w[p, j]`, one fused
/// multiply-add chain per element over the nonzeros in column order, from `+0`, for rows
/// `r0..r1` of a CSR matrix and output columns `c0..n`.
///
/// # Safety
/// As [`CsrForward`] (without a bias).
pub(super) struct CsrProduct64<'a> {
    pub(super) rows: (usize, usize),
    pub(super) cols: (usize, usize),
    pub(super) csr: (&'a [u32], &'a [u32], &'a [f64]),
    pub(super) w: (*const f64, usize),
    pub(super) out: (*mut f64, usize),
}

impl<S: Simd> WithSimd<S> for CsrProduct64<'_> {
    type Output = ();

    /// Rows are taken [`ROW_CHUNK`] at a time, ordered by their number of nonzeros, and
    /// summed [`GROUP_ROWS`] at a time over a narrow block of columns ([`GROUP_NV`]
    /// vectors): the block's rows of `w` stay in the L1 cache for the whole chunk, and the
    /// group's chains are independent, so the fused multiply-adds overlap (one row's
    /// chains over 32 columns, as [`SparseDots`] sums them, wait on the L2 cache for
    /// `w`). Each element's chain, and so its bits, is the same either way.
    #[inline(always)]
    fn with_simd(self, s: S) {
        let (ptr, idx, vals) = self.csr;
        let ((w, ldw), (out, ldo)) = (self.w, self.out);
        let nr = S::L64 * GROUP_NV;
        let mut order = [0u32; ROW_CHUNK];
        let mut r0 = self.rows.0;
        while r0 < self.rows.1 {
            let r1 = (r0 + ROW_CHUNK).min(self.rows.1);
            let order = &mut order[..r1 - r0];
            for (o, i) in order.iter_mut().zip(r0..r1) {
                *o = i as u32;
            }
            let nnz = |i: u32| ptr[i as usize + 1] - ptr[i as usize];
            order.sort_unstable_by_key(|&i| (nnz(i), i));
            let mut j0 = self.cols.0;
            while j0 < self.cols.1 {
                let cols = nr.min(self.cols.1 - j0);
                let tails: [S::Tail64; GROUP_NV] =
                    std::array::from_fn(|v| s.tail64(cols.saturating_sub(S::L64 * v)));
                let block = RowBlock {
                    ptr,
                    idx,
                    vals,
                    w: (w, ldw),
                    out: (out, ldo),
                    j0,
                    tails,
                };
                if cols == nr {
                    block.rows::<true>(s, order);
                } else {
                    block.rows::<false>(s, order);
                }
                j0 += nr;
            }
            r0 = r1;
        }
    }
}

/// Rows of [`CsrProduct64`] taken at a time (ordered by their number of nonzeros).
const ROW_CHUNK: usize = 128;
/// Rows whose chains [`CsrProduct64`] sums together.
const GROUP_ROWS: usize = 4;
/// Vectors of columns per block of [`CsrProduct64`].
const GROUP_NV: usize = 2;

/// One block of [`CsrProduct64`]'s columns (from `j0`, the tails' lanes), for any rows.
struct RowBlock<'a, S: Simd> {
    ptr: &'a [u32],
    idx: &'a [u32],
    vals: &'a [f64],
    w: (*const f64, usize),
    out: (*mut f64, usize),
    j0: usize,
    tails: [S::Tail64; GROUP_NV],
}

impl<S: Simd> RowBlock<'_, S> {
    /// The block's outputs of the rows `order` lists: [`GROUP_ROWS`] at a time over
    /// their common length, then each row's remaining nonzeros alone.
    ///
    /// Safety: as [`CsrProduct64`] (the caller, which holds those obligations, calls
    /// this only for its rows and columns).
    #[inline(always)]
    fn rows<const FULL: bool>(&self, s: S, order: &[u32]) {
        let mut groups = order.chunks_exact(GROUP_ROWS);
        for group in &mut groups {
            let lo: [usize; GROUP_ROWS] =
                std::array::from_fn(|r| self.ptr[group[r] as usize] as usize);
            let hi: [usize; GROUP_ROWS] =
                std::array::from_fn(|r| self.ptr[group[r] as usize + 1] as usize);
            let common = (0..GROUP_ROWS).map(|r| hi[r] - lo[r]).min().unwrap_or(0);
            let acc = s.vectorize(Chains::<S, GROUP_ROWS, FULL> {
                block: self,
                starts: lo,
                len: common,
                acc: [[s.zero64(); GROUP_NV]; GROUP_ROWS],
            });
            for r in 0..GROUP_ROWS {
                let acc = s.vectorize(Chains::<S, 1, FULL> {
                    block: self,
                    starts: [lo[r] + common],
                    len: hi[r] - lo[r] - common,
                    acc: [acc[r]],
                });
                self.store::<FULL>(s, group[r] as usize, &acc[0]);
            }
        }
        for &i in groups.remainder() {
            let (lo, hi) = (
                self.ptr[i as usize] as usize,
                self.ptr[i as usize + 1] as usize,
            );
            let acc = s.vectorize(Chains::<S, 1, FULL> {
                block: self,
                starts: [lo],
                len: hi - lo,
                acc: [[s.zero64(); GROUP_NV]],
            });
            self.store::<FULL>(s, i as usize, &acc[0]);
        }
    }

    /// Writes row `i`'s outputs of the block.
    #[inline(always)]
    fn store<const FULL: bool>(&self, s: S, i: usize, acc: &[S::F64; GROUP_NV]) {
        let (out, ldo) = self.out;
        for (v, (&tail, &a)) in self.tails.iter().zip(acc).enumerate() {
            // SAFETY: row i is one of the caller's rows, the tails' columns below n.
            unsafe { store_v::<S, f64, FULL>(s, tail, out.add(i * ldo + self.j0 + S::L64 * v), a) };
        }
    }
}

/// `len` more steps of the chains of `R` rows over one column block: row `r`'s nonzeros
/// `starts[r]..starts[r] + len`, each step one fused multiply-add per lane into `acc[r]`
/// (run through [`Simd::vectorize`]: the accumulators stay in registers).
///
/// Safety: every row's `starts[r] + len` is within its CSR row (so its indices are rows
/// of `w`), and the block's columns are in bounds ([`RowBlock`]'s obligations).
struct Chains<'a, 'b, S: Simd, const R: usize, const FULL: bool> {
    block: &'b RowBlock<'a, S>,
    starts: [usize; R],
    len: usize,
    acc: [[S::F64; GROUP_NV]; R],
}

impl<S: Simd, const R: usize, const FULL: bool> WithSimd<S> for Chains<'_, '_, S, R, FULL> {
    type Output = [[S::F64; GROUP_NV]; R];

    #[inline(always)]
    fn with_simd(self, s: S) -> [[S::F64; GROUP_NV]; R] {
        let Self {
            block,
            starts,
            len,
            mut acc,
        } = self;
        let (w, ldw) = block.w;
        let idx: [&[u32]; R] = std::array::from_fn(|r| &block.idx[starts[r]..starts[r] + len]);
        let vals: [&[f64]; R] = std::array::from_fn(|r| &block.vals[starts[r]..starts[r] + len]);
        for t in 0..len {
            #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
            for r in 0..R {
                // SAFETY: t < len, the length of both slices.
                let (p, x) = unsafe { (*idx[r].get_unchecked(t), *vals[r].get_unchecked(t)) };
                let xv = s.splat64(x);
                // SAFETY: p is a row of w; the block's columns are in bounds.
                let row = unsafe { w.add(p as usize * ldw + block.j0) };
                for v in 0..GROUP_NV {
                    // SAFETY: as above.
                    let mv =
                        unsafe { load_v::<S, f64, FULL>(s, block.tails[v], row.add(S::L64 * v)) };
                    acc[r][v] = s.fmadd64(xv, mv, acc[r][v]);
                }
            }
        }
        acc
    }
}

/// The notebook's SGD update of the rows `p0..p1` of `w` from a CSC matrix (rows, values)
/// and `d`: for each column `p` with nonzeros, `g` the fused multiply-add chain over its
/// nonzeros in order from `+0`, then `w[p, j] = w[p, j] - lr * (g * inv_n)` (or `(g / n)`
/// when `divide`), each operation rounded once. Columns without nonzeros are left alone.
///
/// # Safety
/// `w` addresses rows `p0..p1` of `n` elements with stride `ldw`; every row index is a
/// row of `d` (`n` elements, stride `ldd`); no other thread touches those rows of `w`
/// meanwhile.
pub(super) struct CscSgd64<'a> {
    pub(super) pixels: (usize, usize),
    pub(super) n: usize,
    pub(super) csc: (&'a [u32], &'a [u32], &'a [f64]),
    pub(super) d: (*const f64, usize),
    pub(super) w: (*mut f64, usize),
    pub(super) step: (f64, f64, f64, bool),
}

impl<S: Simd> WithSimd<S> for CscSgd64<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        let (ptr, rows_idx, vals) = self.csc;
        let ((d, ldd), (w, ldw), l) = (self.d, self.w, S::L64);
        for_column_blocks!(s, f64, (0, self.n), |j0, tails, FULL| {
            for p in self.pixels.0..self.pixels.1 {
                let (lo, hi) = (ptr[p] as usize, ptr[p + 1] as usize);
                if lo == hi {
                    continue;
                }
                let acc = s.vectorize(SparseDots::<S, f64, FULL> {
                    idx: &rows_idx[lo..hi],
                    vals: &vals[lo..hi],
                    m: d,
                    ldm: ldd,
                    j0,
                    tails,
                });
                for v in 0..SPARSE_NV {
                    // SAFETY: row p of w, the tails' columns below n.
                    unsafe {
                        let q = w.add(p * ldw + j0 + l * v);
                        let old = load_v::<S, f64, FULL>(s, tails[v], q);
                        let new = sgd_step(s, old, acc[v], self.step);
                        store_v::<S, f64, FULL>(s, tails[v], q, new);
                    }
                }
            }
        });
    }
}
