//! Integration tests of glorot-mlp: one binary, one module per topic.
//!
//! Tests that need real MNIST read `GLOROT_MNIST_DIR` and skip with a note when it is
//! unset; CI sets it.

extern crate blas_src;

mod gradcheck;
mod learning;
mod no_alloc;
mod notebook;
mod optimizers;
mod support;
mod variance_ratios;
mod weights;
