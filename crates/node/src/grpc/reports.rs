//! The `ReportService`: members, initiatives against plan, works and
//! awards over a unit's subtree as it stood on a date (the request's
//! `as_of`, which the App parses and defaults), each response naming the
//! date it is of.

use hopluu_model::UnitId;
use hopluu_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{R, Services, auth};
use crate::convert::records::{initiatives_row, members_row, works_row};

impl Services {
    /// The unit a report is of: the request's, else the staff member's own
    /// unit, else the node's; the caller must be allowed to read it.
    fn report_unit(&self, who: &auth::Caller, unit: String) -> Result<UnitId, Status> {
        let unit = who.or_own(unit);
        if !unit.trim().is_empty() {
            who.reads(&self.app, "unit_id", &unit)?;
        }
        Ok(self.app.report_unit(&unit)?)
    }
}

#[tonic::async_trait]
impl pb::report_service_server::ReportService for Services {
    async fn members_report(
        &self,
        req: Request<pb::MembersReportRequest>,
    ) -> R<pb::MembersReportResponse> {
        let (who, r) = auth::client(req, "MembersReport")?;
        let unit = self.report_unit(&who, r.unit_id)?;
        let report = self.app.members_report(&unit, &r.as_of).await?;
        Ok(Response::new(pb::MembersReportResponse {
            rows: report.rows.iter().map(members_row).collect(),
            total: Some(members_row(&report.total)),
            as_of: report.as_of.to_string(),
        }))
    }

    async fn initiatives_report(
        &self,
        req: Request<pb::InitiativesReportRequest>,
    ) -> R<pb::InitiativesReportResponse> {
        let (who, r) = auth::client(req, "InitiativesReport")?;
        let unit = self.report_unit(&who, r.unit_id)?;
        let report = self
            .app
            .initiatives_report(&r.campaign_id, &unit, &r.as_of)
            .await?;
        Ok(Response::new(pb::InitiativesReportResponse {
            rows: report.rows.iter().map(initiatives_row).collect(),
            total: Some(initiatives_row(&report.total)),
            as_of: report.as_of.to_string(),
        }))
    }

    async fn awards_report(
        &self,
        req: Request<pb::AwardsReportRequest>,
    ) -> R<pb::AwardsReportResponse> {
        let (who, r) = auth::client(req, "AwardsReport")?;
        let unit = self.report_unit(&who, r.unit_id.clone())?;
        let report = self.app.awards_report(&unit, r.year, &r.as_of).await?;
        let total: u64 = report.rows.iter().map(|(r, _)| r.count).sum();
        Ok(Response::new(pb::AwardsReportResponse {
            rows: report
                .rows
                .iter()
                .map(|(r, name)| pb::AwardsRow {
                    award_type: r.award_type.clone(),
                    award_name: name.clone(),
                    level: r.level.clone(),
                    year: r.year,
                    count: r.count,
                })
                .collect(),
            total: Some(pb::AwardsRow {
                award_type: String::new(),
                award_name: "Tổng cộng".to_owned(),
                level: String::new(),
                year: r.year.unwrap_or(0),
                count: total,
            }),
            as_of: report.as_of.to_string(),
        }))
    }

    async fn works_report(
        &self,
        req: Request<pb::WorksReportRequest>,
    ) -> R<pb::WorksReportResponse> {
        let (who, r) = auth::client(req, "WorksReport")?;
        let unit = self.report_unit(&who, r.unit_id.clone())?;
        let report = self
            .app
            .works_report(&unit, r.campaign_id.as_deref(), &r.as_of)
            .await?;
        Ok(Response::new(pb::WorksReportResponse {
            rows: report.rows.iter().map(works_row).collect(),
            total: Some(works_row(&report.total)),
            as_of: report.as_of.to_string(),
        }))
    }
}
