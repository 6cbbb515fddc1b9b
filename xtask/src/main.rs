//! Workspace automation, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask experiments [ARGS]`: checks the system BLAS, builds the `glorot`
//!   binary in release mode and runs `glorot experiments --out results ARGS` from the
//!   workspace root, so a missing MNIST is downloaded into `data/mnist` (`--offline`,
//!   `--mirror URL` and the variables `GLOROT_OFFLINE`, `GLOROT_MNIST_MIRROR`,
//!   `GLOROT_MNIST_DIR` reach glorot unchanged).
//! - `cargo xtask test [ARGS]`: checks the system BLAS, then `cargo test --workspace ARGS`.
//! - `cargo xtask ci`: what CI runs, cheapest first: fmt, clippy, doc, tests.
//! - `cargo xtask bench [ARGS]`: the side-by-side benchmark (see `bench/README.md`).
//! - `cargo xtask standalone`: builds and runs a crate outside the workspace that uses
//!   `glorot-tensor` as its README says, with Debian's reference BLAS (see
//!   `standalone.rs`).
//! - `cargo xtask arm`: clippy, the kernel crates' tests and a short training for
//!   aarch64, cross-compiled and run under qemu (see `arm.rs`).
//!
//! xtask itself depends on no BLAS crate, so it always builds and can tell the
//! user how to install OpenBLAS before anything that links it is compiled.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
};

use anyhow::{Context, Result, bail};

mod arm;
mod bench;
mod blas;
mod standalone;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  experiments [ARGS]  run the notebook's studies in release mode, results in results/
                      (ARGS go to `glorot experiments`; try `cargo xtask experiments --help`;
                      --keep-openblas-env keeps OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE).
                      MNIST is downloaded into data/mnist on first use; --offline (or
                      GLOROT_OFFLINE=1) forbids it, --mirror URL (or GLOROT_MNIST_MIRROR)
                      replaces the public mirrors, GLOROT_MNIST_DIR names your own copy
  test [ARGS]         run the whole test suite (ARGS go to `cargo test`)
  ci                  fmt --check, clippy -D warnings, doc -D warnings, tests, arm, standalone
  standalone          glorot-tensor from a crate outside the workspace, as its README says,
                      with Debian's reference BLAS (installs it when run as root)
  arm [--locked]      for aarch64 (cross-compiled, run under qemu): clippy -D warnings,
                      the glorot-tensor and glorot-mlp tests, a short `glorot train`
                      (says what to install when the cross tools are missing)
  bench [ARGS]        NumPy / PyTorch / JAX / GEMM-bound benchmark side by side
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("xtask: error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((command, rest)) = args.split_first() else {
        say(USAGE);
        bail!("no command given");
    };
    match command.as_str() {
        "experiments" => experiments(rest),
        "test" => {
            blas::ensure()?;
            cargo(&[&["test", "--workspace"], as_strs(rest).as_slice()].concat())
        }
        "ci" => ci(),
        "standalone" => standalone::run(),
        "arm" => arm::run(rest),
        "bench" => {
            blas::ensure()?;
            bench::run(rest)
        }
        "-h" | "--help" | "help" => {
            say(USAGE);
            Ok(())
        }
        other => {
            say(USAGE);
            bail!("unknown command `{other}`")
        }
    }
}

/// OpenBLAS tuning overrides some machines preset in the environment. Measured on a
/// 2-core AVX-512 machine with Debian's OpenBLAS 0.3.21 (see `bench/README.md`): a
/// 32x784x500 sgemm ran at 17 GFLOP/s with both set against 111 GFLOP/s with neither,
/// where OpenBLAS detects the CPU itself. The experiments drop them unless asked to keep them.
const OPENBLAS_OVERRIDES: &[&str] = &["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

/// Builds the release `glorot` binary and runs its `experiments` command.
fn experiments(rest: &[String]) -> Result<()> {
    blas::ensure()?;
    let keep_env = rest.iter().any(|a| a == "--keep-openblas-env");
    let rest: Vec<&String> = rest
        .iter()
        .filter(|a| *a != "--keep-openblas-env")
        .collect();
    let glorot = build_release_glorot()?;
    let root = workspace_root();
    let mut cmd = Command::new(&glorot);
    cmd.arg("experiments");
    if !rest
        .iter()
        .any(|a| *a == "--out" || a.starts_with("--out="))
    {
        cmd.arg("--out").arg(root.join("results"));
    }
    if !keep_env {
        for var in OPENBLAS_OVERRIDES {
            if let Some(value) = env::var_os(var) {
                say(&format!(
                    "xtask: not passing {var}={} to glorot (it slows OpenBLAS's small products \
                     several-fold on this kind of machine; keep it with --keep-openblas-env)",
                    value.to_string_lossy()
                ));
                cmd.env_remove(var);
            }
        }
    }
    cmd.args(rest).current_dir(&root);
    status(&mut cmd)
}

fn ci() -> Result<()> {
    blas::ensure()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    let mut doc = cargo_cmd(&["doc", "--workspace", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    status(&mut doc)?;
    cargo(&["test", "--workspace"])?;
    aarch64()?;
    standalone::run()
}

/// The 64-bit ARM target CI builds and tests besides the host (`cargo xtask arm`).
const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// `cargo xtask arm` when this machine can run it. Without rustup's standard library
/// for [`AARCH64`], says how to get it and skips; without the cross linker, qemu or the
/// arm64 OpenBLAS, says what to install and runs only clippy for aarch64 (checking
/// needs no linking).
fn aarch64() -> Result<()> {
    let missing = arm::missing_tools(arm::native());
    if missing.is_empty() {
        return arm::run(&[]);
    }
    if !arm::target_installed() {
        say(&format!(
            "xtask: skipping the aarch64 build: its standard library is not installed \
             (`rustup target add {AARCH64}`)"
        ));
        return Ok(());
    }
    say(&format!(
        "xtask: only clippy for aarch64 (no tests under qemu): {}",
        arm::describe(&missing)
    ));
    cargo(&[
        "clippy",
        "--workspace",
        "--target",
        AARCH64,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The workspace root: xtask lives in `<root>/xtask`.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command (through `$CARGO`, as cargo-xtask recommends) run from the root.
pub(crate) fn cargo_cmd(args: &[&str]) -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(workspace_root());
    cmd
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    status(&mut cargo_cmd(args))
}

/// Runs `build` (a `cargo build` command) with `--message-format=json-render-diagnostics`
/// and returns the path of the executable `bin` that cargo reports it built: wherever
/// cargo put it (`CARGO_TARGET_DIR`, `build.target-dir` in a cargo config, `--target`
/// subdirectories), not where xtask would guess. Diagnostics still go to stderr.
pub(crate) fn built_executable(mut build: Command, bin: &str) -> Result<PathBuf> {
    build
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let shown = format!("{build:?}");
    let out = build
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed ({})", out.status);
    }
    executable_in_messages(&String::from_utf8_lossy(&out.stdout), bin)
        .with_context(|| format!("{shown} reported no executable named `{bin}`"))
}

/// Builds the release `glorot` binary and returns its path ([`built_executable`]).
pub(crate) fn build_release_glorot() -> Result<PathBuf> {
    let args = [
        "build",
        "--release",
        "--package",
        "glorot-cli",
        "--bin",
        "glorot",
    ];
    built_executable(cargo_cmd(&args), "glorot")
}

/// The `executable` of the last `compiler-artifact` message for the binary target `bin`
/// among cargo's JSON messages (one per line).
fn executable_in_messages(stdout: &str, bin: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// Runs a command to completion; a non-zero exit becomes an error naming it.
pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

/// xtask is a binary: it talks to the user on stderr.
#[allow(clippy::print_stderr)]
pub(crate) fn say(msg: &str) {
    eprintln!("{msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as `cargo build --message-format=json-render-diagnostics` prints them
    /// (cargo 1.95, trimmed to the fields read): a library artifact, the build script,
    /// the binary with its executable path under a non-default target directory, and the
    /// final message.
    const MESSAGES: &str = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"glorot_tensor"},"executable":null}
{"reason":"build-script-executed","package_id":"path+file:///w/crates/glorot-cli#0.1.0"}
not json: a line cargo would never print on stdout
{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"glorot"},"executable":"/elsewhere/target/release/glorot"}
{"reason":"build-finished","success":true}"#;

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        assert_eq!(
            executable_in_messages(MESSAGES, "glorot"),
            Some(PathBuf::from("/elsewhere/target/release/glorot"))
        );
        assert_eq!(executable_in_messages(MESSAGES, "glorot_tensor"), None);
        assert_eq!(executable_in_messages(MESSAGES, "other"), None);
        assert_eq!(executable_in_messages("", "glorot"), None);
    }
}
