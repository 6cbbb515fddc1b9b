//! Grid specifications: axes, presets, files, validation, and the trials they expand to.

use std::{collections::HashSet, fmt::Display, path::Path};

use glorot_mlp::{Activation, Init};
use glorot_mlp::{EarlyStopping, LrSchedule, Monitor, Optimizer};
use glorot_mlp::{Precision, Shuffle};
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    trial::{TrialConfig, TrialId},
};

/// Names accepted by [`GridSpec::preset`].
pub const PRESETS: &[&str] = &["notebook", "quick", "tiny"];

/// A grid declared by its axes. Every combination is one trial.
///
/// Serialised as JSON or TOML with these field names; optional axes default to the
/// notebook's choices (Glorot uniform, 10 epochs, f32, one repeat with seed 0, plain SGD
/// at a constant rate without warm-up, weight decay or early stopping). The optional
/// training axes are left out of the serialized form when they hold only their default,
/// so grids without them are stored as before they existed.
///
/// ```toml
/// hidden = [64, 128]
/// activation = ["relu", "tanh"]
/// learning_rate = [0.1]
/// batch_size = [32, 64]
/// epochs = [2]
/// master_seed = 7
/// # Optional training axes:
/// optimizer = ["sgd", "nesterov:0.9", "adamw"]
/// weight_decay = [0.0, 5e-4]
/// lr_schedule = ["constant", "cosine"]
/// warmup_epochs = [0, 1]
/// early_stopping = [0, 3]   # patience; 0 = off
/// early_stopping_on = "accuracy"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// Width of each hidden layer (every hidden layer has this width).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Vec<Activation>,
    /// SGD learning rate.
    pub learning_rate: Vec<f64>,
    /// Minibatch size.
    pub batch_size: Vec<usize>,
    /// Weight initializer. Read from a file either as the results files write it
    /// (`{"kind": "normal", "mean": 0.0, "std": 1.0}`) or as a name as the command line
    /// takes it (`"glorot_uniform"`, `"normal:0:1"`, see [`glorot_mlp::parse_init`]).
    #[serde(default = "default_init", deserialize_with = "inits")]
    pub init: Vec<Init>,
    /// Number of epochs.
    #[serde(default = "default_epochs")]
    pub epochs: Vec<usize>,
    /// Arithmetic precision.
    #[serde(default = "default_precision")]
    pub precision: Vec<Precision>,
    /// Repeat indices: each runs the same configuration with a different derived seed.
    #[serde(default = "default_repeats")]
    pub repeats: Vec<u64>,
    /// Number of hidden layers (the notebook's network has two).
    #[serde(default = "default_hidden_layers")]
    pub hidden_layers: usize,
    /// Master seed from which every trial's seed derives (with the trial's id).
    /// Written as a decimal string; read from a string or an integer
    /// ([`glorot_mlp::seed_text`]).
    #[serde(default, with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// Data order: shuffled every epoch (default) or the notebook's fixed order.
    #[serde(default = "default_shuffle")]
    pub shuffle: Shuffle,
    /// Optimizer with its hyperparameters. Read either as the results files write it
    /// (`{"kind": "nesterov", "momentum": 0.9}`) or in the text form of
    /// `glorot search run --optimizer` (`"sgd"`, `"momentum:0.9"`, `"nesterov"`,
    /// `"adam:0.9:0.999"`, `"adamw"`; see [`Optimizer`]'s `FromStr`). Default: plain SGD.
    #[serde(
        default = "default_optimizer",
        deserialize_with = "text_or_tables",
        skip_serializing_if = "is_default_optimizer"
    )]
    pub optimizer: Vec<Optimizer>,
    /// Weight decay: when not empty, every optimizer of `optimizer` is tried with each of
    /// these values (replacing its own). Empty (the default): each optimizer's own (0
    /// unless set in a table; AdamW's text form 0.01).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weight_decay: Vec<f64>,
    /// Learning-rate schedule, as a table (`{"kind": "cosine", "min_lr": 0.0}`) or in the
    /// text form of `--lr-schedule` (`"constant"`, `"step:5:0.5"`, `"cosine"`,
    /// `"plateau:2:0.5"`). Default: constant.
    #[serde(
        default = "default_lr_schedule",
        deserialize_with = "text_or_tables",
        skip_serializing_if = "is_default_lr_schedule"
    )]
    pub lr_schedule: Vec<LrSchedule>,
    /// Epochs of linear warm-up before the schedule (each below every `epochs` value).
    /// Default: 0.
    #[serde(default = "default_zeros", skip_serializing_if = "is_zeros")]
    pub warmup_epochs: Vec<usize>,
    /// Early stopping patience in epochs, 0 for none: stop when the validation metric
    /// (`early_stopping_on`) has not improved for that many epochs and keep the best
    /// epoch's weights. Default: 0.
    #[serde(default = "default_zeros", skip_serializing_if = "is_zeros")]
    pub early_stopping: Vec<usize>,
    /// The validation metric early stopping watches: `accuracy` (the default) or `loss`.
    #[serde(default, skip_serializing_if = "is_accuracy")]
    pub early_stopping_on: Monitor,
    /// Continuous or integer ranges that random search, successive halving and
    /// Hyperband sample from instead of an axis's values (a `[ranges]` table; see
    /// [`Ranges`]). A grid cannot enumerate a range: `glorot search run` refuses a grid
    /// with ranges. Left out of the file when empty, so grids without ranges write
    /// `grid.json` as before.
    #[serde(default, skip_serializing_if = "Ranges::is_empty")]
    pub ranges: Ranges,
}

fn default_optimizer() -> Vec<Optimizer> {
    vec![Optimizer::default()]
}
fn is_default_optimizer(v: &[Optimizer]) -> bool {
    v == [Optimizer::default()]
}
fn default_lr_schedule() -> Vec<LrSchedule> {
    vec![LrSchedule::Constant]
}
fn is_default_lr_schedule(v: &[LrSchedule]) -> bool {
    v == [LrSchedule::Constant]
}
fn default_zeros() -> Vec<usize> {
    vec![0]
}
fn is_zeros(v: &[usize]) -> bool {
    v == [0]
}
fn is_accuracy(m: &Monitor) -> bool {
    *m == Monitor::Accuracy
}

/// A list whose entries are each a text form (`T: FromStr`) or a table (`T`'s serde form).
fn text_or_tables<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: Display,
{
    Ok(Vec::<TextOrTable<T>>::deserialize(d)?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

/// One entry of a [`text_or_tables`] list.
struct TextOrTable<T>(T);

impl<'de, T> Deserialize<'de> for TextOrTable<T>
where
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T> serde::de::Visitor<'de> for Visitor<T>
        where
            T: std::str::FromStr + Deserialize<'de>,
            T::Err: Display,
        {
            type Value = TextOrTable<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a text form such as \"cosine\" or a table with its `kind`")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                s: &str,
            ) -> std::result::Result<Self::Value, E> {
                s.parse().map(TextOrTable).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(TextOrTable)
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// `init` in a grid file: a list of initializers, each a name or a tagged table.
fn inits<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<Init>, D::Error> {
    Ok(Vec::<InitEntry>::deserialize(d)?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

/// One initializer of a grid file's `init` list.
struct InitEntry(Init);

impl<'de> Deserialize<'de> for InitEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = InitEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an initializer: a name such as \"glorot_uniform\" or \"normal:0:1\", \
                     or a table with its `kind`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<InitEntry, E> {
                glorot_mlp::parse_init(s).map(InitEntry).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<InitEntry, A::Error> {
                Init::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(InitEntry)
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn default_init() -> Vec<Init> {
    vec![Init::GlorotUniform]
}
fn default_epochs() -> Vec<usize> {
    vec![10]
}
fn default_precision() -> Vec<Precision> {
    vec![Precision::F32]
}
fn default_repeats() -> Vec<u64> {
    vec![0]
}
fn default_shuffle() -> Shuffle {
    Shuffle::EveryEpoch
}
fn default_hidden_layers() -> usize {
    2
}

impl GridSpec {
    /// The notebook's Part 2 grid: hidden {450..650 by 50} x {ReLU, sigmoid, tanh}
    /// x lr {0.001, 0.01, 0.1} x batch {32, 64, 128}, 10 epochs: 135 trials.
    pub fn notebook() -> Self {
        GridSpec {
            hidden: vec![450, 500, 550, 600, 650],
            activation: vec![Activation::Relu, Activation::Sigmoid, Activation::Tanh],
            learning_rate: vec![0.001, 0.01, 0.1],
            batch_size: vec![32, 64, 128],
            init: default_init(),
            epochs: default_epochs(),
            precision: default_precision(),
            repeats: default_repeats(),
            hidden_layers: default_hidden_layers(),
            master_seed: 0,
            shuffle: default_shuffle(),
            optimizer: default_optimizer(),
            weight_decay: Vec::new(),
            lr_schedule: default_lr_schedule(),
            warmup_epochs: default_zeros(),
            early_stopping: default_zeros(),
            early_stopping_on: Monitor::Accuracy,
            ranges: Ranges::default(),
        }
    }

    /// A named preset: `notebook` (135 trials), `quick` (12 small trials, 1 epoch),
    /// `tiny` (8 trials of a 16-unit network, 1 epoch; for tests).
    pub fn preset(name: &str) -> Result<Self> {
        let base = GridSpec::notebook();
        match name {
            "notebook" => Ok(base),
            "quick" => Ok(GridSpec {
                hidden: vec![64, 128],
                activation: vec![Activation::Relu, Activation::Sigmoid, Activation::Tanh],
                learning_rate: vec![0.1],
                batch_size: vec![32, 128],
                epochs: vec![1],
                ..base
            }),
            "tiny" => Ok(GridSpec {
                hidden: vec![8, 16],
                activation: vec![Activation::Relu, Activation::Tanh],
                learning_rate: vec![0.1],
                batch_size: vec![16, 32],
                epochs: vec![1],
                ..base
            }),
            other => Err(Error::UnknownPreset(other.to_owned())),
        }
    }

    /// Reads a spec from a `.json` or `.toml` file (chosen by extension; anything
    /// else is tried as JSON, then TOML).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let parse_err = |message: String| Error::ParseSpec {
            path: path.to_owned(),
            message,
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "toml" => toml::from_str(&text).map_err(|e| parse_err(e.to_string())),
            "json" => serde_json::from_str(&text).map_err(|e| parse_err(e.to_string())),
            _ => serde_json::from_str(&text).or_else(|json_err| {
                toml::from_str(&text).map_err(|toml_err| {
                    parse_err(format!("as JSON: {json_err}; as TOML: {toml_err}"))
                })
            }),
        }
    }

    /// Checks every axis and returns the validated grid.
    pub fn validate(self) -> Result<ValidGrid> {
        non_empty("hidden", &self.hidden)?;
        non_empty("activation", &self.activation)?;
        non_empty("learning_rate", &self.learning_rate)?;
        non_empty("batch_size", &self.batch_size)?;
        non_empty("init", &self.init)?;
        non_empty("epochs", &self.epochs)?;
        non_empty("precision", &self.precision)?;
        non_empty("repeats", &self.repeats)?;
        for &h in &self.hidden {
            check(h > 0, "hidden", h, "hidden widths must be at least 1")?;
            check(
                h <= 1 << 20,
                "hidden",
                h,
                "hidden widths above 1,048,576 are not supported",
            )?;
        }
        for &lr in &self.learning_rate {
            check(
                lr.is_finite() && lr > 0.0,
                "learning_rate",
                lr,
                "must be finite and positive",
            )?;
        }
        for &b in &self.batch_size {
            check(b > 0, "batch_size", b, "must be at least 1")?;
        }
        for &e in &self.epochs {
            check(e > 0, "epochs", e, "must be at least 1")?;
        }
        check(
            self.hidden_layers > 0,
            "hidden_layers",
            self.hidden_layers,
            "must be at least 1",
        )?;
        check(
            self.hidden_layers <= MAX_HIDDEN_LAYERS,
            "hidden_layers",
            self.hidden_layers,
            "more than 1,024 hidden layers are not supported",
        )?;
        for init in &self.init {
            let ok = match *init {
                Init::Normal { mean, std } => mean.is_finite() && std.is_finite() && std >= 0.0,
                Init::Orthogonal { gain } => gain.is_finite(),
                _ => true,
            };
            check(
                ok,
                "init",
                format!("{init:?}"),
                "parameters must be finite (std >= 0)",
            )?;
        }
        self.validate_training_axes()?;
        let trials = [
            self.activation.len(),
            self.learning_rate.len(),
            self.batch_size.len(),
            self.init.len(),
            self.epochs.len(),
            self.precision.len(),
            self.repeats.len(),
            self.optimizer.len(),
            self.weight_decay.len().max(1),
            self.lr_schedule.len(),
            self.warmup_epochs.len(),
            self.early_stopping.len(),
        ]
        .into_iter()
        .try_fold(self.hidden.len(), usize::checked_mul)
        .filter(|&n| n <= MAX_TRIALS);
        check(
            trials.is_some(),
            "grid size",
            "the product of the axes' lengths",
            "more than 1,000,000 trials are not supported",
        )?;
        no_duplicates("hidden", &self.hidden)?;
        no_duplicates("activation", &self.activation)?;
        // Compared by their bits, reported as numbers (`0.1`, not its bit pattern).
        let mut seen = HashSet::new();
        for &lr in &self.learning_rate {
            check(
                seen.insert(lr.to_bits()),
                "learning_rate",
                lr,
                "appears twice",
            )?;
        }
        no_duplicates("batch_size", &self.batch_size)?;
        no_duplicates("epochs", &self.epochs)?;
        no_duplicates("precision", &self.precision)?;
        no_duplicates("repeats", &self.repeats)?;
        let inits: Vec<String> = self.init.iter().map(|i| format!("{i:?}")).collect();
        no_duplicates("init", &inits)?;
        self.ranges.validate()?;
        Ok(ValidGrid { spec: self })
    }

    /// The optimizer, weight decay, schedule, warm-up and early stopping axes: each value
    /// valid (as [`glorot_mlp::TrainConfig::validate`] checks it, against every learning
    /// rate and epoch count of the grid) and none twice.
    fn validate_training_axes(&self) -> Result<()> {
        non_empty("optimizer", &self.optimizer)?;
        non_empty("lr_schedule", &self.lr_schedule)?;
        non_empty("warmup_epochs", &self.warmup_epochs)?;
        non_empty("early_stopping", &self.early_stopping)?;
        for &wd in &self.weight_decay {
            check(
                wd.is_finite() && wd >= 0.0,
                "weight_decay",
                wd,
                "must be finite and >= 0",
            )?;
        }
        for optimizer in self.optimizers() {
            check(
                optimizer.validate().is_ok(),
                "optimizer",
                format!("{optimizer:?}"),
                "momentum in [0, 1) (nesterov: (0, 1)), betas in [0, 1), eps > 0, \
                 weight decay >= 0",
            )?;
        }
        for schedule in &self.lr_schedule {
            for &lr in &self.learning_rate {
                check(
                    schedule.validate(lr).is_ok(),
                    "lr_schedule",
                    schedule,
                    "invalid values (cosine's min_lr must be at most every learning rate)",
                )?;
            }
        }
        let fewest_epochs = self.epochs.iter().copied().min().unwrap_or(0);
        for &w in &self.warmup_epochs {
            check(
                w < fewest_epochs,
                "warmup_epochs",
                w,
                "must be less than every epochs value",
            )?;
        }
        let optimizers: Vec<String> = self.optimizer.iter().map(|o| format!("{o:?}")).collect();
        no_duplicates("optimizer", &optimizers)?;
        let mut seen = HashSet::new();
        for &wd in &self.weight_decay {
            check(
                seen.insert(wd.to_bits()),
                "weight_decay",
                wd,
                "appears twice",
            )?;
        }
        let schedules: Vec<String> = self.lr_schedule.iter().map(ToString::to_string).collect();
        no_duplicates("lr_schedule", &schedules)?;
        no_duplicates("warmup_epochs", &self.warmup_epochs)?;
        no_duplicates("early_stopping", &self.early_stopping)?;
        Ok(())
    }

    /// The optimizers of the grid: each of `optimizer`, with each `weight_decay` when
    /// that axis is given.
    fn optimizers(&self) -> Vec<Optimizer> {
        if self.weight_decay.is_empty() {
            return self.optimizer.clone();
        }
        self.optimizer
            .iter()
            .flat_map(|o| self.weight_decay.iter().map(|&wd| o.with_weight_decay(wd)))
            .collect()
    }

    /// Every combination of the training axes, in order: optimizer, weight decay,
    /// schedule, warm-up, early stopping (the last varies fastest).
    pub(crate) fn trainings(&self) -> Vec<Training> {
        let mut out = Vec::new();
        for optimizer in self.optimizers() {
            for &lr_schedule in &self.lr_schedule {
                for &warmup_epochs in &self.warmup_epochs {
                    for &patience in &self.early_stopping {
                        out.push(Training {
                            optimizer,
                            lr_schedule,
                            warmup_epochs,
                            early_stopping: (patience > 0).then_some(EarlyStopping {
                                patience,
                                monitor: self.early_stopping_on,
                            }),
                        });
                    }
                }
            }
        }
        out
    }
}

/// One combination of a grid's training axes.
#[derive(Clone, Copy)]
pub(crate) struct Training {
    pub(crate) optimizer: Optimizer,
    pub(crate) lr_schedule: LrSchedule,
    pub(crate) warmup_epochs: usize,
    pub(crate) early_stopping: Option<EarlyStopping>,
}

/// The most trials a grid may have (every trial is listed in memory and in the journal).
pub const MAX_TRIALS: usize = 1_000_000;

/// The most hidden layers a grid's networks may have.
pub const MAX_HIDDEN_LAYERS: usize = 1024;

/// A checked grid; [`ValidGrid::trials`] lists its trials in canonical order.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidGrid {
    spec: GridSpec,
}

impl ValidGrid {
    /// The specification it was built from.
    pub fn spec(&self) -> &GridSpec {
        &self.spec
    }

    /// Number of trials.
    pub fn len(&self) -> usize {
        let s = &self.spec;
        s.hidden.len()
            * s.activation.len()
            * s.learning_rate.len()
            * s.batch_size.len()
            * s.init.len()
            * s.epochs.len()
            * s.precision.len()
            * s.repeats.len()
            * s.optimizer.len()
            * s.weight_decay.len().max(1)
            * s.lr_schedule.len()
            * s.warmup_epochs.len()
            * s.early_stopping.len()
    }

    /// Whether the grid has no trials (never true for a validated grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every trial in the notebook's loop order: hidden, then activation, then
    /// learning rate, then batch size (then initializer, epochs, precision, optimizer,
    /// weight decay, schedule, warm-up, early stopping, repeat).
    pub fn trials(&self) -> Vec<Trial> {
        let s = &self.spec;
        let trainings = s.trainings();
        let mut out = Vec::with_capacity(self.len());
        for &hidden in &s.hidden {
            for &activation in &s.activation {
                for &learning_rate in &s.learning_rate {
                    for &batch_size in &s.batch_size {
                        for &init in &s.init {
                            for &epochs in &s.epochs {
                                for &precision in &s.precision {
                                    for (t, &repeat) in trainings
                                        .iter()
                                        .flat_map(|t| s.repeats.iter().map(move |r| (t, r)))
                                    {
                                        let config = TrialConfig {
                                            hidden: vec![hidden; s.hidden_layers],
                                            activation,
                                            learning_rate,
                                            batch_size,
                                            init,
                                            epochs,
                                            precision,
                                            shuffle: s.shuffle,
                                            repeat,
                                            optimizer: t.optimizer,
                                            lr_schedule: t.lr_schedule,
                                            warmup_epochs: t.warmup_epochs,
                                            early_stopping: t.early_stopping,
                                        };
                                        let id = config.id();
                                        let seed = crate::trial::derive_seed(s.master_seed, &id);
                                        out.push(Trial {
                                            index: out.len(),
                                            id,
                                            seed,
                                            config,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Position in the grid's canonical order (the notebook's loop order).
    pub index: usize,
    /// Stable id derived from the canonical config.
    pub id: TrialId,
    /// Seed derived from the master seed and the id.
    pub seed: u64,
    /// What to train.
    pub config: TrialConfig,
}

fn non_empty<T>(field: &'static str, v: &[T]) -> Result<()> {
    check(!v.is_empty(), field, "[]", "needs at least one value")
}

fn no_duplicates<T: Eq + std::hash::Hash + std::fmt::Debug>(
    field: &'static str,
    v: &[T],
) -> Result<()> {
    let mut seen = HashSet::new();
    for x in v {
        check(seen.insert(x), field, format!("{x:?}"), "appears twice")?;
    }
    Ok(())
}

fn check(ok: bool, field: &'static str, value: impl Display, reason: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            field,
            value: value.to_string(),
            reason,
        })
    }
}

// ---- Ranges (random search, successive halving, Hyperband) ----

/// How a [`Range`] is sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Uniform between `min` and `max`.
    #[default]
    Linear,
    /// Uniform in the logarithm (`min` must be positive): as likely in `[0.001, 0.01]`
    /// as in `[0.01, 0.1]`.
    Log,
}

/// A closed interval `[min, max]` sampled on a [`Scale`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lower end (included).
    pub min: f64,
    /// Upper end (included).
    pub max: f64,
    /// Linear (default) or logarithmic.
    #[serde(default)]
    pub scale: Scale,
}

/// The `[ranges]` table of a grid file: axes sampled from an interval instead of a
/// list. Each replaces its axis's values when a strategy samples configurations:
///
/// ```toml
/// [ranges]
/// learning_rate = { min = 0.001, max = 0.3, scale = "log" }
/// hidden = { min = 400, max = 700 }             # integers, linear by default
/// batch_size = { min = 16, max = 256, scale = "log" }
/// ```
///
/// A sampled learning rate is rounded to 3 significant digits (so ids stay readable),
/// a width or batch size to the nearest integer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ranges {
    /// Hidden width (an integer at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Range>,
    /// Learning rate (positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<Range>,
    /// Minibatch size (an integer at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<Range>,
}

impl Ranges {
    /// Whether no axis has a range.
    pub fn is_empty(&self) -> bool {
        self.hidden.is_none() && self.learning_rate.is_none() && self.batch_size.is_none()
    }

    fn validate(&self) -> Result<()> {
        let checks = [
            ("ranges.hidden", self.hidden, 1.0),
            (
                "ranges.learning_rate",
                self.learning_rate,
                f64::MIN_POSITIVE,
            ),
            ("ranges.batch_size", self.batch_size, 1.0),
        ];
        for (field, range, least) in checks {
            let Some(r) = range else { continue };
            let shown = format!("{{ min = {}, max = {} }}", r.min, r.max);
            check(
                r.min.is_finite() && r.max.is_finite(),
                field,
                &shown,
                "min and max must be finite",
            )?;
            check(
                r.min >= least,
                field,
                &shown,
                "min is below the axis's least value",
            )?;
            check(r.min <= r.max, field, &shown, "min must not exceed max")?;
            check(
                field == "ranges.learning_rate" || r.max <= f64::from(1u32 << 20),
                field,
                &shown,
                "integer ranges end at 1,048,576",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebook_grid_has_135_trials_in_loop_order() {
        // The notebook's Part 2: 5 widths x 3 activations x 3 rates x 3 batch sizes.
        let grid = GridSpec::notebook().validate().unwrap();
        let trials = grid.trials();
        assert_eq!(trials.len(), 135);
        let first = &trials[0].config;
        assert_eq!(
            (
                first.hidden[0],
                first.activation,
                first.learning_rate,
                first.batch_size
            ),
            (450, Activation::Relu, 0.001, 32)
        );
        let second = &trials[1].config;
        assert_eq!(
            second.batch_size, 64,
            "batch size is the innermost notebook loop"
        );
        // The notebook's best, 550 / ReLU / 0.1 / 32, is trial 2*27 + 0*9 + 2*3 + 0 = 60.
        let best = &trials[60].config;
        assert_eq!(
            (
                best.hidden[0],
                best.activation,
                best.learning_rate,
                best.batch_size
            ),
            (550, Activation::Relu, 0.1, 32)
        );
        let ids: HashSet<_> = trials.iter().map(|t| t.id.clone()).collect();
        assert_eq!(ids.len(), 135, "ids are unique");
    }

    #[track_caller]
    fn rejects(edit: impl FnOnce(&mut GridSpec), field: &str, value: &str) {
        let mut spec = GridSpec::notebook();
        edit(&mut spec);
        match spec.validate() {
            Err(Error::InvalidSpec {
                field: f, value: v, ..
            }) => {
                assert_eq!((f, v.as_str()), (field, value));
            }
            other => panic!("expected InvalidSpec for {field}, got {other:?}"),
        }
    }

    #[test]
    fn invalid_specs_name_field_and_value() {
        rejects(|s| s.learning_rate = vec![0.1, -1.0], "learning_rate", "-1");
        rejects(|s| s.learning_rate = vec![f64::NAN], "learning_rate", "NaN");
        rejects(|s| s.batch_size = vec![0], "batch_size", "0");
        rejects(|s| s.hidden = vec![], "hidden", "[]");
        rejects(|s| s.hidden = vec![500, 500], "hidden", "500");
        rejects(|s| s.epochs = vec![0], "epochs", "0");
        rejects(|s| s.hidden_layers = 0, "hidden_layers", "0");
        rejects(|s| s.hidden_layers = 1025, "hidden_layers", "1025");
        // Compared by bits, shown as the number (the issue saw 4591870180066957722).
        rejects(|s| s.learning_rate = vec![0.1, 0.1], "learning_rate", "0.1");
        // The notebook's 5 widths x 3 activations x 3 learning rates x 50,000 repeats
        // are 2,250,000 trials or more, over MAX_TRIALS.
        rejects(
            |s| s.repeats = (0..50_000).collect(),
            "grid size",
            "the product of the axes' lengths",
        );
    }

    #[test]
    fn grid_files_take_initializers_by_name_or_as_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        let head =
            "hidden = [8]\nactivation = [\"tanh\"]\nlearning_rate = [0.5]\nbatch_size = [4]\n";
        std::fs::write(
            &path,
            format!("{head}init = [\"glorot_uniform\", \"Normal:0:0.5\", {{ kind = \"zero\" }}]\n"),
        )
        .unwrap();
        let spec = GridSpec::from_file(&path).unwrap();
        assert_eq!(
            spec.init,
            vec![
                Init::GlorotUniform,
                Init::Normal {
                    mean: 0.0,
                    std: 0.5
                },
                Init::Zero
            ]
        );
        // Written back in the tagged form, as before.
        let json = serde_json::to_string(&spec.init).unwrap();
        assert!(json.starts_with(r#"[{"kind":"glorot_uniform"}"#), "{json}");
        std::fs::write(&path, format!("{head}init = [\"normal:0:-1\"]\n")).unwrap();
        let err = GridSpec::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("normal:0:-1"), "{err}");
        std::fs::write(&path, format!("{head}init = [{{ kind = \"uniform\" }}]\n")).unwrap();
        let err = GridSpec::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("uniform"), "{err}");
    }

    /// The training axes: read as text or tables, crossed into the trials (weight decay
    /// with every optimizer), named in the ids; absent from a grid's serialized form and
    /// its trials' configs when default, so the notebook's grid is stored and identified
    /// as before.
    #[test]
    fn training_axes_cross_into_trials_and_stay_out_of_default_grids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(
            &path,
            "hidden = [8]\nactivation = [\"relu\"]\nlearning_rate = [0.1]\nbatch_size = [4]\n\
             epochs = [3]\noptimizer = [\"sgd\", \"nesterov:0.8\", { kind = \"adam\", beta1 = 0.9, \
             beta2 = 0.99, eps = 1e-6 }]\nweight_decay = [0.0, 1e-4]\n\
             lr_schedule = [\"constant\", { kind = \"cosine\" }]\nwarmup_epochs = [0, 1]\n\
             early_stopping = [0, 2]\nearly_stopping_on = \"loss\"\n",
        )
        .unwrap();
        let spec = GridSpec::from_file(&path).unwrap();
        assert_eq!(
            spec.optimizer[1],
            Optimizer::Nesterov {
                momentum: 0.8,
                weight_decay: 0.0
            }
        );
        let grid = spec.clone().validate().unwrap();
        // 3 optimizers x 2 weight decays x 2 schedules x 2 warm-ups x 2 patiences.
        assert_eq!(grid.len(), 48);
        let trials = grid.trials();
        assert_eq!(trials.len(), 48);
        let ids: HashSet<_> = trials.iter().map(|t| t.id.clone()).collect();
        assert_eq!(ids.len(), 48, "ids are unique");
        // The first trial is the notebook's training: its id has no tag.
        let first = &trials[0];
        assert!(first.config.optimizer.is_default());
        assert!(first.id.0.starts_with("8x2-relu-lr0.1-b4-"), "{}", first.id);
        assert_eq!(first.id.0.len(), "8x2-relu-lr0.1-b4-".len() + 12);
        // Early stopping varies fastest, then warm-up, schedule, weight decay, optimizer.
        let second = &trials[1].config;
        assert_eq!(
            second.early_stopping,
            Some(EarlyStopping {
                patience: 2,
                monitor: Monitor::Loss
            })
        );
        assert!(trials[1].id.0.contains("-es2loss-"), "{}", trials[1].id);
        let last = &trials[47];
        assert_eq!(last.config.optimizer.weight_decay(), 1e-4);
        assert_eq!(last.config.optimizer.name(), "adam");
        assert!(
            last.id.0.contains("-adam-wd0.0001-cosine-wu1-es2loss-"),
            "{}",
            last.id
        );
        // Written back as tables, and read again equal.
        let json = serde_json::to_string(&spec).unwrap();
        assert!(
            json.contains(r#""lr_schedule":[{"kind":"constant"},{"kind":"cosine","min_lr":0.0}]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<GridSpec>(&json).unwrap(), spec);
        // The notebook's grid: none of these fields, and its trials as before.
        let json = serde_json::to_string(&GridSpec::notebook()).unwrap();
        for key in [
            "optimizer",
            "weight_decay",
            "lr_schedule",
            "warmup",
            "early_stopping",
        ] {
            assert!(!json.contains(key), "{key} in {json}");
        }
        let read: GridSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(read, GridSpec::notebook());
    }

    #[test]
    fn invalid_training_axes_name_field_and_value() {
        rejects(|s| s.warmup_epochs = vec![0, 10], "warmup_epochs", "10");
        rejects(|s| s.weight_decay = vec![-1.0], "weight_decay", "-1");
        rejects(|s| s.weight_decay = vec![0.1, 0.1], "weight_decay", "0.1");
        rejects(
            |s| s.lr_schedule = vec![LrSchedule::Cosine { min_lr: 0.01 }],
            "lr_schedule",
            "cosine:0.01",
        );
        rejects(|s| s.early_stopping = vec![0, 0], "early_stopping", "0");
        rejects(|s| s.optimizer = vec![], "optimizer", "[]");
        rejects(
            |s| {
                s.optimizer = vec![Optimizer::Momentum {
                    momentum: 1.5,
                    weight_decay: 0.0,
                }]
            },
            "optimizer",
            "Momentum { momentum: 1.5, weight_decay: 0.0 }",
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.json");
        std::fs::write(
            &path,
            r#"{"hidden":[8],"activation":["tanh"],"learning_rate":[0.5],"batch_size":[4],"optimizer":["rmsprop"]}"#,
        )
        .unwrap();
        let err = GridSpec::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("rmsprop"), "{err}");
    }

    #[test]
    fn files_parse_as_json_and_toml_and_reject_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("g.toml");
        std::fs::write(
            &toml_path,
            "hidden = [8]\nactivation = [\"tanh\"]\nlearning_rate = [0.5]\nbatch_size = [4]\nepochs = [2]\n",
        )
        .unwrap();
        let spec = GridSpec::from_file(&toml_path).unwrap();
        assert_eq!(spec.epochs, vec![2]);
        assert_eq!(spec.init, vec![Init::GlorotUniform]);
        let json_path = dir.path().join("g.json");
        std::fs::write(&json_path, serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(GridSpec::from_file(&json_path).unwrap(), spec);
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"hidden":[8],"activation":["tanh"],"learning_rate":[0.5],"batch_size":[4],"lr":1}"#,
        )
        .unwrap();
        let err = GridSpec::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown field `lr`"), "{err}");
    }
}
