//! AVX-512 kernels behind [`crate::fused`]: a register-tiled `f32` matrix product with
//! fused epilogues, and vectorized `tanh`, `exp`-based sigmoid and ReLU.
//!
//! Everything here is `unsafe` to call: the caller (the safe wrappers in `fused.rs`) has
//! checked that the CPU has AVX-512F and that every index the kernels touch is in bounds
//! (see each function's `# Safety`).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512, __mmask16, _CMP_LT_OQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT, _mm512_add_ps,
    _mm512_and_epi32, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_div_ps,
    _mm512_fmadd_ps, _mm512_mask_blend_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_epi32, _mm512_roundscale_ps,
    _mm512_scalef_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_sub_ps,
};

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
fn mask_for(cols: usize, v: usize) -> __mmask16 {
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

/// `act(z)` on 16 lanes.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn apply(act: Act, z: __m512) -> __m512 {
    match act {
        Act::Identity => z,
        Act::Relu => relu_ps(z),
        Act::Sigmoid => sigmoid_ps(z),
        Act::Tanh => tanh_ps(z),
    }
}

/// `max(z, 0)` with NaN passing through (as the scalar [`crate::Activation::Relu`]).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn relu_ps(z: __m512) -> __m512 {
    let zero = _mm512_setzero_ps();
    let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(z, zero);
    _mm512_mask_blend_ps(negative, z, zero)
}

/// `exp(x)`, relative error below 2 ulp for every `f32` (overflow to `inf`, underflow to 0).
///
/// `x = n ln 2 + r` with `n = round(x / ln 2)` and `|r| <= ln 2 / 2` (Cody-Waite split of
/// `ln 2`), `exp(r)` by its Taylor polynomial to degree 7 (truncation error below
/// `0.35^8 / 8! = 6e-9`), then `2^n` by `vscalefps`, which saturates correctly.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn exp_ps(x: __m512) -> __m512 {
    // Inputs beyond these give inf or 0 anyway; clamping keeps n in range for vscalef.
    let x = _mm512_min_ps(
        _mm512_set1_ps(104.0),
        _mm512_max_ps(_mm512_set1_ps(-104.0), x),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    // ln 2 = LN2_HI + LN2_LO (Cephes' split): LN2_HI has 9 significant bits, so
    // n * LN2_HI is exact and so is x - n * LN2_HI.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    // Horner: 1 + r (1 + r (1/2 + r (1/6 + ... + r / 5040))).
    const C: [f32; 8] = [
        1.0,
        1.0,
        0.5,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
    ];
    let mut p = _mm512_set1_ps(C[7]);
    for &c in C[..7].iter().rev() {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// `1 / (1 + exp(-z))`.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn sigmoid_ps(z: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), z));
    _mm512_div_ps(one, _mm512_add_ps(one, e))
}

/// Odd Taylor coefficients of `tanh`: `tanh x = x (T0 + T1 x^2 + T2 x^4 + ...)`
/// (`2^(2n) (2^(2n) - 1) B_2n / (2n)!`, computed exactly with Python fractions).
const TANH_TAYLOR: [f32; 10] = [
    1.0,
    -0.333_333_34,
    0.133_333_34,
    -0.053_968_254,
    0.021_869_488,
    -0.008_863_236,
    0.003_592_128,
    -0.001_455_834_4,
    0.000_590_027_4,
    -0.000_239_129_12,
];

/// Below this `|x|` the Taylor series is used (its first omitted term is below
/// `1e-4 * 0.55^20 = 6e-10` relative), above it `1 - 2 / (exp(2|x|) + 1)`.
const TANH_SERIES_LIMIT: f32 = 0.55;

/// `tanh(x)`, error at most a few ulp for every `f32` (see the tests in `fused.rs`).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn tanh_ps(x: __m512) -> __m512 {
    let ax = _mm512_max_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), x)); // |x| (NaN kept)
    // Large |x|: 1 - 2 / (e^{2|x|} + 1), sign restored below. Saturates to 1 for |x| > 9.
    let e = exp_ps(_mm512_add_ps(ax, ax));
    let one = _mm512_set1_ps(1.0);
    let two = _mm512_set1_ps(2.0);
    let big = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(e, one)));
    // Small |x|: x P(x^2).
    let x2 = _mm512_mul_ps(ax, ax);
    let mut p = _mm512_set1_ps(TANH_TAYLOR[9]);
    for &c in TANH_TAYLOR[..9].iter().rev() {
        p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(c));
    }
    let small = _mm512_mul_ps(ax, p);
    let use_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, _mm512_set1_ps(TANH_SERIES_LIMIT));
    let t = _mm512_mask_blend_ps(use_small, big, small);
    // Copy the sign bit of x (tanh is odd; -0 stays -0); NaN stays NaN.
    let sign = _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
    _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(t), sign))
}

/// `out[i] = act(x[i])` over a slice, 16 lanes at a time.
///
/// # Safety
/// AVX-512F is available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn map(act: Act, xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: the chunk holds exactly 16 f32.
        unsafe {
            let p = c.as_mut_ptr();
            let v = apply(act, _mm512_maskz_loadu_ps(0xFFFF, p));
            _mm512_mask_storeu_ps(p, 0xFFFF, v);
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mask = ((1u32 << rest.len()) - 1) as __mmask16;
        // SAFETY: the mask selects exactly the `rest.len()` elements of `rest`.
        unsafe {
            let p = rest.as_mut_ptr();
            let v = apply(act, _mm512_maskz_loadu_ps(mask, p));
            _mm512_mask_storeu_ps(p, mask, v);
        }
    }
}

/// Columns per block of the sparse kernels: 8 vectors of 16 lanes.
pub(super) const SPARSE_NV: usize = 8;

/// The nonzeros of `rows` rows of `x` (`x[i, j] = x[i * ldx + j]`, `cols` columns), row
/// by row in column order (CSR): row `i` holds `idx[ptr[i]..ptr[i + 1]]` and `vals[..]`.
/// NaN counts as nonzero. Returns the number of nonzeros.
///
/// # Safety
/// AVX-512F is available; `x` addresses `rows x cols` elements with row stride `ldx`;
/// `ptr.len() > rows`; `idx` and `vals` hold at least `rows * cols + 16` elements.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn csr_rows(
    x: *const f32,
    rows: usize,
    cols: usize,
    ldx: usize,
    ptr: &mut [u32],
    idx: &mut [u32],
    vals: &mut [f32],
) -> usize {
    use std::arch::x86_64::{
        _CMP_NEQ_UQ, _mm512_add_epi32, _mm512_maskz_compress_epi32, _mm512_maskz_compress_ps,
        _mm512_set1_epi32, _mm512_setr_epi32, _mm512_storeu_epi32, _mm512_storeu_ps,
    };
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mut pos = 0usize;
    for (i, start) in ptr.iter_mut().take(rows).enumerate() {
        *start = pos as u32;
        let mut j = 0;
        while j < cols {
            let mask = mask_for(cols - j, 0);
            // SAFETY: columns j.. under the mask are < cols; pos + 16 <= rows * cols + 16
            // because pos counts nonzeros seen so far, at most i * cols + j.
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, x.add(i * ldx + j));
                let nz = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps()) & mask;
                let at = _mm512_add_epi32(lanes, _mm512_set1_epi32(j as i32));
                _mm512_storeu_ps(vals.as_mut_ptr().add(pos), _mm512_maskz_compress_ps(nz, v));
                _mm512_storeu_epi32(
                    idx.as_mut_ptr().add(pos).cast(),
                    _mm512_maskz_compress_epi32(nz, at),
                );
                pos += nz.count_ones() as usize;
            }
            j += 16;
        }
    }
    ptr[rows] = pos as u32;
    pos
}

/// `out[i, j] = act(bias[j] + sum over the nonzeros (p, v) of row i of v * w[p, j])` for
/// rows `r0..r1` of a CSR matrix and output columns `c0..n` (`c0` a multiple of 128),
/// with `w[p, j] = w[p * ldw + j]`.
///
/// # Safety
/// AVX-512F is available; every index in `idx[ptr[r0]..ptr[r1]]` is a row of `w`;
/// `w` addresses those rows' `n` columns, `bias` `n` elements, `out` `r1 x n` with row
/// stride `ldo`; no other thread writes the same part of `out` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn csr_forward(
    (r0, r1): (usize, usize),
    (c0, n): (usize, usize),
    ptr: &[u32],
    idx: &[u32],
    vals: &[f32],
    w: *const f32,
    ldw: usize,
    bias: *const f32,
    act: Act,
    out: *mut f32,
    ldo: usize,
) {
    let nr = 16 * SPARSE_NV;
    let mut j0 = c0;
    while j0 < n {
        let cols = nr.min(n - j0);
        let masks: [__mmask16; SPARSE_NV] = std::array::from_fn(|v| mask_for(cols, v));
        // SAFETY: masked lanes stay below n.
        let bv: [__m512; SPARSE_NV] = std::array::from_fn(|v| unsafe {
            _mm512_maskz_loadu_ps(masks[v], bias.add(j0 + 16 * v))
        });
        for i in r0..r1 {
            let (lo, hi) = (ptr[i] as usize, ptr[i + 1] as usize);
            // SAFETY: the nonzeros' columns are rows of w; masked lanes stay below n.
            let acc = unsafe { sparse_dots(&idx[lo..hi], &vals[lo..hi], w, ldw, j0, masks) };
            for v in 0..SPARSE_NV {
                let z = apply(act, _mm512_add_ps(acc[v], bv[v]));
                // SAFETY: row i < rows, masked columns below n.
                unsafe { _mm512_mask_storeu_ps(out.add(i * ldo + j0 + 16 * v), masks[v], z) };
            }
        }
        j0 += nr;
    }
}

/// `sum over k of vals[k] * m[idx[k], j0 .. j0 + 128]` (masked), the accumulators kept
/// in registers (a function of its own for the same reason as [`dots`]).
///
/// # Safety
/// AVX-512F is available; every `idx[k]` is a row of `m` (row stride `ldm`) whose masked
/// columns from `j0` are in bounds.
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn sparse_dots(
    idx: &[u32],
    vals: &[f32],
    m: *const f32,
    ldm: usize,
    j0: usize,
    masks: [__mmask16; SPARSE_NV],
) -> [__m512; SPARSE_NV] {
    let mut acc = [_mm512_setzero_ps(); SPARSE_NV];
    for (&p, &x) in idx.iter().zip(vals) {
        let xv = _mm512_set1_ps(x);
        // SAFETY: row p of m, masked columns in bounds (caller).
        let row = unsafe { m.add(p as usize * ldm + j0) };
        #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
        for v in 0..SPARSE_NV {
            // SAFETY: as above.
            let mv = unsafe { _mm512_maskz_loadu_ps(masks[v], row.add(16 * v)) };
            acc[v] = _mm512_fmadd_ps(xv, mv, acc[v]);
        }
    }
    acc
}

/// `w[p, j] += neg_scale * sum over the nonzeros (i, v) of column p of v * d[i, j]` for
/// the columns `p0..p1` of a CSC matrix and the columns `c0..n` of `w` and `d` (`c0` a
/// multiple of 128).
///
/// # Safety
/// AVX-512F is available; `w` addresses `p1 x n` elements with row stride `ldw`; every
/// index in `rows_idx[ptr[p0]..ptr[p1]]` is a row of `d` (row stride `ldd`, `n` columns);
/// no other thread touches the same part of `w` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn csc_update(
    (p0, p1): (usize, usize),
    (c0, n): (usize, usize),
    ptr: &[u32],
    rows_idx: &[u32],
    vals: &[f32],
    d: *const f32,
    ldd: usize,
    w: *mut f32,
    ldw: usize,
    neg_scale: f32,
) {
    let nr = 16 * SPARSE_NV;
    let s = _mm512_set1_ps(neg_scale);
    let mut j0 = c0;
    while j0 < n {
        let width = nr.min(n - j0);
        let masks: [__mmask16; SPARSE_NV] = std::array::from_fn(|v| mask_for(width, v));
        for p in p0..p1 {
            let (lo, hi) = (ptr[p] as usize, ptr[p + 1] as usize);
            if lo == hi {
                continue; // the pixel is zero in the whole batch: no change
            }
            // SAFETY: the indices are rows of d; masked lanes stay below n.
            let acc = unsafe { sparse_dots(&rows_idx[lo..hi], &vals[lo..hi], d, ldd, j0, masks) };
            for v in 0..SPARSE_NV {
                // SAFETY: row p < cols of w, masked columns below n.
                unsafe {
                    let q = w.add(p * ldw + j0 + 16 * v);
                    let old = _mm512_maskz_loadu_ps(masks[v], q);
                    _mm512_mask_storeu_ps(q, masks[v], _mm512_fmadd_ps(s, acc[v], old));
                }
            }
        }
        j0 += nr;
    }
}

/// `dst[j * ldd + i] = src[i * lds + j]` for `i < rows`, `j` in `j0..j1`: rows `j0..j1`
/// of the transpose, 16 elements at a time with gathers.
///
/// # Safety
/// AVX-512F is available; `src` addresses `rows x j1` elements with row stride `lds`,
/// `dst` rows `j0..j1` of `rows` elements with stride `ldd`; `(rows - 1) * lds < 2^29`;
/// no other thread writes those rows of `dst` meanwhile.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose_rows(
    src: *const f32,
    rows: usize,
    lds: usize,
    dst: *mut f32,
    ldd: usize,
    (j0, j1): (usize, usize),
) {
    use std::arch::x86_64::{_mm512_mask_i32gather_ps, _mm512_mullo_epi32, _mm512_setr_epi32};
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let stride = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(lds as i32));
    for j in j0..j1 {
        let mut i = 0;
        while i < rows {
            let mask = mask_for(rows - i, 0);
            // SAFETY: gathered elements (i + l, j) for the masked lanes l are < rows x j1;
            // the offsets fit i32 (caller).
            unsafe {
                let base = src.add(i * lds + j);
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, stride, base);
                _mm512_mask_storeu_ps(dst.add(j * ldd + i), mask, v);
            }
            i += 16;
        }
    }
}

/// `out[i, j] = f'(a[i, j]) * ct[j, i]` for rows `i0..i1` of `out` and `j < cols`: the
/// transpose of `ct` times the activation's derivative from its output `a`.
///
/// # Safety
/// AVX-512F is available; `ct` addresses `cols x ldc` elements (`ldc >= i1`), `a` and
/// `out` rows `i0..i1` of `cols` elements with strides `lda` and `ldo`;
/// `cols * ldc < 2^29`; no other thread writes those rows of `out` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn transpose_derivative(
    ct: *const f32,
    ldc: usize,
    act: Act,
    a: *const f32,
    lda: usize,
    out: *mut f32,
    ldo: usize,
    (i0, i1, cols): (usize, usize, usize),
) {
    use std::arch::x86_64::{_mm512_mask_i32gather_ps, _mm512_mullo_epi32, _mm512_setr_epi32};
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let stride = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(ldc as i32));
    let one = _mm512_set1_ps(1.0);
    let zero = _mm512_setzero_ps();
    for i in i0..i1 {
        let mut j = 0;
        while j < cols {
            let mask = mask_for(cols - j, 0);
            // SAFETY: gathered elements (j + l, i) are < cols x ldc; a and out rows i,
            // columns j.. under the mask, are in bounds (caller).
            unsafe {
                let g = _mm512_mask_i32gather_ps::<4>(zero, mask, stride, ct.add(j * ldc + i));
                let av = _mm512_maskz_loadu_ps(mask, a.add(i * lda + j));
                let d = match act {
                    Act::Tanh => _mm512_sub_ps(one, _mm512_mul_ps(av, av)),
                    Act::Sigmoid => _mm512_mul_ps(av, _mm512_sub_ps(one, av)),
                    Act::Relu => {
                        let positive =
                            _mm512_cmp_ps_mask::<{ std::arch::x86_64::_CMP_GT_OQ }>(av, zero);
                        _mm512_mask_blend_ps(positive, zero, one)
                    }
                    Act::Identity => one,
                };
                _mm512_mask_storeu_ps(out.add(i * ldo + j), mask, _mm512_mul_ps(d, g));
            }
            j += 16;
        }
    }
}

/// Columns per block of [`csc_sgd_f64`]: 8 vectors of 8 `f64` lanes.
const F64_NV: usize = 8;

/// The notebook's SGD update of the rows `p0..p1` of `w` from a CSC matrix `x` (rows
/// `rows_idx`, values `vals`) and `d`, exactly as the scalar code computes it: for each
/// column `p` with nonzeros, `g = fma(x_k, d[i_k, j], ... fma(x_1, d[i_1, j], 0))` over its
/// nonzeros in order, then `w[p, j] = w[p, j] - lr * (g * inv_n)` (or `(g / n)` when
/// `divide`), every operation rounded once, in this order. Columns without nonzeros are
/// left alone.
///
/// # Safety
/// AVX-512F is available; `w` addresses rows `p0..p1` of `n` elements with stride `ldw`;
/// every row index is a row of `d` (`n` elements, stride `ldd`); no other thread touches
/// those rows of `w` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn csc_sgd_f64(
    (p0, p1): (usize, usize),
    n: usize,
    (ptr, rows_idx, vals): (&[u32], &[u32], &[f64]),
    d: *const f64,
    ldd: usize,
    w: *mut f64,
    ldw: usize,
    (lr, n_rows, inv_n, divide): (f64, f64, f64, bool),
) {
    use std::arch::x86_64::{
        __m512d, __mmask8, _mm512_div_pd, _mm512_fmadd_pd, _mm512_mask_storeu_pd,
        _mm512_maskz_loadu_pd, _mm512_mul_pd, _mm512_set1_pd, _mm512_setzero_pd, _mm512_sub_pd,
    };
    let (lrv, nv, invv) = (
        _mm512_set1_pd(lr),
        _mm512_set1_pd(n_rows),
        _mm512_set1_pd(inv_n),
    );
    let nr = 8 * F64_NV;
    let mut j0 = 0;
    while j0 < n {
        let width = nr.min(n - j0);
        let masks: [__mmask8; F64_NV] = std::array::from_fn(|v| {
            let lo = 8 * v;
            if width >= lo + 8 {
                0xFF
            } else if width > lo {
                ((1u32 << (width - lo)) - 1) as __mmask8
            } else {
                0
            }
        });
        for p in p0..p1 {
            let (lo, hi) = (ptr[p] as usize, ptr[p + 1] as usize);
            if lo == hi {
                continue;
            }
            let mut acc: [__m512d; F64_NV] = [_mm512_setzero_pd(); F64_NV];
            for k in lo..hi {
                let xv = _mm512_set1_pd(vals[k]);
                // SAFETY: row rows_idx[k] of d, masked columns below n (caller).
                let row = unsafe { d.add(rows_idx[k] as usize * ldd + j0) };
                #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
                for v in 0..F64_NV {
                    // SAFETY: as above.
                    let dv = unsafe { _mm512_maskz_loadu_pd(masks[v], row.add(8 * v)) };
                    acc[v] = _mm512_fmadd_pd(xv, dv, acc[v]);
                }
            }
            for v in 0..F64_NV {
                let g = if divide {
                    _mm512_div_pd(acc[v], nv)
                } else {
                    _mm512_mul_pd(acc[v], invv)
                };
                // SAFETY: row p of w, masked columns below n (caller).
                unsafe {
                    let q = w.add(p * ldw + j0 + 8 * v);
                    let old = _mm512_maskz_loadu_pd(masks[v], q);
                    let new = _mm512_sub_pd(old, _mm512_mul_pd(lrv, g));
                    _mm512_mask_storeu_pd(q, masks[v], new);
                }
            }
        }
        j0 += nr;
    }
}

/// `tanh` of 8 `f64` lanes with exactly the operations of GNU libc 2.36's `tanh` on x86-64
/// CPUs with FMA (`sysdeps/ieee754/dbl-64/s_tanh.c` calling `__expm1_fma`, the FMA build
/// of `s_expm1.c`), so every result is bit for bit the C library's: the same reductions,
/// the same polynomial with the same fused multiply-adds (as GCC contracted them in that
/// build, read from its machine code), the same exponent arithmetic. See
/// [`super::tanh_glibc`] for the scalar statement of the same sequence and the tests.
#[target_feature(enable = "avx512f")]
pub(super) fn tanh_pd(x: std::arch::x86_64::__m512d) -> std::arch::x86_64::__m512d {
    use std::arch::x86_64::{
        __m512d, __m512i, _mm512_add_epi64, _mm512_add_pd, _mm512_and_si512, _mm512_castpd_si512,
        _mm512_castsi512_pd, _mm512_cmpeq_epi64_mask, _mm512_cmpge_epu64_mask,
        _mm512_cmpgt_epi64_mask, _mm512_cmple_epu64_mask, _mm512_cmplt_epi64_mask,
        _mm512_cvtepi32_epi64, _mm512_cvtepi32_pd, _mm512_cvttpd_epi32, _mm512_div_pd,
        _mm512_fmadd_pd, _mm512_fmsub_pd, _mm512_fnmadd_pd, _mm512_mask_blend_epi64,
        _mm512_mask_blend_pd, _mm512_mul_pd, _mm512_set1_epi64, _mm512_set1_pd, _mm512_slli_epi64,
        _mm512_srli_epi64, _mm512_srlv_epi64, _mm512_sub_epi64, _mm512_sub_pd, _mm512_xor_si512,
    };
    let c = |v: f64| _mm512_set1_pd(v);
    let ci = |v: i64| _mm512_set1_epi64(v);
    let bits = |v: __m512d| _mm512_castpd_si512(v);
    let from_bits = |v: __m512i| _mm512_castsi512_pd(v);
    // Constants of s_expm1.c (the values in libm's .rodata).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const Q1: f64 = f64::from_bits(0xbfa1_1111_1111_10f4);
    const Q2: f64 = f64::from_bits(0x3f5a_01a0_19fe_5585);
    const Q3: f64 = f64::from_bits(0xbf14_ce19_9eaa_dbb7);
    const Q4: f64 = f64::from_bits(0x3ed0_cfca_86e6_5239);
    const Q5: f64 = f64::from_bits(0xbe8a_fdb7_6e09_c32d);

    let sign = _mm512_and_si512(bits(x), ci(i64::MIN));
    let a = from_bits(_mm512_xor_si512(bits(x), sign)); // |x|
    let ia = _mm512_srli_epi64::<32>(bits(a)); // high word of |x|
    // |x| >= 1: expm1(|x| + |x|); else expm1(|x| * -2).
    let big = _mm512_cmpge_epu64_mask(ia, ci(0x3ff0_0000));
    let arg = _mm512_mask_blend_pd(big, _mm512_mul_pd(a, c(-2.0)), _mm512_add_pd(a, a));

    // expm1(arg): argument reduction.
    let harg = _mm512_srli_epi64::<32>(_mm512_and_si512(bits(arg), ci(i64::MAX)));
    let k0 = _mm512_cmple_epu64_mask(harg, ci(0x3fd6_2e42));
    let km1 = !k0 & _mm512_cmple_epu64_mask(harg, ci(0x3ff0_a2b1)); // negative arg only here
    // General: k = (int)(arg * invln2 +- 0.5), t = k, hi = fma(-t, ln2_hi, arg), lo = t ln2_lo.
    let half = _mm512_mask_blend_pd(big, c(-0.5), c(0.5));
    let kf = _mm512_add_pd(half, _mm512_mul_pd(arg, c(INVLN2)));
    let k32 = _mm512_cvttpd_epi32(kf);
    let t = _mm512_cvtepi32_pd(k32);
    let k = _mm512_mask_blend_epi64(km1, _mm512_cvtepi32_epi64(k32), ci(-1));
    let k = _mm512_mask_blend_epi64(k0, k, ci(0));
    let hi = _mm512_mask_blend_pd(
        km1,
        _mm512_fnmadd_pd(t, c(LN2_HI), arg),
        _mm512_add_pd(arg, c(LN2_HI)),
    );
    let lo = _mm512_mask_blend_pd(km1, _mm512_mul_pd(t, c(LN2_LO)), c(-LN2_LO));
    let xr0 = _mm512_sub_pd(hi, lo);
    let cc = _mm512_sub_pd(_mm512_sub_pd(hi, xr0), lo);
    let xr = _mm512_mask_blend_pd(k0, xr0, arg);
    // The primary range: the polynomial with GCC's contractions.
    let hfx = _mm512_mul_pd(xr, c(0.5));
    let hxs = _mm512_mul_pd(xr, hfx);
    let r2 = _mm512_fmadd_pd(hxs, c(Q3), c(Q2));
    let r3 = _mm512_fmadd_pd(hxs, c(Q5), c(Q4));
    let h2 = _mm512_mul_pd(hxs, hxs);
    let r1 = _mm512_fmadd_pd(hxs, c(Q1), c(1.0));
    let h4 = _mm512_mul_pd(h2, h2);
    let r1 = _mm512_fmadd_pd(h4, r3, _mm512_fmadd_pd(h2, r2, r1));
    let tt = _mm512_fnmadd_pd(r1, hfx, c(3.0));
    let num = _mm512_sub_pd(r1, tt);
    let den = _mm512_fnmadd_pd(xr, tt, c(6.0));
    let e = _mm512_mul_pd(_mm512_div_pd(num, den), hxs);
    // k == 0.
    let r_k0 = _mm512_sub_pd(xr, _mm512_fmsub_pd(e, xr, hxs));
    // k != 0.
    let e3 = _mm512_sub_pd(_mm512_fmsub_pd(_mm512_sub_pd(e, cc), xr, cc), hxs);
    let r_km1 = _mm512_fmadd_pd(c(0.5), _mm512_sub_pd(xr, e3), c(-0.5));
    let kexp = _mm512_slli_epi64::<52>(k); // k added to the exponent: + (k << 20) on the high word
    let e3mx = _mm512_sub_pd(e3, xr);
    // k <= -2 or k > 56: y = 1 - (e - x), exponent + k, minus 1.
    let ya = from_bits(_mm512_add_epi64(bits(_mm512_sub_pd(c(1.0), e3mx)), kexp));
    let r_a = _mm512_sub_pd(ya, c(1.0));
    // 2 <= k < 20: t = 1 - 2^-k (high word 0x3ff00000 - (0x200000 >> k)), y = t - (e - x).
    let tb_hi = _mm512_sub_epi64(ci(0x3ff0_0000), _mm512_srlv_epi64(ci(0x20_0000), k));
    let tb = from_bits(_mm512_slli_epi64::<32>(tb_hi));
    let r_b = from_bits(_mm512_add_epi64(bits(_mm512_sub_pd(tb, e3mx)), kexp));
    // 20 <= k <= 56: t = 2^-k (high word (0x3ff - k) << 20), y = (x - (e + t)) + 1.
    let tc = from_bits(_mm512_slli_epi64::<52>(_mm512_sub_epi64(ci(0x3ff), k)));
    let yc = _mm512_add_pd(_mm512_sub_pd(xr, _mm512_add_pd(e3, tc)), c(1.0));
    let r_c = from_bits(_mm512_add_epi64(bits(yc), kexp));
    let in_a = _mm512_cmplt_epi64_mask(k, ci(-1)) | _mm512_cmpgt_epi64_mask(k, ci(56));
    let in_c = _mm512_cmpgt_epi64_mask(k, ci(19)) & !in_a;
    let mut r = _mm512_mask_blend_pd(in_c, r_b, r_c);
    r = _mm512_mask_blend_pd(in_a, r, r_a);
    // k == -1 also comes out of the general reduction (arguments just above 1.5 ln2 in
    // magnitude); k == 1 and k == 0 do not for tanh's arguments (positive ones are >= 2).
    r = _mm512_mask_blend_pd(_mm512_cmpeq_epi64_mask(k, ci(-1)), r, r_km1);
    let em1 = _mm512_mask_blend_pd(k0, r, r_k0);

    // tanh from expm1: |x| >= 1: 1 - 2 / (t + 2); else -t / (t + 2).
    let two = c(2.0);
    let z_big = _mm512_sub_pd(c(1.0), _mm512_div_pd(two, _mm512_add_pd(em1, two)));
    let z_small = _mm512_div_pd(
        from_bits(_mm512_xor_si512(bits(em1), ci(i64::MIN))),
        _mm512_add_pd(em1, two),
    );
    let z = _mm512_mask_blend_pd(big, z_small, z_big);
    // |x| >= 22: 1 - 1e-300 (= 1); then the sign of x.
    let huge = _mm512_cmpge_epu64_mask(ia, ci(0x4036_0000));
    let z = _mm512_mask_blend_pd(huge, z, c(1.0 - 1e-300));
    let mut out = from_bits(_mm512_xor_si512(bits(z), sign));
    // |x| < 2^-55 (and +-0): x * (1 + x) (x itself for zeros).
    let tiny = _mm512_cmple_epu64_mask(ia, ci(0x3c7f_ffff));
    out = _mm512_mask_blend_pd(tiny, out, _mm512_mul_pd(_mm512_add_pd(c(1.0), x), x));
    let zero = _mm512_cmple_epu64_mask(_mm512_and_si512(bits(x), ci(i64::MAX)), ci(0));
    out = _mm512_mask_blend_pd(zero, out, x);
    // inf and NaN: 1/x + 1 or 1/x - 1.
    let nonfinite = _mm512_cmpge_epu64_mask(ia, ci(0x7ff0_0000));
    let inv = _mm512_div_pd(c(1.0), x);
    let special = _mm512_mask_blend_pd(
        _mm512_cmplt_epi64_mask(bits(x), ci(0)),
        _mm512_add_pd(inv, c(1.0)),
        _mm512_sub_pd(inv, c(1.0)),
    );
    _mm512_mask_blend_pd(nonfinite, out, special)
}

/// `tanh` over a slice of `f64`, 8 lanes at a time with [`tanh_pd`].
///
/// # Safety
/// AVX-512F is available.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tanh_slice_f64(xs: &mut [f64]) {
    use std::arch::x86_64::{_mm512_mask_storeu_pd, _mm512_maskz_loadu_pd};
    for chunk in xs.chunks_mut(8) {
        let mask = ((1u32 << chunk.len()) - 1) as u8;
        // SAFETY: the mask selects exactly the chunk's elements.
        unsafe {
            let p = chunk.as_mut_ptr();
            _mm512_mask_storeu_pd(p, mask, tanh_pd(_mm512_maskz_loadu_pd(mask, p)));
        }
    }
}

/// Columns per block of [`csr_product_f64`]: 8 vectors of 8 `f64` lanes.
pub(super) const SPARSE_F64_NV: usize = 8;

/// Lanes of vector `v` of an `f64` block with `cols` columns that hold a column.
#[inline]
fn mask8_for(cols: usize, v: usize) -> u8 {
    let lo = 8 * v;
    if cols >= lo + 8 {
        0xFF
    } else if cols > lo {
        ((1u32 << (cols - lo)) - 1) as u8
    } else {
        0
    }
}

/// [`csr_rows`] for `f64`: the nonzeros of `rows` rows of `x` (row stride `ldx`, `cols`
/// columns), row by row in column order. NaN counts as nonzero. Returns the number of
/// nonzeros.
///
/// # Safety
/// AVX-512F is available; `x` addresses `rows x cols` elements with row stride `ldx`;
/// `ptr.len() > rows`; `idx` and `vals` hold at least `rows * cols + 8` elements.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn csr_rows_f64(
    x: *const f64,
    rows: usize,
    cols: usize,
    ldx: usize,
    ptr: &mut [u32],
    idx: &mut [u32],
    vals: &mut [f64],
) -> usize {
    use std::arch::x86_64::{
        __m256i, _CMP_NEQ_UQ, _mm256_storeu_si256, _mm512_add_epi64, _mm512_cmp_pd_mask,
        _mm512_cvtepi64_epi32, _mm512_maskz_compress_epi64, _mm512_maskz_compress_pd,
        _mm512_maskz_loadu_pd, _mm512_set1_epi64, _mm512_setr_epi64, _mm512_setzero_pd,
        _mm512_storeu_pd,
    };
    let lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    let mut pos = 0usize;
    for (i, start) in ptr.iter_mut().take(rows).enumerate() {
        *start = pos as u32;
        let mut j = 0;
        while j < cols {
            let mask = mask8_for(cols - j, 0);
            // SAFETY: columns j.. under the mask are < cols; pos + 8 <= rows * cols + 8
            // because pos counts nonzeros seen so far, at most i * cols + j.
            unsafe {
                let v = _mm512_maskz_loadu_pd(mask, x.add(i * ldx + j));
                let nz = _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_pd()) & mask;
                let at = _mm512_add_epi64(lanes, _mm512_set1_epi64(j as i64));
                _mm512_storeu_pd(vals.as_mut_ptr().add(pos), _mm512_maskz_compress_pd(nz, v));
                let at32 = _mm512_cvtepi64_epi32(_mm512_maskz_compress_epi64(nz, at));
                _mm256_storeu_si256(idx.as_mut_ptr().add(pos).cast::<__m256i>(), at32);
                pos += nz.count_ones() as usize;
            }
            j += 8;
        }
    }
    ptr[rows] = pos as u32;
    pos
}

/// `out[i, j] = sum over the nonzeros (p, v) of row i of v * w[p, j]`, one fused
/// multiply-add chain per element over the nonzeros in column order, from `+0`, for rows
/// `r0..r1` of a CSR matrix and output columns `c0..n` (`c0` a multiple of 64), with
/// `w[p, j] = w[p * ldw + j]`.
///
/// # Safety
/// AVX-512F is available; every index in `idx[ptr[r0]..ptr[r1]]` is a row of `w`;
/// `w` addresses those rows' `n` columns, `out` `r1 x n` with row stride `ldo`; no other
/// thread writes the same part of `out` meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn csr_product_f64(
    (r0, r1): (usize, usize),
    (c0, n): (usize, usize),
    ptr: &[u32],
    idx: &[u32],
    vals: &[f64],
    w: *const f64,
    ldw: usize,
    out: *mut f64,
    ldo: usize,
) {
    use std::arch::x86_64::_mm512_mask_storeu_pd;
    let nr = 8 * SPARSE_F64_NV;
    let mut j0 = c0;
    while j0 < n {
        let cols = nr.min(n - j0);
        let masks: [u8; SPARSE_F64_NV] = std::array::from_fn(|v| mask8_for(cols, v));
        for i in r0..r1 {
            let (lo, hi) = (ptr[i] as usize, ptr[i + 1] as usize);
            // SAFETY: the nonzeros' columns are rows of w; masked lanes stay below n.
            let acc = unsafe { sparse_dots_f64(&idx[lo..hi], &vals[lo..hi], w, ldw, j0, masks) };
            for v in 0..SPARSE_F64_NV {
                // SAFETY: row i < r1, masked columns below n.
                unsafe { _mm512_mask_storeu_pd(out.add(i * ldo + j0 + 8 * v), masks[v], acc[v]) };
            }
        }
        j0 += nr;
    }
}

/// [`sparse_dots`] for `f64`: `sum over k of vals[k] * m[idx[k], j0 .. j0 + 64]` (masked),
/// one fused multiply-add chain per lane in `k` order from `+0`, in registers.
///
/// # Safety
/// AVX-512F is available; every `idx[k]` is a row of `m` (row stride `ldm`) whose masked
/// columns from `j0` are in bounds.
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn sparse_dots_f64(
    idx: &[u32],
    vals: &[f64],
    m: *const f64,
    ldm: usize,
    j0: usize,
    masks: [u8; SPARSE_F64_NV],
) -> [std::arch::x86_64::__m512d; SPARSE_F64_NV] {
    use std::arch::x86_64::{
        _mm512_fmadd_pd, _mm512_maskz_loadu_pd, _mm512_set1_pd, _mm512_setzero_pd,
    };
    let mut acc = [_mm512_setzero_pd(); SPARSE_F64_NV];
    for (&p, &x) in idx.iter().zip(vals) {
        let xv = _mm512_set1_pd(x);
        // SAFETY: row p of m, masked columns in bounds (caller).
        let row = unsafe { m.add(p as usize * ldm + j0) };
        #[allow(clippy::needless_range_loop)] // constant bounds: fully unrolled
        for v in 0..SPARSE_F64_NV {
            // SAFETY: as above.
            let mv = unsafe { _mm512_maskz_loadu_pd(masks[v], row.add(8 * v)) };
            acc[v] = _mm512_fmadd_pd(xv, mv, acc[v]);
        }
    }
    acc
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
