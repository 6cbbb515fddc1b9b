//! The studies called as a library, without the `glorot` binary: a quick Part 1 and
//! Part 3 on a generated dataset in the MNIST format, progress collected by an observer,
//! the report rendered, and a second run reusing Part 1's cached runs. (The same run
//! through the binary, with the results validated against `docs/schemas/`, is
//! glorot-cli's `tests/experiments.rs`.)

// Tests are binaries: they pick the BLAS provider, as the workspace's binaries do.
extern crate blas_src;

use std::path::Path;
use std::sync::Mutex;

use glorot_experiments::{
    Data, DataSpec, Observer, Options, ProgressEvent, RunContext, reference, threads,
};
use glorot_mnist::{FileRole, PIXELS, idx};

/// Images in the generated training file (`validation_size: 200` leaves 1,000 to train).
const TRAIN_FILE: usize = 1_200;
const TEST: usize = 200;

/// A small learnable dataset in the MNIST format: class `c` lights a band of rows
/// (the generator of glorot-cli's `tests/experiments.rs`).
fn write_synthetic_mnist(dir: &Path) {
    let make = |n: usize, salt: u64| {
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ salt;
        let mut images = vec![0u8; n * PIXELS];
        let mut labels = vec![0u8; n];
        for i in 0..n {
            let c = (i % 10) as u8;
            labels[i] = c;
            for p in 0..PIXELS {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let noise = (state >> 59) as u8;
                let lit = (p / 28) / 3 == usize::from(c) + 2;
                images[i * PIXELS + p] = if lit { 200 + noise } else { noise };
            }
        }
        (images, labels)
    };
    let (train_x, train_y) = make(TRAIN_FILE, 1);
    let (test_x, test_y) = make(TEST, 2);
    let n = |x: usize| u32::try_from(x).unwrap();
    let files = [
        (FileRole::TrainImages, vec![n(TRAIN_FILE), 28, 28], train_x),
        (FileRole::TrainLabels, vec![n(TRAIN_FILE)], train_y),
        (FileRole::TestImages, vec![n(TEST), 28, 28], test_x),
        (FileRole::TestLabels, vec![n(TEST)], test_y),
    ];
    for (role, dims, data) in files {
        let path = dir.join(format!("{}.gz", role.file_name()));
        std::fs::write(path, idx::gzip(&idx::encode(&dims, &data))).unwrap();
    }
}

/// [`write_synthetic_mnist`] into `dir`, loaded with 200 validation images.
fn synthetic_data(dir: &Path) -> Data {
    write_synthetic_mnist(dir);
    let spec = DataSpec {
        verify: false,
        validation_size: 200,
        ..DataSpec::default()
    };
    Data::from_loaded(glorot_experiments::data::load(dir, &spec).unwrap())
}

/// Every event, as text.
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl Observer for Collect {
    fn message(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }

    fn progress(&self, e: &ProgressEvent<'_>) {
        assert!((0.0..=100.0 + 1e-9).contains(&e.percent), "{e:?}");
        self.0
            .lock()
            .unwrap()
            .push(format!("[{}] {}", e.part, e.what));
    }

    fn note(&self, part: &str, message: &str) {
        self.0.lock().unwrap().push(format!("[{part}] {message}"));
    }
}

#[test]
fn quick_studies_run_as_a_library_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_data(tmp.path());
    let notebook = reference::notebook().unwrap();
    let plan = threads::plan_threads(Some(2), Some(1), true, 2).unwrap();
    let machine = glorot_search::Manifest::detect("test", "test BLAS", 1, plan.workers);
    let ctx = RunContext::new(["test".to_owned(), "it's".to_owned()], machine);
    assert_eq!(ctx.command, r"test 'it'\''s'");
    let out = tmp.path().join("results");
    let options = Options {
        out: out.clone(),
        parts: vec![1, 3],
        precision: None,
        seed: None,
        grid: None,
        epochs: Some(1),
        workers: plan.workers,
        quick: true,
        replay: None,
        fashion: None,
    };

    let seen = Collect::default();
    let errors = glorot_experiments::run_parts(&options, &data, &ctx, &notebook, &seen);
    assert!(errors.is_empty(), "{errors:?}");
    let seen = seen.0.into_inner().unwrap();
    // One epoch of each of the three runs, then the three runs' results, then Part 3's
    // three cells, then the quick replay check (on this data it runs and compares; its
    // numbers match the notebook's only on MNIST).
    for needle in [
        "[part 1] glorot init epoch 1/1",
        "[part 1] zero: final validation accuracy",
        "[part 3] w0 row 161",
        "[replay] Part 1 epoch 1 and Part 3:",
    ] {
        assert!(
            seen.iter().any(|m| m.contains(needle)),
            "{needle}: {seen:#?}"
        );
    }
    let plots = glorot_experiments::finish(&out, &notebook).unwrap();
    // Plots with the `plots` feature (on when built with glorot-cli), none without.
    assert_eq!(plots.is_empty(), !cfg!(feature = "plots"), "{plots:?}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(report.contains("Part 1"), "{report}");

    let part1: glorot_experiments::part1::Part1File =
        serde_json::from_slice(&std::fs::read(out.join("part1.json")).unwrap()).unwrap();
    // 784*500 + 500 + 500*500 + 500 + 500*10 + 10 (the notebook printed 648,784).
    assert_eq!(part1.parameters, 648_010);
    assert_eq!(part1.manifest.command, ctx.command);
    assert!(part1.runs.iter().all(|r| !r.cached));
    // 1,200 training images less 200 held out; the quick subset (5,000) takes them all.
    assert_eq!(part1.manifest.dataset.train, 1_000);

    // Again: Part 1's runs come from their cache files.
    let seen = Collect::default();
    let errors = glorot_experiments::run_parts(&options, &data, &ctx, &notebook, &seen);
    assert!(errors.is_empty(), "{errors:?}");
    let again: glorot_experiments::part1::Part1File =
        serde_json::from_slice(&std::fs::read(out.join("part1.json")).unwrap()).unwrap();
    assert!(again.runs.iter().all(|r| r.cached));
    for (a, b) in part1.runs.iter().zip(&again.runs) {
        assert_eq!(a.final_val_accuracy, b.final_val_accuracy, "{}", a.name);
    }
    let seen = seen.0.into_inner().unwrap();
    assert!(
        seen.iter()
            .any(|m| m.contains("[part 1] glorot: reusing part1/glorot.json")),
        "{seen:#?}"
    );
}

#[test]
fn an_oversubscribing_plan_is_an_invalid_option() {
    let err = threads::plan_threads(Some(4), Some(2), false, 4).unwrap_err();
    assert!(err.is_invalid_options(), "{err}");
    assert!(err.to_string().contains("oversubscribe"), "{err}");
}

/// Part 6 as a library on a tiny space (8 configurations, budgets 1 to 3 epochs) against
/// Part 2's grid of the same space at 3 epochs: it refuses to run without the grid's
/// journal; with master seed 0 (the grid's) every winner's accuracy is the grid's own
/// number for that configuration, bit for bit (same seed, and a continued trial equals
/// the same trial trained from scratch); a second run trains nothing.
#[test]
fn part6_compares_the_strategies_with_part2s_journal() {
    use glorot_experiments::{part2, part6};

    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_data(tmp.path());
    let notebook = reference::notebook().unwrap();
    let machine = glorot_search::Manifest::detect("test", "test BLAS", 1, 2);
    let ctx = RunContext::new(["test".to_owned()], machine);
    let out = tmp.path().join("results");
    let mut space = glorot_search::GridSpec::preset("tiny").unwrap();
    space.epochs = vec![3];
    let grid = space.validate().unwrap();
    let mut options = part6::Part6Options::new(grid.clone(), 2, false);
    options.seeds = vec![0, 1];

    let err = part6::run(
        &out,
        &data,
        &options,
        &ctx,
        &glorot_experiments::NoopObserver,
    )
    .unwrap_err();
    assert!(err.to_string().contains("run Part 2 first"), "{err}");

    let part2_options = part2::Part2Options {
        grid,
        workers: 2,
        quick: true,
    };
    let p2 = part2::run(
        &out,
        &data,
        &part2_options,
        &ctx,
        &notebook,
        &glorot_experiments::NoopObserver,
    )
    .unwrap();
    let seen = Collect::default();
    let p6 = part6::run(&out, &data, &options, &ctx, &seen).unwrap();
    assert_eq!(p6.grid.epochs, 24, "8 trials of 3 epochs");
    assert_eq!(
        p6.grid.best_val_accuracy,
        p2.best.as_ref().unwrap().final_val_accuracy
    );
    assert_eq!(p6.strategies.len(), 3);
    for st in &p6.strategies {
        assert_eq!(st.runs.len(), 2, "{}", st.name);
        for r in &st.runs {
            assert!(r.complete && r.recorded_now > 0, "{} {r:?}", st.name);
            let found = r.best_val_accuracy.unwrap();
            assert_eq!(r.gap, Some(p6.grid.best_val_accuracy.unwrap() - found));
            assert!(r.grid_rank.is_some(), "{} {r:?}", st.name);
            if r.master_seed == 0 {
                assert_eq!(r.grid_val_accuracy, Some(found), "{} {r:?}", st.name);
            }
        }
    }
    let seen = seen.0.into_inner().unwrap();
    assert!(
        seen.iter().any(|m| m.starts_with("[part 6] sha seed 1: ")),
        "{seen:#?}"
    );

    let again = part6::run(
        &out,
        &data,
        &options,
        &ctx,
        &glorot_experiments::NoopObserver,
    )
    .unwrap();
    for (a, b) in p6.strategies.iter().zip(&again.strategies) {
        for (x, y) in a.runs.iter().zip(&b.runs) {
            assert_eq!(y.recorded_now, 0, "{} {y:?}", b.name);
            assert_eq!(
                (&x.best_id, x.best_val_accuracy),
                (&y.best_id, y.best_val_accuracy)
            );
        }
    }
}
