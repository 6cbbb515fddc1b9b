//! One trial's configuration, its stable id, and its seed.

use std::fmt;

use glorot_mlp::{Activation, Init};
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
}

/// A trial's stable id: readable fields plus a hash of the canonical config, e.g.
/// `550x2-relu-lr0.1-b32-1f2e3d4c5b6a`. Safe as a file name.
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
            "{width}-{}-lr{}-b{}-{hash}",
            self.activation, self.learning_rate, self.batch_size
        ))
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
        ];
        for v in variants {
            assert_ne!(v.id(), id, "{v:?}");
        }
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
