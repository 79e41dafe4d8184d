//! [`Config::validate`]: what serde cannot check of a configuration (ids,
//! kinds, urls, ranges), each refusal naming its field.

use hopluu_model::{UnitId, unit::KindCatalogue};

use super::Config;
use crate::NodeError;

impl Config {
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
        let dialable = ["https://", "http://"]
            .iter()
            .any(|scheme| self.node.address.starts_with(scheme));
        if !self.node.address.is_empty() && !dialable {
            return bad(
                "node.address",
                format!(
                    "{:?} is not an address other nodes can dial: write https://host:port",
                    self.node.address
                ),
            );
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
        if self.database.cache_mib > 1 << 20 {
            return bad(
                "database.cache_mib",
                "must be 0 to 1048576 (0 keeps no document decoded)".into(),
            );
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
        let r = &self.replication;
        for (i, u) in r.upstreams.iter().enumerate() {
            if let Err(e) = UnitId::parse("node_id", &u.node_id) {
                return bad(
                    &format!("replication.upstreams[{i}].node_id"),
                    e.to_string(),
                );
            }
            if u.node_id == self.node.id {
                return bad(
                    &format!("replication.upstreams[{i}].node_id"),
                    "is this node's own id".into(),
                );
            }
            if !(u.address.starts_with("http://") || u.address.starts_with("https://"))
                || u.address.parse::<tonic::transport::Uri>().is_err()
            {
                return bad(
                    &format!("replication.upstreams[{i}].address"),
                    format!("{:?} is not an address like https://host:7400", u.address),
                );
            }
            match (&self.tls, u.address.starts_with("https://")) {
                (Some(_), false) => {
                    return bad(
                        &format!("replication.upstreams[{i}].address"),
                        format!(
                            "{:?} is plaintext: with [tls], upstreams are dialled over TLS (https://host:7400)",
                            u.address
                        ),
                    );
                }
                (None, true) => {
                    return bad(
                        &format!("replication.upstreams[{i}].address"),
                        format!(
                            "{:?} is TLS, but there is no [tls] section (the node's certificate, key and CAs)",
                            u.address
                        ),
                    );
                }
                _ => {}
            }
            if self.tls.is_some()
                && let Err(e) = crate::tls::node_dns_name(&u.node_id)
            {
                return bad(
                    &format!("replication.upstreams[{i}].node_id"),
                    e.to_string(),
                );
            }
        }
        for (i, c) in r.children.iter().enumerate() {
            if let Err(e) = UnitId::parse("node_id", &c.node_id) {
                return bad(&format!("replication.children[{i}].node_id"), e.to_string());
            }
            if c.node_id == self.node.id {
                return bad(
                    &format!("replication.children[{i}].node_id"),
                    "is this node's own id".into(),
                );
            }
            if let Err(e) = UnitId::parse("unit", &c.unit) {
                return bad(&format!("replication.children[{i}].unit"), e.to_string());
            }
            if r.children[..i].iter().any(|o| o.node_id == c.node_id) {
                return bad(
                    &format!("replication.children[{i}].node_id"),
                    format!("{} is listed twice", c.node_id),
                );
            }
        }
        if let Some(tls) = &self.tls {
            for (field, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if path.as_os_str().is_empty() {
                    return bad(field, "must name a file".into());
                }
            }
            if tls.ca.is_empty() {
                return bad(
                    "tls.ca",
                    "list at least one trusted CA certificate file".into(),
                );
            }
            if let Err(e) = crate::tls::node_dns_name(&self.node.id) {
                return bad("node.id", e.to_string());
            }
        }
        if !r.upstreams.is_empty()
            && (self.node.unit_name.is_some() || self.node.unit_kind.is_some())
        {
            return bad(
                "node.unit_name",
                "a node with an upstream receives its unit's record from the parent, which decides it: remove node.unit_name, node.unit_kind and node.unit_parent".into(),
            );
        }
        if !(1..=10_000).contains(&r.batch_docs) {
            return bad("replication.batch_docs", "must be 1 to 10000".into());
        }
        if r.batch_bytes < 1024 || r.batch_bytes > self.grpc.max_message_bytes / 2 {
            return bad(
                "replication.batch_bytes",
                "must be at least 1024 and at most half of grpc.max_message_bytes".into(),
            );
        }
        if !(1..=64).contains(&r.in_flight) {
            return bad("replication.in_flight", "must be 1 to 64".into());
        }
        if r.ack_timeout_secs == 0 {
            return bad("replication.ack_timeout_secs", "must be at least 1".into());
        }
        if r.stall_timeout_secs == 0 {
            return bad(
                "replication.stall_timeout_secs",
                "must be at least 1".into(),
            );
        }
        if !(1..=3600).contains(&r.hello_timeout_secs) {
            return bad("replication.hello_timeout_secs", "must be 1 to 3600".into());
        }
        if !(1..=3600).contains(&r.keepalive_secs) {
            return bad("replication.keepalive_secs", "must be 1 to 3600".into());
        }
        if !(1..=3600).contains(&r.keepalive_timeout_secs) {
            return bad(
                "replication.keepalive_timeout_secs",
                "must be 1 to 3600".into(),
            );
        }
        if !(1..=3600).contains(&r.report_every_secs) {
            return bad("replication.report_every_secs", "must be 1 to 3600".into());
        }
        if r.backoff_min_ms == 0 || r.backoff_max_ms < r.backoff_min_ms {
            return bad(
                "replication.backoff_min_ms",
                "must be at least 1 and at most replication.backoff_max_ms".into(),
            );
        }
        if r.failover_after == 0 {
            return bad("replication.failover_after", "must be at least 1".into());
        }
        self.limits.validate()?;
        if let Some(m) = &self.metrics
            && m.listen.port() != 0
            && m.listen.port() == self.grpc.listen.port()
            && (m.listen.ip() == self.grpc.listen.ip()
                || m.listen.ip().is_unspecified()
                || self.grpc.listen.ip().is_unspecified())
        {
            return bad(
                "metrics.listen",
                format!(
                    "{} is grpc.listen's port: the metrics need a port of their own (9464 by default)",
                    m.listen
                ),
            );
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
