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
    assert_eq!(run["train"]["seed"], 3);
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
    // Stopped within the epoch after the last finished one, or at its very start.
    assert!(
        (epoch == finished + 1 && batch < 1000) || (epoch == finished && batch == 1000),
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
    // Stopped at an epoch's end: the weights are exactly those that epoch validated.
    if batch == 1000 {
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
    let e = sb.run(&with_data(&["eval", "--weights", "done.safetensors", "--json"]));
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
    // Three activations x two heads (the defaults), every entry of every parameter.
    assert_eq!(checks.len(), 6);
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
