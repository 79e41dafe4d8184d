//! MemberService, reading many: list (filters, paging, counts), find
//! (diacritics, cards), rosters splitting into buckets as they grow, and
//! concurrent adds keeping cards unique.

use std::collections::BTreeSet;

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;
use crate::members::{CCCD, with_private};
use crate::personal_data::private_tree;

// Tests with private data run on a node that holds it (`private_tree`):
// the national node of `Node::with_tree` holds none (`personal_data`).
/// Eight members: five in Trường A, two in Nhà máy B (one has left), one
/// in Lai Châu.
async fn populate(node: &Node) -> Result<Vec<pb::Member>> {
    let mut out = Vec::new();
    for (unit, name, card, g) in [
        (HG_A, "Nguyễn Văn An", "HG-0001", pb::Gender::Male),
        (HG_A, "Trần Thị Bích", "HG-0002", pb::Gender::Female),
        (HG_A, "Lê Hoàng Cường", "HG-0003", pb::Gender::Male),
        (HG_A, "Phạm Thị Dung", "HG-0004", pb::Gender::Female),
        (HG_A, "Đỗ Minh Đức", "HG-0005", pb::Gender::Male),
        (HG_B, "Vũ Thị Hoa", "HG-0006", pb::Gender::Female),
        (HG_B, "Hoàng Văn Giang", "HG-0007", pb::Gender::Male),
        (LC_C, "Lò Văn Páo", "LC-0001", pb::Gender::Male),
    ] {
        out.push(node.add(unit, person(name, card, g)).await?);
    }
    node.end(&out[6].id, pb::MemberStatus::Left, "chuyển vùng")
        .await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pages_and_counts() -> Result<()> {
    let node = Node::with_tree().await?;
    populate(&node).await?;

    // Ordered by name, diacritics folded (Đ sorts as D).
    let a = node.list(HG_A, false, None).await?;
    assert_eq!(a.total, 5);
    let names: Vec<&str> = a.members.iter().map(|m| m.full_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Đỗ Minh Đức",
            "Lê Hoàng Cường",
            "Nguyễn Văn An",
            "Phạm Thị Dung",
            "Trần Thị Bích"
        ]
    );

    assert_eq!(node.list(HG, false, None).await?.total, 0);
    assert_eq!(node.list(HG_CT, true, None).await?.total, 7);
    assert_eq!(node.list(HG, true, None).await?.total, 7);
    assert_eq!(node.list(VN, true, None).await?.total, 8);
    assert_eq!(node.list(LC, true, None).await?.total, 1);
    assert_eq!(
        node.list(HG, true, Some(pb::MemberStatus::Active))
            .await?
            .total,
        6
    );
    let left = node.list(HG, true, Some(pb::MemberStatus::Left)).await?;
    assert_eq!(left.total, 1);
    assert_eq!(left.members[0].full_name, "Hoàng Văn Giang");

    // Pages of three: disjoint, in the same order as the full list, each
    // with the full total.
    let full: Vec<String> = node
        .list(HG, true, None)
        .await?
        .members
        .into_iter()
        .map(|m| m.id)
        .collect();
    let mut paged = Vec::new();
    for (offset, len) in [(0, 3), (3, 3), (6, 1), (9, 0)] {
        let page = node
            .members()
            .list_members(pb::ListMembersRequest {
                unit_id: HG.into(),
                include_subtree: true,
                status: None,
                limit: 3,
                offset,
            })
            .await?
            .into_inner();
        assert_eq!(
            (page.members.len(), page.total),
            (len, 7),
            "offset {offset}"
        );
        paged.extend(page.members.into_iter().map(|m| m.id));
    }
    assert_eq!(paged, full);
    // limit 0 means the server default, not nothing.
    let default = node
        .members()
        .list_members(pb::ListMembersRequest {
            unit_id: HG.into(),
            include_subtree: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(default.members.len(), 7);

    expect_invalid(
        node.members()
            .list_members(pb::ListMembersRequest {
                unit_id: "khong-co".into(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );
    expect_invalid(
        node.members()
            .list_members(pb::ListMembersRequest {
                unit_id: HG.into(),
                status: Some(pb::MemberStatus::Unspecified as i32),
                ..Default::default()
            })
            .await,
        "status",
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_ignores_diacritics_and_matches_cards() -> Result<()> {
    let node = Node::with_tree().await?;
    let people = populate(&node).await?;
    let find = |query: &str, scope: &str| pb::FindMembersRequest {
        query: query.to_owned(),
        scope_unit_id: scope.to_owned(),
        limit: 0,
    };
    let mut members = node.members();
    let mut names = async |query: &str, scope: &str| -> Result<Vec<String>> {
        let r = members.find_members(find(query, scope)).await?.into_inner();
        assert_eq!(r.total, r.members.len() as u64);
        Ok(r.members.into_iter().map(|m| m.full_name).collect())
    };

    assert_eq!(names("nguyen van", "").await?, ["Nguyễn Văn An"]);
    assert_eq!(names("NGUYỄN VĂN", VN).await?, ["Nguyễn Văn An"]);
    assert_eq!(names("duc", HG).await?, ["Đỗ Minh Đức"]);
    assert_eq!(names("cuong", HG_A).await?, ["Lê Hoàng Cường"]);
    assert_eq!(
        names("thi", HG).await?,
        ["Phạm Thị Dung", "Trần Thị Bích", "Vũ Thị Hoa"]
    );
    assert_eq!(names("thi", HG_B).await?, ["Vũ Thị Hoa"]);
    assert!(names("nguyen", LC).await?.is_empty());
    assert_eq!(names("pao", LC).await?, ["Lò Văn Páo"]);
    // Members who left are found too, after the active ones.
    assert_eq!(
        names("van", HG).await?.last().map(String::as_str),
        Some("Hoàng Văn Giang")
    );
    // A card number matches exactly, in any case.
    assert_eq!(names("hg-0002", "").await?, ["Trần Thị Bích"]);
    assert!(names("hg-000", "").await?.is_empty());
    // Wildcards are text, not patterns.
    assert!(names("%%", "").await?.is_empty());
    assert!(names("__", "").await?.is_empty());

    let found = members
        .find_members(pb::FindMembersRequest {
            query: "van".into(),
            scope_unit_id: VN.into(),
            limit: 2,
        })
        .await?
        .into_inner();
    let two: Vec<&str> = found.members.iter().map(|m| m.full_name.as_str()).collect();
    assert_eq!(two, ["Lò Văn Páo", "Nguyễn Văn An"]);
    assert_eq!(found.members[1].id, people[0].id);

    expect_invalid(members.find_members(find("a", "")).await, "query");
    expect_invalid(members.find_members(find(" ", "")).await, "query");
    expect_invalid(
        members.find_members(find("an", "Bad Scope")).await,
        "scope_unit_id",
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_roster_splits_into_buckets() -> Result<()> {
    let node = private_tree().await?;
    let before = node.mark().await?;
    let mut ids = BTreeSet::new();
    for i in 0..10 {
        let m = node
            .add(
                HG_A,
                with_private(person(
                    &format!("Thành viên {i:02}"),
                    &format!("HG-1{i:03}"),
                    pb::Gender::Female,
                )),
            )
            .await?;
        ids.insert(m.id);
    }
    // At most BUCKET_SIZE members per roster document, and a private
    // document beside each roster document.
    let grown = node.mark().await?.documents - before.documents;
    let min_rosters = 10_u64.div_ceil(BUCKET_SIZE as u64);
    assert!(
        grown >= 2 * min_rosters && grown % 2 == 0,
        "10 members in buckets of {BUCKET_SIZE} made {grown} documents"
    );

    let listed = node.list(HG_A, false, None).await?;
    assert_eq!(listed.total, 10);
    let listed: BTreeSet<String> = listed.members.into_iter().map(|m| m.id).collect();
    assert_eq!(listed, ids);
    // Every member is readable and writable wherever it was placed.
    for id in &ids {
        let m = node.member(id, true).await?;
        assert_eq!(m.private.expect("private data").national_id, CCCD);
        node.members()
            .update_member(pb::UpdateMemberRequest {
                member_id: id.clone(),
                position: Some("Công nhân".into()),
                ..Default::default()
            })
            .await?;
    }
    let active = node
        .list(HG_A, false, Some(pb::MemberStatus::Active))
        .await?;
    assert!(active.members.iter().all(|m| m.position == "Công nhân"));
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_adds_keep_cards_unique() -> Result<()> {
    let node = Node::with_tree().await?;
    // Eight clerks enter the same card in two unions at once: one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut members = node.members();
        let unit = [HG_B, LC_C][i % 2];
        tasks.push(tokio::spawn(async move {
            members
                .add_member(pb::AddMemberRequest {
                    unit_id: unit.into(),
                    member: Some(person(&format!("Người {i}"), "HG-7777", pb::Gender::Male)),
                })
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => won += 1,
            Err(s) => {
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                assert!(s.message().starts_with("card_number: "), "{s:?}");
            }
        }
    }
    assert_eq!(won, 1);
    assert_eq!(node.list(VN, true, None).await?.total, 1);

    // Twelve different members at once into one union: all land, in
    // buckets of at most BUCKET_SIZE.
    let before = node.mark().await?;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut members = node.members();
        tasks.push(tokio::spawn(async move {
            members
                .add_member(pb::AddMemberRequest {
                    unit_id: HG_A.into(),
                    member: Some(person(
                        &format!("Công nhân {i}"),
                        &format!("HG-8{i:03}"),
                        pb::Gender::Female,
                    )),
                })
                .await
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await??.into_inner().id);
    }
    assert_eq!(ids.len(), 12);
    let listed = node.list(HG_A, false, None).await?;
    assert_eq!(listed.total, 12);
    assert_eq!(
        listed
            .members
            .into_iter()
            .map(|m| m.id)
            .collect::<BTreeSet<_>>(),
        ids
    );
    let grown = node.mark().await?.documents - before.documents;
    assert!(
        grown >= 4,
        "12 members in buckets of {BUCKET_SIZE} made {grown} rosters"
    );
    node.stop().await
}
