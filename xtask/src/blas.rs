//! Finds the system OpenBLAS before anything that links it is built.
//!
//! The workspace links Debian's `libopenblas-dev` through `openblas-src`'s `system`
//! feature (building OpenBLAS from source needs the internet at build time). Without
//! the library, the user would otherwise meet a raw linker error deep in a build.
//! Here we look first: when it is missing and we run as root on Debian or Ubuntu we
//! install it and say so; otherwise we print the exact install command and stop.

use std::{path::Path, process::Command};

use anyhow::{Result, bail};

use crate::say;

/// Directories where distributions put `libopenblas.so` (checked when `pkg-config`
/// itself is missing).
const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/opt/openblas/lib",
    "/usr/local/opt/openblas/lib",
];

const INSTALL_HELP: &str = "\
glorot needs the system OpenBLAS library and pkg-config.
Install it, then run the command again:
  Debian / Ubuntu:  sudo apt-get install -y libopenblas-dev pkg-config
  Fedora:           sudo dnf install -y openblas-devel pkgconf-pkg-config
  macOS (Homebrew): brew install openblas pkg-config
                    export PKG_CONFIG_PATH=\"$(brew --prefix openblas)/lib/pkgconfig\"";

/// Makes sure OpenBLAS can be linked, installing it when that is safe.
pub(crate) fn ensure() -> Result<()> {
    if found() {
        return Ok(());
    }
    if is_root() && is_debian_like() && which("apt-get") {
        say(
            "xtask: OpenBLAS not found; installing libopenblas-dev and pkg-config with apt-get (running as root)",
        );
        let update = Command::new("apt-get").args(["-q", "update"]).status();
        let install = Command::new("apt-get")
            .args([
                "-q",
                "-y",
                "install",
                "--no-install-recommends",
                "libopenblas-dev",
                "pkg-config",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        match (update, install) {
            (Ok(_), Ok(st)) if st.success() && found() => {
                say("xtask: installed libopenblas-dev");
                return Ok(());
            }
            _ => bail!("installing libopenblas-dev with apt-get failed\n{INSTALL_HELP}"),
        }
    }
    bail!("OpenBLAS was not found (pkg-config --exists openblas failed)\n{INSTALL_HELP}")
}

fn found() -> bool {
    let pkg = Command::new("pkg-config")
        .args(["--exists", "openblas"])
        .status();
    match pkg {
        Ok(st) => st.success(),
        // No pkg-config at all: openblas-src then falls back to `-lopenblas`, which
        // works when the shared library is in a standard directory.
        Err(_) => LIB_DIRS.iter().any(|d| {
            Path::new(d).join("libopenblas.so").exists()
                || Path::new(d).join("libopenblas.dylib").exists()
        }),
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub(crate) fn is_debian_like() -> bool {
    std::fs::read_to_string("/etc/os-release").is_ok_and(|s| {
        s.lines().any(|l| {
            (l.starts_with("ID=") || l.starts_with("ID_LIKE="))
                && (l.contains("debian") || l.contains("ubuntu"))
        })
    })
}

pub(crate) fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
