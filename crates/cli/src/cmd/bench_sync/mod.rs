//! `hopluu bench-sync`: replication figures on real nodes on loopback.
//!
//! 1. **Propagation latency** along district -> province -> national, each
//!    hop a durable commit (SQLite with `synchronous=FULL` at the district
//!    and the province; the national node on SQLite or PostgreSQL): edits
//!    are made one after another at the district through gRPC, and the time
//!    from the district's response to the commit at the province and at the
//!    national node is taken from each store's feed watch (event driven: the
//!    first feed move after the edit, confirmed by the document's heads).
//!    The floor is the district's own response time.
//! 2. **Bytes on the wire**: every child dials its parent through a
//!    counting proxy; the bytes of one warm edit (both directions, both
//!    links) are the proxies' counters before and after, once the links are
//!    quiet again; also for a burst of concurrent edits and an import that
//!    updates a whole roster, against the size of the automerge changes.
//! 3. **Initial aggregation**: members are loaded into the provinces' own
//!    stores while each runs alone (not timed); then the national node, a
//!    separate `hopluu serve` process knowing only the province records it
//!    created, is started and the provinces connect. Timed until the
//!    national node counts every member; its peak RSS is read from `/proc`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use automerge::ChangeHash;
use clap::{Args, ValueEnum};
use hopluu_devcluster::federation::{Federation, LocalNode};
use hopluu_devcluster::proxy::{FaultProxy, ProxyStats};
use hopluu_model::DocId;
use hopluu_store::Store;
use tokio::sync::watch;

use super::bench_common::{ThrowawayDb, admin_sql};

mod aggregation;
mod chain;
mod floor;
mod footprint;
mod ingest;
mod latency;

use aggregation::aggregation;
use latency::latency_and_wire;

#[derive(Args, Debug)]
pub struct BenchSyncArgs {
    /// Single-member edits timed at the district (AddMember and
    /// UpdateMember alternately, one after another).
    #[arg(long, default_value_t = 1_000)]
    edits: usize,
    /// Warm edits of each kind whose bytes on the wire are measured one by
    /// one (the links are let go quiet before and after each).
    #[arg(long, default_value_t = 100)]
    wire_edits: usize,
    /// UpdateMember requests sent at once for the burst figure.
    #[arg(long, default_value_t = 100)]
    burst: usize,
    /// Members of one roster whose positions one ImportMembers updates.
    #[arg(long, default_value_t = 1_000)]
    batch_edits: usize,
    /// Members loaded (untimed) into each of the district's grassroots
    /// unions before the edits, so that edits hit rosters of that size.
    #[arg(long, default_value_t = 0)]
    roster_members: usize,
    /// Members loaded into the provinces for the initial aggregation.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    /// Provinces (each its own node) for the initial aggregation.
    #[arg(long, default_value_t = 10)]
    provinces: usize,
    /// Communes per province.
    #[arg(long, default_value_t = 5)]
    communes: usize,
    /// Grassroots unions per commune.
    #[arg(long, default_value_t = 10)]
    grassroots: usize,
    /// Rows per ImportMembers request while loading the provinces.
    #[arg(long, default_value_t = 1_000)]
    import_batch: usize,
    /// The national node's database.
    #[arg(long, value_enum, default_value_t = NationalDb::Sqlite)]
    national: NationalDb,
    /// A PostgreSQL server where the bench may create (and drop) databases
    /// (with --national postgres).
    #[arg(
        long,
        env = "HOPLUU_TEST_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Steady ingest after the aggregation: the share of its members (in
    /// percent) each province updates at once; 0 skips it.
    #[arg(long, default_value_t = 1)]
    ingest_percent: usize,
    /// Skip the latency and bytes-on-the-wire part.
    #[arg(long)]
    skip_latency: bool,
    /// Skip the initial aggregation part.
    #[arg(long)]
    skip_aggregation: bool,
    /// Give up on the initial aggregation after this many seconds.
    #[arg(long, default_value_t = 3_600)]
    timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NationalDb {
    Sqlite,
    Postgres,
}

impl NationalDb {
    fn as_str(self) -> &'static str {
        match self {
            NationalDb::Sqlite => "sqlite",
            NationalDb::Postgres => "postgres",
        }
    }
}

const NATIONAL_NAME: &str = "Tổng Liên đoàn Lao động Việt Nam";
/// Warnings and errors, but not sqlx's slow-statement notes (a bulk
/// import's statements take over a second by design).
const QUIET_LOG: &str = "warn,sqlx::query=error";
/// How long one edit may take to reach the national node.
const EDIT_LIMIT: Duration = Duration::from_secs(30);
/// The links count as quiet after this long without a byte.
const QUIET: Duration = Duration::from_millis(120);

pub async fn run(args: BenchSyncArgs) -> Result<()> {
    init_tracing();
    ensure!(args.provinces >= 1, "--provinces must be at least 1");
    ensure!(
        args.communes >= 1 && args.grassroots >= 1,
        "--communes and --grassroots must be at least 1"
    );
    print!("{}", machine(&args));
    if !args.skip_latency {
        let pg = national_database(args.national, &args.postgres, "chain").await?;
        let result = latency_and_wire(&args, pg.as_ref().map(|p| p.url.as_str())).await;
        if let Some(pg) = pg {
            pg.drop().await?;
        }
        let (lat, wire) = result.context("propagation latency and bytes on the wire")?;
        print!("{}", lat.render(&args));
        print!("{}", wire.render());
    }
    if !args.skip_aggregation {
        let pg = national_database(args.national, &args.postgres, "agg").await?;
        let result = aggregation(&args, pg.as_ref().map(|p| p.url.as_str())).await;
        if let Some(pg) = pg {
            pg.drop().await?;
        }
        let agg = result.context("initial aggregation")?;
        print!("{}", agg.render(&args));
    }
    Ok(())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(QUIET_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

// ---- machine facts ---------------------------------------------------

fn machine(args: &BenchSyncArgs) -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| proc_kb(&s, "MemTotal:"))
        .map(|kb| format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let build = if cfg!(debug_assertions) {
        "debug build (figures not representative: use a release build)"
    } else {
        "release build"
    };
    let mut out = format!(
        "hopluu bench-sync {}: {cores} cores ({cpu}), {mem} RAM, Linux {kernel}, {build}\n",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(&format!(
        "district and province on SQLite (WAL, synchronous=FULL); national on {}; every link over gRPC on loopback through a counting TCP proxy\n",
        args.national.as_str()
    ));
    out.push_str(&format!(
        "parameters: --edits {} --roster-members {} --wire-edits {} --burst {} --batch-edits {} --members {} --provinces {} --communes {} --grassroots {} --import-batch {} --ingest-percent {} --national {}{}{}\n",
        args.edits,
        args.roster_members,
        args.wire_edits,
        args.burst,
        args.batch_edits,
        args.members,
        args.provinces,
        args.communes,
        args.grassroots,
        args.import_batch,
        args.ingest_percent,
        args.national.as_str(),
        if args.skip_latency { " --skip-latency" } else { "" },
        if args.skip_aggregation {
            " --skip-aggregation"
        } else {
            ""
        },
    ));
    out.push_str(&format!("{}\n\n", load_note()));
    out
}

/// The load average, and a warning when something else keeps the machine
/// busy (the figures then measure the contention too).
fn load_note() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one: f64 = load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    let fields: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut s = format!("load average (1, 5, 15 min): {}", fields.join(" "));
    if one > cores * 0.5 {
        s.push_str(&format!(
            "  WARNING: other processes keep this {cores}-core machine busy; the figures include that contention"
        ));
    }
    s
}

fn proc_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The national node's database for one part of the run: a throwaway
/// PostgreSQL database with `--national postgres`, none for SQLite.
async fn national_database(db: NationalDb, admin: &str, what: &str) -> Result<Option<ThrowawayDb>> {
    if db != NationalDb::Postgres {
        return Ok(None);
    }
    admin_sql(admin, "").await.context(
        "PostgreSQL is needed for --national postgres (set HOPLUU_TEST_PG or --postgres)",
    )?;
    let name = format!("hopluu_bench_sync_{}_{what}", std::process::id());
    ThrowawayDb::create(admin, name).await.map(Some)
}

// ---- shared helpers ----------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt_ms(d: Duration) -> String {
    let v = ms(d);
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Default, Clone)]
struct Dist(Vec<Duration>);

impl Dist {
    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort();
        v
    }
    fn row(&self, what: &str) -> Vec<String> {
        let s = self.sorted();
        vec![
            what.to_owned(),
            s.len().to_string(),
            fmt_ms(pct(&s, 50.0)),
            fmt_ms(pct(&s, 90.0)),
            fmt_ms(pct(&s, 99.0)),
            fmt_ms(s.last().copied().unwrap_or_default()),
        ]
    }
}

/// Waits until `check` holds, polling every 20 ms (setup only).
async fn until<F, Fut>(what: &str, limit: Duration, check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    Federation::until(what, limit, check).await
}

async fn wait_unit(node: &LocalNode, unit: &str) -> Result<()> {
    until(
        &format!("node {} knows unit {unit}", node.id),
        Duration::from_secs(60),
        || async { Ok(node.knows_unit(unit)) },
    )
    .await
}

/// The time `feed` first moves past `before`.
async fn first_move(
    feed: &mut watch::Receiver<i64>,
    before: i64,
    deadline: tokio::time::Instant,
) -> Result<Instant> {
    loop {
        if *feed.borrow_and_update() > before {
            return Ok(Instant::now());
        }
        changed(feed, deadline).await?;
    }
}

async fn changed(feed: &mut watch::Receiver<i64>, deadline: tokio::time::Instant) -> Result<()> {
    tokio::time::timeout_at(deadline, feed.changed())
        .await
        .map_err(|_| anyhow!("the change did not arrive within {EDIT_LIMIT:?}"))?
        .map_err(|_| anyhow!("store closed"))
}

fn covers(heads: &[ChangeHash], target: &[ChangeHash]) -> bool {
    target.iter().all(|h| heads.contains(h))
}

/// Confirms that `store` holds `target` heads of every document; `at` is
/// when its feed moved. If a document is not there yet, waits for the
/// next feed moves and returns the time of the one that completed it.
async fn confirm(
    store: &Store,
    feed: &mut watch::Receiver<i64>,
    mut at: Instant,
    targets: &[(DocId, Vec<ChangeHash>)],
    deadline: tokio::time::Instant,
) -> Result<Instant> {
    loop {
        let mut all = true;
        for (doc, target) in targets {
            let heads = store.doc_heads(doc).await?.unwrap_or_default();
            if !covers(&heads, target) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(at);
        }
        changed(feed, deadline).await?;
        at = Instant::now();
    }
}

fn bytes_delta(a: &ProxyStats, b: &ProxyStats) -> (u64, u64) {
    (
        b.client_to_server_bytes - a.client_to_server_bytes,
        b.server_to_client_bytes - a.server_to_client_bytes,
    )
}

/// Waits until no byte has crossed any of `links` for [`QUIET`]; returns
/// their counters then.
async fn quiet(links: &[&FaultProxy]) -> Vec<ProxyStats> {
    let bytes = |s: &ProxyStats| (s.client_to_server_bytes, s.server_to_client_bytes);
    let mut last: Vec<ProxyStats> = links.iter().map(|l| l.stats()).collect();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now: Vec<ProxyStats> = links.iter().map(|l| l.stats()).collect();
        if now.iter().map(bytes).ne(last.iter().map(bytes)) {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= QUIET {
            return now;
        }
    }
}
