//! Reports over a unit's subtree as it stood on a date, read from the
//! projections, and the lookups the role check makes before an operation
//! (who owns a record).
//!
//! A report is as of a date: the request's, else today by the node's
//! clock, else (for a campaign's initiatives) the campaign's last day when
//! it ended before today, so that a campaign's ranking stays what it was
//! after a later merger. A unit that did not exist on the date (not yet
//! created, or closed or merged before it) is refused, naming `as_of`.

use std::collections::BTreeMap;

use hopluu_model::{
    AwardId, CampaignId, CardNumber, Date, MemberId, ModelError, ProposalId, UnitId, timeline,
};
use hopluu_store::report::{AwardsRow, InitiativesRow, MembersRow, WorksRow};

use super::{App, Result};

/// A report's rows, one per unit directly below the report's unit on the
/// date (and the unit itself), its total row, and the date it is of.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<Row> {
    pub rows: Vec<Row>,
    pub total: Row,
    pub as_of: Date,
}

/// The awards report: rows with the catalogue's name of each award type,
/// and the date it is of.
#[derive(Debug, Clone, PartialEq)]
pub struct AwardsReport {
    pub rows: Vec<(AwardsRow, String)>,
    pub as_of: Date,
}

impl<Row> Report<Row> {
    fn of((rows, total): (Vec<Row>, Row), as_of: Date) -> Report<Row> {
        Report { rows, total, as_of }
    }
}

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

    /// The date a report is of: `as_of` (`YYYY-MM-DD`), else `default`;
    /// `unit` must have existed on it.
    async fn report_date(&self, unit: &UnitId, as_of: &str, default: Date) -> Result<Date> {
        let date = Date::parse_opt("as_of", as_of)?.unwrap_or(default);
        let u = self
            .store
            .unit(unit)
            .await?
            .ok_or_else(|| ModelError::not_found("unit", unit))?;
        timeline::require_exists_on(&u, date, "as_of")?;
        Ok(date)
    }

    /// Members by status and gender on `as_of` (empty: today).
    pub async fn members_report(&self, unit: &UnitId, as_of: &str) -> Result<Report<MembersRow>> {
        let date = self.report_date(unit, as_of, self.today()).await?;
        let report = self.store.members_report(unit, date).await?;
        Ok(Report::of(report, date))
    }

    /// Initiatives against plan in campaign `campaign` (which must exist),
    /// on `as_of` (empty: the campaign's last day, or today while it runs).
    pub async fn initiatives_report(
        &self,
        campaign: &str,
        unit: &UnitId,
        as_of: &str,
    ) -> Result<Report<InitiativesRow>> {
        let c = self.get_campaign(campaign).await?;
        let date = self
            .report_date(unit, as_of, c.ends_on.min(self.today()))
            .await?;
        let report = self.store.initiatives_report(&c.id, unit, date).await?;
        Ok(Report::of(report, date))
    }

    /// Dedicated works completed by `as_of`, of one campaign (which must
    /// exist) or of all; `as_of` empty: today, or the campaign's last day
    /// when it ended before today.
    pub async fn works_report(
        &self,
        unit: &UnitId,
        campaign: Option<&str>,
        as_of: &str,
    ) -> Result<Report<WorksRow>> {
        let campaign = match campaign.filter(|c| !c.trim().is_empty()) {
            None => None,
            Some(c) => Some(self.get_campaign(c).await?),
        };
        let default = campaign
            .as_ref()
            .map_or(self.today(), |c| c.ends_on.min(self.today()));
        let date = self.report_date(unit, as_of, default).await?;
        let id = campaign.map(|c| c.id);
        let report = self.store.works_report(unit, id.as_ref(), date).await?;
        Ok(Report::of(report, date))
    }

    /// Awards by type, level and year as they stood on `as_of` (empty:
    /// today), and the catalogue's name of each type.
    pub async fn awards_report(
        &self,
        unit: &UnitId,
        year: Option<u32>,
        as_of: &str,
    ) -> Result<AwardsReport> {
        let date = self.report_date(unit, as_of, self.today()).await?;
        let rows = self.store.awards_report(unit, year, date).await?;
        let rows = rows
            .into_iter()
            .map(|r| {
                let name = self
                    .awards
                    .get(&r.award_type)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                (r, name)
            })
            .collect();
        Ok(AwardsReport { rows, as_of: date })
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
