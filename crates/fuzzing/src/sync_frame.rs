//! The `sync_frame` target: a replication frame off the wire.

use hopluu_model::{DocId, UnitId};
use hopluu_node::convert::frames::{from_pb, to_pb};
use hopluu_proto::v1 as pb;
use prost::Message as _;

/// A `SyncFrame` as a peer sends it: protobuf-decoded, then converted with
/// [`from_pb`] as the node's gRPC inbound does. A frame that converts must
/// come back unchanged through [`to_pb`] (and through the wire encoding).
pub fn sync_frame(data: &[u8]) {
    let Ok(wire) = pb::SyncFrame::decode(data) else {
        return;
    };
    let frame = match from_pb(wire.clone()) {
        Ok(frame) => frame,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.is_refusal();
            return;
        }
    };
    let _ = frame.kind();
    let _ = frame.approx_bytes();
    // What the receiving session parses first in each frame (read off the
    // protobuf form, which must equal the frame's: asserted below).
    match &wire.body {
        Some(pb::sync_frame::Body::Hello(h)) => {
            let _ = UnitId::parse("hello.unit_id", &h.unit_id);
        }
        Some(pb::sync_frame::Body::Batch(b)) => {
            for u in &b.docs {
                doc_id_round_trips(&u.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Ack(a)) => {
            for d in &a.docs {
                doc_id_round_trips(&d.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Receipts(r)) => {
            for x in &r.receipts {
                doc_id_round_trips(&x.doc_id);
            }
        }
        Some(pb::sync_frame::Body::Report(_) | pb::sync_frame::Body::Refusal(_)) | None => {}
    }
    let back = to_pb(frame.clone());
    // A report keeps only what a parent shows of it (strings cut to their
    // limits, local fields dropped); every other frame converts exactly.
    if !matches!(wire.body, Some(pb::sync_frame::Body::Report(_))) {
        assert_eq!(back, wire, "to_pb(from_pb(frame)) changed the frame");
    }
    let bytes = back.encode_to_vec();
    let decoded = pb::SyncFrame::decode(bytes.as_slice()).expect("a frame just encoded decodes");
    let again = from_pb(decoded).expect("a frame that converted once converts again");
    assert_eq!(again, frame, "the frame changed through the wire encoding");
}

/// A document id the receiver accepts is in its one canonical spelling.
fn doc_id_round_trips(s: &str) {
    if let Ok(id) = DocId::parse("doc_id", s) {
        assert_eq!(
            id.to_string(),
            s,
            "a document id parsed from another spelling"
        );
        assert_eq!(DocId::parse("doc_id", &id.to_string()).ok(), Some(id));
    }
}
