//! Where a dataset's files are: one rule for every command.
//!
//! 1. an explicit directory (the CLI's `--data-dir`), else
//! 2. the dataset's environment variable (`GLOROT_MNIST_DIR`, `GLOROT_FASHION_MNIST_DIR`),
//!    else
//! 3. the default data root's `<dataset>` directory ([`default_data_root`]): `data/` of the
//!    glorot workspace the process runs in, else the per-user data directory
//!    (`$XDG_DATA_HOME/glorot`, by default `~/.local/share/glorot`, on Linux), then
//! 4. system package directories (Fashion-MNIST only).
//!
//! A download ([`fetch_dir`]) goes to the first of 1 to 3, so data fetched once is found by
//! every later command started from the same place.

use std::ffi::OsString;
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
    /// `<workspace>/data/<dataset name>`: the glorot workspace's own data directory
    /// ([`find_workspace_data_root`]).
    DataRoot,
    /// `<user data directory>/glorot/<dataset name>` ([`user_data_root`]), outside the
    /// glorot workspace.
    UserData,
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

/// Where datasets live when no directory is named: `<root>/<dataset name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataRoot {
    /// The root directory (`<workspace>/data`, `~/.local/share/glorot`, ...).
    pub dir: PathBuf,
    /// [`Source::DataRoot`] (the workspace's) or [`Source::UserData`].
    pub source: Source,
}

impl DataRoot {
    /// A workspace data root ([`Source::DataRoot`]).
    pub fn workspace(dir: impl Into<PathBuf>) -> Self {
        DataRoot {
            dir: dir.into(),
            source: Source::DataRoot,
        }
    }

    /// A per-user data root ([`Source::UserData`]).
    pub fn user(dir: impl Into<PathBuf>) -> Self {
        DataRoot {
            dir: dir.into(),
            source: Source::UserData,
        }
    }

    /// The directory of `kind` under this root, as a candidate.
    pub fn candidate(&self, kind: DatasetKind) -> Candidate {
        Candidate {
            dir: self.dir.join(kind.name()),
            source: self.source,
        }
    }
}

/// The directories searched for `kind`, in order.
///
/// An explicit directory, when given, is the only candidate. Otherwise the dataset's
/// environment variable, when set to a non-empty value, is the only candidate. Otherwise:
/// `<root>/<kind name>` (when a root is given), then the kind's system directories.
pub fn candidates(
    kind: DatasetKind,
    explicit: Option<&Path>,
    root: Option<&DataRoot>,
) -> Vec<Candidate> {
    candidates_from(kind, explicit, env_dir(kind), root, kind.system_dirs())
}

/// [`candidates`] with the environment variable's value passed in (`None`: unset), for
/// callers that read the environment once, and for tests.
pub fn candidates_given_env(
    kind: DatasetKind,
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    root: Option<&DataRoot>,
) -> Vec<Candidate> {
    candidates_from(kind, explicit, env, root, kind.system_dirs())
}

/// [`candidates`] with the environment and system directories passed in, for tests.
fn candidates_from(
    kind: DatasetKind,
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    root: Option<&DataRoot>,
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
    let mut out: Vec<Candidate> = root.map(|r| r.candidate(kind)).into_iter().collect();
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
/// Resolution order ([`candidates`]): `explicit` (the CLI's `--data-dir`), then the
/// environment variable (`GLOROT_MNIST_DIR` or `GLOROT_FASHION_MNIST_DIR`), then
/// `<root>/mnist` (resp. `fashion-mnist`), then system directories
/// (`/usr/share/datasets/fashion-mnist` for Fashion-MNIST). An explicit directory or a set
/// environment variable is taken at its word: if it lacks files, that is the error, with
/// no fallback that could hide a misconfiguration. Downloading is a separate step (module
/// `download`, feature `download`).
///
/// Only the presence of the files is checked here; their content is checked when loaded.
///
/// # Errors
/// [`Error::MissingFiles`] for an explicit or environment directory lacking files,
/// [`Error::NotAFile`] when a file's name is taken by something else, [`Error::NotFound`]
/// (listing every directory searched) otherwise.
pub fn locate(
    kind: DatasetKind,
    explicit: Option<&Path>,
    root: Option<&DataRoot>,
) -> Result<PathBuf, Error> {
    find(kind, explicit, root).map(|c| c.dir)
}

/// [`locate`], also saying why the directory found was searched.
///
/// # Errors
/// As [`locate`].
pub fn find(
    kind: DatasetKind,
    explicit: Option<&Path>,
    root: Option<&DataRoot>,
) -> Result<Candidate, Error> {
    find_among(kind, candidates(kind, explicit, root))
}

/// The first of `candidates` (from [`candidates`]) holding `kind`'s four files, by
/// [`locate`]'s rules: a lone explicit or environment directory is taken at its word.
///
/// # Errors
/// As [`locate`].
pub fn find_among(kind: DatasetKind, candidates: Vec<Candidate>) -> Result<Candidate, Error> {
    if let [only] = candidates.as_slice()
        && matches!(only.source, Source::Explicit | Source::EnvVar)
    {
        find_files(&only.dir)?;
        return Ok(only.clone());
    }
    for c in &candidates {
        match find_files(&c.dir) {
            Ok(_) => return Ok(c.clone()),
            // Something in the way of a file (a directory under its name, a dangling
            // link): say so rather than "not found".
            Err(e @ Error::NotAFile { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    Err(Error::NotFound {
        dataset: kind,
        searched: candidates.into_iter().map(|c| c.dir).collect(),
    })
}

/// The directory a download for `kind` goes to: `explicit`, else the environment
/// variable's directory, else `<root>/<kind name>`; `None` when none is known.
pub fn fetch_dir(
    kind: DatasetKind,
    explicit: Option<&Path>,
    root: Option<&DataRoot>,
) -> Option<Candidate> {
    fetch_dir_from(kind, explicit, env_dir(kind), root)
}

/// [`fetch_dir`] with the environment variable's value passed in, for tests.
fn fetch_dir_from(
    kind: DatasetKind,
    explicit: Option<&Path>,
    env: Option<PathBuf>,
    root: Option<&DataRoot>,
) -> Option<Candidate> {
    // The candidates without system directories: those are not ours to write into.
    candidates_from(kind, explicit, env, root, &[])
        .into_iter()
        .next()
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

/// The default data root for a process started in `cwd`: the `data/` directory of the
/// glorot workspace holding `cwd` ([`find_workspace_data_root`]), else the per-user data
/// directory ([`user_data_root`]); `None` when neither is known (outside the workspace,
/// with no home directory).
pub fn default_data_root(cwd: &Path) -> Option<DataRoot> {
    find_workspace_data_root(cwd)
        .map(DataRoot::workspace)
        .or_else(|| user_data_root().map(DataRoot::user))
}

/// The glorot workspace's data root for a process started in `start`: `<root>/data`,
/// where `<root>` is the nearest ancestor of `start` (itself included) that is the glorot
/// workspace: its `Cargo.toml` has a `[workspace]` table and `crates/glorot-mnist/Cargo.toml`
/// beside it is the manifest of the package `glorot-mnist`. Any other Cargo workspace (a
/// user's own project) does not count. `None` outside the glorot workspace.
pub fn find_workspace_data_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_glorot_workspace(dir))
        .map(|dir| dir.join("data"))
}

fn is_glorot_workspace(dir: &Path) -> bool {
    let has_line = |path: PathBuf, wanted: &str| {
        std::fs::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l.trim() == wanted))
    };
    has_line(dir.join("Cargo.toml"), "[workspace]")
        && has_line(
            dir.join("crates/glorot-mnist/Cargo.toml"),
            r#"name = "glorot-mnist""#,
        )
}

/// The per-user data root, `<user data directory>/glorot`:
///
/// - Linux and other Unix systems: `$XDG_DATA_HOME/glorot` when `XDG_DATA_HOME` is an
///   absolute path (the XDG Base Directory rule), else `$HOME/.local/share/glorot`;
/// - macOS: `$HOME/Library/Application Support/glorot`;
/// - Windows: `%LOCALAPPDATA%\glorot`.
///
/// `None` when the variable it needs is unset, empty or relative.
pub fn user_data_root() -> Option<PathBuf> {
    let platform = if cfg!(windows) {
        Platform::Windows
    } else if cfg!(target_os = "macos") {
        Platform::MacOs
    } else {
        Platform::Unix
    };
    user_data_root_from(platform, |var| std::env::var_os(var))
}

#[derive(Debug, Clone, Copy)]
enum Platform {
    Unix,
    MacOs,
    Windows,
}

/// [`user_data_root`] for `platform`, reading variables through `var` (for tests).
fn user_data_root_from(
    platform: Platform,
    var: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    // A relative value would name a different place in every working directory.
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = match platform {
        Platform::Unix => absolute("XDG_DATA_HOME")
            .or_else(|| absolute("HOME").map(|h| h.join(".local").join("share"))),
        Platform::MacOs => absolute("HOME").map(|h| h.join("Library").join("Application Support")),
        // Checked for emptiness only: tests on other systems pass Windows paths.
        Platform::Windows => var("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    }?;
    Some(base.join("glorot"))
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
        let root = root.map(DataRoot::workspace);
        find_among(
            kind,
            candidates_from(
                kind,
                explicit,
                env.map(Path::to_owned),
                root.as_ref(),
                system,
            ),
        )
        .map(|c| c.dir)
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
    fn something_in_the_way_of_a_file_is_named_not_skipped() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data");
        let dir = full_dir(&root, "mnist");
        std::fs::remove_file(dir.join(NAMES[1])).unwrap();
        std::fs::create_dir(dir.join(NAMES[1])).unwrap();
        match locate_with(None, None, Some(&root), &[]) {
            Err(Error::NotAFile { file, what }) => {
                assert_eq!(file, dir.join(NAMES[1]));
                assert_eq!(what, "a directory");
            }
            other => panic!("expected NotAFile, got {other:?}"),
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

    /// A directory laid out as the glorot workspace: a `[workspace]` manifest and the
    /// `glorot-mnist` package under `crates/`.
    fn glorot_workspace(dir: &Path) {
        std::fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .unwrap();
        let member = dir.join("crates/glorot-mnist");
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            member.join("Cargo.toml"),
            "[package]\nname = \"glorot-mnist\"\n",
        )
        .unwrap();
    }

    #[test]
    fn workspace_data_root_is_found_from_a_subdirectory() {
        let t = tempfile::tempdir().unwrap();
        glorot_workspace(t.path());
        let deep = t.path().join("crates/glorot-mnist/src");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find_workspace_data_root(&deep), Some(t.path().join("data")));
        assert_eq!(
            default_data_root(&deep),
            Some(DataRoot::workspace(t.path().join("data")))
        );
    }

    #[test]
    fn another_cargo_workspace_is_not_glorots() {
        let t = tempfile::tempdir().unwrap();
        // A user's own workspace, with a member of its own.
        std::fs::write(
            t.path().join("Cargo.toml"),
            "[workspace]\nmembers = [\"app\"]\n",
        )
        .unwrap();
        let app = t.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("Cargo.toml"), "[package]\nname = \"app\"\n").unwrap();
        assert_eq!(find_workspace_data_root(&app), None);
        // A package named glorot-mnist with no workspace around it is not the workspace.
        let lone = t.path().join("lone");
        std::fs::create_dir_all(lone.join("crates/glorot-mnist")).unwrap();
        std::fs::write(
            lone.join("crates/glorot-mnist/Cargo.toml"),
            "[package]\nname = \"glorot-mnist\"\n",
        )
        .unwrap();
        std::fs::write(lone.join("Cargo.toml"), "[package]\nname = \"lone\"\n").unwrap();
        assert_eq!(find_workspace_data_root(&lone), None);
        // The glorot workspace inside the user's workspace is found from within it only.
        let glorot = t.path().join("vendor/glorot");
        std::fs::create_dir_all(&glorot).unwrap();
        glorot_workspace(&glorot);
        assert_eq!(find_workspace_data_root(&glorot), Some(glorot.join("data")));
        assert_eq!(find_workspace_data_root(&app), None);
    }

    /// This repository is the glorot workspace, seen from this crate's directory.
    #[test]
    fn this_repository_is_the_glorot_workspace() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = crate_dir.parent().and_then(Path::parent).unwrap();
        assert_eq!(find_workspace_data_root(crate_dir), Some(root.join("data")));
    }

    #[test]
    fn user_data_root_per_platform() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let unix = |pairs| user_data_root_from(Platform::Unix, env(pairs));
        assert_eq!(
            unix(&[("HOME", "/home/u")]),
            Some(PathBuf::from("/home/u/.local/share/glorot"))
        );
        assert_eq!(
            unix(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data/u")]),
            Some(PathBuf::from("/data/u/glorot"))
        );
        // The XDG spec: a relative or empty XDG_DATA_HOME is ignored.
        assert_eq!(
            unix(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "rel")]),
            Some(PathBuf::from("/home/u/.local/share/glorot"))
        );
        assert_eq!(
            unix(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "")]),
            Some(PathBuf::from("/home/u/.local/share/glorot"))
        );
        assert_eq!(unix(&[]), None);
        assert_eq!(unix(&[("HOME", "")]), None);
        assert_eq!(
            user_data_root_from(Platform::MacOs, env(&[("HOME", "/Users/u")])),
            Some(PathBuf::from("/Users/u/Library/Application Support/glorot"))
        );
        assert_eq!(
            user_data_root_from(
                Platform::Windows,
                env(&[("LOCALAPPDATA", r"C:\Users\u\AppData\Local")])
            ),
            Some(PathBuf::from(r"C:\Users\u\AppData\Local").join("glorot"))
        );
        assert_eq!(user_data_root_from(Platform::Windows, env(&[])), None);
    }

    #[test]
    fn fetch_dir_order() {
        let root = DataRoot::user("/r");
        let kind = DatasetKind::FashionMnist;
        let fetch = |explicit: Option<&str>, env: Option<&str>, root: Option<&DataRoot>| {
            fetch_dir_from(kind, explicit.map(Path::new), env.map(PathBuf::from), root)
        };
        let at = |dir: &str, source| {
            Some(Candidate {
                dir: PathBuf::from(dir),
                source,
            })
        };
        assert_eq!(
            fetch(Some("/x"), Some("/e"), Some(&root)),
            at("/x", Source::Explicit)
        );
        assert_eq!(
            fetch(None, Some("/e"), Some(&root)),
            at("/e", Source::EnvVar)
        );
        assert_eq!(
            fetch(None, None, Some(&root)),
            at("/r/fashion-mnist", Source::UserData)
        );
        assert_eq!(fetch(None, None, None), None);
    }
}
