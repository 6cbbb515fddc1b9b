//! The thread plan: how many trainings run at once and how many BLAS threads each uses.
//! Setting the BLAS library's own thread count is the binary's job (the library picks no
//! BLAS provider): it applies [`ThreadPlan::blas_threads`] and passes the resulting
//! count and the library's description in ([`crate::RunContext`], [`crate::bench::BenchSetup`]).

use crate::error::{Error, Result};

/// How many trials run at once and how many BLAS threads each uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Trials in parallel.
    pub workers: usize,
    /// BLAS threads per trial.
    pub blas_threads: usize,
}

/// Logical CPUs available to this process.
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// Chooses workers and BLAS threads: by default one single-threaded trial per CPU (the
/// measured best for the notebook's small GEMMs), or every CPU for BLAS when there is one
/// worker; never `workers * blas_threads > cpus` unless `oversubscribe`.
///
/// The plan depends only on the flags and the machine, never on how many trials are
/// left, so a resumed search computes with the same thread count as the first run.
///
/// # Errors
/// [`Error::InvalidOptions`] when the plan would oversubscribe the machine.
pub fn plan_threads(
    workers: Option<usize>,
    blas: Option<usize>,
    oversubscribe: bool,
    cpus: usize,
) -> Result<ThreadPlan> {
    let cpus = cpus.max(1);
    let workers = workers.unwrap_or_else(|| match blas {
        Some(t) => (cpus / t).max(1),
        None => cpus,
    });
    let blas_threads = blas.unwrap_or(if workers > 1 { 1 } else { cpus });
    if workers * blas_threads > cpus && !oversubscribe {
        return Err(Error::InvalidOptions(format!(
            "{} x {} = {} threads on {} would oversubscribe the machine; lower --workers or \
             --blas-threads, or pass --oversubscribe",
            crate::count(workers, "worker", "workers"),
            crate::count(blas_threads, "BLAS thread", "BLAS threads"),
            workers * blas_threads,
            crate::count(cpus, "CPU", "CPUs")
        )));
    }
    Ok(ThreadPlan {
        workers,
        blas_threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_plans_never_oversubscribe_by_default() {
        let plan = |w, t, o, cpus| plan_threads(w, t, o, cpus).unwrap();
        let tp = |workers, blas_threads| ThreadPlan {
            workers,
            blas_threads,
        };
        // Default: one single-threaded trial per CPU.
        assert_eq!(plan(None, None, false, 8), tp(8, 1));
        // One worker: BLAS gets every CPU.
        assert_eq!(plan(Some(1), None, false, 8), tp(1, 8));
        assert_eq!(plan(None, None, false, 1), tp(1, 1));
        // BLAS threads given: as many workers as fit.
        assert_eq!(plan(None, Some(2), false, 8), tp(4, 2));
        assert!(plan_threads(Some(4), Some(2), false, 4).is_err());
        assert!(plan_threads(None, Some(16), false, 8).is_err());
        assert_eq!(plan(Some(4), Some(2), true, 4), tp(4, 2));
    }
}
