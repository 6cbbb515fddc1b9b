//! On the real MNIST (skipped with a note when `GLOROT_MNIST_DIR` is unset).

use crate::support::{Sandbox, read_json, real_mnist};

#[test]
fn tiny_grid_on_a_subset_of_real_mnist() {
    let Some(dir) = real_mnist() else { return };
    let sb = Sandbox::new();
    let dir = dir.to_string_lossy().into_owned();
    let r = sb.run(&[
        "search",
        "run",
        "--grid",
        "tiny",
        "--out",
        "real",
        "--data-dir",
        &dir,
        "--train-limit",
        "2000",
        "--val-limit",
        "500",
        "--json",
        "-q",
    ]);
    r.ok();
    let out = r.json();
    assert_eq!(out["complete"], true);
    let summary = read_json(&sb.join("real/summary.json"));
    // 2000 images, one epoch, 8 or 16 hidden units: far above chance (10 %); measured
    // 76.2 % for the best trial on this machine (16x2, ReLU, lr 0.1, batch 16).
    let best = summary["best"]["final_val_accuracy"].as_f64().unwrap();
    assert!(best > 50.0, "best validation accuracy {best}");
    let search = read_json(&sb.join("real/search.json"));
    // The real files pass the digest check, and the context names their digests.
    assert!(
        search["data"]
            .as_str()
            .unwrap()
            .contains("train 2000 of 50000"),
        "{search}"
    );
    // The real test split is there for the one look.
    let t = sb.run(&[
        "search",
        "best",
        "--out",
        "real",
        "--test",
        "--data-dir",
        &dir,
        "--train-limit",
        "2000",
        "--val-limit",
        "500",
        "--json",
        "-q",
    ]);
    t.ok();
    assert_eq!(t.json()["test"]["test_images"], 10000);
}
