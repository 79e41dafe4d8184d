//! A rogue peer: a test client holding a valid node certificate that opens
//! a parent's `ReplicationService.Sync` stream and speaks the frame
//! protocol by hand, to send what a real node never would (forged changes,
//! another node's hello, old batches again) and read what the parent
//! answers.
//!
//! Frames are built here in their protobuf form (this library does not
//! depend on `hopluu-sync`); [`PROTOCOL`] is the replication protocol
//! version they claim. Every wait is bounded ([`Rogue::with_wait`]), so a
//! parent that never answers fails the test instead of hanging it.
//!
//! ```no_run
//! # async fn f(fed: &hopluu_devcluster::federation::Federation) -> anyhow::Result<()> {
//! use hopluu_devcluster::pki::Caller;
//! use hopluu_tests::rogue::Rogue;
//! let channel = fed.channel_as("hau-giang", &Caller::node("hg-a", "hg-a")).await?;
//! let (mut rogue, _parent) = Rogue::connect(channel, "hg-a", "hg-a").await?;
//! let _ack = rogue.batch(vec![/* forged updates */]).await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::replication_service_client::ReplicationServiceClient;
use pb::sync_frame::Body;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// The replication protocol version a rogue's hello claims: the one real
/// nodes speak (`hopluu_sync::PROTOCOL_VERSION`; the end-to-end tests
/// check that the two agree).
pub const PROTOCOL: u32 = 2;

/// How long a rogue waits for a frame by default.
pub const WAIT: Duration = Duration::from_secs(30);

/// Frames a rogue may queue before its sends wait for the transport.
const QUEUED: usize = 64;

/// A hello as node `node_id` hosting `unit` sends it, having applied
/// nothing of the parent's feed.
pub fn hello(node_id: &str, unit: &str) -> pb::SyncFrame {
    pb::SyncFrame {
        body: Some(Body::Hello(pb::Hello {
            node_id: node_id.to_owned(),
            unit_id: unit.to_owned(),
            protocol_version: PROTOCOL,
            schema_version: hopluu_model::doc::SCHEMA_VERSION,
            applied_from_you: 0,
            receipts_from_you: 0,
        })),
    }
}

/// A batch numbered `id` carrying `docs`, outside the sender's feed
/// (`from_seq` and `upto_seq` 0, as a resend is).
pub fn batch(id: u64, docs: Vec<pb::DocUpdate>) -> pb::SyncFrame {
    pb::SyncFrame {
        body: Some(Body::Batch(pb::Batch {
            id,
            from_seq: 0,
            upto_seq: 0,
            docs,
        })),
    }
}

/// An update of `doc` carrying automerge `changes`, the sender claiming
/// `heads` (32-byte change hashes) after them.
pub fn changes(doc: &str, heads: Vec<Vec<u8>>, changes: Vec<u8>) -> pb::DocUpdate {
    pb::DocUpdate {
        doc_id: doc.to_owned(),
        heads,
        payload: Some(pb::doc_update::Payload::Changes(changes)),
    }
}

/// How a stream ended.
#[derive(Debug, Clone)]
pub enum End {
    /// The parent sent a refusal (and then closed the stream).
    Refused(pb::Refusal),
    /// The parent closed the stream without a refusal.
    Closed,
    /// The call failed with this status (the transport's, or the parent's
    /// before any session).
    Failed(tonic::Status),
}

/// An open sync stream as a (possibly lying) child.
pub struct Rogue {
    send: mpsc::Sender<pb::SyncFrame>,
    inbound: tonic::Streaming<pb::SyncFrame>,
    next_batch: u64,
    wait: Duration,
    /// Frames received and passed over while waiting for something else
    /// (the parent's own hello and batches, mostly).
    pub skipped: usize,
}

impl std::fmt::Debug for Rogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rogue")
            .field("next_batch", &self.next_batch)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Rogue {
    /// Opens a sync stream on `channel` (connected with the identity the
    /// rogue presents) and sends `first`; nothing is read yet.
    pub async fn open(channel: Channel, first: pb::SyncFrame) -> Result<Rogue> {
        let (send, rx) = mpsc::channel(QUEUED);
        send.send(first).await.context("queueing the first frame")?;
        let inbound = ReplicationServiceClient::new(channel)
            .sync(ReceiverStream::new(rx))
            .await
            .context("opening a sync stream")?
            .into_inner();
        Ok(Rogue {
            send,
            inbound,
            next_batch: 1,
            wait: WAIT,
            skipped: 0,
        })
    }

    /// Opens a stream, says hello as node `node_id` hosting `unit`, and
    /// returns once the parent answered with its own hello; a refusal or
    /// the stream's end is an error naming it.
    pub async fn connect(
        channel: Channel,
        node_id: &str,
        unit: &str,
    ) -> Result<(Rogue, pb::Hello)> {
        let mut rogue = Rogue::open(channel, hello(node_id, unit)).await?;
        match rogue.next().await? {
            Some(pb::SyncFrame {
                body: Some(Body::Hello(h)),
            }) => Ok((rogue, h)),
            Some(pb::SyncFrame {
                body: Some(Body::Refusal(r)),
            }) => bail!(
                "the parent refused the hello of {node_id}: {}: {}",
                r.code,
                r.reason
            ),
            other => bail!("expected the parent's hello, got {other:?}"),
        }
    }

    /// Waits at most `wait` for each frame from now on.
    pub fn with_wait(mut self, wait: Duration) -> Rogue {
        self.wait = wait;
        self
    }

    /// Sends `frame` (waits while the transport holds [`QUEUED`] frames).
    pub async fn send(&self, frame: pb::SyncFrame) -> Result<()> {
        self.send
            .send(frame)
            .await
            .map_err(|_| anyhow!("the stream is closed: the frame was not sent"))
    }

    /// A sender of frames on this stream, for a task that writes while
    /// the test does something else.
    pub fn sender(&self) -> mpsc::Sender<pb::SyncFrame> {
        self.send.clone()
    }

    /// The next frame: `None` once the parent closed the stream; an error
    /// when the call failed or nothing came within the wait.
    pub async fn next(&mut self) -> Result<Option<pb::SyncFrame>> {
        match tokio::time::timeout(self.wait, self.inbound.message()).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(status)) => Err(anyhow!(status).context("the sync stream failed")),
            Err(_) => bail!("no frame from the parent within {:?}", self.wait),
        }
    }

    /// Passes over frames until the stream ends, and says how; an error
    /// only when it does not end within the wait (per frame).
    pub async fn end(&mut self) -> Result<End> {
        loop {
            match tokio::time::timeout(self.wait, self.inbound.message()).await {
                Err(_) => bail!("the stream did not end within {:?}", self.wait),
                Ok(Ok(None)) => return Ok(End::Closed),
                Ok(Err(status)) => return Ok(End::Failed(status)),
                Ok(Ok(Some(pb::SyncFrame {
                    body: Some(Body::Refusal(r)),
                }))) => return Ok(End::Refused(r)),
                Ok(Ok(Some(_))) => self.skipped += 1,
            }
        }
    }

    /// The refusal the stream ends with; an error when it ends otherwise.
    pub async fn refusal(&mut self) -> Result<pb::Refusal> {
        match self.end().await? {
            End::Refused(r) => Ok(r),
            other => bail!("expected a refusal, the stream ended with {other:?}"),
        }
    }

    /// Sends `docs` as the next batch and returns its acknowledgement,
    /// passing over the parent's other frames; a refusal or the stream's
    /// end is an error.
    pub async fn batch(&mut self, docs: Vec<pb::DocUpdate>) -> Result<pb::Ack> {
        let id = self.next_batch;
        self.next_batch += 1;
        self.send(batch(id, docs)).await?;
        self.ack(id).await
    }

    /// The acknowledgement of batch `id`, passing over the parent's other
    /// frames.
    pub async fn ack(&mut self, id: u64) -> Result<pb::Ack> {
        loop {
            match self.next().await? {
                Some(pb::SyncFrame {
                    body: Some(Body::Ack(a)),
                }) if a.batch_id == id => return Ok(a),
                Some(pb::SyncFrame {
                    body: Some(Body::Refusal(r)),
                }) => bail!(
                    "batch {id} was answered with a refusal: {}: {}",
                    r.code,
                    r.reason
                ),
                Some(_) => self.skipped += 1,
                None => bail!("the stream ended before batch {id} was acknowledged"),
            }
        }
    }
}
