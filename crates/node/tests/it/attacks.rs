//! Hostile peers over real TLS on loopback, each with a valid child
//! certificate: a flood of hellos, frames that say nothing, a frame over
//! the message size limit. Each gets a clear answer, the node keeps
//! serving, and nothing is written. The flood against a federation whose
//! honest peers keep syncing, and the security issue's other attacks
//! (bytes that are not frames, malformed automerge, forged makers and
//! identities, replays, a slowloris, writes outside the subtree, private
//! rosters) between real nodes, are in the end-to-end suite
//! (`tests/it/attacks.rs`).

use anyhow::{Result, bail, ensure};
use hopluu_model::UnitId;
use hopluu_node::replication::SESSIONS_PER_MINUTE;
use hopluu_proto::v1 as pb;

use crate::harness::*;

async fn national_with_child() -> Result<Node> {
    let national = Node::with_tree().await?;
    national
        .replication
        .allow_child("hg-node", &UnitId::parse("unit", HG)?);
    Ok(national)
}

/// A child that opens session after session: each new one ends the one
/// before (one session per peer), and past the per-minute limit it is
/// refused with `limit`, while the node keeps serving others.
#[tokio::test]
async fn a_flood_of_hellos_is_bounded() -> Result<()> {
    let national = national_with_child().await?;
    let child = Caller::node("hg-node", HG);
    let mut first = SyncStream::open(&national, &child, hello("hg-node", HG)).await?;
    match first.next().await? {
        Some(pb::SyncFrame {
            body: Some(pb::sync_frame::Body::Hello(_)),
        }) => {}
        other => bail!("expected the national node's hello, got {other:?}"),
    }
    let mut second = SyncStream::open(&national, &child, hello("hg-node", HG)).await?;
    ensure!(
        second.next().await?.is_some(),
        "the second session is answered"
    );
    // The first session ends: the node holds one session per peer.
    ensure!(
        first.refusal().await?.is_none(),
        "the older session ended without a refusal"
    );
    let mut refused = None;
    for i in 2..SESSIONS_PER_MINUTE + 5 {
        let mut s = SyncStream::open(&national, &child, hello("hg-node", HG)).await?;
        match s.next().await {
            Ok(Some(pb::SyncFrame {
                body: Some(pb::sync_frame::Body::Refusal(r)),
            })) => {
                ensure!(r.code == "limit", "{r:?}");
                ensure!(r.reason.contains("hg-node"), "{}", r.reason);
                refused = Some(i);
                break;
            }
            Ok(Some(_)) => {}
            other => bail!("session {i}: {other:?}"),
        }
    }
    ensure!(
        refused == Some(SESSIONS_PER_MINUTE),
        "refused at session {refused:?}, limit {SESSIONS_PER_MINUTE}"
    );
    // Other callers are served as before.
    national.info().await?;
    national.stop().await
}

/// Frames that are valid protobuf but say nothing, or say it wrongly, end
/// the session with a `protocol` refusal; nothing is written.
#[tokio::test]
async fn malformed_frames_are_refused() -> Result<()> {
    let national = national_with_child().await?;
    let child = Caller::node("hg-node", HG);
    let before = national.feed().await?;
    // An empty frame first.
    let mut s = SyncStream::open(&national, &child, pb::SyncFrame { body: None }).await?;
    ensure!(s.refusal().await?.as_deref() == Some("protocol"));
    // A batch before any hello.
    let batch = pb::SyncFrame {
        body: Some(pb::sync_frame::Body::Batch(pb::Batch {
            id: 1,
            from_seq: 0,
            upto_seq: 0,
            docs: vec![],
        })),
    };
    let mut s = SyncStream::open(&national, &child, batch).await?;
    ensure!(s.refusal().await?.as_deref() == Some("protocol"));
    // A hello, then an ack whose heads are not hashes.
    let mut s = SyncStream::open(&national, &child, hello("hg-node", HG)).await?;
    s.next().await?;
    s.send
        .send(pb::SyncFrame {
            body: Some(pb::sync_frame::Body::Ack(pb::Ack {
                batch_id: 0,
                applied_upto: 0,
                docs: vec![pb::DocHeads {
                    doc_id: "unit/vn".into(),
                    heads: vec![vec![1, 2, 3]],
                    rejected: String::new(),
                    quarantined: vec![],
                }],
                applied_at_millis: 0,
                ..Default::default()
            })),
        })
        .await?;
    ensure!(s.refusal().await?.as_deref() == Some("protocol"));
    ensure!(national.feed().await? == before);
    national.info().await?;
    national.stop().await
}

/// A frame over `[grpc] max_message_bytes` is refused by the transport
/// (RESOURCE_EXHAUSTED), not read into memory; the node keeps serving.
#[tokio::test]
async fn a_frame_over_the_size_limit_is_refused() -> Result<()> {
    let national = national_with_child().await?;
    let child = Caller::node("hg-node", HG);
    let before = national.feed().await?;
    let mut s = SyncStream::open(&national, &child, hello("hg-node", HG)).await?;
    s.next().await?;
    let huge = pb::SyncFrame {
        body: Some(pb::sync_frame::Body::Batch(pb::Batch {
            id: 1,
            from_seq: 0,
            upto_seq: 0,
            docs: vec![pb::DocUpdate {
                doc_id: "roster/hg-a".into(),
                heads: vec![],
                payload: Some(pb::doc_update::Payload::Changes(vec![0u8; 80 << 20])),
            }],
        })),
    };
    s.send.send(huge).await?;
    let mut ended = false;
    for _ in 0..4 {
        match s.inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => {
                ended = true;
                break;
            }
        }
    }
    ensure!(ended, "the stream ended");
    ensure!(national.feed().await? == before);
    national.info().await?;
    national.stop().await
}
