//! A sync stream of raw bytes: frames the rogue could not build as
//! protobuf messages (malformed, truncated), sent as they are.

use anyhow::{Context, Result, bail};
use hopluu_proto::v1 as pb;
use hopluu_tests::rogue::End;
use prost::Message;
use prost::bytes::BufMut;
use tokio::sync::mpsc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::fixture::*;

// --------------------------------------------------- a stream of raw bytes

/// A codec that sends whatever bytes it is given as a message and reads
/// the parent's frames as protobuf: for messages that are not frames.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FrameDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::SyncFrame;
    type Encoder = RawEncoder;
    type Decoder = FrameDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> FrameDecoder {
        FrameDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for FrameDecoder {
    type Item = pb::SyncFrame;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<pb::SyncFrame>, tonic::Status> {
        pb::SyncFrame::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// A sync stream whose messages are raw bytes, the first one `first`.
pub(super) async fn raw_stream(
    channel: Channel,
    first: Vec<u8>,
) -> Result<(mpsc::Sender<Vec<u8>>, tonic::Streaming<pb::SyncFrame>)> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.context("the channel is ready")?;
    let (send, rx) = mpsc::channel(8);
    send.send(first).await?;
    let inbound = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static("/hopluu.v1.ReplicationService/Sync"),
            RawCodec,
        )
        .await
        .context("opening a raw sync stream")?
        .into_inner();
    Ok((send, inbound))
}

/// Reads `inbound` until it ends (passing over frames); how it ended.
pub(super) async fn raw_end(inbound: &mut tonic::Streaming<pb::SyncFrame>) -> Result<End> {
    loop {
        match tokio::time::timeout(LIMIT, inbound.message()).await {
            Err(_) => bail!("the raw stream did not end within {LIMIT:?}"),
            Ok(Ok(None)) => return Ok(End::Closed),
            Ok(Err(s)) => return Ok(End::Failed(s)),
            Ok(Ok(Some(pb::SyncFrame {
                body: Some(pb::sync_frame::Body::Refusal(r)),
            }))) => return Ok(End::Refused(r)),
            Ok(Ok(Some(_))) => {}
        }
    }
}
