//! The results directory is the journal: one JSON file per finished trial.
//!
//! Layout of a results directory:
//!
//! ```text
//! <dir>/search.json          the search context (master seed, data, shuffle); checked on resume
//! <dir>/trials/<id>.json     one TrialRecord per finished trial, written atomically
//! <dir>/trials/<id>.claim    the trial is being trained: who, since when (heartbeat = mtime)
//! <dir>/trials/quarantine/   unreadable records moved aside by a run, each with <name>.reason
//! <dir>/summary.json         written by `merge` (ranking, best)
//! <dir>/trials.csv           written by `merge` (one row per trial)
//! <dir>/grid.json            the grid that ran (a plain grid file), so that `status`,
//!                            `merge`, `best` and a resumed run need only the directory
//! <dir>/shards.json          `{"count": N}` of a sharded search, for `status`
//! <dir>/best_test.json       the best trial retrained once with the test split:
//!                            `{"key": "<id> seed=<seed> <data>", "evaluation": ...}`
//! <dir>/strategy.json        a strategy's plan: the sampled configurations, the brackets
//! <dir>/rungs/b<s>-r<i>.json a strategy's decided rung (ranking, promotions)
//! <dir>/checkpoints/<id>.safetensors  the state a strategy's promoted trial continues from
//! <dir>/strategy_summary.json         written by `merge` of a strategy
//! ```
//!
//! The strategy files' rules live in [`crate::strategy`]; a strategy's trials are
//! ordinary trials of this journal (claimed, recorded, resumed as a grid's).
//!
//! The rules of the directory live here: [`store_grid`] and [`stored_grid`],
//! [`store_shard_count`] and [`stored_shard_count`], [`finished_ids`] (a trial is
//! finished when it has a final record with the seed the grid gives it), [`StatusCounts`]
//! (what `status` counts), and [`BestTest`] (`best_test.json`, reused while its key
//! matches). Results files are written by [`write_json`] (pretty JSON and a newline);
//! records, `search.json` and `summary.json` have no final newline.
//!
//! A record is serialised to `trials/.<id>.json.<pid>.<n>.tmp`, flushed to disk,
//! then renamed over `trials/<id>.json` (an atomic replace on POSIX file systems),
//! and the directory is synced. A process killed at any moment therefore leaves
//! either the complete old state or the complete new record, never a torn file:
//! only trials in flight are lost. Shards never share a trial, and temporary
//! names carry the process id, so any number of processes can write one directory.
//!
//! ## Claims: each trial trained once, by any number of runners
//!
//! Runners on one directory (threads, processes, Slurm array tasks on several machines
//! of a shared file system) agree through one claim file per trial,
//! `trials/<id>.claim` ([`ClaimInfo`]: host, boot id, pid, process start time, when,
//! a unique token). A runner trains a trial only while it holds its claim:
//!
//! 1. A trial with a final record is done: skip it.
//! 2. Create the claim atomically and exclusively (its content written to a temporary
//!    file, hard-linked to the claim's name: the link fails when the name exists).
//!    Having it, read the record again (a runner may have recorded the trial and
//!    released its claim in between): if it is now final, release the claim and skip.
//! 3. While training, refresh the claim's modification time every
//!    [`ClaimPolicy::heartbeat`]; a runner that finds its claim gone or replaced stops
//!    that trial without recording it.
//! 4. Write the record (if the claim is still this runner's), then remove the claim.
//! 5. A claim held by another runner is left alone while it is alive; it is stale when
//!    its process is dead (same host and boot: no such pid, a zombie, or a reused pid)
//!    or, for another host, when its heartbeat is older than
//!    [`ClaimPolicy::stale_after`]. A stale claim is renamed to a unique name (one
//!    runner's rename succeeds), checked to be the claim judged stale (else put back),
//!    and deleted; then the trial is claimed as in 2.
//! 6. A runner with nothing left to claim waits for the trials others hold, taking
//!    them over when they go stale, until every trial of its shard is recorded: when all
//!    runners exit normally, the grid (or shard) is complete.
//!
//! ## Files that are not records
//!
//! A `trials/*.json` whose name is not a trial id is not a record: ignored (reported by
//! [`Journal::scan`]). A record file that cannot be read (truncated, empty, another
//! shape, named after another trial) is not counted; a run holding the trial's claim
//! moves it to `trials/quarantine/` with the reason ([`Journal::quarantine`]) and trains
//! the trial again. A record of a newer schema version is refused
//! ([`Error::NewerRecord`]). Temporary files that no live writer can own are removed
//! when a run starts ([`Journal::remove_stale_temporary_files`]).
//!
//! A runner killed at any moment leaves at most its claims (taken over at once by a
//! runner on the same machine, after `stale_after` by others) and temporary files.
//! The shared file system must make exclusive creation, hard links and renames atomic
//! across machines (local file systems, NFSv3 and later, Lustre, GPFS/Spectrum Scale,
//! BeeGFS do).

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

use glorot_mlp::EpochMetrics;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    claim::{self, CLAIM_SUFFIX},
    manifest::Manifest,
    runner::TestEvaluation,
    shard::Shard,
    spec::{GridSpec, Trial, ValidGrid},
    summary::Summary,
    trial::{TrialConfig, TrialId},
};

pub use crate::claim::{ClaimInfo, ClaimPolicy, ClaimStatus};

/// Version of the trial record format (`schema_version` in every file). Version 2 writes
/// the seeds as decimal strings ([`glorot_mlp::seed_text`]); version 1 records (seeds as
/// JSON numbers) are still read, and count as finished trials.
pub const RECORD_SCHEMA_VERSION: u32 = 2;

/// Version of `search.json`. Version 2 adds `schema_version` and writes `master_seed` as
/// a decimal string; a file without `schema_version` is version 1 (the seed a number) and
/// is still read, so a search started before resumes as the same search.
pub const CONTEXT_SCHEMA_VERSION: u32 = 2;

/// `search.json` as stored: the version, then the context's fields.
#[derive(Serialize, Deserialize)]
struct ContextFile<C> {
    #[serde(default = "context_version_1")]
    schema_version: u32,
    #[serde(flatten)]
    context: C,
}

fn context_version_1() -> u32 {
    1
}

/// Reads `search.json`'s bytes; a version newer than [`CONTEXT_SCHEMA_VERSION`] is an
/// [`Error::NewerRecord`].
fn parse_context(path: &Path, bytes: &[u8]) -> Result<SearchContext> {
    let file: ContextFile<SearchContext> =
        serde_json::from_slice(bytes).map_err(|e| Error::CorruptRecord {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if file.schema_version > CONTEXT_SCHEMA_VERSION {
        return Err(Error::NewerRecord {
            path: path.to_owned(),
            found: file.schema_version,
            supported: CONTEXT_SCHEMA_VERSION,
        });
    }
    Ok(file.context)
}

/// How a trial ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TrialStatus {
    /// Every epoch ran with finite losses.
    Ok,
    /// The training loss became non-finite during this (1-based) epoch; training stopped.
    Diverged {
        /// The epoch, 1-based.
        epoch: usize,
    },
    /// The trial could not run (the message says why). Failed trials are rerun on resume.
    Failed {
        /// What went wrong.
        message: String,
    },
}

impl TrialStatus {
    /// Whether resuming should skip this trial (ok or diverged: both are results).
    pub fn is_final(&self) -> bool {
        !matches!(self, TrialStatus::Failed { .. })
    }
}

/// Wall-clock timings of a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Start, seconds since the Unix epoch.
    pub started_at: f64,
    /// Total wall time in seconds (training, validation, writing excluded).
    pub seconds: f64,
    /// Mean wall time of one epoch in seconds (0 when no epoch ran).
    pub seconds_per_epoch: f64,
}

/// One finished trial, as stored in `trials/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// [`RECORD_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable id (also the file name).
    pub id: TrialId,
    /// Position in the grid's canonical order.
    pub index: usize,
    /// What was trained.
    pub config: TrialConfig,
    /// The master seed of the search (a decimal string since version 2; a number before).
    #[serde(with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// The trial's own seed, derived from the master seed and the id (as `master_seed`).
    #[serde(with = "glorot_mlp::seed_text")]
    pub seed: u64,
    /// How it ended.
    pub status: TrialStatus,
    /// Per-epoch curves (as many as ran).
    pub epochs: Vec<EpochMetrics>,
    /// Validation accuracy after the last epoch (the kept epoch under early stopping),
    /// percent; `null` unless status is ok.
    pub final_val_accuracy: Option<f64>,
    /// Mean training loss of the last epoch (the kept epoch under early stopping); `null`
    /// unless status is ok.
    pub final_train_loss: Option<f64>,
    /// Under early stopping, the epoch (from 1) whose weights the trial ends with (the
    /// best by the monitored validation metric; `epochs` shows whether it stopped early);
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<usize>,
    /// Timings.
    pub timings: Timings,
    /// Where and how it ran.
    pub manifest: Manifest,
}

/// The search context stored in `search.json`: settings that change every trial's
/// result without changing its id. A resume with different values is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchContext {
    /// Master seed (a decimal string; a number in files written before version 2).
    #[serde(with = "glorot_mlp::seed_text")]
    pub master_seed: u64,
    /// A description of the data (dataset, split sizes, subset, scaling, digests).
    pub data: String,
}

/// Writes `bytes` to `path` atomically: a unique temporary file in the same
/// directory, flushed and synced, then renamed over `path`; then the directory
/// is synced so the rename itself survives a crash. This is
/// [`glorot_mlp::io::write_atomic`] (which also writes the weights, so that every file
/// has the same permissions) with this crate's error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    glorot_mlp::io::write_atomic(path, bytes).map_err(|e| Error::io(e.action, e.path, e.source))
}

/// Writes `value` as pretty JSON and a newline to `path` atomically ([`write_atomic`]),
/// creating the parent directory: the one writer of results files (`grid.json`,
/// `shards.json`, `best_test.json` here, and the studies' results). Trial records,
/// `search.json` and `summary.json` keep their own format (no final newline).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| Error::Serialize {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    json.push(b'\n');
    write_atomic(path, &json)
}

/// A results directory used as a journal.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
    policy: ClaimPolicy,
}

impl Journal {
    /// Opens (creating if needed) a results directory for a search with `context`.
    /// Fails with [`Error::IncompatibleJournal`] when the directory holds a search
    /// with another master seed or other data.
    pub fn open(dir: &Path, context: &SearchContext) -> Result<Self> {
        let journal = Journal {
            dir: dir.to_owned(),
            policy: ClaimPolicy::default(),
        };
        fs::create_dir_all(journal.trials_dir())
            .map_err(|e| Error::io("creating", journal.trials_dir(), e))?;
        let ctx_path = dir.join(CONTEXT_FILE);
        match fs::read(&ctx_path) {
            Ok(bytes) => {
                let found = parse_context(&ctx_path, &bytes)?;
                if found.master_seed != context.master_seed {
                    return Err(Error::IncompatibleJournal {
                        dir: dir.to_owned(),
                        what: "master seed",
                        found: found.master_seed.to_string(),
                        expected: context.master_seed.to_string(),
                    });
                }
                if found.data != context.data {
                    return Err(Error::IncompatibleJournal {
                        dir: dir.to_owned(),
                        what: "data",
                        found: found.data,
                        expected: context.data.clone(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = ContextFile {
                    schema_version: CONTEXT_SCHEMA_VERSION,
                    context,
                };
                let json = serde_json::to_vec_pretty(&file).expect("context serialises");
                write_atomic(&ctx_path, &json)?;
            }
            Err(e) => return Err(Error::io("reading", ctx_path, e)),
        }
        Ok(journal)
    }

    /// Opens an existing results directory for reading (status, merge).
    pub fn open_existing(dir: &Path) -> Result<(Self, SearchContext)> {
        let ctx_path = dir.join(CONTEXT_FILE);
        let bytes = fs::read(&ctx_path).map_err(|e| Error::io("reading", &ctx_path, e))?;
        let ctx = parse_context(&ctx_path, &bytes)?;
        Ok((
            Journal {
                dir: dir.to_owned(),
                policy: ClaimPolicy::default(),
            },
            ctx,
        ))
    }

    /// The same journal with another claim policy (heartbeat interval, staleness).
    pub fn with_claim_policy(mut self, policy: ClaimPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The claim policy ([`ClaimPolicy::default`] unless set).
    pub fn claim_policy(&self) -> ClaimPolicy {
        self.policy
    }

    /// The claim file of one trial.
    pub fn claim_path(&self, id: &TrialId) -> PathBuf {
        claim::claim_path(&self.trials_dir(), id)
    }

    /// The trials claimed right now (being trained, or abandoned by a killed runner and
    /// not yet taken over), sorted by id.
    pub fn claims(&self) -> Result<Vec<ClaimStatus>> {
        let dir = self.trials_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(CLAIM_SUFFIX) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if let Some(found) = claim::read(&entry.path())? {
                out.push(ClaimStatus {
                    id: TrialId(id.to_owned()),
                    stale: found.is_stale(&self.policy),
                    heartbeat_age: found.heartbeat_age.as_secs_f64(),
                    claim: found.info,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/trials`.
    pub fn trials_dir(&self) -> PathBuf {
        self.dir.join("trials")
    }

    /// The file of one trial.
    pub fn record_path(&self, id: &TrialId) -> PathBuf {
        self.trials_dir().join(format!("{id}.json"))
    }

    /// Stores a finished trial atomically.
    pub fn write(&self, record: &TrialRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("records serialise");
        write_atomic(&self.record_path(&record.id), &json)
    }

    /// Reads one trial's record, if it has one. An unreadable record is an
    /// [`Error::CorruptRecord`] here; [`Journal::read_file`] tells it apart instead.
    pub fn read(&self, id: &TrialId) -> Result<Option<TrialRecord>> {
        match self.read_file(id)? {
            RecordFile::Missing => Ok(None),
            RecordFile::Record(r) => Ok(Some(*r)),
            RecordFile::Unreadable { path, reason } => Err(Error::CorruptRecord {
                path,
                message: reason,
            }),
        }
    }

    /// What `trials/<id>.json` holds. A record of a newer schema version is an
    /// [`Error::NewerRecord`]: this glorot cannot judge it, so it neither uses nor moves it.
    pub fn read_file(&self, id: &TrialId) -> Result<RecordFile> {
        let path = self.record_path(id);
        match fs::read(&path) {
            Ok(bytes) => classify(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RecordFile::Missing),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Every record in the directory, sorted by grid index then id; files that are not
    /// readable records are left out (see [`Journal::scan`] for them).
    pub fn records(&self) -> Result<Vec<TrialRecord>> {
        Ok(self.scan()?.records)
    }

    /// Reads `trials/`: the records, sorted by grid index then id, and the files that are
    /// not readable records. Temporary files (trials in flight, or left by a killed
    /// process), claims and `quarantine/` are not records and are skipped. Fails on a
    /// record of a newer schema version ([`Error::NewerRecord`]).
    pub fn scan(&self) -> Result<Scan> {
        let dir = self.trials_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))?;
        let mut scan = Scan::default();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let path = entry.path();
            if !is_trial_id(name.trim_end_matches(".json")) {
                scan.strays.push(path);
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // Moved aside by another process meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("reading", &path, e)),
            };
            match classify(&path, &bytes)? {
                RecordFile::Record(r) => scan.records.push(*r),
                RecordFile::Unreadable { path, reason } => scan.unreadable.push((path, reason)),
                RecordFile::Missing => {}
            }
        }
        scan.records
            .sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
        scan.unreadable.sort();
        scan.strays.sort();
        Ok(scan)
    }

    /// Moves the unreadable record `path` to `trials/quarantine/` (a numbered name if one
    /// is there already), next to `<name>.reason` saying why. Returns the new path.
    /// Runners do this only while holding the trial's claim, so that a record being
    /// written meanwhile is never moved.
    pub fn quarantine(&self, path: &Path, reason: &str) -> Result<PathBuf> {
        let dir = self.trials_dir().join(QUARANTINE_DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut target = dir.join(&name);
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(path, &target).map_err(|e| Error::io("moving aside", path, e))?;
        let reason_path = target.with_file_name(format!(
            "{}.reason",
            target.file_name().unwrap_or_default().to_string_lossy()
        ));
        write_atomic(&reason_path, format!("{reason}\n").as_bytes())?;
        Ok(target)
    }

    /// Temporary files present (trials being written right now, or debris of a
    /// killed process; harmless either way).
    pub fn temporary_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.trials_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .map(|e| e.path())
            .collect())
    }

    /// Removes the temporary files of `trials/` and of the directory itself that no live
    /// writer can still be using: those older than [`ClaimPolicy::stale_after`], and
    /// those of a process of this host that is gone once they are older than
    /// [`ClaimPolicy::heartbeat`] (a write takes milliseconds; the age guards against a
    /// pid of another host sharing the file system). Returns what was removed.
    pub fn remove_stale_temporary_files(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for dir in [
            self.trials_dir(),
            self.dir.clone(),
            // A strategy's checkpoints and rung decisions (`crate::strategy`).
            self.dir.join(crate::strategy::CHECKPOINTS_DIR),
            self.dir.join(crate::strategy::RUNGS_DIR),
        ] {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("listing", &dir, e)),
            };
            for entry in entries.filter_map(|e| e.ok()) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = temporary_file_pid(&name) else {
                    continue;
                };
                let Ok(age) = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| SystemTime::now().duration_since(t).unwrap_or_default())
                else {
                    continue;
                };
                let dead_here = claim::process_is_gone(pid) && age > self.policy.heartbeat;
                if age > self.policy.stale_after || dead_here {
                    match fs::remove_file(entry.path()) {
                        Ok(()) => removed.push(entry.path()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("removing", entry.path(), e)),
                    }
                }
            }
        }
        removed.sort();
        Ok(removed)
    }
}

/// `trials/quarantine/`: unreadable records moved aside, each with a `.reason` file.
pub const QUARANTINE_DIR: &str = "quarantine";

/// What a record file holds ([`Journal::read_file`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RecordFile {
    /// There is no record.
    Missing,
    /// A valid record.
    Record(Box<TrialRecord>),
    /// A file that cannot be read as a record (truncated, empty, not a record, or named
    /// after another trial): moved aside by the next run, which reruns the trial.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
}

/// The content of `trials/` ([`Journal::scan`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scan {
    /// The records, sorted by grid index then id.
    pub records: Vec<TrialRecord>,
    /// Files named like records that cannot be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
    /// `.json` files whose name is not a trial id (ignored).
    pub strays: Vec<PathBuf>,
}

/// Whether `name` has the form of a trial id: a readable part and `-` with 12 hex digits.
fn is_trial_id(name: &str) -> bool {
    name.rsplit_once('-').is_some_and(|(head, hash)| {
        !head.is_empty() && hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The process id in a temporary file's name, `.<name>.<pid>.<n>.tmp`.
fn temporary_file_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = stem.rsplit('.');
    let n = parts.next()?;
    let pid = parts.next()?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Reads a record file's bytes: a record, an unreadable file, or a newer schema.
fn classify(path: &Path, bytes: &[u8]) -> Result<RecordFile> {
    match parse_record(path, bytes) {
        Ok(r) => Ok(RecordFile::Record(Box::new(r))),
        Err(e @ Error::NewerRecord { .. }) => Err(e),
        Err(Error::CorruptRecord { path, message }) => Ok(RecordFile::Unreadable {
            path,
            reason: message,
        }),
        Err(e) => Err(e),
    }
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<TrialRecord> {
    // The version first: a newer record may not parse as this version's.
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    if let Ok(v) = serde_json::from_slice::<Version>(bytes)
        && v.schema_version > RECORD_SCHEMA_VERSION
    {
        return Err(Error::NewerRecord {
            path: path.to_owned(),
            found: v.schema_version,
            supported: RECORD_SCHEMA_VERSION,
        });
    }
    let record: TrialRecord = serde_json::from_slice(bytes).map_err(|e| Error::CorruptRecord {
        path: path.to_owned(),
        message: if bytes.is_empty() {
            "the file is empty".to_owned()
        } else {
            e.to_string()
        },
    })?;
    if record.schema_version == 0 {
        return Err(Error::CorruptRecord {
            path: path.to_owned(),
            message: format!(
                "schema_version {} (this glorot reads 1 to {RECORD_SCHEMA_VERSION})",
                record.schema_version
            ),
        });
    }
    let expected = format!("{}.json", record.id);
    if path
        .file_name()
        .is_some_and(|n| n.to_string_lossy() != expected)
    {
        return Err(Error::CorruptRecord {
            path: path.to_owned(),
            message: format!(
                "the record's id is {} but the file is not named {expected}",
                record.id
            ),
        });
    }
    Ok(record)
}

/// `grid.json`: the grid of the search in a results directory.
pub const GRID_FILE: &str = "grid.json";
/// `shards.json`: the shard count of a sharded search.
pub const SHARDS_FILE: &str = "shards.json";
/// `best_test.json`: the best trial's one test evaluation.
pub const BEST_TEST_FILE: &str = "best_test.json";
/// `search.json`: the search context; its presence makes a directory a search.
pub const CONTEXT_FILE: &str = "search.json";

/// Whether `dir` holds a search (a `search.json`).
pub fn has_search(dir: &Path) -> bool {
    dir.join(CONTEXT_FILE).exists()
}

/// The grid stored in `dir`, `None` when there is none.
pub fn stored_grid(dir: &Path) -> Option<Result<GridSpec>> {
    let path = dir.join(GRID_FILE);
    path.exists().then(|| GridSpec::from_file(&path))
}

/// What [`store_grid`] found in the directory.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoredGrid {
    /// No grid, or the same grid: nothing to say.
    Same,
    /// Another grid was replaced (finished trials of both stay in the journal).
    ReplacedOther,
    /// An unreadable grid file was replaced.
    ReplacedUnreadable(Error),
}

/// Stores `grid` in `<dir>/grid.json`, replacing a different one.
pub fn store_grid(dir: &Path, grid: &ValidGrid) -> Result<StoredGrid> {
    let found = match stored_grid(dir) {
        None => StoredGrid::Same,
        Some(Ok(stored)) if &stored == grid.spec() => return Ok(StoredGrid::Same),
        Some(Ok(_)) => StoredGrid::ReplacedOther,
        Some(Err(e)) => StoredGrid::ReplacedUnreadable(e),
    };
    write_json(&dir.join(GRID_FILE), grid.spec())?;
    Ok(found)
}

#[derive(Debug, Serialize, Deserialize)]
struct ShardsFile {
    count: usize,
}

/// Records that the search in `dir` runs in `count` shards.
pub fn store_shard_count(dir: &Path, count: usize) -> Result<()> {
    write_json(&dir.join(SHARDS_FILE), &ShardsFile { count })
}

/// The shard count recorded in `dir`: 1 when none is (or it cannot be read).
pub fn stored_shard_count(dir: &Path) -> usize {
    fs::read(dir.join(SHARDS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<ShardsFile>(&b).ok())
        .map_or(1, |s| s.count.max(1))
}

/// Ids of the grid's trials that have a final record in `dir` with the seed the grid
/// gives them (empty when `dir` holds no search yet).
pub fn finished_ids(dir: &Path, grid: &ValidGrid) -> Result<HashSet<TrialId>> {
    if !has_search(dir) {
        return Ok(HashSet::new());
    }
    let (journal, _) = Journal::open_existing(dir)?;
    let seeds: HashMap<_, _> = grid.trials().into_iter().map(|t| (t.id, t.seed)).collect();
    Ok(journal
        .records()?
        .into_iter()
        .filter(|r| r.status.is_final() && seeds.get(&r.id) == Some(&r.seed))
        .map(|r| r.id)
        .collect())
}

/// A trial recorded as failed (rerun by the next run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedTrial {
    /// The trial.
    pub id: TrialId,
    /// Why it failed.
    pub message: String,
}

/// One shard's progress.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardStatus {
    /// The shard.
    pub shard: Shard,
    /// Trials of the grid in it.
    pub total: usize,
    /// Of those, finished.
    pub finished: usize,
}

/// What `status` counts in a results directory, beyond the [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct StatusCounts {
    /// Finished trials that completed.
    pub ok: usize,
    /// Finished trials whose loss diverged.
    pub diverged: usize,
    /// Trials recorded as failed.
    pub failed: Vec<FailedTrial>,
    /// Records of trials that are not in this grid (kept, ignored by merge).
    pub outside_grid: usize,
    /// Per-shard counts (empty for one shard).
    pub shards: Vec<ShardStatus>,
}

impl StatusCounts {
    /// Counts `records` (of the directory) against `grid` and its `summary`, per shard
    /// for `shard_count` shards.
    pub fn new(
        grid: &ValidGrid,
        summary: &Summary,
        records: &[TrialRecord],
        shard_count: usize,
    ) -> Self {
        let trials = grid.trials();
        let in_grid: HashSet<_> = trials.iter().map(|t| t.id.clone()).collect();
        let count = |pred: fn(&TrialStatus) -> bool| {
            summary.ranking.iter().filter(|r| pred(&r.status)).count()
        };
        let finished: HashSet<_> = summary
            .ranking
            .iter()
            .filter(|r| r.status.is_final())
            .map(|r| r.index)
            .collect();
        let shards = if shard_count > 1 {
            (0..shard_count)
                .map(|i| {
                    let shard = Shard::new(i, shard_count).expect("index below count");
                    let mine: Vec<_> = trials.iter().filter(|t| shard.contains(t.index)).collect();
                    ShardStatus {
                        shard,
                        total: mine.len(),
                        finished: mine.iter().filter(|t| finished.contains(&t.index)).count(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        StatusCounts {
            ok: count(|s| matches!(s, TrialStatus::Ok)),
            diverged: count(|s| matches!(s, TrialStatus::Diverged { .. })),
            failed: summary
                .ranking
                .iter()
                .filter_map(|r| match &r.status {
                    TrialStatus::Failed { message } => Some(FailedTrial {
                        id: r.id.clone(),
                        message: message.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            outside_grid: records.iter().filter(|r| !in_grid.contains(&r.id)).count(),
            shards,
        }
    }
}

/// `best_test.json`: the best trial retrained from its seed and evaluated once on the
/// test split, with the key of what determined it (trial, seed, data); a rerun with the
/// same key may reuse it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestTest {
    /// `<id> seed=<seed> <data description>`.
    pub key: String,
    /// The evaluation (`null` when the retrained model had no test result).
    pub evaluation: Option<TestEvaluation>,
}

impl BestTest {
    /// The key of `trial` trained on data described by `data`.
    pub fn key(trial: &Trial, data: &str) -> String {
        format!("{} seed={} {}", trial.id, trial.seed, data)
    }

    /// Reads `<dir>/best_test.json`; `Ok(None)` when it does not exist or does not parse.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(BEST_TEST_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Writes `<dir>/best_test.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json(&dir.join(BEST_TEST_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Nothing stored yet: no grid, one shard, no search, no finished trial.
        assert!(stored_grid(d).is_none());
        assert_eq!(stored_shard_count(d), 1);
        assert!(!has_search(d));
        let grid = GridSpec::preset("tiny").unwrap().validate().unwrap();
        assert!(finished_ids(d, &grid).unwrap().is_empty());

        assert!(matches!(store_grid(d, &grid).unwrap(), StoredGrid::Same));
        assert_eq!(&stored_grid(d).unwrap().unwrap(), grid.spec());
        let mut other = grid.spec().clone();
        other.master_seed += 1;
        let other = other.validate().unwrap();
        assert!(matches!(
            store_grid(d, &other).unwrap(),
            StoredGrid::ReplacedOther
        ));
        fs::write(d.join(GRID_FILE), b"{").unwrap();
        assert!(matches!(
            store_grid(d, &grid).unwrap(),
            StoredGrid::ReplacedUnreadable(_)
        ));
        // Results files end with a newline; the grid file is a plain grid file.
        let bytes = fs::read(d.join(GRID_FILE)).unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'));

        store_shard_count(d, 4).unwrap();
        assert_eq!(stored_shard_count(d), 4);

        let trial = &grid.trials()[0];
        let key = BestTest::key(trial, "data");
        assert_eq!(key, format!("{} seed={} data", trial.id, trial.seed));
        assert_eq!(BestTest::read(d).unwrap(), None);
        let best = BestTest {
            key,
            evaluation: None,
        };
        best.write(d).unwrap();
        assert_eq!(BestTest::read(d).unwrap(), Some(best));
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn atomic_write_into_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("a.json");
        let err = write_atomic(&p, b"x").unwrap_err().to_string();
        assert!(err.contains("a.json"), "{err}");
    }

    #[test]
    fn floats_read_back_bit_for_bit() {
        // Records are compared bit for bit after a trip through JSON (resumption,
        // `reproduced_record`); serde_json's default parser can be 1 ulp off, which
        // the workspace's `float_roundtrip` feature fixes.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
        for x in [
            0.1_f64 + 0.2,
            2.220_446_049_250_313e-16,
            5e-324,
            1.797_693_134_862_315_7e308,
        ] {
            let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{x:e}");
        }
    }

    #[test]
    fn journal_refuses_a_different_search() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SearchContext {
            master_seed: 1,
            data: "mnist".into(),
        };
        Journal::open(dir.path(), &ctx).unwrap();
        Journal::open(dir.path(), &ctx).unwrap();
        let other = SearchContext {
            master_seed: 2,
            ..ctx.clone()
        };
        assert!(matches!(
            Journal::open(dir.path(), &other),
            Err(Error::IncompatibleJournal {
                what: "master seed",
                ..
            })
        ));
        let other = SearchContext {
            data: "fashion".into(),
            ..ctx
        };
        assert!(matches!(
            Journal::open(dir.path(), &other),
            Err(Error::IncompatibleJournal { what: "data", .. })
        ));
    }
}
