//! The dialer: one session open to the first reachable upstream, with
//! backoff, jitter and failover (see the module doc of [`super`]).

use std::sync::Arc;
use std::time::Duration;

use hopluu_proto::v1 as pb;
use hopluu_sync::drive::{self};
use hopluu_sync::frame::Frame;
use hopluu_sync::{Role, Session, SyncError};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::transport::Channel;

use crate::config::Upstream;
use crate::convert::frames::*;
use crate::tls::Security;
use crate::tls::error_chain;

use super::accept::GrpcInbound;
use super::*;

/// What one dial of an upstream leaves for the next.
#[derive(Default)]
pub(super) struct Link {
    /// The upstream the connection goes to.
    upstream: Option<Upstream>,
    /// The connection, kept when a session failed before its hellos were
    /// exchanged (no hello in time on a slow link, a stream reset): the
    /// next try opens a new stream on it rather than paying for a TCP
    /// and TLS handshake again on the same slow link. If the connection
    /// itself died meanwhile, it is made again.
    channel: Option<Channel>,
    /// Whether the last dial established a session.
    established: bool,
}

impl Replication {
    /// A channel endpoint to `up`: over TLS, verifying that the peer is
    /// node `up.node_id` whatever address is dialled.
    pub(super) fn endpoint(&self, up: &Upstream) -> Result<tonic::transport::Endpoint, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(up.address.clone())
            .map_err(|e| format!("{}: {e}", up.address))?;
        match &self.security {
            Security::Tls(tls) => {
                let config = tls.client_config(&up.node_id).map_err(|e| e.to_string())?;
                endpoint.tls_config(config).map_err(|e| error_chain(&e))
            }
            Security::InsecurePlaintext => Ok(endpoint),
        }
    }

    /// Keeps one session open to the first reachable upstream, parent
    /// first: after `failover_after` failed attempts on one, the next is
    /// tried; every round starts again from the parent. A session with a
    /// fallback lasts only while the parent is unreachable: the parent is
    /// probed meanwhile, and once it answers the session ends (gracefully)
    /// and the parent is dialled again. Documents only the parent holds
    /// (private rosters, which stay below the national node) reach it only
    /// over a session with it.
    pub(super) async fn dial_loop(self: Arc<Self>) {
        let min = Duration::from_millis(self.config.backoff_min_ms);
        let max = Duration::from_millis(self.config.backoff_max_ms);
        let mut backoff = min;
        let mut index = 0usize;
        let mut failures = 0u32;
        let mut link = Link::default();
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let mut up = self.config.upstreams[index].clone();
            if index == 0
                && let Some(new) = self.rehomed_parent().await
            {
                // A decision moved this node's unit: its parent is now
                // another node's unit, and the hosting data say where.
                tracing::info!(configured = %up.node_id, new_parent = %new.node_id, "the configured parent no longer hosts this node's place: dialling the new parent's node");
                up = new;
            }
            let started = tokio::time::Instant::now();
            let session = self.cancel.child_token();
            let probe = async {
                if index > 0 {
                    self.until_parent_answers().await;
                    tracing::info!(parent = %self.config.upstreams[0].node_id, fallback = %up.node_id, "the parent answers again: leaving the fallback");
                    session.cancel();
                }
                std::future::pending::<()>().await
            };
            let result = tokio::select! {
                r = self.dial_once(&up, &session, Role::Dialer { expect: up.node_id.clone() }, &mut link) => r,
                () = probe => unreachable!("the probe never ends"),
            };
            if self.cancel.is_cancelled() {
                return;
            }
            if session.is_cancelled() {
                // Back to the parent at once.
                backoff = min;
                failures = 0;
                index = 0;
                continue;
            }
            let refused = matches!(&result, Err(e) if e.is_refusal());
            match &result {
                Ok(()) => tracing::info!(peer = %up.node_id, "sync session ended"),
                Err(e) => {
                    tracing::warn!(peer = %up.node_id, address = %up.address, error = %e, "sync session failed");
                    // Also a dial that never reached a session (refused
                    // certificate, unreachable address) shows on the edge.
                    self.set_edge(&up.node_id, |edge| {
                        edge.direction = "upstream";
                        edge.address = up.address.clone();
                        edge.failed(e.to_string(), self.app.clock.now_millis());
                    });
                }
            }
            // A session that ran for a while was a success: start over
            // from the parent with a short wait. (A dial that waited long
            // for a hello that never came was not.)
            if link.established && started.elapsed() > Duration::from_secs(30) {
                backoff = min;
                failures = 0;
                index = 0;
            } else {
                failures += 1;
                backoff = if refused { max } else { (backoff * 2).min(max) };
                if failures >= self.config.failover_after {
                    failures = 0;
                    index = (index + 1) % self.config.upstreams.len();
                    if index == 0 {
                        backoff = backoff.max(min);
                    }
                }
            }
            // Full jitter in [backoff/2, backoff].
            let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {
                    tracing::info!("dialling now, as an administrator asked");
                    backoff = min;
                    failures = 0;
                    index = 0;
                }
            }
        }
    }

    /// Returns once the parent (the first upstream) answers a health check,
    /// probing every `backoff_max_ms` (at least every second).
    async fn until_parent_answers(&self) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let parent = &self.config.upstreams[0];
        let every = Duration::from_millis(self.config.backoff_max_ms).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let probe = async {
                let channel = self
                    .endpoint(parent)
                    .ok()?
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .ok()?;
                let r = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: "hopluu.v1.ReplicationService".into(),
                    })
                    .await
                    .ok()?;
                Some(r.into_inner().status == ServingStatus::Serving as i32)
            };
            if let Ok(Some(true)) = tokio::time::timeout(Duration::from_secs(10), probe).await {
                return;
            }
        }
    }

    /// One session with `up` in `role` (an upstream, or the new host of a
    /// handover), until it ends or `cancel`. `link` is what the dial
    /// before left: its connection is used again if it goes to `up`.
    pub(super) async fn dial_once(
        self: &Arc<Self>,
        up: &Upstream,
        cancel: &CancellationToken,
        role: Role,
        link: &mut Link,
    ) -> Result<(), SyncError> {
        let direction = match role {
            Role::HandoverTo { .. } => "handover",
            _ => "upstream",
        };
        let failed = |e: &dyn std::fmt::Display| SyncError::Link(e.to_string());
        link.established = false;
        let kept = link
            .channel
            .take()
            .filter(|_| link.upstream.as_ref() == Some(up));
        link.upstream = Some(up.clone());
        let opening = tokio::time::Instant::now();
        let channel = match kept {
            Some(channel) => channel,
            None => {
                let keepalive = self.keepalive();
                let endpoint = self
                    .endpoint(up)
                    .map_err(|e| failed(&e))?
                    .connect_timeout(Duration::from_secs(10))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(keepalive.interval)
                    .keep_alive_timeout(keepalive.timeout)
                    .keep_alive_while_idle(true);
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    c = endpoint.connect() => c.map_err(|e| failed(&error_chain(&e)))?,
                }
            }
        };
        let max = self.app_max_message_bytes();
        let mut client =
            pb::replication_service_client::ReplicationServiceClient::new(channel.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
        let (tx, rx) = mpsc::channel::<Frame>(OUTBOUND_FRAMES);
        let outbound = ReceiverStream::new(rx).map(to_pb);
        let response = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = client.sync(Request::new(outbound)) => r.map_err(|s| failed(&s.message()))?,
        };
        // The hello comes a round trip or two after the stream opens: on a
        // link slow enough that opening it took a good part of the hello
        // deadline, wait in proportion.
        let mut opts = self.drive_options();
        opts.hello_timeout = opts.hello_timeout.max(opening.elapsed() * 4);
        let mut inbound = GrpcInbound(response.into_inner());
        let mut session = Session::new(self.replica(), role).with_reports(self.clone());
        self.set_edge(&up.node_id, |e| {
            e.direction = direction;
            e.address = up.address.clone();
        });
        // Connected once the hellos are exchanged, as a child's session is
        // at its parent: a stream whose peer never answers is no session.
        let observe = |s: &Session| {
            if s.peer().is_some() {
                self.set_edge(&up.node_id, |e| {
                    if !e.connected {
                        e.connected = true;
                        e.since_millis = self.app.clock.now_millis();
                        e.sessions += 1;
                    }
                });
            }
            self.observe(s)
        };
        let result = drive::run(&mut session, &mut inbound, &tx, cancel, &opts, &observe).await;
        link.established = session.peer().is_some();
        self.set_edge(&up.node_id, |e| {
            let now = self.app.clock.now_millis();
            if e.connected {
                e.connected = false;
                e.since_millis = now;
            }
            if let Err(err) = &result {
                e.failed(err.to_string(), now);
            }
        });
        if !link.established && !result.as_ref().is_err_and(SyncError::is_refusal) {
            link.channel = Some(channel);
        }
        result
    }

    pub(super) fn app_max_message_bytes(&self) -> usize {
        // Large enough for a full batch plus one large document.
        (self.config.batch_bytes * 4).max(4 << 20)
    }
}
