//! Times each `f64` kernel call of one training step of the notebook's network
//! (784-500-500-10, batch 32) on its own, with the instruction set `GLOROT_ISA` selects
//! (else the best the CPU has), next to BLAS `gemm` on the same dense shapes: where the
//! `f64` epoch's time goes, call by call.
//!
//! ```text
//! cargo run --release -p glorot-tensor --example kernels_f64 -- [THREADS] [CALLS]
//! GLOROT_ISA=avx2 OPENBLAS_CORETYPE=Haswell cargo run --release -p glorot-tensor --example kernels_f64 -- 1
//! ```
//!
//! The input batch is synthetic but shaped like MNIST's: nonzero pixels only inside the
//! central 20 x 20 square, each with probability 0.5 (about 200 of 784, MNIST has 150 on
//! average). Each line is the median of 7 runs of `CALLS` calls (default 2000).
#![allow(clippy::print_stdout)] // an example program reports on stdout

extern crate blas_src;

/// As the `glorot` binary: large arrays start on cache lines (`glorot_tensor::alloc`; to
/// see what that gains, comment these two lines out and compare).
#[global_allocator]
static ALLOCATOR: glorot_tensor::alloc::CacheAligned = glorot_tensor::alloc::CacheAligned;

use std::hint::black_box;
use std::time::Instant;

use glorot_tensor::fused::{self, ScratchF64, SparseRowsF64};
use glorot_tensor::gemm;
use glorot_tensor::isa::Isa;
use glorot_tensor::replay::{SparseColumns, sgd_update_sparse_exact};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BATCH: usize = 32;
const IN: usize = 784;
const HIDDEN: usize = 500;
const OUT: usize = 10;

fn random(rng: &mut ChaCha8Rng, shape: (usize, usize), scale: f64) -> Array2<f64> {
    Array2::from_shape_fn(shape, |_| scale * (rng.random::<f64>() - 0.5))
}

/// Seconds per call: the median of 7 runs of `calls` calls of `f`.
fn time(calls: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 + 1 {
        f();
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

/// Which calls to time, and how often.
struct Bench {
    calls: usize,
    only: Option<String>,
}

impl Bench {
    /// Times `glorot` (and `blas`, the same product through BLAS, if any) and prints a
    /// line, if `name` is selected.
    fn run(&self, name: &str, flop: f64, glorot: impl FnMut(), blas: Option<&mut dyn FnMut()>) {
        if self
            .only
            .as_ref()
            .is_some_and(|only| !name.contains(only.as_str()))
        {
            return;
        }
        let seconds = time(self.calls, glorot);
        let vs = blas.map_or(String::new(), |b| {
            let b = time(self.calls, b);
            format!("   BLAS {:7.2} us  BLAS/glorot {:.2}", b * 1e6, b / seconds)
        });
        println!(
            "{name:<28} {:8.2} us {:6.1} GFLOP/s{vs}",
            seconds * 1e6,
            flop / seconds * 1e-9
        );
    }
}

/// The positional argument `arg` (`what`, a positive count), else `default`.
fn count(arg: Option<String>, what: &str, default: usize) -> Result<usize, String> {
    match arg {
        None => Ok(default),
        Some(a) => match a.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{what} must be a positive integer, not {a:?}")),
        },
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)] // the one message of a failed run
            {
                eprintln!("kernels_f64: error: {e}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads = count(args.next(), "THREADS", 1)?;
    let calls = count(args.next(), "CALLS", 2000)?;
    let bench = Bench {
        calls,
        only: args.next(),
    };
    let isa = match std::env::var("GLOROT_ISA") {
        Ok(name) => Isa::from_name(&name)?,
        Err(_) => Isa::detect(),
    };
    fused::set_threads(threads);
    println!(
        "f64 kernels, instruction set {}, {threads} thread(s), batch {BATCH}, {IN}-{HIDDEN}-{HIDDEN}-{OUT}",
        isa.name()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Array2::from_shape_fn((BATCH, IN), |(_, p)| {
        let (r, c) = (p / 28, p % 28);
        let inside = (4..24).contains(&r) && (4..24).contains(&c);
        if inside && rng.random::<bool>() {
            rng.random::<f64>()
        } else {
            0.0
        }
    });
    let mut w0 = random(&mut rng, (IN, HIDDEN), 0.1);
    let mut w1 = random(&mut rng, (HIDDEN, HIDDEN), 0.1);
    let mut w2 = random(&mut rng, (HIDDEN, OUT), 0.1);
    let h1 = random(&mut rng, (BATCH, HIDDEN), 2.0);
    let h2 = random(&mut rng, (BATCH, HIDDEN), 2.0);
    let d0 = random(&mut rng, (BATCH, HIDDEN), 0.01);
    let d1 = random(&mut rng, (BATCH, HIDDEN), 0.01);
    let d2 = random(&mut rng, (BATCH, OUT), 0.01);
    let out = Array2::<f64>::zeros((BATCH, HIDDEN));
    let out10 = Array2::<f64>::zeros((BATCH, OUT));
    let mut g1 = Array2::<f64>::zeros((HIDDEN, HIDDEN));
    let mut scratch = ScratchF64::new(isa, IN.max(HIDDEN));
    let mut rows = SparseRowsF64::new(isa, IN);
    let mut columns = SparseColumns::new(isa, BATCH, IN);
    let nonzeros = x.iter().filter(|&&v| v != 0.0).count();
    println!(
        "input: {:.1} nonzeros per row of {IN}; w0 starts {} bytes into a cache line",
        nonzeros as f64 / BATCH as f64,
        w0.as_ptr() as usize % 64
    );
    let sparse_flop = 2.0 * nonzeros as f64 * HIDDEN as f64;
    let dense = |m: usize, k: usize, n: usize| 2.0 * (m * k * n) as f64;
    let lr = 1e-12; // the weights barely move: every call sees the same operands

    let (mut o, mut ob) = (out.clone(), out.clone());
    bench.run(
        "x w0 (sparse)",
        sparse_flop,
        || fused::product_sparse_f64(isa, x.view(), w0.view(), o.view_mut(), &mut rows),
        Some(&mut || gemm(1.0, x.view(), w0.view(), 0.0, ob.view_mut())),
    );
    bench.run(
        "h1 w1",
        dense(BATCH, HIDDEN, HIDDEN),
        || fused::product_f64(isa, h1.view(), w1.view(), o.view_mut()),
        Some(&mut || gemm(1.0, h1.view(), w1.view(), 0.0, ob.view_mut())),
    );
    let (mut o10, mut ob10) = (out10.clone(), out10.clone());
    bench.run(
        "h2 w2",
        dense(BATCH, HIDDEN, OUT),
        || fused::product_f64(isa, h2.view(), w2.view(), o10.view_mut()),
        Some(&mut || gemm(1.0, h2.view(), w2.view(), 0.0, ob10.view_mut())),
    );
    bench.run(
        "d2 w2^T",
        dense(BATCH, OUT, HIDDEN),
        || fused::product_nt_f64(isa, d2.view(), w2.view(), o.view_mut(), &mut scratch),
        Some(&mut || gemm(1.0, d2.view(), w2.t(), 0.0, ob.view_mut())),
    );
    bench.run(
        "d1 w1^T",
        dense(BATCH, HIDDEN, HIDDEN),
        || fused::product_nt_f64(isa, d1.view(), w1.view(), o.view_mut(), &mut scratch),
        Some(&mut || gemm(1.0, d1.view(), w1.t(), 0.0, ob.view_mut())),
    );
    bench.run(
        "w2 -= lr h2^T d2",
        dense(HIDDEN, BATCH, OUT),
        || fused::sgd_update_f64(isa, h2.view(), d2.view(), lr, w2.view_mut(), &mut scratch),
        None,
    );
    let mut w1b = w1.clone();
    bench.run(
        "w1 -= lr h1^T d1",
        dense(HIDDEN, BATCH, HIDDEN),
        || fused::sgd_update_f64(isa, h1.view(), d1.view(), lr, w1.view_mut(), &mut scratch),
        Some(&mut || {
            gemm(1.0, h1.t(), d1.view(), 0.0, g1.view_mut());
            w1b.zip_mut_with(&g1, |w, &g| *w -= lr * (g / 32.0));
        }),
    );
    bench.run(
        "w0 -= lr x^T d0 (sparse)",
        sparse_flop,
        || sgd_update_sparse_exact(isa, x.view(), d0.view(), lr, w0.view_mut(), &mut columns),
        None,
    );
    let mut a = h1.clone();
    bench.run(
        "tanh 32 x 500 (+ copy)",
        0.0,
        || {
            a.assign(&h1);
            fused::tanh_f64_slice(isa, a.as_slice_mut().expect("standard layout"));
            black_box(&a);
        },
        None,
    );
    black_box((&w0, &w1, &w2));
    Ok(())
}
