//! Playing a plan on a copy of the tree: every step checked against the
//! tree as the earlier steps left it, and the [`Effects`] to write.

use std::collections::{BTreeMap, HashMap};

use super::{Ceasing, Closing, Effects, Facts, Moving, Plan, Step};
use crate::date::Date;
use crate::error::ModelError;
use crate::ids::{MemberId, UnitId};
use crate::tree::{TreeNode, UnitTree};
use crate::unit::{KindCatalogue, UnitStatus};

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
            // Checked by the applying node against the node records it
            // holds; it changes no unit.
            Step::Seal { .. } => {}
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

/// The unit whose node can apply the plan: its issuing unit. [`simulate`]
/// asks for authority over the issuing unit (which owns the decision's
/// document), and every unit the plan changes must lie below it, so the
/// node hosting the issuing unit (or one above it) applies it; a plan
/// naming units elsewhere is refused there, naming them. `None` when
/// `tree` does not know the issuing unit.
pub fn applying_unit(plan: &Plan, tree: &UnitTree) -> Option<UnitId> {
    tree.contains(&plan.issuing_unit)
        .then(|| plan.issuing_unit.clone())
}
