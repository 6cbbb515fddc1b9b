//! Loading a dataset directory: read, verify, split, scale.

use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::hex;
use crate::idx::{self, Expect, Images};
use crate::{DatasetKind, Error, FileRole, NUM_CLASSES, PIXELS};

/// The three parts of a dataset used for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// The first `60,000 - validation_size` training images (50,000 by default).
    Train,
    /// The last `validation_size` training images (10,000 by default).
    Validation,
    /// The 10,000 `t10k` images.
    Test,
}

impl Split {
    /// All three, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// `train`, `validation` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// How a pixel byte becomes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PixelScale {
    /// `byte / 256`: how the notebook's `mnist.pkl.gz` was made, so 255 becomes
    /// 0.99609375, not 1.0. Exact in `f32`.
    #[default]
    Div256,
    /// `byte / 255`: 255 becomes 1.0.
    Div255,
}

impl PixelScale {
    /// The divisor: 256 or 255.
    pub fn divisor(self) -> u16 {
        match self {
            PixelScale::Div256 => 256,
            PixelScale::Div255 => 255,
        }
    }

    /// The pixel bytes `pixels: (images, 784)` as numbers in `T`, each
    /// [`Real::from_pixel`] (through a 256-entry table): how [`load`] scales the dataset,
    /// for images read any other way (an IDX file of one's own, a PNG) to be scaled
    /// exactly alike.
    pub fn apply<T: Real>(self, pixels: ArrayView2<'_, u8>) -> Array2<T> {
        let table: [T; 256] = std::array::from_fn(|b| T::from_pixel(b as u8, self));
        pixels.mapv(|b| table[usize::from(b)])
    }
}

/// Whether loading checks the SHA-256 of each decompressed file against the published one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// Check every file's digest on every load (default). Costs about 0.03 s (SHA-256 of
    /// 55 MB) for the full dataset; the decompressed bytes are in memory anyway.
    #[default]
    Digests,
    /// Do not compare digests (they are still computed and reported): for custom data in
    /// the MNIST format, the CLI's `--no-verify`. Structure is validated regardless.
    Skip,
}

/// Options for [`load`]. A plain serde struct, so it can go straight into results JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// Which dataset the directory holds (selects the digests).
    pub dataset: DatasetKind,
    /// Training examples held out, from the end of the training file (default 10,000,
    /// the notebook's split). 0 trains on all 60,000.
    pub validation_size: usize,
    /// Pixel scaling (default `byte / 256`, the notebook's).
    pub scale: PixelScale,
    /// Digest checking (default on).
    pub verify: Verify,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dataset: DatasetKind::Mnist,
            validation_size: DEFAULT_VALIDATION_SIZE,
            scale: PixelScale::Div256,
            verify: Verify::Digests,
        }
    }
}

/// The notebook's validation size: images 50,000..60,000 of the training file.
pub const DEFAULT_VALIDATION_SIZE: usize = 10_000;

/// The element types images and targets can be produced in: `f32` and `f64`.
pub trait Real: Copy + Send + Sync + std::fmt::Debug + 'static + sealed::Sealed {
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// `byte / scale.divisor()`, computed (and rounded once) in this type.
    fn from_pixel(byte: u8, scale: PixelScale) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_pixel(byte: u8, scale: PixelScale) -> Self {
        f32::from(byte) / f32::from(scale.divisor())
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_pixel(byte: u8, scale: PixelScale) -> Self {
        f64::from(byte) / f64::from(scale.divisor())
    }
}

/// Outcome of comparing one file's digest with the published one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum DigestCheck {
    /// Matches the published SHA-256.
    Match,
    /// Differs from the published SHA-256.
    Mismatch {
        /// The published SHA-256.
        expected: &'static str,
    },
    /// Not compared ([`Verify::Skip`]).
    NotChecked,
}

/// What was read from one file, and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// Which of the four files.
    pub role: FileRole,
    /// Where it was read from.
    pub path: PathBuf,
    /// Whether the file was gzip-compressed (detected from its content).
    pub gzip: bool,
    /// Length of the file on disk.
    pub file_bytes: u64,
    /// Length of the decompressed IDX bytes.
    pub idx_bytes: u64,
    /// SHA-256 of the decompressed IDX bytes, lowercase hex.
    pub sha256: String,
    /// Comparison with the published digest.
    pub check: DigestCheck,
}

/// One file read into memory: decompressed bytes plus their digest.
#[derive(Debug)]
struct ReadFile {
    idx: Vec<u8>,
    digest: FileDigest,
}

fn read_file(
    path: &Path,
    role: FileRole,
    kind: DatasetKind,
    verify: Verify,
    expect: Option<Expect>,
) -> Result<ReadFile, Error> {
    let (idx, gzip, file_bytes) = idx::read_path(path, expect)?;
    let sha256 = hex(&Sha256::digest(&idx));
    let known = kind.known(role);
    let check = match verify {
        Verify::Skip => DigestCheck::NotChecked,
        Verify::Digests if sha256 == known.idx_sha256 => DigestCheck::Match,
        Verify::Digests => DigestCheck::Mismatch {
            expected: known.idx_sha256,
        },
    };
    let digest = FileDigest {
        role,
        path: path.to_owned(),
        gzip,
        file_bytes,
        idx_bytes: idx.len() as u64,
        sha256,
        check,
    };
    Ok(ReadFile { idx, digest })
}

impl FileDigest {
    /// The [`Error::DigestMismatch`] describing this file (whatever its check says).
    pub(crate) fn mismatch_error(&self, kind: DatasetKind) -> Error {
        Error::DigestMismatch {
            file: self.path.clone(),
            dataset: kind,
            name: self.role.file_name(),
            expected: kind.known(self.role).idx_sha256,
            found: self.sha256.clone(),
            looks_like: DatasetKind::identify(self.role, &self.sha256),
            known_as: DatasetKind::identify_file(&self.sha256),
        }
    }

    /// `Err(DigestMismatch)` if the check failed.
    fn ensure_match(&self, kind: DatasetKind) -> Result<(), Error> {
        match self.check {
            DigestCheck::Mismatch { .. } => Err(self.mismatch_error(kind)),
            DigestCheck::Match | DigestCheck::NotChecked => Ok(()),
        }
    }
}

/// Reads one file and compares its decompressed digest with `kind`'s.
pub(crate) fn digest_file(
    path: &Path,
    role: FileRole,
    kind: DatasetKind,
) -> Result<FileDigest, Error> {
    read_file(path, role, kind, Verify::Digests, None).map(|f| f.digest)
}

/// Computes the digest of each of the four files in `dir` and compares it with `kind`'s
/// published one, without stopping at a mismatch: for reports such as `glorot data verify`.
///
/// # Errors
/// [`Error::MissingFiles`], [`Error::Io`], [`Error::Gzip`], [`Error::TooLarge`]. A digest
/// mismatch is not an error here: see [`FileDigest::check`].
pub fn digest_dir(dir: &Path, kind: DatasetKind) -> Result<Vec<FileDigest>, Error> {
    let paths = crate::find_files(dir)?;
    FileRole::ALL
        .iter()
        .zip(&paths)
        .map(|(&role, path)| digest_file(path, role, kind))
        .collect()
}

/// Checks the four files in `dir` against `kind`'s published digests.
///
/// # Errors
/// As [`digest_dir`], plus [`Error::DigestMismatch`] for the first file that differs,
/// naming it and telling how to re-fetch.
pub fn verify_dir(dir: &Path, kind: DatasetKind) -> Result<Vec<FileDigest>, Error> {
    let digests = digest_dir(dir, kind)?;
    digests.iter().try_for_each(|d| d.ensure_match(kind))?;
    Ok(digests)
}

/// A dataset as stored: the training and test files, validated, unsplit and unscaled.
#[derive(Debug, Clone)]
pub struct RawDataset {
    /// Which dataset.
    pub kind: DatasetKind,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The four files read, in [`FileRole::ALL`] order, with their digests.
    pub files: Vec<FileDigest>,
    train_images: Images,
    train_labels: Vec<u8>,
    test_images: Images,
    test_labels: Vec<u8>,
}

/// Reads and validates the four files in `dir` (each raw or gzip), checking digests
/// unless `verify` is [`Verify::Skip`].
///
/// The training images are read on a second thread while the other three files are read
/// on this one.
///
/// # Errors
/// [`Error::MissingFiles`], [`Error::Io`], [`Error::DigestMismatch`], any IDX format error
/// from [`crate::idx`], [`Error::CountMismatch`] when an images file and its labels
/// disagree.
pub fn load_raw(dir: &Path, kind: DatasetKind, verify: Verify) -> Result<RawDataset, Error> {
    let paths = crate::find_files(dir)?;
    let [
        train_images_path,
        train_labels_path,
        test_images_path,
        test_labels_path,
    ] = &paths;

    let read_images = |path: &Path, role: FileRole| -> Result<(Images, FileDigest), Error> {
        let f = read_file(path, role, kind, verify, Some(Expect::Images))?;
        f.digest.ensure_match(kind)?;
        Ok((idx::images_from_idx(f.idx, path)?, f.digest))
    };
    let read_labels = |path: &Path, role: FileRole| -> Result<(Vec<u8>, FileDigest), Error> {
        let f = read_file(path, role, kind, verify, Some(Expect::Labels))?;
        f.digest.ensure_match(kind)?;
        Ok((idx::labels_from_idx(&f.idx, path)?, f.digest))
    };

    let (train_images, rest) = std::thread::scope(|s| {
        let train_images = s.spawn(|| read_images(train_images_path, FileRole::TrainImages));
        let rest = (|| {
            let train_labels = read_labels(train_labels_path, FileRole::TrainLabels)?;
            let test_images = read_images(test_images_path, FileRole::TestImages)?;
            let test_labels = read_labels(test_labels_path, FileRole::TestLabels)?;
            Ok::<_, Error>((train_labels, test_images, test_labels))
        })();
        // A panic in the reader is a bug in this crate; pass it on unchanged.
        let train_images = train_images
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (train_images, rest)
    });
    let (train_images, d0) = train_images?;
    let ((train_labels, d1), (test_images, d2), (test_labels, d3)) = rest?;

    for (images, labels, ip, lp) in [
        (
            &train_images,
            &train_labels,
            train_images_path,
            train_labels_path,
        ),
        (
            &test_images,
            &test_labels,
            test_images_path,
            test_labels_path,
        ),
    ] {
        if images.count() != labels.len() {
            return Err(Error::CountMismatch {
                images_file: ip.clone(),
                labels_file: lp.clone(),
                images: images.count() as u64,
                labels: labels.len() as u64,
            });
        }
    }

    Ok(RawDataset {
        kind,
        dir: dir.to_owned(),
        files: vec![d0, d1, d2, d3],
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

impl RawDataset {
    /// Number of examples in the training file (60,000 for the real datasets).
    pub fn train_len(&self) -> usize {
        self.train_labels.len()
    }

    /// Number of examples in the test file (10,000 for the real datasets).
    pub fn test_len(&self) -> usize {
        self.test_labels.len()
    }

    /// Rows of the training file that make up `split` (`Test` rows index the test file).
    ///
    /// # Errors
    /// [`Error::ValidationTooLarge`] if `validation_size` exceeds the training examples.
    pub fn range(&self, split: Split, validation_size: usize) -> Result<Range<usize>, Error> {
        let n = self.train_len();
        let cut = n
            .checked_sub(validation_size)
            .ok_or(Error::ValidationTooLarge {
                requested: validation_size,
                available: n,
            })?;
        Ok(match split {
            Split::Train => 0..cut,
            Split::Validation => cut..n,
            Split::Test => 0..self.test_len(),
        })
    }

    /// The labels of `split`.
    ///
    /// # Errors
    /// [`Error::ValidationTooLarge`] if `validation_size` exceeds the training examples.
    pub fn labels(&self, split: Split, validation_size: usize) -> Result<&[u8], Error> {
        let r = self.range(split, validation_size)?;
        Ok(match split {
            Split::Train | Split::Validation => &self.train_labels[r],
            Split::Test => &self.test_labels[r],
        })
    }

    /// The pixels of `split`, `(examples, 784)` unsigned bytes.
    ///
    /// # Errors
    /// [`Error::ValidationTooLarge`] if `validation_size` exceeds the training examples.
    pub fn pixels(
        &self,
        split: Split,
        validation_size: usize,
    ) -> Result<ArrayView2<'_, u8>, Error> {
        let r = self.range(split, validation_size)?;
        let all = match split {
            Split::Train | Split::Validation => self.train_images.pixels(),
            Split::Test => self.test_images.pixels(),
        };
        let bytes = &all[r.start * PIXELS..r.end * PIXELS];
        Ok(ArrayView2::from_shape((r.len(), PIXELS), bytes).expect("validated IDX length"))
    }

    /// Splits and scales into the training form.
    ///
    /// # Errors
    /// [`Error::ValidationTooLarge`] if `validation_size` exceeds the training examples.
    pub fn split<T: Real>(
        &self,
        validation_size: usize,
        scale: PixelScale,
    ) -> Result<Mnist<T>, Error> {
        let make = |split| -> Result<SplitData<T>, Error> {
            let pixels = self.pixels(split, validation_size)?;
            let labels = self.labels(split, validation_size)?.to_vec();
            Ok(SplitData {
                images: scale_pixels(pixels, scale),
                labels,
            })
        };
        // The training split is most of the work: scale it on a second thread.
        let (train, validation, test) = std::thread::scope(|s| {
            let train = s.spawn(|| make(Split::Train));
            let validation = make(Split::Validation);
            let test = make(Split::Test);
            let train = train
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (train, validation, test)
        });
        Ok(Mnist {
            kind: self.kind,
            dir: self.dir.clone(),
            files: self.files.clone(),
            train: train?,
            validation: validation?,
            test: test?,
        })
    }
}

/// Scales pixel bytes through a 256-entry table.
fn scale_pixels<T: Real>(pixels: ArrayView2<'_, u8>, scale: PixelScale) -> Array2<T> {
    scale.apply(pixels)
}

/// One split: images and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitData<T = f32> {
    /// Images, `(examples, 784)`, row-major 28 x 28, scaled per [`PixelScale`].
    pub images: Array2<T>,
    /// Labels in `0..=9`, one per image row.
    pub labels: Vec<u8>,
}

impl<T: Real> SplitData<T> {
    /// Wraps images and labels.
    ///
    /// # Panics
    /// If `images` is not `(labels.len(), 784)` or a label is not in `0..=9`: a
    /// programmer error (data read from files is validated and returns `Result`).
    #[track_caller]
    pub fn new(images: Array2<T>, labels: Vec<u8>) -> Self {
        assert_eq!(
            images.dim(),
            (labels.len(), PIXELS),
            "images must be (labels, 784)"
        );
        assert!(
            labels.iter().all(|&l| usize::from(l) < NUM_CLASSES),
            "labels must be in 0..=9"
        );
        SplitData { images, labels }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One-hot targets, `(examples, 10)`: row `i` is 1 at `labels[i]` and 0 elsewhere,
    /// like the notebook's `vectorized_result`.
    pub fn one_hot_labels<U: Real>(&self) -> Array2<U> {
        one_hot(&self.labels)
    }

    /// Examples per class.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        class_counts(&self.labels)
    }
}

/// One-hot encoding of labels in `0..=9`, `(labels, 10)`.
///
/// # Panics
/// If a label is 10 or more (labels read from files are validated).
#[track_caller]
pub fn one_hot<U: Real>(labels: &[u8]) -> Array2<U> {
    let mut out = Array2::from_elem((labels.len(), NUM_CLASSES), U::ZERO);
    for (mut row, &l) in out.rows_mut().into_iter().zip(labels) {
        row[usize::from(l)] = U::ONE;
    }
    out
}

/// Examples per class among `labels`; labels of 10 or more are not counted.
pub fn class_counts(labels: &[u8]) -> [usize; NUM_CLASSES] {
    let mut counts = [0; NUM_CLASSES];
    for &l in labels {
        if let Some(c) = counts.get_mut(usize::from(l)) {
            *c += 1;
        }
    }
    counts
}

/// A dataset ready for training: the notebook's three splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist<T = f32> {
    /// Which dataset.
    pub kind: DatasetKind,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// The four files read, with their digests (for results manifests).
    pub files: Vec<FileDigest>,
    /// Training split.
    pub train: SplitData<T>,
    /// Validation split (the end of the training file).
    pub validation: SplitData<T>,
    /// Test split (the `t10k` files).
    pub test: SplitData<T>,
}

impl<T> Mnist<T> {
    /// The data of one split.
    pub fn split(&self, split: Split) -> &SplitData<T> {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }
}

/// Loads the dataset in `dir` as `f32`: read, verify, split, scale.
///
/// # Errors
/// As [`load_raw`], plus [`Error::ValidationTooLarge`].
pub fn load(dir: &Path, options: &LoadOptions) -> Result<Mnist<f32>, Error> {
    load_as(dir, options)
}

/// Loads the dataset in `dir` with images in `T` (`f32` or `f64`), scaled in `T`.
///
/// # Errors
/// As [`load_raw`], plus [`Error::ValidationTooLarge`].
pub fn load_as<T: Real>(dir: &Path, options: &LoadOptions) -> Result<Mnist<T>, Error> {
    load_raw(dir, options.dataset, options.verify)?.split(options.validation_size, options.scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div256_is_exact_and_255_is_not_one() {
        // The notebook's mnist.pkl.gz stores byte / 256: 255 -> 0.99609375 = 255/256.
        assert_eq!(f32::from_pixel(255, PixelScale::Div256), 0.996_093_75);
        assert_eq!(f64::from_pixel(255, PixelScale::Div256), 0.996_093_75);
        assert_eq!(f32::from_pixel(255, PixelScale::Div255), 1.0);
        assert_eq!(f32::from_pixel(0, PixelScale::Div255), 0.0);
        // 128/255 rounded once in each type.
        assert_eq!(f64::from_pixel(128, PixelScale::Div255), 128.0 / 255.0);
        assert_eq!(f32::from_pixel(128, PixelScale::Div255), 128.0f32 / 255.0);
    }

    #[test]
    fn one_hot_matches_vectorized_result() {
        let t: Array2<f64> = one_hot(&[5, 0, 9]);
        assert_eq!(t.dim(), (3, 10));
        for (row, l) in t.rows().into_iter().zip([5, 0, 9]) {
            for (j, &v) in row.iter().enumerate() {
                assert_eq!(v, if j == l { 1.0 } else { 0.0 });
            }
        }
    }

    #[test]
    fn class_counts_ignore_out_of_range() {
        assert_eq!(
            class_counts(&[1, 1, 9, 200]),
            [0, 2, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn options_round_trip_through_json_with_defaults() {
        let json = serde_json::to_string(&LoadOptions::default()).unwrap();
        assert_eq!(
            json,
            r#"{"dataset":"mnist","validation_size":10000,"scale":"div256","verify":"digests"}"#
        );
        let partial: LoadOptions = serde_json::from_str(r#"{"scale":"div255"}"#).unwrap();
        assert_eq!(
            partial,
            LoadOptions {
                scale: PixelScale::Div255,
                ..LoadOptions::default()
            }
        );
        assert!(serde_json::from_str::<LoadOptions>(r#"{"validation":5}"#).is_err());
    }

    #[test]
    #[should_panic(expected = "images must be (labels, 784)")]
    fn split_data_new_checks_shape() {
        let _ = SplitData::new(Array2::<f32>::zeros((2, 783)), vec![0, 1]);
    }
}
