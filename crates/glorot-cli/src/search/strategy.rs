//! `glorot search run --strategy random|sha|hyperband`, and `status` / `merge` of a
//! directory holding such a search (see `glorot_search::strategy`).

use std::path::Path;

use anyhow::{Result, bail};
use clap::Args;
use glorot_experiments::count;
use glorot_search::{
    Journal, SearchContext, SearchObserver, StrategyKind, StrategyOptions, StrategyPlan,
    StrategySpec, StrategySummary, Trial, TrialRecord, TrialStatus, journal,
    strategy::{RungState, STRATEGY_SUMMARY_FILE},
};
use serde::Serialize;

use super::{GridOpts, RunArgs, shard_from, store_grid};
use crate::common::{self, Stderr, out, parse_positive, print_json, usage};

/// The strategy options of `glorot search run`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Strategy")]
pub(super) struct StrategyOpts {
    /// grid (every combination of the axes; the default), random (--samples
    /// configurations sampled from the axes and the grid file's ranges), sha (synchronous
    /// successive halving) or hyperband. Default: the strategy stored in --out, else grid.
    #[arg(long, value_name = "NAME", value_parser = parse_strategy)]
    strategy: Option<StrategyKind>,
    /// Configurations to sample (random: required; sha: default eta^s_max).
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    samples: Option<usize>,
    /// The smallest budget in epochs (sha, hyperband) [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    min_epochs: Option<usize>,
    /// The largest budget in epochs, every strategy's final rung [default: the largest
    /// value of the epochs axis].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    max_epochs: Option<usize>,
    /// Halving rate: the best 1/eta of each rung continue to the next [default: 3].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    eta: Option<usize>,
    /// Hyperband's number of brackets, most aggressive first [default: all].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    brackets: Option<usize>,
    /// Exit when no trial can be claimed now (the next rung waits for trials other
    /// runners train) instead of waiting for them: for one Slurm array per rung.
    #[arg(long)]
    no_wait: bool,
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    s.parse().map_err(|e: glorot_search::Error| e.to_string())
}

impl StrategyOpts {
    fn has_parameters(&self) -> bool {
        self.samples.is_some()
            || self.min_epochs.is_some()
            || self.max_epochs.is_some()
            || self.eta.is_some()
            || self.brackets.is_some()
    }

    /// The strategy to run: from the flags, else the one stored in `out`; `None` for a
    /// grid.
    pub(super) fn resolve(&self, out: &Path, grid: &GridOpts) -> Result<Option<StrategySpec>> {
        let stored = StrategyPlan::stored(out)?;
        let kind = match (self.strategy, &stored) {
            (Some(k), _) => k,
            (None, Some(plan)) => plan.strategy().kind,
            (None, None) => StrategyKind::Grid,
        };
        if kind == StrategyKind::Grid {
            if let Some(plan) = &stored {
                return usage(format!(
                    "{} holds a {} search (strategy.json): run it with --strategy {}, or use \
                     another --out for the grid",
                    out.display(),
                    plan.strategy().kind,
                    plan.strategy().kind
                ));
            }
            if self.has_parameters() {
                return usage(
                    "--samples, --min-epochs, --max-epochs, --eta and --brackets need \
                     --strategy random, sha or hyperband",
                );
            }
            return Ok(None);
        }
        let base = stored
            .filter(|p| p.strategy().kind == kind && !self.has_parameters())
            .map(|p| p.strategy().clone());
        if let Some(spec) = base {
            return Ok(Some(spec));
        }
        let max_epochs = match self.max_epochs {
            Some(n) => n,
            None => {
                let (grid, _) = grid.resolve(out)?;
                grid.spec().epochs.iter().copied().max().unwrap_or(10)
            }
        };
        Ok(Some(StrategySpec {
            kind,
            samples: self.samples,
            min_epochs: self.min_epochs.unwrap_or(1),
            max_epochs,
            eta: self.eta.unwrap_or(3),
            brackets: self.brackets,
        }))
    }
}

/// What `glorot search run --strategy ... --json` prints.
#[derive(Debug, Serialize)]
struct StrategyRunReport {
    out: std::path::PathBuf,
    grid_source: String,
    strategy: StrategySpec,
    shard: glorot_search::Shard,
    workers: usize,
    blas_threads: usize,
    /// Trials run and recorded by this process.
    recorded: usize,
    /// Of those, failed (rerun next time).
    failed: usize,
    /// Recorded by other runners while this one waited for them.
    finished_elsewhere: usize,
    /// Stopped by a signal.
    stopped: bool,
    /// Every rung decided (then strategy_summary.json was written).
    complete: bool,
    /// Epochs the whole search trains.
    epochs: usize,
    rungs: Vec<RungState>,
    best: Option<glorot_search::strategy::StrategyRanked>,
}

/// Runs a strategy: `glorot search run --strategy random|sha|hyperband`.
pub(super) fn run(args: &RunArgs, spec: StrategySpec) -> Result<()> {
    let err = Stderr::new(args.quiet);
    let (grid, source) = args.grid.resolve(&args.out)?;
    let plan = StrategyPlan::new(grid.spec(), &spec)?;
    let shard = shard_from(args.shard, args.shard_count)?;
    let threads = common::plan_threads(
        args.workers,
        args.blas_threads,
        args.oversubscribe,
        common::cpus(),
    )?;
    common::handle_interrupts();
    common::set_blas_threads(threads.blas_threads);
    let loaded = args.data.load()?;
    let description = loaded.description();
    let data = loaded.into_search_data(false);
    let trials: Vec<Trial> = plan
        .file()
        .samples
        .iter()
        .map(|s| Trial {
            index: s.index,
            id: s.id.clone(),
            seed: s.seed,
            config: s.config.clone(),
        })
        .collect();
    common::check_memory(
        "this search",
        glorot_search::memory::run_bytes(&trials, &data, threads.workers),
    )?;
    let journal = Journal::open(
        &args.out,
        &SearchContext {
            master_seed: grid.spec().master_seed,
            data: description,
        },
    )?;
    store_grid(&args.out, &grid, &err)?;
    plan.store(&args.out)?;
    if shard.count > 1 {
        journal::store_shard_count(&args.out, shard.count)?;
    }
    err.line(format!(
        "search: {} over {} ({source}): {} configurations, {} epochs in all; {} x {}; \
         results in {}",
        spec.kind,
        if grid.spec().ranges.is_empty() {
            "the axes"
        } else {
            "the axes and ranges"
        },
        plan.file().samples.len(),
        plan.epochs(),
        count(threads.workers, "worker", "workers"),
        count(threads.blas_threads, "BLAS thread", "BLAS threads"),
        args.out.display()
    ));
    let progress = Progress { err: &err };
    let outcome = glorot_search::run_strategy(
        &plan,
        &data,
        &journal,
        &common::manifest(threads),
        StrategyOptions {
            workers: threads.workers,
            shard,
            wait: !args.strategy.no_wait,
        },
        &progress,
    )?;
    let state = plan.state(&journal)?;
    let summary = StrategySummary::new(&plan, &state);
    if state.complete {
        journal::write_json(&args.out.join(STRATEGY_SUMMARY_FILE), &summary)?;
    }
    let report = StrategyRunReport {
        out: args.out.clone(),
        grid_source: source,
        strategy: spec,
        shard,
        workers: threads.workers,
        blas_threads: threads.blas_threads,
        recorded: outcome.recorded,
        failed: outcome.failed,
        finished_elsewhere: outcome.finished_elsewhere,
        stopped: outcome.stopped,
        complete: state.complete,
        epochs: plan.epochs(),
        rungs: state.rungs.clone(),
        best: summary.best().cloned(),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_rungs(&state.rungs)?;
        out(format!(
            "{} run now{}{}",
            count(outcome.recorded, "trial", "trials"),
            if outcome.finished_elsewhere > 0 {
                format!(
                    ", {} by other runners meanwhile",
                    outcome.finished_elsewhere
                )
            } else {
                String::new()
            },
            if state.complete {
                format!(
                    "; complete: wrote {}",
                    args.out.join(STRATEGY_SUMMARY_FILE).display()
                )
            } else if outcome.stopped || outcome.failed > 0 {
                String::new()
            } else {
                "; the rest waits for other runners (--no-wait): run again to continue".into()
            }
        ))?;
        if let Some(best) = summary.best() {
            out(format!(
                "best{}: {}",
                if state.complete { "" } else { " so far" },
                describe(best)
            ))?;
        }
    }
    if outcome.stopped {
        bail!("stopped by a signal; run the same command to resume");
    }
    if outcome.failed > 0 {
        let failures: Vec<String> = state
            .records
            .iter()
            .filter_map(|(_, _, r)| match &r.status {
                TrialStatus::Failed { message } => Some(format!("{}: {message}", r.id)),
                _ => None,
            })
            .collect();
        bail!(
            "{} and will be rerun next time{}{}",
            count(outcome.failed, "trial failed", "trials failed"),
            if failures.is_empty() { "" } else { ": " },
            failures.join("; ")
        );
    }
    Ok(())
}

fn describe(r: &glorot_search::strategy::StrategyRanked) -> String {
    format!(
        "{} after {}: validation accuracy {}",
        r.id,
        count(r.epochs, "epoch", "epochs"),
        r.val_accuracy
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.2} %"))
    )
}

fn print_rungs(rungs: &[RungState]) -> Result<()> {
    for r in rungs {
        out(format!(
            "  bracket {} rung {}: {:>3} epochs, {}/{} finished{}",
            r.bracket,
            r.rung,
            r.budget,
            r.finished,
            r.trials,
            if r.decided {
                if r.promoted.is_empty() {
                    ", decided".to_owned()
                } else {
                    format!(", decided: {} promoted", r.promoted.len())
                }
            } else {
                String::new()
            }
        ))?;
    }
    Ok(())
}

/// Progress of a strategy on stderr: one line per recorded trial.
struct Progress<'a> {
    err: &'a Stderr,
}

impl SearchObserver for Progress<'_> {
    fn on_trial_end(&self, record: &TrialRecord) {
        self.err.line(format!(
            "done   {} ({}): {}",
            record.id,
            count(record.config.epochs, "epoch", "epochs"),
            match (&record.status, record.final_val_accuracy) {
                (TrialStatus::Ok, Some(a)) => format!("validation accuracy {a:.2} %"),
                (s, _) => format!("{s:?}"),
            }
        ));
    }
    fn on_warning(&self, message: &str) {
        self.err.warn(message);
    }
    fn should_stop(&self) -> bool {
        common::stop_requested()
    }
}

/// What `glorot search status --json` prints for a strategy's directory.
#[derive(Debug, Serialize)]
struct StrategyStatus {
    out: std::path::PathBuf,
    context: SearchContext,
    strategy: StrategySpec,
    configurations: usize,
    epochs: usize,
    complete: bool,
    rungs: Vec<RungState>,
    in_progress: Vec<glorot_search::ClaimStatus>,
    best: Option<glorot_search::strategy::StrategyRanked>,
}

/// `glorot search status` of a strategy's directory: its rungs.
pub(super) fn status(
    dir: &Path,
    journal: &Journal,
    context: SearchContext,
    plan: &StrategyPlan,
    json: bool,
) -> Result<()> {
    let state = plan.state(journal)?;
    let summary = StrategySummary::new(plan, &state);
    let report = StrategyStatus {
        out: dir.to_owned(),
        context,
        strategy: plan.strategy().clone(),
        configurations: plan.file().samples.len(),
        epochs: plan.epochs(),
        complete: state.complete,
        rungs: state.rungs.clone(),
        in_progress: journal.claims()?,
        best: summary.best().cloned(),
    };
    if json {
        return print_json(&report);
    }
    let s = plan.strategy();
    out(format!(
        "{}: {} search of {} configurations (eta {}, {} to {} epochs), {} epochs in all{}",
        dir.display(),
        s.kind,
        report.configurations,
        s.eta,
        s.min_epochs,
        s.max_epochs,
        report.epochs,
        if report.complete { ", complete" } else { "" }
    ))?;
    out(format!(
        "data: {} (master seed {})",
        report.context.data, report.context.master_seed
    ))?;
    print_rungs(&report.rungs)?;
    if !report.in_progress.is_empty() {
        out(format!("in progress: {}", report.in_progress.len()))?;
        for c in &report.in_progress {
            out(format!(
                "  {}: pid {} on {}{}",
                c.id,
                c.claim.pid,
                c.claim.host,
                if c.stale { " (stale)" } else { "" }
            ))?;
        }
    }
    if let Some(best) = &report.best {
        out(format!(
            "best{}: {}",
            if report.complete { "" } else { " so far" },
            describe(best)
        ))?;
    }
    Ok(())
}

/// `glorot search merge` of a strategy's directory: `strategy_summary.json`, ranked by
/// the last rung each configuration reached.
pub(super) fn merge(dir: &Path, journal: &Journal, plan: &StrategyPlan, json: bool) -> Result<()> {
    let state = plan.state(journal)?;
    let summary = StrategySummary::new(plan, &state);
    let path = dir.join(STRATEGY_SUMMARY_FILE);
    journal::write_json(&path, &summary)?;
    if json {
        return print_json(&summary);
    }
    out(format!(
        "merged {} configurations{}: wrote {}",
        summary.ranking.len(),
        if summary.complete {
            ""
        } else {
            " (not every rung is decided yet: a partial summary)"
        },
        path.display()
    ))?;
    if let Some(best) = summary.best() {
        out(format!("best: {}", describe(best)))?;
    }
    Ok(())
}
