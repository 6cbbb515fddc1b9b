//! Part 1: the three initializations (Glorot uniform, N(0, 1), zero) of the notebook's
//! 784-500-500-10 tanh network, lr 0.01, batch 32, with the notebook's bugs fixed: the
//! training set is shuffled every epoch (seeded), and the parameter count is the real one.
//!
//! Each run is cached in `part1/<run>.json` with a key of everything that determines it;
//! a rerun with the same key reuses it, so an interrupted Part 1 resumes.

use std::path::Path;
use std::time::{Instant, SystemTime};

use glorot_mlp::{
    Activation, Arithmetic, EpochMetrics, Head, Init, Mlp, ModelConfig, Precision, Shuffle,
    TrainConfig, TrainReport, Trainer, WeightSource,
};
use serde::{Deserialize, Serialize};

use crate::data::{Compute, Data, Splits};
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::reference::Notebook;
use crate::support::{
    RunContext, RunManifest, SCHEMA_VERSION, Seeds, read_json, reads_version, run_pool, write_json,
};

/// `part1.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part1File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part1"`.
    pub part: String,
    /// Where and how the file was produced.
    pub manifest: RunManifest,
    /// `true` for a `--quick` run (a subset of the data, fewer epochs).
    pub quick: bool,
    /// Layers, activation, head (the initializer varies by run).
    pub layers: Vec<usize>,
    /// Hidden activation (tanh).
    pub activation: Activation,
    /// Output head and loss (sigmoid outputs with binary cross-entropy).
    pub head: Head,
    /// Epochs, batch size, learning rate, seed, shuffle, precision (shared by the runs).
    pub train: TrainConfig,
    /// Trainable parameters (weights and biases).
    pub parameters: usize,
    /// What the notebook's `num_parameters()` printed (0.648784 million), and why it is
    /// wrong.
    pub notebook_parameters: usize,
    /// Why the notebook's count is wrong.
    pub notebook_parameters_bug: String,
    /// The three runs, in the notebook's order: `glorot`, `normal`, `zero`.
    pub runs: Vec<Part1Run>,
}

/// One initialization's run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part1Run {
    /// `glorot`, `normal` or `zero` (the notebook's names).
    pub name: String,
    /// The initializer of this run.
    pub init: Init,
    /// Per-epoch training loss, validation loss and accuracy, status, test accuracy.
    pub report: TrainReport,
    /// Validation accuracy after the last epoch (`null` if the run diverged).
    pub final_val_accuracy: Option<f64>,
    /// The notebook's final validation accuracy for this initialization.
    pub notebook_final_val_accuracy: f64,
    /// Whether the run was read from `part1/<name>.json` instead of trained now.
    pub cached: bool,
}

/// `part1/<name>.json`: one finished run and what determined it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedRun {
    /// [`SCHEMA_VERSION`]; another version is recomputed.
    pub schema_version: u32,
    /// The model, training configuration and data description, as JSON: a rerun with
    /// another key trains again.
    pub key: String,
    /// The run's curves, status and test metrics.
    pub report: TrainReport,
}

/// What Part 1 runs.
#[derive(Clone, Debug)]
pub struct Part1Options {
    /// Epochs of each run (the notebook's 10).
    pub epochs: usize,
    /// Master seed: the networks' draws and the data order.
    pub seed: u64,
    /// Element type of training.
    pub precision: Precision,
    /// Runs trained at the same time.
    pub workers: usize,
    /// A `--quick` run (recorded in the file).
    pub quick: bool,
}

/// The three runs, in the notebook's order.
pub const RUNS: [(&str, Init); 3] = [
    ("glorot", Init::GlorotUniform),
    (
        "normal",
        Init::Normal {
            mean: 0.0,
            std: 1.0,
        },
    ),
    ("zero", Init::Zero),
];

/// Whether the stored cache key `stored` is `key`, the key of this run: the same text, or
/// the text version 1 wrote for it (the one difference: the training seed, `"seed":"<n>"`
/// now, was the number `"seed":<n>`).
fn same_key(stored: &str, key: &str, seed: u64) -> bool {
    stored == key
        || stored
            == key.replacen(
                &format!("\"seed\":\"{seed}\""),
                &format!("\"seed\":{seed}"),
                1,
            )
}

/// The notebook's network `784-hidden-hidden-10` with sigmoid outputs and binary cross-entropy.
pub fn model_config(hidden: usize, activation: Activation, init: Init) -> ModelConfig {
    ModelConfig {
        layers: vec![
            glorot_mnist::PIXELS,
            hidden,
            hidden,
            glorot_mnist::NUM_CLASSES,
        ],
        activation,
        head: Head::SigmoidBce,
        init,
    }
}

/// Runs Part 1 and writes `part1.json` (and the per-run cache) under `out`.
///
/// # Errors
/// When a run fails or stops before its end (the other runs still finish and are
/// cached), or a results file cannot be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &Part1Options,
    ctx: &RunContext,
    notebook: &Notebook,
    observer: &dyn Observer,
) -> Result<Part1File> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let train = TrainConfig {
        epochs: options.epochs,
        batch_size: 32,
        learning_rate: 0.01,
        seed: options.seed,
        shuffle: Shuffle::EveryEpoch,
        precision: options.precision,
        arithmetic: Arithmetic::Fast,
        ..TrainConfig::default()
    };
    let valid_train = train.validate()?;
    let cache_dir = out.join("part1");
    let mut jobs = Vec::new();
    let mut cached = Vec::new();
    for (name, init) in RUNS {
        let model = model_config(500, Activation::Tanh, init);
        let key = serde_json::to_string(&(&model, &train, data.description()))
            .map_err(|e| Error::json("serializing Part 1's cache key", e))?;
        let path = cache_dir.join(format!("{name}.json"));
        match read_json::<CachedRun>(&path)? {
            Some(c) if reads_version(c.schema_version) && same_key(&c.key, &key, train.seed) => {
                cached.push((name, c.report));
            }
            _ => jobs.push((name, model, key, path)),
        }
    }
    let units_per_epoch = epoch_units(
        &model_config(500, Activation::Tanh, Init::Zero).layers,
        data.info.train,
        data.info.validation,
    );
    let progress = Progress::new(
        "part 1",
        units_per_epoch * options.epochs as f64 * jobs.len() as f64,
        observer,
    );
    for (name, _) in &cached {
        progress.note(&format!("{name}: reusing part1/{name}.json"));
    }
    let results = match options.precision {
        Precision::F32 => train_jobs::<f32>(
            &jobs,
            data,
            &valid_train,
            options,
            &progress,
            units_per_epoch,
        ),
        Precision::F64 => train_jobs::<f64>(
            &jobs,
            data,
            &valid_train,
            options,
            &progress,
            units_per_epoch,
        ),
    };
    progress.finish();
    let mut fresh = Vec::new();
    for ((name, ..), result) in jobs.iter().zip(results) {
        fresh.push((
            *name,
            result.with_context(|| format!("Part 1, {name} run"))?,
        ));
    }

    let mut runs = Vec::new();
    for (i, (name, init)) in RUNS.iter().enumerate() {
        let (report, was_cached) = if let Some((_, r)) = cached.iter().find(|(n, _)| n == name) {
            (r.clone(), true)
        } else {
            let (_, r) = fresh.iter().find(|(n, _)| n == name).expect("run");
            (r.clone(), false)
        };
        let notebook_final = notebook.part1.runs[i]
            .epochs
            .last()
            .map_or(f64::NAN, |e| e.val_accuracy.value());
        runs.push(Part1Run {
            name: (*name).to_owned(),
            init: *init,
            final_val_accuracy: report.final_val_accuracy(),
            report,
            notebook_final_val_accuracy: notebook_final,
            cached: was_cached,
        });
    }
    let model = model_config(500, Activation::Tanh, Init::GlorotUniform).validate()?;
    let file = Part1File {
        schema_version: SCHEMA_VERSION,
        part: "part1".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            options.precision,
            Seeds::master(options.seed),
            &data.info,
        ),
        quick: options.quick,
        layers: model.layers().to_vec(),
        activation: Activation::Tanh,
        head: Head::SigmoidBce,
        train,
        parameters: model.num_parameters(),
        notebook_parameters: notebook.parameter_count.notebook_count,
        notebook_parameters_bug: "the notebook's num_parameters() adds each layer's fan_in \
                                  (784 + 500 + 500) as its bias count; biases have fan_out \
                                  entries (500 + 500 + 10)"
            .to_owned(),
        runs,
    };
    write_json(&out.join("part1.json"), &file)?;
    Ok(file)
}

type Job = (&'static str, ModelConfig, String, std::path::PathBuf);

/// Trains the jobs on `options.workers` threads (data converted to `F` once), writing
/// each run's cache file as soon as it finishes.
fn train_jobs<F: Compute>(
    jobs: &[Job],
    data: &Data,
    train: &glorot_mlp::ValidTrainConfig,
    options: &Part1Options,
    progress: &Progress<'_>,
    units: f64,
) -> Vec<Result<TrainReport>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let splits = Splits::<F>::new(&data.mnist);
    run_pool(jobs, options.workers, |(name, model, key, path)| {
        let model = model.validate()?;
        let mut observer = EpochProgress {
            progress,
            label: format!("{name} init"),
            epochs: options.epochs,
            units,
        };
        let mlp = Mlp::<F>::new(model, WeightSource::Seed(train.seed()))?;
        let mut trainer = Trainer::new(mlp, train.clone())?;
        let report = trainer.fit(&splits.fit(true)?, &mut observer)?;
        if let glorot_mlp::Status::Cancelled { epoch } = report.status {
            return Err(Error::Incomplete(format!(
                "stopped in epoch {epoch} (not recorded; it reruns next time)"
            )));
        }
        let record = CachedRun {
            schema_version: SCHEMA_VERSION,
            key: key.clone(),
            report: report.clone(),
        };
        write_json(path, &record)?;
        Ok(report)
    })
}

/// Reports each finished epoch to a [`Progress`].
pub(crate) struct EpochProgress<'a> {
    pub(crate) progress: &'a Progress<'a>,
    pub(crate) label: String,
    pub(crate) epochs: usize,
    pub(crate) units: f64,
}

impl glorot_mlp::Observer for EpochProgress<'_> {
    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        self.progress.advance(
            self.units,
            &format!(
                "{} epoch {}/{}: loss {:.4}, validation {:.2}%",
                self.label, m.epoch, self.epochs, m.train_loss, m.val_accuracy
            ),
        );
    }

    fn should_stop(&self) -> bool {
        self.progress.should_stop()
    }
}

impl std::fmt::Debug for EpochProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochProgress")
            .field("label", &self.label)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Part 1 cache written by version 1 (the training seed a JSON number) is still this
    /// run's cache; another seed's is not.
    #[test]
    fn a_version_1_cache_key_still_matches() {
        let model = model_config(500, Activation::Tanh, Init::GlorotUniform);
        let train = TrainConfig {
            epochs: 2,
            seed: 0,
            ..TrainConfig::default()
        };
        let key = serde_json::to_string(&(&model, &train, "data")).unwrap();
        // What version 1 wrote for this run (results/part1/glorot.json's key, with the
        // `arithmetic` field that files written since it exists have, and 2 epochs).
        let v1 = r#"[{"layers":[784,500,500,10],"activation":"tanh","head":"sigmoid_bce","init":{"kind":"glorot_uniform"}},{"epochs":2,"batch_size":32,"learning_rate":0.01,"seed":0,"shuffle":"every_epoch","precision":"f32","arithmetic":"fast"},"data"]"#;
        assert!(key.contains(r#""seed":"0""#), "{key}");
        assert!(same_key(&key, &key, 0));
        assert!(same_key(v1, &key, 0));
        let other = TrainConfig { seed: 1, ..train };
        let other_key = serde_json::to_string(&(&model, &other, "data")).unwrap();
        assert!(!same_key(v1, &other_key, 1));
        assert!(!same_key(&key, &other_key, 1));
    }
}
