//! Integration tests of a hopluu node over gRPC. Every test starts a real
//! node in-process ([`harness::Node`]): SQLite in a fresh temporary
//! directory, a fixed clock (22 November 2026), roster buckets of three
//! members so that rosters split, the server on a loopback port over
//! mutual TLS (a CA per test process), and generated tonic clients
//! presenting an administrator's certificate. Each test shuts its node
//! down and waits for the server to close the store.
//!
//! Refusals are checked the same way everywhere: the status code, a message
//! that starts with the offending field (`birth_date: …`), and, for writes,
//! that the node's change feed and document count did not move.
//!
//! # Layout
//! - [`harness`]: starting and stopping nodes, the usual tree, fixtures,
//!   the `expect_*` checks; [`sync_stream`], sync streams opened by hand.
//! - [`units`]: create, rename, move, close, list, kinds.
//! - [`members`]: add, get, update, transfer, end.
//! - [`members_listing`]: list, find, buckets, concurrent adds.
//! - [`imports`]: ImportMembers outcomes, idempotence, buckets.
//! - [`campaigns`]: launch, plans, coverage, close.
//! - [`emulation`]: registration, initiatives and their review, works.
//! - [`awards`]: catalogue, proposals, decisions, revocation.
//! - [`reorg`]: reorganisation decisions: every step kind, refusals that
//!   write nothing, dry run against application, past effective dates;
//!   [`reorg_authority`]: a number applied once, staff, and the node that
//!   can apply a decision.
//! - [`reports`]: members, initiatives (percent and rank), awards, works.
//! - [`health`]: node info, gRPC health, reflection.
//! - [`admin`]: the admin service: status (certificate expiry), quarantine
//!   list, show, release, discard.
//! - [`app_ops`]: the same operations as `App` methods, without gRPC.
//! - [`quarantine_bulk`]: held changes selected by filter (maker, reason,
//!   document), released in dependency order or discarded, with counts, a
//!   dry run, and bad filters refused, as `App` methods.
//! - [`held_by_peer`]: a change the parent holds counts as not delivered
//!   at the child (`peers`, `tree`), and the parent's row says it holds
//!   it, until released or discarded.
//! - [`architecture`]: the house's rules over the source tree: no gRPC
//!   module reaches the store, time only from the injected clock, node
//!   modules depend one way, no source file outgrows a reader.
//! - [`roles`]: administrators, staff of a unit and node certificates on the
//!   client API.
//! - [`personal_data`]: no personal data above `private_depth`;
//!   de-identification on request (reads, projections, documents,
//!   replication).
//! - [`personal_logs`]: no name, CCCD, ethnicity, religion or birth date
//!   in logs (captured at TRACE) or error messages.
//! - [`replication`]: a national, a province and a district node syncing
//!   over real gRPC streams: upward, downward, relay, restart, refusals.
//! - [`check`]: the convergence check between a national node and a
//!   province: in step from both ends, then every kind of difference with
//!   the province's dialer stopped; who may check and who is answered;
//!   private rosters listed only to nodes that may hold them.
//! - [`attacks`]: hostile children with valid certificates: a flood of
//!   hellos, frames that say nothing, a frame over the size limit.
//! - [`limits`]: the per-caller request budget (`[limits]`): refusal with
//!   `RESOURCE_EXHAUSTED` and a retry time, other callers unaffected,
//!   refill, configuration checks.
//! - [`metrics`]: the Prometheus endpoint scraped over HTTP and parsed:
//!   families, per-peer series while a province syncs, applied changes,
//!   histogram consistency; `[metrics]` checks; JSON logs with the
//!   `sync_session` and `batch` spans.
//! - [`shape`]: a faulty child's misshapen values over real TLS, held
//!   with the field and the reason while the link converges.
//! - [`tls`]: mutual TLS: clients without a trusted certificate refused,
//!   CA rotation, replication identities (`identity`, `unknown-peer`), the
//!   dialer checking its upstream, `--insecure-plaintext`, `[tls]` checks.

mod admin;
mod app_ops;
mod architecture;
mod attacks;
mod awards;
mod campaigns;
mod check;
mod emulation;
mod handover;
mod handover_replay;
mod harness;
mod health;
mod held_by_peer;
mod imports;
mod limits;
mod members;
mod members_listing;
mod metrics;
mod personal_data;
mod personal_logs;
mod quarantine_bulk;
mod reflection;
mod reorg;
mod reorg_authority;
mod reorg_replication;
mod reorg_reports;
mod replication;
mod reports;
mod roles;
mod shape;
mod sync_stream;
mod tls;
mod units;
