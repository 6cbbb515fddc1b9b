//! Gradient checking: backpropagation against finite differences of the loss.
//!
//! Two procedures:
//!
//! - [`check_gradients`] checks every entry of every parameter tensor of an `f64` model
//!   with a central difference and reports relative errors. Entries whose perturbation
//!   moves a ReLU pre-activation across 0 (a kink, where the loss is not differentiable)
//!   are detected exactly, skipped and counted.
//! - [`notebook_grad_check`] is the notebook's Part 3 `grad_check`: one parameter row, its
//!   first entries, and the step `epsilon = 1/N` for `N = k * 10^i`, `k = 1..=4`,
//!   `i = 0..=4`, reported as serde data for plotting.

use glorot_tensor::Activation;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::config::Arithmetic;
use crate::error::{Error, Result};
use crate::model::{Mlp, Workspace};
use crate::param::{ParamId, ParamKind};

/// The finite-difference formula.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stencil {
    /// `(L(p + h) - L(p - h)) / (2h)`: error `O(h^2)`, the notebook's formula.
    Central2,
    /// `(-L(p + 2h) + 8 L(p + h) - 8 L(p - h) + L(p - 2h)) / (12h)`: the fourth-order
    /// central difference, error `O(h^4)`, so that a relative tolerance of `1e-6` holds
    /// for gradients far smaller than the loss.
    Central4,
}

impl Stencil {
    fn offsets_and_weights(self) -> &'static [(f64, f64)] {
        match self {
            Stencil::Central2 => &[(1.0, 0.5), (-1.0, -0.5)],
            Stencil::Central4 => &[
                (2.0, -1.0 / 12.0),
                (1.0, 8.0 / 12.0),
                (-1.0, -8.0 / 12.0),
                (-2.0, 1.0 / 12.0),
            ],
        }
    }
}

/// Options of [`check_gradients`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradCheckOptions {
    /// The step `h` (default `1e-3`).
    pub step: f64,
    /// The formula (default [`Stencil::Central4`]).
    pub stencil: Stencil,
    /// Largest relative error that passes (default `1e-6`).
    pub tolerance: f64,
    /// The relative error is `|analytic - numeric| / max(|analytic|, |numeric|, floor)`:
    /// gradients smaller than `floor` (default `1e-6`) are compared absolutely against
    /// `tolerance * floor`, because both sides of a vanishing gradient are round-off.
    pub floor: f64,
}

impl Default for GradCheckOptions {
    fn default() -> Self {
        Self {
            step: 1e-3,
            stencil: Stencil::Central4,
            tolerance: 1e-6,
            floor: 1e-6,
        }
    }
}

/// The check of one parameter tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamCheck {
    /// `w0`, `b0`, ...
    pub param: ParamId,
    /// Entries compared.
    pub checked: usize,
    /// Entries skipped because a ReLU pre-activation crossed 0 within the stencil.
    pub kinks: usize,
    /// Entries whose relative error exceeds the tolerance.
    pub failures: usize,
    /// Largest relative error over the compared entries (0 when none was compared).
    pub max_rel_error: f64,
    /// Row-major index of that entry.
    pub worst_index: Option<usize>,
    /// Backpropagation's value at the worst entry.
    pub worst_analytic: f64,
    /// The finite difference at the worst entry.
    pub worst_numeric: f64,
}

/// The result of [`check_gradients`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradCheckReport {
    /// The options used.
    pub options: GradCheckOptions,
    /// One entry per parameter tensor, in the order `w0, w1, ..., b0, b1, ...`.
    pub params: Vec<ParamCheck>,
}

impl GradCheckReport {
    /// True when no compared entry exceeded the tolerance.
    pub fn passed(&self) -> bool {
        self.params.iter().all(|p| p.failures == 0)
    }

    /// Largest relative error over all parameters.
    pub fn max_rel_error(&self) -> f64 {
        self.params
            .iter()
            .map(|p| p.max_rel_error)
            .fold(0.0, f64::max)
    }

    /// Entries compared over all parameters.
    pub fn checked(&self) -> usize {
        self.params.iter().map(|p| p.checked).sum()
    }

    /// Kinks skipped over all parameters.
    pub fn kinks(&self) -> usize {
        self.params.iter().map(|p| p.kinks).sum()
    }
}

/// Evaluates the loss at perturbed parameters, tracking the ReLU activation pattern.
struct Probe<'a> {
    model: Mlp<f64>,
    x: ArrayView2<'a, f64>,
    y: ArrayView2<'a, f64>,
    ws: Workspace<f64>,
    relu: bool,
    base_pattern: Vec<bool>,
}

impl<'a> Probe<'a> {
    fn new(
        model: &Mlp<f64>,
        x: ArrayView2<'a, f64>,
        y: ArrayView2<'a, f64>,
        arithmetic: Arithmetic,
    ) -> Self {
        let mut probe = Self {
            model: model.clone(),
            x,
            y,
            ws: Workspace::with_arithmetic(model.config(), x.nrows(), arithmetic),
            relu: model.config().activation() == Activation::Relu && model.depth() > 1,
            base_pattern: Vec::new(),
        };
        probe.loss();
        probe.base_pattern = probe.pattern();
        probe
    }

    fn loss(&mut self) -> f64 {
        self.model.forward(self.x, &mut self.ws);
        self.model.loss(&self.ws, self.y)
    }

    /// Which hidden units are active (`relu(z) > 0` exactly when `z > 0`).
    fn pattern(&self) -> Vec<bool> {
        if !self.relu {
            return Vec::new();
        }
        (0..self.model.depth() - 1)
            .flat_map(|l| {
                self.ws
                    .hidden(l)
                    .iter()
                    .map(|&a| a > 0.0)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn same_pattern(&self) -> bool {
        if !self.relu {
            return true;
        }
        let mut base = self.base_pattern.iter();
        (0..self.model.depth() - 1).all(|l| {
            self.ws
                .hidden(l)
                .iter()
                .all(|&a| base.next() == Some(&(a > 0.0)))
        })
    }

    /// The finite difference at entry `i` of `id`, or `None` at a kink. The parameter is
    /// restored exactly afterwards.
    fn numeric(&mut self, id: ParamId, i: usize, step: f64, stencil: Stencil) -> Option<f64> {
        let original = self.model.param(id).expect("checked parameter")[i];
        let mut acc = 0.0;
        let mut kink = false;
        for &(offset, weight) in stencil.offsets_and_weights() {
            self.model.param_mut(id).expect("checked parameter")[i] = original + offset * step;
            acc += weight * self.loss();
            kink |= !self.same_pattern();
        }
        self.model.param_mut(id).expect("checked parameter")[i] = original;
        (!kink).then_some(acc / step)
    }
}

/// Checks backpropagation against finite differences for every entry of every parameter
/// of `model` on the batch `x: (rows, inputs)`, `y: (rows, outputs)`.
///
/// The model is not modified (the check perturbs a copy). Costs `4 * num_parameters`
/// forward passes with [`Stencil::Central4`]: meant for small networks.
///
/// # Errors
/// [`Error::DataShape`] when `x` or `y` do not fit the model or each other.
pub fn check_gradients(
    model: &Mlp<f64>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    options: &GradCheckOptions,
) -> Result<GradCheckReport> {
    check_batch(model, x, y)?;
    let mut ws = Workspace::new(model.config(), x.nrows());
    model.gradients(x, y, &mut ws);
    let grads = ws.gradients();
    let mut probe = Probe::new(model, x, y, Arithmetic::Fast);
    let mut params = Vec::new();
    for id in ParamId::all(model.depth()) {
        let analytic = grads.param(id).expect("every parameter has a gradient");
        let mut check = ParamCheck {
            param: id,
            checked: 0,
            kinks: 0,
            failures: 0,
            max_rel_error: 0.0,
            worst_index: None,
            worst_analytic: 0.0,
            worst_numeric: 0.0,
        };
        for (i, &a) in analytic.iter().enumerate() {
            let Some(n) = probe.numeric(id, i, options.step, options.stencil) else {
                check.kinks += 1;
                continue;
            };
            check.checked += 1;
            let rel = (a - n).abs() / a.abs().max(n.abs()).max(options.floor);
            // NaN never passes.
            if rel.is_nan() || rel > options.tolerance {
                check.failures += 1;
            }
            if check.worst_index.is_none() || rel > check.max_rel_error || rel.is_nan() {
                check.max_rel_error = rel;
                check.worst_index = Some(i);
                check.worst_analytic = a;
                check.worst_numeric = n;
            }
        }
        params.push(check);
    }
    Ok(GradCheckReport {
        options: *options,
        params,
    })
}

fn check_batch(model: &Mlp<f64>, x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<()> {
    let cfg = model.config();
    let checks = [
        ("gradient check inputs: columns", cfg.inputs(), x.ncols()),
        ("gradient check targets: columns", cfg.outputs(), y.ncols()),
        ("gradient check targets: rows", x.nrows(), y.nrows()),
    ];
    for (what, expected, found) in checks {
        if expected != found {
            return Err(Error::DataShape {
                what,
                expected,
                found,
            });
        }
    }
    if x.nrows() == 0 {
        return Err(Error::DataShape {
            what: "gradient check inputs: rows (at least)",
            expected: 1,
            found: 0,
        });
    }
    Ok(())
}

/// One step size of [`notebook_grad_check`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookStep {
    /// `N = k * 10^i`.
    pub n: f64,
    /// `epsilon = 1 / N`.
    pub epsilon: f64,
    /// The finite difference `(L(p + eps) - L(p - eps)) / (2 eps)` of each entry.
    pub numeric: Vec<f64>,
    /// `|numeric - analytic|` of each entry.
    pub abs_diff: Vec<f64>,
    /// The largest of `abs_diff` (the notebook's `max_differences`).
    pub max_abs_diff: f64,
    /// The largest relative error `|numeric - analytic| / max(|numeric|, |analytic|)`
    /// (0 where both are 0).
    pub max_rel_error: f64,
}

/// The result of [`notebook_grad_check`], ready for plotting `max_abs_diff` against `n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotebookGradCheck {
    /// The parameter checked (`w0`, `w1`, ...).
    pub param: ParamId,
    /// The row of the weight matrix (0 for a bias vector).
    pub row: usize,
    /// Columns checked (`0..entries`).
    pub entries: usize,
    /// Backpropagation's gradient of each entry, computed once before any perturbation.
    pub analytic: Vec<f64>,
    /// One record per `N`, in the notebook's order: `N = 1, 10, 100, 1000, 10000, 2, 20,
    /// ..., 40000` (`k` outer, `i` inner).
    pub steps: Vec<NotebookStep>,
}

/// The notebook's Part 3 `grad_check(x, y, p, row)`: for parameter `param` (for example
/// `w0` row 161, or `w1` row 0) and the first `entries` entries of row `row` (the notebook
/// uses 10), for `N = k * 10^i` (`k = 1..=4` outer, `i = 0..=4` inner) and
/// `epsilon = 1 / N`: the central difference of the loss on the batch `x`, `y` (the
/// notebook passes one training example) against backpropagation.
///
/// The perturbation is the notebook's: `p += eps`, forward, loss; `p -= 2 * eps`, forward,
/// loss; `p += eps`. Like the notebook, the parameter is restored by that arithmetic, not
/// by copying, so round-off drift carries over from one `N` to the next; the drift happens
/// on a copy and `model` itself is not modified. For a bias, `row` must be 0 and the
/// entries are the vector's first ones. Products go through BLAS
/// ([`Arithmetic::Blas`]), as in the notebook.
///
/// # Errors
/// [`Error::UnknownParameter`] for a layer, row or entry count out of range;
/// [`Error::DataShape`] when `x` or `y` do not fit the model.
pub fn notebook_grad_check(
    model: &Mlp<f64>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    param: ParamId,
    row: usize,
    entries: usize,
) -> Result<NotebookGradCheck> {
    check_batch(model, x, y)?;
    let shape = model.param_shape(param)?;
    let (rows, cols) = match param.kind {
        ParamKind::Weight => (shape[0], shape[1]),
        ParamKind::Bias => (1, shape[0]),
    };
    let out_of_range = |reason: String| Error::UnknownParameter {
        name: format!("{param}[{row}][..{entries}]"),
        reason,
    };
    if row >= rows {
        return Err(out_of_range(format!("{param} has {rows} rows")));
    }
    if entries == 0 || entries > cols {
        return Err(out_of_range(format!(
            "{param} has {cols} columns; check between 1 and {cols} entries"
        )));
    }
    // Every product through BLAS, as NumPy computes the notebook's.
    let mut ws = Workspace::with_arithmetic(model.config(), x.nrows(), Arithmetic::Blas);
    model.gradients(x, y, &mut ws);
    let start = row * cols;
    let analytic: Vec<f64> =
        ws.gradients().param(param).expect("parameter exists")[start..start + entries].to_vec();

    let mut probe = Probe::new(model, x, y, Arithmetic::Blas);
    let mut steps = Vec::with_capacity(20);
    for k in 1..=4 {
        for i in 0..=4 {
            // `N = k * math.pow(10, i)` and `epsilon = 1.0 / N`, in Python floats.
            let n = f64::from(k) * 10f64.powi(i);
            let eps = 1.0 / n;
            let mut numeric = Vec::with_capacity(entries);
            for j in 0..entries {
                let at = start + j;
                let bump = |probe: &mut Probe<'_>, delta: f64| {
                    let p = &mut probe.model.param_mut(param).expect("parameter exists")[at];
                    *p += delta;
                };
                bump(&mut probe, eps);
                let left = probe.loss();
                bump(&mut probe, -(2.0 * eps));
                let right = probe.loss();
                bump(&mut probe, eps);
                numeric.push((left - right) / (2.0 * eps));
            }
            let abs_diff: Vec<f64> = numeric
                .iter()
                .zip(&analytic)
                .map(|(n, a)| (n - a).abs())
                .collect();
            let max_rel_error = numeric
                .iter()
                .zip(&analytic)
                .map(|(&n, &a)| {
                    let scale = n.abs().max(a.abs());
                    if scale == 0.0 {
                        0.0
                    } else {
                        (n - a).abs() / scale
                    }
                })
                .fold(0.0, f64::max);
            steps.push(NotebookStep {
                n,
                epsilon: eps,
                max_abs_diff: abs_diff.iter().copied().fold(0.0, f64::max),
                numeric,
                abs_diff,
                max_rel_error,
            });
        }
    }
    Ok(NotebookGradCheck {
        param,
        row,
        entries,
        analytic,
        steps,
    })
}
