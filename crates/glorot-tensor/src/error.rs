//! The crate's error type.

/// What can go wrong in this crate without it being a programmer bug.
///
/// Shape mismatches are bugs and panic (see each function's `# Panics`); this enum covers
/// bad parameters that come from configuration and numerical failures.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An initializer parameter is out of its domain (for example a negative or
    /// non-finite standard deviation, or a non-finite gain).
    #[error("invalid initializer parameter {name} = {value}: {reason}")]
    InvalidInitParameter {
        /// The parameter's name (`"std"`, `"mean"`, `"gain"`).
        name: &'static str,
        /// The value that was given.
        value: f64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A string named no known activation (expected `relu`, `sigmoid` or `tanh`).
    #[error("unknown activation {name:?}: expected relu, sigmoid, tanh or softsign")]
    UnknownActivation {
        /// The string that was given.
        name: String,
    },
    /// A string named no instruction set glorot has kernels for.
    #[error("unknown instruction set {name:?}: expected one of avx512, avx2, neon, scalar")]
    UnknownIsa {
        /// The string that was given.
        name: String,
    },
    /// An instruction set glorot knows that this CPU (or this build's target) lacks.
    #[error("this CPU cannot run the {name} kernels; it has: {available}")]
    UnsupportedIsa {
        /// The instruction set asked for.
        name: &'static str,
        /// The ones this CPU has, comma-separated (`"scalar, avx2"`).
        available: String,
    },
}
