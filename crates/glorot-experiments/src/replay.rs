//! The notebook, replayed bit for bit: one NumPy generator seeded with 5 for the whole
//! run, consumed in the notebook's cell order; `f64`; no shuffling; the last partial
//! batch kept. Then every number the notebook printed is compared with the replay.
//!
//! Draw order (each network's weights, layer by layer; biases draw nothing):
//!
//! 1. Part 1: Glorot (uniform), normal (normal), zero (nothing): 784-500-500-10.
//! 2. Part 2: the 135 grid trials in loop order (hidden, activation, learning rate,
//!    batch size), each a fresh Glorot 784-h-h-10 network.
//! 3. Part 3: one fresh Glorot 784-500-500-10 network per cell.
//!
//! Because uniform draws never touch the gauss cache and normal draws form one stream,
//! the generator state at the start of any network is reached by skipping the earlier
//! networks' draws ([`RandomState::skip_uniform`], [`RandomState::skip_normal`]) without
//! training them. So parts and trials replay alone, in parallel, and resume: each
//! finished run is a file under `replay/`, reused on the next invocation.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use glorot_mlp::{
    Activation, Arithmetic, Init, Mlp, Precision, Shuffle, Status, TrainConfig, Trainer,
    WeightSource,
};
use glorot_tensor::numpy_rng::{MtState, RandomState};
use serde::{Deserialize, Serialize};

use crate::data::{Data, Splits};
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::part1::{EpochProgress, model_config};
use crate::part2::activation_from_notebook;
use crate::part3::{CELLS, Part3Cell, check_cell, example0, notebook_prints};
use crate::pyfmt::py_repr;
use crate::reference::{MatchKind, Notebook};
use crate::support::{
    RunContext, RunManifest, SCHEMA_VERSION, Seeds, read_json, reads_version, run_pool, write_json,
};

/// `np.random.seed(5)`.
pub const NUMPY_SEED: u32 = 5;
/// Part 1 and Part 3's hidden width.
const WIDTH: usize = 500;

/// Loss tolerance (relative) for Part 1, Part 3's gradients, and Part 2's lines.
pub const TOL_PART1: f64 = 1e-9;
/// Relative tolerance of Part 2's printed lines (they print 4 to 6 digits).
pub const TOL_GRID: f64 = 1e-6;
/// Relative tolerance of Part 3's printed derivatives.
pub const TOL_PART3: f64 = 1e-9;

/// What to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Parts to replay now (1, 2, 3).
    pub parts: Vec<u8>,
    /// Grid trials to replay now (`None`: all 135).
    pub trials: Option<Vec<usize>>,
    /// Epochs per run (the notebook's 10; fewer for a quick check).
    pub epochs: usize,
    /// Runs replayed at the same time.
    pub workers: usize,
}

/// `replay.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayFile {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"replay"`.
    pub part: String,
    /// Where and how the file was produced.
    pub manifest: RunManifest,
    /// NumPy's seed (5).
    pub numpy_seed: u32,
    /// Epochs requested by this invocation.
    pub epochs_requested: usize,
    /// Parts replayed by this invocation; the file holds every replayed run found under
    /// `replay/` (earlier invocations included).
    pub parts_now: Vec<u8>,
    /// Grid trials trained by this invocation.
    pub trials_now: Vec<usize>,
    /// Part 1's replayed runs.
    pub part1: Vec<ReplayRun>,
    /// Part 2's replayed trials and best.
    pub part2: ReplayPart2,
    /// Part 3's replayed checks, when replayed.
    pub part3: Option<Vec<Part3Cell>>,
    /// Every printed number compared with its replay.
    pub comparison: Comparison,
    /// Wall time of the replayed runs (their own timings, however many invocations they
    /// took), seconds.
    pub seconds: ReplaySeconds,
}

/// Wall seconds of each part's replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplaySeconds {
    /// Part 1.
    pub part1: f64,
    /// Part 2.
    pub part2: f64,
    /// Part 3.
    pub part3: f64,
}

/// One replayed training run (a Part 1 initialization or a grid trial), as stored in
/// `replay/part1-<name>.json` or `replay/trials/trial-<index>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayRun {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The data it trained on (sizes and digests); records of other data are ignored.
    pub data: String,
    /// `glorot`, `normal`, `zero`, or `trial <index>`.
    pub name: String,
    /// Grid index (loop order) for a grid trial.
    pub trial: Option<usize>,
    /// Hidden width.
    pub hidden: usize,
    /// Hidden activation.
    pub activation: Activation,
    /// Learning rate.
    pub learning_rate: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Initializer (drawn from NumPy's generator).
    pub init: Init,
    /// How the run ended (a non-finite loss ends it as diverged).
    pub status: Status,
    /// The replayed epochs.
    pub epochs: Vec<ReplayEpoch>,
    /// Wall seconds of the run.
    pub seconds: f64,
    /// The source revision that replayed it.
    pub git_revision: String,
}

/// One replayed epoch: the two numbers the notebook prints, with Python's `repr`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training loss.
    pub loss: f64,
    /// `repr(loss)`, what the notebook's `print("loss ", current_loss)` shows.
    pub loss_text: String,
    /// Validation accuracy, percent.
    pub val_accuracy: f64,
    /// Python's `repr` of the accuracy, as the notebook prints it.
    pub val_accuracy_text: String,
    /// Validation loss.
    pub val_loss: f64,
}

/// Part 2 of the replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplayPart2 {
    /// Replayed trials, in grid order.
    pub trials: Vec<ReplayRun>,
    /// Whether all 135 trials were replayed with every epoch (needed for the best).
    pub complete: bool,
    /// The best trial as the notebook's loop picks it (strict `>`: the first maximum of
    /// the final validation accuracy), when complete.
    pub best: Option<ReplayBest>,
    /// The notebook's surviving output fragments, located in the replayed line stream.
    pub fragments: Vec<FragmentResult>,
}

/// The best replayed trial, as the notebook's loop picks it (strict `>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayBest {
    /// Its index in the loop order.
    pub trial: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Activation.
    pub activation: Activation,
    /// Learning rate.
    pub learning_rate: f64,
    /// Batch size.
    pub batch_size: usize,
    /// Final validation accuracy.
    pub val_accuracy: f64,
    /// Python's `repr` of it.
    pub val_accuracy_text: String,
}

/// Where one of the notebook's output fragments sits in the replayed stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FragmentResult {
    /// The fragment's index in the reference.
    pub fragment: usize,
    /// Notebook lines.
    pub first_line: usize,
    /// Its last notebook line.
    pub last_line: usize,
    /// Numbers in the fragment (cut labels excluded).
    pub numbers: usize,
    /// Position of its first line in the 2,700-line stream (`trial * 20 + (epoch - 1) * 2`,
    /// `+ 1` for an accuracy line); `null` when it could not be located.
    pub stream_offset: Option<usize>,
    /// `reference` (known from the notebook: fragment 0 starts the output), `search`
    /// (the unique best-matching position), or `not located`.
    pub located_by: String,
    /// Trial and epoch of its first line.
    pub trial: Option<usize>,
    /// Epoch of its first line.
    pub epoch: Option<usize>,
    /// Numbers compared.
    pub compared: usize,
    /// Numbers within tolerance.
    pub matched: usize,
}

/// The replay against the notebook's printed numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Comparison {
    /// One entry per section of the notebook's numbers.
    pub sections: Vec<Section>,
    /// Totals over the sections.
    pub numbers: usize,
    /// Numbers with a replayed counterpart.
    pub compared: usize,
    /// Compared numbers within tolerance.
    pub matched: usize,
    /// Compared numbers whose replayed `repr` is the printed text.
    pub identical_text: usize,
    /// Every compared number outside its tolerance.
    pub mismatches: Vec<Deviation>,
    /// The compared numbers with the largest relative deviation (up to 10).
    pub largest_deviations: Vec<Deviation>,
}

/// One section of the notebook's numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Section {
    /// `part1`, `part2_lines`, `part2_best`, `part3`.
    pub name: String,
    /// Numbers the notebook printed in this section.
    pub numbers: usize,
    /// Numbers with a replayed counterpart.
    pub compared: usize,
    /// Compared numbers within tolerance.
    pub matched: usize,
    /// Compared numbers whose replayed `repr` is the printed text, character for character.
    pub identical_text: usize,
    /// The tolerance applied, in words.
    pub tolerance: String,
    /// Largest relative deviation among the compared numbers.
    pub max_rel_deviation: Option<f64>,
}

/// One compared number.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deviation {
    /// The section (`part1`, `part2_lines`, `part2_best`, `part3`).
    pub section: String,
    /// Line in `notebook.txt`.
    pub line: Option<usize>,
    /// What it is (`glorot epoch 3 loss`, `trial 60 epoch 10 validation accuracy`, ...).
    pub place: String,
    /// The printed text.
    pub expected: String,
    /// The replayed text (Python's `repr`).
    pub found: String,
    /// `|found - expected| / |expected|` (0 when both are 0); `null` when not finite
    /// (a non-zero value where the notebook printed 0, or a configuration mismatch).
    pub rel_error: Option<f64>,
    /// Whether it is within tolerance.
    pub matched: bool,
}

/// A grid trial of the notebook's Part 2, in loop order.
#[derive(Clone, Copy, Debug)]
pub struct GridTrial {
    /// Index in the loop order.
    pub index: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Activation.
    pub activation: Activation,
    /// Learning rate.
    pub learning_rate: f64,
    /// Batch size.
    pub batch_size: usize,
}

/// The notebook's 135 trials in its loop order.
pub fn grid_trials(nb: &Notebook) -> Result<Vec<GridTrial>> {
    let spec = &nb.part2.spec;
    let mut out = Vec::new();
    for &hidden in &spec.hidden {
        for a in &spec.activation {
            let activation = activation_from_notebook(a)?;
            for &learning_rate in &spec.learning_rate {
                for &batch_size in &spec.batch_size {
                    out.push(GridTrial {
                        index: out.len(),
                        hidden,
                        activation,
                        learning_rate,
                        batch_size,
                    });
                }
            }
        }
    }
    if out.len() != spec.trials {
        return Err(Error::Reference(format!(
            "the notebook's grid has {} trials, expected {}",
            out.len(),
            spec.trials
        )));
    }
    Ok(out)
}

/// A network of the notebook, in draw order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Part 1's run 0 (Glorot), 1 (normal), 2 (zero).
    Part1(usize),
    /// A grid trial.
    Trial(usize),
    /// A Part 3 cell.
    Part3(usize),
}

/// Uniform draws of a Glorot `784-h-h-10` network (`fan_in * fan_out` per layer).
pub fn glorot_draws(hidden: usize) -> usize {
    glorot_mnist::PIXELS * hidden + hidden * hidden + hidden * glorot_mnist::NUM_CLASSES
}

/// Every network of the notebook in draw order, with the generator state at its start.
/// States are computed by skipping draws, up to and including `last`.
pub fn generator_states(grid: &[GridTrial], last: Net) -> Vec<(Net, MtState)> {
    let mut nets: Vec<Net> = (0..3).map(Net::Part1).collect();
    nets.extend(grid.iter().map(|t| Net::Trial(t.index)));
    nets.extend((0..CELLS.len()).map(Net::Part3));
    let mut rs = RandomState::new(NUMPY_SEED);
    let mut out = Vec::new();
    for net in nets {
        out.push((net, rs.state()));
        if net == last {
            break;
        }
        match net {
            Net::Part1(0) => rs.skip_uniform(glorot_draws(WIDTH)),
            // `np.random.normal(scale=1, size=...)`: the same count, from the normal stream.
            Net::Part1(1) => rs.skip_normal(glorot_draws(WIDTH)),
            Net::Part1(_) => {} // zeros draw nothing
            Net::Trial(i) => rs.skip_uniform(glorot_draws(grid[i].hidden)),
            Net::Part3(_) => rs.skip_uniform(glorot_draws(WIDTH)),
        }
    }
    out
}

fn state_of(states: &[(Net, MtState)], net: Net) -> Result<RandomState> {
    let (_, s) = states
        .iter()
        .find(|(n, _)| *n == net)
        .with_context(|| format!("no generator state for {net:?}"))?;
    RandomState::from_state(s).map_err(|e| Error::Reference(format!("generator state: {e}")))
}

/// A training job: a Part 1 run or a grid trial.
#[derive(Clone, Debug)]
struct Job {
    net: Net,
    name: String,
    hidden: usize,
    activation: Activation,
    learning_rate: f64,
    batch_size: usize,
    init: Init,
    path: PathBuf,
}

const PART1_RUNS: [(&str, Init); 3] = crate::part1::RUNS;

fn part1_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("part1-{name}.json"))
}

fn trial_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("trials").join(format!("trial-{index:03}.json"))
}

/// Reads a cached run made on `data` with at least `epochs` epochs (or ended early by
/// divergence).
fn cached_run(path: &Path, data: &str, epochs: Option<usize>) -> Result<Option<ReplayRun>> {
    Ok(read_json::<ReplayRun>(path)?.filter(|r| {
        reads_version(r.schema_version)
            && r.data == data
            && epochs.is_none_or(|e| r.epochs.len() >= e || r.status != Status::Completed)
    }))
}

/// Runs the replay and writes `replay.json` (runs under `replay/`).
///
/// # Errors
/// When the data is a subset, a trial index is outside the grid, a run fails, or a
/// results file cannot be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &ReplayOptions,
    ctx: &RunContext,
    nb: &Notebook,
    observer: &dyn Observer,
) -> Result<ReplayFile> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let dir = out.join("replay");
    let grid = grid_trials(nb)?;
    let description = data.description();
    if data.info.subset {
        return Err(Error::Replay(
            "the replay needs the full training and validation splits".to_owned(),
        ));
    }
    let selected_trials: Vec<usize> = match &options.trials {
        Some(t) => {
            if let Some(bad) = t.iter().find(|&&i| i >= grid.len()) {
                return Err(Error::Replay(format!(
                    "--replay-trials: trial {bad} is not in the grid (0..{})",
                    grid.len()
                )));
            }
            t.clone()
        }
        None => (0..grid.len()).collect(),
    };

    // Jobs not already cached.
    let mut jobs = Vec::new();
    if options.parts.contains(&1) {
        for (i, (name, init)) in PART1_RUNS.iter().enumerate() {
            let path = part1_path(&dir, name);
            if cached_run(&path, &description, Some(options.epochs))?.is_none() {
                jobs.push(Job {
                    net: Net::Part1(i),
                    name: (*name).to_owned(),
                    hidden: WIDTH,
                    activation: Activation::Tanh,
                    learning_rate: 0.01,
                    batch_size: 32,
                    init: *init,
                    path,
                });
            }
        }
    }
    if options.parts.contains(&2) {
        for &i in &selected_trials {
            let path = trial_path(&dir, i);
            if cached_run(&path, &description, Some(options.epochs))?.is_none() {
                let t = grid[i];
                jobs.push(Job {
                    net: Net::Trial(i),
                    name: format!("trial {i}"),
                    hidden: t.hidden,
                    activation: t.activation,
                    learning_rate: t.learning_rate,
                    batch_size: t.batch_size,
                    init: Init::GlorotUniform,
                    path,
                });
            }
        }
    }
    let last = if options.parts.contains(&3) {
        Net::Part3(CELLS.len() - 1)
    } else {
        jobs.last().map_or(Net::Part1(0), |j| j.net)
    };
    let states = generator_states(&grid, last);

    if !jobs.is_empty() {
        let total: f64 = jobs
            .iter()
            .map(|j| {
                epoch_units(
                    &model_config(j.hidden, j.activation, j.init).layers,
                    data.info.train,
                    data.info.validation,
                ) * options.epochs as f64
            })
            .sum();
        let progress = Progress::new("replay", total, observer);
        progress.note(&format!(
            "{} to replay ({} each, f64, no shuffling, {} at a time)",
            crate::count(jobs.len(), "run", "runs"),
            crate::count(options.epochs, "epoch", "epochs"),
            options.workers.min(jobs.len())
        ));
        let splits = Splits::<f64>::new(&data.mnist);
        let results = run_pool(&jobs, options.workers, |job| {
            train_job(
                job,
                &states,
                &splits,
                options.epochs,
                &description,
                ctx,
                &progress,
            )
        });
        progress.finish();
        for (job, r) in jobs.iter().zip(results) {
            r.with_context(|| format!("replaying {}", job.name))?;
        }
    }

    // Part 3: cheap, recomputed whenever selected.
    let part3_path = dir.join("part3.json");
    if options.parts.contains(&3) {
        let clock3 = Instant::now();
        let (x, y) = example0(data);
        let config = model_config(WIDTH, Activation::Tanh, Init::GlorotUniform).validate()?;
        let mut cells = Vec::new();
        for (i, &(layer, row)) in CELLS.iter().enumerate() {
            let mut rs = state_of(&states, Net::Part3(i))?;
            let model = Mlp::<f64>::new(config.clone(), WeightSource::NumpyReplay(&mut rs))?;
            let (loss, check) = check_cell(&model, x.view(), y.view(), layer, row)?;
            cells.push(Part3Cell {
                name: format!("w{layer} row {row}"),
                loss,
                check,
                notebook: notebook_prints(nb, i),
            });
        }
        let cached = CachedPart3 {
            schema_version: SCHEMA_VERSION,
            data: description.clone(),
            cells,
            seconds: clock3.elapsed().as_secs_f64(),
        };
        write_json(&part3_path, &cached)?;
        observer.message(&format!(
            "[replay] Part 3: three gradient checks in {:.1}s",
            cached.seconds
        ));
    }

    // Everything replayed so far (this invocation and earlier ones).
    let mut part1 = Vec::new();
    for (name, _) in PART1_RUNS {
        if let Some(r) = cached_run(&part1_path(&dir, name), &description, None)? {
            part1.push(r);
        }
    }
    let mut trials = Vec::new();
    for t in &grid {
        if let Some(r) = cached_run(&trial_path(&dir, t.index), &description, None)? {
            trials.push(r);
        }
    }
    let part3 = read_json::<CachedPart3>(&part3_path)?
        .filter(|c| reads_version(c.schema_version) && c.data == description);

    let epochs_nb = nb.part2.spec.epochs;
    let complete = trials.len() == grid.len()
        && trials
            .iter()
            .all(|r| r.epochs.len() >= epochs_nb || r.status != Status::Completed);
    let best = if complete {
        best_of(&grid, &trials, epochs_nb)
    } else {
        None
    };
    let mut comparison = Comparison::default();
    compare_part1(nb, &part1, &mut comparison);
    compare_parameter_count(nb, &mut comparison);
    let fragments = compare_grid(nb, &trials, &mut comparison);
    compare_best(nb, best.as_ref(), complete, &mut comparison);
    compare_part3(
        nb,
        part3.as_ref().map(|c| c.cells.as_slice()),
        &mut comparison,
    );
    comparison.finish();

    let seconds = ReplaySeconds {
        part1: part1.iter().fold(0.0, |a, r| a + r.seconds),
        part2: trials.iter().fold(0.0, |a, r| a + r.seconds),
        part3: part3.as_ref().map_or(0.0, |c| c.seconds),
    };
    let file = ReplayFile {
        schema_version: SCHEMA_VERSION,
        part: "replay".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            Precision::F64,
            Seeds::numpy(NUMPY_SEED),
            &data.info,
        ),
        numpy_seed: NUMPY_SEED,
        epochs_requested: options.epochs,
        parts_now: options.parts.clone(),
        trials_now: jobs
            .iter()
            .filter_map(|j| match j.net {
                Net::Trial(i) => Some(i),
                _ => None,
            })
            .collect(),
        part1,
        part2: ReplayPart2 {
            trials,
            complete,
            best,
            fragments,
        },
        part3: part3.map(|c| c.cells),
        comparison,
        seconds,
    };
    write_json(&out.join("replay.json"), &file)?;
    Ok(file)
}

/// `replay/part3.json`: the replayed gradient checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedPart3 {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The data description it was computed on.
    pub data: String,
    /// The three cells, in the notebook's order.
    pub cells: Vec<Part3Cell>,
    /// Wall seconds.
    pub seconds: f64,
}

fn train_job(
    job: &Job,
    states: &[(Net, MtState)],
    splits: &Splits<'_, f64>,
    epochs: usize,
    description: &str,
    ctx: &RunContext,
    progress: &Progress<'_>,
) -> Result<()> {
    let clock = Instant::now();
    let config = model_config(job.hidden, job.activation, job.init);
    let units = epoch_units(&config.layers, splits.train_x.nrows(), splits.val_x.nrows());
    let mut rs = state_of(states, job.net)?;
    let model = Mlp::<f64>::new(config.validate()?, WeightSource::NumpyReplay(&mut rs))?;
    let train = TrainConfig {
        epochs,
        batch_size: job.batch_size,
        learning_rate: job.learning_rate,
        seed: u64::from(NUMPY_SEED),
        shuffle: Shuffle::Never,
        precision: Precision::F64,
        // Every product through BLAS, as NumPy computes the notebook's.
        arithmetic: Arithmetic::Blas,
        // Plain SGD at a constant rate: the notebook's update.
        ..TrainConfig::default()
    }
    .validate()?;
    let mut trainer = Trainer::new(model, train)?;
    let mut observer = EpochProgress {
        progress,
        label: job.name.clone(),
        epochs,
        units,
    };
    let report = trainer.fit(&splits.fit(false)?, &mut observer)?;
    let run = ReplayRun {
        schema_version: SCHEMA_VERSION,
        data: description.to_owned(),
        name: job.name.clone(),
        trial: match job.net {
            Net::Trial(i) => Some(i),
            _ => None,
        },
        hidden: job.hidden,
        activation: job.activation,
        learning_rate: job.learning_rate,
        batch_size: job.batch_size,
        init: job.init,
        status: report.status,
        epochs: report
            .epochs
            .iter()
            .map(|m| ReplayEpoch {
                epoch: m.epoch,
                loss: m.train_loss,
                loss_text: py_repr(m.train_loss),
                val_accuracy: m.val_accuracy,
                val_accuracy_text: py_repr(m.val_accuracy),
                val_loss: m.val_loss,
            })
            .collect(),
        seconds: clock.elapsed().as_secs_f64(),
        git_revision: ctx.machine.git_revision.clone(),
    };
    if run.status == Status::Completed || matches!(run.status, Status::Diverged { .. }) {
        write_json(&job.path, &run)?;
    }
    Ok(())
}

/// The notebook's selection: the first trial whose final accuracy is strictly above every
/// earlier one (starting from 0).
fn best_of(grid: &[GridTrial], trials: &[ReplayRun], epochs: usize) -> Option<ReplayBest> {
    let mut best: Option<(usize, &ReplayEpoch)> = None;
    for r in trials {
        let Some(i) = r.trial else { continue };
        // A diverged trial's accuracy array keeps zeros in NumPy; it cannot win here.
        let Some(last) = r.epochs.get(epochs - 1) else {
            continue;
        };
        if last.val_accuracy > best.map_or(0.0, |(_, e)| e.val_accuracy) {
            best = Some((i, last));
        }
    }
    best.map(|(i, e)| ReplayBest {
        trial: i,
        hidden: grid[i].hidden,
        activation: grid[i].activation,
        learning_rate: grid[i].learning_rate,
        batch_size: grid[i].batch_size,
        val_accuracy: e.val_accuracy,
        val_accuracy_text: e.val_accuracy_text.clone(),
    })
}

fn rel_error(found: f64, expected: f64) -> f64 {
    if found == expected {
        0.0
    } else if expected == 0.0 {
        f64::INFINITY
    } else {
        (found - expected).abs() / expected.abs()
    }
}

/// Running tallies of one section.
struct Tally {
    section: Section,
}

impl Tally {
    fn new(name: &str, numbers: usize, tolerance: &str) -> Tally {
        Tally {
            section: Section {
                name: name.to_owned(),
                numbers,
                compared: 0,
                matched: 0,
                identical_text: 0,
                tolerance: tolerance.to_owned(),
                max_rel_deviation: None,
            },
        }
    }

    /// Records one comparison; `tol` is relative, `None` for exact equality.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        c: &mut Comparison,
        line: Option<usize>,
        place: String,
        expected_text: &str,
        found: f64,
        tol: Option<f64>,
    ) -> bool {
        let expected = expected_text.parse::<f64>().unwrap_or(f64::NAN);
        let found_text = py_repr(found);
        let rel = rel_error(found, expected);
        let matched = match tol {
            Some(t) => rel <= t,
            None => found == expected,
        };
        self.push(c, line, place, expected_text, found_text, rel, matched);
        matched
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        c: &mut Comparison,
        line: Option<usize>,
        place: String,
        expected_text: &str,
        found_text: String,
        rel: f64,
        matched: bool,
    ) {
        let s = &mut self.section;
        s.compared += 1;
        s.matched += usize::from(matched);
        s.identical_text += usize::from(found_text == expected_text);
        s.max_rel_deviation = Some(s.max_rel_deviation.map_or(rel, |m| m.max(rel)));
        let d = Deviation {
            section: s.name.clone(),
            line,
            place,
            expected: expected_text.to_owned(),
            found: found_text,
            rel_error: Some(rel).filter(|r| r.is_finite()),
            matched,
        };
        if !matched {
            c.mismatches.push(d.clone());
        }
        c.largest_deviations.push(d);
    }

    fn done(self, c: &mut Comparison) {
        c.sections.push(self.section);
    }
}

impl Comparison {
    fn finish(&mut self) {
        self.numbers = self.sections.iter().map(|s| s.numbers).sum();
        self.compared = self.sections.iter().map(|s| s.compared).sum();
        self.matched = self.sections.iter().map(|s| s.matched).sum();
        self.identical_text = self.sections.iter().map(|s| s.identical_text).sum();
        let mut all = std::mem::take(&mut self.largest_deviations);
        all.retain(|d| d.rel_error.is_none_or(|r| r > 0.0));
        let key = |d: &Deviation| d.rel_error.unwrap_or(f64::INFINITY);
        all.sort_by(|a, b| key(b).total_cmp(&key(a)));
        all.truncate(10);
        self.largest_deviations = all;
    }
}

fn compare_part1(nb: &Notebook, runs: &[ReplayRun], c: &mut Comparison) {
    let mut t = Tally::new(
        "part1",
        nb.counts.part1,
        "loss 1e-9 relative, validation accuracy exact",
    );
    for nr in &nb.part1.runs {
        let Some(r) = runs.iter().find(|r| r.name == nr.run) else {
            continue;
        };
        for ne in &nr.epochs {
            let Some(e) = r.epochs.iter().find(|e| e.epoch == ne.epoch) else {
                continue;
            };
            t.add(
                c,
                ne.loss.line,
                format!("{} epoch {} loss", nr.run, ne.epoch),
                &ne.loss.text,
                e.loss,
                Some(TOL_PART1),
            );
            t.add(
                c,
                ne.val_accuracy.line,
                format!("{} epoch {} validation accuracy", nr.run, ne.epoch),
                &ne.val_accuracy.text,
                e.val_accuracy,
                None,
            );
        }
    }
    t.done(c);
}

/// The notebook's `num_parameters()` (In \[5\]), replayed with its bug: it adds each
/// layer's fan_in where the bias count (fan_out) belongs, in Python floats.
pub fn notebook_num_parameters(units: &[usize]) -> f64 {
    let mut pars = 0.0f64;
    for w in units.windows(2) {
        pars += w[0] as f64;
        pars += (w[0] * w[1]) as f64;
    }
    pars / 1_000_000.0
}

fn compare_parameter_count(nb: &Notebook, c: &mut Comparison) {
    let p = &nb.parameter_count;
    let mut t = Tally::new(
        "parameter_count",
        nb.counts.parameter_count,
        "exact (the notebook's formula, bug included)",
    );
    t.add(
        c,
        Some(p.line),
        "num_parameters() in millions".to_owned(),
        &p.value_millions.text,
        notebook_num_parameters(&p.units),
        None,
    );
    t.done(c);
}

/// One line of the replayed output stream: `(value, repr)`.
type StreamLine = Option<(f64, String)>;

fn stream(nb: &Notebook, trials: &[ReplayRun]) -> Vec<StreamLine> {
    let spec = &nb.part2.spec;
    let mut lines: Vec<StreamLine> = vec![None; spec.stream_lines];
    for r in trials {
        let Some(i) = r.trial else { continue };
        for e in &r.epochs {
            if e.epoch == 0 || e.epoch > spec.epochs {
                continue;
            }
            let at = i * spec.lines_per_trial + (e.epoch - 1) * 2;
            if at + 1 < lines.len() {
                lines[at] = Some((e.loss, e.loss_text.clone()));
                lines[at + 1] = Some((e.val_accuracy, e.val_accuracy_text.clone()));
            }
        }
    }
    lines
}

/// Whether a replayed line matches a printed one (the kind of line is checked by the
/// caller through the position's parity).
fn line_matches(l: &crate::reference::FragmentLine, found: &(f64, String)) -> Option<bool> {
    match l.kind {
        MatchKind::None => None,
        MatchKind::Prefix => Some(found.1.starts_with(l.text.as_deref().unwrap_or("\u{0}"))),
        MatchKind::Exact => {
            let expected: f64 = l.text.as_deref()?.parse().ok()?;
            Some(if l.is_loss() {
                rel_error(found.0, expected) <= TOL_GRID
            } else {
                found.0 == expected
            })
        }
    }
}

fn compare_grid(nb: &Notebook, trials: &[ReplayRun], c: &mut Comparison) -> Vec<FragmentResult> {
    let spec = &nb.part2.spec;
    let lines = stream(nb, trials);
    let mut t = Tally::new(
        "part2_lines",
        nb.counts.grid_numbers,
        "loss 1e-6 relative, validation accuracy exact, cut numbers by prefix",
    );
    let mut results = Vec::new();
    for f in &nb.part2.fragments {
        let len = f.lines.len();
        let numbers = f.lines.iter().filter(|l| l.kind != MatchKind::None).count();
        let first_is_loss = f.lines.first().is_some_and(|l| l.is_loss());
        // (loss lines matched, numbers matched, numbers compared) at an offset. Loss
        // values (16-17 digits) identify a position; accuracies (4 digits) recur.
        let score = |offset: usize| -> (usize, usize, usize) {
            let mut s = (0, 0, 0);
            for (k, l) in f.lines.iter().enumerate() {
                let Some(found) = lines.get(offset + k).and_then(|x| x.as_ref()) else {
                    continue;
                };
                let Some(ok) = line_matches(l, found) else {
                    continue;
                };
                s.2 += 1;
                if ok {
                    s.1 += 1;
                    s.0 += usize::from(l.is_loss());
                }
            }
            s
        };
        let (offset, located_by) = match f.stream_offset {
            Some(o) => (Some(o), "reference"),
            None => {
                let mut best: Option<(usize, (usize, usize, usize))> = None;
                let mut tie = false;
                for o in 0..=lines.len().saturating_sub(len) {
                    if (o % 2 == 0) != first_is_loss {
                        continue;
                    }
                    let s = score(o);
                    let key = (s.0, s.1);
                    match best {
                        Some((_, b)) if key == (b.0, b.1) => tie = true,
                        Some((_, b)) if key < (b.0, b.1) => {}
                        _ => {
                            best = Some((o, s));
                            tie = false;
                        }
                    }
                }
                // A location needs a matched loss, a majority of the compared numbers,
                // and no equally good rival.
                match best {
                    Some((o, (losses, matched, compared)))
                        if losses > 0 && 2 * matched >= compared && !tie =>
                    {
                        (Some(o), "search")
                    }
                    _ => (None, "not located"),
                }
            }
        };
        let mut compared = 0;
        let mut matched = 0;
        if let Some(o) = offset {
            for (k, l) in f.lines.iter().enumerate() {
                let at = o + k;
                let Some(found) = lines.get(at).and_then(|x| x.as_ref()) else {
                    continue;
                };
                let Some(ok) = line_matches(l, found) else {
                    continue;
                };
                let trial = at / spec.lines_per_trial;
                let epoch = at % spec.lines_per_trial / 2 + 1;
                let what = if l.is_loss() {
                    "loss"
                } else {
                    "validation accuracy"
                };
                let expected = l.text.clone().unwrap_or_default();
                let place = format!("trial {trial} epoch {epoch} {what}");
                compared += 1;
                matched += usize::from(ok);
                let rel = rel_error(found.0, expected.parse().unwrap_or(f64::NAN));
                let rel = if l.kind == MatchKind::Prefix && ok {
                    0.0
                } else {
                    rel
                };
                t.push(c, Some(l.line), place, &expected, found.1.clone(), rel, ok);
            }
        }
        results.push(FragmentResult {
            fragment: f.fragment,
            first_line: f.first_line,
            last_line: f.last_line,
            numbers,
            stream_offset: offset,
            located_by: located_by.to_owned(),
            trial: offset.map(|o| o / spec.lines_per_trial),
            epoch: offset.map(|o| o % spec.lines_per_trial / 2 + 1),
            compared,
            matched,
        });
    }
    t.done(c);
    results
}

fn compare_best(nb: &Notebook, best: Option<&ReplayBest>, complete: bool, c: &mut Comparison) {
    let mut t = Tally::new(
        "part2_best",
        nb.counts.grid_best,
        "accuracy exact; configuration equal (needs all 135 trials)",
    );
    let b = &nb.part2.best;
    if let (Some(r), true) = (best, complete) {
        t.add(
            c,
            Some(b.line),
            "best validation accuracy".to_owned(),
            &b.val_accuracy.text,
            r.val_accuracy,
            None,
        );
        let expected = format!(
            "{} {} {} {}",
            b.hidden, b.activation, b.learning_rate.text, b.batch_size
        );
        let found_activation = match r.activation {
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softsign => "softsign",
        };
        let found = format!(
            "{} {} {} {}",
            r.hidden,
            found_activation,
            py_repr(r.learning_rate),
            r.batch_size
        );
        let ok = found == expected && r.trial == b.trial;
        t.push(
            c,
            Some(b.line),
            "best configuration (hidden, activation, lr, batch)".to_owned(),
            &expected,
            found,
            if ok { 0.0 } else { f64::INFINITY },
            ok,
        );
    }
    t.done(c);
}

/// The round-off of a central difference `(L+ - L-) / (2 eps)`: a few ulps of the loss
/// over the step. A printed difference far below `1 / TOL_PART3` times this cannot be
/// reproduced to `TOL_PART3` by anything but the notebook's exact BLAS kernels.
fn roundoff_floor(loss: f64, epsilon: f64) -> f64 {
    4.0 * f64::EPSILON * loss.abs().max(1.0) / epsilon
}

fn compare_part3(nb: &Notebook, cells: Option<&[Part3Cell]>, c: &mut Comparison) {
    let mut t = Tally::new(
        "part3",
        nb.counts.part3,
        "gradients 1e-9 relative; differences 1e-9 relative where they exceed 1e9 x their \
         round-off (4 ulp of the loss / epsilon), within that round-off otherwise",
    );
    if let Some(cells) = cells {
        for (cell, nc) in cells.iter().zip(&nb.part3.cells) {
            for p in &nc.prints {
                // `N = 10**i` with k = 1: step i of the k-outer, i-inner order.
                let Some(step) = cell.check.steps.iter().find(|s| s.n == p.n) else {
                    continue;
                };
                let where_ = format!("{} row {} N = {}", nc.parameter, nc.row, p.n);
                t.add(
                    c,
                    p.analytic.line,
                    format!("{where_} analytic"),
                    &p.analytic.text,
                    cell.check.analytic[0],
                    Some(TOL_PART3),
                );
                t.add(
                    c,
                    p.numerical.line,
                    format!("{where_} numerical"),
                    &p.numerical.text,
                    step.numeric[0],
                    Some(TOL_PART3),
                );
                let expected = p.difference.value();
                let found = step.abs_diff[0];
                let floor = roundoff_floor(cell.loss, step.epsilon);
                if floor <= TOL_PART3 * expected {
                    t.add(
                        c,
                        p.difference.line,
                        format!("{where_} difference"),
                        &p.difference.text,
                        found,
                        Some(TOL_PART3),
                    );
                } else {
                    let ok = (found - expected).abs() <= floor;
                    let rel = rel_error(found, expected);
                    t.push(
                        c,
                        p.difference.line,
                        format!("{where_} difference (at round-off, floor {floor:.1e})"),
                        &p.difference.text,
                        py_repr(found),
                        if ok && rel.is_infinite() { 0.0 } else { rel },
                        ok,
                    );
                }
            }
        }
    }
    t.done(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_order_is_the_notebooks() {
        let nb = crate::reference::notebook().unwrap();
        let g = grid_trials(&nb).unwrap();
        assert_eq!(g.len(), 135);
        // reference/notebook_numbers.json: trial 0 is (450, ReLU, 0.001, 32), the best
        // (trial 60) is (550, ReLU, 0.1, 32).
        assert_eq!(
            (g[0].hidden, g[0].activation, g[0].batch_size),
            (450, Activation::Relu, 32)
        );
        assert_eq!(g[0].learning_rate, 0.001);
        let b = g[60];
        assert_eq!(
            (b.hidden, b.activation, b.batch_size),
            (550, Activation::Relu, 32)
        );
        assert_eq!(b.learning_rate, 0.1);
        assert_eq!(g[134].hidden, 650);
        assert_eq!(g[134].activation, Activation::Tanh);
    }

    #[test]
    fn generator_states_skip_exactly_what_drawing_consumes() {
        // Draw the first grid trial's state by really drawing Part 1's networks (small
        // stand-ins would not do: the counts are the notebook's), against the skip.
        let nb = crate::reference::notebook().unwrap();
        let g = grid_trials(&nb).unwrap();
        let states = generator_states(&g, Net::Trial(1));
        assert_eq!(states.len(), 5);
        let mut rs = RandomState::new(NUMPY_SEED);
        let n = glorot_draws(WIDTH);
        let r = glorot_tensor::numpy_rng::glorot_limit(784, 500);
        let mut sink = vec![0.0f64; n];
        rs.fill_uniform_slice(&mut sink, -r, r);
        assert_eq!(rs.state(), states[1].1);
        rs.fill_normal_slice(&mut sink, 0.0, 1.0);
        assert_eq!(rs.state(), states[2].1);
        assert_eq!(states[2].1, states[3].1, "zeros draw nothing");
        let mut sink = vec![0.0f64; glorot_draws(450)];
        rs.fill_uniform_slice(&mut sink, -1.0, 1.0);
        assert_eq!(rs.state(), states[4].1);
        assert_eq!(states[4].0, Net::Trial(1));
    }

    #[test]
    fn the_notebooks_parameter_count_bug() {
        // In [5], line 272: "we have  0.648784  million parameters".
        assert_eq!(
            py_repr(notebook_num_parameters(&[784, 500, 500, 10])),
            "0.648784"
        );
    }

    /// A replayed run for grid trial `i` whose printed lines are `lines` (loss, accuracy,
    /// loss, ...), as the stream expects them.
    fn fake_trial(i: usize, lines: &[(f64, String)]) -> ReplayRun {
        ReplayRun {
            schema_version: SCHEMA_VERSION,
            data: String::new(),
            name: format!("trial {i}"),
            trial: Some(i),
            hidden: 450,
            activation: Activation::Relu,
            learning_rate: 0.1,
            batch_size: 32,
            init: Init::GlorotUniform,
            status: Status::Completed,
            epochs: lines
                .chunks(2)
                .enumerate()
                .map(|(e, pair)| ReplayEpoch {
                    epoch: e + 1,
                    loss: pair[0].0,
                    loss_text: pair[0].1.clone(),
                    val_accuracy: pair[1].0,
                    val_accuracy_text: pair[1].1.clone(),
                    val_loss: 0.0,
                })
                .collect(),
            seconds: 0.0,
            git_revision: String::new(),
        }
    }

    /// Plants the notebook's own fragment 3 (which starts with an accuracy line and ends
    /// with a loss cut to `0.7`) in an otherwise unrelated stream, at trial 40, epoch 6's
    /// accuracy line: the search must find it there, uniquely, with every number matched.
    #[test]
    fn fragments_are_located_in_the_replayed_stream() {
        let nb = crate::reference::notebook().unwrap();
        let spec = &nb.part2.spec;
        let mut stream: Vec<(f64, String)> = (0..spec.stream_lines)
            .map(|k| {
                let v = 1000.0 + k as f64 * 0.37;
                (v, py_repr(v))
            })
            .collect();
        let f = &nb.part2.fragments[3];
        assert_eq!(f.lines[0].what, "val_accuracy");
        let offset = 40 * spec.lines_per_trial + 5 * 2 + 1;
        for (k, l) in f.lines.iter().enumerate() {
            let text = match (l.kind, l.text.as_deref()) {
                (MatchKind::Exact, Some(t)) => t.to_owned(),
                (MatchKind::Prefix, Some(t)) => format!("{t}123"),
                _ => "1.5".to_owned(),
            };
            stream[offset + k] = (text.parse().unwrap(), text);
        }
        let trials: Vec<ReplayRun> = stream
            .chunks(spec.lines_per_trial)
            .enumerate()
            .map(|(i, lines)| fake_trial(i, lines))
            .collect();
        let mut c = Comparison::default();
        let results = compare_grid(&nb, &trials, &mut c);
        let r = &results[3];
        assert_eq!(r.located_by, "search");
        assert_eq!(r.stream_offset, Some(offset));
        assert_eq!((r.trial, r.epoch), (Some(40), Some(6)));
        assert_eq!(r.compared, r.numbers);
        assert_eq!(r.matched, r.numbers);
        // Fragment 0 sits at the start by reference; nothing there matches here.
        assert_eq!(results[0].located_by, "reference");
        assert_eq!(results[0].matched, 0);
        // The other fragments are nowhere in this stream.
        assert!(
            results
                .iter()
                .filter(|x| x.fragment != 3 && x.fragment != 0)
                .all(|x| x.located_by == "not located")
        );
    }

    #[test]
    fn relative_errors() {
        assert_eq!(rel_error(0.0, -0.0), 0.0);
        assert_eq!(rel_error(1.0, 0.0), f64::INFINITY);
        assert!((rel_error(1.1, 1.0) - 0.1).abs() < 1e-12);
    }
}
