//! A development cluster: several real hopluu nodes on loopback in one
//! process, a fault-injecting TCP proxy on every link, and the certificates
//! they use. Product tooling, not test code: `hopluu demo`, `hopluu bench`
//! and `hopluu bench-sync` run on it, and so do the end-to-end tests
//! (`hopluu-tests`, `crates/cli/tests/`).
//!
//! # Layout
//! - [`proxy`]: a TCP proxy the caller controls (cut, delay, drop mid-message, reset).
//! - [`federation`]: several real nodes in one process, each child dialling
//!   its upstreams through its own proxy.
//! - [`pki`]: a CA and certificates as files, and client channels with
//!   any identity ([`pki::Caller`]).

pub mod federation;
pub mod pki;
pub mod proxy;
