//! ReorgService: reorganisation decisions through gRPC. Every step kind
//! applied (create, rename, move many, merge with members transferred,
//! split, close with successors, cease); refused plans write nothing and
//! name `steps[i].field`; a dry run reports what the application then
//! does; decisions effective in the past. [`reorg_authority`](crate::reorg_authority)
//! holds who may apply one, and where. The fixture and helpers here serve
//! both.

use std::collections::BTreeMap;

use anyhow::Result;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::reorg_service_client::ReorgServiceClient;
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::harness::*;

pub const VT: &str = "hg-vi-thanh";
pub const VT_G1: &str = "hg-vt-thpt";
pub const VT_G2: &str = "hg-vt-benh-vien";
pub const ST: &str = "soc-trang";
pub const ST_G: &str = "st-cang";
pub const CT: &str = "can-tho";
pub const OLD_WARD: &str = "hg-xa-cu";
/// The day the fixture's units came into existence.
pub const FOUNDED: &str = "2020-01-01";

/// ```text
/// vn
/// ├── hau-giang (provincial)
/// │   ├── hg-chau-thanh (commune)
/// │   │   ├── hg-truong-a (grassroots): A1, A2
/// │   │   └── hg-nha-may-b (grassroots): B1, B2, B3 (left)
/// │   ├── hg-vi-thanh (district)
/// │   │   ├── hg-vt-thpt (grassroots): V1
/// │   │   └── hg-vt-benh-vien (grassroots)
/// │   └── hg-xa-cu (commune, closed)
/// ├── soc-trang (provincial)
/// │   └── st-cang (grassroots): S1
/// ├── can-tho (provincial)
/// └── lai-chau (provincial)
///     └── lc-thuy-dien (grassroots)
/// ```
///
/// Every unit exists since 2020-01-01. Returns the members by card.
pub async fn fixture() -> Result<(Node, BTreeMap<&'static str, String>)> {
    let node = Node::start().await?;
    for (id, name, kind, parent) in [
        (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
        (ST, "LĐLĐ tỉnh Sóc Trăng", "provincial", VN),
        (CT, "LĐLĐ thành phố Cần Thơ", "provincial", VN),
        (LC, "LĐLĐ tỉnh Lai Châu", "provincial", VN),
        (HG_CT, "Công đoàn xã Châu Thành", "commune", HG),
        (HG_A, "CĐCS Trường THPT A", "grassroots", HG_CT),
        (HG_B, "CĐCS Nhà máy B", "grassroots", HG_CT),
        (VT, "LĐLĐ thành phố Vị Thanh", "district", HG),
        (VT_G1, "CĐCS Trường THPT Vị Thanh", "grassroots", VT),
        (VT_G2, "CĐCS Bệnh viện Vị Thanh", "grassroots", VT),
        (OLD_WARD, "Công đoàn xã cũ", "commune", HG),
        (ST_G, "CĐCS Cảng Sóc Trăng", "grassroots", ST),
        (LC_C, "CĐCS Thủy điện Lai Châu", "grassroots", LC),
    ] {
        create_founded(&node, id, name, kind, parent).await?;
    }
    node.close_unit(OLD_WARD).await?;
    let mut cards = BTreeMap::new();
    for (card, unit) in [
        ("A1", HG_A),
        ("A2", HG_A),
        ("B1", HG_B),
        ("B2", HG_B),
        ("B3", HG_B),
        ("V1", VT_G1),
        ("S1", ST_G),
    ] {
        let m = node
            .add(
                unit,
                person(
                    &format!("Đoàn viên {card}"),
                    &format!("CD-{card}"),
                    pb::Gender::Female,
                ),
            )
            .await?;
        cards.insert(card, m.id);
    }
    node.end(&cards["B3"], pb::MemberStatus::Left, "nghỉ việc")
        .await?;
    Ok((node, cards))
}

/// Creates unit `id` at `node`, existing since [`FOUNDED`].
pub async fn create_founded(
    node: &Node,
    id: &str,
    name: &str,
    kind: &str,
    parent: &str,
) -> Result<()> {
    node.units()
        .create_unit(pb::CreateUnitRequest {
            id: Some(id.into()),
            name: name.into(),
            kind: kind.into(),
            parent_id: parent.into(),
            effective_on: FOUNDED.into(),
            decision_no: "1/QĐ".into(),
        })
        .await?;
    Ok(())
}

pub fn reorg(node: &Node) -> ReorgServiceClient<Channel> {
    ReorgServiceClient::new(node.channel.clone())
}

/// A decision of `issuing` numbered `number`, decided and effective today.
pub fn plan(number: &str, issuing: &str, steps: Vec<pb::ReorgStep>) -> pb::ReorgPlan {
    pb::ReorgPlan {
        number: number.into(),
        title: format!("Quyết định {number}"),
        issuing_unit: issuing.into(),
        steps,
        ..Default::default()
    }
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

pub fn create(id: &str, name: &str, kind: &str, to: &str) -> pb::ReorgStep {
    pb::ReorgStep {
        kind: "create".into(),
        unit: id.into(),
        name: name.into(),
        unit_kind: kind.into(),
        to: to.into(),
        ..Default::default()
    }
}

pub fn moving(units: &[&str], to: &str) -> pb::ReorgStep {
    pb::ReorgStep {
        kind: "move".into(),
        units: strings(units),
        to: to.into(),
        ..Default::default()
    }
}

pub fn merge(units: &[&str], to: &str) -> pb::ReorgStep {
    pb::ReorgStep {
        kind: "merge".into(),
        units: strings(units),
        to: to.into(),
        ..Default::default()
    }
}

pub fn close(unit: &str, successors: &[&str]) -> pb::ReorgStep {
    pb::ReorgStep {
        kind: "close".into(),
        unit: unit.into(),
        successors: strings(successors),
        reason: "giải thể cấp huyện".into(),
        ..Default::default()
    }
}

pub async fn apply(
    node: &Node,
    plan: pb::ReorgPlan,
    dry_run: bool,
) -> Result<pb::ApplyDecisionResponse, Status> {
    reorg(node)
        .apply_decision(pb::ApplyDecisionRequest {
            plan: Some(plan),
            dry_run,
        })
        .await
        .map(Response::into_inner)
}

pub async fn decisions(node: &Node) -> Result<Vec<pb::DecisionSummary>> {
    Ok(reorg(node)
        .list_decisions(pb::ListDecisionsRequest::default())
        .await?
        .into_inner()
        .decisions)
}

/// Every unit (closed ones too) as (id, parent, status, name).
pub async fn units(node: &Node) -> Result<Vec<(String, String, i32, String)>> {
    Ok(node
        .units()
        .list_units(pb::ListUnitsRequest {
            root_id: VN.into(),
            include_closed: true,
            max_depth: None,
        })
        .await?
        .into_inner()
        .units
        .into_iter()
        .map(|u| (u.id, u.parent_id, u.status, u.name))
        .collect())
}

/// Member records by (unit, status).
pub async fn members(node: &Node) -> Result<BTreeMap<(String, i32), usize>> {
    let mut out = BTreeMap::new();
    for m in node.list(VN, true, None).await?.members {
        *out.entry((m.unit_id, m.status)).or_default() += 1;
    }
    Ok(out)
}

pub async fn active_in(node: &Node, unit: &str) -> Result<u64> {
    Ok(node
        .list(unit, false, Some(pb::MemberStatus::Active))
        .await?
        .total)
}

pub fn summary(r: &pb::ApplyDecisionResponse) -> pb::DecisionSummary {
    r.decision
        .as_ref()
        .and_then(|d| d.summary.clone())
        .expect("a decision summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rename_move_many_and_close_with_successors() -> Result<()> {
    let (node, _) = fixture().await?;
    let ward = "hg-phuong-vi-tan";
    let r = apply(
        &node,
        plan(
            "12/QĐ-LĐLĐ",
            HG,
            vec![
                create(ward, "Công đoàn phường Vị Tân", "commune", HG),
                pb::ReorgStep {
                    kind: "rename".into(),
                    unit: HG_CT.into(),
                    name: "Công đoàn xã Châu Thành mới".into(),
                    ..Default::default()
                },
                moving(&[VT_G1, VT_G2], ward),
                close(VT, &[ward]),
            ],
        ),
        false,
    )
    .await?;
    assert!(r.applied);
    let s = summary(&r);
    assert_eq!(
        (s.steps, s.units_created, s.units_moved, s.units_closed),
        (4, 1, 2, 1)
    );
    assert_eq!(s.applied_by, "vn");
    let i = r.impact.expect("an impact");
    assert_eq!(i.created, [ward]);
    assert_eq!(i.renamed, [HG_CT]);
    let moved: Vec<(&str, &str, &str)> = i
        .moved
        .iter()
        .map(|m| (m.unit_id.as_str(), m.from_id.as_str(), m.to_id.as_str()))
        .collect();
    assert_eq!(moved, [(VT_G1, VT, ward), (VT_G2, VT, ward)]);
    assert_eq!(i.closed.len(), 1);
    assert_eq!(
        (i.closed[0].unit_id.as_str(), i.closed[0].status.as_str()),
        (VT, "closed")
    );
    assert_eq!(i.closed[0].successor_ids, [ward]);
    assert_eq!(
        i.members_moved,
        [pb::StatusCount {
            status: "active".into(),
            count: 1
        }]
    );
    assert_eq!(i.docs_owner_changed, 2);

    let w = node.unit(ward).await?;
    assert_eq!((w.parent_id.as_str(), w.kind.as_str()), (HG, "commune"));
    assert_eq!(w.name_history[0].decision_no, "12/QĐ-LĐLĐ");
    assert_eq!(node.unit(HG_CT).await?.name, "Công đoàn xã Châu Thành mới");
    for g in [VT_G1, VT_G2] {
        let u = node.unit(g).await?;
        assert_eq!(u.parent_id, ward, "{g}");
        assert_eq!(u.parent_history.last().unwrap().decision_no, "12/QĐ-LĐLĐ");
    }
    let vt = node.unit(VT).await?;
    assert_eq!(vt.status, pb::UnitStatus::Closed as i32);
    assert_eq!(vt.successor_ids, [ward]);
    assert_eq!(vt.close_reason, "giải thể cấp huyện");
    assert_eq!(
        active_in(&node, VT_G1).await?,
        1,
        "members move with the unit"
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_transfer_members_with_the_decision_in_their_history() -> Result<()> {
    let (node, cards) = fixture().await?;
    let r = apply(
        &node,
        plan(
            "759/QĐ-TLĐ",
            VN,
            vec![merge(&[HG_B], HG_A), merge(&[HG, ST], CT)],
        ),
        false,
    )
    .await?;
    let i = r.impact.clone().expect("an impact");
    assert_eq!(i.members_transferred, 2, "B1 and B2; B3 had left");
    let closed: Vec<(&str, &str, Vec<String>)> = i
        .closed
        .iter()
        .map(|c| {
            (
                c.unit_id.as_str(),
                c.status.as_str(),
                c.successor_ids.clone(),
            )
        })
        .collect();
    assert_eq!(
        closed,
        [
            (HG_B, "merged", strings(&[HG_A])),
            (HG, "merged", strings(&[CT])),
            (ST, "merged", strings(&[CT])),
        ]
    );
    // The provinces' children now hang under Cần Thơ.
    for c in [HG_CT, VT, ST_G] {
        assert_eq!(node.unit(c).await?.parent_id, CT, "{c}");
    }
    for u in [HG, ST, HG_B] {
        assert_eq!(
            node.unit(u).await?.status,
            pb::UnitStatus::Merged as i32,
            "{u}"
        );
    }
    assert_eq!(active_in(&node, HG_A).await?, 4);
    assert_eq!(active_in(&node, HG_B).await?, 0);
    let id = summary(&r).id;
    for card in ["B1", "B2"] {
        let m = node.member(&cards[card], false).await?;
        assert_eq!(
            (m.unit_id.as_str(), m.status),
            (HG_A, pb::MemberStatus::Active as i32)
        );
        let by_decision: Vec<&pb::MemberEvent> = m
            .history
            .iter()
            .filter(|e| e.decision.contains("759/QĐ-TLĐ") && e.decision.contains(&id))
            .collect();
        assert!(
            !by_decision.is_empty() && by_decision.iter().all(|e| e.kind.starts_with("transfer")),
            "{card}: {:?}",
            m.history
        );
    }
    let b3 = node.member(&cards["B3"], false).await?;
    assert_eq!(
        (b3.unit_id.as_str(), b3.status),
        (HG_B, pb::MemberStatus::Left as i32)
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_gives_each_successor_its_part() -> Result<()> {
    let (node, _) = fixture().await?;
    let (east, west) = ("hg-xa-dong", "hg-xa-tay");
    let r = apply(
        &node,
        plan(
            "30/QĐ-LĐLĐ",
            HG,
            vec![
                create(east, "Công đoàn xã Đông", "commune", HG),
                create(west, "Công đoàn xã Tây", "commune", HG),
                pb::ReorgStep {
                    kind: "split".into(),
                    unit: HG_CT.into(),
                    successors: strings(&[east, west]),
                    parts: vec![
                        pb::UnitList {
                            unit_ids: strings(&[HG_A]),
                        },
                        pb::UnitList {
                            unit_ids: strings(&[HG_B]),
                        },
                    ],
                    ..Default::default()
                },
            ],
        ),
        false,
    )
    .await?;
    assert_eq!(summary(&r).units_moved, 2);
    assert_eq!(node.unit(HG_A).await?.parent_id, east);
    assert_eq!(node.unit(HG_B).await?.parent_id, west);
    let ct = node.unit(HG_CT).await?;
    assert_eq!(ct.status, pb::UnitStatus::Closed as i32);
    assert_eq!(ct.successor_ids, [east, west]);
    assert!(
        ct.close_reason.contains("30/QĐ-LĐLĐ"),
        "{}",
        ct.close_reason
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cease_ends_a_units_members_and_a_list_of_members() -> Result<()> {
    let (node, cards) = fixture().await?;
    let r = apply(
        &node,
        plan(
            "44/QĐ-LĐLĐ",
            HG,
            vec![pb::ReorgStep {
                kind: "cease".into(),
                units: strings(&[HG_A]),
                members: vec![cards["B1"].clone()],
                reason: "Doanh nghiệp giải thể".into(),
                on: "2026-11-01".into(),
                ..Default::default()
            }],
        ),
        false,
    )
    .await?;
    assert_eq!(r.impact.as_ref().unwrap().members_ceased, 3);
    assert_eq!(summary(&r).members_ceased, 3);
    for card in ["A1", "A2", "B1"] {
        let m = node.member(&cards[card], false).await?;
        assert_eq!(m.status, pb::MemberStatus::Ceased as i32, "{card}");
        assert_eq!(
            (m.status_on.as_str(), m.status_reason.as_str()),
            ("2026-11-01", "Doanh nghiệp giải thể"),
            "{card}"
        );
        let last = m.history.last().expect("a history");
        assert_eq!(last.kind, "ceased", "{card}");
        assert!(last.decision.contains("44/QĐ-LĐLĐ"), "{card}: {last:?}");
    }
    let b2 = node.member(&cards["B2"], false).await?;
    assert_eq!(b2.status, pb::MemberStatus::Active as i32);
    assert_eq!(active_in(&node, HG_A).await?, 0);
    // A unit ceased stays open: closing it is a step of its own.
    assert_eq!(node.unit(HG_A).await?.status, pb::UnitStatus::Active as i32);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_plan_writes_nothing_and_names_the_step() -> Result<()> {
    let (node, _) = fixture().await?;
    let late = node
        .add(
            VT_G2,
            pb::MemberInput {
                joined_on: "2026-01-15".into(),
                ..person("Đoàn viên mới", "CD-V2", pb::Gender::Male)
            },
        )
        .await?;
    let tree = units(&node).await?;
    let counts = members(&node).await?;
    let rename = |unit: &str| pb::ReorgStep {
        kind: "rename".into(),
        unit: unit.into(),
        name: "Tên mới".into(),
        ..Default::default()
    };
    let past = |mut p: pb::ReorgPlan| {
        p.effective_on = "2019-06-01".into();
        p
    };
    for (what, p, field, reason) in [
        (
            "a cycle",
            plan("1/QĐ", VN, vec![rename(LC_C), moving(&[HG], VT)]),
            "steps[1].units[0]",
            "makes a cycle",
        ),
        (
            "a closed target",
            plan("2/QĐ", HG, vec![moving(&[HG_A], OLD_WARD)]),
            "steps[0].to",
            "is closed",
        ),
        (
            "a kind that holds no units",
            plan("3/QĐ", HG, vec![moving(&[VT_G1], HG_A)]),
            "steps[0].to",
            "cannot hold child units",
        ),
        (
            "a unit named twice",
            plan("4/QĐ", HG, vec![moving(&[VT_G2], HG_CT), close(VT_G2, &[])]),
            "steps[1].unit",
            "named twice",
        ),
        (
            "a date before the unit existed",
            past(plan("5/QĐ", HG, vec![moving(&[VT_G1], HG_CT)])),
            "steps[0].to",
            "before unit hg-chau-thanh existed (2020-01-01)",
        ),
        (
            "a member who joined after the day they would cease",
            plan(
                "7/QĐ",
                HG,
                vec![
                    rename(VT_G1),
                    pb::ReorgStep {
                        kind: "cease".into(),
                        members: vec![late.id.clone()],
                        reason: "giải thể".into(),
                        on: "2026-01-01".into(),
                        ..Default::default()
                    },
                ],
            ),
            "steps[1].on",
            "is before member",
        ),
        (
            "a field the kind does not take",
            plan(
                "6/QĐ",
                HG,
                vec![pb::ReorgStep {
                    successors: strings(&[HG_CT]),
                    ..moving(&[VT_G1], HG_CT)
                }],
            ),
            "steps[0].successors",
            "takes no successors",
        ),
    ] {
        let mark = node.mark().await?;
        for dry_run in [true, false] {
            let m = expect_invalid_inner(apply(&node, p.clone(), dry_run).await, field);
            assert!(m.contains(reason), "{what}: {m}");
        }
        node.unchanged_since(mark).await?;
        assert_eq!(units(&node).await?, tree, "{what}");
        assert_eq!(members(&node).await?, counts, "{what}");
        assert!(decisions(&node).await?.is_empty(), "{what}");
    }
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_what_the_application_then_does() -> Result<()> {
    let (node, _) = fixture().await?;
    let ward = "hg-phuong-vii";
    let mut p = plan(
        "88/QĐ-LĐLĐ",
        HG,
        vec![
            create(ward, "Công đoàn phường VII", "commune", HG),
            moving(&[VT_G1, VT_G2], ward),
            merge(&[HG_B], HG_A),
            close(VT, &[ward]),
        ],
    );
    p.id = "d-88-hau-giang".into();
    let tree = units(&node).await?;
    let mark = node.mark().await?;
    let dry = apply(&node, p.clone(), true).await?;
    assert!(!dry.applied);
    node.unchanged_since(mark).await?;
    assert_eq!(units(&node).await?, tree);
    assert!(decisions(&node).await?.is_empty());
    let (ds, di) = (summary(&dry), dry.impact.clone().unwrap());
    assert_eq!((ds.applied_at.as_str(), ds.applied_by.as_str()), ("", ""));

    let real = apply(&node, p, false).await?;
    assert!(real.applied);
    let (rs, ri) = (summary(&real), real.impact.clone().unwrap());
    assert_eq!(di, ri, "the same impact");
    assert_eq!(ds.id, rs.id);
    assert_eq!(
        (
            ds.units_created,
            ds.units_moved,
            ds.units_closed,
            ds.members_transferred
        ),
        (
            rs.units_created,
            rs.units_moved,
            rs.units_closed,
            rs.members_transferred
        )
    );
    assert_eq!(
        (ri.created.len(), ri.moved.len(), ri.closed.len()),
        (1, 2, 2)
    );
    assert_eq!(ri.members_transferred, 2);
    // What it reported is what it did.
    let after = units(&node).await?;
    let status = |id: &str| after.iter().find(|u| u.0 == id).map(|u| u.2);
    for c in &ri.closed {
        assert_ne!(
            status(&c.unit_id),
            Some(pb::UnitStatus::Active as i32),
            "{}",
            c.unit_id
        );
    }
    for m in &ri.moved {
        assert_eq!(node.unit(&m.unit_id).await?.parent_id, m.to_id);
    }
    assert_eq!(active_in(&node, HG_A).await?, 4);
    // The only node here is vn: its subtree loses VT and HG_B, gains the ward.
    let vn = &ri.nodes[0];
    assert_eq!(vn.node_id, "vn");
    assert_eq!(vn.units_after + 1, vn.units_before);
    assert_eq!(vn.units_gained, [ward]);
    assert_eq!(vn.units_lost, [HG_B, VT]);
    assert_eq!(vn.members_lost, 2, "HG_B's active members");
    let listed = decisions(&node).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, "d-88-hau-giang");
    assert_eq!(listed[0].members_transferred, 2);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_may_take_effect_in_the_past() -> Result<()> {
    let (node, _) = fixture().await?;
    let ward = "hg-phuong-vi-tan";
    // The ward union was created on 1 July 2025 ...
    let mut first = plan(
        "01/QĐ-LĐLĐ",
        HG,
        vec![create(ward, "Công đoàn phường Vị Tân", "commune", HG)],
    );
    first.decided_on = "2025-06-25".into();
    first.effective_on = "2025-07-01".into();
    apply(&node, first, false).await?;
    // ... and received the district's grassroots unions on 27 August,
    // effective from 1 July, when the district was abolished.
    let mut second = plan(
        "02/QĐ-LĐLĐ",
        HG,
        vec![moving(&[VT_G1, VT_G2], ward), close(VT, &[ward])],
    );
    second.decided_on = "2025-08-27".into();
    second.effective_on = "2025-07-01".into();
    apply(&node, second, false).await?;
    let g = node.unit(VT_G1).await?;
    let last = g.parent_history.last().unwrap();
    assert_eq!(
        (
            last.parent_id.as_str(),
            last.decided_on.as_str(),
            last.effective_on.as_str(),
            last.decision_no.as_str()
        ),
        (ward, "2025-08-27", "2025-07-01", "02/QĐ-LĐLĐ")
    );
    let vt = node.unit(VT).await?;
    assert_eq!(vt.closed_on, "2025-07-01");
    // Listed newest effective date first; a tie keeps both.
    let mut third = plan("03/QĐ-LĐLĐ", HG, vec![moving(&[HG_A], ward)]);
    third.effective_on = "2025-09-01".into();
    third.decided_on = "2025-09-01".into();
    apply(&node, third, false).await?;
    let listed = decisions(&node).await?;
    let order: Vec<(&str, &str)> = listed
        .iter()
        .map(|d| (d.number.as_str(), d.effective_on.as_str()))
        .collect();
    assert_eq!(order[0], ("03/QĐ-LĐLĐ", "2025-09-01"));
    assert_eq!(order.len(), 3);
    // A decision cannot take effect before the ward it moves units into.
    let mut early = plan("04/QĐ-LĐLĐ", HG, vec![moving(&[HG_B], ward)]);
    early.effective_on = "2025-06-01".into();
    early.decided_on = "2025-09-02".into();
    let m = expect_invalid_inner(apply(&node, early, false).await, "steps[0].to");
    assert!(m.contains("before unit hg-phuong-vi-tan existed"), "{m}");
    node.stop().await
}
