//! The old host's side of a handover (DESIGN §6), as data: once a decision
//! has moved units out of a node's subtree and reached that node, it
//! **seals** its heads of every moved document it holds
//! ([`seal_departed`]), and owes each new host what that host does not
//! hold yet ([`handovers_owed`]), which a handover session
//! ([`crate::Role::HandoverTo`]) delivers. The node runs both on its
//! handover tick; the deterministic simulation runs the same functions as
//! one of its steps.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::ChangeHash;
use hopluu_model::hosting::{self, HostSeal, NodeRecord};
use hopluu_model::reorg::Seal;
use hopluu_model::unit::Unit;
use hopluu_model::{Author, DecisionId, DocId, NodeId, UnitId};
use hopluu_store::Store;
use hopluu_store::hosting::{NodeEntry, host_in};

use crate::SyncError;

/// Documents a node sealed that one new host does not hold yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub to: NodeEntry,
    pub decisions: Vec<DecisionId>,
    /// Documents with sealed heads the new host is not known to hold.
    pub docs: usize,
}

/// What this node sealed for one new host: the host, the decisions, and
/// each sealed document's heads (of every seal naming it: a union moved
/// out twice is sealed twice).
type OwedTo = (NodeEntry, Vec<DecisionId>, BTreeMap<DocId, Vec<ChangeHash>>);

/// Node `node`'s record as stored here (None before it was written, or
/// when it is damaged).
pub async fn node_record(store: &Store, node: &NodeId) -> Result<Option<NodeRecord>, SyncError> {
    let id = DocId::Node(node.clone());
    Ok(store
        .read_doc(&id, |d| hosting::read(&id, d).ok())
        .await?
        .flatten())
}

/// The record of unit `unit` held here (None: not held, or damaged).
pub async fn unit_record(store: &Store, unit: &UnitId) -> Result<Option<Unit>, SyncError> {
    let id = DocId::Unit(unit.clone());
    Ok(store
        .read_doc(&id, |d| hopluu_model::unit::read(&id, d).ok())
        .await?
        .flatten())
}

/// Seals every decision held here that moved documents node `node`
/// (hosting `unit`) holds out of its subtree, once: its heads of each of
/// them, in its node record, written as `author`. The moved units are read
/// from the unit records themselves (a unit now outside the subtree, each
/// of whose parent changes from inside it to outside names a decision by
/// number and effective date), so a decision whose moved units have not reached this
/// node yet is looked at again on the next call. Returns the decisions
/// sealed; nothing before the node's record exists.
pub async fn seal_departed(
    store: &Store,
    node: &NodeId,
    unit: &UnitId,
    author: &Author,
) -> Result<Vec<DecisionId>, SyncError> {
    let Some(record) = node_record(store, node).await? else {
        return Ok(Vec::new());
    };
    let tree = store.tree();
    if !tree.contains(unit) {
        return Ok(Vec::new());
    }
    let unsealed: Vec<_> = store
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
    // Units outside the subtree that moved from a parent inside it to one
    // outside: the roots of what left, by the decision that moved each
    // (its number and effective date, from the parent change).
    let mut left: HashMap<(String, String), Vec<UnitId>> = HashMap::new();
    for u in tree.units() {
        if tree.is_within(u, unit) {
            continue;
        }
        let Some(rec) = unit_record(store, u).await? else {
            continue;
        };
        // Every move out, not only the last: a unit moved out and moved
        // again before this node heard of either still left by the first.
        for pair in rec.parents.windows(2) {
            let [before, after] = pair else { continue };
            let inside = |p: &Option<UnitId>| p.as_ref().is_some_and(|p| tree.is_within(p, unit));
            if inside(&before.parent) && !inside(&after.parent) {
                left.entry((after.decision_no.clone(), after.effective_on.to_string()))
                    .or_default()
                    .push(u.clone());
            }
        }
    }
    // In one order wherever the tree was built from (its map's order is
    // not): the seal's change is the same for the same state.
    for roots in left.values_mut() {
        roots.sort();
    }
    let mut sealed = Vec::new();
    for (did, row) in unsealed {
        let Some(roots) = left.get(&(row.number.clone(), row.effective_on.clone())) else {
            continue;
        };
        let units: Vec<UnitId> = roots.iter().flat_map(|r| tree.subtree(r)).collect();
        let mut docs = store.docs_heads_owned_by(&units).await?;
        // The moved units' own records, owned by their new parents.
        for r in roots {
            let id = DocId::Unit(r.clone());
            if let Some(heads) = store.doc_heads(&id).await? {
                docs.push((id.to_string(), heads));
            }
        }
        let seal = HostSeal {
            decision: did.clone(),
            at: hopluu_model::member::utc_timestamp(author.time_millis),
            docs: docs
                .into_iter()
                .map(|(doc, heads)| Seal::of(doc, &heads))
                .collect(),
        };
        let mut tx = store.begin().await?;
        let doc = tx.doc(&DocId::Node(node.clone())).await?;
        hosting::seal(doc, author, &seal).map_err(hopluu_store::StoreError::Model)?;
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

/// The handovers node `node` (hosting `unit`) owes: for each new host (an
/// active node that is not above this one, where the documents arrive by
/// the upstream anyway), the documents it sealed whose sealed heads that
/// host is not known to hold.
pub async fn handovers_owed(
    store: &Store,
    node: &NodeId,
    unit: &UnitId,
) -> Result<Vec<Owed>, SyncError> {
    let Some(record) = node_record(store, node).await? else {
        return Ok(Vec::new());
    };
    let tree = store.tree();
    let mut by_host: BTreeMap<String, OwedTo> = BTreeMap::new();
    let nodes = store.nodes().await?;
    let sealed: Vec<DocId> = record
        .seals
        .iter()
        .flat_map(|s| &s.docs)
        .filter_map(|s| DocId::parse("doc", &s.doc).ok())
        .collect();
    let owners = store.doc_owners(&sealed).await?;
    for seal in &record.seals {
        for s in &seal.docs {
            let Ok(id) = DocId::parse("doc", &s.doc) else {
                continue;
            };
            // Where the document is written now: a unit record at the
            // unit's own host, anything else at its owner's.
            let owner = match &id {
                DocId::Unit(u) => Some(u.clone()),
                other => owners.get(other).cloned(),
            };
            let Some(owner) = owner else {
                continue;
            };
            let Some(host) = host_in(&nodes, &tree, &owner) else {
                continue;
            };
            let above = UnitId::parse("unit", &host.unit).is_ok_and(|u| tree.is_within(unit, &u));
            if host.id == node.as_str() || above {
                continue;
            }
            let heads: Vec<ChangeHash> = s.heads.iter().filter_map(|h| h.parse().ok()).collect();
            let e = by_host
                .entry(host.id.clone())
                .or_insert_with(|| (host.clone(), Vec::new(), BTreeMap::new()));
            if !e.1.contains(&seal.decision) {
                e.1.push(seal.decision.clone());
            }
            let sealed = e.2.entry(id).or_default();
            for h in heads {
                if !sealed.contains(&h) {
                    sealed.push(h);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (_, (to, decisions, docs)) in by_host {
        let ids: Vec<DocId> = docs.keys().cloned().collect();
        let known = store.peer_docs(&to.id, &ids).await?;
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
            let past = store
                .read_doc(id, |d| {
                    if d.get_heads().iter().all(|h| peer.heads.contains(h)) {
                        return false;
                    }
                    let after: HashSet<ChangeHash> = d
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

/// What [`archive_departed`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Archiving {
    /// Held changes set aside in documents that left this node's subtree.
    pub archived: u64,
    /// Archived changes reported as held again: their unit came back.
    pub restored: u64,
}

/// Sets aside what an old host cannot and need not judge. A document
/// whose unit node `node` (hosting `unit`) saw leave its subtree (its
/// seals name the unit, or one above it) and that is outside the subtree
/// now is kept here only as an archive; changes to it held here (by
/// another node, that came by a path this node cannot vouch for, or that
/// wait on such a change) wait for no one here: the new host receives
/// them by their makers' paths, and this node's own writes by its
/// handover. Left as they are, they would count as undelivered on the
/// dashboard for good. They are reported as archived
/// ([`QuarantineState::Archived`](hopluu_store::quarantine::QuarantineState)),
/// and as held again should the unit come back. The gate and the sync
/// protocol see no difference: they still hold the changes and judge
/// them as before.
pub async fn archive_departed(
    store: &Store,
    node: &NodeId,
    unit: &UnitId,
) -> Result<Archiving, SyncError> {
    use hopluu_store::quarantine::QuarantineState;
    let mut out = Archiving::default();
    let held = store.quarantine_docs(QuarantineState::Held, 10_000).await?;
    let archived = store
        .quarantine_docs(QuarantineState::Archived, 10_000)
        .await?;
    if held.is_empty() && archived.is_empty() {
        return Ok(out);
    }
    let Some(record) = node_record(store, node).await? else {
        return Ok(out);
    };
    if record.seals.is_empty() && archived.is_empty() {
        return Ok(out);
    }
    // The units this node saw leave: each seal names the moved units' own
    // records (by the last decision that moved each). A document of one
    // of them, or of a unit below one, may arrive after the seal.
    let mut left: HashMap<UnitId, &DecisionId> = HashMap::new();
    for seal in &record.seals {
        for s in &seal.docs {
            if let Ok(DocId::Unit(u)) = DocId::parse("doc", &s.doc) {
                left.insert(u, &seal.decision);
            }
        }
    }
    let tree = store.tree();
    let docs: Vec<DocId> = held.iter().chain(&archived).cloned().collect();
    let owners = store.doc_owners(&docs).await?;
    // The decision that took the document's unit out of this node's
    // subtree, if it is outside now: the unit, or one above it, is one
    // this node saw leave. Its new parent may be a unit this node does
    // not know (a commune of another province): it is outside all the
    // same.
    let departed = |id: &DocId| -> Option<&DecisionId> {
        let owner = match id {
            DocId::Unit(u) => u,
            other => owners.get(other)?,
        };
        if tree.is_within(owner, unit) {
            return None;
        }
        std::iter::once(owner)
            .chain(&tree.ancestors(owner))
            .find_map(|u| left.get(u).copied())
    };
    let mut tx = store.begin().await?;
    for id in &held {
        if let Some(decision) = departed(id) {
            out.archived += tx
                .quarantine_archive(id, &format!("decision {decision}"))
                .await?;
        }
    }
    for id in &archived {
        if departed(id).is_none() {
            out.restored += tx.quarantine_unarchive(id).await?;
        }
    }
    tx.commit().await?;
    if out.archived > 0 || out.restored > 0 {
        tracing::info!(
            archived = out.archived,
            restored = out.restored,
            "held changes of units that left this node's subtree reported as archived \
             (or as held again, the unit back)"
        );
    }
    Ok(out)
}
