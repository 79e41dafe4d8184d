//! The shape of a document kind, checked on what a node receives
//! ([`check`]): the paths a change may touch, and the type and validity of
//! each value it writes, as the node's own writes are validated. The gate
//! runs it on every change it applies from a peer, so a faulty or foreign
//! writer's malformed value (a date that is no date, a name written as an
//! automerge text object or as a number, a path no version of hopluu
//! writes, an enum out of range) is held with the field and the reason
//! instead of being applied.
//!
//! Every kind is checked path by path and value by value against its table
//! in [`kinds`] (a path no table names is refused, as are text objects,
//! counters and marks, which hopluu never writes). Then what the change
//! touched is read back as the node reads it: every member a roster change
//! touched, or the whole document of any other kind, so that what holds
//! across fields (a status and its date) holds too. Messages name fields,
//! never the values written (which may be personal data).

use std::collections::HashMap;

use automerge::{
    Automerge, ChangeHash, ObjType, Patch, PatchAction, Prop, ReadDoc, ScalarValue, Value, hydrate,
};

use crate::am::Whole;

use crate::date::Date;
use crate::doc::DocId;
use crate::error::ModelError;
use crate::ids::{
    AwardId, CampaignId, CardNumber, DecisionId, InitiativeId, KindId, MemberId, NationalId,
    NodeId, ProposalId, UnitId, WorkId,
};
use crate::member::{self, Gender, Member, MemberStatus, PrivateData};

mod kinds;

/// Checks what changed in `doc` since `before` against the shape of
/// document `id`'s kind. The error names the field (its path) and why.
pub fn check(id: &DocId, doc: &Automerge, before: &[ChangeHash]) -> Result<(), ModelError> {
    if before.is_empty() {
        return check_whole(id, doc).map(drop);
    }
    // The new changes' own operations, each checked against the shape:
    // the cost follows the changes, where a diff scans every operation of
    // the document. Should an operation not fit (or its object not be
    // placed), the diff decides, and names the field as the document
    // reads.
    if ops_fit(kinds::of(id), doc, before) {
        return read_touched(id, doc, before);
    }
    let patches = doc.diff(before, &doc.get_heads());
    let shape = kinds::of(id);
    for p in &patches {
        patch_fits(shape, p)?;
    }
    match id {
        DocId::Roster { .. } => read_members(doc, &patches, false),
        DocId::RosterPrivate { .. } => read_members(doc, &patches, true),
        // What the change touched of an emulation record, which grows with
        // every initiative recorded.
        DocId::Emulation { .. } => match crate::emulation::touched(&patches) {
            Some(t) => crate::emulation::read_touched(doc, &t).map(drop),
            None => crate::emulation::read(doc).map(drop),
        },
        other => read_whole(other, doc),
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

/// What a path of a document holds.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A string, valid as the check says.
    Str(Str),
    /// An integer.
    Int(Int),
    /// A boolean.
    Bool,
    /// A map with these fields (and no other).
    Map(&'static [(&'static str, Shape)]),
    /// A map keyed by ids (members, initiatives, plans' units), each key
    /// valid as the check says, each value of the shape.
    Keyed(Str, &'static Shape),
    /// A list, each item of the shape.
    List(&'static Shape),
}

/// What a string must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Str {
    /// Any text of at most this many characters, with no control
    /// characters (as `clean_text` allows for the field).
    Text(usize),
    Date,
    DateOpt,
    Unit,
    UnitOpt,
    Member,
    MemberOpt,
    Campaign,
    CampaignOpt,
    Initiative,
    Work,
    Proposal,
    ProposalOpt,
    Award,
    AwardOpt,
    Decision,
    Node,
    NodeOpt,
    Kind,
    KindOpt,
    /// A document id (`roster/u-1/0`).
    Doc,
    /// A change hash: 64 hex digits.
    Hash,
    /// One of these words.
    OneOf(&'static [&'static str]),
    Gender,
    MemberStatus,
    Card,
    NationalIdOpt,
}

/// What an integer must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Int {
    Any,
    /// Zero or more (counts, quotas, money in VND).
    NonNegative,
}

impl Shape {
    /// The shape at one step further down `prop`, or `None` for a path no
    /// version of hopluu writes. A key of a keyed map is checked here.
    fn step(&'static self, at: &[Prop], prop: &Prop) -> Result<&'static Shape, ModelError> {
        let unknown = || {
            invalid(
                at,
                Some(prop),
                "no such field in this kind of document (an unknown path)",
            )
        };
        match (self, prop) {
            (Shape::Map(fields), Prop::Map(k)) => fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, s)| s)
                .ok_or_else(unknown),
            (Shape::Keyed(key, s), Prop::Map(k)) => {
                key.check(&field(at, Some(prop)), k).map_err(|e| {
                    invalid(at, Some(prop), format!("not a valid key: {}", reason(&e)))
                })?;
                Ok(s)
            }
            (Shape::List(s), Prop::Seq(_)) => Ok(s),
            _ => Err(unknown()),
        }
    }

    fn expected(&self) -> &'static str {
        match self {
            Shape::Str(_) => "a string",
            Shape::Int(_) => "an integer",
            Shape::Bool => "a boolean",
            Shape::Map(_) | Shape::Keyed(..) => "a map",
            Shape::List(_) => "a list",
        }
    }
}

/// The reason of a model error, without the field it names.
fn reason(e: &ModelError) -> String {
    match e {
        ModelError::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

impl Str {
    /// Whether `text`, the value of `name`, is valid. An empty string is
    /// valid only for the optional forms and text.
    fn check(self, name: &str, text: &str) -> Result<(), ModelError> {
        let opt = |parse: fn(&str, &str) -> Result<(), ModelError>| {
            if text.is_empty() {
                Ok(())
            } else {
                parse(name, text)
            }
        };
        match self {
            Str::Text(max) => {
                if text.chars().count() > max {
                    Err(ModelError::invalid(
                        name,
                        format!("must be at most {max} characters"),
                    ))
                } else if text.chars().any(char::is_control) {
                    Err(ModelError::invalid(
                        name,
                        "must not contain control characters",
                    ))
                } else {
                    Ok(())
                }
            }
            Str::Date => Date::parse(name, text).map(drop),
            Str::DateOpt => opt(|n, t| Date::parse(n, t).map(drop)),
            Str::Unit => UnitId::parse(name, text).map(drop),
            Str::UnitOpt => opt(|n, t| UnitId::parse(n, t).map(drop)),
            Str::Member => MemberId::parse(name, text).map(drop),
            Str::MemberOpt => opt(|n, t| MemberId::parse(n, t).map(drop)),
            Str::Campaign => CampaignId::parse(name, text).map(drop),
            Str::CampaignOpt => opt(|n, t| CampaignId::parse(n, t).map(drop)),
            Str::Initiative => InitiativeId::parse(name, text).map(drop),
            Str::Work => WorkId::parse(name, text).map(drop),
            Str::Proposal => ProposalId::parse(name, text).map(drop),
            Str::ProposalOpt => opt(|n, t| ProposalId::parse(n, t).map(drop)),
            Str::Award => AwardId::parse(name, text).map(drop),
            Str::AwardOpt => opt(|n, t| AwardId::parse(n, t).map(drop)),
            Str::Decision => DecisionId::parse(name, text).map(drop),
            Str::Node => NodeId::parse(name, text).map(drop),
            Str::NodeOpt => opt(|n, t| NodeId::parse(n, t).map(drop)),
            Str::Kind => KindId::parse(name, text).map(drop),
            Str::KindOpt => opt(|n, t| KindId::parse(n, t).map(drop)),
            Str::Doc => DocId::parse(name, text).map(drop),
            Str::Hash => {
                if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(())
                } else {
                    Err(ModelError::invalid(
                        name,
                        "must be a change hash (64 hex digits)",
                    ))
                }
            }
            Str::OneOf(words) => {
                if words.contains(&text) {
                    Ok(())
                } else {
                    Err(ModelError::invalid(
                        name,
                        format!("must be one of {}", words.join(", ")),
                    ))
                }
            }
            Str::Gender => Gender::parse(name, text).map(drop),
            Str::MemberStatus => match MemberStatus::parse(text) {
                Some(_) => Ok(()),
                None => Err(ModelError::invalid(name, "not a membership status")),
            },
            Str::Card => CardNumber::parse(name, text).map(drop),
            Str::NationalIdOpt => opt(|n, t| NationalId::parse(n, t).map(drop)),
        }
    }
}

/// One patch: its path is one the kind's shape names, and a value it
/// writes has the field's type and is valid.
fn patch_fits(root: &'static Shape, p: &Patch) -> Result<(), ModelError> {
    let path: Vec<Prop> = p.path.iter().map(|(_, prop)| prop.clone()).collect();
    let mut at = root;
    for (i, prop) in path.iter().enumerate() {
        at = at.step(&path[..i], prop)?;
    }
    let written = |last: &Prop, value: &Value<'_>| -> Result<(), ModelError> {
        value_fits(&path, last, at.step(&path, last)?, value)
    };
    match &p.action {
        PatchAction::PutMap { key, value, .. } => written(&Prop::Map(key.clone()), &value.0),
        PatchAction::PutSeq { index, value, .. } => written(&Prop::Seq(*index), &value.0),
        PatchAction::Insert { index, values, .. } => values
            .iter()
            .try_for_each(|(v, _, _)| written(&Prop::Seq(*index), v)),
        PatchAction::DeleteMap { key } => at.step(&path, &Prop::Map(key.clone())).map(drop),
        PatchAction::DeleteSeq { .. } => Ok(()),
        PatchAction::SpliceText { .. } => Err(invalid(
            &path,
            None,
            "text edited as an automerge text object: hopluu's documents hold plain strings",
        )),
        PatchAction::Increment { prop, .. } => Err(invalid(
            &path,
            Some(prop),
            "a counter: hopluu's documents hold none",
        )),
        PatchAction::Mark { .. } => {
            Err(invalid(&path, None, "marks: hopluu's documents hold none"))
        }
        PatchAction::Conflict { .. } => Ok(()),
    }
}

/// Whether `value`, written at `path`/`last`, is what a field of `shape`
/// holds.
fn value_fits(
    path: &[Prop],
    last: &Prop,
    shape: &Shape,
    value: &Value<'_>,
) -> Result<(), ModelError> {
    match value {
        Value::Object(ObjType::Map) => fits(path, last, shape, "a map", None),
        Value::Object(ObjType::Table) => fits(path, last, shape, "a table", None),
        Value::Object(ObjType::List) => fits(path, last, shape, "a list", None),
        Value::Object(ObjType::Text) => fits(path, last, shape, TEXT_OBJECT, None),
        Value::Scalar(s) => fits(path, last, shape, scalar_type(s), Some(s)),
    }
}

const TEXT_OBJECT: &str = "an automerge text object";

fn scalar_type(s: &ScalarValue) -> &'static str {
    match s {
        ScalarValue::Str(_) => "a string",
        ScalarValue::Int(_) | ScalarValue::Uint(_) => "an integer",
        ScalarValue::F64(_) => "a number",
        ScalarValue::Counter(_) => "a counter",
        ScalarValue::Timestamp(_) => "a timestamp",
        ScalarValue::Boolean(_) => "a boolean",
        ScalarValue::Bytes(_) => "bytes",
        ScalarValue::Null => "null",
        ScalarValue::Unknown { .. } => "a value of an unknown type",
    }
}

/// Whether a value of type `found` (and, for a scalar, its value) is what
/// a field of `shape` holds.
fn fits(
    path: &[Prop],
    last: &Prop,
    shape: &Shape,
    found: &str,
    scalar: Option<&ScalarValue>,
) -> Result<(), ModelError> {
    let expected = shape.expected();
    if found != expected {
        return Err(invalid(
            path,
            Some(last),
            format!("must be {expected}, got {found}"),
        ));
    }
    match (shape, scalar) {
        (Shape::Str(check), Some(ScalarValue::Str(text))) => {
            // The model's own message names the field; it never repeats
            // a value.
            check.check(&field(path, Some(last)), text)
        }
        (Shape::Int(Int::NonNegative), Some(ScalarValue::Int(i))) if *i < 0 => {
            Err(invalid(path, Some(last), "must not be negative"))
        }
        _ => Ok(()),
    }
}

/// What checking a whole roster read of it: every member, as the node's
/// projection reads them. Handed on to the store, it spares the projection
/// reading the roster a second time (reading a roster whole is most of
/// what receiving it costs).
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The members of a roster, in id order.
    Members(Vec<Member>),
    /// The private data of a private roster's members, in id order.
    Private(Vec<(MemberId, PrivateData)>),
}

/// Checks a whole document (one that was empty before) against the shape
/// of its kind, as [`check`] with no `before` does, and returns what was
/// read of it where the projection can use it (a roster's members).
pub fn check_whole(id: &DocId, doc: &Automerge) -> Result<Option<Read>, ModelError> {
    // Its state read in one pass and walked against the shape (what a
    // diff from nothing would list, at a fraction of the cost), then read
    // back from that same state.
    let root = doc.hydrate(None);
    let hydrate::Value::Map(map) = &root else {
        return Err(invalid(&[], None, "the document's root is not a map"));
    };
    let mut path = Vec::new();
    walk_map(kinds::of(id), &mut path, map)?;
    match id {
        DocId::Roster { .. } => member::read_members_of(Whole(map)).map(|m| Some(Read::Members(m))),
        DocId::RosterPrivate { .. } => {
            member::read_private_of(Whole(map)).map(|m| Some(Read::Private(m)))
        }
        other => read_whole(other, doc).map(|()| None),
    }
}

fn walk_map(
    shape: &'static Shape,
    path: &mut Vec<Prop>,
    map: &hydrate::Map,
) -> Result<(), ModelError> {
    for (key, v) in map.iter() {
        let last = Prop::Map(key.clone());
        let inner = shape.step(path, &last)?;
        walk_value(inner, path, last, &v.value)?;
    }
    Ok(())
}

fn walk_value(
    shape: &'static Shape,
    path: &mut Vec<Prop>,
    last: Prop,
    value: &hydrate::Value,
) -> Result<(), ModelError> {
    match value {
        hydrate::Value::Scalar(s) => fits(path, &last, shape, scalar_type(s), Some(s)),
        hydrate::Value::Text(_) => fits(path, &last, shape, TEXT_OBJECT, None),
        hydrate::Value::Map(m) => {
            fits(path, &last, shape, "a map", None)?;
            path.push(last);
            walk_map(shape, path, m)?;
            path.pop();
            Ok(())
        }
        hydrate::Value::List(l) => {
            fits(path, &last, shape, "a list", None)?;
            path.push(last);
            for (i, item) in l.iter().enumerate() {
                let at = Prop::Seq(i);
                let inner = shape.step(path, &at)?;
                walk_value(inner, path, at, &item.value)?;
            }
            path.pop();
            Ok(())
        }
    }
}

/// Whether every operation of the changes since `before` writes what the
/// shape allows where it writes it: `false` as soon as one does not, or
/// its object cannot be placed in the document.
fn ops_fit(root: &'static Shape, doc: &Automerge, before: &[ChangeHash]) -> bool {
    use automerge::legacy::{Key, ObjectId, OpType};
    // The shape of each object written to, by its id (`None`: not placed,
    // or not a map or list of the shape).
    let mut shapes: HashMap<String, Option<(Vec<Prop>, &'static Shape)>> = HashMap::new();
    for change in doc.get_changes(before) {
        for op in change.decode().operations {
            let placed = match &op.obj {
                ObjectId::Root => Some((Vec::new(), root)),
                ObjectId::Id(obj) => {
                    let key = obj.to_string();
                    match shapes.get(&key) {
                        Some(s) => s.clone(),
                        None => {
                            let s = place(root, doc, &key);
                            shapes.insert(key, s.clone());
                            s
                        }
                    }
                }
            };
            let Some((path, at)) = placed else {
                return false;
            };
            let last = match &op.key {
                Key::Map(k) => Prop::Map(k.to_string()),
                // The index does not matter to the shape.
                Key::Seq(_) => Prop::Seq(0),
            };
            let Ok(inner) = at.step(&path, &last) else {
                return false;
            };
            let fits = match &op.action {
                OpType::Make(ObjType::Map) => fits(&path, &last, inner, "a map", None),
                OpType::Make(ObjType::Table) => fits(&path, &last, inner, "a table", None),
                OpType::Make(ObjType::List) => fits(&path, &last, inner, "a list", None),
                OpType::Make(ObjType::Text) => fits(&path, &last, inner, TEXT_OBJECT, None),
                OpType::Put(v) => fits(&path, &last, inner, scalar_type(v), Some(v)),
                OpType::Delete => Ok(()),
                OpType::Increment(_) | OpType::MarkBegin(..) | OpType::MarkEnd(_) => return false,
            };
            if fits.is_err() {
                return false;
            }
        }
    }
    true
}

/// The path of object `obj` in `doc` and the shape there, if it is a map
/// or a list the shape has.
fn place(root: &'static Shape, doc: &Automerge, obj: &str) -> Option<(Vec<Prop>, &'static Shape)> {
    let id = doc.import_obj(obj).ok()?;
    let path: Vec<Prop> = doc
        .parents(&id)
        .ok()?
        .path()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let mut at = root;
    for (i, prop) in path.iter().enumerate() {
        at = at.step(&path[..i], prop).ok()?;
    }
    matches!(at, Shape::Map(_) | Shape::Keyed(..) | Shape::List(_)).then_some((path, at))
}

/// What the changes since `before` touched, read back as the node reads
/// it: a roster's touched members, an emulation record's touched entries,
/// any other document whole.
fn read_touched(id: &DocId, doc: &Automerge, before: &[ChangeHash]) -> Result<(), ModelError> {
    match id {
        DocId::Roster { .. } | DocId::RosterPrivate { .. } => {
            let touched =
                crate::am::touched_keys(doc, before, &["members"]).and_then(|mut k| k.pop());
            if matches!(id, DocId::RosterPrivate { .. }) {
                member::read_private(doc, touched.as_ref()).map(drop)
            } else {
                member::read_many(doc, touched.as_ref()).map(drop)
            }
        }
        DocId::Emulation { .. } => match crate::emulation::touched_since(doc, before) {
            Some(t) => crate::emulation::read_touched(doc, &t).map(drop),
            None => crate::emulation::read(doc).map(drop),
        },
        other => read_whole(other, doc),
    }
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

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ReadDoc};

    use super::{kinds, ops_fit};
    use crate::date::Date;
    use crate::doc::Author;
    use crate::ids::{MemberId, UnitId};
    use crate::member::{self, MemberInput, MemberUpdate, NewMember};

    fn roster() -> (Automerge, Author, Date) {
        let today = Date::parse("today", "2026-12-07").unwrap();
        let unit = UnitId::parse("unit", "g1").unwrap();
        let author = Author {
            actor: Author::actor_for("node-a", &unit, &[1, 2, 3, 4]),
            time_millis: 0,
        };
        let new = NewMember::parse(
            &MemberInput {
                full_name: "Lê Thị Hoa".into(),
                birth_date: "1990-05-17".into(),
                gender: "nữ".into(),
                card_number: "HG-0001".into(),
                joined_on: "2012-03-01".into(),
                position: "Công nhân".into(),
                national_id: String::new(),
                ethnicity: String::new(),
                religion: String::new(),
            },
            today,
        )
        .unwrap();
        let m = member::joining(MemberId::parse("id", "m1").unwrap(), unit.clone(), &new);
        let mut doc = Automerge::new();
        member::add(&mut doc, &author, &unit, 0, &m).unwrap();
        (doc, author, today)
    }

    /// An office's edit is judged from its own operations, with no diff;
    /// a misshapen one is left to the diff, which names the field.
    #[test]
    fn an_edit_is_judged_by_its_operations_and_a_misshapen_one_left_to_the_diff() {
        let (mut doc, author, today) = roster();
        let id = member::roster_doc(&UnitId::parse("unit", "g1").unwrap(), 0);
        let shape = kinds::of(&id);
        let before = doc.get_heads();
        let upd = MemberUpdate {
            position: Some("Tổ trưởng".into()),
            ..MemberUpdate::default()
        };
        member::update(
            &mut doc,
            &author,
            &MemberId::parse("id", "m1").unwrap(),
            &upd,
            today,
        )
        .unwrap();
        assert!(ops_fit(shape, &doc, &before), "a position changed fits");
        assert!(super::check(&id, &doc, &before).is_ok());

        let before = doc.get_heads();
        let members = doc.get(automerge::ROOT, "members").unwrap().unwrap().1;
        let m1 = doc.get(&members, "m1").unwrap().unwrap().1;
        let mut tx = doc.transaction();
        tx.put(&m1, "birth_date", "17/05/1990").unwrap();
        tx.commit();
        assert!(!ops_fit(shape, &doc, &before), "a date no date does not");
        let err = super::check(&id, &doc, &before).unwrap_err().to_string();
        assert!(err.contains("members.m1.birth_date"), "{err}");
    }
}
