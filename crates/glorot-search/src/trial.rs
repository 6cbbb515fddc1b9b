//! One trial's configuration, its stable id, and its seed.

use std::fmt;

use glorot_mlp::{Activation, EarlyStopping, Init, LrSchedule, Optimizer};
use glorot_mlp::{Precision, Shuffle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Everything that determines a trial's result, apart from the master seed and the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// Hidden layer widths (the notebook: two equal widths).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// SGD learning rate.
    pub learning_rate: f64,
    /// Minibatch size.
    pub batch_size: usize,
    /// Weight initializer.
    pub init: Init,
    /// Number of epochs.
    pub epochs: usize,
    /// Arithmetic precision.
    pub precision: Precision,
    /// Data order.
    pub shuffle: Shuffle,
    /// Repeat index (a different derived seed for the same configuration).
    pub repeat: u64,
    /// How parameters are updated, with its weight decay. Left out of the serialized
    /// form (so out of the id's hash) when it is the default, plain SGD without weight
    /// decay: the trials of grids without this axis keep their ids and records.
    #[serde(default, skip_serializing_if = "Optimizer::is_default")]
    pub optimizer: Optimizer,
    /// Learning-rate schedule; left out when constant (the default).
    #[serde(default, skip_serializing_if = "LrSchedule::is_default")]
    pub lr_schedule: LrSchedule,
    /// Epochs of linear warm-up; left out when 0 (the default).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warmup_epochs: usize,
    /// Early stopping (patience and monitored metric); left out when absent (the
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A trial's stable id: readable fields plus a hash of the canonical config, e.g.
/// `550x2-relu-lr0.1-b32-1f2e3d4c5b6a`; a trial with a non-default optimizer, weight
/// decay, schedule, warm-up or early stopping names them before the hash, e.g.
/// `550x2-relu-lr0.05-b32-nesterov-wd0.0005-cosine-wu2-es5-1f2e3d4c5b6a`. Safe as a file
/// name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrialId(pub String);

impl fmt::Display for TrialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TrialConfig {
    /// The canonical serialisation the id hashes: the struct as compact JSON, whose
    /// field order is fixed by the struct and whose floats print in the shortest
    /// form that round-trips, so equal configs always give equal bytes.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("a TrialConfig always serialises")
    }

    /// The stable id (see [`TrialId`]); it does not depend on the master seed,
    /// the position in the grid, sharding or time.
    pub fn id(&self) -> TrialId {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let width = match self.hidden.as_slice() {
            [first, rest @ ..] if rest.iter().all(|h| h == first) => {
                format!("{first}x{}", self.hidden.len())
            }
            other => other
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("-"),
        };
        TrialId(format!(
            "{width}-{}-lr{}-b{}{}-{hash}",
            self.activation,
            self.learning_rate,
            self.batch_size,
            self.training_tag()
        ))
    }

    /// The readable part of the id for the axes beyond the notebook's, empty when they
    /// are all default: `-KIND` for an optimizer other than plain SGD, `-wdWD` for a
    /// weight decay, `-SCHEDULE` for the schedule's kind, `-wuN` for a warm-up, `-esN`
    /// (`-esNloss` on the loss) for early stopping. The full values are in the hash.
    fn training_tag(&self) -> String {
        let mut tag = String::new();
        if !matches!(self.optimizer, Optimizer::Sgd { .. }) {
            tag.push('-');
            tag.push_str(self.optimizer.name());
        }
        let wd = self.optimizer.weight_decay();
        if wd != 0.0 {
            tag.push_str(&format!("-wd{wd}"));
        }
        match self.lr_schedule {
            LrSchedule::Constant => {}
            LrSchedule::Step { .. } => tag.push_str("-step"),
            LrSchedule::Cosine { .. } => tag.push_str("-cosine"),
            LrSchedule::Plateau { .. } => tag.push_str("-plateau"),
            _ => tag.push_str("-schedule"),
        }
        if self.warmup_epochs > 0 {
            tag.push_str(&format!("-wu{}", self.warmup_epochs));
        }
        if let Some(rule) = self.early_stopping {
            tag.push_str(&format!("-es{}", rule.patience));
            if rule.monitor == glorot_mlp::Monitor::Loss {
                tag.push_str("loss");
            }
        }
        tag
    }
}

/// The trial's seed: the first 8 bytes (little-endian) of
/// SHA-256("glorot-trial-seed/v1" || master seed (LE) || id). Depends only on the
/// master seed and the id, so a trial's result does not depend on execution order,
/// parallelism, sharding or resumption.
pub fn derive_seed(master_seed: u64, id: &TrialId) -> u64 {
    let mut h = Sha256::new();
    h.update(b"glorot-trial-seed/v1");
    h.update(master_seed.to_le_bytes());
    h.update(id.0.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrialConfig {
        TrialConfig {
            hidden: vec![550, 550],
            activation: Activation::Relu,
            learning_rate: 0.1,
            batch_size: 32,
            init: Init::GlorotUniform,
            epochs: 10,
            precision: Precision::F32,
            shuffle: Shuffle::EveryEpoch,
            repeat: 0,
            optimizer: Optimizer::default(),
            lr_schedule: LrSchedule::Constant,
            warmup_epochs: 0,
            early_stopping: None,
        }
    }

    #[test]
    fn id_is_stable_readable_and_sensitive_to_every_field() {
        let id = config().id();
        assert!(id.0.starts_with("550x2-relu-lr0.1-b32-"), "{id}");
        assert_eq!(id, config().id());
        let variants = [
            TrialConfig {
                learning_rate: 0.01,
                ..config()
            },
            TrialConfig {
                epochs: 9,
                ..config()
            },
            TrialConfig {
                precision: Precision::F64,
                ..config()
            },
            TrialConfig {
                repeat: 1,
                ..config()
            },
            TrialConfig {
                init: Init::Zero,
                ..config()
            },
            TrialConfig {
                hidden: vec![550, 550, 550],
                ..config()
            },
            TrialConfig {
                optimizer: "nesterov".parse().unwrap(),
                ..config()
            },
            TrialConfig {
                optimizer: Optimizer::Sgd { weight_decay: 1e-4 },
                ..config()
            },
            TrialConfig {
                lr_schedule: LrSchedule::Cosine { min_lr: 0.0 },
                ..config()
            },
            TrialConfig {
                warmup_epochs: 1,
                ..config()
            },
            TrialConfig {
                early_stopping: Some(EarlyStopping::new(3)),
                ..config()
            },
        ];
        for v in variants {
            assert_ne!(v.id(), id, "{v:?}");
        }
    }

    /// The default training axes are left out of the canonical form: a trial of the
    /// notebook's axes hashes the bytes it hashed before optimizers, schedules and early
    /// stopping existed (this string is that form, as `canonical_json` wrote it then).
    #[test]
    fn default_training_axes_keep_the_canonical_form() {
        assert_eq!(
            config().canonical_json(),
            r#"{"hidden":[550,550],"activation":"relu","learning_rate":0.1,"batch_size":32,"init":{"kind":"glorot_uniform"},"epochs":10,"precision":"f32","shuffle":"every_epoch","repeat":0}"#
        );
    }

    /// A trial with the training axes set names them in its id and hashes their values.
    /// The id is pinned: it was computed when these axes were added, and must not change
    /// (records and journals are found by it).
    #[test]
    fn training_axes_name_themselves_in_a_stable_id() {
        let c = TrialConfig {
            learning_rate: 0.02,
            epochs: 30,
            optimizer: "nesterov:0.9"
                .parse::<Optimizer>()
                .unwrap()
                .with_weight_decay(5e-4),
            lr_schedule: LrSchedule::Cosine { min_lr: 0.0 },
            warmup_epochs: 1,
            early_stopping: Some(EarlyStopping::new(10)),
            ..config()
        };
        assert_eq!(
            c.canonical_json(),
            r#"{"hidden":[550,550],"activation":"relu","learning_rate":0.02,"batch_size":32,"init":{"kind":"glorot_uniform"},"epochs":30,"precision":"f32","shuffle":"every_epoch","repeat":0,"optimizer":{"kind":"nesterov","momentum":0.9,"weight_decay":0.0005},"lr_schedule":{"kind":"cosine","min_lr":0.0},"warmup_epochs":1,"early_stopping":{"patience":10,"monitor":"accuracy"}}"#
        );
        // The hash: the first 6 bytes of SHA-256 of the canonical form above (also by
        // `hashlib.sha256(...).hexdigest()[:12]` in Python).
        assert_eq!(
            c.id().0,
            "550x2-relu-lr0.02-b32-nesterov-wd0.0005-cosine-wu1-es10-9474a79b5907"
        );
        let on_loss = TrialConfig {
            early_stopping: Some(EarlyStopping {
                patience: 10,
                monitor: glorot_mlp::Monitor::Loss,
            }),
            ..c.clone()
        };
        assert!(on_loss.id().0.contains("-es10loss-"), "{}", on_loss.id());
        let adam = TrialConfig {
            optimizer: "adam".parse().unwrap(),
            ..config()
        };
        assert!(
            adam.id().0.starts_with("550x2-relu-lr0.1-b32-adam-"),
            "{}",
            adam.id()
        );
        // A record of such a trial reads back equal.
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<TrialConfig>(&json).unwrap(), c);
    }

    #[test]
    fn seed_depends_on_master_seed_and_id_only() {
        let id = config().id();
        assert_eq!(derive_seed(5, &id), derive_seed(5, &id));
        assert_ne!(derive_seed(5, &id), derive_seed(6, &id));
        assert_ne!(
            derive_seed(5, &id),
            derive_seed(
                5,
                &TrialConfig {
                    repeat: 1,
                    ..config()
                }
                .id()
            )
        );
    }
}
