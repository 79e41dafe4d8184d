//! Running a [`Session`] over a pair of channels: frames received are
//! handled as they come, batches are sent as soon as the feed moves (a
//! local write is pushed the moment it commits, with no polling interval),
//! acknowledgements are sent ahead of batches, an overdue acknowledgement
//! is waited for on a deadline that follows the peer's pace, and a peer
//! that stays silent or never acknowledges is dropped ([`ack_clock`]), a
//! session quiet for a moment tells the
//! peer its position ([`Session::next_position`]), and what the peer
//! acknowledged is written to the store periodically and at the end (with,
//! towards the peer, a notice of the changes of its that this node holds,
//! when those changed).
//!
//! Everything a session logs is inside a `sync_session` span (INFO) naming
//! this node (`node`, `unit`), its `role` (`dialer` or `acceptor`) and, once
//! the hellos are exchanged, the peer (`peer`, `peer_unit`). Each batch is
//! built, sent and applied inside a `batch` span (DEBUG): its `direction`
//! (`out` or `in`), `id`, `docs`, approximate `bytes` and the stretch of the
//! sender's feed it covers (`from`, `upto`).

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing::field::Empty;

use crate::frame::Frame;
use crate::{Session, SyncError};

mod ack_clock;

use ack_clock::AckClock;

/// Where a session's frames come from: a gRPC stream in the node, a
/// channel in tests.
pub trait Inbound: Send {
    /// The next frame; None when the peer closed the stream.
    fn recv(&mut self) -> impl Future<Output = Option<Result<Frame, SyncError>>> + Send;
}

impl Inbound for mpsc::Receiver<Frame> {
    async fn recv(&mut self) -> Option<Result<Frame, SyncError>> {
        mpsc::Receiver::recv(self).await.map(Ok)
    }
}

/// Timing of the driver.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// The oldest batch in flight with no acknowledgement for this long is
    /// overdue: logged, and counted towards `silent_timeouts`. The least
    /// such deadline: it grows with the time the peer has taken to
    /// acknowledge (a busy receiver's queue), up to 20 times this, and
    /// doubles with each timeout until an acknowledgement comes. A batch
    /// unacknowledged for 20 times this ends the session ([`ack_clock`]).
    pub ack_timeout: Duration,
    /// How often acknowledged heads are written to the store.
    pub flush_every: Duration,
    /// A peer that sends no hello for this long is refused (code
    /// [`HELLO_TIMEOUT`]). Long enough for a slow, lossy link: the hello
    /// comes a round trip or two after the stream opens, and each lost
    /// packet on the way costs a retransmission timeout of a second or
    /// more, doubling when it is lost again.
    pub hello_timeout: Duration,
    /// A peer that reads nothing for this long while frames wait for it
    /// (one that never reads, holding the session open) is dropped.
    pub stall_timeout: Duration,
    /// Acknowledgement timeouts in a row, with nothing at all received
    /// meanwhile, after which the peer is dropped as unresponsive (each
    /// waits twice as long as the one before).
    pub silent_timeouts: u32,
    /// How often a child reports its edges to its parent
    /// ([`Session::report`]).
    pub report_every: Duration,
    /// A session that has sent nothing for this long while the peer's
    /// position is behind tells it ([`Session::next_position`]).
    pub position_after: Duration,
}

/// The refusal code of a peer that sent no hello in time: unlike the other
/// refusals, not a configuration to fix ([`crate::SyncError::is_refusal`]).
pub const HELLO_TIMEOUT: &str = "hello-timeout";

/// Replies (acknowledgements) queued for a peer that is not reading them:
/// past this, frames from it are not read either, until it reads.
const MAX_QUEUED_REPLIES: usize = 64;

impl Default for DriveOptions {
    fn default() -> Self {
        DriveOptions {
            ack_timeout: Duration::from_secs(30),
            flush_every: Duration::from_secs(1),
            hello_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            silent_timeouts: 4,
            report_every: Duration::from_secs(10),
            position_after: Duration::from_secs(1),
        }
    }
}

/// Called after every frame handled, so the caller can publish the
/// session's state (peer, checkpoints, counters).
pub type Observer<'a> = &'a (dyn Fn(&Session) + Send + Sync);

/// Runs `session` until the peer closes, the link fails, either side
/// refuses, or `cancel` fires (then it returns `Ok`). A refusal by this
/// side is sent to the peer before returning.
pub async fn run<I: Inbound>(
    session: &mut Session,
    inbound: &mut I,
    outbound: &mpsc::Sender<Frame>,
    cancel: &CancellationToken,
    opts: &DriveOptions,
    observe: Observer<'_>,
) -> Result<(), SyncError> {
    // The role and the peer are filled in as they become known.
    let span = tracing::info_span!(
        "sync_session",
        node = %session.replica().node_id,
        unit = %session.replica().unit,
        role = Empty,
        peer = Empty,
        peer_unit = Empty,
    );
    async move {
        let result = run_inner(session, inbound, outbound, cancel, opts, observe).await;
        // What the peer acknowledged is worth keeping whatever happened.
        let flushed = session.flush().await;
        if let Err(SyncError::Refuse(r)) = &result {
            // Best effort, and never waiting on a peer that does not read.
            let _ = outbound.try_send(Frame::Refusal(r.clone()));
        }
        result.and(flushed)
    }
    .instrument(span)
    .await
}

/// The `batch` span of `frame` if it is a batch (see the module doc),
/// else no span.
fn batch_span(direction: &'static str, frame: &Frame) -> tracing::Span {
    match frame {
        Frame::Batch(b) => tracing::debug_span!(
            "batch",
            direction,
            id = b.id,
            docs = b.docs.len(),
            bytes = frame.approx_bytes(),
            from = b.from_seq,
            upto = b.upto_seq
        ),
        _ => tracing::Span::none(),
    }
}

async fn run_inner<I: Inbound>(
    session: &mut Session,
    inbound: &mut I,
    outbound: &mpsc::Sender<Frame>,
    cancel: &CancellationToken,
    opts: &DriveOptions,
    observe: Observer<'_>,
) -> Result<(), SyncError> {
    let mut feed = session.replica().store.watch_feed();
    let mut out: VecDeque<Frame> = VecDeque::new();
    let mut replies_out: VecDeque<Frame> = VecDeque::new();
    // A dialer speaks first: its hello is the first frame.
    let hello = session.start().await?;
    let role = if hello.is_some() {
        "dialer"
    } else {
        "acceptor"
    };
    tracing::Span::current().record("role", role);
    if let Some(hello) = hello {
        out.push_back(hello);
    }
    let mut peer_named = false;
    let mut flush = tokio::time::interval(opts.flush_every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report = tokio::time::interval(opts.report_every);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut acks = AckClock::new(opts.ack_timeout);
    let mut send_wait = Instant::now();
    let mut silent = 0u32;
    // Since when the session has been quiet with its position untold.
    let mut untold_since: Option<Instant> = None;
    loop {
        if out.is_empty() && replies_out.is_empty() {
            send_wait = Instant::now();
        }
        if out.is_empty() {
            // The batch's fields are known once it is built.
            let building = tracing::debug_span!("batch", direction = "out");
            if let Some(batch) = session.next_batch().instrument(building).await? {
                if matches!(batch, Frame::Batch(_)) {
                    batch_span("out", &batch).in_scope(|| tracing::debug!("batch built"));
                }
                out.push_back(batch);
            }
        }
        // From the oldest batch handed to the transport: one still queued
        // here waits on the peer's reading, which the stall deadline
        // watches.
        let deadline = if session.awaiting_ack() {
            acks.deadline()
        } else {
            None
        };
        let hello_deadline = session
            .peer()
            .is_none()
            .then_some(started + opts.hello_timeout);
        let stall_deadline =
            (!out.is_empty() || !replies_out.is_empty()).then_some(send_wait + opts.stall_timeout);
        // Only while nothing else goes: a busy feed of documents that are
        // nothing for the peer still costs it one batch per moment, at most.
        untold_since = (out.is_empty() && session.position_untold())
            .then(|| untold_since.unwrap_or_else(Instant::now));
        let position_deadline = untold_since.map(|t| t + opts.position_after);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            frame = inbound.recv(), if replies_out.len() < MAX_QUEUED_REPLIES => {
                let frame = match frame {
                    // The peer closed the stream, or the connection under
                    // it went (a transport that drops a connection whose
                    // keepalive pings went unanswered may end its streams
                    // as if they were closed).
                    None => return Err(SyncError::Link(
                        "the stream ended: closed by the peer, or its connection was lost".into(),
                    )),
                    Some(f) => f?,
                };
                silent = 0;
                let span = batch_span("in", &frame);
                let rewinds = session.stats().rewinds;
                let replies = session.handle(frame).instrument(span.clone()).await?;
                if session.stats().rewinds == rewinds {
                    acks.settled(session.oldest_in_flight(), Instant::now());
                } else {
                    // A batch found lost: what was in flight goes again.
                    acks.forget();
                }
                if let Some(took) = session.stats().last_apply {
                    span.in_scope(|| {
                        tracing::debug!(
                            micros = took.as_micros() as u64,
                            changes = session.stats().last_apply_changes,
                            "batch applied"
                        )
                    });
                }
                if !peer_named && let Some(p) = session.peer() {
                    let current = tracing::Span::current();
                    current.record("peer", p.node_id.as_str());
                    current.record("peer_unit", p.unit.as_str());
                    peer_named = true;
                }
                // Acknowledgements (and a hello's answer) go ahead of
                // batches, since the peer's window waits on them, and in the
                // order their batches came: an ack overtaking an earlier one
                // would make the peer presume that batch lost.
                replies_out.extend(replies);
                session.note_queues(replies_out.len(), out.len());
                observe(session);
            }
            permit = outbound.reserve(), if !out.is_empty() || !replies_out.is_empty() => {
                let permit = permit.map_err(|_| SyncError::Link("closed by the transport".into()))?;
                let frame = match replies_out.pop_front() {
                    Some(r) => r,
                    None => out.pop_front().expect("checked non-empty"),
                };
                if let Frame::Batch(b) = &frame {
                    batch_span("out", &frame).in_scope(|| tracing::debug!("batch sent"));
                    acks.sent(b.id, Instant::now());
                }
                permit.send(frame);
                send_wait = Instant::now();
            }
            changed = feed.changed(), if out.is_empty() && !session.has_pending() => {
                if changed.is_err() {
                    return Err(SyncError::StoreClosed);
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                // Late, not lost (see [`ack_clock`]): nothing is sent again
                // on this stream.
                silent += 1;
                let waited = acks.waited(Instant::now());
                if silent >= opts.silent_timeouts {
                    return Err(SyncError::Link(format!(
                        "no frame from the peer through {silent} acknowledgement timeouts; dropping it"
                    )));
                }
                if waited >= acks.ceiling() {
                    return Err(SyncError::Link(format!(
                        "a batch unacknowledged for {} s; ending the session to resume from the checkpoint",
                        waited.as_secs()
                    )));
                }
                acks.timed_out();
                tracing::warn!(
                    peer = ?session.peer().map(|p| &p.node_id),
                    waited_secs = waited.as_secs(),
                    next_deadline_secs = acks.timeout().as_secs(),
                    "acknowledgement overdue; waiting on (the peer may be busy applying)"
                );
            }
            _ = sleep_until(hello_deadline), if hello_deadline.is_some() => {
                return Err(SyncError::Refuse(crate::frame::Refusal {
                    code: HELLO_TIMEOUT.into(),
                    reason: format!("no hello within {} s", opts.hello_timeout.as_secs()),
                }));
            }
            _ = sleep_until(position_deadline), if position_deadline.is_some() => {
                if let Some(position) = session.next_position() {
                    batch_span("out", &position).in_scope(|| tracing::debug!("position told"));
                    out.push_back(position);
                }
                untold_since = None;
            }
            _ = sleep_until(stall_deadline), if stall_deadline.is_some() => {
                return Err(SyncError::Link(format!(
                    "the peer read nothing for {} s; dropping it",
                    opts.stall_timeout.as_secs()
                )));
            }
            _ = flush.tick() => {
                session.flush().await?;
                // Receipts for a child ride with the flush: once a second
                // at most, and only what is new.
                if let Some(receipts) = session.next_receipts().await? {
                    out.push_back(receipts);
                }
                // So does the notice of what this node holds of the
                // peer's changes, when that changed between batches.
                if let Some(notice) = session.next_notice().await? {
                    out.push_back(notice);
                }
            }
            _ = report.tick(), if session.peer().is_some() => {
                if let Some(r) = session.report() {
                    out.push_back(r);
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
