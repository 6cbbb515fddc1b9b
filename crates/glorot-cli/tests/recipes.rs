//! The recipes of `docs/results.md` (fenced blocks whose info string has `recipe=<name>`),
//! extracted from the document and run against a fresh `--quick` run, so the text a
//! reader copies is the text that is tested:
//!
//! - `jq`, `node`: each prints the best trial's id and seed, which must equal
//!   `summary.json`'s, digit for digit;
//! - `pandas`, `polars`: the same from `trials.csv`, in a virtual environment the test
//!   creates under `target/recipes-venv` (`pip install pandas polars numpy safetensors`);
//! - `numpy-weights`: the forward pass of saved weights in NumPy, whose test accuracy
//!   must equal `glorot eval --split test --json`'s (to one image: NumPy sums in another
//!   order, which may flip an image whose two best outputs are within rounding).
//!
//! A tool that is missing (`jq`, `node`, `python3` with `venv`, or `pip` without network)
//! skips its recipes with a note on stderr; CI installs all of them (`.ci/run`).

#![allow(clippy::print_stderr, reason = "a skipped recipe says why")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// One fenced block of `docs/results.md` marked `recipe=<name>`.
#[derive(Debug)]
pub(crate) struct Recipe {
    pub(crate) name: String,
    pub(crate) code: String,
}

/// The recipes of `docs/results.md`, in document order.
pub(crate) fn recipes() -> Vec<Recipe> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    let mut current: Option<Recipe> = None;
    for line in doc.lines() {
        match current.as_mut() {
            Some(_) if line.trim_end() == "```" => out.push(current.take().unwrap()),
            Some(r) => {
                r.code.push_str(line);
                r.code.push('\n');
            }
            None => {
                if let Some(info) = line.strip_prefix("```")
                    && let Some(name) = info
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("recipe="))
                {
                    current = Some(Recipe {
                        name: name.to_owned(),
                        code: String::new(),
                    });
                }
            }
        }
    }
    assert!(
        current.is_none(),
        "an unclosed recipe block in docs/results.md"
    );
    out
}

fn recipe(name: &str) -> String {
    recipes()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("docs/results.md has no recipe={name} block"))
        .code
}

/// Runs `cmd` in `dir`; `None` when the program cannot be started.
fn run(mut cmd: Command, dir: &Path) -> Option<(bool, String, String)> {
    let out = cmd.current_dir(dir).stdin(Stdio::null()).output().ok()?;
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[track_caller]
fn expect_ok(what: &str, r: (bool, String, String)) -> String {
    assert!(
        r.0,
        "recipe {what} failed:\n--- stdout\n{}\n--- stderr\n{}",
        r.1, r.2
    );
    r.1
}

/// The first line of a recipe's output must be `<id> <seed>` of the best trial.
#[track_caller]
fn expect_best(what: &str, stdout: &str, id: &str, seed: &str) {
    let first = stdout.lines().next().unwrap_or_default().trim();
    assert_eq!(first, format!("{id} {seed}"), "recipe {what}:\n{stdout}");
}

/// Runs the `jq`, `node`, `pandas` and `polars` recipes with `results/` standing for the
/// quick run's folder `quick`.
pub(crate) fn check_result_recipes(quick: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    link(quick, &dir.join("results"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(quick.join("part2/summary.json")).unwrap())
            .unwrap();
    let id = summary["best"]["id"].as_str().unwrap();
    // The summary writes the seed as a string: the exact digits to expect.
    let seed = summary["best"]["seed"].as_str().unwrap();
    assert!(seed.bytes().all(|b| b.is_ascii_digit()), "{seed}");

    let mut jq = Command::new("sh");
    jq.arg("-c").arg(recipe("jq"));
    let mut version = Command::new("jq");
    version.arg("--version");
    match run(version, dir) {
        Some((true, ..)) => expect_best("jq", &expect_ok("jq", run(jq, dir).unwrap()), id, seed),
        _ => eprintln!("note: recipe jq skipped: jq is not installed"),
    }
    let mut node = Command::new("node");
    node.arg("-e").arg(recipe("node"));
    match run(node, dir) {
        Some(r) => expect_best("node", &expect_ok("node", r), id, seed),
        None => eprintln!("note: recipe node skipped: node is not installed"),
    }
    let Some(python) = venv() else { return };
    for name in ["pandas", "polars"] {
        let mut py = Command::new(&python);
        py.arg("-c").arg(recipe(name));
        expect_best(name, &expect_ok(name, run(py, dir).unwrap()), id, seed);
    }
}

/// Runs the `numpy-weights` recipe on `weights` and the MNIST-format folder `data`, and
/// returns (accuracy, images) as it prints them; `None` when Python is not available.
pub(crate) fn numpy_weights_accuracy(weights: &Path, data: &Path) -> Option<(f64, usize)> {
    let python = venv()?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    link(weights, &dir.join("model.safetensors"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    link(data, &dir.join("data/mnist"));
    let mut py = Command::new(&python);
    py.arg("-c").arg(recipe("numpy-weights"));
    let out = expect_ok("numpy-weights", run(py, dir).unwrap());
    // "accuracy 91.50 on 200 images"
    let words: Vec<&str> = out.split_whitespace().collect();
    match words.as_slice() {
        ["accuracy", acc, "on", n, "images"] => Some((acc.parse().unwrap(), n.parse().unwrap())),
        _ => panic!("recipe numpy-weights printed {out:?}"),
    }
}

fn link(from: &Path, to: &Path) {
    let from = std::fs::canonicalize(from).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&from, to).unwrap();
    #[cfg(not(unix))]
    panic!("the recipe tests link files: Unix only ({})", to.display());
}

/// The Python of `target/recipes-venv`, created (and the packages installed) on first
/// use; `None`, with a note, when python3, its venv module or pip cannot provide them.
fn venv() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/recipes-venv");
    let python = dir.join("bin/python");
    let has_packages = |python: &Path| {
        Command::new(python)
            .args(["-c", "import pandas, polars, numpy, safetensors"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_packages(&python) {
        return Some(python);
    }
    let skip = |why: &str| {
        eprintln!("note: the Python recipes are skipped: {why}");
        None
    };
    if !python.exists() {
        match Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .stdout(Stdio::null())
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skip(&format!(
                    "python3 -m venv failed (install python3-venv): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return skip(&format!("python3 cannot run: {e}")),
        }
    }
    let pip = Command::new(dir.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "pandas",
            "polars",
            "numpy",
            "safetensors",
        ])
        .stdout(Stdio::null())
        .output();
    match pip {
        Ok(o) if o.status.success() && has_packages(&python) => Some(python),
        Ok(o) => skip(&format!(
            "pip install failed (no network?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => skip(&format!("pip cannot run: {e}")),
    }
}
