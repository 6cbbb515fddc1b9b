//! Per-layer statistics of a network on a held-out probe batch, taken during training
//! (Glorot and Bengio, 2010, figures 2-8): the mean, standard deviation and percentiles of
//! each hidden layer's activations, and histograms of the activations, of the
//! back-propagated gradients and of the weight gradients.
//!
//! A [`Probe`] is handed to [`Trainer::set_probe`](crate::Trainer::set_probe) with the
//! probe batch and the moments ([`ProbeSchedule`]); at each moment the trainer computes a
//! [`ProbeSnapshot`] and sends it to [`Observer::on_probe`](crate::Observer::on_probe).
//! The probe works in its own [`Workspace`]: it never touches the training buffers, the
//! shuffle generator or the optimizer, so training gives the same bits with or without
//! it, and a trainer without a probe does no extra work.
//!
//! What is measured, for hidden layer `l` (0-based) with `z_l = a_{l-1} w_l + b_l` and
//! `a_l = f(z_l)`, on the probe batch with the model's loss:
//!
//! - activations: `a_l`, every row and unit;
//! - back-propagated gradient: `dL/dz_l` of each example's own loss (the pre-activation
//!   gradient, the paper's figure 7 quantity through `f'`; in the linear regime of `tanh`
//!   it equals `dL/da_l`);
//! - weight gradient: `dL/dw_l` of the batch-mean loss (the paper's figure 8).
//!
//! [`probe`] computes one snapshot directly (the trainer calls it; tests and
//! experiments can too).

use glorot_tensor::Float;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Mlp, MlpFloat, Workspace};

/// The default percentiles: the paper's figure 2 draws the mean with the 98th percentile
/// band (1st to 99th); 16th/84th add a one-standard-deviation band of a normal.
pub const DEFAULT_PERCENTILES: [f64; 5] = [1.0, 16.0, 50.0, 84.0, 99.0];

/// When a [`Probe`] measures, counted in parameter updates (minibatches) since the
/// trainer was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSchedule {
    /// Measure before the first update of [`Trainer::fit`](crate::Trainer::fit).
    pub at_start: bool,
    /// Measure after every `every` updates (`None`: never in between).
    pub every: Option<usize>,
    /// Measure when `fit` ends (unless the last update was already measured).
    pub at_end: bool,
}

/// A probe batch and what to measure on it.
#[derive(Clone, Debug)]
pub struct Probe<F: Float> {
    x: Array2<F>,
    y: Array2<F>,
    schedule: ProbeSchedule,
    percentiles: Vec<f64>,
    bins: usize,
}

impl<F: Float> Probe<F> {
    /// A probe on `x: (rows, inputs)` with targets `y: (rows, outputs)` (one-hot for a
    /// classifier), at the moments of `schedule`, with [`DEFAULT_PERCENTILES`] and 100
    /// histogram bins.
    ///
    /// # Errors
    /// [`Error::DataShape`] when `x` has no rows or `y` has other rows than `x`.
    pub fn new(x: Array2<F>, y: Array2<F>, schedule: ProbeSchedule) -> Result<Self> {
        if x.nrows() == 0 {
            return Err(Error::DataShape {
                what: "probe batch: rows",
                expected: 1,
                found: 0,
            });
        }
        if y.nrows() != x.nrows() {
            return Err(Error::DataShape {
                what: "probe targets: rows (probe inputs)",
                expected: x.nrows(),
                found: y.nrows(),
            });
        }
        Ok(Self {
            x,
            y,
            schedule,
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            bins: 100,
        })
    }

    /// The percentiles to report (each in `[0, 100]`, linear interpolation between order
    /// statistics as NumPy's default `np.percentile`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a percentile outside `[0, 100]` or not finite.
    pub fn with_percentiles(mut self, percentiles: &[f64]) -> Result<Self> {
        if let Some(&p) = percentiles
            .iter()
            .find(|p| !(p.is_finite() && (0.0..=100.0).contains(*p)))
        {
            return Err(Error::config(
                "probe percentiles",
                p.to_string(),
                "must be in [0, 100]",
            ));
        }
        self.percentiles = percentiles.to_vec();
        Ok(self)
    }

    /// The number of histogram bins (at least 1).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for 0.
    pub fn with_bins(mut self, bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::config("probe bins", "0", "must be at least 1"));
        }
        self.bins = bins;
        Ok(self)
    }

    /// The moments this probe measures at.
    pub fn schedule(&self) -> ProbeSchedule {
        self.schedule
    }

    /// The probe inputs, `(rows, inputs)`.
    pub fn x(&self) -> ArrayView2<'_, F> {
        self.x.view()
    }

    /// The probe targets, `(rows, outputs)`.
    pub fn y(&self) -> ArrayView2<'_, F> {
        self.y.view()
    }

    /// Whether the schedule asks for a measurement after `update` updates (`> 0`).
    pub(crate) fn due_after(&self, update: usize) -> bool {
        self.schedule
            .every
            .is_some_and(|k| k > 0 && update.is_multiple_of(k))
    }
}

/// Mean, standard deviation and percentiles of a set of values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation around the mean (population, `ddof = 0`, as `np.std`).
    pub std: f64,
    /// `(percentile, value)` pairs, in the probe's order.
    pub percentiles: Vec<(f64, f64)>,
}

/// A histogram with equal bins over `[lo, hi]` (the values' own range; the last bin
/// includes `hi`). Normalize with [`Histogram::density`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of the first bin (the smallest value).
    pub lo: f64,
    /// Upper edge of the last bin (the largest value).
    pub hi: f64,
    /// Values per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// `(bin centre, density)` per bin, the density integrating to 1 over `[lo, hi]`
    /// (all mass in one bin of width 1 when every value is equal).
    pub fn density(&self) -> Vec<(f64, f64)> {
        let total: u64 = self.counts.iter().sum();
        let bins = self.counts.len().max(1);
        let width = if self.hi > self.lo {
            (self.hi - self.lo) / bins as f64
        } else {
            1.0
        };
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                (
                    self.lo + (i as f64 + 0.5) * width,
                    c as f64 / (total.max(1) as f64 * width),
                )
            })
            .collect()
    }
}

/// Statistics of one set of values: a [`Summary`] and a [`Histogram`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Mean, standard deviation and percentiles.
    pub summary: Summary,
    /// Histogram over the values' range.
    pub histogram: Histogram,
}

/// The statistics of one hidden layer (see the module docs for the quantities).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProbe {
    /// Hidden layer, from 0 (the first hidden layer).
    pub layer: usize,
    /// Activations `a_l`.
    pub activations: Distribution,
    /// Back-propagated gradients `dL/dz_l` (each example's own loss).
    pub backprop_gradients: Distribution,
    /// Weight gradients `dL/dw_l` (batch-mean loss), `w_l` being the weights into the layer.
    pub weight_gradients: Distribution,
}

/// One measurement: every hidden layer, at one moment of training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSnapshot {
    /// Parameter updates done before the measurement (0: at initialization).
    pub update: usize,
    /// The model's loss on the probe batch.
    pub loss: f64,
    /// Hidden layers, from the first.
    pub layers: Vec<LayerProbe>,
}

/// Measures `model` on the probe's batch: forward and backward through a fresh
/// [`Workspace`] (the model is not changed). `update` is recorded in the snapshot.
///
/// # Errors
/// [`Error::DataShape`] when the probe's widths do not match the model.
pub fn probe<F: MlpFloat>(
    model: &Mlp<F>,
    probe: &Probe<F>,
    update: usize,
) -> Result<ProbeSnapshot> {
    check_shapes(model, probe)?;
    let cfg = model.config();
    let mut ws = Workspace::new(cfg, probe.x.nrows());
    let loss = model.gradients(probe.x.view(), probe.y.view(), &mut ws);
    let stats = |values: &mut Vec<f64>| distribution(values, &probe.percentiles, probe.bins);
    let mut buf = Vec::new();
    let mut layers = Vec::new();
    for l in 0..model.depth() - 1 {
        let mut take = |v: ArrayView2<'_, F>| {
            buf.clear();
            buf.extend(v.iter().map(|&x| Float::to_f64(x)));
            stats(&mut buf)
        };
        let activations = take(ws.hidden(l));
        let backprop_gradients = take(ws.delta(l));
        let weight_gradients = take(ws.gradients().weights(l));
        layers.push(LayerProbe {
            layer: l,
            activations,
            backprop_gradients,
            weight_gradients,
        });
    }
    Ok(ProbeSnapshot {
        update,
        loss: loss.to_f64(),
        layers,
    })
}

/// [`Error::DataShape`] unless the probe's inputs and targets have the model's widths.
pub(crate) fn check_shapes<F: Float>(model: &Mlp<F>, probe: &Probe<F>) -> Result<()> {
    let cfg = model.config();
    for (what, expected, found) in [
        ("probe inputs: columns", cfg.inputs(), probe.x.ncols()),
        ("probe targets: columns", cfg.outputs(), probe.y.ncols()),
    ] {
        if expected != found {
            return Err(Error::DataShape {
                what,
                expected,
                found,
            });
        }
    }
    Ok(())
}

/// Summary and histogram of `values` (reordered in place). Non-finite values are left
/// out of the histogram and the percentiles but counted in `count` (the mean and standard
/// deviation then are not finite).
pub fn distribution(values: &mut [f64], percentiles: &[f64], bins: usize) -> Distribution {
    let count = values.len();
    let n = count.max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    values.sort_unstable_by(f64::total_cmp);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let pct = |p: f64| -> f64 {
        if finite.is_empty() {
            return f64::NAN;
        }
        // NumPy's default (`linear`): position p/100 * (n - 1) between order statistics.
        let pos = p / 100.0 * (finite.len() - 1) as f64;
        let i = pos.floor() as usize;
        let frac = pos - i as f64;
        let j = (i + 1).min(finite.len() - 1);
        finite[i] + frac * (finite[j] - finite[i])
    };
    let (lo, hi) = match (finite.first(), finite.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi),
        _ => (0.0, 0.0),
    };
    let bins = bins.max(1);
    let mut counts = vec![0u64; bins];
    for &v in &finite {
        let i = if hi > lo {
            (((v - lo) / (hi - lo)) * bins as f64) as usize
        } else {
            0
        };
        counts[i.min(bins - 1)] += 1;
    }
    Distribution {
        summary: Summary {
            count,
            mean,
            std: var.sqrt(),
            percentiles: percentiles.iter().map(|&p| (p, pct(p))).collect(),
        },
        histogram: Histogram { lo, hi, counts },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_of_known_values() {
        // 1..=5: mean 3, population variance 2; np.percentile([1..5], 25) = 2.0,
        // np.percentile(.., 90) = 4.6.
        let mut v = vec![5.0, 3.0, 1.0, 4.0, 2.0];
        let d = distribution(&mut v, &[0.0, 25.0, 90.0, 100.0], 4);
        assert_eq!(d.summary.count, 5);
        assert_eq!(d.summary.mean, 3.0);
        assert_eq!(d.summary.std, 2f64.sqrt());
        let p: Vec<f64> = d.summary.percentiles.iter().map(|p| p.1).collect();
        assert_eq!(p[0], 1.0);
        assert_eq!(p[1], 2.0);
        assert!((p[2] - 4.6).abs() < 1e-12);
        assert_eq!(p[3], 5.0);
        // Bins of width 1 over [1, 5]: {1}, {2}, {3}, {4, 5}.
        assert_eq!(d.histogram.counts, vec![1, 1, 1, 2]);
        let area: f64 = d.histogram.density().iter().map(|&(_, y)| y * 1.0).sum();
        assert!((area - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_probe_settings_are_errors() {
        let x = Array2::<f64>::zeros((2, 3));
        let y = Array2::<f64>::zeros((3, 1));
        let s = ProbeSchedule {
            at_start: true,
            every: None,
            at_end: false,
        };
        assert!(Probe::new(x.clone(), y, s).is_err());
        let p = Probe::new(x, Array2::zeros((2, 1)), s).unwrap();
        assert!(p.clone().with_bins(0).is_err());
        assert!(p.with_percentiles(&[101.0]).is_err());
    }
}
