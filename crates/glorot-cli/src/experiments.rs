//! `glorot experiments`: the notebook's three studies, written to a results directory as
//! JSON (with schemas in `docs/schemas/`), a CSV of the grid, PNG and SVG plots, and
//! `REPORT.md`; or, with `--replay-notebook`, the notebook replayed bit for bit and
//! compared with every number it printed.
//!
//! Default mode (the notebook's studies with its bugs fixed, visibly):
//!
//! 1. Part 1: Glorot uniform, N(0, 1) and zero initialization of 784-500-500-10 tanh,
//!    lr 0.01, batch 32, 10 epochs, shuffled every epoch ([`part1`](glorot_experiments::part1)).
//! 2. Part 2: the 135-trial grid through glorot-search, resumable ([`part2`](glorot_experiments::part2)).
//! 3. Part 3: the gradient checks, `N = k * 10^i` ([`part3`](glorot_experiments::part3)).
//! 4. Part 4: Glorot and Bengio's (2010) measurements inside six deep networks
//!    (sigmoid, tanh, softsign; standard and normalized initialization), per-layer
//!    statistics through the training probe ([`part4`](glorot_experiments::part4)).
//! 5. Part 5: Fashion-MNIST, the notebook's best configuration against the same network
//!    with momentum, a schedule, weight decay and early stopping, over 3 seeds
//!    ([`part5`](glorot_experiments::part5)); it reads Fashion-MNIST whatever `--dataset`
//!    says.
//! 6. Part 6: successive halving, Hyperband and random search on Part 2's space over 3
//!    master seeds, against Part 2's grid read from its journal
//!    ([`part6`](glorot_experiments::part6)).
//!
//! Every part resumes: Part 1's and Part 5's runs and Part 2's and Part 6's trials are files written as they
//! finish, reused when the same command runs again. Plots and the report are rebuilt
//! from whatever results files the directory holds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use glorot_experiments::{
    Data, Observer as _, Options, ReplayChoice, RunContext, reference, report,
};
use glorot_mlp::Precision;

use crate::common::{
    DataOpts, Stderr, cpus, handle_interrupts, lib, manifest, parse_precision, plan_threads,
    set_blas_threads, stop_requested, usage,
};

/// Options of `glorot experiments`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  # Everything the notebook did, into results/ (what `cargo xtask experiments` runs)
  glorot experiments --out results
  # Every path in about a minute, into results/quick
  glorot experiments --quick
  # Part 1 only, in double precision
  glorot experiments --parts 1 --precision f64
  # The notebook's own numbers, replayed bit for bit: Part 1's first epoch
  glorot experiments --replay-notebook --replay-parts 1 --replay-epochs 1

Results go to DIR (default `results`; `cargo xtask experiments` passes <workspace>/results):
  part1.json, part2.json (journal in part2/, one CSV row per trial in part2/trials.csv),
  part3.json, part4.json (networks cached in part4/), part5.json (runs cached in part5/),
  part6.json (one search journal per strategy and seed in part6/<strategy>-seed<N>/),
  replay.json (with --replay-notebook), plots/*.png|svg, REPORT.md.
Part 5 trains on Fashion-MNIST whatever --dataset says: from --data-dir when --dataset is
  fashion-mnist, else $GLOROT_FASHION_MNIST_DIR, else the default places (Debian's
  dataset-fashion-mnist package installs it in /usr/share/datasets/fashion-mnist).
  `--quick` writes to DIR/quick instead, so it never touches a full run's results.
Running the same command again resumes: finished runs and trials are reused.
Ctrl-C stops at the next batch; finished work is kept.")]
pub(crate) struct ExperimentsArgs {
    /// Results directory.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
    /// Parts to run: 1 (initializations), 2 (grid), 3 (gradient checks), 4 (inside the
    /// network: Glorot and Bengio 2010), 5 (Fashion-MNIST: the notebook's best
    /// configuration against the improved training), 6 (search strategies: successive
    /// halving, Hyperband and random search against Part 2's grid, which it reads from
    /// the grid's journal).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1,2,3,4,5,6"
    )]
    parts: Vec<u8>,
    /// Precision of Parts 1, 2, 4, 5 and 6: f32 (default) or f64. Part 3 and the replay always
    /// compute in f64.
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Master seed: Part 1's and Part 3's networks and data order, and every grid trial's
    /// seed (derived from it and the trial's id); Part 6's searches use it, +1 and +2.
    /// Default 0, or the grid file's.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The grid of Part 2 (and the space of Part 6): a preset (notebook, quick, tiny) or a
    /// JSON/TOML grid file. Default: notebook (quick with --quick).
    #[arg(long, value_name = "PRESET|FILE")]
    grid: Option<String>,
    /// Part 1's epochs (default 10, the notebook's; 2 with --quick).
    #[arg(long, value_name = "N", value_parser = crate::common::parse_positive)]
    epochs: Option<usize>,
    /// Runs trained at the same time (default: one per CPU).
    #[arg(long, value_name = "N", value_parser = crate::common::parse_positive)]
    workers: Option<usize>,
    /// BLAS threads per run (default: 1 with several workers, every CPU with one).
    #[arg(long, value_name = "N", value_parser = crate::common::parse_positive)]
    blas_threads: Option<usize>,
    /// Allow workers x BLAS threads above the CPU count.
    #[arg(long)]
    oversubscribe: bool,
    /// Exercise every path in about a minute: Part 1 and a small grid on 5,000 training
    /// and 1,000 validation images, Part 3, a small Part 4 (3 hidden layers of 100, 1
    /// epoch), Part 5 for 2 epochs and 1 seed on as many Fashion-MNIST images, Part 6 on
    /// the quick grid's space (1 seed, up to 3 epochs), and the replay of Part 1's first
    /// epoch and of Part 3 on the full data. Writes to DIR/quick.
    #[arg(long)]
    quick: bool,
    /// Replay the notebook bit for bit (f64, no shuffling, NumPy's generator seeded with
    /// 5 in cell order) and compare every number it printed; writes replay.json. The full
    /// grid takes hours; it resumes trial by trial.
    #[arg(long)]
    replay_notebook: bool,
    /// Parts to replay (default 1,2,3). A part alone skips the earlier parts' draws.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        requires = "replay_notebook"
    )]
    replay_parts: Option<Vec<u8>>,
    /// Grid trials to replay, by index in the notebook's loop order: `0,60`, `0-26`,
    /// `all` (default).
    #[arg(long, value_name = "LIST", requires = "replay_notebook")]
    replay_trials: Option<String>,
    /// Epochs per replayed run (default 10, the notebook's; fewer for a quick check).
    #[arg(
        long,
        value_name = "N",
        requires = "replay_notebook",
        value_parser = crate::common::parse_positive
    )]
    replay_epochs: Option<usize>,
    #[command(flatten)]
    data: DataOpts,
}

/// `glorot experiments`.
pub(crate) fn run(args: ExperimentsArgs) -> Result<()> {
    let clock = Instant::now();
    check_parts("--parts", &args.parts, 6)?;
    if let Some(p) = &args.replay_parts {
        check_parts("--replay-parts", p, 3)?;
    }
    let trials = match &args.replay_trials {
        Some(s) => parse_trials(s)?,
        None => None,
    };
    let plan = plan_threads(args.workers, args.blas_threads, args.oversubscribe, cpus())?;
    set_blas_threads(plan.blas_threads);
    handle_interrupts();
    let out = if args.quick {
        args.out.join("quick")
    } else {
        args.out.clone()
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let notebook = reference::notebook()?;
    let mut data = Data::from_loaded(args.data.load()?);
    // Part 5's Fashion-MNIST, whatever --dataset says; a failure to load it fails Part 5
    // only (reported with the other parts' errors).
    let mut fashion_error = None;
    let fashion = if args.parts.contains(&5) && !args.replay_notebook {
        match fashion_opts(&args.data).load() {
            Ok(loaded) => {
                let mut f = Data::from_loaded(loaded);
                f.info.dir = report::Places::of(&out).show(&f.info.dir);
                Some(std::sync::Arc::new(f))
            }
            Err(e) => {
                fashion_error = Some(e.context("Part 5 needs Fashion-MNIST"));
                None
            }
        }
    } else {
        None
    };
    let mut ctx = RunContext::new(
        std::iter::once("glorot".to_owned()).chain(std::env::args().skip(1)),
        manifest(plan),
    );
    // Results files name places the way the report does: relative to the repository
    // holding them (or to the results directory), a place outside by its name only, so
    // that committed results read the same on every machine. The data's digests, not its
    // directory, identify it (and decide what is reused).
    let places = report::Places::of(&out);
    ctx.command = places.command(&ctx.command);
    data.info.dir = places.show(&data.info.dir);
    let err = Stderr::new(false);
    err.message(&format!(
        "glorot experiments: results in {} ({} worker(s) x {} BLAS thread(s))",
        out.display(),
        plan.workers,
        plan.blas_threads
    ));

    let options = Options {
        out: out.clone(),
        parts: args
            .parts
            .iter()
            .copied()
            .filter(|&p| p != 5 || fashion.is_some() || args.replay_notebook)
            .collect(),
        precision: args.precision,
        seed: args.seed,
        grid: args.grid.clone(),
        epochs: args.epochs,
        workers: plan.workers,
        quick: args.quick,
        replay: args.replay_notebook.then(|| ReplayChoice {
            parts: args.replay_parts.clone().unwrap_or_else(|| vec![1, 2, 3]),
            trials,
            epochs: args.replay_epochs.unwrap_or(10),
        }),
        fashion,
    };
    crate::common::check_memory(
        "these experiments",
        glorot_experiments::memory_bytes(&options, &data),
    )?;
    let errors: Vec<anyhow::Error> =
        glorot_experiments::run_parts(&options, &data, &ctx, &notebook, &err)
            .into_iter()
            .map(lib)
            .chain(fashion_error)
            .collect();
    let stopped = stop_requested();
    for e in &errors {
        err.message(&format!("glorot experiments: {}", crate::common::chain(e)));
    }
    let written = glorot_experiments::finish(&out, &notebook)?;
    err.message(&format!(
        "glorot experiments: {} in {}; wrote {} plots and {}",
        if stopped { "stopped" } else { "done" },
        glorot_experiments::duration(clock.elapsed().as_secs_f64()),
        written.len(),
        out.join("REPORT.md").display()
    ));
    if stopped {
        anyhow::bail!(
            "stopped by a signal; finished work is kept: run the same command to continue"
        );
    }
    match errors.into_iter().next() {
        Some(e) => Err(e.context("a part failed (the others ran; see above)")),
        None => Ok(()),
    }
}

/// Parts `1..=last` are accepted (the replay covers the notebook's three).
fn check_parts(flag: &str, parts: &[u8], last: u8) -> Result<()> {
    let names = (1..=last).map(|p| p.to_string()).collect::<Vec<_>>();
    if parts.is_empty() {
        return usage(format!(
            "{flag}: name at least one part ({})",
            names.join(", ")
        ));
    }
    if let Some(bad) = parts.iter().find(|p| !(1..=last).contains(*p)) {
        return usage(format!(
            "{flag}: there is no part {bad}; the parts are {}",
            names.join(", ")
        ));
    }
    Ok(())
}

/// The data options of Part 5: Fashion-MNIST with the same subsets, verification and
/// download options; `--data-dir` only when it names Fashion-MNIST (`--dataset
/// fashion-mnist`), else the usual places ($GLOROT_FASHION_MNIST_DIR, the workspace's or
/// the user's data directory, Debian's /usr/share/datasets/fashion-mnist).
fn fashion_opts(data: &DataOpts) -> DataOpts {
    let mut opts = data.clone();
    if opts.dataset != glorot_mnist::DatasetKind::FashionMnist {
        opts.data_dir = None;
        opts.dataset = glorot_mnist::DatasetKind::FashionMnist;
    }
    opts
}

/// `all`, or a comma-separated list of indices and inclusive ranges (`0-26,60`).
fn parse_trials(s: &str) -> Result<Option<Vec<usize>>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let parse = |x: &str| {
            x.trim().parse::<usize>().map_err(|_| {
                anyhow::Error::new(crate::common::UsageError(format!(
                    "--replay-trials: `{item}` is not a trial index or a range like 0-26"
                )))
            })
        };
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b {
                    return usage(format!("--replay-trials: empty range `{item}`"));
                }
                out.extend(a..=b);
            }
            None => out.push(parse(item)?),
        }
    }
    if out.is_empty() {
        return usage("--replay-trials: no trial given");
    }
    out.sort_unstable();
    out.dedup();
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_lists() {
        assert_eq!(parse_trials("all").unwrap(), None);
        assert_eq!(parse_trials("60,0").unwrap(), Some(vec![0, 60]));
        assert_eq!(parse_trials("0-3, 2").unwrap(), Some(vec![0, 1, 2, 3]));
        assert!(parse_trials("3-1").is_err());
        assert!(parse_trials("x").is_err());
        assert!(parse_trials(",").is_err());
    }

    #[test]
    fn parts_are_checked() {
        assert!(check_parts("--parts", &[1, 3], 6).is_ok());
        assert!(check_parts("--parts", &[4], 6).is_ok());
        assert!(check_parts("--replay-parts", &[4], 3).is_err());
        assert!(check_parts("--replay-parts", &[5], 3).is_err());
        assert!(check_parts("--parts", &[5], 6).is_ok());
        assert!(check_parts("--parts", &[6], 6).is_ok());
        assert!(check_parts("--parts", &[7], 6).is_err());
        assert!(check_parts("--parts", &[], 6).is_err());
    }
}
