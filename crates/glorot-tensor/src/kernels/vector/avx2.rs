//! [`Simd`] for x86-64 with AVX2 and FMA: 8 `f32` or 4 `f64` lanes, 16 registers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::simd::{Simd, WithSimd};

/// Proof that this CPU has AVX2 and FMA: only [`Avx2::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx2 {
    _detected: (),
}

impl Avx2 {
    /// The token, if the CPU has AVX2 and FMA.
    pub(crate) fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
            .then_some(Avx2 { _detected: () })
    }

    /// The kernels, for [`crate::isa::Isa::kernels`] (only to the holder of a token).
    pub(crate) fn kernels(self) -> &'static dyn crate::kernels::Kernels {
        &super::Vector(Avx2 { _detected: () })
    }
}

/// Lane masks of the first `n` of 8 (`n` in 0..=8), row `n`.
static TAILS32: [[i32; 8]; 9] = {
    let mut t = [[0; 8]; 9];
    let mut n = 0;
    while n <= 8 {
        let mut l = 0;
        while l < n {
            t[n][l] = -1;
            l += 1;
        }
        n += 1;
    }
    t
};

/// Lane masks of the first `n` of 4 (`n` in 0..=4), row `n`.
static TAILS64: [[i64; 4]; 5] = {
    let mut t = [[0; 4]; 5];
    let mut n = 0;
    while n <= 4 {
        let mut l = 0;
        while l < n {
            t[n][l] = -1;
            l += 1;
        }
        n += 1;
    }
    t
};

// SAFETY: only `detect` constructs the token, after checking AVX2 and FMA; every
// operation below is the single instruction (or documented sequence) its doc states, and
// the loads and stores touch exactly the lanes documented (masked moves for tails).
// Inside every method, the intrinsics are safe to call because the token exists.
unsafe impl Simd for Avx2 {
    const NAME: &'static str = "avx2";
    const L32: usize = 8;
    const L64: usize = 4;
    const REGS32: bool = false;
    type F32 = __m256;
    type F64 = __m256d;
    type I32 = __m256i;
    type I64 = __m256i;
    type Tail32 = __m256i;
    type Tail64 = __m256i;

    #[inline(always)]
    fn vectorize<Op: WithSimd<Self>>(self, op: Op) -> Op::Output {
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        unsafe fn run<Op: WithSimd<Avx2>>(s: Avx2, op: Op) -> Op::Output {
            op.with_simd(s)
        }
        // SAFETY: the token proves AVX2 and FMA.
        unsafe { run(self, op) }
    }

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn zero(self) -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn gt(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn select(self, mask: __m256, t: __m256, f: __m256) -> __m256 {
        unsafe { _mm256_blendv_ps(f, t, mask) }
    }
    #[inline(always)]
    fn and(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn nonzero_bits(self, a: __m256) -> u32 {
        unsafe { _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(a, _mm256_setzero_ps())) as u32 }
    }
    #[inline(always)]
    fn to_i32(self, a: __m256) -> __m256i {
        unsafe { _mm256_cvtps_epi32(a) }
    }
    #[inline(always)]
    fn sub_i32(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_sub_epi32(a, b) }
    }
    #[inline(always)]
    fn half_i32(self, a: __m256i) -> __m256i {
        unsafe { _mm256_srai_epi32::<1>(a) }
    }
    #[inline(always)]
    fn pow2(self, n: __m256i) -> __m256 {
        unsafe {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                n,
                _mm256_set1_epi32(127),
            )))
        }
    }

    #[inline(always)]
    fn tail32(self, n: usize) -> __m256i {
        // SAFETY: row min(n, 8) of the table holds 8 i32.
        unsafe { _mm256_loadu_si256(TAILS32[n.min(8)].as_ptr().cast()) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail(self, t: __m256i, p: *const f32) -> __m256 {
        unsafe { _mm256_maskload_ps(p, t) }
    }
    #[inline(always)]
    unsafe fn store_tail(self, t: __m256i, p: *mut f32, v: __m256) {
        unsafe { _mm256_maskstore_ps(p, t, v) }
    }

    #[inline(always)]
    fn splat64(self, x: f64) -> __m256d {
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    fn zero64(self) -> __m256d {
        unsafe { _mm256_setzero_pd() }
    }
    #[inline(always)]
    fn add64(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_add_pd(a, b) }
    }
    #[inline(always)]
    fn sub64(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_sub_pd(a, b) }
    }
    #[inline(always)]
    fn mul64(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    fn div64(self, a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_div_pd(a, b) }
    }
    #[inline(always)]
    fn fmadd64(self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn fmsub64(self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fmsub_pd(a, b, c) }
    }
    #[inline(always)]
    fn fnmadd64(self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fnmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn select64(self, mask: __m256i, t: __m256d, f: __m256d) -> __m256d {
        unsafe { _mm256_blendv_pd(f, t, _mm256_castsi256_pd(mask)) }
    }
    #[inline(always)]
    fn nonzero_bits64(self, a: __m256d) -> u32 {
        unsafe { _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(a, _mm256_setzero_pd())) as u32 }
    }
    #[inline(always)]
    fn bits64(self, a: __m256d) -> __m256i {
        unsafe { _mm256_castpd_si256(a) }
    }
    #[inline(always)]
    fn f64_of_bits(self, a: __m256i) -> __m256d {
        unsafe { _mm256_castsi256_pd(a) }
    }
    #[inline(always)]
    fn trunc_i32_64(self, a: __m256d) -> (__m256d, __m256i) {
        unsafe {
            let k = _mm256_cvttpd_epi32(a);
            (_mm256_cvtepi32_pd(k), _mm256_cvtepi32_epi64(k))
        }
    }
    #[inline(always)]
    fn splat_i64(self, x: i64) -> __m256i {
        unsafe { _mm256_set1_epi64x(x) }
    }
    #[inline(always)]
    fn and_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_and_si256(a, b) }
    }
    #[inline(always)]
    fn or_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_or_si256(a, b) }
    }
    #[inline(always)]
    fn xor_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_xor_si256(a, b) }
    }
    #[inline(always)]
    fn andnot_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_andnot_si256(a, b) }
    }
    #[inline(always)]
    fn add_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_add_epi64(a, b) }
    }
    #[inline(always)]
    fn sub_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_sub_epi64(a, b) }
    }
    #[inline(always)]
    fn eq_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_cmpeq_epi64(a, b) }
    }
    #[inline(always)]
    fn gt_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_cmpgt_epi64(a, b) }
    }
    #[inline(always)]
    fn shl_i64<const N: i32>(self, a: __m256i) -> __m256i {
        unsafe { _mm256_slli_epi64::<N>(a) }
    }
    #[inline(always)]
    fn shr_i64<const N: i32>(self, a: __m256i) -> __m256i {
        unsafe { _mm256_srli_epi64::<N>(a) }
    }
    #[inline(always)]
    fn shrv_i64(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_srlv_epi64(a, b) }
    }

    #[inline(always)]
    fn tail64(self, n: usize) -> __m256i {
        // SAFETY: row min(n, 4) of the table holds 4 i64.
        unsafe { _mm256_loadu_si256(TAILS64[n.min(4)].as_ptr().cast()) }
    }
    #[inline(always)]
    unsafe fn load64(self, p: *const f64) -> __m256d {
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store64(self, p: *mut f64, v: __m256d) {
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail64(self, t: __m256i, p: *const f64) -> __m256d {
        unsafe { _mm256_maskload_pd(p, t) }
    }
    #[inline(always)]
    unsafe fn store_tail64(self, t: __m256i, p: *mut f64, v: __m256d) {
        unsafe { _mm256_maskstore_pd(p, t, v) }
    }
}
