//! A unit's part in a campaign: registration and pledge, initiatives
//! (sáng kiến) and dedicated works (công trình). One `emulation/{unit}/{campaign}`
//! document per unit and campaign, owned by the unit, flowing up.
//!
//! ```text
//! { v, owner, addressed: [], unit, campaign, registered, registered_on, pledge,
//!   initiatives: { i…: { title, authors: [], status, recognised_level,
//!                        value_vnd, submitted_on, note } },
//!   works: { w…: { name, value_vnd, plaque, completed_on } } }
//! ```

use std::collections::BTreeSet;

use automerge::{Automerge, Patch, PatchAction, Prop};

use crate::am::{self, Obj, Record, Whole};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, Skel, edit};
use crate::error::ModelError;
use crate::ids::{CampaignId, InitiativeId, UnitId, WorkId, clean_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitiativeStatus {
    Submitted,
    UnderReview,
    Valid,
    Rejected,
    /// Recognised at a level (grassroots, provincial, national).
    Recognised,
}

impl InitiativeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InitiativeStatus::Submitted => "submitted",
            InitiativeStatus::UnderReview => "under_review",
            InitiativeStatus::Valid => "valid",
            InitiativeStatus::Rejected => "rejected",
            InitiativeStatus::Recognised => "recognised",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<Self, ModelError> {
        Ok(match s {
            "submitted" => InitiativeStatus::Submitted,
            "under_review" => InitiativeStatus::UnderReview,
            "valid" => InitiativeStatus::Valid,
            "rejected" => InitiativeStatus::Rejected,
            "recognised" => InitiativeStatus::Recognised,
            _ => {
                return Err(ModelError::invalid(
                    field,
                    format!("unknown initiative status {s:?}"),
                ));
            }
        })
    }
    /// Counts against the plan.
    pub fn counts_as_valid(self) -> bool {
        matches!(self, InitiativeStatus::Valid | InitiativeStatus::Recognised)
    }
    /// The review workflow: which status may follow which.
    pub fn may_become(self, next: InitiativeStatus) -> bool {
        use InitiativeStatus::*;
        matches!(
            (self, next),
            (Submitted, UnderReview | Valid | Rejected)
                | (UnderReview, Valid | Rejected)
                | (Valid, Recognised | Rejected)
                | (Rejected, UnderReview)
                | (Recognised, Recognised)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiative {
    pub id: InitiativeId,
    pub title: String,
    pub authors: Vec<String>,
    pub status: InitiativeStatus,
    pub recognised_level: String,
    pub value_vnd: i64,
    pub submitted_on: Date,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub id: WorkId,
    pub name: String,
    pub value_vnd: i64,
    pub plaque: bool,
    pub completed_on: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulation {
    pub unit: UnitId,
    pub campaign: CampaignId,
    pub registered: bool,
    pub registered_on: Option<Date>,
    pub pledge: String,
    pub initiatives: Vec<Initiative>,
    pub works: Vec<Work>,
}

pub fn doc_id(unit: &UnitId, campaign: &CampaignId) -> DocId {
    DocId::Emulation {
        unit: unit.clone(),
        campaign: campaign.clone(),
    }
}

/// A money amount in VND: whole đồng, not negative.
pub fn vnd(field: &str, v: i64) -> Result<i64, ModelError> {
    if v < 0 {
        return Err(ModelError::invalid(
            field,
            format!("must not be negative, got {v}"),
        ));
    }
    Ok(v)
}

/// The document's skeleton, as one deterministic change (see
/// [`crate::doc::init_skeleton`]), so that two nodes starting the same
/// emulation record share its `initiatives` and `works` maps.
pub(crate) fn init_emulation_skeleton(
    doc: &mut Automerge,
    unit: &UnitId,
    campaign: &CampaignId,
) -> Result<(), ModelError> {
    crate::doc::init_skeleton(
        doc,
        &[
            ("v", Skel::Int(SCHEMA_VERSION)),
            ("owner", Skel::Str(unit.to_string())),
            ("addressed", Skel::List),
            ("unit", Skel::Str(unit.to_string())),
            ("campaign", Skel::Str(campaign.to_string())),
            ("initiatives", Skel::Map),
            ("works", Skel::Map),
        ],
    )
}

pub fn register(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    campaign: &CampaignId,
    on: Date,
    pledge: &str,
) -> Result<Emulation, ModelError> {
    let pledge = clean_text("pledge", pledge, 2000, false)?;
    init_emulation_skeleton(doc, unit, campaign)?;
    edit(doc, author, "register", |tx| {
        am::put_bool(tx, &automerge::ROOT, "registered", true)?;
        am::put_str(tx, &automerge::ROOT, "registered_on", &on.to_string())?;
        am::put_str(tx, &automerge::ROOT, "pledge", &pledge)
    })?;
    read(doc)
}

/// A validated initiative to record.
#[derive(Debug, Clone)]
pub struct NewInitiative {
    pub title: String,
    pub authors: Vec<String>,
    pub value_vnd: i64,
    pub submitted_on: Date,
}

impl NewInitiative {
    pub fn parse(
        title: &str,
        authors: &[String],
        value_vnd: i64,
        submitted_on: &str,
        today: Date,
    ) -> Result<Self, ModelError> {
        let title = clean_text("title", title, 500, true)?;
        if authors.is_empty() {
            return Err(ModelError::invalid(
                "authors",
                "at least one author is needed",
            ));
        }
        if authors.len() > 50 {
            return Err(ModelError::invalid("authors", "at most 50 authors"));
        }
        let authors = authors
            .iter()
            .map(|a| clean_text("authors", a, 100, true))
            .collect::<Result<Vec<_>, _>>()?;
        let submitted_on = Date::parse_opt("submitted_on", submitted_on)?.unwrap_or(today);
        if submitted_on > today {
            return Err(ModelError::invalid(
                "submitted_on",
                format!("{submitted_on} is in the future"),
            ));
        }
        Ok(NewInitiative {
            title,
            authors,
            value_vnd: vnd("value_vnd", value_vnd)?,
            submitted_on,
        })
    }
}

pub fn record_initiative(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    campaign: &CampaignId,
    new: &NewInitiative,
) -> Result<Initiative, ModelError> {
    let id = InitiativeId::generate();
    init_emulation_skeleton(doc, unit, campaign)?;
    edit(doc, author, "record initiative", |tx| {
        let map = am::ensure_map(tx, &automerge::ROOT, "initiatives")?;
        Record::new()
            .str("title", &new.title)
            .strings("authors", &new.authors)
            .str("status", InitiativeStatus::Submitted.as_str())
            .str("recognised_level", "")
            .int("value_vnd", new.value_vnd)
            .str("submitted_on", new.submitted_on.to_string())
            .str("note", "")
            .create(tx, &map, id.as_str())?;
        Ok(())
    })?;
    initiative(doc, &id)
}

pub fn set_initiative_status(
    doc: &mut Automerge,
    author: &Author,
    id: &InitiativeId,
    status: InitiativeStatus,
    recognised_level: &str,
    note: &str,
) -> Result<Initiative, ModelError> {
    let current = initiative(doc, id)?;
    if !current.status.may_become(status) {
        return Err(ModelError::invalid(
            "status",
            format!(
                "an initiative that is {} cannot become {}",
                current.status.as_str(),
                status.as_str()
            ),
        ));
    }
    let level = clean_text("recognised_level", recognised_level, 100, false)?;
    if status == InitiativeStatus::Recognised && level.is_empty() {
        return Err(ModelError::invalid(
            "recognised_level",
            "a recognised initiative needs the level that recognised it",
        ));
    }
    let note = clean_text("note", note, 1000, false)?;
    edit(doc, author, "set initiative status", |tx| {
        let obj = am::child(tx, &automerge::ROOT, "initiatives")
            .and_then(|m| am::child(tx, &m, id.as_str()))
            .ok_or_else(|| ModelError::not_found("initiative", id))?;
        am::put_str(tx, &obj, "status", status.as_str())?;
        am::put_str(tx, &obj, "recognised_level", &level)?;
        am::put_str(tx, &obj, "note", &note)
    })?;
    initiative(doc, id)
}

/// A validated dedicated work to record.
#[derive(Debug, Clone)]
pub struct NewWork {
    pub name: String,
    pub value_vnd: i64,
    pub plaque: bool,
    pub completed_on: Option<Date>,
}

impl NewWork {
    pub fn parse(
        name: &str,
        value_vnd: i64,
        plaque: bool,
        completed_on: &str,
        today: Date,
    ) -> Result<Self, ModelError> {
        let completed_on = Date::parse_opt("completed_on", completed_on)?;
        if let Some(d) = completed_on
            && d > today
        {
            return Err(ModelError::invalid(
                "completed_on",
                format!("{d} is in the future"),
            ));
        }
        Ok(NewWork {
            name: clean_text("name", name, 500, true)?,
            value_vnd: vnd("value_vnd", value_vnd)?,
            plaque,
            completed_on,
        })
    }
}

pub fn record_work(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    campaign: &CampaignId,
    new: &NewWork,
) -> Result<Work, ModelError> {
    let id = WorkId::generate();
    init_emulation_skeleton(doc, unit, campaign)?;
    edit(doc, author, "record work", |tx| {
        let map = am::ensure_map(tx, &automerge::ROOT, "works")?;
        Record::new()
            .str("name", &new.name)
            .int("value_vnd", new.value_vnd)
            .bool("plaque", new.plaque)
            .str(
                "completed_on",
                new.completed_on.map(|d| d.to_string()).unwrap_or_default(),
            )
            .create(tx, &map, id.as_str())?;
        Ok(())
    })?;
    work(doc, &id)
}

/// One initiative, read alone (its cost does not grow with the record).
pub fn initiative(doc: &Automerge, id: &InitiativeId) -> Result<Initiative, ModelError> {
    entry(doc, "initiatives", id.as_str())
        .map(|o| read_initiative(id.as_str(), Whole(&o)))
        .unwrap_or_else(|| Err(ModelError::not_found("initiative", id)))
}

/// One dedicated work, read alone.
pub fn work(doc: &Automerge, id: &WorkId) -> Result<Work, ModelError> {
    entry(doc, "works", id.as_str())
        .map(|o| read_work(id.as_str(), Whole(&o)))
        .unwrap_or_else(|| Err(ModelError::not_found("work", id)))
}

/// The entry `id` of the root map `collection`, read whole.
fn entry(doc: &Automerge, collection: &str, id: &str) -> Option<automerge::hydrate::Map> {
    Obj::root(doc).obj(collection)?.obj(id)?.read_whole()
}

fn bad(e: ModelError) -> ModelError {
    ModelError::document("emulation", e.to_string())
}

fn read_initiative(k: &str, o: Whole<'_>) -> Result<Initiative, ModelError> {
    Ok(Initiative {
        id: InitiativeId::parse("id", k).map_err(bad)?,
        title: o.str("title"),
        authors: o.strings("authors"),
        status: InitiativeStatus::parse("status", &o.str("status")).map_err(bad)?,
        recognised_level: o.str("recognised_level"),
        value_vnd: o.i64("value_vnd"),
        submitted_on: Date::parse("submitted_on", &o.str("submitted_on")).map_err(bad)?,
        note: o.str("note"),
    })
}

fn read_work(k: &str, o: Whole<'_>) -> Result<Work, ModelError> {
    Ok(Work {
        id: WorkId::parse("id", k).map_err(bad)?,
        name: o.str("name"),
        value_vnd: o.i64("value_vnd"),
        plaque: o.bool("plaque"),
        completed_on: Date::parse_opt("completed_on", &o.str("completed_on")).map_err(bad)?,
    })
}

/// The record without its initiatives and works (read from the root's
/// fields alone).
pub fn read_header(doc: &Automerge) -> Result<Emulation, ModelError> {
    let root = Obj::root(doc);
    Ok(Emulation {
        unit: UnitId::parse("unit", &root.str("unit")).map_err(bad)?,
        campaign: CampaignId::parse("campaign", &root.str("campaign")).map_err(bad)?,
        registered: root.bool("registered"),
        registered_on: Date::parse_opt("registered_on", &root.str("registered_on")).map_err(bad)?,
        pledge: root.str("pledge"),
        initiatives: Vec::new(),
        works: Vec::new(),
    })
}

/// The whole record, read in one pass.
pub fn read(doc: &Automerge) -> Result<Emulation, ModelError> {
    let mut e = read_header(doc)?;
    let root = Obj::root(doc);
    if let Some(m) = root.obj("initiatives").and_then(|o| o.read_whole()) {
        let m = Whole(&m);
        for k in m.keys() {
            if let Some(o) = m.obj(k) {
                e.initiatives.push(read_initiative(k, o)?);
            }
        }
    }
    if let Some(m) = root.obj("works").and_then(|o| o.read_whole()) {
        let m = Whole(&m);
        for k in m.keys() {
            if let Some(o) = m.obj(k) {
                e.works.push(read_work(k, o)?);
            }
        }
    }
    Ok(e)
}

/// The initiatives and works a diff touched, by id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Touched {
    pub initiatives: BTreeSet<String>,
    pub works: BTreeSet<String>,
}

/// What `patches` touched of an emulation record; `None` when they replace
/// a whole collection (then everything is read).
pub fn touched(patches: &[Patch]) -> Option<Touched> {
    let mut out = Touched::default();
    for p in patches {
        let (collection, rest) = match p.path.first() {
            None => match &p.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }
                    if key == "initiatives" || key == "works" =>
                {
                    return None;
                }
                _ => continue,
            },
            Some((_, Prop::Map(k))) if k == "initiatives" => (&mut out.initiatives, &p.path[1..]),
            Some((_, Prop::Map(k))) if k == "works" => (&mut out.works, &p.path[1..]),
            Some(_) => continue,
        };
        match rest.first() {
            Some((_, Prop::Map(id))) => {
                collection.insert(id.clone());
            }
            Some(_) => return None,
            None => match &p.action {
                PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                    collection.insert(key.clone());
                }
                _ => return None,
            },
        }
    }
    Some(out)
}

/// What the changes made since `before` touched of an emulation record,
/// found from those changes alone ([`am::touched_keys`]); `None`: read
/// everything.
pub fn touched_since(doc: &Automerge, before: &[automerge::ChangeHash]) -> Option<Touched> {
    let mut keys = am::touched_keys(doc, before, &["initiatives", "works"])?;
    Some(Touched {
        works: keys.pop()?,
        initiatives: keys.pop()?,
    })
}

/// The record's header and the touched initiatives and works that exist
/// (a touched id missing from the result was removed).
pub fn read_touched(doc: &Automerge, t: &Touched) -> Result<Emulation, ModelError> {
    let mut e = read_header(doc)?;
    for k in &t.initiatives {
        if let Some(o) = entry(doc, "initiatives", k) {
            e.initiatives.push(read_initiative(k, Whole(&o))?);
        }
    }
    for k in &t.works {
        if let Some(o) = entry(doc, "works", k) {
            e.works.push(read_work(k, Whole(&o))?);
        }
    }
    Ok(e)
}
