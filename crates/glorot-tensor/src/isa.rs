//! The instruction set the fast kernels of [`crate::fused`] (and [`crate::replay`]) run
//! with, chosen once and passed down as a value.
//!
//! An [`Isa`] can only be obtained through detection: [`Isa::detect`] (the best this CPU
//! has, cached), [`Isa::supported`] (every one it has, for tests), or [`Isa::portable`]
//! (the scalar and BLAS code every CPU runs). A value naming vector instructions holds a
//! token that is only made after the CPU was seen to have them, so the kernels behind it
//! are safe to call: the public functions of [`crate::fused`] take an `Isa` and contain
//! no detection, no `#[cfg]` and no `unsafe`.
//!
//! Code that has no `Isa` passed in (for example [`crate::Activation`]'s `f64` `tanh`)
//! uses [`Isa::default_for_process`]: the detected one unless a binary chose another with
//! [`set_default`] before any kernel ran. The library reads no environment variable;
//! the `glorot` binary maps `GLOROT_FUSED=off` to `set_default(Isa::portable())`.
//!
//! ```
//! use glorot_tensor::isa::{self, Isa};
//!
//! let best = Isa::detect();
//! assert!(Isa::supported().any(|isa| isa == best));
//! assert!(Isa::supported().any(|isa| isa == Isa::portable()));
//! println!("kernels: {}", best.name()); // "avx512", "avx2", "neon" or "scalar"
//! assert_eq!(Isa::from_name(best.name()).unwrap(), best);
//! # let _ = isa::set_default;
//! ```
//!
//! # Adding an instruction set
//!
//! The kernels of AVX2 (x86-64) and NEON (aarch64) are written once over a vector
//! abstraction (`kernels::vector`): a new instruction set of that kind only implements
//! its `Simd` trait. Otherwise: a new variant of `Kind` below, a token type whose only constructor detects the CPU
//! feature, its line in [`Isa::supported`], its arm in `Isa::kernels` (the one `match`
//! over instruction sets in the crate) and a kernels module implementing the crate's
//! `Kernels` trait, whose default methods are the portable code. No public function
//! changes.

use std::sync::OnceLock;

use crate::Error;
use crate::kernels::{Kernels, Portable};

#[cfg(target_arch = "x86_64")]
use crate::kernels::avx512::Avx512;
#[cfg(target_arch = "x86_64")]
use crate::kernels::vector::Avx2;
#[cfg(target_arch = "aarch64")]
use crate::kernels::vector::Neon;

/// An instruction set the kernels run with, obtained through detection (see the
/// [module documentation](self)). `Copy`: pass it by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(Kind);

/// The instruction sets, each vector one holding its detection token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Scalar code and BLAS, on every CPU.
    Portable,
    /// AVX2 with FMA on x86-64 (the kernels of `kernels::vector`, 8 `f32` or 4 `f64`
    /// lanes).
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    /// AVX-512F on x86-64 (register-tiled kernels, 16 `f32` or 8 `f64` lanes).
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    /// NEON on aarch64 (the kernels of `kernels::vector`, 4 `f32` or 2 `f64` lanes).
    #[cfg(target_arch = "aarch64")]
    Neon(Neon),
}

impl Isa {
    /// The scalar and BLAS code: available on every CPU, the reference every other
    /// instruction set's kernels are tested against.
    pub const fn portable() -> Self {
        Isa(Kind::Portable)
    }

    /// The best instruction set this CPU has (the last of [`Isa::supported`]), detected
    /// once per process.
    pub fn detect() -> Self {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| Self::supported().last().unwrap_or_else(Self::portable))
    }

    /// Every instruction set this CPU has, [`Isa::portable`] first, then in increasing
    /// order of preference. For tests that run every kernel on each of them. Allocates
    /// nothing.
    pub fn supported() -> impl Iterator<Item = Self> + Clone {
        [
            Some(Self::portable()),
            #[cfg(target_arch = "x86_64")]
            Avx2::detect().map(|t| Isa(Kind::Avx2(t))),
            #[cfg(target_arch = "x86_64")]
            Avx512::detect().map(|t| Isa(Kind::Avx512(t))),
            #[cfg(target_arch = "aarch64")]
            Neon::detect().map(|t| Isa(Kind::Neon(t))),
        ]
        .into_iter()
        .flatten()
    }

    /// The instruction set for code that is not given one: the one passed to
    /// [`set_default`] if a binary called it first, else [`Isa::detect`]. Fixed at the
    /// first call.
    pub fn default_for_process() -> Self {
        *DEFAULT.get_or_init(Self::detect)
    }

    /// A short lowercase name for manifests and logs, the one [`Isa::from_name`] takes:
    /// `"scalar"` (the portable code), `"avx2"`, `"avx512"`, `"neon"`.
    pub fn name(self) -> &'static str {
        self.kernels().name()
    }

    /// The instruction set named `name` (as [`Isa::name`] spells it; `"portable"` is
    /// accepted for `"scalar"`), if this CPU has it: what a binary does with a
    /// `GLOROT_ISA` setting.
    ///
    /// # Errors
    /// [`Error::UnknownIsa`] for a name glorot has no kernels for;
    /// [`Error::UnsupportedIsa`] for one this CPU (or this build's target) lacks, with
    /// the list of those it has.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        let wanted = match name.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => "scalar",
            "avx2" => "avx2",
            "avx512" => "avx512",
            "neon" => "neon",
            _ => {
                return Err(Error::UnknownIsa {
                    name: name.to_owned(),
                });
            }
        };
        Self::supported()
            .find(|isa| isa.name() == wanted)
            .ok_or_else(|| Error::UnsupportedIsa {
                name: wanted,
                available: Self::supported()
                    .map(Isa::name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Whether this instruction set has kernels of its own (false for
    /// [`Isa::portable`], whose functions are the unfused ones and BLAS). Buffers made
    /// for an instruction set without them hold no memory for them.
    pub fn accelerated(self) -> bool {
        self.kernels().accelerated()
    }

    /// The kernels of this instruction set: the only `match` over instruction sets in
    /// the crate.
    pub(crate) fn kernels(self) -> &'static dyn Kernels {
        match self.0 {
            Kind::Portable => &Portable,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2(token) => token.kernels(),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(token) => token.kernels(),
            #[cfg(target_arch = "aarch64")]
            Kind::Neon(token) => token.kernels(),
        }
    }
}

/// The process-wide default of [`Isa::default_for_process`].
static DEFAULT: OnceLock<Isa> = OnceLock::new();

/// Makes `isa` the instruction set of [`Isa::default_for_process`], for code that is not
/// given one. Binaries call it at start-up (the `glorot` binary with [`Isa::portable`]
/// when `GLOROT_FUSED=off`), before any kernel has run.
///
/// # Errors
/// The default already in force, if it was fixed before (by an earlier call, or because
/// code already asked for it) to another instruction set than `isa`.
pub fn set_default(isa: Isa) -> Result<(), Isa> {
    let current = *DEFAULT.get_or_init(|| isa);
    if current == isa { Ok(()) } else { Err(current) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name [`Isa::name`] can return, on any target.
    const KNOWN: [&str; 4] = ["scalar", "avx2", "avx512", "neon"];

    #[test]
    fn detection_lists_the_portable_set_first_and_prefers_the_last() {
        let all: Vec<Isa> = Isa::supported().collect();
        assert_eq!(all[0], Isa::portable());
        assert_eq!(Isa::detect(), *all.last().unwrap());
        assert_eq!(Isa::portable().name(), "scalar");
        assert!(!Isa::portable().accelerated());
        for isa in &all[1..] {
            assert!(isa.accelerated(), "{}", isa.name());
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            all.iter().any(|i| i.name() == "avx512"),
            std::arch::is_x86_feature_detected!("avx512f")
        );
    }

    #[test]
    fn names_round_trip_and_bad_ones_are_errors() {
        for isa in Isa::supported() {
            assert_eq!(Isa::from_name(isa.name()).unwrap(), isa);
            assert_eq!(Isa::from_name(&isa.name().to_uppercase()).unwrap(), isa);
        }
        assert_eq!(Isa::from_name("portable").unwrap(), Isa::portable());
        let err = Isa::from_name("sse9").unwrap_err();
        assert!(matches!(err, Error::UnknownIsa { .. }), "{err}");
        for name in KNOWN {
            if let Err(err) = Isa::from_name(name) {
                let Error::UnsupportedIsa { name: n, available } = &err else {
                    panic!("{err}");
                };
                assert_eq!(*n, name);
                assert!(available.starts_with("scalar"), "{err}");
            }
        }
    }

    #[test]
    fn the_default_is_fixed_once() {
        let current = Isa::default_for_process();
        assert!(set_default(current).is_ok());
        let other = if current == Isa::portable() {
            Isa::detect()
        } else {
            Isa::portable()
        };
        if other != current {
            assert_eq!(set_default(other), Err(current));
        }
        assert_eq!(Isa::default_for_process(), current);
    }
}
