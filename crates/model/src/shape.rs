//! The shape of a document kind, checked on what a node receives
//! ([`check`]): the paths a change may touch, and the type and validity of
//! each value it writes, as the node's own writes are validated. The gate
//! runs it on every change it applies from a peer, so a faulty or foreign
//! writer's malformed value (a date that is no date, a name written as an
//! automerge text object or as a number, a path no version of hopluu
//! writes, an enum out of range) is held with the field and the reason
//! instead of being applied.
//!
//! Rosters and private rosters, the documents offices write most and from
//! most places, are checked path by path and value by value; then every
//! member a change touched is read back as the node reads it. Every other
//! kind is read back whole by its reader, which names the field it cannot
//! read, and may hold no text objects, counters or marks (hopluu writes
//! none). Messages name fields, never the values written (which may be
//! personal data).

use automerge::{Automerge, ChangeHash, ObjType, Patch, PatchAction, Prop, ScalarValue, Value};

use crate::date::Date;
use crate::doc::DocId;
use crate::error::ModelError;
use crate::ids::{CardNumber, MemberId, UnitId};
use crate::member::{self, Gender, MemberStatus};

/// Checks what changed in `doc` since `before` against the shape of
/// document `id`'s kind. The error names the field (its path) and why.
pub fn check(id: &DocId, doc: &Automerge, before: &[ChangeHash]) -> Result<(), ModelError> {
    let patches = doc.diff(before, &doc.get_heads());
    match id {
        DocId::Roster { .. } => {
            for p in &patches {
                roster_patch(p, false)?;
            }
            read_members(doc, &patches, false)
        }
        DocId::RosterPrivate { .. } => {
            for p in &patches {
                roster_patch(p, true)?;
            }
            read_members(doc, &patches, true)
        }
        other => {
            for p in &patches {
                plain_patch(p)?;
            }
            read_whole(other, doc)
        }
    }
}

/// A path as a field name: `members.m-1.birth_date`, `history[2].on`.
fn field(path: &[Prop], last: Option<&Prop>) -> String {
    let mut out = String::new();
    for p in path.iter().chain(last) {
        match p {
            Prop::Map(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Prop::Seq(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn invalid(path: &[Prop], last: Option<&Prop>, why: impl Into<String>) -> ModelError {
    let name = field(path, last);
    ModelError::invalid(if name.is_empty() { "document" } else { &name }, why)
}

/// What a field of a roster holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string, any text.
    Text,
    /// A string that is a date (`YYYY-MM-DD`), or empty where `optional`.
    Date {
        optional: bool,
    },
    /// A string that is a unit id, or empty.
    Unit,
    /// An enum's string.
    Gender,
    Status,
    /// A member card number.
    Card,
    /// Twelve digits, or empty (the CCCD number).
    NationalId,
    /// An integer.
    Int,
    /// A map of fields.
    Map,
    /// A list (of strings or maps).
    List,
}

/// The fields of a roster, by path: the skeleton's, a member's, a history
/// entry's, a de-identification's; in a private roster, a member's
/// personal data.
fn roster_field(path: &[&str], private: bool) -> Option<Kind> {
    use Kind::*;
    Some(match path {
        ["v"] | ["bucket"] => Int,
        ["owner"] | ["unit"] => Unit,
        ["addressed"] => List,
        ["addressed", "[]"] => Unit,
        ["members"] => Map,
        ["members", _] => Map,
        ["members", _, f] if private => match *f {
            "national_id" => NationalId,
            "ethnicity" | "religion" => Text,
            _ => return None,
        },
        ["members", _, f] => match *f {
            "full_name" | "position" | "status_reason" => Text,
            "birth_date" | "status_on" => Date { optional: true },
            "joined_on" => Date { optional: false },
            "gender" => Gender,
            "status" => Status,
            "card_number" => Card,
            "history" => List,
            "deidentified" => Map,
            _ => return None,
        },
        ["members", _, "history", "[]"] => Map,
        ["members", _, "history", "[]", f] if !private => match *f {
            "kind" | "reason" | "decision" => Text,
            "on" => Date { optional: false },
            "other_unit" => Unit,
            _ => return None,
        },
        [
            "members",
            _,
            "deidentified",
            "at" | "by" | "operator" | "reason" | "reference",
        ] if !private => Text,
        _ => return None,
    })
}

/// One patch of a roster: its path is one the schema names, and a value it
/// writes has the field's type and is valid.
fn roster_patch(p: &Patch, private: bool) -> Result<(), ModelError> {
    let path: Vec<Prop> = p.path.iter().map(|(_, prop)| prop.clone()).collect();
    // Where the value goes: the path's props, list indexes as `[]`.
    let names = |last: Option<&Prop>| -> Vec<String> {
        path.iter()
            .chain(last)
            .map(|p| match p {
                Prop::Map(k) => k.clone(),
                Prop::Seq(_) => "[]".to_owned(),
            })
            .collect()
    };
    let kind_at = |last: Option<&Prop>| -> Result<Kind, ModelError> {
        let names = names(last);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        if let ["members", id, ..] = refs.as_slice() {
            MemberId::parse("id", id).map_err(|e| invalid(&path, last, e.to_string()))?;
        }
        roster_field(&refs, private)
            .ok_or_else(|| invalid(&path, last, "no such field in a roster (an unknown path)"))
    };
    match &p.action {
        PatchAction::PutMap { key, value, .. } => {
            let last = Prop::Map(key.clone());
            value_fits(&path, &last, kind_at(Some(&last))?, &value.0)
        }
        PatchAction::PutSeq { index, value, .. } => {
            let last = Prop::Seq(*index);
            value_fits(&path, &last, kind_at(Some(&last))?, &value.0)
        }
        PatchAction::Insert { index, values, .. } => {
            let last = Prop::Seq(*index);
            let kind = kind_at(Some(&last))?;
            values
                .iter()
                .try_for_each(|(v, _, _)| value_fits(&path, &last, kind, v))
        }
        PatchAction::DeleteMap { key } => kind_at(Some(&Prop::Map(key.clone()))).map(drop),
        PatchAction::DeleteSeq { .. } => kind_at(None).map(drop),
        PatchAction::SpliceText { .. } => Err(invalid(
            &path,
            None,
            "text edited as an automerge text object: a roster holds plain strings",
        )),
        PatchAction::Increment { prop, .. } => {
            Err(invalid(&path, Some(prop), "a counter: a roster holds none"))
        }
        PatchAction::Mark { .. } => Err(invalid(&path, None, "marks: a roster holds none")),
        PatchAction::Conflict { .. } => Ok(()),
    }
}

/// Whether `value`, written at `path`/`last`, is what a field of `kind`
/// holds.
fn value_fits(path: &[Prop], last: &Prop, kind: Kind, value: &Value<'_>) -> Result<(), ModelError> {
    let bad = |why: String| Err(invalid(path, Some(last), why));
    let name = field(path, Some(last));
    let expected = match kind {
        Kind::Map => "a map",
        Kind::List => "a list",
        Kind::Int => "an integer",
        _ => "a string",
    };
    let found = match value {
        Value::Object(ObjType::Map) => "a map",
        Value::Object(ObjType::Table) => "a table",
        Value::Object(ObjType::List) => "a list",
        Value::Object(ObjType::Text) => "an automerge text object",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "a string",
            ScalarValue::Int(_) | ScalarValue::Uint(_) => "an integer",
            ScalarValue::F64(_) => "a number",
            ScalarValue::Counter(_) => "a counter",
            ScalarValue::Timestamp(_) => "a timestamp",
            ScalarValue::Boolean(_) => "a boolean",
            ScalarValue::Bytes(_) => "bytes",
            ScalarValue::Null => "null",
            ScalarValue::Unknown { .. } => "a value of an unknown type",
        },
    };
    if found != expected {
        return bad(format!("must be {expected}, got {found}"));
    }
    let Value::Scalar(s) = value else {
        return Ok(());
    };
    let ScalarValue::Str(text) = s.as_ref() else {
        return Ok(());
    };
    let text = text.as_str();
    let checked = match kind {
        Kind::Date { optional: true } if text.is_empty() => Ok(()),
        Kind::Date { .. } => Date::parse(&name, text).map(drop),
        Kind::Unit if text.is_empty() => Ok(()),
        Kind::Unit => UnitId::parse(&name, text).map(drop),
        Kind::Gender => Gender::parse(&name, text).map(drop),
        Kind::Status => match MemberStatus::parse(text) {
            Some(_) => Ok(()),
            None => return bad("not a membership status".into()),
        },
        Kind::Card => CardNumber::parse(&name, text).map(drop),
        Kind::NationalId if text.is_empty() => Ok(()),
        Kind::NationalId => {
            if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                return bad("must be exactly 12 digits".into());
            }
        }
        _ => Ok(()),
    };
    // The model's own message names the field; it never repeats a value.
    checked.map_err(|e| match e {
        ModelError::Invalid { .. } => e,
        other => invalid(path, Some(last), other.to_string()),
    })
}

/// The members the patches touched, read back as the node reads them.
fn read_members(doc: &Automerge, patches: &[Patch], private: bool) -> Result<(), ModelError> {
    let touched = member::touched_members(patches);
    if private {
        member::read_private(doc, touched.as_ref()).map(drop)
    } else {
        member::read_many(doc, touched.as_ref()).map(drop)
    }
}

/// A patch of a kind other than a roster: none of what hopluu never
/// writes (text objects, counters, marks).
fn plain_patch(p: &Patch) -> Result<(), ModelError> {
    let path: Vec<Prop> = p.path.iter().map(|(_, prop)| prop.clone()).collect();
    let text = |last: Option<&Prop>| {
        Err(invalid(
            &path,
            last,
            "an automerge text object: hopluu's documents hold plain strings",
        ))
    };
    match &p.action {
        PatchAction::PutMap { key, value, .. }
            if matches!(value.0, Value::Object(ObjType::Text)) =>
        {
            text(Some(&Prop::Map(key.clone())))
        }
        PatchAction::PutSeq { index, value, .. }
            if matches!(value.0, Value::Object(ObjType::Text)) =>
        {
            text(Some(&Prop::Seq(*index)))
        }
        PatchAction::SpliceText { .. } => text(None),
        PatchAction::Increment { prop, .. } => Err(invalid(
            &path,
            Some(prop),
            "a counter: hopluu's documents hold none",
        )),
        PatchAction::Mark { .. } => {
            Err(invalid(&path, None, "marks: hopluu's documents hold none"))
        }
        _ => Ok(()),
    }
}

/// A document of another kind, read back whole by its reader.
fn read_whole(id: &DocId, doc: &Automerge) -> Result<(), ModelError> {
    match id {
        DocId::Unit(_) => crate::unit::read(id, doc).map(drop),
        DocId::Campaign(_) => crate::campaign::read(id, doc).map(drop),
        DocId::Emulation { .. } => crate::emulation::read(doc).map(drop),
        DocId::Proposal(_) => crate::award::read_proposal(id, doc).map(drop),
        DocId::Award(_) => crate::award::read_award(id, doc).map(drop),
        DocId::Decision(_) => crate::reorg::read(id, doc).map(drop),
        DocId::Node(_) => crate::hosting::read(id, doc).map(drop),
        DocId::Roster { .. } | DocId::RosterPrivate { .. } => Ok(()),
    }
}
