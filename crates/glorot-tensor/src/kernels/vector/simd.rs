//! The vector abstraction the portable-vector kernels are written against: an
//! instruction set's detection token implementing [`Simd`], and operations ([`WithSimd`])
//! run under its target features.
#![allow(unsafe_code)]

/// An operation written once for every instruction set, run by [`Simd::vectorize`].
pub(crate) trait WithSimd<S: Simd> {
    /// What the operation returns.
    type Output;
    /// The operation's body. Implementations are `#[inline(always)]` (as is every
    /// generic function they call) so that the whole body is compiled inside the
    /// instruction set's `#[target_feature]` function, where the intrinsics inline.
    fn with_simd(self, s: S) -> Self::Output;
}

/// A vector instruction set: `F32` holds [`Simd::L32`] `f32` lanes, `F64` [`Simd::L64`]
/// `f64` lanes. The value is a token proving that the CPU has the instruction set (only
/// its detection makes one), which makes every operation safe to call; the operations
/// that read or write memory are `unsafe` for their pointers only.
///
/// Every arithmetic operation is the IEEE operation rounded once (`fmadd` fused), so
/// kernels written with them give the same bits on every implementation; [`Simd::max`],
/// [`Simd::min`] and the comparisons have x86's semantics with NaN (see each).
///
/// # Safety
/// Implementations may only be constructed after detecting the instruction set, and
/// must implement each operation as documented (the kernels' memory safety relies on the
/// loads and stores touching exactly the lanes stated).
pub(crate) unsafe trait Simd: Copy + Send + Sync + 'static {
    /// The name in manifests and logs.
    const NAME: &'static str;
    /// `f32` lanes per vector.
    const L32: usize;
    /// `f64` lanes per vector.
    const L64: usize;
    /// Whether the instruction set has 32 vector registers (else 16): wider tiles.
    const REGS32: bool;

    /// `L32` `f32` lanes.
    type F32: Copy;
    /// `L64` `f64` lanes.
    type F64: Copy;
    /// `L32` 32-bit integer lanes.
    type I32: Copy;
    /// `L64` 64-bit integer lanes.
    type I64: Copy;
    /// The first `n` lanes of an `F32` (for loads and stores of a tail).
    type Tail32: Copy;
    /// The first `n` lanes of an `F64`.
    type Tail64: Copy;

    /// Runs `op` compiled with the instruction set's target features, in a function of
    /// its own marked `#[inline(never)]` (rustc 1.95 does not pass that mark on to LLVM
    /// for `#[target_feature]` functions, so an operation run from inside another one,
    /// such as a tile's dot products, may still be inlined into it).
    fn vectorize<Op: WithSimd<Self>>(self, op: Op) -> Op::Output;

    // ---- f32 ----
    fn splat(self, x: f32) -> Self::F32;
    fn zero(self) -> Self::F32;
    fn add(self, a: Self::F32, b: Self::F32) -> Self::F32;
    fn sub(self, a: Self::F32, b: Self::F32) -> Self::F32;
    fn mul(self, a: Self::F32, b: Self::F32) -> Self::F32;
    fn div(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// `a * b + c`, rounded once.
    fn fmadd(self, a: Self::F32, b: Self::F32, c: Self::F32) -> Self::F32;
    /// `a > b ? a : b` lane by lane (so `b` when either is NaN: x86's `maxps`).
    fn max(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// `a < b ? a : b` lane by lane (so `b` when either is NaN: x86's `minps`).
    fn min(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// All ones where `a < b` (ordered), else zeros.
    fn lt(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// All ones where `a > b` (ordered), else zeros.
    fn gt(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// `mask ? t : f` lane by lane (`mask` from a comparison).
    fn select(self, mask: Self::F32, t: Self::F32, f: Self::F32) -> Self::F32;
    /// Bitwise and, or of the lanes' bits.
    fn and(self, a: Self::F32, b: Self::F32) -> Self::F32;
    fn or(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// Rounded to the nearest integer, ties to even.
    fn round(self, a: Self::F32) -> Self::F32;
    /// Bit `l` set where lane `l` is not zero (NaN included; `-0` is zero).
    fn nonzero_bits(self, a: Self::F32) -> u32;
    /// Integer-valued lanes (`|a| < 2^31`) converted exactly to integers.
    fn to_i32(self, a: Self::F32) -> Self::I32;
    /// Lane-wise `a - b`, `a >> 1` (arithmetic) on integers.
    fn sub_i32(self, a: Self::I32, b: Self::I32) -> Self::I32;
    fn half_i32(self, a: Self::I32) -> Self::I32;
    /// `2^n` for integer lanes `-126 <= n <= 127` (the exponent field `n + 127`).
    fn pow2(self, n: Self::I32) -> Self::F32;

    /// The first `n` lanes (all when `n >= L32`).
    fn tail32(self, n: usize) -> Self::Tail32;
    /// Loads `L32` lanes.
    ///
    /// # Safety
    /// `p` addresses `L32` readable `f32`.
    unsafe fn load(self, p: *const f32) -> Self::F32;
    /// Stores `L32` lanes.
    ///
    /// # Safety
    /// `p` addresses `L32` writable `f32`.
    unsafe fn store(self, p: *mut f32, v: Self::F32);
    /// Loads the lanes of `t`, zeros in the others.
    ///
    /// # Safety
    /// `p` addresses the lanes of `t`, readable (the others are not touched).
    unsafe fn load_tail(self, t: Self::Tail32, p: *const f32) -> Self::F32;
    /// Stores the lanes of `t`.
    ///
    /// # Safety
    /// `p` addresses the lanes of `t`, writable (the others are not touched).
    unsafe fn store_tail(self, t: Self::Tail32, p: *mut f32, v: Self::F32);

    // ---- f64 ----
    fn splat64(self, x: f64) -> Self::F64;
    fn zero64(self) -> Self::F64;
    fn add64(self, a: Self::F64, b: Self::F64) -> Self::F64;
    fn sub64(self, a: Self::F64, b: Self::F64) -> Self::F64;
    fn mul64(self, a: Self::F64, b: Self::F64) -> Self::F64;
    fn div64(self, a: Self::F64, b: Self::F64) -> Self::F64;
    /// `a * b + c`, rounded once.
    fn fmadd64(self, a: Self::F64, b: Self::F64, c: Self::F64) -> Self::F64;
    /// `a * b - c`, rounded once.
    fn fmsub64(self, a: Self::F64, b: Self::F64, c: Self::F64) -> Self::F64;
    /// `c - a * b`, rounded once.
    fn fnmadd64(self, a: Self::F64, b: Self::F64, c: Self::F64) -> Self::F64;
    /// `mask ? t : f` lane by lane (`mask` all ones or all zeros per lane).
    fn select64(self, mask: Self::I64, t: Self::F64, f: Self::F64) -> Self::F64;
    /// Bit `l` set where lane `l` is not zero (NaN included; `-0` is zero).
    fn nonzero_bits64(self, a: Self::F64) -> u32;
    /// The lanes' bits, and back.
    fn bits64(self, a: Self::F64) -> Self::I64;
    fn f64_of_bits(self, a: Self::I64) -> Self::F64;
    /// Truncated to `i32` then back to `f64` and widened to `i64` (x86's `cvttpd2dq`:
    /// lanes out of `i32`'s range are never used by the kernels).
    fn trunc_i32_64(self, a: Self::F64) -> (Self::F64, Self::I64);
    fn splat_i64(self, x: i64) -> Self::I64;
    fn and_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn or_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn xor_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn andnot_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn add_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn sub_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    /// All ones where `a == b`, `a > b` (signed).
    fn eq_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn gt_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;
    fn shl_i64<const N: i32>(self, a: Self::I64) -> Self::I64;
    fn shr_i64<const N: i32>(self, a: Self::I64) -> Self::I64;
    /// `a >> b` (logical) lane by lane, `0 <= b < 64`.
    fn shrv_i64(self, a: Self::I64, b: Self::I64) -> Self::I64;

    /// The first `n` lanes (all when `n >= L64`).
    fn tail64(self, n: usize) -> Self::Tail64;
    /// As [`Simd::load`] for `f64`.
    ///
    /// # Safety
    /// `p` addresses `L64` readable `f64`.
    unsafe fn load64(self, p: *const f64) -> Self::F64;
    /// # Safety
    /// `p` addresses `L64` writable `f64`.
    unsafe fn store64(self, p: *mut f64, v: Self::F64);
    /// # Safety
    /// As [`Simd::load_tail`].
    unsafe fn load_tail64(self, t: Self::Tail64, p: *const f64) -> Self::F64;
    /// # Safety
    /// As [`Simd::store_tail`].
    unsafe fn store_tail64(self, t: Self::Tail64, p: *mut f64, v: Self::F64);
}
