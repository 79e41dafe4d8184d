//! The tonic services, one module per service. Each method checks its
//! caller's role ([`auth`]), converts its request ([`crate::convert`]),
//! calls one [`App`] operation (or, for replication and peers,
//! [`crate::replication::Replication`]) and converts the result. Errors
//! travel as [`crate::NodeError`] and become statuses in
//! [`crate::error::to_status`] only. No module here reaches the store.
//!
//! # Layout
//! - [`auth`]: who may call what (administrators, staff of a unit, nodes),
//!   and how often (each caller's budget of requests).
//! - [`units`], [`members`], [`campaigns`], [`emulation`], [`awards`],
//!   [`reports`], [`reorg`], [`node`]: the public services, on [`Services`].
//! - [`admin`]: the `AdminService`; [`compact`], its compaction stream.
//! - [`replication`]: the `ReplicationService` a parent serves its children.

pub mod admin;
pub mod auth;
pub mod awards;
pub mod campaigns;
pub mod compact;
pub mod emulation;
pub mod members;
pub mod node;
pub mod reflection;
pub mod reorg;
pub mod replication;
pub mod reports;
pub mod units;

use std::sync::Arc;

use tonic::{Response, Status};

use crate::app::App;

type R<T> = Result<Response<T>, Status>;

/// Every public service, sharing one [`App`].
#[derive(Clone, Debug)]
pub struct Services {
    pub app: Arc<App>,
}
