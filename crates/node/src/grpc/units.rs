//! The `UnitService`: the union tree's units (create, rename, move, close, read, list).

use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};
use crate::app::units::DecisionInput;
use crate::convert::records as convert;

#[tonic::async_trait]
impl pb::unit_service_server::UnitService for Services {
    async fn create_unit(&self, req: Request<pb::CreateUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "CreateUnit")?;
        who.writes(&self.app, "parent_id", &r.parent_id)?;
        let u = self
            .app
            .create_unit(
                r.id.as_deref(),
                &r.name,
                &r.kind,
                &r.parent_id,
                &DecisionInput {
                    number: &r.decision_no,
                    decided_on: "",
                    effective_on: &r.effective_on,
                },
            )
            .await?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn rename_unit(&self, req: Request<pb::RenameUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "RenameUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .rename_unit(
                &r.unit_id,
                &r.name,
                &DecisionInput {
                    number: &r.decision_no,
                    decided_on: "",
                    effective_on: &r.effective_on,
                },
            )
            .await?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn move_unit(&self, req: Request<pb::MoveUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "MoveUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        who.writes(&self.app, "new_parent_id", &r.new_parent_id)?;
        let u = self
            .app
            .move_unit(
                &r.unit_id,
                &r.new_parent_id,
                &DecisionInput {
                    number: &r.decision_no,
                    decided_on: &r.decided_on,
                    effective_on: &r.effective_on,
                },
            )
            .await?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn close_unit(&self, req: Request<pb::CloseUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "CloseUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .close_unit(
                &r.unit_id,
                &r.reason,
                &DecisionInput {
                    number: &r.decision_no,
                    decided_on: "",
                    effective_on: &r.effective_on,
                },
                &r.successor_ids,
                r.merged,
            )
            .await?;
        let depth = self.app.tree().depth(&u.id) as u32;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn get_unit(&self, req: Request<pb::GetUnitRequest>) -> R<pb::Unit> {
        let (_, r) = auth::client(req, "GetUnit")?;
        let (u, depth) = self.app.get_unit(&r.unit_id).await?;
        Ok(Response::new(convert::unit(&u, depth)))
    }

    async fn list_units(&self, req: Request<pb::ListUnitsRequest>) -> R<pb::ListUnitsResponse> {
        let (_, r) = auth::client(req, "ListUnits")?;
        let rows = self
            .app
            .list_units(&r.root_id, r.include_closed, r.max_depth)
            .await?;
        Ok(Response::new(pb::ListUnitsResponse {
            units: rows.iter().map(convert::unit_row).collect(),
        }))
    }

    async fn list_unit_kinds(
        &self,
        req: Request<pb::ListUnitKindsRequest>,
    ) -> R<pb::ListUnitKindsResponse> {
        auth::client(req, "ListUnitKinds")?;
        Ok(Response::new(pb::ListUnitKindsResponse {
            kinds: self
                .app
                .kinds
                .all()
                .iter()
                .map(|k| pb::UnitKind {
                    id: k.id.to_string(),
                    label: k.label.clone(),
                    holds_members: k.holds_members,
                })
                .collect(),
        }))
    }
}
