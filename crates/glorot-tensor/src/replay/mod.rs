//! Instruments of the notebook replay: what exists only to reproduce NumPy's (and the
//! notebook's) exact bits, apart from the general API.
//!
//! | item | reproduces |
//! | --- | --- |
//! | [`tanh_glibc`] | GNU libc 2.36's `tanh` (x86-64, FMA build), operation for operation |
//! | [`sgd_update_sparse_exact`], [`SparseColumns`] | the notebook's update of the first layer with `g = input^T delta` from a BLAS that sums each element as one chain over the rows, from the input's nonzeros alone |
//! | [`weight_gradient_sparse_f64`] | that `g` itself (for gradients that must equal that update's) |
//! | [`matches_sparse_chain`] | whether a BLAS product is that chain, bit for bit (checked once per batch size) |
//!
//! NumPy's random generator is [`crate::numpy_rng`]; NumPy's summation orders are the
//! general [`pairwise_sum`](crate::pairwise_sum) and [`column_sums`](crate::column_sums).

mod sparse;
mod tanh;

pub use sparse::{
    SparseColumns, matches_sparse_chain, sgd_update_sparse_exact, weight_gradient_sparse_f64,
};
pub use tanh::tanh_glibc;
