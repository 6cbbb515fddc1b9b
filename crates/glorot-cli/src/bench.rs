//! `glorot bench-epoch` and `glorot bench-gemm`: the timing children of `cargo xtask bench`
//! (issue 8; protocol in `bench/README.md`, numbers in `docs/performance.md`).
//!
//! * `bench-epoch` times whole epochs of the notebook's workload through the real
//!   trainer ([`glorot_mlp::Trainer::fit`]): 784-500-500-10, tanh, sigmoid outputs with
//!   the notebook's loss, lr 0.01, batch 32, the notebook's Glorot draws
//!   (`np.random.seed(5)`), the first 50,000 training images in file order, then one
//!   forward pass over the 10,000 validation images. Every measured epoch starts from the
//!   same fresh initialization, so every repeat does identical work and reports epoch 1's
//!   loss (in `f64`: the notebook's `1.1164179979846724` and `90.75`).
//! * `bench-gemm` times the matrix products that epoch performs and nothing else: per
//!   minibatch `x@W0, h1@W1, h2@W2, h2^T@d2, d2@W2^T, h1^T@d1, d1@W1^T, x^T@d0`, then the
//!   three forward products over the validation rows, through the same
//!   [`glorot_tensor::gemm`] and OpenBLAS, into buffers of the same shapes: the GEMM-only
//!   bound the epoch is compared with.
//!
//! Both print one JSON object per measured epoch on stdout with `--json` (and nothing
//! else there); without it, one readable line per epoch. Notes go to stderr. A warm-up
//! epoch (on throwaway parameters) runs first and is not reported: the first calls pay
//! for OpenBLAS's buffer setup and thread start, and page faults of the workspaces.

use std::{
    sync::Barrier,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use glorot_mlp::{
    Activation, Arithmetic, EpochMetrics, EvalData, FitData, Float, Head, Init, Mlp, ModelConfig,
    NoopObserver, Precision, Shuffle, TrainConfig, TrainData, Trainer, ValidModelConfig,
    WeightSource,
};
use glorot_tensor::{gemm, numpy_rng::RandomState, one_hot};
use ndarray::{Array2, ArrayView2, s};
use serde::Serialize;

use crate::common::{
    self, DataOpts, Loaded, out, parse_activation, parse_arithmetic, parse_positive,
    parse_positive_f64, parse_precision, parse_shuffle, usage,
};
use crate::train::Compute;

/// Options both bench commands share.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchOpts {
    /// Arithmetic precision: f32 or f64.
    #[arg(long, value_name = "P", default_value = "f32", value_parser = parse_precision)]
    precision: Precision,
    /// Minibatch size (the last batch of the epoch keeps the remainder).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = parse_positive)]
    batch: usize,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', num_args = 1.., default_value = "500,500", value_parser = parse_positive)]
    hidden: Vec<usize>,
    /// OpenBLAS threads [default: every CPU].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    threads: Option<usize>,
    /// Measured epochs, each from the same fresh initialization.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = parse_positive)]
    repeats: usize,
    /// Untimed warm-up epochs before the measured ones.
    #[arg(long, value_name = "N", default_value_t = 1)]
    warmup: usize,
    /// Seed of NumPy's generator for the Glorot draws (the notebook's `np.random.seed(5)`).
    #[arg(long, value_name = "SEED", default_value_t = 5)]
    seed: u32,
    /// Use only the first N training and the first N validation images.
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    limit: Option<usize>,
    /// One JSON object per measured epoch on stdout, nothing else.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataOpts,
}

/// Options of `glorot bench-epoch`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchEpochArgs {
    #[command(flatten)]
    opts: BenchOpts,
    /// Hidden activation: relu, sigmoid or tanh.
    #[arg(long, value_name = "NAME", default_value = "tanh", value_parser = parse_activation)]
    activation: Activation,
    /// SGD learning rate.
    #[arg(long, value_name = "LR", default_value_t = 0.01, value_parser = parse_positive_f64)]
    lr: f64,
    /// Data order: never (the notebook's file order) or every-epoch (a seeded permutation,
    /// batches gathered into a buffer).
    #[arg(long, value_name = "MODE", default_value = "never", value_parser = parse_shuffle)]
    shuffle: Shuffle,
    /// How the products are computed: fast (the fastest kernels, a fixed summation order)
    /// or blas (every product through BLAS, as NumPy computes them).
    #[arg(long, value_name = "MODE", default_value = "fast", value_parser = parse_arithmetic)]
    arithmetic: Arithmetic,
    /// Independent trainings run at once on threads sharing the one dataset (trial-level
    /// parallelism, as `glorot search` runs trials); each prints its own records.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    workers: usize,
}

/// Options of `glorot bench-gemm`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchGemmArgs {
    #[command(flatten)]
    opts: BenchOpts,
}

/// One measured epoch of `bench-epoch`.
#[derive(Debug, Serialize)]
struct EpochRecord {
    #[serde(rename = "impl")]
    imp: &'static str,
    variant: &'static str,
    dtype: &'static str,
    batch: usize,
    threads: usize,
    workers: usize,
    worker: usize,
    repeat: usize,
    layers: Vec<usize>,
    activation: Activation,
    lr: f64,
    shuffle: Shuffle,
    arithmetic: Arithmetic,
    /// Wall seconds of the epoch: training plus validation.
    seconds: f64,
    train_seconds: f64,
    val_seconds: f64,
    /// Wall seconds from the start of the round until every worker finished.
    round_seconds: f64,
    /// CPU seconds of the whole process during the round (all threads, all workers).
    cpu_seconds: Option<f64>,
    loss: f64,
    val_loss: f64,
    val_accuracy: f64,
    train_samples: usize,
    val_samples: usize,
    gflop: f64,
    gflops: f64,
    peak_rss_kib: Option<u64>,
    openblas: String,
    revision: &'static str,
}

/// One measured epoch of `bench-gemm`.
#[derive(Debug, Serialize)]
struct GemmRecord {
    #[serde(rename = "impl")]
    imp: &'static str,
    variant: &'static str,
    dtype: &'static str,
    batch: usize,
    threads: usize,
    repeat: usize,
    layers: Vec<usize>,
    seconds: f64,
    train_seconds: f64,
    val_seconds: f64,
    cpu_seconds: Option<f64>,
    train_samples: usize,
    val_samples: usize,
    gflop: f64,
    gflops: f64,
    /// Per product: calls, seconds, GFLOP/s.
    products: Vec<ProductTime>,
    peak_rss_kib: Option<u64>,
    openblas: String,
    revision: &'static str,
}

/// Time spent in one kind of product over an epoch.
#[derive(Debug, Clone, Serialize)]
struct ProductTime {
    name: String,
    /// `m x k x n` of a full batch (validation: of one chunk).
    shape: String,
    calls: usize,
    seconds: f64,
    gflop: f64,
    gflops: f64,
}

/// The data and settings both commands start from.
struct Setup {
    loaded: Loaded,
    layers: Vec<usize>,
    threads: usize,
}

impl BenchOpts {
    fn setup(&self, err: &common::Stderr) -> Result<Setup> {
        if self.limit.is_some()
            && (self.data.train_limit.is_some() || self.data.val_limit.is_some())
        {
            return usage("--limit sets both --train-limit and --val-limit: give one or the other");
        }
        let mut data = self.data.clone();
        if let Some(n) = self.limit {
            data.train_limit = Some(n);
            data.val_limit = Some(n);
        }
        let loaded = data.load()?;
        let mut layers = vec![loaded.mnist.train.images.ncols()];
        layers.extend(&self.hidden);
        layers.push(glorot_mnist::NUM_CLASSES);
        // OpenBLAS's threads, and the same number for the fused f32 kernels' team.
        let threads = common::set_blas_threads(self.threads.unwrap_or_else(common::cpus));
        err.line(format!(
            "bench: {} {}, batch {}, {} training and {} validation images, {} OpenBLAS \
             thread(s), {} warm-up + {} measured epoch(s); {}",
            self.precision,
            join(&layers),
            self.batch,
            loaded.mnist.train.len(),
            loaded.mnist.validation.len(),
            threads,
            self.warmup,
            self.repeats,
            common::blas_description(),
        ));
        Ok(Setup {
            loaded,
            layers,
            threads,
        })
    }
}

/// `glorot bench-epoch`.
pub(crate) fn run_epoch(args: BenchEpochArgs) -> Result<()> {
    let err = common::Stderr::new(false);
    let setup = args.opts.setup(&err)?;
    match args.opts.precision {
        Precision::F32 => epoch_bench::<f32>(&args, &setup, &err),
        Precision::F64 => epoch_bench::<f64>(&args, &setup, &err),
    }
}

/// `glorot bench-gemm`.
pub(crate) fn run_gemm(args: BenchGemmArgs) -> Result<()> {
    let err = common::Stderr::new(false);
    let setup = args.opts.setup(&err)?;
    match args.opts.precision {
        Precision::F32 => gemm_bench::<f32>(&args.opts, &setup),
        Precision::F64 => gemm_bench::<f64>(&args.opts, &setup),
    }
}

fn model_config(layers: &[usize], activation: Activation) -> Result<ValidModelConfig> {
    ModelConfig {
        layers: layers.to_vec(),
        activation,
        head: Head::SigmoidBce,
        init: Init::GlorotUniform,
    }
    .validate()
    .context("invalid model")
}

/// The notebook's initialization: Glorot-uniform weights drawn layer by layer from NumPy's
/// generator seeded with `seed`, zero biases.
fn notebook_init<F: Float>(config: &ValidModelConfig, seed: u32) -> Result<Mlp<F>> {
    let mut rs = RandomState::new(seed);
    Mlp::new(config.clone(), WeightSource::NumpyReplay(&mut rs)).context("initializing")
}

fn epoch_bench<F: Compute>(
    args: &BenchEpochArgs,
    setup: &Setup,
    err: &common::Stderr,
) -> Result<()> {
    let opts = &args.opts;
    let m = &setup.loaded.mnist;
    let train_x = F::images(&m.train.images);
    let train_y: Array2<F> = one_hot(&m.train.labels, glorot_mnist::NUM_CLASSES);
    let val_x = F::images(&m.validation.images);
    let data = FitData {
        train: TrainData::new(train_x.view(), train_y.view())?,
        validation: EvalData::new(val_x.view(), &m.validation.labels)?,
        test: None,
    };
    let config = model_config(&setup.layers, args.activation)?;
    let init: Mlp<F> = notebook_init(&config, opts.seed)?;
    let train = TrainConfig {
        epochs: 1,
        batch_size: opts.batch,
        learning_rate: args.lr,
        seed: u64::from(opts.seed),
        shuffle: args.shuffle,
        precision: opts.precision,
        arithmetic: args.arithmetic,
    }
    .validate()
    .context("invalid training configuration")?;
    let gflop = epoch_flop(&setup.layers, data.train.len(), data.validation.len()) / 1e9;
    let openblas = common::blas_description();

    // One epoch of one worker: a fresh trainer from the initial parameters.
    let one_epoch = |barrier: &Barrier| -> Result<EpochMetrics> {
        let mut trainer = Trainer::new(init.clone(), train.clone())?;
        barrier.wait();
        let report = trainer.fit(&data, &mut NoopObserver)?;
        report.epochs.first().copied().with_context(|| {
            format!(
                "the epoch did not finish: {:?} (the benchmark needs a finite loss)",
                report.status
            )
        })
    };
    let round = || -> Result<(Vec<EpochMetrics>, f64, Option<f64>)> {
        let barrier = Barrier::new(args.workers);
        let cpu0 = process_cpu_seconds();
        let start = Instant::now();
        let results: Vec<Result<EpochMetrics>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..args.workers)
                .map(|_| scope.spawn(|| one_epoch(&barrier)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let wall = start.elapsed().as_secs_f64();
        let cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        Ok((results.into_iter().collect::<Result<_>>()?, wall, cpu))
    };

    for w in 0..opts.warmup {
        let (metrics, wall, _) = round()?;
        err.line(format!(
            "bench: warm-up {}/{}: {:.3} s (loss {:?})",
            w + 1,
            opts.warmup,
            wall,
            metrics[0].train_loss
        ));
    }
    for repeat in 1..=opts.repeats {
        let (metrics, round_seconds, cpu_seconds) = round()?;
        let peak_rss_kib = peak_rss_kib();
        for (worker, e) in metrics.iter().enumerate() {
            let record = EpochRecord {
                imp: "glorot",
                variant: "epoch",
                dtype: F::NAME,
                batch: opts.batch,
                threads: setup.threads,
                workers: args.workers,
                worker,
                repeat,
                layers: setup.layers.clone(),
                activation: args.activation,
                lr: args.lr,
                shuffle: args.shuffle,
                arithmetic: args.arithmetic,
                seconds: e.seconds,
                train_seconds: e.train_seconds,
                val_seconds: e.seconds - e.train_seconds,
                round_seconds,
                cpu_seconds,
                loss: e.train_loss,
                val_loss: e.val_loss,
                val_accuracy: e.val_accuracy,
                train_samples: data.train.len(),
                val_samples: data.validation.len(),
                gflop,
                gflops: gflop / e.seconds,
                peak_rss_kib,
                openblas: openblas.clone(),
                revision: common::GIT_REVISION,
            };
            if opts.json {
                out(serde_json::to_string(&record)?)?;
            } else {
                out(format!(
                    "glorot {} {} b{} {}{}: epoch {:.3} s (train {:.3} s, validation {:.3} s), \
                     {:.1} GFLOP/s, loss {:?}, validation accuracy {}",
                    F::NAME,
                    join(&setup.layers),
                    opts.batch,
                    args.activation,
                    if args.workers > 1 {
                        format!(" worker {worker}/{}", args.workers)
                    } else {
                        String::new()
                    },
                    e.seconds,
                    e.train_seconds,
                    e.seconds - e.train_seconds,
                    gflop / e.seconds,
                    e.train_loss,
                    e.val_accuracy,
                ))?;
            }
        }
    }
    Ok(())
}

/// Floating-point operations of one epoch: per training row the forward products, the
/// weight-gradient products and the input-gradient products of every layer but the first;
/// per validation row the forward products. `2 m k n` per product.
fn epoch_flop(layers: &[usize], train: usize, val: usize) -> f64 {
    let pairs: Vec<f64> = layers.windows(2).map(|p| (p[0] * p[1]) as f64).collect();
    let forward: f64 = pairs.iter().sum();
    let backward_inputs: f64 = pairs.iter().skip(1).sum();
    2.0 * (train as f64 * (2.0 * forward + backward_inputs) + val as f64 * forward)
}

/// The buffers of the product sequence, shaped as the trainer's.
struct GemmBuffers<F: Float> {
    /// `acts[l]: (batch, layers[l + 1])`.
    acts: Vec<Array2<F>>,
    /// `deltas[l]: (batch, layers[l + 1])`.
    deltas: Vec<Array2<F>>,
    /// `grads[l]: (layers[l], layers[l + 1])`.
    grads: Vec<Array2<F>>,
    /// `val_acts[l]: (validation chunk, layers[l + 1])`.
    val_acts: Vec<Array2<F>>,
}

/// A deterministic fill in `(-scale, scale)` (no zeros or denormals, which would change
/// the speed of nothing in BLAS but keep the buffers realistic).
fn fill<F: Float>(a: &mut Array2<F>, scale: f64, salt: usize) {
    for (i, v) in a.iter_mut().enumerate() {
        let t = ((i * 7919 + salt * 104_729) % 2003) as f64 / 2003.0;
        *v = F::from_f64(scale * (2.0 * t - 1.0 + 0.5 / 2003.0));
    }
}

fn gemm_bench<F: Compute>(opts: &BenchOpts, setup: &Setup) -> Result<()> {
    let m = &setup.loaded.mnist;
    let x = F::images(&m.train.images);
    let val_x = F::images(&m.validation.images);
    let layers = &setup.layers;
    let config = model_config(layers, Activation::Tanh)?;
    let model: Mlp<F> = notebook_init(&config, opts.seed)?;
    let weights: Vec<ArrayView2<'_, F>> = (0..model.depth()).map(|l| model.weights(l)).collect();
    let n = x.nrows();
    let batch = opts.batch.min(n);
    let val_rows = val_x.nrows().min(glorot_mlp::EVAL_CHUNK);
    let depth = layers.len() - 1;
    let mut bufs = GemmBuffers::<F> {
        acts: (0..depth)
            .map(|l| Array2::zeros((batch, layers[l + 1])))
            .collect(),
        deltas: (0..depth)
            .map(|l| Array2::zeros((batch, layers[l + 1])))
            .collect(),
        grads: (0..depth)
            .map(|l| Array2::zeros((layers[l], layers[l + 1])))
            .collect(),
        val_acts: (0..depth)
            .map(|l| Array2::zeros((val_rows, layers[l + 1])))
            .collect(),
    };
    for l in 0..depth {
        fill(&mut bufs.acts[l], 0.9, l);
        fill(&mut bufs.deltas[l], 0.05, l + depth);
    }
    let names = product_names(depth);
    let shapes = product_shapes(layers, (n, batch), (val_x.nrows(), val_rows));
    let gflop = epoch_flop(layers, n, val_x.nrows()) / 1e9;
    let openblas = common::blas_description();

    let mut run = |times: &mut [Duration]| -> (f64, f64) {
        let start = Instant::now();
        for b in 0..n.div_ceil(batch) {
            let (lo, hi) = (b * batch, ((b + 1) * batch).min(n));
            let rows = hi - lo;
            let xb = x.slice(s![lo..hi, ..]);
            // Forward: h_{l+1} = h_l @ W_l.
            forward_products(xb, &weights, &mut bufs.acts, &mut times[..depth]);
            let mut k = depth;
            // Backward, from the top: gW_l = h_l^T @ d_l, then d_{l-1} = d_l @ W_l^T.
            for l in (0..depth).rev() {
                let t = Instant::now();
                let input = if l == 0 {
                    xb
                } else {
                    bufs.acts[l - 1].slice(s![..rows, ..])
                };
                gemm(
                    F::one(),
                    input.t(),
                    bufs.deltas[l].slice(s![..rows, ..]),
                    F::zero(),
                    bufs.grads[l].view_mut(),
                );
                times[k] += t.elapsed();
                k += 1;
                if l > 0 {
                    let t = Instant::now();
                    let (below, here) = bufs.deltas.split_at_mut(l);
                    gemm(
                        F::one(),
                        here[0].slice(s![..rows, ..]),
                        weights[l].t(),
                        F::zero(),
                        below[l - 1].slice_mut(s![..rows, ..]),
                    );
                    times[k] += t.elapsed();
                    k += 1;
                }
            }
        }
        let train = start.elapsed().as_secs_f64();
        let vstart = Instant::now();
        let vn = val_x.nrows();
        for lo in (0..vn).step_by(val_rows) {
            let hi = (lo + val_rows).min(vn);
            forward_products(
                val_x.slice(s![lo..hi, ..]),
                &weights,
                &mut bufs.val_acts,
                &mut times[3 * depth - 1..4 * depth - 1],
            );
        }
        (train, vstart.elapsed().as_secs_f64())
    };

    let nprod = names.len();
    for _ in 0..opts.warmup {
        run(&mut vec![Duration::ZERO; nprod]);
    }
    for repeat in 1..=opts.repeats {
        let mut times = vec![Duration::ZERO; nprod];
        let cpu0 = process_cpu_seconds();
        let (train_seconds, val_seconds) = run(&mut times);
        let cpu_seconds = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        let seconds = train_seconds + val_seconds;
        let products: Vec<ProductTime> = names
            .iter()
            .zip(&shapes)
            .zip(&times)
            .map(|((name, (shape, calls, flop)), t)| {
                let secs = t.as_secs_f64();
                ProductTime {
                    name: name.clone(),
                    shape: shape.clone(),
                    calls: *calls,
                    seconds: secs,
                    gflop: flop / 1e9,
                    gflops: flop / 1e9 / secs,
                }
            })
            .collect();
        let record = GemmRecord {
            imp: "gemm",
            variant: "bound",
            dtype: F::NAME,
            batch: opts.batch,
            threads: setup.threads,
            repeat,
            layers: layers.clone(),
            seconds,
            train_seconds,
            val_seconds,
            cpu_seconds,
            train_samples: n,
            val_samples: val_x.nrows(),
            gflop,
            gflops: gflop / seconds,
            products,
            peak_rss_kib: peak_rss_kib(),
            openblas: openblas.clone(),
            revision: common::GIT_REVISION,
        };
        if opts.json {
            out(serde_json::to_string(&record)?)?;
        } else {
            out(format!(
                "gemm {} {} b{}: {:.3} s (train {:.3} s, validation {:.3} s), {:.1} GFLOP/s",
                F::NAME,
                join(layers),
                opts.batch,
                seconds,
                train_seconds,
                val_seconds,
                gflop / seconds
            ))?;
            for p in &record.products {
                out(format!(
                    "  {:<10} {:>14} {:>6} calls {:>8.3} s {:>7.1} GFLOP/s",
                    p.name, p.shape, p.calls, p.seconds, p.gflops
                ))?;
            }
        }
    }
    Ok(())
}

/// Names of the products in the order [`gemm_bench`] times them: forward `h_l@W_l`,
/// then from the top `h_l^T@d_l` and `d_l@W_l^T`, then the validation forward products.
fn product_names(depth: usize) -> Vec<String> {
    let h = |l: usize| {
        if l == 0 {
            "x".to_owned()
        } else {
            format!("h{l}")
        }
    };
    let mut names: Vec<String> = (0..depth).map(|l| format!("{}@W{l}", h(l))).collect();
    for l in (0..depth).rev() {
        names.push(format!("{}^T@d{l}", h(l)));
        if l > 0 {
            names.push(format!("d{l}@W{l}^T"));
        }
    }
    names.extend((0..depth).map(|l| format!("val {}@W{l}", h(l))));
    names
}

/// `(m x k x n of a full batch, calls, FLOP per epoch)` for each product of
/// [`product_names`], for `train` training rows in batches of `batch` and `val` validation
/// rows in chunks of `val_rows`.
fn product_shapes(
    layers: &[usize],
    (train, batch): (usize, usize),
    (val, val_rows): (usize, usize),
) -> Vec<(String, usize, f64)> {
    let depth = layers.len() - 1;
    let calls = train.div_ceil(batch);
    let flop = |rows: usize, l: usize| 2.0 * (rows * layers[l] * layers[l + 1]) as f64;
    let mut out: Vec<(String, usize, f64)> = (0..depth)
        .map(|l| {
            let shape = format!("{batch}x{}x{}", layers[l], layers[l + 1]);
            (shape, calls, flop(train, l))
        })
        .collect();
    for l in (0..depth).rev() {
        let shape = format!("{}x{batch}x{}", layers[l], layers[l + 1]);
        out.push((shape, calls, flop(train, l)));
        if l > 0 {
            let shape = format!("{batch}x{}x{}", layers[l + 1], layers[l]);
            out.push((shape, calls, flop(train, l)));
        }
    }
    out.extend((0..depth).map(|l| {
        let shape = format!("{val_rows}x{}x{}", layers[l], layers[l + 1]);
        (shape, val.div_ceil(val_rows), flop(val, l))
    }));
    out
}

/// CPU seconds (user + system, all threads) of this process so far, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks of 1/100 s, Linux's `USER_HZ` on
/// every mainstream architecture). `None` where there is no `/proc`.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The forward pass's products alone, `acts[l] = input_l @ weights[l]` on the leading
/// `x.nrows()` rows of each buffer, each product's wall time added to `times[l]`.
fn forward_products<F: Float>(
    x: ArrayView2<'_, F>,
    weights: &[ArrayView2<'_, F>],
    acts: &mut [Array2<F>],
    times: &mut [Duration],
) {
    let rows = x.nrows();
    for l in 0..weights.len() {
        let t = Instant::now();
        let (done, rest) = acts.split_at_mut(l);
        let input = if l == 0 {
            x
        } else {
            done[l - 1].slice(s![..rows, ..])
        };
        gemm(
            F::one(),
            input,
            weights[l],
            F::zero(),
            rest[0].slice_mut(s![..rows, ..]),
        );
        times[l] += t.elapsed();
    }
}

/// Peak resident set size of this process so far (`VmHWM` in `/proc/self/status`), KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("-")
}
