//! The `AwardService`: proposals, decisions, revocations and listings of awards.

use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};
use crate::convert::records as convert;

#[tonic::async_trait]
impl pb::award_service_server::AwardService for Services {
    async fn list_award_types(
        &self,
        req: Request<pb::ListAwardTypesRequest>,
    ) -> R<pb::ListAwardTypesResponse> {
        auth::client(req, "ListAwardTypes")?;
        Ok(Response::new(pb::ListAwardTypesResponse {
            types: self
                .app
                .awards
                .all()
                .iter()
                .map(|t| pb::AwardType {
                    id: t.id.to_string(),
                    name: t.name.clone(),
                    kind: convert::recipient_kind(t.recipient) as i32,
                    min_granting_level: t
                        .granting_kinds
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    granting_kinds: t.granting_kinds.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }))
    }

    async fn propose_award(&self, req: Request<pb::ProposeAwardRequest>) -> R<pb::Proposal> {
        let (who, r) = auth::client(req, "ProposeAward")?;
        who.writes(&self.app, "proposing_unit_id", &r.proposing_unit_id)?;
        let candidates: Vec<_> = r.candidates.iter().map(convert::raw_recipient).collect();
        let p = self
            .app
            .propose_award(
                &r.proposing_unit_id,
                &r.addressed_unit_id,
                &r.award_type,
                r.campaign_id.as_deref(),
                &candidates,
                &r.reason,
                &r.proposed_on,
            )
            .await?;
        Ok(Response::new(convert::proposal(&p)))
    }

    async fn list_proposals(
        &self,
        req: Request<pb::ListProposalsRequest>,
    ) -> R<pb::ListProposalsResponse> {
        let (who, r) = auth::client(req, "ListProposals")?;
        let unit = who.or_own(r.unit_id);
        who.reads(&self.app, "unit_id", &unit)?;
        let ps = self.app.list_proposals(&unit).await?;
        Ok(Response::new(pb::ListProposalsResponse {
            proposals: ps.iter().map(convert::proposal).collect(),
        }))
    }

    async fn decide_award(&self, req: Request<pb::DecideAwardRequest>) -> R<pb::Award> {
        let (who, r) = auth::client(req, "DecideAward")?;
        who.writes(&self.app, "issuing_unit_id", &r.issuing_unit_id)?;
        who.writes_proposal(&self.app, r.proposal_id.as_deref())
            .await?;
        let recipients: Vec<_> = r.recipients.iter().map(convert::raw_recipient).collect();
        let a = self
            .app
            .decide_award(
                &r.issuing_unit_id,
                &r.decision_no,
                &r.decided_on,
                &r.effective_on,
                &r.award_type,
                &recipients,
                r.campaign_id.as_deref(),
                r.proposal_id.as_deref(),
                &r.reason,
            )
            .await?;
        Ok(Response::new(convert::award(&a)))
    }

    async fn revoke_award(&self, req: Request<pb::RevokeAwardRequest>) -> R<pb::Award> {
        let (who, r) = auth::client(req, "RevokeAward")?;
        who.writes_award(&self.app, &r.award_id).await?;
        let a = self
            .app
            .revoke_award(&r.award_id, &r.revoked_on, &r.reason)
            .await?;
        Ok(Response::new(convert::award(&a)))
    }

    async fn list_awards(&self, req: Request<pb::ListAwardsRequest>) -> R<pb::ListAwardsResponse> {
        let (who, r) = auth::client(req, "ListAwards")?;
        let unit = who.or_own(r.unit_id);
        who.reads(&self.app, "unit_id", &unit)?;
        let a = self.app.list_awards(&unit, r.year).await?;
        Ok(Response::new(pb::ListAwardsResponse {
            awards: a.iter().map(convert::award).collect(),
        }))
    }
}
