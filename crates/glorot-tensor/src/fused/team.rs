//! A tiny thread team for the fused kernels: the calling thread and `threads - 1` helpers
//! take tasks `0..tasks` from a shared counter, and the call returns when all are done.
//!
//! A training step at batch 32 has about ten parallel regions of 5-50 µs each, so the
//! hand-off must cost well under a microsecond: helpers spin (with `spin_loop` hints) for
//! a while after each region before they park, and the caller spins while it waits.
//! General-purpose pools put the caller to sleep when it is not one of their workers,
//! which costs more than a region.
//!
//! One team per process, sized by [`set_threads`]; a call made while another thread uses
//! the team (parallel trainers) runs its tasks on the calling thread alone.
//!
//! # On a shared machine
//! The caller never waits for a helper that has not started, only for tasks a helper
//! claimed. When another process takes a helper's core in the middle of such a task, the
//! caller waits until the scheduler gives the helper its core back: up to a time slice
//! (milliseconds) for a task of microseconds. Once such a stall is seen (the caller
//! waited much longer than it worked), the next regions run on the caller alone, for a
//! number of regions that doubles while stalls recur (64 up to 65,536, about a second of
//! training) and halves again after each 4,096 team regions without one. Solo regions compute exactly
//! what the team would (every task is the same code on its own elements), so results do
//! not change; [`stats`] counts regions, solo regions and stalls for the benchmarks.
#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// A region is a stall when the caller, after its own tasks, waited for helpers longer
/// than `STALL_FACTOR` times its own working time plus [`STALL_SLACK`]. Without
/// preemption the wait is at most about one task, shorter than the caller's share.
const STALL_FACTOR: u32 = 4;
/// See [`STALL_FACTOR`]: below this, a wait is never a stall (timer and wake-up noise).
const STALL_SLACK: Duration = Duration::from_micros(50);
/// Solo regions after the first stall; doubled on each stall that follows.
const SOLO_MIN: u32 = 64;
/// The most solo regions in a row.
const SOLO_MAX: u32 = 1 << 16;
/// Team regions without a stall after which the solo count a stall earns is halved
/// (about 0.1 s of training at batch 32).
const CLEAN_TO_HALVE: u32 = 4096;

/// What the team did since the process started: see [`stats`].
static STATS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const REGIONS: usize = 0;
const SOLO: usize = 1;
const STALLS: usize = 2;
const STALL_NANOS: usize = 3;

/// Counters of the team since the process started (all threads), for benchmarks that
/// want to show whether parallel regions were disturbed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeamStats {
    /// Parallel regions started with more than one thread set (solo ones included).
    pub regions: u64,
    /// Regions the caller ran alone because stalls had been seen (see
    /// [`crate::fused::set_threads`]).
    pub solo_regions: u64,
    /// Regions in which the caller waited for a descheduled helper.
    pub stalls: u64,
    /// Total time callers spent waiting in those stalls, nanoseconds.
    pub stall_nanos: u64,
}

/// The team's counters so far.
pub(crate) fn stats() -> TeamStats {
    let get = |i: usize| STATS[i].load(Ordering::Relaxed);
    TeamStats {
        regions: get(REGIONS),
        solo_regions: get(SOLO),
        stalls: get(STALLS),
        stall_nanos: get(STALL_NANOS),
    }
}

fn count(i: usize, n: u64) {
    STATS[i].fetch_add(n, Ordering::Relaxed);
}

/// The job of one parallel region, as helpers see it: a pointer to the task function,
/// only dereferenced after a task of its region has been claimed (see [`run`]).
type Job = *const (dyn Fn(usize) + Sync);

/// A region as published to helpers: its number, task count and job.
#[derive(Clone, Copy)]
struct Region {
    number: u32,
    tasks: u32,
    job: Job,
}

// SAFETY: the task function is `Sync`; the pointer is only dereferenced under the
// protocol of `run`, which keeps the function alive while any of its tasks is claimed
// and unfinished.
unsafe impl Send for Region {}

struct Shared {
    /// The current region (number, tasks, job); `None` between regions.
    region: Mutex<Option<Region>>,
    /// `region number << 32 | next task index`: a task is claimed by a compare-exchange
    /// that also checks the region number, so a helper that slept through a region can
    /// never claim a task of the next one with the old job.
    claim: AtomicU64,
    /// Tasks finished in the current region.
    done: AtomicUsize,
    /// A helper's task panicked in the current region.
    panicked: AtomicBool,
    /// Set when the team is replaced: helpers exit.
    stop: AtomicBool,
}

struct Team {
    shared: Arc<Shared>,
    helpers: Vec<Thread>,
    /// Number of the last region.
    number: u32,
    /// Regions still to run on the caller alone after a stall.
    solo_left: u32,
    /// Solo regions the next stall earns (between [`SOLO_MIN`] and [`SOLO_MAX`]).
    solo_next: u32,
    /// Team regions without a stall since the last one.
    clean: u32,
}

/// The process's team; `None` inside means one thread.
fn team() -> &'static Mutex<Option<Team>> {
    static TEAM: OnceLock<Mutex<Option<Team>>> = OnceLock::new();
    TEAM.get_or_init(|| Mutex::new(None))
}

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads the fused kernels use (process-wide, at least 1), as
/// `openblas_set_num_threads` does for BLAS. Default 1.
pub(crate) fn set_threads(n: usize) {
    let n = n.max(1);
    let mut guard = team().lock().unwrap_or_else(|p| p.into_inner());
    if THREADS.load(Ordering::SeqCst) == n && (n == 1) == guard.is_none() {
        return;
    }
    if let Some(old) = guard.take() {
        old.shared.stop.store(true, Ordering::SeqCst);
        for h in &old.helpers {
            h.unpark();
        }
    }
    THREADS.store(n, Ordering::SeqCst);
    if n > 1 {
        let shared = Arc::new(Shared {
            region: Mutex::new(None),
            claim: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let helpers = (1..n)
            .map(|i| {
                let s = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("glorot-fused-{i}"))
                    .spawn(move || helper(&s))
                    .expect("spawning a fused-kernel thread")
                    .thread()
                    .clone()
            })
            .collect();
        *guard = Some(Team {
            shared,
            helpers,
            number: 0,
            solo_left: 0,
            solo_next: SOLO_MIN,
            clean: 0,
        });
    }
}

/// The number of threads set by [`set_threads`].
pub(crate) fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

fn helper(s: &Shared) {
    let mut seen = 0u32;
    loop {
        // Wait for a new region: spin, then park.
        let start = Instant::now();
        let mut spins = 0u32;
        let number = loop {
            let number = (s.claim.load(Ordering::SeqCst) >> 32) as u32;
            if number != seen {
                break number;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            if start.elapsed() >= SPIN {
                thread::park_timeout(Duration::from_millis(50));
            } else {
                // Give the core to other runnable threads between checks: a helper that
                // burns its whole time slice spinning is more likely to be preempted in
                // the middle of a task, which the caller then waits for.
                thread::yield_now();
            }
        };
        seen = number;
        let region = *s.region.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = region.filter(|r| r.number == number) {
            let work = || {
                while let Some(t) = claim(s, r.number, r.tasks) {
                    let _done = Done(s);
                    // SAFETY: task t of region r is claimed and not finished, so `run`
                    // is still waiting for it and the function behind `r.job` is alive.
                    let f = unsafe { &*r.job };
                    f(t);
                }
            };
            // A panic is recorded by `Done`; the helper lives on for the next region.
            let _ = catch_unwind(AssertUnwindSafe(work));
        }
    }
}

/// Counts a task as done when dropped, also when the task panicked (then first flags
/// the panic, so `run` sees it once every task is done).
struct Done<'a>(&'a Shared);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.panicked.store(true, Ordering::SeqCst);
        }
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Claims the next task of region `number`, if that region is current and has one left.
fn claim(s: &Shared, number: u32, tasks: u32) -> Option<usize> {
    let mut cur = s.claim.load(Ordering::SeqCst);
    loop {
        let (n, next) = ((cur >> 32) as u32, cur as u32);
        if n != number || next >= tasks {
            return None;
        }
        match s
            .claim
            .compare_exchange_weak(cur, cur + 1, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return Some(next as usize),
            Err(now) => cur = now,
        }
    }
}

/// Runs `f(0), f(1), ..., f(tasks - 1)` on the team (each exactly once, in any order and
/// on any thread) and returns when all have finished. A panic in a task is propagated.
///
/// The caller waits only for tasks that helpers have claimed, never for a helper that
/// has not started (on a loaded machine a helper may not run for milliseconds): the
/// caller takes whatever tasks are left.
pub(crate) fn run(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    if tasks <= 1 || threads() == 1 || tasks >= u32::MAX as usize {
        (0..tasks).for_each(f);
        return;
    }
    // Another thread is using the team (or is resizing it): work alone.
    let Ok(mut guard) = team().try_lock() else {
        (0..tasks).for_each(f);
        return;
    };
    let Some(t) = guard.as_mut() else {
        (0..tasks).for_each(f);
        return;
    };
    count(REGIONS, 1);
    if t.solo_left > 0 {
        // Helpers were recently descheduled mid-task: work alone for a while.
        t.solo_left -= 1;
        count(SOLO, 1);
        drop(guard);
        (0..tasks).for_each(f);
        return;
    }
    t.number = t.number.wrapping_add(1).max(1);
    let number = t.number;
    let s = &*t.shared;
    // SAFETY: only the lifetime is erased. A helper dereferences the pointer only after
    // claiming a task of this region (checked by number in the same atomic operation),
    // and this function returns or unwinds only once every claimed task has finished;
    // after that no task of this region can be claimed. So `f` outlives every use.
    let job: Job =
        unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), Job>(f as *const _) };
    s.done.store(0, Ordering::SeqCst);
    s.panicked.store(false, Ordering::SeqCst);
    *s.region.lock().unwrap_or_else(|p| p.into_inner()) = Some(Region {
        number,
        tasks: tasks as u32,
        job,
    });
    let start = Instant::now();
    s.claim.store(u64::from(number) << 32, Ordering::SeqCst);
    for h in &t.helpers {
        h.unpark();
    }
    let mine = catch_unwind(AssertUnwindSafe(|| {
        while let Some(task) = claim(s, number, tasks as u32) {
            s.done.fetch_add(1, Ordering::SeqCst);
            f(task);
        }
    }));
    // Wait for the tasks helpers claimed. Between checks, give the core away now and
    // then: a helper that claimed a task may be waiting for this very core.
    let mut waited = None;
    if s.done.load(Ordering::SeqCst) < tasks {
        let own = Instant::now();
        let mut spins = 0u32;
        while s.done.load(Ordering::SeqCst) < tasks {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        waited = Some((own - start, own.elapsed()));
    }
    match waited {
        Some((worked, wait)) if wait > worked * STALL_FACTOR + STALL_SLACK => {
            count(STALLS, 1);
            count(
                STALL_NANOS,
                u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
            );
            t.solo_left = t.solo_next;
            t.solo_next = (t.solo_next * 2).min(SOLO_MAX);
            t.clean = 0;
        }
        _ => {
            t.clean = t.clean.wrapping_add(1);
            if t.clean.is_multiple_of(CLEAN_TO_HALVE) {
                t.solo_next = (t.solo_next / 2).max(SOLO_MIN);
            }
        }
    }
    *s.region.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let helper_panicked = s.panicked.load(Ordering::SeqCst);
    drop(guard);
    if let Err(p) = mine {
        resume_unwind(p);
    }
    assert!(
        !helper_panicked,
        "a fused-kernel task panicked on a helper thread"
    );
}

/// A slice's base pointer, shared with the tasks of one region.
struct Base<T>(*mut T);
// SAFETY: each task turns it into a slice of its own disjoint chunk, only during the
// region (see `chunks_mut`); `T: Send` makes handing those chunks to other threads sound.
unsafe impl<T: Send> Sync for Base<T> {}

impl<T> Base<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Calls `f(i, chunk_i)` for the consecutive chunks of `chunk` elements of `data` (the
/// last may be shorter), on the team: each chunk is handed to exactly one task.
pub(crate) fn chunks_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let chunk = chunk.max(1);
    let len = data.len();
    let count = len.div_ceil(chunk);
    let base = Base(data.as_mut_ptr());
    run(count, &|i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: chunk i covers elements start..start + n < len of `data`, which is
        // borrowed mutably for the whole region; chunks of different tasks are disjoint
        // and each index is run exactly once.
        let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), n) };
        f(i, part);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_on_any_team_size() {
        for n in [1, 2, 3, 1] {
            set_threads(n);
            assert_eq!(threads(), n);
            for tasks in [0, 1, 2, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                run(tasks, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
            let mut v: Vec<usize> = vec![0; 103];
            chunks_mut(&mut v, 10, &|i, c| {
                for (k, x) in c.iter_mut().enumerate() {
                    *x = i * 10 + k;
                }
            });
            assert!(v.iter().enumerate().all(|(k, &x)| k == x));
        }
    }
}
