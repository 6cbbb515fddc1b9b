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

/// The test labels under the training labels' name: named as what they are, by `data
/// verify` and by a training, not called corrupt.
#[test]
fn swapped_files_are_named() {
    let Some(dir) = real_mnist() else { return };
    let sb = Sandbox::new();
    let swapped = sb.join("swapped");
    std::fs::create_dir(&swapped).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("train-labels") {
            continue;
        }
        std::fs::copy(&path, swapped.join(&name)).unwrap();
        if name.starts_with("t10k-labels") {
            let renamed = name.replace("t10k-labels", "train-labels");
            std::fs::copy(&path, swapped.join(renamed)).unwrap();
        }
    }
    sb.run(&["data", "verify", "--data-dir", "swapped"])
        .expect_code(1)
        .stderr_has(&[
            "is mnist's t10k-labels-idx1-ubyte file, not mnist's train-labels-idx1-ubyte",
        ]);
    sb.run(&["train", "--data-dir", "swapped", "--epochs", "1"])
        .expect_code(1)
        .stderr_has(&["(this is mnist's t10k-labels-idx1-ubyte file)"]);
}
