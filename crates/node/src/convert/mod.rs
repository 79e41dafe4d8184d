//! Every conversion between protobuf messages and the node's own types:
//! the one place both kinds of types meet. The gRPC services and the
//! replication transport call these; `app`, `check` and the crates below
//! never see a protobuf type.
//!
//! # Layout
//! - [`records`]: units, members, campaigns, emulation, awards, reports,
//!   and the requests that carry them.
//! - [`reorg`]: reorganisation plans, impacts and decisions.
//! - [`admin`]: the `AdminService`'s messages.
//! - [`frames`]: sync frames, edge reports and scope heads.

pub mod admin;
pub mod frames;
pub mod records;
pub mod reorg;
