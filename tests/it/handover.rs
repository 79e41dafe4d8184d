//! A province merger across nodes (DESIGN §6) over real links through the
//! fault proxy, with restarts: the old host's link is cut while the
//! national node decides, its office goes on writing, the old host and the
//! new host are both restarted (the new host on a new port, so the old host
//! finds it by its node record again), the link heals. Every member the
//! old host's office added is at the new host with its personal data and
//! at the national node without it; nothing waits in a quarantine; the
//! federation converges; the old host refuses new writes naming the new
//! host.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::QuarantineState;

use crate::check::{self, View};

const VN: &str = "vn";
const HG: &str = "hau-giang";
const LC: &str = "lai-chau";
const HG_D: &str = "hg-vi-thanh";
const HG_G: &str = "hg-vi-thanh-g1";
const LIMIT: Duration = Duration::from_secs(60);

fn member(name: &str, card: &str, cccd: &str) -> pb::MemberInput {
    pb::MemberInput {
        full_name: name.into(),
        birth_date: "1988-04-02".into(),
        gender: pb::Gender::Female as i32,
        card_number: card.into(),
        joined_on: "2012-09-01".into(),
        position: "Công nhân".into(),
        national_id: cccd.into(),
        ethnicity: "Khmer".into(),
        religion: "Phật giáo".into(),
    }
}

async fn add(n: &LocalNode, card: &str, cccd: &str) -> Result<pb::Member> {
    Ok(n.members()
        .add_member(pb::AddMemberRequest {
            unit_id: HG_G.into(),
            member: Some(member(&format!("Thành viên {card}"), card, cccd)),
        })
        .await?
        .into_inner())
}

async fn held(n: &LocalNode) -> Result<i64> {
    let counts = n.app.store().quarantine_counts().await?;
    Ok(counts.get(&QuarantineState::Held).copied().unwrap_or(0))
}

fn reorg(n: &LocalNode) -> pb::reorg_service_client::ReorgServiceClient<tonic::transport::Channel> {
    pb::reorg_service_client::ReorgServiceClient::new(n.channel.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merger_under_a_cut_link_and_restarts_hands_everything_over() -> Result<()> {
    check::init_tracing();
    let dir = tempfile::tempdir()?;
    let mut fed = Federation::new(dir.path());
    fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
        .await?;
    for p in [HG, LC] {
        fed.node(VN)
            .create_unit(p, &format!("LĐLĐ tỉnh {p}"), "provincial", VN)
            .await?;
    }
    fed.add(NodeSpec::child(HG, HG, &[VN])).await?;
    fed.add(NodeSpec::child(LC, LC, &[VN])).await?;
    Federation::until("hau-giang knows its unit", LIMIT, || async {
        Ok(fed.node(HG).knows_unit(HG))
    })
    .await?;
    fed.node(HG)
        .create_unit(HG_D, "Công đoàn phường Vị Thanh", "commune", HG)
        .await?;
    fed.node(HG)
        .create_unit(HG_G, "CĐCS Công ty Thủy sản Vị Thanh", "grassroots", HG_D)
        .await?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let m = add(
            fed.node(HG),
            &format!("HG-{i:04}"),
            &format!("09419000{i:04}"),
        )
        .await?;
        ids.push(m.id);
    }
    Federation::until("every node knows every node", LIMIT, || async {
        for n in fed.nodes() {
            if n.app.store().nodes().await?.len() < 3 {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;

    // The old host's link goes down; the national node decides.
    fed.link(HG, VN).cut();
    reorg(fed.node(VN))
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(pb::ReorgPlan {
                number: "759/QĐ-TLĐ".into(),
                title: "Hợp nhất LĐLĐ tỉnh Hậu Giang vào LĐLĐ tỉnh Lai Châu".into(),
                issuing_unit: VN.into(),
                steps: vec![pb::ReorgStep {
                    kind: "merge".into(),
                    units: vec![HG.into()],
                    to: LC.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            dry_run: false,
        })
        .await?;
    // Its office goes on writing, across a restart of the old host.
    for i in 3..5 {
        ids.push(
            add(
                fed.node(HG),
                &format!("HG-{i:04}"),
                &format!("09419000{i:04}"),
            )
            .await?
            .id,
        );
    }
    let config = fed.stop(HG).await?;
    fed.restart(config).await?;
    ids.push(add(fed.node(HG), "HG-0005", "094190000005").await?.id);
    // The new host restarts too, on a new port: its record says where.
    let config = fed.stop(LC).await?;
    fed.restart(config).await?;
    fed.link(HG, VN).heal();

    Federation::until(
        "the old host refuses writes, naming the new host",
        LIMIT,
        || async {
            let r = fed
                .node(HG)
                .members()
                .add_member(pb::AddMemberRequest {
                    unit_id: HG_G.into(),
                    member: Some(member("Sau Quyết Định", "HG-0099", "094190000099")),
                })
                .await;
            Ok(
                matches!(&r, Err(s) if s.code() == tonic::Code::FailedPrecondition
            && s.message().contains(LC)),
            )
        },
    )
    .await?;
    let waited = Federation::until(
        "the new host holds every member with personal data, the national node without",
        LIMIT,
        || async {
            for id in &ids {
                let here = fed.node(LC).app.get_member(Some(id), None, true).await;
                let Ok((_, private)) = here else {
                    return Ok(false);
                };
                if private.is_none()
                    || fed
                        .node(VN)
                        .app
                        .get_member(Some(id), None, false)
                        .await
                        .is_err()
                {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await;
    waited?;
    ensure!(
        fed.node(VN).app.store().private_rows().await? == 0,
        "personal data rose above private_depth"
    );
    Federation::until("nothing waits in a quarantine", LIMIT, || async {
        Ok(held(fed.node(VN)).await? == 0 && held(fed.node(LC)).await? == 0)
    })
    .await?;
    let views: Vec<View> = [VN, LC].iter().map(|n| View::of(fed.node(n))).collect();
    check::wait_converged(&views, LIMIT).await?;
    let shown = reorg(fed.node(LC))
        .get_decision(pb::GetDecisionRequest {
            id: "759/QĐ-TLĐ".into(),
        })
        .await?
        .into_inner();
    let h = shown
        .handovers
        .iter()
        .find(|h| h.from_node == HG)
        .context("the new host lists the old host's handover")?;
    ensure!(h.status == "complete", "{h:?}");
    fed.shutdown().await
}
