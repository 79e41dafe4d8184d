//! What each replication edge reports: its live status here, and the
//! edges the nodes below reported. Shared by replication, which keeps them,
//! and the conversions, which show them.

use hopluu_store::peer::Pending;
use hopluu_sync::frame::{EdgeReport, HeldChanges};

/// What a node knows of one replication edge, for `hopluu` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeStatus {
    pub peer: String,
    /// The unit the peer hosts (empty until a session told it).
    pub unit: String,
    /// "upstream" or "downstream".
    pub direction: &'static str,
    pub address: String,
    pub connected: bool,
    /// Unix milliseconds of the last change of `connected`.
    pub since_millis: i64,
    /// The error that ended the last session or dial, while the edge has
    /// not been healthy since (empty: none), and its Unix milliseconds.
    pub last_error: String,
    pub last_error_millis: i64,
    /// The last error the edge got over ([`EdgeStatus::healthy`]), its
    /// time, and when the edge was found healthy again (0: none).
    pub previous_error: String,
    pub previous_error_millis: i64,
    pub error_resolved_millis: i64,
    pub sessions: u64,
    /// This node's feed, acknowledged by the peer up to here.
    pub acked_upto: i64,
    /// The peer's feed, applied here up to here.
    pub applied_upto: i64,
    pub last_contact_millis: i64,
    pub docs_sent: u64,
    pub docs_applied: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rejected: u64,
    /// Changes from the peer quarantined here since this node started.
    pub quarantined: u64,
    /// Updates of this node's feed the peer has not acknowledged, the
    /// documents they touch and when the oldest was made (ms; 0: none),
    /// as of the last [`crate::replication::Replication::refresh_pending`].
    /// What the peer lacks adds the changes it holds: [`EdgeStatus::lacks`].
    pub changes_pending: u64,
    pub docs_pending: u64,
    pub oldest_pending_millis: i64,
    /// Of this node's changes, those the peer holds in quarantine, as its
    /// last acknowledgement told.
    pub held_by_peer: HeldChanges,
    /// Of the peer's changes, those this node holds, as of the last
    /// `refresh_pending`.
    pub held_here: u64,
}

impl EdgeStatus {
    /// A session or a dial failed with `error` at `at` (Unix ms).
    pub fn failed(&mut self, error: String, at: i64) {
        self.last_error = error;
        self.last_error_millis = at;
    }

    /// The edge works again at `at` (a session established and a batch of
    /// it acknowledged): the last error, if any, is no longer current and
    /// becomes the previous one, marked resolved, so that an administrator
    /// never reads an error of the past as the edge's state.
    pub fn healthy(&mut self, at: i64) {
        if self.last_error.is_empty() {
            return;
        }
        self.previous_error = std::mem::take(&mut self.last_error);
        self.previous_error_millis = std::mem::take(&mut self.last_error_millis);
        self.error_resolved_millis = at;
    }

    /// What the peer lacks of this node's changes: the feed's updates it
    /// has not acknowledged, and the changes it holds in quarantine.
    pub fn lacks(&self) -> Pending {
        lacking(
            Pending {
                changes: self.changes_pending,
                docs: self.docs_pending,
                oldest_millis: self.oldest_pending_millis,
            },
            self.held_by_peer,
        )
    }
}

/// Updates a peer has not acknowledged, and changes it holds in
/// quarantine, counted together: a held change was sent, not delivered.
/// A document with both counts twice in `docs`.
pub fn lacking(feed: Pending, held: HeldChanges) -> Pending {
    let oldest = [feed.oldest_millis, held.oldest_millis]
        .into_iter()
        .filter(|t| *t > 0)
        .min()
        .unwrap_or(0);
    Pending {
        changes: feed.changes + held.changes,
        docs: feed.docs + held.docs,
        oldest_millis: oldest,
    }
}

/// An edge a node below this one reported, and when it arrived here.
#[derive(Debug, Clone)]
pub struct ReportedEdge {
    pub edge: EdgeReport,
    pub received_at_millis: i64,
}
