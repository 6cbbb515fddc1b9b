//! BLAS-backed math core for small dense networks: matrix products into preallocated
//! buffers, activations, losses with their gradients, initializers and a few helpers.
//!
//! Generic over `f32` and `f64` through one trait, [`Float`]. Inputs are ndarray views,
//! outputs go into caller-owned `ArrayViewMut`s, so once a model's buffers exist a
//! training step allocates nothing.
//!
//! ```
//! # extern crate blas_src;
//! use glorot_tensor::{Activation, Init, add_row_bias, gemm, loss};
//! use ndarray::{Array1, Array2};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let mut rng = ChaCha8Rng::seed_from_u64(5);
//! let x = Array2::<f64>::from_elem((4, 3), 0.5);
//! let w = Init::GlorotUniform.weights::<f64, _>(3, 2, &mut rng)?;
//! let b = Array1::<f64>::zeros(2);
//! let mut z = Array2::<f64>::zeros((4, 2));
//! gemm(1.0, x.view(), w.view(), 0.0, z.view_mut()); // z = x w
//! add_row_bias(z.view_mut(), b.view());
//! Activation::Sigmoid.forward_inplace(z.view_mut());
//! let y = glorot_tensor::one_hot::<f64>(&[0, 1, 1, 0], 2);
//! let l = loss::bce_notebook(z.view(), y.view());
//! assert!(l.is_finite() && l > 0.0);
//! # Ok::<(), glorot_tensor::Error>(())
//! ```
#![warn(missing_docs)]

#[cfg(test)]
extern crate blas_src;

mod activation;
mod error;
mod float;
mod init;
mod linalg;
pub mod loss;
pub mod numpy_rng;
mod sum;
mod util;

pub use activation::{Activation, sigmoid, sigmoid_inplace, softmax_rows_inplace};
pub use error::Error;
pub use float::Float;
pub use init::Init;
pub use linalg::{add_row_bias, column_sums, gemm};
pub use sum::{pairwise_sum, pairwise_sum_by};
pub use util::{accuracy_percent, argmax_rows, one_hot, permutation};
