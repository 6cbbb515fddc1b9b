//! The notebook's printed numbers (`reference/notebook_numbers.json`, embedded at build
//! time so the binary needs no source tree), read into typed structs.
//!
//! Exact comparisons parse each number's `text` (Rust's parser rounds correctly), never
//! its JSON `value`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The reference file, as committed.
pub(crate) const NOTEBOOK_NUMBERS: &str =
    include_str!("../../../../reference/notebook_numbers.json");

/// One printed number.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Printed {
    /// The digits as printed.
    pub(crate) text: String,
    /// Line in `notebook.txt`.
    #[serde(default)]
    pub(crate) line: Option<usize>,
}

impl Printed {
    /// The printed text as a double, correctly rounded.
    pub(crate) fn value(&self) -> f64 {
        self.text.parse().unwrap_or(f64::NAN)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Notebook {
    pub(crate) part1: Part1,
    pub(crate) parameter_count: ParameterCount,
    pub(crate) part2: Part2,
    pub(crate) part3: Part3,
    pub(crate) counts: Counts,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Counts {
    pub(crate) part1: usize,
    pub(crate) parameter_count: usize,
    pub(crate) grid_numbers: usize,
    pub(crate) grid_best: usize,
    pub(crate) part3: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ParameterCount {
    /// `we have  0.648784  million parameters`.
    pub(crate) value_millions: Printed,
    pub(crate) line: usize,
    pub(crate) units: Vec<usize>,
    pub(crate) notebook_count: usize,
    #[cfg(test)]
    pub(crate) correct_count: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part1 {
    pub(crate) runs: Vec<Part1Run>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part1Run {
    /// `glorot`, `normal` or `zero`.
    pub(crate) run: String,
    pub(crate) epochs: Vec<Part1Epoch>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part1Epoch {
    pub(crate) epoch: usize,
    pub(crate) loss: Printed,
    pub(crate) val_accuracy: Printed,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part2 {
    pub(crate) spec: GridSpecRef,
    pub(crate) fragments: Vec<Fragment>,
    pub(crate) best: Best,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct GridSpecRef {
    pub(crate) hidden: Vec<usize>,
    pub(crate) activation: Vec<String>,
    pub(crate) learning_rate: Vec<f64>,
    pub(crate) batch_size: Vec<usize>,
    pub(crate) epochs: usize,
    pub(crate) trials: usize,
    pub(crate) lines_per_trial: usize,
    pub(crate) stream_lines: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Fragment {
    pub(crate) fragment: usize,
    pub(crate) first_line: usize,
    pub(crate) last_line: usize,
    pub(crate) stream_offset: Option<usize>,
    pub(crate) lines: Vec<FragmentLine>,
}

/// How a fragment line is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MatchKind {
    /// A whole number.
    Exact,
    /// Digits cut by the export: the replayed text must start with these.
    Prefix,
    /// The label was cut: no number, only the line's kind.
    None,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct FragmentLine {
    pub(crate) line: usize,
    /// `loss` or `val_accuracy`.
    pub(crate) what: String,
    pub(crate) text: Option<String>,
    #[serde(rename = "match")]
    pub(crate) kind: MatchKind,
}

impl FragmentLine {
    pub(crate) fn is_loss(&self) -> bool {
        self.what == "loss"
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Best {
    pub(crate) val_accuracy: Printed,
    pub(crate) hidden: usize,
    pub(crate) activation: String,
    pub(crate) learning_rate: Printed,
    pub(crate) batch_size: usize,
    pub(crate) trial: usize,
    pub(crate) line: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part3 {
    pub(crate) cells: Vec<Part3Cell>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part3Cell {
    pub(crate) parameter: String,
    pub(crate) row: usize,
    pub(crate) prints: Vec<Part3Print>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Part3Print {
    #[serde(rename = "N")]
    pub(crate) n: f64,
    pub(crate) analytic: Printed,
    pub(crate) numerical: Printed,
    pub(crate) difference: Printed,
}

/// The parsed reference, checked for the shape the replay relies on.
pub(crate) fn notebook() -> Result<Notebook> {
    let nb: Notebook = serde_json::from_str(NOTEBOOK_NUMBERS)
        .context("parsing the embedded reference/notebook_numbers.json")?;
    let names: Vec<&str> = nb.part1.runs.iter().map(|r| r.run.as_str()).collect();
    if names != ["glorot", "normal", "zero"] {
        bail!("notebook_numbers.json: Part 1 runs are {names:?}, expected glorot, normal, zero");
    }
    if nb.part3.cells.len() != 3 {
        bail!("notebook_numbers.json: expected 3 gradient-check cells");
    }
    if nb.part2.spec.lines_per_trial != 2 * nb.part2.spec.epochs {
        bail!("notebook_numbers.json: lines_per_trial is not 2 x epochs");
    }
    Ok(nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_reference_parses_and_counts_agree() {
        let nb = notebook().unwrap();
        let p1: usize = nb.part1.runs.iter().map(|r| 2 * r.epochs.len()).sum();
        assert_eq!(p1, nb.counts.part1);
        let grid: usize = nb
            .part2
            .fragments
            .iter()
            .flat_map(|f| &f.lines)
            .filter(|l| l.kind != MatchKind::None)
            .count();
        assert_eq!(grid, nb.counts.grid_numbers);
        let p3: usize = nb.part3.cells.iter().map(|c| 3 * c.prints.len()).sum();
        assert_eq!(p3, nb.counts.part3);
        assert_eq!(nb.part2.best.trial, 60);
        assert_eq!(nb.part2.best.val_accuracy.text, "98.22");
        assert_eq!(nb.parameter_count.correct_count, 648_010);
        // The notebook's first printed number (line 247).
        assert_eq!(nb.part1.runs[0].epochs[0].loss.value(), 1.1164179979846724);
    }
}
