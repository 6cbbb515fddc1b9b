//! Fixtures: the real `glorot` binary in a temporary directory, and a tiny learnable
//! dataset in the MNIST format generated with glorot-mnist's own IDX writer.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
};

use glorot_mnist::{FileRole, PIXELS, idx};
use serde_json::Value;

/// Training-file images of the synthetic dataset; `--validation-size 200` holds out the
/// last 200, leaving 1000 for training.
pub(crate) const SYNTH_TRAIN_FILE: usize = 1200;
/// Test images of the synthetic dataset.
pub(crate) const SYNTH_TEST: usize = 300;

/// A temporary working directory with the synthetic dataset in `data/`.
pub(crate) struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        write_synthetic_mnist(&data);
        Sandbox { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `glorot` with `args`, run in the sandbox with a clean environment (no dataset or
    /// shard variables from the caller). It never downloads (`GLOROT_OFFLINE=1`), and its
    /// per-user data directory is `xdg/` in the sandbox, so a test lacking data fails
    /// with a message instead of reaching the network or the user's files.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_glorot"));
        c.args(args).current_dir(self.path());
        c.env("GLOROT_OFFLINE", "1")
            .env("XDG_DATA_HOME", self.join("xdg"));
        for var in [
            "GLOROT_MNIST_DIR",
            "GLOROT_FASHION_MNIST_DIR",
            "GLOROT_MNIST_MIRROR",
            "GLOROT_FASHION_MNIST_MIRROR",
            "GLOROT_SHARD_COUNT",
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "SLURM_ARRAY_TASK_COUNT",
            "SLURM_ARRAY_TASK_STEP",
            "JOB_COMPLETION_INDEX",
            "RUST_BACKTRACE",
        ] {
            c.env_remove(var);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs `glorot args` to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.cmd(args).output().expect("the glorot binary runs"),
            args,
        )
    }
}

/// The data options selecting the synthetic dataset (relative to the sandbox).
pub(crate) const DATA: &[&str] = &[
    "--data-dir",
    "data",
    "--no-verify",
    "--validation-size",
    "200",
];

/// `args` followed by [`DATA`].
pub(crate) fn with_data<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(DATA);
    v
}

/// Sends `signal` (`-INT`, `-TERM`) to `child` with the `kill` command.
pub(crate) fn kill(child: &mut std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A finished process.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    args: String,
}

impl Run {
    pub(crate) fn from(o: Output, args: &[&str]) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    /// Asserts the exit code, showing the output otherwise. Never a panic or backtrace.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`glorot {}` exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "`glorot {}` panicked:\n{}",
            self.args,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`glorot {}` printed no JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    /// Asserts that stderr mentions every one of `needles`.
    #[track_caller]
    pub(crate) fn stderr_has(&self, needles: &[&str]) -> &Self {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "`glorot {}`: stderr lacks {n:?}:\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }
}

/// Reads a JSON file.
#[track_caller]
pub(crate) fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

/// Images and labels of a learnable 10-class problem in the MNIST format: class `c`
/// lights a 6x6 block at one of ten positions (plus a shared stroke), with noise, so a
/// tiny network reaches well above chance (10 %) in one epoch.
fn synthetic(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Lcg(seed);
    let mut pixels = vec![0u8; n * PIXELS];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (rng.next() % 10) as usize;
        labels.push(c as u8);
        let img = &mut pixels[i * PIXELS..(i + 1) * PIXELS];
        let (r0, c0) = (3 + (c / 5) * 11, 2 + (c % 5) * 5);
        for r in r0..r0 + 6 {
            for col in c0..c0 + 4 {
                img[r * 28 + col] = 160 + (rng.next() % 96) as u8;
            }
        }
        // A stroke every image shares, and background noise.
        for (k, px) in img.iter_mut().enumerate() {
            if k / 28 == 14 {
                *px = (*px).max(90);
            }
            if rng.next().is_multiple_of(9) {
                *px = px.saturating_add((rng.next() % 70) as u8);
            }
        }
    }
    (pixels, labels)
}

/// Writes the four gzip files of the synthetic dataset into `dir`.
pub(crate) fn write_synthetic_mnist(dir: &Path) {
    static FILES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let (train_px, train_labels) = synthetic(SYNTH_TRAIN_FILE, 1);
        let (test_px, test_labels) = synthetic(SYNTH_TEST, 2);
        [
            idx::gzip(&idx::encode(&[SYNTH_TRAIN_FILE as u32, 28, 28], &train_px)),
            idx::gzip(&idx::encode(&[SYNTH_TRAIN_FILE as u32], &train_labels)),
            idx::gzip(&idx::encode(&[SYNTH_TEST as u32, 28, 28], &test_px)),
            idx::gzip(&idx::encode(&[SYNTH_TEST as u32], &test_labels)),
        ]
    });
    for (role, bytes) in FileRole::ALL.iter().zip(files) {
        std::fs::write(dir.join(role.gz_name()), bytes).unwrap();
    }
}

/// The directory of the real MNIST from `GLOROT_MNIST_DIR` (relative paths resolved
/// against the current directory, then the workspace root), or `None` with a note.
#[allow(clippy::print_stderr)]
pub(crate) fn real_mnist() -> Option<PathBuf> {
    let Some(v) = std::env::var_os("GLOROT_MNIST_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: GLOROT_MNIST_DIR is not set (the real-MNIST CLI test needs it)");
        return None;
    };
    let p = PathBuf::from(v);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::current_dir()
            .map(|d| d.join(&p))
            .unwrap_or(p.clone()),
        workspace.join(&p),
    ];
    let found = candidates.into_iter().find(|c| c.is_dir());
    if found.is_none() {
        eprintln!(
            "skipped: GLOROT_MNIST_DIR={} is not a directory",
            p.display()
        );
    }
    found.map(|d| d.canonicalize().unwrap_or(d))
}

/// The epoch curves of a trial record without their timings, for bit-exact comparison.
pub(crate) fn curves(record: &Value) -> Vec<(u64, u64, u64)> {
    record["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .map(|e| {
            let bits = |k: &str| e[k].as_f64().expect(k).to_bits();
            (bits("train_loss"), bits("val_loss"), bits("val_accuracy"))
        })
        .collect()
}
