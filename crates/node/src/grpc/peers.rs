//! `ListPeers`, `Tree`, `SyncNow` and `CheckPeer`: this node's replication
//! edges, the subtree's edges as reported up the tree, waking the
//! dialler, and the convergence check against one peer (the work is
//! [`Replication::check_peer`](crate::replication::Replication::check_peer)
//! and [`crate::check`]; this is the conversion).
//!
//! An edge's lag is the age of the oldest update of the reporting node's
//! feed that the peer lacks (0 when it lacks nothing): it grows while a
//! link is down and work waits, and drops to 0 once the peer has caught
//! up. Reports travel up with the replication streams every
//! `replication.report_every_secs`; a report older than the threshold
//! marks an office not heard from.

use hopluu_model::{Clock, SystemClock};
use hopluu_proto::v1 as pb;
use hopluu_sync::frame::EdgeReport;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::check::{Comparison, Difference, State};
use crate::error::to_status;
use crate::grpc::admin::AdminGrpc;
use crate::grpc::auth;
use crate::replication::{EdgeStatus, report_to_pb};

type R<T> = Result<Response<T>, Status>;

/// A report older than this (seconds) is stale unless the request says.
pub const DEFAULT_STALE_AFTER: u64 = 300;

fn lag_seconds(oldest_pending_millis: i64, now: i64) -> u64 {
    if oldest_pending_millis <= 0 {
        0
    } else {
        ((now - oldest_pending_millis).max(0) / 1000) as u64
    }
}

fn peer_status(e: EdgeStatus, now: i64) -> pb::PeerStatus {
    pb::PeerStatus {
        node_id: e.peer,
        unit_id: e.unit,
        direction: if e.direction == "upstream" {
            pb::PeerDirection::Upstream
        } else {
            pb::PeerDirection::Child
        } as i32,
        address: e.address,
        connected: e.connected,
        since_millis: e.since_millis,
        last_contact_millis: e.last_contact_millis,
        sessions: e.sessions,
        acked_upto: e.acked_upto,
        applied_upto: e.applied_upto,
        changes_pending: e.changes_pending,
        docs_pending: e.docs_pending,
        oldest_pending_millis: e.oldest_pending_millis,
        lag_seconds: lag_seconds(e.oldest_pending_millis, now),
        bytes_sent: e.bytes_sent,
        bytes_received: e.bytes_received,
        docs_sent: e.docs_sent,
        docs_applied: e.docs_applied,
        rejected: e.rejected,
        quarantined: e.quarantined,
        last_error: e.last_error,
        last_error_millis: e.last_error_millis,
    }
}

pub async fn list(
    admin: &AdminGrpc,
    req: Request<pb::ListPeersRequest>,
) -> R<pb::ListPeersResponse> {
    auth::admin(req, "ListPeers")?;
    let rep = &admin.replication;
    rep.refresh_pending()
        .await
        .map_err(|e| to_status(&NodeError::Store(e)))?;
    let now = SystemClock.now_millis();
    let feed_position = admin
        .app
        .store
        .feed_position()
        .await
        .map_err(|e| to_status(&NodeError::Store(e)))?;
    Ok(Response::new(pb::ListPeersResponse {
        peers: rep
            .edges()
            .into_iter()
            .map(|e| peer_status(e, now))
            .collect(),
        feed_position,
        now_millis: now,
    }))
}

pub async fn tree(admin: &AdminGrpc, req: Request<pb::TreeRequest>) -> R<pb::TreeResponse> {
    let (_, r) = auth::admin(req, "Tree")?;
    let stale_after = match r.stale_after_seconds {
        0 => DEFAULT_STALE_AFTER,
        s => s,
    };
    let rep = &admin.replication;
    rep.refresh_pending()
        .await
        .map_err(|e| to_status(&NodeError::Store(e)))?;
    let now = SystemClock.now_millis();
    let tree = admin.app.tree();
    let edge = |report: EdgeReport, received_at: i64| {
        let reported_at = report.reported_at_millis;
        let depth = hopluu_model::UnitId::parse("reporter_unit", &report.reporter_unit)
            .map(|u| tree.depth(&u) as u32)
            .unwrap_or(0);
        let mut e = report_to_pb(report);
        e.reporter_depth = depth;
        e.received_at_millis = received_at;
        // By the reporter's clock: a report relayed late is as old as it
        // was made, whenever it arrived.
        let age = ((now - reported_at).max(0) / 1000) as u64;
        e.age_seconds = age;
        e.stale = age > stale_after;
        if let Some(p) = e.edge.as_mut() {
            p.lag_seconds = lag_seconds(p.oldest_pending_millis, now);
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
            *p = peer_status(l.clone(), now);
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
    Ok(Response::new(pb::TreeResponse {
        edges,
        now_millis: now,
        stale_after_seconds: stale_after,
    }))
}

pub async fn sync_now(
    admin: &AdminGrpc,
    req: Request<pb::SyncNowRequest>,
) -> R<pb::SyncNowResponse> {
    let (who, r) = auth::admin(req, "SyncNow")?;
    let peer = (!r.peer.is_empty()).then_some(r.peer.as_str());
    let (woken, connected) = admin.replication.sync_now(peer).map_err(|reason| {
        to_status(&NodeError::from(hopluu_model::ModelError::precondition(
            "peer", reason,
        )))
    })?;
    tracing::info!(caller = %who.identity, ?woken, ?connected, "sync now");
    Ok(Response::new(pb::SyncNowResponse { woken, connected }))
}

fn check_state(s: State) -> pb::CheckState {
    match s {
        State::MissingAtPeer => pb::CheckState::MissingAtPeer,
        State::MissingHere => pb::CheckState::MissingHere,
        State::PeerBehind => pb::CheckState::PeerBehind,
        State::HereBehind => pb::CheckState::HereBehind,
        State::Diverged => pb::CheckState::Diverged,
        State::HeldHere => pb::CheckState::HeldHere,
    }
}

fn difference_pb(d: Difference) -> pb::CheckDifference {
    let hex = |h: Vec<automerge::ChangeHash>| h.iter().map(ToString::to_string).collect();
    pb::CheckDifference {
        doc_id: d.doc.to_string(),
        state: check_state(d.state) as i32,
        heads_here: hex(d.here),
        heads_at_peer: hex(d.there),
        held: hex(d.held),
    }
}

pub async fn check_peer(
    admin: &AdminGrpc,
    req: Request<pb::CheckPeerRequest>,
) -> R<pb::CheckPeerResponse> {
    let (who, r) = auth::admin(req, "CheckPeer")?;
    let address = Some(r.address.as_str()).filter(|a| !a.trim().is_empty());
    let Comparison {
        peer_node,
        peer_unit,
        tally,
    } = admin
        .replication
        .check_peer(&r.peer_node_id, address)
        .await
        .map_err(|e| to_status(&NodeError::Check(e)))?;
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
        node_id: admin.app.node_id.clone(),
        unit_id: admin.app.unit.to_string(),
        compared: tally.compared,
        in_step: tally.in_step,
        differences: tally.differences.into_iter().map(difference_pb).collect(),
        differing: tally.differing,
        checked_at_millis: SystemClock.now_millis(),
    }))
}
