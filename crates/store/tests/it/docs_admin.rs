//! The administrator's view of the documents (listing by kind, owner and
//! subtree, paging, peers' heads) and compaction on request: every chunk
//! folded, heads and content unchanged, nothing in the feed, safe beside
//! concurrent writes and when stopped at any point.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::ChangeHash;
use hopluu_model::member::{self, Member, MemberUpdate};
use hopluu_model::{DocId, DocKind};
use hopluu_store::docs_admin::{DocFilter, PeerHeads};
use hopluu_store::{Store, StoreOptions};
use sqlx::Row;

use crate::harness::*;

suite!(
    case_docs_list_by_kind_owner_and_subtree_in_pages,
    case_doc_row_and_the_heads_peers_have,
    case_compact_folds_every_chunk_keeping_heads,
    case_compact_beside_concurrent_writes_loses_nothing,
    case_compact_stopped_anywhere_leaves_every_document_whole,
    case_a_cold_read_racing_a_compaction_sees_every_change,
);

/// The small tree, a campaign of p1, six members in g1 and g2 (g1's roster
/// splits into buckets of four), and edits that leave chunks behind.
async fn populate(store: &Store) -> Result<Vec<Member>> {
    small_tree(store).await?;
    launch(store, "c1", "p1", "p1").await?;
    let mut members = Vec::new();
    for i in 0..7 {
        let unit = if i % 3 == 2 { "g2" } else { "g1" };
        let (m, _) = add_member(
            store,
            unit,
            &format!("m{i}"),
            "Nguyễn Văn An",
            "nam",
            &format!("HG-{i:04}"),
        )
        .await?;
        members.push(m);
    }
    for k in 0..4 {
        let i = k % members.len();
        members[i] = set_position(store, &members[i], &format!("Tổ trưởng {k}")).await?;
    }
    Ok(members)
}

async fn set_position(store: &Store, m: &Member, position: &str) -> Result<Member> {
    let roster = roster_of(store, m.id.as_str(), m.unit.as_str()).await?;
    write(store, &roster, |doc, a| {
        member::update(
            doc,
            a,
            &m.id,
            &MemberUpdate {
                position: Some(position.to_owned()),
                ..Default::default()
            },
            today(),
        )
    })
    .await
}

/// `(doc_id, kind, owner)` of every stored document, by id (byte-wise).
async fn all_docs(store: &Store) -> Result<Vec<(String, String, String)>> {
    let mut out: Vec<(String, String, String)> =
        sqlx::query("SELECT doc_id, kind, owner FROM docs")
            .fetch_all(store.pool())
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    out.sort();
    Ok(out)
}

fn filter(kind: Option<DocKind>, owner: Option<&str>, subtree: bool) -> DocFilter {
    DocFilter {
        kind,
        owner: owner.map(uid),
        subtree,
        after: None,
        limit: 1000,
    }
}

async fn listed(store: &Store, f: &DocFilter) -> Result<(Vec<String>, u64)> {
    let (rows, total) = store.list_docs(f).await?;
    Ok((rows.iter().map(|r| r.id.to_string()).collect(), total))
}

pub async fn case_docs_list_by_kind_owner_and_subtree_in_pages(store: Store) -> Result<()> {
    populate(&store).await?;
    let all = all_docs(&store).await?;
    let ids = |keep: &dyn Fn(&(String, String, String)) -> bool| -> Vec<String> {
        all.iter()
            .filter(|d| keep(d))
            .map(|d| d.0.clone())
            .collect()
    };

    let (got, total) = listed(&store, &filter(None, None, false)).await?;
    ensure!(got == ids(&|_| true), "everything, by id: {got:?}");
    ensure!(total == all.len() as u64 && total as i64 == store.doc_count().await?);

    let (got, total) = listed(&store, &filter(Some(DocKind::Roster), None, false)).await?;
    let want = ids(&|d| d.1 == "roster");
    ensure!(want.len() >= 3, "g1 split into buckets: {want:?}");
    ensure!(
        got == want && total == want.len() as u64,
        "rosters: {got:?}"
    );

    // Unit records are owned by the deciding (parent) unit.
    let (got, _) = listed(&store, &filter(None, Some("d1"), false)).await?;
    ensure!(got == ["unit/g1", "unit/g2"], "owned by d1 itself: {got:?}");

    let subtree: BTreeSet<&str> = ["p1", "d1", "g1", "g2"].into();
    let (got, total) = listed(&store, &filter(None, Some("p1"), true)).await?;
    let want = ids(&|d| subtree.contains(d.2.as_str()));
    ensure!(
        got == want && total == want.len() as u64,
        "p1's subtree: {got:?}"
    );
    ensure!(got.iter().any(|d| d == "campaign/c1"), "p1's campaign");
    ensure!(
        !got.iter().any(|d| d == "unit/p1" || d == "unit/p2"),
        "vn owns the provinces' records: {got:?}"
    );

    let (got, _) = listed(
        &store,
        &filter(Some(DocKind::RosterPrivate), Some("d1"), true),
    )
    .await?;
    ensure!(
        got == ids(&|d| d.1 == "roster-private"),
        "kind and subtree together: {got:?}"
    );

    let (got, total) = listed(&store, &filter(None, Some("nowhere"), true)).await?;
    ensure!(got.is_empty() && total == 0, "an unknown unit owns nothing");

    // Pages of three, each after the last id seen, make up the whole list;
    // the total counts every match whatever the page.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let (rows, total) = store
            .list_docs(&DocFilter {
                after: after.clone(),
                limit: 3,
                ..DocFilter::default()
            })
            .await?;
        ensure!(total == all.len() as u64, "total on every page");
        ensure!(rows.len() <= 3);
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        paged.extend(rows.iter().map(|r| r.id.to_string()));
    }
    ensure!(paged == ids(&|_| true), "pages: {paged:?}");
    Ok(())
}

pub async fn case_doc_row_and_the_heads_peers_have(store: Store) -> Result<()> {
    let members = populate(&store).await?;
    let roster = roster_of(&store, members[0].id.as_str(), "g1").await?;
    let row = store.doc_row(&roster).await?.context("the roster's row")?;
    ensure!(row.id == roster && row.owner == uid("g1") && row.addressed.is_empty());
    ensure!(Some(row.heads.clone()) == store.doc_heads(&roster).await?);
    ensure!(row.size() == row.snapshot_len + row.chunks_len && row.snapshot_len > 0);
    ensure!(row.seq > 0 && row.seq <= store.feed_position().await?);
    let campaign = store
        .doc_row(&DocId::Campaign(cid("c1")))
        .await?
        .context("the campaign's row")?;
    ensure!(campaign.owner == uid("p1") && campaign.addressed == [uid("p1")]);
    ensure!(store.doc_row(&unit_doc("nowhere")).await?.is_none());

    ensure!(
        store.peer_heads_of(&roster).await?.is_empty(),
        "no peer yet"
    );
    // peer-a has an older state (the first change only), peer-b the
    // current heads; only peer-a's unit is known.
    let first: ChangeHash = store
        .read_doc(&roster, |d| d.get_changes(&[])[0].hash())
        .await?
        .context("roster")?;
    let mut tx = store.begin().await?;
    tx.set_peer_heads("peer-b", &roster, &row.heads, None);
    tx.set_peer_heads("peer-a", &roster, &[first], None);
    tx.set_peer_applied("peer-a", &uid("p1"), 0);
    tx.commit().await?;
    let peers = store.peer_heads_of(&roster).await?;
    ensure!(
        peers
            == [
                PeerHeads {
                    peer: "peer-a".into(),
                    unit: "p1".into(),
                    heads: vec![first],
                },
                PeerHeads {
                    peer: "peer-b".into(),
                    unit: String::new(),
                    heads: row.heads.clone(),
                },
            ],
        "{peers:?}"
    );
    ensure!(store.peer_heads_of(&unit_doc("vn")).await?.is_empty());
    Ok(())
}

/// Every stored document's heads as stored.
async fn stored_heads(store: &Store) -> Result<BTreeMap<DocId, Vec<ChangeHash>>> {
    let mut out = BTreeMap::new();
    for id in store.doc_ids().await? {
        let heads = store.doc_heads(&id).await?.context("heads")?;
        out.insert(id, heads);
    }
    Ok(out)
}

/// `(doc_id, snapshot_len, chunks_len)` of the documents with chunks.
async fn chunked(store: &Store) -> Result<Vec<(String, i64, i64)>> {
    Ok(sqlx::query(
        "SELECT doc_id, snapshot_len, chunks_len FROM docs WHERE chunks_len > 0 ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect())
}

/// Every document loads cold (snapshot, then chunks) to `want`'s heads,
/// which are also the stored heads, and its chunk bookkeeping adds up.
async fn whole(store: &Store, want: &BTreeMap<DocId, Vec<ChangeHash>>, when: &str) -> Result<()> {
    let cold = reopen(store).await?;
    let ids: BTreeSet<DocId> = cold.doc_ids().await?.into_iter().collect();
    ensure!(
        ids.iter().eq(want.keys()),
        "{when}: documents {ids:?}, expected {:?}",
        want.keys()
    );
    for (id, heads) in want {
        let loaded = cold
            .read_doc(id, |d| d.get_heads())
            .await
            .with_context(|| format!("{when}: {id} does not load"))?
            .context("stored")?;
        ensure!(loaded == *heads, "{when}: {id} loads to other heads");
        ensure!(
            cold.doc_heads(id).await?.as_ref() == Some(heads),
            "{when}: {id}'s stored heads changed"
        );
    }
    let bad: Vec<(String, i64, i64)> = sqlx::query(
        "SELECT d.doc_id, d.chunks_len, \
         CAST(COALESCE((SELECT SUM(LENGTH(c.data)) FROM doc_chunks c WHERE c.doc = d.id), 0) \
         AS BIGINT) FROM docs d",
    )
    .fetch_all(cold.pool())
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .filter(|(_, recorded, actual)| recorded != actual)
    .collect();
    ensure!(
        bad.is_empty(),
        "{when}: chunks_len disagrees with the chunks: {bad:?}"
    );
    cold.close().await;
    Ok(())
}

pub async fn case_compact_folds_every_chunk_keeping_heads(store: Store) -> Result<()> {
    let members = populate(&store).await?;
    let heads = stored_heads(&store).await?;
    let before = chunked(&store).await?;
    ensure!(before.len() >= 2, "documents with chunks: {before:?}");
    let position = store.feed_position().await?;

    // The threshold picks documents by their chunks' size.
    let none = store.compaction(u64::MAX).await?;
    ensure!(none.progress().docs_total == 0);
    let largest = before.iter().map(|c| c.2).max().unwrap_or(0);
    let some = store.compaction(largest as u64).await?;
    let want = before.iter().filter(|c| c.2 >= largest).count() as u64;
    ensure!(some.progress().docs_total == want);
    drop(some);

    let mut seen = Vec::new();
    let done = store.compaction(0).await?.run(|p| seen.push(*p)).await?;
    let n = before.len() as u64;
    ensure!(
        done.docs_total == n && done.docs_done == n && done.docs_compacted == n,
        "{done:?}"
    );
    ensure!(done.docs_skipped == 0, "{done:?}");
    ensure!(seen.len() == before.len() && seen.last() == Some(&done));
    ensure!(
        seen.windows(2)
            .all(|w| w[1].docs_done == w[0].docs_done + 1)
    );
    let bytes_before: i64 = before.iter().map(|c| c.1 + c.2).sum();
    ensure!(done.bytes_before == bytes_before as u64, "{done:?}");
    let mut bytes_after = 0;
    for (id, _, _) in &before {
        let row = store
            .doc_row(&DocId::parse("doc_id", id)?)
            .await?
            .context("row")?;
        ensure!(row.chunks_len == 0, "{id} still has chunks");
        bytes_after += row.size();
    }
    ensure!(done.bytes_after == bytes_after as u64, "{done:?}");
    ensure!(chunked(&store).await?.is_empty(), "chunks left");
    let rows: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM doc_chunks")
        .fetch_one(store.pool())
        .await?
        .get(0);
    ensure!(rows == 0, "{rows} chunk rows left");
    ensure!(
        store.feed_position().await? == position,
        "a compaction is not an update: nothing enters the feed"
    );
    ensure!(stored_heads(&store).await? == heads);
    whole(&store, &heads, "after compaction").await?;

    // Nothing left to do; and writes go on as before, on the new snapshot.
    let again = store.compaction(0).await?.run(|_| {}).await?;
    ensure!(again.docs_total == 0 && again.docs_done == 0);
    let m = set_position(&store, &members[0], "Chủ tịch").await?;
    let loc = store.current_member_loc(&m.id).await?.context("member")?;
    ensure!(store.member(&loc).await?.as_ref() == Some(&m));
    Ok(())
}

pub async fn case_compact_beside_concurrent_writes_loses_nothing(store: Store) -> Result<()> {
    let mut members = populate(&store).await?;
    let writer = async {
        for k in 0..40 {
            let i = k % members.len();
            members[i] = set_position(&store, &members[i], &format!("Vị trí {k}")).await?;
            if k % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
        anyhow::Ok(())
    };
    let compactor = async {
        let mut compacted = 0;
        for _ in 0..10 {
            compacted += store.compaction(0).await?.run(|_| {}).await?.docs_compacted;
            tokio::task::yield_now().await;
        }
        anyhow::Ok(compacted)
    };
    let (w, c) = tokio::join!(writer, compactor);
    w?;
    ensure!(c? > 0, "the compactions compacted something");
    let heads = stored_heads(&store).await?;
    whole(&store, &heads, "after concurrent writes").await?;
    let cold = reopen(&store).await?;
    for (label, s) in [("warm", &store), ("cold", &cold)] {
        for m in &members {
            let loc = s.current_member_loc(&m.id).await?.context("member")?;
            ensure!(
                s.member(&loc).await?.as_ref() == Some(m),
                "{label}: {} lost an edit",
                m.id
            );
        }
    }
    cold.close().await;
    Ok(())
}

pub async fn case_compact_stopped_anywhere_leaves_every_document_whole(store: Store) -> Result<()> {
    let mut members = populate(&store).await?;
    let mut stopped = 0;
    for (round, micros) in [0u64, 20, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800]
        .into_iter()
        .enumerate()
    {
        // New chunks to fold.
        for k in 0..3 {
            let i = (round * 3 + k) % members.len();
            members[i] = set_position(&store, &members[i], &format!("Vòng {round}.{k}")).await?;
        }
        let heads = stored_heads(&store).await?;
        let compaction = store.compaction(0).await?;
        // Dropped wherever the deadline finds it: between documents, or
        // inside one's read, fold, update or commit.
        let run = compaction.run(|_| {});
        if tokio::time::timeout(Duration::from_micros(micros), run)
            .await
            .is_err()
        {
            stopped += 1;
        }
        whole(&store, &heads, &format!("stopped after {micros} µs")).await?;
    }
    ensure!(stopped > 0, "no compaction was stopped midway");
    // What is left compacts, and every edit is there.
    store.compaction(0).await?.run(|_| {}).await?;
    ensure!(chunked(&store).await?.is_empty());
    for m in &members {
        let loc = store.current_member_loc(&m.id).await?.context("member")?;
        ensure!(store.member(&loc).await?.as_ref() == Some(m), "{}", m.id);
    }
    Ok(())
}

/// Regression (`compact_stopped_anywhere…` failed once under load: "roster/g1
/// loads to other heads"). A document read from the database (a cache
/// miss) took its row and its chunks in two statements; a compaction
/// committed between them handed back the old snapshot without the chunks
/// it had folded, an older document that the cache then kept. Here a
/// reader with no cache loads the document again and again while
/// compactions fold it: every load must show every change written.
pub async fn case_a_cold_read_racing_a_compaction_sees_every_change(store: Store) -> Result<()> {
    let mut members = populate(&store).await?;
    let roster = member::roster_doc(&hopluu_model::UnitId::parse("unit", "g1")?, 0);
    let reader = reopen_with(
        &store,
        StoreOptions {
            cache_docs: 0,
            ..store.options().clone()
        },
    )
    .await?;
    for round in 0..40 {
        let i = round % members.len();
        members[i] = set_position(&store, &members[i], &format!("Lượt {round}")).await?;
        let want = store.doc_heads(&roster).await?.context("stored")?;
        let compact = async {
            store.compaction(0).await?.run(|_| {}).await?;
            anyhow::Ok(())
        };
        let read = async {
            for _ in 0..8 {
                let heads = reader
                    .read_doc(&roster, |d| d.get_heads())
                    .await?
                    .context("stored")?;
                ensure!(
                    heads == want,
                    "round {round}: a read beside a compaction lost changes"
                );
                tokio::task::yield_now().await;
            }
            anyhow::Ok(())
        };
        let (c, r) = tokio::join!(compact, read);
        c?;
        r?;
    }
    reader.close().await;
    Ok(())
}
