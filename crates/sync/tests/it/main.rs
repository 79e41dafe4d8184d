//! The replication engine's integration tests, over real stores (SQLite
//! files in a temporary directory) and no network: the harness moves the
//! frames between [`hopluu_sync::Session`]s itself.
//!
//! - [`fixtures`]: creating units, members and campaigns on a store the way
//!   the node does, and reading back what the tests choose from.
//! - [`session`]: plain two-node tests of the protocol, one property each.
//! - [`sim`]: a deterministic, seeded simulation of a federation of eight
//!   nodes under dropped, duplicated and reordered frames, cuts, restarts
//!   and timeouts, checked for convergence, scope and lost writes.

mod drive;
mod fixtures;
mod gate;
mod reports;
mod session;
mod sim;
