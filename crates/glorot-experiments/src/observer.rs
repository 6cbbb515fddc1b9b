//! How the studies and the replay report progress: an [`Observer`] the caller implements
//! (a command line draws it on stderr; a test may collect it), and the ETA bookkeeping
//! behind it ([`Progress`]).

use std::sync::Mutex;
use std::time::Instant;

/// Receives the progress of the studies, the replay and the report. Every method has a
/// do-nothing default. Called from worker threads, hence `Sync`.
pub trait Observer: Sync {
    /// A message line: what runs, a result's summary, a skipped step.
    fn message(&self, message: &str) {
        let _ = message;
    }

    /// Work of a part advanced: a status to show in place of the previous one.
    fn progress(&self, event: &ProgressEvent<'_>) {
        let _ = event;
    }

    /// A note of a part (`part` as in [`ProgressEvent::part`]), on its own line.
    fn note(&self, part: &str, message: &str) {
        let _ = (part, message);
    }

    /// A part's progress ended: the status line may be closed.
    fn finish(&self, part: &str) {
        let _ = part;
    }

    /// Whether the running work should stop at the next batch boundary (finished work is
    /// kept; a rerun resumes).
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores every event and never stops the work.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// The status of a part after some work finished.
#[derive(Clone, Copy, Debug)]
pub struct ProgressEvent<'a> {
    /// `part 1`, `part 2`, `replay`.
    pub part: &'a str,
    /// What just finished, e.g. `glorot init epoch 3/10: loss 0.1234, validation 95.10%`.
    pub what: &'a str,
    /// Work done, percent of the part's work (multiply-adds of the epochs to run).
    pub percent: f64,
    /// Wall seconds since the part started.
    pub elapsed_seconds: f64,
    /// Wall seconds left at the rate so far (`None` before any work finished).
    pub eta_seconds: Option<f64>,
}

/// Progress of one part: work units (multiply-adds of the epochs to run) done, and an
/// ETA from the rate so far, sent to an [`Observer`].
pub(crate) struct Progress<'o> {
    part: String,
    total_units: f64,
    state: Mutex<(f64, Instant)>,
    observer: &'o dyn Observer,
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("part", &self.part)
            .field("total_units", &self.total_units)
            .finish_non_exhaustive()
    }
}

impl<'o> Progress<'o> {
    pub(crate) fn new(part: &str, total_units: f64, observer: &'o dyn Observer) -> Self {
        Progress {
            part: part.to_owned(),
            total_units,
            state: Mutex::new((0.0, Instant::now())),
            observer,
        }
    }

    /// Adds finished work and reports `what` with the ETA of what remains.
    pub(crate) fn advance(&self, units: f64, what: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        s.0 += units;
        let done = s.0;
        let elapsed = s.1.elapsed().as_secs_f64();
        let left = (self.total_units - done).max(0.0);
        let eta = (done > 0.0).then(|| elapsed * left / done);
        let percent = if self.total_units > 0.0 {
            100.0 * done / self.total_units
        } else {
            100.0
        };
        self.observer.progress(&ProgressEvent {
            part: &self.part,
            what,
            percent,
            elapsed_seconds: elapsed,
            eta_seconds: eta,
        });
    }

    /// A message on its own line.
    pub(crate) fn note(&self, message: &str) {
        self.observer.note(&self.part, message);
    }

    /// Ends the status line.
    pub(crate) fn finish(&self) {
        self.observer.finish(&self.part);
    }

    /// Whether the observer asks to stop.
    pub(crate) fn should_stop(&self) -> bool {
        self.observer.should_stop()
    }
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

    #[derive(Default)]
    struct Collect(Mutex<Vec<(f64, Option<f64>)>>);

    impl Observer for Collect {
        fn progress(&self, e: &ProgressEvent<'_>) {
            self.0.lock().unwrap().push((e.percent, e.eta_seconds));
        }
    }

    #[test]
    fn progress_counts_units_toward_the_total() {
        let seen = Collect::default();
        let p = Progress::new("part 1", 4.0, &seen);
        p.advance(1.0, "one");
        p.advance(3.0, "rest");
        let seen = seen.0.into_inner().unwrap();
        assert_eq!(seen[0].0, 25.0);
        assert_eq!(seen[1].0, 100.0);
        // Nothing left: the ETA is zero.
        assert_eq!(seen[1].1, Some(0.0));
        // 784-500-500-10: 784*500 + 500*500 + 500*10 = 647,000 multiply-adds a row.
        assert_eq!(epoch_units(&[784, 500, 500, 10], 1, 0), 3.0 * 647_000.0);
    }
}
