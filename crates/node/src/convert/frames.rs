//! Sync frames, edge reports and scope heads: `hopluu-sync`'s types to and
//! from their protobuf messages.

use automerge::ChangeHash;
use hopluu_proto::v1 as pb;
use hopluu_sync::SyncError;
use hopluu_sync::frame::{
    Ack, Batch, DocHeads, DocUpdate, EdgeReport, Frame, HeldChanges, Hello, Payload, Receipt,
    Receipts, Refusal,
};

use crate::check::{self};

pub fn scope_doc_to_pb(h: check::Heads) -> pb::ScopeDoc {
    pb::ScopeDoc {
        doc_id: h.doc.to_string(),
        heads: hashes_to_pb(h.heads),
    }
}

/// A document and its heads from another node (the field names the
/// message part, for the error).
pub fn scope_doc_from_pb(
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

pub fn hashes_to_pb(h: Vec<ChangeHash>) -> Vec<Vec<u8>> {
    h.into_iter().map(|h| h.0.to_vec()).collect()
}

pub fn hashes_from_pb(field: &str, h: Vec<Vec<u8>>) -> Result<Vec<ChangeHash>, SyncError> {
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
            held_changes: a.held.changes,
            held_docs: a.held.docs,
            held_oldest_millis: a.held.oldest_millis,
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
            held: HeldChanges {
                changes: a.held_changes,
                docs: a.held_docs,
                oldest_millis: a.held_oldest_millis,
            },
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
            last_error_millis: e.last_error_millis,
            held_by_peer: e.held_by_peer,
            held_here: e.held_here,
            retired: false,
            retired_at: String::new(),
            previous_error: e.previous_error,
            previous_error_millis: e.previous_error_millis,
            error_resolved_millis: e.error_resolved_millis,
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
        held_by_peer: edge.held_by_peer,
        held_here: edge.held_here,
        last_error: cut(edge.last_error, 512),
        last_error_millis: edge.last_error_millis,
        previous_error: cut(edge.previous_error, 512),
        previous_error_millis: edge.previous_error_millis,
        error_resolved_millis: edge.error_resolved_millis,
        reported_at_millis: e.reported_at_millis,
    }
}
