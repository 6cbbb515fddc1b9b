//! Hyperparameters as plain serde structs, and their validated forms.
//!
//! [`ModelConfig`] and [`TrainConfig`] are what goes into results JSON and what a user
//! writes; [`ModelConfig::validate`] and [`TrainConfig::validate`] turn them into
//! [`ValidModelConfig`] and [`ValidTrainConfig`], the only forms the model and the trainer
//! accept (linfa's `ParamGuard` pattern). Every refusal names the field and the value.

use std::fmt;
use std::str::FromStr;

use glorot_tensor::{Activation, Float, Init};
use serde::{Deserialize, Serialize};

use crate::early_stopping::EarlyStopping;
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;

/// The output layer and its loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Head {
    /// The notebook's head: sigmoid (`scipy.special.expit`) on every output and the summed
    /// binary cross-entropy `sum_j -y_j ln(out_j + 1e-8) - (1 - y_j) ln(1 - out_j + 1e-8)`,
    /// averaged over the batch; computed from the sigmoid outputs exactly as the notebook
    /// does ([`glorot_tensor::loss::bce_notebook`]). Serialized as `"sigmoid_bce"`.
    SigmoidBce,
    /// Softmax over the outputs with the cross-entropy `-sum_j y_j ln softmax(z)_j`, computed
    /// from the logits with a stable log-sum-exp, averaged over the batch. Serialized as
    /// `"softmax_cross_entropy"`.
    SoftmaxCrossEntropy,
}

impl Head {
    /// The serialized name (`"sigmoid_bce"`, `"softmax_cross_entropy"`).
    pub fn name(self) -> &'static str {
        match self {
            Head::SigmoidBce => "sigmoid_bce",
            Head::SoftmaxCrossEntropy => "softmax_cross_entropy",
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Head {
    type Err = Error;

    /// Accepts the serialized names and the short forms `notebook`, `sigmoid`, `bce` and
    /// `softmax`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sigmoid_bce" | "notebook" | "sigmoid" | "bce" => Ok(Head::SigmoidBce),
            "softmax_cross_entropy" | "softmax" | "cross_entropy" => Ok(Head::SoftmaxCrossEntropy),
            _ => Err(Error::config(
                "head",
                s,
                "expected sigmoid_bce (the notebook's) or softmax_cross_entropy",
            )),
        }
    }
}

/// The element type training computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32` (single precision).
    F32,
    /// `f64` (double precision; the notebook's NumPy arrays).
    F64,
}

impl Precision {
    /// The precision of the element type `F`.
    pub fn of<F: Float>() -> Self {
        if F::NAME == <f32 as Float>::NAME {
            Precision::F32
        } else {
            Precision::F64
        }
    }

    /// `"f32"` or `"f64"`, as [`Float::NAME`].
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    /// `f32`/`single`/`float32` or `f64`/`double`/`float64`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "single" | "float32" => Ok(Precision::F32),
            "f64" | "double" | "float64" => Ok(Precision::F64),
            _ => Err(Error::config("precision", s, "expected f32 or f64")),
        }
    }
}

/// How the training set is ordered in each epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shuffle {
    /// A fresh seeded permutation every epoch (the default). The notebook meant to do this:
    /// it calls scikit-learn's `shuffle(...)` but discards the result, so it never shuffles.
    /// Serialized as `"every_epoch"`.
    EveryEpoch,
    /// The data's own order in every epoch: the notebook's actual behaviour (replay mode).
    /// Serialized as `"never"`.
    Never,
}

impl fmt::Display for Shuffle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shuffle::EveryEpoch => "every_epoch",
            Shuffle::Never => "never",
        })
    }
}

impl FromStr for Shuffle {
    type Err = Error;

    /// `every_epoch`/`every-epoch`/`epoch`/`yes` or `never`/`none`/`no`/`replay`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "every_epoch" | "every-epoch" | "epoch" | "yes" => Ok(Shuffle::EveryEpoch),
            "never" | "none" | "no" | "replay" => Ok(Shuffle::Never),
            _ => Err(Error::config("shuffle", s, "expected every_epoch or never")),
        }
    }
}

/// How the matrix products of training and evaluation are computed. Both give the same
/// math; they differ in the order of the sums, so in the last bits of every result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arithmetic {
    /// The fastest kernels with a fixed, documented summation order (the default): in
    /// `f32` on CPUs with AVX-512, the fused kernels of [`glorot_tensor::fused`]; in `f64`,
    /// the first layer's products from the nonzeros of its input
    /// ([`glorot_tensor::fused::product_sparse_f64`] and the sparse update), one fused
    /// multiply-add chain per element in input order, and BLAS for the other layers. The
    /// results do not depend on the thread count. Serialized as `"fast"`.
    #[default]
    Fast,
    /// Every product through BLAS ([`glorot_tensor::gemm`]) and the element-wise work as
    /// separate passes, as NumPy computes the notebook's code with the same BLAS: what the
    /// notebook replay uses. In `f32` BLAS's sums may depend on its thread count.
    /// Serialized as `"blas"`.
    Blas,
}

impl fmt::Display for Arithmetic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arithmetic::Fast => "fast",
            Arithmetic::Blas => "blas",
        })
    }
}

impl FromStr for Arithmetic {
    type Err = Error;

    /// `fast` or `blas`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fast" => Ok(Arithmetic::Fast),
            "blas" => Ok(Arithmetic::Blas),
            _ => Err(Error::config("arithmetic", s, "expected fast or blas")),
        }
    }
}

/// The architecture of a multilayer perceptron, as written in a config or results file.
///
/// `layers` lists every width from the inputs to the outputs: the notebook's network is
/// `[784, 500, 500, 10]`, three weight layers. Every hidden layer uses `activation`; the
/// last layer is the `head`. Weight matrices are `(fan_in, fan_out)` (the notebook's
/// `x @ w` layout) and filled by `init`; biases start at zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Widths from input to output, at least two entries, all positive.
    pub layers: Vec<usize>,
    /// The hidden layers' activation.
    pub activation: Activation,
    /// The output layer and loss.
    pub head: Head,
    /// How weight matrices are initialized (biases are always zero).
    pub init: Init,
}

impl ModelConfig {
    /// The notebook's Part 1 network: 784-500-500-10, tanh, sigmoid outputs with summed
    /// binary cross-entropy, Glorot uniform initialization.
    pub fn notebook() -> Self {
        Self {
            layers: vec![784, 500, 500, 10],
            activation: Activation::Tanh,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        }
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// Refused: fewer than two widths, a zero width, a parameter count that overflows
    /// `usize`, a softmax head with a single output, non-finite or negative initializer
    /// parameters.
    pub fn validate(&self) -> Result<ValidModelConfig> {
        if self.layers.len() < 2 {
            return Err(Error::config(
                "layers",
                format!("{:?}", self.layers),
                "need at least two widths (inputs and outputs)",
            ));
        }
        if let Some(i) = self.layers.iter().position(|&w| w == 0) {
            return Err(Error::config(
                format!("layers[{i}]"),
                0,
                "every width must be positive",
            ));
        }
        let mut total: usize = 0;
        for pair in self.layers.windows(2) {
            let count = pair[0]
                .checked_mul(pair[1])
                .and_then(|w| w.checked_add(pair[1]))
                .and_then(|c| total.checked_add(c));
            total = count.ok_or_else(|| {
                Error::config(
                    "layers",
                    format!("{:?}", self.layers),
                    "the parameter count overflows usize",
                )
            })?;
        }
        let outputs = self.layers[self.layers.len() - 1];
        if self.head == Head::SoftmaxCrossEntropy && outputs < 2 {
            return Err(Error::config(
                "layers",
                format!("{:?}", self.layers),
                "a softmax head needs at least two outputs",
            ));
        }
        match self.init {
            Init::Normal { mean, std } => {
                if !mean.is_finite() {
                    return Err(Error::config("init.mean", mean, "must be finite"));
                }
                if !(std.is_finite() && std >= 0.0) {
                    return Err(Error::config("init.std", std, "must be finite and >= 0"));
                }
            }
            Init::Orthogonal { gain } if !gain.is_finite() => {
                return Err(Error::config("init.gain", gain, "must be finite"));
            }
            _ => {}
        }
        Ok(ValidModelConfig {
            config: self.clone(),
            parameters: total,
        })
    }
}

/// A [`ModelConfig`] that passed [`ModelConfig::validate`]. Serializes as the plain config.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(into = "ModelConfig")]
pub struct ValidModelConfig {
    config: ModelConfig,
    parameters: usize,
}

impl From<ValidModelConfig> for ModelConfig {
    fn from(v: ValidModelConfig) -> Self {
        v.config
    }
}

impl ValidModelConfig {
    /// The plain config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }
    /// Widths from input to output.
    pub fn layers(&self) -> &[usize] {
        &self.config.layers
    }
    /// Input width (`layers[0]`).
    pub fn inputs(&self) -> usize {
        self.config.layers[0]
    }
    /// Output width (the last entry of `layers`).
    pub fn outputs(&self) -> usize {
        self.config.layers[self.config.layers.len() - 1]
    }
    /// Number of weight layers (`layers.len() - 1`).
    pub fn depth(&self) -> usize {
        self.config.layers.len() - 1
    }
    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.config.activation
    }
    /// The output head.
    pub fn head(&self) -> Head {
        self.config.head
    }
    /// The weight initializer.
    pub fn init(&self) -> Init {
        self.config.init
    }
    /// `sum over layers of fan_in * fan_out + fan_out`: see [`crate::Mlp::num_parameters`].
    pub fn num_parameters(&self) -> usize {
        self.parameters
    }
}

/// How to train, as written in a config or results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub epochs: usize,
    /// Rows per minibatch (at least 1). The last batch keeps the remainder and is averaged
    /// over its own size, as in the notebook.
    pub batch_size: usize,
    /// SGD step size (finite, > 0).
    pub learning_rate: f64,
    /// Seeds weight initialization and shuffling, through independent streams: see
    /// [`crate::init_rng`] and [`crate::shuffle_rng`]. Written as a decimal string,
    /// read from a string or a number ([`crate::seed_text`]).
    #[serde(with = "crate::seed_text")]
    pub seed: u64,
    /// Order of the training set in each epoch.
    pub shuffle: Shuffle,
    /// Element type of the computation.
    pub precision: Precision,
    /// How the products are computed (default [`Arithmetic::Fast`]; absent in files
    /// written before it existed, which were computed as `fast` is now in `f32` and as
    /// `blas` in `f64`).
    #[serde(default)]
    pub arithmetic: Arithmetic,
    /// How parameters are updated (default: plain SGD, the notebook's). Left out of the
    /// serialized form when it is the default, so that default configs serialize, and key
    /// caches, exactly as before optimizers existed.
    #[serde(default, skip_serializing_if = "Optimizer::is_default")]
    pub optimizer: Optimizer,
    /// How the learning rate changes per epoch (default: constant). Left out of the
    /// serialized form when it is the default.
    #[serde(default, skip_serializing_if = "LrSchedule::is_default")]
    pub lr_schedule: LrSchedule,
    /// Epochs of linear warm-up before the schedule (default 0, left out of the serialized
    /// form then; see [`crate::schedule`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_epochs: usize,
    /// Stop when validation stops improving and keep the best epoch's weights (default
    /// `None`: every epoch runs and the last epoch's weights are kept; left out of the
    /// serialized form then; see [`crate::early_stopping`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for TrainConfig {
    /// The notebook's hyperparameters (10 epochs, batch 32, learning rate 0.01) with the
    /// shuffling the notebook intended, in `f32`, seed 0.
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            learning_rate: 0.01,
            seed: 0,
            shuffle: Shuffle::EveryEpoch,
            precision: Precision::F32,
            arithmetic: Arithmetic::Fast,
            optimizer: Optimizer::default(),
            lr_schedule: LrSchedule::Constant,
            warmup_epochs: 0,
            early_stopping: None,
        }
    }
}

impl TrainConfig {
    /// The notebook's run exactly: 10 epochs, batch 32, learning rate 0.01, no shuffling,
    /// `f64`, products through BLAS (the seed only matters for seeded initialization; the notebook's own draws come
    /// from [`glorot_tensor::numpy_rng::RandomState`] with its seed 5).
    pub fn notebook() -> Self {
        Self {
            shuffle: Shuffle::Never,
            precision: Precision::F64,
            arithmetic: Arithmetic::Blas,
            seed: 5,
            ..Self::default()
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<ValidTrainConfig> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", 0, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", 0, "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(
                "learning_rate",
                self.learning_rate,
                "must be finite and > 0",
            ));
        }
        self.optimizer.validate()?;
        self.lr_schedule.validate(self.learning_rate)?;
        if self.warmup_epochs >= self.epochs {
            return Err(Error::config(
                "warmup_epochs",
                self.warmup_epochs,
                "must be less than the number of epochs",
            ));
        }
        if let Some(rule) = &self.early_stopping {
            rule.validate()?;
        }
        Ok(ValidTrainConfig(self.clone()))
    }
}

/// A [`TrainConfig`] that passed [`TrainConfig::validate`]. Serializes as the plain config.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(into = "TrainConfig")]
pub struct ValidTrainConfig(TrainConfig);

impl From<ValidTrainConfig> for TrainConfig {
    fn from(v: ValidTrainConfig) -> Self {
        v.0
    }
}

impl ValidTrainConfig {
    /// The plain config.
    pub fn config(&self) -> &TrainConfig {
        &self.0
    }
    /// Passes over the training set.
    pub fn epochs(&self) -> usize {
        self.0.epochs
    }
    /// Rows per minibatch.
    pub fn batch_size(&self) -> usize {
        self.0.batch_size
    }
    /// SGD step size.
    pub fn learning_rate(&self) -> f64 {
        self.0.learning_rate
    }
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.0.seed
    }
    /// Shuffle mode.
    pub fn shuffle(&self) -> Shuffle {
        self.0.shuffle
    }
    /// Element type.
    pub fn precision(&self) -> Precision {
        self.0.precision
    }
    /// How the products are computed.
    pub fn arithmetic(&self) -> Arithmetic {
        self.0.arithmetic
    }
    /// How parameters are updated.
    pub fn optimizer(&self) -> Optimizer {
        self.0.optimizer
    }
    /// How the learning rate changes per epoch.
    pub fn lr_schedule(&self) -> LrSchedule {
        self.0.lr_schedule
    }
    /// Epochs of linear warm-up.
    pub fn warmup_epochs(&self) -> usize {
        self.0.warmup_epochs
    }
    /// Early stopping, if configured.
    pub fn early_stopping(&self) -> Option<EarlyStopping> {
        self.0.early_stopping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_model_err(layers: &[usize], head: Head, init: Init, field: &str) {
        let cfg = ModelConfig {
            layers: layers.to_vec(),
            activation: Activation::Relu,
            head,
            init,
        };
        match cfg.validate() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected an InvalidConfig error on {field}, got {other:?}"),
        }
    }

    #[test]
    fn model_config_refusals_name_the_field() {
        let g = Init::GlorotUniform;
        check_model_err(&[784], Head::SigmoidBce, g, "layers");
        check_model_err(&[], Head::SigmoidBce, g, "layers");
        check_model_err(&[784, 0, 10], Head::SigmoidBce, g, "layers[1]");
        check_model_err(&[784, 1], Head::SoftmaxCrossEntropy, g, "layers");
        check_model_err(&[usize::MAX, 2], Head::SigmoidBce, g, "layers");
        let bad_std = Init::Normal {
            mean: 0.0,
            std: -1.0,
        };
        check_model_err(&[3, 2], Head::SigmoidBce, bad_std, "init.std");
        let bad_mean = Init::Normal {
            mean: f64::NAN,
            std: 1.0,
        };
        check_model_err(&[3, 2], Head::SigmoidBce, bad_mean, "init.mean");
        let bad_gain = Init::Orthogonal {
            gain: f64::INFINITY,
        };
        check_model_err(&[3, 2], Head::SigmoidBce, bad_gain, "init.gain");
    }

    #[test]
    fn notebook_parameter_count_is_648010() {
        // 784*500 + 500 + 500*500 + 500 + 500*10 + 10 = 648,010 (hand calculation); the
        // notebook printed 0.648784 million, see `Mlp::num_parameters`.
        let v = ModelConfig::notebook().validate().unwrap();
        assert_eq!(v.num_parameters(), 648_010);
        assert_eq!(v.inputs(), 784);
        assert_eq!(v.outputs(), 10);
        assert_eq!(v.depth(), 3);
    }

    #[test]
    fn train_config_refusals_name_the_field() {
        let ok = TrainConfig::default();
        assert!(ok.validate().is_ok());
        let cases: [(TrainConfig, &str); 5] = [
            (
                TrainConfig {
                    epochs: 0,
                    ..ok.clone()
                },
                "epochs",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..ok.clone()
                },
                "batch_size",
            ),
            (
                TrainConfig {
                    learning_rate: 0.0,
                    ..ok.clone()
                },
                "learning_rate",
            ),
            (
                TrainConfig {
                    learning_rate: -0.1,
                    ..ok.clone()
                },
                "learning_rate",
            ),
            (
                TrainConfig {
                    learning_rate: f64::NAN,
                    ..ok.clone()
                },
                "learning_rate",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.validate() {
                Err(Error::InvalidConfig {
                    field: f, value, ..
                }) => {
                    assert_eq!(f, field);
                    assert!(!value.is_empty());
                }
                other => panic!("expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn optimizer_schedule_and_warmup_refusals_name_the_field() {
        let ok = TrainConfig::default();
        let cases = [
            (
                TrainConfig {
                    optimizer: Optimizer::Momentum {
                        momentum: 1.0,
                        weight_decay: 0.0,
                    },
                    ..ok.clone()
                },
                "optimizer.momentum",
            ),
            (
                TrainConfig {
                    lr_schedule: LrSchedule::Cosine { min_lr: 1.0 },
                    ..ok.clone()
                },
                "lr_schedule.min_lr",
            ),
            (
                TrainConfig {
                    warmup_epochs: 10,
                    ..ok.clone()
                },
                "warmup_epochs",
            ),
        ];
        for (cfg, field) in cases {
            match cfg.validate() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("expected an error on {field}, got {other:?}"),
            }
        }
    }

    /// The default optimizer, schedule and warm-up are left out of the serialized form:
    /// default configs serialize exactly as before they existed (Part 1's cache keys and
    /// every results file depend on it), and such files still read.
    #[test]
    fn defaults_serialize_as_before_optimizers_existed() {
        // The serialized default config at main 0758d1e, before these fields existed.
        let before = r#"{"epochs":10,"batch_size":32,"learning_rate":0.01,"seed":"0","shuffle":"every_epoch","precision":"f32","arithmetic":"fast"}"#;
        assert_eq!(
            serde_json::to_string(&TrainConfig::default()).unwrap(),
            before
        );
        let read: TrainConfig = serde_json::from_str(before).unwrap();
        assert_eq!(read, TrainConfig::default());
        let adam = TrainConfig {
            optimizer: Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            lr_schedule: LrSchedule::Step {
                every: 3,
                gamma: 0.5,
            },
            warmup_epochs: 2,
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&adam).unwrap();
        assert!(
            json.ends_with(
                r#""arithmetic":"fast","optimizer":{"kind":"adam","beta1":0.9,"beta2":0.999,"eps":1e-8,"weight_decay":0.0},"lr_schedule":{"kind":"step","every":3,"gamma":0.5},"warmup_epochs":2}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), adam);
    }

    /// Early stopping is left out of the serialized form when absent (the default config
    /// above serializes as before), written as a table when set, and checked.
    #[test]
    fn early_stopping_serializes_only_when_set_and_is_checked() {
        let with = TrainConfig {
            early_stopping: Some(EarlyStopping {
                patience: 3,
                monitor: crate::Monitor::Loss,
            }),
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(
            json.ends_with(
                r#""arithmetic":"fast","early_stopping":{"patience":3,"monitor":"loss"}}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), with);
        assert_eq!(
            with.validate().unwrap().early_stopping(),
            with.early_stopping
        );
        let zero = TrainConfig {
            early_stopping: Some(EarlyStopping::new(0)),
            ..TrainConfig::default()
        };
        match zero.validate() {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "early_stopping.patience"),
            other => panic!("expected an error on the patience, got {other:?}"),
        }
    }

    #[test]
    fn configs_round_trip_through_json_with_stable_names() {
        let m = ModelConfig::notebook();
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"head\":\"sigmoid_bce\""), "{json}");
        assert!(json.contains("\"activation\":\"tanh\""), "{json}");
        let back: ModelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        // The validated form serializes as the plain one.
        let valid = serde_json::to_string(&m.validate().unwrap()).unwrap();
        assert_eq!(valid, json);

        let t = TrainConfig::notebook();
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"shuffle\":\"never\""), "{json}");
        assert!(json.contains("\"precision\":\"f64\""), "{json}");
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn names_parse() {
        assert_eq!("notebook".parse::<Head>().unwrap(), Head::SigmoidBce);
        assert_eq!(
            "Softmax".parse::<Head>().unwrap(),
            Head::SoftmaxCrossEntropy
        );
        assert_eq!("F64".parse::<Precision>().unwrap(), Precision::F64);
        assert_eq!("replay".parse::<Shuffle>().unwrap(), Shuffle::Never);
        assert!("sideways".parse::<Shuffle>().is_err());
        assert_eq!(Precision::of::<f32>(), Precision::F32);
        assert_eq!(Precision::of::<f64>(), Precision::F64);
    }
}
