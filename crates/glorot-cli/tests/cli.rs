//! Help, usage errors, `train`, `eval` and `gradcheck` through the real binary.

use crate::support::{Sandbox, read_json, with_data};

#[test]
fn every_command_has_help_with_examples() {
    let sb = Sandbox::new();
    for cmd in [
        &["train"][..],
        &["eval"],
        &["gradcheck"],
        &["gradcheck", "notebook"],
        &["search"],
        &["search", "run"],
        &["search", "status"],
        &["search", "merge"],
        &["search", "best"],
        &["gradcheck", "full"],
        &["experiments"],
        &["data"],
        &["data", "fetch"],
        &["data", "verify"],
        &["data", "info"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let r = sb.run(&args);
        r.ok();
        assert!(
            r.stdout.contains("Usage: glorot"),
            "{args:?}:\n{}",
            r.stdout
        );
        // The examples themselves parse: `every_command_has_examples_and_they_parse` in
        // src/main.rs walks clap's whole command tree.
        assert!(r.stdout.contains("Examples:"), "{args:?}:\n{}", r.stdout);
        assert!(r.stdout.contains("\n  glorot "), "{args:?}:\n{}", r.stdout);
    }
    // The top level lists the commands; no arguments is a usage error that shows help.
    let top = sb.run(&["--help"]);
    top.ok();
    for c in ["train", "eval", "gradcheck", "search", "data"] {
        assert!(top.stdout.contains(c), "{}", top.stdout);
    }
    sb.run(&[]).expect_code(2);
    let v = sb.run(&["--version"]);
    v.ok();
    assert!(v.stdout.starts_with("glorot "), "{}", v.stdout);
}

#[test]
fn bad_flags_are_usage_errors_with_exit_code_2() {
    let sb = Sandbox::new();
    let cases: &[&[&str]] = &[
        &["frobnicate"],
        &["train", "--activation", "swish"],
        &["train", "--lr", "-1"],
        &["train", "--lr", "0"],
        &["train", "--batch-size", "0"],
        &["train", "--hidden", "500,x"],
        &["train", "--precision", "f16"],
        &["train", "--init", "normal:0:-1"],
        &["train", "--epochs"],
        &["eval"],
        &["eval", "--weights", "m.safetensors", "--split", "holdout"],
        &["search", "run", "--workers", "0"],
        &["search", "run", "--shard", "2/2"],
        &["search", "run", "--shard", "two"],
        &["search", "run", "--grid", "huge"],
        &["search", "run", "--grid", "tiny", "--grid-file", "g.json"],
        // A thread plan that oversubscribes any machine.
        &[
            "search",
            "run",
            "--grid",
            "tiny",
            "--workers",
            "4096",
            "--blas-threads",
            "4096",
        ],
        &["gradcheck", "--stencil", "central3"],
        &["gradcheck", "--layers", "5"],
        &["gradcheck", "notebook", "--param", "q7"],
    ];
    for args in cases {
        let r = sb.run(args);
        r.expect_code(2);
        assert!(
            r.stderr.contains("error"),
            "{args:?}: no error message:\n{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{args:?}: printed {}", r.stdout);
    }
    // A command group without its subcommand shows its help, as a usage error.
    sb.run(&["search"]).expect_code(2);
    sb.run(&["data"]).expect_code(2);
}

/// `--optimizer adam` with a schedule and warm-up learns the synthetic classes, records
/// its configuration and every epoch's learning rate; the default run records neither
/// (its config is written as before optimizers existed).
#[test]
fn train_with_adam_a_schedule_and_warm_up_learns() {
    let sb = Sandbox::new();
    let r = sb.run(&with_data(&[
        "train",
        "--hidden",
        "24",
        "--head",
        "softmax",
        "--optimizer",
        "adam",
        "--lr",
        "0.002",
        "--weight-decay",
        "1e-4",
        "--lr-schedule",
        "step:1:0.5",
        "--warmup",
        "1",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--seed",
        "4",
        "--test",
        "--json",
        "-q",
    ]));
    r.ok();
    let run = r.json();
    assert_eq!(
        run["train"]["optimizer"],
        serde_json::json!({"kind": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-4})
    );
    assert_eq!(
        run["train"]["lr_schedule"],
        serde_json::json!({"kind": "step", "every": 1, "gamma": 0.5})
    );
    assert_eq!(run["train"]["warmup_epochs"], 1);
    // Warm-up epoch 1 at 0.002 / 2, then 0.002 and 0.001 (hand calculation, see
    // `glorot_mlp::schedule`).
    let lrs: Vec<f64> = run["report"]["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, [0.001, 0.002, 0.001]);
    // Ten classes: chance is 10 %; the synthetic classes are easy.
    let acc = run["final_val_accuracy"].as_f64().unwrap();
    assert!(acc > 50.0, "validation accuracy {acc}");
    assert!(run["report"]["test_accuracy"].as_f64().unwrap() > 50.0);

    // The default: no optimizer, schedule or warm-up in the config; the rate in the curve.
    let d = sb.run(&with_data(&[
        "train", "--hidden", "8", "--epochs", "1", "--json", "-q",
    ]));
    d.ok();
    let d = d.json();
    let train = d["train"].as_object().unwrap();
    for absent in ["optimizer", "lr_schedule", "warmup_epochs"] {
        assert!(!train.contains_key(absent), "{train:?}");
    }
    assert_eq!(d["report"]["epochs"][0]["lr"], 0.01);
}

/// `--early-stopping` records the kept epoch and why training stopped, and the test
/// accuracy and saved weights are the kept epoch's: `glorot eval` of the saved weights
/// gives the reported test accuracy, and a run of exactly the kept epoch's length gives the
/// same weights and test accuracy. Without the flag, neither field is written.
#[test]
fn early_stopping_keeps_tests_and_saves_the_best_epoch() {
    let sb = Sandbox::new();
    let train = |epochs: &str, extra: &[&str], weights: &str| {
        let mut args = vec![
            "train",
            "--hidden",
            "16",
            "--lr",
            "2",
            "--batch-size",
            "8",
            "--epochs",
            epochs,
            "--seed",
            "3",
            "--test",
            "--json",
            "-q",
            "--save-weights",
            weights,
        ];
        args.extend_from_slice(extra);
        let r = sb.run(&with_data(&args));
        r.ok();
        r.json()
    };
    // Patience 30 never stops a 12-epoch run: the best epoch is kept at the end.
    let run = train(
        "12",
        &["--early-stopping", "30", "--early-stopping-on", "loss"],
        "es.safetensors",
    );
    assert_eq!(
        run["train"]["early_stopping"],
        serde_json::json!({"patience": 30, "monitor": "loss"})
    );
    let report = &run["report"];
    assert_eq!(report["stop_reason"], "completed");
    let epochs = report["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 12);
    let kept = report["kept_epoch"].as_u64().unwrap() as usize;
    let best_loss = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(epochs[kept - 1]["val_loss"].as_f64().unwrap(), best_loss);
    assert_eq!(run["final_val_accuracy"], epochs[kept - 1]["val_accuracy"]);
    // The same seed for exactly `kept` epochs: the same weights, the same test accuracy.
    let short = train(&kept.to_string(), &[], "short.safetensors");
    assert_eq!(short["report"]["test_accuracy"], report["test_accuracy"]);
    assert!(short["report"].get("kept_epoch").is_none());
    assert!(short["report"].get("stop_reason").is_none());
    assert!(short["train"].get("early_stopping").is_none());
    // The same safetensors header (as JSON: its metadata's key order varies) and bytes.
    let parts = |name: &str| {
        let bytes = std::fs::read(sb.join(name)).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        (header, bytes[8 + n..].to_vec())
    };
    assert!(
        parts("es.safetensors") == parts("short.safetensors"),
        "the saved weights are the kept epoch's"
    );
    // Patience 1 stops at the first epoch that does not improve on the loss.
    let stopped = train(
        "12",
        &["--early-stopping", "1", "--early-stopping-on", "loss"],
        "p1.safetensors",
    );
    let losses: Vec<f64> = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    let first_worse = (1..losses.len())
        .find(|&i| losses[i] >= losses[..i].iter().copied().fold(f64::INFINITY, f64::min));
    match first_worse {
        Some(i) => {
            assert_eq!(stopped["report"]["stop_reason"], "early_stopped");
            assert_eq!(stopped["report"]["epochs"].as_array().unwrap().len(), i + 1);
            assert_eq!(
                stopped["report"]["kept_epoch"].as_u64().unwrap() as usize,
                i
            );
        }
        None => assert_eq!(stopped["report"]["stop_reason"], "completed"),
    }
    // The summary says so too.
    let r = sb.run(&with_data(&[
        "train",
        "--hidden",
        "16",
        "--lr",
        "2",
        "--batch-size",
        "8",
        "--epochs",
        "12",
        "--seed",
        "3",
        "--early-stopping",
        "30",
        "--early-stopping-on",
        "loss",
        "-q",
    ]));
    r.ok();
    assert!(
        r.stdout
            .contains(&format!("kept the weights of epoch {kept}")),
        "{}",
        r.stdout
    );
    // --early-stopping-on alone, and a zero patience, are usage errors.
    for bad in [
        &["--early-stopping-on", "loss"][..],
        &["--early-stopping", "0"],
    ] {
        let mut args = vec!["train", "--data-dir", "nowhere"];
        args.extend_from_slice(bad);
        sb.run(&args).expect_code(2);
    }
}

/// Bad optimizer and schedule values are usage errors (exit 2) that name the flag, before
/// any data is read.
#[test]
fn bad_optimizer_and_schedule_values_exit_2() {
    let sb = Sandbox::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--optimizer", "rmsprop"], "rmsprop"),
        (
            &["--optimizer", "momentum", "--momentum", "1"],
            "--momentum 1",
        ),
        (
            &["--optimizer", "nesterov", "--momentum", "0"],
            "--momentum 0",
        ),
        (&["--optimizer", "adam", "--beta1", "1.5"], "--beta1 1.5"),
        (&["--optimizer", "adamw", "--beta2", "-0.1"], "--beta2 -0.1"),
        (&["--optimizer", "adam", "--eps", "0"], "--eps 0"),
        (&["--weight-decay", "-1"], "--weight-decay -1"),
        (&["--weight-decay", "nan"], "--weight-decay NaN"),
        (&["--momentum", "0.9"], "--momentum applies to"),
        (
            &["--optimizer", "momentum", "--beta1", "0.9"],
            "--beta1 applies to",
        ),
        (&["--lr-schedule", "linear"], "step:EVERY:GAMMA"),
        (&["--lr-schedule", "step:0:0.5"], "lr_schedule.every"),
        (&["--lr-schedule", "step:2:half"], "lr_schedule.gamma"),
        (&["--lr-schedule", "plateau:2:1.5"], "lr_schedule.factor"),
        (
            &["--lr-schedule", "cosine:0.5", "--lr", "0.1"],
            "lr_schedule.min_lr",
        ),
        (
            &["--warmup", "10", "--epochs", "10"],
            "--warmup 10 must be less than --epochs 10",
        ),
        (&["--warmup", "-1"], "-1"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["train", "--data-dir", "nowhere"];
        args.extend_from_slice(flags);
        let r = sb.run(&args);
        r.expect_code(2).stderr_has(&["error", message]);
        assert!(r.stdout.is_empty(), "{args:?}: printed {}", r.stdout);
    }
}

#[test]
fn values_in_error_messages_are_as_written() {
    let sb = Sandbox::new();
    sb.run(&["search", "run", "--lr", "0.1,0.10", "--out", "r"])
        .expect_code(2)
        .stderr_has(&["0.1 and 0.10 are the same learning rate"]);
    let r = sb.run(&["train", "--init", "normal:0:-1"]);
    r.expect_code(2).stderr_has(&["`normal:0:-1`"]);
    assert!(!r.stderr.contains("_1"), "{}", r.stderr);
}

#[test]
fn runtime_failures_exit_1_with_the_cause_chain() {
    let sb = Sandbox::new();
    // A data directory without the files: names the directory and what is missing.
    std::fs::create_dir_all(sb.join("empty")).unwrap();
    sb.run(&["train", "--data-dir", "empty", "--epochs", "1"])
        .expect_code(1)
        .stderr_has(&["glorot: error:", "empty"]);
    // Weights that do not exist.
    sb.run(&with_data(&["eval", "--weights", "missing.safetensors"]))
        .expect_code(1)
        .stderr_has(&["missing.safetensors"]);
    // A file that is not safetensors.
    std::fs::write(sb.join("junk.safetensors"), b"hello").unwrap();
    sb.run(&with_data(&["eval", "--weights", "junk.safetensors"]))
        .expect_code(1)
        .stderr_has(&["junk.safetensors", "safetensors"]);
    // Real MNIST digests do not match synthetic files: refused unless --no-verify.
    sb.run(&["train", "--data-dir", "data", "--validation-size", "200"])
        .expect_code(1)
        .stderr_has(&["SHA-256"]);
}

#[test]
fn train_then_eval_round_trips_through_saved_weights() {
    let sb = Sandbox::new();
    let r = sb.run(&with_data(&[
        "train",
        "--hidden",
        "24,24",
        "--activation",
        "relu",
        "--lr",
        "0.1",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--out",
        "runs/curves.json",
        "--save-weights",
        "runs/model.safetensors",
        "--test",
        "--json",
        "-q",
    ]));
    r.ok();
    let run = r.json();
    // The file and stdout hold the same document.
    assert_eq!(read_json(&sb.join("runs/curves.json")), run);
    assert_eq!(run["model"]["layers"], serde_json::json!([784, 24, 24, 10]));
    assert_eq!(run["train"]["seed"], "3", "a seed is a decimal string");
    assert_eq!(run["data"]["train"], 1000);
    assert_eq!(run["data"]["validation"], 200);
    let epochs = run["report"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    let final_acc = run["final_val_accuracy"].as_f64().unwrap();
    // Ten classes: chance is 10 %; the synthetic classes are easy.
    assert!(final_acc > 50.0, "validation accuracy {final_acc}");
    assert!(run["report"]["test_accuracy"].as_f64().unwrap() > 50.0);
    assert!(!run["manifest"]["git_revision"].as_str().unwrap().is_empty());
    assert!(
        run["manifest"]["blas"]
            .as_str()
            .unwrap()
            .contains("OpenBLAS")
    );

    // eval on the validation split reproduces the last epoch's numbers exactly.
    let e = sb.run(&with_data(&[
        "eval",
        "--weights",
        "runs/model.safetensors",
        "--json",
    ]));
    e.ok();
    let e = e.json();
    assert_eq!(e["split"], "validation");
    assert_eq!(e["evaluation"]["accuracy"].as_f64(), Some(final_acc));
    assert_eq!(e["evaluation"]["loss"], epochs[1]["val_loss"]);
    assert_eq!(e["evaluation"]["samples"], 200);
    // And on the test split, the test numbers of the run.
    let t = sb
        .run(&with_data(&[
            "eval",
            "--weights",
            "runs/model.safetensors",
            "--split",
            "test",
            "--json",
        ]))
        .json();
    assert_eq!(t["evaluation"]["accuracy"], run["report"]["test_accuracy"]);

    // Training goes on from the saved weights (architecture from the file).
    let more = sb.run(&with_data(&[
        "train",
        "--from-weights",
        "runs/model.safetensors",
        "--epochs",
        "1",
        "--lr",
        "0.1",
        "--json",
        "-q",
    ]));
    more.ok();
    let more = more.json();
    assert_eq!(more["model"], run["model"]);
    assert_eq!(more["from_weights"], "runs/model.safetensors");
    // A contradicting architecture is refused, naming the difference.
    sb.run(&with_data(&[
        "train",
        "--from-weights",
        "runs/model.safetensors",
        "--hidden",
        "8,8",
        "--epochs",
        "1",
    ]))
    .expect_code(1)
    .stderr_has(&["differs"]);

    // The same seed gives the same curve (f32, same thread count).
    let again = sb
        .run(&with_data(&[
            "train",
            "--hidden",
            "24,24",
            "--activation",
            "relu",
            "--lr",
            "0.1",
            "--batch-size",
            "16",
            "--epochs",
            "2",
            "--seed",
            "3",
            "--json",
            "-q",
        ]))
        .json();
    assert_eq!(
        crate::support::curves(&again["report"]),
        crate::support::curves(&run["report"])
    );
}

/// Ctrl-C (SIGINT) in the middle of `glorot train --save-weights`: the weights reached so
/// far are saved, marked interrupted in the file and in the JSON, and `eval` reads them.
#[test]
fn sigint_during_training_saves_the_weights_reached_marked_interrupted() {
    use std::io::{BufRead, BufReader, Read};
    let sb = Sandbox::new();
    // 1000 batches of one image per epoch, far more epochs than the test waits for.
    let args = with_data(&[
        "train",
        "--hidden",
        "32",
        "--lr",
        "0.1",
        "--batch-size",
        "1",
        "--epochs",
        "1000",
        "--out",
        "runs/curves.json",
        "--save-weights",
        "runs/model.safetensors",
        "--json",
    ]);
    let mut child = sb
        .cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first epoch's line (stderr is not a terminal: one line per epoch).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the training ended before its first epoch:\n{seen}"
        );
        seen.push_str(&line);
        if line.trim_start().starts_with("epoch") && line.contains("accuracy") {
            break;
        }
    }
    crate::support::kill(&mut child, "-INT");
    stderr.read_to_string(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = crate::support::Run::from(
        std::process::Output {
            status: out.status,
            stdout: out.stdout,
            stderr: seen.into_bytes(),
        },
        &["train", "(SIGINT)"],
    );
    r.expect_code(1).stderr_has(&[
        "interrupted after epoch ",
        ": weights saved to runs/model.safetensors (marked interrupted)",
    ]);
    let run = r.json();
    assert_eq!(read_json(&sb.join("runs/curves.json")), run);
    assert_eq!(run["report"]["status"]["kind"], "cancelled", "{run}");
    assert_eq!(run["weights"], "runs/model.safetensors");
    let at = &run["interrupted"];
    let (epoch, batch) = (at["epoch"].as_u64().unwrap(), at["batch"].as_u64().unwrap());
    assert_eq!(at["batches"], 1000);
    assert!(epoch >= 1 && (1..=1000).contains(&batch), "{at}");
    let finished = run["report"]["epochs"].as_array().unwrap().len() as u64;
    // Stopped within the epoch after the last finished one (possibly after its last
    // batch, before its validation), or before the next epoch started.
    assert!(
        epoch == finished + 1 || (epoch == finished && batch == 1000),
        "{at} with {finished} finished epochs"
    );

    // eval reads the file, says it is interrupted, and the weights are trained ones.
    let e = sb.run(&with_data(&[
        "eval",
        "--weights",
        "runs/model.safetensors",
        "--json",
    ]));
    e.ok()
        .stderr_has(&["holds the weights of an interrupted training (stopped after epoch"]);
    let e = e.json();
    assert_eq!(&e["interrupted"], at);
    // At least one epoch at lr 0.1 on the synthetic classes (chance: 10 %).
    assert!(e["evaluation"]["accuracy"].as_f64().unwrap() > 50.0, "{e}");
    // Stopped after a validated epoch: the weights are exactly those it validated.
    if epoch == finished {
        let last = &run["report"]["epochs"][finished as usize - 1];
        assert_eq!(e["evaluation"]["loss"], last["val_loss"]);
    }
    // A finished training's file carries no mark.
    sb.run(&with_data(&[
        "train",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--save-weights",
        "done.safetensors",
        "-q",
    ]))
    .ok();
    let e = sb.run(&with_data(&[
        "eval",
        "--weights",
        "done.safetensors",
        "--json",
    ]));
    assert!(e.ok().json().get("interrupted").is_none());
    assert!(!e.stderr.contains("interrupted"), "{}", e.stderr);
}

#[test]
fn train_in_f64_without_shuffling_and_human_output() {
    let sb = Sandbox::new();
    let r = sb.run(&with_data(&[
        "train",
        "--hidden",
        "12",
        "--activation",
        "sigmoid",
        "--init",
        "he_uniform",
        "--head",
        "softmax",
        "--precision",
        "f64",
        "--shuffle",
        "never",
        "--epochs",
        "1",
        "--lr",
        "0.5",
        "--save-weights",
        "m64.safetensors",
    ]));
    r.ok();
    assert!(r.stdout.contains("validation accuracy"), "{}", r.stdout);
    assert!(
        r.stdout.contains("saved weights to m64.safetensors"),
        "{}",
        r.stdout
    );
    // Progress went to stderr, one line per epoch.
    assert!(r.stderr.contains("epoch   1/1"), "{}", r.stderr);
    let e = sb
        .run(&with_data(&[
            "eval",
            "--weights",
            "m64.safetensors",
            "--json",
        ]))
        .json();
    assert_eq!(e["precision"], "f64");
    assert_eq!(e["model"]["head"], "softmax_cross_entropy");
    assert_eq!(e["model"]["init"]["kind"], "he_uniform");
}

#[test]
fn gradcheck_passes_and_can_fail() {
    let sb = Sandbox::new();
    let r = sb.run(&["gradcheck", "--json"]);
    r.ok();
    let checks = r.json();
    let checks = checks.as_array().unwrap();
    // Four activations (ReLU, sigmoid, tanh, softsign) x two heads (the defaults), every
    // entry of every parameter.
    assert_eq!(checks.len(), 8);
    for c in checks {
        assert_eq!(c["passed"], true, "{c}");
        // 10-6-5-4: 10*6+6 + 6*5+5 + 5*4+4 = 125 parameters, minus ReLU kinks.
        let n = c["checked"].as_u64().unwrap() + c["kinks"].as_u64().unwrap();
        assert_eq!(n, 125, "{c}");
    }
    // An impossible tolerance fails, with exit code 1 and the worst entry named.
    sb.run(&[
        "gradcheck",
        "--activation",
        "tanh",
        "--head",
        "sigmoid_bce",
        "--tolerance",
        "1e-300",
        "--floor",
        "1e-300",
    ])
    .expect_code(1)
    .stderr_has(&["gradient check failed", "tanh/sigmoid_bce"]);
}

#[test]
fn notebook_gradcheck_follows_the_notebook_procedure() {
    let sb = Sandbox::new();
    let r = sb.run(&with_data(&[
        "gradcheck",
        "notebook",
        "--hidden",
        "16,16",
        "--param",
        "w0",
        "--row",
        "90",
        "--entries",
        "10",
        "--json",
    ]));
    r.ok();
    let c = r.json();
    assert_eq!(c["param"], "w0");
    assert_eq!(c["row"], 90);
    assert_eq!(c["analytic"].as_array().unwrap().len(), 10);
    let steps = c["steps"].as_array().unwrap();
    // The notebook's loops: k = 1..4 outside, i = 0..4 inside, N = k * 10^i.
    assert_eq!(steps.len(), 20);
    let ns: Vec<f64> = steps.iter().map(|s| s["n"].as_f64().unwrap()).collect();
    assert_eq!(&ns[..6], &[1.0, 10.0, 100.0, 1000.0, 10000.0, 2.0]);
    // Out-of-range rows are refused with a message, not a panic.
    sb.run(&with_data(&[
        "gradcheck",
        "notebook",
        "--hidden",
        "16,16",
        "--row",
        "784",
    ]))
    .expect_code(1)
    .stderr_has(&["w0"]);
}

/// The segments of an error line (`glorot: error: a: b: c` gives `a`, `b`, `c`) where one
/// repeats another or is contained in an earlier one: a cause printed twice.
fn repeated_segments(line: &str) -> Vec<String> {
    let message = line.strip_prefix("glorot: error: ").unwrap_or(line);
    let segments: Vec<&str> = message.split(": ").map(str::trim).collect();
    let mut repeats = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        // Short segments (`a`, `lr`) may meet by chance inside longer words.
        if s.len() < 6 {
            continue;
        }
        if segments[..i].iter().any(|earlier| earlier.contains(s)) {
            repeats.push((*s).to_owned());
        }
    }
    repeats
}

#[test]
fn the_repetition_check_sees_repeated_causes() {
    assert_eq!(
        repeated_segments(
            "glorot: error: data/x.gz: corrupt gzip data: incomplete deflate stream: incomplete deflate stream"
        ),
        ["incomplete deflate stream"]
    );
    assert_eq!(
        repeated_segments("glorot: error: cannot read m.safetensors: m.safetensors: No such file"),
        ["m.safetensors"]
    );
    assert!(repeated_segments("glorot: error: cannot read m.safetensors: No such file").is_empty());
}

/// Many ways to fail, each printing its cause chain once: no segment of an error message
/// repeats another (the chain printer's guard in common.rs, and library errors whose
/// `Display` leaves the cause to `source()`).
#[test]
fn no_error_message_repeats_a_cause() {
    use glorot_mnist::FileRole;
    let sb = Sandbox::new();
    let copy = |name: &str| {
        let dir = sb.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for role in FileRole::ALL {
            std::fs::copy(
                sb.join("data").join(role.gz_name()),
                dir.join(role.gz_name()),
            )
            .unwrap();
        }
        dir
    };
    let images = FileRole::TrainImages.gz_name();
    // Gzip magic, then garbage: the decompressor's own error.
    let corrupt = copy("corrupt");
    let mut bytes = std::fs::read(corrupt.join(&images)).unwrap();
    for b in bytes.iter_mut().skip(10).take(64) {
        *b ^= 0x5a;
    }
    std::fs::write(corrupt.join(&images), bytes).unwrap();
    // A gzip stream cut in half: "incomplete deflate stream".
    let truncated = copy("truncated");
    let bytes = std::fs::read(truncated.join(&images)).unwrap();
    std::fs::write(truncated.join(&images), &bytes[..bytes.len() / 2]).unwrap();
    // A file missing, an empty file, a directory where a file should be.
    let missing = copy("missing");
    std::fs::remove_file(missing.join(&images)).unwrap();
    let empty = copy("empty");
    std::fs::write(empty.join(&images), b"").unwrap();
    let dir_file = copy("dirfile");
    std::fs::remove_file(dir_file.join(&images)).unwrap();
    std::fs::create_dir(dir_file.join(&images)).unwrap();
    // Weights: junk, a directory, truncated safetensors.
    std::fs::write(sb.join("junk.safetensors"), b"hello").unwrap();
    std::fs::create_dir(sb.join("dir.safetensors")).unwrap();
    sb.run(&with_data(&[
        "train",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--save-weights",
        "m.safetensors",
        "-q",
    ]))
    .ok();
    let weights = std::fs::read(sb.join("m.safetensors")).unwrap();
    std::fs::write(sb.join("cut.safetensors"), &weights[..weights.len() / 2]).unwrap();
    // Grids: bad JSON, bad TOML, an unknown field.
    std::fs::write(sb.join("bad.json"), "{\"hidden\": [8,").unwrap();
    std::fs::write(sb.join("bad.toml"), "hidden = [8,\n").unwrap();
    std::fs::write(sb.join("odd.json"), "{\"hiddn\": [8]}").unwrap();
    // A file where a directory is needed.
    std::fs::write(sb.join("afile"), b"x").unwrap();

    let data_in = |dir: &str| -> Vec<String> {
        [
            "train",
            "--epochs",
            "1",
            "--data-dir",
            dir,
            "--no-verify",
            "--validation-size",
            "200",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    let mut cases: Vec<Vec<String>> = Vec::new();
    for dir in [
        "corrupt",
        "truncated",
        "missing",
        "empty",
        "dirfile",
        "nowhere",
        "afile",
    ] {
        cases.push(data_in(dir));
    }
    for dir in ["corrupt", "truncated", "missing", "dirfile"] {
        cases.push(
            ["data", "verify", "--data-dir", dir]
                .iter()
                .map(ToString::to_string)
                .collect(),
        );
    }
    let own = |args: &[&str]| -> Vec<String> {
        with_data(args).iter().map(ToString::to_string).collect()
    };
    for w in [
        "missing.safetensors",
        "junk.safetensors",
        "dir.safetensors",
        "cut.safetensors",
    ] {
        cases.push(own(&["eval", "--weights", w]));
        cases.push(own(&["train", "--from-weights", w, "--epochs", "1"]));
    }
    cases.push(own(&[
        "train",
        "--epochs",
        "1",
        "--out",
        "afile/run.json",
        "-q",
    ]));
    cases.push(own(&[
        "train",
        "--epochs",
        "1",
        "--save-weights",
        "afile/m.safetensors",
        "-q",
    ]));
    for grid in ["missing.json", "bad.json", "bad.toml", "odd.json"] {
        cases.push(own(&["search", "run", "--grid-file", grid, "--out", "s"]));
    }
    cases.push(own(&["search", "run", "--grid", "tiny", "--out", "afile"]));
    cases.push(vec![
        "search".into(),
        "status".into(),
        "--out".into(),
        "nowhere".into(),
    ]);
    cases.push(own(&["search", "best", "--out", "afile"]));
    cases.push(own(&[
        "experiments",
        "--quick",
        "--out",
        "afile",
        "--parts",
        "3",
    ]));
    for bad in [
        &["train", "--lr", "-1"][..],
        &["train", "--hidden", "8,x"],
        &["eval"],
    ] {
        cases.push(bad.iter().map(ToString::to_string).collect());
    }

    let mut problems = Vec::new();
    let show = std::env::var_os("GLOROT_SHOW_ERRORS").is_some();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = sb.run(&args);
        assert_ne!(
            r.code,
            Some(0),
            "`glorot {}` succeeded:\n{}",
            args.join(" "),
            r.stderr
        );
        assert!(
            r.stderr.contains("error"),
            "`glorot {}`: no error message:\n{}",
            args.join(" "),
            r.stderr
        );
        #[allow(clippy::print_stderr)]
        if show {
            eprintln!(
                "glorot {}\n  {}",
                args.join(" "),
                r.stderr.trim().replace('\n', "\n  ")
            );
        }
        for line in r.stderr.lines().filter(|l| l.contains("error")) {
            let repeats = repeated_segments(line);
            if !repeats.is_empty() {
                problems.push(format!(
                    "`glorot {}`: {line}\n  repeats {repeats:?}",
                    args.join(" ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
