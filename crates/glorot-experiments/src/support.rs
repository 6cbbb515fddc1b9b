//! What every part needs: the run manifest, results files (atomic JSON), the one
//! duration format, and a small worker pool.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use glorot_mlp::Precision;
use serde::{Deserialize, Serialize};

use crate::data::DatasetInfo;
use crate::error::{Context as _, Error, Result};

/// Version of every results file this command writes (`schema_version`). Version 2 writes
/// 64-bit seeds as decimal strings ([`glorot_mlp::seed_text`]); nothing else changed, so
/// the caches of version 1 (`part1/<run>.json`, `replay/...`) are still reused
/// (any version from 1 to this one).
pub const SCHEMA_VERSION: u32 = 2;

/// Whether a cached results file of `version` is read as this version's: 1 (seeds as
/// JSON numbers, which the readers accept) up to [`SCHEMA_VERSION`].
pub(crate) fn reads_version(version: u32) -> bool {
    (1..=SCHEMA_VERSION).contains(&version)
}

/// Where and how a results file was produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunManifest {
    /// The command line that ran (`glorot experiments ...`).
    pub command: String,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub finished_at: String,
    /// Wall time of this file's part, seconds.
    pub wall_seconds: f64,
    /// Build profile of the binary (`release` or `debug`).
    pub profile: String,
    /// Version, git revision, host, CPU, BLAS and its threads, workers, OS.
    pub machine: glorot_search::Manifest,
    /// Element type of training (`f32` or `f64`).
    pub precision: Precision,
    /// Seeds in play: the master seed of the default mode, NumPy's seed of the replay.
    pub seeds: Seeds,
    /// The data: where, digests, split sizes, subset.
    pub dataset: DatasetInfo,
}

/// Seeds of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Seeds {
    /// `--seed`: Part 1's runs, Part 2's trial seeds (derived by glorot-search), Part 3's
    /// networks. `null` in a replay. A decimal string since version 2 (a number before).
    #[serde(with = "glorot_mlp::seed_text::option")]
    pub master_seed: Option<u64>,
    /// `np.random.seed(5)`: the replay's one NumPy generator. `null` outside a replay.
    pub numpy_seed: Option<u32>,
}

impl Seeds {
    /// A run seeded by `--seed` (every part but the replay).
    pub fn master(seed: u64) -> Self {
        Self {
            master_seed: Some(seed),
            numpy_seed: None,
        }
    }

    /// The replay: NumPy's generator seeded with `seed`, no master seed.
    pub fn numpy(seed: u32) -> Self {
        Self {
            master_seed: None,
            numpy_seed: Some(seed),
        }
    }
}

/// What a manifest needs that the process knows once: the command line and the machine.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The command line, shell-quoted (`glorot experiments --quick`).
    pub command: String,
    /// Version, git revision, host, CPU, BLAS and its threads, workers, OS.
    pub machine: glorot_search::Manifest,
}

impl RunContext {
    /// The context of a process that ran `args` (the program's name first) on
    /// `machine`.
    pub fn new(args: impl IntoIterator<Item = String>, machine: glorot_search::Manifest) -> Self {
        let command = args
            .into_iter()
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ");
        RunContext { command, machine }
    }

    /// A manifest for a part that started at `started` (wall clock) and `clock`.
    pub fn manifest(
        &self,
        started: SystemTime,
        clock: Instant,
        precision: Precision,
        seeds: Seeds,
        dataset: &DatasetInfo,
    ) -> RunManifest {
        RunManifest {
            command: self.command.clone(),
            started_at: rfc3339(started),
            finished_at: rfc3339(SystemTime::now()),
            wall_seconds: clock.elapsed().as_secs_f64(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_owned(),
            machine: self.machine.clone(),
            precision,
            seeds,
            dataset: dataset.clone(),
        }
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// RFC 3339 UTC with seconds: `2025-01-31T12:34:56Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `1h 02m`, `3m 05s`, `12.3s`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_owned();
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, s / 60 % 60)
    }
}

/// `n` and the noun that goes with it: `count(1, "epoch", "epochs")` is `1 epoch`,
/// `count(2, "epoch", "epochs")` is `2 epochs` (the one plural rule of the messages and
/// the report).
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Serializes `value` as pretty JSON (and a newline) and writes it atomically
/// (temporary file, rename), creating the parent directory.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    glorot_search::write_json(path, value).with_context(|| format!("writing {}", path.display()))
}

/// Writes `bytes` to `path` atomically, creating the parent directory.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    glorot_search::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads a JSON file; `Ok(None)` when it does not exist or no longer parses as `T` (an
/// older format is recomputed, not an error).
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading", path, e)),
    }
}

/// Runs `jobs` on `workers` threads, each job once; results in job order. A job's error
/// is its own result: the others still run.
pub(crate) fn run_pool<J: Sync, R: Send>(
    jobs: &[J],
    workers: usize,
    work: impl Fn(&J) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { return };
                    let r = work(job);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(0, "epoch", "epochs"), "0 epochs");
        assert_eq!(count(1, "epoch", "epochs"), "1 epoch");
        assert_eq!(count(2, "BLAS thread", "BLAS threads"), "2 BLAS threads");
        assert_eq!(count(1, "entry", "entries"), "1 entry");
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // 2000-02-29T12:00:00Z = 951825600 (leap day; `date -u -d @951825600`).
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_825_600);
        assert_eq!(rfc3339(t), "2000-02-29T12:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(185.0), "3m 05s");
        assert_eq!(duration(3_720.0), "1h 02m");
        assert_eq!(duration(f64::NAN), "?");
    }

    #[test]
    fn pool_keeps_job_order() {
        let jobs: Vec<u32> = (0..20).collect();
        let out = run_pool(&jobs, 3, |&j| j * 2);
        assert_eq!(out, (0..20).map(|j| j * 2).collect::<Vec<_>>());
        assert!(run_pool(&Vec::<u32>::new(), 2, |&j| j).is_empty());
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("--out=results"), "--out=results");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
