//! The `UnitService`: the union tree's units (create, rename, move, close, read, list).

use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};
use crate::app::units::DecisionInput;
use crate::convert::records as convert;

/// A request's decision fields, named.
fn decision<'a>(number: &'a str, decided_on: &'a str, effective_on: &'a str) -> DecisionInput<'a> {
    DecisionInput {
        number,
        decided_on,
        effective_on,
    }
}

impl Services {
    /// A unit with its depth in this node's tree.
    fn unit_pb(&self, u: &hopluu_model::unit::Unit) -> pb::Unit {
        convert::unit(u, self.app.tree().depth(&u.id) as u32)
    }
}

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
                &decision(&r.decision_no, "", &r.effective_on),
            )
            .await?;
        Ok(Response::new(self.unit_pb(&u)))
    }

    async fn rename_unit(&self, req: Request<pb::RenameUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "RenameUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .rename_unit(
                &r.unit_id,
                &r.name,
                &decision(&r.decision_no, "", &r.effective_on),
            )
            .await?;
        Ok(Response::new(self.unit_pb(&u)))
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
                &decision(&r.decision_no, &r.decided_on, &r.effective_on),
            )
            .await?;
        Ok(Response::new(self.unit_pb(&u)))
    }

    async fn close_unit(&self, req: Request<pb::CloseUnitRequest>) -> R<pb::Unit> {
        let (who, r) = auth::client(req, "CloseUnit")?;
        who.writes_unit_record(&self.app, "unit_id", &r.unit_id)?;
        let u = self
            .app
            .close_unit(
                &r.unit_id,
                &r.reason,
                &decision(&r.decision_no, "", &r.effective_on),
                &r.successor_ids,
                r.merged,
            )
            .await?;
        Ok(Response::new(self.unit_pb(&u)))
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
