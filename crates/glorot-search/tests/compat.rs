//! Files of schema version 1 (seeds as JSON numbers) still read and resume: `search.json`
//! and a trial record copied from the committed `results/part2/` (written by
//! `cargo xtask experiments`, 2026-11, before seeds became strings).

use std::path::{Path, PathBuf};

use glorot_search::{
    Error, GridSpec, Journal, SearchContext, Summary, TrialId, derive_seed, journal,
};

/// `tests/data/v1`: `search.json` and `trials/<ID>.json` from `results/part2/`.
fn v1_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1")
}

const ID: &str = "450x2-relu-lr0.001-b128-bb9eb4dfb21f";
/// The record's `seed`, as the file writes it (above 2^53: an `f64` reader rounds it).
const SEED: u64 = 2_794_589_617_908_568_912;

/// A copy of the version 1 journal in a temporary directory.
fn v1_journal() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("part2");
    std::fs::create_dir_all(dir.join("trials")).unwrap();
    let src = v1_dir();
    std::fs::copy(src.join("search.json"), dir.join("search.json")).unwrap();
    let record = format!("trials/{ID}.json");
    std::fs::copy(src.join(&record), dir.join(&record)).unwrap();
    (tmp, dir)
}

/// The context a run on the full MNIST with master seed 0 opens its journal with: the
/// `data` of the committed `search.json`.
fn v1_context(master_seed: u64) -> SearchContext {
    let text = std::fs::read_to_string(v1_dir().join("search.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["master_seed"].is_u64(), "the fixture is version 1");
    SearchContext {
        master_seed,
        data: v["data"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn a_version_1_journal_resumes_as_the_same_search() {
    let (_tmp, dir) = v1_journal();
    let before = std::fs::read(dir.join("search.json")).unwrap();
    let journal = Journal::open(&dir, &v1_context(0)).expect("same master seed, same data");
    // Not rewritten: a v1 search.json stays as it was.
    assert_eq!(std::fs::read(dir.join("search.json")).unwrap(), before);
    let (_, found) = Journal::open_existing(&dir).unwrap();
    assert_eq!(found, v1_context(0));

    // Another master seed is still another search.
    match Journal::open(&dir, &v1_context(1)) {
        Err(Error::IncompatibleJournal { what, found, .. }) => {
            assert_eq!((what, found.as_str()), ("master seed", "0"));
        }
        other => panic!("expected IncompatibleJournal, got {other:?}"),
    }

    // The record reads with its exact seed, and counts as finished for the notebook's
    // grid (whose trial of that id derives the same seed from master seed 0).
    let records = journal.records().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!((r.schema_version, r.id.0.as_str()), (1, ID));
    assert_eq!(r.seed, SEED);
    assert_eq!(derive_seed(0, &TrialId(ID.to_owned())), SEED);
    let grid = GridSpec::preset("notebook").unwrap().validate().unwrap();
    let finished = journal::finished_ids(&dir, &grid).unwrap();
    assert!(finished.contains(&TrialId(ID.to_owned())));

    // What is written now carries the seeds as strings, and reads back equal.
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["seed"], SEED.to_string());
    assert_eq!(json["master_seed"], "0");
    let summary = Summary::merge(&grid, &records);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["best"]["seed"], SEED.to_string());
    assert_eq!(json["schema_version"], 2);
    let back: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn a_new_journal_writes_version_2_with_string_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = SearchContext {
        master_seed: u64::MAX,
        data: "synthetic".to_owned(),
    };
    Journal::open(tmp.path(), &ctx).unwrap();
    let text = std::fs::read_to_string(tmp.path().join("search.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["master_seed"], "18446744073709551615");
    // Reopening recognises it.
    Journal::open(tmp.path(), &ctx).unwrap();
    let (_, found) = Journal::open_existing(tmp.path()).unwrap();
    assert_eq!(found, ctx);
}

#[test]
fn a_newer_search_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("search.json"),
        r#"{"schema_version": 3, "master_seed": "0", "data": "synthetic"}"#,
    )
    .unwrap();
    match Journal::open_existing(tmp.path()) {
        Err(Error::NewerRecord { found: 3, .. }) => {}
        other => panic!("expected NewerRecord, got {other:?}"),
    }
}

#[test]
fn grid_files_take_the_master_seed_as_a_number_or_a_string() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |name: &str, seed: &str| {
        let path = tmp.path().join(name);
        let text = if name.ends_with(".toml") {
            format!(
                "hidden = [8]\nactivation = [\"relu\"]\nlearning_rate = [0.1]\n\
                 batch_size = [4]\n{seed}\n"
            )
        } else if seed.starts_with('{') {
            seed.to_owned()
        } else {
            format!(
                r#"{{"hidden": [8], "activation": ["relu"], "learning_rate": [0.1],
                     "batch_size": [4], {seed}}}"#
            )
        };
        std::fs::write(&path, text).unwrap();
        GridSpec::from_file(&path).map(|g| g.master_seed)
    };
    assert_eq!(read("a.toml", "master_seed = 7").unwrap(), 7);
    assert_eq!(
        read("b.toml", "master_seed = \"18446744073709551615\"").unwrap(),
        u64::MAX
    );
    assert_eq!(read("c.json", r#""master_seed": 7"#).unwrap(), 7);
    assert_eq!(
        read("d.json", r#""master_seed": "6619704716213685299""#).unwrap(),
        6_619_704_716_213_685_299
    );
    assert!(read("e.toml", "master_seed = -1").is_err());
    // grid.json as written now round-trips.
    let mut spec = GridSpec::preset("tiny").unwrap();
    spec.master_seed = u64::MAX;
    let json = serde_json::to_string(&spec).unwrap();
    assert!(
        json.contains(r#""master_seed":"18446744073709551615""#),
        "{json}"
    );
    assert_eq!(read("f.json", &json).unwrap(), u64::MAX);
}
