//! Hyperparameter grid search over [`glorot_mlp`] that survives being killed.
//!
//! A [`GridSpec`] declares axes (hidden width, activation, learning rate, batch
//! size, and optionally initializer, epochs, precision, repeats, and the training
//! axes: optimizer, weight decay, learning-rate schedule, warm-up, early stopping); the notebook's
//! 135-trial grid is [`GridSpec::notebook`]. Each trial has a stable [`TrialId`]
//! derived from its canonical config, and its seed derives from the master seed and
//! that id ([`derive_seed`]), so a trial's result never depends on execution order,
//! parallelism, sharding or resumption.
//!
//! The results directory is the journal ([`Journal`]): one JSON file per finished
//! trial, written atomically. Running the same search again skips finished trials;
//! a process killed at any moment loses only the trials in flight. Shards
//! ([`Shard`], from `--shard i/n`, Slurm array or Kubernetes indexed-job variables)
//! split a grid across processes or machines writing into one directory;
//! [`Summary::merge`] ranks whatever is there. Each trial is claimed before it is
//! trained (a claim file with a heartbeat, taken over when its runner dies), so any
//! number of runners on one directory, sharded or not, train each trial once.
//!
//! ```
//! use glorot_search::{GridSpec, Shard};
//!
//! let grid = GridSpec::notebook().validate()?;
//! assert_eq!(grid.len(), 135);
//! let shard: Shard = "1/4".parse()?;
//! let mine = grid.trials().into_iter().filter(|t| shard.contains(t.index)).count();
//! assert_eq!(mine, 34); // indices 1, 5, ..., 133
//! # Ok::<(), glorot_search::Error>(())
//! ```
#![warn(missing_docs)]

mod claim;
mod error;
pub mod journal;
mod manifest;
pub mod memory;
pub mod runner;
mod shard;
pub mod spec;
pub mod strategy;
pub mod summary;
mod trial;

pub use error::{Error, Result};
pub use journal::{
    BestTest, ClaimInfo, ClaimPolicy, ClaimStatus, Journal, RecordFile, Scan, SearchContext,
    StatusCounts, TrialRecord, TrialStatus, write_atomic, write_json,
};
pub use manifest::Manifest;
pub use runner::{
    Quiet, RunOptions, RunOutcome, SearchData, SearchObserver, StrategyOptions, StrategyOutcome,
    TestEvaluation, evaluate_on_test, evaluate_on_test_observed, evaluate_on_test_saving, run,
    run_strategy, run_trial,
};
pub use shard::Shard;
pub use spec::{
    GridSpec, MAX_HIDDEN_LAYERS, MAX_TRIALS, PRESETS, Range, Ranges, Scale, Trial, ValidGrid,
};
pub use strategy::{StrategyKind, StrategyPlan, StrategySpec, StrategySummary};
pub use summary::{Summary, to_csv};
pub use trial::{TrialConfig, TrialId, derive_seed};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
