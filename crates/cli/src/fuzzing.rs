//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer): every
//! decoder that meets bytes from outside the node. Each target in
//! `fuzz/fuzz_targets/` is one line calling a function here, and
//! `hopluu-tests` replays every committed corpus and regression input
//! through the same functions in the normal test run, so a crash found once
//! stays fixed.
//!
//! A body returns normally for any input; it panics only on a bug: a panic
//! in the code under test, or a broken round-trip or invariant asserted
//! here.
//!
//! - [`sync_frame`]: a replication frame off the wire (protobuf
//!   `hopluu.v1.SyncFrame`), converted as `hopluu_node::replication` does.
//! - [`automerge_payload`]: the automerge bytes a frame carries, met as the
//!   receiving session meets them, then read through the model.
//! - [`config`]: a node's TOML configuration, parsed and validated.
//! - [`import`]: a roster spreadsheet (CSV or XLSX) for `hopluu import`.
//!
//! This module lives in the `hopluu-cli` library because it is the one
//! crate that reaches every decoder (the roster importer is the CLI's) and
//! that `hopluu-tests` can depend on (as a dev-dependency: the CLI depends
//! on `hopluu-tests`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use hopluu_model::member::{self, MemberInput, MemberStatus, MemberUpdate, NewMember};
use hopluu_model::{Author, Date, DocId, DocKind, DocMeta, MemberId, UnitId, award, doc};
use hopluu_model::{campaign, emulation, unit};
use hopluu_node::config::Config;
use hopluu_node::replication::{from_pb, to_pb};
use hopluu_proto::v1 as pb;
use prost::Message as _;

use crate::import as roster_import;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/` file and its
/// `fuzz/corpus/` and `fuzz/regressions/` directories.
pub const TARGETS: [(&str, Target); 4] = [
    ("sync_frame", sync_frame),
    ("automerge_payload", automerge_payload),
    ("config", config),
    ("import", import),
];

/// The body of the target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}

// ---- sync_frame ----------------------------------------------------------

/// A `SyncFrame` as a peer sends it: protobuf-decoded, then converted with
/// [`from_pb`] as the node's gRPC inbound does. A frame that converts must
/// come back unchanged through [`to_pb`] (and through the wire encoding).
pub fn sync_frame(data: &[u8]) {
    let Ok(wire) = pb::SyncFrame::decode(data) else {
        return;
    };
    let frame = match from_pb(wire.clone()) {
        Ok(frame) => frame,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.is_refusal();
            return;
        }
    };
    let _ = frame.kind();
    let _ = frame.approx_bytes();
    // What the receiving session parses first in each frame (read off the
    // protobuf form, which must equal the frame's: asserted below).
    match &wire.body {
        Some(pb::sync_frame::Body::Hello(h)) => {
            let _ = UnitId::parse("hello.unit_id", &h.unit_id);
        }
        Some(pb::sync_frame::Body::Batch(b)) => {
            for u in &b.docs {
                doc_id_round_trips(&u.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Ack(a)) => {
            for d in &a.docs {
                doc_id_round_trips(&d.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Refusal(_)) | None => {}
    }
    let back = to_pb(frame.clone());
    assert_eq!(back, wire, "to_pb(from_pb(frame)) changed the frame");
    let bytes = back.encode_to_vec();
    let decoded = pb::SyncFrame::decode(bytes.as_slice()).expect("a frame just encoded decodes");
    let again = from_pb(decoded).expect("a frame that converted once converts again");
    assert_eq!(again, frame, "the frame changed through the wire encoding");
}

/// A document id the receiver accepts is in its one canonical spelling.
fn doc_id_round_trips(s: &str) {
    if let Ok(id) = DocId::parse("doc_id", s) {
        assert_eq!(
            id.to_string(),
            s,
            "a document id parsed from another spelling"
        );
        assert_eq!(DocId::parse("doc_id", &id.to_string()).ok(), Some(id));
    }
}

// ---- automerge_payload ---------------------------------------------------

/// The automerge bytes inside a frame, as the receiving session meets them:
/// a whole document for one it does not hold yet, changes (an incremental
/// save) onto one it holds, single changes, and sync protocol messages. Every
/// document that results is read through the model as the store's
/// projections read it; what the store would write (`save_after`) must load
/// back to the same heads.
pub fn automerge_payload(data: &[u8]) {
    let fixture = fixture();

    // ---- GATE: the receiver's authority check is called here. ----------
    // The gate of `hopluu-sync` (crates/sync/src/gate.rs) decodes a payload
    // and decides, change by change, what is applied. Call it here on
    // `data` as the session does for a batch from a child, e.g.
    // `gate::Incoming::decode(data, max_changes)`, then `gate::check(&tree,
    // &sender, &fixture.roster_id, Some(&owner), actor, hash)` for each
    // change (a fixture tree vn > hau-giang > hg-chau-thanh-a >
    // hg-cta-thcs, the sender `hg-chau-thanh-a` as a child), and apply what
    // passes the way the session applies it, then `after_apply`. Once the
    // session guards its automerge calls (fuzz/regressions/known-failing),
    // route the loads below through that same code. (`hopluu-cli` then
    // needs `hopluu-sync` as a dependency.)
    // ---- end GATE --------------------------------------------------------

    // A document this node does not hold yet: the session loads the
    // payload into an empty document.
    if let Ok(doc) = Automerge::load(data) {
        read_through_model(&doc);
    }
    let mut empty = Automerge::new();
    if empty.load_incremental(data).is_ok() {
        after_apply(&fixture.roster_id, &empty, &[], None);
    }

    // Changes onto a document this node holds (`Payload::Changes`).
    let mut doc = fixture.roster.clone();
    if doc.load_incremental(data).is_ok() {
        after_apply(&fixture.roster_id, &doc, &fixture.heads, Some(fixture));
    }

    // One change on its own, decoded as the gate in `hopluu-sync` decodes
    // the chunks of a payload (`Change::try_from`, which checks no
    // checksum). Every chunk carries a checksum, the first 4 bytes of its
    // SHA-256 hash, that `load_incremental` checks and random mutation
    // almost never gets right, but that any sender computes: the change is
    // also loaded with its checksum made valid, which reaches automerge's
    // change decoding and application behind it.
    if let Ok(change) = Change::try_from(data) {
        inspect_change(&change);
        let mut valid = data.to_vec();
        if valid.len() >= 8 {
            valid[4..8].copy_from_slice(&change.hash().0[..4]);
        }
        if valid != data {
            let mut doc = fixture.roster.clone();
            if doc.load_incremental(&valid).is_ok() {
                after_apply(&fixture.roster_id, &doc, &fixture.heads, Some(fixture));
            }
        }
    }
    if let Ok(change) = Change::from_bytes(data.to_vec()) {
        inspect_change(&change);
    }

    // An automerge sync message (`Payload::Sync`), received with a fresh
    // sync state as at the start of a session, then answered.
    // (The peer's message itself is never encoded again: automerge's
    // encoder `debug_assert`s that hashes are sorted, which a decoded
    // message need not be; input `regressions/automerge_payload/
    // sync-message-unsorted-hashes`.)
    if let Ok(msg) = sync::Message::decode(data) {
        let mut doc = fixture.roster.clone();
        let mut state = sync::State::new();
        if doc.receive_sync_message(&mut state, msg).is_ok() {
            let theirs = state.their_heads.clone().unwrap_or_default();
            let _ = theirs.iter().all(|h| doc.get_change_by_hash(h).is_some());
            if let Some(reply) = doc.generate_sync_message(&mut state) {
                let _ = reply.encode();
            }
            // The session stores the state encoded and decodes it in a
            // later session.
            let _ = sync::State::decode(&state.encode());
            after_apply(&fixture.roster_id, &doc, &fixture.heads, Some(fixture));
        }
    }
    // A stored sync state (the store keeps the encoded state per peer).
    // Not encoded again: the states the session encodes are its own, and
    // automerge `debug_assert`s sorted hashes when encoding (input
    // `regressions/automerge_payload/sync-state-unsorted-hashes`).
    let _ = sync::State::decode(data);
}

/// What the receiver does once a payload is applied to `doc` (which had
/// `before` as heads).
fn after_apply(id: &DocId, doc: &Automerge, before: &[ChangeHash], base: Option<&Fixture>) {
    let heads = doc.get_heads();
    if heads == before {
        return;
    }
    let incoming = doc.get_changes(before);
    for change in &incoming {
        inspect_change(change);
    }

    // The session keeps a document only if its meta reads
    // (`DocMeta::read`); the store then projects it.
    let _ = DocMeta::read(id.clone(), doc);
    let touched = if before.is_empty() {
        None
    } else {
        member::touched_members(&doc.diff(before, &heads))
    };
    let _ = member::read_many(doc, touched.as_ref());
    let _ = member::read_private(doc, touched.as_ref());
    read_through_model(doc);

    // What the store writes for this commit must load back: the snapshot
    // (the fixture's save) plus the incremental chunk after `before`.
    let chunk = doc.save_after(before);
    let mut reloaded = match base {
        Some(f) => Automerge::load(&f.saved).expect("the fixture loads"),
        None => Automerge::new(),
    };
    reloaded
        .load_incremental(&chunk)
        .expect("the chunk the store would write loads back");
    assert_eq!(
        reloaded.get_heads(),
        heads,
        "snapshot + chunk loads to other heads"
    );
    // And a compaction (a fresh snapshot) too.
    let saved = doc.save();
    let compacted = Automerge::load(&saved).expect("a saved document loads back");
    assert_eq!(
        compacted.get_heads(),
        heads,
        "a saved document loads to other heads"
    );
}

/// Reads a change's metadata as a receiver inspecting where changes come
/// from would (the node of an actor is part of the actor id).
fn inspect_change(change: &Change) {
    let _ = change.hash();
    let _ = change.deps();
    let _ = change.seq();
    let _ = change.start_op();
    let _ = change.max_op();
    let _ = change.len();
    let _ = change.timestamp();
    let _ = change.message();
    let _ = change.raw_bytes().len();
    let _ = change.extra_bytes().len();
    let _ = Author::node_of(change.actor_id());
    for actor in change.other_actor_ids() {
        let _ = Author::node_of(actor);
    }
    // Not `change.decode()`: nothing on the receiving side expands a
    // change, and automerge 0.12.0 panics there on a change whose ops name
    // an actor index the change does not list (change.rs:331, :346).
}

/// Reads `doc` with every reader of the model, under ids of every kind
/// (the document's own `owner` when it names a unit, and the fixture's).
fn read_through_model(doc: &Automerge) {
    let owner = doc
        .get(automerge::ROOT, "owner")
        .ok()
        .flatten()
        .and_then(|(v, _)| v.into_string().ok())
        .and_then(|s| UnitId::parse("owner", &s).ok());
    let mut units = vec![fixture_unit()];
    units.extend(owner);
    for u in &units {
        for id in ids_of_every_kind(u) {
            let _ = DocMeta::read(id.clone(), doc);
            let _ = doc::check_version(&id, doc);
            match id.kind() {
                DocKind::Unit => drop(unit::read(&id, doc)),
                DocKind::Campaign => drop(campaign::read(&id, doc)),
                DocKind::Proposal => drop(award::read_proposal(&id, doc)),
                DocKind::Award => drop(award::read_award(&id, doc)),
                DocKind::Roster | DocKind::RosterPrivate | DocKind::Emulation => {}
            }
        }
    }
    let _ = emulation::read(doc);
    let _ = member::count(doc);
    if let Ok(members) = member::read_many(doc, None) {
        let ids: BTreeSet<String> = members.iter().map(|m| m.id.to_string()).collect();
        for m in &members {
            let _ = member::read(doc, &m.id);
        }
        let _ = member::read_many(doc, Some(&ids));
    }
    let _ = member::read_private(doc, None);
}

fn ids_of_every_kind(u: &UnitId) -> Vec<DocId> {
    let c = hopluu_model::CampaignId::parse("campaign", "c1").expect("a campaign id");
    let mut ids = vec![
        DocId::Unit(u.clone()),
        member::roster_doc(u, 0),
        member::private_doc(u, 0),
        DocId::Campaign(c.clone()),
        DocId::Emulation {
            unit: u.clone(),
            campaign: c,
        },
    ];
    ids.extend(DocId::parse("doc_id", "proposal/p1").ok());
    ids.extend(DocId::parse("doc_id", "award/a1").ok());
    ids
}

// ---- the fixture document ------------------------------------------------

/// The document incoming changes are applied to: a small roster written
/// through the model, the same bytes on every run.
#[derive(Debug)]
pub struct Fixture {
    pub roster_id: DocId,
    pub roster: Automerge,
    pub heads: Vec<ChangeHash>,
    /// `roster.save()`: the snapshot the store would hold.
    pub saved: Vec<u8>,
}

/// The fixture, built once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let unit = fixture_unit();
        let mut roster = Automerge::new();
        write_fixture_roster(&mut roster).expect("the fixture roster is valid");
        let saved = roster.save();
        Fixture {
            roster_id: member::roster_doc(&unit, 0),
            heads: roster.get_heads(),
            roster,
            saved,
        }
    })
}

/// The grassroots unit whose roster is the fixture.
pub const FIXTURE_UNIT: &str = "hg-cta-thcs";

/// The node that writes the fixture, and the day it writes on.
pub const FIXTURE_NODE: &str = "hg-chau-thanh-a";
pub const FIXTURE_TODAY: &str = "2025-09-01";

pub fn fixture_unit() -> UnitId {
    UnitId::parse("unit", FIXTURE_UNIT).expect("a unit id")
}

pub fn fixture_today() -> Date {
    Date::parse("today", FIXTURE_TODAY).expect("a date")
}

/// The fixture node's author: fixed actor and time, so the changes (and
/// their hashes) are the same on every run and on every store.
pub fn fixture_author() -> Author {
    node_author(FIXTURE_NODE)
}

/// The author of node `node_id` hosting the unit of the same id (as every
/// node of the fixtures does), with a fixed incarnation and time.
pub fn node_author(node_id: &str) -> Author {
    let unit = UnitId::parse("unit", node_id).expect("a unit id");
    Author {
        actor: Author::actor_for(node_id, &unit, b"fuzz"),
        time_millis: 1_756_684_800_000,
    }
}

/// The fixture's members: id, name, birth, gender, card, joined, position.
const FIXTURE_MEMBERS: [(&str, &str, &str, &str, &str, &str, &str); 3] = [
    (
        "m-an",
        "Nguyễn Văn An",
        "1990-03-15",
        "Nam",
        "HB-0001",
        "2015-05-01",
        "Tổ trưởng",
    ),
    (
        "m-binh",
        "Trần Thị Bình",
        "1985-11-02",
        "Nữ",
        "HB-0002",
        "2008-09-05",
        "Giáo viên",
    ),
    (
        "m-cuong",
        "Lò Văn Cường",
        "1979-01-20",
        "Nam",
        "HB-0003",
        "2001-04-30",
        "",
    ),
];

/// The fixture's members, parsed.
pub fn fixture_members() -> Vec<(MemberId, NewMember)> {
    FIXTURE_MEMBERS
        .iter()
        .map(|&(id, name, birth, gender, card, joined, position)| {
            let input = MemberInput {
                full_name: name.to_owned(),
                birth_date: birth.to_owned(),
                gender: gender.to_owned(),
                card_number: card.to_owned(),
                joined_on: joined.to_owned(),
                position: position.to_owned(),
                national_id: String::new(),
                ethnicity: String::new(),
                religion: String::new(),
            };
            (
                MemberId::parse("member_id", id).expect("a member id"),
                NewMember::parse(&input, fixture_today()).expect("a valid member"),
            )
        })
        .collect()
}

/// Writes the fixture roster (bucket 0 of [`FIXTURE_UNIT`]) into an empty
/// document: three members added, one promoted, one who left. The seed
/// generator writes the same changes into a real store, so payloads from
/// its sessions apply to the fixture.
pub fn write_fixture_roster(doc: &mut Automerge) -> Result<(), hopluu_model::ModelError> {
    let author = fixture_author();
    let unit = fixture_unit();
    let members = fixture_members();
    for (id, new) in &members {
        member::add(
            doc,
            &author,
            &unit,
            0,
            &member::joining(id.clone(), unit.clone(), new),
        )?;
    }
    let promote = MemberUpdate {
        position: Some("Chủ tịch công đoàn".to_owned()),
        ..MemberUpdate::default()
    };
    member::update(doc, &author, &members[0].0, &promote, fixture_today())?;
    member::end(
        doc,
        &author,
        &members[2].0,
        MemberStatus::Left,
        "nghỉ hưu",
        fixture_today(),
        None,
    )?;
    Ok(())
}

// ---- config ----------------------------------------------------------------

/// A node's configuration file: TOML parsed into [`Config`] and validated
/// ([`Config::from_toml`], which `hopluu serve --config` runs). Input that
/// is not UTF-8 is skipped (the file is read as a `String`). A valid
/// configuration answers every accessor; its `Debug` form (what the logs
/// show) never holds the database password.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    config
        .validate()
        .expect("a configuration that loaded validates again");
    let _ = config.unit_id();
    let url = config.database_url();
    let debug = format!("{config:?}");
    if url.starts_with("postgres")
        && let Some(redacted) = redacted_url(&url)
    {
        assert!(
            debug.contains(&format!("{redacted:?}")),
            "the Debug form of the configuration shows the database url other than \
             as {redacted:?}: {debug}"
        );
    }
}

/// `scheme://user:***@host…`: the url with its password hidden, where the
/// password is what a url parser reads (the user info ends at the
/// authority's *last* `@`); `None` when the url has no password.
fn redacted_url(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    Some(format!(
        "{}{}:***{}",
        &url[..start],
        &userinfo[..colon],
        &rest[at..]
    ))
}

// ---- import ----------------------------------------------------------------

/// A roster file for `hopluu import members`, read both as CSV
/// ([`roster_import::read_csv`]) and as XLSX ([`roster_import::read_xlsx`]):
/// the corpus holds both kinds and each reader refuses the other's quickly.
/// A sheet that reads has the required columns, rows in file order and
/// trimmed, non-empty values in known columns only.
pub fn import(data: &[u8]) {
    check_sheet(roster_import::read_csv(data));
    check_sheet(roster_import::read_xlsx(std::io::Cursor::new(data)));
}

fn check_sheet(sheet: Result<roster_import::Sheet, roster_import::ImportFileError>) {
    let sheet = match sheet {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for c in roster_import::Column::REQUIRED {
        assert!(sheet.columns.contains(&c), "a sheet without column {c}");
    }
    for w in sheet.rows.windows(2) {
        assert!(
            w[0].line < w[1].line,
            "rows out of order: line {} then {}",
            w[0].line,
            w[1].line
        );
    }
    for row in &sheet.rows {
        assert!(row.line >= 1);
        assert!(!row.values.is_empty(), "an empty row at line {}", row.line);
        for (column, value) in &row.values {
            assert!(sheet.columns.contains(column));
            assert!(!value.is_empty(), "an empty value at line {}", row.line);
            assert_eq!(
                value.trim(),
                value,
                "an untrimmed value at line {}",
                row.line
            );
        }
    }
}
