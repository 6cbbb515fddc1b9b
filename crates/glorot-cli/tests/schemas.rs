//! Every JSON file glorot writes, and every `--json` output, against its JSON Schema in
//! `docs/schemas/` (draft 2020-12), and the seed rule: no integer in a file written now
//! exceeds 2^53 - 1 (64-bit seeds are decimal strings).
//!
//! Shared by the `tests` binary (CLI outputs, the committed `results/`) and the
//! `experiments` binary (a fresh `--quick` run), which includes this file as a module.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The largest integer every JSON reader holds exactly (2^53 - 1: an IEEE double's).
pub(crate) const MAX_EXACT: u64 = (1 << 53) - 1;

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `docs/schemas/`.
pub(crate) fn schemas_dir() -> PathBuf {
    workspace().join("docs/schemas")
}

/// The schema (`docs/schemas/<name>.schema.json`) of a file at `rel`, a path relative to
/// a results directory (`glorot experiments --out`, `glorot search run --out`, or
/// `cargo xtask bench`'s `results/bench/`). `None`: a JSON file glorot should not write.
pub(crate) fn schema_for(rel: &Path) -> Option<&'static str> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let name = parts.last()?.as_str();
    let parent = parts.len().checked_sub(2).map(|i| parts[i].as_str());
    let grandparent = parts.len().checked_sub(3).map(|i| parts[i].as_str());
    let stem = name.strip_suffix(".json")?;
    Some(match (grandparent, parent, stem) {
        (
            _,
            None | Some("quick"),
            "part1" | "part2" | "part3" | "part4" | "part5" | "part6" | "replay",
        ) => match stem {
            "part1" => "part1",
            "part2" => "part2",
            "part3" => "part3",
            "part4" => "part4",
            "part5" => "part5",
            "part6" => "part6",
            _ => "replay",
        },
        // Part 5 caches its runs as Part 1 does.
        (_, Some("part1" | "part5"), _) => "part1-run",
        (_, Some("part4"), _) => "part4-network",
        (_, Some("replay"), "part3") => "replay-part3",
        (_, Some("replay"), s) if s.starts_with("part1-") => "replay-run",
        (Some("replay"), Some("trials"), s) if s.starts_with("trial-") => "replay-run",
        (_, _, s) if s.starts_with("bench-") => "bench",
        // `cargo xtask bench` also copies its latest session there (not committed).
        (_, Some("bench"), "latest") => "bench",
        (_, Some("rungs"), s) if s.starts_with('b') => "rung",
        (_, _, "strategy") => "strategy",
        (_, _, "strategy_summary") => "strategy-summary",
        (_, _, "search") => "search",
        (_, _, "grid") => "grid",
        (_, _, "summary") => "summary",
        (_, _, "best_test") => "best-test",
        (_, _, "shards") => "shards",
        (_, Some("trials"), _) => "trial",
        _ => return None,
    })
}

/// The compiled schemas, each read once.
#[derive(Default)]
pub(crate) struct Schemas {
    compiled: HashMap<String, jsonschema::Validator>,
}

impl Schemas {
    /// Checks `value` against `docs/schemas/<name>.schema.json`; `what` names it in the
    /// failure.
    #[track_caller]
    pub(crate) fn check(&mut self, name: &str, value: &Value, what: &str) {
        let validator = self.compiled.entry(name.to_owned()).or_insert_with(|| {
            let path = schemas_dir().join(format!("{name}.schema.json"));
            let schema = read(&path);
            jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()))
        });
        let errors: Vec<String> = validator
            .iter_errors(value)
            .take(10)
            .map(|e| format!("  {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what} does not match docs/schemas/{name}.schema.json:\n{}",
            errors.join("\n")
        );
    }

    /// Checks every `.json` file under `root` against the schema of its path
    /// ([`schema_for`]); fails on a file without one. With `exact`, also fails on an
    /// integer above [`MAX_EXACT`] (files written now; the committed results of schema
    /// version 1 have numeric seeds). Returns how many files were checked.
    #[track_caller]
    pub(crate) fn check_tree(&mut self, root: &Path, exact: bool) -> usize {
        let mut files = Vec::new();
        json_files(root, &mut files);
        files.sort();
        let mut unmapped = Vec::new();
        for path in &files {
            let rel = path.strip_prefix(root).unwrap();
            let Some(name) = schema_for(rel) else {
                unmapped.push(rel.display().to_string());
                continue;
            };
            let value = read(path);
            self.check(name, &value, &path.display().to_string());
            if exact {
                assert_exact(&value, &path.display().to_string());
            }
        }
        assert!(
            unmapped.is_empty(),
            "JSON files under {} without a schema in docs/schemas/: {unmapped:?}",
            root.display()
        );
        files.len()
    }
}

/// Fails when `value` holds an integer a double cannot hold exactly.
#[track_caller]
pub(crate) fn assert_exact(value: &Value, what: &str) {
    let mut big = Vec::new();
    big_integers(value, "", &mut big);
    assert!(
        big.is_empty(),
        "{what}: integers above 2^53 - 1 (write them as strings): {big:?}"
    );
}

fn big_integers(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Number(n)
            if n.as_u64().is_some_and(|u| u > MAX_EXACT)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() > MAX_EXACT) =>
        {
            out.push(format!("{path} = {n}"));
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                big_integers(x, &format!("{path}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, x) in map {
                big_integers(x, &format!("{path}/{k}"), out);
            }
        }
        _ => {}
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Reads and parses a JSON file.
#[track_caller]
pub(crate) fn read(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Parses a command's stdout as one JSON document.
#[track_caller]
pub(crate) fn parse(stdout: &str, what: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{stdout}"))
}
