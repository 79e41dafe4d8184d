//! How the command line reaches a node: the `--ca`, `--cert`, `--key`
//! and `--insecure-plaintext` flags every command shares, the node's
//! address, and the gRPC channel made from them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use tonic::transport::Channel;

/// How the command line reaches a node.
#[derive(Args, Debug, Clone)]
pub struct ClientTls {
    /// A CA certificate (PEM) to trust the node's certificate by;
    /// repeatable, or comma-separated in HOPLUU_CA. For `hopluu cert`: the
    /// CA that signs (a directory with ca.pem and ca.key, or ca.pem).
    #[arg(long = "ca", global = true, env = "HOPLUU_CA", value_delimiter = ',')]
    pub ca: Vec<PathBuf>,
    /// This client's certificate (PEM; `hopluu cert admin` or `staff`).
    #[arg(long, global = true, env = "HOPLUU_CERT")]
    pub cert: Option<PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, global = true, env = "HOPLUU_KEY")]
    pub key: Option<PathBuf>,
    /// Plaintext gRPC without TLS: `hopluu serve --insecure-plaintext`
    /// serves it, and the other commands talk it. For development only.
    #[arg(long, global = true)]
    pub insecure_plaintext: bool,
}

/// A node to talk to and how.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub tls: ClientTls,
}

impl Target {
    /// `--addr`, or this machine's default port in the scheme the TLS
    /// flags call for.
    pub fn new(addr: Option<String>, tls: &ClientTls) -> Target {
        Target {
            addr: addr.unwrap_or_else(|| {
                let scheme = if tls.insecure_plaintext {
                    "http"
                } else {
                    "https"
                };
                format!("{scheme}://127.0.0.1:{}", hopluu_node::config::DEFAULT_PORT)
            }),
            tls: tls.clone(),
        }
    }
}

/// A channel to the node: mutual TLS for `https://`, plaintext for
/// `http://` (only with --insecure-plaintext).
pub async fn channel(target: &Target) -> anyhow::Result<Channel> {
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
