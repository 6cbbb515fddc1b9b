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
    #[error("unknown activation {name:?}: expected relu, sigmoid or tanh")]
    UnknownActivation {
        /// The string that was given.
        name: String,
    },
}
