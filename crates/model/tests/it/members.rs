//! Rosters: members through joining, updates, leaving, ceasing and
//! transfers; private rosters; validation. Buckets and the members a diff
//! touches are in [`crate::buckets`].

use std::collections::BTreeSet;

use automerge::Automerge;
use hopluu_model::DocMeta;
use hopluu_model::ModelError;
use hopluu_model::member::{
    self, Gender, MemberInput, MemberStatus, MemberUpdate, NewMember, PrivateData,
};

use crate::{
    assert_invalid, assert_rejected, d, input, joining, mid, node_a, node_b, reload, roster, today,
    uid,
};

pub fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

pub fn read(doc: &Automerge, id: &str) -> member::Member {
    member::read(doc, &mid(id))
        .unwrap()
        .expect("the member is there")
}

#[test]
fn a_roster_survives_save_and_load_through_joins_updates_and_departures() {
    let m1 = joining("m1", "g1", "Lê Thị Hoa", "hg-0001");
    assert_eq!(m1.card_number.as_str(), "HG-0001");
    assert_eq!(m1.status, MemberStatus::Active);
    assert_eq!(m1.status_on, Some(d("2012-03-01")));
    assert_eq!(m1.history.len(), 1);
    assert_eq!(m1.history[0].kind, "joined");
    let m2 = joining("m2", "g1", "Trần Văn Bình", "HG-0002");
    let m3 = joining("m3", "g1", "Phạm Minh Châu", "HG-0003");
    let mut doc = roster("g1", &[m1.clone(), m2.clone(), m3.clone()]);
    assert_eq!(member::count(&doc), 3);
    assert_eq!(read(&doc, "m1"), m1);
    assert_eq!(member::read(&doc, &mid("m9")).unwrap(), None);

    let updated = member::update(
        &mut doc,
        &node_a(),
        &mid("m1"),
        &MemberUpdate {
            full_name: Some("  Lê   Thị Hoà ".into()),
            birth_date: Some(d("1990-05-18")),
            gender: Some(Gender::Other),
            position: Some("Tổ trưởng".into()),
            joined_on: None,
        },
        today(),
    )
    .unwrap();
    assert_eq!(updated.full_name, "Lê Thị Hoà");
    assert_eq!(updated.birth_date, Some(d("1990-05-18")));
    assert_eq!(updated.gender, Gender::Other);
    assert_eq!(updated.position, "Tổ trưởng");
    assert_eq!(updated.joined_on, m1.joined_on, "unchanged fields stay");
    assert_eq!(updated.card_number, m1.card_number);
    assert_eq!(updated.history, m1.history, "an update is not an event");

    let left = member::end(
        &mut doc,
        &node_a(),
        &mid("m2"),
        MemberStatus::Left,
        "Nghỉ hưu",
        d("2025-06-30"),
        None,
    )
    .unwrap();
    assert_eq!(left.status, MemberStatus::Left);
    assert_eq!(left.status_reason, "Nghỉ hưu");
    assert_eq!(left.status_on, Some(d("2025-06-30")));
    assert_eq!(left.history.last().unwrap().kind, "left");

    let ceased = member::end(
        &mut doc,
        &node_a(),
        &mid("m3"),
        MemberStatus::Ceased,
        "Giải thể công đoàn cơ sở khối cơ quan nhà nước",
        d("2025-07-01"),
        None,
    )
    .unwrap();
    assert_eq!(ceased.status, MemberStatus::Ceased);
    assert_eq!(ceased.history.len(), 2);
    assert_eq!(ceased.history[1].kind, "ceased");
    assert_eq!(ceased.history[1].on, d("2025-07-01"));
    assert_eq!(
        ceased.history[1].reason,
        "Giải thể công đoàn cơ sở khối cơ quan nhà nước"
    );

    crate::assert_shaped(&member::roster_doc(&uid("g1"), 0), &doc);
    let loaded = reload(&doc);
    assert_eq!(read(&loaded, "m1"), updated);
    assert_eq!(read(&loaded, "m2"), left);
    assert_eq!(read(&loaded, "m3"), ceased);
    assert_eq!(
        member::read_many(&loaded, None).unwrap(),
        vec![updated.clone(), left.clone(), ceased.clone()],
        "all members, in id order"
    );
    assert_eq!(
        member::read_many(&loaded, Some(&ids(&["m3", "m1", "m404"]))).unwrap(),
        vec![updated, ceased],
        "only the named members that exist"
    );
    let meta = DocMeta::read(member::roster_doc(&uid("g1"), 0), &loaded).unwrap();
    assert_eq!(meta.id.to_string(), "roster/g1");
    assert_eq!(meta.owner, uid("g1"));
    assert!(meta.addressed.is_empty());
}

#[test]
fn an_import_adds_its_members_in_one_change_or_none() {
    let m1 = joining("m1", "g1", "Lê Thị Hoa", "HG-0001");
    let mut doc = roster("g1", std::slice::from_ref(&m1));
    let changes = doc.get_changes(&[]).len();
    let batch = [
        joining("m2", "g1", "Trần Văn Bình", "HG-0002"),
        joining("m3", "g1", "Phạm Minh Châu", "HG-0003"),
    ];
    member::add_many(&mut doc, &node_a(), &uid("g1"), 0, &batch).unwrap();
    assert_eq!(doc.get_changes(&[]).len(), changes + 1, "one change");
    let doc = reload(&doc);
    assert_eq!(member::count(&doc), 3);
    assert_eq!(read(&doc, "m2"), batch[0]);
    assert_eq!(read(&doc, "m3"), batch[1]);

    // One of them already there: none is added, the roster is unchanged.
    let mut doc = doc;
    let heads = doc.get_heads();
    let again = [joining("m4", "g1", "Đỗ Thị Lan", "HG-0004"), m1];
    let e = member::add_many(&mut doc, &node_a(), &uid("g1"), 0, &again).unwrap_err();
    assert!(matches!(e, ModelError::AlreadyExists { .. }), "{e}");
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(member::read(&doc, &mid("m4")).unwrap(), None);
}

/// An import's private data for one roster is one change too, and reads
/// back as the same data written member by member.
#[test]
fn an_imports_private_data_is_one_change() {
    let unit = uid("g1");
    let p1 = PrivateData::parse("001190004005", "Kinh", "Không").unwrap();
    let p2 = PrivateData::parse("094185000123", "Khmer", "Phật giáo").unwrap();
    let mut many = Automerge::new();
    member::put_private(&mut many, &node_a(), &unit, 0, &mid("m0"), &p1).unwrap();
    let changes = many.get_changes(&[]).len();
    member::put_private_many(
        &mut many,
        &node_a(),
        &unit,
        0,
        &[(&mid("m1"), &p1), (&mid("m2"), &p2)],
    )
    .unwrap();
    assert_eq!(many.get_changes(&[]).len(), changes + 1, "one change");
    let mut one_by_one = Automerge::new();
    for (id, p) in [("m0", &p1), ("m1", &p1), ("m2", &p2)] {
        member::put_private(&mut one_by_one, &node_a(), &unit, 0, &mid(id), p).unwrap();
    }
    let read = |d: &Automerge| member::read_private(&reload(d), None).unwrap();
    let (a, b) = (read(&many), read(&one_by_one));
    assert_eq!(a.len(), 3);
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && x.1 == y.1),
        "the same data either way"
    );
    crate::assert_shaped(&member::private_doc(&unit, 0), &many);
    // Nothing to write: no change.
    let heads = many.get_heads();
    member::put_private_many(&mut many, &node_a(), &unit, 0, &[]).unwrap();
    assert_eq!(many.get_heads(), heads);
}

#[test]
fn a_member_transfers_out_and_in_and_comes_back_to_the_first_unit() {
    let m4 = joining("m4", "g1", "Võ Thị Dung", "HG-0004");
    let mut g1 = roster("g1", std::slice::from_ref(&m4));
    let mut g2 = Automerge::new();

    let out = member::end(
        &mut g1,
        &node_a(),
        &mid("m4"),
        MemberStatus::Transferred,
        "Chuyển công tác",
        d("2025-03-01"),
        Some(&uid("g2")),
    )
    .unwrap();
    assert_eq!(out.status, MemberStatus::Transferred);
    assert_eq!(out.history[1].kind, "transferred_out");
    assert_eq!(out.history[1].other_unit, Some(uid("g2")));

    // Into g2's third bucket, a new record there.
    let arrived = member::transfer_in(
        &mut g2,
        &node_b(),
        &uid("g2"),
        2,
        &out,
        "Tiếp nhận",
        d("2025-03-02"),
    )
    .unwrap();
    assert_eq!(arrived.id, mid("m4"), "the id follows the member");
    assert_eq!(arrived.unit, uid("g2"));
    assert_eq!(arrived.status, MemberStatus::Active);
    assert_eq!(arrived.status_reason, "");
    assert_eq!(arrived.status_on, Some(d("2025-03-02")));
    assert_eq!(arrived.full_name, m4.full_name);
    assert_eq!(arrived.birth_date, m4.birth_date);
    assert_eq!(arrived.card_number, m4.card_number);
    assert_eq!(arrived.joined_on, m4.joined_on, "union seniority is kept");
    assert_eq!(arrived.history.len(), 1);
    assert_eq!(arrived.history[0].kind, "transferred_in");
    assert_eq!(arrived.history[0].other_unit, Some(uid("g1")));
    assert_eq!(arrived.history[0].reason, "Tiếp nhận");
    let meta = DocMeta::read(member::roster_doc(&uid("g2"), 2), &reload(&g2)).unwrap();
    assert_eq!(meta.id.to_string(), "roster/g2/2");
    assert_eq!(meta.owner, uid("g2"));
    assert!(meta.addressed.is_empty());
    assert_eq!(read(&reload(&g2), "m4"), arrived);

    // Promoted in g2, then back to g1.
    member::update(
        &mut g2,
        &node_b(),
        &mid("m4"),
        &MemberUpdate {
            position: Some("Chủ tịch công đoàn".into()),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
    let back_out = member::end(
        &mut g2,
        &node_b(),
        &mid("m4"),
        MemberStatus::Transferred,
        "Về đơn vị cũ",
        d("2025-08-01"),
        Some(&uid("g1")),
    )
    .unwrap();
    let back = member::transfer_in(
        &mut g1,
        &node_a(),
        &uid("g1"),
        0,
        &back_out,
        "",
        d("2025-08-02"),
    )
    .unwrap();
    assert_eq!(back.unit, uid("g1"));
    assert_eq!(back.status, MemberStatus::Active);
    assert_eq!(back.status_reason, "");
    assert_eq!(back.status_on, Some(d("2025-08-02")));
    assert_eq!(
        back.position, "Chủ tịch công đoàn",
        "what changed in g2 comes back"
    );
    let kinds: Vec<&str> = back.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["joined", "transferred_out", "transferred_in"]);
    assert_eq!(back.history[2].other_unit, Some(uid("g2")));
    assert_eq!(
        member::count(&g1),
        1,
        "the old record is reused, not duplicated"
    );

    crate::assert_shaped(&member::roster_doc(&uid("g1"), 0), &g1);
    crate::assert_shaped(&member::roster_doc(&uid("g2"), 2), &g2);
    let (g1, g2) = (reload(&g1), reload(&g2));
    assert_eq!(read(&g1, "m4"), back);
    assert_eq!(read(&g2, "m4"), back_out);
    assert_eq!(back_out.status, MemberStatus::Transferred);
    let kinds: Vec<&str> = back_out.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["transferred_in", "transferred_out"]);
    // A member active again may leave again.
    let mut g1 = g1;
    member::end(
        &mut g1,
        &node_a(),
        &mid("m4"),
        MemberStatus::Left,
        "",
        d("2025-08-30"),
        None,
    )
    .unwrap();
}

#[test]
fn a_private_roster_survives_save_and_load_and_stays_out_of_the_roster() {
    let unit = uid("g1");
    let m1 = joining("m1", "g1", "Lê Thị Hoa", "HG-0001");
    let public = roster("g1", &[m1]);
    let mut private = Automerge::new();
    let p1 = PrivateData::parse("001190004005", "Kinh", "Không").unwrap();
    let p2 = PrivateData::parse(" 094185000123 ", "  Khmer ", "Phật   giáo").unwrap();
    assert_eq!(p2.national_id.as_ref().unwrap().as_str(), "094185000123");
    assert_eq!(p2.religion, "Phật giáo");
    member::put_private(&mut private, &node_a(), &unit, 0, &mid("m1"), &p1).unwrap();
    member::put_private(&mut private, &node_a(), &unit, 0, &mid("m2"), &p2).unwrap();

    crate::assert_shaped(&member::private_doc(&uid("g1"), 0), &private);
    let loaded = reload(&private);
    let all = member::read_private(&loaded, None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, mid("m1"));
    assert!(all[0].1 == p1, "m1's private data");
    assert_eq!(all[1].0, mid("m2"));
    assert!(all[1].1 == p2, "m2's private data");
    let one = member::read_private(&loaded, Some(&ids(&["m2", "m404"]))).unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].0 == mid("m2") && one[0].1 == p2);
    let meta = DocMeta::read(member::private_doc(&unit, 0), &loaded).unwrap();
    assert_eq!(meta.id.to_string(), "roster-private/g1");
    assert_eq!(meta.owner, uid("g1"));
    assert!(meta.addressed.is_empty());

    // Overwriting clears what is no longer known.
    let cleared = PrivateData::parse("", "Kinh", "").unwrap();
    member::put_private(&mut private, &node_a(), &unit, 0, &mid("m1"), &cleared).unwrap();
    let m1 = &member::read_private(&reload(&private), Some(&ids(&["m1"]))).unwrap()[0];
    assert!(m1.1 == cleared && m1.1.national_id.is_none());
    assert!(!cleared.is_empty() && PrivateData::default().is_empty());
    assert_eq!(format!("{:?}", p1), "PrivateData(***)", "Debug hides it");

    // Bucket 5 of the private roster.
    let mut b5 = Automerge::new();
    member::put_private(&mut b5, &node_a(), &unit, 5, &mid("m7"), &p1).unwrap();
    let meta = DocMeta::read(member::private_doc(&unit, 5), &reload(&b5)).unwrap();
    assert_eq!(meta.id.to_string(), "roster-private/g1/5");
    assert_eq!(meta.owner, unit);

    // The public roster never holds the sensitive fields.
    let public_json = format!("{:?}", public.hydrate(None));
    assert!(!public_json.contains("001190004005"), "{public_json}");
    assert!(!public_json.contains("national_id"));
    assert!(!public_json.contains("Kinh"));
}

#[test]
fn each_bad_member_field_is_named() {
    let t = today();
    let with = |f: &dyn Fn(&mut MemberInput)| {
        let mut i = input("Lê Thị Hoa", "HG-0001");
        f(&mut i);
        NewMember::parse(&i, t)
    };
    assert!(with(&|_| {}).is_ok());
    assert_invalid(with(&|i| i.national_id = "12345".into()), "national_id");
    assert_invalid(
        with(&|i| i.national_id = "0011900040051".into()),
        "national_id",
    );
    assert_invalid(
        with(&|i| i.national_id = "00119000400a".into()),
        "national_id",
    );
    assert_invalid(with(&|i| i.birth_date = "2025-09-02".into()), "birth_date");
    assert_invalid(with(&|i| i.birth_date = "17/05/1990".into()), "birth_date");
    assert_invalid(with(&|i| i.joined_on = "2025-09-02".into()), "joined_on");
    // Born 1 March 2000: may join from 1 March 2015.
    let young = |joined: &str| {
        with(&|i| {
            i.birth_date = "2000-03-01".into();
            i.joined_on = joined.into();
        })
    };
    assert_invalid(young("2015-02-28"), "joined_on");
    assert_invalid(young("2010-01-01"), "joined_on");
    assert_eq!(young("2015-03-01").unwrap().joined_on, d("2015-03-01"));
    assert_invalid(with(&|i| i.gender = "x".into()), "gender");
    assert_invalid(with(&|i| i.gender = String::new()), "gender");
    assert_invalid(with(&|i| i.card_number = "12".into()), "card_number");
    assert_invalid(with(&|i| i.card_number = "HG 0001".into()), "card_number");
    assert_invalid(with(&|i| i.card_number = "Đ-0001".into()), "card_number");
    assert_invalid(with(&|i| i.card_number = "A".repeat(25)), "card_number");
    assert_invalid(with(&|i| i.full_name = " ".into()), "full_name");
    assert_invalid(with(&|i| i.full_name = "a\u{0}b".into()), "full_name");
    assert_invalid(with(&|i| i.position = "x".repeat(101)), "position");
    assert_invalid(with(&|i| i.ethnicity = "x".repeat(51)), "ethnicity");
    for (g, want) in [
        ("Nam", Gender::Male),
        ("nữ", Gender::Female),
        (" F ", Gender::Female),
        ("khác", Gender::Other),
    ] {
        assert_eq!(with(&|i| i.gender = g.into()).unwrap().gender, want, "{g}");
    }
    let ok = with(&|i| i.national_id = String::new()).unwrap();
    assert!(ok.private.national_id.is_none(), "the CCCD is optional");
}

#[test]
fn parse_all_reports_every_bad_field_at_once() {
    let bad = MemberInput {
        full_name: "  ".into(),
        birth_date: "2030-01-01".into(),
        gender: "?".into(),
        card_number: "x".into(),
        joined_on: "2031-01-01".into(),
        position: "Công nhân".into(),
        national_id: "abc".into(),
        ethnicity: String::new(),
        religion: "r".repeat(51),
    };
    let errors = NewMember::parse_all(&bad, today()).unwrap_err();
    let fields: Vec<String> = errors
        .iter()
        .map(|e| match e {
            ModelError::Invalid { field, .. } => field.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    for f in [
        "full_name",
        "gender",
        "card_number",
        "national_id",
        "birth_date",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    assert_eq!(fields.len(), 5, "{fields:?}");
    // One bad private field hides the other: national_id is checked first.
    assert!(!fields.iter().any(|f| f == "religion"));
    // `parse` reports the first of them.
    assert_invalid(NewMember::parse(&bad, today()), "full_name");

    // Unparseable dates are reported as such, without a date-order error.
    let unparsable = MemberInput {
        birth_date: "soon".into(),
        joined_on: "later".into(),
        ..input("Lê Thị Hoa", "HG-0001")
    };
    let errors = NewMember::parse_all(&unparsable, today()).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].to_string().split(':').next(), Some("birth_date"));
    assert_eq!(errors[1].to_string().split(':').next(), Some("joined_on"));
    assert!(NewMember::parse_all(&input("Lê Thị Hoa", "HG-0001"), today()).is_ok());
}

#[test]
fn rejected_member_edits_leave_the_roster_unchanged() {
    let m1 = joining("m1", "g1", "Lê Thị Hoa", "HG-0001");
    let m2 = joining("m2", "g1", "Trần Văn Bình", "HG-0002");
    let mut doc = roster("g1", &[m1.clone(), m2]);
    let upd = |u: MemberUpdate| {
        move |doc: &mut Automerge| member::update(doc, &node_a(), &mid("m1"), &u, today())
    };
    assert_rejected(
        &mut doc,
        "birth_date",
        upd(MemberUpdate {
            birth_date: Some(d("2026-01-01")),
            ..MemberUpdate::default()
        }),
    );
    assert_rejected(
        &mut doc,
        "joined_on",
        upd(MemberUpdate {
            joined_on: Some(d("2004-05-16")),
            ..MemberUpdate::default()
        }),
    );
    assert_rejected(
        &mut doc,
        "joined_on",
        upd(MemberUpdate {
            birth_date: Some(d("2000-01-01")),
            ..MemberUpdate::default()
        }),
    );
    assert_rejected(
        &mut doc,
        "full_name",
        upd(MemberUpdate {
            full_name: Some("\t".into()),
            ..MemberUpdate::default()
        }),
    );
    // full_name is written first, then position is refused: the whole
    // automerge transaction rolls back.
    assert_rejected(
        &mut doc,
        "position",
        upd(MemberUpdate {
            full_name: Some("Tên mới".into()),
            gender: Some(Gender::Male),
            position: Some("p".repeat(101)),
            ..MemberUpdate::default()
        }),
    );
    assert_eq!(read(&doc, "m1"), m1);

    let end = |status: MemberStatus, reason: &'static str, on: &'static str| {
        move |doc: &mut Automerge| {
            member::end(doc, &node_a(), &mid("m1"), status, reason, d(on), None)
        }
    };
    assert_rejected(
        &mut doc,
        "status",
        end(MemberStatus::Active, "x", "2025-01-01"),
    );
    assert_rejected(
        &mut doc,
        "effective_on",
        end(MemberStatus::Left, "x", "2012-02-29"),
    );
    assert_rejected(
        &mut doc,
        "reason",
        end(MemberStatus::Ceased, " ", "2025-01-01"),
    );

    member::end(
        &mut doc,
        &node_a(),
        &mid("m1"),
        MemberStatus::Left,
        "",
        d("2025-01-01"),
        None,
    )
    .unwrap();
    for status in [
        MemberStatus::Left,
        MemberStatus::Ceased,
        MemberStatus::Transferred,
    ] {
        assert_rejected(&mut doc, "member_id", end(status, "again", "2025-02-01"));
    }

    // Unknown members and duplicates.
    let heads = doc.get_heads();
    let e = member::end(
        &mut doc,
        &node_a(),
        &mid("m404"),
        MemberStatus::Left,
        "",
        today(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, ModelError::NotFound { what: "member", .. }),
        "{e:?}"
    );
    let e = member::update(
        &mut doc,
        &node_a(),
        &mid("m404"),
        &MemberUpdate::default(),
        today(),
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::NotFound { .. }), "{e:?}");
    let dup = joining("m2", "g1", "Someone Else", "HG-0099");
    let e = member::add(&mut doc, &node_a(), &uid("g1"), 0, &dup).unwrap_err();
    assert!(
        matches!(e, ModelError::AlreadyExists { what: "member", .. }),
        "{e:?}"
    );
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(read(&doc, "m2").full_name, "Trần Văn Bình");

    // An update that changes nothing makes no change.
    member::update(
        &mut doc,
        &node_b(),
        &mid("m2"),
        &MemberUpdate {
            full_name: Some("Trần  Văn Bình".into()),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
    assert_eq!(doc.get_heads(), heads, "no empty changes");

    assert_invalid(PrivateData::parse("0011900040", "", ""), "national_id");
    assert_invalid(PrivateData::parse("", "", &"r".repeat(51)), "religion");
}

#[test]
fn status_and_gender_strings_round_trip() {
    for s in [
        MemberStatus::Active,
        MemberStatus::Transferred,
        MemberStatus::Left,
        MemberStatus::Ceased,
    ] {
        assert_eq!(MemberStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(MemberStatus::parse("retired"), None);
    for g in [Gender::Male, Gender::Female, Gender::Other] {
        assert_eq!(Gender::parse("gender", g.as_str()).unwrap(), g);
    }
}

#[test]
fn coming_back_keeps_corrections_made_in_the_other_unit() {
    let m = joining("m1", "g1", "Võ Thị Dung", "HG-0004");
    let mut g1 = roster("g1", &[m]);
    let out = member::end(
        &mut g1,
        &node_a(),
        &mid("m1"),
        MemberStatus::Transferred,
        "",
        d("2025-03-01"),
        Some(&uid("g2")),
    )
    .unwrap();
    let mut g2 = Automerge::new();
    member::transfer_in(&mut g2, &node_b(), &uid("g2"), 0, &out, "", d("2025-03-01")).unwrap();
    let corrected = member::update(
        &mut g2,
        &node_b(),
        &mid("m1"),
        &MemberUpdate {
            birth_date: Some(d("1991-01-02")),
            gender: Some(Gender::Male),
            joined_on: Some(d("2013-04-05")),
            ..MemberUpdate::default()
        },
        today(),
    )
    .unwrap();
    let back_out = member::end(
        &mut g2,
        &node_b(),
        &mid("m1"),
        MemberStatus::Transferred,
        "",
        d("2025-08-01"),
        Some(&uid("g1")),
    )
    .unwrap();
    let back = member::transfer_in(
        &mut g1,
        &node_a(),
        &uid("g1"),
        0,
        &back_out,
        "",
        d("2025-08-01"),
    )
    .unwrap();
    assert_eq!(back.birth_date, corrected.birth_date);
    assert_eq!(back.gender, corrected.gender);
    assert_eq!(back.joined_on, corrected.joined_on);
}

#[test]
fn a_member_already_active_here_cannot_transfer_in() {
    let m = joining("m1", "g1", "Võ Thị Dung", "HG-0004");
    let mut g1 = roster("g1", std::slice::from_ref(&m));
    let from_elsewhere = member::Member {
        unit: uid("g2"),
        ..m
    };
    assert_rejected(&mut g1, "member_id", |doc| {
        member::transfer_in(
            doc,
            &node_a(),
            &uid("g1"),
            0,
            &from_elsewhere,
            "",
            d("2025-05-01"),
        )
    });
}
