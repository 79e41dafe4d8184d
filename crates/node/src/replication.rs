//! Replication over gRPC: the `ReplicationService` a parent serves to its
//! children, and the dialer with which a child keeps one session open to
//! its parent (or, while the parent is unreachable, to a fallback such as
//! the grandparent). The protocol itself lives in `hopluu-sync`; this module
//! converts frames at the edge, owns the tasks, and keeps each edge's status.
//!
//! Every session task is tracked and cancellable: shutting the node down
//! cancels them, they write what their peers acknowledged, and the server
//! then closes the store. Nothing acknowledged is ever lost by stopping: a
//! batch is acknowledged only after its commit.
//!
//! # Who may sync
//!
//! Over mutual TLS a hello is not taken on its word. The dialer accepts
//! only an upstream whose certificate names the configured node
//! (`<node_id>.node.hopluu`, checked in the TLS handshake, whatever address
//! it dials). The acceptor admits a session only from a node certificate
//! whose node id and unit are the hello's (else it refuses with code
//! `identity`) and that is one of its configured children (else
//! `unknown-peer`): `[[replication.children]]`, or
//! [`Replication::allow_child`] at run time. A node serving plaintext
//! (`--insecure-plaintext`) trusts hellos as they come. The session's own
//! checks (versions, units, subtree) follow either way.
//!
//! # The convergence check
//!
//! `ScopeHeads` and `MissingChanges` answer another node's convergence
//! check ([`crate::check`]): heads only, of the documents in the caller's
//! scope. The caller is identified as a hello is
//! ([`Replication::node_caller`]): a node certificate whose node id and
//! unit are the request's (plaintext: the request's word), hosting a unit
//! this node knows; its scope is judged on this node's tree. Any node of
//! the federation may ask, not only a configured child or upstream: a
//! parent checks its child by dialling it, and what a node learns is only
//! what it would be sent itself. [`Replication::check_peer`] is the asking
//! side: it dials the peer as the dialer dials an upstream (the same
//! endpoint, certificate and node-id check) and lets the App compare.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automerge::ChangeHash;
use hopluu_model::{Clock, SystemClock, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_sync::drive::{self, DriveOptions, Inbound};
use hopluu_sync::frame::{
    Ack, Batch, DocHeads, DocUpdate, EdgeReport, Frame, Hello, Payload, Receipt, Receipts, Refusal,
};
use hopluu_sync::{Limits, Replica, Role, Session, SyncError};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::NodeError;
use crate::app::App;
use crate::check::{self, CheckError, Comparison, PeerAnswers, PeerPage};
use crate::config::{ReplicationSection, Upstream};
use crate::server::Security;
use crate::tls::{Identity, error_chain};

/// Frames buffered towards the transport per session (batches are also
/// bounded by the session's window).
const OUTBOUND_FRAMES: usize = 16;

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
    /// [`Replication::refresh_pending`].
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

/// Reported edges kept at most (a country's tree, with room).
const MAX_REPORTED: usize = hopluu_sync::session::MAX_REPORTED_EDGES;

/// The node's replication: session tasks and the status of every edge.
pub struct Replication {
    app: Arc<App>,
    config: ReplicationSection,
    security: Security,
    /// The nodes allowed to dial this one, with the unit each hosts.
    children: Mutex<BTreeMap<String, UnitId>>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    edges: Mutex<HashMap<String, EdgeStatus>>,
    /// Accepted sessions per peer node: at most one runs (a newer one ends
    /// the older, which is what a reconnect after a half-open link needs),
    /// and how many began in the last minute (a flood of hellos is
    /// refused).
    sessions: Mutex<HashMap<String, PeerSessions>>,
    /// What sessions report as they go, for the metrics endpoint.
    pub(crate) metrics: crate::metrics::SyncMetrics,
    /// Edges the nodes below reported, by (reporter, peer, upstream).
    reported: Mutex<HashMap<(String, String, bool), ReportedEdge>>,
    /// Wakes the dialer from its backoff wait (`hopluu sync now`).
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct PeerSessions {
    current: Option<(u64, CancellationToken)>,
    started: std::collections::VecDeque<std::time::Instant>,
}

/// Sessions a peer node may begin in a minute.
pub const SESSIONS_PER_MINUTE: usize = 30;

/// How long one call of a convergence check may take (a page of
/// ScopeHeads, or one MissingChanges).
const CHECK_CALL_TIMEOUT: Duration = Duration::from_secs(60);

static SESSION_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("upstreams", &self.config.upstreams)
            .finish_non_exhaustive()
    }
}

impl Replication {
    /// Replication as `config` says, over connections secured as
    /// `security` says (the validated configuration's children are
    /// allowed; an invalid entry is skipped with an error logged).
    pub fn new(app: Arc<App>, config: ReplicationSection, security: Security) -> Arc<Replication> {
        let mut children = BTreeMap::new();
        for c in &config.children {
            match UnitId::parse("replication.children.unit", &c.unit) {
                Ok(unit) => {
                    children.insert(c.node_id.clone(), unit);
                }
                Err(e) => tracing::error!(child = %c.node_id, error = %e, "child not allowed"),
            }
        }
        Arc::new(Replication {
            app,
            config,
            security,
            children: Mutex::new(children),
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            edges: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            metrics: crate::metrics::SyncMetrics::default(),
            reported: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn replica(&self) -> Replica {
        Replica {
            store: self.app.store.clone(),
            node_id: self.app.node_id.clone(),
            unit: self.app.unit.clone(),
            private_depth: self.config.private_depth,
            limits: Limits {
                batch_docs: self.config.batch_docs,
                batch_bytes: self.config.batch_bytes,
                in_flight: self.config.in_flight,
                ..Limits::default()
            },
        }
    }

    fn drive_options(&self) -> DriveOptions {
        DriveOptions {
            ack_timeout: Duration::from_secs(self.config.ack_timeout_secs),
            stall_timeout: Duration::from_secs(self.config.stall_timeout_secs),
            report_every: Duration::from_secs(self.config.report_every_secs),
            ..DriveOptions::default()
        }
    }

    /// Allows node `node_id`, hosting `unit`, to open sessions with this
    /// node (in addition to `[[replication.children]]`); allowing it again
    /// with another unit replaces the unit.
    pub fn allow_child(&self, node_id: &str, unit: &UnitId) {
        self.children
            .lock()
            .expect("children")
            .insert(node_id.to_owned(), unit.clone());
    }

    /// The nodes allowed to dial this one, with their units.
    pub fn children(&self) -> Vec<(String, UnitId)> {
        self.children
            .lock()
            .expect("children")
            .iter()
            .map(|(n, u)| (n.clone(), u.clone()))
            .collect()
    }

    /// Whether `who` may open a session whose hello is `hello` (see the
    /// module doc); the refusal says why.
    pub fn admit(&self, who: &Identity, hello: &Hello) -> Result<(), Refusal> {
        let refuse = |code: &str, reason: String| {
            Err(Refusal {
                code: code.to_owned(),
                reason,
            })
        };
        match who {
            Identity::Insecure => Ok(()),
            Identity::Node { node_id, unit } => {
                if hello.node_id != *node_id || hello.unit != unit.as_str() {
                    return refuse(
                        "identity",
                        format!(
                            "the certificate is node {node_id}'s (unit {unit}), but the hello claims node {} (unit {})",
                            hello.node_id, hello.unit
                        ),
                    );
                }
                match self.children.lock().expect("children").get(node_id) {
                    Some(u) if u == unit => Ok(()),
                    Some(u) => refuse(
                        "unknown-peer",
                        format!(
                            "node {node_id} is a child of this node hosting unit {u}, but its certificate names unit {unit}"
                        ),
                    ),
                    None => refuse(
                        "unknown-peer",
                        format!(
                            "node {node_id} (unit {unit}) is not a child of node {}: add it to [[replication.children]] there",
                            self.app.node_id
                        ),
                    ),
                }
            }
            other => refuse(
                "identity",
                format!("{other} cannot replicate: a session needs a node certificate"),
            ),
        }
    }

    /// The node calling `rpc` (`ScopeHeads`, `MissingChanges`) as `who`,
    /// claiming to be node `node_id` hosting `unit`: the unit whose scope
    /// it is answered for. Mirrors [`Replication::admit`]: a node
    /// certificate must name the request's node and unit; on a plaintext
    /// node the request is taken at its word. Refused: anyone but a node,
    /// and a node whose unit this node does not know (it could not tell
    /// that node's scope).
    pub fn node_caller(
        &self,
        who: &Identity,
        node_id: &str,
        unit: &str,
        rpc: &str,
    ) -> Result<UnitId, NodeError> {
        let denied = |reason: String| {
            tracing::warn!(caller = %who, rpc, %reason, "permission denied");
            NodeError::Denied(format!("{rpc}: {reason}"))
        };
        let (node, unit) = match who {
            Identity::Node {
                node_id: cert_node,
                unit: cert_unit,
            } => {
                if node_id != cert_node || unit != cert_unit.as_str() {
                    return Err(denied(format!(
                        "the certificate is node {cert_node}'s (unit {cert_unit}), but the request \
                         names node {node_id:?} (unit {unit:?})"
                    )));
                }
                (cert_node.clone(), cert_unit.clone())
            }
            Identity::Insecure => (
                UnitId::parse("node_id", node_id)?.to_string(),
                UnitId::parse("unit_id", unit)?,
            ),
            Identity::Admin { .. } | Identity::Staff { .. } => {
                let role = match who {
                    Identity::Staff { unit, .. } => format!("a staff certificate (unit {unit})"),
                    _ => "an administrator's certificate".to_owned(),
                };
                return Err(denied(format!(
                    "only nodes may ask, with their node certificate, and this is {role}; \
                     administrators check a peer with `hopluu check` (AdminService.CheckPeer)"
                )));
            }
        };
        if !self.app.tree().contains(&unit) {
            return Err(denied(format!(
                "node {node} hosts unit {unit}, which node {} does not know, so it cannot tell \
                 which documents are that node's",
                self.app.node_id
            )));
        }
        Ok(unit)
    }

    /// Checks this node against node `peer` (`AdminService.CheckPeer`):
    /// dials it at `address`, or at the address of the configured upstream
    /// of that id, with this node's own certificate (the dialer's
    /// endpoint: the peer must hold node `peer`'s certificate, whatever
    /// the address), and compares what it answers for itself with what is
    /// held here ([`App::check_peer`]).
    pub async fn check_peer(
        &self,
        peer: &str,
        address: Option<&str>,
    ) -> Result<Comparison, CheckError> {
        let invalid = |field: &str, reason: String| {
            CheckError::from(hopluu_model::ModelError::invalid(field, reason))
        };
        let peer = peer.trim();
        if peer.is_empty() {
            return Err(invalid(
                "peer_node_id",
                "is required: the node to check this one against".into(),
            ));
        }
        UnitId::parse("peer_node_id", peer)?;
        if peer == self.app.node_id {
            return Err(invalid(
                "peer_node_id",
                format!("{peer} is this node itself"),
            ));
        }
        let address = match address.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => a.to_owned(),
            None => match self.config.upstreams.iter().find(|u| u.node_id == peer) {
                Some(up) => up.address.clone(),
                None => {
                    let ups: Vec<&str> = self
                        .config
                        .upstreams
                        .iter()
                        .map(|u| u.node_id.as_str())
                        .collect();
                    return Err(invalid(
                        "peer_node_id",
                        format!(
                            "no such upstream: node {peer} is not among this node's upstreams ({}); \
                             give its address to check any other node (children dial their \
                             parent, which does not know their address)",
                            if ups.is_empty() {
                                "none".to_owned()
                            } else {
                                ups.join(", ")
                            }
                        ),
                    ));
                }
            },
        };
        let up = Upstream {
            node_id: peer.to_owned(),
            address: address.clone(),
        };
        let endpoint = self
            .endpoint(&up)
            .map_err(|e| invalid("address", e))?
            .connect_timeout(Duration::from_secs(10))
            .timeout(CHECK_CALL_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| {
            CheckError::Unreachable(format!(
                "peer_node_id: cannot reach node {peer} at {address}: {}",
                error_chain(&e)
            ))
        })?;
        let max = self.app_max_message_bytes();
        let mut answers = GrpcPeer {
            client: pb::replication_service_client::ReplicationServiceClient::new(channel)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            node_id: self.app.node_id.clone(),
            unit: self.app.unit.to_string(),
            peer: peer.to_owned(),
            address,
        };
        self.app.check_peer(peer, &mut answers).await
    }

    /// A channel endpoint to `up`: over TLS, verifying that the peer is
    /// node `up.node_id` whatever address is dialled.
    fn endpoint(&self, up: &Upstream) -> Result<tonic::transport::Endpoint, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(up.address.clone())
            .map_err(|e| format!("{}: {e}", up.address))?;
        match &self.security {
            Security::Tls(tls) => {
                let config = tls.client_config(&up.node_id).map_err(|e| e.to_string())?;
                endpoint.tls_config(config).map_err(|e| error_chain(&e))
            }
            Security::InsecurePlaintext => Ok(endpoint),
        }
    }

    /// Every edge's status, by peer.
    pub fn edges(&self) -> Vec<EdgeStatus> {
        let mut v: Vec<EdgeStatus> = self
            .edges
            .lock()
            .expect("edges")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }

    fn observe(&self, s: &Session) {
        if let Some(p) = s.peer() {
            let stats = s.stats().clone();
            self.metrics.observe(&p.node_id, &stats);
            let (acked, applied) = (s.acked_upto(), s.applied_upto());
            let unit = p.unit.to_string();
            self.set_edge(&p.node_id, |e| {
                e.unit = unit;
                e.quarantined = stats.changes_quarantined;
                e.acked_upto = acked;
                e.applied_upto = applied;
                e.last_contact_millis = SystemClock.now_millis();
                e.docs_sent = stats.docs_sent;
                e.docs_applied = stats.docs_applied;
                e.bytes_sent = stats.bytes_sent;
                e.bytes_received = stats.bytes_received;
                e.rejected = stats.docs_rejected;
            });
        }
    }

    fn set_edge(&self, peer: &str, f: impl FnOnce(&mut EdgeStatus)) {
        let mut edges = self.edges.lock().expect("edges");
        let e = edges.entry(peer.to_owned()).or_insert_with(|| EdgeStatus {
            peer: peer.to_owned(),
            ..EdgeStatus::default()
        });
        f(e);
    }

    /// Starts the dialer (if upstreams are configured).
    pub fn start(self: &Arc<Self>) {
        let this = self.clone();
        self.tracker.spawn(async move { this.pending_loop().await });
        if self.config.upstreams.is_empty() {
            return;
        }
        let this = self.clone();
        self.tracker.spawn(async move { this.dial_loop().await });
    }

    /// Refreshes what each edge lacks ([`Replication::refresh_pending`])
    /// as often as reports go up.
    /// Also drops delivery receipts past their keeping time, hourly.
    async fn pending_loop(self: Arc<Self>) {
        let every = Duration::from_secs(self.config.report_every_secs);
        let mut pruned: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.refresh_pending().await {
                tracing::warn!(error = %e, "could not measure what the peers lack");
            }
            if pruned.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                pruned = Some(tokio::time::Instant::now());
                let before = SystemClock.now_millis() - hopluu_store::receipts::KEEP_MILLIS;
                let done = async {
                    let mut tx = self.app.store.begin().await?;
                    let n = tx.prune_receipts(before).await?;
                    tx.commit().await?;
                    Ok::<u64, hopluu_store::StoreError>(n)
                };
                match done.await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(receipts = n, "old delivery receipts dropped"),
                    Err(e) => tracing::warn!(error = %e, "could not drop old delivery receipts"),
                }
            }
        }
    }

    /// Measures, for every edge whose peer's unit is known, the updates of
    /// this node's feed in the peer's scope that the peer lacks: documents
    /// changed since the peer's checkpoint whose heads differ from those
    /// the peer is known to have.
    pub async fn refresh_pending(&self) -> Result<(), hopluu_store::StoreError> {
        let private_depth = self.config.private_depth;
        for e in self.edges() {
            let Ok(unit) = UnitId::parse("unit", &e.unit) else {
                continue;
            };
            let stored = self.app.store.peer(&e.peer).await?.map(|p| p.acked_upto);
            let after = e.acked_upto.max(stored.unwrap_or(0));
            let pending = self
                .app
                .store
                .pending_for(&e.peer, &unit, after, private_depth)
                .await?;
            self.set_edge(&e.peer, |edge| {
                edge.changes_pending = pending.changes;
                edge.docs_pending = pending.docs;
                edge.oldest_pending_millis = pending.oldest_millis;
            });
        }
        Ok(())
    }

    /// Dials every disconnected upstream now, without waiting out the
    /// backoff (only `peer` when given). Returns the peers woken and those
    /// already connected.
    pub fn sync_now(&self, peer: Option<&str>) -> Result<(Vec<String>, Vec<String>), String> {
        let edges = self.edges();
        let connected: Vec<String> = edges
            .iter()
            .filter(|e| e.connected && peer.is_none_or(|p| p == e.peer))
            .map(|e| e.peer.clone())
            .collect();
        if let Some(p) = peer {
            let upstream = self.config.upstreams.iter().any(|u| u.node_id == p);
            let child = edges
                .iter()
                .any(|e| e.peer == p && e.direction == "downstream");
            if !upstream && !child {
                return Err(format!(
                    "{p} is neither an upstream nor a child of this node"
                ));
            }
            if !upstream && connected.is_empty() {
                return Err(format!(
                    "{p} is a child: children dial their parent, so run `hopluu sync now` at {p}"
                ));
            }
        }
        let mut woken = Vec::new();
        if !self.config.upstreams.is_empty() {
            let dialling = self
                .config
                .upstreams
                .iter()
                .filter(|u| peer.is_none_or(|p| p == u.node_id))
                .filter(|u| !connected.contains(&u.node_id))
                .map(|u| u.node_id.clone());
            woken.extend(dialling);
            if !woken.is_empty() {
                self.wake.notify_one();
            }
        }
        Ok((woken, connected))
    }

    /// Every edge the nodes below reported, with when each report arrived.
    pub fn reported(&self) -> Vec<ReportedEdge> {
        let mut v: Vec<ReportedEdge> = self
            .reported
            .lock()
            .expect("reported")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (&a.edge.reporter_node, &a.edge.peer_node)
                .cmp(&(&b.edge.reporter_node, &b.edge.peer_node))
        });
        v
    }

    /// This node's own edges as reports.
    pub fn own_reports(&self) -> Vec<EdgeReport> {
        let now = SystemClock.now_millis();
        self.edges()
            .into_iter()
            .map(|e| EdgeReport {
                reporter_node: self.app.node_id.clone(),
                reporter_unit: self.app.unit.to_string(),
                peer_node: e.peer,
                peer_unit: e.unit,
                upstream: e.direction == "upstream",
                connected: e.connected,
                since_millis: e.since_millis,
                last_contact_millis: e.last_contact_millis,
                acked_upto: e.acked_upto,
                applied_upto: e.applied_upto,
                changes_pending: e.changes_pending,
                docs_pending: e.docs_pending,
                oldest_pending_millis: e.oldest_pending_millis,
                bytes_sent: e.bytes_sent,
                bytes_received: e.bytes_received,
                rejected: e.rejected,
                quarantined: e.quarantined,
                last_error: e.last_error,
                reported_at_millis: now,
            })
            .collect()
    }

    /// Cancels every session and waits for them to finish.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// A token cancelled when replication shuts down.
    pub fn cancelled(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Keeps one session open to the first reachable upstream, parent
    /// first: after `failover_after` failed attempts on one, the next is
    /// tried; every round starts again from the parent. A session with a
    /// fallback lasts only while the parent is unreachable: the parent is
    /// probed meanwhile, and once it answers the session ends (gracefully)
    /// and the parent is dialled again. Documents only the parent holds
    /// (private rosters, which stay below the national node) reach it only
    /// over a session with it.
    async fn dial_loop(self: Arc<Self>) {
        let min = Duration::from_millis(self.config.backoff_min_ms);
        let max = Duration::from_millis(self.config.backoff_max_ms);
        let mut backoff = min;
        let mut index = 0usize;
        let mut failures = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let up = self.config.upstreams[index].clone();
            let started = tokio::time::Instant::now();
            let session = self.cancel.child_token();
            let probe = async {
                if index > 0 {
                    self.until_parent_answers().await;
                    tracing::info!(parent = %self.config.upstreams[0].node_id, fallback = %up.node_id, "the parent answers again: leaving the fallback");
                    session.cancel();
                }
                std::future::pending::<()>().await
            };
            let result = tokio::select! {
                r = self.dial_once(&up, &session) => r,
                () = probe => unreachable!("the probe never ends"),
            };
            if self.cancel.is_cancelled() {
                return;
            }
            if session.is_cancelled() {
                // Back to the parent at once.
                backoff = min;
                failures = 0;
                index = 0;
                continue;
            }
            let refused = matches!(&result, Err(e) if e.is_refusal());
            match &result {
                Ok(()) => tracing::info!(peer = %up.node_id, "sync session ended"),
                Err(e) => {
                    tracing::warn!(peer = %up.node_id, address = %up.address, error = %e, "sync session failed");
                    // Also a dial that never reached a session (refused
                    // certificate, unreachable address) shows on the edge.
                    self.set_edge(&up.node_id, |edge| {
                        edge.direction = "upstream";
                        edge.address = up.address.clone();
                        edge.last_error = e.to_string();
                        edge.last_error_millis = SystemClock.now_millis();
                    });
                }
            }
            // A session that ran for a while was a success: start over
            // from the parent with a short wait.
            if started.elapsed() > Duration::from_secs(30) {
                backoff = min;
                failures = 0;
                index = 0;
            } else {
                failures += 1;
                backoff = if refused { max } else { (backoff * 2).min(max) };
                if failures >= self.config.failover_after {
                    failures = 0;
                    index = (index + 1) % self.config.upstreams.len();
                    if index == 0 {
                        backoff = backoff.max(min);
                    }
                }
            }
            // Full jitter in [backoff/2, backoff].
            let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {
                    tracing::info!("dialling now, as an administrator asked");
                    backoff = min;
                    failures = 0;
                    index = 0;
                }
            }
        }
    }

    /// Returns once the parent (the first upstream) answers a health check,
    /// probing every `backoff_max_ms` (at least every second).
    async fn until_parent_answers(&self) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let parent = &self.config.upstreams[0];
        let every = Duration::from_millis(self.config.backoff_max_ms).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let probe = async {
                let channel = self
                    .endpoint(parent)
                    .ok()?
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .ok()?;
                let r = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: "hopluu.v1.ReplicationService".into(),
                    })
                    .await
                    .ok()?;
                Some(r.into_inner().status == ServingStatus::Serving as i32)
            };
            if let Ok(Some(true)) = tokio::time::timeout(Duration::from_secs(10), probe).await {
                return;
            }
        }
    }

    async fn dial_once(
        self: &Arc<Self>,
        up: &Upstream,
        cancel: &CancellationToken,
    ) -> Result<(), SyncError> {
        let link = |e: &dyn std::fmt::Display| SyncError::Link(e.to_string());
        let endpoint = self
            .endpoint(up)
            .map_err(|e| link(&e))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true);
        let channel = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            c = endpoint.connect() => c.map_err(|e| link(&error_chain(&e)))?,
        };
        let max = self.app_max_message_bytes();
        let mut client = pb::replication_service_client::ReplicationServiceClient::new(channel)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let (tx, rx) = mpsc::channel::<Frame>(OUTBOUND_FRAMES);
        let outbound = ReceiverStream::new(rx).map(to_pb);
        let response = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = client.sync(Request::new(outbound)) => r.map_err(|s| link(&s.message()))?,
        };
        let mut inbound = GrpcInbound(response.into_inner());
        let mut session = Session::new(
            self.replica(),
            Role::Dialer {
                expect: up.node_id.clone(),
            },
        )
        .with_reports(self.clone());
        self.set_edge(&up.node_id, |e| {
            e.direction = "upstream";
            e.address = up.address.clone();
            e.connected = true;
            e.since_millis = SystemClock.now_millis();
            e.sessions += 1;
        });
        let observe = |s: &Session| self.observe(s);
        let result = drive::run(
            &mut session,
            &mut inbound,
            &tx,
            cancel,
            &self.drive_options(),
            &observe,
        )
        .await;
        self.set_edge(&up.node_id, |e| {
            e.connected = false;
            e.since_millis = SystemClock.now_millis();
            if let Err(err) = &result {
                e.last_error = err.to_string();
                e.last_error_millis = e.since_millis;
            }
        });
        result
    }

    fn app_max_message_bytes(&self) -> usize {
        // Large enough for a full batch plus one large document.
        (self.config.batch_bytes * 4).max(4 << 20)
    }

    /// Serves a child's session, from the peer `who` (its certificate's
    /// identity): runs it on a tracked task and streams its frames back.
    pub fn accept(
        self: &Arc<Self>,
        inbound: Streaming<pb::SyncFrame>,
        remote: Option<std::net::SocketAddr>,
        who: Identity,
    ) -> ReplicationStream {
        let (tx, rx) = mpsc::channel::<Frame>(OUTBOUND_FRAMES);
        let this = self.clone();
        let cancel = self.cancel.child_token();
        let session_id = SESSION_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tracker.spawn(async move {
            let mut inbound = Admitted {
                inner: GrpcInbound(inbound),
                replication: this.clone(),
                who: who.clone(),
                session: (session_id, cancel.clone()),
                registered: None,
            };
            let mut session = Session::new(this.replica(), Role::Acceptor).with_reports(this.clone());
            let address = remote.map(|a| a.to_string()).unwrap_or_default();
            let observe = |s: &Session| {
                if let Some(p) = s.peer() {
                    this.set_edge(&p.node_id, |e| {
                        if !e.connected {
                            e.direction = "downstream";
                            e.address = address.clone();
                            e.connected = true;
                            e.since_millis = SystemClock.now_millis();
                            e.sessions += 1;
                        }
                    });
                }
                this.observe(s);
            };
            let result = drive::run(
                &mut session,
                &mut inbound,
                &tx,
                &cancel,
                &this.drive_options(),
                &observe,
            )
            .await;
            if let Some(peer) = &inbound.registered {
                this.end_session(peer, session_id);
            }
            if let Some(peer) = session.peer() {
                this.set_edge(&peer.node_id, |e| {
                    e.connected = false;
                    e.since_millis = SystemClock.now_millis();
                    if let Err(err) = &result {
                        e.last_error = err.to_string();
                        e.last_error_millis = e.since_millis;
                    }
                });
            }
            match result {
                Ok(()) => tracing::info!(peer = ?session.peer().map(|p| &p.node_id), identity = %who, "sync session ended"),
                Err(e @ SyncError::Refuse(_)) => tracing::warn!(
                    identity = %who,
                    remote = %address,
                    error = %e,
                    "refused a sync session"
                ),
                Err(e) => tracing::warn!(peer = ?session.peer().map(|p| &p.node_id), identity = %who, error = %e, "sync session failed"),
            }
        });
        Box::pin(ReceiverStream::new(rx).map(|f| Ok(to_pb(f))))
    }
}

impl hopluu_sync::EdgeReports for Replication {
    fn report(&self) -> Vec<EdgeReport> {
        let mut all = self.own_reports();
        all.extend(self.reported().into_iter().map(|r| r.edge));
        all
    }

    fn reported(&self, child: &hopluu_sync::PeerInfo, edges: Vec<EdgeReport>) {
        let now = SystemClock.now_millis();
        let mut reported = self.reported.lock().expect("reported");
        for edge in edges {
            let key = (
                edge.reporter_node.clone(),
                edge.peer_node.clone(),
                edge.upstream,
            );
            if reported.len() >= MAX_REPORTED && !reported.contains_key(&key) {
                tracing::warn!(child = %child.node_id, "too many reported edges; the rest are dropped");
                break;
            }
            // A relay may carry an older report than one already here.
            if reported
                .get(&key)
                .is_some_and(|r| r.edge.reported_at_millis > edge.reported_at_millis)
            {
                continue;
            }
            reported.insert(
                key,
                ReportedEdge {
                    edge,
                    received_at_millis: now,
                },
            );
        }
    }
}

/// The stream a `Sync` call answers with.
pub type ReplicationStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SyncFrame, Status>> + Send + 'static>>;

/// The tonic service: hands each stream to [`Replication::accept`], and
/// answers the convergence check's questions through the App.
#[derive(Clone)]
pub struct ReplicationGrpc(pub Arc<Replication>);

fn caller_identity<T>(request: &Request<T>, rpc: &str) -> Result<Identity, Status> {
    Identity::of(request).map_err(|e| {
        tracing::warn!(rpc, remote = ?request.remote_addr(), error = %e, "refused: no identity");
        Status::unauthenticated(format!("certificate: {e}"))
    })
}

#[tonic::async_trait]
impl pb::replication_service_server::ReplicationService for ReplicationGrpc {
    type SyncStream = ReplicationStream;

    async fn sync(
        &self,
        request: Request<Streaming<pb::SyncFrame>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let remote = request.remote_addr();
        let who = caller_identity(&request, "Sync")?;
        Ok(Response::new(self.0.accept(
            request.into_inner(),
            remote,
            who,
        )))
    }

    async fn scope_heads(
        &self,
        request: Request<pb::ScopeHeadsRequest>,
    ) -> Result<Response<pb::ScopeHeadsResponse>, Status> {
        let who = caller_identity(&request, "ScopeHeads")?;
        let r = request.into_inner();
        let caller = self
            .0
            .node_caller(&who, &r.node_id, &r.unit_id, "ScopeHeads")?;
        let after = match r.after.trim() {
            "" => None,
            a => Some(hopluu_model::DocId::parse("after", a).map_err(NodeError::from)?),
        };
        let app = &self.0.app;
        let page = app
            .scope_heads(&caller, after.as_ref(), r.limit)
            .await
            .map_err(NodeError::from)?;
        Ok(Response::new(pb::ScopeHeadsResponse {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            docs: page.docs.into_iter().map(scope_doc_to_pb).collect(),
            next_after: page.next_after.map(|d| d.to_string()).unwrap_or_default(),
        }))
    }

    async fn missing_changes(
        &self,
        request: Request<pb::MissingChangesRequest>,
    ) -> Result<Response<pb::MissingChangesResponse>, Status> {
        let who = caller_identity(&request, "MissingChanges")?;
        let r = request.into_inner();
        let caller = self
            .0
            .node_caller(&who, &r.node_id, &r.unit_id, "MissingChanges")?;
        let asks = r
            .docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d).map_err(NodeError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let missing = self
            .0
            .app
            .missing_changes(&caller, &asks)
            .await
            .map_err(NodeError::from)?;
        Ok(Response::new(pb::MissingChangesResponse {
            docs: missing.into_iter().map(scope_doc_to_pb).collect(),
        }))
    }
}

fn scope_doc_to_pb(h: check::Heads) -> pb::ScopeDoc {
    pb::ScopeDoc {
        doc_id: h.doc.to_string(),
        heads: hashes_to_pb(h.heads),
    }
}

/// A document and its heads from another node (the field names the
/// message part, for the error).
fn scope_doc_from_pb(
    field: &str,
    d: pb::ScopeDoc,
) -> Result<check::Heads, hopluu_model::ModelError> {
    let doc = hopluu_model::DocId::parse(&format!("{field}.doc_id"), &d.doc_id)?;
    let heads = d
        .heads
        .iter()
        .map(|b| {
            ChangeHash::try_from(b.as_slice()).map_err(|_| {
                hopluu_model::ModelError::invalid(
                    format!("{field}.heads"),
                    format!("a change hash is 32 bytes, got {} ({doc})", b.len()),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(check::Heads { doc, heads })
}

/// The peer of a check, over its `ReplicationService`.
struct GrpcPeer {
    client: pb::replication_service_client::ReplicationServiceClient<tonic::transport::Channel>,
    /// This node and its unit, as the requests name them.
    node_id: String,
    unit: String,
    /// The peer and where it was dialled, for messages.
    peer: String,
    address: String,
}

impl GrpcPeer {
    /// What a failed call means for the check.
    fn failed(&self, rpc: &str, s: &Status) -> CheckError {
        let (peer, address, message) = (&self.peer, &self.address, s.message());
        match s.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown => CheckError::Unreachable(format!(
                "peer_node_id: node {peer} at {address} did not answer {rpc}: {message}"
            )),
            tonic::Code::Unimplemented => CheckError::Refused(format!(
                "node {peer} does not answer {rpc}: it runs a version of hopluu without the \
                 convergence check"
            )),
            code => CheckError::Refused(format!("node {peer} refused {rpc} ({code:?}): {message}")),
        }
    }

    /// What the peer said, when it does not parse.
    fn garbled(&self, e: hopluu_model::ModelError) -> CheckError {
        CheckError::Refused(format!(
            "node {} answered what is not a list of documents: {e}",
            self.peer
        ))
    }
}

impl PeerAnswers for GrpcPeer {
    async fn scope_heads(
        &mut self,
        after: Option<&hopluu_model::DocId>,
    ) -> Result<PeerPage, CheckError> {
        let request = pb::ScopeHeadsRequest {
            node_id: self.node_id.clone(),
            unit_id: self.unit.clone(),
            after: after.map(ToString::to_string).unwrap_or_default(),
            limit: 0,
        };
        let r = match self.client.scope_heads(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(self.failed("ScopeHeads", &s)),
        };
        let docs = r
            .docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbled(e))?;
        let next_after = match r.next_after.as_str() {
            "" => None,
            n => Some(hopluu_model::DocId::parse("next_after", n).map_err(|e| self.garbled(e))?),
        };
        Ok(PeerPage {
            node_id: r.node_id,
            unit: r.unit_id,
            docs,
            next_after,
        })
    }

    async fn missing_changes(
        &mut self,
        asks: Vec<check::Heads>,
    ) -> Result<Vec<check::Heads>, CheckError> {
        let request = pb::MissingChangesRequest {
            node_id: self.node_id.clone(),
            unit_id: self.unit.clone(),
            docs: asks.into_iter().map(scope_doc_to_pb).collect(),
        };
        let r = match self.client.missing_changes(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(self.failed("MissingChanges", &s)),
        };
        r.docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbled(e))
    }
}

/// A child's frames, each hello checked against its certificate and the
/// children this node allows ([`Replication::admit`]) before the session
/// sees it.
struct Admitted {
    inner: GrpcInbound,
    replication: Arc<Replication>,
    who: Identity,
    /// This session's id and cancellation, registered once its hello passes.
    session: (u64, CancellationToken),
    registered: Option<String>,
}

impl Inbound for Admitted {
    async fn recv(&mut self) -> Option<Result<Frame, SyncError>> {
        let frame = self.inner.recv().await;
        if let Some(Ok(Frame::Hello(hello))) = &frame {
            if let Err(refusal) = self.replication.admit(&self.who, hello) {
                return Some(Err(SyncError::Refuse(refusal)));
            }
            if self.registered.is_none() {
                if let Err(refusal) = self
                    .replication
                    .begin_session(&hello.node_id, self.session.clone())
                {
                    return Some(Err(SyncError::Refuse(refusal)));
                }
                self.registered = Some(hello.node_id.clone());
            }
        }
        frame
    }
}

impl Replication {
    /// Registers an accepted session of `node`: refused past
    /// [`SESSIONS_PER_MINUTE`]; otherwise it becomes the node's one
    /// session, ending the one before.
    fn begin_session(
        &self,
        node: &str,
        (id, cancel): (u64, CancellationToken),
    ) -> Result<(), Refusal> {
        let now = std::time::Instant::now();
        let mut all = self.sessions.lock().expect("sessions lock");
        let entry = all.entry(node.to_owned()).or_default();
        while entry
            .started
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            entry.started.pop_front();
        }
        if entry.started.len() >= SESSIONS_PER_MINUTE {
            tracing::warn!(peer = %node, "too many sync sessions in a minute; refused");
            return Err(Refusal {
                code: "limit".into(),
                reason: format!(
                    "node {node} began more than {SESSIONS_PER_MINUTE} sessions in the last minute; try again later"
                ),
            });
        }
        entry.started.push_back(now);
        if let Some((_, older)) = entry.current.replace((id, cancel)) {
            tracing::info!(peer = %node, "a newer session from the same node ends the older one");
            older.cancel();
        }
        Ok(())
    }

    fn end_session(&self, node: &str, id: u64) {
        let mut all = self.sessions.lock().expect("sessions lock");
        if let Some(entry) = all.get_mut(node)
            && entry
                .current
                .as_ref()
                .is_some_and(|(current, _)| *current == id)
        {
            entry.current = None;
        }
    }
}

struct GrpcInbound(Streaming<pb::SyncFrame>);

impl Inbound for GrpcInbound {
    async fn recv(&mut self) -> Option<Result<Frame, SyncError>> {
        match self.0.message().await {
            Ok(None) => None,
            Ok(Some(f)) => Some(from_pb(f)),
            // Bytes that are not a frame: the peer is told so before the
            // session ends (tonic reports a decode failure as INTERNAL).
            Err(s) if s.code() == tonic::Code::Internal && s.message().contains("decode") => {
                Some(Err(SyncError::Refuse(Refusal {
                    code: "protocol".into(),
                    reason: format!("a frame that does not decode: {}", s.message()),
                })))
            }
            Err(s) => Some(Err(SyncError::Link(format!(
                "{}: {}",
                s.code(),
                s.message()
            )))),
        }
    }
}

fn hashes_to_pb(h: Vec<ChangeHash>) -> Vec<Vec<u8>> {
    h.into_iter().map(|h| h.0.to_vec()).collect()
}

fn hashes_from_pb(field: &str, h: Vec<Vec<u8>>) -> Result<Vec<ChangeHash>, SyncError> {
    h.into_iter()
        .map(|b| {
            ChangeHash::try_from(b.as_slice()).map_err(|_| {
                SyncError::Refuse(Refusal {
                    code: "protocol".into(),
                    reason: format!("{field}: a change hash is 32 bytes, got {}", b.len()),
                })
            })
        })
        .collect()
}

/// A frame to its protobuf form.
pub fn to_pb(f: Frame) -> pb::SyncFrame {
    use pb::sync_frame::Body;
    let body = match f {
        Frame::Hello(h) => Body::Hello(pb::Hello {
            node_id: h.node_id,
            unit_id: h.unit,
            protocol_version: h.protocol,
            schema_version: h.schema,
            applied_from_you: h.applied_from_you,
            receipts_from_you: h.receipts_from_you,
        }),
        Frame::Refusal(r) => Body::Refusal(pb::Refusal {
            code: r.code,
            reason: r.reason,
        }),
        Frame::Batch(b) => Body::Batch(pb::Batch {
            id: b.id,
            from_seq: b.from_seq,
            upto_seq: b.upto_seq,
            docs: b
                .docs
                .into_iter()
                .map(|d| pb::DocUpdate {
                    doc_id: d.doc,
                    heads: hashes_to_pb(d.heads),
                    payload: Some(match d.payload {
                        Payload::Changes(c) => pb::doc_update::Payload::Changes(c),
                        Payload::Sync(s) => pb::doc_update::Payload::Sync(s),
                    }),
                })
                .collect(),
        }),
        Frame::Ack(a) => Body::Ack(pb::Ack {
            batch_id: a.batch,
            applied_upto: a.applied_upto,
            docs: a
                .docs
                .into_iter()
                .map(|d| pb::DocHeads {
                    doc_id: d.doc,
                    heads: hashes_to_pb(d.heads),
                    rejected: d.rejected,
                    quarantined: hashes_to_pb(d.quarantined),
                })
                .collect(),
            applied_at_millis: a.at,
        }),
        Frame::Report(edges) => Body::Report(pb::Report {
            edges: edges.into_iter().map(report_to_pb).collect(),
        }),
        Frame::Receipts(r) => Body::Receipts(pb::Receipts {
            upto: r.upto,
            receipts: r
                .receipts
                .into_iter()
                .map(|r| pb::Receipt {
                    doc_id: r.doc,
                    node_id: r.node_id,
                    unit_id: r.unit,
                    heads: hashes_to_pb(r.heads),
                    at_millis: r.at,
                })
                .collect(),
        }),
    };
    pb::SyncFrame { body: Some(body) }
}

/// A protobuf frame to the session's form; malformed frames end the
/// session with a refusal that says what was wrong.
pub fn from_pb(f: pb::SyncFrame) -> Result<Frame, SyncError> {
    use pb::sync_frame::Body;
    let malformed = |reason: &str| {
        SyncError::Refuse(Refusal {
            code: "protocol".into(),
            reason: reason.to_owned(),
        })
    };
    Ok(match f.body.ok_or_else(|| malformed("empty frame"))? {
        Body::Hello(h) => Frame::Hello(Hello {
            node_id: h.node_id,
            unit: h.unit_id,
            protocol: h.protocol_version,
            schema: h.schema_version,
            applied_from_you: h.applied_from_you,
            receipts_from_you: h.receipts_from_you,
        }),
        Body::Refusal(r) => Frame::Refusal(Refusal {
            code: r.code,
            reason: r.reason,
        }),
        Body::Batch(b) => Frame::Batch(Batch {
            id: b.id,
            from_seq: b.from_seq,
            upto_seq: b.upto_seq,
            docs: b
                .docs
                .into_iter()
                .map(|d| {
                    Ok(DocUpdate {
                        heads: hashes_from_pb("batch.docs.heads", d.heads)?,
                        payload: match d.payload {
                            Some(pb::doc_update::Payload::Changes(c)) => Payload::Changes(c),
                            Some(pb::doc_update::Payload::Sync(s)) => Payload::Sync(s),
                            None => return Err(malformed("batch.docs.payload: missing")),
                        },
                        doc: d.doc_id,
                    })
                })
                .collect::<Result<_, SyncError>>()?,
        }),
        Body::Ack(a) => Frame::Ack(Ack {
            batch: a.batch_id,
            applied_upto: a.applied_upto,
            docs: a
                .docs
                .into_iter()
                .map(|d| {
                    Ok(DocHeads {
                        heads: hashes_from_pb("ack.docs.heads", d.heads)?,
                        quarantined: hashes_from_pb("ack.docs.quarantined", d.quarantined)?,
                        doc: d.doc_id,
                        rejected: d.rejected,
                    })
                })
                .collect::<Result<_, SyncError>>()?,
            at: a.applied_at_millis,
        }),
        Body::Report(r) => Frame::Report(r.edges.into_iter().map(report_from_pb).collect()),
        Body::Receipts(r) => Frame::Receipts(Receipts {
            upto: r.upto,
            receipts: r
                .receipts
                .into_iter()
                .map(|r| {
                    Ok(Receipt {
                        heads: hashes_from_pb("receipts.heads", r.heads)?,
                        doc: r.doc_id,
                        node_id: r.node_id,
                        unit: r.unit_id,
                        at: r.at_millis,
                    })
                })
                .collect::<Result<_, SyncError>>()?,
        }),
    })
}

/// An edge report in its protobuf form (the reporter's depth is left to
/// the node that shows it).
pub fn report_to_pb(e: EdgeReport) -> pb::TreeEdge {
    pb::TreeEdge {
        reporter_node: e.reporter_node,
        reporter_unit: e.reporter_unit,
        reporter_depth: 0,
        edge: Some(pb::PeerStatus {
            node_id: e.peer_node,
            unit_id: e.peer_unit,
            direction: if e.upstream {
                pb::PeerDirection::Upstream
            } else {
                pb::PeerDirection::Child
            } as i32,
            address: String::new(),
            connected: e.connected,
            since_millis: e.since_millis,
            last_contact_millis: e.last_contact_millis,
            sessions: 0,
            acked_upto: e.acked_upto,
            applied_upto: e.applied_upto,
            changes_pending: e.changes_pending,
            docs_pending: e.docs_pending,
            oldest_pending_millis: e.oldest_pending_millis,
            lag_seconds: 0,
            bytes_sent: e.bytes_sent,
            bytes_received: e.bytes_received,
            docs_sent: 0,
            docs_applied: 0,
            rejected: e.rejected,
            quarantined: e.quarantined,
            last_error: e.last_error,
            last_error_millis: 0,
        }),
        reported_at_millis: e.reported_at_millis,
        received_at_millis: 0,
        age_seconds: 0,
        stale: false,
    }
}

/// An edge report from its protobuf form; strings are cut to sane lengths
/// (a report comes from a peer).
pub fn report_from_pb(e: pb::TreeEdge) -> EdgeReport {
    fn cut(mut s: String, max: usize) -> String {
        if s.len() > max {
            let mut at = max;
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.truncate(at);
        }
        s
    }
    let edge = e.edge.unwrap_or_default();
    EdgeReport {
        reporter_node: cut(e.reporter_node, 128),
        reporter_unit: cut(e.reporter_unit, 128),
        upstream: edge.direction == pb::PeerDirection::Upstream as i32,
        peer_node: cut(edge.node_id, 128),
        peer_unit: cut(edge.unit_id, 128),
        connected: edge.connected,
        since_millis: edge.since_millis,
        last_contact_millis: edge.last_contact_millis,
        acked_upto: edge.acked_upto,
        applied_upto: edge.applied_upto,
        changes_pending: edge.changes_pending,
        docs_pending: edge.docs_pending,
        oldest_pending_millis: edge.oldest_pending_millis,
        bytes_sent: edge.bytes_sent,
        bytes_received: edge.bytes_received,
        rejected: edge.rejected,
        quarantined: edge.quarantined,
        last_error: cut(edge.last_error, 512),
        reported_at_millis: e.reported_at_millis,
    }
}
