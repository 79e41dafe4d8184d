//! Nodes and hosting as listed (the `nodes` projection of the `node/{id}`
//! documents), and the old hosts' seals of handovers (`host_seals`): who
//! hosts a unit, which seals a decision has, and which sealed heads this
//! node holds (a handover is complete where every one is held).

use std::collections::BTreeMap;

use automerge::ChangeHash;
use hopluu_model::{DocId, UnitId, UnitTree};
use sqlx::Row;

use crate::{Result, Store};

/// A node as the `nodes` projection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub id: String,
    pub unit: String,
    pub upstream: String,
    pub address: String,
    /// `active` or `retired`.
    pub status: String,
    pub retired_at: String,
}

/// One old host's seal of a decision, as stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealEntry {
    pub node: String,
    pub sealed_at: String,
    /// Each sealed document's heads.
    pub docs: BTreeMap<String, Vec<ChangeHash>>,
}

/// Of `nodes`, the active one hosting `unit` or its nearest ancestor in
/// `tree` ([`Store::host_of`], for callers that look many units up).
pub fn host_in<'a>(
    nodes: &'a [NodeEntry],
    tree: &UnitTree,
    unit: &UnitId,
) -> Option<&'a NodeEntry> {
    std::iter::once(unit.clone())
        .chain(tree.ancestors(unit))
        .find_map(|u| {
            nodes
                .iter()
                .find(|n| n.status == "active" && n.unit == u.as_str())
        })
}

fn node_entry(r: &sqlx::any::AnyRow) -> NodeEntry {
    NodeEntry {
        id: r.get(0),
        unit: r.get(1),
        upstream: r.get(2),
        address: r.get(3),
        status: r.get(4),
        retired_at: r.get(5),
    }
}

impl Store {
    /// Every node this node knows, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeEntry>> {
        let rows = sqlx::query(
            "SELECT id, unit, upstream, address, status, retired_at FROM nodes ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(node_entry).collect())
    }

    /// The active node hosting `unit` or, failing one, its nearest
    /// ancestor that a node hosts: where the unit's records are written.
    pub async fn host_of(&self, unit: &UnitId) -> Result<Option<NodeEntry>> {
        Ok(host_in(&self.nodes().await?, &self.tree(), unit).cloned())
    }

    /// The old hosts' seals of `decision`, by node.
    pub async fn host_seals(&self, decision: &str) -> Result<Vec<SealEntry>> {
        let rows = sqlx::query(
            "SELECT node, sealed_at, doc_id, head FROM host_seals WHERE decision = $1 \
             ORDER BY node, doc_id",
        )
        .bind(decision)
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<SealEntry> = Vec::new();
        for r in &rows {
            let node: String = r.get(0);
            if out.last().is_none_or(|s| s.node != node) {
                out.push(SealEntry {
                    node,
                    sealed_at: r.get(1),
                    docs: BTreeMap::new(),
                });
            }
            let entry = out.last_mut().expect("pushed above");
            let heads = entry.docs.entry(r.get(2)).or_default();
            if let Ok(h) = r.get::<String, _>(3).parse::<ChangeHash>() {
                heads.push(h);
            }
        }
        Ok(out)
    }

    /// Of `heads` (by document), those this node does not hold: a document
    /// not stored here lacks all of them.
    pub async fn missing_heads(
        &self,
        heads: &BTreeMap<String, Vec<ChangeHash>>,
    ) -> Result<BTreeMap<String, Vec<ChangeHash>>> {
        let mut out = BTreeMap::new();
        for (doc, hs) in heads {
            let Ok(id) = DocId::parse("doc_id", doc) else {
                out.insert(doc.clone(), hs.clone());
                continue;
            };
            let missing = self
                .read_doc(&id, |d| {
                    hs.iter()
                        .filter(|h| !hopluu_model::am::knows(d, h))
                        .copied()
                        .collect::<Vec<_>>()
                })
                .await?
                .unwrap_or_else(|| hs.clone());
            if !missing.is_empty() {
                out.insert(doc.clone(), missing);
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The node `id`, if its record is held here.
    pub async fn node(&self, id: &str) -> Result<Option<NodeEntry>> {
        let row = sqlx::query(
            "SELECT id, unit, upstream, address, status, retired_at FROM nodes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(node_entry))
    }
}

impl Store {
    /// Whether `unit` lay inside `ancestor`'s subtree at any time, by the
    /// dated parent links (`unit_links`) of every unit on the way up.
    pub async fn was_within(&self, unit: &UnitId, ancestor: &UnitId) -> Result<bool> {
        if unit == ancestor {
            return Ok(true);
        }
        let found: Option<i64> = sqlx::query_scalar(
            "WITH RECURSIVE up(u) AS ( \
                 SELECT CAST($1 AS TEXT) \
                 UNION SELECT l.parent FROM unit_links l JOIN up ON l.unit = up.u \
                 WHERE l.parent <> '' \
             ) SELECT CAST(1 AS BIGINT) FROM up WHERE u = $2 LIMIT 1",
        )
        .bind(unit.as_str())
        .bind(ancestor.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    /// The owner unit of each of `docs` stored here.
    pub async fn doc_owners(&self, docs: &[DocId]) -> Result<BTreeMap<DocId, UnitId>> {
        let mut out = BTreeMap::new();
        for chunk in docs.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(DocId::to_string).collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT doc_id, owner FROM docs WHERE doc_id IN ({})",
                crate::db::placeholders(keys.len())
            )));
            for k in keys {
                q = q.bind(k);
            }
            for r in q.fetch_all(self.pool()).await? {
                if let (Ok(d), Ok(o)) = (
                    DocId::parse("doc_id", &r.get::<String, _>(0)),
                    UnitId::parse("owner", &r.get::<String, _>(1)),
                ) {
                    out.insert(d, o);
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The old hosts handing documents over to the node hosting `me`: the
    /// nodes that sealed, for a decision held here, documents whose units
    /// now lie in `me`'s subtree (a node below `me` is a child, never
    /// one).
    pub async fn old_hosts_for(&self, me: &UnitId) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT s.node, s.doc_id FROM host_seals s \
             JOIN decisions d ON d.id = s.decision ORDER BY s.node",
        )
        .fetch_all(self.pool())
        .await?;
        let tree = self.tree();
        let nodes = self.nodes().await?;
        let below = |node: &str| {
            nodes.iter().any(|n| {
                n.id == node
                    && UnitId::parse("unit", &n.unit)
                        .is_ok_and(|u| u != *me && tree.contains(&u) && tree.is_within(&u, me))
            })
        };
        let mut out: Vec<String> = Vec::new();
        for r in &rows {
            let node: String = r.get(0);
            if out.last() == Some(&node) || below(&node) {
                continue;
            }
            let Ok(id) = DocId::parse("doc_id", &r.get::<String, _>(1)) else {
                continue;
            };
            let unit = match &id {
                DocId::Unit(u) => Some(u),
                other => other.owner_from_id(),
            };
            if unit.is_some_and(|u| tree.is_within(u, me)) {
                out.push(node);
            }
        }
        Ok(out)
    }
}
