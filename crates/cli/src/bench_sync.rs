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

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use automerge::ChangeHash;
use clap::{Args, ValueEnum};
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::pki::{Caller, Pki};
use hopluu_devcluster::proxy::{FaultProxy, ProxyStats};
use hopluu_model::{Clock, DocId, DocKind, MemberId, SystemClock, member};
use hopluu_node::config::{Config, Upstream};
use hopluu_proto::v1 as pb;
use hopluu_store::Store;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::output::Table;

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
        let pg = PgDatabase::create_if(args.national, &args.postgres, "chain").await?;
        let result = latency_and_wire(&args, pg.as_ref().map(|p| p.url.as_str())).await;
        if let Some(pg) = pg {
            pg.drop().await?;
        }
        let (lat, wire) = result.context("propagation latency and bytes on the wire")?;
        print!("{}", lat.render(&args));
        print!("{}", wire.render());
    }
    if !args.skip_aggregation {
        let pg = PgDatabase::create_if(args.national, &args.postgres, "agg").await?;
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
        "parameters: --edits {} --roster-members {} --wire-edits {} --burst {} --batch-edits {} --members {} --provinces {} --communes {} --grassroots {} --import-batch {} --national {}{}{}\n",
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

// ---- PostgreSQL --------------------------------------------------------

/// A throwaway PostgreSQL database, dropped by [`PgDatabase::drop`].
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create_if(db: NationalDb, admin: &str, what: &str) -> Result<Option<PgDatabase>> {
        if db != NationalDb::Postgres {
            return Ok(None);
        }
        let name = format!("hopluu_bench_sync_{}_{what}", std::process::id());
        admin_sql(admin, "").await.context(
            "PostgreSQL is needed for --national postgres (set HOPLUU_TEST_PG or --postgres)",
        )?;
        admin_sql(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
        admin_sql(admin, &format!("CREATE DATABASE {name}")).await?;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
        Ok(Some(PgDatabase {
            admin: admin.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }))
    }

    async fn drop(self) -> Result<()> {
        admin_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

async fn admin_sql(admin: &str, sql: &str) -> Result<()> {
    hopluu_store::db::admin_execute(admin, sql)
        .await
        .map_err(|e| anyhow!("{e}"))
}

// ---- shared helpers ----------------------------------------------------

fn member_input(i: usize, position: &str) -> pb::MemberInput {
    pb::MemberInput {
        full_name: format!("Nguyễn Văn Thành {i}"),
        birth_date: format!("19{:02}-{:02}-{:02}", 60 + i % 40, 1 + i % 12, 1 + i % 28),
        gender: if i.is_multiple_of(2) {
            pb::Gender::Male
        } else {
            pb::Gender::Female
        } as i32,
        card_number: format!("CD{i:09}"),
        joined_on: "2020-05-01".into(),
        position: position.to_owned(),
        national_id: format!("{:012}", 1_000_000_000 + i),
        ethnicity: "Kinh".into(),
        religion: String::new(),
    }
}

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

// ---- part 1 and 2: a district -> province -> national chain ------------

const NAT: &str = "vn";
const PROV: &str = "p00-node";
const PROV_UNIT: &str = "p00";
const DIST: &str = "p00-d0-node";
const DIST_UNIT: &str = "p00-d0";
/// Grassroots unions at the district receiving the single edits.
const DIST_GRASSROOTS: usize = 5;
/// Members added before anything is timed.
const WARM_MEMBERS: usize = 20;

struct Chain {
    fed: Federation,
    /// Members at the district: (id, roster document).
    members: Vec<(String, DocId)>,
    /// The district's heads of each roster document after the last edit.
    heads: BTreeMap<DocId, Vec<ChangeHash>>,
    /// Next member number (card numbers are unique).
    next: usize,
    /// Edits so far (positions are unique, so every update changes).
    edits: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EditKind {
    Add,
    Update,
}

/// One timed edit.
struct Timed {
    local: Duration,
    to_province: Duration,
    to_national: Duration,
    /// Bytes of the roster change (`save_after` the heads before it).
    change_bytes: usize,
}

impl Chain {
    async fn start(root: &Path, national_url: Option<&str>) -> Result<Chain> {
        // The benchmark is one client driving the nodes as fast as they
        // answer: the per-caller request limit would measure itself.
        let mut fed = Federation::new(root).with_tuning(|c| c.limits.enabled = false);
        let mut spec = NodeSpec::root(NAT, NAT, NATIONAL_NAME);
        if let Some(url) = national_url {
            spec = spec.on_database(url);
        }
        fed.add(spec).await?;
        fed.node(NAT)
            .create_unit(PROV_UNIT, "LĐLĐ tỉnh P00", "provincial", NAT)
            .await?;
        fed.add(NodeSpec::child(PROV, PROV_UNIT, &[NAT])).await?;
        wait_unit(fed.node(PROV), PROV_UNIT).await?;
        fed.node(PROV)
            .create_unit(DIST_UNIT, "LĐLĐ huyện D0", "district", PROV_UNIT)
            .await?;
        fed.add(NodeSpec::child(DIST, DIST_UNIT, &[PROV])).await?;
        wait_unit(fed.node(DIST), DIST_UNIT).await?;
        for g in 0..DIST_GRASSROOTS {
            fed.node(DIST)
                .create_unit(
                    &grassroots_id(g),
                    &format!("CĐCS Trường {g}"),
                    "grassroots",
                    DIST_UNIT,
                )
                .await?;
        }
        for g in 0..DIST_GRASSROOTS {
            wait_unit(fed.node(NAT), &grassroots_id(g)).await?;
        }
        Ok(Chain {
            fed,
            members: Vec::new(),
            heads: BTreeMap::new(),
            next: 0,
            edits: 0,
        })
    }

    fn node(&self, id: &str) -> &LocalNode {
        self.fed.node(id)
    }

    fn links(&self) -> [&FaultProxy; 2] {
        [self.fed.link(DIST, PROV), self.fed.link(PROV, NAT)]
    }

    /// Makes one edit at the district and times its arrival at the
    /// province and the national node.
    async fn edit(&mut self, kind: EditKind) -> Result<Timed> {
        let dist = self.node(DIST);
        let (prov, nat) = (self.node(PROV), self.node(NAT));
        let mut pf = prov.app.store.watch_feed();
        let mut nf = nat.app.store.watch_feed();
        let p0 = *pf.borrow_and_update();
        let n0 = *nf.borrow_and_update();
        let n = self.next;
        let e = self.edits;
        let mut known: Option<DocId> = None;
        let sent = Instant::now();
        let id = match kind {
            EditKind::Add => {
                let unit = grassroots_id(n % DIST_GRASSROOTS);
                dist.members()
                    .add_member(pb::AddMemberRequest {
                        unit_id: unit,
                        member: Some(member_input(n, "Đoàn viên")),
                    })
                    .await?
                    .into_inner()
                    .id
            }
            EditKind::Update => {
                let (id, doc) = self.members[e % self.members.len()].clone();
                known = Some(doc);
                dist.members()
                    .update_member(pb::UpdateMemberRequest {
                        member_id: id.clone(),
                        position: Some(format!("Tổ viên {e}")),
                        ..Default::default()
                    })
                    .await?;
                id
            }
        };
        let acked = Instant::now();
        let deadline = tokio::time::Instant::now() + EDIT_LIMIT;
        let store = &dist.app.store;
        let locate = async {
            let doc = match known.clone() {
                Some(d) => d,
                None => {
                    let mid = MemberId::parse("member_id", &id)?;
                    let loc = store
                        .member_locations(&mid)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| anyhow!("member {id} not found at the district"))?;
                    member::roster_doc(&loc.unit, loc.bucket)
                }
            };
            let heads = store
                .doc_heads(&doc)
                .await?
                .ok_or_else(|| anyhow!("{doc} not stored at the district"))?;
            Ok::<_, anyhow::Error>((doc, heads))
        };
        let (pt, nt, located) = tokio::join!(
            first_move(&mut pf, p0, deadline),
            first_move(&mut nf, n0, deadline),
            locate
        );
        let (doc, heads) = located?;
        let targets = [(doc.clone(), heads.clone())];
        let pt = confirm(&prov.app.store, &mut pf, pt?, &targets, deadline)
            .await
            .context("at the province")?;
        let nt = confirm(&nat.app.store, &mut nf, nt?, &targets, deadline)
            .await
            .context("at the national node")?;
        let before = self.heads.get(&doc).cloned().unwrap_or_default();
        let change_bytes = store
            .read_doc(&doc, |d| d.save_after(&before).len())
            .await?
            .unwrap_or(0);
        self.heads.insert(doc.clone(), heads);
        if kind == EditKind::Add {
            self.members.push((id, doc));
            self.next += 1;
        }
        self.edits += 1;
        Ok(Timed {
            local: acked - sent,
            to_province: pt.saturating_duration_since(acked),
            to_national: nt.saturating_duration_since(acked),
            change_bytes,
        })
    }

    /// The district's heads of `docs`.
    async fn district_heads(
        &self,
        docs: &BTreeSet<DocId>,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let mut out = Vec::new();
        for d in docs {
            let h = self
                .node(DIST)
                .app
                .store
                .doc_heads(d)
                .await?
                .unwrap_or_default();
            out.push((d.clone(), h));
        }
        Ok(out)
    }

    /// Waits until the national node holds the district's heads of `docs`;
    /// returns when its feed last moved to get there.
    async fn national_has(
        &self,
        nf: &mut watch::Receiver<i64>,
        n0: i64,
        docs: &BTreeSet<DocId>,
    ) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + EDIT_LIMIT * 4;
        let targets = self.district_heads(docs).await?;
        let at = first_move(nf, n0, deadline).await?;
        confirm(&self.node(NAT).app.store, nf, at, &targets, deadline).await
    }

    /// Bytes of the district's changes to `docs` since `before`.
    async fn change_bytes(&self, before: &[(DocId, Vec<ChangeHash>)]) -> Result<usize> {
        let mut total = 0;
        for (doc, heads) in before {
            total += self
                .node(DIST)
                .app
                .store
                .read_doc(doc, |d| d.save_after(heads).len())
                .await?
                .unwrap_or(0);
        }
        Ok(total)
    }
}

fn grassroots_id(g: usize) -> String {
    format!("{DIST_UNIT}-g{g}")
}

struct Latency {
    local_add: Dist,
    local_update: Dist,
    to_province: Dist,
    to_national: Dist,
    to_national_add: Dist,
    to_national_update: Dist,
    /// National commit minus province commit, per edit.
    province_hop: Dist,
    total: Duration,
    /// CPU seconds of this process (all three nodes) over the edits.
    cpu: Option<f64>,
    /// The same edits after the links were quiet (the bytes runs).
    idle_local: Dist,
    idle_to_province: Dist,
    idle_to_national: Dist,
}

impl Latency {
    fn render(&self, args: &BenchSyncArgs) -> String {
        let mut out = format!(
            "1. Propagation latency: {} single-member edits at the district, one after another (AddMember and UpdateMember alternately), from the district's gRPC response to the commit at each node; {:.1} s in all\n",
            args.edits,
            self.total.as_secs_f64()
        );
        let mut t = Table::new(&["measure", "edits", "p50", "p90", "p99", "max"]);
        t.row(
            self.local_add
                .row("floor: local commit at the district (AddMember response)"),
        );
        t.row(
            self.local_update
                .row("floor: local commit at the district (UpdateMember response)"),
        );
        t.row(self.to_province.row("district -> province committed"));
        t.row(self.to_national.row("district -> national committed"));
        t.row(self.to_national_add.row("  of which AddMember"));
        t.row(self.to_national_update.row("  of which UpdateMember"));
        t.row(
            self.province_hop
                .row("province -> national hop (national minus province)"),
        );
        if !self.idle_to_national.0.is_empty() {
            t.row(
                self.idle_local
                    .row("after 120 ms quiet: local commit at the district"),
            );
            t.row(
                self.idle_to_province
                    .row("after 120 ms quiet: district -> province committed"),
            );
            t.row(
                self.idle_to_national
                    .row("after 120 ms quiet: district -> national committed"),
            );
        }
        out.push_str(&t.render());
        if let Some(cpu) = self.cpu {
            out.push_str(&format!(
                "CPU (user+system) of the three nodes and the client together: {:.2} ms per edit, {:.2} cores busy on average\n",
                cpu * 1000.0 / args.edits.max(1) as f64,
                cpu / self.total.as_secs_f64().max(1e-9)
            ));
        }
        let s = self.to_national.sorted();
        let (p50, p99) = (pct(&s, 50.0), pct(&s, 99.0));
        out.push_str(&format!(
            "aim district -> national: p50 <= 5 ms ({}: {}), p99 <= 20 ms ({}: {})\n\n",
            fmt_ms(p50),
            if ms(p50) <= 5.0 { "met" } else { "MISSED" },
            fmt_ms(p99),
            if ms(p99) <= 20.0 { "met" } else { "MISSED" },
        ));
        out
    }
}

/// Bytes of one scenario on both links: (up, down) per link.
#[derive(Debug, Default, Clone)]
struct Wire {
    what: String,
    edits: usize,
    dp: (u64, u64),
    pn: (u64, u64),
    change_bytes: usize,
    /// Acknowledged at the district -> committed at the national node.
    latency: Option<Duration>,
}

impl Wire {
    fn add(&mut self, before: &[ProxyStats], after: &[ProxyStats], change: usize) {
        let dp = bytes_delta(&before[0], &after[0]);
        let pn = bytes_delta(&before[1], &after[1]);
        self.dp.0 += dp.0;
        self.dp.1 += dp.1;
        self.pn.0 += pn.0;
        self.pn.1 += pn.1;
        self.change_bytes += change;
    }

    fn total(&self) -> u64 {
        self.dp.0 + self.dp.1 + self.pn.0 + self.pn.1
    }
}

struct WireFigures {
    rows: Vec<Wire>,
}

impl WireFigures {
    fn render(&self) -> String {
        let mut out = String::from(
            "2. Bytes on the wire (TCP payload counted by the proxies: HTTP/2 frames, gRPC framing, batch and ack), per edit; up = towards the parent\n",
        );
        let mut t = Table::new(&[
            "scenario",
            "edits",
            "d->p up",
            "d->p down",
            "p->n up",
            "p->n down",
            "per link (both ways)",
            "both links",
            "roster change",
            "p->n up / change",
            "ack -> national",
        ]);
        for w in &self.rows {
            let n = w.edits.max(1) as f64;
            let per = |b: u64| format!("{:.0}", b as f64 / n);
            t.row(vec![
                w.what.clone(),
                w.edits.to_string(),
                per(w.dp.0),
                per(w.dp.1),
                per(w.pn.0),
                per(w.pn.1),
                format!(
                    "{:.0} / {:.0}",
                    (w.dp.0 + w.dp.1) as f64 / n,
                    (w.pn.0 + w.pn.1) as f64 / n
                ),
                per(w.total()),
                format!("{:.0}", w.change_bytes as f64 / n),
                if w.change_bytes > 0 {
                    format!("{:.2}", w.pn.0 as f64 / w.change_bytes as f64)
                } else {
                    "-".into()
                },
                w.latency.map(fmt_ms).unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&t.render());
        if let Some(w) = self.rows.first() {
            let n = w.edits.max(1) as f64;
            let link = ((w.dp.0 + w.dp.1).max(w.pn.0 + w.pn.1)) as f64 / n;
            out.push_str(&format!(
                "aim: a warm single edit <= 600 B both directions: {:.0} B on the costlier link ({}), {:.0} B over both links ({})\n",
                link,
                if link <= 600.0 { "met" } else { "MISSED" },
                w.total() as f64 / n,
                if w.total() as f64 / n <= 600.0 {
                    "met"
                } else {
                    "MISSED"
                },
            ));
        }
        out.push_str(
            "roster change = automerge save_after(heads before) of the roster documents at the district (what the session sends as Changes); the private roster goes on the d->p link only\n\n",
        );
        out
    }
}

async fn latency_and_wire(
    args: &BenchSyncArgs,
    national_url: Option<&str>,
) -> Result<(Latency, WireFigures)> {
    let dir = tempfile::TempDir::new()?;
    eprintln!("bench-sync: starting district -> province -> national ...");
    let mut chain = Chain::start(dir.path(), national_url).await?;
    if args.roster_members > 0 {
        preload(&mut chain, args.roster_members).await?;
    }

    // Warm-up: the rosters exist, the sessions know each other's heads.
    for _ in 0..WARM_MEMBERS {
        chain.edit(EditKind::Add).await?;
    }
    for _ in 0..5 {
        chain.edit(EditKind::Update).await?;
    }

    eprintln!("bench-sync: {} timed edits ...", args.edits);
    let mut lat = Latency {
        local_add: Dist::default(),
        local_update: Dist::default(),
        to_province: Dist::default(),
        to_national: Dist::default(),
        to_national_add: Dist::default(),
        to_national_update: Dist::default(),
        province_hop: Dist::default(),
        total: Duration::ZERO,
        cpu: None,
        idle_local: Dist::default(),
        idle_to_province: Dist::default(),
        idle_to_national: Dist::default(),
    };
    let cpu0 = cpu_secs("/proc/self/stat");
    let started = Instant::now();
    for i in 0..args.edits {
        let kind = if i % 2 == 0 {
            EditKind::Add
        } else {
            EditKind::Update
        };
        let t = chain.edit(kind).await?;
        match kind {
            EditKind::Add => {
                lat.local_add.push(t.local);
                lat.to_national_add.push(t.to_national);
            }
            EditKind::Update => {
                lat.local_update.push(t.local);
                lat.to_national_update.push(t.to_national);
            }
        }
        lat.to_province.push(t.to_province);
        lat.to_national.push(t.to_national);
        lat.province_hop
            .push(t.to_national.saturating_sub(t.to_province));
    }
    lat.total = started.elapsed();
    lat.cpu = cpu_secs("/proc/self/stat").zip(cpu0).map(|(b, a)| b - a);

    eprintln!(
        "bench-sync: bytes on the wire, {} warm edits of each kind ...",
        args.wire_edits
    );
    let mut update = Wire {
        what: "warm UpdateMember (position), one at a time".into(),
        ..Wire::default()
    };
    let mut add = Wire {
        what: "AddMember into a warm roster, one at a time".into(),
        ..Wire::default()
    };
    let mut update_lat = Duration::ZERO;
    let mut add_lat = Duration::ZERO;
    for _ in 0..args.wire_edits {
        for (kind, w, l) in [
            (EditKind::Update, &mut update, &mut update_lat),
            (EditKind::Add, &mut add, &mut add_lat),
        ] {
            let before = quiet(&chain.links()).await;
            let t = chain.edit(kind).await?;
            let after = quiet(&chain.links()).await;
            w.add(&before, &after, t.change_bytes);
            w.edits += 1;
            *l += t.to_national;
            lat.idle_local.push(t.local);
            lat.idle_to_province.push(t.to_province);
            lat.idle_to_national.push(t.to_national);
        }
    }
    if args.wire_edits > 0 {
        update.latency = Some(update_lat / args.wire_edits as u32);
        add.latency = Some(add_lat / args.wire_edits as u32);
    }

    let burst = burst(&mut chain, args.burst).await?;
    let import = import_update(&mut chain, args.batch_edits).await?;
    chain.fed.shutdown().await?;
    Ok((
        lat,
        WireFigures {
            rows: vec![update, add, burst, import],
        },
    ))
}

/// Loads `per_unit` members into each of the district's grassroots unions
/// and waits until the national node holds them.
async fn preload(chain: &mut Chain, per_unit: usize) -> Result<()> {
    eprintln!(
        "bench-sync: loading {per_unit} members into each of the district's {DIST_GRASSROOTS} grassroots unions (not timed) ..."
    );
    let mut nf = chain.node(NAT).app.store.watch_feed();
    let n0 = *nf.borrow_and_update();
    let mut client = chain.node(DIST).members();
    let mut docs = BTreeSet::new();
    for g in 0..DIST_GRASSROOTS {
        let unit = grassroots_id(g);
        let base = 10_000_000 + g * per_unit;
        let mut i = 0;
        while i < per_unit {
            let end = (i + 1000).min(per_unit);
            let rows = (i..end)
                .map(|k| pb::ImportRow {
                    line: (k + 1) as u32,
                    unit_id: unit.clone(),
                    member: Some(member_input(base + k, "Đoàn viên")),
                })
                .collect();
            client
                .import_members(pb::ImportMembersRequest { rows })
                .await?;
            i = end;
        }
        let unit = hopluu_model::UnitId::parse("unit", &unit)?;
        for b in 0..per_unit.div_ceil(1000) as u32 {
            docs.insert(member::roster_doc(&unit, b));
        }
    }
    chain.national_has(&mut nf, n0, &docs).await?;
    for (d, h) in chain.district_heads(&docs).await? {
        chain.heads.insert(d, h);
    }
    Ok(())
}

/// `n` UpdateMember requests in flight at once, on distinct members.
async fn burst(chain: &mut Chain, n: usize) -> Result<Wire> {
    eprintln!("bench-sync: a burst of {n} concurrent UpdateMember ...");
    while chain.members.len() < n {
        chain.edit(EditKind::Add).await?;
    }
    let picked: Vec<(String, DocId)> = chain.members.iter().take(n).cloned().collect();
    let docs: BTreeSet<DocId> = picked.iter().map(|(_, d)| d.clone()).collect();
    let before_heads = chain.district_heads(&docs).await?;
    let mut nf = chain.node(NAT).app.store.watch_feed();
    let before = quiet(&chain.links()).await;
    let n0 = *nf.borrow_and_update();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (id, _)) in picked.iter().enumerate() {
        let mut c = chain.node(DIST).members();
        let id = id.clone();
        let position = format!("Tổ phó {}-{k}", chain.edits);
        tasks.spawn(async move {
            c.update_member(pb::UpdateMemberRequest {
                member_id: id,
                position: Some(position),
                ..Default::default()
            })
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let acked = Instant::now();
    chain.edits += n;
    let at = chain.national_has(&mut nf, n0, &docs).await?;
    let after = quiet(&chain.links()).await;
    let change = chain.change_bytes(&before_heads).await?;
    for (d, h) in chain.district_heads(&docs).await? {
        chain.heads.insert(d, h);
    }
    let mut w = Wire {
        what: format!("{n} UpdateMember at once (burst)"),
        edits: n,
        latency: Some(at.saturating_duration_since(acked)),
        ..Wire::default()
    };
    w.add(&before, &after, change);
    Ok(w)
}

/// One ImportMembers that updates the position of `k` members of one
/// grassroots union (one roster document per 1,000 members).
async fn import_update(chain: &mut Chain, k: usize) -> Result<Wire> {
    eprintln!("bench-sync: one ImportMembers updating {k} members ...");
    let unit = format!("{DIST_UNIT}-gb");
    chain
        .node(DIST)
        .create_unit(&unit, "CĐCS Công ty B", "grassroots", DIST_UNIT)
        .await?;
    let base = 5_000_000;
    let rows = |position: &str| -> Vec<pb::ImportRow> {
        (0..k)
            .map(|i| pb::ImportRow {
                line: (i + 1) as u32,
                unit_id: unit.clone(),
                member: Some(member_input(base + i, position)),
            })
            .collect()
    };
    let mut client = chain.node(DIST).members();
    let docs: BTreeSet<DocId> = (0..k.div_ceil(1000).max(1) as u32)
        .map(|b| {
            member::roster_doc(
                &hopluu_model::UnitId::parse("unit", &unit).expect("valid"),
                b,
            )
        })
        .collect();
    // Loaded first, and arrived at the national node.
    let mut nf = chain.node(NAT).app.store.watch_feed();
    let n0 = *nf.borrow_and_update();
    let r = client
        .import_members(pb::ImportMembersRequest {
            rows: rows("Đoàn viên"),
        })
        .await?
        .into_inner();
    ensure!(
        r.results
            .iter()
            .all(|r| r.outcome == pb::ImportOutcome::Created as i32),
        "the batch roster did not load"
    );
    let docs: BTreeSet<DocId> = {
        let mut present = BTreeSet::new();
        for d in docs {
            if chain.node(DIST).app.store.doc_heads(&d).await?.is_some() {
                present.insert(d);
            }
        }
        present
    };
    chain.national_has(&mut nf, n0, &docs).await?;
    let before_heads = chain.district_heads(&docs).await?;
    let before = quiet(&chain.links()).await;
    let n0 = *nf.borrow_and_update();
    let sent = Instant::now();
    let r = client
        .import_members(pb::ImportMembersRequest {
            rows: rows("Tổ trưởng công đoàn"),
        })
        .await?
        .into_inner();
    let acked = Instant::now();
    let updated = r
        .results
        .iter()
        .filter(|r| r.outcome == pb::ImportOutcome::Updated as i32)
        .count();
    ensure!(updated == k, "the import updated {updated} of {k} members");
    let at = chain.national_has(&mut nf, n0, &docs).await?;
    let after = quiet(&chain.links()).await;
    let change = chain.change_bytes(&before_heads).await?;
    let mut w = Wire {
        what: format!(
            "one ImportMembers updating {k} positions ({} ms at the district)",
            (acked - sent).as_millis()
        ),
        edits: k,
        latency: Some(at.saturating_duration_since(acked)),
        ..Wire::default()
    };
    w.add(&before, &after, change);
    Ok(w)
}

// ---- part 3: initial aggregation ----------------------------------------

/// A `hopluu serve` process.
struct NationalProcess {
    /// None once stopped.
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for NationalProcess {
    fn drop(&mut self) {
        // Only if something failed before a graceful stop.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl NationalProcess {
    async fn start(config: &Path, log: &Path) -> Result<NationalProcess> {
        let exe = std::env::current_exe().context("finding the hopluu binary")?;
        let config = config.to_owned();
        let log = log.to_owned();
        tokio::task::spawn_blocking(move || {
            let err = std::fs::File::create(&log)?;
            let mut child = Command::new(&exe)
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(err)
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            let addr = line
                .trim()
                .strip_prefix("hopluu node ")
                .and_then(|l| l.rsplit_once(" listening on "))
                .and_then(|(_, a)| a.parse::<SocketAddr>().ok());
            let Some(addr) = addr else {
                let _ = child.kill();
                let _ = child.wait();
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                bail!(
                    "the national node did not start (printed {line:?}); its log:\n{}",
                    tail(&logged, 20)
                );
            };
            Ok(NationalProcess {
                pid: child.id(),
                child: Some(child),
                addr,
                _stdout: stdout,
            })
        })
        .await?
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default()
    }

    /// User plus system CPU seconds so far.
    fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.pid()))
    }

    /// SIGTERM, as systemd stops a node, and wait for a clean exit.
    async fn stop(mut self) -> Result<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(status.success(), "kill -TERM {pid} failed");
        let mut child = self.child.take().expect("running until stopped");
        let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
        ensure!(exit.success(), "the national node exited with {exit}");
        Ok(())
    }
}

/// A log line without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// utime + stime of a `/proc/.../stat` file, in seconds (USER_HZ = 100).
fn cpu_secs(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The national node's configuration: its certificate from `pki`, and
/// the provinces allowed to sync with it.
fn national_toml(dir: &Path, url: Option<&str>, pki: &Pki, provinces: usize) -> Result<String> {
    let mut s = format!(
        "[node]\nid = \"{NAT}\"\nunit = \"{NAT}\"\nunit_name = \"{NATIONAL_NAME}\"\nunit_kind = \"central\"\ndata_dir = {:?}\n\n",
        dir.display().to_string()
    );
    if let Some(url) = url {
        s.push_str(&format!("[database]\nurl = {url:?}\n\n"));
    }
    s.push_str(&format!(
        "[grpc]\nlisten = \"127.0.0.1:0\"\n\n[log]\nlevel = {QUIET_LOG:?}\n"
    ));
    let tls = pki.node_tls(NAT, NAT)?;
    s.push_str(&format!(
        "\n[tls]\ncert = {:?}\nkey = {:?}\nca = [{:?}]\n",
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
        tls.ca[0].display().to_string()
    ));
    for p in 0..provinces {
        s.push_str(&format!(
            "\n[[replication.children]]\nnode_id = \"{}-node\"\nunit = \"{}\"\n",
            province_id(p),
            province_id(p)
        ));
    }
    Ok(s)
}

fn province_id(p: usize) -> String {
    format!("p{p:02}")
}

fn province_config(
    root: &Path,
    p: usize,
    upstream: Option<SocketAddr>,
    pki: &Pki,
) -> Result<Config> {
    let unit = province_id(p);
    let id = format!("{unit}-node");
    let mut c = Config::embedded(&root.join(&id));
    c.tls = Some(pki.node_tls(&id, &unit)?);
    c.node.id = id;
    c.node.unit = unit;
    c.node.unit_name = None;
    c.node.unit_kind = None;
    c.node.unit_parent = None;
    c.grpc.listen = "127.0.0.1:0".parse()?;
    c.log.level = QUIET_LOG.into();
    c.replication.backoff_min_ms = 20;
    c.replication.backoff_max_ms = 500;
    c.limits.enabled = false;
    if let Some(addr) = upstream {
        c.replication.upstreams = vec![Upstream {
            node_id: NAT.to_owned(),
            address: format!("https://{addr}"),
        }];
    }
    c.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(c)
}

struct Aggregation {
    units: usize,
    load: Duration,
    wall: Duration,
    wire_up: u64,
    wire_down: u64,
    docs: usize,
    peak_rss_kb: Option<u64>,
    rss_kb: Option<u64>,
    national_cpu: Option<f64>,
    provinces_cpu: Option<f64>,
    national_bytes: Option<u64>,
    /// What the national node logged at warn level or above.
    warnings: Vec<String>,
    /// Province p00: members, its rosters saved, their changes (bytes).
    sample: (usize, usize, usize),
}

impl Aggregation {
    fn render(&self, args: &BenchSyncArgs) -> String {
        let n = args.members.max(1) as f64;
        let secs = self.wall.as_secs_f64().max(1e-9);
        let mut out = format!(
            "3. Initial aggregation: {} members in {} grassroots unions of {} provinces, loaded into the provinces' own stores (ImportMembers x{}, not timed: {:.1} s); then the national node (a separate `hopluu serve` process on {}, knowing only the province records) starts and the provinces connect\n",
            args.members,
            self.units,
            args.provinces,
            args.import_batch,
            self.load.as_secs_f64(),
            args.national.as_str(),
        );
        let mut t = Table::new(&[
            "members",
            "documents",
            "wall time",
            "members/s",
            "wire B/member (up / down)",
            "national peak RSS (VmHWM)",
            "RSS at end",
            "national CPU",
            "provinces CPU",
            "national store",
        ]);
        let mib = |kb: Option<u64>| {
            kb.map(|k| format!("{:.0} MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "-".into())
        };
        t.row(vec![
            args.members.to_string(),
            self.docs.to_string(),
            format!("{:.1} s", secs),
            format!("{:.0}", n / secs),
            format!(
                "{:.0} ({:.0} / {:.0})",
                (self.wire_up + self.wire_down) as f64 / n,
                self.wire_up as f64 / n,
                self.wire_down as f64 / n
            ),
            mib(self.peak_rss_kb),
            mib(self.rss_kb),
            self.national_cpu
                .map(|c| format!("{c:.1} s"))
                .unwrap_or_else(|| "-".into()),
            self.provinces_cpu
                .map(|c| format!("{c:.1} s"))
                .unwrap_or_else(|| "-".into()),
            self.national_bytes
                .map(|b| format!("{:.0} B/member", b as f64 / n))
                .unwrap_or_else(|| "-".into()),
        ]);
        out.push_str(&t.render());
        let (m, saved, changes) = self.sample;
        let m = m.max(1) as f64;
        out.push_str(&format!(
            "for comparison, province p00's rosters: {:.0} B/member as whole compressed documents (automerge save), {:.0} B/member as the changes they are made of\n",
            saved as f64 / m,
            changes as f64 / m
        ));
        if !self.warnings.is_empty() {
            out.push_str(&format!(
                "the national node logged {} warnings, the first: {}\n",
                self.warnings.len(),
                self.warnings[0]
            ));
        }
        out.push_str(
            "wall time: from starting the provinces' nodes (dialling the national node) until its members projection counts every member; CPU: user+system seconds during the aggregation (provinces: this process)\n\n",
        );
        out
    }
}

async fn aggregation(args: &BenchSyncArgs, national_url: Option<&str>) -> Result<Aggregation> {
    let dir = tempfile::TempDir::new()?;
    let root = dir.path();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let nat_dir = root.join(NAT);
    std::fs::create_dir_all(&nat_dir)?;
    let pki = Pki::create(&root.join("pki"), "hopluu bench-sync CA")?;
    let toml = root.join("national.toml");
    std::fs::write(
        &toml,
        national_toml(&nat_dir, national_url, &pki, args.provinces)?,
    )?;
    let log = root.join("national.log");

    // The national node decides the province records.
    eprintln!(
        "bench-sync: aggregation: national node creates {} province records ...",
        args.provinces
    );
    let national = NationalProcess::start(&toml, &log).await?;
    let channel = connect(&pki, national.addr).await?;
    let mut units = pb::unit_service_client::UnitServiceClient::new(channel.clone());
    for p in 0..args.provinces {
        units
            .create_unit(pb::CreateUnitRequest {
                id: Some(province_id(p)),
                name: format!("LĐLĐ tỉnh {}", province_id(p).to_uppercase()),
                kind: "provincial".into(),
                parent_id: NAT.into(),
                ..Default::default()
            })
            .await?;
    }
    // Each province dials through its own counting proxy, and fetches its
    // record once.
    let mut proxies = Vec::new();
    let mut nodes = Vec::new();
    for p in 0..args.provinces {
        let proxy = FaultProxy::start(national.addr).await?;
        let node = LocalNode::start(
            province_config(root, p, Some(proxy.addr()), &pki)?,
            clock.clone(),
            &pki,
        )
        .await?;
        proxies.push(proxy);
        nodes.push(node);
    }
    for (p, node) in nodes.iter().enumerate() {
        wait_unit(node, &province_id(p)).await?;
    }
    for node in nodes.drain(..) {
        node.stop().await?;
    }
    drop(channel);
    national.stop().await?;

    // Load every province alone (no upstream configured: no dialling).
    eprintln!(
        "bench-sync: aggregation: loading {} members into {} provinces (not timed) ...",
        args.members, args.provinces
    );
    let load_started = Instant::now();
    for p in 0..args.provinces {
        nodes.push(
            LocalNode::start(province_config(root, p, None, &pki)?, clock.clone(), &pki).await?,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (p, node) in nodes.iter().enumerate() {
        let channel = node.channel.clone();
        let from = args.members * p / args.provinces;
        let to = args.members * (p + 1) / args.provinces;
        let (communes, grassroots, batch) = (args.communes, args.grassroots, args.import_batch);
        tasks.spawn(async move {
            load_province(channel, p, from..to, communes, grassroots, batch).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    // What the national node will hold: everything but private rosters.
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for node in &nodes {
        for d in node.app.store.doc_ids().await? {
            if d.kind() != DocKind::RosterPrivate {
                expected.insert(d.to_string());
            }
        }
    }
    let load = load_started.elapsed();
    // For comparison with the bytes on the wire: province p00's rosters as
    // whole compressed documents, and as the changes they are made of.
    let (mut saved, mut changes) = (0usize, 0usize);
    let store = &nodes[0].app.store;
    for d in store.doc_ids().await? {
        if d.kind() == DocKind::Roster {
            let (s, c) = store
                .read_doc(&d, |doc| {
                    let c: usize = doc
                        .get_changes(&[])
                        .iter()
                        .map(|c| c.raw_bytes().len())
                        .sum();
                    (doc.save().len(), c)
                })
                .await?
                .unwrap_or((0, 0));
            saved += s;
            changes += c;
        }
    }
    let sample_members = args.members / args.provinces;
    for node in nodes.drain(..) {
        node.stop().await?;
    }
    eprintln!(
        "bench-sync: aggregation: loaded in {:.1} s; {} documents to aggregate",
        load.as_secs_f64(),
        expected.len()
    );

    // The national node starts again (it holds the province records only)
    // and the provinces connect.
    let national = NationalProcess::start(&toml, &log).await?;
    for proxy in &proxies {
        proxy.set_target(national.addr);
    }
    let channel = connect(&pki, national.addr).await?;
    let mut info = pb::node_service_client::NodeServiceClient::new(channel.clone());
    let mut reports = pb::report_service_client::ReportServiceClient::new(channel.clone());
    let wire0: Vec<ProxyStats> = proxies.iter().map(|p| p.stats()).collect();
    let cpu0 = national.cpu_secs();
    let self0 = cpu_secs("/proc/self/stat");
    let started = Instant::now();
    for (p, proxy) in proxies.iter().enumerate() {
        let config = province_config(root, p, Some(proxy.addr()), &pki)?;
        nodes.push(LocalNode::start(config, clock.clone(), &pki).await?);
    }
    let limit = Duration::from_secs(args.timeout_secs);
    let mut last_note = Instant::now();
    let wall = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let i = info
            .get_node_info(pb::GetNodeInfoRequest {})
            .await?
            .into_inner();
        if i.documents as usize >= expected.len() {
            let r = reports
                .members_report(pb::MembersReportRequest {
                    unit_id: NAT.into(),
                })
                .await?
                .into_inner();
            let active = r.total.map(|t| t.active).unwrap_or(0) as usize;
            if active >= args.members {
                break started.elapsed();
            }
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            last_note = Instant::now();
            eprintln!(
                "bench-sync: aggregation: {:.0} s, national holds {} of {} documents",
                started.elapsed().as_secs_f64(),
                i.documents,
                expected.len()
            );
        }
        if started.elapsed() > limit {
            bail!(
                "the national node holds {} of {} documents after {limit:?}",
                i.documents,
                expected.len()
            );
        }
    };
    let wire1: Vec<ProxyStats> = proxies.iter().map(|p| p.stats()).collect();
    let (mut up, mut down) = (0, 0);
    for (a, b) in wire0.iter().zip(&wire1) {
        let (u, d) = bytes_delta(a, b);
        up += u;
        down += d;
    }
    let status = national.status();
    // Before the provinces stop (their sessions' ends are logged).
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let warnings: Vec<String> = logged
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .map(strip_ansi)
        .collect();
    let national_cpu = national.cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    let provinces_cpu = cpu_secs("/proc/self/stat").zip(self0).map(|(b, a)| b - a);
    for node in nodes.drain(..) {
        node.stop().await?;
    }
    drop((info, reports, channel));
    national.stop().await?;
    for p in proxies {
        p.shutdown().await;
    }
    let national_bytes = if national_url.is_none() {
        let db = nat_dir.join("hopluu.sqlite");
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Some(size(db.clone()) + size(db.with_extension("sqlite-wal")))
    } else {
        None
    };
    Ok(Aggregation {
        units: args.provinces * args.communes * args.grassroots,
        load,
        wall,
        wire_up: up,
        wire_down: down,
        docs: expected.len(),
        peak_rss_kb: proc_kb(&status, "VmHWM:"),
        rss_kb: proc_kb(&status, "VmRSS:"),
        national_cpu,
        provinces_cpu,
        national_bytes,
        sample: (sample_members, saved, changes),
        warnings,
    })
}

async fn connect(pki: &Pki, addr: SocketAddr) -> Result<Channel> {
    pki.channel(addr, &Caller::admin()).await
}

/// Creates a province's communes and grassroots unions and imports its
/// members `range`, each union's roster together.
async fn load_province(
    channel: Channel,
    p: usize,
    range: std::ops::Range<usize>,
    communes: usize,
    grassroots: usize,
    batch: usize,
) -> Result<()> {
    let pid = province_id(p);
    let mut units = pb::unit_service_client::UnitServiceClient::new(channel.clone());
    let mut leaves = Vec::new();
    for c in 0..communes {
        let cid = format!("{pid}-c{c}");
        units
            .create_unit(pb::CreateUnitRequest {
                id: Some(cid.clone()),
                name: format!("Công đoàn xã {cid}"),
                kind: "commune".into(),
                parent_id: pid.clone(),
                ..Default::default()
            })
            .await?;
        for g in 0..grassroots {
            let gid = format!("{cid}-g{g}");
            units
                .create_unit(pb::CreateUnitRequest {
                    id: Some(gid.clone()),
                    name: format!("CĐCS {gid}"),
                    kind: "grassroots".into(),
                    parent_id: cid.clone(),
                    ..Default::default()
                })
                .await?;
            leaves.push(gid);
        }
    }
    let count = range.len();
    let per_unit = count.div_ceil(leaves.len()).max(1);
    let mut members = pb::member_service_client::MemberServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let mut i = 0;
    while i < count {
        let end = (i + batch.max(1)).min(count);
        let rows = (i..end)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: leaves[(k / per_unit).min(leaves.len() - 1)].clone(),
                member: Some(member_input(range.start + k, "Đoàn viên")),
            })
            .collect();
        let r = members
            .import_members(pb::ImportMembersRequest { rows })
            .await?
            .into_inner();
        if let Some(bad) = r
            .results
            .iter()
            .find(|r| r.outcome == pb::ImportOutcome::Rejected as i32)
        {
            bail!(
                "province {pid}: row {} rejected: {:?}",
                bad.line,
                bad.errors
            );
        }
        i = end;
    }
    Ok(())
}
