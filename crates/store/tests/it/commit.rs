//! A commit runs to its end even when its caller is cancelled (a client
//! gone, a deadline): what it wrote is durable, the unit tree and the feed
//! position follow it, and the next write starts only after it.

use std::time::Duration;

use anyhow::{Result, ensure};
use hopluu_model::unit;
use hopluu_store::Store;

use crate::harness::*;

suite!(case_a_cancelled_commit_still_lands_whole,);

pub async fn case_a_cancelled_commit_still_lands_whole(store: Store) -> Result<()> {
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    for i in 0..12u32 {
        let id = format!("p{i}");
        let new = new_unit(&id, "LĐLĐ tỉnh", "provincial", Some("vn"));
        let author = author(&store);
        let mut tx = store.begin().await?;
        unit::create(tx.doc(&unit_doc(&id)).await?, &author, &new)?;
        let before = store.feed_position().await?;
        // Cancelled after 0 to 2.2 ms: mid-commit, or before it began.
        let cut = Duration::from_micros(200 * u64::from(i));
        let finished = tokio::time::timeout(cut, tx.commit()).await.is_ok();
        // The next write waits for the commit, wherever it was cut.
        let next = store.begin().await?;
        drop(next);
        ensure!(
            store.tree().contains(&uid(&id)),
            "round {i} (finished: {finished}): the unit tree lacks {id}"
        );
        ensure!(store.doc_heads(&unit_doc(&id)).await?.is_some());
        ensure!(store.feed_position().await? == before + 1);
        ensure!(*store.watch_feed().borrow() == before + 1);
    }
    Ok(())
}
