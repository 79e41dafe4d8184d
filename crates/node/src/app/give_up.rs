//! Giving up an old host that will not come back (a decision's `seal`
//! step, DESIGN §6): the step checked against the node records, what is
//! lost counted and recorded, and the changes of the node held back here
//! discarded (at the applying node with the decision, at every other node
//! when the decision reaches it).

use std::collections::BTreeMap;

use hopluu_model::unit::UnitStatus;
use hopluu_model::{DecisionId, DocId, ModelError, UnitId};

use super::{App, Result};
use crate::NodeError;

/// A node a decision's seal step gives up, as the applying node sees it:
/// what is lost, and the changes by it held here (discarded with the
/// decision).
pub(crate) struct GiveUp {
    pub given_up: hopluu_model::reorg::GivenUp,
    pub held: Vec<hopluu_store::quarantine::QuarantineEntry>,
}

impl App {
    /// Checks the seal steps of `plan` against the node records held here
    /// and counts what each gives up. A node may be given up when it is
    /// known here, is not this node, and hosts a unit in the issuing
    /// unit's subtree that a decision has closed (merged or abolished):
    /// its units are gone from it, and it did not hand them over.
    pub(crate) async fn give_up(&self, plan: &hopluu_model::reorg::Plan) -> Result<Vec<GiveUp>> {
        let tree = self.tree();
        let mut out = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let hopluu_model::reorg::Step::Seal { node, reason } = step else {
                continue;
            };
            let field = format!("steps[{i}].node");
            let refuse = |why: String| NodeError::Refused(ModelError::invalid(&field, why));
            if node.as_str() == self.node_id {
                return Err(refuse("a node cannot give itself up".into()));
            }
            let Some(entry) = self.store().node(node.as_str()).await? else {
                return Err(refuse(format!(
                    "node {node} is not known here (no node record has reached this node)"
                )));
            };
            let unit = UnitId::parse("unit", &entry.unit)?;
            if !tree.is_within(&unit, &plan.issuing_unit) {
                return Err(refuse(format!(
                    "node {node} hosts unit {unit}, outside the subtree of the issuing unit {}",
                    plan.issuing_unit
                )));
            }
            if tree
                .get(&unit)
                .is_none_or(|n| n.status == UnitStatus::Active)
            {
                return Err(refuse(format!(
                    "node {node} still hosts the active unit {unit}: a node is given up only \
                     once a decision has merged or closed its unit and its units moved away"
                )));
            }
            // Its units: what is still below its unit, and what decisions
            // moved out from below it.
            let mut units = tree.subtree(&unit);
            units.retain(|u| *u != unit);
            for rec in self.decisions_held().await? {
                for (root, prev) in self.moved_roots(&rec).await? {
                    if tree.is_within(&prev, &unit) {
                        units.extend(tree.subtree(&root));
                    }
                }
            }
            units.sort();
            units.dedup();
            let members: u64 = self
                .store()
                .active_member_counts(&units)
                .await?
                .values()
                .sum();
            let held: Vec<_> = self
                .held_entries()
                .await?
                .into_iter()
                .filter(|e| e.origin_node == node.as_str())
                .collect();
            out.push(GiveUp {
                given_up: hopluu_model::reorg::GivenUp {
                    node: node.to_string(),
                    reason: reason.clone(),
                    units: units.len() as u64,
                    members,
                    personal_data_here: self.holds_private(),
                    held_discarded: held.len() as u64,
                },
                held,
            });
        }
        Ok(out)
    }

    /// The nodes given up by the decisions held here, each with the
    /// decision's number and the reason (the first decision listed that
    /// gives it up). Read once per call: the decisions are read whole.
    pub async fn given_up_nodes(&self) -> Result<BTreeMap<String, (String, String)>> {
        let mut out = BTreeMap::new();
        for rec in self.decisions_held().await? {
            for g in &rec.given_up {
                out.entry(g.node.clone())
                    .or_insert_with(|| (rec.plan.number.clone(), g.reason.clone()));
            }
        }
        Ok(out)
    }
}

impl App {
    /// Discards the changes held here that nodes given up by a decision
    /// made: the decision recorded them as lost, and they would only stay
    /// held, counted as undelivered. Returns how many were discarded.
    pub async fn discard_given_up(&self) -> Result<u64> {
        let held = self.held_entries().await?;
        if held.is_empty() {
            return Ok(0);
        }
        let given_up = self.given_up_nodes().await?;
        let gone: Vec<_> = held
            .into_iter()
            .filter_map(|e| {
                let (number, _) = given_up.get(&e.origin_node)?;
                let by = format!("decision {number}");
                Some((e, by))
            })
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now_millis();
        let mut tx = self.store().begin().await?;
        let mut n = 0;
        for (e, by) in &gone {
            n += hopluu_sync::gate::discard(&mut tx, e, by, now)
                .await
                .map_err(NodeError::Gate)? as u64;
        }
        tx.commit().await?;
        tracing::info!(
            changes = n,
            "discarded the held changes of nodes a decision gave up"
        );
        Ok(n)
    }
}

impl App {
    /// Every decision held here, as recorded (one that does not read is
    /// skipped: the projection lists it, its document is damaged).
    pub(crate) async fn decisions_held(&self) -> Result<Vec<hopluu_model::reorg::Recorded>> {
        let mut out = Vec::new();
        for row in self.store().list_decisions(None).await? {
            let Ok(did) = DecisionId::parse("decision", &row.id) else {
                continue;
            };
            let doc = DocId::Decision(did);
            if let Some(Ok(rec)) = self
                .store()
                .read_doc(&doc, |d| hopluu_model::reorg::read(&doc, d))
                .await?
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Every change held in this node's quarantine.
    async fn held_entries(&self) -> Result<Vec<hopluu_store::quarantine::QuarantineEntry>> {
        Ok(self
            .store()
            .quarantine_list(&hopluu_store::quarantine::QuarantineFilter {
                state: Some(hopluu_store::quarantine::QuarantineState::Held),
                limit: u32::MAX,
                ..Default::default()
            })
            .await?)
    }
}
