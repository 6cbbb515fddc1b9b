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
mod predict;
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
    /// Evaluate saved weights on a split: accuracy, loss, per-class accuracy, confusion matrix.
    Eval(train::EvalArgs),
    /// Predict the class of new images (PNG or IDX) with saved weights.
    Predict(predict::PredictArgs),
    /// Check backpropagation against central finite differences.
    Gradcheck(train::GradcheckArgs),
    /// Hyperparameter grid search: run, status, merge, best.
    Search(Box<search::SearchArgs>),
    /// Run the studies (the notebook's three, Part 4 inside the network, Part 5 on
    /// Fashion-MNIST, Part 6 the search strategies) and write results/ (used by `cargo
    /// xtask experiments`).
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

/// Large arrays start on cache lines: the kernels' vector loads then never span two
/// (see `glorot_tensor::alloc`).
#[global_allocator]
static ALLOCATOR: glorot_tensor::alloc::CacheAligned = glorot_tensor::alloc::CacheAligned;

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
        Command::Predict(args) => predict::run(args),
        Command::Gradcheck(args) => train::run_gradcheck(args),
        Command::Search(args) => search::run(*args),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible command of the tree, as its path of names (`["search", "best"]`).
    fn commands(cmd: &clap::Command, path: &[String], all: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut p = path.to_vec();
            p.push(sub.get_name().to_owned());
            all.push((p.clone(), sub.clone()));
            commands(sub, &p, all);
        }
    }

    /// The `glorot ...` lines of a help text's "Examples:" section, as argument lists:
    /// quotes removed, a shell redirection or pipe and what follows left out.
    fn examples(help: &str) -> Vec<Vec<String>> {
        let Some((_, section)) = help.split_once("Examples:") else {
            return Vec::new();
        };
        // A line ending in `\` continues on the next one.
        let mut lines = Vec::<String>::new();
        let mut continued = false;
        for l in section.lines().map(str::trim) {
            match lines.last_mut() {
                Some(last) if continued => last.push_str(l),
                _ => lines.push(l.to_owned()),
            }
            continued = l.ends_with('\\');
            if let (true, Some(last)) = (continued, lines.last_mut()) {
                last.pop();
                last.push(' ');
            }
        }
        lines
            .iter()
            .filter(|l| l.starts_with("glorot "))
            .map(|l| {
                l.split_whitespace()
                    .take_while(|w| !matches!(*w, ">" | ">>" | "|" | "2>" | "&&" | ";"))
                    .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_command_has_examples_and_they_parse() {
        let mut all = Vec::new();
        commands(&command(), &[], &mut all);
        assert!(all.len() > 10, "the walk found {} commands", all.len());
        let mut problems = Vec::new();
        for (path, mut cmd) in all {
            let name = format!("glorot {}", path.join(" "));
            let help = cmd.render_long_help().to_string();
            let found = examples(&help);
            if found.is_empty() {
                problems.push(format!(
                    "`{name}` has no Examples section with a `glorot ...` line"
                ));
            }
            for args in found {
                // An example of this command (or, for a group, of one of its commands).
                let words: Vec<&str> = args[1..].iter().map(String::as_str).collect();
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                if !words.starts_with(&names) {
                    problems.push(format!(
                        "`{name}` shows an example of another command: {args:?}"
                    ));
                }
                if let Err(e) = command()
                    .try_get_matches_from(&args)
                    .map_err(|e| e.to_string())
                    .and_then(|m| Cli::from_arg_matches(&m).map_err(|e| e.to_string()))
                {
                    problems.push(format!("`{name}`: {args:?} does not parse: {e}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_example_reader_takes_glorot_lines_only() {
        let help = "Options:\n  glorot not-this\nExamples:\n  # a comment\n  glorot train --json > run.json\n  python -c 'x'\n  glorot eval --weights 'a.safetensors' \\\n    --json\n";
        assert_eq!(
            examples(help),
            vec![
                vec!["glorot", "train", "--json"],
                vec!["glorot", "eval", "--weights", "a.safetensors", "--json"],
            ]
        );
    }

    #[test]
    fn negative_numbers_are_values() {
        let m = command()
            .try_get_matches_from(["glorot", "train", "--lr", "-1"])
            .unwrap_err();
        // Reaches the value's own check, not clap's "unexpected argument".
        assert_eq!(m.kind(), clap::error::ErrorKind::ValueValidation, "{m}");
        assert!(
            m.to_string().contains("-1 is not a finite positive number"),
            "{m}"
        );
        let seed = command().try_get_matches_from(["glorot", "gradcheck", "--seed", "-3"]);
        assert!(seed.unwrap_err().to_string().contains("'-3'"));
    }
}
