//! `hopluu report`: members, initiatives against plan, awards and
//! dedicated works over a unit's subtree, as it stood on a date
//! (`--as-of`; by default today, or a campaign's last day once it ended).

use clap::{Args, Subcommand};
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{
    MemberCounts, Table, initiatives_table, members_report_table, print_headed, vnd,
};

/// What every report takes: the unit and the date.
#[derive(Args, Debug)]
pub struct ReportOn {
    /// The unit reported on (default: your own unit, or the node's).
    #[arg(long, default_value = "")]
    unit: String,
    /// The date reported on, YYYY-MM-DD: the tree, the members' statuses,
    /// the works completed and the awards decided as they stood then
    /// (default: today; for a campaign, its last day once it ended).
    #[arg(long, value_name = "DATE", default_value = "")]
    as_of: String,
}

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Members by status and gender, per child unit.
    Members {
        #[command(flatten)]
        on: ReportOn,
    },
    /// Valid initiatives against plan, per child unit, with rank.
    Initiatives {
        #[arg(long)]
        campaign: String,
        #[command(flatten)]
        on: ReportOn,
    },
    /// Awards by type, level and year.
    Awards {
        #[command(flatten)]
        on: ReportOn,
        #[arg(long)]
        year: Option<u32>,
    },
    /// Dedicated works by count and value.
    Works {
        #[command(flatten)]
        on: ReportOn,
        #[arg(long)]
        campaign: Option<String>,
    },
}

/// The line above a report's table: what, of which unit, on which date.
fn heading(what: &str, total_unit: Option<&str>, asked: &str, as_of: &str) -> String {
    let unit = total_unit.filter(|u| !u.is_empty()).unwrap_or(asked);
    if unit.is_empty() {
        format!("{what}, as of {as_of}")
    } else {
        format!("{what} of {unit}, as of {as_of}")
    }
}

pub async fn run(cmd: ReportCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::report_service_client::ReportServiceClient::new(channel(addr).await?);
    match cmd {
        ReportCmd::Members { on } => {
            let r = c
                .members_report(pb::MembersReportRequest {
                    unit_id: on.unit.clone(),
                    as_of: on.as_of,
                })
                .await?
                .into_inner();
            let unit = r.total.as_ref().map(|t| t.unit_id.as_str());
            let title = heading("Members", unit, &on.unit, &r.as_of);
            print_headed(json, &r, "hopluu.v1.MembersReportResponse", &title, || {
                members_report_table(&r, MemberCounts::Every)
            })
        }
        ReportCmd::Initiatives { campaign, on } => {
            let r = c
                .initiatives_report(pb::InitiativesReportRequest {
                    campaign_id: campaign.clone(),
                    unit_id: on.unit.clone(),
                    as_of: on.as_of,
                })
                .await?
                .into_inner();
            let unit = r.total.as_ref().map(|t| t.unit_id.as_str());
            let what = format!("Initiatives in {campaign} against plan");
            let title = heading(&what, unit, &on.unit, &r.as_of);
            print_headed(
                json,
                &r,
                "hopluu.v1.InitiativesReportResponse",
                &title,
                || initiatives_table(&r),
            )
        }
        ReportCmd::Awards { on, year } => {
            let r = c
                .awards_report(pb::AwardsReportRequest {
                    unit_id: on.unit.clone(),
                    year,
                    as_of: on.as_of,
                })
                .await?
                .into_inner();
            let title = heading("Awards", None, &on.unit, &r.as_of);
            print_headed(json, &r, "hopluu.v1.AwardsReportResponse", &title, || {
                let mut t = Table::new(&["year", "level", "award", "recipients"]);
                for row in &r.rows {
                    t.row(vec![
                        row.year.to_string(),
                        row.level.clone(),
                        row.award_name.clone(),
                        row.count.to_string(),
                    ]);
                }
                if let Some(total) = &r.total {
                    t.row(vec![
                        String::new(),
                        String::new(),
                        total.award_name.clone(),
                        total.count.to_string(),
                    ]);
                }
                t
            })
        }
        ReportCmd::Works { on, campaign } => {
            let r = c
                .works_report(pb::WorksReportRequest {
                    unit_id: on.unit.clone(),
                    campaign_id: campaign,
                    as_of: on.as_of,
                })
                .await?
                .into_inner();
            let unit = r.total.as_ref().map(|t| t.unit_id.as_str());
            let title = heading("Dedicated works", unit, &on.unit, &r.as_of);
            print_headed(json, &r, "hopluu.v1.WorksReportResponse", &title, || {
                let mut t = Table::new(&["unit", "name", "works", "value", "plaques"]);
                for row in r.rows.iter().chain(r.total.as_ref()) {
                    t.row(vec![
                        row.unit_id.clone(),
                        row.unit_name.clone(),
                        row.count.to_string(),
                        vnd(row.value_vnd),
                        row.plaques.to_string(),
                    ]);
                }
                t
            })
        }
    }
}
