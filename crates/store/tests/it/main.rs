//! The store's conformance suite. Every case is an `async fn case_x(store:
//! Store) -> Result<()>` and runs on both backends (garage's
//! `test_suite(db)`): [`suite!`] generates a `sqlite::case_x` and a
//! `postgres::case_x` test for each, so `cargo test -p hopluu-store sqlite`
//! or `… postgres` runs one backend.
//!
//! - SQLite: a file in a fresh temporary directory.
//! - PostgreSQL: a fresh database `hopluu_t_<hex>` on the server named by
//!   `HOPLUU_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`),
//!   dropped at the end, also when the case panics. An unreachable server
//!   fails the test: this suite never skips a backend.
//!
//! After every case the runner checks, on the case's own store, that every
//! projection row equals what the stored documents imply, that the cached
//! documents equal the stored ones ([`check::consistent`]) and that the
//! database's integrity check reports nothing.
//!
//! # Layout
//! - [`harness`]: backends, the runner, fixtures and write helpers.
//! - [`check`]: documents vs projections, cache vs storage.
//! - [`adopt`]: a whole document taken as it arrived: stored as its
//!   bytes, projected from what checking it read.
//! - [`decisions`]: reorganisation decisions listed and found; a roster
//!   ceased in one change; the counts a decision's dry run reads.
//! - [`docs`]: every document kind round-trips, warm and cold.
//! - [`feed`]: the change feed, group commit, dropped transactions.
//! - [`compaction`]: chunks folded into snapshots keep the content.
//! - [`cache`]: the document cache never serves or stores a stale document.
//! - [`projections`]: a scripted history, checked after every step.
//! - [`rows`]: each document kind's projection rows, column by column.
//! - [`units`]: the closure table through create, move, close and
//!   out-of-order arrival.
//! - [`members`]: roster buckets, paging and search.
//! - [`reports`]: members, initiatives, awards and works reports, today
//!   and as of other dates.
//! - [`peers`]: the feed as replication reads it, peer state, rescoping.
//! - [`clock`]: every time the store writes comes from its clock.

/// Generates the `sqlite` and `postgres` test of every named case of the
/// calling module.
macro_rules! suite {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    crate::harness::run(crate::harness::Kind::Sqlite, super::$case).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    crate::harness::run(crate::harness::Kind::Postgres, super::$case).await
                }
            )+
        }
    };
}

mod adopt;
mod cache;
mod check;
mod clock;
mod commit;
mod compaction;
mod conflicts;
mod decisions;
mod docs;
mod docs_admin;
mod feed;
mod harness;
mod members;
mod peers;
mod projections;
mod quarantine;
mod receipts;
mod reports;
mod rows;
mod settings;
mod units;
