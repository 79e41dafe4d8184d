//! Emulation records: registration, initiatives and works.

use hopluu_model::campaign::{self, Campaign};
use hopluu_model::emulation::{
    self, Emulation, Initiative, InitiativeStatus, NewInitiative, NewWork, Work,
};
use hopluu_model::{CampaignId, Date, InitiativeId, ModelError, UnitId};

use super::{App, Result, invalid};
use crate::NodeError;

impl App {
    // ---- emulation ---------------------------------------------------

    /// The unit and an active campaign that covers it.
    async fn emulation_target(&self, unit: &str, campaign: &str) -> Result<(UnitId, Campaign)> {
        let unit = self.parse_unit("unit_id", unit)?;
        self.writable_unit("unit_id", &unit).await?;
        let c = self.existing_campaign(campaign).await?;
        if c.status != campaign::CampaignStatus::Active {
            return Err(invalid(
                "campaign_id",
                format!("campaign {} is closed", c.id),
            ));
        }
        if !self.tree().is_within(&unit, &c.scope) {
            return Err(invalid(
                "unit_id",
                format!(
                    "unit {unit} is outside campaign {}'s scope {}",
                    c.id, c.scope
                ),
            ));
        }
        Ok((unit, c))
    }

    pub async fn register(
        &self,
        unit: &str,
        campaign: &str,
        registered_on: &str,
        pledge: &str,
    ) -> Result<Emulation> {
        let (unit, c) = self.emulation_target(unit, campaign).await?;
        let on = Date::parse_opt("registered_on", registered_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let e = emulation::register(
            tx.doc(&emulation::doc_id(&unit, &c.id)).await?,
            &self.author(),
            &unit,
            &c.id,
            on,
            pledge,
        )?;
        tx.commit().await?;
        Ok(e)
    }

    pub async fn record_initiative(
        &self,
        unit: &str,
        campaign: &str,
        title: &str,
        authors: &[String],
        value_vnd: i64,
        submitted_on: &str,
    ) -> Result<Initiative> {
        let new = NewInitiative::parse(title, authors, value_vnd, submitted_on, self.today())?;
        self.add_to_emulation(unit, campaign, |doc, author, unit, c| {
            emulation::record_initiative(doc, author, unit, c, &new)
        })
        .await
    }

    /// Adds to `unit`'s emulation record in `campaign` (both checked by
    /// [`App::emulation_target`]) with `add`, in one transaction.
    async fn add_to_emulation<T>(
        &self,
        unit: &str,
        campaign: &str,
        add: impl FnOnce(
            &mut automerge::Automerge,
            &hopluu_model::Author,
            &hopluu_model::UnitId,
            &hopluu_model::CampaignId,
        ) -> std::result::Result<T, ModelError>,
    ) -> Result<T> {
        let (unit, c) = self.emulation_target(unit, campaign).await?;
        let mut tx = self.store.begin().await?;
        let doc = tx.doc(&emulation::doc_id(&unit, &c.id)).await?;
        let out = add(doc, &self.author(), &unit, &c.id)?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn set_initiative_status(
        &self,
        unit: &str,
        campaign: &str,
        initiative: &str,
        status: InitiativeStatus,
        level: &str,
        note: &str,
    ) -> Result<Initiative> {
        let unit = self.parse_unit("unit_id", unit)?;
        let campaign = CampaignId::parse("campaign_id", campaign)?;
        let initiative = InitiativeId::parse("initiative_id", initiative)?;
        self.writable_unit("unit_id", &unit).await?;
        let mut tx = self.store.begin().await?;
        let doc_id = emulation::doc_id(&unit, &campaign);
        if !tx.exists(&doc_id).await? {
            return Err(ModelError::not_found("initiative", &initiative).into());
        }
        let i = emulation::set_initiative_status(
            tx.doc(&doc_id).await?,
            &self.author(),
            &initiative,
            status,
            level,
            note,
        )?;
        tx.commit().await?;
        Ok(i)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn record_work(
        &self,
        unit: &str,
        campaign: &str,
        name: &str,
        value_vnd: i64,
        plaque: bool,
        completed_on: &str,
    ) -> Result<Work> {
        let new = NewWork::parse(name, value_vnd, plaque, completed_on, self.today())?;
        self.add_to_emulation(unit, campaign, |doc, author, unit, c| {
            emulation::record_work(doc, author, unit, c, &new)
        })
        .await
    }

    pub async fn get_emulation(&self, unit: &str, campaign: &str) -> Result<Emulation> {
        let unit = self.parse_unit("unit_id", unit)?;
        let campaign = CampaignId::parse("campaign_id", campaign)?;
        self.store
            .emulation(&unit, &campaign)
            .await?
            .ok_or_else(|| {
                NodeError::Refused(ModelError::not_found(
                    "emulation record",
                    format!("{unit}/{campaign}"),
                ))
            })
    }
}
