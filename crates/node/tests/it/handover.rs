//! Handover between nodes (DESIGN §6): a province merged into another by
//! a decision of the national node, while the old host's link is down.
//!
//! The old host learns of the decision late and has kept writing: what it
//! wrote before it knew is sealed and accepted everywhere; what an office
//! asks of it afterwards is refused at once, naming the new host. Every
//! record of the moved units reaches the new host, personal data included,
//! by a handover session from the old host: the national node, above
//! `private_depth`, never holds it. Nothing waits in a quarantine for an
//! administrator, and `reorg show` at the new host says the handover is
//! complete.

use anyhow::{Context, Result, ensure};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::QuarantineState;
use tempfile::TempDir;
use tonic::Code;

use crate::harness::*;
use crate::reorg::{merge, plan, reorg};
use crate::replication::{child, eventually};

/// The old host, hosting Hậu Giang, started on `dir` and dialling the
/// national node at `upstream`.
async fn hau_giang_at(dir: TempDir, upstream: std::net::SocketAddr) -> Result<Node> {
    Node::start_with(dir, |c| {
        c.node.id = "hg-node".into();
        c.node.unit = HG.into();
        c.node.unit_name = None;
        c.node.unit_kind = None;
        c.replication.upstreams = vec![hopluu_node::config::Upstream {
            node_id: "vn".into(),
            address: format!("https://{upstream}"),
        }];
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
        c.replication.report_every_secs = 1;
    })
    .await
}

/// An address where nothing listens: a link that is down.
async fn nowhere() -> Result<std::net::SocketAddr> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?)
}

fn with_cccd(name: &str, card: &str, cccd: &str) -> pb::MemberInput {
    pb::MemberInput {
        national_id: cccd.into(),
        ethnicity: "Khmer".into(),
        religion: "Phật giáo".into(),
        ..person(name, card, pb::Gender::Female)
    }
}

async fn held(n: &Node) -> Result<i64> {
    let counts = n.app.store().quarantine_counts().await?;
    Ok(counts.get(&QuarantineState::Held).copied().unwrap_or(0))
}

/// The unit's members. Polled by `eventually`: paced, so that the polls
/// stay within the nodes' request limits.
async fn members_in(n: &Node, unit: &str) -> Result<Vec<pb::Member>> {
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(n.list(unit, true, None).await?.members)
}

#[tokio::test]
async fn a_province_merged_while_its_link_is_down_hands_everything_over() -> Result<()> {
    let national = Node::with_tree().await?;
    national.replication.allow_child("hg-node", &hopluu_model::UnitId::parse("u", HG)?);
    let hg_dir = tempfile::tempdir()?;
    let hg = hau_giang_at(hg_dir, national.addr).await?;
    let lc = child("lc-node", LC, &[("vn", &national)]).await?;
    eventually("the old host receives its unions", || async {
        Ok(hg.unit(HG_A).await.is_ok())
    })
    .await?;
    let first = hg
        .add(HG_A, with_cccd("Lý Thị Sa Rươl", "HG-0001", "094190000001"))
        .await?;
    hg.add(HG_A, with_cccd("Thạch Thị Mỹ", "HG-0002", "094190000002"))
        .await?;
    eventually("the national node holds the union's two members", || async {
        Ok(members_in(&national, HG_A).await?.len() == 2)
    })
    .await?;
    eventually("every node knows the new host's record", || async {
        Ok(hg.app.store().node("lc-node").await?.is_some()
            && national.app.store().node("hg-node").await?.is_some())
    })
    .await?;

    // The link goes down; the decision is made meanwhile.
    let dir = hg.stop_keeping_data().await?;
    let hg = hau_giang_at(dir, nowhere().await?).await?;
    let p = plan("759/QĐ-TLĐ", VN, vec![merge(&[HG], LC)]);
    reorg(&national)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(p),
            dry_run: false,
        })
        .await?;
    // The office at the old host, not knowing, goes on writing.
    let offline = hg
        .add(HG_A, with_cccd("Danh Thị Hồng", "HG-0003", "094190000003"))
        .await
        .context("a write before the old host knows of the decision")?;

    // The link comes back.
    let dir = hg.stop_keeping_data().await?;
    let hg = hau_giang_at(dir, national.addr).await?;
    eventually("the old host refuses writes, naming the new host", || async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = hg
            .members()
            .add_member(pb::AddMemberRequest {
                unit_id: HG_A.into(),
                member: Some(person("Sau Quyết Định", "HG-0004", pb::Gender::Male)),
                ..Default::default()
            })
            .await;
        Ok(matches!(&r, Err(s) if s.code() == Code::FailedPrecondition
            && s.message().contains("lc-node")
            && s.message().contains("retired")))
    })
    .await?;
    eventually("the new host holds all three members, with their personal data", || async {
        let here = members_in(&lc, HG_A).await?;
        if here.len() != 3 {
            return Ok(false);
        }
        let m = lc.member(&offline.id, true).await?;
        let f = lc.member(&first.id, true).await?;
        let cccd = |m: &pb::Member| m.private.as_ref().map(|p| p.national_id.clone());
        Ok(cccd(&m).as_deref() == Some("094190000003")
            && cccd(&f).as_deref() == Some("094190000001"))
    })
    .await?;
    eventually("the national node holds all three, without personal data", || async {
        Ok(members_in(&national, HG_A).await?.len() == 3)
    })
    .await?;
    ensure!(
        national.app.store().private_rows().await? == 0,
        "personal data rose above private_depth"
    );
    eventually("nothing waits in a quarantine", || async {
        Ok(held(&national).await? == 0 && held(&lc).await? == 0)
    })
    .await?;

    // The new host writes for the union.
    lc.add(HG_A, with_cccd("Kim Thị Xuân", "HG-0005", "094190000005"))
        .await
        .context("the new host writes for the moved union")?;

    // The old host sealed and retired; the new host says the handover is
    // complete.
    let record = hg.app.node_record().await?.context("the old host's record")?;
    ensure!(record.info.status == hopluu_model::hosting::NodeStatus::Retired);
    ensure!(record.seals.len() == 1, "one seal: {:?}", record.seals);
    let decision = reorg(&lc)
        .get_decision(pb::GetDecisionRequest {
            id: "759/QĐ-TLĐ".into(),
        })
        .await?
        .into_inner();
    let handover = decision
        .handovers
        .iter()
        .find(|h| h.from_node == "hg-node")
        .context("the new host lists the old host's handover")?;
    ensure!(
        handover.status == "complete" && handover.docs > 0,
        "{handover:?}"
    );
    eventually("the national node knows the old host retired", || async {
        let n = national.app.store().node("hg-node").await?;
        Ok(n.is_some_and(|n| n.status == "retired"))
    })
    .await?;
    Ok(())
}
