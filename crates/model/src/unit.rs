//! Units: union organisations at every level, their kinds (as data), and the
//! `unit/{id}` document that records a unit's name, parent and status as a
//! history of decisions.
//!
//! A unit is never deleted: a closed or merged unit keeps its record, with
//! the reason and its successors, so members and awards that point at it
//! still resolve.

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use serde::{Deserialize, Serialize};

use crate::am::{self, Obj, Record};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{KindId, UnitId, clean_text};

/// A kind of unit. Kinds are data: the catalogue can grow (the 2025 reform
/// added commune and ward unions) without a code change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitKind {
    pub id: KindId,
    /// The Vietnamese name shown to users.
    pub label: String,
    /// Whether the unit keeps a member roster (grassroots unions do).
    pub holds_members: bool,
    /// Whether units of this kind may have child units.
    pub has_children: bool,
}

/// The unit kinds a federation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCatalogue {
    kinds: Vec<UnitKind>,
}

impl KindCatalogue {
    pub fn new(kinds: Vec<UnitKind>) -> Self {
        KindCatalogue { kinds }
    }

    pub fn get(&self, id: &str) -> Option<&UnitKind> {
        self.kinds.iter().find(|k| k.id.as_str() == id)
    }

    pub fn all(&self) -> &[UnitKind] {
        &self.kinds
    }

    /// Parses a kind id that must be in the catalogue.
    pub fn parse(&self, field: &str, s: &str) -> Result<&UnitKind, ModelError> {
        self.get(s.trim()).ok_or_else(|| {
            let known: Vec<&str> = self.kinds.iter().map(|k| k.id.as_str()).collect();
            ModelError::invalid(
                field,
                format!("unknown unit kind {s:?}; known kinds: {}", known.join(", ")),
            )
        })
    }
}

impl Default for KindCatalogue {
    /// The kinds of the Trade Union Law 2024, as organised after 1 July 2025.
    fn default() -> Self {
        let k = |id: &str, label: &str, holds_members: bool, has_children: bool| UnitKind {
            id: KindId::parse("kind", id).expect("built-in kind ids are valid"),
            label: label.to_owned(),
            holds_members,
            has_children,
        };
        KindCatalogue::new(vec![
            k("central", "Tổng Liên đoàn Lao động Việt Nam", false, true),
            k(
                "provincial",
                "Liên đoàn Lao động tỉnh, thành phố",
                false,
                true,
            ),
            k("sector", "Công đoàn ngành trung ương", false, true),
            k(
                "state-group",
                "Công đoàn tập đoàn, tổng công ty",
                false,
                true,
            ),
            k(
                "district",
                "Liên đoàn Lao động huyện (đến 2025)",
                false,
                true,
            ),
            k("commune", "Công đoàn xã, phường, đặc khu", false, true),
            k("local-sector", "Công đoàn ngành địa phương", false, true),
            k(
                "industrial-park",
                "Công đoàn các khu công nghiệp",
                false,
                true,
            ),
            k(
                "direct-upper",
                "Công đoàn cấp trên trực tiếp cơ sở khác",
                false,
                true,
            ),
            k("grassroots", "Công đoàn cơ sở", true, false),
        ])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    Active,
    /// Merged into its successors (e.g. Hậu Giang into Cần Thơ).
    Merged,
    /// Closed (dissolved); successors, if any, took over its records.
    Closed,
}

impl UnitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Active => "active",
            UnitStatus::Merged => "merged",
            UnitStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<UnitStatus> {
        match s {
            "active" => Some(UnitStatus::Active),
            "merged" => Some(UnitStatus::Merged),
            "closed" => Some(UnitStatus::Closed),
            _ => None,
        }
    }
}

/// A rename decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChange {
    pub name: String,
    pub effective_on: Date,
    pub decision_no: String,
}

/// A re-parenting decision. The decision date and the effective date differ,
/// and the effective date may lie in the past (a ward union created on
/// 1/7/2025 received its grassroots unions on 27/8/2025, effective earlier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentChange {
    pub parent: Option<UnitId>,
    pub decided_on: Date,
    pub effective_on: Date,
    pub decision_no: String,
}

/// A unit as its document records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: UnitId,
    pub name: String,
    pub kind: KindId,
    pub parent: Option<UnitId>,
    pub status: UnitStatus,
    pub successors: Vec<UnitId>,
    pub closed_on: Option<Date>,
    pub close_reason: String,
    pub names: Vec<NameChange>,
    pub parents: Vec<ParentChange>,
}

impl Unit {
    pub fn is_active(&self) -> bool {
        self.status == UnitStatus::Active
    }

    /// The owner of this unit's document: the deciding (parent) unit, or the
    /// unit itself for the root.
    pub fn owner(&self) -> &UnitId {
        self.parent.as_ref().unwrap_or(&self.id)
    }
}

/// A decision: its number and dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision_no: String,
    pub decided_on: Date,
    pub effective_on: Date,
}

impl Decision {
    /// Parses a decision; an empty `effective_on` means the decision date,
    /// an empty `decided_on` means today.
    pub fn parse(
        decision_no: &str,
        decided_on: &str,
        effective_on: &str,
        today: Date,
    ) -> Result<Decision, ModelError> {
        let decision_no = clean_text("decision_no", decision_no, 64, false)?;
        let decided_on = Date::parse_opt("decided_on", decided_on)?.unwrap_or(today);
        if decided_on > today {
            return Err(ModelError::invalid(
                "decided_on",
                format!("{decided_on} is in the future"),
            ));
        }
        let effective_on = Date::parse_opt("effective_on", effective_on)?.unwrap_or(decided_on);
        Ok(Decision {
            decision_no,
            decided_on,
            effective_on,
        })
    }
}

/// A unit to create, validated.
#[derive(Debug, Clone)]
pub struct NewUnit {
    pub id: UnitId,
    pub name: String,
    pub kind: KindId,
    pub parent: Option<UnitId>,
    pub decision: Decision,
}

impl NewUnit {
    pub fn parse(
        kinds: &KindCatalogue,
        id: Option<&str>,
        name: &str,
        kind: &str,
        parent: Option<&str>,
        decision: Decision,
    ) -> Result<NewUnit, ModelError> {
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => UnitId::parse("id", s)?,
            None => UnitId::generate(),
        };
        let name = unit_name(name)?;
        let kind = kinds.parse("kind", kind)?.id.clone();
        let parent = parent
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|p| UnitId::parse("parent_id", p))
            .transpose()?;
        Ok(NewUnit {
            id,
            name,
            kind,
            parent,
            decision,
        })
    }
}

pub fn unit_name(name: &str) -> Result<String, ModelError> {
    clean_text("name", name, 200, true)
}

fn name_record(n: &NameChange) -> Record {
    Record::new()
        .str("name", &n.name)
        .str("effective_on", n.effective_on.to_string())
        .str("decision_no", &n.decision_no)
}

fn parent_record(p: &ParentChange) -> Record {
    Record::new()
        .str(
            "parent",
            p.parent.as_ref().map(UnitId::as_str).unwrap_or(""),
        )
        .str("decided_on", p.decided_on.to_string())
        .str("effective_on", p.effective_on.to_string())
        .str("decision_no", &p.decision_no)
}

/// Writes a new unit into an empty document.
pub fn create(doc: &mut Automerge, author: &Author, new: &NewUnit) -> Result<Unit, ModelError> {
    if !Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::AlreadyExists {
            what: "unit",
            id: new.id.to_string(),
        });
    }
    let owner = new.parent.as_ref().unwrap_or(&new.id);
    let names = [NameChange {
        name: new.name.clone(),
        effective_on: new.decision.effective_on,
        decision_no: new.decision.decision_no.clone(),
    }];
    let parents = [ParentChange {
        parent: new.parent.clone(),
        decided_on: new.decision.decided_on,
        effective_on: new.decision.effective_on,
        decision_no: new.decision.decision_no.clone(),
    }];
    edit(doc, author, "create unit", |tx| {
        Record::new()
            .int("v", SCHEMA_VERSION)
            .str("id", &new.id)
            .str("owner", owner)
            .strings("addressed", &[])
            .str("name", &new.name)
            .str("kind", &new.kind)
            .str(
                "parent",
                new.parent.as_ref().map(UnitId::as_str).unwrap_or(""),
            )
            .str("status", UnitStatus::Active.as_str())
            .strings("successors", &[])
            .str("closed_on", "")
            .str("close_reason", "")
            .records("names", names.iter().map(name_record).collect())
            .records("parents", parents.iter().map(parent_record).collect())
            .init_root(tx)
    })?;
    read(&DocId::Unit(new.id.clone()), doc)
}

/// Reads the unit recorded in `doc`.
pub fn read(id: &DocId, doc: &Automerge) -> Result<Unit, ModelError> {
    let root = Obj::root(doc);
    let bad = |what: &str, e: ModelError| ModelError::document(id, format!("{what}: {e}"));
    let unit_id = UnitId::parse("id", &root.str("id")).map_err(|e| bad("id", e))?;
    let opt_unit = |s: String| -> Result<Option<UnitId>, ModelError> {
        if s.is_empty() {
            Ok(None)
        } else {
            UnitId::parse("unit", &s).map(Some)
        }
    };
    let names = root
        .list("names")
        .iter()
        .map(|o| {
            Ok(NameChange {
                name: o.str("name"),
                effective_on: Date::parse("effective_on", &o.str("effective_on"))?,
                decision_no: o.str("decision_no"),
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()
        .map_err(|e| bad("names", e))?;
    let parents = root
        .list("parents")
        .iter()
        .map(|o| {
            Ok(ParentChange {
                parent: opt_unit(o.str("parent"))?,
                decided_on: Date::parse("decided_on", &o.str("decided_on"))?,
                effective_on: Date::parse("effective_on", &o.str("effective_on"))?,
                decision_no: o.str("decision_no"),
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()
        .map_err(|e| bad("parents", e))?;
    Ok(Unit {
        id: unit_id,
        name: root.str("name"),
        kind: KindId::parse("kind", &root.str("kind")).map_err(|e| bad("kind", e))?,
        parent: opt_unit(root.str("parent")).map_err(|e| bad("parent", e))?,
        status: UnitStatus::parse(&root.str("status"))
            .ok_or_else(|| ModelError::document(id, "bad status"))?,
        successors: root
            .strings("successors")
            .iter()
            .map(|s| UnitId::parse("successors", s))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("successors", e))?,
        closed_on: Date::parse_opt("closed_on", &root.str("closed_on"))
            .map_err(|e| bad("closed_on", e))?,
        close_reason: root.str("close_reason"),
        names,
        parents,
    })
}

fn require_active(unit: &Unit) -> Result<(), ModelError> {
    if unit.is_active() {
        Ok(())
    } else {
        Err(ModelError::invalid(
            "unit_id",
            format!("unit {} is {}", unit.id, unit.status.as_str()),
        ))
    }
}

/// Renames a unit by decision; the old names stay in the history.
pub fn rename(
    doc: &mut Automerge,
    author: &Author,
    name: &str,
    decision: &Decision,
) -> Result<Unit, ModelError> {
    let id = DocId::Unit(UnitId::parse("unit_id", &Obj::root(&*doc).str("id"))?);
    let unit = read(&id, doc)?;
    require_active(&unit)?;
    let name = unit_name(name)?;
    let change = NameChange {
        name: name.clone(),
        effective_on: decision.effective_on,
        decision_no: decision.decision_no.clone(),
    };
    edit(doc, author, "rename unit", |tx| {
        am::put_str(tx, &automerge::ROOT, "name", &name)?;
        let list = am::ensure_list(tx, &automerge::ROOT, "names")?;
        name_record(&change).append(tx, &list)?;
        Ok(())
    })?;
    read(&id, doc)
}

/// Re-parents a unit. The caller has checked the tree (no cycle, the new
/// parent is active and may have children, authority over both ends).
pub fn move_to(
    doc: &mut Automerge,
    author: &Author,
    new_parent: &UnitId,
    decision: &Decision,
) -> Result<Unit, ModelError> {
    let id = DocId::Unit(UnitId::parse("unit_id", &Obj::root(&*doc).str("id"))?);
    let unit = read(&id, doc)?;
    require_active(&unit)?;
    if unit.parent.as_ref() == Some(new_parent) {
        return Err(ModelError::invalid(
            "new_parent_id",
            format!("unit {} is already under {new_parent}", unit.id),
        ));
    }
    let change = ParentChange {
        parent: Some(new_parent.clone()),
        decided_on: decision.decided_on,
        effective_on: decision.effective_on,
        decision_no: decision.decision_no.clone(),
    };
    // The subtrees the record has been in stay its addressees: the nodes
    // there hold it as it stands, so an old host learns the unit left
    // also when no node between is known to hold the record.
    let been_in = Obj::root(&*doc).strings("addressed");
    edit(doc, author, "move unit", |tx| {
        am::put_str(tx, &automerge::ROOT, "parent", new_parent.as_str())?;
        am::put_str(tx, &automerge::ROOT, "owner", new_parent.as_str())?;
        let list = am::ensure_list(tx, &automerge::ROOT, "parents")?;
        parent_record(&change).append(tx, &list)?;
        if let Some(old) = &unit.parent
            && !been_in.iter().any(|u| u == old.as_str())
        {
            let addressed = am::ensure_list(tx, &automerge::ROOT, "addressed")?;
            let at = tx.length(&addressed);
            tx.insert(&addressed, at, old.as_str())?;
        }
        Ok(())
    })?;
    read(&id, doc)
}

/// Closes a unit, or records it as merged into its successors.
pub fn close(
    doc: &mut Automerge,
    author: &Author,
    reason: &str,
    successors: &[UnitId],
    merged: bool,
    decision: &Decision,
) -> Result<Unit, ModelError> {
    let id = DocId::Unit(UnitId::parse("unit_id", &Obj::root(&*doc).str("id"))?);
    let unit = read(&id, doc)?;
    require_active(&unit)?;
    let reason = clean_text("reason", reason, 500, true)?;
    if merged && successors.is_empty() {
        return Err(ModelError::invalid(
            "successor_ids",
            "a merged unit needs at least one successor",
        ));
    }
    if successors.contains(&unit.id) {
        return Err(ModelError::invalid(
            "successor_ids",
            "a unit cannot succeed itself",
        ));
    }
    let status = if merged {
        UnitStatus::Merged
    } else {
        UnitStatus::Closed
    };
    let successors: Vec<String> = successors.iter().map(ToString::to_string).collect();
    edit(doc, author, "close unit", |tx| {
        am::put_str(tx, &automerge::ROOT, "status", status.as_str())?;
        am::put_strings(tx, &automerge::ROOT, "successors", &successors)?;
        am::put_str(
            tx,
            &automerge::ROOT,
            "closed_on",
            &decision.effective_on.to_string(),
        )?;
        am::put_str(tx, &automerge::ROOT, "close_reason", &reason)?;
        am::put_str(
            tx,
            &automerge::ROOT,
            "close_decision_no",
            &decision.decision_no,
        )?;
        Ok(())
    })?;
    read(&id, doc)
}
