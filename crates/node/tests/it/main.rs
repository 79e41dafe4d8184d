//! Integration tests of a hopluu node over gRPC. Every test starts a real
//! node in-process ([`harness::Node`]): SQLite in a fresh temporary
//! directory, a fixed clock (22 November 2026), roster buckets of three
//! members so that rosters split, the server on a loopback port, and
//! generated tonic clients. Each test shuts its node down and waits for the
//! server to close the store.
//!
//! Refusals are checked the same way everywhere: the status code, a message
//! that starts with the offending field (`birth_date: …`), and, for writes,
//! that the node's change feed and document count did not move.
//!
//! # Layout
//! - [`harness`]: starting and stopping nodes, the usual tree, fixtures,
//!   the `expect_*` checks.
//! - [`units`]: create, rename, move, close, list, kinds.
//! - [`members`]: add, get, update, transfer, end, list, find, buckets.
//! - [`imports`]: ImportMembers outcomes, idempotence, buckets.
//! - [`campaigns`]: launch, plans, coverage, close.
//! - [`emulation`]: registration, initiatives and their review, works.
//! - [`awards`]: catalogue, proposals, decisions, revocation.
//! - [`reports`]: members, initiatives (percent and rank), awards, works.
//! - [`health`]: node info, gRPC health, reflection.
//! - [`replication`]: a national, a province and a district node syncing
//!   over real gRPC streams: upward, downward, relay, restart, refusals.

mod awards;
mod campaigns;
mod emulation;
mod harness;
mod health;
mod imports;
mod members;
mod replication;
mod reports;
mod units;
