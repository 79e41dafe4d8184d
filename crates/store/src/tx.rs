//! Write transactions: documents in, documents + feed + projections out, in
//! one SQL transaction.
//!
//! Storage of one document: `docs.snapshot` holds a full `save()`, and
//! `doc_chunks` the incremental chunks (`save_after(heads)`) written since.
//! Loading is `load(snapshot)` then `load_incremental(chunk)` in order. When
//! the chunks outgrow the snapshot they are folded into a new snapshot
//! (compaction) in the same transaction as the write that tipped them over.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::{Automerge, ChangeHash};
use hopluu_model::unit::{self, Unit};
use hopluu_model::{DocId, DocKind, DocMeta, UnitId, UnitTree, shape};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError, project};

/// A document loaded for writing, with what is needed to store its change.
pub struct Loaded {
    pub(crate) id: DocId,
    pub(crate) doc: Automerge,
    /// `docs.id`, once stored.
    pub(crate) row: Option<i64>,
    pub(crate) snapshot_len: i64,
    pub(crate) chunks_len: i64,
}

struct Open {
    loaded: Loaded,
    base_heads: Vec<ChangeHash>,
    /// What came with a document adopted whole ([`WriteTx::adopt`]); used
    /// only while the document still has the heads it was adopted with.
    adopted: Option<Adopted>,
}

/// A whole document as it arrived: its bytes and what checking it read.
struct Adopted {
    heads: Vec<ChangeHash>,
    saved: Vec<u8>,
    read: Option<shape::Read>,
}

/// What a commit stored.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// The documents that changed, with the feed sequence of each update.
    pub docs: Vec<(DocId, i64)>,
    /// Documents put back into the feed, unchanged, because a unit moved
    /// (or a parent arrived after its children) and so which peers hold
    /// them changed.
    pub rescoped: usize,
}

/// Replication state written in the same transaction as the documents.
enum PeerWrite {
    /// The peer is known to have these heads of the document (and, while
    /// its heads were unknown, this automerge sync state).
    Heads {
        peer: String,
        doc: DocId,
        heads: Vec<u8>,
        sync: Option<Vec<u8>>,
    },
    /// How far the peer's feed is applied here, or this node's feed
    /// acknowledged by the peer.
    Checkpoint {
        peer: String,
        unit: String,
        side: Side,
        upto: i64,
        now: i64,
    },
}

/// Which of a peer's two checkpoints a write moves.
#[derive(Clone, Copy)]
enum Side {
    /// The peer's feed, applied here (`peers.applied_upto`).
    Applied,
    /// This node's feed, acknowledged by the peer (`peers.acked_upto`).
    Acked,
}

impl Committed {
    pub fn last_seq(&self) -> Option<i64> {
        self.docs.iter().map(|(_, s)| *s).max()
    }
}

/// An open write. Holds the store's writer lock until committed or dropped;
/// dropping it without [`WriteTx::commit`] discards every edit.
///
/// It owns what it holds (a handle on the store, the lock, the
/// transaction), so that [`WriteTx::commit`] can run to its end on a task
/// of its own whatever happens to its caller; the lifetime only ties it to
/// the store it was begun on.
pub struct WriteTx<'s> {
    store: Store,
    _writer: tokio::sync::OwnedMutexGuard<()>,
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Any>,
    docs: BTreeMap<DocId, Open>,
    /// Documents loaded outside the lock ([`WriteTx::offer`]), taken only
    /// if still what is stored.
    offered: BTreeMap<DocId, Loaded>,
    peer_writes: Vec<PeerWrite>,
    /// The quarantine was written: its generation moves once committed.
    pub(crate) quarantine_touched: bool,
    _store: std::marker::PhantomData<&'s Store>,
}

impl Store {
    /// Starts a write. Writes are serialised: the feed sequence is
    /// allocated in commit order.
    pub async fn begin(&self) -> Result<WriteTx<'_>> {
        let writer = self.inner.writer.clone().lock_owned().await;
        let tx = self.inner.pool.begin().await?;
        Ok(WriteTx {
            store: self.clone(),
            _writer: writer,
            tx,
            docs: BTreeMap::new(),
            offered: BTreeMap::new(),
            peer_writes: Vec::new(),
            quarantine_touched: false,
            _store: std::marker::PhantomData,
        })
    }
}

pub(crate) fn heads_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(heads.len() * 32);
    for h in heads {
        out.extend_from_slice(&h.0);
    }
    out
}

pub(crate) fn heads_from_bytes(b: &[u8]) -> Vec<ChangeHash> {
    b.chunks_exact(32)
        .filter_map(|c| ChangeHash::try_from(c).ok())
        .collect()
}

/// Loads a stored document through `conn` (None if it is not stored).
///
/// The row and its chunks are read in one statement, so they come from
/// one snapshot of the database on both backends. Read in two, a
/// compaction (or a write that folds the chunks into a new snapshot)
/// committed in between would hand back the old snapshot without the
/// chunks it folded: an older document, missing acknowledged changes, that
/// the cache would then keep.
pub(crate) async fn load(conn: &mut sqlx::AnyConnection, id: &DocId) -> Result<Option<Loaded>> {
    match crate::fetch::fetch(conn, id).await? {
        Some(raw) => raw.decode().map(Some),
        None => Ok(None),
    }
}

impl<'s> WriteTx<'s> {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The document `id`, loaded (or empty if it does not exist yet) and
    /// held by this transaction.
    pub async fn doc(&mut self, id: &DocId) -> Result<&mut Automerge> {
        if !self.docs.contains_key(id) {
            let cached = self.store.inner.cache.lock().expect("cache lock").take(id);
            let offered = match cached {
                Some(_) => None,
                None => self.offered.remove(id),
            };
            // Boxed: `doc` is awaited deep in every write's future.
            let current = match offered {
                Some(o) => Box::pin(crate::fetch::still_stored(&mut self.tx, o)).await?,
                None => None,
            };
            let loaded = match cached.or(current) {
                Some(l) => l,
                None => match load(&mut self.tx, id).await? {
                    Some(l) => l,
                    None => Loaded {
                        id: id.clone(),
                        doc: Automerge::new(),
                        row: None,
                        snapshot_len: 0,
                        chunks_len: 0,
                    },
                },
            };
            let base_heads = loaded.doc.get_heads();
            self.docs.insert(
                id.clone(),
                Open {
                    loaded,
                    base_heads,
                    adopted: None,
                },
            );
        }
        Ok(&mut self.docs.get_mut(id).expect("just inserted").loaded.doc)
    }

    /// Takes `doc`, a whole document new here, as document `id`, with
    /// `saved`: the bytes it was loaded from (an automerge document chunk),
    /// stored as its snapshot instead of saving it again; and `read`: what
    /// checking it read ([`shape::check_whole`]), projected instead of
    /// reading it again. Both serve only while the document keeps the
    /// heads it came with.
    pub async fn adopt(
        &mut self,
        id: &DocId,
        doc: Automerge,
        saved: Vec<u8>,
        read: Option<shape::Read>,
    ) -> Result<()> {
        let heads = doc.get_heads();
        *self.doc(id).await? = doc;
        let open = self.docs.get_mut(id).expect("opened above");
        open.adopted = Some(Adopted { heads, saved, read });
        Ok(())
    }

    /// Offers documents loaded outside the writer lock
    /// ([`Store::fetch_uncached`]). One is used when the transaction first
    /// asks for its document, if the cache does not hold it and the
    /// stored row still has its heads (the heads fix a document's state);
    /// otherwise it is loaded again, as always.
    pub fn offer(&mut self, docs: Vec<Loaded>) {
        for l in docs {
            self.offered.insert(l.id.clone(), l);
        }
    }

    /// Whether the document exists (stored, or created in this transaction).
    pub async fn exists(&mut self, id: &DocId) -> Result<bool> {
        Ok(!self.doc(id).await?.get_heads().is_empty())
    }

    /// Drops this transaction's edits of one document (it is reloaded from
    /// the database next time), keeping the rest of the transaction.
    pub fn discard(&mut self, id: &DocId) {
        self.docs.remove(id);
    }

    /// Records, with this transaction, that `peer` has `heads` of `doc`
    /// (and the automerge sync state for it, when one is in use). The
    /// document must be stored, or be stored by this transaction.
    pub fn set_peer_heads(
        &mut self,
        peer: &str,
        doc: &DocId,
        heads: &[ChangeHash],
        sync: Option<Vec<u8>>,
    ) {
        self.peer_writes.push(PeerWrite::Heads {
            peer: peer.to_owned(),
            doc: doc.clone(),
            heads: heads_bytes(heads),
            sync,
        });
    }

    /// Records, with this transaction, that `peer`'s feed is applied up to
    /// `applied_upto`: durable exactly when what was applied is.
    pub fn set_peer_applied(&mut self, peer: &str, unit: &UnitId, applied_upto: i64) {
        self.peer_writes.push(PeerWrite::Checkpoint {
            peer: peer.to_owned(),
            unit: unit.to_string(),
            side: Side::Applied,
            upto: applied_upto,
            now: self.store.clock().now_millis(),
        });
    }

    /// Records that `peer` has acknowledged this node's feed up to `acked_upto`.
    pub fn set_peer_acked(&mut self, peer: &str, unit: &UnitId, acked_upto: i64) {
        self.peer_writes.push(PeerWrite::Checkpoint {
            peer: peer.to_owned(),
            unit: unit.to_string(),
            side: Side::Acked,
            upto: acked_upto,
            now: self.store.clock().now_millis(),
        });
    }

    /// The SQL connection of this transaction, for reads that must see the
    /// transaction's own writes.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Writes every changed document, its feed entry and its projections,
    /// then commits. Nothing is durable, and nothing should be
    /// acknowledged, before this returns `Ok`.
    ///
    /// The commit runs on a task of its own and always to its end, holding
    /// the writer lock until the database has answered and the in-memory
    /// state (unit tree, feed position, document cache) follows: a caller
    /// cancelled meanwhile (a client gone, a request's deadline) neither
    /// lets the next writer in while the commit is still landing nor leaves
    /// the unit tree or the feed position behind what was committed.
    pub async fn commit(self) -> Result<Committed> {
        let owned: WriteTx<'static> = WriteTx {
            store: self.store,
            _writer: self._writer,
            tx: self.tx,
            docs: self.docs,
            // What was offered and not taken is of no use to the commit.
            offered: BTreeMap::new(),
            peer_writes: self.peer_writes,
            quarantine_touched: self.quarantine_touched,
            _store: std::marker::PhantomData,
        };
        match tokio::spawn(owned.commit_here()).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Db(sqlx::Error::Protocol(format!(
                "the commit's task did not finish: {e}"
            )))),
        }
    }

    async fn commit_here(mut self) -> Result<Committed> {
        let docs = std::mem::take(&mut self.docs);
        let changed: Vec<&Open> = docs
            .values()
            .filter(|o| o.loaded.doc.get_heads() != o.base_heads)
            .collect();
        let mut committed = Committed::default();
        let mut rows: BTreeMap<DocId, (i64, i64, i64)> = BTreeMap::new();
        let mut units: Vec<Unit> = Vec::new();
        // The latest sequence of a decision or node record written.
        let mut control = 0i64;
        // One time for the whole commit: its feed entries, conflicts and
        // rescoped documents were written together.
        let now = self.store.clock().now_millis();
        if !changed.is_empty() {
            let n = changed.len() as i64;
            let last: i64 = sqlx::query(
                "UPDATE counters SET value = value + $1 WHERE name = 'feed' RETURNING value",
            )
            .bind(n)
            .fetch_one(&mut *self.tx)
            .await?
            .get(0);
            let opts = self.store.options().clone();
            for (i, open) in changed.into_iter().enumerate() {
                let seq = last - n + 1 + i as i64;
                let l = &open.loaded;
                let meta = DocMeta::read(l.id.clone(), &l.doc)?;
                let current = l.doc.get_heads();
                let heads = heads_bytes(&current);
                let addressed = meta
                    .addressed
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let adopted = open.adopted.as_ref().filter(|a| a.heads == current);
                let (row, snapshot_len, chunks_len) = match l.row {
                    None => {
                        let snapshot = match adopted {
                            Some(a) => a.saved.clone(),
                            None => l.doc.save(),
                        };
                        let len = snapshot.len() as i64;
                        let row: i64 = sqlx::query(
                            "INSERT INTO docs (doc_id, kind, owner, addressed, snapshot, snapshot_len, \
                             chunks_len, heads, seq, changed_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) RETURNING id",
                        )
                        .bind(l.id.to_string())
                        .bind(l.id.kind().as_str())
                        .bind(meta.owner.as_str())
                        .bind(&addressed)
                        .bind(snapshot)
                        .bind(len)
                        .bind(heads)
                        .bind(seq)
                        .bind(now)
                        .fetch_one(&mut *self.tx)
                        .await?
                        .get(0);
                        (row, len, 0)
                    }
                    Some(row) => {
                        let chunk = l.doc.save_after(&open.base_heads);
                        let grown = l.chunks_len + chunk.len() as i64;
                        let limit = (l.snapshot_len as f64 * opts.compact_factor)
                            .max(opts.compact_min_bytes as f64);
                        if grown as f64 > limit {
                            let snapshot = l.doc.save();
                            let len = snapshot.len() as i64;
                            sqlx::query("DELETE FROM doc_chunks WHERE doc = $1")
                                .bind(row)
                                .execute(&mut *self.tx)
                                .await?;
                            sqlx::query(
                                "UPDATE docs SET owner = $2, addressed = $3, snapshot = $4, \
                                 snapshot_len = $5, chunks_len = 0, heads = $6, seq = $7, \
                                 changed_at = $8 WHERE id = $1",
                            )
                            .bind(row)
                            .bind(meta.owner.as_str())
                            .bind(&addressed)
                            .bind(snapshot)
                            .bind(len)
                            .bind(heads)
                            .bind(seq)
                            .bind(now)
                            .execute(&mut *self.tx)
                            .await?;
                            (row, len, 0)
                        } else {
                            sqlx::query(
                                "INSERT INTO doc_chunks (doc, seq, data) VALUES ($1, $2, $3)",
                            )
                            .bind(row)
                            .bind(seq)
                            .bind(chunk)
                            .execute(&mut *self.tx)
                            .await?;
                            sqlx::query(
                                "UPDATE docs SET owner = $2, addressed = $3, chunks_len = $4, \
                                 heads = $5, seq = $6, changed_at = $7 WHERE id = $1",
                            )
                            .bind(row)
                            .bind(meta.owner.as_str())
                            .bind(&addressed)
                            .bind(grown)
                            .bind(heads)
                            .bind(seq)
                            .bind(now)
                            .execute(&mut *self.tx)
                            .await?;
                            (row, l.snapshot_len, grown)
                        }
                    }
                };
                sqlx::query("INSERT INTO feed (seq, doc, at) VALUES ($1, $2, $3)")
                    .bind(seq)
                    .bind(row)
                    .bind(now)
                    .execute(&mut *self.tx)
                    .await?;
                let read = adopted.and_then(|a| a.read.as_ref());
                project::apply(
                    &mut self.tx,
                    row,
                    &l.id,
                    &l.doc,
                    &open.base_heads,
                    read,
                    now,
                )
                .await?;
                rows.insert(l.id.clone(), (row, snapshot_len, chunks_len));
                committed.docs.push((l.id.clone(), seq));
                if l.id.kind() == DocKind::Unit {
                    units.push(unit::read(&l.id, &l.doc)?);
                }
                if matches!(l.id.kind(), DocKind::Decision | DocKind::Node) {
                    // Before the commit: a session judging a batch after
                    // it must look its seals up (the flag only ever turns on).
                    self.store.set_seals_hint();
                    control = control.max(seq);
                }
            }
        }
        if !units.is_empty() {
            let moved = {
                let tree = self.store.tree();
                moved_subtrees(&tree, &units)
            };
            if !moved.is_empty() {
                let first = committed.docs.iter().map(|(_, s)| *s).min().unwrap_or(0);
                committed.rescoped = rescope(&mut self.tx, &moved, first, now).await?;
            }
        }
        for w in std::mem::take(&mut self.peer_writes) {
            write_peer(&mut self.tx, w).await?;
        }
        self.tx.commit().await?;
        // After the commit: a session that sees it finds the documents.
        self.store.note_control(control);
        if self.quarantine_touched {
            self.store.quarantine_written();
        }
        if !units.is_empty() {
            let mut tree = self.store.inner.tree.write().expect("tree lock");
            let tree = Arc::make_mut(&mut tree);
            for u in &units {
                tree.upsert_unit(u);
            }
        }
        if let Some(last) = committed.last_seq() {
            self.store
                .inner
                .feed
                .send_replace(last + committed.rescoped as i64);
        }
        let mut cache = self.store.inner.cache.lock().expect("cache lock");
        if !rows.is_empty() {
            cache.committed();
        }
        for (id, open) in docs {
            let mut loaded = open.loaded;
            if let Some((row, snapshot_len, chunks_len)) = rows.get(&id) {
                loaded.row = Some(*row);
                loaded.snapshot_len = *snapshot_len;
                loaded.chunks_len = *chunks_len;
            }
            if loaded.row.is_some() {
                cache.put(&id, loaded);
            }
        }
        Ok(committed)
    }
}

/// Units whose arrival or move changes which nodes hold some documents.
struct Rescope {
    /// The unit and its subtree by the new links.
    subtree: Vec<UnitId>,
    /// The unit's new ancestors.
    ancestors: Vec<UnitId>,
    /// A move (or a parent arriving after its children): every campaign,
    /// proposal and award may now cover other nodes. A unit that is merely
    /// new only completes the scope of documents that name it.
    moved: bool,
}

/// The units whose documents change hands: a unit whose parent changed, a
/// unit that arrives after some of its children, and a unit that arrives
/// after documents it owns or is named in (their holders could not be
/// decided before: the scope rule walks the tree).
fn moved_subtrees(tree: &UnitTree, units: &[Unit]) -> Vec<Rescope> {
    let mut out = Vec::new();
    for u in units {
        let moved = match tree.get(&u.id) {
            Some(old) if old.parent == u.parent => continue,
            Some(_) => true,
            None => !tree.children(&u.id).is_empty(),
        };
        let mut subtree = vec![u.id.clone()];
        let mut seen: std::collections::HashSet<UnitId> = subtree.iter().cloned().collect();
        let mut i = 0;
        while i < subtree.len() {
            for c in tree.children(&subtree[i]) {
                if seen.insert(c.clone()) {
                    subtree.push(c.clone());
                }
            }
            i += 1;
        }
        let mut ancestors = Vec::new();
        if moved && let Some(p) = &u.parent {
            ancestors.push(p.clone());
            ancestors.extend(tree.ancestors(p));
        }
        out.push(Rescope {
            subtree,
            ancestors,
            moved,
        });
    }
    out
}

/// Puts back into the feed, each with a new sequence, the documents whose
/// holders changed: those owned in the rescoped subtrees, the campaigns,
/// proposals and awards that name a unit in them (after a move: all of
/// them), and the unit records of a moved unit's new ancestors. Documents
/// written by this commit (sequences from `first`) are in the feed already.
/// Unchanged documents cost a peer nothing: it already has their heads.
async fn rescope(
    conn: &mut sqlx::AnyConnection,
    scopes: &[Rescope],
    first: i64,
    now: i64,
) -> Result<usize> {
    let mut ids: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
    let all: Vec<&UnitId> = scopes.iter().flat_map(|r| &r.subtree).collect();
    let named: std::collections::HashSet<&str> = all.iter().map(|u| u.as_str()).collect();
    let everything = scopes.iter().any(|r| r.moved);
    let rows = sqlx::query(
        "SELECT id, addressed FROM docs WHERE kind IN ('campaign', 'proposal', 'award') \
         AND seq < $1",
    )
    .bind(first)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let addressed: String = r.get(1);
        if everything || addressed.split_whitespace().any(|a| named.contains(a)) {
            ids.insert(r.get::<i64, _>(0));
        }
    }
    for chunk in all.chunks(500) {
        let list = crate::db::in_list(chunk);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM docs WHERE owner IN ({list}) AND seq < $1"
        )))
        .bind(first)
        .fetch_all(&mut *conn)
        .await?;
        ids.extend(rows.iter().map(|r| r.get::<i64, _>(0)));
    }
    for a in scopes.iter().flat_map(|r| &r.ancestors) {
        let row = sqlx::query("SELECT id FROM docs WHERE doc_id = $1 AND seq < $2")
            .bind(DocId::Unit(a.clone()).to_string())
            .bind(first)
            .fetch_optional(&mut *conn)
            .await?;
        ids.extend(row.map(|r| r.get::<i64, _>(0)));
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let n = ids.len() as i64;
    let last: i64 =
        sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'feed' RETURNING value")
            .bind(n)
            .fetch_one(&mut *conn)
            .await?
            .get(0);
    for (i, id) in ids.iter().enumerate() {
        let seq = last - n + 1 + i as i64;
        sqlx::query("UPDATE docs SET seq = $1 WHERE id = $2")
            .bind(seq)
            .bind(*id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO feed (seq, doc, at) VALUES ($1, $2, $3)")
            .bind(seq)
            .bind(*id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    if everything {
        tracing::info!(
            documents = n,
            "units moved: documents put back into the feed"
        );
    }
    Ok(ids.len())
}

async fn write_peer(conn: &mut sqlx::AnyConnection, w: PeerWrite) -> Result<()> {
    match w {
        PeerWrite::Heads {
            peer,
            doc,
            heads,
            sync,
        } => {
            sqlx::query(
                "INSERT INTO peer_docs (peer, doc, heads, sync) \
                 SELECT $1, id, $3, $4 FROM docs WHERE doc_id = $2 \
                 ON CONFLICT (peer, doc) DO UPDATE SET heads = excluded.heads, sync = excluded.sync",
            )
            .bind(peer)
            .bind(doc.to_string())
            .bind(heads)
            .bind(sync)
            .execute(&mut *conn)
            .await?;
        }
        PeerWrite::Checkpoint {
            peer,
            unit,
            side,
            upto,
            now,
        } => {
            // A new row starts the other checkpoint at 0; an existing one
            // keeps it.
            let sql = match side {
                Side::Applied => {
                    "INSERT INTO peers (node_id, unit, applied_upto, acked_upto, last_seen) \
                     VALUES ($1, $2, $3, 0, $4) \
                     ON CONFLICT (node_id) DO UPDATE SET unit = excluded.unit, \
                     applied_upto = excluded.applied_upto, last_seen = excluded.last_seen"
                }
                Side::Acked => {
                    "INSERT INTO peers (node_id, unit, applied_upto, acked_upto, last_seen) \
                     VALUES ($1, $2, 0, $3, $4) \
                     ON CONFLICT (node_id) DO UPDATE SET unit = excluded.unit, \
                     acked_upto = excluded.acked_upto, last_seen = excluded.last_seen"
                }
            };
            sqlx::query(sql)
                .bind(peer)
                .bind(unit)
                .bind(upto)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
