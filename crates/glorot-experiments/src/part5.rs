//! Part 5: Fashion-MNIST, the notebook's best configuration against the same network with
//! the training features it lacks (issue 17).
//!
//! Two configurations of the 784-550-550-10 ReLU network (sigmoid outputs with binary
//! cross-entropy, Glorot uniform), each trained from [`Part5Options::seeds`] seeds on
//! Fashion-MNIST (whatever dataset the other parts use):
//! - `notebook`: the notebook's best grid configuration as printed, plain SGD at lr 0.1,
//!   batch 32, 10 epochs, the last epoch's weights;
//! - `improved`: [`improved_train`], SGD with Nesterov momentum and weight decay, a cosine
//!   schedule after a warm-up epoch, at most 30 epochs, and early stopping on validation
//!   accuracy that keeps the best epoch's weights.
//!
//! Every run is tested once on the test split, with the weights it ends with. The issue's
//! target is a mean test accuracy of at least [`TARGET_TEST_ACCURACY`] percent.
//!
//! Each run is cached in `part5/<config>-seed<N>.json` with a key of everything that
//! determines it (model, training configuration, data description); a rerun with the same
//! key reuses it, so an interrupted Part 5 resumes.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use glorot_mlp::{
    Activation, Arithmetic, EarlyStopping, Init, LrSchedule, Mlp, ModelConfig, Optimizer,
    Precision, Shuffle, TrainConfig, TrainReport, Trainer, WeightSource,
};
use serde::{Deserialize, Serialize};

use crate::data::{Compute, Data, Splits};
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::part1::{CachedRun, EpochProgress, model_config};
use crate::support::{
    RunContext, RunManifest, SCHEMA_VERSION, Seeds, read_json, reads_version, run_pool, write_json,
};

/// The aim: mean test accuracy of a 2-hidden-layer MLP on Fashion-MNIST within
/// 30 epochs, percent.
pub const TARGET_TEST_ACCURACY: f64 = 89.5;

/// Seeds per configuration of a full run.
pub const SEEDS: usize = 3;

/// The improved configuration's epoch budget.
pub const IMPROVED_EPOCHS: usize = 30;

/// Epochs of both configurations in a `--quick` run.
pub const QUICK_EPOCHS: usize = 2;

/// `part5.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part5File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part5"`.
    pub part: String,
    /// Where and how the file was produced (its `dataset` is Fashion-MNIST).
    pub manifest: RunManifest,
    /// `true` for a `--quick` run (a subset of the data, 2 epochs, 1 seed).
    pub quick: bool,
    /// [`TARGET_TEST_ACCURACY`].
    pub target_test_accuracy: f64,
    /// The two configurations: `notebook`, then `improved`.
    pub configs: Vec<Part5Config>,
}

/// One configuration and its runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part5Config {
    /// `notebook` or `improved`.
    pub name: String,
    /// What it is, in words.
    pub description: String,
    /// The architecture (the same for both).
    pub model: ModelConfig,
    /// The training configuration of its first run (the others differ in `seed` only).
    pub train: TrainConfig,
    /// One run per seed.
    pub runs: Vec<Part5Run>,
    /// Test accuracy over the runs.
    pub summary: Part5Summary,
}

/// One seed's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part5Run {
    /// The training seed (a decimal string).
    #[serde(with = "glorot_mlp::seed_text")]
    pub seed: u64,
    /// The epoch whose weights were tested: the kept epoch under early stopping, else the
    /// last finished one (`null` when none finished).
    pub kept_epoch: Option<usize>,
    /// Curves (with each epoch's learning rate), status, kept epoch and stop reason, and the
    /// test accuracy of the weights the run ends with.
    pub report: TrainReport,
    /// Whether the run was read from `part5/<config>-seed<N>.json` instead of trained now.
    pub cached: bool,
}

/// Test accuracy of a configuration over its runs (those with a test result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part5Summary {
    /// Runs with a test result.
    pub runs: usize,
    /// Mean test accuracy, percent (`null` without runs).
    pub test_accuracy_mean: Option<f64>,
    /// Sample standard deviation of the test accuracy (`n - 1` in the denominator; `null`
    /// with fewer than two runs).
    pub test_accuracy_std: Option<f64>,
    /// Lowest test accuracy.
    pub test_accuracy_min: Option<f64>,
    /// Highest test accuracy.
    pub test_accuracy_max: Option<f64>,
    /// Mean of the runs' best validation accuracy.
    pub best_val_accuracy_mean: Option<f64>,
    /// Whether the mean test accuracy is at least [`TARGET_TEST_ACCURACY`].
    pub reaches_target: bool,
}

impl Part5Summary {
    /// The summary of `runs`.
    pub fn of(runs: &[Part5Run]) -> Self {
        let tests: Vec<f64> = runs.iter().filter_map(|r| r.report.test_accuracy).collect();
        let bests: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.report.best_val_accuracy())
            .collect();
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let test_mean = mean(&tests);
        let std = test_mean.filter(|_| tests.len() > 1).map(|m| {
            (tests.iter().map(|t| (t - m) * (t - m)).sum::<f64>() / (tests.len() - 1) as f64).sqrt()
        });
        Part5Summary {
            runs: tests.len(),
            test_accuracy_mean: test_mean,
            test_accuracy_std: std,
            test_accuracy_min: tests.iter().copied().reduce(f64::min),
            test_accuracy_max: tests.iter().copied().reduce(f64::max),
            best_val_accuracy_mean: mean(&bests),
            reaches_target: test_mean.is_some_and(|m| m >= TARGET_TEST_ACCURACY),
        }
    }
}

/// What Part 5 runs.
#[derive(Clone, Debug)]
pub struct Part5Options {
    /// The first seed; run `i` of a configuration trains with `seed + i`.
    pub seed: u64,
    /// Runs per configuration ([`SEEDS`]; 1 with `quick`).
    pub seeds: usize,
    /// Element type of training.
    pub precision: Precision,
    /// Runs trained at the same time.
    pub workers: usize,
    /// A `--quick` run: [`QUICK_EPOCHS`] epochs for both configurations (the caller passes
    /// a subset of the data).
    pub quick: bool,
}

/// The network of both configurations: the notebook's best, 784-550-550-10 ReLU with
/// sigmoid outputs and binary cross-entropy, Glorot uniform.
pub fn model() -> ModelConfig {
    model_config(550, Activation::Relu, Init::GlorotUniform)
}

/// The notebook's best grid configuration as printed: plain SGD, lr 0.1, batch 32,
/// 10 epochs (shuffled every epoch, as the notebook meant to).
pub fn notebook_train(seed: u64, precision: Precision) -> TrainConfig {
    TrainConfig {
        epochs: 10,
        batch_size: 32,
        learning_rate: 0.1,
        seed,
        shuffle: Shuffle::EveryEpoch,
        precision,
        arithmetic: Arithmetic::Fast,
        ..TrainConfig::default()
    }
}

/// The improved configuration: SGD with Nesterov momentum 0.9 and weight decay 5e-4 at
/// lr 0.02, batch 32, one warm-up epoch then cosine annealing to 0 over at most
/// [`IMPROVED_EPOCHS`] epochs, early stopping after 10 epochs without a better validation
/// accuracy, keeping the best epoch's weights. Chosen from a few runs on Fashion-MNIST
/// (see `docs/results.md`, Part 5).
pub fn improved_train(seed: u64, precision: Precision) -> TrainConfig {
    TrainConfig {
        epochs: IMPROVED_EPOCHS,
        batch_size: 32,
        learning_rate: 0.02,
        seed,
        shuffle: Shuffle::EveryEpoch,
        precision,
        arithmetic: Arithmetic::Fast,
        optimizer: Optimizer::Nesterov {
            momentum: 0.9,
            weight_decay: 5e-4,
        },
        lr_schedule: LrSchedule::Cosine { min_lr: 0.0 },
        warmup_epochs: 1,
        early_stopping: Some(EarlyStopping::new(10)),
    }
}

/// A configuration: its name, its description, and its training config for a seed.
type ConfigSpec = (&'static str, String, fn(u64, Precision) -> TrainConfig);

/// The two configurations for `options`.
fn configs(options: &Part5Options) -> [ConfigSpec; 2] {
    [
        (
            "notebook",
            format!(
                "the notebook's best grid configuration as printed: SGD, lr 0.1, batch 32, \
                 {} epochs, last epoch's weights",
                if options.quick { QUICK_EPOCHS } else { 10 }
            ),
            notebook_train,
        ),
        (
            "improved",
            format!(
                "SGD with Nesterov momentum 0.9 and weight decay 5e-4, lr 0.02, batch 32, \
                 1 warm-up epoch then cosine annealing, at most {} epochs, early stopping \
                 (patience 10, validation accuracy) keeping the best epoch's weights",
                if options.quick {
                    QUICK_EPOCHS
                } else {
                    IMPROVED_EPOCHS
                }
            ),
            improved_train,
        ),
    ]
}

/// A configuration's training config for one run, shortened in a quick run.
fn run_config(
    make: fn(u64, Precision) -> TrainConfig,
    seed: u64,
    options: &Part5Options,
) -> TrainConfig {
    let mut train = make(seed, options.precision);
    if options.quick {
        train.epochs = QUICK_EPOCHS;
    }
    train
}

/// One run to train: configuration index, seed, training config, cache key and file.
type Job = (usize, u64, TrainConfig, String, PathBuf);

/// Runs Part 5 on `data` (Fashion-MNIST) and writes `part5.json` (and the per-run cache)
/// under `out`.
///
/// # Errors
/// [`Error::InvalidOptions`] when `data` is not Fashion-MNIST; when a run fails or stops
/// before its end (the other runs still finish and are cached), or a results file cannot
/// be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &Part5Options,
    ctx: &RunContext,
    observer: &dyn Observer,
) -> Result<Part5File> {
    if data.mnist.kind != glorot_mnist::DatasetKind::FashionMnist {
        return Err(Error::InvalidOptions(format!(
            "Part 5 trains on Fashion-MNIST, not on {}",
            data.mnist.kind
        )));
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    let model = model();
    let cache_dir = out.join("part5");
    let configs = configs(options);
    let mut jobs: Vec<Job> = Vec::new();
    let mut cached: Vec<(usize, u64, TrainReport)> = Vec::new();
    for (c, (name, _, make)) in configs.iter().enumerate() {
        for i in 0..options.seeds {
            let seed = options.seed.wrapping_add(i as u64);
            let train = run_config(*make, seed, options);
            train.validate()?;
            let key = serde_json::to_string(&(&model, &train, data.description()))
                .map_err(|e| Error::json("serializing Part 5's cache key", e))?;
            let path = cache_dir.join(format!("{name}-seed{seed}.json"));
            match read_json::<CachedRun>(&path)? {
                Some(r) if reads_version(r.schema_version) && r.key == key => {
                    cached.push((c, seed, r.report));
                }
                _ => jobs.push((c, seed, train, key, path)),
            }
        }
    }
    let units_per_epoch = epoch_units(&model.layers, data.info.train, data.info.validation);
    let total_epochs: usize = jobs.iter().map(|j| j.2.epochs).sum();
    let progress = Progress::new("part 5", units_per_epoch * total_epochs as f64, observer);
    for (c, seed, _) in &cached {
        progress.note(&format!(
            "{} seed {seed}: reusing part5/{}-seed{seed}.json",
            configs[*c].0, configs[*c].0
        ));
    }
    let results = match options.precision {
        Precision::F32 => train_jobs::<f32>(
            &jobs,
            data,
            &model,
            options,
            &progress,
            units_per_epoch,
            &configs,
        ),
        Precision::F64 => train_jobs::<f64>(
            &jobs,
            data,
            &model,
            options,
            &progress,
            units_per_epoch,
            &configs,
        ),
    };
    progress.finish();
    let mut fresh = Vec::new();
    for ((c, seed, ..), result) in jobs.iter().zip(results) {
        let report = result.with_context(|| format!("Part 5, {} seed {seed}", configs[*c].0))?;
        fresh.push((*c, *seed, report));
    }

    let mut out_configs = Vec::new();
    for (c, (name, description, make)) in configs.iter().enumerate() {
        let mut runs = Vec::new();
        for i in 0..options.seeds {
            let seed = options.seed.wrapping_add(i as u64);
            let find = |list: &[(usize, u64, TrainReport)]| {
                list.iter()
                    .find(|(lc, ls, _)| *lc == c && *ls == seed)
                    .map(|(_, _, r)| r.clone())
            };
            let (report, was_cached) = match find(&cached) {
                Some(r) => (r, true),
                None => (find(&fresh).expect("every run trained or cached"), false),
            };
            runs.push(Part5Run {
                seed,
                kept_epoch: report.final_epoch().map(|e| e.epoch),
                report,
                cached: was_cached,
            });
        }
        out_configs.push(Part5Config {
            name: (*name).to_owned(),
            description: description.clone(),
            model: model.clone(),
            train: run_config(*make, options.seed, options),
            summary: Part5Summary::of(&runs),
            runs,
        });
    }
    let file = Part5File {
        schema_version: SCHEMA_VERSION,
        part: "part5".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            options.precision,
            Seeds::master(options.seed),
            &data.info,
        ),
        quick: options.quick,
        target_test_accuracy: TARGET_TEST_ACCURACY,
        configs: out_configs,
    };
    write_json(&out.join("part5.json"), &file)?;
    Ok(file)
}

/// Trains the jobs on `options.workers` threads (data converted to `F` once), writing
/// each run's cache file as soon as it finishes.
fn train_jobs<F: Compute>(
    jobs: &[Job],
    data: &Data,
    model: &ModelConfig,
    options: &Part5Options,
    progress: &Progress<'_>,
    units: f64,
    configs: &[ConfigSpec; 2],
) -> Vec<Result<TrainReport>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let splits = Splits::<F>::new(&data.mnist);
    run_pool(jobs, options.workers, |(c, seed, train, key, path)| {
        let valid_model = model.validate()?;
        let valid_train = train.validate()?;
        let mut observer = EpochProgress {
            progress,
            label: format!("{} seed {seed}", configs[*c].0),
            epochs: train.epochs,
            units,
        };
        let mlp = Mlp::<F>::new(valid_model, WeightSource::Seed(*seed))?;
        let mut trainer = Trainer::new(mlp, valid_train)?;
        let report = trainer.fit(&splits.fit(true)?, &mut observer)?;
        if let glorot_mlp::Status::Cancelled { epoch } = report.status {
            return Err(Error::Incomplete(format!(
                "stopped in epoch {epoch} (not recorded; it reruns next time)"
            )));
        }
        write_json(
            path,
            &CachedRun {
                schema_version: SCHEMA_VERSION,
                key: key.clone(),
                report: report.clone(),
            },
        )?;
        Ok(report)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use glorot_mlp::{EpochMetrics, Status};

    fn run_with(test_accuracy: Option<f64>, best_val: f64) -> Part5Run {
        Part5Run {
            seed: 0,
            kept_epoch: Some(1),
            report: TrainReport {
                epochs: vec![EpochMetrics {
                    epoch: 1,
                    train_loss: 0.5,
                    val_loss: 0.4,
                    val_accuracy: best_val,
                    seconds: 1.0,
                    train_seconds: 1.0,
                    lr: Some(0.1),
                }],
                status: Status::Completed,
                kept_epoch: None,
                stop_reason: None,
                test_accuracy,
                test_loss: test_accuracy.map(|_| 0.3),
                train_samples: 10,
                validation_samples: 10,
                batches_per_epoch: 1,
                parameters: 1,
                precision: Precision::F32,
                seconds: 1.0,
            },
            cached: false,
        }
    }

    /// Mean, sample standard deviation and range of the three measured test
    /// accuracies (85.8, 87.5, 87.5: mean 86.9333, sd sqrt(((-1.1333)^2 + 2 * 0.5667^2) /
    /// 2) = 0.98150, by hand), and the target check.
    #[test]
    fn summary_statistics() {
        let runs = [
            run_with(Some(85.8), 88.4),
            run_with(Some(87.5), 88.7),
            run_with(Some(87.5), 88.5),
        ];
        let s = Part5Summary::of(&runs);
        assert_eq!(s.runs, 3);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-5);
        assert!(close(s.test_accuracy_mean, 86.933_333), "{s:?}");
        assert!(close(s.test_accuracy_std, 0.981_495), "{s:?}");
        assert_eq!(
            (s.test_accuracy_min, s.test_accuracy_max),
            (Some(85.8), Some(87.5))
        );
        assert!(close(s.best_val_accuracy_mean, 88.533_333), "{s:?}");
        assert!(!s.reaches_target);
        let high = Part5Summary::of(&[run_with(Some(89.5), 90.0), run_with(None, 90.0)]);
        assert_eq!(high.runs, 1);
        assert_eq!(high.test_accuracy_std, None);
        assert!(high.reaches_target, "89.5 itself reaches the target");
        assert!(!Part5Summary::of(&[]).reaches_target);
    }

    #[test]
    fn both_configurations_are_valid_and_quick_shortens_them() {
        let mut options = Part5Options {
            seed: 0,
            seeds: 3,
            precision: Precision::F32,
            workers: 1,
            quick: false,
        };
        for (_, _, make) in configs(&options) {
            let t = run_config(make, 7, &options);
            assert!(t.validate().is_ok(), "{t:?}");
            assert_eq!(t.seed, 7);
        }
        assert_eq!(run_config(notebook_train, 0, &options).epochs, 10);
        assert_eq!(
            run_config(improved_train, 0, &options).epochs,
            IMPROVED_EPOCHS
        );
        options.quick = true;
        for (_, _, make) in configs(&options) {
            let t = run_config(make, 0, &options);
            assert_eq!(t.epochs, QUICK_EPOCHS);
            assert!(t.validate().is_ok(), "{t:?}");
        }
        // The notebook's configuration is the default training path (plain SGD, no
        // schedule, no early stopping): it serializes without the new fields.
        let json = serde_json::to_string(&notebook_train(0, Precision::F32)).unwrap();
        assert!(
            !json.contains("optimizer") && !json.contains("early_stopping"),
            "{json}"
        );
    }
}
