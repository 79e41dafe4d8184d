//! Small helpers over automerge: read typed fields, build new records with
//! `batch_create_object`, and write a field only when its value changes (so
//! an unchanged field never becomes a conflict with a concurrent edit).

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value, hydrate};

use crate::error::ModelError;

/// Reads one object of a document. Missing fields read as empty/zero so that
/// documents written by an older version (without a newer field) still read.
pub struct Obj<'a, R: ReadDoc> {
    pub doc: &'a R,
    pub id: ObjId,
}

impl<'a, R: ReadDoc> Obj<'a, R> {
    pub fn root(doc: &'a R) -> Self {
        Obj {
            doc,
            id: automerge::ROOT,
        }
    }

    fn scalar(&self, key: &str) -> Option<ScalarValue> {
        match self.doc.get(&self.id, key) {
            Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> String {
        match self.scalar(key) {
            Some(ScalarValue::Str(s)) => s.to_string(),
            _ => String::new(),
        }
    }

    pub fn i64(&self, key: &str) -> i64 {
        match self.scalar(key) {
            Some(ScalarValue::Int(i)) => i,
            Some(ScalarValue::Uint(u)) => u as i64,
            _ => 0,
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        matches!(self.scalar(key), Some(ScalarValue::Boolean(true)))
    }

    pub fn obj(&self, key: &str) -> Option<Obj<'a, R>> {
        match self.doc.get(&self.id, key) {
            Ok(Some((Value::Object(_), id))) => Some(Obj { doc: self.doc, id }),
            _ => None,
        }
    }

    /// The keys of this map object, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.doc.keys(&self.id).collect()
    }

    /// The objects in the list at `key`, in order.
    pub fn list(&self, key: &str) -> Vec<Obj<'a, R>> {
        let Some(list) = self.obj(key) else {
            return Vec::new();
        };
        let n = self.doc.length(&list.id);
        (0..n)
            .filter_map(|i| match self.doc.get(&list.id, i) {
                Ok(Some((Value::Object(_), id))) => Some(Obj { doc: self.doc, id }),
                _ => None,
            })
            .collect()
    }

    /// The strings in the list at `key`, in order.
    pub fn strings(&self, key: &str) -> Vec<String> {
        let Some(list) = self.obj(key) else {
            return Vec::new();
        };
        let n = self.doc.length(&list.id);
        (0..n)
            .filter_map(|i| match self.doc.get(&list.id, i) {
                Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// How many values the field holds: more than one means concurrent
    /// writes left a conflict.
    pub fn conflicted(&self, key: &str) -> bool {
        self.doc
            .get_all(&self.id, key)
            .map(|v| v.len() > 1)
            .unwrap_or(false)
    }
}

/// One map object read in a single pass ([`Obj::read_whole`]): the same
/// accessors as [`Obj`] over values already in memory. Reading a record of
/// a dozen fields this way scans its operations once, where a `get` per
/// field seeks from the start of the object each time.
#[derive(Clone, Copy)]
pub struct Whole<'a>(pub &'a hydrate::Map);

impl<'a> Whole<'a> {
    fn value(&self, key: &str) -> Option<&'a hydrate::Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> String {
        match self.value(key) {
            Some(hydrate::Value::Scalar(ScalarValue::Str(s))) => s.to_string(),
            _ => String::new(),
        }
    }

    pub fn obj(&self, key: &str) -> Option<Whole<'a>> {
        match self.value(key) {
            Some(hydrate::Value::Map(m)) => Some(Whole(m)),
            _ => None,
        }
    }

    /// The map objects in the list at `key`, in order.
    pub fn list(&self, key: &str) -> Vec<Whole<'a>> {
        match self.value(key) {
            Some(hydrate::Value::List(l)) => l
                .iter()
                .filter_map(|v| match &v.value {
                    hydrate::Value::Map(m) => Some(Whole(m)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The strings in the list at `key`, in order.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.value(key) {
            Some(hydrate::Value::List(l)) => l
                .iter()
                .filter_map(|v| match &v.value {
                    hydrate::Value::Scalar(ScalarValue::Str(s)) => Some(s.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn i64(&self, key: &str) -> i64 {
        match self.value(key) {
            Some(hydrate::Value::Scalar(ScalarValue::Int(i))) => *i,
            Some(hydrate::Value::Scalar(ScalarValue::Uint(u))) => *u as i64,
            _ => 0,
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        matches!(
            self.value(key),
            Some(hydrate::Value::Scalar(ScalarValue::Boolean(true)))
        )
    }

    /// The keys of this map, sorted.
    pub fn keys(&self) -> Vec<&'a String> {
        let mut keys: Vec<&String> = self.0.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    }
}

impl<R: ReadDoc> Obj<'_, R> {
    /// This object, read whole in one pass; `None` unless it is a map.
    pub fn read_whole(&self) -> Option<hydrate::Map> {
        match self.doc.hydrate(&self.id, None) {
            Ok(hydrate::Value::Map(m)) => Some(m),
            _ => None,
        }
    }
}

/// A builder for a new record, written with one `batch_create_object`.
#[derive(Default)]
pub struct Record(HashMap<String, hydrate::Value>);

impl Record {
    pub fn new() -> Self {
        Record::default()
    }
    pub fn str(mut self, key: &str, v: impl AsRef<str>) -> Self {
        self.0.insert(
            key.to_owned(),
            hydrate::Value::Scalar(ScalarValue::Str(v.as_ref().into())),
        );
        self
    }
    pub fn int(mut self, key: &str, v: i64) -> Self {
        self.0
            .insert(key.to_owned(), hydrate::Value::Scalar(ScalarValue::Int(v)));
        self
    }
    pub fn bool(mut self, key: &str, v: bool) -> Self {
        self.0.insert(
            key.to_owned(),
            hydrate::Value::Scalar(ScalarValue::Boolean(v)),
        );
        self
    }
    pub fn strings(mut self, key: &str, v: &[String]) -> Self {
        let list: Vec<hydrate::Value> = v
            .iter()
            .map(|s| hydrate::Value::Scalar(ScalarValue::Str(s.as_str().into())))
            .collect();
        self.0.insert(key.to_owned(), list.into());
        self
    }
    pub fn records(mut self, key: &str, v: Vec<Record>) -> Self {
        let list: Vec<hydrate::Value> = v.into_iter().map(Record::into_value).collect();
        self.0.insert(key.to_owned(), list.into());
        self
    }
    pub fn record(mut self, key: &str, v: Record) -> Self {
        self.0.insert(key.to_owned(), v.into_value());
        self
    }
    pub fn map(mut self, key: &str) -> Self {
        self.0
            .insert(key.to_owned(), hydrate::Value::Map(hydrate::Map::default()));
        self
    }
    pub fn into_value(self) -> hydrate::Value {
        hydrate::Value::Map(hydrate::Map::from(self.0))
    }

    /// Writes the record at `obj[key]` in one batch operation.
    pub fn create<T: Transactable>(
        self,
        tx: &mut T,
        obj: &ObjId,
        key: &str,
    ) -> Result<ObjId, ModelError> {
        Ok(tx.batch_create_object(obj, key, &self.into_value(), false)?)
    }

    /// Appends the record to the list at `obj`.
    pub fn append<T: Transactable>(self, tx: &mut T, list: &ObjId) -> Result<ObjId, ModelError> {
        let n = tx.length(list);
        Ok(tx.batch_create_object(list, n, &self.into_value(), true)?)
    }

    /// Writes the record's fields into the root of an empty document.
    pub fn init_root<T: Transactable>(self, tx: &mut T) -> Result<(), ModelError> {
        match self.into_value() {
            hydrate::Value::Map(m) => Ok(tx.init_root_from_hydrate(&m)?),
            _ => unreachable!("a record is a map"),
        }
    }
}

/// Puts a string only if it differs from the current value.
pub fn put_str<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    v: &str,
) -> Result<(), ModelError> {
    if (Obj {
        doc: tx,
        id: obj.clone(),
    })
    .str(key)
        != v
        || !has(tx, obj, key)
    {
        tx.put(obj, key, v)?;
    }
    Ok(())
}

pub fn put_int<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    v: i64,
) -> Result<(), ModelError> {
    if (Obj {
        doc: tx,
        id: obj.clone(),
    })
    .i64(key)
        != v
        || !has(tx, obj, key)
    {
        tx.put(obj, key, v)?;
    }
    Ok(())
}

pub fn put_bool<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    v: bool,
) -> Result<(), ModelError> {
    if (Obj {
        doc: tx,
        id: obj.clone(),
    })
    .bool(key)
        != v
        || !has(tx, obj, key)
    {
        tx.put(obj, key, v)?;
    }
    Ok(())
}

/// Replaces a list of strings (used for small lists edited as a whole).
pub fn put_strings<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    v: &[String],
) -> Result<(), ModelError> {
    if (Obj {
        doc: tx,
        id: obj.clone(),
    })
    .strings(key)
        == v
    {
        return Ok(());
    }
    let list = tx.put_object(obj, key, ObjType::List)?;
    for (i, s) in v.iter().enumerate() {
        tx.insert(&list, i, s.as_str())?;
    }
    Ok(())
}

fn has<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> bool {
    matches!(doc.get(obj, key), Ok(Some(_)))
}

/// The map object at `obj[key]`, created if absent.
pub fn ensure_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId, ModelError> {
    match tx.get(obj, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Ok(tx.put_object(obj, key, ObjType::Map)?),
    }
}

/// The list object at `obj[key]`, created if absent.
pub fn ensure_list<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId, ModelError> {
    match tx.get(obj, key)? {
        Some((Value::Object(ObjType::List), id)) => Ok(id),
        _ => Ok(tx.put_object(obj, key, ObjType::List)?),
    }
}

/// The object at `obj[key]`, which must exist.
pub fn child<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key) {
        Ok(Some((Value::Object(_), id))) => Some(id),
        _ => None,
    }
}

/// For each root map in `collections` (an emulation record's `initiatives`
/// and `works`, a roster's `members`), the keys of the entries the changes
/// made since `before` touched, found from those changes' own operations
/// (read once for all the collections): the cost follows the changes, not
/// the document (an automerge diff scans every operation of the document).
/// `None` when the changes replace or remove a collection itself, or name
/// an object this document cannot place: then every entry counts as
/// touched.
pub fn touched_keys(
    doc: &automerge::Automerge,
    before: &[automerge::ChangeHash],
    collections: &[&str],
) -> Option<Vec<std::collections::BTreeSet<String>>> {
    use automerge::legacy::{Key, ObjectId};
    use automerge::{ObjId, Prop};
    let mut out = vec![std::collections::BTreeSet::new(); collections.len()];
    // Objects already placed: the collection (by index) and the entry of
    // one, or `None` for an object outside every collection.
    let mut placed: HashMap<String, Option<(usize, String)>> = HashMap::new();
    for change in doc.get_changes(before) {
        for op in change.decode().operations {
            let obj = match &op.obj {
                ObjectId::Root => match &op.key {
                    Key::Map(k) if collections.contains(&k.as_str()) => return None,
                    _ => continue,
                },
                ObjectId::Id(id) => id.to_string(),
            };
            let entry = match placed.get(&obj) {
                Some(e) => e.clone(),
                None => {
                    let id: ObjId = doc.import_obj(&obj).ok()?;
                    let path = doc.parents(&id).ok()?.path();
                    let e = match path.as_slice() {
                        [(_, Prop::Map(c)), rest @ ..] => {
                            match collections.iter().position(|x| x == c) {
                                None => None,
                                Some(i) => match rest.first() {
                                    Some((_, Prop::Map(k))) => Some((i, k.clone())),
                                    Some(_) => return None,
                                    // The collection's own object: the
                                    // op's key is the entry.
                                    None => Some((i, String::new())),
                                },
                            }
                        }
                        _ => None,
                    };
                    placed.insert(obj, e.clone());
                    e
                }
            };
            match entry {
                None => {}
                Some((i, k)) if k.is_empty() => match &op.key {
                    Key::Map(k) => {
                        out[i].insert(k.to_string());
                    }
                    Key::Seq(_) => return None,
                },
                Some((i, k)) => {
                    out[i].insert(k);
                }
            }
        }
    }
    Some(out)
}

/// Whether `doc` holds the change `hash`. Read from the change graph: the
/// cost of `get_change_by_hash`, which rebuilds the whole change from the
/// document's operations (a roster imported in one change of a thousand
/// members, every time), is never paid to learn only this.
pub fn knows(doc: &automerge::Automerge, hash: &automerge::ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ChangeHash, ROOT, ReadDoc};

    #[test]
    fn knows_answers_as_the_whole_change_would() {
        let mut a = AutoCommit::new();
        a.put(ROOT, "unit", "g1").expect("put");
        let first = a.commit().expect("a change");
        let mut b = a.fork();
        b.put(ROOT, "name", "CĐCS").expect("put");
        let second = b.commit().expect("a change");
        let (a, b) = (a.document(), b.document());
        let unknown = ChangeHash([7; 32]);
        for (doc, hash, held) in [
            (a, first, true),
            (b, first, true),
            (b, second, true),
            (a, second, false),
            (a, unknown, false),
        ] {
            assert_eq!(super::knows(doc, &hash), held);
            assert_eq!(doc.get_change_by_hash(&hash).is_some(), held);
        }
    }
}
