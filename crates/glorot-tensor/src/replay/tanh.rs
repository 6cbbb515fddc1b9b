//! GNU libc 2.36's `tanh` as scalar Rust: the statement of what the vector
//! [`tanh_f64_slice`](crate::fused::tanh_f64_slice) computes, and its test oracle.

/// GNU libc 2.36's `tanh` for x86-64 CPUs with FMA, operation for operation, as scalar
/// Rust: `__tanh` (`sysdeps/ieee754/dbl-64/s_tanh.c`) and the FMA build of `__expm1`
/// (`s_expm1.c` compiled with `-mfma`, whose contractions into fused multiply-adds were
/// read from the library's machine code). The statement of what [`tanh_f64_slice`](crate::fused::tanh_f64_slice)
/// computes, and its test oracle; `mul_add` is the fused multiply-add.
pub fn tanh_glibc(x: f64) -> f64 {
    let hi_word = |v: f64| (v.to_bits() >> 32) as u32;
    let ix = hi_word(x) & 0x7fff_ffff;
    if ix >= 0x7ff0_0000 {
        return if x.is_sign_negative() {
            1.0 / x - 1.0
        } else {
            1.0 / x + 1.0
        };
    }
    let z = if ix >= 0x4036_0000 {
        1.0 - 1e-300
    } else {
        if x == 0.0 {
            return x;
        }
        if ix <= 0x3c7f_ffff {
            return (1.0 + x) * x;
        }
        let a = x.abs();
        if ix >= 0x3ff0_0000 {
            let t = expm1_glibc_fma(a + a);
            1.0 - 2.0 / (t + 2.0)
        } else {
            let t = expm1_glibc_fma(a * -2.0);
            -t / (t + 2.0)
        }
    };
    if x.is_sign_negative() { -z } else { z }
}

/// The FMA build of GNU libc 2.36's `__expm1`, for the arguments `tanh` passes
/// (`|arg| < 44`, not below `2^-54` in magnitude).
fn expm1_glibc_fma(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
    const Q: [f64; 6] = [
        1.0,
        f64::from_bits(0xbfa1_1111_1111_10f4),
        f64::from_bits(0x3f5a_01a0_19fe_5585),
        f64::from_bits(0xbf14_ce19_9eaa_dbb7),
        f64::from_bits(0x3ed0_cfca_86e6_5239),
        f64::from_bits(0xbe8a_fdb7_6e09_c32d),
    ];
    let negative = x.is_sign_negative();
    let hx = ((x.to_bits() >> 32) as u32) & 0x7fff_ffff;
    let (mut xr, mut c, k): (f64, f64, i32) = (x, 0.0, 0);
    let k = if hx > 0x3fd6_2e42 {
        let (hi, lo, k) = if hx < 0x3ff0_a2b2 {
            if negative {
                (x + LN2_HI, -LN2_LO, -1)
            } else {
                (x - LN2_HI, LN2_LO, 1)
            }
        } else {
            let k = ((if negative { -0.5 } else { 0.5 }) + INVLN2 * x) as i32;
            let t = f64::from(k);
            ((-t).mul_add(LN2_HI, x), t * LN2_LO, k)
        };
        xr = hi - lo;
        c = (hi - xr) - lo;
        k
    } else {
        k
    };
    let hfx = xr * 0.5;
    let hxs = xr * hfx;
    let r2 = hxs.mul_add(Q[3], Q[2]);
    let r3 = hxs.mul_add(Q[5], Q[4]);
    let h2 = hxs * hxs;
    let r1 = hxs.mul_add(Q[1], 1.0);
    let h4 = h2 * h2;
    let r1 = h4.mul_add(r3, h2.mul_add(r2, r1));
    let t = (-r1).mul_add(hfx, 3.0);
    let e = ((r1 - t) / (-xr).mul_add(t, 6.0)) * hxs;
    if k == 0 {
        return xr - e.mul_add(xr, -hxs);
    }
    let e = (e - c).mul_add(xr, -c) - hxs;
    let add_exponent =
        |y: f64| f64::from_bits(y.to_bits().wrapping_add((i64::from(k) << 52) as u64));
    match k {
        -1 => 0.5f64.mul_add(xr - e, -0.5),
        1 => {
            if xr < -0.25 {
                (e - (xr + 0.5)) * -2.0
            } else {
                (xr - e).mul_add(2.0, 1.0)
            }
        }
        _ if k <= -2 || k > 56 => add_exponent(1.0 - (e - xr)) - 1.0,
        _ if k < 20 => {
            let t = f64::from_bits(u64::from(0x3ff0_0000 - (0x20_0000u32 >> k)) << 32);
            add_exponent(t - (e - xr))
        }
        _ => {
            let t = f64::from_bits(((0x3ff - k as u64) << 20) << 32);
            add_exponent((xr - (e + t)) + 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::tanh_f64_slice;
    use crate::isa::Isa;

    /// Inputs covering every branch of glibc's `tanh` and `expm1`: a dense sweep of bit
    /// patterns from 2^-60 to 30 (both signs), the branch thresholds and their
    /// neighbours, and the special values.
    fn inputs() -> Vec<f64> {
        let mut xs = Vec::new();
        let (lo, hi) = (2f64.powi(-60).to_bits(), 30f64.to_bits());
        let step = (hi - lo) / 400_000;
        let mut b = lo;
        while b < hi {
            xs.push(f64::from_bits(b));
            xs.push(-f64::from_bits(b));
            b += step + (b % 7);
        }
        for t in [
            2f64.powi(-55),
            2f64.powi(-54),
            0.5 * std::f64::consts::LN_2 / 2.0,
            0.5 * std::f64::consts::LN_2,
            1.5 * std::f64::consts::LN_2 / 2.0,
            0.52,
            1.0,
            19.0,
            19.8,
            22.0,
        ] {
            for d in -64i64..=64 {
                let v = f64::from_bits((t.to_bits() as i64 + d) as u64);
                xs.extend([v, -v]);
            }
        }
        xs.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
        ]);
        xs
    }

    /// With vector kernels the slice function is the port; with [`Isa::portable`] it
    /// is the C library's `tanh`.
    #[test]
    fn vector_tanh_equals_the_scalar_port_bit_for_bit() {
        let xs = inputs();
        for isa in Isa::supported() {
            let mut ys = xs.clone();
            tanh_f64_slice(isa, &mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = if isa.accelerated() {
                    tanh_glibc(x)
                } else {
                    x.tanh()
                };
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "{} tanh({x:e}): {y:e} vs {want:e}",
                    isa.name()
                );
            }
            let mut nan = [f64::NAN];
            tanh_f64_slice(isa, &mut nan);
            assert!(nan[0].is_nan());
        }
    }

    /// On the machine the notebook replay is checked on (GNU libc 2.36, x86-64 with FMA),
    /// the port is the C library's `tanh` bit for bit. Another C library may differ in
    /// last bits: then the test reports the count instead of failing.
    #[test]
    #[allow(clippy::print_stderr)]
    fn the_port_is_the_c_library_tanh_here() {
        let xs = inputs();
        let differ = xs
            .iter()
            .filter(|&&x| tanh_glibc(x).to_bits() != x.tanh().to_bits())
            .count();
        // Every value is within 1 ulp of the C library's, whatever the library.
        for &x in &xs {
            let (a, b) = (tanh_glibc(x), x.tanh());
            assert!(
                (a - b).abs() <= f64::EPSILON * b.abs().max(f64::MIN_POSITIVE),
                "tanh({x:e}): {a:e} vs {b:e}"
            );
        }
        if differ > 0 {
            eprintln!(
                "note: this C library's tanh differs from GNU libc 2.36's (FMA) in the last bit \
                 for {differ} of {} inputs",
                xs.len()
            );
        }
    }
}
