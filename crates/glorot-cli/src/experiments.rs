//! stub
#[derive(clap::Args, Debug)]
pub(crate) struct ExperimentsArgs {}
pub(crate) fn run(_args: ExperimentsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
