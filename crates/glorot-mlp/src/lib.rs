//! The multilayer perceptron for glorot (work in progress: see issue 4).
#![warn(missing_docs)]
