//! The first run on a fresh machine: `cargo xtask experiments --quick` in a fresh
//! `git clone` of this repository, with no data in it and no `GLOROT_MNIST_DIR`, must
//! fetch MNIST (here from a loopback server holding the files of `GLOROT_MNIST_DIR`,
//! named by `GLOROT_MNIST_MIRROR`), verify it and finish.
//!
//! Gated: runs only with `GLOROT_FRESH_CLONE_TEST=1` (CI sets it in `.ci/run`), since it
//! builds the release binary of the clone (a few minutes). It needs `GLOROT_MNIST_DIR`.
//! `GLOROT_FRESH_CLONE_TARGET_DIR` names the cargo target directory for that build
//! (default: this test's own, so dependencies are not rebuilt). The clone's `HOME` and
//! `XDG_DATA_HOME` are empty temporary directories (cargo and rustup keep their own
//! homes), cargo runs with `CARGO_NET_OFFLINE=true`, and the only server asked for data
//! is the loopback one. Part 5's Fashion-MNIST comes from Debian's
//! `/usr/share/datasets/fashion-mnist` (CI installs `dataset-fashion-mnist`); its mirror is
//! a path of the loopback server that holds nothing, so it is never downloaded.

#[path = "file_server.rs"]
mod file_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use file_server::{FileServer, mirror_dir};

/// Longest the clone's build and quick run may take before the test kills it.
const LIMIT: Duration = Duration::from_secs(30 * 60);

macro_rules! note {
    ($($arg:tt)*) => {{
        #[allow(clippy::print_stderr, reason = "the test reports its steps")]
        {
            eprintln!($($arg)*);
        }
    }};
}

#[test]
fn cargo_xtask_experiments_quick_fetches_mnist_in_a_fresh_clone() {
    if std::env::var("GLOROT_FRESH_CLONE_TEST").as_deref() != Ok("1") {
        note!(
            "fresh_clone: skipped: set GLOROT_FRESH_CLONE_TEST=1 to run `cargo xtask \
             experiments --quick` in a fresh clone (CI does)"
        );
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let real = std::env::var_os("GLOROT_MNIST_DIR")
        .filter(|v| !v.is_empty())
        .map(|v| workspace.join(v))
        .expect("GLOROT_MNIST_DIR names the directory whose files the test serves");
    let t = tempfile::tempdir().unwrap();
    let mirror = t.path().join("mirror");
    mirror_dir(&real, &mirror);
    let server = FileServer::serve(&mirror, LIMIT);

    let clone = t.path().join("glorot");
    let git = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(&workspace)
        .arg(&clone)
        .status()
        .expect("git runs");
    assert!(git.success(), "git clone failed: {git}");
    let data = clone.join("data/mnist");
    assert!(!data.exists(), "a fresh clone holds no data");

    let (home, xdg) = (t.path().join("home"), t.path().join("xdg"));
    std::fs::create_dir_all(&home).unwrap();
    let target = std::env::var_os("GLOROT_FRESH_CLONE_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(own_target_dir);
    let results = t.path().join("results");
    let log = t.path().join("xtask.log");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["xtask", "experiments", "--quick", "--out"])
        .arg(&results)
        .current_dir(&clone)
        .env("GLOROT_MNIST_MIRROR", server.base())
        .env(
            "GLOROT_FASHION_MNIST_MIRROR",
            format!("{}no-fashion-mnist-here/", server.base()),
        )
        .env("HOME", &home)
        .env("XDG_DATA_HOME", &xdg)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(t.path().join("xtask.err")).unwrap());
    for var in [
        "GLOROT_MNIST_DIR",
        "GLOROT_FASHION_MNIST_DIR",
        "GLOROT_OFFLINE",
        "CARGO_TERM_PROGRESS_WHEN",
    ] {
        cmd.env_remove(var);
    }
    // cargo and rustup keep using their own homes, not the empty HOME.
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let dir = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(default)));
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            cmd.env(var, dir);
        }
    }
    note!(
        "fresh_clone: cargo xtask experiments --quick in {} (target dir {}, mirror {})",
        clone.display(),
        target.display(),
        server.base()
    );
    let start = Instant::now();
    let mut child = cmd.spawn().expect("cargo runs");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fresh_clone: no result after {LIMIT:?}\n{}", tail(t.path()));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = tail(t.path());
    note!(
        "fresh_clone: finished in {:.0} s ({status})\n{output}",
        start.elapsed().as_secs_f64()
    );
    assert!(status.success(), "cargo xtask experiments --quick failed");

    // It fetched the four files (each once) into the clone's data/mnist, verified.
    let mut asked = server.requests();
    asked.sort();
    assert_eq!(
        asked,
        [
            "/t10k-images-idx3-ubyte.gz",
            "/t10k-labels-idx1-ubyte.gz",
            "/train-images-idx3-ubyte.gz",
            "/train-labels-idx1-ubyte.gz",
        ]
    );
    glorot_mnist::verify_dir(&data, glorot_mnist::DatasetKind::Mnist).unwrap();
    let stderr = std::fs::read_to_string(t.path().join("xtask.err")).unwrap();
    assert!(stderr.contains("mnist is not in"), "{output}");
    assert!(stderr.contains("downloading it"), "{output}");
    // It finished: the quick run's report is there.
    assert!(results.join("quick/REPORT.md").is_file());
    // Inside the workspace, the per-user data directory is not used, and nothing was
    // written to the (empty) home.
    assert!(!xdg.exists(), "{} was created", xdg.display());
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "HOME was written to"
    );
}

/// The target directory this test was built in: `<target>/<profile>/deps/<test binary>`.
fn own_target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .expect("the test binary lies in <target>/<profile>/deps")
        .to_owned()
}

/// The last lines of the run's stdout and stderr.
fn tail(dir: &Path) -> String {
    ["xtask.log", "xtask.err"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            format!(
                "--- {name} (last {} lines)\n{}",
                lines.len() - from,
                lines[from..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
