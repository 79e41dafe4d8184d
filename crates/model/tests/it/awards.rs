//! Award proposals (`proposal/{id}`) and decisions (`award/{id}`): the
//! catalogue, who may grant what to whom, revocation.

use automerge::Automerge;
use hopluu_model::award::{
    self, AwardCatalogue, AwardType, NewAward, NewProposal, ProposalStatus, Recipient,
    RecipientKind,
};
use hopluu_model::tree::{TreeNode, UnitTree};
use hopluu_model::unit::UnitStatus;
use hopluu_model::{AwardId, CampaignId, DocId, DocMeta, KindId, ModelError, ProposalId};

use crate::{assert_invalid, assert_rejected, d, mid, node_a, node_b, reload, uid};

fn aid(s: &str) -> AwardId {
    AwardId::parse("award_id", s).unwrap()
}

fn pid(s: &str) -> ProposalId {
    ProposalId::parse("proposal_id", s).unwrap()
}

fn kind(s: &str) -> KindId {
    KindId::parse("kind", s).unwrap()
}

fn person(member: &str, unit: &str) -> Recipient {
    Recipient::Member {
        member: mid(member),
        unit: uid(unit),
    }
}

fn collective(unit: &str) -> Recipient {
    Recipient::Unit(uid(unit))
}

fn new_award<'a>(
    award_type: &'a AwardType,
    issuing_unit: &str,
    issuing_kind: &str,
    recipients: Vec<Recipient>,
) -> NewAward<'a> {
    NewAward {
        id: aid("a1"),
        issuing_unit: uid(issuing_unit),
        issuing_kind: kind(issuing_kind),
        decision_no: " 1234/QĐ-LĐLĐ ".into(),
        decided_on: d("2025-08-15"),
        effective_on: d("2025-08-20"),
        award_type,
        recipients,
        campaign: Some(CampaignId::parse("c", "c2025").unwrap()),
        proposal: Some(pid("p1")),
        reason: "Đã có thành tích xuất sắc".into(),
    }
}

fn new_proposal(award_type: &AwardType, candidates: Vec<Recipient>) -> NewProposal<'_> {
    NewProposal {
        id: pid("p1"),
        proposing_unit: uid("g1"),
        addressed_unit: uid("hg"),
        award_type,
        campaign: None,
        candidates,
        reason: "Hoàn thành xuất sắc nhiệm vụ năm 2025".into(),
        proposed_on: d("2025-07-01"),
    }
}

#[test]
fn a_proposal_survives_save_and_load_and_is_marked_decided() {
    let cat = AwardCatalogue::default();
    let t = cat.parse("award_type", "bang-khen-cap-tinh").unwrap();
    let mut doc = Automerge::new();
    let p = award::propose(
        &mut doc,
        &node_a(),
        &new_proposal(t, vec![person("m1", "g1"), collective("g1")]),
    )
    .unwrap();
    assert_eq!(p.id, pid("p1"));
    assert_eq!(p.proposing_unit, uid("g1"));
    assert_eq!(p.addressed_unit, uid("hg"));
    assert_eq!(p.award_type, kind("bang-khen-cap-tinh"));
    assert_eq!(p.campaign, None);
    assert_eq!(p.candidates, vec![person("m1", "g1"), collective("g1")]);
    assert_eq!(p.status, ProposalStatus::Pending);
    assert_eq!(p.award, None);
    let id = DocId::Proposal(pid("p1"));
    assert_eq!(award::read_proposal(&id, &reload(&doc)).unwrap(), p);

    award::mark_decided(&mut doc, &node_b(), &aid("a1")).unwrap();
    crate::assert_shaped(&id, &doc);
    let loaded = reload(&doc);
    let decided = award::read_proposal(&id, &loaded).unwrap();
    assert_eq!(decided.status, ProposalStatus::Decided);
    assert_eq!(decided.award, Some(aid("a1")));
    assert_eq!(
        decided,
        award::Proposal {
            status: ProposalStatus::Decided,
            award: Some(aid("a1")),
            ..p
        }
    );
    let meta = DocMeta::read(id, &loaded).unwrap();
    assert_eq!(meta.owner, uid("g1"), "owned by the proposing unit");
    assert_eq!(
        meta.addressed,
        vec![uid("hg")],
        "addressed to the deciding unit"
    );
}

#[test]
fn an_award_survives_save_and_load_and_revocation() {
    let cat = AwardCatalogue::default();
    let t = cat.parse("award_type", " bang-khen-cap-tinh ").unwrap();
    let recipients = vec![
        person("m1", "g2"),
        person("m2", "g1"),
        collective("g2"),
        person("m3", "g1"),
        collective("d1"),
    ];
    let mut doc = Automerge::new();
    let a = award::decide(
        &mut doc,
        &node_a(),
        &new_award(t, "hg", "provincial", recipients.clone()),
    )
    .unwrap();
    assert_eq!(a.id, aid("a1"));
    assert_eq!(a.issuing_unit, uid("hg"));
    assert_eq!(a.decision_no, "1234/QĐ-LĐLĐ");
    assert_eq!(a.decided_on, d("2025-08-15"));
    assert_eq!(a.effective_on, d("2025-08-20"));
    assert_eq!(a.award_type, kind("bang-khen-cap-tinh"));
    assert_eq!(a.level, kind("provincial"), "the issuing unit's kind");
    assert_eq!(a.recipients, recipients, "in the given order");
    assert_eq!(a.campaign.as_ref().map(CampaignId::as_str), Some("c2025"));
    assert_eq!(a.proposal, Some(pid("p1")));
    assert_eq!(a.reason, "Đã có thành tích xuất sắc");
    assert!(!a.revoked);
    assert_eq!(a.revoked_on, None);
    let id = DocId::Award(aid("a1"));
    let loaded = reload(&doc);
    assert_eq!(award::read_award(&id, &loaded).unwrap(), a);
    let meta = DocMeta::read(id.clone(), &loaded).unwrap();
    assert_eq!(meta.owner, uid("hg"), "owned by the deciding unit");
    assert_eq!(
        meta.addressed,
        vec![uid("d1"), uid("g1"), uid("g2")],
        "the recipients' units, each once"
    );

    let revoked = award::revoke(&mut doc, &node_b(), d("2025-08-31"), " Hồ sơ sai ").unwrap();
    assert!(revoked.revoked);
    assert_eq!(revoked.revoked_on, Some(d("2025-08-31")));
    assert_eq!(revoked.revoke_reason, "Hồ sơ sai");
    assert_eq!(
        revoked,
        award::Award {
            revoked: true,
            revoked_on: Some(d("2025-08-31")),
            revoke_reason: "Hồ sơ sai".into(),
            ..a
        }
    );
    crate::assert_shaped(&id, &doc);
    let loaded = reload(&doc);
    assert_eq!(award::read_award(&id, &loaded).unwrap(), revoked);
    assert_eq!(
        DocMeta::read(id, &loaded).unwrap(),
        meta,
        "revoking moves nothing"
    );
}

#[test]
fn an_award_reaches_its_recipients_units_and_no_others() {
    let cat = AwardCatalogue::default();
    let t = cat.get("bang-khen-tld").unwrap();
    let mut doc = Automerge::new();
    award::decide(
        &mut doc,
        &node_a(),
        &new_award(
            t,
            "vn",
            "central",
            vec![person("m1", "g1"), person("m2", "g1")],
        ),
    )
    .unwrap();
    let meta = DocMeta::read(DocId::Award(aid("a1")), &doc).unwrap();
    assert_eq!(meta.owner, uid("vn"));
    assert_eq!(meta.addressed, vec![uid("g1")], "deduplicated");
    let mut tree = UnitTree::new();
    for (u, p) in [
        ("vn", None),
        ("hg", Some("vn")),
        ("d1", Some("hg")),
        ("d2", Some("hg")),
        ("g1", Some("d1")),
    ] {
        tree.upsert(
            uid(u),
            TreeNode {
                parent: p.map(uid),
                kind: kind("grassroots"),
                status: UnitStatus::Active,
                name: u.into(),
            },
        );
    }
    assert!(
        tree.in_scope(&uid("d1"), &meta, 1),
        "down to the recipients"
    );
    assert!(tree.in_scope(&uid("hg"), &meta, 1));
    assert!(!tree.in_scope(&uid("d2"), &meta, 1));
}

#[test]
fn the_catalogue_says_who_grants_what_to_whom() {
    let cat = AwardCatalogue::default();
    assert_invalid(cat.parse("award_type", "huy-chuong-vang"), "award_type");
    assert_invalid(cat.parse("award_type", ""), "award_type");
    let t = |id: &str| cat.get(id).unwrap();

    // bang-khen-tld: only the central federation grants it.
    assert!(award::check_grantable(t("bang-khen-tld"), &kind("central")).is_ok());
    for k in ["provincial", "sector", "district", "grassroots"] {
        assert_invalid(
            award::check_grantable(t("bang-khen-tld"), &kind(k)),
            "award_type",
        );
    }
    assert!(award::check_grantable(t("bang-khen-cap-tinh"), &kind("provincial")).is_ok());
    assert_invalid(
        award::check_grantable(t("bang-khen-cap-tinh"), &kind("central")),
        "award_type",
    );
    assert!(award::check_grantable(t("chien-si-thi-dua"), &kind("central")).is_ok());
    assert!(award::check_grantable(t("giay-khen"), &kind("grassroots")).is_ok());
    assert!(award::check_grantable(t("giay-khen"), &kind("commune")).is_ok());
    assert_invalid(
        award::check_grantable(t("giay-khen"), &kind("provincial")),
        "award_type",
    );

    // Person-only, collective-only, both.
    for id in [
        "chien-si-thi-dua",
        "lao-dong-tien-tien",
        "bang-lao-dong-sang-tao",
    ] {
        assert_eq!(t(id).recipient, RecipientKind::Person);
        assert_invalid(
            award::check_recipients("recipients", t(id), &[person("m1", "g1"), collective("g1")]),
            "recipients",
        );
        assert!(award::check_recipients("recipients", t(id), &[person("m1", "g1")]).is_ok());
    }
    for id in ["co-thi-dua-tld", "co-thi-dua-cap-tinh"] {
        assert_eq!(t(id).recipient, RecipientKind::Collective);
        assert_invalid(
            award::check_recipients("recipients", t(id), &[person("m1", "g1")]),
            "recipients",
        );
    }
    assert!(
        award::check_recipients(
            "recipients",
            t("bang-khen-tld"),
            &[person("m1", "g1"), collective("g1")]
        )
        .is_ok()
    );
    assert_invalid(
        award::check_recipients("recipients", t("giay-khen"), &[]),
        "recipients",
    );
    let too_many: Vec<Recipient> = (0..10_001)
        .map(|i| person(&format!("m{i}"), "g1"))
        .collect();
    assert_invalid(
        award::check_recipients("recipients", t("giay-khen"), &too_many),
        "recipients",
    );
}

#[test]
fn rejected_decisions_write_nothing() {
    let cat = AwardCatalogue::default();
    let t = |id: &str| cat.get(id).unwrap();
    let mut doc = Automerge::new();
    // Not grantable by a provincial unit.
    assert_rejected(&mut doc, "award_type", |doc| {
        award::decide(
            doc,
            &node_a(),
            &new_award(
                t("bang-khen-tld"),
                "hg",
                "provincial",
                vec![person("m1", "g1")],
            ),
        )
    });
    // A person-only award to a unit.
    assert_rejected(&mut doc, "recipients", |doc| {
        award::decide(
            doc,
            &node_a(),
            &new_award(
                t("chien-si-thi-dua"),
                "hg",
                "provincial",
                vec![collective("g1")],
            ),
        )
    });
    assert_rejected(&mut doc, "recipients", |doc| {
        award::decide(
            doc,
            &node_a(),
            &new_award(t("giay-khen"), "d1", "district", vec![]),
        )
    });
    assert_rejected(&mut doc, "decision_no", |doc| {
        let mut a = new_award(t("giay-khen"), "d1", "district", vec![person("m1", "g1")]);
        a.decision_no = "  ".into();
        award::decide(doc, &node_a(), &a)
    });
    assert!(doc.get_heads().is_empty(), "nothing was written");
    // Proposals check their candidates the same way.
    assert_rejected(&mut doc, "candidates", |doc| {
        award::propose(
            doc,
            &node_a(),
            &new_proposal(t("co-thi-dua-tld"), vec![person("m1", "g1")]),
        )
    });
    assert_rejected(&mut doc, "candidates", |doc| {
        award::propose(doc, &node_a(), &new_proposal(t("giay-khen"), vec![]))
    });
    assert_rejected(&mut doc, "reason", |doc| {
        let mut p = new_proposal(t("giay-khen"), vec![person("m1", "g1")]);
        p.reason = String::new();
        award::propose(doc, &node_a(), &p)
    });
    assert!(doc.get_heads().is_empty());
}

#[test]
fn rejected_revocations_leave_the_award_unchanged() {
    let cat = AwardCatalogue::default();
    let mut doc = Automerge::new();
    award::decide(
        &mut doc,
        &node_a(),
        &new_award(
            cat.get("giay-khen").unwrap(),
            "d1",
            "district",
            vec![person("m1", "g1")],
        ),
    )
    .unwrap();
    assert_rejected(&mut doc, "revoked_on", |doc| {
        award::revoke(doc, &node_a(), d("2025-08-14"), "sai")
    });
    assert_rejected(&mut doc, "reason", |doc| {
        award::revoke(doc, &node_a(), d("2025-08-20"), "")
    });
    award::revoke(&mut doc, &node_a(), d("2025-08-15"), "Hồ sơ sai").unwrap();
    assert_rejected(&mut doc, "award_id", |doc| {
        award::revoke(doc, &node_a(), d("2025-08-20"), "again")
    });
}

#[test]
fn a_decision_or_proposal_is_written_once() {
    let cat = AwardCatalogue::default();
    let t = cat.get("giay-khen").unwrap();
    let mut doc = Automerge::new();
    let first = award::decide(
        &mut doc,
        &node_a(),
        &new_award(t, "d1", "district", vec![person("m1", "g1")]),
    )
    .unwrap();
    let heads = doc.get_heads();
    let mut again = new_award(t, "d2", "district", vec![person("m9", "g9")]);
    again.decision_no = "999/QĐ".into();
    let r = award::decide(&mut doc, &node_b(), &again);
    assert!(
        matches!(r, Err(ModelError::AlreadyExists { what: "award", .. })),
        "{r:?}"
    );
    assert_eq!(doc.get_heads(), heads);
    assert_eq!(
        award::read_award(&DocId::Award(aid("a1")), &doc).unwrap(),
        first
    );

    let mut doc = Automerge::new();
    award::propose(
        &mut doc,
        &node_a(),
        &new_proposal(t, vec![person("m1", "g1")]),
    )
    .unwrap();
    let heads = doc.get_heads();
    let r = award::propose(
        &mut doc,
        &node_b(),
        &new_proposal(t, vec![person("m2", "g1")]),
    );
    assert!(
        matches!(
            r,
            Err(ModelError::AlreadyExists {
                what: "proposal",
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(doc.get_heads(), heads);
}
