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

use std::collections::{BTreeMap, HashMap};

use automerge::ChangeHash;
use hopluu_model::hosting::{self, HostSeal, NodeInfo, NodeRecord, NodeStatus};
use hopluu_model::reorg::Seal;
use hopluu_model::unit::UnitStatus;
use hopluu_model::{DecisionId, DocId, ModelError, NodeId, UnitId};
use hopluu_store::hosting::NodeEntry;

use super::{App, Result};
use crate::NodeError;

/// What this node sealed for one new host: the host, the decisions, and
/// each sealed document's heads.
type OwedTo = (NodeEntry, Vec<DecisionId>, Vec<(DocId, Vec<ChangeHash>)>);

/// Documents this node sealed that one new host does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub to: NodeEntry,
    pub decisions: Vec<DecisionId>,
    /// Documents with sealed heads the new host is not known to hold.
    pub docs: usize,
}

impl App {
    fn node_doc(&self) -> DocId {
        DocId::Node(NodeId::parse("node.id", &self.node_id).expect("validated at load"))
    }

    /// This node's record as stored here (None before its first start
    /// wrote it).
    pub async fn node_record(&self) -> Result<Option<NodeRecord>> {
        let id = self.node_doc();
        Ok(self
            .store()
            .read_doc(&id, |d| hosting::read(&id, d).ok())
            .await?
            .flatten())
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
        let info = NodeInfo {
            id: self.node_id.clone(),
            unit: self.unit.clone(),
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

    /// Seals every decision held here that moved documents this node holds
    /// out of its subtree, once: its heads of each of them, in its node
    /// record. The moved units are read from the unit records themselves
    /// (a unit whose parent was inside this node's subtree and is now
    /// outside it, by the decision numbered in its last parent change), so
    /// a decision whose moved units have not reached this node yet is
    /// looked at again on the next call. Returns the decisions sealed.
    pub async fn seal_departed(&self) -> Result<Vec<DecisionId>> {
        let Some(record) = self.node_record().await? else {
            return Ok(Vec::new());
        };
        let tree = self.tree();
        if !tree.contains(&self.unit) {
            return Ok(Vec::new());
        }
        let unsealed: Vec<_> = self
            .store()
            .list_decisions(None)
            .await?
            .into_iter()
            .filter_map(|row| {
                let did = DecisionId::parse("decision", &row.id).ok()?;
                record.sealed(&did).is_none().then_some((did, row))
            })
            .collect();
        if unsealed.is_empty() {
            return Ok(Vec::new());
        }
        // Units outside this node's subtree whose previous parent was
        // inside it: the roots of what left, by the decision that moved
        // each (its number and effective date, from the parent change).
        let mut left: HashMap<(String, String), Vec<UnitId>> = HashMap::new();
        for u in tree.units() {
            if tree.is_within(u, &self.unit) {
                continue;
            }
            let Some(rec) = self.unit_record(u).await? else {
                continue;
            };
            if let [.., before, last] = rec.parents.as_slice()
                && before
                    .parent
                    .as_ref()
                    .is_some_and(|p| tree.is_within(p, &self.unit))
            {
                left.entry((last.decision_no.clone(), last.effective_on.to_string()))
                    .or_default()
                    .push(u.clone());
            }
        }
        let mut sealed = Vec::new();
        for (did, row) in unsealed {
            let Some(roots) = left.get(&(row.number.clone(), row.effective_on.clone())) else {
                continue;
            };
            let units: Vec<UnitId> = roots.iter().flat_map(|r| tree.subtree(r)).collect();
            let mut docs = self.store().docs_heads_owned_by(&units).await?;
            // The moved units' own records, owned by their new parents.
            for r in roots {
                let id = DocId::Unit(r.clone());
                if let Some(heads) = self.store().read_doc(&id, |d| d.get_heads()).await? {
                    docs.push((id.to_string(), heads));
                }
            }
            let seal = HostSeal {
                decision: did.clone(),
                at: hopluu_model::member::utc_timestamp(self.clock.now_millis()),
                docs: docs
                    .into_iter()
                    .map(|(doc, heads)| Seal {
                        doc,
                        heads: heads.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
            };
            let mut tx = self.store().begin().await?;
            let doc = tx.doc(&self.node_doc()).await?;
            hosting::seal(doc, &self.author(), &seal)?;
            tx.commit().await?;
            tracing::info!(
                decision = %did,
                number = %row.number,
                docs = seal.docs.len(),
                "sealed what the decision moved out of this node's subtree"
            );
            sealed.push(did);
        }
        Ok(sealed)
    }

    /// The handovers this node owes: for each new host (an active node
    /// that is not above this one, where the documents arrive by the
    /// upstream anyway), the documents it sealed whose sealed heads that
    /// host is not known to hold.
    pub async fn handovers_owed(&self) -> Result<Vec<Owed>> {
        let Some(record) = self.node_record().await? else {
            return Ok(Vec::new());
        };
        let tree = self.tree();
        let mut by_host: BTreeMap<String, OwedTo> = BTreeMap::new();
        let nodes = self.store().nodes().await?;
        let sealed: Vec<DocId> = record
            .seals
            .iter()
            .flat_map(|s| &s.docs)
            .filter_map(|s| DocId::parse("doc", &s.doc).ok())
            .collect();
        let owners = self.store().doc_owners(&sealed).await?;
        for seal in &record.seals {
            for s in &seal.docs {
                let Ok(id) = DocId::parse("doc", &s.doc) else {
                    continue;
                };
                // Where the document is written now: a unit record at the
                // unit's own host, anything else at its owner's.
                let unit = match &id {
                    DocId::Unit(u) => Some(u.clone()),
                    other => owners.get(other).cloned(),
                };
                let Some(unit) = unit else {
                    continue;
                };
                let Some(host) = hopluu_store::hosting::host_in(&nodes, &tree, &unit) else {
                    continue;
                };
                let above =
                    UnitId::parse("unit", &host.unit).is_ok_and(|u| tree.is_within(&self.unit, &u));
                if host.id == self.node_id || above {
                    continue;
                }
                let heads: Vec<ChangeHash> =
                    s.heads.iter().filter_map(|h| h.parse().ok()).collect();
                let e = by_host
                    .entry(host.id.clone())
                    .or_insert_with(|| (host.clone(), Vec::new(), Vec::new()));
                if !e.1.contains(&seal.decision) {
                    e.1.push(seal.decision.clone());
                }
                e.2.push((id, heads));
            }
        }
        let mut out = Vec::new();
        for (_, (to, decisions, docs)) in by_host {
            let ids: Vec<DocId> = docs.iter().map(|(d, _)| d.clone()).collect();
            let known = self.store().peer_docs(&to.id, &ids).await?;
            let mut pending = 0;
            for (id, sealed) in &docs {
                let Some(peer) = known.get(id) else {
                    pending += 1;
                    continue;
                };
                // Most often the peer holds the sealed heads themselves, or
                // this node's heads: no history to walk.
                if sealed.iter().all(|h| peer.heads.contains(h)) {
                    continue;
                }
                let past = self
                    .store()
                    .read_doc(id, |d| {
                        if d.get_heads().iter().all(|h| peer.heads.contains(h)) {
                            return false;
                        }
                        let after: std::collections::HashSet<ChangeHash> = d
                            .get_changes(&peer.heads)
                            .iter()
                            .map(|c| c.hash())
                            .collect();
                        sealed.iter().any(|h| after.contains(h))
                    })
                    .await?
                    .unwrap_or(true);
                if past {
                    pending += 1;
                }
            }
            if pending > 0 {
                out.push(Owed {
                    to,
                    decisions,
                    docs: pending,
                });
            }
        }
        Ok(out)
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
        let id = DocId::Unit(unit.clone());
        Ok(self
            .store()
            .read_doc(&id, |d| hopluu_model::unit::read(&id, d).ok())
            .await?
            .flatten())
    }
}
