//! Element-wise functions over slices with the vector code of the fused epilogues.

use crate::Activation;
use crate::isa::Isa;

/// `tanh(x)` for every element of `xs`, bit for bit the C library's `tanh` of GNU libc
/// 2.36 on x86-64 with FMA (Debian 12's, the one the notebook replay is checked with):
/// with vector kernels (AVX-512F, AVX2, NEON) a vector port of its exact sequence of
/// operations, the same bits on every instruction set and CPU (see
/// [`crate::replay::tanh_glibc`]), several times faster than one call per element; with
/// [`Isa::portable`] the platform's `tanh` itself. With another C library the two may
/// differ in the last bit of some results (never by more).
pub fn tanh_f64_slice(isa: Isa, xs: &mut [f64]) {
    isa.kernels().tanh_f64_slice(xs);
}

/// `xs[i] = f(xs[i])` with the vectorized `tanh`/sigmoid/ReLU of `isa` (the same
/// functions the fused epilogues use), or [`Activation::apply`] with [`Isa::portable`].
pub fn activate_slice(isa: Isa, act: Activation, xs: &mut [f32]) {
    isa.kernels().activate_slice(act, xs);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorized functions against `f64` over a dense sweep of `f32` inputs: every
    /// 97th bit pattern between -20 and 20 (about 22 million values), plus the extremes.
    /// Under CPU emulation (`GLOROT_TEST_EMULATED=1`, set by `cargo xtask arm`, where this
    /// sweep takes 20 s per instruction set) every 9,973rd (about 220,000 values).
    #[test]
    fn vectorized_activations_are_within_a_few_ulp() {
        let step = if std::env::var_os("GLOROT_TEST_EMULATED").is_some_and(|v| v == "1") {
            9_973
        } else {
            97
        };
        let mut xs: Vec<f32> = Vec::new();
        let mut bits = (-20.0f32).to_bits();
        // Negative floats: bit patterns decrease towards -0.
        while bits > (-0.0f32).to_bits() {
            xs.push(f32::from_bits(bits));
            bits -= step;
        }
        bits = 0;
        while f32::from_bits(bits) < 20.0 {
            xs.push(f32::from_bits(bits));
            bits += step;
        }
        xs.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.0,
            -88.0,
            200.0,
            -200.0,
            f32::MAX,
            f32::MIN,
        ]);
        for (isa, act) in Isa::supported().flat_map(|i| Activation::ALL.map(|a| (i, a))) {
            let mut ys = xs.clone();
            activate_slice(isa, act, &mut ys);
            let mut worst = 0.0f64;
            for (&x, &y) in xs.iter().zip(&ys) {
                let exact = match act {
                    Activation::Tanh => f64::from(x).tanh(),
                    Activation::Sigmoid => 1.0 / (1.0 + (-f64::from(x)).exp()),
                    Activation::Relu => f64::from(x).max(0.0),
                    Activation::Softsign => f64::from(x) / (1.0 + f64::from(x).abs()),
                };
                // Error in units of the f32 spacing at the exact value.
                let ulp = f64::from(f32::EPSILON) * exact.abs().max(f64::from(f32::MIN_POSITIVE));
                let err = (f64::from(y) - exact).abs() / ulp;
                assert!(
                    err <= 4.0,
                    "{} {act}({x:e}) = {y:e}, exact {exact:e}: {err} ulp",
                    isa.name()
                );
                worst = worst.max(err);
            }
            assert!(worst.is_finite());
        }
        for isa in Isa::supported() {
            let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
            activate_slice(isa, Activation::Tanh, &mut special);
            assert!(special[0].is_nan());
            assert_eq!(&special[1..3], &[1.0, -1.0]);
            assert!(special[3] == 0.0 && special[3].is_sign_negative());
        }
    }

    /// Softsign is an exact `abs`, one addition and one division, each correctly rounded
    /// in IEEE arithmetic, so every instruction set gives the scalar [`crate::softsign`]'s
    /// bits (NaN: any NaN), on every 613th `f32` bit pattern of either sign (about 7
    /// million values, every 61,001st under emulation) and the special values.
    #[test]
    fn softsign_gives_the_scalar_bits_on_every_instruction_set() {
        let step: u32 = if std::env::var_os("GLOROT_TEST_EMULATED").is_some_and(|v| v == "1") {
            61_001
        } else {
            613
        };
        let mut xs: Vec<f32> = (0..=u32::MAX / step)
            .map(|i| f32::from_bits(i * step))
            .collect();
        xs.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            -1e-45,
        ]);
        let expected: Vec<f32> = xs.iter().map(|&x| crate::softsign(x)).collect();
        for isa in Isa::supported() {
            let mut ys = xs.clone();
            activate_slice(isa, Activation::Softsign, &mut ys);
            for ((&x, &y), &e) in xs.iter().zip(&ys).zip(&expected) {
                assert!(
                    (y.is_nan() && e.is_nan()) || y.to_bits() == e.to_bits(),
                    "{} softsign({x:e}) = {y:e}, scalar {e:e}",
                    isa.name()
                );
            }
        }
    }
}
