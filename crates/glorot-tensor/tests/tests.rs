//! Integration tests of glorot-tensor, one binary (modules under `tests/suite/`).

// Test binaries are final link targets: they select the BLAS provider.
extern crate blas_src;

mod suite {
    pub(crate) mod common;

    mod activations;
    mod gemm;
    mod helpers;
    mod init;
    mod losses;
    mod no_alloc;
    mod numpy_order;
}

/// Runs a generic test body for `f32` and for `f64`, as two tests named `f32` and `f64`
/// in a module named after the body.
#[macro_export]
macro_rules! both_floats {
    ($($body:ident),* $(,)?) => {
        $(
            mod $body {
                #[test]
                fn f32() {
                    super::$body::<f32>();
                }
                #[test]
                fn f64() {
                    super::$body::<f64>();
                }
            }
        )*
    };
}
