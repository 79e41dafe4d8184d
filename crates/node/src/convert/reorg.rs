//! Reorganisation decisions: plans in, impacts and records out.

use std::collections::BTreeMap;

use hopluu_model::reorg::{PlanInput, Recorded, StepInput};
use hopluu_proto::v1 as pb;
use hopluu_store::decisions::DecisionListRow;

use crate::app::reorg::{Applied, Impact, NodeHosting};

pub fn plan_from_pb(p: pb::ReorgPlan) -> PlanInput {
    PlanInput {
        id: p.id,
        number: p.number,
        title: p.title,
        decided_on: p.decided_on,
        effective_on: p.effective_on,
        issuing_unit: p.issuing_unit,
        steps: p
            .steps
            .into_iter()
            .map(|s| StepInput {
                kind: s.kind,
                unit: s.unit,
                name: s.name,
                unit_kind: s.unit_kind,
                to: s.to,
                units: s.units,
                members: s.members,
                successors: s.successors,
                parts: s.parts.into_iter().map(|l| l.unit_ids).collect(),
                reason: s.reason,
                on: s.on,
                node: s.node,
            })
            .collect(),
    }
}

pub fn plan_to_pb(p: &PlanInput) -> pb::ReorgPlan {
    pb::ReorgPlan {
        id: p.id.clone(),
        number: p.number.clone(),
        title: p.title.clone(),
        decided_on: p.decided_on.clone(),
        effective_on: p.effective_on.clone(),
        issuing_unit: p.issuing_unit.clone(),
        steps: p
            .steps
            .iter()
            .map(|s| pb::ReorgStep {
                kind: s.kind.clone(),
                unit: s.unit.clone(),
                name: s.name.clone(),
                unit_kind: s.unit_kind.clone(),
                to: s.to.clone(),
                units: s.units.clone(),
                members: s.members.clone(),
                successors: s.successors.clone(),
                parts: s
                    .parts
                    .iter()
                    .map(|l| pb::UnitList {
                        unit_ids: l.clone(),
                    })
                    .collect(),
                reason: s.reason.clone(),
                on: s.on.clone(),
                node: s.node.clone(),
            })
            .collect(),
    }
}

pub fn summary(r: &DecisionListRow) -> pb::DecisionSummary {
    pb::DecisionSummary {
        id: r.id.clone(),
        number: r.number.clone(),
        title: r.title.clone(),
        issuing_unit: r.issuing_unit.clone(),
        decided_on: r.decided_on.clone(),
        effective_on: r.effective_on.clone(),
        applied_at: r.applied_at.clone(),
        applied_by: r.applied_by.clone(),
        steps: r.steps,
        units_created: r.units_created,
        units_moved: r.units_moved,
        units_closed: r.units_closed,
        members_transferred: r.members_transferred,
        members_ceased: r.members_ceased,
    }
}

/// A decision as recorded, with its list entry built from the record.
pub fn record(rec: &Recorded) -> pb::DecisionRecord {
    let o = &rec.outcome;
    let row = DecisionListRow {
        id: rec.id.to_string(),
        number: rec.plan.number.clone(),
        title: rec.plan.title.clone(),
        issuing_unit: rec.plan.issuing_unit.clone(),
        decided_on: rec.plan.decided_on.clone(),
        effective_on: rec.plan.effective_on.clone(),
        applied_at: rec.applied_at.clone(),
        applied_by: rec.applied_by.clone(),
        steps: rec.plan.steps.len() as u64,
        units_created: o.units_created,
        units_moved: o.units_moved,
        units_closed: o.units_closed,
        members_transferred: o.members_transferred,
        members_ceased: o.members_ceased,
    };
    pb::DecisionRecord {
        summary: Some(summary(&row)),
        plan: Some(plan_to_pb(&rec.plan)),
        seals: rec
            .seals
            .iter()
            .map(|s| pb::DocSeal {
                doc_id: s.doc.clone(),
                heads: s.heads.clone(),
            })
            .collect(),
        handovers: Vec::new(),
    }
}

/// A handover as this node sees it.
pub fn handover(h: &crate::app::handovers::Handover) -> pb::Handover {
    pb::Handover {
        from_node: h.from_node.clone(),
        sealed_at: h.sealed_at.clone(),
        status: h.status.to_owned(),
        docs: h.docs,
        docs_missing: h.docs_missing,
        detail: h.detail.clone(),
    }
}

fn counts<K: ToString>(
    m: &BTreeMap<K, u64>,
    f: impl Fn(String, u64) -> pb::StatusCount,
) -> Vec<pb::StatusCount> {
    m.iter().map(|(k, v)| f(k.to_string(), *v)).collect()
}

fn hosting(h: &NodeHosting) -> pb::NodeHosting {
    let ids = |v: &[hopluu_model::UnitId]| v.iter().map(ToString::to_string).collect();
    pb::NodeHosting {
        node_id: h.node_id.clone(),
        unit_id: h.unit.to_string(),
        units_before: h.units_before,
        units_after: h.units_after,
        units_gained: ids(&h.units_gained),
        units_lost: ids(&h.units_lost),
        members_gained: h.members_gained,
        members_lost: h.members_lost,
    }
}

pub fn impact(i: &Impact) -> pb::ReorgImpact {
    let ids = |v: &[hopluu_model::UnitId]| v.iter().map(ToString::to_string).collect();
    pb::ReorgImpact {
        created: ids(&i.created),
        renamed: ids(&i.renamed),
        moved: i
            .moved
            .iter()
            .map(|m| pb::UnitMove {
                unit_id: m.unit.to_string(),
                from_id: m.from.as_ref().map(ToString::to_string).unwrap_or_default(),
                to_id: m.to.to_string(),
            })
            .collect(),
        closed: i
            .closed
            .iter()
            .map(|c| pb::UnitClosing {
                unit_id: c.unit.to_string(),
                status: c.status.as_str().to_owned(),
                successor_ids: ids(&c.successors),
            })
            .collect(),
        members_moved: counts(&i.members_moved, |status, count| pb::StatusCount {
            status,
            count,
        }),
        members_transferred: i.members_transferred,
        members_ceased: i.members_ceased,
        docs_owner_changed: i.docs_owner_changed,
        docs_rehomed: i
            .docs_rehomed
            .iter()
            .map(|(kind, count)| pb::KindCount {
                kind: kind.clone(),
                count: *count,
            })
            .collect(),
        nodes: i.nodes.iter().map(hosting).collect(),
    }
}

pub fn applied(a: &Applied) -> pb::ApplyDecisionResponse {
    pb::ApplyDecisionResponse {
        applied: a.applied,
        decision: Some(record(&a.decision)),
        impact: Some(impact(&a.impact)),
    }
}
