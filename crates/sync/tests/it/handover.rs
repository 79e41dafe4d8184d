//! The old host's side of a handover ([`hopluu_sync::handover`]) on one
//! store, and a session sending a node's own record (its seals) ahead of
//! its feed: plain tests of what the simulation's handovers found.

use hopluu_model::{DecisionId, DocId, NodeId};
use hopluu_sync::handover;

use crate::fixtures::{self, uid};
use crate::two_nodes::{Dir, Node, Wire, limits, national_and_province};

fn did(s: &str) -> DecisionId {
    DecisionId::parse("decision", s).unwrap()
}

/// A union moved out of a commune node's subtree, back in, and out again
/// while the node heard of none of it (its link was down): it seals both
/// moves out, not only the last (found by simulation seed 18 of the
/// handover world, where the first seal was missing and what the node
/// made before the first move was held at its province for good), and
/// owes the new host every document of the union.
#[tokio::test(flavor = "current_thread")]
async fn an_old_host_seals_every_move_out_it_missed() {
    let dir = fixtures::tempdir();
    let c11 = Node::open(&dir, "node-c11", "c11").await;
    for (u, kind, parent) in [
        ("vn", "central", None),
        ("p1", "provincial", Some("vn")),
        ("c11", "commune", Some("p1")),
        ("c12", "commune", Some("p1")),
        ("g1", "grassroots", Some("c11")),
    ] {
        c11.create_unit(u, kind, parent).await;
    }
    c11.add_members("g1", 3, true).await;
    let a = c11.author();
    fixtures::publish_node(&c11.store, &a, "node-c11", "c11", &["vn", "p1"], "")
        .await
        .unwrap();
    fixtures::publish_node(&c11.store, &a, "node-c12", "c12", &["vn", "p1"], "")
        .await
        .unwrap();
    // The national node's decisions, as they reach the commune node at once.
    for (d, to) in [("d1", "c12"), ("d2", "c11"), ("d3", "c12")] {
        fixtures::decide_move(&c11.store, &a, &did(d), &format!("{d}/QĐ-TLĐ"), "g1", to)
            .await
            .unwrap();
    }
    let node = NodeId::parse("node", "node-c11").unwrap();
    let mut sealed = handover::seal_departed(&c11.store, &node, &uid("c11"), &a)
        .await
        .unwrap();
    sealed.sort();
    assert_eq!(sealed, vec![did("d1"), did("d3")], "d2 moved the union in");
    let record = handover::node_record(&c11.store, &node)
        .await
        .unwrap()
        .unwrap();
    let seal = record.sealed(&did("d1")).expect("sealed");
    let docs: Vec<&str> = seal.docs.iter().map(|s| s.doc.as_str()).collect();
    for d in ["unit/g1", "roster/g1", "roster-private/g1"] {
        assert!(docs.contains(&d), "{d} in {docs:?}");
    }
    // Once only.
    assert!(
        handover::seal_departed(&c11.store, &node, &uid("c11"), &a)
            .await
            .unwrap()
            .is_empty()
    );
    // Owed to the new host, which is known to hold none of it.
    let owed = handover::handovers_owed(&c11.store, &node, &uid("c11"))
        .await
        .unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].to.id, "node-c12");
    assert_eq!(owed[0].docs, docs.len());
}

/// A node's own record goes ahead of its feed, so that its seals reach the
/// peer before the sealed changes they vouch for are judged there (found
/// by simulation seed 43 of the handover world: the record waited behind
/// a document whose changes the peer held until it came).
#[tokio::test(flavor = "current_thread")]
async fn a_nodes_own_record_goes_ahead_of_its_feed() {
    let dir = fixtures::tempdir();
    let (vn, p1, _) = national_and_province(&dir, 3).await;
    let mut wire = Wire::open(&p1, &vn, limits()).await;
    wire.run().await;
    // The province writes members, then its record: last in its feed.
    p1.add_members("g1", 4, true).await;
    fixtures::publish_node(&p1.store, &p1.author(), "node-p1", "p1", &["vn"], "")
        .await
        .unwrap();
    let mark = wire.log.len();
    wire.send(Dir::Up).await;
    let first = wire.updates(Dir::Up, mark);
    let own = DocId::Node(NodeId::parse("node", "node-p1").unwrap()).to_string();
    assert_eq!(
        first.first().map(|u| u.doc.as_str()),
        Some(own.as_str()),
        "{:?}",
        first.iter().map(|u| &u.doc).collect::<Vec<_>>()
    );
    wire.run().await;
    let id = DocId::Node(NodeId::parse("node", "node-p1").unwrap());
    assert_eq!(vn.heads(&id).await, p1.heads(&id).await);
    // Its changes sent once: not again when the feed reaches it.
    let changes = wire
        .updates_of(Dir::Up, mark, &id)
        .into_iter()
        .filter(|u| matches!(u.payload, hopluu_sync::frame::Payload::Changes(_)))
        .count();
    assert_eq!(changes, 1);
}

/// An old host (node-c1, in province p1) hands a moved union's rosters,
/// private one included, over to its new host (node-c2, in p2), which
/// cannot place the old host's unit: the new host admits the session for
/// the old host's seal, and takes what the seal vouches for; the old host
/// finds how deep the new host sits from its node record. Found by
/// simulation seed 502154 of the handover world (the new host held its
/// answers back from a peer it could not place, and the old host waited
/// for them).
#[tokio::test(flavor = "current_thread")]
async fn a_handover_reaches_a_new_host_that_cannot_place_the_old_host() {
    use hopluu_model::hosting::{self, HostSeal};
    use hopluu_model::reorg::Seal;
    use hopluu_sync::{Role, Session};

    let dir = fixtures::tempdir();
    let c1 = Node::open(&dir, "node-c1", "c1").await;
    let c2 = Node::open(&dir, "node-c2", "c2").await;
    // The old host: its province, itself, the union and its members.
    for (u, kind, parent) in [
        ("vn", "central", None),
        ("p1", "provincial", Some("vn")),
        ("p2", "provincial", Some("vn")),
        ("c1", "commune", Some("p1")),
        ("g1", "grassroots", Some("c1")),
    ] {
        c1.create_unit(u, kind, parent).await;
    }
    c1.add_members("g1", 3, true).await;
    // The new host knows its own branch only, and the union under it.
    for (u, kind, parent) in [
        ("vn", "central", None),
        ("p1", "provincial", Some("vn")),
        ("p2", "provincial", Some("vn")),
        ("c2", "commune", Some("p2")),
    ] {
        c2.create_unit(u, kind, parent).await;
    }
    // The national node's decision moves the union; the old host seals.
    let d = did("d1");
    fixtures::decide_move(&c1.store, &c1.author(), &d, "1/QĐ-TLĐ", "g1", "c2")
        .await
        .unwrap();
    let (public, private) = (
        crate::two_nodes::roster("g1"),
        crate::two_nodes::private_roster("g1"),
    );
    let mut sealed = Vec::new();
    for id in [&public, &private] {
        let heads = c1.heads(id).await.unwrap();
        sealed.push(Seal::of(id.to_string(), &heads));
    }
    let a = c1.author();
    fixtures::publish_node(&c1.store, &a, "node-c1", "c1", &["vn", "p1"], "")
        .await
        .unwrap();
    // The new host's own record, as the old host has it from the nodes
    // above: where the new host sits.
    fixtures::publish_node(&c2.store, &c2.author(), "node-c2", "c2", &["vn", "p2"], "")
        .await
        .unwrap();
    let theirs = DocId::Node(NodeId::parse("node", "node-c2").unwrap());
    let bytes = c2.saved(&theirs).await;
    let mut tx = c1.store.begin().await.unwrap();
    *tx.doc(&theirs).await.unwrap() = automerge::Automerge::load(&bytes).unwrap();
    tx.commit().await.unwrap();
    let node = DocId::Node(NodeId::parse("node", "node-c1").unwrap());
    let mut tx = c1.store.begin().await.unwrap();
    hosting::seal(
        tx.doc(&node).await.unwrap(),
        &a,
        &HostSeal {
            decision: d.clone(),
            at: "2025-09-01T00:00:00Z".into(),
            docs: sealed,
        },
    )
    .unwrap();
    tx.commit().await.unwrap();
    // The new host has the decision, the union's record and the old
    // host's record (its seal) from the nodes above.
    let mut tx = c2.store.begin().await.unwrap();
    for id in [
        DocId::Decision(d.clone()),
        DocId::Unit(uid("g1")),
        node.clone(),
    ] {
        let bytes = c1.saved(&id).await;
        *tx.doc(&id).await.unwrap() = automerge::Automerge::load(&bytes).unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(
        c2.store.old_hosts_for(&uid("c2")).await.unwrap(),
        vec!["node-c1".to_owned()]
    );

    let mut old = Session::new(
        c1.replica(limits()),
        Role::HandoverTo {
            expect: "node-c2".into(),
        },
    );
    let mut new = Session::new(c2.replica(limits()), Role::Acceptor);
    let mut up = vec![
        old.start()
            .await
            .unwrap()
            .expect("the old host speaks first"),
    ];
    let mut down = Vec::new();
    for _ in 0..50 {
        for f in std::mem::take(&mut up) {
            down.extend(new.handle(f).await.unwrap());
        }
        for f in std::mem::take(&mut down) {
            up.extend(old.handle(f).await.unwrap());
        }
        while let Some(b) = old.next_batch().await.unwrap() {
            up.push(b);
        }
        while let Some(b) = new.next_batch().await.unwrap() {
            down.push(b);
        }
        if up.is_empty() && down.is_empty() {
            break;
        }
    }
    assert!(new.is_handover(), "admitted as a handover");
    for id in [&public, &private] {
        assert_eq!(
            c2.heads(id).await,
            c1.heads(id).await,
            "{id} at the new host"
        );
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
        .fetch_one(c2.store.pool())
        .await
        .unwrap();
    assert_eq!(held, 0, "nothing held: the seal vouches for it all");
}

/// A province that saw a union leave its subtree holds changes to the
/// union's roster it cannot judge: the national node's, relayed up by a
/// commune that had them from its fallback link to the national node
/// (`outside-sender`). The national node no longer sends the province
/// that roster, so nothing would ever release them: they are reported as
/// archived (not held, not counted as undelivered), and as held again
/// when the union comes back. Found by simulation seeds
/// 503067, 504643, 505056, 506064 and 506642 of the handover world.
#[tokio::test(flavor = "current_thread")]
async fn an_old_host_sets_aside_what_it_holds_of_a_union_that_left() {
    use hopluu_store::quarantine::{NewQuarantine, QuarantineFilter, QuarantineState};

    let dir = fixtures::tempdir();
    let p1 = Node::open(&dir, "node-p1", "p1").await;
    let c11 = Node::open(&dir, "node-c11", "c11").await;
    for (u, kind, parent) in [
        ("vn", "central", None),
        ("p1", "provincial", Some("vn")),
        ("c11", "commune", Some("p1")),
        ("c12", "commune", Some("p1")),
        ("g1", "grassroots", Some("c11")),
    ] {
        p1.create_unit(u, kind, parent).await;
    }
    let members = p1.add_members("g1", 2, false).await;
    let roster = crate::two_nodes::roster("g1");
    // The commune has the roster, and an edit the national node made on
    // it, which the province does not have.
    let mut tx = c11.store.begin().await.unwrap();
    *tx.doc(&roster).await.unwrap() = automerge::Automerge::load(&p1.saved(&roster).await).unwrap();
    tx.commit().await.unwrap();
    let vn = fixtures::author("node-vn", "vn", 1_756_684_900_000);
    fixtures::edit_member(&c11.store, &vn, &uid("g1"), 0, &members[0], "Kế toán")
        .await
        .unwrap();
    let before = p1.heads(&roster).await.unwrap();
    let change = automerge::Automerge::load(&c11.saved(&roster).await)
        .unwrap()
        .get_changes(&before)
        .into_iter()
        .next()
        .expect("the national node's edit");
    // Relayed up by the commune, it is held at the province.
    let mut tx = p1.store.begin().await.unwrap();
    tx.quarantine(
        &NewQuarantine {
            doc: roster.clone(),
            hash: change.hash(),
            origin_node: "node-vn".into(),
            origin_unit: "vn".into(),
            peer_node: "node-c11".into(),
            peer_unit: "c11".into(),
            code: "outside-sender".into(),
            reason: "made by node node-vn for unit vn, outside the subtree of the sending child"
                .into(),
            waits_for: None,
            made_at: 0,
            change: change.raw_bytes().to_vec(),
        },
        1,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let count = |state| {
        let store = p1.store.clone();
        async move {
            store
                .quarantine_counts()
                .await
                .unwrap()
                .get(&state)
                .copied()
                .unwrap_or(0)
        }
    };
    let node = NodeId::parse("node", "node-p1").unwrap();
    let a = p1.author();
    fixtures::publish_node(&p1.store, &a, "node-p1", "p1", &["vn"], "")
        .await
        .unwrap();
    // Nothing left yet: held as it was.
    let set = handover::archive_departed(&p1.store, &node, &uid("p1"))
        .await
        .unwrap();
    assert_eq!(set, handover::Archiving::default());
    assert_eq!(count(QuarantineState::Held).await, 1);

    // The union moves to a commune of another province, which the
    // province cannot place; the province seals.
    fixtures::decide_move(&p1.store, &a, &did("d1"), "1/QĐ-TLĐ", "g1", "c21")
        .await
        .unwrap();
    let sealed = handover::seal_departed(&p1.store, &node, &uid("p1"), &a)
        .await
        .unwrap();
    assert_eq!(sealed, vec![did("d1")]);
    let set = handover::archive_departed(&p1.store, &node, &uid("p1"))
        .await
        .unwrap();
    assert_eq!((set.archived, set.restored), (1, 0));
    assert_eq!(count(QuarantineState::Held).await, 0);
    assert_eq!(count(QuarantineState::Archived).await, 1);
    let entry = p1
        .store
        .quarantine_list(&QuarantineFilter {
            state: Some(QuarantineState::Archived),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(entry.decided_by.as_deref(), Some("decision d1"));
    assert_eq!(entry.code, "outside-sender", "the reason is kept");
    assert!(p1.store.held_by_peer().await.unwrap().is_empty());
    // Once: the next look changes nothing.
    let set = handover::archive_departed(&p1.store, &node, &uid("p1"))
        .await
        .unwrap();
    assert_eq!(set, handover::Archiving::default());

    // The union comes back to the province: reported as held again (the
    // gate held it all along, and judges it whenever the roster changes).
    fixtures::decide_move(&p1.store, &a, &did("d2"), "2/QĐ-TLĐ", "g1", "c12")
        .await
        .unwrap();
    let set = handover::archive_departed(&p1.store, &node, &uid("p1"))
        .await
        .unwrap();
    assert_eq!((set.archived, set.restored), (0, 1));
    assert_eq!(count(QuarantineState::Held).await, 1);
    assert_eq!(count(QuarantineState::Archived).await, 0);
    assert_eq!(p1.heads(&roster).await.unwrap(), before);
}
