//! The confusion matrix of a classifier on labelled data: `counts[true][predicted]`,
//! per-class accuracy and the total accuracy.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How often each true class was predicted as each class: `counts[t][p]` rows whose label
/// is `t` and whose predicted class (the argmax output, first maximum wins, as
/// [`Evaluator`](crate::Evaluator)) is `p`. Rows are true classes, columns predicted ones
/// (scikit-learn's `confusion_matrix` convention).
///
/// The diagonal holds the correct predictions: [`ConfusionMatrix::correct`] and
/// [`ConfusionMatrix::accuracy`] equal [`Evaluation::correct`](crate::Evaluation) and
/// [`Evaluation::accuracy`](crate::Evaluation) of the same pass
/// ([`Evaluator::evaluate_confusion`](crate::Evaluator::evaluate_confusion)), bit for bit.
///
/// Serialized as `{"classes": K, "counts": [[..K..], ..K..], "per_class": [..]}` with the
/// derived per-class figures ([`ClassAccuracy`]) beside the counts; read back from
/// `counts` alone (the derived figures are recomputed).
///
/// ```
/// use glorot_mlp::ConfusionMatrix;
///
/// let truth = [0, 0, 1, 1, 1, 2];
/// let predicted = [0, 1, 1, 1, 2, 2];
/// let m = ConfusionMatrix::from_predictions(3, &truth, &predicted)?;
/// assert_eq!(m.counts(), [[1, 1, 0], [0, 2, 1], [0, 0, 1]]);
/// assert_eq!(m.correct(), 4);
/// assert_eq!(m.class_accuracy(1), Some(200.0 / 3.0)); // 2 of the 3 ones
/// # Ok::<(), glorot_mlp::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ConfusionMatrixFile", try_from = "ConfusionMatrixFile")]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `classes x classes`.
    counts: Vec<usize>,
}

/// The figures of one true class in a [`ConfusionMatrix`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// The class.
    pub class: usize,
    /// Rows whose label is this class (the row sum).
    pub samples: usize,
    /// Of those, rows predicted as this class (the diagonal entry).
    pub correct: usize,
    /// Rows predicted as this class, whatever their label (the column sum).
    pub predicted: usize,
    /// `100 * correct / samples` (the class's recall, in percent); `null` for a class
    /// without rows.
    pub accuracy: Option<f64>,
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// The matrix of `predicted` classes against the `truth` labels, pair by pair.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the two differ in length or a prediction is not below
    /// `classes`, [`Error::LabelOutOfRange`] when a label is not.
    pub fn from_predictions(classes: usize, truth: &[u8], predicted: &[usize]) -> Result<Self> {
        if truth.len() != predicted.len() {
            return Err(Error::DataShape {
                what: "confusion matrix: predictions per label",
                expected: truth.len(),
                found: predicted.len(),
            });
        }
        let mut m = ConfusionMatrix::new(classes);
        for (row, (&label, &p)) in truth.iter().zip(predicted).enumerate() {
            if usize::from(label) >= classes {
                return Err(Error::LabelOutOfRange {
                    split: "confusion matrix",
                    row,
                    label,
                    classes,
                });
            }
            if p >= classes {
                return Err(Error::DataShape {
                    what: "confusion matrix: a predicted class is not below the class count",
                    expected: classes,
                    found: p,
                });
            }
            m.record(usize::from(label), p);
        }
        Ok(m)
    }

    /// Counts one row whose label is `truth` and whose predicted class is `predicted`.
    ///
    /// # Panics
    /// If either is not below [`ConfusionMatrix::classes`]: a programmer error (labels are
    /// checked against the model's outputs before evaluating).
    #[track_caller]
    pub fn record(&mut self, truth: usize, predicted: usize) {
        assert!(
            truth < self.classes && predicted < self.classes,
            "class ({truth}, {predicted}) out of range for {} classes",
            self.classes
        );
        self.counts[truth * self.classes + predicted] += 1;
    }

    /// Number of classes: the matrix is `classes x classes`.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Rows whose label is `truth` predicted as `predicted`.
    ///
    /// # Panics
    /// If either is not below [`ConfusionMatrix::classes`].
    #[track_caller]
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        assert!(truth < self.classes && predicted < self.classes);
        self.counts[truth * self.classes + predicted]
    }

    /// The counts as rows of true classes: `counts()[t][p]`.
    pub fn counts(&self) -> Vec<Vec<usize>> {
        self.counts
            .chunks(self.classes.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// Rows counted.
    pub fn samples(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Rows predicted correctly: the diagonal's sum.
    pub fn correct(&self) -> usize {
        (0..self.classes).map(|c| self.count(c, c)).sum()
    }

    /// `100 * correct / samples` in percent, computed as
    /// [`Evaluation::accuracy`](crate::Evaluation) is (`(correct * 100.0) / samples` in
    /// `f64`); `None` when nothing was counted.
    pub fn accuracy(&self) -> Option<f64> {
        percent(self.correct(), self.samples())
    }

    /// The accuracy on the rows whose label is `class` (its recall), in percent; `None`
    /// when no row has that label.
    ///
    /// # Panics
    /// If `class` is not below [`ConfusionMatrix::classes`].
    #[track_caller]
    pub fn class_accuracy(&self, class: usize) -> Option<f64> {
        self.class(class).accuracy
    }

    /// The figures of the true class `class`.
    ///
    /// # Panics
    /// If `class` is not below [`ConfusionMatrix::classes`].
    #[track_caller]
    pub fn class(&self, class: usize) -> ClassAccuracy {
        let k = self.classes;
        assert!(class < k, "class {class} out of range for {k} classes");
        let samples = self.counts[class * k..(class + 1) * k].iter().sum();
        let predicted = (0..k).map(|t| self.count(t, class)).sum();
        let correct = self.count(class, class);
        ClassAccuracy {
            class,
            samples,
            correct,
            predicted,
            accuracy: percent(correct, samples),
        }
    }

    /// [`ConfusionMatrix::class`] of every class, in order.
    pub fn per_class(&self) -> Vec<ClassAccuracy> {
        (0..self.classes).map(|c| self.class(c)).collect()
    }

    /// Adds `other`'s counts to these (the matrix of two passes over disjoint rows).
    ///
    /// # Panics
    /// If the two have different numbers of classes.
    #[track_caller]
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        assert_eq!(
            self.classes, other.classes,
            "confusion matrices of other sizes"
        );
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }
}

/// `(part * 100.0) / whole`, as [`Evaluation::accuracy`](crate::Evaluation) computes it.
fn percent(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 100.0) / whole as f64)
}

/// The serialized form of a [`ConfusionMatrix`].
#[derive(Serialize, Deserialize)]
struct ConfusionMatrixFile {
    classes: usize,
    counts: Vec<Vec<usize>>,
    /// Derived; ignored when reading.
    #[serde(default, skip_deserializing)]
    per_class: Vec<ClassAccuracy>,
}

impl From<ConfusionMatrix> for ConfusionMatrixFile {
    fn from(m: ConfusionMatrix) -> Self {
        ConfusionMatrixFile {
            classes: m.classes,
            counts: m.counts(),
            per_class: m.per_class(),
        }
    }
}

impl TryFrom<ConfusionMatrixFile> for ConfusionMatrix {
    type Error = String;

    fn try_from(f: ConfusionMatrixFile) -> std::result::Result<Self, String> {
        if f.counts.len() != f.classes || f.counts.iter().any(|row| row.len() != f.classes) {
            return Err(format!(
                "a confusion matrix of {} classes needs {0} rows of {0} counts",
                f.classes
            ));
        }
        Ok(ConfusionMatrix {
            classes: f.classes,
            counts: f.counts.concat(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight rows of three classes, counted by hand:
    ///
    /// ```text
    /// truth     0 0 0 1 1 2 2 2
    /// predicted 0 0 1 1 2 2 2 0
    /// ```
    ///
    /// Class 0: 3 rows, 2 right (predicted 0, 0, 1); class 1: 2 rows, 1 right (1, 2);
    /// class 2: 3 rows, 2 right (2, 2, 0). Columns: 0 predicted 3 times (0, 0 and the
    /// last 2), 1 twice, 2 three times. Total 5 of 8 = 62.5 %.
    fn hand() -> ConfusionMatrix {
        ConfusionMatrix::from_predictions(3, &[0, 0, 0, 1, 1, 2, 2, 2], &[0, 0, 1, 1, 2, 2, 2, 0])
            .unwrap()
    }

    #[test]
    fn counts_match_a_hand_calculation() {
        let m = hand();
        assert_eq!(m.counts(), [[2, 1, 0], [0, 1, 1], [1, 0, 2]]);
        assert_eq!((m.samples(), m.correct()), (8, 5));
        assert_eq!(m.accuracy(), Some(62.5));
        let per: Vec<(usize, usize, usize)> = m
            .per_class()
            .iter()
            .map(|c| (c.samples, c.correct, c.predicted))
            .collect();
        assert_eq!(per, [(3, 2, 3), (2, 1, 2), (3, 2, 3)]);
        assert_eq!(m.class_accuracy(0), Some(200.0 / 3.0));
        assert_eq!(m.class_accuracy(1), Some(50.0));
        assert_eq!(m.class_accuracy(2), Some(200.0 / 3.0));
    }

    #[test]
    fn a_class_without_rows_has_no_accuracy() {
        let m = ConfusionMatrix::from_predictions(3, &[0, 0], &[0, 2]).unwrap();
        assert_eq!(m.class(1).accuracy, None);
        assert_eq!(m.class(2).predicted, 1);
        assert_eq!(ConfusionMatrix::new(4).accuracy(), None);
    }

    #[test]
    fn mismatched_or_out_of_range_inputs_are_errors() {
        assert!(matches!(
            ConfusionMatrix::from_predictions(3, &[0, 1], &[0]),
            Err(Error::DataShape { .. })
        ));
        assert!(matches!(
            ConfusionMatrix::from_predictions(3, &[0, 3], &[0, 0]),
            Err(Error::LabelOutOfRange {
                row: 1,
                label: 3,
                ..
            })
        ));
        assert!(matches!(
            ConfusionMatrix::from_predictions(3, &[0, 1], &[0, 5]),
            Err(Error::DataShape {
                expected: 3,
                found: 5,
                ..
            })
        ));
    }

    #[test]
    fn merging_two_halves_gives_the_whole() {
        let truth = [0, 0, 0, 1, 1, 2, 2, 2];
        let pred = [0, 0, 1, 1, 2, 2, 2, 0];
        let mut a = ConfusionMatrix::from_predictions(3, &truth[..3], &pred[..3]).unwrap();
        let b = ConfusionMatrix::from_predictions(3, &truth[3..], &pred[3..]).unwrap();
        a.merge(&b);
        assert_eq!(a, hand());
    }

    /// The matrix the evaluator counts equals one built from an independent argmax of
    /// [`Mlp::predict`](crate::Mlp::predict), chunk boundaries or not, and its accuracy is
    /// the evaluation's.
    #[test]
    fn the_evaluators_matrix_is_the_argmax_of_the_predictions() {
        use crate::{EvalData, Evaluator, Head, Mlp, ModelConfig, WeightSource};
        use glorot_tensor::{Activation, Init};
        for head in [Head::SigmoidBce, Head::SoftmaxCrossEntropy] {
            let config = ModelConfig {
                layers: vec![4, 7, 3],
                activation: Activation::Tanh,
                head,
                init: Init::GlorotUniform,
            }
            .validate()
            .unwrap();
            let model = Mlp::<f64>::new(config.clone(), WeightSource::Seed(11)).unwrap();
            let x = ndarray::Array2::from_shape_fn((23, 4), |(i, j)| {
                ((i * 5 + j * 3) % 7) as f64 / 3.0 - 1.0
            });
            let labels: Vec<u8> = (0..23).map(|i| (i % 3) as u8).collect();
            let out = model.predict(x.view());
            let argmax: Vec<usize> = out
                .rows()
                .into_iter()
                .map(|r| (0..r.len()).fold(0, |best, j| if r[j] > r[best] { j } else { best }))
                .collect();
            let expected = ConfusionMatrix::from_predictions(3, &labels, &argmax).unwrap();
            let data = EvalData::new(x.view(), &labels).unwrap();
            for rows in [23, 5] {
                let (evaluation, m) = Evaluator::new(&config, rows)
                    .evaluate_confusion(&model, &data)
                    .unwrap();
                assert_eq!(m, expected, "{head}, chunks of {rows}");
                assert_eq!(m.correct(), evaluation.correct);
                assert_eq!(m.accuracy(), Some(evaluation.accuracy));
                assert_eq!(m.samples(), 23);
            }
        }
    }

    #[test]
    fn serializes_with_the_derived_figures_and_reads_back_from_the_counts() {
        let m = hand();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["classes"], 3);
        assert_eq!(
            json["counts"],
            serde_json::json!([[2, 1, 0], [0, 1, 1], [1, 0, 2]])
        );
        assert_eq!(json["per_class"][1]["accuracy"], 50.0);
        assert_eq!(json["per_class"][2]["predicted"], 3);
        let back: ConfusionMatrix = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        let bad = serde_json::json!({"classes": 2, "counts": [[1, 2], [3]]});
        assert!(serde_json::from_value::<ConfusionMatrix>(bad).is_err());
    }
}
