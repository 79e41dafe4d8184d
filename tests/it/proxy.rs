//! The fault-injecting proxy, between a client and a plain TCP echo server:
//! counting, cuts, silence, delay, loss, truncation, resets, shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hopluu_devcluster::proxy::{FaultProxy, ProxyStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout};

/// How long anything may take before the test counts it as hung.
const PATIENCE: Duration = Duration::from_secs(5);

/// A TCP server that sends `greeting`, then echoes everything back and shuts
/// its write side down at end of stream. Reports how each connection ended.
struct EchoServer {
    addr: SocketAddr,
    ended: mpsc::UnboundedReceiver<io::Result<()>>,
    task: JoinHandle<()>,
}

impl EchoServer {
    async fn start(greeting: &'static [u8]) -> EchoServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, ended) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts the echoes.
            let mut echoes = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let (stream, _) = accepted.unwrap();
                        let report = report.clone();
                        echoes.spawn(async move {
                            let _ = report.send(echo(stream, greeting).await);
                        });
                    }
                    Some(_) = echoes.join_next() => {}
                }
            }
        });
        EchoServer { addr, ended, task }
    }

    /// How the next connection to end ended.
    async fn next_end(&mut self) -> io::Result<()> {
        timeout(PATIENCE, self.ended.recv())
            .await
            .expect("the echo server saw no connection end")
            .unwrap()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(mut stream: TcpStream, greeting: &[u8]) -> io::Result<()> {
    stream.write_all(greeting).await?;
    let (mut read, mut write) = stream.split();
    tokio::io::copy(&mut read, &mut write).await?;
    write.shutdown().await
}

/// `len` bytes that are not all alike.
fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connect hung")
        .unwrap()
}

async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    timeout(PATIENCE, stream.read_exact(&mut buf))
        .await
        .expect("read hung")
        .unwrap();
    buf
}

/// Reads until end of stream or an error, and returns what came and how it
/// ended (`Ok` for end of stream). Panics if the stream stays open.
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut received = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0; 4096];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("the connection was not closed");
        match read {
            Ok(0) => return (received, Ok(())),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => return (received, Err(error)),
        }
    }
}

/// Sends `msg` on a new connection through `addr` and checks it comes back.
async fn round_trip(addr: SocketAddr, msg: &[u8]) {
    let mut stream = connect(addr).await;
    stream.write_all(msg).await.unwrap();
    assert_eq!(read_exactly(&mut stream, msg.len()).await, msg);
}

/// Waits until the proxy's stats satisfy `ok`, and returns them.
async fn wait_for_stats(proxy: &FaultProxy, ok: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = proxy.stats();
        if ok(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never got there: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn bytes_pass_both_ways_and_are_counted_exactly() {
    let mut server = EchoServer::start(b"hello\n").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    assert_eq!(proxy.target(), server.addr);
    assert_ne!(proxy.addr(), server.addr);

    let mut client = connect(proxy.addr()).await;
    assert_eq!(read_exactly(&mut client, 6).await, b"hello\n");

    // More than a chunk, written and read back concurrently.
    let big = message(100_000);
    let (mut read, mut write) = client.split();
    let mut echoed = vec![0; big.len()];
    let (written, echoed_back) = timeout(PATIENCE, async {
        tokio::join!(write.write_all(&big), read.read_exact(&mut echoed))
    })
    .await
    .expect("echo hung");
    written.unwrap();
    echoed_back.unwrap();
    assert!(echoed == big, "the echo came back altered");

    client.write_all(b"tail").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"tail");
    let stats = proxy.stats();
    assert_eq!(stats.connections_open, 1, "{stats:?}");

    // Half-close: the server sees the end of stream and ends its side in turn.
    client.shutdown().await.unwrap();
    let (rest, end) = read_until_closed(&mut client).await;
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    end.unwrap();
    server.next_end().await.unwrap();

    let stats = wait_for_stats(&proxy, |s| s.connections_open == 0).await;
    assert_eq!(
        stats,
        ProxyStats {
            client_to_server_bytes: 100_004,
            server_to_client_bytes: 100_010,
            connections_accepted: 1,
            connections_refused: 0,
            connections_open: 0,
        }
    );
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn cut_closes_connections_and_refuses_new_ones_until_healed() {
    let mut server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    assert!(!proxy.is_cut());

    let mut client = connect(proxy.addr()).await;
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");

    // The connection is idle: the cut must still close it, on both sides.
    proxy.cut();
    assert!(proxy.is_cut());
    let (received, _) = read_until_closed(&mut client).await;
    assert!(received.is_empty(), "unexpected bytes: {received:?}");
    server.next_end().await.unwrap();
    wait_for_stats(&proxy, |s| s.connections_open == 0).await;

    // New connections are closed at once, and never reach the server.
    for _ in 0..3 {
        match timeout(PATIENCE, TcpStream::connect(proxy.addr())).await {
            Err(_) => panic!("connect hung while the link was cut"),
            Ok(Err(_)) => {}
            Ok(Ok(mut refused)) => {
                let _ = refused.write_all(b"ping").await;
                let (received, _) = read_until_closed(&mut refused).await;
                assert!(received.is_empty(), "a cut link answered: {received:?}");
            }
        }
    }
    let stats = wait_for_stats(&proxy, |s| s.connections_refused == 3).await;
    assert_eq!(stats.connections_accepted, 4, "{stats:?}");
    assert_eq!(stats.connections_open, 0, "{stats:?}");
    assert_eq!(stats.client_to_server_bytes, 4, "{stats:?}");

    proxy.heal();
    assert!(!proxy.is_cut());
    round_trip(proxy.addr(), b"healed").await;
    let stats = proxy.stats();
    assert_eq!(stats.connections_refused, 3, "{stats:?}");
    assert_eq!(stats.client_to_server_bytes, 10, "{stats:?}");
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn delay_adds_latency_both_ways_without_reordering() {
    let server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;

    let delay = Duration::from_millis(150);
    proxy.set_delay(delay);
    let started = Instant::now();
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= 2 * delay,
        "round trip took {elapsed:?}, less than twice {delay:?}"
    );

    // Chunks sent under a long delay, then more with none: the later ones
    // must still come after the earlier ones.
    proxy.set_delay(Duration::from_millis(100));
    for byte in 0..10u8 {
        client.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    proxy.set_delay(Duration::ZERO);
    for byte in 10..20u8 {
        client.write_all(&[byte]).await.unwrap();
    }
    let expected: Vec<u8> = (0..20).collect();
    assert_eq!(read_exactly(&mut client, 20).await, expected);
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn silence_holds_everything_and_closes_nothing_until_healed() {
    let mut server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;
    client.write_all(b"warm").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"warm");

    proxy.silence();
    assert!(proxy.is_silent() && !proxy.is_cut());
    client.write_all(b"lost?").await.unwrap();
    // Nothing comes back, and the connection is not closed either: no
    // FIN, no RST, only silence.
    let mut buf = [0; 16];
    let read = tokio::time::timeout(Duration::from_millis(500), client.read(&mut buf)).await;
    assert!(read.is_err(), "a silent link answered: {read:?}");
    // Nor does a new connection reach the server, or a close pass.
    let mut late = connect(proxy.addr()).await;
    late.write_all(b"late").await.unwrap();
    client.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.ended.try_recv().is_err(),
        "the server saw an end through a silent link"
    );
    let stats = proxy.stats();
    assert_eq!(stats.client_to_server_bytes, 4, "{stats:?}");
    assert_eq!(stats.connections_open, 2, "{stats:?}");

    // Healed: what waited goes through, in order, and so does the close.
    proxy.heal();
    assert!(!proxy.is_silent());
    assert_eq!(read_exactly(&mut client, 5).await, b"lost?");
    let (rest, end) = read_until_closed(&mut client).await;
    assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    end.unwrap();
    server.next_end().await.unwrap();
    assert_eq!(read_exactly(&mut late, 4).await, b"late");
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn loss_makes_chunks_late_but_loses_and_reorders_nothing() {
    let server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;
    // A third of the chunks lost at least once: each loss costs at least
    // the retransmission timeout (200 ms with no delay).
    proxy.set_loss(0.3, 7);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..6u8 {
        let round = Instant::now();
        let msg = message(100 + usize::from(i));
        client.write_all(&msg).await.unwrap();
        let echoed = timeout(Duration::from_secs(60), async {
            let mut buf = vec![0; msg.len()];
            client.read_exact(&mut buf).await.map(|_| buf)
        })
        .await
        .expect("a lossy link lost a chunk")
        .unwrap();
        assert!(echoed == msg, "round {i} came back altered");
        slowest = slowest.max(round.elapsed());
    }
    assert!(
        slowest >= Duration::from_millis(200),
        "no round trip was slowed by a loss (slowest {slowest:?})"
    );
    // Off again: a round trip without retransmissions.
    proxy.set_loss(0.0, 0);
    round_trip(proxy.addr(), b"whole").await;
    println!("loss: 6 round trips in {:?}", started.elapsed());
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn drop_mid_message_forwards_half_a_chunk_then_closes() {
    let server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;
    client.write_all(b"warm").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"warm");

    proxy.drop_mid_message();
    let msg = message(1000);
    client.write_all(&msg).await.unwrap();
    let (received, _) = read_until_closed(&mut client).await;
    assert!(received.len() < msg.len(), "the whole message came back");
    assert_eq!(
        received,
        msg[..received.len()],
        "what came back is not a prefix"
    );
    let stats = wait_for_stats(&proxy, |s| s.connections_open == 0).await;
    assert!(stats.client_to_server_bytes < 4 + 1000, "{stats:?}");

    // One-shot: the next connection is whole again.
    round_trip(proxy.addr(), &msg).await;
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn reset_aborts_connections_but_accepts_new_ones() {
    let mut server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");

    proxy.reset();
    let (received, end) = read_until_closed(&mut client).await;
    assert!(received.is_empty(), "unexpected bytes: {received:?}");
    let kind = end
        .expect_err("the client saw a clean end of stream, not a reset")
        .kind();
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    let server_end = server.next_end().await;
    let kind = server_end
        .expect_err("the server saw a clean end of stream, not a reset")
        .kind();
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
    wait_for_stats(&proxy, |s| s.connections_open == 0).await;

    assert!(!proxy.is_cut());
    round_trip(proxy.addr(), b"after the reset").await;
    let stats = proxy.stats();
    assert_eq!(stats.connections_accepted, 2, "{stats:?}");
    assert_eq!(stats.connections_refused, 0, "{stats:?}");
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_listening() {
    let server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let addr = proxy.addr();

    // Dropping one handle of several changes nothing.
    drop(proxy.clone());
    let mut client = connect(addr).await;
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");

    let other = proxy.clone();
    timeout(PATIENCE, proxy.shutdown())
        .await
        .expect("shutdown hung");
    assert_eq!(other.stats().connections_open, 0);
    let (received, _) = read_until_closed(&mut client).await;
    assert!(received.is_empty(), "unexpected bytes: {received:?}");
    let refused = timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connect hung");
    assert!(refused.is_err(), "the proxy still listens after shutdown");
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_proxy() {
    let server = EchoServer::start(b"").await;
    let proxy = FaultProxy::start(server.addr).await.unwrap();
    let mut client = connect(proxy.addr()).await;
    client.write_all(b"ping").await.unwrap();
    assert_eq!(read_exactly(&mut client, 4).await, b"ping");

    drop(proxy);
    let (received, _) = read_until_closed(&mut client).await;
    assert!(received.is_empty(), "unexpected bytes: {received:?}");
}
