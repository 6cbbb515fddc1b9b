//! The grid search as a real Slurm job array, on a private single-node cluster.
//!
//! Gated: runs only with `GLOROT_SLURM_TEST=1` (CI sets it in `.ci/run`), and then
//! needs root and either an installed Slurm or `apt-get` to install Debian's
//! `slurmctld slurmd slurm-client munge`; it skips, saying why, only where it cannot
//! run (not root, no Slurm and no apt-get). The cluster is the project's harness,
//! `cluster/slurm-local/slurm-local.sh`: daemons on 127.0.0.1 with a private config
//! and munge key, stopped by pid when a test ends (and by the harness itself if this
//! process dies or the hard timeout passes).
//!
//! Both cases submit the committed `cluster/glorot-search.sbatch` as an array of 4
//! tasks, each running `glorot search run` on the shard Slurm's variables give it (no
//! `--shard` flag), and compare the result with the same 8-trial grid run locally in
//! one process: every trial record bit-identical apart from timings and the manifest
//! (where and how fast it ran), and equal merged summaries.
//! - `array_matches_a_local_run`: `--array=0-3`.
//! - `killed_task_then_resubmitted_array_completes_the_grid`: `--array=4-7` (indices
//!   that do not start at 0: the shard is `ID - SLURM_ARRAY_TASK_MIN`); one task is
//!   killed with SIGKILL after its first trial, in the middle of its second; the same
//!   array is submitted again and the grid completes with every trial exactly once,
//!   the trials finished before the kill untouched.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

const GLOROT: &str = env!("CARGO_BIN_EXE_glorot");
const HARNESS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../cluster/slurm-local/slurm-local.sh"
);
const SBATCH_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../cluster/glorot-search.sbatch"
);

/// Progress on stderr (`cargo test -- --nocapture` shows it): why a test skips, how
/// long the steps took, which task was killed.
macro_rules! note {
    ($($arg:tt)*) => {
        report(format_args!($($arg)*))
    };
}

#[allow(
    clippy::print_stderr,
    reason = "a test says why it skips and what it measured"
)]
fn report(message: std::fmt::Arguments<'_>) {
    eprintln!("{message}");
}

/// Array tasks = shards.
const TASKS: usize = 4;
/// The `tiny` preset (2 widths x 2 activations x 2 batch sizes = 8 trials), with
/// widths and epochs raised so that a trial takes most of a second (3 epochs took about
/// 0.25 s here, with the fused kernels): long enough to kill a task in the middle of one.
const GRID: &[&str] = &["--grid", "tiny", "--hidden", "96,128", "--epochs", "8"];
const TRIALS: usize = 8;
/// Longest wait for one array job; the harness's own hard timeout is `CLUSTER_SECS`.
const JOB_SECS: u64 = 180;
const CLUSTER_SECS: u64 = 900;

/// One test at a time: both would share the machine's two CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------
// The two cases
// ---------------------------------------------------------------------------------

#[test]
fn array_matches_a_local_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(fx) = fixture() else { return };
    let clock = Instant::now();
    let work = workdir("array");
    let cluster = Cluster::start(&work.path().join("cluster"));
    let out = work.path().join("results");
    let logs = work.path().join("logs");
    fs::create_dir_all(&logs).unwrap();

    let job = cluster.submit_search("0-3", &out, &logs, fx);
    let ends = cluster.wait(job);
    assert_all_completed(&ends, job, &logs);
    check_task_logs(&logs, job, 0, |_| "2 run now, 0 already done");

    merge(&out);
    check_same_results(&out, fx);
    note!(
        "slurm: array 0-3 matched the local run ({} trials) in {:.1} s",
        TRIALS,
        clock.elapsed().as_secs_f64()
    );
}

#[test]
fn killed_task_then_resubmitted_array_completes_the_grid() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(fx) = fixture() else { return };
    let clock = Instant::now();
    let work = workdir("resume");
    let cluster = Cluster::start(&work.path().join("cluster"));
    let out = work.path().join("results");
    let logs = work.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let min = 4;

    // Submit 4-7, then kill the first task seen with one of its two trials recorded:
    // its second trial is in flight.
    let job = cluster.submit_search("4-7", &out, &logs, fx);
    let deadline = Instant::now() + Duration::from_secs(JOB_SECS);
    let mut last_check = Instant::now();
    let victim = loop {
        let done = recorded_ids(&out);
        let half = (0..TASKS).find(|&s| {
            fx.shard_ids(s)
                .iter()
                .filter(|id| done.contains(*id))
                .count()
                == 1
        });
        if let Some(shard) = half {
            break shard;
        }
        assert!(
            done.len() < TRIALS,
            "every trial finished before a task could be killed in the middle of one; \
             the trials are too short for this test"
        );
        assert!(
            Instant::now() < deadline,
            "no task recorded a trial within {JOB_SECS} s"
        );
        if last_check.elapsed() > Duration::from_secs(1) {
            last_check = Instant::now();
            assert!(
                cluster.is_active(job),
                "job {job} ended before any of its tasks recorded one trial of two; logs:\n{}",
                (min..min + TASKS)
                    .map(|t| task_log(&logs, job, t))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let task = min + victim;
    let seen = Instant::now();
    let scancel = cluster.client(&["scancel", "--signal=KILL", &format!("{job}_{task}")]);
    let kill_ms = seen.elapsed().as_secs_f64() * 1e3;
    assert!(
        scancel.status.success(),
        "scancel failed: {}",
        text(&scancel.stderr)
    );
    let ends = cluster.wait(job);
    note!(
        "slurm: scancel --signal=KILL of task {task} (shard {victim}/{TASKS}) returned {:.0} ms \
         after its first record appeared; first submission ended: {ends:?}",
        kill_ms
    );
    for end in &ends {
        if end.task == task {
            assert_ne!(end.state, "COMPLETED", "the killed task {task} completed");
        } else {
            assert!(
                end.ok(),
                "task {} of job {job} did not complete: {end:?}\n{}",
                end.task,
                task_log(&logs, job, end.task)
            );
        }
    }
    assert_eq!(
        ends.len(),
        TASKS,
        "job {job} should have {TASKS} tasks: {ends:?}"
    );

    // The kill came mid-run: the victim's first trial is recorded, its second is not.
    let before = recorded_files(&out);
    let mine = fx.shard_ids(victim);
    let kept: Vec<&String> = mine.iter().filter(|id| before.contains_key(*id)).collect();
    assert_eq!(
        kept.len(),
        1,
        "shard {victim} should have exactly one of its trials {mine:?} recorded after the kill; \
         it has {kept:?} (was the task killed after it finished?)"
    );
    assert_eq!(
        before.len(),
        TRIALS - 1,
        "one trial should be missing: {:?}",
        before.keys()
    );
    let status = glorot(&["search", "status", "--out", path_str(&out)]);
    assert!(
        status.status.success(),
        "search status failed: {}",
        text(&status.stderr)
    );

    // Resubmit the same array: only the missing trial runs.
    let job2 = cluster.submit_search("4-7", &out, &logs, fx);
    let ends2 = cluster.wait(job2);
    assert_all_completed(&ends2, job2, &logs);
    check_task_logs(&logs, job2, min, |s| {
        if s == victim {
            "1 run now, 1 already done"
        } else {
            "0 run now, 2 already done"
        }
    });

    // Every trial exactly once; those finished before the kill were not run again.
    let after = recorded_files(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        fx.records.keys().collect::<Vec<_>>(),
        "the grid's trials, each once"
    );
    for (id, bytes) in &before {
        assert!(
            after.get(id) == Some(bytes),
            "trial {id}, finished before the kill, was written again by the resubmission"
        );
    }
    merge(&out);
    check_same_results(&out, fx);
    note!(
        "slurm: killed-and-resubmitted array 4-7 matched the local run in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------
// The fixture: gate, install, data, the local reference run
// ---------------------------------------------------------------------------------

/// Shared by both tests: data, and the local single-process run of the grid.
#[derive(Debug)]
struct Fixture {
    /// `--data-dir ... --train-limit ...` for every `glorot search run`.
    data_args: Vec<String>,
    /// The local run's records by trial id, without timings (see [`comparable`]).
    records: BTreeMap<String, String>,
    /// Grid index of each trial id.
    index: BTreeMap<String, usize>,
    /// The local run's summary, without timings.
    summary: String,
}

impl Fixture {
    /// The ids of shard `s` of [`TASKS`] (grid index % TASKS == s).
    fn shard_ids(&self, s: usize) -> Vec<String> {
        self.index
            .iter()
            .filter(|(_, i)| *i % TASKS == s)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// `None` (after saying why) when the test does not run here.
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture).as_ref()
}

fn build_fixture() -> Option<Fixture> {
    if std::env::var("GLOROT_SLURM_TEST").as_deref() != Ok("1") {
        note!(
            "slurm: skipped: set GLOROT_SLURM_TEST=1 to run the Slurm job-array test (CI does); \
             it needs root and installs Debian's slurmctld, slurmd, slurm-client and munge"
        );
        return None;
    }
    let uid = Command::new("id").arg("-u").output().expect("id -u runs");
    if text(&uid.stdout).trim() != "0" {
        note!(
            "slurm: skipped: not root (uid {}); the test runs Slurm's daemons as root",
            text(&uid.stdout).trim()
        );
        return None;
    }
    let clock = Instant::now();
    let install = Command::new(HARNESS)
        .arg("install")
        .output()
        .expect("the harness runs");
    match install.status.code() {
        Some(0) => {}
        Some(77) => {
            note!("slurm: skipped: {}", text(&install.stderr).trim());
            return None;
        }
        _ => panic!(
            "installing Slurm failed ({}):\n{}",
            install.status,
            text(&install.stderr)
        ),
    }
    note!(
        "slurm: Slurm present ({:.1} s for the install step)",
        clock.elapsed().as_secs_f64()
    );

    let data_args = data_args();
    let clock = Instant::now();
    let local = tempfile::tempdir().unwrap();
    let out = local.path().join("results");
    let mut args = vec![
        "search",
        "run",
        "--out",
        path_str(&out),
        "--workers",
        "2",
        "--blas-threads",
        "1",
    ];
    args.extend(GRID);
    args.extend(data_args.iter().map(String::as_str));
    let run = glorot(&args);
    assert!(
        run.status.success(),
        "the local reference run failed:\n{}",
        text(&run.stderr)
    );
    let records = read_records(&out);
    assert_eq!(
        records.len(),
        TRIALS,
        "the local run records the whole grid"
    );
    let index = records
        .iter()
        .map(|(id, r)| (id.clone(), r["index"].as_u64().unwrap() as usize))
        .collect();
    let fixture = Fixture {
        summary: comparable_summary(&out),
        records: records
            .into_iter()
            .map(|(id, r)| (id, comparable(r)))
            .collect(),
        index,
        data_args,
    };
    note!(
        "slurm: local reference run of {TRIALS} trials took {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    Some(fixture)
}

/// Real MNIST from `GLOROT_MNIST_DIR` (12,000 training and 2,000 validation images),
/// else a generated dataset in the MNIST format of the same size (`--no-verify`).
fn data_args() -> Vec<String> {
    let limits = ["--train-limit", "12000", "--val-limit", "2000"].map(String::from);
    if let Some(dir) = std::env::var_os("GLOROT_MNIST_DIR").filter(|d| !d.is_empty()) {
        let dir = fs::canonicalize(&dir).expect("GLOROT_MNIST_DIR exists");
        let mut args = vec!["--data-dir".to_owned(), path_str(&dir).to_owned()];
        args.extend(limits);
        return args;
    }
    note!("slurm: GLOROT_MNIST_DIR is not set; using generated MNIST-format data");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slurm-synthetic-mnist");
    write_synthetic_mnist(&dir, 14_000, 1_000);
    let mut args = vec![
        "--data-dir".to_owned(),
        path_str(&dir).to_owned(),
        "--no-verify".to_owned(),
        "--validation-size".to_owned(),
        "2000".to_owned(),
    ];
    args.extend(limits);
    args
}

/// Raw IDX files: each image is its label's bar (column band) plus pseudo-random noise,
/// so the classes are learnable. Deterministic (a fixed 64-bit LCG).
fn write_synthetic_mnist(dir: &Path, train: usize, test: usize) {
    fs::create_dir_all(dir).unwrap();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut images = Vec::with_capacity(16 + n * 784);
        images.extend_from_slice(&[0, 0, 8, 3]);
        for d in [n as u32, 28, 28] {
            images.extend_from_slice(&d.to_be_bytes());
        }
        let mut labels = Vec::with_capacity(8 + n);
        labels.extend_from_slice(&[0, 0, 8, 1]);
        labels.extend_from_slice(&(n as u32).to_be_bytes());
        for _ in 0..n {
            let label = (next() % 10) as u8;
            labels.push(label);
            for pixel in 0..784 {
                let col = pixel % 28;
                let bar = col / 2 == usize::from(label) + 2;
                let noise = (next() % 96) as u8;
                images.push(if bar { 160 + noise } else { noise });
            }
        }
        fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
}

// ---------------------------------------------------------------------------------
// The cluster (through the harness)
// ---------------------------------------------------------------------------------

/// A running private cluster; stopped (every daemon, by pid) on drop.
#[derive(Debug)]
struct Cluster {
    dir: PathBuf,
}

/// One array task's end, from the harness's `wait`.
#[derive(Debug)]
struct TaskEnd {
    task: usize,
    state: String,
    exit: String,
}

impl TaskEnd {
    fn ok(&self) -> bool {
        self.state == "COMPLETED" && self.exit == "0:0"
    }
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let clock = Instant::now();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let start = Command::new(HARNESS)
            .args(["start", path_str(dir), "-c", &cpus.to_string()])
            .args(["-t", &CLUSTER_SECS.to_string()])
            .args(["-o", &std::process::id().to_string()])
            .output()
            .expect("the harness runs");
        let cluster = Cluster {
            dir: dir.to_owned(),
        };
        assert!(
            start.status.success(),
            "the cluster did not start ({}):\n{}",
            start.status,
            text(&start.stderr)
        );
        note!(
            "slurm: cluster up in {:.1} s ({cpus} CPUs, {})",
            clock.elapsed().as_secs_f64(),
            dir.display()
        );
        cluster
    }

    /// A Slurm client command on this cluster, with none of this process's own
    /// Slurm variables (a test run inside a Slurm job must not leak them).
    fn client(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(HARNESS);
        cmd.arg("exec").arg(&self.dir).args(args);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("SLURM_") || k.starts_with("SBATCH_") || k == "GLOROT_SHARD_COUNT" {
                cmd.env_remove(&*k);
            }
        }
        cmd.output().expect("the harness runs")
    }

    /// Submits the committed sbatch script as `--array=ARRAY`, one CPU and 1 GB per
    /// task (the script's defaults are for real clusters), the glorot under test, the
    /// grid and data of the fixture. Returns the job id.
    fn submit_search(&self, array: &str, out: &Path, logs: &Path, fx: &Fixture) -> u64 {
        let output = format!("--output={}/task-%A_%a.out", path_str(logs));
        let mut args = vec![
            "env",
            "GLOROT_WORKERS=",
            "GLOROT_BLAS_THREADS=",
            concat!("GLOROT=", env!("CARGO_BIN_EXE_glorot")),
            "sbatch",
            "--parsable",
        ];
        let array = format!("--array={array}");
        let chdir = format!("--chdir={}", path_str(logs));
        args.extend([
            array.as_str(),
            "--cpus-per-task=1",
            "--mem=1G",
            &output,
            &chdir,
            SBATCH_SCRIPT,
        ]);
        args.extend(["--out", path_str(out)]);
        args.extend(GRID);
        args.extend(fx.data_args.iter().map(String::as_str));
        let sbatch = self.client(&args);
        assert!(
            sbatch.status.success(),
            "sbatch failed: {}",
            text(&sbatch.stderr)
        );
        let id = text(&sbatch.stdout);
        let id = id.trim().split(';').next().unwrap_or_default();
        id.parse()
            .unwrap_or_else(|_| panic!("sbatch --parsable printed {id:?}"))
    }

    /// Whether a task of `job` is pending, running or completing.
    fn is_active(&self, job: u64) -> bool {
        let id = job.to_string();
        let squeue = self.client(&[
            "squeue",
            "-h",
            "-r",
            "-j",
            &id,
            "-t",
            "PD,R,CG,CF",
            "-o",
            "%i",
        ]);
        assert!(
            squeue.status.success(),
            "squeue failed: {}",
            text(&squeue.stderr)
        );
        !text(&squeue.stdout).trim().is_empty()
    }

    /// Waits (at most `JOB_SECS`) for every task of `job`; their ends in task order.
    fn wait(&self, job: u64) -> Vec<TaskEnd> {
        let out = Command::new(HARNESS)
            .args([
                "wait",
                path_str(&self.dir),
                &job.to_string(),
                &JOB_SECS.to_string(),
            ])
            .output()
            .expect("the harness runs");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "waiting for job {job} failed ({}): {}\nslurmctld log tail:\n{}",
            out.status,
            text(&out.stderr),
            tail(&self.dir.join("log/slurmctld.log"), 30)
        );
        text(&out.stdout)
            .lines()
            .map(|line| {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .unwrap_or_default()
                        .to_owned()
                };
                TaskEnd {
                    task: field("task=").parse().expect("a task id"),
                    state: field("state="),
                    exit: field("exit="),
                }
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let clock = Instant::now();
        let stop = Command::new(HARNESS)
            .args(["stop", path_str(&self.dir)])
            .output();
        match stop {
            Ok(o) if o.status.success() => note!(
                "slurm: cluster stopped in {:.1} s",
                clock.elapsed().as_secs_f64()
            ),
            Ok(o) => note!("slurm: stopping the cluster failed: {}", text(&o.stderr)),
            Err(e) => note!("slurm: cannot run the harness to stop the cluster: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------

#[track_caller]
fn assert_all_completed(ends: &[TaskEnd], job: u64, logs: &Path) {
    assert_eq!(
        ends.len(),
        TASKS,
        "job {job} should have {TASKS} tasks: {ends:?}"
    );
    for end in ends {
        assert!(
            end.ok(),
            "task {} of job {job} did not complete: {end:?}\n{}",
            end.task,
            task_log(logs, job, end.task)
        );
    }
}

/// Each task ran the shard its index says (`ID - MIN` of 4) and did what `expect` says.
#[track_caller]
fn check_task_logs(logs: &Path, job: u64, min: usize, expect: impl Fn(usize) -> &'static str) {
    for shard in 0..TASKS {
        let task = min + shard;
        let log = task_log(logs, job, task);
        assert!(
            log.contains(&format!("shard {shard}/{TASKS}")),
            "task {task} of job {job} should have run shard {shard}/{TASKS}:\n{log}"
        );
        assert!(
            log.contains(expect(shard)),
            "task {task} of job {job} should report `{}`:\n{log}",
            expect(shard)
        );
    }
}

fn merge(out: &Path) {
    let merge = glorot(&["search", "merge", "--out", path_str(out)]);
    assert!(
        merge.status.success(),
        "search merge failed:\n{}",
        text(&merge.stderr)
    );
}

/// The cluster's records and summary equal the local run's, byte for byte once
/// timings and manifests are removed (JSON numbers print as the shortest string that
/// reads back as the same f64, so equal text means equal bits).
#[track_caller]
fn check_same_results(out: &Path, fx: &Fixture) {
    let records: BTreeMap<String, String> = read_records(out)
        .into_iter()
        .map(|(id, r)| (id, comparable(r)))
        .collect();
    assert_eq!(
        records.keys().collect::<Vec<_>>(),
        fx.records.keys().collect::<Vec<_>>(),
        "the same trials"
    );
    for (id, local) in &fx.records {
        assert_eq!(
            &records[id], local,
            "trial {id}: the array and the local run differ"
        );
    }
    assert_eq!(
        comparable_summary(out),
        fx.summary,
        "the merged summary differs from the local run's"
    );
}

/// A record without what depends on where and how fast it ran: `timings`,
/// `manifest`, and each epoch's `seconds` and `train_seconds`.
fn comparable(mut record: Value) -> String {
    let obj = record.as_object_mut().expect("a record is an object");
    obj.remove("timings");
    obj.remove("manifest");
    for epoch in obj
        .get_mut("epochs")
        .and_then(Value::as_array_mut)
        .expect("a record has epochs")
    {
        let e = epoch.as_object_mut().expect("an epoch is an object");
        e.remove("seconds");
        e.remove("train_seconds");
    }
    serde_json::to_string_pretty(&record).unwrap()
}

/// `summary.json` without its one timing (`trial_seconds_total`).
fn comparable_summary(out: &Path) -> String {
    let mut summary: Value = serde_json::from_slice(
        &fs::read(out.join("summary.json")).expect("summary.json exists after merge"),
    )
    .unwrap();
    let obj = summary.as_object_mut().unwrap();
    assert_eq!(obj["finished"], TRIALS, "every trial finished");
    assert_eq!(obj["missing"], Value::Array(vec![]), "no trial missing");
    obj.remove("trial_seconds_total");
    serde_json::to_string_pretty(&summary).unwrap()
}

/// Records of `out` by id (the file name without `.json`; temporary files skipped).
fn read_records(out: &Path) -> BTreeMap<String, Value> {
    recorded_files(out)
        .into_iter()
        .map(|(id, bytes)| {
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("record {id} is not JSON: {e}"));
            assert_eq!(v["id"], id.as_str(), "record file name and id");
            (id, v)
        })
        .collect()
}

/// The raw bytes of each record file in `out/trials`, by id.
fn recorded_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = fs::read_dir(out.join("trials")) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".json")?.to_owned();
            if id.starts_with('.') {
                return None;
            }
            Some((id, fs::read(e.path()).ok()?))
        })
        .collect()
}

fn recorded_ids(out: &Path) -> BTreeSet<String> {
    recorded_files(out).into_keys().collect()
}

// ---------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------

fn glorot(args: &[&str]) -> Output {
    Command::new(GLOROT)
        .args(args)
        .env_remove("GLOROT_SHARD_COUNT")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .expect("glorot runs")
}

/// A temporary directory the cluster's daemons can reach (munge needs every parent
/// searchable; tempfile makes 0700 directories).
fn workdir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("glorot-slurm-{name}-"))
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn task_log(logs: &Path, job: u64, task: usize) -> String {
    fs::read_to_string(logs.join(format!("task-{job}_{task}.out")))
        .unwrap_or_else(|e| format!("(no log for task {task} of job {job}: {e})"))
}

fn tail(path: &Path, lines: usize) -> String {
    let all = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = all.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}
