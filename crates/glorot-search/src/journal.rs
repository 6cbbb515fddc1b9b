//! The results directory is the journal: one JSON file per finished trial.
//!
//! Layout of a results directory:
//!
//! ```text
//! <dir>/search.json          the search context (master seed, data, shuffle); checked on resume
//! <dir>/trials/<id>.json     one TrialRecord per finished trial, written atomically
//! <dir>/summary.json         written by `merge` (ranking, best)
//! <dir>/trials.csv           written by `merge` (one row per trial)
//! ```
//!
//! A record is serialised to `trials/.<id>.json.<pid>.<n>.tmp`, flushed to disk,
//! then renamed over `trials/<id>.json` (an atomic replace on POSIX file systems),
//! and the directory is synced. A process killed at any moment therefore leaves
//! either the complete old state or the complete new record, never a torn file:
//! only trials in flight are lost. Shards never share a trial, and temporary
//! names carry the process id, so any number of processes can write one directory.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use glorot_mlp::EpochMetrics;
use serde::{Deserialize, Serialize};

use crate::{
    Error, Result,
    manifest::Manifest,
    trial::{TrialConfig, TrialId},
};

/// Version of the trial record format (`schema_version` in every file).
pub const RECORD_SCHEMA_VERSION: u32 = 1;

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
    /// The master seed of the search.
    pub master_seed: u64,
    /// The trial's own seed, derived from the master seed and the id.
    pub seed: u64,
    /// How it ended.
    pub status: TrialStatus,
    /// Per-epoch curves (as many as ran).
    pub epochs: Vec<EpochMetrics>,
    /// Validation accuracy after the last epoch, percent; `null` unless status is ok.
    pub final_val_accuracy: Option<f64>,
    /// Mean training loss of the last epoch; `null` unless status is ok.
    pub final_train_loss: Option<f64>,
    /// Timings.
    pub timings: Timings,
    /// Where and how it ran.
    pub manifest: Manifest,
}

/// The search context stored in `search.json`: settings that change every trial's
/// result without changing its id. A resume with different values is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchContext {
    /// Master seed.
    pub master_seed: u64,
    /// A description of the data (dataset, split sizes, subset, scaling, digests).
    pub data: String,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a unique temporary file in the same
/// directory, flushed and synced, then renamed over `path`; then the directory
/// is synced so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("renaming into", path, e))?;
        // Make the rename durable; not every platform can open a directory.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A results directory used as a journal.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens (creating if needed) a results directory for a search with `context`.
    /// Fails with [`Error::IncompatibleJournal`] when the directory holds a search
    /// with another master seed or other data.
    pub fn open(dir: &Path, context: &SearchContext) -> Result<Self> {
        let journal = Journal {
            dir: dir.to_owned(),
        };
        fs::create_dir_all(journal.trials_dir())
            .map_err(|e| Error::io("creating", journal.trials_dir(), e))?;
        let ctx_path = dir.join("search.json");
        match fs::read(&ctx_path) {
            Ok(bytes) => {
                let found: SearchContext =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord {
                        path: ctx_path.clone(),
                        message: e.to_string(),
                    })?;
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
                let json = serde_json::to_vec_pretty(context).expect("context serialises");
                write_atomic(&ctx_path, &json)?;
            }
            Err(e) => return Err(Error::io("reading", ctx_path, e)),
        }
        Ok(journal)
    }

    /// Opens an existing results directory for reading (status, merge).
    pub fn open_existing(dir: &Path) -> Result<(Self, SearchContext)> {
        let ctx_path = dir.join("search.json");
        let bytes = fs::read(&ctx_path).map_err(|e| Error::io("reading", &ctx_path, e))?;
        let ctx = serde_json::from_slice(&bytes).map_err(|e| Error::CorruptRecord {
            path: ctx_path,
            message: e.to_string(),
        })?;
        Ok((
            Journal {
                dir: dir.to_owned(),
            },
            ctx,
        ))
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

    /// Reads one trial's record, if it has one.
    pub fn read(&self, id: &TrialId) -> Result<Option<TrialRecord>> {
        let path = self.record_path(id);
        match fs::read(&path) {
            Ok(bytes) => parse_record(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// Every record in the directory, sorted by grid index then id. Temporary files
    /// (trials in flight, or left by a killed process) are not records and are skipped.
    pub fn records(&self) -> Result<Vec<TrialRecord>> {
        let dir = self.trials_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("listing", &dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let path = entry.path();
            let bytes = fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
            out.push(parse_record(&path, &bytes)?);
        }
        out.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
        Ok(out)
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
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<TrialRecord> {
    let record: TrialRecord = serde_json::from_slice(bytes).map_err(|e| Error::CorruptRecord {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if record.schema_version != RECORD_SCHEMA_VERSION {
        return Err(Error::CorruptRecord {
            path: path.to_owned(),
            message: format!(
                "schema_version {} (this glorot reads {RECORD_SCHEMA_VERSION})",
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

#[cfg(test)]
mod tests {
    use super::*;

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
