//! The stored documents as an administrator sees them (`hopluu docs`), and
//! compaction on request (`hopluu compact`).
//!
//! Listing reads the `docs` table only, never a document's content: id,
//! kind, owner, addressed units, stored size, heads, and the feed position
//! and time of the last update here. What peers are known to have comes
//! from `peer_docs`.
//!
//! A [`Compaction`] folds each document's incremental chunks into a new
//! snapshot, as a write does when the chunks outgrow the snapshot
//! ([`crate::tx`]), but for every document with chunks and when asked.
//! Each document is its own short SQL transaction under the writer lock, so
//! replication waits for one document at most, never for the whole run.
//! The slow part (decoding snapshot and chunks, saving the new snapshot and
//! decoding it again to check it) runs before the lock is taken, on a
//! blocking thread; the write lands only if the document is still as it
//! was read (same heads, same chunks), else the document is read again
//! under the lock. A compaction changes no content: not the heads, not the
//! feed, not the projections, so it is nothing replication has to send.
//! Stopped at any point (a crash, a dropped request), it leaves every
//! document either as it was or compacted: both load to the same heads.
//! The part under the writer lock runs as a task of its own, awaited by the
//! compaction: a dropped compaction lets its last transaction finish rather
//! than abandon a commit in flight with the lock released.

use std::collections::VecDeque;

use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::{DocId, DocKind, ModelError, UnitId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::tx::{heads_bytes, heads_from_bytes};
use crate::{Backend, Result, Store, StoreError};

/// One stored document, from the `docs` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRow {
    pub id: DocId,
    pub owner: UnitId,
    /// Units it is addressed to from outside its owner's subtree.
    pub addressed: Vec<UnitId>,
    /// Bytes of the last full save.
    pub snapshot_len: i64,
    /// Bytes of the incremental chunks written since (what compaction folds).
    pub chunks_len: i64,
    pub heads: Vec<ChangeHash>,
    /// Feed position and time (ms since the epoch) of its last update here.
    pub seq: i64,
    pub changed_at: i64,
}

impl DocRow {
    /// Stored bytes: snapshot and chunks.
    pub fn size(&self) -> i64 {
        self.snapshot_len + self.chunks_len
    }
}

/// Which documents [`Store::list_docs`] lists.
#[derive(Debug, Clone, Default)]
pub struct DocFilter {
    pub kind: Option<DocKind>,
    /// Documents owned by this unit or, with `subtree`, by any unit of its
    /// subtree (by the closure table).
    pub owner: Option<UnitId>,
    pub subtree: bool,
    /// Documents whose id sorts after this one (paging).
    pub after: Option<DocId>,
    /// At most this many (clamped to 1..=10,000).
    pub limit: u32,
}

/// The heads of one document a peer is known to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeads {
    pub peer: String,
    /// The unit the peer hosts (empty if this node has no `peers` row for it).
    pub unit: String,
    pub heads: Vec<ChangeHash>,
}

fn corrupt(e: ModelError) -> StoreError {
    StoreError::Corrupt {
        doc: "docs".into(),
        reason: e.to_string(),
    }
}

const DOC_COLS: &str = "doc_id, owner, addressed, snapshot_len, chunks_len, heads, seq, changed_at";

fn doc_row(r: &AnyRow) -> Result<DocRow> {
    Ok(DocRow {
        id: DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(corrupt)?,
        owner: UnitId::parse("owner", &r.get::<String, _>(1)).map_err(corrupt)?,
        addressed: r
            .get::<String, _>(2)
            .split_whitespace()
            .map(|u| UnitId::parse("addressed", u))
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        snapshot_len: r.get(3),
        chunks_len: r.get(4),
        heads: heads_from_bytes(&r.get::<Vec<u8>, _>(5)),
        seq: r.get(6),
        changed_at: r.get(7),
    })
}

impl Store {
    /// `doc_id` compared and ordered byte-wise on both backends (PostgreSQL
    /// would otherwise sort by the database's collation, which skips `-`
    /// and `/`), so that pages are the same everywhere.
    pub(crate) fn doc_id_bytewise(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "doc_id",
            Backend::Postgres => "doc_id COLLATE \"C\"",
        }
    }

    /// Documents matching `filter`, by id, with how many match in all
    /// (whatever `after` and `limit` say).
    pub async fn list_docs(&self, filter: &DocFilter) -> Result<(Vec<DocRow>, u64)> {
        let owner = if filter.subtree {
            "owner IN (SELECT descendant FROM unit_closure WHERE ancestor = $2)"
        } else {
            "($2 = '' OR owner = $2)"
        };
        let matches = format!("($1 = '' OR kind = $1) AND {owner}");
        let kind = filter.kind.map(DocKind::as_str).unwrap_or("");
        let owner = filter.owner.as_ref().map(UnitId::as_str).unwrap_or("");
        let total: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM docs WHERE {matches}"
        )))
        .bind(kind)
        .bind(owner)
        .fetch_one(self.pool())
        .await?
        .get(0);
        let id = self.doc_id_bytewise();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DOC_COLS} FROM docs WHERE {matches} AND {id} > $3 ORDER BY {id} LIMIT $4"
        )))
        .bind(kind)
        .bind(owner)
        .bind(
            filter
                .after
                .as_ref()
                .map(DocId::to_string)
                .unwrap_or_default(),
        )
        .bind(i64::from(filter.limit.clamp(1, 10_000)))
        .fetch_all(self.pool())
        .await?;
        Ok((
            rows.iter().map(doc_row).collect::<Result<_>>()?,
            total.max(0) as u64,
        ))
    }

    /// The `docs` row of one document (None if it is not stored).
    pub async fn doc_row(&self, id: &DocId) -> Result<Option<DocRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DOC_COLS} FROM docs WHERE doc_id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(doc_row).transpose()
    }

    /// The heads of `id` each peer is known to have, by peer id.
    pub async fn peer_heads_of(&self, id: &DocId) -> Result<Vec<PeerHeads>> {
        let rows = sqlx::query(
            "SELECT p.peer, COALESCE(r.unit, ''), p.heads FROM peer_docs p \
             JOIN docs d ON d.id = p.doc LEFT JOIN peers r ON r.node_id = p.peer \
             WHERE d.doc_id = $1 ORDER BY p.peer",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| PeerHeads {
                peer: r.get(0),
                unit: r.get(1),
                heads: heads_from_bytes(&r.get::<Vec<u8>, _>(2)),
            })
            .collect())
    }

    /// Starts a compaction of every document with at least
    /// `min_chunk_bytes` of chunks (0: any chunks). Nothing is written
    /// until [`Compaction::step`] is called.
    pub async fn compaction(&self, min_chunk_bytes: u64) -> Result<Compaction> {
        let min = i64::try_from(min_chunk_bytes).unwrap_or(i64::MAX);
        // The row ids only: eight bytes per document with chunks.
        let rows = sqlx::query(
            "SELECT id FROM docs WHERE chunks_len > 0 AND chunks_len >= $1 ORDER BY id",
        )
        .bind(min)
        .fetch_all(self.pool())
        .await?;
        let queue: VecDeque<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
        Ok(Compaction {
            store: self.clone(),
            min,
            progress: CompactProgress {
                docs_total: queue.len() as u64,
                ..CompactProgress::default()
            },
            queue,
        })
    }
}

/// How far a compaction is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactProgress {
    /// Documents that had chunks when the compaction started.
    pub docs_total: u64,
    /// Of those, documents dealt with so far.
    pub docs_done: u64,
    /// Of those, documents given a new snapshot. The others had been
    /// compacted by a write meanwhile, or were skipped.
    pub docs_compacted: u64,
    /// Documents left as they were: stored data that does not decode to its
    /// stored heads (logged with the document's id), or a document another
    /// process kept writing.
    pub docs_skipped: u64,
    /// Stored bytes of the documents done, before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A compaction under way: [`Compaction::step`] deals with one document.
/// Dropping it, even in the middle of a step, stops it safely (a document
/// being written is finished first, in the background).
pub struct Compaction {
    store: Store,
    min: i64,
    queue: VecDeque<i64>,
    progress: CompactProgress,
}

impl std::fmt::Debug for Compaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compaction")
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

/// What became of one document.
enum Outcome {
    Compacted {
        before: i64,
        after: i64,
    },
    /// Gone, or no chunks (left) to fold.
    Unneeded {
        size: i64,
    },
    Skipped {
        size: i64,
    },
}

/// A document as stored, read for compaction.
struct Stored {
    doc_id: String,
    snapshot: Vec<u8>,
    snapshot_len: i64,
    chunks_len: i64,
    heads: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    /// The last chunk's sequence: chunks written later are not folded.
    last_chunk: i64,
}

/// What decoding a stored document and saving it again gave.
enum Folded {
    Snapshot(Vec<u8>),
    /// A write landed between reading the row and reading its chunks.
    Changed,
    Bad(String),
}

impl Compaction {
    pub fn progress(&self) -> CompactProgress {
        self.progress
    }

    /// Compacts the next document; `false` once none is left.
    pub async fn step(&mut self) -> Result<bool> {
        let Some(row) = self.queue.front().copied() else {
            return Ok(false);
        };
        let outcome = compact_row(&self.store, row, self.min).await?;
        self.queue.pop_front();
        let p = &mut self.progress;
        p.docs_done += 1;
        let (before, after) = match outcome {
            Outcome::Compacted { before, after } => {
                p.docs_compacted += 1;
                (before, after)
            }
            Outcome::Unneeded { size } => (size, size),
            Outcome::Skipped { size } => {
                p.docs_skipped += 1;
                (size, size)
            }
        };
        p.bytes_before += before.max(0) as u64;
        p.bytes_after += after.max(0) as u64;
        Ok(true)
    }

    /// Runs to the end, calling `progress` after every document.
    pub async fn run(
        mut self,
        mut progress: impl FnMut(&CompactProgress),
    ) -> Result<CompactProgress> {
        while self.step().await? {
            progress(&self.progress);
        }
        Ok(self.progress)
    }
}

async fn read_stored(pool: &sqlx::AnyPool, row: i64) -> Result<Option<Stored>> {
    let Some(r) = sqlx::query(
        "SELECT doc_id, snapshot, snapshot_len, chunks_len, heads FROM docs WHERE id = $1",
    )
    .bind(row)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let mut stored = Stored {
        doc_id: r.get(0),
        snapshot: r.get(1),
        snapshot_len: r.get(2),
        chunks_len: r.get(3),
        heads: r.get(4),
        chunks: Vec::new(),
        last_chunk: 0,
    };
    if stored.chunks_len > 0 {
        let chunks = sqlx::query("SELECT seq, data FROM doc_chunks WHERE doc = $1 ORDER BY seq")
            .bind(row)
            .fetch_all(pool)
            .await?;
        for c in chunks {
            stored.last_chunk = c.get(0);
            stored.chunks.push(c.get(1));
        }
    }
    Ok(Some(stored))
}

/// Loads snapshot and chunks, checks them against the stored heads, saves
/// a new snapshot and checks that it loads to the same heads.
fn fold(s: &Stored) -> Folded {
    let mut doc = match Automerge::load(&s.snapshot) {
        Ok(d) => d,
        Err(e) => return Folded::Bad(format!("snapshot: {e}")),
    };
    for c in &s.chunks {
        if let Err(e) = doc.load_incremental(c) {
            return Folded::Bad(format!("chunk: {e}"));
        }
    }
    // A change waiting for a dependency would not be saved: leave such a
    // document alone (writes never store one).
    if !doc.get_missing_deps(&[]).is_empty() {
        return Folded::Bad("chunks hold changes whose dependencies are missing".into());
    }
    let heads = doc.get_heads();
    if heads_bytes(&heads) != s.heads {
        return Folded::Changed;
    }
    let snapshot = doc.save();
    match Automerge::load(&snapshot) {
        Ok(again) if again.get_heads() == heads => Folded::Snapshot(snapshot),
        Ok(_) => Folded::Bad("the new snapshot loads to other heads".into()),
        Err(e) => Folded::Bad(format!("the new snapshot does not load: {e}")),
    }
}

/// What one attempt at a document came to.
enum Attempt {
    Done(Outcome),
    /// Written meanwhile: try again. Its stored size when read.
    Changed {
        size: i64,
    },
}

/// Waits for a task of this compaction; a panic in it goes on here.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Corrupt {
            doc: "docs".into(),
            reason: format!("compaction task: {e}"),
        }),
    }
}

/// Compacts one document: first optimistically (decoded outside the writer
/// lock), then, if a write came in between, again under the lock.
///
/// What takes the writer lock runs as a task of its own, awaited here: if
/// this future is dropped (a client gone, a deadline), the task still
/// finishes its one short transaction, and its update of the cache, before
/// it lets the lock go. Dropped in the middle of its commit instead, the
/// lock would be free while the commit is still landing, and the next
/// writer (SQLite) would start from a snapshot the commit then outdates.
async fn compact_row(store: &Store, row: i64, min: i64) -> Result<Outcome> {
    let size = match attempt(store, row, min, false).await? {
        Attempt::Done(outcome) => return Ok(outcome),
        Attempt::Changed { size } => size,
    };
    let s = store.clone();
    let again = tokio::spawn(async move { attempt(&s, row, min, true).await });
    Ok(match joined(again).await? {
        Attempt::Done(outcome) => outcome,
        // Written between reading and writing even under the writer lock:
        // another process writes this database. Its next write compacts it.
        Attempt::Changed { size: now } => Outcome::Skipped {
            size: now.max(size),
        },
    })
}

/// Reads, folds and (if the document is still as read) writes one
/// document; `locked`: the caller is a task of its own, and the whole
/// attempt holds the writer lock.
async fn attempt(store: &Store, row: i64, min: i64, locked: bool) -> Result<Attempt> {
    let guard = if locked {
        Some(store.inner.writer.lock().await)
    } else {
        None
    };
    let Some(stored) = read_stored(store.pool(), row).await? else {
        return Ok(Attempt::Done(Outcome::Unneeded { size: 0 }));
    };
    let before = stored.snapshot_len + stored.chunks_len;
    if stored.chunks_len == 0 || stored.chunks_len < min {
        return Ok(Attempt::Done(Outcome::Unneeded { size: before }));
    }
    let (stored, folded) = joined(tokio::task::spawn_blocking(move || {
        let folded = fold(&stored);
        Ok((stored, folded))
    }))
    .await?;
    let snapshot = match folded {
        Folded::Snapshot(s) => s,
        Folded::Changed => return Ok(Attempt::Changed { size: before }),
        // Read outside the lock, the row and its chunks may come from
        // either side of a write that compacted: make sure under the lock.
        Folded::Bad(_) if !locked => return Ok(Attempt::Changed { size: before }),
        Folded::Bad(reason) => {
            tracing::warn!(doc = %stored.doc_id, %reason, "compaction skipped a document");
            return Ok(Attempt::Done(Outcome::Skipped { size: before }));
        }
    };
    let after = snapshot.len() as i64;
    let landed = match guard {
        Some(_writer) => land(store, row, &stored, snapshot).await?,
        None => {
            let s = store.clone();
            joined(tokio::spawn(async move {
                let _writer = s.inner.writer.lock().await;
                land(&s, row, &stored, snapshot).await
            }))
            .await?
        }
    };
    Ok(if landed {
        Attempt::Done(Outcome::Compacted { before, after })
    } else {
        Attempt::Changed { size: before }
    })
}

/// Under the writer lock: replaces the snapshot and drops the folded chunks
/// in one transaction, if nothing was written since `stored` was read (the
/// same heads and the same chunks: every write changes the heads).
async fn land(store: &Store, row: i64, stored: &Stored, snapshot: Vec<u8>) -> Result<bool> {
    let after = snapshot.len() as i64;
    let mut tx = store.pool().begin().await?;
    let updated = sqlx::query(
        "UPDATE docs SET snapshot = $2, snapshot_len = $3, chunks_len = 0 \
         WHERE id = $1 AND chunks_len = $4 AND heads = $5",
    )
    .bind(row)
    .bind(snapshot)
    .bind(after)
    .bind(stored.chunks_len)
    .bind(stored.heads.clone())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        // Dropping the transaction rolls it back.
        return Ok(false);
    }
    sqlx::query("DELETE FROM doc_chunks WHERE doc = $1 AND seq <= $2")
        .bind(row)
        .bind(stored.last_chunk)
        .execute(&mut *tx)
        .await?;
    // The cache's copy (if any) has the same content; only its sizes,
    // which decide the next automatic compaction, change. It leaves the
    // cache until the commit is known to have landed, as a document in a
    // `WriteTx` does: should the commit fail, the next write loads the
    // document, and its sizes, from the database. Readers that loaded it
    // before or during the commit must not cache their copy with the old
    // sizes: both sides of the commit count as commits.
    let id = DocId::parse("doc_id", &stored.doc_id).ok();
    let cached = {
        let mut cache = store.inner.cache.lock().expect("cache lock");
        cache.committed();
        id.as_ref().and_then(|id| cache.take(id))
    };
    tx.commit().await?;
    let mut cache = store.inner.cache.lock().expect("cache lock");
    cache.committed();
    if let (Some(id), Some(mut loaded)) = (id, cached) {
        loaded.snapshot_len = after;
        loaded.chunks_len = 0;
        cache.put(&id, loaded);
    }
    Ok(true)
}
