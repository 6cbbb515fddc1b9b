//! The `glorot` command: train, evaluate, gradient-check, search, experiments, data.
//!
//! Thin by design: argument parsing, progress display and printing live here; the
//! work is done by the libraries. Exit codes: 0 success, 1 runtime failure,
//! 2 usage error (clap's own). Errors print as one line with their cause chain.

// clap turns the argument structs' doc comments into `--help` text, where `<DIR>`-style
// placeholders are meant literally; rustdoc would read them as HTML tags.
#![allow(rustdoc::invalid_html_tags)]

// The BLAS provider is selected here, in the final binary.
extern crate blas_src;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

mod bench;
mod common;
mod data;
mod experiments;
mod search;
mod train;

/// Train and study the notebook's multilayer perceptron on MNIST.
#[derive(Debug, Parser)]
#[command(
    name = "glorot",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train one model; writes its curves as JSON and optionally its weights.
    Train(train::TrainArgs),
    /// Evaluate saved weights on a split.
    Eval(train::EvalArgs),
    /// Check backpropagation against central finite differences.
    Gradcheck(train::GradcheckArgs),
    /// Hyperparameter grid search: run, status, merge, best.
    Search(search::SearchArgs),
    /// Run the notebook's three studies and write results/ (used by `cargo xtask experiments`).
    Experiments(experiments::ExperimentsArgs),
    /// Datasets: fetch, verify, info.
    Data(data::DataArgs),
    /// Time one training epoch (used by `cargo xtask bench`).
    #[command(hide = true)]
    BenchEpoch(bench::BenchEpochArgs),
    /// Time the GEMM sequence of one epoch alone (used by `cargo xtask bench`).
    #[command(hide = true)]
    BenchGemm(bench::BenchGemmArgs),
}

/// Fixes the instruction set of the kernels before anything runs: `GLOROT_ISA`
/// (`avx512`, `avx2`, `neon`, `scalar`; one this CPU lacks is an error), else
/// `GLOROT_FUSED=off` (any case; the older switch, meaning `scalar`), else the best one
/// detected.
fn choose_isa() -> anyhow::Result<()> {
    use anyhow::Context as _;
    use glorot_tensor::isa::{Isa, set_default};
    let isa = match std::env::var("GLOROT_ISA") {
        Ok(name) if !name.trim().is_empty() => Isa::from_name(&name).context("GLOROT_ISA")?,
        _ if std::env::var("GLOROT_FUSED").is_ok_and(|v| v.eq_ignore_ascii_case("off")) => {
            Isa::portable()
        }
        _ => return Ok(()),
    };
    set_default(isa)
        .map_err(|current| anyhow::anyhow!("the kernels already run with {}", current.name()))
}

/// The command line as clap sees it, with one rule added to every argument that takes a
/// value: a value that looks like a negative number (`--lr -1`) is a value, so it reaches
/// the argument's own check ("-1 is not a finite positive number") instead of clap's
/// "unexpected argument '-1'".
fn command() -> clap::Command {
    fn negative_values(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|arg| {
            if arg.get_action().takes_values() {
                arg.allow_negative_numbers(true)
            } else {
                arg
            }
        })
        .mut_subcommands(negative_values)
    }
    negative_values(Cli::command())
}

/// Parses the process's arguments with [`command`]; on a mistake, prints clap's message
/// and exits 2 (as `Cli::parse` does).
fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    if let Err(err) = choose_isa() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("glorot: error: {}", common::chain(&err));
        }
        return ExitCode::FAILURE;
    }
    let cli = parse();
    let result = match cli.command {
        Command::Train(args) => train::run_train(args),
        Command::Eval(args) => train::run_eval(args),
        Command::Gradcheck(args) => train::run_gradcheck(args),
        Command::Search(args) => search::run(args),
        Command::Experiments(args) => experiments::run(args),
        Command::Data(args) => data::run(args),
        Command::BenchEpoch(args) => bench::run_epoch(args),
        Command::BenchGemm(args) => bench::run_gemm(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A command-line mistake clap could not see on its own: exit 2, as clap does.
        Err(err) if err.downcast_ref::<common::UsageError>().is_some() => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "glorot: error: {}\n\nFor more information, try '--help'.",
                    common::chain(&err)
                );
            }
            ExitCode::from(2)
        }
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("glorot: error: {}", common::chain(&err));
            }
            ExitCode::FAILURE
        }
    }
}
