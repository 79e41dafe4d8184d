//! Quarantined changes: changes received from a peer that failed the
//! authority check, or that depend on one that did. They are stored with
//! the reason, never applied on their own, and wait for an administrator
//! to release or discard them (`hopluu quarantine`), one by one or every
//! held entry a [`QuarantineFilter`] selects. Writes go through
//! [`WriteTx`], in the transaction of the batch that brought the change;
//! a commit that wrote the quarantine moves
//! [`Store::quarantine_generation`].
//!
//! What a node holds of one peer's changes ([`HeldFrom`]) is what it tells
//! that peer in its acknowledgements: held changes are sent, but not
//! delivered.

use std::collections::HashMap;

use automerge::ChangeHash;
use hopluu_model::DocId;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError, WriteTx};

/// Where a quarantined change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuarantineState {
    /// Waiting for a decision.
    Held,
    /// Applied by an administrator, or applied after it arrived again by
    /// a path that could vouch for it.
    Released,
    /// Dropped by an administrator: the same change arriving again is
    /// dropped on sight.
    Discarded,
    /// Held in a document this node keeps only as an archive (its unit
    /// left this node's subtree by a decision this node sealed): nobody
    /// here need act on it, and it does not count as undelivered. A state
    /// of what the node reports only: the gate and the sync protocol see
    /// a held change (column `archived_by` set), judge it as any, and it
    /// shows as held again if the unit comes back.
    Archived,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Held => "held",
            QuarantineState::Released => "released",
            QuarantineState::Discarded => "discarded",
            QuarantineState::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<QuarantineState> {
        match s {
            "held" => Some(QuarantineState::Held),
            "released" => Some(QuarantineState::Released),
            "discarded" => Some(QuarantineState::Discarded),
            "archived" => Some(QuarantineState::Archived),
            _ => None,
        }
    }
}

/// A change to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuarantine {
    pub doc: DocId,
    pub hash: ChangeHash,
    pub origin_node: String,
    pub origin_unit: String,
    pub peer_node: String,
    pub peer_unit: String,
    /// Stable code: `not-authorised`, `outside-sender`, `forged-skeleton`,
    /// `unknown-actor`, `unknown-unit`, `waits` (and `refused` once
    /// automerge refused it on release).
    pub code: String,
    /// Explanation for the administrator (unit and node ids only).
    pub reason: String,
    /// For `waits`: the held change this one depends on.
    pub waits_for: Option<ChangeHash>,
    /// When the change was made, by its maker's clock (its automerge
    /// time, ms since the epoch); 0 when it names none.
    pub made_at: i64,
    /// The change as received (an automerge change chunk).
    pub change: Vec<u8>,
}

/// A stored quarantine entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineEntry {
    pub id: i64,
    pub doc: String,
    pub hash: ChangeHash,
    pub origin_node: String,
    pub origin_unit: String,
    pub peer_node: String,
    pub peer_unit: String,
    pub code: String,
    pub reason: String,
    pub waits_for: Option<ChangeHash>,
    /// The change's bytes (absent once discarded or when not asked for).
    pub change: Option<Vec<u8>>,
    pub change_len: i64,
    pub state: QuarantineState,
    pub received_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    /// When the change was made, by its maker's clock; 0: unknown.
    pub made_at: i64,
}

/// Which entries to list, release or discard: every field that is set
/// must match.
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    /// Only entries in this state (all states when `None`).
    pub state: Option<QuarantineState>,
    pub doc: Option<String>,
    /// Only changes made by this node (the node their actor names).
    pub origin_node: Option<String>,
    /// Only entries held for this reason code.
    pub code: Option<String>,
    /// Only entries of the documents this reorganisation decision sealed
    /// (its rows of `decision_seals`).
    pub decision: Option<String>,
    /// Entries with an id above this (paging).
    pub after_id: i64,
    pub limit: u32,
}

/// An entry's state as reported: a held change an old host set aside
/// reads as `archived`.
const STATE: &str = "CASE WHEN state = 'held' AND archived_by IS NOT NULL THEN 'archived' \
                     ELSE state END";

impl QuarantineFilter {
    /// The conditions, on binds `$1` to `$6` ([`QuarantineFilter::bind`]).
    const WHERE: &str = "id > $1 \
         AND ($2 = '' OR (CASE WHEN state = 'held' AND archived_by IS NOT NULL THEN 'archived' \
         ELSE state END) = $2) AND ($3 = '' OR doc_id = $3) \
         AND ($4 = '' OR origin_node = $4) AND ($5 = '' OR code = $5) \
         AND ($6 = '' OR doc_id IN (SELECT doc_id FROM decision_seals WHERE decision = $6))";

    /// The entries' query, oldest first, at most `$7`, with the change
    /// bytes when `with_change`.
    fn sql(with_change: bool) -> String {
        let change = if with_change { ", change" } else { "" };
        format!(
            "SELECT {COLUMNS}{change} FROM quarantine WHERE {} ORDER BY id LIMIT $7",
            Self::WHERE
        )
    }

    fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        q.bind(self.after_id)
            .bind(self.state.map(QuarantineState::as_str).unwrap_or(""))
            .bind(text(&self.doc))
            .bind(text(&self.origin_node))
            .bind(text(&self.code))
            .bind(text(&self.decision))
    }

    /// The same filter on held entries only.
    fn held(&self) -> QuarantineFilter {
        QuarantineFilter {
            state: Some(QuarantineState::Held),
            ..self.clone()
        }
    }
}

/// What a node holds of one peer's changes: the held entries that peer
/// sent, the documents they are to, and when the oldest was made (its
/// maker's time, or when it arrived here if that is earlier or unknown;
/// 0 when none is held).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldFrom {
    pub changes: u64,
    pub docs: u64,
    pub oldest_millis: i64,
}

const COLUMNS: &str = "id, doc_id, hash, origin_node, origin_unit, peer_node, peer_unit, code, \
                       reason, waits_for, change_len, \
                       CASE WHEN state = 'held' AND archived_by IS NOT NULL THEN 'archived' \
                       ELSE state END, \
                       received_at, decided_at, COALESCE(archived_by, decided_by), made_at";

/// [`HeldFrom`] by peer; the caller adds a `peer_node` condition or not.
const HELD_FROM: &str = "SELECT peer_node, COUNT(*), COUNT(DISTINCT doc_id), \
     MIN(CASE WHEN made_at > 0 AND made_at < received_at THEN made_at ELSE received_at END) \
     FROM quarantine WHERE state = 'held' AND archived_by IS NULL";

fn held_from(r: &sqlx::any::AnyRow) -> (String, HeldFrom) {
    (
        r.get(0),
        HeldFrom {
            changes: r.get::<i64, _>(1).max(0) as u64,
            docs: r.get::<i64, _>(2).max(0) as u64,
            oldest_millis: r.get::<Option<i64>, _>(3).unwrap_or(0).max(0),
        },
    )
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        doc: "quarantine".into(),
        reason,
    }
}

fn hash_of(bytes: &[u8]) -> Result<ChangeHash> {
    ChangeHash::try_from(bytes).map_err(|e| corrupt(format!("bad change hash: {e}")))
}

fn entry(r: &sqlx::any::AnyRow, with_change: bool) -> Result<QuarantineEntry> {
    let state: String = r.get(11);
    let waits: Option<Vec<u8>> = r.get(9);
    Ok(QuarantineEntry {
        id: r.get(0),
        doc: r.get(1),
        hash: hash_of(&r.get::<Vec<u8>, _>(2))?,
        origin_node: r.get(3),
        origin_unit: r.get(4),
        peer_node: r.get(5),
        peer_unit: r.get(6),
        code: r.get(7),
        reason: r.get(8),
        waits_for: waits.as_deref().map(hash_of).transpose()?,
        change: if with_change { r.get(16) } else { None },
        change_len: r.get(10),
        state: QuarantineState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
        received_at: r.get(12),
        decided_at: r.get(13),
        decided_by: r.get(14),
        made_at: r.get(15),
    })
}

impl Store {
    /// Entries matching `filter`, oldest first, without the change bytes.
    pub async fn quarantine_list(&self, filter: &QuarantineFilter) -> Result<Vec<QuarantineEntry>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let rows = filter
            .bind(sqlx::query(AssertSqlSafe(QuarantineFilter::sql(false))))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| entry(r, false)).collect()
    }

    /// What this node holds of `peer`'s changes.
    pub async fn held_from(&self, peer: &str) -> Result<HeldFrom> {
        if !self.quarantine_hint() {
            return Ok(HeldFrom::default());
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "{HELD_FROM} AND peer_node = $1 GROUP BY peer_node"
        )))
        .bind(peer)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(held_from).unwrap_or_default().1)
    }

    /// What this node holds of each peer's changes (peers it holds none
    /// of are absent).
    pub async fn held_by_peer(&self) -> Result<HashMap<String, HeldFrom>> {
        if !self.quarantine_hint() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(AssertSqlSafe(format!("{HELD_FROM} GROUP BY peer_node")))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(held_from).collect())
    }

    /// One entry, with its change bytes.
    pub async fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, change FROM quarantine WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| entry(r, true)).transpose()
    }

    /// Entries per state.
    pub async fn quarantine_counts(&self) -> Result<HashMap<QuarantineState, i64>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {STATE}, COUNT(*) FROM quarantine GROUP BY 1"
        )))
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            if let Some(s) = QuarantineState::parse(&r.get::<String, _>(0)) {
                out.insert(s, r.get::<i64, _>(1));
            }
        }
        Ok(out)
    }

    /// Documents with changes the gate holds, archived ones included (at
    /// most `limit`).
    pub async fn quarantine_held_docs(&self, limit: u32) -> Result<Vec<DocId>> {
        self.docs_where("state = 'held'", limit).await
    }

    /// Documents with changes in `state` as reported (at most `limit`).
    pub async fn quarantine_docs(&self, state: QuarantineState, limit: u32) -> Result<Vec<DocId>> {
        let held = "state = 'held'";
        match state {
            QuarantineState::Held => {
                self.docs_where(&format!("{held} AND archived_by IS NULL"), limit)
                    .await
            }
            QuarantineState::Archived => {
                self.docs_where(&format!("{held} AND archived_by IS NOT NULL"), limit)
                    .await
            }
            QuarantineState::Released => self.docs_where("state = 'released'", limit).await,
            QuarantineState::Discarded => self.docs_where("state = 'discarded'", limit).await,
        }
    }

    async fn docs_where(&self, condition: &str, limit: u32) -> Result<Vec<DocId>> {
        if !self.quarantine_hint() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT DISTINCT doc_id FROM quarantine WHERE {condition} ORDER BY doc_id LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(|e| corrupt(e.to_string()))
            })
            .collect()
    }

    /// The held and discarded changes of these documents, by hash: what a
    /// receiver must not apply, and what it need not ask for again.
    /// Cheap when nothing was ever quarantined.
    pub async fn quarantined_in(&self, docs: &[DocId]) -> Result<QuarantinedIn> {
        if docs.is_empty() || !self.quarantine_hint() {
            return Ok(HashMap::new());
        }
        quarantined_in(self.pool(), docs).await
    }
}

/// Held and discarded changes by document, then by hash.
pub type QuarantinedIn = HashMap<DocId, HashMap<ChangeHash, QuarantineState>>;

async fn quarantined_in<'c, E>(conn: E, docs: &[DocId]) -> Result<QuarantinedIn>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let mut out: QuarantinedIn = HashMap::new();
    let keys: Vec<String> = docs.iter().map(DocId::to_string).collect();
    let list = crate::db::placeholders(keys.len());
    let sql = format!(
        "SELECT doc_id, hash, state FROM quarantine \
         WHERE state <> 'released' AND doc_id IN ({list})"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for k in &keys {
        q = q.bind(k);
    }
    for r in q.fetch_all(conn).await? {
        let id =
            DocId::parse("doc_id", &r.get::<String, _>(0)).map_err(|e| corrupt(e.to_string()))?;
        let state: String = r.get(2);
        let state = QuarantineState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?;
        out.entry(id)
            .or_default()
            .insert(hash_of(&r.get::<Vec<u8>, _>(1))?, state);
    }
    Ok(out)
}

impl WriteTx<'_> {
    /// [`Store::quarantined_in`], read inside this transaction: what a
    /// batch's gate must know, as of the moment it holds the writer lock
    /// (a concurrent session may have quarantined a change of the same
    /// document just before).
    pub async fn quarantined_in(&mut self, docs: &[DocId]) -> Result<QuarantinedIn> {
        if docs.is_empty() || !self.store().quarantine_hint() {
            return Ok(HashMap::new());
        }
        quarantined_in(self.conn(), docs).await
    }

    /// The held entries `filter` selects (its state is ignored), with
    /// their change bytes, oldest first, at most `limit`: read under the
    /// writer lock, so a decision on them sees them as they are.
    pub async fn quarantine_matching(
        &mut self,
        filter: &QuarantineFilter,
        limit: u32,
    ) -> Result<Vec<QuarantineEntry>> {
        let rows = filter
            .held()
            .bind(sqlx::query(AssertSqlSafe(QuarantineFilter::sql(true))))
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(|r| entry(r, true)).collect()
    }

    /// How many held entries `filter` selects (its state is ignored).
    pub async fn quarantine_matching_count(&mut self, filter: &QuarantineFilter) -> Result<u64> {
        let n: i64 = filter
            .held()
            .bind(sqlx::query(AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM quarantine WHERE {}",
                QuarantineFilter::WHERE
            ))))
            .fetch_one(self.conn())
            .await?
            .get(0);
        Ok(n.max(0) as u64)
    }

    /// Quarantines a change (a change already quarantined for the same
    /// document is left as it is). Returns whether a row was added.
    pub async fn quarantine(&mut self, q: &NewQuarantine, now: i64) -> Result<bool> {
        self.store().set_quarantine_hint();
        self.quarantine_touched = true;
        let done = sqlx::query(
            "INSERT INTO quarantine (doc_id, hash, origin_node, origin_unit, peer_node, peer_unit, \
             code, reason, waits_for, change, change_len, state, received_at, made_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'held', $12, $13) \
             ON CONFLICT (doc_id, hash) DO NOTHING",
        )
        .bind(q.doc.to_string())
        .bind(q.hash.0.to_vec())
        .bind(&q.origin_node)
        .bind(&q.origin_unit)
        .bind(&q.peer_node)
        .bind(&q.peer_unit)
        .bind(&q.code)
        .bind(&q.reason)
        .bind(q.waits_for.map(|h| h.0.to_vec()))
        .bind(q.change.clone())
        .bind(q.change.len() as i64)
        .bind(now)
        .bind(q.made_at.max(0))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Held entries of one document, with their change bytes, oldest first.
    pub async fn quarantine_held(&mut self, doc: &DocId) -> Result<Vec<QuarantineEntry>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS}, change FROM quarantine WHERE doc_id = $1 AND state = 'held' \
             ORDER BY id"
        )))
        .bind(doc.to_string())
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| entry(r, true)).collect()
    }

    /// Records a decision on a held entry. Discarding drops the change's
    /// bytes but keeps the row, so the change is recognised if it comes
    /// again.
    pub async fn quarantine_decide(
        &mut self,
        doc: &DocId,
        hash: &ChangeHash,
        state: QuarantineState,
        by: &str,
        now: i64,
    ) -> Result<bool> {
        let sql = match state {
            QuarantineState::Discarded => {
                "UPDATE quarantine SET state = $1, decided_at = $2, decided_by = $3, change = NULL \
                 WHERE doc_id = $4 AND hash = $5 AND state = 'held'"
            }
            _ => {
                "UPDATE quarantine SET state = $1, decided_at = $2, decided_by = $3 \
                 WHERE doc_id = $4 AND hash = $5 AND state = 'held'"
            }
        };
        let done = sqlx::query(sql)
            .bind(state.as_str())
            .bind(now)
            .bind(by)
            .bind(doc.to_string())
            .bind(hash.0.to_vec())
            .execute(self.conn())
            .await?;
        self.quarantine_touched |= done.rows_affected() > 0;
        Ok(done.rows_affected() > 0)
    }

    /// Reports every held entry of `doc` as [`QuarantineState::Archived`]
    /// (the document left this node's subtree; `by` names the decision).
    /// Returns how many.
    pub async fn quarantine_archive(&mut self, doc: &DocId, by: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE quarantine SET archived_by = $1 \
             WHERE doc_id = $2 AND state = 'held' AND archived_by IS NULL",
        )
        .bind(by)
        .bind(doc.to_string())
        .execute(self.conn())
        .await?;
        self.quarantine_touched |= done.rows_affected() > 0;
        Ok(done.rows_affected())
    }

    /// Reports every archived entry of `doc` as held again (its unit came
    /// back into this node's subtree). Returns how many.
    pub async fn quarantine_unarchive(&mut self, doc: &DocId) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE quarantine SET archived_by = NULL \
             WHERE doc_id = $1 AND state = 'held' AND archived_by IS NOT NULL",
        )
        .bind(doc.to_string())
        .execute(self.conn())
        .await?;
        self.quarantine_touched |= done.rows_affected() > 0;
        Ok(done.rows_affected())
    }

    /// Gives a held entry a new reason (a change that waited on another
    /// and, now free of it, fails the check in its own right).
    pub async fn quarantine_recode(
        &mut self,
        doc: &DocId,
        hash: &ChangeHash,
        code: &str,
        reason: &str,
    ) -> Result<()> {
        self.quarantine_touched = true;
        sqlx::query(
            "UPDATE quarantine SET code = $1, reason = $2, waits_for = NULL \
             WHERE doc_id = $3 AND hash = $4 AND state = 'held'",
        )
        .bind(code)
        .bind(reason)
        .bind(doc.to_string())
        .bind(hash.0.to_vec())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
