//! Predictions of saved weights for new images (`glorot predict`): the inputs (IDX
//! images files and 28 x 28 greyscale PNGs, told apart by content), the forward pass in
//! chunks, and the results type [`PredictOutput`].
//!
//! Images are scaled exactly as for training and `glorot eval`: bytes through
//! [`PIXEL_SCALE`] into `f32`, then into the precision of the
//! computation by [`Compute`], the one conversion of the loaded data. The predicted class
//! is the argmax of the network's output (first maximum wins), as [`glorot_mlp::Evaluator`]
//! counts it, so the predictions on a labelled file agree with `glorot eval`'s accuracy.
//!
//! What the probabilities are depends on the head ([`Probabilities`]): the notebook's
//! head outputs ten independent sigmoids trained one-vs-rest by a summed binary
//! cross-entropy, and they are reported as they are (they need not sum to 1; dividing by
//! their sum would make numbers that look like a distribution but that the network never
//! produced nor was trained to produce); the softmax head's are the softmax of the logits,
//! which sum to 1.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use glorot_mlp::{ConfusionMatrix, EVAL_CHUNK, Head, ModelConfig, Precision, Workspace};
use glorot_mnist::PIXELS;
use glorot_tensor::{argmax_rows, softmax_rows_inplace};
use ndarray::{Array2, ArrayView2, s};
use serde::{Deserialize, Serialize};

use crate::data::{Compute, PIXEL_SCALE};
use crate::error::{Error, Result};
use crate::train::{Interruption, load_weights};

/// Version of the JSON `glorot predict --json` prints.
pub const PREDICT_SCHEMA_VERSION: u32 = 1;

/// What the probabilities of a prediction are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probabilities {
    /// The sigmoid outputs of [`Head::SigmoidBce`] as they are: output `k` is the network's
    /// own estimate that the image is of class `k`, each trained on its own (one-vs-rest,
    /// summed binary cross-entropy). They need not sum to 1 and are not rescaled.
    Sigmoid,
    /// The softmax of [`Head::SoftmaxCrossEntropy`]'s logits: a distribution over the
    /// classes, summing to 1.
    Softmax,
}

impl Probabilities {
    /// What `head`'s outputs are.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] for a head this version does not know.
    pub fn of(head: Head) -> Result<Self> {
        match head {
            Head::SigmoidBce => Ok(Probabilities::Sigmoid),
            Head::SoftmaxCrossEntropy => Ok(Probabilities::Softmax),
            other => Err(Error::InvalidOptions(format!(
                "predictions of the head {other} are not supported"
            ))),
        }
    }
}

/// How an input file was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// An IDX images file (raw or gzip), validated by [`glorot_mnist::idx`].
    Idx,
    /// A 28 x 28 8-bit greyscale PNG ([`glorot_mnist::image`]).
    Png,
}

/// One input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// As given.
    pub path: PathBuf,
    /// How it was read (by its content, not its name).
    pub format: InputFormat,
    /// Images it holds (1 for a PNG).
    pub images: usize,
}

/// The images to predict, read from files: their pixel bytes and where each came from.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The files, in the order given.
    pub files: Vec<InputFile>,
    /// Pixel bytes, `(images, 784)`, in the files' order.
    pub pixels: Array2<u8>,
    /// For each image: its file (an index into `files`) and, for an IDX file, its index
    /// in that file.
    pub origins: Vec<(usize, Option<usize>)>,
}

impl Inputs {
    /// Reads every file: a PNG (by its signature) as one 28 x 28 greyscale image, anything
    /// else as an IDX images file (raw or gzip).
    ///
    /// # Errors
    /// [`Error::Mnist`] naming the file for a file that cannot be read, a PNG that is
    /// corrupt, not 28 x 28 or not 8-bit greyscale, or an IDX file that is not a valid
    /// images file (truncated, wrong magic, rank or image size).
    pub fn read(paths: &[PathBuf]) -> Result<Inputs> {
        let mut files = Vec::with_capacity(paths.len());
        let mut bytes = Vec::new();
        let mut origins = Vec::new();
        for path in paths {
            let format = if starts_as_png(path)? {
                InputFormat::Png
            } else {
                InputFormat::Idx
            };
            let images = match format {
                InputFormat::Png => {
                    bytes.extend_from_slice(&glorot_mnist::image::read_png(path)?);
                    origins.push((files.len(), None));
                    1
                }
                InputFormat::Idx => {
                    let images = glorot_mnist::idx::read_images_file(path)?;
                    bytes.extend_from_slice(images.pixels());
                    origins.extend((0..images.count()).map(|i| (files.len(), Some(i))));
                    images.count()
                }
            };
            files.push(InputFile {
                path: path.clone(),
                format,
                images,
            });
        }
        let pixels = Array2::from_shape_vec((origins.len(), PIXELS), bytes)
            .expect("every image read is 784 bytes");
        Ok(Inputs {
            files,
            pixels,
            origins,
        })
    }

    /// Images read.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// Whether no image was read (IDX files of 0 images).
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

/// Whether the file at `path` starts with the PNG signature.
fn starts_as_png(path: &Path) -> Result<bool> {
    let io = |e| glorot_mnist::Error::Io {
        path: path.to_owned(),
        source: e,
    };
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(path)
        .map_err(io)?
        .take(8)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(glorot_mnist::image::is_png(&head))
}

/// The network's answer for each image.
#[derive(Clone, Debug, PartialEq)]
pub struct Predicted {
    /// The predicted class of each image: the argmax output, first maximum wins.
    pub classes: Vec<usize>,
    /// `(images, outputs)`: the probabilities ([`Probabilities`]) of each image.
    pub probabilities: Array2<f64>,
    /// What the probabilities are.
    pub kind: Probabilities,
}

/// Predicts the class of every image of `pixels: (images, 784)` (bytes, scaled as for
/// training) with the weights in `path` (described by `info`), computing in `F`,
/// [`EVAL_CHUNK`] images at a time.
///
/// # Errors
/// When the weights cannot be read, or the model does not take 784 inputs.
pub fn predict<F: Compute>(
    path: &Path,
    info: &glorot_mlp::WeightsInfo,
    pixels: ArrayView2<'_, u8>,
) -> Result<Predicted> {
    let model = load_weights::<F>(path, &info.config, info.precision)?;
    let config = model.config();
    let kind = Probabilities::of(config.head())?;
    if config.inputs() != pixels.ncols() {
        return Err(glorot_mlp::Error::DataShape {
            what: "images: pixels per image, the model's inputs",
            expected: config.inputs(),
            found: pixels.ncols(),
        }
        .into());
    }
    let n = pixels.nrows();
    let outputs = config.outputs();
    let chunk = n.clamp(1, EVAL_CHUNK);
    let mut ws = Workspace::<F>::inference(config, chunk);
    let mut classes = vec![0; n];
    let mut probabilities = Array2::zeros((n, outputs));
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let scaled = PIXEL_SCALE.apply::<f32>(pixels.slice(s![start..end, ..]));
        let x = F::images(&scaled);
        model.forward(x.view(), &mut ws);
        argmax_rows(ws.output(), &mut classes[start..end]);
        let mut out = ws.output().to_owned();
        if kind == Probabilities::Softmax {
            softmax_rows_inplace(out.view_mut());
        }
        probabilities
            .slice_mut(s![start..end, ..])
            .assign(&out.mapv(|v| v.to_f64()));
    }
    Ok(Predicted {
        classes,
        probabilities,
        kind,
    })
}

/// Upper bound of the bytes [`predict`] allocates for weights of the architecture `model`
/// on `images` images in `precision`, beyond the pixel bytes read: the model and the
/// evaluation buffers ([`glorot_mlp::memory::evaluation_bytes`]), one chunk of images in
/// `f32` (and `f64`), and the classes and probabilities of every image.
///
/// # Errors
/// [`glorot_mlp::Error::MemoryOverflow`] (as [`Error::Mlp`]) when the count does not fit
/// in 64 bits.
pub fn predict_bytes(
    model: &glorot_mlp::ValidModelConfig,
    precision: Precision,
    images: usize,
) -> Result<u64> {
    let buffers = glorot_mlp::memory::evaluation_bytes(model, precision, images)?;
    let chunk = images.clamp(1, EVAL_CHUNK) as u128;
    let inputs = model.inputs() as u128;
    let element: u128 = match precision {
        Precision::F32 => 4,
        Precision::F64 => 4 + 8,
    };
    let outputs = model.outputs() as u128;
    let extra = chunk * inputs * element + chunk * outputs * 8 + images as u128 * (8 + outputs * 8);
    u64::try_from(u128::from(buffers) + extra).map_err(|_| {
        glorot_mlp::Error::MemoryOverflow {
            what: "predicting with this model".to_owned(),
        }
        .into()
    })
}

/// What `glorot predict --json` prints.
#[derive(Debug, Serialize)]
pub struct PredictOutput {
    /// [`PREDICT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The weights file.
    pub weights: PathBuf,
    /// Its architecture.
    pub model: ModelConfig,
    /// The precision computed in.
    pub precision: Precision,
    /// What the probabilities are: `sigmoid` or `softmax`.
    pub probabilities: Probabilities,
    /// Where the training that wrote the weights was interrupted (absent for a finished
    /// one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
    /// The weights file's further metadata (as `glorot eval --json`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The input files.
    pub inputs: Vec<InputFile>,
    /// The accuracy against a labels file, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled: Option<Labelled>,
    /// One per image, in the inputs' order.
    pub predictions: Vec<Prediction>,
    /// Where and how it ran.
    pub manifest: glorot_search::Manifest,
}

/// The prediction of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The file it came from.
    pub file: PathBuf,
    /// Its index in an IDX file (absent for a PNG).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<usize>,
    /// The predicted class.
    pub class: usize,
    /// Its label, when a labels file was given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<u8>,
    /// One per class ([`PredictOutput::probabilities`] says what they are).
    pub probabilities: Vec<f64>,
}

/// Predictions against labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Labelled {
    /// The labels file.
    pub labels: PathBuf,
    /// Images whose predicted class is their label.
    pub correct: usize,
    /// Images.
    pub samples: usize,
    /// `100 * correct / samples`, as `glorot eval` computes it; `null` for no image.
    pub accuracy: Option<f64>,
}

impl Labelled {
    /// Compares `predicted` with the labels in `path` (an IDX labels file, raw or gzip,
    /// one per image of the single IDX file `images_file`).
    ///
    /// # Errors
    /// [`Error::Mnist`] when the labels file cannot be read or holds another number of
    /// labels than there are images; [`Error::Mlp`] when a label is not below the model's
    /// outputs.
    pub fn read(path: &Path, images_file: &Path, predicted: &Predicted) -> Result<(Self, Vec<u8>)> {
        let labels = glorot_mnist::idx::read_labels_file(path)?;
        if labels.len() != predicted.classes.len() {
            return Err(glorot_mnist::Error::CountMismatch {
                images_file: images_file.to_owned(),
                labels_file: path.to_owned(),
                images: predicted.classes.len() as u64,
                labels: labels.len() as u64,
            }
            .into());
        }
        let m = ConfusionMatrix::from_predictions(
            predicted.probabilities.ncols(),
            &labels,
            &predicted.classes,
        )?;
        let labelled = Labelled {
            labels: path.to_owned(),
            correct: m.correct(),
            samples: m.samples(),
            accuracy: m.accuracy(),
        };
        Ok((labelled, labels))
    }
}

impl Predicted {
    /// One [`Prediction`] per image, with its origin in `inputs` and its label.
    pub fn rows(&self, inputs: &Inputs, labels: Option<&[u8]>) -> Vec<Prediction> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, &class)| {
                let (file, index) = inputs.origins[i];
                Prediction {
                    file: inputs.files[file].path.clone(),
                    index,
                    class,
                    label: labels.map(|l| l[i]),
                    probabilities: self.probabilities.row(i).to_vec(),
                }
            })
            .collect()
    }
}
