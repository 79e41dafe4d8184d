//! hopluu's storage: automerge documents, the change feed and the SQL
//! projections, on SQLite (the default) or PostgreSQL (the national node),
//! behind one interface.
//!
//! A write is a [`WriteTx`]: the caller loads documents, edits them with the
//! model's functions and commits. The commit stores, in **one** SQL
//! transaction, each changed document's new incremental chunk, one change
//! feed entry per document, and the projection rows derived from exactly
//! the part of the document that changed. Documents and projections can
//! therefore never disagree, and nothing is acknowledged before it is
//! durable (SQLite runs in WAL mode with `synchronous=FULL`).
//!
//! Writes are serialised by one writer lock per store, so the feed sequence
//! is allocated in commit order; many documents go in one transaction
//! (group commit), and projection rows are written many per statement.
//!
//! # Layout
//! - [`db`]: opening SQLite or PostgreSQL, pragmas, migrations.
//! - [`tx`]: [`WriteTx`], documents as snapshot plus chunks, compaction, the feed.
//! - [`fetch`]: documents read outside the writer lock, offered to a write.
//! - [`project`]: document -> projection rows, one typed row per table.
//! - [`conflicts`]: fields where concurrent writes left more than one value.
//! - [`place`]: a new member placed in its roster bucket, record and
//!   private entry ([`WriteTx::add_new_member`]).
//! - [`read`]: queries over projections and documents.
//! - [`report`]: the federation's reports (members, initiatives against plan,
//!   awards, works), as the tree and the rosters stood on a date.
//! - [`peer`]: what replication needs: the feed as documents to send, and
//!   per-peer checkpoints and heads.
//! - [`receipts`]: delivery receipts of documents acknowledged above.
//! - [`quarantine`]: changes held back by the replication gate.
//! - [`decisions`]: reorganisation decisions as listed, and the counts a
//!   decision's dry run reads.
//! - [`hosting`]: nodes as their records list them, who hosts a unit, and
//!   the old hosts' seals of handovers.
//! - [`docs_admin`]: stored documents listed for administrators, and
//!   compaction on request.
//!
//! The store also keeps the unit tree in memory ([`Store::tree`]), updated
//! by every commit that changes a unit record, and publishes its feed
//! position ([`Store::watch_feed`]) so that replication pushes a local write
//! the moment it is durable.

mod cache;
pub mod conflicts;
pub mod db;
pub mod decisions;
pub mod docs_admin;
pub mod fetch;
pub mod hosting;
pub mod peer;
pub mod place;
pub mod project;
pub mod quarantine;
pub mod read;
pub mod receipts;
pub mod report;
pub mod tx;

pub(crate) use cache::DocCache;

use std::sync::{Arc, Mutex, RwLock};

use hopluu_model::{Clock, ModelError, UnitTree};
use thiserror::Error;

pub use db::{Backend, StoreOptions};
pub use tx::{Committed, WriteTx};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The domain refused the operation (bad input, not found, no authority).
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored document could not be decoded.
    #[error("document {doc} is corrupt: {reason}")]
    Corrupt { doc: String, reason: String },
    #[error("database url: {0}")]
    Url(String),
}

impl StoreError {
    /// The database could not be reached or is overloaded: worth retrying.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A node's store. Cheap to clone; all clones share one pool and one writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: sqlx::AnyPool,
    backend: Backend,
    options: StoreOptions,
    /// Every time the store writes (feed, receipts, quarantine, peers,
    /// conflicts) comes from here, so tests and simulations pin it.
    clock: Arc<dyn Clock>,
    incarnation: Vec<u8>,
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Slots for work readied for the writer outside its lock (a received
    /// batch decoded ahead): what waits for the lock is bounded, not one
    /// batch per connected peer.
    ready: Arc<tokio::sync::Semaphore>,
    cache: Mutex<DocCache>,
    /// The unit tree, as the `units` projection holds it.
    tree: RwLock<Arc<UnitTree>>,
    /// The last committed feed sequence.
    feed: tokio::sync::watch::Sender<i64>,
    /// Whether the quarantine may hold rows: receivers skip looking it up
    /// while it is false (it never was used).
    quarantine_hint: std::sync::atomic::AtomicBool,
    /// Commits that wrote the quarantine since the store opened: a session
    /// tells its peer what it holds of the peer's changes again when this
    /// moves (an administrator decided, say).
    quarantine_generation: std::sync::atomic::AtomicU64,
    /// Whether a decision has sealed documents: receivers skip looking the
    /// seals up while it is false.
    seals_hint: std::sync::atomic::AtomicBool,
    /// The latest feed sequence of a decision or a node record (the
    /// documents that let a receiver judge the others): a session sends
    /// those ahead of its feed when this moved past where it looked.
    control_seq: std::sync::atomic::AtomicI64,
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// The clock given to [`Store::open`]: the time of every write.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Random bytes chosen when the database was created: part of the
    /// node's automerge actor.
    pub fn incarnation(&self) -> &[u8] {
        &self.inner.incarnation
    }

    /// The unit tree as of the last commit.
    /// A snapshot: cheap to take and to hold across awaits (a commit that
    /// changes the tree meanwhile copies it).
    pub fn tree(&self) -> Arc<UnitTree> {
        self.inner.tree.read().expect("tree lock").clone()
    }

    /// The feed position, updated after every commit that wrote the feed.
    pub fn watch_feed(&self) -> tokio::sync::watch::Receiver<i64> {
        self.inner.feed.subscribe()
    }

    pub(crate) fn quarantine_hint(&self) -> bool {
        self.inner
            .quarantine_hint
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set_quarantine_hint(&self) {
        self.inner
            .quarantine_hint
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Moves every time a commit that wrote the quarantine (an entry
    /// held, decided or given a new reason) is durable: whoever reads the
    /// quarantine after seeing it move sees that commit.
    pub fn quarantine_generation(&self) -> u64 {
        self.inner
            .quarantine_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn quarantine_written(&self) {
        self.inner
            .quarantine_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn has_seals(&self) -> bool {
        self.inner
            .seals_hint
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The latest feed sequence of a decision or a node record.
    pub fn control_seq(&self) -> i64 {
        self.inner
            .control_seq
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn note_control(&self, seq: i64) {
        self.inner
            .control_seq
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn set_seals_hint(&self) {
        self.inner
            .seals_hint
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        &self.inner.pool
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

impl Store {
    /// A slot for readying work for the writer outside its lock; hold it
    /// until that work is committed. There are [`READY_SLOTS`]: one batch
    /// is committed while the next is readied, and the rest of the
    /// node's peers wait here with their batches still undecoded.
    pub async fn ready_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        Arc::clone(&self.inner.ready)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// How many batches may be readied for the writer at once.
pub const READY_SLOTS: usize = 2;
