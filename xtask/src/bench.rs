//! `cargo xtask bench`: glorot's epoch side by side with NumPy, PyTorch, JAX and
//! the GEMM-only bound, on the same machine, in one run (issue 8).
//!
//! What it does, in order:
//! 1. makes sure `bench/.venv` exists and holds `bench/requirements.txt`
//!    (`python3 -m venv` + pip); a package that does not install or import is
//!    reported and its implementation skipped, never a failure of the bench;
//! 2. builds the release `glorot` binary through `$CARGO` and checks that it has
//!    the `bench-epoch` and `bench-gemm` commands (reported as not available
//!    otherwise, and skipped);
//! 3. runs every implementation × variant × dtype × batch × instruction-set case
//!    (`--isas`: `native`, and `avx2`, where every implementation is restricted to
//!    AVX2 through its own environment variables) once per repeat, plus glorot with
//!    1 thread at the target batch (thread scaling),
//!    round-robin (all configurations for repeat 1, then all for repeat 2, ...,
//!    with the starting point rotated each repeat), each measurement in a fresh
//!    process, all with the same thread count, thread variables and CPU set;
//! 4. prints medians, minima, maxima and spreads, every ratio the issue's targets
//!    name and whether each target is met, glorot's 1-thread/multi-thread ratio and
//!    its thread team's stalls, and writes `results/bench/bench-<UTC>.json`
//!    and `results/bench/latest.json` (each through a temporary file and a rename).
//!
//! Every child speaks one protocol: one JSON object per measured epoch on one line
//! of standard output, with at least `seconds` (see `bench/README.md`).
//!
//! Peak memory: while a child runs, the harness polls `/proc/<pid>/status` for
//! `VmHWM` (the kernel's own high-water mark of the resident set, so a poll after
//! the peak still sees it; only a peak in the last poll interval before exit is
//! missed), and the Python children also report `ru_maxrss` of themselves. The
//! larger of the two is reported. `getrusage(RUSAGE_CHILDREN)` would need `unsafe`
//! FFI (denied workspace-wide) and only gives the maximum over all children.

use std::{
    collections::BTreeMap,
    env, fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::{build_release_glorot, say, workspace_root};

/// Version of the results JSON layout written by this harness.
const SCHEMA_VERSION: u32 = 2;

/// The notebook's printed first epoch of its glorot run (`../shared/seed/notebook.txt`,
/// cell In \[4\]): the NumPy reference in f64 at batch 32 must reproduce it.
const NOTEBOOK_EPOCH1_LOSS: f64 = 1.1164179979846724;
const NOTEBOOK_EPOCH1_VAL_ACCURACY: f64 = 90.75;

/// Targets of issue 8, as ratios of medians from one run.
const TARGET_F32_VS_FASTEST_REFERENCE: f64 = 1.3;
const TARGET_F32_VS_GEMM_BOUND: f64 = 1.15;
const TARGET_F64_VS_NUMPY: f64 = 2.0;
const TARGET_F64_VS_JAX: f64 = 1.0;

/// Targets of issue 13 for the forced-AVX2 case (everyone restricted to AVX2).
const TARGET_AVX2_F32_VS_NUMPY_JAX: f64 = 1.3;
const TARGET_AVX2_F64_VS_NUMPY: f64 = 2.0;

/// A summary whose relative spread `(max - min) / median` exceeds this is marked noisy.
const NOISY_SPREAD: f64 = 0.25;

/// The batch size the targets are judged at (the notebook's).
const TARGET_BATCH: usize = 32;

/// Samples per split in `--quick` runs unless `--limit` says otherwise.
const QUICK_LIMIT: usize = 5000;

const USAGE: &str = "\
usage: cargo xtask bench [options]

Runs glorot's epoch (784-500-500-10, tanh, lr 0.01: 50,000 training samples plus
a forward pass over 10,000 validation samples) side by side with NumPy, PyTorch
and JAX doing the same math, and the GEMM-only bound, alternating, on this machine.

options:
  --quick               smoke run: 1 repeat, batch 32, first 5000 samples of each split
  --repeats N           measurements per configuration (default 5)
  --batches LIST        batch sizes (default 32,64,128)
  --dtypes LIST         f32,f64 (default both)
  --impls LIST          numpy,torch,jax,glorot,gemm (default all)
  --threads N           threads for every implementation (default 2); glorot is also
                        run with 1 thread at batch 32 (thread scaling)
  --isas LIST           instruction-set cases: native (each implementation picks what
                        it detects), avx2 (each restricted to AVX2; see bench/README.md)
                        (default native,avx2 on an x86-64 CPU with AVX-512F, else native)
  --limit N             use only the first N training and N validation samples
  --mnist-dir DIR       MNIST gzip IDX files (default $GLOROT_MNIST_DIR, else data/mnist,
                        fetched there by `glorot data fetch` when missing)
  --out DIR             results folder (default results/bench)
  --timeout SECS        give up on one measurement after SECS (default 1800)
  --python EXE          interpreter that creates bench/.venv (default python3)
  --glorot EXE          use this glorot binary instead of building the release one
  --no-install          use bench/.venv as it is (no venv creation, no pip)
  --keep-openblas-env   keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment
                        (default: unset both for every child; see bench/README.md)
  --openblas-coretype K force OpenBLAS kernel K (e.g. Haswell, SkylakeX) for every child
                        of the native case (the avx2 case always uses Haswell)
  -h, --help            this text
";

/// Runs the benchmark with the arguments after `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(opts) = Options::parse(args)? else {
        say(USAGE);
        return Ok(());
    };
    let root = workspace_root();
    let mnist_dir = opts.mnist_dir(&root)?;
    let started = SystemTime::now();

    let mut skipped: Vec<Value> = Vec::new();
    let python = prepare_python(&root, &opts, &mut skipped)?;
    let glorot = prepare_glorot(&opts, &mut skipped);
    let available: Vec<Impl> = opts
        .impls
        .iter()
        .copied()
        .filter(|i| match i {
            Impl::Numpy | Impl::Torch | Impl::Jax => python.available.contains(i),
            Impl::Glorot => glorot.as_ref().is_some_and(|g| g.epoch),
            Impl::Gemm => glorot.as_ref().is_some_and(|g| g.gemm),
        })
        .collect();

    let refused: Vec<(Impl, IsaCase)> = glorot
        .as_ref()
        .map(|g| g.refused.iter().map(|&isa| (Impl::Glorot, isa)).collect())
        .unwrap_or_default();
    let configs = configurations(&available, &opts, &refused);
    if configs.is_empty() {
        bail!("nothing to run: every requested implementation was skipped (see above)");
    }
    let env = ChildEnv::new(&opts, &mnist_dir);
    say(&format!(
        "bench: {} configurations x {} repeats, {} threads, isas {}{}; OpenBLAS env: {}",
        configs.len(),
        opts.repeats,
        opts.threads,
        opts.isas
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(","),
        env.pin
            .as_ref()
            .map(|c| format!(", pinned to CPUs {c}"))
            .unwrap_or_default(),
        env.describe(),
    ));

    let mut runs: Vec<RunResult> = Vec::new();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for repeat in 1..=opts.repeats {
        let offset = (repeat - 1) % configs.len();
        for config in configs[offset..].iter().chain(&configs[..offset]) {
            let key = config.key();
            if failed.get(&key).is_some_and(|&n| n >= 2) {
                continue; // failed twice: stop spending time on it
            }
            let cmd = config.command(
                &python.exe,
                glorot.as_ref().map(|g| g.exe.as_path()),
                &root,
                &opts,
            );
            let result = measure(config, repeat, cmd, &env, opts.timeout);
            say(&result.progress_line(opts.repeats));
            if result.error.is_some() {
                *failed.entry(key).or_default() += 1;
            }
            runs.push(result);
        }
    }

    let summary = summarize(&runs);
    let ratios = ratios(&summary, &opts);
    let scaling = scaling(&summary, &runs, &opts);
    print_report(&summary, &ratios, &scaling, &runs, &opts);
    let memory = match (&glorot, available.contains(&Impl::Glorot)) {
        (Some(g), true) => Some(grid_memory(&g.exe, &runs, &root, &opts, &env)),
        _ => None,
    };

    let manifest = manifest(
        &root,
        &opts,
        &mnist_dir,
        &python,
        glorot.as_ref(),
        &env,
        started,
    );
    let doc = json!({
        "schema_version": SCHEMA_VERSION,
        "manifest": manifest,
        "options": opts.to_json(),
        "skipped": skipped,
        "summary": summary.iter().map(Summary::to_json).collect::<Vec<_>>(),
        "ratios": ratios.iter().map(Ratio::to_json).collect::<Vec<_>>(),
        "scaling": scaling.iter().map(Scaling::to_json).collect::<Vec<_>>(),
        "runs": runs.iter().map(RunResult::to_json).collect::<Vec<_>>(),
        "memory": memory,
    });
    let out_dir = if opts.out.is_absolute() {
        opts.out.clone()
    } else {
        root.join(&opts.out)
    };
    let stamp = utc_stamp(started);
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    let dated = out_dir.join(format!("bench-{stamp}.json"));
    write_atomic(&dated, &text)?;
    write_atomic(&out_dir.join("latest.json"), &text)?;
    say(&format!("bench: wrote {} and latest.json", dated.display()));
    Ok(())
}

/// Peak RSS of the parallel grid against one training: `opts.threads` f32 trainings at
/// once on one dataset, one thread each, shuffled (as `glorot search` runs a grid), in one
/// `glorot bench-epoch --workers` process, next to the median peak RSS of the single
/// f32 epochs above at the same batch size. Prints the comparison; returns it as JSON.
fn grid_memory(
    glorot: &Path,
    runs: &[RunResult],
    root: &Path,
    opts: &Options,
    env: &ChildEnv,
) -> Value {
    let batch = opts.batches.first().copied().unwrap_or(32);
    let workers = opts.threads.max(2);
    // Native instruction set; `opts.threads` trainings of one thread each keep the
    // common environment and CPU set.
    let config = Config {
        imp: Impl::Glorot,
        variant: "grid",
        dtype: "f32".into(),
        batch,
        isa: IsaCase::Native,
        threads: opts.threads,
        env: Vec::new(),
    };
    let mut cmd = Command::new(glorot);
    cmd.args([
        "bench-epoch",
        "--precision",
        "f32",
        "--batch",
        &batch.to_string(),
    ]);
    cmd.args(["--threads", "1", "--workers", &workers.to_string()]);
    cmd.args(["--shuffle", "every-epoch", "--repeats", "1", "--json"]);
    if let Some(limit) = opts.limit {
        cmd.args(["--limit", &limit.to_string()]);
    }
    cmd.current_dir(root);
    let parallel = measure(&config, 1, cmd, env, opts.timeout);
    let single: Vec<f64> = runs
        .iter()
        .filter(|r| {
            r.config.imp == Impl::Glorot
                && r.config.dtype == "f32"
                && r.config.batch == batch
                && r.config.isa == IsaCase::Native
                && r.config.threads == opts.threads
        })
        .filter_map(|r| r.peak_rss_kib.map(|k| k as f64))
        .collect();
    let one_kib = (!single.is_empty()).then(|| median(&single));
    // The f32 training and validation images: what a copy per trial would add.
    let images_kib = (opts.limit.map_or(60_000, |l| 2 * l) * 784 * 4) as f64 / 1024.0;
    let mib = |k: f64| k / 1024.0;
    match (one_kib, parallel.peak_rss_kib) {
        (Some(one), Some(par)) => say(&format!(
            "\nMemory (peak RSS, f32, batch {batch}): one training {:.0} MiB; {workers} trainings \
             at once on one dataset (the grid's plan) {:.0} MiB, {:.0} MiB more (the images \
             alone are {:.0} MiB: the dataset is not copied per trial)",
            mib(one),
            mib(par as f64),
            mib(par as f64 - one),
            mib(images_kib)
        )),
        _ => say(&format!(
            "\nMemory: not measured ({})",
            parallel
                .error
                .as_deref()
                .unwrap_or("no single f32 glorot epoch at this batch")
        )),
    }
    json!({
        "batch": batch,
        "workers": workers,
        "one_training_peak_rss_kib": one_kib,
        "parallel_peak_rss_kib": parallel.peak_rss_kib,
        "images_kib": images_kib,
        "parallel_run": parallel.to_json(),
    })
}

// ---------------------------------------------------------------------------
// Options

/// One implementation the harness can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Impl {
    Numpy,
    Torch,
    Jax,
    Glorot,
    Gemm,
}

impl Impl {
    const ALL: [Impl; 5] = [
        Impl::Numpy,
        Impl::Torch,
        Impl::Jax,
        Impl::Glorot,
        Impl::Gemm,
    ];

    fn name(self) -> &'static str {
        match self {
            Impl::Numpy => "numpy",
            Impl::Torch => "torch",
            Impl::Jax => "jax",
            Impl::Glorot => "glorot",
            Impl::Gemm => "gemm",
        }
    }

    fn parse(s: &str) -> Result<Impl> {
        Impl::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .with_context(|| {
                format!("unknown implementation `{s}` (numpy, torch, jax, glorot, gemm)")
            })
    }

    /// Variants run for this implementation, each a separate configuration.
    fn variants(self) -> &'static [&'static str] {
        match self {
            Impl::Numpy => &["notebook"],
            Impl::Torch => &["by-hand", "autograd"],
            Impl::Jax => &["jit-step", "scan-epoch"],
            Impl::Glorot => &["epoch"],
            Impl::Gemm => &["bound"],
        }
    }

    fn script(self) -> Option<&'static str> {
        match self {
            Impl::Numpy => Some("numpy_mlp.py"),
            Impl::Torch => Some("torch_mlp.py"),
            Impl::Jax => Some("jax_mlp.py"),
            Impl::Glorot | Impl::Gemm => None,
        }
    }

    /// A Python statement that fails when the implementation cannot run.
    fn import_check(self) -> &'static str {
        match self {
            Impl::Numpy => "import numpy",
            Impl::Torch => "import numpy, torch; torch.ones(2) @ torch.ones(2)",
            Impl::Jax => "import numpy, jax, jaxlib; jax.numpy.ones(2).block_until_ready()",
            Impl::Glorot | Impl::Gemm => "pass",
        }
    }

    fn is_reference(self) -> bool {
        matches!(self, Impl::Numpy | Impl::Torch | Impl::Jax)
    }
}

/// An instruction-set case: which instructions every implementation may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum IsaCase {
    /// Each implementation picks what it detects.
    Native,
    /// Each implementation restricted to AVX2 (issue 13's forced-AVX2 comparison).
    Avx2,
}

impl IsaCase {
    const ALL: [IsaCase; 2] = [IsaCase::Native, IsaCase::Avx2];

    fn name(self) -> &'static str {
        match self {
            IsaCase::Native => "native",
            IsaCase::Avx2 => "avx2",
        }
    }

    fn parse(s: &str) -> Result<IsaCase> {
        IsaCase::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .with_context(|| format!("--isas: unknown instruction-set case `{s}` (native, avx2)"))
    }

    /// The variables that restrict `imp` to this case, set over the common child
    /// environment ([`ChildEnv`]); empty for `native`.
    fn env(self, imp: Impl) -> Vec<(String, String)> {
        let vars: &[(&str, &str)] = match (self, imp) {
            (IsaCase::Native, _) => &[],
            // glorot's own kernels, and OpenBLAS, which glorot links for some work.
            (IsaCase::Avx2, Impl::Glorot) => {
                &[("GLOROT_ISA", "avx2"), ("OPENBLAS_CORETYPE", "Haswell")]
            }
            (IsaCase::Avx2, Impl::Gemm | Impl::Numpy) => &[("OPENBLAS_CORETYPE", "Haswell")],
            (IsaCase::Avx2, Impl::Torch) => &[
                ("ATEN_CPU_CAPABILITY", "avx2"),
                ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
            ],
            (IsaCase::Avx2, Impl::Jax) => &[("XLA_FLAGS", "--xla_cpu_max_isa=AVX2")],
        };
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The default `--isas`: `native,avx2` on an x86-64 CPU with AVX-512F (so the AVX2
/// case differs from the native one), `native` elsewhere. `cpuinfo` is the text of
/// `/proc/cpuinfo`.
fn default_isas(cpuinfo: &str, x86_64: bool) -> Vec<IsaCase> {
    let avx512f = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|w| w == "avx512f"));
    if x86_64 && avx512f {
        vec![IsaCase::Native, IsaCase::Avx2]
    } else {
        vec![IsaCase::Native]
    }
}

#[derive(Debug, Clone)]
struct Options {
    repeats: usize,
    batches: Vec<usize>,
    dtypes: Vec<String>,
    impls: Vec<Impl>,
    isas: Vec<IsaCase>,
    threads: usize,
    limit: Option<usize>,
    mnist_dir: Option<PathBuf>,
    out: PathBuf,
    timeout: Duration,
    python: String,
    install: bool,
    keep_openblas_env: bool,
    openblas_coretype: Option<String>,
    glorot: Option<PathBuf>,
    quick: bool,
}

impl Options {
    /// Parses the command line; `None` means help was asked for.
    fn parse(args: &[String]) -> Result<Option<Options>> {
        let mut o = Options {
            repeats: 5,
            batches: vec![32, 64, 128],
            dtypes: vec!["f32".into(), "f64".into()],
            impls: Impl::ALL.to_vec(),
            isas: Vec::new(),
            threads: 2,
            limit: None,
            mnist_dir: None,
            out: PathBuf::from("results/bench"),
            timeout: Duration::from_secs(1800),
            python: "python3".into(),
            install: true,
            keep_openblas_env: false,
            openblas_coretype: None,
            glorot: None,
            quick: false,
        };
        let (mut repeats, mut batches, mut limit, mut isas) = (None, None, None, None);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || -> Result<String> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => it
                        .next()
                        .cloned()
                        .with_context(|| format!("{name} needs a value")),
                }
            };
            match name {
                "-h" | "--help" => return Ok(None),
                "--quick" => o.quick = true,
                "--no-install" => o.install = false,
                "--keep-openblas-env" => o.keep_openblas_env = true,
                "--repeats" => repeats = Some(positive(name, &value()?)?),
                "--batches" => batches = Some(list(name, &value()?, |s| positive("--batches", s))?),
                "--dtypes" => {
                    o.dtypes = list(name, &value()?, |s| match s {
                        "f32" | "f64" => Ok(s.to_string()),
                        _ => bail!("--dtypes: `{s}` is not f32 or f64"),
                    })?;
                }
                "--impls" => o.impls = list(name, &value()?, Impl::parse)?,
                "--isas" => isas = Some(list(name, &value()?, IsaCase::parse)?),
                "--threads" => o.threads = positive(name, &value()?)?,
                "--limit" => limit = Some(positive(name, &value()?)?),
                "--mnist-dir" => o.mnist_dir = Some(PathBuf::from(value()?)),
                "--out" => o.out = PathBuf::from(value()?),
                "--timeout" => o.timeout = Duration::from_secs(positive(name, &value()?)? as u64),
                "--python" => o.python = value()?,
                "--openblas-coretype" => o.openblas_coretype = Some(value()?),
                "--glorot" => o.glorot = Some(PathBuf::from(value()?)),
                other => bail!("unknown option `{other}` (try `cargo xtask bench --help`)"),
            }
        }
        if o.quick {
            o.repeats = 1;
            o.batches = vec![TARGET_BATCH];
            o.limit = Some(QUICK_LIMIT);
        }
        if let Some(r) = repeats {
            o.repeats = r;
        }
        if let Some(b) = batches {
            o.batches = b;
        }
        if let Some(l) = limit {
            o.limit = Some(l);
        }
        o.isas = isas.unwrap_or_else(|| {
            default_isas(
                &fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
                cfg!(target_arch = "x86_64"),
            )
        });
        dedup(&mut o.isas);
        dedup(&mut o.batches);
        dedup(&mut o.dtypes);
        dedup(&mut o.impls);
        Ok(Some(o))
    }

    /// The MNIST directory: `--mnist-dir`, else `GLOROT_MNIST_DIR`, else the workspace's
    /// `data/mnist`, which `glorot data fetch` fills when it lacks the files (as every
    /// `glorot` command does on first use; `GLOROT_OFFLINE=1` forbids it). A directory
    /// named by the flag or the variable is never filled.
    fn mnist_dir(&self, root: &Path) -> Result<PathBuf> {
        let file_in = |dir: &Path| dir.join("train-images-idx3-ubyte.gz");
        let dir = match (&self.mnist_dir, env::var_os("GLOROT_MNIST_DIR")) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => PathBuf::from(d),
            (None, None) => {
                let dir = root.join("data/mnist");
                if !file_in(&dir).is_file() {
                    say("bench: MNIST is not in data/mnist: fetching it with `glorot data fetch`");
                    let exe = match &self.glorot {
                        Some(exe) => exe.clone(),
                        None => build_release_glorot()?,
                    };
                    let status = Command::new(&exe)
                        .args(["data", "fetch"])
                        .current_dir(root)
                        .status()
                        .with_context(|| format!("could not start {}", exe.display()))?;
                    if !status.success() {
                        bail!("`glorot data fetch` failed ({status}): see its message above");
                    }
                }
                dir
            }
        };
        let file = file_in(&dir);
        if !file.is_file() {
            bail!(
                "no MNIST at {} (missing {}): pass --mnist-dir, set GLOROT_MNIST_DIR, \
                 or run `glorot data fetch`",
                dir.display(),
                file.display()
            );
        }
        fs::canonicalize(&dir).with_context(|| format!("cannot resolve {}", dir.display()))
    }

    fn to_json(&self) -> Value {
        json!({
            "repeats": self.repeats,
            "batches": self.batches,
            "dtypes": self.dtypes,
            "impls": self.impls.iter().map(|i| i.name()).collect::<Vec<_>>(),
            "isas": self.isas.iter().map(|i| i.name()).collect::<Vec<_>>(),
            "threads": self.threads,
            "limit": self.limit,
            "quick": self.quick,
            "timeout_seconds": self.timeout.as_secs(),
            "keep_openblas_env": self.keep_openblas_env,
            "openblas_coretype": self.openblas_coretype,
        })
    }
}

fn positive(name: &str, s: &str) -> Result<usize> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("{name}: `{s}` is not a positive integer"),
    }
}

fn list<T>(name: &str, s: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    let items: Vec<T> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(parse)
        .collect::<Result<_>>()?;
    if items.is_empty() {
        bail!("{name}: empty list");
    }
    Ok(items)
}

fn dedup<T: PartialEq + Clone>(v: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        if new {
            seen.push(x.clone());
        }
        new
    });
}

// ---------------------------------------------------------------------------
// Python environment

#[derive(Debug)]
struct Python {
    /// The venv's interpreter.
    exe: PathBuf,
    /// Reference implementations whose imports work.
    available: Vec<Impl>,
    /// Versions of python and the packages, from the venv.
    versions: Value,
}

/// Creates or updates `bench/.venv`, then checks which references can run.
fn prepare_python(root: &Path, opts: &Options, skipped: &mut Vec<Value>) -> Result<Python> {
    let venv = root.join("bench/.venv");
    let exe = venv.join("bin/python");
    let wanted: Vec<Impl> = opts
        .impls
        .iter()
        .copied()
        .filter(|i| i.is_reference())
        .collect();
    let mut python = Python {
        exe: exe.clone(),
        available: Vec::new(),
        versions: Value::Null,
    };
    if wanted.is_empty() {
        return Ok(python);
    }
    let skip_all = |reason: String, skipped: &mut Vec<Value>| {
        for i in &wanted {
            say(&format!("bench: skipping {}: {reason}", i.name()));
            skipped.push(json!({"impl": i.name(), "reason": reason}));
        }
    };
    if opts.install {
        if let Err(e) = install_venv(root, &venv, &opts.python) {
            let reason = format!("{e:#}");
            if !exe.is_file() {
                skip_all(reason, skipped);
                return Ok(python);
            }
            say(&format!("bench: venv update incomplete: {reason}"));
        }
    } else if !exe.is_file() {
        skip_all(
            format!("{} does not exist (--no-install)", exe.display()),
            skipped,
        );
        return Ok(python);
    }
    for i in wanted {
        let out = Command::new(&exe)
            .args(["-c", i.import_check()])
            .env("JAX_PLATFORMS", "cpu")
            .output();
        match out {
            Ok(o) if o.status.success() => python.available.push(i),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let reason = format!(
                    "import failed: {}",
                    err.lines().last().unwrap_or("(no message)")
                );
                say(&format!("bench: skipping {}: {reason}", i.name()));
                skipped.push(json!({"impl": i.name(), "reason": reason}));
            }
            Err(e) => {
                let reason = format!("cannot run {}: {e}", exe.display());
                say(&format!("bench: skipping {}: {reason}", i.name()));
                skipped.push(json!({"impl": i.name(), "reason": reason}));
            }
        }
    }
    python.versions = python_versions(&exe);
    Ok(python)
}

/// Makes `venv` hold exactly `bench/requirements.txt`. A copy of the installed file
/// in the venv marks it up to date. When installing everything at once fails, each
/// requirement is installed on its own, so one broken package skips one
/// implementation only; the marker is then not written, so the next run retries.
fn install_venv(root: &Path, venv: &Path, python: &str) -> Result<()> {
    let req_path = root.join("bench/requirements.txt");
    let req = fs::read_to_string(&req_path)
        .with_context(|| format!("cannot read {}", req_path.display()))?;
    let marker = venv.join("glorot-requirements.txt");
    let pip = venv.join("bin/pip");
    if fs::read_to_string(&marker).is_ok_and(|m| m == req) && pip.is_file() {
        return Ok(());
    }
    if !venv.join("bin/python").is_file() {
        say(&format!(
            "bench: creating {} with {python} -m venv",
            venv.display()
        ));
        crate::status(Command::new(python).arg("-m").arg("venv").arg(venv))
            .context("creating the virtual environment")?;
    }
    say("bench: installing bench/requirements.txt (PyTorch's wheel from PyPI is large)");
    let all = Command::new(&pip)
        .args(["install", "--disable-pip-version-check", "-r"])
        .arg(&req_path)
        .stdout(std::io::stderr())
        .status()
        .context("running pip")?;
    if all.success() {
        fs::write(&marker, &req).with_context(|| format!("cannot write {}", marker.display()))?;
        return Ok(());
    }
    say("bench: installing everything at once failed; installing each requirement on its own");
    let mut failures = Vec::new();
    for line in req
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        if line.is_empty() {
            continue;
        }
        let ok = Command::new(&pip)
            .args(["install", "--disable-pip-version-check", line])
            .stdout(std::io::stderr())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            failures.push(line.to_string());
        }
    }
    if failures.is_empty() {
        fs::write(&marker, &req).with_context(|| format!("cannot write {}", marker.display()))?;
        Ok(())
    } else {
        bail!("pip could not install: {}", failures.join(", "))
    }
}

/// Versions of Python and the benchmark's packages, read without importing them.
fn python_versions(exe: &Path) -> Value {
    const SCRIPT: &str = "import json, platform, importlib.metadata as m\n\
        def v(p):\n    try:\n        return m.version(p)\n    except Exception:\n        return None\n\
        print(json.dumps({'python': platform.python_version(), **{p: v(p) for p in \
        ['numpy', 'torch', 'jax', 'jaxlib', 'scipy', 'threadpoolctl']}}))";
    Command::new(exe)
        .args(["-c", SCRIPT])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------
// glorot

#[derive(Debug)]
struct Glorot {
    exe: PathBuf,
    /// `glorot bench-epoch` exists.
    epoch: bool,
    /// `glorot bench-gemm` exists.
    gemm: bool,
    /// Instruction-set cases the binary refuses (the CPU lacks the set): skipped.
    refused: Vec<IsaCase>,
}

/// Builds the release binary and probes its bench commands; `None` when the build
/// fails (reported, not fatal).
fn prepare_glorot(opts: &Options, skipped: &mut Vec<Value>) -> Option<Glorot> {
    let wanted: Vec<Impl> = opts
        .impls
        .iter()
        .copied()
        .filter(|i| matches!(i, Impl::Glorot | Impl::Gemm))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let mut skip = |i: Impl, reason: &str| {
        if wanted.contains(&i) {
            say(&format!("bench: {} not available yet: {reason}", i.name()));
            skipped
                .push(json!({"impl": i.name(), "reason": format!("not available yet: {reason}")}));
        }
    };
    let (built, exe) = match &opts.glorot {
        Some(exe) => (true, exe.clone()),
        None => {
            say("bench: building glorot (release)");
            match build_release_glorot() {
                Ok(exe) => (true, exe),
                Err(e) => {
                    say(&format!("bench: {e:#}"));
                    (false, PathBuf::new())
                }
            }
        }
    };
    if !built || !exe.is_file() {
        skip(Impl::Glorot, "the release build of glorot failed");
        skip(Impl::Gemm, "the release build of glorot failed");
        return None;
    }
    let has = |sub: &str| {
        Command::new(&exe)
            .args([sub, "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut g = Glorot {
        epoch: has("bench-epoch"),
        gemm: has("bench-gemm"),
        refused: Vec::new(),
        exe,
    };
    if !g.epoch {
        skip(
            Impl::Glorot,
            "the glorot binary has no `bench-epoch` command",
        );
    }
    if !g.gemm {
        skip(Impl::Gemm, "the glorot binary has no `bench-gemm` command");
    }
    if g.epoch && wanted.contains(&Impl::Glorot) {
        // `glorot` checks `GLOROT_ISA` before anything else: exit 1 with a message
        // when this CPU lacks the set.
        for &isa in opts.isas.iter().filter(|&&i| i != IsaCase::Native) {
            let mut probe = Command::new(&g.exe);
            probe
                .args(["bench-epoch", "--help"])
                .envs(isa.env(Impl::Glorot))
                .stdin(Stdio::null());
            let refusal = match probe.output() {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string(),
                ),
                Err(e) => Some(format!("cannot start {}: {e}", g.exe.display())),
            };
            if let Some(why) = refusal {
                let reason = format!(
                    "the binary refuses {}: {why}",
                    env_text(&isa.env(Impl::Glorot))
                );
                say(&format!(
                    "bench: glorot skipped in the {} case: {reason}",
                    isa.name()
                ));
                skipped.push(json!({"impl": "glorot", "isa": isa.name(), "reason": reason}));
                g.refused.push(isa);
            }
        }
    }
    Some(g)
}

// ---------------------------------------------------------------------------
// Configurations and children

/// One measured configuration: implementation, variant, dtype, batch, instruction-set
/// case and thread count.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    imp: Impl,
    variant: &'static str,
    dtype: String,
    batch: usize,
    isa: IsaCase,
    /// `--threads` of the child (the run's `--threads`, or 1 for thread scaling).
    threads: usize,
    /// Variables set over the common child environment ([`ChildEnv`]): the
    /// instruction-set case's, and the thread variables when `threads` differs from
    /// the run's.
    env: Vec<(String, String)>,
}

impl Config {
    /// A configuration with its environment overlay; `run_threads` is the run's
    /// `--threads` (what [`ChildEnv`] sets the thread variables to).
    fn new(
        imp: Impl,
        variant: &'static str,
        dtype: &str,
        batch: usize,
        isa: IsaCase,
        threads: usize,
        run_threads: usize,
    ) -> Config {
        let mut env = isa.env(imp);
        if threads != run_threads {
            for v in THREAD_VARS {
                env.push((v.to_string(), threads.to_string()));
            }
        }
        Config {
            imp,
            variant,
            dtype: dtype.to_string(),
            batch,
            isa,
            threads,
            env,
        }
    }

    fn key(&self) -> String {
        format!(
            "{}/{} {} b{} {} t{}",
            self.imp.name(),
            self.variant,
            self.dtype,
            self.batch,
            self.isa.name(),
            self.threads
        )
    }

    fn command(
        &self,
        python: &Path,
        glorot: Option<&Path>,
        root: &Path,
        opts: &Options,
    ) -> Command {
        let mut cmd = match self.imp.script() {
            Some(script) => {
                let mut c = Command::new(python);
                c.arg(root.join("bench/reference").join(script));
                c.args(["--dtype", &self.dtype, "--batch", &self.batch.to_string()]);
                c.args([
                    "--threads",
                    &self.threads.to_string(),
                    "--repeats",
                    "1",
                    "--epochs",
                    "1",
                ]);
                if self.imp.variants().len() > 1 {
                    c.args(["--variant", self.variant]);
                }
                c
            }
            None => {
                let mut c = Command::new(glorot.unwrap_or(Path::new("glorot")));
                c.arg(if self.imp == Impl::Gemm {
                    "bench-gemm"
                } else {
                    "bench-epoch"
                });
                c.args([
                    "--precision",
                    &self.dtype,
                    "--batch",
                    &self.batch.to_string(),
                ]);
                c.args([
                    "--threads",
                    &self.threads.to_string(),
                    "--repeats",
                    "1",
                    "--json",
                ]);
                c
            }
        };
        if let Some(limit) = opts.limit {
            cmd.args(["--limit", &limit.to_string()]);
        }
        cmd.current_dir(root);
        cmd
    }
}

/// The batch size of the thread-scaling runs: the target batch when measured, else
/// the first batch size.
fn scaling_batch(opts: &Options) -> usize {
    if opts.batches.contains(&TARGET_BATCH) {
        TARGET_BATCH
    } else {
        opts.batches.first().copied().unwrap_or(TARGET_BATCH)
    }
}

/// Every configuration, in a fixed order: batch, then dtype, then instruction-set
/// case, then implementation; glorot's 1-thread run (at [`scaling_batch`], when the
/// run uses more threads) follows its multi-thread run. `refused` lists cases an
/// implementation cannot run (skipped).
fn configurations(impls: &[Impl], opts: &Options, refused: &[(Impl, IsaCase)]) -> Vec<Config> {
    let mut out = Vec::new();
    for &batch in &opts.batches {
        for dtype in &opts.dtypes {
            for &isa in &opts.isas {
                for &imp in impls {
                    if refused.contains(&(imp, isa)) {
                        continue;
                    }
                    for &variant in imp.variants() {
                        let mut threads = vec![opts.threads];
                        if imp == Impl::Glorot && batch == scaling_batch(opts) && opts.threads > 1 {
                            threads.push(1);
                        }
                        for t in threads {
                            out.push(Config::new(
                                imp,
                                variant,
                                dtype,
                                batch,
                                isa,
                                t,
                                opts.threads,
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The thread-count variables the common child environment sets to `--threads`.
const THREAD_VARS: [&str; 3] = ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"];

/// `K=V K=V` (a configuration's overlay, for messages).
fn env_text(env: &[(String, String)]) -> String {
    env.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An overlay as a JSON object.
fn env_json(env: &[(String, String)]) -> Value {
    Value::Object(
        env.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect(),
    )
}

/// The environment every child gets, identical for all implementations.
#[derive(Debug)]
struct ChildEnv {
    set: Vec<(String, String)>,
    remove: Vec<String>,
    /// CPU list for `taskset -c`, when fewer threads than CPUs are asked for.
    pin: Option<String>,
    /// CPUs this process may use, and whether `taskset` exists (for [`ChildEnv::pin_for`]).
    cpus: usize,
    taskset: bool,
    /// What the environment said before the harness changed it.
    original: BTreeMap<String, Option<String>>,
}

impl ChildEnv {
    fn new(opts: &Options, mnist_dir: &Path) -> ChildEnv {
        let t = opts.threads.to_string();
        let mut set: Vec<(String, String)> = THREAD_VARS
            .iter()
            .map(|v| (v.to_string(), t.clone()))
            .collect();
        set.push(("GLOROT_MNIST_DIR".into(), mnist_dir.display().to_string()));
        // OpenBLAS prints `Core: <kernel>` on stderr at load: the harness records it.
        set.push(("OPENBLAS_VERBOSE".into(), "2".into()));
        set.push(("JAX_PLATFORMS".into(), "cpu".into()));
        set.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        let mut remove = if opts.keep_openblas_env {
            Vec::new()
        } else {
            vec![
                "OPENBLAS_CORETYPE".to_string(),
                "OPENBLAS_L2_SIZE".to_string(),
            ]
        };
        if let Some(core) = &opts.openblas_coretype {
            remove.retain(|v| v != "OPENBLAS_CORETYPE");
            set.push(("OPENBLAS_CORETYPE".into(), core.clone()));
        }
        let original = [
            "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE",
            "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
        ]
        .iter()
        .map(|v| (v.to_string(), env::var(v).ok()))
        .collect();
        let cpus = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let taskset = has_taskset();
        let pin = pin_cpus(opts.threads, cpus, taskset);
        ChildEnv {
            set,
            remove,
            pin,
            cpus,
            taskset,
            original,
        }
    }

    /// The `taskset -c` CPU list of a child with `threads` threads.
    fn pin_for(&self, threads: usize) -> Option<String> {
        pin_cpus(threads, self.cpus, self.taskset)
    }

    /// One line for the user: what the children's OpenBLAS variables are.
    fn describe(&self) -> String {
        let shown: Vec<String> = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]
            .iter()
            .map(|v| match self.set.iter().find(|(k, _)| k == v) {
                Some((k, val)) => format!("{k}={val}"),
                None if self.remove.iter().any(|r| r == v) => format!("{v} unset"),
                None => match self.original.get(*v).cloned().flatten() {
                    Some(val) => format!("{v}={val} (kept)"),
                    None => format!("{v} not set"),
                },
            })
            .collect();
        shown.join(", ")
    }

    /// The child's command: pinned to `config.threads` CPUs when fewer than all, with
    /// the common environment and then the configuration's overlay.
    fn apply(&self, cmd: Command, config: &Config) -> Command {
        let mut cmd = match &self.pin_for(config.threads) {
            Some(cpus) => {
                let mut t = Command::new("taskset");
                t.args(["-c", cpus])
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                if let Some(dir) = cmd.get_current_dir() {
                    t.current_dir(dir);
                }
                t
            }
            None => cmd,
        };
        for v in &self.remove {
            cmd.env_remove(v);
        }
        for (k, v) in self.set.iter().chain(&config.env) {
            cmd.env(k, v);
        }
        cmd
    }
}

/// CPUs `0-(threads-1)` when `threads` is below `cpus` and `taskset` exists.
fn pin_cpus(threads: usize, cpus: usize, taskset: bool) -> Option<String> {
    (threads < cpus && taskset).then(|| {
        if threads == 1 {
            "0".to_string()
        } else {
            format!("0-{}", threads - 1)
        }
    })
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One measurement (one child process).
#[derive(Debug, Clone)]
struct RunResult {
    config: Config,
    repeat: usize,
    /// The child's epoch record (its last JSON line), when it produced one.
    record: Option<Value>,
    /// Epoch seconds as the child measured them.
    seconds: Option<f64>,
    /// max(VmHWM polled by the harness, the child's own report), KiB.
    peak_rss_kib: Option<u64>,
    polled_peak_rss_kib: Option<u64>,
    /// Wall time of the whole child process, start-up and data loading included.
    process_seconds: f64,
    /// `Core: ...` lines OpenBLAS printed.
    openblas_core: Option<String>,
    /// The `taskset -c` CPU list the child ran under, if pinned.
    pinned_cpus: Option<String>,
    error: Option<String>,
}

impl RunResult {
    fn loss(&self) -> Option<f64> {
        self.record.as_ref()?.get("loss")?.as_f64()
    }

    fn val_accuracy(&self) -> Option<f64> {
        self.record.as_ref()?.get("val_accuracy")?.as_f64()
    }

    /// The thread team's counters from a glorot record (`team`), when present.
    fn team(&self) -> Option<Team> {
        let t = self.record.as_ref()?.get("team")?;
        let n = |k: &str| t.get(k).and_then(Value::as_f64);
        Some(Team {
            regions: n("regions")?,
            solo_regions: n("solo_regions")?,
            stalls: n("stalls")?,
            stall_seconds: n("stall_seconds")?,
        })
    }

    /// Which matrix-product library and kernel did the work: OpenBLAS with the
    /// kernel it chose (NumPy, glorot), MKL (PyTorch's wheel), or XLA (JAX).
    fn blas(&self) -> Option<String> {
        let libs = self
            .record
            .as_ref()
            .and_then(|r| r.get("blas"))
            .and_then(Value::as_array);
        let find = |api: &str| {
            libs?
                .iter()
                .find(|l| l.get("internal_api").and_then(Value::as_str) == Some(api))
        };
        let text = |l: &Value, k: &str| l.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        match self.config.imp {
            // PyTorch's wheel links MKL statically, out of threadpoolctl's sight;
            // the script reports torch's own BLAS_INFO.
            Impl::Torch => find("mkl")
                .map(|l| format!("mkl {}", text(l, "version")))
                .or_else(|| {
                    let blas = self.record.as_ref()?.get("torch_blas")?.as_str()?;
                    Some(format!("{blas} (torch)"))
                })
                .or(Some("torch".into())),
            Impl::Jax => Some("xla".into()),
            Impl::Numpy => find("openblas")
                .map(|l| {
                    format!(
                        "openblas {} {}",
                        text(l, "version"),
                        text(l, "architecture")
                    )
                })
                .or(self.openblas_core.clone().map(|c| format!("openblas {c}"))),
            Impl::Glorot | Impl::Gemm => {
                self.openblas_core.clone().map(|c| format!("openblas {c}"))
            }
        }
    }

    fn progress_line(&self, repeats: usize) -> String {
        let head = format!("[{}/{}] {:<40}", self.repeat, repeats, self.config.key());
        match (&self.error, self.seconds) {
            (None, Some(s)) => {
                let mut line = format!("{head} {s:>9.3} s");
                if let Some(l) = self.loss() {
                    line += &format!("  loss {l:.10}");
                }
                if let Some(a) = self.val_accuracy() {
                    line += &format!("  acc {a:.2}");
                }
                if let Some(r) = self.peak_rss_kib {
                    line += &format!("  rss {} MiB", r / 1024);
                }
                line
            }
            (Some(e), _) => format!("{head} FAILED: {e}"),
            (None, None) => format!("{head} no measurement"),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "impl": self.config.imp.name(),
            "variant": self.config.variant,
            "dtype": self.config.dtype,
            "batch": self.config.batch,
            "isa": self.config.isa.name(),
            "threads": self.config.threads,
            "env": env_json(&self.config.env),
            "pinned_cpus": self.pinned_cpus,
            "repeat": self.repeat,
            "seconds": self.seconds,
            "loss": self.loss(),
            "val_accuracy": self.val_accuracy(),
            "peak_rss_kib": self.peak_rss_kib,
            "polled_peak_rss_kib": self.polled_peak_rss_kib,
            "process_seconds": self.process_seconds,
            "openblas_core": self.openblas_core,
            "blas": self.blas(),
            "error": self.error,
            "record": self.record,
        })
    }
}

/// Runs one child to completion (or timeout), polling its peak RSS.
fn measure(
    config: &Config,
    repeat: usize,
    cmd: Command,
    env: &ChildEnv,
    timeout: Duration,
) -> RunResult {
    let mut cmd = env.apply(cmd, config);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut result = RunResult {
        config: config.clone(),
        repeat,
        record: None,
        seconds: None,
        peak_rss_kib: None,
        polled_peak_rss_kib: None,
        process_seconds: 0.0,
        openblas_core: None,
        pinned_cpus: env.pin_for(config.threads),
        error: None,
    };
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(format!("cannot start {:?}: {e}", cmd.get_program()));
            return result;
        }
    };
    let pid = child.id();
    let stdout = reader_thread(child.stdout.take());
    let stderr = reader_thread(child.stderr.take());
    let mut hwm: Option<u64> = None;
    let mut timed_out = false;
    let status: Option<ExitStatus> = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            hwm = Some(hwm.map_or(kib, |h| h.max(kib)));
        }
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(e) => {
                result.error = Some(format!("waiting for the child: {e}"));
                break None;
            }
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // Ends only the child this harness started, by its handle.
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep(Duration::from_millis(20));
    };
    result.process_seconds = start.elapsed().as_secs_f64();
    let out = stdout.recv().unwrap_or_default();
    let err = stderr.recv().unwrap_or_default();
    result.polled_peak_rss_kib = hwm;
    let cores: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Core: "))
        .collect::<Vec<_>>();
    if !cores.is_empty() {
        let mut cores: Vec<&str> = cores;
        cores.dedup();
        result.openblas_core = Some(cores.join(","));
    }
    let records = parse_records(&out);
    result.record = records.last().cloned();
    result.seconds = result
        .record
        .as_ref()
        .and_then(|r| r.get("seconds"))
        .and_then(Value::as_f64);
    let reported = result
        .record
        .as_ref()
        .and_then(|r| r.get("peak_rss_kib"))
        .and_then(Value::as_u64);
    result.peak_rss_kib = match (hwm, reported) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    if result.error.is_none() {
        let tail = || {
            let lines: Vec<&str> = err
                .lines()
                .filter(|l| !l.trim_start().starts_with("Core: "))
                .collect();
            lines[lines.len().saturating_sub(3)..].join(" | ")
        };
        result.error = if timed_out {
            Some(format!("timed out after {} s", timeout.as_secs()))
        } else if !status.is_some_and(|s| s.success()) {
            Some(format!(
                "exit {}: {}",
                status.map_or("unknown".to_string(), |s| s.to_string()),
                tail()
            ))
        } else if result.seconds.is_none() {
            Some(format!("no JSON line with `seconds` on stdout: {}", tail()))
        } else {
            None
        };
    }
    result
}

fn reader_thread<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(p) = pipe {
            let mut r = BufReader::new(p);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                text.push_str(&line);
                line.clear();
            }
        }
        let _ = tx.send(text);
    });
    rx
}

/// `VmHWM` of a live process, in KiB; `None` once it has exited.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The JSON objects among a child's stdout lines (other lines are ignored).
fn parse_records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("seconds").and_then(Value::as_f64).is_some())
        .collect()
}

// ---------------------------------------------------------------------------
// Statistics and targets

#[derive(Debug, Clone)]
struct Summary {
    imp: Impl,
    variant: &'static str,
    dtype: String,
    batch: usize,
    isa: IsaCase,
    threads: usize,
    /// The configuration's environment overlay.
    env: Vec<(String, String)>,
    seconds: Vec<f64>,
    median: f64,
    min: f64,
    max: f64,
    loss: Option<f64>,
    val_accuracy: Option<f64>,
    peak_rss_kib: Option<u64>,
    blas: Option<String>,
    failures: usize,
}

impl Summary {
    fn key(&self) -> String {
        format!("{}/{}", self.imp.name(), self.variant)
    }

    /// Relative spread `(max - min) / median`; `None` without measurements.
    fn spread(&self) -> Option<f64> {
        (!self.seconds.is_empty() && self.median > 0.0).then(|| (self.max - self.min) / self.median)
    }

    /// Whether the spread exceeds [`NOISY_SPREAD`].
    fn noisy(&self) -> bool {
        self.spread().is_some_and(|s| s > NOISY_SPREAD)
    }

    fn to_json(&self) -> Value {
        json!({
            "impl": self.imp.name(),
            "variant": self.variant,
            "dtype": self.dtype,
            "batch": self.batch,
            "isa": self.isa.name(),
            "threads": self.threads,
            "env": env_json(&self.env),
            "n": self.seconds.len(),
            "seconds": self.seconds,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "spread": self.spread(),
            "noisy": self.noisy(),
            "loss": self.loss,
            "val_accuracy": self.val_accuracy,
            "peak_rss_kib": self.peak_rss_kib,
            "blas": self.blas,
            "failures": self.failures,
        })
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Medians, minima and maxima per configuration that measured at least once.
fn summarize(runs: &[RunResult]) -> Vec<Summary> {
    let mut out: Vec<Summary> = Vec::new();
    for r in runs {
        let pos = out.iter().position(|s| {
            s.imp == r.config.imp
                && s.variant == r.config.variant
                && s.dtype == r.config.dtype
                && s.batch == r.config.batch
                && s.isa == r.config.isa
                && s.threads == r.config.threads
        });
        let s = match pos {
            Some(p) => &mut out[p],
            None => {
                out.push(Summary {
                    imp: r.config.imp,
                    variant: r.config.variant,
                    dtype: r.config.dtype.clone(),
                    batch: r.config.batch,
                    isa: r.config.isa,
                    threads: r.config.threads,
                    env: r.config.env.clone(),
                    seconds: Vec::new(),
                    median: f64::NAN,
                    min: f64::NAN,
                    max: f64::NAN,
                    loss: None,
                    val_accuracy: None,
                    peak_rss_kib: None,
                    blas: None,
                    failures: 0,
                });
                out.last_mut().expect("just pushed")
            }
        };
        match (r.error.as_ref(), r.seconds) {
            (None, Some(sec)) => {
                s.seconds.push(sec);
                s.loss = s.loss.or(r.loss());
                s.val_accuracy = s.val_accuracy.or(r.val_accuracy());
                s.peak_rss_kib = s.peak_rss_kib.max(r.peak_rss_kib);
                s.blas = s.blas.clone().or(r.blas());
            }
            _ => s.failures += 1,
        }
    }
    for s in &mut out {
        if !s.seconds.is_empty() {
            s.median = median(&s.seconds);
            s.min = s.seconds.iter().copied().fold(f64::INFINITY, f64::min);
            s.max = s.seconds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        }
    }
    // The run's thread count before glorot's 1-thread row.
    out.sort_by(|a, b| {
        (
            a.batch,
            &a.dtype,
            a.isa,
            a.imp,
            a.variant,
            std::cmp::Reverse(a.threads),
        )
            .cmp(&(
                b.batch,
                &b.dtype,
                b.isa,
                b.imp,
                b.variant,
                std::cmp::Reverse(b.threads),
            ))
    });
    out
}

/// One ratio the issue's targets name.
#[derive(Debug, Clone)]
struct Ratio {
    name: &'static str,
    batch: usize,
    /// The instruction-set case both sides ran in.
    isa: IsaCase,
    /// What is divided by what, e.g. `torch/by-hand f32 / glorot/epoch f32`.
    definition: String,
    value: Option<f64>,
    /// `>= x` or `<= x` (or `> x`).
    target: String,
    met: Option<bool>,
    /// Why the ratio is missing, when it is.
    missing: Option<String>,
    /// Targets are judged at the notebook's batch size; other batches are reported.
    judged: bool,
}

impl Ratio {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "batch": self.batch,
            "isa": self.isa.name(),
            "definition": self.definition,
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "missing": self.missing,
            "judged": self.judged,
        })
    }
}

#[derive(Clone, Copy)]
enum Cmp {
    AtLeast(f64),
    AtMost(f64),
    Above(f64),
}

impl Cmp {
    fn check(self, v: f64) -> bool {
        match self {
            Cmp::AtLeast(t) => v >= t,
            Cmp::AtMost(t) => v <= t,
            Cmp::Above(t) => v > t,
        }
    }

    fn text(self) -> String {
        match self {
            Cmp::AtLeast(t) => format!(">= {t}"),
            Cmp::AtMost(t) => format!("<= {t}"),
            Cmp::Above(t) => format!("> {t}"),
        }
    }
}

/// The fastest (lowest median) measured summary among `imps` for a dtype, batch,
/// instruction-set case and thread count.
fn fastest<'a>(
    summary: &'a [Summary],
    imps: &[Impl],
    dtype: &str,
    batch: usize,
    isa: IsaCase,
    threads: usize,
) -> Option<&'a Summary> {
    summary
        .iter()
        .filter(|s| imps.contains(&s.imp) && s.dtype == dtype && s.batch == batch)
        .filter(|s| s.isa == isa && s.threads == threads)
        .filter(|s| !s.seconds.is_empty())
        .min_by(|a, b| a.median.total_cmp(&b.median))
}

/// One target: name, numerator, denominator, comparison, and the two sides' labels.
type TargetSpec<'a> = (
    &'static str,
    Option<&'a Summary>,
    Option<&'a Summary>,
    Cmp,
    &'static str,
    &'static str,
);

/// The target ratios for every batch size, at the run's thread count: issue 8's four
/// in the `native` case, issue 13's two in the `avx2` case.
fn ratios(summary: &[Summary], opts: &Options) -> Vec<Ratio> {
    let mut out = Vec::new();
    for &batch in &opts.batches {
        for &isa in &opts.isas {
            let find = |imps: &[Impl], dtype: &str| {
                fastest(summary, imps, dtype, batch, isa, opts.threads)
            };
            let glorot32 = find(&[Impl::Glorot], "f32");
            let glorot64 = find(&[Impl::Glorot], "f64");
            let numpy64 = find(&[Impl::Numpy], "f64");
            // (name, numerator, denominator, target, labels): value = numerator / denominator.
            let specs: Vec<TargetSpec<'_>> = match isa {
                IsaCase::Native => vec![
                    (
                        "f32 speed-up over the fastest of NumPy, PyTorch, JAX",
                        find(&[Impl::Numpy, Impl::Torch, Impl::Jax], "f32"),
                        glorot32,
                        Cmp::AtLeast(TARGET_F32_VS_FASTEST_REFERENCE),
                        "fastest reference f32",
                        "glorot f32",
                    ),
                    (
                        "f32 epoch over the GEMM-only bound",
                        glorot32,
                        find(&[Impl::Gemm], "f32"),
                        Cmp::AtMost(TARGET_F32_VS_GEMM_BOUND),
                        "glorot f32",
                        "GEMM bound f32",
                    ),
                    (
                        "f64 speed-up over NumPy",
                        numpy64,
                        glorot64,
                        Cmp::AtLeast(TARGET_F64_VS_NUMPY),
                        "numpy f64",
                        "glorot f64",
                    ),
                    (
                        "f64 speed-up over JAX",
                        find(&[Impl::Jax], "f64"),
                        glorot64,
                        Cmp::Above(TARGET_F64_VS_JAX),
                        "fastest jax f64",
                        "glorot f64",
                    ),
                ],
                IsaCase::Avx2 => vec![
                    (
                        "AVX2 f32 speed-up over the fastest of NumPy and JAX",
                        find(&[Impl::Numpy, Impl::Jax], "f32"),
                        glorot32,
                        Cmp::AtLeast(TARGET_AVX2_F32_VS_NUMPY_JAX),
                        "fastest of numpy, jax f32 avx2",
                        "glorot f32 avx2",
                    ),
                    (
                        "AVX2 f64 speed-up over NumPy",
                        numpy64,
                        glorot64,
                        Cmp::AtLeast(TARGET_AVX2_F64_VS_NUMPY),
                        "numpy f64 avx2",
                        "glorot f64 avx2",
                    ),
                ],
            };
            // The native case's definitions read as before; others name their case.
            let case = match isa {
                IsaCase::Native => String::new(),
                other => format!(" {}", other.name()),
            };
            for (name, num, den, cmp, num_label, den_label) in specs {
                let judged = batch == TARGET_BATCH;
                let (value, definition, missing) = match (num, den) {
                    (Some(n), Some(d)) => (
                        Some(n.median / d.median),
                        format!(
                            "{} {}{case} / {} {}{case}",
                            n.key(),
                            n.dtype,
                            d.key(),
                            d.dtype
                        ),
                        None,
                    ),
                    _ => {
                        let mut gone = Vec::new();
                        if num.is_none() {
                            gone.push(num_label);
                        }
                        if den.is_none() {
                            gone.push(den_label);
                        }
                        (
                            None,
                            format!("{num_label} / {den_label}"),
                            Some(format!("not measured: {}", gone.join(", "))),
                        )
                    }
                };
                out.push(Ratio {
                    name,
                    batch,
                    isa,
                    definition,
                    value,
                    target: cmp.text(),
                    met: value.map(|v| cmp.check(v)),
                    missing,
                    judged,
                });
            }
        }
    }
    out
}

/// Means per run of a glorot record's `team` counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Team {
    regions: f64,
    solo_regions: f64,
    stalls: f64,
    stall_seconds: f64,
}

impl Team {
    /// The mean of the counters over the runs that reported them.
    fn mean<'a>(runs: impl Iterator<Item = &'a RunResult>) -> Option<Team> {
        let teams: Vec<Team> = runs
            .filter(|r| r.error.is_none())
            .filter_map(RunResult::team)
            .collect();
        if teams.is_empty() {
            return None;
        }
        let n = teams.len() as f64;
        let sum = |f: fn(&Team) -> f64| teams.iter().map(f).sum::<f64>() / n;
        Some(Team {
            regions: sum(|t| t.regions),
            solo_regions: sum(|t| t.solo_regions),
            stalls: sum(|t| t.stalls),
            stall_seconds: sum(|t| t.stall_seconds),
        })
    }

    fn to_json(self) -> Value {
        json!({
            "regions": self.regions,
            "solo_regions": self.solo_regions,
            "stalls": self.stalls,
            "stall_seconds": self.stall_seconds,
        })
    }
}

/// glorot's thread scaling in one dtype and instruction-set case: its 1-thread epoch
/// against its epoch with the run's thread count, and what the thread team did.
#[derive(Debug, Clone)]
struct Scaling {
    dtype: String,
    isa: IsaCase,
    batch: usize,
    /// The run's `--threads`.
    threads: usize,
    /// Median seconds with 1 thread and with `threads`.
    one_thread_median: Option<f64>,
    median: Option<f64>,
    /// `one_thread_median / median`: the parallel speed-up.
    speedup: Option<f64>,
    /// The team's counters per run, with `threads` and with 1 thread.
    team: Option<Team>,
    one_thread_team: Option<Team>,
}

impl Scaling {
    fn to_json(&self) -> Value {
        json!({
            "impl": "glorot",
            "dtype": self.dtype,
            "isa": self.isa.name(),
            "batch": self.batch,
            "threads": self.threads,
            "one_thread_median": self.one_thread_median,
            "median": self.median,
            "speedup": self.speedup,
            "team_per_run": self.team.map(Team::to_json),
            "one_thread_team_per_run": self.one_thread_team.map(Team::to_json),
        })
    }
}

/// glorot's thread scaling per dtype and instruction-set case, at [`scaling_batch`];
/// empty when the run itself uses one thread. Cases without any glorot measurement
/// (skipped) are left out.
fn scaling(summary: &[Summary], runs: &[RunResult], opts: &Options) -> Vec<Scaling> {
    let mut out = Vec::new();
    if opts.threads <= 1 {
        return out;
    }
    let batch = scaling_batch(opts);
    for &isa in &opts.isas {
        for dtype in &opts.dtypes {
            let median = |threads: usize| {
                fastest(summary, &[Impl::Glorot], dtype, batch, isa, threads).map(|s| s.median)
            };
            let team = |threads: usize| {
                Team::mean(runs.iter().filter(|r| {
                    let c = &r.config;
                    c.imp == Impl::Glorot
                        && c.variant == "epoch"
                        && &c.dtype == dtype
                        && c.batch == batch
                        && c.isa == isa
                        && c.threads == threads
                }))
            };
            let (one, many) = (median(1), median(opts.threads));
            if one.is_none() && many.is_none() {
                continue;
            }
            out.push(Scaling {
                dtype: dtype.clone(),
                isa,
                batch,
                threads: opts.threads,
                one_thread_median: one,
                median: many,
                speedup: one.zip(many).map(|(a, b)| a / b),
                team: team(opts.threads),
                one_thread_team: team(1),
            });
        }
    }
    out
}

fn print_report(
    summary: &[Summary],
    ratios: &[Ratio],
    scaling: &[Scaling],
    runs: &[RunResult],
    opts: &Options,
) {
    say("");
    say(&format!(
        "Epoch seconds ({} threads; median, min, max over {} repeats; spread = (max - min) / median, \
         'noisy' above {NOISY_SPREAD}; 'x glorot' = median / glorot's median in the same dtype and \
         instruction-set case, 'x bound' = median / GEMM-only bound's):",
        opts.threads, opts.repeats
    ));
    let mut last: Option<(usize, String, IsaCase)> = None;
    for s in summary {
        if last.as_ref() != Some(&(s.batch, s.dtype.clone(), s.isa)) {
            say(&format!(
                "\n  batch {} {} {}{}",
                s.batch,
                s.dtype,
                s.isa.name(),
                match s.isa {
                    IsaCase::Native => String::new(),
                    _ => format!(" (e.g. glorot: {})", env_text(&s.isa.env(Impl::Glorot))),
                }
            ));
            say(&format!(
                "    {:<22} {:>3} {:>9} {:>9} {:>9} {:>11} {:>9} {:>8} {:>15} {:>7} {:>8}  {}",
                "implementation",
                "n",
                "median",
                "min",
                "max",
                "spread",
                "x glorot",
                "x bound",
                "loss",
                "acc",
                "rss MiB",
                "BLAS"
            ));
            last = Some((s.batch, s.dtype.clone(), s.isa));
        }
        let label = if s.threads == opts.threads {
            s.key()
        } else {
            format!("{} t{}", s.key(), s.threads)
        };
        if s.seconds.is_empty() {
            say(&format!("    {:<22} failed {} time(s)", label, s.failures));
            continue;
        }
        let rel = |imp: Impl| {
            fastest(summary, &[imp], &s.dtype, s.batch, s.isa, opts.threads)
                .map_or("-".to_string(), |o| format!("{:.2}", s.median / o.median))
        };
        let spread = s.spread().map_or("-".to_string(), |v| {
            format!("{v:.3}{}", if s.noisy() { " noisy" } else { "" })
        });
        say(&format!(
            "    {:<22} {:>3} {:>9.3} {:>9.3} {:>9.3} {:>11} {:>9} {:>8} {:>15} {:>7} {:>8}  {}",
            label,
            s.seconds.len(),
            s.median,
            s.min,
            s.max,
            spread,
            rel(Impl::Glorot),
            rel(Impl::Gemm),
            s.loss.map_or("-".into(), |l| format!("{l:.10}")),
            s.val_accuracy.map_or("-".into(), |a| format!("{a:.2}")),
            s.peak_rss_kib
                .map_or("-".into(), |r| format!("{}", r / 1024)),
            s.blas.as_deref().unwrap_or("-"),
        ));
    }
    say("\nTargets (judged at batch 32, with the run's thread count; other batches reported):");
    for r in ratios {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        };
        let value = r.value.map_or("-".into(), |v| format!("{v:.3}"));
        say(&format!(
            "  b{:<4} {:<52} {:>7} (target {:<6}) {:<8}{}  [{}]{}",
            r.batch,
            r.name,
            value,
            r.target,
            verdict,
            if r.judged { "" } else { " (info)" },
            r.definition,
            r.missing
                .as_ref()
                .map(|m| format!(" {m}"))
                .unwrap_or_default(),
        ));
    }
    if !scaling.is_empty() {
        say(&format!(
            "\nThread scaling (glorot, batch {}): speed-up = 1-thread median / {}-thread median; \
             the thread team per {}-thread run: stalls (a helper preempted by another process), \
             seconds waited, share of regions run alone:",
            scaling[0].batch, opts.threads, opts.threads
        ));
        for sc in scaling {
            let secs = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.3} s"));
            let team = sc.team.map_or("team: -".to_string(), |t| {
                format!(
                    "stalls/run {:.1} ({:.3} s), solo {:.1}% of {:.0} regions",
                    t.stalls,
                    t.stall_seconds,
                    if t.regions > 0.0 {
                        100.0 * t.solo_regions / t.regions
                    } else {
                        0.0
                    },
                    t.regions
                )
            });
            say(&format!(
                "  {} {:<7} speed-up {:>6} (1 thread {}, {} threads {})  {}",
                sc.dtype,
                sc.isa.name(),
                sc.speedup.map_or("-".to_string(), |v| format!("{v:.2}")),
                secs(sc.one_thread_median),
                sc.threads,
                secs(sc.median),
                team
            ));
        }
    }
    // The NumPy reference's correctness check against the notebook's printed epoch.
    if let Some(r) = runs.iter().find(|r| {
        r.config.imp == Impl::Numpy
            && r.config.dtype == "f64"
            && r.config.batch == 32
            && r.config.isa == IsaCase::Native
            && r.error.is_none()
    }) {
        match (opts.limit, r.loss(), r.val_accuracy()) {
            (None, Some(l), Some(a)) => say(&format!(
                "\nNumPy reference, f64, batch 32, epoch 1: loss {l:?} (notebook {NOTEBOOK_EPOCH1_LOSS:?}, \
                 |diff| {:.1e}), validation accuracy {a} (notebook {NOTEBOOK_EPOCH1_VAL_ACCURACY})",
                (l - NOTEBOOK_EPOCH1_LOSS).abs()
            )),
            _ => {
                say("\nNumPy reference: --limit is set, so no comparison with the notebook's epoch")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Manifest and files

/// `path` as the bench JSON records it, so that committed files name no place on one
/// machine: relative to the workspace `root` when inside it (`target/release/glorot`),
/// else its last component marked as outside (`…/mnist`), as `results/REPORT.md` shows
/// paths.
fn portable(root: &Path, path: &Path) -> String {
    let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let path = canonical(path);
    match path.strip_prefix(canonical(root)) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        Ok(_) => ".".to_owned(),
        Err(_) => path
            .file_name()
            .map_or("…".to_owned(), |n| format!("…/{}", n.to_string_lossy())),
    }
}

fn manifest(
    root: &Path,
    opts: &Options,
    mnist_dir: &Path,
    python: &Python,
    glorot: Option<&Glorot>,
    env: &ChildEnv,
    started: SystemTime,
) -> Value {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let mem_total_kib = fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    let rustc = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let mut child_env = Map::new();
    for (k, v) in &env.set {
        let v = if k == "GLOROT_MNIST_DIR" {
            portable(root, Path::new(v))
        } else {
            v.clone()
        };
        child_env.insert(k.clone(), Value::from(v));
    }
    for k in &env.remove {
        child_env.insert(k.clone(), Value::Null);
    }
    json!({
        "date_utc": utc_iso(started),
        "host": read("/proc/sys/kernel/hostname"),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "cpu_model": cpu_model,
        "cpus": thread::available_parallelism().map(|n| n.get()).ok(),
        "mem_total_kib": mem_total_kib,
        "threads": opts.threads,
        "pinned_cpus": env.pin,
        "isas": opts.isas.iter().map(|i| i.name()).collect::<Vec<_>>(),
        "isa_env": opts
            .isas
            .iter()
            .map(|&isa| {
                let per_impl: Map<String, Value> = Impl::ALL
                    .iter()
                    .map(|&i| (i.name().to_string(), env_json(&isa.env(i))))
                    .collect();
                (isa.name().to_string(), Value::Object(per_impl))
            })
            .collect::<Map<String, Value>>(),
        "git_revision": git(&["rev-parse", "HEAD"]),
        "git_dirty": dirty,
        "rustc": rustc,
        "python": python.versions,
        "glorot_binary": glorot.map(|g| portable(root, &g.exe)),
        "mnist_dir": portable(root, mnist_dir),
        "child_env": child_env,
        "original_env": env.original,
        "workload": {
            "units": [784, 500, 500, 10],
            "activation": "tanh",
            "lr": 0.01,
            "train_samples": opts.limit.map_or(50_000, |l| l.min(50_000)),
            "val_samples": opts.limit.map_or(10_000, |l| l.min(10_000)),
        },
    })
}

/// Writes `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half a file.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().context("results path has no folder")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .context("results path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn utc_parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    (y, mo, d, s / 3600, s % 3600 / 60, s % 60)
}

/// `20261129T015900Z`, for file names.
fn utc_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-11-29T01:59:00Z`.
fn utc_iso(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[track_caller]
    fn parse(s: &str) -> Options {
        Options::parse(&args(s)).expect("parses").expect("not help")
    }

    #[test]
    fn defaults_follow_the_issue() {
        let o = parse("");
        assert_eq!(o.batches, [32, 64, 128]);
        assert_eq!(o.threads, 2);
        assert_eq!(o.repeats, 5);
        assert_eq!(o.impls, Impl::ALL);
        assert_eq!(o.limit, None);
    }

    #[test]
    fn quick_is_one_repeat_at_batch_32_and_can_be_overridden() {
        let o = parse("--quick");
        assert_eq!(
            (o.repeats, o.batches.as_slice(), o.limit),
            (1, &[32][..], Some(QUICK_LIMIT))
        );
        let o = parse("--quick --repeats 2 --batches=64,64,128 --limit 100");
        assert_eq!(
            (o.repeats, o.batches.as_slice(), o.limit),
            (2, &[64, 128][..], Some(100))
        );
    }

    #[test]
    fn lists_and_errors() {
        let o = parse("--impls numpy,glorot --dtypes f64");
        assert_eq!(o.impls, [Impl::Numpy, Impl::Glorot]);
        assert_eq!(o.dtypes, ["f64"]);
        for bad in [
            "--impls numpy,pandas",
            "--threads 0",
            "--batches",
            "--dtypes f16",
            "--frobnicate",
        ] {
            assert!(
                Options::parse(&args(bad)).is_err(),
                "{bad} should be rejected"
            );
        }
        assert!(Options::parse(&args("--help")).unwrap().is_none());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn vm_hwm_is_read_from_proc_status_text() {
        let text = "Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  706032 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(text), Some(706_032));
        assert_eq!(parse_vm_hwm("Name:\tzombie\n"), None);
        // This very process has a high-water mark.
        assert!(vm_hwm_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn child_records_are_json_lines_with_seconds() {
        let out = "loading...\n{\"impl\": \"numpy\", \"seconds\": 9.5, \"loss\": 1.1}\n{\"note\": 1}\n{bad\n";
        let recs = parse_records(out);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0]["seconds"], 9.5);
    }

    #[test]
    fn utc_dates_match_known_days() {
        // 2000-03-01 is day 11,017 since the epoch; 1970-01-01 is day 0 (hand-checked).
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14T22:13:20Z (`date -u -d @1700000000`)
        assert_eq!(utc_iso(t), "2023-11-14T22:13:20Z");
        assert_eq!(utc_stamp(t), "20231114T221320Z");
    }

    fn summary(imp: Impl, variant: &'static str, dtype: &str, secs: &[f64]) -> Vec<RunResult> {
        runs_in(imp, variant, dtype, IsaCase::Native, 2, secs)
    }

    /// Runs at batch 32 of one configuration (the run's `--threads` is 2).
    fn runs_in(
        imp: Impl,
        variant: &'static str,
        dtype: &str,
        isa: IsaCase,
        threads: usize,
        secs: &[f64],
    ) -> Vec<RunResult> {
        secs.iter()
            .enumerate()
            .map(|(i, &s)| RunResult {
                config: Config::new(imp, variant, dtype, 32, isa, threads, 2),
                repeat: i + 1,
                record: Some(json!({"seconds": s, "loss": 1.0})),
                seconds: Some(s),
                peak_rss_kib: Some(1024),
                polled_peak_rss_kib: Some(1024),
                process_seconds: s + 1.0,
                openblas_core: None,
                pinned_cpus: None,
                error: None,
            })
            .collect()
    }

    #[test]
    fn ratios_use_medians_and_the_fastest_reference() {
        let mut runs = Vec::new();
        runs.extend(summary(Impl::Glorot, "epoch", "f32", &[2.0, 2.0, 9.0]));
        runs.extend(summary(Impl::Numpy, "notebook", "f32", &[6.0, 6.0, 6.0]));
        runs.extend(summary(Impl::Torch, "by-hand", "f32", &[3.0, 3.0, 3.0]));
        runs.extend(summary(Impl::Gemm, "bound", "f32", &[1.6, 1.6, 1.6]));
        runs.extend(summary(Impl::Glorot, "epoch", "f64", &[4.0]));
        runs.extend(summary(Impl::Numpy, "notebook", "f64", &[10.0]));
        let mut failed = summary(Impl::Jax, "scan-epoch", "f64", &[1.0]);
        failed[0].error = Some("boom".into());
        runs.extend(failed);
        let s = summarize(&runs);
        let r = ratios(&s, &parse("--batches 32 --isas native"));
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].value, Some(1.5)); // torch 3.0 / glorot median 2.0
        assert_eq!(r[0].met, Some(true));
        assert!(r[0].definition.starts_with("torch/by-hand"));
        assert_eq!(r[1].value, Some(2.0 / 1.6));
        assert_eq!(r[1].met, Some(false));
        assert_eq!(r[2].value, Some(2.5));
        assert_eq!(r[2].met, Some(true));
        assert_eq!(r[3].value, None); // the only JAX run failed
        assert!(r[3].missing.as_deref().unwrap().contains("jax"));
        let jax = s.iter().find(|x| x.imp == Impl::Jax).unwrap();
        assert_eq!(jax.failures, 1);
    }

    #[test]
    fn paths_are_recorded_relative_to_the_workspace_or_by_name() {
        // Paths that do not exist are taken as written.
        let root = Path::new("/nonexistent/glorot");
        let bin = root.join("target/release/glorot");
        assert_eq!(portable(root, &bin), "target/release/glorot");
        assert_eq!(portable(root, root), ".");
        assert_eq!(
            portable(root, Path::new("/nonexistent/shared/mnist")),
            "…/mnist"
        );
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let path = dir.join("latest.json");
        write_atomic(&path, "one").unwrap();
        write_atomic(&path, "two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn child_commands_follow_the_protocol() {
        let o = parse("--limit 100");
        let root = Path::new("/r");
        let c = Config::new(Impl::Torch, "autograd", "f32", 64, IsaCase::Native, 2, 2);
        let cmd = c.command(Path::new("/py"), None, root, &o);
        let a: Vec<String> = cmd
            .get_args()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a.join(" "),
            "/r/bench/reference/torch_mlp.py --dtype f32 --batch 64 --threads 2 --repeats 1 \
             --epochs 1 --variant autograd --limit 100"
        );
        let c = Config::new(Impl::Gemm, "bound", "f64", 32, IsaCase::Native, 2, 2);
        let cmd = c.command(Path::new("/py"), Some(Path::new("/g")), root, &o);
        let a: Vec<String> = cmd
            .get_args()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(cmd.get_program(), "/g");
        assert_eq!(
            a.join(" "),
            "bench-gemm --precision f64 --batch 32 --threads 2 --repeats 1 --json --limit 100"
        );
    }

    #[test]
    fn isas_parse_and_default_from_cpu_flags() {
        let o = parse("--isas avx2,native,avx2");
        assert_eq!(o.isas, [IsaCase::Avx2, IsaCase::Native]);
        assert_eq!(parse("--isas=native").isas, [IsaCase::Native]);
        for bad in ["--isas sse", "--isas ,", "--isas"] {
            assert!(
                Options::parse(&args(bad)).is_err(),
                "{bad} should be rejected"
            );
        }
        // Flags lines as /proc/cpuinfo prints them (shortened from this machine's AMD EPYC).
        let avx512 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw\n";
        let avx2_only = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512_bf16x\n";
        let arm = "processor\t: 0\nFeatures\t: fp asimd avx512f\n";
        assert_eq!(default_isas(avx512, true), [IsaCase::Native, IsaCase::Avx2]);
        assert_eq!(default_isas(avx512, false), [IsaCase::Native]);
        assert_eq!(default_isas(avx2_only, true), [IsaCase::Native]);
        assert_eq!(default_isas(arm, true), [IsaCase::Native]);
        assert_eq!(default_isas("", true), [IsaCase::Native]);
    }

    #[test]
    fn avx2_case_restricts_each_implementation_as_the_issue_says() {
        let env = |imp| env_text(&IsaCase::Avx2.env(imp));
        assert_eq!(
            env(Impl::Glorot),
            "GLOROT_ISA=avx2 OPENBLAS_CORETYPE=Haswell"
        );
        assert_eq!(env(Impl::Gemm), "OPENBLAS_CORETYPE=Haswell");
        assert_eq!(env(Impl::Numpy), "OPENBLAS_CORETYPE=Haswell");
        assert_eq!(
            env(Impl::Torch),
            "ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2"
        );
        assert_eq!(env(Impl::Jax), "XLA_FLAGS=--xla_cpu_max_isa=AVX2");
        for imp in Impl::ALL {
            assert!(IsaCase::Native.env(imp).is_empty());
        }
    }

    #[test]
    fn configurations_add_isa_cases_and_one_thread_glorot_at_the_target_batch() {
        let o = parse("--impls numpy,glorot --dtypes f32 --batches 32,64 --isas native,avx2");
        let keys = |c: &[Config]| c.iter().map(Config::key).collect::<Vec<_>>();
        assert_eq!(
            keys(&configurations(&o.impls, &o, &[])),
            [
                "numpy/notebook f32 b32 native t2",
                "glorot/epoch f32 b32 native t2",
                "glorot/epoch f32 b32 native t1",
                "numpy/notebook f32 b32 avx2 t2",
                "glorot/epoch f32 b32 avx2 t2",
                "glorot/epoch f32 b32 avx2 t1",
                "numpy/notebook f32 b64 native t2",
                "glorot/epoch f32 b64 native t2",
                "numpy/notebook f32 b64 avx2 t2",
                "glorot/epoch f32 b64 avx2 t2",
            ]
        );
        // glorot refusing AVX2 drops its AVX2 cases only.
        let c = configurations(&o.impls, &o, &[(Impl::Glorot, IsaCase::Avx2)]);
        assert_eq!(c.len(), 7);
        assert!(
            c.iter()
                .all(|c| !(c.imp == Impl::Glorot && c.isa == IsaCase::Avx2))
        );
        // The 1-thread run's overlay: the case's variables, then the thread variables.
        let one = configurations(&o.impls, &o, &[])
            .into_iter()
            .find(|c| c.isa == IsaCase::Avx2 && c.threads == 1)
            .unwrap();
        assert_eq!(
            env_text(&one.env),
            "GLOROT_ISA=avx2 OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 \
             OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
        );
        // Without batch 32 the scaling runs at the first batch; with 1 thread there are none.
        let o = parse("--impls glorot --dtypes f64 --batches 128,64 --isas native");
        assert_eq!(
            keys(&configurations(&o.impls, &o, &[])),
            [
                "glorot/epoch f64 b128 native t2",
                "glorot/epoch f64 b128 native t1",
                "glorot/epoch f64 b64 native t2",
            ]
        );
        let o = parse("--impls glorot --dtypes f64 --batches 32 --isas native --threads 1");
        assert_eq!(
            keys(&configurations(&o.impls, &o, &[])),
            ["glorot/epoch f64 b32 native t1"]
        );
    }

    #[test]
    fn the_overlay_wins_over_the_common_child_environment() {
        let o = parse("--threads 2 --openblas-coretype SkylakeX");
        let env = ChildEnv::new(&o, Path::new("/m"));
        let one = Config::new(Impl::Glorot, "epoch", "f32", 32, IsaCase::Avx2, 1, 2);
        let cmd = env.apply(Command::new("/g"), &one);
        let get = |k: &str| {
            cmd.get_envs()
                .find(|(n, _)| *n == k)
                .and_then(|(_, v)| v)
                .map(|v| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("OPENBLAS_CORETYPE").as_deref(), Some("Haswell"));
        assert_eq!(get("GLOROT_ISA").as_deref(), Some("avx2"));
        assert_eq!(get("OPENBLAS_NUM_THREADS").as_deref(), Some("1"));
        assert_eq!(get("GLOROT_MNIST_DIR").as_deref(), Some("/m"));
        // The native case keeps --openblas-coretype.
        let native = Config::new(Impl::Glorot, "epoch", "f32", 32, IsaCase::Native, 2, 2);
        let cmd = env.apply(Command::new("/g"), &native);
        let core = cmd
            .get_envs()
            .find(|(n, _)| *n == "OPENBLAS_CORETYPE")
            .and_then(|(_, v)| v);
        assert_eq!(core, Some(std::ffi::OsStr::new("SkylakeX")));
        assert_eq!(pin_cpus(1, 2, true).as_deref(), Some("0"));
        assert_eq!(pin_cpus(3, 8, true).as_deref(), Some("0-2"));
        assert_eq!(pin_cpus(2, 2, true), None);
        assert_eq!(pin_cpus(1, 2, false), None);
    }

    #[test]
    fn spread_is_relative_to_the_median_and_marks_noise() {
        let mut runs = summary(Impl::Glorot, "epoch", "f32", &[2.0, 2.2, 2.4]);
        runs.extend(summary(Impl::Numpy, "notebook", "f32", &[10.0, 13.0, 12.0]));
        let mut failed = summary(Impl::Jax, "jit-step", "f32", &[1.0]);
        failed[0].error = Some("boom".into());
        runs.extend(failed);
        let s = summarize(&runs);
        let get = |imp| s.iter().find(|x| x.imp == imp).unwrap();
        // (2.4 - 2.0) / 2.2 and (13 - 10) / 12.
        assert!((get(Impl::Glorot).spread().unwrap() - 0.4 / 2.2).abs() < 1e-12);
        assert!(!get(Impl::Glorot).noisy());
        assert_eq!(get(Impl::Numpy).spread(), Some(0.25));
        assert!(!get(Impl::Numpy).noisy(), "0.25 is not above 0.25");
        assert_eq!(get(Impl::Jax).spread(), None);
        let json = get(Impl::Numpy).to_json();
        assert_eq!(json["spread"], 0.25);
        assert_eq!(json["seconds"], json!([10.0, 13.0, 12.0]));
        assert_eq!(json["isa"], "native");
        assert_eq!(json["threads"], 2);
        let s = summarize(&summary(Impl::Torch, "by-hand", "f32", &[1.0, 2.0, 1.5]));
        assert!(s[0].noisy());
    }

    #[test]
    fn avx2_ratios_compare_within_the_avx2_case() {
        let mut runs = Vec::new();
        let avx2 = IsaCase::Avx2;
        runs.extend(runs_in(
            Impl::Glorot,
            "epoch",
            "f32",
            avx2,
            2,
            &[1.0, 1.0, 1.2],
        ));
        // The 1-thread glorot run and the native case do not count.
        runs.extend(runs_in(Impl::Glorot, "epoch", "f32", avx2, 1, &[0.1]));
        runs.extend(summary(Impl::Jax, "jit-step", "f32", &[0.5]));
        runs.extend(runs_in(Impl::Jax, "jit-step", "f32", avx2, 2, &[1.4]));
        runs.extend(runs_in(Impl::Jax, "scan-epoch", "f32", avx2, 2, &[1.2]));
        runs.extend(runs_in(Impl::Numpy, "notebook", "f32", avx2, 2, &[3.0]));
        // PyTorch is not among the AVX2 f32 target's references.
        runs.extend(runs_in(Impl::Torch, "by-hand", "f32", avx2, 2, &[0.2]));
        runs.extend(runs_in(Impl::Glorot, "epoch", "f64", avx2, 2, &[2.0]));
        let s = summarize(&runs);
        let r = ratios(&s, &parse("--batches 32,64 --isas native,avx2"));
        // Per batch: the four native ratios, then the two AVX2 ones.
        assert_eq!(r.len(), 12);
        let (f32r, f64r) = (&r[4], &r[5]);
        assert_eq!(
            f32r.name,
            "AVX2 f32 speed-up over the fastest of NumPy and JAX"
        );
        assert_eq!(f32r.isa, IsaCase::Avx2);
        assert_eq!(f32r.value, Some(1.2)); // jax scan-epoch 1.2 / glorot median 1.0
        assert_eq!(f32r.met, Some(false)); // below 1.3
        assert!(f32r.judged);
        assert_eq!(
            f32r.definition,
            "jax/scan-epoch f32 avx2 / glorot/epoch f32 avx2"
        );
        assert_eq!(f64r.value, None);
        assert!(f64r.missing.as_deref().unwrap().contains("numpy f64 avx2"));
        // The native f32 ratio sees only native runs: no native glorot here.
        assert_eq!(r[0].value, None);
        assert!(!r[6].judged && r[6].batch == 64);
    }

    #[test]
    fn scaling_divides_the_one_thread_median_and_averages_the_team() {
        let o = parse("--impls glorot --dtypes f32,f64 --batches 32 --isas native,avx2");
        let mut runs = runs_in(
            Impl::Glorot,
            "epoch",
            "f32",
            IsaCase::Native,
            2,
            &[1.0, 1.2],
        );
        runs[0].record = Some(json!({"seconds": 1.0, "team":
            {"regions": 100, "solo_regions": 10, "stalls": 3, "stall_seconds": 0.02}}));
        runs[1].record = Some(json!({"seconds": 1.2, "team":
            {"regions": 100, "solo_regions": 30, "stalls": 5, "stall_seconds": 0.04}}));
        runs.extend(runs_in(
            Impl::Glorot,
            "epoch",
            "f32",
            IsaCase::Native,
            1,
            &[2.2],
        ));
        let s = summarize(&runs);
        let sc = scaling(&s, &runs, &o);
        // f64 and the AVX2 case have no glorot measurement: left out.
        assert_eq!(sc.len(), 1);
        assert_eq!(sc[0].speedup, Some(2.0)); // 2.2 / median(1.0, 1.2)
        let t = sc[0].team.unwrap();
        assert_eq!((t.regions, t.solo_regions, t.stalls), (100.0, 20.0, 4.0));
        assert!((t.stall_seconds - 0.03).abs() < 1e-12);
        assert_eq!(sc[0].one_thread_team, None); // its record has no `team`
        assert!(scaling(&s, &runs, &parse("--threads 1")).is_empty());
    }
}
