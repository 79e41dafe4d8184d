//! What the demo prints of the federation's data: the national report and
//! members held per node.

use anyhow::{Context, Result};
use hopluu_devcluster::federation::{Federation, LocalNode};
use hopluu_proto::v1 as pb;

use super::NATIONAL;
use crate::output::{MemberCounts, members_report_table, vnd};

pub(super) fn section(title: &str) {
    println!();
    println!("== {title} ==");
}

/// "Liên đoàn Lao động tỉnh Hậu Giang" -> "Hậu Giang".
pub(super) fn short_name(name: &str) -> &str {
    for prefix in [
        "Liên đoàn Lao động tỉnh ",
        "Liên đoàn Lao động thành phố ",
        "Liên đoàn Lao động huyện ",
        "Công đoàn đặc khu ",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest;
        }
    }
    name
}

pub(super) async fn active_members(node: &LocalNode, unit: &str) -> Result<u64> {
    Ok(node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: unit.into(),
            as_of: String::new(),
        })
        .await
        .with_context(|| format!("members report at {}", node.id))?
        .into_inner()
        .total
        .map(|t| t.active)
        .unwrap_or(0))
}

/// Prints the national node's reports; returns its count of active members.
pub(super) async fn national_report(fed: &Federation, campaign: &str) -> Result<u64> {
    let vn = fed.node(NATIONAL);
    let members = vn
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: NATIONAL.into(),
            as_of: String::new(),
        })
        .await
        .context("members report at vn")?
        .into_inner();
    println!("Members, as the national node vn sees them:");
    let t = members_report_table(&members, MemberCounts::Active);
    print!("{}", t.render());

    let r = vn
        .reports()
        .initiatives_report(pb::InitiativesReportRequest {
            campaign_id: campaign.into(),
            unit_id: NATIONAL.into(),
            as_of: String::new(),
        })
        .await
        .context("initiatives report at vn")?
        .into_inner();
    println!();
    println!("Initiatives in \"Lao động giỏi, lao động sáng tạo\" against plan, at vn:");
    print!("{}", crate::output::initiatives_table(&r).render());

    let w = vn
        .reports()
        .works_report(pb::WorksReportRequest {
            unit_id: NATIONAL.into(),
            campaign_id: Some(campaign.into()),
            as_of: String::new(),
        })
        .await
        .context("works report at vn")?
        .into_inner()
        .total
        .unwrap_or_default();
    let a = vn
        .reports()
        .awards_report(pb::AwardsReportRequest {
            unit_id: NATIONAL.into(),
            year: None,
            as_of: String::new(),
        })
        .await
        .context("awards report at vn")?
        .into_inner()
        .total
        .unwrap_or_default();
    println!();
    println!(
        "Dedicated works: {} worth {} ({} with a plaque); awards granted: {} (one per recipient)",
        w.count,
        vnd(w.value_vnd),
        w.plaques,
        a.count
    );
    Ok(members.total.map(|t| t.active).unwrap_or(0))
}
