//! The notebook's studies as a library: what `glorot experiments` runs, what
//! `cargo xtask bench` times, and every results file they write, so that tests, benches
//! and other programs use them without spawning the `glorot` binary.
//!
//! - [`part1`]: Glorot uniform, N(0, 1) and zero initialization of 784-500-500-10 tanh,
//!   lr 0.01, batch 32, 10 epochs, shuffled every epoch.
//! - [`part2`]: the 135-trial grid through `glorot-search`, resumable.
//! - [`part3`]: the gradient checks, `N = k * 10^i`.
//! - [`part4`]: Glorot and Bengio's (2010) measurements inside six deep networks
//!   (sigmoid, tanh, softsign; standard and normalized initialization).
//! - [`part5`]: Fashion-MNIST, the notebook's best configuration against the same network
//!   with momentum, a schedule, weight decay and early stopping, over several seeds.
//! - [`part6`]: successive halving, Hyperband and random search on the grid's space, over
//!   several master seeds, against Part 2's grid (its journal, not retrained).
//! - [`replay`]: the notebook replayed bit for bit (f64, no shuffling, NumPy's generator
//!   seeded with 5 in cell order) and compared with every number it printed
//!   ([`reference`](mod@reference), [`pyfmt`]).
//! - [`report`]: `REPORT.md` from whatever results files a directory holds; with the
//!   `plots` feature, PNG and SVG plots too.
//! - [`data`]: the data preparation between `glorot-mnist` and `glorot-mlp`;
//!   [`threads`]: the thread plan; [`bench`](mod@bench): the timing harness; [`train`](mod@train): one training or evaluation
//!   (with its confusion matrix as CSV); [`predict`]: predictions for new images (IDX or PNG).
//!
//! Design: the library never prints and never picks a BLAS provider. Progress goes to an
//! [`Observer`] the caller implements; the BLAS thread count and description are set and
//! read by the binary and passed in as values; errors are one typed [`Error`]. Every
//! results type is public, defined once, and serializes exactly as the committed
//! `results/` files (schemas in `docs/schemas/`).
//!
//! # Example
//!
//! The thread plan and the notebook's printed numbers need no data:
//!
//! ```
//! # extern crate blas_src;
//! use glorot_experiments::{reference, threads};
//!
//! // Four CPUs: four single-threaded trainings at once.
//! let plan = threads::plan_threads(None, None, false, 4)?;
//! assert_eq!((plan.workers, plan.blas_threads), (4, 1));
//!
//! // The notebook's best grid trial: 98.22% with 550 units.
//! let notebook = reference::notebook()?;
//! assert_eq!(notebook.part2.best.hidden, 550);
//! # Ok::<(), glorot_experiments::Error>(())
//! ```

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use glorot_mlp::Precision;
use glorot_search::GridSpec;

pub mod bench;
pub mod data;
mod error;
mod observer;
pub mod part1;
pub mod part2;
pub mod part3;
pub mod part4;
pub mod part5;
pub mod part6;
#[cfg(feature = "plots")]
mod plots;
#[cfg(feature = "plots")]
mod plots4;
pub mod predict;
pub mod pyfmt;
pub mod reference;
pub mod replay;
pub mod report;
mod support;
pub mod threads;
pub mod train;

pub use data::{Data, DataSpec, Loaded};
pub use error::{Error, Result};
pub use observer::{NoopObserver, Observer, ProgressEvent};
#[cfg(feature = "plots")]
pub use plots::confusion_heatmap;
pub use support::{RunContext, RunManifest, SCHEMA_VERSION, Seeds, count, duration};

use crate::support::read_json;

/// Training rows of a `--quick` run (the first ones of the notebook's training split).
pub const QUICK_TRAIN: usize = 5_000;
/// Validation rows of a `--quick` run.
pub const QUICK_VALIDATION: usize = 1_000;
/// Part 1's epochs in a `--quick` run.
pub const QUICK_EPOCHS: usize = 2;
/// Part 4's epochs per network (see [`part4`] and `docs/results.md` for the budget).
pub const PART4_EPOCHS: usize = 3;

/// What [`run_parts`] runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Results directory (a `--quick` run passes `<dir>/quick`).
    pub out: PathBuf,
    /// Parts to run: 1 to 6 (ignored by a replay).
    pub parts: Vec<u8>,
    /// Precision of Parts 1 and 2 (default f32). Part 3 and the replay compute in f64.
    pub precision: Option<Precision>,
    /// Master seed (default 0, or the grid file's).
    pub seed: Option<u64>,
    /// The grid of Part 2: a preset or a grid file (default `notebook`, `quick` with
    /// `quick`).
    pub grid: Option<String>,
    /// Part 1's epochs (default 10; 2 with `quick`).
    pub epochs: Option<usize>,
    /// Trainings at once.
    pub workers: usize,
    /// A quick run: a subset of the data, the quick grid, and a replay of Part 1's first
    /// epoch and of Part 3 on the full data.
    pub quick: bool,
    /// Replay the notebook instead of running the studies.
    pub replay: Option<ReplayChoice>,
    /// Fashion-MNIST, which Part 5 trains on whatever dataset the other parts use
    /// (`None`: not loaded; Part 5, when asked for, is then an error).
    pub fashion: Option<std::sync::Arc<Data>>,
}

/// What a replay covers.
#[derive(Clone, Debug)]
pub struct ReplayChoice {
    /// Parts to replay (1, 2, 3).
    pub parts: Vec<u8>,
    /// Grid trials to replay, by index in the notebook's loop order (`None`: all).
    pub trials: Option<Vec<usize>>,
    /// Epochs per replayed run (the notebook's 10).
    pub epochs: usize,
}

/// Runs the replay or the selected parts, each to its end even when another failed;
/// results files are written as each finishes. Returns the parts' errors.
pub fn run_parts(
    options: &Options,
    data: &Data,
    ctx: &RunContext,
    notebook: &reference::Notebook,
    observer: &dyn Observer,
) -> Vec<Error> {
    let say = |m: String| observer.message(&m);
    let out = options.out.as_path();
    let mut errors = Vec::new();
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    if let Some(choice) = &options.replay {
        let replay_options = replay::ReplayOptions {
            parts: choice.parts.clone(),
            trials: choice.trials.clone(),
            epochs: choice.epochs,
            workers: options.workers,
        };
        keep(
            replay::run(out, data, &replay_options, ctx, notebook, observer).map(|r| {
                say(format!(
                    "[replay] {} of the notebook's {} printed numbers compared, {} matched",
                    r.comparison.compared, r.comparison.numbers, r.comparison.matched
                ));
            }),
        );
    } else {
        let seed = options.seed.unwrap_or(0);
        let precision = options.precision.unwrap_or(Precision::F32);
        let subset;
        let studied = if options.quick {
            subset = data.subset(QUICK_TRAIN, QUICK_VALIDATION);
            &subset
        } else {
            data
        };
        if options.parts.contains(&1) && !observer.should_stop() {
            let part1_options = part1::Part1Options {
                epochs: options
                    .epochs
                    .unwrap_or(if options.quick { QUICK_EPOCHS } else { 10 }),
                seed,
                precision,
                workers: options.workers,
                quick: options.quick,
            };
            keep(
                part1::run(out, studied, &part1_options, ctx, notebook, observer).map(|p| {
                    for r in &p.runs {
                        say(format!(
                            "[part 1] {}: final validation accuracy {} (notebook {:.2})",
                            r.name,
                            r.final_val_accuracy
                                .map_or("none (diverged)".to_owned(), |v| format!("{v:.2}")),
                            r.notebook_final_val_accuracy
                        ));
                    }
                }),
            );
        }
        if options.parts.contains(&2) && !observer.should_stop() {
            keep(grid_spec(options, precision).and_then(|grid| {
                let part2_options = part2::Part2Options {
                    grid,
                    workers: options.workers,
                    quick: options.quick,
                };
                let p = part2::run(out, studied, &part2_options, ctx, notebook, observer)?;
                if let Some(b) = &p.best {
                    say(format!(
                        "[part 2] best of {}: {} with {:.2}% validation accuracy{}",
                        count(p.finished, "finished trial", "finished trials"),
                        b.id,
                        b.final_val_accuracy.unwrap_or(f64::NAN),
                        p.best_test
                            .as_ref()
                            .map_or(String::new(), |t| format!(", {:.2}% test", t.test_accuracy))
                    ));
                }
                Ok(())
            }));
        }
        if options.parts.contains(&3) && !observer.should_stop() {
            keep(
                part3::run(out, studied, seed, options.quick, ctx, notebook, observer).map(|_| ()),
            );
        }
        if options.parts.contains(&4) && !observer.should_stop() {
            let part4_options = part4_options(options, seed, precision);
            keep(
                part4::run(out, studied, &part4_options, ctx, observer).map(|p| {
                    for n in &p.networks {
                        say(format!(
                            "[part 4] {}: test error {} (paper {})",
                            n.name,
                            n.test_error
                                .map_or("none (diverged)".to_owned(), |v| format!("{v:.2}%")),
                            n.paper_test_error
                                .map_or("-".to_owned(), |v| format!("{v:.2}%"))
                        ));
                    }
                }),
            );
        }
        if options.parts.contains(&5) && !observer.should_stop() {
            keep(run_part5(options, seed, precision, ctx, observer));
        }
        if options.parts.contains(&6) && !observer.should_stop() {
            keep(run_part6(options, studied, precision, ctx, observer));
        }
        if options.quick && !observer.should_stop() {
            if data.info.subset {
                say("[replay] skipped: the replay check needs the full training split".to_owned());
            } else {
                // The first epoch of Part 1's three runs and Part 3's checks, on the full
                // data: the notebook's first printed numbers, reproduced.
                let replay_options = replay::ReplayOptions {
                    parts: vec![1, 3],
                    trials: None,
                    epochs: 1,
                    workers: options.workers,
                };
                keep(
                    replay::run(out, data, &replay_options, ctx, notebook, observer).map(|r| {
                        say(format!(
                            "[replay] Part 1 epoch 1 and Part 3: {} of {} printed numbers matched",
                            r.comparison.matched, r.comparison.compared
                        ));
                    }),
                );
            }
        }
    }
    errors
}

/// Part 4's networks and probe: the paper's 5 hidden layers of 1,000 units for
/// [`PART4_EPOCHS`] epochs, or 3 of 100 for 1 epoch with `quick`; 8 probe measurements
/// per epoch besides the first and the last.
fn part4_options(options: &Options, seed: u64, precision: Precision) -> part4::Part4Options {
    let (hidden_layers, hidden, epochs) = if options.quick {
        (3, 100, 1)
    } else {
        (5, 1000, PART4_EPOCHS)
    };
    let train_rows = if options.quick { QUICK_TRAIN } else { 50_000 };
    part4::Part4Options {
        epochs,
        hidden_layers,
        hidden,
        every: (train_rows / part4::BATCH_SIZE / 8).max(1),
        seed,
        precision,
        workers: options.workers,
        quick: options.quick,
    }
}

/// Part 5 on [`Options::fashion`] (its quick subset with `quick`).
fn run_part5(
    options: &Options,
    seed: u64,
    precision: Precision,
    ctx: &RunContext,
    observer: &dyn Observer,
) -> Result<()> {
    let Some(fashion) = options.fashion.as_deref() else {
        return Err(Error::InvalidOptions(
            "Part 5 trains on Fashion-MNIST, and no Fashion-MNIST data was loaded".to_owned(),
        ));
    };
    let subset;
    let studied = if options.quick {
        subset = fashion.subset(QUICK_TRAIN, QUICK_VALIDATION);
        &subset
    } else {
        fashion
    };
    let part5_options = part5::Part5Options {
        seed,
        seeds: if options.quick { 1 } else { part5::SEEDS },
        precision,
        workers: options.workers,
        quick: options.quick,
    };
    let p = part5::run(&options.out, studied, &part5_options, ctx, observer)?;
    for c in &p.configs {
        observer.message(&format!(
            "[part 5] {}: mean test accuracy {} over {} (target {:.1}%)",
            c.name,
            c.summary
                .test_accuracy_mean
                .map_or("none".to_owned(), |m| format!("{m:.2}%")),
            count(c.summary.runs, "seed", "seeds"),
            p.target_test_accuracy
        ));
    }
    Ok(())
}

/// Part 6 on Part 2's grid (its seed and precision choices), on `studied`.
fn run_part6(
    options: &Options,
    studied: &Data,
    precision: Precision,
    ctx: &RunContext,
    observer: &dyn Observer,
) -> Result<()> {
    let grid = grid_spec(options, precision)?;
    let part6_options = part6::Part6Options::new(grid, options.workers, options.quick);
    let p = part6::run(&options.out, studied, &part6_options, ctx, observer)?;
    for st in &p.strategies {
        observer.message(&format!(
            "[part 6] {}: within {} points of the grid's best with at most {:.0}% of its \
             epochs in {} of {}",
            st.name,
            p.target_gap,
            100.0 * p.budget_fraction,
            st.seeds_within_target,
            count(st.runs.len(), "seed", "seeds")
        ));
    }
    Ok(())
}

/// Upper bound of the memory [`run_parts`] needs for `options` on `data`, beyond the
/// loaded data: the largest of its parts (they run one after another), each with up to
/// `options.workers` trainings at once ([`glorot_mlp::memory::training_bytes`]) and the
/// copies of the data it makes. To be compared with the machine's memory before anything
/// runs. A grid that cannot be read is not counted here: [`run_parts`] reports it.
///
/// # Errors
/// [`glorot_mlp::Error::MemoryOverflow`] (as [`Error::Mlp`]) when a training's memory
/// cannot be counted in 64 bits (an absurd number of epochs or widths).
pub fn memory_bytes(options: &Options, data: &Data) -> Result<u64> {
    use glorot_mlp::{ModelConfig, TrainConfig};

    let m = &data.mnist;
    let (train_rows, eval_rows) = (m.train.len(), m.validation.len().max(m.test.len()));
    let pixels = glorot_mnist::PIXELS as u64;
    let classes = glorot_mnist::NUM_CLASSES as u64;
    let overflow = || {
        Error::from(glorot_mlp::Error::MemoryOverflow {
            what: "these experiments".to_owned(),
        })
    };
    // The data's copies: one-hot targets, and the images in f64 when a training needs them.
    let rows = (m.train.len() + m.validation.len() + m.test.len()) as u64;
    let copies = |f64_data: bool| {
        let f64_bytes = if f64_data {
            rows * (pixels + classes) * 8
        } else {
            0
        };
        f64_bytes + m.train.len() as u64 * classes * 4 + rows * pixels * 4
    };
    // `count` trainings, `workers` at once, each needing at most the largest of `runs`.
    let part = |runs: Vec<(ModelConfig, TrainConfig)>| -> Result<u64> {
        let mut largest = 0u64;
        let mut f64_data = false;
        let count = runs.len();
        for (model, train) in runs {
            let (Ok(model), Ok(train)) = (model.validate(), train.validate()) else {
                continue;
            };
            f64_data |= train.precision() == Precision::F64;
            largest = largest.max(glorot_mlp::memory::training_bytes(
                &model, &train, train_rows, eval_rows,
            )?);
        }
        let parallel = options.workers.clamp(1, count.max(1)) as u64;
        largest
            .checked_mul(parallel)
            .and_then(|b| b.checked_add(copies(f64_data)))
            .ok_or_else(overflow)
    };
    let grid_runs = |grid: &glorot_search::ValidGrid, epochs: Option<usize>| {
        grid.trials()
            .iter()
            .map(|t| {
                let (model, mut train) = glorot_search::runner::trial_configs(
                    t,
                    glorot_mnist::PIXELS,
                    glorot_mnist::NUM_CLASSES,
                );
                if let Some(e) = epochs {
                    train.epochs = e;
                    train.precision = Precision::F64;
                }
                (model, train)
            })
            .collect::<Vec<_>>()
    };
    let part1_runs = |epochs: usize, precision: Precision| {
        let train = TrainConfig {
            epochs,
            precision,
            ..TrainConfig::default()
        };
        let model = part1::model_config(500, glorot_mlp::Activation::Tanh, glorot_mlp::Init::Zero);
        vec![(model, train); part1::RUNS.len()]
    };
    let mut most = 0u64;
    if let Some(choice) = &options.replay {
        most = most.max(part(part1_runs(choice.epochs, Precision::F64))?);
        if let Ok(grid) = GridSpec::notebook().validate() {
            most = most.max(part(grid_runs(&grid, Some(choice.epochs)))?);
        }
    } else {
        let precision = options.precision.unwrap_or(Precision::F32);
        if options.parts.contains(&1) {
            let epochs = options
                .epochs
                .unwrap_or(if options.quick { QUICK_EPOCHS } else { 10 });
            most = most.max(part(part1_runs(epochs, precision))?);
        }
        if options.parts.contains(&2)
            && let Ok(grid) = grid_spec(options, precision)
        {
            most = most.max(part(grid_runs(&grid, None))?);
        }
        if options.parts.contains(&6)
            && let Ok(grid) = grid_spec(options, precision)
        {
            // The grid's configurations at the strategies' largest budget (a continued
            // trial trains as the same trial from scratch would).
            let max_epochs = part6::Part6Options::new(grid.clone(), 1, options.quick).max_epochs;
            let runs = grid_runs(&grid, None)
                .into_iter()
                .map(|(model, train)| {
                    (
                        model,
                        TrainConfig {
                            epochs: max_epochs,
                            ..train
                        },
                    )
                })
                .collect();
            most = most.max(part(runs)?);
        }
        if options.parts.contains(&4) {
            let p4 = part4_options(options, options.seed.unwrap_or(0), precision);
            let runs = part4::NETWORKS
                .iter()
                .map(|&(_, a, i)| {
                    (
                        part4::model_config(p4.hidden_layers, p4.hidden, a, i),
                        part4::train_config(&p4),
                    )
                })
                .collect();
            most = most.max(part(runs)?);
        }
        if options.parts.contains(&5) {
            // Its runs on Fashion-MNIST, of the same sizes as MNIST's splits.
            let model = part5::model();
            let runs = (0..part5::SEEDS as u64)
                .flat_map(|s| {
                    [
                        (model.clone(), part5::notebook_train(s, precision)),
                        (model.clone(), part5::improved_train(s, precision)),
                    ]
                })
                .collect();
            most = most.max(part(runs)?);
        }
    }
    Ok(most)
}

/// Renders the plots (with the `plots` feature) and `REPORT.md` from the results files
/// in `out`; returns the plots written.
///
/// # Errors
/// When a results file cannot be read, or a plot or the report cannot be written.
pub fn finish(out: &Path, notebook: &reference::Notebook) -> Result<Vec<String>> {
    let p1 = read_json::<part1::Part1File>(&out.join("part1.json"))?;
    let p2 = read_json::<part2::Part2File>(&out.join("part2.json"))?;
    let p3 = read_json::<part3::Part3File>(&out.join("part3.json"))?;
    let rp = read_json::<replay::ReplayFile>(&out.join("replay.json"))?;
    let p4 = read_json::<part4::Part4File>(&out.join("part4.json"))?;
    let p5 = read_json::<part5::Part5File>(&out.join("part5.json"))?;
    let p6 = read_json::<part6::Part6File>(&out.join("part6.json"))?;
    #[cfg(feature = "plots")]
    let mut plots = plots::render_all(out, p1.as_ref(), p2.as_ref(), p3.as_ref(), notebook)?;
    #[cfg(feature = "plots")]
    if let Some(p4) = &p4 {
        plots.extend(plots::render_part4(out, p4)?);
    }
    #[cfg(feature = "plots")]
    plots.extend(plots::render_part5(out, p5.as_ref())?);
    #[cfg(not(feature = "plots"))]
    let plots = Vec::new();
    report::write(
        out,
        &report::Inputs {
            part1: p1.as_ref(),
            part2: p2.as_ref(),
            part3: p3.as_ref(),
            replay: rp.as_ref(),
            part4: p4.as_ref(),
            part5: p5.as_ref(),
            part6: p6.as_ref(),
            plots: &plots,
            notebook,
        },
    )?;
    Ok(plots)
}

/// The grid of Part 2: preset or file, then the seed and the precision applied.
fn grid_spec(options: &Options, precision: Precision) -> Result<glorot_search::ValidGrid> {
    let name = options
        .grid
        .clone()
        .unwrap_or_else(|| if options.quick { "quick" } else { "notebook" }.to_owned());
    let mut spec = if glorot_search::PRESETS.contains(&name.as_str()) {
        GridSpec::preset(&name)?
    } else {
        let path = Path::new(&name);
        if !path.exists() {
            return Err(Error::InvalidOptions(format!(
                "--grid {name}: neither a preset ({}) nor an existing file",
                glorot_search::PRESETS.join(", ")
            )));
        }
        GridSpec::from_file(path)?
    };
    if let Some(seed) = options.seed {
        spec.master_seed = seed;
    }
    if options.precision.is_some() || glorot_search::PRESETS.contains(&name.as_str()) {
        spec.precision = vec![precision];
    }
    Ok(spec.validate()?)
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
