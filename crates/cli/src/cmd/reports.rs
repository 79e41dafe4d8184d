//! `hopluu report`: members, initiatives against plan, awards and
//! dedicated works over a unit's subtree.

use clap::Subcommand;
use hopluu_proto::v1 as pb;

use crate::client::{Target, channel};
use crate::output::{MemberCounts, Table, initiatives_table, members_report_table, print, vnd};

#[derive(Subcommand, Debug)]
pub enum ReportCmd {
    /// Members by status and gender, per child unit.
    Members {
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Valid initiatives against plan, per child unit, with rank.
    Initiatives {
        #[arg(long)]
        campaign: String,
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Awards by type, level and year.
    Awards {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        year: Option<u32>,
    },
    /// Dedicated works by count and value.
    Works {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        campaign: Option<String>,
    },
}

pub async fn run(cmd: ReportCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::report_service_client::ReportServiceClient::new(channel(addr).await?);
    match cmd {
        ReportCmd::Members { unit } => {
            let r = c
                .members_report(pb::MembersReportRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.MembersReportResponse", || {
                members_report_table(&r, MemberCounts::Every)
            })
        }
        ReportCmd::Initiatives { campaign, unit } => {
            let r = c
                .initiatives_report(pb::InitiativesReportRequest {
                    campaign_id: campaign,
                    unit_id: unit,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.InitiativesReportResponse", || {
                initiatives_table(&r)
            })
        }
        ReportCmd::Awards { unit, year } => {
            let r = c
                .awards_report(pb::AwardsReportRequest {
                    unit_id: unit,
                    year,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.AwardsReportResponse", || {
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
        ReportCmd::Works { unit, campaign } => {
            let r = c
                .works_report(pb::WorksReportRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.WorksReportResponse", || {
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
