//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::DatasetKind;

/// Everything that can go wrong while finding, reading, verifying or fetching a dataset.
///
/// Every variant names the file (or directory) involved; format variants also say what
/// was expected and what was found, so a message alone is enough to act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read, write, rename or directory listing.
    #[error("{}", path.display())]
    Io {
        /// The file or directory being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file has no bytes at all.
    #[error("{}: the file is empty (expected an IDX file, raw or gzip-compressed)", file.display())]
    Empty {
        /// The empty file.
        file: PathBuf,
    },

    /// The file starts with the gzip magic bytes but does not decompress.
    #[error("{}: corrupt gzip data", file.display())]
    Gzip {
        /// The file that failed to decompress.
        file: PathBuf,
        /// What the decompressor reported.
        #[source]
        source: io::Error,
    },

    /// The decompressed data would exceed [`crate::idx::MAX_DECOMPRESSED_BYTES`].
    #[error(
        "{}: decompresses to more than {limit} bytes, far more than any MNIST-style file",
        file.display()
    )]
    TooLarge {
        /// The offending file.
        file: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },

    /// The first two bytes of the IDX magic number are not zero.
    #[error(
        "{}: not an IDX file: expected the magic number to start with 00 00, found {}",
        file.display(), hex_bytes(found)
    )]
    BadMagic {
        /// The offending file.
        file: PathBuf,
        /// The four magic bytes found.
        found: [u8; 4],
    },

    /// The IDX element type (third magic byte) is not `0x08` (unsigned byte).
    #[error(
        "{}: unsupported IDX element type: expected 0x08 (unsigned byte), found {found:#04x}",
        file.display()
    )]
    ElementType {
        /// The offending file.
        file: PathBuf,
        /// The type code found.
        found: u8,
    },

    /// The IDX rank (fourth magic byte) is not the one this kind of file needs.
    #[error("{}: wrong IDX rank: expected {expected} dimension(s), found {found}", file.display())]
    WrongRank {
        /// The offending file.
        file: PathBuf,
        /// 3 for images, 1 for labels.
        expected: u8,
        /// The rank in the file's header.
        found: u8,
    },

    /// Image rows and columns are not 28 x 28.
    #[error(
        "{}: wrong image size: expected {}x{} pixels, found {found_rows}x{found_cols}",
        file.display(), crate::ROWS, crate::COLS
    )]
    WrongImageSize {
        /// The offending file.
        file: PathBuf,
        /// Rows per image in the header.
        found_rows: u32,
        /// Columns per image in the header.
        found_cols: u32,
    },

    /// The file is shorter than its header (or the header itself) requires.
    #[error(
        "{}: truncated: expected {expected} bytes from the IDX header, found {found}",
        file.display()
    )]
    Truncated {
        /// The offending file (decompressed length is what counts).
        file: PathBuf,
        /// Bytes required (saturates at `u64::MAX` for absurd headers).
        expected: u64,
        /// Bytes present.
        found: u64,
    },

    /// The file is longer than its header says.
    #[error(
        "{}: trailing bytes: expected exactly {expected} bytes from the IDX header, found {found}",
        file.display()
    )]
    TrailingBytes {
        /// The offending file (decompressed length is what counts).
        file: PathBuf,
        /// Bytes required.
        expected: u64,
        /// Bytes present.
        found: u64,
    },

    /// An images file and its labels file disagree on the number of examples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; expected equal counts",
        images_file.display(), labels_file.display()
    )]
    CountMismatch {
        /// The images file.
        images_file: PathBuf,
        /// The labels file.
        labels_file: PathBuf,
        /// Images in the images file.
        images: u64,
        /// Labels in the labels file.
        labels: u64,
    },

    /// A label is not a class in `0..=9`.
    #[error("{}: label {found} at index {index}: expected a class in 0..=9", file.display())]
    LabelOutOfRange {
        /// The labels file.
        file: PathBuf,
        /// Index of the first bad label.
        index: usize,
        /// The bad label.
        found: u8,
    },

    /// A directory lacks some of the four dataset files (raw or `.gz`).
    #[error(
        "{}: missing {}: expected each as NAME or NAME.gz",
        dir.display(), missing.join(", ")
    )]
    MissingFiles {
        /// The directory searched.
        dir: PathBuf,
        /// The file names (without `.gz`) not found.
        missing: Vec<String>,
    },

    /// A dataset file's name is taken by something that is not a regular file.
    #[error(
        "{}: is {what}, not a dataset file: remove or rename it, and put the file itself \
         there (raw or .gz)",
        file.display()
    )]
    NotAFile {
        /// The path.
        file: PathBuf,
        /// What is there: `a directory`, `a FIFO (named pipe)`, `a symbolic link loop`, ...
        what: &'static str,
    },

    /// No candidate directory holds the dataset.
    #[error("{}", not_found_message(*dataset, searched))]
    NotFound {
        /// The dataset looked for.
        dataset: DatasetKind,
        /// Every directory that was searched, in order.
        searched: Vec<PathBuf>,
    },

    /// A decompressed file's SHA-256 differs from the published digest.
    #[error(
        "{}: SHA-256 mismatch for {dataset}'s {name}: expected {expected}, found {found}{}. \
         The file is corrupt, incomplete or from another dataset: delete it and run \
         `glorot data fetch --dataset {dataset}` (or place a good copy by hand); for deliberately \
         custom data pass `--no-verify`",
        file.display(),
        match (looks_like, known_as) {
            (Some(k), _) => format!(" (these bytes are {k}'s {name})"),
            (None, Some((k, role))) => format!(" (this is {k}'s {role} file)"),
            (None, None) => String::new(),
        }
    )]
    DigestMismatch {
        /// The offending file.
        file: PathBuf,
        /// The dataset whose digest was expected.
        dataset: DatasetKind,
        /// The canonical file name, without `.gz`.
        name: &'static str,
        /// The published SHA-256 of the decompressed file (lowercase hex).
        expected: &'static str,
        /// The SHA-256 found (lowercase hex).
        found: String,
        /// Set when the bytes match another known dataset's file of the same name.
        looks_like: Option<DatasetKind>,
        /// Set when the bytes are a known file of any name: another file of the same
        /// dataset (the training and test files swapped) or of another dataset.
        known_as: Option<(DatasetKind, crate::FileRole)>,
    },

    /// Load options that cannot be satisfied by the data.
    #[error("validation size {requested} exceeds the {available} training examples available")]
    ValidationTooLarge {
        /// The requested validation size.
        requested: usize,
        /// Training examples in the file.
        available: usize,
    },

    /// A PNG image that does not decode: not a PNG, truncated, or a checksum mismatch.
    #[error("{}: not a readable PNG image", file.display())]
    Png {
        /// The offending file.
        file: PathBuf,
        /// What the decoder reported.
        #[source]
        source: io::Error,
    },

    /// A PNG image that is not 28 x 28 pixels.
    #[error(
        "{}: wrong image size: expected {}x{} pixels (width x height), found {width}x{height}; \
         resize it to 28x28 first",
        file.display(), crate::COLS, crate::ROWS
    )]
    PngSize {
        /// The offending file.
        file: PathBuf,
        /// Its width in pixels.
        width: u32,
        /// Its height in pixels.
        height: u32,
    },

    /// A PNG image that is not 8-bit greyscale (see [`crate::image`] for why it is not
    /// converted).
    #[error(
        "{}: expected an 8-bit greyscale PNG (colour type 0, bit depth 8, as MNIST's \
         pixels), found {color}, {bit_depth}-bit; convert it to 8-bit greyscale first \
         (glorot does not guess a conversion)",
        file.display()
    )]
    PngFormat {
        /// The offending file.
        file: PathBuf,
        /// Its colour type: `greyscale`, `RGB`, `palette (indexed colour)`,
        /// `greyscale with alpha`, `RGBA`.
        color: &'static str,
        /// Bits per sample: 1, 2, 4, 8 or 16.
        bit_depth: u8,
    },

    /// Every mirror failed for one file (boxed: it carries every attempt).
    #[cfg(feature = "download")]
    #[error("{0}")]
    Download(Box<crate::download::DownloadError>),
}

#[cfg(feature = "download")]
impl From<crate::download::DownloadError> for Error {
    fn from(e: crate::download::DownloadError) -> Self {
        Error::Download(Box::new(e))
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn not_found_message(dataset: DatasetKind, searched: &[PathBuf]) -> String {
    let mut msg = format!("{dataset} not found; searched:");
    if searched.is_empty() {
        msg.push_str(" nothing (no data root and no environment variable)");
    }
    for dir in searched {
        msg.push_str(&format!("\n  - {}", dir.display()));
    }
    msg.push_str(&format!(
        "\nRun `glorot data fetch --dataset {dataset}`, or put the four files ({}; raw or .gz) \
         in a directory and pass it with --data-dir or set {}",
        crate::FileRole::ALL.map(|r| r.file_name()).join(", "),
        dataset.env_var()
    ));
    msg
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    struct Hex<'a>(&'a [u8]);
    impl fmt::Display for Hex<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
        }
    }
    Hex(bytes).to_string()
}
