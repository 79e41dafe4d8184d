//! A fault-injecting TCP proxy for end-to-end tests.
//!
//! Replication has to survive a bad network: links that go down, links that
//! are slow, connections that die in the middle of an HTTP/2 frame, peers that
//! vanish with a TCP reset. Loopback never does any of that on its own, so an
//! end-to-end test puts a [`FaultProxy`] between two real nodes (one node
//! dials the proxy's [`addr`](FaultProxy::addr) instead of the other node's)
//! and breaks the link on command:
//!
//! - [`cut`](FaultProxy::cut) / [`heal`](FaultProxy::heal): link down (open
//!   connections closed, new ones refused) and up again;
//! - [`silence`](FaultProxy::silence): link down without a word: nothing
//!   passes and nothing is closed (no FIN, no RST), as when a cable is
//!   pulled; [`heal`](FaultProxy::heal) lets what waited through;
//! - [`set_delay`](FaultProxy::set_delay): added one-way latency, both ways;
//! - [`set_loss`](FaultProxy::set_loss): a lossy link as TCP makes of it:
//!   a lost chunk arrives after retransmission timeouts, and whatever
//!   follows it waits behind it;
//! - [`drop_mid_message`](FaultProxy::drop_mid_message): the next chunk is
//!   forwarded only in half, then its connection is closed;
//! - [`reset`](FaultProxy::reset): every open connection aborted with a RST.
//!
//! The proxy knows nothing of HTTP/2 or gRPC: it forwards bytes chunk by
//! chunk, as they are read, and counts them ([`stats`](FaultProxy::stats)).
//!
//! Every task it spawns is tracked; [`shutdown`](FaultProxy::shutdown) waits
//! for all of them, and dropping the last handle cancels them.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, trace, warn};

/// Size of the buffer each direction reads into: the largest chunk forwarded.
const CHUNK: usize = 16 * 1024;

/// Chunks one direction may hold while they wait out the delay (back-pressure
/// beyond that).
const QUEUE: usize = 64;

/// What went through a [`FaultProxy`] since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyStats {
    /// Bytes written to the target (the server), summed over all connections.
    pub client_to_server_bytes: u64,
    /// Bytes written back to the clients, summed over all connections.
    pub server_to_client_bytes: u64,
    /// Connections accepted on the listening socket, including refused ones.
    pub connections_accepted: u64,
    /// Accepted connections closed at once because the link was cut.
    pub connections_refused: u64,
    /// Connections being forwarded (or connecting to the target) right now.
    pub connections_open: u64,
}

/// A TCP proxy from [`addr`](Self::addr) to a target address whose link the
/// test breaks on command.
///
/// Cloning gives another handle to the same proxy. The proxy runs until
/// [`shutdown`](Self::shutdown) is called on any handle, or until the last
/// handle is dropped (then its tasks are cancelled and wind down shortly after;
/// call `shutdown` to wait for them).
#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    lifetime: Arc<Lifetime>,
}

/// Owned by the handles only: its drop (with the last handle) stops the tasks.
struct Lifetime {
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.tracker.close();
    }
}

/// State shared by the handles and the tasks.
struct Shared {
    addr: SocketAddr,
    target: Mutex<SocketAddr>,
    /// Parent of every epoch's token: cancelled on shutdown.
    shutdown: CancellationToken,
    link: Mutex<Link>,
    /// True while the link is silent: chunks wait, connections stay open.
    silent: watch::Sender<bool>,
    delay_nanos: AtomicU64,
    /// Chunks lost (and sent again late) at random, when set.
    loss: Mutex<Option<Loss>>,
    drop_mid: AtomicBool,
    client_to_server: AtomicU64,
    server_to_client: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicU64,
}

/// Whether the link is up, and the epoch new connections join.
struct Link {
    cut: bool,
    epoch: Arc<Epoch>,
}

/// The connections accepted between two cuts or resets. Ending an epoch
/// cancels its token, which closes every connection of that epoch; a
/// connection that takes the epoch after that (under the same lock) sees the
/// link cut or joins the next epoch, so none slips through.
struct Epoch {
    token: CancellationToken,
    /// Set before the token is cancelled when the end is a reset (RST) rather
    /// than a cut (FIN).
    reset: AtomicBool,
}

impl Epoch {
    fn new(token: CancellationToken) -> Arc<Self> {
        Arc::new(Epoch {
            token,
            reset: AtomicBool::new(false),
        })
    }
}

impl Shared {
    fn link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes every connection of the current epoch (aborting them if
    /// `reset`) and starts a new one.
    fn end_epoch(&self, link: &mut Link, reset: bool) {
        link.epoch.reset.store(reset, Ordering::SeqCst);
        link.epoch.token.cancel();
        link.epoch = Epoch::new(self.shutdown.child_token());
    }

    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::Relaxed))
    }

    /// How late a chunk read now arrives because it was lost on the way
    /// (zero when it was not): see [`FaultProxy::set_loss`].
    fn lateness(&self) -> Duration {
        let mut loss = self.loss.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(loss) = loss.as_mut() else {
            return Duration::ZERO;
        };
        // Linux's retransmission timeout on a steady link: the round trip
        // plus its 200 ms minimum margin, doubled after each loss.
        let mut timeout = self.delay() * 2 + Duration::from_millis(200);
        let mut late = Duration::ZERO;
        for _ in 0..MAX_LOSSES {
            if loss.rng.next_f64() >= loss.fraction {
                break;
            }
            late += timeout;
            timeout *= 2;
        }
        late
    }

    /// Returns once the link is not silent.
    async fn voiced(&self) {
        let mut silent = self.silent.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = silent.wait_for(|s| !*s).await;
    }
}

/// Times one chunk is lost in a row, at most (then it goes through).
const MAX_LOSSES: u32 = 6;

/// Random loss: the fraction of chunks lost, and the generator that picks.
struct Loss {
    fraction: f64,
    rng: SplitMix64,
}

/// A small seeded generator (SplitMix64): the same seed loses the same
/// chunks, so a run can be replayed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1 on a free port and forwards every accepted
    /// connection to `target`.
    pub async fn start(target: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            addr,
            target: Mutex::new(target),
            link: Mutex::new(Link {
                cut: false,
                epoch: Epoch::new(shutdown.child_token()),
            }),
            shutdown: shutdown.clone(),
            silent: watch::Sender::new(false),
            delay_nanos: AtomicU64::new(0),
            loss: Mutex::new(None),
            drop_mid: AtomicBool::new(false),
            client_to_server: AtomicU64::new(0),
            server_to_client: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open: AtomicU64::new(0),
        });
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(listener, Arc::clone(&shared), tracker.clone()));
        debug!(proxy = %addr, %target, "fault proxy started");
        Ok(FaultProxy {
            shared,
            lifetime: Arc::new(Lifetime { shutdown, tracker }),
        })
    }

    /// The address clients connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The address every connection is forwarded to.
    pub fn target(&self) -> SocketAddr {
        *self
            .shared
            .target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forwards new connections to `target` from now on (a node restarted
    /// on another port); open connections are left as they are.
    pub fn set_target(&self, target: SocketAddr) {
        *self
            .shared
            .target
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = target;
        debug!(proxy = %self.shared.addr, %target, "retargeted");
    }

    /// Takes the link down: closes every open connection now (both sides see
    /// a FIN) and, until [`heal`](Self::heal), closes every new connection
    /// as soon as it is accepted.
    pub fn cut(&self) {
        let mut link = self.shared.link();
        link.cut = true;
        self.shared.end_epoch(&mut link, false);
        debug!(proxy = %self.shared.addr, "link cut");
    }

    /// Brings the link up again after a [`cut`](Self::cut) or a
    /// [`silence`](Self::silence): new connections are forwarded, and
    /// what waited during a silence goes through. Connections closed by a
    /// cut stay closed.
    pub fn heal(&self) {
        self.shared.link().cut = false;
        self.shared.silent.send_replace(false);
        debug!(proxy = %self.shared.addr, "link healed");
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.link().cut
    }

    /// Takes the link down without a word, as a pulled cable or a lost
    /// route does: from now on nothing passes either way, and nothing is
    /// closed (no FIN, no RST), so each end learns of it only by its own
    /// timeouts. What is sent meanwhile waits (as TCP would send it again)
    /// and goes through once the link is [`heal`](Self::heal)ed, unless an
    /// end gave up on the connection first. New connections are accepted
    /// (a proxy on loopback cannot drop a SYN) but reach the target only
    /// after the heal.
    pub fn silence(&self) {
        self.shared.silent.send_replace(true);
        debug!(proxy = %self.shared.addr, "link silent");
    }

    /// Whether the link is silent.
    pub fn is_silent(&self) -> bool {
        *self.shared.silent.borrow()
    }

    /// Adds `delay` of one-way latency to every chunk forwarded from now on,
    /// in both directions, without reordering bytes. `Duration::ZERO` removes
    /// it.
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::Relaxed);
        debug!(proxy = %self.shared.addr, ?delay, "delay set");
    }

    /// Loses each chunk read from now on, either way, with probability
    /// `fraction` (0 turns loss off), as a lossy link loses packets under
    /// TCP: nothing is lost or reordered for the ends, but a lost chunk is
    /// sent again after a retransmission timeout (twice the delay plus
    /// 200 ms), doubled each time it is lost again (at most 6 times), and
    /// every chunk behind it waits for it. `seed` picks which chunks, so a
    /// run can be replayed. A chunk is whatever one read returned, not a
    /// TCP segment: a rough model, but it costs a slow, lossy link's
    /// handshakes and pings what they cost there.
    pub fn set_loss(&self, fraction: f64, seed: u64) {
        let loss = (fraction > 0.0).then(|| Loss {
            fraction: fraction.min(1.0),
            rng: SplitMix64(seed),
        });
        *self
            .shared
            .loss
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = loss;
        debug!(proxy = %self.shared.addr, fraction, seed, "loss set");
    }

    /// Arms a one-shot fault: the next chunk forwarded, in either direction
    /// on any connection, is cut in half. Only its first half is written, then
    /// both sides of that connection are closed, so the peer sees a truncated
    /// message (an HTTP/2 frame cut short). Stays armed until a chunk flows.
    pub fn drop_mid_message(&self) {
        self.shared.drop_mid.store(true, Ordering::SeqCst);
        debug!(proxy = %self.shared.addr, "next chunk will be dropped mid-message");
    }

    /// Ends every fault: the link is up and speaks, with no delay and no
    /// loss, and a [`drop_mid_message`](Self::drop_mid_message) still
    /// armed is disarmed. (Armed on an idle link, it would otherwise cut
    /// whatever connects next, minutes later: a check run after the
    /// faults.)
    pub fn calm(&self) {
        self.heal();
        self.set_delay(Duration::ZERO);
        self.set_loss(0.0, 0);
        self.shared.drop_mid.store(false, Ordering::SeqCst);
    }

    /// Aborts every open connection with a TCP RST on both sides (SO_LINGER
    /// of zero, then close). Unlike [`cut`](Self::cut), new connections are
    /// still forwarded.
    pub fn reset(&self) {
        let mut link = self.shared.link();
        self.shared.end_epoch(&mut link, true);
        debug!(proxy = %self.shared.addr, "open connections reset");
    }

    /// Bytes forwarded each way and connections seen so far.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            client_to_server_bytes: s.client_to_server.load(Ordering::Relaxed),
            server_to_client_bytes: s.server_to_client.load(Ordering::Relaxed),
            connections_accepted: s.accepted.load(Ordering::Relaxed),
            connections_refused: s.refused.load(Ordering::Relaxed),
            connections_open: s.open.load(Ordering::Relaxed),
        }
    }

    /// Stops the proxy for every handle: stops listening, closes every
    /// connection and waits until all of its tasks have ended.
    pub async fn shutdown(self) {
        self.lifetime.shutdown.cancel();
        self.lifetime.tracker.close();
        self.lifetime.tracker.wait().await;
        debug!(proxy = %self.shared.addr, "fault proxy stopped");
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.shared.addr)
            .field("target", &self.target())
            .field("cut", &self.is_cut())
            .field("silent", &self.is_silent())
            .field("delay", &self.shared.delay())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Accepts connections until shutdown; each one is served by a tracked task.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (client, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, don't spin.
                warn!(proxy = %shared.addr, %error, "accept failed");
                let pause = tokio::time::sleep(Duration::from_millis(10));
                if shared.shutdown.run_until_cancelled(pause).await.is_none() {
                    break;
                }
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let epoch = {
            let link = shared.link();
            (!link.cut).then(|| Arc::clone(&link.epoch))
        };
        match epoch {
            Some(epoch) => {
                trace!(proxy = %shared.addr, %peer, "connection accepted");
                tracker.spawn(serve(Arc::clone(&shared), client, epoch));
            }
            None => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                debug!(proxy = %shared.addr, %peer, "link is cut: connection refused");
                drop(client);
            }
        }
    }
    trace!(proxy = %shared.addr, "accept loop stopped");
}

/// Keeps `connections_open` right however a connection's task ends.
struct OpenGuard<'a>(&'a AtomicU64);

impl<'a> OpenGuard<'a> {
    fn new(open: &'a AtomicU64) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        OpenGuard(open)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a connection ended.
enum End {
    /// Both directions reached end of stream and were shut down in turn.
    Done,
    /// Its epoch ended with a cut, or the proxy shut down.
    Cut,
    /// Its epoch ended with a reset.
    Reset,
    /// A chunk was forwarded only in half.
    Truncated,
    /// Reading or writing failed (usually the peer reset).
    Failed(io::Error),
}

/// Why one direction stopped early.
enum Stop {
    Truncated,
    Io(io::Error),
}

/// Forwards one connection to the target until it ends or its epoch does.
async fn serve(shared: Arc<Shared>, mut client: TcpStream, epoch: Arc<Epoch>) {
    let _open = OpenGuard::new(&shared.open);
    let token = epoch.token.child_token();
    // Over a silent link the connection reaches nobody until it heals.
    if token.run_until_cancelled(shared.voiced()).await.is_none() {
        if epoch.reset.load(Ordering::SeqCst) {
            abort(&client);
        }
        return;
    }
    let target = *shared.target.lock().unwrap_or_else(PoisonError::into_inner);
    let connect = TcpStream::connect(target);
    let mut server = match token.run_until_cancelled(connect).await {
        Some(Ok(server)) => server,
        Some(Err(error)) => {
            debug!(proxy = %shared.addr, %target, %error, "cannot reach the target");
            return;
        }
        None => {
            if epoch.reset.load(Ordering::SeqCst) {
                abort(&client);
            }
            return;
        }
    };
    // Chunks should leave as they come, not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let relay = async {
            tokio::try_join!(
                pump(client_read, server_write, &shared, &shared.client_to_server),
                pump(server_read, client_write, &shared, &shared.server_to_client),
            )
        };
        tokio::select! {
            () = token.cancelled() => {
                if epoch.reset.load(Ordering::SeqCst) { End::Reset } else { End::Cut }
            }
            relayed = relay => match relayed {
                Ok(_) => End::Done,
                Err(Stop::Truncated) => End::Truncated,
                Err(Stop::Io(error)) => End::Failed(error),
            },
        }
    };
    match end {
        End::Done | End::Cut | End::Truncated => {}
        End::Reset => {
            abort(&client);
            abort(&server);
        }
        End::Failed(error) => {
            // Pass the abort on, as a real network would.
            trace!(proxy = %shared.addr, %error, "connection failed");
            abort(&client);
            abort(&server);
        }
    }
    trace!(proxy = %shared.addr, "connection closed");
    // Dropping the streams closes them: FIN, or RST after `abort`.
}

/// Makes closing `stream` send a RST instead of a FIN.
fn abort(stream: &TcpStream) {
    // Equivalent to `set_linger(Some(Duration::ZERO))`, which tokio
    // deprecates; with a zero linger, closing never blocks.
    if let Err(error) = stream.set_zero_linger() {
        trace!(%error, "cannot set SO_LINGER to zero");
    }
}

/// Forwards one direction chunk by chunk, adding `counter` the bytes written.
///
/// Reading and writing run concurrently with a FIFO queue between them: each
/// chunk is stamped with its due time (read time plus the delay, plus its
/// retransmissions when it was lost) when read, and written in order once
/// due and once the link is not silent, so a delay never reorders bytes
/// nor limits the throughput to one chunk per delay. At end of stream, the
/// queue is drained and the write side shut down.
async fn pump(
    mut reader: ReadHalf<'_>,
    mut writer: WriteHalf<'_>,
    shared: &Shared,
    counter: &AtomicU64,
) -> Result<(), Stop> {
    let (queue, mut due_chunks) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read_side = async move {
        loop {
            let mut chunk = vec![0; CHUNK];
            let n = match reader.read(&mut chunk).await {
                Ok(n) => n,
                Err(error) => {
                    // A reset crosses a silent link no more than data.
                    shared.voiced().await;
                    return Err(Stop::Io(error));
                }
            };
            if n == 0 {
                return Ok(());
            }
            chunk.truncate(n);
            let due = Instant::now() + shared.delay() + shared.lateness();
            if queue.send((due, chunk)).await.is_err() {
                // The write side stopped; its error ends the pump.
                return Ok(());
            }
        }
    };
    let write_side = async {
        while let Some((due, chunk)) = due_chunks.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            // A silent link holds the chunk (and so everything behind it).
            shared.voiced().await;
            if shared.drop_mid.swap(false, Ordering::SeqCst) {
                let half = &chunk[..chunk.len() / 2];
                writer.write_all(half).await.map_err(Stop::Io)?;
                counter.fetch_add(half.len() as u64, Ordering::Relaxed);
                debug!(proxy = %shared.addr, sent = half.len(), of = chunk.len(), "chunk dropped mid-message");
                return Err(Stop::Truncated);
            }
            writer.write_all(&chunk).await.map_err(Stop::Io)?;
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        // Nor does the end of the stream.
        shared.voiced().await;
        writer.shutdown().await.map_err(Stop::Io)
    };
    tokio::try_join!(read_side, write_side).map(|_| ())
}
