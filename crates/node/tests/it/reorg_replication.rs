//! A decision applied at a province reaches every office below it: a
//! grassroots union moved from one commune node's subtree to another's.
//! The new host receives the union's records and writes for it (the
//! decision seals what the old host made before it, so none of that is
//! quarantined on the way); the old host learns the union left (its unit
//! record is still sent to it, since it held it) and refuses writes for
//! it at once, instead of accepting what its upstream would quarantine.

use anyhow::{Result, ensure};
use hopluu_proto::v1 as pb;

use crate::harness::*;
use crate::reorg::{moving, plan, reorg};
use crate::replication::{child, eventually};

const HG_VT: &str = "hg-vi-thanh";

async fn members_in(n: &Node, unit: &str) -> Result<usize> {
    Ok(n.list(unit, true, None).await?.members.len())
}

async fn parent_of(n: &Node, unit: &str) -> Result<String> {
    Ok(n.unit(unit).await?.parent_id)
}

#[tokio::test]
async fn a_move_between_two_commune_nodes_reaches_both() -> Result<()> {
    let national = Node::with_tree().await?;
    national
        .create_unit(HG_VT, "Công đoàn phường Vị Thanh", "commune", HG)
        .await?;
    let province = child("hg-node", HG, &[("vn", &national)]).await?;
    eventually("the province receives both communes", || async {
        Ok(province.unit(HG_CT).await.is_ok() && province.unit(HG_VT).await.is_ok())
    })
    .await?;
    let old_host = child("hg-ct-node", HG_CT, &[("hg-node", &province)]).await?;
    let new_host = child("hg-vt-node", HG_VT, &[("hg-node", &province)]).await?;
    eventually("the old host receives its unions", || async {
        Ok(old_host.unit(HG_A).await.is_ok() && old_host.unit(HG_B).await.is_ok())
    })
    .await?;
    for i in 0..3 {
        old_host
            .add(
                HG_A,
                person(
                    &format!("Trần Văn {i}"),
                    &format!("CD-A-{i:04}"),
                    pb::Gender::Male,
                ),
            )
            .await?;
    }
    eventually("the province holds the union's members", || async {
        Ok(members_in(&province, HG_A).await? == 3)
    })
    .await?;
    eventually("the new host knows its own unit", || async {
        Ok(new_host.unit(HG_VT).await.is_ok())
    })
    .await?;
    ensure!(
        new_host.unit(HG_A).await.is_err(),
        "the union is not the new host's before the decision"
    );

    let p = plan("45/QĐ-LĐLĐ", HG, vec![moving(&[HG_A], HG_VT)]);
    let applied = reorg(&province)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(p),
            dry_run: false,
        })
        .await?
        .into_inner();
    let seals = applied
        .decision
        .as_ref()
        .map(|d| d.seals.clone())
        .unwrap_or_default();
    ensure!(
        seals
            .iter()
            .any(|s| s.doc_id == format!("roster/{HG_A}") && !s.heads.is_empty()),
        "the decision seals the union's roster: {seals:?}"
    );
    let impact = applied.impact.unwrap_or_default();
    let hosting: Vec<(String, u64, u64)> = impact
        .nodes
        .iter()
        .map(|n| (n.node_id.clone(), n.members_lost, n.members_gained))
        .collect();
    ensure!(
        hosting.contains(&("hg-ct-node".to_owned(), 3, 0))
            && hosting.contains(&("hg-vt-node".to_owned(), 0, 3)),
        "the impact names both hosts: {hosting:?}"
    );

    // The new host receives the union and its roster, and writes for it.
    eventually("the new host holds the moved union's roster", || async {
        Ok(members_in(&new_host, HG_A).await? == 3)
    })
    .await?;
    // What the old host made before the decision is sealed by it: nothing
    // of the union's history is left in quarantine at the new host.
    eventually("nothing held at the new host", || async {
        Ok(new_host.app.counts().await?.quarantine_held == 0)
    })
    .await?;
    new_host
        .add(HG_A, person("Lê Thị Mai", "CD-A-0100", pb::Gender::Female))
        .await?;
    eventually("the new host's member reaches the province", || async {
        Ok(members_in(&province, HG_A).await? == 4)
    })
    .await?;

    // The old host learns the union left, and refuses to write for it.
    eventually(
        "the old host sees the union under its new parent",
        || async { Ok(parent_of(&old_host, HG_A).await? == HG_VT) },
    )
    .await?;
    let refused = old_host
        .add(HG_A, person("Phạm Văn Sáu", "CD-A-0200", pb::Gender::Male))
        .await
        .expect_err("the old host no longer writes for the union");
    ensure!(
        format!("{refused:#}").contains("no longer in node hg-ct-node's subtree")
            && format!("{refused:#}").contains("45/QĐ-LĐLĐ"),
        "the refusal says why: {refused:#}"
    );
    // It says so of what it still holds of the union.
    let (rows, _) = old_host
        .app
        .list_docs(&hopluu_node::app::docs::DocsQuery {
            owner: HG_A,
            ..Default::default()
        })
        .await?;
    ensure!(!rows.is_empty(), "the old host keeps the union's roster");
    ensure!(
        rows.iter().all(|r| old_host.app.outside_scope(r)),
        "every document of the union is marked as outside its scope"
    );
    // Its own remaining union is still its own.
    old_host
        .add(HG_B, person("Đỗ Văn Bảy", "CD-B-0001", pb::Gender::Male))
        .await?;
    let (own, _) = old_host
        .app
        .list_docs(&hopluu_node::app::docs::DocsQuery {
            owner: HG_B,
            ..Default::default()
        })
        .await?;
    ensure!(!own.is_empty() && own.iter().all(|r| !old_host.app.outside_scope(r)));

    // The decision itself reaches the offices of the province.
    eventually("the new host lists the decision", || async {
        let list = reorg(&new_host)
            .list_decisions(pb::ListDecisionsRequest::default())
            .await?
            .into_inner();
        Ok(list.decisions.iter().any(|d| d.number == "45/QĐ-LĐLĐ"))
    })
    .await?;
    Ok(())
}
