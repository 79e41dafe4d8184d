//! The `AdminService`'s messages: the node's state, quarantine entries and
//! the changes they hold, documents, conflicts, traces, peers and the
//! reported tree, and the convergence check.

use std::time::{SystemTime, UNIX_EPOCH};

use hopluu_model::{Author, ModelError};
use hopluu_proto::v1 as pb;
use hopluu_store::conflicts::ConflictValue;
use hopluu_store::docs_admin::{CompactProgress, DocRow};
use hopluu_store::quarantine::{QuarantineEntry, QuarantineState};
use hopluu_sync::gate::StillHeld;

use crate::app::admin::{Decide, NodeCounts, QuarantineDecision};
use crate::app::conflicts::ConflictView;
use crate::app::docs::{DocDetail, PeerStanding};
use crate::app::quarantine::BulkDecision;
use crate::app::trace::{Trace, TraceKind};
use crate::check::{Difference, State};
use crate::edge::EdgeStatus;
use crate::tls::NodeTls;

/// At most this much of a change's message is shown: a forged change may
/// carry anything there.
const MAX_MESSAGE_CHARS: usize = 200;

fn hex(h: &[automerge::ChangeHash]) -> Vec<String> {
    h.iter().map(ToString::to_string).collect()
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The node's certificate, as `hopluu status` shows it.
pub fn tls_status(tls: &NodeTls, now: SystemTime) -> pb::TlsStatus {
    let info = tls.info();
    pb::TlsStatus {
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        identity: info
            .identity
            .as_ref()
            .and_then(|i| i.uri())
            .unwrap_or_default(),
        not_after: info.expires(),
        not_after_unix: unix_seconds(info.not_after),
        days_left: info.days_left(now),
        trusted_cas: tls.cas().iter().map(|c| c.subject.clone()).collect(),
    }
}

pub fn quarantine_counts(c: &NodeCounts) -> pb::QuarantineCounts {
    pb::QuarantineCounts {
        held: c.quarantine_held,
        released: c.quarantine_released,
        discarded: c.quarantine_discarded,
        archived: c.quarantine_archived,
    }
}

fn state_pb(s: QuarantineState) -> pb::QuarantineState {
    match s {
        QuarantineState::Held => pb::QuarantineState::Held,
        QuarantineState::Released => pb::QuarantineState::Released,
        QuarantineState::Discarded => pb::QuarantineState::Discarded,
        QuarantineState::Archived => pb::QuarantineState::Archived,
    }
}

/// A listing's state filter (`state`; unspecified: every state).
pub fn quarantine_state(state: i32) -> Result<Option<QuarantineState>, ModelError> {
    match pb::QuarantineState::try_from(state) {
        Ok(pb::QuarantineState::Unspecified) => Ok(None),
        Ok(pb::QuarantineState::Held) => Ok(Some(QuarantineState::Held)),
        Ok(pb::QuarantineState::Released) => Ok(Some(QuarantineState::Released)),
        Ok(pb::QuarantineState::Discarded) => Ok(Some(QuarantineState::Discarded)),
        Ok(pb::QuarantineState::Archived) => Ok(Some(QuarantineState::Archived)),
        Err(_) => Err(ModelError::invalid(
            "state",
            format!("unknown state {state}: expected HELD, RELEASED, DISCARDED or ARCHIVED"),
        )),
    }
}

pub fn quarantine_entry(e: &QuarantineEntry) -> pb::QuarantineEntry {
    pb::QuarantineEntry {
        id: e.id,
        doc_id: e.doc.clone(),
        hash: e.hash.to_string(),
        origin_node: e.origin_node.clone(),
        origin_unit: e.origin_unit.clone(),
        peer_node: e.peer_node.clone(),
        peer_unit: e.peer_unit.clone(),
        code: e.code.clone(),
        reason: e.reason.clone(),
        waits_for: e.waits_for.map(|h| h.to_string()).unwrap_or_default(),
        size_bytes: e.change_len.max(0) as u64,
        state: state_pb(e.state) as i32,
        received_at_millis: e.received_at,
        decided_at_millis: e.decided_at.unwrap_or(0),
        decided_by: e.decided_by.clone().unwrap_or_default(),
    }
}

/// What a decision on one entry did, with the counts a decision by
/// filter gives (one entry selected).
pub fn entry_decision(
    d: &QuarantineDecision,
    decide: Decide,
    dry_run: bool,
) -> pb::QuarantineDecision {
    let changes = d.changes as u64;
    let (released, passed, discarded, waiting) = match decide {
        Decide::Release => (1, changes.saturating_sub(1), 0, 0),
        Decide::Discard => (0, 0, 1, changes.saturating_sub(1)),
    };
    pb::QuarantineDecision {
        entry: Some(quarantine_entry(&d.entry)),
        changes,
        matched: 1,
        released,
        discarded,
        passed,
        waiting_discarded: waiting,
        dry_run,
        ..pb::QuarantineDecision::default()
    }
}

/// What a decision by filter did: the counts, and the entries left
/// held by why.
pub fn bulk_decision(d: &BulkDecision) -> pb::QuarantineDecision {
    pb::QuarantineDecision {
        entry: None,
        changes: d.released + d.passed + d.discarded + d.waiting_discarded,
        matched: d.matched,
        more: d.more,
        released: d.released,
        discarded: d.discarded,
        passed: d.passed,
        waiting_discarded: d.waiting_discarded,
        left: d
            .left
            .iter()
            .map(|(why, l)| pb::LeftHeld {
                why: (*why).to_owned(),
                description: StillHeld::describe_code(why).to_owned(),
                count: l.count,
                example_id: l.example_id,
                example: l.example.clone(),
            })
            .collect(),
        dry_run: d.dry_run,
    }
}

/// What a held change says of itself, without its operations' values.
pub fn held_change(e: &QuarantineEntry, bytes: &[u8]) -> pb::ChangeSummary {
    match automerge::Change::try_from(bytes) {
        Err(err) => pb::ChangeSummary {
            hash: e.hash.to_string(),
            size_bytes: bytes.len() as u64,
            decode_error: err.to_string(),
            ..Default::default()
        },
        Ok(c) => pb::ChangeSummary {
            size_bytes: bytes.len() as u64,
            ..change(&c)
        },
    }
}

/// What a change says of itself (its actor's node and unit, hash, seq,
/// dependencies, time, message, operation count), never the values it
/// writes: those may be personal data.
pub fn change(c: &automerge::Change) -> pb::ChangeSummary {
    let origin = Author::origin(c.actor_id());
    pb::ChangeSummary {
        hash: c.hash().to_string(),
        actor: c.actor_id().to_hex_string(),
        actor_node: origin.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
        actor_unit: origin.map(|o| o.unit.to_string()).unwrap_or_default(),
        seq: c.seq(),
        deps: c.deps().iter().map(ToString::to_string).collect(),
        size_bytes: c.raw_bytes().len() as u64,
        time_millis: hopluu_model::doc::change_time_millis(c.timestamp()),
        message: c
            .message()
            .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect())
            .unwrap_or_default(),
        op_count: c.len() as u64,
        decode_error: String::new(),
    }
}

pub fn doc_summary(row: &DocRow, outside_scope: bool) -> pb::DocSummary {
    pb::DocSummary {
        outside_scope,
        doc_id: row.id.to_string(),
        kind: row.id.kind().as_str().to_owned(),
        owner: row.owner.to_string(),
        addressed: row.addressed.iter().map(ToString::to_string).collect(),
        size_bytes: row.size().max(0) as u64,
        heads: hex(&row.heads),
        seq: row.seq,
        changed_at_millis: row.changed_at,
        chunk_bytes: row.chunks_len.max(0) as u64,
    }
}

fn peer_standing(p: &PeerStanding) -> pb::PeerDocHeads {
    pb::PeerDocHeads {
        node_id: p.node_id.clone(),
        heads: hex(&p.heads),
        up_to_date: p.behind == 0,
        changes_behind: p.behind,
        unit_id: p.unit_id.clone(),
    }
}

pub fn doc_detail(d: &DocDetail) -> pb::DocDetail {
    let mut summary = doc_summary(&d.row, d.outside_scope);
    summary.heads = hex(&d.heads);
    pb::DocDetail {
        doc: Some(summary),
        history: d.history.iter().map(change).collect(),
        changes: d.changes,
        peers: d.peers.iter().map(peer_standing).collect(),
        conflicts: d.conflicts,
    }
}

pub fn compact_progress(p: &CompactProgress, done: bool) -> pb::CompactProgress {
    pb::CompactProgress {
        docs_done: p.docs_done,
        docs_total: p.docs_total,
        bytes_before: p.bytes_before,
        bytes_after: p.bytes_after,
        done,
        docs_compacted: p.docs_compacted,
        docs_skipped: p.docs_skipped,
    }
}

fn conflict_value(v: &ConflictValue) -> pb::ConflictValue {
    pb::ConflictValue {
        value: v.value.clone(),
        op_id: v.op_id.clone(),
        node_id: v.node.clone(),
        unit_id: v.unit.clone(),
        written_at_millis: v.written_at,
        change: v.change.map(|h| h.to_string()).unwrap_or_default(),
    }
}

pub fn conflict(v: &ConflictView) -> pb::Conflict {
    let c = &v.conflict;
    pb::Conflict {
        id: c.id,
        doc_id: c.doc.to_string(),
        record: c.record.clone(),
        path: v.path.clone(),
        field: c.field.clone(),
        values: v.values.iter().map(conflict_value).collect(),
        detected_at_millis: c.detected_at,
    }
}

/// What a trace names (`kind`; unspecified: `None`, which the App refuses
/// naming the kinds).
pub fn trace_kind(kind: i32) -> Result<Option<TraceKind>, ModelError> {
    match pb::TraceKind::try_from(kind) {
        Ok(pb::TraceKind::Unspecified) => Ok(None),
        Ok(pb::TraceKind::Member) => Ok(Some(TraceKind::Member)),
        Ok(pb::TraceKind::Initiative) => Ok(Some(TraceKind::Initiative)),
        Ok(pb::TraceKind::Campaign) => Ok(Some(TraceKind::Campaign)),
        Ok(pb::TraceKind::Award) => Ok(Some(TraceKind::Award)),
        Ok(pb::TraceKind::Unit) => Ok(Some(TraceKind::Unit)),
        Ok(pb::TraceKind::Doc) => Ok(Some(TraceKind::Doc)),
        Err(_) => Err(ModelError::invalid("kind", format!("unknown kind {kind}"))),
    }
}

pub fn trace(t: &Trace) -> pb::TraceResponse {
    pb::TraceResponse {
        doc_id: t.doc_id.clone(),
        change: t.change.to_string(),
        made_by_node: t
            .made_by
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_default(),
        made_by_unit: t
            .made_by
            .as_ref()
            .map(|(_, u)| u.to_string())
            .unwrap_or_default(),
        made_at_millis: t.made_at_millis,
        hops: t
            .hops
            .iter()
            .map(|h| pb::TraceHop {
                unit_id: h.unit_id.to_string(),
                depth: h.depth,
                node_id: h.node_id.clone(),
                reached: h.reached,
                reached_at_millis: h.reached_at_millis,
            })
            .collect(),
    }
}

/// Seconds since the oldest pending update was made (0: none pending).
pub fn lag_seconds(oldest_pending_millis: i64, now: i64) -> u64 {
    if oldest_pending_millis <= 0 {
        0
    } else {
        ((now - oldest_pending_millis).max(0) / 1000) as u64
    }
}

/// An edge for `hopluu peers`: what the peer lacks counts the changes
/// it holds in quarantine ([`EdgeStatus::lacks`]).
pub fn peer_status(e: EdgeStatus, now: i64) -> pb::PeerStatus {
    let lacks = e.lacks();
    pb::PeerStatus {
        node_id: e.peer,
        unit_id: e.unit,
        direction: match e.direction {
            "upstream" => pb::PeerDirection::Upstream,
            "handover" => pb::PeerDirection::Handover,
            _ => pb::PeerDirection::Child,
        } as i32,
        address: e.address,
        connected: e.connected,
        since_millis: e.since_millis,
        last_contact_millis: e.last_contact_millis,
        sessions: e.sessions,
        acked_upto: e.acked_upto,
        applied_upto: e.applied_upto,
        changes_pending: lacks.changes,
        docs_pending: lacks.docs,
        oldest_pending_millis: lacks.oldest_millis,
        lag_seconds: lag_seconds(lacks.oldest_millis, now),
        bytes_sent: e.bytes_sent,
        bytes_received: e.bytes_received,
        docs_sent: e.docs_sent,
        docs_applied: e.docs_applied,
        rejected: e.rejected,
        quarantined: e.quarantined,
        last_error: e.last_error,
        last_error_millis: e.last_error_millis,
        held_by_peer: e.held_by_peer.changes,
        held_here: e.held_here,
        retired: false,
        retired_at: String::new(),
        previous_error: e.previous_error,
        previous_error_millis: e.previous_error_millis,
        error_resolved_millis: e.error_resolved_millis,
    }
}

/// Marks the edges whose peer's node record says it is retired.
pub fn mark_retired<'a>(
    edges: impl IntoIterator<Item = &'a mut pb::PeerStatus>,
    nodes: &[hopluu_store::hosting::NodeEntry],
) {
    for e in edges {
        if let Some(n) = nodes
            .iter()
            .find(|n| n.id == e.node_id && n.status == "retired")
        {
            e.retired = true;
            e.retired_at = n.retired_at.clone();
        }
    }
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

pub fn difference(d: Difference) -> pb::CheckDifference {
    pb::CheckDifference {
        doc_id: d.doc.to_string(),
        state: check_state(d.state) as i32,
        heads_here: hex(&d.here),
        heads_at_peer: hex(&d.there),
        held: hex(&d.held),
    }
}
