//! One training or evaluation of a model on the prepared data (`glorot train`,
//! `glorot eval`), and the results file of a training ([`TrainOutput`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use glorot_mlp::{
    ConfusionMatrix, EvalData, Evaluation, Evaluator, FitData, Float, Mlp, ModelConfig, Precision,
    Status, TrainConfig, TrainData, TrainReport, Trainer, WeightSource,
};
use glorot_tensor::one_hot;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::{Compute, DataInfo, Loaded};
use crate::error::{Context as _, Error, Result};

/// Version of the JSON written by `glorot train --out` and printed by `--json`. Version 2
/// writes `train.seed` as a decimal string ([`glorot_mlp::seed_text`]).
pub const TRAIN_SCHEMA_VERSION: u32 = 2;

/// What `glorot train` writes with `--out` and prints with `--json`.
#[derive(Debug, Serialize)]
pub struct TrainOutput {
    /// [`TRAIN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The architecture trained.
    pub model: ModelConfig,
    /// The training hyperparameters.
    pub train: TrainConfig,
    /// Trainable parameters.
    pub parameters: usize,
    /// Weights the run started from, if any.
    pub from_weights: Option<PathBuf>,
    /// Where the trained weights were saved, if anywhere.
    pub weights: Option<PathBuf>,
    /// Where an interrupted training stopped (the weights saved, if any, are those of
    /// that point); absent when the training was not interrupted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// The data.
    pub data: DataInfo,
    /// Validation accuracy of the weights the run ends with: after the last epoch, or of
    /// the kept epoch under early stopping (null when diverged).
    pub final_val_accuracy: Option<f64>,
    /// Best validation accuracy over the epochs (null when diverged).
    pub best_val_accuracy: Option<f64>,
    /// Curves, status, test metrics, timings.
    pub report: TrainReport,
    /// Where and how it ran.
    pub manifest: glorot_search::Manifest,
}

/// Everything one training needs, for [`fit`] in either precision.
#[derive(Debug)]
pub struct FitJob<'a> {
    /// The architecture.
    pub model: &'a ModelConfig,
    /// The training hyperparameters, checked.
    pub train: glorot_mlp::ValidTrainConfig,
    /// Weights to start from and the precision they are stored in (else drawn from the
    /// training seed).
    pub from: Option<(&'a Path, Precision)>,
    /// The data.
    pub loaded: &'a Loaded,
    /// Evaluate the test split at the end.
    pub test: bool,
    /// Save the trained weights here when the training completes, or, marked as
    /// interrupted ([`INTERRUPTED_KEY`]), when the observer stops it.
    pub save: Option<&'a Path>,
}

/// The weights file's metadata key marking the weights of an interrupted training; its
/// value is the [`Interruption`] as JSON.
pub const INTERRUPTED_KEY: &str = "interrupted";

/// Where an interrupted training stopped: its weights are those after `batch` of the
/// `batches` minibatches of epoch `epoch` (`0, 0`: before the first batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// The epoch of the last finished batch, from 1 (0: none finished).
    pub epoch: usize,
    /// The last finished batch within that epoch, from 1 (0: none finished).
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
}

impl Interruption {
    /// The interruption recorded in a weights file's metadata
    /// ([`glorot_mlp::WeightsInfo::metadata`]), if any; a value that does not parse is
    /// reported as none.
    pub fn of_weights(metadata: &BTreeMap<String, String>) -> Option<Self> {
        serde_json::from_str(metadata.get(INTERRUPTED_KEY)?).ok()
    }
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.batch == 0 {
            write!(f, "before the first batch")
        } else {
            write!(
                f,
                "after epoch {}, batch {} of {}",
                self.epoch, self.batch, self.batches
            )
        }
    }
}

/// What [`fit`] did besides training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitEnd {
    /// Whether the weights were saved (to [`FitJob::save`]).
    pub saved: bool,
    /// Where the training stopped when it was interrupted.
    pub interrupted: Option<Interruption>,
}

/// Passes everything on to the caller's observer, remembering the last finished batch.
struct LastBatch<'a> {
    inner: &'a mut dyn glorot_mlp::Observer,
    last: Interruption,
}

impl glorot_mlp::Observer for LastBatch<'_> {
    fn on_epoch_start(&mut self, epoch: usize, batches: usize) {
        self.inner.on_epoch_start(epoch, batches);
    }
    fn on_batch(&mut self, event: &glorot_mlp::BatchEvent) {
        self.last = Interruption {
            epoch: event.epoch,
            batch: event.batch,
            batches: event.batches,
        };
        self.inner.on_batch(event);
    }
    fn on_epoch_end(&mut self, metrics: &glorot_mlp::EpochMetrics) {
        self.inner.on_epoch_end(metrics);
    }
    fn should_stop(&self) -> bool {
        self.inner.should_stop()
    }
}

/// Trains `job` in `F`, reporting to `observer`; returns the report, whether the weights
/// were saved and where an interrupted training stopped. The weights are saved (when
/// [`FitJob::save`] names a file) after a completed training, and after an interrupted
/// one with the [`Interruption`] under [`INTERRUPTED_KEY`] in the file's metadata; never
/// after a diverged one.
///
/// # Errors
/// When the weights cannot be read or saved, or the model refuses the data.
pub fn fit<F: Compute>(
    job: FitJob<'_>,
    observer: &mut dyn glorot_mlp::Observer,
) -> Result<(TrainReport, FitEnd)> {
    let m = &job.loaded.mnist;
    let classes = glorot_mnist::NUM_CLASSES;
    let train_x = F::images(&m.train.images);
    let train_y: Array2<F> = one_hot(&m.train.labels, classes);
    let val_x = F::images(&m.validation.images);
    let test_x = job.test.then(|| F::images(&m.test.images));
    let test = match &test_x {
        Some(x) => Some(EvalData::new(x.view(), &m.test.labels)?),
        None => None,
    };
    let data = FitData {
        train: TrainData::new(train_x.view(), train_y.view())?,
        validation: EvalData::new(val_x.view(), &m.validation.labels)?,
        test,
    };
    let mlp = match job.from {
        None => Mlp::<F>::new(job.model.validate()?, WeightSource::Seed(job.train.seed()))?,
        Some((path, stored)) => load_weights::<F>(path, job.model, stored)?,
    };
    let mut trainer = Trainer::new(mlp, job.train.clone())?;
    let mut tracked = LastBatch {
        inner: observer,
        last: Interruption {
            epoch: 0,
            batch: 0,
            batches: 0,
        },
    };
    let report = trainer.fit(&data, &mut tracked)?;
    let interrupted = matches!(report.status, Status::Cancelled { .. }).then_some(tracked.last);
    let mut metadata = BTreeMap::new();
    if let Some(at) = interrupted {
        let json = serde_json::to_string(&at).expect("an interruption always serializes");
        metadata.insert(INTERRUPTED_KEY.to_owned(), json);
    }
    let mut saved = false;
    if let Some(path) = job.save
        && matches!(report.status, Status::Completed | Status::Cancelled { .. })
    {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        trainer
            .model()
            .save_with_metadata(path, &metadata)
            .with_context(|| format!("cannot save the weights to {}", path.display()))?;
        saved = true;
    }
    Ok((report, FitEnd { saved, interrupted }))
}

/// Upper bound of the bytes [`fit`] allocates for `model` and `train` on `loaded` (with
/// the test split when `test`), beyond the loaded data itself: the trainer's buffers
/// ([`glorot_mlp::memory::training_bytes`]), the one-hot targets, and the images in `f64`
/// when the training computes in `f64`. To be compared with the machine's memory before
/// [`fit`] allocates anything.
///
/// # Errors
/// [`glorot_mlp::Error::MemoryOverflow`] (as [`Error::Mlp`]) when the count does not fit
/// in 64 bits.
pub fn fit_bytes(
    model: &glorot_mlp::ValidModelConfig,
    train: &glorot_mlp::ValidTrainConfig,
    loaded: &Loaded,
    test: bool,
) -> Result<u64> {
    let m = &loaded.mnist;
    let test_rows = if test { m.test.len() } else { 0 };
    let eval_rows = m.validation.len().max(test_rows);
    let buffers = glorot_mlp::memory::training_bytes(model, train, m.train.len(), eval_rows)?;
    let element: u64 = match train.precision() {
        Precision::F32 => 4,
        Precision::F64 => 8,
    };
    let inputs = m.train.images.ncols() as u64;
    let mut elements = m.train.len() as u64 * glorot_mnist::NUM_CLASSES as u64;
    if train.precision() == Precision::F64 {
        elements += (m.train.len() + m.validation.len() + test_rows) as u64 * inputs;
    }
    buffers.checked_add(elements * element).ok_or_else(|| {
        glorot_mlp::Error::MemoryOverflow {
            what: "training this model".to_owned(),
        }
        .into()
    })
}

/// Upper bound of the bytes [`evaluate`] allocates for weights of the architecture
/// `model` on `rows` rows of `inputs` columns in `precision`, beyond the loaded data: the model, the evaluation buffers
/// and the images in `f64` when it computes in `f64`.
///
/// # Errors
/// [`glorot_mlp::Error::MemoryOverflow`] (as [`Error::Mlp`]) when the count does not fit
/// in 64 bits.
pub fn evaluate_bytes(
    model: &glorot_mlp::ValidModelConfig,
    precision: Precision,
    rows: usize,
    inputs: usize,
) -> Result<u64> {
    let buffers = glorot_mlp::memory::evaluation_bytes(model, precision, rows)?;
    let images = match precision {
        Precision::F32 => 0,
        Precision::F64 => rows as u64 * inputs as u64 * 8,
    };
    buffers.checked_add(images).ok_or_else(|| {
        glorot_mlp::Error::MemoryOverflow {
            what: "evaluating this model".to_owned(),
        }
        .into()
    })
}

/// Loads a weights file stored in `stored` precision as a model computing in `F`; the
/// file's config must equal `expected`.
///
/// # Errors
/// When the file cannot be read or holds another architecture.
pub fn load_weights<F: Float>(
    path: &Path,
    expected: &ModelConfig,
    stored: Precision,
) -> Result<Mlp<F>> {
    let context = || format!("cannot load the weights {}", path.display());
    Ok(match stored {
        Precision::F32 => Mlp::<f32>::load_expecting(path, expected)
            .with_context(context)?
            .cast::<F>(),
        Precision::F64 => Mlp::<f64>::load_expecting(path, expected)
            .with_context(context)?
            .cast::<F>(),
    })
}

/// Evaluates the weights in `path` (described by `info`) on `split`, in `F`.
///
/// # Errors
/// When the weights cannot be read or the split does not fit the model.
pub fn evaluate<F: Compute>(
    path: &Path,
    info: &glorot_mlp::WeightsInfo,
    split: &glorot_mnist::SplitData<f32>,
) -> Result<Evaluation> {
    let model = load_weights::<F>(path, &info.config, info.precision)?;
    let x = F::images(&split.images);
    let data = EvalData::new(x.view(), &split.labels)?;
    let mut evaluator = Evaluator::new(model.config(), split.len());
    evaluator
        .evaluate(&model, &data)
        .with_context(|| format!("cannot evaluate {}", path.display()))
}

/// As [`evaluate`], with the confusion matrix of the same pass
/// ([`glorot_mlp::Evaluator::evaluate_confusion`]): its total accuracy is the
/// evaluation's.
///
/// # Errors
/// When the weights cannot be read or the split does not fit the model.
pub fn evaluate_confusion<F: Compute>(
    path: &Path,
    info: &glorot_mlp::WeightsInfo,
    split: &glorot_mnist::SplitData<f32>,
) -> Result<(Evaluation, ConfusionMatrix)> {
    let model = load_weights::<F>(path, &info.config, info.precision)?;
    let x = F::images(&split.images);
    let data = EvalData::new(x.view(), &split.labels)?;
    let mut evaluator = Evaluator::new(model.config(), split.len());
    evaluator
        .evaluate_confusion(&model, &data)
        .with_context(|| format!("cannot evaluate {}", path.display()))
}

/// The confusion matrix as CSV (what `glorot eval --confusion-csv` writes): a header
/// `true_class,pred_0,...,pred_K,samples,correct,accuracy`, then one row per true class:
/// its counts by predicted class, then its rows, correct rows and accuracy in percent
/// (empty for a class without rows; printed with Rust's shortest round-trip form).
pub fn confusion_csv(m: &ConfusionMatrix) -> String {
    let k = m.classes();
    let mut csv = String::from("true_class");
    for p in 0..k {
        csv.push_str(&format!(",pred_{p}"));
    }
    csv.push_str(",samples,correct,accuracy\n");
    for c in m.per_class() {
        csv.push_str(&c.class.to_string());
        for p in 0..k {
            csv.push_str(&format!(",{}", m.count(c.class, p)));
        }
        let accuracy = c.accuracy.map(|a| a.to_string()).unwrap_or_default();
        csv.push_str(&format!(",{},{},{accuracy}\n", c.samples, c.correct));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confusion_csv_has_one_row_per_true_class() {
        // Hand example: truth 0 0 1 1 1, predicted 0 1 1 1 0 (class 2 has no rows).
        let m = ConfusionMatrix::from_predictions(3, &[0, 0, 1, 1, 1], &[0, 1, 1, 1, 0]).unwrap();
        assert_eq!(
            confusion_csv(&m),
            "true_class,pred_0,pred_1,pred_2,samples,correct,accuracy\n\
             0,1,1,0,2,1,50\n\
             1,1,2,0,3,2,66.66666666666667\n\
             2,0,0,0,0,0,\n"
        );
    }
}
