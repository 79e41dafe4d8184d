//! The `ReorgService`: reorganisation decisions (apply or dry-run, list, show).

use hopluu_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{R, Services, auth};
use crate::convert::reorg as convert;

#[tonic::async_trait]
impl pb::reorg_service_server::ReorgService for Services {
    async fn apply_decision(
        &self,
        req: Request<pb::ApplyDecisionRequest>,
    ) -> R<pb::ApplyDecisionResponse> {
        let (who, r) = auth::client(req, "ApplyDecision")?;
        let plan = r
            .plan
            .ok_or_else(|| Status::invalid_argument("plan: must be given"))?;
        // Every unit a decision changes lies below its issuing unit (the
        // App checks it), so writing the issuing unit's records covers them.
        who.writes(&self.app, "plan.issuing_unit", &plan.issuing_unit)?;
        let applied = self
            .app
            .apply_decision(&convert::plan_from_pb(plan), r.dry_run)
            .await?;
        Ok(Response::new(convert::applied(&applied)))
    }

    async fn list_decisions(
        &self,
        req: Request<pb::ListDecisionsRequest>,
    ) -> R<pb::ListDecisionsResponse> {
        let (who, r) = auth::client(req, "ListDecisions")?;
        let unit = who.or_own(r.unit_id);
        if !unit.trim().is_empty() {
            who.reads(&self.app, "unit_id", &unit)?;
        }
        let rows = self.app.list_decisions(&unit).await?;
        Ok(Response::new(pb::ListDecisionsResponse {
            decisions: rows.iter().map(convert::summary).collect(),
        }))
    }

    async fn get_decision(&self, req: Request<pb::GetDecisionRequest>) -> R<pb::DecisionRecord> {
        let (who, r) = auth::client(req, "GetDecision")?;
        let (row, rec) = self.app.get_decision(&r.id).await?;
        who.reads(&self.app, "id", &row.issuing_unit)?;
        let mut out = convert::record(&rec);
        out.summary = Some(convert::summary(&row));
        out.handovers = self
            .app
            .handovers(&rec.id)
            .await?
            .iter()
            .map(convert::handover)
            .collect();
        Ok(Response::new(out))
    }
}
