//! The `CampaignService`: emulation campaigns and their plans.

use hopluu_model::campaign::Plan;
use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};
use crate::app::campaigns::CampaignInput;
use crate::convert::records as convert;

#[tonic::async_trait]
impl pb::campaign_service_server::CampaignService for Services {
    async fn launch_campaign(&self, req: Request<pb::LaunchCampaignRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "LaunchCampaign")?;
        who.writes(&self.app, "launching_unit_id", &r.launching_unit_id)?;
        let c = self
            .app
            .launch_campaign(&CampaignInput {
                id: r.id.as_deref(),
                launching_unit: &r.launching_unit_id,
                title: &r.title,
                theme: &r.theme,
                starts_on: &r.starts_on,
                ends_on: &r.ends_on,
                scope_unit: &r.scope_unit_id,
            })
            .await?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn get_campaign(&self, req: Request<pb::GetCampaignRequest>) -> R<pb::Campaign> {
        let (_, r) = auth::client(req, "GetCampaign")?;
        let c = self.app.get_campaign(&r.campaign_id).await?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn list_campaigns(
        &self,
        req: Request<pb::ListCampaignsRequest>,
    ) -> R<pb::ListCampaignsResponse> {
        let (who, r) = auth::client(req, "ListCampaigns")?;
        let cs = self.app.list_campaigns(&who.or_own(r.unit_id)).await?;
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: cs.iter().map(convert::campaign).collect(),
        }))
    }

    async fn set_plans(&self, req: Request<pb::SetPlansRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "SetPlans")?;
        who.writes_campaign(&self.app, &r.campaign_id).await?;
        let plans: Vec<(String, Plan)> = r
            .plans
            .into_iter()
            .map(|p| {
                (
                    p.unit_id,
                    Plan {
                        initiative_quota: p.initiative_quota,
                        works_quota: p.works_quota,
                    },
                )
            })
            .collect();
        let c = self.app.set_plans(&r.campaign_id, &plans).await?;
        Ok(Response::new(convert::campaign(&c)))
    }

    async fn close_campaign(&self, req: Request<pb::CloseCampaignRequest>) -> R<pb::Campaign> {
        let (who, r) = auth::client(req, "CloseCampaign")?;
        who.writes_campaign(&self.app, &r.campaign_id).await?;
        let c = self
            .app
            .close_campaign(&r.campaign_id, &r.closed_on)
            .await?;
        Ok(Response::new(convert::campaign(&c)))
    }
}
