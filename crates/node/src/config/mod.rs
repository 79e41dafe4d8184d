//! The node's configuration: one typed tree, read from TOML, unknown keys
//! rejected, defaults named, validated before anything starts. Secrets (a
//! PostgreSQL password in the url) never appear in `Debug` output or logs.
//!
//! [`Config::validate`] checks the tree itself; the files `[tls]` names are
//! read and checked against `[node]` when the node starts
//! ([`crate::tls::NodeTls::load`]), so that an example configuration can be
//! checked on a machine without its certificates.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hopluu_model::UnitId;
use serde::Deserialize;

use crate::NodeError;

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub grpc: GrpcSection,
    #[serde(default)]
    pub roster: RosterSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub replication: ReplicationSection,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Mutual TLS. A node without it refuses to start unless it is told to
    /// serve plaintext (`hopluu serve --insecure-plaintext`, development
    /// only).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// The Prometheus metrics endpoint; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsSection>,
}

/// The metrics endpoint (`crate::metrics`): plain HTTP serving `GET
/// /metrics` in the Prometheus text format. It has no authentication and
/// shows peer node ids and replication state (never records or personal
/// data): keep it on loopback or a monitoring network.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address to listen on (port 0 picks a free port, logged at start).
    #[serde(
        default = "default_metrics_listen",
        deserialize_with = "metrics_listen"
    )]
    pub listen: SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: default_metrics_listen(),
        }
    }
}

/// The metrics port by default: the OpenTelemetry Prometheus exporter's,
/// clear of gRPC's 7400.
pub const DEFAULT_METRICS_PORT: u16 = 9464;

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))
}

/// `metrics.listen`, with a message that names the field and the form.
fn metrics_listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    struct Listen;
    impl serde::de::Visitor<'_> for Listen {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "metrics.listen: an address like \"127.0.0.1:{DEFAULT_METRICS_PORT}\""
            )
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SocketAddr, E> {
            text.parse()
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(text), &self))
        }
    }
    d.deserialize_str(Listen)
}

/// The node's certificate and the CAs it trusts (`crate::tls`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The node's certificate (PEM; `hopluu cert node`), naming `[node] id`
    /// and `unit`.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Every CA whose certificates this node accepts, from clients and
    /// from its upstreams: one file or several (while a CA is rotated, the
    /// old and the new one). A file may hold several certificates.
    pub ca: Vec<PathBuf>,
}

/// Who this node is and which unit (subtree) it hosts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Stable node id (lowercase letters, digits, '-', '_'). Part of every
    /// change this node makes.
    pub id: String,
    /// The unit this node hosts: it holds authority over its subtree.
    pub unit: String,
    /// Name and kind used to create the hosted unit's record the first time
    /// the node starts, if it does not know the unit yet.
    #[serde(default)]
    pub unit_name: Option<String>,
    #[serde(default)]
    pub unit_kind: Option<String>,
    /// The hosted unit's parent, for that first record (absent for the root).
    #[serde(default)]
    pub unit_parent: Option<String>,
    /// Where the node keeps its files (the SQLite database by default).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where other nodes of the federation reach this one
    /// (`https://host:port`), published in its node record: the old host
    /// of units handed over to this node dials it there (DESIGN §6). Empty:
    /// only its children reach it, and a handover to it waits.
    #[serde(default)]
    pub address: String,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite:PATH` or `postgres://user:password@host/db`; default
    /// `sqlite:{data_dir}/hopluu.sqlite`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Documents kept decoded in memory, at most.
    #[serde(default = "default_cache_docs")]
    pub cache_docs: usize,
    /// The memory, in MiB, those documents may take (estimated from their
    /// size): the bound that binds on a node with large or many rosters.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: usize,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: None,
            max_connections: default_max_connections(),
            cache_docs: default_cache_docs(),
            cache_mib: default_cache_mib(),
        }
    }
}

impl fmt::Debug for DatabaseSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSection")
            .field("url", &self.url.as_deref().map(hopluu_store::db::redact))
            .field("max_connections", &self.max_connections)
            .field("cache_docs", &self.cache_docs)
            .field("cache_mib", &self.cache_mib)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("node", &self.node)
            .field("database", &self.database)
            .field("grpc", &self.grpc)
            .field("roster", &self.roster)
            .field("log", &self.log)
            .field("replication", &self.replication)
            .field("limits", &self.limits)
            .field("tls", &self.tls)
            .field("metrics", &self.metrics)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcSection {
    /// Address of the gRPC server.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request or response message, in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

impl Default for GrpcSection {
    fn default() -> Self {
        GrpcSection {
            listen: default_listen(),
            max_message_bytes: default_max_message_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RosterSection {
    /// Members per roster document before a new hash bucket opens.
    #[serde(default = "default_bucket_size")]
    pub bucket_size: usize,
}

impl Default for RosterSection {
    fn default() -> Self {
        RosterSection {
            bucket_size: default_bucket_size(),
        }
    }
}

/// Replication with the nodes above this one (DESIGN §4).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSection {
    /// Nodes to dial, in order of preference: the parent first, then
    /// fallbacks (the grandparent) used while the parent is unreachable.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// The nodes allowed to open sessions with this one (its children, and
    /// the grandchildren that fall back to it), each with the unit it
    /// hosts; over TLS, a node presenting another node's certificate or
    /// one not listed here is refused. More can be allowed at run time
    /// (`Replication::allow_child`).
    #[serde(default)]
    pub children: Vec<Child>,
    /// Depth in the unit tree (the national federation is 0, provinces 1)
    /// down to which private rosters (CCCD, ethnicity, religion) are held:
    /// they replicate no higher.
    #[serde(default = "default_private_depth")]
    pub private_depth: usize,
    /// Documents per batch.
    #[serde(default = "default_batch_docs")]
    pub batch_docs: usize,
    /// Payload bytes per batch.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// Batches sent and not yet acknowledged, per peer.
    #[serde(default = "default_in_flight")]
    pub in_flight: usize,
    /// The least wait, in seconds, for the acknowledgement of the oldest
    /// batch in flight: it grows with the peer's pace and doubles with
    /// each timeout (see the README's "Slow, lossy links").
    #[serde(default = "default_ack_timeout_secs")]
    pub ack_timeout_secs: u64,
    /// Seconds a peer may leave frames unread (the session held open by a
    /// peer that never reads) before it is dropped.
    #[serde(default = "default_stall_timeout_secs")]
    pub stall_timeout_secs: u64,
    /// Seconds a session waits for the peer's hello once the stream is
    /// open: long enough for a slow, lossy link, where each lost packet
    /// costs a retransmission of a second or more. A dialler waits at
    /// least four times what opening the stream took.
    #[serde(default = "default_hello_timeout_secs")]
    pub hello_timeout_secs: u64,
    /// HTTP/2 keepalive on every replication connection, both ways: a
    /// ping after this many seconds without a frame from the peer...
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// ...and the connection (with its session) dropped when the ping is
    /// not answered within this many seconds. So a link that goes silent
    /// (packets dropped, no FIN or RST) shows as down within the sum of
    /// the two, while a ping held up by a few retransmissions on a lossy
    /// link is still answered in time.
    #[serde(default = "default_keepalive_timeout_secs")]
    pub keepalive_timeout_secs: u64,
    /// Seconds between the reports of this node's edges to its parent
    /// (`hopluu tree` at the nodes above), and between measures of what
    /// each peer lacks.
    #[serde(default = "default_report_every_secs")]
    pub report_every_secs: u64,
    /// First and longest wait between dial attempts, in milliseconds
    /// (exponential backoff with jitter in between).
    #[serde(default = "default_backoff_min_ms")]
    pub backoff_min_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Failed dials of one upstream before the next one in the list is
    /// tried.
    #[serde(default = "default_failover_after")]
    pub failover_after: u32,
}

impl Default for ReplicationSection {
    fn default() -> Self {
        ReplicationSection {
            upstreams: Vec::new(),
            children: Vec::new(),
            private_depth: default_private_depth(),
            batch_docs: default_batch_docs(),
            batch_bytes: default_batch_bytes(),
            in_flight: default_in_flight(),
            ack_timeout_secs: default_ack_timeout_secs(),
            stall_timeout_secs: default_stall_timeout_secs(),
            hello_timeout_secs: default_hello_timeout_secs(),
            keepalive_secs: default_keepalive_secs(),
            keepalive_timeout_secs: default_keepalive_timeout_secs(),
            report_every_secs: default_report_every_secs(),
            backoff_min_ms: default_backoff_min_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            failover_after: default_failover_after(),
        }
    }
}

/// A node to dial.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Its node id: a peer answering with another id is refused, and over
    /// TLS its certificate must name this node (`<node_id>.node.hopluu`).
    pub node_id: String,
    /// `https://host:port` (`http://` only for a node serving plaintext).
    pub address: String,
}

/// A node allowed to dial this one.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Child {
    pub node_id: String,
    /// The unit it hosts, as its certificate names it.
    pub unit: String,
}

fn default_private_depth() -> usize {
    1
}
fn default_batch_docs() -> usize {
    256
}
fn default_batch_bytes() -> usize {
    1 << 20
}
fn default_in_flight() -> usize {
    4
}
fn default_ack_timeout_secs() -> u64 {
    30
}
fn default_stall_timeout_secs() -> u64 {
    60
}
fn default_hello_timeout_secs() -> u64 {
    30
}
fn default_keepalive_secs() -> u64 {
    2
}
fn default_keepalive_timeout_secs() -> u64 {
    10
}
fn default_report_every_secs() -> u64 {
    10
}
fn default_backoff_min_ms() -> u64 {
    200
}
fn default_backoff_max_ms() -> u64 {
    30_000
}
fn default_failover_after() -> u32 {
    3
}

/// The budget of client API requests each caller has (`[limits]`; the
/// token buckets of `crate::grpc::auth::ClientLimits`). A caller is a
/// certificate identity (on a plaintext node, an address). A caller may
/// make `burst` requests at once, then `requests_per_second`; beyond that
/// it is answered `RESOURCE_EXHAUSTED` with when to retry, while every
/// other caller goes on as before. Replication sessions have their own
/// limits; health checks and reflection have none.
///
/// The defaults are far above what an office does: a person clicks a few
/// times a second, a page of the client fans out to a few dozen requests,
/// and a roster import sends thousands of rows per request. They stop a
/// runaway script or a stolen certificate from taking the whole node.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// `false` turns the limit off (benchmarks, a node behind a proxy that
    /// limits). Zero is not "off": a zero rate or burst is refused.
    #[serde(default = "default_limits_enabled")]
    pub enabled: bool,
    /// Requests a caller may make per second, sustained (1 to 100000).
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: u32,
    /// Requests a caller may make at once, after a pause (1 to 1000000).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Callers whose budget is tracked at once (100 to 1000000). A caller
    /// idle until its budget refilled is forgotten, losing nothing; past
    /// this many, the least recently seen is forgotten.
    #[serde(default = "default_max_callers")]
    pub max_callers: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            enabled: default_limits_enabled(),
            requests_per_second: default_requests_per_second(),
            burst: default_burst(),
            max_callers: default_max_callers(),
        }
    }
}

impl LimitsSection {
    /// Checks the ranges, even when off, so that turning the limit on
    /// cannot meet a bad value. A zero is refused, not read as "off".
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad =
            |field: &str, reason: &str| Err(NodeError::Config(format!("limits.{field}: {reason}")));
        let off = "(to serve without a limit, set limits.enabled = false)";
        if !(1..=100_000).contains(&self.requests_per_second) {
            return bad("requests_per_second", &format!("must be 1 to 100000 {off}"));
        }
        if !(1..=1_000_000).contains(&self.burst) {
            return bad("burst", &format!("must be 1 to 1000000 {off}"));
        }
        if !(100..=1_000_000).contains(&self.max_callers) {
            return bad("max_callers", "must be 100 to 1000000");
        }
        Ok(())
    }
}

fn default_limits_enabled() -> bool {
    true
}
fn default_requests_per_second() -> u32 {
    50
}
fn default_burst() -> u32 {
    200
}
fn default_max_callers() -> usize {
    10_000
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `hopluu_node=debug,info`.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::default(),
            level: default_level(),
        }
    }
}

pub const DEFAULT_PORT: u16 = 7400;

fn default_data_dir() -> PathBuf {
    PathBuf::from("hopluu-data")
}
fn default_max_connections() -> u32 {
    8
}
fn default_cache_docs() -> usize {
    10_000
}
fn default_cache_mib() -> usize {
    256
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
}
fn default_max_message_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_bucket_size() -> usize {
    1000
}
fn default_level() -> String {
    "info".to_owned()
}

impl Config {
    /// The configuration `hopluu serve` uses without `--config`: a national
    /// (root) node on an embedded SQLite file under `data_dir`.
    pub fn embedded(data_dir: &Path) -> Config {
        Config {
            node: NodeSection {
                id: "vn".to_owned(),
                unit: "vn".to_owned(),
                unit_name: Some("Tổng Liên đoàn Lao động Việt Nam".to_owned()),
                unit_kind: Some("central".to_owned()),
                unit_parent: None,
                data_dir: data_dir.to_owned(),
                address: String::new(),
            },
            database: DatabaseSection::default(),
            grpc: GrpcSection::default(),
            roster: RosterSection::default(),
            log: LogSection::default(),
            replication: ReplicationSection::default(),
            limits: LimitsSection::default(),
            tls: None,
            metrics: None,
        }
    }

    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, NodeError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| NodeError::Config(e.message().to_owned() + &span(text, e.span())))?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml(&text).map_err(|e| match e {
            NodeError::Config(m) => NodeError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The database url, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite:{}",
                self.node.data_dir.join("hopluu.sqlite").display()
            )
        })
    }

    pub fn unit_id(&self) -> UnitId {
        UnitId::parse("node.unit", &self.node.unit).expect("validated at load")
    }
}

fn span(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

mod validate;

#[cfg(test)]
mod deploy_examples;
#[cfg(test)]
mod tests;
