//! Reorganisation decisions in the store: the `decision/{id}` document's
//! projection (listed, found by id and by number, within a subtree), a
//! roster's members ceased in one change (`member::end_many`), the
//! counts a decision's dry run reads, and its seals found by document
//! (what the replication gate reads).

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use hopluu_model::member::{self, MemberStatus};
use hopluu_model::reorg::{self, Outcome, PlanInput, Recorded, StepInput};
use hopluu_model::{DecisionId, DocId};
use hopluu_store::Store;
use hopluu_store::decisions::SealHeads;

use crate::harness::*;

suite!(
    case_a_decision_is_listed_and_found,
    case_a_decisions_seals_are_found_by_document,
    case_a_roster_ceases_in_one_change,
    case_the_dry_run_counts,
    case_an_old_hosts_seal_counts_once_its_decision_is_held,
);

pub(crate) fn recorded(id: &str, number: &str, issuing: &str, effective_on: &str) -> Recorded {
    Recorded {
        plan: PlanInput {
            id: id.to_owned(),
            number: number.to_owned(),
            title: "Sắp xếp tổ chức".to_owned(),
            decided_on: "2025-08-27".to_owned(),
            effective_on: effective_on.to_owned(),
            issuing_unit: issuing.to_owned(),
            steps: vec![StepInput {
                kind: "move".to_owned(),
                units: vec!["g1".to_owned()],
                to: "p2".to_owned(),
                ..StepInput::default()
            }],
        },
        id: DecisionId::parse("id", id).unwrap(),
        applied_at: "2025-08-27T09:00:00Z".to_owned(),
        applied_by: "vn".to_owned(),
        outcome: Outcome {
            units_moved: 1,
            ..Outcome::default()
        },
        seals: Vec::new(),
        given_up: Vec::new(),
    }
}

pub(crate) async fn put(store: &Store, rec: &Recorded) -> Result<()> {
    write(store, &DocId::Decision(rec.id.clone()), |doc, a| {
        reorg::write(doc, a, rec)
    })
    .await
}

async fn case_a_decision_is_listed_and_found(store: Store) -> Result<()> {
    small_tree(&store).await?;
    put(
        &store,
        &recorded("d-merger", "759/QĐ-TLĐ", "vn", "2025-07-01"),
    )
    .await?;
    put(
        &store,
        &recorded("d-district", "12/QĐ-LĐLĐ", "p1", "2025-08-01"),
    )
    .await?;
    put(
        &store,
        &recorded("d-other", "12/QĐ-LĐLĐ", "p2", "2025-03-01"),
    )
    .await?;
    let all = store.list_decisions(None).await?;
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ensure!(
        ids == ["d-district", "d-merger", "d-other"],
        "newest effective date first: {ids:?}"
    );
    let within = store.list_decisions(Some(&uid("p1"))).await?;
    ensure!(
        within.len() == 1 && within[0].id == "d-district",
        "{within:?}"
    );
    let row = store
        .decision_row(&DecisionId::parse("id", "d-merger")?)
        .await?
        .expect("listed");
    ensure!(row.number == "759/QĐ-TLĐ" && row.steps == 1 && row.units_moved == 1);
    ensure!(row.applied_by == "vn" && row.effective_on == "2025-07-01");
    let numbered = store.decisions_numbered("12/QĐ-LĐLĐ").await?;
    ensure!(numbered.len() == 2, "{numbered:?}");
    Ok(())
}

async fn case_a_roster_ceases_in_one_change(store: Store) -> Result<()> {
    small_tree(&store).await?;
    for i in 0..5 {
        add_member(
            &store,
            "g1",
            &format!("m{i}"),
            "Lê Văn Tám",
            "nam",
            &format!("HG-{i:04}"),
        )
        .await?;
    }
    end_member(
        &store,
        "m4",
        "g1",
        MemberStatus::Left,
        "Nghỉ hưu",
        "2024-01-01",
    )
    .await?;
    let roster = roster_of(&store, "m0", "g1").await?;
    let before = store.doc_heads(&roster).await?.unwrap_or_default();
    let ended = write(&store, &roster, |doc, a| {
        member::end_many(
            doc,
            a,
            None,
            MemberStatus::Ceased,
            "Giải thể công đoàn cơ sở",
            d("2025-06-01"),
            "759/QĐ-TLĐ (d-merger)",
        )
    })
    .await?;
    ensure!(ended.len() == 4, "the four active members: {}", ended.len());
    let after = store.doc_heads(&roster).await?.unwrap_or_default();
    ensure!(after.len() == 1 && after != before, "one change");
    let m = store
        .member(&store.member_locations(&mid("m0")).await?[0])
        .await?
        .expect("m0");
    ensure!(m.status == MemberStatus::Ceased && m.status_on == Some(d("2025-06-01")));
    let last = m.history.last().expect("an event");
    ensure!(
        last.kind == "ceased" && last.decision == "759/QĐ-TLĐ (d-merger)",
        "{last:?}"
    );
    let counts = store.member_status_counts(&[uid("g1")]).await?;
    let want: BTreeMap<String, u64> = [("ceased".to_owned(), 4), ("left".to_owned(), 1)].into();
    ensure!(counts == want, "{counts:?}");
    // A named member who is not active refuses the whole change.
    let refused = write(&store, &roster, |doc, a| {
        member::end_many(
            doc,
            a,
            Some(&[mid("m4")]),
            MemberStatus::Ceased,
            "x",
            d("2025-06-01"),
            "",
        )
    })
    .await;
    ensure!(refused.is_err(), "m4 left already");
    Ok(())
}

async fn case_the_dry_run_counts(store: Store) -> Result<()> {
    small_tree(&store).await?;
    for i in 0..3 {
        add_member(
            &store,
            "g1",
            &format!("a{i}"),
            "Trần Thị Hoa",
            "nữ",
            &format!("A-{i:04}"),
        )
        .await?;
    }
    add_member(&store, "g2", "b0", "Phạm Văn Nam", "nam", "B-0001").await?;
    end_member(
        &store,
        "a2",
        "g1",
        MemberStatus::Left,
        "Chuyển công tác",
        "2024-05-01",
    )
    .await?;
    let active = store
        .active_member_counts(&[uid("g1"), uid("g2"), uid("d1")])
        .await?;
    ensure!(active.get(&uid("g1")) == Some(&2) && active.get(&uid("g2")) == Some(&1));
    ensure!(
        !active.contains_key(&uid("d1")),
        "a unit without members is absent"
    );
    let mut docs: BTreeMap<&str, u64> = BTreeMap::new();
    let owned = store.docs_heads_owned_by(&[uid("g1"), uid("g2")]).await?;
    for (doc, heads) in &owned {
        ensure!(!heads.is_empty(), "{doc} has heads");
        *docs.entry(doc.split('/').next().unwrap_or("")).or_default() += 1;
    }
    ensure!(
        docs.get("roster") == Some(&2) && docs.get("roster-private") == Some(&2),
        "{docs:?}"
    );
    let locs = store
        .active_locations(&[mid("a0"), mid("a2"), mid("b0")])
        .await?;
    ensure!(locs.len() == 2, "a2 left: {locs:?}");
    ensure!(locs[&mid("b0")].unit == uid("g2"));
    Ok(())
}

async fn case_a_decisions_seals_are_found_by_document(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m0", "Lê Văn Tám", "nam", "HG-0001").await?;
    let roster = roster_of(&store, "m0", "g1").await?;
    let heads = store.doc_heads(&roster).await?.expect("stored");
    let owned = store.docs_heads_owned_by(&[uid("g1")]).await?;
    ensure!(
        owned
            .iter()
            .any(|(d, h)| *d == roster.to_string() && *h == heads),
        "{owned:?}"
    );
    // Nothing sealed yet.
    let mut tx = store.begin().await?;
    ensure!(
        tx.sealed_heads(std::slice::from_ref(&roster))
            .await?
            .is_empty()
    );
    drop(tx);
    let mut rec = recorded("d-move", "12/QĐ-LĐLĐ", "p1", "2025-07-01");
    rec.seals = vec![reorg::Seal::of(roster.to_string(), &heads)];
    put(&store, &rec).await?;
    let mut tx = store.begin().await?;
    let sealed = tx.sealed_heads(&[roster.clone(), unit_doc("g2")]).await?;
    ensure!(
        sealed.len() == 1
            && sealed[&roster]
                == vec![SealHeads {
                    heads: heads.clone(),
                    by: None
                }],
        "{sealed:?}"
    );
    drop(tx);
    // Read again after a restart (the flag comes from the table).
    let store = reopen(&store).await?;
    let mut tx = store.begin().await?;
    ensure!(tx.sealed_heads(std::slice::from_ref(&roster)).await?.len() == 1);
    Ok(())
}

/// An old host's seal, in its node record, vouches for that node's
/// changes (`by`), and counts only once the decision it names is held.
async fn case_an_old_hosts_seal_counts_once_its_decision_is_held(store: Store) -> Result<()> {
    use hopluu_model::hosting::{self, HostSeal, NodeInfo, NodeStatus};
    small_tree(&store).await?;
    add_member(&store, "g1", "m0", "Lê Văn Tám", "nam", "HG-0001").await?;
    let roster = roster_of(&store, "m0", "g1").await?;
    let heads = store.doc_heads(&roster).await?.expect("stored");
    let node = DocId::Node(hopluu_model::NodeId::parse("n", "p1-node")?);
    write(&store, &node, |doc, a| {
        hosting::publish(
            doc,
            a,
            &NodeInfo {
                id: "p1-node".into(),
                unit: uid("p1"),
                path: vec![uid("vn")],
                upstream: "vn".into(),
                address: String::new(),
                status: NodeStatus::Active,
                retired_at: String::new(),
            },
        )?;
        hosting::seal(
            doc,
            a,
            &HostSeal {
                decision: DecisionId::parse("d", "d-move")?,
                at: "2025-07-02T08:00:00Z".into(),
                docs: vec![reorg::Seal::of(roster.to_string(), &heads)],
            },
        )
    })
    .await?;
    let listed = store.host_seals("d-move").await?;
    ensure!(
        listed.len() == 1 && listed[0].node == "p1-node",
        "{listed:?}"
    );
    // The decision is not held here yet: the seal vouches for nothing.
    let mut tx = store.begin().await?;
    ensure!(
        tx.sealed_heads(std::slice::from_ref(&roster))
            .await?
            .is_empty()
    );
    drop(tx);
    put(
        &store,
        &recorded("d-move", "12/QĐ-LĐLĐ", "p1", "2025-07-01"),
    )
    .await?;
    let mut tx = store.begin().await?;
    let sealed = tx.sealed_heads(std::slice::from_ref(&roster)).await?;
    ensure!(
        sealed[&roster]
            == vec![SealHeads {
                heads,
                by: Some("p1-node".into())
            }],
        "{sealed:?}"
    );
    drop(tx);
    ensure!(
        store.old_hosts_for(&uid("p2")).await?.is_empty(),
        "g1 is not below p2 yet"
    );
    Ok(())
}
