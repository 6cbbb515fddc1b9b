//! Part 2: the hyperparameter grid through glorot-search. The journal lives in
//! `part2/` (one JSON per finished trial), so a rerun continues where the last one
//! stopped; the best trial is retrained from its seed once to measure test accuracy.

use std::path::Path;
use std::time::{Instant, SystemTime};

use glorot_mlp::{Activation, EpochMetrics, Precision};
use glorot_search::{
    BestTest, GridSpec, Journal, RunOptions, SearchContext, SearchData, SearchObserver, Shard,
    Summary, TestEvaluation, Trial, TrialRecord, TrialStatus, ValidGrid, summary::Ranked,
};
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::reference::Notebook;
use crate::support::{RunContext, RunManifest, SCHEMA_VERSION, Seeds, write_json};

/// `part2.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part2File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part2"`.
    pub part: String,
    /// Where and how the file was produced.
    pub manifest: RunManifest,
    /// `true` for a `--quick` run (a subset of the data, the quick grid).
    pub quick: bool,
    /// The grid that ran (axes, master seed, shuffle).
    pub grid: GridSpec,
    /// Where the journal and its merged forms are, relative to this file.
    pub journal_dir: String,
    /// The CSV of the trials (`part2/trials.csv`), relative to this file.
    pub csv: String,
    /// Trials in the grid.
    pub total: usize,
    /// Trials with a final record (ok or diverged).
    pub finished: usize,
    /// Of those, diverged (non-finite loss; they never rank above a finished trial).
    pub diverged: usize,
    /// Trials recorded as failed (rerun next time).
    pub failed: usize,
    /// Trials without a final record.
    pub missing: usize,
    /// What this invocation did: trials skipped (already in the journal), run now.
    pub skipped_now: usize,
    /// Trials run and recorded by this invocation.
    pub recorded_now: usize,
    /// Sum of the trials' own wall times, seconds.
    pub trial_seconds_total: f64,
    /// The best trial by final validation accuracy (first in grid order on ties, as the
    /// notebook's strict `>`).
    pub best: Option<Ranked>,
    /// The best trial retrained from its seed and evaluated once on the test split.
    pub best_test: Option<TestEvaluation>,
    /// The notebook's best: 98.22 with 550 units, ReLU, lr 0.1, batch 32.
    pub notebook_best: NotebookBest,
    /// One row per grid trial, in grid order (also in the CSV).
    pub trials: Vec<TrialRow>,
}

/// The notebook's reported best configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotebookBest {
    /// The notebook's best final validation accuracy (98.22).
    pub val_accuracy: f64,
    /// Its hidden width (550).
    pub hidden: usize,
    /// Its activation (ReLU).
    pub activation: Activation,
    /// Its learning rate (0.1).
    pub learning_rate: f64,
    /// Its batch size (32).
    pub batch_size: usize,
    /// Its index in the notebook's loop order (60).
    pub trial_index: usize,
}

/// A grid trial's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRow {
    /// Index in grid order.
    pub index: usize,
    /// The trial's id (configuration and hash).
    pub id: String,
    /// Hidden width.
    pub hidden: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Learning rate.
    pub learning_rate: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// Element type of training.
    pub precision: Precision,
    /// The trial's seed, derived from the master seed and the id (a decimal string since
    /// version 2; a number before).
    #[serde(with = "glorot_mlp::seed_text")]
    pub seed: u64,
    /// `ok`, `diverged`, `failed` or `missing`.
    pub status: String,
    /// The epoch whose loss was not finite, for a diverged trial.
    pub diverged_epoch: Option<usize>,
    /// Training loss of the last epoch.
    pub final_train_loss: Option<f64>,
    /// Validation accuracy after the last epoch (`null` when diverged or not finite).
    pub final_val_accuracy: Option<f64>,
    /// Validation accuracy after each finished epoch.
    pub val_accuracy: Vec<f64>,
    /// Wall seconds of the trial.
    pub seconds: Option<f64>,
}

/// What Part 2 runs.
#[derive(Clone, Debug)]
pub struct Part2Options {
    /// The grid, validated.
    pub grid: ValidGrid,
    /// Trials trained at the same time.
    pub workers: usize,
    /// A `--quick` run (recorded in the file).
    pub quick: bool,
}

/// Runs the grid (resuming), merges, tests the best, writes `part2.json`.
///
/// # Errors
/// When the journal belongs to another search, a trial cannot be recorded, or a
/// results file cannot be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &Part2Options,
    ctx: &RunContext,
    notebook: &Notebook,
    observer: &dyn Observer,
) -> Result<Part2File> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let grid = &options.grid;
    let dir = out.join("part2");
    let description = data.description();
    let journal = Journal::open(
        &dir,
        &SearchContext {
            master_seed: grid.spec().master_seed,
            data: description.clone(),
        },
    )
    .with_context(|| {
        format!(
            "opening the Part 2 journal {} (a journal from another seed or other data \
             is never mixed in: use another --out, or delete that directory to start over)",
            dir.display()
        )
    })?;
    let m = &data.mnist;
    let search_data = SearchData::new(
        m.train.images.clone(),
        glorot_tensor::one_hot::<f32>(&m.train.labels, glorot_mnist::NUM_CLASSES),
        m.validation.images.clone(),
        m.validation.labels.clone(),
        description.clone(),
    )
    .with_test(m.test.images.clone(), m.test.labels.clone());

    let trials = grid.trials();
    let units = |t: &Trial| {
        let mut layers = vec![glorot_mnist::PIXELS];
        layers.extend(&t.config.hidden);
        layers.push(glorot_mnist::NUM_CLASSES);
        epoch_units(&layers, data.info.train, data.info.validation)
    };
    let mut pending_units = 0.0;
    for t in &trials {
        // An unreadable record is not done: the run moves it aside and trains the trial.
        let done = match journal.read_file(&t.id)? {
            glorot_search::RecordFile::Record(r) => r.status.is_final() && r.seed == t.seed,
            _ => false,
        };
        if !done {
            pending_units += units(t) * t.config.epochs as f64;
        }
    }
    let grid_progress = GridProgress {
        progress: Progress::new("part 2", pending_units, observer),
        total: trials.len(),
        units: &units,
    };
    let outcome = glorot_search::run(
        grid,
        &search_data,
        &journal,
        &ctx.machine,
        RunOptions {
            workers: options.workers,
            shard: Shard::ALL,
        },
        &grid_progress,
    )?;
    grid_progress.progress.finish();

    let records = journal.records()?;
    let summary = Summary::merge(grid, &records);
    summary.write(&dir, &records)?;
    let best_test = match &summary.best {
        Some(best) => test_best(
            &dir,
            best,
            &trials,
            &records,
            &search_data,
            &description,
            observer,
        )?,
        None => None,
    };
    let nb = &notebook.part2.best;
    let rows = trials
        .iter()
        .map(|t| row(t, records.iter().find(|r| r.id == t.id)))
        .collect::<Vec<_>>();
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let file = Part2File {
        schema_version: SCHEMA_VERSION,
        part: "part2".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            grid.spec()
                .precision
                .first()
                .copied()
                .unwrap_or(Precision::F32),
            Seeds::master(grid.spec().master_seed),
            &data.info,
        ),
        quick: options.quick,
        grid: grid.spec().clone(),
        journal_dir: "part2".to_owned(),
        csv: "part2/trials.csv".to_owned(),
        total: summary.total,
        finished: summary.finished,
        diverged: count("diverged"),
        failed: count("failed"),
        missing: summary.missing.len(),
        skipped_now: outcome.skipped,
        recorded_now: outcome.recorded,
        trial_seconds_total: summary.trial_seconds_total,
        best: summary.best.clone(),
        best_test,
        notebook_best: NotebookBest {
            val_accuracy: nb.val_accuracy.value(),
            hidden: nb.hidden,
            activation: activation_from_notebook(&nb.activation)?,
            learning_rate: nb.learning_rate.value(),
            batch_size: nb.batch_size,
            trial_index: nb.trial,
        },
        trials: rows,
    };
    write_json(&out.join("part2.json"), &file)?;
    if summary.finished < summary.total {
        grid_progress.progress.note(&format!(
            "{} of {} trials finished; run the same command again to continue",
            summary.finished, summary.total
        ));
    }
    Ok(file)
}

/// The notebook's activation names (`ReLU`, `sigmoid`, `tanh`).
pub fn activation_from_notebook(name: &str) -> Result<Activation> {
    match name.to_ascii_lowercase().as_str() {
        "relu" => Ok(Activation::Relu),
        "sigmoid" => Ok(Activation::Sigmoid),
        "tanh" => Ok(Activation::Tanh),
        other => Err(Error::Reference(format!(
            "unknown activation `{other}` in the notebook reference"
        ))),
    }
}

fn row(t: &Trial, r: Option<&TrialRecord>) -> TrialRow {
    let (status, diverged_epoch) = match r.map(|r| &r.status) {
        Some(TrialStatus::Ok) => ("ok", None),
        Some(TrialStatus::Diverged { epoch }) => ("diverged", Some(*epoch)),
        Some(_) => ("failed", None),
        None => ("missing", None),
    };
    TrialRow {
        index: t.index,
        id: t.id.to_string(),
        hidden: t.config.hidden.first().copied().unwrap_or(0),
        activation: t.config.activation,
        learning_rate: t.config.learning_rate,
        batch_size: t.config.batch_size,
        epochs: t.config.epochs,
        precision: t.config.precision,
        seed: t.seed,
        status: status.to_owned(),
        diverged_epoch,
        final_train_loss: r.and_then(|r| r.final_train_loss),
        final_val_accuracy: r
            .and_then(|r| r.final_val_accuracy)
            .filter(|a| a.is_finite()),
        val_accuracy: r
            .map(|r| {
                r.epochs
                    .iter()
                    .map(|e: &EpochMetrics| e.val_accuracy)
                    .collect()
            })
            .unwrap_or_default(),
        seconds: r.map(|r| r.timings.seconds),
    }
}

/// Retrains the best trial once with the test split (cached by trial, seed and data).
fn test_best(
    dir: &Path,
    best: &Ranked,
    trials: &[Trial],
    records: &[TrialRecord],
    data: &SearchData,
    description: &str,
    observer: &dyn Observer,
) -> Result<Option<TestEvaluation>> {
    let Some(trial) = trials.iter().find(|t| t.id == best.id) else {
        return Ok(None);
    };
    let key = BestTest::key(trial, description);
    if let Some(c) = BestTest::read(dir)?
        && c.key == key
    {
        return Ok(c.evaluation);
    }
    observer.message(&format!(
        "[part 2] retraining the best trial ({}) from its seed to measure test accuracy",
        trial.id
    ));
    let record = records.iter().find(|r| r.id == trial.id);
    let evaluation = glorot_search::evaluate_on_test(trial, data, record)?;
    BestTest {
        key,
        evaluation: evaluation.clone(),
    }
    .write(dir)?;
    Ok(evaluation)
}

/// Forwards search events to a [`Progress`] line: trial, epoch, ETA.
struct GridProgress<'a> {
    progress: Progress<'a>,
    total: usize,
    units: &'a (dyn Fn(&Trial) -> f64 + Sync),
}

impl SearchObserver for GridProgress<'_> {
    fn on_plan(&self, in_shard: usize, already_done: usize) {
        self.progress.note(&format!(
            "{}, {already_done} already in the journal, {} to run",
            crate::count(in_shard, "trial", "trials"),
            in_shard - already_done
        ));
    }

    fn on_epoch(&self, trial: &Trial, m: &EpochMetrics) {
        self.progress.advance(
            (self.units)(trial),
            &format!(
                "trial {}/{} {} epoch {}/{}: loss {:.4}, validation {:.2}%",
                trial.index + 1,
                self.total,
                trial.id,
                m.epoch,
                trial.config.epochs,
                m.train_loss,
                m.val_accuracy
            ),
        );
    }

    fn on_trial_end(&self, record: &TrialRecord) {
        let what = match &record.status {
            TrialStatus::Ok => format!(
                "final validation {:.2}%",
                record.final_val_accuracy.unwrap_or(f64::NAN)
            ),
            TrialStatus::Diverged { epoch } => format!("diverged in epoch {epoch}"),
            TrialStatus::Failed { message } => format!("failed: {message}"),
        };
        if !matches!(record.status, TrialStatus::Ok) {
            self.progress
                .note(&format!("trial {} {}: {what}", record.index + 1, record.id));
        }
    }

    fn should_stop(&self) -> bool {
        self.progress.should_stop()
    }
}

impl std::fmt::Debug for GridProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GridProgress")
            .field("total", &self.total)
            .finish()
    }
}
