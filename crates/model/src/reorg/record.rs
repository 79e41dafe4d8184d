//! The decision document: a decision as `decision/{id}` records it.

use automerge::Automerge;

use super::{Plan, PlanInput, Step, StepInput};
use crate::am::{Obj, Record};
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{DecisionId, UnitId};

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
    /// The heads, at the applying node when it applied the decision, of
    /// every document owned in a subtree the decision moved. The changes
    /// they cover were made by the units' hosts before the move, with
    /// authority then: every node keeps accepting them after it (the gate
    /// checks a change against the tree of now, where their makers may no
    /// longer hold authority). A change not covered is judged as any other.
    pub seals: Vec<Seal>,
    /// The nodes its seal steps give up, and what is lost with each.
    pub given_up: Vec<GivenUp>,
}

/// An old host given up by a seal step: what the applying node knew it
/// held and loses with it (an explicit, recorded loss).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenUp {
    pub node: String,
    pub reason: String,
    /// Units that were in the node's subtree (they moved or closed).
    pub units: u64,
    /// Active members of those units: their personal data (CCCD,
    /// ethnicity, religion) was held at that node and below it; what did
    /// not reach another node holding personal data is lost.
    pub members: u64,
    /// Whether the applying node itself holds personal data (then it
    /// keeps what reached it).
    pub personal_data_here: bool,
    /// Changes by the node held in the applying node's quarantine,
    /// discarded by the decision.
    pub held_discarded: u64,
}

/// A moved document's heads when the decision was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub doc: String,
    /// Change hashes, hex.
    pub heads: Vec<String>,
}

impl Seal {
    /// The seal of document `doc` at `heads`.
    pub fn of(doc: String, heads: &[automerge::ChangeHash]) -> Seal {
        Seal {
            doc,
            heads: heads.iter().map(ToString::to_string).collect(),
        }
    }
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
        .str("node", s.node.trim())
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
                Step::Seal { node, reason } => {
                    i.node = node.to_string();
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
            .records(
                "seals",
                rec.seals
                    .iter()
                    .map(|s| Record::new().str("doc", &s.doc).strings("heads", &s.heads))
                    .collect(),
            )
            .records(
                "given_up",
                rec.given_up
                    .iter()
                    .map(|g| {
                        Record::new()
                            .str("node", &g.node)
                            .str("reason", &g.reason)
                            .int("units", n(g.units))
                            .int("members", n(g.members))
                            .bool("personal_data_here", g.personal_data_here)
                            .int("held_discarded", n(g.held_discarded))
                    })
                    .collect(),
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
            node: s.str("node"),
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
        seals: root
            .list("seals")
            .iter()
            .map(|s| Seal {
                doc: s.str("doc"),
                heads: s.strings("heads"),
            })
            .collect(),
        given_up: root
            .list("given_up")
            .iter()
            .map(|g| GivenUp {
                node: g.str("node"),
                reason: g.str("reason"),
                units: g.i64("units").max(0) as u64,
                members: g.i64("members").max(0) as u64,
                personal_data_here: g.bool("personal_data_here"),
                held_discarded: g.i64("held_discarded").max(0) as u64,
            })
            .collect(),
    })
}
