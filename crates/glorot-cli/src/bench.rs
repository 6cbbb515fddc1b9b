//! `glorot bench-epoch` and `glorot bench-gemm`: the timing children of `cargo xtask bench`
//! (issue 8; protocol in `bench/README.md`, numbers in `docs/performance.md`). The timing
//! itself is glorot-experiments' harness ([`glorot_experiments::bench`]); this module
//! parses, sets OpenBLAS's threads and prints.
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

use anyhow::Result;
use glorot_experiments::bench::{
    BenchEvent, BenchSettings, BenchSetup, EpochSettings, join, time_epochs, time_gemm,
};
use glorot_mlp::{Activation, Arithmetic, Precision, Shuffle};

use crate::common::{
    self, DataOpts, out, parse_activation, parse_arithmetic, parse_positive, parse_positive_f64,
    parse_precision, parse_shuffle, usage,
};

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
    /// Hidden activation: relu, sigmoid, tanh or softsign.
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

impl BenchOpts {
    fn setup(&self, err: &common::Stderr) -> Result<BenchSetup> {
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
        let openblas = common::blas_description();
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
            openblas,
        ));
        Ok(BenchSetup {
            loaded,
            layers,
            threads,
            openblas,
            revision: common::GIT_REVISION.to_owned(),
        })
    }

    fn settings(&self) -> BenchSettings {
        BenchSettings {
            batch: self.batch,
            repeats: self.repeats,
            warmup: self.warmup,
            seed: self.seed,
        }
    }
}

/// `glorot bench-epoch`.
pub(crate) fn run_epoch(args: BenchEpochArgs) -> Result<()> {
    let err = common::Stderr::new(false);
    let setup = args.opts.setup(&err)?;
    let settings = EpochSettings {
        common: args.opts.settings(),
        precision: args.opts.precision,
        activation: args.activation,
        lr: args.lr,
        shuffle: args.shuffle,
        arithmetic: args.arithmetic,
        workers: args.workers,
    };
    // Each worker trains its own copy of the model: refuse what cannot fit first.
    let model = glorot_mlp::ModelConfig {
        layers: setup.layers.clone(),
        activation: args.activation,
        head: glorot_mlp::Head::SigmoidBce,
        init: glorot_mlp::Init::GlorotUniform,
    };
    let train = glorot_mlp::TrainConfig {
        epochs: 1,
        batch_size: args.opts.batch,
        learning_rate: args.lr,
        seed: 0,
        shuffle: args.shuffle,
        precision: args.opts.precision,
        arithmetic: args.arithmetic,
        ..glorot_mlp::TrainConfig::default()
    };
    if let (Ok(model), Ok(train)) = (model.validate(), train.validate()) {
        let m = &setup.loaded.mnist;
        let need =
            glorot_mlp::memory::training_bytes(&model, &train, m.train.len(), m.validation.len())
                .map(|one| one.saturating_mul(args.workers.max(1) as u64));
        common::check_memory("this benchmark", need)?;
    }
    let mut printer = Printer::new(&err, args.opts.json);
    match args.opts.precision {
        Precision::F32 => time_epochs::<f32>(&settings, &setup, &mut |e| printer.print(e)),
        Precision::F64 => time_epochs::<f64>(&settings, &setup, &mut |e| printer.print(e)),
    }?;
    printer.done()
}

/// `glorot bench-gemm`.
pub(crate) fn run_gemm(args: BenchGemmArgs) -> Result<()> {
    let err = common::Stderr::new(false);
    let setup = args.opts.setup(&err)?;
    let settings = args.opts.settings();
    let mut printer = Printer::new(&err, args.opts.json);
    match args.opts.precision {
        Precision::F32 => time_gemm::<f32>(&settings, &setup, &mut |e| printer.print(e)),
        Precision::F64 => time_gemm::<f64>(&settings, &setup, &mut |e| printer.print(e)),
    }?;
    printer.done()
}

/// Prints the harness's events: one JSON object per measured epoch on stdout with
/// `--json` (and nothing else there), else one readable line; warm-ups on stderr.
struct Printer<'a> {
    err: &'a common::Stderr,
    json: bool,
    /// The first failure to write stdout (the rest of the run is not printed).
    failed: Option<anyhow::Error>,
}

impl<'a> Printer<'a> {
    fn new(err: &'a common::Stderr, json: bool) -> Self {
        Printer {
            err,
            json,
            failed: None,
        }
    }

    fn print(&mut self, event: BenchEvent<'_>) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.try_print(event) {
            self.failed = Some(e);
        }
    }

    fn done(self) -> Result<()> {
        self.failed.map_or(Ok(()), Err)
    }

    fn try_print(&self, event: BenchEvent<'_>) -> Result<()> {
        match event {
            BenchEvent::Warmup {
                round,
                rounds,
                seconds,
                loss: Some(loss),
            } => self.err.line(format!(
                "bench: warm-up {round}/{rounds}: {seconds:.3} s (loss {loss:?})"
            )),
            BenchEvent::Warmup { loss: None, .. } => {}
            BenchEvent::Epoch(r) if self.json => out(serde_json::to_string(r)?)?,
            BenchEvent::Epoch(r) => out(format!(
                "glorot {} {} b{} {}{}: epoch {:.3} s (train {:.3} s, validation {:.3} s), \
                 {:.1} GFLOP/s, loss {:?}, validation accuracy {}",
                r.dtype,
                join(&r.layers),
                r.batch,
                r.activation,
                if r.workers > 1 {
                    format!(" worker {}/{}", r.worker, r.workers)
                } else {
                    String::new()
                },
                r.seconds,
                r.train_seconds,
                r.val_seconds,
                r.gflops,
                r.loss,
                r.val_accuracy,
            ))?,
            BenchEvent::Gemm(r) if self.json => out(serde_json::to_string(r)?)?,
            BenchEvent::Gemm(r) => {
                out(format!(
                    "gemm {} {} b{}: {:.3} s (train {:.3} s, validation {:.3} s), {:.1} GFLOP/s",
                    r.dtype,
                    join(&r.layers),
                    r.batch,
                    r.seconds,
                    r.train_seconds,
                    r.val_seconds,
                    r.gflops
                ))?;
                for p in &r.products {
                    out(format!(
                        "  {:<10} {:>14} {:>6} calls {:>8.3} s {:>7.1} GFLOP/s",
                        p.name, p.shape, p.calls, p.seconds, p.gflops
                    ))?;
                }
            }
        }
        Ok(())
    }
}
