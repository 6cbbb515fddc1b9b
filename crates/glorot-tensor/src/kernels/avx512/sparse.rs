//! Sparse-input kernels: the vector scan of an input's nonzeros, and the products and
//! updates that sum only them (`f32` and `f64`).
//!
//! Everything here is `unsafe` to call (see each function's `# Safety`).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_cmp_ps_mask, _mm512_fmadd_ps, _mm512_mask_storeu_ps,
    _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
};

use super::math::apply;
use super::tiled::Act;
use super::tiled::{mask_for, mask8_for};

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
/// in registers (a function of its own for the same reason as the tiled product's `dots`).
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

/// Columns per block of [`csr_product_f64`]: 8 vectors of 8 `f64` lanes.
pub(super) const SPARSE_F64_NV: usize = 8;

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
