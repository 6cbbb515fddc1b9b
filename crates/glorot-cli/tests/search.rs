//! `glorot search` end to end: a tiny grid, resumption after SIGKILL, SIGINT, shards as
//! separate processes, bad grid files.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{Run, Sandbox, curves, kill, read_json, with_data};

/// The `tiny` preset (8 trials of a 8- or 16-unit network, 1 epoch) on the synthetic data.
fn tiny(out: &str) -> Vec<&str> {
    with_data(&[
        "search",
        "run",
        "--grid",
        "tiny",
        "--out",
        out,
        "--workers",
        "2",
        "--blas-threads",
        "1",
        "--oversubscribe",
    ])
}

/// Reads every record of a results directory: id -> file bytes.
fn records(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir.join("trials")) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.starts_with('.')
        })
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (
                name.trim_end_matches(".json").to_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn tiny_grid_end_to_end() {
    let sb = Sandbox::new();
    let r = sb.run(&tiny("results"));
    r.ok();
    assert!(r.stdout.contains("8 of 8 trials"), "{}", r.stdout);
    assert!(r.stdout.contains("best: "), "{}", r.stdout);
    // Not a terminal: plain progress lines on stderr.
    assert!(r.stderr.contains("[8/8] done"), "{}", r.stderr);

    let dir = sb.join("results");
    for f in ["search.json", "grid.json", "summary.json", "trials.csv"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let recs = records(&dir);
    assert_eq!(recs.len(), 8);
    let any: Value = serde_json::from_slice(recs.values().next().unwrap()).unwrap();
    assert_eq!(any["status"]["state"], "ok");
    assert_eq!(any["manifest"]["workers"], 2);
    assert_eq!(any["manifest"]["blas_threads"], 1);
    assert!(
        any["manifest"]["blas"]
            .as_str()
            .unwrap()
            .contains("OpenBLAS")
    );
    assert_eq!(any["epochs"].as_array().unwrap().len(), 1);

    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["total"], 8);
    assert_eq!(summary["finished"], 8);
    assert_eq!(summary["missing"], serde_json::json!([]));
    let ranking = summary["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 8);
    // Best first; ties broken by grid index.
    for w in ranking.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let (x, y) = (
            a["final_val_accuracy"].as_f64().unwrap(),
            b["final_val_accuracy"].as_f64().unwrap(),
        );
        assert!(x > y || (x == y && a["index"].as_u64() < b["index"].as_u64()));
    }
    assert_eq!(summary["best"], ranking[0]);

    // The CSV: a header and one row per trial with the same columns, in rank order.
    let csv = std::fs::read_to_string(dir.join("trials.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 9);
    let columns = lines[0].split(',').count();
    assert!(lines[0].starts_with("rank,id,index,hidden"));
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), columns, "{l}");
    }
    assert!(lines[1].starts_with(&format!("1,{}", ranking[0]["id"].as_str().unwrap())));

    // status / merge / best need only --out (the grid is stored there).
    let st = sb.run(&["search", "status", "--out", "results", "--json"]);
    st.ok();
    let st = st.json();
    assert_eq!(st["complete"], true);
    assert_eq!(
        (st["total"].clone(), st["finished"].clone()),
        (8.into(), 8.into())
    );
    assert_eq!(st["temporary_files"], serde_json::json!([]));
    let human = sb.run(&["search", "status", "--out", "results"]);
    human.ok();
    assert!(
        human.stdout.contains("8/8 trials finished"),
        "{}",
        human.stdout
    );
    let merged = sb.run(&["search", "merge", "--out", "results", "--json"]);
    merged.ok();
    assert_eq!(merged.json(), summary);
    let best = sb.run(&["search", "best", "--out", "results", "--top", "3", "--json"]);
    best.ok();
    let best = best.json();
    assert_eq!(best["best"], summary["best"]);
    assert_eq!(best["top"].as_array().unwrap().len(), 3);

    // Running again does nothing; the data is still checked against the search's.
    let again = sb.run(&with_data(&[
        "search",
        "run",
        "--out",
        "results",
        "--workers",
        "1",
    ]));
    again.ok();
    assert!(
        again.stdout.contains("0 run now, 8 already done"),
        "{}",
        again.stdout
    );
    assert_eq!(records(&dir).len(), 8);
    // Other data on the finished journal is refused, as it is with trials pending, and
    // the summary is not rewritten.
    let written = || {
        std::fs::metadata(dir.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = written();
    let mut other = with_data(&["search", "run", "--out", "results"]);
    other.extend(["--train-limit", "500"]);
    sb.run(&other)
        .expect_code(1)
        .stderr_has(&["different search", "data"]);
    assert_eq!(written(), before, "summary.json was rewritten");

    // The one look at the test set: the best retrained from its seed.
    let t = sb.run(&with_data(&[
        "search", "best", "--out", "results", "--test", "--json", "-q",
    ]));
    t.ok();
    let t = t.json();
    let eval = &t["test"]["evaluation"];
    assert_eq!(eval["id"], summary["best"]["id"]);
    assert_eq!(eval["reproduced_record"], true);
    assert!(eval["test_accuracy"].as_f64().unwrap() > 30.0, "{eval}");
    assert_eq!(t["test"]["test_images"], 300);
    // best_test.json: the key of what determined it and the evaluation (the format of
    // the committed results/part2/best_test.json, shared with `glorot experiments`).
    let stored = read_json(&dir.join("best_test.json"));
    assert_eq!(stored["evaluation"], t["test"]["evaluation"]);
    let key = stored["key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("{} seed=", eval["id"].as_str().unwrap())),
        "{key}"
    );
    // ...on the search's data only.
    sb.run(&[
        "search",
        "best",
        "--out",
        "results",
        "--test",
        "--data-dir",
        "data",
        "--no-verify",
        "--validation-size",
        "200",
        "--train-limit",
        "500",
    ])
    .expect_code(1)
    .stderr_has(&["other data"]);
}

/// `search best --test --save-weights` keeps the retrained model, which `eval` scores as
/// `search best` did; and the `glorot train` command `search best` prints retrains a trial
/// bit for bit (every trial of the tiny grid, not only the best).
#[test]
fn the_best_model_is_saved_and_every_trial_retrains_with_glorot_train() {
    let sb = Sandbox::new();
    sb.run(&tiny("results")).ok();
    let t = sb.run(&with_data(&[
        "search",
        "best",
        "--out",
        "results",
        "--test",
        "--save-weights",
        "models/best.safetensors",
        "--json",
        "-q",
    ]));
    t.ok();
    let t = t.json();
    let best = &t["best"];
    assert_eq!(t["test"]["weights"], "models/best.safetensors");
    // The saved model scores what `search best` reported: the test accuracy and loss of
    // the retraining, and the validation accuracy of the trial's record.
    let test = sb
        .run(&with_data(&[
            "eval",
            "--weights",
            "models/best.safetensors",
            "--split",
            "test",
            "--json",
        ]))
        .json();
    assert_eq!(
        test["evaluation"]["accuracy"],
        t["test"]["evaluation"]["test_accuracy"]
    );
    assert_eq!(
        test["evaluation"]["loss"],
        t["test"]["evaluation"]["test_loss"]
    );
    // The file's metadata names the trial and its seed.
    assert_eq!(test["metadata"]["trial"], best["id"]);
    assert_eq!(
        test["metadata"]["seed"], best["seed"],
        "the same decimal string"
    );
    assert!(test.get("interrupted").is_none());
    let val = sb
        .run(&with_data(&[
            "eval",
            "--weights",
            "models/best.safetensors",
            "--json",
        ]))
        .json();
    assert_eq!(val["evaluation"]["accuracy"], best["final_val_accuracy"]);
    // --save-weights keeps the retraining of --test: alone it is a usage error.
    sb.run(&[
        "search",
        "best",
        "--out",
        "results",
        "--save-weights",
        "x.safetensors",
    ])
    .expect_code(2);

    // The printed command retrains the best trial: same curve, same final accuracy.
    let command = t["reproduce"].as_str().unwrap();
    let human = sb.run(&["search", "best", "--out", "results"]);
    human.ok();
    assert!(human.stdout.contains(command), "{}", human.stdout);
    let mut retrained = 0;
    for path in std::fs::read_dir(sb.join("results/trials")).unwrap() {
        let path = path.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let record = read_json(&path);
        // The command for this trial, as `search best` writes it (see its --help): the
        // record's configuration and seed, the BLAS threads it ran with.
        let c = &record["config"];
        let hidden: Vec<String> = c["hidden"]
            .as_array()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut args: Vec<String> = [
            "train",
            "--hidden",
            &hidden.join(","),
            "--activation",
            c["activation"].as_str().unwrap(),
            "--lr",
            &c["learning_rate"].to_string(),
            "--batch-size",
            &c["batch_size"].to_string(),
            "--epochs",
            &c["epochs"].to_string(),
            "--precision",
            c["precision"].as_str().unwrap(),
            "--seed",
            // The record's seed is a decimal string: passed on as it is.
            record["seed"].as_str().unwrap(),
            "--blas-threads",
            &record["manifest"]["blas_threads"].to_string(),
            "--json",
            "-q",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.extend(crate::support::DATA.iter().map(ToString::to_string));
        if record["id"] == best["id"] {
            // The same flags as the printed command (init and shuffle at their defaults).
            let printed: Vec<&str> = command.split_whitespace().skip(1).collect();
            for flag in ["--hidden", "--activation", "--lr", "--batch-size", "--seed"] {
                let at = |v: &[&str]| {
                    v.iter()
                        .position(|a| *a == flag)
                        .map(|i| v[i + 1].to_owned())
                };
                let mine: Vec<&str> = args.iter().map(String::as_str).collect();
                assert_eq!(at(&printed), at(&mine), "{flag} in {command}");
            }
            let mut exact: Vec<&str> = printed;
            exact.extend(["--json", "-q"]);
            exact.extend(crate::support::DATA);
            let run = sb.run(&exact);
            run.ok();
            assert_eq!(run.json()["final_val_accuracy"], best["final_val_accuracy"]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = sb.run(&args);
        run.ok();
        let run = run.json();
        assert_eq!(
            curves(&run["report"]),
            curves(&record),
            "{}: `glorot {}` does not retrain it",
            record["id"],
            args.join(" ")
        );
        assert_eq!(
            run["final_val_accuracy"], record["final_val_accuracy"],
            "{}",
            record["id"]
        );
        retrained += 1;
    }
    assert_eq!(retrained, 8, "the tiny grid's 8 trials");
}

#[test]
fn axes_from_flags_and_incompatible_results_directories() {
    let sb = Sandbox::new();
    let r = sb.run(&with_data(&[
        "search",
        "run",
        "--out",
        "flags",
        "--hidden",
        "8",
        "--activation",
        "relu,tanh",
        "--lr",
        "0.1",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--precision",
        "f32,f64",
        "--repeats",
        "2",
        "--hidden-layers",
        "1",
        "--master-seed",
        "9",
        "--workers",
        "1",
        "--json",
        "-q",
    ]));
    r.ok();
    let out = r.json();
    // 1 width x 2 activations x 2 precisions x 2 repeats.
    assert_eq!(out["grid_total"], 8);
    assert_eq!(out["complete"], true);
    let grid = read_json(&sb.join("flags/grid.json"));
    assert_eq!(grid["master_seed"], "9");
    assert_eq!(grid["repeats"], serde_json::json!([0, 1]));
    assert_eq!(grid["hidden_layers"], 1);
    // Another master seed in the same directory is refused: its trials would differ.
    sb.run(&with_data(&[
        "search",
        "run",
        "--out",
        "flags",
        "--master-seed",
        "10",
        "--epochs",
        "2",
    ]))
    .expect_code(1)
    .stderr_has(&["master seed"]);
    // So is other data.
    let mut args = with_data(&["search", "run", "--out", "flags", "--epochs", "2"]);
    args.extend(["--train-limit", "100"]);
    sb.run(&args)
        .expect_code(1)
        .stderr_has(&["different search", "data"]);
}

#[test]
fn bad_grid_files_name_the_field_and_exit_1() {
    let sb = Sandbox::new();
    let write = |name: &str, text: &str| std::fs::write(sb.join(name), text).unwrap();
    write(
        "neg.json",
        r#"{"hidden":[8],"activation":["relu"],"learning_rate":[0.1,-0.5],"batch_size":[4]}"#,
    );
    write(
        "zero.toml",
        "hidden = [8]\nactivation = [\"relu\"]\nlearning_rate = [0.1]\nbatch_size = [0]\n",
    );
    write(
        "unknown.toml",
        "hidden = [8]\nactivation = [\"relu\"]\nlearning_rate = [0.1]\nbatch_size = [4]\nlr = 3\n",
    );
    write(
        "act.json",
        r#"{"hidden":[8],"activation":["swish"],"learning_rate":[0.1],"batch_size":[4]}"#,
    );
    write("broken.json", r#"{"hidden":[8],"#);
    write(
        "dup.json",
        r#"{"hidden":[8,8],"activation":["relu"],"learning_rate":[0.1],"batch_size":[4]}"#,
    );
    let cases: &[(&str, &[&str])] = &[
        ("neg.json", &["learning_rate", "-0.5"]),
        ("zero.toml", &["batch_size", "0"]),
        ("unknown.toml", &["unknown field", "lr"]),
        ("act.json", &["swish"]),
        ("broken.json", &["broken.json"]),
        ("dup.json", &["hidden", "appears twice"]),
        ("missing.json", &["missing.json"]),
    ];
    for (file, needles) in cases {
        // No data options: the grid is checked before any data is read.
        let r = sb.run(&["search", "run", "--grid-file", file, "--out", "r"]);
        r.expect_code(1).stderr_has(needles);
        assert!(r.stderr.starts_with("glorot: error: "), "{}", r.stderr);
    }
    assert!(!sb.join("r").exists(), "nothing is written for a bad grid");
    // Status of a directory that holds no search.
    sb.run(&["search", "status", "--out", "nowhere"])
        .expect_code(1)
        .stderr_has(&["holds no search"]);
}

/// Epochs per trial of [`slow_grid`].
const SLOW_EPOCHS: usize = 12;
const SLOW_EPOCHS_ARG: &str = "12";

/// A grid whose trials take long enough to kill the process between and inside them:
/// 6 trials of 12 epochs, a few hundred milliseconds each on a fast machine (2 epochs
/// took 60 ms on CI's machine, too short for the kills to land inside a trial).
fn slow_grid(out: &str) -> Vec<&str> {
    with_data(&[
        "search",
        "run",
        "--out",
        out,
        "--hidden",
        "256",
        "--activation",
        "relu,tanh,sigmoid",
        "--lr",
        "0.05,0.1",
        "--batch-size",
        "4",
        "--epochs",
        SLOW_EPOCHS_ARG,
        "--workers",
        "1",
        "--blas-threads",
        "1",
    ])
}

/// Waits until `dir` holds at least `n` records (or the child exits); returns the count.
fn wait_for_records(child: &mut Child, dir: &Path, n: usize) -> usize {
    let start = Instant::now();
    loop {
        let count = records(dir).len();
        if count >= n || start.elapsed() > Duration::from_secs(60) {
            return count;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return records(dir).len();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn resume_after_sigkill_loses_only_trials_in_flight() {
    let sb = Sandbox::new();
    let dir = sb.join("killed");
    let mut finished_before: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // Kill with 0 records (during start-up or the first trial), then as soon as 1 more is
    // recorded (the next trial just started), then 50 ms after 1 more (inside a trial);
    // each time, resume from what is on disk.
    for (target, pause_ms) in [(0, 20), (1, 0), (1, 50)] {
        let mut child = sb
            .cmd(&slow_grid("killed"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if target > 0 {
            wait_for_records(&mut child, &dir, finished_before.len() + target);
        }
        std::thread::sleep(Duration::from_millis(pause_ms));
        // `Child::kill` is SIGKILL on Unix, sent without spawning a `kill` process.
        child.kill().expect("SIGKILL is delivered");
        let status = child.wait().unwrap();
        assert!(!status.success(), "the process was killed");
        let now = records(&dir);
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SIGKILL with {} of 6 trials recorded", now.len());
        }
        // Nothing recorded before is lost or rewritten.
        for (id, bytes) in &finished_before {
            assert_eq!(now.get(id), Some(bytes), "record {id} changed after a kill");
        }
        // Every record on disk is complete JSON.
        for (id, bytes) in &now {
            let v: Value =
                serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("torn record {id}: {e}"));
            assert_eq!(v["id"], id.as_str());
        }
        finished_before = now;
    }
    assert!(
        finished_before.len() < 6,
        "the kills came too late to test anything"
    );
    let status = sb.run(&["search", "status", "--out", "killed", "--json"]);
    status.ok();
    assert_eq!(status.json()["complete"], false);

    // Resume to the end.
    sb.run(&slow_grid("killed")).ok();
    let after = records(&dir);
    assert_eq!(after.len(), 6, "every trial exactly once");
    for (id, bytes) in &finished_before {
        assert_eq!(
            after.get(id),
            Some(bytes),
            "record {id} was rewritten on resume"
        );
    }
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["finished"], 6);

    // The interrupted-and-resumed search equals one run straight through.
    sb.run(&slow_grid("straight")).ok();
    let straight = read_json(&sb.join("straight/summary.json"));
    assert_eq!(summary["ranking"], straight["ranking"]);
    assert_eq!(summary["best"], straight["best"]);
    for (id, bytes) in &after {
        let a: Value = serde_json::from_slice(bytes).unwrap();
        let b = read_json(&sb.join(&format!("straight/trials/{id}.json")));
        assert_eq!(
            curves(&a),
            curves(&b),
            "{id}: curves differ after resumption"
        );
    }
}

#[test]
fn sigint_stops_between_batches_and_records_nothing_in_flight() {
    let sb = Sandbox::new();
    let dir = sb.join("stopped");
    let mut child = sb
        .cmd(&slow_grid("stopped"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = wait_for_records(&mut child, &dir, 1);
    kill(&mut child, "-INT");
    let out = child.wait_with_output().unwrap();
    let r = Run::from(out, &["search", "run", "(SIGINT)"]);
    assert!(
        seen < 6,
        "the grid finished before the signal: nothing was tested"
    );
    r.expect_code(1)
        .stderr_has(&["stopped by a signal", "resume"]);
    let recs = records(&dir);
    assert!(recs.len() < 6);
    // Every record is a complete trial.
    for bytes in recs.values() {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(v["epochs"].as_array().unwrap().len(), SLOW_EPOCHS);
    }
}

#[test]
fn shards_as_separate_processes_merge_to_the_single_process_summary() {
    let sb = Sandbox::new();
    // One process, the whole grid.
    sb.run(&tiny("single")).ok();
    // Two processes at once into one directory: shard 0/2 from the flag, shard 1 from
    // Slurm's job-array variables.
    let spawn = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = sb.cmd(args);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let mut shard0 = tiny("sharded");
    shard0.extend(["--shard", "0/2"]);
    let shard1 = tiny("sharded");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(&[], &shard0));
        let b = s.spawn(|| {
            spawn(
                &[
                    ("SLURM_ARRAY_TASK_ID", "6"),
                    ("SLURM_ARRAY_TASK_MIN", "5"),
                    ("SLURM_ARRAY_TASK_COUNT", "2"),
                ],
                &shard1,
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let a = Run::from(a, &shard0);
    let b = Run::from(b, &shard1);
    a.ok();
    b.ok();
    assert!(b.stderr.contains("shard 1/2 has 4"), "{}", b.stderr);

    let merged = sb.run(&["search", "merge", "--out", "sharded", "--json"]);
    merged.ok();
    let merged = merged.json();
    let single = read_json(&sb.join("single/summary.json"));
    assert_eq!(merged["ranking"], single["ranking"]);
    assert_eq!(merged["best"], single["best"]);
    assert_eq!(merged["finished"], 8);
    // Bit-identical curves in every trial, whichever process ran it.
    let single_recs = records(&sb.join("single"));
    let sharded_recs = records(&sb.join("sharded"));
    assert_eq!(
        single_recs.keys().collect::<Vec<_>>(),
        sharded_recs.keys().collect::<Vec<_>>()
    );
    for (id, bytes) in &single_recs {
        let x: Value = serde_json::from_slice(bytes).unwrap();
        let y: Value = serde_json::from_slice(&sharded_recs[id]).unwrap();
        assert_eq!(curves(&x), curves(&y), "{id}");
        assert_eq!(x["seed"], y["seed"]);
    }
    // Per-shard counts from the stored shard count.
    let st = sb
        .run(&["search", "status", "--out", "sharded", "--json"])
        .json();
    let shards = st["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    for s in shards {
        assert_eq!(
            (s["total"].as_u64(), s["finished"].as_u64()),
            (Some(4), Some(4))
        );
    }
    // A Kubernetes index without a count is refused with a hint.
    let r = spawn(&[("JOB_COMPLETION_INDEX", "1")], &tiny("k8s"));
    Run::from(r, &["search", "run", "(JOB_COMPLETION_INDEX)"])
        .expect_code(1)
        .stderr_has(&["GLOROT_SHARD_COUNT"]);
    // With the count, the index picks the shard.
    let r = spawn(
        &[("JOB_COMPLETION_INDEX", "1"), ("GLOROT_SHARD_COUNT", "4")],
        &tiny("k8s"),
    );
    let r = Run::from(r, &["search", "run", "(k8s)"]);
    r.ok();
    assert!(r.stderr.contains("shard 1/4 has 2"), "{}", r.stderr);
    assert_eq!(records(&sb.join("k8s")).len(), 2);
}

#[test]
fn unreadable_records_are_set_aside_and_rerun_stray_files_ignored_newer_ones_refused() {
    let sb = Sandbox::new();
    sb.run(&tiny("bad")).ok();
    let dir = sb.join("bad");
    let trials = dir.join("trials");
    let good = records(&dir);
    let ids: Vec<&String> = good.keys().collect();
    // A truncated record, an empty one, a stray file, and temporary files of a killed
    // writer (pid 4194304 is above Linux's largest pid_max, so it is no live process):
    // one an hour old, one fresh (kept: a writer on another host may own that pid).
    let truncated = trials.join(format!("{}.json", ids[0]));
    std::fs::write(&truncated, &good[ids[0]][..good[ids[0]].len() / 2]).unwrap();
    let empty = trials.join(format!("{}.json", ids[1]));
    std::fs::write(&empty, b"").unwrap();
    std::fs::write(trials.join("notes.json"), b"{\"note\": 1}").unwrap();
    let old_tmp = [
        trials.join(format!(".{}.json.4194304.7.tmp", ids[2])),
        dir.join(".summary.json.4194304.8.tmp"),
    ];
    for p in &old_tmp {
        std::fs::write(p, b"{").unwrap();
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    let fresh_tmp = trials.join(format!(".{}.json.4194304.9.tmp", ids[3]));
    std::fs::write(&fresh_tmp, b"{").unwrap();

    // status and merge count the six real records and say what they skipped.
    let st = sb.run(&["search", "status", "--out", "bad", "--json"]);
    st.ok().stderr_has(&[
        "cannot be read",
        "the file is empty",
        "notes.json",
        "ignored",
    ]);
    let st = st.json();
    assert_eq!(st["finished"], 6);
    assert_eq!(st["unreadable_records"].as_array().unwrap().len(), 2);
    assert_eq!(st["ignored_files"].as_array().unwrap().len(), 1);
    sb.run(&["search", "merge", "--out", "bad"])
        .ok()
        .stderr_has(&["cannot be read"]);

    // A run moves the unreadable records aside, with the reason, and reruns their trials.
    let r = sb.run(&tiny("bad"));
    r.ok().stderr_has(&[
        "moved it to",
        "quarantine",
        "removed 2 temporary files",
        "notes.json",
    ]);
    assert!(r.stdout.contains("8 of 8 trials"), "{}", r.stdout);
    let after = records(&dir);
    for id in &ids {
        let a: Value = serde_json::from_slice(&good[*id]).unwrap();
        let b: Value = serde_json::from_slice(&after[*id]).unwrap();
        assert_eq!(curves(&a), curves(&b), "{id}");
    }
    let quarantine = trials.join("quarantine");
    let reason =
        std::fs::read_to_string(quarantine.join(format!("{}.json.reason", ids[1]))).unwrap();
    assert!(reason.contains("empty"), "{reason}");
    assert!(quarantine.join(format!("{}.json", ids[0])).is_file());
    assert!(quarantine.join(format!("{}.json.reason", ids[0])).is_file());
    for p in &old_tmp {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    assert!(fresh_tmp.exists(), "a fresh temporary file was removed");

    // A record of a newer schema version is refused by every command, naming the version.
    let newer = trials.join(format!("{}.json", ids[4]));
    let mut v: Value = serde_json::from_slice(&after[ids[4]]).unwrap();
    v["schema_version"] = 3.into();
    std::fs::write(&newer, serde_json::to_vec(&v).unwrap()).unwrap();
    for args in [
        tiny("bad"),
        vec!["search", "status", "--out", "bad"],
        vec!["search", "merge", "--out", "bad"],
    ] {
        sb.run(&args)
            .expect_code(1)
            .stderr_has(&["schema version 3", "reads versions up to 2"]);
    }
}
