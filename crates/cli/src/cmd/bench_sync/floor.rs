//! The floor of the initial aggregation, measured in the same run: the
//! documents the national node received, decoded, checked against their
//! shape, projected and stored by this process into a fresh store on the
//! national node's backend, with no network, no session and no gate
//! bookkeeping, many documents a commit. The aggregation's wall time over
//! this floor says what replication itself costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use automerge::Automerge;
use hopluu_model::{DocId, DocKind, SystemClock, shape};
use hopluu_store::{Store, StoreOptions};

/// Documents per commit (as a session's batch may hold).
const PER_COMMIT: usize = 64;

/// Stores `docs` (id, bytes) into a fresh store at `url` (a SQLite file
/// in `dir` when `None`), unit records first; the time it took.
pub(super) async fn measure(
    docs: &[(DocId, Vec<u8>)],
    url: Option<&str>,
    dir: &std::path::Path,
) -> Result<Duration> {
    let url = match url {
        Some(u) => u.to_owned(),
        None => format!("sqlite:{}", dir.join("floor.sqlite").display()),
    };
    let store = Store::open(&url, StoreOptions::default(), Arc::new(SystemClock)).await?;
    let mut order: Vec<&(DocId, Vec<u8>)> = docs.iter().collect();
    order.sort_by_key(|(id, _)| id.kind() != DocKind::Unit);
    let started = Instant::now();
    for chunk in order.chunks(PER_COMMIT) {
        let mut tx = store.begin().await?;
        for (id, bytes) in chunk {
            // As the gate takes a whole document new here: loaded, checked,
            // and stored as it came with what checking it read.
            let doc = Automerge::load(bytes).with_context(|| format!("decoding {id}"))?;
            let read = shape::check_whole(id, &doc).with_context(|| format!("checking {id}"))?;
            tx.adopt(id, doc, bytes.clone(), read).await?;
        }
        tx.commit().await?;
    }
    Ok(started.elapsed())
}
