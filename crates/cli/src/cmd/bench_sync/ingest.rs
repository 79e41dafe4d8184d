//! Steady ingest, measured once the initial aggregation is done and every
//! province is still connected: each province imports, at the same time,
//! an update of a share of its members (their position changed, spread
//! over all of its rosters, one ImportMembers request a batch), as offices
//! do when a spreadsheet comes back corrected; then the national node is
//! watched until its projection shows every edit. Prints the edits per
//! second the national node applied, and how long after the last
//! province's commit the last edit arrived.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use hopluu_devcluster::federation::LocalNode;
use hopluu_proto::v1 as pb;
use sqlx::Row;

use super::BenchSyncArgs;
use super::aggregation::leaf_of;
use crate::cmd::bench_common::member_input;
use crate::output::Table;

/// The position every edited member is given: no member holds it before.
const EDITED: &str = "Tổ trưởng công đoàn";

pub(super) struct Ingest {
    edits: usize,
    /// From the start of the imports until the last province committed.
    committed: Duration,
    /// From the start of the imports until the national node's projection
    /// showed every edit.
    reached: Duration,
}

impl Ingest {
    pub(super) fn render(&self, args: &BenchSyncArgs) -> String {
        let secs = |d: Duration| d.as_secs_f64().max(1e-9);
        let mut out = format!(
            "4. Steady ingest: {} provinces at once each import an update of {} % of their members (position changed, every roster touched, ImportMembers x{}); timed until the national node's projection shows every edit\n",
            args.provinces, args.ingest_percent, args.import_batch,
        );
        let mut t = Table::new(&[
            "edits",
            "provinces committed",
            "national shows all",
            "edits/s at the national node",
            "after the last province commit",
        ]);
        t.row(vec![
            self.edits.to_string(),
            format!("{:.2} s", secs(self.committed)),
            format!("{:.2} s", secs(self.reached)),
            format!("{:.0}", self.edits as f64 / secs(self.reached)),
            format!(
                "{:.0} ms",
                self.reached.saturating_sub(self.committed).as_secs_f64() * 1000.0
            ),
        ]);
        out.push_str(&t.render());
        out.push('\n');
        out
    }
}

/// Runs the edits at `nodes` (province `p` at index `p`), and watches the
/// national node's database at `national_url` until it shows them.
pub(super) async fn measure(
    args: &BenchSyncArgs,
    nodes: &[LocalNode],
    national_url: &str,
) -> Result<Ingest> {
    ensure!(
        (1..=100).contains(&args.ingest_percent),
        "--ingest-percent must be 1 to 100"
    );
    let every = 100 / args.ingest_percent;
    sqlx::any::install_default_drivers();
    let national = sqlx::AnyPool::connect(national_url).await?;
    let already = shown(&national).await?;
    ensure!(already == 0, "{already} members already hold {EDITED:?}");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut edits = 0;
    for (p, node) in nodes.iter().enumerate() {
        let from = args.members * p / args.provinces;
        let to = args.members * (p + 1) / args.provinces;
        let count = to - from;
        // Every `every`-th member of each roster's stretch: all rosters.
        let rows: Vec<pb::ImportRow> = (0..count)
            .filter(|k| k % every == every / 2)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: leaf_of(p, k, count, args.communes, args.grassroots),
                member: Some(member_input(from + k, EDITED)),
            })
            .collect();
        edits += rows.len();
        let mut members = pb::member_service_client::MemberServiceClient::new(node.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let batch = args.import_batch.max(1);
        tasks.spawn(async move {
            for chunk in rows.chunks(batch) {
                let r = members
                    .import_members(pb::ImportMembersRequest {
                        rows: chunk.to_vec(),
                    })
                    .await?
                    .into_inner();
                let updated = r
                    .results
                    .iter()
                    .filter(|r| r.outcome == pb::ImportOutcome::Updated as i32)
                    .count();
                ensure!(
                    updated == chunk.len(),
                    "province {p}: {updated} of {} rows updated",
                    chunk.len()
                );
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let committed = started.elapsed();
    let limit = Duration::from_secs(args.timeout_secs);
    loop {
        if shown(&national).await? >= edits {
            break;
        }
        if started.elapsed() > limit {
            bail!("the national node shows fewer than {edits} edits after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reached = started.elapsed();
    national.close().await;
    Ok(Ingest {
        edits,
        committed,
        reached,
    })
}

/// Members the national node's projection shows with the edited position.
async fn shown(national: &sqlx::AnyPool) -> Result<usize> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM members WHERE position = $1")
        .bind(EDITED)
        .fetch_one(national)
        .await?
        .get(0);
    Ok(n as usize)
}
