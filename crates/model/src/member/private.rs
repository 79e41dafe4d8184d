//! The private roster: a member's sensitive fields, written and read
//! apart from the public record.

use std::collections::BTreeSet;

use automerge::Automerge;

use super::*;
use crate::am::{self, Obj, Whole};
use crate::doc::{Author, edit};
use crate::error::ModelError;
use crate::ids::{MemberId, NationalId, UnitId};

/// Private data: writes (or overwrites) a member's sensitive fields.
pub fn put_private(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    id: &MemberId,
    data: &PrivateData,
) -> Result<(), ModelError> {
    put_private_many(doc, author, unit, bucket, &[(id, data)])
}

/// Writes (or overwrites) the sensitive fields of several members in one
/// change (an import's rows for one roster): one change's metadata for
/// the lot, and one transaction, not one per member.
pub fn put_private_many(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    entries: &[(&MemberId, &PrivateData)],
) -> Result<(), ModelError> {
    if entries.is_empty() {
        return Ok(());
    }
    init_roster_skeleton(doc, unit, bucket)?;
    let message = match entries.len() {
        1 => "record private data".to_owned(),
        n => format!("record private data of {n} members"),
    };
    edit(doc, author, &message, |tx| {
        let members = members_map(tx)?;
        for (id, data) in entries {
            let national_id = data
                .national_id
                .as_ref()
                .map(NationalId::as_str)
                .unwrap_or("");
            let Some(obj) = am::child(tx, &members, id.as_str()) else {
                // A member new here (an import's): the entry in one batch
                // operation, as a new roster record is written.
                am::Record::new()
                    .str("national_id", national_id)
                    .str("ethnicity", &data.ethnicity)
                    .str("religion", &data.religion)
                    .create(tx, &members, id.as_str())?;
                continue;
            };
            am::put_str(tx, &obj, "national_id", national_id)?;
            am::put_str(tx, &obj, "ethnicity", &data.ethnicity)?;
            am::put_str(tx, &obj, "religion", &data.religion)?;
        }
        Ok(())
    })
}

/// Reads the private data of the named members (all when `ids` is `None`).
pub fn read_private(
    doc: &Automerge,
    ids: Option<&BTreeSet<String>>,
) -> Result<Vec<(MemberId, PrivateData)>, ModelError> {
    let root = Obj::root(doc);
    let Some(members) = root.obj("members") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    match ids {
        None => {
            if let Some(all) = members.read_whole() {
                return read_all(Whole(&all));
            }
        }
        Some(ids) => {
            for k in ids {
                if let Some(m) = members.obj(k).and_then(|o| o.read_whole()) {
                    out.push(read_one(k, Whole(&m))?);
                }
            }
        }
    }
    Ok(out)
}

/// The private data of every member of a private roster already read whole
/// (`root`: the document's root map), in id order.
pub fn read_private_of(root: Whole<'_>) -> Result<Vec<(MemberId, PrivateData)>, ModelError> {
    match root.obj("members") {
        Some(members) => read_all(members),
        None => Ok(Vec::new()),
    }
}

fn read_all(members: Whole<'_>) -> Result<Vec<(MemberId, PrivateData)>, ModelError> {
    let mut out = Vec::new();
    for k in members.keys() {
        if let Some(o) = members.obj(k) {
            out.push(read_one(k, o)?);
        }
    }
    Ok(out)
}

fn read_one(k: &str, o: Whole<'_>) -> Result<(MemberId, PrivateData), ModelError> {
    let bad = |e: ModelError| ModelError::document("roster-private", e.to_string());
    Ok((
        MemberId::parse("id", k).map_err(bad)?,
        PrivateData::parse(
            &o.str("national_id"),
            &o.str("ethnicity"),
            &o.str("religion"),
        )
        .map_err(bad)?,
    ))
}
