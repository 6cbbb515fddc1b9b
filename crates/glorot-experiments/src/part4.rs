//! Part 4: why Glorot's initialization works, measured inside the network (X. Glorot and
//! Y. Bengio, "Understanding the difficulty of training deep feedforward neural
//! networks", AISTATS 2010, PMLR 9:249-256).
//!
//! The paper's MNIST setup: 5 hidden layers of 1,000 units, sigmoid, tanh and softsign
//! hidden units, each with the "standard" initialization `U(-1/sqrt(n), 1/sqrt(n))`
//! ([`Init::Standard`]) and the normalized one ([`Init::GlorotUniform`]): six networks,
//! a softmax output with the negative log-likelihood ([`Head::SoftmaxCrossEntropy`], as
//! the paper; not the notebook's sigmoid + binary cross-entropy), plain SGD on minibatches
//! of 10. Each network is measured through the probe of [`glorot_mlp::probe`] on the
//! first [`PROBE_ROWS`] validation images: at initialization, every
//! [`Part4Options::every`] updates and at the end.
//!
//! Where glorot differs from the paper: the paper trained each network far longer, with
//! a learning rate tuned per network on the validation set; here each
//! network trains for [`Part4Options::epochs`] epochs (a few, see `docs/results.md`)
//! with one learning rate for all, so its test errors are those of a much shorter
//! training and are compared with the paper's for their order, not their value.
//!
//! Each network is cached in `part4/<name>.json` with a key of everything that
//! determines it; a rerun with the same key reuses it (an interrupted Part 4 resumes).

use std::path::Path;
use std::time::{Instant, SystemTime};

use glorot_mlp::probe::{LayerProbe, ProbeSchedule, ProbeSnapshot, Summary};
use glorot_mlp::{
    Activation, Arithmetic, EpochMetrics, Head, Init, Mlp, ModelConfig, Precision, Probe, Shuffle,
    TrainConfig, TrainReport, Trainer, WeightSource,
};
use serde::{Deserialize, Serialize};

use crate::data::{Compute, Data, Splits};
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::support::{
    RunContext, RunManifest, SCHEMA_VERSION, Seeds, read_json, reads_version, run_pool, write_json,
};

/// Validation images the probe measures (the first ones).
pub const PROBE_ROWS: usize = 1_000;
/// Histogram bins of the probe.
pub const PROBE_BINS: usize = 50;
/// Minibatch size (the paper's 10).
pub const BATCH_SIZE: usize = 10;
/// Learning rate of every network (the paper tuned one per network; this one trains all
/// six in a few epochs without diverging).
pub const LEARNING_RATE: f64 = 0.05;

/// The six networks: name, activation, initializer, in the paper's Table 1 order.
pub const NETWORKS: [(&str, Activation, Init); 6] = [
    ("softsign-standard", Activation::Softsign, Init::Standard),
    (
        "softsign-normalized",
        Activation::Softsign,
        Init::GlorotUniform,
    ),
    ("tanh-standard", Activation::Tanh, Init::Standard),
    ("tanh-normalized", Activation::Tanh, Init::GlorotUniform),
    ("sigmoid-standard", Activation::Sigmoid, Init::Standard),
    (
        "sigmoid-normalized",
        Activation::Sigmoid,
        Init::GlorotUniform,
    ),
];

/// The paper's Table 1, MNIST column: test error (%) of the networks with 5 hidden layers
/// (Glorot and Bengio 2010, Table 1; "N" marks the normalized initialization). The paper
/// has no row for sigmoid with the normalized initialization.
pub const PAPER_TEST_ERROR: [(&str, Option<f64>); 6] = [
    ("softsign-standard", Some(1.64)),
    ("softsign-normalized", Some(1.72)),
    ("tanh-standard", Some(1.76)),
    ("tanh-normalized", Some(1.64)),
    ("sigmoid-standard", Some(2.21)),
    ("sigmoid-normalized", None),
];

/// What Part 4 runs.
#[derive(Clone, Debug)]
pub struct Part4Options {
    /// Epochs of each network.
    pub epochs: usize,
    /// Hidden layers.
    pub hidden_layers: usize,
    /// Units per hidden layer.
    pub hidden: usize,
    /// Probe measurements in between, every this many updates.
    pub every: usize,
    /// Master seed: the networks' draws and the data order.
    pub seed: u64,
    /// Element type of training.
    pub precision: Precision,
    /// Networks trained at the same time.
    pub workers: usize,
    /// A `--quick` run (recorded in the file).
    pub quick: bool,
}

/// `part4.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part4File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part4"`.
    pub part: String,
    /// Where and how the file was produced.
    pub manifest: RunManifest,
    /// `true` for a `--quick` run.
    pub quick: bool,
    /// Widths from input to output (the activation and initializer vary by network).
    pub layers: Vec<usize>,
    /// Output head and loss (softmax with the negative log-likelihood, as the paper).
    pub head: Head,
    /// Epochs, batch size, learning rate, seed, shuffle, precision (shared).
    pub train: TrainConfig,
    /// Rows of the probe batch (the first validation images).
    pub probe_rows: usize,
    /// Probe measurements in between, every this many updates.
    pub probe_every: usize,
    /// The six networks, in [`NETWORKS`]' order.
    pub networks: Vec<Part4Network>,
}

/// One network: its training, its probe measurements and its variance ratios at
/// initialization.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part4Network {
    /// `tanh-standard` and so on.
    pub name: String,
    /// Hidden activation.
    pub activation: Activation,
    /// Weight initializer.
    pub init: Init,
    /// Curves, status, test metrics.
    pub report: TrainReport,
    /// Test error in % (`100 - test accuracy`; null when diverged).
    pub test_error: Option<f64>,
    /// The paper's Table 1 MNIST test error for this network, when it has one.
    pub paper_test_error: Option<f64>,
    /// The probe at initialization, with histograms.
    pub initial: ProbeSnapshot,
    /// The probe after the last update, with histograms.
    pub last: ProbeSnapshot,
    /// Every measurement's activation summary per hidden layer, in update order (the
    /// paper's figures 2-4).
    pub curve: Vec<CurvePoint>,
    /// Variance ratios between consecutive hidden layers at initialization.
    pub ratios: Vec<VarianceRatio>,
    /// Whether the network was read from `part4/<name>.json` instead of trained now.
    pub cached: bool,
}

/// The activation statistics of every hidden layer at one moment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Updates done.
    pub update: usize,
    /// Per hidden layer, from the first.
    pub activations: Vec<Summary>,
}

/// Variance ratios between hidden layers `layer` and `layer + 1` (0-based) at
/// initialization, measured and as the linear regime predicts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VarianceRatio {
    /// The lower layer (0: the first hidden layer).
    pub layer: usize,
    /// `Var(a_layer) / Var(a_{layer+1})`: how much the activations' variance shrinks
    /// going up.
    pub activations: f64,
    /// `Var(g_{layer+1}) / Var(g_layer)` of the back-propagated gradients `dL/dz`: how
    /// much it shrinks going down.
    pub gradients: f64,
    /// `1 / (fan_in Var[W])` of the weights between the two layers (3 standard, 1
    /// normalized for equal widths).
    pub predicted_activations: f64,
    /// `1 / (fan_out Var[W])`.
    pub predicted_gradients: f64,
}

/// `part4/<name>.json`: one finished network and what determined it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedNetwork {
    /// [`SCHEMA_VERSION`]; another version is recomputed.
    pub schema_version: u32,
    /// The model, training configuration, probe and data description, as JSON.
    pub key: String,
    /// The network's results.
    pub network: Part4Network,
}

/// `Var[W]` of `init` for a `(fan_in, fan_out)` matrix, where the paper's analysis
/// applies: the two uniform initializations of Part 4 (`r^2 / 3` for `U(-r, r)`).
pub fn weight_variance(init: Init, fan_in: usize, fan_out: usize) -> Option<f64> {
    match init {
        Init::Standard => Some(1.0 / (3.0 * fan_in as f64)),
        Init::GlorotUniform => Some(2.0 / (fan_in + fan_out) as f64),
        _ => None,
    }
}

/// The linear-regime predictions `(1 / (fan_in Var[W]), 1 / (fan_out Var[W]))` for
/// `init`, written so that equal widths give exactly 3 (standard) and 1 (normalized):
/// `3 fan_in / fan_in`, `3 fan_in / fan_out` for `Var[W] = 1 / (3 fan_in)`, and
/// `(fan_in + fan_out) / (2 fan_in)`, `(fan_in + fan_out) / (2 fan_out)` for
/// `Var[W] = 2 / (fan_in + fan_out)`.
pub fn predicted_ratios(init: Init, fan_in: usize, fan_out: usize) -> Option<(f64, f64)> {
    let (i, o) = (fan_in as f64, fan_out as f64);
    match init {
        Init::Standard => Some((3.0 * i / i, 3.0 * i / o)),
        Init::GlorotUniform => Some(((i + o) / (2.0 * i), (i + o) / (2.0 * o))),
        _ => None,
    }
}

/// The variance ratios of `snapshot` (at initialization) with their linear-regime
/// predictions for `init` and `layers` (widths from input to output).
pub fn variance_ratios(
    snapshot: &ProbeSnapshot,
    init: Init,
    layers: &[usize],
) -> Vec<VarianceRatio> {
    let var = |s: &Summary| s.std * s.std;
    snapshot
        .layers
        .windows(2)
        .map(|w| {
            let (lo, hi): (&LayerProbe, &LayerProbe) = (&w[0], &w[1]);
            // The weights between hidden layers lo and hi: w_{lo+1}, (layers[lo+1], layers[lo+2]).
            let (fan_in, fan_out) = (layers[lo.layer + 1], layers[lo.layer + 2]);
            let (up, down) =
                predicted_ratios(init, fan_in, fan_out).unwrap_or((f64::NAN, f64::NAN));
            VarianceRatio {
                layer: lo.layer,
                activations: var(&lo.activations.summary) / var(&hi.activations.summary),
                gradients: var(&hi.backprop_gradients.summary)
                    / var(&lo.backprop_gradients.summary),
                predicted_activations: up,
                predicted_gradients: down,
            }
        })
        .collect()
}

/// The network of Part 4: `784`, `hidden_layers` of `hidden`, `10`, softmax head.
pub fn model_config(
    hidden_layers: usize,
    hidden: usize,
    activation: Activation,
    init: Init,
) -> ModelConfig {
    let mut layers = vec![glorot_mnist::PIXELS];
    layers.extend(std::iter::repeat_n(hidden, hidden_layers));
    layers.push(glorot_mnist::NUM_CLASSES);
    ModelConfig {
        layers,
        activation,
        head: Head::SoftmaxCrossEntropy,
        init,
    }
}

/// The shared training configuration of `options`.
pub fn train_config(options: &Part4Options) -> TrainConfig {
    TrainConfig {
        epochs: options.epochs,
        batch_size: BATCH_SIZE,
        learning_rate: LEARNING_RATE,
        seed: options.seed,
        shuffle: Shuffle::EveryEpoch,
        precision: options.precision,
        arithmetic: Arithmetic::Fast,
        ..TrainConfig::default()
    }
}

/// Runs Part 4 and writes `part4.json` (and the per-network cache) under `out`.
///
/// # Errors
/// When a network fails or stops before its end (the others still finish and are
/// cached), or a results file cannot be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &Part4Options,
    ctx: &RunContext,
    observer: &dyn Observer,
) -> Result<Part4File> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let train = train_config(options);
    let valid_train = train.validate()?;
    let probe_rows = PROBE_ROWS.min(data.mnist.validation.len());
    let cache_dir = out.join("part4");
    let mut jobs = Vec::new();
    let mut cached = Vec::new();
    for (name, activation, init) in NETWORKS {
        let model = model_config(options.hidden_layers, options.hidden, activation, init);
        let key = serde_json::to_string(&(
            &model,
            &train,
            (probe_rows, PROBE_BINS, options.every),
            data.description(),
        ))
        .map_err(|e| Error::json("serializing Part 4's cache key", e))?;
        let path = cache_dir.join(format!("{name}.json"));
        // A cache that does not read (an older format) is recomputed, like another key.
        match read_json::<CachedNetwork>(&path) {
            Ok(Some(c)) if reads_version(c.schema_version) && c.key == key => {
                cached.push(c.network);
            }
            _ => jobs.push(Job {
                name,
                activation,
                init,
                model,
                key,
                path,
            }),
        }
    }
    let layers = model_config(
        options.hidden_layers,
        options.hidden,
        Activation::Tanh,
        Init::Standard,
    )
    .layers;
    let units_per_epoch = epoch_units(&layers, data.info.train, data.info.validation);
    let progress = Progress::new(
        "part 4",
        units_per_epoch * options.epochs as f64 * jobs.len() as f64,
        observer,
    );
    for n in &cached {
        progress.note(&format!("{}: reusing part4/{}.json", n.name, n.name));
    }
    let ctx_jobs = JobContext {
        data,
        train: &valid_train,
        options,
        progress: &progress,
        units: units_per_epoch,
        probe_rows,
    };
    let results = match options.precision {
        Precision::F32 => train_jobs::<f32>(&jobs, &ctx_jobs),
        Precision::F64 => train_jobs::<f64>(&jobs, &ctx_jobs),
    };
    progress.finish();
    let mut fresh = Vec::new();
    for (job, result) in jobs.iter().zip(results) {
        fresh.push(result.with_context(|| format!("Part 4, {} network", job.name))?);
    }
    let mut networks = Vec::new();
    for (name, ..) in NETWORKS {
        if let Some(n) = cached.iter().find(|n| n.name == name) {
            networks.push(Part4Network {
                cached: true,
                ..n.clone()
            });
        } else if let Some(n) = fresh.iter().find(|n| n.name == name) {
            networks.push(n.clone());
        }
    }
    let file = Part4File {
        schema_version: SCHEMA_VERSION,
        part: "part4".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            options.precision,
            Seeds::master(options.seed),
            &data.info,
        ),
        quick: options.quick,
        layers,
        head: Head::SoftmaxCrossEntropy,
        train,
        probe_rows,
        probe_every: options.every,
        networks,
    };
    write_json(&out.join("part4.json"), &file)?;
    Ok(file)
}

/// One network to train.
struct Job {
    name: &'static str,
    activation: Activation,
    init: Init,
    model: ModelConfig,
    key: String,
    path: std::path::PathBuf,
}

/// What every job shares.
struct JobContext<'a> {
    data: &'a Data,
    train: &'a glorot_mlp::ValidTrainConfig,
    options: &'a Part4Options,
    progress: &'a Progress<'a>,
    units: f64,
    probe_rows: usize,
}

/// Trains the jobs on `options.workers` threads, writing each network's cache file as
/// soon as it finishes.
fn train_jobs<F: Compute>(jobs: &[Job], c: &JobContext<'_>) -> Vec<Result<Part4Network>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let splits = Splits::<F>::new(&c.data.mnist);
    let probe_x = splits
        .val_x
        .slice(ndarray::s![..c.probe_rows, ..])
        .to_owned();
    let probe_y = glorot_tensor::one_hot::<F>(
        &c.data.mnist.validation.labels[..c.probe_rows],
        glorot_mnist::NUM_CLASSES,
    );
    run_pool(jobs, c.options.workers, |job| {
        let model = job.model.validate()?;
        let layers = model.layers().to_vec();
        let mut observer = ProbeRecorder {
            progress: c.progress,
            label: job.name.to_owned(),
            epochs: c.options.epochs,
            units: c.units,
            snapshots: Vec::new(),
        };
        let mlp = Mlp::<F>::new(model, WeightSource::Seed(c.train.seed()))?;
        let mut trainer = Trainer::new(mlp, c.train.clone())?;
        let schedule = ProbeSchedule {
            at_start: true,
            every: Some(c.options.every),
            at_end: true,
        };
        let probe =
            Probe::new(probe_x.clone(), probe_y.clone(), schedule)?.with_bins(PROBE_BINS)?;
        trainer.set_probe(probe)?;
        let report = trainer.fit(&splits.fit(true)?, &mut observer)?;
        if let glorot_mlp::Status::Cancelled { epoch } = report.status {
            return Err(Error::Incomplete(format!(
                "stopped in epoch {epoch} (not recorded; it reruns next time)"
            )));
        }
        let snapshots = observer.snapshots;
        let (Some(initial), Some(last)) = (snapshots.first(), snapshots.last()) else {
            return Err(Error::Incomplete("the probe measured nothing".to_owned()));
        };
        let network = Part4Network {
            name: job.name.to_owned(),
            activation: job.activation,
            init: job.init,
            test_error: report.test_accuracy.map(|a| 100.0 - a),
            paper_test_error: PAPER_TEST_ERROR
                .iter()
                .find(|(n, _)| *n == job.name)
                .and_then(|(_, e)| *e),
            report,
            ratios: variance_ratios(initial, job.init, &layers),
            curve: snapshots
                .iter()
                .map(|s| CurvePoint {
                    update: s.update,
                    activations: s
                        .layers
                        .iter()
                        .map(|l| l.activations.summary.clone())
                        .collect(),
                })
                .collect(),
            initial: initial.clone(),
            last: last.clone(),
            cached: false,
        };
        write_json(
            &job.path,
            &CachedNetwork {
                schema_version: SCHEMA_VERSION,
                key: job.key.clone(),
                network: network.clone(),
            },
        )?;
        Ok(network)
    })
}

/// Keeps the probe's snapshots and reports each finished epoch to a [`Progress`].
struct ProbeRecorder<'a> {
    progress: &'a Progress<'a>,
    label: String,
    epochs: usize,
    units: f64,
    snapshots: Vec<ProbeSnapshot>,
}

impl glorot_mlp::Observer for ProbeRecorder<'_> {
    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        self.progress.advance(
            self.units,
            &format!(
                "{} epoch {}/{}: loss {:.4}, validation {:.2}%",
                self.label, m.epoch, self.epochs, m.train_loss, m.val_accuracy
            ),
        );
    }

    fn on_probe(&mut self, snapshot: &ProbeSnapshot) {
        self.snapshots.push(snapshot.clone());
    }

    fn should_stop(&self) -> bool {
        self.progress.should_stop()
    }
}

/// Part 4's section of `REPORT.md`: setup and differences from the paper, the variance
/// ratios at initialization against the linear-regime prediction, the test errors next
/// to the paper's Table 1, and the figures among `plots`.
pub(crate) fn report(s: &mut String, p: &Part4File, plots: &[String]) {
    use std::fmt::Write as _;

    let hidden = p.layers.len().saturating_sub(2);
    let width = p.layers.get(1).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "## Part 4: why Glorot's initialization works\n\n\
         X. Glorot and Y. Bengio, \"Understanding the difficulty of training deep \
         feedforward neural networks\", AISTATS 2010 (PMLR 9:249-256), measured inside the \
         network: {} hidden layers of {} units ({}), sigmoid, tanh and softsign hidden \
         units, each with the standard initialization U[-1/sqrt(n), 1/sqrt(n)] (n = fan-in) \
         and the normalized one U[-sqrt(6/(n_in + n_out)), sqrt(6/(n_in + n_out))]. As in \
         the paper the output is a softmax with the negative log-likelihood (not the \
         notebook's sigmoid outputs), trained by plain SGD on minibatches of {} with \
         learning rate {}, {}, shuffled every epoch, in {}. The probe measures \
         the first {} validation images at initialization, every {} updates and at the \
         end (`glorot_mlp::probe`); back-propagated gradients are dL/dz, the gradient of \
         each example's loss with respect to the layer's pre-activation.{}\n",
        hidden,
        width,
        p.layers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        p.train.batch_size,
        p.train.learning_rate,
        crate::count(p.train.epochs, "epoch", "epochs"),
        p.train.precision.name(),
        p.probe_rows,
        p.probe_every,
        if p.quick {
            " **Quick run**: a small network on a subset of the data."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "**Where this differs from the paper.** The paper trained each network far longer, \
         with a learning rate tuned per network on \
         the validation set; here every network trains for {} of {} updates each with \
         one learning rate, to fit the experiments' time budget. The test errors below are \
         those of this much shorter training: compare their order, not their values.\n",
        crate::count(p.train.epochs, "epoch", "epochs"),
        p.networks.first().map_or(0, |n| n.report.batches_per_epoch)
    );
    let _ = writeln!(s, "### Variance ratios at initialization\n");
    let _ = writeln!(
        s,
        "In the linear regime of tanh, each layer multiplies the variance of its \
         activations by n_in Var[W] going up and that of the back-propagated gradient by \
         n_out Var[W] going down: with equal widths, ratios of 3 per layer for the standard \
         initialization and 1 for the normalized one. Measured ratios: activations \
         Var(a_i) / Var(a_i+1), gradients Var(g_i+1) / Var(g_i), for layers i = 1, 2, ...; \
         the prediction holds for tanh and softsign near 0 (slope 1), not for the sigmoid \
         (slope 1/4 and mean 1/2), shown for comparison. The softsign leaves its linear \
         regime sooner than tanh (x/(1+|x|) = x - x|x| + ..., tanh x = x - x^3/3 + ...): \
         the larger a layer's activations, the further its ratio from the prediction.\n"
    );
    let _ = writeln!(
        s,
        "| network | activations, measured | predicted | gradients, measured | predicted |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    let list = |v: Vec<f64>| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for n in &p.networks {
        let pred = |f: fn(&VarianceRatio) -> f64| {
            let v: Vec<f64> = n.ratios.iter().map(f).collect();
            let first = v.first().copied().unwrap_or(f64::NAN);
            let text = if v.iter().all(|x| (x - first).abs() < 1e-9) {
                format!("{first:.2}")
            } else {
                list(v)
            };
            // The linear regime needs slope 1 at 0: not the sigmoid's (1/4, around 1/2).
            if n.activation == Activation::Sigmoid {
                format!("– ({text} at slope 1)")
            } else {
                text
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            n.name,
            list(n.ratios.iter().map(|r| r.activations).collect()),
            pred(|r| r.predicted_activations),
            list(n.ratios.iter().map(|r| r.gradients).collect()),
            pred(|r| r.predicted_gradients),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "### Test error next to the paper's Table 1\n");
    let _ = writeln!(
        s,
        "The paper's values are its Table 1, MNIST column (5 hidden layers; it has no \
         sigmoid network with the normalized initialization).\n"
    );
    let _ = writeln!(
        s,
        "| network | test error (%), glorot | paper, Table 1 MNIST (%) | final validation accuracy (%) | status |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for n in &p.networks {
        let fmt = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{x:.2}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {}{} |",
            n.name,
            fmt(n.test_error),
            fmt(n.paper_test_error),
            fmt(n.report.final_val_accuracy()),
            if n.report.diverged() {
                "diverged"
            } else {
                "completed"
            },
            if n.cached { " (cached)" } else { "" }
        );
    }
    let _ = writeln!(s);
    // A network at chance level (10 classes) did not learn within the budget; its top
    // hidden layer's mean activation at the end says whether it saturated.
    for n in &p.networks {
        let Some(acc) = n.report.final_val_accuracy() else {
            continue;
        };
        if acc > 20.0 {
            continue;
        }
        let top = n
            .curve
            .last()
            .and_then(|c| c.activations.last())
            .map(|a| a.mean);
        let _ = write!(
            s,
            "**{}** did not learn within this budget (final validation accuracy {acc:.2}%, \
             chance is 10%)",
            n.name
        );
        match top {
            Some(m) => {
                let _ = write!(
                    s,
                    "; the mean activation of its top hidden layer at the end is {m:.4}"
                );
                if n.activation == Activation::Sigmoid && m < 0.1 {
                    let _ = write!(
                        s,
                        ": saturated at 0, the plateau the paper's figure 2 shows for sigmoid \
                         networks, which it says can last for a long time before the top \
                         layer leaves it"
                    );
                }
                let _ = writeln!(s, ".\n");
            }
            None => {
                let _ = writeln!(s, ".\n");
            }
        }
    }
    let figures = [
        (
            "part4_activations",
            "Activation mean, standard deviation and 1st-99th percentiles per hidden layer over training (the paper's figures 2-4)",
        ),
        (
            "part4_tanh_activations",
            "Normalized histograms of tanh activations per layer, standard vs normalized, at initialization and after training (figures 6-7)",
        ),
        (
            "part4_tanh_backprop_gradients",
            "Normalized histograms of back-propagated gradients per layer (figure 7)",
        ),
        (
            "part4_tanh_weight_gradients",
            "Normalized histograms of weight gradients per layer (figure 8)",
        ),
    ];
    for (name, alt) in figures {
        if plots.iter().any(|p| p == &format!("plots/{name}.png")) {
            let _ = writeln!(
                s,
                "{alt}:\n\n![{alt}](plots/{name}.png)\n\n([SVG](plots/{name}.svg))\n"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's prediction with equal widths: 3 for the standard initialization
    /// (`n Var[W] = 1/3`), 1 for the normalized one (`n Var[W] = n * 2 / 2n`).
    #[test]
    fn predicted_ratios_for_equal_widths() {
        for n in [100, 1000] {
            let s = weight_variance(Init::Standard, n, n).unwrap();
            let g = weight_variance(Init::GlorotUniform, n, n).unwrap();
            assert!((1.0 / (n as f64 * s) - 3.0).abs() < 1e-12);
            assert!((1.0 / (n as f64 * g) - 1.0).abs() < 1e-12);
            assert_eq!(predicted_ratios(Init::Standard, n, n), Some((3.0, 3.0)));
            assert_eq!(
                predicted_ratios(Init::GlorotUniform, n, n),
                Some((1.0, 1.0))
            );
        }
        // Unequal widths: the two directions differ (784 -> 1000, standard: 3 * 784 / 1000).
        let (up, down) = predicted_ratios(Init::Standard, 784, 1000).unwrap();
        assert_eq!(up, 3.0);
        assert!((down - 2.352).abs() < 1e-12);
        assert!(weight_variance(Init::Zero, 3, 3).is_none());
        assert!(predicted_ratios(Init::Zero, 3, 3).is_none());
    }

    /// The six networks are the paper's: three activations, two initializations, each
    /// with its Table 1 entry where the paper has one.
    #[test]
    fn six_networks_with_their_paper_entries() {
        assert_eq!(NETWORKS.len(), 6);
        for ((name, ..), (paper_name, _)) in NETWORKS.iter().zip(PAPER_TEST_ERROR) {
            assert_eq!(*name, paper_name);
        }
        let m = model_config(5, 1000, Activation::Tanh, Init::Standard);
        assert_eq!(m.layers, vec![784, 1000, 1000, 1000, 1000, 1000, 10]);
    }
}
