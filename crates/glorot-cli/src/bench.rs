//! `glorot bench-epoch` and `glorot bench-gemm` (placeholder until its author replaces this file).

/// Options of `glorot bench-epoch`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchEpochArgs {}

/// Options of `glorot bench-gemm`.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchGemmArgs {}

/// `glorot bench-epoch`.
pub(crate) fn run_epoch(_args: BenchEpochArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

/// `glorot bench-gemm`.
pub(crate) fn run_gemm(_args: BenchGemmArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
