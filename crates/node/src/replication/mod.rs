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
//! # A link's health
//!
//! Both ends send HTTP/2 keepalive pings ([`Replication::keepalive`]; the
//! server's are set where it is built), so a link that goes silent, with
//! no FIN or RST to tell anyone, ends its session within seconds and the
//! edge shows down with the reason. An edge is connected once the hellos
//! are exchanged. The error that ended a session or a dial stays on the
//! edge, with its time, until a session is established again and a batch
//! of it acknowledged ([`EdgeStatus::healthy`]); then it is kept as the
//! previous error, marked resolved. A dial whose session failed before the
//! hellos (a slow link) leaves its connection to the next try (`dial`).
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
//! [`Replication::allow_child`] at run time. Two more are admitted by the
//! hosting data (DESIGN §6, `handover`): an old host that sealed
//! documents now in this node's subtree (a handover session), and a node
//! whose record and certificate name a unit a decision moved below this
//! node, where this node hosts its nearest ancestor (a child that followed
//! its unit). A node serving plaintext
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

//!
//! # Layout
//! - `mod.rs`: [`Replication`]: the edges, who may sync, the sessions per peer, reports.
//! - `dial`: the dialer: one session to the first reachable upstream.
//! - `handover`: this node's record and seals kept current, and handover
//!   sessions to the new hosts of units a decision moved away.
//! - `accept`: a child's session, served.
//! - `convergence`: the asking side of the convergence check, over gRPC.

mod accept;
pub use accept::ReplicationStream;
mod convergence;
mod dial;
mod handover;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hopluu_model::UnitId;
use hopluu_sync::drive::DriveOptions;
use hopluu_sync::frame::{EdgeReport, Hello, Refusal};
use hopluu_sync::{Limits, Replica, Session};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::NodeError;
use crate::app::App;
use crate::config::ReplicationSection;
use crate::edge::{EdgeStatus, ReportedEdge};
use crate::tls::Identity;
use crate::tls::Security;

/// Frames buffered towards the transport per session (batches are also
/// bounded by the session's window).
const OUTBOUND_FRAMES: usize = 16;

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
    /// Where other nodes reach this one (`node.address`).
    address: String,
    /// Handover sessions this node runs to new hosts, by node: the
    /// address dialled and the session's cancellation.
    handovers: Mutex<HashMap<String, (String, CancellationToken)>>,
}

/// HTTP/2 keepalive settings ([`Replication::keepalive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
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
    pub fn new(
        app: Arc<App>,
        config: ReplicationSection,
        security: Security,
        address: String,
    ) -> Arc<Replication> {
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
            address,
            handovers: Mutex::new(HashMap::new()),
        })
    }

    fn replica(&self) -> Replica {
        Replica {
            store: self.app.store().clone(),
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
            hello_timeout: Duration::from_secs(self.config.hello_timeout_secs),
            report_every: Duration::from_secs(self.config.report_every_secs),
            ..DriveOptions::default()
        }
    }

    /// HTTP/2 keepalive for replication connections, both ways: a ping
    /// after `interval` without a frame from the peer, the connection
    /// dropped when it is not answered within `timeout`. The server and
    /// the dialler use the same, so a silent link is found from both ends.
    pub fn keepalive(&self) -> Keepalive {
        Keepalive {
            interval: Duration::from_secs(self.config.keepalive_secs),
            timeout: Duration::from_secs(self.config.keepalive_timeout_secs),
        }
    }

    /// The node's operations, for the services that answer on
    /// replication's behalf (the convergence check).
    pub fn app(&self) -> &Arc<App> {
        &self.app
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
            let now = self.app.clock.now_millis();
            self.set_edge(&p.node_id, |e| {
                // A batch of this session acknowledged: the link carries
                // batches and their answers again.
                if stats.batches_acked > 0 {
                    e.healthy(now);
                }
                e.unit = unit;
                e.quarantined = stats.changes_quarantined;
                e.held_by_peer = stats.held_by_peer;
                e.acked_upto = acked;
                e.applied_upto = applied;
                e.last_contact_millis = now;
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
        let this = self.clone();
        self.tracker
            .spawn(async move { this.handover_loop().await });
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
                let before = self.app.clock.now_millis() - hopluu_store::receipts::KEEP_MILLIS;
                let done = async {
                    let mut tx = self.app.store().begin().await?;
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
    /// the peer is known to have. And, for every edge, how many of the
    /// peer's changes this node holds in quarantine.
    pub async fn refresh_pending(&self) -> Result<(), hopluu_store::StoreError> {
        let private_depth = self.config.private_depth;
        let held = self.app.store().held_by_peer().await?;
        for e in self.edges() {
            let here = held.get(&e.peer).map(|h| h.changes).unwrap_or(0);
            self.set_edge(&e.peer, |edge| edge.held_here = here);
            let Ok(unit) = UnitId::parse("unit", &e.unit) else {
                continue;
            };
            let stored = self.app.store().peer(&e.peer).await?.map(|p| p.acked_upto);
            let after = e.acked_upto.max(stored.unwrap_or(0));
            let pending = self
                .app
                .store()
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
        let now = self.app.clock.now_millis();
        self.edges()
            .into_iter()
            .map(|e| {
                let lacks = e.lacks();
                EdgeReport {
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
                    changes_pending: lacks.changes,
                    docs_pending: lacks.docs,
                    oldest_pending_millis: lacks.oldest_millis,
                    bytes_sent: e.bytes_sent,
                    bytes_received: e.bytes_received,
                    rejected: e.rejected,
                    quarantined: e.quarantined,
                    held_by_peer: e.held_by_peer.changes,
                    held_here: e.held_here,
                    last_error: e.last_error,
                    last_error_millis: e.last_error_millis,
                    previous_error: e.previous_error,
                    previous_error_millis: e.previous_error_millis,
                    error_resolved_millis: e.error_resolved_millis,
                    reported_at_millis: now,
                }
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
}

impl hopluu_sync::EdgeReports for Replication {
    fn report(&self) -> Vec<EdgeReport> {
        let mut all = self.own_reports();
        all.extend(self.reported().into_iter().map(|r| r.edge));
        all
    }

    fn reported(&self, child: &hopluu_sync::PeerInfo, edges: Vec<EdgeReport>) {
        let now = self.app.clock.now_millis();
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
