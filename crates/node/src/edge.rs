//! What each replication edge reports: its live status here, and the
//! edges the nodes below reported. Shared by replication, which keeps them,
//! and the conversions, which show them.

use hopluu_sync::frame::EdgeReport;

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
    pub last_error: String,
    /// Unix milliseconds of `last_error` (0: none).
    pub last_error_millis: i64,
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
    /// Changes from the peer quarantined here.
    pub quarantined: u64,
    /// Updates of this node's feed the peer lacks, the documents they
    /// touch and when the oldest was made (ms; 0: none), as of the last
    /// [`crate::replication::Replication::refresh_pending`].
    pub changes_pending: u64,
    pub docs_pending: u64,
    pub oldest_pending_millis: i64,
}

/// An edge a node below this one reported, and when it arrived here.
#[derive(Debug, Clone)]
pub struct ReportedEdge {
    pub edge: EdgeReport,
    pub received_at_millis: i64,
}
