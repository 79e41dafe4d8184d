//! The 2025 replay across nodes: Hậu Giang and Sóc Trăng, each a province
//! node, merged into Cần Thơ by a decision of the national node while Sóc
//! Trăng's link is down (its office goes on writing); weeks later, with a
//! past effective date, Cần Thơ abolishes the Châu Thành commune level:
//! its grassroots union moves to the Ninh Kiều ward node and the commune
//! node retires; then a mass cessation. Afterwards every member is where
//! the decisions put it, with its personal data at the nodes that hold
//! personal data and nowhere above `private_depth`; the counts add up;
//! the 2023 report is unchanged; the old hosts refuse writes naming the new
//! host; nothing waits in a quarantine; every handover is complete.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::QuarantineState;
use tonic::Code;

use crate::handover::dialling_vn;
use crate::harness::*;
use crate::reorg::{close, create_founded, merge, moving, plan, reorg};
use crate::replication::{child, eventually};

const ST: &str = "soc-trang";
const ST_G: &str = "st-cang";
const CT: &str = "can-tho";
const CT_NK: &str = "ct-ninh-kieu";

fn with_cccd(name: &str, card: &str, cccd: &str) -> pb::MemberInput {
    pb::MemberInput {
        national_id: cccd.into(),
        ethnicity: "Kinh".into(),
        religion: "Không".into(),
        ..person(name, card, pb::Gender::Female)
    }
}

async fn pace() {
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

async fn held(n: &Node) -> Result<i64> {
    let counts = n.app.store().quarantine_counts().await?;
    Ok(counts.get(&QuarantineState::Held).copied().unwrap_or(0))
}

async fn report(n: &Node, as_of: &str) -> Result<BTreeMap<String, (u64, u64)>> {
    let r = n
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: VN.into(),
            as_of: as_of.into(),
        })
        .await?
        .into_inner();
    Ok(r.rows
        .iter()
        .chain(r.total.iter())
        .map(|r| (r.unit_id.clone(), (r.active, r.ceased)))
        .collect())
}

/// Whether `n` holds `id` with its personal data.
async fn with_private(n: &Node, id: &str) -> Result<bool> {
    let Ok((_, p)) = n.app.get_member(Some(id), None, true).await else {
        return Ok(false);
    };
    Ok(p.is_some())
}

async fn retired(n: &Node) -> Result<bool> {
    Ok(n.app
        .node_record()
        .await?
        .is_some_and(|r| r.info.status == hopluu_model::hosting::NodeStatus::Retired))
}

/// Whether `n` refuses a write for `unit` naming `host`.
async fn refuses_naming(n: &Node, unit: &str, host: &str) -> Result<bool> {
    pace().await;
    let r = n
        .members()
        .add_member(pb::AddMemberRequest {
            unit_id: unit.into(),
            member: Some(person("Sau Quyết Định", "LATE-0001", pb::Gender::Male)),
        })
        .await;
    Ok(matches!(&r, Err(s) if s.code() == Code::FailedPrecondition && s.message().contains(host)))
}

#[tokio::test]
async fn the_2025_replay_across_nodes() -> Result<()> {
    let national = Node::start().await?;
    for (id, name, kind, parent) in [
        (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
        (ST, "LĐLĐ tỉnh Sóc Trăng", "provincial", VN),
        (CT, "LĐLĐ thành phố Cần Thơ", "provincial", VN),
        (HG_CT, "Công đoàn xã Châu Thành", "commune", HG),
        (HG_A, "CĐCS Trường THPT A", "grassroots", HG_CT),
        (ST_G, "CĐCS Cảng Sóc Trăng", "grassroots", ST),
        (CT_NK, "Công đoàn phường Ninh Kiều", "commune", CT),
    ] {
        create_founded(&national, id, name, kind, parent).await?;
    }
    let hg = child("hg-node", HG, &[("vn", &national)]).await?;
    national
        .replication
        .allow_child("st-node", &hopluu_model::UnitId::parse("u", ST)?);
    let st = dialling_vn("st-node", ST, tempfile::tempdir()?, national.addr).await?;
    let ct = child("ct-node", CT, &[("vn", &national)]).await?;
    eventually(
        "the provinces receive their communes and unions",
        || async {
            pace().await;
            Ok(hg.unit(HG_CT).await.is_ok()
                && st.unit(ST_G).await.is_ok()
                && ct.unit(CT_NK).await.is_ok())
        },
    )
    .await?;
    let chau_thanh = child("chau-thanh-node", HG_CT, &[("hg-node", &hg)]).await?;
    let ninh_kieu = child("ninh-kieu-node", CT_NK, &[("ct-node", &ct)]).await?;
    eventually("the commune nodes receive their units", || async {
        pace().await;
        Ok(chau_thanh.unit(HG_A).await.is_ok() && ninh_kieu.unit(CT_NK).await.is_ok())
    })
    .await?;
    let mut ids = Vec::new();
    for i in 0..2 {
        let m = chau_thanh
            .add(
                HG_A,
                with_cccd(
                    &format!("Nguyễn Thị A{i}"),
                    &format!("CD-A-{i:04}"),
                    &format!("09319000000{i}"),
                ),
            )
            .await?;
        ids.push(m.id);
        let m = st
            .add(
                ST_G,
                with_cccd(
                    &format!("Trần Thị S{i}"),
                    &format!("CD-S-{i:04}"),
                    &format!("09419000000{i}"),
                ),
            )
            .await?;
        ids.push(m.id);
    }
    let nodes = [
        "vn",
        "hg-node",
        "st-node",
        "ct-node",
        "chau-thanh-node",
        "ninh-kieu-node",
    ];
    eventually(
        "the national node holds the four members and every node record",
        || async {
            pace().await;
            let known = st.app.store().nodes().await?;
            Ok(report(&national, "").await?.get(VN) == Some(&(4, 0))
                && nodes.iter().all(|n| known.iter().any(|k| k.id == *n)))
        },
    )
    .await?;
    let in_2023 = report(&national, "2023-06-30").await?;

    // Sóc Trăng's link goes down; the merger is decided meanwhile.
    let dir = st.stop_keeping_data().await?;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    let st = dialling_vn("st-node", ST, dir, dead).await?;
    let mut merger = plan("759/QĐ-TLĐ", VN, vec![merge(&[HG, ST], CT)]);
    merger.decided_on = "2025-06-20".into();
    merger.effective_on = "2025-07-01".into();
    reorg(&national)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(merger),
            dry_run: false,
        })
        .await?;
    // (She joined in 2025: the 2023 report does not count her.)
    let late = st
        .add(
            ST_G,
            pb::MemberInput {
                joined_on: "2025-06-25".into(),
                ..with_cccd("Lâm Thị Muộn", "CD-S-0009", "094190000009")
            },
        )
        .await
        .context("Sóc Trăng's office writes before it knows")?;
    ids.push(late.id.clone());
    let dir = st.stop_keeping_data().await?;
    let st = dialling_vn("st-node", ST, dir, national.addr).await?;

    eventually(
        "the old provinces learn of the merger and retire",
        || async {
            pace().await;
            Ok(retired(&st).await? && retired(&hg).await?)
        },
    )
    .await?;
    // Their offices are told where the unions' records are written now.
    ensure!(refuses_naming(&st, ST_G, "ct-node").await?);
    ensure!(refuses_naming(&hg, HG_A, "chau-thanh-node").await?);
    eventually(
        "Cần Thơ holds all five members with their personal data",
        || async {
            pace().await;
            for id in &ids {
                if !with_private(&ct, id).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    eventually(
        "the commune node below Hậu Giang now dials Cần Thơ",
        || async {
            pace().await;
            Ok(ct
                .replication
                .edges()
                .iter()
                .any(|e| e.peer == "chau-thanh-node" && e.connected))
        },
    )
    .await?;

    // Weeks later: the commune level abolished, its union moved to the
    // ward node, with a past effective date; then a mass cessation.
    let mut abolish = plan(
        "12/QĐ-LĐLĐ",
        CT,
        vec![moving(&[HG_A], CT_NK), close(HG_CT, &[CT_NK])],
    );
    abolish.decided_on = "2025-07-20".into();
    abolish.effective_on = "2025-07-15".into();
    reorg(&ct)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(abolish),
            dry_run: false,
        })
        .await?;
    let mut cease = plan(
        "13/QĐ-LĐLĐ",
        CT,
        vec![pb::ReorgStep {
            kind: "cease".into(),
            units: vec![ST_G.into()],
            reason: "doanh nghiệp giải thể".into(),
            on: "2025-08-01".into(),
            ..Default::default()
        }],
    );
    cease.decided_on = "2025-08-01".into();
    cease.effective_on = "2025-08-01".into();
    reorg(&ct)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(cease),
            dry_run: false,
        })
        .await?;

    eventually(
        "the ward node holds the moved union's members with personal data",
        || async {
            pace().await;
            Ok(with_private(&ninh_kieu, &ids[0]).await?
                && with_private(&ninh_kieu, &ids[2]).await?)
        },
    )
    .await?;
    eventually("the commune node retires", || async {
        pace().await;
        retired(&chau_thanh).await
    })
    .await?;
    ensure!(refuses_naming(&chau_thanh, HG_A, "ninh-kieu-node").await?);
    eventually("the national node counts 2 active and 3 ceased", || async {
        pace().await;
        Ok(report(&national, "").await?.get(VN) == Some(&(2, 3)))
    })
    .await?;
    ensure!(
        report(&national, "2023-06-30").await? == in_2023,
        "the 2023 report changed"
    );
    ensure!(
        national.app.store().private_rows().await? == 0,
        "personal data above private_depth"
    );
    eventually("nothing waits in a quarantine", || async {
        pace().await;
        Ok(held(&national).await? == 0 && held(&ct).await? == 0 && held(&ninh_kieu).await? == 0)
    })
    .await?;
    for (n, number) in [(&ct, "759/QĐ-TLĐ"), (&ninh_kieu, "12/QĐ-LĐLĐ")] {
        let shown = reorg(n)
            .get_decision(pb::GetDecisionRequest { id: number.into() })
            .await?
            .into_inner();
        ensure!(!shown.handovers.is_empty(), "{number}: no handover listed");
        for h in &shown.handovers {
            ensure!(
                h.status == "complete",
                "{number} at {}: {h:?}",
                n.app.node_id
            );
        }
    }
    Ok(())
}
