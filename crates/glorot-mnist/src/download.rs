//! Verified download from public mirrors (cargo feature `download`).
//!
//! This is the only network code in the workspace. Each file is tried on each mirror in
//! turn. A response is streamed into a temporary file in the target directory while its
//! size and SHA-256 are checked. It is accepted when it is the published `.gz` (size and
//! SHA-256), or, when the decompressed content is known ([`RemoteFile::idx`]), a
//! recompressed copy of it: gzip data decompressing to exactly the published IDX bytes
//! (checked by streaming through a decompressor that stops one byte past the expected
//! length). Only an accepted file is renamed into place, so a failed, interrupted or
//! corrupt transfer never leaves a partial file behind. Any failure moves on to the next
//! mirror; when all fail, the error lists every mirror with its reason (both digests for
//! wrong content) and says how to place the files by hand.
//!
//! The library never prints: progress is reported through a `FnMut(&FetchEvent)`.

use std::fmt;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dataset::DigestCheck;
use crate::error::hex;
use crate::{DatasetKind, Error, FileRole, KnownFile};

/// A base URL serving the `.gz` files, e.g. `https://ossci-datasets.s3.amazonaws.com/mnist/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    base: String,
}

impl Mirror {
    /// A mirror at `base` (a trailing `/` is added when missing). `http://` and
    /// `https://` both work; so does `http://127.0.0.1:PORT/` for tests.
    pub fn new(base: impl Into<String>) -> Self {
        let mut base = base.into();
        if !base.ends_with('/') {
            base.push('/');
        }
        Mirror { base }
    }

    /// The base URL, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `file_name` on this mirror.
    pub fn url(&self, file_name: &str) -> String {
        format!("{}{file_name}", self.base)
    }

    /// The public mirrors for `kind`, in the order they are tried
    /// ([`DatasetKind::default_mirrors`]).
    pub fn defaults(kind: DatasetKind) -> Vec<Mirror> {
        kind.default_mirrors()
            .iter()
            .map(|&b| Mirror::new(b))
            .collect()
    }
}

/// A file to download: its name on the mirrors, and the size and SHA-256 it must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteFile {
    /// File name on the mirror and on disk, e.g. `train-images-idx3-ubyte.gz`.
    pub name: String,
    /// Exact length in bytes of the published file.
    pub bytes: u64,
    /// SHA-256 of the published file, lowercase hex.
    pub sha256: String,
    /// For a gzip file, its decompressed content: when set, a copy with other bytes (the
    /// same content recompressed, as some mirrors serve it) is accepted when it
    /// decompresses to exactly this.
    pub idx: Option<Content>,
}

/// The length and SHA-256 of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Content {
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

impl From<&KnownFile> for RemoteFile {
    fn from(k: &KnownFile) -> Self {
        RemoteFile {
            name: k.role.gz_name(),
            bytes: k.gz_bytes,
            sha256: k.gz_sha256.to_owned(),
            idx: Some(Content {
                bytes: k.idx_bytes,
                sha256: k.idx_sha256.to_owned(),
            }),
        }
    }
}

impl RemoteFile {
    /// The most bytes a mirror may send: the published length, or for a file whose
    /// decompressed content is known, what any gzip of that content can take (stored,
    /// uncompressed blocks: 5 bytes per 64 KiB block, plus the header and trailer; a
    /// 1 % and 64 KiB margin covers them with room to spare).
    pub fn max_bytes(&self) -> u64 {
        match &self.idx {
            None => self.bytes,
            Some(idx) => self.bytes.max(
                idx.bytes
                    .saturating_add(idx.bytes / 100)
                    .saturating_add(1 << 16),
            ),
        }
    }
}

/// How a downloaded file was found good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Verified {
    /// It is the published file: its size and SHA-256 match.
    Published,
    /// Its bytes differ from the published file's, but it decompresses to exactly the
    /// published content ([`RemoteFile::idx`]): a recompressed copy.
    Recompressed,
}

/// Why one mirror did not deliver one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
#[non_exhaustive]
pub enum MirrorFailure {
    /// Connection, DNS, TLS, timeout or a transfer cut short.
    Transport {
        /// The HTTP client's message.
        message: String,
    },
    /// The server answered with a status other than success.
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The response length (announced or received) differs from the published one.
    SizeMismatch {
        /// Published length.
        expected: u64,
        /// Length announced or received (received stops one byte past `expected`).
        found: u64,
    },
    /// The bytes received differ from the published SHA-256 (a file whose decompressed
    /// content is not known).
    DigestMismatch {
        /// Published SHA-256.
        expected: String,
        /// SHA-256 of what was received.
        found: String,
    },
    /// More bytes than any copy of the file can take ([`RemoteFile::max_bytes`]), announced
    /// or received; the transfer is stopped there.
    TooLarge {
        /// The limit.
        limit: u64,
        /// Length announced, or received (then one chunk past the limit at most).
        found: u64,
    },
    /// Neither the published file (its SHA-256 differs) nor a recompressed copy of it
    /// (it decompresses, but to other content).
    ContentMismatch {
        /// Published SHA-256 of the file.
        expected: String,
        /// SHA-256 of what was received.
        found: String,
        /// Published SHA-256 of the decompressed content.
        idx_expected: String,
        /// SHA-256 of the received file decompressed.
        idx_found: String,
        /// Length of the received file decompressed.
        idx_bytes: u64,
    },
    /// Not the published file (its SHA-256 differs), and not a recompressed copy either:
    /// it does not decompress (not gzip, truncated, corrupt) or decompresses to more bytes
    /// than the published content has.
    NotDecompressible {
        /// Published SHA-256 of the file.
        expected: String,
        /// SHA-256 of what was received.
        found: String,
        /// Published SHA-256 of the decompressed content.
        idx_expected: String,
        /// What went wrong.
        message: String,
    },
    /// Writing the temporary file or renaming it into place failed.
    Local {
        /// The message from the operating system.
        message: String,
    },
}

impl fmt::Display for MirrorFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorFailure::Transport { message } => write!(f, "transfer failed: {message}"),
            MirrorFailure::HttpStatus { status } => write!(f, "HTTP status {status}"),
            MirrorFailure::SizeMismatch { expected, found } => {
                write!(f, "wrong size: expected {expected} bytes, got {found}")
            }
            MirrorFailure::DigestMismatch { expected, found } => {
                write!(f, "wrong SHA-256: expected {expected}, got {found}")
            }
            MirrorFailure::TooLarge { limit, found } => write!(
                f,
                "too large: {found} bytes, more than any copy of the file can take \
                 ({limit} bytes); stopped"
            ),
            MirrorFailure::ContentMismatch {
                expected,
                found,
                idx_expected,
                idx_found,
                idx_bytes,
            } => write!(
                f,
                "wrong content: SHA-256 {found} is not the published {expected}, and its \
                 {idx_bytes} decompressed bytes have SHA-256 {idx_found}, not the canonical \
                 {idx_expected}"
            ),
            MirrorFailure::NotDecompressible {
                expected,
                found,
                idx_expected,
                message,
            } => write!(
                f,
                "wrong content: SHA-256 {found} is not the published {expected}, and it is \
                 no recompressed copy of the canonical content (SHA-256 {idx_expected}): \
                 {message}"
            ),
            MirrorFailure::Local { message } => write!(f, "could not save the file: {message}"),
        }
    }
}

/// One failed try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorAttempt {
    /// The URL tried.
    pub url: String,
    /// Why it failed.
    pub failure: MirrorFailure,
}

/// Every mirror failed for one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DownloadError {
    /// The file that could not be downloaded.
    pub file: String,
    /// The directory it was meant for.
    pub dir: PathBuf,
    /// Each mirror tried, with its reason, in order.
    pub attempts: Vec<MirrorAttempt>,
    /// The published size and digest it must have.
    pub expected: RemoteFile,
}

impl fmt::Display for DownloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not download {} from any mirror:", self.file)?;
        if self.attempts.is_empty() {
            write!(f, "\n  (no mirrors were given)")?;
        }
        for a in &self.attempts {
            write!(f, "\n  - {}: {}", a.url, a.failure)?;
        }
        let e = &self.expected;
        write!(
            f,
            "\nTo place the files by hand: get {} ({} bytes, SHA-256 {}",
            e.name, e.bytes, e.sha256
        )?;
        if let Some(idx) = &e.idx {
            write!(
                f,
                "; or any copy decompressing to {} bytes with SHA-256 {}",
                idx.bytes, idx.sha256
            )?;
        }
        write!(
            f,
            ") and the other files of the dataset from any mirror, and put them in {} (raw or \
             .gz), or in any directory passed with --data-dir or named by the dataset's \
             environment variable (GLOROT_MNIST_DIR, GLOROT_FASHION_MNIST_DIR)",
            self.dir.display()
        )
    }
}

/// Progress of a fetch, for the caller to display.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FetchEvent<'a> {
    /// The file is already in the directory with the right content.
    AlreadyPresent {
        /// File name.
        file: &'a str,
        /// Where it is.
        path: &'a Path,
    },
    /// A download is starting.
    Trying {
        /// File name.
        file: &'a str,
        /// The URL.
        url: &'a str,
    },
    /// Bytes received so far (reported about every 1 MiB and at the end).
    Progress {
        /// File name.
        file: &'a str,
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        total: u64,
    },
    /// A mirror failed; the next one is tried.
    Rejected {
        /// File name.
        file: &'a str,
        /// The URL.
        url: &'a str,
        /// Why.
        failure: &'a MirrorFailure,
    },
    /// The file was verified and saved.
    Saved {
        /// File name.
        file: &'a str,
        /// The URL it came from.
        url: &'a str,
        /// Where it was saved.
        path: &'a Path,
        /// Its length in bytes.
        bytes: u64,
        /// How it was found good.
        verified: Verified,
    },
}

/// How a file came to be in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum FetchOutcome {
    /// It was there already, with the right content.
    AlreadyPresent,
    /// It was downloaded from this URL.
    Downloaded {
        /// The URL.
        url: String,
        /// How it was found good.
        verified: Verified,
    },
}

/// One file of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetched {
    /// File name.
    pub file: String,
    /// Where it is now.
    pub path: PathBuf,
    /// How it got there.
    pub outcome: FetchOutcome,
}

/// Makes sure `dir` holds `kind`'s four files with the published content, downloading
/// what is missing from `mirrors` (usually [`Mirror::defaults`]).
///
/// A file already present (raw or `.gz`) whose decompressed SHA-256 matches is kept. A
/// `.gz` whose content does not match is replaced by a verified download. A raw file that
/// does not match is an [`Error::DigestMismatch`]: it is not ours to delete. When all
/// files are in place, the directory is verified once more ([`crate::verify_dir`]).
///
/// # Errors
/// [`Error::Download`] when every mirror fails for a file, [`Error::DigestMismatch`],
/// [`Error::Io`] when `dir` cannot be created or read.
pub fn fetch(
    dir: &Path,
    kind: DatasetKind,
    mirrors: &[Mirror],
    observer: &mut dyn FnMut(&FetchEvent<'_>),
) -> Result<Vec<Fetched>, Error> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let agent = agent();
    let mut out = Vec::with_capacity(4);
    for role in FileRole::ALL {
        let raw = dir.join(role.file_name());
        let gz = dir.join(role.gz_name());
        let existing = if raw.is_file() {
            Some(raw)
        } else if gz.is_file() {
            Some(gz)
        } else {
            None
        };
        if let Some(path) = existing {
            let is_gz = path.extension().is_some_and(|e| e == "gz");
            match crate::dataset::digest_file(&path, role, kind) {
                Ok(d) if matches!(d.check, DigestCheck::Match) => {
                    observer(&FetchEvent::AlreadyPresent {
                        file: role.file_name(),
                        path: &path,
                    });
                    out.push(Fetched {
                        file: role.file_name().to_owned(),
                        path,
                        outcome: FetchOutcome::AlreadyPresent,
                    });
                    continue;
                }
                // Our own download target, wrong or broken (an interrupted copy by hand):
                // replaced below by a verified download, and kept if none succeeds.
                Ok(_) | Err(Error::Gzip { .. } | Error::TooLarge { .. }) if is_gz => {}
                // A raw file: not ours to replace.
                Ok(d) => return Err(d.mismatch_error(kind)),
                Err(e) => return Err(e),
            }
        }
        let remote = RemoteFile::from(kind.known(role));
        let saved = download_with(&agent, dir, &remote, mirrors, observer)?;
        out.push(Fetched {
            file: remote.name,
            path: saved.path,
            outcome: FetchOutcome::Downloaded {
                url: saved.url,
                verified: saved.verified,
            },
        });
    }
    crate::verify_dir(dir, kind)?;
    Ok(out)
}

/// A file [`download`] saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    /// Where it is.
    pub path: PathBuf,
    /// The URL it came from.
    pub url: String,
    /// How it was found good.
    pub verified: Verified,
}

/// Downloads `file` into `dir` from the first of `mirrors` that serves it with the right
/// size and SHA-256 (or, when [`RemoteFile::idx`] is set, a recompressed copy of its
/// content), replacing any existing file of that name atomically.
///
/// This is the building block of [`fetch`], public so that other files (or test
/// fixtures served from a loopback server) go through the same checks.
///
/// # Errors
/// [`Error::Download`] listing every mirror and its reason.
pub fn download(
    dir: &Path,
    file: &RemoteFile,
    mirrors: &[Mirror],
    observer: &mut dyn FnMut(&FetchEvent<'_>),
) -> Result<Saved, Error> {
    download_with(&agent(), dir, file, mirrors, observer)
}

/// Connect within 20 s; each read within 60 s. No overall limit: a slow link still
/// finishes. Redirects are followed (the client's default of up to 10).
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("glorot-mnist/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn download_with(
    agent: &ureq::Agent,
    dir: &Path,
    file: &RemoteFile,
    mirrors: &[Mirror],
    observer: &mut dyn FnMut(&FetchEvent<'_>),
) -> Result<Saved, Error> {
    let mut attempts = Vec::with_capacity(mirrors.len());
    for mirror in mirrors {
        let url = mirror.url(&file.name);
        observer(&FetchEvent::Trying {
            file: &file.name,
            url: &url,
        });
        match try_mirror(agent, dir, file, &url, observer) {
            Ok((path, bytes, verified)) => {
                observer(&FetchEvent::Saved {
                    file: &file.name,
                    url: &url,
                    path: &path,
                    bytes,
                    verified,
                });
                return Ok(Saved {
                    path,
                    url,
                    verified,
                });
            }
            Err(failure) => {
                observer(&FetchEvent::Rejected {
                    file: &file.name,
                    url: &url,
                    failure: &failure,
                });
                attempts.push(MirrorAttempt { url, failure });
            }
        }
    }
    Err(DownloadError {
        file: file.name.clone(),
        dir: dir.to_owned(),
        attempts,
        expected: file.clone(),
    }
    .into())
}

/// Size of each read from the response; progress is reported every this many reads.
const CHUNK: usize = 64 * 1024;
const PROGRESS_EVERY: u64 = 16;

/// One try: the saved path, its length and how it was verified, or why it failed.
fn try_mirror(
    agent: &ureq::Agent,
    dir: &Path,
    file: &RemoteFile,
    url: &str,
    observer: &mut dyn FnMut(&FetchEvent<'_>),
) -> Result<(PathBuf, u64, Verified), MirrorFailure> {
    let transport = |e: &dyn fmt::Display| MirrorFailure::Transport {
        message: e.to_string(),
    };
    let local = |e: std::io::Error| MirrorFailure::Local {
        message: e.to_string(),
    };
    let limit = file.max_bytes();
    let wrong_size = |found: u64| match file.idx {
        None => MirrorFailure::SizeMismatch {
            expected: file.bytes,
            found,
        },
        Some(_) => MirrorFailure::TooLarge { limit, found },
    };

    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(status) => MirrorFailure::HttpStatus { status },
        e => transport(&e),
    })?;
    let mut body = response.into_body();
    let announced = body.content_length();
    if let Some(announced) = announced
        && (announced > limit || (file.idx.is_none() && announced != file.bytes))
    {
        return Err(wrong_size(announced));
    }
    // Percentages against the announced length (a recompressed copy has its own).
    let total = announced.unwrap_or(file.bytes);
    // Stream into a temporary file in the same directory (so the rename is atomic); it is
    // deleted on drop, i.e. on every early return below. Created like every other file
    // glorot writes (0666 less the umask; tempfile's default is 0600).
    let prefix = format!(".{}.", file.name);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(local)?;
    let mut reader = body.as_reader();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut buf = vec![0u8; CHUNK];
    let mut reads = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(transport(&e)),
        };
        received += n as u64;
        if received > limit {
            return Err(wrong_size(received));
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(local)?;
        reads += 1;
        if reads.is_multiple_of(PROGRESS_EVERY) {
            observer(&FetchEvent::Progress {
                file: &file.name,
                received,
                total,
            });
        }
    }
    observer(&FetchEvent::Progress {
        file: &file.name,
        received,
        total,
    });
    let found = hex(&hasher.finalize());
    let verified = if received == file.bytes && found == file.sha256 {
        Verified::Published
    } else if let Some(idx) = &file.idx {
        tmp.as_file_mut().rewind().map_err(local)?;
        check_recompressed(tmp.as_file_mut(), file, idx, found)?;
        Verified::Recompressed
    } else if received != file.bytes {
        return Err(MirrorFailure::SizeMismatch {
            expected: file.bytes,
            found: received,
        });
    } else {
        return Err(MirrorFailure::DigestMismatch {
            expected: file.sha256.clone(),
            found,
        });
    };
    tmp.as_file().sync_all().map_err(local)?;
    let dest = dir.join(&file.name);
    tmp.persist(&dest).map_err(|e| local(e.error))?;
    Ok((dest, received, verified))
}

/// Checks that `gz` (a file that is not the published one, whose SHA-256 is `found`)
/// is gzip data decompressing to exactly `idx`. Decompression is streamed and stops one
/// byte past `idx.bytes`, so a small file cannot expand into much work or memory.
fn check_recompressed(
    gz: impl Read,
    file: &RemoteFile,
    idx: &Content,
    found: String,
) -> Result<(), MirrorFailure> {
    let not_decompressible = |message: String| MirrorFailure::NotDecompressible {
        expected: file.sha256.clone(),
        found: found.clone(),
        idx_expected: idx.sha256.clone(),
        message,
    };
    let mut gz = std::io::BufReader::new(gz);
    let head = gz
        .fill_buf()
        .map_err(|e| not_decompressible(format!("cannot read it back: {e}")))?;
    if !crate::idx::is_gzip(head) {
        return Err(not_decompressible("it is not gzip data".to_owned()));
    }
    let mut decoder = MultiGzDecoder::new(gz).take(idx.bytes.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut idx_bytes = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(not_decompressible(format!(
                    "its gzip data is corrupt or truncated ({e})"
                )));
            }
        };
        idx_bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    if idx_bytes > idx.bytes {
        return Err(not_decompressible(format!(
            "it decompresses to more than the {} bytes of the canonical content",
            idx.bytes
        )));
    }
    let idx_found = hex(&hasher.finalize());
    if idx_bytes != idx.bytes || idx_found != idx.sha256 {
        return Err(MirrorFailure::ContentMismatch {
            expected: file.sha256.clone(),
            found,
            idx_expected: idx.sha256.clone(),
            idx_found,
            idx_bytes,
        });
    }
    Ok(())
}
