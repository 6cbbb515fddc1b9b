//! `glorot search run | status | merge | best`: the grid search over `glorot-search`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use glorot_experiments::count;
use glorot_mlp::{
    Activation, EpochMetrics, Init, LrSchedule, Monitor, Optimizer, Precision, Shuffle,
};
use glorot_search::{
    ClaimStatus, GridSpec, Journal, PRESETS, RunOptions, SearchContext, SearchData, SearchObserver,
    Shard, StatusCounts, Summary, TestEvaluation, Trial, TrialRecord, TrialStatus, ValidGrid,
    journal::{self, FailedTrial, ShardStatus, StoredGrid},
    summary::Ranked,
};
use serde::Serialize;

use crate::common::{
    self, DataInfo, DataOpts, INIT_HELP, Stderr, ThreadPlan, bar, human_duration, init_name, out,
    parse_activation, parse_init, parse_positive, parse_positive_f64, parse_precision,
    parse_shuffle, print_json, usage,
};

// Random search, successive halving and Hyperband: `search run --strategy`, and
// `status` / `merge` of their directories.
mod strategy;

/// A number with the text it was written as, for messages.
#[derive(Clone, Debug)]
struct Written {
    value: f64,
    text: String,
}

/// [`parse_positive_f64`], keeping the text.
fn parse_written_f64(s: &str) -> Result<Written, String> {
    Ok(Written {
        value: parse_positive_f64(s)?,
        text: s.trim().to_owned(),
    })
}

/// Options of `glorot search`.
#[derive(Args, Debug)]
#[command(after_help = SEARCH_EXAMPLES, subcommand_required = true, arg_required_else_help = true)]
pub(crate) struct SearchArgs {
    #[command(subcommand)]
    command: SearchCommand,
}

const SEARCH_EXAMPLES: &str = "\
Examples:
  # The notebook's 135-trial grid on every core; rerun the same command to resume
  glorot search run --grid notebook --out results/search

  # Progress, then the merged summary (summary.json, trials.csv) and the best trial
  glorot search status --out results/search
  glorot search merge --out results/search
  glorot search best --out results/search --test

The results directory is the journal: one JSON file per finished trial, written
atomically. A search killed at any moment (Ctrl-C, SIGKILL, a lost node) loses only the
trials in flight; running it again skips finished trials. Any number of `search run`
processes may share one results directory (one machine or several on a shared file
system): each trial is claimed before it is trained (trials/<id>.claim), so it is trained
once; `search status` shows who trains what. See docs/reliability.md.";

#[derive(Subcommand, Debug)]
enum SearchCommand {
    /// Run the grid's trials that are not finished yet (in parallel; resumable; shardable).
    Run(RunArgs),
    /// Show how far a search is: finished, failed and missing trials, per shard.
    Status(StatusArgs),
    /// Merge the finished trials into summary.json (ranking, best) and trials.csv.
    Merge(MergeArgs),
    /// Show the best trial; with --test, retrain it from its seed and measure the test set once.
    Best(BestArgs),
}

/// `glorot search`.
pub(crate) fn run(args: SearchArgs) -> Result<()> {
    match args.command {
        SearchCommand::Run(a) => run_search(a),
        SearchCommand::Status(a) => status(a),
        SearchCommand::Merge(a) => merge(a),
        SearchCommand::Best(a) => best(a),
    }
}

// ---------------------------------------------------------------------------------------
// The grid
// ---------------------------------------------------------------------------------------

/// Which grid: a preset, a file, the one stored in the results directory, and axis flags
/// that replace single axes of it.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Grid")]
struct GridOpts {
    /// A preset grid: notebook (the notebook's 135 trials), quick (12 small trials), tiny
    /// (8 trials for tests). Default: the grid stored in --out (grid.json) when there is
    /// one, else notebook.
    #[arg(long, value_name = "PRESET", value_parser = clap::builder::PossibleValuesParser::new(PRESETS), conflicts_with = "grid_file")]
    grid: Option<String>,
    /// A grid file, JSON or TOML, with the fields hidden, activation, learning_rate,
    /// batch_size and optionally init, epochs, precision, repeats, hidden_layers,
    /// master_seed, shuffle, optimizer, weight_decay, lr_schedule, warmup_epochs,
    /// early_stopping, early_stopping_on.
    #[arg(long, value_name = "FILE")]
    grid_file: Option<PathBuf>,
    /// Replace the hidden-width axis (every hidden layer has the width).
    #[arg(long, value_name = "W,W,..", value_delimiter = ',', num_args = 1.., value_parser = parse_positive)]
    hidden: Option<Vec<usize>>,
    /// Replace the activation axis (relu, sigmoid, tanh, softsign).
    #[arg(long, value_name = "A,A,..", value_delimiter = ',', num_args = 1.., value_parser = parse_activation)]
    activation: Option<Vec<Activation>>,
    /// Replace the learning-rate axis.
    #[arg(long, value_name = "LR,LR,..", value_delimiter = ',', num_args = 1.., value_parser = parse_written_f64)]
    lr: Option<Vec<Written>>,
    /// Replace the batch-size axis.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', num_args = 1.., value_parser = parse_positive)]
    batch_size: Option<Vec<usize>>,
    /// Replace the initializer axis.
    #[arg(long, value_name = "I,I,..", value_delimiter = ',', num_args = 1.., value_parser = parse_init, long_help = format!("Replace the initializer axis: {INIT_HELP}"))]
    init: Option<Vec<Init>>,
    /// Replace the epochs axis.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', num_args = 1.., value_parser = parse_positive)]
    epochs: Option<Vec<usize>>,
    /// Replace the precision axis (f32, f64).
    #[arg(long, value_name = "P,P", value_delimiter = ',', num_args = 1.., value_parser = parse_precision)]
    precision: Option<Vec<Precision>>,
    /// Run every configuration N times with different derived seeds (repeats 0..N).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    repeats: Option<usize>,
    /// Number of hidden layers.
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    hidden_layers: Option<usize>,
    /// The master seed every trial's seed derives from (with the trial's id).
    #[arg(long, value_name = "S")]
    master_seed: Option<u64>,
    /// Data order: every-epoch or never.
    #[arg(long, value_name = "MODE", value_parser = parse_shuffle)]
    shuffle: Option<Shuffle>,
    /// Replace the optimizer axis: sgd, momentum or momentum:M, nesterov or nesterov:M (M
    /// default 0.9), adam, adam:BETA1:BETA2 or adam:BETA1:BETA2:EPS, adamw likewise
    /// (PyTorch's defaults).
    #[arg(long, value_name = "O,O,..", value_delimiter = ',', num_args = 1.., value_parser = parse_optimizer)]
    optimizer: Option<Vec<Optimizer>>,
    /// Replace the weight-decay axis: every optimizer with each value [default: each
    /// optimizer's own, 0; adamw 0.01].
    #[arg(long, value_name = "WD,WD,..", value_delimiter = ',', num_args = 1.., value_parser = parse_non_negative_f64)]
    weight_decay: Option<Vec<f64>>,
    /// Replace the learning-rate schedule axis: constant, step:EVERY:GAMMA, cosine,
    /// cosine:MIN_LR, plateau:PATIENCE:FACTOR or plateau:PATIENCE:FACTOR:THRESHOLD (as
    /// glorot train --lr-schedule).
    #[arg(long, value_name = "S,S,..", value_delimiter = ',', num_args = 1.., value_parser = parse_lr_schedule)]
    lr_schedule: Option<Vec<LrSchedule>>,
    /// Replace the warm-up axis (epochs of linear warm-up, each below every --epochs).
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', num_args = 1..)]
    warmup: Option<Vec<usize>>,
    /// Replace the early-stopping axis: patience in epochs, 0 for none (stop when the
    /// validation metric has not improved for that many epochs; keep the best epoch).
    #[arg(long, value_name = "P,P,..", value_delimiter = ',', num_args = 1..)]
    early_stopping: Option<Vec<usize>>,
    /// The validation metric early stopping watches: accuracy or loss.
    #[arg(long, value_name = "METRIC", value_parser = parse_monitor)]
    early_stopping_on: Option<Monitor>,
}

fn parse_optimizer(s: &str) -> Result<Optimizer, String> {
    s.parse::<Optimizer>().map_err(|e| e.to_string())
}

fn parse_lr_schedule(s: &str) -> Result<LrSchedule, String> {
    s.parse::<LrSchedule>().map_err(|e| e.to_string())
}

fn parse_monitor(s: &str) -> Result<Monitor, String> {
    s.parse::<Monitor>().map_err(|e| e.to_string())
}

fn parse_non_negative_f64(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a finite number >= 0")),
    }
}

impl GridOpts {
    fn has_axis_flags(&self) -> bool {
        self.hidden.is_some()
            || self.activation.is_some()
            || self.lr.is_some()
            || self.batch_size.is_some()
            || self.init.is_some()
            || self.epochs.is_some()
            || self.precision.is_some()
            || self.repeats.is_some()
            || self.hidden_layers.is_some()
            || self.master_seed.is_some()
            || self.shuffle.is_some()
            || self.optimizer.is_some()
            || self.weight_decay.is_some()
            || self.lr_schedule.is_some()
            || self.warmup.is_some()
            || self.early_stopping.is_some()
            || self.early_stopping_on.is_some()
    }

    /// The grid: `--grid-file`, else `--grid`, else `<out>/grid.json`, else the notebook's;
    /// then the axis flags replace their axes. Returns the grid and where it came from.
    fn resolve(&self, out: &Path) -> Result<(ValidGrid, String)> {
        let stored = out.join(journal::GRID_FILE);
        let (mut spec, mut source) = if let Some(file) = &self.grid_file {
            let spec = GridSpec::from_file(file)?;
            (spec, format!("grid file {}", file.display()))
        } else if let Some(name) = &self.grid {
            (GridSpec::preset(name)?, format!("preset `{name}`"))
        } else if let Some(spec) = journal::stored_grid(out) {
            let spec = spec.with_context(|| format!("bad stored grid {}", stored.display()))?;
            (spec, format!("the grid stored in {}", stored.display()))
        } else if self.has_axis_flags() {
            (GridSpec::notebook(), "the notebook's grid".to_owned())
        } else {
            (GridSpec::notebook(), "preset `notebook`".to_owned())
        };
        if self.has_axis_flags() {
            source.push_str(" with axes replaced by flags");
        }
        if let Some(v) = &self.hidden {
            spec.hidden = v.clone();
        }
        if let Some(v) = &self.activation {
            spec.activation = v.clone();
        }
        if let Some(v) = &self.lr {
            // Duplicates are named as written: `0.1` and `0.10` are one learning rate.
            for (i, a) in v.iter().enumerate() {
                if let Some(b) = v[..i]
                    .iter()
                    .find(|b| b.value.to_bits() == a.value.to_bits())
                {
                    return usage(format!(
                        "--lr: {} and {} are the same learning rate",
                        b.text, a.text
                    ));
                }
            }
            spec.learning_rate = v.iter().map(|w| w.value).collect();
        }
        if let Some(v) = &self.batch_size {
            spec.batch_size = v.clone();
        }
        if let Some(v) = &self.init {
            spec.init = v.clone();
        }
        if let Some(v) = &self.epochs {
            spec.epochs = v.clone();
        }
        if let Some(v) = &self.precision {
            spec.precision = v.clone();
        }
        if let Some(n) = self.repeats {
            if n > glorot_search::MAX_TRIALS {
                return usage(format!(
                    "--repeats {n}: a grid has at most {} trials",
                    glorot_search::MAX_TRIALS
                ));
            }
            spec.repeats = (0..n as u64).collect();
        }
        if let Some(n) = self.hidden_layers {
            spec.hidden_layers = n;
        }
        if let Some(s) = self.master_seed {
            spec.master_seed = s;
        }
        if let Some(s) = self.shuffle {
            spec.shuffle = s;
        }
        if let Some(v) = &self.optimizer {
            spec.optimizer = v.clone();
        }
        if let Some(v) = &self.weight_decay {
            spec.weight_decay = v.clone();
        }
        if let Some(v) = &self.lr_schedule {
            spec.lr_schedule = v.clone();
        }
        if let Some(v) = &self.warmup {
            spec.warmup_epochs = v.clone();
        }
        if let Some(v) = &self.early_stopping {
            spec.early_stopping = v.clone();
        }
        if let Some(m) = self.early_stopping_on {
            spec.early_stopping_on = m;
        }
        let grid = spec
            .validate()
            .with_context(|| format!("the grid ({source}) is invalid"))?;
        Ok((grid, source))
    }
}

// ---------------------------------------------------------------------------------------
// search run
// ---------------------------------------------------------------------------------------

const RUN_EXAMPLES: &str = "\
Examples:
  # The notebook's grid, every core (one single-threaded trial per CPU)
  glorot search run --grid notebook --out results/search

  # Resume it (the grid is stored in the results directory)
  glorot search run --out results/search

  # A custom grid from flags, two workers, a data subset
  glorot search run --hidden 128,256 --activation relu,tanh --lr 0.05,0.1 --batch-size 32 \\
      --epochs 3 --workers 2 --train-limit 10000 --out results/small

  # A grid file (JSON or TOML)
  glorot search run --grid-file grid.toml --out results/mine

  # Optimizers, schedules, warm-up and early stopping as axes (patience 0: none)
  glorot search run --hidden 550 --activation relu --lr 0.02,0.05 --batch-size 32 --epochs 30 \\
      --optimizer sgd,nesterov:0.9 --weight-decay 0,5e-4 --lr-schedule constant,cosine \\
      --warmup 1 --early-stopping 0,10 --out results/training

  # Shard 2 of 4 (0-based) of a grid split across machines writing into one directory
  glorot search run --grid notebook --shard 2/4 --out /shared/results/search

  # Slurm job array: each task runs its shard (from SLURM_ARRAY_TASK_ID/COUNT/MIN)
  #   sbatch --array=0-3 --wrap 'glorot search run --grid notebook --out results/search'
  # Kubernetes Indexed Job with 4 completions (JOB_COMPLETION_INDEX):
  #   GLOROT_SHARD_COUNT=4 glorot search run --grid notebook --out /data/search

When every trial of the grid is finished, summary.json and trials.csv are written.";

/// Options of `glorot search run`.
#[derive(Args, Debug)]
#[command(after_help = RUN_EXAMPLES)]
struct RunArgs {
    /// The results directory (the journal).
    #[arg(long, value_name = "DIR", default_value = "results/search")]
    out: PathBuf,
    /// Run only shard INDEX of COUNT (0-based; trials with grid index % COUNT == INDEX).
    /// Default: from Slurm's SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (offset by
    /// SLURM_ARRAY_TASK_MIN), or Kubernetes' JOB_COMPLETION_INDEX with --shard-count;
    /// else the whole grid.
    #[arg(long, value_name = "INDEX/COUNT")]
    shard: Option<Shard>,
    /// The shard count of a Kubernetes Indexed Job (its `completions`) [env: GLOROT_SHARD_COUNT].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    shard_count: Option<usize>,
    /// Trials trained in parallel [default: every CPU, or as many as fit --blas-threads].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    workers: Option<usize>,
    /// BLAS threads of each trial [default: 1 with several workers, else every CPU].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    blas_threads: Option<usize>,
    /// Allow workers x BLAS threads above the number of CPUs.
    #[arg(long)]
    oversubscribe: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    grid: GridOpts,
    #[command(flatten)]
    strategy: strategy::StrategyOpts,
    #[command(flatten)]
    data: DataOpts,
}

/// What `glorot search run --json` prints.
#[derive(Debug, Serialize)]
struct RunReport {
    out: PathBuf,
    grid_source: String,
    shard: Shard,
    workers: usize,
    blas_threads: usize,
    /// Trials of the grid in this shard.
    in_shard: usize,
    /// Skipped: already finished.
    skipped: usize,
    /// Run and recorded by this process.
    recorded: usize,
    /// Of those, failed (rerun next time).
    failed: usize,
    /// Recorded by other runners on the same directory while this one ran.
    finished_elsewhere: usize,
    /// Stopped by a signal before every trial of the shard ran.
    stopped: bool,
    /// Trials in the whole grid.
    grid_total: usize,
    /// Finished trials of the whole grid (all shards).
    grid_finished: usize,
    /// Whether the whole grid is finished (then the summary was written).
    complete: bool,
    /// summary.json, when written.
    summary: Option<PathBuf>,
    /// trials.csv, when written.
    csv: Option<PathBuf>,
    /// The best trial of the grid so far.
    best: Option<Ranked>,
}

fn shard_from(args_shard: Option<Shard>, shard_count: Option<usize>) -> Result<Shard> {
    if let Some(s) = args_shard {
        return Ok(s);
    }
    let k8s_count = match shard_count {
        Some(n) => Some(n),
        None => match std::env::var("GLOROT_SHARD_COUNT") {
            Ok(v) if !v.trim().is_empty() => Some(
                parse_positive(&v)
                    .map_err(|e| common::UsageError(format!("GLOROT_SHARD_COUNT={v}: {e}")))?,
            ),
            _ => None,
        },
    };
    Ok(Shard::from_env(|k| std::env::var(k).ok(), k8s_count)
        .context("cannot take the shard from the environment (or pass --shard)")?
        .unwrap_or(Shard::ALL))
}

fn run_search(args: RunArgs) -> Result<()> {
    if let Some(spec) = args.strategy.resolve(&args.out, &args.grid)? {
        return strategy::run(&args, spec);
    }
    let err = Stderr::new(args.quiet);
    let (grid, source) = args.grid.resolve(&args.out)?;
    if !grid.spec().ranges.is_empty() {
        return usage(format!(
            "the grid ({source}) has [ranges], which a grid cannot enumerate: sample it with \
             --strategy random, sha or hyperband"
        ));
    }
    let shard = shard_from(args.shard, args.shard_count)?;
    let plan = common::plan_threads(
        args.workers,
        args.blas_threads,
        args.oversubscribe,
        common::cpus(),
    )?;
    let mine: Vec<Trial> = grid
        .trials()
        .into_iter()
        .filter(|t| shard.contains(t.index))
        .collect();

    let finished_before = journal::finished_ids(&args.out, &grid)?;
    let all_done = mine.iter().all(|t| finished_before.contains(&t.id));
    if all_done {
        // Nothing to train, but the data and the master seed are checked as for any run
        // on this journal: a summary is never rewritten for another search.
        let loaded = args.data.load()?;
        Journal::open(
            &args.out,
            &SearchContext {
                master_seed: grid.spec().master_seed,
                data: loaded.description(),
            },
        )?;
    } else {
        common::handle_interrupts();
        common::set_blas_threads(plan.blas_threads);
        let loaded = args.data.load()?;
        let description = loaded.description();
        let data = loaded.into_search_data(false);
        // Every pending trial's memory, before the first one starts.
        let pending: Vec<Trial> = mine
            .iter()
            .filter(|t| !finished_before.contains(&t.id))
            .cloned()
            .collect();
        common::check_memory(
            "this search",
            glorot_search::memory::run_bytes(&pending, &data, plan.workers),
        )?;
        let context = SearchContext {
            master_seed: grid.spec().master_seed,
            data: description,
        };
        let journal = Journal::open(&args.out, &context)?;
        store_grid(&args.out, &grid, &err)?;
        if shard.count > 1 {
            journal::store_shard_count(&args.out, shard.count)?;
        }
        err.line(format!(
            "search: {} ({source}){}, {} to run; {} x {}; \
             {} training and {} validation images; results in {}",
            count(grid.len(), "trial", "trials"),
            if shard == Shard::ALL {
                String::new()
            } else {
                format!(", shard {shard} has {}", mine.len())
            },
            mine.iter()
                .filter(|t| !finished_before.contains(&t.id))
                .count(),
            count(plan.workers, "worker", "workers"),
            count(plan.blas_threads, "BLAS thread", "BLAS threads"),
            data.train_len(),
            data.validation_len(),
            args.out.display()
        ));
        let progress = SearchProgress::new(&err, &grid, &mine, &finished_before, &data, plan);
        let manifest = common::manifest(plan);
        let outcome = glorot_search::run(
            &grid,
            &data,
            &journal,
            &manifest,
            RunOptions {
                workers: plan.workers,
                shard,
            },
            &progress,
        );
        err.clear();
        let outcome = outcome?;
        progress.finish(&outcome);
        return finish_run(&args, &grid, source, shard, plan, outcome, &err);
    }
    // Every trial of the shard is finished.
    err.line(format!(
        "search: every trial of {} is already finished in {}",
        if shard == Shard::ALL {
            "the grid".to_owned()
        } else {
            format!("shard {shard}")
        },
        args.out.display()
    ));
    let outcome = glorot_search::RunOutcome {
        in_shard: mine.len(),
        skipped: mine.len(),
        ..Default::default()
    };
    finish_run(&args, &grid, source, shard, plan, outcome, &err)
}

/// After a run: merge, write the summary when the grid is complete, report.
fn finish_run(
    args: &RunArgs,
    grid: &ValidGrid,
    source: String,
    shard: Shard,
    plan: ThreadPlan,
    outcome: glorot_search::RunOutcome,
    err: &Stderr,
) -> Result<()> {
    let (journal, _) = Journal::open_existing(&args.out)?;
    let records = scan_records(&journal, err)?.records;
    let summary = Summary::merge(grid, &records);
    let complete = summary.missing.is_empty();
    if complete {
        summary.write(&args.out, &records)?;
    }
    let report = RunReport {
        out: args.out.clone(),
        grid_source: source,
        shard,
        workers: plan.workers,
        blas_threads: plan.blas_threads,
        in_shard: outcome.in_shard,
        skipped: outcome.skipped,
        recorded: outcome.recorded,
        failed: outcome.failed,
        finished_elsewhere: outcome.finished_elsewhere,
        stopped: outcome.stopped,
        grid_total: summary.total,
        grid_finished: summary.finished,
        complete,
        summary: complete.then(|| args.out.join("summary.json")),
        csv: complete.then(|| args.out.join("trials.csv")),
        best: summary.best.clone(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        out(format!(
            "{} of {} trials of the grid finished ({} run now, {} already done{}{})",
            summary.finished,
            summary.total,
            outcome.recorded,
            outcome.skipped,
            if outcome.finished_elsewhere > 0 {
                format!(
                    ", {} by other runners meanwhile",
                    outcome.finished_elsewhere
                )
            } else {
                String::new()
            },
            if outcome.failed > 0 {
                format!(", {} failed", outcome.failed)
            } else {
                String::new()
            }
        ))?;
        if let Some(best) = &summary.best {
            out(format!(
                "best{}: {}",
                if complete { "" } else { " so far" },
                describe_ranked(best)
            ))?;
        }
        if complete {
            out(format!(
                "wrote {} and {}",
                args.out.join("summary.json").display(),
                args.out.join("trials.csv").display()
            ))?;
        } else if !outcome.stopped && outcome.failed == 0 {
            out(format!(
                "this shard is done; the rest of the grid belongs to other shards: run `glorot \
                 search merge --out {}` once they finish",
                args.out.display()
            ))?;
        }
    }
    if outcome.stopped {
        bail!(
            "stopped by a signal: {} of {} trials of {} are recorded; run the same command to resume",
            outcome.skipped + outcome.recorded + outcome.finished_elsewhere,
            outcome.in_shard,
            if shard == Shard::ALL {
                "the grid".to_owned()
            } else {
                format!("shard {shard}")
            }
        );
    }
    if outcome.failed > 0 {
        let failures: Vec<String> = records
            .iter()
            .filter_map(|r| match &r.status {
                TrialStatus::Failed { message } if shard.contains(r.index) => {
                    Some(format!("{}: {message}", r.id))
                }
                _ => None,
            })
            .collect();
        bail!(
            "{} and will be rerun next time: {}",
            count(outcome.failed, "trial failed", "trials failed"),
            failures.join("; ")
        );
    }
    let _ = err;
    Ok(())
}

/// Reads the results directory's records, warning about files that are not readable
/// records (they are not counted).
fn scan_records(journal: &Journal, err: &Stderr) -> Result<glorot_search::Scan> {
    let scan = journal.scan()?;
    for (path, reason) in &scan.unreadable {
        err.warn(format!(
            "{} cannot be read ({reason}); it is not counted, and the next `glorot search \
             run` moves it to trials/{}/ and runs its trial again",
            path.display(),
            journal::QUARANTINE_DIR
        ));
    }
    for path in &scan.strays {
        err.warn(format!(
            "{} is not a trial record (its name is not a trial id); ignored",
            path.display()
        ));
    }
    Ok(scan)
}

/// Stores the grid in `<out>/grid.json` (replacing a different one, with a note).
fn store_grid(out: &Path, grid: &ValidGrid, err: &Stderr) -> Result<()> {
    let path = out.join(journal::GRID_FILE);
    match journal::store_grid(out, grid)? {
        StoredGrid::ReplacedOther => err.warn(format!(
            "{} held another grid; it now holds this one (finished trials of both stay in the journal)",
            path.display()
        )),
        StoredGrid::ReplacedUnreadable(e) => {
            err.warn(format!(
                "replacing unreadable {}: {}",
                path.display(),
                common::chain(&e.into())
            ));
        }
        _ => {}
    }
    Ok(())
}

fn describe_ranked(r: &Ranked) -> String {
    let c = &r.config;
    let acc = match (&r.status, r.final_val_accuracy) {
        (_, Some(a)) => format!("validation accuracy {a:.2}%"),
        (TrialStatus::Diverged { epoch }, None) => format!("diverged in epoch {epoch}"),
        (TrialStatus::Failed { message }, None) => format!("failed: {message}"),
        _ => "no accuracy".to_owned(),
    };
    format!(
        "{} (hidden {}x{}, {}, lr {}, batch {}, {}, {}, {}{}) seed {}: {acc}",
        r.id,
        c.hidden.first().copied().unwrap_or(0),
        c.hidden.len(),
        c.activation,
        c.learning_rate,
        c.batch_size,
        init_name(c.init),
        count(c.epochs, "epoch", "epochs"),
        c.precision,
        if c.repeat > 0 {
            format!(", repeat {}", c.repeat)
        } else {
            String::new()
        },
        r.seed
    )
}

// ---------------------------------------------------------------------------------------
// Progress of a running search
// ---------------------------------------------------------------------------------------

/// Progress of `search run` on stderr: a live board (done/total, running trials with their
/// epoch, ETA) on a terminal; a line per epoch and per trial otherwise.
struct SearchProgress<'a> {
    err: &'a Stderr,
    workers: usize,
    grid_total: usize,
    /// Cost of one epoch of each trial (multiply-adds per epoch), by grid index.
    cost: HashMap<usize, f64>,
    started: Instant,
    state: Mutex<ProgressState>,
    log: TrialLog,
}

/// `GLOROT_TRIAL_LOG=FILE`: every runner appends `start|end <id> <pid> <unix ns>` lines
/// when it starts training a trial and after it records it (one `write` each, in append
/// mode, so runners on one machine can share the file). Used by the tests that check
/// that many runners on one journal train every trial once.
struct TrialLog(Option<Mutex<std::fs::File>>);

impl TrialLog {
    const VAR: &str = "GLOROT_TRIAL_LOG";

    fn from_env(err: &Stderr) -> Self {
        let Some(path) = std::env::var_os(Self::VAR).filter(|p| !p.is_empty()) else {
            return TrialLog(None);
        };
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => TrialLog(Some(Mutex::new(f))),
            Err(e) => {
                err.warn(format!(
                    "{}={}: {e}; no trial log is written",
                    Self::VAR,
                    Path::new(&path).display()
                ));
                TrialLog(None)
            }
        }
    }

    fn event(&self, what: &str, id: &glorot_search::TrialId) {
        use std::io::Write as _;
        let Some(file) = &self.0 else { return };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let line = format!("{what} {id} {} {nanos}\n", std::process::id());
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = f.write_all(line.as_bytes());
    }
}

#[derive(Default)]
struct ProgressState {
    in_shard: usize,
    done: usize,
    failed: usize,
    diverged: usize,
    running: BTreeMap<usize, Running>,
    /// Cost of the epochs not run yet (pending and running trials).
    remaining_cost: f64,
    /// Measured seconds and cost of finished epochs.
    measured_seconds: f64,
    measured_cost: f64,
    last_draw: Option<Instant>,
}

struct Running {
    label: String,
    epoch: usize,
    epochs: usize,
    last: Option<EpochMetrics>,
}

impl<'a> SearchProgress<'a> {
    fn new(
        err: &'a Stderr,
        grid: &ValidGrid,
        mine: &[Trial],
        finished: &HashSet<glorot_search::TrialId>,
        data: &SearchData,
        plan: ThreadPlan,
    ) -> Self {
        let rows = data.train_len() + data.validation_len();
        let cost: HashMap<usize, f64> = mine
            .iter()
            .map(|t| {
                let mut layers = vec![data.inputs()];
                layers.extend(&t.config.hidden);
                layers.push(data.classes());
                let per_row: usize = layers.windows(2).map(|w| w[0] * w[1]).sum();
                (t.index, (per_row * rows) as f64)
            })
            .collect();
        let remaining_cost = mine
            .iter()
            .filter(|t| !finished.contains(&t.id))
            .map(|t| cost[&t.index] * t.config.epochs as f64)
            .sum();
        SearchProgress {
            err,
            workers: plan.workers,
            grid_total: grid.len(),
            cost,
            started: Instant::now(),
            state: Mutex::new(ProgressState {
                remaining_cost,
                ..ProgressState::default()
            }),
            log: TrialLog::from_env(err),
        }
    }

    fn eta(&self, s: &ProgressState) -> Option<Duration> {
        if s.measured_cost <= 0.0 {
            return None;
        }
        let parallel = self.workers.min((s.in_shard - s.done).max(1)).max(1);
        let secs = s.remaining_cost * (s.measured_seconds / s.measured_cost) / parallel as f64;
        Some(Duration::from_secs_f64(secs.max(0.0)))
    }

    fn headline(&self, s: &ProgressState) -> String {
        format!(
            "{} {}/{} trials{}{} · {} running · {} elapsed · ETA {}",
            bar(s.done, s.in_shard, 24),
            s.done,
            s.in_shard,
            if s.failed > 0 {
                format!(" · {} failed", s.failed)
            } else {
                String::new()
            },
            if s.diverged > 0 {
                format!(" · {} diverged", s.diverged)
            } else {
                String::new()
            },
            s.running.len(),
            human_duration(self.started.elapsed()),
            self.eta(s).map_or_else(|| "?".to_owned(), human_duration)
        )
    }

    fn draw(&self, s: &mut ProgressState, force: bool) {
        if !self.err.is_live() {
            return;
        }
        let now = Instant::now();
        if !force
            && s.last_draw
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        s.last_draw = Some(now);
        let mut lines = vec![self.headline(s)];
        if common::stop_requested() {
            lines.push(format!("  {}", common::STOPPING));
        }
        for (index, r) in &s.running {
            lines.push(format!(
                "  #{index:<4} {:<28} epoch {}/{}{}",
                r.label,
                r.epoch.min(r.epochs),
                r.epochs,
                r.last
                    .map(|m| format!(
                        "  loss {:.4}  validation {:.2}%",
                        m.train_loss, m.val_accuracy
                    ))
                    .unwrap_or_default()
            ));
        }
        self.err.draw(&lines);
    }

    fn finish(&self, outcome: &glorot_search::RunOutcome) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.err.line(format!(
            "search: {} recorded in {} ({} of {} in this shard done; grid of {})",
            count(outcome.recorded, "trial", "trials"),
            human_duration(self.started.elapsed()),
            s.done,
            s.in_shard,
            self.grid_total
        ));
    }
}

/// The readable part of an id (`550x2-relu-lr0.1-b32`), without the hash.
fn short_label(id: &glorot_search::TrialId) -> String {
    match id.0.rsplit_once('-') {
        Some((head, hash)) if hash.len() == 12 => head.to_owned(),
        _ => id.0.clone(),
    }
}

impl SearchObserver for SearchProgress<'_> {
    fn on_plan(&self, in_shard: usize, already_done: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.in_shard = in_shard;
        s.done = already_done;
        self.draw(&mut s, true);
    }

    fn on_trial_start(&self, trial: &Trial) {
        self.log.event("start", &trial.id);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running.insert(
            trial.index,
            Running {
                label: short_label(&trial.id),
                epoch: 1,
                epochs: trial.config.epochs,
                last: None,
            },
        );
        if !self.err.is_live() {
            self.err.line(format!(
                "[{:>w$}/{}] start  {}",
                s.done,
                s.in_shard,
                trial.id,
                w = digits(s.in_shard)
            ));
        }
        self.draw(&mut s, true);
    }

    fn on_epoch(&self, trial: &Trial, m: &EpochMetrics) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let cost = self.cost.get(&trial.index).copied().unwrap_or(0.0);
        s.remaining_cost -= cost;
        s.measured_cost += cost;
        s.measured_seconds += m.seconds;
        if let Some(r) = s.running.get_mut(&trial.index) {
            r.epoch = m.epoch + 1;
            r.last = Some(*m);
        }
        if !self.err.is_live() {
            self.err.line(format!(
                "[{:>w$}/{}]   {}  epoch {}/{}  loss {:.6}  validation {:.2}%  {}",
                s.done,
                s.in_shard,
                trial.id,
                m.epoch,
                trial.config.epochs,
                m.train_loss,
                m.val_accuracy,
                human_duration(Duration::from_secs_f64(m.seconds)),
                w = digits(s.in_shard)
            ));
        }
        self.draw(&mut s, false);
    }

    fn on_trial_end(&self, record: &TrialRecord) {
        self.log.event("end", &record.id);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running.remove(&record.index);
        // Epochs a trial did not run (divergence, failure) are no longer remaining.
        let cost = self.cost.get(&record.index).copied().unwrap_or(0.0);
        let skipped = record.config.epochs.saturating_sub(record.epochs.len());
        s.remaining_cost = (s.remaining_cost - cost * skipped as f64).max(0.0);
        let what = match &record.status {
            TrialStatus::Ok => {
                s.done += 1;
                format!(
                    "validation {:.2}%",
                    record.final_val_accuracy.unwrap_or(f64::NAN)
                )
            }
            TrialStatus::Diverged { epoch } => {
                s.done += 1;
                s.diverged += 1;
                format!("diverged in epoch {epoch}")
            }
            TrialStatus::Failed { message } => {
                s.failed += 1;
                format!("FAILED: {message}")
            }
        };
        let eta = self.eta(&s).map_or_else(|| "?".to_owned(), human_duration);
        self.err.line(format!(
            "[{:>w$}/{}] done   {}  {what}  in {} · ETA {eta}",
            s.done,
            s.in_shard,
            record.id,
            human_duration(Duration::from_secs_f64(record.timings.seconds)),
            w = digits(s.in_shard)
        ));
        self.draw(&mut s, true);
    }

    fn on_finished_elsewhere(&self, trial: &Trial) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.done += 1;
        let cost = self.cost.get(&trial.index).copied().unwrap_or(0.0);
        s.remaining_cost = (s.remaining_cost - cost * trial.config.epochs as f64).max(0.0);
        self.err.line(format!(
            "[{:>w$}/{}] done   {}  by another runner",
            s.done,
            s.in_shard,
            trial.id,
            w = digits(s.in_shard)
        ));
        self.draw(&mut s, true);
    }

    fn on_warning(&self, message: &str) {
        self.err.warn(message);
    }

    fn should_stop(&self) -> bool {
        common::stop_requested()
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

// ---------------------------------------------------------------------------------------
// search status
// ---------------------------------------------------------------------------------------

/// Options of `glorot search status`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  glorot search status --out results/search\n  glorot search status --out results/search --shards 4 --json"
)]
struct StatusArgs {
    /// The results directory.
    #[arg(long, value_name = "DIR", default_value = "results/search")]
    out: PathBuf,
    /// Show per-shard counts for this many shards [default: the count the run used].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    shards: Option<usize>,
    /// Print the status as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    grid: GridOpts,
}

#[derive(Debug, Serialize)]
struct StatusReport {
    out: PathBuf,
    grid_source: String,
    context: SearchContext,
    total: usize,
    finished: usize,
    ok: usize,
    diverged: usize,
    complete: bool,
    failed: Vec<FailedTrial>,
    missing: Vec<glorot_search::TrialId>,
    /// Trials being trained now (their claims): by whom, the age of the heartbeat, and
    /// whether the claim is stale (its runner is gone; the next run takes it over).
    in_progress: Vec<ClaimStatus>,
    /// Record files that cannot be read (not counted; the next run moves them to
    /// `trials/quarantine/` and reruns their trials).
    unreadable_records: Vec<PathBuf>,
    /// `.json` files in `trials/` that are not records (ignored).
    ignored_files: Vec<PathBuf>,
    /// Temporary files: trials being written right now, or debris of a killed process.
    temporary_files: Vec<PathBuf>,
    /// Records of trials that are not in this grid (ignored by merge).
    outside_grid: usize,
    shards: Vec<ShardStatus>,
    trial_seconds_total: f64,
    best: Option<Ranked>,
}

/// Opens the results directory of a finished or running search.
fn open_results(out: &Path) -> Result<(Journal, SearchContext)> {
    if !journal::has_search(out) {
        bail!(
            "{} holds no search (no search.json); start one with `glorot search run --out {}`",
            out.display(),
            out.display()
        );
    }
    Ok(Journal::open_existing(out)?)
}

fn status(args: StatusArgs) -> Result<()> {
    let (journal, context) = open_results(&args.out)?;
    if let Some(plan) = glorot_search::StrategyPlan::stored(&args.out)? {
        return strategy::status(&args.out, &journal, context, &plan, args.json);
    }
    let (grid, source) = args.grid.resolve(&args.out)?;
    let scan = scan_records(&journal, &Stderr::new(false))?;
    let records = scan.records;
    let summary = Summary::merge(&grid, &records);
    let shard_count = args
        .shards
        .unwrap_or_else(|| journal::stored_shard_count(&args.out));
    let counts = StatusCounts::new(&grid, &summary, &records, shard_count);
    let report = StatusReport {
        out: args.out.clone(),
        grid_source: source,
        context,
        total: summary.total,
        finished: summary.finished,
        ok: counts.ok,
        diverged: counts.diverged,
        complete: summary.missing.is_empty(),
        failed: counts.failed,
        missing: summary.missing.clone(),
        in_progress: journal.claims()?,
        unreadable_records: scan.unreadable.into_iter().map(|(p, _)| p).collect(),
        ignored_files: scan.strays,
        temporary_files: journal.temporary_files()?,
        outside_grid: counts.outside_grid,
        shards: counts.shards,
        trial_seconds_total: summary.trial_seconds_total,
        best: summary.best.clone(),
    };
    if args.json {
        return print_json(&report);
    }
    let r = &report;
    out(format!(
        "{}: {} {}/{} trials finished ({} ok, {} diverged){}",
        r.out.display(),
        bar(r.finished, r.total, 24),
        r.finished,
        r.total,
        r.ok,
        r.diverged,
        if r.complete { ", complete" } else { "" }
    ))?;
    out(format!("grid: {}", r.grid_source))?;
    out(format!(
        "data: {} (master seed {})",
        r.context.data, r.context.master_seed
    ))?;
    if !r.failed.is_empty() {
        out(format!(
            "failed ({}, rerun by `search run`):",
            r.failed.len()
        ))?;
        for f in &r.failed {
            out(format!("  {}: {}", f.id, f.message))?;
        }
    }
    let not_started = r.missing.len() - r.failed.len().min(r.missing.len());
    if not_started > 0 {
        out(format!(
            "not finished: {}",
            count(not_started, "trial", "trials")
        ))?;
    }
    if !r.in_progress.is_empty() {
        out(format!("in progress ({}):", r.in_progress.len()))?;
        for c in &r.in_progress {
            out(format!(
                "  {}: pid {} on {}, heartbeat {} ago{}",
                c.id,
                c.claim.pid,
                c.claim.host,
                human_duration(Duration::from_secs_f64(c.heartbeat_age)),
                if c.stale {
                    " (stale: its runner is gone; the next run takes it over)"
                } else {
                    ""
                }
            ))?;
        }
    }
    if !r.temporary_files.is_empty() {
        out(format!(
            "temporary files: {} (trials being written now, or left by a killed process; harmless)",
            r.temporary_files.len()
        ))?;
    }
    if r.outside_grid > 0 {
        out(format!(
            "records outside this grid: {} (kept, ignored by merge)",
            r.outside_grid
        ))?;
    }
    for s in &r.shards {
        out(format!(
            "  shard {}: {}/{} finished",
            s.shard, s.finished, s.total
        ))?;
    }
    out(format!(
        "trial time so far: {}",
        human_duration(Duration::from_secs_f64(r.trial_seconds_total))
    ))?;
    if let Some(best) = &r.best {
        out(format!(
            "best{}: {}",
            if r.complete { "" } else { " so far" },
            describe_ranked(best)
        ))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// search merge
// ---------------------------------------------------------------------------------------

/// Options of `glorot search merge`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  glorot search merge --out results/search\n  python -c 'import pandas; print(pandas.read_csv(\"results/search/trials.csv\").head())'"
)]
struct MergeArgs {
    /// The results directory.
    #[arg(long, value_name = "DIR", default_value = "results/search")]
    out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    grid: GridOpts,
}

fn merge(args: MergeArgs) -> Result<()> {
    let (journal, _) = open_results(&args.out)?;
    if let Some(plan) = glorot_search::StrategyPlan::stored(&args.out)? {
        return strategy::merge(&args.out, &journal, &plan, args.json);
    }
    let (grid, _) = args.grid.resolve(&args.out)?;
    let records = scan_records(&journal, &Stderr::new(false))?.records;
    let summary = Summary::merge(&grid, &records);
    summary.write(&args.out, &records)?;
    if args.json {
        return print_json(&summary);
    }
    out(format!(
        "merged {} of {} trials{}: wrote {} and {}",
        summary.finished,
        summary.total,
        if summary.missing.is_empty() {
            String::new()
        } else {
            format!(
                " ({} not finished yet: a partial summary)",
                summary.missing.len()
            )
        },
        args.out.join("summary.json").display(),
        args.out.join("trials.csv").display()
    ))?;
    if let Some(best) = &summary.best {
        out(format!("best: {}", describe_ranked(best)))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// search best
// ---------------------------------------------------------------------------------------

/// Options of `glorot search best`.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  glorot search best --out results/search --top 10
  # Retrain the best from its seed and measure the test set once (writes best_test.json)
  glorot search best --out results/search --test
  # The same, keeping the retrained model (`glorot eval --weights best.safetensors`)
  glorot search best --out results/search --test --save-weights best.safetensors

With --test, pass the same data options as the search (the data is checked against it).

A trial depends only on its configuration and its seed: `search best` prints the
`glorot train` command that retrains it (--hidden, --activation, --init, --lr,
--batch-size, --epochs, --precision, --shuffle, --seed, the optimizer, schedule, warm-up
and early-stopping flags of a trial that has them, and the --blas-threads it ran with); with the search's data options added, its validation curve equals the trial's
record bit for bit. Any trial's seed and configuration are in trials/<id>.json.")]
struct BestArgs {
    /// The results directory.
    #[arg(long, value_name = "DIR", default_value = "results/search")]
    out: PathBuf,
    /// Show the first N of the ranking.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_positive)]
    top: usize,
    /// Retrain the best trial from its seed and evaluate the test split once; writes
    /// best_test.json.
    #[arg(long)]
    test: bool,
    /// BLAS threads of the retraining [default: the thread count the trial ran with, so
    /// the retrained curve can match the record bit for bit].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    blas_threads: Option<usize>,
    /// Save the retrained model's weights here (safetensors, as `glorot train
    /// --save-weights`; the file's metadata names the trial and its seed). With --test,
    /// whose retraining it keeps.
    #[arg(long, value_name = "FILE", requires = "test")]
    save_weights: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    grid: GridOpts,
    #[command(flatten)]
    data: DataOpts,
}

/// The `glorot train` command that retrains trial `r` (its configuration and seed, on
/// `blas_threads` BLAS threads when known); the search's data options are to be added.
fn train_command(r: &Ranked, blas_threads: Option<usize>) -> String {
    let c = &r.config;
    let hidden: Vec<String> = c.hidden.iter().map(ToString::to_string).collect();
    let mut cmd = format!(
        "glorot train --hidden {} --activation {} --init {} --lr {} --batch-size {} --epochs {} \
         --precision {} --shuffle {} --seed {}",
        hidden.join(","),
        c.activation,
        init_name(c.init),
        c.learning_rate,
        c.batch_size,
        c.epochs,
        c.precision,
        c.shuffle,
        r.seed
    );
    cmd.push_str(&training_flags(c));
    if let Some(t) = blas_threads {
        cmd.push_str(&format!(" --blas-threads {t}"));
    }
    cmd
}

/// The `glorot train` flags of a trial's optimizer, schedule, warm-up and early stopping;
/// empty when they are the defaults.
fn training_flags(c: &glorot_search::TrialConfig) -> String {
    let mut flags = String::new();
    let o = c.optimizer;
    if !o.is_default() {
        flags.push_str(&format!(" --optimizer {}", o.name()));
        match o {
            Optimizer::Momentum { momentum, .. } | Optimizer::Nesterov { momentum, .. } => {
                flags.push_str(&format!(" --momentum {momentum}"));
            }
            Optimizer::Adam {
                beta1, beta2, eps, ..
            }
            | Optimizer::AdamW {
                beta1, beta2, eps, ..
            } => flags.push_str(&format!(" --beta1 {beta1} --beta2 {beta2} --eps {eps:e}")),
            _ => {}
        }
        flags.push_str(&format!(" --weight-decay {}", o.weight_decay()));
    }
    if !c.lr_schedule.is_default() {
        flags.push_str(&format!(" --lr-schedule {}", c.lr_schedule));
    }
    if c.warmup_epochs > 0 {
        flags.push_str(&format!(" --warmup {}", c.warmup_epochs));
    }
    if let Some(rule) = c.early_stopping {
        flags.push_str(&format!(
            " --early-stopping {} --early-stopping-on {}",
            rule.patience, rule.monitor
        ));
    }
    flags
}

/// The one look at the test set, as `best --json` prints it (`best_test.json` holds its
/// key and evaluation: [`glorot_search::BestTest`]).
#[derive(Debug, Serialize)]
struct BestTest {
    schema_version: u32,
    trial: Ranked,
    evaluation: TestEvaluation,
    /// Where the retrained weights were saved (`--save-weights`).
    #[serde(skip_serializing_if = "Option::is_none")]
    weights: Option<PathBuf>,
    test_images: usize,
    data: DataInfo,
    manifest: glorot_search::Manifest,
}

#[derive(Debug, Serialize)]
struct BestReport {
    best: Option<Ranked>,
    /// The `glorot train` command retraining the best trial (plus the data options).
    reproduce: String,
    top: Vec<Ranked>,
    finished: usize,
    total: usize,
    test: Option<BestTest>,
}

fn best(args: BestArgs) -> Result<()> {
    let err = Stderr::new(args.quiet);
    let (journal, context) = open_results(&args.out)?;
    if glorot_search::StrategyPlan::stored(&args.out)?.is_some() {
        bail!(
            "{} holds a search run with --strategy: `glorot search merge --out {}` ranks it \
             (strategy_summary.json); `search best` reads grids only",
            args.out.display(),
            args.out.display()
        );
    }
    let (grid, _) = args.grid.resolve(&args.out)?;
    let records = scan_records(&journal, &err)?.records;
    let summary = Summary::merge(&grid, &records);
    let Some(best) = summary.best.clone() else {
        bail!(
            "no trial of the grid in {} has finished with an accuracy yet ({} of {} finished)",
            args.out.display(),
            summary.finished,
            summary.total
        );
    };
    if !summary.missing.is_empty() {
        err.warn(format!(
            "{} of {} trials are not finished: this is the best so far",
            summary.missing.len(),
            summary.total
        ));
    }
    let test = if args.test {
        Some(test_best(&args, &grid, &best, &records, &context, &err)?)
    } else {
        None
    };
    let ran_with = records
        .iter()
        .find(|r| r.id == best.id)
        .map(|r| r.manifest.blas_threads);
    let report = BestReport {
        reproduce: train_command(&best, ran_with),
        best: Some(best.clone()),
        top: summary.ranking.iter().take(args.top).cloned().collect(),
        finished: summary.finished,
        total: summary.total,
        test,
    };
    if args.json {
        return print_json(&report);
    }
    if args.top > 1 {
        for r in &report.top {
            out(format!("{:>4}. {}", r.rank, describe_ranked(r)))?;
        }
    } else {
        out(format!("best: {}", describe_ranked(&best)))?;
    }
    out(format!(
        "retrain it with: {} (and the search's data options)",
        report.reproduce
    ))?;
    if let Some(t) = &report.test {
        let e = &t.evaluation;
        out(format!(
            "test: accuracy {:.2}%, loss {:.6} on {} images (retrained from seed {}; {})",
            e.test_accuracy,
            e.test_loss,
            t.test_images,
            best.seed,
            if e.reproduced_record {
                "the retrained curve equals the recorded one bit for bit"
            } else {
                "the retrained curve differs from the record"
            }
        ))?;
        out(format!(
            "wrote {}",
            args.out.join("best_test.json").display()
        ))?;
        if let Some(p) = &t.weights {
            out(format!("saved the retrained weights to {}", p.display()))?;
        }
    }
    Ok(())
}

fn test_best(
    args: &BestArgs,
    grid: &ValidGrid,
    best: &Ranked,
    records: &[TrialRecord],
    context: &SearchContext,
    err: &Stderr,
) -> Result<BestTest> {
    let record = records.iter().find(|r| r.id == best.id);
    let threads = args
        .blas_threads
        .or(record.map(|r| r.manifest.blas_threads))
        .unwrap_or_else(common::cpus);
    let plan = ThreadPlan {
        workers: 1,
        blas_threads: threads,
    };
    common::set_blas_threads(threads);
    common::handle_interrupts();
    let loaded = args.data.load()?;
    let info = loaded.info();
    if loaded.description() != context.data {
        bail!(
            "the search in {} ran on other data ({}); this is {}: pass the search's data options",
            args.out.display(),
            context.data,
            loaded.description()
        );
    }
    let data = loaded.into_search_data(true);
    let trial = grid
        .trials()
        .into_iter()
        .find(|t| t.id == best.id)
        .context("the best trial is not in the grid")?;
    common::check_memory(
        "retraining the best trial",
        glorot_search::memory::run_bytes(std::slice::from_ref(&trial), &data, 1),
    )?;
    err.line(format!(
        "retraining {} from seed {} ({}, {}) to evaluate the test set once",
        trial.id,
        trial.seed,
        count(trial.config.epochs, "epoch", "epochs"),
        count(threads, "BLAS thread", "BLAS threads")
    ));
    if let Some(parent) = args
        .save_weights
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let progress = RetrainProgress { err };
    let evaluation = glorot_search::evaluate_on_test_saving(
        &trial,
        &data,
        record,
        &progress,
        args.save_weights.as_deref(),
    )?;
    err.clear();
    let Some(evaluation) = evaluation else {
        if common::stop_requested() {
            bail!("stopped by a signal before the test evaluation");
        }
        bail!(
            "the retrained model has no test result (it diverged); the record says {:?}",
            best.status
        );
    };
    if !evaluation.reproduced_record {
        err.warn(
            "the retrained validation curve differs from the recorded one (another BLAS thread \
             count, build or machine); the test result is for the retrained model",
        );
    }
    let result = BestTest {
        schema_version: 1,
        trial: best.clone(),
        evaluation,
        weights: args.save_weights.clone(),
        test_images: data.test_len(),
        data: info,
        manifest: common::manifest(plan),
    };
    glorot_search::BestTest {
        key: glorot_search::BestTest::key(&trial, &context.data),
        evaluation: Some(result.evaluation.clone()),
    }
    .write(&args.out)?;
    Ok(result)
}

/// Epoch lines while `best --test` retrains.
struct RetrainProgress<'a> {
    err: &'a Stderr,
}

impl SearchObserver for RetrainProgress<'_> {
    fn on_epoch(&self, trial: &Trial, m: &EpochMetrics) {
        self.err.line(format!(
            "  epoch {}/{}  loss {:.6}  validation {:.2}%  {}",
            m.epoch,
            trial.config.epochs,
            m.train_loss,
            m.val_accuracy,
            human_duration(Duration::from_secs_f64(m.seconds))
        ));
    }

    fn should_stop(&self) -> bool {
        common::stop_requested()
    }
}
