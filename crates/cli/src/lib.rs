//! The library half of `hopluu-cli`: what other packages call without
//! running the `hopluu` binary.
//!
//! - [`import`]: reading roster spreadsheets (CSV, XLSX), used by
//!   `hopluu import members`.
//! - [`fuzzing`]: the bodies of the fuzz targets in `fuzz/`, which
//!   `hopluu-tests` also replays over the committed corpora.

pub mod fuzzing;
pub mod import;
