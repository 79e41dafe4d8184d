//! Support for hopluu's end-to-end tests: a fault-injecting TCP proxy and
//! helpers to run several real nodes on loopback.
//!
//! # Layout
//! - [`proxy`]: a TCP proxy the test controls (cut, delay, drop mid-message, reset).

pub mod proxy;
