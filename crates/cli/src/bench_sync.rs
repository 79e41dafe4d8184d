//! `hopluu bench-sync`: replication figures.

use clap::Args;

#[derive(Args, Debug)]
pub struct BenchSyncArgs {}

pub async fn run(_args: BenchSyncArgs) -> anyhow::Result<()> {
    anyhow::bail!("hopluu bench-sync is being written")
}
