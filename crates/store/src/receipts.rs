//! Delivery receipts: which heads of a document reached which node above
//! this one, and when by that node's clock (migration 0007).
//!
//! A node keeps a receipt for every document its parent acknowledges, and
//! those its parent carries down from further up; `hopluu trace` answers
//! from them. A parent sends each child the receipts of the child's
//! subtree after the last one the child has stored (its cursor, named in
//! the child's hello), so receipts reach the office that made the change
//! even across reconnects.

use automerge::ChangeHash;
use hopluu_model::DocId;
use sqlx::Row;

use crate::tx::{heads_bytes, heads_from_bytes};
use crate::{Result, Store, StoreError, WriteTx};

/// A receipt to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    pub doc: String,
    pub node_id: String,
    pub unit: String,
    pub heads: Vec<ChangeHash>,
    pub at: i64,
}

/// A stored receipt, with the owner of its document when the document is
/// held here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub id: i64,
    pub doc: String,
    pub node_id: String,
    pub unit: String,
    pub heads: Vec<ChangeHash>,
    pub at: i64,
    pub owner: Option<String>,
}

/// Receipts older than this are dropped (90 days): they answer "when did
/// this reach the national node", which matters for weeks, not years.
pub const KEEP_MILLIS: i64 = 90 * 86_400_000;

fn receipt(r: &sqlx::any::AnyRow) -> Receipt {
    Receipt {
        id: r.get(0),
        doc: r.get(1),
        node_id: r.get(2),
        unit: r.get(3),
        heads: heads_from_bytes(&r.get::<Vec<u8>, _>(4)),
        at: r.get(5),
        owner: r.get(6),
    }
}

const COLUMNS: &str = "r.id, r.doc_id, r.node_id, r.unit_id, r.heads, r.at, d.owner";

impl Store {
    /// Receipts with an id above `after`, oldest first, at most `limit`.
    pub async fn receipts_after(&self, after: i64, limit: u32) -> Result<Vec<Receipt>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM receipts r LEFT JOIN docs d ON d.doc_id = r.doc_id \
             WHERE r.id > $1 ORDER BY r.id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(receipt).collect())
    }

    /// Every receipt of a document, oldest first.
    pub async fn receipts_of(&self, doc: &DocId) -> Result<Vec<Receipt>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM receipts r LEFT JOIN docs d ON d.doc_id = r.doc_id \
             WHERE r.doc_id = $1 ORDER BY r.id"
        )))
        .bind(doc.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(receipt).collect())
    }

    /// The last receipt id of `peer` (a parent) stored here; 0 for none.
    pub async fn receipt_cursor(&self, peer: &str) -> Result<i64> {
        let row = sqlx::query("SELECT upto FROM receipt_cursors WHERE peer = $1")
            .bind(peer)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0)).unwrap_or(0))
    }
}

impl WriteTx<'_> {
    /// Stores receipts; one already stored (same document, node and
    /// heads) is kept as it is, with its first time.
    pub async fn add_receipts(&mut self, receipts: &[NewReceipt]) -> Result<()> {
        for r in receipts {
            if r.heads.is_empty() {
                continue;
            }
            sqlx::query(
                "INSERT INTO receipts (doc_id, node_id, unit_id, heads, at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (doc_id, node_id, heads) DO NOTHING",
            )
            .bind(&r.doc)
            .bind(&r.node_id)
            .bind(&r.unit)
            .bind(heads_bytes(&r.heads))
            .bind(r.at)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    /// Records that `peer`'s receipts up to `upto` are stored here.
    pub async fn set_receipt_cursor(&mut self, peer: &str, upto: i64) -> Result<()> {
        if upto < 0 {
            return Err(StoreError::Model(hopluu_model::ModelError::invalid(
                "upto",
                format!("receipt cursor of {peer}: {upto} is negative"),
            )));
        }
        sqlx::query(
            "INSERT INTO receipt_cursors (peer, upto) VALUES ($1, $2) \
             ON CONFLICT (peer) DO UPDATE SET upto = excluded.upto",
        )
        .bind(peer)
        .bind(upto)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Drops receipts made before `before` (ms since the epoch). Returns
    /// how many.
    pub async fn prune_receipts(&mut self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM receipts WHERE at < $1")
            .bind(before)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}
