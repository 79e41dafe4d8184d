//! The administrator's operations as `App` methods, without gRPC: the
//! quarantine (list, release, discard), documents, conflicts and traces.
//! The gRPC layer only converts (`grpc/admin.rs`), so what these pin holds
//! for every caller of `App`. Also: refusals stay refusals on the way out
//! ([`NodeError::Refused`]), and nothing is written for a refused decision.

use anyhow::{Result, bail};
use hopluu_model::{Clock, FixedClock, ModelError};
use hopluu_node::NodeError;
use hopluu_node::app::admin::{Decide, QuarantineQuery};
use hopluu_node::app::docs::DocsQuery;
use hopluu_node::app::trace::TraceKind;
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::QuarantineState;

use crate::admin::{feed_from_child, forged, roster};
use crate::harness::*;

/// The field and kind of a refusal, or a failure of the test.
fn refusal<T: std::fmt::Debug>(r: Result<T, NodeError>) -> Result<ModelError> {
    match r {
        Err(NodeError::Refused(m)) => Ok(m),
        other => bail!("expected a refusal, got {other:?}"),
    }
}

fn field(m: &ModelError) -> String {
    match m {
        ModelError::Invalid { field, .. } | ModelError::Precondition { field, .. } => field.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn quarantine_is_listed_released_and_discarded_through_the_app() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    node.add(LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male))
        .await?;
    let doc = roster(LC_C);
    let (update, first, second) = forged(&node, &doc).await?;
    assert_eq!(feed_from_child(&node, update).await?, vec![first, second]);

    let held = app
        .quarantine_list(&QuarantineQuery {
            state: Some(QuarantineState::Held),
            ..Default::default()
        })
        .await?;
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].hash, first);
    // The entry's receipt time is the injected clock's.
    assert_eq!(
        held[0].received_at,
        FixedClock(today()).now_millis(),
        "received at the node's clock"
    );
    let counts = app.counts().await?;
    assert_eq!((counts.quarantine_held, counts.quarantine_released), (2, 0));

    // A note over the limit: refused naming the field, nothing decided.
    let long = "x".repeat(501);
    let m = refusal(
        app.decide_quarantine(Decide::Release, held[0].id, "admin", &long)
            .await,
    )?;
    assert_eq!(field(&m), "note");
    assert_eq!(app.counts().await?.quarantine_held, 2);

    // Releasing the first applies it; the one waiting on it is judged
    // again, and stays held for what it is (not authorised).
    let d = app
        .decide_quarantine(Decide::Release, held[0].id, "admin", "checked by phone")
        .await?;
    assert_eq!(d.changes, 1);
    assert_eq!(d.entry.state, QuarantineState::Released);
    assert_eq!(d.entry.decided_by.as_deref(), Some("admin"));
    assert_eq!(d.entry.decided_at, Some(FixedClock(today()).now_millis()));
    assert_eq!(app.store().doc_heads(&doc).await?, Some(vec![first]));
    let still = app
        .quarantine_list(&QuarantineQuery {
            state: Some(QuarantineState::Held),
            ..Default::default()
        })
        .await?;
    assert_eq!(still.len(), 1);
    assert_eq!(
        (still[0].hash, still[0].code.as_str()),
        (second, "not-authorised")
    );
    let d = app
        .decide_quarantine(Decide::Release, still[0].id, "admin", "")
        .await?;
    assert_eq!(d.changes, 1);
    assert_eq!(app.store().doc_heads(&doc).await?, Some(vec![second]));

    // A decided entry cannot be decided again: a precondition naming `id`.
    let m = refusal(
        app.decide_quarantine(Decide::Discard, held[0].id, "admin", "")
            .await,
    )?;
    assert!(matches!(m, ModelError::Precondition { .. }), "{m:?}");
    assert!(m.to_string().contains("not held"), "{m}");

    // An unknown entry: NOT_FOUND naming the field.
    let m = refusal(app.quarantine_entry(999_999).await)?;
    assert!(matches!(m, ModelError::NotFound { .. }), "{m:?}");
    assert!(m.to_string().starts_with("id: "), "{m}");
    node.stop().await
}

#[tokio::test]
async fn discarding_through_the_app_leaves_the_document_as_it_was() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    node.add(LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male))
        .await?;
    let doc = roster(LC_C);
    let before = app.store().doc_heads(&doc).await?;
    let (update, first, _) = forged(&node, &doc).await?;
    feed_from_child(&node, update).await?;
    let id = app.quarantine_list(&QuarantineQuery::default()).await?[0].id;
    let d = app
        .decide_quarantine(Decide::Discard, id, "admin", "forged")
        .await?;
    assert_eq!(d.entry.hash, first);
    assert_eq!(d.entry.state, QuarantineState::Discarded);
    assert_eq!(d.changes, 2, "the change waiting on it goes too");
    assert_eq!(app.store().doc_heads(&doc).await?, before);
    assert_eq!(app.counts().await?.quarantine_discarded, 2);
    node.stop().await
}

#[tokio::test]
async fn documents_are_listed_and_described_through_the_app() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    let (units, total) = app
        .list_docs(&DocsQuery {
            kind: "unit",
            ..Default::default()
        })
        .await?;
    assert!(total >= 5 && units.len() as u64 == total, "{total}");
    assert!(units.iter().all(|r| r.id.kind().as_str() == "unit"));

    let m = refusal(
        app.list_docs(&DocsQuery {
            kind: "spreadsheet",
            ..Default::default()
        })
        .await,
    )?;
    assert_eq!(field(&m), "kind");
    let m = refusal(
        app.list_docs(&DocsQuery {
            subtree: true,
            ..Default::default()
        })
        .await,
    )?;
    assert_eq!(field(&m), "subtree");

    let unit_doc = format!("unit/{HG}");
    let d = app.doc_detail(&unit_doc, 0).await?;
    assert_eq!(d.row.id.to_string(), unit_doc);
    assert!(!d.history.is_empty() && d.changes >= d.history.len() as u64);
    assert!(!d.heads.is_empty());
    let one = app.doc_detail(&unit_doc, 1).await?;
    assert_eq!(one.history.len(), 1, "the history limit holds");
    let m = refusal(app.doc_detail("unit/nowhere", 0).await)?;
    assert!(matches!(m, ModelError::NotFound { .. }), "{m:?}");
    assert!(m.to_string().starts_with("doc_id: "), "{m}");
    node.stop().await
}

#[tokio::test]
async fn traces_and_conflicts_through_the_app() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    let t = app.trace(Some(TraceKind::Unit), HG).await?;
    assert_eq!(t.doc_id, format!("unit/{HG}"));
    assert_eq!(t.hops[0].unit_id.as_str(), app.unit.as_str());
    assert!(t.hops[0].reached);
    assert_eq!(
        t.made_by.as_ref().map(|(n, _)| n.as_str()),
        Some(app.node_id.as_str())
    );

    assert_eq!(field(&refusal(app.trace(None, HG).await)?), "kind");
    assert_eq!(
        field(&refusal(app.trace(Some(TraceKind::Unit), " ").await)?),
        "id"
    );
    let m = refusal(app.trace(Some(TraceKind::Member), "LC-9999").await)?;
    assert!(matches!(m, ModelError::NotFound { .. }), "{m:?}");

    assert!(app.conflicts("", 0, 0).await?.is_empty());
    let m = refusal(app.conflict(42).await)?;
    assert!(m.to_string().contains("id: conflict 42 not found"), "{m}");
    let m = refusal(app.resolve_conflict_as(42, "", None, "admin", "").await)?;
    assert_eq!(field(&m), "keep_op_id");
    let m = refusal(
        app.resolve_conflict_as(42, "1@ab", Some("x".into()), "admin", "")
            .await,
    )?;
    assert_eq!(field(&m), "value");
    let m = refusal(app.conflicts("", -1, 0).await)?;
    assert_eq!(field(&m), "after_id");
    node.stop().await
}
