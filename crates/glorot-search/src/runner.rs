//! Running a grid: trials in parallel, each recorded in the journal when it ends.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use glorot_mlp::{
    Arithmetic, EpochMetrics, EvalData, FitData, Float, Head, Mlp, MlpFloat, ModelConfig, Observer,
    Precision, Status, TrainConfig, TrainData, TrainReport, Trainer, WeightSource,
};
use ndarray::{Array2, ArrayView2};

use crate::{
    Error, Result, claim,
    journal::{Journal, RECORD_SCHEMA_VERSION, RecordFile, Timings, TrialRecord, TrialStatus},
    manifest::Manifest,
    shard::Shard,
    spec::{Trial, ValidGrid},
};

/// The data every trial trains on, held once and shared by all workers.
///
/// Inputs are stored in f32 (MNIST pixels are exact in f32); the f64 copies the
/// f64 trials need are made once, on first use, and shared as well.
#[derive(Debug)]
pub struct SearchData {
    train_x: Array2<f32>,
    train_y: Array2<f32>,
    val_x: Array2<f32>,
    val_labels: Vec<u8>,
    test_x: Option<Array2<f32>>,
    test_labels: Vec<u8>,
    f64_copies: OnceLock<F64Copies>,
    description: String,
}

#[derive(Debug)]
struct F64Copies {
    train_x: Array2<f64>,
    train_y: Array2<f64>,
    val_x: Array2<f64>,
    test_x: Option<Array2<f64>>,
}

impl SearchData {
    /// Training inputs `(n, inputs)` and one-hot targets `(n, classes)`, validation
    /// inputs and labels. `description` names the data for the journal (dataset,
    /// split, subset, digests): resuming with other data is refused.
    pub fn new(
        train_x: Array2<f32>,
        train_y: Array2<f32>,
        val_x: Array2<f32>,
        val_labels: Vec<u8>,
        description: String,
    ) -> Self {
        SearchData {
            train_x,
            train_y,
            val_x,
            val_labels,
            test_x: None,
            test_labels: Vec::new(),
            f64_copies: OnceLock::new(),
            description,
        }
    }

    /// Adds a test split (used only by [`evaluate_on_test`]).
    pub fn with_test(mut self, test_x: Array2<f32>, test_labels: Vec<u8>) -> Self {
        self.test_x = Some(test_x);
        self.test_labels = test_labels;
        self
    }

    /// The description given to [`SearchData::new`].
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Training rows.
    pub fn train_len(&self) -> usize {
        self.train_x.nrows()
    }

    /// Validation rows.
    pub fn validation_len(&self) -> usize {
        self.val_x.nrows()
    }

    /// Test rows (0 without a test split).
    pub fn test_len(&self) -> usize {
        self.test_x.as_ref().map_or(0, |t| t.nrows())
    }

    /// Number of inputs per sample.
    pub fn inputs(&self) -> usize {
        self.train_x.ncols()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train_y.ncols()
    }

    fn f64(&self) -> &F64Copies {
        self.f64_copies.get_or_init(|| F64Copies {
            train_x: self.train_x.mapv(f64::from),
            train_y: self.train_y.mapv(f64::from),
            val_x: self.val_x.mapv(f64::from),
            test_x: self.test_x.as_ref().map(|t| t.mapv(f64::from)),
        })
    }
}

/// Progress reports from a running search. Called from worker threads.
pub trait SearchObserver: Sync {
    /// Before the first trial: trials in this shard, and how many are already done.
    fn on_plan(&self, in_shard: usize, already_done: usize) {
        let _ = (in_shard, already_done);
    }
    /// A worker starts a trial.
    fn on_trial_start(&self, trial: &Trial) {
        let _ = trial;
    }
    /// A trial finished an epoch.
    fn on_epoch(&self, trial: &Trial, metrics: &EpochMetrics) {
        let _ = (trial, metrics);
    }
    /// A trial's record was written to the journal.
    fn on_trial_end(&self, record: &TrialRecord) {
        let _ = record;
    }
    /// Another runner on the same directory recorded a trial of this shard while this
    /// search ran (it held the trial's claim).
    fn on_finished_elsewhere(&self, trial: &Trial) {
        let _ = trial;
    }
    /// Something worth telling the user that does not stop the search: a stale claim
    /// taken over, an unreadable record moved aside, a stray file ignored.
    fn on_warning(&self, message: &str) {
        let _ = message;
    }
    /// Asked between epochs and between trials; `true` stops the search, leaving
    /// trials in flight unrecorded (they rerun on resume).
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl SearchObserver for Quiet {}

/// How to run a search.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Trials trained at the same time (threads).
    pub workers: usize,
    /// Which part of the grid this process runs.
    pub shard: Shard,
}

/// What a call to [`run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Trials of the grid in this shard.
    pub in_shard: usize,
    /// Trials skipped because the journal already had their final record.
    pub skipped: usize,
    /// Trials run and recorded now.
    pub recorded: usize,
    /// Of those, trials that failed (recorded as failed; rerun next time).
    pub failed: usize,
    /// Trials recorded by other runners on the same directory during this run.
    pub finished_elsewhere: usize,
    /// Whether the search was stopped before every trial ran.
    pub stopped: bool,
}

/// A trial still to run, with the start time of the failed record it had when the run
/// began (a failed record written later by another runner counts as its result).
struct Pending {
    trial: Trial,
    seen_failed: Option<u64>,
}

/// The work list shared by the workers.
struct Queue {
    ready: VecDeque<Pending>,
    /// Trials claimed by other live runners, checked again every poll.
    waiting: Vec<Pending>,
}

/// A claim held by a worker, refreshed by the heartbeat thread.
struct Active {
    held: claim::Held,
    lost: AtomicBool,
}

enum Acquired {
    /// The trial has its result (recorded by another runner).
    Done,
    /// Another live runner holds it.
    Busy,
    /// This worker holds its claim.
    Held(claim::Held),
}

/// Runs the trials of `grid` in `options.shard` that the journal lacks, `workers`
/// at a time, writing each record as soon as its trial ends.
///
/// Any number of runners (threads, processes, machines) may run on one journal at
/// once: each trial is claimed before it is trained (the rules are in
/// [`journal`](crate::journal)), so it is trained once; a runner waits at the end for
/// the trials other runners hold, and takes over those whose runner died, so that the
/// shard is complete when it returns (unless stopped).
pub fn run(
    grid: &ValidGrid,
    data: &SearchData,
    journal: &Journal,
    manifest: &Manifest,
    options: RunOptions,
    observer: &dyn SearchObserver,
) -> Result<RunOutcome> {
    if !grid.spec().ranges.is_empty() {
        return Err(Error::InvalidSpec {
            field: "ranges",
            value: format!("{:?}", grid.spec().ranges),
            reason: "a grid cannot enumerate a range: sample it with a strategy \
                     (glorot_search::strategy)",
        });
    }
    let trials = grid
        .trials()
        .into_iter()
        .map(|trial| (trial, None))
        .collect();
    run_jobs(
        trials,
        grid.spec().master_seed,
        data,
        journal,
        manifest,
        options,
        observer,
    )
}

/// How a strategy's trial continues an earlier rung ([`crate::strategy::Job`]).
#[derive(Clone, Debug)]
struct Continuation {
    /// The previous rung's trial and its epochs.
    from: Option<(crate::TrialId, usize)>,
    /// Save a checkpoint when the trial completes.
    save: bool,
}

/// [`run`] on a list of trials, each with how it continues an earlier rung (`None` for
/// a grid's trials).
fn run_jobs(
    trials: Vec<(Trial, Option<Continuation>)>,
    master_seed: u64,
    data: &SearchData,
    journal: &Journal,
    manifest: &Manifest,
    options: RunOptions,
    observer: &dyn SearchObserver,
) -> Result<RunOutcome> {
    let continuations: std::collections::HashMap<crate::TrialId, Continuation> = trials
        .iter()
        .filter_map(|(t, c)| c.clone().map(|c| (t.id.clone(), c)))
        .collect();
    let mut ready = VecDeque::new();
    let mut outcome = RunOutcome::default();
    let removed = journal.remove_stale_temporary_files()?;
    if !removed.is_empty() {
        observer.on_warning(&format!(
            "removed {} temporary files left by killed processes in {}",
            removed.len(),
            journal.dir().display()
        ));
    }
    for trial in trials
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| options.shard.contains(t.index))
    {
        outcome.in_shard += 1;
        match journal.read_file(&trial.id)? {
            RecordFile::Record(r) if r.status.is_final() && r.seed == trial.seed => {
                outcome.skipped += 1;
                remove_stale_claim(journal, &trial.id)?;
            }
            found => ready.push_back(Pending {
                seen_failed: match found {
                    RecordFile::Record(r) => Some(r.timings.started_at.to_bits()),
                    _ => None,
                },
                trial,
            }),
        }
    }
    observer.on_plan(outcome.in_shard, outcome.skipped);
    let workers = options.workers.max(1).min(ready.len().max(1));
    let queue = Mutex::new(Queue {
        ready,
        waiting: Vec::new(),
    });
    let active: Mutex<Vec<Arc<Active>>> = Mutex::new(Vec::new());
    let first_error = Mutex::new(None);
    let recorded = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let elsewhere = AtomicUsize::new(0);
    let policy = journal.claim_policy();
    let poll = (policy.heartbeat / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let fail = |e: Error| {
        if let Ok(mut slot) = first_error.lock() {
            slot.get_or_insert(e);
        }
    };
    let worker = || {
        loop {
            if observer.should_stop() || first_error.lock().is_ok_and(|e| e.is_some()) {
                return;
            }
            let next = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                match q.ready.pop_front() {
                    Some(p) => Some(p),
                    None if q.waiting.is_empty() => return,
                    None => None,
                }
            };
            let Some(pending) = next else {
                std::thread::sleep(poll);
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.ready.is_empty() {
                    let waiting = std::mem::take(&mut q.waiting);
                    q.ready.extend(waiting);
                }
                continue;
            };
            let held = match acquire(journal, &pending, observer) {
                Ok(Acquired::Done) => {
                    elsewhere.fetch_add(1, Ordering::Relaxed);
                    observer.on_finished_elsewhere(&pending.trial);
                    continue;
                }
                Ok(Acquired::Busy) => {
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    q.waiting.push(pending);
                    continue;
                }
                Ok(Acquired::Held(held)) => held,
                Err(e) => return fail(e),
            };
            let mine = Arc::new(Active {
                held,
                lost: AtomicBool::new(false),
            });
            lock(&active).push(Arc::clone(&mine));
            let trial = &pending.trial;
            observer.on_trial_start(trial);
            let record = match continuations.get(&trial.id) {
                None => train_trial(trial, master_seed, data, manifest, observer, &mine.lost),
                Some(c) => train_job(
                    trial,
                    c,
                    master_seed,
                    data,
                    journal,
                    manifest,
                    observer,
                    &mine.lost,
                ),
            };
            let result = match record {
                Some(record) if mine.held.is_held() => journal.write(&record).map(|()| {
                    recorded.fetch_add(1, Ordering::Relaxed);
                    if !record.status.is_final() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(record)
                }),
                _ => Ok(None),
            };
            lock(&active).retain(|a| !Arc::ptr_eq(a, &mine));
            let released = mine.held.release();
            match (result, released) {
                (Err(e), _) | (Ok(_), Err(e)) => return fail(e),
                (Ok(Some(record)), Ok(())) => observer.on_trial_end(&record),
                (Ok(None), Ok(())) => {
                    if observer.should_stop() {
                        return; // stopped mid-trial: nothing is recorded
                    }
                    // Taken over by another runner (this one looked dead): wait for it.
                    observer.on_warning(&format!(
                        "trial {} was taken over by another runner; this one stopped it",
                        trial.id
                    ));
                    let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                    q.waiting.push(pending);
                }
            }
        }
    };
    let (beat_tx, beat_rx) = mpsc::channel::<()>();
    let active_claims = &active;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = beat_rx.recv_timeout(policy.heartbeat) {
                for a in lock(active_claims).iter() {
                    if !a.held.beat() {
                        a.lost.store(true, Ordering::SeqCst);
                    }
                }
            }
        });
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        drop(beat_tx);
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    outcome.recorded = recorded.into_inner();
    outcome.failed = failed.into_inner();
    outcome.finished_elsewhere = elsewhere.into_inner();
    outcome.stopped =
        outcome.skipped + outcome.recorded + outcome.finished_elsewhere < outcome.in_shard;
    Ok(outcome)
}

/// How to run a strategy ([`run_strategy`]).
#[derive(Clone, Copy, Debug)]
pub struct StrategyOptions {
    /// Trials trained at the same time (threads).
    pub workers: usize,
    /// Which part of each rung this process trains: shard `i/n` takes the trials at
    /// positions `p` of a rung's list with `p % n == i`.
    pub shard: Shard,
    /// When no trial can be claimed (a rung waits for trials other runners train, or
    /// for its promotions): wait and poll until the search is complete (`true`), or
    /// return at once (`false`: one Slurm array per rung, see `docs/cluster.md`).
    pub wait: bool,
}

/// What a call to [`run_strategy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrategyOutcome {
    /// Trials run and recorded now.
    pub recorded: usize,
    /// Of those, trials that failed (recorded as failed; rerun next time).
    pub failed: usize,
    /// Trials recorded by other runners while this one waited for them.
    pub finished_elsewhere: usize,
    /// Whether the search was stopped by the observer.
    pub stopped: bool,
    /// Whether every rung of every bracket is decided.
    pub complete: bool,
}

/// Runs a strategy ([`crate::strategy`]) on `journal`: trains the trials of the rungs
/// that are decided, decides rungs as they complete (writing `rungs/`), and continues
/// promoted trials from their checkpoints, until the search is complete, a trial
/// fails, the observer stops it, or (without `options.wait`) nothing can be claimed.
///
/// The same claims as [`run`] make any number of runners, threads, processes and
/// shards train every trial once; the results do not depend on them.
pub fn run_strategy(
    plan: &crate::strategy::StrategyPlan,
    data: &SearchData,
    journal: &Journal,
    manifest: &Manifest,
    options: StrategyOptions,
    observer: &dyn SearchObserver,
) -> Result<StrategyOutcome> {
    let dir = journal.dir();
    let checkpoints = dir.join(crate::strategy::CHECKPOINTS_DIR);
    std::fs::create_dir_all(&checkpoints).map_err(|e| Error::io("creating", &checkpoints, e))?;
    let master_seed = plan.file().master_seed;
    let policy = journal.claim_policy();
    let poll = (policy.heartbeat / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut outcome = StrategyOutcome::default();
    loop {
        if observer.should_stop() {
            outcome.stopped = true;
            break;
        }
        let state = plan.state(journal)?;
        plan.store_decisions(dir, &state)?;
        if state.complete {
            outcome.complete = true;
            break;
        }
        let mine: Vec<(Trial, Option<Continuation>)> = state
            .ready
            .into_iter()
            .filter(|j| options.shard.contains(j.position))
            .map(|j| {
                let c = Continuation {
                    from: j.from,
                    save: j.save_checkpoint,
                };
                (j.trial, Some(c))
            })
            .collect();
        if mine.is_empty() {
            if !options.wait {
                break;
            }
            std::thread::sleep(poll);
            continue;
        }
        let ran = run_jobs(
            mine,
            master_seed,
            data,
            journal,
            manifest,
            RunOptions {
                workers: options.workers,
                shard: Shard::ALL,
            },
            observer,
        )?;
        outcome.recorded += ran.recorded;
        outcome.failed += ran.failed;
        outcome.finished_elsewhere += ran.finished_elsewhere;
        if ran.stopped {
            outcome.stopped = true;
            break;
        }
        if ran.failed > 0 {
            break;
        }
    }
    Ok(outcome)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the claim of a recorded trial if its runner is gone (it was killed between
/// writing the record and removing the claim).
fn remove_stale_claim(journal: &Journal, id: &crate::TrialId) -> Result<()> {
    let path = journal.claim_path(id);
    if let Some(found) = claim::read(&path)?
        && found.is_stale(&journal.claim_policy())
    {
        claim::take_over(&path, &found)?;
    }
    Ok(())
}

/// Claims `pending` for this runner, unless it has its result or a live runner holds it.
fn acquire(
    journal: &Journal,
    pending: &Pending,
    observer: &dyn SearchObserver,
) -> Result<Acquired> {
    let trial = &pending.trial;
    let has_result = |journal: &Journal| -> Result<bool> {
        Ok(match journal.read_file(&trial.id)? {
            RecordFile::Record(r) => {
                r.seed == trial.seed
                    && (r.status.is_final()
                        || pending.seen_failed != Some(r.timings.started_at.to_bits()))
            }
            _ => false,
        })
    };
    let path = journal.claim_path(&trial.id);
    let policy = journal.claim_policy();
    // A few rounds against races (a claim released or replaced while it is read).
    for _ in 0..8 {
        if has_result(journal)? {
            remove_stale_claim(journal, &trial.id)?;
            return Ok(Acquired::Done);
        }
        // Look before claiming: a live claim needs no write to be respected.
        let found = match claim::read(&path)? {
            Some(found) if !found.is_stale(&policy) => return Ok(Acquired::Busy),
            found => found,
        };
        // A stale claim is removed (unless another runner just did), then claimed.
        if let Some(found) = found
            && claim::take_over(&path, &found)?
        {
            let i = &found.info;
            let age = found.heartbeat_age.as_secs_f64();
            let why = if found.heartbeat_age > policy.stale_after {
                format!("no heartbeat for {age:.0} s")
            } else {
                "its process is gone".to_owned()
            };
            observer.on_warning(&format!(
                "trial {} was claimed by pid {} on {} ({why}); taking it over",
                trial.id,
                i.pid,
                if i.host.is_empty() { "?" } else { &i.host },
            ));
        }
        if let Some(held) = claim::create(&path)? {
            // Recorded and released by another runner between the check and the claim?
            if has_result(journal)? {
                held.release()?;
                return Ok(Acquired::Done);
            }
            // Holding the claim, nobody writes this record: an unreadable one can be
            // moved aside safely, and the trial is run again.
            if let RecordFile::Unreadable { path, reason } = journal.read_file(&trial.id)? {
                let moved = journal.quarantine(&path, &reason);
                let moved = match moved {
                    Ok(m) => m,
                    Err(e) => {
                        held.release()?;
                        return Err(e);
                    }
                };
                observer.on_warning(&format!(
                    "{} cannot be read ({reason}); moved it to {} and running trial {} again",
                    path.display(),
                    moved.display(),
                    trial.id
                ));
            }
            return Ok(Acquired::Held(held));
        }
        // Claimed by another runner in between: look again.
    }
    Ok(Acquired::Busy)
}

/// Trains one trial and builds its record; `None` when the observer stopped it.
/// Errors of the model crate become a `failed` record rather than an error, so one
/// bad trial never ends a search.
pub fn run_trial(
    trial: &Trial,
    master_seed: u64,
    data: &SearchData,
    manifest: &Manifest,
    observer: &dyn SearchObserver,
) -> Option<TrialRecord> {
    train_trial(
        trial,
        master_seed,
        data,
        manifest,
        observer,
        &AtomicBool::new(false),
    )
}

/// The wall-clock start of a trial (seconds since the Unix epoch, 0 if the clock is
/// before it) and a monotonic clock for its duration.
fn start_clocks() -> (f64, Instant) {
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (started_at, Instant::now())
}

/// [`run_trial`], also stopped when `lost` becomes true (the trial's claim was taken
/// over by another runner).
fn train_trial(
    trial: &Trial,
    master_seed: u64,
    data: &SearchData,
    manifest: &Manifest,
    observer: &dyn SearchObserver,
    lost: &AtomicBool,
) -> Option<TrialRecord> {
    let (started_at, clock) = start_clocks();
    let mut forward = Forward {
        trial,
        observer,
        lost,
    };
    let result = match trial.config.precision {
        Precision::F32 => fit_trial::<f32>(trial, data, data.sets_f32(false), &mut forward, None),
        Precision::F64 => fit_trial::<f64>(trial, data, data.sets_f64(false), &mut forward, None),
    };
    build_record(
        trial,
        master_seed,
        manifest,
        result.map(Some),
        started_at,
        clock,
    )
}

/// Trains a strategy's trial: from the previous rung's checkpoint when it has one (and
/// that rung's record, whose epochs begin the curve), else from scratch; saves its own
/// checkpoint when a later rung may continue it. Either way the record equals training
/// the trial from scratch, bit for bit.
#[allow(clippy::too_many_arguments)]
fn train_job(
    trial: &Trial,
    continuation: &Continuation,
    master_seed: u64,
    data: &SearchData,
    journal: &Journal,
    manifest: &Manifest,
    observer: &dyn SearchObserver,
    lost: &AtomicBool,
) -> Option<TrialRecord> {
    let (started_at, clock) = start_clocks();
    let dir = journal.dir();
    // The previous rung's curve and checkpoint, when both are there and agree.
    let resume = continuation.from.as_ref().and_then(|(id, epochs)| {
        let prefix = match journal.read_file(id) {
            Ok(RecordFile::Record(r))
                if r.status == TrialStatus::Ok
                    && r.seed == trial.seed
                    && r.epochs.len() == *epochs =>
            {
                r.epochs
            }
            _ => return None,
        };
        let path = crate::strategy::checkpoint_path(dir, id);
        path.exists().then_some((path, prefix))
    });
    let save = continuation
        .save
        .then(|| crate::strategy::checkpoint_path(dir, &trial.id));
    let mut forward = Forward {
        trial,
        observer,
        lost,
    };
    let job = JobFiles {
        resume: resume.as_ref().map(|(p, e)| (p.as_path(), e.as_slice())),
        save: save.as_deref(),
    };
    let result = match trial.config.precision {
        Precision::F32 => fit_job::<f32>(trial, data, data.sets_f32(false), &mut forward, &job),
        Precision::F64 => fit_job::<f64>(trial, data, data.sets_f64(false), &mut forward, &job),
    };
    let result = match result {
        Ok((report, warning)) => {
            if let Some(w) = warning {
                observer.on_warning(&w);
            }
            Ok(Some(report))
        }
        Err(e) => Err(e),
    };
    build_record(trial, master_seed, manifest, result, started_at, clock)
}

/// Where a strategy's trial continues from and saves to.
struct JobFiles<'a> {
    /// The previous rung's checkpoint and curve.
    resume: Option<(&'a std::path::Path, &'a [EpochMetrics])>,
    /// Where to save this trial's checkpoint.
    save: Option<&'a std::path::Path>,
}

/// [`fit_trial`] for a strategy's trial (see [`train_job`]); also returns a warning
/// when the checkpoint could not be used.
fn fit_job<F: MlpFloat>(
    trial: &Trial,
    data: &SearchData,
    sets: Sets<'_, F>,
    observer: &mut dyn Observer,
    job: &JobFiles<'_>,
) -> glorot_mlp::Result<(TrainReport, Option<String>)> {
    let (model, train) = trial_configs(trial, data.inputs(), data.classes());
    let model = model.validate()?;
    let train = train.validate()?;
    let fit = FitData {
        train: TrainData::new(sets.train_x, sets.train_y)?,
        validation: EvalData::new(sets.val_x, &data.val_labels)?,
        test: None,
    };
    let mut warning = None;
    let loaded =
        job.resume.and_then(
            |(path, prefix)| match glorot_mlp::Checkpoint::<F>::load(path) {
                Ok(c) if c.epoch() == prefix.len() && c.model().config() == &model => {
                    Some((c, prefix))
                }
                Ok(_) => {
                    warning = Some(format!(
                        "{} is not a checkpoint of this trial; training trial {} from scratch",
                        path.display(),
                        trial.id
                    ));
                    None
                }
                Err(e) => {
                    warning = Some(format!(
                        "{} cannot be read ({e}); training trial {} from scratch",
                        path.display(),
                        trial.id
                    ));
                    None
                }
            },
        );
    let (trainer, report) = match loaded {
        Some((checkpoint, prefix)) => {
            let (trainer, mut report) =
                glorot_mlp::continue_training(checkpoint, &train, &fit, observer)?;
            let mut epochs = prefix.to_vec();
            epochs.append(&mut report.epochs);
            report.epochs = epochs;
            (trainer, report)
        }
        None => {
            let mlp = Mlp::<F>::new(model, WeightSource::Seed(trial.seed))?;
            let mut trainer = Trainer::new(mlp, train)?;
            let report = trainer.fit(&fit, observer)?;
            (trainer, report)
        }
    };
    if let Some(path) = job.save
        && report.status == Status::Completed
    {
        trainer.checkpoint(report.epochs.len()).save(path)?;
    }
    Ok((report, warning))
}

/// The record of a trial from its training's result (`Ok(None)`: stopped).
fn build_record(
    trial: &Trial,
    master_seed: u64,
    manifest: &Manifest,
    result: glorot_mlp::Result<Option<TrainReport>>,
    started_at: f64,
    clock: Instant,
) -> Option<TrialRecord> {
    let result = match result {
        Ok(None) => return None,
        Ok(Some(report)) => Ok(report),
        Err(e) => Err(e),
    };
    let seconds = clock.elapsed().as_secs_f64();
    let kept_epoch = result.as_ref().ok().and_then(|r| r.kept_epoch);
    let (status, epochs) = match result {
        Ok(report) => match report.status {
            Status::Completed => (TrialStatus::Ok, report.epochs),
            Status::Diverged { epoch, .. } => (TrialStatus::Diverged { epoch }, report.epochs),
            Status::Cancelled { .. } => return None,
            #[allow(unreachable_patterns)]
            other => (
                TrialStatus::Failed {
                    message: format!("unexpected training status {other:?}"),
                },
                report.epochs,
            ),
        },
        Err(e) => (
            TrialStatus::Failed {
                message: error_chain(&e),
            },
            Vec::new(),
        ),
    };
    let ok = status == TrialStatus::Ok;
    // The epoch whose weights the trial ends with: the kept one under early stopping.
    let kept = match kept_epoch {
        Some(k) => epochs.iter().find(|e| e.epoch == k),
        None => epochs.last(),
    };
    let seconds_per_epoch = if epochs.is_empty() {
        0.0
    } else {
        epochs.iter().map(|e| e.seconds).sum::<f64>() / epochs.len() as f64
    };
    Some(TrialRecord {
        schema_version: RECORD_SCHEMA_VERSION,
        id: trial.id.clone(),
        index: trial.index,
        config: trial.config.clone(),
        master_seed,
        seed: trial.seed,
        final_val_accuracy: if ok {
            kept.map(|e| e.val_accuracy)
        } else {
            None
        },
        final_train_loss: if ok { kept.map(|e| e.train_loss) } else { None },
        kept_epoch: if ok { kept_epoch } else { None },
        status,
        epochs,
        timings: Timings {
            started_at,
            seconds,
            seconds_per_epoch,
        },
        manifest: manifest.clone(),
    })
}

/// The model and training configurations a trial describes.
pub fn trial_configs(trial: &Trial, inputs: usize, classes: usize) -> (ModelConfig, TrainConfig) {
    let c = &trial.config;
    let mut layers = Vec::with_capacity(c.hidden.len() + 2);
    layers.push(inputs);
    layers.extend_from_slice(&c.hidden);
    layers.push(classes);
    let model = ModelConfig {
        layers,
        activation: c.activation,
        head: Head::SigmoidBce,
        init: c.init,
    };
    let train = TrainConfig {
        epochs: c.epochs,
        batch_size: c.batch_size,
        learning_rate: c.learning_rate,
        seed: trial.seed,
        shuffle: c.shuffle,
        precision: c.precision,
        arithmetic: Arithmetic::Fast,
        optimizer: c.optimizer,
        lr_schedule: c.lr_schedule,
        warmup_epochs: c.warmup_epochs,
        early_stopping: c.early_stopping,
    };
    (model, train)
}

/// Forwards the trainer's epoch events to the search observer.
struct Forward<'a> {
    trial: &'a Trial,
    observer: &'a dyn SearchObserver,
    /// Set when the trial's claim is lost: stop training it.
    lost: &'a AtomicBool,
}

impl Observer for Forward<'_> {
    fn on_epoch_end(&mut self, metrics: &EpochMetrics) {
        self.observer.on_epoch(self.trial, metrics);
    }

    fn should_stop(&self) -> bool {
        self.observer.should_stop() || self.lost.load(Ordering::Relaxed)
    }
}

/// The best trial retrained from its seed, with the test split evaluated at the end.
/// The notebook never measured test accuracy; this is the one look at the test set.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestEvaluation {
    /// The trial.
    pub id: crate::trial::TrialId,
    /// Test accuracy, percent.
    pub test_accuracy: f64,
    /// Test loss (the training loss function on the test split).
    pub test_loss: f64,
    /// Whether the retrained validation curve equals the journal's record exactly
    /// (it should: a trial depends only on its config and seed).
    pub reproduced_record: bool,
}

/// Retrains `trial` from its seed on the same data and evaluates the test split once.
/// `Ok(None)` when `data` has no test split.
pub fn evaluate_on_test(
    trial: &Trial,
    data: &SearchData,
    recorded: Option<&TrialRecord>,
) -> Result<Option<TestEvaluation>> {
    evaluate_on_test_observed(trial, data, recorded, &Quiet)
}

/// As [`evaluate_on_test`], reporting the retraining's epochs to `observer`, which may
/// also stop it (then `Ok(None)`).
pub fn evaluate_on_test_observed(
    trial: &Trial,
    data: &SearchData,
    recorded: Option<&TrialRecord>,
    observer: &dyn SearchObserver,
) -> Result<Option<TestEvaluation>> {
    evaluate_on_test_saving(trial, data, recorded, observer, None)
}

/// As [`evaluate_on_test_observed`], also saving the retrained model's weights to `save`
/// when the retraining completes ([`glorot_mlp::Mlp::save_with_metadata`], with the
/// trial's id under `trial` and its seed under `seed` in the file's metadata).
pub fn evaluate_on_test_saving(
    trial: &Trial,
    data: &SearchData,
    recorded: Option<&TrialRecord>,
    observer: &dyn SearchObserver,
    save: Option<&std::path::Path>,
) -> Result<Option<TestEvaluation>> {
    if data.test_x.is_none() {
        return Ok(None);
    }
    let not_lost = AtomicBool::new(false);
    let mut forward = Forward {
        trial,
        observer,
        lost: &not_lost,
    };
    let report = match trial.config.precision {
        Precision::F32 => fit_trial::<f32>(trial, data, data.sets_f32(true), &mut forward, save)?,
        Precision::F64 => fit_trial::<f64>(trial, data, data.sets_f64(true), &mut forward, save)?,
    };
    let (Some(test_accuracy), Some(test_loss)) = (report.test_accuracy, report.test_loss) else {
        return Ok(None);
    };
    let reproduced_record = recorded.is_some_and(|r| {
        r.epochs.len() == report.epochs.len()
            && r.epochs.iter().zip(&report.epochs).all(|(a, b)| {
                a.train_loss.to_bits() == b.train_loss.to_bits()
                    && a.val_accuracy.to_bits() == b.val_accuracy.to_bits()
            })
    });
    Ok(Some(TestEvaluation {
        id: trial.id.clone(),
        test_accuracy,
        test_loss,
        reproduced_record,
    }))
}

/// Views of the splits in one precision.
struct Sets<'a, F: Float> {
    train_x: ArrayView2<'a, F>,
    train_y: ArrayView2<'a, F>,
    val_x: ArrayView2<'a, F>,
    test_x: Option<ArrayView2<'a, F>>,
}

impl SearchData {
    fn sets_f32(&self, with_test: bool) -> Sets<'_, f32> {
        Sets {
            train_x: self.train_x.view(),
            train_y: self.train_y.view(),
            val_x: self.val_x.view(),
            test_x: self.test_x.as_ref().filter(|_| with_test).map(|t| t.view()),
        }
    }

    fn sets_f64(&self, with_test: bool) -> Sets<'_, f64> {
        let c = self.f64();
        Sets {
            train_x: c.train_x.view(),
            train_y: c.train_y.view(),
            val_x: c.val_x.view(),
            test_x: c.test_x.as_ref().filter(|_| with_test).map(|t| t.view()),
        }
    }
}

/// Builds, trains and (when `sets` has a test split) tests the trial's model; saves its
/// weights to `save` when the training completes.
fn fit_trial<F: MlpFloat>(
    trial: &Trial,
    data: &SearchData,
    sets: Sets<'_, F>,
    observer: &mut dyn Observer,
    save: Option<&std::path::Path>,
) -> glorot_mlp::Result<TrainReport> {
    let (model, train) = trial_configs(trial, data.inputs(), data.classes());
    let model = Mlp::<F>::new(model.validate()?, WeightSource::Seed(trial.seed))?;
    let mut trainer = Trainer::new(model, train.validate()?)?;
    let test = match sets.test_x {
        Some(x) => Some(EvalData::new(x, &data.test_labels)?),
        None => None,
    };
    let fit = FitData {
        train: TrainData::new(sets.train_x, sets.train_y)?,
        validation: EvalData::new(sets.val_x, &data.val_labels)?,
        test,
    };
    let report = trainer.fit(&fit, observer)?;
    if let Some(path) = save
        && report.status == Status::Completed
    {
        let metadata = std::collections::BTreeMap::from([
            ("trial".to_owned(), trial.id.to_string()),
            ("seed".to_owned(), trial.seed.to_string()),
        ]);
        trainer.model().save_with_metadata(path, &metadata)?;
    }
    Ok(report)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
