//! The timing harness of `cargo xtask bench` (issue 8; protocol in `bench/README.md`,
//! numbers in `docs/performance.md`): what `glorot bench-epoch` and `glorot bench-gemm`
//! time, and the records they report.
//!
//! * [`time_epochs`] times whole epochs of the notebook's workload through the real
//!   trainer ([`glorot_mlp::Trainer::fit`]): 784-500-500-10, tanh, sigmoid outputs with
//!   the notebook's loss, lr 0.01, batch 32, the notebook's Glorot draws
//!   (`np.random.seed(5)`), the first 50,000 training images in file order, then one
//!   forward pass over the 10,000 validation images. Every measured epoch starts from the
//!   same fresh initialization, so every repeat does identical work and reports epoch 1's
//!   loss (in `f64`: the notebook's `1.1164179979846724` and `90.75`).
//! * [`time_gemm`] times the matrix products that epoch performs and nothing else: per
//!   minibatch `x@W0, h1@W1, h2@W2, h2^T@d2, d2@W2^T, h1^T@d1, d1@W1^T, x^T@d0`, then the
//!   three forward products over the validation rows, through the same
//!   [`glorot_tensor::gemm`] and BLAS, into buffers of the same shapes: the GEMM-only
//!   bound the epoch is compared with.
//!
//! Warm-up epochs (on throwaway parameters) run first and are not reported: the first
//! calls pay for the BLAS library's buffer setup and thread start, and page faults of the
//! workspaces. Results go to a callback, one [`BenchEvent`] at a time.

use std::{
    sync::Barrier,
    time::{Duration, Instant},
};

use glorot_mlp::{
    Activation, Arithmetic, EpochMetrics, EvalData, FitData, Float, Head, Init, Mlp, ModelConfig,
    NoopObserver, Precision, Shuffle, TrainConfig, TrainData, Trainer, ValidModelConfig,
    WeightSource,
};
use glorot_tensor::{gemm, numpy_rng::RandomState, one_hot};
use ndarray::{Array2, ArrayView2, s};
use serde::Serialize;

use crate::data::{Compute, Loaded};
use crate::error::{Context as _, Result};

/// What both benchmarks start from: the data, the layer widths, and what the records
/// name (BLAS threads, BLAS description, source revision).
#[derive(Debug)]
pub struct BenchSetup {
    /// The data (limited as asked).
    pub loaded: Loaded,
    /// Layer widths, inputs to outputs.
    pub layers: Vec<usize>,
    /// BLAS threads in use.
    pub threads: usize,
    /// The BLAS library, as the records report it.
    pub openblas: String,
    /// The source revision of the binary.
    pub revision: String,
}

/// Settings both benchmarks share.
#[derive(Clone, Copy, Debug)]
pub struct BenchSettings {
    /// Minibatch size (the last batch of the epoch keeps the remainder).
    pub batch: usize,
    /// Measured epochs, each from the same fresh initialization.
    pub repeats: usize,
    /// Untimed warm-up epochs before the measured ones.
    pub warmup: usize,
    /// Seed of NumPy's generator for the Glorot draws (the notebook's 5).
    pub seed: u32,
}

/// What [`time_epochs`] trains.
#[derive(Clone, Copy, Debug)]
pub struct EpochSettings {
    /// Batch, repeats, warm-up, seed.
    pub common: BenchSettings,
    /// Precision of the records (the element type `F` computes in).
    pub precision: Precision,
    /// Hidden activation.
    pub activation: Activation,
    /// SGD learning rate.
    pub lr: f64,
    /// Data order.
    pub shuffle: Shuffle,
    /// How the products are computed.
    pub arithmetic: Arithmetic,
    /// Independent trainings at once on threads sharing the one dataset.
    pub workers: usize,
}

/// What a benchmark reports, as it happens.
#[derive(Debug)]
pub enum BenchEvent<'a> {
    /// An untimed warm-up round finished.
    Warmup {
        /// 1-based round.
        round: usize,
        /// Warm-up rounds in all.
        rounds: usize,
        /// Wall seconds of the round.
        seconds: f64,
        /// Training loss of the first worker's epoch (`None` for the GEMM bound).
        loss: Option<f64>,
    },
    /// A measured epoch of one worker.
    Epoch(&'a EpochRecord),
    /// A measured epoch of products.
    Gemm(&'a GemmRecord),
}

/// One measured epoch of `bench-epoch` (one JSON line of `--json`).
#[derive(Debug, Serialize)]
pub struct EpochRecord {
    /// `glorot`.
    #[serde(rename = "impl")]
    pub imp: &'static str,
    /// `epoch` (a whole training epoch) or `bound` (its products alone).
    pub variant: &'static str,
    /// Element type: `f32` or `f64`.
    pub dtype: &'static str,
    /// Minibatch size.
    pub batch: usize,
    /// BLAS threads.
    pub threads: usize,
    /// Trainings run at once.
    pub workers: usize,
    /// This training's index among them.
    pub worker: usize,
    /// 1-based measured repeat.
    pub repeat: usize,
    /// Layer widths, inputs to outputs.
    pub layers: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Learning rate.
    pub lr: f64,
    /// Data order.
    pub shuffle: Shuffle,
    /// How the products were computed.
    pub arithmetic: Arithmetic,
    /// The instruction set of glorot's kernels (`avx512`, `avx2`, `neon`, `scalar`;
    /// `GLOROT_ISA` forces one).
    pub isa: &'static str,
    /// What the thread team did during the round (all workers).
    pub team: TeamRecord,
    /// Wall seconds of the epoch: training plus validation.
    pub seconds: f64,
    /// Wall seconds of the training pass.
    pub train_seconds: f64,
    /// Wall seconds of the validation pass.
    pub val_seconds: f64,
    /// Wall seconds from the start of the round until every worker finished.
    pub round_seconds: f64,
    /// CPU seconds of the whole process during the round (all threads, all workers).
    pub cpu_seconds: Option<f64>,
    /// Training loss of the epoch.
    pub loss: f64,
    /// Validation loss after the epoch.
    pub val_loss: f64,
    /// Validation accuracy after the epoch, percent.
    pub val_accuracy: f64,
    /// Training rows.
    pub train_samples: usize,
    /// Validation rows.
    pub val_samples: usize,
    /// Floating-point operations of the epoch, 10^9.
    pub gflop: f64,
    /// `gflop / seconds`.
    pub gflops: f64,
    /// Peak resident set size of the process so far, KiB (Linux).
    pub peak_rss_kib: Option<u64>,
    /// The BLAS library.
    pub openblas: String,
    /// Source revision of the binary.
    pub revision: String,
}

/// What the thread team of the fused kernels did during one measured round
/// ([`glorot_tensor::fused::team_stats`] before and after).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TeamRecord {
    /// Parallel regions (kernel calls split among threads).
    pub regions: u64,
    /// Regions run by the calling thread alone after stalls.
    pub solo_regions: u64,
    /// Regions in which the caller waited for a helper another process had preempted.
    pub stalls: u64,
    /// Seconds the callers spent waiting in those stalls.
    pub stall_seconds: f64,
}

impl TeamRecord {
    fn between(a: glorot_tensor::fused::TeamStats, b: glorot_tensor::fused::TeamStats) -> Self {
        TeamRecord {
            regions: b.regions - a.regions,
            solo_regions: b.solo_regions - a.solo_regions,
            stalls: b.stalls - a.stalls,
            stall_seconds: (b.stall_nanos - a.stall_nanos) as f64 * 1e-9,
        }
    }
}

/// One measured epoch of `bench-gemm` (one JSON line of `--json`).
#[derive(Debug, Serialize)]
pub struct GemmRecord {
    /// `gemm`.
    #[serde(rename = "impl")]
    pub imp: &'static str,
    /// `epoch` (a whole training epoch) or `bound` (its products alone).
    pub variant: &'static str,
    /// Element type: `f32` or `f64`.
    pub dtype: &'static str,
    /// Minibatch size.
    pub batch: usize,
    /// BLAS threads.
    pub threads: usize,
    /// 1-based measured repeat.
    pub repeat: usize,
    /// Layer widths, inputs to outputs.
    pub layers: Vec<usize>,
    /// Wall seconds of the epoch: training plus validation.
    pub seconds: f64,
    /// Wall seconds of the training pass.
    pub train_seconds: f64,
    /// Wall seconds of the validation pass.
    pub val_seconds: f64,
    /// CPU seconds of the whole process during the round (all threads).
    pub cpu_seconds: Option<f64>,
    /// Training rows.
    pub train_samples: usize,
    /// Validation rows.
    pub val_samples: usize,
    /// Floating-point operations of the epoch, 10^9.
    pub gflop: f64,
    /// `gflop / seconds`.
    pub gflops: f64,
    /// Per product: calls, seconds, GFLOP/s.
    pub products: Vec<ProductTime>,
    /// Peak resident set size of the process so far, KiB (Linux).
    pub peak_rss_kib: Option<u64>,
    /// The BLAS library.
    pub openblas: String,
    /// Source revision of the binary.
    pub revision: String,
}

/// Time spent in one kind of product over an epoch.
#[derive(Debug, Clone, Serialize)]
pub struct ProductTime {
    /// The product, e.g. `h1@W1`, `x^T@d0`, `val h2@W2`.
    pub name: String,
    /// `m x k x n` of a full batch (validation: of one chunk).
    pub shape: String,
    /// Calls per epoch.
    pub calls: usize,
    /// Wall seconds of the epoch: training plus validation.
    pub seconds: f64,
    /// Floating-point operations of the epoch, 10^9.
    pub gflop: f64,
    /// `gflop / seconds`.
    pub gflops: f64,
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

/// Times `settings.common.repeats` epochs (after the warm-up) of `settings.workers`
/// trainings at once in `F`, reporting each to `on`.
///
/// # Errors
/// When the model or the training configuration is invalid, or an epoch does not
/// finish (a non-finite loss).
pub fn time_epochs<F: Compute>(
    settings: &EpochSettings,
    setup: &BenchSetup,
    on: &mut dyn FnMut(BenchEvent<'_>),
) -> Result<()> {
    let opts = &settings.common;
    let args = settings;
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
        precision: settings.precision,
        arithmetic: args.arithmetic,
        ..TrainConfig::default()
    }
    .validate()
    .context("invalid training configuration")?;
    let gflop = epoch_flop(&setup.layers, data.train.len(), data.validation.len()) / 1e9;
    let openblas = setup.openblas.clone();

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
    let round = || -> Result<(Vec<EpochMetrics>, f64, Option<f64>, TeamRecord)> {
        let barrier = Barrier::new(args.workers);
        let team0 = glorot_tensor::fused::team_stats();
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
        let team = TeamRecord::between(team0, glorot_tensor::fused::team_stats());
        Ok((results.into_iter().collect::<Result<_>>()?, wall, cpu, team))
    };

    for w in 0..opts.warmup {
        let (metrics, wall, _, _) = round()?;
        on(BenchEvent::Warmup {
            round: w + 1,
            rounds: opts.warmup,
            seconds: wall,
            loss: Some(metrics[0].train_loss),
        });
    }
    for repeat in 1..=opts.repeats {
        let (metrics, round_seconds, cpu_seconds, team) = round()?;
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
                isa: glorot_tensor::isa::Isa::default_for_process().name(),
                team,
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
                revision: setup.revision.clone(),
            };
            on(BenchEvent::Epoch(&record));
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

/// Times `settings.repeats` epochs of products alone (after the warm-up) in `F`,
/// reporting each to `on`.
///
/// # Errors
/// When the model configuration is invalid.
pub fn time_gemm<F: Compute>(
    settings: &BenchSettings,
    setup: &BenchSetup,
    on: &mut dyn FnMut(BenchEvent<'_>),
) -> Result<()> {
    let opts = settings;
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
    let openblas = setup.openblas.clone();

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
    for w in 0..opts.warmup {
        let (train, val) = run(&mut vec![Duration::ZERO; nprod]);
        on(BenchEvent::Warmup {
            round: w + 1,
            rounds: opts.warmup,
            seconds: train + val,
            loss: None,
        });
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
            revision: setup.revision.clone(),
        };
        on(BenchEvent::Gemm(&record));
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

/// `784-500-500-10`.
pub fn join(v: &[usize]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("-")
}
