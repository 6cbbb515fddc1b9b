//! The one error type of the crate.

use std::path::PathBuf;

/// What can go wrong in a study, the replay, the report, the data preparation or the
/// timing harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options contradict each other or the data (an empty split, a thread plan that
    /// oversubscribes the machine, a part that does not exist). A command line maps it to
    /// a usage error (exit code 2).
    #[error("{0}")]
    InvalidOptions(String),
    /// Reading, writing or creating `path` failed.
    #[error("{what} {}", path.display())]
    Io {
        /// `reading`, `writing`, `creating`.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A value could not be serialized (or the embedded reference parsed).
    #[error("{what}")]
    Json {
        /// What was being serialized or parsed.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The dataset could not be found, read or verified.
    #[error(transparent)]
    Mnist(#[from] glorot_mnist::Error),
    /// The model or the trainer refused a configuration or failed.
    #[error(transparent)]
    Mlp(#[from] glorot_mlp::Error),
    /// The grid search, its journal or its results directory failed.
    #[error(transparent)]
    Search(#[from] glorot_search::Error),
    /// The embedded notebook reference (`reference/notebook_numbers.json`) does not hold
    /// what the replay expects.
    #[error("{0}")]
    Reference(String),
    /// The replay cannot run as asked (a subset of the data, a trial outside the
    /// notebook's grid).
    #[error("{0}")]
    Replay(String),
    /// A run stopped before its end (an observer asked to stop, or a training
    /// diverged where a finite result is needed).
    #[error("{0}")]
    Incomplete(String),
    /// A plot could not be drawn or written.
    #[error("{0}")]
    Plot(String),
    /// An error with what was being done when it happened.
    #[error("{context}")]
    Context {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether this is (or wraps) [`Error::InvalidOptions`]: a mistake of the caller's
    /// options, not of the computation.
    pub fn is_invalid_options(&self) -> bool {
        match self {
            Error::InvalidOptions(_) => true,
            Error::Context { source, .. } => source.is_invalid_options(),
            _ => false,
        }
    }

    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.context(..)` on results whose error converts into [`Error`], as `anyhow` does.
pub(crate) trait Context<T> {
    /// Wraps the error with `context()`.
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
    /// Wraps the error with `context`.
    fn context(self, context: &str) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().into(),
            source: Box::new(e.into()),
        })
    }

    fn context(self, context: &str) -> Result<T> {
        self.with_context(|| context)
    }
}

/// `None` as an error with `context`.
impl<T> Context<T> for Option<T> {
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::Incomplete(context().into()))
    }

    fn context(self, context: &str) -> Result<T> {
        self.with_context(|| context)
    }
}
