//! Learning-rate schedules, applied per epoch: constant (the default), step decay, cosine
//! annealing and reduce-on-plateau, after an optional linear warm-up.
//!
//! For a run of `E` epochs with base rate `lr` and `W` warm-up epochs, epoch `e` (from 1)
//! trains with:
//! - during the warm-up (`e <= W`): `lr * e / (W + 1)`, rising linearly towards `lr`;
//! - after it, with `k = e - W - 1` (0 for the first epoch after the warm-up) and
//!   `T = E - W` epochs left:
//!   - constant ([`LrSchedule::Constant`]), `lr`;
//!   - step ([`LrSchedule::Step`]), `lr * gamma^floor(k / every)`
//!     (`torch.optim.lr_scheduler.StepLR`);
//!   - cosine ([`LrSchedule::Cosine`]), `min_lr + (lr - min_lr) * (1 + cos(pi * k / T)) / 2`
//!     (`CosineAnnealingLR` with `T_max = T`: the last epoch's rate is just above `min_lr`);
//!   - plateau ([`LrSchedule::Plateau`]), `lr`, multiplied by `factor` whenever the validation loss
//!     has not improved for more than `patience` epochs (`ReduceLROnPlateau` in mode
//!     `min` with a relative `threshold`, no cooldown, `min_lr` 0 and its `eps` 1e-8:
//!     a reduction smaller than 1e-8 is skipped). Epochs of the warm-up are not counted.
//!
//! The text form, for the command line and [`std::str::FromStr`]: `constant`,
//! `step:EVERY:GAMMA`, `cosine` or `cosine:MIN_LR`, `plateau:PATIENCE:FACTOR` or
//! `plateau:PATIENCE:FACTOR:THRESHOLD`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `ReduceLROnPlateau`'s default relative threshold (1e-4).
pub const DEFAULT_PLATEAU_THRESHOLD: f64 = 1e-4;

/// `ReduceLROnPlateau`'s `eps`: a reduction smaller than this is not applied.
const PLATEAU_EPS: f64 = 1e-8;

/// How the learning rate changes from epoch to epoch (see the [module docs](self)).
/// Serialized with a `kind` tag: `{"kind":"constant"}`, `{"kind":"step","every":10,
/// "gamma":0.1}`, `{"kind":"cosine","min_lr":0.0}`, `{"kind":"plateau","patience":2,
/// "factor":0.5,"threshold":0.0001}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LrSchedule {
    /// The same rate every epoch (the default, the notebook's).
    #[default]
    Constant,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step {
        /// Epochs between reductions (at least 1).
        every: usize,
        /// The factor (finite, > 0).
        gamma: f64,
    },
    /// Cosine annealing from the base rate towards `min_lr` over the epochs after the
    /// warm-up.
    Cosine {
        /// The floor (finite, >= 0, at most the base rate; default 0).
        #[serde(default)]
        min_lr: f64,
    },
    /// Reduce the rate by `factor` when the validation loss stops improving.
    Plateau {
        /// Epochs without improvement tolerated before a reduction.
        patience: usize,
        /// The factor (in `(0, 1)`).
        factor: f64,
        /// An epoch improves when its validation loss is below `best * (1 - threshold)`
        /// (finite, in `[0, 1)`; default [`DEFAULT_PLATEAU_THRESHOLD`]).
        #[serde(default = "default_threshold")]
        threshold: f64,
    },
}

fn default_threshold() -> f64 {
    DEFAULT_PLATEAU_THRESHOLD
}

impl LrSchedule {
    /// Whether this is the default, [`LrSchedule::Constant`].
    pub fn is_default(&self) -> bool {
        *self == LrSchedule::Constant
    }

    /// Checks every value against the base rate; the error names the field
    /// (`lr_schedule.gamma`, ...).
    pub fn validate(&self, learning_rate: f64) -> Result<()> {
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Step { every, gamma } => {
                if every == 0 {
                    Err(Error::config("lr_schedule.every", 0, "must be at least 1"))
                } else if !(gamma.is_finite() && gamma > 0.0) {
                    Err(Error::config(
                        "lr_schedule.gamma",
                        gamma,
                        "must be finite and > 0",
                    ))
                } else {
                    Ok(())
                }
            }
            LrSchedule::Cosine { min_lr } => {
                if min_lr.is_finite() && min_lr >= 0.0 && min_lr <= learning_rate {
                    Ok(())
                } else {
                    Err(Error::config(
                        "lr_schedule.min_lr",
                        min_lr,
                        "must be finite, >= 0 and at most the learning rate",
                    ))
                }
            }
            LrSchedule::Plateau {
                factor, threshold, ..
            } => {
                if !(factor > 0.0 && factor < 1.0) {
                    Err(Error::config(
                        "lr_schedule.factor",
                        factor,
                        "must be in (0, 1)",
                    ))
                } else if !(0.0..1.0).contains(&threshold) {
                    Err(Error::config(
                        "lr_schedule.threshold",
                        threshold,
                        "must be in [0, 1)",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl fmt::Display for LrSchedule {
    /// The text form that [`LrSchedule::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LrSchedule::Constant => f.write_str("constant"),
            LrSchedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            LrSchedule::Cosine { min_lr: 0.0 } => f.write_str("cosine"),
            LrSchedule::Cosine { min_lr } => write!(f, "cosine:{min_lr}"),
            LrSchedule::Plateau {
                patience,
                factor,
                threshold,
            } if threshold == DEFAULT_PLATEAU_THRESHOLD => {
                write!(f, "plateau:{patience}:{factor}")
            }
            LrSchedule::Plateau {
                patience,
                factor,
                threshold,
            } => write!(f, "plateau:{patience}:{factor}:{threshold}"),
        }
    }
}

const SYNTAX: &str = "expected constant, step:EVERY:GAMMA, cosine, cosine:MIN_LR, \
                      plateau:PATIENCE:FACTOR or plateau:PATIENCE:FACTOR:THRESHOLD";

impl FromStr for LrSchedule {
    type Err = Error;

    /// Reads the text form (see the [module docs](self)); the values are checked by
    /// [`LrSchedule::validate`], not here.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let bad = |field: &str, value: &str, reason| {
            Error::config(format!("lr_schedule.{field}"), value, reason)
        };
        let int = |field: &str, v: &str| -> Result<usize> {
            v.trim().parse().map_err(|_| {
                bad(
                    field,
                    v,
                    "expected a non-negative whole number (see --lr-schedule)",
                )
            })
        };
        let num = |field: &str, v: &str| -> Result<f64> {
            v.trim()
                .parse()
                .map_err(|_| bad(field, v, "expected a number (see --lr-schedule)"))
        };
        let kind = parts[0].to_ascii_lowercase();
        match (kind.as_str(), &parts[1..]) {
            ("constant", []) => Ok(LrSchedule::Constant),
            ("step", [every, gamma]) => Ok(LrSchedule::Step {
                every: int("every", every)?,
                gamma: num("gamma", gamma)?,
            }),
            ("cosine", []) => Ok(LrSchedule::Cosine { min_lr: 0.0 }),
            ("cosine", [min_lr]) => Ok(LrSchedule::Cosine {
                min_lr: num("min_lr", min_lr)?,
            }),
            ("plateau", [patience, factor]) => Ok(LrSchedule::Plateau {
                patience: int("patience", patience)?,
                factor: num("factor", factor)?,
                threshold: DEFAULT_PLATEAU_THRESHOLD,
            }),
            ("plateau", [patience, factor, threshold]) => Ok(LrSchedule::Plateau {
                patience: int("patience", patience)?,
                factor: num("factor", factor)?,
                threshold: num("threshold", threshold)?,
            }),
            _ => Err(Error::config("lr_schedule", s, SYNTAX)),
        }
    }
}

/// The learning rate of every epoch of one run: [`LrSchedule`] after a linear warm-up.
/// Made by [`LrScheduler::new`] at the start of a run; [`LrScheduler::lr`] gives an
/// epoch's rate and [`LrScheduler::end_epoch`] tells it the epoch's validation loss (which
/// only [`LrSchedule::Plateau`] uses).
#[derive(Clone, Debug, PartialEq)]
pub struct LrScheduler {
    base: f64,
    schedule: LrSchedule,
    warmup: usize,
    epochs: usize,
    /// The plateau schedule's current rate.
    current: f64,
    /// The plateau schedule's best validation loss so far.
    best: f64,
    /// The plateau schedule's epochs since the last improvement.
    bad_epochs: usize,
}

impl LrScheduler {
    /// The schedule of a run of `epochs` epochs at base rate `learning_rate`, the first
    /// `warmup` of them warming up. The values are assumed valid (see
    /// [`crate::TrainConfig::validate`]).
    pub fn new(learning_rate: f64, schedule: LrSchedule, warmup: usize, epochs: usize) -> Self {
        Self {
            base: learning_rate,
            schedule,
            warmup,
            epochs,
            current: learning_rate,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The learning rate of epoch `epoch` (from 1). With [`LrSchedule::Constant`] and no
    /// warm-up it is the base rate itself, bit for bit.
    pub fn lr(&self, epoch: usize) -> f64 {
        if epoch <= self.warmup {
            return self.base * epoch as f64 / (self.warmup + 1) as f64;
        }
        let k = epoch - self.warmup - 1;
        match self.schedule {
            LrSchedule::Constant => self.base,
            LrSchedule::Step { every, gamma } => {
                self.base * gamma.powi(i32::try_from(k / every.max(1)).unwrap_or(i32::MAX))
            }
            LrSchedule::Cosine { min_lr } => {
                let t = self.epochs.saturating_sub(self.warmup).max(1) as f64;
                min_lr
                    + (self.base - min_lr) * (1.0 + (std::f64::consts::PI * k as f64 / t).cos())
                        / 2.0
            }
            LrSchedule::Plateau { .. } => self.current,
        }
    }

    /// Epoch `epoch` (from 1) finished with validation loss `val_loss`: the plateau
    /// schedule counts it (after the warm-up) and reduces the rate of the following epochs
    /// when the loss has not improved for more than `patience` epochs.
    pub fn end_epoch(&mut self, epoch: usize, val_loss: f64) {
        let LrSchedule::Plateau {
            patience,
            factor,
            threshold,
        } = self.schedule
        else {
            return;
        };
        if epoch <= self.warmup {
            return;
        }
        if val_loss < self.best * (1.0 - threshold) {
            self.best = val_loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > patience {
            let reduced = self.current * factor;
            if self.current - reduced > PLATEAU_EPS {
                self.current = reduced;
            }
            self.bad_epochs = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// Every epoch's rate of a run without validation losses (constant improvement).
    fn rates(lr: f64, schedule: &str, warmup: usize, epochs: usize) -> Vec<f64> {
        let schedule: LrSchedule = schedule.parse().unwrap();
        schedule.validate(lr).unwrap();
        let mut s = LrScheduler::new(lr, schedule, warmup, epochs);
        (1..=epochs)
            .map(|e| {
                let r = s.lr(e);
                s.end_epoch(e, 1.0 / e as f64);
                r
            })
            .collect()
    }

    #[track_caller]
    fn check(got: &[f64], expected: &[f64]) {
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (g, e) in got.iter().zip(expected) {
            assert_relative_eq!(g, e, max_relative = 1e-15);
        }
    }

    #[test]
    fn constant_is_the_base_rate_bit_for_bit() {
        for lr in [0.01, 0.1, 0.3] {
            for r in rates(lr, "constant", 0, 5) {
                assert_eq!(r.to_bits(), lr.to_bits());
            }
        }
    }

    #[test]
    fn warm_up_rises_linearly_then_the_schedule_starts() {
        // Hand calculation: lr * e / (W + 1) with W = 3: 0.1/4, 0.2/4, 0.3/4, then 0.1.
        check(
            &rates(0.1, "constant", 3, 5),
            &[0.025, 0.05, 0.075, 0.1, 0.1],
        );
        // Step after 2 warm-up epochs: k = e - 3 = 0, 0, 1, 1, 2 with every 2, gamma 0.5.
        check(
            &rates(0.1, "step:2:0.5", 2, 7),
            &[0.1 / 3.0, 0.2 / 3.0, 0.1, 0.1, 0.05, 0.05, 0.025],
        );
    }

    #[test]
    fn step_decay() {
        // lr * gamma^floor((e - 1) / every): every 3, gamma 0.1 (hand calculation).
        check(
            &rates(1.0, "step:3:0.1", 0, 7),
            &[1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01],
        );
    }

    #[test]
    fn cosine_annealing() {
        // T = 4 epochs: (1 + cos(pi k / 4)) / 2 for k = 0..3 is 1, (2 + sqrt 2) / 4, 1/2,
        // (2 - sqrt 2) / 4 (hand calculation).
        let s2 = std::f64::consts::SQRT_2;
        check(
            &rates(0.2, "cosine", 0, 4),
            &[0.2, 0.2 * (2.0 + s2) / 4.0, 0.1, 0.2 * (2.0 - s2) / 4.0],
        );
        // To a floor 0.1 from 0.3, after one warm-up epoch (0.15), T = 2: 0.3, 0.2.
        check(&rates(0.3, "cosine:0.1", 1, 3), &[0.15, 0.3, 0.2]);
    }

    #[test]
    fn plateau_reduces_after_patience_epochs_without_improvement() {
        // patience 1, factor 0.5. Losses 1.0 (best), 0.99995 (not below 1.0 * (1 - 1e-4):
        // bad 1), 0.9 (best), 0.9 (bad 1), 0.95 (bad 2 > 1: halve, reset), 0.95 (bad 1),
        // 0.95 (bad 2: halve).
        let mut s = LrScheduler::new(0.4, "plateau:1:0.5".parse().unwrap(), 0, 9);
        let losses = [1.0, 0.99995, 0.9, 0.9, 0.95, 0.95, 0.95, 0.5];
        let mut got = Vec::new();
        for (e, &loss) in (1..).zip(&losses) {
            got.push(s.lr(e));
            s.end_epoch(e, loss);
        }
        got.push(s.lr(9));
        check(&got, &[0.4, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1]);
        // Warm-up epochs are not counted: 2 warm-up epochs with rising losses, then the
        // first counted loss is the best.
        let mut s = LrScheduler::new(0.3, "plateau:0:0.1".parse().unwrap(), 2, 5);
        s.end_epoch(1, 1.0);
        s.end_epoch(2, 2.0);
        s.end_epoch(3, 3.0);
        assert_eq!(s.lr(4), 0.3);
        s.end_epoch(4, 3.0);
        assert_relative_eq!(s.lr(5), 0.03, max_relative = 1e-15);
    }

    #[test]
    fn text_forms_parse_and_print_back() {
        for text in [
            "constant",
            "step:5:0.5",
            "cosine",
            "cosine:0.001",
            "plateau:3:0.5",
            "plateau:3:0.5:0.01",
        ] {
            let s: LrSchedule = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), s);
        }
        assert_eq!(
            "Step:10:0.1".parse::<LrSchedule>().unwrap(),
            LrSchedule::Step {
                every: 10,
                gamma: 0.1
            }
        );
        for (bad, field) in [
            ("linear", "lr_schedule"),
            ("step:5", "lr_schedule"),
            ("step:x:0.5", "lr_schedule.every"),
            ("step:-1:0.5", "lr_schedule.every"),
            ("step:5:half", "lr_schedule.gamma"),
            ("cosine:1:2", "lr_schedule"),
            ("plateau:2:0.5:0.1:9", "lr_schedule"),
            ("plateau:2.5:0.5", "lr_schedule.patience"),
        ] {
            match bad.parse::<LrSchedule>() {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_values_name_the_field() {
        for (text, lr, field) in [
            ("step:0:0.5", 0.1, "lr_schedule.every"),
            ("step:2:0", 0.1, "lr_schedule.gamma"),
            ("step:2:inf", 0.1, "lr_schedule.gamma"),
            ("cosine:0.2", 0.1, "lr_schedule.min_lr"),
            ("cosine:-0.1", 0.1, "lr_schedule.min_lr"),
            ("plateau:2:1", 0.1, "lr_schedule.factor"),
            ("plateau:2:0", 0.1, "lr_schedule.factor"),
            ("plateau:2:0.5:1", 0.1, "lr_schedule.threshold"),
            ("plateau:2:0.5:NaN", 0.1, "lr_schedule.threshold"),
        ] {
            let s: LrSchedule = text.parse().unwrap();
            match s.validate(lr) {
                Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
