//! `unit/{id}` documents: create, rename, move, close; their owner follows
//! the parent; closed units refuse further decisions.

use automerge::Automerge;
use hopluu_model::doc::{self, DocMeta};
use hopluu_model::tree::UnitTree;
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit, UnitStatus};
use hopluu_model::{DocId, ModelError};

use crate::{
    assert_invalid, assert_rejected, d, decision, new_unit, node_a, node_b, reload, today, uid,
    unit_doc,
};

#[test]
fn a_unit_survives_save_and_load_through_its_whole_life() {
    let (mut doc, created) = new_unit(
        "g1",
        "  Công đoàn   Trường THCS  A ",
        "grassroots",
        Some("d1"),
    );
    assert_eq!(
        created.name, "Công đoàn Trường THCS A",
        "the name is cleaned"
    );
    assert_eq!(created.kind.as_str(), "grassroots");
    assert_eq!(created.parent, Some(uid("d1")));
    assert_eq!(created.status, UnitStatus::Active);
    assert_eq!(created.owner(), &uid("d1"));
    assert_eq!(created.names.len(), 1);
    assert_eq!(created.parents.len(), 1);
    assert_eq!(created.parents[0].decided_on, d("2020-01-15"));
    assert_eq!(created.parents[0].effective_on, d("2020-02-01"));
    assert_eq!(unit::read(&unit_doc("g1"), &reload(&doc)).unwrap(), created);
    let meta = DocMeta::read(unit_doc("g1"), &reload(&doc)).unwrap();
    assert_eq!(meta.owner, uid("d1"), "the parent decides about the unit");
    assert!(meta.addressed.is_empty());

    let renamed = unit::rename(
        &mut doc,
        &node_a(),
        "Công đoàn Trường THCS Châu Thành A",
        &decision("12/QĐ", "2024-06-01", ""),
    )
    .unwrap();
    assert_eq!(renamed.name, "Công đoàn Trường THCS Châu Thành A");
    let names: Vec<&str> = renamed.names.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Công đoàn Trường THCS A",
            "Công đoàn Trường THCS Châu Thành A"
        ],
        "the old name stays in the history"
    );
    assert_eq!(renamed.names[1].effective_on, d("2024-06-01"));
    assert_eq!(renamed.names[1].decision_no, "12/QĐ");
    assert_eq!(unit::read(&unit_doc("g1"), &reload(&doc)).unwrap(), renamed);

    // A ward union created on 1/7/2025 receives the school on 27/8/2025,
    // effective on 1/7/2025: the effective date lies before the decision.
    let moved = unit::move_to(
        &mut doc,
        &node_b(),
        &uid("ward-1"),
        &decision("116/QĐ", "2025-08-27", "2025-07-01"),
    )
    .unwrap();
    assert_eq!(moved.parent, Some(uid("ward-1")));
    assert_eq!(moved.owner(), &uid("ward-1"));
    assert_eq!(moved.parents.len(), 2);
    assert_eq!(moved.parents[0].parent, Some(uid("d1")), "history kept");
    assert_eq!(moved.parents[1].parent, Some(uid("ward-1")));
    assert_eq!(moved.parents[1].decided_on, d("2025-08-27"));
    assert_eq!(moved.parents[1].effective_on, d("2025-07-01"));
    assert_eq!(moved.parents[1].decision_no, "116/QĐ");
    let loaded = reload(&doc);
    assert_eq!(unit::read(&unit_doc("g1"), &loaded).unwrap(), moved);
    let meta = DocMeta::read(unit_doc("g1"), &loaded).unwrap();
    assert_eq!(meta.owner, uid("ward-1"), "the owner follows the move");
    assert_eq!(
        meta.addressed,
        vec![uid("d1")],
        "the subtree it left still holds the record"
    );

    let closed = unit::close(
        &mut doc,
        &node_b(),
        "Sáp nhập trường",
        &[uid("g2"), uid("g3")],
        false,
        &decision("200/QĐ", "2025-08-30", "2025-08-31"),
    )
    .unwrap();
    assert_eq!(closed.status, UnitStatus::Closed);
    assert!(!closed.is_active());
    assert_eq!(closed.successors, vec![uid("g2"), uid("g3")]);
    assert_eq!(
        closed.closed_on,
        Some(d("2025-08-31")),
        "the effective date"
    );
    assert_eq!(closed.close_reason, "Sáp nhập trường");
    assert_eq!(closed.name, renamed.name, "a closed unit keeps its record");
    assert_eq!(closed.names, renamed.names);
    assert_eq!(closed.parents, moved.parents);
    crate::assert_shaped(&unit_doc("g1"), &doc);
    let loaded = reload(&doc);
    assert_eq!(unit::read(&unit_doc("g1"), &loaded).unwrap(), closed);
    assert_eq!(
        DocMeta::read(unit_doc("g1"), &loaded).unwrap().owner,
        uid("ward-1")
    );
}

#[test]
fn the_root_owns_its_own_record() {
    let (doc, vn) = new_unit("vn", "Tổng Liên đoàn Lao động Việt Nam", "central", None);
    assert_eq!(vn.parent, None);
    assert_eq!(vn.owner(), &uid("vn"));
    assert_eq!(vn.parents[0].parent, None);
    let loaded = reload(&doc);
    assert_eq!(unit::read(&unit_doc("vn"), &loaded).unwrap(), vn);
    let meta = DocMeta::read(unit_doc("vn"), &loaded).unwrap();
    assert_eq!(meta.owner, uid("vn"));
    assert!(meta.addressed.is_empty());
}

#[test]
fn merged_provinces_record_their_successor() {
    let (mut doc, _) = new_unit("hau-giang", "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn"));
    let merged = unit::close(
        &mut doc,
        &node_a(),
        "Hợp nhất tỉnh theo Nghị quyết 202/2025/QH15",
        &[uid("can-tho")],
        true,
        &decision("01/NQ", "2025-06-12", "2025-07-01"),
    )
    .unwrap();
    assert_eq!(merged.status, UnitStatus::Merged);
    assert_eq!(merged.successors, vec![uid("can-tho")]);
    assert_eq!(merged.closed_on, Some(d("2025-07-01")));
    let loaded = reload(&doc);
    assert_eq!(unit::read(&unit_doc("hau-giang"), &loaded).unwrap(), merged);
    assert_eq!(
        DocMeta::read(unit_doc("hau-giang"), &loaded).unwrap().owner,
        uid("vn")
    );
}

#[test]
fn the_tree_follows_unit_records_and_moves_change_scope() {
    // vn -> hg -> d1 -> g1, and a ward union under hg; then g1 moves to the ward.
    let mut tree = UnitTree::new();
    let mut docs = Vec::new();
    for (id, kind, parent) in [
        ("vn", "central", None),
        ("hg", "provincial", Some("vn")),
        ("d1", "district", Some("hg")),
        ("ward-1", "commune", Some("hg")),
        ("g1", "grassroots", Some("d1")),
    ] {
        let (doc, unit) = new_unit(id, id, kind, parent);
        tree.upsert_unit(&unit);
        docs.push(doc);
    }
    let g1_doc = docs.last_mut().unwrap();
    let meta = DocMeta::read(unit_doc("g1"), g1_doc).unwrap();
    assert!(tree.in_scope(&uid("d1"), &meta, 1));
    assert!(!tree.in_scope(&uid("ward-1"), &meta, 1));
    tree.check_move(&uid("hg"), &uid("g1"), &uid("ward-1"))
        .unwrap();
    let moved = unit::move_to(
        g1_doc,
        &node_a(),
        &uid("ward-1"),
        &decision("5/QĐ", "2025-08-27", "2025-07-01"),
    )
    .unwrap();
    tree.upsert_unit(&moved);
    let meta = DocMeta::read(unit_doc("g1"), g1_doc).unwrap();
    assert_eq!(meta.owner, uid("ward-1"));
    assert!(
        tree.in_scope(&uid("ward-1"), &meta, 1),
        "the new parent holds it"
    );
    assert!(
        tree.in_scope(&uid("d1"), &meta, 1),
        "the old parent still holds it as it stands: it learns the unit left"
    );
    let roster = DocMeta {
        id: DocId::Roster {
            unit: uid("g1"),
            bucket: 0,
        },
        owner: uid("g1"),
        addressed: Vec::new(),
    };
    assert!(
        !tree.in_scope(&uid("d1"), &roster, 1),
        "but no longer its roster"
    );
    assert_eq!(tree.children(&uid("d1")), &[]);
    assert_eq!(
        tree.ancestors(&uid("g1")),
        vec![uid("ward-1"), uid("hg"), uid("vn")]
    );
}

#[test]
fn new_units_and_decisions_name_their_bad_field() {
    let kinds = KindCatalogue::default();
    let ok = decision("1", "2025-01-01", "");
    let parse = |id: Option<&str>, name: &str, kind: &str, parent: Option<&str>| {
        NewUnit::parse(&kinds, id, name, kind, parent, ok.clone())
    };
    assert!(parse(Some("g1"), "Công đoàn cơ sở", "grassroots", Some("d1")).is_ok());
    assert_invalid(parse(Some("G 1"), "x", "grassroots", None), "id");
    assert_invalid(parse(Some("g1"), "   ", "grassroots", None), "name");
    assert_invalid(
        parse(Some("g1"), &"x".repeat(201), "grassroots", None),
        "name",
    );
    assert_invalid(parse(Some("g1"), "x", "province", None), "kind");
    assert_invalid(
        parse(Some("g1"), "x", "grassroots", Some("Hậu Giang")),
        "parent_id",
    );
    let generated = parse(None, "x", "grassroots", None).unwrap();
    assert!(generated.id.as_str().starts_with('u'));

    assert_invalid(
        Decision::parse("1", "2025-09-02", "", today()),
        "decided_on",
    );
    assert_invalid(
        Decision::parse("1", "02/09/2025", "", today()),
        "decided_on",
    );
    assert_invalid(
        Decision::parse("1", "", "2025-13-01", today()),
        "effective_on",
    );
    let dflt = Decision::parse(" 7/QĐ ", "", "", today()).unwrap();
    assert_eq!(dflt.decision_no, "7/QĐ");
    assert_eq!(
        dflt.decided_on,
        today(),
        "an empty decision date means today"
    );
    assert_eq!(dflt.effective_on, today(), "and takes effect that day");
}

#[test]
fn rejected_unit_decisions_leave_the_document_unchanged() {
    let (mut doc, _) = new_unit("g1", "Công đoàn cơ sở A", "grassroots", Some("d1"));
    let dec = decision("9/QĐ", "2025-08-01", "");
    assert_rejected(&mut doc, "name", |doc| {
        unit::rename(doc, &node_a(), " \t ", &dec)
    });
    assert_rejected(&mut doc, "new_parent_id", |doc| {
        unit::move_to(doc, &node_a(), &uid("d1"), &dec)
    });
    assert_rejected(&mut doc, "reason", |doc| {
        unit::close(doc, &node_a(), "", &[], false, &dec)
    });
    assert_rejected(&mut doc, "successor_ids", |doc| {
        unit::close(doc, &node_a(), "hợp nhất", &[], true, &dec)
    });
    assert_rejected(&mut doc, "successor_ids", |doc| {
        unit::close(doc, &node_a(), "hợp nhất", &[uid("g1")], true, &dec)
    });

    unit::close(&mut doc, &node_a(), "Giải thể", &[], false, &dec).unwrap();
    assert_rejected(&mut doc, "unit_id", |doc| {
        unit::close(doc, &node_a(), "again", &[], false, &dec)
    });
    assert_rejected(&mut doc, "unit_id", |doc| {
        unit::close(doc, &node_a(), "again", &[uid("g2")], true, &dec)
    });
    assert_rejected(&mut doc, "unit_id", |doc| {
        unit::rename(doc, &node_a(), "Tên mới", &dec)
    });
    assert_rejected(&mut doc, "unit_id", |doc| {
        unit::move_to(doc, &node_a(), &uid("d2"), &dec)
    });
}

#[test]
fn a_unit_is_created_once() {
    let kinds = KindCatalogue::default();
    let (mut doc, before) = new_unit("g1", "Công đoàn cơ sở A", "grassroots", Some("d1"));
    let heads = doc.get_heads();
    let again = NewUnit::parse(
        &kinds,
        Some("g1"),
        "Another",
        "grassroots",
        Some("d2"),
        decision("2", "2025-01-01", ""),
    )
    .unwrap();
    let e = unit::create(&mut doc, &node_a(), &again).unwrap_err();
    assert!(
        matches!(e, ModelError::AlreadyExists { what: "unit", .. }),
        "{e:?}"
    );
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(unit::read(&unit_doc("g1"), &doc).unwrap(), before);
}

#[test]
fn an_edit_that_fails_midway_is_rolled_back() {
    let (mut doc, before) = new_unit("g1", "Công đoàn cơ sở A", "grassroots", Some("d1"));
    let heads = doc.get_heads();
    let r: Result<(), ModelError> = doc::edit(&mut doc, &node_b(), "half an edit", |tx| {
        use automerge::transaction::Transactable;
        tx.put(automerge::ROOT, "name", "written, then refused")?;
        tx.put(automerge::ROOT, "status", "closed")?;
        Err(ModelError::invalid("name", "refused after writing"))
    });
    assert_invalid(r, "name");
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(unit::read(&unit_doc("g1"), &doc).unwrap(), before);
    // The next edit still works and builds on the old heads.
    let renamed = unit::rename(&mut doc, &node_b(), "B", &decision("3", "", "")).unwrap();
    assert_eq!(renamed.name, "B");
    let change = doc.get_last_local_change().unwrap();
    assert_eq!(change.deps(), heads);
    assert_eq!(change.message(), Some("rename unit"));
}

#[test]
fn documents_of_a_newer_schema_or_with_a_foreign_owner_are_refused() {
    use automerge::transaction::Transactable;
    let (doc, _) = new_unit("g1", "A", "grassroots", Some("d1"));
    let mut newer = doc.fork();
    newer
        .transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "v", 2_i64)?;
            Ok(())
        })
        .unwrap();
    let e = DocMeta::read(unit_doc("g1"), &newer).unwrap_err();
    assert!(matches!(e, ModelError::Document { .. }), "{e:?}");
    assert!(e.to_string().contains("upgrade"), "{e}");

    // A roster whose content names another owner than its id.
    let mut roster = Automerge::new();
    hopluu_model::member::add(
        &mut roster,
        &node_a(),
        &uid("g1"),
        0,
        &crate::joining("m1", "g1", "Lê Thị Hoa", "HG-0001"),
    )
    .unwrap();
    let wrong = DocId::Roster {
        unit: uid("g2"),
        bucket: 0,
    };
    assert!(matches!(
        DocMeta::read(wrong, &roster),
        Err(ModelError::Document { .. })
    ));
    assert!(matches!(
        DocMeta::read(unit_doc("g1"), &Automerge::new()),
        Err(ModelError::Document { .. })
    ));
}

#[test]
fn unit_status_strings_round_trip() {
    for s in [UnitStatus::Active, UnitStatus::Merged, UnitStatus::Closed] {
        assert_eq!(UnitStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(UnitStatus::parse("dissolved"), None);
    let kinds = KindCatalogue::default();
    for k in ["central", "provincial", "district", "commune", "grassroots"] {
        assert!(kinds.get(k).is_some(), "{k}");
    }
    assert!(kinds.parse("kind", "grassroots").unwrap().holds_members);
    assert!(!kinds.parse("kind", "grassroots").unwrap().has_children);
    let e = kinds.parse("kind", "ward").unwrap_err();
    assert!(
        e.to_string().contains("grassroots"),
        "lists the known kinds: {e}"
    );
}
