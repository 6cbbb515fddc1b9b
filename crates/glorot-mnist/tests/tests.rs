//! Integration tests for glorot-mnist: one binary, one module per topic.
//!
//! Tests needing the real MNIST read `GLOROT_MNIST_DIR` and skip with a note when it is
//! unset; the Fashion-MNIST ones read `GLOROT_FASHION_MNIST_DIR` or Debian's
//! `/usr/share/datasets/fashion-mnist`. Download tests (feature `download`) talk only to
//! a loopback server they start.

mod support;

#[cfg(feature = "download")]
mod download;
mod format;
mod load;
mod properties;
mod real;
