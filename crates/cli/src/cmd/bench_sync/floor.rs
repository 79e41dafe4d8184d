//! The floor of the initial aggregation, measured in the same run: the
//! documents the national node received, decoded and checked against their
//! shape (a lane per core, as a node does), projected and stored by this
//! process into a fresh store on the national node's backend, with no
//! network, no session and no gate bookkeeping, many documents a commit. The aggregation's wall time over
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
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
    for chunk in order.chunks(PER_COMMIT) {
        // As a node takes whole documents new to it: loaded and checked
        // on the blocking pool, a lane per core, then stored as they came
        // with what checking them read.
        let mut work: Vec<Vec<(DocId, Vec<u8>)>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, (id, bytes)) in chunk.iter().enumerate() {
            work[i % lanes].push((id.clone(), bytes.clone()));
        }
        let mut tasks = Vec::new();
        for lane in work {
            tasks.push(tokio::task::spawn_blocking(move || {
                lane.into_iter()
                    .map(|(id, bytes)| {
                        let doc =
                            Automerge::load(&bytes).with_context(|| format!("decoding {id}"))?;
                        let read = shape::check_whole(&id, &doc)
                            .with_context(|| format!("checking {id}"))?;
                        Ok((id, doc, bytes, read))
                    })
                    .collect::<Result<Vec<_>>>()
            }));
        }
        let mut tx = store.begin().await?;
        for t in tasks {
            for (id, doc, bytes, read) in t.await?? {
                tx.adopt(&id, doc, bytes, read).await?;
            }
        }
        tx.commit().await?;
    }
    Ok(started.elapsed())
}
