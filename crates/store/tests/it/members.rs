//! Members: roster buckets, listing with paging, search by name (without
//! diacritics) and by card number.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use hopluu_model::DocId;
use hopluu_model::ids::fold;
use hopluu_model::member::{self, DEIDENTIFIED_NAME, Deidentified, Member, MemberStatus};
use hopluu_store::Store;

use crate::harness::*;

suite!(
    case_roster_splits_into_buckets,
    case_list_members_pages,
    case_find_members_by_name_and_card,
    case_find_members_ignores_combining_marks,
    case_deidentified_member_projects_without_personal_data,
);

const NAMES: [&str; 11] = [
    "Nguyễn Văn An",
    "Trần Thị Bích",
    "Lê Hoàng Cường",
    "Phạm Minh Đức",
    "Hoàng Thị Én",
    "Huỳnh Gia Phúc",
    "Võ Thị Giang",
    "Đặng Quốc Hưng",
    "Bùi Thị Ích",
    "Đỗ Văn Khánh",
    "Ngô Thị Lan",
];

pub async fn case_roster_splits_into_buckets(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let mut placed = BTreeMap::new();
    for (i, name) in NAMES.iter().enumerate() {
        let (m, bucket) = add_member(
            &store,
            "g1",
            &format!("m-{i}"),
            name,
            "nam",
            &format!("HG-{i:04}"),
        )
        .await?;
        placed.insert(m.id.clone(), bucket);
    }
    let mut seen = 0;
    let mut buckets = 0;
    for id in store.doc_ids().await? {
        let DocId::Roster { unit, bucket } = &id else {
            continue;
        };
        ensure!(unit.as_str() == "g1", "roster of {unit}");
        buckets += 1;
        let members = store
            .read_doc(&id, |d| member::read_many(d, None))
            .await?
            .context("roster")??;
        ensure!(
            members.len() <= 4,
            "{id} holds {} members (bucket size 4)",
            members.len()
        );
        for m in &members {
            ensure!(placed.get(&m.id) == Some(bucket), "{} found in {id}", m.id);
        }
        let private = store
            .read_doc(&member::private_doc(unit, *bucket), |d| {
                member::read_private(d, None)
            })
            .await?
            .context("private roster of the same bucket")??;
        ensure!(
            private
                .iter()
                .map(|(m, _)| m)
                .eq(members.iter().map(|m| &m.id)),
            "{id}: the private roster holds the same members"
        );
        seen += members.len();
    }
    ensure!(seen == NAMES.len(), "{seen} members in the rosters");
    ensure!(
        buckets >= 3,
        "eleven members in buckets of four need three or more: {buckets}"
    );
    for (m, bucket) in &placed {
        let locs = store.member_locations(m).await?;
        ensure!(
            locs.len() == 1 && locs[0].bucket == *bucket,
            "{m}: {locs:?}"
        );
    }
    Ok(())
}

fn key(m: &Member) -> (String, String) {
    (fold(&m.full_name), m.id.to_string())
}

pub async fn case_list_members_pages(store: Store) -> Result<()> {
    small_tree(&store).await?;
    let mut all = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        all.push(
            add_member(
                &store,
                "g1",
                &format!("m-{i}"),
                name,
                "nữ",
                &format!("HG-{i:04}"),
            )
            .await?
            .0,
        );
    }
    for i in 0..3 {
        add_member(
            &store,
            "g2",
            &format!("m-g2-{i}"),
            &format!("Lý Văn {i}"),
            "nam",
            &format!("NS-{i:04}"),
        )
        .await?;
    }
    end_member(
        &store,
        "m-4",
        "g1",
        MemberStatus::Left,
        "chuyển vùng",
        "2025-02-01",
    )
    .await?;
    all.sort_by_key(key);

    let g1 = uid("g1");
    let mut paged = Vec::new();
    for (offset, n) in [(0, 4), (4, 4), (8, 3)] {
        let (rows, total) = store.list_members(&g1, false, None, 4, offset).await?;
        ensure!(total == 11, "total {total} at offset {offset}");
        ensure!(rows.len() == n, "{} rows at offset {offset}", rows.len());
        paged.extend(rows);
    }
    let ids: Vec<String> = paged.iter().map(|m| m.id.to_string()).collect();
    let want: Vec<String> = all.iter().map(|m| m.id.to_string()).collect();
    ensure!(
        ids == want,
        "pages in name order without repeats:\n{ids:?}\n{want:?}"
    );
    // Rows carry the member's fields (history is not in the projection).
    let an = paged
        .iter()
        .find(|m| m.id.as_str() == "m-0")
        .context("m-0")?;
    let stored = all.iter().find(|m| m.id.as_str() == "m-0").context("m-0")?;
    ensure!(
        Member {
            history: vec![],
            ..stored.clone()
        } == *an,
        "listed row {an:?}"
    );

    let (rows, total) = store.list_members(&g1, false, None, 4, 20).await?;
    ensure!(rows.is_empty() && total == 11, "past the end");
    let (rows, total) = store
        .list_members(&g1, false, Some(MemberStatus::Active), 100, 0)
        .await?;
    ensure!(total == 10 && rows.len() == 10, "active: {total}");
    ensure!(
        rows.iter().all(|m| m.status == MemberStatus::Active),
        "only active"
    );
    let (rows, total) = store
        .list_members(&g1, false, Some(MemberStatus::Left), 100, 0)
        .await?;
    ensure!(total == 1 && rows[0].id.as_str() == "m-4", "left: {rows:?}");
    ensure!(rows[0].status_reason == "chuyển vùng", "reason");
    let (_, total) = store.list_members(&uid("d1"), true, None, 1, 0).await?;
    ensure!(total == 14, "subtree of d1: {total}");
    let (_, total) = store
        .list_members(&uid("vn"), true, Some(MemberStatus::Active), 1, 0)
        .await?;
    ensure!(total == 13, "active in the federation: {total}");
    let (_, total) = store.list_members(&uid("d1"), false, None, 1, 0).await?;
    ensure!(total == 0, "d1 itself holds no members");
    Ok(())
}

pub async fn case_find_members_by_name_and_card(store: Store) -> Result<()> {
    small_tree(&store).await?;
    create_unit(&store, "g3", "CĐCS Cảng Cái Cui", "grassroots", Some("p2")).await?;
    add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    add_member(&store, "g2", "m-anh", "Nguyễn Văn Anh", "nam", "HG-0002").await?;
    add_member(&store, "g3", "m-anh2", "Trần Thị Ánh", "nữ", "CT-0003").await?;
    add_member(&store, "g1", "m-binh", "Lê Văn Bình", "nam", "HG-0004").await?;
    add_member(&store, "g1", "m-an-old", "Nguyễn Văn Ân", "nam", "HG-0005").await?;
    end_member(
        &store,
        "m-an-old",
        "g1",
        MemberStatus::Left,
        "",
        "2024-12-31",
    )
    .await?;

    let find = |q: &'static str, scope: &'static str, limit: u32| {
        let store = store.clone();
        async move {
            let found = store.find_members(q, &uid(scope), limit).await?;
            anyhow::Ok(found.iter().map(|m| m.id.to_string()).collect::<Vec<_>>())
        }
    };
    // Active first, then by folded name: "nguyen van an", "nguyen van anh",
    // then the member who left.
    ensure!(
        find("nguyen van an", "vn", 10).await? == ["m-an", "m-anh", "m-an-old"],
        "without diacritics: {:?}",
        find("nguyen van an", "vn", 10).await?
    );
    ensure!(
        find("NGUYỄN VĂN AN", "vn", 10).await? == ["m-an", "m-anh", "m-an-old"],
        "with diacritics and capitals"
    );
    ensure!(
        find("  van   binh ", "vn", 10).await? == ["m-binh"],
        "spacing"
    );
    ensure!(
        find("ánh", "vn", 10).await? == ["m-anh", "m-anh2"],
        "ánh: {:?}",
        find("ánh", "vn", 10).await?
    );
    ensure!(
        find("hg-0001", "vn", 10).await? == ["m-an"],
        "by card, any case"
    );
    ensure!(
        find("CT-0003", "p1", 10).await?.is_empty(),
        "a card outside the scope"
    );
    ensure!(
        find("CT-0003", "p2", 10).await? == ["m-anh2"],
        "a card inside the scope"
    );
    ensure!(find("nguyen", "g2", 10).await? == ["m-anh"], "scope g2");
    ensure!(find("nguyen", "vn", 1).await?.len() == 1, "limit");
    ensure!(find("%", "vn", 10).await?.is_empty(), "% is not a wildcard");
    ensure!(find("_", "vn", 10).await?.is_empty(), "_ is not a wildcard");
    ensure!(find("xyz", "vn", 10).await?.is_empty(), "no match");
    let found = store.find_members("an", &uid("g1"), 10).await?;
    let an = found
        .iter()
        .find(|m| m.id.as_str() == "m-an")
        .context("m-an")?;
    ensure!(
        an.full_name == "Nguyễn Văn An" && an.card_number.as_str() == "HG-0001",
        "{an:?}"
    );
    Ok(())
}

/// Vietnamese text often arrives decomposed (NFD: a base letter followed by
/// combining marks), from macOS or from keyboards set to "Unicode tổ hợp".
/// A search without diacritics must find such names, and a decomposed query
/// must find composed names.
pub async fn case_find_members_ignores_combining_marks(store: Store) -> Result<()> {
    small_tree(&store).await?;
    // "Nguyễn Thị Hoà" decomposed: e + circumflex + tilde, i + dot below,
    // a + grave.
    let decomposed = "Nguye\u{302}\u{303}n Thi\u{323} Hoa\u{300}";
    add_member(&store, "g1", "m-hoa", decomposed, "nữ", "HG-0001").await?;
    add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0002").await?;
    let ids = |found: Vec<Member>| found.iter().map(|m| m.id.to_string()).collect::<Vec<_>>();
    ensure!(
        ids(store.find_members("nguyen thi hoa", &uid("vn"), 10).await?) == ["m-hoa"],
        "a decomposed name found without diacritics"
    );
    ensure!(
        ids(store.find_members("Nguyễn Thị Hoà", &uid("vn"), 10).await?) == ["m-hoa"],
        "a decomposed name found by its composed spelling"
    );
    ensure!(
        ids(store
            .find_members("Nguye\u{302}\u{303}n Va\u{306}n", &uid("vn"), 10)
            .await?)
            == ["m-an"],
        "a composed name found by a decomposed query"
    );
    Ok(())
}

/// De-identification as the node does it, in one transaction: every roster
/// record of the member scrubbed and marked, every private entry removed.
/// The projections follow: the `members` rows carry the marker and the
/// request and no name or birth date, the `member_private` rows are gone,
/// the other members are untouched, and (the runner checks it after the
/// case) every row equals what the documents imply.
pub async fn case_deidentified_member_projects_without_personal_data(store: Store) -> Result<()> {
    small_tree(&store).await?;
    add_member(&store, "g1", "m-an", "Nguyễn Văn An", "nam", "HG-0001").await?;
    add_member(&store, "g1", "m-binh", "Lê Văn Bình", "nam", "HG-0002").await?;
    transfer(&store, "m-an", "g1", "g2", "2025-01-15").await?;
    let request = Deidentified {
        at: "2026-11-22T08:30:00Z".into(),
        by: "p1-node".into(),
        operator: "staff lan (unit p1)".into(),
        reason: "đơn yêu cầu của đoàn viên".into(),
        reference: "12/ĐN".into(),
    };
    let an = mid("m-an");
    let author = author(&store);
    let mut tx = store.begin().await?;
    for loc in store.member_locations(&an).await? {
        member::deidentify(
            tx.doc(&member::roster_doc(&loc.unit, loc.bucket)).await?,
            &author,
            &an,
            &request,
        )?;
        let private = member::private_doc(&loc.unit, loc.bucket);
        if tx.exists(&private).await? {
            member::forget_private(tx.doc(&private).await?, &author, &an)?;
        }
    }
    tx.commit().await?;

    for store in [store.clone(), reopen(&store).await?] {
        let (rows, _) = store.list_members(&uid("vn"), true, None, 100, 0).await?;
        let records: Vec<&Member> = rows.iter().filter(|m| m.id == an).collect();
        ensure!(records.len() == 2, "a record in g1 and g2: {records:?}");
        for m in records {
            ensure!(m.full_name == DEIDENTIFIED_NAME && m.birth_date.is_none());
            ensure!(m.position.is_empty() && m.status_reason.is_empty());
            ensure!(m.deidentified.as_ref() == Some(&request), "{m:?}");
            ensure!(m.card_number.as_str() == "HG-0001" && m.joined_on == d("2012-03-01"));
        }
        for unit in ["g1", "g2"] {
            ensure!(
                store.private_data(&an, &uid(unit)).await?.is_none(),
                "private data in {unit}"
            );
        }
        let binh = store
            .private_data(&mid("m-binh"), &uid("g1"))
            .await?
            .context("the other member's private data")?;
        ensure!(binh.national_id.is_some() && binh.ethnicity == "Kinh");
        ensure!(store.private_rows().await? == 1);
        ensure!(
            store
                .find_members("nguyen van an", &uid("vn"), 10)
                .await?
                .is_empty()
        );
        let by_card = store.find_members("HG-0001", &uid("vn"), 10).await?;
        ensure!(by_card.len() == 2 && by_card.iter().all(|m| m.deidentified.is_some()));
        // Still counted, by status and gender.
        let (_, total) = store.members_report(&uid("vn"), today()).await?;
        ensure!(
            (total.active, total.transferred, total.male) == (2, 1, 2),
            "{total:?}"
        );
    }
    Ok(())
}
