//! Held changes selected by filter, as `App` methods: listed by the node
//! that made them, their reason, their document; released in dependency
//! order or discarded with what waits on them, all in one transaction,
//! with counts of what was done and what was left held and why; a dry
//! run that counts the same and writes nothing; and every bad filter (or
//! none at all) refused naming its field, before anything is written.
//!
//! Two held pairs: node `hg-node` over Lai Châu's roster (not authorised,
//! then a change waiting on it), and node `lc-node` over hg-truong-a's
//! roster, relayed by the child hau-giang (made outside the sender's
//! subtree, then a change waiting on it).

use anyhow::{Result, bail};
use automerge::ChangeHash;
use hopluu_model::ModelError;
use hopluu_node::NodeError;
use hopluu_node::app::App;
use hopluu_node::app::admin::{Decide, QuarantineQuery};
use hopluu_node::app::quarantine::{BulkDecision, Decided, QuarantineSelect};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::QuarantineState;

use crate::admin::{feed_from_child, forged_by, roster};
use crate::harness::*;

/// The field a refusal names, or a failure of the test.
fn refused_field<T: std::fmt::Debug>(r: Result<T, NodeError>) -> Result<String> {
    match r {
        Err(NodeError::Refused(ModelError::Invalid { field, .. })) => Ok(field),
        Err(NodeError::Refused(ModelError::NotFound { what, .. })) => Ok(what.to_owned()),
        other => bail!("expected a refusal naming a field, got {other:?}"),
    }
}

/// The node with both held pairs: `[a1, a2, b1, b2]`.
pub(crate) async fn two_pairs(node: &Node) -> Result<[ChangeHash; 4]> {
    node.add(LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male))
        .await?;
    node.add(HG_A, person("Trần Thị Mai", "HG-0001", pb::Gender::Female))
        .await?;
    let (a, a1, a2) = forged_by(node, &roster(LC_C), "hg-node", HG).await?;
    assert_eq!(feed_from_child(node, a).await?, vec![a1, a2]);
    let (b, b1, b2) = forged_by(node, &roster(HG_A), "lc-node", LC).await?;
    assert_eq!(feed_from_child(node, b).await?, vec![b1, b2]);
    Ok([a1, a2, b1, b2])
}

/// The hashes of the held entries `sel` selects, oldest first.
async fn held(app: &App, sel: QuarantineSelect<'_>) -> Result<Vec<ChangeHash>> {
    Ok(app
        .quarantine_list(&QuarantineQuery {
            state: Some(QuarantineState::Held),
            node: sel.node,
            reason: sel.reason,
            doc_id: sel.doc_id,
            decision: sel.decision,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|e| e.hash)
        .collect())
}

fn by_node(node: &str) -> QuarantineSelect<'_> {
    QuarantineSelect {
        node,
        ..Default::default()
    }
}

#[tokio::test]
async fn held_changes_are_selected_released_and_discarded_by_filter() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    let [a1, a2, b1, b2] = two_pairs(&node).await?;

    // Listing by each filter, and by several at once (all must match).
    assert_eq!(held(&app, by_node("lc-node")).await?, vec![b1, b2]);
    let reason = |reason| QuarantineSelect {
        reason,
        ..Default::default()
    };
    assert_eq!(held(&app, reason("outside-sender")).await?, vec![b1]);
    assert_eq!(held(&app, reason("not-authorised")).await?, vec![a1]);
    let hg_waits = QuarantineSelect {
        node: "hg-node",
        reason: "waits",
        ..Default::default()
    };
    assert_eq!(held(&app, hg_waits).await?, vec![a2]);
    let in_hg_a = roster(HG_A).to_string();
    let doc = QuarantineSelect {
        doc_id: &in_hg_a,
        ..Default::default()
    };
    assert_eq!(held(&app, doc).await?, vec![b1, b2]);

    // Bad input: refused naming the field, nothing written.
    let feed = node.feed().await?;
    let release = |sel: QuarantineSelect<'static>, note: &'static str| {
        let app = app.clone();
        async move {
            app.decide_quarantine_matching(Decide::Release, &sel, "admin", note, false)
                .await
        }
    };
    assert_eq!(
        refused_field(release(QuarantineSelect::default(), "").await)?,
        "filter",
        "no filter: no release of everything"
    );
    for (sel, field) in [
        (reason("nope"), "reason"),
        (
            QuarantineSelect {
                doc_id: "not a doc",
                ..Default::default()
            },
            "doc_id",
        ),
        (by_node("Not A Node"), "node"),
        (
            QuarantineSelect {
                decision: "99/QĐ-none",
                ..Default::default()
            },
            "decision",
        ),
    ] {
        assert_eq!(refused_field(release(sel, "").await)?, field, "{sel:?}");
        assert_eq!(
            refused_field(
                app.quarantine_list(&QuarantineQuery {
                    node: sel.node,
                    reason: sel.reason,
                    doc_id: sel.doc_id,
                    decision: sel.decision,
                    ..Default::default()
                })
                .await
            )?,
            field,
            "listing {sel:?}"
        );
    }
    let long: &'static str = Box::leak("x".repeat(501).into_boxed_str());
    assert_eq!(
        refused_field(release(by_node("hg-node"), long).await)?,
        "note"
    );
    // An id and filters at once, a negative id.
    let both = app
        .decide_held(Decide::Release, 1, &by_node("hg-node"), "admin", "", false)
        .await;
    assert_eq!(refused_field(both)?, "id");
    let negative = app
        .decide_held(
            Decide::Discard,
            -1,
            &QuarantineSelect::default(),
            "admin",
            "",
            false,
        )
        .await;
    assert_eq!(refused_field(negative)?, "id");
    assert_eq!(node.feed().await?, feed);
    assert_eq!(app.counts().await?.quarantine_held, 4);

    // A dry run counts exactly what the release would do, and writes
    // nothing.
    let heads = app.store().doc_heads(&roster(LC_C)).await?;
    let dry = app
        .decide_quarantine_matching(Decide::Release, &by_node("hg-node"), "admin", "", true)
        .await?;
    assert_eq!(
        dry,
        BulkDecision {
            dry_run: true,
            matched: 2,
            released: 2,
            ..BulkDecision::default()
        }
    );
    assert_eq!(node.feed().await?, feed);
    assert_eq!(app.store().doc_heads(&roster(LC_C)).await?, heads);
    assert_eq!(app.counts().await?.quarantine_held, 4);

    // A waiting change whose past is not selected: left held, and why.
    let b_waits = QuarantineSelect {
        node: "lc-node",
        reason: "waits",
        ..Default::default()
    };
    let d = app
        .decide_quarantine_matching(Decide::Release, &b_waits, "admin", "", false)
        .await?;
    assert_eq!((d.matched, d.released, d.left_held()), (1, 0, 1), "{d:?}");
    let left = &d.left["missing-past"];
    assert_eq!(left.count, 1);
    assert!(left.example.contains(&b1.to_string()), "{left:?}");
    assert_eq!(node.feed().await?, feed);

    // The pair, in dependency order, in one commit: the one waiting
    // follows the one it waits on.
    let d = app
        .decide_quarantine_matching(
            Decide::Release,
            &by_node("hg-node"),
            "admin",
            "checked by phone",
            false,
        )
        .await?;
    assert_eq!((d.matched, d.released, d.left_held()), (2, 2, 0), "{d:?}");
    assert_eq!(app.store().doc_heads(&roster(LC_C)).await?, Some(vec![a2]));
    assert_eq!(node.feed().await?, feed + 1);
    let released = app
        .quarantine_list(&QuarantineQuery {
            state: Some(QuarantineState::Released),
            ..Default::default()
        })
        .await?;
    assert!(
        released
            .iter()
            .all(|e| e.decided_by.as_deref() == Some("admin")),
        "{released:?}"
    );

    // Discarded by reason: the change waiting on it goes too, counted
    // apart (it was not selected).
    let heads = app.store().doc_heads(&roster(HG_A)).await?;
    let d = app
        .decide_quarantine_matching(
            Decide::Discard,
            &reason("outside-sender"),
            "admin",
            "not theirs",
            false,
        )
        .await?;
    assert_eq!(
        (d.matched, d.discarded, d.waiting_discarded),
        (1, 1, 1),
        "{d:?}"
    );
    assert_eq!(app.store().doc_heads(&roster(HG_A)).await?, heads);
    let counts = app.counts().await?;
    assert_eq!(
        (
            counts.quarantine_held,
            counts.quarantine_released,
            counts.quarantine_discarded
        ),
        (0, 2, 2)
    );
    let none = app
        .decide_quarantine_matching(Decide::Release, &by_node("lc-node"), "admin", "", false)
        .await?;
    assert_eq!((none.matched, none.released), (0, 0));
    node.stop().await
}

#[tokio::test]
async fn a_single_entry_is_decided_by_id_and_its_dry_run_writes_nothing() -> Result<()> {
    let node = Node::with_tree().await?;
    let app = node.app.clone();
    let [a1, _, _, _] = two_pairs(&node).await?;
    let id = app
        .quarantine_list(&QuarantineQuery::default())
        .await?
        .into_iter()
        .find(|e| e.hash == a1)
        .map(|e| e.id)
        .expect("a1 held");
    let feed = node.feed().await?;
    let none = QuarantineSelect::default();
    let Decided::Entry(dry) = app
        .decide_held(Decide::Release, id, &none, "admin", "", true)
        .await?
    else {
        bail!("an entry by id")
    };
    assert_eq!(dry.changes, 1);
    assert_eq!(dry.entry.state, QuarantineState::Held, "nothing written");
    assert_eq!(node.feed().await?, feed);
    let Decided::Entry(done) = app
        .decide_held(Decide::Release, id, &none, "admin", "", false)
        .await?
    else {
        bail!("an entry by id")
    };
    assert_eq!(done.entry.state, QuarantineState::Released);
    assert_eq!(node.feed().await?, feed + 1);
    node.stop().await
}
