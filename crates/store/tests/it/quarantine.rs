//! The quarantine table, on both backends: entries written with their
//! transaction (and gone with a rollback), listed and filtered, shown with
//! their bytes, decided once, and found again by document for the gate.

use anyhow::{Result, ensure};
use automerge::ChangeHash;
use hopluu_model::DocId;
use hopluu_store::Store;
use hopluu_store::quarantine::{NewQuarantine, QuarantineFilter, QuarantineState};

suite!(
    case_quarantine_commits_with_its_transaction,
    case_quarantine_entries_are_listed_decided_and_found,
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
