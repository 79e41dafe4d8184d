//! One sync session with one peer, as a state machine: frames in, frames
//! out, every effect on the store inside one transaction per batch.
//!
//! The session does no I/O of its own apart from the store: the caller
//! feeds it the frames it receives ([`Session::handle`]), asks it for the
//! next batch to send ([`Session::next_batch`]) when the transport can take
//! one, and tells it when an acknowledgement is overdue
//! ([`Session::on_timeout`]). [`crate::drive`] does that over channels; the
//! simulation in the tests does it step by step.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::doc::SCHEMA_VERSION;
use hopluu_model::{DocId, DocKind, DocMeta, UnitId};
use hopluu_store::Store;
use hopluu_store::peer::PeerDoc;
use hopluu_store::receipts::NewReceipt;

use crate::frame::{
    Ack, Batch, DocHeads, DocUpdate, EdgeReport, Frame, Hello, PROTOCOL_VERSION, Payload, Receipt,
    Receipts, Refusal,
};
use crate::gate::{self, Gate, Incoming, Sender};
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
    /// Acknowledged heads not yet written to the store.
    dirty: HashMap<DocId, Vec<ChangeHash>>,
    /// Automerge sync states while the peer's heads are being found.
    sync_states: HashMap<DocId, sync::State>,
    /// Documents to send outside the feed (a reply, a retry).
    resend: BTreeSet<DocId>,
    /// Automerge sync protocol replies, sent before anything else.
    sync_out: VecDeque<DocUpdate>,
    retries: HashMap<DocId, u32>,
    /// The peer's feed, applied here up to this sequence.
    applied: i64,
    stats: SessionStats,
    /// Where edge reports go and come from (the node's view of its edges).
    reports: Option<Arc<dyn EdgeReports>>,
    /// Delivery receipts from the peer's acknowledgements, not yet stored.
    receipts_pending: Vec<NewReceipt>,
    /// To a child: this node's receipts sent up to this id.
    receipts_sent: i64,
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
            told: 0,
            in_flight: VecDeque::new(),
            stale_before: 0,
            sent: HashMap::new(),
            acked_heads: HashMap::new(),
            dirty: HashMap::new(),
            sync_states: HashMap::new(),
            resend: BTreeSet::new(),
            sync_out: VecDeque::new(),
            retries: HashMap::new(),
            applied: 0,
            stats: SessionStats::default(),
            reports: None,
            receipts_pending: Vec::new(),
            receipts_sent: 0,
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

    /// Whether the session has something to send that does not depend on
    /// the feed moving.
    pub fn has_pending(&self) -> bool {
        self.peer.is_some() && (!self.resend.is_empty() || !self.sync_out.is_empty())
    }

    /// The first frame: a dialer speaks first, an acceptor answers the
    /// dialer's hello (from [`Session::handle`]).
    pub async fn start(&mut self) -> Result<Option<Frame>, SyncError> {
        match &self.role {
            Role::Dialer { expect } => {
                let expect = expect.clone();
                self.hello_sent = true;
                Ok(Some(Frame::Hello(self.hello_for(&expect).await?)))
            }
            Role::Acceptor => Ok(None),
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
            Role::Acceptor => 0,
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

    /// A child's report of its edges (and those of the nodes below it):
    /// entries from outside its subtree are dropped.
    fn on_report(&mut self, edges: Vec<EdgeReport>) -> Result<(), SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Err(refuse("protocol", "expected a hello, received a report"));
        };
        if !matches!(self.role, Role::Acceptor) {
            return Err(refuse("protocol", "a parent does not report to its child"));
        }
        if edges.len() > MAX_REPORTED_EDGES {
            return Err(refuse(
                "limit",
                format!(
                    "report of {} edges, over the limit of {MAX_REPORTED_EDGES}",
                    edges.len()
                ),
            ));
        }
        let Some(reports) = &self.reports else {
            return Ok(());
        };
        let tree = self.replica.store.tree();
        let total = edges.len();
        let edges: Vec<EdgeReport> = edges
            .into_iter()
            .filter(|e| {
                UnitId::parse("reporter_unit", &e.reporter_unit)
                    .is_ok_and(|u| tree.is_within(&u, &peer.unit))
            })
            .collect();
        if edges.len() < total {
            tracing::warn!(
                peer = %peer.node_id,
                dropped = total - edges.len(),
                "report entries from outside the child's subtree dropped"
            );
        }
        reports.reported(&peer, edges);
        Ok(())
    }

    /// Delivery receipts from the parent: stored with the parent's cursor,
    /// in one transaction.
    async fn on_receipts(&mut self, r: Receipts) -> Result<(), SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Err(refuse("protocol", "expected a hello, received receipts"));
        };
        if !matches!(self.role, Role::Dialer { .. }) {
            return Err(refuse("protocol", "a child does not send receipts"));
        }
        if r.receipts.len() > 10 * RECEIPTS_PER_FRAME as usize {
            return Err(refuse(
                "limit",
                format!("{} receipts in one frame", r.receipts.len()),
            ));
        }
        let rows: Vec<NewReceipt> = r
            .receipts
            .into_iter()
            .filter(|x| DocId::parse("doc_id", &x.doc).is_ok() && !x.node_id.is_empty())
            .map(|x| NewReceipt {
                doc: x.doc,
                node_id: x.node_id,
                unit: x.unit,
                heads: x.heads,
                at: x.at,
            })
            .collect();
        let mut tx = self.replica.store.begin().await?;
        tx.add_receipts(&rows).await?;
        tx.set_receipt_cursor(&peer.node_id, r.upto.max(0)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// As a child with edge reports: the report to send the parent now.
    pub fn report(&self) -> Option<Frame> {
        if !matches!(self.role, Role::Dialer { .. }) || self.peer.is_none() {
            return None;
        }
        let reports = self.reports.as_ref()?;
        let mut edges = reports.report();
        edges.truncate(MAX_REPORTED_EDGES);
        Some(Frame::Report(edges))
    }

    /// As a parent: the delivery receipts of the child's subtree stored
    /// here since the last ones sent, if any.
    pub async fn next_receipts(&mut self) -> Result<Option<Frame>, SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Ok(None);
        };
        if !matches!(self.role, Role::Acceptor) {
            return Ok(None);
        }
        let rows = self
            .replica
            .store
            .receipts_after(self.receipts_sent, RECEIPTS_PER_FRAME)
            .await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(None);
        };
        self.receipts_sent = last;
        let tree = self.replica.store.tree();
        let receipts: Vec<Receipt> = rows
            .into_iter()
            .filter(|r| {
                r.node_id != peer.node_id
                    && r.owner
                        .as_deref()
                        .and_then(|o| UnitId::parse("owner", o).ok())
                        .is_some_and(|o| tree.is_within(&o, &peer.unit))
            })
            .map(|r| Receipt {
                doc: r.doc,
                node_id: r.node_id,
                unit: r.unit,
                heads: r.heads,
                at: r.at,
            })
            .collect();
        Ok(Some(Frame::Receipts(Receipts {
            upto: last,
            receipts,
        })))
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
        self.receipts_sent = h.receipts_from_you.max(0);
        self.announced = self.cursor;
        self.acked = self.cursor;
        self.in_flight.clear();
        self.stale_before = self.next_id;
        self.sent.clear();
        self.forget_sync_in_flight();
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

    /// Back to the last acknowledged sequence: batches in flight are
    /// presumed lost. Called when an acknowledgement is overdue.
    pub fn on_timeout(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        self.rewind(self.acked);
    }

    fn rewind(&mut self, to: i64) {
        self.stats.rewinds += 1;
        tracing::debug!(node = %self.replica.node_id, from = self.cursor, to, "rewinding");
        self.cursor = to;
        self.announced = to;
        self.in_flight.clear();
        self.stale_before = self.next_id;
        self.sent.clear();
        self.forget_sync_in_flight();
    }

    /// Sync messages in flight are presumed lost too: a sync state that
    /// still waits for their answer would generate nothing more, and the
    /// documents it is finding would never be sent again.
    fn forget_sync_in_flight(&mut self) {
        for state in self.sync_states.values_mut() {
            *state = sync::State::decode(&state.encode()).unwrap_or_default();
        }
    }

    fn on_ack(&mut self, a: Ack) {
        if a.batch >= self.next_id {
            tracing::warn!(batch = a.batch, "ack of a batch never sent; ignored");
            return;
        }
        self.acked = self.acked.max(a.applied_upto);
        let receipts_from = match (&self.role, &self.peer) {
            (Role::Dialer { .. }, Some(p)) if a.at > 0 => Some(p.clone()),
            _ => None,
        };
        for d in a.docs {
            let Ok(id) = DocId::parse("doc_id", &d.doc) else {
                continue;
            };
            if let Some(p) = &receipts_from
                && d.rejected.is_empty()
                && !d.heads.is_empty()
            {
                // The parent holds these heads of the document since `at`.
                self.receipts_pending.push(NewReceipt {
                    doc: d.doc.clone(),
                    node_id: p.node_id.clone(),
                    unit: p.unit.to_string(),
                    heads: d.heads.clone(),
                    at: a.at,
                });
            }
            // Changes the peer quarantined count as known there: they are
            // not sent again, and what follows them is sent after them.
            let mut heads = d.heads;
            heads.extend(d.quarantined);
            if !d.rejected.is_empty() {
                self.stats.docs_rejected += 1;
                let n = self.retries.entry(id.clone()).or_insert(0);
                *n += 1;
                tracing::warn!(doc = %id, reason = %d.rejected, attempt = *n, "peer did not apply an update");
                self.sent.remove(&id);
                self.acked_heads.insert(id.clone(), heads);
                if *n <= MAX_RETRIES {
                    self.resend.insert(id);
                }
                continue;
            }
            self.retries.remove(&id);
            if self.sent.get(&id).is_some_and(|(b, _)| *b == a.batch) {
                self.sent.remove(&id);
            }
            if self.sync_states.contains_key(&id) {
                // The peer's heads are learnt: send what it lacks.
                self.resend.insert(id.clone());
            }
            self.dirty.insert(id.clone(), heads.clone());
            self.acked_heads.insert(id, heads);
        }
        if a.batch < self.stale_before {
            return;
        }
        while self.in_flight.front().is_some_and(|f| f.id <= a.batch) {
            let f = self.in_flight.pop_front().expect("checked");
            if f.id < a.batch {
                self.lost(f.id);
            }
            if f.id == a.batch && f.upto > 0 && a.applied_upto < f.upto {
                // The peer applied this batch but not one before it: one was
                // lost on the way. Go back to what it has.
                self.rewind(a.applied_upto);
                return;
            }
        }
    }

    /// A batch whose acknowledgement never came while a later one's did:
    /// it was lost. Its documents are sent again (the feed's are found
    /// again by the rewind the later acknowledgement triggers, but replies
    /// and retries are not in the feed), and the heads it carried are no
    /// longer expected at the peer.
    fn lost(&mut self, batch: u64) {
        let docs: Vec<DocId> = self
            .sent
            .iter()
            .filter(|(_, (b, _))| *b == batch)
            .map(|(d, _)| d.clone())
            .collect();
        for d in docs {
            self.sent.remove(&d);
            self.resend.insert(d);
        }
        self.forget_sync_in_flight();
    }

    /// The heads the peer has, or will have once what is in flight lands.
    fn known(&self, id: &DocId) -> Option<&Vec<ChangeHash>> {
        self.sent
            .get(id)
            .map(|(_, h)| h)
            .or_else(|| self.acked_heads.get(id))
    }

    /// The next batch to send, if the window allows and there is anything:
    /// replies and retries first, then the feed.
    pub async fn next_batch(&mut self) -> Result<Option<Frame>, SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Ok(None);
        };
        if self.in_flight.len() >= self.replica.limits.in_flight {
            return Ok(None);
        }
        // Scope is decided on the tree: until the peer's unit is known here
        // (its record arrives with the first sync), nothing is sent.
        if !self.replica.store.tree().contains(&peer.unit) {
            return Ok(None);
        }
        let limits = self.replica.limits.clone();
        let mut docs = Vec::new();
        let mut bytes = 0usize;
        let id = self.next_id;
        while let Some(u) = self.sync_out.pop_front() {
            bytes += u.doc.len() + payload_len(&u.payload);
            docs.push(u);
            if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                break;
            }
        }
        if !docs.is_empty() {
            return Ok(Some(self.emit(id, 0, 0, docs, bytes)));
        }
        if !self.resend.is_empty() {
            let ids: Vec<DocId> = std::mem::take(&mut self.resend).into_iter().collect();
            self.load_known(&peer.node_id, &ids).await?;
            let mut rest = ids.into_iter();
            for d in rest.by_ref() {
                if let Some(u) = self.update_for(&d, id).await? {
                    bytes += u.doc.len() + payload_len(&u.payload);
                    docs.push(u);
                }
                if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                    break;
                }
            }
            self.resend.extend(rest);
            if !docs.is_empty() {
                return Ok(Some(self.emit(id, 0, 0, docs, bytes)));
            }
        }
        let position = *self.replica.store.watch_feed().borrow();
        if position <= self.cursor {
            return Ok(None);
        }
        let mut upto = self.cursor;
        // Scan until the batch is full or the feed is exhausted; skipped
        // (out of scope, already known) documents cost no bytes.
        loop {
            let scan = self.replica.store.scan_feed(upto, limits.scan).await?;
            if scan.upto <= upto {
                break;
            }
            let wanted: std::collections::HashSet<i64> = {
                let tree = self.replica.store.tree();
                scan.docs
                    .iter()
                    .filter(|f| tree.in_scope(&peer.unit, &f.meta, self.replica.private_depth))
                    .map(|f| f.seq)
                    .collect()
            };
            let ids: Vec<DocId> = scan
                .docs
                .iter()
                .filter(|f| wanted.contains(&f.seq))
                .map(|f| f.meta.id.clone())
                .collect();
            self.load_known(&peer.node_id, &ids).await?;
            let mut full = false;
            let mut last_seq = scan.upto;
            for f in &scan.docs {
                if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                    full = true;
                    last_seq = f.seq - 1;
                    break;
                }
                if !wanted.contains(&f.seq) {
                    continue;
                }
                if self.known(&f.meta.id) == Some(&f.heads) {
                    if self.acked_heads.get(&f.meta.id) == Some(&f.heads) {
                        continue;
                    }
                    // These heads are in flight in another batch (a reply or
                    // a retry) and not acknowledged yet. Were that batch lost,
                    // a checkpoint past this document would skip it for good
                    // (the next session resumes after the checkpoint): the
                    // stretch stops before it until the acknowledgement comes
                    // (or a timeout rewinds).
                    full = true;
                    last_seq = f.seq - 1;
                    break;
                }
                match self.update_for(&f.meta.id, id).await? {
                    Some(u) => {
                        bytes += u.doc.len() + payload_len(&u.payload);
                        docs.push(u);
                    }
                    // The sync protocol has nothing to say until the peer
                    // answers its last message, and the peer is not known to
                    // have these heads: as above, the stretch stops before
                    // the document.
                    None if self.sync_states.contains_key(&f.meta.id)
                        && self.acked_heads.get(&f.meta.id) != Some(&f.heads) =>
                    {
                        full = true;
                        last_seq = f.seq - 1;
                        break;
                    }
                    None => {}
                }
            }
            upto = last_seq;
            if full || docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                break;
            }
            if scan.docs.len() < limits.scan as usize {
                break;
            }
        }
        self.cursor = upto;
        let from = self.announced;
        // Nothing for the peer: move on silently, and tell it only once the
        // skipped stretch is long, so a busy feed of other units' documents
        // does not cost this link a transaction per write.
        // A stretch sent before a rewind is told again, though: the peer did
        // not take it (a batch was lost, or an update in it was incomplete),
        // and without it the peer's checkpoint would stay behind for good.
        if docs.is_empty() && upto - from < i64::from(limits.scan) * 4 && from >= self.told {
            return Ok(None);
        }
        if upto <= from {
            return Ok(None);
        }
        self.announced = upto;
        Ok(Some(self.emit(id, from, upto, docs, bytes)))
    }

    fn emit(&mut self, id: u64, from: i64, upto: i64, docs: Vec<DocUpdate>, bytes: usize) -> Frame {
        self.next_id += 1;
        self.told = self.told.max(upto);
        self.in_flight.push_back(InFlight { id, upto });
        self.stats.in_flight = self.in_flight.len() as u64;
        self.stats.batches_sent += 1;
        self.stats.docs_sent += docs.len() as u64;
        self.stats.bytes_sent += bytes as u64;
        Frame::Batch(Batch {
            id,
            from_seq: from,
            upto_seq: upto,
            docs,
        })
    }

    /// Fills in what the store knows of the peer's heads for `ids`.
    async fn load_known(&mut self, peer: &str, ids: &[DocId]) -> Result<(), SyncError> {
        let missing: Vec<DocId> = ids
            .iter()
            .filter(|d| self.known(d).is_none() && !self.sync_states.contains_key(*d))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let stored = self.replica.store.peer_docs(peer, &missing).await?;
        for (id, PeerDoc { heads, sync }) in stored {
            match sync {
                // A sync state is decoded fresh for every session: its
                // in-flight part must not survive a reconnect (automerge
                // #1284 describes the loop it causes otherwise).
                Some(bytes) => {
                    let state = sync::State::decode(&bytes).unwrap_or_default();
                    self.sync_states.insert(id.clone(), state);
                    self.acked_heads.insert(id, heads);
                }
                None => {
                    self.acked_heads.insert(id, heads);
                }
            }
        }
        Ok(())
    }

    /// The update that brings the peer up to date with `id`, or None if it
    /// has everything: changes after the heads it is known to have, or, while
    /// those are unknown (or include changes this node lacks), an automerge
    /// sync message.
    async fn update_for(&mut self, id: &DocId, batch: u64) -> Result<Option<DocUpdate>, SyncError> {
        let known = self.known(id).cloned();
        let mut state = self.sync_states.remove(id);
        let built = self
            .replica
            .store
            .read_doc(id, |doc| build_update(doc, known.as_deref(), &mut state))
            .await?;
        let Some((update, plain)) = built else {
            // Not stored here (any more): nothing to send.
            return Ok(None);
        };
        if !plain && let Some(state) = state {
            self.sync_states.insert(id.clone(), state);
        }
        let Some((heads, payload)) = update else {
            return Ok(None);
        };
        if let Payload::Changes(_) = payload {
            self.sent.insert(id.clone(), (batch, heads.clone()));
        }
        Ok(Some(DocUpdate {
            doc: id.to_string(),
            heads,
            payload,
        }))
    }

    /// Applies a batch in one transaction, with the peer state it implies,
    /// and returns the acknowledgement to send once it is durable. Every
    /// change passes the gate ([`crate::gate`]) first: what fails is
    /// quarantined, in the same transaction.
    async fn apply(&mut self, b: Batch) -> Result<Ack, SyncError> {
        let peer = self.peer.clone().expect("checked by the caller");
        let limits = self.replica.limits.clone();
        let ids: Vec<Option<DocId>> = b
            .docs
            .iter()
            .map(|u| DocId::parse("doc_id", &u.doc).ok())
            .collect();
        // Sync states for documents whose heads are being found.
        let sync_ids: Vec<DocId> = b
            .docs
            .iter()
            .zip(&ids)
            .filter(|(u, _)| matches!(u.payload, Payload::Sync(_)))
            .filter_map(|(_, id)| id.clone())
            .filter(|id| !self.sync_states.contains_key(id))
            .collect();
        if !sync_ids.is_empty() {
            let stored = self
                .replica
                .store
                .peer_docs(&peer.node_id, &sync_ids)
                .await?;
            for (id, pd) in stored {
                if let Some(bytes) = pd.sync {
                    self.sync_states
                        .insert(id, sync::State::decode(&bytes).unwrap_or_default());
                }
            }
        }
        let valid: Vec<DocId> = ids.iter().flatten().cloned().collect();
        let sender = Sender {
            node: peer.node_id.clone(),
            unit: peer.unit.clone(),
            is_child: matches!(self.role, Role::Acceptor),
        };
        let now = self.replica.store.clock().now_millis();
        let store = self.replica.store.clone();
        let mut tx = store.begin().await?;
        // Read under the writer lock: a session with another peer may have
        // quarantined a change of these documents while this one waited
        // for the lock, and a held change judged as new here would be
        // applied with its entry left held (and what waits on it stuck).
        let mut held_all = tx.quarantined_in(&valid).await?;
        // The unit tree as of the last commit, plus the unit records this
        // batch brings (a new unit's record and its first roster often
        // travel together).
        let mut tree = store.tree();
        let mut units_changed = false;
        let mut acks = InOrder::with_capacity(b.docs.len());
        // Whether every update of the batch left this node with all of the
        // sender's heads (or holds the missing ones in quarantine, where
        // this sender could not deliver them: `Gate::known_held`). Only
        // then does the batch's stretch of the sender's feed count as
        // applied: a document still being found by the sync protocol must
        // be sent again after a reconnect, and the sender resumes from the
        // checkpoint.
        let mut complete = true;
        // Updates that name units this node does not know yet wait for the
        // rest of the batch (which may bring those units' records), pass
        // after pass while passes make the tree grow; the last pass judges
        // whatever is left.
        let mut queue: VecDeque<(usize, DocUpdate, Option<DocId>)> = b
            .docs
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (u, id))| (i, u, id))
            .collect();
        let mut deferred: Vec<(usize, DocUpdate, Option<DocId>)> = Vec::new();
        let mut last_pass = false;
        let mut grew = false;
        loop {
            let Some((pos, u, id)) = queue.pop_front() else {
                if deferred.is_empty() {
                    break;
                }
                last_pass = !grew;
                grew = false;
                queue.extend(deferred.drain(..));
                continue;
            };
            acks.at(pos);
            let Some(id) = id else {
                acks.push(DocHeads {
                    doc: u.doc.clone(),
                    heads: Vec::new(),
                    rejected: format!("{:?} is not a document id", u.doc),
                    quarantined: Vec::new(),
                });
                continue;
            };
            let before = tx.doc(&id).await?.get_heads();
            let refuse_doc = |reason: String| DocHeads {
                doc: id.to_string(),
                heads: before.clone(),
                rejected: reason,
                quarantined: Vec::new(),
            };
            if payload_len(&u.payload) > limits.accept_doc_bytes {
                self.stats.docs_rejected += 1;
                tracing::warn!(peer = %peer.node_id, doc = %id, bytes = payload_len(&u.payload), "update over the size limit");
                acks.push(refuse_doc(format!(
                    "limit: update of {} bytes, over the limit of {} bytes",
                    payload_len(&u.payload),
                    limits.accept_doc_bytes
                )));
                continue;
            }
            match gate::private_allowed(&tree, &self.replica.unit, &id, self.replica.private_depth)
            {
                Some(true) => {}
                Some(false) => {
                    self.stats.docs_rejected += 1;
                    tracing::warn!(peer = %peer.node_id, doc = %id, "private roster refused: not held at this node");
                    acks.push(refuse_doc(
                        "private-data: private rosters are not held at this node".to_owned(),
                    ));
                    continue;
                }
                // The unit records that decide it may come later in the
                // batch; failing that, the sender sends it again (the
                // checkpoint waits for it).
                None if !last_pass => {
                    deferred.push((pos, u, Some(id)));
                    continue;
                }
                None => {
                    self.stats.docs_rejected += 1;
                    complete = false;
                    acks.push(refuse_doc(
                        "private-data: this node's place in the unit tree is not known yet: resend later"
                            .to_owned(),
                    ));
                    continue;
                }
            }
            let mut held = held_all.remove(&id).unwrap_or_default();
            let had_held = !held.is_empty();
            let gate = Gate {
                tree: &tree,
                sender: &sender,
                now,
            };
            let mut rejected = String::new();
            let mut peer_heads: Option<Vec<ChangeHash>> = None;
            let mut sync_bytes = None;
            let mut missing_deps = false;
            let mut quarantined: Vec<ChangeHash> = Vec::new();
            // Held changes that count as had here, to this sender
            // (`Gate::known_held`): the others it still owes.
            let mut known_held: HashSet<ChangeHash> = HashSet::new();
            let mut changes = 0u64;
            // The changes an update carries, and for a sync message the
            // message without them: the changes pass the gate first, the
            // protocol sees the rest.
            let decoded = match &u.payload {
                Payload::Changes(data) => Incoming::decode(data, limits.accept_changes)
                    .map(|i| (i, None))
                    .map_err(|e| format!("undecodable changes: {e}")),
                Payload::Sync(msg) => match sync::Message::decode(msg) {
                    Err(e) => Err(format!("undecodable sync message: {e}")),
                    Ok(mut msg) => {
                        let data: Vec<u8> = msg.changes.iter().flatten().copied().collect();
                        msg.changes = sync::ChunkList::empty();
                        Incoming::decode(&data, limits.accept_changes)
                            .map(|i| (i, Some(msg)))
                            .map_err(|e| format!("undecodable changes: {e}"))
                    }
                },
            };
            match decoded {
                Err(e) => rejected = e,
                Ok((incoming, msg)) => {
                    let admitted = gate
                        .admit(&mut tx, &id, incoming, &mut held, !last_pass)
                        .await?;
                    if admitted.deferred {
                        held_all.insert(id.clone(), held);
                        deferred.push((pos, u, Some(id)));
                        continue;
                    }
                    if let Some(reason) = admitted.refused {
                        self.stats.docs_rejected += 1;
                        if msg.is_some() {
                            self.sync_states.remove(&id);
                        }
                        tracing::warn!(peer = %peer.node_id, doc = %id, reason = %reason, "update refused");
                        acks.push(refuse_doc(format!("refused: {reason}")));
                        continue;
                    }
                    let orphans = !admitted.orphans.is_empty();
                    quarantined.extend(admitted.quarantined);
                    quarantined.extend(admitted.known_bad);
                    changes = admitted.applied as u64;
                    if !held.is_empty() {
                        known_held = gate.known_held(&mut tx, &id, &held, &quarantined).await?;
                        // The ack names as known only what this sender
                        // cannot deliver; it sends the rest again.
                        quarantined.retain(|h| known_held.contains(h));
                    }
                    let doc = tx.doc(&id).await?;
                    match msg {
                        None => {
                            // Changes whose past is not here were left
                            // alone: the sender resends from our heads.
                            let missing = orphans
                                || u.heads.iter().any(|h| {
                                    doc.get_change_by_hash(h).is_none() && !known_held.contains(h)
                                });
                            if missing {
                                missing_deps = true;
                                rejected =
                                    "missing dependencies: resend from the heads in this ack"
                                        .to_owned();
                            } else {
                                peer_heads = Some(known_only(doc, &u.heads));
                            }
                        }
                        Some(msg) => {
                            let state = self.sync_states.entry(id.clone()).or_default();
                            match gate::guarded(|| doc.receive_sync_message(state, msg))
                                .and_then(|r| r.map_err(|e| e.to_string()))
                            {
                                Err(e) => {
                                    rejected = format!("sync message refused: {e}");
                                    // The document or the state may be half
                                    // changed: start both afresh.
                                    self.sync_states.remove(&id);
                                    tx.discard(&id);
                                }
                                Ok(()) => {
                                    let theirs = state.their_heads.clone().unwrap_or_default();
                                    if theirs.iter().all(|h| {
                                        doc.get_change_by_hash(h).is_some()
                                            || known_held.contains(h)
                                    }) {
                                        // The peer's heads are all known here
                                        // (or held): from now on it gets plain
                                        // changes.
                                        self.sync_states.remove(&id);
                                        // A late answer to an earlier round
                                        // (the peer had nothing yet, say) names
                                        // heads older than those it has
                                        // acknowledged since: forgetting those
                                        // would send it the document again.
                                        let theirs = known_only(doc, &theirs);
                                        let stale = self
                                            .acked_heads
                                            .get(&id)
                                            .is_some_and(|known| covers(doc, known, &theirs));
                                        if !stale {
                                            peer_heads = Some(theirs);
                                        }
                                        self.resend.insert(id.clone());
                                    } else {
                                        // The peer has changes this node lacks:
                                        // answer in the sync protocol, which
                                        // finds them without resending history.
                                        if let Ok(Some(reply)) =
                                            gate::guarded(|| doc.generate_sync_message(state))
                                        {
                                            self.sync_out.push_back(DocUpdate {
                                                doc: id.to_string(),
                                                heads: doc.get_heads(),
                                                payload: Payload::Sync(reply.encode()),
                                            });
                                        }
                                        sync_bytes = Some(state.encode());
                                        peer_heads = Some(known_only(doc, &theirs));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let doc = tx.doc(&id).await?;
            if doc.get_heads() != before && DocMeta::read(id.clone(), doc).is_err() {
                // Changes that leave no readable document (a skeleton without
                // its first record, say) wait for the rest to arrive.
                tx.discard(&id);
                acks.push(DocHeads {
                    rejected: "incomplete document: resend from the heads in this ack".into(),
                    ..refuse_doc(String::new())
                });
                continue;
            }
            if doc.get_heads() != before && (had_held || !held.is_empty()) {
                // Something came: a held change may have arrived by another
                // path, or what waited on one may now pass.
                gate::settle(&mut tx, &tree, &self.replica.unit, &id, now).await?;
            }
            let doc = tx.doc(&id).await?;
            if id.kind() == DocKind::Unit
                && doc.get_heads() != before
                && let Ok(unit) = hopluu_model::unit::read(&id, doc)
            {
                std::sync::Arc::make_mut(&mut tree).upsert_unit(&unit);
                units_changed = true;
                grew = true;
            }
            let heads = doc.get_heads();
            // Incomplete: the sync protocol is still finding the difference,
            // or changes came before those they depend on (the sender sends
            // them again from the heads in the ack). Updates refused for good
            // (undecodable, or leaving no readable document) do not hold the
            // checkpoint back: sending them again would not help. Nor do
            // quarantined changes: they wait for an administrator.
            if (rejected.is_empty() || missing_deps)
                && !u
                    .heads
                    .iter()
                    .all(|h| doc.get_change_by_hash(h).is_some() || known_held.contains(h))
            {
                complete = false;
            }
            if let Some(ph) = &peer_heads {
                tx.set_peer_heads(&peer.node_id, &id, ph, sync_bytes);
                if rejected.is_empty() {
                    self.acked_heads.insert(id.clone(), ph.clone());
                }
            }
            if rejected.is_empty() {
                self.stats.docs_applied += 1;
            } else {
                self.stats.docs_rejected += 1;
                tracing::warn!(peer = %peer.node_id, doc = %id, reason = %rejected, "update not applied");
            }
            if rejected.is_empty() || missing_deps {
                // Committed with the batch; a discarded update's are not.
                self.stats.changes_applied += changes;
            }
            self.stats.changes_quarantined += quarantined.len() as u64;
            acks.push(DocHeads {
                doc: id.to_string(),
                heads,
                rejected,
                quarantined,
            });
        }
        drop(tree);
        if complete && b.upto_seq > 0 && b.from_seq <= self.applied && b.upto_seq > self.applied {
            self.applied = b.upto_seq;
            tx.set_peer_applied(&peer.node_id, &peer.unit, self.applied);
        }
        self.flush_into(&mut tx);
        let receipts = std::mem::take(&mut self.receipts_pending);
        tx.add_receipts(&receipts).await?;
        tx.commit().await?;
        if units_changed {
            // Changes held because their maker's unit was not known yet
            // pass now that it is.
            gate::settle_all(&store, &self.replica.unit, now).await?;
        }
        self.stats.batches_applied += 1;
        Ok(Ack {
            batch: b.id,
            applied_upto: self.applied,
            docs: acks.into_vec(),
            at: store.clock().now_millis(),
        })
    }

    fn flush_into(&mut self, tx: &mut hopluu_store::WriteTx<'_>) {
        let Some(peer) = &self.peer else { return };
        for (id, heads) in self.dirty.drain() {
            tx.set_peer_heads(&peer.node_id, &id, &heads, None);
        }
        tx.set_peer_acked(&peer.node_id, &peer.unit, self.acked);
    }

    /// Writes what the peer has acknowledged (its heads per document, its
    /// checkpoint) to the store. Cheap to call often: it writes only what
    /// changed since the last call.
    pub async fn flush(&mut self) -> Result<(), SyncError> {
        if self.peer.is_none() || (self.dirty.is_empty() && self.receipts_pending.is_empty()) {
            return Ok(());
        }
        let store = self.replica.store.clone();
        let mut tx = store.begin().await?;
        self.flush_into(&mut tx);
        tx.add_receipts(&self.receipts_pending).await?;
        tx.commit().await?;
        self.receipts_pending.clear();
        Ok(())
    }
}

/// An ack's documents in the order of the batch's updates, whatever order
/// they were judged in (an update that waits for unit records later in the
/// batch is judged after them).
struct InOrder {
    items: Vec<(usize, DocHeads)>,
    at: usize,
}

impl InOrder {
    fn with_capacity(n: usize) -> InOrder {
        InOrder {
            items: Vec::with_capacity(n),
            at: 0,
        }
    }

    /// The update being judged, by its place in the batch.
    fn at(&mut self, pos: usize) {
        self.at = pos;
    }

    fn push(&mut self, d: DocHeads) {
        self.items.push((self.at, d));
    }

    fn into_vec(mut self) -> Vec<DocHeads> {
        self.items.sort_by_key(|(pos, _)| *pos);
        self.items.into_iter().map(|(_, d)| d).collect()
    }
}

/// The heads in `heads` this node has: what it may record as the peer's.
fn known_only(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter(|h| doc.get_change_by_hash(h).is_some())
        .copied()
        .collect()
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

/// Whether heads `known` include every change of `theirs` (each hash of
/// `theirs` is one of `known` or an ancestor of them), as far as `doc`
/// knows.
fn covers(doc: &Automerge, known: &[ChangeHash], theirs: &[ChangeHash]) -> bool {
    if !known.iter().all(|h| doc.get_change_by_hash(h).is_some()) {
        return false;
    }
    if theirs.iter().all(|h| known.contains(h)) {
        return true;
    }
    let after: BTreeSet<ChangeHash> = doc
        .get_changes_meta(known)
        .into_iter()
        .map(|c| c.hash)
        .collect();
    theirs.iter().all(|h| !after.contains(h))
}

/// The update that brings a peer with `known` heads up to date: plain
/// changes when every known head is in this document (`.1` true: the sync
/// state is done with), otherwise an automerge sync message from `state`.
/// `.0` is None when the peer needs nothing.
#[allow(clippy::type_complexity)]
fn build_update(
    doc: &Automerge,
    known: Option<&[ChangeHash]>,
    state: &mut Option<sync::State>,
) -> (Option<(Vec<ChangeHash>, Payload)>, bool) {
    let heads = doc.get_heads();
    if let Some(known) = known
        && known.iter().all(|h| doc.get_change_by_hash(h).is_some())
    {
        if known == heads.as_slice() {
            return (None, true);
        }
        if known.is_empty() {
            // The peer has none of it: the whole document, compressed.
            return (Some((heads, Payload::Changes(doc.save()))), true);
        }
        let data = doc.save_after(known);
        if data.is_empty() {
            return (None, true);
        }
        return (Some((heads, Payload::Changes(data))), true);
    }
    let st = state.get_or_insert_with(sync::State::new);
    match crate::gate::guarded(|| doc.generate_sync_message(st)) {
        Ok(msg) => (msg.map(|m| (heads, Payload::Sync(m.encode()))), false),
        Err(e) => {
            // A state built from what the peer sent that automerge cannot
            // answer: start the round afresh.
            tracing::warn!(error = %e, "sync state dropped");
            *state = Some(sync::State::new());
            (None, false)
        }
    }
}
