//! Integration tests of the domain model: every document kind through an
//! automerge save/load round trip, validation (every rejected input names
//! its field and leaves the document unchanged), roster buckets, the
//! members a diff touches, and merges of concurrent edits.
//!
//! Time is always explicit: [`today`] is a fixed date and every [`Author`]
//! writes at time 0, so nothing here reads the system clock.

mod awards;
mod buckets;
mod campaigns;
mod members;
mod merge;
mod personal;
mod shapes;
mod units;

use std::fmt::Debug;

use automerge::Automerge;
use hopluu_model::member::{self, Member, MemberInput, NewMember};
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit, Unit};
use hopluu_model::{Author, Clock, Date, DocId, FixedClock, MemberId, ModelError, UnitId};

/// The day every test runs on.
pub const TODAY: &str = "2025-09-01";

pub fn d(s: &str) -> Date {
    s.parse()
        .unwrap_or_else(|()| panic!("bad date in a test: {s}"))
}

pub fn clock() -> FixedClock {
    FixedClock(d(TODAY))
}

pub fn today() -> Date {
    clock().today()
}

/// The author of changes made on `node`.
pub fn author(node: &str) -> Author {
    Author {
        actor: Author::actor_for(node, &UnitId::parse("unit", "vn").unwrap(), &[1, 2, 3, 4]),
        time_millis: 0,
    }
}

pub fn node_a() -> Author {
    author("node-a")
}

pub fn node_b() -> Author {
    author("node-b")
}

pub fn uid(s: &str) -> UnitId {
    UnitId::parse("unit_id", s).unwrap()
}

pub fn mid(s: &str) -> MemberId {
    MemberId::parse("member_id", s).unwrap()
}

/// The document after `save` and `load`, as another node would read it.
pub fn reload(doc: &Automerge) -> Automerge {
    let bytes = doc.save();
    let loaded = Automerge::load(&bytes).expect("a saved document loads");
    assert_eq!(
        loaded.get_heads(),
        doc.get_heads(),
        "heads survive save/load"
    );
    loaded
}

/// The field an `Invalid` error names (panics on any other error).
#[track_caller]
pub fn invalid_field<T: Debug>(r: Result<T, ModelError>) -> String {
    match r {
        Err(ModelError::Invalid { field, reason }) => {
            assert!(!reason.is_empty(), "{field}: the reason is empty");
            field
        }
        Err(other) => panic!("expected an invalid-input error, got {other:?}"),
        Ok(v) => panic!("expected an invalid-input error, got Ok({v:?})"),
    }
}

/// Asserts that `r` was rejected as invalid input naming `field`.
#[track_caller]
pub fn assert_invalid<T: Debug>(r: Result<T, ModelError>, field: &str) {
    let got = invalid_field(r);
    assert_eq!(got, field, "the error names the wrong field");
}

/// Runs an edit that must be rejected naming `field`, and checks the
/// document is exactly as before (same heads, same content).
#[track_caller]
pub fn assert_rejected<T: Debug>(
    doc: &mut Automerge,
    field: &str,
    f: impl FnOnce(&mut Automerge) -> Result<T, ModelError>,
) {
    let heads = doc.get_heads();
    let content = doc.hydrate(None);
    let r = f(doc);
    assert_invalid(r, field);
    assert_eq!(doc.get_heads(), heads, "a rejected edit changed the heads");
    assert_eq!(
        doc.hydrate(None),
        content,
        "a rejected edit changed the content"
    );
}

/// What the writers made of document `id` passes the shape a receiving
/// node checks it against: the tables in `shape` name every path and value
/// the node itself writes.
pub fn assert_shaped(id: &DocId, doc: &Automerge) {
    if let Err(e) = hopluu_model::shape::check(id, doc, &[]) {
        panic!("{id} as the node writes it fails its own shape: {e}");
    }
}

pub fn decision(no: &str, decided_on: &str, effective_on: &str) -> Decision {
    Decision::parse(no, decided_on, effective_on, today()).unwrap()
}

/// Creates `unit/{id}` in a new document.
pub fn new_unit(id: &str, name: &str, kind: &str, parent: Option<&str>) -> (Automerge, Unit) {
    let kinds = KindCatalogue::default();
    let new = NewUnit::parse(
        &kinds,
        Some(id),
        name,
        kind,
        parent,
        decision("01/QĐ-TLĐ", "2020-01-15", "2020-02-01"),
    )
    .unwrap();
    let mut doc = Automerge::new();
    let unit = unit::create(&mut doc, &node_a(), &new).unwrap();
    (doc, unit)
}

pub fn unit_doc(id: &str) -> DocId {
    DocId::Unit(uid(id))
}

/// A complete, valid member form.
pub fn input(full_name: &str, card: &str) -> MemberInput {
    MemberInput {
        full_name: full_name.to_owned(),
        birth_date: "1990-05-17".to_owned(),
        gender: "nữ".to_owned(),
        card_number: card.to_owned(),
        joined_on: "2012-03-01".to_owned(),
        position: "Công nhân".to_owned(),
        national_id: "001190004005".to_owned(),
        ethnicity: "Kinh".to_owned(),
        religion: String::new(),
    }
}

/// A member joining `unit`, validated from a form.
pub fn joining(id: &str, unit: &str, full_name: &str, card: &str) -> Member {
    let new = NewMember::parse(&input(full_name, card), today()).unwrap();
    member::joining(mid(id), uid(unit), &new)
}

/// A roster of `unit` (bucket 0) with the given members added, one change each.
pub fn roster(unit: &str, members: &[Member]) -> Automerge {
    let mut doc = Automerge::new();
    for m in members {
        member::add(&mut doc, &node_a(), &uid(unit), 0, m).unwrap();
    }
    doc
}
