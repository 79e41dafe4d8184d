//! A child's session, served: each hello checked against its certificate
//! and the allowed children before the session sees it.

use std::pin::Pin;
use std::sync::Arc;

use hopluu_proto::v1 as pb;
use hopluu_sync::drive::{self, Inbound};
use hopluu_sync::frame::{Frame, Refusal};
use hopluu_sync::{Role, Session, SyncError};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::convert::frames::*;
use crate::tls::Identity;

use super::*;

/// The stream a `Sync` call answers with.
pub type ReplicationStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SyncFrame, Status>> + Send + 'static>>;

impl Replication {
    /// Serves a child's session, from the peer `who` (its certificate's
    /// identity): runs it on a tracked task and streams its frames back.
    pub fn accept(
        self: &Arc<Self>,
        inbound: Streaming<pb::SyncFrame>,
        remote: Option<std::net::SocketAddr>,
        who: Identity,
    ) -> ReplicationStream {
        let (tx, rx) = mpsc::channel::<Frame>(OUTBOUND_FRAMES);
        let this = self.clone();
        let cancel = self.cancel.child_token();
        let session_id = SESSION_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.tracker.spawn(async move {
            let mut inbound = Admitted {
                inner: GrpcInbound(inbound),
                replication: this.clone(),
                who: who.clone(),
                session: (session_id, cancel.clone()),
                registered: None,
                pending: None,
            };
            let mut session = Session::new(this.replica(), Role::Acceptor).with_reports(this.clone());
            let address = remote.map(|a| a.to_string()).unwrap_or_default();
            let observe = |s: &Session| {
                if let Some(p) = s.peer() {
                    this.set_edge(&p.node_id, |e| {
                        if !e.connected {
                            e.direction = if s.is_handover() { "handover" } else { "downstream" };
                            e.address = address.clone();
                            e.connected = true;
                            e.since_millis = this.app.clock.now_millis();
                            e.sessions += 1;
                        }
                    });
                }
                this.observe(s);
            };
            let result = drive::run(
                &mut session,
                &mut inbound,
                &tx,
                &cancel,
                &this.drive_options(),
                &observe,
            )
            .await;
            if let Some(peer) = &inbound.registered {
                this.end_session(peer, session_id);
            }
            if let Some(peer) = session.peer() {
                this.set_edge(&peer.node_id, |e| {
                    e.connected = false;
                    e.since_millis = this.app.clock.now_millis();
                    if let Err(err) = &result {
                        let at = e.since_millis;
                        e.failed(err.to_string(), at);
                    }
                });
            }
            match result {
                Ok(()) => tracing::info!(peer = ?session.peer().map(|p| &p.node_id), identity = %who, "sync session ended"),
                Err(e @ SyncError::Refuse(_)) => tracing::warn!(
                    identity = %who,
                    remote = %address,
                    error = %e,
                    "refused a sync session"
                ),
                Err(e) => tracing::warn!(peer = ?session.peer().map(|p| &p.node_id), identity = %who, error = %e, "sync session failed"),
            }
        });
        Box::pin(ReceiverStream::new(rx).map(|f| Ok(to_pb(f))))
    }
}

/// A child's frames, each hello checked against its certificate and the
/// children this node allows ([`Replication::admit`]) before the session
/// sees it.
struct Admitted {
    inner: GrpcInbound,
    replication: Arc<Replication>,
    who: Identity,
    /// This session's id and cancellation, registered once its hello passes.
    session: (u64, CancellationToken),
    registered: Option<String>,
    /// A hello taken from the stream and still being judged.
    pending: Option<Frame>,
}

impl Inbound for Admitted {
    /// Cancel-safe, as the driver needs (it polls `recv` in a `select!`
    /// and drops it when something else is ready first): a hello taken
    /// from the stream is kept in `pending` while the hosting data are
    /// looked up, and judged again by the next call if this one is
    /// dropped meanwhile (regression: the hello was lost, and the peer
    /// refused with "no hello within 10 s").
    async fn recv(&mut self) -> Option<Result<Frame, SyncError>> {
        let frame = match self.pending.take() {
            Some(f) => Some(Ok(f)),
            None => self.inner.recv().await,
        };
        if let Some(Ok(Frame::Hello(hello))) = &frame {
            if let Err(refusal) = self.replication.admit(&self.who, hello) {
                // Not a configured child: an old host handing documents
                // over to this node is let in (the session checks its
                // seals again at the hello), and so is a child by the
                // hosting data (a decision moved its unit here).
                self.pending = Some(Frame::Hello(hello.clone()));
                let handover = refusal.code == "unknown-peer"
                    && (self.replication.hands_over_here(&hello.node_id).await
                        || self
                            .replication
                            .child_by_record(&hello.node_id, &hello.unit)
                            .await);
                self.pending = None;
                if !handover {
                    return Some(Err(SyncError::Refuse(refusal)));
                }
            }
            if self.registered.is_none() {
                if let Err(refusal) = self
                    .replication
                    .begin_session(&hello.node_id, self.session.clone())
                {
                    return Some(Err(SyncError::Refuse(refusal)));
                }
                self.registered = Some(hello.node_id.clone());
            }
        }
        frame
    }
}

pub(super) struct GrpcInbound(pub(super) Streaming<pb::SyncFrame>);

impl Inbound for GrpcInbound {
    async fn recv(&mut self) -> Option<Result<Frame, SyncError>> {
        match self.0.message().await {
            Ok(None) => None,
            Ok(Some(f)) => Some(from_pb(f)),
            // Bytes that are not a frame: the peer is told so before the
            // session ends (tonic reports a decode failure as INTERNAL).
            Err(s) if s.code() == tonic::Code::Internal && s.message().contains("decode") => {
                Some(Err(SyncError::Refuse(Refusal {
                    code: "protocol".into(),
                    reason: format!("a frame that does not decode: {}", s.message()),
                })))
            }
            Err(s) => Some(Err(SyncError::Link(link_error(&s)))),
        }
    }
}

/// What the transport says when the connection under a stream went: its
/// keepalive pings unanswered (the dialler's end names no cause but the
/// pipe it closed), or a reset.
const CONNECTION_LOST: [&str; 3] = ["keep-alive timed out", "broken pipe", "connection reset"];

/// A stream that failed, as its edge's error: the status and what caused
/// it, said plainly when the connection was lost (a link gone silent,
/// packets dropped with no FIN or RST, is found by keepalive pings).
fn link_error(s: &Status) -> String {
    let mut text = format!("{}: {}", s.code(), s.message());
    let mut source = std::error::Error::source(s);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    if CONNECTION_LOST.iter().any(|lost| text.contains(lost)) {
        format!(
            "the connection was lost: the link went silent (keepalive pings unanswered) or was cut ({text})"
        )
    } else {
        text
    }
}
