//! Automerge on a peer's bytes, with its panics caught: a crafted change
//! must cost the update, never the session or the node.

use automerge::{Automerge, Change, ChangeHash};
use hopluu_model::DocId;

/// Runs automerge code on bytes from a peer, turning a panic inside
/// automerge (some crafted changes reach `unwrap`s and asserts in 0.12)
/// into an error: the update is refused, the session and the node go on.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "automerge failed on these bytes (refused)".to_owned())
}

/// Applies changes that passed the gate, guarded; on failure the document
/// is dropped from the transaction (it may be half changed) and the update
/// refused with the reason.
///
/// automerge 0.12 also takes a change whose bytes are not the canonical
/// encoding of its operations: it files it under the hash of the bytes
/// received while its change graph derives another, and panics on the
/// document later (`save_after` at the commit, `get_change_by_hash`), so
/// the session would fail on every reconnect. After applying, the changes
/// the document gained must be exactly among those applied; anything else
/// refuses the update.
pub(super) fn apply_guarded(
    doc: &mut Automerge,
    id: &DocId,
    changes: &[Change],
) -> Result<(), String> {
    let before = doc.get_heads();
    match guarded(|| doc.apply_changes(changes.iter().cloned())) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{id}: changes refused: {e}")),
        Err(e) => return Err(format!("{id}: {e}")),
    }
    let sent: std::collections::HashSet<ChangeHash> = changes.iter().map(Change::hash).collect();
    let gained = guarded(|| {
        doc.get_changes(&before)
            .iter()
            .map(|c| c.hash())
            .collect::<Vec<_>>()
    })
    .map_err(|e| format!("{id}: {e}"))?;
    match gained.iter().find(|h| !sent.contains(h)) {
        None => Ok(()),
        Some(h) => Err(format!(
            "{id}: a change is not the encoding of its own operations (automerge derives {h}); refused"
        )),
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};
    use hopluu_model::{DocId, UnitId};

    use super::{apply_guarded, guarded};

    #[test]
    fn a_panic_becomes_a_refusal() {
        assert_eq!(guarded(|| 7), Ok(7));
        let err = guarded(|| -> i32 { panic!("inside automerge") }).unwrap_err();
        assert!(err.contains("refused"), "{err}");
    }

    #[test]
    fn changes_applied_are_exactly_those_sent() {
        let mut source = Automerge::new();
        let mut tx = source.transaction();
        tx.put(ROOT, "k", 1).unwrap();
        tx.commit();
        let changes = source.get_changes(&[]);
        let id = DocId::Unit(UnitId::parse("unit_id", "vn").unwrap());
        let mut doc = Automerge::new();
        assert_eq!(apply_guarded(&mut doc, &id, &changes), Ok(()));
        assert_eq!(doc.get_heads(), source.get_heads());
    }
}
