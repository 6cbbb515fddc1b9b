//! One training or evaluation of a model on the prepared data (`glorot train`,
//! `glorot eval`), and the results file of a training ([`TrainOutput`]).

use std::path::{Path, PathBuf};

use glorot_mlp::{
    EvalData, Evaluation, Evaluator, FitData, Float, Mlp, ModelConfig, Precision, Status,
    TrainConfig, TrainData, TrainReport, Trainer, WeightSource,
};
use glorot_tensor::one_hot;
use ndarray::Array2;
use serde::Serialize;

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
    /// The data.
    pub data: DataInfo,
    /// Validation accuracy after the last epoch (null when diverged).
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
    /// Save the trained weights here when the training completes.
    pub save: Option<&'a Path>,
}

/// Trains `job` in `F`, reporting to `observer`; returns the report and whether the
/// weights were saved.
///
/// # Errors
/// When the weights cannot be read or saved, or the model refuses the data.
pub fn fit<F: Compute>(
    job: FitJob<'_>,
    observer: &mut dyn glorot_mlp::Observer,
) -> Result<(TrainReport, bool)> {
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
    let report = trainer.fit(&data, observer)?;
    let mut saved = false;
    if let Some(path) = job.save
        && matches!(report.status, Status::Completed)
    {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        trainer
            .model()
            .save(path)
            .with_context(|| format!("cannot save the weights to {}", path.display()))?;
        saved = true;
    }
    Ok((report, saved))
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
