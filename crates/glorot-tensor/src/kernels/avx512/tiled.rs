//! The register-tiled matrix products (`f32` and `f64`) and what they do with each
//! finished tile (store, bias and activation, SGD update).
//!
//! Everything here is `unsafe` to call: the safe wrappers in the parent module hold the
//! [`Avx512`](super::Avx512) token and have checked that every index the kernels touch
//! is in bounds (see each function's `# Safety`).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
};

use super::math::apply;

/// What a kernel does with a tile of finished dot products `acc[r][v]` (rows `i0 + r`,
/// columns `j0 + 16 v ..`).
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
    /// `c[i, j] = c[i, j] + neg_scale * acc` (one fused multiply-add: an SGD update).
    Axpy {
        c: *mut f32,
        ldc: usize,
        neg_scale: f32,
    },
}

/// The element-wise function of [`Epilogue::BiasAct`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Softsign,
}

/// `A[r, kk] = a[r * a_rs + kk * a_cs]`: any strides, elements are broadcast one by one.
#[derive(Debug)]
pub(super) struct AStrided<T = f32> {
    pub(super) ptr: *const T,
    pub(super) rs: usize,
    pub(super) cs: usize,
}

/// `B[kk, j] = b[kk * ldb + j]`: rows contiguous, loaded a vector (16 `f32` or 8 `f64`
/// columns) at a time.
#[derive(Debug)]
pub(super) struct BRows<T = f32> {
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

/// What [`gemm_f64`] does with a tile of finished dot products `acc` (rows `i0 + r`,
/// columns `j0 + 8 v ..`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Epilogue64 {
    /// `c[i, j] = acc`.
    Store { c: *mut f64, ldc: usize },
    /// The notebook's SGD update with `acc` as the raw (summed over the batch) gradient:
    /// `c[i, j] = c[i, j] - lr * (acc * inv_n)`, or `(acc / n)` when `divide`, each
    /// operation rounded once, in this order.
    Sgd {
        c: *mut f64,
        ldc: usize,
        lr: f64,
        n: f64,
        inv_n: f64,
        divide: bool,
    },
}

/// An epilogue that can be moved to a sub-matrix (for splitting a product into tasks).
pub(super) trait TileAt: Copy + Send + Sync {
    /// The same epilogue for the sub-matrix from row `i0` and column `j0` on.
    fn at(self, i0: usize, j0: usize) -> Self;
}

// SAFETY (the three impls): the pointers are plain addresses into matrices that outlive
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
    pub(super) fn rows_from(self, i0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(i0 * self.rs),
            ..self
        }
    }
}

impl<T> BRows<T> {
    /// The same matrix from column `j0` on.
    pub(super) fn cols_from(self, j0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(j0),
            ..self
        }
    }
}

impl TileAt for Epilogue {
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
}

impl TileAt for Epilogue64 {
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
}

/// Generates, for one element type, the tiled product `$gemm` (`C (m x n) = A (m x k)
/// B (k x n)`, handed to the epilogue tile by tile through `$block`) and its dot-product
/// kernel `$dots`; the `f32` and `f64` kernels share this loop structure.
///
/// `$gemm::<MR, NV>`: tiles of `MR` rows by `lanes * NV` columns, the last column tile
/// masked, the rows left over in blocks of 4, 2 and 1 (a 1-row block is bound by its
/// loads). Each element is one fused multiply-add chain over `k` in order, from `+0`,
/// whatever the tile shape.
///
/// `$dots`: the dot products of one tile into `out`. A function of its own, not inlined,
/// so that the accumulators stay in registers for the whole `k` loop and are written once
/// at the end (inlined into the epilogue's code, the register allocator spills them on
/// every iteration).
///
/// Safety of both: AVX-512F is available; `A[r, kk]` for `r < m, kk < k`, `B[kk, j]` for
/// `kk < k, j < n` and the epilogue's `c[i, j]` (and `bias[j]`) for `i < m, j < n` are in
/// bounds; `c` overlaps neither `a` nor `b`.
macro_rules! tiled_product {
    (
        gemm: $gemm:ident,
        dots: $dots:ident,
        block: $block:ident,
        elem: $t:ty,
        vector: $v:ty,
        mask: $m:ty,
        lanes: $lanes:literal,
        epilogue: $epi:ty,
        mask_for: $mask_for:path,
        zero: $zero:path,
        load: $load:path,
        set1: $set1:path,
        fmadd: $fmadd:path $(,)?
    ) => {
        /// A tiled product (see `tiled_product!`).
        ///
        /// # Safety
        /// AVX-512F is available; every element the operands and the epilogue address is
        /// in bounds (see `tiled_product!`).
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn $gemm<const MR: usize, const NV: usize>(
            m: usize,
            n: usize,
            k: usize,
            a: AStrided<$t>,
            b: BRows<$t>,
            epi: $epi,
        ) {
            let nr = $lanes * NV;
            let mut j0 = 0;
            while j0 < n {
                let cols = nr.min(n - j0);
                let masks: [$m; NV] = std::array::from_fn(|v| $mask_for(cols, v));
                let mut i0 = 0;
                while i0 + MR <= m {
                    // SAFETY: rows i0..i0 + MR <= m, columns j0..j0 + cols <= n.
                    unsafe { $block::<MR, NV>(i0, j0, k, a, b, masks, epi) };
                    i0 += MR;
                }
                while MR > 4 && i0 + 4 <= m {
                    // SAFETY: as above, four rows.
                    unsafe { $block::<4, NV>(i0, j0, k, a, b, masks, epi) };
                    i0 += 4;
                }
                while MR > 2 && i0 + 2 <= m {
                    // SAFETY: as above, two rows.
                    unsafe { $block::<2, NV>(i0, j0, k, a, b, masks, epi) };
                    i0 += 2;
                }
                while i0 < m {
                    // SAFETY: as above, one row.
                    unsafe { $block::<1, NV>(i0, j0, k, a, b, masks, epi) };
                    i0 += 1;
                }
                j0 += nr;
            }
        }

        /// The dot products of one tile (see `tiled_product!`).
        ///
        /// # Safety
        /// As the product, for rows `i0..i0 + MR` and the columns the masks select.
        #[target_feature(enable = "avx512f")]
        #[inline(never)]
        unsafe fn $dots<const MR: usize, const NV: usize>(
            i0: usize,
            j0: usize,
            k: usize,
            a: AStrided<$t>,
            b: BRows<$t>,
            masks: [$m; NV],
            out: &mut [[$v; NV]; MR],
        ) {
            let mut acc = [[$zero(); NV]; MR];
            // SAFETY (whole loop): kk < k, rows i0 + r < m, masked lanes stay below n.
            unsafe {
                let a0 = a.ptr.add(i0 * a.rs);
                let b0 = b.ptr.add(j0);
                for kk in 0..k {
                    let brow = b0.add(kk * b.ldb);
                    let mut bv = [$zero(); NV];
                    #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
                    for v in 0..NV {
                        bv[v] = $load(masks[v], brow.add($lanes * v));
                    }
                    let acol = a0.add(kk * a.cs);
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..MR {
                        let av = $set1(*acol.add(r * a.rs));
                        for v in 0..NV {
                            acc[r][v] = $fmadd(av, bv[v], acc[r][v]);
                        }
                    }
                }
            }
            *out = acc;
        }
    };
}

tiled_product! {
    gemm: gemm,
    dots: dots,
    block: block,
    elem: f32,
    vector: __m512,
    mask: __mmask16,
    lanes: 16,
    epilogue: Epilogue,
    mask_for: mask_for,
    zero: _mm512_setzero_ps,
    load: _mm512_maskz_loadu_ps,
    set1: _mm512_set1_ps,
    fmadd: _mm512_fmadd_ps,
}

tiled_product! {
    gemm: gemm_f64,
    dots: dots_f64,
    block: block_f64,
    elem: f64,
    vector: std::arch::x86_64::__m512d,
    mask: u8,
    lanes: 8,
    epilogue: Epilogue64,
    mask_for: mask8_for,
    zero: std::arch::x86_64::_mm512_setzero_pd,
    load: std::arch::x86_64::_mm512_maskz_loadu_pd,
    set1: std::arch::x86_64::_mm512_set1_pd,
    fmadd: std::arch::x86_64::_mm512_fmadd_pd,
}

/// Lanes of vector `v` of a tile with `cols` columns that hold a column.
#[inline]
pub(super) fn mask_for(cols: usize, v: usize) -> __mmask16 {
    let lo = 16 * v;
    if cols >= lo + 16 {
        0xFFFF
    } else if cols > lo {
        ((1u32 << (cols - lo)) - 1) as __mmask16
    } else {
        0
    }
}

/// One `MR x 16 NV` tile at `(i0, j0)`: the dot products, then the epilogue.
///
/// # Safety
/// As [`gemm`], for rows `i0..i0 + MR` and the columns the masks select.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const MR: usize, const NV: usize>(
    i0: usize,
    j0: usize,
    k: usize,
    a: AStrided,
    b: BRows,
    masks: [__mmask16; NV],
    epi: Epilogue,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    // SAFETY: forwarded.
    unsafe { dots::<MR, NV>(i0, j0, k, a, b, masks, &mut acc) };
    // SAFETY: every pointer below addresses row i0 + r < m and masked columns < n.
    unsafe {
        match epi {
            Epilogue::Store { c, ldc } => {
                for (r, acc_r) in acc.iter().enumerate() {
                    let row = c.add((i0 + r) * ldc + j0);
                    for v in 0..NV {
                        _mm512_mask_storeu_ps(row.add(16 * v), masks[v], acc_r[v]);
                    }
                }
            }
            Epilogue::BiasAct { c, ldc, bias, act } => {
                let bv: [__m512; NV] =
                    std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], bias.add(j0 + 16 * v)));
                for (r, acc_r) in acc.iter().enumerate() {
                    let row = c.add((i0 + r) * ldc + j0);
                    for v in 0..NV {
                        let z = apply(act, _mm512_add_ps(acc_r[v], bv[v]));
                        _mm512_mask_storeu_ps(row.add(16 * v), masks[v], z);
                    }
                }
            }
            Epilogue::Axpy { c, ldc, neg_scale } => {
                let s = _mm512_set1_ps(neg_scale);
                for (r, acc_r) in acc.iter().enumerate() {
                    let row = c.add((i0 + r) * ldc + j0);
                    for v in 0..NV {
                        let p = row.add(16 * v);
                        let old = _mm512_maskz_loadu_ps(masks[v], p);
                        _mm512_mask_storeu_ps(p, masks[v], _mm512_fmadd_ps(s, acc_r[v], old));
                    }
                }
            }
        }
    }
}

/// Lanes of vector `v` of an `f64` block with `cols` columns that hold a column.
#[inline]
pub(super) fn mask8_for(cols: usize, v: usize) -> u8 {
    let lo = 8 * v;
    if cols >= lo + 8 {
        0xFF
    } else if cols > lo {
        ((1u32 << (cols - lo)) - 1) as u8
    } else {
        0
    }
}

/// One `MR x 8 NV` tile of [`gemm_f64`] at `(i0, j0)`: the dot products, then the
/// epilogue.
///
/// # Safety
/// As [`gemm_f64`], for rows `i0..i0 + MR` and the columns the masks select.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block_f64<const MR: usize, const NV: usize>(
    i0: usize,
    j0: usize,
    k: usize,
    a: AStrided<f64>,
    b: BRows<f64>,
    masks: [u8; NV],
    epi: Epilogue64,
) {
    use std::arch::x86_64::{
        _mm512_div_pd, _mm512_mask_storeu_pd, _mm512_maskz_loadu_pd, _mm512_mul_pd, _mm512_set1_pd,
        _mm512_setzero_pd, _mm512_sub_pd,
    };
    let mut acc = [[_mm512_setzero_pd(); NV]; MR];
    // SAFETY: forwarded.
    unsafe { dots_f64::<MR, NV>(i0, j0, k, a, b, masks, &mut acc) };
    // SAFETY: every pointer below addresses row i0 + r < m and masked columns < n.
    unsafe {
        match epi {
            Epilogue64::Store { c, ldc } => {
                for (r, acc_r) in acc.iter().enumerate() {
                    let row = c.add((i0 + r) * ldc + j0);
                    for v in 0..NV {
                        _mm512_mask_storeu_pd(row.add(8 * v), masks[v], acc_r[v]);
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
                let (lrv, nv, invv) =
                    (_mm512_set1_pd(lr), _mm512_set1_pd(n), _mm512_set1_pd(inv_n));
                for (r, acc_r) in acc.iter().enumerate() {
                    let row = c.add((i0 + r) * ldc + j0);
                    for v in 0..NV {
                        let g = if divide {
                            _mm512_div_pd(acc_r[v], nv)
                        } else {
                            _mm512_mul_pd(acc_r[v], invv)
                        };
                        let p = row.add(8 * v);
                        let old = _mm512_maskz_loadu_pd(masks[v], p);
                        let new = _mm512_sub_pd(old, _mm512_mul_pd(lrv, g));
                        _mm512_mask_storeu_pd(p, masks[v], new);
                    }
                }
            }
        }
    }
}
