//! Reorganisation decisions: one dated decision with many steps (create,
//! rename, move many, merge, split, close, cease members), checked whole
//! against the unit tree before anything is written (DESIGN §6).
//!
//! [`PlanInput`] is what an office sends (strings, as a TOML plan or a sheet
//! of moves gives them); [`Plan::parse`] checks each field; [`simulate`]
//! plays the steps on a copy of the tree and returns the [`Effects`] to
//! write, or the first step that cannot be applied, naming the step, the
//! field and the reason (`steps[2].units[1]: unit g9 is closed`). The
//! decision itself is stored as a `decision/{id}` document owned by the
//! issuing unit ([`write`], [`read`]).

use std::collections::{BTreeMap, HashMap};

use automerge::Automerge;

use crate::am::{Obj, Record};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{DecisionId, KindId, MemberId, UnitId, clean_text};
use crate::tree::{TreeNode, UnitTree};
use crate::unit::{Decision, KindCatalogue, UnitStatus, unit_name};

/// The most steps one decision may carry, and the most units or members
/// one step may list: a decision is one transaction, and these bound it.
pub const MAX_STEPS: usize = 2_000;
pub const MAX_LISTED: usize = 100_000;

/// A step as a request names it: every field a string or a list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepInput {
    /// create, rename, move, merge, split, close, cease
    pub kind: String,
    /// create: the new unit's id (empty: generated); rename, split, close:
    /// the unit.
    pub unit: String,
    /// create, rename: the name.
    pub name: String,
    /// create: the unit kind.
    pub unit_kind: String,
    /// create: the parent; move: the new parent; merge: the unit merged into.
    pub to: String,
    /// move: the units moved; merge: the units merged; cease: the units
    /// whose active members cease.
    pub units: Vec<String>,
    /// cease: individual members.
    pub members: Vec<String>,
    /// close: the successors; split: one per part, in `parts` order.
    pub successors: Vec<String>,
    /// split: the children each successor receives (`parts[i]` goes to
    /// `successors[i]`).
    pub parts: Vec<Vec<String>>,
    /// close, cease: why.
    pub reason: String,
    /// cease: the day membership ends (empty: the decision's effective date).
    pub on: String,
}

/// A decision as a request gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// Empty: generated.
    pub id: String,
    pub number: String,
    pub title: String,
    pub decided_on: String,
    pub effective_on: String,
    pub issuing_unit: String,
    pub steps: Vec<StepInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPart {
    pub successor: UnitId,
    pub children: Vec<UnitId>,
}

/// One step, checked field by field (not yet against the tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create {
        id: UnitId,
        name: String,
        kind: KindId,
        parent: UnitId,
    },
    Rename {
        unit: UnitId,
        name: String,
    },
    Move {
        units: Vec<UnitId>,
        to: UnitId,
    },
    Merge {
        sources: Vec<UnitId>,
        into: UnitId,
    },
    Split {
        unit: UnitId,
        parts: Vec<SplitPart>,
    },
    Close {
        unit: UnitId,
        successors: Vec<UnitId>,
        reason: String,
    },
    Cease {
        units: Vec<UnitId>,
        members: Vec<MemberId>,
        reason: String,
        on: Date,
    },
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Rename { .. } => "rename",
            Step::Move { .. } => "move",
            Step::Merge { .. } => "merge",
            Step::Split { .. } => "split",
            Step::Close { .. } => "close",
            Step::Cease { .. } => "cease",
        }
    }
}

/// A reorganisation decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: DecisionId,
    pub number: String,
    pub title: String,
    pub decided_on: Date,
    pub effective_on: Date,
    pub issuing_unit: UnitId,
    pub steps: Vec<Step>,
}

fn unit_list(field: &str, list: &[String]) -> Result<Vec<UnitId>, ModelError> {
    if list.len() > MAX_LISTED {
        return Err(ModelError::invalid(
            field,
            format!(
                "{} entries; at most {MAX_LISTED} per step: split the decision",
                list.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    let mut seen = HashMap::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let id = UnitId::parse(&f, s)?;
        if let Some(j) = seen.insert(id.clone(), i) {
            return Err(ModelError::invalid(
                f,
                format!("unit {id} is named twice (also {field}[{j}])"),
            ));
        }
        out.push(id);
    }
    Ok(out)
}

fn one_unit(field: &str, s: &str) -> Result<UnitId, ModelError> {
    if s.trim().is_empty() {
        return Err(ModelError::invalid(field, "must not be empty"));
    }
    UnitId::parse(field, s)
}

impl StepInput {
    fn parse(&self, kinds: &KindCatalogue, effective_on: Date) -> Result<Step, ModelError> {
        let none = |field: &str, empty: bool| -> Result<(), ModelError> {
            if empty {
                Ok(())
            } else {
                Err(ModelError::invalid(
                    field,
                    format!("a {} step takes no {field}", self.kind.trim()),
                ))
            }
        };
        let step = match self.kind.trim() {
            "create" => Step::Create {
                id: match self.unit.trim() {
                    "" => UnitId::generate(),
                    s => UnitId::parse("unit", s)?,
                },
                name: unit_name(&self.name)?,
                kind: kinds.parse("unit_kind", &self.unit_kind)?.id.clone(),
                parent: one_unit("to", &self.to)?,
            },
            "rename" => Step::Rename {
                unit: one_unit("unit", &self.unit)?,
                name: unit_name(&self.name)?,
            },
            "move" => {
                if self.units.is_empty() {
                    return Err(ModelError::invalid("units", "name at least one unit"));
                }
                Step::Move {
                    units: unit_list("units", &self.units)?,
                    to: one_unit("to", &self.to)?,
                }
            }
            "merge" => {
                if self.units.is_empty() {
                    return Err(ModelError::invalid(
                        "units",
                        "name at least one unit to merge",
                    ));
                }
                Step::Merge {
                    sources: unit_list("units", &self.units)?,
                    into: one_unit("to", &self.to)?,
                }
            }
            "split" => {
                if self.successors.is_empty() {
                    return Err(ModelError::invalid(
                        "successors",
                        "name at least one successor",
                    ));
                }
                if self.parts.len() != self.successors.len() {
                    return Err(ModelError::invalid(
                        "parts",
                        format!(
                            "{} parts for {} successors: give each successor the list of children it receives",
                            self.parts.len(),
                            self.successors.len()
                        ),
                    ));
                }
                let successors = unit_list("successors", &self.successors)?;
                let mut parts = Vec::with_capacity(successors.len());
                for (i, (s, children)) in successors.into_iter().zip(&self.parts).enumerate() {
                    parts.push(SplitPart {
                        successor: s,
                        children: unit_list(&format!("parts[{i}]"), children)?,
                    });
                }
                Step::Split {
                    unit: one_unit("unit", &self.unit)?,
                    parts,
                }
            }
            "close" => Step::Close {
                unit: one_unit("unit", &self.unit)?,
                successors: unit_list("successors", &self.successors)?,
                reason: clean_text("reason", &self.reason, 500, true)?,
            },
            "cease" => {
                if self.units.is_empty() && self.members.is_empty() {
                    return Err(ModelError::invalid(
                        "units",
                        "name the units whose members cease, or the members",
                    ));
                }
                if self.members.len() > MAX_LISTED {
                    return Err(ModelError::invalid(
                        "members",
                        format!("at most {MAX_LISTED} per step: split the decision"),
                    ));
                }
                let mut members = Vec::with_capacity(self.members.len());
                let mut seen = HashMap::new();
                for (i, m) in self.members.iter().enumerate() {
                    let f = format!("members[{i}]");
                    let id = MemberId::parse(&f, m)?;
                    if let Some(j) = seen.insert(id.clone(), i) {
                        return Err(ModelError::invalid(
                            f,
                            format!("member {id} is named twice (also members[{j}])"),
                        ));
                    }
                    members.push(id);
                }
                Step::Cease {
                    units: unit_list("units", &self.units)?,
                    members,
                    reason: clean_text("reason", &self.reason, 500, true)?,
                    on: Date::parse_opt("on", &self.on)?.unwrap_or(effective_on),
                }
            }
            "" => return Err(ModelError::invalid("kind", "must not be empty")),
            other => {
                return Err(ModelError::invalid(
                    "kind",
                    format!(
                        "unknown step {other:?}; steps are create, rename, move, merge, split, close, cease"
                    ),
                ));
            }
        };
        // Fields a step does not use are refused rather than ignored: a
        // plan that says more than it does is a mistake in the plan.
        match &step {
            Step::Create { .. } => {
                none("units", self.units.is_empty())?;
                none("members", self.members.is_empty())?;
                none("successors", self.successors.is_empty())?;
            }
            Step::Rename { .. } => {
                none("to", self.to.trim().is_empty())?;
                none("units", self.units.is_empty())?;
            }
            Step::Move { .. } | Step::Merge { .. } => {
                none("unit", self.unit.trim().is_empty())?;
                none("members", self.members.is_empty())?;
                none("successors", self.successors.is_empty())?;
            }
            Step::Split { .. } => {
                none("units", self.units.is_empty())?;
                none("to", self.to.trim().is_empty())?;
            }
            Step::Close { .. } => {
                none("units", self.units.is_empty())?;
                none("to", self.to.trim().is_empty())?;
            }
            Step::Cease { .. } => {
                none("unit", self.unit.trim().is_empty())?;
                none("to", self.to.trim().is_empty())?;
            }
        }
        Ok(step)
    }
}

impl Plan {
    /// Checks every field; an error names the step (`steps[2].units[1]`).
    pub fn parse(
        input: &PlanInput,
        kinds: &KindCatalogue,
        today: Date,
    ) -> Result<Plan, ModelError> {
        let decision =
            Decision::parse(&input.number, &input.decided_on, &input.effective_on, today)?;
        if decision.decision_no.is_empty() {
            return Err(ModelError::invalid(
                "number",
                "a reorganisation decision needs its number (số quyết định)",
            ));
        }
        if input.steps.is_empty() {
            return Err(ModelError::invalid(
                "steps",
                "a decision needs at least one step",
            ));
        }
        if input.steps.len() > MAX_STEPS {
            return Err(ModelError::invalid(
                "steps",
                format!("{} steps; at most {MAX_STEPS}", input.steps.len()),
            ));
        }
        let steps = input
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse(kinds, decision.effective_on)
                    .map_err(|e| e.in_field(&format!("steps[{i}].")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            id: match input.id.trim() {
                "" => DecisionId::generate(),
                s => DecisionId::parse("id", s)?,
            },
            number: decision.decision_no,
            title: clean_text("title", &input.title, 300, false)?,
            decided_on: decision.decided_on,
            effective_on: decision.effective_on,
            issuing_unit: one_unit("issuing_unit", &input.issuing_unit)?,
            steps,
        })
    }

    /// The decision as the unit operations record it.
    pub fn decision(&self) -> Decision {
        Decision {
            decision_no: self.number.clone(),
            decided_on: self.decided_on,
            effective_on: self.effective_on,
        }
    }

    /// Every existing unit the plan names (units it creates excluded).
    pub fn named_units(&self) -> Vec<UnitId> {
        let mut out = vec![self.issuing_unit.clone()];
        let mut created = Vec::new();
        for s in &self.steps {
            match s {
                Step::Create { id, parent, .. } => {
                    created.push(id.clone());
                    out.push(parent.clone());
                }
                Step::Rename { unit, .. } => out.push(unit.clone()),
                Step::Move { units, to } => {
                    out.extend(units.iter().cloned());
                    out.push(to.clone());
                }
                Step::Merge { sources, into } => {
                    out.extend(sources.iter().cloned());
                    out.push(into.clone());
                }
                Step::Split { unit, parts } => {
                    out.push(unit.clone());
                    for p in parts {
                        out.push(p.successor.clone());
                        out.extend(p.children.iter().cloned());
                    }
                }
                Step::Close {
                    unit, successors, ..
                } => {
                    out.push(unit.clone());
                    out.extend(successors.iter().cloned());
                }
                Step::Cease { units, .. } => out.extend(units.iter().cloned()),
            }
        }
        out.sort();
        out.dedup();
        out.retain(|u| !created.contains(u));
        out
    }

    /// The members named one by one in cease steps.
    pub fn named_members(&self) -> Vec<MemberId> {
        let mut out: Vec<MemberId> = self
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Cease { members, .. } => members.as_slice(),
                _ => &[],
            })
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What [`simulate`] needs besides the tree: facts about the units and
/// members the plan names, read by the caller from its projections.
#[derive(Debug, Default)]
pub struct Facts {
    /// The day each named unit came into existence.
    pub created_on: HashMap<UnitId, Date>,
    /// Active members of each named unit.
    pub active_members: HashMap<UnitId, u64>,
    /// The unit each member named one by one is active in (absent: not an
    /// active member here).
    pub member_units: HashMap<MemberId, UnitId>,
}

/// A unit closed by the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub unit: UnitId,
    pub status: UnitStatus,
    pub successors: Vec<UnitId>,
    pub reason: String,
}

/// A unit re-parented by the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moving {
    pub unit: UnitId,
    pub from: Option<UnitId>,
    pub to: UnitId,
}

/// A group of members ceased by the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceasing {
    /// Every active member of these units.
    pub units: Vec<UnitId>,
    /// And these members, by the unit they are active in.
    pub members: BTreeMap<UnitId, Vec<MemberId>>,
    pub reason: String,
    pub on: Date,
}

/// What a decision writes, in the order it is written: units created,
/// renamed, moved; members transferred (a merged grassroots union's roster
/// follows it) and ceased; units closed.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub creates: Vec<(UnitId, String, KindId, UnitId)>,
    pub renames: Vec<(UnitId, String)>,
    pub moves: Vec<Moving>,
    /// Every active member of the first unit moves to the second.
    pub transfers: Vec<(UnitId, UnitId)>,
    pub ceases: Vec<Ceasing>,
    pub closes: Vec<Closing>,
    /// The tree once the decision is applied.
    pub tree_after: UnitTree,
}

/// The error of step `i`: its field prefixed.
fn at(i: usize, field: &str, reason: impl Into<String>) -> ModelError {
    ModelError::invalid(format!("steps[{i}].{field}"), reason)
}

struct Sim<'a> {
    tree: UnitTree,
    kinds: &'a KindCatalogue,
    node_unit: &'a UnitId,
    plan: &'a Plan,
    facts: &'a Facts,
    active: HashMap<UnitId, u64>,
    /// Which step made a unit the subject of a change of structure.
    subject: HashMap<UnitId, usize>,
    renamed: HashMap<UnitId, usize>,
    created: HashMap<UnitId, Date>,
    fx: Effects,
}

impl Sim<'_> {
    fn node(&self, i: usize, field: &str, id: &UnitId) -> Result<&TreeNode, ModelError> {
        let n = self
            .tree
            .get(id)
            .ok_or_else(|| at(i, field, format!("unit {id} does not exist")))?;
        if n.status != UnitStatus::Active {
            return Err(at(
                i,
                field,
                format!(
                    "unit {id} is {} (closed units take no changes)",
                    n.status.as_str()
                ),
            ));
        }
        Ok(n)
    }

    fn may_have_children(&self, i: usize, field: &str, id: &UnitId) -> Result<(), ModelError> {
        let kind = self.node(i, field, id)?.kind.clone();
        if self
            .kinds
            .get(kind.as_str())
            .is_some_and(|k| k.has_children)
        {
            Ok(())
        } else {
            Err(at(
                i,
                field,
                format!("unit {id} is of kind {kind}, which cannot hold child units"),
            ))
        }
    }

    fn holds_members(&self, id: &UnitId) -> bool {
        self.tree
            .get(id)
            .and_then(|n| self.kinds.get(n.kind.as_str()))
            .is_some_and(|k| k.holds_members)
    }

    /// The unit becomes the subject of step `i`; each unit is moved,
    /// merged, split or closed by one step at most.
    fn claim(&mut self, i: usize, field: &str, id: &UnitId) -> Result<(), ModelError> {
        if let Some(j) = self.subject.insert(id.clone(), i) {
            return Err(at(
                i,
                field,
                format!("unit {id} is named twice: step {j} already changes it"),
            ));
        }
        Ok(())
    }

    /// The decision's effective date must not lie before the unit existed.
    fn existed(&self, i: usize, field: &str, id: &UnitId) -> Result<(), ModelError> {
        let since = self
            .created
            .get(id)
            .or_else(|| self.facts.created_on.get(id));
        match since {
            Some(d) if *d > self.plan.effective_on => Err(at(
                i,
                field,
                format!(
                    "the decision takes effect on {}, before unit {id} existed ({d})",
                    self.plan.effective_on
                ),
            )),
            _ => Ok(()),
        }
    }

    /// This node must hold authority over the unit's record, i.e. over its
    /// owner (the parent), and the issuing unit must lie above it.
    fn authority(&self, i: usize, field: &str, owner: &UnitId) -> Result<(), ModelError> {
        let t = &self.tree;
        if !t.is_within(owner, &self.plan.issuing_unit) {
            return Err(at(
                i,
                field,
                format!(
                    "unit {owner} lies outside the subtree of the issuing unit {}: a decision is issued by a unit above every unit it changes",
                    self.plan.issuing_unit
                ),
            ));
        }
        if !t.has_authority(self.node_unit, owner) {
            return Err(ModelError::NoAuthority {
                node_unit: self.node_unit.to_string(),
                target: format!("unit {owner} (steps[{i}].{field})"),
            });
        }
        Ok(())
    }

    /// Re-parents `unit` under `to`.
    fn reparent(
        &mut self,
        i: usize,
        field: &str,
        unit: &UnitId,
        to: &UnitId,
    ) -> Result<(), ModelError> {
        let node = self.node(i, field, unit)?.clone();
        if self.tree.is_within(to, unit) {
            return Err(at(
                i,
                field,
                format!("moving unit {unit} under {to} makes a cycle: {to} lies inside {unit}"),
            ));
        }
        if node.parent.as_ref() == Some(to) {
            return Err(at(i, field, format!("unit {unit} is already under {to}")));
        }
        if let Some(p) = &node.parent {
            self.authority(i, field, p)?;
        } else {
            return Err(at(
                i,
                field,
                format!("unit {unit} is the root of the federation"),
            ));
        }
        self.authority(i, "to", to)?;
        self.existed(i, field, unit)?;
        self.fx.moves.push(Moving {
            unit: unit.clone(),
            from: node.parent.clone(),
            to: to.clone(),
        });
        self.tree.upsert(
            unit.clone(),
            TreeNode {
                parent: Some(to.clone()),
                ..node
            },
        );
        Ok(())
    }

    fn active_children(&self, id: &UnitId) -> Vec<UnitId> {
        self.tree
            .children(id)
            .iter()
            .filter(|c| {
                self.tree
                    .get(c)
                    .is_some_and(|n| n.status == UnitStatus::Active)
            })
            .cloned()
            .collect()
    }

    fn close(
        &mut self,
        i: usize,
        field: &str,
        unit: &UnitId,
        status: UnitStatus,
        successors: Vec<UnitId>,
        reason: String,
    ) -> Result<(), ModelError> {
        let node = self.node(i, field, unit)?.clone();
        let owner = node.parent.clone().unwrap_or_else(|| unit.clone());
        self.authority(i, field, &owner)?;
        self.existed(i, field, unit)?;
        let children = self.active_children(unit);
        if !children.is_empty() {
            let names: Vec<&str> = children.iter().map(UnitId::as_str).collect();
            return Err(at(
                i,
                field,
                format!(
                    "unit {unit} still has active child units ({}): move them in an earlier step",
                    names.join(", ")
                ),
            ));
        }
        let active = self.active.get(unit).copied().unwrap_or(0);
        if active > 0 {
            return Err(at(
                i,
                field,
                format!(
                    "unit {unit} still has {active} active members: cease them in an earlier step, or merge the unit"
                ),
            ));
        }
        self.fx.closes.push(Closing {
            unit: unit.clone(),
            status,
            successors,
            reason,
        });
        self.tree.upsert(unit.clone(), TreeNode { status, ..node });
        Ok(())
    }

    fn step(&mut self, i: usize, step: &Step) -> Result<(), ModelError> {
        match step {
            Step::Create {
                id,
                name,
                kind,
                parent,
            } => {
                if self.tree.contains(id) {
                    return Err(at(i, "unit", format!("unit {id} already exists")));
                }
                self.may_have_children(i, "to", parent)?;
                self.authority(i, "to", parent)?;
                self.existed(i, "to", parent)?;
                self.claim(i, "unit", id)?;
                self.created.insert(id.clone(), self.plan.effective_on);
                self.tree.upsert(
                    id.clone(),
                    TreeNode {
                        parent: Some(parent.clone()),
                        kind: kind.clone(),
                        status: UnitStatus::Active,
                        name: name.clone(),
                    },
                );
                self.fx
                    .creates
                    .push((id.clone(), name.clone(), kind.clone(), parent.clone()));
            }
            Step::Rename { unit, name } => {
                let node = self.node(i, "unit", unit)?.clone();
                if let Some(j) = self.renamed.insert(unit.clone(), i) {
                    return Err(at(
                        i,
                        "unit",
                        format!("unit {unit} is named twice: step {j} already renames it"),
                    ));
                }
                if node.name == *name {
                    return Err(at(
                        i,
                        "name",
                        format!("unit {unit} is already named {name:?}"),
                    ));
                }
                let owner = node.parent.clone().unwrap_or_else(|| unit.clone());
                self.authority(i, "unit", &owner)?;
                self.existed(i, "unit", unit)?;
                self.fx.renames.push((unit.clone(), name.clone()));
                self.tree.upsert(
                    unit.clone(),
                    TreeNode {
                        name: name.clone(),
                        ..node
                    },
                );
            }
            Step::Move { units, to } => {
                self.may_have_children(i, "to", to)?;
                self.existed(i, "to", to)?;
                for (j, u) in units.iter().enumerate() {
                    let f = format!("units[{j}]");
                    self.claim(i, &f, u)?;
                    self.reparent(i, &f, u, to)?;
                }
            }
            Step::Merge { sources, into } => {
                self.node(i, "to", into)?;
                self.existed(i, "to", into)?;
                for (j, s) in sources.iter().enumerate() {
                    let f = format!("units[{j}]");
                    if s == into {
                        return Err(at(i, &f, format!("unit {s} cannot be merged into itself")));
                    }
                    self.claim(i, &f, s)?;
                    self.node(i, &f, s)?;
                    if self.tree.is_within(into, s) {
                        return Err(at(
                            i,
                            &f,
                            format!(
                                "unit {into} lies inside {s}: a unit cannot be merged into its own subtree"
                            ),
                        ));
                    }
                    let children = self.active_children(s);
                    if !children.is_empty() {
                        self.may_have_children(i, "to", into)?;
                    }
                    for c in &children {
                        self.subject.insert(c.clone(), i);
                        self.reparent(i, &f, c, into)?;
                    }
                    let members = self.active.get(s).copied().unwrap_or(0);
                    if members > 0 {
                        if !self.holds_members(into) {
                            return Err(at(
                                i,
                                "to",
                                format!(
                                    "unit {into} keeps no roster: the {members} active members of {s} cannot follow it; merge {s} into a grassroots union, or cease its members first"
                                ),
                            ));
                        }
                        self.fx.transfers.push((s.clone(), into.clone()));
                        self.active.insert(s.clone(), 0);
                        *self.active.entry(into.clone()).or_default() += members;
                    }
                    let reason = format!("merged into {into} by decision {}", self.plan.number);
                    self.close(i, &f, s, UnitStatus::Merged, vec![into.clone()], reason)?;
                }
            }
            Step::Split { unit, parts } => {
                self.claim(i, "unit", unit)?;
                self.node(i, "unit", unit)?;
                let children = self.active_children(unit);
                let mut given: HashMap<&UnitId, String> = HashMap::new();
                for (p, part) in parts.iter().enumerate() {
                    let sf = format!("successors[{p}]");
                    if part.successor == *unit || self.tree.is_within(&part.successor, unit) {
                        return Err(at(
                            i,
                            &sf,
                            format!("successor {} lies inside the unit split", part.successor),
                        ));
                    }
                    self.may_have_children(i, &sf, &part.successor)?;
                    self.existed(i, &sf, &part.successor)?;
                    for (k, c) in part.children.iter().enumerate() {
                        let cf = format!("parts[{p}][{k}]");
                        if !children.contains(c) {
                            return Err(at(
                                i,
                                &cf,
                                format!("unit {c} is not an active child unit of {unit}"),
                            ));
                        }
                        if let Some(other) = given.insert(c, cf.clone()) {
                            return Err(at(
                                i,
                                &cf,
                                format!("unit {c} is named twice (also {other})"),
                            ));
                        }
                    }
                }
                if let Some(c) = children.iter().find(|c| !given.contains_key(c)) {
                    return Err(at(
                        i,
                        "parts",
                        format!("child unit {c} of {unit} is given to no successor"),
                    ));
                }
                for (p, part) in parts.iter().enumerate() {
                    for (k, c) in part.children.iter().enumerate() {
                        let cf = format!("parts[{p}][{k}]");
                        self.claim(i, &cf, c)?;
                        self.reparent(i, &cf, c, &part.successor)?;
                    }
                }
                let successors: Vec<UnitId> = parts.iter().map(|p| p.successor.clone()).collect();
                let names: Vec<&str> = successors.iter().map(UnitId::as_str).collect();
                let reason = format!(
                    "split among {} by decision {}",
                    names.join(", "),
                    self.plan.number
                );
                self.close(i, "unit", unit, UnitStatus::Closed, successors, reason)?;
            }
            Step::Close {
                unit,
                successors,
                reason,
            } => {
                self.claim(i, "unit", unit)?;
                for (j, s) in successors.iter().enumerate() {
                    let f = format!("successors[{j}]");
                    if s == unit {
                        return Err(at(i, &f, "a unit cannot succeed itself"));
                    }
                    self.node(i, &f, s)?;
                }
                self.close(
                    i,
                    "unit",
                    unit,
                    UnitStatus::Closed,
                    successors.clone(),
                    reason.clone(),
                )?;
            }
            Step::Cease {
                units,
                members,
                reason,
                on,
            } => {
                if *on > self.plan.decided_on.max(self.plan.effective_on) {
                    return Err(at(
                        i,
                        "on",
                        format!(
                            "{on} is after the decision takes effect ({}): members cease on or before it",
                            self.plan.effective_on
                        ),
                    ));
                }
                for (j, u) in units.iter().enumerate() {
                    let f = format!("units[{j}]");
                    self.node(i, &f, u)?;
                    if !self.holds_members(u) {
                        return Err(at(
                            i,
                            &f,
                            format!("unit {u} keeps no roster: name grassroots unions"),
                        ));
                    }
                    self.authority(i, &f, u)?;
                    if let Some(since) = self.facts.created_on.get(u)
                        && since > on
                    {
                        return Err(at(
                            i,
                            "on",
                            format!("{on} is before unit {u} existed ({since})"),
                        ));
                    }
                    if let Some(j) = self.subject.get(u).filter(|j| **j != i) {
                        // Ceasing after a merge moved the members away would cease nobody.
                        if self.fx.transfers.iter().any(|(from, _)| from == u) {
                            return Err(at(
                                i,
                                &f,
                                format!("unit {u} was merged by step {j}: its members moved"),
                            ));
                        }
                    }
                    self.active.insert(u.clone(), 0);
                }
                let mut by_unit: BTreeMap<UnitId, Vec<MemberId>> = BTreeMap::new();
                for (j, m) in members.iter().enumerate() {
                    let f = format!("members[{j}]");
                    let Some(u) = self.facts.member_units.get(m) else {
                        return Err(at(
                            i,
                            &f,
                            format!("member {m} is not an active member here"),
                        ));
                    };
                    if units.contains(u) {
                        return Err(at(
                            i,
                            &f,
                            format!(
                                "member {m} is named twice: every active member of unit {u} ceases by this step"
                            ),
                        ));
                    }
                    if self.fx.ceases.iter().any(|c| {
                        c.units.contains(u) || c.members.get(u).is_some_and(|l| l.contains(m))
                    }) {
                        return Err(at(
                            i,
                            &f,
                            format!("member {m} already ceases by an earlier step"),
                        ));
                    }
                    self.authority(i, &f, u)?;
                    if let Some(n) = self.active.get_mut(u) {
                        *n = n.saturating_sub(1);
                    }
                    by_unit.entry(u.clone()).or_default().push(m.clone());
                }
                self.fx.ceases.push(Ceasing {
                    units: units.clone(),
                    members: by_unit,
                    reason: reason.clone(),
                    on: *on,
                });
            }
        }
        Ok(())
    }
}

/// Plays the plan on a copy of `tree`, as the node hosting `node_unit`
/// would apply it: every step checked (the tree as the earlier steps left
/// it), nothing written. The first step that cannot be applied refuses the
/// whole plan.
pub fn simulate(
    plan: &Plan,
    tree: &UnitTree,
    kinds: &KindCatalogue,
    node_unit: &UnitId,
    facts: &Facts,
) -> Result<Effects, ModelError> {
    if !tree.contains(&plan.issuing_unit) {
        return Err(ModelError::invalid(
            "issuing_unit",
            format!("unit {} does not exist", plan.issuing_unit),
        ));
    }
    if !tree.has_authority(node_unit, &plan.issuing_unit) {
        return Err(ModelError::NoAuthority {
            node_unit: node_unit.to_string(),
            target: format!("the issuing unit {}", plan.issuing_unit),
        });
    }
    let mut sim = Sim {
        tree: tree.clone(),
        kinds,
        node_unit,
        plan,
        facts,
        active: facts.active_members.clone(),
        subject: HashMap::new(),
        renamed: HashMap::new(),
        created: HashMap::new(),
        fx: Effects::default(),
    };
    for (i, s) in plan.steps.iter().enumerate() {
        sim.step(i, s)?;
    }
    let mut fx = sim.fx;
    fx.tree_after = sim.tree;
    Ok(fx)
}

/// The unit above every record a plan writes, where the decision can be
/// applied: the lowest common ancestor, in `tree`, of the issuing unit,
/// the parents of the units it changes (who own their records) and the
/// units it moves into or ceases members of.
pub fn applying_unit(plan: &Plan, tree: &UnitTree) -> Option<UnitId> {
    let parent = |u: &UnitId| tree.get(u).and_then(|n| n.parent.clone());
    let mut owners = vec![plan.issuing_unit.clone()];
    for s in &plan.steps {
        match s {
            Step::Create { parent: p, .. } => owners.push(p.clone()),
            Step::Rename { unit, .. } | Step::Close { unit, .. } => owners.extend(parent(unit)),
            Step::Move { units, to }
            | Step::Merge {
                sources: units,
                into: to,
            } => {
                owners.extend(units.iter().filter_map(parent));
                owners.push(to.clone());
            }
            Step::Split { unit, parts } => {
                owners.extend(parent(unit));
                owners.extend(parts.iter().map(|p| p.successor.clone()));
            }
            Step::Cease { units, .. } => owners.extend(units.iter().cloned()),
        }
    }
    owners.retain(|o| tree.contains(o));
    let first = owners.first()?.clone();
    let mut path: Vec<UnitId> = std::iter::once(first.clone())
        .chain(tree.ancestors(&first))
        .collect();
    for o in &owners[1..] {
        path.retain(|a| tree.is_within(o, a));
    }
    path.into_iter().next()
}

// ---- the decision document -------------------------------------------

/// What a decision did, as its document records it (counts, for lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub units_created: u64,
    pub units_renamed: u64,
    pub units_moved: u64,
    pub units_closed: u64,
    pub members_transferred: u64,
    pub members_ceased: u64,
}

/// A decision as its document records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub plan: PlanInput,
    pub id: DecisionId,
    /// When and where it was applied: UTC `YYYY-MM-DDTHH:MM:SSZ`, node id.
    pub applied_at: String,
    pub applied_by: String,
    pub outcome: Outcome,
}

fn step_record(s: &StepInput) -> Record {
    Record::new()
        .str("kind", s.kind.trim())
        .str("unit", s.unit.trim())
        .str("name", s.name.trim())
        .str("unit_kind", s.unit_kind.trim())
        .str("to", s.to.trim())
        .strings("units", &s.units)
        .strings("members", &s.members)
        .strings("successors", &s.successors)
        .records(
            "parts",
            s.parts
                .iter()
                .map(|p| Record::new().strings("children", p))
                .collect(),
        )
        .str("reason", s.reason.trim())
        .str("on", s.on.trim())
}

/// The plan in the normal form stored: ids resolved (a created unit's
/// generated id), dates filled in.
pub fn normal_input(plan: &Plan) -> PlanInput {
    let ids = |v: &[UnitId]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    let steps = plan
        .steps
        .iter()
        .map(|s| {
            let mut i = StepInput {
                kind: s.kind().to_owned(),
                ..StepInput::default()
            };
            match s {
                Step::Create {
                    id,
                    name,
                    kind,
                    parent,
                } => {
                    i.unit = id.to_string();
                    i.name = name.clone();
                    i.unit_kind = kind.to_string();
                    i.to = parent.to_string();
                }
                Step::Rename { unit, name } => {
                    i.unit = unit.to_string();
                    i.name = name.clone();
                }
                Step::Move { units, to } => {
                    i.units = ids(units);
                    i.to = to.to_string();
                }
                Step::Merge { sources, into } => {
                    i.units = ids(sources);
                    i.to = into.to_string();
                }
                Step::Split { unit, parts } => {
                    i.unit = unit.to_string();
                    i.successors = parts.iter().map(|p| p.successor.to_string()).collect();
                    i.parts = parts.iter().map(|p| ids(&p.children)).collect();
                }
                Step::Close {
                    unit,
                    successors,
                    reason,
                } => {
                    i.unit = unit.to_string();
                    i.successors = ids(successors);
                    i.reason = reason.clone();
                }
                Step::Cease {
                    units,
                    members,
                    reason,
                    on,
                } => {
                    i.units = ids(units);
                    i.members = members.iter().map(ToString::to_string).collect();
                    i.reason = reason.clone();
                    i.on = on.to_string();
                }
            }
            i
        })
        .collect();
    PlanInput {
        id: plan.id.to_string(),
        number: plan.number.clone(),
        title: plan.title.clone(),
        decided_on: plan.decided_on.to_string(),
        effective_on: plan.effective_on.to_string(),
        issuing_unit: plan.issuing_unit.to_string(),
        steps,
    }
}

/// Writes a decision into an empty `decision/{id}` document.
pub fn write(doc: &mut Automerge, author: &Author, rec: &Recorded) -> Result<(), ModelError> {
    if !Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::AlreadyExists {
            what: "decision",
            id: rec.id.to_string(),
        });
    }
    let p = &rec.plan;
    let o = &rec.outcome;
    let n = |v: u64| v as i64;
    edit(doc, author, "reorganisation decision", |tx| {
        Record::new()
            .int("v", SCHEMA_VERSION)
            .str("id", &rec.id)
            .str("owner", &p.issuing_unit)
            .strings("addressed", std::slice::from_ref(&p.issuing_unit))
            .str("number", &p.number)
            .str("title", &p.title)
            .str("decided_on", &p.decided_on)
            .str("effective_on", &p.effective_on)
            .str("issuing_unit", &p.issuing_unit)
            .str("applied_at", &rec.applied_at)
            .str("applied_by", &rec.applied_by)
            .records("steps", p.steps.iter().map(step_record).collect())
            .record(
                "outcome",
                Record::new()
                    .int("units_created", n(o.units_created))
                    .int("units_renamed", n(o.units_renamed))
                    .int("units_moved", n(o.units_moved))
                    .int("units_closed", n(o.units_closed))
                    .int("members_transferred", n(o.members_transferred))
                    .int("members_ceased", n(o.members_ceased)),
            )
            .init_root(tx)
    })
}

/// Reads the decision recorded in `doc`.
pub fn read(id: &DocId, doc: &Automerge) -> Result<Recorded, ModelError> {
    let root = Obj::root(doc);
    let did = DecisionId::parse("id", &root.str("id"))
        .map_err(|e| ModelError::document(id, e.to_string()))?;
    let steps = root
        .list("steps")
        .iter()
        .map(|s| StepInput {
            kind: s.str("kind"),
            unit: s.str("unit"),
            name: s.str("name"),
            unit_kind: s.str("unit_kind"),
            to: s.str("to"),
            units: s.strings("units"),
            members: s.strings("members"),
            successors: s.strings("successors"),
            parts: s
                .list("parts")
                .iter()
                .map(|p| p.strings("children"))
                .collect(),
            reason: s.str("reason"),
            on: s.str("on"),
        })
        .collect();
    let out = root.obj("outcome");
    let n = |k: &str| out.as_ref().map(|o| o.i64(k).max(0) as u64).unwrap_or(0);
    Ok(Recorded {
        plan: PlanInput {
            id: did.to_string(),
            number: root.str("number"),
            title: root.str("title"),
            decided_on: root.str("decided_on"),
            effective_on: root.str("effective_on"),
            issuing_unit: root.str("issuing_unit"),
            steps,
        },
        id: did,
        applied_at: root.str("applied_at"),
        applied_by: root.str("applied_by"),
        outcome: Outcome {
            units_created: n("units_created"),
            units_renamed: n("units_renamed"),
            units_moved: n("units_moved"),
            units_closed: n("units_closed"),
            members_transferred: n("members_transferred"),
            members_ceased: n("members_ceased"),
        },
    })
}

#[cfg(test)]
mod tests;
