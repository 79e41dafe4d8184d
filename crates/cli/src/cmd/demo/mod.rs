//! `hopluu demo`: a small federation on loopback in one command.
//!
//! Real nodes, in this process (`hopluu_devcluster::federation`): the national
//! node `vn`, three provinces (Hậu Giang, Lai Châu, Kiên Giang) and four
//! district or commune nodes below them, each child dialling its parent
//! through a proxy the demo can cut. Each level creates the unit records of
//! the level below (a child node starts once its parent has created its
//! unit, and waits for that record on its first sync). The districts import
//! a few thousand members with Vietnamese names and create their grassroots
//! unions; the national node launches a campaign with quotas per province;
//! the districts register, record initiatives and dedicated works; the
//! provinces review the initiatives and Hậu Giang decides an award.
//!
//! Then Kiên Giang's link to the national node is cut while both sides keep
//! writing (new members below Kiên Giang; a new national campaign and a
//! national decision on a Kiên Giang initiative), the link is healed, and
//! the demo waits until every link is in step again. The national report
//! and the state of every link are printed before, during and after.
//!
//! A link's state is read from the two stores it joins: the documents one
//! side holds that the other should hold (by the scope rule, as the sender
//! decides it) and does not yet hold whole, each way; whether its proxy is
//! cut and holds a connection open; the last exchange either node recorded
//! of the other; and the bytes its proxy carried.
//!
//! Logs: only warnings by default (and the expected "sync session failed"
//! of a cut link is left out); `RUST_LOG` overrides.
//!
//! Every link is mutual TLS: the demo makes its CA and every node's
//! certificate in `DIR/pki` (the federation's), and an administrator's
//! certificate there for the command line; the `node.toml` files it leaves
//! name them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hopluu_devcluster::federation::Federation;
use hopluu_devcluster::pki::Caller;
use hopluu_model::{Clock, Date, SystemClock};

mod finish;
mod links;
mod people;
mod records;
mod report;
mod steps;
mod tree;

use finish::{finish, write_configs};
use links::print_bytes;
use report::section;
use tree::{TREE, grassroots_count};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Members the districts import before the cut (about a tenth more are
    /// added below Kiên Giang while it is cut off).
    #[arg(long, default_value_t = 3000)]
    members: usize,
    /// Where the nodes keep their data: DIR/<node-id>/hopluu.sqlite (and a
    /// node.toml to serve it again). Must be empty or absent.
    #[arg(long, default_value = "hopluu-demo")]
    data_dir: PathBuf,
    /// Delete --data-dir first (only a directory an earlier demo made).
    #[arg(long)]
    fresh: bool,
    /// Put the national node on this (empty) PostgreSQL database instead of
    /// SQLite, e.g. postgres://postgres@127.0.0.1:5432/hopluu_demo.
    #[arg(long)]
    national_db: Option<String>,
    /// Longest wait, in seconds, for the federation to get in step.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

const NATIONAL: &str = "vn";
const NATIONAL_NAME: &str = "Tổng Liên đoàn Lao động Việt Nam";
/// The province whose link to the national node is cut.
const CUT: &str = "kien-giang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// Mekong delta: Kinh, some Khmer and Hoa.
    South,
    /// North-west highlands: Kinh, Thái, Mông, Dao.
    NorthWest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    School,
    Hospital,
    Factory,
    Hydro,
    Port,
    Water,
}

struct Province {
    id: &'static str,
    name: &'static str,
    /// Province code of the CCCD (citizen id) numbers of people born there.
    cccd: &'static str,
    /// Card number prefix.
    code: &'static str,
    region: Region,
    /// Initiatives and dedicated works the national node plans for it.
    quota: (u32, u32),
    districts: &'static [District],
}

struct District {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    code: &'static str,
    grassroots: &'static [Grassroots],
}

struct Grassroots {
    id: &'static str,
    name: &'static str,
    profile: Profile,
    /// Relative size of its roster.
    weight: usize,
}

/// A progress line, stamped with the time since the start.
struct Progress(Instant);

impl Progress {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    init_tracing();
    if args.members < grassroots_count() {
        bail!(
            "--members {}: give at least {} (one per grassroots union)",
            args.members,
            grassroots_count()
        );
    }
    prepare_dir(&args.data_dir, args.fresh)?;
    let dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    let started = Instant::now();
    println!(
        "hopluu demo: a federation of {} nodes on loopback, data in {}",
        1 + TREE.len() + TREE.iter().map(|p| p.districts.len()).sum::<usize>(),
        dir.display()
    );
    let mut fed = Federation::new(&dir);
    let outcome = script(&mut fed, &args, Progress(started)).await;
    // The command line's certificate, for the nodes served again later.
    let admin = fed.pki().and_then(|p| {
        let (cert, key) = p.write_client(&Caller::admin())?;
        Ok((p.ca_file(), cert, key))
    });
    let stopped = fed.shutdown().await;
    let summary = outcome?;
    stopped.context("stopping the nodes")?;
    let admin = admin.context("writing the administrator's certificate")?;
    write_configs(&dir, args.national_db.as_deref())?;
    finish(
        &args.data_dir,
        &summary,
        started.elapsed(),
        args.national_db.as_deref(),
        &admin,
    );
    Ok(())
}

/// Only warnings, without the expected complaints of a cut link.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,hopluu_node::replication=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The file that marks a directory as made by `hopluu demo` (so that
/// `--fresh` never deletes anything else).
const MARKER: &str = "hopluu-demo.txt";

fn prepare_dir(dir: &Path, fresh: bool) -> Result<()> {
    let non_empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if non_empty {
        if !fresh {
            bail!(
                "{} is not empty (an earlier demo?): pass --fresh to delete it first, \
                 or choose another --data-dir",
                dir.display()
            );
        }
        if !dir.join(MARKER).is_file() {
            bail!(
                "--fresh: refusing to delete {}: it has no {MARKER}, so it was not made by \
                 hopluu demo; choose another --data-dir",
                dir.display()
            );
        }
        println!(
            "--fresh: deleting {} and everything in it (an earlier demo's data)",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "Made by `hopluu demo`: one directory per node, each with its SQLite database\n\
         (hopluu.sqlite) and a node.toml to serve it again with\n\
         `hopluu serve --config DIR/<node>/node.toml`; pki/ holds the demo's CA, every\n\
         node's certificate and an administrator's (admin.pem, admin.key).\n\
         `hopluu demo --fresh` deletes this directory.\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(())
}

/// What the end of the demo reports.
struct Summary {
    nodes: Vec<NodeSummary>,
}

struct NodeSummary {
    id: String,
    database: String,
    documents: i64,
    members: u64,
}

/// Everything between starting the first node and stopping the last.
async fn script(fed: &mut Federation, args: &DemoArgs, p: Progress) -> Result<Summary> {
    let today = SystemClock.today();
    let mut demo = Demo {
        fed,
        args,
        p,
        limit: Duration::from_secs(args.timeout),
        today,
        year: today.year(),
        campaign: format!("ldg-ldst-{}", today.year()),
        rng: Rng(0x4855_4f50_4c55_5500 ^ args.members as u64),
        roster: Roster::default(),
        initiatives: Vec::new(),
    };
    demo.start_nodes().await?;
    demo.import_rosters().await?;
    demo.launch_campaign().await?;
    demo.emulate().await?;
    demo.review_and_award().await?;

    section("before: the federation in step");
    demo.report().await?;

    section(&format!("cut: the link {CUT} -> vn goes down"));
    let during_cut = demo.cut_and_write().await?;

    section(&format!("while {CUT} is cut off"));
    demo.report().await?;
    demo.report_cut(&during_cut).await?;

    section(&format!("heal: the link {CUT} -> vn comes back"));
    let (took, at_heal) = demo.heal().await?;

    section(&format!(
        "after: healed, in step {:.1} s later",
        took.as_secs_f64()
    ));
    demo.report().await?;
    print_bytes(demo.fed, &at_heal);
    demo.check(&during_cut).await?;
    demo.check_links().await?;
    demo.summary().await
}

/// The demo's state between its steps.
struct Demo<'a> {
    fed: &'a mut Federation,
    args: &'a DemoArgs,
    p: Progress,
    /// Longest wait for the federation to get in step.
    limit: Duration,
    today: Date,
    year: i32,
    /// The national campaign's id.
    campaign: String,
    rng: Rng,
    roster: Roster,
    initiatives: Vec<Recorded>,
}

/// What was written while the link was cut.
struct DuringCut {
    /// Members created before the cut.
    before: usize,
    /// The initiative the national node recognised.
    recognised: String,
    /// The initiative the district added to the same emulation record.
    added: String,
    /// The campaign the national node launched.
    campaign: String,
}

/// A small deterministic generator (splitmix64): the same arguments give
/// the same federation.
struct Rng(u64);

/// Members created so far, and the first members of each union (the
/// authors of its initiatives).
#[derive(Default)]
struct Roster {
    created: usize,
    serial: usize,
    first: HashMap<&'static str, Vec<(String, String)>>,
}

/// An initiative the demo recorded.
struct Recorded {
    province: &'static str,
    unit: &'static str,
    id: String,
    title: String,
}

/// One link's state, read from the stores at its two ends.
struct Edge {
    child: String,
    upstream: String,
    cut: bool,
    open: u64,
    /// Documents the child holds, in the upstream's scope, that the
    /// upstream lacks (whole or in part).
    waiting_up: usize,
    /// The same the other way.
    waiting_down: usize,
    /// Unix milliseconds of the last exchange recorded at either end.
    last_seen: i64,
}
