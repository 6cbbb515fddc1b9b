//! The side-by-side benchmark (being written; see issue 8).

/// Runs the benchmark.
pub(crate) fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("`cargo xtask bench` is not implemented yet (issue 8)")
}
