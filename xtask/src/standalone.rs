//! `cargo xtask standalone`: glorot-tensor used the way its README says, from a crate
//! outside the workspace, with a different BLAS provider than the workspace's.
//!
//! 1. `cargo tree -p glorot-tensor -e normal` names no BLAS or LAPACK provider crate and
//!    a single `rand`: the library leaves the provider to the final binary.
//! 2. The template `xtask/standalone/` is what a user writes from the README alone:
//!    every dependency line of its `Cargo.toml` and its `.cargo/config.toml` flags appear
//!    in `crates/glorot-tensor/README.md` (the dependency lines also in the crate docs),
//!    and its `src/main.rs` from the first `use` on is the README's example.
//! 3. Debian's reference BLAS is installed (as root on Debian, like the OpenBLAS check),
//!    the template is copied to a temporary directory, its path dependency pointed at
//!    this checkout, and the crate's `examples/tiny_mlp.rs` copied in with the reference
//!    BLAS's `extern crate` line, as the README tells a user to do.
//! 4. Both programs are built (debug profile, target directory `target/standalone`) and
//!    run; their output must show that they learned, and `ldd` must show the reference
//!    `libblas.so.3` and no OpenBLAS.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail, ensure};

use crate::{blas, cargo_cmd, say, workspace_root};

/// The template, relative to the workspace root.
const TEMPLATE: &str = "xtask/standalone";
/// The template's dependency on the crate, as the README writes it.
const PATH_LINE: &str = r#"glorot-tensor = { path = "../glorot/crates/glorot-tensor" }"#;
/// How examples link the provider, and the line the README gives for the reference BLAS.
const OPENBLAS_EXTERN: &str = "extern crate blas_src;";
const REFERENCE_EXTERN: &str = "extern crate netlib_src;";
/// Provider crates a library must not choose.
const PROVIDER_CRATES: &[&str] = &[
    "accelerate-src",
    "blas-src",
    "blis-src",
    "intel-mkl-src",
    "lapack-src",
    "ndarray-linalg",
    "netlib-src",
    "openblas-src",
    "r-src",
];
/// Debian's reference BLAS, and what `netlib-src`'s `system` mode also links
/// (`-llapack`, `-lgfortran`).
const PACKAGES: &[&str] = &["libblas-dev", "liblapack-dev", "gfortran"];

pub(crate) fn run() -> Result<()> {
    let root = workspace_root();
    check_tree()?;
    check_docs_agree(&root)?;
    let blas_dir = reference_blas_dir()?;
    ensure_packages(&blas_dir)?;

    let dir = env::temp_dir().join(format!("glorot-standalone-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    copy_template(&root, &dir)?;
    say(&format!(
        "xtask: building {} (glorot-tensor from this checkout, Debian's reference BLAS)",
        dir.display()
    ));
    let target = root.join("target/standalone");
    let main_out = cargo_run(&dir, &target, &[])?;
    check_main_output(&main_out)?;
    let tiny_out = cargo_run(&dir, &target, &["--example", "tiny_mlp"])?;
    check_tiny_mlp_output(&tiny_out)?;
    for bin in ["debug/tensor-user", "debug/examples/tiny_mlp"] {
        check_links_reference(&target.join(bin), &blas_dir)?;
    }
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    say(
        "xtask: standalone: glorot-tensor builds and runs outside the workspace with the reference BLAS",
    );
    Ok(())
}

/// No provider crate in glorot-tensor's normal dependencies, and one `rand`.
fn check_tree() -> Result<()> {
    let out = cargo_cmd(&[
        "tree",
        "--package",
        "glorot-tensor",
        "--edges",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ])
    .stderr(Stdio::inherit())
    .output()
    .context("running cargo tree")?;
    ensure!(out.status.success(), "cargo tree failed ({})", out.status);
    let tree = String::from_utf8(out.stdout).context("cargo tree printed non-UTF-8")?;
    let mut rands: Vec<&str> = Vec::new();
    for line in tree.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        if PROVIDER_CRATES.contains(&name) {
            bail!(
                "glorot-tensor depends on {name} {version}: the BLAS provider is the final binary's choice\n{tree}"
            );
        }
        if name == "rand" && !rands.contains(&version) {
            rands.push(version);
        }
    }
    ensure!(
        rands.len() == 1,
        "glorot-tensor pulls {} versions of rand ({}); expected one\n{tree}",
        rands.len(),
        rands.join(", ")
    );
    Ok(())
}

/// The template says nothing the README does not.
fn check_docs_agree(root: &Path) -> Result<()> {
    let readme_path = root.join("crates/glorot-tensor/README.md");
    let readme = read(&readme_path)?;
    let lib_rs = read(&root.join("crates/glorot-tensor/src/lib.rs"))?;
    let crate_docs: Vec<&str> = lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let readme_lines: Vec<&str> = readme.lines().map(str::trim).collect();

    let manifest = read(&root.join(TEMPLATE).join("Cargo.toml"))?;
    let deps = dependency_lines(&manifest);
    ensure!(
        deps.contains(&PATH_LINE),
        "{TEMPLATE}/Cargo.toml has no line `{PATH_LINE}`"
    );
    for line in deps {
        ensure!(
            readme_lines.contains(&line),
            "{TEMPLATE}/Cargo.toml's `{line}` is not in {}",
            readme_path.display()
        );
        ensure!(
            crate_docs.contains(&line),
            "{TEMPLATE}/Cargo.toml's `{line}` is not in the crate docs (src/lib.rs)"
        );
    }

    let config = read(&root.join(TEMPLATE).join(".cargo/config.toml"))?;
    for line in config.lines().filter(|l| l.starts_with("rustflags")) {
        ensure!(
            readme_lines.contains(&line),
            "{TEMPLATE}/.cargo/config.toml's `{line}` is not in {}",
            readme_path.display()
        );
    }

    let main = read(&root.join(TEMPLATE).join("src/main.rs"))?;
    ensure!(
        main.starts_with(REFERENCE_EXTERN),
        "{TEMPLATE}/src/main.rs must start with `{REFERENCE_EXTERN}`"
    );
    let body = main
        .find("\nuse ")
        .map(|i| &main[i + 1..])
        .context("no `use` line in the template's src/main.rs")?;
    ensure!(
        readme.contains(body),
        "{TEMPLATE}/src/main.rs (from its first `use` on) is not the example in {}",
        readme_path.display()
    );
    for line in [OPENBLAS_EXTERN, REFERENCE_EXTERN] {
        ensure!(
            readme.contains(line),
            "{} does not say `{line}`",
            readme_path.display()
        );
    }
    Ok(())
}

/// The non-comment lines of a manifest's `[dependencies]` table.
fn dependency_lines(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// `/usr/lib/<multiarch>/blas`, where Debian puts the reference `libblas.so`, as the
/// template's `.cargo/config.toml` names it.
fn reference_blas_dir() -> Result<PathBuf> {
    let multiarch = match (env::consts::OS, env::consts::ARCH) {
        ("linux", "x86_64") => "x86_64-linux-gnu",
        ("linux", "aarch64") => "aarch64-linux-gnu",
        (os, arch) => bail!(
            "cargo xtask standalone uses Debian's reference BLAS paths, known for Linux on \
             x86_64 and aarch64, not {os} on {arch}"
        ),
    };
    Ok(PathBuf::from(format!("/usr/lib/{multiarch}/blas")))
}

/// The reference BLAS, LAPACK and libgfortran for the linker: installed with apt-get
/// when missing and we run as root on Debian or Ubuntu, otherwise a clear error.
fn ensure_packages(blas_dir: &Path) -> Result<()> {
    let present = || blas_dir.join("libblas.so").exists() && blas::which("gfortran");
    if present() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        PACKAGES.join(" ")
    );
    if !(blas::is_root() && blas::is_debian_like() && blas::which("apt-get")) {
        bail!(
            "the reference BLAS ({}) or gfortran is missing; on Debian or Ubuntu: sudo {install}",
            blas_dir.join("libblas.so").display()
        );
    }
    say(&format!(
        "xtask: installing {} with apt-get (running as root)",
        PACKAGES.join(" ")
    ));
    crate::status(Command::new("apt-get").args(["-q", "update"]))?;
    crate::status(
        Command::new("apt-get")
            .args(["-q", "-y", "install", "--no-install-recommends"])
            .args(PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    ensure!(
        present(),
        "`{install}` succeeded but {} is still missing",
        blas_dir.display()
    );
    Ok(())
}

/// Copies the template to `dir`, points the path dependency at this checkout and adds
/// the crate's `tiny_mlp` example with the reference BLAS's `extern crate` line.
fn copy_template(root: &Path, dir: &Path) -> Result<()> {
    let template = root.join(TEMPLATE);
    for file in ["Cargo.toml", ".cargo/config.toml", "src/main.rs"] {
        let to = dir.join(file);
        fs::create_dir_all(to.parent().expect("a file in a directory"))?;
        fs::copy(template.join(file), &to)
            .with_context(|| format!("copying {file} to {}", to.display()))?;
    }
    let manifest = read(&dir.join("Cargo.toml"))?;
    let tensor = root.join("crates/glorot-tensor");
    let tensor = tensor
        .to_str()
        .context("the checkout's path is not UTF-8")?;
    let pointed = replace_once(
        &manifest,
        PATH_LINE,
        &format!("glorot-tensor = {{ path = {tensor:?} }}"),
    )
    .context("pointing the template's glorot-tensor dependency at the checkout")?;
    fs::write(dir.join("Cargo.toml"), pointed)?;

    let example = read(&root.join("crates/glorot-tensor/examples/tiny_mlp.rs"))?;
    let example = replace_once(&example, OPENBLAS_EXTERN, REFERENCE_EXTERN)
        .context("giving examples/tiny_mlp.rs the reference BLAS")?;
    fs::create_dir_all(dir.join("examples"))?;
    fs::write(dir.join("examples/tiny_mlp.rs"), example)?;
    Ok(())
}

/// `text` with the single occurrence of `from` replaced.
fn replace_once(text: &str, from: &str, to: &str) -> Result<String> {
    let n = text.matches(from).count();
    ensure!(n == 1, "expected `{from}` once, found it {n} times");
    Ok(text.replacen(from, to, 1))
}

/// `cargo run ARGS` in `dir` with its own target directory; returns the program's
/// stdout (also echoed). Rust flags from the environment would replace the template's
/// `.cargo/config.toml`, so they are not passed on.
fn cargo_run(dir: &Path, target: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = cargo_cmd(&["run", "--quiet"]);
    cmd.args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stderr(Stdio::inherit());
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let shown = format!(
        "cargo run --quiet {} (in {})",
        args.join(" "),
        dir.display()
    );
    let out = cmd
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    say(&stdout);
    ensure!(
        out.status.success(),
        "{shown} failed ({}); the copy is left in {}",
        out.status,
        dir.display()
    );
    Ok(stdout)
}

/// The README example prints `loss A -> B, training accuracy C %` and asserts itself
/// that it learned; here the line must be there with C >= 90.
fn check_main_output(out: &str) -> Result<()> {
    let accuracy = out
        .lines()
        .find_map(|l| l.split("training accuracy ").nth(1))
        .and_then(|rest| rest.trim_end_matches('%').trim().parse::<f64>().ok())
        .with_context(|| {
            format!("the README example printed no `training accuracy C %`:\n{out}")
        })?;
    ensure!(
        accuracy >= 90.0,
        "the README example reached only {accuracy} % accuracy"
    );
    Ok(())
}

/// `tiny_mlp` prints `epoch E  loss L  accuracy A %` every 10 epochs, 40 epochs in all;
/// the last accuracy must be at least 90 % (XOR, which a linear model gets 50 % on).
fn check_tiny_mlp_output(out: &str) -> Result<()> {
    let epochs: Vec<&str> = out.lines().filter(|l| l.starts_with("epoch")).collect();
    ensure!(
        epochs.len() == 4,
        "tiny_mlp printed {} epoch lines, expected 4:\n{out}",
        epochs.len()
    );
    let last = epochs[3];
    let accuracy = last
        .split("accuracy")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches('%').trim().parse::<f64>().ok())
        .with_context(|| format!("no accuracy in tiny_mlp's `{last}`"))?;
    ensure!(
        accuracy >= 90.0,
        "tiny_mlp reached only {accuracy} % accuracy: {last}"
    );
    Ok(())
}

/// `ldd` resolves `libblas.so.3` into the reference directory and loads no OpenBLAS.
fn check_links_reference(bin: &Path, blas_dir: &Path) -> Result<()> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .with_context(|| format!("running ldd on {}", bin.display()))?;
    ensure!(
        out.status.success(),
        "ldd {} failed ({})",
        bin.display(),
        out.status
    );
    let ldd = String::from_utf8_lossy(&out.stdout);
    let blas = ldd
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("libblas.so.3 =>"))
        .with_context(|| format!("{} does not load libblas.so.3:\n{ldd}", bin.display()))?;
    let expected = format!("=> {}/libblas.so.3 ", blas_dir.display());
    ensure!(
        blas.contains(&expected),
        "{} loads `{blas}`, not the reference BLAS in {}:\n{ldd}",
        bin.display(),
        blas_dir.display()
    );
    ensure!(
        !ldd.contains("openblas"),
        "{} loads OpenBLAS:\n{ldd}",
        bin.display()
    );
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{dependency_lines, replace_once};

    #[test]
    fn dependency_lines_are_the_table_without_comments() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\n# c\na = \"1\"\n\nb = { version = \"2\" }\n[workspace]\n";
        assert_eq!(
            dependency_lines(manifest),
            ["a = \"1\"", "b = { version = \"2\" }"]
        );
    }

    #[test]
    fn replace_once_refuses_zero_or_two() {
        assert_eq!(replace_once("a b", "b", "c").unwrap(), "a c");
        assert!(replace_once("a", "b", "c").is_err());
        assert!(replace_once("b b", "b", "c").is_err());
    }
}
