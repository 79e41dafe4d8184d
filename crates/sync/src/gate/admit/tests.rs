//! The admit pipeline's steps, each on hand-made changes and metadata.

use std::collections::HashSet;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, Change, ChangeHash, ROOT};
use hopluu_model::tree::TreeNode;
use hopluu_model::unit::UnitStatus;
use hopluu_model::{Author, DocId, KindId, UnitId, UnitTree};
use hopluu_store::quarantine::QuarantineState;

use super::{Covered, Gate, Held, Meta, Sender, Withheld, check_op_counters, hold_moved, rooted};
use hopluu_store::decisions::SealHeads;

fn uid(s: &str) -> UnitId {
    UnitId::parse("unit_id", s).unwrap()
}

fn actor(node: &str, unit: &str) -> ActorId {
    Author::actor_for(node, &uid(unit), b"test")
}

/// Changes made one after the other, each by the actor given for it.
fn chain(actors: &[ActorId]) -> (Automerge, Vec<Change>) {
    let mut doc = Automerge::new();
    for (i, a) in actors.iter().enumerate() {
        doc.set_actor(a.clone());
        let mut tx = doc.transaction();
        tx.put(ROOT, "k", i as i64).unwrap();
        tx.commit();
    }
    let changes = doc.get_changes(&[]);
    (doc, changes)
}

fn metas(changes: &[&Change]) -> Vec<Meta> {
    changes.iter().map(|c| Meta::of(c)).collect()
}

fn fake(n: u8, deps: &[u8], start_op: u64, max_op: u64) -> Meta {
    Meta {
        hash: ChangeHash([n; 32]),
        actor: ActorId::from(vec![n]),
        deps: deps.iter().map(|d| ChangeHash([*d; 32])).collect(),
        start_op,
        max_op,
    }
}

#[test]
fn rooted_takes_a_payload_in_any_order() {
    let a = ActorId::random();
    let (_, c) = chain(&[a.clone(), a.clone(), a]);
    let empty = Automerge::new();
    let reversed = metas(&[&c[2], &c[1], &c[0]]);
    let all: HashSet<_> = c.iter().map(|c| c.hash()).collect();
    assert_eq!(rooted(&empty, &Held::new(), &reversed), all);

    // The first change missing: nothing after it is rooted ...
    let tail = metas(&[&c[2], &c[1]]);
    assert!(rooted(&empty, &Held::new(), &tail).is_empty());
    // ... unless it is held here.
    let held = Held::from([(c[0].hash(), QuarantineState::Held)]);
    assert_eq!(
        rooted(&empty, &held, &tail),
        HashSet::from([c[1].hash(), c[2].hash()])
    );
}

#[test]
fn rooted_roots_nothing_of_a_cycle() {
    let cycle = vec![fake(1, &[2], 1, 1), fake(2, &[1], 2, 2), fake(3, &[], 1, 1)];
    let ok = rooted(&Automerge::new(), &Held::new(), &cycle);
    assert_eq!(ok, HashSet::from([ChangeHash([3; 32])]));
}

#[test]
fn op_counters_must_follow_the_dependencies() {
    let a = ActorId::random();
    let (_, c) = chain(&[a.clone(), a]);
    let empty = Automerge::new();
    assert_eq!(check_op_counters(&empty, &metas(&[&c[0], &c[1]])), Ok(()));

    let gap = vec![fake(1, &[], 1, 3), fake(2, &[1], 5, 6)];
    let err = check_op_counters(&empty, &gap).unwrap_err();
    assert!(err.contains("starts at op 5, not 4"), "{err}");

    let first_late = vec![fake(1, &[], 2, 3)];
    let err = check_op_counters(&empty, &first_late).unwrap_err();
    assert!(err.contains("starts at op 2, not 1"), "{err}");

    let hollow = vec![fake(1, &[], 1, 0)];
    let err = check_op_counters(&empty, &hollow).unwrap_err();
    assert!(err.ends_with("holds no operations"), "{err}");
    let hollow_after_unknown = vec![fake(1, &[9], 4, 3)];
    let err = check_op_counters(&empty, &hollow_after_unknown).unwrap_err();
    assert!(err.ends_with("holds no operations"), "{err}");
}

fn tree() -> UnitTree {
    let mut t = UnitTree::new();
    for (u, parent) in [
        ("vn", None),
        ("p1", Some("vn")),
        ("p2", Some("vn")),
        ("c11", Some("p1")),
    ] {
        t.upsert(
            uid(u),
            TreeNode {
                parent: parent.map(uid),
                kind: KindId::parse("kind", "level").unwrap(),
                status: UnitStatus::Active,
                name: u.to_owned(),
            },
        );
    }
    t
}

#[test]
fn judge_holds_what_a_child_relays_from_outside_and_what_waits_on_it() {
    let tree = tree();
    let sender = Sender {
        node: "node-p1".into(),
        unit: uid("p1"),
        is_child: true,
    };
    let gate = Gate {
        tree: &tree,
        sender: &sender,
        now: 0,
    };
    let inside = actor("node-c11", "c11");
    let outside = actor("node-p2", "p2");
    let (_, c) = chain(&[inside.clone(), outside, inside]);
    let id = DocId::Unit(uid("c11"));
    let mut held = Held::new();
    let v = gate.judge(
        &Automerge::new(),
        &id,
        Some(&uid("c11")),
        &metas(&[&c[0], &c[1], &c[2]]),
        &mut held,
        &Covered::default(),
    );
    assert_eq!(v.accepted, vec![0]);
    let holds: Vec<_> = v.holds.iter().map(|(i, h, w)| (*i, h.code, *w)).collect();
    assert_eq!(
        holds,
        vec![(1, "outside-sender", None), (2, "waits", Some(c[1].hash()))]
    );
    assert_eq!(held.len(), 2);
    assert!(v.orphans.is_empty() && v.known_bad.is_empty() && v.duplicates == 0);
    assert!(!v.names_unknown_unit());
}

#[test]
fn judge_counts_duplicates_orphans_and_known_bad() {
    let tree = UnitTree::new();
    let sender = Sender {
        node: "node-vn".into(),
        unit: uid("vn"),
        is_child: false,
    };
    let gate = Gate {
        tree: &tree,
        sender: &sender,
        now: 0,
    };
    let a = ActorId::random();
    let (_, c) = chain(&[a.clone(), a.clone(), a.clone(), a]);
    // The document has the first change; the third is discarded here.
    let mut doc = Automerge::new();
    doc.apply_changes([c[0].clone()]).unwrap();
    let mut held = Held::from([(c[2].hash(), QuarantineState::Discarded)]);
    let id = DocId::Unit(uid("vn"));
    let v = gate.judge(
        &doc,
        &id,
        None,
        &metas(&[&c[0], &c[2], &c[3]]),
        &mut held,
        &Covered::default(),
    );
    assert_eq!(v.duplicates, 1);
    // The second change is neither here nor sent: neither the third
    // nor the fourth can be judged, discarded or not.
    assert_eq!(v.orphans, vec![c[2].hash(), c[3].hash()]);
    assert_eq!(v.known_bad, Vec::<ChangeHash>::new());
    assert!(v.holds.is_empty() && v.accepted.is_empty());

    // With the second change in the document, the third is known bad
    // and the fourth waits on it; its maker names no node.
    doc.apply_changes([c[1].clone()]).unwrap();
    let v = gate.judge(
        &doc,
        &id,
        None,
        &metas(&[&c[2], &c[3]]),
        &mut held,
        &Covered::default(),
    );
    assert_eq!(v.known_bad, vec![c[2].hash()]);
    let holds: Vec<_> = v.holds.iter().map(|(i, h, _)| (*i, h.code)).collect();
    assert_eq!(holds, vec![(1, "waits")]);
}

#[test]
fn outside_owner_names_the_makers_the_new_owner_escapes() {
    let tree = tree();
    let sender = Sender {
        node: "node-vn".into(),
        unit: uid("vn"),
        is_child: false,
    };
    let gate = Gate {
        tree: &tree,
        sender: &sender,
        now: 0,
    };
    let (_, c) = chain(&[actor("node-p1", "p1"), actor("node-c11", "c11")]);
    let id = DocId::Unit(uid("c11"));
    assert!(gate.outside_owner(&id, &uid("c11"), &c).is_empty());
    assert_eq!(gate.outside_owner(&id, &uid("p1"), &c), vec![1]);
    assert_eq!(gate.outside_owner(&id, &uid("p2"), &c), vec![0, 1]);
}

#[test]
fn hold_moved_holds_the_move_and_what_builds_on_it() {
    let a = ActorId::random();
    let (_, c) = chain(&[a.clone(), a.clone(), a]);
    let id = DocId::Unit(uid("c11"));
    let mut held = Held::new();
    let mut holds: Vec<Withheld> = Vec::new();
    let keep = hold_moved(
        &id,
        &uid("c11"),
        &uid("p2"),
        c.clone(),
        &[1],
        &mut held,
        &mut holds,
    );
    assert_eq!(
        keep.iter().map(|k| k.hash()).collect::<Vec<_>>(),
        vec![c[0].hash()]
    );
    let got: Vec<_> = holds
        .iter()
        .map(|w| (w.change.hash(), w.hold.code))
        .collect();
    assert_eq!(
        got,
        vec![
            (c[1].hash(), "not-authorised"),
            (c[2].hash(), "not-authorised")
        ]
    );
    assert!(holds[0].hold.reason.contains("from unit c11 to unit p2"));
    assert_eq!(held.len(), 2);
}

/// A document moved from c11's subtree to p2's: what c11's host made before
/// the decision is in the past of the heads the decision sealed, and
/// passes; what it made after does not.
#[test]
fn changes_in_the_past_of_a_seal_pass_and_later_ones_are_held() {
    let tree = tree();
    let sender = Sender {
        node: "node-p1".into(),
        unit: uid("p1"),
        is_child: false,
    };
    let gate = Gate {
        tree: &tree,
        sender: &sender,
        now: 0,
    };
    let old_host = actor("node-c11", "c11");
    let (_, c) = chain(&[old_host.clone(), old_host.clone(), old_host]);
    // The document is now owned by p2: c11's host holds no authority.
    let id = DocId::Roster {
        unit: uid("p2"),
        bucket: 0,
    };
    let all = metas(&[&c[0], &c[1], &c[2]]);
    let deps = || all.iter().map(|m| (m.hash, m.deps.as_slice()));
    let seal = |by: Option<&str>| SealHeads {
        heads: vec![c[1].hash()],
        by: by.map(str::to_owned),
    };
    let judged = |covered: &Covered| {
        let mut held = Held::new();
        let v = gate.judge(
            &Automerge::new(),
            &id,
            Some(&uid("p2")),
            &all,
            &mut held,
            covered,
        );
        let holds: Vec<_> = v.holds.iter().map(|(i, h, _)| (*i, h.code)).collect();
        (v.accepted, holds)
    };
    // The decision's own seal, and the old host's seal of its own changes:
    // the first two pass, the third is held.
    for by in [None, Some("node-c11")] {
        let covered = Covered::of(&[seal(by)], deps());
        assert!(covered.vouches(&c[0].hash(), Some("node-c11")));
        assert_eq!(
            judged(&covered),
            (vec![0, 1], vec![(2, "not-authorised")]),
            "{by:?}"
        );
    }
    // Another node's seal vouches for nothing c11's host made.
    let covered = Covered::of(&[seal(Some("node-p1"))], deps());
    assert_eq!(judged(&covered).0, Vec::<usize>::new());
    // Without the seal, all three are held.
    let (accepted, _) = judged(&Covered::default());
    assert!(accepted.is_empty());
}

/// A union moved from p1's subtree into p2's, judged at p2's node, which
/// knows nothing of p1's communes: the creation by the old host (node-c11,
/// whose unit c11 is unknown here) passes once that node's own seal
/// vouches for it, also relayed by a child; the national node's move of
/// the record passes though the record's owner then (c11) is unknown
/// here; another node's seal lifts nothing.
#[test]
fn an_old_hosts_seal_vouches_where_its_unit_is_unknown() {
    let mut tree = tree();
    tree.upsert(
        uid("c21"),
        TreeNode {
            parent: Some(uid("p2")),
            kind: KindId::parse("kind", "level").unwrap(),
            status: UnitStatus::Active,
            name: "c21".into(),
        },
    );
    // p2's node: c11 is not in its tree.
    let mut at_p2 = UnitTree::new();
    for u in ["vn", "p1", "p2", "c21"] {
        at_p2.upsert(uid(u), tree.get(&uid(u)).unwrap().clone());
    }
    let child = Sender {
        node: "node-c21".into(),
        unit: uid("c21"),
        is_child: true,
    };
    let gate = Gate {
        tree: &at_p2,
        sender: &child,
        now: 0,
    };
    let old_host = actor("node-c11", "c11");
    let national = actor("node-vn", "vn");
    let (_, c) = chain(&[old_host, national]);
    let id = DocId::Unit(uid("g1"));
    let all = metas(&[&c[0], &c[1]]);
    let deps = || all.iter().map(|m| (m.hash, m.deps.as_slice()));
    let judged = |owner: &str, covered: &Covered| {
        let mut held = Held::new();
        let v = gate.judge(
            &Automerge::new(),
            &id,
            Some(&uid(owner)),
            &all,
            &mut held,
            covered,
        );
        let holds: Vec<_> = v.holds.iter().map(|(i, h, _)| (*i, h.code)).collect();
        (v.accepted, holds)
    };
    let sealed = |by: &str| {
        Covered::of(
            &[SealHeads {
                heads: vec![c[0].hash()],
                by: Some(by.to_owned()),
            }],
            deps(),
        )
    };
    assert_eq!(
        judged("c21", &Covered::default()),
        (vec![], vec![(0, "unknown-unit"), (1, "waits")]),
        "without a seal, the old host's change is held"
    );
    // The old host's change passes; the national node's, relayed by a
    // child, waits for the national node's own path (it is not sealed).
    assert_eq!(
        judged("c21", &sealed("node-c11")),
        (vec![0], vec![(1, "outside-sender")])
    );
    assert_eq!(
        judged("c21", &sealed("node-p1")).0,
        Vec::<usize>::new(),
        "another node's seal vouches for nothing of node-c11's"
    );
    // The national node's move, judged against the owner the record had
    // before it (c11, unknown here): its authority covers every unit.
    let upstream = Sender {
        node: "node-vn".into(),
        unit: uid("vn"),
        is_child: false,
    };
    let national = actor("node-vn", "vn");
    assert!(
        crate::gate::policy::check(
            &at_p2,
            &upstream,
            &id,
            Some(&uid("c11")),
            &national,
            &c[1].hash()
        )
        .is_ok()
    );
    let p1_node = actor("node-p1", "p1");
    let e = crate::gate::policy::check(
        &at_p2,
        &upstream,
        &id,
        Some(&uid("c11")),
        &p1_node,
        &c[1].hash(),
    )
    .unwrap_err();
    assert_eq!(e.code, "unknown-unit", "{}", e.reason);
}
