//! Award proposals, decisions, revocations and listings.

use hopluu_model::award::{self, Recipient};
use hopluu_model::unit::Decision;
use hopluu_model::{AwardId, CampaignId, Date, DocId, MemberId, ModelError, ProposalId, UnitId};

use super::{App, Result, TapField, invalid};
use crate::NodeError;

impl App {
    // ---- awards ------------------------------------------------------

    /// Resolves recipients: members to their active unit; every recipient
    /// must lie in `within`'s subtree.
    async fn recipients(
        &self,
        field: &str,
        raw: &[RawRecipient],
        within: &UnitId,
    ) -> Result<Vec<Recipient>> {
        let mut out = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let rec = match r {
                RawRecipient::Member(m) => {
                    let id = MemberId::parse(&f, m)?;
                    let loc = self.active_loc(&id).await.map_err(|e| e.tap_field(&f))?;
                    Recipient::Member {
                        member: id,
                        unit: loc.unit,
                    }
                }
                RawRecipient::Unit(u) => {
                    let id = UnitId::parse(&f, u)?;
                    self.tree().require_active(&f, &id)?;
                    Recipient::Unit(id)
                }
                RawRecipient::Missing => return Err(invalid(&f, "give a member_id or a unit_id")),
            };
            if !self.tree().is_within(rec.unit(), within) {
                return Err(invalid(
                    &f,
                    format!("{} is outside unit {within}'s subtree", rec.unit()),
                ));
            }
            out.push(rec);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn propose_award(
        &self,
        proposing: &str,
        addressed: &str,
        award_type: &str,
        campaign: Option<&str>,
        candidates: &[RawRecipient],
        reason: &str,
        proposed_on: &str,
    ) -> Result<award::Proposal> {
        let proposing = self.parse_unit("proposing_unit_id", proposing)?;
        let addressed = self.parse_unit("addressed_unit_id", addressed)?;
        let kind = self.awards.parse("award_type", award_type)?.clone();
        self.writable_unit("proposing_unit_id", &proposing).await?;
        {
            let tree = self.tree();
            tree.require_active("addressed_unit_id", &addressed)?;
            if addressed == proposing || !tree.is_within(&proposing, &addressed) {
                return Err(invalid(
                    "addressed_unit_id",
                    format!("{addressed} is not above the proposing unit {proposing}"),
                ));
            }
        }
        let campaign = self.optional_campaign(campaign).await?;
        let candidates = self
            .recipients("candidates", candidates, &proposing)
            .await?;
        let on = Date::parse_opt("proposed_on", proposed_on)?.unwrap_or(self.today());
        let id = ProposalId::generate();
        let mut tx = self.store.begin().await?;
        let p = award::propose(
            tx.doc(&DocId::Proposal(id.clone())).await?,
            &self.author(),
            &award::NewProposal {
                id,
                proposing_unit: proposing,
                addressed_unit: addressed,
                award_type: &kind,
                campaign,
                candidates,
                reason: reason.to_owned(),
                proposed_on: on,
            },
        )?;
        tx.commit().await?;
        Ok(p)
    }

    async fn optional_campaign(&self, campaign: Option<&str>) -> Result<Option<CampaignId>> {
        match campaign.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(c) => Ok(Some(self.existing_campaign(c).await?.id)),
        }
    }

    pub async fn list_proposals(&self, unit: &str) -> Result<Vec<award::Proposal>> {
        let unit = self.parse_unit("unit_id", unit)?;
        Ok(self.store.proposals(&unit).await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn decide_award(
        &self,
        issuing: &str,
        decision_no: &str,
        decided_on: &str,
        effective_on: &str,
        award_type: &str,
        recipients: &[RawRecipient],
        campaign: Option<&str>,
        proposal: Option<&str>,
        reason: &str,
    ) -> Result<award::Award> {
        let issuing = self.parse_unit("issuing_unit_id", issuing)?;
        let decision = Decision::parse(decision_no, decided_on, effective_on, self.today())?;
        let kind = self.awards.parse("award_type", award_type)?.clone();
        self.writable_unit("issuing_unit_id", &issuing).await?;
        let issuing_kind = self
            .tree()
            .get(&issuing)
            .map(|n| n.kind.clone())
            .expect("checked");
        award::check_grantable(&kind, &issuing_kind)?;
        let recipients = self.recipients("recipients", recipients, &issuing).await?;
        let campaign = self.optional_campaign(campaign).await?;
        let proposal = match proposal.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(p) => {
                let id = ProposalId::parse("proposal_id", p)?;
                let prop =
                    self.store.proposal(&id).await?.ok_or_else(|| {
                        NodeError::Refused(ModelError::not_found("proposal", &id))
                    })?;
                if prop.status != award::ProposalStatus::Pending {
                    return Err(invalid(
                        "proposal_id",
                        format!("proposal {id} is already {}", prop.status.as_str()),
                    ));
                }
                Some(id)
            }
        };
        let id = AwardId::generate();
        let mut tx = self.store.begin().await?;
        let author = self.author();
        let a = award::decide(
            tx.doc(&DocId::Award(id.clone())).await?,
            &author,
            &award::NewAward {
                id: id.clone(),
                issuing_unit: issuing,
                issuing_kind,
                decision_no: decision.decision_no.clone(),
                decided_on: decision.decided_on,
                effective_on: decision.effective_on,
                award_type: &kind,
                recipients,
                campaign,
                proposal: proposal.clone(),
                reason: reason.to_owned(),
            },
        )?;
        if let Some(p) = proposal {
            award::mark_decided(tx.doc(&DocId::Proposal(p)).await?, &author, &id)?;
        }
        tx.commit().await?;
        Ok(a)
    }

    pub async fn revoke_award(
        &self,
        id: &str,
        revoked_on: &str,
        reason: &str,
    ) -> Result<award::Award> {
        let id = AwardId::parse("award_id", id)?;
        let a = self
            .store
            .award(&id)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("award", &id)))?;
        self.tree().check_authority(&self.unit, &a.issuing_unit)?;
        let on = Date::parse_opt("revoked_on", revoked_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let a = award::revoke(tx.doc(&DocId::Award(id)).await?, &self.author(), on, reason)?;
        tx.commit().await?;
        Ok(a)
    }

    pub async fn list_awards(&self, unit: &str, year: Option<u32>) -> Result<Vec<award::Award>> {
        let unit = self.parse_unit("unit_id", unit)?;
        Ok(self.store.awards(&unit, year).await?)
    }
}

/// A recipient as a request names it.
#[derive(Debug, Clone)]
pub enum RawRecipient {
    Member(String),
    Unit(String),
    Missing,
}
