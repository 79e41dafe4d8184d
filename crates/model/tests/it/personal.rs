//! Personal data in the model: de-identification of a roster record and of
//! a private roster entry (what goes, what stays, what the history keeps,
//! concurrent edits), the private-depth rule of the unit tree, and errors
//! and `Debug` output that never repeat a name, CCCD or birth date.

use automerge::{Automerge, ReadDoc, Value};
use hopluu_model::member::{
    self, DEIDENTIFIED_NAME, Deidentified, MemberInput, MemberStatus, MemberUpdate, NewMember,
    PrivateData,
};
use hopluu_model::tree::TreeNode;
use hopluu_model::unit::UnitStatus;
use hopluu_model::{KindId, ModelError, UnitTree};

use crate::{d, input, joining, mid, node_a, node_b, roster, today, uid};

const NAME: &str = "Ksor H'Bia Tmâm";
const CCCD: &str = "079912345678";

fn request() -> Deidentified {
    Deidentified::parse(
        d("2025-09-01").days_since_epoch() * 86_400_000 + 3_723_000,
        "hg-node",
        "admin lan",
        "  đơn   yêu cầu của đoàn viên ",
        "15/ĐN",
    )
    .unwrap()
}

/// A roster of g1 with Ksor, who moved there from g2 with a reason that
/// names her, then took a position.
fn her_roster() -> Automerge {
    let mut m = joining("m1", "g2", NAME, "HG-0001");
    m.position = "Thủ quỹ".into();
    let mut doc = roster("g1", &[]);
    member::transfer_in(
        &mut doc,
        &node_a(),
        &uid("g1"),
        0,
        &m,
        &format!("chuyển đến theo đơn của {NAME}"),
        d("2024-03-01"),
    )
    .unwrap();
    doc
}

fn precondition<T: std::fmt::Debug>(r: Result<T, ModelError>) -> (String, String) {
    match r {
        Err(ModelError::Precondition { field, reason }) => (field, reason),
        other => panic!("expected a precondition error, got {other:?}"),
    }
}

/// Every value of the document, conflicts included, as text.
fn everything(doc: &Automerge) -> String {
    fn walk(doc: &Automerge, obj: &automerge::ObjId, out: &mut String) {
        let props: Vec<automerge::Prop> = match doc.object_type(obj) {
            Ok(automerge::ObjType::Map) => doc.keys(obj).map(automerge::Prop::Map).collect(),
            _ => (0..doc.length(obj)).map(automerge::Prop::Seq).collect(),
        };
        for p in props {
            for (v, id) in doc.get_all(obj, p).unwrap() {
                match v {
                    Value::Object(_) => walk(doc, &id, out),
                    Value::Scalar(s) => out.push_str(&format!("{s} ")),
                }
            }
        }
    }
    let mut out = String::new();
    walk(doc, &automerge::ROOT, &mut out);
    out
}

#[test]
fn the_request_is_checked_and_stamped_in_utc() {
    let r = request();
    assert_eq!(r.at, "2025-09-01T01:02:03Z");
    assert_eq!(r.by, "hg-node");
    assert_eq!(r.operator, "admin lan");
    assert_eq!(r.reason, "đơn yêu cầu của đoàn viên");
    assert_eq!(r.reference, "15/ĐN");
    let e = Deidentified::parse(0, "n", "", "  ", "").unwrap_err();
    assert_eq!(e.to_string(), "reason: must not be empty");
    assert!(Deidentified::parse(0, "n", "", "x", &"9".repeat(101)).is_err());
}

#[test]
fn deidentify_removes_what_identifies_and_keeps_what_is_counted() {
    let mut doc = her_roster();
    let before = doc.get_heads();
    let m = member::deidentify(&mut doc, &node_b(), &mid("m1"), &request()).unwrap();
    assert_eq!(m.full_name, DEIDENTIFIED_NAME);
    assert_eq!(m.birth_date, None);
    assert_eq!(m.position, "");
    assert_eq!(m.status_reason, "");
    assert_eq!(m.history.len(), 1);
    assert_eq!(m.history[0].reason, "");
    // What the statistics count stays.
    assert_eq!(m.history[0].kind, "transferred_in");
    assert_eq!(m.history[0].on, d("2024-03-01"));
    assert_eq!(m.history[0].other_unit, Some(uid("g2")));
    assert_eq!(m.gender, member::Gender::Female);
    assert_eq!(m.card_number.as_str(), "HG-0001");
    assert_eq!(m.joined_on, d("2012-03-01"));
    assert_eq!(m.status, MemberStatus::Active);
    assert_eq!(m.deidentified, Some(request()));
    // The current state holds none of it, whoever reads it.
    crate::assert_shaped(&member::roster_doc(&uid("g1"), 0), &doc);
    let state = everything(&crate::reload(&doc));
    for gone in [NAME, "1990-05-17", "Thủ quỹ"] {
        assert!(!state.contains(gone), "{gone:?} in {state}");
    }
    assert!(state.contains("đơn yêu cầu của đoàn viên") && state.contains("15/ĐN"));
    // One change, and the diff names the member (the projection follows).
    assert_eq!(doc.get_changes(&before).len(), 1);
    let touched = member::touched_members(&doc.diff(&before, &doc.get_heads())).unwrap();
    assert!(touched.contains("m1"));
    // The limit: automerge keeps every change, so the history has it.
    let members = match doc.get_at(&automerge::ROOT, "members", &before).unwrap() {
        Some((Value::Object(_), id)) => id,
        other => panic!("{other:?}"),
    };
    let rec = match doc.get_at(&members, "m1", &before).unwrap() {
        Some((Value::Object(_), id)) => id,
        other => panic!("{other:?}"),
    };
    let old = doc.get_at(&rec, "full_name", &before).unwrap().unwrap().0;
    assert_eq!(old.as_str(), Some(NAME));
}

#[test]
fn a_deidentified_record_takes_no_name_again() {
    let mut doc = her_roster();
    member::deidentify(&mut doc, &node_b(), &mid("m1"), &request()).unwrap();
    assert!(!member::needs_deidentify(&doc, &mid("m1")));
    let heads = doc.get_heads();
    let (field, reason) = precondition(member::deidentify(
        &mut doc,
        &node_a(),
        &mid("m1"),
        &request(),
    ));
    assert_eq!(field, "member_id");
    assert!(reason.contains("de-identified already, at 2025-09-01T01:02:03Z by hg-node"));
    for upd in [
        MemberUpdate {
            full_name: Some(NAME.into()),
            ..Default::default()
        },
        MemberUpdate {
            birth_date: Some(d("1990-05-17")),
            ..Default::default()
        },
    ] {
        precondition(member::update(
            &mut doc,
            &node_a(),
            &mid("m1"),
            &upd,
            today(),
        ));
    }
    assert_eq!(doc.get_heads(), heads, "refusals change nothing");
    // Other fields go on: a joining date has no birth date to check against.
    let m = member::update(
        &mut doc,
        &node_a(),
        &mid("m1"),
        &MemberUpdate {
            joined_on: Some(d("2013-01-01")),
            position: Some("Tổ trưởng".into()),
            ..Default::default()
        },
        today(),
    )
    .unwrap();
    assert_eq!((m.joined_on, m.birth_date), (d("2013-01-01"), None));
    // A position set since is removed by a second request.
    assert!(member::needs_deidentify(&doc, &mid("m1")));
    let again = member::deidentify(&mut doc, &node_a(), &mid("m1"), &request()).unwrap();
    assert_eq!(again.position, "");
}

#[test]
fn transfers_carry_the_deidentification() {
    let mut g1 = her_roster();
    member::deidentify(&mut g1, &node_b(), &mid("m1"), &request()).unwrap();
    let out = member::end(
        &mut g1,
        &node_a(),
        &mid("m1"),
        MemberStatus::Transferred,
        "",
        d("2025-01-01"),
        Some(&uid("g3")),
    )
    .unwrap();
    let mut g3 = roster("g3", &[]);
    let arrived =
        member::transfer_in(&mut g3, &node_a(), &uid("g3"), 0, &out, "", d("2025-01-01")).unwrap();
    assert_eq!(arrived.full_name, DEIDENTIFIED_NAME);
    assert_eq!(arrived.birth_date, None);
    assert_eq!(arrived.deidentified, Some(request()));
    assert!(!everything(&g3).contains(NAME));
    // Back to a unit whose old record was not de-identified: it is now.
    let mut g2 = roster("g2", &[joining("m1", "g2", NAME, "HG-0001")]);
    let left = member::end(
        &mut g2,
        &node_a(),
        &mid("m1"),
        MemberStatus::Transferred,
        &format!("{NAME} chuyển đi"),
        d("2020-01-01"),
        Some(&uid("g3")),
    )
    .unwrap();
    assert!(left.status_reason.contains(NAME));
    let from_g3 = member::end(
        &mut g3,
        &node_a(),
        &mid("m1"),
        MemberStatus::Transferred,
        "",
        d("2025-02-01"),
        Some(&uid("g2")),
    )
    .unwrap();
    let back = member::transfer_in(
        &mut g2,
        &node_a(),
        &uid("g2"),
        0,
        &from_g3,
        "",
        d("2025-02-01"),
    )
    .unwrap();
    assert_eq!(back.full_name, DEIDENTIFIED_NAME);
    assert!(back.deidentified.is_some());
    let state = everything(&g2);
    assert!(!state.contains(NAME), "{state}");
    assert!(!state.contains("1990-05-17"), "{state}");
}

#[test]
fn a_name_written_concurrently_is_hidden_then_removed_by_a_repeated_request() {
    let base = her_roster();
    let mut province = base.fork();
    let mut district = base.fork();
    member::deidentify(&mut province, &node_a(), &mid("m1"), &request()).unwrap();
    // The district corrects her name before it hears of the request.
    member::update(
        &mut district,
        &node_b(),
        &mid("m1"),
        &MemberUpdate {
            full_name: Some(format!("{NAME} B")),
            ..Default::default()
        },
        today(),
    )
    .unwrap();
    province.merge(&mut district.clone()).unwrap();
    // Reads never show it: a de-identified record shows the marker...
    let m = member::read(&province, &mid("m1")).unwrap().unwrap();
    assert_eq!(
        (m.full_name.as_str(), m.birth_date),
        (DEIDENTIFIED_NAME, None)
    );
    // ...but the document's current state holds the concurrent value (as
    // the winner or a conflict) until the request is repeated.
    assert!(everything(&province).contains(NAME));
    assert!(member::needs_deidentify(&province, &mid("m1")));
    member::deidentify(&mut province, &node_a(), &mid("m1"), &request()).unwrap();
    assert!(!everything(&province).contains(NAME));
    assert!(!member::needs_deidentify(&province, &mid("m1")));
    // And the district, once merged, holds none of it either.
    district.merge(&mut province.clone()).unwrap();
    assert!(!everything(&district).contains(NAME));
}

#[test]
fn forget_private_removes_the_entry_from_the_current_state() {
    let mut doc = Automerge::new();
    let data = PrivateData::parse(CCCD, "Brâu", "Bửu Sơn Kỳ Hương").unwrap();
    let other = PrivateData::parse("001090012345", "Kinh", "").unwrap();
    member::put_private(&mut doc, &node_a(), &uid("g1"), 0, &mid("m1"), &data).unwrap();
    member::put_private(&mut doc, &node_a(), &uid("g1"), 0, &mid("m2"), &other).unwrap();
    let before = doc.get_heads();
    assert!(member::forget_private(&mut doc, &node_b(), &mid("m1")).unwrap());
    let left = member::read_private(&doc, None).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, mid("m2"));
    let state = everything(&crate::reload(&doc));
    for gone in [CCCD, "Brâu", "Bửu Sơn Kỳ Hương"] {
        assert!(!state.contains(gone), "{gone:?} in {state}");
    }
    // The diff names her, so the projection can drop her row.
    let touched = member::touched_members(&doc.diff(&before, &doc.get_heads())).unwrap();
    assert_eq!(touched.into_iter().collect::<Vec<_>>(), ["m1"]);
    // Nothing left: no change.
    let heads = doc.get_heads();
    assert!(!member::forget_private(&mut doc, &node_b(), &mid("m1")).unwrap());
    assert_eq!(doc.get_heads(), heads);
    // A late write of the same entry, concurrent with the removal, edits
    // the removed map: it does not bring the entry back.
    let mut late = Automerge::new();
    late.merge(&mut doc.clone()).unwrap();
    let mut lagging = doc.fork_at(&before).unwrap();
    member::put_private(&mut lagging, &node_a(), &uid("g1"), 0, &mid("m1"), &data).unwrap();
    late.merge(&mut lagging).unwrap();
    assert_eq!(member::read_private(&late, None).unwrap().len(), 1);
}

#[test]
fn the_tree_says_which_nodes_hold_personal_data() {
    let mut tree = UnitTree::new();
    let node = |parent: Option<&str>| TreeNode {
        parent: parent.map(uid),
        kind: KindId::parse("kind", "k").unwrap(),
        status: UnitStatus::Active,
        name: "x".into(),
    };
    tree.upsert(uid("vn"), node(None));
    tree.upsert(uid("p1"), node(Some("vn")));
    tree.upsert(uid("d1"), node(Some("p1")));
    assert!(!tree.holds_private(&uid("vn"), 1));
    assert!(tree.holds_private(&uid("p1"), 1));
    assert!(tree.holds_private(&uid("d1"), 1));
    assert!(tree.holds_private(&uid("vn"), 0));
    assert!(!tree.holds_private(&uid("d1"), 3));
    // A node that does not know its unit yet holds nothing.
    assert!(!tree.holds_private(&uid("x"), 0));
    let e = tree
        .check_holds_private(&uid("vn"), 1, "national_id")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "national_id: this node (depth 0) does not hold personal data; private_depth is 1"
    );
    assert!(matches!(e, ModelError::Precondition { .. }));
}

#[test]
fn errors_and_debug_never_repeat_personal_data() {
    let shifted = MemberInput {
        full_name: "1987-04-23".into(),
        birth_date: NAME.into(),
        gender: "Kinh".into(),
        joined_on: "1987-04-23".into(),
        national_id: format!("{CCCD}9"),
        ethnicity: "Brâu".repeat(20),
        religion: "Bửu Sơn\u{7}".into(),
        ..input(NAME, "HG-0001")
    };
    let errors = NewMember::parse_all(&shifted, today()).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    let born_later = MemberInput {
        birth_date: "2001-02-03".into(),
        joined_on: "2009-02-03".into(),
        ..input(NAME, "HG-0001")
    };
    let future = MemberInput {
        birth_date: "2031-02-03".into(),
        ..input(NAME, "HG-0001")
    };
    let mut more: Vec<ModelError> = [born_later, future]
        .iter()
        .map(|i| NewMember::parse(i, today()).unwrap_err())
        .collect();
    more.push(PrivateData::parse("", &"Brâu".repeat(20), "").unwrap_err());
    more.push(PrivateData::parse("", "", "Bửu Sơn\u{7}").unwrap_err());
    for e in errors.iter().cloned().chain(more) {
        let text = e.to_string();
        for secret in [
            NAME,
            CCCD,
            "1987-04-23",
            "2001-02-03",
            "2031-02-03",
            "Brâu",
            "Kinh",
            "Bửu Sơn",
        ] {
            assert!(!text.contains(secret), "{text:?} repeats {secret:?}");
        }
    }
    let id_err = hopluu_model::UnitId::parse("unit_id", NAME).unwrap_err();
    assert!(!id_err.to_string().contains(NAME), "{id_err}");
    // Debug shows none of it either.
    let new = NewMember::parse(&input(NAME, "HG-0001"), today()).unwrap();
    let m = member::joining(mid("m1"), uid("g1"), &new);
    let upd = MemberUpdate {
        full_name: Some(NAME.into()),
        birth_date: Some(d("1990-05-17")),
        ..Default::default()
    };
    for debug in [
        format!("{:?}", input(NAME, "HG-0001")),
        format!("{new:?}"),
        format!("{m:?}"),
        format!("{upd:?}"),
    ] {
        for secret in [NAME, "1990-05-17", "001190004005", "Kinh"] {
            assert!(!debug.contains(secret), "{debug} shows {secret:?}");
        }
    }
}
