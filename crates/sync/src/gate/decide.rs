//! An administrator's decision on many held changes at once (`hopluu
//! quarantine release --reason not-authorised --node hau-giang`): every
//! selected entry released in dependency order, or discarded with what
//! waits on it, in the caller's one transaction.
//!
//! A release applies, document by document, each selected change whose
//! past is here, round after round, so that a change waiting on another
//! selected one follows it; what waited and now passes the gate is then
//! settled as after any release ([`super::settle`]). A selected change
//! that still cannot be applied stays held, and the answer says why: it
//! depends on a change that is not here (held and not selected, or never
//! received), automerge refuses it, or its entry is damaged.

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::{Change, ChangeHash};
use hopluu_model::{DocId, UnitId, UnitTree};
use hopluu_store::WriteTx;
use hopluu_store::quarantine::{QuarantineEntry, QuarantineState};

use super::guard::apply_guarded;
use super::quarantine::{apply_held, entry_change, settle};
use crate::SyncError;

/// Why a selected entry is still held after a bulk decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StillHeld {
    /// It depends on a change that is not here: held and not selected
    /// (select it too, or release that first), or never received.
    MissingPast,
    /// automerge refuses to apply it.
    Refused,
    /// Its entry does not read: its document id or its change bytes.
    Damaged,
}

impl StillHeld {
    /// A stable code, for the answer and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            StillHeld::MissingPast => "missing-past",
            StillHeld::Refused => "refused",
            StillHeld::Damaged => "damaged",
        }
    }

    /// What a code of [`StillHeld::as_str`] means, for people.
    pub fn describe_code(code: &str) -> &'static str {
        [
            StillHeld::MissingPast,
            StillHeld::Refused,
            StillHeld::Damaged,
        ]
        .into_iter()
        .find(|w| w.as_str() == code)
        .map(StillHeld::describe)
        .unwrap_or("held")
    }

    /// What the code means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            StillHeld::MissingPast => {
                "depends on a change that is not here (held and not selected, or never received)"
            }
            StillHeld::Refused => "automerge refuses to apply it",
            StillHeld::Damaged => "its entry does not read",
        }
    }
}

/// A selected entry left held, and why in words (hashes and ids only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub id: i64,
    pub why: StillHeld,
    pub reason: String,
}

/// What a bulk release did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Selected entries applied.
    pub released: Vec<i64>,
    /// Other held changes that passed the gate once those were applied.
    pub passed: usize,
    /// Selected entries still held.
    pub left: Vec<Left>,
}

/// What a bulk discard did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Selected entries discarded.
    pub discarded: Vec<i64>,
    /// Entries not selected that waited on a discarded one, discarded
    /// with it.
    pub waiting: usize,
    /// Selected entries left held (a damaged document id).
    pub left: Vec<Left>,
}

/// The selected entries by document, in id order; those whose document
/// id does not read go to `left`.
fn by_doc(
    entries: Vec<QuarantineEntry>,
    left: &mut Vec<Left>,
) -> BTreeMap<DocId, Vec<QuarantineEntry>> {
    let mut docs: BTreeMap<DocId, Vec<QuarantineEntry>> = BTreeMap::new();
    for e in entries {
        match DocId::parse("doc_id", &e.doc) {
            Ok(id) => docs.entry(id).or_default().push(e),
            Err(err) => left.push(Left {
                id: e.id,
                why: StillHeld::Damaged,
                reason: format!("document id: {err}"),
            }),
        }
    }
    for list in docs.values_mut() {
        list.sort_by_key(|e| e.id);
    }
    docs
}

/// Releases every entry of `entries` (held, with their change bytes) on
/// an administrator's word (`by`), in dependency order, then settles
/// what waited on them.
pub async fn release_all(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    entries: Vec<QuarantineEntry>,
    by: &str,
    now: i64,
) -> Result<Released, SyncError> {
    let mut out = Released::default();
    for (id, entries) in by_doc(entries, &mut out.left) {
        let mut pending: Vec<(QuarantineEntry, Change)> = Vec::new();
        for e in entries {
            match entry_change(&e) {
                Some(c) => pending.push((e, c)),
                None => out.left.push(Left {
                    id: e.id,
                    why: StillHeld::Damaged,
                    reason: "its change does not read as an automerge change".into(),
                }),
            }
        }
        let mut doc = DocRelease {
            tx: &mut *tx,
            id: &id,
            by,
            now,
            applied: Vec::new(),
        };
        doc.release(tree, me, pending, &mut out).await?;
    }
    Ok(out)
}

/// One document's share of a bulk release.
struct DocRelease<'a, 't> {
    tx: &'a mut WriteTx<'t>,
    id: &'a DocId,
    by: &'a str,
    now: i64,
    /// What this release applied to the document: applied again should
    /// automerge refuse a later change (the refusal drops the document
    /// from the transaction, with everything applied to it before).
    applied: Vec<Change>,
}

impl DocRelease<'_, '_> {
    /// Rounds of [`DocRelease::round`], each followed by a settle of
    /// what waited, until neither moves anything; what is left is held
    /// for want of its past.
    async fn release(
        &mut self,
        tree: &UnitTree,
        me: &UnitId,
        mut pending: Vec<(QuarantineEntry, Change)>,
        out: &mut Released,
    ) -> Result<(), SyncError> {
        loop {
            let before = out.released.len();
            pending = self.round(pending, out).await?;
            if out.released.len() == before {
                break;
            }
            let passed = settle(self.tx, tree, me, self.id, self.now).await?;
            out.passed += passed;
            if passed == 0 || pending.is_empty() {
                break;
            }
        }
        // Settling may have applied some of them (they passed the gate
        // once their past was in): released with the rest.
        pending = self.round(pending, out).await?;
        let doc = self.tx.doc(self.id).await?;
        for (e, change) in pending {
            let missing = change
                .deps()
                .iter()
                .find(|d| !hopluu_model::am::knows(doc, d))
                .map(ToString::to_string)
                .unwrap_or_default();
            out.left.push(Left {
                id: e.id,
                why: StillHeld::MissingPast,
                reason: format!("depends on change {missing}, which is not here"),
            });
        }
        Ok(())
    }

    /// Applies, round after round, every pending change whose past is
    /// here; returns those whose past is still missing.
    async fn round(
        &mut self,
        mut pending: Vec<(QuarantineEntry, Change)>,
        out: &mut Released,
    ) -> Result<Vec<(QuarantineEntry, Change)>, SyncError> {
        let (tx, id) = (&mut *self.tx, self.id);
        loop {
            let mut progress = false;
            let mut rest = Vec::with_capacity(pending.len());
            for (e, change) in pending {
                let doc = tx.doc(id).await?;
                if hopluu_model::am::knows(doc, &e.hash) {
                    // Here already: applied by the settle of this release
                    // (then counted there too), or come by another path.
                    let decided = tx
                        .quarantine_decide(
                            id,
                            &e.hash,
                            QuarantineState::Released,
                            "arrived",
                            self.now,
                        )
                        .await?;
                    if !decided {
                        out.passed = out.passed.saturating_sub(1);
                    }
                    out.released.push(e.id);
                    progress = true;
                    continue;
                }
                if change
                    .deps()
                    .iter()
                    .any(|d| !hopluu_model::am::knows(doc, d))
                {
                    rest.push((e, change));
                    continue;
                }
                match apply_held(tx, id, change.clone(), &e.hash, self.by, self.now).await? {
                    Ok(()) => {
                        self.applied.push(change);
                        out.released.push(e.id);
                        progress = true;
                    }
                    Err(reason) => {
                        if !self.applied.is_empty() {
                            apply_guarded(tx.doc(id).await?, id, &self.applied).map_err(
                                |reason| SyncError::NotReleasable {
                                    id: e.id,
                                    reason: format!(
                                        "the changes released before it no longer apply: {reason}"
                                    ),
                                },
                            )?;
                        }
                        out.left.push(Left {
                            id: e.id,
                            why: StillHeld::Refused,
                            reason,
                        });
                    }
                }
            }
            pending = rest;
            if !progress || pending.is_empty() {
                return Ok(pending);
            }
        }
    }
}

/// Discards every entry of `entries` (held) and every held change that
/// waits on one of them, recorded as decided by `by`.
pub async fn discard_all(
    tx: &mut WriteTx<'_>,
    entries: Vec<QuarantineEntry>,
    by: &str,
    now: i64,
) -> Result<Discarded, SyncError> {
    let mut out = Discarded::default();
    for (id, entries) in by_doc(entries, &mut out.left) {
        // Who waits on whom, among the document's held changes.
        let mut waiting: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
        for e in tx.quarantine_held(&id).await? {
            if let Some(w) = e.waits_for {
                waiting.entry(w).or_default().push(e.hash);
            }
        }
        let selected: HashMap<ChangeHash, i64> = entries.iter().map(|e| (e.hash, e.id)).collect();
        let mut gone: Vec<ChangeHash> = entries.iter().map(|e| e.hash).collect();
        let mut seen: HashSet<ChangeHash> = gone.iter().copied().collect();
        while let Some(h) = gone.pop() {
            if tx
                .quarantine_decide(&id, &h, QuarantineState::Discarded, by, now)
                .await?
            {
                match selected.get(&h) {
                    Some(entry) => out.discarded.push(*entry),
                    None => out.waiting += 1,
                }
            }
            for w in waiting.get(&h).into_iter().flatten() {
                if seen.insert(*w) {
                    gone.push(*w);
                }
            }
        }
    }
    out.discarded.sort_unstable();
    Ok(out)
}
