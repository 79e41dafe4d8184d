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
    init_roster_skeleton(doc, unit, bucket)?;
    edit(doc, author, "record private data", |tx| {
        let members = members_map(tx)?;
        let obj = am::ensure_map(tx, &members, id.as_str())?;
        am::put_str(
            tx,
            &obj,
            "national_id",
            data.national_id
                .as_ref()
                .map(NationalId::as_str)
                .unwrap_or(""),
        )?;
        am::put_str(tx, &obj, "ethnicity", &data.ethnicity)?;
        am::put_str(tx, &obj, "religion", &data.religion)?;
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
    let read = |k: &str, o: Whole<'_>| -> Result<(MemberId, PrivateData), ModelError> {
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
    };
    let mut out = Vec::new();
    match ids {
        None => {
            if let Some(all) = members.read_whole() {
                let all = Whole(&all);
                for k in all.keys() {
                    if let Some(o) = all.obj(k) {
                        out.push(read(k, o)?);
                    }
                }
            }
        }
        Some(ids) => {
            for k in ids {
                if let Some(m) = members.obj(k).and_then(|o| o.read_whole()) {
                    out.push(read(k, Whole(&m))?);
                }
            }
        }
    }
    Ok(out)
}
