//! The replication engine's integration tests, over real stores (SQLite
//! files in a temporary directory) and no network: the harness moves the
//! frames between [`hopluu_sync::Session`]s itself.
//!
//! - [`fixtures`]: creating units, members and campaigns on a store the way
//!   the node does, and reading back what the tests choose from.
//! - [`handmade`]: one node of a fixed tree and hand-made hellos, changes
//!   and batches, for [`gate`], [`reports`] and [`drive`].
//! - [`gate`]: the receiver's gate, fed what a compromised or
//!   misconfigured node could send.
//! - [`handover`]: the old host's side of a handover on one store, and a
//!   node's own record sent ahead of its feed.
//! - [`held`]: what a receiver holds of a sender's changes, told in its
//!   acks and notices, and counted by the sender.
//! - [`reports`]: edge reports and delivery receipts between a child and
//!   its parent.
//! - [`drive`]: the driver's timeouts over channels.
//! - [`two_nodes`]: a parent and a child with a reliable, recording wire,
//!   for [`session`].
//! - [`session`]: plain two-node tests of the protocol, one property each.
//! - [`sim`]: a deterministic, seeded simulation of a federation of eight
//!   nodes under dropped, duplicated and reordered frames, cuts, restarts
//!   and timeouts, checked for convergence, scope and lost writes.

mod drive;
mod fixtures;
mod gate;
mod handmade;
mod handover;
mod held;
mod reports;
mod session;
mod shape;
mod sim;
mod two_nodes;
