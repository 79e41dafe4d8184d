//! The `EmulationService`: registrations, initiatives and dedicated works.

use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};
use crate::convert::records::{self as convert, bad};

#[tonic::async_trait]
impl pb::emulation_service_server::EmulationService for Services {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> R<pb::Emulation> {
        let (who, r) = auth::client(req, "Register")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let e = self
            .app
            .register(&r.unit_id, &r.campaign_id, &r.registered_on, &r.pledge)
            .await?;
        Ok(Response::new(convert::emulation(&e)))
    }

    async fn record_initiative(
        &self,
        req: Request<pb::RecordInitiativeRequest>,
    ) -> R<pb::Initiative> {
        let (who, r) = auth::client(req, "RecordInitiative")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let i = self
            .app
            .record_initiative(
                &r.unit_id,
                &r.campaign_id,
                &r.title,
                &r.authors,
                r.value_vnd,
                &r.submitted_on,
            )
            .await?;
        Ok(Response::new(convert::initiative(&i)))
    }

    async fn set_initiative_status(
        &self,
        req: Request<pb::SetInitiativeStatusRequest>,
    ) -> R<pb::Initiative> {
        let (who, r) = auth::client(req, "SetInitiativeStatus")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let status = convert::initiative_status_from(r.status).ok_or_else(|| {
            bad(
                "status",
                "expected SUBMITTED, UNDER_REVIEW, VALID, REJECTED or RECOGNISED",
            )
        })?;
        let i = self
            .app
            .set_initiative_status(
                &r.unit_id,
                &r.campaign_id,
                &r.initiative_id,
                status,
                &r.recognised_level,
                &r.note,
            )
            .await?;
        Ok(Response::new(convert::initiative(&i)))
    }

    async fn record_work(&self, req: Request<pb::RecordWorkRequest>) -> R<pb::Work> {
        let (who, r) = auth::client(req, "RecordWork")?;
        who.writes(&self.app, "unit_id", &r.unit_id)?;
        let w = self
            .app
            .record_work(
                &r.unit_id,
                &r.campaign_id,
                &r.name,
                r.value_vnd,
                r.plaque,
                &r.completed_on,
            )
            .await?;
        Ok(Response::new(convert::work(&w)))
    }

    async fn get_emulation(&self, req: Request<pb::GetEmulationRequest>) -> R<pb::Emulation> {
        let (who, r) = auth::client(req, "GetEmulation")?;
        who.reads(&self.app, "unit_id", &r.unit_id)?;
        let e = self.app.get_emulation(&r.unit_id, &r.campaign_id).await?;
        Ok(Response::new(convert::emulation(&e)))
    }
}
