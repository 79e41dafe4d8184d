//! The stream of a compaction's progress (`hopluu docs compact`): the
//! compaction runs only while the client reads, one message per
//! [`PROGRESS_EVERY`] documents or per second, and stops with every
//! document whole when the node shuts down or the stream is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hopluu_proto::v1 as pb;
use hopluu_store::docs_admin::Compaction;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::NodeError;
use crate::convert::admin as cv;

/// The stream of a compaction's progress.
pub type CompactStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::CompactProgress, Status>> + Send>>;

/// A compaction reports progress after this many documents (or after
/// [`PROGRESS_INTERVAL`], whichever comes first).
pub const PROGRESS_EVERY: u64 = 25;
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Streams `compaction`'s progress to `caller`; `cancel` stops it (the
/// node shutting down).
pub fn stream(compaction: Compaction, cancel: CancellationToken, caller: String) -> CompactStream {
    let driver = Driver {
        compaction,
        cancel,
        caller,
        started: false,
        finished: false,
        last_sent: Instant::now(),
        sent_at: 0,
    };
    Box::pin(Progress {
        next: Some(Box::pin(advance(driver))),
    })
}

/// A compaction and what the stream has sent of it.
struct Driver {
    compaction: Compaction,
    /// Cancelled when the node shuts down.
    cancel: CancellationToken,
    caller: String,
    started: bool,
    finished: bool,
    last_sent: Instant,
    /// `docs_done` at the last message.
    sent_at: u64,
}

type Item = Result<pb::CompactProgress, Status>;
type Next = Pin<Box<dyn Future<Output = Option<(Item, Driver)>> + Send>>;

/// Compacts documents until the next message is due.
async fn advance(mut d: Driver) -> Option<(Item, Driver)> {
    if d.finished {
        return None;
    }
    if !d.started {
        d.started = true;
        let first = cv::compact_progress(&d.compaction.progress(), false);
        return Some((Ok(first), d));
    }
    loop {
        let step = tokio::select! {
            _ = d.cancel.cancelled() => {
                d.finished = true;
                tracing::info!(caller = %d.caller, progress = ?d.compaction.progress(), "compaction stopped: the node is shutting down");
                return Some((Err(Status::unavailable(
                    "the node is shutting down: compaction stopped with every document whole; run it again",
                )), d));
            }
            step = d.compaction.step() => step,
        };
        let p = d.compaction.progress();
        match step {
            Err(e) => {
                d.finished = true;
                tracing::warn!(caller = %d.caller, progress = ?p, error = %e, "compaction failed");
                return Some((Err(Status::from(NodeError::from(e))), d));
            }
            Ok(false) => {
                d.finished = true;
                tracing::info!(
                    caller = %d.caller,
                    docs = p.docs_done,
                    compacted = p.docs_compacted,
                    skipped = p.docs_skipped,
                    bytes_before = p.bytes_before,
                    bytes_after = p.bytes_after,
                    "compaction done"
                );
                return Some((Ok(cv::compact_progress(&p, true)), d));
            }
            Ok(true) => {
                if p.docs_done - d.sent_at >= PROGRESS_EVERY
                    || d.last_sent.elapsed() >= PROGRESS_INTERVAL
                {
                    d.sent_at = p.docs_done;
                    d.last_sent = Instant::now();
                    return Some((Ok(cv::compact_progress(&p, false)), d));
                }
            }
        }
    }
}

/// The response stream: polls [`advance`] one message at a time, so the
/// compaction runs only while the client reads and stops when the stream
/// is dropped.
struct Progress {
    next: Option<Next>,
}

impl tokio_stream::Stream for Progress {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.next = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some((item, driver))) => {
                self.next = Some(Box::pin(advance(driver)));
                Poll::Ready(Some(item))
            }
        }
    }
}
