//! The change feed: one entry per document update, numbered in commit
//! order; a commit of n documents adds exactly n entries; a transaction
//! dropped without commit leaves no trace, not even in the cache.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use hopluu_model::member::{self, MemberStatus, MemberUpdate};
use hopluu_model::unit::{self, Unit};
use hopluu_model::{DocId, MemberId};
use hopluu_store::Store;

use crate::harness::*;

suite!(
    case_feed_strictly_increasing,
    case_group_commit_adds_one_entry_per_document,
    case_dropped_transaction_leaves_no_trace,
    case_failed_edit_then_commit_stores_nothing,
    case_concurrent_writers_are_serialised,
);

/// The whole feed, checked: sequence numbers strictly increase from 1
/// without gaps or duplicates, and the last is `feed_position()`.
async fn whole_feed(store: &Store) -> Result<Vec<(i64, DocId)>> {
    let feed = store.feed_since(0, 1_000_000).await?;
    for w in feed.windows(2) {
        ensure!(
            w[0].0 < w[1].0,
            "feed not strictly increasing: {} then {}",
            w[0].0,
            w[1].0
        );
    }
    let position = store.feed_position().await?;
    ensure!(
        feed.last().map(|(s, _)| *s).unwrap_or(0) == position,
        "feed_position {position} is not the last entry {:?}",
        feed.last()
    );
    ensure!(
        feed.len() as i64 == position && feed.first().is_none_or(|(s, _)| *s == 1),
        "the feed has gaps: {} entries up to {position}",
        feed.len()
    );
    Ok(feed)
}

pub async fn case_feed_strictly_increasing(store: Store) -> Result<()> {
    ensure!(
        store.feed_position().await? == 0,
        "a new store's feed is empty"
    );
    ensure!(whole_feed(&store).await?.is_empty(), "empty feed");
    small_tree(&store).await?;
    let feed = whole_feed(&store).await?;
    let units: Vec<String> = feed.iter().map(|(_, d)| d.to_string()).collect();
    ensure!(
        units
            == [
                "unit/vn", "unit/p1", "unit/p2", "unit/d1", "unit/g1", "unit/g2"
            ],
        "the feed lists the documents in commit order: {units:?}"
    );
    for i in 0..6 {
        add_member(
            &store,
            if i % 2 == 0 { "g1" } else { "g2" },
            &format!("m-{i}"),
            &format!("Trần Văn Số {i}"),
            "nam",
            &format!("HG-{i:04}"),
        )
        .await?;
    }
    transfer(&store, "m-0", "g1", "g2", "2025-06-01").await?;
    end_member(&store, "m-1", "g2", MemberStatus::Left, "", "2025-07-01").await?;
    let feed = whole_feed(&store).await?;
    // Six units, six members (roster + private each), a transfer (the
    // rosters of two units), an end.
    ensure!(feed.len() == 6 + 12 + 2 + 1, "feed length {}", feed.len());
    // The last entry of each document is the seq stored with it.
    for id in store.doc_ids().await? {
        let last = feed.iter().rev().find(|(_, d)| *d == id).map(|(s, _)| *s);
        let stored: i64 = sqlx::query("SELECT seq FROM docs WHERE doc_id = $1")
            .bind(id.to_string())
            .fetch_one(store.pool())
            .await
            .map(|r| sqlx::Row::get(&r, 0))?;
        ensure!(
            last == Some(stored),
            "{id}: docs.seq {stored}, feed {last:?}"
        );
    }
    // Paging through the feed gives the same entries.
    let mut paged = Vec::new();
    let mut from = 0;
    loop {
        let page = store.feed_since(from, 4).await?;
        ensure!(page.len() <= 4, "a page holds at most its limit");
        let Some((last, _)) = page.last() else { break };
        from = *last;
        paged.extend(page);
    }
    ensure!(paged == feed, "paging the feed gives the whole feed");
    ensure!(
        store
            .feed_since(store.feed_position().await?, 10)
            .await?
            .is_empty(),
        "nothing after the position"
    );
    Ok(())
}

pub async fn case_group_commit_adds_one_entry_per_document(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let before = store.feed_position().await?;
    let a = author(&store);
    let renames = [
        ("g1", "CĐCS Một"),
        ("g2", "CĐCS Hai"),
        ("d1", "LĐLĐ huyện Ba"),
    ];
    let mut tx = store.begin().await?;
    for (u, name) in renames {
        unit::rename(
            tx.doc(&unit_doc(u)).await?,
            &a,
            name,
            &decision("7/QĐ", "2025-08-01", ""),
        )?;
    }
    // A document loaded but not edited is not an update.
    tx.doc(&unit_doc("p1")).await?;
    let done = tx.commit().await?;
    let ids: BTreeSet<DocId> = done.docs.iter().map(|(d, _)| d.clone()).collect();
    ensure!(
        ids == renames.iter().map(|(u, _)| unit_doc(u)).collect(),
        "committed {:?}",
        done.docs
    );
    let seqs: BTreeSet<i64> = done.docs.iter().map(|(_, s)| *s).collect();
    ensure!(
        seqs == (before + 1..=before + 3).collect(),
        "three consecutive sequence numbers after {before}: {:?}",
        done.docs
    );
    ensure!(done.last_seq() == Some(before + 3), "last_seq");
    let after = store.feed_since(before, 100).await?;
    ensure!(after.len() == 3, "exactly three feed entries: {after:?}");
    let mut from_feed = after.clone();
    from_feed.sort();
    let mut committed: Vec<(i64, DocId)> = done.docs.iter().map(|(d, s)| (*s, d.clone())).collect();
    committed.sort();
    ensure!(
        from_feed == committed,
        "the feed is what the commit reported"
    );
    ensure!(store.feed_position().await? == before + 3, "position");
    for (u, name) in renames {
        let unit = store.unit(&uid(u)).await?.context("unit")?;
        ensure!(unit.name == name, "{u} renamed");
        let listed = store.list_units(&uid(u), true, Some(0)).await?;
        ensure!(listed[0].name == name, "{u} renamed in the projection");
    }
    whole_feed(&store).await?;
    Ok(())
}

pub async fn case_dropped_transaction_leaves_no_trace(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let (an, bucket) = add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    let roster = member::roster_doc(&uid("g1"), bucket);
    // Warm the cache with both documents.
    let unit_before: Unit = store.unit(&uid("g1")).await?.context("g1")?;
    let loc = store.current_member_loc(&an.id).await?.context("loc")?;
    ensure!(store.member(&loc).await? == Some(an.clone()), "member");
    let position = store.feed_position().await?;
    let heads = |id: DocId| {
        let store = store.clone();
        async move { store.doc_heads(&id).await }
    };
    let (unit_heads, roster_heads) = (heads(unit_doc("g1")).await?, heads(roster.clone()).await?);
    let docs_before = store.doc_ids().await?;

    {
        let a = author(&store);
        let mut tx = store.begin().await?;
        unit::rename(
            tx.doc(&unit_doc("g1")).await?,
            &a,
            "Tên chưa lưu",
            &decision("9/QĐ", "2025-08-01", ""),
        )?;
        member::update(
            tx.doc(&roster).await?,
            &a,
            &an.id,
            &MemberUpdate {
                full_name: Some("Tên Chưa Lưu".to_owned()),
                ..Default::default()
            },
            today(),
        )?;
        unit::create(
            tx.doc(&unit_doc("g9")).await?,
            &a,
            &new_unit("g9", "CĐCS chưa lưu", "grassroots", Some("d1")),
        )?;
        // Dropped here, without commit.
    }

    ensure!(store.feed_position().await? == position, "the feed moved");
    ensure!(
        store.feed_since(position, 10).await?.is_empty(),
        "feed entries"
    );
    ensure!(store.doc_ids().await? == docs_before, "documents appeared");
    ensure!(
        store.unit(&uid("g9")).await?.is_none(),
        "the unit never committed exists"
    );
    ensure!(
        store.unit(&uid("g1")).await? == Some(unit_before.clone()),
        "unit g1 changed"
    );
    ensure!(
        store.member(&loc).await? == Some(an.clone()),
        "member changed"
    );
    ensure!(
        heads(unit_doc("g1")).await? == unit_heads,
        "unit heads changed"
    );
    ensure!(
        heads(roster.clone()).await? == roster_heads,
        "roster heads changed"
    );
    ensure!(
        store
            .find_members("chua luu", &uid("vn"), 10)
            .await?
            .is_empty(),
        "the projection saw the dropped edit"
    );
    ensure!(
        store.list_units(&uid("d1"), true, None).await?.len() == 3,
        "the closure table saw the dropped unit"
    );

    // A new transaction starts from the committed state, and its own
    // commit does not resurrect the dropped edit.
    let a = author(&store);
    let mut tx = store.begin().await?;
    let doc = tx.doc(&unit_doc("g1")).await?;
    ensure!(
        unit::read(&unit_doc("g1"), doc)? == unit_before,
        "a new transaction sees the dropped edit"
    );
    ensure!(
        doc.get_heads() == unit_heads.clone().unwrap_or_default(),
        "heads in the transaction"
    );
    unit::rename(doc, &a, "Tên đã lưu", &decision("10/QĐ", "2025-08-02", ""))?;
    ensure!(
        !tx.exists(&unit_doc("g9")).await?,
        "a new transaction sees the dropped unit"
    );
    tx.commit().await?;
    for s in [store.clone(), reopen(&store).await?] {
        let u = s.unit(&uid("g1")).await?.context("g1")?;
        ensure!(u.name == "Tên đã lưu", "renamed: {}", u.name);
        let names: Vec<&str> = u.names.iter().map(|n| n.name.as_str()).collect();
        ensure!(
            names == [unit_before.name.as_str(), "Tên đã lưu"],
            "the dropped rename resurfaced: {names:?}"
        );
        ensure!(s.member(&loc).await? == Some(an.clone()), "member");
    }
    Ok(())
}

pub async fn case_failed_edit_then_commit_stores_nothing(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    let roster = roster_of(&store, "m-an", "g1").await?;
    let position = store.feed_position().await?;
    let heads = store.doc_heads(&roster).await?;
    let a = author(&store);
    let mut tx = store.begin().await?;
    let doc = tx.doc(&roster).await?;
    // The model refuses both edits; each leaves the document as it was.
    let ghost = MemberId::parse("member_id", "m-ghost")?;
    ensure!(
        member::end(
            doc,
            &a,
            &ghost,
            MemberStatus::Left,
            "",
            d("2025-01-01"),
            None
        )
        .is_err(),
        "ending an unknown member is refused"
    );
    ensure!(
        member::end(
            doc,
            &a,
            &mid("m-an"),
            MemberStatus::Left,
            "",
            d("2000-01-01"),
            None
        )
        .is_err(),
        "ending before joining is refused"
    );
    let done = tx.commit().await?;
    ensure!(done.docs.is_empty(), "stored {:?}", done.docs);
    ensure!(store.feed_position().await? == position, "the feed moved");
    ensure!(store.doc_heads(&roster).await? == heads, "heads changed");
    Ok(())
}

pub async fn case_concurrent_writers_are_serialised(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..4 {
                let n = t * 10 + i;
                add_member(
                    &store,
                    if t % 2 == 0 { "g1" } else { "g2" },
                    &format!("m-{n}"),
                    &format!("Phạm Văn {n}"),
                    "nam",
                    &format!("CT-{n:04}"),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let feed = whole_feed(&store).await?;
    // Six units, then sixteen commits of a roster and a private roster.
    ensure!(feed.len() == 6 + 32, "feed length {}", feed.len());
    let (_, total) = store.list_members(&uid("d1"), true, None, 100, 0).await?;
    ensure!(total == 16, "members {total}");
    for u in ["g1", "g2"] {
        let (_, n) = store.list_members(&uid(u), false, None, 100, 0).await?;
        ensure!(n == 8, "{u} holds {n} members");
        // Buckets never overflow, although the writers raced.
        let counts = sqlx::query(
            "SELECT bucket, CAST(COUNT(*) AS BIGINT) FROM members WHERE unit_id = $1 GROUP BY bucket",
        )
        .bind(u)
        .fetch_all(store.pool())
        .await?;
        for r in counts {
            let (b, n): (i64, i64) = (sqlx::Row::get(&r, 0), sqlx::Row::get(&r, 1));
            ensure!(n <= 4, "{u} bucket {b} holds {n} members (bucket size 4)");
        }
    }
    Ok(())
}
