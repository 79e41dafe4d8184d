//! `hopluu demo`: a small federation on loopback in one command.

use clap::Args;

#[derive(Args, Debug)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("hopluu demo is being written")
}
