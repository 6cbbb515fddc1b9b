//! Checkpoints: a run stopped after some epochs and continued later, bit for bit (see
//! [`Checkpoint`]).

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::SafeTensors;

use super::{Observer, Status, TrainReport, Trainer};
use crate::config::{Precision, TrainConfig, ValidTrainConfig};
use crate::data::FitData;
use crate::error::{Error, Result};
use crate::io::{Bytes, dtype_of, from_bytes, to_bytes, write_safetensors};
use crate::model::{Mlp, MlpFloat};
use crate::optim::OptimizerState;
use crate::param::ParamId;
use crate::schedule::LrSchedule;
use crate::{BatchEvent, EpochMetrics, ModelConfig};

/// The `format` metadata value of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "glorot-checkpoint";
/// The `format_version` of checkpoint files this crate writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: &str = "1";

/// A run's state after some epochs, to continue it later bit for bit.
///
/// A [`Checkpoint`] holds everything [`Trainer::fit`] carries from one epoch to the
/// next: the parameters, the shuffle generator's exact position (ChaCha seed, stream
/// and word position), the optimizer's state (step count, momentum or moments), and
/// the number of finished epochs. [`continue_training`] resumes it: with a constant
/// learning rate and no warm-up, training `a` epochs, saving, loading and training to
/// `b` epochs in total gives the same parameters and the same curve as training `b`
/// epochs at once, bit for bit. A schedule that depends on the epoch number or the
/// total budget (step, cosine, plateau, warm-up) cannot be continued so, and is refused
/// ([`Error::InvalidConfig`] on `lr_schedule` or `warmup_epochs`).
///
/// [`Checkpoint::save`] writes one safetensors file (atomically, as weights files):
/// the parameters `w0, b0, ...` as [`crate::io`] writes them, the optimizer's buffers
/// as `first.<param>` and `second.<param>` (flat), and in `__metadata__`:
///
/// | key | value |
/// | --- | --- |
/// | `format` | `glorot-checkpoint` |
/// | `format_version` | `1` |
/// | `dtype` | `f32` or `f64` |
/// | `config` | the [`ModelConfig`](crate::ModelConfig) as JSON |
/// | `train` | the [`TrainConfig`] as JSON, `epochs` = the finished epochs |
/// | `epoch` | finished epochs (decimal) |
/// | `shuffle_seed` | the shuffle generator's 32-byte ChaCha key, hex |
/// | `shuffle_stream` | its stream (decimal) |
/// | `shuffle_word_pos` | its word position (decimal, up to 2^68) |
/// | `optimizer_steps` | the optimizer's step count (decimal) |
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint<F: MlpFloat> {
    model: Mlp<F>,
    train: TrainConfig,
    epoch: usize,
    shuffle: ChaCha8Rng,
    optimizer: OptimizerState<F>,
}

impl<F: MlpFloat> Trainer<F> {
    /// The trainer's state after `epochs_done` finished epochs (the caller counts them:
    /// [`Trainer::fit`] numbers every call's epochs from 1).
    pub fn checkpoint(&self, epochs_done: usize) -> Checkpoint<F> {
        Checkpoint {
            model: self.model.clone(),
            train: TrainConfig {
                epochs: epochs_done,
                ..self.config.config().clone()
            },
            epoch: epochs_done,
            shuffle: self.shuffle_rng.clone(),
            optimizer: self.optimizer.clone(),
        }
    }
}

impl<F: MlpFloat> Checkpoint<F> {
    /// Finished epochs.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The parameters.
    pub fn model(&self) -> &Mlp<F> {
        &self.model
    }

    /// The training config of the run, with `epochs` = the finished epochs.
    pub fn train_config(&self) -> &TrainConfig {
        &self.train
    }

    /// Writes the checkpoint to `path` atomically (see [`Checkpoint`]).
    ///
    /// # Errors
    /// [`Error::Safetensors`] or [`Error::Io`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let ids: Vec<ParamId> = ParamId::all(self.model.depth()).collect();
        let mut tensors: Vec<(String, Bytes)> = Vec::new();
        for &id in &ids {
            tensors.push((
                id.to_string(),
                Bytes {
                    dtype: dtype_of::<F>(),
                    shape: self.model.param_shape(id).expect("own parameter"),
                    data: to_bytes(self.model.param(id).expect("own parameter")),
                },
            ));
        }
        let (steps, first, second) = self.optimizer.parts();
        for (prefix, buffers) in [("first", first), ("second", second)] {
            for (id, values) in ids.iter().zip(buffers) {
                tensors.push((
                    format!("{prefix}.{id}"),
                    Bytes {
                        dtype: dtype_of::<F>(),
                        shape: vec![values.len()],
                        data: to_bytes(values),
                    },
                ));
            }
        }
        let seed: String = self
            .shuffle
            .get_seed()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let metadata = HashMap::from([
            ("format".to_owned(), CHECKPOINT_FORMAT.to_owned()),
            (
                "format_version".to_owned(),
                CHECKPOINT_FORMAT_VERSION.to_owned(),
            ),
            ("dtype".to_owned(), F::NAME.to_owned()),
            ("config".to_owned(), json(self.model.config().config())),
            ("train".to_owned(), json(&self.train)),
            ("epoch".to_owned(), self.epoch.to_string()),
            ("shuffle_seed".to_owned(), seed),
            (
                "shuffle_stream".to_owned(),
                self.shuffle.get_stream().to_string(),
            ),
            (
                "shuffle_word_pos".to_owned(),
                self.shuffle.get_word_pos().to_string(),
            ),
            ("optimizer_steps".to_owned(), steps.to_string()),
        ]);
        write_safetensors(path, &tensors, metadata)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::Safetensors`] when it is not
    /// safetensors, [`Error::WeightsMismatch`] when it is not a glorot checkpoint of dtype
    /// `F` with consistent tensors and state.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |detail: String| Error::WeightsMismatch {
            path: path.to_path_buf(),
            detail,
        };
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|source| Error::Safetensors {
                path: path.to_path_buf(),
                source,
            })?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            meta.get(key)
                .map(String::as_str)
                .ok_or_else(|| bad(format!("the header has no `{key}`")))
        };
        if get("format")? != CHECKPOINT_FORMAT {
            return Err(bad(format!("format is not {CHECKPOINT_FORMAT}")));
        }
        if get("format_version")? != CHECKPOINT_FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {} (this glorot reads {CHECKPOINT_FORMAT_VERSION})",
                get("format_version")?
            )));
        }
        if get("dtype")? != F::NAME {
            return Err(bad(format!(
                "the checkpoint is {} but the model computes in {}",
                get("dtype")?,
                F::NAME
            )));
        }
        let number = |key: &str| -> Result<u128> {
            get(key)?
                .parse::<u128>()
                .map_err(|_| bad(format!("`{key}` is not a number")))
        };
        let model_config: ModelConfig =
            serde_json::from_str(get("config")?).map_err(|e| bad(format!("`config`: {e}")))?;
        let config = model_config
            .validate()
            .map_err(|e| bad(format!("the stored config is invalid: {e}")))?;
        let train: TrainConfig =
            serde_json::from_str(get("train")?).map_err(|e| bad(format!("`train`: {e}")))?;
        if train.precision != Precision::of::<F>() {
            return Err(bad("`train` has another precision".to_owned()));
        }
        let epoch = usize::try_from(number("epoch")?).map_err(|_| bad("epoch".to_owned()))?;
        let tensor = |name: &str, shape: &[usize]| -> Result<Vec<F>> {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(format!("tensor {name} is missing")))?;
            if t.dtype() != dtype_of::<F>() || t.shape() != shape {
                return Err(bad(format!(
                    "tensor {name} is {:?} {:?}, expected {:?} {shape:?}",
                    t.dtype(),
                    t.shape(),
                    dtype_of::<F>()
                )));
            }
            Ok(from_bytes(t.data()))
        };
        let depth = config.depth();
        let mut weights = Vec::with_capacity(depth);
        let mut biases = Vec::with_capacity(depth);
        for (l, pair) in config.layers().windows(2).enumerate() {
            let w = tensor(&ParamId::weight(l).to_string(), &[pair[0], pair[1]])?;
            let b = tensor(&ParamId::bias(l).to_string(), &[pair[1]])?;
            weights.push(Array2::from_shape_vec((pair[0], pair[1]), w).expect("shape checked"));
            biases.push(Array1::from_vec(b));
        }
        let model = Mlp::from_parameters(config, weights, biases)?;
        let buffers = |prefix: &str| -> Result<Vec<Vec<F>>> {
            let mut out = Vec::new();
            for id in ParamId::all(depth) {
                let name = format!("{prefix}.{id}");
                if tensors.tensor(&name).is_err() {
                    break;
                }
                let len = model.param(id)?.len();
                out.push(tensor(&name, &[len])?);
            }
            Ok(out)
        };
        let steps = u64::try_from(number("optimizer_steps")?)
            .map_err(|_| bad("`optimizer_steps` is out of range".to_owned()))?;
        let optimizer = OptimizerState::from_parts(
            train.optimizer,
            &model,
            steps,
            buffers("first")?,
            buffers("second")?,
        )?
        .ok_or_else(|| bad("the optimizer buffers do not fit the model".to_owned()))?;
        let seed_hex = get("shuffle_seed")?;
        let mut seed = [0u8; 32];
        if seed_hex.len() != 64 || !seed_hex.is_ascii() {
            return Err(bad("`shuffle_seed` is not 64 hex digits".to_owned()));
        }
        for (i, byte) in seed.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&seed_hex[2 * i..2 * i + 2], 16)
                .map_err(|_| bad("`shuffle_seed` is not 64 hex digits".to_owned()))?;
        }
        let stream = u64::try_from(number("shuffle_stream")?)
            .map_err(|_| bad("`shuffle_stream` is out of range".to_owned()))?;
        let mut shuffle = ChaCha8Rng::from_seed(seed);
        shuffle.set_stream(stream);
        shuffle.set_word_pos(number("shuffle_word_pos")?);
        Ok(Self {
            model,
            train,
            epoch,
            shuffle,
            optimizer,
        })
    }
}

/// A config as compact JSON (configs always serialise).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("configs always serialise")
}

/// Continues the run saved in `checkpoint` until `config.epochs()` epochs in total:
/// the report lists the new epochs only, numbered on from the checkpoint's (epoch
/// `checkpoint.epoch() + 1` first), and the observer sees them numbered so. The
/// returned trainer holds the final state ([`Trainer::checkpoint`] saves it again).
///
/// With the same data, the result equals [`crate::train`] for `config.epochs()` epochs
/// from scratch, bit for bit.
///
/// # Errors
/// [`Error::InvalidConfig`] when `config` has a learning-rate schedule or warm-up (they
/// depend on the epoch number or the total budget, see [`Checkpoint`]), differs
/// from the checkpoint's config in anything but `epochs`, or has no more epochs than the
/// checkpoint; otherwise as [`Trainer::fit`].
pub fn continue_training<F: MlpFloat>(
    checkpoint: Checkpoint<F>,
    config: &ValidTrainConfig,
    data: &FitData<'_, F>,
    observer: &mut dyn Observer,
) -> Result<(Trainer<F>, TrainReport)> {
    let total = config.epochs();
    let c = config.config();
    if c.lr_schedule != LrSchedule::Constant {
        return Err(Error::config(
            "lr_schedule",
            c.lr_schedule,
            "a schedule depends on the epoch number or the total budget: a run with one \
             cannot be continued from a checkpoint bit for bit",
        ));
    }
    if c.warmup_epochs != 0 {
        return Err(Error::config(
            "warmup_epochs",
            c.warmup_epochs,
            "a warm-up depends on the epoch number: a run with one cannot be continued \
             from a checkpoint bit for bit",
        ));
    }
    let done = checkpoint.epoch;
    let same = TrainConfig {
        epochs: done,
        ..c.clone()
    };
    if serde_json::to_value(&same).ok() != serde_json::to_value(&checkpoint.train).ok() {
        return Err(Error::config(
            "train",
            serde_json::to_string(c).unwrap_or_default(),
            "differs from the checkpoint's training config in more than the epochs",
        ));
    }
    if total <= done {
        return Err(Error::config(
            "epochs",
            total,
            "must be more than the checkpoint's finished epochs",
        ));
    }
    let rest = TrainConfig {
        epochs: total - done,
        ..c.clone()
    }
    .validate()?;
    let mut trainer = Trainer::new(checkpoint.model, rest)?;
    trainer.shuffle_rng = checkpoint.shuffle;
    trainer.optimizer = checkpoint.optimizer;
    let mut offset = Offset {
        inner: observer,
        by: done,
    };
    let mut report = trainer.fit(data, &mut offset)?;
    for e in &mut report.epochs {
        e.epoch += done;
    }
    report.status = match report.status {
        Status::Diverged { epoch, batch } => Status::Diverged {
            epoch: epoch + done,
            batch,
        },
        Status::Cancelled { epoch } => Status::Cancelled {
            epoch: epoch + done,
        },
        other => other,
    };
    Ok((trainer, report))
}

/// Numbers a continued run's epochs on from the checkpoint's.
struct Offset<'a> {
    inner: &'a mut dyn Observer,
    by: usize,
}

impl Observer for Offset<'_> {
    fn on_epoch_start(&mut self, epoch: usize, batches: usize) {
        self.inner.on_epoch_start(epoch + self.by, batches);
    }
    fn on_batch(&mut self, event: &BatchEvent) {
        self.inner.on_batch(&BatchEvent {
            epoch: event.epoch + self.by,
            ..*event
        });
    }
    fn on_epoch_end(&mut self, metrics: &EpochMetrics) {
        self.inner.on_epoch_end(&EpochMetrics {
            epoch: metrics.epoch + self.by,
            ..*metrics
        });
    }
    fn should_stop(&self) -> bool {
        self.inner.should_stop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Arithmetic, Head, Shuffle};
    use crate::data::{EvalData, TrainData};
    use crate::init::WeightSource;
    use crate::optim::Optimizer;
    use crate::{NoopObserver, train};
    use glorot_tensor::{Activation, Init, one_hot};

    /// Three noisy classes on 4 inputs, deterministic (as `train`'s tests).
    fn blobs(n: usize) -> (Array2<f64>, Vec<u8>) {
        let mut x = Array2::zeros((n, 4));
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % 3;
            labels.push(c as u8);
            for j in 0..4 {
                let noise = ((i * 7 + j * 13) as f64).sin() * 0.6;
                x[[i, j]] = if j % 3 == c { 1.0 } else { -0.5 } + noise;
            }
        }
        (x, labels)
    }

    fn configs(optimizer: Optimizer, precision: Precision, epochs: usize) -> ValidTrainConfig {
        TrainConfig {
            epochs,
            batch_size: 7,
            learning_rate: 0.2,
            seed: 3,
            shuffle: Shuffle::EveryEpoch,
            precision,
            arithmetic: Arithmetic::Fast,
            optimizer,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap()
    }

    /// Training 5 epochs at once equals 2 epochs, a checkpoint written to disk and read
    /// back, then 3 more: same parameters, same curve bit for bit (wall times aside).
    fn continued_equals_whole<F: MlpFloat>(optimizer: Optimizer) {
        let (x, labels) = blobs(45);
        let x = x.mapv(F::from_f64);
        let y = one_hot::<F>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let model = crate::ModelConfig {
            layers: vec![4, 6, 3],
            activation: Activation::Tanh,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let precision = Precision::of::<F>();
        let (whole, whole_report) = train::<F>(
            &model,
            &configs(optimizer, precision, 5),
            &data,
            &mut NoopObserver,
        )
        .unwrap();

        let first = configs(optimizer, precision, 2);
        let mlp = Mlp::new(model.clone(), WeightSource::Seed(first.seed())).unwrap();
        let mut trainer = Trainer::new(mlp, first).unwrap();
        let head = trainer.fit(&data, &mut NoopObserver).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        trainer.checkpoint(2).save(&path).unwrap();
        let loaded = Checkpoint::<F>::load(&path).unwrap();
        assert_eq!(
            loaded,
            trainer.checkpoint(2),
            "the file round-trips exactly"
        );
        let mut epochs = Vec::new();
        struct Seen<'a>(&'a mut Vec<usize>);
        impl Observer for Seen<'_> {
            fn on_epoch_end(&mut self, m: &EpochMetrics) {
                self.0.push(m.epoch);
            }
        }
        let (continued, tail) = continue_training(
            loaded,
            &configs(optimizer, precision, 5),
            &data,
            &mut Seen(&mut epochs),
        )
        .unwrap();
        assert_eq!(epochs, [3, 4, 5]);
        assert_eq!(continued.model(), &whole);
        let joined: Vec<_> = head.epochs.iter().chain(&tail.epochs).collect();
        assert_eq!(joined.len(), whole_report.epochs.len());
        for (a, b) in joined.iter().zip(&whole_report.epochs) {
            assert_eq!(a.epoch, b.epoch);
            assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
            assert_eq!(a.val_loss.to_bits(), b.val_loss.to_bits());
            assert_eq!(a.val_accuracy.to_bits(), b.val_accuracy.to_bits());
            assert_eq!(a.lr, b.lr);
        }
    }

    #[test]
    fn a_continued_run_equals_the_whole_run_bit_for_bit() {
        continued_equals_whole::<f32>(Optimizer::default());
        continued_equals_whole::<f64>(Optimizer::default());
        // Adam's moments and step count (bias correction) travel in the checkpoint.
        let adam = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        continued_equals_whole::<f32>(adam);
        continued_equals_whole::<f64>(adam);
    }

    #[test]
    fn schedules_and_other_configs_are_refused() {
        let (x, labels) = blobs(20);
        let y = one_hot::<f64>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let model = crate::ModelConfig {
            layers: vec![4, 5, 3],
            activation: Activation::Relu,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let base = configs(Optimizer::default(), Precision::F64, 1);
        let mlp = Mlp::new(model, WeightSource::Seed(3)).unwrap();
        let mut trainer = Trainer::new(mlp, base.clone()).unwrap();
        trainer.fit(&data, &mut NoopObserver).unwrap();
        let saved = trainer.checkpoint(1);
        let with = |edit: fn(&mut TrainConfig)| {
            let mut c = base.config().clone();
            c.epochs = 3;
            edit(&mut c);
            c.validate().unwrap()
        };
        let field = |c: ValidTrainConfig| match continue_training(
            saved.clone(),
            &c,
            &data,
            &mut NoopObserver,
        ) {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected a refusal, got {:?}", other.map(|r| r.1)),
        };
        let cosine = with(|c| c.lr_schedule = LrSchedule::Cosine { min_lr: 0.0 });
        assert_eq!(field(cosine), "lr_schedule");
        assert_eq!(field(with(|c| c.warmup_epochs = 1)), "warmup_epochs");
        assert_eq!(field(with(|c| c.learning_rate = 0.1)), "train");
        assert_eq!(field(with(|c| c.epochs = 1)), "epochs");
        assert!(continue_training(saved, &with(|_| ()), &data, &mut NoopObserver).is_ok());
    }

    #[test]
    fn damaged_checkpoints_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        std::fs::write(&path, b"not a checkpoint").unwrap();
        assert!(Checkpoint::<f32>::load(&path).is_err());
        let model = crate::ModelConfig {
            layers: vec![2, 2],
            activation: Activation::Relu,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let mlp = Mlp::<f32>::new(model.clone(), WeightSource::Seed(1)).unwrap();
        // A weights file is not a checkpoint.
        mlp.save(&path).unwrap();
        let err = Checkpoint::<f32>::load(&path).unwrap_err().to_string();
        assert!(err.contains("glorot-checkpoint"), "{err}");
        let trainer = Trainer::new(mlp, configs(Optimizer::default(), Precision::F32, 1)).unwrap();
        trainer.checkpoint(1).save(&path).unwrap();
        assert!(matches!(
            Checkpoint::<f64>::load(&path),
            Err(Error::WeightsMismatch { .. })
        ));
    }
}
