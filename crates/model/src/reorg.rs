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
//!
//! # Layout
//! - this module: the plan as sent and as parsed, and what it does.
//! - `simulate`: [`simulate`], the steps played on a copy of the tree, and
//!   [`applying_unit`].
//! - `record`: the decision document ([`write`], [`read`],
//!   [`normal_input`]).

use std::collections::{BTreeMap, HashMap};

use crate::date::Date;
use crate::error::ModelError;
use crate::ids::{DecisionId, KindId, MemberId, NodeId, UnitId, clean_text};
use crate::tree::UnitTree;
use crate::unit::{Decision, KindCatalogue, UnitStatus, unit_name};

mod record;
mod simulate;

pub use record::{GivenUp, Outcome, Recorded, Seal, normal_input, read, write};
pub use simulate::{applying_unit, simulate};

/// The most steps one decision may carry, and the most units or members
/// one step may list: a decision is one transaction, and these bound it.
pub const MAX_STEPS: usize = 2_000;
pub const MAX_LISTED: usize = 100_000;

/// A step as a request names it: every field a string or a list of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepInput {
    /// create, rename, move, merge, split, close, cease, seal
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
    /// seal: the node given up (an old host that will not come back).
    pub node: String,
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
    /// An old host that will not come back is given up: what only it held
    /// is recorded as lost (DESIGN §6), and its held changes discarded.
    Seal {
        node: NodeId,
        reason: String,
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
            Step::Seal { .. } => "seal",
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
            "seal" => {
                if self.node.trim().is_empty() {
                    return Err(ModelError::invalid("node", "name the node given up"));
                }
                Step::Seal {
                    node: NodeId::parse("node", &self.node)?,
                    reason: clean_text("reason", &self.reason, 500, true)?,
                }
            }
            "" => return Err(ModelError::invalid("kind", "must not be empty")),
            other => {
                return Err(ModelError::invalid(
                    "kind",
                    format!(
                        "unknown step {other:?}; steps are create, rename, move, merge, split, close, cease, seal"
                    ),
                ));
            }
        };
        // Fields a step does not use are refused rather than ignored: a
        // plan that says more than it does is a mistake in the plan.
        let takes: &[&str] = match &step {
            Step::Create { .. } => &["unit", "name", "unit_kind", "to"],
            Step::Rename { .. } => &["unit", "name"],
            Step::Move { .. } | Step::Merge { .. } => &["units", "to"],
            Step::Split { .. } => &["unit", "successors", "parts"],
            Step::Close { .. } => &["unit", "successors", "reason"],
            Step::Cease { .. } => &["units", "members", "reason", "on"],
            Step::Seal { .. } => &["node", "reason"],
        };
        for (field, empty) in [
            ("unit", self.unit.trim().is_empty()),
            ("name", self.name.trim().is_empty()),
            ("unit_kind", self.unit_kind.trim().is_empty()),
            ("to", self.to.trim().is_empty()),
            ("units", self.units.is_empty()),
            ("members", self.members.is_empty()),
            ("successors", self.successors.is_empty()),
            ("parts", self.parts.is_empty()),
            ("reason", self.reason.trim().is_empty()),
            ("on", self.on.trim().is_empty()),
            ("node", self.node.trim().is_empty()),
        ] {
            if !takes.contains(&field) {
                none(field, empty)?;
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
                Step::Seal { .. } => {}
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

impl Effects {
    /// Every unit of the subtrees the decision moves (by the tree after
    /// it), each once: whose documents change holders.
    pub fn moved_units(&self) -> Vec<UnitId> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in &self.moves {
            for u in self.tree_after.subtree(&m.unit) {
                if seen.insert(u.clone()) {
                    out.push(u);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fields;
