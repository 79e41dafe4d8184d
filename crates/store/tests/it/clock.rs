//! The store's clock, on both backends: every time the store itself
//! writes (a document's change time and its feed entry, a peer's last
//! contact, a quarantine entry stamped by the gate from it) is the time of
//! the clock the store was opened with, here stopped at [`TODAY`].

use anyhow::{Context, Result, ensure};
use automerge::ChangeHash;
use hopluu_store::Store;
use hopluu_store::quarantine::{NewQuarantine, QuarantineFilter};

use crate::harness::*;

suite!(
    case_a_commit_is_stamped_with_the_store_clock,
    case_peer_contact_is_stamped_with_the_store_clock,
    case_a_quarantine_entry_carries_the_store_clock,
);

pub async fn case_a_commit_is_stamped_with_the_store_clock(store: Store) -> Result<()> {
    ensure!(store.clock().now_millis() == now());
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    let row = store
        .doc_row(&unit_doc("vn"))
        .await?
        .context("the unit's record")?;
    ensure!(row.changed_at == now(), "{row:?}");
    let pending = store.pending_for("vn-node", &uid("vn"), 0, 1).await?;
    ensure!(pending.oldest_millis == now(), "{pending:?}");
    Ok(())
}

pub async fn case_peer_contact_is_stamped_with_the_store_clock(store: Store) -> Result<()> {
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    create_unit(&store, "hg", "LĐLĐ Hậu Giang", "provincial", Some("vn")).await?;
    let mut tx = store.begin().await?;
    tx.set_peer_applied("hg-node", &uid("hg"), 3);
    tx.commit().await?;
    let applied = store.peer("hg-node").await?.context("the peer")?;
    ensure!(applied.last_seen == now(), "{applied:?}");
    let mut tx = store.begin().await?;
    tx.set_peer_acked("vn-node", &uid("vn"), 2);
    tx.commit().await?;
    let acked = store.peer("vn-node").await?.context("the peer")?;
    ensure!(
        acked.acked_upto == 2 && acked.last_seen == now(),
        "{acked:?}"
    );
    Ok(())
}

/// The gate stamps what it quarantines with the time its session took
/// from the store's clock.
pub async fn case_a_quarantine_entry_carries_the_store_clock(store: Store) -> Result<()> {
    let entry = NewQuarantine {
        doc: "campaign/c1".parse()?,
        hash: ChangeHash([7; 32]),
        origin_node: "node-c1".into(),
        origin_unit: "c1".into(),
        peer_node: "node-c1".into(),
        peer_unit: "c1".into(),
        code: "not-authorised".into(),
        reason: "node node-c1 (unit c1) holds no authority".into(),
        waits_for: None,
        made_at: 0,
        change: vec![7; 10],
    };
    let mut tx = store.begin().await?;
    ensure!(tx.quarantine(&entry, store.clock().now_millis()).await?);
    tx.commit().await?;
    let all = store.quarantine_list(&QuarantineFilter::default()).await?;
    ensure!(all.len() == 1 && all[0].received_at == now(), "{all:?}");
    Ok(())
}
