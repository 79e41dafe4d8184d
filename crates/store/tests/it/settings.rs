//! What every connection of the store is set to, on each backend: SQLite
//! in WAL with full syncs (durability) and temporary data (statement
//! journals) in memory, PostgreSQL planning each statement
//! for the tables as they stand (a generic plan cached while a table was
//! small turns a card-number lookup into a scan of every member once the
//! table has grown: 1.6 s instead of 0.27 s for an import batch of 1,000
//! into a union of 40,000).

use anyhow::{Result, ensure};
use hopluu_store::{Backend, Store};
use sqlx::Row;

suite!(case_every_connection_is_set_for_its_backend,);

pub async fn case_every_connection_is_set_for_its_backend(store: Store) -> Result<()> {
    // More than one connection: each is set when it is made.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(store.pool().acquire().await?);
    }
    for conn in &mut held {
        match store.backend() {
            Backend::Postgres => {
                let mode: String = sqlx::query("SHOW plan_cache_mode")
                    .fetch_one(&mut **conn)
                    .await?
                    .get(0);
                ensure!(mode == "force_custom_plan", "plan_cache_mode = {mode}");
            }
            Backend::Sqlite => {
                let mode: String = sqlx::query("PRAGMA journal_mode")
                    .fetch_one(&mut **conn)
                    .await?
                    .get(0);
                ensure!(mode == "wal", "journal_mode = {mode}");
                let sync: i64 = sqlx::query("PRAGMA synchronous")
                    .fetch_one(&mut **conn)
                    .await?
                    .get(0);
                ensure!(sync == 2, "synchronous = {sync} (FULL is 2)");
                let temp: i64 = sqlx::query("PRAGMA temp_store")
                    .fetch_one(&mut **conn)
                    .await?
                    .get(0);
                ensure!(temp == 2, "temp_store = {temp} (MEMORY is 2)");
            }
        }
    }
    Ok(())
}
