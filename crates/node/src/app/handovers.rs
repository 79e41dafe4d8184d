//! Where the handovers of a decision stand, as this node sees them
//! (`hopluu reorg show`): each old host's seal checked against what this
//! node holds, the old hosts that have not sealed yet, and the nodes a
//! decision gives up. See [`super::hosting`] for the seals themselves.

use std::collections::BTreeMap;

use automerge::ChangeHash;
use hopluu_model::{DecisionId, DocId, UnitId};

use super::{App, Result};

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
        let given_up = self.given_up_nodes().await?;
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
                && let Some((number, reason)) = given_up.get(&seal.node)
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
            let (status, detail) = match given_up.get(&node) {
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
    pub(super) async fn moved_roots(
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
                if let Some(u) = self.unit_record(c).await?
                    && let Some(p) = former(&u)
                    && sources.contains(&p)
                {
                    out.push((c.clone(), p));
                }
            }
        }
        for r in roots {
            if let Some(u) = self.unit_record(&r).await?
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
