//! Where a dataset's files are: explicit directory, environment variable, workspace data
//! root, system package directory.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{DatasetKind, Error, FileRole};

/// Why a directory was searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Source {
    /// Named by the caller (the CLI's `--data-dir`).
    Explicit,
    /// Named by the dataset's environment variable ([`DatasetKind::env_var`]).
    EnvVar,
    /// `<data root>/<dataset name>`, the workspace's own data directory.
    DataRoot,
    /// Where a system package installs the dataset ([`DatasetKind::system_dirs`]).
    System,
}

/// A directory to search, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The directory.
    pub dir: PathBuf,
    /// Why it is searched.
    pub source: Source,
}

/// The directories searched for `kind`, in order.
///
/// An explicit directory, when given, is the only candidate. Otherwise the dataset's
/// environment variable, when set to a non-empty value, is the only candidate. Otherwise:
/// `<data_root>/<kind name>` (when a data root is given), then the kind's system
/// directories.
pub fn candidates(
    kind: DatasetKind,
    explicit: Option<&Path>,
    data_root: Option<&Path>,
) -> Vec<Candidate> {
    if let Some(dir) = explicit {
        return vec![Candidate {
            dir: dir.to_owned(),
            source: Source::Explicit,
        }];
    }
    if let Some(dir) = env_dir(kind) {
        return vec![Candidate {
            dir,
            source: Source::EnvVar,
        }];
    }
    let mut out = Vec::new();
    if let Some(root) = data_root {
        out.push(Candidate {
            dir: root.join(kind.name()),
            source: Source::DataRoot,
        });
    }
    out.extend(kind.system_dirs().iter().map(|d| Candidate {
        dir: PathBuf::from(d),
        source: Source::System,
    }));
    out
}

/// The directory named by the dataset's environment variable, if set and non-empty.
pub fn env_dir(kind: DatasetKind) -> Option<PathBuf> {
    std::env::var_os(kind.env_var())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Finds the directory holding `kind`'s four files.
///
/// Resolution order: `explicit` (the CLI's `--data-dir`), then the environment variable
/// (`GLOROT_MNIST_DIR` or `GLOROT_FASHION_MNIST_DIR`), then `<data_root>/mnist` (resp.
/// `fashion-mnist`), then system directories (`/usr/share/datasets/fashion-mnist` for
/// Fashion-MNIST). An explicit directory or a set environment variable is taken at its
/// word: if it lacks files, that is the error, with no fallback that could hide a
/// misconfiguration. Downloading is a separate step ([`crate::download`]).
///
/// Only the presence of the files is checked here; their content is checked when loaded.
///
/// # Errors
/// [`Error::MissingFiles`] for an explicit or environment directory lacking files,
/// [`Error::NotFound`] (listing every directory searched) otherwise.
pub fn locate(
    kind: DatasetKind,
    explicit: Option<&Path>,
    data_root: Option<&Path>,
) -> Result<PathBuf, Error> {
    let candidates = candidates(kind, explicit, data_root);
    if let [only] = candidates.as_slice()
        && matches!(only.source, Source::Explicit | Source::EnvVar)
    {
        find_files(&only.dir)?;
        return Ok(only.dir.clone());
    }
    for c in &candidates {
        if find_files(&c.dir).is_ok() {
            return Ok(c.dir.clone());
        }
    }
    Err(Error::NotFound {
        dataset: kind,
        searched: candidates.into_iter().map(|c| c.dir).collect(),
    })
}

/// The directory a download for `kind` goes to: `explicit`, else the environment
/// variable's directory, else `<data_root>/<kind name>`; `None` when none is known.
pub fn fetch_dir(
    kind: DatasetKind,
    explicit: Option<&Path>,
    data_root: Option<&Path>,
) -> Option<PathBuf> {
    explicit
        .map(Path::to_owned)
        .or_else(|| env_dir(kind))
        .or_else(|| data_root.map(|r| r.join(kind.name())))
}

/// The paths of the four files in `dir`, in [`FileRole::ALL`] order.
///
/// Each file may be raw (`train-images-idx3-ubyte`) or compressed
/// (`train-images-idx3-ubyte.gz`); when both exist the raw one is used. The content, not
/// the name, decides how a file is read.
///
/// # Errors
/// [`Error::MissingFiles`] naming every file absent.
pub fn find_files(dir: &Path) -> Result<[PathBuf; 4], Error> {
    let found = FileRole::ALL.map(|role| {
        let raw = dir.join(role.file_name());
        let gz = dir.join(role.gz_name());
        if raw.is_file() {
            Some(raw)
        } else if gz.is_file() {
            Some(gz)
        } else {
            None
        }
    });
    let missing: Vec<String> = FileRole::ALL
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(r, _)| r.file_name().to_owned())
        .collect();
    match found {
        [Some(a), Some(b), Some(c), Some(d)] => Ok([a, b, c, d]),
        _ => Err(Error::MissingFiles {
            dir: dir.to_owned(),
            missing,
        }),
    }
}

/// The workspace data root for a process started in `start`: `<root>/data`, where
/// `<root>` is the nearest ancestor of `start` (itself included) holding a `Cargo.toml`
/// with a `[workspace]` table. `None` outside a Cargo workspace.
pub fn find_workspace_data_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|l| l.trim() == "[workspace]")
            .then(|| dir.join("data"))
    })
}
