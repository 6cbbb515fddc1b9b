//! `cargo xtask arm`: builds glorot for 64-bit ARM (`aarch64-unknown-linux-gnu`) and runs
//! it, under qemu's user-mode emulation on other machines.
//!
//! Steps, each timed: clippy `-D warnings` on the whole workspace for aarch64; the
//! `glorot-tensor` and `glorot-mlp` test suites (their tests loop over
//! `Isa::supported()`, so the NEON kernels are tested wherever the build has them); a
//! short `glorot train` on a subset of MNIST with the best instruction set detected,
//! whose JSON must be valid and name that instruction set.
//!
//! Cross-compiling needs Debian's cross linker and C library (`gcc-aarch64-linux-gnu`,
//! `libc6-dev-arm64-cross`), the arm64 OpenBLAS (`libopenblas-dev:arm64`, which brings
//! the arm64 C library qemu loads the binaries with), `qemu-user`, and rustup's standard
//! library for the target. [`check_tools`] looks for all of them and names the missing
//! packages. The linker and runner are set through cargo's environment variables for
//! this target only, so native builds are untouched (a `.cargo/config.toml` entry would
//! also apply to native builds on an ARM machine). The binaries run as
//! `qemu-aarch64 BINARY` without `-L`: the kernel's loader path
//! `/lib/ld-linux-aarch64.so.1` comes from `libc6:arm64`; pointing qemu at the cross
//! sysroot's C library instead hangs at the first thread spawn.
//!
//! Emulation is 10 to 50 times slower than native, so the tests run with
//! `GLOROT_TEST_EMULATED=1`: the few tests on full-size MNIST or dense sweeps shrink or
//! skip (saying so); native runs never set it. Doc tests are left to the native run
//! (each is a binary of its own to link and emulate, and none depends on the target).
//!
//! On an aarch64 Linux machine the same steps run natively, without qemu.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{AARCH64, blas::which, built_executable, cargo_cmd, say, status, workspace_root};

/// The cross C compiler and linker (Debian's `gcc-aarch64-linux-gnu`).
const CROSS_GCC: &str = "aarch64-linux-gnu-gcc";
/// qemu's user-mode emulator for aarch64 binaries (Debian's `qemu-user`).
const QEMU: &str = "qemu-aarch64";
/// The dynamic loader the aarch64 binaries ask for (Debian's `libc6:arm64`).
const LOADER: &str = "/lib/ld-linux-aarch64.so.1";
/// The arm64 OpenBLAS the binaries load at run time (Debian's `libopenblas-dev:arm64`).
const OPENBLAS_ARM64: &str = "/usr/lib/aarch64-linux-gnu/libopenblas.so.0";

/// The short training run: a small network, one epoch, a few thousand images.
const TRAIN_ARGS: &[&str] = &[
    "train",
    "--hidden",
    "64,64",
    "--epochs",
    "1",
    "--train-limit",
    "2000",
    "--val-limit",
    "500",
    "--test",
    "--test-limit",
    "500",
    "--json",
    "--quiet",
];

/// Runs every step; `args` may hold `--locked`, `--frozen` or `--offline`, passed to cargo.
pub(crate) fn run(args: &[String]) -> Result<()> {
    for a in args {
        if !matches!(a.as_str(), "--locked" | "--frozen" | "--offline") {
            bail!("`cargo xtask arm` takes only --locked, --frozen or --offline, not `{a}`");
        }
    }
    let cargo_flags: Vec<&str> = args.iter().map(String::as_str).collect();
    let native = native();
    check_tools(native)?;
    // `cargo SUBCOMMAND --target aarch64 [--locked] ARGS`.
    let cargo = |subcommand: &str, args: &[&str]| {
        let all = [
            &[subcommand, "--target", AARCH64],
            cargo_flags.as_slice(),
            args,
        ]
        .concat();
        status(&mut cross_cargo(&all, native))
    };
    let mut times: Vec<(&str, Duration)> = Vec::new();
    times.push(timed(
        "clippy -D warnings, whole workspace, aarch64",
        || {
            cargo(
                "clippy",
                &["--workspace", "--all-targets", "--", "-D", "warnings"],
            )
        },
    )?);
    times.push(timed(
        "glorot-tensor and glorot-mlp tests on aarch64 (GLOROT_TEST_EMULATED=1)",
        || {
            cargo(
                "test",
                &["-p", "glorot-tensor", "-p", "glorot-mlp", "--tests"],
            )
        },
    )?);
    let mut glorot = PathBuf::new();
    times.push(timed("build glorot for aarch64", || {
        let all = [
            &["build", "--target", AARCH64],
            cargo_flags.as_slice(),
            &["-p", "glorot-cli", "--bin", "glorot"],
        ]
        .concat();
        glorot = built_executable(cross_cargo(&all, native), "glorot")?;
        Ok(())
    })?);
    times.push(timed(
        "glorot train on a subset of MNIST, best instruction set",
        || train(&glorot, native),
    )?);

    say("\nxtask arm: wall time per step");
    for (name, took) in &times {
        say(&format!("  {:>7.1} s  {name}", took.as_secs_f64()));
    }
    let total: Duration = times.iter().map(|(_, t)| *t).sum();
    say(&format!("  {:>7.1} s  total", total.as_secs_f64()));
    Ok(())
}

/// Runs `step`, printing its name before and its wall time after.
fn timed(name: &str, step: impl FnOnce() -> Result<()>) -> Result<(&str, Duration)> {
    say(&format!("\n==> xtask arm: {name}"));
    let started = Instant::now();
    step().with_context(|| format!("step `{name}`"))?;
    let took = started.elapsed();
    say(&format!(
        "==> xtask arm: {name}: {:.1} s",
        took.as_secs_f64()
    ));
    Ok((name, took))
}

/// A cargo command for the aarch64 target: the cross linker and the qemu runner (both
/// only for that target, and only where the caller has not set them), and
/// `GLOROT_TEST_EMULATED=1` for the tests. Natively on aarch64, plain cargo.
fn cross_cargo(args: &[&str], native: bool) -> Command {
    let mut cmd = cargo_cmd(args);
    if !native {
        for (var, value) in [
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", CROSS_GCC),
            ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", QEMU),
        ] {
            if env::var_os(var).is_none() {
                cmd.env(var, value);
            }
        }
        cmd.env("GLOROT_TEST_EMULATED", "1");
    }
    cmd
}

/// Whether the machine runs aarch64 Linux itself (no cross tools, no emulation).
pub(crate) fn native() -> bool {
    cfg!(all(target_arch = "aarch64", target_os = "linux"))
}

/// Finds what cross-building and emulating need; when something is missing, stops
/// with the commands that install it (Debian and Ubuntu package names).
fn check_tools(native: bool) -> Result<()> {
    let missing = missing_tools(native);
    if missing.is_empty() {
        return Ok(());
    }
    bail!("{}", describe(&missing))
}

/// What is missing, and how to install it.
pub(crate) type Missing = Vec<(&'static str, &'static str)>;

/// The list of missing things and their install commands, for the user.
pub(crate) fn describe(missing: &Missing) -> String {
    let mut msg = String::from("cannot build and run glorot for aarch64; missing:\n");
    for (what, _) in missing {
        msg.push_str(&format!("  - {what}\n"));
    }
    msg.push_str("install them (as root on Debian or Ubuntu), then run `cargo xtask arm` again:\n");
    for (_, how) in missing {
        msg.push_str(&format!("  {how}\n"));
    }
    msg.trim_end().to_owned()
}

/// What [`run`] needs that this machine lacks (empty when it can run).
pub(crate) fn missing_tools(native: bool) -> Missing {
    let mut missing: Missing = Vec::new();
    if !native && !target_installed() {
        missing.push((
            "the Rust standard library for aarch64",
            "rustup target add aarch64-unknown-linux-gnu",
        ));
    }
    if !native {
        if !which(CROSS_GCC) {
            missing.push((
                "the cross linker aarch64-linux-gnu-gcc",
                "apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
            ));
        } else if !cross_gcc_finds("Scrt1.o") {
            missing.push((
                "the aarch64 C library to link with (Scrt1.o)",
                "apt-get install -y libc6-dev-arm64-cross",
            ));
        }
        if !which(QEMU) {
            missing.push(("the emulator qemu-aarch64", "apt-get install -y qemu-user"));
        }
        // The library to link (found by the cross compiler, when there is one to ask)
        // and the ones the emulated binaries load.
        let openblas = Path::new(OPENBLAS_ARM64).exists()
            && Path::new(LOADER).exists()
            && (!which(CROSS_GCC) || cross_gcc_finds("libopenblas.so"));
        if !openblas {
            missing.push((
                "the arm64 OpenBLAS and C library (libopenblas.so, /lib/ld-linux-aarch64.so.1)",
                "dpkg --add-architecture arm64 && apt-get update && \
                 apt-get install -y libopenblas-dev:arm64",
            ));
        }
    } else if !(which("pkg-config")
        && Command::new("pkg-config")
            .args(["--exists", "openblas"])
            .status()
            .is_ok_and(|s| s.success()))
    {
        missing.push(("OpenBLAS", "apt-get install -y libopenblas-dev pkg-config"));
    }
    missing
}

/// Whether rustup has the standard library for [`AARCH64`].
pub(crate) fn target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == AARCH64)
        })
}

/// Whether the cross compiler's search path has `file` (`-print-file-name` echoes the
/// bare name back when it does not).
fn cross_gcc_finds(file: &str) -> bool {
    Command::new(CROSS_GCC)
        .arg(format!("-print-file-name={file}"))
        .output()
        .is_ok_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_absolute())
}

/// The short training run: must exit 0 and print valid JSON whose manifest names the
/// instruction set it trained with, the best one the binary finds on this (emulated)
/// CPU: see [`expected_isa`].
fn train(glorot: &Path, native: bool) -> Result<()> {
    let root = workspace_root();
    let runner = |args: &[&str]| {
        let mut cmd = if native {
            Command::new(glorot)
        } else {
            let mut c = Command::new(QEMU);
            c.arg(glorot);
            c
        };
        // The best instruction set, detected: nothing chosen by the caller's environment.
        cmd.args(args).current_dir(&root).env_remove("GLOROT_ISA");
        cmd.env_remove("GLOROT_FUSED");
        cmd
    };
    let expected = expected_isa(&runner)?;
    let mut cmd = runner(TRAIN_ARGS);
    let shown = format!("{cmd:?}");
    say(&format!("xtask arm: {shown}"));
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{shown} printed no valid JSON"))?;
    let summary = |key: &str| json.get(key).map_or("-".to_owned(), Value::to_string);
    say(&format!(
        "xtask arm: trained: final_val_accuracy {}, manifest {}",
        summary("final_val_accuracy"),
        json.get("manifest")
            .map_or("-".to_owned(), Value::to_string)
    ));
    check_isa(&json, expected)
}

/// The instruction set `glorot` must report: `neon` when it accepts `GLOROT_ISA=neon`
/// (the build has NEON kernels; every aarch64 CPU has NEON), else `scalar`, with a
/// note. The NEON kernels being in the build is checked by glorot-tensor's own tests;
/// here the run must use what the binary has.
fn expected_isa(runner: &dyn Fn(&[&str]) -> Command) -> Result<&'static str> {
    let mut probe = runner(&["--version"]);
    probe.env("GLOROT_ISA", "neon");
    let out = probe.output().context("could not start glorot --version")?;
    if out.status.success() {
        return Ok("neon");
    }
    say(&format!(
        "xtask arm: NOTE: this build has no NEON kernels (GLOROT_ISA=neon: {}); \
         the run must report the portable `scalar` code",
        String::from_utf8_lossy(&out.stderr).trim()
    ));
    Ok("scalar")
}

/// The check on the run's JSON: `manifest.isa` is the instruction set expected.
fn check_isa(json: &Value, expected: &str) -> Result<()> {
    let Some(isa) = json.pointer("/manifest/isa") else {
        bail!("the run's JSON has no manifest.isa: it must say which instruction set it used");
    };
    if isa.as_str() != Some(expected) {
        bail!("the run used instruction set {isa}, expected \"{expected}\"");
    }
    say(&format!(
        "xtask arm: the run reports isa \"{expected}\", as expected"
    ));
    Ok(())
}
