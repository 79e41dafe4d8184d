//! Nodes killed with SIGKILL in the middle of a sync, restarted on the same
//! data: each converges, and nothing it acknowledged is lost, neither on its
//! own disk nor on the way to the national node. Its database passes
//! `Store::integrity_check` after every kill.
//!
//! # Why the killed node re-executes this test binary
//!
//! A SIGKILL needs a process of its own. The killed node is this very test
//! executable (`std::env::current_exe()`), started again with
//! `--exact crash::child_node_entry` and [`CHILD_ENV`] naming a node
//! configuration: that test then runs the node (`LocalNode::start`, the code
//! `hopluu serve` runs: store, gRPC server, replication) and prints its
//! address. Its certificate is the federation's (`ROOT/pki`), like every
//! other node's. This is preferred to spawning `target/debug/hopluu`: the binary
//! is always the code under test (a `hopluu` built earlier may be stale, and
//! `cargo test -p hopluu-tests` does not build it), and no `cargo build` is
//! needed from inside a test, which would wait on the lock of the running
//! `cargo test`. Without the variable, `child_node_entry` checks that the
//! configurations these tests write for their children parse back to the
//! same configuration.
//!
//! - [`a_district_killed_mid_sync_loses_nothing_it_acknowledged`]. The
//!   district is the child process; clients import members (batches of 200)
//!   and add and update members at it without pause, so its session towards
//!   the province always has batches in flight; it is killed at a random
//!   moment three times.
//! - [`a_province_killed_while_relaying_loses_nothing`]. The province (the
//!   relay) is the child process; the district, in-process, dials only the
//!   province, so everything it writes has to pass through the province that
//!   is killed at random moments while relaying it to the national node.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::pki::{Caller, Pki};
use hopluu_devcluster::proxy::FaultProxy;
use hopluu_model::SystemClock;
use hopluu_node::config::{self, Config, TlsSection, Upstream};
use hopluu_proto::v1 as pb;
use rand::Rng;
use rand::rngs::StdRng;
use sqlx::Row;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::check::{self, Ledger, View};

/// Names the configuration file of a node to run in this process.
pub const CHILD_ENV: &str = "HOPLUU_E2E_CHILD_CONFIG";
/// What the child prints once its node serves.
const READY: &str = "hopluu-e2e child node listening on ";

const VN: &str = "vn";
const PROVINCE: &str = "hau-giang";
const DISTRICT: &str = "hg-chau-thanh";
const KILLS: usize = 3;

fn grassroots() -> Vec<String> {
    (1..=4).map(|i| format!("{DISTRICT}-g{i}")).collect()
}

/// The child's side: runs the node configured in `$HOPLUU_E2E_CHILD_CONFIG`
/// until the process is killed. Without the variable (an ordinary test run)
/// it checks that [`config_toml`] writes configurations that read back equal.
#[test]
fn child_node_entry() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        let dir = Path::new("/var/lib/hopluu-e2e/node");
        let ups = [
            (PROVINCE.to_owned(), "127.0.0.1:7401".parse().unwrap()),
            (VN.to_owned(), "127.0.0.1:7402".parse().unwrap()),
        ];
        let tls = TlsSection {
            cert: dir.join("pki/hg-chau-thanh.pem"),
            key: dir.join("pki/hg-chau-thanh.key"),
            ca: vec![dir.join("pki/ca.pem"), dir.join("pki/ca-next.pem")],
        };
        let mut c = node_config(dir, DISTRICT, &ups, tls);
        c.replication.children.push(config::Child {
            node_id: "hg-chau-thanh-a".into(),
            unit: "hg-chau-thanh-a".into(),
        });
        c.database.url = Some("postgres://postgres@127.0.0.1:5432/x".into());
        c.log.level = "hopluu_sync=debug,info".into();
        let text = config_toml(&c);
        let back = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, c, "{text}");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let text = std::fs::read_to_string(&path).expect("the child's configuration");
        let config = Config::from_toml(&text).expect("a valid configuration");
        if std::env::var_os("RUST_LOG").is_none() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log.level))
                .with_writer(std::io::stderr)
                .try_init();
        } else {
            check::init_tracing();
        }
        let ca_dir = config.tls.as_ref().expect("[tls]").ca[0]
            .parent()
            .expect("the CA's directory")
            .to_owned();
        let pki = Pki::open(&ca_dir).expect("the federation's CA");
        let node = LocalNode::start(config, Arc::new(SystemClock), &pki)
            .await
            .expect("the child node starts");
        println!("\n{READY}{}", node.addr);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // Until SIGKILL.
        std::future::pending::<()>().await;
    });
}

/// A node's configuration for these tests: quick reconnects, small roster
/// buckets and batches.
fn node_config(
    dir: &Path,
    id: &str,
    upstreams: &[(String, SocketAddr)],
    tls: TlsSection,
) -> Config {
    let mut c = Config::embedded(dir);
    c.tls = Some(tls);
    c.node.id = id.to_owned();
    c.node.unit = id.to_owned();
    c.node.unit_name = None;
    c.node.unit_kind = None;
    c.grpc.listen = "127.0.0.1:0".parse().expect("an address");
    c.roster.bucket_size = 250;
    c.log.level = "warn".to_owned();
    c.replication.upstreams = upstreams
        .iter()
        .map(|(id, addr)| Upstream {
            node_id: id.clone(),
            address: format!("https://{addr}"),
        })
        .collect();
    c.replication.backoff_min_ms = 20;
    c.replication.backoff_max_ms = 500;
    c.replication.ack_timeout_secs = 5;
    c.replication.batch_docs = 4;
    c
}

/// `c` as a node.toml (the node's configuration has no serializer).
fn config_toml(c: &Config) -> String {
    let q = |s: &str| format!("{s:?}");
    let mut t = String::new();
    let n = &c.node;
    let _ = writeln!(t, "[node]\nid = {}\nunit = {}", q(&n.id), q(&n.unit));
    for (k, v) in [
        ("unit_name", &n.unit_name),
        ("unit_kind", &n.unit_kind),
        ("unit_parent", &n.unit_parent),
    ] {
        if let Some(v) = v {
            let _ = writeln!(t, "{k} = {}", q(v));
        }
    }
    let _ = writeln!(t, "data_dir = {}", q(&n.data_dir.to_string_lossy()));
    let _ = writeln!(t, "\n[database]");
    if let Some(url) = &c.database.url {
        let _ = writeln!(t, "url = {}", q(url));
    }
    let _ = writeln!(
        t,
        "max_connections = {}\ncache_docs = {}",
        c.database.max_connections, c.database.cache_docs
    );
    let _ = writeln!(
        t,
        "\n[grpc]\nlisten = {}\nmax_message_bytes = {}",
        q(&c.grpc.listen.to_string()),
        c.grpc.max_message_bytes
    );
    let _ = writeln!(t, "\n[roster]\nbucket_size = {}", c.roster.bucket_size);
    let format = match c.log.format {
        hopluu_node::config::LogFormat::Plain => "plain",
        hopluu_node::config::LogFormat::Json => "json",
    };
    let _ = writeln!(
        t,
        "\n[log]\nformat = {}\nlevel = {}",
        q(format),
        q(&c.log.level)
    );
    let r = &c.replication;
    let _ = writeln!(
        t,
        "\n[replication]\nprivate_depth = {}\nbatch_docs = {}\nbatch_bytes = {}\nin_flight = {}\n\
         ack_timeout_secs = {}\nbackoff_min_ms = {}\nbackoff_max_ms = {}\nfailover_after = {}",
        r.private_depth,
        r.batch_docs,
        r.batch_bytes,
        r.in_flight,
        r.ack_timeout_secs,
        r.backoff_min_ms,
        r.backoff_max_ms,
        r.failover_after
    );
    for u in &r.upstreams {
        let _ = writeln!(
            t,
            "\n[[replication.upstreams]]\nnode_id = {}\naddress = {}",
            q(&u.node_id),
            q(&u.address)
        );
    }
    for ch in &r.children {
        let _ = writeln!(
            t,
            "\n[[replication.children]]\nnode_id = {}\nunit = {}",
            q(&ch.node_id),
            q(&ch.unit)
        );
    }
    if let Some(tls) = &c.tls {
        let path = |p: &Path| q(&p.to_string_lossy());
        let cas: Vec<String> = tls.ca.iter().map(|p| path(p)).collect();
        let _ = writeln!(
            t,
            "\n[tls]\ncert = {}\nkey = {}\nca = [{}]",
            path(&tls.cert),
            path(&tls.key),
            cas.join(", ")
        );
    }
    t
}

/// A node in a process of its own (this test binary, see the module doc).
/// Dropping it kills the process.
pub struct ChildNode {
    name: String,
    config: PathBuf,
    log: PathBuf,
    child: Killed,
    pub addr: SocketAddr,
    pub channel: Channel,
}

impl ChildNode {
    /// Writes `config` next to its data directory and starts the node.
    async fn start(config: &Config, pki: &Pki) -> Result<ChildNode> {
        let dir = config.node.data_dir.clone();
        std::fs::create_dir_all(&dir)?;
        let path = dir.with_extension("toml");
        std::fs::write(&path, config_toml(config))?;
        ChildNode::spawn(&config.node.id, path, dir.with_extension("log"), pki).await
    }

    async fn spawn(name: &str, config: PathBuf, log: PathBuf, pki: &Pki) -> Result<ChildNode> {
        let exe = std::env::current_exe().context("the test executable")?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "crash::child_node_entry",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .context("starting the child node")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            // Reads to the end, so that the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed `test … ... ` on the same line.
                if let Some(at) = line.find(READY)
                    && let Ok(addr) = line[at + READY.len()..].trim().parse()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let child = Killed(child);
        let addr =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120))).await?;
        let Ok(addr) = addr else {
            bail!(
                "child node {name} did not start; its log:\n{}",
                log_tail(&log)
            );
        };
        let channel = pki
            .channel(addr, &Caller::admin())
            .await
            .with_context(|| format!("connecting to child node {name}"))?;
        Ok(ChildNode {
            name: name.to_owned(),
            config,
            log,
            child,
            addr,
            channel,
        })
    }

    /// SIGKILL, and waits for the process to be gone.
    fn kill(mut self) -> Result<(PathBuf, PathBuf)> {
        self.child.0.kill().context("SIGKILL")?;
        let status = self.child.0.wait()?;
        ensure!(!status.success(), "the child exited by itself: {status}");
        Ok((self.config.clone(), self.log.clone()))
    }

    /// Starts the node again on the same configuration and data.
    async fn restart(
        name: &str,
        (config, log): (PathBuf, PathBuf),
        pki: &Pki,
    ) -> Result<ChildNode> {
        ChildNode::spawn(name, config, log, pki).await
    }

    fn members(&self) -> pb::member_service_client::MemberServiceClient<Channel> {
        pb::member_service_client::MemberServiceClient::new(self.channel.clone())
    }

    async fn knows_unit(&self, unit: &str) -> bool {
        pb::unit_service_client::UnitServiceClient::new(self.channel.clone())
            .get_unit(pb::GetUnitRequest {
                unit_id: unit.to_owned(),
            })
            .await
            .is_ok()
    }
}

/// A child process, killed when dropped (a failed test leaves none behind).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl std::fmt::Debug for ChildNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildNode")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The SQLite url of a child's database.
fn sqlite_url(config: &Config) -> String {
    config.database_url()
}

/// Opens the killed node's database: it passes the integrity check, and
/// holds every write it acknowledged.
async fn after_kill(name: &str, config: &Config, ledger: &Ledger) -> Result<()> {
    let view = View::open(name, name, &sqlite_url(config)).await?;
    let problems = view.store.integrity_check().await?;
    ensure!(
        problems.is_empty(),
        "{name}: integrity check after SIGKILL: {problems:?}"
    );
    let missing = check::missing(&view, ledger).await?;
    ensure!(
        missing.is_empty(),
        "{name} lost {} writes it acknowledged before SIGKILL, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    view.store.close().await;
    Ok(())
}

async fn member_count(v: &View) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM members")
        .fetch_one(v.store.pool())
        .await?
        .get(0))
}

/// Writes at `node` without pause until it fails, which it may only do
/// once `killed` is set: imports of 200 rows with private data on every
/// fifth, or (when `singles`) AddMember followed by an update of an earlier
/// member. Returns what was acknowledged.
async fn write_until_killed(
    mut members: pb::member_service_client::MemberServiceClient<Channel>,
    tag: String,
    singles: bool,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    serial: Arc<AtomicU64>,
    acks: Arc<AtomicU64>,
) -> Result<Ledger> {
    let mut ledger = Ledger::default();
    let units = grassroots();
    let mut mine: Vec<String> = Vec::new();
    let failed = |e: anyhow::Error, ledger: Ledger| {
        if killed.load(Ordering::SeqCst) {
            Ok(ledger)
        } else {
            Err(e.context(format!("writer {tag} failed before any kill")))
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let n = serial.fetch_add(1, Ordering::SeqCst);
        if !singles {
            let rows: Vec<(String, pb::MemberInput)> = (0..200)
                .map(|j| {
                    let k = n * 1000 + j;
                    let cccd = format!("{:012}", 30_000_000 + k);
                    (
                        units[(k % 4) as usize].clone(),
                        check::person(
                            &format!("Võ Thị {tag} {k}"),
                            &format!("{tag}-{k:07}"),
                            j.is_multiple_of(5).then_some(cccd.as_str()),
                        ),
                    )
                })
                .collect();
            if let Err(e) = check::import(&mut members, &rows, &mut ledger).await {
                return failed(e, ledger);
            }
            acks.fetch_add(rows.len() as u64, Ordering::SeqCst);
            continue;
        }
        let name = format!("Đặng Văn {tag} {n}");
        let add = pb::AddMemberRequest {
            unit_id: units[(n % 4) as usize].clone(),
            member: Some(check::person(&name, &format!("{tag}-S{n:06}"), None)),
        };
        let r = check::within_limit(|| {
            let (mut members, add) = (members.clone(), add.clone());
            async move { members.add_member(add).await }
        })
        .await;
        match r.map(|m| m.into_inner()) {
            Ok(m) => {
                ledger.member_created(&m);
                mine.push(m.id);
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => return failed(e.into(), ledger),
        }
        if mine.len() >= 2 {
            let id = mine[mine.len() / 2].clone();
            let position = format!("Tổ phó {n}");
            let update = pb::UpdateMemberRequest {
                member_id: id.clone(),
                position: Some(position.clone()),
                ..Default::default()
            };
            let r = check::within_limit(|| {
                let (mut members, update) = (members.clone(), update.clone());
                async move { members.update_member(update).await }
            })
            .await;
            ledger.position(&id, &position, r.is_ok());
            if let Err(e) = r {
                return failed(e.into(), ledger);
            }
        }
    }
    Ok(ledger)
}

/// Waits until `view` has more than `than` members and this round's
/// writers have had `acked` members acknowledged, then a random moment
/// more: a sync is under way, with acknowledged writes in it.
async fn kill_moment(
    view: &View,
    than: i64,
    acks: &AtomicU64,
    acked: u64,
    rng: &mut StdRng,
) -> Result<()> {
    Federation::until(
        &format!(
            "{} receives members, {acked} members acknowledged",
            view.name
        ),
        Duration::from_secs(120),
        || async { Ok(acks.load(Ordering::SeqCst) >= acked && member_count(view).await? > than) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_district_killed_mid_sync_loses_nothing_it_acknowledged() -> Result<()> {
    check::init_tracing();
    let mut rng = check::rng("crash-district");
    let dir = tempfile::tempdir()?;
    let mut fed = Federation::new(dir.path()).with_tuning(|c| {
        c.roster.bucket_size = 250;
        c.replication.batch_docs = 4;
    });
    let limit = Duration::from_secs(120);
    fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
        .await?;
    fed.node(VN)
        .create_unit(PROVINCE, "LĐLĐ tỉnh Hậu Giang", "provincial", VN)
        .await?;
    fed.add(NodeSpec::child(PROVINCE, PROVINCE, &[VN])).await?;
    Federation::until("the province knows its unit", limit, || async {
        Ok(fed.node(PROVINCE).knows_unit(PROVINCE))
    })
    .await?;
    let p = fed.node(PROVINCE);
    p.create_unit(DISTRICT, "LĐLĐ huyện Châu Thành", "district", PROVINCE)
        .await?;
    for g in grassroots() {
        p.create_unit(&g, &format!("CĐCS {g}"), "grassroots", DISTRICT)
            .await?;
    }
    // The district dials its province, then the national node, through
    // proxies of its own.
    let to_province = FaultProxy::start(fed.node(PROVINCE).addr).await?;
    let to_national = FaultProxy::start(fed.node(VN).addr).await?;
    fed.allow_child(PROVINCE, DISTRICT, DISTRICT)?;
    fed.allow_child(VN, DISTRICT, DISTRICT)?;
    let config = node_config(
        &dir.path().join(DISTRICT),
        DISTRICT,
        &[
            (PROVINCE.to_owned(), to_province.addr()),
            (VN.to_owned(), to_national.addr()),
        ],
        fed.pki()?.node_tls(DISTRICT, DISTRICT)?,
    );
    let mut district = ChildNode::start(&config, fed.pki()?).await?;
    for g in grassroots() {
        let d = &district;
        Federation::until(&format!("the district knows {g}"), limit, || async {
            Ok(d.knows_unit(&g).await)
        })
        .await?;
    }
    let national = View::of(fed.node(VN));
    let serial = Arc::new(AtomicU64::new(0));
    let mut ledger = Ledger::default();
    for kill in 0..KILLS {
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicU64::new(0));
        let mut writers = JoinSet::new();
        for (tag, singles) in [("DI", false), ("DJ", false), ("DS", true)] {
            writers.spawn(write_until_killed(
                district.members(),
                format!("{tag}{kill}"),
                singles,
                killed.clone(),
                stop.clone(),
                serial.clone(),
                acks.clone(),
            ));
        }
        // Once 200 members of this round are acknowledged and the national
        // node receives members.
        let before = member_count(&national).await?;
        kill_moment(&national, before, &acks, 200, &mut rng).await?;
        killed.store(true, Ordering::SeqCst);
        let paths = district.kill()?;
        let at_kill = member_count(&national).await?;
        while let Some(r) = writers.join_next().await {
            ledger.merge(r??);
        }
        println!(
            "crash-district: kill {}: {} members acknowledged so far, {} at the national node at the kill",
            kill + 1,
            ledger.members.len(),
            at_kill
        );
        after_kill(DISTRICT, &config, &ledger).await?;
        district = ChildNode::restart(DISTRICT, paths, fed.pki()?).await?;
    }
    // The restarted district still takes writes, and everything reaches
    // the national node.
    let mut members = district.members();
    for i in 0..5 {
        let m = members
            .add_member(pb::AddMemberRequest {
                unit_id: grassroots()[i % 4].clone(),
                member: Some(check::person(
                    &format!("Huỳnh Văn {i}"),
                    &format!("DZ-{i:04}"),
                    None,
                )),
            })
            .await?
            .into_inner();
        ledger.member_created(&m);
    }
    let district_view = View::open(DISTRICT, DISTRICT, &sqlite_url(&config)).await?;
    check::wait_all_present(&national, &ledger, Duration::from_secs(240)).await?;
    let views = [
        national.clone(),
        View::of(fed.node(PROVINCE)),
        district_view.clone(),
    ];
    let f = check::wait_converged(&views, Duration::from_secs(240)).await?;
    println!(
        "crash-district: converged after {KILLS} kills: {} members acknowledged, {} documents",
        ledger.members.len(),
        f.docs
    );
    district_view.store.close().await;
    district.kill()?;
    after_kill(DISTRICT, &config, &ledger).await?;
    fed.shutdown().await?;
    to_province.shutdown().await;
    to_national.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_province_killed_while_relaying_loses_nothing() -> Result<()> {
    check::init_tracing();
    let mut rng = check::rng("crash-province");
    let dir = tempfile::tempdir()?;
    let limit = Duration::from_secs(120);
    let mut fed = Federation::new(dir.path());
    fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
        .await?;
    fed.node(VN)
        .create_unit(PROVINCE, "LĐLĐ tỉnh Hậu Giang", "provincial", VN)
        .await?;
    // The province, in a process of its own, dials the national node; its
    // district may dial it.
    let up = FaultProxy::start(fed.node(VN).addr).await?;
    fed.allow_child(VN, PROVINCE, PROVINCE)?;
    let mut pconfig = node_config(
        &dir.path().join(PROVINCE),
        PROVINCE,
        &[(VN.to_owned(), up.addr())],
        fed.pki()?.node_tls(PROVINCE, PROVINCE)?,
    );
    pconfig.replication.children.push(config::Child {
        node_id: DISTRICT.into(),
        unit: DISTRICT.into(),
    });
    let mut province = ChildNode::start(&pconfig, fed.pki()?).await?;
    {
        let p = &province;
        Federation::until("the province knows its unit", limit, || async {
            Ok(p.knows_unit(PROVINCE).await)
        })
        .await?;
    }
    let units = pb::unit_service_client::UnitServiceClient::new(province.channel.clone());
    let mut plan = vec![(DISTRICT.to_owned(), "district", PROVINCE.to_owned())];
    plan.extend(
        grassroots()
            .into_iter()
            .map(|g| (g, "grassroots", DISTRICT.to_owned())),
    );
    for (id, kind, parent) in plan {
        units
            .clone()
            .create_unit(pb::CreateUnitRequest {
                id: Some(id.clone()),
                name: format!("Công đoàn {id}"),
                kind: kind.to_owned(),
                parent_id: parent,
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating {id} at the province"))?;
    }
    // The district, in-process, dials only its province: what it writes
    // must pass through the relay.
    let down = FaultProxy::start(province.addr).await?;
    let mut dconfig = node_config(
        &dir.path().join(DISTRICT),
        DISTRICT,
        &[(PROVINCE.to_owned(), down.addr())],
        fed.pki()?.node_tls(DISTRICT, DISTRICT)?,
    );
    dconfig.log.level = "info".into();
    let district = LocalNode::start(dconfig, Arc::new(SystemClock), fed.pki()?).await?;
    for g in grassroots() {
        Federation::until(&format!("the district knows {g}"), limit, || async {
            Ok(district.knows_unit(&g))
        })
        .await?;
    }
    let national = View::of(fed.node(VN));
    let serial = Arc::new(AtomicU64::new(0));
    // The district writes throughout (it is never killed).
    let never = Arc::new(AtomicBool::new(false));
    let stop_district = Arc::new(AtomicBool::new(false));
    let mut district_writers = JoinSet::new();
    for (tag, singles) in [("RI", false), ("RS", true)] {
        district_writers.spawn(write_until_killed(
            district.members(),
            tag.to_owned(),
            singles,
            never.clone(),
            stop_district.clone(),
            serial.clone(),
            Arc::new(AtomicU64::new(0)),
        ));
    }
    let mut ledger = Ledger::default();
    for kill in 0..KILLS {
        // The province writes too, until it is killed.
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicU64::new(0));
        let mut writers = JoinSet::new();
        writers.spawn(write_until_killed(
            province.members(),
            format!("PS{kill}"),
            true,
            killed.clone(),
            stop.clone(),
            serial.clone(),
            acks.clone(),
        ));
        // Once the national node has received a few hundred more members
        // through the province, at a random moment: the relay is busy.
        let before = member_count(&national).await?;
        kill_moment(&national, before + 300, &acks, 2, &mut rng).await?;
        killed.store(true, Ordering::SeqCst);
        let paths = province.kill()?;
        let at_kill = member_count(&national).await?;
        let mut province_ledger = Ledger::default();
        while let Some(r) = writers.join_next().await {
            province_ledger.merge(r??);
        }
        println!(
            "crash-province: kill {}: the province acknowledged {} members; {} at the national node at the kill",
            kill + 1,
            province_ledger.members.len(),
            at_kill
        );
        after_kill(PROVINCE, &pconfig, &province_ledger).await?;
        ledger.merge(province_ledger);
        // The district keeps writing while the relay is down.
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..1000))).await;
        province = ChildNode::restart(PROVINCE, paths, fed.pki()?).await?;
        down.set_target(province.addr);
    }
    stop_district.store(true, Ordering::SeqCst);
    while let Some(r) = district_writers.join_next().await {
        ledger.merge(r??);
    }
    let province_view = View::open(PROVINCE, PROVINCE, &sqlite_url(&pconfig)).await?;
    check::wait_all_present(&national, &ledger, Duration::from_secs(240)).await?;
    let views = [national.clone(), province_view.clone(), View::of(&district)];
    let f = check::wait_converged(&views, Duration::from_secs(240)).await?;
    println!(
        "crash-province: converged after {KILLS} kills of the relay: {} members acknowledged, {} documents",
        ledger.members.len(),
        f.docs
    );
    province_view.store.close().await;
    district.stop().await?;
    province.kill()?;
    after_kill(PROVINCE, &pconfig, &ledger).await?;
    fed.shutdown().await?;
    up.shutdown().await;
    down.shutdown().await;
    Ok(())
}
