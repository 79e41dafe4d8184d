//! Hosting as data, at this node (DESIGN §6): its own `node/{id}` record,
//! its seals of what decisions moved out of its subtree, the handovers it
//! owes (what the new hosts do not hold yet), retirement, and the refusal
//! an office meets when it writes for a unit that left this node.
//!
//! A decision moves units; the node that hosted them learns it by
//! replication (the moved unit records and the decision reach it). From
//! then on its tree places the units elsewhere, so every write for them is
//! refused here ([`App::left_here`] names the decision and the new host),
//! and [`App::seal_departed`] records its heads of every moved document it
//! holds: what it made before it knew, offline edits included, stays
//! authorised at every hop. What the new host lacks of that goes to it
//! directly ([`App::handovers_owed`]; the replication's handover session),
//! so personal data never passes through the nodes above `private_depth`.
//! The sealing and what is owed are the replication's
//! ([`hopluu_sync::handover`]), so the deterministic simulation runs them
//! as they run here.

use hopluu_model::hosting::{self, NodeInfo, NodeRecord, NodeStatus};
use hopluu_model::unit::UnitStatus;
use hopluu_model::{DecisionId, DocId, ModelError, NodeId, UnitId};
use hopluu_store::hosting::NodeEntry;

use super::{App, Result};
use crate::NodeError;

pub use hopluu_sync::handover::Owed;

impl App {
    fn node_doc(&self) -> DocId {
        DocId::Node(NodeId::parse("node.id", &self.node_id).expect("validated at load"))
    }

    /// This node's record as stored here (None before its first start
    /// wrote it).
    pub async fn node_record(&self) -> Result<Option<NodeRecord>> {
        let node = NodeId::parse("node.id", &self.node_id).expect("validated at load");
        hopluu_sync::handover::node_record(self.store(), &node)
            .await
            .map_err(super::admin::gate_error)
    }

    /// The hosted unit's ancestors, root first, as this node's record
    /// gives them; None while the unit is not placed under the root.
    fn own_path(&self) -> Option<Vec<UnitId>> {
        let tree = self.tree();
        tree.is_rooted(&self.unit)
            .then(|| tree.ancestors(&self.unit).into_iter().rev().collect())
    }

    /// Whether this node's own record is written as it will stand: its
    /// unit placed under the root, with the path that places it. Until
    /// then the node has a write of its own still to make.
    pub async fn placed(&self) -> Result<bool> {
        let Some(path) = self.own_path() else {
            return Ok(false);
        };
        Ok(self
            .node_record()
            .await?
            .is_some_and(|r| r.info.unit == self.unit && r.info.path == path))
    }

    /// Whether this node is retired: the unit it hosts is closed (merged
    /// into another, or abolished), so it serves as an archive.
    pub fn retired(&self) -> bool {
        self.tree()
            .get(&self.unit)
            .is_some_and(|n| n.status != UnitStatus::Active)
    }

    /// Writes what this node says of itself: called at start with its
    /// upstream and address, and again by the replication's handover tick
    /// (which notices retirement). Writes nothing when nothing changed, or
    /// while the hosted unit's record has not arrived (its place is not
    /// known).
    pub async fn publish_node(&self, upstream: &str, address: &str) -> Result<()> {
        if !self.tree().contains(&self.unit) {
            return Ok(());
        }
        let old = self.node_record().await?;
        let (status, retired_at) = if self.retired() {
            let at = old
                .as_ref()
                .filter(|r| r.info.status == NodeStatus::Retired)
                .map(|r| r.info.retired_at.clone())
                .unwrap_or_else(|| hopluu_model::member::utc_timestamp(self.clock.now_millis()));
            (NodeStatus::Retired, at)
        } else {
            (NodeStatus::Active, String::new())
        };
        let path = self.own_path().unwrap_or_default();
        let info = NodeInfo {
            id: self.node_id.clone(),
            unit: self.unit.clone(),
            path,
            upstream: upstream.to_owned(),
            address: address.to_owned(),
            status,
            retired_at,
        };
        if old.as_ref().is_some_and(|r| r.info == info) {
            return Ok(());
        }
        if status == NodeStatus::Retired && old.as_ref().is_none_or(|r| r.info.status != status) {
            tracing::warn!(
                node = %self.node_id,
                unit = %self.unit,
                "this node's unit is closed: the node is retired and serves as an archive \
                 (reads and reports of past dates; no writes)"
            );
        }
        let mut tx = self.store().begin().await?;
        let doc = tx.doc(&self.node_doc()).await?;
        hosting::publish(doc, &self.author(), &info)?;
        tx.commit().await?;
        Ok(())
    }

    /// Reports the held changes of documents this node keeps only as an
    /// old host's archive as archived, and as held again if their unit
    /// came back ([`hopluu_sync::handover::archive_departed`]).
    pub async fn archive_departed(&self) -> Result<hopluu_sync::handover::Archiving> {
        let node = NodeId::parse("node.id", &self.node_id).expect("validated at load");
        hopluu_sync::handover::archive_departed(self.store(), &node, &self.unit)
            .await
            .map_err(super::admin::gate_error)
    }

    /// Seals every decision held here that moved documents this node holds
    /// out of its subtree, once ([`hopluu_sync::handover::seal_departed`]).
    /// Returns the decisions sealed.
    pub async fn seal_departed(&self) -> Result<Vec<DecisionId>> {
        let node = NodeId::parse("node.id", &self.node_id).expect("validated at load");
        hopluu_sync::handover::seal_departed(self.store(), &node, &self.unit, &self.author())
            .await
            .map_err(super::admin::gate_error)
    }

    /// The handovers this node owes
    /// ([`hopluu_sync::handover::handovers_owed`]).
    pub async fn handovers_owed(&self) -> Result<Vec<Owed>> {
        let node = NodeId::parse("node.id", &self.node_id).expect("validated at load");
        hopluu_sync::handover::handovers_owed(self.store(), &node, &self.unit)
            .await
            .map_err(super::admin::gate_error)
    }

    /// Why a write for `unit` is refused here, when it is because the unit
    /// left this node (a decision moved it away, or closed this node's own
    /// unit): the decision, where the unit is now, and the node hosting
    /// it. None when the unit never was this node's.
    pub(crate) async fn left_here(&self, field: &str, unit: &UnitId) -> Result<Option<NodeError>> {
        let tree = self.tree();
        let retired = self.retired();
        if !retired && tree.is_within(unit, &self.unit) {
            return Ok(None);
        }
        let there = match self.store().host_of(unit).await? {
            Some(h) if h.id != self.node_id => {
                format!(
                    "; its records are written at node {} (unit {})",
                    h.id, h.unit
                )
            }
            _ => String::new(),
        };
        let refuse = |reason: String| {
            Ok(Some(NodeError::Refused(ModelError::precondition(
                field, reason,
            ))))
        };
        if retired {
            let how = tree
                .get(&self.unit)
                .map(|n| n.status.as_str())
                .unwrap_or("closed");
            return refuse(format!(
                "node {} is retired: the unit it hosted, {}, is {how}; it keeps its records for \
                 reading and for reports of past dates, and accepts no writes{there}",
                self.node_id, self.unit
            ));
        }
        // The unit, or its ancestor, that a decision moved from inside this
        // node's subtree to outside it.
        let chain = std::iter::once(unit.clone()).chain(tree.ancestors(unit));
        for u in chain {
            let Some(rec) = self.unit_record(&u).await? else {
                continue;
            };
            let [.., before, last] = rec.parents.as_slice() else {
                continue;
            };
            let now_outside = rec
                .parent
                .as_ref()
                .is_some_and(|p| !tree.is_within(p, &self.unit));
            let was_inside = match &before.parent {
                Some(p) => {
                    tree.is_within(p, &self.unit) || self.store().was_within(p, &self.unit).await?
                }
                None => false,
            };
            if !(now_outside && was_inside) {
                continue;
            }
            let parent = rec
                .parent
                .as_ref()
                .map(|p| match tree.get(p) {
                    Some(n) => format!("{p} ({})", n.name),
                    None => p.to_string(),
                })
                .unwrap_or_default();
            let decision = if last.decision_no.is_empty() {
                "a decision".to_owned()
            } else {
                format!("decision {}", last.decision_no)
            };
            return refuse(format!(
                "unit {unit} is no longer in node {}'s subtree: {decision} (effective {}) moved \
                 unit {u} under {parent}{there}",
                self.node_id, last.effective_on
            ));
        }
        Ok(None)
    }
}

impl App {
    /// Every node this node knows, from their records.
    pub async fn nodes(&self) -> Result<Vec<NodeEntry>> {
        Ok(self.store().nodes().await?)
    }
}

impl App {
    /// The record of unit `unit` held here (None: not held, or damaged).
    pub(crate) async fn unit_record(
        &self,
        unit: &UnitId,
    ) -> Result<Option<hopluu_model::unit::Unit>> {
        hopluu_sync::handover::unit_record(self.store(), unit)
            .await
            .map_err(super::admin::gate_error)
    }
}
