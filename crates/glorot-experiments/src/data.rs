//! The data preparation between `glorot-mnist` and `glorot-mlp`: which dataset, its
//! subsets ([`DataSpec`], [`load`]), how it is named so that journals and caches never mix
//! data ([`Loaded::description`]), how it is recorded in results files ([`DataInfo`],
//! [`DatasetInfo`]), and the images in the element type of training ([`Compute`]).

use std::path::{Path, PathBuf};

use glorot_mlp::{EvalData, FitData, MlpFloat, TrainData};
use glorot_mnist::{DatasetKind, DigestCheck, LoadOptions, Mnist, SplitData, Verify};
use glorot_search::SearchData;
use ndarray::{Array2, CowArray, Ix2, s};
use serde::{Deserialize, Serialize};

use crate::error::{Context as _, Error, Result};

/// How glorot turns pixel bytes into inputs, for training, evaluation and prediction alike:
/// byte / 256, the notebook's (`mnist.pkl.gz` was made so). [`load`] scales the datasets
/// with it and [`crate::predict`] the images it reads; weights files do not record it,
/// because every glorot training uses it.
pub const PIXEL_SCALE: glorot_mnist::PixelScale = glorot_mnist::PixelScale::Div256;

/// Which dataset to read and which part of it to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSpec {
    /// MNIST or Fashion-MNIST.
    pub dataset: DatasetKind,
    /// Compare the files' SHA-256 with the published ones (`false` for custom data in
    /// the MNIST format; the structure is still checked).
    pub verify: bool,
    /// Training images held out for validation, from the end of the training file.
    pub validation_size: usize,
    /// Train on the first N training images only.
    pub train_limit: Option<usize>,
    /// Validate on the first N validation images only.
    pub val_limit: Option<usize>,
    /// Test on the first N test images only.
    pub test_limit: Option<usize>,
}

impl Default for DataSpec {
    /// The notebook's: MNIST, verified, 10,000 validation images, no limits.
    fn default() -> Self {
        DataSpec {
            dataset: DatasetKind::Mnist,
            verify: true,
            validation_size: glorot_mnist::DEFAULT_VALIDATION_SIZE,
            train_limit: None,
            val_limit: None,
            test_limit: None,
        }
    }
}

/// A dataset loaded for training, with the subsets applied.
#[derive(Debug)]
pub struct Loaded {
    /// The splits (train, validation, test), limited as asked.
    pub mnist: Mnist<f32>,
    /// Sizes of the splits before the limits.
    pub full_sizes: [usize; 3],
}

/// Reads, verifies, splits and limits the dataset in `dir` (found with
/// [`glorot_mnist::locate`]).
///
/// # Errors
/// [`Error::Mnist`] when the files cannot be read or verified, [`Error::InvalidOptions`]
/// when the training or the validation split is empty.
pub fn load(dir: &Path, spec: &DataSpec) -> Result<Loaded> {
    let options = LoadOptions {
        dataset: spec.dataset,
        validation_size: spec.validation_size,
        scale: PIXEL_SCALE,
        verify: if spec.verify {
            Verify::Digests
        } else {
            Verify::Skip
        },
    };
    let mut mnist = glorot_mnist::load(dir, &options)
        .with_context(|| format!("cannot load {} from {}", spec.dataset, dir.display()))?;
    let full_sizes = [mnist.train.len(), mnist.validation.len(), mnist.test.len()];
    limit(&mut mnist.train, spec.train_limit);
    limit(&mut mnist.validation, spec.val_limit);
    limit(&mut mnist.test, spec.test_limit);
    if mnist.train.is_empty() {
        return Err(Error::InvalidOptions(format!(
            "the training split is empty: --validation-size {} leaves no training images",
            spec.validation_size
        )));
    }
    if mnist.validation.is_empty() {
        return Err(Error::InvalidOptions(
            "the validation split is empty: training reports validation accuracy every \
             epoch, so --validation-size must be at least 1"
                .to_owned(),
        ));
    }
    Ok(Loaded { mnist, full_sizes })
}

fn limit(split: &mut SplitData<f32>, n: Option<usize>) {
    if let Some(n) = n.filter(|&n| n < split.len()) {
        split.images = split.images.slice(s![..n, ..]).to_owned();
        split.labels.truncate(n);
    }
}

impl Loaded {
    /// Names the training and validation data exactly enough that two runs with equal
    /// descriptions train on equal data: dataset, split sizes (and the subsets taken),
    /// pixel scaling, and the SHA-256 of the training files (the validation split is
    /// part of them). The directory is not part of it, so data may move.
    pub fn description(&self) -> String {
        let m = &self.mnist;
        let digest = |role: glorot_mnist::FileRole| {
            m.files
                .iter()
                .find(|f| f.role == role)
                .map(|f| f.sha256.get(..16).unwrap_or(&f.sha256).to_owned())
                .unwrap_or_else(|| "?".into())
        };
        format!(
            "{}: train {} of {}, validation {} of {} (last {} training images held out), \
             pixels/256, train-images sha256 {}.., train-labels sha256 {}..",
            m.kind,
            m.train.len(),
            self.full_sizes[0],
            m.validation.len(),
            self.full_sizes[1],
            self.full_sizes[1],
            digest(glorot_mnist::FileRole::TrainImages),
            digest(glorot_mnist::FileRole::TrainLabels),
        )
    }

    /// A serializable summary for results files.
    pub fn info(&self) -> DataInfo {
        let m = &self.mnist;
        DataInfo {
            dataset: m.kind.name().to_owned(),
            dir: m.dir.clone(),
            train: m.train.len(),
            validation: m.validation.len(),
            test: m.test.len(),
            description: self.description(),
        }
    }

    /// Moves the splits into the data a grid search shares between its trials (the test
    /// split only when `with_test`).
    pub fn into_search_data(self, with_test: bool) -> SearchData {
        let description = self.description();
        let m = self.mnist;
        let train_y = glorot_tensor::one_hot::<f32>(&m.train.labels, glorot_mnist::NUM_CLASSES);
        let data = SearchData::new(
            m.train.images,
            train_y,
            m.validation.images,
            m.validation.labels,
            description,
        );
        if with_test {
            data.with_test(m.test.images, m.test.labels)
        } else {
            data
        }
    }
}

/// The data of a run, as recorded in the results JSON of `glorot train`, `glorot eval`
/// and `glorot search best --test`.
#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    /// `mnist` or `fashion-mnist`.
    pub dataset: String,
    /// Where it was read from.
    pub dir: PathBuf,
    /// Training rows used.
    pub train: usize,
    /// Validation rows used.
    pub validation: usize,
    /// Test rows available.
    pub test: usize,
    /// [`Loaded::description`].
    pub description: String,
}

/// The dataset a study read, as recorded in its run manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// `mnist`.
    pub kind: String,
    /// Directory read.
    pub dir: String,
    /// One entry per file: role, SHA-256 of the decompressed IDX bytes, digest check.
    pub files: Vec<FileInfo>,
    /// Rows of the training split used.
    pub train: usize,
    /// Rows of the validation split used.
    pub validation: usize,
    /// Rows of the test split.
    pub test: usize,
    /// `true` when only a leading subset of the splits was used (`--quick`).
    pub subset: bool,
    /// Pixel scaling (`div256`, the notebook's, or `div255`).
    pub scale: String,
}

/// One dataset file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileInfo {
    /// `train-images`, `train-labels`, `test-images`, `test-labels`.
    pub role: String,
    /// SHA-256 of the decompressed IDX bytes.
    pub sha256: String,
    /// `match`, `mismatch` or `not-checked`.
    pub check: String,
}

/// The data of the studies: the loaded splits, how results files record them, and their
/// description.
#[derive(Debug)]
pub struct Data {
    /// The splits.
    pub mnist: Mnist<f32>,
    /// What the run manifests record.
    pub info: DatasetInfo,
    description: String,
}

impl Data {
    /// Wraps loaded data.
    pub fn from_loaded(loaded: Loaded) -> Data {
        let description = loaded.description();
        let mnist = loaded.mnist;
        let subset = mnist.train.len() < loaded.full_sizes[0]
            || mnist.validation.len() < loaded.full_sizes[1]
            || mnist.test.len() < loaded.full_sizes[2];
        let files = mnist
            .files
            .iter()
            .map(|f| FileInfo {
                role: plain(&f.role),
                sha256: f.sha256.clone(),
                check: match f.check {
                    DigestCheck::Match => "match",
                    DigestCheck::Mismatch { .. } => "mismatch",
                    _ => "not-checked",
                }
                .to_owned(),
            })
            .collect();
        let info = DatasetInfo {
            kind: mnist.kind.name().to_owned(),
            dir: mnist.dir.display().to_string(),
            files,
            train: mnist.train.len(),
            validation: mnist.validation.len(),
            test: mnist.test.len(),
            subset,
            scale: "div256".to_owned(),
        };
        Data {
            mnist,
            info,
            description,
        }
    }

    /// The first `train` training and `validation` validation rows (all of a split that
    /// is smaller); the test split is kept whole.
    pub fn subset(&self, train: usize, validation: usize) -> Data {
        let mut mnist = self.mnist.clone();
        let mut info = self.info.clone();
        if train < mnist.train.len() {
            mnist.train = head(&mnist.train, train);
            info.subset = true;
        }
        if validation < mnist.validation.len() {
            mnist.validation = head(&mnist.validation, validation);
            info.subset = true;
        }
        info.train = mnist.train.len();
        info.validation = mnist.validation.len();
        let description = format!(
            "{}; quick subset: train {}, validation {}",
            self.description, info.train, info.validation
        );
        Data {
            mnist,
            info,
            description,
        }
    }

    /// Names the data exactly enough that runs with equal descriptions trained on equal
    /// data (split sizes, subsets, digests): journals and caches never mix data.
    pub fn description(&self) -> String {
        self.description.clone()
    }
}

fn head(split: &SplitData<f32>, n: usize) -> SplitData<f32> {
    SplitData::new(
        split.images.slice(s![..n, ..]).to_owned(),
        split.labels[..n].to_vec(),
    )
}

/// The element types training runs in, with the images (stored as `f32`) in that type:
/// borrowed as they are for `f32`, converted once for `f64` (pixels `k / 256` are exact in
/// both). The one conversion of the loaded images.
pub trait Compute: MlpFloat {
    /// `x` in this precision.
    fn images(x: &Array2<f32>) -> CowArray<'_, Self, Ix2>;
}

impl Compute for f32 {
    fn images(x: &Array2<f32>) -> CowArray<'_, f32, Ix2> {
        CowArray::from(x.view())
    }
}

impl Compute for f64 {
    fn images(x: &Array2<f32>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(x.mapv(f64::from))
    }
}

/// The splits in one element type, with one-hot training targets.
#[derive(Debug)]
pub(crate) struct Splits<'a, F: Compute> {
    pub(crate) train_x: CowArray<'a, F, Ix2>,
    pub(crate) train_y: Array2<F>,
    pub(crate) val_x: CowArray<'a, F, Ix2>,
    pub(crate) val_labels: &'a [u8],
    pub(crate) test_x: CowArray<'a, F, Ix2>,
    pub(crate) test_labels: &'a [u8],
}

impl<'a, F: Compute> Splits<'a, F> {
    /// The loaded `f32` data in `F` (exact: pixels are multiples of 1/256).
    pub(crate) fn new(m: &'a Mnist<f32>) -> Self {
        Splits {
            train_x: F::images(&m.train.images),
            train_y: glorot_tensor::one_hot::<F>(&m.train.labels, glorot_mnist::NUM_CLASSES),
            val_x: F::images(&m.validation.images),
            val_labels: &m.validation.labels,
            test_x: F::images(&m.test.images),
            test_labels: &m.test.labels,
        }
    }

    /// Views for the trainer; the test split only when asked.
    pub(crate) fn fit(&self, with_test: bool) -> Result<FitData<'_, F>> {
        let test = if with_test {
            Some(EvalData::new(self.test_x.view(), self.test_labels)?)
        } else {
            None
        };
        Ok(FitData {
            train: TrainData::new(self.train_x.view(), self.train_y.view())?,
            validation: EvalData::new(self.val_x.view(), self.val_labels)?,
            test,
        })
    }
}

/// Training example `index` of `split` as a one-row `f64` batch, with its one-hot
/// target: what the gradient checks differentiate (the notebook's `training_inputs[0]`).
///
/// # Panics
/// When `index` is out of range.
pub fn example(split: &SplitData<f32>, index: usize) -> (Array2<f64>, Array2<f64>) {
    let x = split.images.slice(s![index..=index, ..]).mapv(f64::from);
    let y = glorot_tensor::one_hot::<f64>(&split.labels[index..=index], glorot_mnist::NUM_CLASSES);
    (x, y)
}

/// A unit enum's serde name.
pub(crate) fn plain<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
