//! BLAS-backed math core for small dense networks: matrix products into preallocated
//! buffers, activations with their derivatives, losses with their gradients, weight
//! initializers and the few helpers a classifier needs (argmax, accuracy, one-hot,
//! permutations).
//!
//! It is the hot path of glorot's multilayer perceptron, and stands alone: it knows
//! nothing about MNIST, models or training loops, and depends on no other glorot crate.
//!
//! # Design
//!
//! - **One element trait.** Everything is generic over [`Float`], implemented for `f32`
//!   and `f64`. Every numeric test of the crate runs for both.
//! - **Views in, views out.** Functions read `ArrayView`s and write into caller-owned
//!   `ArrayViewMut`s. Once a model's buffers exist, a training step allocates nothing
//!   (see [Allocation](#allocation)).
//! - **BLAS through ndarray.** [`gemm`] is `c = alpha * op(a) * op(b) + beta * c` through
//!   [`ndarray::linalg::general_mat_mul`], which calls `sgemm`/`dgemm`; transposing an
//!   operand is passing `w.t()`, a view, never a copy. The library enables ndarray's
//!   `blas` feature but leaves the choice of BLAS provider to the final binary.
//! - **Replayable.** Where NumPy's evaluation order decides the last bits, this crate
//!   follows it, so a NumPy program can be replayed bit for bit in `f64` (see
//!   [Agreement with NumPy](#agreement-with-numpy)).
//! - **Bugs panic, data errors return.** A shape mismatch is a programmer error: it
//!   panics with both shapes, at the caller's line (`#[track_caller]`), as documented in
//!   each function's `# Panics`. Bad parameters (a negative standard deviation) and
//!   unknown activation names are [`Error`]s.
//!
//! # Example
//!
//! One forward and backward pass of a one-layer sigmoid network with the notebook's loss:
//!
//! ```
//! # extern crate blas_src;
//! use glorot_tensor::{Activation, Init, column_means, gemm, loss, one_hot};
//! use ndarray::{Array1, Array2};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! let mut rng = ChaCha8Rng::seed_from_u64(5);
//! let x = Array2::<f64>::from_shape_fn((4, 3), |(i, j)| (i + j) as f64 / 6.0); // (batch, inputs)
//! let y = one_hot::<f64>(&[0, 1, 1, 0], 2); // (batch, outputs)
//! let mut w = Init::GlorotUniform.weights::<f64, _>(3, 2, &mut rng)?; // (inputs, outputs)
//! let mut b = Array1::<f64>::zeros(2);
//!
//! // Buffers, allocated once.
//! let mut out = Array2::<f64>::zeros((4, 2));
//! let mut delta = Array2::<f64>::zeros((4, 2));
//! let mut gw = Array2::<f64>::zeros((3, 2));
//! let mut gb = Array1::<f64>::zeros(2);
//!
//! gemm(1.0, x.view(), w.view(), 0.0, out.view_mut()); // out = x w
//! Activation::Sigmoid.forward_bias_inplace(out.view_mut(), b.view()); // out = sigmoid(x w + b)
//! let before = loss::bce_notebook(out.view(), y.view());
//! loss::bce_notebook_delta(out.view(), y.view(), delta.view_mut()); // d loss_row / d z
//! gemm(1.0 / 4.0, x.t(), delta.view(), 0.0, gw.view_mut()); // gw = x^T delta / batch
//! column_means(delta.view(), gb.view_mut()); // gb = mean of delta over the batch
//! w.scaled_add(-0.5, &gw);
//! b.scaled_add(-0.5, &gb);
//!
//! gemm(1.0, x.view(), w.view(), 0.0, out.view_mut());
//! Activation::Sigmoid.forward_bias_inplace(out.view_mut(), b.view());
//! assert!(loss::bce_notebook(out.view(), y.view()) < before);
//! # Ok::<(), glorot_tensor::Error>(())
//! ```
//!
//! `examples/tiny_mlp.rs` trains a two-layer tanh network on a synthetic XOR task with
//! nothing but this crate: `cargo run -p glorot-tensor --example tiny_mlp`.
//!
//! # What is in the crate
//!
//! | area | items |
//! | --- | --- |
//! | products | [`gemm`], [`add_row_bias`], [`column_sums`], [`column_means`] |
//! | activations | [`Activation`] (ReLU, sigmoid, tanh, softsign: forward in place, derivative from the output, backward in place, fused bias + forward), [`sigmoid`], [`softsign`], [`sigmoid_inplace`], [`softmax_rows_inplace`] |
//! | losses | [`loss::bce_notebook`], [`loss::bce_with_logits`], [`loss::softmax_cross_entropy`], each with its `_delta` gradient |
//! | initializers | [`Init`]: Glorot uniform, normal, zero, He normal/uniform, LeCun normal, orthogonal |
//! | helpers | [`argmax_rows`], [`accuracy_percent`], [`one_hot`], [`permutation`], [`pairwise_sum`] |
//! | fused kernels | [`fused`]: `f32` products with bias, activation, derivative or SGD update fused in, sparse-input variants, a thread team; `f64` products with a stated summation order ([`fused::product_f64`], [`fused::product_sparse_f64`]) and the notebook's update fused in ([`fused::sgd_update_f64`]), [`fused::tanh_f64_slice`] (GNU libc's `tanh`, bit for bit) |
//! | instruction sets | [`isa::Isa`]: the instruction set the fused kernels run with (AVX-512, AVX2, NEON or portable), detected once and passed down; [`isa::set_default`] for code given none |
//! | notebook replay | [`replay`]: [`replay::tanh_glibc`], the exact sparse update [`replay::sgd_update_sparse_exact`] with [`replay::weight_gradient_sparse_f64`] and [`replay::matches_sparse_chain`] |
//! | NumPy's generator | [`numpy_rng`]: NumPy's legacy `RandomState`, to replay a seeded NumPy program |
//!
//! Shapes follow the notebook: a batch is `(batch, features)` with one example per row,
//! a weight matrix is `(fan_in, fan_out)` so a layer is `x w + b`, a bias is `(fan_out,)`.
//! The gradients written by the `_delta` functions are per example (not divided by the
//! batch size); the caller divides once, after the products, as the notebook does.
//!
//! # Agreement with NumPy
//!
//! Bit for bit in `f64`, checked against NumPy 2.4.6 / SciPy 1.17.1 in
//! `tests/suite/numpy_order.rs` (reference values printed by
//! `tests/reference/numpy_reference.py`):
//!
//! - sums along a row (`np.sum(a, axis=1)`, the loss's row sums and batch mean) use
//!   NumPy's pairwise summation ([`pairwise_sum`]);
//! - sums down columns (`np.sum(a, axis=0)`, `np.mean(a, axis=0)`) add rows in order
//!   ([`column_sums`], [`column_means`]);
//! - [`sigmoid`] is SciPy's `expit`, `1 / (1 + exp(-x))`;
//! - element-wise expressions keep the notebook's operation order (its loss, its `del2`,
//!   `activation_p(h) * douth`), and [`accuracy_percent`] equals `count / 100` for 10,000
//!   samples.
//!
//! Not under this crate's control: the order in which BLAS accumulates a dot product
//! (OpenBLAS picks kernels per CPU, NumPy ships its own OpenBLAS build), and NumPy's own
//! SIMD `exp`/`log`/`tanh` loops, which may differ from the C library's in the last bit
//! on some CPUs (they agreed with glibc on the AVX-512 machine the tests were written on).
//!
//! # Allocation
//!
//! Every function except the allocating constructors ([`Init::weights`], [`one_hot`],
//! [`permutation`]) and [`Init::fill`] with [`Init::Orthogonal`] works in caller-owned
//! memory. `tests/suite/no_alloc.rs` checks the claim with a counting
//! `#[global_allocator]`: it runs three full training steps of the notebook's
//! 784-500-500-10 network (batch 32: forward gemms, bias, activation, the notebook's loss
//! and delta, the transposed backward gemms, column means, SGD update with
//! `scaled_add`), plus argmax, accuracy, softmax and the other two losses, for every
//! activation in `f32` and `f64`, and asserts zero Rust heap allocations from the very
//! first step; it also runs three `f32` and three `f64` steps through [`fused`] (and the
//! exact sparse update of [`replay`]) on every instruction set the machine has, the
//! portable one included, with the same assertion. ndarray calls BLAS directly for
//! contiguous and transposed-contiguous views (the BLAS path has no allocation);
//! OpenBLAS keeps its own buffer pool, set up with C `malloc` at its first call and
//! reused. Two things do allocate: products whose
//! dimensions are all 7 or less, and operands with non-unit inner strides (e.g.
//! `a.slice(s![.., ..;2])`); ndarray sends those to the `matrixmultiply` crate, which
//! allocates packing buffers.
//!
//! # Performance
//!
//! The training step's hot path is [`fused`]; [`gemm`] goes through whichever BLAS the
//! final binary links. `benches/gemm.rs` times the products of one training step at the
//! notebook's shapes (batch 32, 64, 128 against 784x500, 500x500 and 500x10, with the
//! transposed products backpropagation uses) and prints GFLOP/s:
//!
//! ```text
//! cargo bench -p glorot-tensor --bench gemm
//! ```
//!
//! Numbers depend on the machine and the BLAS provider; measurements on one machine, with
//! Debian's OpenBLAS, are in `docs/performance.md` at the workspace root.
//!
//! # Using this crate without the rest of glorot
//!
//! The crate has no glorot dependencies and chooses no BLAS library: ndarray's `blas`
//! feature calls `cblas_sgemm`/`cblas_dgemm`, and the final binary links a provider.
//! `README.md` next to `Cargo.toml` lists every dependency with a complete program;
//! `cargo xtask standalone` builds that program outside the workspace, with a different
//! BLAS than the workspace's, on every CI run. In short:
//!
//! ```toml
//! [dependencies]
//! glorot-tensor = { path = "../glorot/crates/glorot-tensor" }
//! ndarray = "0.17"
//! rand = "0.9"
//! # A seeded, portable generator, as the examples use (any rand 0.9 `Rng` works).
//! rand_chacha = "0.9"
//!
//! # One BLAS provider, in the binary (or as dev-dependencies for tests and examples).
//! # OpenBLAS (Debian: apt-get install libopenblas-dev pkg-config):
//! blas-src = { version = "0.14", features = ["openblas"] }
//! openblas-src = { version = "0.10", default-features = false, features = ["cblas", "system"] }
//! # or the reference BLAS (Debian: apt-get install libblas-dev liblapack-dev gfortran):
//! netlib-src = { version = "0.9", default-features = false, features = ["system"] }
//! ```
//!
//! and at the top of the binary's `main.rs` (and of each test, example or bench file,
//! each a separate link target), so that the provider is linked at all:
//!
//! ```text
//! extern crate blas_src; // with blas-src (OpenBLAS, MKL, BLIS, Accelerate)
//! extern crate netlib_src; // with the reference BLAS through netlib-src
//! ```
//!
//! The provider libraries come from the system (the `system` features); glorot-tensor
//! itself needs no system package. Two traps, both explained in the README: `blas-src`'s
//! own `netlib` feature links `libcblas`, which Debian does not ship (its reference
//! `libblas` contains CBLAS), hence `netlib-src` directly; and on Debian, with OpenBLAS
//! also installed, `-lblas` links OpenBLAS through `update-alternatives` unless the
//! linker is pointed at `/usr/lib/<multiarch>/blas`. OpenBLAS's thread count follows
//! `OPENBLAS_NUM_THREADS`.
//!
//! Calling conventions for the [`Float`] trait: write `F::from_f64(0.5)` for constants,
//! and `x.to_f64()` on a value `x: F`. On a reference `&F` (for example in
//! `a.iter().map(|v| v.to_f64())`) method lookup finds `num_traits::ToPrimitive::to_f64`
//! first, which returns an `Option`: destructure the reference instead
//! (`|&v| v.to_f64()`).
#![warn(missing_docs)]

#[cfg(test)]
extern crate blas_src;

mod activation;
pub mod alloc;
mod error;
mod float;
pub mod fused;
mod init;
pub mod isa;
mod kernels;
mod linalg;
pub mod loss;
pub mod numpy_rng;
pub mod replay;
mod sum;
mod util;

pub use activation::{Activation, sigmoid, sigmoid_inplace, softmax_rows_inplace, softsign};
pub use error::Error;
pub use float::Float;
pub use init::Init;
pub use linalg::{add_row_bias, column_means, column_sums, gemm};
pub use sum::{pairwise_sum, pairwise_sum_by};
pub use util::{accuracy_percent, argmax_rows, one_hot, permutation};
