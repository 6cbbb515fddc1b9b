//! Part 3: the notebook's gradient checks. For each cell (`w0` row 0, `w0` row 161,
//! `w1` row 0) a fresh Glorot 784-500-500-10 tanh network, the first 10 entries of the
//! row, `N = k * 10^i` (`k = 1..4`, `i = 0..4`), `epsilon = 1 / N`, central differences
//! of the loss on training example 0 against backpropagation. Always in `f64`: finite
//! differences in `f32` measure round-off, not the gradient.

use std::path::Path;
use std::time::{Instant, SystemTime};

use glorot_mlp::{
    Activation, Arithmetic, Init, Mlp, ModelConfig, NotebookGradCheck, ParamId, Precision,
    WeightSource, Workspace, notebook_grad_check,
};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::Result;
use crate::observer::Observer;
use crate::part1::model_config;
use crate::reference::Notebook;
use crate::support::{RunContext, RunManifest, SCHEMA_VERSION, Seeds, write_json};

/// The notebook's three cells: parameter and row.
pub const CELLS: [(usize, usize); 3] = [(0, 0), (0, 161), (1, 0)];
/// Entries checked per row (the notebook's `for j in range(10)`).
pub const ENTRIES: usize = 10;

/// `part3.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part3File {
    /// Version of this file's format ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `"part3"`.
    pub part: String,
    /// Where and how the file was produced.
    pub manifest: RunManifest,
    /// `true` for a `--quick` run.
    pub quick: bool,
    /// The network checked: 784-500-500-10 tanh, Glorot uniform.
    pub model: ModelConfig,
    /// Training example checked (the notebook's `training_inputs[0]`) and its label.
    pub example: usize,
    /// The label of that example.
    pub label: u8,
    /// The three cells, in the notebook's order.
    pub cells: Vec<Part3Cell>,
}

/// One gradient-check cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part3Cell {
    /// `w0 row 161` and so on.
    pub name: String,
    /// The loss of the unperturbed network on the example.
    pub loss: f64,
    /// Analytic gradients, and one step per `N` (numeric, absolute differences, the
    /// largest absolute difference and the largest relative error).
    pub check: NotebookGradCheck,
    /// What the notebook printed for this cell (`k = 1`, entry 0): `N`, analytic,
    /// numerical, difference.
    pub notebook: Vec<NotebookPrint>,
}

/// One printed triple of the notebook.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotebookPrint {
    /// `N` (the step is `1 / N`).
    #[serde(rename = "N")]
    pub n: f64,
    /// The analytic derivative (backpropagation).
    pub analytic: f64,
    /// The central difference.
    pub numerical: f64,
    /// `|analytic - numerical|`.
    pub difference: f64,
}

/// One gradient-check cell on `model`: its loss on `(x, y)` and the check.
pub fn check_cell(
    model: &Mlp<f64>,
    x: ndarray::ArrayView2<'_, f64>,
    y: ndarray::ArrayView2<'_, f64>,
    layer: usize,
    row: usize,
) -> Result<(f64, NotebookGradCheck)> {
    // Every product through BLAS, as NumPy computes the notebook's.
    let mut ws = Workspace::with_arithmetic(model.config(), 1, Arithmetic::Blas);
    model.forward(x, &mut ws);
    let loss = model.loss(&ws, y);
    let check = notebook_grad_check(model, x, y, ParamId::weight(layer), row, ENTRIES)?;
    Ok((loss, check))
}

/// Training example 0 as a one-row batch, with its one-hot target, in `f64`.
pub fn example0(data: &Data) -> (Array2<f64>, Array2<f64>) {
    crate::data::example(&data.mnist.train, 0)
}

/// What the notebook printed for cell `cell` (0, 1, 2), as numbers.
pub fn notebook_prints(notebook: &Notebook, cell: usize) -> Vec<NotebookPrint> {
    notebook.part3.cells[cell]
        .prints
        .iter()
        .map(|p| NotebookPrint {
            n: p.n,
            analytic: p.analytic.value(),
            numerical: p.numerical.value(),
            difference: p.difference.value(),
        })
        .collect()
}

/// Runs the three checks on fresh networks drawn, one after the other, from one
/// generator seeded with `seed` (as the notebook's cells draw from its one generator).
pub fn run(
    out: &Path,
    data: &Data,
    seed: u64,
    quick: bool,
    ctx: &RunContext,
    notebook: &Notebook,
    observer: &dyn Observer,
) -> Result<Part3File> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let config = model_config(500, Activation::Tanh, Init::GlorotUniform);
    let valid = config.validate()?;
    let (x, y) = example0(data);
    let mut rng = glorot_mlp::init_rng(seed);
    let mut cells = Vec::new();
    for (i, &(layer, row)) in CELLS.iter().enumerate() {
        let model = Mlp::<f64>::new(valid.clone(), WeightSource::Rng(&mut rng))?;
        let (loss, check) = check_cell(&model, x.view(), y.view(), layer, row)?;
        observer.message(&format!(
            "[part 3] w{layer} row {row}: analytic {:.6e}, max |difference| {:.3e} at N = 1e4",
            check.analytic[0],
            check.steps.get(4).map_or(f64::NAN, |s| s.max_abs_diff)
        ));
        cells.push(Part3Cell {
            name: format!("w{layer} row {row}"),
            loss,
            check,
            notebook: notebook_prints(notebook, i),
        });
    }
    let file = Part3File {
        schema_version: SCHEMA_VERSION,
        part: "part3".to_owned(),
        manifest: ctx.manifest(
            started,
            clock,
            Precision::F64,
            Seeds::master(seed),
            &data.info,
        ),
        quick,
        model: config,
        example: 0,
        label: data.mnist.train.labels[0],
        cells,
    };
    write_json(&out.join("part3.json"), &file)?;
    Ok(file)
}
