//! Matrix products at the notebook's shapes (784-500-500-10, batch 32, 64, 128), with the
//! transposes backpropagation uses, in f32 and f64. Prints GFLOP/s.
//!
//! ```text
//! cargo bench -p glorot-tensor --bench gemm                     # criterion, then a GFLOP/s table
//! cargo bench -p glorot-tensor --bench gemm -- --quick f64/b32  # a quick look at a subset
//! ```
//!
//! Criterion's throughput line counts one element per floating-point operation
//! (`2 m n k` per product), so its `Gelem/s` reads as GFLOP/s. After criterion, a plain
//! timer prints one table of GFLOP/s (median of 7 timed runs per product).
#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout

extern crate blas_src;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use glorot_tensor::{Float, gemm};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One product of a training step: `c (m, n) = op(a) op(b)`, `k` the inner dimension.
struct Product {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    trans_a: bool,
    trans_b: bool,
}

fn products(batch: usize) -> Vec<Product> {
    let p = |name, m, k, n, trans_a, trans_b| Product {
        name,
        m,
        k,
        n,
        trans_a,
        trans_b,
    };
    vec![
        // Forward: x w0, h1 w1, h2 w2.
        p("x*w0", batch, 784, 500, false, false),
        p("h1*w1", batch, 500, 500, false, false),
        p("h2*w2", batch, 500, 10, false, false),
        // Weight gradients: x^T del0, h1^T del1, h2^T del2.
        p("xT*del0", 784, batch, 500, true, false),
        p("h1T*del1", 500, batch, 500, true, false),
        p("h2T*del2", 500, batch, 10, true, false),
        // Deltas: del2 w2^T, del1 w1^T.
        p("del2*w2T", batch, 10, 500, false, true),
        p("del1*w1T", batch, 500, 500, false, true),
    ]
}

/// Operands stored so that `a`/`b` are passed as `.t()` views when transposed.
struct Operands<F> {
    a: Array2<F>,
    b: Array2<F>,
    c: Array2<F>,
}

impl<F: Float> Operands<F> {
    fn new(p: &Product, rng: &mut ChaCha8Rng) -> Self {
        let mut m = |r: usize, c: usize| {
            Array2::from_shape_simple_fn((r, c), || F::from_f64(rng.random::<f64>() - 0.5))
        };
        let a = if p.trans_a { m(p.k, p.m) } else { m(p.m, p.k) };
        let b = if p.trans_b { m(p.n, p.k) } else { m(p.k, p.n) };
        Operands {
            a,
            b,
            c: Array2::zeros((p.m, p.n)),
        }
    }

    fn run(&mut self, p: &Product) {
        let a = if p.trans_a { self.a.t() } else { self.a.view() };
        let b = if p.trans_b { self.b.t() } else { self.b.view() };
        gemm(
            F::one(),
            black_box(a),
            black_box(b),
            F::zero(),
            self.c.view_mut(),
        );
        black_box(&self.c);
    }
}

fn flops(p: &Product) -> u64 {
    2 * (p.m * p.k * p.n) as u64
}

fn bench_type<F: Float>(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for batch in [32, 64, 128] {
        let mut group = c.benchmark_group(format!("{}/b{batch}", F::NAME));
        for p in products(batch) {
            let mut ops = Operands::<F>::new(&p, &mut rng);
            group.throughput(Throughput::Elements(flops(&p)));
            group.bench_function(BenchmarkId::from_parameter(p.name), |bch| {
                bch.iter(|| ops.run(&p))
            });
        }
        group.finish();
    }
}

/// Median GFLOP/s over 7 runs of enough repetitions to last about 20 ms each.
fn gflops<F: Float>(p: &Product, rng: &mut ChaCha8Rng) -> f64 {
    let mut ops = Operands::<F>::new(p, rng);
    ops.run(p);
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed() < Duration::from_millis(20) {
        ops.run(p);
        reps += 1;
    }
    let mut rates: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                ops.run(p);
            }
            flops(p) as f64 * f64::from(reps) / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[3]
}

fn table() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    println!("\nGFLOP/s (median of 7 timed runs)");
    println!(
        "{:<10} {:>5} {:>14} {:>8} {:>8}",
        "product", "batch", "m x k x n", "f32", "f64"
    );
    for batch in [32, 64, 128] {
        for p in products(batch) {
            let shape = format!("{}x{}x{}", p.m, p.k, p.n);
            let (s, d) = (gflops::<f32>(&p, &mut rng), gflops::<f64>(&p, &mut rng));
            println!(
                "{:<10} {:>5} {:>14} {:>8.1} {:>8.1}",
                p.name, batch, shape, s, d
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args();
    bench_type::<f32>(&mut c);
    bench_type::<f64>(&mut c);
    c.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: criterion then only
    // checks each benchmark once, and the timing table is skipped too.
    if std::env::args().any(|a| a == "--bench") {
        table();
    }
}
