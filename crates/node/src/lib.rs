//! A hopluu node: its configuration, its application layer (every operation
//! checked against the domain rules, the unit tree and authority), the tonic
//! gRPC services that expose it, and the server that runs them with health
//! and reflection.
//!
//! # Layout
//! - [`config`]: the typed configuration tree.
//! - [`app`]: [`app::App`], the operations, protobuf-free.
//! - [`check`]: the convergence check (`hopluu check`): this node's heads
//!   against what a peer answers for itself, and the answering side.
//! - [`grpc`]: the tonic services: conversions at the edge, nothing else.
//! - [`error`]: [`error::to_status`], the only error -> status mapping.
//! - [`metrics`]: the Prometheus text endpoint (`[metrics]`), read at
//!   scrape time from replication, the store and the request limiter.
//! - [`replication`]: the replication service and the dialer (sessions from
//!   `hopluu-sync` over gRPC), with each edge's status.
//! - [`server`]: [`server::run`] with an injected listener and shutdown signal;
//!   mutual TLS, or plaintext only when told to.
//! - [`tls`]: identities carried in certificates ([`Identity`]), the node's
//!   certificate and trusted CAs, and issuing certificates (`hopluu cert`).

pub mod app;
pub mod check;
pub mod config;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod replication;
pub mod server;
pub mod tls;

pub use tls::Identity;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] hopluu_store::StoreError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The caller's role (from its certificate) does not allow the request
    /// (`grpc::auth`); the message names the operation and the units.
    #[error("{0}")]
    Denied(String),
    /// A convergence check could not be made (`hopluu check`).
    #[error(transparent)]
    Check(#[from] check::CheckError),
}

impl From<hopluu_model::ModelError> for NodeError {
    fn from(e: hopluu_model::ModelError) -> Self {
        NodeError::Store(e.into())
    }
}
