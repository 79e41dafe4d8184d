//! ReorgService: who may apply a decision, and where. A number is applied
//! once per issuing unit; staff apply only their own unit's decisions and
//! read only those of their subtree; a node without authority over the
//! issuing unit refuses, naming the unit whose node applies it. The
//! fixture is [`crate::reorg`]'s.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::reorg_service_client::ReorgServiceClient;
use tonic::{Code, Response};

use crate::harness::*;
use crate::reorg::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_is_applied_once_and_found_by_number() -> Result<()> {
    let (node, _) = fixture().await?;
    let rename = |unit: &str, name: &str| pb::ReorgStep {
        kind: "rename".into(),
        unit: unit.into(),
        name: name.into(),
        ..Default::default()
    };
    let first = apply(
        &node,
        plan("7/QĐ", HG, vec![rename(HG_A, "CĐCS Trường A mới")]),
        false,
    )
    .await?;
    let mark = node.mark().await?;
    let m = expect_invalid_inner(
        apply(
            &node,
            plan("7/QĐ", HG, vec![rename(HG_B, "CĐCS Nhà máy B mới")]),
            false,
        )
        .await,
        "number",
    );
    assert!(m.contains("was applied already"), "{m}");
    assert!(m.contains(&summary(&first).id), "{m}");
    // The same id again: it exists.
    let mut again = plan("8/QĐ", HG, vec![rename(HG_B, "CĐCS Nhà máy B mới")]);
    again.id = summary(&first).id;
    expect_code(
        apply(&node, again, false).await.map(Response::new),
        Code::AlreadyExists,
    );
    node.unchanged_since(mark).await?;
    assert_eq!(node.unit(HG_B).await?.name, "CĐCS Nhà máy B");

    // Another issuing unit may use the same number; asking by it is then
    // ambiguous, and the id settles it.
    apply(
        &node,
        plan("7/QĐ", LC, vec![rename(LC_C, "CĐCS Thủy điện")]),
        false,
    )
    .await?;
    let m = expect_invalid_inner(
        reorg(&node)
            .get_decision(pb::GetDecisionRequest { id: "7/QĐ".into() })
            .await
            .map(Response::into_inner),
        "id",
    );
    assert!(m.contains("names 2 decisions"), "{m}");
    let shown = reorg(&node)
        .get_decision(pb::GetDecisionRequest {
            id: summary(&first).id,
        })
        .await?
        .into_inner();
    let p = shown.plan.unwrap();
    assert_eq!((p.issuing_unit.as_str(), p.steps.len()), (HG, 1));
    assert_eq!(p.steps[0].kind, "rename");
    expect_code(
        reorg(&node)
            .get_decision(pb::GetDecisionRequest { id: "9/QĐ".into() })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_apply_only_their_own_units_decisions() -> Result<()> {
    let (node, _) = fixture().await?;
    let p = plan("5/QĐ", HG, vec![moving(&[VT_G1], HG_CT)]);
    let outsider = ReorgServiceClient::new(node.channel_as(&Caller::staff("clerk", LC)).await?);
    let mark = node.mark().await?;
    for dry_run in [true, false] {
        let s = expect_code(
            outsider
                .clone()
                .apply_decision(pb::ApplyDecisionRequest {
                    plan: Some(p.clone()),
                    dry_run,
                })
                .await,
            Code::PermissionDenied,
        );
        assert!(
            s.message().contains("ApplyDecision") && s.message().contains(HG),
            "{s:?}"
        );
    }
    node.unchanged_since(mark).await?;
    // Staff of the issuing unit may apply it.
    let mut own = ReorgServiceClient::new(node.channel_as(&Caller::staff("clerk", HG)).await?);
    let r = own
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(p),
            dry_run: false,
        })
        .await?
        .into_inner();
    assert!(r.applied);
    let id = summary(&r).id;
    // The outsider neither sees it listed nor reads it.
    let listed = outsider
        .clone()
        .list_decisions(pb::ListDecisionsRequest::default())
        .await?
        .into_inner()
        .decisions;
    assert!(listed.is_empty(), "{listed:?}");
    expect_code(
        outsider
            .clone()
            .get_decision(pb::GetDecisionRequest { id })
            .await,
        Code::PermissionDenied,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_authority_names_the_unit_that_can_apply_it() -> Result<()> {
    let national = Node::with_tree().await?;
    let district = crate::replication::child("hg-ct-node", HG_CT, &[("vn", &national)]).await?;
    crate::replication::eventually("the district knows its grassroots unions", || async {
        Ok(district.unit(HG_B).await.is_ok() && district.unit(HG).await.is_ok())
    })
    .await?;
    crate::replication::in_step(&district, "hg-ct-node", &national, "vn").await?;
    let mark = district.mark().await?;
    // Hậu Giang's decision, tried at the commune's node.
    let p = plan("9/QĐ-LĐLĐ", HG, vec![moving(&[HG_B], HG)]);
    for dry_run in [true, false] {
        let s = expect_code(
            apply(&district, p.clone(), dry_run)
                .await
                .map(Response::new),
            Code::PermissionDenied,
        );
        assert!(
            s.message().contains(&format!(
                "apply this decision at the node hosting unit {HG} (LĐLĐ tỉnh Hậu Giang)"
            )),
            "{s:?}"
        );
    }
    district.unchanged_since(mark).await?;
    assert!(decisions(&district).await?.is_empty());
    // Its own decisions, about its own units, it applies.
    let own = apply(
        &district,
        plan(
            "3/QĐ-CĐX",
            HG_CT,
            vec![pb::ReorgStep {
                kind: "rename".into(),
                unit: HG_A.into(),
                name: "CĐCS Trường THPT A (mới)".into(),
                ..Default::default()
            }],
        ),
        false,
    )
    .await?;
    assert_eq!(summary(&own).applied_by, "hg-ct-node");
    // And the province's decision applies at the national node.
    apply(&national, p, false).await?;
    assert_eq!(national.unit(HG_B).await?.parent_id, HG);
    district.stop().await?;
    national.stop().await
}
