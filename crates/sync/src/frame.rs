//! The frames a sync session exchanges, independent of any transport. The
//! node converts them to and from the `hopluu.v1` protobuf messages at the
//! gRPC edge; tests pass them over in-memory channels.

use automerge::ChangeHash;

/// Version of the replication protocol; peers must agree on it.
pub const PROTOCOL_VERSION: u32 = 1;

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Refusal(Refusal),
    Batch(Batch),
    Ack(Ack),
}

impl Frame {
    /// The frame's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Refusal(_) => "refusal",
            Frame::Batch(_) => "batch",
            Frame::Ack(_) => "ack",
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
}

/// Why a side ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code: `protocol-version`, `schema-version`, `same-node`,
    /// `unknown-unit`, `not-in-subtree`, `wrong-peer`, `protocol`; and, from
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

/// Sent once a batch is durable at the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub batch: u64,
    /// The sender's feed, applied by the receiver without a gap up to here.
    pub applied_upto: i64,
    pub docs: Vec<DocHeads>,
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
