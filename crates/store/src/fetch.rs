//! Documents read outside the writer lock: a stored document's bytes
//! fetched in one statement, decoded apart (automerge's load is CPU work),
//! and offered to a write ([`crate::WriteTx::offer`]), which takes one
//! only while the stored row still has its heads.

use automerge::Automerge;
use hopluu_model::DocId;
use sqlx::Row;

use crate::tx::{Loaded, heads_bytes};
use crate::{Result, Store, StoreError};

/// A stored document's bytes (snapshot and chunks), not yet decoded.
pub struct Fetched {
    id: DocId,
    row: i64,
    snapshot: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    snapshot_len: i64,
    chunks_len: i64,
}

/// Reads a document's snapshot and chunks in one statement (so that a
/// compaction committing meanwhile cannot hand back an older document).
pub(crate) async fn fetch(conn: &mut sqlx::AnyConnection, id: &DocId) -> Result<Option<Fetched>> {
    let key = id.to_string();
    // Part 0 is the row (its snapshot as `data`), parts 1 its chunks in
    // order; the chunk branch reports 0 for the row's own columns.
    let rows = sqlx::query(
        "SELECT CAST(0 AS BIGINT) AS part, CAST(0 AS BIGINT) AS seq, d.id, d.snapshot AS data, \
                d.snapshot_len, d.chunks_len \
         FROM docs d WHERE d.doc_id = $1 \
         UNION ALL \
         SELECT CAST(1 AS BIGINT), c.seq, c.doc, c.data, CAST(0 AS BIGINT), CAST(0 AS BIGINT) \
         FROM doc_chunks c JOIN docs d ON c.doc = d.id WHERE d.doc_id = $1 \
         ORDER BY part, seq",
    )
    .bind(&key)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows = rows.into_iter();
    // The chunks join the row, so any answer starts with the row itself.
    let Some(row) = rows.next() else {
        return Ok(None);
    };
    Ok(Some(Fetched {
        id: id.clone(),
        row: row.get(2),
        snapshot: row.get(3),
        snapshot_len: row.get(4),
        chunks_len: row.get(5),
        chunks: rows.map(|c| c.get(3)).collect(),
    }))
}

impl Fetched {
    /// The document decoded (automerge's load: CPU work, best done off
    /// the async threads for a large document).
    pub fn decode(self) -> Result<Loaded> {
        let corrupt = |reason: String| StoreError::Corrupt {
            doc: self.id.to_string(),
            reason,
        };
        let mut doc = Automerge::load(&self.snapshot).map_err(|e| corrupt(e.to_string()))?;
        for data in &self.chunks {
            doc.load_incremental(data)
                .map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(Loaded {
            id: self.id,
            doc,
            row: Some(self.row),
            snapshot_len: self.snapshot_len,
            chunks_len: self.chunks_len,
        })
    }
}

impl Store {
    /// Reads the stored bytes of those of `ids` the document cache does
    /// not hold, outside the writer lock, for [`WriteTx::offer`] once
    /// decoded: a session readies the documents its batch will change
    /// while another commits.
    pub async fn fetch_uncached(&self, ids: &[DocId]) -> Result<Vec<Fetched>> {
        let wanted: Vec<&DocId> = {
            let cache = self.inner.cache.lock().expect("cache lock");
            ids.iter().filter(|id| !cache.contains(id)).collect()
        };
        let mut out = Vec::new();
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut conn = self.inner.pool.acquire().await?;
        for id in wanted {
            if let Some(f) = fetch(&mut conn, id).await? {
                out.push(f);
            }
        }
        Ok(out)
    }
}

/// `l` if the stored row is still the one it was loaded from (same row,
/// same heads), with the row's current sizes.
pub(crate) async fn still_stored(
    conn: &mut sqlx::AnyConnection,
    mut l: Loaded,
) -> Result<Option<Loaded>> {
    let Some(row) = l.row else {
        return Ok(None);
    };
    let stored = sqlx::query("SELECT heads, snapshot_len, chunks_len FROM docs WHERE id = $1")
        .bind(row)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let heads: Vec<u8> = stored.get(0);
    if heads != heads_bytes(&l.doc.get_heads()) {
        return Ok(None);
    }
    l.snapshot_len = stored.get(1);
    l.chunks_len = stored.get(2);
    Ok(Some(l))
}
