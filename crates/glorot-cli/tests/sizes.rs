//! Sizes a user can give: every one is checked before anything is allocated, and refused
//! with exit code 2 (a size no machine could hold: the count overflows) or 1 (more memory
//! than this machine has available), never an abort (134) or a panic (101).
//!
//! The "does not fit" cases need terabytes (from the estimates in
//! `glorot_mlp::memory`), more than any machine these tests run on; they are checked on
//! Linux only, where `glorot` reads `MemAvailable` (elsewhere it cannot tell).

use crate::support::{Sandbox, with_data};

/// `args` is refused as too large for this machine.
#[track_caller]
fn does_not_fit(sb: &Sandbox, args: &[&str]) {
    if cfg!(target_os = "linux") {
        sb.run(args)
            .expect_code(1)
            .stderr_has(&["would need about", "of memory, but this machine has"]);
    }
}

/// `args` is refused as a size no machine could hold.
#[track_caller]
fn impossible(sb: &Sandbox, args: &[&str]) {
    sb.run(args).expect_code(2).stderr_has(&["over 2^64 bytes"]);
}

#[test]
fn train_refuses_sizes_before_allocating() {
    let sb = Sandbox::new();
    // 10^12 epoch records of 48 bytes: 48 TB (the abort).
    does_not_fit(&sb, &with_data(&["train", "--epochs", "1000000000000"]));
    impossible(
        &sb,
        &with_data(&["train", "--epochs", "18446744073709551615"]),
    );
    // The 3 TB abort: 784 x 10^9 + 10^9 x 10 parameters, 3.2 TB each copy in
    // f32; and 10^6 x 10^6 weights, 4 TB each copy (on real MNIST one hidden layer of
    // 10^6 already needs 40 GB for a validation chunk of 10,000 rows; the synthetic data
    // has 200, so the width is given twice here).
    does_not_fit(&sb, &with_data(&["train", "--hidden", "1000000000"]));
    does_not_fit(&sb, &with_data(&["train", "--hidden", "1000000,1000000"]));
    // 2^62 parameters: three f32 copies are 2^65.6 bytes.
    impossible(
        &sb,
        &with_data(&["train", "--hidden", "2147483648,2147483648"]),
    );
}

#[test]
fn gradcheck_refuses_sizes_before_allocating() {
    let sb = Sandbox::new();
    does_not_fit(&sb, &["gradcheck", "--layers", "784,1000000000,10"]);
    impossible(&sb, &["gradcheck", "--rows", "18446744073709551615"]);
    does_not_fit(
        &sb,
        &with_data(&["gradcheck", "notebook", "--hidden", "1000000,1000000"]),
    );
}

#[test]
fn search_checks_every_trial_before_the_first_starts() {
    let sb = Sandbox::new();
    // The grid's own limit is 2^20; 2^20 x 2^20 weights are 4 TB in f32.
    does_not_fit(
        &sb,
        &with_data(&["search", "run", "--hidden", "1048576", "--out", "r1"]),
    );
    assert!(
        !sb.join("r1").exists(),
        "nothing is written before the check"
    );
    // The same through a grid file, the large width last (every trial is checked).
    std::fs::write(
        sb.join("g.toml"),
        "hidden = [8, 1048576]\nactivation = [\"tanh\"]\nlearning_rate = [0.1]\n\
         batch_size = [32]\nepochs = [1]\n",
    )
    .unwrap();
    does_not_fit(
        &sb,
        &with_data(&["search", "run", "--grid-file", "g.toml", "--out", "r2"]),
    );
    assert!(!sb.join("r2").exists());
    does_not_fit(
        &sb,
        &with_data(&[
            "search",
            "run",
            "--hidden",
            "8",
            "--epochs",
            "1000000000000",
            "--out",
            "r3",
        ]),
    );
    impossible(
        &sb,
        &with_data(&[
            "search",
            "run",
            "--hidden",
            "8",
            "--epochs",
            "18446744073709551615",
            "--out",
            "r4",
        ]),
    );
    // Grid sizes: 10^11 repeats would be listed in memory before any check.
    sb.run(&with_data(&[
        "search",
        "run",
        "--repeats",
        "100000000000",
        "--out",
        "r5",
    ]))
    .expect_code(2)
    .stderr_has(&["--repeats 100000000000", "at most 1000000 trials"]);
    sb.run(&with_data(&[
        "search",
        "run",
        "--hidden-layers",
        "100000000000",
        "--out",
        "r6",
    ]))
    .expect_code(1)
    .stderr_has(&["hidden_layers", "more than 1,024 hidden layers"]);
}

#[test]
fn the_benchmark_checks_its_workers_before_starting() {
    let sb = Sandbox::new();
    does_not_fit(
        &sb,
        &with_data(&[
            "bench-epoch",
            "--hidden",
            "1000000,1000000",
            "--repeats",
            "1",
        ]),
    );
}

#[test]
fn experiments_check_their_runs_before_starting() {
    let sb = Sandbox::new();
    does_not_fit(
        &sb,
        &with_data(&[
            "experiments",
            "--parts",
            "1",
            "--epochs",
            "1000000000000",
            "--out",
            "e1",
        ]),
    );
    impossible(
        &sb,
        &with_data(&[
            "experiments",
            "--parts",
            "1",
            "--epochs",
            "18446744073709551615",
            "--out",
            "e2",
        ]),
    );
    does_not_fit(
        &sb,
        &with_data(&[
            "experiments",
            "--replay-notebook",
            "--replay-epochs",
            "1000000000000",
            "--out",
            "e3",
        ]),
    );
}
