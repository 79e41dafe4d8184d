//! Reports on either side of a decision's effective date: the 2025
//! merger of Hậu Giang and Sóc Trăng into Cần Thơ applied as one
//! decision, then a mass cessation, each counted exactly as of the day
//! before and the day it took effect.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use hopluu_proto::v1 as pb;

use crate::harness::*;
use crate::reorg::{CT, ST, apply, fixture, merge, plan, strings};

/// Active members per row of the national members report as of `as_of`.
async fn active_by_row(node: &Node, as_of: &str) -> Result<BTreeMap<String, u64>> {
    let r = node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: VN.into(),
            as_of: as_of.into(),
        })
        .await?
        .into_inner();
    Ok(r.rows
        .iter()
        .map(|r| (r.unit_id.clone(), r.active))
        .collect())
}

#[tokio::test]
async fn a_merger_and_a_cessation_counted_on_either_side_of_their_dates() -> Result<()> {
    let (node, _) = fixture().await?;
    let mut merger = plan("759/QĐ-TLĐ", VN, vec![merge(&[HG, ST], CT)]);
    merger.decided_on = "2025-06-20".into();
    merger.effective_on = "2025-07-01".into();
    apply(&node, merger, false).await?;

    // The day before, the old provinces with their members (B3 left only
    // in 2026, so counts as active then); Cần Thơ empty.
    let before = active_by_row(&node, "2025-06-30").await?;
    let want: BTreeMap<String, u64> = [(HG, 6), (ST, 1), (CT, 0), (LC, 0)]
        .into_iter()
        .map(|(u, n)| (u.to_owned(), n))
        .collect();
    ensure!(before == want, "as of 2025-06-30: {before:?}");
    // From the effective date, Cần Thơ holds them all; the merged
    // provinces are gone from the report.
    let after = active_by_row(&node, "2025-07-01").await?;
    let want: BTreeMap<String, u64> = [(CT, 7), (LC, 0)]
        .into_iter()
        .map(|(u, n)| (u.to_owned(), n))
        .collect();
    ensure!(after == want, "as of 2025-07-01: {after:?}");

    // The members of a dissolved union cease on 1 September by decision.
    let cessation = plan(
        "45/QĐ-LĐLĐ",
        CT,
        vec![pb::ReorgStep {
            kind: "cease".into(),
            units: strings(&[HG_A]),
            reason: "Doanh nghiệp giải thể".into(),
            on: "2025-09-01".into(),
            ..Default::default()
        }],
    );
    let done = apply(&node, cessation, false).await?;
    ensure!(done.impact.unwrap_or_default().members_ceased == 2);
    let ceased_on = |as_of: &'static str| {
        let node = &node;
        async move {
            let r = node
                .reports()
                .members_report(pb::MembersReportRequest {
                    unit_id: CT.into(),
                    as_of: as_of.into(),
                })
                .await?
                .into_inner();
            let t = r.total.unwrap_or_default();
            anyhow::Ok((t.active, t.ceased))
        }
    };
    ensure!(ceased_on("2025-08-31").await? == (7, 0), "the day before");
    ensure!(ceased_on("2025-09-01").await? == (5, 2), "the day of");

    // A ceased member is still found by name, and shown with the
    // decision in their history.
    let found = node
        .members()
        .find_members(pb::FindMembersRequest {
            query: "Đoàn viên A1".into(),
            scope_unit_id: VN.into(),
            limit: 10,
        })
        .await?
        .into_inner();
    let m = found
        .members
        .iter()
        .find(|m| m.card_number == "CD-A1")
        .ok_or_else(|| anyhow::anyhow!("not found: {found:?}"))?;
    ensure!(m.status == pb::MemberStatus::Ceased as i32, "{m:?}");
    let shown = node.member(&m.id, false).await?;
    let last = shown.history.last().expect("an event");
    ensure!(
        last.kind == "ceased" && last.on == "2025-09-01" && last.decision.starts_with("45/QĐ-LĐLĐ"),
        "{last:?}"
    );
    Ok(())
}
