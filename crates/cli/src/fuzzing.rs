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
//! - [`automerge_payload`]: the automerge bytes a frame carries, delivered
//!   to a real sync session (`hopluu_sync::Session`, its receive gate and
//!   a real store) as a child's batch; what the node stored is then loaded
//!   back, compacted and read through the model.
//! - [`config`]: a node's TOML configuration, parsed and validated.
//! - [`import`]: a roster spreadsheet (CSV or XLSX) for `hopluu import`.
//!
//! This module lives in the `hopluu-cli` library because it is the one
//! crate that reaches every decoder (the roster importer is the CLI's) and
//! that `hopluu-tests` can depend on (as a dev-dependency: the CLI depends
//! on `hopluu-tests`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock, PoisonError};

use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::member::{self, MemberInput, MemberStatus, MemberUpdate, NewMember};
use hopluu_model::unit::{Decision, KindCatalogue, NewUnit};
use hopluu_model::{Author, Date, DocId, DocKind, DocMeta, MemberId, UnitId, award, doc};
use hopluu_model::{campaign, emulation, unit};
use hopluu_node::config::Config;
use hopluu_node::replication::{from_pb, to_pb};
use hopluu_proto::v1 as pb;
use hopluu_store::{Store, StoreOptions};
use hopluu_sync::frame::{Ack, Batch, DocUpdate, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session};
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
        Some(pb::sync_frame::Body::Receipts(r)) => {
            for x in &r.receipts {
                doc_id_round_trips(&x.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Report(_) | pb::sync_frame::Body::Refusal(_)) | None => {}
    }
    let back = to_pb(frame.clone());
    // A report keeps only what a parent shows of it (strings cut to their
    // limits, local fields dropped); every other frame converts exactly.
    if !matches!(wire.body, Some(pb::sync_frame::Body::Report(_))) {
        assert_eq!(back, wire, "to_pb(from_pb(frame)) changed the frame");
    }
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

/// The automerge bytes inside a frame, delivered the way a child's reach
/// its parent: a real [`Session`] of `hopluu-sync` at the province
/// [`RECEIVER_NODE`] (on a real store), having accepted the hello of its
/// child [`FIXTURE_NODE`], receives one batch carrying `data` as changes
/// (`Payload::Changes`: an incremental save, single changes or a whole
/// document) and one carrying it as an automerge sync message
/// (`Payload::Sync`), each for two documents: the fixture roster, which
/// the node holds, and a roster it does not hold yet. So the question the
/// fuzzer asks is whether a peer can crash or corrupt a node, not whether
/// automerge can panic: automerge 0.12 does panic on some crafted changes
/// (`fuzz/regressions/automerge_payload/`), and the receive gate
/// (`hopluu_sync::gate`) must refuse them or catch the panic.
///
/// A bug, and so a panic here, is
/// - a panic that escapes the session (it would end the node's session
///   task, again on every reconnect); a panic inside automerge that the
///   gate's `guarded` catches is a refusal, as in the node (see
///   [`receive_path`]);
/// - the session ending on the batch (`Err`): the peer could stop the
///   node's replication with it;
/// - a document the store wrote that no longer loads from its snapshot
///   and chunks, or whose save (the next compaction, or the whole document
///   sent on to this node's parent) does not load back to the same heads;
///   a stored document whose meta does not read; heads stored or
///   acknowledged other than the document's; a fixture change lost;
/// - a document changed by updates that were all refused.
///
/// The store is put back as prepared after any input that wrote to it, so
/// every input meets the same node.
pub fn automerge_payload(data: &[u8]) {
    let _ = deliver_automerge_payload(data);
}

/// What [`automerge_payload`] did at the receiving node.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The acknowledgements, one per batch: `data` as changes, then as a
    /// sync message; each names [`delivered_docs`] in order.
    pub acks: Vec<Ack>,
    /// The node wrote documents (its change feed moved).
    pub docs_written: bool,
    /// Changes the node quarantined.
    pub quarantined: i64,
    /// The node recorded, for a document, heads or a sync state of the
    /// peer (bookkeeping of what to send it, not a document).
    pub peer_state_written: bool,
    /// Panics inside the session that it caught (the gate's `guarded`
    /// around automerge): each a refusal of what automerge choked on.
    pub caught_panics: usize,
}

/// The receiving node: the province hosting the district [`FIXTURE_NODE`].
pub const RECEIVER_NODE: &str = "hau-giang";

/// The documents every batch of [`automerge_payload`] updates: the fixture
/// roster (held) and the next bucket of the same unit (not held).
pub fn delivered_docs() -> [DocId; 2] {
    let unit = fixture_unit();
    [fixture().roster_id.clone(), member::roster_doc(&unit, 1)]
}

/// Runs [`automerge_payload`]'s delivery and returns what it did.
pub fn deliver_automerge_payload(data: &[u8]) -> Delivery {
    off_runtime(|| {
        static RECEIVER: Mutex<Option<Receiver>> = Mutex::new(None);
        // A poisoned lock: an earlier input panicked mid-delivery, and
        // `Receiver::dirty` says the store must be put back first.
        let mut slot = RECEIVER.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = slot.get_or_insert_with(Receiver::start);
        receiver.deliver(data)
    })
}

/// Runs `f` on this thread, or on a scoped thread when this one drives a
/// tokio runtime (a `#[tokio::test]`), where the receiver's own runtime
/// cannot `block_on`. A panic comes back to the caller either way.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

thread_local! {
    /// This thread is inside [`receive_path`].
    static IN_RECEIVE_PATH: Cell<bool> = const { Cell::new(false) };
    /// The last panic seen there: caught by the gate (a refusal), or the
    /// one escaping.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Panics seen there.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Runs the session's handling of a frame with panics treated as the node
/// treats them.
///
/// The node keeps Rust's default panic hook, which prints and lets the
/// panic unwind, so the gate's `guarded` (a `catch_unwind` around automerge
/// calls on peer bytes) turns a panic inside automerge into a refused
/// update. libfuzzer-sys (0.4.13, `initialize`) installs a hook that
/// aborts the process at every panic, before unwinding, caught or not:
/// under it, a panic the gate catches would count as a crash. So a hook
/// is installed once, wrapping the one in place: on a thread inside this
/// function it only records the panic; everywhere else (the checks after
/// the session, other threads) it calls the wrapped hook, so libFuzzer
/// still aborts there at once. A panic that escapes `f` becomes a new
/// panic, outside, carrying what was recorded (message, place and, with
/// `RUST_BACKTRACE`, backtrace): libFuzzer's hook aborts on it (a crash,
/// the input saved), the replay test sees a panic.
fn receive_path<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let wrapped = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside = IN_RECEIVE_PATH.try_with(Cell::get).unwrap_or(false);
            if inside {
                let _ = PANICS.try_with(|n| n.set(n.get() + 1));
                let backtrace = std::backtrace::Backtrace::capture();
                let _ =
                    LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(format!("{info}\n{backtrace}")));
            } else {
                wrapped(info);
            }
        }));
    });
    IN_RECEIVE_PATH.set(true);
    let out = std::panic::catch_unwind(AssertUnwindSafe(f));
    IN_RECEIVE_PATH.set(false);
    match out {
        Ok(v) => {
            LAST_PANIC.take();
            v
        }
        // Panicked anew, outside: the wrapped hook sees this one (libFuzzer
        // aborts here; unwinding on would reach libfuzzer-sys's `extern
        // "C"` entry point, which cannot unwind).
        Err(_) => {
            let what = LAST_PANIC.take().unwrap_or_default();
            panic!("a panic escaped the sync session (the node's session task would end): {what}")
        }
    }
}

/// The receiving node: a store prepared once per process (the unit tree
/// vn > hau-giang > hg-chau-thanh-a > hg-cta-thcs and the fixture roster),
/// copied back from its template after an input that wrote to it.
struct Receiver {
    /// A current-thread runtime: one input at a time, on the caller's
    /// thread (libFuzzer's).
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    store: Store,
    /// The prepared store's feed position.
    feed: i64,
    /// The store may differ from the template: a delivery did not finish.
    dirty: bool,
}

/// The store's tunables here: no document cache, so that every write
/// starts from, and every check reads, what is in the database (snapshot
/// plus chunks) rather than a copy in memory.
fn receiver_options() -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        cache_docs: 0,
        ..StoreOptions::default()
    }
}

const TEMPLATE: &str = "prepared.sqlite";
const LIVE: &str = "node.sqlite";

impl Receiver {
    fn start() -> Receiver {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = scratch_dir();
        let store = rt
            .block_on(prepare(&dir.join(TEMPLATE)))
            .unwrap_or_else(|e| panic!("preparing the receiving node: {e:#}"));
        rt.block_on(store.close());
        let store = rt.block_on(open_copy(&dir));
        let feed = rt
            .block_on(store.feed_position())
            .expect("the feed position");
        Receiver {
            rt,
            dir,
            store,
            feed,
            dirty: false,
        }
    }

    /// Puts the store back as prepared.
    fn reset(&mut self) {
        self.rt.block_on(self.store.close());
        self.store = self.rt.block_on(open_copy(&self.dir));
        self.dirty = false;
    }

    fn deliver(&mut self, data: &[u8]) -> Delivery {
        if self.dirty {
            self.reset();
        }
        self.dirty = true;
        let docs = delivered_docs();
        let replica = Replica {
            store: self.store.clone(),
            node_id: RECEIVER_NODE.to_owned(),
            unit: UnitId::parse("unit", RECEIVER_NODE).expect("a unit id"),
            private_depth: 1,
            limits: Limits::default(),
        };
        let mut session = Session::new(replica, Role::Acceptor);
        let hello = Frame::Hello(Hello {
            node_id: FIXTURE_NODE.to_owned(),
            unit: FIXTURE_NODE.to_owned(),
            protocol: PROTOCOL_VERSION,
            schema: SCHEMA_VERSION,
            applied_from_you: 0,
            receipts_from_you: 0,
        });
        self.rt
            .block_on(session.handle(hello))
            .expect("the receiving node accepts its child's hello");
        let mut acks = Vec::new();
        PANICS.set(0);
        let payloads = [
            Payload::Changes(data.to_vec()),
            Payload::Sync(data.to_vec()),
        ];
        for (n, payload) in (1..).zip(payloads) {
            let batch = Batch {
                id: n,
                // Not read from the sender's feed: no checkpoint to record.
                from_seq: 0,
                upto_seq: 0,
                docs: docs
                    .iter()
                    .map(|id| DocUpdate {
                        doc: id.to_string(),
                        heads: Vec::new(),
                        payload: payload.clone(),
                    })
                    .collect(),
            };
            let frames = receive_path(|| self.rt.block_on(session.handle(Frame::Batch(batch))))
                .unwrap_or_else(|e| panic!("the session ended on a batch from its child: {e}"));
            let mut answer: Vec<Ack> = frames
                .into_iter()
                .filter_map(|f| match f {
                    Frame::Ack(a) => Some(a),
                    _ => None,
                })
                .collect();
            assert_eq!(answer.len(), 1, "a batch answered with {answer:?}");
            let ack = answer.remove(0);
            let named: Vec<&str> = ack.docs.iter().map(|d| d.doc.as_str()).collect();
            let expected: Vec<String> = docs.iter().map(DocId::to_string).collect();
            assert_eq!(
                named, expected,
                "the ack does not name the batch's documents"
            );
            acks.push(ack);
        }
        // What a child's batch can write here: documents (the feed moves),
        // quarantine entries, and the child's heads and sync states.
        let (feed, quarantined, peer_docs) = self.rt.block_on(async {
            let feed = self.store.feed_position().await;
            let quarantine = self.store.quarantine_counts().await;
            let peer = self.store.peer_docs(FIXTURE_NODE, &docs).await;
            (feed, quarantine, peer)
        });
        let delivery = Delivery {
            acks,
            docs_written: feed.expect("the feed position") != self.feed,
            quarantined: quarantined.expect("the quarantine").values().sum(),
            peer_state_written: !peer_docs.expect("the peer's documents").is_empty(),
            caught_panics: PANICS.get(),
        };
        if delivery.docs_written {
            for (i, id) in docs.iter().enumerate() {
                self.check_stored(id, i, &delivery.acks);
            }
        }
        if delivery.docs_written || delivery.quarantined > 0 || delivery.peer_state_written {
            self.reset();
        }
        self.dirty = false;
        delivery
    }

    /// Checks what the store holds of `id` (the `i`-th document of each
    /// batch) after a delivery that wrote documents.
    fn check_stored(&self, id: &DocId, i: usize, acks: &[Ack]) {
        let (doc, heads_column) = self.rt.block_on(async {
            let doc = self.store.read_doc(id, Automerge::clone).await;
            (doc, self.store.doc_heads(id).await)
        });
        let doc = doc.unwrap_or_else(|e| panic!("{id}: the stored document does not load: {e}"));
        let heads = doc.as_ref().map(Automerge::get_heads).unwrap_or_default();
        let heads_column = heads_column.expect("the stored heads").unwrap_or_default();
        assert_eq!(
            heads_column, heads,
            "{id}: stored heads other than the document's"
        );
        let acked = &acks.last().expect("two acks").docs[i];
        assert_eq!(
            acked.heads, heads,
            "{id}: acknowledged heads other than the stored ones"
        );
        let pristine = if *id == fixture().roster_id {
            fixture().heads.clone()
        } else {
            Vec::new()
        };
        if acks.iter().all(|a| refused(&a.docs[i].rejected)) {
            assert_eq!(
                heads, pristine,
                "{id}: changed by updates that were refused"
            );
        }
        for h in &pristine {
            assert!(
                doc.as_ref()
                    .is_some_and(|d| d.get_change_by_hash(h).is_some()),
                "{id}: fixture change {h} lost"
            );
        }
        let Some(doc) = doc else {
            return;
        };
        DocMeta::read(id.clone(), &doc)
            .unwrap_or_else(|e| panic!("{id}: stored with a meta that does not read: {e}"));
        let saved = doc.save();
        let compacted = Automerge::load(&saved)
            .unwrap_or_else(|e| panic!("{id}: the stored document's save does not load: {e}"));
        assert_eq!(
            compacted.get_heads(),
            heads,
            "{id}: its save loads to other heads"
        );
        read_through_model(&doc);
    }
}

/// Whether an ack's `rejected` says the update was refused whole, before
/// anything of it was applied.
pub fn refused(rejected: &str) -> bool {
    ["refused:", "undecodable", "limit:", "private-data:"]
        .iter()
        .any(|p| rejected.starts_with(p))
}

/// A directory for the receiving node's databases, on tmpfs when there is
/// one (a commit is an fsync). Named by process id: one left by a process
/// that is gone (libFuzzer exits without running destructors) is removed.
fn scratch_dir() -> PathBuf {
    const PREFIX: &str = "hopluu-fuzz-node-";
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let proc = Path::new("/proc");
    if proc.is_dir()
        && let Ok(entries) = std::fs::read_dir(&base)
    {
        for e in entries.flatten() {
            let name = e.file_name();
            let gone = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !proc.join(pid.to_string()).exists());
            if gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Writes the receiving node's store at `path`: the unit records (each
/// made by the node holding authority over it), and the fixture roster
/// as it arrived from the district.
async fn prepare(path: &Path) -> anyhow::Result<Store> {
    let url = format!("sqlite:{}", path.display());
    let store = Store::open(
        &url,
        receiver_options(),
        std::sync::Arc::new(hopluu_model::SystemClock),
    )
    .await?;
    let units = [
        ("vn", "Tổng Liên đoàn Lao động Việt Nam", "central", None),
        ("hau-giang", "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn")),
        (
            "hg-chau-thanh-a",
            "LĐLĐ huyện Châu Thành A",
            "district",
            Some("hau-giang"),
        ),
        (
            FIXTURE_UNIT,
            "CĐCS Trường THCS Hòa Bình",
            "grassroots",
            Some(FIXTURE_NODE),
        ),
    ];
    for (id, name, kind, parent) in units {
        let decision = Decision::parse("01/QĐ-LĐLĐ", "2025-07-01", "2025-07-01", fixture_today())?;
        let new = NewUnit::parse(
            &KindCatalogue::default(),
            Some(id),
            name,
            kind,
            parent,
            decision,
        )?;
        let mut tx = store.begin().await?;
        let doc_id = DocId::Unit(UnitId::parse("unit", id)?);
        unit::create(
            tx.doc(&doc_id).await?,
            &node_author(parent.unwrap_or("vn")),
            &new,
        )?;
        tx.commit().await?;
    }
    let mut tx = store.begin().await?;
    write_fixture_roster(tx.doc(&fixture().roster_id).await?)?;
    tx.commit().await?;
    let heads = store.doc_heads(&fixture().roster_id).await?;
    anyhow::ensure!(
        heads.as_ref() == Some(&fixture().heads),
        "the stored fixture roster has other heads than the fixture"
    );
    Ok(store)
}

/// Opens a fresh copy of the prepared store (closed, so its file is
/// whole; a write-ahead log, if one was left, is copied with it).
async fn open_copy(dir: &Path) -> Store {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{LIVE}{suffix}")));
    }
    for suffix in ["", "-wal"] {
        let from = dir.join(format!("{TEMPLATE}{suffix}"));
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("{LIVE}{suffix}")))
                .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }
    let url = format!("sqlite:{}", dir.join(LIVE).display());
    Store::open(
        &url,
        receiver_options(),
        std::sync::Arc::new(hopluu_model::SystemClock),
    )
    .await
    .unwrap_or_else(|e| panic!("opening the receiving node's store: {e}"))
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
