//! Hostile peers over real TLS on loopback, each with a valid child
//! certificate: a flood of hellos, frames that say nothing, a frame over
//! the message size limit. Each gets a clear answer, the node keeps
//! serving, and nothing is written.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hopluu_model::UnitId;
use hopluu_node::replication::SESSIONS_PER_MINUTE;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::replication_service_client::ReplicationServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::*;

fn hello(node_id: &str, unit: &str) -> pb::SyncFrame {
    hopluu_node::replication::to_pb(hopluu_sync::frame::Frame::Hello(
        hopluu_sync::frame::Hello {
            node_id: node_id.into(),
            unit: unit.into(),
            protocol: hopluu_sync::frame::PROTOCOL_VERSION,
            schema: hopluu_model::doc::SCHEMA_VERSION,
            applied_from_you: 0,
        },
    ))
}

/// An open sync stream: frames go in through `send`, come out of `inbound`.
struct Stream {
    send: mpsc::Sender<pb::SyncFrame>,
    inbound: tonic::Streaming<pb::SyncFrame>,
}

async fn open(node: &Node, caller: &Caller, first: pb::SyncFrame) -> Result<Stream> {
    let channel = node.channel_as(caller).await?;
    let (send, rx) = mpsc::channel(8);
    send.send(first).await?;
    let inbound = ReplicationServiceClient::new(channel)
        .sync(ReceiverStream::new(rx))
        .await
        .context("opening a sync stream")?
        .into_inner();
    Ok(Stream { send, inbound })
}

impl Stream {
    /// The next frame within 10 s: Ok(None) when the stream ended.
    async fn next(&mut self) -> Result<Option<pb::SyncFrame>, tonic::Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.inbound.message()).await {
            Ok(r) => r,
            Err(_) => Err(tonic::Status::deadline_exceeded("no frame within 10 s")),
        }
    }

    /// Skips frames until a refusal or the end; the refusal's code.
    async fn refusal(&mut self) -> Result<Option<String>> {
        loop {
            match self.next().await {
                Ok(Some(pb::SyncFrame {
                    body: Some(pb::sync_frame::Body::Refusal(r)),
                })) => return Ok(Some(r.code)),
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(s) if s.code() == tonic::Code::DeadlineExceeded => bail!("{s}"),
                Err(_) => return Ok(None),
            }
        }
    }
}

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
    let mut first = open(&national, &child, hello("hg-node", HG)).await?;
    match first.next().await? {
        Some(pb::SyncFrame {
            body: Some(pb::sync_frame::Body::Hello(_)),
        }) => {}
        other => bail!("expected the national node's hello, got {other:?}"),
    }
    let mut second = open(&national, &child, hello("hg-node", HG)).await?;
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
        let mut s = open(&national, &child, hello("hg-node", HG)).await?;
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
    let mut s = open(&national, &child, pb::SyncFrame { body: None }).await?;
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
    let mut s = open(&national, &child, batch).await?;
    ensure!(s.refusal().await?.as_deref() == Some("protocol"));
    // A hello, then an ack whose heads are not hashes.
    let mut s = open(&national, &child, hello("hg-node", HG)).await?;
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
    let mut s = open(&national, &child, hello("hg-node", HG)).await?;
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
