//! [`Simd`] for aarch64 NEON: 4 `f32` or 2 `f64` lanes, 32 registers.
//!
//! NEON has no masked loads and stores: a tail goes through a small buffer on the stack.
//! Where x86 and NEON differ on NaN or out-of-range inputs (`maxps`, `cvttpd2dq`), the
//! operations below emulate x86's result, as the [`Simd`] documentation states.
#![allow(unsafe_code)]

use std::arch::aarch64::*;

use super::simd::{Simd, WithSimd};

/// Proof that this CPU has NEON: only [`Neon::detect`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neon {
    _detected: (),
}

impl Neon {
    /// The token, if the CPU has NEON (every aarch64 Linux CPU does).
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Neon { _detected: () })
    }

    /// The kernels, for [`crate::isa::Isa::kernels`] (only to the holder of a token).
    pub(crate) fn kernels(self) -> &'static dyn crate::kernels::Kernels {
        &super::Vector(Neon { _detected: () })
    }
}

// SAFETY: only `detect` constructs the token, after checking NEON; every operation below
// is the instruction (or documented sequence) its doc in `Simd` states, and the loads and
// stores touch exactly the lanes documented (tails through a stack buffer). Inside every
// method, the intrinsics are safe to call because the token exists.
unsafe impl Simd for Neon {
    const NAME: &'static str = "neon";
    const L32: usize = 4;
    const L64: usize = 2;
    const REGS32: bool = true;
    type F32 = float32x4_t;
    type F64 = float64x2_t;
    type I32 = int32x4_t;
    type I64 = int64x2_t;
    type Tail32 = usize;
    type Tail64 = usize;

    #[inline(always)]
    fn vectorize<Op: WithSimd<Self>>(self, op: Op) -> Op::Output {
        #[target_feature(enable = "neon")]
        #[inline(never)]
        unsafe fn run<Op: WithSimd<Neon>>(s: Neon, op: Op) -> Op::Output {
            op.with_simd(s)
        }
        // SAFETY: the token proves NEON.
        unsafe { run(self, op) }
    }

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn zero(self) -> float32x4_t {
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vbslq_f32(vcgtq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vbslq_f32(vcltq_f32(a, b), a, b) }
    }
    #[inline(always)]
    fn lt(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vreinterpretq_f32_u32(vcltq_f32(a, b)) }
    }
    #[inline(always)]
    fn gt(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vreinterpretq_f32_u32(vcgtq_f32(a, b)) }
    }
    #[inline(always)]
    fn select(self, mask: float32x4_t, t: float32x4_t, f: float32x4_t) -> float32x4_t {
        unsafe { vbslq_f32(vreinterpretq_u32_f32(mask), t, f) }
    }
    #[inline(always)]
    fn and(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe {
            vreinterpretq_f32_u32(vandq_u32(
                vreinterpretq_u32_f32(a),
                vreinterpretq_u32_f32(b),
            ))
        }
    }
    #[inline(always)]
    fn or(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe {
            vreinterpretq_f32_u32(vorrq_u32(
                vreinterpretq_u32_f32(a),
                vreinterpretq_u32_f32(b),
            ))
        }
    }
    #[inline(always)]
    fn round(self, a: float32x4_t) -> float32x4_t {
        unsafe { vrndnq_f32(a) }
    }
    #[inline(always)]
    fn nonzero_bits(self, a: float32x4_t) -> u32 {
        const BITS: [u32; 4] = [1, 2, 4, 8];
        unsafe {
            let zero = vceqq_f32(a, vdupq_n_f32(0.0)); // false for NaN
            vaddvq_u32(vbicq_u32(vld1q_u32(BITS.as_ptr()), zero))
        }
    }
    #[inline(always)]
    fn to_i32(self, a: float32x4_t) -> int32x4_t {
        unsafe { vcvtnq_s32_f32(a) }
    }
    #[inline(always)]
    fn sub_i32(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        unsafe { vsubq_s32(a, b) }
    }
    #[inline(always)]
    fn half_i32(self, a: int32x4_t) -> int32x4_t {
        unsafe { vshrq_n_s32::<1>(a) }
    }
    #[inline(always)]
    fn pow2(self, n: int32x4_t) -> float32x4_t {
        unsafe { vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n, vdupq_n_s32(127)))) }
    }

    #[inline(always)]
    fn tail32(self, n: usize) -> usize {
        n.min(4)
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail(self, t: usize, p: *const f32) -> float32x4_t {
        let mut buf = [0.0f32; 4];
        // SAFETY: the caller makes the first t <= 4 elements readable.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), t);
            vld1q_f32(buf.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_tail(self, t: usize, p: *mut f32, v: float32x4_t) {
        let mut buf = [0.0f32; 4];
        // SAFETY: the caller makes the first t <= 4 elements writable.
        unsafe {
            vst1q_f32(buf.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, t);
        }
    }

    #[inline(always)]
    fn splat64(self, x: f64) -> float64x2_t {
        unsafe { vdupq_n_f64(x) }
    }
    #[inline(always)]
    fn zero64(self) -> float64x2_t {
        unsafe { vdupq_n_f64(0.0) }
    }
    #[inline(always)]
    fn add64(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        unsafe { vaddq_f64(a, b) }
    }
    #[inline(always)]
    fn sub64(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        unsafe { vsubq_f64(a, b) }
    }
    #[inline(always)]
    fn mul64(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        unsafe { vmulq_f64(a, b) }
    }
    #[inline(always)]
    fn div64(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        unsafe { vdivq_f64(a, b) }
    }
    #[inline(always)]
    fn fmadd64(self, a: float64x2_t, b: float64x2_t, c: float64x2_t) -> float64x2_t {
        unsafe { vfmaq_f64(c, a, b) }
    }
    #[inline(always)]
    fn fmsub64(self, a: float64x2_t, b: float64x2_t, c: float64x2_t) -> float64x2_t {
        // -c + a b, one rounding (negation is exact).
        unsafe { vfmaq_f64(vnegq_f64(c), a, b) }
    }
    #[inline(always)]
    fn fnmadd64(self, a: float64x2_t, b: float64x2_t, c: float64x2_t) -> float64x2_t {
        unsafe { vfmsq_f64(c, a, b) }
    }
    #[inline(always)]
    fn select64(self, mask: int64x2_t, t: float64x2_t, f: float64x2_t) -> float64x2_t {
        unsafe { vbslq_f64(vreinterpretq_u64_s64(mask), t, f) }
    }
    #[inline(always)]
    fn nonzero_bits64(self, a: float64x2_t) -> u32 {
        const BITS: [u64; 2] = [1, 2];
        unsafe {
            let zero = vceqq_f64(a, vdupq_n_f64(0.0)); // false for NaN
            vaddvq_u64(vbicq_u64(vld1q_u64(BITS.as_ptr()), zero)) as u32
        }
    }
    #[inline(always)]
    fn bits64(self, a: float64x2_t) -> int64x2_t {
        unsafe { vreinterpretq_s64_f64(a) }
    }
    #[inline(always)]
    fn f64_of_bits(self, a: int64x2_t) -> float64x2_t {
        unsafe { vreinterpretq_f64_s64(a) }
    }
    #[inline(always)]
    fn trunc_i32_64(self, a: float64x2_t) -> (float64x2_t, int64x2_t) {
        unsafe {
            // x86's cvttpd2dq: truncation, i32::MIN for NaN and out-of-range lanes.
            let in_range = vcaltq_f64(a, vdupq_n_f64(2_147_483_648.0));
            let k = vbslq_s64(in_range, vcvtq_s64_f64(a), vdupq_n_s64(i64::from(i32::MIN)));
            (vcvtq_f64_s64(k), k)
        }
    }
    #[inline(always)]
    fn splat_i64(self, x: i64) -> int64x2_t {
        unsafe { vdupq_n_s64(x) }
    }
    #[inline(always)]
    fn and_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vandq_s64(a, b) }
    }
    #[inline(always)]
    fn or_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vorrq_s64(a, b) }
    }
    #[inline(always)]
    fn xor_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { veorq_s64(a, b) }
    }
    #[inline(always)]
    fn andnot_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vbicq_s64(b, a) }
    }
    #[inline(always)]
    fn add_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vaddq_s64(a, b) }
    }
    #[inline(always)]
    fn sub_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vsubq_s64(a, b) }
    }
    #[inline(always)]
    fn eq_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vreinterpretq_s64_u64(vceqq_s64(a, b)) }
    }
    #[inline(always)]
    fn gt_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        unsafe { vreinterpretq_s64_u64(vcgtq_s64(a, b)) }
    }
    #[inline(always)]
    fn shl_i64<const N: i32>(self, a: int64x2_t) -> int64x2_t {
        unsafe { vshlq_n_s64::<N>(a) }
    }
    #[inline(always)]
    fn shr_i64<const N: i32>(self, a: int64x2_t) -> int64x2_t {
        unsafe { vreinterpretq_s64_u64(vshrq_n_u64::<N>(vreinterpretq_u64_s64(a))) }
    }
    #[inline(always)]
    fn shrv_i64(self, a: int64x2_t, b: int64x2_t) -> int64x2_t {
        // A negative count shifts right (logically, on unsigned lanes).
        unsafe { vreinterpretq_s64_u64(vshlq_u64(vreinterpretq_u64_s64(a), vnegq_s64(b))) }
    }

    #[inline(always)]
    fn tail64(self, n: usize) -> usize {
        n.min(2)
    }
    #[inline(always)]
    unsafe fn load64(self, p: *const f64) -> float64x2_t {
        unsafe { vld1q_f64(p) }
    }
    #[inline(always)]
    unsafe fn store64(self, p: *mut f64, v: float64x2_t) {
        unsafe { vst1q_f64(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail64(self, t: usize, p: *const f64) -> float64x2_t {
        let mut buf = [0.0f64; 2];
        // SAFETY: the caller makes the first t <= 2 elements readable.
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), t);
            vld1q_f64(buf.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_tail64(self, t: usize, p: *mut f64, v: float64x2_t) {
        let mut buf = [0.0f64; 2];
        // SAFETY: the caller makes the first t <= 2 elements writable.
        unsafe {
            vst1q_f64(buf.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, t);
        }
    }
}
