//! One sync session with one peer, as a state machine: frames in, frames
//! out, every effect on the store inside one transaction per batch.
//!
//! The session does no I/O of its own apart from the store: the caller
//! feeds it the frames it receives ([`Session::handle`]), asks it for the
//! next batch to send ([`Session::next_batch`]) when the transport can take
//! one, and tells it when an acknowledgement is overdue on a transport
//! that may lose frames ([`Session::on_timeout`]: the simulation in the
//! tests, step by step). [`crate::drive`] runs it over a reliable stream,
//! where an overdue batch is late, not lost, and is waited for.
//!
//! # Layout
//! The handshake and the dispatch of frames are here; the rest in
//! - `ahead`: a received batch decoded, and its whole documents checked,
//!   before the writer lock is taken, several updates at once;
//! - `send`: the next batch to send, the peer's acknowledgements,
//!   rewinds after a loss, and the peer state written back;
//! - `receive`: the steps `Session::apply` takes a received batch
//!   through, in its one transaction;
//! - `reports`: edge reports up and delivery receipts down;
//! - `held`: what each side holds in quarantine of the other's changes,
//!   told in every ack and in a notice when it changes between batches.

mod ahead;
mod held;
mod receive;
mod reports;
mod send;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use automerge::ChangeHash;
use automerge::sync;
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::{DocId, UnitId};
use hopluu_store::Store;
use hopluu_store::receipts::NewReceipt;

use self::receive::Judging;
use crate::frame::{
    Ack, Batch, DocUpdate, EdgeReport, Frame, HeldChanges, Hello, PROTOCOL_VERSION, Payload,
    Refusal,
};
use crate::gate::{self, Sender};
use crate::{Limits, SyncError};

/// What a session needs to know about its own node.
#[derive(Debug, Clone)]
pub struct Replica {
    pub store: Store,
    pub node_id: String,
    /// The unit this node hosts.
    pub unit: UnitId,
    /// Depth in the unit tree (the federation's root is 0) at and below
    /// which private rosters are held: they go no higher.
    pub private_depth: usize,
    pub limits: Limits,
}

/// Which end of the stream this side is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Dialled its parent (or a fallback upstream), expecting this node id.
    Dialer { expect: String },
    /// Accepted a child's stream.
    Acceptor,
    /// Dialled the new host of documents this node sealed in a handover
    /// (DESIGN §6), expecting this node id: the peer hosts no ancestor of
    /// this node's unit; what lies in its scope goes to it, personal data
    /// included, without rising through the nodes above.
    HandoverTo { expect: String },
    /// Accepted an old host's handover session: an acceptor becomes one at
    /// the hello when the peer is not below this node but has sealed, for
    /// a decision held here, documents that now lie in this node's subtree.
    /// Its changes are held to authority and the seals, as an upstream's
    /// are; it sends no edge reports and is sent no receipts.
    HandoverFrom,
}

/// The peer, once its hello is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub node_id: String,
    pub unit: UnitId,
}

/// Counters of one session, for logs and the admin view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub batches_sent: u64,
    pub batches_applied: u64,
    pub docs_sent: u64,
    pub docs_applied: u64,
    pub docs_rejected: u64,
    /// Changes this side quarantined (or recognised as quarantined).
    pub changes_quarantined: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Times the sender went back to the last acknowledged sequence.
    pub rewinds: u64,
    /// Changes applied from the peer's batches (passed the gate and
    /// committed; quarantined and refused ones are not counted).
    pub changes_applied: u64,
    /// Batches sent and not yet acknowledged.
    pub in_flight: u64,
    /// Acknowledgements of this side's batches received (notices not
    /// counted): each shows the link carried a batch and its answer.
    pub batches_acked: u64,
    /// Frames the driver holds for the peer: replies (acknowledgements)
    /// and batches or reports waiting for the transport
    /// ([`Session::note_queues`]).
    pub queued_replies: u64,
    pub queued_frames: u64,
    /// How long the batch in the last frame handled took to apply (the
    /// checks, its one transaction and the commit), and the changes it
    /// applied; None when the last frame was not a batch, so an observer
    /// called after every frame ([`crate::drive::Observer`]) sees each
    /// batch once.
    pub last_apply: Option<std::time::Duration>,
    pub last_apply_changes: u64,
    /// Of this node's changes, what the peer holds in quarantine, as its
    /// last acknowledgement in this session told (none before one).
    pub held_by_peer: HeldChanges,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    upto: i64,
}

/// A rejected update is retried this many times (the heads the peer
/// reports may have moved on); after that it waits for the next change of
/// the document, so that a bad document never loops.
const MAX_RETRIES: u32 = 3;

pub struct Session {
    replica: Replica,
    role: Role,
    peer: Option<PeerInfo>,
    hello_sent: bool,
    next_id: u64,
    /// The feed has been read up to here (optimistically).
    cursor: i64,
    /// The `upto_seq` of the last feed batch sent: documents skipped since
    /// (out of scope, already known) are covered by the next batch.
    announced: i64,
    /// The peer has applied the feed up to here.
    acked: i64,
    /// `acked` as last written to the store.
    flushed_acked: i64,
    /// This session has told the peer its position at least once
    /// ([`Session::next_position`]).
    position_told: bool,
    /// The furthest `upto_seq` sent in this session: a stretch before it
    /// is being told again after a rewind.
    told: i64,
    in_flight: VecDeque<InFlight>,
    /// Acks of batches before this id are stale (sent before a rewind).
    stale_before: u64,
    /// Heads the peer will have once the batches in flight are applied.
    sent: HashMap<DocId, (u64, Vec<ChangeHash>)>,
    /// Heads the peer has acknowledged, or told us it has.
    acked_heads: HashMap<DocId, Vec<ChangeHash>>,
    /// Of this node's changes, those the peer's last acknowledgement of
    /// each document said it holds in quarantine: sent, and not to be
    /// waited for (they wait for a seal or an administrator there).
    held_there: HashMap<DocId, Vec<ChangeHash>>,
    /// The store's [`hopluu_store::Store::control_seq`] when the decisions
    /// and node records ahead of the cursor were last found known to the
    /// peer (looked at again only once it moved).
    control_seen: i64,
    /// The last batch sent answered the peer's sync messages: the next
    /// one gives the rest of the outbound side its turn.
    answered_last: bool,
    /// Acknowledged heads not yet written to the store.
    dirty: HashMap<DocId, Vec<ChangeHash>>,
    /// Automerge sync states while the peer's heads are being found.
    sync_states: HashMap<DocId, sync::State>,
    /// Documents to send outside the feed (a reply, a retry).
    resend: BTreeSet<DocId>,
    /// Automerge sync protocol replies, sent before anything else.
    sync_out: VecDeque<DocUpdate>,
    retries: HashMap<DocId, u32>,
    /// Private rosters the peer refused as not held there: its tree may
    /// not place their unit under it yet (a unit moved to it, its record
    /// still on the way). Sent again once the peer takes a unit record.
    refused_private: BTreeSet<DocId>,
    /// The peer's feed, applied here up to this sequence.
    applied: i64,
    stats: SessionStats,
    /// Where edge reports go and come from (the node's view of its edges).
    reports: Option<Arc<dyn EdgeReports>>,
    /// Delivery receipts from the peer's acknowledgements, not yet stored.
    receipts_pending: Vec<NewReceipt>,
    /// To a child: this node's receipts sent up to this id.
    receipts_sent: i64,
    /// What this node last told the peer it holds of the peer's changes
    /// (None: nothing told in this session), and the store's quarantine
    /// generation it was read at.
    told_held: Option<HeldChanges>,
    told_generation: Option<u64>,
}

/// What a node knows of its replication edges, for the reports a child
/// sends its parent ([`Frame::Report`]).
pub trait EdgeReports: Send + Sync {
    /// The edges this node reports up: its own, and the latest reports of
    /// the nodes below it.
    fn report(&self) -> Vec<EdgeReport>;
    /// Edges a child reported (already checked to come from its subtree).
    fn reported(&self, child: &PeerInfo, edges: Vec<EdgeReport>);
}

/// Receipts sent to a child per frame, at most.
const RECEIPTS_PER_FRAME: u32 = 500;

/// Edges one report may carry: a national node's whole tree, with room.
pub const MAX_REPORTED_EDGES: usize = 50_000;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("node", &self.replica.node_id)
            .field("peer", &self.peer)
            .field("cursor", &self.cursor)
            .field("acked", &self.acked)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(replica: Replica, role: Role) -> Session {
        Session {
            replica,
            role,
            peer: None,
            hello_sent: false,
            next_id: 1,
            cursor: 0,
            announced: 0,
            acked: 0,
            flushed_acked: 0,
            position_told: false,
            told: 0,
            in_flight: VecDeque::new(),
            stale_before: 0,
            sent: HashMap::new(),
            acked_heads: HashMap::new(),
            held_there: HashMap::new(),
            control_seen: -1,
            answered_last: false,
            dirty: HashMap::new(),
            sync_states: HashMap::new(),
            resend: BTreeSet::new(),
            sync_out: VecDeque::new(),
            retries: HashMap::new(),
            refused_private: BTreeSet::new(),
            applied: 0,
            stats: SessionStats::default(),
            reports: None,
            receipts_pending: Vec::new(),
            receipts_sent: 0,
            told_held: None,
            told_generation: None,
        }
    }

    /// The session with the node's edge reports: as a child it sends them
    /// up ([`Session::report`]); as a parent it hands the child's reports
    /// to them.
    pub fn with_reports(mut self, reports: Arc<dyn EdgeReports>) -> Session {
        self.reports = Some(reports);
        self
    }

    /// The driver's queues towards the peer, for the session's statistics.
    pub fn note_queues(&mut self, replies: usize, frames: usize) {
        self.stats.queued_replies = replies as u64;
        self.stats.queued_frames = frames as u64;
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The peer, once the hellos are exchanged.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// This node's feed, acknowledged by the peer up to here.
    pub fn acked_upto(&self) -> i64 {
        self.acked
    }

    /// The peer's feed, applied here up to here.
    pub fn applied_upto(&self) -> i64 {
        self.applied
    }

    /// Whether batches are waiting for their acknowledgement.
    pub fn awaiting_ack(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// The id of the oldest batch waiting for its acknowledgement.
    pub fn oldest_in_flight(&self) -> Option<u64> {
        self.in_flight.front().map(|f| f.id)
    }

    /// Whether this is a handover session (either end).
    pub fn is_handover(&self) -> bool {
        matches!(self.role, Role::HandoverTo { .. } | Role::HandoverFrom)
    }

    /// Whether the session has something to send that does not depend on
    /// the feed moving.
    pub fn has_pending(&self) -> bool {
        self.peer.is_some() && (!self.resend.is_empty() || !self.sync_out.is_empty())
    }

    /// The first frame: a dialer speaks first, an acceptor answers the
    /// dialer's hello (from [`Session::handle`]).
    pub async fn start(&mut self) -> Result<Option<Frame>, SyncError> {
        match &self.role {
            Role::Dialer { expect } | Role::HandoverTo { expect } => {
                let expect = expect.clone();
                self.hello_sent = true;
                Ok(Some(Frame::Hello(self.hello_for(&expect).await?)))
            }
            Role::Acceptor | Role::HandoverFrom => Ok(None),
        }
    }

    async fn hello_for(&mut self, peer: &str) -> Result<Hello, SyncError> {
        let applied = self
            .replica
            .store
            .peer(peer)
            .await?
            .map(|p| p.applied_upto)
            .unwrap_or(0);
        self.applied = applied;
        let receipts_from_you = match self.role {
            Role::Dialer { .. } => self.replica.store.receipt_cursor(peer).await?,
            Role::Acceptor | Role::HandoverTo { .. } | Role::HandoverFrom => 0,
        };
        Ok(Hello {
            node_id: self.replica.node_id.clone(),
            unit: self.replica.unit.to_string(),
            protocol: PROTOCOL_VERSION,
            schema: SCHEMA_VERSION,
            applied_from_you: applied,
            receipts_from_you,
        })
    }

    /// Handles one frame from the peer; returns the frames to send back.
    /// An `Err` ends the session; a refusal to send first is returned in it
    /// ([`SyncError::Refuse`]).
    pub async fn handle(&mut self, frame: Frame) -> Result<Vec<Frame>, SyncError> {
        self.stats.bytes_received += frame.approx_bytes() as u64;
        self.stats.last_apply = None;
        match frame {
            Frame::Hello(h) => self.on_hello(h).await,
            Frame::Refusal(r) => Err(SyncError::Refused {
                code: r.code,
                reason: r.reason,
            }),
            Frame::Batch(b) => {
                if self.peer.is_none() {
                    return Err(refuse("protocol", "expected a hello, received a batch"));
                }
                if b.docs.len() > self.replica.limits.accept_docs {
                    return Err(refuse(
                        "limit",
                        format!(
                            "batch of {} documents, over the limit of {}",
                            b.docs.len(),
                            self.replica.limits.accept_docs
                        ),
                    ));
                }
                let (started, changes) = (std::time::Instant::now(), self.stats.changes_applied);
                let ack = self.apply(b).await?;
                self.stats.last_apply = Some(started.elapsed());
                self.stats.last_apply_changes = self.stats.changes_applied - changes;
                Ok(vec![Frame::Ack(ack)])
            }
            Frame::Ack(a) => {
                if self.peer.is_none() {
                    return Err(refuse("protocol", "expected a hello, received an ack"));
                }
                self.on_ack(a);
                self.stats.in_flight = self.in_flight.len() as u64;
                Ok(Vec::new())
            }
            Frame::Report(edges) => {
                self.on_report(edges)?;
                Ok(Vec::new())
            }
            Frame::Receipts(r) => {
                self.on_receipts(r).await?;
                Ok(Vec::new())
            }
        }
    }

    async fn on_hello(&mut self, h: Hello) -> Result<Vec<Frame>, SyncError> {
        if h.protocol != PROTOCOL_VERSION {
            return Err(refuse(
                "protocol-version",
                format!(
                    "peer {} speaks replication protocol {}, this node speaks {PROTOCOL_VERSION}",
                    h.node_id, h.protocol
                ),
            ));
        }
        if h.schema != SCHEMA_VERSION {
            return Err(refuse(
                "schema-version",
                format!(
                    "peer {} writes document schema {}, this node writes {SCHEMA_VERSION}: upgrade the older node first",
                    h.node_id, h.schema
                ),
            ));
        }
        if h.node_id == self.replica.node_id {
            return Err(refuse(
                "same-node",
                format!("peer claims this node's own id {}", h.node_id),
            ));
        }
        let unit = UnitId::parse("hello.unit_id", &h.unit)
            .map_err(|e| refuse("protocol", e.to_string()))?;
        match &self.role {
            Role::Dialer { expect } => {
                if *expect != h.node_id {
                    return Err(refuse(
                        "wrong-peer",
                        format!("expected upstream node {expect}, reached {}", h.node_id),
                    ));
                }
                // The upstream must host an ancestor of this node's unit,
                // as far as this node knows its ancestors.
                let tree = self.replica.store.tree();
                if tree.contains(&self.replica.unit)
                    && tree.contains(&unit)
                    && !tree.is_within(&self.replica.unit, &unit)
                {
                    return Err(refuse(
                        "not-in-subtree",
                        format!(
                            "upstream {} hosts unit {unit}, which is not above this node's unit {}",
                            h.node_id, self.replica.unit
                        ),
                    ));
                }
            }
            Role::HandoverTo { expect } => {
                if *expect != h.node_id {
                    return Err(refuse(
                        "wrong-peer",
                        format!("expected new host {expect}, reached {}", h.node_id),
                    ));
                }
            }
            Role::HandoverFrom => {}
            Role::Acceptor if !self.is_below(&unit) && self.hands_over_here(&h.node_id).await? => {
                tracing::info!(peer = %h.node_id, unit = %unit, "handover session from an old host");
                self.role = Role::HandoverFrom;
            }
            Role::Acceptor => {
                let tree = self.replica.store.tree();
                if !tree.contains(&unit) {
                    return Err(refuse(
                        "unknown-unit",
                        format!(
                            "unit {unit} of node {} is not known here: create it at this node first",
                            h.node_id
                        ),
                    ));
                }
                if unit == self.replica.unit || !tree.is_within(&unit, &self.replica.unit) {
                    return Err(refuse(
                        "not-in-subtree",
                        format!(
                            "unit {unit} of node {} is not below this node's unit {}",
                            h.node_id, self.replica.unit
                        ),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        if !self.hello_sent {
            self.hello_sent = true;
            out.push(Frame::Hello(self.hello_for(&h.node_id).await?));
        }
        // A repeated hello restarts the outgoing side from what the peer
        // says it has: nothing in flight can be trusted any more.
        self.cursor = h.applied_from_you.max(0);
        self.control_seen = -1;
        self.receipts_sent = h.receipts_from_you.max(0);
        self.announced = self.cursor;
        self.acked = self.cursor;
        self.flushed_acked = self.cursor;
        self.position_told = false;
        self.in_flight.clear();
        self.stale_before = self.next_id;
        self.sent.clear();
        self.forget_sync_in_flight();
        // What each side holds of the other's changes is told afresh.
        self.stats.held_by_peer = HeldChanges::default();
        self.told_held = None;
        self.told_generation = None;
        self.peer = Some(PeerInfo {
            node_id: h.node_id.clone(),
            unit,
        });
        tracing::info!(
            peer = %h.node_id,
            unit = %h.unit,
            resume_after = self.cursor,
            applied_from_peer = self.applied,
            "sync session established"
        );
        Ok(out)
    }

    /// Whether `unit` lies strictly below this node's unit (its node is a
    /// child, never an old host handing over).
    fn is_below(&self, unit: &UnitId) -> bool {
        let tree = self.replica.store.tree();
        *unit != self.replica.unit
            && tree.contains(unit)
            && tree.is_within(unit, &self.replica.unit)
    }

    /// Whether `node`, which dialled in, is an old host handing documents
    /// over to this node ([`hopluu_store::Store::old_hosts_for`]).
    async fn hands_over_here(&self, node: &str) -> Result<bool, SyncError> {
        let hosts = self.replica.store.old_hosts_for(&self.replica.unit).await?;
        Ok(hosts.iter().any(|h| h == node))
    }

    /// Applies a batch in one transaction, with the peer state it implies,
    /// and returns the acknowledgement to send once it is durable. Every
    /// change passes the gate ([`crate::gate`]) first: what fails is
    /// quarantined, in the same transaction.
    async fn apply(&mut self, mut b: Batch) -> Result<Ack, SyncError> {
        let peer = self.peer.clone().expect("checked by the caller");
        let ids: Vec<Option<DocId>> = b
            .docs
            .iter()
            .map(|u| DocId::parse("doc_id", &u.doc).ok())
            .collect();
        self.load_sync_states(&peer.node_id, &b.docs, &ids).await?;
        let valid: Vec<DocId> = ids.iter().flatten().cloned().collect();
        let sender = Sender {
            node: peer.node_id.clone(),
            unit: peer.unit.clone(),
            is_child: matches!(self.role, Role::Acceptor),
        };
        let store = self.replica.store.clone();
        // Held until this batch is committed: the batches decoded and
        // waiting for the writer are bounded, whatever the peers.
        let slot = store.ready_slot().await;
        let ahead = Arc::new(ahead::Ahead {
            tree: store.tree(),
            unit: self.replica.unit.clone(),
            private_depth: self.replica.private_depth,
            max_changes: self.replica.limits.accept_changes,
            max_bytes: self.replica.limits.accept_doc_bytes,
            budget: ahead::READ_AHEAD_BYTES,
        });
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (docs, decoded) =
            Box::pin(ahead.decode(std::mem::take(&mut b.docs), &ids, lanes)).await?;
        // Boxed, as the decoding: the session's future stays small (a
        // current-thread runtime polls it on its caller's stack).
        let loaded = Box::pin(ahead::load_changed(&store, &ids, &decoded, lanes)).await?;
        let now = self.replica.store.clock().now_millis();
        let mut tx = store.begin().await?;
        tx.offer(loaded);
        // Read under the writer lock: a session with another peer may have
        // quarantined a change of these documents while this one waited
        // for the lock, and a held change judged as new here would be
        // applied with its entry left held (and what waits on it stuck).
        let held_all = tx.quarantined_in(&valid).await?;
        let mut judging = Judging::new(peer.clone(), sender, now, held_all, store.tree());
        judging.seals = tx.sealed_heads(&valid).await?;
        let acks = self
            .judge_updates(&mut tx, &mut judging, docs, ids, decoded)
            .await?;
        let (complete, units_changed) = (judging.complete, judging.units_changed || judging.sealed);
        drop(judging);
        self.checkpoint(&mut tx, &peer, &b, complete);
        self.flush_into(&mut tx);
        let receipts = std::mem::take(&mut self.receipts_pending);
        tx.add_receipts(&receipts).await?;
        tx.commit().await?;
        drop(slot);
        if units_changed {
            // Changes held because their maker's unit was not known yet
            // pass now that it is; changes a decision sealed pass too.
            gate::settle_all(&store, &self.replica.unit, now).await?;
        }
        self.stats.batches_applied += 1;
        let held = self.held_now().await?;
        Ok(Ack {
            batch: b.id,
            applied_upto: self.applied,
            docs: acks.into_vec(),
            at: store.clock().now_millis(),
            held,
        })
    }
}
fn payload_len(p: &Payload) -> usize {
    match p {
        Payload::Changes(b) | Payload::Sync(b) => b.len(),
    }
}

fn refuse(code: &str, reason: impl Into<String>) -> SyncError {
    SyncError::Refuse(Refusal {
        code: code.to_owned(),
        reason: reason.into(),
    })
}
