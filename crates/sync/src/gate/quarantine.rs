//! The quarantine after the fact: settling held changes once their past
//! or their maker's unit arrives, and an administrator's release or
//! discard.

use automerge::{Change, ChangeHash};
use hopluu_model::{DocId, DocKind, DocMeta, UnitId, UnitTree};
use hopluu_store::quarantine::{QuarantineEntry, QuarantineState};
use hopluu_store::{Store, WriteTx};

use super::guard::apply_guarded;
use super::policy::{Covered, Sender, check_sealed};
use crate::SyncError;

/// Goes over the held changes of one document after it changed: a change
/// that is now here (it came by another path) is marked released, and a
/// change that waited for it is checked in its own right and applied if
/// it passes. Returns how many changes it applied.
pub async fn settle(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    now: i64,
) -> Result<usize, SyncError> {
    settle_with(tx, tree, me, id, now, false).await
}

/// After the unit tree changed: every held change is checked again, and
/// those that pass now (their maker's unit arrived after them, say) are
/// applied. Runs in its own transaction.
pub async fn settle_all(store: &Store, me: &UnitId, now: i64) -> Result<usize, SyncError> {
    let mut n = 0;
    // A decision or node record released here brings seals that count
    // only once committed (their projection): then once more, bounded.
    for _ in 0..3 {
        let (applied, control) = settle_all_once(store, me, now).await?;
        n += applied;
        if !control {
            break;
        }
    }
    if n > 0 {
        tracing::info!(
            changes = n,
            "held changes passed the gate after the unit tree changed"
        );
    }
    Ok(n)
}

/// One pass of [`settle_all`], in one transaction: the changes applied,
/// and whether a decision or a node record was among them.
async fn settle_all_once(store: &Store, me: &UnitId, now: i64) -> Result<(usize, bool), SyncError> {
    let docs = store.quarantine_held_docs(10_000).await?;
    if docs.is_empty() {
        return Ok((0, false));
    }
    let mut tree = store.tree();
    let mut tx = store.begin().await?;
    let mut n = 0;
    let mut control = false;
    // Unit records released here let further changes pass: go round
    // until a round releases nothing.
    loop {
        let mut progress = false;
        for id in &docs {
            let applied = settle_with(&mut tx, &tree, me, id, now, true).await?;
            if applied > 0 {
                n += applied;
                progress = true;
                control |= matches!(id.kind(), DocKind::Decision | DocKind::Node);
                if let DocId::Unit(_) = id
                    && let Ok(unit) = hopluu_model::unit::read(id, tx.doc(id).await?)
                {
                    std::sync::Arc::make_mut(&mut tree).upsert_unit(&unit);
                }
            }
        }
        if !progress {
            break;
        }
    }
    drop(tree);
    tx.commit().await?;
    Ok((n, control))
}

async fn settle_with(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    now: i64,
    all: bool,
) -> Result<usize, SyncError> {
    let mut applied = 0;
    // The changes this settle applied: a later one automerge refuses drops
    // the document from the transaction, and these go back on (their
    // entries are marked released already).
    let mut done: Vec<Change> = Vec::new();
    let sealed = tx
        .sealed_heads(std::slice::from_ref(id))
        .await?
        .remove(id)
        .unwrap_or_default();
    loop {
        let entries = tx.quarantine_held(id).await?;
        // Parsed for their dependencies only where a decision sealed
        // the document (most settles have no seal to follow).
        let changes: Vec<(ChangeHash, Change)> = if sealed.is_empty() {
            Vec::new()
        } else {
            entries
                .iter()
                .filter_map(|e| entry_change(e).map(|c| (e.hash, c)))
                .collect()
        };
        let covered = Covered::of(&sealed, changes.iter().map(|(h, c)| (*h, c.deps())));
        // A sealed document's held changes are all judged again: one held
        // before the seal's head that vouches for it was at hand may pass
        // now that the head is (held or not).
        let all = all || !sealed.is_empty();
        // A sealed document none of which is here yet (a new host's first
        // sight of a moved unit's record, its creation by an old host in
        // another province held): judged against the owner its held
        // changes claim, as a new document's first update is.
        let claimed = if changes.is_empty() || !tx.doc(id).await?.get_heads().is_empty() {
            None
        } else {
            claimed_owner_of(id, changes.iter().map(|(_, c)| c.clone()).collect())
        };
        let mut progress = false;
        for e in entries {
            let doc = tx.doc(id).await?;
            if hopluu_model::am::knows(doc, &e.hash) {
                tx.quarantine_decide(id, &e.hash, QuarantineState::Released, "arrived", now)
                    .await?;
                progress = true;
                continue;
            }
            if (e.code != "waits" && !all) || e.code == "refused" {
                continue;
            }
            let Some(change) = entry_change(&e) else {
                continue;
            };
            if change
                .deps()
                .iter()
                .any(|d| !hopluu_model::am::knows(doc, d))
            {
                continue;
            }
            let sender = sender_of(tree, me, &e);
            let owner = DocMeta::read(id.clone(), doc)
                .ok()
                .map(|m| m.owner)
                .or_else(|| claimed.clone());
            match check_sealed(
                tree,
                &sender,
                id,
                owner.as_ref(),
                change.actor_id(),
                &e.hash,
                &covered,
            ) {
                Ok(()) => {
                    if let Err(reason) =
                        apply_held(tx, id, change.clone(), &e.hash, "dependency released", now)
                            .await?
                    {
                        // Held for good: automerge cannot apply it, or it
                        // breaks the document's shape.
                        let (code, reason) = match reason.strip_prefix(INVALID) {
                            Some(r) => ("invalid-value", r.to_owned()),
                            None => ("refused", reason),
                        };
                        tx.quarantine_recode(id, &e.hash, code, &reason).await?;
                        if !done.is_empty() {
                            apply_guarded(tx.doc(id).await?, id, &done).map_err(|reason| {
                                SyncError::NotReleasable {
                                    id: e.id,
                                    reason: format!(
                                        "the changes released before it no longer apply: {reason}"
                                    ),
                                }
                            })?;
                        }
                        continue;
                    }
                    done.push(change);
                    applied += 1;
                    progress = true;
                }
                Err(hold) => {
                    if hold.code != e.code || hold.reason != e.reason {
                        tx.quarantine_recode(id, &e.hash, hold.code, &hold.reason)
                            .await?;
                    }
                }
            }
        }
        if !progress {
            return Ok(applied);
        }
    }
}

/// The owner `changes` give document `id` (None when they do not apply
/// or leave no readable document).
fn claimed_owner_of(id: &DocId, changes: Vec<Change>) -> Option<UnitId> {
    let mut scratch = automerge::Automerge::new();
    super::guarded(|| scratch.apply_changes(changes))
        .ok()?
        .ok()?;
    DocMeta::read(id.clone(), &scratch).ok().map(|m| m.owner)
}

pub(super) fn entry_change(e: &QuarantineEntry) -> Option<Change> {
    Change::try_from(e.change.as_deref()?).ok()
}

/// The sender of a quarantined change, as it was when it came.
fn sender_of(tree: &UnitTree, me: &UnitId, e: &QuarantineEntry) -> Sender {
    let unit = UnitId::parse("peer_unit", &e.peer_unit).unwrap_or_else(|_| me.clone());
    Sender {
        node: e.peer_node.clone(),
        is_child: unit != *me && tree.is_within(&unit, me),
        unit,
    }
}

/// The document a held entry is of: a damaged entry when its id does not
/// parse.
fn entry_doc(entry: &QuarantineEntry) -> Result<DocId, SyncError> {
    DocId::parse("doc_id", &entry.doc).map_err(|e| SyncError::DamagedEntry {
        id: entry.id,
        reason: e.to_string(),
    })
}

/// Applies a held change on an administrator's word (`by`), then whatever
/// waited on it and now passes. Returns the changes applied.
pub async fn release(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    entry: &QuarantineEntry,
    by: &str,
    now: i64,
) -> Result<usize, SyncError> {
    let id = entry_doc(entry)?;
    let change = entry_change(entry).ok_or_else(|| SyncError::DamagedEntry {
        id: entry.id,
        reason: "it holds no change".into(),
    })?;
    let doc = tx.doc(&id).await?;
    if let Some(missing) = change
        .deps()
        .iter()
        .find(|d| !hopluu_model::am::knows(doc, d))
    {
        return Err(SyncError::NotReleasable {
            id: entry.id,
            reason: format!("depends on change {missing}, which is not here: release that first"),
        });
    }
    apply_held(tx, &id, change, &entry.hash, by, now)
        .await?
        .map_err(|reason| SyncError::NotReleasable {
            id: entry.id,
            reason,
        })?;
    Ok(1 + settle(tx, tree, me, &id, now).await?)
}

/// How [`apply_held`]'s reason begins when the change breaks the shape
/// of its document's kind ([`hopluu_model::shape`]).
const INVALID: &str = "invalid-value: ";

/// Applies a held change whose dependencies are here and marks it
/// released, `why` recorded as the decision. `Ok(Err(reason))` when
/// automerge refuses it: the document is dropped from the transaction's
/// cache, so nothing of the attempt is written.
pub(super) async fn apply_held(
    tx: &mut WriteTx<'_>,
    id: &DocId,
    change: Change,
    hash: &ChangeHash,
    why: &str,
    now: i64,
) -> Result<Result<(), String>, SyncError> {
    let doc = tx.doc(id).await?;
    let before = doc.get_heads();
    if let Err(reason) = apply_guarded(doc, id, &[change]) {
        tx.discard(id);
        return Ok(Err(reason));
    }
    // Released or not, a change never breaks the shape of its document.
    let shaped = super::guarded(|| hopluu_model::shape::check(id, doc, &before))
        .map_err(|e| format!("{INVALID}{e}"))
        .and_then(|r| r.map_err(|e| format!("{INVALID}{e}")));
    if let Err(reason) = shaped {
        tx.discard(id);
        return Ok(Err(reason));
    }
    tx.quarantine_decide(id, hash, QuarantineState::Released, why, now)
        .await?;
    Ok(Ok(()))
}

/// Discards a held change and every change that waits on it.
pub async fn discard(
    tx: &mut WriteTx<'_>,
    entry: &QuarantineEntry,
    by: &str,
    now: i64,
) -> Result<usize, SyncError> {
    let id = entry_doc(entry)?;
    let mut gone = vec![entry.hash];
    let mut n = 0;
    while let Some(h) = gone.pop() {
        if tx
            .quarantine_decide(&id, &h, QuarantineState::Discarded, by, now)
            .await?
        {
            n += 1;
        }
        for e in tx.quarantine_held(&id).await? {
            if e.waits_for == Some(h) {
                gone.push(e.hash);
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use hopluu_model::tree::TreeNode;
    use hopluu_model::unit::UnitStatus;
    use hopluu_model::{KindId, UnitId, UnitTree};
    use hopluu_store::quarantine::{QuarantineEntry, QuarantineState};

    use super::sender_of;

    fn uid(s: &str) -> UnitId {
        UnitId::parse("unit_id", s).unwrap()
    }

    fn entry(peer_unit: &str) -> QuarantineEntry {
        QuarantineEntry {
            id: 1,
            doc: "unit:vn".into(),
            hash: automerge::ChangeHash([0; 32]),
            origin_node: String::new(),
            origin_unit: String::new(),
            peer_node: "node-x".into(),
            peer_unit: peer_unit.into(),
            code: "waits".into(),
            reason: String::new(),
            waits_for: None,
            change: None,
            change_len: 0,
            state: QuarantineState::Held,
            received_at: 0,
            decided_at: None,
            decided_by: None,
            made_at: 0,
        }
    }

    #[test]
    fn the_sender_of_an_entry_is_judged_as_it_was() {
        let mut tree = UnitTree::new();
        for (u, parent) in [("vn", None), ("p1", Some("vn"))] {
            tree.upsert(
                uid(u),
                TreeNode {
                    parent: parent.map(uid),
                    kind: KindId::parse("kind", "level").unwrap(),
                    status: UnitStatus::Active,
                    name: u.to_owned(),
                },
            );
        }
        let child = sender_of(&tree, &uid("vn"), &entry("p1"));
        assert_eq!((child.node.as_str(), child.is_child), ("node-x", true));
        let parent = sender_of(&tree, &uid("p1"), &entry("vn"));
        assert!(!parent.is_child);
        // An unreadable unit counts as this node's own: not a child.
        let unreadable = sender_of(&tree, &uid("vn"), &entry("Not A Unit"));
        assert_eq!(unreadable.unit, uid("vn"));
        assert!(!unreadable.is_child);
    }
}
