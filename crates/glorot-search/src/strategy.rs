//! Search strategies beyond the grid: random search, synchronous successive halving
//! (SHA) and Hyperband (Li et al., "Hyperband: a novel bandit-based approach to
//! hyperparameter optimization", JMLR 2018), deterministic.
//!
//! Everything a strategy does is a pure function of the space (a [`GridSpec`], with
//! [`Ranges`](crate::spec::Ranges)), the strategy's parameters ([`StrategySpec`]), the
//! master seed and the trials' results, never of timing, workers, shards, kills or
//! resumptions:
//!
//! - **Samples.** The configurations are drawn from a counter-based stream,
//!   `SHA-256("glorot-sample/v1" || master seed (LE) || strategy name || counter (LE))`,
//!   8 bytes (LE) per draw, one draw per axis in the order hidden, activation, learning
//!   rate, batch size, initializer, precision, repeat: a list axis takes value
//!   `draw % len`, a range `min + u * (max - min)` on its scale with
//!   `u = (draw >> 11) / 2^53`. A configuration already drawn is drawn again, so the
//!   samples are distinct. The list is stored in `strategy.json` ([`StrategyFile`]).
//! - **Brackets and rungs.** With `s_max` the largest `s` such that
//!   `min_epochs * eta^s <= max_epochs`, bracket `s` trains `n_s` configurations for
//!   `max_epochs / eta^s` epochs (integer division) in rung 0, then the best
//!   `max(1, n_i / eta)` of rung `i` continue to rung `i + 1` with `max_epochs /
//!   eta^(s - i - 1)` epochs, until rung `s` trains for `max_epochs`. Random search is
//!   one bracket of one rung at `max_epochs`; SHA is bracket `s_max` (`n` = `--samples`,
//!   default `eta^s_max`); Hyperband runs brackets `s_max, s_max - 1, ..., 0` (the
//!   first `--brackets` of them) with `n_s = ceil((s_max + 1) * eta^s / (s + 1))`.
//! - **Promotions.** A rung is decided only when every trial of it has a final record
//!   (rungs are the synchronization points); its trials are ranked by final
//!   validation accuracy, highest first, ties broken by trial id (ascending); a trial
//!   that diverged is never promoted. The decision is written to
//!   `rungs/b<s>-r<i>.json` ([`RungFile`]).
//! - **Trials.** Training configuration `c` for `r` epochs is the trial
//!   `c` with `epochs = r` (its own id and record in `trials/`), seeded with the seed of
//!   `c` at `max_epochs` ([`crate::derive_seed`] of that id), so every rung of one
//!   configuration follows one training run: a promoted trial continues from the
//!   checkpoint its previous rung saved (`checkpoints/<id>.safetensors`,
//!   [`glorot_mlp::Checkpoint`]), and its record equals training it from scratch for
//!   the longer budget, bit for bit. A missing or unreadable checkpoint only costs time
//!   (the trial trains from scratch).

use std::{
    collections::{HashMap, HashSet},
    fmt, fs,
    path::{Path, PathBuf},
    str::FromStr,
};

use glorot_mlp::Precision;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    Error, Result,
    journal::{Journal, RecordFile, TrialRecord, TrialStatus, write_json},
    runner::trial_configs,
    spec::{GridSpec, Range, Scale, Trial},
    trial::{TrialConfig, TrialId, derive_seed},
};

/// `strategy.json`: the strategy of a search directory and its sample list.
pub const STRATEGY_FILE: &str = "strategy.json";
/// `rungs/`: one [`RungFile`] per decided rung.
pub const RUNGS_DIR: &str = "rungs";
/// `checkpoints/`: one checkpoint per trial of a rung that may be continued.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// `strategy_summary.json`: the ranking written by `merge` ([`StrategySummary`]).
pub const STRATEGY_SUMMARY_FILE: &str = "strategy_summary.json";
/// Version of `strategy.json`, `rungs/*.json` and `strategy_summary.json`.
pub const STRATEGY_SCHEMA_VERSION: u32 = 1;

/// Which strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Every combination of the axes (the default; not run by this module).
    #[default]
    Grid,
    /// `samples` configurations sampled from the space, each trained for `max_epochs`.
    Random,
    /// Synchronous successive halving: one bracket.
    Sha,
    /// Hyperband: several brackets of successive halving.
    Hyperband,
}

impl StrategyKind {
    /// The name on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Grid => "grid",
            StrategyKind::Random => "random",
            StrategyKind::Sha => "sha",
            StrategyKind::Hyperband => "hyperband",
        }
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StrategyKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grid" => Ok(StrategyKind::Grid),
            "random" => Ok(StrategyKind::Random),
            "sha" | "successive_halving" | "successive-halving" => Ok(StrategyKind::Sha),
            "hyperband" => Ok(StrategyKind::Hyperband),
            _ => Err(Error::InvalidSpec {
                field: "strategy",
                value: s.to_owned(),
                reason: "expected grid, random, sha or hyperband",
            }),
        }
    }
}

/// A strategy and its parameters (`strategy` in `strategy.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategySpec {
    /// The strategy (not [`StrategyKind::Grid`]).
    pub kind: StrategyKind,
    /// Configurations to sample: random search (required) and SHA (default
    /// `eta^s_max`); Hyperband decides its own.
    pub samples: Option<usize>,
    /// The smallest budget, epochs (SHA, Hyperband).
    pub min_epochs: usize,
    /// The largest budget, epochs: every strategy's final rung.
    pub max_epochs: usize,
    /// The halving rate: the best `1/eta` of a rung continue (at least 2).
    pub eta: usize,
    /// Hyperband's number of brackets (default all, `s_max + 1`).
    pub brackets: Option<usize>,
}

/// One bracket of successive halving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bracket {
    /// Hyperband's `s`: the bracket has `s + 1` rungs.
    pub s: usize,
    /// Epochs of each rung.
    pub budgets: Vec<usize>,
    /// Trials of each rung.
    pub sizes: Vec<usize>,
    /// The bracket's configurations (indices into the sample list), rung 0's trials.
    pub configs: Vec<usize>,
}

/// One sampled configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Position in the sample list.
    pub index: usize,
    /// The id of the configuration at `max_epochs` (its final rung's trial).
    pub id: TrialId,
    /// Its seed, shared by all its rungs.
    #[serde(with = "glorot_mlp::seed_text")]
    pub seed: u64,
    /// The configuration, `epochs` = `max_epochs`.
    pub config: TrialConfig,
}

/// `strategy.json`: the strategy, the samples and the brackets, a pure function of the
/// space, the strategy and the master seed ([`StrategyPlan::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyFile {
    /// [`STRATEGY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The strategy.
    pub strategy: StrategySpec,
    /// The master seed (a decimal string).
    #[serde(with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// The sampled configurations.
    pub samples: Vec<Sample>,
    /// The brackets.
    pub brackets: Vec<Bracket>,
}

/// `rungs/b<s>-r<i>.json`: a decided rung.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungFile {
    /// [`STRATEGY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The bracket's `s`.
    pub bracket: usize,
    /// The rung, from 0.
    pub rung: usize,
    /// Its epochs.
    pub budget: usize,
    /// Its trials, ranked (best first; see the [module docs](self)).
    pub ranking: Vec<RungEntry>,
    /// The sample indices promoted to the next rung (empty for the last rung).
    pub promoted: Vec<usize>,
}

/// One trial of a decided rung.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungEntry {
    /// Sample index.
    pub index: usize,
    /// The trial (the configuration at this rung's budget).
    pub id: TrialId,
    /// Final validation accuracy, `null` when it diverged.
    pub val_accuracy: Option<f64>,
}

/// A trial of a rung and how to train it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The trial (`index` = sample index, `config.epochs` = the rung's budget).
    pub trial: Trial,
    /// The previous rung's trial of the same configuration and its epochs: continue
    /// from its checkpoint.
    pub from: Option<(TrialId, usize)>,
    /// Whether to save a checkpoint when the trial completes (a later rung may follow).
    pub save_checkpoint: bool,
    /// The bracket's `s` and the rung.
    pub bracket: usize,
    /// The rung, from 0.
    pub rung: usize,
    /// Position in the rung's list of trials (shards take positions round-robin).
    pub position: usize,
}

/// A validated strategy on a space: the samples and the brackets.
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyPlan {
    file: StrategyFile,
}

/// Largest `s` with `min * eta^s <= max`.
fn s_max(min: usize, max: usize, eta: usize) -> usize {
    let mut s = 0;
    let mut r = min;
    while let Some(next) = r.checked_mul(eta).filter(|&n| n <= max) {
        r = next;
        s += 1;
    }
    s
}

fn pow(eta: usize, s: usize) -> Option<usize> {
    (0..s).try_fold(1usize, |acc, _| acc.checked_mul(eta))
}

fn invalid(field: &'static str, value: impl fmt::Display, reason: &'static str) -> Error {
    Error::InvalidSpec {
        field,
        value: value.to_string(),
        reason,
    }
}

/// The counter-based stream the samples are drawn from (see the [module docs](self)).
struct Draws {
    prefix: Vec<u8>,
    counter: u64,
}

impl Draws {
    fn new(master_seed: u64, kind: StrategyKind) -> Self {
        let mut prefix = b"glorot-sample/v1".to_vec();
        prefix.extend_from_slice(&master_seed.to_le_bytes());
        prefix.extend_from_slice(kind.name().as_bytes());
        Draws { prefix, counter: 0 }
    }

    fn next(&mut self) -> u64 {
        let mut h = Sha256::new();
        h.update(&self.prefix);
        h.update(self.counter.to_le_bytes());
        self.counter += 1;
        let d = h.finalize();
        u64::from_le_bytes(d[..8].try_into().expect("SHA-256 has 32 bytes"))
    }

    fn pick<T: Clone>(&mut self, values: &[T]) -> T {
        let i = self.next() % values.len() as u64;
        values[usize::try_from(i).expect("below the length")].clone()
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn real(&mut self, r: &Range) -> f64 {
        let u = self.unit();
        match r.scale {
            Scale::Linear => r.min + u * (r.max - r.min),
            Scale::Log => (r.min.ln() + u * (r.max.ln() - r.min.ln())).exp(),
        }
    }

    fn integer(&mut self, r: &Range) -> usize {
        let x = self.real(r).round().clamp(r.min.ceil(), r.max.floor());
        // Validated ranges lie in [1, 2^20].
        x.max(1.0) as usize
    }
}

/// `x` rounded to 3 significant digits (a sampled learning rate).
fn three_digits(x: f64) -> f64 {
    format!("{x:.2e}").parse().unwrap_or(x)
}

impl StrategyPlan {
    /// Checks `strategy` against `space` and draws the samples (the space's `epochs`
    /// axis is not used: budgets come from the strategy).
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the bad parameter, or when the space has fewer
    /// distinct configurations than the strategy needs.
    pub fn new(space: &GridSpec, strategy: &StrategySpec) -> Result<Self> {
        let s = strategy;
        if s.kind == StrategyKind::Grid {
            return Err(invalid(
                "strategy",
                "grid",
                "a grid runs through glorot_search::run, not a strategy plan",
            ));
        }
        // Checks the axes and ranges as a grid would.
        space.clone().validate()?;
        if s.eta < 2 {
            return Err(invalid("eta", s.eta, "must be at least 2"));
        }
        if s.min_epochs == 0 {
            return Err(invalid("min_epochs", 0, "must be at least 1"));
        }
        if s.max_epochs < s.min_epochs {
            return Err(invalid(
                "max_epochs",
                s.max_epochs,
                "must be at least min_epochs",
            ));
        }
        if s.samples == Some(0) {
            return Err(invalid("samples", 0, "must be at least 1"));
        }
        let top = s_max(s.min_epochs, s.max_epochs, s.eta);
        let budgets = |bracket: usize| -> Vec<usize> {
            (0..=bracket)
                .map(|i| s.max_epochs / pow(s.eta, bracket - i).unwrap_or(usize::MAX))
                .collect()
        };
        let sizes = |n: usize, rungs: usize| -> Vec<usize> {
            let mut v = vec![n];
            for _ in 1..rungs {
                let last = *v.last().expect("not empty");
                v.push((last / s.eta).max(1));
            }
            v
        };
        let shapes: Vec<(usize, usize)> = match s.kind {
            StrategyKind::Grid => unreachable!("refused above"),
            StrategyKind::Random => {
                let n = s
                    .samples
                    .ok_or_else(|| invalid("samples", "none", "random search needs --samples"))?;
                if s.brackets.is_some() {
                    return Err(invalid("brackets", "given", "only Hyperband has brackets"));
                }
                vec![(0, n)]
            }
            StrategyKind::Sha => {
                if s.brackets.is_some() {
                    return Err(invalid("brackets", "given", "only Hyperband has brackets"));
                }
                let n = match s.samples {
                    Some(n) => n,
                    None => pow(s.eta, top)
                        .ok_or_else(|| invalid("eta", s.eta, "eta^s_max overflows"))?,
                };
                vec![(top, n)]
            }
            StrategyKind::Hyperband => {
                if s.samples.is_some() {
                    return Err(invalid(
                        "samples",
                        "given",
                        "Hyperband decides the number of configurations of each bracket",
                    ));
                }
                let count = s.brackets.unwrap_or(top + 1);
                if count == 0 || count > top + 1 {
                    return Err(invalid(
                        "brackets",
                        count,
                        "must be between 1 and s_max + 1 (log_eta(max_epochs / min_epochs) + 1)",
                    ));
                }
                (0..count)
                    .map(|k| {
                        let b = top - k;
                        let n = pow(s.eta, b)
                            .and_then(|p| p.checked_mul(top + 1))
                            .map(|p| p.div_ceil(b + 1))
                            .ok_or_else(|| invalid("eta", s.eta, "the bracket sizes overflow"))?;
                        Ok((b, n))
                    })
                    .collect::<Result<_>>()?
            }
        };
        let total = shapes
            .iter()
            .try_fold(0usize, |acc, &(_, n)| acc.checked_add(n))
            .filter(|&n| n <= crate::MAX_TRIALS)
            .ok_or_else(|| invalid("samples", "too many", "more than 1,000,000 trials"))?;
        let samples = sample(space, s, total)?;
        let mut next = 0;
        let brackets = shapes
            .into_iter()
            .map(|(b, n)| {
                let rungs = if s.kind == StrategyKind::Random {
                    1
                } else {
                    b + 1
                };
                let bracket = Bracket {
                    s: b,
                    budgets: if s.kind == StrategyKind::Random {
                        vec![s.max_epochs]
                    } else {
                        budgets(b)
                    },
                    sizes: sizes(n, rungs),
                    configs: (next..next + n).collect(),
                };
                next += n;
                bracket
            })
            .collect();
        let plan = StrategyPlan {
            file: StrategyFile {
                schema_version: STRATEGY_SCHEMA_VERSION,
                strategy: s.clone(),
                master_seed: space.master_seed,
                samples,
                brackets,
            },
        };
        plan.check_resumable()?;
        Ok(plan)
    }

    /// Rungs continue from checkpoints: a learning-rate schedule or warm-up, which
    /// depend on the epoch number or the budget, cannot (see [`glorot_mlp::Checkpoint`]);
    /// nor can early stopping, whose restored weights are not the last epoch's.
    fn check_resumable(&self) -> Result<()> {
        if self.file.strategy.kind == StrategyKind::Random {
            return Ok(());
        }
        for sample in &self.file.samples {
            let (_, train) = trial_configs(&self.trial(sample, 1), 1, 1);
            if !train.lr_schedule.is_default() || train.warmup_epochs != 0 {
                return Err(invalid(
                    "strategy",
                    self.file.strategy.kind,
                    "successive halving and Hyperband continue trials from checkpoints, \
                     which needs a constant learning rate without warm-up",
                ));
            }
            if train.early_stopping.is_some() {
                return Err(invalid(
                    "strategy",
                    self.file.strategy.kind,
                    "successive halving and Hyperband continue trials from checkpoints, \
                     which needs training without early stopping (the rungs already stop \
                     the poor trials early)",
                ));
            }
        }
        Ok(())
    }

    /// The plan as stored in `strategy.json`.
    pub fn file(&self) -> &StrategyFile {
        &self.file
    }

    /// The strategy.
    pub fn strategy(&self) -> &StrategySpec {
        &self.file.strategy
    }

    /// The trial of `sample` at `budget` epochs.
    fn trial(&self, sample: &Sample, budget: usize) -> Trial {
        let config = TrialConfig {
            epochs: budget,
            ..sample.config.clone()
        };
        Trial {
            index: sample.index,
            id: config.id(),
            seed: sample.seed,
            config,
        }
    }

    /// Epochs the whole search trains (each rung continues the previous one's).
    pub fn epochs(&self) -> usize {
        self.file
            .brackets
            .iter()
            .map(|b| {
                let mut prev = 0;
                b.budgets
                    .iter()
                    .zip(&b.sizes)
                    .map(|(&r, &n)| {
                        let spent = (r - prev) * n;
                        prev = r;
                        spent
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    /// Stores the plan in `<dir>/strategy.json`; a directory holding another strategy
    /// (or the same strategy with other parameters or seed) is refused.
    ///
    /// # Errors
    /// [`Error::IncompatibleJournal`], or writing fails.
    pub fn store(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STRATEGY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let found: StrategyFile =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if found != self.file {
                    return Err(Error::IncompatibleJournal {
                        dir: dir.to_owned(),
                        what: "strategy",
                        found: serde_json::to_string(&found.strategy).unwrap_or_default(),
                        expected: serde_json::to_string(&self.file.strategy).unwrap_or_default(),
                    });
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_json(&path, &self.file),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Reads `<dir>/strategy.json`; `None` when the directory has none.
    ///
    /// # Errors
    /// [`Error::CorruptRecord`] when it cannot be read as a strategy file.
    pub fn stored(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(STRATEGY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let file: StrategyFile =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                if file.schema_version > STRATEGY_SCHEMA_VERSION {
                    return Err(Error::NewerRecord {
                        path,
                        found: file.schema_version,
                        supported: STRATEGY_SCHEMA_VERSION,
                    });
                }
                Ok(Some(StrategyPlan { file }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// The state of the search in `journal`: which rungs are decided, which trials
    /// are ready to train, and the records found.
    ///
    /// # Errors
    /// Reading the journal fails.
    pub fn state(&self, journal: &Journal) -> Result<SearchState> {
        let mut state = SearchState::default();
        for bracket in &self.file.brackets {
            let mut members: Vec<usize> = bracket.configs.clone();
            for (rung, &budget) in bracket.budgets.iter().enumerate() {
                let last = rung + 1 == bracket.budgets.len();
                let jobs: Vec<Job> = members
                    .iter()
                    .enumerate()
                    .map(|(position, &i)| {
                        let sample = &self.file.samples[i];
                        Job {
                            trial: self.trial(sample, budget),
                            from: (rung > 0).then(|| {
                                let prev = bracket.budgets[rung - 1];
                                (self.trial(sample, prev).id, prev)
                            }),
                            save_checkpoint: !last,
                            bracket: bracket.s,
                            rung,
                            position,
                        }
                    })
                    .collect();
                let mut finished = Vec::new();
                for job in &jobs {
                    match journal.read_file(&job.trial.id)? {
                        RecordFile::Record(r)
                            if r.status.is_final() && r.seed == job.trial.seed =>
                        {
                            finished.push(*r);
                        }
                        _ => state.ready.push(job.clone()),
                    }
                }
                let complete = finished.len() == jobs.len();
                let mut ranking: Vec<RungEntry> = finished
                    .iter()
                    .map(|r| RungEntry {
                        index: r.index,
                        id: r.id.clone(),
                        val_accuracy: match r.status {
                            TrialStatus::Ok => r.final_val_accuracy,
                            _ => None,
                        },
                    })
                    .collect();
                rank(&mut ranking);
                let keep = bracket.sizes.get(rung + 1).copied().unwrap_or(0);
                let promoted: Vec<usize> = if complete {
                    ranking
                        .iter()
                        .filter(|e| e.val_accuracy.is_some())
                        .take(keep)
                        .map(|e| e.index)
                        .collect()
                } else {
                    Vec::new()
                };
                state.rungs.push(RungState {
                    bracket: bracket.s,
                    rung,
                    budget,
                    trials: jobs.len(),
                    finished: finished.len(),
                    decided: complete,
                    promoted: promoted.clone(),
                });
                state
                    .records
                    .extend(finished.into_iter().map(|r| (rung, budget, r)));
                if complete {
                    state.decisions.push(RungFile {
                        schema_version: STRATEGY_SCHEMA_VERSION,
                        bracket: bracket.s,
                        rung,
                        budget,
                        ranking,
                        promoted: if last { Vec::new() } else { promoted.clone() },
                    });
                    members = promoted;
                } else {
                    // Later rungs wait for this one.
                    for later in rung + 1..bracket.budgets.len() {
                        state.rungs.push(RungState {
                            bracket: bracket.s,
                            rung: later,
                            budget: bracket.budgets[later],
                            trials: bracket.sizes[later],
                            finished: 0,
                            decided: false,
                            promoted: Vec::new(),
                        });
                    }
                    break;
                }
                if members.is_empty() {
                    break;
                }
            }
        }
        state.complete = state.ready.is_empty()
            && state
                .rungs
                .iter()
                .all(|r| r.decided || r.trials == 0 || r.finished == r.trials);
        Ok(state)
    }

    /// Writes the decided rungs of `state` to `rungs/` (each file only when it is missing
    /// or differs: the content is deterministic, so concurrent runners write the same
    /// bytes).
    ///
    /// # Errors
    /// Writing fails.
    pub fn store_decisions(&self, dir: &Path, state: &SearchState) -> Result<()> {
        for d in &state.decisions {
            let path = rung_path(dir, d.bracket, d.rung);
            let same = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<RungFile>(&b).ok())
                .is_some_and(|f| &f == d);
            if !same {
                write_json(&path, d)?;
            }
        }
        Ok(())
    }
}

/// `<dir>/rungs/b<s>-r<i>.json`.
pub fn rung_path(dir: &Path, bracket: usize, rung: usize) -> PathBuf {
    dir.join(RUNGS_DIR).join(format!("b{bracket}-r{rung}.json"))
}

/// `<dir>/checkpoints/<id>.safetensors`.
pub fn checkpoint_path(dir: &Path, id: &TrialId) -> PathBuf {
    dir.join(CHECKPOINTS_DIR).join(format!("{id}.safetensors"))
}

/// Best first: accuracy descending (diverged last), then id ascending.
fn rank(entries: &mut [RungEntry]) {
    entries.sort_by(|a, b| {
        let key = |e: &RungEntry| e.val_accuracy.unwrap_or(f64::NEG_INFINITY);
        key(b).total_cmp(&key(a)).then_with(|| a.id.cmp(&b.id))
    });
}

/// Draws `total` distinct configurations (see the [module docs](self)).
fn sample(space: &GridSpec, s: &StrategySpec, total: usize) -> Result<Vec<Sample>> {
    let r = &space.ranges;
    let discrete = r.is_empty();
    let trainings = space.trainings();
    let size = [
        trainings.len(),
        space.hidden.len(),
        space.activation.len(),
        space.learning_rate.len(),
        space.batch_size.len(),
        space.init.len(),
        space.precision.len(),
        space.repeats.len(),
    ]
    .into_iter()
    .try_fold(1usize, usize::checked_mul);
    if discrete && size.is_some_and(|n| n < total) {
        return Err(invalid(
            "samples",
            total,
            "the space has fewer distinct configurations than the strategy samples",
        ));
    }
    let mut draws = Draws::new(space.master_seed, s.kind);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(total);
    // Ranges rounded to integers or 3 digits can also run out of distinct values.
    let mut attempts = 0usize;
    while out.len() < total {
        attempts += 1;
        if attempts > total.saturating_mul(1000).max(10_000) {
            return Err(invalid(
                "samples",
                total,
                "the space has too few distinct configurations for this many samples",
            ));
        }
        let hidden = match &r.hidden {
            Some(range) => draws.integer(range),
            None => draws.pick(&space.hidden),
        };
        let activation = draws.pick(&space.activation);
        let learning_rate = match &r.learning_rate {
            Some(range) => three_digits(draws.real(range)),
            None => draws.pick(&space.learning_rate),
        };
        let batch_size = match &r.batch_size {
            Some(range) => draws.integer(range),
            None => draws.pick(&space.batch_size),
        };
        let init = draws.pick(&space.init);
        let precision: Precision = draws.pick(&space.precision);
        let repeat = draws.pick(&space.repeats);
        // Drawn last, and only when the space has several, so that spaces without
        // training axes sample exactly as before they existed.
        let training = if trainings.len() > 1 {
            draws.pick(&trainings)
        } else {
            trainings[0]
        };
        let config = TrialConfig {
            hidden: vec![hidden; space.hidden_layers],
            activation,
            learning_rate,
            batch_size,
            init,
            epochs: s.max_epochs,
            precision,
            shuffle: space.shuffle,
            repeat,
            optimizer: training.optimizer,
            lr_schedule: training.lr_schedule,
            warmup_epochs: training.warmup_epochs,
            early_stopping: training.early_stopping,
        };
        let id = config.id();
        if !seen.insert(id.clone()) {
            continue;
        }
        out.push(Sample {
            index: out.len(),
            seed: derive_seed(space.master_seed, &id),
            id,
            config,
        });
    }
    Ok(out)
}

/// One rung's progress ([`StrategyPlan::state`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RungState {
    /// The bracket's `s`.
    pub bracket: usize,
    /// The rung, from 0.
    pub rung: usize,
    /// Its epochs.
    pub budget: usize,
    /// Its trials.
    pub trials: usize,
    /// Of those, finished.
    pub finished: usize,
    /// Whether every trial finished and the promotions are decided.
    pub decided: bool,
    /// The sample indices promoted to the next rung (when decided).
    pub promoted: Vec<usize>,
}

/// What [`StrategyPlan::state`] found.
#[derive(Clone, Debug, Default)]
pub struct SearchState {
    /// Every rung of every bracket, in order.
    pub rungs: Vec<RungState>,
    /// Trials of decided rungs (or rung 0) without a final record.
    pub ready: Vec<Job>,
    /// The decided rungs.
    pub decisions: Vec<RungFile>,
    /// The final records found, with their rung and budget.
    pub records: Vec<(usize, usize, TrialRecord)>,
    /// Whether every rung of every bracket is decided.
    pub complete: bool,
}

/// `strategy_summary.json`: the configurations ranked by the last rung they reached,
/// then by validation accuracy there (ties by id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategySummary {
    /// [`STRATEGY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The strategy.
    pub strategy: StrategySpec,
    /// Whether every rung is decided.
    pub complete: bool,
    /// Epochs the whole search trains ([`StrategyPlan::epochs`]).
    pub epochs: usize,
    /// Every configuration with a result, best first.
    pub ranking: Vec<StrategyRanked>,
}

/// One configuration of a [`StrategySummary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyRanked {
    /// Sample index.
    pub index: usize,
    /// The trial of the highest budget it reached.
    pub id: TrialId,
    /// That budget, epochs.
    pub epochs: usize,
    /// Final validation accuracy there (`null` when it diverged).
    pub val_accuracy: Option<f64>,
    /// The configuration at that budget.
    pub config: TrialConfig,
}

impl StrategySummary {
    /// Ranks the configurations of `state`.
    pub fn new(plan: &StrategyPlan, state: &SearchState) -> Self {
        let mut best: HashMap<usize, &TrialRecord> = HashMap::new();
        for (_, _, r) in &state.records {
            let e = best.entry(r.index).or_insert(r);
            if r.config.epochs > e.config.epochs {
                *e = r;
            }
        }
        let mut ranking: Vec<StrategyRanked> = best
            .into_values()
            .map(|r| StrategyRanked {
                index: r.index,
                id: r.id.clone(),
                epochs: r.config.epochs,
                val_accuracy: match r.status {
                    TrialStatus::Ok => r.final_val_accuracy,
                    _ => None,
                },
                config: r.config.clone(),
            })
            .collect();
        ranking.sort_by(|a, b| {
            b.epochs
                .cmp(&a.epochs)
                .then_with(|| {
                    let key = |e: &StrategyRanked| e.val_accuracy.unwrap_or(f64::NEG_INFINITY);
                    key(b).total_cmp(&key(a))
                })
                .then_with(|| a.id.cmp(&b.id))
        });
        StrategySummary {
            schema_version: STRATEGY_SCHEMA_VERSION,
            strategy: plan.strategy().clone(),
            complete: state.complete,
            epochs: plan.epochs(),
            ranking,
        }
    }

    /// The winner: the best configuration of the final rung.
    pub fn best(&self) -> Option<&StrategyRanked> {
        self.ranking.first().filter(|r| r.val_accuracy.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: StrategyKind) -> StrategySpec {
        StrategySpec {
            kind,
            samples: None,
            min_epochs: 1,
            max_epochs: 10,
            eta: 3,
            brackets: None,
        }
    }

    #[test]
    fn hyperband_brackets_follow_li_et_al() {
        // R = 10, r = 1, eta = 3: s_max = 2 (1 * 3^2 <= 10 < 3^3). Li et al. (2018),
        // Algorithm 1: n = ceil((s_max + 1) / (s + 1) * eta^s), r = R eta^-s:
        // s = 2: n = 9 at 10/9 -> 1, 3, 10 epochs; s = 1: n = ceil(3/2 * 3) = 5 at 3, 10;
        // s = 0: n = 3 at 10.
        let plan =
            StrategyPlan::new(&GridSpec::notebook(), &spec(StrategyKind::Hyperband)).unwrap();
        let b = &plan.file().brackets;
        assert_eq!(b.len(), 3);
        assert_eq!(
            (b[0].s, &b[0].budgets, &b[0].sizes),
            (2, &vec![1, 3, 10], &vec![9, 3, 1])
        );
        assert_eq!(
            (b[1].s, &b[1].budgets, &b[1].sizes),
            (1, &vec![3, 10], &vec![5, 1])
        );
        assert_eq!(
            (b[2].s, &b[2].budgets, &b[2].sizes),
            (0, &vec![10], &vec![3])
        );
        assert_eq!(plan.file().samples.len(), 17);
        // Epochs: 9*1 + 3*2 + 1*7 = 22; 5*3 + 1*7 = 22; 3*10 = 30 (hand calculation).
        assert_eq!(plan.epochs(), 74);
    }

    #[test]
    fn samples_are_a_pure_function_of_space_strategy_and_seed() {
        let mut space = GridSpec::notebook();
        space.ranges.learning_rate = Some(Range {
            min: 0.001,
            max: 0.3,
            scale: Scale::Log,
        });
        let random = StrategySpec {
            samples: Some(20),
            ..spec(StrategyKind::Random)
        };
        let a = StrategyPlan::new(&space, &random).unwrap();
        assert_eq!(a, StrategyPlan::new(&space, &random).unwrap());
        let ids: HashSet<_> = a.file().samples.iter().map(|s| &s.id).collect();
        assert_eq!(ids.len(), 20, "distinct");
        for s in &a.file().samples {
            let lr = s.config.learning_rate;
            assert!((0.001..=0.3).contains(&lr), "{lr}");
            assert_eq!(lr, three_digits(lr));
            assert_eq!(s.config.epochs, 10);
            assert_eq!(s.seed, derive_seed(0, &s.id));
        }
        space.master_seed = 1;
        let b = StrategyPlan::new(&space, &random).unwrap();
        assert_ne!(a.file().samples, b.file().samples);
    }

    #[test]
    fn bad_strategies_name_the_parameter() {
        let field = |s: StrategySpec| match StrategyPlan::new(&GridSpec::notebook(), &s) {
            Err(Error::InvalidSpec { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        };
        assert_eq!(field(spec(StrategyKind::Random)), "samples");
        assert_eq!(
            field(StrategySpec {
                eta: 1,
                ..spec(StrategyKind::Sha)
            }),
            "eta"
        );
        assert_eq!(
            field(StrategySpec {
                min_epochs: 11,
                ..spec(StrategyKind::Sha)
            }),
            "max_epochs"
        );
        assert_eq!(
            field(StrategySpec {
                brackets: Some(4),
                ..spec(StrategyKind::Hyperband)
            }),
            "brackets"
        );
        // The notebook's space has 135 configurations.
        assert_eq!(
            field(StrategySpec {
                samples: Some(136),
                ..spec(StrategyKind::Random)
            }),
            "samples"
        );
        assert!("bogus".parse::<StrategyKind>().is_err());
        assert_eq!(
            "hyperband".parse::<StrategyKind>().unwrap(),
            StrategyKind::Hyperband
        );
    }

    #[test]
    fn training_axes_are_sampled_and_checkpoint_limits_named() {
        use glorot_mlp::{Monitor, Optimizer};
        // Two optimizers double the notebook's 135 configurations: 136 samples fit now.
        let mut space = GridSpec::notebook();
        space.optimizer = vec![Optimizer::default(), "adam".parse().unwrap()];
        let plan = StrategyPlan::new(
            &space,
            &StrategySpec {
                samples: Some(136),
                ..spec(StrategyKind::Random)
            },
        )
        .unwrap();
        let adam = plan
            .file()
            .samples
            .iter()
            .filter(|s| s.config.optimizer.name() == "adam")
            .count();
        assert!(adam > 0 && adam < 136, "{adam} of 136 samples use Adam");
        // Without training axes every sample trains with the defaults (and no draw is
        // spent on them, see `sample`).
        let before = StrategyPlan::new(&GridSpec::notebook(), &spec(StrategyKind::Sha)).unwrap();
        assert!(
            before
                .file()
                .samples
                .iter()
                .all(|s| s.config.optimizer.is_default() && s.config.early_stopping.is_none())
        );
        // Early stopping keeps an earlier epoch's weights: rungs cannot continue them.
        let mut stopping = GridSpec::notebook();
        stopping.early_stopping = vec![3];
        stopping.early_stopping_on = Monitor::Accuracy;
        match StrategyPlan::new(&stopping, &spec(StrategyKind::Sha)) {
            Err(Error::InvalidSpec { field, .. }) => assert_eq!(field, "strategy"),
            other => panic!("expected early stopping to be refused, got {other:?}"),
        }
    }

    #[test]
    fn ties_are_broken_by_id() {
        let e = |id: &str, acc: Option<f64>| RungEntry {
            index: 0,
            id: TrialId(id.into()),
            val_accuracy: acc,
        };
        let mut v = vec![
            e("b", Some(90.0)),
            e("c", None),
            e("a", Some(90.0)),
            e("d", Some(95.0)),
        ];
        rank(&mut v);
        let ids: Vec<_> = v.iter().map(|e| e.id.0.as_str()).collect();
        assert_eq!(ids, ["d", "a", "b", "c"]);
    }
}
