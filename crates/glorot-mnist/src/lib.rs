//! MNIST and Fashion-MNIST for glorot: validated IDX reading, published digests, the
//! notebook's split and scaling, and (feature `download`) verified download.
//!
//! # Design
//!
//! - **Validate everything, trust nothing.** Files are read whole, decompressed when their
//!   content starts with the gzip magic (never judged by name), and checked for magic,
//!   rank, 28 x 28 images, exact length, agreeing counts and labels in `0..=9`. Every
//!   failure is a typed [`Error`] naming the file, what was expected and what was found.
//! - **Integrity by digest.** The SHA-256 of each *decompressed* file is compared with the
//!   published one ([`KnownFile`]) on every load, so a recompressed copy is as good as
//!   the original and a corrupt one is caught. This costs about 0.03 s (the bytes are in
//!   memory anyway), so there is no cache to go stale and read-only directories need no
//!   special case. [`Verify::Skip`] turns the comparison off for custom data.
//! - **The notebook's split and scale by default**: train = training images 0..50,000,
//!   validation = 50,000..60,000, test = the 10,000 `t10k` images, pixel = byte / 256
//!   (as the notebook's `mnist.pkl.gz` was made: 255 becomes 0.99609375). Both are
//!   options ([`LoadOptions`]).
//! - **Location** ([`locate`]): explicit directory > `GLOROT_MNIST_DIR` /
//!   `GLOROT_FASHION_MNIST_DIR` > `<data root>/mnist` (resp. `fashion-mnist`) > system
//!   package directories. The data root is a parameter; [`default_data_root`] implements
//!   the rule every glorot command uses: the glorot workspace's `data/` when run inside
//!   it, else the per-user data directory (`$XDG_DATA_HOME/glorot` on Linux).
//! - **Single images for prediction** ([`image`]): a PNG is read only when it already is
//!   what an MNIST image is (28 x 28, 8-bit greyscale); anything else is a typed error,
//!   never a guessed conversion. [`idx::read_images_file`] reads an images file of one's
//!   own with the same validation and bounded memory as the dataset files, and
//!   [`PixelScale::apply`] scales any pixel bytes as [`load`] does.
//! - **No printing, no network by default.** The downloader sits behind the `download`
//!   feature and reports progress through a callback.
//!
//! # Example
//!
//! ```
//! use glorot_mnist::{idx, load, LoadOptions, Split, Verify};
//!
//! // A tiny dataset in the MNIST format: 5 training and 2 test images.
//! let dir = tempfile::tempdir()?;
//! let write = |name: &str, dims: &[u32], data: &[u8]| {
//!     std::fs::write(dir.path().join(name), idx::gzip(&idx::encode(dims, data)))
//! };
//! write("train-images-idx3-ubyte.gz", &[5, 28, 28], &[255; 5 * 784])?;
//! write("train-labels-idx1-ubyte.gz", &[5], &[5, 0, 4, 1, 9])?;
//! write("t10k-images-idx3-ubyte.gz", &[2, 28, 28], &[0; 2 * 784])?;
//! write("t10k-labels-idx1-ubyte.gz", &[2], &[7, 2])?;
//!
//! // Custom data has no published digests: skip that check (structure is still checked).
//! let options =
//!     LoadOptions { validation_size: 2, verify: Verify::Skip, ..LoadOptions::default() };
//! let data = load(dir.path(), &options)?;
//! assert_eq!(data.train.labels, [5, 0, 4]);
//! assert_eq!(data.split(Split::Validation).labels, [1, 9]);
//! assert_eq!(data.train.images.dim(), (3, 784));
//! assert_eq!(data.train.images[[0, 0]], 0.99609375); // 255 / 256
//! assert_eq!(data.test.one_hot_labels::<f64>().row(0)[7], 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod dataset;
#[cfg(feature = "download")]
pub mod download;
mod error;
pub mod idx;
pub mod image;
mod kind;
mod locate;

pub use dataset::{
    DEFAULT_VALIDATION_SIZE, DigestCheck, FileDigest, LoadOptions, Mnist, PixelScale, RawDataset,
    Real, Split, SplitData, Verify, class_counts, digest_dir, load, load_as, load_raw, one_hot,
    verify_dir,
};
pub use error::Error;
pub use kind::{DatasetKind, FileRole, KnownFile, UnknownDataset};
pub use locate::{
    Candidate, DataRoot, Source, candidates, candidates_given_env, default_data_root, env_dir,
    fetch_dir, find, find_among, find_files, find_workspace_data_root, locate, user_data_root,
};

/// Rows per image.
pub const ROWS: usize = 28;
/// Columns per image.
pub const COLS: usize = 28;
/// Pixels per image: 784.
pub const PIXELS: usize = ROWS * COLS;
/// Number of classes: labels are `0..=9`.
pub const NUM_CLASSES: usize = 10;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
