//! Vector element-wise functions written once over [`Simd`]: the `f32` ReLU, `exp`,
//! sigmoid and `tanh` of the fused epilogues, as the same sequence of operations as the
//! AVX-512 ones (`kernels::avx512::math`, so the same bits), and the `f64` port of
//! GNU libc's `tanh`.
#![allow(unsafe_code)]

use super::simd::{Simd, WithSimd};

/// The element-wise function of a fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
    Softsign,
}

impl Act {
    /// The epilogue's function for `act` (identity for `None`).
    pub(crate) fn of(act: Option<crate::Activation>) -> Self {
        match act {
            None => Act::Identity,
            Some(crate::Activation::Relu) => Act::Relu,
            Some(crate::Activation::Sigmoid) => Act::Sigmoid,
            Some(crate::Activation::Tanh) => Act::Tanh,
            Some(crate::Activation::Softsign) => Act::Softsign,
        }
    }
}

/// `act(z)` lane by lane.
#[inline(always)]
pub(super) fn apply<S: Simd>(s: S, act: Act, z: S::F32) -> S::F32 {
    match act {
        Act::Identity => z,
        Act::Relu => relu(s, z),
        Act::Sigmoid => sigmoid(s, z),
        Act::Tanh => tanh(s, z),
        Act::Softsign => softsign(s, z),
    }
}

/// The activation's derivative from its output `a`, as the AVX-512 backward kernel:
/// `1 - a a` (tanh), `a (1 - a)` (sigmoid), `a > 0 ? 1 : 0` (ReLU),
/// `(1 - |a|) (1 - |a|)` (softsign), `1` (identity).
#[inline(always)]
pub(super) fn derivative<S: Simd>(s: S, act: Act, a: S::F32) -> S::F32 {
    let one = s.splat(1.0);
    match act {
        Act::Tanh => s.sub(one, s.mul(a, a)),
        Act::Sigmoid => s.mul(a, s.sub(one, a)),
        Act::Relu => s.select(s.gt(a, s.zero()), one, s.zero()),
        Act::Softsign => {
            let d = s.sub(one, abs(s, a));
            s.mul(d, d)
        }
        Act::Identity => one,
    }
}

/// `max(z, 0)` with NaN passing through (as the scalar [`crate::Activation::Relu`]).
#[inline(always)]
fn relu<S: Simd>(s: S, z: S::F32) -> S::F32 {
    let zero = s.zero();
    s.select(s.lt(z, zero), zero, z)
}

/// `|x|` as `max(x, -x)`: exact. For `x = -0.0` it may give either zero, and for NaN
/// a NaN; the callers only use it in `1 +- |x|`, where both zeros give 1 and NaN gives NaN.
#[inline(always)]
fn abs<S: Simd>(s: S, x: S::F32) -> S::F32 {
    s.max(x, s.sub(s.zero(), x))
}

/// Softsign, `z / (1 + |z|)`: an exact `abs`, then one correctly rounded addition and
/// division, the scalar [`crate::softsign`]'s operations, so the same bits.
#[inline(always)]
fn softsign<S: Simd>(s: S, z: S::F32) -> S::F32 {
    s.div(z, s.add(s.splat(1.0), abs(s, z)))
}

/// `p * 2^n` for integer-valued `n` with `|n| <= 152`, rounded once, as AVX-512's
/// `vscalefps` computes it: `n = n1 + n2` with `|n1|, |n2| <= 76`, so `2^n1` and `2^n2`
/// are normal numbers and `p * 2^n1` is exact for the `p` of [`exp`] (within a factor
/// 2 of 1); the second multiplication is the only rounding (overflow to `inf`, gradual
/// underflow), hence the same result.
#[inline(always)]
fn scale<S: Simd>(s: S, p: S::F32, n: S::F32) -> S::F32 {
    let ni = s.to_i32(n);
    let n1 = s.half_i32(ni);
    let n2 = s.sub_i32(ni, n1);
    s.mul(s.mul(p, s.pow2(n1)), s.pow2(n2))
}

/// `exp(x)`: the AVX-512 kernel's sequence (clamp to `+-104`, `n = round(x / ln 2)`,
/// Cody-Waite reduction, degree-7 Taylor polynomial by Horner), then [`scale`].
#[inline(always)]
fn exp<S: Simd>(s: S, x: S::F32) -> S::F32 {
    let x = s.min(s.splat(104.0), s.max(s.splat(-104.0), x));
    let n = s.round(s.mul(x, s.splat(std::f32::consts::LOG2_E)));
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let r = s.fmadd(n, s.splat(-LN2_HI), x);
    let r = s.fmadd(n, s.splat(-LN2_LO), r);
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
    let mut p = s.splat(C[7]);
    for &c in C[..7].iter().rev() {
        p = s.fmadd(p, r, s.splat(c));
    }
    // NaN inputs: n is NaN and its integer conversion arbitrary, but p is NaN.
    scale(s, p, n)
}

/// `1 / (1 + exp(-z))`.
#[inline(always)]
fn sigmoid<S: Simd>(s: S, z: S::F32) -> S::F32 {
    let one = s.splat(1.0);
    let e = exp(s, s.sub(s.zero(), z));
    s.div(one, s.add(one, e))
}

/// Odd Taylor coefficients of `tanh` (as `kernels::avx512::math`).
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

/// Below this `|x|` the Taylor series is used, above it `1 - 2 / (exp(2|x|) + 1)`.
const TANH_SERIES_LIMIT: f32 = 0.55;

/// `tanh(x)`: the AVX-512 kernel's sequence.
#[inline(always)]
fn tanh<S: Simd>(s: S, x: S::F32) -> S::F32 {
    let ax = s.max(x, s.sub(s.zero(), x));
    let e = exp(s, s.add(ax, ax));
    let one = s.splat(1.0);
    let two = s.splat(2.0);
    let big = s.sub(one, s.div(two, s.add(e, one)));
    let x2 = s.mul(ax, ax);
    let mut p = s.splat(TANH_TAYLOR[9]);
    for &c in TANH_TAYLOR[..9].iter().rev() {
        p = s.fmadd(p, x2, s.splat(c));
    }
    let small = s.mul(ax, p);
    let t = s.select(s.lt(ax, s.splat(TANH_SERIES_LIMIT)), small, big);
    let sign = s.and(x, s.splat(-0.0));
    s.or(t, sign)
}

/// `xs[i] = act(xs[i])` over a slice, a vector at a time.
pub(super) struct Map<'a> {
    pub(super) act: Act,
    pub(super) xs: &'a mut [f32],
}

impl<S: Simd> WithSimd<S> for Map<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        let l = S::L32;
        let mut chunks = self.xs.chunks_exact_mut(l);
        for c in &mut chunks {
            // SAFETY: the chunk holds exactly L32 f32.
            unsafe {
                let p = c.as_mut_ptr();
                s.store(p, apply(s, self.act, s.load(p)));
            }
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let t = s.tail32(rest.len());
            // SAFETY: the tail selects exactly the `rest.len()` elements of `rest`.
            unsafe {
                let p = rest.as_mut_ptr();
                s.store_tail(t, p, apply(s, self.act, s.load_tail(t, p)));
            }
        }
    }
}

/// `tanh` of `L64` `f64` lanes with exactly the operations of GNU libc 2.36's `tanh` on
/// x86-64 with FMA: a line-by-line port of `kernels::avx512::math::tanh_pd` (see
/// [`crate::replay::tanh_glibc`] for the scalar statement). The unsigned 64-bit
/// comparisons there become signed ones here: every compared value is non-negative
/// (high words of `|x|` and `|arg|`, shifted right by 32).
#[inline(always)]
fn tanh64<S: Simd>(s: S, x: S::F64) -> S::F64 {
    let c = |v: f64| s.splat64(v);
    let ci = |v: i64| s.splat_i64(v);
    // a >= b and a <= b for non-negative lanes.
    let ge = |a: S::I64, b: i64| s.gt_i64(a, s.splat_i64(b - 1));
    let le = |a: S::I64, b: i64| s.gt_i64(s.splat_i64(b + 1), a);
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const Q1: f64 = f64::from_bits(0xbfa1_1111_1111_10f4);
    const Q2: f64 = f64::from_bits(0x3f5a_01a0_19fe_5585);
    const Q3: f64 = f64::from_bits(0xbf14_ce19_9eaa_dbb7);
    const Q4: f64 = f64::from_bits(0x3ed0_cfca_86e6_5239);
    const Q5: f64 = f64::from_bits(0xbe8a_fdb7_6e09_c32d);

    let xb = s.bits64(x);
    let sign = s.and_i64(xb, ci(i64::MIN));
    let a = s.f64_of_bits(s.xor_i64(xb, sign));
    let ia = s.shr_i64::<32>(s.bits64(a));
    let big = ge(ia, 0x3ff0_0000);
    let arg = s.select64(big, s.add64(a, a), s.mul64(a, c(-2.0)));

    let harg = s.shr_i64::<32>(s.and_i64(s.bits64(arg), ci(i64::MAX)));
    let k0 = le(harg, 0x3fd6_2e42);
    let km1 = s.andnot_i64(k0, le(harg, 0x3ff0_a2b1));
    let half = s.select64(big, c(0.5), c(-0.5));
    let kf = s.add64(half, s.mul64(arg, c(INVLN2)));
    let (t, k64) = s.trunc_i32_64(kf);
    let k = s.or_i64(km1, s.andnot_i64(km1, k64)); // km1 ? -1 : k
    let k = s.andnot_i64(k0, k); // k0 ? 0 : k
    let hi = s.select64(km1, s.add64(arg, c(LN2_HI)), s.fnmadd64(t, c(LN2_HI), arg));
    let lo = s.select64(km1, c(-LN2_LO), s.mul64(t, c(LN2_LO)));
    let xr0 = s.sub64(hi, lo);
    let cc = s.sub64(s.sub64(hi, xr0), lo);
    let xr = s.select64(k0, arg, xr0);
    let hfx = s.mul64(xr, c(0.5));
    let hxs = s.mul64(xr, hfx);
    let r2 = s.fmadd64(hxs, c(Q3), c(Q2));
    let r3 = s.fmadd64(hxs, c(Q5), c(Q4));
    let h2 = s.mul64(hxs, hxs);
    let r1 = s.fmadd64(hxs, c(Q1), c(1.0));
    let h4 = s.mul64(h2, h2);
    let r1 = s.fmadd64(h4, r3, s.fmadd64(h2, r2, r1));
    let tt = s.fnmadd64(r1, hfx, c(3.0));
    let num = s.sub64(r1, tt);
    let den = s.fnmadd64(xr, tt, c(6.0));
    let e = s.mul64(s.div64(num, den), hxs);
    let r_k0 = s.sub64(xr, s.fmsub64(e, xr, hxs));
    let e3 = s.sub64(s.fmsub64(s.sub64(e, cc), xr, cc), hxs);
    let r_km1 = s.fmadd64(c(0.5), s.sub64(xr, e3), c(-0.5));
    let kexp = s.shl_i64::<52>(k);
    let e3mx = s.sub64(e3, xr);
    let ya = s.f64_of_bits(s.add_i64(s.bits64(s.sub64(c(1.0), e3mx)), kexp));
    let r_a = s.sub64(ya, c(1.0));
    // 0 <= k here where it is used (k < 20; other lanes are discarded), so the
    // variable shift count is in range for them.
    let shift = s.and_i64(k, ci(63));
    let tb_hi = s.sub_i64(ci(0x3ff0_0000), s.shrv_i64(ci(0x20_0000), shift));
    let tb = s.f64_of_bits(s.shl_i64::<32>(tb_hi));
    let r_b = s.f64_of_bits(s.add_i64(s.bits64(s.sub64(tb, e3mx)), kexp));
    let tc = s.f64_of_bits(s.shl_i64::<52>(s.sub_i64(ci(0x3ff), k)));
    let yc = s.add64(s.sub64(xr, s.add64(e3, tc)), c(1.0));
    let r_c = s.f64_of_bits(s.add_i64(s.bits64(yc), kexp));
    let in_a = s.or_i64(s.gt_i64(ci(-1), k), s.gt_i64(k, ci(56)));
    let in_c = s.andnot_i64(in_a, s.gt_i64(k, ci(19)));
    let mut r = s.select64(in_c, r_c, r_b);
    r = s.select64(in_a, r_a, r);
    r = s.select64(s.eq_i64(k, ci(-1)), r_km1, r);
    let em1 = s.select64(k0, r_k0, r);

    // z = 1 - 2 / (em1 + 2) for |x| >= 1, else -em1 / (em1 + 2): one division for
    // both, of the numerator each lane needs (the same operations per lane).
    let two = c(2.0);
    let neg_em1 = s.f64_of_bits(s.xor_i64(s.bits64(em1), ci(i64::MIN)));
    let q = s.div64(s.select64(big, two, neg_em1), s.add64(em1, two));
    let z = s.select64(big, s.sub64(c(1.0), q), q);
    let huge = ge(ia, 0x4036_0000);
    let z = s.select64(huge, c(1.0 - 1e-300), z);
    let mut out = s.f64_of_bits(s.xor_i64(s.bits64(z), sign));
    let tiny = le(ia, 0x3c7f_ffff);
    out = s.select64(tiny, s.mul64(s.add64(c(1.0), x), x), out);
    let zero = le(s.and_i64(xb, ci(i64::MAX)), 0);
    out = s.select64(zero, x, out);
    let nonfinite = ge(ia, 0x7ff0_0000);
    let inv = s.div64(c(1.0), x);
    let special = s.select64(
        s.gt_i64(ci(0), xb),
        s.sub64(inv, c(1.0)),
        s.add64(inv, c(1.0)),
    );
    s.select64(nonfinite, special, out)
}

/// `tanh` over a slice of `f64` with [`tanh64`].
pub(super) struct TanhSlice<'a> {
    pub(super) xs: &'a mut [f64],
}

impl<S: Simd> WithSimd<S> for TanhSlice<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd(self, s: S) {
        for chunk in self.xs.chunks_mut(S::L64) {
            let t = s.tail64(chunk.len());
            // SAFETY: the tail selects exactly the chunk's elements.
            unsafe {
                let p = chunk.as_mut_ptr();
                s.store_tail64(t, p, tanh64(s, s.load_tail64(t, p)));
            }
        }
    }
}
