//! The node's metrics, for Prometheus: `GET /metrics` on `[metrics] listen`
//! answers the text exposition format 0.0.4 (`HELP` and `TYPE` lines,
//! escaped label values, histograms as cumulative `_bucket` series up to
//! `le="+Inf"` with `_sum` and `_count`); any other path is 404.
//!
//! Almost everything is read when Prometheus scrapes, from what the node
//! keeps anyway: each replication edge's status ([`Replication::edges`]),
//! the peers' checkpoints, the feed, documents, quarantine and conflicts in
//! the store, and the request limiter. Only what happens between scrapes
//! and is kept nowhere else is recorded as it happens, in [`SyncMetrics`]:
//! the changes each peer's batches applied, the time each batch took to
//! apply, and the batches in flight; replication's observer feeds it after
//! every frame a session handles. README.md ("Metrics") lists every series.
//!
//! The rendering is written here rather than taken from a metrics crate: a
//! few dozen series, most read at scrape time, need a text writer and one
//! histogram, not a registry of live instruments.
//!
//! # Layout
//! - [`Exposition`]: the text format writer.
//! - [`Histogram`]: fixed buckets, `_sum` and `_count`.
//! - [`SyncMetrics`]: what sessions report as they go, per peer.
//! - [`Scrape`]: one scrape of a node ([`Scrape::render`]).
//! - [`serve`]: the HTTP endpoint (axum), until cancelled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use hopluu_model::UnitId;
use hopluu_store::quarantine::QuarantineState;
use hopluu_sync::SessionStats;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::NodeError;
use crate::app::App;
use crate::grpc::auth::ClientLimits;
use crate::replication::Replication;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the apply-latency buckets, in seconds: a warm batch of
/// a few documents commits in milliseconds; a catch-up batch of hundreds
/// of whole documents, or one waiting on PostgreSQL, takes seconds.
pub const APPLY_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a metric family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A set of labels: name, value.
pub type Labels<'a> = [(&'a str, &'a str)];

/// Writes the text exposition format. Each family is started once
/// ([`Exposition::family`]) and its samples follow it, as the format
/// requires.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// A family's `HELP` and `TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample of the family last started (`name` may carry a suffix:
    /// `_bucket`, `_sum`, `_count`).
    pub fn sample(&mut self, name: &str, labels: &Labels<'_>, value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k) && !k.starts_with("__"), "label name {k:?}");
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(k);
                self.text.push_str("=\"");
                escape_label(&mut self.text, v);
                self.text.push('"');
            }
            self.text.push('}');
        }
        self.text.push(' ');
        push_value(&mut self.text, value);
        self.text.push('\n');
    }

    /// A family with one sample per label set.
    pub fn simple<'a>(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
    ) {
        self.family(name, kind, help);
        for (labels, value) in samples {
            self.sample(name, &labels, value);
        }
    }

    /// A histogram's series for one label set: a cumulative `_bucket` per
    /// bound and `le="+Inf"`, then `_sum` and `_count`.
    pub fn histogram(&mut self, name: &str, labels: &Labels<'_>, h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative += h.counts[i];
            let le = format_value(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_value(out: &mut String, v: f64) {
    out.push_str(&format_value(v));
}

/// A value as the format writes it: `+Inf`, `-Inf`, `NaN`, else Rust's
/// shortest round-tripping decimal (never an exponent).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// A histogram with fixed upper bounds (seconds, say).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), the last beyond every
    /// bound.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram; `bounds` ascend.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// What replication sessions report as they go, by peer node: kept for the
/// node's lifetime, across sessions.
#[derive(Debug, Default)]
pub struct SyncMetrics {
    peers: Mutex<BTreeMap<String, PeerSync>>,
}

#[derive(Debug, Clone)]
struct PeerSync {
    changes_applied: u64,
    in_flight: u64,
    queued_replies: u64,
    queued_frames: u64,
    apply: Histogram,
}

impl SyncMetrics {
    /// Takes in a session's counters after a frame from `peer` was handled
    /// (see [`SessionStats::last_apply`]: each batch is seen once).
    pub fn observe(&self, peer: &str, stats: &SessionStats) {
        let mut peers = self.peers.lock().expect("sync metrics");
        if !peers.contains_key(peer) {
            peers.insert(
                peer.to_owned(),
                PeerSync {
                    changes_applied: 0,
                    in_flight: 0,
                    queued_replies: 0,
                    queued_frames: 0,
                    apply: Histogram::new(&APPLY_SECONDS),
                },
            );
        }
        let p = peers.get_mut(peer).expect("inserted");
        p.in_flight = stats.in_flight;
        p.queued_replies = stats.queued_replies;
        p.queued_frames = stats.queued_frames;
        if let Some(took) = stats.last_apply {
            p.changes_applied += stats.last_apply_changes;
            p.apply.observe(took.as_secs_f64());
        }
    }

    fn snapshot(&self) -> BTreeMap<String, PeerSync> {
        self.peers.lock().expect("sync metrics").clone()
    }
}

/// What a scrape reads: the node's state, its replication and its limiter.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub app: Arc<App>,
    pub replication: Arc<Replication>,
    pub limits: Arc<ClientLimits>,
    /// `[replication] in_flight`: the window of batches per peer.
    pub in_flight_limit: usize,
    /// What the TLS acceptor refused (None when serving plaintext).
    pub tls_refusals: Option<Arc<crate::tls::accept::Refusals>>,
}

/// One peer, as a scrape sees it.
#[derive(Debug, Default)]
struct PeerView {
    unit: Option<String>,
    direction: &'static str,
    connected: bool,
    since_millis: i64,
    last_contact_millis: i64,
    sessions: u64,
    acked_upto: i64,
    applied_upto: i64,
    bytes_sent: u64,
    bytes_received: u64,
    docs_sent: u64,
    docs_applied: u64,
    rejected: u64,
    /// What the peer lacks of this node's changes: the feed's updates it
    /// has not acknowledged and the changes it holds in quarantine
    /// ([`crate::edge::lacking`]).
    pending: Option<hopluu_store::peer::Pending>,
    held_by_peer: hopluu_sync::frame::HeldChanges,
    /// Of the peer's changes, those this node holds.
    held_here: u64,
}

impl Scrape {
    /// The node's metrics, rendered.
    pub async fn render(&self) -> Result<String, NodeError> {
        let store = self.app.store();
        let position = *store.watch_feed().borrow();
        let documents = store.doc_count().await?;
        let quarantine = store.quarantine_counts().await?;
        let conflicts = store.conflict_count(None).await?;
        let sync = self.replication.metrics.snapshot();

        // Every peer known: in the store (ever synced), configured or
        // allowed as a child, or with an edge since the node started.
        let mut peers: BTreeMap<String, PeerView> = BTreeMap::new();
        for row in store.peers().await? {
            let p = peers.entry(row.node_id).or_default();
            p.unit = Some(row.unit);
            p.acked_upto = row.acked_upto;
            p.applied_upto = row.applied_upto;
        }
        for (node, unit) in self.replication.children() {
            let p = peers.entry(node).or_default();
            p.unit = Some(unit.to_string());
            p.direction = "downstream";
        }
        for e in self.replication.edges() {
            let p = peers.entry(e.peer).or_default();
            if !e.direction.is_empty() {
                p.direction = e.direction;
            }
            p.connected = e.connected;
            p.since_millis = e.since_millis;
            p.last_contact_millis = e.last_contact_millis;
            p.sessions = e.sessions;
            // The session's view is newer than the store's (written every
            // second and at the end).
            p.acked_upto = p.acked_upto.max(e.acked_upto);
            p.applied_upto = p.applied_upto.max(e.applied_upto);
            p.bytes_sent = e.bytes_sent;
            p.bytes_received = e.bytes_received;
            p.docs_sent = e.docs_sent;
            p.docs_applied = e.docs_applied;
            p.rejected = e.rejected;
            p.held_by_peer = e.held_by_peer;
        }
        for (node, held) in store.held_by_peer().await? {
            peers.entry(node).or_default().held_here = held.changes;
        }
        for (node, p) in &mut peers {
            if let Some(unit) = p
                .unit
                .as_deref()
                .and_then(|u| UnitId::parse("unit", u).ok())
            {
                let feed = store
                    .pending_for(node, &unit, p.acked_upto, self.app.private_depth)
                    .await?;
                p.pending = Some(crate::edge::lacking(feed, p.held_by_peer));
            }
        }

        let mut x = Exposition::default();
        let version = env!("CARGO_PKG_VERSION");
        x.simple(
            "hopluu_node_info",
            Kind::Gauge,
            "This node: its id, the unit it hosts and the hopluu version (always 1).",
            [(
                vec![
                    ("node", self.app.node_id.as_str()),
                    ("unit", self.app.unit.as_str()),
                    ("version", version),
                ],
                1.0,
            )],
        );
        x.simple(
            "hopluu_feed_position",
            Kind::Gauge,
            "The last sequence number of this node's change feed.",
            [(vec![], position as f64)],
        );
        x.simple(
            "hopluu_documents",
            Kind::Gauge,
            "Documents stored at this node.",
            [(vec![], documents as f64)],
        );
        x.simple(
            "hopluu_quarantined_changes",
            Kind::Gauge,
            "Quarantined changes by state: held (waiting for an administrator), released, discarded, \
             archived (set aside at an old host: their unit left its subtree).",
            [
                QuarantineState::Held,
                QuarantineState::Released,
                QuarantineState::Discarded,
                QuarantineState::Archived,
            ]
            .map(|s| {
                (
                    vec![("state", s.as_str())],
                    quarantine.get(&s).copied().unwrap_or(0) as f64,
                )
            }),
        );
        x.simple(
            "hopluu_conflicts",
            Kind::Gauge,
            "Unresolved conflicts: fields where concurrent writes left more than one value.",
            [(vec![], conflicts as f64)],
        );
        x.simple(
            "hopluu_client_callers_tracked",
            Kind::Gauge,
            "Client API callers whose request budget is tracked now ([limits]).",
            [(vec![], self.limits.tracked() as f64)],
        );
        x.simple(
            "hopluu_sync_in_flight_limit",
            Kind::Gauge,
            "Batches a session may have sent and not yet acknowledged ([replication] in_flight).",
            [(vec![], self.in_flight_limit as f64)],
        );

        // Per peer.
        let by_peer = |f: &dyn Fn(&str, &PeerView) -> Option<f64>| {
            peers
                .iter()
                .filter_map(|(node, p)| f(node, p).map(|v| (vec![("peer", node.as_str())], v)))
                .collect::<Vec<_>>()
        };
        // Batches in flight to a peer, as of its last acknowledgement.
        let in_flight = |node: &str, p: &PeerView| match sync.get(node) {
            Some(s) if p.connected => s.in_flight,
            _ => 0,
        };
        x.simple(
            "hopluu_peer_info",
            Kind::Gauge,
            "A replication peer: the unit it hosts and whether it is this node's upstream or downstream (always 1).",
            peers.iter().map(|(node, p)| {
                (
                    vec![
                        ("peer", node.as_str()),
                        ("unit", p.unit.as_deref().unwrap_or("")),
                        ("direction", p.direction),
                    ],
                    1.0,
                )
            }),
        );
        x.simple(
            "hopluu_peer_connected",
            Kind::Gauge,
            "Whether a sync session with the peer is open (1) or not (0).",
            by_peer(&|_, p| Some(f64::from(u8::from(p.connected)))),
        );
        x.simple(
            "hopluu_peer_state_changed_timestamp_seconds",
            Kind::Gauge,
            "When the peer last connected or disconnected (Unix time).",
            by_peer(&|_, p| (p.since_millis > 0).then(|| p.since_millis as f64 / 1000.0)),
        );
        x.simple(
            "hopluu_peer_last_contact_timestamp_seconds",
            Kind::Gauge,
            "When the peer's last frame was handled (Unix time).",
            by_peer(&|_, p| {
                (p.last_contact_millis > 0).then(|| p.last_contact_millis as f64 / 1000.0)
            }),
        );
        x.simple(
            "hopluu_peer_sessions_total",
            Kind::Counter,
            "Sync sessions with the peer since this node started.",
            by_peer(&|_, p| Some(p.sessions as f64)),
        );
        x.simple(
            "hopluu_sync_acked_upto",
            Kind::Gauge,
            "This node's feed, acknowledged by the peer up to this sequence.",
            by_peer(&|_, p| Some(p.acked_upto as f64)),
        );
        x.simple(
            "hopluu_sync_applied_upto",
            Kind::Gauge,
            "The peer's feed, applied here up to this sequence.",
            by_peer(&|_, p| Some(p.applied_upto as f64)),
        );
        x.simple(
            "hopluu_sync_lag_sequences",
            Kind::Gauge,
            "Feed sequences the peer has not acknowledged: this node's feed position minus the peer's checkpoint (an idle link acknowledges a stretch of documents outside the peer's scope only once it is long). A change the peer holds in quarantine is acknowledged, so not counted here: see hopluu_sync_held_by_peer_changes.",
            by_peer(&|_, p| Some((position - p.acked_upto).max(0) as f64)),
        );
        x.simple(
            "hopluu_sync_pending_documents",
            Kind::Gauge,
            "Documents in the peer's scope updated after its checkpoint whose latest heads it is not known to have, plus those with changes the peer holds in quarantine.",
            by_peer(&|_, p| p.pending.map(|n| n.docs as f64)),
        );
        x.simple(
            "hopluu_sync_pending_changes",
            Kind::Gauge,
            "Updates of this node's feed to those documents (one per document write), plus the changes the peer holds in quarantine (sent, not delivered).",
            by_peer(&|_, p| p.pending.map(|n| n.changes as f64)),
        );
        x.simple(
            "hopluu_sync_held_by_peer_changes",
            Kind::Gauge,
            "Of this node's changes, those the peer holds in quarantine, as its last acknowledgement told (counted in hopluu_sync_pending_changes too).",
            by_peer(&|_, p| Some(p.held_by_peer.changes as f64)),
        );
        x.simple(
            "hopluu_sync_held_here_changes",
            Kind::Gauge,
            "Of the peer's changes, those this node holds in quarantine (hopluu quarantine list).",
            by_peer(&|_, p| Some(p.held_here as f64)),
        );
        let now = self.app.clock.now_millis();
        x.simple(
            "hopluu_sync_lag_seconds",
            Kind::Gauge,
            "Age of the oldest of those updates or held changes, in seconds (0 when the peer lacks nothing).",
            by_peer(&|_, p| {
                p.pending.map(|n| {
                    if n.oldest_millis > 0 {
                        ((now - n.oldest_millis).max(0) as f64) / 1000.0
                    } else {
                        0.0
                    }
                })
            }),
        );
        x.simple(
            "hopluu_sync_batches_in_flight",
            Kind::Gauge,
            "Batches sent to the peer and not yet acknowledged, as of its last acknowledgement (0 without a session).",
            by_peer(&|node, p| Some(in_flight(node, p) as f64)),
        );
        x.simple(
            "hopluu_sync_window_headroom_batches",
            Kind::Gauge,
            "Batches that may still be sent to the peer before its acknowledgements: hopluu_sync_in_flight_limit minus hopluu_sync_batches_in_flight.",
            by_peer(&|node, p| {
                Some((self.in_flight_limit as u64).saturating_sub(in_flight(node, p)) as f64)
            }),
        );
        let queued = |node: &str, p: &PeerView, replies: bool| match sync.get(node) {
            Some(s) if p.connected => {
                if replies {
                    s.queued_replies
                } else {
                    s.queued_frames
                }
            }
            _ => 0,
        };
        x.simple(
            "hopluu_sync_queued_replies",
            Kind::Gauge,
            "Acknowledgements waiting for the peer to read them (past 64 the node stops reading from it), as of the last frame handled.",
            by_peer(&|node, p| Some(queued(node, p, true) as f64)),
        );
        x.simple(
            "hopluu_sync_queued_frames",
            Kind::Gauge,
            "Batches, reports and receipts waiting for the transport, as of the last frame handled.",
            by_peer(&|node, p| Some(queued(node, p, false) as f64)),
        );
        x.simple(
            "hopluu_sync_sent_bytes_total",
            Kind::Counter,
            "Payload bytes sent to the peer in the current (or last) session.",
            by_peer(&|_, p| Some(p.bytes_sent as f64)),
        );
        x.simple(
            "hopluu_sync_received_bytes_total",
            Kind::Counter,
            "Frame bytes received from the peer in the current (or last) session.",
            by_peer(&|_, p| Some(p.bytes_received as f64)),
        );
        x.simple(
            "hopluu_sync_sent_documents_total",
            Kind::Counter,
            "Document updates sent to the peer in the current (or last) session.",
            by_peer(&|_, p| Some(p.docs_sent as f64)),
        );
        x.simple(
            "hopluu_sync_applied_documents_total",
            Kind::Counter,
            "Document updates from the peer applied here in the current (or last) session.",
            by_peer(&|_, p| Some(p.docs_applied as f64)),
        );
        x.simple(
            "hopluu_sync_rejected_documents_total",
            Kind::Counter,
            "Document updates not applied, either side, in the current (or last) session.",
            by_peer(&|_, p| Some(p.rejected as f64)),
        );
        x.simple(
            "hopluu_sync_applied_changes_total",
            Kind::Counter,
            "Changes from the peer's batches applied here since this node started (quarantined ones not counted).",
            sync.iter()
                .map(|(node, s)| (vec![("peer", node.as_str())], s.changes_applied as f64)),
        );
        x.family(
            "hopluu_sync_apply_duration_seconds",
            Kind::Histogram,
            "Time to apply one batch from the peer: the checks, its one transaction and the commit.",
        );
        for (node, s) in &sync {
            x.histogram(
                "hopluu_sync_apply_duration_seconds",
                &[("peer", node.as_str())],
                &s.apply,
            );
        }
        if let Some(refusals) = &self.tls_refusals {
            let counts = refusals.counts();
            x.simple(
                "hopluu_tls_refused_total",
                Kind::Counter,
                "TLS connections refused at the handshake since this node started, by reason (unknown-ca, expired, not-yet-valid, bad-certificate, node-certificate-refused, not-tls, timeout, closed, handshake), and connections made without a client certificate (no-certificate: served the health service only).",
                counts
                    .iter()
                    .map(|(reason, n)| (vec![("reason", *reason)], *n as f64)),
            );
        }
        Ok(x.finish())
    }
}

/// Serves `GET /metrics` on `listener` until `stop` is cancelled (then
/// lets requests in progress finish).
pub async fn serve(
    listener: TcpListener,
    scrape: Scrape,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    async fn metrics(
        axum::extract::State(scrape): axum::extract::State<Arc<Scrape>>,
    ) -> axum::response::Response {
        match scrape.render().await {
            Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("metrics unavailable: {e}\n"),
                )
                    .into_response()
            }
        }
    }

    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: the metrics are at /metrics\n",
            )
        })
        .with_state(Arc::new(scrape));
    axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_help_are_escaped() {
        let mut x = Exposition::default();
        x.family("t_total", Kind::Counter, "a \\ help\nline");
        x.sample("t_total", &[("peer", "a\"b\\c\nd")], 3.0);
        assert_eq!(
            x.finish(),
            "# HELP t_total a \\\\ help\\nline\n# TYPE t_total counter\n\
             t_total{peer=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn values_are_written_as_the_format_reads_them() {
        for (v, text) in [
            (0.0, "0"),
            (1.5, "1.5"),
            (0.0025, "0.0025"),
            (1e21, "1000000000000000000000"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_value(v), text);
        }
    }

    #[test]
    fn a_histogram_is_cumulative_up_to_inf() {
        static BOUNDS: [f64; 2] = [0.1, 1.0];
        let mut h = Histogram::new(&BOUNDS);
        for v in [0.05, 0.1, 0.5, 7.0] {
            h.observe(v);
        }
        let mut x = Exposition::default();
        x.family("d_seconds", Kind::Histogram, "d");
        x.histogram("d_seconds", &[("peer", "p")], &h);
        let text = x.finish();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "d_seconds_bucket{peer=\"p\",le=\"0.1\"} 2",
                "d_seconds_bucket{peer=\"p\",le=\"1\"} 3",
                "d_seconds_bucket{peer=\"p\",le=\"+Inf\"} 4",
                "d_seconds_sum{peer=\"p\"} 7.65",
                "d_seconds_count{peer=\"p\"} 4",
            ]
        );
    }

    #[test]
    fn each_batch_is_observed_once() {
        let m = SyncMetrics::default();
        let mut stats = SessionStats {
            last_apply: Some(std::time::Duration::from_millis(3)),
            last_apply_changes: 5,
            in_flight: 2,
            ..SessionStats::default()
        };
        m.observe("hg", &stats);
        stats.last_apply = None;
        m.observe("hg", &stats);
        let s = m.snapshot();
        assert_eq!(s["hg"].changes_applied, 5);
        assert_eq!(s["hg"].apply.count(), 1);
        assert_eq!(s["hg"].in_flight, 2);
    }
}
