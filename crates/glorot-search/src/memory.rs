//! The memory a search run needs, estimated from its trials before the first one starts.

use glorot_mlp::Precision;

use crate::error::Result;
use crate::runner::{SearchData, trial_configs};
use crate::spec::Trial;

/// Upper bound of the bytes running `trials` on `data` with `workers` workers allocates
/// beyond the data itself: `min(workers, trials)` times the largest trial's training
/// buffers ([`glorot_mlp::memory::training_bytes`]), plus the `f64` copies of the data
/// when a trial computes in `f64`. Trials whose configuration the model refuses are not
/// counted (they fail without allocating and are recorded as failed).
///
/// # Errors
/// [`crate::Error::Model`] with [`glorot_mlp::Error::MemoryOverflow`] when a trial's
/// memory cannot be counted in 64 bits.
pub fn run_bytes(trials: &[Trial], data: &SearchData, workers: usize) -> Result<u64> {
    let overflow = || glorot_mlp::Error::MemoryOverflow {
        what: "this search".to_owned(),
    };
    let eval_rows = data.validation_len().max(data.test_len());
    let mut largest: u64 = 0;
    let mut f64_trials = false;
    for trial in trials {
        let (model, train) = trial_configs(trial, data.inputs(), data.classes());
        let (Ok(model), Ok(train)) = (model.validate(), train.validate()) else {
            continue;
        };
        let bytes =
            glorot_mlp::memory::training_bytes(&model, &train, data.train_len(), eval_rows)?;
        largest = largest.max(bytes);
        f64_trials |= train.precision() == Precision::F64;
    }
    let parallel = workers.clamp(1, trials.len().max(1)) as u64;
    let mut total = largest.checked_mul(parallel).ok_or_else(overflow)?;
    if f64_trials {
        let rows = |n: usize, cols: usize| (n as u64).checked_mul(cols as u64);
        let copies = [
            rows(data.train_len(), data.inputs() + data.classes()),
            rows(data.validation_len(), data.inputs()),
            rows(data.test_len(), data.inputs()),
        ]
        .into_iter()
        .try_fold(0u64, |acc, x| acc.checked_add(x?))
        .and_then(|elements| elements.checked_mul(8))
        .ok_or_else(overflow)?;
        total = total.checked_add(copies).ok_or_else(overflow)?;
    }
    Ok(total)
}
