//! Support for hopluu's end-to-end tests: a fault-injecting TCP proxy and
//! helpers to run several real nodes on loopback.
//!
//! # Layout
//! - [`proxy`]: a TCP proxy the test controls (cut, delay, drop mid-message, reset).
//! - [`federation`]: several real nodes in one process, each child dialling
//!   its upstreams through its own proxy; also what `hopluu demo` and
//!   `hopluu bench sync` run.
//! - [`pki`]: a CA and certificates as files, and client channels with
//!   any identity ([`pki::Caller`]).
//! - [`rogue`]: a hostile child on a parent's sync stream, speaking the
//!   frames by hand (forged changes, lying hellos, replays).

pub mod federation;
pub mod pki;
pub mod proxy;
pub mod rogue;
