//! One node of the test tree (vn → p1 → {c1 → g1, c2 → g2}, vn → p2;
//! node ids `node-<unit>`) and hand-made hellos, changes and batches to
//! feed its sessions: the gate's tests ([`crate::gate`]) and the report
//! and driver tests build on them.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::{Author, DocId, member};
use hopluu_store::Store;
use hopluu_store::quarantine::{QuarantineFilter, QuarantineState};
use hopluu_sync::frame::{Ack, Batch, DocUpdate, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session};

use crate::fixtures::{self, cid, uid};

pub(crate) const T0: i64 = 1_756_684_800_000;

pub(crate) fn actor(unit: &str) -> ActorId {
    Author::actor_for(&format!("node-{unit}"), &uid(unit), b"gate")
}

pub(crate) fn author(unit: &str) -> Author {
    fixtures::author(&format!("node-{unit}"), unit, T0)
}

/// A store for the node hosting `unit`, knowing the whole tree, a campaign
/// of p1's and rosters of g1 and g2 (made by the nodes that own them).
pub(crate) async fn node(dir: &tempfile::TempDir, unit: &str) -> Store {
    let store = fixtures::open(
        &fixtures::store_url(dir.path(), &format!("node-{unit}")),
        fixtures::options(256),
    )
    .await;
    let vn = author("vn");
    fixtures::create_unit(&store, &vn, "vn", "vn", "central", None)
        .await
        .unwrap();
    for (u, kind, parent) in [
        ("p1", "provincial", "vn"),
        ("p2", "provincial", "vn"),
        ("c1", "commune", "p1"),
        ("c2", "commune", "p1"),
        ("g1", "grassroots", "c1"),
        ("g2", "grassroots", "c2"),
    ] {
        let by = if parent == "vn" {
            vn.clone()
        } else {
            author(parent)
        };
        fixtures::create_unit(&store, &by, u, u, kind, Some(parent))
            .await
            .unwrap();
    }
    fixtures::launch_campaign(&store, &author("p1"), "camp-p1", &uid("p1"), &uid("p1"))
        .await
        .unwrap();
    for g in ["g1", "g2"] {
        fixtures::add_member(
            &store,
            &author(g),
            &uid(g),
            &fixtures::mid(&format!("m-{g}")),
            "Nguyễn Văn An",
            &format!("CD-{g}-0001"),
            false,
        )
        .await
        .unwrap();
    }
    store
}

pub(crate) fn replica(store: &Store, unit: &str, limits: Limits) -> Replica {
    Replica {
        store: store.clone(),
        node_id: format!("node-{unit}"),
        unit: uid(unit),
        private_depth: 1,
        limits,
    }
}

pub(crate) fn hello(unit: &str) -> Frame {
    Frame::Hello(Hello {
        node_id: format!("node-{unit}"),
        unit: unit.to_owned(),
        protocol: PROTOCOL_VERSION,
        schema: SCHEMA_VERSION,
        applied_from_you: 0,
        receipts_from_you: 0,
    })
}

/// A session at `store`'s node (hosting `me`) that accepted a child
/// hosting `child`.
pub(crate) async fn accepting(store: &Store, me: &str, child: &str, limits: Limits) -> Session {
    let mut s = Session::new(replica(store, me, limits), Role::Acceptor);
    s.handle(hello(child)).await.expect("hello accepted");
    s
}

/// One change to `doc` as stored in `store`, made under `by`: the field
/// `note` of the root set to `value`. Returns the update and the change.
pub(crate) async fn edit(
    store: &Store,
    doc: &DocId,
    by: ActorId,
    value: &str,
) -> (DocUpdate, ChangeHash) {
    let (update, hashes) = edits(store, doc, by, &[("note", value)]).await;
    (update, hashes[0])
}

/// A session at `store`'s node (hosting `me`) that dialled its parent
/// hosting `parent`, hellos exchanged.
pub(crate) async fn dialing(store: &Store, me: &str, parent: &str) -> Session {
    let mut s = Session::new(
        replica(store, me, Limits::default()),
        Role::Dialer {
            expect: format!("node-{parent}"),
        },
    );
    s.start().await.expect("hello made");
    s.handle(hello(parent)).await.expect("hello accepted");
    s
}

/// Changes to `doc` as stored in `store`, made under `by`, one per
/// `(field, value)` put on the root, each depending on the one before
/// (in a roster, whose shape the gate checks, on the first member's
/// `position` instead: a field a roster holds). Returns the update
/// carrying them all and their hashes in order.
pub(crate) async fn edits(
    store: &Store,
    doc: &DocId,
    by: ActorId,
    puts: &[(&str, &str)],
) -> (DocUpdate, Vec<ChangeHash>) {
    let bytes = store.doc_bytes(doc).await.unwrap().expect("stored");
    let mut d = Automerge::load(&bytes).unwrap();
    let before = d.get_heads();
    d.set_actor(by);
    let mut hashes = Vec::new();
    // Where a put goes: the root, or a roster's first member.
    let target = match doc.kind() {
        hopluu_model::DocKind::Roster | hopluu_model::DocKind::RosterPrivate => {
            let members = match d.get(automerge::ROOT, "members").unwrap() {
                Some((_, id)) => id,
                None => panic!("{doc} holds no members map"),
            };
            let first = d.keys(&members).next().expect("a roster with a member");
            let (_, member) = d
                .get(&members, first.as_str())
                .unwrap()
                .expect("the member");
            Some(member)
        }
        _ => None,
    };
    for (field, value) in puts {
        let mut tx = d.transaction();
        match &target {
            Some(member) if doc.kind() == hopluu_model::DocKind::RosterPrivate => {
                tx.put(member, "ethnicity", *value).unwrap()
            }
            Some(member) => tx.put(member, "position", *value).unwrap(),
            None => tx.put(automerge::ROOT, *field, *value).unwrap(),
        }
        tx.commit();
        hashes.push(d.get_heads()[0]);
    }
    (
        DocUpdate {
            doc: doc.to_string(),
            heads: d.get_heads(),
            payload: Payload::Changes(d.save_after(&before)),
        },
        hashes,
    )
}

/// A new document `doc` claiming `owner`, made under `by`.
pub(crate) fn forge(doc: &DocId, owner: &str, by: ActorId) -> (DocUpdate, ChangeHash) {
    let mut d = Automerge::new();
    d.set_actor(by);
    let mut tx = d.transaction();
    tx.put(automerge::ROOT, "v", SCHEMA_VERSION).unwrap();
    tx.put(automerge::ROOT, "owner", owner).unwrap();
    tx.put_object(automerge::ROOT, "addressed", automerge::ObjType::List)
        .unwrap();
    tx.commit();
    let hash = d.get_heads()[0];
    (
        DocUpdate {
            doc: doc.to_string(),
            heads: d.get_heads(),
            payload: Payload::Changes(d.save()),
        },
        hash,
    )
}

pub(crate) fn batch(docs: Vec<DocUpdate>) -> Frame {
    Frame::Batch(Batch {
        id: 0,
        from_seq: 0,
        upto_seq: 0,
        docs,
    })
}

pub(crate) async fn ack(s: &mut Session, docs: Vec<DocUpdate>) -> Ack {
    match s.handle(batch(docs)).await.expect("batch handled").pop() {
        Some(Frame::Ack(a)) => a,
        other => panic!("expected an ack, got {other:?}"),
    }
}

pub(crate) async fn held(store: &Store) -> Vec<(String, String, QuarantineState)> {
    store
        .quarantine_list(&QuarantineFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.doc, e.code, e.state))
        .collect()
}

pub(crate) fn campaign() -> DocId {
    DocId::Campaign(cid("camp-p1"))
}

pub(crate) fn award_p2() -> DocId {
    "award/award-p2".parse().unwrap()
}

pub(crate) fn roster(unit: &str) -> DocId {
    member::roster_doc(&uid(unit), 0)
}
