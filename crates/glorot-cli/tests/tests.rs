//! Integration tests of the `glorot` binary: each test runs the real executable
//! (`CARGO_BIN_EXE_glorot`) in a temporary directory on a generated dataset in the MNIST
//! format, so none of them needs the real data; a few more run on real MNIST when
//! `GLOROT_MNIST_DIR` is set (`fetch` serves it from a loopback server it starts).

mod cli;
mod fetch;
mod file_server;
mod json_outputs;
mod predict;
mod real;
mod runners;
mod schemas;
mod search;
mod sizes;
mod strategies;
mod support;
