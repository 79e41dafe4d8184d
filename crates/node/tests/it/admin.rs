//! The AdminService over mutual TLS: the node's status (with its
//! certificate's expiry), and the quarantine: entries made by feeding a
//! sync session on the node's own store a change a district forged over
//! another province's roster, then listed, shown, released and discarded.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::{Author, DocId, UnitId, member};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use hopluu_sync::frame::{Batch, DocUpdate, Hello, Payload};
use hopluu_sync::{Frame, Limits, PROTOCOL_VERSION, Replica, Role, Session};
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::*;

/// What a forged change writes: it must never show in the admin service.
const SECRET: &str = "001090012345 Nguyễn Văn Bí Mật";

fn admin(node: &Node) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(node.channel.clone())
}

fn uid(s: &str) -> UnitId {
    UnitId::parse("unit", s).expect("a unit id")
}

pub(crate) fn roster(unit: &str) -> DocId {
    member::roster_doc(&uid(unit), 0)
}

/// Two changes to `doc` by node `hg-node` (hosting hau-giang), the second
/// depending on the first, as a child would send them.
pub(crate) async fn forged(
    node: &Node,
    doc: &DocId,
) -> Result<(DocUpdate, ChangeHash, ChangeHash)> {
    forged_by(node, doc, "hg-node", HG).await
}

/// [`forged`], made by node `maker` hosting `unit`.
pub(crate) async fn forged_by(
    node: &Node,
    doc: &DocId,
    maker: &str,
    unit: &str,
) -> Result<(DocUpdate, ChangeHash, ChangeHash)> {
    let bytes = node
        .app
        .store()
        .doc_bytes(doc)
        .await?
        .context("the document is stored")?;
    let mut d = Automerge::load(&bytes)?;
    let before = d.get_heads();
    d.set_actor(Author::actor_for(maker, &uid(unit), b"forged"));
    // Fields the document's kind holds, so that only authority is at
    // stake: in a roster, its first member's (a roster's shape is
    // checked); elsewhere, the root's.
    let target = if doc.kind() == hopluu_model::DocKind::Roster {
        let members = d
            .get(automerge::ROOT, "members")?
            .context("a roster's members")?
            .1;
        let first = d.keys(&members).next().context("a roster with a member")?;
        d.get(&members, first.as_str())?.context("the member")?.1
    } else {
        automerge::ROOT
    };
    let keys = if target == automerge::ROOT {
        ["note", "note2"]
    } else {
        ["position", "status_reason"]
    };
    let mut hashes = Vec::new();
    for (key, message) in keys.into_iter().zip(["forged correction", "and another"]) {
        let mut tx = d.transaction();
        tx.put(&target, key, SECRET)?;
        tx.commit_with(
            CommitOptions::default()
                .with_message(message.to_owned())
                .with_time(1_795_000_000_000),
        );
        hashes.push(d.get_heads()[0]);
    }
    Ok((
        DocUpdate {
            doc: doc.to_string(),
            heads: d.get_heads(),
            payload: Payload::Changes(d.save_after(&before)),
        },
        hashes[0],
        hashes[1],
    ))
}

/// Feeds `update` to a session at `node` accepting the child hau-giang
/// (node `hg-node`); returns the hashes the acknowledgement quarantined.
pub(crate) async fn feed_from_child(node: &Node, update: DocUpdate) -> Result<Vec<ChangeHash>> {
    let mut s = Session::new(
        Replica {
            store: node.app.store().clone(),
            node_id: node.app.node_id.clone(),
            unit: node.app.unit.clone(),
            private_depth: 1,
            limits: Limits::default(),
        },
        Role::Acceptor,
    );
    s.handle(Frame::Hello(Hello {
        node_id: "hg-node".into(),
        unit: HG.into(),
        protocol: PROTOCOL_VERSION,
        schema: SCHEMA_VERSION,
        applied_from_you: 0,
        receipts_from_you: 0,
    }))
    .await?;
    let out = s
        .handle(Frame::Batch(Batch {
            id: 0,
            from_seq: 0,
            upto_seq: 0,
            docs: vec![update],
        }))
        .await?;
    match out.into_iter().find(|f| matches!(f, Frame::Ack(_))) {
        Some(Frame::Ack(a)) => Ok(a.docs.into_iter().flat_map(|d| d.quarantined).collect()),
        other => bail!("expected an acknowledgement, got {other:?}"),
    }
}

async fn list(
    node: &Node,
    state: pb::QuarantineState,
    doc: &str,
    after_id: i64,
    limit: u32,
) -> Result<Vec<pb::QuarantineEntry>> {
    Ok(admin(node)
        .list_quarantine(pb::ListQuarantineRequest {
            state: state as i32,
            doc_id: doc.to_owned(),
            after_id,
            limit,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries)
}

async fn counts(node: &Node) -> Result<(u64, u64, u64)> {
    let q = admin(node)
        .status(pb::StatusRequest {})
        .await?
        .into_inner()
        .quarantine
        .context("quarantine counts")?;
    Ok((q.held, q.released, q.discarded))
}

fn decide(id: i64, note: &str) -> pb::DecideQuarantineRequest {
    pb::DecideQuarantineRequest {
        id,
        note: note.to_owned(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_node_its_certificate_and_its_quarantine() -> Result<()> {
    let node = Node::start().await?;
    let s = admin(&node)
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    assert_eq!((s.node_id.as_str(), s.unit_id.as_str()), ("vn", "vn"));
    assert_eq!(s.unit_name, "Tổng Liên đoàn Lao động Việt Nam");
    assert_eq!(s.database, "sqlite", "the backend, never the URL");
    assert!(!s.version.is_empty());
    // Its unit's record and its own node record (node/vn).
    assert_eq!((s.feed_position, s.documents), (2, 2));
    let tls = s.tls.context("a TLS node reports its certificate")?;
    assert_eq!(tls.identity, "urn:hopluu:node:vn:vn");
    assert!(!tls.subject.is_empty() && !tls.issuer.is_empty(), "{tls:?}");
    // The harness issues node certificates for one day.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    assert!(
        (now..=now + 86_400 + 60).contains(&tls.not_after_unix),
        "{tls:?}"
    );
    assert!((0..=1).contains(&tls.days_left), "{tls:?}");
    assert!(tls.not_after.ends_with(" UTC"), "{tls:?}");
    assert!(
        tls.trusted_cas.iter().any(|c| c.contains("hopluu test CA")),
        "{tls:?}"
    );
    assert_eq!(
        s.quarantine,
        Some(pb::QuarantineCounts {
            held: 0,
            released: 0,
            discarded: 0,
            archived: 0
        })
    );
    // The node info every certificate may read agrees.
    let info = node.info().await?;
    assert_eq!(info.feed_position, s.feed_position);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_is_administered_by_anyone_and_reports_no_certificate() -> Result<()> {
    let node = Node::start_insecure(tempfile::tempdir()?, |_| {}).await?;
    let s = admin(&node)
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    assert_eq!(s.node_id, "vn");
    assert_eq!(s.tls, None);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_changes_are_listed_shown_released_and_discarded() -> Result<()> {
    let node = Node::with_tree().await?;
    node.add(LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male))
        .await?;
    let doc = roster(LC_C);
    let before = node.app.store().doc_heads(&doc).await?;
    let (update, first, second) = forged(&node, &doc).await?;
    let feed = node.feed().await?;
    assert_eq!(feed_from_child(&node, update).await?, vec![first, second]);
    assert_eq!(node.app.store().doc_heads(&doc).await?, before);
    assert_eq!(
        node.feed().await?,
        feed,
        "nothing quarantined enters the feed"
    );
    assert_eq!(counts(&node).await?, (2, 0, 0));

    // List: held by default in the CLI, every state here; filters and paging.
    let all = list(&node, pb::QuarantineState::Unspecified, "", 0, 0).await?;
    assert_eq!(all.len(), 2);
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(a.hash, first.to_string());
    assert_eq!(a.doc_id, doc.to_string());
    assert_eq!(a.code, "not-authorised");
    assert_eq!(
        (a.origin_node.as_str(), a.origin_unit.as_str()),
        ("hg-node", HG)
    );
    assert_eq!(
        (a.peer_node.as_str(), a.peer_unit.as_str()),
        ("hg-node", HG)
    );
    assert_eq!(a.state, pb::QuarantineState::Held as i32);
    assert!(a.size_bytes > 0 && a.received_at_millis > 0, "{a:?}");
    assert_eq!(
        (b.code.as_str(), b.waits_for.as_str()),
        ("waits", a.hash.as_str())
    );
    let doc_s = doc.to_string();
    assert_eq!(
        list(&node, pb::QuarantineState::Held, &doc_s, 0, 0)
            .await?
            .len(),
        2
    );
    assert!(
        list(
            &node,
            pb::QuarantineState::Held,
            &roster(HG_A).to_string(),
            0,
            0
        )
        .await?
        .is_empty()
    );
    assert!(
        list(&node, pb::QuarantineState::Released, "", 0, 0)
            .await?
            .is_empty()
    );
    let page = list(&node, pb::QuarantineState::Unspecified, "", 0, 1).await?;
    assert_eq!(page.len(), 1);
    let next = list(&node, pb::QuarantineState::Unspecified, "", page[0].id, 1).await?;
    assert_eq!(next[0].id, b.id);
    let bad = admin(&node)
        .list_quarantine(pb::ListQuarantineRequest {
            doc_id: "not a doc".into(),
            ..Default::default()
        })
        .await;
    expect_invalid(bad, "doc_id");

    // Show: what the change says of itself, never what it writes.
    let shown = admin(&node)
        .get_quarantine(pb::GetQuarantineRequest { id: a.id })
        .await?
        .into_inner();
    assert_eq!(shown.entry.as_ref(), Some(a));
    let ch = shown
        .change
        .clone()
        .context("a held entry keeps its change")?;
    assert_eq!(ch.decode_error, "");
    assert_eq!(ch.hash, a.hash);
    assert_eq!(
        (ch.actor_node.as_str(), ch.actor_unit.as_str()),
        ("hg-node", HG)
    );
    assert_eq!(ch.seq, 1);
    assert_eq!(ch.op_count, 1);
    assert_eq!(ch.message, "forged correction");
    assert_eq!(ch.time_millis, 1_795_000_000_000);
    assert_eq!(ch.size_bytes, a.size_bytes);
    let deps: Vec<String> = before
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(ch.deps, deps);
    assert!(
        !format!("{shown:?}").contains("Bí Mật"),
        "a value leaked: {shown:?}"
    );
    let missing = admin(&node)
        .get_quarantine(pb::GetQuarantineRequest { id: 9999 })
        .await;
    let s = expect_code(missing, Code::NotFound);
    assert!(
        s.message().starts_with("id: ") && s.message().contains("9999"),
        "{s:?}"
    );

    // The dependent first: refused until what it depends on is here.
    let early = admin(&node)
        .release_quarantine(decide(b.id, "too early"))
        .await;
    let s = expect_code(early, Code::FailedPrecondition);
    assert!(s.message().contains("release that first"), "{s:?}");
    assert_eq!(node.feed().await?, feed);

    // Released on the administrator's word: applied, and into the feed. The
    // dependent, made by the same district over the same roster, fails the
    // check in its own right and stays held.
    let released = admin(&node)
        .release_quarantine(decide(a.id, "checked with Lai Châu"))
        .await?
        .into_inner();
    assert_eq!(released.changes, 1);
    let e = released.entry.context("the entry")?;
    assert_eq!(e.state, pb::QuarantineState::Released as i32);
    assert_eq!(e.decided_by, "admin test-admin");
    assert!(e.decided_at_millis > 0);
    assert_eq!(node.app.store().doc_heads(&doc).await?, Some(vec![first]));
    assert_eq!(node.feed().await?, feed + 1);
    let again = admin(&node).release_quarantine(decide(a.id, "")).await;
    let s = expect_code(again, Code::FailedPrecondition);
    assert!(
        s.message().starts_with("id: ") && s.message().contains("released"),
        "{s:?}"
    );
    let held = list(&node, pb::QuarantineState::Held, "", 0, 0).await?;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].code, "not-authorised");

    // Discarded: its bytes dropped, nothing written.
    let discarded = admin(&node)
        .discard_quarantine(decide(b.id, "not theirs to write"))
        .await?
        .into_inner();
    assert_eq!(discarded.changes, 1);
    assert_eq!(
        discarded.entry.context("the entry")?.state,
        pb::QuarantineState::Discarded as i32
    );
    assert_eq!(node.feed().await?, feed + 1);
    let gone = admin(&node)
        .get_quarantine(pb::GetQuarantineRequest { id: b.id })
        .await?
        .into_inner();
    assert_eq!(gone.change, None);
    let twice = admin(&node).discard_quarantine(decide(b.id, "")).await;
    let s = expect_code(twice, Code::FailedPrecondition);
    assert!(s.message().contains("discarded"), "{s:?}");
    let unknown = admin(&node).discard_quarantine(decide(4242, "")).await;
    expect_code(unknown, Code::NotFound);
    assert_eq!(counts(&node).await?, (0, 1, 1));

    // None of it for staff, even of the unit whose roster it is.
    let clerk = AdminServiceClient::new(node.channel_as(&Caller::staff("clerk", LC_C)).await?);
    let mut clerk = clerk;
    let denied = clerk.discard_quarantine(decide(a.id, "")).await;
    let s = expect_code(denied, Code::PermissionDenied);
    assert!(s.message().contains("DiscardQuarantine"), "{s:?}");
    node.stop().await
}

/// A decision request by filter (`id` 0).
fn matching(
    node: &str,
    reason: &str,
    decision: &str,
    dry_run: bool,
) -> pb::DecideQuarantineRequest {
    pb::DecideQuarantineRequest {
        node: node.to_owned(),
        reason: reason.to_owned(),
        decision: decision.to_owned(),
        dry_run,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_changes_are_decided_by_filter_and_by_the_decision_that_sealed_them() -> Result<()> {
    use crate::reorg::{apply, moving, plan};
    let node = Node::with_tree().await?;
    let [a1, a2, _, _] = crate::quarantine_bulk::two_pairs(&node).await?;
    // A decision moves Lai Châu's grassroots union under Hậu Giang: it
    // seals the union's roster, where a1 and a2 are held.
    apply(
        &node,
        plan("05/QĐ-TLĐ", VN, vec![moving(&[LC_C], HG)]),
        false,
    )
    .await?;
    let sealed = admin(&node)
        .list_quarantine(pb::ListQuarantineRequest {
            decision: "05/QĐ-TLĐ".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries;
    let hashes: Vec<&str> = sealed.iter().map(|e| e.hash.as_str()).collect();
    assert_eq!(hashes, [a1.to_string(), a2.to_string()]);

    // Bad requests: refused naming the field, nothing written.
    let feed = node.feed().await?;
    let release = |r: pb::DecideQuarantineRequest| {
        let mut c = admin(&node);
        async move { c.release_quarantine(r).await }
    };
    let m = expect_invalid(
        release(pb::DecideQuarantineRequest::default()).await,
        "filter",
    );
    assert!(m.contains("every held change"), "{m}");
    expect_invalid(release(matching("", "nope", "", false)).await, "reason");
    expect_invalid(
        release(pb::DecideQuarantineRequest {
            doc_id: "no such/doc id".into(),
            ..Default::default()
        })
        .await,
        "doc_id",
    );
    expect_invalid(
        release(pb::DecideQuarantineRequest {
            id: 1,
            node: "hg-node".into(),
            ..Default::default()
        })
        .await,
        "id",
    );
    let s = expect_code(
        release(matching("", "", "77/QĐ-none", false)).await,
        Code::NotFound,
    );
    assert!(s.message().contains("77/QĐ-none"), "{s:?}");
    assert_eq!(node.feed().await?, feed);
    assert_eq!(counts(&node).await?, (4, 0, 0));

    // A dry run: the counts, nothing written.
    let dry = release(matching("", "", "05/QĐ-TLĐ", true))
        .await?
        .into_inner();
    assert_eq!(
        (dry.matched, dry.released, dry.dry_run, dry.entry.is_none()),
        (2, 2, true, true),
        "{dry:?}"
    );
    assert_eq!(node.feed().await?, feed);
    assert_eq!(counts(&node).await?, (4, 0, 0));
    let done = release(matching("", "", "05/QĐ-TLĐ", false))
        .await?
        .into_inner();
    assert_eq!(
        (done.matched, done.released, done.changes),
        (2, 2, 2),
        "{done:?}"
    );
    assert!(done.left.is_empty() && !done.dry_run);
    assert_eq!(node.feed().await?, feed + 1);

    // The waiting change alone: left held, and why.
    let left = release(matching("lc-node", "waits", "", false))
        .await?
        .into_inner();
    assert_eq!((left.matched, left.released), (1, 0));
    assert_eq!(left.left.len(), 1);
    assert_eq!(
        (left.left[0].why.as_str(), left.left[0].count),
        ("missing-past", 1)
    );
    assert!(left.left[0].description.contains("not here"), "{left:?}");

    // Discarded by reason, with the change waiting on it.
    let d = admin(&node)
        .discard_quarantine(matching("", "outside-sender", "", false))
        .await?
        .into_inner();
    assert_eq!(
        (d.matched, d.discarded, d.waiting_discarded, d.changes),
        (1, 1, 1, 2),
        "{d:?}"
    );
    assert_eq!(counts(&node).await?, (0, 2, 2));

    // Staff may not, whatever the filter.
    let mut clerk = AdminServiceClient::new(node.channel_as(&Caller::staff("clerk", HG_A)).await?);
    let denied = clerk
        .release_quarantine(matching("lc-node", "", "", true))
        .await;
    expect_code(denied, Code::PermissionDenied);
    node.stop().await
}

/// Change times follow automerge's convention, seconds: a change made
/// elsewhere (automerge's JavaScript library writes `Date.now() / 1000`)
/// shows its real time in `docs show`; the node's own changes are written
/// in seconds too; and a change hopluu wrote in milliseconds before still
/// shows its time.
#[tokio::test]
async fn change_times_are_seconds_and_old_milliseconds_still_read() -> Result<()> {
    let node = Node::with_tree().await?;
    let doc = DocId::Unit(uid(HG));
    let history = |node: &Node| {
        let mut client = admin(node);
        let doc = doc.to_string();
        async move {
            Ok::<_, anyhow::Error>(
                client
                    .get_doc(pb::GetDocRequest {
                        doc_id: doc,
                        history_limit: 0,
                    })
                    .await?
                    .into_inner()
                    .history,
            )
        }
    };
    // The node's own writes: seconds in the change, milliseconds shown.
    let own = node.app.author().time_millis;
    let stored = node
        .app
        .store()
        .read_doc(&doc, |d| {
            d.get_heads()
                .iter()
                .filter_map(|h| d.get_change_by_hash(h).map(|c| c.timestamp()))
                .max()
        })
        .await?
        .flatten()
        .context("the unit's record")?;
    assert_eq!(stored, own.div_euclid(1000), "written in seconds");
    assert_eq!(history(&node).await?[0].time_millis, stored * 1000);

    // A change made by another library, timed as automerge means it.
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut tx = node.app.store().begin().await?;
    let d = tx.doc(&doc).await?;
    d.set_actor(Author::actor_for("vn", &uid(VN), b"js"));
    d.transact_with(
        |_| {
            CommitOptions::default()
                .with_time(secs)
                .with_message("from JavaScript")
        },
        |t| t.put(automerge::ROOT, "note", "x").map(|_| ()),
    )
    .map_err(|f| anyhow::anyhow!("{:?}", f.error))?;
    // And one timed in milliseconds, as hopluu wrote them before.
    let old = 1_756_684_800_123;
    d.transact_with(
        |_| {
            CommitOptions::default()
                .with_time(old)
                .with_message("before")
        },
        |t| t.put(automerge::ROOT, "note", "y").map(|_| ()),
    )
    .map_err(|f| anyhow::anyhow!("{:?}", f.error))?;
    tx.commit().await?;
    let h = history(&node).await?;
    assert_eq!((h[0].message.as_str(), h[0].time_millis), ("before", old));
    assert_eq!(
        (h[1].message.as_str(), h[1].time_millis),
        ("from JavaScript", secs * 1000)
    );
    node.stop().await
}
