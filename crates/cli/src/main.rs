//! `hopluu`: run a node (`serve`), drive one over gRPC (units, members,
//! campaigns, emulation, awards, reports), import rosters, benchmark.
//!
//! Every connection is mutual TLS: the command line presents a certificate
//! (`--cert`, `--key`) and trusts the CAs of `--ca`; `--insecure-plaintext`
//! talks to a node started with that flag.
//!
//! # Layout
//! - `main.rs`: the command line, parsed, and a call per command family.
//! - [`client`]: the flags that reach a node (`--addr`, `--ca`, `--cert`,
//!   `--key`, `--insecure-plaintext`) and the channel made from them.
//! - [`output`]: tables, JSON, and the formats and tables several commands
//!   share (byte counts, VND amounts, the members and initiatives reports).
//! - [`cmd`]: one module per command family:
//!   - [`cmd::serve`]: `hopluu serve`.
//!   - [`cmd::admin`]: `hopluu status` and `hopluu quarantine`.
//!   - [`cmd::conflicts`]: `hopluu conflicts`.
//!   - [`cmd::docs`]: `hopluu docs` and `hopluu compact`.
//!   - [`cmd::edges`]: `hopluu peers`, `tree`, `trace`, `sync now` and `check`.
//!   - [`cmd::units`]: `hopluu units`.
//!   - [`cmd::members`]: `hopluu members`.
//!   - [`cmd::import`]: `hopluu import members`.
//!   - [`cmd::reorg`]: `hopluu reorg`: reorganisation decisions from a TOML
//!     plan or a sheet of moves, with a dry run.
//!   - [`cmd::campaigns`]: `hopluu campaigns`.
//!   - [`cmd::emulation`]: `hopluu emulation`.
//!   - [`cmd::awards`]: `hopluu awards`.
//!   - [`cmd::reports`]: `hopluu report`.
//!   - [`cmd::cert`]: `hopluu cert`: a CA and node, admin and staff
//!     certificates.
//!   - [`cmd::bench`]: `hopluu bench`.
//!   - [`cmd::bench_reorg`]: `hopluu bench-reorg`, decisions at scale.
//!   - [`cmd::bench_sync`]: `hopluu bench-sync`: [`chain`](cmd::bench_sync::chain),
//!     [`latency`](cmd::bench_sync::latency),
//!     [`aggregation`](cmd::bench_sync::aggregation).
//!   - [`cmd::bench_writes`]: `hopluu bench-writes`, write cost against record size.
//!   - [`cmd::bench_common`]: what the benchmarks share.
//!   - [`cmd::demo`]: `hopluu demo`: [`tree`](cmd::demo::tree),
//!     [`steps`](cmd::demo::steps), [`people`](cmd::demo::people),
//!     [`records`](cmd::demo::records), [`report`](cmd::demo::report),
//!     [`links`](cmd::demo::links), [`finish`](cmd::demo::finish).

mod client;
mod cmd;
mod output;

use anyhow::bail;
use clap::{Parser, Subcommand};
use client::{ClientTls, Target, channel};
use cmd::{
    admin, awards, bench, bench_reorg, bench_sync, bench_writes, campaigns, cert, conflicts, demo,
    docs, edges, emulation, import, members, reorg, reports, serve, units,
};

#[derive(Parser, Debug)]
#[command(
    name = "hopluu",
    version,
    about = "Hợp lưu: the union federation's sync service"
)]
struct Cli {
    /// The node to talk to [default: https://127.0.0.1:7400, or
    /// http://127.0.0.1:7400 with --insecure-plaintext].
    #[arg(long, global = true, env = "HOPLUU_ADDR")]
    addr: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Run the command again every SECS seconds, clearing the screen each
    /// time (read-only commands: status, peers, tree, trace, docs,
    /// conflicts and quarantine lists).
    #[arg(long, global = true, value_name = "SECS")]
    watch: Option<u64>,
    #[command(flatten)]
    tls: ClientTls,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node. Without --config: a national node on an embedded SQLite
    /// file under --data-dir, listening on 127.0.0.1:7400.
    Serve(serve::ServeArgs),
    /// The node's identity and state: database, version, uptime, feed,
    /// documents, certificate expiry, quarantine (administrators; staff see
    /// the node info).
    Status,
    /// Changes the replication gate holds: list, show, release, discard
    /// (administrators).
    #[command(subcommand)]
    Quarantine(admin::QuarantineCmd),
    /// Fields where concurrent writes left more than one value: list,
    /// show (every value, who wrote it, when), resolve (administrators).
    #[command(subcommand)]
    Conflicts(conflicts::ConflictsCmd),
    /// Documents held here: list them by kind and owner, or show one with
    /// its history and the heads each peer has (administrators).
    #[command(subcommand)]
    Docs(docs::DocsCmd),
    /// Fold stored documents' incremental chunks into new snapshots, one
    /// short transaction per document, with progress (administrators).
    Compact {
        /// Only documents with at least this many bytes of chunks (0:
        /// every document with chunks).
        #[arg(long, default_value_t = 0)]
        min_chunk_bytes: u64,
    },
    /// This node's replication edges: state, last contact, checkpoints
    /// each way, what each peer lacks and for how long, bytes, refusals,
    /// last error (administrators).
    Peers,
    /// Every replication edge of this node's subtree, as each office last
    /// reported it up the tree; offices not heard from stand out
    /// (administrators).
    Tree {
        /// A report older than this many seconds is stale.
        #[arg(long, default_value_t = 300)]
        stale_after: u64,
    },
    /// When the latest change of a record reached each level up to the
    /// national node (administrators).
    Trace {
        #[arg(value_enum)]
        kind: edges::TraceKindArg,
        /// Card number or member id, campaign, initiative, award or unit
        /// id, or document id.
        id: String,
    },
    /// Replication now: `hopluu sync now [--peer NODE]` (administrators).
    #[command(subcommand)]
    Sync(edges::SyncCmd),
    /// Compare, document by document, the heads this node holds with those
    /// a peer reports itself, for every document in the peer's scope, and
    /// list what differs; exit status 1 when anything does
    /// (administrators).
    Check {
        /// The peer's node id: an upstream of this node (dialled at its
        /// configured address), or any node with --address.
        #[arg(long)]
        peer: String,
        /// Where the node dials the peer, e.g. https://10.0.3.7:7400:
        /// needed for a child (children dial their parent, which does not
        /// know their address); overrides an upstream's configured one.
        #[arg(long)]
        address: Option<String>,
    },
    /// Union units: create, rename, move, close, list.
    #[command(subcommand)]
    Units(units::UnitsCmd),
    /// Members: add, update, transfer, end, show, list, find.
    #[command(subcommand)]
    Members(members::MembersCmd),
    /// Import members from a CSV or XLSX roster.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Reorganisation decisions: apply one (a TOML plan, or a sheet of
    /// unit moves) with --dry-run to see its impact first; list, show.
    #[command(subcommand)]
    Reorg(reorg::ReorgCmd),
    /// Emulation campaigns (phong trào thi đua).
    #[command(subcommand)]
    Campaigns(campaigns::CampaignsCmd),
    /// A unit's part in a campaign: registration, initiatives, works.
    #[command(subcommand)]
    Emulation(emulation::EmulationCmd),
    /// Awards (khen thưởng): catalogue, proposals, decisions.
    #[command(subcommand)]
    Awards(awards::AwardsCmd),
    /// Reports over a unit's subtree.
    #[command(subcommand)]
    Report(reports::ReportCmd),
    /// Measure write throughput, storage per member and report latency.
    Bench(bench::BenchArgs),
    /// Measure replication: propagation latency across the tree, bytes on
    /// the wire, initial aggregation at the national node.
    BenchSync(bench_sync::BenchSyncArgs),
    /// Measure reorganisation decisions at scale: one decision moving 900
    /// grassroots unions, one ceasing 30,000 members of 800 unions.
    BenchReorg(bench_reorg::BenchReorgArgs),
    /// Write cost against record size: initiatives into one record, members into one roster.
    BenchWrites(bench_writes::BenchWritesArgs),
    /// Start a small federation on loopback, load sample data, cut and heal
    /// a province's link, and print the national report and every edge's
    /// sync state before and after.
    Demo(demo::DemoArgs),
    /// Make certificates: a CA, and node, admin and staff certificates.
    #[command(subcommand)]
    Cert(cert::CertCmd),
}

/// The exit status of a Unix tool whose reader went away (killed by
/// SIGPIPE: 128 + 13), as a shell reports it.
const BROKEN_PIPE_EXIT: i32 = 141;

/// A closed pipe on stdout (`hopluu --json members list | head`) ends the
/// command quietly, as it ends every Unix tool: Rust ignores SIGPIPE, so a
/// write to a closed pipe fails, and `println!` panics on it. The hook
/// turns that one panic into a quiet exit; any other panic is reported
/// as before.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        report(info);
    }));
}

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.watch {
        Some(secs) => rt.block_on(watch(cli, secs)),
        None => rt.block_on(run(cli)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `hopluu check` found differences and said so.
        Err(e) if e.downcast_ref::<edges::Differences>().is_some() => {
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {} ({:?})", s.message(), s.code()),
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--watch SECS`: the command again every SECS seconds, on a cleared
/// screen under a line saying when, until interrupted. A failed round is
/// shown and the next one tried.
async fn watch(cli: Cli, secs: u64) -> anyhow::Result<()> {
    let watchable = matches!(
        &cli.command,
        Command::Status
            | Command::Peers
            | Command::Tree { .. }
            | Command::Trace { .. }
            | Command::Quarantine(admin::QuarantineCmd::List { .. })
            | Command::Docs(_)
            | Command::Conflicts(_)
    );
    if !watchable {
        bail!(
            "--watch: only read-only commands can be watched (status, peers, tree, trace, docs, conflicts, quarantine list)"
        );
    }
    if secs == 0 {
        bail!("--watch: SECS must be at least 1");
    }
    loop {
        // The command line is parsed again each round: commands are
        // consumed by running them.
        let round = Cli::parse();
        print!("\x1b[2J\x1b[H");
        println!(
            "every {secs} s; {}   (Ctrl-C to stop)\n",
            hopluu_node::tls::utc(std::time::SystemTime::now())
        );
        if let Err(e) = run(round).await {
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {} ({:?})", s.message(), s.code()),
                None => eprintln!("error: {e:#}"),
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(secs)) => {}
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    let target = Target::new(cli.addr.clone(), &cli.tls);
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.tls.insecure_plaintext).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchSync(args) => bench_sync::run(args).await,
        Command::BenchReorg(args) => bench_reorg::run(args).await,
        Command::BenchWrites(args) => bench_writes::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Cert(cmd) => cert::run(cmd, &cli.tls.ca),
        Command::Status => admin::status(channel(&target).await?, json).await,
        Command::Quarantine(cmd) => admin::quarantine(cmd, channel(&target).await?, json).await,
        Command::Conflicts(cmd) => conflicts::run(cmd, channel(&target).await?, json).await,
        Command::Docs(cmd) => docs::docs(cmd, channel(&target).await?, json).await,
        Command::Compact { min_chunk_bytes } => {
            docs::compact(min_chunk_bytes, channel(&target).await?, json).await
        }
        Command::Peers => edges::peers(channel(&target).await?, json).await,
        Command::Tree { stale_after } => {
            edges::tree(channel(&target).await?, json, stale_after).await
        }
        Command::Trace { kind, id } => edges::trace(channel(&target).await?, json, kind, id).await,
        Command::Sync(cmd) => edges::sync(channel(&target).await?, json, cmd).await,
        Command::Check { peer, address } => {
            edges::check(channel(&target).await?, json, peer, address).await
        }
        Command::Units(cmd) => units::run(cmd, &target, json).await,
        Command::Members(cmd) => members::run(cmd, &target, json).await,
        Command::Import(cmd) => import::run(cmd, &target, json).await,
        Command::Reorg(cmd) => reorg::run(cmd, &target, json).await,
        Command::Campaigns(cmd) => campaigns::run(cmd, &target, json).await,
        Command::Emulation(cmd) => emulation::run(cmd, &target, json).await,
        Command::Awards(cmd) => awards::run(cmd, &target, json).await,
        Command::Report(cmd) => reports::run(cmd, &target, json).await,
    }
}
