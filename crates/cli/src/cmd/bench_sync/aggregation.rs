//! Part 3: initial aggregation. The provinces load their members alone;
//! then a national `hopluu serve` process starts, the provinces connect,
//! and the time until it counts every member and its peak RSS are taken.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use hopluu_devcluster::federation::LocalNode;
use hopluu_devcluster::pki::{Caller, Pki};
use hopluu_devcluster::proxy::{FaultProxy, ProxyStats};
use hopluu_model::{Clock, DocId, DocKind, SystemClock};
use hopluu_node::config::{Config, Upstream};
use hopluu_proto::v1 as pb;
use tonic::transport::Channel;

use super::chain::NAT;
use super::{BenchSyncArgs, NATIONAL_NAME, QUIET_LOG, bytes_delta, proc_kb, wait_unit};
use crate::cmd::bench_common::member_input;
use crate::output::Table;

/// A `hopluu serve` process.
pub(super) struct NationalProcess {
    /// None once stopped.
    pub(super) child: Option<Child>,
    pub(super) pid: u32,
    pub(super) addr: SocketAddr,
    pub(super) _stdout: BufReader<ChildStdout>,
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
    pub(super) async fn start(config: &Path, log: &Path) -> Result<NationalProcess> {
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

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    pub(super) fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default()
    }

    /// User plus system CPU seconds so far.
    pub(super) fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.pid()))
    }

    /// SIGTERM, as systemd stops a node, and wait for a clean exit.
    pub(super) async fn stop(mut self) -> Result<()> {
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
pub(super) fn strip_ansi(line: &str) -> String {
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

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// utime + stime of a `/proc/.../stat` file, in seconds (USER_HZ = 100).
pub(super) fn cpu_secs(path: &str) -> Option<f64> {
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
pub(super) fn national_toml(
    dir: &Path,
    url: Option<&str>,
    pki: &Pki,
    provinces: usize,
) -> Result<String> {
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

pub(super) fn province_id(p: usize) -> String {
    format!("p{p:02}")
}

pub(super) fn province_config(
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

pub(super) struct Aggregation {
    pub(super) units: usize,
    pub(super) load: Duration,
    pub(super) wall: Duration,
    pub(super) wire_up: u64,
    pub(super) wire_down: u64,
    pub(super) docs: usize,
    pub(super) peak_rss_kb: Option<u64>,
    pub(super) rss_kb: Option<u64>,
    pub(super) national_cpu: Option<f64>,
    pub(super) provinces_cpu: Option<f64>,
    pub(super) footprint: Option<super::footprint::Footprint>,
    /// What the national node logged at warn level or above.
    pub(super) warnings: Vec<String>,
    /// Province p00: members, its rosters saved, their changes (bytes).
    pub(super) sample: (usize, usize, usize),
    /// The same documents decoded, checked, projected and stored by one
    /// process with no network ([`super::floor`]).
    pub(super) floor: Duration,
    /// Steady ingest, measured after the aggregation ([`super::ingest`]).
    pub(super) ingest: Option<super::ingest::Ingest>,
}

impl Aggregation {
    pub(super) fn render(&self, args: &BenchSyncArgs) -> String {
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
            self.footprint
                .as_ref()
                .map(|f| format!("{:.0} B/member", f.total as f64 / n))
                .unwrap_or_else(|| "-".into()),
        ]);
        out.push_str(&t.render());
        if let Some(f) = &self.footprint {
            out.push_str(&f.render(args.members, 0.02));
        }
        let (m, saved, changes) = self.sample;
        let m = m.max(1) as f64;
        out.push_str(&format!(
            "for comparison, province p00's rosters: {:.0} B/member as whole compressed documents (automerge save), {:.0} B/member as the changes they are made of\n",
            saved as f64 / m,
            changes as f64 / m
        ));
        out.push_str(&format!(
            "floor: the same {} documents decoded, checked, projected and stored by one process with no network: {:.1} s ({:.0} members/s); aggregation / floor = {:.2} (aim: at most 2)\n",
            self.docs,
            self.floor.as_secs_f64(),
            n / self.floor.as_secs_f64().max(1e-9),
            secs / self.floor.as_secs_f64().max(1e-9),
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
        if let Some(i) = &self.ingest {
            out.push_str(&i.render(args));
        }
        out
    }
}

pub(super) async fn aggregation(
    args: &BenchSyncArgs,
    national_url: Option<&str>,
) -> Result<Aggregation> {
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
        for d in node.app.store().doc_ids().await? {
            if d.kind() != DocKind::RosterPrivate {
                expected.insert(d.to_string());
            }
        }
    }
    let load = load_started.elapsed();
    // For comparison with the bytes on the wire: province p00's rosters as
    // whole compressed documents, and as the changes they are made of.
    let (mut saved, mut changes) = (0usize, 0usize);
    let store = &nodes[0].app.store();
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
    // The documents as the national node will receive them, for the floor.
    let mut floor_docs: Vec<(DocId, Vec<u8>)> = Vec::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for node in &nodes {
        for d in node.app.store().doc_ids().await? {
            if d.kind() != DocKind::RosterPrivate && taken.insert(d.to_string()) {
                let bytes = node.app.store().doc_bytes(&d).await?.unwrap_or_default();
                floor_docs.push((d, bytes));
            }
        }
    }
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
                    as_of: String::new(),
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
    let ingest = if args.ingest_percent > 0 {
        eprintln!("bench-sync: steady ingest ...");
        let url = match national_url {
            Some(u) => u.to_owned(),
            None => format!("sqlite:{}?mode=ro", nat_dir.join("hopluu.sqlite").display()),
        };
        Some(
            super::ingest::measure(args, &nodes, &url)
                .await
                .context("steady ingest")?,
        )
    } else {
        None
    };
    for node in nodes.drain(..) {
        node.stop().await?;
    }
    drop((info, reports, channel));
    national.stop().await?;
    for p in proxies {
        p.shutdown().await;
    }
    let footprint = match national_url {
        None => super::footprint::sqlite(&nat_dir.join("hopluu.sqlite")).await,
        Some(url) => super::footprint::postgres(url).await,
    }
    .context("the national store's size")?;
    // The floor: the same documents stored by this process alone, on the
    // national node's backend (a second throwaway database on PostgreSQL).
    eprintln!("bench-sync: aggregation: measuring the floor ...");
    let floor_pg = super::national_database(args.national, &args.postgres, "floor").await?;
    let floor =
        super::floor::measure(&floor_docs, floor_pg.as_ref().map(|p| p.url.as_str()), root).await;
    if let Some(pg) = floor_pg {
        pg.drop().await?;
    }
    let floor = floor.context("the floor")?;

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
        footprint: Some(footprint),
        sample: (sample_members, saved, changes),
        warnings,
        floor,
        ingest,
    })
}

pub(super) async fn connect(pki: &Pki, addr: SocketAddr) -> Result<Channel> {
    pki.channel(addr, &Caller::admin()).await
}

/// The grassroots union of a province's `k`-th member of `count`: each
/// union holds a stretch of them, in the order the unions were created.
pub(super) fn leaf_of(
    p: usize,
    k: usize,
    count: usize,
    communes: usize,
    grassroots: usize,
) -> String {
    let leaves = communes * grassroots;
    let per_unit = count.div_ceil(leaves).max(1);
    let leaf = (k / per_unit).min(leaves - 1);
    format!(
        "{}-c{}-g{}",
        province_id(p),
        leaf / grassroots,
        leaf % grassroots
    )
}

/// Creates a province's communes and grassroots unions and imports its
/// members `range`, each union's roster together.
pub(super) async fn load_province(
    channel: Channel,
    p: usize,
    range: std::ops::Range<usize>,
    communes: usize,
    grassroots: usize,
    batch: usize,
) -> Result<()> {
    let pid = province_id(p);
    let mut units = pb::unit_service_client::UnitServiceClient::new(channel.clone());
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
        }
    }
    let count = range.len();
    let mut members = pb::member_service_client::MemberServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let mut i = 0;
    while i < count {
        let end = (i + batch.max(1)).min(count);
        let rows = (i..end)
            .map(|k| pb::ImportRow {
                line: (k + 1) as u32,
                unit_id: leaf_of(p, k, count, communes, grassroots),
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
