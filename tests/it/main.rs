//! End-to-end tests: real nodes on loopback, faults injected, convergence checked.
//!
//! Every test runs real nodes (a store, the gRPC server, the replication
//! dialer and service) and talks to them through their gRPC API only; the
//! links between nodes go through [`hopluu_devcluster::proxy::FaultProxy`]s that
//! the tests cut, slow down, truncate and reset. Convergence is polled
//! ([`hopluu_devcluster::federation::Federation::until`]) with generous limits;
//! nothing asserts on elapsed time.
//!
//! # Layout
//! - [`proxy`]: the fault-injecting proxy itself, against an echo server.
//! - [`attacks`]: a rogue child with a valid certificate against real
//!   nodes: malformed frames and automerge, forged makers and identities,
//!   replays, a flood of hellos, a slowloris, writes outside its subtree
//!   (quarantined at the first hop, and at the national node when the
//!   relay is forged), private rosters kept at their level.
//! - [`check`]: the shared convergence checks (identical heads and
//!   projection rows wherever a document should be, nothing held out of
//!   scope, every acknowledged write present) and the ledger of
//!   acknowledged writes they check against.
//! - [`tree`]: seven nodes (national on PostgreSQL, two provinces, four
//!   districts), writes everywhere under cut / delayed / truncated / reset
//!   links, then healed and checked.
//! - [`crash`]: a district, then a province (the relay), as separate OS
//!   processes killed with SIGKILL in the middle of a sync and restarted.
//! - [`fuzz_replay`]: every input under `fuzz/corpus/` and
//!   `fuzz/regressions/` through its fuzz target's body (no crash), and the
//!   generator of the corpora's seeds.
//! - [`catchup`]: a district offline for 50,000 member changes catches up in
//!   bounded memory (measured in a process of its own).
//!
//! Set `RUST_LOG` (e.g. `RUST_LOG=hopluu_sync=debug,info`) to see the nodes'
//! logs; `HOPLUU_E2E_SEED` replays the random choices of a failed run.

mod attacks;
mod catchup;
mod check;
mod crash;
mod fuzz_replay;
mod handover;
mod proxy;
mod tree;
