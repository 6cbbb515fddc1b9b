//! Optimizers and learning-rate schedules: the default (plain SGD, constant rate) trains
//! bit for bit as before they existed; every other optimizer agrees with an independent
//! NumPy reference (`reference/optimizers.py`, values in `reference/optimizers.json`).

use approx::assert_relative_eq;
use glorot_mlp::{
    Activation, Arithmetic, EvalData, FitData, Head, Init, Mlp, ModelConfig, NoopObserver,
    Optimizer, ParamId, Precision, Shuffle, TrainConfig, TrainData, TrainReport, Trainer,
    WeightSource, Workspace, train,
};
use ndarray::{Array1, Array2, s};
use serde_json::Value;

/// FNV-1a (64-bit) over the bits of every parameter (in [`ParamId::all`] order) and of
/// every epoch's training and validation loss.
fn fingerprint(model: &Mlp<f64>, report: &TrainReport) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: f64| {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for id in ParamId::all(model.depth()) {
        for &v in model.param(id).unwrap() {
            eat(v);
        }
    }
    for e in &report.epochs {
        eat(e.train_loss);
        eat(e.val_loss);
    }
    h
}

/// 60 rows of 30 inputs, 6 classes, each row with exactly 10 nonzeros (the columns `j`
/// with `j % 3 == i % 3`): a density of 1/3 in every batch, below the sparse kernels'
/// limit (0.4, `fused::PASS_MAX_DENSITY`) above which a pass goes to BLAS, so that the
/// `f64` first layer is always the sparse chains.
fn sparse_blobs() -> (Array2<f64>, Vec<u8>) {
    let labels: Vec<u8> = (0..60).map(|i| (i % 6) as u8).collect();
    let x = Array2::from_shape_fn((60, 30), |(i, j)| {
        if j % 3 == i % 3 {
            ((i * 30 + j) as f64 * 0.7).sin() + 1.2 + if j % 6 == i % 6 { 0.8 } else { 0.0 }
        } else {
            0.0
        }
    });
    (x, labels)
}

/// A short default-optimizer run in `f64` with [`Arithmetic::Fast`] on a network without
/// hidden layers: every operation is the crate's own documented-order Rust code (the
/// sparse first-layer chains), no BLAS, so the bits do not depend on the machine.
fn default_run(head: Head, batch_size: usize) -> u64 {
    let (x, labels) = sparse_blobs();
    let y = glorot_tensor::one_hot::<f64>(&labels, 6);
    let data = FitData {
        train: TrainData::new(x.view(), y.view()).unwrap(),
        validation: EvalData::new(x.view(), &labels).unwrap(),
        test: None,
    };
    let model = ModelConfig {
        layers: vec![30, 6],
        activation: Activation::Tanh,
        head,
        init: Init::GlorotUniform,
    }
    .validate()
    .unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size,
        learning_rate: 0.1,
        seed: 7,
        shuffle: Shuffle::EveryEpoch,
        precision: Precision::F64,
        arithmetic: Arithmetic::Fast,
        ..TrainConfig::default()
    }
    .validate()
    .unwrap();
    let (mlp, report) = train::<f64>(&model, &cfg, &data, &mut NoopObserver).unwrap();
    fingerprint(&mlp, &report)
}

/// The default configuration trains exactly as before optimizers and schedules existed:
/// the fingerprints were computed by this same test (its `..TrainConfig::default()` then
/// adding nothing) on the code before them, main at 0758d1e, on x86-64 with AVX-512. The
/// run uses no BLAS: its sums are the sparse chains, whose result is defined by the data
/// alone (see `default_run`).
#[test]
fn default_sgd_is_bit_identical_to_before() {
    let got = [
        default_run(Head::SigmoidBce, 7),
        default_run(Head::SoftmaxCrossEntropy, 7),
        default_run(Head::SoftmaxCrossEntropy, 8),
    ];
    assert_eq!(
        got,
        [
            0xd320_588f_60ae_8123,
            0x18a3_6c15_b3f8_5ddf,
            0x57f7_2fb3_a787_74b6
        ],
        "{got:#018x?}"
    );
}

/// The reference file: `reference/optimizers.py` wrote it (PyTorch's update rules in
/// NumPy, float64, cross-checked once against torch.optim; see the script).
const REFERENCE: &str = include_str!("reference/optimizers.json");

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn vector(v: &Value) -> Array1<f64> {
    Array1::from(serde_json::from_value::<Vec<f64>>(v.clone()).unwrap())
}

/// The optimizer of a reference case.
fn optimizer(case: &Value) -> Optimizer {
    let f = |k: &str| case[k].as_f64().unwrap();
    let wd = case["weight_decay"].as_f64().unwrap_or(0.0);
    match case["kind"].as_str().unwrap() {
        "sgd" => Optimizer::Sgd { weight_decay: wd },
        "momentum" => Optimizer::Momentum {
            momentum: f("momentum"),
            weight_decay: wd,
        },
        "nesterov" => Optimizer::Nesterov {
            momentum: f("momentum"),
            weight_decay: wd,
        },
        "adam" => Optimizer::Adam {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: wd,
        },
        "adamw" => Optimizer::AdamW {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: wd,
        },
        other => panic!("unknown kind {other}"),
    }
}

/// Every optimizer, trained by [`Trainer`] on the reference problem (3-4-3, tanh,
/// softmax cross-entropy, two batches of 4 in order, 2 epochs) in `f64`, ends with the
/// reference's parameters and per-epoch training losses. Tolerance: 1e-12 relative (with
/// 1e-14 absolute for values near zero): both compute the same rules in `f64`, and differ
/// only in the rounding of the sums (the reference and torch.optim differ by up to
/// 1.1e-16 absolute). Plain SGD is the fused step, every other case the fallback.
#[test]
fn every_optimizer_matches_the_numpy_reference() {
    let reference: Value = serde_json::from_str(REFERENCE).unwrap();
    let x = matrix(&reference["x"]);
    let labels: Vec<u8> = serde_json::from_value(reference["labels"].clone()).unwrap();
    let y = glorot_tensor::one_hot::<f64>(&labels, 3);
    let init = &reference["initial"];
    let model = ModelConfig {
        layers: vec![3, 4, 3],
        activation: Activation::Tanh,
        head: Head::SoftmaxCrossEntropy,
        init: Init::GlorotUniform,
    }
    .validate()
    .unwrap();
    let data = FitData {
        train: TrainData::new(x.view(), y.view()).unwrap(),
        validation: EvalData::new(x.view(), &labels).unwrap(),
        test: None,
    };
    let results = reference["results"].as_object().unwrap();
    assert_eq!(results.len(), 7);
    for arithmetic in [Arithmetic::Fast, Arithmetic::Blas] {
        for (name, result) in results {
            let case = &result["case"];
            let mlp = Mlp::<f64>::from_parameters(
                model.clone(),
                vec![matrix(&init["w0"]), matrix(&init["w1"])],
                vec![vector(&init["b0"]), vector(&init["b1"])],
            )
            .unwrap();
            let cfg = TrainConfig {
                epochs: reference["epochs"].as_u64().unwrap() as usize,
                batch_size: reference["batch_size"].as_u64().unwrap() as usize,
                learning_rate: case["lr"].as_f64().unwrap(),
                shuffle: Shuffle::Never,
                precision: Precision::F64,
                arithmetic,
                optimizer: optimizer(case),
                ..TrainConfig::default()
            }
            .validate()
            .unwrap();
            let mut trainer = Trainer::new(mlp, cfg).unwrap();
            let report = trainer.fit(&data, &mut NoopObserver).unwrap();
            let what = format!("{name} ({arithmetic})");
            let losses: Vec<f64> = serde_json::from_value(result["epoch_losses"].clone()).unwrap();
            assert_eq!(report.epochs.len(), losses.len(), "{what}");
            for (e, expected) in report.epochs.iter().zip(&losses) {
                assert_relative_eq!(e.train_loss, *expected, max_relative = 1e-12);
                assert_eq!(e.lr, Some(case["lr"].as_f64().unwrap()));
            }
            let trained = trainer.model();
            let params = &result["params"];
            for layer in 0..2 {
                let w = matrix(&params[format!("w{layer}")]);
                let b = vector(&params[format!("b{layer}")]);
                for (got, want) in trained.weights(layer).iter().zip(&w) {
                    assert_relative_eq!(*got, *want, max_relative = 1e-12, epsilon = 1e-14);
                }
                for (got, want) in trained.bias(layer).iter().zip(&b) {
                    assert_relative_eq!(*got, *want, max_relative = 1e-12, epsilon = 1e-14);
                }
                // The run moved the parameters: the comparison is not of the start.
                let w0 = matrix(&init[format!("w{layer}")]);
                assert!(
                    trained
                        .weights(layer)
                        .iter()
                        .zip(&w0)
                        .any(|(a, b)| (a - b).abs() > 1e-4),
                    "{what}"
                );
            }
        }
    }
}

/// The default optimizer and schedule train through the fused step bit for bit, in every
/// precision and arithmetic: a `Trainer` run equals a hand-written loop of
/// `Mlp::train_step` at the config's rate.
#[test]
fn the_default_trains_through_the_fused_step() {
    fn check<F: glorot_mlp::MlpFloat>(arithmetic: Arithmetic) {
        let (x, labels) = sparse_blobs();
        let x = x.mapv(F::from_f64);
        let y = glorot_tensor::one_hot::<F>(&labels, 6);
        let model = ModelConfig {
            layers: vec![30, 16, 12, 6],
            activation: Activation::Relu,
            head: Head::SoftmaxCrossEntropy,
            init: Init::GlorotUniform,
        }
        .validate()
        .unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 16,
            learning_rate: 0.05,
            seed: 3,
            shuffle: Shuffle::Never,
            precision: Precision::of::<F>(),
            arithmetic,
            ..TrainConfig::default()
        }
        .validate()
        .unwrap();
        let data = FitData {
            train: TrainData::new(x.view(), y.view()).unwrap(),
            validation: EvalData::new(x.view(), &labels).unwrap(),
            test: None,
        };
        let (trained, _) = train::<F>(&model, &cfg, &data, &mut NoopObserver).unwrap();
        let mut by_hand = Mlp::<F>::new(model.clone(), WeightSource::Seed(3)).unwrap();
        let mut ws = Workspace::with_arithmetic(&model, 16, arithmetic);
        for _ in 0..2 {
            for start in (0..60).step_by(16) {
                let end = (start + 16).min(60);
                by_hand.train_step(
                    x.slice(s![start..end, ..]),
                    y.slice(s![start..end, ..]),
                    F::from_f64(0.05),
                    &mut ws,
                );
            }
        }
        assert_eq!(trained, by_hand, "{} {arithmetic}", F::NAME);
    }
    for arithmetic in [Arithmetic::Fast, Arithmetic::Blas] {
        check::<f32>(arithmetic);
        check::<f64>(arithmetic);
    }
}
