//! Conflicts: fields where concurrent writes left more than one value.
//!
//! Two offices that set the same field of the same record while they
//! could not see each other's change (a link down, or simply at the same
//! moment) both keep their write: automerge keeps every concurrent value
//! of a map key ([`ReadDoc::get_all`]), reads pick one of them (the same
//! one on every node), and the others wait for someone to choose. This
//! module finds them, keeps a list of where they are, and writes the
//! choice.
//!
//! # Finding them
//!
//! [`track`] runs for every changed document in the commit that stores it
//! (from [`crate::project::apply`], so the list and the documents can never
//! disagree), and keeps the hot path cheap:
//! - A write whose changes form one chain standing on exactly the heads
//!   the document had before ([`linear`]: every local write, and a peer's
//!   changes made on top of what this node had) cannot make a conflict:
//!   each of its operations saw, and replaced, every value visible when it
//!   was made. Nothing is diffed; only the document's recorded conflicts
//!   (one indexed query, usually empty) are looked at again, since the
//!   write may have resolved them.
//! - Otherwise (changes merged from concurrent branches) the automerge
//!   diff between the heads before and after names every map key whose
//!   visible values changed ([`PatchAction::PutMap`], `Conflict` and
//!   `DeleteMap`), and only those keys are asked how many values they hold.
//!   The roster projection reads the same diff: it is computed once.
//! - A recorded conflict is dropped when its field holds one value or none
//!   (resolved, overwritten, deleted, or its object gone).
//!
//! Only map keys are tracked: every record of hopluu's documents lives in a
//! map keyed by its id, and lists (history entries, recipients) are
//! appended to or replaced whole, never set by index concurrently.
//!
//! # What is stored
//!
//! The `conflicts` table holds where a conflict is (the document, the
//! automerge object id, the key, its path and record id, when it was found
//! here), never its values: they may be personal data. [`values`] reads
//! them from the document when an administrator asks, each with its
//! operation id, the node and unit that wrote it (from the operation's
//! actor, [`Author::origin`]) and the time of the change that holds it.
//! Conflict ids are this node's: every node that holds the document finds
//! the same conflict and numbers it itself.
//!
//! # Resolving
//!
//! [`resolve`] writes the chosen value, one of the conflict's values (by
//! operation id) or a new one, as one new change by this node. The change
//! replaces every value the field holds, so once it is applied anywhere
//! the field has one value there, and the commit that applies it drops the
//! conflict from that node's list. It is checked before anything is
//! committed: the document must still read as the model expects.

use std::collections::{BTreeSet, HashSet};

use automerge::transaction::Transactable;
use automerge::{
    Automerge, ChangeHash, ObjId, Patch, PatchAction, Prop, ReadDoc, ScalarValue, Value, hydrate,
};
use hopluu_model::{
    Author, DocId, DocKind, MemberId, ModelError, award, campaign, doc::edit, emulation,
    ids::clean_text, member, unit,
};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::project::ConflictRow;
use crate::project::sql::write;
use crate::{Result, Store, StoreError, WriteTx};

/// A recorded conflict: where it is, not what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// This node's id for it.
    pub id: i64,
    pub doc: DocId,
    /// The automerge object holding the field (`_root` or `counter@actor`).
    pub obj: String,
    /// The field's key in that object.
    pub field: String,
    /// The field's path when it was found, e.g. `members/m-12/position`
    /// ([`current_path`] gives it as the document has it now).
    pub path: String,
    /// The record the field belongs to: a member, initiative, work or plan
    /// id, or the document's own subject (a unit, campaign, award id).
    pub record: String,
    /// When this node found it, ms since the epoch.
    pub detected_at: i64,
}

/// One value of a conflicted field. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ConflictValue {
    /// The value as text: a string as it is, anything else as JSON. A
    /// de-identified member's removed fields read `(de-identified)`.
    pub value: String,
    /// Whether the value is an object (a map or list written whole).
    pub is_object: bool,
    /// The operation that wrote it, `counter@actor`: what a resolution
    /// that keeps it names.
    pub op_id: String,
    /// The node and unit that wrote it (empty for a foreign actor).
    pub node: String,
    pub unit: String,
    /// When, by the writer's clock (ms since the epoch), and in which change.
    pub written_at: i64,
    pub change: Option<ChangeHash>,
}

impl std::fmt::Debug for ConflictValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConflictValue")
            .field("value", &"***")
            .field("op_id", &self.op_id)
            .field("node", &self.node)
            .field("unit", &self.unit)
            .field("written_at", &self.written_at)
            .finish_non_exhaustive()
    }
}

/// Which conflicts to list.
#[derive(Debug, Clone, Default)]
pub struct ConflictFilter {
    pub doc: Option<DocId>,
    /// Conflicts with an id above this (paging).
    pub after_id: i64,
    /// At most this many; 0 means 100.
    pub limit: u32,
}

/// What a resolution writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// One of the conflict's values, by operation id (`counter@actor`).
    Keep(String),
    /// A new value, as text; it takes the type of the value reads show.
    Value(String),
}

/// Records that hold other records in a map keyed by their id, by the
/// key of that map at the document's root.
const COLLECTIONS: [&str; 4] = ["members", "initiatives", "works", "plans"];

/// Fields a de-identification clears (see `hopluu_model::member`): their
/// concurrent values are withheld once the member is de-identified.
const WITHHELD: [&str; 5] = [
    "full_name",
    "birth_date",
    "position",
    "status_reason",
    "reason",
];

const COLUMNS: &str = "id, doc_id, obj, field, path, record, detected_at";

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        doc: "conflicts".into(),
        reason,
    }
}

fn row_to_conflict(r: &sqlx::any::AnyRow) -> Result<Conflict> {
    let doc: String = r.get(1);
    Ok(Conflict {
        id: r.get(0),
        doc: DocId::parse("doc_id", &doc).map_err(|e| corrupt(e.to_string()))?,
        obj: r.get(2),
        field: r.get(3),
        path: r.get(4),
        record: r.get(5),
        detected_at: r.get(6),
    })
}

impl Store {
    /// Conflicts matching `filter`, by id.
    pub async fn conflicts(&self, filter: &ConflictFilter) -> Result<Vec<Conflict>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conflicts WHERE id > $1 AND ($2 = '' OR doc_id = $2) \
             ORDER BY id LIMIT $3"
        )))
        .bind(filter.after_id)
        .bind(
            filter
                .doc
                .as_ref()
                .map(DocId::to_string)
                .unwrap_or_default(),
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_conflict).collect()
    }

    /// One conflict.
    pub async fn conflict(&self, id: i64) -> Result<Option<Conflict>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conflicts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_conflict).transpose()
    }

    /// Unresolved conflicts: all of them, or those of one document.
    pub async fn conflict_count(&self, doc: Option<&DocId>) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM conflicts WHERE ($1 = '' OR doc_id = $1)")
            .bind(doc.map(DocId::to_string).unwrap_or_default())
            .fetch_one(self.pool())
            .await?;
        Ok(row.get(0))
    }
}

impl WriteTx<'_> {
    /// [`Store::conflict`], read inside this transaction (under the writer
    /// lock, so no commit can resolve it meanwhile).
    pub async fn conflict(&mut self, id: i64) -> Result<Option<Conflict>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM conflicts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(row_to_conflict).transpose()
    }
}

// ------------------------------------------------------------ detection

/// A conflict found in a diff, not recorded yet.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    obj: String,
    field: String,
    path: String,
    record: String,
}

/// Whether the changes that took `doc` from `before` to its heads form one
/// chain standing on exactly `before`: then none of their operations is
/// concurrent with another, and the write cannot make a conflict (it can
/// resolve one).
pub(crate) fn linear(doc: &Automerge, before: &[ChangeHash]) -> bool {
    let new = doc.get_changes_meta(before);
    if new.is_empty() {
        return true;
    }
    let heads = doc.get_heads();
    let [head] = heads.as_slice() else {
        return false;
    };
    let deps: std::collections::HashMap<ChangeHash, &[ChangeHash]> =
        new.iter().map(|c| (c.hash, c.deps.as_slice())).collect();
    let mut at = *head;
    let mut seen = 0;
    loop {
        let Some(d) = deps.get(&at) else {
            return false;
        };
        seen += 1;
        match d {
            [one] if deps.contains_key(one) => at = *one,
            _ => {
                let mut d = d.to_vec();
                d.sort();
                let mut b = before.to_vec();
                b.sort();
                return d == b && seen == new.len();
            }
        }
    }
}

/// The map keys `patches` touch that hold more than one value in `doc`.
pub(crate) fn find(id: &DocId, doc: &Automerge, patches: &[Patch]) -> Vec<Found> {
    let mut seen: HashSet<(&ObjId, &str)> = HashSet::new();
    let mut out = Vec::new();
    for p in patches {
        let key = match &p.action {
            PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => key.as_str(),
            PatchAction::Conflict {
                prop: Prop::Map(key),
            } => key.as_str(),
            _ => continue,
        };
        if !seen.insert((&p.obj, key)) || count(doc, &p.obj, key) < 2 {
            continue;
        }
        let segs: Vec<String> = p.path.iter().map(|(_, prop)| prop_str(prop)).collect();
        out.push(Found {
            obj: p.obj.to_string(),
            field: key.to_owned(),
            path: path_str(&segs, key),
            record: record_of(id, &segs, key),
        });
    }
    out
}

/// Keeps the `conflicts` rows of document `row` right after a write:
/// drops those whose field holds one value or none, and records `found`
/// (the conflicts the write's diff shows; `None` when the write cannot
/// have made any, see [`linear`]), stamped `now`.
pub(crate) async fn track(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
    found: Option<Vec<Found>>,
    now: i64,
) -> Result<()> {
    let known = sqlx::query("SELECT id, obj, field FROM conflicts WHERE doc = $1")
        .bind(row)
        .fetch_all(&mut *conn)
        .await?;
    let mut held: HashSet<(String, String)> = HashSet::new();
    let mut gone = Vec::new();
    for r in &known {
        let (obj, field): (String, String) = (r.get(1), r.get(2));
        if locate(doc, &obj).is_some_and(|o| count(doc, &o, &field) > 1) {
            held.insert((obj, field));
        } else {
            gone.push(r.get::<i64, _>(0));
        }
    }
    for c in gone {
        sqlx::query("DELETE FROM conflicts WHERE id = $1")
            .bind(c)
            .execute(&mut *conn)
            .await?;
    }
    let Some(found) = found else {
        return Ok(());
    };
    let rows = found
        .into_iter()
        .filter(|f| !held.contains(&(f.obj.clone(), f.field.clone())))
        .map(|f| ConflictRow {
            doc: row,
            doc_id: id.to_string(),
            obj: f.obj,
            field: f.field,
            path: f.path,
            record: f.record,
            detected_at: now,
        });
    write(conn, rows).await
}

fn count(doc: &Automerge, obj: &ObjId, key: &str) -> usize {
    doc.get_all(obj, key).map(|v| v.len()).unwrap_or(0)
}

fn prop_str(p: &Prop) -> String {
    match p {
        Prop::Map(k) => k.clone(),
        Prop::Seq(i) => i.to_string(),
    }
}

fn path_str(segs: &[String], key: &str) -> String {
    let mut all: Vec<&str> = segs.iter().map(String::as_str).collect();
    all.push(key);
    all.join("/")
}

fn record_of(id: &DocId, segs: &[String], key: &str) -> String {
    match segs {
        [c, r, ..] if COLLECTIONS.contains(&c.as_str()) => r.clone(),
        [c] if COLLECTIONS.contains(&c.as_str()) => key.to_owned(),
        _ => {
            let s = id.to_string();
            match s.split_once('/') {
                Some((_, subject)) => subject.to_owned(),
                None => s,
            }
        }
    }
}

// -------------------------------------------------------------- reading

/// The object `obj` (`_root` or `counter@actor`) of `doc`, if it has it.
pub fn locate(doc: &Automerge, obj: &str) -> Option<ObjId> {
    if obj == "_root" {
        return Some(automerge::ROOT);
    }
    // Checked here: automerge's parser panics on bad hex.
    let (counter, actor) = obj.split_once('@')?;
    let well_formed = !counter.is_empty()
        && counter.bytes().all(|b| b.is_ascii_digit())
        && actor.len() % 2 == 0
        && actor.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return None;
    }
    let id = doc.import_obj(obj).ok()?;
    doc.object_type(&id).ok()?;
    Some(id)
}

/// The field's path as the document has it now (`None` once its object is
/// gone).
pub fn current_path(doc: &Automerge, c: &Conflict) -> Option<String> {
    let obj = locate(doc, &c.obj)?;
    let segs: Vec<String> = doc
        .parents(&obj)
        .ok()?
        .path()
        .iter()
        .map(|(_, p)| prop_str(p))
        .collect();
    Some(path_str(&segs, &c.field))
}

/// Every value the conflict's field holds now, the one reads show first
/// (none once its object is gone; one once it is resolved).
pub fn values(doc: &Automerge, c: &Conflict) -> Vec<ConflictValue> {
    let Some(obj) = locate(doc, &c.obj) else {
        return Vec::new();
    };
    let withheld = WITHHELD.contains(&c.field.as_str()) && deidentified(doc, c);
    let mut all = doc.get_all(&obj, c.field.as_str()).unwrap_or_default();
    all.reverse();
    all.into_iter()
        .map(|(v, op)| {
            let change = doc.hash_for_opid(&op);
            let meta = change.and_then(|h| doc.get_change_meta_by_hash(&h));
            let origin = meta.as_ref().and_then(|m| Author::origin(&m.actor));
            let is_object = matches!(v, Value::Object(_));
            ConflictValue {
                value: if withheld {
                    member::DEIDENTIFIED_NAME.to_owned()
                } else {
                    text(doc, &v, &op)
                },
                is_object,
                op_id: op.to_string(),
                node: origin.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
                unit: origin.map(|o| o.unit.to_string()).unwrap_or_default(),
                written_at: meta
                    .map(|m| hopluu_model::doc::change_time_millis(m.timestamp))
                    .unwrap_or(0),
                change,
            }
        })
        .collect()
}

/// Whether the conflict lies in a roster record that was de-identified.
fn deidentified(doc: &Automerge, c: &Conflict) -> bool {
    if !matches!(c.doc.kind(), DocKind::Roster) {
        return false;
    }
    let Ok(id) = MemberId::parse("record", &c.record) else {
        return false;
    };
    member::read(doc, &id)
        .ok()
        .flatten()
        .is_some_and(|m| m.deidentified.is_some())
}

fn text(doc: &Automerge, v: &Value<'_>, id: &ObjId) -> String {
    match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            other => scalar_json(other),
        },
        Value::Object(_) => match ReadDoc::hydrate(doc, id, None) {
            Ok(h) => {
                let mut out = String::new();
                hydrated_json(&h, &mut out);
                out
            }
            Err(_) => "null".to_owned(),
        },
    }
}

fn scalar_json(s: &ScalarValue) -> String {
    match s {
        ScalarValue::Str(s) => json_str(s),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::F64(f) if f.is_finite() => f.to_string(),
        ScalarValue::Counter(c) => c.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Bytes(b) => {
            json_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        ScalarValue::F64(_) | ScalarValue::Null | ScalarValue::Unknown { .. } => "null".to_owned(),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hydrated_json(v: &hydrate::Value, out: &mut String) {
    match v {
        hydrate::Value::Scalar(s) => out.push_str(&scalar_json(s)),
        hydrate::Value::Text(t) => out.push_str(&json_str(&t.to_string())),
        hydrate::Value::List(l) => {
            out.push('[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                hydrated_json(&item.value, out);
            }
            out.push(']');
        }
        hydrate::Value::Map(m) => {
            let sorted: std::collections::BTreeMap<&String, &hydrate::MapValue> =
                m.iter().collect();
            out.push('{');
            for (i, (k, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_str(k));
                out.push(':');
                hydrated_json(&item.value, out);
            }
            out.push('}');
        }
    }
}

// ------------------------------------------------------------ resolving

/// Writes `choice` into the conflict's field as one change by `author`,
/// replacing every value the field holds; returns that change's hash.
///
/// The value to keep is named by its operation id, or by a start of it
/// (with the `@`) that no other value's has. Refused, naming the request's
/// field, when the conflict is gone (`id`), the operation id names none or
/// several of its values (`keep_op_id`), or the
/// new value does not fit the field (`value`): a string longer than 1,000
/// characters or with control characters, a number or boolean that does
/// not parse, a field holding objects (keep one of them instead), or a
/// record that would no longer read as the model expects (a gender, date
/// or status it does not know). On an error after the edit the document
/// holds it: drop the transaction (nothing is committed).
pub fn resolve(
    doc: &mut Automerge,
    author: &Author,
    c: &Conflict,
    choice: &Resolution,
) -> Result<ChangeHash, ModelError> {
    let obj = locate(doc, &c.obj).ok_or_else(|| gone(c))?;
    let values = doc.get_all(&obj, c.field.as_str())?;
    if values.len() < 2 {
        return Err(gone(c));
    }
    enum Write {
        Scalar(ScalarValue),
        Object(hydrate::Value),
    }
    let write = match choice {
        Resolution::Keep(op) => {
            let op = op.trim();
            let ops: Vec<String> = values.iter().map(|(_, id)| id.to_string()).collect();
            // The whole op id, or (actor ids are long) a start of it that
            // only one value's has.
            let exact = ops.iter().position(|o| o == op);
            let starts: Vec<usize> = (0..ops.len())
                .filter(|i| op.contains('@') && ops[*i].starts_with(op))
                .collect();
            let i = match (exact, starts.as_slice()) {
                (Some(i), _) | (None, &[i]) => i,
                (None, []) => {
                    return Err(ModelError::invalid(
                        "keep_op_id",
                        format!(
                            "{op:?} is not one of the values of conflict {} ({}): expected one of {}",
                            c.id,
                            c.path,
                            ops.join(", ")
                        ),
                    ));
                }
                (None, _) => {
                    return Err(ModelError::invalid(
                        "keep_op_id",
                        format!(
                            "{op:?} starts more than one value's op id in conflict {} ({}): give more of it",
                            c.id, c.path
                        ),
                    ));
                }
            };
            let (v, id) = &values[i];
            match v {
                Value::Scalar(s) => Write::Scalar(s.as_ref().clone()),
                Value::Object(_) => Write::Object(ReadDoc::hydrate(doc, id, None)?),
            }
        }
        Resolution::Value(text) => {
            // The value reads show decides the type.
            let (shown, _) = values.last().expect("two values at least");
            let Value::Scalar(shown) = shown else {
                return Err(ModelError::invalid(
                    "value",
                    format!(
                        "{} holds objects, not a value to type in: keep one of its values instead",
                        c.path
                    ),
                ));
            };
            Write::Scalar(typed(text, shown.as_ref(), &c.path)?)
        }
    };
    let message = format!("resolve conflict {}", c.path);
    edit(doc, author, &message, |tx| {
        match &write {
            Write::Scalar(s) => tx.put(&obj, c.field.as_str(), s.clone())?,
            Write::Object(h) => {
                tx.batch_create_object(&obj, c.field.as_str(), h, false)?;
            }
        }
        Ok(())
    })?;
    readable(&c.doc, doc, &c.record).map_err(|e| {
        ModelError::invalid(
            "value",
            format!("{} would not read back as a valid record: {e}", c.path),
        )
    })?;
    doc.get_heads()
        .first()
        .copied()
        .ok_or_else(|| ModelError::document(&c.doc, "no heads after a write"))
}

fn gone(c: &Conflict) -> ModelError {
    ModelError::precondition(
        "id",
        format!(
            "conflict {} ({} in {}) holds one value now: it is resolved already",
            c.id, c.path, c.doc
        ),
    )
}

/// `text` as a value of the same type as `like`.
fn typed(text: &str, like: &ScalarValue, path: &str) -> Result<ScalarValue, ModelError> {
    let bad = |what: &str| ModelError::invalid("value", format!("{path} holds {what}"));
    Ok(match like {
        ScalarValue::Str(_) => ScalarValue::Str(clean_text("value", text, 1000, false)?.into()),
        ScalarValue::Int(_) => ScalarValue::Int(
            text.trim()
                .parse()
                .map_err(|_| bad("whole numbers: expected one"))?,
        ),
        ScalarValue::Uint(_) => ScalarValue::Uint(
            text.trim()
                .parse()
                .map_err(|_| bad("whole numbers from 0: expected one"))?,
        ),
        ScalarValue::F64(_) => ScalarValue::F64(
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad("numbers: expected one"))?,
        ),
        ScalarValue::Boolean(_) => ScalarValue::Boolean(match text.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(bad("true or false")),
        }),
        ScalarValue::Timestamp(_) => ScalarValue::Timestamp(
            text.trim()
                .parse()
                .map_err(|_| bad("timestamps (ms since the epoch): expected one"))?,
        ),
        _ => {
            return Err(bad(
                "values that cannot be typed in: keep one of its values instead",
            ));
        }
    })
}

/// Whether the document (and the record) still reads as the model expects:
/// what the projection will read when the change is committed.
fn readable(id: &DocId, doc: &Automerge, record: &str) -> Result<(), ModelError> {
    hopluu_model::DocMeta::read(id.clone(), doc)?;
    let one: BTreeSet<String> = [record.to_owned()].into();
    match id {
        DocId::Unit(_) => unit::read(id, doc).map(drop),
        DocId::Roster { .. } => member::read_many(doc, Some(&one)).map(drop),
        DocId::RosterPrivate { .. } => member::read_private(doc, Some(&one)).map(drop),
        DocId::Campaign(_) => campaign::read(id, doc).map(drop),
        DocId::Emulation { .. } => emulation::read(doc).map(drop),
        DocId::Proposal(_) => award::read_proposal(id, doc).map(drop),
        DocId::Award(_) => award::read_award(id, doc).map(drop),
        DocId::Decision(_) => hopluu_model::reorg::read(id, doc).map(drop),
        DocId::Node(_) => hopluu_model::hosting::read(id, doc).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_checked_before_automerge_parses_them() {
        let doc = Automerge::new();
        assert_eq!(locate(&doc, "_root"), Some(automerge::ROOT));
        for bad in ["", "1@", "@ab", "x@ab", "1@abc", "1@zz", "1@ab"] {
            assert_eq!(locate(&doc, bad), None, "{bad}");
        }
    }

    #[test]
    fn records_are_named_by_their_collection() {
        let roster: DocId = "roster/g1".parse().unwrap();
        let segs = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            record_of(&roster, &segs(&["members", "m-1"]), "position"),
            "m-1"
        );
        assert_eq!(record_of(&roster, &segs(&["members"]), "m-2"), "m-2");
        let unit: DocId = "unit/hg".parse().unwrap();
        assert_eq!(record_of(&unit, &[], "name"), "hg");
        assert_eq!(
            path_str(&segs(&["members", "m-1"]), "position"),
            "members/m-1/position"
        );
    }

    #[test]
    fn values_as_json() {
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(scalar_json(&ScalarValue::Int(-3)), "-3");
        assert_eq!(scalar_json(&ScalarValue::Null), "null");
    }
}
