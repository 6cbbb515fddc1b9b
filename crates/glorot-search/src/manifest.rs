//! Where and how results were produced.

use serde::{Deserialize, Serialize};

/// A run manifest, stored with every trial record and every results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The glorot version (the workspace version).
    pub glorot_version: String,
    /// `git describe`-style revision of the source that ran, or `unknown`.
    pub git_revision: String,
    /// Host name.
    pub host: String,
    /// CPU model, from `/proc/cpuinfo` where available.
    pub cpu: String,
    /// Logical CPUs available to the process.
    pub cpus: usize,
    /// The BLAS library (e.g. `OpenBLAS 0.3.21 (system)`).
    pub blas: String,
    /// BLAS threads per trial.
    pub blas_threads: usize,
    /// Trials run in parallel by this process.
    pub workers: usize,
    /// Operating system and architecture.
    pub os: String,
    /// The instruction set of glorot's kernels (`avx512`, `avx2`, `neon`, `scalar`):
    /// `GLOROT_ISA`, else the best one detected. `unknown` in files written before it
    /// was recorded.
    #[serde(default = "unknown")]
    pub isa: String,
}

fn unknown() -> String {
    "unknown".to_owned()
}

impl Manifest {
    /// Fills in what the process can find out about the machine; the caller states
    /// what it knows better (revision, BLAS, threads, workers).
    pub fn detect(git_revision: &str, blas: &str, blas_threads: usize, workers: usize) -> Self {
        Manifest {
            glorot_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_revision: git_revision.to_owned(),
            host: host_name(),
            cpu: cpu_model(),
            cpus: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            blas: blas.to_owned(),
            blas_threads,
            workers,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            isa: glorot_mlp::isa::Isa::default_for_process()
                .name()
                .to_owned(),
        }
    }
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
