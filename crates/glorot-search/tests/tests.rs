//! Integration tests of glorot-search on small synthetic data: a trial's result does not
//! depend on parallelism, sharding or resumption; stopping records nothing in flight.

// Tests are final link targets: they select the BLAS provider.
extern crate blas_src;

mod compat;
mod parsers;
mod strategies;

use std::sync::atomic::{AtomicUsize, Ordering};

use glorot_search::{
    GridSpec, Journal, Manifest, Quiet, RunOptions, SearchContext, SearchData, SearchObserver,
    Shard, Summary, TrialRecord, TrialStatus, ValidGrid, evaluate_on_test_observed, run_trial,
};
use glorot_tensor::{Activation, one_hot};
use ndarray::Array2;

/// Three classes on 12 inputs: class `c` raises inputs `4c..4c+4`, plus a deterministic
/// ripple; learnable in an epoch or two.
fn blobs(n: usize, offset: usize) -> (Array2<f32>, Vec<u8>) {
    let labels: Vec<u8> = (0..n).map(|i| ((i * 7 + offset) % 3) as u8).collect();
    let x = Array2::from_shape_fn((n, 12), |(i, j)| {
        let c = usize::from(labels[i]);
        let ripple = (((i + offset) * 13 + j * 7) % 17) as f32 / 17.0 - 0.5;
        if j / 4 == c {
            0.8 + 0.3 * ripple
        } else {
            0.3 * ripple
        }
    });
    (x, labels)
}

fn data() -> SearchData {
    let (train_x, train_labels) = blobs(240, 0);
    let (val_x, val_labels) = blobs(60, 1);
    let (test_x, test_labels) = blobs(60, 2);
    let train_y = one_hot::<f32>(&train_labels, 3);
    SearchData::new(train_x, train_y, val_x, val_labels, "blobs 240/60".into())
        .with_test(test_x, test_labels)
}

/// 2 widths x 2 activations x 2 batch sizes x 2 precisions = 16 trials of 2 epochs.
fn grid() -> ValidGrid {
    GridSpec {
        hidden: vec![6, 10],
        activation: vec![Activation::Relu, Activation::Tanh],
        learning_rate: vec![0.5],
        batch_size: vec![8, 32],
        epochs: vec![2],
        precision: vec![glorot_mlp::Precision::F32, glorot_mlp::Precision::F64],
        master_seed: 11,
        ..GridSpec::notebook()
    }
    .validate()
    .unwrap()
}

fn manifest(workers: usize) -> Manifest {
    Manifest::detect("test", "OpenBLAS (test)", 1, workers)
}

fn journal(dir: &std::path::Path, data: &SearchData) -> Journal {
    Journal::open(
        dir,
        &SearchContext {
            master_seed: 11,
            data: data.description().to_owned(),
        },
    )
    .unwrap()
}

/// The curves of a record as bits: equal only if bit-identical.
fn bits(r: &TrialRecord) -> Vec<[u64; 3]> {
    r.epochs
        .iter()
        .map(|e| {
            [
                e.train_loss.to_bits(),
                e.val_loss.to_bits(),
                e.val_accuracy.to_bits(),
            ]
        })
        .collect()
}

#[test]
fn a_trial_alone_equals_the_same_trial_in_a_parallel_sharded_or_resumed_grid() {
    let data = data();
    let grid = grid();
    assert_eq!(grid.len(), 16);

    // The whole grid, two workers.
    let parallel = tempfile::tempdir().unwrap();
    let j = journal(parallel.path(), &data);
    let outcome = glorot_search::run(
        &grid,
        &data,
        &j,
        &manifest(2),
        RunOptions {
            workers: 2,
            shard: Shard::ALL,
        },
        &Quiet,
    )
    .unwrap();
    assert_eq!(
        (outcome.recorded, outcome.skipped, outcome.stopped),
        (16, 0, false)
    );
    let records = j.records().unwrap();
    assert_eq!(records.len(), 16);

    // Each trial alone, in reverse order, one at a time.
    for trial in grid.trials().iter().rev() {
        let alone = run_trial(trial, 11, &data, &manifest(1), &Quiet).unwrap();
        let in_grid = records.iter().find(|r| r.id == trial.id).unwrap();
        assert_eq!(alone.status, TrialStatus::Ok, "{}", trial.id);
        assert_eq!(bits(&alone), bits(in_grid), "{}", trial.id);
        assert_eq!(alone.seed, in_grid.seed);
    }

    // Three shards, one worker each, into another directory.
    let sharded = tempfile::tempdir().unwrap();
    let j3 = journal(sharded.path(), &data);
    for i in 0..3 {
        glorot_search::run(
            &grid,
            &data,
            &j3,
            &manifest(1),
            RunOptions {
                workers: 1,
                shard: Shard::new(i, 3).unwrap(),
            },
            &Quiet,
        )
        .unwrap();
    }
    let sharded_records = j3.records().unwrap();
    assert_eq!(sharded_records.len(), 16);
    for (a, b) in records.iter().zip(&sharded_records) {
        assert_eq!((&a.id, bits(a)), (&b.id, bits(b)));
    }
    // Merged shards rank exactly as the single run.
    assert_eq!(
        Summary::merge(&grid, &records).ranking,
        Summary::merge(&grid, &sharded_records).ranking
    );

    // Resumption: lose six records, run again; only those six rerun, identically.
    for r in records.iter().step_by(3) {
        std::fs::remove_file(j.record_path(&r.id)).unwrap();
    }
    let again = glorot_search::run(
        &grid,
        &data,
        &j,
        &manifest(2),
        RunOptions {
            workers: 2,
            shard: Shard::ALL,
        },
        &Quiet,
    )
    .unwrap();
    assert_eq!((again.recorded, again.skipped), (6, 10));
    for (a, b) in records.iter().zip(&j.records().unwrap()) {
        assert_eq!((&a.id, bits(a)), (&b.id, bits(b)));
    }

    // The best trial retrained for its one test evaluation reproduces its record.
    let summary = Summary::merge(&grid, &records);
    let best = summary.best.unwrap();
    let trial = grid.trials().into_iter().find(|t| t.id == best.id).unwrap();
    let record = records.iter().find(|r| r.id == best.id);
    let eval = evaluate_on_test_observed(&trial, &data, record, &Quiet)
        .unwrap()
        .unwrap();
    assert!(eval.reproduced_record);
    assert!(eval.test_accuracy > 50.0, "{eval:?}"); // three classes: chance is 33 %
}

/// Stops the search once `after` epochs have finished anywhere.
struct StopAfter {
    epochs: AtomicUsize,
    after: usize,
}

impl SearchObserver for StopAfter {
    fn on_epoch(&self, _: &glorot_search::Trial, _: &glorot_mlp::EpochMetrics) {
        self.epochs.fetch_add(1, Ordering::SeqCst);
    }
    fn should_stop(&self) -> bool {
        self.epochs.load(Ordering::SeqCst) >= self.after
    }
}

#[test]
fn a_stopped_search_records_only_finished_trials_and_resumes() {
    let data = data();
    let grid = grid();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), &data);
    // Three epochs: the second trial stops after its first epoch, mid-trial.
    let stop = StopAfter {
        epochs: AtomicUsize::new(0),
        after: 3,
    };
    let options = RunOptions {
        workers: 1,
        shard: Shard::ALL,
    };
    let outcome = glorot_search::run(&grid, &data, &j, &manifest(1), options, &stop).unwrap();
    assert!(outcome.stopped);
    assert_eq!(outcome.recorded, 1);
    let records = j.records().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].epochs.len(), 2);
    assert!(j.temporary_files().unwrap().is_empty());
    let rest = glorot_search::run(&grid, &data, &j, &manifest(1), options, &Quiet).unwrap();
    assert_eq!((rest.skipped, rest.recorded, rest.stopped), (1, 15, false));
}

/// Counts trial starts and collects warnings.
#[derive(Default)]
struct Count {
    starts: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    warnings: std::sync::Mutex<Vec<String>>,
}

impl SearchObserver for Count {
    fn on_trial_start(&self, trial: &glorot_search::Trial) {
        *self
            .starts
            .lock()
            .unwrap()
            .entry(trial.id.0.clone())
            .or_default() += 1;
    }
    fn on_warning(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_owned());
    }
}

#[test]
fn concurrent_runs_on_one_journal_train_each_trial_once() {
    let data = data();
    let grid = grid();
    let dir = tempfile::tempdir().unwrap();
    let count = Count::default();
    let options = RunOptions {
        workers: 2,
        shard: Shard::ALL,
    };
    // Three runs at once on one directory, each with its own journal handle.
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let j = journal(dir.path(), &data);
                    glorot_search::run(&grid, &data, &j, &manifest(2), options, &count).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let starts = count.starts.lock().unwrap();
    assert_eq!(starts.len(), 16);
    assert!(starts.values().all(|&n| n == 1), "{starts:?}");
    assert_eq!(outcomes.iter().map(|o| o.recorded).sum::<usize>(), 16);
    for o in &outcomes {
        // Each run ends with the whole grid done, by itself or by the others.
        assert_eq!(o.skipped + o.recorded + o.finished_elsewhere, 16, "{o:?}");
        assert!(!o.stopped);
    }
    let j = journal(dir.path(), &data);
    assert!(j.claims().unwrap().is_empty());

    // A runner killed between writing a record and removing its claim leaves a stale
    // claim of a finished trial: the next run removes it (and trains nothing).
    let id = &grid.trials()[0].id;
    let claim = glorot_search::ClaimInfo {
        host: "another-host".into(),
        boot_id: String::new(),
        pid: 1,
        process_start: None,
        started_at: 0.0,
        token: "t".into(),
    };
    std::fs::write(j.claim_path(id), serde_json::to_vec(&claim).unwrap()).unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(j.claim_path(id))
        .unwrap()
        .set_modified(an_hour_ago)
        .unwrap();
    assert!(j.claims().unwrap()[0].stale);
    let again = glorot_search::run(&grid, &data, &j, &manifest(2), options, &Quiet).unwrap();
    assert_eq!((again.skipped, again.recorded), (16, 0));
    assert!(j.claims().unwrap().is_empty());
}

#[test]
fn a_silent_claim_of_another_host_is_waited_for_then_taken_over() {
    let data = data();
    let grid = grid();
    let dir = tempfile::tempdir().unwrap();
    let policy = glorot_search::ClaimPolicy {
        heartbeat: std::time::Duration::from_millis(100),
        stale_after: std::time::Duration::from_millis(1500),
    };
    let j = journal(dir.path(), &data).with_claim_policy(policy);
    let trial = &grid.trials()[3];
    let claim = glorot_search::ClaimInfo {
        host: "another-host".into(),
        boot_id: "b".into(),
        pid: 1,
        process_start: Some(1),
        started_at: 0.0,
        token: "another-host.1.1.0".into(),
    };
    std::fs::write(j.claim_path(&trial.id), serde_json::to_vec(&claim).unwrap()).unwrap();
    let listed = j.claims().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.clone(), listed[0].stale),
        (trial.id.clone(), false)
    );
    let count = Count::default();
    let clock = std::time::Instant::now();
    let options = RunOptions {
        workers: 1,
        shard: Shard::ALL,
    };
    let outcome = glorot_search::run(&grid, &data, &j, &manifest(1), options, &count).unwrap();
    // The claim went stale 1.5 s after it was written, not before.
    assert!(clock.elapsed() >= std::time::Duration::from_millis(1400));
    assert_eq!((outcome.recorded, outcome.stopped), (16, false));
    let warnings = count.warnings.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&trial.id.0) && w.contains("another-host")),
        "{warnings:?}"
    );
    assert!(j.claims().unwrap().is_empty());
}

/// Replaces the claim of trial 0 after its first epoch, as a runner that judged this one
/// dead would, then pauses long enough for a heartbeat to notice.
struct Usurper<'a> {
    journal: &'a Journal,
    count: Count,
    done: std::sync::atomic::AtomicBool,
}

impl SearchObserver for Usurper<'_> {
    fn on_trial_start(&self, trial: &glorot_search::Trial) {
        self.count.on_trial_start(trial);
    }
    fn on_epoch(&self, trial: &glorot_search::Trial, m: &glorot_mlp::EpochMetrics) {
        if trial.index == 0 && m.epoch == 1 && !self.done.swap(true, Ordering::SeqCst) {
            let other = glorot_search::ClaimInfo {
                host: "usurper".into(),
                boot_id: String::new(),
                pid: 1,
                process_start: None,
                started_at: 0.0,
                token: "usurper".into(),
            };
            let path = self.journal.claim_path(&trial.id);
            std::fs::write(path, serde_json::to_vec(&other).unwrap()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    fn on_warning(&self, message: &str) {
        self.count.on_warning(message);
    }
}

#[test]
fn a_runner_that_loses_its_claim_drops_the_trial_unrecorded() {
    let data = data();
    let grid = grid();
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), &data).with_claim_policy(glorot_search::ClaimPolicy {
        heartbeat: std::time::Duration::from_millis(50),
        stale_after: std::time::Duration::from_millis(1000),
    });
    let observer = Usurper {
        journal: &j,
        count: Count::default(),
        done: std::sync::atomic::AtomicBool::new(false),
    };
    let options = RunOptions {
        workers: 1,
        shard: Shard::ALL,
    };
    let outcome = glorot_search::run(&grid, &data, &j, &manifest(1), options, &observer).unwrap();
    // Trial 0 was dropped when its claim was lost, waited for, and (the usurper never
    // beating) taken over and trained again: recorded once, with every epoch.
    assert_eq!((outcome.recorded, outcome.stopped), (16, false));
    let first = &grid.trials()[0];
    assert_eq!(observer.count.starts.lock().unwrap()[&first.id.0], 2);
    let warnings = observer.count.warnings.lock().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("taken over by another runner")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("usurper")),
        "{warnings:?}"
    );
    let record = j.read(&first.id).unwrap().unwrap();
    assert_eq!(record.epochs.len(), 2);
    let alone = run_trial(first, 11, &data, &manifest(1), &Quiet).unwrap();
    assert_eq!(bits(&record), bits(&alone));
    assert!(j.claims().unwrap().is_empty());
}

/// The training axes through a real search: each trial trains with its optimizer and
/// early stopping, its record says which epoch it kept (and ranks by that epoch's
/// accuracy), and retraining it for the test split reproduces the record.
#[test]
fn optimizer_and_early_stopping_axes_train_record_and_retrain() {
    let data = data();
    let grid = GridSpec {
        hidden: vec![6],
        activation: vec![Activation::Tanh],
        learning_rate: vec![0.5],
        batch_size: vec![16],
        epochs: vec![6],
        optimizer: vec!["sgd".parse().unwrap(), "nesterov:0.9".parse().unwrap()],
        early_stopping: vec![0, 1],
        master_seed: 11,
        ..GridSpec::notebook()
    }
    .validate()
    .unwrap();
    assert_eq!(grid.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path(), &data);
    glorot_search::run(
        &grid,
        &data,
        &j,
        &manifest(1),
        RunOptions {
            workers: 1,
            shard: Shard::ALL,
        },
        &Quiet,
    )
    .unwrap();
    let records = j.records().unwrap();
    assert_eq!(records.len(), 4);
    for trial in grid.trials() {
        let r = records.iter().find(|r| r.id == trial.id).unwrap();
        assert_eq!(r.config, trial.config);
        assert_eq!(r.status, TrialStatus::Ok);
        match trial.config.early_stopping {
            None => {
                assert_eq!(r.kept_epoch, None);
                assert_eq!(r.epochs.len(), 6);
                assert_eq!(r.final_val_accuracy, Some(r.epochs[5].val_accuracy));
            }
            Some(_) => {
                assert!(trial.id.0.contains("-es1-"), "{}", trial.id);
                let kept = r.kept_epoch.expect("early stopping records the kept epoch");
                let best = r
                    .epochs
                    .iter()
                    .map(|e| e.val_accuracy)
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(r.epochs[kept - 1].val_accuracy, best);
                assert_eq!(r.final_val_accuracy, Some(best));
                assert_eq!(r.final_train_loss, Some(r.epochs[kept - 1].train_loss));
            }
        }
        if trial.config.optimizer.name() == "nesterov" {
            assert!(trial.id.0.contains("-nesterov-"), "{}", trial.id);
        }
        let eval = evaluate_on_test_observed(&trial, &data, Some(r), &Quiet)
            .unwrap()
            .unwrap();
        assert!(eval.reproduced_record, "{}", trial.id);
    }
    // Plain SGD and Nesterov momentum train differently.
    let curve = |name: &str, es: bool| {
        records
            .iter()
            .find(|r| r.config.optimizer.name() == name && r.config.early_stopping.is_some() == es)
            .map(bits)
            .unwrap()
    };
    assert_ne!(curve("sgd", false), curve("nesterov", false));
}
