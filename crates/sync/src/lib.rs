//! hopluu's replication engine: how two nodes of the union tree bring each
//! other's documents up to date over one bidirectional stream, whatever
//! carries it (gRPC in the node, in-memory channels in the tests).
//!
//! # The protocol, in short
//!
//! A child dials its parent and both sides send a **hello**: node id, hosted
//! unit, protocol and schema version, and the last sequence of the *other*
//! side's change feed it has durably applied. A version mismatch, a node
//! claiming this node's own id, or a child whose unit is not below the
//! parent's, gets a [`frame::Refusal`] and the stream ends.
//!
//! Each side then streams **batches**: the documents its feed updated since
//! the checkpoint the peer gave, filtered by the peer's scope (DESIGN §3:
//! a district receives its own subtree's documents, the campaigns covering
//! it, awards to its units and its ancestors' unit records, never a
//! sibling's roster). A document updated many times while the link was
//! down is sent once, at its latest state. For each document the batch
//! carries either
//! - **changes** after the heads the peer is known to have (learnt from its
//!   acknowledgements and from what it sent), so a warm edit costs a few
//!   hundred bytes, or the whole compressed document when the peer has
//!   none of it; or
//! - an **automerge sync message** while the peer's heads are unknown, or
//!   include changes this side lacks: the sync protocol's bloom filters
//!   find the difference without resending history. Sync states are stored
//!   encoded and decoded fresh for each session, so in-flight state never
//!   survives a reconnect (automerge#1284: infinite sync loops otherwise).
//!
//! The receiver applies a whole batch in **one transaction**: documents,
//! projections, feed entries, the peer's heads and its checkpoint. Only
//! after the commit does it send the **ack**: the batch id, its checkpoint
//! of the sender's feed, and its heads of every document. Nothing is
//! acknowledged before it is durable, so a crash at any point loses
//! nothing: the sender resumes from the checkpoint, and merging is
//! idempotent (a duplicate costs bytes, never correctness).
//!
//! Before anything is applied, every change passes the **gate**
//! ([`gate`]): its automerge actor names the node that made it and the unit
//! that node hosts, and that unit must hold authority over the document's
//! owner (DESIGN §3) and, coming from a child, lie inside the child's
//! subtree. What fails is **quarantined** in the same transaction: stored
//! with its reason, not applied, and named in the ack so the sender stops
//! sending it; changes that depend on it wait with it. Unrelated documents
//! and changes go on. An administrator releases or discards quarantined
//! changes (one by one, or every held change a filter selects); one that
//! later arrives by a path that vouches for it is applied then. Private
//! rosters are refused outright above the level configured to hold them.
//!
//! A held change was sent, not delivered, though its ack moved the
//! sender's checkpoint past it. So every ack also says how many of the
//! sender's changes the receiver **holds** ([`frame::HeldChanges`]: the
//! changes, their documents, when the oldest was made), and when that
//! changes between batches (an administrator decided) the receiver sends
//! a **notice**: an ack of batch 0 that acknowledges nothing. The sender
//! counts them as pending on the edge until the receiver says otherwise.
//! These are new protobuf fields of the ack; a peer that does not know
//! them ignores them, and takes a notice for a stale ack.
//!
//! What a node applies enters its own feed, so a province **relays**: a
//! district's update goes on to the national node, and a campaign from the
//! national node goes on down to the districts. It is not echoed back: the
//! sender's heads are known.
//!
//! **Decisions and node records go ahead of the feed**: they are what
//! lets a receiver judge the rest (a reorganisation decision's seals, an
//! old host's seals, where each node sits), so a session sends those the
//! peer lacks before the next stretch of its feed. A **handover session**
//! ([`Role::HandoverTo`], [`handover`]) carries what an old host sealed to
//! the new host directly, one way: plain changes after what the new host
//! is known to have, never the sync protocol, whose answers a new host
//! may not be able to route to a node it cannot place.
//!
//! Two more frames serve the administrators (protocol version 2). A child
//! sends its parent a **report** every few seconds
//! ([`drive::DriveOptions::report_every`]): the state of its own edges
//! and the latest reports of the nodes below it, through
//! [`session::EdgeReports`]; the parent keeps only entries from inside
//! the child's subtree. So the national node sees every edge in the
//! country. Each ack carries the time the receiver applied the batch,
//! which the sender keeps as a **delivery receipt** of the heads it
//! acknowledged; a parent sends its children, in **receipts** frames, the
//! receipts of their subtrees' documents (its own parent's included),
//! after the last one each child names in its hello. So an office can
//! tell when its change reached each level up to the national node.
//!
//! Everything is **bounded** ([`Limits`]): documents and bytes per batch,
//! batches in flight before an ack (backpressure), feed rows per scan; and
//! on receipt, documents per batch (more ends the session with a `limit`
//! refusal), changes and bytes per document update (more refuses that
//! update). A node that was offline for a month catches up in bounded
//! memory. The driver drops a peer that sends no hello, one that reads
//! nothing while frames wait for it, one that stays silent through
//! several acknowledgement timeouts, and one that leaves a batch
//! unacknowledged for twenty times the timeout ([`drive::DriveOptions`]).
//!
//! A **quiet session tells its position**: a stretch of the feed with
//! nothing in it for the peer (other units' documents, or the peer's own
//! changes coming back) is not worth a batch per write, but once nothing
//! has been sent for a moment ([`drive::DriveOptions::position_after`])
//! an empty batch covers it, so that the peer's checkpoint, and the lag
//! this node shows for it, catch up with the feed. Each session sends one
//! such batch at its first quiet moment even when the peer is in step: its
//! acknowledgement shows the link works both ways.
//!
//! # Layout
//! - [`frame`]: the frames, transport-free.
//! - [`session`]: [`Session`], the state machine for one peer: the
//!   handshake and frame dispatch, with
//!   - `session::send`: the next batch, acknowledgements, rewinds;
//!   - `session::receive`: the steps a received batch goes through;
//!   - `session::reports`: edge reports and delivery receipts;
//!   - `session::held`: the held changes told in acks and notices.
//! - [`gate`]: the authority check on receipt, quarantine, release and
//!   discard, with
//!   - `gate::policy`: the authority rule and the private-data level;
//!   - `gate::payload`: a peer's automerge bytes read into changes;
//!   - `gate::guard`: automerge's panics on those bytes caught;
//!   - `gate::admit`: the pipeline that judges one update;
//!   - `gate::quarantine`: held changes settled, released, discarded;
//!   - `gate::decide`: every held change a filter selects released (in
//!     dependency order) or discarded, with what is left held and why.
//! - [`drive`]: [`drive::run`], a session over a pair of channels with
//!   pushes on every local commit, acknowledgement timeouts and shutdown.

pub mod drive;
pub mod frame;
pub mod gate;
pub mod handover;
pub mod session;

use thiserror::Error;

pub use frame::{Frame, PROTOCOL_VERSION};
pub use session::{EdgeReports, PeerInfo, Replica, Role, Session, SessionStats};

/// Why a session ended.
#[derive(Debug, Error)]
pub enum SyncError {
    /// This side refuses the peer; the refusal is sent before closing.
    #[error("refused the peer ({}): {}", .0.code, .0.reason)]
    Refuse(frame::Refusal),
    /// The peer refused this side.
    #[error("refused by the peer ({code}): {reason}")]
    Refused { code: String, reason: String },
    #[error(transparent)]
    Store(#[from] hopluu_store::StoreError),
    /// The transport failed or closed.
    #[error("link: {0}")]
    Link(String),
    /// The store closed under a running session: the node is stopping.
    #[error("the store closed while the session was running")]
    StoreClosed,
    /// An administrator's decision on quarantine entry `id` cannot be
    /// carried out as things stand: the held change waits on another that
    /// is not here, or automerge refuses it. The entry stays held.
    #[error("quarantine entry {id}: {reason}")]
    NotReleasable { id: i64, reason: String },
    /// A stored quarantine entry is damaged: expected a document id and a
    /// change, found what `reason` says.
    #[error("quarantine entry {id} is damaged: {reason}")]
    DamagedEntry { id: i64, reason: String },
}

impl SyncError {
    /// Whether dialling again soon cannot help: a refusal will not go
    /// away until someone changes a configuration. A hello that did not
    /// come in time is no such refusal, whichever side gave up waiting:
    /// the link was slow, and the next try may well be quicker (a peer of
    /// an older version says so with code `protocol` and this reason).
    pub fn is_refusal(&self) -> bool {
        match self {
            SyncError::Refuse(r) => !is_hello_timeout(&r.code, &r.reason),
            SyncError::Refused { code, reason } => !is_hello_timeout(code, reason),
            _ => false,
        }
    }
}

/// Whether a refusal says only that a hello did not come in time.
fn is_hello_timeout(code: &str, reason: &str) -> bool {
    code == drive::HELLO_TIMEOUT || (code == "protocol" && reason.starts_with("no hello within"))
}

/// Bounds on what a session holds and sends at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Documents per batch.
    pub batch_docs: usize,
    /// Payload bytes per batch (a single larger document still goes alone).
    pub batch_bytes: usize,
    /// Batches sent and not yet acknowledged.
    pub in_flight: usize,
    /// Feed rows read per scan.
    pub scan: u32,
    /// Receiving: documents per batch; a larger batch ends the session
    /// with a `limit` refusal.
    pub accept_docs: usize,
    /// Receiving: changes in one document's update; more are refused for
    /// that document (the rest of the batch goes on).
    pub accept_changes: usize,
    /// Receiving: payload bytes of one document's update.
    pub accept_doc_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_docs: 256,
            batch_bytes: 1 << 20,
            in_flight: 4,
            scan: 1024,
            accept_docs: 1024,
            accept_changes: 100_000,
            accept_doc_bytes: 64 << 20,
        }
    }
}
