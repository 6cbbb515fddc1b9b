//! The notebook's printed numbers (`reference/notebook_numbers.json`, embedded at build
//! time so the binary needs no source tree), read into typed structs.
//!
//! Exact comparisons parse each number's `text` (Rust's parser rounds correctly), never
//! its JSON `value`.

use crate::error::{Error, Result};
use serde::Deserialize;

/// The reference file, as committed.
pub const NOTEBOOK_NUMBERS: &str = include_str!("../../../reference/notebook_numbers.json");

/// One printed number.
#[derive(Clone, Debug, Deserialize)]
pub struct Printed {
    /// The digits as printed.
    pub text: String,
    /// Line in `notebook.txt`.
    #[serde(default)]
    pub line: Option<usize>,
}

impl Printed {
    /// The printed text as a double, correctly rounded.
    pub fn value(&self) -> f64 {
        self.text.parse().unwrap_or(f64::NAN)
    }
}

/// Every number the notebook printed, by section.
#[derive(Clone, Debug, Deserialize)]
pub struct Notebook {
    /// Part 1: the three initializations' epochs.
    pub part1: Part1,
    /// The parameter count it printed.
    pub parameter_count: ParameterCount,
    /// Part 2: the grid's output fragments and its best.
    pub part2: Part2,
    /// Part 3: the gradient checks.
    pub part3: Part3,
    /// How many numbers each section holds.
    pub counts: Counts,
}

/// How many numbers each section of the reference holds.
#[derive(Clone, Debug, Deserialize)]
pub struct Counts {
    /// Part 1's numbers (loss and accuracy per epoch and run).
    pub part1: usize,
    /// The parameter count (1).
    pub parameter_count: usize,
    /// Numbers in the grid's output fragments.
    pub grid_numbers: usize,
    /// Numbers of the grid's best line.
    pub grid_best: usize,
    /// Part 3's numbers (three per print).
    pub part3: usize,
}

/// The parameter count the notebook printed.
#[derive(Clone, Debug, Deserialize)]
pub struct ParameterCount {
    /// `we have  0.648784  million parameters`.
    pub value_millions: Printed,
    /// Line of the print in `notebook.txt`.
    pub line: usize,
    /// Layer widths the count was made for.
    pub units: Vec<usize>,
    /// The count the notebook's `num_parameters()` makes (648,784).
    pub notebook_count: usize,
    /// The correct count (648,010), checked by the tests.
    #[cfg(test)]
    pub correct_count: usize,
}

/// Part 1 as printed.
#[derive(Clone, Debug, Deserialize)]
pub struct Part1 {
    /// The three runs: `glorot`, `normal`, `zero`.
    pub runs: Vec<Part1Run>,
}

/// One initialization's printed epochs.
#[derive(Clone, Debug, Deserialize)]
pub struct Part1Run {
    /// `glorot`, `normal` or `zero`.
    pub run: String,
    /// Its epochs, in order.
    pub epochs: Vec<Part1Epoch>,
}

/// One printed epoch of Part 1.
#[derive(Clone, Debug, Deserialize)]
pub struct Part1Epoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Training loss.
    pub loss: Printed,
    /// Validation accuracy, percent.
    pub val_accuracy: Printed,
}

/// Part 2 as printed: the grid's output survives only in fragments.
#[derive(Clone, Debug, Deserialize)]
pub struct Part2 {
    /// The grid the notebook looped over.
    pub spec: GridSpecRef,
    /// The fragments of its output the export kept.
    pub fragments: Vec<Fragment>,
    /// The best configuration it reported.
    pub best: Best,
}

/// The notebook's grid and the shape of its output.
#[derive(Clone, Debug, Deserialize)]
pub struct GridSpecRef {
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Activations (the notebook's names).
    pub activation: Vec<String>,
    /// Learning rates.
    pub learning_rate: Vec<f64>,
    /// Batch sizes.
    pub batch_size: Vec<usize>,
    /// Epochs per trial.
    pub epochs: usize,
    /// Trials (135).
    pub trials: usize,
    /// Printed lines per trial (2 per epoch).
    pub lines_per_trial: usize,
    /// Printed lines of the whole grid (2,700).
    pub stream_lines: usize,
}

/// A run of consecutive printed lines of the grid's output.
#[derive(Clone, Debug, Deserialize)]
pub struct Fragment {
    /// Its index.
    pub fragment: usize,
    /// Its first line in `notebook.txt`.
    pub first_line: usize,
    /// Its last line in `notebook.txt`.
    pub last_line: usize,
    /// Its position in the grid's output stream, when known from the notebook.
    pub stream_offset: Option<usize>,
    /// Its lines.
    pub lines: Vec<FragmentLine>,
}

/// How a fragment line is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// A whole number.
    Exact,
    /// Digits cut by the export: the replayed text must start with these.
    Prefix,
    /// The label was cut: no number, only the line's kind.
    None,
}

/// One line of a fragment.
#[derive(Clone, Debug, Deserialize)]
pub struct FragmentLine {
    /// Line in `notebook.txt`.
    pub line: usize,
    /// `loss` or `val_accuracy`.
    pub what: String,
    /// The printed number (`None` when its label was cut).
    pub text: Option<String>,
    /// How it is compared.
    #[serde(rename = "match")]
    pub kind: MatchKind,
}

impl FragmentLine {
    /// Whether the line prints a loss (else an accuracy).
    pub fn is_loss(&self) -> bool {
        self.what == "loss"
    }
}

/// The best configuration the notebook reported.
#[derive(Clone, Debug, Deserialize)]
pub struct Best {
    /// Its final validation accuracy (98.22).
    pub val_accuracy: Printed,
    /// Hidden width (550).
    pub hidden: usize,
    /// Activation (the notebook's name, `ReLU`).
    pub activation: String,
    /// Learning rate (0.1).
    pub learning_rate: Printed,
    /// Batch size (32).
    pub batch_size: usize,
    /// Its index in the loop order (60).
    pub trial: usize,
    /// Line of the print in `notebook.txt`.
    pub line: usize,
}

/// Part 3 as printed.
#[derive(Clone, Debug, Deserialize)]
pub struct Part3 {
    /// The three gradient-check cells.
    pub cells: Vec<Part3Cell>,
}

/// One gradient-check cell.
#[derive(Clone, Debug, Deserialize)]
pub struct Part3Cell {
    /// `w0` or `w1`.
    pub parameter: String,
    /// Row checked.
    pub row: usize,
    /// What it printed (`k = 1`, entry 0, per `N`).
    pub prints: Vec<Part3Print>,
}

/// One printed triple.
#[derive(Clone, Debug, Deserialize)]
pub struct Part3Print {
    /// `N` (the step is `1 / N`).
    #[serde(rename = "N")]
    pub n: f64,
    /// The analytic derivative.
    pub analytic: Printed,
    /// The central difference.
    pub numerical: Printed,
    /// `|analytic - numerical|`.
    pub difference: Printed,
}

/// The parsed reference, checked for the shape the replay relies on.
pub fn notebook() -> Result<Notebook> {
    let nb: Notebook = serde_json::from_str(NOTEBOOK_NUMBERS)
        .map_err(|e| Error::json("parsing the embedded reference/notebook_numbers.json", e))?;
    let names: Vec<&str> = nb.part1.runs.iter().map(|r| r.run.as_str()).collect();
    if names != ["glorot", "normal", "zero"] {
        return Err(Error::Reference(format!(
            "notebook_numbers.json: Part 1 runs are {names:?}, expected glorot, normal, zero"
        )));
    }
    if nb.part3.cells.len() != 3 {
        return Err(Error::Reference(
            "notebook_numbers.json: expected 3 gradient-check cells".to_owned(),
        ));
    }
    if nb.part2.spec.lines_per_trial != 2 * nb.part2.spec.epochs {
        return Err(Error::Reference(
            "notebook_numbers.json: lines_per_trial is not 2 x epochs".to_owned(),
        ));
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
