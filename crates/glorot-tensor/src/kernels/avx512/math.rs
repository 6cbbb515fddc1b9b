//! Vector element-wise functions: the `f32` ReLU, `exp`, sigmoid and `tanh` of the fused
//! epilogues, and the `f64` port of GNU libc's `tanh`.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512, __mmask16, _CMP_LT_OQ, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT, _mm512_add_ps,
    _mm512_and_epi32, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask, _mm512_div_ps,
    _mm512_fmadd_ps, _mm512_mask_blend_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
    _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_epi32, _mm512_roundscale_ps,
    _mm512_scalef_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_sub_ps,
};

use super::tiled::Act;

/// `act(z)` on 16 lanes.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn apply(act: Act, z: __m512) -> __m512 {
    match act {
        Act::Identity => z,
        Act::Relu => relu_ps(z),
        Act::Sigmoid => sigmoid_ps(z),
        Act::Tanh => tanh_ps(z),
        Act::Softsign => softsign_ps(z),
    }
}

/// `|x|` as `max(x, 0 - x)`, exact (the portable kernels' sequence; only used in
/// `1 +- |x|`, where the sign of a zero does not matter).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn abs_ps(x: __m512) -> __m512 {
    _mm512_max_ps(x, _mm512_sub_ps(_mm512_setzero_ps(), x))
}

/// Softsign, `z / (1 + |z|)`: the scalar [`crate::softsign`]'s operations,
/// each exact or correctly rounded, so the same bits.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn softsign_ps(z: __m512) -> __m512 {
    _mm512_div_ps(z, _mm512_add_ps(_mm512_set1_ps(1.0), abs_ps(z)))
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

/// `tanh(x)`, error at most a few ulp for every `f32` (see the tests of `fused::activate_slice`).
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

/// `tanh` of 8 `f64` lanes with exactly the operations of GNU libc 2.36's `tanh` on x86-64
/// CPUs with FMA (`sysdeps/ieee754/dbl-64/s_tanh.c` calling `__expm1_fma`, the FMA build
/// of `s_expm1.c`), so every result is bit for bit the C library's: the same reductions,
/// the same polynomial with the same fused multiply-adds (as GCC contracted them in that
/// build, read from its machine code), the same exponent arithmetic. See
/// [`crate::replay::tanh_glibc`] for the scalar statement of the same sequence and the tests.
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
