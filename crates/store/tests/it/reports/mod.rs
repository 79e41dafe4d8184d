//! The federation's reports over one small province:
//!
//! ```text
//! vn ─ p1 ─ d1 ─ g1, g2, g4
//!    │    └ d2 ─ g3
//!    └ p2
//! ```
//!
//! Here on today's tree; [`as_of`] as the tree and the rosters stood on
//! other dates, around a merger of p1 into p2.

mod as_of;

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use hopluu_model::award::Recipient;
use hopluu_model::emulation::InitiativeStatus::{self, *};
use hopluu_model::member::MemberStatus;
use hopluu_store::Store;
use hopluu_store::report::{AwardsRow, InitiativesRow, MembersRow, WorksRow};

use crate::harness::*;

suite!(
    case_members_report,
    case_initiatives_report,
    case_awards_report,
    case_works_report,
);

pub(super) async fn province(store: &Store) -> Result<()> {
    create_unit(store, "vn", "Tổng Liên đoàn", "central", None).await?;
    create_unit(store, "p1", "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn")).await?;
    create_unit(store, "p2", "LĐLĐ TP Cần Thơ", "provincial", Some("vn")).await?;
    create_unit(store, "d1", "LĐLĐ huyện Châu Thành", "district", Some("p1")).await?;
    create_unit(store, "d2", "LĐLĐ huyện Phụng Hiệp", "district", Some("p1")).await?;
    create_unit(
        store,
        "g1",
        "CĐCS Công ty Mía đường",
        "grassroots",
        Some("d1"),
    )
    .await?;
    create_unit(store, "g2", "CĐCS Trường Ngã Sáu", "grassroots", Some("d1")).await?;
    create_unit(store, "g4", "CĐCS Chợ Nổi", "grassroots", Some("d1")).await?;
    create_unit(store, "g3", "CĐCS Nhà máy Giấy", "grassroots", Some("d2")).await?;
    Ok(())
}

pub(super) fn name(unit: &str) -> &'static str {
    match unit {
        "vn" => "Tổng Liên đoàn",
        "p1" => "LĐLĐ tỉnh Hậu Giang",
        "p2" => "LĐLĐ TP Cần Thơ",
        "d1" => "LĐLĐ huyện Châu Thành",
        "d2" => "LĐLĐ huyện Phụng Hiệp",
        "g1" => "CĐCS Công ty Mía đường",
        "g2" => "CĐCS Trường Ngã Sáu",
        "g3" => "CĐCS Nhà máy Giấy",
        "g4" => "CĐCS Chợ Nổi",
        "g5" => "CĐCS Cảng Cái Cui",
        _ => "Tổng cộng",
    }
}

/// `[total, active, transferred, left, ceased, male, female, other]`.
pub(super) fn members_row(unit: &str, n: [u64; 8]) -> MembersRow {
    MembersRow {
        unit_id: unit.to_owned(),
        unit_name: name(unit).to_owned(),
        total: n[0],
        active: n[1],
        transferred: n[2],
        left: n[3],
        ceased: n[4],
        male: n[5],
        female: n[6],
        other_gender: n[7],
    }
}

pub(super) fn by_unit<T: Clone>(rows: &[T], id: impl Fn(&T) -> &str) -> BTreeMap<String, T> {
    rows.iter().map(|r| (id(r).to_owned(), r.clone())).collect()
}

pub async fn case_members_report(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    for (u, id, gender) in [
        ("g1", "m-a1", "nam"),
        ("g1", "m-a2", "nam"),
        ("g1", "m-a3", "nữ"),
        ("g1", "m-a4", "nữ"),
        ("g2", "m-b1", "nữ"),
        ("g2", "m-b2", "khác"),
        ("g2", "m-b3", "nam"),
        ("g3", "m-c1", "nam"),
        ("g3", "m-c2", "nam"),
    ] {
        add_member(
            s,
            u,
            id,
            &format!("Thành viên {id}"),
            gender,
            &format!("HG-{}", &id[2..]).to_uppercase(),
        )
        .await?;
    }
    end_member(
        s,
        "m-a4",
        "g1",
        MemberStatus::Left,
        "nghỉ việc",
        "2025-03-01",
    )
    .await?;
    end_member(
        s,
        "m-b3",
        "g2",
        MemberStatus::Ceased,
        "giải thể tổ",
        "2025-04-01",
    )
    .await?;
    transfer(s, "m-c2", "g3", "g1", "2025-05-01").await?;

    // Status counts every record; gender counts current (active) members.
    let g1 = [5, 4, 0, 1, 0, 3, 1, 0];
    let g2 = [3, 2, 0, 0, 1, 0, 1, 1];
    let g4 = [0; 8];
    let d1 = [8, 6, 0, 1, 1, 3, 2, 1];
    let d2 = [2, 1, 1, 0, 0, 1, 0, 0];
    let p1 = [10, 7, 1, 1, 1, 4, 2, 1];

    let (rows, total) = s.members_report(&uid("d1"), today()).await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    members_row("g1", g1),
                    members_row("g2", g2),
                    members_row("g4", g4)
                ],
                |r| &r.unit_id
            ),
        "rows of d1: {rows:#?}"
    );
    ensure!(rows.len() == 3, "one row per child: {rows:#?}");
    ensure!(
        total
            == MembersRow {
                unit_id: "d1".into(),
                ..members_row("", d1)
            },
        "total of d1: {total:?}"
    );

    let (rows, total) = s.members_report(&uid("p1"), today()).await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(&[members_row("d1", d1), members_row("d2", d2)], |r| &r
                .unit_id),
        "rows of p1: {rows:#?}"
    );
    ensure!(
        total
            == MembersRow {
                unit_id: "p1".into(),
                ..members_row("", p1)
            },
        "total of p1: {total:?}"
    );

    // A grassroots union reports on its own records.
    let (rows, total) = s.members_report(&uid("g1"), today()).await?;
    ensure!(rows == [members_row("g1", g1)], "rows of g1: {rows:#?}");
    ensure!(
        total
            == MembersRow {
                unit_id: "g1".into(),
                ..members_row("", g1)
            },
        "total of g1"
    );

    let (rows, total) = s.members_report(&uid("vn"), today()).await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(&[members_row("p1", p1), members_row("p2", [0; 8])], |r| &r
                .unit_id),
        "rows of vn: {rows:#?}"
    );
    ensure!(
        total.total == 10 && total.active == 7,
        "total of vn: {total:?}"
    );
    Ok(())
}

pub(super) fn initiatives_row(
    unit: &str,
    recorded: u64,
    valid: u64,
    plan: u64,
    percent: f64,
    rank: u32,
) -> InitiativesRow {
    InitiativesRow {
        unit_id: unit.to_owned(),
        unit_name: name(unit).to_owned(),
        recorded,
        valid,
        plan,
        percent_of_plan: percent,
        rank,
    }
}

pub async fn case_initiatives_report(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    launch(s, "c1", "p1", "p1").await?;
    launch(s, "c2", "d1", "d1").await?;
    set_plans(
        s,
        "c1",
        &[("g1", 2, 0), ("g2", 2, 0), ("g4", 3, 0), ("g3", 4, 0)],
    )
    .await?;
    set_plans(s, "c2", &[("g1", 9, 0)]).await?;
    let recorded: [(&str, &str, InitiativeStatus); 8] = [
        ("g1", "c1", Valid),
        ("g1", "c1", Rejected),
        ("g1", "c1", Submitted),
        ("g2", "c1", Recognised),
        ("g4", "c1", Valid),
        ("g4", "c1", UnderReview),
        ("g1", "c2", Valid),
        ("g1", "c2", Valid),
    ];
    for (i, (u, c, status)) in recorded.into_iter().enumerate() {
        initiative(s, u, c, &format!("Sáng kiến {i}"), 1_000_000, status).await?;
    }

    // g1 and g2 tie at 1 of 2 (50 %) and share rank 1; g4 comes third.
    let (rows, total) = s
        .initiatives_report(&cid("c1"), &uid("d1"), today())
        .await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    initiatives_row("g1", 3, 1, 2, 50.0, 1),
                    initiatives_row("g2", 1, 1, 2, 50.0, 1),
                    initiatives_row("g4", 2, 1, 3, 33.33, 3),
                ],
                |r| &r.unit_id
            ),
        "rows of d1: {rows:#?}"
    );
    ensure!(
        total
            == InitiativesRow {
                unit_id: "d1".into(),
                ..initiatives_row("", 6, 3, 7, 42.86, 0)
            },
        "total of d1: {total:?}"
    );

    let (rows, total) = s
        .initiatives_report(&cid("c1"), &uid("p1"), today())
        .await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    initiatives_row("d1", 6, 3, 7, 42.86, 1),
                    initiatives_row("d2", 0, 0, 4, 0.0, 2)
                ],
                |r| &r.unit_id
            ),
        "rows of p1: {rows:#?}"
    );
    ensure!(
        total
            == InitiativesRow {
                unit_id: "p1".into(),
                ..initiatives_row("", 6, 3, 11, 27.27, 0)
            },
        "total of p1: {total:?}"
    );

    // The other campaign: 2 of 9 in g1, nothing planned elsewhere.
    let (rows, total) = s
        .initiatives_report(&cid("c2"), &uid("d1"), today())
        .await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    initiatives_row("g1", 2, 2, 9, 22.22, 1),
                    initiatives_row("g2", 0, 0, 0, 0.0, 2),
                    initiatives_row("g4", 0, 0, 0, 0.0, 2),
                ],
                |r| &r.unit_id
            ),
        "rows of d1 in c2: {rows:#?}"
    );
    ensure!(
        total.valid == 2 && total.plan == 9,
        "total of c2: {total:?}"
    );
    Ok(())
}

pub(super) fn awards_row(award_type: &str, level: &str, year: u32, count: u64) -> AwardsRow {
    AwardsRow {
        award_type: award_type.to_owned(),
        level: level.to_owned(),
        year,
        count,
    }
}

pub async fn case_awards_report(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    for (u, id) in [
        ("g1", "m-a1"),
        ("g1", "m-a2"),
        ("g1", "m-a3"),
        ("g2", "m-b1"),
    ] {
        add_member(
            s,
            u,
            id,
            &format!("Thành viên {id}"),
            "nam",
            &format!("HG-{}", &id[2..]).to_uppercase(),
        )
        .await?;
    }
    let m = member_recipient;
    decide(
        s,
        "a1",
        "d1",
        "district",
        "giay-khen",
        "2025-07-01",
        vec![m("m-a1", "g1"), m("m-a2", "g1")],
        None,
    )
    .await?;
    decide(
        s,
        "a2",
        "d1",
        "district",
        "lao-dong-tien-tien",
        "2025-07-01",
        vec![m("m-b1", "g2")],
        None,
    )
    .await?;
    decide(
        s,
        "a3",
        "d1",
        "district",
        "giay-khen",
        "2025-07-05",
        vec![m("m-a3", "g1")],
        None,
    )
    .await?;
    revoke(s, "a3", "2025-08-01").await?;
    decide(
        s,
        "a4",
        "p1",
        "provincial",
        "bang-khen-cap-tinh",
        "2024-12-20",
        vec![Recipient::Unit(uid("g1"))],
        None,
    )
    .await?;
    decide(
        s,
        "a5",
        "p1",
        "provincial",
        "co-thi-dua-cap-tinh",
        "2025-08-01",
        vec![Recipient::Unit(uid("g3"))],
        None,
    )
    .await?;

    let p1 = s.awards_report(&uid("p1"), None, today()).await?;
    ensure!(
        p1 == [
            awards_row("giay-khen", "district", 2025, 2),
            awards_row("lao-dong-tien-tien", "district", 2025, 1),
            awards_row("co-thi-dua-cap-tinh", "provincial", 2025, 1),
            awards_row("bang-khen-cap-tinh", "provincial", 2024, 1),
        ],
        "p1, every year, the revoked award left out: {p1:#?}"
    );
    let y2024 = s.awards_report(&uid("p1"), Some(2024), today()).await?;
    ensure!(
        y2024 == [awards_row("bang-khen-cap-tinh", "provincial", 2024, 1)],
        "2024: {y2024:?}"
    );
    let d1 = s.awards_report(&uid("d1"), None, today()).await?;
    ensure!(
        d1 == [
            awards_row("giay-khen", "district", 2025, 2),
            awards_row("lao-dong-tien-tien", "district", 2025, 1),
            awards_row("bang-khen-cap-tinh", "provincial", 2024, 1),
        ],
        "d1: {d1:#?}"
    );
    let d2 = s.awards_report(&uid("d2"), Some(2025), today()).await?;
    ensure!(
        d2 == [awards_row("co-thi-dua-cap-tinh", "provincial", 2025, 1)],
        "d2: {d2:?}"
    );
    let g2 = s.awards_report(&uid("g2"), None, today()).await?;
    ensure!(
        g2 == [awards_row("lao-dong-tien-tien", "district", 2025, 1)],
        "g2: {g2:?}"
    );
    ensure!(
        s.awards_report(&uid("p2"), None, today()).await?.is_empty(),
        "p2"
    );
    Ok(())
}

pub(super) fn works_row(unit: &str, count: u64, value_vnd: i64, plaques: u64) -> WorksRow {
    WorksRow {
        unit_id: unit.to_owned(),
        unit_name: name(unit).to_owned(),
        count,
        value_vnd,
        plaques,
    }
}

pub async fn case_works_report(store: Store) -> Result<()> {
    let s = &store;
    province(s).await?;
    launch(s, "c1", "p1", "p1").await?;
    launch(s, "c2", "d1", "d1").await?;
    for (u, c, name, value, plaque) in [
        ("g1", "c1", "Nhà văn hoá", 250_000_000, true),
        ("g1", "c1", "Sửa đường", 40_000_000, false),
        ("g2", "c1", "Sân bóng", 90_000_000, true),
        ("g3", "c1", "Giếng nước", 15_000_000, true),
        ("g1", "c2", "Thư viện", 30_000_000, true),
    ] {
        work(s, u, c, name, value, plaque).await?;
    }

    let (rows, total) = s
        .works_report(&uid("d1"), Some(&cid("c1")), today())
        .await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    works_row("g1", 2, 290_000_000, 1),
                    works_row("g2", 1, 90_000_000, 1),
                    works_row("g4", 0, 0, 0)
                ],
                |r| &r.unit_id
            ),
        "d1 in c1: {rows:#?}"
    );
    ensure!(
        total
            == WorksRow {
                unit_id: "d1".into(),
                ..works_row("", 3, 380_000_000, 2)
            },
        "total: {total:?}"
    );

    let (rows, total) = s.works_report(&uid("d1"), None, today()).await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    works_row("g1", 3, 320_000_000, 2),
                    works_row("g2", 1, 90_000_000, 1),
                    works_row("g4", 0, 0, 0)
                ],
                |r| &r.unit_id
            ),
        "d1, every campaign: {rows:#?}"
    );
    ensure!(
        total
            == WorksRow {
                unit_id: "d1".into(),
                ..works_row("", 4, 410_000_000, 3)
            },
        "total: {total:?}"
    );

    let (rows, total) = s
        .works_report(&uid("p1"), Some(&cid("c1")), today())
        .await?;
    ensure!(
        by_unit(&rows, |r| &r.unit_id)
            == by_unit(
                &[
                    works_row("d1", 3, 380_000_000, 2),
                    works_row("d2", 1, 15_000_000, 1)
                ],
                |r| &r.unit_id
            ),
        "p1 in c1: {rows:#?}"
    );
    ensure!(
        total
            == WorksRow {
                unit_id: "p1".into(),
                ..works_row("", 4, 395_000_000, 3)
            },
        "total: {total:?}"
    );
    Ok(())
}
