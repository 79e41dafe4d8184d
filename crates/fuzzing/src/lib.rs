//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer): every
//! decoder that meets bytes from outside the node. Each target in
//! `fuzz/fuzz_targets/` is one line calling a function here, and
//! `hopluu-tests` replays every committed corpus and regression input
//! through the same functions in the normal test run, so a crash found once
//! stays fixed.
//!
//! A body returns normally for any input; it panics only on a bug: a panic
//! in the code under test, or a broken round-trip or invariant asserted
//! here.
//!
//! - [`sync_frame`]: a replication frame off the wire (protobuf
//!   `hopluu.v1.SyncFrame`), converted as `hopluu_node::replication` does.
//! - [`automerge_payload`]: the automerge bytes a frame carries, delivered
//!   to a real sync session (`hopluu_sync::Session`, its receive gate and
//!   a real store) as a child's batch; what the node stored is then loaded
//!   back, compacted and read through the model.
//! - [`config`]: a node's TOML configuration, parsed and validated.
//! - [`import`]: a roster spreadsheet (CSV or XLSX) for `hopluu import`.
//!
//! This crate depends on every crate it fuzzes, and nothing shipped
//! depends on it: `fuzz/` (cargo-fuzz) and `hopluu-tests` (the replay) are
//! its only users.
//!
//! # Layout
//! One module per target (`sync_frame`, `automerge_payload`, `config`,
//! `import`), and `fixture`: the roster document and node identities the
//! `automerge_payload` target and the corpus seeds share. Every public item
//! is re-exported here.

mod automerge_payload;
mod config;
mod fixture;
mod import;
mod sync_frame;

pub use automerge_payload::{
    Delivery, RECEIVER_NODE, automerge_payload, deliver_automerge_payload, delivered_docs, refused,
};
pub use config::config;
pub use fixture::{
    FIXTURE_NODE, FIXTURE_TODAY, FIXTURE_UNIT, Fixture, fixture, fixture_author, fixture_members,
    fixture_today, fixture_unit, node_author, write_fixture_roster,
};
pub use import::import;
pub use sync_frame::sync_frame;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/` file and its
/// `fuzz/corpus/` and `fuzz/regressions/` directories.
pub const TARGETS: [(&str, Target); 4] = [
    ("sync_frame", sync_frame),
    ("automerge_payload", automerge_payload),
    ("config", config),
    ("import", import),
];

/// The body of the target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}
