//! The unit tree: the closure table through create, move and close, and
//! units whose documents arrive before their parent's.

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use hopluu_model::unit::{self, UnitStatus};
use hopluu_store::Store;
use hopluu_store::read::UnitRow;
use sqlx::Row;

use crate::harness::*;

suite!(
    case_closure_follows_create_move_close,
    case_child_before_parent_is_linked,
);

/// `(id, depth)` of `list_units`, checked to come nearest first.
async fn listed(
    store: &Store,
    root: &str,
    closed: bool,
    depth: Option<u32>,
) -> Result<Vec<(String, u32)>> {
    let rows = store.list_units(&uid(root), closed, depth).await?;
    ensure!(
        rows.windows(2).all(|w| w[0].depth <= w[1].depth),
        "list_units({root}) is not nearest first: {rows:?}"
    );
    let mut out: Vec<(String, u32)> = rows.iter().map(|r| (r.id.to_string(), r.depth)).collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(out)
}

fn want(v: &[(&str, u32)]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = v.iter().map(|(s, d)| (s.to_string(), *d)).collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out
}

/// `(ancestor, depth)` rows of the closure table for `unit`.
async fn ancestors(store: &Store, unit: &str) -> Result<Vec<(String, u32)>> {
    let rows = sqlx::query(
        "SELECT ancestor, depth FROM unit_closure WHERE descendant = $1 ORDER BY depth",
    )
    .bind(unit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u32))
        .collect())
}

async fn move_unit(store: &Store, id: &str, to: &str) -> Result<()> {
    write(store, &unit_doc(id), |doc, a| {
        unit::move_to(
            doc,
            a,
            &uid(to),
            &decision("1656/QĐ", "2025-06-30", "2025-07-01"),
        )
    })
    .await?;
    Ok(())
}

pub async fn case_closure_follows_create_move_close(store: Store) -> Result<()> {
    let s = &store;
    small_tree(s).await?;
    create_unit(s, "d2", "LĐLĐ quận Ninh Kiều", "district", Some("p2")).await?;
    create_unit(s, "g3", "CĐCS Bệnh viện Đa khoa", "grassroots", Some("d2")).await?;

    ensure!(
        listed(s, "vn", true, None).await?
            == want(&[
                ("vn", 0),
                ("p1", 1),
                ("p2", 1),
                ("d1", 2),
                ("d2", 2),
                ("g1", 3),
                ("g2", 3),
                ("g3", 3)
            ]),
        "the whole tree"
    );
    ensure!(
        listed(s, "p1", true, Some(1)).await? == want(&[("p1", 0), ("d1", 1)]),
        "max depth"
    );
    ensure!(
        listed(s, "g1", true, None).await? == want(&[("g1", 0)]),
        "a leaf"
    );
    let rows = s.list_units(&uid("d1"), true, None).await?;
    let g1 = rows.iter().find(|r| r.id.as_str() == "g1").context("g1")?;
    ensure!(
        *g1 == UnitRow {
            id: uid("g1"),
            name: "CĐCS Công ty Mía đường".to_owned(),
            kind: "grassroots".to_owned(),
            parent: Some(uid("d1")),
            status: UnitStatus::Active,
            successors: vec![],
            closed_on: String::new(),
            close_reason: String::new(),
            depth: 1,
        },
        "row of g1: {g1:?}"
    );
    ensure!(
        s.list_units(&uid("vn"), true, Some(0)).await?[0]
            .parent
            .is_none(),
        "the root has no parent"
    );

    // Move a district with its two grassroots unions to the other province.
    move_unit(s, "d1", "p2").await?;
    ensure!(
        listed(s, "p1", true, None).await? == want(&[("p1", 0)]),
        "p1 is empty"
    );
    ensure!(
        listed(s, "p2", true, None).await?
            == want(&[
                ("p2", 0),
                ("d1", 1),
                ("d2", 1),
                ("g1", 2),
                ("g2", 2),
                ("g3", 2)
            ]),
        "p2 holds the moved subtree"
    );
    ensure!(
        ancestors(s, "g1").await? == want(&[("g1", 0), ("d1", 1), ("p2", 2), ("vn", 3)]),
        "a grandchild's closure rows moved with it: {:?}",
        ancestors(s, "g1").await?
    );
    let d1 = s.unit(&uid("d1")).await?.context("d1")?;
    ensure!(
        d1.parent == Some(uid("p2")) && d1.parents.len() == 2,
        "d1's parent history"
    );
    let tree = s.unit_tree().await?;
    ensure!(
        tree.get(&uid("d1")).and_then(|n| n.parent.clone()) == Some(uid("p2")),
        "the unit tree's parent of d1"
    );
    ensure!(
        tree.is_within(&uid("g1"), &uid("p2")),
        "the unit tree: g1 under p2"
    );
    ensure!(
        s.list_units(&uid("p2"), true, Some(1))
            .await?
            .iter()
            .any(|r| r.id.as_str() == "d1" && r.parent == Some(uid("p2"))),
        "the projection's parent"
    );

    // Move one grassroots union between districts, then the district back.
    move_unit(s, "g1", "d2").await?;
    move_unit(s, "d1", "p1").await?;
    ensure!(
        listed(s, "vn", true, None).await?
            == want(&[
                ("vn", 0),
                ("p1", 1),
                ("p2", 1),
                ("d1", 2),
                ("d2", 2),
                ("g1", 3),
                ("g2", 3),
                ("g3", 3)
            ]),
        "the tree after two more moves"
    );
    ensure!(
        listed(s, "d1", true, None).await? == want(&[("d1", 0), ("g2", 1)]),
        "d1"
    );
    ensure!(
        listed(s, "d2", true, None).await? == want(&[("d2", 0), ("g1", 1), ("g3", 1)]),
        "d2"
    );
    ensure!(
        ancestors(s, "g2").await? == want(&[("g2", 0), ("d1", 1), ("p1", 2), ("vn", 3)]),
        "g2 moved back with d1"
    );

    // Close a grassroots union into a successor: it stays, listed only
    // with closed units.
    write(s, &unit_doc("g2"), |doc, a| {
        unit::close(
            doc,
            a,
            "Giải thể",
            &[uid("g1")],
            false,
            &decision("88/QĐ", "2025-08-30", "2025-09-01"),
        )
    })
    .await?;
    ensure!(
        listed(s, "d1", false, None).await? == want(&[("d1", 0)]),
        "closed units hidden"
    );
    let rows = s.list_units(&uid("d1"), true, None).await?;
    let g2 = rows
        .iter()
        .find(|r| r.id.as_str() == "g2")
        .context("g2 listed with closed")?;
    ensure!(
        g2.status == UnitStatus::Closed
            && g2.successors == [uid("g1")]
            && g2.closed_on == "2025-09-01"
            && g2.close_reason == "Giải thể",
        "closed row: {g2:?}"
    );
    ensure!(
        listed(s, "vn", false, None).await?.len() == 7,
        "seven active units"
    );
    Ok(())
}

/// A unit document made elsewhere, as replication delivers it.
fn made_elsewhere(id: &str, kind: &str, parent: &str) -> Result<Automerge> {
    let mut doc = Automerge::new();
    let elsewhere = hopluu_model::Author {
        actor: hopluu_model::Author::actor_for(
            "node-other",
            &hopluu_model::UnitId::parse("unit", "vn").unwrap(),
            &[9, 9, 9, 9],
        ),
        time_millis: 0,
    };
    unit::create(
        &mut doc,
        &elsewhere,
        &new_unit(id, &format!("Đơn vị {id}"), kind, Some(parent)),
    )?;
    Ok(doc)
}

/// Applies documents received from a peer in one commit.
async fn receive(store: &Store, docs: &[(&str, &Automerge)]) -> Result<()> {
    let mut tx = store.begin().await?;
    for (id, incoming) in docs {
        tx.doc(&unit_doc(id))
            .await?
            .load_incremental(&incoming.save())?;
    }
    let done = tx.commit().await?;
    ensure!(done.docs.len() == docs.len(), "stored {:?}", done.docs);
    Ok(())
}

pub async fn case_child_before_parent_is_linked(store: Store) -> Result<()> {
    let s = &store;
    create_unit(s, "vn", "Tổng Liên đoàn", "central", None).await?;
    let p1 = made_elsewhere("p1", "provincial", "vn")?;
    let d1 = made_elsewhere("d1", "district", "p1")?;
    let g1 = made_elsewhere("g1", "grassroots", "d1")?;
    let g2 = made_elsewhere("g2", "grassroots", "d1")?;

    receive(s, &[("g1", &g1)]).await?;
    ensure!(
        listed(s, "vn", true, None).await? == want(&[("vn", 0)]),
        "g1 is not under vn yet"
    );
    ensure!(
        listed(s, "g1", true, None).await? == want(&[("g1", 0)]),
        "g1 alone"
    );
    receive(s, &[("d1", &d1)]).await?;
    ensure!(
        listed(s, "d1", true, None).await? == want(&[("d1", 0), ("g1", 1)]),
        "d1 adopts g1"
    );
    ensure!(
        listed(s, "vn", true, None).await? == want(&[("vn", 0)]),
        "d1 is not under vn yet"
    );
    receive(s, &[("p1", &p1)]).await?;
    ensure!(
        listed(s, "vn", true, None).await? == want(&[("vn", 0), ("p1", 1), ("d1", 2), ("g1", 3)]),
        "the whole chain once the province arrives"
    );
    ensure!(
        ancestors(s, "g1").await? == want(&[("g1", 0), ("d1", 1), ("p1", 2), ("vn", 3)]),
        "g1's closure rows"
    );
    receive(s, &[("g2", &g2)]).await?;
    ensure!(
        listed(s, "p1", true, None).await? == want(&[("p1", 0), ("d1", 1), ("g1", 2), ("g2", 2)]),
        "a child arriving after its parent"
    );

    // A parent and its child in one commit, the child stored first (the
    // commit goes in document id order: unit/a-child < unit/z-parent).
    let child = made_elsewhere("a-child", "grassroots", "z-parent")?;
    let parent = made_elsewhere("z-parent", "district", "p1")?;
    receive(s, &[("z-parent", &parent), ("a-child", &child)]).await?;
    ensure!(
        ancestors(s, "a-child").await?
            == want(&[("a-child", 0), ("z-parent", 1), ("p1", 2), ("vn", 3)]),
        "a child committed with its parent: {:?}",
        ancestors(s, "a-child").await?
    );
    ensure!(
        s.list_units(&uid("a-child"), true, None).await?[0].parent == Some(uid("z-parent")),
        "parent"
    );
    Ok(())
}
