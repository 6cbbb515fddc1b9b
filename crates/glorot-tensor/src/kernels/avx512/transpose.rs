//! Transposes through gathers, for the backward product of the `f32` kernels.
//!
//! Everything here is `unsafe` to call (see each function's `# Safety`).
#![allow(unsafe_code)]

use std::arch::x86_64::{
    _mm512_cmp_ps_mask, _mm512_mask_blend_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_sub_ps,
};

use super::tiled::{Act, mask_for};

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
                    Act::Softsign => {
                        let d = _mm512_sub_ps(one, super::math::abs_ps(av));
                        _mm512_mul_ps(d, d)
                    }
                    Act::Identity => one,
                };
                _mm512_mask_storeu_ps(out.add(i * ldo + j), mask, _mm512_mul_ps(d, g));
            }
            j += 16;
        }
    }
}
