//! The IDX file format, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number `00 00 TT RR` (element type `TT`, rank `RR`),
//! then `RR` big-endian `u32` dimensions, then the elements in row-major order. MNIST
//! uses element type `0x08` (unsigned byte) only: images have rank 3
//! (`count x 28 x 28`), labels rank 1 (`count`).
//!
//! Compression is detected from the content (the gzip magic bytes `1f 8b`), never from
//! the file name: an IDX file always starts with `00 00`, so the two cannot be confused.
//!
//! Readers validate everything a corrupt or foreign file can get wrong (magic, element
//! type, rank, 28x28 images, exact length, labels in `0..=9`) and return a typed
//! [`Error`] naming the file, what was expected and what was found. They never panic,
//! whatever the bytes.
//!
//! ```
//! use glorot_mnist::idx;
//! use std::path::Path;
//!
//! let file = idx::encode(&[3], &[5, 0, 4]);
//! assert_eq!(idx::read_labels(&file, Path::new("labels"))?, vec![5, 0, 4]);
//! // The same bytes gzip-compressed read the same.
//! assert_eq!(idx::read_labels(&idx::gzip(&file), Path::new("labels.gz"))?, vec![5, 0, 4]);
//! # Ok::<(), glorot_mnist::Error>(())
//! ```

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{COLS, Error, NUM_CLASSES, PIXELS, ROWS};

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// IDX element type code for unsigned bytes, the only one MNIST uses.
pub const TYPE_U8: u8 = 0x08;

/// Decompression stops with [`Error::TooLarge`] beyond this many bytes (1 GiB); the
/// largest MNIST file is 47 MB decompressed.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Upper bound on DEFLATE's expansion ratio, used only to cap a capacity hint.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Returns the IDX bytes of a file's content: decompressed if it is gzip, as is otherwise.
///
/// `file` is used only to name the file in errors.
///
/// # Errors
/// [`Error::Gzip`] for a corrupt gzip stream, [`Error::TooLarge`] past
/// [`MAX_DECOMPRESSED_BYTES`].
pub fn decompress<'a>(bytes: &'a [u8], file: &Path) -> Result<Cow<'a, [u8]>, Error> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    // The gzip trailer's ISIZE (length mod 2^32) is a good capacity hint for honest
    // files; cap it so that garbage cannot make us allocate much.
    let hint = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, |t| u32::from_le_bytes(t) as usize)
        .min(
            bytes
                .len()
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(64),
        )
        .min(MAX_DECOMPRESSED_BYTES as usize);
    let mut out = Vec::with_capacity(hint);
    MultiGzDecoder::new(bytes)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|source| Error::Gzip {
            file: file.to_owned(),
            source,
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(Error::TooLarge {
            file: file.to_owned(),
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    Ok(Cow::Owned(out))
}

/// Compresses `bytes` as a single gzip member (default level). For writing fixtures
/// and custom datasets; the readers accept raw and compressed files alike.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// Encodes an unsigned-byte IDX file: magic `00 00 08 rank`, big-endian `dims`, `data`.
///
/// This is the writer the round-trip tests use; it is public so that tools can write
/// custom datasets in the same format.
///
/// # Panics
/// If `dims` has more than 255 entries or their product is not `data.len()`: both are
/// programmer errors.
#[track_caller]
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let rank = u8::try_from(dims.len()).expect("IDX rank must fit in one byte");
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    assert_eq!(
        count,
        Some(data.len()),
        "IDX dims {dims:?} do not match {} data bytes",
        data.len()
    );
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, rank]);
    for &d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A decoded unsigned-byte IDX array of any rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions from the header, outermost first.
    pub dims: Vec<u32>,
    /// Elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an unsigned-byte IDX array of any rank from a file's content (raw or gzip).
///
/// # Errors
/// [`Error::Empty`], [`Error::Gzip`], [`Error::BadMagic`], [`Error::ElementType`],
/// [`Error::Truncated`], [`Error::TrailingBytes`].
pub fn read_idx(bytes: &[u8], file: &Path) -> Result<Idx, Error> {
    let raw = decompress(bytes, file)?;
    let header = Header::parse(&raw, file, None)?;
    header.check_len(&raw, file)?;
    Ok(Idx {
        data: raw[header.len..].to_vec(),
        dims: header.dims,
    })
}

/// Images read from an IDX file: `count` images of 28 x 28 unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    count: usize,
    // The whole decompressed file; pixels start after the 16-byte header. Kept whole
    // so that reading does not copy 47 MB.
    file: Vec<u8>,
}

/// Length of an images file's header: magic and three dimensions.
const IMAGES_HEADER: usize = 16;
/// Length of a labels file's header: magic and one dimension.
const LABELS_HEADER: usize = 8;

impl Images {
    /// Number of images.
    pub fn count(&self) -> usize {
        self.count
    }

    /// All pixels, row-major: image `i` is `pixels()[i * 784..(i + 1) * 784]`.
    pub fn pixels(&self) -> &[u8] {
        &self.file[IMAGES_HEADER..]
    }

    /// The whole decompressed IDX file (header included), the bytes that are digested.
    pub fn idx_bytes(&self) -> &[u8] {
        &self.file
    }
}

/// Reads an images file's content (raw or gzip): rank 3, 28 x 28, exact length.
///
/// # Errors
/// [`Error::Empty`], [`Error::Gzip`], [`Error::TooLarge`], [`Error::BadMagic`],
/// [`Error::ElementType`], [`Error::WrongRank`], [`Error::WrongImageSize`],
/// [`Error::Truncated`], [`Error::TrailingBytes`].
pub fn read_images(bytes: &[u8], file: &Path) -> Result<Images, Error> {
    images_from_idx(decompress(bytes, file)?.into_owned(), file)
}

/// Validates decompressed images IDX bytes, taking ownership without copying.
pub(crate) fn images_from_idx(raw: Vec<u8>, file: &Path) -> Result<Images, Error> {
    let header = Header::parse(&raw, file, Some(3))?;
    let (rows, cols) = (header.dims[1], header.dims[2]);
    if rows as usize != ROWS || cols as usize != COLS {
        return Err(Error::WrongImageSize {
            file: file.to_owned(),
            found_rows: rows,
            found_cols: cols,
        });
    }
    header.check_len(&raw, file)?;
    debug_assert_eq!(header.len, IMAGES_HEADER);
    let count = header.dims[0] as usize;
    debug_assert_eq!(raw.len() - IMAGES_HEADER, count * PIXELS);
    Ok(Images { count, file: raw })
}

/// Reads a labels file's content (raw or gzip): rank 1, exact length, every label in `0..=9`.
///
/// # Errors
/// [`Error::Empty`], [`Error::Gzip`], [`Error::TooLarge`], [`Error::BadMagic`],
/// [`Error::ElementType`], [`Error::WrongRank`], [`Error::Truncated`],
/// [`Error::TrailingBytes`], [`Error::LabelOutOfRange`].
pub fn read_labels(bytes: &[u8], file: &Path) -> Result<Vec<u8>, Error> {
    labels_from_idx(&decompress(bytes, file)?, file)
}

/// Validates decompressed labels IDX bytes and returns the labels.
pub(crate) fn labels_from_idx(raw: &[u8], file: &Path) -> Result<Vec<u8>, Error> {
    let header = Header::parse(raw, file, Some(1))?;
    header.check_len(raw, file)?;
    debug_assert_eq!(header.len, LABELS_HEADER);
    let labels = &raw[LABELS_HEADER..];
    if let Some(index) = labels.iter().position(|&l| usize::from(l) >= NUM_CLASSES) {
        return Err(Error::LabelOutOfRange {
            file: file.to_owned(),
            index,
            found: labels[index],
        });
    }
    Ok(labels.to_vec())
}

/// Reads an images file from `path` (raw or gzip, detected by content): rank 3, 28 x 28,
/// exact length. The header is validated before the body is read, and no more bytes
/// than it implies are kept, so a huge or foreign file costs no memory (as for the
/// dataset files).
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read, and those of [`read_images`].
pub fn read_images_file(path: &Path) -> Result<Images, Error> {
    let (raw, ..) = read_path(path, Some(Expect::Images))?;
    images_from_idx(raw, path)
}

/// Reads a labels file from `path` (raw or gzip, detected by content): rank 1, exact
/// length, every label in `0..=9`; with bounded memory, as [`read_images_file`].
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read, and those of [`read_labels`].
pub fn read_labels_file(path: &Path) -> Result<Vec<u8>, Error> {
    let (raw, ..) = read_path(path, Some(Expect::Labels))?;
    labels_from_idx(&raw, path)
}

/// The decompressed IDX bytes of the file at `path` ([`read_bounded`]), whether it was
/// gzip-compressed, and its length on disk.
pub(crate) fn read_path(
    path: &Path,
    expect: Option<Expect>,
) -> Result<(Vec<u8>, bool, u64), Error> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let file_bytes = file.metadata().map_err(Error::io(path))?.len();
    let mut reader = std::io::BufReader::new(file);
    let gzip = is_gzip(std::io::BufRead::fill_buf(&mut reader).map_err(Error::io(path))?);
    let raw = if gzip {
        let gzip_error = |source| Error::Gzip {
            file: path.to_owned(),
            source,
        };
        read_bounded(MultiGzDecoder::new(reader), path, expect, gzip_error)?
    } else {
        read_bounded(reader, path, expect, |e| Error::io(path)(e))?
    };
    Ok((raw, gzip, file_bytes))
}

/// What a dataset file must hold, for [`read_bounded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// An images file: rank 3, 28 x 28.
    Images,
    /// A labels file: rank 1.
    Labels,
}

/// Reads the decompressed IDX bytes of a file from `r` with bounded memory.
///
/// With `expect`, the header is read and validated first (magic, element type, rank,
/// 28 x 28 for images), then exactly the number of bytes it implies, and nothing more is
/// kept: a body shorter or longer than the header says is [`Error::Truncated`] or
/// [`Error::TrailingBytes`] (the excess is counted, not stored), a header asking for more
/// than [`MAX_DECOMPRESSED_BYTES`] is refused before its body is read. Without `expect`
/// (digests of files that may not be IDX at all), everything up to
/// [`MAX_DECOMPRESSED_BYTES`] is read. `on_err` turns read errors into this crate's
/// ([`Error::Gzip`] through a decompressor, [`Error::Io`] otherwise).
///
/// # Errors
/// As [`read_images`] / [`read_labels`] for the header and the length, and
/// [`Error::TooLarge`] past [`MAX_DECOMPRESSED_BYTES`].
pub(crate) fn read_bounded(
    mut r: impl Read,
    file: &Path,
    expect: Option<Expect>,
    on_err: impl Fn(std::io::Error) -> Error,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        file: file.to_owned(),
        limit: MAX_DECOMPRESSED_BYTES,
    };
    let Some(expect) = expect else {
        let mut out = Vec::new();
        r.take(MAX_DECOMPRESSED_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(&on_err)?;
        if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
            return Err(too_large());
        }
        return Ok(out);
    };
    let (rank, header_len) = match expect {
        Expect::Images => (3, IMAGES_HEADER),
        Expect::Labels => (1, LABELS_HEADER),
    };
    let mut out = Vec::with_capacity(header_len);
    (&mut r)
        .take(header_len as u64)
        .read_to_end(&mut out)
        .map_err(&on_err)?;
    let header = Header::parse(&out, file, Some(rank))?;
    if expect == Expect::Images {
        let (rows, cols) = (header.dims[1], header.dims[2]);
        if rows as usize != ROWS || cols as usize != COLS {
            return Err(Error::WrongImageSize {
                file: file.to_owned(),
                found_rows: rows,
                found_cols: cols,
            });
        }
    }
    let expected = header.expected_len();
    // Bytes past what is kept are counted into a sink, up to the limit.
    let count_rest = |r: &mut dyn Read, kept: u64| -> Result<u64, Error> {
        let room = (MAX_DECOMPRESSED_BYTES + 1).saturating_sub(kept);
        let rest = std::io::copy(&mut r.take(room), &mut std::io::sink()).map_err(&on_err)?;
        let total = kept + rest;
        if total > MAX_DECOMPRESSED_BYTES {
            return Err(too_large());
        }
        Ok(total)
    };
    if expected > MAX_DECOMPRESSED_BYTES {
        let found = count_rest(&mut r, out.len() as u64)?;
        return Err(Error::Truncated {
            file: file.to_owned(),
            expected,
            found,
        });
    }
    out.reserve_exact(expected as usize - out.len());
    (&mut r)
        .take(expected - out.len() as u64)
        .read_to_end(&mut out)
        .map_err(&on_err)?;
    let found = count_rest(&mut r, out.len() as u64)?;
    header.check_found(found, file)?;
    Ok(out)
}

/// A parsed IDX header.
#[derive(Debug)]
struct Header {
    dims: Vec<u32>,
    /// Header length in bytes: `4 + 4 * rank`.
    len: usize,
}

impl Header {
    fn parse(raw: &[u8], file: &Path, expected_rank: Option<u8>) -> Result<Self, Error> {
        let found = raw.len() as u64;
        let truncated = |expected: usize| Error::Truncated {
            file: file.to_owned(),
            expected: expected as u64,
            found,
        };
        if raw.is_empty() {
            return Err(Error::Empty {
                file: file.to_owned(),
            });
        }
        let Some(&magic) = raw.first_chunk::<4>() else {
            return Err(truncated(4));
        };
        if magic[0] != 0 || magic[1] != 0 {
            return Err(Error::BadMagic {
                file: file.to_owned(),
                found: magic,
            });
        }
        if magic[2] != TYPE_U8 {
            return Err(Error::ElementType {
                file: file.to_owned(),
                found: magic[2],
            });
        }
        let rank = magic[3];
        if let Some(expected) = expected_rank
            && rank != expected
        {
            return Err(Error::WrongRank {
                file: file.to_owned(),
                expected,
                found: rank,
            });
        }
        let len = 4 + 4 * usize::from(rank);
        let Some(dim_bytes) = raw.get(4..len) else {
            return Err(truncated(len));
        };
        let dims = dim_bytes
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Header { dims, len })
    }

    /// Total file length the header calls for, saturating at `u64::MAX`.
    fn expected_len(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
            .and_then(|n| n.checked_add(self.len as u64))
            .unwrap_or(u64::MAX)
    }

    fn check_len(&self, raw: &[u8], file: &Path) -> Result<(), Error> {
        self.check_found(raw.len() as u64, file)
    }

    /// The file's decompressed length `found` against the header's.
    fn check_found(&self, found: u64, file: &Path) -> Result<(), Error> {
        let expected = self.expected_len();
        match found.cmp(&expected) {
            std::cmp::Ordering::Less => Err(Error::Truncated {
                file: file.to_owned(),
                expected,
                found,
            }),
            std::cmp::Ordering::Greater => Err(Error::TrailingBytes {
                file: file.to_owned(),
                expected,
                found,
            }),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t")
    }

    #[test]
    fn header_of_a_one_image_file() {
        let file = encode(&[1, 28, 28], &[7; PIXELS]);
        assert_eq!(
            &file[..16],
            &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28]
        );
        let images = read_images(&file, p()).unwrap();
        assert_eq!(images.count(), 1);
        assert_eq!(images.pixels(), &[7; PIXELS][..]);
        assert_eq!(images.idx_bytes(), &file[..]);
    }

    #[test]
    fn absurd_dimensions_saturate_instead_of_overflowing() {
        let mut file = vec![0, 0, 8, 4];
        for _ in 0..4 {
            file.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        match read_idx(&file, p()) {
            Err(Error::Truncated {
                expected, found, ..
            }) => {
                assert_eq!((expected, found), (u64::MAX, 20));
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn rank_zero_is_a_single_element() {
        // The product of no dimensions is 1: a rank-0 IDX holds one element.
        let idx = read_idx(&[0, 0, 8, 0, 42], p()).unwrap();
        assert_eq!(
            idx,
            Idx {
                dims: vec![],
                data: vec![42]
            }
        );
    }

    /// `header` followed by an endless stream of zeros: a reader that read the body
    /// before the header, or kept more than the header asks for, would never return.
    fn endless(header: &[u8]) -> impl Read + '_ {
        header.chain(std::io::repeat(0))
    }

    fn read(r: impl Read, expect: Expect) -> Result<Vec<u8>, Error> {
        read_bounded(r, p(), Some(expect), |e| Error::Io {
            path: p().to_owned(),
            source: e,
        })
    }

    #[test]
    fn headers_are_checked_before_the_body_is_read() {
        assert!(matches!(
            read(endless(&[0x50, 0x4b, 3, 4]), Expect::Images),
            Err(Error::BadMagic { .. })
        ));
        assert!(matches!(
            read(endless(&[0, 0, 8, 1]), Expect::Images),
            Err(Error::WrongRank { .. })
        ));
        let wrong_size = [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0, 32];
        assert!(matches!(
            read(endless(&wrong_size), Expect::Images),
            Err(Error::WrongImageSize { .. })
        ));
    }

    #[test]
    fn a_body_longer_than_the_header_says_is_counted_not_kept() {
        // 2 labels then endless zeros: refused at the limit, having kept 10 bytes.
        let header = [0, 0, 8, 1, 0, 0, 0, 2];
        assert!(matches!(
            read(endless(&header), Expect::Labels),
            Err(Error::TooLarge { .. })
        ));
        // A few extra bytes: the exact lengths, as `read_labels` reports them.
        let mut file = encode(&[2], &[1, 2]);
        file.extend_from_slice(&[9, 9, 9]);
        assert!(matches!(
            read(&file[..], Expect::Labels),
            Err(Error::TrailingBytes {
                expected: 10,
                found: 13,
                ..
            })
        ));
        assert_eq!(
            read(&file[..10], Expect::Labels).unwrap(),
            encode(&[2], &[1, 2])
        );
    }

    #[test]
    fn a_header_asking_for_more_than_the_limit_is_refused_before_allocating() {
        // 2^32 - 1 images of 784 bytes, 3.4 TB, in a 20-byte file.
        let mut file = vec![0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28];
        file.extend_from_slice(&[1, 2, 3, 4]);
        match read(&file[..], Expect::Images) {
            Err(Error::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (16 + 784 * u64::from(u32::MAX), 20)),
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn capacity_hint_is_capped_for_garbage() {
        // A valid-looking gzip header followed by garbage claiming a 4 GB ISIZE must
        // fail cleanly without a huge allocation.
        let bytes = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decompress(&bytes, p()), Err(Error::Gzip { .. })));
    }
}
