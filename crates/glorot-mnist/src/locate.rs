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
    candidates_from(kind, explicit, env_dir(kind), data_root, kind.system_dirs())
}

/// [`candidates`] with the environment and system directories passed in, for tests.
fn candidates_from(
    kind: DatasetKind,
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    data_root: Option<&Path>,
    system: &[&str],
) -> Vec<Candidate> {
    if let Some(dir) = explicit {
        return vec![Candidate {
            dir: dir.to_owned(),
            source: Source::Explicit,
        }];
    }
    if let Some(dir) = env {
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
    out.extend(system.iter().map(|d| Candidate {
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
/// misconfiguration. Downloading is a separate step (module `download`, feature `download`).
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
    locate_in(kind, candidates(kind, explicit, data_root))
}

fn locate_in(kind: DatasetKind, candidates: Vec<Candidate>) -> Result<PathBuf, Error> {
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
/// [`Error::NotAFile`] when neither name is a regular file but one of them exists as
/// something else (a directory, a FIFO, a symbolic link loop or a dangling link), then
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
    for (role, f) in FileRole::ALL.iter().zip(&found) {
        if f.is_none() {
            for path in [dir.join(role.file_name()), dir.join(role.gz_name())] {
                if let Some(what) = wrong_kind(&path) {
                    return Err(Error::NotAFile { file: path, what });
                }
            }
        }
    }
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

/// What `path` is when something exists there that is not a regular file (or a link to
/// one): `None` when nothing is there.
fn wrong_kind(path: &Path) -> Option<&'static str> {
    let link = std::fs::symlink_metadata(path).ok()?;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if link.file_type().is_symlink() => {
            // ELOOP is 40 on Linux, 62 on the BSDs and macOS.
            let looped = matches!(e.raw_os_error(), Some(40 | 62));
            return Some(if looped {
                "a symbolic link loop"
            } else {
                "a symbolic link to nothing"
            });
        }
        Err(_) => return Some("unreadable"),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_block_device() || kind.is_char_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// The data root for a process started in `cwd`: the workspace's `data/`
/// ([`find_workspace_data_root`]), or `cwd/data` outside a Cargo workspace.
pub fn default_data_root(cwd: &Path) -> PathBuf {
    find_workspace_data_root(cwd).unwrap_or_else(|| cwd.join("data"))
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

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 4] = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte",
    ];

    /// A directory with four (empty) files: presence is all `locate` checks.
    fn full_dir(parent: &Path, name: &str) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for n in NAMES {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        dir
    }

    fn locate_with(
        explicit: Option<&Path>,
        env: Option<&Path>,
        root: Option<&Path>,
        system: &[&str],
    ) -> Result<PathBuf, Error> {
        let kind = DatasetKind::Mnist;
        locate_in(
            kind,
            candidates_from(kind, explicit, env.map(Path::to_owned), root, system),
        )
    }

    #[test]
    fn explicit_beats_env_beats_root_beats_system() {
        let t = tempfile::tempdir().unwrap();
        let explicit = full_dir(t.path(), "explicit");
        let env = full_dir(t.path(), "env");
        let root = t.path().join("data");
        let in_root = full_dir(&root, "mnist");
        let system = full_dir(t.path(), "system");
        let sys = [system.to_str().unwrap()];
        assert_eq!(
            locate_with(Some(&explicit), Some(&env), Some(&root), &sys).unwrap(),
            explicit
        );
        assert_eq!(
            locate_with(None, Some(&env), Some(&root), &sys).unwrap(),
            env
        );
        assert_eq!(locate_with(None, None, Some(&root), &sys).unwrap(), in_root);
        assert_eq!(locate_with(None, None, None, &sys).unwrap(), system);
        std::fs::remove_dir_all(&in_root).unwrap();
        assert_eq!(locate_with(None, None, Some(&root), &sys).unwrap(), system);
    }

    #[test]
    fn explicit_and_env_do_not_fall_back() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data");
        full_dir(&root, "mnist");
        let empty = t.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        for (explicit, env) in [(Some(empty.as_path()), None), (None, Some(empty.as_path()))] {
            match locate_with(explicit, env, Some(&root), &[]) {
                Err(Error::MissingFiles { dir, missing }) => {
                    assert_eq!(dir, empty);
                    assert_eq!(missing.len(), 4);
                }
                other => panic!("expected MissingFiles, got {other:?}"),
            }
        }
    }

    #[test]
    fn not_found_lists_every_directory_searched() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data");
        match locate_with(None, None, Some(&root), &["/nonexistent/glorot-test"]) {
            Err(e @ Error::NotFound { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&root.join("mnist").display().to_string()),
                    "{msg}"
                );
                assert!(msg.contains("/nonexistent/glorot-test"), "{msg}");
                assert!(msg.contains("glorot data fetch --dataset mnist"), "{msg}");
                assert!(msg.contains("GLOROT_MNIST_DIR"), "{msg}");
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn a_partial_directory_names_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let dir = full_dir(t.path(), "partial");
        std::fs::remove_file(dir.join(NAMES[1])).unwrap();
        match find_files(&dir) {
            Err(Error::MissingFiles { missing, .. }) => {
                assert_eq!(missing, ["train-labels-idx1-ubyte"]);
            }
            other => panic!("expected MissingFiles, got {other:?}"),
        }
    }

    #[test]
    fn raw_is_preferred_over_gz() {
        let t = tempfile::tempdir().unwrap();
        let dir = full_dir(t.path(), "both");
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), b"").unwrap();
        assert_eq!(
            find_files(&dir).unwrap()[0],
            dir.join("train-images-idx3-ubyte")
        );
        assert_eq!(
            find_files(&dir).unwrap()[1],
            dir.join("train-labels-idx1-ubyte.gz")
        );
    }

    #[test]
    fn workspace_data_root_is_found_from_a_subdirectory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        let member = t.path().join("crates/x");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(member.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(
            find_workspace_data_root(&member),
            Some(t.path().join("data"))
        );
    }

    #[test]
    fn fetch_dir_order() {
        let root = Path::new("/r");
        assert_eq!(
            fetch_dir(DatasetKind::FashionMnist, Some(Path::new("/x")), Some(root)),
            Some(PathBuf::from("/x"))
        );
        if env_dir(DatasetKind::FashionMnist).is_none() {
            assert_eq!(
                fetch_dir(DatasetKind::FashionMnist, None, Some(root)),
                Some(PathBuf::from("/r/fashion-mnist"))
            );
            assert_eq!(fetch_dir(DatasetKind::FashionMnist, None, None), None);
        }
    }
}
