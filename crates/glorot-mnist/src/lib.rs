//! MNIST dataset reading for glorot (work in progress: see issue 2).
#![warn(missing_docs)]
