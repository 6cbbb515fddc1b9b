//! Shared test helpers: MNIST from `GLOROT_MNIST_DIR`, loaded once per test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use glorot_mnist::{LoadOptions, Mnist};
use ndarray::Array2;

/// The MNIST directory named by `GLOROT_MNIST_DIR`. A relative path is taken relative to
/// the current directory and, failing that, to the workspace root (CI sets
/// `../shared/mnist`, which is relative to the root, while tests run in the crate folder).
pub(crate) fn mnist_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GLOROT_MNIST_DIR").filter(|v| !v.is_empty())?);
    if dir.is_absolute() || dir.exists() {
        return Some(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(root.join(dir))
}

/// Whether the tests run under CPU emulation: `GLOROT_TEST_EMULATED=1`, which `cargo
/// xtask arm` sets when it runs them for aarch64 under qemu (10 to 50 times slower than
/// native). Tests on full-size MNIST then shrink or skip, saying so; native runs (CI's
/// `cargo xtask test`) never set it and run everything at full size.
pub(crate) fn emulated() -> bool {
    std::env::var_os("GLOROT_TEST_EMULATED").is_some_and(|v| v == "1")
}

/// `true`, after a note naming `test` and `why`, when [`emulated`]: for tests too slow
/// to run under emulation at any size that still checks what they check.
#[expect(clippy::print_stderr, reason = "tests explain why they skip")]
pub(crate) fn skip_emulated(test: &str, why: &str) -> bool {
    let skip = emulated();
    if skip {
        eprintln!("{test}: skipped under emulation (GLOROT_TEST_EMULATED=1): {why}");
    }
    skip
}

/// The notebook's MNIST (train 0..50,000, validation 50,000..60,000, test; byte / 256 as
/// `f32`), or `None` with a note when `GLOROT_MNIST_DIR` is unset.
///
/// # Panics
/// When the variable is set but the data cannot be loaded: a misconfiguration must fail.
#[expect(clippy::print_stderr, reason = "tests explain why they skip")]
pub(crate) fn mnist(test: &str) -> Option<&'static Mnist<f32>> {
    static DATA: OnceLock<Option<Mnist<f32>>> = OnceLock::new();
    let data = DATA.get_or_init(|| {
        let dir = mnist_dir()?;
        Some(
            glorot_mnist::load(&dir, &LoadOptions::default())
                .unwrap_or_else(|e| panic!("GLOROT_MNIST_DIR={}: {e}", dir.display())),
        )
    });
    if data.is_none() {
        eprintln!("{test}: skipped, GLOROT_MNIST_DIR is not set (it names the MNIST folder)");
    }
    data.as_ref()
}

/// The notebook's training inputs and one-hot targets in `f64` (exact: byte / 256 is
/// representable), built once.
pub(crate) fn train_f64(data: &Mnist<f32>) -> &'static (Array2<f64>, Array2<f64>) {
    static TRAIN: OnceLock<(Array2<f64>, Array2<f64>)> = OnceLock::new();
    TRAIN.get_or_init(|| {
        (
            data.train.images.mapv(f64::from),
            data.train.one_hot_labels::<f64>(),
        )
    })
}

/// The validation inputs in `f64`, built once.
pub(crate) fn validation_f64(data: &Mnist<f32>) -> &'static Array2<f64> {
    static VAL: OnceLock<Array2<f64>> = OnceLock::new();
    VAL.get_or_init(|| data.validation.images.mapv(f64::from))
}
