//! Campaigns (`campaign/{id}`) and a unit's part in them
//! (`emulation/{unit}/{campaign}`): plans, registration, initiatives through
//! the review workflow, dedicated works.

use std::collections::BTreeMap;

use automerge::Automerge;
use hopluu_model::campaign::{self, CampaignStatus, NewCampaign, Plan};
use hopluu_model::emulation::{self, InitiativeStatus, NewInitiative, NewWork};
use hopluu_model::tree::{TreeNode, UnitTree};
use hopluu_model::unit::UnitStatus;
use hopluu_model::{CampaignId, DocId, DocMeta, InitiativeId, KindId, ModelError};

use crate::{assert_invalid, assert_rejected, d, node_a, node_b, reload, today, uid};

fn cid(s: &str) -> CampaignId {
    CampaignId::parse("campaign_id", s).unwrap()
}

fn new_campaign(id: &str, launching: &str, scope: &str) -> NewCampaign {
    NewCampaign::parse(
        Some(id),
        launching,
        "  Thi đua   lao động giỏi, lao động sáng tạo ",
        "Chào mừng Đại hội Công đoàn các cấp",
        "2025-01-01",
        "2025-12-31",
        scope,
    )
    .unwrap()
}

fn launched(id: &str, launching: &str, scope: &str) -> (Automerge, campaign::Campaign) {
    let mut doc = Automerge::new();
    let c = campaign::create(&mut doc, &node_a(), &new_campaign(id, launching, scope)).unwrap();
    (doc, c)
}

fn authors(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn initiative(title: &str, value: i64) -> NewInitiative {
    NewInitiative::parse(
        title,
        &authors(&["Nguyễn Văn An", "Lê Thị Hoa"]),
        value,
        "2025-04-01",
        today(),
    )
    .unwrap()
}

#[test]
fn a_campaign_survives_save_and_load_through_plans_and_closing() {
    let (mut doc, created) = launched("c2025", "hg", "");
    assert_eq!(created.id, cid("c2025"));
    assert_eq!(created.launching_unit, uid("hg"));
    assert_eq!(
        created.scope,
        uid("hg"),
        "an empty scope is the launching unit"
    );
    assert_eq!(created.title, "Thi đua lao động giỏi, lao động sáng tạo");
    assert_eq!(created.theme, "Chào mừng Đại hội Công đoàn các cấp");
    assert_eq!(created.starts_on, d("2025-01-01"));
    assert_eq!(created.ends_on, d("2025-12-31"));
    assert_eq!(created.status, CampaignStatus::Active);
    assert!(created.plans.is_empty());
    let id = DocId::Campaign(cid("c2025"));
    assert_eq!(campaign::read(&id, &reload(&doc)).unwrap(), created);

    let planned = campaign::set_plans(
        &mut doc,
        &node_a(),
        &[
            (
                uid("g1"),
                Plan {
                    initiative_quota: 5,
                    works_quota: 1,
                },
            ),
            (
                uid("g2"),
                Plan {
                    initiative_quota: 3,
                    works_quota: 0,
                },
            ),
        ],
    )
    .unwrap();
    // Replacing one plan keeps the others.
    let replanned = campaign::set_plans(
        &mut doc,
        &node_b(),
        &[(
            uid("g1"),
            Plan {
                initiative_quota: u32::MAX,
                works_quota: 2,
            },
        )],
    )
    .unwrap();
    let want = BTreeMap::from([
        (
            uid("g1"),
            Plan {
                initiative_quota: u32::MAX,
                works_quota: 2,
            },
        ),
        (
            uid("g2"),
            Plan {
                initiative_quota: 3,
                works_quota: 0,
            },
        ),
    ]);
    assert_eq!(planned.plans.len(), 2);
    assert_eq!(replanned.plans, want);
    assert_eq!(campaign::read(&id, &reload(&doc)).unwrap(), replanned);

    let closed = campaign::close(&mut doc, &node_a(), d("2025-12-31")).unwrap();
    assert_eq!(closed.status, CampaignStatus::Closed);
    assert_eq!(closed.plans, want, "closing keeps the plans");
    crate::assert_shaped(&id, &doc);
    let loaded = reload(&doc);
    assert_eq!(campaign::read(&id, &loaded).unwrap(), closed);
    let meta = DocMeta::read(id, &loaded).unwrap();
    assert_eq!(meta.owner, uid("hg"), "owned by the launching unit");
    assert_eq!(meta.addressed, vec![uid("hg")], "addressed to its scope");
}

#[test]
fn a_national_campaign_for_one_province_is_addressed_to_that_province() {
    let (doc, c) = launched("c-vn", "vn", "hg");
    assert_eq!(c.scope, uid("hg"));
    let id = DocId::Campaign(cid("c-vn"));
    let meta = DocMeta::read(id, &reload(&doc)).unwrap();
    assert_eq!(meta.owner, uid("vn"));
    assert_eq!(meta.addressed, vec![uid("hg")]);

    // It flows down to the scope, up to the launching unit, not sideways.
    let mut tree = UnitTree::new();
    for (u, p) in [
        ("vn", None),
        ("hg", Some("vn")),
        ("lc", Some("vn")),
        ("g1", Some("hg")),
    ] {
        tree.upsert(
            uid(u),
            TreeNode {
                parent: p.map(uid),
                kind: KindId::parse("kind", "provincial").unwrap(),
                status: UnitStatus::Active,
                name: u.into(),
            },
        );
    }
    assert!(tree.in_scope(&uid("g1"), &meta, 1));
    assert!(tree.in_scope(&uid("hg"), &meta, 1));
    assert!(tree.in_scope(&uid("vn"), &meta, 1));
    assert!(!tree.in_scope(&uid("lc"), &meta, 1));
}

#[test]
fn bad_campaigns_name_their_field() {
    let parse = |launching: &str, title: &str, starts: &str, ends: &str, scope: &str| {
        NewCampaign::parse(None, launching, title, "", starts, ends, scope)
    };
    let ok = parse("hg", "T", "2025-01-01", "2025-01-01", "").unwrap();
    assert!(ok.id.as_str().starts_with('c'), "a generated id");
    assert_invalid(parse("hg", "T", "2025-06-01", "2025-05-31", ""), "ends_on");
    assert_invalid(parse("hg", "T", "2025-06-01", "31/12/2025", ""), "ends_on");
    assert_invalid(parse("hg", "T", "", "2025-12-31", ""), "starts_on");
    assert_invalid(parse("hg", " ", "2025-01-01", "2025-12-31", ""), "title");
    assert_invalid(
        parse("Hậu Giang", "T", "2025-01-01", "2025-12-31", ""),
        "launching_unit_id",
    );
    assert_invalid(
        parse("hg", "T", "2025-01-01", "2025-12-31", "a b"),
        "scope_unit_id",
    );
    assert_invalid(
        NewCampaign::parse(Some("C 1"), "hg", "T", "", "2025-01-01", "2025-12-31", ""),
        "id",
    );
    assert_invalid(
        NewCampaign::parse(
            None,
            "hg",
            "T",
            &"x".repeat(2001),
            "2025-01-01",
            "2025-12-31",
            "",
        ),
        "theme",
    );
}

#[test]
fn rejected_campaign_edits_leave_the_document_unchanged() {
    let (mut doc, c) = launched("c2025", "hg", "");
    let e = campaign::create(&mut doc, &node_b(), &new_campaign("c2025", "vn", "")).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::AlreadyExists {
                what: "campaign",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        campaign::read(&DocId::Campaign(c.id.clone()), &doc).unwrap(),
        c
    );
    assert_rejected(&mut doc, "closed_on", |doc| {
        campaign::close(doc, &node_a(), d("2024-12-31"))
    });
    campaign::close(&mut doc, &node_a(), d("2025-09-01")).unwrap();
    assert_rejected(&mut doc, "campaign_id", |doc| {
        campaign::close(doc, &node_a(), d("2025-09-02"))
    });
    assert_rejected(&mut doc, "campaign_id", |doc| {
        campaign::set_plans(doc, &node_a(), &[(uid("g1"), Plan::default())])
    });
}

#[test]
fn an_emulation_document_survives_save_and_load_through_the_review_workflow() {
    let (unit, camp) = (uid("g1"), cid("c2025"));
    let mut doc = Automerge::new();
    let registered = emulation::register(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        d("2025-02-01"),
        "  Mỗi tổ công đoàn một sáng kiến ",
    )
    .unwrap();
    assert!(registered.registered);
    assert_eq!(registered.registered_on, Some(d("2025-02-01")));
    assert_eq!(registered.pledge, "Mỗi tổ công đoàn một sáng kiến");
    assert_eq!(registered.unit, unit);
    assert_eq!(registered.campaign, camp);

    let i1 = emulation::record_initiative(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        &initiative("Cải tiến dây chuyền đóng gói", 150_000_000),
    )
    .unwrap();
    assert_eq!(i1.status, InitiativeStatus::Submitted);
    assert_eq!(i1.authors, authors(&["Nguyễn Văn An", "Lê Thị Hoa"]));
    assert_eq!(i1.value_vnd, 150_000_000);
    assert_eq!(i1.submitted_on, d("2025-04-01"));
    assert_eq!(i1.recognised_level, "");
    let i2 = emulation::record_initiative(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        &initiative("Phần mềm quản lý kho", 0),
    )
    .unwrap();
    assert_ne!(i1.id, i2.id);

    // i1: submitted -> under review -> valid -> recognised (provincial) ->
    // recognised (national).
    let mut steps = vec![
        (InitiativeStatus::UnderReview, "", ""),
        (InitiativeStatus::Valid, "", "Hội đồng cơ sở đã thẩm định"),
        (InitiativeStatus::Recognised, "provincial", ""),
        (
            InitiativeStatus::Recognised,
            "national",
            "Bằng Lao động sáng tạo",
        ),
    ];
    let mut last = i1.clone();
    for (status, level, note) in steps.drain(..) {
        last = emulation::set_initiative_status(&mut doc, &node_b(), &i1.id, status, level, note)
            .unwrap();
        assert_eq!(last.status, status);
        assert_eq!(last.recognised_level, level);
        assert_eq!(last.note, note);
        assert_eq!(last.title, i1.title, "the workflow changes only the status");
        assert_eq!(emulation::initiative(&reload(&doc), &i1.id).unwrap(), last);
    }
    assert!(last.status.counts_as_valid());
    // i2: submitted -> rejected -> under review -> valid.
    for status in [
        InitiativeStatus::Rejected,
        InitiativeStatus::UnderReview,
        InitiativeStatus::Valid,
    ] {
        let i =
            emulation::set_initiative_status(&mut doc, &node_a(), &i2.id, status, "", "").unwrap();
        assert_eq!(i.status, status);
    }

    let w1 = emulation::record_work(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        &NewWork::parse(
            "Nhà văn hoá công nhân",
            2_500_000_000,
            true,
            "2025-08-19",
            today(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(w1.name, "Nhà văn hoá công nhân");
    assert_eq!(w1.value_vnd, 2_500_000_000);
    assert!(w1.plaque);
    assert_eq!(w1.completed_on, Some(d("2025-08-19")));
    let w2 = emulation::record_work(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        &NewWork::parse("Sân bóng", 0, false, "", today()).unwrap(),
    )
    .unwrap();
    assert_eq!(w2.completed_on, None, "not completed yet");

    let now = emulation::read(&doc).unwrap();
    assert_eq!(now.initiatives.len(), 2);
    assert_eq!(now.works.len(), 2);
    assert!(now.initiatives.contains(&last));
    assert!(now.works.contains(&w1) && now.works.contains(&w2));
    crate::assert_shaped(&emulation::doc_id(&unit, &camp), &doc);
    let loaded = reload(&doc);
    assert_eq!(emulation::read(&loaded).unwrap(), now);
    let id = emulation::doc_id(&unit, &camp);
    assert_eq!(id.to_string(), "emulation/g1/c2025");
    let meta = DocMeta::read(id, &loaded).unwrap();
    assert_eq!(meta.owner, unit, "owned by the unit");
    assert!(meta.addressed.is_empty());
    let valid = now
        .initiatives
        .iter()
        .filter(|i| i.status.counts_as_valid())
        .count();
    assert_eq!(valid, 2);
}

#[test]
fn an_initiative_recorded_before_registering_creates_the_document() {
    let (unit, camp) = (uid("g2"), cid("c2025"));
    let mut doc = Automerge::new();
    let i = emulation::record_initiative(&mut doc, &node_a(), &unit, &camp, &initiative("A", 1))
        .unwrap();
    let e = emulation::read(&reload(&doc)).unwrap();
    assert!(!e.registered);
    assert_eq!(e.registered_on, None);
    assert_eq!(e.initiatives, vec![i]);
    let meta = DocMeta::read(emulation::doc_id(&unit, &camp), &doc).unwrap();
    assert_eq!(meta.owner, unit);
    // Registering later keeps the initiative.
    let e = emulation::register(&mut doc, &node_a(), &unit, &camp, d("2025-05-01"), "").unwrap();
    assert!(e.registered);
    assert_eq!(e.initiatives.len(), 1);
}

#[test]
fn bad_initiatives_and_works_name_their_field() {
    let t = today();
    let a = authors(&["Nguyễn Văn An"]);
    assert_invalid(NewInitiative::parse("T", &a, -1, "", t), "value_vnd");
    assert_invalid(NewInitiative::parse("T", &a, i64::MIN, "", t), "value_vnd");
    assert_invalid(NewInitiative::parse(" ", &a, 0, "", t), "title");
    assert_invalid(NewInitiative::parse("T", &[], 0, "", t), "authors");
    assert_invalid(
        NewInitiative::parse("T", &authors(&["A", " "]), 0, "", t),
        "authors",
    );
    let many: Vec<String> = (0..51).map(|i| format!("Tác giả {i}")).collect();
    assert_invalid(NewInitiative::parse("T", &many, 0, "", t), "authors");
    assert_invalid(
        NewInitiative::parse("T", &a, 0, "2025-09-02", t),
        "submitted_on",
    );
    assert_invalid(
        NewInitiative::parse("T", &a, 0, "1/4/2025", t),
        "submitted_on",
    );
    let ok = NewInitiative::parse("T", &a, 0, "", t).unwrap();
    assert_eq!(ok.submitted_on, t, "an empty date means today");

    assert_invalid(NewWork::parse("Nhà", -1, false, "", t), "value_vnd");
    assert_invalid(NewWork::parse(" ", 1, false, "", t), "name");
    assert_invalid(
        NewWork::parse("Nhà", 1, false, "2025-09-02", t),
        "completed_on",
    );
    assert_invalid(emulation::vnd("value_vnd", -500), "value_vnd");
    assert_eq!(emulation::vnd("value_vnd", 0).unwrap(), 0);
}

#[test]
fn the_initiative_workflow_refuses_what_it_does_not_allow() {
    use InitiativeStatus::*;
    let all = [Submitted, UnderReview, Valid, Rejected, Recognised];
    let allowed = [
        (Submitted, UnderReview),
        (Submitted, Valid),
        (Submitted, Rejected),
        (UnderReview, Valid),
        (UnderReview, Rejected),
        (Valid, Recognised),
        (Valid, Rejected),
        (Rejected, UnderReview),
        (Recognised, Recognised),
    ];
    for from in all {
        assert_eq!(
            InitiativeStatus::parse("status", from.as_str()).unwrap(),
            from
        );
        for to in all {
            assert_eq!(
                from.may_become(to),
                allowed.contains(&(from, to)),
                "{} -> {}",
                from.as_str(),
                to.as_str()
            );
        }
    }
    assert_invalid(InitiativeStatus::parse("status", "approved"), "status");
    assert_eq!(
        all.iter()
            .filter(|s| s.counts_as_valid())
            .collect::<Vec<_>>(),
        [&Valid, &Recognised]
    );

    let (unit, camp) = (uid("g1"), cid("c2025"));
    let mut doc = Automerge::new();
    let i = emulation::record_initiative(&mut doc, &node_a(), &unit, &camp, &initiative("A", 1))
        .unwrap();
    let set = |status: InitiativeStatus, level: &'static str| {
        let id = i.id.clone();
        move |doc: &mut Automerge| {
            emulation::set_initiative_status(doc, &node_a(), &id, status, level, "")
        }
    };
    // Submitted: cannot be recognised or submitted again.
    assert_rejected(&mut doc, "status", set(Recognised, "provincial"));
    assert_rejected(&mut doc, "status", set(Submitted, ""));
    set(Valid, "")(&mut doc).unwrap();
    // Valid: recognition needs the level that recognised it.
    assert_rejected(&mut doc, "recognised_level", set(Recognised, ""));
    assert_rejected(&mut doc, "recognised_level", set(Recognised, "   "));
    assert_rejected(&mut doc, "status", set(UnderReview, ""));
    set(Rejected, "")(&mut doc).unwrap();
    // Rejected: only back to review.
    assert_rejected(&mut doc, "status", set(Valid, ""));
    assert_rejected(&mut doc, "status", set(Recognised, "national"));
    set(UnderReview, "")(&mut doc).unwrap();
    set(Valid, "")(&mut doc).unwrap();
    set(Recognised, "grassroots")(&mut doc).unwrap();
    // Recognised: may only be recognised (again, at another level).
    assert_rejected(&mut doc, "status", set(Valid, ""));
    assert_rejected(&mut doc, "status", set(Rejected, ""));
    assert_rejected(&mut doc, "recognised_level", set(Recognised, ""));

    let missing = InitiativeId::parse("id", "i404").unwrap();
    let heads = doc.get_heads();
    let e =
        emulation::set_initiative_status(&mut doc, &node_a(), &missing, Valid, "", "").unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::NotFound {
                what: "initiative",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(doc.get_heads(), heads);
}

/// What a write touched of an emulation record, found from its changes
/// alone, names the same entries as a diff of the record (which costs the
/// whole record), and gives up where the collection itself is replaced.
#[test]
fn the_entries_a_write_touched_are_found_from_its_changes() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let (unit, camp) = (uid("g1"), cid("c2025"));
    let mut doc = Automerge::new();
    let record = |doc: &mut Automerge, title: &str| {
        emulation::record_initiative(doc, &node_a(), &unit, &camp, &initiative(title, 1_000))
            .unwrap()
    };
    let i1 = record(&mut doc, "Sáng kiến 1");
    let i2 = record(&mut doc, "Sáng kiến 2");
    let both = |doc: &Automerge, before: &[automerge::ChangeHash]| {
        let by_diff = emulation::touched(&doc.diff(before, &doc.get_heads()));
        let by_changes = emulation::touched_since(doc, before);
        assert_eq!(by_changes, by_diff, "the two ways agree");
        by_changes
    };
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();

    let before = doc.get_heads();
    emulation::set_initiative_status(&mut doc, &node_b(), &i1.id, InitiativeStatus::Valid, "", "")
        .unwrap();
    let i3 = record(&mut doc, "Sáng kiến 3");
    let t = both(&doc, &before).unwrap();
    assert_eq!(t.initiatives, ids(&[i1.id.as_str(), i3.id.as_str()]));
    assert!(t.works.is_empty());

    let before = doc.get_heads();
    let w = emulation::record_work(
        &mut doc,
        &node_a(),
        &unit,
        &camp,
        &NewWork::parse("Nhà văn hoá", 5_000, true, "", today()).unwrap(),
    )
    .unwrap();
    // An edit deep inside an entry (its authors list) names the entry.
    let authors = {
        let inits = doc.get(ROOT, "initiatives").unwrap().unwrap().1;
        let one = doc.get(&inits, i2.id.as_str()).unwrap().unwrap().1;
        doc.get(&one, "authors").unwrap().unwrap().1
    };
    let mut tx = doc.transaction();
    tx.insert(&authors, 0, "Trần Văn Bình").unwrap();
    tx.commit();
    let t = both(&doc, &before).unwrap();
    assert_eq!(t.initiatives, ids(&[i2.id.as_str()]));
    assert_eq!(t.works, ids(&[w.id.as_str()]));

    // A removed entry is named (its row goes); a replaced collection is
    // everything.
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    let inits = tx.get(ROOT, "initiatives").unwrap().unwrap().1;
    tx.delete(&inits, i3.id.as_str()).unwrap();
    tx.commit();
    assert_eq!(
        both(&doc, &before).unwrap().initiatives,
        ids(&[i3.id.as_str()])
    );
    let before = doc.get_heads();
    let mut tx = doc.transaction();
    tx.put_object(ROOT, "works", ObjType::Map).unwrap();
    tx.commit();
    assert_eq!(both(&doc, &before), None);
}
