//! A hopluu node: its configuration, its application layer (every operation
//! checked against the domain rules, the unit tree and authority), the tonic
//! gRPC services that expose it, and the server that runs them with health
//! and reflection.
//!
//! # Layout
//! - [`config`]: the typed configuration tree.
//! - [`app`]: [`app::App`], every operation a request can make, one module
//!   per domain, protobuf-free; the one door to the store.
//! - [`check`]: the convergence check (`hopluu check`): this node's heads
//!   against what a peer answers for itself, and the answering side.
//! - [`replication`]: [`replication::Replication`]: the dialer, the
//!   accepted sessions (from `hopluu-sync`) and each edge's status.
//! - [`edge`]: what an edge reports (its live status, reports from below).
//! - [`grpc`]: the tonic services, one module per service: the role check,
//!   conversion, one call; nothing else.
//! - [`convert`]: every protobuf <-> domain conversion.
//! - [`error`]: [`NodeError`] by layer, and [`error::to_status`], the only
//!   error -> status mapping.
//! - [`metrics`]: the Prometheus text endpoint (`[metrics]`), read at
//!   scrape time from replication, the store and the request limiter.
//! - [`server`]: [`server::run`] with an injected listener and shutdown signal;
//!   mutual TLS, or plaintext only when told to.
//! - [`tls`]: identities carried in certificates ([`Identity`]), the node's
//!   certificate and trusted CAs, how connections are secured
//!   ([`tls::Security`]), and issuing certificates (`hopluu cert`).
//!
//! Modules depend one way: `grpc` -> `replication`, `app` -> `check`;
//! `convert` and `edge` depend on no service; nothing imports `server`.

pub mod app;
pub mod check;
pub mod config;
pub mod convert;
pub mod edge;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod replication;
pub mod server;
pub mod tls;

pub use tls::Identity;

use thiserror::Error;

/// Every failure a node meets, by layer, kept apart all the way to the one
/// mapping to gRPC statuses ([`error::to_status`]): a domain refusal is
/// the caller's to fix, a storage failure the operator's, a denial the
/// caller's certificate's.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The domain refused the request: bad input, a record missing or
    /// already there, a state that forbids it, no authority over the
    /// target. The message names the field.
    #[error(transparent)]
    Refused(hopluu_model::ModelError),
    /// The storage failed: the database, a migration, a corrupt document.
    /// Never holds `StoreError::Model`: [`From<StoreError>`] turns that
    /// into [`NodeError::Refused`].
    #[error(transparent)]
    Storage(hopluu_store::StoreError),
    /// The caller's role (from its certificate) does not allow the request
    /// (`grpc::auth`); the message names the operation and the units.
    #[error("{0}")]
    Denied(String),
    /// The replication gate failed a quarantine decision for a reason that
    /// is not the administrator's to fix.
    #[error("replication gate: {0}")]
    Gate(hopluu_sync::SyncError),
    /// A convergence check could not be made (`hopluu check`).
    #[error(transparent)]
    Check(#[from] check::CheckError),
    /// A task the operation ran on failed (a bug): details for the log.
    #[error("internal: {0}")]
    Internal(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<hopluu_store::StoreError> for NodeError {
    /// A refusal the store met while reading the domain stays a refusal.
    fn from(e: hopluu_store::StoreError) -> Self {
        match e {
            hopluu_store::StoreError::Model(m) => NodeError::Refused(m),
            other => NodeError::Storage(other),
        }
    }
}

impl From<hopluu_model::ModelError> for NodeError {
    fn from(e: hopluu_model::ModelError) -> Self {
        NodeError::Refused(e)
    }
}
