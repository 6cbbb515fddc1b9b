//! One rule for where data lives, and fetching on first use, end to end: the real
//! `glorot` binary in a directory outside the glorot workspace, with a private per-user
//! data directory (`XDG_DATA_HOME`) and the real MNIST (`GLOROT_MNIST_DIR`, skipped with a
//! note when unset) served from a loopback server (`GLOROT_MNIST_MIRROR`). Nothing here
//! reaches any other address.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::file_server::{FileServer, mirror_dir};
use crate::support::{Run, real_mnist};

/// `glorot args` in `cwd` with `xdg` as the data home and only `env` added to a
/// dataset-free environment.
fn glorot(cwd: &Path, xdg: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glorot"));
    c.args(args)
        .current_dir(cwd)
        .env("XDG_DATA_HOME", xdg)
        .stdin(Stdio::null());
    for var in [
        "GLOROT_MNIST_DIR",
        "GLOROT_MNIST_MIRROR",
        "GLOROT_OFFLINE",
        "RUST_BACKTRACE",
    ] {
        c.env_remove(var);
    }
    c.envs(env.iter().copied());
    Run::from(c.output().expect("the glorot binary runs"), args)
}

/// A one-epoch training on a slice of the data: enough to prove the data was found.
const TRAIN: &[&str] = &[
    "train",
    "--epochs",
    "1",
    "--hidden",
    "16",
    "--train-limit",
    "500",
    "--val-limit",
    "100",
    "--json",
    "-q",
];

#[test]
fn data_fetch_writes_where_every_command_reads_and_train_fetches_on_first_use() {
    let Some(real) = real_mnist() else { return };
    let t = tempfile::tempdir().unwrap();
    mirror_dir(&real, &t.path().join("mirror"));
    let server = FileServer::serve(&t.path().join("mirror"), Duration::from_secs(120));
    let mirror = server.base();
    let online = [("GLOROT_MNIST_MIRROR", mirror.as_str())];
    // Outside the workspace: two unrelated working directories.
    let (here, there) = (t.path().join("here"), t.path().join("there"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&there).unwrap();

    // `data fetch` puts the files in the per-user data directory...
    let xdg = t.path().join("xdg");
    let user_dir = xdg.join("glorot/mnist");
    let r = glorot(&here, &xdg, &online, &["data", "fetch"]);
    r.ok();
    assert!(
        r.stdout
            .contains(&format!("mnist is ready in {}", user_dir.display())),
        "{}",
        r.stdout
    );
    assert_eq!(server.requests().len(), 4, "{:?}", server.requests());
    // ...where `train` finds them, from anywhere, offline, with nothing more asked.
    let r = glorot(&there, &xdg, &[("GLOROT_OFFLINE", "1")], TRAIN);
    r.ok();
    assert_eq!(
        r.json()["report"]["epochs"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(server.requests().len(), 4);

    // A fresh data home, offline: the error lists what was searched and what to put
    // where, and nothing is created or asked.
    let fresh = t.path().join("fresh");
    let r = glorot(&here, &fresh, &[("GLOROT_OFFLINE", "1")], TRAIN);
    r.expect_code(1).stderr_has(&[
        "downloads are off",
        &format!("searched:\n  - {}", fresh.join("glorot/mnist").display()),
        "train-images-idx3-ubyte.gz",
        "GLOROT_MNIST_MIRROR",
    ]);
    assert!(!fresh.exists());
    let r = glorot(&here, &fresh, &online, &["train", "--offline", "-q"]);
    r.expect_code(1).stderr_has(&["downloads are off"]);
    assert_eq!(server.requests().len(), 4);

    // Online, `train` fetches the missing dataset into the data home first, then trains.
    let r = glorot(&here, &fresh, &online, TRAIN);
    r.ok().stderr_has(&[
        "mnist is not in",
        "downloading it",
        &format!(
            "saved {}",
            fresh
                .join("glorot/mnist/t10k-labels-idx1-ubyte.gz")
                .display()
        ),
    ]);
    assert_eq!(server.requests().len(), 8);
    glorot_mnist::verify_dir(
        &fresh.join("glorot/mnist"),
        glorot_mnist::DatasetKind::Mnist,
    )
    .unwrap();
    // A directory named by --data-dir is not filled by itself.
    let r = glorot(
        &here,
        &fresh,
        &online,
        &["train", "--data-dir", "empty", "-q"],
    );
    r.expect_code(1)
        .stderr_has(&["empty (from --data-dir)", "glorot data fetch"]);
    assert_eq!(server.requests().len(), 8);
}
