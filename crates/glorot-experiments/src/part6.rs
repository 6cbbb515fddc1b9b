//! Part 6: search strategies on the notebook's space (issue 18): successive halving,
//! Hyperband and random search against Part 2's grid, over several master seeds.
//!
//! On Part 2's space ([`Part6Options::space`]: the notebook's grid, with the same seed and
//! precision choices), for master seeds `seed`, `seed + 1`, `seed + 2`
//! ([`Part6Options::seeds`]):
//! - `sha`: synchronous successive halving over the whole space (`--samples` = the
//!   space's configurations, 135), budgets from [`MIN_EPOCHS`] to the grid's epochs (10)
//!   with `eta` [`ETA`]: 330 epochs;
//! - `hyperband`: Hyperband with the same budgets: 74 epochs;
//! - `random`: random search at Hyperband's budget, `samples` = Hyperband's epochs /
//!   max epochs (7 configurations of 10 epochs).
//!
//! Each search runs through [`glorot_search::run_strategy`] in its own journal,
//! `part6/<strategy>-seed<N>/` (the layout of `glorot search run --strategy`), so an
//! interrupted Part 6 resumes trial by trial. The grid's numbers are read from Part 2's
//! journal (`part2/`), never retrained: its epochs and its best final validation
//! accuracy. The issue's target: successive halving or Hyperband finds a configuration
//! within [`TARGET_GAP`] points of the grid's best validation accuracy with at most
//! [`BUDGET_FRACTION`] of the grid's epochs, in most seeds.

use std::path::Path;
use std::time::{Instant, SystemTime};

use glorot_mlp::{EpochMetrics, Precision};
use glorot_search::{
    GridSpec, Journal, SearchContext, SearchData, SearchObserver, Shard, StrategyKind,
    StrategyOptions, StrategyPlan, StrategySpec, StrategySummary, Summary, Trial, TrialRecord,
    TrialStatus, ValidGrid,
    strategy::{STRATEGY_SUMMARY_FILE, SearchState},
};
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::{Context as _, Error, Result};
use crate::observer::{Observer, Progress, epoch_units};
use crate::support::{RunContext, RunManifest, SCHEMA_VERSION, Seeds, count, write_json};

/// Master seeds of a full run: `seed`, `seed + 1`, `seed + 2`.
pub const SEEDS: usize = 3;
/// The smallest budget of successive halving and Hyperband, epochs.
pub const MIN_EPOCHS: usize = 1;
/// The halving rate: the best third of each rung continues.
pub const ETA: usize = 3;
/// The largest budget of a `--quick` run, epochs (the quick grid trains 1).
pub const QUICK_MAX_EPOCHS: usize = 3;
/// The issue's target: within this many points of the grid's best validation accuracy.
pub const TARGET_GAP: f64 = 0.1;
/// The issue's target: with at most this fraction of the grid's epochs.
pub const BUDGET_FRACTION: f64 = 0.25;
/// Slack of the gap comparison: accuracies are percentages of whole images, which a
/// difference of two doubles misses by a few ulps (98.33 - 98.23 is 0.0999999...).
const GAP_SLACK: f64 = 1e-9;

/// The strategies, in the order they run and are reported.
pub const STRATEGIES: [StrategyKind; 3] = [
    StrategyKind::Sha,
    StrategyKind::Hyperband,
    StrategyKind::Random,
];

/// `part6.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part6File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part6"`.
    pub part: String,
    /// Where and how the file was produced (its master seed is the first strategy seed).
    pub manifest: RunManifest,
    /// `true` for a `--quick` run (the quick grid's space on the quick subset, 1 seed,
    /// [`QUICK_MAX_EPOCHS`]).
    pub quick: bool,
    /// The space the strategies sample: Part 2's grid (its master seed is the grid's;
    /// each search replaces it with its own; its `epochs` axis is not used).
    pub space: GridSpec,
    /// The smallest budget, epochs.
    pub min_epochs: usize,
    /// The largest budget, epochs: every strategy's final rung.
    pub max_epochs: usize,
    /// The halving rate.
    pub eta: usize,
    /// [`TARGET_GAP`]: points of validation accuracy.
    pub target_gap: f64,
    /// [`BUDGET_FRACTION`]: of the grid's epochs.
    pub budget_fraction: f64,
    /// The grid, as Part 2's journal holds it.
    pub grid: Part6Grid,
    /// One entry per strategy: `sha`, `hyperband`, `random`.
    pub strategies: Vec<Part6Strategy>,
    /// Whether successive halving or Hyperband meets the issue's target (in most seeds).
    pub target_met: bool,
}

/// The grid's numbers, read from Part 2's journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part6Grid {
    /// Part 2's journal, relative to `part6.json` (`part2`).
    pub journal_dir: String,
    /// The grid's master seed (a decimal string).
    #[serde(with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// Trials in the grid.
    pub trials: usize,
    /// Epochs the grid trains: the sum of its trials' epochs (135 x 10).
    pub epochs: usize,
    /// The best trial by final validation accuracy (Part 2's ranking).
    pub best_id: Option<String>,
    /// Its final validation accuracy, percent.
    pub best_val_accuracy: Option<f64>,
}

/// One strategy over the seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part6Strategy {
    /// `sha`, `hyperband` or `random`.
    pub name: String,
    /// What it is, in words.
    pub description: String,
    /// Its parameters (the same for every seed).
    pub strategy: StrategySpec,
    /// One search per master seed.
    pub runs: Vec<Part6Run>,
    /// Searches within [`TARGET_GAP`] of the grid's best with at most
    /// [`BUDGET_FRACTION`] of its epochs.
    pub seeds_within_target: usize,
    /// Whether that is most of the seeds (more than half).
    pub meets_target: bool,
}

/// One search: a strategy with one master seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part6Run {
    /// The search's master seed (a decimal string).
    #[serde(with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// Its journal, relative to `part6.json` (`part6/<strategy>-seed<N>`).
    pub journal_dir: String,
    /// Configurations sampled.
    pub configurations: usize,
    /// Epochs the search trains ([`StrategyPlan::epochs`]).
    pub epochs: usize,
    /// Those epochs as a fraction of the grid's.
    pub grid_fraction: f64,
    /// Whether every rung is decided.
    pub complete: bool,
    /// Trials this invocation trained and recorded.
    pub recorded_now: usize,
    /// Sum of the search's trials' own wall times, seconds.
    pub trial_seconds: f64,
    /// The winner's trial (the best configuration of the final rung), when complete.
    pub best_id: Option<String>,
    /// Its final validation accuracy, percent.
    pub best_val_accuracy: Option<f64>,
    /// The grid's best validation accuracy minus the winner's, points (negative: the
    /// search found better than the grid).
    pub gap: Option<f64>,
    /// The grid's final validation accuracy of the winner's configuration (Part 2's trial
    /// of it; at the grid's epochs).
    pub grid_val_accuracy: Option<f64>,
    /// That trial's rank in the grid (1 = the grid's best).
    pub grid_rank: Option<usize>,
    /// Whether the gap is at most [`TARGET_GAP`] and the epochs at most
    /// [`BUDGET_FRACTION`] of the grid's.
    pub within_target: bool,
}

/// What Part 6 runs.
#[derive(Clone, Debug)]
pub struct Part6Options {
    /// Part 2's grid (seed and precision applied): the space, and the grid whose journal
    /// Part 6 compares with.
    pub space: ValidGrid,
    /// Master seeds of the searches.
    pub seeds: Vec<u64>,
    /// The smallest budget ([`MIN_EPOCHS`]).
    pub min_epochs: usize,
    /// The largest budget (the grid's epochs; [`QUICK_MAX_EPOCHS`] with `quick`).
    pub max_epochs: usize,
    /// The halving rate ([`ETA`]).
    pub eta: usize,
    /// Trials trained at the same time.
    pub workers: usize,
    /// A `--quick` run (recorded in the file).
    pub quick: bool,
}

impl Part6Options {
    /// Part 6 on Part 2's `grid`: [`SEEDS`] seeds from the grid's master seed, budgets
    /// from [`MIN_EPOCHS`] to the grid's largest epochs, [`ETA`]; with `quick`, one seed and
    /// [`QUICK_MAX_EPOCHS`].
    pub fn new(grid: ValidGrid, workers: usize, quick: bool) -> Self {
        let first = grid.spec().master_seed;
        let seeds = if quick { 1 } else { SEEDS };
        let max_epochs = if quick {
            QUICK_MAX_EPOCHS
        } else {
            grid.spec().epochs.iter().copied().max().unwrap_or(10)
        };
        Part6Options {
            seeds: (0..seeds as u64).map(|i| first.wrapping_add(i)).collect(),
            space: grid,
            min_epochs: MIN_EPOCHS,
            max_epochs,
            eta: ETA,
            workers,
            quick,
        }
    }

    /// The strategies' parameters: SHA over every configuration of the space, Hyperband,
    /// and random search at Hyperband's budget.
    ///
    /// # Errors
    /// When the space or the budgets are not a valid strategy.
    pub fn strategies(&self) -> Result<Vec<StrategySpec>> {
        let base = |kind| StrategySpec {
            kind,
            samples: None,
            min_epochs: self.min_epochs,
            max_epochs: self.max_epochs,
            eta: self.eta,
            brackets: None,
        };
        let hyperband = base(StrategyKind::Hyperband);
        let hyperband_epochs = StrategyPlan::new(self.space.spec(), &hyperband)?.epochs();
        Ok(STRATEGIES
            .iter()
            .map(|&kind| match kind {
                StrategyKind::Sha => StrategySpec {
                    samples: Some(configurations(&self.space)),
                    ..base(kind)
                },
                StrategyKind::Random => StrategySpec {
                    samples: Some((hyperband_epochs / self.max_epochs).max(1)),
                    ..base(kind)
                },
                _ => base(kind),
            })
            .collect())
    }
}

/// Distinct configurations of the grid, its epochs axis aside.
fn configurations(grid: &ValidGrid) -> usize {
    let ids: std::collections::HashSet<_> = grid
        .trials()
        .into_iter()
        .map(|t| {
            glorot_search::TrialConfig {
                epochs: 1,
                ..t.config
            }
            .id()
        })
        .collect();
    ids.len()
}

fn describe(spec: &StrategySpec, plan_epochs: usize) -> String {
    let budgets = format!(
        "{} to {} epochs, eta {}",
        spec.min_epochs, spec.max_epochs, spec.eta
    );
    match spec.kind {
        StrategyKind::Sha => format!(
            "synchronous successive halving over {} ({budgets}): {} in all",
            count(spec.samples.unwrap_or(0), "configuration", "configurations"),
            count(plan_epochs, "epoch", "epochs")
        ),
        StrategyKind::Hyperband => format!(
            "Hyperband, every bracket ({budgets}): {} in all",
            count(plan_epochs, "epoch", "epochs")
        ),
        _ => format!(
            "random search at Hyperband's budget: {} of {} epochs, {} in all",
            count(spec.samples.unwrap_or(0), "configuration", "configurations"),
            spec.max_epochs,
            count(plan_epochs, "epoch", "epochs")
        ),
    }
}

/// The grid's numbers from Part 2's journal in `out/part2`.
fn grid_reference(out: &Path, grid: &ValidGrid, description: &str) -> Result<(Part6Grid, Summary)> {
    let dir = out.join("part2");
    let missing = || {
        Error::Incomplete(format!(
            "Part 6 compares with Part 2's grid, and {} holds no grid journal: run Part 2 \
             first (--parts 2,6)",
            dir.display()
        ))
    };
    if !glorot_search::journal::has_search(&dir) {
        return Err(missing());
    }
    let (journal, context) = Journal::open_existing(&dir)
        .with_context(|| format!("reading Part 2's journal {}", dir.display()))?;
    let seed = grid.spec().master_seed;
    if context.master_seed != seed || context.data != description {
        return Err(Error::InvalidOptions(format!(
            "Part 6 compares with Part 2's grid on the same data and master seed, and {} \
             holds a grid with master seed {} on {} (this run: master seed {seed} on {})",
            dir.display(),
            context.master_seed,
            context.data,
            description
        )));
    }
    let records = journal
        .records()
        .with_context(|| format!("reading Part 2's journal {}", dir.display()))?;
    let summary = Summary::merge(grid, &records);
    if summary.finished < summary.total {
        return Err(Error::Incomplete(format!(
            "Part 6 compares with Part 2's complete grid, and {} holds {} of its {} trials: \
             run Part 2 first (--parts 2,6)",
            dir.display(),
            summary.finished,
            summary.total
        )));
    }
    let reference = Part6Grid {
        journal_dir: "part2".to_owned(),
        master_seed: seed,
        trials: summary.total,
        epochs: grid.trials().iter().map(|t| t.config.epochs).sum(),
        best_id: summary.best.as_ref().map(|b| b.id.to_string()),
        best_val_accuracy: summary.best.as_ref().and_then(|b| b.final_val_accuracy),
    };
    Ok((reference, summary))
}

/// Epochs the finished trials of `state` trained (each rung continues the previous one's).
fn done_epochs(state: &SearchState) -> usize {
    let mut done = 0;
    let mut prev: Option<(usize, usize)> = None;
    for r in &state.rungs {
        let before = match prev {
            Some((bracket, budget)) if bracket == r.bracket && r.rung > 0 => budget,
            _ => 0,
        };
        done += r.finished * r.budget.saturating_sub(before);
        prev = Some((r.bracket, r.budget));
    }
    done
}

/// One search, ready to run.
struct Search {
    kind: StrategyKind,
    seed: u64,
    rel: String,
    plan: StrategyPlan,
    journal: Journal,
    units: f64,
}

/// Runs the searches (resuming), compares them with Part 2's grid, writes `part6.json`.
///
/// # Errors
/// When Part 2's journal is missing, incomplete or from other data or another seed; when
/// a search's journal belongs to another search; when a search stops or a trial fails
/// before the end (`part6.json` is still written, with the searches that finished); or a
/// results file cannot be written.
pub fn run(
    out: &Path,
    data: &Data,
    options: &Part6Options,
    ctx: &RunContext,
    observer: &dyn Observer,
) -> Result<Part6File> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let description = data.description();
    let grid = &options.space;
    let (reference, grid_summary) = grid_reference(out, grid, &description)?;
    let specs = options.strategies()?;
    let m = &data.mnist;
    let search_data = SearchData::new(
        m.train.images.clone(),
        glorot_tensor::one_hot::<f32>(&m.train.labels, glorot_mnist::NUM_CLASSES),
        m.validation.images.clone(),
        m.validation.labels.clone(),
        description.clone(),
    );
    let units = |hidden: &[usize]| {
        let mut layers = vec![glorot_mnist::PIXELS];
        layers.extend(hidden);
        layers.push(glorot_mnist::NUM_CLASSES);
        epoch_units(&layers, data.info.train, data.info.validation)
    };

    // Every search's plan and journal first, for the progress line's total.
    let mut searches = Vec::new();
    let mut pending = 0.0;
    for &seed in &options.seeds {
        for spec in &specs {
            let mut space = grid.spec().clone();
            space.master_seed = seed;
            let valid = space.clone().validate()?;
            let plan = StrategyPlan::new(&space, spec)?;
            let rel = format!("part6/{}-seed{seed}", spec.kind);
            let dir = out.join(&rel);
            let journal = Journal::open(
                &dir,
                &SearchContext {
                    master_seed: seed,
                    data: description.clone(),
                },
            )
            .with_context(|| {
                format!(
                    "opening the Part 6 journal {} (a journal from another seed or other \
                     data is never mixed in: use another --out, or delete that directory to \
                     start over)",
                    dir.display()
                )
            })?;
            plan.store(&dir)
                .with_context(|| format!("storing the strategy in {}", dir.display()))?;
            glorot_search::journal::store_grid(&dir, &valid)?;
            let samples = &plan.file().samples;
            let mean_units = samples.iter().map(|s| units(&s.config.hidden)).sum::<f64>()
                / samples.len().max(1) as f64;
            let state = plan.state(&journal)?;
            pending += plan.epochs().saturating_sub(done_epochs(&state)) as f64 * mean_units;
            searches.push(Search {
                kind: spec.kind,
                seed,
                rel,
                plan,
                journal,
                units: mean_units,
            });
        }
    }

    let progress = Progress::new("part 6", pending, observer);
    let mut runs: Vec<(StrategyKind, Part6Run)> = Vec::new();
    let mut unfinished = Vec::new();
    for search in &searches {
        let watcher = SearchProgress {
            progress: &progress,
            label: format!("{} seed {}", search.kind, search.seed),
            units: search.units,
        };
        let outcome = glorot_search::run_strategy(
            &search.plan,
            &search_data,
            &search.journal,
            &ctx.machine,
            StrategyOptions {
                workers: options.workers,
                shard: Shard::ALL,
                wait: true,
            },
            &watcher,
        )
        .with_context(|| format!("Part 6, {}", search.rel))?;
        let state = search.plan.state(&search.journal)?;
        let summary = StrategySummary::new(&search.plan, &state);
        if state.complete {
            write_json(&search.journal.dir().join(STRATEGY_SUMMARY_FILE), &summary)?;
        } else {
            unfinished.push(search.rel.clone());
        }
        let mut row = run_row(search, &state, &summary, &reference, &grid_summary);
        row.recorded_now = outcome.recorded;
        runs.push((search.kind, row));
    }
    progress.finish();

    let strategies: Vec<Part6Strategy> = specs
        .iter()
        .map(|spec| {
            let mine: Vec<Part6Run> = runs
                .iter()
                .filter(|(k, _)| *k == spec.kind)
                .map(|(_, r)| r.clone())
                .collect();
            let within = mine.iter().filter(|r| r.within_target).count();
            let plan_epochs = mine.first().map_or(0, |r| r.epochs);
            Part6Strategy {
                name: spec.kind.name().to_owned(),
                description: describe(spec, plan_epochs),
                strategy: spec.clone(),
                meets_target: 2 * within > mine.len(),
                seeds_within_target: within,
                runs: mine,
            }
        })
        .collect();
    let target_met = strategies
        .iter()
        .any(|s| s.meets_target && s.name != StrategyKind::Random.name());
    let file = Part6File {
        schema_version: SCHEMA_VERSION,
        part: "part6".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            grid.spec()
                .precision
                .first()
                .copied()
                .unwrap_or(Precision::F32),
            Seeds {
                master_seed: options.seeds.first().copied(),
                numpy_seed: None,
            },
            &data.info,
        ),
        quick: options.quick,
        space: grid.spec().clone(),
        min_epochs: options.min_epochs,
        max_epochs: options.max_epochs,
        eta: options.eta,
        target_gap: TARGET_GAP,
        budget_fraction: BUDGET_FRACTION,
        grid: reference,
        strategies,
        target_met,
    };
    write_json(&out.join("part6.json"), &file)?;
    if !unfinished.is_empty() {
        return Err(Error::Incomplete(format!(
            "Part 6: {} did not finish ({}); run the same command again to continue",
            count(unfinished.len(), "search", "searches"),
            unfinished.join(", ")
        )));
    }
    Ok(file)
}

/// The row of one search: its epochs, its winner and the comparison with the grid.
fn run_row(
    search: &Search,
    state: &SearchState,
    summary: &StrategySummary,
    grid: &Part6Grid,
    grid_summary: &Summary,
) -> Part6Run {
    let epochs = search.plan.epochs();
    let best = summary.best().filter(|_| state.complete);
    let best_val_accuracy = best.and_then(|b| b.val_accuracy);
    let gap = best_val_accuracy
        .zip(grid.best_val_accuracy)
        .map(|(found, top)| top - found);
    // Part 2's trial of the winner's configuration (at the grid's epochs).
    let in_grid = best.and_then(|b| {
        grid_summary.ranking.iter().find(|r| {
            glorot_search::TrialConfig {
                epochs: r.config.epochs,
                ..b.config.clone()
            } == r.config
        })
    });
    Part6Run {
        master_seed: search.seed,
        journal_dir: search.rel.clone(),
        configurations: search.plan.file().samples.len(),
        epochs,
        grid_fraction: if grid.epochs == 0 {
            0.0
        } else {
            epochs as f64 / grid.epochs as f64
        },
        complete: state.complete,
        recorded_now: 0,
        trial_seconds: state
            .records
            .iter()
            .map(|(_, _, r)| r.timings.seconds)
            .sum(),
        best_id: best.map(|b| b.id.to_string()),
        best_val_accuracy,
        gap,
        grid_val_accuracy: in_grid.and_then(|r| r.final_val_accuracy),
        grid_rank: in_grid.map(|r| r.rank),
        within_target: within_target(gap, epochs, grid.epochs),
    }
}

/// The issue's target for one search: a gap of at most [`TARGET_GAP`] points with at most
/// [`BUDGET_FRACTION`] of the grid's epochs.
fn within_target(gap: Option<f64>, epochs: usize, grid_epochs: usize) -> bool {
    epochs as f64 <= BUDGET_FRACTION * grid_epochs as f64
        && gap.is_some_and(|g| g <= TARGET_GAP + GAP_SLACK)
}

/// Forwards a search's events to the part's [`Progress`] line.
struct SearchProgress<'a, 'o> {
    progress: &'a Progress<'o>,
    label: String,
    units: f64,
}

impl SearchObserver for SearchProgress<'_, '_> {
    fn on_epoch(&self, trial: &Trial, m: &EpochMetrics) {
        self.progress.advance(
            self.units,
            &format!(
                "{}: {} epoch {}/{}: loss {:.4}, validation {:.2}%",
                self.label, trial.id, m.epoch, trial.config.epochs, m.train_loss, m.val_accuracy
            ),
        );
    }

    fn on_trial_end(&self, record: &TrialRecord) {
        match &record.status {
            TrialStatus::Ok => {}
            TrialStatus::Diverged { epoch } => self.progress.note(&format!(
                "{}: {} diverged in epoch {epoch}",
                self.label, record.id
            )),
            TrialStatus::Failed { message } => self
                .progress
                .note(&format!("{}: {} failed: {message}", self.label, record.id)),
        }
    }

    fn on_warning(&self, message: &str) {
        self.progress.note(&format!("{}: {message}", self.label));
    }

    fn should_stop(&self) -> bool {
        self.progress.should_stop()
    }
}

/// `REPORT.md`'s section: one row per search against the grid's, and the issue's target.
pub(crate) fn report(s: &mut String, p: &Part6File) {
    use std::fmt::Write as _;

    let g = &p.grid;
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let acc = |v: Option<f64>| v.map_or("–".to_owned(), |a| format!("{a:.2}"));
    let _ = writeln!(
        s,
        "## Part 6: search strategies\n\n\
         Successive halving, Hyperband and random search (`glorot_search::strategy`) on \
         Part 2's space ({}), each run from {} as `glorot search run --strategy` runs it, in \
         its own journal `part6/<strategy>-seed<N>/`; budgets from {} to {} epochs, eta {}. \
         The grid's numbers are Part 2's (`{}/`, read, not retrained): {} trials, {} epochs, \
         best final validation accuracy {}{}. The issue's target: successive halving or \
         Hyperband finds a configuration within {} points of the grid's best validation \
         accuracy with at most {} of the grid's epochs, in most seeds.{}\n",
        count(g.trials, "configuration", "configurations"),
        count(
            p.strategies.first().map_or(0, |x| x.runs.len()),
            "master seed",
            "master seeds"
        ),
        p.min_epochs,
        p.max_epochs,
        p.eta,
        g.journal_dir,
        g.trials,
        crate::report::group(g.epochs),
        acc(g.best_val_accuracy),
        g.best_id
            .as_ref()
            .map_or(String::new(), |id| format!(" (`{id}`)")),
        p.target_gap,
        pct(p.budget_fraction),
        if p.quick {
            " **Quick run**: the quick grid's space on a subset of the data; not comparable \
             with the issue's target."
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| search | master seed | epochs (share of the grid's) | configurations | best configuration found | its validation accuracy (%) | gap to the grid's best (points) | the grid's accuracy of that configuration (rank) | within the target |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        s,
        "| grid (Part 2) | {} | {} (100%) | {} | {} | {} | – | – | – |",
        g.master_seed,
        crate::report::group(g.epochs),
        g.trials,
        g.best_id
            .as_ref()
            .map_or("–".to_owned(), |id| format!("`{id}`")),
        acc(g.best_val_accuracy)
    );
    for st in &p.strategies {
        for r in &st.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} |",
                st.name,
                r.master_seed,
                crate::report::group(r.epochs),
                pct(r.grid_fraction),
                r.configurations,
                match (&r.best_id, r.complete) {
                    (Some(id), _) => format!("`{id}`"),
                    (None, false) => "not finished".to_owned(),
                    (None, true) => "none (every trial diverged)".to_owned(),
                },
                acc(r.best_val_accuracy),
                r.gap.map_or("–".to_owned(), |g| format!("{g:+.2}")),
                match (r.grid_val_accuracy, r.grid_rank) {
                    (Some(a), Some(k)) => format!("{a:.2} ({k})"),
                    _ => "–".to_owned(),
                },
                if r.within_target { "yes" } else { "no" }
            );
        }
    }
    let _ = writeln!(s);
    for st in &p.strategies {
        let _ = writeln!(s, "- `{}`: {}.", st.name, st.description);
    }
    let _ = writeln!(s);
    if p.space.epochs == [p.max_epochs] {
        let _ = writeln!(
            s,
            "A search's trial of a configuration is seeded with the seed of that configuration \
         at {} epochs, derived from the search's master seed. With master seed {} (the \
         grid's own), that is the seed of the grid's trial of the same configuration, so \
         those searches follow the grid's own training runs (successive halving ranks the \
         grid's trials by their early epochs, and its winner's accuracy is the grid's \
         number for that configuration); the other seeds draw other samples and train \
         from other seeds, which is why they matter.\n",
            p.max_epochs, g.master_seed
        );
    }
    let verdict = if p.quick {
        "A quick run says nothing about the issue's target.".to_owned()
    } else if p
        .strategies
        .iter()
        .any(|st| st.runs.iter().any(|r| !r.complete))
    {
        "Not every search finished, so this says nothing yet about the issue's target: run \
         the same command again to continue."
            .to_owned()
    } else {
        let parts: Vec<String> = p
            .strategies
            .iter()
            .map(|st| {
                format!(
                    "{} in {} of {}",
                    name(&st.name),
                    st.seeds_within_target,
                    count(st.runs.len(), "seed", "seeds")
                )
            })
            .collect();
        format!(
            "Within {} points of the grid's best with at most {} of its epochs: {}. {}",
            p.target_gap,
            pct(p.budget_fraction),
            parts.join(", "),
            if p.target_met {
                let met: Vec<&str> = p
                    .strategies
                    .iter()
                    .filter(|st| st.meets_target && st.name != StrategyKind::Random.name())
                    .map(|st| name(&st.name))
                    .collect();
                format!("The issue's target is met, by {}.", met.join(" and "))
            } else {
                "The issue's target is **not** met: neither successive halving nor \
                 Hyperband gets there in most seeds."
                    .to_owned()
            }
        )
    };
    let _ = writeln!(s, "{verdict}\n");
}

fn name(strategy: &str) -> &str {
    match strategy {
        "sha" => "successive halving",
        "hyperband" => "Hyperband",
        "random" => "random search",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glorot_search::strategy::RungState;

    #[test]
    fn the_notebook_space_gives_the_issues_budgets() {
        let options = Part6Options::new(GridSpec::notebook().validate().unwrap(), 2, false);
        assert_eq!(options.seeds, [0, 1, 2]);
        assert_eq!(
            (options.min_epochs, options.max_epochs, options.eta),
            (1, 10, 3)
        );
        let specs = options.strategies().unwrap();
        let kinds: Vec<_> = specs.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, STRATEGIES);
        assert_eq!(specs[0].samples, Some(135));
        assert_eq!(specs[2].samples, Some(7));
        // Hand calculations with glorot_search::strategy's rules (s_max = 2): SHA over the
        // 135 configurations, 135 x 1 + 45 x 2 + 15 x 7 = 330 (the issue's "about 330");
        // Hyperband 22 + 22 + 30 = 74 (strategy.rs's test); random 74 / 10 = 7 x 10 = 70.
        let epochs: Vec<usize> = specs
            .iter()
            .map(|s| StrategyPlan::new(options.space.spec(), s).unwrap().epochs())
            .collect();
        assert_eq!(epochs, [330, 74, 70]);
        // The grid's seed starts the seeds; a quick run has one seed and 3 epochs at most.
        let mut seven = GridSpec::notebook();
        seven.master_seed = 7;
        let options = Part6Options::new(seven.validate().unwrap(), 1, false);
        assert_eq!(options.seeds, [7, 8, 9]);
        let quick = Part6Options::new(
            GridSpec::preset("quick").unwrap().validate().unwrap(),
            1,
            true,
        );
        assert_eq!((quick.seeds.as_slice(), quick.max_epochs), (&[0u64][..], 3));
        assert_eq!(quick.strategies().unwrap()[0].samples, Some(12));
    }

    #[test]
    fn done_epochs_count_what_each_rung_added() {
        let rung = |bracket, rung, budget, finished| RungState {
            bracket,
            rung,
            budget,
            trials: finished,
            finished,
            decided: true,
            promoted: Vec::new(),
        };
        // Hyperband on the notebook's space, every rung finished: 74 epochs (above).
        let mut state = SearchState {
            rungs: vec![
                rung(2, 0, 1, 9),
                rung(2, 1, 3, 3),
                rung(2, 2, 10, 1),
                rung(1, 0, 3, 5),
                rung(1, 1, 10, 1),
                rung(0, 0, 10, 3),
            ],
            ..SearchState::default()
        };
        assert_eq!(done_epochs(&state), 74);
        // Four trials of the first rung done: 4 epochs.
        state.rungs = vec![rung(2, 0, 1, 4), rung(2, 1, 3, 0), rung(2, 2, 10, 0)];
        assert_eq!(done_epochs(&state), 4);
    }

    #[test]
    fn the_target_needs_the_gap_and_the_budget() {
        // 98.33 - 98.23 is 0.0999999999999943 in doubles: within 0.1 points.
        assert!(within_target(Some(98.33 - 98.23), 330, 1350));
        assert!(!within_target(Some(98.33 - 98.22), 330, 1350));
        // A quarter of 1,350 is 337.5 epochs.
        assert!(!within_target(Some(0.0), 338, 1350));
        assert!(within_target(Some(-0.05), 74, 1350));
        assert!(!within_target(None, 74, 1350));
    }

    /// A full run's file with `within[s][i]`: strategy `s`, seed `i` within the target.
    fn fixture(within: [[bool; 3]; 3]) -> Part6File {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results");
        let p2 = crate::support::read_json::<crate::part2::Part2File>(&out.join("part2.json"))
            .unwrap()
            .expect("the committed results/part2.json");
        let options = Part6Options::new(GridSpec::notebook().validate().unwrap(), 2, false);
        let strategies = options
            .strategies()
            .unwrap()
            .into_iter()
            .zip(within)
            .map(|(spec, within)| {
                let runs: Vec<Part6Run> = within
                    .iter()
                    .enumerate()
                    .map(|(seed, &ok)| Part6Run {
                        master_seed: seed as u64,
                        journal_dir: format!("part6/{}-seed{seed}", spec.kind),
                        configurations: 1,
                        epochs: 74,
                        grid_fraction: 74.0 / 1350.0,
                        complete: true,
                        recorded_now: 0,
                        trial_seconds: 1.0,
                        best_id: Some("550x2-relu-lr0.1-b32-97fb72912850".to_owned()),
                        best_val_accuracy: Some(if ok { 98.3 } else { 98.0 }),
                        gap: Some(if ok { 0.03 } else { 0.33 }),
                        grid_val_accuracy: Some(98.33),
                        grid_rank: Some(1),
                        within_target: ok,
                    })
                    .collect();
                let n = runs.iter().filter(|r| r.within_target).count();
                Part6Strategy {
                    name: spec.kind.name().to_owned(),
                    description: describe(&spec, 74),
                    strategy: spec,
                    seeds_within_target: n,
                    meets_target: 2 * n > runs.len(),
                    runs,
                }
            })
            .collect::<Vec<_>>();
        Part6File {
            schema_version: SCHEMA_VERSION,
            part: "part6".to_owned(),
            manifest: p2.manifest,
            quick: false,
            space: options.space.spec().clone(),
            min_epochs: 1,
            max_epochs: 10,
            eta: 3,
            target_gap: TARGET_GAP,
            budget_fraction: BUDGET_FRACTION,
            grid: Part6Grid {
                journal_dir: "part2".to_owned(),
                master_seed: 0,
                trials: 135,
                epochs: 1350,
                best_id: Some("550x2-relu-lr0.1-b32-97fb72912850".to_owned()),
                best_val_accuracy: Some(98.33),
            },
            target_met: strategies
                .iter()
                .any(|s| s.meets_target && s.name != "random"),
            strategies,
        }
    }

    #[test]
    fn the_report_says_where_the_target_lands() {
        let mut s = String::new();
        report(
            &mut s,
            &fixture([[true, true, false], [false, false, true], [true; 3]]),
        );
        assert!(s.contains("## Part 6: search strategies"), "{s}");
        assert!(
            s.contains("| grid (Part 2) | 0 | 1,350 (100%) | 135 |"),
            "{s}"
        );
        assert!(
            s.contains(
                "successive halving in 2 of 3 seeds, Hyperband in 1 of 3 seeds, random search \
                 in 3 of 3 seeds. The issue's target is met, by successive halving."
            ),
            "{s}"
        );
        assert!(s.contains("With master seed 0 (the grid's own)"), "{s}");
        // Random search alone does not meet the issue's target.
        let mut s = String::new();
        report(
            &mut s,
            &fixture([[true, false, false], [false; 3], [true; 3]]),
        );
        assert!(s.contains("The issue's target is **not** met"), "{s}");
        // An unfinished search: no verdict.
        let mut p = fixture([[true; 3]; 3]);
        p.strategies[1].runs[2].complete = false;
        let mut s = String::new();
        report(&mut s, &p);
        assert!(s.contains("Not every search finished"), "{s}");
    }
}
