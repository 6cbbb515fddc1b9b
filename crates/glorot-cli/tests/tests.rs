//! Integration tests of the `glorot` binary: each test runs the real executable
//! (`CARGO_BIN_EXE_glorot`) in a temporary directory on a generated dataset in the MNIST
//! format, so none of them needs the real data; one more runs on real MNIST when
//! `GLOROT_MNIST_DIR` is set.

mod cli;
mod json_outputs;
mod real;
mod runners;
mod schemas;
mod search;
mod sizes;
mod support;
