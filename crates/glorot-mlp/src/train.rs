//! The training loop: minibatch SGD with per-epoch validation, progress through an
//! [`Observer`], divergence detection, and serde results.

use std::time::Instant;

use glorot_tensor::{Float, argmax_rows, permutation};
use ndarray::{Array2, Zip, s};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{Arithmetic, Precision, Shuffle, ValidModelConfig, ValidTrainConfig};
use crate::confusion::ConfusionMatrix;
use crate::data::{EvalData, FitData};
use crate::early_stopping::{EarlyStopper, StopReason, Verdict};
use crate::error::{Error, Result};
use crate::init::{WeightSource, shuffle_rng};
use crate::model::{Mlp, MlpFloat, Workspace};
use crate::optim::OptimizerState;
use crate::probe::{Probe, ProbeSnapshot};
use crate::schedule::LrScheduler;

// Checkpoints and continued runs (search strategies): a separate module.
mod checkpoint;
pub use checkpoint::{CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, Checkpoint, continue_training};

/// Evaluation forwards at most this many rows at a time (10,000: the notebook's whole
/// validation set in one forward pass, as its `test` does).
pub const EVAL_CHUNK: usize = 10_000;

/// Epoch records allocated before the first epoch; more grow the curve as they finish.
const PREALLOCATED_EPOCHS: usize = 1024;

/// Loss and accuracy of a model on labelled data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss over the rows (the head's loss against one-hot labels).
    pub loss: f64,
    /// `100 * correct / samples`, computed as `(correct * 100.0) / samples` in `f64`: for
    /// 10,000 samples this is bit for bit the notebook's `np.sum(labels == targets) / 100`.
    pub accuracy: f64,
    /// Rows whose argmax output (first maximum wins, as `np.argmax`) equals the label.
    pub correct: usize,
    /// Rows evaluated.
    pub samples: usize,
}

/// Evaluates models on labelled data in chunks of at most [`EVAL_CHUNK`] rows, with
/// buffers allocated once.
#[derive(Clone, Debug)]
pub struct Evaluator<F: MlpFloat> {
    ws: Workspace<F>,
    one_hot: Array2<F>,
    pred: Vec<usize>,
}

impl<F: MlpFloat> Evaluator<F> {
    /// Buffers for `config`'s architecture and data of up to `max_rows` rows (more rows are
    /// fine: they are processed in chunks of `min(max_rows, EVAL_CHUNK)`).
    pub fn new(config: &ValidModelConfig, max_rows: usize) -> Self {
        Self::with_arithmetic(config, max_rows, Arithmetic::Fast)
    }

    /// [`Evaluator::new`] computing the products as `arithmetic` says.
    pub fn with_arithmetic(
        config: &ValidModelConfig,
        max_rows: usize,
        arithmetic: Arithmetic,
    ) -> Self {
        let rows = max_rows.clamp(1, EVAL_CHUNK);
        Self {
            ws: Workspace::inference_with_arithmetic(config, rows, arithmetic),
            one_hot: Array2::zeros((rows, config.outputs())),
            pred: vec![0; rows],
        }
    }

    /// Mean loss and accuracy of `model` on `data`.
    ///
    /// The loss of a single chunk is the head's batch-mean loss; over several chunks it is
    /// `sum(chunk_mean * chunk_rows) / rows`. A non-finite loss is returned as is (the
    /// trainer treats it as divergence).
    ///
    /// # Errors
    /// [`Error::DataShape`] when the inputs do not have the model's width,
    /// [`Error::LabelOutOfRange`] when a label is not below the model's output count.
    ///
    /// # Panics
    /// If the evaluator was made for another architecture.
    pub fn evaluate(&mut self, model: &Mlp<F>, data: &EvalData<'_, F>) -> Result<Evaluation> {
        check_inputs("evaluation inputs: columns", model, data.x().ncols())?;
        data.check_labels("evaluation", model.config().outputs())?;
        Ok(self.evaluate_unchecked(model, data))
    }

    /// As [`Evaluator::evaluate`], also counting every row's label and predicted class in
    /// a [`ConfusionMatrix`] of the model's outputs: the same pass, so the matrix's
    /// [`correct`](ConfusionMatrix::correct) and [`accuracy`](ConfusionMatrix::accuracy)
    /// are the evaluation's.
    ///
    /// # Errors
    /// As [`Evaluator::evaluate`].
    ///
    /// # Panics
    /// As [`Evaluator::evaluate`].
    pub fn evaluate_confusion(
        &mut self,
        model: &Mlp<F>,
        data: &EvalData<'_, F>,
    ) -> Result<(Evaluation, ConfusionMatrix)> {
        check_inputs("evaluation inputs: columns", model, data.x().ncols())?;
        data.check_labels("evaluation", model.config().outputs())?;
        let mut confusion = ConfusionMatrix::new(model.config().outputs());
        let evaluation = self.evaluate_counting(model, data, Some(&mut confusion));
        Ok((evaluation, confusion))
    }

    fn evaluate_unchecked(&mut self, model: &Mlp<F>, data: &EvalData<'_, F>) -> Evaluation {
        self.evaluate_counting(model, data, None)
    }

    fn evaluate_counting(
        &mut self,
        model: &Mlp<F>,
        data: &EvalData<'_, F>,
        mut confusion: Option<&mut ConfusionMatrix>,
    ) -> Evaluation {
        let n = data.len();
        let chunk = self.ws.capacity();
        let mut correct = 0;
        let mut weighted = 0.0;
        let mut single = None;
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let rows = end - start;
            let labels = &data.labels()[start..end];
            let mut y = self.one_hot.slice_mut(s![..rows, ..]);
            y.fill(F::zero());
            for (i, &l) in labels.iter().enumerate() {
                y[[i, usize::from(l)]] = F::one();
            }
            model.forward(data.x().slice(s![start..end, ..]), &mut self.ws);
            let loss = model
                .loss(&self.ws, self.one_hot.slice(s![..rows, ..]))
                .to_f64();
            if rows == n {
                single = Some(loss);
            }
            weighted += loss * rows as f64;
            let pred = &mut self.pred[..rows];
            argmax_rows(self.ws.output(), pred);
            if let Some(m) = confusion.as_deref_mut() {
                for (&p, &l) in pred.iter().zip(labels) {
                    m.record(usize::from(l), p);
                }
            }
            correct += pred
                .iter()
                .zip(labels)
                .filter(|&(&p, &l)| p == usize::from(l))
                .count();
        }
        Evaluation {
            loss: single.unwrap_or(weighted / n as f64),
            accuracy: (correct as f64 * 100.0) / n as f64,
            correct,
            samples: n,
        }
    }
}

fn check_inputs<F: Float>(what: &'static str, model: &Mlp<F>, found: usize) -> Result<()> {
    let expected = model.config().inputs();
    if found == expected {
        Ok(())
    } else {
        Err(Error::DataShape {
            what,
            expected,
            found,
        })
    }
}

/// One finished epoch. Field names are stable: results JSON and plots read them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// The notebook's training loss: the mean of the per-batch losses (summed in order in
    /// `f64`, divided by the number of batches), each measured before its update.
    pub train_loss: f64,
    /// Mean loss on the validation set after the epoch.
    pub val_loss: f64,
    /// Validation accuracy in percent after the epoch (see [`Evaluation::accuracy`]).
    pub val_accuracy: f64,
    /// Wall time of the epoch in seconds, training and validation.
    pub seconds: f64,
    /// Wall time of the epoch's SGD steps alone, in seconds.
    pub train_seconds: f64,
    /// The learning rate the epoch trained with (see [`crate::schedule`]); absent in files
    /// written before schedules existed, whose rate was the config's `learning_rate` in
    /// every epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

/// How a run ended. Serialized with a `kind` tag: `{"kind":"completed"}`,
/// `{"kind":"diverged","epoch":3,"batch":17}`, `{"kind":"cancelled","epoch":2}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Status {
    /// The run ended normally: every epoch ran, or early stopping ended it (see
    /// [`TrainReport::stop_reason`]).
    Completed,
    /// A loss became non-finite (NaN or infinite) in epoch `epoch` (from 1): the training
    /// loss of batch `batch` (from 1), or the validation loss after the epoch when `batch`
    /// is `None`. That epoch is not recorded and the run stopped there.
    Diverged {
        /// Epoch, from 1.
        epoch: usize,
        /// Batch within the epoch, from 1; `None` for the validation loss.
        batch: Option<usize>,
    },
    /// The observer asked to stop during epoch `epoch` (from 1); that epoch is not
    /// recorded.
    Cancelled {
        /// Epoch, from 1.
        epoch: usize,
    },
}

/// The record of a run. Field names are stable: results JSON and plots read them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// The finished epochs, in order.
    pub epochs: Vec<EpochMetrics>,
    /// How the run ended.
    pub status: Status,
    /// With early stopping ([`crate::TrainConfig::early_stopping`]) and a run that ended
    /// normally: the epoch (from 1) whose weights the run ends with, the best one by the
    /// monitored metric. `None` otherwise (the last epoch's weights are kept); left out of
    /// the serialized form then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<usize>,
    /// With early stopping and a run that ended normally: whether every epoch ran or early
    /// stopping ended it. `None` otherwise (see `status`); left out of the serialized form
    /// then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Test accuracy in percent of the model the run ends with (after the last epoch, or
    /// of the kept epoch's weights under early stopping), when test data was given and the
    /// run did not diverge.
    pub test_accuracy: Option<f64>,
    /// Test loss of the same model, under the same conditions.
    pub test_loss: Option<f64>,
    /// Training rows.
    pub train_samples: usize,
    /// Validation rows.
    pub validation_samples: usize,
    /// Minibatches per epoch (`ceil(train_samples / batch_size)`; the last may be partial).
    pub batches_per_epoch: usize,
    /// Trainable parameters of the model.
    pub parameters: usize,
    /// Element type of the computation.
    pub precision: Precision,
    /// Wall time of the whole run in seconds.
    pub seconds: f64,
}

impl TrainReport {
    /// Whether the run diverged.
    pub fn diverged(&self) -> bool {
        matches!(self.status, Status::Diverged { .. })
    }

    /// Validation accuracy of the model the run ends with: after the last finished epoch,
    /// or of the [`TrainReport::kept_epoch`] under early stopping; `None` when the run
    /// diverged or finished no epoch, so a diverged run can never rank as best.
    pub fn final_val_accuracy(&self) -> Option<f64> {
        if self.diverged() {
            return None;
        }
        self.final_epoch().map(|m| m.val_accuracy)
    }

    /// The metrics of the epoch whose weights the run ends with: the kept epoch under early
    /// stopping, else the last finished one.
    pub fn final_epoch(&self) -> Option<&EpochMetrics> {
        match self.kept_epoch {
            Some(kept) => self.epochs.iter().find(|m| m.epoch == kept),
            None => self.epochs.last(),
        }
    }

    /// The best validation accuracy over the finished epochs; `None` as for
    /// [`TrainReport::final_val_accuracy`].
    pub fn best_val_accuracy(&self) -> Option<f64> {
        if self.diverged() {
            return None;
        }
        self.epochs.iter().map(|m| m.val_accuracy).reduce(f64::max)
    }
}

/// A batch finished; sent to [`Observer::on_batch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchEvent {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Batch within the epoch, from 1.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// The batch's loss (before its update).
    pub loss: f64,
}

/// Receives progress from [`Trainer::fit`]; every method has a no-op default. The library
/// never prints: binaries implement this to draw progress bars or log.
pub trait Observer {
    /// Epoch `epoch` (from 1) of `batches` minibatches starts.
    fn on_epoch_start(&mut self, epoch: usize, batches: usize) {
        let _ = (epoch, batches);
    }
    /// A minibatch finished (its loss is finite).
    fn on_batch(&mut self, event: &BatchEvent) {
        let _ = event;
    }
    /// An epoch finished and was validated.
    fn on_epoch_end(&mut self, metrics: &EpochMetrics) {
        let _ = metrics;
    }
    /// A measurement of the [`Probe`] set with [`Trainer::set_probe`], at one of its
    /// moments (never called without a probe).
    fn on_probe(&mut self, snapshot: &ProbeSnapshot) {
        let _ = snapshot;
    }
    /// Polled after every batch; returning true ends the run as [`Status::Cancelled`].
    fn should_stop(&self) -> bool {
        false
    }
}

/// An [`Observer`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// Trains one model with minibatch SGD as the notebook's `train` does, generalized.
///
/// The default optimizer (plain SGD, [`crate::Optimizer::Sgd`] without weight decay) steps
/// through the fused [`Mlp::train_step`]; every other optimizer through
/// [`Mlp::gradients`] then [`OptimizerState::step`] (see [`crate::optim`]). The learning
/// rate of each epoch comes from the config's schedule and warm-up ([`LrScheduler`]).
///
/// Per epoch: order the rows (the data's order for [`Shuffle::Never`], a fresh permutation
/// from [`crate::shuffle_rng`] for [`Shuffle::EveryEpoch`]); step through minibatches of
/// `batch_size` rows, the last one partial (kept and averaged over its own size); then
/// validate. Unshuffled batches are views into the caller's data; shuffled ones are
/// gathered into a preallocated buffer. With the same seed, precision and BLAS thread
/// count, results are bit-identical.
#[derive(Clone, Debug)]
pub struct Trainer<F: MlpFloat> {
    config: ValidTrainConfig,
    model: Mlp<F>,
    shuffle_rng: ChaCha8Rng,
    buffers: Option<Buffers<F>>,
    /// The optimizer's state (momentum buffers or moments), kept across calls of
    /// [`Trainer::fit`].
    optimizer: OptimizerState<F>,
    /// The per-layer probe of [`Trainer::set_probe`], if any.
    probe: Option<Probe<F>>,
    /// Parameter updates since the trainer was made (the probe's clock).
    updates: usize,
}

#[derive(Clone, Debug)]
struct Buffers<F: MlpFloat> {
    batch_rows: usize,
    eval_rows: usize,
    ws: Workspace<F>,
    xb: Array2<F>,
    yb: Array2<F>,
    eval: Evaluator<F>,
}

impl<F: MlpFloat> Trainer<F> {
    /// A trainer for `model` (freshly initialized, or loaded from a weights file).
    ///
    /// # Errors
    /// [`Error::PrecisionMismatch`] when the config's precision is not `F`.
    pub fn new(model: Mlp<F>, config: ValidTrainConfig) -> Result<Self> {
        let optimizer = OptimizerState::new(config.optimizer(), &model)?;
        if config.precision() != Precision::of::<F>() {
            return Err(Error::PrecisionMismatch {
                config: config.precision().name(),
                model: F::NAME,
            });
        }
        Ok(Self {
            shuffle_rng: shuffle_rng(config.seed()),
            config,
            model,
            buffers: None,
            optimizer,
            probe: None,
            updates: 0,
        })
    }

    /// Measures per-layer statistics on `probe`'s batch at the moments of its schedule,
    /// sending each [`ProbeSnapshot`] to [`Observer::on_probe`] (see [`crate::probe`]).
    /// The probe computes in its own buffers: the training results are the same bits as
    /// without it.
    ///
    /// # Errors
    /// [`Error::DataShape`] when the probe's widths do not match the model.
    pub fn set_probe(&mut self, probe: Probe<F>) -> Result<()> {
        crate::probe::check_shapes(&self.model, &probe)?;
        self.probe = Some(probe);
        Ok(())
    }

    /// Parameter updates (minibatches) done since the trainer was made.
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// One probe measurement of the current model, sent to `observer` (no-op without a
    /// probe). Shapes were checked by [`Trainer::set_probe`].
    fn measure(&self, observer: &mut dyn Observer) {
        if let Some(p) = &self.probe
            && let Ok(snapshot) = crate::probe::probe(&self.model, p, self.updates)
        {
            observer.on_probe(&snapshot);
        }
    }

    /// The training config.
    pub fn config(&self) -> &ValidTrainConfig {
        &self.config
    }

    /// The model in its current state.
    pub fn model(&self) -> &Mlp<F> {
        &self.model
    }

    /// The model, consuming the trainer.
    pub fn into_model(self) -> Mlp<F> {
        self.model
    }

    /// Loss and accuracy of the current model on `data`.
    ///
    /// # Errors
    /// As [`Evaluator::evaluate`].
    pub fn evaluate(&mut self, data: &EvalData<'_, F>) -> Result<Evaluation> {
        Evaluator::new(self.model.config(), data.len()).evaluate(&self.model, data)
    }

    /// Runs `epochs` epochs on `data.train`, validating after each, and evaluates
    /// `data.test` at the end when given. A second call continues from the current
    /// parameters, shuffle generator and optimizer state, numbering epochs from 1 again
    /// and starting the learning-rate schedule (and its warm-up) again.
    ///
    /// A non-finite batch or validation loss stops the run as [`Status::Diverged`]; this is
    /// a result, not an error.
    ///
    /// # Errors
    /// [`Error::DataShape`] when a split's widths do not match the model,
    /// [`Error::LabelOutOfRange`] when a label is not below the output count.
    pub fn fit(
        &mut self,
        data: &FitData<'_, F>,
        observer: &mut dyn Observer,
    ) -> Result<TrainReport> {
        let started = Instant::now();
        let outputs = self.model.config().outputs();
        check_inputs(
            "training inputs: columns",
            &self.model,
            data.train.x().ncols(),
        )?;
        if data.train.y().ncols() != outputs {
            return Err(Error::DataShape {
                what: "training targets: columns (model outputs)",
                expected: outputs,
                found: data.train.y().ncols(),
            });
        }
        check_inputs(
            "validation inputs: columns",
            &self.model,
            data.validation.x().ncols(),
        )?;
        data.validation.check_labels("validation", outputs)?;
        if let Some(test) = &data.test {
            check_inputs("test inputs: columns", &self.model, test.x().ncols())?;
            test.check_labels("test", outputs)?;
        }

        let n = data.train.len();
        let batch = self.config.batch_size();
        let batches = n.div_ceil(batch);
        let eval_rows = data
            .validation
            .len()
            .max(data.test.map_or(0, |t| t.len()))
            .min(EVAL_CHUNK);
        let mut buffers = self.take_buffers(batch.min(n), eval_rows);
        let mut schedule = LrScheduler::new(
            self.config.learning_rate(),
            self.config.lr_schedule(),
            self.config.warmup_epochs(),
            self.config.epochs(),
        );
        let fused = self.config.optimizer().is_default();
        let (x, y) = (data.train.x(), data.train.y());
        let mut order: Vec<usize> = Vec::new();
        // Early stopping: its bookkeeping and the one copy of the best parameters.
        let mut early = self
            .config
            .early_stopping()
            .map(|rule| (EarlyStopper::new(rule), self.model.clone()));
        let mut stopped_early = false;

        let mut report = TrainReport {
            // Grows as epochs finish: `epochs` is a user's number (see `crate::memory`).
            epochs: Vec::with_capacity(self.config.epochs().min(PREALLOCATED_EPOCHS)),
            status: Status::Completed,
            kept_epoch: None,
            stop_reason: None,
            test_accuracy: None,
            test_loss: None,
            train_samples: n,
            validation_samples: data.validation.len(),
            batches_per_epoch: batches,
            parameters: self.model.num_parameters(),
            precision: Precision::of::<F>(),
            seconds: 0.0,
        };

        let mut measured = None;
        if self.probe.as_ref().is_some_and(|p| p.schedule().at_start) {
            self.measure(observer);
            measured = Some(self.updates);
        }
        'epochs: for epoch in 1..=self.config.epochs() {
            if observer.should_stop() {
                report.status = Status::Cancelled { epoch };
                break;
            }
            observer.on_epoch_start(epoch, batches);
            let epoch_start = Instant::now();
            let epoch_lr = schedule.lr(epoch);
            let lr = F::from_f64(epoch_lr);
            if self.config.shuffle() == Shuffle::EveryEpoch {
                order = permutation(n, &mut self.shuffle_rng);
            }
            let mut sum = 0.0f64;
            for b in 0..batches {
                let start = b * batch;
                let end = (start + batch).min(n);
                let (xb, yb) = match self.config.shuffle() {
                    Shuffle::Never => (x.slice(s![start..end, ..]), y.slice(s![start..end, ..])),
                    Shuffle::EveryEpoch => {
                        let rows = end - start;
                        let idx = &order[start..end];
                        gather(x, idx, &mut buffers.xb);
                        gather(y, idx, &mut buffers.yb);
                        (
                            buffers.xb.slice(s![..rows, ..]),
                            buffers.yb.slice(s![..rows, ..]),
                        )
                    }
                };
                let loss = if fused {
                    // Plain SGD: the update fused into the backward pass.
                    self.model.train_step(xb, yb, lr, &mut buffers.ws)
                } else {
                    // Every other optimizer: gradients, then its update (parameters left
                    // untouched when the loss is not finite, as `train_step` does).
                    let loss = self.model.gradients(xb, yb, &mut buffers.ws);
                    if loss.is_finite() {
                        self.optimizer
                            .step(&mut self.model, buffers.ws.gradients(), epoch_lr);
                    }
                    loss
                }
                .to_f64();
                if !loss.is_finite() {
                    report.status = Status::Diverged {
                        epoch,
                        batch: Some(b + 1),
                    };
                    break 'epochs;
                }
                sum += loss;
                self.updates += 1;
                if self
                    .probe
                    .as_ref()
                    .is_some_and(|p| p.due_after(self.updates))
                {
                    self.measure(observer);
                    measured = Some(self.updates);
                }
                observer.on_batch(&BatchEvent {
                    epoch,
                    batch: b + 1,
                    batches,
                    loss,
                });
                if observer.should_stop() {
                    report.status = Status::Cancelled { epoch };
                    break 'epochs;
                }
            }
            let train_seconds = epoch_start.elapsed().as_secs_f64();
            let train_loss = sum / batches as f64;
            let val = buffers
                .eval
                .evaluate_unchecked(&self.model, &data.validation);
            if !val.loss.is_finite() {
                report.status = Status::Diverged { epoch, batch: None };
                break;
            }
            let metrics = EpochMetrics {
                epoch,
                train_loss,
                val_loss: val.loss,
                val_accuracy: val.accuracy,
                seconds: epoch_start.elapsed().as_secs_f64(),
                train_seconds,
                lr: Some(epoch_lr),
            };
            schedule.end_epoch(epoch, val.loss);
            report.epochs.push(metrics);
            observer.on_epoch_end(&metrics);
            if let Some((stopper, best)) = &mut early {
                match stopper.observe(&metrics) {
                    Verdict::Improved => copy_parameters(best, &self.model),
                    Verdict::Continue => {}
                    Verdict::Stop => {
                        stopped_early = true;
                        break;
                    }
                }
            }
        }

        if let (Some((stopper, best)), Status::Completed) = (&early, report.status) {
            let kept = stopper.best_epoch();
            if kept.is_some() && kept != report.epochs.last().map(|m| m.epoch) {
                copy_parameters(&mut self.model, best);
            }
            report.kept_epoch = kept;
            report.stop_reason = Some(if stopped_early {
                StopReason::EarlyStopped
            } else {
                StopReason::Completed
            });
        }

        if self.probe.as_ref().is_some_and(|p| p.schedule().at_end)
            && measured != Some(self.updates)
        {
            self.measure(observer);
        }
        if let (Some(test), false) = (&data.test, report.diverged()) {
            let t = buffers.eval.evaluate_unchecked(&self.model, test);
            if t.loss.is_finite() {
                report.test_accuracy = Some(t.accuracy);
                report.test_loss = Some(t.loss);
            }
        }
        self.buffers = Some(buffers);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The step and evaluation buffers, (re)made when the sizes change; the caller puts
    /// them back.
    fn take_buffers(&mut self, batch_rows: usize, eval_rows: usize) -> Buffers<F> {
        match self.buffers.take() {
            Some(b) if b.batch_rows == batch_rows && b.eval_rows == eval_rows => b,
            _ => {
                let cfg = self.model.config();
                let shuffled = self.config.shuffle() == Shuffle::EveryEpoch;
                let arithmetic = self.config.arithmetic();
                let gather_rows = if shuffled { batch_rows } else { 0 };
                Buffers {
                    batch_rows,
                    eval_rows,
                    ws: Workspace::with_arithmetic(cfg, batch_rows, arithmetic),
                    xb: Array2::zeros((gather_rows, cfg.inputs())),
                    yb: Array2::zeros((gather_rows, cfg.outputs())),
                    eval: Evaluator::with_arithmetic(cfg, eval_rows, arithmetic),
                }
            }
        }
    }
}

/// Overwrites `dst`'s parameters with `src`'s, in place (same architecture).
fn copy_parameters<F: MlpFloat>(dst: &mut Mlp<F>, src: &Mlp<F>) {
    for layer in 0..src.depth() {
        dst.weights_mut(layer).assign(&src.weights(layer));
        dst.bias_mut(layer).assign(&src.bias(layer));
    }
}

/// Copies rows `idx` of `src` into the leading rows of `dst`.
fn gather<F: Float>(src: ndarray::ArrayView2<'_, F>, idx: &[usize], dst: &mut Array2<F>) {
    for (&i, mut row) in idx.iter().zip(dst.rows_mut()) {
        Zip::from(&mut row).and(src.row(i)).for_each(|d, &s| *d = s);
    }
}

/// Initializes a model from `train.seed` ([`WeightSource::Seed`]) and fits it: the usual
/// entry point for one run of a search.
///
/// # Errors
/// As [`Mlp::new`], [`Trainer::new`] and [`Trainer::fit`].
pub fn train<F: MlpFloat>(
    model: &ValidModelConfig,
    train: &ValidTrainConfig,
    data: &FitData<'_, F>,
    observer: &mut dyn Observer,
) -> Result<(Mlp<F>, TrainReport)> {
    let mlp = Mlp::new(model.clone(), WeightSource::Seed(train.seed()))?;
    let mut trainer = Trainer::new(mlp, train.clone())?;
    let report = trainer.fit(data, observer)?;
    Ok((trainer.into_model(), report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Head, ModelConfig, TrainConfig};
    use crate::data::TrainData;
    use crate::probe::ProbeSchedule;
    use glorot_tensor::{Activation, Init, one_hot};

    /// Two well separated Gaussian-ish blobs per class on 4 inputs, deterministic.
    fn blobs(n: usize, classes: usize) -> (Array2<f64>, Vec<u8>) {
        let mut x = Array2::zeros((n, 4));
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            labels.push(c as u8);
            for j in 0..4 {
                let noise = ((i * 7 + j * 13) as f64).sin() * 0.3;
                x[[i, j]] = if j % classes == c { 1.5 } else { -0.5 } + noise;
            }
        }
        (x, labels)
    }

    /// `x` with one-hot `y` and `labels` as the training, validation and test data.
    fn same_data<'a>(x: &'a Array2<f64>, y: &'a Array2<f64>, labels: &'a [u8]) -> FitData<'a, f64> {
        FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), labels).unwrap(),
            test: Some(EvalData::new(x.view(), labels).unwrap()),
        }
    }

    fn setup(shuffle: Shuffle, lr: f64, epochs: usize) -> (ValidModelConfig, ValidTrainConfig) {
        let m = ModelConfig {
            layers: vec![4, 8, 3],
            activation: Activation::Tanh,
            head: Head::SigmoidBce,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let t = TrainConfig {
            epochs,
            batch_size: 7,
            learning_rate: lr,
            seed: 11,
            shuffle,
            precision: Precision::F64,
            arithmetic: Arithmetic::Fast,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap();
        (m, t)
    }

    #[derive(Default)]
    struct Recorder {
        starts: Vec<(usize, usize)>,
        batches: usize,
        ends: Vec<usize>,
        stop_after: Option<usize>,
    }

    impl Observer for Recorder {
        fn on_epoch_start(&mut self, epoch: usize, batches: usize) {
            self.starts.push((epoch, batches));
        }
        fn on_batch(&mut self, event: &BatchEvent) {
            assert!(event.loss.is_finite());
            self.batches += 1;
        }
        fn on_epoch_end(&mut self, metrics: &EpochMetrics) {
            self.ends.push(metrics.epoch);
        }
        fn should_stop(&self) -> bool {
            self.stop_after.is_some_and(|s| self.batches >= s)
        }
    }

    /// Keeps the updates at which the probe measured.
    #[derive(Default)]
    struct ProbeLog(Vec<usize>);

    impl Observer for ProbeLog {
        fn on_probe(&mut self, snapshot: &ProbeSnapshot) {
            assert_eq!(snapshot.layers.len(), 1, "one hidden layer");
            self.0.push(snapshot.update);
        }
    }

    /// A probe measures at its moments (start, every 4 updates, end) and changes nothing:
    /// the trained parameters and every reported number are the same bits as without it.
    #[test]
    fn the_probe_measures_at_its_moments_and_changes_nothing() {
        let (x, labels) = blobs(60, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = same_data(&x, &y, &labels);
        let (m, t) = setup(Shuffle::EveryEpoch, 0.5, 2);
        let plain = train(&m, &t, &data, &mut NoopObserver).unwrap();
        let schedule = ProbeSchedule {
            at_start: true,
            every: Some(4),
            at_end: true,
        };
        let probe = Probe::new(
            x.slice(s![..10, ..]).to_owned(),
            y.slice(s![..10, ..]).to_owned(),
            schedule,
        )
        .unwrap();
        let mut trainer = Trainer::new(
            Mlp::new(m.clone(), WeightSource::Seed(t.seed())).unwrap(),
            t.clone(),
        )
        .unwrap();
        trainer.set_probe(probe).unwrap();
        let mut log = ProbeLog::default();
        let mut report = trainer.fit(&data, &mut log).unwrap();
        // 2 epochs of 9 batches: start, 4, 8, 12, 16, then the end (18).
        assert_eq!(log.0, vec![0, 4, 8, 12, 16, 18]);
        assert_eq!(trainer.updates(), 18);
        assert_eq!(trainer.model(), &plain.0);
        let mut expected = plain.1.clone();
        // Wall times differ; everything else is the same bits.
        expected.seconds = 0.0;
        report.seconds = 0.0;
        for e in expected.epochs.iter_mut().chain(report.epochs.iter_mut()) {
            e.seconds = 0.0;
            e.train_seconds = 0.0;
        }
        assert_eq!(report, expected);
        // A probe of the wrong width is refused.
        let bad = Probe::new(Array2::zeros((2, 5)), Array2::zeros((2, 3)), schedule).unwrap();
        assert!(matches!(
            trainer.set_probe(bad),
            Err(Error::DataShape { .. })
        ));
    }

    #[test]
    fn learns_blobs_and_reports_every_epoch() {
        let (x, labels) = blobs(60, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = same_data(&x, &y, &labels);
        let (m, t) = setup(Shuffle::EveryEpoch, 0.5, 20);
        let mut rec = Recorder::default();
        let (_, report) = train(&m, &t, &data, &mut rec).unwrap();
        assert_eq!(report.status, Status::Completed);
        assert_eq!(report.epochs.len(), 20);
        // 60 rows in batches of 7: 8 full batches and one of 4.
        assert_eq!(report.batches_per_epoch, 9);
        assert_eq!(rec.starts[0], (1, 9));
        assert_eq!(rec.batches, 20 * 9);
        assert_eq!(rec.ends, (1..=20).collect::<Vec<_>>());
        let first = report.epochs[0];
        let last = report.epochs[19];
        assert!(
            last.train_loss < 0.5 * first.train_loss,
            "{first:?} -> {last:?}"
        );
        assert!(last.val_accuracy > 95.0, "{last:?}");
        assert_eq!(report.test_accuracy, Some(last.val_accuracy));
        assert_eq!(report.final_val_accuracy(), Some(last.val_accuracy));
    }

    #[test]
    fn same_seed_same_bits_and_shuffle_changes_the_path() {
        let (x, labels) = blobs(50, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let run = |shuffle| {
            let (m, t) = setup(shuffle, 0.3, 3);
            train(&m, &t, &data, &mut NoopObserver).unwrap()
        };
        let (ma, ra) = run(Shuffle::EveryEpoch);
        let (mb, rb) = run(Shuffle::EveryEpoch);
        assert_eq!(ma, mb);
        for (a, b) in ra.epochs.iter().zip(&rb.epochs) {
            assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
            assert_eq!(a.val_loss.to_bits(), b.val_loss.to_bits());
        }
        let (mc, _) = run(Shuffle::Never);
        assert_ne!(ma, mc, "shuffling must change the training path");
    }

    #[test]
    fn divergence_stops_the_run_without_nan_metrics() {
        let (x, labels) = blobs(40, 3);
        // Huge inputs and learning rate drive tanh/sigmoid nets to overflowing weights.
        let x = x.mapv(|v| v * 1e150);
        let y = one_hot::<f64>(&labels, 3);
        let data = same_data(&x, &y, &labels);
        let m = ModelConfig {
            layers: vec![4, 8, 3],
            activation: Activation::Relu,
            head: Head::SoftmaxCrossEntropy,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let (_, t) = setup(Shuffle::Never, 1e10, 5);
        let (_, report) = train(&m, &t, &data, &mut NoopObserver).unwrap();
        assert!(report.diverged(), "{:?}", report.status);
        assert_eq!(report.final_val_accuracy(), None);
        assert_eq!(report.best_val_accuracy(), None);
        assert_eq!(report.test_accuracy, None);
        for e in &report.epochs {
            assert!(e.train_loss.is_finite() && e.val_accuracy.is_finite());
        }
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"kind\":\"diverged\""), "{json}");
        assert!(
            !json.contains("NaN") && !json.contains("null,\"epoch"),
            "{json}"
        );
    }

    /// Each epoch trains at its scheduled rate and records it; the default records the
    /// config's rate bit for bit.
    #[test]
    fn every_epoch_records_its_learning_rate() {
        let (x, labels) = blobs(30, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let (m, t) = setup(Shuffle::Never, 0.3, 4);
        let (_, report) = train(&m, &t, &data, &mut NoopObserver).unwrap();
        assert!(report.epochs.iter().all(|e| e.lr == Some(0.3)));
        let scheduled = TrainConfig {
            lr_schedule: crate::LrSchedule::Step {
                every: 2,
                gamma: 0.1,
            },
            warmup_epochs: 1,
            ..t.config().clone()
        }
        .validate()
        .unwrap();
        let (with_schedule, report) = train(&m, &scheduled, &data, &mut NoopObserver).unwrap();
        let lrs: Vec<f64> = report.epochs.iter().map(|e| e.lr.unwrap()).collect();
        // Warm-up 0.3 / 2, then k = 0, 1, 2: 0.3, 0.3, 0.3 * 0.1 (hand calculation).
        assert_eq!(lrs.len(), 4);
        for (got, want) in lrs.iter().zip([0.15, 0.3, 0.3, 0.03]) {
            approx::assert_relative_eq!(*got, want, max_relative = 1e-15);
        }
        // The rates were used: the same run at a constant 0.3 ends elsewhere.
        let (constant, _) = train(&m, &t, &data, &mut NoopObserver).unwrap();
        assert_ne!(with_schedule, constant);
    }

    /// Early stopping ends the run where a replay of the full run's curve says, and the
    /// model it returns is bit for bit the model of a run of exactly the kept epoch's
    /// length (same seed, so the same shuffles and steps); its test evaluation is that
    /// model's. At the normal end, a last epoch that is not the best is rolled back too.
    #[test]
    fn early_stopping_stops_on_time_and_restores_the_best_epoch_exactly() {
        use crate::early_stopping::{EarlyStopping, Monitor};
        // Overlapping noisy classes, every fourth training label wrong, and a learning rate
        // of 5: the validation accuracy and loss jump from epoch to epoch (accuracy 42, 60,
        // 56, 60, 40, 78, 100, 82, ... percent, never 100 again).
        let blob = |n: usize, a: usize, b: usize, f: fn(f64) -> f64| {
            Array2::from_shape_fn((n, 4), |(i, j)| {
                let noise = f((i * a + j * b) as f64) * 0.8;
                (if j % 3 == i % 3 { 1.0 } else { -0.5 }) + noise
            })
        };
        let x = blob(60, 7, 13, f64::sin);
        let labels: Vec<u8> = (0..60u8)
            .map(|i| if i % 4 == 0 { (i + 1) % 3 } else { i % 3 })
            .collect();
        let y = one_hot::<f64>(&labels, 3);
        let xv = blob(45, 11, 5, f64::cos);
        let lv: Vec<u8> = (0..45u8).map(|i| i % 3).collect();
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(xv.view(), &lv).unwrap(),
            test: Some(EvalData::new(x.view(), &labels).unwrap()),
        };
        let epochs = 30;
        let (m, full) = setup(Shuffle::EveryEpoch, 5.0, epochs);
        let (_, full_report) = train(&m, &full, &data, &mut NoopObserver).unwrap();
        let with = |rule: EarlyStopping| {
            TrainConfig {
                early_stopping: Some(rule),
                ..full.config().clone()
            }
            .validate()
            .unwrap()
        };
        let run_for = |n: usize| {
            let t = TrainConfig {
                epochs: n,
                ..full.config().clone()
            }
            .validate()
            .unwrap();
            train(&m, &t, &data, &mut NoopObserver).unwrap()
        };
        let mut stopped = 0;
        let mut rolled_back_at_end = 0;
        for monitor in [Monitor::Accuracy, Monitor::Loss] {
            // Patience 30 never stops a 30-epoch run: the roll-back at the normal end.
            for patience in [1, 2, 3, 6, 30] {
                let rule = EarlyStopping { patience, monitor };
                // What should happen, from the full run's curve.
                let mut stopper = EarlyStopper::new(rule);
                let stop_at = full_report
                    .epochs
                    .iter()
                    .position(|e| stopper.observe(e) == Verdict::Stop)
                    .map(|i| i + 1);
                let best = stopper.best_epoch().unwrap();

                let (model, report) = train(&m, &with(rule), &data, &mut NoopObserver).unwrap();
                assert_eq!(report.status, Status::Completed);
                assert_eq!(report.epochs.len(), stop_at.unwrap_or(epochs), "{rule}");
                // The same epochs as the full run's (all but the wall times).
                let curve = |e: &[EpochMetrics]| {
                    e.iter()
                        .map(|m| (m.epoch, m.train_loss, m.val_loss, m.val_accuracy, m.lr))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    curve(&report.epochs),
                    curve(&full_report.epochs[..report.epochs.len()]),
                    "{rule}"
                );
                assert_eq!(report.kept_epoch, Some(best), "{rule}");
                let reason = if stop_at.is_some() {
                    stopped += 1;
                    StopReason::EarlyStopped
                } else {
                    StopReason::Completed
                };
                assert_eq!(report.stop_reason, Some(reason), "{rule}");
                if stop_at.is_none() && best < epochs {
                    rolled_back_at_end += 1;
                }
                let (reference, reference_report) = run_for(best);
                assert_eq!(model, reference, "{rule}: parameters of epoch {best}");
                assert_eq!(report.test_accuracy, reference_report.test_accuracy);
                assert_eq!(report.test_loss, reference_report.test_loss);
                assert_eq!(
                    report.final_val_accuracy(),
                    Some(full_report.epochs[best - 1].val_accuracy)
                );
            }
        }
        // The cases above include early stops before the last epoch and a roll-back at the
        // normal end (otherwise this test would prove less than it says).
        assert!(stopped > 0 && rolled_back_at_end > 0, "{full_report:#?}");
        // Without early stopping nothing is recorded, and nothing extra is serialized.
        assert_eq!(full_report.kept_epoch, None);
        assert_eq!(full_report.stop_reason, None);
        let json = serde_json::to_string(&full_report).unwrap();
        assert!(!json.contains("kept_epoch") && !json.contains("stop_reason"));
    }

    #[test]
    fn cancellation_is_reported() {
        let (x, labels) = blobs(30, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let (m, t) = setup(Shuffle::Never, 0.1, 5);
        // 30 rows / 7 = 5 batches per epoch; stop during the second epoch.
        let mut rec = Recorder {
            stop_after: Some(7),
            ..Recorder::default()
        };
        let (_, report) = train(&m, &t, &data, &mut rec).unwrap();
        assert_eq!(report.status, Status::Cancelled { epoch: 2 });
        assert_eq!(report.epochs.len(), 1);
        assert!(report.final_val_accuracy().is_some());
    }

    #[test]
    fn bad_data_and_precision_are_errors() {
        let (x, labels) = blobs(10, 3);
        let y = one_hot::<f64>(&labels, 3);
        let (m, t) = setup(Shuffle::Never, 0.1, 1);
        let model = Mlp::<f32>::new(m.clone(), WeightSource::Seed(0)).unwrap();
        assert!(matches!(
            Trainer::new(model, t.clone()),
            Err(Error::PrecisionMismatch { .. })
        ));
        let bad_labels: Vec<u8> = labels.iter().map(|&l| l + 1).collect();
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &bad_labels).unwrap(),
            test: None,
        };
        let err = train(&m, &t, &data, &mut NoopObserver).unwrap_err();
        assert!(
            matches!(err, Error::LabelOutOfRange { label: 3, .. }),
            "{err}"
        );
        let narrow = x.slice(s![.., ..3]);
        let data = FitData {
            train: TrainData::new(narrow, y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let err = train(&m, &t, &data, &mut NoopObserver).unwrap_err();
        assert!(
            matches!(
                err,
                Error::DataShape {
                    expected: 4,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trainers_run_in_parallel_on_one_shared_dataset() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Trainer<f32>>();
        send::<Mlp<f64>>();
        sync::<FitData<'static, f32>>();
        send::<TrainReport>();

        let (x, labels) = blobs(45, 3);
        let y = one_hot::<f64>(&labels, 3);
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let (m, t) = setup(Shuffle::EveryEpoch, 0.2, 2);
        let sequential = train(&m, &t, &data, &mut NoopObserver).unwrap().0;
        let parallel: Vec<Mlp<f64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| train(&m, &t, &data, &mut NoopObserver).unwrap().0))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(parallel.iter().all(|p| *p == sequential));
    }

    #[test]
    fn chunked_evaluation_agrees_with_one_pass() {
        let (x, labels) = blobs(25, 3);
        let (m, _) = setup(Shuffle::Never, 0.1, 1);
        let model = Mlp::<f64>::new(m.clone(), WeightSource::Seed(4)).unwrap();
        let data = EvalData::new(x.view(), &labels).unwrap();
        let whole = Evaluator::new(&m, 25).evaluate(&model, &data).unwrap();
        let chunked = Evaluator::new(&m, 6).evaluate(&model, &data).unwrap();
        assert_eq!(whole.correct, chunked.correct);
        assert_eq!(whole.accuracy, chunked.accuracy);
        approx::assert_relative_eq!(whole.loss, chunked.loss, max_relative = 1e-13);
    }
}
