//! The quarantine table, on both backends: entries written with their
//! transaction (and gone with a rollback), listed and filtered, shown with
//! their bytes, decided once, and found again by document for the gate;
//! selected by maker, reason, document and decision (for a decision on
//! all of them); counted by the peer that sent them (what an ack tells),
//! and the generation that moves with each commit that wrote it.

use anyhow::{Result, ensure};
use automerge::ChangeHash;
use hopluu_model::DocId;
use hopluu_model::reorg::Seal;
use hopluu_store::Store;
use hopluu_store::quarantine::{HeldFrom, NewQuarantine, QuarantineFilter, QuarantineState};

use crate::decisions::{put, recorded};
use crate::harness::{now, small_tree};

suite!(
    case_quarantine_commits_with_its_transaction,
    case_quarantine_entries_are_listed_decided_and_found,
    case_held_entries_are_selected_by_maker_reason_document_and_decision,
    case_what_is_held_of_each_peers_changes_is_counted,
    case_the_generation_moves_with_commits_that_wrote_the_quarantine,
);

fn entry(doc: &str, n: u8, waits_for: Option<ChangeHash>) -> NewQuarantine {
    NewQuarantine {
        doc: doc.parse().unwrap(),
        hash: ChangeHash([n; 32]),
        origin_node: "node-c1".into(),
        origin_unit: "c1".into(),
        peer_node: "node-c1".into(),
        peer_unit: "c1".into(),
        code: if waits_for.is_some() {
            "waits"
        } else {
            "not-authorised"
        }
        .into(),
        reason: "node node-c1 (unit c1) holds no authority".into(),
        waits_for,
        made_at: 0,
        change: vec![n; 10],
    }
}

pub async fn case_quarantine_commits_with_its_transaction(store: Store) -> Result<()> {
    let mut tx = store.begin().await?;
    ensure!(tx.quarantine(&entry("campaign/c1", 1, None), 5).await?);
    drop(tx);
    ensure!(
        store
            .quarantine_list(&QuarantineFilter::default())
            .await?
            .is_empty()
    );
    let mut tx = store.begin().await?;
    ensure!(tx.quarantine(&entry("campaign/c1", 1, None), 5).await?);
    // The same change again is not a second entry.
    ensure!(!tx.quarantine(&entry("campaign/c1", 1, None), 6).await?);
    tx.commit().await?;
    let all = store.quarantine_list(&QuarantineFilter::default()).await?;
    ensure!(all.len() == 1, "{all:?}");
    ensure!(all[0].received_at == 5 && all[0].change.is_none());
    Ok(())
}

pub async fn case_quarantine_entries_are_listed_decided_and_found(store: Store) -> Result<()> {
    let doc: DocId = "roster/g2".parse().unwrap();
    let mut tx = store.begin().await?;
    tx.quarantine(&entry("roster/g2", 1, None), 10).await?;
    tx.quarantine(&entry("roster/g2", 2, Some(ChangeHash([1; 32]))), 11)
        .await?;
    tx.quarantine(&entry("award/a1", 3, None), 12).await?;
    tx.commit().await?;

    let held = store.quarantined_in(std::slice::from_ref(&doc)).await?;
    ensure!(held[&doc].len() == 2, "{held:?}");
    let docs = store.quarantine_held_docs(10).await?;
    ensure!(docs.len() == 2, "{docs:?}");
    let only = store
        .quarantine_list(&QuarantineFilter {
            doc: Some("roster/g2".into()),
            ..QuarantineFilter::default()
        })
        .await?;
    ensure!(only.len() == 2 && only[1].waits_for == Some(ChangeHash([1; 32])));
    let shown = store.quarantine_get(only[0].id).await?.expect("stored");
    ensure!(shown.change.as_deref() == Some(&[1u8; 10][..]));
    ensure!(store.quarantine_get(9999).await?.is_none());

    let mut tx = store.begin().await?;
    ensure!(
        tx.quarantine_decide(
            &doc,
            &ChangeHash([1; 32]),
            QuarantineState::Discarded,
            "admin:a",
            20
        )
        .await?
    );
    // Decided once: a second decision changes nothing.
    ensure!(
        !tx.quarantine_decide(
            &doc,
            &ChangeHash([1; 32]),
            QuarantineState::Released,
            "admin:b",
            21
        )
        .await?
    );
    tx.quarantine_recode(&doc, &ChangeHash([2; 32]), "not-authorised", "fails alone")
        .await?;
    let still = tx.quarantine_held(&doc).await?;
    ensure!(still.len() == 1 && still[0].code == "not-authorised" && still[0].waits_for.is_none());
    tx.commit().await?;

    let discarded = store.quarantine_get(only[0].id).await?.expect("stored");
    ensure!(discarded.state == QuarantineState::Discarded);
    ensure!(
        discarded.change.is_none(),
        "a discarded change's bytes are dropped"
    );
    ensure!(discarded.decided_by.as_deref() == Some("admin:a"));
    let counts = store.quarantine_counts().await?;
    ensure!(counts.get(&QuarantineState::Held) == Some(&2), "{counts:?}");
    ensure!(counts.get(&QuarantineState::Discarded) == Some(&1));
    let held = store
        .quarantine_list(&QuarantineFilter {
            state: Some(QuarantineState::Held),
            limit: 1,
            ..QuarantineFilter::default()
        })
        .await?;
    ensure!(held.len() == 1);
    let next = store
        .quarantine_list(&QuarantineFilter {
            state: Some(QuarantineState::Held),
            after_id: held[0].id,
            ..QuarantineFilter::default()
        })
        .await?;
    ensure!(next.len() == 1 && next[0].id > held[0].id);
    // Discarded hashes stay visible to the gate, released ones do not.
    let known = store.quarantined_in(std::slice::from_ref(&doc)).await?;
    ensure!(known[&doc].get(&ChangeHash([1; 32])) == Some(&QuarantineState::Discarded));
    Ok(())
}

/// An entry made by `origin` (a node hosting the unit of the same name),
/// sent by `peer`, held for `code`.
fn held(doc: &str, n: u8, origin: &str, peer: &str, code: &str, made_at: i64) -> NewQuarantine {
    NewQuarantine {
        origin_node: origin.into(),
        origin_unit: origin.into(),
        peer_node: peer.into(),
        peer_unit: peer.into(),
        code: code.into(),
        made_at,
        ..entry(doc, n, None)
    }
}

fn ids(list: &[hopluu_store::quarantine::QuarantineEntry]) -> Vec<u8> {
    list.iter().map(|e| e.hash.0[0]).collect()
}

pub async fn case_held_entries_are_selected_by_maker_reason_document_and_decision(
    store: Store,
) -> Result<()> {
    small_tree(&store).await?;
    // A decision that sealed roster/g2 (and nothing else).
    let mut rec = recorded("d-move", "12/QĐ-LĐLĐ", "p1", "2025-07-01");
    rec.seals = vec![Seal {
        doc: "roster/g2".into(),
        heads: vec![ChangeHash([9; 32]).to_string()],
    }];
    put(&store, &rec).await?;
    let mut tx = store.begin().await?;
    tx.quarantine(&held("roster/g2", 1, "c1", "c1", "not-authorised", 0), 10)
        .await?;
    let mut waits = held("roster/g2", 2, "c1", "c1", "waits", 0);
    waits.waits_for = Some(ChangeHash([1; 32]));
    tx.quarantine(&waits, 11).await?;
    tx.quarantine(&held("award/a1", 3, "c2", "c1", "not-authorised", 0), 12)
        .await?;
    tx.quarantine(&held("campaign/c1", 4, "c1", "c1", "unknown-unit", 0), 13)
        .await?;
    tx.commit().await?;

    let list = |f: QuarantineFilter| {
        let store = store.clone();
        async move { Ok::<_, anyhow::Error>(ids(&store.quarantine_list(&f).await?)) }
    };
    let by_maker = list(QuarantineFilter {
        origin_node: Some("c1".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(by_maker == [1, 2, 4], "made by c1: {by_maker:?}");
    let by_reason = list(QuarantineFilter {
        code: Some("not-authorised".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(by_reason == [1, 3], "not authorised: {by_reason:?}");
    let both = list(QuarantineFilter {
        origin_node: Some("c1".into()),
        code: Some("not-authorised".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(both == [1], "every filter must match: {both:?}");
    let sealed = list(QuarantineFilter {
        decision: Some("d-move".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(sealed == [1, 2], "the documents d-move sealed: {sealed:?}");
    let other = list(QuarantineFilter {
        decision: Some("d-other".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(
        other.is_empty(),
        "a decision that sealed nothing: {other:?}"
    );
    let waiting_in_g2 = list(QuarantineFilter {
        doc: Some("roster/g2".into()),
        code: Some("waits".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(waiting_in_g2 == [2]);

    // For a decision: held entries only, with their bytes, oldest first.
    let c1 = QuarantineFilter {
        origin_node: Some("c1".into()),
        ..QuarantineFilter::default()
    };
    let mut tx = store.begin().await?;
    let first_two = tx.quarantine_matching(&c1, 2).await?;
    ensure!(ids(&first_two) == [1, 2], "{first_two:?}");
    ensure!(first_two[0].change.as_deref() == Some(&[1u8; 10][..]));
    ensure!(tx.quarantine_matching_count(&c1).await? == 3);
    tx.quarantine_decide(
        &"campaign/c1".parse()?,
        &ChangeHash([4; 32]),
        QuarantineState::Discarded,
        "admin",
        20,
    )
    .await?;
    ensure!(
        tx.quarantine_matching_count(&c1).await? == 2,
        "a decided entry is no longer selected"
    );
    let after = QuarantineFilter {
        after_id: first_two[0].id,
        ..c1.clone()
    };
    ensure!(ids(&tx.quarantine_matching(&after, 10).await?) == [2]);
    tx.commit().await?;
    // Listing still finds it in its new state.
    let discarded = list(QuarantineFilter {
        state: Some(QuarantineState::Discarded),
        origin_node: Some("c1".into()),
        ..QuarantineFilter::default()
    })
    .await?;
    ensure!(discarded == [4], "{discarded:?}");
    Ok(())
}

pub async fn case_what_is_held_of_each_peers_changes_is_counted(store: Store) -> Result<()> {
    ensure!(store.held_from("c1").await? == HeldFrom::default());
    let t = now();
    let mut tx = store.begin().await?;
    // Made an hour before it arrived; made "after" it arrived (a clock
    // ahead): counted from its arrival; no time at all: from its arrival.
    tx.quarantine(
        &held("roster/g2", 1, "c1", "c1", "not-authorised", t - 3_600_000),
        t,
    )
    .await?;
    tx.quarantine(&held("roster/g2", 2, "c1", "c1", "waits", t + 5_000), t)
        .await?;
    tx.quarantine(&held("award/a1", 3, "g9", "c1", "not-authorised", 0), t)
        .await?;
    tx.quarantine(&held("award/a2", 4, "c2", "c2", "not-authorised", 0), t + 1)
        .await?;
    tx.commit().await?;
    let c1 = store.held_from("c1").await?;
    ensure!(
        c1 == HeldFrom {
            changes: 3,
            docs: 2,
            oldest_millis: t - 3_600_000,
        },
        "{c1:?}"
    );
    let all = store.held_by_peer().await?;
    ensure!(all.len() == 2, "{all:?}");
    ensure!(
        all["c2"]
            == HeldFrom {
                changes: 1,
                docs: 1,
                oldest_millis: t + 1,
            }
    );
    // Decided entries are not held any more.
    let mut tx = store.begin().await?;
    tx.quarantine_decide(
        &"roster/g2".parse()?,
        &ChangeHash([1; 32]),
        QuarantineState::Released,
        "admin",
        t,
    )
    .await?;
    tx.quarantine_decide(
        &"award/a2".parse()?,
        &ChangeHash([4; 32]),
        QuarantineState::Discarded,
        "admin",
        t,
    )
    .await?;
    tx.commit().await?;
    let c1 = store.held_from("c1").await?;
    ensure!(
        c1 == HeldFrom {
            changes: 2,
            docs: 2,
            oldest_millis: t,
        },
        "{c1:?}"
    );
    ensure!(store.held_from("c2").await? == HeldFrom::default());
    ensure!(!store.held_by_peer().await?.contains_key("c2"));
    Ok(())
}

pub async fn case_the_generation_moves_with_commits_that_wrote_the_quarantine(
    store: Store,
) -> Result<()> {
    let g0 = store.quarantine_generation();
    let mut tx = store.begin().await?;
    tx.quarantine(&entry("campaign/c1", 1, None), 5).await?;
    drop(tx);
    ensure!(
        store.quarantine_generation() == g0,
        "a rollback is not a write"
    );
    let mut tx = store.begin().await?;
    tx.quarantine(&entry("campaign/c1", 1, None), 5).await?;
    tx.commit().await?;
    let g1 = store.quarantine_generation();
    ensure!(g1 > g0);
    small_tree(&store).await?;
    ensure!(
        store.quarantine_generation() == g1,
        "a commit that did not write the quarantine"
    );
    let doc: DocId = "campaign/c1".parse()?;
    let mut tx = store.begin().await?;
    // A decision on an entry that is not held writes nothing.
    ensure!(
        !tx.quarantine_decide(
            &doc,
            &ChangeHash([7; 32]),
            QuarantineState::Released,
            "a",
            6
        )
        .await?
    );
    tx.commit().await?;
    ensure!(store.quarantine_generation() == g1);
    let mut tx = store.begin().await?;
    tx.quarantine_decide(
        &doc,
        &ChangeHash([1; 32]),
        QuarantineState::Discarded,
        "a",
        6,
    )
    .await?;
    tx.commit().await?;
    ensure!(store.quarantine_generation() > g1);
    Ok(())
}
