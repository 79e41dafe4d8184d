//! Sync streams opened by hand, as any caller, for the tests that speak
//! the replication protocol to a node directly.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::replication_service_client::ReplicationServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use crate::harness::*;

/// A hello as node `node_id` hosting `unit` sends it, having applied
/// nothing of the receiver's feed.
pub fn hello(node_id: &str, unit: &str) -> pb::SyncFrame {
    hopluu_node::convert::frames::to_pb(hopluu_sync::frame::Frame::Hello(
        hopluu_sync::frame::Hello {
            node_id: node_id.into(),
            unit: unit.into(),
            protocol: hopluu_sync::frame::PROTOCOL_VERSION,
            schema: hopluu_model::doc::SCHEMA_VERSION,
            applied_from_you: 0,
            receipts_from_you: 0,
        },
    ))
}

/// A sync stream opened by hand, as any caller: frames go in through
/// `send`, come out of `inbound`. The stream stays open while this lives.
pub struct SyncStream {
    pub send: mpsc::Sender<pb::SyncFrame>,
    pub inbound: tonic::Streaming<pb::SyncFrame>,
}

impl SyncStream {
    /// Opens a sync stream to `node` as `caller` and sends `first`.
    pub async fn open(node: &Node, caller: &Caller, first: pb::SyncFrame) -> Result<SyncStream> {
        let channel = node.channel_as(caller).await?;
        let (send, rx) = mpsc::channel(8);
        send.send(first).await?;
        let inbound = ReplicationServiceClient::new(channel)
            .sync(ReceiverStream::new(rx))
            .await
            .context("opening a sync stream")?
            .into_inner();
        Ok(SyncStream { send, inbound })
    }

    /// The next frame within 10 s: Ok(None) when the stream ended.
    pub async fn next(&mut self) -> Result<Option<pb::SyncFrame>, Status> {
        match tokio::time::timeout(Duration::from_secs(10), self.inbound.message()).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("no frame within 10 s")),
        }
    }

    /// Skips frames until a refusal or the end; the refusal's code (None
    /// when the stream ended without one).
    pub async fn refusal(&mut self) -> Result<Option<String>> {
        loop {
            match self.next().await {
                Ok(Some(pb::SyncFrame {
                    body: Some(pb::sync_frame::Body::Refusal(r)),
                })) => return Ok(Some(r.code)),
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(s) if s.code() == Code::DeadlineExceeded => bail!("{s}"),
                Err(_) => return Ok(None),
            }
        }
    }
}

/// Opens a sync stream to `node` as `caller`, sends `first`, and returns
/// the first frame back (the stream stays open meanwhile).
pub async fn first_answer(
    node: &Node,
    caller: &Caller,
    first: pb::SyncFrame,
) -> Result<pb::SyncFrame> {
    let mut stream = SyncStream::open(node, caller, first).await?;
    stream
        .next()
        .await
        .context("an answer within 10 s")?
        .context("the stream ended without an answer")
}

/// The refusal's code and reason, or what came instead.
pub fn refusal_of(frame: &pb::SyncFrame) -> Result<(String, String)> {
    match &frame.body {
        Some(pb::sync_frame::Body::Refusal(r)) => Ok((r.code.clone(), r.reason.clone())),
        other => bail!("expected a refusal, got {other:?}"),
    }
}
