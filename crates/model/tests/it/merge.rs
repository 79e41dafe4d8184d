//! Concurrent edits on two nodes: forks of a document edited by different
//! actors merge to the same state both ways; a field set on both sides is
//! kept as a conflict with the same winner everywhere; every change names
//! the node that made it.

use std::collections::{BTreeSet, HashSet};

use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::am::Obj;
use hopluu_model::emulation::{self, NewInitiative};
use hopluu_model::member::{self, MemberStatus, MemberUpdate};
use hopluu_model::unit;
use hopluu_model::{Author, CampaignId, DocMeta};

use crate::{
    author, d, decision, joining, mid, new_unit, node_a, node_b, reload, roster, today, uid,
    unit_doc,
};

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// Merges each into the other, both ways, and checks they converged.
fn merge_both_ways(a: &mut Automerge, b: &mut Automerge) {
    let mut a_copy = a.clone();
    a.merge(&mut b.clone()).unwrap();
    b.merge(&mut a_copy).unwrap();
    assert_eq!(sorted(a.get_heads()), sorted(b.get_heads()), "same heads");
    assert_eq!(a.hydrate(None), b.hydrate(None), "same content");
}

fn rename(doc: &mut Automerge, who: &Author, id: &str, name: &str) {
    member::update(
        doc,
        who,
        &mid(id),
        &MemberUpdate {
            full_name: Some(name.into()),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn base_roster() -> Automerge {
    roster(
        "g1",
        &[
            joining("m1", "g1", "Lê Thị Hoa", "HG-0001"),
            joining("m2", "g1", "Trần Văn Bình", "HG-0002"),
            joining("m3", "g1", "Phạm Minh Châu", "HG-0003"),
        ],
    )
}

#[test]
fn edits_to_different_members_merge_both_ways() {
    let base = base_roster();
    let base_heads = base.get_heads();
    let mut a = base.fork();
    let mut b = Automerge::load(&base.save()).unwrap();

    rename(&mut a, &node_a(), "m1", "Lê Thị Hoà");
    member::end(
        &mut b,
        &node_b(),
        &mid("m2"),
        MemberStatus::Left,
        "Nghỉ việc",
        d("2025-08-01"),
        None,
    )
    .unwrap();
    member::add(
        &mut b,
        &node_b(),
        &uid("g1"),
        0,
        &joining("m4", "g1", "Đặng Văn Đức", "HG-0004"),
    )
    .unwrap();
    let (a_before, b_before) = (a.get_heads(), b.get_heads());
    assert_ne!(sorted(a_before.clone()), sorted(b_before.clone()));

    merge_both_ways(&mut a, &mut b);
    for doc in [&a, &b, &reload(&a)] {
        let m = member::read_many(doc, None).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].full_name, "Lê Thị Hoà", "node a's edit");
        assert_eq!(m[1].status, MemberStatus::Left, "node b's edit");
        assert_eq!(m[1].full_name, "Trần Văn Bình");
        assert_eq!(m[2].full_name, "Phạm Minh Châu", "untouched");
        assert_eq!(m[3].id, mid("m4"), "node b's new member");
        let members = Obj::root(doc).obj("members").unwrap();
        for k in members.keys() {
            let o = members.obj(&k).unwrap();
            for f in ["full_name", "status", "position"] {
                assert!(!o.conflicted(f), "{k}.{f}: no conflict");
            }
        }
    }

    // What each side learnt from the merge, and what changed since the fork.
    let merged = a.get_heads();
    assert_eq!(
        member::touched_members(&a.diff(&a_before, &merged)),
        Some(ids(&["m2", "m4"]))
    );
    assert_eq!(
        member::touched_members(&b.diff(&b_before, &merged)),
        Some(ids(&["m1"]))
    );
    assert_eq!(
        member::touched_members(&a.diff(&base_heads, &merged)),
        Some(ids(&["m1", "m2", "m4"]))
    );
    assert_eq!(
        DocMeta::read(member::roster_doc(&uid("g1"), 0), &a)
            .unwrap()
            .owner,
        uid("g1")
    );
}

#[test]
fn incremental_saves_carry_the_same_merge() {
    let base = base_roster();
    let base_heads = base.get_heads();
    let mut a = Automerge::load(&base.save()).unwrap();
    let mut b = Automerge::load(&base.save()).unwrap();
    rename(&mut a, &node_a(), "m1", "Lê Thị Hoà");
    rename(&mut b, &node_b(), "m3", "Phạm Minh Chân");
    let from_a = a.save_after(&base_heads);
    let from_b = b.save_after(&base_heads);
    let a_before = a.get_heads();
    assert!(a.load_incremental(&from_b).unwrap() > 0);
    assert!(b.load_incremental(&from_a).unwrap() > 0);
    assert_eq!(sorted(a.get_heads()), sorted(b.get_heads()));
    // Applying the same bytes again changes nothing: merges are idempotent.
    let heads = a.get_heads();
    a.load_incremental(&from_b).unwrap();
    a.load_incremental(&from_a).unwrap();
    assert_eq!(a.get_heads(), heads);
    for doc in [&a, &b] {
        assert_eq!(
            member::read(doc, &mid("m1")).unwrap().unwrap().full_name,
            "Lê Thị Hoà"
        );
        assert_eq!(
            member::read(doc, &mid("m3")).unwrap().unwrap().full_name,
            "Phạm Minh Chân"
        );
    }
    assert_eq!(
        member::touched_members(&a.diff(&a_before, &a.get_heads())),
        Some(ids(&["m3"]))
    );
}

#[test]
fn the_same_field_set_on_both_nodes_is_a_conflict_with_one_winner_everywhere() {
    let base = base_roster();
    let mut a = base.fork();
    let mut b = base.fork();
    // Two spellings of the same name: precomposed and combining marks.
    let (on_a, on_b) = ("Lê Thị Hoà", "Lê Thị Hoa\u{300}");
    rename(&mut a, &node_a(), "m1", on_a);
    rename(&mut b, &node_b(), "m1", on_b);
    // b also edits another field of the same member: not a conflict.
    member::update(
        &mut b,
        &node_b(),
        &mid("m1"),
        &MemberUpdate {
            position: Some("Tổ trưởng".into()),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
    let a_before = a.get_heads();

    merge_both_ways(&mut a, &mut b);
    let mut winners = HashSet::new();
    for doc in [&a, &b, &reload(&a), &reload(&b)] {
        let m1 = Obj::root(doc).obj("members").unwrap().obj("m1").unwrap();
        assert!(m1.conflicted("full_name"), "both values are kept");
        assert!(!m1.conflicted("position"));
        assert!(
            !m1.conflicted("birth_date"),
            "unchanged fields are never rewritten"
        );
        let values: BTreeSet<String> = doc
            .get_all(&m1.id, "full_name")
            .unwrap()
            .into_iter()
            .map(|(v, _)| v.into_string().unwrap())
            .collect();
        assert_eq!(values, BTreeSet::from([on_a.to_owned(), on_b.to_owned()]));
        let read = member::read(doc, &mid("m1")).unwrap().unwrap();
        assert_eq!(read.full_name, m1.str("full_name"));
        assert_eq!(read.position, "Tổ trưởng");
        winners.insert(read.full_name);
        let m2 = Obj::root(doc).obj("members").unwrap().obj("m2").unwrap();
        assert!(!m2.conflicted("full_name"));
    }
    assert_eq!(
        winners.len(),
        1,
        "every node picks the same winner: {winners:?}"
    );
    assert_eq!(
        member::touched_members(&a.diff(&a_before, &a.get_heads())),
        Some(ids(&["m1"]))
    );

    // Resolving: a later write on one node supersedes both values.
    rename(&mut a, &node_a(), "m1", "Lê Thị Hoà Bình");
    let m1 = Obj::root(&a).obj("members").unwrap().obj("m1").unwrap();
    assert!(!m1.conflicted("full_name"));
    b.merge(&mut a.clone()).unwrap();
    let m1 = Obj::root(&b).obj("members").unwrap().obj("m1").unwrap();
    assert!(!m1.conflicted("full_name"));
    assert_eq!(m1.str("full_name"), "Lê Thị Hoà Bình");
}

#[test]
fn concurrent_decisions_on_a_unit_merge() {
    let (base, _) = new_unit("g1", "Công đoàn cơ sở A", "grassroots", Some("d1"));
    let mut a = base.fork();
    let mut b = base.fork();
    unit::rename(
        &mut a,
        &node_a(),
        "Công đoàn cơ sở A1",
        &decision("1", "2025-07-01", ""),
    )
    .unwrap();
    unit::move_to(
        &mut b,
        &node_b(),
        &uid("ward-1"),
        &decision("2", "2025-08-27", "2025-07-01"),
    )
    .unwrap();
    merge_both_ways(&mut a, &mut b);
    let u = unit::read(&unit_doc("g1"), &a).unwrap();
    assert_eq!(u.name, "Công đoàn cơ sở A1");
    assert_eq!(u.names.len(), 2);
    assert_eq!(u.parent, Some(uid("ward-1")));
    assert_eq!(u.parents.len(), 2);
    assert_eq!(unit::read(&unit_doc("g1"), &b).unwrap(), u);
    assert_eq!(
        DocMeta::read(unit_doc("g1"), &b).unwrap().owner,
        uid("ward-1")
    );
}

#[test]
fn initiatives_recorded_on_two_nodes_are_both_kept() {
    let (unit, camp) = (uid("g1"), CampaignId::parse("c", "c2025").unwrap());
    let mut base = Automerge::new();
    emulation::register(&mut base, &node_a(), &unit, &camp, d("2025-02-01"), "").unwrap();
    let mut a = base.fork();
    let mut b = base.fork();
    let new = |t: &str| {
        NewInitiative::parse(t, &["Nguyễn Văn An".to_owned()], 1_000, "", today()).unwrap()
    };
    let i1 = emulation::record_initiative(&mut a, &node_a(), &unit, &camp, &new("A")).unwrap();
    let i2 = emulation::record_initiative(&mut b, &node_b(), &unit, &camp, &new("B")).unwrap();
    merge_both_ways(&mut a, &mut b);
    let e = emulation::read(&a).unwrap();
    assert_eq!(e.initiatives.len(), 2);
    assert!(e.initiatives.contains(&i1) && e.initiatives.contains(&i2));
    assert!(e.registered);
}

#[test]
fn every_change_names_the_node_that_made_it() {
    let base = base_roster(); // by node-a
    let base_changes: HashSet<ChangeHash> =
        base.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let mut a = base.fork();
    let mut b = base.fork();
    rename(&mut a, &node_a(), "m1", "Lê Thị Hoà");
    rename(&mut b, &node_b(), "m2", "Trần Văn Bính");
    member::end(
        &mut b,
        &node_b(),
        &mid("m3"),
        MemberStatus::Ceased,
        "Giải thể",
        d("2025-07-01"),
        None,
    )
    .unwrap();
    // A restored node-a has another incarnation but is the same node.
    let restored = Author {
        actor: Author::actor_for(
            "node-a",
            &hopluu_model::UnitId::parse("unit", "vn").unwrap(),
            &[9, 9, 9, 9, 9, 9, 9, 9],
        ),
        time_millis: 0,
    };
    assert_ne!(restored.actor, node_a().actor);
    rename(&mut a, &restored, "m3", "Phạm Thị Minh Châu");
    let from_a: HashSet<ChangeHash> = a
        .get_changes(&base.get_heads())
        .iter()
        .map(|c| c.hash())
        .collect();
    let from_b: HashSet<ChangeHash> = b
        .get_changes(&base.get_heads())
        .iter()
        .map(|c| c.hash())
        .collect();
    assert_eq!((from_a.len(), from_b.len()), (2, 2));

    merge_both_ways(&mut a, &mut b);
    let merged = reload(&a);
    let changes = merged.get_changes(&[]);
    assert_eq!(changes.len(), base_changes.len() + 4);
    let mut nodes = BTreeSet::new();
    for c in &changes {
        // The document's skeleton is written by the shared skeleton actor,
        // identically on every node: it belongs to no node.
        if *c.actor_id() == hopluu_model::doc::skeleton_actor() {
            assert_eq!(Author::node_of(c.actor_id()), None);
            continue;
        }
        let node = Author::node_of(c.actor_id()).expect("a node's actor");
        let want = if from_b.contains(&c.hash()) {
            "node-b"
        } else {
            assert!(base_changes.contains(&c.hash()) || from_a.contains(&c.hash()));
            "node-a"
        };
        assert_eq!(node, want, "change {:?}", c.message());
        nodes.insert(node);
    }
    assert_eq!(
        nodes,
        BTreeSet::from(["node-a".to_owned(), "node-b".to_owned()])
    );
    // Actors of other nodes with other names.
    let other = author("lai-chau");
    assert_eq!(Author::node_of(&other.actor).as_deref(), Some("lai-chau"));
    assert_eq!(
        Author::node_of(&automerge::ActorId::from(b"no-zero-byte".to_vec())),
        None
    );
    // The change carries the author's time and the edit's message.
    let last_b = changes
        .iter()
        .find(|c| from_b.contains(&c.hash()) && c.message() == Some("ceased"))
        .expect("node b's ceased change");
    assert_eq!(last_b.timestamp(), 0);
}

#[test]
fn the_same_new_roster_created_on_two_nodes_keeps_both_members() {
    let mut a = Automerge::new();
    let mut b = Automerge::new();
    member::add(
        &mut a,
        &node_a(),
        &uid("g1"),
        0,
        &joining("m1", "g1", "A", "HG-0001"),
    )
    .unwrap();
    member::add(
        &mut b,
        &node_b(),
        &uid("g1"),
        0,
        &joining("m2", "g1", "B", "HG-0002"),
    )
    .unwrap();
    merge_both_ways(&mut a, &mut b);
    assert!(!Obj::root(&a).conflicted("members"));
    assert_eq!(member::count(&a), 2);
}
