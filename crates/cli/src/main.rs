//! `hopluu`: run a node (`serve`), drive one over gRPC (units, members,
//! campaigns, emulation, awards, reports), import rosters, benchmark.
//!
//! Every connection is mutual TLS: the command line presents a certificate
//! (`--cert`, `--key`) and trusts the CAs of `--ca`; `--insecure-plaintext`
//! talks to a node started with that flag.
//!
//! # Layout
//! - `main.rs`: the command line and the commands.
//! - [`output`]: tables and JSON.
//! - [`import`]: reading roster spreadsheets (CSV, XLSX).
//! - [`cert`]: `hopluu cert`: a CA and node, admin and staff certificates.
//! - [`admin`]: `hopluu status` and `hopluu quarantine` (the admin service).
//! - [`edges`]: `hopluu peers`, `tree`, `trace`, `sync now` and `check`.
//! - [`bench`]: `hopluu bench`.

mod admin;
mod bench;
mod bench_sync;
mod cert;
mod conflicts;
mod demo;
mod docs;
mod edges;
mod output;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hopluu_node::config::Config;
use hopluu_proto::v1 as pb;
use hopluu_sheet as import;
use output::{Table, initiatives_table, kv, print, vnd};
use tonic::transport::Channel;

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

/// How the command line reaches a node.
#[derive(Args, Debug, Clone)]
struct ClientTls {
    /// A CA certificate (PEM) to trust the node's certificate by;
    /// repeatable, or comma-separated in HOPLUU_CA. For `hopluu cert`: the
    /// CA that signs (a directory with ca.pem and ca.key, or ca.pem).
    #[arg(long = "ca", global = true, env = "HOPLUU_CA", value_delimiter = ',')]
    ca: Vec<PathBuf>,
    /// This client's certificate (PEM; `hopluu cert admin` or `staff`).
    #[arg(long, global = true, env = "HOPLUU_CERT")]
    cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, global = true, env = "HOPLUU_KEY")]
    key: Option<PathBuf>,
    /// Plaintext gRPC without TLS: `hopluu serve --insecure-plaintext`
    /// serves it, and the other commands talk it. For development only.
    #[arg(long, global = true)]
    insecure_plaintext: bool,
}

/// A node to talk to and how.
#[derive(Debug, Clone)]
struct Target {
    addr: String,
    tls: ClientTls,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node. Without --config: a national node on an embedded SQLite
    /// file under --data-dir, listening on 127.0.0.1:7400.
    Serve(ServeArgs),
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
    Units(UnitsCmd),
    /// Members: add, update, transfer, end, show, list, find.
    #[command(subcommand)]
    Members(MembersCmd),
    /// Import members from a CSV or XLSX roster.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Emulation campaigns (phong trào thi đua).
    #[command(subcommand)]
    Campaigns(CampaignsCmd),
    /// A unit's part in a campaign: registration, initiatives, works.
    #[command(subcommand)]
    Emulation(EmulationCmd),
    /// Awards (khen thưởng): catalogue, proposals, decisions.
    #[command(subcommand)]
    Awards(AwardsCmd),
    /// Reports over a unit's subtree.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Measure write throughput, storage per member and report latency.
    Bench(bench::BenchArgs),
    /// Measure replication: propagation latency across the tree, bytes on
    /// the wire, initial aggregation at the national node.
    BenchSync(bench_sync::BenchSyncArgs),
    /// Start a small federation on loopback, load sample data, cut and heal
    /// a province's link, and print the national report and every edge's
    /// sync state before and after.
    Demo(demo::DemoArgs),
    /// Make certificates: a CA, and node, admin and staff certificates.
    #[command(subcommand)]
    Cert(cert::CertCmd),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// A node.toml (see deploy/); unknown keys are refused.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory for the embedded default.
    #[arg(long, default_value = "hopluu-data")]
    data_dir: PathBuf,
    /// Listen address, overriding the configuration.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// The node's certificate (PEM; `hopluu cert node`), overriding [tls]
    /// cert; with --tls-key and --tls-ca.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// The node's private key (PEM), overriding [tls] key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// A trusted CA certificate (PEM), repeatable, overriding [tls] ca.
    #[arg(long)]
    tls_ca: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum UnitsCmd {
    /// Create a unit under a parent.
    Create {
        #[arg(long)]
        name: String,
        /// A kind id (see `hopluu units kinds`).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        parent: String,
        /// A stable id; generated when absent.
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    Rename {
        unit: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    /// Re-parent a unit (decided by the level above both ends).
    Move {
        unit: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        decided_on: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    /// Close a unit, or record it as merged into its successors.
    Close {
        unit: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "successor")]
        successors: Vec<String>,
        #[arg(long)]
        merged: bool,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long, default_value = "")]
        decision_no: String,
    },
    Show {
        unit: String,
    },
    /// A unit's subtree (the node's own unit by default).
    List {
        root: Option<String>,
        /// Include closed and merged units.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        depth: Option<u32>,
    },
    Kinds,
}

#[derive(Args, Debug, Clone)]
struct MemberFields {
    #[arg(long)]
    name: String,
    /// YYYY-MM-DD
    #[arg(long)]
    birth_date: String,
    #[arg(long, value_enum)]
    gender: GenderArg,
    #[arg(long)]
    card: String,
    /// YYYY-MM-DD
    #[arg(long)]
    joined_on: String,
    #[arg(long, default_value = "")]
    position: String,
    /// 12-digit CCCD (kept in the private roster).
    #[arg(long, default_value = "")]
    national_id: String,
    #[arg(long, default_value = "")]
    ethnicity: String,
    #[arg(long, default_value = "")]
    religion: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum GenderArg {
    Male,
    Female,
    Other,
}

impl GenderArg {
    fn pb(self) -> pb::Gender {
        match self {
            GenderArg::Male => pb::Gender::Male,
            GenderArg::Female => pb::Gender::Female,
            GenderArg::Other => pb::Gender::Other,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StatusArg {
    Active,
    Transferred,
    Left,
    Ceased,
}

impl StatusArg {
    fn pb(self) -> pb::MemberStatus {
        match self {
            StatusArg::Active => pb::MemberStatus::Active,
            StatusArg::Transferred => pb::MemberStatus::Transferred,
            StatusArg::Left => pb::MemberStatus::Left,
            StatusArg::Ceased => pb::MemberStatus::Ceased,
        }
    }
}

#[derive(Subcommand, Debug)]
enum MembersCmd {
    Add {
        #[arg(long)]
        unit: String,
        #[command(flatten)]
        fields: MemberFields,
    },
    /// A member by id, or by --card.
    Show {
        id: Option<String>,
        #[arg(long)]
        card: Option<String>,
        /// Include CCCD, ethnicity and religion (where this node holds them).
        #[arg(long)]
        private: bool,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        birth_date: Option<String>,
        #[arg(long, value_enum)]
        gender: Option<GenderArg>,
        #[arg(long)]
        position: Option<String>,
        #[arg(long)]
        joined_on: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        #[arg(long)]
        ethnicity: Option<String>,
        #[arg(long)]
        religion: Option<String>,
    },
    Transfer {
        id: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        on: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a membership: left, or ceased (with a reason).
    End {
        id: String,
        #[arg(long, value_enum)]
        status: StatusArg,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    List {
        #[arg(long)]
        unit: String,
        /// Include the unit's whole subtree.
        #[arg(long)]
        subtree: bool,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Search by name (diacritics optional) or card number.
    Find {
        query: String,
        #[arg(long, default_value = "")]
        scope: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// De-identify a member on request (Law 91/2025): removes their CCCD,
    /// ethnicity and religion, and the name, birth date, position and
    /// reasons of every record this node holds; keeps unit, gender, card
    /// number and membership dates; records the request. Run it at the
    /// member's province node or below (a node that holds personal data).
    /// Earlier values stay in the documents' change history.
    Deidentify {
        /// The member's card number (or --id).
        #[arg(required_unless_present = "id")]
        card: Option<String>,
        /// The member id instead of a card number.
        #[arg(long, conflicts_with = "card")]
        id: Option<String>,
        /// Why: the member's request, a decision. Kept and replicated with
        /// the record: do not repeat the member's personal data here.
        #[arg(long)]
        reason: String,
        /// The request's document number.
        #[arg(long, default_value = "")]
        reference: String,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCmd {
    /// Import a roster file (.csv or .xlsx). Re-running is safe: the card
    /// number is the key.
    Members {
        file: PathBuf,
        /// The unit for rows without a unit column.
        #[arg(long)]
        unit: Option<String>,
        /// Rows per request (one transaction each).
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

#[derive(Subcommand, Debug)]
enum CampaignsCmd {
    Launch {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        theme: String,
        #[arg(long)]
        starts_on: String,
        #[arg(long)]
        ends_on: String,
        /// The scope subtree (the launching unit by default).
        #[arg(long, default_value = "")]
        scope: String,
        #[arg(long)]
        id: Option<String>,
    },
    Show {
        id: String,
    },
    /// Campaigns that cover a unit.
    List {
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Set a unit's quotas in a campaign.
    Plan {
        id: String,
        #[arg(long)]
        unit: String,
        #[arg(long, default_value_t = 0)]
        initiatives: u32,
        #[arg(long, default_value_t = 0)]
        works: u32,
    },
    Close {
        id: String,
        #[arg(long, default_value = "")]
        on: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum InitiativeStatusArg {
    Submitted,
    UnderReview,
    Valid,
    Rejected,
    Recognised,
}

#[derive(Subcommand, Debug)]
enum EmulationCmd {
    Register {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long, default_value = "")]
        pledge: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    Initiative {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        title: String,
        #[arg(long = "author", required = true)]
        authors: Vec<String>,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        value_vnd: i64,
        #[arg(long, default_value = "")]
        submitted_on: String,
    },
    /// Move an initiative through review.
    Review {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        initiative: String,
        #[arg(long, value_enum)]
        status: InitiativeStatusArg,
        #[arg(long, default_value = "")]
        level: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    Work {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        name: String,
        #[arg(long, allow_negative_numbers = true)]
        value_vnd: i64,
        #[arg(long)]
        plaque: bool,
        #[arg(long, default_value = "")]
        completed_on: String,
    },
    Show {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        campaign: String,
    },
}

#[derive(Subcommand, Debug)]
enum AwardsCmd {
    /// The award catalogue.
    Types,
    Propose {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        award_type: String,
        #[arg(long = "member")]
        members: Vec<String>,
        #[arg(long = "collective")]
        units: Vec<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        campaign: Option<String>,
    },
    Proposals {
        #[arg(long)]
        unit: String,
    },
    Decide {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        decision_no: String,
        #[arg(long)]
        award_type: String,
        #[arg(long = "member")]
        members: Vec<String>,
        #[arg(long = "collective")]
        units: Vec<String>,
        #[arg(long, default_value = "")]
        decided_on: String,
        #[arg(long, default_value = "")]
        effective_on: String,
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        proposal: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        on: String,
    },
    List {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        year: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCmd {
    /// Members by status and gender, per child unit.
    Members {
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Valid initiatives against plan, per child unit, with rank.
    Initiatives {
        #[arg(long)]
        campaign: String,
        #[arg(long, default_value = "")]
        unit: String,
    },
    /// Awards by type, level and year.
    Awards {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        year: Option<u32>,
    },
    /// Dedicated works by count and value.
    Works {
        #[arg(long, default_value = "")]
        unit: String,
        #[arg(long)]
        campaign: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
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

/// A channel to the node: mutual TLS for `https://`, plaintext for
/// `http://` (only with --insecure-plaintext).
async fn channel(target: &Target) -> anyhow::Result<Channel> {
    let addr = &target.addr;
    let tls = &target.tls;
    let endpoint = Channel::from_shared(addr.clone()).context("--addr is not a URL")?;
    let endpoint = if let Some(rest) = addr.strip_prefix("http://") {
        if !tls.insecure_plaintext {
            bail!(
                "--addr: http://{rest} is plaintext, and nodes serve only mutual TLS: use \
                 https://{rest} with --ca, --cert and --key (or HOPLUU_CA, HOPLUU_CERT, \
                 HOPLUU_KEY), or pass --insecure-plaintext to talk to a node started with it"
            );
        }
        endpoint
    } else if addr.starts_with("https://") {
        if tls.insecure_plaintext {
            bail!("--insecure-plaintext talks plaintext, but --addr {addr} is TLS: use http://");
        }
        if tls.ca.is_empty() {
            bail!(
                "--ca: no CA certificate to check the node's certificate with: pass --ca FILE \
                 (or set HOPLUU_CA), e.g. the ca.pem of `hopluu cert ca`"
            );
        }
        let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
            bail!(
                "--cert: a node accepts only clients with a certificate: pass --cert and --key \
                 (or set HOPLUU_CERT and HOPLUU_KEY); make them with `hopluu cert admin`"
            );
        };
        let ca = hopluu_node::tls::read_cas(&tls.ca).map_err(|e| anyhow::anyhow!("--ca: {e}"))?;
        let read = |flag: &str, p: &PathBuf| {
            std::fs::read_to_string(p)
                .with_context(|| format!("{flag}: cannot read {}", p.display()))
        };
        let (cert, key) = (read("--cert", cert)?, read("--key", key)?);
        endpoint
            .tls_config(hopluu_node::tls::client_config(&ca, Some((&cert, &key))))
            .map_err(|e| anyhow::anyhow!("--cert, --key: {}", hopluu_node::tls::error_chain(&e)))?
    } else {
        bail!("--addr: {addr:?} is not an address like https://127.0.0.1:7400");
    };
    endpoint.connect().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the node at {addr} (is `hopluu serve` running?): {}",
            hopluu_node::tls::error_chain(&e)
        )
    })
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        hopluu_node::config::LogFormat::Json => builder.json().try_init(),
        hopluu_node::config::LogFormat::Plain => builder.try_init(),
    };
}

async fn serve(args: ServeArgs, insecure_plaintext: bool) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::embedded(&args.data_dir),
    };
    if let Some(listen) = args.listen {
        config.grpc.listen = listen;
    }
    match (args.tls_cert, args.tls_key, args.tls_ca.is_empty()) {
        (None, None, true) => {}
        (Some(cert), Some(key), false) => {
            config.tls = Some(hopluu_node::config::TlsSection {
                cert,
                key,
                ca: args.tls_ca,
            });
            config.validate()?;
        }
        _ => bail!(
            "--tls-cert, --tls-key, --tls-ca: give all three (the node's certificate, its key, \
             and the CAs it trusts)"
        ),
    }
    init_tracing(&config);
    let mut serve = hopluu_node::server::Serve::from(&config);
    serve.insecure_plaintext = insecure_plaintext;
    // Before the store opens: a node that may not serve stops here.
    serve.security(&config.node.id, &config.unit_id())?;
    if insecure_plaintext {
        eprintln!(
            "WARNING: --insecure-plaintext: this node serves gRPC without TLS; anyone who reaches \
             {} can read and change everything. For development only.",
            config.grpc.listen
        );
    }
    let app = hopluu_node::server::open(&config, Arc::new(hopluu_model::SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(config.grpc.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc.listen))?;
    // Printed for scripts and tests that start on port 0.
    println!(
        "hopluu node {} (unit {}) listening on {}",
        config.node.id,
        config.node.unit,
        listener.local_addr()?
    );
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down");
    };
    hopluu_node::server::run(app, listener, serve, shutdown).await?;
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    let target = Target {
        addr: cli.addr.clone().unwrap_or_else(|| {
            let scheme = if cli.tls.insecure_plaintext {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://127.0.0.1:{}", hopluu_node::config::DEFAULT_PORT)
        }),
        tls: cli.tls.clone(),
    };
    match cli.command {
        Command::Serve(args) => serve(args, cli.tls.insecure_plaintext).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchSync(args) => bench_sync::run(args).await,
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
        Command::Units(cmd) => units(cmd, &target, json).await,
        Command::Members(cmd) => members(cmd, &target, json).await,
        Command::Import(ImportCmd::Members { file, unit, batch }) => {
            import_members(&target, json, &file, unit, batch).await
        }
        Command::Campaigns(cmd) => campaigns(cmd, &target, json).await,
        Command::Emulation(cmd) => emulation(cmd, &target, json).await,
        Command::Awards(cmd) => awards(cmd, &target, json).await,
        Command::Report(cmd) => report(cmd, &target, json).await,
    }
}

fn unit_status(s: i32) -> &'static str {
    match pb::UnitStatus::try_from(s) {
        Ok(pb::UnitStatus::Active) => "active",
        Ok(pb::UnitStatus::Merged) => "merged",
        Ok(pb::UnitStatus::Closed) => "closed",
        _ => "?",
    }
}

fn member_status(s: i32) -> &'static str {
    match pb::MemberStatus::try_from(s) {
        Ok(pb::MemberStatus::Active) => "active",
        Ok(pb::MemberStatus::Transferred) => "transferred",
        Ok(pb::MemberStatus::Left) => "left",
        Ok(pb::MemberStatus::Ceased) => "ceased",
        _ => "?",
    }
}

fn gender(g: i32) -> &'static str {
    match pb::Gender::try_from(g) {
        Ok(pb::Gender::Male) => "nam",
        Ok(pb::Gender::Female) => "nữ",
        Ok(pb::Gender::Other) => "khác",
        _ => "?",
    }
}

fn unit_table(units: &[pb::Unit]) -> Table {
    let top = units.iter().map(|u| u.depth).min().unwrap_or(0);
    let mut t = Table::new(&["id", "name", "kind", "parent", "status", "depth"]);
    for u in units {
        let indent = "  ".repeat((u.depth - top) as usize);
        t.row(vec![
            u.id.clone(),
            format!("{indent}{}", u.name),
            u.kind.clone(),
            u.parent_id.clone(),
            unit_status(u.status).to_owned(),
            u.depth.to_string(),
        ]);
    }
    t
}

async fn units(cmd: UnitsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::unit_service_client::UnitServiceClient::new(channel(addr).await?);
    let one = |u: pb::Unit| {
        print(json, &u, "hopluu.v1.Unit", || {
            unit_table(std::slice::from_ref(&u))
        })
    };
    match cmd {
        UnitsCmd::Create {
            name,
            kind,
            parent,
            id,
            effective_on,
            decision_no,
        } => one(c
            .create_unit(pb::CreateUnitRequest {
                id,
                name,
                kind,
                parent_id: parent,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Rename {
            unit,
            name,
            effective_on,
            decision_no,
        } => one(c
            .rename_unit(pb::RenameUnitRequest {
                unit_id: unit,
                name,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Move {
            unit,
            to,
            decided_on,
            effective_on,
            decision_no,
        } => one(c
            .move_unit(pb::MoveUnitRequest {
                unit_id: unit,
                new_parent_id: to,
                decided_on,
                effective_on,
                decision_no,
            })
            .await?
            .into_inner()),
        UnitsCmd::Close {
            unit,
            reason,
            successors,
            merged,
            effective_on,
            decision_no,
        } => one(c
            .close_unit(pb::CloseUnitRequest {
                unit_id: unit,
                reason,
                effective_on,
                decision_no,
                successor_ids: successors,
                merged,
            })
            .await?
            .into_inner()),
        UnitsCmd::Show { unit } => {
            let u = c
                .get_unit(pb::GetUnitRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &u, "hopluu.v1.Unit", || {
                let mut pairs = vec![
                    ("id", u.id.clone()),
                    ("name", u.name.clone()),
                    ("kind", u.kind.clone()),
                    ("parent", u.parent_id.clone()),
                    ("status", unit_status(u.status).to_owned()),
                    ("successors", u.successor_ids.join(", ")),
                    ("closed on", u.closed_on.clone()),
                    ("close reason", u.close_reason.clone()),
                ];
                for n in &u.name_history {
                    pairs.push((
                        "name since",
                        format!("{} {} ({})", n.effective_on, n.name, n.decision_no),
                    ));
                }
                for p in &u.parent_history {
                    pairs.push((
                        "parent since",
                        format!(
                            "{} {} (decided {}, {})",
                            p.effective_on, p.parent_id, p.decided_on, p.decision_no
                        ),
                    ));
                }
                kv(&pairs)
            })
        }
        UnitsCmd::List { root, all, depth } => {
            let r = c
                .list_units(pb::ListUnitsRequest {
                    root_id: root.unwrap_or_default(),
                    include_closed: all,
                    max_depth: depth,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListUnitsResponse", || {
                unit_table(&r.units)
            })
        }
        UnitsCmd::Kinds => {
            let r = c
                .list_unit_kinds(pb::ListUnitKindsRequest {})
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListUnitKindsResponse", || {
                let mut t = Table::new(&["kind", "label", "roster"]);
                for k in &r.kinds {
                    t.row(vec![
                        k.id.clone(),
                        k.label.clone(),
                        if k.holds_members { "yes" } else { "" }.into(),
                    ]);
                }
                t
            })
        }
    }
}

fn member_table(ms: &[pb::Member]) -> Table {
    let mut t = Table::new(&[
        "id", "unit", "name", "born", "gender", "card", "joined", "position", "status",
    ]);
    for m in ms {
        t.row(vec![
            m.id.clone(),
            m.unit_id.clone(),
            m.full_name.clone(),
            m.birth_date.clone(),
            gender(m.gender).into(),
            m.card_number.clone(),
            m.joined_on.clone(),
            m.position.clone(),
            member_status(m.status).into(),
        ]);
    }
    t
}

fn member_detail(m: &pb::Member) -> Table {
    let mut pairs = vec![
        ("id", m.id.clone()),
        ("unit", m.unit_id.clone()),
        ("name", m.full_name.clone()),
        ("birth date", m.birth_date.clone()),
        ("gender", gender(m.gender).into()),
        ("card", m.card_number.clone()),
        ("joined on", m.joined_on.clone()),
        ("position", m.position.clone()),
        (
            "status",
            format!(
                "{} {} {}",
                member_status(m.status),
                m.status_on,
                m.status_reason
            )
            .trim()
            .to_owned(),
        ),
    ];
    if let Some(p) = &m.private {
        pairs.push(("CCCD", p.national_id.clone()));
        pairs.push(("ethnicity", p.ethnicity.clone()));
        pairs.push(("religion", p.religion.clone()));
    }
    if let Some(d) = &m.deidentified {
        pairs.push((
            "de-identified",
            format!(
                "{} by {} ({}): {} {}",
                d.at, d.by, d.operator, d.reason, d.reference
            )
            .trim()
            .to_owned(),
        ));
    }
    for e in &m.history {
        pairs.push((
            "history",
            format!("{} {} {} {}", e.on, e.kind, e.other_unit_id, e.reason)
                .trim()
                .to_owned(),
        ));
    }
    kv(&pairs)
}

fn member_input(f: MemberFields) -> pb::MemberInput {
    pb::MemberInput {
        full_name: f.name,
        birth_date: f.birth_date,
        gender: f.gender.pb() as i32,
        card_number: f.card,
        joined_on: f.joined_on,
        position: f.position,
        national_id: f.national_id,
        ethnicity: f.ethnicity,
        religion: f.religion,
    }
}

async fn members(cmd: MembersCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::member_service_client::MemberServiceClient::new(channel(addr).await?);
    let one = |m: pb::Member| print(json, &m, "hopluu.v1.Member", || member_detail(&m));
    let list = |r: pb::ListMembersResponse| {
        print(json, &r, "hopluu.v1.ListMembersResponse", || {
            let mut t = member_table(&r.members);
            t.row(vec![format!("({} of {})", r.members.len(), r.total)]);
            t
        })
    };
    match cmd {
        MembersCmd::Add { unit, fields } => one(c
            .add_member(pb::AddMemberRequest {
                unit_id: unit,
                member: Some(member_input(fields)),
            })
            .await?
            .into_inner()),
        MembersCmd::Show { id, card, private } => {
            let key = match (id, card) {
                (Some(id), None) => pb::get_member_request::Key::MemberId(id),
                (None, Some(card)) => pb::get_member_request::Key::CardNumber(card),
                _ => bail!("give a member id or --card, not both"),
            };
            one(c
                .get_member(pb::GetMemberRequest {
                    key: Some(key),
                    include_private: private,
                })
                .await?
                .into_inner())
        }
        MembersCmd::Update {
            id,
            name,
            birth_date,
            gender,
            position,
            joined_on,
            national_id,
            ethnicity,
            religion,
        } => one(c
            .update_member(pb::UpdateMemberRequest {
                member_id: id,
                full_name: name,
                birth_date,
                gender: gender.map(|g| g.pb() as i32),
                position,
                joined_on,
                national_id,
                ethnicity,
                religion,
            })
            .await?
            .into_inner()),
        MembersCmd::Transfer { id, to, on, reason } => one(c
            .transfer_member(pb::TransferMemberRequest {
                member_id: id,
                to_unit_id: to,
                effective_on: on,
                reason,
            })
            .await?
            .into_inner()),
        MembersCmd::End {
            id,
            status,
            reason,
            on,
        } => one(c
            .end_membership(pb::EndMembershipRequest {
                member_id: id,
                status: status.pb() as i32,
                reason,
                effective_on: on,
            })
            .await?
            .into_inner()),
        MembersCmd::List {
            unit,
            subtree,
            status,
            limit,
            offset,
        } => list(
            c.list_members(pb::ListMembersRequest {
                unit_id: unit,
                include_subtree: subtree,
                status: status.map(|s| s.pb() as i32),
                limit,
                offset,
            })
            .await?
            .into_inner(),
        ),
        MembersCmd::Find {
            query,
            scope,
            limit,
        } => list(
            c.find_members(pb::FindMembersRequest {
                query,
                scope_unit_id: scope,
                limit,
            })
            .await?
            .into_inner(),
        ),
        MembersCmd::Deidentify {
            card,
            id,
            reason,
            reference,
        } => {
            let key = match (id, card) {
                (Some(id), None) => pb::deidentify_member_request::Key::MemberId(id),
                (None, Some(card)) => pb::deidentify_member_request::Key::CardNumber(card),
                _ => bail!("give a card number or --id, not both"),
            };
            let r = c
                .deidentify_member(pb::DeidentifyMemberRequest {
                    key: Some(key),
                    reason,
                    reference,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.DeidentifyMemberResponse", || {
                let mut t = r.member.as_ref().map_or_else(|| kv(&[]), member_detail);
                t.row(vec!["changed here".into(), r.unit_ids.join(", ")]);
                if !r.units_elsewhere.is_empty() {
                    t.row(vec![
                        "not changed".into(),
                        format!(
                            "{}: held outside this node's subtree; de-identify there too",
                            r.units_elsewhere.join(", ")
                        ),
                    ]);
                }
                t
            })
        }
    }
}

async fn import_members(
    addr: &Target,
    json: bool,
    file: &std::path::Path,
    unit: Option<String>,
    batch: usize,
) -> anyhow::Result<()> {
    use import::Column;
    let sheet = import::read_file(file)?;
    if unit.is_none() && !sheet.columns.contains(&Column::UnitId) {
        bail!("the file has no unit column (\"Mã đơn vị\"): name the unit with --unit");
    }
    let mut c = pb::member_service_client::MemberServiceClient::new(channel(addr).await?);
    let get = |r: &import::RawRow, col: Column| r.values.get(&col).cloned().unwrap_or_default();
    let rows: Vec<pb::ImportRow> = sheet
        .rows
        .iter()
        .map(|r| pb::ImportRow {
            line: r.line as u32,
            unit_id: r
                .values
                .get(&Column::UnitId)
                .cloned()
                .or_else(|| unit.clone())
                .unwrap_or_default(),
            member: Some(pb::MemberInput {
                full_name: get(r, Column::FullName),
                birth_date: get(r, Column::BirthDate),
                gender: match get(r, Column::Gender).as_str() {
                    "male" => pb::Gender::Male as i32,
                    "female" => pb::Gender::Female as i32,
                    "other" => pb::Gender::Other as i32,
                    _ => pb::Gender::Unspecified as i32,
                },
                card_number: get(r, Column::CardNumber),
                joined_on: get(r, Column::JoinedOn),
                position: get(r, Column::Position),
                national_id: get(r, Column::NationalId),
                ethnicity: get(r, Column::Ethnicity),
                religion: get(r, Column::Religion),
            }),
        })
        .collect();
    // Gender words the reader did not recognise are reported with the row.
    let bad_gender: std::collections::HashMap<u32, String> = sheet
        .rows
        .iter()
        .filter_map(|r| {
            let g = get(r, Column::Gender);
            (!["male", "female", "other", ""].contains(&g.as_str())).then_some((r.line as u32, g))
        })
        .collect();
    let progress = if json || rows.len() < 2000 {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(rows.len() as u64)
    };
    let mut results = Vec::new();
    for chunk in rows.chunks(batch.clamp(1, 5000)) {
        let r = c
            .import_members(pb::ImportMembersRequest {
                rows: chunk.to_vec(),
            })
            .await?
            .into_inner();
        progress.inc(chunk.len() as u64);
        results.extend(r.results);
    }
    progress.finish_and_clear();
    for r in &mut results {
        if let Some(g) = bad_gender.get(&r.line) {
            for e in &mut r.errors {
                if e.field == "gender" {
                    e.reason = format!("expected Nam, Nữ or Khác, got {g:?}");
                }
            }
        }
    }
    let resp = pb::ImportMembersResponse { results };
    let count = |o: pb::ImportOutcome| {
        resp.results
            .iter()
            .filter(|r| r.outcome == o as i32)
            .count()
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&output::to_json(
                &resp,
                "hopluu.v1.ImportMembersResponse"
            )?)?
        );
    } else {
        let mut t = Table::new(&["line", "field", "reason"]);
        for r in resp
            .results
            .iter()
            .filter(|r| r.outcome == pb::ImportOutcome::Rejected as i32)
        {
            for e in &r.errors {
                t.row(vec![r.line.to_string(), e.field.clone(), e.reason.clone()]);
            }
        }
        if !t.rows.is_empty() {
            println!("Rows not imported:");
            print!("{}", t.render());
        }
        println!(
            "{} rows: {} created, {} updated, {} unchanged, {} rejected",
            resp.results.len(),
            count(pb::ImportOutcome::Created),
            count(pb::ImportOutcome::Updated),
            count(pb::ImportOutcome::Unchanged),
            count(pb::ImportOutcome::Rejected)
        );
    }
    Ok(())
}

fn campaign_table(cs: &[pb::Campaign]) -> Table {
    let mut t = Table::new(&[
        "id",
        "title",
        "launched by",
        "scope",
        "from",
        "to",
        "status",
        "plans",
    ]);
    for c in cs {
        t.row(vec![
            c.id.clone(),
            c.title.clone(),
            c.launching_unit_id.clone(),
            c.scope_unit_id.clone(),
            c.starts_on.clone(),
            c.ends_on.clone(),
            if c.status == pb::CampaignStatus::Closed as i32 {
                "closed"
            } else {
                "active"
            }
            .into(),
            c.plans.len().to_string(),
        ]);
    }
    t
}

async fn campaigns(cmd: CampaignsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::campaign_service_client::CampaignServiceClient::new(channel(addr).await?);
    let one = |x: pb::Campaign| {
        print(json, &x, "hopluu.v1.Campaign", || {
            campaign_table(std::slice::from_ref(&x))
        })
    };
    match cmd {
        CampaignsCmd::Launch {
            unit,
            title,
            theme,
            starts_on,
            ends_on,
            scope,
            id,
        } => one(c
            .launch_campaign(pb::LaunchCampaignRequest {
                id,
                launching_unit_id: unit,
                title,
                theme,
                starts_on,
                ends_on,
                scope_unit_id: scope,
            })
            .await?
            .into_inner()),
        CampaignsCmd::Show { id } => {
            let x = c
                .get_campaign(pb::GetCampaignRequest { campaign_id: id })
                .await?
                .into_inner();
            print(json, &x, "hopluu.v1.Campaign", || {
                let mut t = campaign_table(std::slice::from_ref(&x));
                for p in &x.plans {
                    t.row(vec![
                        String::new(),
                        format!(
                            "plan {}: {} initiatives, {} works",
                            p.unit_id, p.initiative_quota, p.works_quota
                        ),
                    ]);
                }
                t
            })
        }
        CampaignsCmd::List { unit } => {
            let r = c
                .list_campaigns(pb::ListCampaignsRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListCampaignsResponse", || {
                campaign_table(&r.campaigns)
            })
        }
        CampaignsCmd::Plan {
            id,
            unit,
            initiatives,
            works,
        } => one(c
            .set_plans(pb::SetPlansRequest {
                campaign_id: id,
                plans: vec![pb::Plan {
                    unit_id: unit,
                    initiative_quota: initiatives,
                    works_quota: works,
                }],
            })
            .await?
            .into_inner()),
        CampaignsCmd::Close { id, on } => one(c
            .close_campaign(pb::CloseCampaignRequest {
                campaign_id: id,
                closed_on: on,
            })
            .await?
            .into_inner()),
    }
}

fn initiative_status(s: i32) -> &'static str {
    match pb::InitiativeStatus::try_from(s) {
        Ok(pb::InitiativeStatus::Submitted) => "submitted",
        Ok(pb::InitiativeStatus::UnderReview) => "under review",
        Ok(pb::InitiativeStatus::Valid) => "valid",
        Ok(pb::InitiativeStatus::Rejected) => "rejected",
        Ok(pb::InitiativeStatus::Recognised) => "recognised",
        _ => "?",
    }
}

async fn emulation(cmd: EmulationCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::emulation_service_client::EmulationServiceClient::new(channel(addr).await?);
    let initiative = |i: pb::Initiative| {
        print(json, &i, "hopluu.v1.Initiative", || {
            kv(&[
                ("id", i.id.clone()),
                ("title", i.title.clone()),
                ("authors", i.authors.join(", ")),
                (
                    "status",
                    format!("{} {}", initiative_status(i.status), i.recognised_level)
                        .trim()
                        .to_owned(),
                ),
                ("value", vnd(i.value_vnd)),
                ("submitted on", i.submitted_on.clone()),
            ])
        })
    };
    let emulation_view = |e: pb::Emulation| {
        print(json, &e, "hopluu.v1.Emulation", || {
            let mut t = Table::new(&["kind", "id", "title / name", "status", "value"]);
            t.row(vec![
                "registration".into(),
                String::new(),
                e.pledge.clone(),
                if e.registered {
                    format!("registered {}", e.registered_on)
                } else {
                    "not registered".into()
                },
                String::new(),
            ]);
            for i in &e.initiatives {
                t.row(vec![
                    "initiative".into(),
                    i.id.clone(),
                    i.title.clone(),
                    initiative_status(i.status).into(),
                    vnd(i.value_vnd),
                ]);
            }
            for w in &e.works {
                t.row(vec![
                    "work".into(),
                    w.id.clone(),
                    w.name.clone(),
                    if w.plaque {
                        "plaque".into()
                    } else {
                        String::new()
                    },
                    vnd(w.value_vnd),
                ]);
            }
            t
        })
    };
    match cmd {
        EmulationCmd::Register {
            unit,
            campaign,
            pledge,
            on,
        } => emulation_view(
            c.register(pb::RegisterRequest {
                unit_id: unit,
                campaign_id: campaign,
                registered_on: on,
                pledge,
            })
            .await?
            .into_inner(),
        ),
        EmulationCmd::Initiative {
            unit,
            campaign,
            title,
            authors,
            value_vnd,
            submitted_on,
        } => initiative(
            c.record_initiative(pb::RecordInitiativeRequest {
                unit_id: unit,
                campaign_id: campaign,
                title,
                authors,
                value_vnd,
                submitted_on,
            })
            .await?
            .into_inner(),
        ),
        EmulationCmd::Review {
            unit,
            campaign,
            initiative: id,
            status,
            level,
            note,
        } => {
            let status = match status {
                InitiativeStatusArg::Submitted => pb::InitiativeStatus::Submitted,
                InitiativeStatusArg::UnderReview => pb::InitiativeStatus::UnderReview,
                InitiativeStatusArg::Valid => pb::InitiativeStatus::Valid,
                InitiativeStatusArg::Rejected => pb::InitiativeStatus::Rejected,
                InitiativeStatusArg::Recognised => pb::InitiativeStatus::Recognised,
            };
            initiative(
                c.set_initiative_status(pb::SetInitiativeStatusRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                    initiative_id: id,
                    status: status as i32,
                    recognised_level: level,
                    note,
                })
                .await?
                .into_inner(),
            )
        }
        EmulationCmd::Work {
            unit,
            campaign,
            name,
            value_vnd,
            plaque,
            completed_on,
        } => {
            let w = c
                .record_work(pb::RecordWorkRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                    name,
                    value_vnd,
                    plaque,
                    completed_on,
                })
                .await?
                .into_inner();
            print(json, &w, "hopluu.v1.Work", || {
                kv(&[
                    ("id", w.id.clone()),
                    ("name", w.name.clone()),
                    ("value", vnd(w.value_vnd)),
                    ("plaque", if w.plaque { "yes" } else { "no" }.into()),
                    ("completed on", w.completed_on.clone()),
                ])
            })
        }
        EmulationCmd::Show { unit, campaign } => emulation_view(
            c.get_emulation(pb::GetEmulationRequest {
                unit_id: unit,
                campaign_id: campaign,
            })
            .await?
            .into_inner(),
        ),
    }
}

fn recipients(members: Vec<String>, units: Vec<String>) -> Vec<pb::Recipient> {
    members
        .into_iter()
        .map(|m| pb::Recipient {
            who: Some(pb::recipient::Who::MemberId(m)),
        })
        .chain(units.into_iter().map(|u| pb::Recipient {
            who: Some(pb::recipient::Who::UnitId(u)),
        }))
        .collect()
}

fn recipient_list(rs: &[pb::Recipient]) -> String {
    rs.iter()
        .filter_map(|r| match &r.who {
            Some(pb::recipient::Who::MemberId(m)) => Some(m.clone()),
            Some(pb::recipient::Who::UnitId(u)) => Some(u.clone()),
            None => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn award_table(awards: &[pb::Award]) -> Table {
    let mut t = Table::new(&[
        "id",
        "decision",
        "decided",
        "by",
        "type",
        "recipients",
        "revoked",
    ]);
    for a in awards {
        t.row(vec![
            a.id.clone(),
            a.decision_no.clone(),
            a.decided_on.clone(),
            a.issuing_unit_id.clone(),
            a.award_type.clone(),
            recipient_list(&a.recipients),
            if a.revoked {
                a.revoked_on.clone()
            } else {
                String::new()
            },
        ]);
    }
    t
}

fn proposal_table(ps: &[pb::Proposal]) -> Table {
    let mut t = Table::new(&["id", "from", "to", "type", "candidates", "status", "award"]);
    for p in ps {
        let status = match pb::ProposalStatus::try_from(p.status) {
            Ok(pb::ProposalStatus::Decided) => "decided",
            Ok(pb::ProposalStatus::Declined) => "declined",
            _ => "pending",
        };
        t.row(vec![
            p.id.clone(),
            p.proposing_unit_id.clone(),
            p.addressed_unit_id.clone(),
            p.award_type.clone(),
            recipient_list(&p.candidates),
            status.into(),
            p.award_id.clone(),
        ]);
    }
    t
}

async fn awards(cmd: AwardsCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::award_service_client::AwardServiceClient::new(channel(addr).await?);
    match cmd {
        AwardsCmd::Types => {
            let r = c
                .list_award_types(pb::ListAwardTypesRequest {})
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListAwardTypesResponse", || {
                let mut t = Table::new(&["id", "name", "to", "granted by"]);
                for a in &r.types {
                    let to = match pb::RecipientKind::try_from(a.kind) {
                        Ok(pb::RecipientKind::Person) => "person",
                        Ok(pb::RecipientKind::Collective) => "collective",
                        _ => "both",
                    };
                    t.row(vec![
                        a.id.clone(),
                        a.name.clone(),
                        to.into(),
                        a.granting_kinds.join(", "),
                    ]);
                }
                t
            })
        }
        AwardsCmd::Propose {
            unit,
            to,
            award_type,
            members,
            units,
            reason,
            campaign,
        } => {
            let p = c
                .propose_award(pb::ProposeAwardRequest {
                    proposing_unit_id: unit,
                    addressed_unit_id: to,
                    award_type,
                    campaign_id: campaign,
                    candidates: recipients(members, units),
                    reason,
                    proposed_on: String::new(),
                })
                .await?
                .into_inner();
            print(json, &p, "hopluu.v1.Proposal", || {
                proposal_table(std::slice::from_ref(&p))
            })
        }
        AwardsCmd::Proposals { unit } => {
            let r = c
                .list_proposals(pb::ListProposalsRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListProposalsResponse", || {
                proposal_table(&r.proposals)
            })
        }
        AwardsCmd::Decide {
            unit,
            decision_no,
            award_type,
            members,
            units,
            decided_on,
            effective_on,
            campaign,
            proposal,
            reason,
        } => {
            let a = c
                .decide_award(pb::DecideAwardRequest {
                    issuing_unit_id: unit,
                    decision_no,
                    decided_on,
                    effective_on,
                    award_type,
                    recipients: recipients(members, units),
                    campaign_id: campaign,
                    proposal_id: proposal,
                    reason,
                })
                .await?
                .into_inner();
            print(json, &a, "hopluu.v1.Award", || {
                award_table(std::slice::from_ref(&a))
            })
        }
        AwardsCmd::Revoke { id, reason, on } => {
            let a = c
                .revoke_award(pb::RevokeAwardRequest {
                    award_id: id,
                    revoked_on: on,
                    reason,
                })
                .await?
                .into_inner();
            print(json, &a, "hopluu.v1.Award", || {
                award_table(std::slice::from_ref(&a))
            })
        }
        AwardsCmd::List { unit, year } => {
            let r = c
                .list_awards(pb::ListAwardsRequest {
                    unit_id: unit,
                    year,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListAwardsResponse", || {
                award_table(&r.awards)
            })
        }
    }
}

async fn report(cmd: ReportCmd, addr: &Target, json: bool) -> anyhow::Result<()> {
    let mut c = pb::report_service_client::ReportServiceClient::new(channel(addr).await?);
    match cmd {
        ReportCmd::Members { unit } => {
            let r = c
                .members_report(pb::MembersReportRequest { unit_id: unit })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.MembersReportResponse", || {
                let mut t = Table::new(&[
                    "unit",
                    "name",
                    "active",
                    "nam",
                    "nữ",
                    "khác",
                    "transferred",
                    "left",
                    "ceased",
                    "records",
                ]);
                for row in r.rows.iter().chain(r.total.as_ref()) {
                    t.row(vec![
                        row.unit_id.clone(),
                        row.unit_name.clone(),
                        row.active.to_string(),
                        row.male.to_string(),
                        row.female.to_string(),
                        row.other_gender.to_string(),
                        row.transferred.to_string(),
                        row.left.to_string(),
                        row.ceased.to_string(),
                        row.total.to_string(),
                    ]);
                }
                t
            })
        }
        ReportCmd::Initiatives { campaign, unit } => {
            let r = c
                .initiatives_report(pb::InitiativesReportRequest {
                    campaign_id: campaign,
                    unit_id: unit,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.InitiativesReportResponse", || {
                initiatives_table(&r)
            })
        }
        ReportCmd::Awards { unit, year } => {
            let r = c
                .awards_report(pb::AwardsReportRequest {
                    unit_id: unit,
                    year,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.AwardsReportResponse", || {
                let mut t = Table::new(&["year", "level", "award", "recipients"]);
                for row in &r.rows {
                    t.row(vec![
                        row.year.to_string(),
                        row.level.clone(),
                        row.award_name.clone(),
                        row.count.to_string(),
                    ]);
                }
                if let Some(total) = &r.total {
                    t.row(vec![
                        String::new(),
                        String::new(),
                        total.award_name.clone(),
                        total.count.to_string(),
                    ]);
                }
                t
            })
        }
        ReportCmd::Works { unit, campaign } => {
            let r = c
                .works_report(pb::WorksReportRequest {
                    unit_id: unit,
                    campaign_id: campaign,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.WorksReportResponse", || {
                let mut t = Table::new(&["unit", "name", "works", "value", "plaques"]);
                for row in r.rows.iter().chain(r.total.as_ref()) {
                    t.row(vec![
                        row.unit_id.clone(),
                        row.unit_name.clone(),
                        row.count.to_string(),
                        vnd(row.value_vnd),
                        row.plaques.to_string(),
                    ]);
                }
                t
            })
        }
    }
}
