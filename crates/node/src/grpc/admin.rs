//! The `AdminService`: a node's state for its administrator, its
//! replication gate's quarantine, its peers and the reported tree,
//! documents, conflicts, traces and the convergence check (`hopluu
//! status`, `quarantine`, `peers`, `tree`, `docs`, `conflicts`, `trace`,
//! `check`).
//!
//! Every method takes an administrator's certificate ([`auth::admin`]),
//! converts the request ([`crate::convert`]), calls one operation of
//! [`App`] or [`Replication`] and converts the answer. A quarantined change
//! is shown by what it says of itself, never by the values it writes:
//! those may be personal data.

use std::sync::Arc;
use std::time::SystemTime;

use hopluu_model::ModelError;
use hopluu_proto::v1 as pb;
use hopluu_sync::frame::EdgeReport;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::app::App;
use crate::app::admin::{Decide, QuarantineQuery};
use crate::app::docs::DocsQuery;
use crate::app::quarantine::{Decided, QuarantineSelect};
use crate::check::Comparison;
use crate::convert::admin as cv;
use crate::convert::frames::report_to_pb;
use crate::grpc::auth;
use crate::grpc::compact::{self, CompactStream};
use crate::replication::Replication;
use crate::tls::{NodeTls, Security};

type R<T> = Result<Response<T>, Status>;

/// A report older than this (seconds) is stale unless the request says.
pub const DEFAULT_STALE_AFTER: u64 = 300;

/// The admin service of one node.
#[derive(Clone, Debug)]
pub struct AdminGrpc {
    app: Arc<App>,
    /// The node's replication: its edges, reports and dialler.
    replication: Arc<Replication>,
    /// The node's TLS material, when it serves TLS.
    tls: Option<Arc<NodeTls>>,
}

impl AdminGrpc {
    pub fn new(app: Arc<App>, replication: Arc<Replication>, security: &Security) -> AdminGrpc {
        let tls = match security {
            Security::Tls(tls) => Some(tls.clone()),
            Security::InsecurePlaintext => None,
        };
        AdminGrpc {
            app,
            replication,
            tls,
        }
    }

    async fn decide(
        &self,
        req: Request<pb::DecideQuarantineRequest>,
        decide: Decide,
        rpc: &'static str,
    ) -> R<pb::QuarantineDecision> {
        let (who, r) = auth::admin(req, rpc)?;
        let sel = QuarantineSelect {
            node: &r.node,
            reason: &r.reason,
            doc_id: &r.doc_id,
            decision: &r.decision,
        };
        let d = self
            .app
            .decide_held(
                decide,
                r.id,
                &sel,
                &who.identity.to_string(),
                &r.note,
                r.dry_run,
            )
            .await?;
        Ok(Response::new(match d {
            Decided::Entry(d) => cv::entry_decision(&d, decide, r.dry_run),
            Decided::Matching(d) => cv::bulk_decision(&d),
        }))
    }

    /// Each edge as its reporter saw it, with its age by this node's clock.
    fn tree_edges(&self, now: i64, stale_after: u64) -> Vec<pb::TreeEdge> {
        let rep = &self.replication;
        let tree = self.app.tree();
        let edge = |report: EdgeReport, received_at: i64| {
            let reported_at = report.reported_at_millis;
            let depth = hopluu_model::UnitId::parse("reporter_unit", &report.reporter_unit)
                .map(|u| tree.depth(&u) as u32)
                .unwrap_or(0);
            let mut e = report_to_pb(report);
            e.reporter_depth = depth;
            e.received_at_millis = received_at;
            // By the reporter's clock: a report relayed late is as old as
            // it was made, whenever it arrived.
            let age = ((now - reported_at).max(0) / 1000) as u64;
            e.age_seconds = age;
            e.stale = age > stale_after;
            if let Some(p) = e.edge.as_mut() {
                p.lag_seconds = cv::lag_seconds(p.oldest_pending_millis, now);
            }
            e
        };
        let mut edges: Vec<pb::TreeEdge> = rep
            .own_reports()
            .into_iter()
            .map(|r| edge(r, now))
            .collect();
        // This node's own edges carry what it knows locally (address,
        // sessions, documents): fill them in from the live status.
        let live = rep.edges();
        for e in edges.iter_mut() {
            if let Some(p) = e.edge.as_mut()
                && let Some(l) = live.iter().find(|l| l.peer == p.node_id)
            {
                *p = cv::peer_status(l.clone(), now);
            }
        }
        edges.extend(
            rep.reported()
                .into_iter()
                .map(|r| edge(r.edge, r.received_at_millis)),
        );
        edges.sort_by(|a, b| {
            (
                a.reporter_depth,
                &a.reporter_node,
                a.edge.as_ref().map(|e| &e.node_id),
            )
                .cmp(&(
                    b.reporter_depth,
                    &b.reporter_node,
                    b.edge.as_ref().map(|e| &e.node_id),
                ))
        });
        edges
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminGrpc {
    async fn status(&self, req: Request<pb::StatusRequest>) -> R<pb::NodeStatus> {
        auth::admin(req, "Status")?;
        let app = &self.app;
        let counts = app.counts().await?;
        let edges = self.replication.edges();
        Ok(Response::new(pb::NodeStatus {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            unit_name: app.unit_name(),
            database: counts.summary.database.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: app.uptime_seconds(),
            feed_position: counts.summary.feed_position,
            documents: counts.summary.documents,
            tls: self
                .tls
                .as_ref()
                .map(|t| cv::tls_status(t, SystemTime::now())),
            quarantine: Some(cv::quarantine_counts(&counts)),
            conflicts: counts.conflicts,
            peers: edges.len() as u64,
            peers_connected: edges.iter().filter(|e| e.connected).count() as u64,
        }))
    }

    async fn list_quarantine(
        &self,
        req: Request<pb::ListQuarantineRequest>,
    ) -> R<pb::ListQuarantineResponse> {
        let (_, r) = auth::admin(req, "ListQuarantine")?;
        let state = cv::quarantine_state(r.state).map_err(NodeError::from)?;
        let entries = self
            .app
            .quarantine_list(&QuarantineQuery {
                state,
                doc_id: &r.doc_id,
                node: &r.node,
                reason: &r.reason,
                decision: &r.decision,
                after_id: r.after_id,
                limit: r.limit,
            })
            .await?;
        Ok(Response::new(pb::ListQuarantineResponse {
            entries: entries.iter().map(cv::quarantine_entry).collect(),
        }))
    }

    async fn get_quarantine(
        &self,
        req: Request<pb::GetQuarantineRequest>,
    ) -> R<pb::QuarantineDetail> {
        let (_, r) = auth::admin(req, "GetQuarantine")?;
        let e = self.app.quarantine_entry(r.id).await?;
        Ok(Response::new(pb::QuarantineDetail {
            entry: Some(cv::quarantine_entry(&e)),
            change: e.change.as_deref().map(|b| cv::held_change(&e, b)),
        }))
    }

    async fn release_quarantine(
        &self,
        req: Request<pb::DecideQuarantineRequest>,
    ) -> R<pb::QuarantineDecision> {
        self.decide(req, Decide::Release, "ReleaseQuarantine").await
    }

    async fn discard_quarantine(
        &self,
        req: Request<pb::DecideQuarantineRequest>,
    ) -> R<pb::QuarantineDecision> {
        self.decide(req, Decide::Discard, "DiscardQuarantine").await
    }

    async fn list_peers(&self, req: Request<pb::ListPeersRequest>) -> R<pb::ListPeersResponse> {
        auth::admin(req, "ListPeers")?;
        let rep = &self.replication;
        rep.refresh_pending().await.map_err(NodeError::from)?;
        let now = self.app.clock.now_millis();
        let feed_position = self.app.feed_position().await?;
        let mut peers: Vec<pb::PeerStatus> = rep
            .edges()
            .into_iter()
            .map(|e| cv::peer_status(e, now))
            .collect();
        let nodes = self.app.nodes().await?;
        cv::mark_retired(peers.iter_mut(), &nodes);
        Ok(Response::new(pb::ListPeersResponse {
            peers,
            feed_position,
            now_millis: now,
        }))
    }

    async fn tree(&self, req: Request<pb::TreeRequest>) -> R<pb::TreeResponse> {
        let (_, r) = auth::admin(req, "Tree")?;
        let stale_after = match r.stale_after_seconds {
            0 => DEFAULT_STALE_AFTER,
            s => s,
        };
        self.replication
            .refresh_pending()
            .await
            .map_err(NodeError::from)?;
        let now = self.app.clock.now_millis();
        let mut edges = self.tree_edges(now, stale_after);
        let nodes = self.app.nodes().await?;
        cv::mark_retired(edges.iter_mut().filter_map(|e| e.edge.as_mut()), &nodes);
        Ok(Response::new(pb::TreeResponse {
            edges,
            now_millis: now,
            stale_after_seconds: stale_after,
        }))
    }

    async fn sync_now(&self, req: Request<pb::SyncNowRequest>) -> R<pb::SyncNowResponse> {
        let (who, r) = auth::admin(req, "SyncNow")?;
        let peer = (!r.peer.is_empty()).then_some(r.peer.as_str());
        let (woken, connected) = self
            .replication
            .sync_now(peer)
            .map_err(|reason| NodeError::from(ModelError::precondition("peer", reason)))?;
        tracing::info!(caller = %who.identity, ?woken, ?connected, "sync now");
        Ok(Response::new(pb::SyncNowResponse { woken, connected }))
    }

    async fn list_docs(&self, req: Request<pb::ListDocsRequest>) -> R<pb::ListDocsResponse> {
        let (_, r) = auth::admin(req, "ListDocs")?;
        let (rows, total) = self
            .app
            .list_docs(&DocsQuery {
                kind: &r.kind,
                owner: &r.owner,
                subtree: r.subtree,
                after: &r.after,
                limit: r.limit,
            })
            .await?;
        Ok(Response::new(pb::ListDocsResponse {
            docs: rows
                .iter()
                .map(|r| cv::doc_summary(r, self.app.outside_scope(r)))
                .collect(),
            total,
        }))
    }

    async fn get_doc(&self, req: Request<pb::GetDocRequest>) -> R<pb::DocDetail> {
        let (_, r) = auth::admin(req, "GetDoc")?;
        let d = self.app.doc_detail(&r.doc_id, r.history_limit).await?;
        Ok(Response::new(cv::doc_detail(&d)))
    }

    type CompactStream = CompactStream;

    async fn compact(&self, req: Request<pb::CompactRequest>) -> R<CompactStream> {
        let (who, r) = auth::admin(req, "Compact")?;
        let compaction = self.app.compaction(r.min_chunk_bytes).await?;
        tracing::info!(
            caller = %who.identity,
            docs = compaction.progress().docs_total,
            min_chunk_bytes = r.min_chunk_bytes,
            "compaction started"
        );
        Ok(Response::new(compact::stream(
            compaction,
            self.replication.cancelled(),
            who.identity.to_string(),
        )))
    }

    async fn check_peer(&self, req: Request<pb::CheckPeerRequest>) -> R<pb::CheckPeerResponse> {
        let (who, r) = auth::admin(req, "CheckPeer")?;
        let address = Some(r.address.as_str()).filter(|a| !a.trim().is_empty());
        let Comparison {
            peer_node,
            peer_unit,
            tally,
        } = self
            .replication
            .check_peer(&r.peer_node_id, address)
            .await
            .map_err(NodeError::Check)?;
        tracing::info!(
            caller = %who.identity,
            peer = %peer_node,
            compared = tally.compared,
            differing = tally.differing,
            "convergence check"
        );
        Ok(Response::new(pb::CheckPeerResponse {
            peer_node_id: peer_node,
            peer_unit_id: peer_unit.to_string(),
            node_id: self.app.node_id.clone(),
            unit_id: self.app.unit.to_string(),
            compared: tally.compared,
            in_step: tally.in_step,
            differences: tally.differences.into_iter().map(cv::difference).collect(),
            differing: tally.differing,
            checked_at_millis: self.app.clock.now_millis(),
        }))
    }

    async fn trace(&self, req: Request<pb::TraceRequest>) -> R<pb::TraceResponse> {
        let (_, r) = auth::admin(req, "Trace")?;
        let kind = cv::trace_kind(r.kind).map_err(NodeError::from)?;
        let t = self.app.trace(kind, &r.id).await?;
        Ok(Response::new(cv::trace(&t)))
    }

    async fn list_conflicts(
        &self,
        req: Request<pb::ListConflictsRequest>,
    ) -> R<pb::ListConflictsResponse> {
        let (_, r) = auth::admin(req, "ListConflicts")?;
        let list = self.app.conflicts(&r.doc_id, r.after_id, r.limit).await?;
        Ok(Response::new(pb::ListConflictsResponse {
            conflicts: list.iter().map(cv::conflict).collect(),
        }))
    }

    async fn get_conflict(&self, req: Request<pb::GetConflictRequest>) -> R<pb::Conflict> {
        let (_, r) = auth::admin(req, "GetConflict")?;
        Ok(Response::new(cv::conflict(&self.app.conflict(r.id).await?)))
    }

    async fn resolve_conflict(
        &self,
        req: Request<pb::ResolveConflictRequest>,
    ) -> R<pb::ResolveConflictResponse> {
        let (who, r) = auth::admin(req, "ResolveConflict")?;
        let (c, change) = self
            .app
            .resolve_conflict_as(
                r.id,
                &r.keep_op_id,
                r.value,
                &who.identity.to_string(),
                &r.note,
            )
            .await?;
        Ok(Response::new(pb::ResolveConflictResponse {
            conflict: Some(cv::conflict(&c)),
            change: change.to_string(),
        }))
    }
}
