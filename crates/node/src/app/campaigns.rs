//! Emulation campaigns: launch, plans, close, read and list.

use hopluu_model::campaign::{self, Campaign, Plan};
use hopluu_model::{CampaignId, Date, DocId, ModelError, UnitId};

use super::{App, Result, TapField, invalid};
use crate::NodeError;

/// A campaign to launch, as a request gives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CampaignInput<'a> {
    /// Empty or none: a new id.
    pub id: Option<&'a str>,
    pub launching_unit: &'a str,
    pub title: &'a str,
    pub theme: &'a str,
    pub starts_on: &'a str,
    pub ends_on: &'a str,
    /// The subtree the campaign covers (empty: the launching unit's).
    pub scope_unit: &'a str,
}

impl App {
    // ---- campaigns ---------------------------------------------------

    pub async fn launch_campaign(&self, c: &CampaignInput<'_>) -> Result<Campaign> {
        let new = campaign::NewCampaign::parse(
            c.id,
            c.launching_unit,
            c.title,
            c.theme,
            c.starts_on,
            c.ends_on,
            c.scope_unit,
        )?;
        self.writable_unit("launching_unit_id", &new.launching_unit)
            .await?;
        {
            let tree = self.tree();
            tree.require_active("scope_unit_id", &new.scope)?;
            if !tree.is_within(&new.scope, &new.launching_unit) {
                return Err(invalid(
                    "scope_unit_id",
                    format!(
                        "{} is outside the launching unit {}'s subtree",
                        new.scope, new.launching_unit
                    ),
                ));
            }
        }
        let mut tx = self.store.begin().await?;
        let doc_id = DocId::Campaign(new.id.clone());
        if tx.exists(&doc_id).await? {
            return Err(NodeError::Refused(ModelError::AlreadyExists {
                what: "campaign",
                id: new.id.to_string(),
            }));
        }
        let c = campaign::create(tx.doc(&doc_id).await?, &self.author(), &new)?;
        tx.commit().await?;
        Ok(c)
    }

    pub(super) async fn existing_campaign(&self, id: &str) -> Result<Campaign> {
        let id = CampaignId::parse("campaign_id", id)?;
        self.store
            .campaign(&id)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("campaign", &id)))
    }

    pub async fn get_campaign(&self, id: &str) -> Result<Campaign> {
        self.existing_campaign(id).await
    }

    pub async fn list_campaigns(&self, unit: &str) -> Result<Vec<Campaign>> {
        let unit = if unit.trim().is_empty() {
            self.unit.clone()
        } else {
            self.parse_unit("unit_id", unit)?
        };
        Ok(self.store.campaigns_covering(&unit).await?)
    }

    pub async fn set_plans(&self, id: &str, plans: &[(String, Plan)]) -> Result<Campaign> {
        let c = self.existing_campaign(id).await?;
        self.writable_unit("campaign_id", &c.launching_unit)
            .await
            .map_err(|e| e.tap_field("campaign_id"))?;
        if plans.is_empty() {
            return Err(invalid("plans", "give at least one plan"));
        }
        let mut parsed = Vec::new();
        {
            let tree = self.tree();
            for (i, (unit, plan)) in plans.iter().enumerate() {
                let field = format!("plans[{i}].unit_id");
                let unit = UnitId::parse(&field, unit)?;
                if !tree.contains(&unit) {
                    return Err(invalid(&field, format!("unit {unit} does not exist")));
                }
                if !tree.is_within(&unit, &c.scope) {
                    return Err(invalid(
                        &field,
                        format!("unit {unit} is outside the campaign's scope {}", c.scope),
                    ));
                }
                parsed.push((unit, *plan));
            }
        }
        let mut tx = self.store.begin().await?;
        let c = campaign::set_plans(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &self.author(),
            &parsed,
        )?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn close_campaign(&self, id: &str, closed_on: &str) -> Result<Campaign> {
        let c = self.existing_campaign(id).await?;
        self.writable_unit("campaign_id", &c.launching_unit).await?;
        let on = Date::parse_opt("closed_on", closed_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let c = campaign::close(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &self.author(),
            on,
        )?;
        tx.commit().await?;
        Ok(c)
    }
}
