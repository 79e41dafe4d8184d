//! The shape of every document kind ([`hopluu_model::shape::check`]) as a
//! receiving node applies it to a foreign writer's change: each misshapen
//! value, wrong type or unknown path is refused naming the field, for
//! every kind, while the node's own writes pass (checked in each kind's
//! round-trip test with `assert_shaped`).

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue};
use hopluu_model::award::{self, AwardCatalogue, NewProposal};
use hopluu_model::campaign::{self, NewCampaign};
use hopluu_model::emulation::{self, NewInitiative};
use hopluu_model::hosting::{self, NodeInfo, NodeStatus};
use hopluu_model::reorg::{self, Outcome, PlanInput, Recorded, StepInput};
use hopluu_model::{CampaignId, DecisionId, DocId, ModelError, NodeId, ProposalId, shape};

use crate::{d, joining, member, new_unit, node_a, roster, today, uid, unit_doc};

/// `doc` after one foreign change made by `f`, checked against `id`'s
/// shape for that change alone; the field the refusal names.
fn refused(
    id: &DocId,
    doc: &Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> String {
    let mut d = doc.fork();
    let before = d.get_heads();
    let mut tx = d.transaction();
    f(&mut tx);
    tx.commit();
    let field = match shape::check(id, &d, &before) {
        Err(ModelError::Invalid { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("{id}: a misshapen change was not refused: {other:?}"),
    };
    // A document that arrives whole (nothing of it here before) is walked
    // in one pass instead of diffed: it is refused naming the same field.
    match shape::check(id, &d, &[]) {
        Err(ModelError::Invalid { field: whole, .. }) => assert_eq!(whole, field, "{id}"),
        other => panic!("{id}: the whole document was not refused: {other:?}"),
    }
    field
}

fn obj(doc: &Automerge, at: &automerge::ObjId, key: &str) -> automerge::ObjId {
    doc.get(at, key).unwrap().unwrap().1
}

#[test]
fn a_unit_record_refuses_bad_values_wrong_types_and_unknown_paths() {
    let (doc, _) = new_unit(
        "g1",
        "Công đoàn cơ sở Trường THCS Vị Thanh",
        "grassroots",
        Some("hg"),
    );
    let id = unit_doc("g1");
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(ROOT, "status", "dissolved").unwrap()),
        "status"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx
            .put(ROOT, "parent", "not an id!")
            .unwrap()),
        "parent"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx
            .put(ROOT, "closed_on", "31/08/2025")
            .unwrap()),
        "closed_on"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(ROOT, "name", 42).unwrap()),
        "name"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(ROOT, "colour", "red").unwrap()),
        "colour"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx
            .put(ROOT, "name", "x".repeat(201))
            .unwrap()),
        "name",
        "longer than the node itself accepts"
    );
    let names = obj(&doc, &ROOT, "names");
    assert_eq!(
        refused(&id, &doc, |tx| {
            let first = tx.get(&names, 0).unwrap().unwrap().1;
            tx.put(&first, "effective_on", "tomorrow").unwrap();
        }),
        "names[0].effective_on"
    );
    assert_eq!(
        refused(&id, &doc, |tx| {
            let t = tx.put_object(ROOT, "close_reason", ObjType::Text).unwrap();
            tx.splice_text(&t, 0, 0, "Sáp nhập").unwrap();
        }),
        "close_reason"
    );
}

#[test]
fn a_campaign_and_an_emulation_record_refuse_what_their_writers_never_write() {
    let mut doc = Automerge::new();
    let new = NewCampaign::parse(
        Some("c2025"),
        "hg",
        "Thi đua lao động giỏi",
        "",
        "2025-01-01",
        "2025-12-31",
        "",
    )
    .unwrap();
    campaign::create(&mut doc, &node_a(), &new).unwrap();
    let id = DocId::Campaign(CampaignId::parse("c", "c2025").unwrap());
    let plans = obj(&doc, &ROOT, "plans");
    assert_eq!(
        refused(&id, &doc, |tx| {
            let p = tx.put_object(&plans, "g1", ObjType::Map).unwrap();
            tx.put(&p, "initiative_quota", -3).unwrap();
        }),
        "plans.g1.initiative_quota"
    );
    assert_eq!(
        refused(&id, &doc, |tx| {
            let p = tx.put_object(&plans, "g1", ObjType::Map).unwrap();
            tx.put(&p, "initiative_quota", "ten").unwrap();
        }),
        "plans.g1.initiative_quota"
    );
    assert_eq!(
        refused(&id, &doc, |tx| {
            tx.put_object(&plans, "Not A Unit!", ObjType::Map).unwrap();
        }),
        "plans.Not A Unit!"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(ROOT, "status", "paused").unwrap()),
        "status"
    );
    assert_eq!(
        refused(&id, &doc, |tx| {
            tx.put(ROOT, "starts_on", ScalarValue::Timestamp(1_735_689_600_000))
                .unwrap();
        }),
        "starts_on"
    );

    let (unit, camp) = (uid("g1"), CampaignId::parse("c", "c2025").unwrap());
    let mut e = Automerge::new();
    let i = emulation::record_initiative(
        &mut e,
        &node_a(),
        &unit,
        &camp,
        &NewInitiative::parse(
            "Cải tiến dây chuyền",
            &["Nguyễn Văn An".into()],
            1_000_000,
            "2025-04-01",
            today(),
        )
        .unwrap(),
    )
    .unwrap();
    let id = emulation::doc_id(&unit, &camp);
    let inits = obj(&e, &ROOT, "initiatives");
    let one = obj(&e, &inits, i.id.as_str());
    let field = format!("initiatives.{}.", i.id);
    assert_eq!(
        refused(&id, &e, |tx| tx.put(&one, "status", "approved").unwrap()),
        format!("{field}status")
    );
    assert_eq!(
        refused(&id, &e, |tx| tx.put(&one, "value_vnd", -1).unwrap()),
        format!("{field}value_vnd")
    );
    assert_eq!(
        refused(&id, &e, |tx| tx.put(&one, "value_vnd", 1.5).unwrap()),
        format!("{field}value_vnd")
    );
    assert_eq!(
        refused(&id, &e, |tx| tx.put(&one, "priority", 1).unwrap()),
        format!("{field}priority")
    );
    assert_eq!(
        refused(&id, &e, |tx| {
            let authors = tx.get(&one, "authors").unwrap().unwrap().1;
            tx.insert(&authors, 1, "Trần\u{7}Bình").unwrap();
        }),
        format!("{field}authors[1]")
    );
    assert_eq!(
        refused(&id, &e, |tx| tx.put(ROOT, "registered", "yes").unwrap()),
        "registered"
    );
    assert_eq!(
        refused(&id, &e, |tx| {
            let works = tx.get(ROOT, "works").unwrap().unwrap().1;
            tx.put_object(&works, "Not A Work!", ObjType::Map).unwrap();
        }),
        "works.Not A Work!"
    );
}

#[test]
fn proposals_awards_decisions_and_node_records_refuse_bad_values() {
    let cat = AwardCatalogue::default();
    let t = cat.parse("award_type", "bang-khen-cap-tinh").unwrap();
    let mut p = Automerge::new();
    award::propose(
        &mut p,
        &node_a(),
        &NewProposal {
            id: ProposalId::parse("p", "p1").unwrap(),
            proposing_unit: uid("g1"),
            addressed_unit: uid("hg"),
            award_type: t,
            campaign: None,
            candidates: vec![award::Recipient::Unit(uid("g1"))],
            reason: "Hoàn thành xuất sắc nhiệm vụ".into(),
            proposed_on: d("2025-07-01"),
        },
    )
    .unwrap();
    let id = DocId::Proposal(ProposalId::parse("p", "p1").unwrap());
    assert_eq!(
        refused(&id, &p, |tx| tx.put(ROOT, "status", "maybe").unwrap()),
        "status"
    );
    assert_eq!(
        refused(&id, &p, |tx| tx.put(ROOT, "award_id", "A 1").unwrap()),
        "award_id"
    );
    let candidates = obj(&p, &ROOT, "candidates");
    assert_eq!(
        refused(&id, &p, |tx| {
            let c = tx.insert_object(&candidates, 1, ObjType::Map).unwrap();
            tx.put(&c, "unit", "g2").unwrap();
            tx.put(&c, "member", 7).unwrap();
        }),
        "candidates[1].member"
    );

    let rec = Recorded {
        plan: PlanInput {
            id: "d1".into(),
            number: "01/QĐ-TLĐ".into(),
            title: "Sắp xếp tổ chức".into(),
            decided_on: "2025-06-27".into(),
            effective_on: "2025-07-01".into(),
            issuing_unit: "vn".into(),
            steps: vec![StepInput {
                kind: "move".into(),
                units: vec!["g1".into()],
                to: "p2".into(),
                ..StepInput::default()
            }],
        },
        id: DecisionId::parse("id", "d1").unwrap(),
        applied_at: "2025-07-01T00:00:00Z".into(),
        applied_by: "vn".into(),
        outcome: Outcome::default(),
        seals: Vec::new(),
        given_up: Vec::new(),
    };
    let mut dec = Automerge::new();
    reorg::write(&mut dec, &node_a(), &rec).unwrap();
    let id = DocId::Decision(rec.id.clone());
    crate::assert_shaped(&id, &dec);
    let steps = obj(&dec, &ROOT, "steps");
    assert_eq!(
        refused(&id, &dec, |tx| {
            let s = tx.get(&steps, 0).unwrap().unwrap().1;
            tx.put(&s, "kind", "annex").unwrap();
        }),
        "steps[0].kind"
    );
    let outcome = obj(&dec, &ROOT, "outcome");
    assert_eq!(
        refused(&id, &dec, |tx| tx
            .put(&outcome, "members_ceased", -2_600_000)
            .unwrap()),
        "outcome.members_ceased"
    );
    assert_eq!(
        refused(&id, &dec, |tx| {
            let seals = tx.get(ROOT, "seals").unwrap().unwrap().1;
            let s = tx.insert_object(&seals, 0, ObjType::Map).unwrap();
            tx.put(&s, "doc", "roster/g1").unwrap();
            let heads = tx.put_object(&s, "heads", ObjType::List).unwrap();
            tx.insert(&heads, 0, "not-a-hash").unwrap();
        }),
        "seals[0].heads[0]"
    );

    let mut node = Automerge::new();
    let info = NodeInfo {
        id: "hau-giang".into(),
        unit: uid("hg"),
        path: vec![uid("vn"), uid("hg")],
        upstream: "https://vn.congdoan.vn:7443".into(),
        address: "https://hg.congdoan.vn:7443".into(),
        status: NodeStatus::Active,
        retired_at: String::new(),
    };
    hosting::publish(&mut node, &node_a(), &info).unwrap();
    let id = DocId::Node(NodeId::parse("n", "hau-giang").unwrap());
    crate::assert_shaped(&id, &node);
    assert_eq!(
        refused(&id, &node, |tx| tx.put(ROOT, "status", "asleep").unwrap()),
        "status"
    );
    assert_eq!(
        refused(&id, &node, |tx| {
            let path = tx.get(ROOT, "path").unwrap().unwrap().1;
            tx.insert(&path, 2, "Hậu Giang").unwrap();
        }),
        "path[2]"
    );
    assert_eq!(
        refused(&id, &node, |tx| {
            let seals = tx.get(ROOT, "seals").unwrap().unwrap().1;
            let s = tx.put_object(&seals, "d1", ObjType::Map).unwrap();
            let docs = tx.put_object(&s, "docs", ObjType::Map).unwrap();
            tx.put_object(&docs, "no/such/kind", ObjType::List).unwrap();
        }),
        "seals.d1.docs.no/such/kind"
    );
}

#[test]
fn a_roster_refuses_an_unknown_member_field_and_a_private_field_in_the_roster() {
    let doc = roster("g1", &[joining("m1", "g1", "Lê Thị Hoa", "HG-0001")]);
    let id = member::roster_doc(&uid("g1"), 0);
    let members = obj(&doc, &ROOT, "members");
    let m1 = obj(&doc, &members, "m1");
    assert_eq!(
        refused(&id, &doc, |tx| tx
            .put(&m1, "national_id", "001190004005")
            .unwrap()),
        "members.m1.national_id",
        "personal data belongs in the private roster"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(&m1, "status", "on-leave").unwrap()),
        "members.m1.status"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(ROOT, "bucket", -1).unwrap()),
        "bucket"
    );
    assert_eq!(
        refused(&id, &doc, |tx| tx.put(&m1, "note", "").unwrap()),
        "members.m1.note"
    );
}
