//! Mutual TLS: who a peer is, read from its certificate.
//!
//! Every connection to a node is TLS with a client certificate, both issued
//! by a CA the node trusts (`[tls] ca`, one file or several, so that a CA can
//! be rotated: trust the old and the new one, reissue, drop the old one).
//! A certificate says who holds it in one subject-alternative-name URI:
//!
//! | holder | SAN URI | extended key usage |
//! |---|---|---|
//! | a node | `urn:hopluu:node:<node_id>:<unit_id>` | serverAuth, clientAuth |
//! | an administrator | `urn:hopluu:admin:<name>` | clientAuth |
//! | office staff of a unit | `urn:hopluu:staff:<name>:<unit_id>` | clientAuth |
//!
//! A node certificate also carries the DNS name `<node_id>.node.hopluu`
//! ([`node_dns_name`]): a child dialling its parent verifies the parent's
//! certificate against that name, derived from the upstream's configured
//! node id, not against the address it dials (which may be a proxy, a
//! load balancer or a bare IP). Extra DNS names and IP addresses (`hopluu
//! cert node --dns/--ip`) let administrators reach a node by its address.
//!
//! Names of administrators and staff are account names (`nguyen.van.an`,
//! `hg-clerk-1`): lowercase ASCII letters, digits, `.`, `-`, `_`.
//!
//! # Layout
//! - [`Identity`]: the holder, read from a request's peer certificate.
//! - [`CertInfo`]: subject, identity and validity of a certificate.
//! - [`NodeTls`]: the node's certificate, key and trusted CAs, loaded from
//!   `[tls]`, and the client TLS configuration made from them.
//! - [`accept`]: the server side, the node's own TLS acceptor (a client
//!   without a certificate reaches health only; refused handshakes are
//!   logged and counted).
//! - [`issue`]: making a CA and the certificates above (`hopluu cert`,
//!   tests, the demo).

pub mod accept;
pub mod issue;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hopluu_model::UnitId;
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::NodeError;
use crate::config::TlsSection;

/// How the node's connections are secured.
#[derive(Debug, Clone)]
pub enum Security {
    /// Mutual TLS with the node's certificate and CAs.
    Tls(std::sync::Arc<NodeTls>),
    /// Plaintext, nobody authenticated (`--insecure-plaintext`).
    InsecurePlaintext,
}

/// How long a TLS handshake may take, each way.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The DNS zone of node names in certificates: node `hau-giang` is
/// `hau-giang.node.hopluu`.
pub const NODE_DNS_ZONE: &str = "node.hopluu";

const URN: &str = "urn:hopluu:";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// Not a readable certificate or key.
    #[error("{0}")]
    Parse(String),
    /// A certificate without a (valid) hopluu identity.
    #[error("{0}")]
    Identity(String),
    /// A certificate could not be made.
    #[error("{0}")]
    Issue(String),
    /// A TLS client that presented no certificate (let in for health).
    #[error(
        "no client certificate: every service but health requires a certificate from the \
         federation's CA (make one with `hopluu cert admin` or `hopluu cert staff`)"
    )]
    Missing,
}

/// Who is at the other end of a connection, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A node: replication sessions and node-to-node calls.
    Node { node_id: String, unit: UnitId },
    /// An administrator of the federation's nodes.
    Admin { name: String },
    /// Office staff, working on one unit (and its subtree).
    Staff { name: String, unit: UnitId },
    /// No certificate: the node serves plaintext (`--insecure-plaintext`,
    /// development only), so nobody is authenticated.
    Insecure,
}

impl fmt::Display for Identity {
    /// For logs: kinds, ids and account names, nothing personal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node { node_id, unit } => write!(f, "node {node_id} (unit {unit})"),
            Identity::Admin { name } => write!(f, "admin {name}"),
            Identity::Staff { name, unit } => write!(f, "staff {name} (unit {unit})"),
            Identity::Insecure => f.write_str("unauthenticated (plaintext)"),
        }
    }
}

impl Identity {
    /// The peer of a request on a node's server: from its TLS client
    /// certificate (verified in the handshake), or [`Identity::Insecure`]
    /// on a plaintext server. A TLS connection without a certificate (let
    /// in for the health service, [`accept`]) has no identity.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Identity, TlsError> {
        use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
        let Some(tls) = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>() else {
            return Ok(Identity::Insecure);
        };
        match tls.peer_certs().as_deref().and_then(|c| c.first()) {
            Some(leaf) => Identity::from_der(leaf.as_ref()),
            None => Err(TlsError::Missing),
        }
    }

    /// The identity a DER certificate carries.
    pub fn from_der(der: &[u8]) -> Result<Identity, TlsError> {
        let (_, x509) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Parse(format!("not an X.509 certificate: {e}")))?;
        identity_of(&x509)
    }

    /// Parses `urn:hopluu:…`.
    pub fn from_uri(uri: &str) -> Result<Identity, TlsError> {
        let bad = |why: &str| TlsError::Identity(format!("SAN URI {uri:?}: {why}"));
        let rest = uri
            .strip_prefix(URN)
            .ok_or_else(|| bad("not a urn:hopluu: identity"))?;
        let parts: Vec<&str> = rest.split(':').collect();
        let unit = |s: &str| UnitId::parse("unit", s).map_err(|e| bad(&e.to_string()));
        let node = |s: &str| {
            UnitId::parse("node_id", s)
                .map(|id| id.to_string())
                .map_err(|e| bad(&e.to_string()))
        };
        let name = |s: &str| check_account_name(s).map_err(|e| bad(&e));
        match parts.as_slice() {
            ["node", id, u] => Ok(Identity::Node {
                node_id: node(id)?,
                unit: unit(u)?,
            }),
            ["admin", n] => Ok(Identity::Admin { name: name(n)? }),
            ["staff", n, u] => Ok(Identity::Staff {
                name: name(n)?,
                unit: unit(u)?,
            }),
            _ => Err(bad(
                "expected urn:hopluu:node:<node_id>:<unit_id>, urn:hopluu:admin:<name> or urn:hopluu:staff:<name>:<unit_id>",
            )),
        }
    }

    /// The SAN URI that carries this identity (none for `Insecure`).
    pub fn uri(&self) -> Option<String> {
        match self {
            Identity::Node { node_id, unit } => Some(format!("{URN}node:{node_id}:{unit}")),
            Identity::Admin { name } => Some(format!("{URN}admin:{name}")),
            Identity::Staff { name, unit } => Some(format!("{URN}staff:{name}:{unit}")),
            Identity::Insecure => None,
        }
    }
}

/// An account name of an administrator or a staff member.
pub fn check_account_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not an account name: 1 to 64 lowercase ASCII letters, digits, '.', '-' and '_', starting with a letter or digit"
        ))
    }
}

/// The DNS name a node's certificate carries and its children verify:
/// `<node_id>.node.hopluu`. A node id is a valid DNS label when it has at
/// most 63 characters and does not end with '-'.
pub fn node_dns_name(node_id: &str) -> Result<String, TlsError> {
    let id = UnitId::parse("node_id", node_id).map_err(|e| TlsError::Identity(e.to_string()))?;
    let id = id.as_str();
    if id.len() > 63 || id.ends_with('-') {
        return Err(TlsError::Identity(format!(
            "node_id: {id:?} cannot be a DNS label in a certificate: at most 63 characters, not ending with '-'"
        )));
    }
    Ok(format!("{id}.{NODE_DNS_ZONE}"))
}

fn identity_of(x509: &X509Certificate<'_>) -> Result<Identity, TlsError> {
    let uris: Vec<&str> = sans(x509)?
        .into_iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) if u.starts_with(URN) => Some(u),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [uri] => Identity::from_uri(uri),
        [] => Err(TlsError::Identity(format!(
            "certificate {} carries no hopluu identity (a SAN URI urn:hopluu:…; make certificates with `hopluu cert`)",
            x509.subject()
        ))),
        _ => Err(TlsError::Identity(format!(
            "certificate {} carries {} hopluu identities; it must carry one",
            x509.subject(),
            uris.len()
        ))),
    }
}

fn sans<'a>(x509: &'a X509Certificate<'_>) -> Result<Vec<GeneralName<'a>>, TlsError> {
    let ext = x509
        .subject_alternative_name()
        .map_err(|e| TlsError::Parse(format!("subject alternative names: {e}")))?;
    Ok(ext
        .map(|e| e.value.general_names.clone())
        .unwrap_or_default())
}

/// What a certificate says: for logs, status and expiry warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's distinguished name, e.g. `CN=hau-giang, O=hopluu`.
    pub subject: String,
    pub issuer: String,
    /// None when the certificate carries no hopluu identity (a CA).
    pub identity: Option<Identity>,
    /// DNS names and IP addresses it is valid for.
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub is_ca: bool,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Result<CertInfo, TlsError> {
        let (_, x509) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Parse(format!("not an X.509 certificate: {e}")))?;
        let time = |t: i64| UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        for n in sans(&x509)? {
            match n {
                GeneralName::DNSName(d) => dns_names.push(d.to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(b) {
                        ip_addresses.push(a.into());
                    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                        ip_addresses.push(a.into());
                    }
                }
                _ => {}
            }
        }
        Ok(CertInfo {
            subject: x509.subject().to_string(),
            issuer: x509.issuer().to_string(),
            identity: identity_of(&x509).ok(),
            dns_names,
            ip_addresses,
            not_before: time(x509.validity().not_before.timestamp()),
            not_after: time(x509.validity().not_after.timestamp()),
            is_ca: x509.is_ca(),
        })
    }

    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<CertInfo, TlsError> {
        let ders = pem_certificates(pem)?;
        CertInfo::from_der(&ders[0])
    }

    /// `not_after` as `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn expires(&self) -> String {
        utc(self.not_after)
    }

    /// Whole days from `now` until expiry (negative once expired).
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let secs = match self.not_after.duration_since(now) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        secs.div_euclid(86_400)
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{secs} s after 1970"),
    }
}

/// Every `CERTIFICATE` block of a PEM text, as DER; at least one.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| TlsError::Parse(format!("not PEM: {e}")))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(TlsError::Parse("holds no PEM certificate".into()));
    }
    Ok(out)
}

/// The node's TLS material: its certificate (chain) and key, and every
/// trusted CA, checked against each other and the node's configuration.
#[derive(Clone)]
pub struct NodeTls {
    cert_pem: String,
    key_pem: String,
    /// Every trusted CA certificate, concatenated.
    ca_pem: String,
    info: CertInfo,
    cas: Vec<CertInfo>,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("cert", &self.info.subject)
            .field("identity", &self.info.identity)
            .field("expires", &self.info.expires())
            .field(
                "cas",
                &self.cas.iter().map(|c| &c.subject).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Reads and checks `[tls]`: the files are readable, the certificate
    /// parses, names node `node_id` hosting `unit`, carries the node's DNS
    /// name, is within its validity and was issued by one of the CAs; the
    /// key belongs to it. Errors name the setting (`tls.cert: …`).
    pub fn load(tls: &TlsSection, node_id: &str, unit: &UnitId) -> Result<NodeTls, NodeError> {
        let cfg = |field: &str, why: String| NodeError::Config(format!("{field}: {why}"));
        let read = |field: &str, path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| cfg(field, format!("cannot read {}: {e}", path.display())))
        };
        let cert_pem = read("tls.cert", &tls.cert)?;
        let key_pem = read("tls.key", &tls.key)?;
        if tls.ca.is_empty() {
            return Err(cfg(
                "tls.ca",
                "list at least one trusted CA certificate file".into(),
            ));
        }
        let mut ca_pem = String::new();
        let mut ca_ders = Vec::new();
        let mut cas = Vec::new();
        for (i, path) in tls.ca.iter().enumerate() {
            let field = format!("tls.ca[{i}]");
            let text = read(&field, path)?;
            let ders = pem_certificates(&text)
                .map_err(|e| cfg(&field, format!("{}: {e}", path.display())))?;
            for der in ders {
                let info = CertInfo::from_der(&der)
                    .map_err(|e| cfg(&field, format!("{}: {e}", path.display())))?;
                if !info.is_ca {
                    return Err(cfg(
                        &field,
                        format!(
                            "{} holds {}, which is not a CA certificate",
                            path.display(),
                            info.subject
                        ),
                    ));
                }
                cas.push(info);
                ca_ders.push(der);
            }
            ca_pem.push_str(text.trim_end());
            ca_pem.push('\n');
        }
        let chain = pem_certificates(&cert_pem)
            .map_err(|e| cfg("tls.cert", format!("{}: {e}", tls.cert.display())))?;
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| {
            cfg(
                "tls.cert",
                format!("{}: not an X.509 certificate: {e}", tls.cert.display()),
            )
        })?;
        let info = CertInfo::from_der(&chain[0])
            .map_err(|e| cfg("tls.cert", format!("{}: {e}", tls.cert.display())))?;
        match identity_of(&leaf) {
            Ok(Identity::Node {
                node_id: id,
                unit: u,
            }) if id == node_id && u == *unit => {}
            Ok(Identity::Node {
                node_id: id,
                unit: u,
            }) => {
                return Err(cfg(
                    "tls.cert",
                    format!(
                        "{} is the certificate of node {id} hosting {u}, but this node is {node_id} hosting {unit} ([node] id and unit)",
                        tls.cert.display()
                    ),
                ));
            }
            Ok(other) => {
                return Err(cfg(
                    "tls.cert",
                    format!(
                        "{} is the certificate of {other}, not of a node (make one with `hopluu cert node`)",
                        tls.cert.display()
                    ),
                ));
            }
            Err(e) => return Err(cfg("tls.cert", format!("{}: {e}", tls.cert.display()))),
        }
        let dns = node_dns_name(node_id).map_err(|e| cfg("node.id", e.to_string()))?;
        if !info.dns_names.iter().any(|d| d.eq_ignore_ascii_case(&dns)) {
            return Err(cfg(
                "tls.cert",
                format!(
                    "{} lacks the DNS name {dns}, which children verify when they dial this node",
                    tls.cert.display()
                ),
            ));
        }
        let now = SystemTime::now();
        if info.not_after < now {
            return Err(cfg(
                "tls.cert",
                format!("{} expired on {}", tls.cert.display(), info.expires()),
            ));
        }
        if info.not_before > now {
            return Err(cfg(
                "tls.cert",
                format!(
                    "{} is not valid before {}",
                    tls.cert.display(),
                    utc(info.not_before)
                ),
            ));
        }
        let issued_by_a_ca = ca_ders.iter().any(|der| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, ca)| leaf.verify_signature(Some(ca.public_key())).is_ok())
                .unwrap_or(false)
        });
        // A chain (leaf, intermediates) is accepted when its last
        // certificate is signed by a CA; this node makes no intermediates.
        let chain_top_ok = chain.len() > 1 && {
            let (_, top) = x509_parser::parse_x509_certificate(&chain[chain.len() - 1])
                .map_err(|e| cfg("tls.cert", e.to_string()))?;
            ca_ders.iter().any(|der| {
                x509_parser::parse_x509_certificate(der)
                    .map(|(_, ca)| top.verify_signature(Some(ca.public_key())).is_ok())
                    .unwrap_or(false)
            })
        };
        if !issued_by_a_ca && !chain_top_ok {
            return Err(cfg(
                "tls.cert",
                format!(
                    "{} ({}) was not issued by any CA of tls.ca ({})",
                    tls.cert.display(),
                    info.issuer,
                    cas.iter()
                        .map(|c| c.subject.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        let key = rcgen::KeyPair::from_pem(&key_pem).map_err(|e| {
            cfg(
                "tls.key",
                format!("{}: not a PEM private key: {e}", tls.key.display()),
            )
        })?;
        if rcgen::PublicKeyData::der_bytes(&key)
            != leaf.public_key().subject_public_key.data.as_ref()
        {
            return Err(cfg(
                "tls.key",
                format!(
                    "{} is not the key of {}",
                    tls.key.display(),
                    tls.cert.display()
                ),
            ));
        }
        Ok(NodeTls {
            cert_pem,
            key_pem,
            ca_pem,
            info,
            cas,
        })
    }

    /// The node's certificate.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The trusted CAs.
    pub fn cas(&self) -> &[CertInfo] {
        &self.cas
    }

    /// Every trusted CA certificate, as one PEM text.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Dialling node `node_id` (an upstream): presents this node's
    /// certificate and accepts only a certificate of that node (by its DNS
    /// name [`node_dns_name`], whatever address is dialled) from one of the
    /// CAs.
    pub fn client_config(&self, node_id: &str) -> Result<ClientTlsConfig, TlsError> {
        Ok(
            client_config(&self.ca_pem, Some((&self.cert_pem, &self.key_pem)))
                .domain_name(node_dns_name(node_id)?),
        )
    }
}

/// A client TLS configuration: trusting the CAs of `ca_pem`, presenting
/// `identity` (certificate and key PEM) when given. The server's name is
/// checked against the dialled host unless `domain_name` is set on it.
pub fn client_config(ca_pem: &str, identity: Option<(&str, &str)>) -> ClientTlsConfig {
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .timeout(HANDSHAKE_TIMEOUT);
    match identity {
        Some((cert, key)) => config.identity(tonic::transport::Identity::from_pem(cert, key)),
        None => config,
    }
}

/// Reads and concatenates CA files (for clients); errors name the file.
pub fn read_cas(files: &[PathBuf]) -> Result<String, String> {
    let mut pem = String::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        pem_certificates(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        pem.push_str(text.trim_end());
        pem.push('\n');
    }
    Ok(pem)
}

/// An error and its sources, `: `-separated (a TLS failure is three levels
/// down a transport error).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_their_uri() {
        for id in [
            Identity::Node {
                node_id: "hg-node".into(),
                unit: UnitId::parse("u", "hau-giang").unwrap(),
            },
            Identity::Admin {
                name: "nguyen.van.an".into(),
            },
            Identity::Staff {
                name: "clerk_1".into(),
                unit: UnitId::parse("u", "hg-truong-a").unwrap(),
            },
        ] {
            assert_eq!(Identity::from_uri(&id.uri().unwrap()).unwrap(), id);
        }
        for bad in [
            "urn:hopluu:node:hg",
            "urn:hopluu:node:HG:hg",
            "urn:hopluu:admin:",
            "urn:hopluu:admin:a:b",
            "urn:hopluu:root:x",
            "urn:other:admin:x",
        ] {
            assert!(Identity::from_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names_are_dns_names() {
        assert_eq!(node_dns_name("hau-giang").unwrap(), "hau-giang.node.hopluu");
        assert_eq!(node_dns_name("hg_1").unwrap(), "hg_1.node.hopluu");
        assert!(node_dns_name("x-").is_err());
        assert!(node_dns_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18 11:06:40 UTC"
        );
    }
}
