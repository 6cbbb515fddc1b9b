//! BLAS-backed math core for glorot (work in progress: see issue 3).
#![warn(missing_docs)]

pub mod numpy_rng;
