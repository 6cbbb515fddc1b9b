//! What every part needs: the data (and its digests), the run manifest, atomic JSON
//! files, a small worker pool, and progress lines with an ETA on stderr.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use glorot_mlp::{EvalData, FitData, Float, Precision, TrainData};
use glorot_mnist::{DigestCheck, Mnist};
use ndarray::Array2;

use crate::common::{Loaded, ThreadPlan};
use serde::{Deserialize, Serialize};

/// Version of every results file this command writes (`schema_version`).
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Where and how a results file was produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunManifest {
    /// The command line that ran (`glorot experiments ...`).
    pub(crate) command: String,
    /// Start, RFC 3339 UTC.
    pub(crate) started_at: String,
    /// End, RFC 3339 UTC.
    pub(crate) finished_at: String,
    /// Wall time of this file's part, seconds.
    pub(crate) wall_seconds: f64,
    /// Build profile of the binary (`release` or `debug`).
    pub(crate) profile: String,
    /// Version, git revision, host, CPU, BLAS and its threads, workers, OS.
    pub(crate) machine: glorot_search::Manifest,
    /// Element type of training (`f32` or `f64`).
    pub(crate) precision: Precision,
    /// Seeds in play: the master seed of the default mode, NumPy's seed of the replay.
    pub(crate) seeds: Seeds,
    /// The data: where, digests, split sizes, subset.
    pub(crate) dataset: DatasetInfo,
}

/// Seeds of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Seeds {
    /// `--seed`: Part 1's runs, Part 2's trial seeds (derived by glorot-search), Part 3's
    /// networks. `null` in a replay.
    pub(crate) master_seed: Option<u64>,
    /// `np.random.seed(5)`: the replay's one NumPy generator. `null` outside a replay.
    pub(crate) numpy_seed: Option<u32>,
}

/// The dataset a run read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DatasetInfo {
    /// `mnist`.
    pub(crate) kind: String,
    /// Directory read.
    pub(crate) dir: String,
    /// One entry per file: role, SHA-256 of the decompressed IDX bytes, digest check.
    pub(crate) files: Vec<FileInfo>,
    /// Rows of the training split used.
    pub(crate) train: usize,
    /// Rows of the validation split used.
    pub(crate) validation: usize,
    /// Rows of the test split.
    pub(crate) test: usize,
    /// `true` when only a leading subset of the splits was used (`--quick`).
    pub(crate) subset: bool,
    /// Pixel scaling (`div256`, the notebook's, or `div255`).
    pub(crate) scale: String,
}

/// One dataset file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileInfo {
    /// `train-images`, `train-labels`, `test-images`, `test-labels`.
    pub(crate) role: String,
    /// SHA-256 of the decompressed IDX bytes.
    pub(crate) sha256: String,
    /// `match`, `mismatch` or `not-checked`.
    pub(crate) check: String,
}

/// The loaded data and its description.
#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) mnist: Mnist<f32>,
    pub(crate) info: DatasetInfo,
    description: String,
}

impl Data {
    /// Wraps data loaded through the common data options.
    pub(crate) fn from_loaded(loaded: Loaded) -> Data {
        let description = loaded.description();
        let mnist = loaded.mnist;
        let subset = mnist.train.len() < loaded.full_sizes[0]
            || mnist.validation.len() < loaded.full_sizes[1]
            || mnist.test.len() < loaded.full_sizes[2];
        let files = mnist
            .files
            .iter()
            .map(|f| FileInfo {
                role: plain(&f.role),
                sha256: f.sha256.clone(),
                check: match f.check {
                    DigestCheck::Match => "match",
                    DigestCheck::Mismatch { .. } => "mismatch",
                    _ => "not-checked",
                }
                .to_owned(),
            })
            .collect();
        let info = DatasetInfo {
            kind: mnist.kind.name().to_owned(),
            dir: mnist.dir.display().to_string(),
            files,
            train: mnist.train.len(),
            validation: mnist.validation.len(),
            test: mnist.test.len(),
            subset,
            scale: "div256".to_owned(),
        };
        Data {
            mnist,
            info,
            description,
        }
    }

    /// The first `train` training and `validation` validation rows (all of a split that
    /// is smaller); the test split is kept whole.
    pub(crate) fn subset(&self, train: usize, validation: usize) -> Data {
        let mut mnist = self.mnist.clone();
        let mut info = self.info.clone();
        if train < mnist.train.len() {
            mnist.train = head(&mnist.train, train);
            info.subset = true;
        }
        if validation < mnist.validation.len() {
            mnist.validation = head(&mnist.validation, validation);
            info.subset = true;
        }
        info.train = mnist.train.len();
        info.validation = mnist.validation.len();
        let description = format!(
            "{}; quick subset: train {}, validation {}",
            self.description, info.train, info.validation
        );
        Data {
            mnist,
            info,
            description,
        }
    }

    /// Names the data exactly enough that runs with equal descriptions trained on equal
    /// data (split sizes, subsets, digests): journals and caches never mix data.
    pub(crate) fn description(&self) -> String {
        self.description.clone()
    }
}

fn head(split: &glorot_mnist::SplitData<f32>, n: usize) -> glorot_mnist::SplitData<f32> {
    glorot_mnist::SplitData::new(
        split.images.slice(ndarray::s![..n, ..]).to_owned(),
        split.labels[..n].to_vec(),
    )
}

/// The splits in one element type, with one-hot training targets.
#[derive(Debug)]
pub(crate) struct Splits<F: Float> {
    pub(crate) train_x: Array2<F>,
    pub(crate) train_y: Array2<F>,
    pub(crate) val_x: Array2<F>,
    pub(crate) val_labels: Vec<u8>,
    pub(crate) test_x: Array2<F>,
    pub(crate) test_labels: Vec<u8>,
}

impl<F: Float> Splits<F> {
    /// Converts (exactly: pixels are multiples of 1/256) from the loaded `f32` data.
    pub(crate) fn new(m: &Mnist<f32>) -> Self {
        let conv = |a: &Array2<f32>| a.mapv(|v| F::from_f64(f64::from(v)));
        Splits {
            train_x: conv(&m.train.images),
            train_y: glorot_tensor::one_hot::<F>(&m.train.labels, glorot_mnist::NUM_CLASSES),
            val_x: conv(&m.validation.images),
            val_labels: m.validation.labels.clone(),
            test_x: conv(&m.test.images),
            test_labels: m.test.labels.clone(),
        }
    }

    /// Views for the trainer; the test split only when asked.
    pub(crate) fn fit(&self, with_test: bool) -> Result<FitData<'_, F>> {
        let test = if with_test {
            Some(EvalData::new(self.test_x.view(), &self.test_labels)?)
        } else {
            None
        };
        Ok(FitData {
            train: TrainData::new(self.train_x.view(), self.train_y.view())?,
            validation: EvalData::new(self.val_x.view(), &self.val_labels)?,
            test,
        })
    }
}

/// A unit enum's serde name.
pub(crate) fn plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// What a manifest needs that the process knows once.
#[derive(Clone, Debug)]
pub(crate) struct RunContext {
    pub(crate) command: String,
    pub(crate) machine: glorot_search::Manifest,
}

impl RunContext {
    pub(crate) fn detect(plan: ThreadPlan) -> RunContext {
        let command = std::iter::once("glorot".to_owned())
            .chain(std::env::args().skip(1))
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" ");
        RunContext {
            command,
            machine: crate::common::manifest(plan),
        }
    }

    /// A manifest for a part that started at `started` (wall clock) and `clock`.
    pub(crate) fn manifest(
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
pub(crate) fn duration(seconds: f64) -> String {
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

/// Serializes `value` as pretty JSON and writes it atomically (temporary file, rename).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).context("serializing results")?;
    bytes.push(b'\n');
    write_file(path, &bytes)
}

/// Writes `bytes` to `path` atomically, creating the parent directory.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    glorot_search::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Reads a JSON file; `Ok(None)` when it does not exist or no longer parses as `T` (an
/// older format is recomputed, not an error).
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
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

/// Progress of one part: work units (multiply-adds of the epochs to run) done, and an
/// ETA from the rate so far. Prints to stderr: one line per event, or one status line
/// rewritten in place on a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    part: String,
    total_units: f64,
    state: Mutex<ProgressState>,
    tty: bool,
}

#[derive(Debug)]
struct ProgressState {
    done_units: f64,
    started: Instant,
    status_shown: bool,
}

impl Progress {
    pub(crate) fn new(part: &str, total_units: f64) -> Progress {
        Progress {
            part: part.to_owned(),
            total_units,
            state: Mutex::new(ProgressState {
                done_units: 0.0,
                started: Instant::now(),
                status_shown: false,
            }),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Adds finished work and reports `what` with the ETA of what remains.
    pub(crate) fn advance(&self, units: f64, what: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        s.done_units += units;
        let elapsed = s.started.elapsed().as_secs_f64();
        let left = (self.total_units - s.done_units).max(0.0);
        let eta = if s.done_units > 0.0 {
            duration(elapsed * left / s.done_units)
        } else {
            "?".to_owned()
        };
        let pct = if self.total_units > 0.0 {
            100.0 * s.done_units / self.total_units
        } else {
            100.0
        };
        let mut line = String::new();
        let _ = write!(
            line,
            "[{}] {what} | {pct:5.1}% done, {} elapsed, ETA {eta}",
            self.part,
            duration(elapsed)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            s.status_shown = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// A message on its own line (after the status line, on a terminal).
    pub(crate) fn note(&self, message: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        let mut err = std::io::stderr().lock();
        if s.status_shown {
            let _ = writeln!(err);
            s.status_shown = false;
        }
        let _ = writeln!(err, "[{}] {message}", self.part);
    }

    /// Ends the status line.
    pub(crate) fn finish(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.status_shown
        {
            let _ = writeln!(std::io::stderr());
            s.status_shown = false;
        }
    }
}

/// A message line on stderr.
pub(crate) fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Work of one epoch of a `layers` network over `rows` training rows plus `val_rows`
/// validation rows, in multiply-adds (forward 1x, backward 2x for training).
pub(crate) fn epoch_units(layers: &[usize], rows: usize, val_rows: usize) -> f64 {
    let macs: usize = layers.windows(2).map(|w| w[0] * w[1]).sum();
    macs as f64 * (3.0 * rows as f64 + val_rows as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
