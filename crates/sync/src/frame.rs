//! The frames a sync session exchanges, independent of any transport. The
//! node converts them to and from the `hopluu.v1` protobuf messages at the
//! gRPC edge; tests pass them over in-memory channels.

use automerge::ChangeHash;

/// Version of the replication protocol; peers must agree on it.
/// Version 2 added edge reports, delivery receipts and the ack's time.
/// Fields added since are new protobuf fields a version 2 peer ignores
/// (the ack's count of held changes), so the version stays.
pub const PROTOCOL_VERSION: u32 = 2;

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Refusal(Refusal),
    Batch(Batch),
    Ack(Ack),
    /// Child to parent: the child's edges and those reported to it.
    Report(Vec<EdgeReport>),
    /// Parent to child: delivery receipts of the child's documents.
    Receipts(Receipts),
}

impl Frame {
    /// The frame's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Refusal(_) => "refusal",
            Frame::Batch(_) => "batch",
            Frame::Ack(_) => "ack",
            Frame::Report(_) => "report",
            Frame::Receipts(_) => "receipts",
        }
    }

    /// Approximate encoded size, for limits and statistics.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Frame::Hello(h) => 32 + h.node_id.len() + h.unit.len(),
            Frame::Refusal(r) => r.code.len() + r.reason.len() + 4,
            Frame::Batch(b) => 24 + b.docs.iter().map(DocUpdate::approx_bytes).sum::<usize>(),
            Frame::Ack(a) => {
                16 + a
                    .docs
                    .iter()
                    .map(|d| {
                        d.doc.len()
                            + 34 * (d.heads.len() + d.quarantined.len())
                            + d.rejected.len()
                            + 4
                    })
                    .sum::<usize>()
            }
            Frame::Report(edges) => edges.iter().map(EdgeReport::approx_bytes).sum::<usize>() + 4,
            Frame::Receipts(r) => {
                8 + r
                    .receipts
                    .iter()
                    .map(|r| r.doc.len() + r.node_id.len() + r.unit.len() + 34 * r.heads.len() + 12)
                    .sum::<usize>()
            }
        }
    }
}

/// The first frame each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub node_id: String,
    pub unit: String,
    pub protocol: u32,
    pub schema: i64,
    /// The last sequence of the receiver's feed that the sender has durably
    /// applied: the receiver resumes after it.
    pub applied_from_you: i64,
    /// From a child: the last of the parent's delivery receipts it has
    /// stored; the parent sends those after it.
    pub receipts_from_you: i64,
}

/// Why a side ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code: `protocol-version`, `schema-version`, `same-node`,
    /// `unknown-unit`, `not-in-subtree`, `wrong-peer`, `protocol`,
    /// `hello-timeout` (no hello in time: a slow link, worth another try
    /// soon, unlike the others); and, from
    /// a receiver, `limit` (a batch over its size limits); from
    /// a node serving TLS, `identity` (the hello is not the certificate's
    /// node) and `unknown-peer` (not a configured child).
    pub code: String,
    pub reason: String,
}

/// Document updates, applied by the receiver in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: u64,
    /// The stretch `(from_seq, upto_seq]` of the sender's feed this batch
    /// covers; both 0 for batches that are not read from the feed.
    pub from_seq: i64,
    pub upto_seq: i64,
    pub docs: Vec<DocUpdate>,
}

/// One document's update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocUpdate {
    pub doc: String,
    /// The sender's heads after these changes.
    pub heads: Vec<ChangeHash>,
    pub payload: Payload,
}

impl DocUpdate {
    fn approx_bytes(&self) -> usize {
        let payload = match &self.payload {
            Payload::Changes(b) | Payload::Sync(b) => b.len(),
        };
        self.doc.len() + 34 * self.heads.len() + payload + 8
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Changes after the heads the sender knows the receiver has (an
    /// automerge incremental save, or a whole document).
    Changes(Vec<u8>),
    /// An automerge sync protocol message, while those heads are unknown.
    Sync(Vec<u8>),
}

/// Sent once a batch is durable at the receiver; or, for batch 0 with no
/// documents, a notice of what the receiver holds (`held`) sent when that
/// changed between batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub batch: u64,
    /// The sender's feed, applied by the receiver without a gap up to here.
    pub applied_upto: i64,
    pub docs: Vec<DocHeads>,
    /// When the batch was applied, by the receiver's clock (ms since the
    /// epoch): the sender keeps a delivery receipt of each document.
    pub at: i64,
    /// What the receiver holds in quarantine of every change the sender
    /// sent it, as of this ack: sent, but not delivered.
    pub held: HeldChanges,
}

/// Changes a receiver holds in quarantine from one sender: how many, the
/// documents they are to, and when the oldest was made (ms since the
/// epoch; 0 when none is held).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeldChanges {
    pub changes: u64,
    pub docs: u64,
    pub oldest_millis: i64,
}

/// The receiver's heads of one document after applying an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocHeads {
    pub doc: String,
    pub heads: Vec<ChangeHash>,
    /// Non-empty when the update was not (wholly) applied, with the reason.
    pub rejected: String,
    /// Changes of the update that the receiver quarantined (or had
    /// quarantined before): not applied, and not to be sent again.
    pub quarantined: Vec<ChangeHash>,
}

/// One replication edge as the node at one end of it reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeReport {
    /// The node that reports, and the unit it hosts.
    pub reporter_node: String,
    pub reporter_unit: String,
    /// The node at the other end, and its unit (empty until known).
    pub peer_node: String,
    pub peer_unit: String,
    /// Whether the peer is one the reporter dials (else a child).
    pub upstream: bool,
    pub connected: bool,
    /// Connected (or disconnected) since, and the last frame from the
    /// peer; ms since the epoch, 0 for never.
    pub since_millis: i64,
    pub last_contact_millis: i64,
    /// The reporter's feed acknowledged by the peer; the peer's feed
    /// applied at the reporter.
    pub acked_upto: i64,
    pub applied_upto: i64,
    /// Updates of the reporter's feed the peer lacks, the documents they
    /// touch, and when the oldest was made (0: none).
    pub changes_pending: u64,
    pub docs_pending: u64,
    pub oldest_pending_millis: i64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rejected: u64,
    pub quarantined: u64,
    /// Of the reporter's changes, those the peer holds in quarantine
    /// (also counted in `changes_pending`); of the peer's, those the
    /// reporter holds.
    pub held_by_peer: u64,
    pub held_here: u64,
    /// The error that ended the edge's last session or dial, while the
    /// edge has not been healthy since (empty when none), and when it
    /// happened (ms since the epoch, 0 when none).
    pub last_error: String,
    pub last_error_millis: i64,
    /// The last error that the edge has since got over (a session
    /// established and a batch acknowledged), when it happened, and when
    /// the edge was found healthy again (ms; 0 when none).
    pub previous_error: String,
    pub previous_error_millis: i64,
    pub error_resolved_millis: i64,
    /// When the reporter made the report, by its clock.
    pub reported_at_millis: i64,
}

impl EdgeReport {
    fn approx_bytes(&self) -> usize {
        self.reporter_node.len()
            + self.reporter_unit.len()
            + self.peer_node.len()
            + self.peer_unit.len()
            + self.last_error.len()
            + self.previous_error.len()
            + 120
    }
}

/// Delivery receipts from a parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipts {
    /// The parent's last receipt this frame covers (the child names it as
    /// `receipts_from_you` in its next hello).
    pub upto: i64,
    pub receipts: Vec<Receipt>,
}

/// A document reached node `node_id` (hosting `unit`) with these heads at
/// `at` (that node's clock, ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub doc: String,
    pub node_id: String,
    pub unit: String,
    pub heads: Vec<ChangeHash>,
    pub at: i64,
}
