//! The register-tiled matrix products (`f32` and `f64`), written once over [`Simd`] and
//! the element type ([`Elem`]), and what they do with each finished tile (store, bias and
//! activation, SGD update): the same operations, in the same order, as the AVX-512
//! kernels, so every instruction set gives the same bits.
//!
//! Everything here is `unsafe` to call: the safe wrappers in the parent module hold the
//! token and have checked that every index the kernels touch is in bounds.
#![allow(unsafe_code)]

use super::math::{Act, apply};
use super::simd::{Simd, WithSimd};
use crate::fused::team;

/// An element type of the vector kernels, with the operations on its vectors.
pub(crate) trait Elem<S: Simd>: Copy + Send + Sync + 'static {
    /// A vector of `LANES` elements.
    type V: Copy;
    /// The first lanes of a vector (see [`Simd::tail32`]).
    type Tail: Copy;
    /// Lanes per vector.
    const LANES: usize;
    fn zero(s: S) -> Self::V;
    fn splat(s: S, x: Self) -> Self::V;
    fn fmadd(s: S, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn tail(s: S, n: usize) -> Self::Tail;
    fn nonzero_bits(s: S, v: Self::V) -> u32;
    /// # Safety
    /// As [`Simd::load`].
    unsafe fn load(s: S, p: *const Self) -> Self::V;
    /// # Safety
    /// As [`Simd::load_tail`].
    unsafe fn load_tail(s: S, t: Self::Tail, p: *const Self) -> Self::V;
    /// # Safety
    /// As [`Simd::store`].
    unsafe fn store(s: S, p: *mut Self, v: Self::V);
    /// # Safety
    /// As [`Simd::store_tail`].
    unsafe fn store_tail(s: S, t: Self::Tail, p: *mut Self, v: Self::V);
}

impl<S: Simd> Elem<S> for f32 {
    type V = S::F32;
    type Tail = S::Tail32;
    const LANES: usize = S::L32;
    #[inline(always)]
    fn zero(s: S) -> S::F32 {
        s.zero()
    }
    #[inline(always)]
    fn splat(s: S, x: f32) -> S::F32 {
        s.splat(x)
    }
    #[inline(always)]
    fn fmadd(s: S, a: S::F32, b: S::F32, c: S::F32) -> S::F32 {
        s.fmadd(a, b, c)
    }
    #[inline(always)]
    fn tail(s: S, n: usize) -> S::Tail32 {
        s.tail32(n)
    }
    #[inline(always)]
    fn nonzero_bits(s: S, v: S::F32) -> u32 {
        s.nonzero_bits(v)
    }
    #[inline(always)]
    unsafe fn load(s: S, p: *const f32) -> S::F32 {
        // SAFETY: forwarded.
        unsafe { s.load(p) }
    }
    #[inline(always)]
    unsafe fn load_tail(s: S, t: S::Tail32, p: *const f32) -> S::F32 {
        // SAFETY: forwarded.
        unsafe { s.load_tail(t, p) }
    }
    #[inline(always)]
    unsafe fn store(s: S, p: *mut f32, v: S::F32) {
        // SAFETY: forwarded.
        unsafe { s.store(p, v) }
    }
    #[inline(always)]
    unsafe fn store_tail(s: S, t: S::Tail32, p: *mut f32, v: S::F32) {
        // SAFETY: forwarded.
        unsafe { s.store_tail(t, p, v) }
    }
}

impl<S: Simd> Elem<S> for f64 {
    type V = S::F64;
    type Tail = S::Tail64;
    const LANES: usize = S::L64;
    #[inline(always)]
    fn zero(s: S) -> S::F64 {
        s.zero64()
    }
    #[inline(always)]
    fn splat(s: S, x: f64) -> S::F64 {
        s.splat64(x)
    }
    #[inline(always)]
    fn fmadd(s: S, a: S::F64, b: S::F64, c: S::F64) -> S::F64 {
        s.fmadd64(a, b, c)
    }
    #[inline(always)]
    fn tail(s: S, n: usize) -> S::Tail64 {
        s.tail64(n)
    }
    #[inline(always)]
    fn nonzero_bits(s: S, v: S::F64) -> u32 {
        s.nonzero_bits64(v)
    }
    #[inline(always)]
    unsafe fn load(s: S, p: *const f64) -> S::F64 {
        // SAFETY: forwarded.
        unsafe { s.load64(p) }
    }
    #[inline(always)]
    unsafe fn load_tail(s: S, t: S::Tail64, p: *const f64) -> S::F64 {
        // SAFETY: forwarded.
        unsafe { s.load_tail64(t, p) }
    }
    #[inline(always)]
    unsafe fn store(s: S, p: *mut f64, v: S::F64) {
        // SAFETY: forwarded.
        unsafe { s.store64(p, v) }
    }
    #[inline(always)]
    unsafe fn store_tail(s: S, t: S::Tail64, p: *mut f64, v: S::F64) {
        // SAFETY: forwarded.
        unsafe { s.store_tail64(t, p, v) }
    }
}

/// Loads a whole vector when `FULL`, else the lanes of `t`.
///
/// # Safety
/// As [`Elem::load`] or [`Elem::load_tail`].
#[inline(always)]
pub(super) unsafe fn load_v<S: Simd, T: Elem<S>, const FULL: bool>(
    s: S,
    t: T::Tail,
    p: *const T,
) -> T::V {
    // SAFETY: forwarded.
    unsafe {
        if FULL {
            T::load(s, p)
        } else {
            T::load_tail(s, t, p)
        }
    }
}

/// Stores a whole vector when `FULL`, else the lanes of `t`.
///
/// # Safety
/// As [`Elem::store`] or [`Elem::store_tail`].
#[inline(always)]
pub(super) unsafe fn store_v<S: Simd, T: Elem<S>, const FULL: bool>(
    s: S,
    t: T::Tail,
    p: *mut T,
    v: T::V,
) {
    // SAFETY: forwarded.
    unsafe {
        if FULL {
            T::store(s, p, v)
        } else {
            T::store_tail(s, t, p, v)
        }
    }
}

/// What [`gemm`] does with a tile of finished `f32` dot products (as the AVX-512 one).
#[derive(Clone, Copy, Debug)]
pub(super) enum Epilogue {
    /// `c[i, j] = acc`.
    Store { c: *mut f32, ldc: usize },
    /// `c[i, j] = act(acc + bias[j])`.
    BiasAct {
        c: *mut f32,
        ldc: usize,
        bias: *const f32,
        act: Act,
    },
    /// `c[i, j] = c[i, j] + neg_scale * acc` (one fused multiply-add).
    Axpy {
        c: *mut f32,
        ldc: usize,
        neg_scale: f32,
    },
}

/// What [`gemm`] does with a tile of finished `f64` dot products.
#[derive(Clone, Copy, Debug)]
pub(super) enum Epilogue64 {
    /// `c[i, j] = acc`.
    Store { c: *mut f64, ldc: usize },
    /// `c[i, j] = c[i, j] - lr * (acc * inv_n)`, or `(acc / n)` when `divide`, each
    /// operation rounded once, in this order (the notebook's update).
    Sgd {
        c: *mut f64,
        ldc: usize,
        lr: f64,
        n: f64,
        inv_n: f64,
        divide: bool,
    },
}

/// `A[r, kk] = a[r * rs + kk * cs]`: any strides, elements broadcast one by one.
#[derive(Debug)]
pub(super) struct AStrided<T> {
    pub(super) ptr: *const T,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

/// `B[kk, j] = b[kk * ldb + j]`: rows contiguous, loaded a vector at a time.
#[derive(Debug)]
pub(super) struct BRows<T> {
    pub(super) ptr: *const T,
    pub(super) ldb: usize,
}

// Manual impls: a derive would require `T: Copy`, which raw pointers do not need.
impl<T> Clone for AStrided<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for AStrided<T> {}
impl<T> Clone for BRows<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for BRows<T> {}

// SAFETY (the four impls): the pointers are plain addresses into matrices that outlive
// every parallel region using them (the regions end before the safe wrappers return);
// tasks of one region read A and B and write disjoint tiles of C.
unsafe impl<T> Send for AStrided<T> {}
unsafe impl<T> Sync for AStrided<T> {}
unsafe impl<T> Send for BRows<T> {}
unsafe impl<T> Sync for BRows<T> {}
unsafe impl Send for Epilogue {}
unsafe impl Sync for Epilogue {}
unsafe impl Send for Epilogue64 {}
unsafe impl Sync for Epilogue64 {}

impl<T> AStrided<T> {
    /// The same matrix from row `i0` on.
    fn rows_from(self, i0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(i0 * self.rs),
            ..self
        }
    }
}

impl<T> BRows<T> {
    /// The same matrix from column `j0` on.
    fn cols_from(self, j0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(j0),
            ..self
        }
    }
}

/// A tile epilogue for element type `T`.
pub(super) trait TileEpilogue<S: Simd, T: Elem<S>>: Copy + Send + Sync {
    /// The same epilogue for the sub-matrix from row `i0` and column `j0` on.
    fn at(self, i0: usize, j0: usize) -> Self;

    /// Finishes the tile at `(i0, j0)` from its dot products.
    ///
    /// # Safety
    /// Rows `i0..i0 + MR` and the columns the tails select (all when `FULL`) are in
    /// bounds of the epilogue's matrices.
    unsafe fn finish<const MR: usize, const NV: usize, const FULL: bool>(
        self,
        s: S,
        i0: usize,
        j0: usize,
        acc: &[[T::V; NV]; MR],
        tails: &[T::Tail; NV],
    );
}

impl<S: Simd> TileEpilogue<S, f32> for Epilogue {
    fn at(self, i0: usize, j0: usize) -> Self {
        match self {
            Epilogue::Store { c, ldc } => Epilogue::Store {
                c: c.wrapping_add(i0 * ldc + j0),
                ldc,
            },
            Epilogue::BiasAct { c, ldc, bias, act } => Epilogue::BiasAct {
                c: c.wrapping_add(i0 * ldc + j0),
                ldc,
                bias: bias.wrapping_add(j0),
                act,
            },
            Epilogue::Axpy { c, ldc, neg_scale } => Epilogue::Axpy {
                c: c.wrapping_add(i0 * ldc + j0),
                ldc,
                neg_scale,
            },
        }
    }

    #[inline(always)]
    unsafe fn finish<const MR: usize, const NV: usize, const FULL: bool>(
        self,
        s: S,
        i0: usize,
        j0: usize,
        acc: &[[S::F32; NV]; MR],
        tails: &[S::Tail32; NV],
    ) {
        let l = S::L32;
        // SAFETY: every pointer addresses row i0 + r and the tails' columns (caller).
        unsafe {
            match self {
                Epilogue::Store { c, ldc } => {
                    for (r, acc_r) in acc.iter().enumerate() {
                        let row = c.add((i0 + r) * ldc + j0);
                        for v in 0..NV {
                            store_v::<S, f32, FULL>(s, tails[v], row.add(l * v), acc_r[v]);
                        }
                    }
                }
                Epilogue::BiasAct { c, ldc, bias, act } => {
                    let bv: [S::F32; NV] = std::array::from_fn(|v| {
                        load_v::<S, f32, FULL>(s, tails[v], bias.add(j0 + l * v))
                    });
                    for (r, acc_r) in acc.iter().enumerate() {
                        let row = c.add((i0 + r) * ldc + j0);
                        for v in 0..NV {
                            let z = apply(s, act, s.add(acc_r[v], bv[v]));
                            store_v::<S, f32, FULL>(s, tails[v], row.add(l * v), z);
                        }
                    }
                }
                Epilogue::Axpy { c, ldc, neg_scale } => {
                    let k = s.splat(neg_scale);
                    for (r, acc_r) in acc.iter().enumerate() {
                        let row = c.add((i0 + r) * ldc + j0);
                        for v in 0..NV {
                            let p = row.add(l * v);
                            let old = load_v::<S, f32, FULL>(s, tails[v], p);
                            store_v::<S, f32, FULL>(s, tails[v], p, s.fmadd(k, acc_r[v], old));
                        }
                    }
                }
            }
        }
    }
}

impl<S: Simd> TileEpilogue<S, f64> for Epilogue64 {
    fn at(self, i0: usize, j0: usize) -> Self {
        match self {
            Epilogue64::Store { c, ldc } => Epilogue64::Store {
                c: c.wrapping_add(i0 * ldc + j0),
                ldc,
            },
            Epilogue64::Sgd {
                c,
                ldc,
                lr,
                n,
                inv_n,
                divide,
            } => Epilogue64::Sgd {
                c: c.wrapping_add(i0 * ldc + j0),
                ldc,
                lr,
                n,
                inv_n,
                divide,
            },
        }
    }

    #[inline(always)]
    unsafe fn finish<const MR: usize, const NV: usize, const FULL: bool>(
        self,
        s: S,
        i0: usize,
        j0: usize,
        acc: &[[S::F64; NV]; MR],
        tails: &[S::Tail64; NV],
    ) {
        let l = S::L64;
        // SAFETY: every pointer addresses row i0 + r and the tails' columns (caller).
        unsafe {
            match self {
                Epilogue64::Store { c, ldc } => {
                    for (r, acc_r) in acc.iter().enumerate() {
                        let row = c.add((i0 + r) * ldc + j0);
                        for v in 0..NV {
                            store_v::<S, f64, FULL>(s, tails[v], row.add(l * v), acc_r[v]);
                        }
                    }
                }
                Epilogue64::Sgd {
                    c,
                    ldc,
                    lr,
                    n,
                    inv_n,
                    divide,
                } => {
                    for (r, acc_r) in acc.iter().enumerate() {
                        let row = c.add((i0 + r) * ldc + j0);
                        for v in 0..NV {
                            let p = row.add(l * v);
                            let old = load_v::<S, f64, FULL>(s, tails[v], p);
                            let new = sgd_step(s, old, acc_r[v], (lr, n, inv_n, divide));
                            store_v::<S, f64, FULL>(s, tails[v], p, new);
                        }
                    }
                }
            }
        }
    }
}

/// The notebook's update of `old` from the raw gradient `acc`:
/// `old - lr * (acc * inv_n)` (or `(acc / n)` when `divide`), each operation rounded once.
#[inline(always)]
pub(super) fn sgd_step<S: Simd>(
    s: S,
    old: S::F64,
    acc: S::F64,
    (lr, n, inv_n, divide): (f64, f64, f64, bool),
) -> S::F64 {
    let g = if divide {
        s.div64(acc, s.splat64(n))
    } else {
        s.mul64(acc, s.splat64(inv_n))
    };
    s.sub64(old, s.mul64(s.splat64(lr), g))
}

/// `C (m x n) = A (m x k) B (k x n)` handed to the epilogue tile by tile: tiles of `MR`
/// rows by `LANES * NV` columns, the last column tile masked, the rows left over in
/// blocks of 4, 2 and 1. Each element is one fused multiply-add chain over `k` in order,
/// from `+0`, whatever the tile shape or vector width.
pub(super) struct Gemm<T, E, const MR: usize, const NV: usize> {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) a: AStrided<T>,
    pub(super) b: BRows<T>,
    pub(super) epi: E,
}

impl<S: Simd, T: Elem<S>, E: TileEpilogue<S, T>, const MR: usize, const NV: usize> WithSimd<S>
    for Gemm<T, E, MR, NV>
{
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        let nr = T::LANES * NV;
        let mut j0 = 0;
        while j0 < self.n {
            let cols = nr.min(self.n - j0);
            let tails: [T::Tail; NV] =
                std::array::from_fn(|v| T::tail(s, cols.saturating_sub(T::LANES * v)));
            // SAFETY: columns j0..j0 + cols <= n; the rows are those of the product
            // (the caller of `gemm` guarantees every element is in bounds).
            unsafe {
                if cols == nr {
                    tile_rows::<S, T, E, MR, NV, true>(s, &self, j0, &tails);
                } else {
                    tile_rows::<S, T, E, MR, NV, false>(s, &self, j0, &tails);
                }
            }
            j0 += nr;
        }
    }
}

/// Every row of the column tile at `j0`: blocks of `MR` rows, then 4, 2, 1.
///
/// # Safety
/// As [`gemm`], for the tails' columns from `j0`.
#[inline(always)]
unsafe fn tile_rows<
    S: Simd,
    T: Elem<S>,
    E: TileEpilogue<S, T>,
    const MR: usize,
    const NV: usize,
    const FULL: bool,
>(
    s: S,
    g: &Gemm<T, E, MR, NV>,
    j0: usize,
    tails: &[T::Tail; NV],
) {
    let m = g.m;
    let mut i0 = 0;
    // SAFETY (every block): rows i0..i0 + rows <= m, the tails' columns from j0.
    unsafe {
        while i0 + MR <= m {
            block::<S, T, E, MR, NV, FULL>(s, (g.k, g.a, g.b, g.epi), i0, j0, tails);
            i0 += MR;
        }
        while MR > 4 && i0 + 4 <= m {
            block::<S, T, E, 4, NV, FULL>(s, (g.k, g.a, g.b, g.epi), i0, j0, tails);
            i0 += 4;
        }
        while MR > 2 && i0 + 2 <= m {
            block::<S, T, E, 2, NV, FULL>(s, (g.k, g.a, g.b, g.epi), i0, j0, tails);
            i0 += 2;
        }
        while i0 < m {
            block::<S, T, E, 1, NV, FULL>(s, (g.k, g.a, g.b, g.epi), i0, j0, tails);
            i0 += 1;
        }
    }
}

/// One `R x LANES NV` tile at `(i0, j0)`: the dot products (a function of their own),
/// then the epilogue.
///
/// # Safety
/// As [`gemm`], for rows `i0..i0 + R` and the tails' columns from `j0`.
#[inline(always)]
unsafe fn block<
    S: Simd,
    T: Elem<S>,
    E: TileEpilogue<S, T>,
    const R: usize,
    const NV: usize,
    const FULL: bool,
>(
    s: S,
    (k, a, b, epi): (usize, AStrided<T>, BRows<T>, E),
    i0: usize,
    j0: usize,
    tails: &[T::Tail; NV],
) {
    let acc = s.vectorize(Dots::<S, T, R, NV, FULL> {
        i0,
        j0,
        k,
        a,
        b,
        tails: *tails,
    });
    // SAFETY: rows i0..i0 + R and the tails' columns are in bounds (caller).
    unsafe { epi.finish::<R, NV, FULL>(s, i0, j0, &acc, tails) };
}

/// The dot products of one `MR x LANES NV` tile, run through [`Simd::vectorize`] so that
/// they can be a function of their own: the accumulators stay in registers for the whole
/// `k` loop and are written once at the end (the AVX-512 kernels found the register
/// allocator spilling them when inlined into the epilogue's code; here LLVM inlines
/// them and keeps them in registers, see the parent module).
///
/// Safety (of building one and running it): `A[r, kk]` for rows `i0..i0 + MR` and
/// `kk < k`, `B[kk, j]` for the tails' columns from `j0` (all `LANES * NV` when `FULL`)
/// are in bounds.
struct Dots<S: Simd, T: Elem<S>, const MR: usize, const NV: usize, const FULL: bool> {
    i0: usize,
    j0: usize,
    k: usize,
    a: AStrided<T>,
    b: BRows<T>,
    tails: [T::Tail; NV],
}

impl<S: Simd, T: Elem<S>, const MR: usize, const NV: usize, const FULL: bool> WithSimd<S>
    for Dots<S, T, MR, NV, FULL>
{
    type Output = [[T::V; NV]; MR];

    #[inline(always)]
    fn with_simd(self, s: S) -> [[T::V; NV]; MR] {
        let Self {
            i0,
            j0,
            k,
            a,
            b,
            tails,
        } = self;
        let mut acc = [[T::zero(s); NV]; MR];
        // SAFETY (whole loop): kk < k, rows i0 + r, the tails' columns: in bounds (the
        // builder's obligation).
        unsafe {
            let a0 = a.ptr.add(i0 * a.rs);
            let b0 = b.ptr.add(j0);
            for kk in 0..k {
                let brow = b0.add(kk * b.ldb);
                let bv: [T::V; NV] = std::array::from_fn(|v| {
                    load_v::<S, T, FULL>(s, tails[v], brow.add(T::LANES * v))
                });
                let acol = a0.add(kk * a.cs);
                #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
                for r in 0..MR {
                    let av = T::splat(s, *acol.add(r * a.rs));
                    for v in 0..NV {
                        acc[r][v] = T::fmadd(s, av, bv[v], acc[r][v]);
                    }
                }
            }
        }
        acc
    }
}

/// `c = a b` (the epilogue's `c`), tiles of `MR x LANES NV` shared among the team:
/// `mr`-aligned row chunks by column tiles, about four tasks per thread, consecutive
/// tasks sharing a column tile (and so `b`'s panel).
///
/// # Safety
/// `A[r, kk]` for `r < m, kk < k`, `B[kk, j]` for `kk < k, j < n` and the epilogue's
/// elements for `i < m, j < n` are in bounds; the epilogue's `c` overlaps neither `a` nor
/// `b`.
pub(super) unsafe fn gemm<
    S: Simd,
    T: Elem<S>,
    E: TileEpilogue<S, T>,
    const MR: usize,
    const NV: usize,
>(
    s: S,
    (m, n, k): (usize, usize, usize),
    a: AStrided<T>,
    b: BRows<T>,
    epi: E,
) {
    let threads = team::threads();
    if threads == 1 {
        s.vectorize(Gemm::<T, E, MR, NV> { m, n, k, a, b, epi });
        return;
    }
    let nr = T::LANES * NV;
    let col_tiles = n.div_ceil(nr);
    let row_blocks = m.div_ceil(MR);
    let row_chunks = (4 * threads).div_ceil(col_tiles).clamp(1, row_blocks);
    let chunk = row_blocks.div_ceil(row_chunks) * MR;
    let row_chunks = m.div_ceil(chunk);
    team::run(row_chunks * col_tiles, &|t| {
        let (i0, j0) = ((t % row_chunks) * chunk, (t / row_chunks) * nr);
        let (rows, cols) = (chunk.min(m - i0), nr.min(n - j0));
        // The sub-matrix rows i0..i0 + rows, columns j0..j0 + cols lies inside the
        // caller's problem; tasks write disjoint tiles of C.
        s.vectorize(Gemm::<T, E, MR, NV> {
            m: rows,
            n: cols,
            k,
            a: a.rows_from(i0),
            b: b.cols_from(j0),
            epi: epi.at(i0, j0),
        });
    });
}
