//! MemberService.ImportMembers: good rows created, bad rows rejected with
//! every field error and their line; idempotent re-runs; updates; duplicate
//! cards within a batch and across units; roster buckets splitting.

use std::collections::BTreeSet;

use anyhow::Result;
use hopluu_proto::v1 as pb;
use pb::ImportOutcome::{Created, Rejected, Unchanged, Updated};

use crate::harness::*;

fn row(line: u32, unit: &str, member: pb::MemberInput) -> pb::ImportRow {
    pb::ImportRow {
        line,
        unit_id: unit.to_owned(),
        member: Some(member),
    }
}

/// Four good rows (lines 2, 3, 5, 9) among four bad ones.
fn batch() -> Vec<pb::ImportRow> {
    let mut an = person("Nguyễn Văn An", "HG-0001", pb::Gender::Male);
    an.national_id = "001090012345".into();
    let bad = pb::MemberInput {
        birth_date: "12/05/1990".into(),
        gender: pb::Gender::Unspecified as i32,
        national_id: "123".into(),
        ..person("Lê Hoàng Cường", "HG-0003", pb::Gender::Male)
    };
    vec![
        row(2, HG_A, an),
        row(
            3,
            HG_A,
            person("Trần Thị Bích", "HG-0002", pb::Gender::Female),
        ),
        row(4, HG_A, bad),
        row(5, HG_B, person("Vũ Thị Hoa", "HG-0006", pb::Gender::Female)),
        row(6, HG, person("Phạm Thị Dung", "x", pb::Gender::Female)),
        row(7, HG_B, person("Người Khác", "hg-0001", pb::Gender::Male)),
        row(
            8,
            "khong-co",
            person("Đỗ Minh Đức", "HG-0005", pb::Gender::Male),
        ),
        row(9, LC_C, person("Lò Văn Páo", "LC-0001", pb::Gender::Male)),
    ]
}

async fn import(node: &Node, rows: Vec<pb::ImportRow>) -> Result<Vec<pb::ImportResult>> {
    let n = rows.len();
    let results = node
        .members()
        .import_members(pb::ImportMembersRequest { rows })
        .await?
        .into_inner()
        .results;
    assert_eq!(results.len(), n, "one result per row");
    Ok(results)
}

fn outcomes(results: &[pb::ImportResult]) -> Vec<(u32, pb::ImportOutcome)> {
    results
        .iter()
        .map(|r| (r.line, pb::ImportOutcome::try_from(r.outcome).unwrap()))
        .collect()
}

fn fields(r: &pb::ImportResult) -> Vec<&str> {
    r.errors.iter().map(|e| e.field.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_every_row_and_is_idempotent() -> Result<()> {
    // Rows with CCCD: a node that holds private data.
    let node = crate::personal_data::private_tree().await?;
    let first = import(&node, batch()).await?;
    assert_eq!(
        outcomes(&first),
        [
            (2, Created),
            (3, Created),
            (4, Rejected),
            (5, Created),
            (6, Rejected),
            (7, Rejected),
            (8, Rejected),
            (9, Created),
        ]
    );
    for r in &first {
        let created = r.outcome == Created as i32;
        assert_eq!(!r.member_id.is_empty(), created, "line {}", r.line);
        assert_eq!(r.errors.is_empty(), created, "line {}", r.line);
    }
    // Every bad field of a row is reported, not just the first.
    assert_eq!(fields(&first[2]), ["birth_date", "gender", "national_id"]);
    assert_eq!(fields(&first[4]), ["unit_id", "card_number"]);
    assert!(
        first[4].errors[0].reason.contains("roster"),
        "{:?}",
        first[4]
    );
    assert_eq!(fields(&first[5]), ["card_number"]);
    assert!(
        first[5].errors[0].reason.contains("line 2"),
        "a duplicate names the first line: {:?}",
        first[5]
    );
    assert_eq!(fields(&first[6]), ["unit_id"]);
    assert!(
        first
            .iter()
            .flat_map(|r| &r.errors)
            .all(|e| !e.reason.is_empty())
    );

    // Exactly the good rows were written, private data included.
    assert_eq!(node.list(VN, true, None).await?.total, 4);
    assert_eq!(node.list(HG_A, false, None).await?.total, 2);
    let an = node.member(&first[0].member_id, true).await?;
    assert_eq!(an.full_name, "Nguyễn Văn An");
    assert_eq!(an.private.unwrap().national_id, "001090012345");
    assert_eq!(node.member(&first[7].member_id, false).await?.unit_id, LC_C);

    // The same file again: nothing new, nothing written.
    let mark = node.mark().await?;
    let again = import(&node, batch()).await?;
    assert_eq!(
        outcomes(&again),
        [
            (2, Unchanged),
            (3, Unchanged),
            (4, Rejected),
            (5, Unchanged),
            (6, Rejected),
            (7, Rejected),
            (8, Rejected),
            (9, Unchanged),
        ]
    );
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.member_id, b.member_id, "line {}", a.line);
        assert_eq!(fields(a), fields(b), "line {}", a.line);
    }
    node.unchanged_since(mark).await?;
    assert_eq!(node.list(VN, true, None).await?.total, 4);

    // A corrected name updates that member and only that member.
    let mut fixed = batch();
    fixed[1].member.as_mut().unwrap().full_name = "Trần Thị Bích Ngọc".into();
    let third = import(&node, fixed).await?;
    let got: Vec<_> = outcomes(&third)
        .into_iter()
        .filter(|(_, o)| *o != Rejected)
        .collect();
    assert_eq!(
        got,
        [(2, Unchanged), (3, Updated), (5, Unchanged), (9, Unchanged)]
    );
    assert_eq!(third[1].member_id, first[1].member_id);
    assert_eq!(
        node.member(&first[1].member_id, false).await?.full_name,
        "Trần Thị Bích Ngọc"
    );
    assert_eq!(
        node.feed().await?,
        mark.feed + 1,
        "one roster document changed"
    );
    assert_eq!(node.list(VN, true, None).await?.total, 4);

    // A changed private field is an update too.
    let mut private = batch();
    private[0].member.as_mut().unwrap().religion = "Công giáo".into();
    let fourth = import(&node, private).await?;
    assert_eq!(fourth[0].outcome, Updated as i32);
    assert_eq!(
        node.member(&first[0].member_id, true)
            .await?
            .private
            .unwrap()
            .religion,
        "Công giáo"
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_cards_active_in_another_unit() -> Result<()> {
    let node = Node::with_tree().await?;
    let held = node
        .add(HG_B, person("Vũ Thị Hoa", "HG-0006", pb::Gender::Female))
        .await?;
    let mark = node.mark().await?;
    let r = import(
        &node,
        vec![row(
            12,
            HG_A,
            person("Vũ Thị Hoa", "HG-0006", pb::Gender::Female),
        )],
    )
    .await?;
    assert_eq!(outcomes(&r), [(12, Rejected)]);
    assert_eq!(fields(&r[0]), ["card_number"]);
    assert!(r[0].errors[0].reason.contains(&held.id), "{:?}", r[0]);
    node.unchanged_since(mark).await?;

    // Once the holder has left, the card may be imported elsewhere.
    node.end(&held.id, pb::MemberStatus::Left, "").await?;
    let r = import(
        &node,
        vec![row(
            12,
            HG_A,
            person("Vũ Thị Hoa", "HG-0006", pb::Gender::Female),
        )],
    )
    .await?;
    assert_eq!(outcomes(&r), [(12, Created)]);
    assert_ne!(r[0].member_id, held.id);

    // An empty file is fine; a row without a member is a bad request.
    assert!(import(&node, Vec::new()).await?.is_empty());
    expect_invalid(
        node.members()
            .import_members(pb::ImportMembersRequest {
                rows: vec![pb::ImportRow {
                    line: 1,
                    unit_id: HG_A.into(),
                    member: None,
                }],
            })
            .await,
        "member",
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_oversized_batches() -> Result<()> {
    let node = Node::with_tree().await?;
    let mark = node.mark().await?;
    let rows = (0..5001)
        .map(|i| {
            row(
                i + 2,
                HG_A,
                person(
                    &format!("Thành viên {i}"),
                    &format!("HG-{i:05}"),
                    pb::Gender::Male,
                ),
            )
        })
        .collect();
    expect_invalid(
        node.members()
            .import_members(pb::ImportMembersRequest { rows })
            .await,
        "rows",
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_splits_large_rosters_into_buckets() -> Result<()> {
    let node = Node::with_tree().await?;
    let before = node.mark().await?;
    let rows = |from: u32, to: u32| -> Vec<pb::ImportRow> {
        (from..to)
            .map(|i| {
                row(
                    i,
                    HG_A,
                    person(
                        &format!("Công nhân {i:02}"),
                        &format!("HG-2{i:03}"),
                        pb::Gender::Female,
                    ),
                )
            })
            .collect()
    };

    let r = import(&node, rows(0, 10)).await?;
    assert!(r.iter().all(|r| r.outcome == Created as i32), "{r:?}");
    let ids: BTreeSet<String> = r.iter().map(|r| r.member_id.clone()).collect();
    assert_eq!(ids.len(), 10);
    let docs = node.mark().await?.documents - before.documents;
    assert!(
        docs >= 10_u64.div_ceil(BUCKET_SIZE as u64),
        "10 members in buckets of {BUCKET_SIZE} made {docs} roster documents"
    );
    let listed = node.list(HG_A, false, None).await?;
    assert_eq!(listed.total, 10);
    assert_eq!(
        listed
            .members
            .into_iter()
            .map(|m| m.id)
            .collect::<BTreeSet<_>>(),
        ids
    );

    // Re-importing finds every member in its bucket.
    let mark = node.mark().await?;
    let again = import(&node, rows(0, 10)).await?;
    assert!(
        again.iter().all(|r| r.outcome == Unchanged as i32),
        "{again:?}"
    );
    node.unchanged_since(mark).await?;

    // More rows continue into further buckets; old and new rows mix.
    let r = import(&node, rows(5, 16)).await?;
    let created = r.iter().filter(|r| r.outcome == Created as i32).count();
    let unchanged = r.iter().filter(|r| r.outcome == Unchanged as i32).count();
    assert_eq!((created, unchanged), (6, 5));
    let all = node.list(HG_A, false, None).await?;
    assert_eq!(all.total, 16);
    assert_eq!(
        all.members
            .iter()
            .map(|m| &m.id)
            .collect::<BTreeSet<_>>()
            .len(),
        16
    );
    node.stop().await
}
