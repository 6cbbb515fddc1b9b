//! Bakes the source revision into the binary as `GLOROT_GIT_REVISION`, for the run
//! manifests: `git describe --always --dirty`, or `unknown` outside a git checkout (a
//! source tarball, a vendored copy) or without git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Packagers building outside git can state the revision.
    println!("cargo:rerun-if-env-changed=GLOROT_GIT_REVISION_OVERRIDE");
    let revision = std::env::var("GLOROT_GIT_REVISION_OVERRIDE")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&manifest_dir, &["describe", "--always", "--dirty"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GLOROT_GIT_REVISION={revision}");

    // Rebuild when HEAD moves (checkout, commit): HEAD itself, the branch it points to,
    // and packed refs. In a worktree HEAD lives in the worktree's git dir and the refs
    // in the common dir.
    let git_dir = git(&manifest_dir, &["rev-parse", "--absolute-git-dir"]).map(PathBuf::from);
    let common_dir = git(&manifest_dir, &["rev-parse", "--git-common-dir"]).map(|d| {
        let p = PathBuf::from(d);
        if p.is_absolute() {
            p
        } else {
            manifest_dir.join(p)
        }
    });
    if let Some(git_dir) = &git_dir {
        watch(&git_dir.join("HEAD"));
        if let Some(reference) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
            let base = common_dir.as_deref().unwrap_or(git_dir);
            watch(&base.join(&reference));
            watch(&base.join("packed-refs"));
        }
    }
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}
