//! The node's configuration: one typed tree, read from TOML, unknown keys
//! rejected, defaults named, validated before anything starts. Secrets (a
//! PostgreSQL password in the url) never appear in `Debug` output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hopluu_model::{UnitId, unit::KindCatalogue};
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
    /// Documents kept decoded in memory.
    #[serde(default = "default_cache_docs")]
    pub cache_docs: usize,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: None,
            max_connections: default_max_connections(),
            cache_docs: default_cache_docs(),
        }
    }
}

impl fmt::Debug for DatabaseSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSection")
            .field("url", &self.url.as_deref().map(hopluu_store::db::redact))
            .field("max_connections", &self.max_connections)
            .field("cache_docs", &self.cache_docs)
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
            },
            database: DatabaseSection::default(),
            grpc: GrpcSection::default(),
            roster: RosterSection::default(),
            log: LogSection::default(),
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

    /// Checks what serde cannot: ids, kinds, urls, ranges.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad =
            |field: &str, reason: String| Err(NodeError::Config(format!("{field}: {reason}")));
        if let Err(e) = UnitId::parse("node.id", &self.node.id) {
            return bad("node.id", e.to_string());
        }
        if let Err(e) = UnitId::parse("node.unit", &self.node.unit) {
            return bad("node.unit", e.to_string());
        }
        if let Some(p) = &self.node.unit_parent
            && let Err(e) = UnitId::parse("node.unit_parent", p)
        {
            return bad("node.unit_parent", e.to_string());
        }
        if let Some(k) = &self.node.unit_kind
            && KindCatalogue::default().get(k).is_none()
        {
            return bad("node.unit_kind", format!("unknown unit kind {k:?}"));
        }
        if let Some(url) = &self.database.url
            && let Err(e) = hopluu_store::Backend::of_url(url)
        {
            return bad("database.url", e.to_string());
        }
        if !(1..=256).contains(&self.database.max_connections) {
            return bad("database.max_connections", "must be 1 to 256".into());
        }
        if !(1..=100_000).contains(&self.roster.bucket_size) {
            return bad("roster.bucket_size", "must be 1 to 100000".into());
        }
        if self.grpc.max_message_bytes < 64 * 1024 {
            return bad("grpc.max_message_bytes", "must be at least 65536".into());
        }
        if let Err(e) = tracing_subscriber_filter_check(&self.log.level) {
            return bad("log.level", e);
        }
        Ok(())
    }
}

fn tracing_subscriber_filter_check(level: &str) -> Result<(), String> {
    // A filter is comma-separated `target=level` or `level` directives.
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lvl = part.rsplit('=').next().unwrap_or(part);
        if !["trace", "debug", "info", "warn", "error", "off"]
            .contains(&lvl.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "{part:?} is not a log level (trace, debug, info, warn, error, off)"
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml("[node]\nid = \"hg\"\nunit = \"hau-giang\"\n").unwrap();
        assert_eq!(c.grpc.listen.port(), DEFAULT_PORT);
        assert_eq!(c.roster.bucket_size, 1000);
        assert_eq!(c.database_url(), "sqlite:hopluu-data/hopluu.sqlite");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let e = Config::from_toml("[node]\nid = \"hg\"\nunit = \"hg\"\ncolour = \"red\"\n")
            .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("colour") && m.contains("line 4"), "{m}");
    }

    #[test]
    fn bad_values_name_the_field() {
        for (toml, field) in [
            ("[node]\nid = \"Bad Id\"\nunit = \"hg\"\n", "node.id"),
            (
                "[node]\nid = \"hg\"\nunit = \"hg\"\nunit_kind = \"planet\"\n",
                "node.unit_kind",
            ),
            (
                "[node]\nid = \"hg\"\nunit = \"hg\"\n[database]\nurl = \"mysql://x\"\n",
                "database.url",
            ),
            (
                "[node]\nid = \"hg\"\nunit = \"hg\"\n[roster]\nbucket_size = 0\n",
                "roster.bucket_size",
            ),
            (
                "[node]\nid = \"hg\"\nunit = \"hg\"\n[log]\nlevel = \"loud\"\n",
                "log.level",
            ),
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn passwords_are_not_printed() {
        let c = Config::from_toml(
            "[node]\nid = \"vn\"\nunit = \"vn\"\n[database]\nurl = \"postgres://hopluu:s3cret@db/vn\"\n",
        )
        .unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("***"));
    }
}

#[cfg(test)]
mod deploy_examples {
    use super::*;

    /// Every example configuration in deploy/ parses and validates, so the
    /// examples cannot rot.
    #[test]
    fn every_example_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("deploy/ exists") {
            let path = entry.expect("readable").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!c.node.id.is_empty());
                seen += 1;
            }
        }
        assert!(
            seen >= 3,
            "expected the national, province and district examples, found {seen}"
        );
        let national = Config::load(&dir.join("national.toml")).unwrap();
        assert!(national.database_url().starts_with("postgres://"));
        let district = Config::load(&dir.join("district.toml")).unwrap();
        assert_eq!(
            district.database_url(),
            "sqlite:/var/lib/hopluu/hopluu.sqlite"
        );
    }

    #[test]
    fn the_systemd_unit_runs_serve_with_a_config() {
        let unit = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/hopluu.service"),
        )
        .expect("deploy/hopluu.service exists");
        assert!(
            unit.contains("ExecStart=/usr/local/bin/hopluu serve --config /etc/hopluu/node.toml")
        );
    }
}
