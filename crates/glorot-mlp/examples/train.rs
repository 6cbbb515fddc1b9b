//! Trains an MLP and prints one line per epoch and the JSON report.
//!
//! With `GLOROT_MNIST_DIR` set it trains on MNIST with the notebook's split (train
//! 0..50,000, validation 50,000..60,000, byte / 256); otherwise on a synthetic problem
//! (three interleaved spirals in 2-D), so it runs anywhere.
//!
//! ```sh
//! cargo run --release -p glorot-mlp --example train                      # synthetic
//! GLOROT_MNIST_DIR=../shared/mnist cargo run --release -p glorot-mlp --example train -- \
//!     --epochs 1 --precision f64 --shuffle never --save /tmp/model.safetensors
//! ```
//!
//! Options (defaults in brackets): `--epochs N` [10], `--hidden H` (two hidden layers of H
//! units) [500 on MNIST, 64 synthetic], `--activation relu|sigmoid|tanh` [tanh],
//! `--head sigmoid_bce|softmax` [sigmoid_bce], `--lr X` [0.01 MNIST, 0.1 synthetic],
//! `--batch N` [32], `--seed N` [0], `--shuffle every_epoch|never` [every_epoch],
//! `--precision f32|f64` [f32], `--train-rows N` [all], `--save PATH`.
#![allow(clippy::print_stdout, reason = "an example program reports on stdout")]
#![allow(
    clippy::print_stderr,
    reason = "an example program reports errors on stderr"
)]

extern crate blas_src;

use std::path::PathBuf;
use std::process::ExitCode;

use glorot_mlp::{
    Activation, EpochMetrics, EvalData, FitData, Head, Init, MlpFloat, ModelConfig, Observer,
    Precision, Shuffle, TrainConfig, TrainData, train,
};
use ndarray::{Array2, s};

struct Args {
    epochs: usize,
    hidden: Option<usize>,
    activation: Activation,
    head: Head,
    lr: Option<f64>,
    batch: usize,
    seed: u64,
    shuffle: Shuffle,
    precision: Precision,
    train_rows: Option<usize>,
    save: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        epochs: 10,
        hidden: None,
        activation: Activation::Tanh,
        head: Head::SigmoidBce,
        lr: None,
        batch: 32,
        seed: 0,
        shuffle: Shuffle::EveryEpoch,
        precision: Precision::F32,
        train_rows: None,
        save: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--epochs" => args.epochs = value.parse().map_err(|e| bad(&e))?,
            "--hidden" => args.hidden = Some(value.parse().map_err(|e| bad(&e))?),
            "--activation" => args.activation = value.parse().map_err(|e| bad(&e))?,
            "--head" => args.head = value.parse().map_err(|e| bad(&e))?,
            "--lr" => args.lr = Some(value.parse().map_err(|e| bad(&e))?),
            "--batch" => args.batch = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--shuffle" => args.shuffle = value.parse().map_err(|e| bad(&e))?,
            "--precision" => args.precision = value.parse().map_err(|e| bad(&e))?,
            "--train-rows" => args.train_rows = Some(value.parse().map_err(|e| bad(&e))?),
            "--save" => args.save = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// Prints each epoch as it ends.
struct Printer;

impl Observer for Printer {
    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        println!(
            "epoch {:>3}  train loss {:<20}  val loss {:<20}  val accuracy {:>6.2}%  {:.2}s",
            m.epoch, m.train_loss, m.val_loss, m.val_accuracy, m.seconds
        );
    }
}

/// Inputs, one-hot targets and labels for training and validation, in f32.
struct Data {
    name: &'static str,
    train_x: Array2<f32>,
    train_labels: Vec<u8>,
    val_x: Array2<f32>,
    val_labels: Vec<u8>,
    classes: usize,
}

/// Three interleaved spirals: 3,000 training and 600 validation points.
fn spirals() -> Data {
    let make = |n: usize, phase: f32| {
        let mut x = Array2::zeros((n, 2));
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % 3;
            let t = (i / 3) as f32 / (n / 3) as f32 + phase;
            let r = t;
            let angle = 4.0 * t + class as f32 * 2.0 * std::f32::consts::PI / 3.0;
            x[[i, 0]] = r * angle.cos();
            x[[i, 1]] = r * angle.sin();
            labels.push(class as u8);
        }
        (x, labels)
    };
    let (train_x, train_labels) = make(3_000, 0.0);
    let (val_x, val_labels) = make(600, 0.0007);
    Data {
        name: "synthetic spirals",
        train_x,
        train_labels,
        val_x,
        val_labels,
        classes: 3,
    }
}

fn mnist(dir: &str) -> Result<Data, String> {
    let m = glorot_mnist::load(dir.as_ref(), &glorot_mnist::LoadOptions::default())
        .map_err(|e| format!("{e}"))?;
    Ok(Data {
        name: "MNIST",
        train_x: m.train.images,
        train_labels: m.train.labels,
        val_x: m.validation.images,
        val_labels: m.validation.labels,
        classes: 10,
    })
}

fn run<F: MlpFloat>(args: &Args, data: &Data, mnist: bool) -> Result<(), String> {
    let rows = args
        .train_rows
        .unwrap_or(data.train_x.nrows())
        .min(data.train_x.nrows());
    let convert = |a: ndarray::ArrayView2<'_, f32>| a.mapv(|v| F::from_f64(f64::from(v)));
    let train_x = convert(data.train_x.slice(s![..rows, ..]));
    let train_y = glorot_tensor::one_hot::<F>(&data.train_labels[..rows], data.classes);
    let val_x = convert(data.val_x.view());
    let fit = FitData {
        train: TrainData::new(train_x.view(), train_y.view()).map_err(|e| e.to_string())?,
        validation: EvalData::new(val_x.view(), &data.val_labels).map_err(|e| e.to_string())?,
        test: None,
    };
    let hidden = args.hidden.unwrap_or(if mnist { 500 } else { 64 });
    let model = ModelConfig {
        layers: vec![data.train_x.ncols(), hidden, hidden, data.classes],
        activation: args.activation,
        head: args.head,
        init: Init::GlorotUniform,
    }
    .validate()
    .map_err(|e| e.to_string())?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        learning_rate: args.lr.unwrap_or(if mnist { 0.01 } else { 0.1 }),
        seed: args.seed,
        shuffle: args.shuffle,
        precision: Precision::of::<F>(),
        ..TrainConfig::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    println!(
        "{}: {rows} training rows, layers {:?}, {} parameters, {}",
        data.name,
        model.layers(),
        model.num_parameters(),
        F::NAME
    );
    let (mlp, report) =
        train::<F>(&model, &config, &fit, &mut Printer).map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    if let Some(path) = &args.save {
        mlp.save(path).map_err(|e| e.to_string())?;
        println!("weights saved to {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| {
        let (data, is_mnist) = match std::env::var("GLOROT_MNIST_DIR") {
            Ok(dir) if !dir.is_empty() => (mnist(&dir)?, true),
            _ => (spirals(), false),
        };
        match args.precision {
            Precision::F32 => run::<f32>(&args, &data, is_mnist),
            Precision::F64 => run::<f64>(&args, &data, is_mnist),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
