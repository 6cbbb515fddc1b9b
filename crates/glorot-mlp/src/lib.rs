//! The notebook's multilayer perceptron, generalized: any depth, `f32` or `f64`, a
//! reproducible minibatch-SGD trainer, gradient checking, and safetensors weights.
//!
//! The main design decision is that the `f64` replay path performs the notebook's
//! floating-point operations in the notebook's order (`x @ w` by GEMM, then `+ b`, then the
//! activation; the gradients `(h^T @ delta) / n` and `np.mean(delta, axis=0)`; the update
//! `p - lr * g`), so that with [`Shuffle::Never`] and the notebook's NumPy initialization
//! ([`WeightSource::NumpyReplay`]) it reproduces the notebook's printed losses. Everything
//! else (shuffling, other heads, seeded initializers) is an addition on top that the
//! replay does not touch.
//!
//! - [`ModelConfig`] / [`TrainConfig`]: serde hyperparameters, checked by `validate()`.
//! - [`Mlp`]: parameters, forward, loss, backpropagation, SGD step, through a preallocated
//!   [`Workspace`] (a step allocates nothing); [`Mlp::save`] / [`Mlp::load`] in
//!   safetensors ([`io`]).
//! - [`MlpFloat`]: the element type's bound for computing (`f32` or `f64`); each
//!   precision's fast path is chosen through it at compile time.
//! - [`Optimizer`] (SGD, momentum, Nesterov, Adam, AdamW; [`optim`]) and [`LrSchedule`]
//!   (constant, step, cosine, plateau, with warm-up; [`schedule`]): fields of
//!   [`TrainConfig`]. The default, plain SGD at a constant rate, is the fused step.
//! - [`Trainer`] / [`train`]: epochs over borrowed data ([`FitData`]), per-epoch metrics
//!   ([`EpochMetrics`], [`TrainReport`]), progress through an [`Observer`], divergence as
//!   [`Status::Diverged`].
//! - [`ConfusionMatrix`]: `counts[true][predicted]` and per-class accuracy, from
//!   [`Evaluator::evaluate_confusion`] (the same pass as the accuracy).
//! - [`check_gradients`] and [`notebook_grad_check`]: backpropagation against finite
//!   differences.
//!
//! ```
//! # extern crate blas_src;
//! use glorot_mlp::{EvalData, FitData, Head, ModelConfig, NoopObserver, TrainConfig, TrainData};
//! use glorot_tensor::{Activation, Init, one_hot};
//! use ndarray::Array2;
//!
//! // Class = which of the two inputs is larger.
//! let x = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 11.0);
//! let labels: Vec<u8> = x.rows().into_iter().map(|r| u8::from(r[1] > r[0])).collect();
//! let y = one_hot::<f32>(&labels, 2);
//!
//! let model = ModelConfig {
//!     layers: vec![2, 16, 2],
//!     activation: Activation::Tanh,
//!     head: Head::SoftmaxCrossEntropy,
//!     init: Init::GlorotUniform,
//! }
//! .validate()?;
//! let config = TrainConfig { epochs: 30, batch_size: 10, learning_rate: 0.5, ..TrainConfig::default() }
//!     .validate()?;
//! let data = FitData {
//!     train: TrainData::new(x.view(), y.view())?,
//!     validation: EvalData::new(x.view(), &labels)?,
//!     test: None,
//! };
//! let (mlp, report) = glorot_mlp::train::<f32>(&model, &config, &data, &mut NoopObserver)?;
//! assert!(report.final_val_accuracy().unwrap() > 90.0);
//! assert_eq!(mlp.num_parameters(), 2 * 16 + 16 + 16 * 2 + 2);
//! # Ok::<(), glorot_mlp::Error>(())
//! ```
#![warn(missing_docs)]

#[cfg(test)]
extern crate blas_src;

mod config;
mod confusion;
mod data;
pub mod early_stopping;
mod error;
pub mod gradcheck;
mod init;
pub mod io;
pub mod memory;
mod model;
pub mod optim;
mod param;
pub mod probe;
pub mod schedule;
pub mod seed_text;
mod train;

pub use config::{
    Arithmetic, Head, ModelConfig, Precision, Shuffle, TrainConfig, ValidModelConfig,
    ValidTrainConfig,
};
pub use confusion::{ClassAccuracy, ConfusionMatrix};
pub use data::{EvalData, FitData, TrainData};
pub use early_stopping::{EarlyStopping, Monitor, StopReason};
pub use error::{Error, Result};
pub use gradcheck::{
    GradCheckOptions, GradCheckReport, NotebookGradCheck, NotebookStep, ParamCheck, Stencil,
    check_gradients, notebook_grad_check,
};
pub use init::{INIT_STREAM, SHUFFLE_STREAM, WeightSource, init_rng, parse_init, shuffle_rng};
pub use io::{WeightsInfo, read_weights_info};
pub use model::{Gradients, Mlp, MlpFloat, Workspace};
pub use optim::{Optimizer, OptimizerState};
pub use param::{ParamId, ParamKind};
pub use probe::{Probe, ProbeSchedule, ProbeSnapshot};
pub use schedule::{LrSchedule, LrScheduler};
pub use train::{
    BatchEvent, EVAL_CHUNK, EpochMetrics, Evaluation, Evaluator, NoopObserver, Observer, Status,
    TrainReport, Trainer, train,
};
pub use train::{CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, Checkpoint, continue_training};
// The tensor crate's enums appear in this crate's configs; re-exported for convenience.
/// The instruction set the model's kernels run with: every workspace takes
/// [`isa::Isa::default_for_process`] when it is made.
pub use glorot_tensor::isa;
pub use glorot_tensor::{Activation, Float, Init};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
