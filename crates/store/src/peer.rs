//! What replication reads from the store: the documents to send to a peer
//! (the feed, one entry per document at its latest sequence), every
//! document with its heads in id order (for the convergence check,
//! [`Store::held_docs`]), and what is known about each peer (checkpoints,
//! and the heads it has of each document). Writes of peer state go
//! through [`crate::WriteTx`], in the same transaction as the documents
//! they describe.

use std::collections::HashMap;

use automerge::ChangeHash;
use hopluu_model::{DocId, DocMeta, ModelError, UnitId};
use sqlx::{AssertSqlSafe, Row};

use crate::tx::heads_from_bytes;
use crate::{Result, Store, StoreError};

/// A document due to be sent: its latest feed sequence and what scope is
/// decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedDoc {
    pub seq: i64,
    pub meta: DocMeta,
    /// The document's heads as stored.
    pub heads: Vec<ChangeHash>,
}

/// A stretch of the feed: the documents updated in `(after, upto]`, each
/// once, at its latest sequence.
#[derive(Debug, Clone, Default)]
pub struct FeedScan {
    pub docs: Vec<FeedDoc>,
    /// The sequence the scan covers up to: a peer that has applied these
    /// documents has applied the feed up to here.
    pub upto: i64,
}

/// What this node knows of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    pub node_id: String,
    pub unit: String,
    /// The peer's feed, applied here up to this sequence.
    pub applied_upto: i64,
    /// This node's feed, acknowledged by the peer up to this sequence.
    pub acked_upto: i64,
    /// Unix milliseconds of the last write of this row.
    pub last_seen: i64,
}

/// What a peer lacks ([`Store::pending_for`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// Updates of this node's feed (one per document write).
    pub changes: u64,
    pub docs: u64,
    /// When the oldest of them was made here, ms since the epoch; 0: none.
    pub oldest_millis: i64,
}

/// Updates past a peer's checkpoint that [`Store::pending_for`] looks at.
pub const PENDING_SCAN: i64 = 200_000;

/// One stored document as the scope rule and the convergence check see it
/// ([`Store::held_docs`]): what scope is decided on, and its heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDoc {
    pub meta: DocMeta,
    /// The document's heads as stored.
    pub heads: Vec<ChangeHash>,
}

/// Heads a peer is known to have of one document, and the encoded automerge
/// sync state while they were being found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerDoc {
    pub heads: Vec<ChangeHash>,
    pub sync: Option<Vec<u8>>,
}

fn corrupt(e: ModelError) -> StoreError {
    StoreError::Corrupt {
        doc: "docs".into(),
        reason: e.to_string(),
    }
}

/// A `docs` row's id, owner and addressed units (space-separated).
/// A feed row: `seq, doc_id, owner, addressed, heads`.
fn feed_doc(r: &sqlx::any::AnyRow) -> Result<FeedDoc> {
    Ok(FeedDoc {
        seq: r.get(0),
        meta: doc_meta(
            &r.get::<String, _>(1),
            &r.get::<String, _>(2),
            &r.get::<String, _>(3),
        )?,
        heads: heads_from_bytes(&r.get::<Vec<u8>, _>(4)),
    })
}

fn doc_meta(id: &str, owner: &str, addressed: &str) -> Result<DocMeta> {
    Ok(DocMeta {
        id: DocId::parse("doc_id", id).map_err(corrupt)?,
        owner: UnitId::parse("owner", owner).map_err(corrupt)?,
        addressed: addressed
            .split_whitespace()
            .map(|u| UnitId::parse("addressed", u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?,
    })
}

impl Store {
    /// The documents updated after `after`, at most `limit`, oldest first.
    /// A document updated several times appears once, at its latest
    /// sequence, so a peer that was away for a month receives each
    /// document once.
    pub async fn scan_feed(&self, after: i64, limit: u32) -> Result<FeedScan> {
        // Read the position first: every sequence up to it is committed
        // (sequences are allocated under the writer lock, in commit order).
        let position = self.feed_position().await?;
        if position <= after {
            return Ok(FeedScan {
                docs: Vec::new(),
                upto: after,
            });
        }
        let rows = sqlx::query(
            "SELECT seq, doc_id, owner, addressed, heads FROM docs \
             WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(position)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let full = rows.len() == limit as usize;
        let mut docs = Vec::with_capacity(rows.len());
        for r in &rows {
            docs.push(feed_doc(r)?);
        }
        let upto = match (full, docs.last()) {
            (true, Some(last)) => last.seq,
            _ => position,
        };
        Ok(FeedScan { docs, upto })
    }

    /// The decisions and node records updated in the feed after `after`
    /// (each once, at its latest sequence), in feed order.
    pub async fn feed_control_after(&self, after: i64) -> Result<Vec<FeedDoc>> {
        let rows = sqlx::query(
            "SELECT seq, doc_id, owner, addressed, heads FROM docs \
             WHERE seq > $1 AND (doc_id LIKE 'decision/%' OR doc_id LIKE 'node/%') ORDER BY seq",
        )
        .bind(after)
        .fetch_all(self.pool())
        .await?;
        let mut docs = Vec::with_capacity(rows.len());
        for r in &rows {
            docs.push(feed_doc(r)?);
        }
        Ok(docs)
    }

    /// The stored documents whose id sorts after `after` (all when `None`)
    /// and, with `upto`, not after `upto`, by id, at most `limit` (clamped
    /// to 1..=10,000). Ids compare byte-wise on both backends, so that a
    /// node and its peer page through their documents in the same order:
    /// the convergence check walks both lists side by side
    /// (`ReplicationService.ScopeHeads`).
    pub async fn held_docs(
        &self,
        after: Option<&DocId>,
        upto: Option<&DocId>,
        limit: u32,
    ) -> Result<Vec<HeldDoc>> {
        let id = self.doc_id_bytewise();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT doc_id, owner, addressed, heads FROM docs \
             WHERE {id} > $1 AND ($2 = '' OR {id} <= $2) ORDER BY {id} LIMIT $3"
        )))
        .bind(after.map(DocId::to_string).unwrap_or_default())
        .bind(upto.map(DocId::to_string).unwrap_or_default())
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldDoc {
                    meta: doc_meta(
                        &r.get::<String, _>(0),
                        &r.get::<String, _>(1),
                        &r.get::<String, _>(2),
                    )?,
                    heads: heads_from_bytes(&r.get::<Vec<u8>, _>(3)),
                })
            })
            .collect()
    }

    /// What `peer` (hosting `unit`) lacks of this node's feed after its
    /// checkpoint `after`: documents in its scope changed since, whose
    /// heads differ from those it is known to have, with the updates to
    /// them and the time of the oldest. Looks at most [`PENDING_SCAN`]
    /// updates past the checkpoint (a peer further behind shows that
    /// many).
    pub async fn pending_for(
        &self,
        peer: &str,
        unit: &UnitId,
        after: i64,
        private_depth: usize,
    ) -> Result<Pending> {
        let rows = sqlx::query(
            "SELECT d.doc_id, d.owner, d.addressed, d.heads, p.heads, MIN(f.at), COUNT(*) \
             FROM feed f JOIN docs d ON d.id = f.doc \
             LEFT JOIN peer_docs p ON p.doc = d.id AND p.peer = $1 \
             WHERE f.seq > $2 AND f.seq <= $3 \
             GROUP BY d.doc_id, d.owner, d.addressed, d.heads, p.heads",
        )
        .bind(peer)
        .bind(after)
        .bind(after.saturating_add(PENDING_SCAN))
        .fetch_all(self.pool())
        .await?;
        let tree = self.tree();
        let mut out = Pending::default();
        for r in &rows {
            let meta = doc_meta(
                &r.get::<String, _>(0),
                &r.get::<String, _>(1),
                &r.get::<String, _>(2),
            )?;
            if !tree.in_scope(unit, &meta, private_depth) {
                continue;
            }
            let heads: Vec<u8> = r.get(3);
            if r.get::<Option<Vec<u8>>, _>(4)
                .is_some_and(|known| known == heads)
            {
                continue;
            }
            let at: i64 = r.get(5);
            out.docs += 1;
            out.changes += r.get::<i64, _>(6).max(0) as u64;
            out.oldest_millis = if out.oldest_millis == 0 {
                at
            } else {
                out.oldest_millis.min(at)
            };
        }
        Ok(out)
    }

    /// What is known of `peer`, if it was ever seen.
    pub async fn peer(&self, peer: &str) -> Result<Option<PeerRow>> {
        let row = sqlx::query(
            "SELECT node_id, unit, applied_upto, acked_upto, last_seen FROM peers WHERE node_id = $1",
        )
        .bind(peer)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| PeerRow {
            node_id: r.get(0),
            unit: r.get(1),
            applied_upto: r.get(2),
            acked_upto: r.get(3),
            last_seen: r.get(4),
        }))
    }

    /// Every peer ever seen, by node id.
    pub async fn peers(&self) -> Result<Vec<PeerRow>> {
        let rows = sqlx::query(
            "SELECT node_id, unit, applied_upto, acked_upto, last_seen FROM peers ORDER BY node_id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| PeerRow {
                node_id: r.get(0),
                unit: r.get(1),
                applied_upto: r.get(2),
                acked_upto: r.get(3),
                last_seen: r.get(4),
            })
            .collect())
    }

    /// The heads `peer` is known to have of each of `docs` (absent: unknown).
    pub async fn peer_docs(&self, peer: &str, docs: &[DocId]) -> Result<HashMap<DocId, PeerDoc>> {
        let mut out = HashMap::new();
        for chunk in docs.chunks(200) {
            let mut sql = String::from(
                "SELECT d.doc_id, p.heads, p.sync FROM peer_docs p JOIN docs d ON d.id = p.doc \
                 WHERE p.peer = $1 AND d.doc_id IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i + 2));
            }
            sql.push(')');
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(peer);
            for d in chunk {
                q = q.bind(d.to_string());
            }
            for r in q.fetch_all(self.pool()).await? {
                let id = DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(corrupt)?;
                out.insert(
                    id,
                    PeerDoc {
                        heads: heads_from_bytes(&r.get::<Vec<u8>, _>(1)),
                        sync: r.get(2),
                    },
                );
            }
        }
        Ok(out)
    }
}
