//! Part 3: the notebook's gradient checks. For each cell (`w0` row 0, `w0` row 161,
//! `w1` row 0) a fresh Glorot 784-500-500-10 tanh network, the first 10 entries of the
//! row, `N = k * 10^i` (`k = 1..4`, `i = 0..4`), `epsilon = 1 / N`, central differences
//! of the loss on training example 0 against backpropagation. Always in `f64`: finite
//! differences in `f32` measure round-off, not the gradient.

use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use glorot_mlp::{
    Activation, Arithmetic, Init, Mlp, ModelConfig, NotebookGradCheck, ParamId, Precision,
    WeightSource, Workspace, notebook_grad_check,
};
use ndarray::{Array2, s};
use serde::{Deserialize, Serialize};

use super::part1::model_config;
use super::reference::Notebook;
use super::support::{Data, RunContext, RunManifest, SCHEMA_VERSION, Seeds, write_json};

/// The notebook's three cells: parameter and row.
pub(crate) const CELLS: [(usize, usize); 3] = [(0, 0), (0, 161), (1, 0)];
/// Entries checked per row (the notebook's `for j in range(10)`).
pub(crate) const ENTRIES: usize = 10;

/// `part3.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Part3File {
    pub(crate) schema_version: u32,
    /// `"part3"`.
    pub(crate) part: String,
    pub(crate) manifest: RunManifest,
    pub(crate) quick: bool,
    pub(crate) model: ModelConfig,
    /// Training example checked (the notebook's `training_inputs[0]`) and its label.
    pub(crate) example: usize,
    pub(crate) label: u8,
    pub(crate) cells: Vec<Part3Cell>,
}

/// One gradient-check cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Part3Cell {
    /// `w0 row 161` and so on.
    pub(crate) name: String,
    /// The loss of the unperturbed network on the example.
    pub(crate) loss: f64,
    /// Analytic gradients, and one step per `N` (numeric, absolute differences, the
    /// largest absolute difference and the largest relative error).
    pub(crate) check: NotebookGradCheck,
    /// What the notebook printed for this cell (`k = 1`, entry 0): `N`, analytic,
    /// numerical, difference.
    pub(crate) notebook: Vec<NotebookPrint>,
}

/// One printed triple of the notebook.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NotebookPrint {
    #[serde(rename = "N")]
    pub(crate) n: f64,
    pub(crate) analytic: f64,
    pub(crate) numerical: f64,
    pub(crate) difference: f64,
}

/// One gradient-check cell on `model`: its loss on `(x, y)` and the check.
pub(crate) fn check_cell(
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
pub(crate) fn example0(data: &Data) -> (Array2<f64>, Array2<f64>) {
    let m = &data.mnist;
    let x = m.train.images.slice(s![..1, ..]).mapv(f64::from);
    let y = glorot_tensor::one_hot::<f64>(&m.train.labels[..1], glorot_mnist::NUM_CLASSES);
    (x, y)
}

pub(crate) fn notebook_prints(notebook: &Notebook, cell: usize) -> Vec<NotebookPrint> {
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
pub(crate) fn run(
    out: &Path,
    data: &Data,
    seed: u64,
    quick: bool,
    ctx: &RunContext,
    notebook: &Notebook,
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
        super::support::say(&format!(
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
            Seeds {
                master_seed: Some(seed),
                numpy_seed: None,
            },
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
