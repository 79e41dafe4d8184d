//! Delivery receipts and what a peer lacks, on both backends: receipts
//! stored once per (document, node, heads) with their first time, read by
//! document and in id order with their document's owner, the parent's
//! cursor written with them, old ones pruned; and `pending_for` counting
//! only documents in the peer's scope whose heads it does not have.

use anyhow::{Result, ensure};
use automerge::ChangeHash;
use hopluu_store::Store;
use hopluu_store::receipts::NewReceipt;

use crate::harness::*;

suite!(
    case_receipts_are_stored_once_and_read_with_their_owner,
    case_pending_counts_what_the_peer_lacks_in_its_scope,
);

fn receipt(doc: &str, node: &str, n: u8, at: i64) -> NewReceipt {
    NewReceipt {
        doc: doc.to_owned(),
        node_id: node.to_owned(),
        unit: node.to_owned(),
        heads: vec![ChangeHash([n; 32])],
        at,
    }
}

pub async fn case_receipts_are_stored_once_and_read_with_their_owner(store: Store) -> Result<()> {
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    create_unit(&store, "hg", "LĐLĐ Hậu Giang", "provincial", Some("vn")).await?;
    let doc = unit_doc("hg");
    let mut tx = store.begin().await?;
    tx.add_receipts(&[
        receipt("unit/hg", "hg-node", 1, 100),
        receipt("unit/hg", "vn", 1, 200),
        receipt("unit/ghost", "vn", 2, 300),
    ])
    .await?;
    tx.set_receipt_cursor("vn", 41).await?;
    tx.commit().await?;
    // The same heads again keep their first time.
    let mut tx = store.begin().await?;
    tx.add_receipts(&[receipt("unit/hg", "vn", 1, 999)]).await?;
    tx.commit().await?;
    let of = store.receipts_of(&doc).await?;
    ensure!(of.len() == 2, "{of:?}");
    ensure!(of[1].node_id == "vn" && of[1].at == 200, "{of:?}");
    // A unit's record is owned by its parent unit.
    ensure!(of[0].owner.as_deref() == Some("vn"), "{of:?}");
    let after = store.receipts_after(of[0].id, 10).await?;
    ensure!(after.len() == 2, "{after:?}");
    ensure!(
        after[1].doc == "unit/ghost" && after[1].owner.is_none(),
        "{after:?}"
    );
    ensure!(store.receipt_cursor("vn").await? == 41);
    ensure!(store.receipt_cursor("nobody").await? == 0);
    // A rolled-back transaction leaves nothing.
    let mut tx = store.begin().await?;
    tx.add_receipts(&[receipt("unit/hg", "vn", 3, 400)]).await?;
    tx.set_receipt_cursor("vn", 99).await?;
    drop(tx);
    ensure!(store.receipts_of(&doc).await?.len() == 2);
    ensure!(store.receipt_cursor("vn").await? == 41);
    // Pruning drops what is older than the bound.
    let mut tx = store.begin().await?;
    ensure!(tx.prune_receipts(250).await? == 2);
    tx.commit().await?;
    let left = store.receipts_after(0, 10).await?;
    ensure!(left.len() == 1 && left[0].at == 300, "{left:?}");
    Ok(())
}

pub async fn case_pending_counts_what_the_peer_lacks_in_its_scope(store: Store) -> Result<()> {
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    create_unit(&store, "hg", "LĐLĐ Hậu Giang", "provincial", Some("vn")).await?;
    create_unit(&store, "lc", "LĐLĐ Lai Châu", "provincial", Some("vn")).await?;
    create_unit(&store, "g1", "CĐCS Trường A", "grassroots", Some("hg")).await?;
    let hg = uid("hg");
    let all = store.pending_for("hg-node", &hg, 0, 1).await?;
    // vn's, hg's and g1's records are in hg's scope, and lc's (a child
    // of its ancestor, where a move may lead).
    ensure!(all.docs == 4 && all.changes == 4, "{all:?}");
    ensure!(all.oldest_millis > 0);
    // Documents whose heads the peer has are not pending.
    let mut tx = store.begin().await?;
    for u in ["vn", "hg"] {
        let id = unit_doc(u);
        let heads = store.doc_heads(&id).await?.expect("stored");
        tx.set_peer_heads("hg-node", &id, &heads, None);
    }
    tx.commit().await?;
    let left = store.pending_for("hg-node", &hg, 0, 1).await?;
    ensure!(left.docs == 2 && left.changes == 2, "{left:?}");
    // Past the peer's checkpoint nothing is pending.
    let position = store.feed_position().await?;
    let none = store.pending_for("hg-node", &hg, position, 1).await?;
    ensure!(none.docs == 0 && none.oldest_millis == 0, "{none:?}");
    Ok(())
}
