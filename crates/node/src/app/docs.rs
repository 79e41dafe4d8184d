//! Documents for the administrator (`hopluu docs`): listing, one
//! document's history and its peers' standing, and compaction.

use automerge::{Automerge, Change, ChangeHash};
use hopluu_model::{DocId, DocKind, ModelError, UnitId};
use hopluu_store::docs_admin::{Compaction, DocFilter, DocRow, PeerHeads};

use super::{App, Result};
use crate::NodeError;

/// Documents per page when the request asks for 0, and at most.
const DEFAULT_LIST: u32 = 100;
const MAX_LIST: u32 = 1000;

/// Changes of history when the request asks for 0, and at most.
const DEFAULT_HISTORY: u32 = 50;
const MAX_HISTORY: u32 = 1000;

/// Which documents to list, as a request names them.
#[derive(Debug, Clone, Default)]
pub struct DocsQuery<'a> {
    /// A document kind (`roster`, `unit`, …); empty: every kind.
    pub kind: &'a str,
    /// The owner unit; empty: any.
    pub owner: &'a str,
    /// Also the documents owned below `owner`.
    pub subtree: bool,
    /// The document id to page after; empty: from the start.
    pub after: &'a str,
    /// 0: the default page.
    pub limit: u32,
}

/// One document in full: its row, its history (newest first) and where
/// each peer stands.
#[derive(Debug, Clone)]
pub struct DocDetail {
    pub row: DocRow,
    /// The heads the history and the peers' standing were read against (a
    /// write may have come in since the row was read).
    pub heads: Vec<ChangeHash>,
    /// Newest first, at most the limit asked.
    pub history: Vec<Change>,
    /// Every change the document holds.
    pub changes: u64,
    pub peers: Vec<PeerStanding>,
    pub conflicts: u64,
    /// No longer in this node's scope ([`App::outside_scope`]).
    pub outside_scope: bool,
}

/// What a peer is known to have of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStanding {
    pub node_id: String,
    pub unit_id: String,
    pub heads: Vec<ChangeHash>,
    /// Changes here not covered by the peer's heads.
    pub behind: u64,
}

fn kinds() -> String {
    DocKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn filter(q: &DocsQuery<'_>) -> Result<DocFilter> {
    let kind = match q.kind.trim() {
        "" => None,
        k => Some(DocKind::parse(k).ok_or_else(|| {
            ModelError::invalid(
                "kind",
                format!("unknown document kind {k:?}: expected one of {}", kinds()),
            )
        })?),
    };
    let owner = match q.owner.trim() {
        "" => None,
        o => Some(UnitId::parse("owner", o)?),
    };
    if q.subtree && owner.is_none() {
        return Err(ModelError::invalid(
            "subtree",
            "needs an owner: the unit whose subtree to list",
        )
        .into());
    }
    let after = match q.after.trim() {
        "" => None,
        a => Some(DocId::parse("after", a)?),
    };
    Ok(DocFilter {
        kind,
        owner,
        subtree: q.subtree,
        after,
        limit: match q.limit {
            0 => DEFAULT_LIST,
            n => n.min(MAX_LIST),
        },
    })
}

/// History, change count and peers' standing, from a copy of the document
/// (CPU work: run on a blocking thread).
fn describe(
    doc: &Automerge,
    limit: usize,
    peers: &[PeerHeads],
) -> (Vec<Change>, u64, Vec<PeerStanding>) {
    // In the order applied here: causal.
    let changes = doc.get_changes(&[]);
    let history = changes
        .iter()
        .rev()
        .take(limit)
        .map(|c| (*c).clone())
        .collect();
    let peers = peers
        .iter()
        .map(|p| PeerStanding {
            node_id: p.peer.clone(),
            unit_id: p.unit.clone(),
            heads: p.heads.clone(),
            // Hashes unknown here (which the peer made or got elsewhere)
            // cover nothing.
            behind: doc.get_changes_meta(&p.heads).len() as u64,
        })
        .collect();
    (history, changes.len() as u64, peers)
}

impl App {
    /// A page of documents and how many match in all.
    pub async fn list_docs(&self, q: &DocsQuery<'_>) -> Result<(Vec<DocRow>, u64)> {
        let filter = filter(q)?;
        if filter.subtree
            && let Some(owner) = &filter.owner
            && !self.tree().contains(owner)
        {
            return Err(ModelError::not_found("owner: unit", owner).into());
        }
        let (rows, total) = self.store.list_docs(&filter).await?;
        Ok((rows, total))
    }

    /// Whether a stored document has left this node's scope: its unit was
    /// moved out of this node's subtree (a reorganisation). The node keeps
    /// it, but no longer writes or receives it; `docs list` says so.
    pub fn outside_scope(&self, row: &DocRow) -> bool {
        let meta = hopluu_model::DocMeta {
            id: row.id.clone(),
            owner: row.owner.clone(),
            addressed: row.addressed.clone(),
        };
        let tree = self.tree();
        // Only where the tree can tell: a document whose owner is not
        // placed in the tree yet (it arrived first) is not flagged.
        tree.is_rooted(&row.owner) && !tree.in_scope(&self.unit, &meta, self.private_depth)
    }

    /// Document `doc_id` with at most `history_limit` changes of history
    /// (0: the default).
    pub async fn doc_detail(&self, doc_id: &str, history_limit: u32) -> Result<DocDetail> {
        let id = DocId::parse("doc_id", doc_id.trim())?;
        let not_found = || NodeError::Refused(ModelError::not_found("doc_id: document", &id));
        let row = self.store.doc_row(&id).await?.ok_or_else(not_found)?;
        // A copy, so that the history is read off the cache's lock.
        let doc = self
            .store
            .read_doc(&id, Automerge::clone)
            .await?
            .ok_or_else(not_found)?;
        let peers = self.store.peer_heads_of(&id).await?;
        let conflicts = self.store.conflict_count(Some(&id)).await?;
        let limit = match history_limit {
            0 => DEFAULT_HISTORY,
            n => n.min(MAX_HISTORY),
        } as usize;
        let (heads, (history, changes, peers)) =
            tokio::task::spawn_blocking(move || (doc.get_heads(), describe(&doc, limit, &peers)))
                .await
                .map_err(|e| NodeError::Internal(format!("reading the history of {id}: {e}")))?;
        Ok(DocDetail {
            outside_scope: self.outside_scope(&row),
            row,
            heads,
            history,
            changes,
            peers,
            conflicts: conflicts.max(0) as u64,
        })
    }

    /// A compaction of every document whose chunks reach
    /// `min_chunk_bytes`, to be stepped by the caller.
    pub async fn compaction(&self, min_chunk_bytes: u64) -> Result<Compaction> {
        Ok(self.store.compaction(min_chunk_bytes).await?)
    }
}
