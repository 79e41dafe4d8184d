//! Reports as of a date, over the province of [`super::province`] and its
//! history: the 2025 merger of p1 (Hậu Giang) into p2 (Cần Thơ), a
//! retroactive move, a cessation and a transfer, a closed district, awards
//! decided and revoked.

use anyhow::{Result, ensure};
use hopluu_model::am;
use hopluu_model::award::Recipient;
use hopluu_model::doc::edit;
use hopluu_model::emulation::InitiativeStatus::Valid;
use hopluu_model::member::MemberStatus;
use hopluu_model::unit;
use hopluu_store::Store;
use hopluu_store::report::MembersRow;
use sqlx::Row;

use super::{awards_row, by_unit, initiatives_row, province, works_row};
use crate::harness::*;

suite!(
    case_merger_as_of,
    case_retroactive_move_as_of,
    case_cessation_and_transfer_as_of,
    case_closed_unit_as_of,
    case_awards_as_of,
    case_migration_backfills_links_and_since,
);

/// Adds members (joined 2012-03-01): `(unit, id, gender)`.
async fn members(s: &Store, list: &[(&str, &str, &str)]) -> Result<()> {
    for (u, id, gender) in list {
        let card = format!("HG-{}", &id[2..]).to_uppercase();
        add_member(s, u, id, &format!("Thành viên {id}"), gender, &card).await?;
    }
    Ok(())
}

/// The members report's rows of `unit` on `date`, by unit, and its total.
async fn members_on(
    s: &Store,
    unit: &str,
    date: &str,
) -> Result<(Vec<(String, [u64; 8])>, [u64; 8])> {
    let (rows, total) = s.members_report(&uid(unit), d(date)).await?;
    let n = |r: &MembersRow| {
        [
            r.total,
            r.active,
            r.transferred,
            r.left,
            r.ceased,
            r.male,
            r.female,
            r.other_gender,
        ]
    };
    let mut out: Vec<(String, [u64; 8])> = rows.iter().map(|r| (r.unit_id.clone(), n(r))).collect();
    out.sort();
    Ok((out, n(&total)))
}

fn rows(list: &[(&str, [u64; 8])]) -> Vec<(String, [u64; 8])> {
    list.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect()
}

/// p1 merged into p2 on 2025-07-01: d1 and d2 moved to p2 effective that
/// day, p1 closed as merged. Reports before the day see p1 with its
/// districts; from the day, p2 with them and no p1. A 2023 campaign's
/// ranking is the same after the merger as before it.
pub async fn case_merger_as_of(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    create_unit(s, "g5", "CĐCS Cảng Cái Cui", "grassroots", Some("p2")).await?;
    members(
        s,
        &[
            ("g1", "m-a1", "nam"),
            ("g1", "m-a2", "nữ"),
            ("g3", "m-c1", "nam"),
            ("g5", "m-e1", "nữ"),
        ],
    )
    .await?;
    launch(s, "c23", "vn", "vn").await?;
    set_plans(s, "c23", &[("g1", 2, 0), ("g3", 2, 0), ("g5", 4, 0)]).await?;
    for (i, u) in ["g1", "g1", "g3", "g5"].into_iter().enumerate() {
        initiative(s, u, "c23", &format!("Sáng kiến {i}"), 1_000_000, Valid).await?;
    }
    work(s, "g3", "c23", "Giếng nước", 15_000_000, true).await?;

    let ranking_2023 = s
        .initiatives_report(&cid("c23"), &uid("vn"), d("2023-12-31"))
        .await?;
    ensure!(
        by_unit(&ranking_2023.0, |r| &r.unit_id)
            == by_unit(
                &[
                    initiatives_row("p1", 3, 3, 4, 75.0, 1),
                    initiatives_row("p2", 1, 1, 4, 25.0, 2),
                ],
                |r| &r.unit_id
            ),
        "2023, before the merger: {ranking_2023:#?}"
    );

    move_unit_on(s, "d1", "p2", "2025-06-20", "2025-07-01").await?;
    move_unit_on(s, "d2", "p2", "2025-06-20", "2025-07-01").await?;
    close_unit_on(s, "p1", &["p2"], true, "2025-07-01").await?;

    // The 2023 ranking stays the 2023 ranking.
    let after = s
        .initiatives_report(&cid("c23"), &uid("vn"), d("2023-12-31"))
        .await?;
    ensure!(
        after == ranking_2023,
        "2023 after the merger: {after:#?}\nbefore: {ranking_2023:#?}"
    );
    // From the merger on, p2 holds everything and p1 is no row.
    let (r, total) = s
        .initiatives_report(&cid("c23"), &uid("vn"), d("2025-07-01"))
        .await?;
    ensure!(
        r == [initiatives_row("p2", 4, 4, 8, 50.0, 1)],
        "on the merger: {r:#?}"
    );
    ensure!((total.valid, total.plan) == (4, 8), "{total:?}");

    let one = |m: u64, f: u64| [m + f, m + f, 0, 0, 0, m, f, 0];
    let (r, total) = members_on(s, "vn", "2025-06-30").await?;
    ensure!(
        r == rows(&[("p1", one(2, 1)), ("p2", one(0, 1))]),
        "vn the day before: {r:?}"
    );
    ensure!(total == one(2, 2), "vn total the day before: {total:?}");
    let (r, total) = members_on(s, "vn", "2025-07-01").await?;
    ensure!(r == rows(&[("p2", one(2, 2))]), "vn on the day: {r:?}");
    ensure!(total == one(2, 2), "vn total on the day: {total:?}");

    let (r, _) = members_on(s, "p2", "2025-06-30").await?;
    ensure!(r == rows(&[("g5", one(0, 1))]), "p2 the day before: {r:?}");
    let (r, total) = members_on(s, "p2", "2025-07-01").await?;
    ensure!(
        r == rows(&[("d1", one(1, 1)), ("d2", one(1, 0)), ("g5", one(0, 1))]),
        "p2 on the day: {r:?}"
    );
    ensure!(total == one(2, 2), "p2 total on the day: {total:?}");
    let (r, _) = members_on(s, "p1", "2025-06-30").await?;
    ensure!(
        r == rows(&[("d1", one(1, 1)), ("d2", one(1, 0))]),
        "p1 the day before: {r:?}"
    );
    let (r, total) = members_on(s, "p1", "2025-07-01").await?;
    ensure!(
        r.is_empty() && total == [0; 8],
        "p1 holds nothing from its merger: {r:?}"
    );

    // Works count from their completion (2025-04-30), under the tree of
    // the date.
    let (r, _) = s.works_report(&uid("vn"), None, d("2025-04-29")).await?;
    ensure!(r.iter().all(|w| w.count == 0), "before completion: {r:#?}");
    let (r, _) = s.works_report(&uid("vn"), None, d("2025-06-30")).await?;
    ensure!(
        by_unit(&r, |w| &w.unit_id)
            == by_unit(
                &[works_row("p1", 1, 15_000_000, 1), works_row("p2", 0, 0, 0)],
                |w| &w.unit_id
            ),
        "works the day before the merger: {r:#?}"
    );
    let (r, total) = s
        .works_report(&uid("vn"), Some(&cid("c23")), d("2025-07-01"))
        .await?;
    ensure!(
        r == [works_row("p2", 1, 15_000_000, 1)],
        "works on the day: {r:#?}"
    );
    ensure!(total.count == 1, "{total:?}");
    Ok(())
}

/// g2 moved from d1 to d2 by a decision of 27/8 effective 1/7; then g4
/// moved to d2 from 1/9 by one decision, and to p2 from 15/7 by a later
/// one, which replaces the first.
pub async fn case_retroactive_move_as_of(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    members(s, &[("g2", "m-b1", "nam"), ("g4", "m-d1", "nữ")]).await?;
    move_unit_on(s, "g2", "d2", "2025-08-27", "2025-07-01").await?;

    let m = [1, 1, 0, 0, 0, 1, 0, 0];
    let f = [1, 1, 0, 0, 0, 0, 1, 0];
    let (r, _) = members_on(s, "d1", "2025-06-30").await?;
    ensure!(
        r == rows(&[("g1", [0; 8]), ("g2", m), ("g4", f)]),
        "d1 the day before: {r:?}"
    );
    let (r, _) = members_on(s, "d1", "2025-07-01").await?;
    ensure!(
        r == rows(&[("g1", [0; 8]), ("g4", f)]),
        "d1 from the move: {r:?}"
    );
    let (r, _) = members_on(s, "d2", "2025-07-01").await?;
    ensure!(
        r == rows(&[("g2", m), ("g3", [0; 8])]),
        "d2 from the move: {r:?}"
    );
    let (r, _) = members_on(s, "p1", "2025-06-30").await?;
    let both = [2, 2, 0, 0, 0, 1, 1, 0];
    ensure!(
        r == rows(&[("d1", both), ("d2", [0; 8])]),
        "p1 the day before: {r:?}"
    );
    let (r, _) = members_on(s, "p1", "2025-07-01").await?;
    ensure!(
        r == rows(&[("d1", f), ("d2", m)]),
        "p1 from the move: {r:?}"
    );

    move_unit_on(s, "g4", "d2", "2025-08-01", "2025-09-01").await?;
    move_unit_on(s, "g4", "p2", "2025-08-28", "2025-07-15").await?;
    let (r, _) = members_on(s, "d1", "2025-07-14").await?;
    ensure!(
        r == rows(&[("g1", [0; 8]), ("g4", f)]),
        "d1 before the second move: {r:?}"
    );
    let (r, _) = members_on(s, "p2", "2025-07-15").await?;
    ensure!(r == rows(&[("g4", f)]), "p2 from 15/7: {r:?}");
    let (r, _) = members_on(s, "d2", "2025-09-01").await?;
    ensure!(
        r == rows(&[("g2", m), ("g3", [0; 8])]),
        "the move to d2 from 1/9 was replaced: {r:?}"
    );
    let (r, _) = members_on(s, "p2", "2025-09-01").await?;
    ensure!(r == rows(&[("g4", f)]), "p2 today: {r:?}");
    Ok(())
}

/// A cessation counts from its day (the day before, the member is still
/// active); a transferred member counts in the new unit from the day of
/// the transfer and as transferred in the old one; nobody counts before
/// joining.
pub async fn case_cessation_and_transfer_as_of(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    members(s, &[("g1", "m-a1", "nam"), ("g1", "m-a2", "nữ")]).await?;
    end_member(
        s,
        "m-a2",
        "g1",
        MemberStatus::Ceased,
        "giải thể tổ",
        "2025-04-01",
    )
    .await?;
    transfer(s, "m-a1", "g1", "g3", "2025-05-01").await?;

    let g1 = async |date: &str| -> Result<[u64; 8]> { Ok(members_on(s, "g1", date).await?.1) };
    let g3 = async |date: &str| -> Result<[u64; 8]> { Ok(members_on(s, "g3", date).await?.1) };
    ensure!(g1("2012-02-29").await? == [0; 8], "before joining");
    ensure!(
        g1("2012-03-01").await? == [2, 2, 0, 0, 0, 1, 1, 0],
        "joined"
    );
    ensure!(
        g1("2025-03-31").await? == [2, 2, 0, 0, 0, 1, 1, 0],
        "the day before the cessation"
    );
    ensure!(
        g1("2025-04-01").await? == [2, 1, 0, 0, 1, 1, 0, 0],
        "the day of the cessation"
    );
    ensure!(
        g1("2025-04-30").await? == [2, 1, 0, 0, 1, 1, 0, 0],
        "the day before the transfer"
    );
    ensure!(g3("2025-04-30").await? == [0; 8], "not yet in g3");
    ensure!(
        g1("2025-05-01").await? == [2, 0, 1, 0, 1, 0, 0, 0],
        "transferred out"
    );
    ensure!(
        g3("2025-05-01").await? == [1, 1, 0, 0, 0, 1, 0, 0],
        "transferred in"
    );
    let (r, total) = members_on(s, "p1", "2025-05-01").await?;
    ensure!(
        r == rows(&[
            ("d1", [2, 0, 1, 0, 1, 0, 0, 0]),
            ("d2", [1, 1, 0, 0, 0, 1, 0, 0])
        ]),
        "p1 on the transfer: {r:?}"
    );
    ensure!(total == [3, 1, 1, 0, 1, 1, 0, 0], "{total:?}");
    Ok(())
}

/// d2 closed on 2025-06-01 after g3 moved to d1: a row (with its data)
/// before, none from that day, rather than a row of zeros for ever.
pub async fn case_closed_unit_as_of(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    members(s, &[("g3", "m-c1", "nam")]).await?;
    move_unit_on(s, "g3", "d1", "2025-05-20", "2025-06-01").await?;
    close_unit_on(s, "d2", &[], false, "2025-06-01").await?;

    let m = [1, 1, 0, 0, 0, 1, 0, 0];
    let (r, _) = members_on(s, "p1", "2025-05-31").await?;
    ensure!(
        r == rows(&[("d1", [0; 8]), ("d2", m)]),
        "p1 before the closing: {r:?}"
    );
    for date in ["2025-06-01", TODAY] {
        let (r, total) = members_on(s, "p1", date).await?;
        ensure!(r == rows(&[("d1", m)]), "p1 on {date}: {r:?}");
        ensure!(total == m, "{total:?}");
    }
    let (r, _) = members_on(s, "d1", "2025-06-01").await?;
    ensure!(
        r == rows(&[("g1", [0; 8]), ("g2", [0; 8]), ("g3", m), ("g4", [0; 8])]),
        "d1 with g3: {r:?}"
    );
    Ok(())
}

/// Awards count from their decision until their revocation, under the
/// tree of the date.
pub async fn case_awards_as_of(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    members(s, &[("g3", "m-c1", "nam")]).await?;
    decide(
        s,
        "a1",
        "p1",
        "provincial",
        "bang-khen-cap-tinh",
        "2025-03-01",
        vec![Recipient::Unit(uid("g1"))],
        None,
    )
    .await?;
    decide(
        s,
        "a2",
        "d2",
        "district",
        "giay-khen",
        "2025-07-05",
        vec![member_recipient("m-c1", "g3")],
        None,
    )
    .await?;
    revoke(s, "a2", "2025-08-01").await?;
    move_unit_on(s, "d1", "p2", "2025-06-20", "2025-07-01").await?;

    let a1 = awards_row("bang-khen-cap-tinh", "provincial", 2025, 1);
    let a2 = awards_row("giay-khen", "district", 2025, 1);
    let on = async |unit: &str, date: &str| s.awards_report(&uid(unit), None, d(date)).await;
    ensure!(
        on("p1", "2025-02-28").await?.is_empty(),
        "before any decision"
    );
    ensure!(on("p1", "2025-06-30").await? == [a1.clone()], "p1 with d1");
    ensure!(on("p2", "2025-06-30").await?.is_empty(), "p2 without d1");
    ensure!(on("p2", "2025-07-01").await? == [a1.clone()], "p2 with d1");
    ensure!(
        on("p1", "2025-07-04").await?.is_empty(),
        "a2 not yet decided"
    );
    ensure!(
        on("p1", "2025-07-31").await? == [a2.clone()],
        "a2 decided, revoked only later"
    );
    ensure!(on("p1", "2025-08-01").await?.is_empty(), "a2 revoked");
    ensure!(
        on("vn", "2025-07-31").await? == [a2, a1],
        "vn: {:?}",
        on("vn", "2025-07-31").await?
    );
    Ok(())
}

/// A database migrated before `unit_links` and `members.since_on` existed
/// gets them from its projections: each unit under its current parent from
/// the first day until it closed, each record since its active status
/// began, else since joining. The exact history comes with the next write
/// of each document.
pub async fn case_migration_backfills_links_and_since(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    members(s, &[("g1", "m-a1", "nam"), ("g1", "m-a2", "nữ")]).await?;
    end_member(
        s,
        "m-a2",
        "g1",
        MemberStatus::Left,
        "nghỉ việc",
        "2025-03-01",
    )
    .await?;
    transfer(s, "m-a1", "g1", "g3", "2025-05-01").await?;
    move_unit_on(s, "g3", "d1", "2025-05-20", "2025-06-01").await?;
    close_unit_on(s, "d2", &[], false, "2025-06-01").await?;

    // Back to schema 8, then open again: migration 9 runs on this data.
    for sql in [
        "DELETE FROM _sqlx_migrations WHERE version = 9",
        "DROP TABLE unit_links",
        "ALTER TABLE members DROP COLUMN since_on",
    ] {
        sqlx::query(sql).execute(s.pool()).await?;
    }
    reopen(s).await?.close().await;

    let links: Vec<(String, String, String, String)> = sqlx::query(
        "SELECT unit, parent, valid_from, valid_to FROM unit_links ORDER BY unit, valid_from",
    )
    .fetch_all(s.pool())
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    let link = |u: &str, p: &str, to: &str| {
        (
            u.to_owned(),
            p.to_owned(),
            "1900-01-01".to_owned(),
            to.to_owned(),
        )
    };
    let open = "9999-12-31";
    ensure!(
        links
            == [
                link("d1", "p1", open),
                link("d2", "p1", "2025-06-01"),
                link("g1", "d1", open),
                link("g2", "d1", open),
                link("g3", "d1", open),
                link("g4", "d1", open),
                link("p1", "vn", open),
                link("p2", "vn", open),
                link("vn", "", open),
            ],
        "backfilled links: {links:#?}"
    );
    let since: Vec<(String, String, String)> =
        sqlx::query("SELECT member_id, unit_id, since_on FROM members ORDER BY member_id, unit_id")
            .fetch_all(s.pool())
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    let row = |m: &str, u: &str, on: &str| (m.to_owned(), u.to_owned(), on.to_owned());
    ensure!(
        since
            == [
                row("m-a1", "g1", "2012-03-01"),
                row("m-a1", "g3", "2025-05-01"),
                row("m-a2", "g1", "2012-03-01"),
            ],
        "backfilled since_on: {since:#?}"
    );
    // Reports read the backfilled rows as the tree of today.
    let (r, total) = members_on(s, "p1", TODAY).await?;
    ensure!(
        r == rows(&[("d1", [3, 1, 1, 1, 0, 1, 0, 0])]),
        "p1 after the migration: {r:?}"
    );
    ensure!(total[0] == 3, "{total:?}");

    // The next write of each unit's document projects its exact history
    // (the closed one by a correction of its record).
    for u in ["vn", "p1", "p2", "d1", "g1", "g2", "g3", "g4"] {
        let decision = decision("20/QĐ", "2025-08-01", "2025-08-01");
        write(s, &unit_doc(u), |doc, a| {
            let name = unit::read(&unit_doc(u), doc)?.name;
            unit::rename(doc, a, &format!("{name} (mới)"), &decision)
        })
        .await?;
    }
    write(s, &unit_doc("d2"), |doc, a| {
        edit(doc, a, "correct the reason", |tx| {
            am::put_str(tx, &automerge::ROOT, "close_reason", "Sáp nhập vào d1")
        })
    })
    .await?;
    let from: String = sqlx::query("SELECT valid_from FROM unit_links WHERE unit = 'd2'")
        .fetch_one(s.pool())
        .await?
        .get(0);
    ensure!(
        from == "2020-02-01",
        "d2's link after its next write: {from}"
    );
    Ok(())
}
