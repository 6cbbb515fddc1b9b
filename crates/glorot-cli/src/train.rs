//! `glorot train`, `glorot eval` and `glorot gradcheck`.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use glorot_experiments::count;
use glorot_experiments::train::{
    FitJob, Interruption, TRAIN_SCHEMA_VERSION, TrainOutput, confusion_csv, evaluate_bytes,
    evaluate_confusion, fit, fit_bytes,
};
use glorot_mlp::{
    Activation, Arithmetic, BatchEvent, ConfusionMatrix, EarlyStopping, EpochMetrics, Evaluation,
    GradCheckOptions, GradCheckReport, Head, Init, LrSchedule, Mlp, ModelConfig, Monitor,
    NotebookGradCheck, Observer, Optimizer, ParamId, Precision, Shuffle, Status, Stencil,
    StopReason, TrainConfig, WeightSource,
};
use glorot_search::Manifest;
use glorot_tensor::one_hot;
use ndarray::Array2;
use serde::Serialize;

use crate::common::{
    self, DataInfo, DataOpts, INIT_HELP, Stderr, ThreadPlan, bar, human_duration, init_name, out,
    parse_activation, parse_arithmetic, parse_head, parse_init, parse_positive, parse_positive_f64,
    parse_precision, parse_shuffle, print_json, usage, write_json_file,
};

const TRAIN_EXAMPLES: &str = "\
Examples:
  # The notebook's Part 1 network (784-500-500-10, tanh, lr 0.01, batch 32, 10 epochs)
  glorot train --out results/train/curves.json --save-weights results/train/model.safetensors

  # The notebook's best configuration from its grid search, then the test set once
  glorot train --hidden 550,550 --activation relu --lr 0.1 --test --json > run.json

  # A quick look on a subset, in double precision, without shuffling (the notebook's order)
  glorot train --train-limit 5000 --val-limit 1000 --epochs 2 --precision f64 --shuffle never

  # Two more epochs from saved weights (the architecture comes from the file)
  glorot train --from-weights model.safetensors --epochs 2 --save-weights model2.safetensors

  # Adam (PyTorch's defaults: betas 0.9, 0.999, eps 1e-8) at lr 0.001, softmax head
  glorot train --hidden 550,550 --activation relu --head softmax --optimizer adam --lr 0.001

  # Nesterov momentum with weight decay, cosine annealing after a 2-epoch warm-up
  glorot train --optimizer nesterov --momentum 0.9 --weight-decay 5e-4 --lr 0.05 --lr-schedule cosine --warmup 2

  # Halve the learning rate every 5 epochs; or when validation loss stalls for 2 epochs
  glorot train --epochs 20 --lr 0.1 --lr-schedule step:5:0.5
  glorot train --epochs 20 --optimizer adamw --lr 0.001 --lr-schedule plateau:2:0.5

  # Up to 30 epochs, stopping when validation accuracy has not improved for 5; the best
  # epoch's weights are kept, tested and saved
  glorot train --epochs 30 --early-stopping 5 --test --save-weights best.safetensors";

/// `--optimizer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerArg {
    /// Plain SGD, the notebook's (the fused step when without weight decay).
    Sgd,
    /// SGD with momentum (torch.optim.SGD, momentum M).
    Momentum,
    /// SGD with Nesterov momentum (torch.optim.SGD, nesterov=True).
    Nesterov,
    /// Adam (torch.optim.Adam; weight decay added to the gradient).
    Adam,
    /// AdamW (torch.optim.AdamW; decoupled weight decay, default 0.01).
    Adamw,
}

/// Options of `glorot train`.
#[derive(Args, Debug)]
#[command(after_help = TRAIN_EXAMPLES)]
pub(crate) struct TrainArgs {
    /// Hidden layer widths, comma-separated [default: 500,500].
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', num_args = 1.., value_parser = parse_positive)]
    hidden: Option<Vec<usize>>,
    /// Hidden activation: relu, sigmoid, tanh or softsign [default: tanh].
    #[arg(long, value_name = "NAME", value_parser = parse_activation)]
    activation: Option<Activation>,
    /// Output layer and loss: sigmoid_bce (the notebook's) or softmax_cross_entropy [default: sigmoid_bce].
    #[arg(long, value_name = "NAME", value_parser = parse_head)]
    head: Option<Head>,
    /// Weight initializer [default: glorot_uniform].
    #[arg(long, value_name = "NAME", value_parser = parse_init, long_help = format!("Weight initializer: {INIT_HELP} [default: glorot_uniform]"))]
    init: Option<Init>,
    /// Learning rate (the base rate of --lr-schedule).
    #[arg(long, value_name = "LR", default_value_t = 0.01, value_parser = parse_positive_f64)]
    lr: f64,
    /// How parameters are updated, by PyTorch's rules: sgd (the notebook's), momentum,
    /// nesterov, adam or adamw.
    #[arg(long, value_enum, value_name = "NAME", default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
    /// Momentum of --optimizer momentum or nesterov, in [0, 1) [default: 0.9].
    #[arg(long, value_name = "M")]
    momentum: Option<f64>,
    /// First-moment decay of adam and adamw, in [0, 1) [default: 0.9].
    #[arg(long, value_name = "B1")]
    beta1: Option<f64>,
    /// Second-moment decay of adam and adamw, in [0, 1) [default: 0.999].
    #[arg(long, value_name = "B2")]
    beta2: Option<f64>,
    /// Added to sqrt(v_hat) by adam and adamw, > 0 [default: 1e-8].
    #[arg(long, value_name = "E")]
    eps: Option<f64>,
    /// Weight decay, >= 0: L2 added to the gradient (sgd, momentum, nesterov, adam) or
    /// decoupled (adamw) [default: 0; adamw 0.01].
    #[arg(long, value_name = "WD")]
    weight_decay: Option<f64>,
    /// Learning rate per epoch: constant, step:EVERY:GAMMA (times GAMMA every EVERY
    /// epochs), cosine or cosine:MIN_LR (cosine annealing to MIN_LR over the epochs after
    /// the warm-up), plateau:PATIENCE:FACTOR or plateau:PATIENCE:FACTOR:THRESHOLD (times
    /// FACTOR when the validation loss has not improved by a relative THRESHOLD, default
    /// 1e-4, for more than PATIENCE epochs).
    #[arg(long, value_name = "SPEC", default_value = "constant", value_parser = parse_lr_schedule)]
    lr_schedule: LrSchedule,
    /// Epochs of linear warm-up before the schedule: epoch e <= N trains at lr * e / (N + 1).
    #[arg(long, value_name = "N", default_value_t = 0)]
    warmup: usize,
    /// Stop when the validation metric (--early-stopping-on) has not improved for N epochs
    /// in a row, and end with the best epoch's weights (also at the normal end when the
    /// last epoch is not the best): those are tested, saved and reported as kept_epoch.
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    early_stopping: Option<usize>,
    /// The validation metric --early-stopping watches: accuracy (higher is better) or loss
    /// (lower is better).
    #[arg(long, value_name = "METRIC", requires = "early_stopping", default_value = "accuracy", value_parser = parse_monitor)]
    early_stopping_on: Monitor,
    /// Minibatch size (the last batch of an epoch keeps the remainder).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = parse_positive)]
    batch_size: usize,
    /// Passes over the training set.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_positive)]
    epochs: usize,
    /// Seed of the weight initialization and of the shuffling (independent streams).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data order: every-epoch (a fresh permutation per epoch) or never (the notebook's
    /// actual behaviour: it discards the result of its shuffle).
    #[arg(long, value_name = "MODE", default_value = "every-epoch", value_parser = parse_shuffle)]
    shuffle: Shuffle,
    /// How the products are computed: fast (the fastest kernels, a fixed summation order)
    /// or blas (every product through BLAS, as NumPy computes them).
    #[arg(long, value_name = "MODE", default_value = "fast", value_parser = parse_arithmetic)]
    arithmetic: Arithmetic,
    /// Arithmetic precision: f32 or f64 [default: f32, or the precision of --from-weights].
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Write the run (configs, per-epoch curves, final metrics, manifest) as JSON here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Save the trained weights here (safetensors, readable by NumPy and PyTorch).
    #[arg(long, value_name = "FILE")]
    save_weights: Option<PathBuf>,
    /// Start from saved weights instead of a fresh initialization. The architecture comes
    /// from the file; --hidden, --activation, --head and --init, when given, must match it.
    #[arg(long, value_name = "FILE")]
    from_weights: Option<PathBuf>,
    /// Evaluate the test split once after the last epoch.
    #[arg(long)]
    test: bool,
    /// Print the run as JSON on stdout (instead of a summary).
    #[arg(long)]
    json: bool,
    /// BLAS threads [default: every CPU].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    blas_threads: Option<usize>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    data: DataOpts,
}

/// `glorot train`.
pub(crate) fn run_train(args: TrainArgs) -> Result<()> {
    // Command-line mistakes first, before any data is read.
    let optimizer = optimizer_of(&args)?;
    check_schedule(&args)?;
    let err = Stderr::new(args.quiet);
    common::handle_interrupts();
    let plan = single_thread_plan(args.blas_threads)?;
    let loaded = args.data.load()?;
    let inputs = loaded.mnist.train.images.ncols();
    let outputs = glorot_mnist::NUM_CLASSES;

    // The architecture: from the flags, or from the weights file (the flags must agree).
    let (model, stored) = match &args.from_weights {
        None => {
            let mut layers = vec![inputs];
            layers.extend(args.hidden.clone().unwrap_or_else(|| vec![500, 500]));
            layers.push(outputs);
            let model = ModelConfig {
                layers,
                activation: args.activation.unwrap_or(Activation::Tanh),
                head: args.head.unwrap_or(Head::SigmoidBce),
                init: args.init.unwrap_or(Init::GlorotUniform),
            };
            (model, None)
        }
        Some(path) => {
            let info = glorot_mlp::read_weights_info(path)
                .context("cannot start from the saved weights")?;
            let mut model = info.config.clone();
            if let Some(hidden) = &args.hidden {
                let mut layers = vec![inputs];
                layers.extend(hidden);
                layers.push(outputs);
                model.layers = layers;
            }
            if let Some(a) = args.activation {
                model.activation = a;
            }
            if let Some(h) = args.head {
                model.head = h;
            }
            if let Some(i) = args.init {
                model.init = i;
            }
            (model, Some(info.precision))
        }
    };
    let precision = args.precision.or(stored).unwrap_or(Precision::F32);
    let valid_model = model.validate().context("invalid model")?;
    let train = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        shuffle: args.shuffle,
        precision,
        arithmetic: args.arithmetic,
        optimizer,
        lr_schedule: args.lr_schedule,
        warmup_epochs: args.warmup,
        early_stopping: args.early_stopping.map(|patience| EarlyStopping {
            patience,
            monitor: args.early_stopping_on,
        }),
    };
    let valid_train = train
        .validate()
        .map_err(|e| common::UsageError(format!("invalid training configuration: {e}")))?;
    common::check_memory(
        "this training",
        fit_bytes(&valid_model, &valid_train, &loaded, args.test),
    )?;

    err.line(format!(
        "training {} {} ({}, {}), {precision}, {}{}, batch {}, lr {}{}, {}, seed {}, shuffle {}; \
         {} training and {} validation images; {}",
        join(valid_model.layers(), "-"),
        model.activation,
        model.head,
        init_name(model.init),
        count(train.epochs, "epoch", "epochs"),
        train
            .early_stopping
            .map(|rule| format!(" (early stopping: {rule})"))
            .unwrap_or_default(),
        train.batch_size,
        train.learning_rate,
        schedule_text(&train),
        train.optimizer,
        train.seed,
        train.shuffle,
        loaded.mnist.train.len(),
        loaded.mnist.validation.len(),
        count(plan.blas_threads, "BLAS thread", "BLAS threads"),
    ));
    if let Some(path) = &args.from_weights {
        err.line(format!("starting from {}", path.display()));
    }

    let job = FitJob {
        model: &model,
        train: valid_train,
        from: args.from_weights.as_deref().zip(stored),
        loaded: &loaded,
        test: args.test,
        save: args.save_weights.as_deref(),
    };
    let scheduled = !(train.lr_schedule.is_default() && train.warmup_epochs == 0);
    let mut progress = TrainProgress::new(&err, job.train.epochs(), scheduled);
    let (report, end) = match precision {
        Precision::F32 => fit::<f32>(job, &mut progress)?,
        Precision::F64 => fit::<f64>(job, &mut progress)?,
    };
    err.clear();

    let output = TrainOutput {
        schema_version: TRAIN_SCHEMA_VERSION,
        model: model.clone(),
        train,
        parameters: valid_model.num_parameters(),
        from_weights: args.from_weights.clone(),
        weights: end.saved.then(|| args.save_weights.clone()).flatten(),
        interrupted: end.interrupted,
        data: loaded.info(),
        final_val_accuracy: report.final_val_accuracy(),
        best_val_accuracy: report.best_val_accuracy(),
        report,
        manifest: common::manifest(plan),
    };
    if let Some(path) = &args.out {
        write_json_file(path, &output)
            .with_context(|| format!("cannot write the run to {}", path.display()))?;
    }
    if args.json {
        print_json(&output)?;
    } else {
        print_train_summary(&output, args.out.as_deref())?;
    }
    match output.report.status {
        Status::Cancelled { epoch } => bail!(
            "interrupted {}{}; {} {}",
            end.interrupted
                .map_or_else(|| format!("during epoch {epoch}"), |at| at.to_string()),
            match &output.weights {
                Some(p) => format!(": weights saved to {} (marked interrupted)", p.display()),
                None => String::new(),
            },
            count(
                output.report.epochs.len(),
                "finished epoch",
                "finished epochs"
            ),
            match &args.out {
                Some(p) => format!("written to {}", p.display()),
                None => "reported above".to_owned(),
            }
        ),
        Status::Diverged { epoch, batch } => {
            err.warn(format!(
                "training diverged in epoch {epoch}{}: the loss became non-finite (try a \
                 smaller --lr); no weights were saved",
                batch.map(|b| format!(", batch {b}")).unwrap_or_default()
            ));
            Ok(())
        }
        Status::Completed => Ok(()),
    }
}

/// The optimizer the flags describe, checked: a flag of another optimizer or a value out
/// of range is a usage error naming the flag.
fn optimizer_of(args: &TrainArgs) -> Result<Optimizer> {
    use glorot_mlp::optim::{
        DEFAULT_ADAMW_WEIGHT_DECAY, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_MOMENTUM,
    };
    let kind = args.optimizer;
    let name = kind
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned());
    let momentum_kind = matches!(kind, OptimizerArg::Momentum | OptimizerArg::Nesterov);
    let adam_kind = matches!(kind, OptimizerArg::Adam | OptimizerArg::Adamw);
    for (flag, given, applies, to) in [
        (
            "--momentum",
            args.momentum.is_some(),
            momentum_kind,
            "momentum and nesterov",
        ),
        ("--beta1", args.beta1.is_some(), adam_kind, "adam and adamw"),
        ("--beta2", args.beta2.is_some(), adam_kind, "adam and adamw"),
        ("--eps", args.eps.is_some(), adam_kind, "adam and adamw"),
    ] {
        if given && !applies {
            return usage(format!(
                "{flag} applies to --optimizer {to}, not to --optimizer {name}"
            ));
        }
    }
    let momentum = args.momentum.unwrap_or(DEFAULT_MOMENTUM);
    let beta1 = args.beta1.unwrap_or(DEFAULT_BETA1);
    let beta2 = args.beta2.unwrap_or(DEFAULT_BETA2);
    let eps = args.eps.unwrap_or(DEFAULT_EPS);
    let weight_decay = args.weight_decay.unwrap_or(match kind {
        OptimizerArg::Adamw => DEFAULT_ADAMW_WEIGHT_DECAY,
        _ => 0.0,
    });
    let optimizer = match kind {
        OptimizerArg::Sgd => Optimizer::Sgd { weight_decay },
        OptimizerArg::Momentum => Optimizer::Momentum {
            momentum,
            weight_decay,
        },
        OptimizerArg::Nesterov => Optimizer::Nesterov {
            momentum,
            weight_decay,
        },
        OptimizerArg::Adam => Optimizer::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        },
        OptimizerArg::Adamw => Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
        },
    };
    match optimizer.validate() {
        Ok(()) => Ok(optimizer),
        Err(glorot_mlp::Error::InvalidConfig {
            field,
            value,
            reason,
        }) => {
            let flag = field.strip_prefix("optimizer.").unwrap_or(&field);
            usage(format!("--{} {value}: {reason}", flag.replace('_', "-")))
        }
        Err(e) => Err(e.into()),
    }
}

/// `--lr-schedule` against `--lr`, and `--warmup` against `--epochs`: usage errors.
fn check_schedule(args: &TrainArgs) -> Result<()> {
    if let Err(e) = args.lr_schedule.validate(args.lr) {
        return usage(format!("--lr-schedule {}: {e}", args.lr_schedule));
    }
    if args.warmup >= args.epochs {
        return usage(format!(
            "--warmup {} must be less than --epochs {}: the schedule needs an epoch after \
             the warm-up",
            args.warmup, args.epochs
        ));
    }
    Ok(())
}

/// `--early-stopping-on`: accuracy or loss.
fn parse_monitor(s: &str) -> Result<Monitor, String> {
    s.parse::<Monitor>().map_err(|e| e.to_string())
}

/// `--lr-schedule`: see [`LrSchedule`]'s text form.
fn parse_lr_schedule(s: &str) -> Result<LrSchedule, String> {
    s.parse::<LrSchedule>().map_err(|e| e.to_string())
}

/// ` (SCHEDULE, warm-up N epochs)` when either is not the default.
fn schedule_text(train: &TrainConfig) -> String {
    match (train.lr_schedule.is_default(), train.warmup_epochs) {
        (true, 0) => String::new(),
        (false, 0) => format!(" ({})", train.lr_schedule),
        (_, w) => format!(
            " ({}, warm-up {})",
            train.lr_schedule,
            count(w, "epoch", "epochs")
        ),
    }
}

/// One computation using `blas_threads` BLAS threads (default: every CPU).
pub(crate) fn single_thread_plan(blas_threads: Option<usize>) -> Result<ThreadPlan> {
    let requested = blas_threads.unwrap_or_else(common::cpus);
    Ok(ThreadPlan {
        workers: 1,
        blas_threads: common::set_blas_threads(requested),
    })
}

fn print_train_summary(o: &TrainOutput, out_path: Option<&Path>) -> Result<()> {
    let r = &o.report;
    match r.status {
        Status::Completed if r.stop_reason == Some(StopReason::EarlyStopped) => out(format!(
            "stopped early after {} in {}: no improvement in validation {} for {}",
            count(r.epochs.len(), "epoch", "epochs"),
            human_duration(Duration::from_secs_f64(r.seconds)),
            o.train
                .early_stopping
                .map_or("accuracy", |rule| rule.monitor.name()),
            count(
                o.train.early_stopping.map_or(0, |rule| rule.patience),
                "epoch",
                "epochs"
            ),
        ))?,
        Status::Completed => out(format!(
            "completed {} in {}",
            count(r.epochs.len(), "epoch", "epochs"),
            human_duration(Duration::from_secs_f64(r.seconds))
        ))?,
        Status::Diverged { epoch, .. } => out(format!("diverged in epoch {epoch}"))?,
        Status::Cancelled { epoch } => out(format!("interrupted during epoch {epoch}"))?,
    }
    if let Some(last) = r.epochs.last() {
        out(format!(
            "final: train loss {:.6}  validation loss {:.6}  validation accuracy {:.2}%",
            last.train_loss, last.val_loss, last.val_accuracy
        ))?;
    }
    if let Some(kept) = r.kept_epoch.and_then(|_| r.final_epoch()) {
        out(format!(
            "kept the weights of epoch {}: validation loss {:.6}  validation accuracy {:.2}%",
            kept.epoch, kept.val_loss, kept.val_accuracy
        ))?;
    }
    if let Some((best_epoch, best)) = r
        .epochs
        .iter()
        .map(|e| (e.epoch, e.val_accuracy))
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
    {
        out(format!(
            "best validation accuracy {best:.2}% at epoch {best_epoch}"
        ))?;
    }
    if let (Some(acc), Some(loss)) = (r.test_accuracy, r.test_loss) {
        out(format!("test: loss {loss:.6}  accuracy {acc:.2}%"))?;
    }
    if let Some(p) = out_path {
        out(format!("wrote {}", p.display()))?;
    }
    if let Some(p) = &o.weights {
        match &o.interrupted {
            Some(at) => out(format!(
                "saved the weights reached {at} to {} (marked interrupted)",
                p.display()
            ))?,
            None => out(format!("saved weights to {}", p.display()))?,
        }
    }
    Ok(())
}

/// Training progress on stderr: a bar over the batches of the current epoch on a
/// terminal, one line per epoch everywhere.
struct TrainProgress<'a> {
    err: &'a Stderr,
    epochs: usize,
    /// Whether the learning rate changes between epochs (then each epoch line shows it).
    scheduled: bool,
    epoch_started: Instant,
    last_draw: Option<Instant>,
}

impl<'a> TrainProgress<'a> {
    fn new(err: &'a Stderr, epochs: usize, scheduled: bool) -> Self {
        TrainProgress {
            err,
            epochs,
            scheduled,
            epoch_started: Instant::now(),
            last_draw: None,
        }
    }
}

impl Observer for TrainProgress<'_> {
    fn on_epoch_start(&mut self, _epoch: usize, _batches: usize) {
        self.epoch_started = Instant::now();
    }

    fn on_batch(&mut self, e: &BatchEvent) {
        if !self.err.is_live() {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
            && e.batch != e.batches
        {
            return;
        }
        self.last_draw = Some(now);
        let elapsed = self.epoch_started.elapsed();
        let eta = elapsed.mul_f64((e.batches - e.batch) as f64 / e.batch.max(1) as f64);
        let mut lines = vec![format!(
            "epoch {}/{} {} {}/{} batches  loss {:.4}  {} left in this epoch",
            e.epoch,
            self.epochs,
            bar(e.batch, e.batches, 30),
            e.batch,
            e.batches,
            e.loss,
            human_duration(eta)
        )];
        if common::stop_requested() {
            lines.push(common::STOPPING.to_owned());
        }
        self.err.draw(&lines);
    }

    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        self.err.line(format!(
            "epoch {:>3}/{}  train loss {:.6}  validation loss {:.6}  accuracy {:6.2}%  {}{}",
            m.epoch,
            self.epochs,
            m.train_loss,
            m.val_loss,
            m.val_accuracy,
            human_duration(Duration::from_secs_f64(m.seconds)),
            match m.lr {
                Some(lr) if self.scheduled => format!("  lr {lr:.6}"),
                _ => String::new(),
            }
        ));
    }

    fn should_stop(&self) -> bool {
        common::stop_requested()
    }
}

fn join<T: ToString>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

// ---------------------------------------------------------------------------------------
// glorot eval
// ---------------------------------------------------------------------------------------

const EVAL_EXAMPLES: &str = "\
Examples:
  glorot eval --weights results/train/model.safetensors
  glorot eval --weights model.safetensors --split test --json

  # The confusion matrix as CSV, and as a heatmap in confusion.png and confusion.svg
  glorot eval --weights model.safetensors --split test --confusion-csv confusion.csv --plot confusion

The confusion matrix counts[t][p] holds the images of true class t predicted as p (rows:
true classes, columns: predicted ones); a class's accuracy is its diagonal entry over its
row's sum, and the diagonal's sum over all images is the overall accuracy. The CSV has the
header true_class,pred_0,...,pred_9,samples,correct,accuracy (one row per true class,
accuracy in percent); the heatmap colours each cell by its share of the true class.";

/// A split of the dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SplitArg {
    /// The training images used for training (the first 60000 - validation size).
    Train,
    /// The held-out end of the training file.
    Validation,
    /// The t10k files.
    Test,
}

impl SplitArg {
    fn split(self) -> glorot_mnist::Split {
        match self {
            SplitArg::Train => glorot_mnist::Split::Train,
            SplitArg::Validation => glorot_mnist::Split::Validation,
            SplitArg::Test => glorot_mnist::Split::Test,
        }
    }
}

/// Options of `glorot eval`.
#[derive(Args, Debug)]
#[command(after_help = EVAL_EXAMPLES)]
pub(crate) struct EvalArgs {
    /// The weights file (safetensors, as written by `glorot train --save-weights`).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Which split to evaluate.
    #[arg(long, value_enum, default_value_t = SplitArg::Validation)]
    split: SplitArg,
    /// Compute in this precision [default: the precision of the weights].
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also write the confusion matrix here as CSV (one row per true class).
    #[arg(long, value_name = "FILE")]
    confusion_csv: Option<PathBuf>,
    /// Also draw the confusion matrix as a heatmap into FILE_STEM.png and FILE_STEM.svg.
    #[arg(long, value_name = "FILE_STEM")]
    plot: Option<PathBuf>,
    /// BLAS threads [default: every CPU].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    blas_threads: Option<usize>,
    #[command(flatten)]
    data: DataOpts,
}

/// What `glorot eval --json` prints.
#[derive(Debug, Serialize)]
struct EvalOutput {
    weights: PathBuf,
    model: ModelConfig,
    precision: Precision,
    split: &'static str,
    /// Where the training that wrote the weights was interrupted (absent for a finished
    /// one).
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted: Option<Interruption>,
    /// The weights file's further metadata (`interrupted`; `trial` and `seed` from
    /// `glorot search best --save-weights`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    metadata: std::collections::BTreeMap<String, String>,
    evaluation: Evaluation,
    /// `counts[true][predicted]` and the per-class accuracy, from the same pass as
    /// `evaluation`.
    confusion: ConfusionMatrix,
    data: DataInfo,
    manifest: Manifest,
}

/// `glorot eval`.
pub(crate) fn run_eval(args: EvalArgs) -> Result<()> {
    let plan = single_thread_plan(args.blas_threads)?;
    let info = glorot_mlp::read_weights_info(&args.weights).context("cannot read the weights")?;
    let interrupted = Interruption::of_weights(&info.metadata);
    if let Some(at) = interrupted {
        Stderr::new(false).warn(format!(
            "{} holds the weights of an interrupted training (stopped {at})",
            args.weights.display()
        ));
    }
    let loaded = args.data.load()?;
    let precision = args.precision.unwrap_or(info.precision);
    let split = loaded.mnist.split(args.split.split());
    // A file whose config the model refuses is reported by the loading below.
    if let Ok(model) = info.config.validate() {
        common::check_memory(
            "this evaluation",
            evaluate_bytes(&model, precision, split.len(), split.images.ncols()),
        )?;
    }
    let (evaluation, confusion) = match precision {
        Precision::F32 => evaluate_confusion::<f32>(&args.weights, &info, split)?,
        Precision::F64 => evaluate_confusion::<f64>(&args.weights, &info, split)?,
    };
    let output = EvalOutput {
        weights: args.weights.clone(),
        model: info.config.clone(),
        precision,
        split: args.split.split().name(),
        interrupted,
        metadata: info.metadata.clone(),
        evaluation,
        confusion,
        data: loaded.info(),
        manifest: common::manifest(plan),
    };
    let e = &output.evaluation;
    let summary = format!(
        "{} on {} ({}): accuracy {:.2}% ({} correct), loss {:.6}",
        args.weights.display(),
        output.split,
        count(e.samples, "image", "images"),
        e.accuracy,
        e.correct,
        e.loss
    );
    if let Some(path) = &args.confusion_csv {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        glorot_search::write_atomic(path, confusion_csv(&output.confusion).as_bytes())
            .with_context(|| format!("cannot write the confusion matrix to {}", path.display()))?;
    }
    if let Some(stem) = &args.plot {
        let name = args.weights.file_name().unwrap_or(args.weights.as_os_str());
        let title = format!(
            "Confusion matrix: {} on {} ({}), accuracy {:.2}%",
            name.to_string_lossy(),
            output.split,
            count(e.samples, "image", "images"),
            e.accuracy
        );
        glorot_experiments::confusion_heatmap(&output.confusion, &title, stem)
            .context("cannot draw the confusion matrix")?;
    }
    if args.json {
        print_json(&output)
    } else {
        out(summary)?;
        print_confusion(&output.confusion)
    }
}

/// The per-class accuracy and the confusion matrix as a table.
fn print_confusion(m: &ConfusionMatrix) -> Result<()> {
    let k = m.classes();
    let width = m.samples().max(1).to_string().len().max(3) + 1;
    out("confusion matrix (rows: true class, columns: predicted class):")?;
    let mut header = format!("{:>5} ", "true");
    for p in 0..k {
        header.push_str(&format!("{p:>width$}"));
    }
    header.push_str(&format!("  {:>8}  {:>9}", "images", "accuracy"));
    out(header)?;
    for c in m.per_class() {
        let mut line = format!("{:>5} ", c.class);
        for p in 0..k {
            line.push_str(&format!("{:>width$}", m.count(c.class, p)));
        }
        let accuracy = c
            .accuracy
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.2}%"));
        line.push_str(&format!("  {:>8}  {accuracy:>9}", c.samples));
        out(line)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// glorot gradcheck
// ---------------------------------------------------------------------------------------

const GRADCHECK_EXAMPLES: &str = "\
Examples:
  # Every parameter of small random networks, every activation and head (no data needed)
  glorot gradcheck

  # One configuration, second-order differences, JSON
  glorot gradcheck --layers 20,10,10,5 --activation relu --head softmax --stencil central2 --tolerance 1e-4 --json

  # The notebook's Part 3: w0 row 161, first 10 entries, training image 0, N = k * 10^i
  glorot gradcheck notebook --param w0 --row 161 --entries 10";

/// Options of `glorot gradcheck`.
#[derive(Args, Debug)]
#[command(after_help = GRADCHECK_EXAMPLES, args_conflicts_with_subcommands = true)]
pub(crate) struct GradcheckArgs {
    #[command(subcommand)]
    mode: Option<GradcheckMode>,
    #[command(flatten)]
    full: FullCheckArgs,
}

#[derive(Subcommand, Debug)]
enum GradcheckMode {
    /// Every entry of every parameter of small random f64 networks (the default).
    #[command(
        after_help = "Examples:\n  glorot gradcheck full\n  glorot gradcheck full --layers 784,32,10 --activation tanh --stencil central2 --tolerance 1e-4"
    )]
    Full(FullCheckArgs),
    /// The notebook's Part 3 procedure on one MNIST image.
    #[command(
        after_help = "Examples:\n  glorot gradcheck notebook\n  glorot gradcheck notebook --param w1 --row 0 --json"
    )]
    Notebook(NotebookCheckArgs),
}

/// Options of the full gradient check.
#[derive(Args, Debug, Clone)]
struct FullCheckArgs {
    /// Layer widths from inputs to outputs.
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', default_value = "10,6,5,4", value_parser = parse_positive)]
    layers: Vec<usize>,
    /// Hidden activation [default: each of relu, sigmoid, tanh].
    #[arg(long, value_name = "NAME", value_parser = parse_activation)]
    activation: Option<Activation>,
    /// Head [default: each of sigmoid_bce and softmax_cross_entropy].
    #[arg(long, value_name = "NAME", value_parser = parse_head)]
    head: Option<Head>,
    /// Weight initializer.
    #[arg(long, value_name = "NAME", default_value = "glorot_uniform", value_parser = parse_init)]
    init: Init,
    /// Rows of the random batch.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = parse_positive)]
    rows: usize,
    /// Seed of the weights and the random batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Finite-difference step h.
    #[arg(long, default_value_t = 1e-3, value_parser = parse_positive_f64)]
    step: f64,
    /// Finite-difference formula.
    #[arg(long, value_enum, default_value_t = StencilArg::Central4)]
    stencil: StencilArg,
    /// Largest relative error that passes.
    #[arg(long, default_value_t = 1e-6, value_parser = parse_positive_f64)]
    tolerance: f64,
    /// Gradients below this magnitude are compared absolutely (tolerance * floor).
    #[arg(long, default_value_t = 1e-6, value_parser = parse_positive_f64)]
    floor: f64,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StencilArg {
    /// (L(p+h) - L(p-h)) / 2h, error O(h^2): the notebook's formula.
    Central2,
    /// Fourth-order central difference, error O(h^4).
    Central4,
}

/// Options of the notebook's gradient check.
#[derive(Args, Debug)]
struct NotebookCheckArgs {
    /// The parameter: w0, w1, ..., b0, b1, ...
    #[arg(long, default_value = "w0")]
    param: String,
    /// Row of the parameter (for a bias, 0).
    #[arg(long, default_value_t = 161)]
    row: usize,
    /// Entries of the row checked, from its start.
    #[arg(long, default_value_t = 10, value_parser = parse_positive)]
    entries: usize,
    /// Index of the training image used (the notebook: 0).
    #[arg(long, default_value_t = 0)]
    sample: usize,
    /// Hidden layer widths.
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', default_value = "500,500", value_parser = parse_positive)]
    hidden: Vec<usize>,
    /// Hidden activation.
    #[arg(long, value_name = "NAME", default_value = "tanh", value_parser = parse_activation)]
    activation: Activation,
    /// Output layer and loss.
    #[arg(long, value_name = "NAME", default_value = "sigmoid_bce", value_parser = parse_head)]
    head: Head,
    /// Weight initializer.
    #[arg(long, value_name = "NAME", default_value = "glorot_uniform", value_parser = parse_init)]
    init: Init,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataOpts,
}

/// One configuration of the full check.
#[derive(Debug, Serialize)]
struct FullCheck {
    layers: Vec<usize>,
    activation: Activation,
    head: Head,
    init: Init,
    passed: bool,
    max_rel_error: f64,
    checked: usize,
    kinks: usize,
    report: GradCheckReport,
}

/// `glorot gradcheck`.
pub(crate) fn run_gradcheck(args: GradcheckArgs) -> Result<()> {
    match args.mode {
        None => full_check(&args.full),
        Some(GradcheckMode::Full(full)) => full_check(&full),
        Some(GradcheckMode::Notebook(nb)) => notebook_check(&nb),
    }
}

fn full_check(args: &FullCheckArgs) -> Result<()> {
    if args.layers.len() < 2 {
        return usage("--layers needs at least two widths (inputs and outputs)");
    }
    let activations = args
        .activation
        .map_or_else(|| Activation::ALL.to_vec(), |a| vec![a]);
    let heads = args.head.map_or_else(
        || vec![Head::SigmoidBce, Head::SoftmaxCrossEntropy],
        |h| vec![h],
    );
    let options = GradCheckOptions {
        step: args.step,
        stencil: match args.stencil {
            StencilArg::Central2 => Stencil::Central2,
            StencilArg::Central4 => Stencil::Central4,
        },
        tolerance: args.tolerance,
        floor: args.floor,
    };
    if args.layers[args.layers.len() - 1] > 256 {
        return usage("--layers: at most 256 outputs");
    }
    // Every configuration is checked, and its memory counted, before anything is drawn.
    let mut models = Vec::new();
    for &activation in &activations {
        for &head in &heads {
            let model = ModelConfig {
                layers: args.layers.clone(),
                activation,
                head,
                init: args.init,
            }
            .validate()?;
            common::check_memory(
                "this gradient check",
                glorot_mlp::memory::gradcheck_bytes(&model, args.rows),
            )?;
            models.push(model);
        }
    }
    let inputs = args.layers[0];
    let classes = args.layers[args.layers.len() - 1];
    // A random batch: standard normal inputs, labels cycling through the classes.
    let x: Array2<f64> = Init::Normal {
        mean: 0.0,
        std: 1.0,
    }
    .weights(args.rows, inputs, &mut glorot_mlp::shuffle_rng(args.seed))
    .context("drawing the random batch")?;
    let labels: Vec<u8> = (0..args.rows)
        .map(|i| u8::try_from((i * 7 + 3) % classes).unwrap_or(0))
        .collect();
    let y: Array2<f64> = one_hot(&labels, classes);

    let mut results = Vec::new();
    for model in models {
        let (activation, head) = (model.activation(), model.head());
        {
            let mlp = Mlp::<f64>::new(model, WeightSource::Seed(args.seed))?;
            let report = glorot_mlp::check_gradients(&mlp, x.view(), y.view(), &options)?;
            results.push(FullCheck {
                layers: args.layers.clone(),
                activation,
                head,
                init: args.init,
                passed: report.passed(),
                max_rel_error: report.max_rel_error(),
                checked: report.checked(),
                kinks: report.kinks(),
                report,
            });
        }
    }
    if args.json {
        print_json(&results)?;
    } else {
        out(format!(
            "gradient check of {} on {}: {} differences, h = {}, tolerance {}",
            join(&args.layers, "-"),
            count(args.rows, "random row", "random rows"),
            match options.stencil {
                Stencil::Central2 => "second-order central",
                Stencil::Central4 => "fourth-order central",
            },
            options.step,
            options.tolerance
        ))?;
        for r in &results {
            out(format!(
                "  {:<7} {:<21} {}  max relative error {:.3e}  ({}, {} skipped)",
                r.activation.to_string(),
                r.head.to_string(),
                if r.passed { "ok    " } else { "FAILED" },
                r.max_rel_error,
                count(r.checked, "entry", "entries"),
                count(r.kinks, "ReLU kink", "ReLU kinks")
            ))?;
        }
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            let worst = r
                .report
                .params
                .iter()
                .max_by(|a, b| a.max_rel_error.total_cmp(&b.max_rel_error));
            match worst {
                Some(p) => format!(
                    "{}/{}: {} entry {} has relative error {:.3e} (backprop {:.6e}, finite difference {:.6e})",
                    r.activation,
                    r.head,
                    p.param,
                    p.worst_index.unwrap_or(0),
                    p.max_rel_error,
                    p.worst_analytic,
                    p.worst_numeric
                ),
                None => format!("{}/{}", r.activation, r.head),
            }
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "gradient check failed (tolerance {}): {}",
            options.tolerance,
            failed.join("; ")
        )
    }
}

fn notebook_check(args: &NotebookCheckArgs) -> Result<()> {
    let param: ParamId = args
        .param
        .parse()
        .map_err(|e| common::UsageError(format!("--param: {e}")))?;
    let loaded = args.data.load()?;
    let train = &loaded.mnist.train;
    if args.sample >= train.len() {
        return usage(format!(
            "--sample {} is out of range: the training split has {}",
            args.sample,
            count(train.len(), "image", "images")
        ));
    }
    let (x, y) = glorot_experiments::data::example(train, args.sample);
    let mut layers = vec![x.ncols()];
    layers.extend(&args.hidden);
    layers.push(glorot_mnist::NUM_CLASSES);
    let model = ModelConfig {
        layers,
        activation: args.activation,
        head: args.head,
        init: args.init,
    }
    .validate()?;
    common::check_memory(
        "this gradient check",
        glorot_mlp::memory::gradcheck_bytes(&model, x.nrows()),
    )?;
    let mlp = Mlp::<f64>::new(model, WeightSource::Seed(args.seed))?;
    let check: NotebookGradCheck =
        glorot_mlp::notebook_grad_check(&mlp, x.view(), y.view(), param, args.row, args.entries)?;
    if args.json {
        return print_json(&check);
    }
    out(format!(
        "notebook gradient check: {}[{}][0..{}], training image {} (label {})",
        check.param, check.row, check.entries, args.sample, train.labels[args.sample]
    ))?;
    out(format!(
        "analytic gradient: {}",
        check
            .analytic
            .iter()
            .map(|g| format!("{g:.6e}"))
            .collect::<Vec<_>>()
            .join(" ")
    ))?;
    out(format!(
        "{:>8}  {:>10}  {:>18}  {:>18}",
        "N", "epsilon", "max |num - ana|", "max relative error"
    ))?;
    for s in &check.steps {
        out(format!(
            "{:>8}  {:>10.3e}  {:>18.6e}  {:>18.6e}",
            s.n, s.epsilon, s.max_abs_diff, s.max_rel_error
        ))?;
    }
    Ok(())
}
