//! Optimizers: plain SGD (the notebook's, the default), SGD with momentum or Nesterov
//! momentum, Adam and AdamW, each with weight decay, following PyTorch's documented update
//! rules (`torch.optim.SGD` with `dampening = 0`, `torch.optim.Adam`, `torch.optim.AdamW`).
//!
//! Which path a training step takes:
//! - The default, [`Optimizer::Sgd`] without weight decay, is [`Mlp::train_step`]: the
//!   update `p - lr * (g / rows)` is fused into the backward pass (and, in `f32` with
//!   AVX-512 or `f64` with a sparse first layer, into the fused kernels of
//!   [`glorot_tensor::fused`] and [`glorot_tensor::replay`]). Those fused kernels are
//!   plain SGD only. The notebook's replay and every default run take this path
//!   unchanged.
//! - Every other optimizer (and SGD with weight decay) is the fallback: [`Mlp::gradients`]
//!   computes the batch-mean gradients into the workspace, then [`OptimizerState::step`]
//!   applies the rule below element by element in the model's precision.
//!
//! The rules, for a parameter `p` with gradient `g` at step `t` (from 1), learning rate
//! `lr` and weight decay `wd` (PyTorch's pseudocode, `dampening = 0`, `maximize = false`):
//! - SGD: `g = g + wd * p`; `p = p - lr * g`.
//! - Momentum: `g = g + wd * p`; `b = g` at `t = 1`, else `b = mu * b + g`; `p = p - lr * b`.
//! - Nesterov: as momentum, then `p = p - lr * (g + mu * b)`.
//! - Adam: `g = g + wd * p`; `m = lerp(m, g, 1 - beta1)`; `v = beta2 * v + (1 - beta2) * g * g`;
//!   `p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`, with `m` and
//!   `v` starting at zero.
//! - AdamW: `p = p * (1 - lr * wd)` (decoupled weight decay), then Adam's update without
//!   the `wd * p` term.
//!
//! `lerp(m, g, w)` is PyTorch's: `m + w * (g - m)` for `w < 0.5`, else
//! `g - (g - m) * (1 - w)`. The scalars (`lr / (1 - beta1^t)`, `sqrt(1 - beta2^t)`) are
//! computed in `f64` and rounded to the model's precision once per step, as PyTorch
//! computes them in Python floats.

use std::fmt;

use glorot_tensor::Float;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::Workspace;
use crate::error::{Error, Result};
use crate::model::{Gradients, Mlp};
use crate::param::ParamId;

/// PyTorch's default `momentum` for the momentum optimizers when none is given (0.9, the
/// usual choice; `torch.optim.SGD` itself defaults to 0, which is plain SGD).
pub const DEFAULT_MOMENTUM: f64 = 0.9;
/// `torch.optim.Adam`'s default `betas[0]`.
pub const DEFAULT_BETA1: f64 = 0.9;
/// `torch.optim.Adam`'s default `betas[1]`.
pub const DEFAULT_BETA2: f64 = 0.999;
/// `torch.optim.Adam`'s default `eps`.
pub const DEFAULT_EPS: f64 = 1e-8;
/// `torch.optim.AdamW`'s default `weight_decay` (Adam's and SGD's is 0).
pub const DEFAULT_ADAMW_WEIGHT_DECAY: f64 = 0.01;

/// How parameters are updated from their gradients. Serialized with a `kind` tag:
/// `{"kind":"sgd","weight_decay":0.0}`, `{"kind":"momentum","momentum":0.9,...}`,
/// `{"kind":"adam","beta1":0.9,"beta2":0.999,"eps":1e-8,"weight_decay":0.0}`, ... (see
/// the [module docs](self) for the rules and which path each takes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Optimizer {
    /// Plain SGD, `p = p - lr * (g + wd * p)`. Without weight decay it is the notebook's
    /// update and the default, computed by the fused step.
    Sgd {
        /// Coupled L2 weight decay (finite, >= 0; default 0).
        #[serde(default)]
        weight_decay: f64,
    },
    /// SGD with (heavy-ball) momentum, `torch.optim.SGD(momentum=mu)`.
    Momentum {
        /// The momentum `mu`, in `[0, 1)`.
        momentum: f64,
        /// Coupled L2 weight decay (finite, >= 0; default 0).
        #[serde(default)]
        weight_decay: f64,
    },
    /// SGD with Nesterov momentum, `torch.optim.SGD(momentum=mu, nesterov=True)`.
    Nesterov {
        /// The momentum `mu`, in `(0, 1)` (PyTorch refuses Nesterov without momentum).
        momentum: f64,
        /// Coupled L2 weight decay (finite, >= 0; default 0).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam, `torch.optim.Adam`, with weight decay added to the gradient (coupled L2).
    Adam {
        /// Decay of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay of the second moment, in `[0, 1)`.
        beta2: f64,
        /// Added to `sqrt(v_hat)` (finite, > 0).
        eps: f64,
        /// Coupled L2 weight decay (finite, >= 0; default 0).
        #[serde(default)]
        weight_decay: f64,
    },
    /// AdamW, `torch.optim.AdamW`: Adam with decoupled weight decay. Serialized as
    /// `"adamw"`.
    #[serde(rename = "adamw")]
    AdamW {
        /// Decay of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay of the second moment, in `[0, 1)`.
        beta2: f64,
        /// Added to `sqrt(v_hat)` (finite, > 0).
        eps: f64,
        /// Decoupled weight decay (finite, >= 0).
        weight_decay: f64,
    },
}

impl Default for Optimizer {
    /// Plain SGD without weight decay: the notebook's update.
    fn default() -> Self {
        Optimizer::Sgd { weight_decay: 0.0 }
    }
}

impl fmt::Display for Optimizer {
    /// `sgd`, `momentum 0.9`, `adam betas (0.9, 0.999) eps 1e-8`, ..., followed by
    /// `, weight decay WD` when it is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Optimizer::Sgd { .. } => f.write_str("sgd")?,
            Optimizer::Momentum { momentum, .. } => write!(f, "momentum {momentum}")?,
            Optimizer::Nesterov { momentum, .. } => write!(f, "nesterov {momentum}")?,
            Optimizer::Adam {
                beta1, beta2, eps, ..
            } => write!(f, "adam betas ({beta1}, {beta2}) eps {eps:e}")?,
            Optimizer::AdamW {
                beta1, beta2, eps, ..
            } => write!(f, "adamw betas ({beta1}, {beta2}) eps {eps:e}")?,
        }
        let wd = self.weight_decay();
        if wd == 0.0 {
            Ok(())
        } else {
            write!(f, ", weight decay {wd}")
        }
    }
}

impl Optimizer {
    /// The serialized kind: `"sgd"`, `"momentum"`, `"nesterov"`, `"adam"` or `"adamw"`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Momentum { .. } => "momentum",
            Optimizer::Nesterov { .. } => "nesterov",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
        }
    }

    /// Whether this is the default (plain SGD without weight decay), which trains through
    /// the fused step [`Mlp::train_step`] bit for bit as before optimizers existed.
    pub fn is_default(&self) -> bool {
        *self == Optimizer::default()
    }

    /// The weight decay, whichever the kind.
    pub fn weight_decay(&self) -> f64 {
        match *self {
            Optimizer::Sgd { weight_decay }
            | Optimizer::Momentum { weight_decay, .. }
            | Optimizer::Nesterov { weight_decay, .. }
            | Optimizer::Adam { weight_decay, .. }
            | Optimizer::AdamW { weight_decay, .. } => weight_decay,
        }
    }

    /// Checks every value; the error names the field (`optimizer.momentum`, ...).
    ///
    /// Refused: a momentum outside `[0, 1)` (Nesterov: outside `(0, 1)`), a beta outside
    /// `[0, 1)`, an `eps` that is not finite and > 0, a weight decay that is not finite
    /// and >= 0.
    pub fn validate(&self) -> Result<()> {
        let wd = self.weight_decay();
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(Error::config(
                "optimizer.weight_decay",
                wd,
                "must be finite and >= 0",
            ));
        }
        match *self {
            Optimizer::Sgd { .. } => Ok(()),
            Optimizer::Momentum { momentum, .. } => {
                if (0.0..1.0).contains(&momentum) {
                    Ok(())
                } else {
                    Err(Error::config(
                        "optimizer.momentum",
                        momentum,
                        "must be in [0, 1)",
                    ))
                }
            }
            Optimizer::Nesterov { momentum, .. } => {
                if momentum > 0.0 && momentum < 1.0 {
                    Ok(())
                } else {
                    Err(Error::config(
                        "optimizer.momentum",
                        momentum,
                        "Nesterov momentum must be in (0, 1)",
                    ))
                }
            }
            Optimizer::Adam {
                beta1, beta2, eps, ..
            }
            | Optimizer::AdamW {
                beta1, beta2, eps, ..
            } => {
                if !(0.0..1.0).contains(&beta1) {
                    return Err(Error::config("optimizer.beta1", beta1, "must be in [0, 1)"));
                }
                if !(0.0..1.0).contains(&beta2) {
                    return Err(Error::config("optimizer.beta2", beta2, "must be in [0, 1)"));
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(Error::config(
                        "optimizer.eps",
                        eps,
                        "must be finite and > 0",
                    ));
                }
                Ok(())
            }
        }
    }
}

const SYNTAX: &str = "expected sgd, momentum[:M], nesterov[:M], adam[:BETA1:BETA2[:EPS]] or \
                      adamw[:BETA1:BETA2[:EPS]]";

impl Optimizer {
    /// The same optimizer with weight decay `weight_decay` (whichever the kind).
    pub fn with_weight_decay(self, weight_decay: f64) -> Self {
        match self {
            Optimizer::Sgd { .. } => Optimizer::Sgd { weight_decay },
            Optimizer::Momentum { momentum, .. } => Optimizer::Momentum {
                momentum,
                weight_decay,
            },
            Optimizer::Nesterov { momentum, .. } => Optimizer::Nesterov {
                momentum,
                weight_decay,
            },
            Optimizer::Adam {
                beta1, beta2, eps, ..
            } => Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            },
            Optimizer::AdamW {
                beta1, beta2, eps, ..
            } => Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            },
        }
    }
}

impl std::str::FromStr for Optimizer {
    type Err = Error;

    /// The text form of grid files and `glorot search run --optimizer`: `sgd`,
    /// `momentum` or `momentum:M`, `nesterov` or `nesterov:M` (default
    /// [`DEFAULT_MOMENTUM`]), `adam`, `adam:BETA1:BETA2` or `adam:BETA1:BETA2:EPS` (default
    /// PyTorch's), and `adamw` likewise; case-insensitive. The weight decay is the kind's
    /// default (0; AdamW [`DEFAULT_ADAMW_WEIGHT_DECAY`]); set it with
    /// [`Optimizer::with_weight_decay`]. The values are checked by
    /// [`Optimizer::validate`], not here.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let num = |field: &str, v: &str| -> Result<f64> {
            v.trim()
                .parse()
                .map_err(|_| Error::config(format!("optimizer.{field}"), v, "expected a number"))
        };
        let adam = |rest: &[&str]| -> Result<(f64, f64, f64)> {
            match rest {
                [] => Ok((DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS)),
                [b1, b2] => Ok((num("beta1", b1)?, num("beta2", b2)?, DEFAULT_EPS)),
                [b1, b2, eps] => Ok((num("beta1", b1)?, num("beta2", b2)?, num("eps", eps)?)),
                _ => Err(Error::config("optimizer", s, SYNTAX)),
            }
        };
        let kind = parts[0].trim().to_ascii_lowercase();
        match (kind.as_str(), &parts[1..]) {
            ("sgd", []) => Ok(Optimizer::Sgd { weight_decay: 0.0 }),
            ("momentum", []) => Ok(Optimizer::Momentum {
                momentum: DEFAULT_MOMENTUM,
                weight_decay: 0.0,
            }),
            ("momentum", [m]) => Ok(Optimizer::Momentum {
                momentum: num("momentum", m)?,
                weight_decay: 0.0,
            }),
            ("nesterov", []) => Ok(Optimizer::Nesterov {
                momentum: DEFAULT_MOMENTUM,
                weight_decay: 0.0,
            }),
            ("nesterov", [m]) => Ok(Optimizer::Nesterov {
                momentum: num("momentum", m)?,
                weight_decay: 0.0,
            }),
            ("adam", rest) => {
                let (beta1, beta2, eps) = adam(rest)?;
                Ok(Optimizer::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay: 0.0,
                })
            }
            ("adamw", rest) => {
                let (beta1, beta2, eps) = adam(rest)?;
                Ok(Optimizer::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay: DEFAULT_ADAMW_WEIGHT_DECAY,
                })
            }
            _ => Err(Error::config("optimizer", s, SYNTAX)),
        }
    }
}

/// An optimizer's state for one model: the step count and, per parameter (in
/// [`ParamId::all`] order), the momentum buffer or Adam's first and second moments.
/// Allocated once by [`OptimizerState::new`]; [`OptimizerState::step`] allocates nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<F: Float> {
    optimizer: Optimizer,
    steps: u64,
    /// Momentum buffer (SGD kinds) or first moment (Adam kinds); empty for plain SGD.
    first: Vec<Vec<F>>,
    /// Second moment (Adam kinds); empty otherwise.
    second: Vec<Vec<F>>,
}

impl<F: Float> OptimizerState<F> {
    /// Zeroed state for `optimizer` and `model`'s parameters.
    ///
    /// # Errors
    /// As [`Optimizer::validate`].
    pub fn new(optimizer: Optimizer, model: &Mlp<F>) -> Result<Self> {
        optimizer.validate()?;
        let sizes = || {
            ParamId::all(model.depth())
                .map(|id| vec![F::zero(); model.param(id).map_or(0, <[F]>::len)])
                .collect::<Vec<_>>()
        };
        let (first, second) = match optimizer {
            Optimizer::Sgd { .. } => (Vec::new(), Vec::new()),
            Optimizer::Momentum { .. } | Optimizer::Nesterov { .. } => (sizes(), Vec::new()),
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => (sizes(), sizes()),
        };
        Ok(Self {
            optimizer,
            steps: 0,
            first,
            second,
        })
    }

    /// The optimizer.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The step count and the per-parameter buffers (first moment or momentum, second
    /// moment), for [`crate::Checkpoint`].
    pub(crate) fn parts(&self) -> (u64, &[Vec<F>], &[Vec<F>]) {
        (self.steps, &self.first, &self.second)
    }

    /// A state restored from [`OptimizerState::parts`]; `None` when the buffers do not
    /// have the sizes `optimizer` needs for `model`.
    pub(crate) fn from_parts(
        optimizer: Optimizer,
        model: &Mlp<F>,
        steps: u64,
        first: Vec<Vec<F>>,
        second: Vec<Vec<F>>,
    ) -> Result<Option<Self>> {
        let zero = Self::new(optimizer, model)?;
        let sizes = |v: &[Vec<F>]| v.iter().map(Vec::len).collect::<Vec<_>>();
        if sizes(&zero.first) != sizes(&first) || sizes(&zero.second) != sizes(&second) {
            return Ok(None);
        }
        Ok(Some(Self {
            optimizer,
            steps,
            first,
            second,
        }))
    }

    /// Updates every parameter of `model` from `grads` (the batch-mean gradients of
    /// [`Mlp::gradients`], see [`Workspace::gradients`]) with learning rate `lr`.
    ///
    /// # Panics
    /// If `model` or `grads` do not have the parameters this state was made for.
    #[track_caller]
    pub fn step(&mut self, model: &mut Mlp<F>, grads: &Gradients<F>, lr: f64) {
        self.steps += 1;
        let t = self.steps;
        let first_step = t == 1;
        let shape = "the optimizer state was made for another architecture";
        for (i, id) in ParamId::all(model.depth()).enumerate() {
            let p = model.param_mut(id).expect(shape);
            let g = grads.param(id).expect(shape);
            assert_eq!(p.len(), g.len(), "{shape}");
            match self.optimizer {
                Optimizer::Sgd { weight_decay } => {
                    let (lr, wd) = (F::from_f64(lr), F::from_f64(weight_decay));
                    for (p, &g) in p.iter_mut().zip(g) {
                        *p = *p - lr * (g + wd * *p);
                    }
                }
                Optimizer::Momentum {
                    momentum,
                    weight_decay,
                }
                | Optimizer::Nesterov {
                    momentum,
                    weight_decay,
                } => {
                    let nesterov = matches!(self.optimizer, Optimizer::Nesterov { .. });
                    let b = &mut self.first[i];
                    assert_eq!(b.len(), p.len(), "{shape}");
                    let (lr, wd, mu) = (
                        F::from_f64(lr),
                        F::from_f64(weight_decay),
                        F::from_f64(momentum),
                    );
                    for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                        let d = g + wd * *p;
                        *b = if first_step { d } else { mu * *b + d };
                        let d = if nesterov { d + mu * *b } else { *b };
                        *p = *p - lr * d;
                    }
                }
                Optimizer::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                }
                | Optimizer::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let decoupled = matches!(self.optimizer, Optimizer::AdamW { .. });
                    let (m, v) = (&mut self.first[i], &mut self.second[i]);
                    assert!(m.len() == p.len() && v.len() == p.len(), "{shape}");
                    let exponent = i32::try_from(t).unwrap_or(i32::MAX);
                    let correction1 = 1.0 - beta1.powi(exponent);
                    let correction2 = 1.0 - beta2.powi(exponent);
                    let step_size = F::from_f64(lr / correction1);
                    let sqrt_correction2 = F::from_f64(correction2.sqrt());
                    let decay = F::from_f64(1.0 - lr * weight_decay);
                    let wd = F::from_f64(weight_decay);
                    let w1 = 1.0 - beta1;
                    let (w1f, w1c) = (F::from_f64(w1), F::from_f64(1.0 - w1));
                    let (b2, w2) = (F::from_f64(beta2), F::from_f64(1.0 - beta2));
                    let eps = F::from_f64(eps);
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v) {
                        let g = if decoupled {
                            *p = *p * decay;
                            g
                        } else {
                            g + wd * *p
                        };
                        // torch.lerp(m, g, w1).
                        *m = if w1 < 0.5 {
                            *m + w1f * (g - *m)
                        } else {
                            g - (g - *m) * w1c
                        };
                        // exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2).
                        *v = *v * b2 + w2 * (g * g);
                        let denom = v.sqrt() / sqrt_correction2 + eps;
                        *p = *p - step_size * (*m / denom);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_reads_every_kind_with_pytorch_defaults() {
        #[track_caller]
        fn check(text: &str, expect: Optimizer) {
            assert_eq!(text.parse::<Optimizer>().unwrap(), expect, "{text}");
        }
        check("sgd", Optimizer::default());
        check(
            "Momentum",
            Optimizer::Momentum {
                momentum: 0.9,
                weight_decay: 0.0,
            },
        );
        check(
            "nesterov:0.95",
            Optimizer::Nesterov {
                momentum: 0.95,
                weight_decay: 0.0,
            },
        );
        // torch.optim.Adam's defaults: betas (0.9, 0.999), eps 1e-8.
        check(
            "adam",
            Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        // torch.optim.AdamW's default weight decay is 0.01.
        check(
            "adamw:0.8:0.99:1e-6",
            Optimizer::AdamW {
                beta1: 0.8,
                beta2: 0.99,
                eps: 1e-6,
                weight_decay: 0.01,
            },
        );
        for bad in ["rmsprop", "sgd:0.9", "adam:0.9", "momentum:x", ""] {
            assert!(bad.parse::<Optimizer>().is_err(), "{bad}");
        }
        let wd = "nesterov"
            .parse::<Optimizer>()
            .unwrap()
            .with_weight_decay(5e-4);
        assert_eq!(wd.weight_decay(), 5e-4);
        assert_eq!(wd.name(), "nesterov");
    }

    #[track_caller]
    fn check_refused(optimizer: Optimizer, field: &str) {
        match optimizer.validate() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field, "{optimizer:?}"),
            other => panic!("expected an error on {field} for {optimizer:?}, got {other:?}"),
        }
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let adam = Optimizer::Adam {
            beta1: DEFAULT_BETA1,
            beta2: DEFAULT_BETA2,
            eps: DEFAULT_EPS,
            weight_decay: 0.0,
        };
        assert!(adam.validate().is_ok());
        assert!(Optimizer::default().validate().is_ok());
        let momentum = |momentum| Optimizer::Momentum {
            momentum,
            weight_decay: 0.0,
        };
        assert!(momentum(0.0).validate().is_ok());
        for bad in [1.0, -0.1, f64::NAN, 2.0] {
            check_refused(momentum(bad), "optimizer.momentum");
        }
        for bad in [0.0, 1.0, f64::INFINITY] {
            check_refused(
                Optimizer::Nesterov {
                    momentum: bad,
                    weight_decay: 0.0,
                },
                "optimizer.momentum",
            );
        }
        for bad in [-1e-3, f64::NAN, f64::INFINITY] {
            check_refused(
                Optimizer::Sgd { weight_decay: bad },
                "optimizer.weight_decay",
            );
        }
        let with = |beta1, beta2, eps| Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay: 0.01,
        };
        check_refused(with(1.0, 0.999, 1e-8), "optimizer.beta1");
        check_refused(with(-0.5, 0.999, 1e-8), "optimizer.beta1");
        check_refused(with(0.9, 1.0, 1e-8), "optimizer.beta2");
        check_refused(with(0.9, f64::NAN, 1e-8), "optimizer.beta2");
        check_refused(with(0.9, 0.999, 0.0), "optimizer.eps");
        check_refused(with(0.9, 0.999, -1e-8), "optimizer.eps");
        check_refused(with(0.9, 0.999, f64::INFINITY), "optimizer.eps");
    }

    #[test]
    fn serialized_forms_are_stable() {
        let check = |o: Optimizer, json: &str| {
            assert_eq!(serde_json::to_string(&o).unwrap(), json);
            assert_eq!(serde_json::from_str::<Optimizer>(json).unwrap(), o);
        };
        check(Optimizer::default(), r#"{"kind":"sgd","weight_decay":0.0}"#);
        check(
            Optimizer::Nesterov {
                momentum: 0.9,
                weight_decay: 0.0,
            },
            r#"{"kind":"nesterov","momentum":0.9,"weight_decay":0.0}"#,
        );
        check(
            Optimizer::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
            },
            r#"{"kind":"adamw","beta1":0.9,"beta2":0.999,"eps":1e-8,"weight_decay":0.01}"#,
        );
        // Weight decay may be left out, except for AdamW.
        let o: Optimizer = serde_json::from_str(r#"{"kind":"momentum","momentum":0.5}"#).unwrap();
        assert_eq!(
            o,
            Optimizer::Momentum {
                momentum: 0.5,
                weight_decay: 0.0
            }
        );
        assert!(serde_json::from_str::<Optimizer>(r#"{"kind":"adamw","beta1":0.9}"#).is_err());
        assert!(serde_json::from_str::<Optimizer>(r#"{"kind":"sgd","momentum":0.9}"#).is_err());
        assert!(Optimizer::default().is_default());
        assert_eq!(Optimizer::default().to_string(), "sgd");
        let adamw = Optimizer::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        assert_eq!(
            adamw.to_string(),
            "adamw betas (0.9, 0.999) eps 1e-8, weight decay 0.01"
        );
        assert!(!Optimizer::Sgd { weight_decay: 0.1 }.is_default());
    }
}
