//! The driver against hostile peers: one that never says hello, one that
//! never reads (a slowloris holding the session and its memory), one that
//! goes silent. Each is dropped with a clear error after its timeout, and
//! the driver's queues stay bounded meanwhile.

use std::time::Duration;

use hopluu_sync::drive::{self, DriveOptions};
use hopluu_sync::frame::{Ack, DocHeads, Frame};
use hopluu_sync::{Limits, Role, Session, SyncError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::fixtures;
use crate::handmade::{author, hello, node, replica};

fn quick() -> DriveOptions {
    DriveOptions {
        ack_timeout: Duration::from_millis(150),
        flush_every: Duration::from_millis(50),
        hello_timeout: Duration::from_millis(200),
        stall_timeout: Duration::from_millis(300),
        silent_timeouts: 3,
        report_every: Duration::from_secs(10),
        position_after: Duration::from_millis(100),
    }
}

/// p1's session with c1, fed c1's hello: what the test sends in, what
/// the session sends out.
struct Wired {
    s: Session,
    to_session: mpsc::Sender<Frame>,
    inbound: mpsc::Receiver<Frame>,
    outbound: mpsc::Sender<Frame>,
    seen: mpsc::Receiver<Frame>,
}

async fn wired(p1: &hopluu_store::Store, limits: Limits, out_capacity: usize) -> Wired {
    let s = Session::new(replica(p1, "p1", limits), Role::Acceptor);
    let (to_session, inbound) = mpsc::channel::<Frame>(64);
    let (outbound, seen) = mpsc::channel::<Frame>(out_capacity);
    to_session.send(hello("c1")).await.unwrap();
    Wired {
        s,
        to_session,
        inbound,
        outbound,
        seen,
    }
}

async fn drive(
    session: &mut Session,
    inbound: &mut mpsc::Receiver<Frame>,
    outbound: &mpsc::Sender<Frame>,
) -> Result<(), SyncError> {
    let cancel = CancellationToken::new();
    let opts = quick();
    let run = drive::run(session, inbound, outbound, &cancel, &opts, &|_| {});
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the driver gives up on its own")
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_without_a_hello_is_refused() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let mut s = Session::new(replica(&p1, "p1", Limits::default()), Role::Acceptor);
    let (_keep, mut inbound) = mpsc::channel::<Frame>(4);
    let (outbound, mut seen) = mpsc::channel::<Frame>(4);
    match drive(&mut s, &mut inbound, &outbound).await {
        Err(SyncError::Refuse(r)) => {
            assert_eq!(r.code, drive::HELLO_TIMEOUT);
            assert!(r.reason.contains("no hello"), "{}", r.reason);
            // A slow link, not a configuration to fix: worth another try.
            assert!(!SyncError::Refuse(r).is_refusal());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(seen.try_recv(), Ok(Frame::Refusal(_))));
}

/// The child says hello and never reads: the province has its whole
/// subtree to send, the transport's window (here a channel of one frame)
/// fills, and the session is dropped after the stall timeout.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_never_reads_is_dropped() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let limits = Limits {
        batch_docs: 1,
        ..Limits::default()
    };
    let Wired {
        mut s,
        to_session: _keep,
        mut inbound,
        outbound,
        seen: _never_read,
    } = wired(&p1, limits, 1).await;
    let started = std::time::Instant::now();
    match drive(&mut s, &mut inbound, &outbound).await {
        Err(SyncError::Link(reason)) => assert!(reason.contains("read nothing"), "{reason}"),
        other => panic!("expected the peer dropped, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The parent receives hello and batches, but the child never
/// acknowledges or sends anything again: dropped after the silent
/// timeouts, having sent nothing twice meanwhile (on a reliable stream a
/// batch is late, never lost; the next session resumes from the
/// checkpoint).
#[tokio::test(flavor = "current_thread")]
async fn a_silent_peer_is_dropped() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let Wired {
        mut s,
        to_session: _keep,
        mut inbound,
        outbound,
        mut seen,
    } = wired(&p1, Limits::default(), 1024).await;
    let started = std::time::Instant::now();
    match drive(&mut s, &mut inbound, &outbound).await {
        Err(SyncError::Link(reason)) => assert!(reason.contains("timeouts"), "{reason}"),
        other => panic!("expected the peer dropped, got {other:?}"),
    }
    // Deadlines 150, 300 and 600 ms after the first batch went: each
    // timeout doubles the wait.
    assert!(started.elapsed() >= Duration::from_millis(600));
    let mut docs = Vec::new();
    while let Ok(f) = seen.try_recv() {
        if let Frame::Batch(b) = f {
            docs.extend(b.docs.into_iter().map(|u| u.doc));
        }
    }
    assert!(!docs.is_empty(), "the subtree was sent");
    let unique: std::collections::BTreeSet<&String> = docs.iter().collect();
    assert_eq!(unique.len(), docs.len(), "no document sent twice: {docs:?}");
    assert_eq!(s.stats().rewinds, 0);
}

/// The peer reads and talks (it sends its own position every moment) but
/// never acknowledges: the session ends once the oldest batch has waited
/// twenty times the timeout.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_talks_but_never_acknowledges_is_dropped() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    let Wired {
        mut s,
        to_session,
        mut inbound,
        outbound,
        mut seen,
    } = wired(&p1, Limits::default(), 1024).await;
    let chatter = tokio::spawn(async move {
        // An empty batch of the peer's (a position) every 50 ms.
        for id in 1u64.. {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let frame = Frame::Batch(hopluu_sync::frame::Batch {
                id,
                from_seq: 0,
                upto_seq: 0,
                docs: Vec::new(),
            });
            if to_session.send(frame).await.is_err() {
                break;
            }
            while seen.try_recv().is_ok() {}
        }
    });
    let opts = DriveOptions {
        ack_timeout: Duration::from_millis(20),
        silent_timeouts: 100,
        ..quick()
    };
    let cancel = CancellationToken::new();
    let started = std::time::Instant::now();
    let run = drive::run(&mut s, &mut inbound, &outbound, &cancel, &opts, &|_| {});
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Err(SyncError::Link(reason))) => {
            assert!(reason.contains("unacknowledged for"), "{reason}")
        }
        other => panic!("expected the session ended, got {other:?}"),
    }
    // 20 * 20 ms.
    assert!(started.elapsed() >= Duration::from_millis(400));
    chatter.abort();
}

/// The peer applies each batch more slowly than the one before, up to
/// more than three times the configured acknowledgement timeout (a
/// national node taking in every province at once): the deadline follows
/// its pace, so nothing is sent again and every batch is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_acknowledges_ever_later_is_not_sent_anything_again() {
    let dir = fixtures::tempdir();
    let p1 = node(&dir, "p1").await;
    for i in 0..12 {
        let g = format!("g1{i:02}");
        fixtures::create_unit(&p1, &author("c1"), &g, &g, "grassroots", Some("c1"))
            .await
            .unwrap();
    }
    let limits = Limits {
        batch_docs: 1,
        in_flight: 1,
        ..Limits::default()
    };
    let Wired {
        mut s,
        to_session,
        mut inbound,
        outbound,
        seen: mut from_session,
    } = wired(&p1, limits, 64).await;
    let floor = Duration::from_millis(300);
    // The peer: each batch acknowledged 80 ms later than the one before,
    // from 100 ms, with the heads the batch carried.
    let peer = tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        let mut acked = 0usize;
        while let Some(frame) = from_session.recv().await {
            let Frame::Batch(b) = frame else { continue };
            tokio::time::sleep(delay).await;
            delay += Duration::from_millis(80);
            let docs = b
                .docs
                .iter()
                .map(|u| DocHeads {
                    doc: u.doc.clone(),
                    heads: u.heads.clone(),
                    rejected: String::new(),
                    quarantined: Vec::new(),
                })
                .collect();
            let ack = Ack {
                batch: b.id,
                applied_upto: b.upto_seq,
                docs,
                at: 0,
                held: Default::default(),
            };
            if to_session.send(Frame::Ack(ack)).await.is_err() {
                break;
            }
            acked += 1;
        }
        (acked, delay)
    });
    let cancel = CancellationToken::new();
    let opts = DriveOptions {
        ack_timeout: floor,
        // Told once, at the end: a position is a batch to acknowledge too.
        position_after: Duration::from_secs(60),
        ..quick()
    };
    // Twelve batches acknowledged, the last about 1 s after it was sent.
    let stop = cancel.clone();
    let observe = |s: &Session| {
        if !s.awaiting_ack() && s.stats().batches_acked >= 12 {
            stop.cancel();
        }
    };
    let run = drive::run(&mut s, &mut inbound, &outbound, &cancel, &opts, &observe);
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("every batch acknowledged")
        .unwrap();
    drop(outbound);
    let (acked, delay) = peer.await.unwrap();
    assert!(
        delay > floor * 3,
        "the last acknowledgement came after {delay:?}"
    );
    assert_eq!(s.stats().rewinds, 0, "nothing sent again");
    assert!(acked >= 12, "{acked} batches acknowledged");
}
