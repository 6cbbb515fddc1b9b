//! Early stopping: end a run when the validation metric has stopped improving, and keep
//! the best epoch's weights.
//!
//! With [`EarlyStopping`] in the [`crate::TrainConfig`], the trainer watches one metric of
//! every epoch's validation ([`Monitor::Accuracy`], the default, or [`Monitor::Loss`]). An
//! epoch *improves* when its value is strictly better than every earlier epoch's (higher
//! accuracy, lower loss; the first epoch always improves, ties keep the earlier epoch, as
//! Keras' `EarlyStopping` with `min_delta = 0`). After each improving epoch the trainer
//! copies the parameters into one buffer allocated at the start of the run. When
//! `patience` epochs in a row have not improved, the run stops
//! ([`StopReason::EarlyStopped`]); at that point, and at the normal end of the run
//! ([`StopReason::Completed`]) when the last epoch is not the best, the parameters are
//! restored from the buffer. The report's [`crate::TrainReport::kept_epoch`] names the
//! epoch whose weights the run ends with; its test evaluation and saved weights are
//! those weights.
//!
//! The optimizer state (momentum buffers, moments) and the shuffle generator are not
//! restored: a later [`crate::Trainer::fit`] continues from the restored parameters with
//! the state of the last epoch that ran.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::train::EpochMetrics;

/// The validation metric early stopping watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// Validation accuracy, higher is better (the default). Serialized as `"accuracy"`.
    #[default]
    Accuracy,
    /// Validation loss, lower is better. Serialized as `"loss"`.
    Loss,
}

impl Monitor {
    /// `"accuracy"` or `"loss"`.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::Accuracy => "accuracy",
            Monitor::Loss => "loss",
        }
    }

    /// The watched value of an epoch.
    pub fn value(self, metrics: &EpochMetrics) -> f64 {
        match self {
            Monitor::Accuracy => metrics.val_accuracy,
            Monitor::Loss => metrics.val_loss,
        }
    }

    /// Whether `value` is strictly better than `best`.
    fn improves(self, value: f64, best: f64) -> bool {
        match self {
            Monitor::Accuracy => value > best,
            Monitor::Loss => value < best,
        }
    }
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Monitor {
    type Err = Error;

    /// `accuracy`/`acc`/`val_accuracy` or `loss`/`val_loss`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "accuracy" | "acc" | "val_accuracy" => Ok(Monitor::Accuracy),
            "loss" | "val_loss" => Ok(Monitor::Loss),
            _ => Err(Error::config(
                "early_stopping.monitor",
                s,
                "expected accuracy or loss",
            )),
        }
    }
}

/// Stop when the monitored validation metric has not improved for `patience` epochs, and
/// keep the best epoch's weights (see the [module docs](self)). Serialized as
/// `{"patience":3,"monitor":"accuracy"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs in a row without improvement that end the run (at least 1).
    pub patience: usize,
    /// The watched metric (default [`Monitor::Accuracy`]).
    #[serde(default)]
    pub monitor: Monitor,
}

impl EarlyStopping {
    /// Watching validation accuracy with `patience`.
    pub fn new(patience: usize) -> Self {
        Self {
            patience,
            monitor: Monitor::Accuracy,
        }
    }

    /// Checks the patience; the error names `early_stopping.patience`.
    pub fn validate(&self) -> Result<()> {
        if self.patience == 0 {
            Err(Error::config(
                "early_stopping.patience",
                0,
                "must be at least 1",
            ))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for EarlyStopping {
    /// `patience 3 on accuracy`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "patience {} on {}", self.patience, self.monitor)
    }
}

/// Why a run that neither diverged nor was cancelled ended, recorded with early stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every configured epoch ran. Serialized as `"completed"`.
    Completed,
    /// The monitored metric did not improve for `patience` epochs. Serialized as
    /// `"early_stopped"`.
    EarlyStopped,
}

/// What [`EarlyStopper::observe`] says about an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The epoch is the best so far: keep its parameters.
    Improved,
    /// Not better, but patience is left: go on.
    Continue,
    /// `patience` epochs in a row without improvement: stop and restore the best.
    Stop,
}

/// The bookkeeping of early stopping over one run: the best epoch so far and the epochs
/// since. Fed every finished epoch in order by the trainer; usable on its own to replay a
/// recorded curve.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopper {
    rule: EarlyStopping,
    best: Option<(usize, f64)>,
    since: usize,
}

impl EarlyStopper {
    /// A fresh tracker for `rule` (assumed valid, see [`EarlyStopping::validate`]).
    pub fn new(rule: EarlyStopping) -> Self {
        Self {
            rule,
            best: None,
            since: 0,
        }
    }

    /// Records a finished epoch and says what to do.
    pub fn observe(&mut self, metrics: &EpochMetrics) -> Verdict {
        let value = self.rule.monitor.value(metrics);
        match self.best {
            Some((_, best)) if !self.rule.monitor.improves(value, best) => {
                self.since += 1;
                if self.since >= self.rule.patience {
                    Verdict::Stop
                } else {
                    Verdict::Continue
                }
            }
            _ => {
                self.best = Some((metrics.epoch, value));
                self.since = 0;
                Verdict::Improved
            }
        }
    }

    /// The best epoch so far (from 1), if any epoch was observed.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best.map(|(epoch, _)| epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val_loss: f64, val_accuracy: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0,
            val_loss,
            val_accuracy,
            seconds: 0.0,
            train_seconds: 0.0,
            lr: None,
        }
    }

    /// Replays a hand-made curve; returns the epoch it stops after (if any) and the best.
    fn replay(rule: EarlyStopping, curve: &[(f64, f64)]) -> (Option<usize>, Option<usize>) {
        let mut stopper = EarlyStopper::new(rule);
        for (i, &(loss, acc)) in curve.iter().enumerate() {
            if stopper.observe(&epoch(i + 1, loss, acc)) == Verdict::Stop {
                return (Some(i + 1), stopper.best_epoch());
            }
        }
        (None, stopper.best_epoch())
    }

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        // Accuracy peaks at epoch 3 (88.0); epoch 5 ties it, which is no improvement; the
        // third epoch after the best (6) ends a patience-3 run.
        let curve = [
            (0.9, 85.0),
            (0.8, 86.5),
            (0.7, 88.0),
            (0.6, 87.0),
            (0.65, 88.0),
            (0.5, 87.9),
            (0.4, 89.0),
        ];
        assert_eq!(replay(EarlyStopping::new(3), &curve), (Some(6), Some(3)));
        assert_eq!(replay(EarlyStopping::new(4), &curve), (None, Some(7)));
        // On the loss, which keeps falling except at epoch 5, nothing stops at patience 2.
        let on_loss = EarlyStopping {
            patience: 2,
            monitor: Monitor::Loss,
        };
        assert_eq!(replay(on_loss, &curve), (None, Some(7)));
        // Patience 1 stops at the first epoch that does not improve.
        assert_eq!(
            replay(
                EarlyStopping {
                    patience: 1,
                    monitor: Monitor::Loss
                },
                &curve
            ),
            (Some(5), Some(4))
        );
    }

    #[test]
    fn text_serde_and_validation() {
        assert_eq!("LOSS".parse::<Monitor>().unwrap(), Monitor::Loss);
        assert_eq!("accuracy".parse::<Monitor>().unwrap(), Monitor::Accuracy);
        assert!(
            "f1".parse::<Monitor>()
                .unwrap_err()
                .to_string()
                .contains("f1")
        );
        let rule: EarlyStopping = serde_json::from_str(r#"{"patience":3}"#).unwrap();
        assert_eq!(rule, EarlyStopping::new(3));
        assert_eq!(
            serde_json::to_string(&rule).unwrap(),
            r#"{"patience":3,"monitor":"accuracy"}"#
        );
        assert!(serde_json::from_str::<EarlyStopping>(r#"{"patience":3,"min":1}"#).is_err());
        let err = EarlyStopping::new(0).validate().unwrap_err().to_string();
        assert!(err.contains("early_stopping.patience"), "{err}");
        assert_eq!(EarlyStopping::new(2).to_string(), "patience 2 on accuracy");
        assert_eq!(
            serde_json::to_string(&StopReason::EarlyStopped).unwrap(),
            r#""early_stopped""#
        );
    }
}
