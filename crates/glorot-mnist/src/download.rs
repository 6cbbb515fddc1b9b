//! Verified download from public mirrors (cargo feature `download`).
//!
//! This is the only network code in the workspace. Each file is tried on each mirror in
//! turn. A response is streamed into a temporary file in the target directory while its
//! size and SHA-256 are checked; only a file matching the published size and digest is
//! renamed into place, so a failed or interrupted transfer never leaves a partial file
//! behind. Any failure moves on to the next mirror; when all fail, the error lists every
//! mirror with its reason and says how to place the files by hand.
//!
//! The library never prints: progress is reported through a `FnMut(&FetchEvent)`.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Exact length in bytes.
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
        }
    }
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
    /// The bytes received differ from the published SHA-256.
    DigestMismatch {
        /// Published SHA-256.
        expected: String,
        /// SHA-256 of what was received.
        found: String,
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
        write!(
            f,
            "\nTo place the files by hand: get {} ({} bytes, SHA-256 {}) and the other files \
             of the dataset from any mirror, and put them in {} (raw or .gz), or in any \
             directory passed with --data-dir or named by the dataset's environment variable \
             (GLOROT_MNIST_DIR, GLOROT_FASHION_MNIST_DIR)",
            self.expected.name,
            self.expected.bytes,
            self.expected.sha256,
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
            let digest = crate::dataset::digest_file(&path, role, kind)?;
            match digest.check {
                DigestCheck::Match => {
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
                _ if digest.gzip && path.extension().is_some_and(|e| e == "gz") => {
                    // Our own download target: replace it below with a verified copy.
                }
                _ => return Err(digest.mismatch_error(kind)),
            }
        }
        let remote = RemoteFile::from(kind.known(role));
        let (path, url) = download_with(&agent, dir, &remote, mirrors, observer)?;
        out.push(Fetched {
            file: remote.name,
            path,
            outcome: FetchOutcome::Downloaded { url },
        });
    }
    crate::verify_dir(dir, kind)?;
    Ok(out)
}

/// Downloads `file` into `dir` from the first of `mirrors` that serves it with the right
/// size and SHA-256, replacing any existing file of that name atomically. Returns the
/// saved path and the URL used.
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
) -> Result<(PathBuf, String), Error> {
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
) -> Result<(PathBuf, String), Error> {
    let mut attempts = Vec::with_capacity(mirrors.len());
    for mirror in mirrors {
        let url = mirror.url(&file.name);
        observer(&FetchEvent::Trying {
            file: &file.name,
            url: &url,
        });
        match try_mirror(agent, dir, file, &url, observer) {
            Ok(path) => {
                observer(&FetchEvent::Saved {
                    file: &file.name,
                    url: &url,
                    path: &path,
                });
                return Ok((path, url));
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

fn try_mirror(
    agent: &ureq::Agent,
    dir: &Path,
    file: &RemoteFile,
    url: &str,
    observer: &mut dyn FnMut(&FetchEvent<'_>),
) -> Result<PathBuf, MirrorFailure> {
    let transport = |e: &dyn fmt::Display| MirrorFailure::Transport {
        message: e.to_string(),
    };
    let local = |e: std::io::Error| MirrorFailure::Local {
        message: e.to_string(),
    };

    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(status) => MirrorFailure::HttpStatus { status },
        e => transport(&e),
    })?;
    let mut body = response.into_body();
    if let Some(announced) = body.content_length()
        && announced != file.bytes
    {
        return Err(MirrorFailure::SizeMismatch {
            expected: file.bytes,
            found: announced,
        });
    }
    // Stream into a temporary file in the same directory (so the rename is atomic); it is
    // deleted on drop, i.e. on every early return below.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(local)?;
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
        if received > file.bytes {
            return Err(MirrorFailure::SizeMismatch {
                expected: file.bytes,
                found: received,
            });
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(local)?;
        reads += 1;
        if reads.is_multiple_of(PROGRESS_EVERY) {
            observer(&FetchEvent::Progress {
                file: &file.name,
                received,
                total: file.bytes,
            });
        }
    }
    observer(&FetchEvent::Progress {
        file: &file.name,
        received,
        total: file.bytes,
    });
    if received != file.bytes {
        return Err(MirrorFailure::SizeMismatch {
            expected: file.bytes,
            found: received,
        });
    }
    let found = hex(&hasher.finalize());
    if found != file.sha256 {
        return Err(MirrorFailure::DigestMismatch {
            expected: file.sha256.clone(),
            found,
        });
    }
    tmp.as_file().sync_all().map_err(local)?;
    let dest = dir.join(&file.name);
    tmp.persist(&dest).map_err(|e| local(e.error))?;
    Ok(dest)
}
