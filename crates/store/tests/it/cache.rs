//! The document cache: a read that loads a document while a commit of the
//! same document runs must not leave the older version in the cache, and a
//! store with a tiny cache (or none) behaves like one with a big cache.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hopluu_model::member::{self, MemberUpdate};
use hopluu_store::{Store, StoreOptions};

use crate::harness::*;

suite!(
    case_read_racing_a_commit_caches_no_stale_document,
    case_tiny_cache_behaves_like_a_big_one,
);

async fn set_position(store: &Store, id: &str, position: &str) -> Result<()> {
    let roster = roster_of(store, id, "g1").await?;
    let m = mid(id);
    write(store, &roster, |doc, a| {
        member::update(
            doc,
            a,
            &m,
            &MemberUpdate {
                position: Some(position.to_owned()),
                ..Default::default()
            },
            today(),
        )
    })
    .await?;
    Ok(())
}

async fn position(store: &Store, id: &str) -> Result<String> {
    let loc = store
        .current_member_loc(&mid(id))
        .await?
        .context("located")?;
    Ok(store.member(&loc).await?.context("member")?.position)
}

pub async fn case_read_racing_a_commit_caches_no_stale_document(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    set_position(&store, "m-an", "A").await?;
    let roster = roster_of(&store, "m-an", "g1").await?;
    // Take the roster out of the cache: a transaction holds its documents
    // and a dropped one discards them.
    {
        let mut tx = store.begin().await?;
        tx.doc(&roster).await?;
    }

    // A reader loads the roster (version A) and is held just before it
    // caches what it loaded…
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<String>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    // The reader runs on a thread of the blocking pool, so that holding it
    // blocks no worker of the runtime (a task stuck behind a blocked worker
    // would stall the commit below).
    let reader = {
        let (store, roster) = (store.clone(), roster.clone());
        let rt = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            rt.block_on(store.read_doc(&roster, move |d| {
                let m = member::read(d, &mid("m-an")).ok().flatten();
                let _ = loaded_tx.send(m.map(|m| m.position).unwrap_or_default());
                // Bounded, so that a regression cannot hang the suite.
                let _ = go_rx.recv_timeout(Duration::from_secs(20));
            }))
        })
    };
    let seen = tokio::time::timeout(Duration::from_secs(20), loaded_rx)
        .await
        .context("the reader never loaded the roster")??;
    ensure!(seen == "A", "the reader loaded {seen:?}");
    // …while a commit stores version B…
    set_position(&store, "m-an", "B").await?;
    let b = store.doc_heads(&roster).await?.context("heads")?;
    // …and then caches what it loaded.
    go_tx.send(())?;
    reader.await??.context("the roster was stored")?;

    ensure!(
        position(&store, "m-an").await? == "B",
        "a read that raced a commit left the older document in the cache"
    );
    // Write on until the roster is compacted: the writes start from
    // whatever the cache holds, and compaction saves that as the snapshot.
    let mut i = 0;
    loop {
        set_position(&store, "m-an", &format!("C{i}")).await?;
        let chunks: i64 = sqlx::query("SELECT chunks_len FROM docs WHERE doc_id = $1")
            .bind(roster.to_string())
            .fetch_one(store.pool())
            .await
            .map(|r| sqlx::Row::get(&r, 0))?;
        if chunks == 0 {
            break;
        }
        i += 1;
        ensure!(i < 200, "no compaction");
    }
    let cold = reopen(&store).await?;
    let kept = cold
        .read_doc(&roster, |d| b.iter().all(|h| hopluu_model::am::knows(d, h)))
        .await?
        .context("roster")?;
    ensure!(
        kept,
        "the committed change that set B is lost from the stored roster"
    );
    ensure!(
        position(&cold, "m-an").await? == format!("C{i}"),
        "cold store position"
    );
    crate::check::consistent(&store).await?;
    Ok(())
}

/// The same history through a store that caches one document, one that
/// caches none (every transaction then loads from snapshot + chunks), and
/// one whose memory budget holds about one small document however many it
/// may count.
pub async fn case_tiny_cache_behaves_like_a_big_one(store: Store) -> Result<()> {
    for (label, cache_docs, cache_bytes) in
        [(1, 1, 256 << 20), (0, 0, 256 << 20), (2, 10_000, 200 << 10)]
    {
        // Only `small` writes; the case's own store never reads these
        // documents before the final check, so its cache holds none of them.
        let small = reopen_with(
            &store,
            StoreOptions {
                cache_docs,
                cache_bytes,
                ..store.options().clone()
            },
        )
        .await?;
        let g = format!("g-cache-{label}");
        if label == 1 {
            small_tree(&small).await?;
        }
        create_unit(&small, &g, "CĐCS bộ nhớ đệm", "grassroots", Some("d1")).await?;
        for i in 0..6 {
            add_member(
                &small,
                &g,
                &format!("m-c{label}-{i}"),
                &format!("Đỗ Thị {i}"),
                "nữ",
                &format!("CA-{label}{i:03}"),
            )
            .await?;
        }
        transfer(&small, &format!("m-c{label}-0"), &g, "g1", "2025-06-01").await?;
        end_member(
            &small,
            &format!("m-c{label}-1"),
            &g,
            member::MemberStatus::Ceased,
            "giải thể",
            "2025-07-01",
        )
        .await?;
        crate::check::consistent(&small).await?;
        let (_, n) = small.list_members(&uid(&g), false, None, 100, 0).await?;
        ensure!(n == 6, "{g}: six records");
        small.close().await;
    }
    Ok(())
}
