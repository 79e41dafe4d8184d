//! Held changes count as not delivered. A province writes its own unit's
//! record, which its parent decides (a change it holds no authority
//! for); the national node quarantines it and acknowledges the batch. The
//! province's `peers` row for its parent shows the change pending and
//! held by the peer (where before it showed nothing pending, the
//! checkpoint having moved past it), the national node's row for the
//! province says it holds one of its changes, and `hopluu tree` at the
//! national node shows the province's edge with it. Once the national
//! node's administrator releases (or discards) it, the province hears at
//! once (a notice) and nothing is pending any more.

use anyhow::Result;
use automerge::ChangeHash;
use automerge::transaction::Transactable;
use hopluu_model::doc::edit;
use hopluu_model::{DocId, ModelError, UnitId};
use hopluu_node::app::admin::Decide;
use hopluu_node::app::quarantine::QuarantineSelect;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;

use crate::harness::*;
use crate::replication::{eventually, peer};

/// The province `hg-node` dialling `national`, reporting its edges up
/// every second.
async fn province(national: &Node) -> Result<Node> {
    let unit = UnitId::parse("unit", HG)?;
    national.replication.allow_child("hg-node", &unit);
    let addr = national.addr;
    Node::start_with(tempfile::tempdir()?, |c| {
        as_child(c, "hg-node", HG, "vn", addr);
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
        c.replication.report_every_secs = 1;
    })
    .await
}

/// The province writes `key` on its own unit's record, as its own node.
async fn write_own_record(province: &Node, key: &str) -> Result<ChangeHash> {
    let id = DocId::Unit(UnitId::parse("unit", HG)?);
    let author = province.app.author();
    let mut tx = province.app.store().begin().await?;
    let doc = tx.doc(&id).await?;
    edit(doc, &author, "a note of its own", |t| {
        t.put(automerge::ROOT, key, "ours")
            .map_err(|e| ModelError::document(&id, e.to_string()))
    })?;
    let head = doc.get_heads()[0];
    tx.commit().await?;
    Ok(head)
}

/// The edge `reporter` -> `peer` in `hopluu tree` at `node`.
async fn reported(node: &Node, reporter: &str, peer: &str) -> Result<Option<pb::PeerStatus>> {
    Ok(AdminServiceClient::new(node.channel.clone())
        .tree(pb::TreeRequest::default())
        .await?
        .into_inner()
        .edges
        .into_iter()
        .find(|e| e.reporter_node == reporter && e.edge.as_ref().is_some_and(|p| p.node_id == peer))
        .and_then(|e| e.edge))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_parent_holds_is_pending_at_the_child_until_decided() -> Result<()> {
    let national = Node::with_tree().await?;
    let hg = province(&national).await?;
    eventually("the province is in step with its parent", || async {
        let up = peer(&hg, "vn").await?;
        Ok(up.connected && hg.unit(HG_A).await.is_ok() && up.changes_pending == 0)
    })
    .await?;

    let made = write_own_record(&hg, "close_reason").await?;
    eventually("the national node holds the change", || async {
        Ok(national.app.counts().await?.quarantine_held == 1)
    })
    .await?;
    // At the province: pending, and held by the peer, made when it was.
    eventually("the province counts it as not delivered", || async {
        let up = peer(&hg, "vn").await?;
        Ok(up.held_by_peer == 1
            && up.changes_pending >= 1
            && up.docs_pending >= 1
            && up.oldest_pending_millis > 0
            && up.acked_upto > 0)
    })
    .await?;
    let up = peer(&hg, "vn").await?;
    assert_eq!(
        up.oldest_pending_millis,
        hg.app.author().time_millis,
        "counted from when the change was made: {up:?}"
    );
    // At the national node: its row for the province holds one change.
    eventually("the national node's row holds it", || async {
        Ok(peer(&national, "hg-node").await?.held_here == 1)
    })
    .await?;
    // And the province's report of its edge says so up the tree.
    eventually("the tree at the national node shows it", || async {
        Ok(reported(&national, "hg-node", "vn")
            .await?
            .is_some_and(|e| e.held_by_peer == 1 && e.changes_pending >= 1))
    })
    .await?;

    // Released at the national node: the province hears at once.
    let hg_node = QuarantineSelect {
        node: "hg-node",
        ..Default::default()
    };
    let d = national
        .app
        .decide_quarantine_matching(Decide::Release, &hg_node, "admin", "", false)
        .await?;
    assert_eq!(d.released, 1);
    eventually("nothing is pending at the province", || async {
        let up = peer(&hg, "vn").await?;
        Ok(up.held_by_peer == 0 && up.changes_pending == 0 && up.docs_pending == 0)
    })
    .await?;
    eventually("the national node holds nothing of it", || async {
        Ok(peer(&national, "hg-node").await?.held_here == 0)
    })
    .await?;
    assert!(
        national
            .app
            .store()
            .doc_heads(&DocId::Unit(UnitId::parse("unit", HG)?))
            .await?
            .is_some_and(|h| h.contains(&made)),
        "released and applied"
    );

    // Another, discarded: not delivered, and never to be; the province
    // stops counting it once the national node decided.
    write_own_record(&hg, "name").await?;
    eventually("held by the peer again", || async {
        Ok(peer(&hg, "vn").await?.held_by_peer == 1)
    })
    .await?;
    let d = national
        .app
        .decide_quarantine_matching(Decide::Discard, &hg_node, "admin", "", false)
        .await?;
    assert_eq!(d.discarded, 1);
    eventually("nothing held by the peer", || async {
        let up = peer(&hg, "vn").await?;
        Ok(up.held_by_peer == 0 && up.changes_pending == 0)
    })
    .await?;
    hg.stop().await?;
    national.stop().await
}
