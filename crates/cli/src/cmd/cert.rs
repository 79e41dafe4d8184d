//! `hopluu cert`: a certificate authority and the certificates nodes and
//! people present (`hopluu_node::tls`).
//!
//! - `ca --out DIR`: `DIR/ca.pem` and `DIR/ca.key`.
//! - `node --ca DIR --node-id ID --unit UNIT --out DIR`: `DIR/ID.pem`,
//!   `DIR/ID.key`, for the node's `[tls]`.
//! - `admin --ca DIR --name NAME --out DIR`, `staff … --unit UNIT`:
//!   `DIR/NAME.pem`, `DIR/NAME.key`, for the command line's `--cert` and
//!   `--key`.
//!
//! Keys are written readable by their owner only (0600). Nothing existing
//! is ever overwritten.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use hopluu_node::tls::issue::{Ca, Issued, Subject};

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// Create a certificate authority: DIR/ca.pem (give it to every node
    /// and client) and DIR/ca.key (keep it offline).
    Ca {
        /// The directory to write ca.pem and ca.key to.
        #[arg(long)]
        out: PathBuf,
        /// The CA's name, in its subject.
        #[arg(long, default_value = "hopluu CA")]
        name: String,
        /// Days the CA is valid.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// A node's certificate, signed by --ca (its CA directory): names the
    /// node and its unit, and <node-id>.node.hopluu, which its children
    /// check when they dial it.
    Node {
        #[arg(long)]
        node_id: String,
        /// The unit the node hosts ([node] unit).
        #[arg(long)]
        unit: String,
        /// A DNS name clients reach the node by (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// An IP address clients reach the node by (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// The directory to write <node-id>.pem and <node-id>.key to.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// An administrator's client certificate, signed by --ca.
    Admin {
        /// Account name (lowercase letters, digits, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// The directory to write <name>.pem and <name>.key to.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// An office staff member's client certificate for a unit, signed by
    /// --ca.
    Staff {
        /// Account name (lowercase letters, digits, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// The unit the staff member works for.
        #[arg(long)]
        unit: String,
        /// The directory to write <name>.pem and <name>.key to.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

/// Runs a `hopluu cert` command; `ca` is the global `--ca`.
pub fn run(cmd: CertCmd, ca: &[PathBuf]) -> Result<()> {
    match cmd {
        CertCmd::Ca { out, name, days } => {
            let made = Ca::generate(&name, days).map_err(|e| flag_error(e.to_string()))?;
            prepare_out(&out, &["ca.pem", "ca.key"])?;
            let (cert, key) = made
                .write_new(&out)
                .with_context(|| format!("--out {}", out.display()))?;
            let info = made.info();
            println!(
                "wrote {} (CA certificate: give it to every node and client)",
                cert.display()
            );
            println!(
                "wrote {} (its key, mode 0600: keep it offline)",
                key.display()
            );
            println!("subject: {}; expires {}", info.subject, info.expires());
            Ok(())
        }
        CertCmd::Node {
            node_id,
            unit,
            dns,
            ips,
            out,
            days,
        } => {
            let subject = Subject::Node {
                node_id: node_id.clone(),
                unit: unit.clone(),
                dns,
                ips,
            };
            let issued = issue(ca, &subject, days)?;
            let (cert, key) = write(&out, &subject, &issued)?;
            let ca_file = ca_cert_file(ca)?;
            println!(
                "in the node's configuration:\n\n[tls]\ncert = {:?}\nkey = {:?}\nca = [{:?}]",
                absolute(&cert),
                absolute(&key),
                absolute(&ca_file)
            );
            println!(
                "\nand at its parent, so that it may sync:\n\n[[replication.children]]\nnode_id = {node_id:?}\nunit = {unit:?}"
            );
            Ok(())
        }
        CertCmd::Admin { name, out, days } => {
            let subject = Subject::admin(&name);
            let issued = issue(ca, &subject, days)?;
            let (cert, key) = write(&out, &subject, &issued)?;
            client_hint(ca, &cert, &key)
        }
        CertCmd::Staff {
            name,
            unit,
            out,
            days,
        } => {
            let subject = Subject::staff(&name, &unit);
            let issued = issue(ca, &subject, days)?;
            let (cert, key) = write(&out, &subject, &issued)?;
            client_hint(ca, &cert, &key)
        }
    }
}

/// Errors of the certificate's fields already name them (`name: …`,
/// `node_id: …`); here they are flags (`--name: …`, `--node-id: …`).
fn flag_error(message: String) -> anyhow::Error {
    match message.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => {
            anyhow!("--{}: {rest}", field.replace('_', "-"))
        }
        _ => anyhow!(message),
    }
}

/// The CA certificate and key files `--ca` names: a directory holding
/// `ca.pem` and `ca.key`, or a certificate file with its key next to it
/// (`X.pem` and `X.key`).
fn ca_files(ca: &[PathBuf]) -> Result<(PathBuf, PathBuf)> {
    let dir = match ca {
        [one] => one,
        [] => bail!("--ca: name the CA that signs: the directory `hopluu cert ca --out DIR` wrote"),
        many => bail!(
            "--ca: one CA signs, got {} (HOPLUU_CA may be set: give --ca explicitly)",
            many.len()
        ),
    };
    if dir.is_dir() {
        Ok((dir.join("ca.pem"), dir.join("ca.key")))
    } else {
        Ok((dir.clone(), dir.with_extension("key")))
    }
}

fn ca_cert_file(ca: &[PathBuf]) -> Result<PathBuf> {
    Ok(ca_files(ca)?.0)
}

fn issue(ca: &[PathBuf], subject: &Subject, days: u32) -> Result<Issued> {
    let (cert, key) = ca_files(ca)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| anyhow!("--ca: cannot read {}: {e}", p.display()))
    };
    let ca = Ca::from_pem(&read(&cert)?, &read(&key)?)
        .map_err(|e| anyhow!("--ca: {} and {}: {e}", cert.display(), key.display()))?;
    ca.issue(subject, days)
        .map_err(|e| flag_error(e.to_string()))
}

/// Creates `out` if needed and refuses if any of `files` exists there.
fn prepare_out(out: &Path, files: &[&str]) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out: {} is not a directory", out.display());
    }
    for f in files {
        let p = out.join(f);
        if p.exists() {
            bail!(
                "--out: {} already exists: refusing to overwrite it (move it away or choose another --out)",
                p.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("--out: creating {}", out.display()))
}

fn write(out: &Path, subject: &Subject, issued: &Issued) -> Result<(PathBuf, PathBuf)> {
    let stem = subject.file_stem();
    prepare_out(out, &[&format!("{stem}.pem"), &format!("{stem}.key")])?;
    let (cert, key) = issued
        .write_new(out, stem)
        .map_err(|e| anyhow!("--out: {e}"))?;
    let info = issued.info();
    println!(
        "wrote {} and {} (key mode 0600)",
        cert.display(),
        key.display()
    );
    if let Some(id) = &info.identity {
        println!("identity: {id} ({})", id.uri().unwrap_or_default());
    }
    if !info.dns_names.is_empty() || !info.ip_addresses.is_empty() {
        let names: Vec<String> = info
            .dns_names
            .iter()
            .cloned()
            .chain(info.ip_addresses.iter().map(ToString::to_string))
            .collect();
        println!("valid for: {}", names.join(", "));
    }
    println!("expires {}", info.expires());
    Ok((cert, key))
}

fn client_hint(ca: &[PathBuf], cert: &Path, key: &Path) -> Result<()> {
    println!(
        "\nuse it with:\n  export HOPLUU_CA={} HOPLUU_CERT={} HOPLUU_KEY={}",
        absolute(&ca_cert_file(ca)?).display(),
        absolute(cert).display(),
        absolute(key).display()
    );
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}
