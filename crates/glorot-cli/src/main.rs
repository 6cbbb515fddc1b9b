//! The `glorot` command.

// The BLAS provider is selected here, in the final binary.
extern crate blas_src;

fn main() {}
