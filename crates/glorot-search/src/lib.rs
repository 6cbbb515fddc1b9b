//! Hyperparameter search for glorot (work in progress: see issue 5).
#![warn(missing_docs)]
