//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in a search: bad specifications, shards and I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of a grid specification holds a value that cannot be used.
    #[error("invalid grid: `{field}` = {value}: {reason}")]
    InvalidSpec {
        /// The field, as written in the spec file (`learning_rate`, `batch_size`, ...).
        field: &'static str,
        /// The offending value, as text.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A grid file could not be parsed.
    #[error("cannot parse grid file {path}: {message}")]
    ParseSpec {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the line and field).
        message: String,
    },
    /// No preset has this name.
    #[error("unknown grid preset `{0}` (known: {known})", known = crate::spec::PRESETS.join(", "))]
    UnknownPreset(String),
    /// A shard description such as `--shard 2/4` is malformed or out of range.
    #[error("invalid shard `{value}`: {reason}")]
    InvalidShard {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The results directory already holds a search that differs in something
    /// that changes every trial's result (master seed, data, shuffling).
    #[error(
        "{dir} holds a different search ({what}: {found} there, {expected} now); \
         use another results directory or the same settings"
    )]
    IncompatibleJournal {
        /// The results directory.
        dir: PathBuf,
        /// The setting that differs.
        what: &'static str,
        /// The value recorded in the directory.
        found: String,
        /// The value of this run.
        expected: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`reading`, `writing`, `renaming into`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A journal file holds JSON that is not a trial record.
    #[error("{path} is not a valid trial record: {message}")]
    CorruptRecord {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A trial record or `search.json` written by a newer glorot: this one does not know
    /// its format.
    #[error(
        "{path} has schema version {found}; this glorot reads versions up to \
         {supported}: use a newer glorot for this results directory"
    )]
    NewerRecord {
        /// The file.
        path: PathBuf,
        /// Its `schema_version`.
        found: u32,
        /// The newest version this glorot reads ([`crate::journal::RECORD_SCHEMA_VERSION`]
        /// for a record, [`crate::journal::CONTEXT_SCHEMA_VERSION`] for `search.json`).
        supported: u32,
    },
    /// A value could not be serialized as JSON.
    #[error("cannot serialize {path}: {message}")]
    Serialize {
        /// The file it was meant for.
        path: PathBuf,
        /// The serializer's message.
        message: String,
    },
    /// Training configuration rejected by the model crate.
    #[error(transparent)]
    Model(#[from] glorot_mlp::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
