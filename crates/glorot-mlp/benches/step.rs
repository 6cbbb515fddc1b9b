//! One training step ([`Mlp::train_step`]: forward, the notebook's loss, backpropagation,
//! SGD update) of the notebook's 784-500-500-10 tanh network at batch 32, 64 and 128, in
//! `f32` and `f64`, and one validation forward pass of 10,000 rows. Prints steps per
//! second and GFLOP/s.
//!
//! ```text
//! GLOROT_MNIST_DIR=/path/to/mnist cargo bench -p glorot-mlp --bench step
//! OPENBLAS_NUM_THREADS=2 GLOROT_THREADS=2 cargo bench -p glorot-mlp --bench step -- f32/
//! GLOROT_FUSED=off cargo bench -p glorot-mlp --bench step -- f32/b32   # the BLAS path
//! ```
//!
//! Inputs are real MNIST rows when `GLOROT_MNIST_DIR` names the data (the `f32` kernels
//! skip zero pixels, so the data's sparsity matters), else synthetic rows with MNIST's
//! density (19 % nonzero pixels). Threads: OpenBLAS reads `OPENBLAS_NUM_THREADS` when it
//! loads; the fused `f32` kernels use `GLOROT_THREADS` (default 1). Criterion's
//! throughput counts one element per floating-point operation of the dense products
//! (`3.098 MFLOP` per training row), so its `Gelem/s` reads as effective GFLOP/s.
#![allow(clippy::print_stdout)] // a benchmark binary reports on stdout

extern crate blas_src;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use glorot_mlp::{
    Activation, EvalData, Evaluator, Head, Init, Mlp, MlpFloat, ModelConfig, ValidModelConfig,
    WeightSource, Workspace,
};
use glorot_tensor::isa::{self, Isa};
use glorot_tensor::{fused, one_hot};
use ndarray::{Array2, s};

/// Rows of data the steps cycle through (8 batches of 128).
const ROWS: usize = 1024;
/// Validation rows of the notebook.
const VAL_ROWS: usize = 10_000;
const LAYERS: [usize; 4] = [784, 500, 500, 10];

fn config() -> ValidModelConfig {
    ModelConfig {
        layers: LAYERS.to_vec(),
        activation: Activation::Tanh,
        head: Head::SigmoidBce,
        init: Init::GlorotUniform,
    }
    .validate()
    .expect("the notebook's architecture is valid")
}

/// Inputs and labels: MNIST's first rows, or synthetic MNIST-like rows.
struct Data {
    x: Array2<f32>,
    labels: Vec<u8>,
    source: &'static str,
}

/// The first `rows` training rows, or (`validation`) the 10,000 validation rows.
fn data(rows: usize, validation: bool) -> Data {
    let rows = if validation { VAL_ROWS } else { rows };
    if let Some(dir) = std::env::var_os("GLOROT_MNIST_DIR").filter(|d| !d.is_empty()) {
        let m = glorot_mnist::load(
            std::path::Path::new(&dir),
            &glorot_mnist::LoadOptions::default(),
        )
        .expect("GLOROT_MNIST_DIR names the MNIST files");
        let split = if validation { &m.validation } else { &m.train };
        let (x, labels) = (
            split.images.slice(s![..rows, ..]).to_owned(),
            split.labels[..rows].to_vec(),
        );
        return Data {
            x,
            labels,
            source: "MNIST",
        };
    }
    // A deterministic hash decides which pixels are ink (19 %) and their value.
    let hash = |i: usize, j: usize| (i * 2_654_435_761 + j * 40_503) % 1_000_003;
    let x = Array2::from_shape_fn((rows, 784), |(i, j)| {
        let h = hash(i, j);
        if h % 100 < 19 {
            (1 + h % 255) as f32 / 256.0
        } else {
            0.0
        }
    });
    let labels = (0..rows).map(|i| (hash(i, 7) % 10) as u8).collect();
    Data {
        x,
        labels,
        source: "synthetic (19% nonzero)",
    }
}

/// FLOP of the dense products of one training step of `rows` rows.
fn step_flop(rows: usize) -> u64 {
    let pairs: Vec<u64> = LAYERS.windows(2).map(|p| (p[0] * p[1]) as u64).collect();
    let forward: u64 = pairs.iter().sum();
    2 * rows as u64 * (2 * forward + pairs[1..].iter().sum::<u64>())
}

/// A model, a workspace and the data in `F`, ready to step.
struct Stepper<F: MlpFloat> {
    model: Mlp<F>,
    ws: Workspace<F>,
    x: Array2<F>,
    y: Array2<F>,
    batch: usize,
    next: usize,
}

impl<F: MlpFloat> Stepper<F> {
    fn new(data: &Data, batch: usize) -> Self {
        let cfg = config();
        Self {
            model: Mlp::new(cfg.clone(), WeightSource::Seed(5)).expect("initializes"),
            ws: Workspace::new(&cfg, batch),
            x: data.x.mapv(|v| F::from_f64(f64::from(v))),
            y: one_hot(&data.labels, 10),
            batch,
            next: 0,
        }
    }

    /// One SGD step on the next batch (cycling through the rows).
    fn step(&mut self) -> F {
        let (a, b) = (self.next, self.next + self.batch);
        self.next = if b + self.batch > self.x.nrows() {
            0
        } else {
            b
        };
        self.model.train_step(
            self.x.slice(s![a..b, ..]),
            self.y.slice(s![a..b, ..]),
            F::from_f64(0.01),
            &mut self.ws,
        )
    }
}

fn bench_steps<F: MlpFloat>(c: &mut Criterion, data: &Data) {
    let mut group = c.benchmark_group(F::NAME);
    for batch in [32, 64, 128] {
        let mut stepper = Stepper::<F>::new(data, batch);
        group.throughput(Throughput::Elements(step_flop(batch)));
        group.bench_function(BenchmarkId::new("step", format!("b{batch}")), |b| {
            b.iter(|| black_box(stepper.step()))
        });
    }
    group.finish();
}

fn bench_validation<F: MlpFloat>(c: &mut Criterion, val: &Data) {
    let cfg = config();
    let model = Mlp::<F>::new(cfg.clone(), WeightSource::Seed(5)).expect("initializes");
    let x: Array2<F> = val.x.mapv(|v| F::from_f64(f64::from(v)));
    let data = EvalData::new(x.view(), &val.labels).expect("matching rows");
    let mut eval = Evaluator::new(&cfg, x.nrows());
    let mut group = c.benchmark_group(F::NAME);
    group.throughput(Throughput::Elements(
        2 * (x.nrows() * (784 * 500 + 500 * 500 + 500 * 10)) as u64,
    ));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("validation", x.nrows()), |b| {
        b.iter(|| black_box(eval.evaluate(&model, &data).expect("evaluates")))
    });
    group.finish();
}

/// Median microseconds per step over 7 timed runs of about 50 ms each.
fn micros_per_step<F: MlpFloat>(data: &Data, batch: usize) -> f64 {
    let mut stepper = Stepper::<F>::new(data, batch);
    let start = Instant::now();
    let mut reps = 0u32;
    while start.elapsed() < Duration::from_millis(50) {
        black_box(stepper.step());
        reps += 1;
    }
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                black_box(stepper.step());
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(reps)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[3]
}

fn table(data: &Data) {
    println!(
        "\nOne training step, 784-500-500-10 tanh ({} inputs, f32 kernels: {}, {} thread(s)); \
         median of 7 timed runs",
        data.source,
        match Isa::default_for_process() {
            isa if isa.accelerated() => isa.name(),
            _ => "BLAS",
        },
        fused::threads(),
    );
    println!(
        "{:>5} {:>10} {:>9} {:>10} {:>9} {:>14}",
        "batch", "f32 µs", "GFLOP/s", "f64 µs", "GFLOP/s", "f32 train s"
    );
    for batch in [32, 64, 128] {
        let (s, d) = (
            micros_per_step::<f32>(data, batch),
            micros_per_step::<f64>(data, batch),
        );
        let gf = |us: f64| step_flop(batch) as f64 / us / 1e3;
        // The training part of an epoch: ceil(50,000 / batch) steps (the last one smaller).
        let epoch = s * (50_000.0 / batch as f64).ceil() / 1e6;
        println!(
            "{:>5} {:>10.1} {:>9.1} {:>10.1} {:>9.1} {:>14.2}",
            batch,
            s,
            gf(s),
            d,
            gf(d),
            epoch
        );
    }
}

fn main() {
    // As the `glorot` binary: `GLOROT_FUSED=off` selects the portable kernels.
    if std::env::var("GLOROT_FUSED").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        isa::set_default(Isa::portable()).expect("nothing has run yet");
    }
    let threads = std::env::var("GLOROT_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1);
    fused::set_threads(threads);
    let train = data(ROWS, false);
    let val = data(VAL_ROWS, true);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    bench_steps::<f32>(&mut c, &train);
    bench_steps::<f64>(&mut c, &train);
    bench_validation::<f32>(&mut c, &val);
    bench_validation::<f64>(&mut c, &val);
    c.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: criterion then checks each
    // benchmark once, and the timing table is skipped.
    if std::env::args().any(|a| a == "--bench") {
        table(&train);
    }
}
