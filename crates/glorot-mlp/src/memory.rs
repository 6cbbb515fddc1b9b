//! How much memory a training or an evaluation holds, computed from its configuration
//! alone, so that a caller can refuse a run that cannot fit before anything is allocated.
//!
//! The estimates are upper bounds of the buffers this crate allocates (parameters,
//! gradients, the step and evaluation workspaces, the kernels' buffers, the per-epoch
//! curve); they do not count the data, which the caller holds. Every product is checked:
//! a configuration whose memory cannot even be counted in 64 bits is
//! [`Error::MemoryOverflow`].

use crate::config::{Precision, Shuffle, ValidModelConfig, ValidTrainConfig};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::train::{EVAL_CHUNK, EpochMetrics};

/// Rows of the kernels' fixed-size passes, bounded from above (the fused kernels
/// transpose at most 128 rows at a time and scan sparse inputs in passes of at most 256).
const KERNEL_ROWS: u128 = 256;

/// Batches up to this many rows get the `f64` exact sparse update's column buffers.
const SPARSE_UPDATE_ROWS: usize = 1024;

/// Bytes of one element of `precision`.
fn element(precision: Precision) -> u128 {
    match precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    }
}

/// Checked sums and products in `u128`, turned into `u64` at the end.
struct Count {
    total: Option<u128>,
}

impl Count {
    fn new() -> Self {
        Self { total: Some(0) }
    }

    /// Adds the product of `factors`.
    fn add(&mut self, factors: &[u128]) {
        let term = factors.iter().try_fold(1u128, |acc, &f| acc.checked_mul(f));
        self.total = match (self.total, term) {
            (Some(t), Some(x)) => t.checked_add(x),
            _ => None,
        };
    }

    fn finish(self, what: &str) -> Result<u64> {
        self.total
            .and_then(|t| u64::try_from(t).ok())
            .ok_or_else(|| Error::MemoryOverflow {
                what: what.to_owned(),
            })
    }
}

/// The buffers of a forward pass over `rows` rows: each layer's outputs.
fn activations(count: &mut Count, model: &ValidModelConfig, rows: u128, elem: u128) {
    for &w in &model.layers()[1..] {
        count.add(&[rows, w as u128, elem]);
    }
}

/// Upper bound of the bytes an evaluation of `model` on `rows` rows in `precision`
/// allocates ([`crate::Evaluator`] and the model itself), the data excluded.
///
/// # Errors
/// [`Error::MemoryOverflow`] when the count does not fit in 64 bits.
pub fn evaluation_bytes(
    model: &ValidModelConfig,
    precision: Precision,
    rows: usize,
) -> Result<u64> {
    let elem = element(precision);
    let mut count = Count::new();
    // The model, and the copy a weights file is read into before it is cast.
    count.add(&[2, model.num_parameters() as u128, elem.max(4)]);
    evaluator(&mut count, model, rows, elem);
    count.finish("evaluating this model")
}

fn evaluator(count: &mut Count, model: &ValidModelConfig, rows: usize, elem: u128) {
    let rows = rows.clamp(1, EVAL_CHUNK) as u128;
    activations(count, model, rows, elem);
    count.add(&[rows, model.outputs() as u128, elem]);
    count.add(&[rows, 8]);
    kernels(count, model, elem);
}

/// The fused kernels' buffers: transposes of the widest layer, the sparse scan of the
/// first layer's input.
fn kernels(count: &mut Count, model: &ValidModelConfig, elem: u128) {
    let widest = model.layers().iter().copied().max().unwrap_or(0) as u128;
    count.add(&[2, KERNEL_ROWS, widest, elem]);
    count.add(&[2, KERNEL_ROWS, model.inputs() as u128, 4 + elem]);
}

/// Upper bound of the bytes a [`crate::Trainer`] training `model` with `train` on
/// `train_rows` rows, validating (and testing) on up to `eval_rows` rows, allocates:
/// the model and its gradients, the optimizer's state, the step workspace of a batch (outputs and deltas of
/// every layer, the gathered batch when shuffling, the permutation, the kernels'
/// buffers), the evaluation workspace and the per-epoch curve. The data is not counted.
///
/// # Errors
/// [`Error::MemoryOverflow`] when the count does not fit in 64 bits (an absurd number
/// of epochs or absurd widths).
pub fn training_bytes(
    model: &ValidModelConfig,
    train: &ValidTrainConfig,
    train_rows: usize,
    eval_rows: usize,
) -> Result<u64> {
    let elem = element(train.precision());
    let params = model.num_parameters() as u128;
    let batch = train.batch_size().min(train_rows).max(1);
    let rows = batch as u128;
    let mut count = Count::new();
    // Parameters, gradients, and the initializer's scratch (at most one more copy).
    count.add(&[3, params, elem]);
    // The optimizer's state: a momentum buffer, or Adam's two moments.
    let moments = match train.optimizer() {
        Optimizer::Sgd { .. } => 0,
        Optimizer::Momentum { .. } | Optimizer::Nesterov { .. } => 1,
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
    };
    count.add(&[moments, params, elem]);
    // Early stopping's copy of the best epoch's parameters.
    count.add(&[u128::from(train.early_stopping().is_some()), params, elem]);
    // Outputs and deltas of a batch.
    activations(&mut count, model, rows, elem);
    activations(&mut count, model, rows, elem);
    if train.shuffle() == Shuffle::EveryEpoch {
        count.add(&[rows, (model.inputs() + model.outputs()) as u128, elem]);
        count.add(&[train_rows as u128, 8]);
    }
    kernels(&mut count, model, elem);
    if train.precision() == Precision::F64 && batch <= SPARSE_UPDATE_ROWS {
        count.add(&[3, rows, model.inputs() as u128, 16]);
    }
    evaluator(&mut count, model, eval_rows, elem);
    count.add(&[
        train.epochs() as u128,
        std::mem::size_of::<EpochMetrics>() as u128,
    ]);
    count.finish("training this model")
}

/// Upper bound of the bytes a gradient check of `model` in `f64` on a batch of `rows`
/// rows allocates ([`crate::check_gradients`], [`crate::notebook_grad_check`]): the
/// model and its probe copy, their gradients, two training workspaces of `rows` rows,
/// the batch itself and the ReLU activity patterns.
///
/// # Errors
/// [`Error::MemoryOverflow`] when the count does not fit in 64 bits.
pub fn gradcheck_bytes(model: &ValidModelConfig, rows: usize) -> Result<u64> {
    let rows = rows.max(1) as u128;
    let mut count = Count::new();
    count.add(&[4, model.num_parameters() as u128, 8]);
    for _ in 0..4 {
        activations(&mut count, model, rows, 8);
    }
    count.add(&[rows, (model.inputs() + model.outputs()) as u128, 8]);
    activations(&mut count, model, rows, 2);
    kernels(&mut count, model, 8);
    count.add(&[2, rows, model.inputs() as u128, 48]);
    count.finish("checking this model's gradients")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelConfig, TrainConfig};

    fn model(layers: Vec<usize>) -> ValidModelConfig {
        ModelConfig {
            layers,
            ..ModelConfig::notebook()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn the_notebook_run_needs_tens_of_megabytes() {
        // 784-500-500-10 has 648,010 parameters (the notebook's count); three copies in
        // f64 are 15.6 MB, the rest is small next to them.
        let m = model(vec![784, 500, 500, 10]);
        let t = TrainConfig::notebook().validate().unwrap();
        let bytes = training_bytes(&m, &t, 50_000, 10_000).unwrap();
        assert!(bytes > 3 * 648_010 * 8, "{bytes}");
        assert!(bytes < 200_000_000, "{bytes}");
    }

    #[test]
    fn epochs_count_in_the_curve() {
        let m = model(vec![4, 3, 2]);
        let few = TrainConfig {
            epochs: 1,
            ..TrainConfig::default()
        };
        let many = TrainConfig {
            epochs: 1_000_000_000_000,
            ..TrainConfig::default()
        };
        let a = training_bytes(&m, &few.validate().unwrap(), 10, 10).unwrap();
        let b = training_bytes(&m, &many.validate().unwrap(), 10, 10).unwrap();
        // 64 bytes per epoch record (six 8-byte fields and the 16-byte `Option<f64>` lr).
        assert_eq!(b - a, (1_000_000_000_000 - 1) * 64);
    }

    #[test]
    fn adam_counts_two_moments_per_parameter() {
        let m = model(vec![784, 500, 500, 10]);
        let sgd = TrainConfig::default();
        let adam = TrainConfig {
            optimizer: Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            ..TrainConfig::default()
        };
        let a = training_bytes(&m, &sgd.validate().unwrap(), 100, 100).unwrap();
        let b = training_bytes(&m, &adam.validate().unwrap(), 100, 100).unwrap();
        // Two f32 moments for each of the 648,010 parameters.
        assert_eq!(b - a, 2 * 648_010 * 4);
    }

    #[test]
    fn early_stopping_counts_one_copy_of_the_parameters() {
        let m = model(vec![784, 500, 500, 10]);
        let plain = TrainConfig::default();
        let early = TrainConfig {
            early_stopping: Some(crate::EarlyStopping::new(3)),
            ..TrainConfig::default()
        };
        let a = training_bytes(&m, &plain.validate().unwrap(), 100, 100).unwrap();
        let b = training_bytes(&m, &early.validate().unwrap(), 100, 100).unwrap();
        // The best epoch's 648,010 f32 parameters.
        assert_eq!(b - a, 648_010 * 4);
    }

    #[test]
    fn absurd_sizes_overflow_instead_of_wrapping() {
        let m = model(vec![4, 3, 2]);
        let t = TrainConfig {
            epochs: usize::MAX,
            ..TrainConfig::default()
        };
        assert!(matches!(
            training_bytes(&m, &t.validate().unwrap(), 10, 10),
            Err(Error::MemoryOverflow { .. })
        ));
        // A width of 2^40 passes the parameter count (about 2^50); its outputs for a
        // batch of 2^30 rows in f32 are 2^72 bytes.
        let wide = model(vec![784, 1 << 40, 10]);
        let t = TrainConfig {
            batch_size: 1 << 30,
            ..TrainConfig::default()
        };
        assert!(matches!(
            training_bytes(&wide, &t.validate().unwrap(), 1 << 30, 10),
            Err(Error::MemoryOverflow { .. })
        ));
    }

    #[test]
    fn evaluation_counts_the_model_and_a_chunk() {
        let m = model(vec![784, 500, 500, 10]);
        let bytes = evaluation_bytes(&m, Precision::F32, 10_000).unwrap();
        // Two copies of 648,010 f32 parameters and 10,000 rows of 1,010 outputs in f32.
        assert!(bytes >= 2 * 648_010 * 4 + 10_000 * 1_010 * 4, "{bytes}");
        assert!(bytes < 100_000_000, "{bytes}");
    }
}
