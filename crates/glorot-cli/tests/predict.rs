//! `glorot predict` and the confusion matrix of `glorot eval`, through the real binary:
//! on the synthetic dataset, and on the real MNIST when `GLOROT_MNIST_DIR` is set.

use std::path::Path;

use glorot_mnist::{PIXELS, idx};
use serde_json::Value;

use crate::schemas::{Schemas, assert_exact};
use crate::support::{Sandbox, real_mnist, with_data};

/// Writes `pixels` as a PNG of `width x height` in `color` with the png crate.
fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, pixels: &[u8]) {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Image `i` of an IDX images file.
fn idx_image(path: &Path, i: usize) -> Vec<u8> {
    let images = idx::read_images(&std::fs::read(path).unwrap(), path).unwrap();
    images.pixels()[i * PIXELS..(i + 1) * PIXELS].to_vec()
}

/// Trains a small model (784-`hidden`-10, `epochs` epochs, lr 0.1) into
/// `model.safetensors` in the sandbox with `data` options and `extra` ones.
fn train(sb: &Sandbox, hidden: &str, epochs: &str, data: &[&str], extra: &[&str]) {
    let mut args = vec![
        "train",
        "--hidden",
        hidden,
        "--epochs",
        epochs,
        "--lr",
        "0.1",
        "--save-weights",
        "model.safetensors",
        "-q",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(data);
    sb.run(&args).ok();
}

/// The confusion matrix of `predictions` (the `predictions` of `glorot predict --json`)
/// against their labels, counted here from the JSON.
fn confusion_of(predictions: &Value) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0u64; 10]; 10];
    for p in predictions.as_array().unwrap() {
        let t = p["label"].as_u64().unwrap() as usize;
        let c = p["class"].as_u64().unwrap() as usize;
        m[t][c] += 1;
    }
    m
}

fn counts(v: &Value) -> Vec<Vec<u64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Checks what eval's confusion matrix says against its own evaluation: the diagonal is
/// the correct count, the total the samples, the per-class figures the rows and columns.
#[track_caller]
fn check_confusion(e: &Value) {
    let m = counts(&e["confusion"]["counts"]);
    let total: u64 = m.iter().flatten().sum();
    let diagonal: u64 = (0..10).map(|c| m[c][c]).sum();
    assert_eq!(total, e["evaluation"]["samples"].as_u64().unwrap());
    assert_eq!(diagonal, e["evaluation"]["correct"].as_u64().unwrap());
    let accuracy = (diagonal as f64 * 100.0) / total as f64;
    assert_eq!(Some(accuracy), e["evaluation"]["accuracy"].as_f64());
    for (c, row) in e["confusion"]["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let samples: u64 = m[c].iter().sum();
        let predicted: u64 = (0..10).map(|t| m[t][c]).sum();
        assert_eq!(row["class"], c);
        assert_eq!(row["samples"], samples);
        assert_eq!(row["correct"], m[c][c]);
        assert_eq!(row["predicted"], predicted);
        if samples > 0 {
            let expected = (m[c][c] as f64 * 100.0) / samples as f64;
            assert_eq!(row["accuracy"].as_f64(), Some(expected));
        } else {
            assert!(row["accuracy"].is_null());
        }
    }
}

#[test]
fn predict_agrees_with_eval_and_a_png_with_its_idx_image() {
    let sb = Sandbox::new();
    let mut schemas = Schemas::default();
    train(&sb, "24", "2", &with_data(&[]), &[]);
    let images = "data/t10k-images-idx3-ubyte.gz";
    let labels = "data/t10k-labels-idx1-ubyte.gz";

    // eval: the confusion matrix is consistent with the accuracy, in every output.
    let e = sb.run(&with_data(&[
        "eval",
        "--weights",
        "model.safetensors",
        "--split",
        "test",
        "--json",
        "--confusion-csv",
        "out/confusion.csv",
        "--plot",
        "out/confusion",
    ]));
    e.ok();
    let e = e.json();
    schemas.check("eval", &e, "glorot eval --json");
    check_confusion(&e);
    let csv = std::fs::read_to_string(sb.join("out/confusion.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "true_class,pred_0,pred_1,pred_2,pred_3,pred_4,pred_5,pred_6,pred_7,pred_8,pred_9,\
             samples,correct,accuracy"
        )
    );
    let m = counts(&e["confusion"]["counts"]);
    for (t, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], t.to_string());
        let row: Vec<u64> = cells[1..11].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(row, m[t], "CSV row {t}");
    }
    let png = std::fs::read(sb.join("out/confusion.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let svg = std::fs::read_to_string(sb.join("out/confusion.svg")).unwrap();
    assert!(svg.contains("<svg"));

    // The text output shows the matrix too.
    let text = sb.run(&with_data(&[
        "eval",
        "--weights",
        "model.safetensors",
        "--split",
        "test",
    ]));
    text.ok();
    assert!(
        text.stdout
            .contains("confusion matrix (rows: true class, columns: predicted class)"),
        "{}",
        text.stdout
    );
    assert_eq!(text.stdout.lines().count(), 1 + 2 + 10, "{}", text.stdout);

    // predict on the test file with its labels: the accuracy and the confusion matrix
    // counted from its predictions are eval's.
    let p = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        images,
        "--labels",
        labels,
        "--json",
    ]);
    p.ok();
    let p = p.json();
    schemas.check("predict", &p, "glorot predict --json");
    assert_exact(&p, "glorot predict --json");
    assert_eq!(p["probabilities"], "sigmoid");
    assert_eq!(p["inputs"][0]["format"], "idx");
    assert_eq!(p["inputs"][0]["images"], 300);
    assert_eq!(p["labelled"]["accuracy"], e["evaluation"]["accuracy"]);
    assert_eq!(p["labelled"]["correct"], e["evaluation"]["correct"]);
    assert_eq!(confusion_of(&p["predictions"]), m);
    // The probabilities are the outputs eval scores: the notebook's loss (summed binary
    // cross-entropy with its 1e-8, averaged over the images) recomputed here in f64 from
    // them is eval's loss (computed in f32; printed f32 outputs carry 2^-24 relative
    // error). Pixels scaled otherwise (byte / 255) would move it by far more.
    let mut loss = 0.0;
    for row in p["predictions"].as_array().unwrap() {
        let label = row["label"].as_u64().unwrap() as usize;
        for (j, o) in row["probabilities"].as_array().unwrap().iter().enumerate() {
            let o = o.as_f64().unwrap();
            let y = if j == label { 1.0 } else { 0.0 };
            loss -= y * (o + 1e-8).ln() + (1.0 - y) * (1.0 - o + 1e-8).ln();
        }
    }
    loss /= 300.0;
    let eval_loss = e["evaluation"]["loss"].as_f64().unwrap();
    assert!(
        (loss - eval_loss).abs() <= 1e-5 * eval_loss,
        "loss from the probabilities {loss}, eval's {eval_loss}"
    );

    // Test image 5 as a PNG (written here with the png crate): the same class and the
    // same probabilities, bit for bit, as its row of the IDX file.
    let pixels = idx_image(&sb.join(images), 5);
    write_png(
        &sb.join("five.png"),
        28,
        28,
        png::ColorType::Grayscale,
        &pixels,
    );
    let one = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        "five.png",
        "--json",
    ]);
    one.ok();
    let one = one.json();
    schemas.check("predict", &one, "glorot predict --json (PNG)");
    assert_eq!(one["inputs"][0]["format"], "png");
    let from_png = &one["predictions"][0];
    let from_idx = &p["predictions"][5];
    assert_eq!(from_idx["index"], 5);
    assert!(from_png.get("index").is_none());
    assert_eq!(from_png["class"], from_idx["class"]);
    assert_eq!(from_png["probabilities"], from_idx["probabilities"]);

    // Text: a header saying what the numbers are, then one line per image.
    let text = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        "five.png",
        "five.png",
    ]);
    text.ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.stdout);
    assert!(lines[0].contains("they need not sum to 1"), "{}", lines[0]);
    let class = from_png["class"].as_u64().unwrap();
    assert!(
        lines[1].starts_with(&format!("five.png: {class}  ")),
        "{}",
        lines[1]
    );
}

#[test]
fn a_softmax_model_predicts_probabilities_that_sum_to_one() {
    let sb = Sandbox::new();
    train(
        &sb,
        "24",
        "2",
        &with_data(&[]),
        &["--head", "softmax_cross_entropy"],
    );
    let p = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        "data/t10k-images-idx3-ubyte.gz",
        "--json",
    ]);
    p.ok();
    let p = p.json();
    Schemas::default().check("predict", &p, "glorot predict --json (softmax)");
    assert_eq!(p["probabilities"], "softmax");
    for row in p["predictions"].as_array().unwrap() {
        let probs: Vec<f64> = serde_json::from_value(row["probabilities"].clone()).unwrap();
        let sum: f64 = probs.iter().sum();
        // Ten f32 values rounded once each: well within 1e-5 of 1.
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        let best = (0..10).fold(0, |b, j| if probs[j] > probs[b] { j } else { b });
        assert_eq!(row["class"], best);
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let sb = Sandbox::new();
    train(&sb, "16", "1", &with_data(&[]), &[]);
    let predict = |inputs: &[&str]| {
        let mut args = vec!["predict", "--weights", "model.safetensors"];
        args.extend_from_slice(inputs);
        sb.run(&args)
    };
    let grey = vec![0u8; 32 * 28];
    write_png(
        &sb.join("wide.png"),
        32,
        28,
        png::ColorType::Grayscale,
        &grey,
    );
    predict(&["wide.png"]).expect_code(1).stderr_has(&[
        "wide.png",
        "wrong image size",
        "found 32x28",
    ]);
    write_png(
        &sb.join("rgb.png"),
        28,
        28,
        png::ColorType::Rgb,
        &[0; 3 * PIXELS],
    );
    predict(&["rgb.png"]).expect_code(1).stderr_has(&[
        "rgb.png",
        "expected an 8-bit greyscale PNG",
        "found RGB, 8-bit",
    ]);
    write_png(
        &sb.join("ok.png"),
        28,
        28,
        png::ColorType::Grayscale,
        &[0; PIXELS],
    );
    let good = std::fs::read(sb.join("ok.png")).unwrap();
    std::fs::write(sb.join("cut.png"), &good[..good.len() / 2]).unwrap();
    predict(&["ok.png", "cut.png"])
        .expect_code(1)
        .stderr_has(&["cut.png", "not a readable PNG image"]);
    // A truncated IDX images file (gzip of the first 3000 bytes of 300 images).
    let full = idx::encode(&[300, 28, 28], &vec![0; 300 * PIXELS]);
    std::fs::write(sb.join("cut-images.gz"), idx::gzip(&full[..3000])).unwrap();
    predict(&["cut-images.gz"])
        .expect_code(1)
        .stderr_has(&["cut-images.gz", "truncated"]);
    std::fs::write(sb.join("notes.txt"), "not an image").unwrap();
    predict(&["notes.txt"])
        .expect_code(1)
        .stderr_has(&["notes.txt", "not an IDX file"]);
    predict(&["missing.png"])
        .expect_code(1)
        .stderr_has(&["missing.png"]);
    // --labels: for one IDX input with as many labels as images.
    predict(&["ok.png", "--labels", "data/t10k-labels-idx1-ubyte.gz"])
        .expect_code(2)
        .stderr_has(&["--labels needs an IDX images file"]);
    predict(&[
        "data/t10k-images-idx3-ubyte.gz",
        "ok.png",
        "--labels",
        "data/t10k-labels-idx1-ubyte.gz",
    ])
    .expect_code(2)
    .stderr_has(&["--labels needs exactly one INPUT"]);
    predict(&[
        "data/t10k-images-idx3-ubyte.gz",
        "--labels",
        "data/train-labels-idx1-ubyte.gz",
    ])
    .expect_code(1)
    .stderr_has(&["holds 300 images but", "holds 1200 labels"]);
    predict(&[]).expect_code(2);
}

/// Weights saved by `glorot search best --test --save-weights` (with the trial and seed in
/// their metadata) predict as `glorot eval` scores them.
#[test]
fn weights_of_the_best_search_trial_predict_too() {
    let sb = Sandbox::new();
    sb.run(&with_data(&[
        "search", "run", "--grid", "tiny", "--out", "sr", "-q",
    ]))
    .ok();
    sb.run(&with_data(&[
        "search",
        "best",
        "--out",
        "sr",
        "--test",
        "--save-weights",
        "best.safetensors",
        "-q",
    ]))
    .ok();
    let e = sb.run(&with_data(&[
        "eval",
        "--weights",
        "best.safetensors",
        "--split",
        "test",
        "--json",
    ]));
    e.ok();
    let e = e.json();
    check_confusion(&e);
    let p = sb.run(&[
        "predict",
        "--weights",
        "best.safetensors",
        "data/t10k-images-idx3-ubyte.gz",
        "--labels",
        "data/t10k-labels-idx1-ubyte.gz",
        "--json",
    ]);
    p.ok();
    let p = p.json();
    Schemas::default().check("predict", &p, "glorot predict --json (search best)");
    assert!(p["metadata"]["trial"].is_string(), "{p}");
    assert_eq!(p["metadata"]["trial"], e["metadata"]["trial"]);
    assert_eq!(p["labelled"]["accuracy"], e["evaluation"]["accuracy"]);
    assert_eq!(
        confusion_of(&p["predictions"]),
        counts(&e["confusion"]["counts"])
    );
}

/// On the real MNIST: a PNG of a real test digit predicts what its IDX row predicts,
/// and eval's confusion matrix totals to eval's accuracy, which `predict --labels` gives
/// too.
#[test]
fn real_mnist_png_idx_and_confusion_agree() {
    let Some(dir) = real_mnist() else { return };
    let sb = Sandbox::new();
    let dir = dir.to_string_lossy().into_owned();
    let data = ["--data-dir", dir.as_str(), "--train-limit", "3000"];
    train(&sb, "64", "2", &data, &[]);
    let e = sb.run(&[
        "eval",
        "--weights",
        "model.safetensors",
        "--split",
        "test",
        "--data-dir",
        &dir,
        "--json",
    ]);
    e.ok();
    let e = e.json();
    check_confusion(&e);
    assert_eq!(e["evaluation"]["samples"], 10000);
    // 3000 training images, 2 epochs of a 784-64-10 network: far above chance (10 %).
    assert!(e["evaluation"]["accuracy"].as_f64().unwrap() > 70.0, "{e}");

    let files = glorot_mnist::find_files(Path::new(&dir)).unwrap();
    let role = |r: glorot_mnist::FileRole| files[r as usize].to_string_lossy().into_owned();
    let images = role(glorot_mnist::FileRole::TestImages);
    let labels = role(glorot_mnist::FileRole::TestLabels);
    let p = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        &images,
        "--labels",
        &labels,
        "--json",
    ]);
    p.ok();
    let p = p.json();
    assert_eq!(p["labelled"]["accuracy"], e["evaluation"]["accuracy"]);
    assert_eq!(
        confusion_of(&p["predictions"]),
        counts(&e["confusion"]["counts"])
    );

    // The first test image is a 7 (the MNIST test set's first label); its PNG predicts
    // what its IDX row predicts.
    let pixels = idx_image(Path::new(&images), 0);
    write_png(
        &sb.join("digit.png"),
        28,
        28,
        png::ColorType::Grayscale,
        &pixels,
    );
    let one = sb.run(&[
        "predict",
        "--weights",
        "model.safetensors",
        "digit.png",
        "--json",
    ]);
    one.ok();
    let one = one.json();
    assert_eq!(p["predictions"][0]["label"], 7);
    assert_eq!(one["predictions"][0]["class"], p["predictions"][0]["class"]);
    assert_eq!(
        one["predictions"][0]["probabilities"],
        p["predictions"][0]["probabilities"]
    );
}
