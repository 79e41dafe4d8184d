//! The commands, one module per command family; `main.rs` parses the
//! command line and calls into them.

pub mod admin;
pub mod awards;
pub mod bench;
pub mod bench_common;
pub mod bench_reorg;
pub mod bench_sync;
pub mod bench_writes;
pub mod campaigns;
pub mod cert;
pub mod conflicts;
pub mod demo;
pub mod docs;
pub mod edges;
pub mod emulation;
pub mod import;
pub mod members;
pub mod reorg;
pub mod reports;
pub mod serve;
pub mod units;
