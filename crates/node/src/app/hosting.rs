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
        // each (its number, and its issuing unit's subtree).
        let mut left: HashMap<(String, String), Vec<UnitId>> = HashMap::new();
        for u in tree.units() {
            if tree.is_within(u, &self.unit) {
                continue;
            }
            let id = DocId::Unit(u.clone());
            let Some(Ok(rec)) = self
                .store()
                .read_doc(&id, |d| hopluu_model::unit::read(&id, d))
                .await?
            else {
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
        let mut hosts: HashMap<UnitId, Option<NodeEntry>> = HashMap::new();
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
                let host = match hosts.get(&unit) {
                    Some(h) => h.clone(),
                    None => {
                        let h = self.store().host_of(&unit).await?;
                        hosts.insert(unit.clone(), h.clone());
                        h
                    }
                };
                let Some(host) = host else { continue };
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
                let past = self
                    .store()
                    .read_doc(id, |d| {
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
            let id = DocId::Unit(u.clone());
            let Some(Ok(rec)) = self
                .store()
                .read_doc(&id, |d| hopluu_model::unit::read(&id, d))
                .await?
            else {
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

/// One old host's handover of a decision, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub from_node: String,
    pub sealed_at: String,
    /// `complete`, `pending`, `elsewhere`, `sealed-by-decision` (an old
    /// host a later decision gave up) or `given-up` (this decision gives
    /// the node up).
    pub status: &'static str,
    pub docs: u64,
    pub docs_missing: u64,
    pub detail: String,
}

impl App {
    /// The handovers of `decision` as this node sees them: for each old
    /// host's seal, whether this node holds every sealed head of the
    /// documents it should hold (its subtree's; private rosters only where
    /// it holds personal data); an old host that has not sealed yet
    /// (pending on it, or sealed by a later decision that gave it up); and
    /// the nodes this decision itself gives up.
    pub async fn handovers(&self, decision: &DecisionId) -> Result<Vec<Handover>> {
        let tree = self.tree();
        let private = self.holds_private();
        let doc = DocId::Decision(decision.clone());
        let rec = self
            .store()
            .read_doc(&doc, |d| hopluu_model::reorg::read(&doc, d))
            .await?
            .transpose()?;
        let mut out = Vec::new();
        let seals = self.store().host_seals(decision.as_str()).await?;
        for seal in &seals {
            let mine: BTreeMap<String, Vec<ChangeHash>> = seal
                .docs
                .iter()
                .filter(|(doc, _)| {
                    DocId::parse("doc", doc).is_ok_and(|id| {
                        let unit = match &id {
                            DocId::Unit(u) => Some(u),
                            other => other.owner_from_id(),
                        };
                        (private || id.kind() != hopluu_model::DocKind::RosterPrivate)
                            && unit.is_some_and(|u| tree.is_within(u, &self.unit))
                    })
                })
                .map(|(d, h)| (d.clone(), h.clone()))
                .collect();
            let missing = self.store().missing_heads(&mine).await?;
            let (mut status, mut detail) = if mine.is_empty() {
                (
                    "elsewhere",
                    format!(
                        "none of what node {} sealed belongs at this node",
                        seal.node
                    ),
                )
            } else if missing.is_empty() {
                (
                    "complete",
                    format!("every sealed head of {} documents is here", mine.len()),
                )
            } else {
                let first: Vec<&str> = missing.keys().take(3).map(String::as_str).collect();
                (
                    "pending",
                    format!(
                        "{} of {} documents still lack changes node {} made before its seal \
                         (e.g. {}): they come by its handover session",
                        missing.len(),
                        mine.len(),
                        seal.node,
                        first.join(", ")
                    ),
                )
            };
            if status == "pending"
                && let Some((number, reason)) = self.given_up_by(&seal.node).await?
            {
                status = "sealed-by-decision";
                detail = format!(
                    "{detail}; node {} was given up by decision {number}: {reason}",
                    seal.node
                );
            }
            out.push(Handover {
                from_node: seal.node.clone(),
                sealed_at: seal.sealed_at.clone(),
                status,
                docs: mine.len() as u64,
                docs_missing: missing.len() as u64,
                detail,
            });
        }
        let Some(rec) = rec else {
            return Ok(out);
        };
        // Old hosts that have not sealed: the nodes that hosted the moved
        // units' former parents.
        for node in self.unsealed_old_hosts(&rec).await? {
            if seals.iter().any(|s| s.node == node) {
                continue;
            }
            let (status, detail) = match self.given_up_by(&node).await? {
                Some((number, reason)) => (
                    "sealed-by-decision",
                    format!(
                        "node {node} never sealed; it was given up by decision {number}: {reason}"
                    ),
                ),
                None => (
                    "pending",
                    format!(
                        "node {node} has not sealed yet: it has not learnt of the decision (its \
                         link is down, or it is stopped); if it will not come back, give it up \
                         by a decision with a seal step"
                    ),
                ),
            };
            out.push(Handover {
                from_node: node,
                sealed_at: String::new(),
                status,
                docs: 0,
                docs_missing: 0,
                detail,
            });
        }
        for g in &rec.given_up {
            out.push(Handover {
                from_node: g.node.clone(),
                sealed_at: rec.applied_at.clone(),
                status: "given-up",
                docs: 0,
                docs_missing: 0,
                detail: format!(
                    "{}: {} units were in its subtree, with {} active members whose personal data \
                     it held{}; {} changes it made were held at {} and discarded",
                    g.reason,
                    g.units,
                    g.members,
                    if g.personal_data_here {
                        " (what reached the applying node is kept there)"
                    } else {
                        ", lost unless another node below private_depth holds it"
                    },
                    g.held_discarded,
                    rec.applied_by
                ),
            });
        }
        Ok(out)
    }

    /// What a decision moved, each root with its former parent: the units
    /// of its move steps, the children its split steps handed out, and the
    /// merge targets' children that came from a source (read from the
    /// unit records, whose parent history says where each came from).
    async fn moved_roots(
        &self,
        rec: &hopluu_model::reorg::Recorded,
    ) -> Result<Vec<(UnitId, UnitId)>> {
        let tree = self.tree();
        let mut roots: Vec<UnitId> = Vec::new();
        let parse = |v: &[String]| -> Vec<UnitId> {
            v.iter()
                .filter_map(|u| UnitId::parse("units", u).ok())
                .collect()
        };
        let mut candidates: Vec<(UnitId, Vec<UnitId>)> = Vec::new();
        for s in &rec.plan.steps {
            match s.kind.as_str() {
                "move" => roots.extend(parse(&s.units)),
                "split" => roots.extend(s.parts.iter().flat_map(|p| parse(p))),
                "merge" => {
                    if let Ok(into) = UnitId::parse("to", &s.to) {
                        candidates.push((into, parse(&s.units)));
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        let former = |u: &hopluu_model::unit::Unit| match u.parents.as_slice() {
            [.., before, _] => before.parent.clone(),
            _ => None,
        };
        for (into, sources) in candidates {
            for c in tree.children(&into) {
                let id = DocId::Unit(c.clone());
                if let Some(Ok(u)) = self
                    .store()
                    .read_doc(&id, |d| hopluu_model::unit::read(&id, d))
                    .await?
                    && let Some(p) = former(&u)
                    && sources.contains(&p)
                {
                    out.push((c.clone(), p));
                }
            }
        }
        for r in roots {
            let id = DocId::Unit(r.clone());
            if let Some(Ok(u)) = self
                .store()
                .read_doc(&id, |d| hopluu_model::unit::read(&id, d))
                .await?
                && let Some(p) = former(&u)
            {
                out.push((r, p));
            }
        }
        Ok(out)
    }

    /// The nodes that hosted what a decision moved (the moved units' former
    /// parents' hosts, retired ones included) and lost authority over it:
    /// each owes a seal.
    async fn unsealed_old_hosts(&self, rec: &hopluu_model::reorg::Recorded) -> Result<Vec<String>> {
        let tree = self.tree();
        let nodes = self.store().nodes().await?;
        let mut out: Vec<String> = Vec::new();
        for (r, prev) in self.moved_roots(rec).await? {
            let prev = &prev;

            // The node hosting the former parent or its nearest ancestor.
            let chain = std::iter::once(prev.clone()).chain(tree.ancestors(prev));
            let host = chain
                .into_iter()
                .find_map(|a| nodes.iter().find(|n| n.unit == a.as_str()));
            let Some(host) = host else { continue };
            // A host above the new place keeps its authority: nothing to seal.
            let keeps = UnitId::parse("unit", &host.unit).is_ok_and(|h| tree.is_within(&r, &h));
            if !keeps && !out.contains(&host.id) {
                out.push(host.id.clone());
            }
        }
        Ok(out)
    }
}

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
            for row in self.store().list_decisions(None).await? {
                let Ok(did) = DecisionId::parse("decision", &row.id) else {
                    continue;
                };
                let doc = DocId::Decision(did);
                let Some(Ok(rec)) = self
                    .store()
                    .read_doc(&doc, |d| hopluu_model::reorg::read(&doc, d))
                    .await?
                else {
                    continue;
                };
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
                .store()
                .quarantine_list(&hopluu_store::quarantine::QuarantineFilter {
                    state: Some(hopluu_store::quarantine::QuarantineState::Held),
                    limit: u32::MAX,
                    ..Default::default()
                })
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

    /// Whether `node` has been given up by a decision held here: the
    /// decision's number and the reason.
    pub async fn given_up_by(&self, node: &str) -> Result<Option<(String, String)>> {
        for row in self.store().list_decisions(None).await? {
            if row.steps == 0 {
                continue;
            }
            let Ok(did) = DecisionId::parse("decision", &row.id) else {
                continue;
            };
            let doc = DocId::Decision(did);
            let Some(Ok(rec)) = self
                .store()
                .read_doc(&doc, |d| hopluu_model::reorg::read(&doc, d))
                .await?
            else {
                continue;
            };
            if let Some(g) = rec.given_up.iter().find(|g| g.node == node) {
                return Ok(Some((rec.plan.number.clone(), g.reason.clone())));
            }
        }
        Ok(None)
    }
}

impl App {
    /// Discards the changes held here that nodes given up by a decision
    /// made: the decision recorded them as lost, and they would only stay
    /// held, counted as undelivered. Returns how many were discarded.
    pub async fn discard_given_up(&self) -> Result<u64> {
        let held = self
            .store()
            .quarantine_list(&hopluu_store::quarantine::QuarantineFilter {
                state: Some(hopluu_store::quarantine::QuarantineState::Held),
                limit: u32::MAX,
                ..Default::default()
            })
            .await?;
        if held.is_empty() {
            return Ok(0);
        }
        let mut by_node: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut gone = Vec::new();
        for e in held {
            let verdict = match by_node.get(&e.origin_node) {
                Some(v) => v.clone(),
                None => {
                    let v = self
                        .given_up_by(&e.origin_node)
                        .await?
                        .map(|(number, _)| number);
                    by_node.insert(e.origin_node.clone(), v.clone());
                    v
                }
            };
            if let Some(number) = verdict {
                gone.push((e, format!("decision {number}")));
            }
        }
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
