//! De-identification (Law 91/2025): a member's personal fields removed
//! from the current state of both rosters on request.

use automerge::Automerge;

use super::*;
use crate::am::{self, Obj};
use crate::doc::{Author, edit};
use crate::error::ModelError;
use crate::ids::MemberId;

/// The fields [`scrub`] clears, with the value it leaves.
const SCRUBBED: [(&str, &str); 4] = [
    ("full_name", DEIDENTIFIED_NAME),
    ("birth_date", ""),
    ("position", ""),
    ("status_reason", ""),
];

/// Whether `o[key]` holds anything but `v`: another value, or `v` beside a
/// conflicting one (a concurrent write keeps its value as a conflict).
fn holds_other<R: automerge::ReadDoc>(o: &Obj<'_, R>, key: &str, v: &str) -> bool {
    o.str(key) != v || o.conflicted(key)
}

/// The history entries of a record.
fn events<R: automerge::ReadDoc>(doc: &R, obj: &automerge::ObjId) -> Vec<automerge::ObjId> {
    Obj {
        doc,
        id: obj.clone(),
    }
    .list("history")
    .into_iter()
    .map(|e| e.id)
    .collect()
}

/// Removes the personal fields of a record's current state: the name
/// becomes [`DEIDENTIFIED_NAME`]; birth date, position and every free-text
/// reason (which may name the person or their health) become empty. A
/// field is written over when it holds another value or a conflict, so no
/// concurrent value survives beside the new one. Unit, gender, card number,
/// membership dates, status and the kinds, dates and units of the history
/// stay: the federation's statistics count them.
pub(super) fn scrub<T: automerge::transaction::Transactable>(
    tx: &mut T,
    obj: &automerge::ObjId,
) -> Result<(), ModelError> {
    for (key, v) in SCRUBBED {
        if holds_other(
            &Obj {
                doc: &*tx,
                id: obj.clone(),
            },
            key,
            v,
        ) {
            tx.put(obj, key, v)?;
        }
    }
    for event in events(&*tx, obj) {
        if holds_other(
            &Obj {
                doc: &*tx,
                id: event.clone(),
            },
            "reason",
            "",
        ) {
            tx.put(&event, "reason", "")?;
        }
    }
    Ok(())
}

/// Whether a de-identification request has anything to do in this record:
/// it was not de-identified yet, or a personal value came back into its
/// current state (written concurrently, at a node that had not yet seen
/// the de-identification, or a later reason). `false` for an absent record.
pub fn needs_deidentify(doc: &Automerge, id: &MemberId) -> bool {
    let Ok(obj) = member_obj(doc, id) else {
        return false;
    };
    let o = Obj {
        doc,
        id: obj.clone(),
    };
    o.obj("deidentified").is_none()
        || SCRUBBED.iter().any(|(key, v)| holds_other(&o, key, v))
        || events(doc, &obj)
            .into_iter()
            .any(|e| holds_other(&Obj { doc, id: e }, "reason", ""))
}

/// De-identifies a member's record on request (Law 91/2025): removes the
/// personal fields from its current state ([`scrub`]) and records the
/// request in the record, without the removed values, in one change. A
/// record de-identified before keeps its first request and is scrubbed
/// again if a personal value came back ([`needs_deidentify`]); one with
/// nothing left to remove is refused. Earlier values stay in the
/// document's change history: automerge keeps every change.
pub fn deidentify(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
    request: &Deidentified,
) -> Result<Member, ModelError> {
    let current = read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))?;
    if let Some(d) = &current.deidentified
        && !needs_deidentify(doc, id)
    {
        return Err(ModelError::precondition(
            "member_id",
            format!(
                "member {id} was de-identified already, at {} by {}",
                d.at, d.by
            ),
        ));
    }
    edit(doc, author, "deidentify member", |tx| {
        let obj = member_obj(tx, id)?;
        scrub(tx, &obj)?;
        if am::child(tx, &obj, "deidentified").is_none() {
            deidentified_record(request).create(tx, &obj, "deidentified")?;
        }
        Ok(())
    })?;
    read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))
}

/// Removes a member's entry (CCCD, ethnicity, religion) from a private
/// roster's current state, in one change; `false` when it holds none.
pub fn forget_private(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
) -> Result<bool, ModelError> {
    let held = Obj::root(&*doc)
        .obj("members")
        .is_some_and(|m| m.obj(id.as_str()).is_some());
    if !held {
        return Ok(false);
    }
    edit(doc, author, "forget private data", |tx| {
        let members = members_map(tx)?;
        automerge::transaction::Transactable::delete(tx, &members, id.as_str())?;
        Ok(())
    })?;
    Ok(true)
}
