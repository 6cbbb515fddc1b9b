//! Borrowed datasets: the trainer reads views and never copies the data.

use glorot_tensor::Float;
use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// Training inputs and targets, borrowed: `x: (n, inputs)`, `y: (n, outputs)` (one-hot
/// rows for classification, as the notebook's `training_results`).
#[derive(Clone, Copy, Debug)]
pub struct TrainData<'a, F: Float> {
    x: ArrayView2<'a, F>,
    y: ArrayView2<'a, F>,
}

impl<'a, F: Float> TrainData<'a, F> {
    /// Pairs inputs with targets.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the row counts differ or there are no rows.
    pub fn new(x: ArrayView2<'a, F>, y: ArrayView2<'a, F>) -> Result<Self> {
        if x.nrows() != y.nrows() {
            return Err(Error::DataShape {
                what: "training targets: rows (one per input row)",
                expected: x.nrows(),
                found: y.nrows(),
            });
        }
        nonempty("training inputs: rows (at least)", x.nrows())?;
        Ok(Self { x, y })
    }

    /// Inputs `(n, inputs)`.
    pub fn x(&self) -> ArrayView2<'a, F> {
        self.x
    }

    /// Targets `(n, outputs)`.
    pub fn y(&self) -> ArrayView2<'a, F> {
        self.y
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// Always false: construction refuses empty data.
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
}

/// Evaluation inputs and class labels, borrowed: `x: (n, inputs)`, `labels: n` class
/// indices (the notebook's `validation_results`). The loss is computed against their
/// one-hot rows.
#[derive(Clone, Copy, Debug)]
pub struct EvalData<'a, F: Float> {
    x: ArrayView2<'a, F>,
    labels: &'a [u8],
}

impl<'a, F: Float> EvalData<'a, F> {
    /// Pairs inputs with labels.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the counts differ or there are no rows.
    pub fn new(x: ArrayView2<'a, F>, labels: &'a [u8]) -> Result<Self> {
        if x.nrows() != labels.len() {
            return Err(Error::DataShape {
                what: "evaluation labels: count (one per input row)",
                expected: x.nrows(),
                found: labels.len(),
            });
        }
        nonempty("evaluation inputs: rows (at least)", x.nrows())?;
        Ok(Self { x, labels })
    }

    /// Inputs `(n, inputs)`.
    pub fn x(&self) -> ArrayView2<'a, F> {
        self.x
    }

    /// Labels, one per row.
    pub fn labels(&self) -> &'a [u8] {
        self.labels
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Always false: construction refuses empty data.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks the labels against a model with `classes` outputs.
    pub(crate) fn check_labels(&self, split: &'static str, classes: usize) -> Result<()> {
        match self.labels.iter().position(|&l| usize::from(l) >= classes) {
            Some(row) => Err(Error::LabelOutOfRange {
                split,
                row,
                label: self.labels[row],
                classes,
            }),
            None => Ok(()),
        }
    }
}

fn nonempty(what: &'static str, n: usize) -> Result<()> {
    if n == 0 {
        Err(Error::DataShape {
            what,
            expected: 1,
            found: 0,
        })
    } else {
        Ok(())
    }
}

/// Everything [`crate::Trainer::fit`] reads: training data, validation data (evaluated
/// after every epoch) and, on request, test data (evaluated once at the end).
#[derive(Clone, Copy, Debug)]
pub struct FitData<'a, F: Float> {
    /// Trained on.
    pub train: TrainData<'a, F>,
    /// Evaluated after every epoch.
    pub validation: EvalData<'a, F>,
    /// Evaluated once after the last epoch when present.
    pub test: Option<EvalData<'a, F>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn mismatched_or_empty_data_is_refused() {
        let x = Array2::<f32>::zeros((3, 2));
        let y = Array2::<f32>::zeros((2, 2));
        assert!(matches!(
            TrainData::new(x.view(), y.view()),
            Err(Error::DataShape {
                expected: 3,
                found: 2,
                ..
            })
        ));
        assert!(EvalData::new(x.view(), &[0, 1]).is_err());
        let empty = Array2::<f32>::zeros((0, 2));
        assert!(EvalData::new(empty.view(), &[]).is_err());
        let e = EvalData::new(x.view(), &[0, 1, 7]).unwrap();
        assert!(matches!(
            e.check_labels("validation", 3),
            Err(Error::LabelOutOfRange {
                row: 2,
                label: 7,
                ..
            })
        ));
        assert!(e.check_labels("validation", 8).is_ok());
    }
}
