//! The `automerge_payload` target: the automerge bytes a frame carries,
//! delivered to a real sync session.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use automerge::{Automerge, ReadDoc};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::member;
use hopluu_model::unit::{Decision, KindCatalogue, NewUnit};
use hopluu_model::{DocId, DocKind, DocMeta, UnitId, award, doc};
use hopluu_model::{campaign, emulation, unit};
use hopluu_store::{Store, StoreOptions};
use hopluu_sync::frame::{Ack, Batch, DocUpdate, Frame, Hello, Payload};
use hopluu_sync::{Limits, PROTOCOL_VERSION, Replica, Role, Session};

use crate::fixture::{
    FIXTURE_NODE, FIXTURE_UNIT, fixture, fixture_today, fixture_unit, node_author,
    write_fixture_roster,
};

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
    /// Set on the receiving node's runtime threads (its blocking pool,
    /// where a received batch is decoded ahead of the writer): a panic
    /// there is part of the delivery, counted here.
    static RUNTIME_PANICS: RefCell<Option<Arc<AtomicUsize>>> = const { RefCell::new(None) };
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
            let on_runtime = RUNTIME_PANICS
                .try_with(|c| {
                    c.borrow()
                        .as_ref()
                        .map(|n| n.fetch_add(1, Ordering::SeqCst))
                })
                .ok()
                .flatten()
                .is_some();
            if on_runtime {
                // Caught by the gate's guard on that thread, or it ends
                // the decoding task and so the session (seen by the caller).
            } else if inside {
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
    /// Panics on the runtime's own threads.
    runtime_panics: Arc<AtomicUsize>,
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
        let runtime_panics = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runtime_panics);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || {
                RUNTIME_PANICS.with(|c| *c.borrow_mut() = Some(Arc::clone(&counter)));
            })
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
            runtime_panics,
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
        self.runtime_panics.store(0, Ordering::SeqCst);
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
            caught_panics: PANICS.get() + self.runtime_panics.load(Ordering::SeqCst),
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
                doc.as_ref().is_some_and(|d| hopluu_model::am::knows(d, h)),
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
                DocKind::Decision => drop(hopluu_model::reorg::read(&id, doc)),
                DocKind::Node => drop(hopluu_model::hosting::read(&id, doc)),
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
    ids.extend(DocId::parse("doc_id", "decision/d1").ok());
    ids
}
