//! Reports over a unit's subtree, read from the projections, and the
//! lookups the role check makes before an operation (who owns a record).

use std::collections::BTreeMap;

use hopluu_model::{AwardId, CampaignId, CardNumber, MemberId, ModelError, ProposalId, UnitId};
use hopluu_store::report::{AwardsRow, InitiativesRow, MembersRow, WorksRow};

use super::{App, Result};

/// A report's rows, one per unit directly below the report's unit (and
/// the unit itself), and its total row.
pub type Report<Row> = (Vec<Row>, Row);

impl App {
    /// The unit a report is of: `unit` (empty: this node's), which must be
    /// known here. Closed units may be asked too: their history stays.
    pub fn report_unit(&self, unit: &str) -> Result<UnitId> {
        let id = if unit.trim().is_empty() {
            self.unit.clone()
        } else {
            UnitId::parse("unit_id", unit)?
        };
        if self.tree().contains(&id) {
            Ok(id)
        } else {
            Err(ModelError::not_found("unit", &id).into())
        }
    }

    pub async fn members_report(&self, unit: &UnitId) -> Result<Report<MembersRow>> {
        Ok(self.store.members_report(unit).await?)
    }

    /// Initiatives against plan in campaign `campaign` (which must exist).
    pub async fn initiatives_report(
        &self,
        campaign: &str,
        unit: &UnitId,
    ) -> Result<Report<InitiativesRow>> {
        let c = self.get_campaign(campaign).await?;
        Ok(self.store.initiatives_report(&c.id, unit).await?)
    }

    /// Dedicated works, of one campaign (which must exist) or of all.
    pub async fn works_report(
        &self,
        unit: &UnitId,
        campaign: Option<&str>,
    ) -> Result<Report<WorksRow>> {
        let campaign = match campaign.filter(|c| !c.trim().is_empty()) {
            None => None,
            Some(c) => Some(self.get_campaign(c).await?.id),
        };
        Ok(self.store.works_report(unit, campaign.as_ref()).await?)
    }

    /// Awards by type, level and year, and the catalogue's name of each type.
    pub async fn awards_report(
        &self,
        unit: &UnitId,
        year: Option<u32>,
    ) -> Result<Vec<(AwardsRow, String)>> {
        let rows = self.store.awards_report(unit, year).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let name = self
                    .awards
                    .get(&r.award_type)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                (r, name)
            })
            .collect())
    }

    /// Unit names for report rows.
    pub fn unit_names(&self) -> BTreeMap<UnitId, String> {
        let tree = self.tree();
        tree.subtree(&self.unit)
            .into_iter()
            .filter_map(|u| tree.get(&u).map(|n| (u.clone(), n.name.clone())))
            .collect()
    }

    // ---- owners, for the role check ------------------------------------

    /// The unit a member belongs to now (none: not known here).
    pub async fn member_unit(&self, id: &MemberId) -> Result<Option<UnitId>> {
        Ok(self.store.current_member_loc(id).await?.map(|l| l.unit))
    }

    /// The member a card names, when it names exactly one.
    pub async fn card_member(&self, card: &CardNumber) -> Result<Option<MemberId>> {
        let mut ids = self.card_members(card).await?;
        Ok((ids.len() == 1).then(|| ids.remove(0)))
    }

    /// Every member whose records carry `card`, in any status, each once.
    pub(super) async fn card_members(&self, card: &CardNumber) -> Result<Vec<MemberId>> {
        let mut ids: Vec<MemberId> = self
            .store
            .card_records(card)
            .await?
            .into_iter()
            .map(|l| l.member)
            .collect();
        // Ordered by member id: one member's records lie together.
        ids.dedup();
        Ok(ids)
    }

    /// The unit that launched a campaign (none: not known here).
    pub async fn campaign_owner(&self, id: &CampaignId) -> Result<Option<UnitId>> {
        Ok(self.store.campaign(id).await?.map(|c| c.launching_unit))
    }

    /// The unit that issued an award (none: not known here).
    pub async fn award_owner(&self, id: &AwardId) -> Result<Option<UnitId>> {
        Ok(self.store.award(id).await?.map(|a| a.issuing_unit))
    }

    /// The unit that made a proposal (none: not known here).
    pub async fn proposal_owner(&self, id: &ProposalId) -> Result<Option<UnitId>> {
        Ok(self.store.proposal(id).await?.map(|p| p.proposing_unit))
    }
}
