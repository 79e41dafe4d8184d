//! Certificates for nodes and clients on loopback: one CA in a directory
//! (`ca.pem`, `ca.key`), node certificates written next to it (each a
//! node's `[tls]`), and client channels with any identity ([`Caller`]) for
//! tests that attack a node or check what a role may do.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use hopluu_node::config::TlsSection;
use hopluu_node::tls::issue::{Ca, Issued, Subject};
use tonic::transport::{Channel, Endpoint};

/// Days the certificates made here are valid.
const DAYS: u32 = 365;

/// Who a client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An administrator's certificate.
    Admin(String),
    /// Office staff of `unit`.
    Staff { name: String, unit: String },
    /// A node's certificate (node `node_id` hosting `unit`).
    Node { node_id: String, unit: String },
    /// An admin certificate from a CA no node trusts.
    ForeignCa,
    /// TLS without a client certificate.
    NoCert,
    /// Plaintext HTTP/2: no TLS at all.
    Plaintext,
}

impl Caller {
    pub fn admin() -> Caller {
        Caller::Admin("admin".into())
    }
    pub fn staff(name: &str, unit: &str) -> Caller {
        Caller::Staff {
            name: name.into(),
            unit: unit.into(),
        }
    }
    pub fn node(node_id: &str, unit: &str) -> Caller {
        Caller::Node {
            node_id: node_id.into(),
            unit: unit.into(),
        }
    }
}

/// A CA and the certificates made from it, as files in one directory.
pub struct Pki {
    dir: PathBuf,
    ca: Ca,
    foreign: OnceLock<Ca>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A new CA, written to `dir/ca.pem` and `dir/ca.key` (which must not
    /// exist).
    pub fn create(dir: &Path, name: &str) -> Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = Ca::generate(name, DAYS)?;
        ca.write_new(dir)?;
        Ok(Pki {
            dir: dir.to_owned(),
            ca,
            foreign: OnceLock::new(),
        })
    }

    /// The CA an earlier [`Pki::create`] wrote to `dir` (for a node run in
    /// a process of its own).
    pub fn open(dir: &Path) -> Result<Pki> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let ca = Ca::from_pem(&read("ca.pem")?, &read("ca.key")?)?;
        Ok(Pki {
            dir: dir.to_owned(),
            ca,
            foreign: OnceLock::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// `ca.pem`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Node `node_id`'s `[tls]`: its certificate (for `unit`, reachable at
    /// 127.0.0.1 and localhost) and key in `dir/<node_id>.pem` and `.key`,
    /// made on first use and reused after (a restarted node keeps them).
    pub fn node_tls(&self, node_id: &str, unit: &str) -> Result<TlsSection> {
        let cert = self.dir.join(format!("{node_id}.pem"));
        let key = self.dir.join(format!("{node_id}.key"));
        if !cert.exists() {
            self.ca
                .issue(
                    &Subject::node(node_id, unit)
                        .reachable_at(&["localhost"], &[IpAddr::from([127, 0, 0, 1])]),
                    DAYS,
                )?
                .write_new(&self.dir, node_id)?;
        }
        Ok(TlsSection {
            cert,
            key,
            ca: vec![self.ca_file()],
        })
    }

    /// Writes `caller`'s certificate and key as `dir/<name>.pem` and `.key`
    /// (for the `hopluu` command line); returns their paths.
    pub fn write_client(&self, caller: &Caller) -> Result<(PathBuf, PathBuf)> {
        let issued = self
            .issue(caller)?
            .ok_or_else(|| anyhow!("{caller:?} has no certificate"))?;
        let stem = match caller {
            Caller::Admin(name) | Caller::Staff { name, .. } => name.as_str(),
            Caller::Node { node_id, .. } => node_id.as_str(),
            _ => "foreign",
        };
        Ok(issued.write_new(&self.dir, stem)?)
    }

    fn issue(&self, caller: &Caller) -> Result<Option<Issued>> {
        Ok(match caller {
            Caller::Admin(name) => Some(self.ca.issue(&Subject::admin(name), DAYS)?),
            Caller::Staff { name, unit } => Some(self.ca.issue(&Subject::staff(name, unit), DAYS)?),
            Caller::Node { node_id, unit } => {
                Some(self.ca.issue(&Subject::node(node_id, unit), DAYS)?)
            }
            Caller::ForeignCa => {
                let foreign = self
                    .foreign
                    .get_or_init(|| Ca::generate("someone else's CA", DAYS).expect("a CA"));
                Some(foreign.issue(&Subject::admin("intruder"), DAYS)?)
            }
            Caller::NoCert | Caller::Plaintext => None,
        })
    }

    /// An endpoint to the node at `addr` as `caller` (not connected yet);
    /// the node's certificate must name 127.0.0.1 (as [`Pki::node_tls`]
    /// makes it).
    pub fn endpoint(&self, addr: SocketAddr, caller: &Caller) -> Result<Endpoint> {
        if *caller == Caller::Plaintext {
            return Ok(Channel::from_shared(format!("http://{addr}"))?
                .connect_timeout(Duration::from_secs(10)));
        }
        let issued = self.issue(caller)?;
        let tls = hopluu_node::tls::client_config(
            self.ca.cert_pem(),
            issued
                .as_ref()
                .map(|i| (i.cert_pem.as_str(), i.key_pem.as_str())),
        );
        Ok(Channel::from_shared(format!("https://{addr}"))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(10)))
    }

    /// A channel to the node at `addr` as `caller`, connected. A refused
    /// certificate shows here or at the first call.
    pub async fn channel(&self, addr: SocketAddr, caller: &Caller) -> Result<Channel> {
        self.endpoint(addr, caller)?
            .connect()
            .await
            .map_err(|e| anyhow!(hopluu_node::tls::error_chain(&e)))
            .with_context(|| format!("connecting to {addr} as {caller:?}"))
    }
}
