//! Handovers in the simulation ([`World::Handover`]): the national node
//! moves a grassroots union that has no node of its own to a commune
//! (of the other province, or of its own) by a decision, sealing what it
//! holds of the union as `apply_decision` does; every node runs the
//! handover tick of a real node ([`hopluu_sync::handover`]): it writes its
//! node record once it knows its unit, seals what left its subtree once
//! the decision and the moved record reach it, and keeps a handover
//! session ([`Role::HandoverTo`]) to each new host that lacks some of it,
//! ending it once the host holds every sealed head. Those sessions are
//! edges like the others: frames on them are dropped, duplicated and
//! reordered, they are cut, and their nodes restart.
//!
//! What the check then asks of a handover: every acknowledged write
//! (offline edits of an old host made before it learnt of the decision
//! included) at every node whose scope holds it now, private rosters
//! included at the new host and never above `private_depth`; nothing held
//! in quarantine anywhere; every old host that still holds the union's
//! record has sealed each decision that moved it out. An old host keeps
//! what it held of the union (its archive), so it may hold documents now
//! outside its scope.

use hopluu_model::{DecisionId, NodeId};
use hopluu_sync::handover;

use super::*;

/// Unions without a node of their own: what a decision may move.
const MOVABLE: [&str; 5] = ["g112", "g121", "g211", "g221", "g222"];

/// Where they may move.
const COMMUNES: [&str; 4] = ["c11", "c12", "c21", "c22"];

/// One union moved by a decision at the national node.
pub(super) struct Move {
    pub unit: &'static str,
    pub from: UnitId,
    pub to: &'static str,
    pub decision: DecisionId,
    pub step: u64,
}

pub(super) fn node_id(n: usize) -> NodeId {
    NodeId::parse("node", NODES[n].id).expect("a node id")
}

impl Sim {
    /// The moves the national node may decide now: a union it knows, to a
    /// commune it knows other than the union's parent.
    pub(super) fn movable(&self) -> Vec<(&'static str, &'static str)> {
        if self.cfg.world != World::Handover {
            return Vec::new();
        }
        let tree = self.nodes[0].store.tree();
        let mut out = Vec::new();
        for u in MOVABLE {
            let Some(parent) = tree.get(&uid(u)).and_then(|n| n.parent.clone()) else {
                continue;
            };
            for c in COMMUNES {
                if parent.as_str() != c && tree.contains(&uid(c)) {
                    out.push((u, c));
                }
            }
        }
        out
    }

    /// The national node moves `unit` under `to` by a decision of its own,
    /// in one transaction: the unit record's new parent, and the decision
    /// with its seal (the national node's heads of every document the
    /// union owns).
    pub(super) async fn move_union(&mut self, unit: &'static str, to: &'static str) -> Result<()> {
        self.counter += 1;
        let k = self.counter;
        let store = self.nodes[0].store.clone();
        let author = self.author(0);
        let did = DecisionId::parse("decision", &format!("d{k}"))?;
        let from = store
            .tree()
            .get(&uid(unit))
            .and_then(|n| n.parent.clone())
            .context("a movable union has a parent")?;
        // The nodes the union leaves: those whose subtree holds its old
        // parent and not its new one (the communes and provinces do not
        // move, so the national tree says it for every node).
        let leaving: Vec<usize> = {
            let tree = store.tree();
            (1..NODES.len())
                .filter(|n| {
                    let own = uid(NODES[*n].unit);
                    tree.is_within(&from, &own) && !tree.is_within(&uid(to), &own)
                })
                .collect()
        };
        let written =
            fixtures::decide_move(&store, &author, &did, &format!("{k}/QĐ-TLĐ"), unit, to).await;
        ensure!(written.is_ok(), "moving {unit} to {to}: {written:?}");
        self.was_under.entry(unit).or_default().extend(leaving);
        self.moves.push(Move {
            unit,
            from: from.clone(),
            to,
            decision: did.clone(),
            step: self.step,
        });
        self.stats.moves += 1;
        self.record(
            0,
            &format!("decision {did} moves {unit} from {from} to {to}"),
            written,
        )
    }

    /// One node's handover tick, as a node runs it: its record written
    /// once it knows its unit, what left its subtree sealed, and handover
    /// sessions opened to (marked owed) or ended with each new host.
    /// Whether anything changed.
    pub(super) async fn handover_tick(&mut self, n: usize) -> Result<bool> {
        if self.cfg.world != World::Handover || !self.knows_itself(n) {
            return Ok(false);
        }
        let store = self.nodes[n].store.clone();
        let node = node_id(n);
        let own = uid(NODES[n].unit);
        let mut changed = false;
        // Written as the node writes it: when anything in it changed.
        let record = handover::node_record(&store, &node).await?;
        let path: Vec<UnitId> = {
            let tree = store.tree();
            if tree.is_rooted(&own) {
                tree.ancestors(&own).into_iter().rev().collect()
            } else {
                Vec::new()
            }
        };
        if record.is_none_or(|r| r.info.path != path) {
            let path: Vec<&str> = path.iter().map(UnitId::as_str).collect();
            let upstream = NODES[n].parent.map_or("", |p| NODES[p].id);
            let w = fixtures::publish_node(
                &store,
                &self.author(n),
                NODES[n].id,
                NODES[n].unit,
                &path,
                upstream,
            )
            .await;
            self.record(n, "publish its node record", w)?;
            changed = true;
        }
        let sealed = handover::seal_departed(&store, &node, &own, &self.author(n)).await?;
        if !sealed.is_empty() {
            let id = DocId::Node(node.clone());
            let heads = store.doc_heads(&id).await?.unwrap_or_default();
            let names: Vec<String> = sealed.iter().map(ToString::to_string).collect();
            self.stats.seals += sealed.len() as u64;
            self.record(
                n,
                &format!("seal {}", names.join(" ")),
                Ok(Written {
                    docs: vec![(id, heads)],
                }),
            )?;
            changed = true;
        }
        let set = handover::archive_departed(&store, &node, &own).await?;
        if set.archived > 0 || set.restored > 0 {
            self.log(format!(
                "{}: {} held changes archived, {} held again",
                NODES[n].id, set.archived, set.restored
            ));
            changed = true;
        }
        let owed = handover::handovers_owed(&store, &node, &own).await?;
        let mut to: Vec<usize> = Vec::new();
        for o in &owed {
            let host = NODES
                .iter()
                .position(|s| s.id == o.to.id)
                .with_context(|| format!("{} owes an unknown node {}", NODES[n].id, o.to.id))?;
            to.push(host);
        }
        for host in to.iter().copied() {
            let e = match (0..self.edges.len()).find(|e| {
                self.edges[*e].handover
                    && self.edges[*e].child == n
                    && self.edges[*e].parent == host
            }) {
                Some(e) => e,
                None => {
                    self.edges.push(Edge {
                        child: n,
                        parent: host,
                        fallback: false,
                        handover: true,
                        link: None,
                    });
                    self.edges.len() - 1
                }
            };
            if self.owed.insert(e) {
                let name = self.edge_name(e);
                self.log(format!("{name}: handover owed"));
                changed = true;
            }
        }
        // A host that holds everything: the session ends, as the node
        // cancels it (ending a session flushes what was acknowledged).
        let done: Vec<usize> = self
            .owed
            .iter()
            .copied()
            .filter(|e| self.edges[*e].child == n && !to.contains(&self.edges[*e].parent))
            .collect();
        for e in done {
            self.owed.remove(&e);
            let name = self.edge_name(e);
            self.log(format!("{name}: handover complete"));
            self.cut(e, true).await?;
            changed = true;
        }
        Ok(changed)
    }

    /// Whether a refusal of a handover session's hello is one the new
    /// host may give: it does not (yet) hold a seal by the old host, for a
    /// decision it holds, of documents now in its subtree.
    pub(super) async fn handover_refusal_legitimate(&self, e: usize) -> Result<bool> {
        let (child, parent) = (self.edges[e].child, self.edges[e].parent);
        let hosts = self.nodes[parent]
            .store
            .old_hosts_for(&uid(NODES[parent].unit))
            .await?;
        Ok(!hosts.iter().any(|h| h == NODES[child].id))
    }

    /// Of node `n`'s documents outside its scope, whether `id` is one it
    /// may keep: a document of a union that left its subtree.
    pub(super) fn departed(&self, n: usize, id: &DocId, meta: &DocMeta) -> bool {
        let unit = match id {
            // A moved union's record is kept by every node that held it (a
            // sibling's record is in a node's scope): it left theirs too.
            DocId::Unit(u) => return self.moves.iter().any(|m| m.unit == u.as_str()),
            _ => meta.owner.clone(),
        };
        self.was_under
            .get(unit.as_str())
            .is_some_and(|nodes| nodes.contains(&n))
    }

    /// What a handover must end with beyond the general checks: every old
    /// host that holds a moved union's record, where the union is outside
    /// its subtree now, sealed each decision that moved it out.
    pub(super) async fn check_handovers(&self, problems: &mut Vec<String>) -> Result<()> {
        let national = self.nodes[0].store.tree().clone();
        for m in &self.moves {
            let now = national
                .get(&uid(m.unit))
                .and_then(|u| u.parent.clone())
                .context("a moved union")?;
            for (n, spec) in NODES.iter().enumerate().skip(1) {
                let own = uid(spec.unit);
                let out_now = !national.is_within(&now, &own);
                let left =
                    national.is_within(&m.from, &own) && !national.is_within(&uid(m.to), &own);
                if !(left && out_now) {
                    continue;
                }
                let store = &self.nodes[n].store;
                if store.doc_heads(&DocId::Unit(uid(m.unit))).await?.is_none() {
                    continue;
                }
                let record = handover::node_record(store, &node_id(n)).await?;
                if record
                    .as_ref()
                    .and_then(|r| r.sealed(&m.decision))
                    .is_none()
                {
                    problems.push(format!(
                        "{}: holds {}, which decision {} (step {}) moved out of its subtree, and \
                         never sealed it",
                        spec.id, m.unit, m.decision, m.step
                    ));
                }
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let held = node
                .store
                .quarantine_list(&hopluu_store::quarantine::QuarantineFilter {
                    state: Some(hopluu_store::quarantine::QuarantineState::Held),
                    ..Default::default()
                })
                .await?;
            // Set aside only where the document's unit is placed outside
            // the node's subtree: an archived change of a unit that came
            // back would be a change nobody here judges.
            let archived = node
                .store
                .quarantine_list(&hopluu_store::quarantine::QuarantineFilter {
                    state: Some(hopluu_store::quarantine::QuarantineState::Archived),
                    limit: u32::MAX,
                    ..Default::default()
                })
                .await?;
            let tree = node.store.tree();
            let docs: Vec<DocId> = archived
                .iter()
                .filter_map(|e| DocId::parse("doc", &e.doc).ok())
                .collect();
            let owners = node.store.doc_owners(&docs).await?;
            for d in &docs {
                let owner = match d {
                    DocId::Unit(u) => Some(u),
                    other => owners.get(other),
                };
                if owner.is_some_and(|o| tree.is_within(o, &uid(NODES[n].unit))) {
                    problems.push(format!(
                        "{}: changes to {d} archived though its unit is in the node's subtree",
                        NODES[n].id
                    ));
                    break;
                }
            }
            if !held.is_empty() {
                let first: Vec<String> = held
                    .iter()
                    .take(3)
                    .map(|e| {
                        format!(
                            "{} by {} from {} ({}: {})",
                            e.doc, e.origin_node, e.peer_node, e.code, e.reason
                        )
                    })
                    .collect();
                problems.push(format!(
                    "{}: {} changes held in quarantine after convergence: {}",
                    NODES[n].id,
                    held.len(),
                    first.join("; ")
                ));
            }
        }
        Ok(())
    }
}
