//! Emulation campaigns (phong trào thi đua): launched by a unit for a scope
//! subtree, with plans (quotas) per unit. The `campaign/{id}` document is
//! owned by the launching unit and flows down to its scope.
//!
//! ```text
//! { v, owner, addressed: [scope], id, title, theme, starts_on, ends_on,
//!   scope, status, closed_on, plans: { unit: { initiative_quota, works_quota } } }
//! ```

use std::collections::BTreeMap;

use automerge::Automerge;

use crate::am::{self, Obj, Record};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{CampaignId, UnitId, clean_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Active,
    Closed,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Active => "active",
            CampaignStatus::Closed => "closed",
        }
    }
}

/// A unit's targets in a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    pub initiative_quota: u32,
    pub works_quota: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub launching_unit: UnitId,
    pub title: String,
    pub theme: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub scope: UnitId,
    pub status: CampaignStatus,
    /// The day the campaign was closed; `None` while it is active.
    pub closed_on: Option<Date>,
    pub plans: BTreeMap<UnitId, Plan>,
}

/// A validated campaign to launch. The caller checks the tree: the
/// launching unit is active and the scope lies within its subtree.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub id: CampaignId,
    pub launching_unit: UnitId,
    pub title: String,
    pub theme: String,
    pub starts_on: Date,
    pub ends_on: Date,
    pub scope: UnitId,
}

impl NewCampaign {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        id: Option<&str>,
        launching_unit: &str,
        title: &str,
        theme: &str,
        starts_on: &str,
        ends_on: &str,
        scope: &str,
    ) -> Result<NewCampaign, ModelError> {
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => CampaignId::parse("id", s)?,
            None => CampaignId::generate(),
        };
        let launching_unit = UnitId::parse("launching_unit_id", launching_unit)?;
        let scope = if scope.trim().is_empty() {
            launching_unit.clone()
        } else {
            UnitId::parse("scope_unit_id", scope)?
        };
        let starts_on = Date::parse("starts_on", starts_on)?;
        let ends_on = Date::parse("ends_on", ends_on)?;
        if ends_on < starts_on {
            return Err(ModelError::invalid(
                "ends_on",
                format!("{ends_on} is before starts_on {starts_on}"),
            ));
        }
        Ok(NewCampaign {
            id,
            launching_unit,
            title: clean_text("title", title, 300, true)?,
            theme: clean_text("theme", theme, 2000, false)?,
            starts_on,
            ends_on,
            scope,
        })
    }
}

pub fn create(
    doc: &mut Automerge,
    author: &Author,
    c: &NewCampaign,
) -> Result<Campaign, ModelError> {
    if !Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::AlreadyExists {
            what: "campaign",
            id: c.id.to_string(),
        });
    }
    edit(doc, author, "launch campaign", |tx| {
        Record::new()
            .int("v", SCHEMA_VERSION)
            .str("owner", &c.launching_unit)
            .strings("addressed", &[c.scope.to_string()])
            .str("id", &c.id)
            .str("title", &c.title)
            .str("theme", &c.theme)
            .str("starts_on", c.starts_on.to_string())
            .str("ends_on", c.ends_on.to_string())
            .str("scope", &c.scope)
            .str("status", CampaignStatus::Active.as_str())
            .str("closed_on", "")
            .map("plans")
            .init_root(tx)
    })?;
    read(&DocId::Campaign(c.id.clone()), doc)
}

pub fn read(id: &DocId, doc: &Automerge) -> Result<Campaign, ModelError> {
    let root = Obj::root(doc);
    let bad = |e: ModelError| ModelError::document(id, e.to_string());
    let mut plans = BTreeMap::new();
    if let Some(p) = root.obj("plans") {
        for k in p.keys() {
            if let Some(o) = p.obj(&k) {
                plans.insert(
                    UnitId::parse("plans", &k).map_err(bad)?,
                    Plan {
                        initiative_quota: o.i64("initiative_quota").clamp(0, u32::MAX.into())
                            as u32,
                        works_quota: o.i64("works_quota").clamp(0, u32::MAX.into()) as u32,
                    },
                );
            }
        }
    }
    Ok(Campaign {
        id: CampaignId::parse("id", &root.str("id")).map_err(bad)?,
        launching_unit: UnitId::parse("owner", &root.str("owner")).map_err(bad)?,
        title: root.str("title"),
        theme: root.str("theme"),
        starts_on: Date::parse("starts_on", &root.str("starts_on")).map_err(bad)?,
        ends_on: Date::parse("ends_on", &root.str("ends_on")).map_err(bad)?,
        scope: UnitId::parse("scope", &root.str("scope")).map_err(bad)?,
        status: if root.str("status") == "closed" {
            CampaignStatus::Closed
        } else {
            CampaignStatus::Active
        },
        closed_on: Date::parse_opt("closed_on", &root.str("closed_on")).map_err(bad)?,
        plans,
    })
}

/// The campaign this document holds, refused with `closed` ("campaign
/// {id} {closed}") when it is closed: no edit reopens a closed campaign.
fn still_open(doc: &Automerge, closed: &str) -> Result<(DocId, Campaign), ModelError> {
    let id = DocId::Campaign(CampaignId::parse("campaign_id", &Obj::root(doc).str("id"))?);
    let c = read(&id, doc)?;
    if c.status == CampaignStatus::Closed {
        return Err(ModelError::invalid(
            "campaign_id",
            format!("campaign {} {closed}", c.id),
        ));
    }
    Ok((id, c))
}

/// Sets (or replaces) plans for units; the caller checks that each unit
/// lies in the campaign's scope.
pub fn set_plans(
    doc: &mut Automerge,
    author: &Author,
    plans: &[(UnitId, Plan)],
) -> Result<Campaign, ModelError> {
    let (id, _) = still_open(doc, "is closed")?;
    edit(doc, author, "set plans", |tx| {
        let map = am::ensure_map(tx, &automerge::ROOT, "plans")?;
        for (unit, plan) in plans {
            let obj = am::ensure_map(tx, &map, unit.as_str())?;
            am::put_int(tx, &obj, "initiative_quota", plan.initiative_quota.into())?;
            am::put_int(tx, &obj, "works_quota", plan.works_quota.into())?;
        }
        Ok(())
    })?;
    read(&id, doc)
}

pub fn close(doc: &mut Automerge, author: &Author, on: Date) -> Result<Campaign, ModelError> {
    let (id, c) = still_open(doc, "is already closed")?;
    if on < c.starts_on {
        return Err(ModelError::invalid(
            "closed_on",
            format!("{on} is before the campaign started ({})", c.starts_on),
        ));
    }
    edit(doc, author, "close campaign", |tx| {
        am::put_str(tx, &automerge::ROOT, "status", "closed")?;
        am::put_str(tx, &automerge::ROOT, "closed_on", &on.to_string())
    })?;
    read(&id, doc)
}
