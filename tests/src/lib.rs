//! Test-only support for hopluu's end-to-end tests, and the tests themselves
//! (`it/`). This package is only ever a dev-dependency: nothing shipped
//! links it. The nodes, proxies and certificates the tests run on are
//! product tooling and live in `hopluu-devcluster`.
//!
//! # Layout
//! - [`rogue`]: a hostile child on a parent's sync stream, speaking the
//!   frames by hand (forged changes, lying hellos, replays).
//! - `it/`: the end-to-end tests (see `it/main.rs`), on
//!   `hopluu_devcluster`'s federation and fault proxy, and the replay of
//!   the committed fuzz inputs through `hopluu_fuzzing`.

pub mod rogue;
