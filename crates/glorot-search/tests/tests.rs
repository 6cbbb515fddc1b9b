//! Integration tests of glorot-search on small synthetic data: a trial's result does not
//! depend on parallelism, sharding or resumption; stopping records nothing in flight.

// Tests are final link targets: they select the BLAS provider.
extern crate blas_src;

mod parsers;

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
