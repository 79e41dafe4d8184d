//! What replication reads and writes: the feed as documents to send (each
//! once, at its latest sequence), every document in id order with what
//! scope is decided on and its heads (the convergence check's pages), peer
//! state written with the transaction it describes, the in-memory unit tree and feed position following
//! commits, and documents put back into the feed when a move (or a late
//! unit record) changes which nodes hold them.

use std::collections::BTreeSet;

use anyhow::{Result, ensure};
use hopluu_model::member::{self, NewMember};
use hopluu_model::unit;
use hopluu_model::{DocId, DocKind};
use hopluu_store::Store;
use hopluu_store::peer::FeedScan;

use crate::harness::*;

suite!(
    case_scan_sends_each_document_once_at_its_latest,
    case_scan_pages_by_limit_without_losing_documents,
    case_peer_state_commits_with_its_transaction,
    case_tree_and_feed_position_follow_commits,
    case_a_move_puts_documents_back_into_the_feed,
    case_a_late_unit_record_puts_its_documents_back_into_the_feed,
    case_a_member_in_two_buckets_is_projected_from_the_lowest,
    case_held_docs_page_by_id_bytewise_with_meta_and_heads,
);

async fn tree(store: &Store) -> Result<()> {
    create_unit(store, "vn", "Tổng LĐLĐ", "central", None).await?;
    create_unit(store, "hg", "LĐLĐ Hậu Giang", "provincial", Some("vn")).await?;
    create_unit(store, "lc", "LĐLĐ Lai Châu", "provincial", Some("vn")).await?;
    create_unit(store, "g1", "CĐCS Trường A", "grassroots", Some("hg")).await?;
    Ok(())
}

fn ids(scan: &FeedScan) -> Vec<String> {
    scan.docs.iter().map(|d| d.meta.id.to_string()).collect()
}

pub async fn case_scan_sends_each_document_once_at_its_latest(store: Store) -> Result<()> {
    tree(&store).await?;
    for i in 0..3 {
        add_member(
            &store,
            "g1",
            &format!("m{i}"),
            "Lê Văn A",
            "Nam",
            &format!("CD-{i:04}"),
        )
        .await?;
    }
    let scan = store.scan_feed(0, 1000).await?;
    let position = store.feed_position().await?;
    ensure!(
        scan.upto == position,
        "upto {} != position {position}",
        scan.upto
    );
    let listed = ids(&scan);
    let unique: BTreeSet<&String> = listed.iter().collect();
    ensure!(
        unique.len() == listed.len(),
        "a document listed twice: {listed:?}"
    );
    ensure!(
        listed.iter().any(|d| d.starts_with("roster/g1")),
        "the roster is missing: {listed:?}"
    );
    // Each at its latest sequence, in order, with the stored heads.
    for w in scan.docs.windows(2) {
        ensure!(w[0].seq < w[1].seq, "not in sequence order");
    }
    for d in &scan.docs {
        let heads = store.doc_heads(&d.meta.id).await?.unwrap_or_default();
        ensure!(
            heads == d.heads,
            "{}: heads differ from the stored ones",
            d.meta.id
        );
    }
    // Nothing after the position.
    let rest = store.scan_feed(position, 1000).await?;
    ensure!(
        rest.docs.is_empty() && rest.upto == position,
        "scan past the end"
    );
    Ok(())
}

pub async fn case_scan_pages_by_limit_without_losing_documents(store: Store) -> Result<()> {
    tree(&store).await?;
    create_unit(&store, "g2", "CĐCS Nhà máy B", "grassroots", Some("hg")).await?;
    for i in 0..6 {
        let unit = if i % 2 == 0 { "g1" } else { "g2" };
        add_member(
            &store,
            unit,
            &format!("m{i}"),
            "Trần Thị B",
            "Nữ",
            &format!("CD-{i:04}"),
        )
        .await?;
    }
    let all: BTreeSet<String> = ids(&store.scan_feed(0, 10_000).await?)
        .into_iter()
        .collect();
    let mut paged = BTreeSet::new();
    let mut after = 0;
    for _ in 0..100 {
        let page = store.scan_feed(after, 2).await?;
        ensure!(page.docs.len() <= 2, "a page over its limit");
        if page.upto == after {
            break;
        }
        paged.extend(ids(&page));
        after = page.upto;
    }
    ensure!(paged == all, "paging lost documents: {paged:?} vs {all:?}");
    ensure!(
        after == store.feed_position().await?,
        "paging stopped short"
    );
    Ok(())
}

pub async fn case_peer_state_commits_with_its_transaction(store: Store) -> Result<()> {
    tree(&store).await?;
    let doc = unit_doc("hg");
    let heads = store.doc_heads(&doc).await?.unwrap_or_default();
    // Dropped: nothing is written.
    {
        let mut tx = store.begin().await?;
        tx.set_peer_applied("hg-node", &uid("hg"), 41);
        tx.set_peer_heads("hg-node", &doc, &heads, Some(vec![1, 2, 3]));
    }
    ensure!(
        store.peer("hg-node").await?.is_none(),
        "a dropped transaction wrote a peer"
    );
    let mut tx = store.begin().await?;
    tx.set_peer_applied("hg-node", &uid("hg"), 41);
    tx.set_peer_acked("hg-node", &uid("hg"), 7);
    tx.set_peer_heads("hg-node", &doc, &heads, Some(vec![1, 2, 3]));
    tx.commit().await?;
    let p = store.peer("hg-node").await?.expect("the peer row");
    ensure!(
        p.applied_upto == 41 && p.acked_upto == 7 && p.unit == "hg",
        "peer row: {p:?}"
    );
    let known = store
        .peer_docs("hg-node", &[doc.clone(), unit_doc("lc")])
        .await?;
    ensure!(
        known.len() == 1,
        "only the written document is known: {known:?}"
    );
    ensure!(known[&doc].heads == heads && known[&doc].sync == Some(vec![1, 2, 3]));
    // Acked later without touching applied.
    let mut tx = store.begin().await?;
    tx.set_peer_acked("hg-node", &uid("hg"), 9);
    tx.commit().await?;
    let p = store.peer("hg-node").await?.expect("the peer row");
    ensure!(p.applied_upto == 41 && p.acked_upto == 9, "peer row: {p:?}");
    ensure!(store.peers().await?.len() == 1);
    Ok(())
}

pub async fn case_tree_and_feed_position_follow_commits(store: Store) -> Result<()> {
    let mut feed = store.watch_feed();
    tree(&store).await?;
    ensure!(
        store.tree().contains(&uid("g1")),
        "the tree misses a committed unit"
    );
    ensure!(
        *feed.borrow_and_update() == store.feed_position().await?,
        "the published position lags the feed"
    );
    {
        let mut tx = store.begin().await?;
        let new = new_unit("g9", "CĐCS bỏ dở", "grassroots", Some("hg"));
        unit::create(tx.doc(&unit_doc("g9")).await?, &author(&store), &new)?;
    }
    ensure!(
        !store.tree().contains(&uid("g9")),
        "a dropped unit entered the tree"
    );
    ensure!(
        !feed.has_changed()?,
        "a dropped transaction moved the position"
    );
    // The tree is rebuilt from the projection on reopening.
    let reopened = reopen(&store).await?;
    ensure!(reopened.tree().len() == store.tree().len());
    Ok(())
}

pub async fn case_a_move_puts_documents_back_into_the_feed(store: Store) -> Result<()> {
    tree(&store).await?;
    add_member(&store, "g1", "m1", "Phạm Văn C", "Nam", "CD-0001").await?;
    launch(&store, "c1", "lc", "lc").await?;
    let before = store.feed_position().await?;
    write(&store, &unit_doc("g1"), |doc, a| {
        unit::move_to(
            doc,
            a,
            &uid("lc"),
            &decision("1656/QĐ", "2025-06-30", "2025-07-01"),
        )
    })
    .await?;
    ensure!(
        store.tree().is_within(&uid("g1"), &uid("lc")),
        "the tree does not show the move"
    );
    let again = ids(&store.scan_feed(before, 1000).await?);
    for want in [
        "unit/g1",
        "roster/g1",
        "roster-private/g1",
        "campaign/c1",
        "unit/lc",
    ] {
        ensure!(
            again.iter().any(|d| d == want),
            "{want} is not back in the feed after the move: {again:?}"
        );
    }
    ensure!(
        !again.iter().any(|d| d == "unit/hg"),
        "an unrelated document was put back: {again:?}"
    );
    Ok(())
}

pub async fn case_a_late_unit_record_puts_its_documents_back_into_the_feed(
    store: Store,
) -> Result<()> {
    create_unit(&store, "vn", "Tổng LĐLĐ", "central", None).await?;
    create_unit(&store, "hg", "LĐLĐ Hậu Giang", "provincial", Some("vn")).await?;
    // A roster arrives before its unit's record (as replication may bring it).
    add_member(&store, "g1", "m1", "Võ Thị D", "Nữ", "CD-0001").await?;
    let before = store.feed_position().await?;
    // Common case first: a new unit with nothing waiting costs nothing.
    create_unit(&store, "g2", "CĐCS Bệnh viện", "grassroots", Some("hg")).await?;
    let quiet = store.scan_feed(before, 1000).await?;
    ensure!(
        ids(&quiet) == ["unit/g2"],
        "a new unit rescoped: {:?}",
        ids(&quiet)
    );
    let before = store.feed_position().await?;
    create_unit(&store, "g1", "CĐCS Trường A", "grassroots", Some("hg")).await?;
    let again: Vec<DocId> = store
        .scan_feed(before, 1000)
        .await?
        .docs
        .into_iter()
        .map(|d| d.meta.id)
        .collect();
    ensure!(
        again.iter().any(|d| d.kind() == DocKind::Roster),
        "the waiting roster is not back in the feed: {again:?}"
    );
    Ok(())
}

/// Two offices transferred the same person into one unit before either saw
/// the other's transfer, into different buckets: after the merge the
/// projection shows the lowest bucket's record, whichever arrived last.
pub async fn case_a_member_in_two_buckets_is_projected_from_the_lowest(store: Store) -> Result<()> {
    tree(&store).await?;
    let g1 = uid("g1");
    let author = author(&store);
    // m7 arrives in bucket 1 first, m8 in bucket 0 first.
    for (id, order) in [("m7", [1u32, 0]), ("m8", [0, 1])] {
        let mut m = member::joining(
            mid(id),
            g1.clone(),
            &NewMember::parse(&input("Đặng Thị E", "Nữ", "CD-0007"), today())?,
        );
        for bucket in order {
            m.position = format!("bucket {bucket}");
            let mut tx = store.begin().await?;
            let doc = tx.doc(&member::roster_doc(&g1, bucket)).await?;
            member::add(doc, &author, &g1, bucket, &m)?;
            tx.commit().await?;
        }
        let (rows, _) = store.list_members(&g1, false, None, 100, 0).await?;
        let copies: Vec<_> = rows.iter().filter(|r| r.id == m.id).collect();
        ensure!(
            copies.len() == 1,
            "{id}: one row per member and unit: {copies:?}"
        );
        ensure!(
            copies[0].position == "bucket 0",
            "{id}: the lowest bucket's record is projected: {:?}",
            copies[0]
        );
    }
    Ok(())
}

/// `held_docs` lists every stored document once, in byte-wise id order on
/// both backends (`roster-private/…` before `roster/…`: `-` sorts before
/// `/`, which a locale's collation would ignore), with the owner and
/// addressed units scope is decided on and the stored heads; pages cut
/// with `after` and `upto` cover the list exactly.
pub async fn case_held_docs_page_by_id_bytewise_with_meta_and_heads(store: Store) -> Result<()> {
    small_tree(&store).await?;
    launch(&store, "c1", "p1", "p1").await?;
    for i in 0..9 {
        let unit = if i % 3 == 2 { "g2" } else { "g1" };
        add_member(
            &store,
            unit,
            &format!("m{i}"),
            "Nguyễn Thị Lan",
            "Nữ",
            &format!("HG-{i:04}"),
        )
        .await?;
    }
    let all = store.held_docs(None, None, 10_000).await?;
    let ids: Vec<String> = all.iter().map(|d| d.meta.id.to_string()).collect();
    let mut stored: Vec<String> = store
        .doc_ids()
        .await?
        .iter()
        .map(DocId::to_string)
        .collect();
    stored.sort();
    ensure!(
        ids == stored,
        "not every document once, byte-wise: {ids:?} vs {stored:?}"
    );
    let private = ids.iter().position(|d| d.starts_with("roster-private/g1"));
    let public = ids.iter().position(|d| d.starts_with("roster/g1"));
    ensure!(
        matches!((private, public), (Some(a), Some(b)) if a < b),
        "roster-private/ must sort before roster/ byte-wise: {ids:?}"
    );
    ensure!(
        ids.iter().any(|d| d.starts_with("roster/g1/")),
        "g1's roster did not split into buckets: {ids:?}"
    );
    for d in &all {
        let heads = store.doc_heads(&d.meta.id).await?.unwrap_or_default();
        ensure!(
            heads == d.heads && !heads.is_empty(),
            "{}: heads",
            d.meta.id
        );
        // A unit's record is its parent's (the root's its own).
        let expected_owner = match &d.meta.id {
            DocId::Unit(u) => store
                .tree()
                .get(u)
                .and_then(|n| n.parent.clone())
                .unwrap_or_else(|| u.clone())
                .to_string(),
            DocId::Campaign(_) => "p1".to_owned(),
            other => other
                .owner_from_id()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        ensure!(
            d.meta.owner.as_str() == expected_owner,
            "{}: owner {} instead of {expected_owner}",
            d.meta.id,
            d.meta.owner
        );
        if d.meta.id.kind() == DocKind::Campaign {
            ensure!(
                d.meta
                    .addressed
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    == ["p1"],
                "the campaign's scope: {:?}",
                d.meta.addressed
            );
        }
    }
    // Pages of three, each cut where the last one ended.
    let mut paged = Vec::new();
    let mut after: Option<DocId> = None;
    for _ in 0..100 {
        let page = store.held_docs(after.as_ref(), None, 3).await?;
        ensure!(page.len() <= 3, "a page over its limit");
        let Some(last) = page.last() else { break };
        after = Some(last.meta.id.clone());
        paged.extend(page.iter().map(|d| d.meta.id.to_string()));
    }
    ensure!(
        paged == ids,
        "paging lost or reordered documents: {paged:?}"
    );
    // A window (after, upto]: exactly the documents between.
    let (lo, hi) = (&all[2].meta.id, &all[7].meta.id);
    let window: Vec<String> = store
        .held_docs(Some(lo), Some(hi), 1000)
        .await?
        .iter()
        .map(|d| d.meta.id.to_string())
        .collect();
    ensure!(window == ids[3..=7], "window ({lo}, {hi}]: {window:?}");
    ensure!(
        store
            .held_docs(all.last().map(|d| &d.meta.id), None, 10)
            .await?
            .is_empty(),
        "a page past the last document"
    );
    Ok(())
}
