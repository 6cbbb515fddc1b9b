//! No file in a results directory or a grid file makes glorot-search panic: arbitrary
//! bytes, and valid files with a few bytes changed, in every file it parses (grid JSON
//! and TOML, `grid.json`, `search.json`, trial records). Each parser returns `Ok` or an
//! error that renders.

use std::path::Path;

use glorot_search::{GridSpec, Journal, SearchContext, TrialRecord, journal};
use proptest::prelude::*;

fn context() -> SearchContext {
    SearchContext {
        master_seed: 0,
        data: "synthetic".to_owned(),
    }
}

/// `bytes` with a byte set at each of `edits` (positions taken modulo the length).
fn edited(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    let n = bytes.len();
    for &(at, b) in edits {
        if n > 0 {
            bytes[at % n] = b;
        }
    }
    bytes
}

/// Parses `bytes` as a grid file with extension `ext`, and uses what parses.
fn grid_file(dir: &Path, ext: &str, bytes: &[u8]) {
    let path = dir.join(format!("grid.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    match GridSpec::from_file(&path) {
        Ok(spec) => {
            if let Ok(grid) = spec.validate()
                && grid.len() <= 10_000
            {
                assert_eq!(grid.trials().len(), grid.len());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Puts `bytes` where the journal keeps `search.json`, `grid.json` and a trial record,
/// and runs every reader over the directory.
fn journal_files(dir: &Path, search: &[u8], grid: &[u8], record: &[u8]) {
    let _ = Journal::open(dir, &context()).unwrap();
    std::fs::write(dir.join("trials").join("a-trial.json"), record).unwrap();
    std::fs::write(dir.join("grid.json"), grid).unwrap();
    let valid = GridSpec::preset("tiny").unwrap().validate().unwrap();
    let _ = journal::finished_ids(dir, &valid);
    if let Some(Err(e)) = journal::stored_grid(dir) {
        assert!(!e.to_string().is_empty());
    }
    let _ = serde_json::from_slice::<TrialRecord>(record);
    if let Ok(j) = Journal::open(dir, &context()) {
        let _ = j.records();
    }
    std::fs::write(dir.join("search.json"), search).unwrap();
    match Journal::open_existing(dir) {
        Ok((j, _)) => {
            let _ = j.records();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = Journal::open(dir, &context());
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600)
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_grid_files_never_panic(json in bytes(), toml in bytes()) {
        let dir = tempfile::tempdir().unwrap();
        grid_file(dir.path(), "json", &json);
        grid_file(dir.path(), "toml", &toml);
    }

    #[test]
    fn edited_grid_files_never_panic(e1 in edits(), e2 in edits()) {
        let dir = tempfile::tempdir().unwrap();
        let spec = GridSpec::preset("quick").unwrap();
        let json = serde_json::to_vec(&spec).unwrap();
        grid_file(dir.path(), "json", &edited(json, &e1));
        let toml = b"hidden = [8, 16]\nactivation = [\"tanh\"]\nlearning_rate = [0.5, 0.1]\n\
                     batch_size = [4]\nepochs = [2]\ninit = [\"normal:0:1\", { kind = \"zero\" }]\n\
                     repeats = [0, 1]\nhidden_layers = 3\n";
        grid_file(dir.path(), "toml", &edited(toml.to_vec(), &e2));
    }

    #[test]
    fn arbitrary_journal_files_never_panic(search in bytes(), grid in bytes(), record in bytes()) {
        let dir = tempfile::tempdir().unwrap();
        journal_files(dir.path(), &search, &grid, &record);
    }

    #[test]
    fn edited_journal_files_never_panic(e1 in edits(), e2 in edits(), e3 in edits()) {
        let dir = tempfile::tempdir().unwrap();
        let search = serde_json::to_vec_pretty(&context()).unwrap();
        let grid = serde_json::to_vec(&GridSpec::preset("tiny").unwrap()).unwrap();
        // A record's opening as the journal writes them, with a truncated body.
        let record = br#"{"schema_version":1,"id":"8x2-tanh-lr0.5-b4-0123456789ab","index":0,"config":{"hidden":[8,8],"activation":"tanh","learning_rate":0.5,"batch_size":4,"init":{"kind":"glorot_uniform"},"epochs":2,"precision":"f32","shuffle":"every_epoch","repeat":0},"seed":1,"status":{"kind":"ok"},"epochs":[]}"#;
        journal_files(
            dir.path(),
            &edited(search, &e1),
            &edited(grid, &e2),
            &edited(record.to_vec(), &e3),
        );
    }
}
