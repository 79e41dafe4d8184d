//! `hopluu serve`: run a node from a `node.toml`, or the embedded default
//! (a national node on SQLite under `--data-dir`), until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use hopluu_node::config::Config;

#[derive(Args, Debug)]
pub struct ServeArgs {
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

pub async fn run(args: ServeArgs, insecure_plaintext: bool) -> anyhow::Result<()> {
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
