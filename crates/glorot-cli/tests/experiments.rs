//! `glorot experiments`, run as the real binary in a temporary directory:
//!
//! - a `--quick` run on a generated dataset in the MNIST format (no real data needed; the
//!   same files stand for Fashion-MNIST in Part 5): every results file validates against
//!   its JSON Schema in `docs/schemas/`, the plots and the report are written, and a
//!   second run resumes instead of recomputing;
//! - command-line mistakes exit with code 2;
//! - with `GLOROT_MNIST_DIR` set (CI sets it): the notebook replay reproduces the first
//!   grid trial's first epoch and Part 3's analytic gradient to 1e-12 relative, after
//!   skipping the earlier cells' draws. (Part 1's first Glorot epoch is replayed by
//!   glorot-mlp's own test, `tests/notebook.rs`.)

mod recipes;
mod schemas;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use glorot_mnist::{FileRole, PIXELS, idx};
use serde_json::Value;

/// Images in the synthetic training file (`--validation-size 200` leaves 1,000 to train).
const SYNTH_TRAIN_FILE: usize = 1_200;
const SYNTH_TEST: usize = 200;

/// Writes a small learnable dataset in the MNIST format: class `c` lights a band of rows.
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
                let noise = (state >> 59) as u8; // 0..31
                let row = p / 28;
                let lit = row / 3 == usize::from(c) + 2;
                images[i * PIXELS + p] = if lit { 200 + noise } else { noise };
            }
        }
        (images, labels)
    };
    let (train_x, train_y) = make(SYNTH_TRAIN_FILE, 1);
    let (test_x, test_y) = make(SYNTH_TEST, 2);
    let n = |x: usize| u32::try_from(x).unwrap();
    let files = [
        (
            FileRole::TrainImages,
            vec![n(SYNTH_TRAIN_FILE), 28, 28],
            train_x,
        ),
        (FileRole::TrainLabels, vec![n(SYNTH_TRAIN_FILE)], train_y),
        (FileRole::TestImages, vec![n(SYNTH_TEST), 28, 28], test_x),
        (FileRole::TestLabels, vec![n(SYNTH_TEST)], test_y),
    ];
    for (role, dims, data) in files {
        let path = dir.join(format!("{}.gz", role.file_name()));
        std::fs::write(path, idx::gzip(&idx::encode(&dims, &data))).unwrap();
    }
}

/// `glorot` with `args` in `dir`, without the caller's dataset variables; Fashion-MNIST
/// (Part 5's) is looked for in `dir/fashion` only.
fn glorot(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glorot"));
    c.args(args)
        .current_dir(dir)
        .env_remove("GLOROT_MNIST_DIR")
        .env("GLOROT_FASHION_MNIST_DIR", dir.join("fashion"))
        // Never a download: a test lacking data fails with a message.
        .env("GLOROT_OFFLINE", "1")
        .stdin(Stdio::null());
    c.output().expect("the glorot binary runs")
}

#[track_caller]
fn expect_code(out: &Output, code: i32, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\n--- stderr\n{stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
}

/// Validates `dir/<name>.json` against `docs/schemas/<name>.schema.json`.
#[track_caller]
fn check_schema(dir: &Path, name: &str) -> Value {
    let schema = read_json(&schemas_dir().join(format!("{name}.schema.json")));
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("docs/schemas/{name}.schema.json is not a valid schema: {e}"));
    let instance = read_json(&dir.join(format!("{name}.json")));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}.json does not match its schema:\n{}",
        errors.join("\n")
    );
    instance
}

const SYNTH: &[&str] = &[
    "--data-dir",
    "data",
    "--no-verify",
    "--validation-size",
    "200",
];

#[test]
fn quick_run_writes_valid_results_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_synthetic_mnist(&data);
    // The same learnable files stand for Fashion-MNIST (Part 5; --no-verify lets them in).
    let fashion = tmp.path().join("fashion");
    std::fs::create_dir_all(&fashion).unwrap();
    write_synthetic_mnist(&fashion);
    let args: Vec<&str> = ["experiments", "--quick", "--out", "res", "--workers", "2"]
        .into_iter()
        .chain(SYNTH.iter().copied())
        .collect();
    let first = glorot(tmp.path(), &args);
    expect_code(&first, 0, "glorot experiments --quick");
    let out = tmp.path().join("res/quick");

    let p1 = check_schema(&out, "part1");
    let p2 = check_schema(&out, "part2");
    let p3 = check_schema(&out, "part3");
    let rp = check_schema(&out, "replay");
    let p4 = check_schema(&out, "part4");
    let p5 = check_schema(&out, "part5");
    let p6 = check_schema(&out, "part6");
    // Every JSON file of the run has a schema and matches it; no integer above 2^53 - 1.
    let checked = schemas::Schemas::default().check_tree(&out, true);
    assert!(checked >= 26, "{checked} JSON files in a quick run");
    assert_eq!(p1["parameters"], 648_010);
    assert_eq!(p1["notebook_parameters"], 648_784);
    assert_eq!(
        p1["runs"][0]["report"]["epochs"].as_array().unwrap().len(),
        2
    );
    assert_eq!(p1["runs"][0]["report"]["train_samples"], 1_000);
    assert_eq!(p2["total"], 12, "the quick preset");
    assert_eq!(p2["finished"], 12);
    assert!(p2["best"]["final_val_accuracy"].is_number());
    assert!(p2["best_test"]["test_accuracy"].is_number());
    assert_eq!(p3["cells"].as_array().unwrap().len(), 3);
    assert_eq!(
        p3["cells"][1]["check"]["steps"].as_array().unwrap().len(),
        20
    );
    // The replay check runs on whatever data it is given: here synthetic, so Part 3's
    // 45 printed numbers are compared and (almost all) miss.
    assert_eq!(rp["comparison"]["numbers"], 462);
    let part3 = &rp["comparison"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "part3")
        .unwrap()
        .clone();
    assert_eq!(part3["compared"], 45);
    // Part 4, quick: six networks 784-100-100-100-10 for one epoch, probed at
    // initialization, in between and at the end; ratios between the three hidden layers.
    let nets = p4["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 6);
    assert_eq!(p4["layers"], serde_json::json!([784, 100, 100, 100, 10]));
    for n in nets {
        assert_eq!(n["initial"]["update"], 0, "{}", n["name"]);
        assert_eq!(n["initial"]["layers"].as_array().unwrap().len(), 3);
        assert!(n["curve"].as_array().unwrap().len() >= 3, "{}", n["name"]);
        assert_eq!(n["ratios"].as_array().unwrap().len(), 2);
        assert!(n["test_error"].is_number(), "{}", n["name"]);
    }
    assert_eq!(nets[2]["name"], "tanh-standard");
    assert_eq!(nets[2]["ratios"][0]["predicted_activations"], 3.0);
    assert_eq!(nets[3]["ratios"][0]["predicted_gradients"], 1.0);
    // Part 5: both configurations, one seed, 2 epochs each, tested on the 200 test images.
    let configs = p5["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    assert_eq!(
        (&configs[0]["name"], &configs[1]["name"]),
        (&"notebook".into(), &"improved".into())
    );
    for c in configs {
        let runs = c["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["report"]["epochs"].as_array().unwrap().len(), 2);
        assert!(runs[0]["report"]["test_accuracy"].is_number());
        assert!(c["summary"]["test_accuracy_mean"].is_number());
    }
    assert_eq!(p5["manifest"]["dataset"]["kind"], "fashion-mnist");
    assert_eq!(configs[1]["train"]["optimizer"]["kind"], "nesterov");
    assert!(configs[1]["runs"][0]["report"]["kept_epoch"].is_number());
    // Part 6, quick: the quick grid's 12 configurations, budgets 1 to 3 epochs, eta 3, one
    // master seed, against the quick grid's 12 trials of 1 epoch read from part2/.
    // Epochs by hand (glorot_search::strategy's rules, s_max = 1): SHA 12 x 1 + 4 x 2 = 20;
    // Hyperband: bracket 1, ceil(2 x 3 / 2) = 3 at 1 epoch then 1 x 2 more, = 5; bracket 0,
    // ceil(2 x 1 / 1) = 2 at 3 epochs, = 6; 11 in all; random: 11 / 3 = 3 configurations
    // of 3 epochs, 9.
    assert_eq!(p6["grid"]["trials"], 12);
    assert_eq!(p6["grid"]["epochs"], 12);
    assert_eq!(
        p6["grid"]["best_val_accuracy"],
        p2["best"]["final_val_accuracy"]
    );
    let strategies = p6["strategies"].as_array().unwrap();
    let names: Vec<&str> = strategies
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sha", "hyperband", "random"]);
    let epochs: Vec<u64> = strategies
        .iter()
        .map(|s| s["runs"][0]["epochs"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [20, 11, 9]);
    assert_eq!(strategies[0]["strategy"]["samples"], 12);
    assert_eq!(strategies[2]["strategy"]["samples"], 3);
    for st in strategies {
        let runs = st["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1, "{st}");
        let r = &runs[0];
        assert_eq!(r["master_seed"], "0");
        assert_eq!(r["complete"], true, "{st}");
        let found = r["best_val_accuracy"].as_f64().unwrap();
        let top = p6["grid"]["best_val_accuracy"].as_f64().unwrap();
        assert!(
            (r["gap"].as_f64().unwrap() - (top - found)).abs() < 1e-12,
            "{r}"
        );
        // Its journal is a strategy search directory with its summary.
        let dir = out.join(r["journal_dir"].as_str().unwrap());
        assert!(
            dir.join("strategy_summary.json").exists(),
            "{}",
            dir.display()
        );
    }

    // docs/results.md's jq, Node.js, pandas and polars recipes find the same best trial.
    recipes::check_result_recipes(&out);

    let csv = std::fs::read_to_string(out.join("part2/trials.csv")).unwrap();
    assert!(csv.starts_with("rank,id,index,hidden,"), "{csv}");
    assert_eq!(csv.lines().count(), 13);
    for name in [
        "part1_training_loss",
        "part1_validation_accuracy",
        "part2_grid_heatmap",
        "part3_gradient_check",
        "part4_activations",
        "part4_tanh_activations",
        "part4_tanh_backprop_gradients",
        "part4_tanh_weight_gradients",
        "part5_fashion_validation_accuracy",
    ] {
        let png = std::fs::read(out.join(format!("plots/{name}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name}.png is not a PNG"
        );
        assert!(png.len() > 10_000, "{name}.png is suspiciously small");
        let svg = std::fs::read_to_string(out.join(format!("plots/{name}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{name}.svg has no text"
        );
    }
    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for needle in [
        "## What ran",
        "## Part 1: initialization",
        "95.93",
        "## Part 2: hyperparameter grid",
        "98.22",
        "## Part 3: gradient checks",
        "## Notebook replay",
        "## Part 4: why Glorot's initialization works",
        "### Variance ratios at initialization",
        "plots/part4_activations.png",
        "## Part 5: Fashion-MNIST",
        "says nothing about the target of 89.5%",
        "## Part 6: search strategies",
        "| grid (Part 2) | 0 | 12 (100%) | 12 |",
        "A quick run says nothing about the issue's target.",
        "plots/part2_grid_heatmap.png",
        "648,010",
    ] {
        assert!(
            report.contains(needle),
            "REPORT.md lacks `{needle}`:\n{report}"
        );
    }

    // The same command again, with the directories given as absolute paths, resumes:
    // every Part 1 run and grid trial is reused (the data's digests decide, not its
    // directory), and the rewritten files still name no place on this machine: the
    // command and the data directory are shown as the report shows them (`…/data`).
    let abs_out = tmp.path().join("res");
    let abs_data = tmp.path().join("data");
    let mut again: Vec<&str> = args.clone();
    again[3] = abs_out.to_str().unwrap();
    again[7] = abs_data.to_str().unwrap();
    let second = glorot(tmp.path(), &again);
    expect_code(&second, 0, "glorot experiments --quick (again)");
    let p1 = check_schema(&out, "part1");
    let manifest = &p1["manifest"];
    let tmp_text = tmp.path().to_str().unwrap();
    assert_eq!(manifest["dataset"]["dir"], "…/data", "{manifest}");
    let command = manifest["command"].as_str().unwrap();
    assert!(
        !command.contains(tmp_text)
            && command.contains("--out …/res --workers 2 --data-dir …/data"),
        "{command}"
    );
    assert!(
        p1["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["cached"] == true)
    );
    let p4 = check_schema(&out, "part4");
    assert!(
        p4["networks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["cached"] == true)
    );
    let p2 = check_schema(&out, "part2");
    assert_eq!(p2["recorded_now"], 0);
    assert_eq!(p2["skipped_now"], 12);
    let p5 = check_schema(&out, "part5");
    assert_eq!(p5["manifest"]["dataset"]["dir"], "…/fashion");
    let p6 = check_schema(&out, "part6");
    for st in p6["strategies"].as_array().unwrap() {
        assert_eq!(st["runs"][0]["recorded_now"], 0, "{st}");
        assert_eq!(st["runs"][0]["complete"], true, "{st}");
    }
    for c in p5["configs"].as_array().unwrap() {
        assert!(
            c["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["cached"] == true),
            "{c}"
        );
    }
}

/// docs/results.md's NumPy recipe, run on weights `glorot train` saved, gives the test
/// accuracy `glorot eval` gives.
#[test]
fn the_numpy_weights_recipe_matches_glorot_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_synthetic_mnist(&data);
    let train: Vec<&str> = [
        "train",
        "--hidden",
        "24,24",
        "--activation",
        "relu",
        "--lr",
        "0.1",
        "--epochs",
        "1",
        "--save-weights",
        "model.safetensors",
        "-q",
    ]
    .into_iter()
    .chain(SYNTH.iter().copied())
    .collect();
    expect_code(&glorot(tmp.path(), &train), 0, "glorot train");
    let eval: Vec<&str> = [
        "eval",
        "--weights",
        "model.safetensors",
        "--split",
        "test",
        "--json",
    ]
    .into_iter()
    .chain(SYNTH.iter().copied())
    .collect();
    let e = glorot(tmp.path(), &eval);
    expect_code(&e, 0, "glorot eval");
    let e: Value = serde_json::from_slice(&e.stdout).unwrap();
    let expected = e["evaluation"]["accuracy"].as_f64().unwrap();
    let samples = e["evaluation"]["samples"].as_u64().unwrap() as usize;
    let Some((accuracy, images)) =
        recipes::numpy_weights_accuracy(&tmp.path().join("model.safetensors"), &data)
    else {
        return;
    };
    assert_eq!(images, samples);
    // At most one image apart: NumPy sums the products in another order.
    let one_image = 100.0 / samples as f64;
    assert!(
        (accuracy - expected).abs() <= one_image + 1e-9,
        "NumPy recipe {accuracy}%, glorot eval {expected}%"
    );
}

#[test]
fn command_line_mistakes_exit_with_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["experiments", "--parts", "7"][..],
        &["experiments", "--replay-notebook", "--replay-parts", "4"],
        &["experiments", "--parts", ""],
        &["experiments", "--replay-notebook", "--replay-trials", "9-2"],
        &["experiments", "--replay-notebook", "--replay-parts", "0"],
        &["experiments", "--replay-notebook", "--replay-parts", "5"],
        &["experiments", "--replay-parts", "1"],
        &["experiments", "--workers", "0"],
    ] {
        let out = glorot(tmp.path(), args);
        expect_code(&out, 2, &args.join(" "));
    }
}

/// The MNIST directory named by `GLOROT_MNIST_DIR` (relative paths from the workspace
/// root, as CI sets `../shared/mnist`).
#[allow(clippy::print_stderr)]
fn mnist_dir(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("GLOROT_MNIST_DIR").filter(|v| !v.is_empty()) else {
        eprintln!("{test}: skipped, GLOROT_MNIST_DIR is not set (it names the MNIST folder)");
        return None;
    };
    let dir = PathBuf::from(dir);
    if dir.is_absolute() {
        return Some(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(if dir.exists() {
        std::fs::canonicalize(&dir).unwrap()
    } else {
        root.join(dir)
    })
}

#[track_caller]
fn assert_rel(found: f64, expected: f64, rel: f64, what: &str) {
    let err = (found - expected).abs() / expected.abs();
    assert!(
        err <= rel,
        "{what}: replayed {found:?}, notebook {expected:?}, relative error {err:e}"
    );
}

/// Issue 9's fast check, through the replay the command runs: the first grid trial after
/// skipping Part 1's draws (Glorot uniform, then normal, then zero networks), and Part 3's
/// row-161 gradient after skipping Part 1, the whole grid and Part 3's first network.
#[test]
fn replay_reproduces_the_first_grid_trial_and_part3() {
    let Some(mnist) = mnist_dir("replay_reproduces_the_first_grid_trial_and_part3") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mnist = mnist.to_string_lossy().into_owned();
    let args = [
        "experiments",
        "--replay-notebook",
        "--replay-parts",
        "2,3",
        "--replay-trials",
        "0",
        "--replay-epochs",
        "1",
        "--out",
        "res",
        "--data-dir",
        &mnist,
    ];
    let out = glorot(tmp.path(), &args);
    expect_code(&out, 0, "glorot experiments --replay-notebook");
    let r = check_schema(&tmp.path().join("res"), "replay");
    let trial = &r["part2"]["trials"][0];
    assert_eq!(trial["trial"], 0);
    let e = &trial["epochs"][0];
    // notebook.txt lines 399-400: the grid's first printed lines (450, ReLU, 0.001, 32).
    assert_rel(
        e["loss"].as_f64().unwrap(),
        2.8215304269028905,
        1e-12,
        "trial 0 loss",
    );
    assert_eq!(e["val_accuracy_text"], "81.18");
    // Line 825: In [12]'s analytic gradient of w0[161][0].
    let analytic = r["part3"][1]["check"]["analytic"][0].as_f64().unwrap();
    assert_rel(analytic, 0.024239615063063553, 1e-12, "w0 row 161 analytic");
    // Lines 859-888: In [13]'s, w1[0][0].
    let analytic = r["part3"][2]["check"]["analytic"][0].as_f64().unwrap();
    assert_rel(analytic, -0.038125702875859306, 1e-12, "w1 row 0 analytic");
    let sections = r["comparison"]["sections"].as_array().unwrap();
    let section = |name: &str| sections.iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(section("part3")["compared"], 45);
    assert_eq!(section("part3")["matched"], 45);
    assert_eq!(section("part2_lines")["compared"], 2);
    assert_eq!(section("part2_lines")["matched"], 2);
    assert_eq!(r["part2"]["fragments"][0]["located_by"], "reference");
}
