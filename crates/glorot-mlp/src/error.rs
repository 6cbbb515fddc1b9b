//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong in this crate without it being a programmer bug.
///
/// Shape mismatches between buffers the caller sized itself are bugs and panic (see each
/// function's `# Panics`); configuration values, data handed to the trainer, files and
/// names given by a user come back as this error.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field has a value the model or the trainer cannot use.
    #[error("invalid configuration: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field's name as written in the config (`"learning_rate"`, `"layers[2]"`).
        field: String,
        /// The offending value, formatted.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The data handed to the trainer does not fit the model or itself.
    #[error("{what}: expected {expected}, found {found}")]
    DataShape {
        /// Which quantity disagrees (`"validation inputs: columns"`).
        what: &'static str,
        /// What the model or the other half of the data requires.
        expected: usize,
        /// What was given.
        found: usize,
    },
    /// A label is not a valid class index for the model's output layer.
    #[error("{split} label at row {row} is {label}, but the model has only {classes} outputs")]
    LabelOutOfRange {
        /// `"validation"`, `"test"`, ...
        split: &'static str,
        /// Row of the offending label.
        row: usize,
        /// The label.
        label: u8,
        /// Number of outputs of the model.
        classes: usize,
    },
    /// The trainer's configured precision is not the element type of the model it was given.
    #[error("the training config asks for {config} but the model computes in {model}")]
    PrecisionMismatch {
        /// Precision named in the training config.
        config: &'static str,
        /// Element type of the model.
        model: &'static str,
    },
    /// A parameter name is not `w<i>` or `b<i>` for an existing layer, or an index into a
    /// parameter is out of range.
    #[error("no parameter {name}: {reason}")]
    UnknownParameter {
        /// The name or name and index as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An initializer has no NumPy `RandomState` replay (the orthogonal one).
    #[error("initializer {init} has no NumPy RandomState replay")]
    NoNumpyReplay {
        /// The initializer, formatted.
        init: String,
    },
    /// An initializer failed (for example the QR decomposition behind `Orthogonal`).
    #[error("weight initialization failed")]
    Init(#[from] glorot_tensor::Error),
    /// Reading or writing a file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A safetensors file could not be written or parsed.
    #[error("{path}: not a valid safetensors file")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The error from the safetensors crate.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A weights file parsed but does not hold what the model needs (a tensor is missing or
    /// extra, has the wrong shape or dtype, or the stored config differs from the expected one).
    #[error("{path}: {detail}")]
    WeightsMismatch {
        /// The file.
        path: PathBuf,
        /// What differs, with expected and found values.
        detail: String,
    },
    /// The memory a configuration needs cannot even be counted in 64 bits (see
    /// [`crate::memory`]).
    #[error("{what} needs more memory than any machine can address (over 2^64 bytes)")]
    MemoryOverflow {
        /// What would need it (`"training this model"`).
        what: String,
    },
}

/// This crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason,
        }
    }
}
