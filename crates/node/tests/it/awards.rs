//! AwardService: the catalogue, proposals addressed up the tree, decisions
//! checked against who may grant what to whom, revocation, listing by year.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

/// Members Nguyễn Văn An (Trường A), Trần Thị Bích (Nhà máy B) and Lò Văn
/// Páo (Lai Châu), by id.
async fn people(node: &Node) -> Result<[String; 3]> {
    let an = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;
    let bich = node
        .add(HG_B, person("Trần Thị Bích", "HG-0002", pb::Gender::Female))
        .await?;
    let pao = node
        .add(LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male))
        .await?;
    Ok([an.id, bich.id, pao.id])
}

fn proposal(
    proposing: &str,
    addressed: &str,
    award_type: &str,
    candidates: Vec<pb::Recipient>,
) -> pb::ProposeAwardRequest {
    pb::ProposeAwardRequest {
        proposing_unit_id: proposing.to_owned(),
        addressed_unit_id: addressed.to_owned(),
        award_type: award_type.to_owned(),
        campaign_id: None,
        candidates,
        reason: "Hoàn thành xuất sắc nhiệm vụ năm 2026".into(),
        proposed_on: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_award_catalogue() -> Result<()> {
    let node = Node::start().await?;
    let types = node
        .awards()
        .list_award_types(pb::ListAwardTypesRequest {})
        .await?
        .into_inner()
        .types;
    let get = |id: &str| {
        types
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("{id} missing from {types:?}"))
    };
    let tld = get("bang-khen-tld");
    assert_eq!(tld.kind, pb::RecipientKind::Both as i32);
    assert_eq!(tld.granting_kinds, ["central"]);
    assert_eq!(tld.min_granting_level, "central");
    assert_eq!(
        get("chien-si-thi-dua").kind,
        pb::RecipientKind::Person as i32
    );
    assert_eq!(
        get("co-thi-dua-tld").kind,
        pb::RecipientKind::Collective as i32
    );
    assert!(
        get("bang-khen-cap-tinh")
            .granting_kinds
            .contains(&"provincial".to_owned())
    );
    assert!(
        get("giay-khen")
            .granting_kinds
            .contains(&"grassroots".to_owned())
    );
    assert!(
        types
            .iter()
            .all(|t| !t.name.is_empty() && !t.granting_kinds.is_empty())
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_a_proposal_marks_it_decided() -> Result<()> {
    let node = Node::with_tree().await?;
    let [an, _, _] = people(&node).await?;
    node.launch("hg-lao-dong-gioi", HG, HG).await?;
    let mut awards = node.awards();

    let p = awards
        .propose_award(pb::ProposeAwardRequest {
            campaign_id: Some("hg-lao-dong-gioi".into()),
            proposed_on: "2026-11-10".into(),
            ..proposal(
                HG_A,
                HG,
                "bang-khen-cap-tinh",
                vec![member_recipient(&an), unit_recipient(HG_A)],
            )
        })
        .await?
        .into_inner();
    assert_eq!(p.status, pb::ProposalStatus::Pending as i32);
    assert_eq!(p.candidates.len(), 2);
    assert_eq!(p.campaign_id, "hg-lao-dong-gioi");
    assert_eq!(p.proposed_on, "2026-11-10");
    assert!(p.award_id.is_empty());

    // Listed for both the proposing and the addressed unit, nowhere else.
    let list = |unit: &str| pb::ListProposalsRequest {
        unit_id: unit.to_owned(),
    };
    for unit in [HG_A, HG] {
        let ps = awards
            .list_proposals(list(unit))
            .await?
            .into_inner()
            .proposals;
        assert_eq!(ps.len(), 1, "{unit}");
        assert_eq!(ps[0].id, p.id);
    }
    assert!(
        awards
            .list_proposals(list(LC))
            .await?
            .into_inner()
            .proposals
            .is_empty()
    );

    let a = node
        .decide(pb::DecideAwardRequest {
            proposal_id: Some(p.id.clone()),
            campaign_id: Some("hg-lao-dong-gioi".into()),
            decided_on: "2026-11-20".into(),
            ..decision(
                HG,
                "bang-khen-cap-tinh",
                vec![member_recipient(&an), unit_recipient(HG_A)],
            )
        })
        .await?;
    assert_eq!(a.proposal_id, p.id);
    assert_eq!(a.issuing_unit_id, HG);
    assert_eq!(a.decided_on, "2026-11-20");
    assert_eq!(a.effective_on, "2026-11-20");
    assert_eq!(a.recipients.len(), 2);
    assert!(!a.revoked);

    let decided = &awards
        .list_proposals(list(HG))
        .await?
        .into_inner()
        .proposals[0];
    assert_eq!(decided.status, pb::ProposalStatus::Decided as i32);
    assert_eq!(decided.award_id, a.id);

    // A decided proposal cannot be decided again.
    let mark = node.mark().await?;
    let m = expect_invalid_inner(
        node.decide(pb::DecideAwardRequest {
            proposal_id: Some(p.id.clone()),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await,
        "proposal_id",
    );
    assert!(m.contains("decided"), "{m}");
    let missing = node
        .decide(pb::DecideAwardRequest {
            proposal_id: Some("pkhongco".into()),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    node.unchanged_since(mark).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_go_up_the_tree_only() -> Result<()> {
    let node = Node::with_tree().await?;
    let [an, _, pao] = people(&node).await?;
    let mark = node.mark().await?;
    let mut awards = node.awards();
    let to_an = || vec![member_recipient(&an)];

    // Addressed to a unit that is not above the proposing one.
    for addressed in [LC, HG_A, HG_B] {
        let m = expect_invalid(
            awards
                .propose_award(proposal(HG_A, addressed, "bang-khen-cap-tinh", to_an()))
                .await,
            "addressed_unit_id",
        );
        assert!(m.contains(addressed), "{m}");
    }
    expect_invalid(
        awards
            .propose_award(proposal(HG, HG_A, "giay-khen", to_an()))
            .await,
        "addressed_unit_id",
    );
    expect_invalid(
        awards
            .propose_award(proposal(HG_A, "khong-co", "bang-khen-cap-tinh", to_an()))
            .await,
        "addressed_unit_id",
    );
    expect_invalid(
        awards
            .propose_award(proposal(HG_A, HG, "huy-chuong-vang", to_an()))
            .await,
        "award_type",
    );
    // Candidates come from the proposing unit's subtree and fit the type.
    expect_invalid(
        awards
            .propose_award(proposal(
                HG_A,
                HG,
                "bang-khen-cap-tinh",
                vec![member_recipient(&pao)],
            ))
            .await,
        "candidates[0]",
    );
    expect_invalid(
        awards
            .propose_award(proposal(
                HG_A,
                HG,
                "bang-khen-cap-tinh",
                vec![member_recipient(&an), member_recipient("mkhongco")],
            ))
            .await,
        "candidates[1]",
    );
    expect_invalid(
        awards
            .propose_award(proposal(
                HG_A,
                HG,
                "bang-khen-cap-tinh",
                vec![pb::Recipient { who: None }],
            ))
            .await,
        "candidates[0]",
    );
    expect_invalid(
        awards
            .propose_award(proposal(HG_A, HG, "bang-khen-cap-tinh", Vec::new()))
            .await,
        "candidates",
    );
    expect_invalid(
        awards
            .propose_award(proposal(
                HG_A,
                HG,
                "chien-si-thi-dua",
                vec![unit_recipient(HG_A)],
            ))
            .await,
        "candidates",
    );
    expect_invalid(
        awards
            .propose_award(pb::ProposeAwardRequest {
                reason: String::new(),
                ..proposal(HG_A, HG, "bang-khen-cap-tinh", to_an())
            })
            .await,
        "reason",
    );
    node.unchanged_since(mark).await?;

    // Proposals may skip a level: Trường A to the national federation.
    let p = awards
        .propose_award(proposal(HG_A, VN, "bang-khen-tld", to_an()))
        .await?
        .into_inner();
    assert_eq!(p.addressed_unit_id, VN);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_respect_the_catalogue() -> Result<()> {
    let node = Node::with_tree().await?;
    let [an, bich, pao] = people(&node).await?;
    let mark = node.mark().await?;

    let m = expect_invalid_inner(
        node.decide(decision(HG, "bang-khen-tld", vec![member_recipient(&an)]))
            .await,
        "award_type",
    );
    assert!(m.contains("provincial"), "{m}");
    expect_invalid_inner(
        node.decide(decision(HG, "giay-khen", vec![member_recipient(&an)]))
            .await,
        "award_type",
    );
    expect_invalid_inner(
        node.decide(decision(
            HG_A,
            "bang-khen-cap-tinh",
            vec![member_recipient(&an)],
        ))
        .await,
        "award_type",
    );
    let m = expect_invalid_inner(
        node.decide(decision(HG, "huy-chuong-vang", vec![member_recipient(&an)]))
            .await,
        "award_type",
    );
    assert!(m.contains("catalogue"), "{m}");
    let m = expect_invalid_inner(
        node.decide(decision(HG, "chien-si-thi-dua", vec![unit_recipient(HG_A)]))
            .await,
        "recipients",
    );
    assert!(m.contains("collective"), "{m}");
    expect_invalid_inner(
        node.decide(decision(
            HG,
            "co-thi-dua-cap-tinh",
            vec![unit_recipient(HG_A), member_recipient(&bich)],
        ))
        .await,
        "recipients",
    );
    expect_invalid_inner(
        node.decide(decision(HG, "bang-khen-cap-tinh", Vec::new()))
            .await,
        "recipients",
    );
    // Recipients lie in the issuing unit's subtree.
    expect_invalid_inner(
        node.decide(decision(
            HG,
            "bang-khen-cap-tinh",
            vec![member_recipient(&an), unit_recipient(LC_C)],
        ))
        .await,
        "recipients[1]",
    );
    expect_invalid_inner(
        node.decide(decision(
            HG,
            "bang-khen-cap-tinh",
            vec![member_recipient(&pao)],
        ))
        .await,
        "recipients[0]",
    );
    expect_invalid_inner(
        node.decide(pb::DecideAwardRequest {
            decision_no: String::new(),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await,
        "decision_no",
    );
    expect_invalid_inner(
        node.decide(pb::DecideAwardRequest {
            decided_on: "2026-12-01".into(),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await,
        "decided_on",
    );
    expect_invalid_inner(
        node.decide(decision(
            "khong-co",
            "giay-khen",
            vec![member_recipient(&an)],
        ))
        .await,
        "issuing_unit_id",
    );
    expect_code(
        node.decide(pb::DecideAwardRequest {
            campaign_id: Some("khong-co".into()),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await
        .map(tonic::Response::new),
        Code::NotFound,
    );
    node.unchanged_since(mark).await?;

    // Each level grants its own awards.
    let tld = node
        .decide(decision(
            VN,
            "bang-khen-tld",
            vec![member_recipient(&an), unit_recipient(LC_C)],
        ))
        .await?;
    assert_eq!(tld.recipients.len(), 2);
    node.decide(decision(HG_CT, "giay-khen", vec![unit_recipient(HG_B)]))
        .await?;
    node.decide(decision(
        HG_A,
        "lao-dong-tien-tien",
        vec![member_recipient(&an)],
    ))
    .await?;
    node.decide(decision(
        HG,
        "co-thi-dua-cap-tinh",
        vec![unit_recipient(HG_CT)],
    ))
    .await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_and_list_by_year() -> Result<()> {
    let node = Node::with_tree().await?;
    let [an, bich, _] = people(&node).await?;
    let last_year = node
        .decide(pb::DecideAwardRequest {
            decided_on: "2025-12-15".into(),
            ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&an)])
        })
        .await?;
    let this_year = node
        .decide(decision(
            HG,
            "chien-si-thi-dua",
            vec![member_recipient(&bich)],
        ))
        .await?;
    let national = node
        .decide(decision(VN, "co-thi-dua-tld", vec![unit_recipient(HG_CT)]))
        .await?;

    let mut awards = node.awards();
    let mut listed = async |unit: &str, year: Option<u32>| -> Result<Vec<String>> {
        let mut ids: Vec<String> = awards
            .list_awards(pb::ListAwardsRequest {
                unit_id: unit.to_owned(),
                year,
            })
            .await?
            .into_inner()
            .awards
            .into_iter()
            .map(|a| a.id)
            .collect();
        ids.sort();
        Ok(ids)
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(listed(HG, Some(2025)).await?, [last_year.id.as_str()]);
    assert_eq!(
        listed(HG, Some(2026)).await?,
        sorted(vec![&this_year.id, &national.id])
    );
    assert_eq!(listed(HG, None).await?.len(), 3);
    assert_eq!(listed(VN, None).await?.len(), 3);
    assert_eq!(listed(HG_A, None).await?, [last_year.id.as_str()]);
    assert_eq!(listed(HG_B, Some(2026)).await?, [this_year.id.as_str()]);
    assert!(listed(LC, None).await?.is_empty());
    assert!(listed(HG, Some(2024)).await?.is_empty());

    let revoke = |id: &str, on: &str, reason: &str| pb::RevokeAwardRequest {
        award_id: id.to_owned(),
        revoked_on: on.to_owned(),
        reason: reason.to_owned(),
    };
    let r = awards
        .revoke_award(revoke(&this_year.id, "", "Phát hiện sai phạm"))
        .await?
        .into_inner();
    assert!(r.revoked);
    assert_eq!(r.revoked_on, TODAY);
    assert_eq!(r.revoke_reason, "Phát hiện sai phạm");

    // A revoked award stays on record, marked.
    let all = awards
        .list_awards(pb::ListAwardsRequest {
            unit_id: HG.into(),
            year: Some(2026),
        })
        .await?
        .into_inner()
        .awards;
    assert_eq!(all.len(), 2);
    assert!(all.iter().find(|a| a.id == this_year.id).unwrap().revoked);
    assert!(!all.iter().find(|a| a.id == national.id).unwrap().revoked);

    let mark = node.mark().await?;
    let m = expect_invalid(
        awards
            .revoke_award(revoke(&this_year.id, "", "lần hai"))
            .await,
        "award_id",
    );
    assert!(m.contains("already revoked"), "{m}");
    expect_invalid(
        awards.revoke_award(revoke(&last_year.id, "", "")).await,
        "reason",
    );
    expect_invalid(
        awards
            .revoke_award(revoke(&last_year.id, "2025-12-01", "sai sót"))
            .await,
        "revoked_on",
    );
    expect_code(
        awards.revoke_award(revoke("akhongco", "", "sai sót")).await,
        Code::NotFound,
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}
