//! The node's state for its administrator, and the changes its replication
//! gate holds in quarantine: counts, listing, release and discard.
//!
//! Releasing and discarding go through `hopluu_sync::gate`, in one store
//! transaction each, recorded with the administrator's identity; by
//! filter rather than by id in [`super::quarantine`].

use hopluu_model::{DocId, ModelError};
use hopluu_store::quarantine::{QuarantineEntry, QuarantineFilter, QuarantineState};
use hopluu_sync::SyncError;

use super::quarantine::QuarantineSelect;
use super::{App, Result};
use crate::NodeError;

/// Entries per page when the request asks for more (or for 0: 100).
const MAX_LIST: u32 = 1000;

/// A decision's note goes to the node's log: keep it short.
pub const MAX_NOTE_CHARS: usize = 500;

/// What any caller may learn of this node's store (`GetNodeInfo`): cheap
/// reads only, as peers and monitors ask often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    pub feed_position: u64,
    pub documents: u64,
}

/// What `hopluu status` counts at this node: the summary, the quarantine
/// and the conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCounts {
    pub summary: NodeSummary,
    pub quarantine_held: u64,
    pub quarantine_released: u64,
    pub quarantine_discarded: u64,
    /// Held changes an old host set aside (their unit left its subtree).
    pub quarantine_archived: u64,
    pub conflicts: u64,
}

/// Which quarantine entries to list.
#[derive(Debug, Clone, Default)]
pub struct QuarantineQuery<'a> {
    pub state: Option<QuarantineState>,
    /// Empty: every document.
    pub doc_id: &'a str,
    /// The other filters ([`QuarantineSelect`]; its `doc_id` is this
    /// query's).
    pub node: &'a str,
    pub reason: &'a str,
    pub decision: &'a str,
    pub after_id: i64,
    pub limit: u32,
}

/// An administrator's decision on a held change, as taken.
#[derive(Debug, Clone)]
pub struct QuarantineDecision {
    /// The entry as it stands after the decision.
    pub entry: QuarantineEntry,
    /// Changes released or discarded with it (those waiting on it too).
    pub changes: usize,
}

/// Release or discard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decide {
    Release,
    Discard,
}

impl Decide {
    pub(crate) fn rpc(self) -> &'static str {
        match self {
            Decide::Release => "ReleaseQuarantine",
            Decide::Discard => "DiscardQuarantine",
        }
    }
}

/// A note that goes to the log, checked (`note`).
pub fn check_note(note: &str) -> Result<()> {
    let n = note.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(NodeError::Refused(ModelError::invalid(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters, got {n}"),
        )));
    }
    Ok(())
}

/// A listing's filter: the document (empty: every one) and the id to page
/// after, checked (`doc_id`, `after_id`).
pub fn list_filter(doc_id: &str, after_id: i64) -> Result<Option<DocId>> {
    if after_id < 0 {
        return Err(NodeError::Refused(ModelError::invalid(
            "after_id",
            format!("must not be negative, got {after_id}"),
        )));
    }
    match doc_id.trim() {
        "" => Ok(None),
        d => Ok(Some(DocId::parse("doc_id", d)?)),
    }
}

/// Errors of the gate's release and discard: a state the administrator
/// must resolve first is a refusal; anything else is the gate's.
pub(crate) fn gate_error(e: SyncError) -> NodeError {
    match e {
        SyncError::Store(s) => s.into(),
        e @ SyncError::NotReleasable { .. } => {
            NodeError::Refused(ModelError::precondition("id", e.to_string()))
        }
        other => NodeError::Gate(other),
    }
}

impl App {
    /// The store's backend, feed position and document count.
    pub async fn summary(&self) -> Result<NodeSummary> {
        Ok(NodeSummary {
            database: self.store.backend().as_str(),
            feed_position: self.store.feed_position().await?.max(0) as u64,
            documents: self.store.doc_count().await?.max(0) as u64,
        })
    }

    /// The counts `hopluu status` shows.
    pub async fn counts(&self) -> Result<NodeCounts> {
        let q = self.store.quarantine_counts().await?;
        let count = |s| q.get(&s).copied().unwrap_or(0).max(0) as u64;
        Ok(NodeCounts {
            summary: self.summary().await?,
            quarantine_held: count(QuarantineState::Held),
            quarantine_released: count(QuarantineState::Released),
            quarantine_discarded: count(QuarantineState::Discarded),
            quarantine_archived: count(QuarantineState::Archived),
            conflicts: self.store.conflict_count(None).await?.max(0) as u64,
        })
    }

    /// The feed position: the sequence of this node's latest commit.
    pub async fn feed_position(&self) -> Result<i64> {
        Ok(self.store.feed_position().await?)
    }

    /// Entries matching every filter of `q`, oldest first, paged; a bad
    /// filter is refused naming its field.
    pub async fn quarantine_list(&self, q: &QuarantineQuery<'_>) -> Result<Vec<QuarantineEntry>> {
        list_filter(q.doc_id, q.after_id)?;
        let filter = self
            .quarantine_filter(&QuarantineSelect {
                node: q.node,
                reason: q.reason,
                doc_id: q.doc_id,
                decision: q.decision,
            })
            .await?;
        Ok(self
            .store
            .quarantine_list(&QuarantineFilter {
                state: q.state,
                after_id: q.after_id,
                limit: q.limit.min(MAX_LIST),
                ..filter
            })
            .await?)
    }

    /// The entry `id`, which must exist.
    pub async fn quarantine_entry(&self, id: i64) -> Result<QuarantineEntry> {
        // `id: quarantine entry 7 not found`: the message names the field.
        self.store
            .quarantine_get(id)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("id: quarantine entry", id)))
    }

    /// Releases (applies) or discards held entry `id` and what waits on
    /// it, in one transaction, recorded as decided by `operator`; `note`
    /// goes to the log.
    pub async fn decide_quarantine(
        &self,
        decide: Decide,
        id: i64,
        operator: &str,
        note: &str,
    ) -> Result<QuarantineDecision> {
        self.decide_one(decide, id, operator, note, false).await
    }

    /// [`App::decide_quarantine`], or for a dry run the same transaction
    /// dropped (the entry is returned as it stands, still held).
    pub(crate) async fn decide_one(
        &self,
        decide: Decide,
        id: i64,
        operator: &str,
        note: &str,
        dry_run: bool,
    ) -> Result<QuarantineDecision> {
        check_note(note)?;
        let entry = self.held(id, decide.rpc()).await?;
        let now = self.clock.now_millis();
        let mut tx = self.store.begin().await?;
        let changes = match decide {
            Decide::Release => {
                let tree = self.store.tree();
                hopluu_sync::gate::release(&mut tx, &tree, &self.unit, &entry, operator, now)
                    .await
                    .map_err(gate_error)?
            }
            Decide::Discard => hopluu_sync::gate::discard(&mut tx, &entry, operator, now)
                .await
                .map_err(gate_error)?,
        };
        if dry_run {
            drop(tx);
        } else {
            tx.commit().await?;
        }
        tracing::info!(
            caller = operator,
            rpc = decide.rpc(),
            id = entry.id,
            doc = %entry.doc,
            change = %entry.hash,
            changes,
            dry_run,
            note,
            "quarantine decision"
        );
        Ok(QuarantineDecision {
            entry: self.quarantine_entry(id).await?,
            changes,
        })
    }

    /// The entry `id`, which must exist and be held (an archived one is
    /// held too: an administrator may still release or discard it).
    async fn held(&self, id: i64, rpc: &str) -> Result<QuarantineEntry> {
        let entry = self.quarantine_entry(id).await?;
        if !matches!(
            entry.state,
            QuarantineState::Held | QuarantineState::Archived
        ) {
            let by = entry
                .decided_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            return Err(NodeError::Refused(ModelError::precondition(
                "id",
                format!(
                    "quarantine entry {id} is {}{by}, not held: {rpc} takes held entries only",
                    entry.state.as_str()
                ),
            )));
        }
        Ok(entry)
    }
}
