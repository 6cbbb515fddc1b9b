//! `glorot predict`: the class and the class probabilities of saved weights for new
//! images (IDX images files and 28x28 greyscale PNGs).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use glorot_experiments::count;
use glorot_experiments::predict::{
    InputFormat, Inputs, Labelled, PREDICT_SCHEMA_VERSION, PredictOutput, Predicted, Probabilities,
    predict, predict_bytes,
};
use glorot_experiments::train::Interruption;
use glorot_mlp::Precision;

use crate::common::{self, Stderr, out, parse_positive, parse_precision, print_json, usage};

const PREDICT_EXAMPLES: &str = "\
Examples:
  # One PNG of a digit: 28x28 pixels, 8-bit greyscale, light digit on black as in MNIST
  glorot predict --weights model.safetensors digit.png

  # Several images at once, as JSON
  glorot predict --weights model.safetensors seven.png two.png --json

  # An IDX images file (raw or gzip), with its labels to also print the accuracy
  glorot predict --weights model.safetensors data/mnist/t10k-images-idx3-ubyte.gz \\
    --labels data/mnist/t10k-labels-idx1-ubyte.gz

Inputs are told apart by content: a file starting with the PNG signature is a PNG, anything
else is read as an IDX images file (validated: magic, rank, 28x28, exact length). A PNG must
already be what an MNIST image is: 28x28 pixels, greyscale, 8 bits (colour type 0); RGB,
palette, alpha, 16-bit or 1/2/4-bit PNGs and any other size are refused, not converted
(a guessed conversion gives confident wrong answers). Convert first, for example:
  magick in.png -background black -alpha remove -colorspace Gray -resize 28x28! \\
    -define png:color-type=0 -define png:bit-depth=8 out.png
(add -negate for a dark digit on a light background). Pixels are scaled as in training
(byte / 256).

Probabilities: with the notebook's head (sigmoid_bce) they are the ten sigmoid outputs as
they are: each is the network's own estimate for its class, trained one-vs-rest by the
summed binary cross-entropy, so they need not sum to 1 and are not rescaled (dividing by
their sum would invent a distribution the network never produced). With the softmax head
(softmax_cross_entropy) they are the softmax of the outputs and sum to 1. The predicted
class is the largest output (the first on ties), exactly as glorot eval counts accuracy.
Weights from glorot train --save-weights and glorot search best --save-weights both work.";

/// Options of `glorot predict`.
#[derive(Args, Debug)]
#[command(after_help = PREDICT_EXAMPLES)]
pub(crate) struct PredictArgs {
    /// The weights file (safetensors, as written by `glorot train --save-weights` or
    /// `glorot search best --save-weights`).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Images: PNG files (28x28, 8-bit greyscale) or IDX images files (raw or gzip).
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,
    /// An IDX labels file (raw or gzip) for a single IDX INPUT: also print the accuracy.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Compute in this precision [default: the precision of the weights].
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    precision: Option<Precision>,
    /// Print the predictions as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// BLAS threads [default: every CPU].
    #[arg(long, value_name = "N", value_parser = parse_positive)]
    blas_threads: Option<usize>,
}

/// `glorot predict`.
pub(crate) fn run(args: PredictArgs) -> Result<()> {
    if args.labels.is_some() && args.inputs.len() != 1 {
        return usage("--labels needs exactly one INPUT, an IDX images file");
    }
    let plan = crate::train::single_thread_plan(args.blas_threads)?;
    let info = glorot_mlp::read_weights_info(&args.weights).context("cannot read the weights")?;
    let interrupted = Interruption::of_weights(&info.metadata);
    if let Some(at) = interrupted {
        Stderr::new(false).warn(format!(
            "{} holds the weights of an interrupted training (stopped {at})",
            args.weights.display()
        ));
    }
    let inputs = Inputs::read(&args.inputs).context("cannot read the images to predict")?;
    let labels_for = match (&args.labels, inputs.files.as_slice()) {
        (None, _) => None,
        (Some(labels), [only]) if only.format == InputFormat::Idx => {
            Some((labels, only.path.clone()))
        }
        (Some(_), _) => {
            return usage("--labels needs an IDX images file as INPUT, not a PNG");
        }
    };
    let precision = args.precision.unwrap_or(info.precision);
    // A file whose config the model refuses is reported by the loading below.
    if let Ok(model) = info.config.validate() {
        common::check_memory(
            "this prediction",
            predict_bytes(&model, precision, inputs.len()),
        )?;
    }
    let predicted: Predicted = match precision {
        Precision::F32 => predict::<f32>(&args.weights, &info, inputs.pixels.view())?,
        Precision::F64 => predict::<f64>(&args.weights, &info, inputs.pixels.view())?,
    };
    let (labelled, labels) = match labels_for {
        Some((path, images_file)) => {
            let (labelled, labels) = Labelled::read(path, &images_file, &predicted)
                .context("cannot compare with the labels")?;
            (Some(labelled), Some(labels))
        }
        None => (None, None),
    };
    let output = PredictOutput {
        schema_version: PREDICT_SCHEMA_VERSION,
        weights: args.weights.clone(),
        model: info.config.clone(),
        precision,
        probabilities: predicted.kind,
        interrupted,
        metadata: info.metadata.clone(),
        inputs: inputs.files.clone(),
        labelled,
        predictions: predicted.rows(&inputs, labels.as_deref()),
        manifest: common::manifest(plan),
    };
    if args.json {
        return print_json(&output);
    }
    out(format!(
        "# {}: class, then the probability of each class 0..{}: {}",
        args.weights.display(),
        output
            .model
            .layers
            .last()
            .map_or(0, |k| k.saturating_sub(1)),
        match output.probabilities {
            Probabilities::Sigmoid => {
                "the sigmoid outputs, each class's own one-vs-rest estimate (they need not sum to 1)"
            }
            Probabilities::Softmax => "the softmax of the outputs (they sum to 1)",
        }
    ))?;
    for p in &output.predictions {
        let source = match p.index {
            Some(i) => format!("{}[{i}]", p.file.display()),
            None => p.file.display().to_string(),
        };
        let probabilities: Vec<String> =
            p.probabilities.iter().map(|v| format!("{v:.4}")).collect();
        let label = match p.label {
            Some(l) if usize::from(l) == p.class => format!("  (label {l})"),
            Some(l) => format!("  (label {l}: wrong)"),
            None => String::new(),
        };
        out(format!(
            "{source}: {}  {}{label}",
            p.class,
            probabilities.join(" ")
        ))?;
    }
    if let Some(l) = &output.labelled {
        out(format!(
            "accuracy {} ({} of {} correct) against {}",
            l.accuracy
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.2}%")),
            l.correct,
            count(l.samples, "image", "images"),
            l.labels.display()
        ))?;
    }
    Ok(())
}
