//! Shared test helpers.

use glorot_tensor::Float;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded generator for tests.
pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Whether the tests run under CPU emulation: `GLOROT_TEST_EMULATED=1`, which `cargo
/// xtask arm` sets when it runs them for aarch64 under qemu. A few tests then leave out
/// their largest shapes (saying which in their docs); native runs never set it.
pub(crate) fn emulated() -> bool {
    std::env::var_os("GLOROT_TEST_EMULATED").is_some_and(|v| v == "1")
}

/// Machine epsilon of `F`, as f64.
pub(crate) fn eps<F: Float>() -> f64 {
    F::epsilon().to_f64()
}

/// A `(rows, cols)` matrix with entries uniform in `[-1, 1)`.
pub(crate) fn random_matrix<F: Float>(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<F> {
    Array2::from_shape_simple_fn((rows, cols), || {
        F::from_f64(rng.random::<f64>() * 2.0 - 1.0)
    })
}

/// `|actual - expected| <= tol`, with a message naming the quantity.
#[track_caller]
pub(crate) fn assert_close(what: &str, actual: f64, expected: f64, tol: f64) {
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual:e}, expected {expected:e} (tolerance {tol:e}, off by {:e})",
        (actual - expected).abs()
    );
}
