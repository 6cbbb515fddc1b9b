//! Random search, successive halving and Hyperband: the journal, every promotion and
//! the winner do not depend on workers, shards or stops; a promoted trial continued from
//! its checkpoint equals the same trial trained from scratch, bit for bit.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use glorot_search::{
    GridSpec, Quiet, Range, Scale, SearchObserver, Shard, StrategyKind, StrategyOptions,
    StrategyPlan, StrategySpec, StrategySummary, TrialStatus, run_strategy, run_trial,
};
use glorot_tensor::Activation;

use super::{bits, data, journal, manifest};

/// 2 widths x 2 activations x a log-uniform learning rate x 2 batch sizes.
fn space() -> GridSpec {
    let mut space = GridSpec {
        hidden: vec![6, 10],
        activation: vec![Activation::Relu, Activation::Tanh],
        batch_size: vec![8, 32],
        master_seed: 11,
        ..GridSpec::notebook()
    };
    space.ranges.learning_rate = Some(Range {
        min: 0.05,
        max: 1.0,
        scale: Scale::Log,
    });
    space
}

fn hyperband() -> StrategyPlan {
    // min 1, max 4, eta 2: s_max = 2; brackets of 4 (1, 2, 4 epochs), 3 (2, 4), 3 (4).
    StrategyPlan::new(
        &space(),
        &StrategySpec {
            kind: StrategyKind::Hyperband,
            samples: None,
            min_epochs: 1,
            max_epochs: 4,
            eta: 2,
            brackets: None,
        },
    )
    .unwrap()
}

/// A journal's content without timings and manifests: every record's identity and
/// curve bits, and the bytes of `strategy.json` and `rungs/`.
fn content(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let data = data();
    let j = journal(dir, &data);
    for r in j.records().unwrap() {
        out.insert(
            format!("trials/{}", r.id),
            format!(
                "{} {} {:?} {:?} {:?}",
                r.index,
                r.seed,
                r.status,
                r.final_val_accuracy.map(f64::to_bits),
                bits(&r)
            ),
        );
    }
    out.insert(
        "strategy.json".into(),
        std::fs::read_to_string(dir.join("strategy.json")).unwrap(),
    );
    for e in std::fs::read_dir(dir.join("rungs")).unwrap() {
        let p = e.unwrap().path();
        out.insert(
            format!("rungs/{}", p.file_name().unwrap().to_string_lossy()),
            std::fs::read_to_string(&p).unwrap(),
        );
    }
    out
}

/// Records the first epoch number each trial reports (a continued trial starts after 1).
#[derive(Default)]
struct FirstEpochs(Mutex<BTreeMap<String, usize>>);

impl SearchObserver for FirstEpochs {
    fn on_epoch(&self, trial: &glorot_search::Trial, m: &glorot_mlp::EpochMetrics) {
        let mut seen = self.0.lock().unwrap();
        seen.entry(trial.id.to_string()).or_insert(m.epoch);
    }
}

/// Stops the search after a number of epochs (as a signal would).
struct StopAfter {
    epochs: AtomicUsize,
    limit: usize,
}

impl SearchObserver for StopAfter {
    fn on_epoch(&self, _: &glorot_search::Trial, _: &glorot_mlp::EpochMetrics) {
        self.epochs.fetch_add(1, Ordering::SeqCst);
    }
    fn should_stop(&self) -> bool {
        self.epochs.load(Ordering::SeqCst) >= self.limit
    }
}

fn run(plan: &StrategyPlan, dir: &Path, workers: usize, shard: Shard, obs: &dyn SearchObserver) {
    let data = data();
    let j = journal(dir, &data);
    plan.store(dir).unwrap();
    let outcome = run_strategy(
        plan,
        &data,
        &j,
        &manifest(workers),
        StrategyOptions {
            workers,
            shard,
            wait: true,
        },
        obs,
    )
    .unwrap();
    assert_eq!(outcome.failed, 0);
}

#[test]
fn hyperband_is_the_same_with_1_or_2_workers_3_shards_and_after_stops() {
    let plan = hyperband();
    assert_eq!(plan.file().samples.len(), 10);

    let one = tempfile::tempdir().unwrap();
    let first = FirstEpochs::default();
    run(&plan, one.path(), 1, Shard::ALL, &first);
    let reference = content(one.path());
    // 10 configurations; bracket 2: 4 + 2 + 1 trials, bracket 1: 3 + 1, bracket 0: 3.
    let trials = reference
        .keys()
        .filter(|k| k.starts_with("trials/"))
        .count();
    assert_eq!(trials, 14);
    let rungs = reference.keys().filter(|k| k.starts_with("rungs/")).count();
    assert_eq!(rungs, 6);

    // Promoted trials continued from their checkpoints (their first epoch is not 1) and
    // equal the same trial trained from scratch, bit for bit.
    let data = data();
    let j = journal(one.path(), &data);
    let first = first.0.into_inner().unwrap();
    let mut continued = 0;
    for r in j.records().unwrap() {
        assert_eq!(r.status, TrialStatus::Ok, "{}", r.id);
        let start = first[&r.id.to_string()];
        if start > 1 {
            continued += 1;
            let trial = glorot_search::Trial {
                index: r.index,
                id: r.id.clone(),
                seed: r.seed,
                config: r.config.clone(),
            };
            let scratch = run_trial(&trial, 11, &data, &manifest(1), &Quiet).unwrap();
            assert_eq!(bits(&scratch), bits(&r), "{}", r.id);
            assert_eq!(r.epochs.len(), r.config.epochs);
        }
    }
    // Bracket 2's rungs 1 and 2 (2 + 1 trials) and bracket 1's rung 1 (1 trial).
    assert_eq!(continued, 4);

    let two = tempfile::tempdir().unwrap();
    run(&plan, two.path(), 2, Shard::ALL, &Quiet);
    assert_eq!(content(two.path()), reference, "two workers");

    let sharded = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for i in 0..3 {
            let dir = sharded.path();
            let plan = &plan;
            s.spawn(move || run(plan, dir, 1, Shard::new(i, 3).unwrap(), &Quiet));
        }
    });
    assert_eq!(content(sharded.path()), reference, "three shards");

    // Stopped every 5 epochs (in the middle of trials and rungs; the longest trial has
    // 4 from scratch), resumed until done.
    let stopped = tempfile::tempdir().unwrap();
    let data = self::data();
    let j = journal(stopped.path(), &data);
    plan.store(stopped.path()).unwrap();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let outcome = run_strategy(
            &plan,
            &data,
            &j,
            &manifest(1),
            StrategyOptions {
                workers: 1,
                shard: Shard::ALL,
                wait: true,
            },
            &StopAfter {
                epochs: AtomicUsize::new(0),
                limit: 5,
            },
        )
        .unwrap();
        if outcome.complete {
            break;
        }
        assert!(outcome.stopped);
        assert!(rounds < 100);
    }
    assert!(rounds > 3, "{rounds}");
    assert_eq!(content(stopped.path()), reference, "stopped and resumed");

    let state = plan.state(&j).unwrap();
    assert!(state.complete);
    let summary = StrategySummary::new(&plan, &state);
    assert_eq!(summary.epochs, 28);
    let best = summary.best().unwrap();
    assert_eq!(best.epochs, 4);
    let again = StrategySummary::new(&plan, &plan.state(&journal(one.path(), &data)).unwrap());
    assert_eq!(again.best(), Some(best), "the same winner");
}

#[test]
fn a_missing_checkpoint_trains_from_scratch_to_the_same_record() {
    let plan = StrategyPlan::new(
        &space(),
        &StrategySpec {
            kind: StrategyKind::Sha,
            samples: Some(4),
            min_epochs: 1,
            max_epochs: 2,
            eta: 2,
            brackets: None,
        },
    )
    .unwrap();
    let a = tempfile::tempdir().unwrap();
    run(&plan, a.path(), 1, Shard::ALL, &Quiet);
    // Rung 0 done, checkpoints deleted: rung 1 must still equal the reference.
    let b = tempfile::tempdir().unwrap();
    let data = data();
    let j = journal(b.path(), &data);
    plan.store(b.path()).unwrap();
    let outcome = run_strategy(
        &plan,
        &data,
        &j,
        &manifest(1),
        StrategyOptions {
            workers: 1,
            shard: Shard::ALL,
            wait: false,
        },
        &StopAfter {
            epochs: AtomicUsize::new(0),
            limit: 4,
        },
    )
    .unwrap();
    assert!(outcome.stopped);
    std::fs::remove_dir_all(b.path().join("checkpoints")).unwrap();
    run(&plan, b.path(), 1, Shard::ALL, &Quiet);
    assert_eq!(content(b.path()), content(a.path()));
}

#[test]
fn random_search_trains_its_samples_at_max_epochs() {
    let plan = StrategyPlan::new(
        &space(),
        &StrategySpec {
            kind: StrategyKind::Random,
            samples: Some(3),
            min_epochs: 1,
            max_epochs: 2,
            eta: 3,
            brackets: None,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(&plan, dir.path(), 2, Shard::ALL, &Quiet);
    let c = content(dir.path());
    assert_eq!(c.keys().filter(|k| k.starts_with("trials/")).count(), 3);
    assert!(
        !dir.path()
            .join("checkpoints")
            .read_dir()
            .unwrap()
            .any(|_| true)
    );
    // A random search's trial is an ordinary trial: its id and seed are the grid's.
    for s in &plan.file().samples {
        assert_eq!(s.config.id(), s.id);
        assert_eq!(s.config.epochs, 2);
    }
}
