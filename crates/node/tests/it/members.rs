//! MemberService: add, get (by id and card, private data on request),
//! update, transfer, end, list and find. Every refused request is
//! INVALID_ARGUMENT naming its field and leaves the node's feed, documents
//! and member counts exactly as they were.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;
use crate::personal_data::private_tree;

// Tests with private data run on a node that holds it (`private_tree`):
// the national node of `Node::with_tree` holds none (`personal_data`).
pub(crate) const CCCD: &str = "001090012345";

pub(crate) fn with_private(mut input: pb::MemberInput) -> pb::MemberInput {
    input.national_id = CCCD.into();
    input.ethnicity = "Kinh".into();
    input.religion = "Không".into();
    input
}

fn by_card(card: &str, include_private: bool) -> pb::GetMemberRequest {
    pb::GetMemberRequest {
        key: Some(pb::get_member_request::Key::CardNumber(card.to_owned())),
        include_private,
    }
}

fn events(m: &pb::Member) -> Vec<(&str, &str, &str)> {
    m.history
        .iter()
        .map(|e| (e.kind.as_str(), e.on.as_str(), e.other_unit_id.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_then_get_by_id_and_by_card() -> Result<()> {
    let node = private_tree().await?;
    let m = node
        .add(
            HG_A,
            with_private(person("  Nguyễn   Văn An ", "hg-0001", pb::Gender::Male)),
        )
        .await?;
    assert!(!m.id.is_empty());
    assert_eq!(m.unit_id, HG_A);
    assert_eq!(m.full_name, "Nguyễn Văn An");
    assert_eq!(m.card_number, "HG-0001");
    assert_eq!(m.gender, pb::Gender::Male as i32);
    assert_eq!(m.status, pb::MemberStatus::Active as i32);
    assert_eq!(m.status_on, "2015-03-01");
    assert_eq!(events(&m), [("joined", "2015-03-01", "")]);
    assert!(m.private.is_none(), "add must not echo private data");

    let plain = node.member(&m.id, false).await?;
    assert_eq!(plain.full_name, "Nguyễn Văn An");
    assert_eq!(plain.birth_date, "1990-05-12");
    assert_eq!(plain.position, "Giáo viên");
    assert_eq!(plain.history.len(), 1);
    assert!(plain.private.is_none());

    let private = node
        .member(&m.id, true)
        .await?
        .private
        .expect("private data");
    assert_eq!(
        (
            private.national_id.as_str(),
            private.ethnicity.as_str(),
            private.religion.as_str()
        ),
        (CCCD, "Kinh", "Không")
    );

    let mut members = node.members();
    let by = members
        .get_member(by_card(" hg-0001 ", true))
        .await?
        .into_inner();
    assert_eq!(by.id, m.id);
    assert_eq!(by.private.unwrap().national_id, CCCD);

    // A member added without private data has none to show.
    let b = node
        .add(HG_A, person("Trần Thị Bích", "HG-0002", pb::Gender::Female))
        .await?;
    let got = node.member(&b.id, true).await?;
    assert!(
        got.private
            .as_ref()
            .is_none_or(|p| p.national_id.is_empty()),
        "{got:?}"
    );

    expect_code(
        members.get_member(by_card("HG-9999", false)).await,
        Code::NotFound,
    );
    expect_code(
        members
            .get_member(pb::GetMemberRequest {
                key: Some(pb::get_member_request::Key::MemberId("mkhongco".into())),
                include_private: false,
            })
            .await,
        Code::NotFound,
    );
    expect_invalid(
        members
            .get_member(pb::GetMemberRequest {
                key: None,
                include_private: false,
            })
            .await,
        "key",
    );
    expect_invalid(members.get_member(by_card("x", false)).await, "card_number");
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_refuses_bad_members_and_writes_nothing() -> Result<()> {
    let node = private_tree().await?;
    let first = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?;
    node.create_unit("hg-dong-cua", "CĐCS đã giải thể", "grassroots", HG_CT)
        .await?;
    node.close_unit("hg-dong-cua").await?;
    let mark = node.mark().await?;

    let ok = || person("Trần Thị Bích", "HG-0002", pb::Gender::Female);
    let cases: Vec<(&str, pb::MemberInput, &str, &str)> = vec![
        (
            "CCCD too short",
            pb::MemberInput {
                national_id: "12345".into(),
                ..ok()
            },
            HG_A,
            "national_id",
        ),
        (
            "CCCD with a letter",
            pb::MemberInput {
                national_id: "00109001234X".into(),
                ..ok()
            },
            HG_A,
            "national_id",
        ),
        (
            "CCCD of 13 digits",
            pb::MemberInput {
                national_id: "0010900123456".into(),
                ..ok()
            },
            HG_A,
            "national_id",
        ),
        (
            "born in the future",
            pb::MemberInput {
                birth_date: "2027-01-01".into(),
                joined_on: "2026-01-01".into(),
                ..ok()
            },
            HG_A,
            "birth_date",
        ),
        (
            "born tomorrow",
            pb::MemberInput {
                birth_date: "2026-11-23".into(),
                ..ok()
            },
            HG_A,
            "birth_date",
        ),
        (
            "no such birth date",
            pb::MemberInput {
                birth_date: "1990-02-30".into(),
                ..ok()
            },
            HG_A,
            "birth_date",
        ),
        (
            "gender unspecified",
            pb::MemberInput {
                gender: pb::Gender::Unspecified as i32,
                ..ok()
            },
            HG_A,
            "gender",
        ),
        (
            "gender out of range",
            pb::MemberInput { gender: 42, ..ok() },
            HG_A,
            "gender",
        ),
        (
            "joined before 15",
            pb::MemberInput {
                joined_on: "2004-01-01".into(),
                ..ok()
            },
            HG_A,
            "joined_on",
        ),
        (
            "no name",
            pb::MemberInput {
                full_name: " ".into(),
                ..ok()
            },
            HG_A,
            "full_name",
        ),
        (
            "card active in another unit",
            pb::MemberInput {
                card_number: "hg-0001".into(),
                ..ok()
            },
            HG_B,
            "card_number",
        ),
        (
            "card active in the same unit",
            pb::MemberInput {
                card_number: "HG-0001".into(),
                ..ok()
            },
            HG_A,
            "card_number",
        ),
        ("closed unit", ok(), "hg-dong-cua", "unit_id"),
        ("provincial unit", ok(), HG, "unit_id"),
        ("commune unit", ok(), HG_CT, "unit_id"),
        ("central unit", ok(), VN, "unit_id"),
        ("unknown unit", ok(), "khong-co", "unit_id"),
        ("malformed unit", ok(), "Khong Co", "unit_id"),
    ];
    let mut members = node.members();
    for (what, input, unit, field) in cases {
        let r = members
            .add_member(pb::AddMemberRequest {
                unit_id: unit.into(),
                member: Some(input),
            })
            .await;
        let m = match r {
            Ok(ok) => panic!("{what}: accepted {:?}", ok.into_inner()),
            Err(s) => {
                assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
                s.message().to_owned()
            }
        };
        assert!(m.starts_with(&format!("{field}: ")), "{what}: {m}");
        match what {
            "card active in another unit" => {
                assert!(m.contains(&first.id) && m.contains(HG_A), "{m}")
            }
            "closed unit" => assert!(m.contains("closed"), "{m}"),
            "provincial unit" => assert!(m.contains("roster"), "{m}"),
            _ => {}
        }
    }
    expect_invalid(
        members
            .add_member(pb::AddMemberRequest {
                unit_id: HG_A.into(),
                member: None,
            })
            .await,
        "member",
    );

    node.unchanged_since(mark).await?;
    assert_eq!(node.list(VN, true, None).await?.total, 1);
    // A valid member is still accepted afterwards.
    node.add(HG_B, ok()).await?;
    assert_eq!(node.list(VN, true, None).await?.total, 2);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_changes_own_and_private_fields() -> Result<()> {
    let node = private_tree().await?;
    let m = node
        .add(
            HG_A,
            with_private(person("Nguyen Van An", "HG-0001", pb::Gender::Male)),
        )
        .await?;
    let u = node
        .members()
        .update_member(pb::UpdateMemberRequest {
            member_id: m.id.clone(),
            full_name: Some("Nguyễn Văn Ân".into()),
            position: Some("Hiệu trưởng".into()),
            gender: Some(pb::Gender::Other as i32),
            joined_on: Some("2016-09-05".into()),
            national_id: Some("001090099999".into()),
            religion: Some("Phật giáo".into()),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(u.full_name, "Nguyễn Văn Ân");
    assert_eq!(u.position, "Hiệu trưởng");
    assert_eq!(u.gender, pb::Gender::Other as i32);
    assert_eq!(u.joined_on, "2016-09-05");
    assert_eq!(u.birth_date, "1990-05-12", "an unset field stays");

    let got = node.member(&m.id, true).await?;
    assert_eq!(got.full_name, "Nguyễn Văn Ân");
    let p = got.private.expect("private data");
    assert_eq!(p.national_id, "001090099999");
    assert_eq!(p.religion, "Phật giáo");
    assert_eq!(p.ethnicity, "Kinh", "an unset private field stays");
    // The projections follow: listing and search see the new name.
    assert_eq!(
        node.list(HG_A, false, None).await?.members[0].full_name,
        "Nguyễn Văn Ân"
    );
    let found = node
        .members()
        .find_members(pb::FindMembersRequest {
            query: "van an".into(),
            scope_unit_id: HG.into(),
            limit: 0,
        })
        .await?
        .into_inner();
    assert_eq!(found.members.len(), 1);

    // Refused updates write nothing, not even their valid parts.
    let mark = node.mark().await?;
    let mut members = node.members();
    let upd = |f: fn(&mut pb::UpdateMemberRequest)| {
        let mut r = pb::UpdateMemberRequest {
            member_id: m.id.clone(),
            full_name: Some("Tên Sai".into()),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    expect_invalid(
        members
            .update_member(upd(|r| r.national_id = Some("123".into())))
            .await,
        "national_id",
    );
    expect_invalid(
        members
            .update_member(upd(|r| r.birth_date = Some("2030-01-01".into())))
            .await,
        "birth_date",
    );
    expect_invalid(
        members
            .update_member(upd(|r| r.birth_date = Some("12/05/1990".into())))
            .await,
        "birth_date",
    );
    expect_invalid(
        members
            .update_member(upd(|r| r.gender = Some(pb::Gender::Unspecified as i32)))
            .await,
        "gender",
    );
    expect_invalid(
        members
            .update_member(upd(|r| r.joined_on = Some("2000-01-01".into())))
            .await,
        "joined_on",
    );
    expect_invalid(
        members
            .update_member(upd(|r| r.full_name = Some(String::new())))
            .await,
        "full_name",
    );
    expect_code(
        members
            .update_member(upd(|r| r.member_id = "mkhongco".into()))
            .await,
        Code::NotFound,
    );
    node.unchanged_since(mark).await?;
    let got = node.member(&m.id, true).await?;
    assert_eq!(got.full_name, "Nguyễn Văn Ân");
    assert_eq!(got.private.unwrap().national_id, "001090099999");
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_keeps_history_on_both_sides() -> Result<()> {
    let node = private_tree().await?;
    let m = node
        .add(
            HG_A,
            with_private(person("Lê Hoàng Cường", "HG-0003", pb::Gender::Male)),
        )
        .await?;
    let transfer = |to: &str, on: &str, reason: &str| pb::TransferMemberRequest {
        member_id: m.id.clone(),
        to_unit_id: to.to_owned(),
        effective_on: on.to_owned(),
        reason: reason.to_owned(),
    };
    let mut members = node.members();

    let t = members
        .transfer_member(transfer(HG_B, "2026-10-01", "chuyển công tác"))
        .await?
        .into_inner();
    assert_eq!((t.id.as_str(), t.unit_id.as_str()), (m.id.as_str(), HG_B));
    assert_eq!(t.status, pb::MemberStatus::Active as i32);
    assert_eq!(t.card_number, "HG-0003");
    assert_eq!(t.joined_on, "2015-03-01", "membership seniority is kept");
    assert_eq!(events(&t), [("transferred_in", "2026-10-01", HG_A)]);
    assert_eq!(t.history[0].reason, "chuyển công tác");

    // The old record stays, TRANSFERRED, with the reason and date.
    let old = node
        .list(HG_A, false, Some(pb::MemberStatus::Transferred))
        .await?;
    assert_eq!(old.total, 1);
    assert_eq!(old.members[0].id, m.id);
    assert_eq!(old.members[0].status_reason, "chuyển công tác");
    assert_eq!(old.members[0].status_on, "2026-10-01");
    assert_eq!(
        node.list(HG_A, false, Some(pb::MemberStatus::Active))
            .await?
            .total,
        0
    );
    assert_eq!(
        node.list(HG_B, false, Some(pb::MemberStatus::Active))
            .await?
            .total,
        1
    );

    // Lookups find the active record; private data moved with the member.
    let now = node.member(&m.id, true).await?;
    assert_eq!(now.unit_id, HG_B);
    assert_eq!(now.private.expect("private data").national_id, CCCD);
    let by = members
        .get_member(by_card("HG-0003", false))
        .await?
        .into_inner();
    assert_eq!(by.unit_id, HG_B);

    // Coming back reuses the old record, whose history shows both moves.
    let back = members
        .transfer_member(transfer(HG_A, "", "trở về trường cũ"))
        .await?
        .into_inner();
    assert_eq!(back.unit_id, HG_A);
    assert_eq!(
        events(&back),
        [
            ("joined", "2015-03-01", ""),
            ("transferred_out", "2026-10-01", HG_B),
            ("transferred_in", TODAY, HG_B),
        ]
    );
    assert_eq!(node.list(HG_A, false, None).await?.total, 1);
    let b_side = node
        .list(HG_B, false, Some(pb::MemberStatus::Transferred))
        .await?;
    assert_eq!(b_side.total, 1);
    assert_eq!(b_side.members[0].status_reason, "trở về trường cũ");
    assert_eq!(node.list(HG, true, None).await?.total, 2);
    assert_eq!(
        node.list(HG, true, Some(pb::MemberStatus::Active))
            .await?
            .total,
        1
    );

    // Transfers across provinces work on one node too.
    let far = members
        .transfer_member(transfer(LC_C, "", "lên Lai Châu"))
        .await?
        .into_inner();
    assert_eq!(far.unit_id, LC_C);
    assert_eq!(node.list(LC, true, None).await?.total, 1);

    let mark = node.mark().await?;
    let m1 = expect_invalid(
        members.transfer_member(transfer(LC_C, "", "")).await,
        "to_unit_id",
    );
    assert!(m1.contains("already"), "{m1}");
    expect_invalid(
        members.transfer_member(transfer(LC, "", "")).await,
        "to_unit_id",
    );
    expect_invalid(
        members.transfer_member(transfer("khong-co", "", "")).await,
        "to_unit_id",
    );
    expect_invalid(
        members
            .transfer_member(transfer(HG_B, "2010-01-01", ""))
            .await,
        "effective_on",
    );
    expect_invalid(
        members
            .transfer_member(transfer(HG_B, "01/10/2026", ""))
            .await,
        "effective_on",
    );
    expect_code(
        members
            .transfer_member(pb::TransferMemberRequest {
                member_id: "mkhongco".into(),
                to_unit_id: HG_B.into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_membership_left_and_ceased() -> Result<()> {
    let node = Node::with_tree().await?;
    let a = node
        .add(HG_A, person("Phạm Thị Dung", "HG-0004", pb::Gender::Female))
        .await?;
    let b = node
        .add(HG_A, person("Đỗ Minh Đức", "HG-0005", pb::Gender::Male))
        .await?;

    let left = node.end(&a.id, pb::MemberStatus::Left, "").await?;
    assert_eq!(left.status, pb::MemberStatus::Left as i32);
    assert_eq!(left.status_on, TODAY);
    assert_eq!(events(&left).last(), Some(&("left", TODAY, "")));

    let mark = node.mark().await?;
    let end = |id: &str, status: i32, reason: &str, on: &str| pb::EndMembershipRequest {
        member_id: id.to_owned(),
        status,
        reason: reason.to_owned(),
        effective_on: on.to_owned(),
    };
    let mut members = node.members();
    let ceased = pb::MemberStatus::Ceased as i32;
    let m = expect_invalid(
        members.end_membership(end(&a.id, ceased, "", "")).await,
        "member_id",
    );
    assert!(m.contains("no active membership"), "{m}");
    expect_invalid(
        members
            .end_membership(end(&a.id, pb::MemberStatus::Left as i32, "", ""))
            .await,
        "member_id",
    );
    expect_invalid(
        members.end_membership(end(&b.id, ceased, "", "")).await,
        "reason",
    );
    expect_invalid(
        members
            .end_membership(end(&b.id, ceased, "giải thể", "2026-12-01"))
            .await,
        "effective_on",
    );
    expect_invalid(
        members
            .end_membership(end(&b.id, ceased, "giải thể", "2010-01-01"))
            .await,
        "effective_on",
    );
    for status in [
        pb::MemberStatus::Active,
        pb::MemberStatus::Transferred,
        pb::MemberStatus::Unspecified,
    ] {
        expect_invalid(
            members
                .end_membership(end(&b.id, status as i32, "x", ""))
                .await,
            "status",
        );
    }
    node.unchanged_since(mark).await?;

    let reason = "Giải thể công đoàn cơ sở khối cơ quan nhà nước";
    let c = members
        .end_membership(end(&b.id, ceased, reason, "2025-07-01"))
        .await?
        .into_inner();
    assert_eq!(c.status, ceased);
    assert_eq!(
        (c.status_reason.as_str(), c.status_on.as_str()),
        (reason, "2025-07-01")
    );
    assert_eq!(events(&c).last(), Some(&("ceased", "2025-07-01", "")));

    for (status, n) in [
        (pb::MemberStatus::Active, 0),
        (pb::MemberStatus::Left, 1),
        (pb::MemberStatus::Ceased, 1),
    ] {
        assert_eq!(
            node.list(HG_A, false, Some(status)).await?.total,
            n,
            "{status:?}"
        );
    }
    // An ended member is still found by id, with the final state.
    assert_eq!(
        node.member(&b.id, false).await?.status,
        pb::MemberStatus::Ceased as i32
    );
    // Their card is free again: only active members hold cards.
    let again = node
        .add(HG_B, person("Phạm Thị Dung", "HG-0004", pb::Gender::Female))
        .await?;
    assert_ne!(again.id, a.id);
    node.stop().await
}

/// A member who left or ceased is still found by card; a card given to
/// someone new answers its active holder; a card held by several people,
/// none active, is refused naming them.
#[tokio::test]
async fn an_ended_member_is_found_by_card() -> Result<()> {
    let node = Node::with_tree().await?;
    let m = node
        .add(HG_A, person("Đinh Thị Hà", "HG-0100", pb::Gender::Female))
        .await?;
    node.end(&m.id, pb::MemberStatus::Ceased, "Giải thể công đoàn cơ sở")
        .await?;
    let got = node
        .members()
        .get_member(by_card("HG-0100", false))
        .await?
        .into_inner();
    assert_eq!(
        (got.id.as_str(), got.status),
        (m.id.as_str(), pb::MemberStatus::Ceased as i32)
    );
    let s = expect_code(
        node.members().get_member(by_card("HG-9999", false)).await,
        Code::NotFound,
    );
    assert!(s.message().contains("HG-9999"), "{s:?}");

    let n = node
        .add(HG_B, person("Lý Văn Minh", "HG-0100", pb::Gender::Male))
        .await?;
    let got = node
        .members()
        .get_member(by_card("HG-0100", false))
        .await?
        .into_inner();
    assert_eq!(got.id, n.id, "the active holder answers");

    node.end(&n.id, pb::MemberStatus::Left, "chuyển vùng")
        .await?;
    let s = expect_code(
        node.members().get_member(by_card("HG-0100", false)).await,
        Code::FailedPrecondition,
    );
    assert!(
        s.message().starts_with("card_number: ")
            && s.message().contains(&m.id)
            && s.message().contains(&n.id),
        "{s:?}"
    );
    node.stop().await
}
