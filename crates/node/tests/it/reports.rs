//! ReportService: one row per direct child unit (summing its subtree) plus
//! a total, for members, initiatives against plan (with rank), awards and
//! dedicated works.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

const CAMPAIGN: &str = "thi-dua-2026";

async fn members_report(node: &Node, unit: &str) -> Result<pb::MembersReportResponse> {
    Ok(node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: unit.to_owned(),
            as_of: String::new(),
        })
        .await?
        .into_inner())
}

/// (total, active, transferred, left, ceased, male, female, other)
fn counts(r: &pb::MembersRow) -> [u64; 8] {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_report_counts_each_province() -> Result<()> {
    let node = Node::with_tree().await?;
    use pb::Gender::{Female, Male, Other};
    let mut ids = Vec::new();
    for (unit, name, card, g) in [
        (HG_A, "Nguyễn Văn An", "HG-0001", Male),
        (HG_A, "Trần Thị Bích", "HG-0002", Female),
        (HG_A, "Lê Hoàng Cường", "HG-0003", Male),
        (HG_B, "Vũ Thị Hoa", "HG-0004", Female),
        (HG_B, "Hoàng Văn Giang", "HG-0005", Male),
        (HG_B, "Đinh Khánh", "HG-0006", Other),
        (LC_C, "Lò Văn Páo", "LC-0001", Male),
        (LC_C, "Lò Thị Mai", "LC-0002", Female),
    ] {
        ids.push(node.add(unit, person(name, card, g)).await?.id);
    }
    node.end(&ids[2], pb::MemberStatus::Left, "nghỉ việc")
        .await?;
    node.end(&ids[7], pb::MemberStatus::Ceased, "giải thể")
        .await?;
    node.members()
        .transfer_member(pb::TransferMemberRequest {
            member_id: ids[4].clone(),
            to_unit_id: LC_C.into(),
            effective_on: String::new(),
            reason: "chuyển công tác".into(),
        })
        .await?;

    let vn = members_report(&node, VN).await?;
    let rows: Vec<(&str, &str)> = vn
        .rows
        .iter()
        .map(|r| (r.unit_id.as_str(), r.unit_name.as_str()))
        .collect();
    assert_eq!(
        rows,
        [(HG, "LĐLĐ tỉnh Hậu Giang"), (LC, "LĐLĐ tỉnh Lai Châu")],
        "one row per province, none for vn (it holds no roster)"
    );
    // Records in every state; genders of active members only.
    assert_eq!(counts(&vn.rows[0]), [6, 4, 1, 1, 0, 1, 2, 1]);
    assert_eq!(counts(&vn.rows[1]), [3, 2, 0, 0, 1, 2, 0, 0]);
    let total = vn.total.expect("a total row");
    assert_eq!(total.unit_id, VN);
    assert_eq!(counts(&total), [9, 6, 1, 1, 1, 3, 2, 1]);

    // The same numbers from one level down.
    let hg = members_report(&node, HG).await?;
    assert_eq!(hg.rows.len(), 1);
    assert_eq!(hg.rows[0].unit_id, HG_CT);
    assert_eq!(counts(&hg.rows[0]), counts(&vn.rows[0]));
    let ct = members_report(&node, HG_CT).await?;
    let units: Vec<&str> = ct.rows.iter().map(|r| r.unit_id.as_str()).collect();
    assert_eq!(units, [HG_B, HG_A], "ordered by name");
    assert_eq!(counts(&ct.rows[1]), [3, 2, 0, 1, 0, 1, 1, 0]);
    assert_eq!(counts(&ct.total.unwrap()), counts(&vn.rows[0]));
    // A grassroots unit reports its own roster.
    let a = members_report(&node, HG_A).await?;
    assert_eq!(a.rows.len(), 1);
    assert_eq!(a.rows[0].unit_id, HG_A);
    assert_eq!(counts(&a.total.unwrap()), [3, 2, 0, 1, 0, 1, 1, 0]);
    // Without a unit: the node's own.
    assert_eq!(members_report(&node, "").await?.total.unwrap().total, 9);

    // A new province shows up with zeros.
    node.create_unit("kien-giang", "LĐLĐ tỉnh Kiên Giang", "provincial", VN)
        .await?;
    let vn = members_report(&node, VN).await?;
    let kg = vn.rows.iter().find(|r| r.unit_id == "kien-giang").unwrap();
    assert_eq!(counts(kg), [0; 8]);
    assert_eq!(vn.total.unwrap().total, 9);

    expect_code(
        node.reports()
            .members_report(pb::MembersReportRequest {
                unit_id: "khong-co".into(),
                as_of: String::new(),
            })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiatives_report_ranks_by_percent_of_plan() -> Result<()> {
    let node = Node::with_tree().await?;
    node.create_unit("kien-giang", "LĐLĐ tỉnh Kiên Giang", "provincial", VN)
        .await?;
    node.launch(CAMPAIGN, VN, VN).await?;
    node.launch("khac", VN, VN).await?;
    node.set_plans(CAMPAIGN, &[(HG_A, 3, 0), (HG_B, 1, 0), (LC_C, 2, 0)])
        .await?;

    // Hậu Giang: 2 valid of a plan of 4 (50%); 4 recorded.
    node.valid_initiative(HG_A, CAMPAIGN, "A1").await?;
    node.initiative(HG_A, CAMPAIGN, "A2", 0).await?;
    let rejected = node.initiative(HG_A, CAMPAIGN, "A3", 0).await?;
    node.set_status(
        HG_A,
        CAMPAIGN,
        &rejected.id,
        pb::InitiativeStatus::Rejected,
        "",
    )
    .await?;
    node.valid_initiative(HG_B, CAMPAIGN, "B1").await?;
    // Lai Châu: 2 valid of 2 (100%), one of them recognised.
    node.valid_initiative(LC_C, CAMPAIGN, "C1").await?;
    let c2 = node.initiative(LC_C, CAMPAIGN, "C2", 0).await?;
    node.set_status(LC_C, CAMPAIGN, &c2.id, pb::InitiativeStatus::Valid, "")
        .await?;
    node.set_status(
        LC_C,
        CAMPAIGN,
        &c2.id,
        pb::InitiativeStatus::Recognised,
        "cấp tỉnh",
    )
    .await?;
    // Another campaign does not count.
    node.valid_initiative(HG_A, "khac", "X1").await?;

    let r = node
        .reports()
        .initiatives_report(pb::InitiativesReportRequest {
            campaign_id: CAMPAIGN.into(),
            unit_id: VN.into(),
            as_of: String::new(),
        })
        .await?
        .into_inner();
    let row = |id: &str| r.rows.iter().find(|x| x.unit_id == id).unwrap();
    let hg = row(HG);
    assert_eq!((hg.recorded, hg.valid, hg.plan), (4, 2, 4));
    assert_eq!(hg.percent_of_plan, 50.0);
    let lc = row(LC);
    assert_eq!((lc.recorded, lc.valid, lc.plan), (2, 2, 2));
    assert_eq!(lc.percent_of_plan, 100.0);
    let kg = row("kien-giang");
    assert_eq!((kg.recorded, kg.valid, kg.plan), (0, 0, 0));
    assert_eq!(kg.percent_of_plan, 0.0);
    assert_eq!((lc.rank, hg.rank, kg.rank), (1, 2, 3));
    assert_eq!(r.rows.len(), 3);
    let total = r.total.expect("a total row");
    assert_eq!((total.recorded, total.valid, total.plan), (6, 4, 6));
    assert_eq!(total.percent_of_plan, 66.67);
    assert_eq!(total.rank, 0);

    // One level down: Nhà máy B (1 of 1) outranks Trường A (1 of 3).
    let ct = node
        .reports()
        .initiatives_report(pb::InitiativesReportRequest {
            campaign_id: CAMPAIGN.into(),
            unit_id: HG_CT.into(),
            as_of: String::new(),
        })
        .await?
        .into_inner();
    let row = |id: &str| ct.rows.iter().find(|x| x.unit_id == id).unwrap();
    assert_eq!((row(HG_B).rank, row(HG_B).percent_of_plan), (1, 100.0));
    assert_eq!((row(HG_A).rank, row(HG_A).percent_of_plan), (2, 33.33));

    expect_code(
        node.reports()
            .initiatives_report(pb::InitiativesReportRequest {
                campaign_id: "khong-co".into(),
                unit_id: VN.into(),
                as_of: String::new(),
            })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awards_report_leaves_out_revoked_awards() -> Result<()> {
    let node = Node::with_tree().await?;
    let an = node
        .add(HG_A, person("Nguyễn Văn An", "HG-0001", pb::Gender::Male))
        .await?
        .id;
    let bich = node
        .add(HG_B, person("Trần Thị Bích", "HG-0002", pb::Gender::Female))
        .await?
        .id;
    node.decide(decision(
        HG,
        "bang-khen-cap-tinh",
        vec![member_recipient(&an)],
    ))
    .await?;
    let revoked = node
        .decide(decision(
            HG,
            "chien-si-thi-dua",
            vec![member_recipient(&bich)],
        ))
        .await?;
    node.decide(decision(VN, "bang-khen-tld", vec![unit_recipient(HG_CT)]))
        .await?;
    node.decide(decision(VN, "co-thi-dua-tld", vec![unit_recipient(LC_C)]))
        .await?;
    node.decide(pb::DecideAwardRequest {
        decided_on: "2025-12-15".into(),
        ..decision(HG, "bang-khen-cap-tinh", vec![member_recipient(&bich)])
    })
    .await?;

    let report = async |unit: &str, year: Option<u32>| -> Result<pb::AwardsReportResponse> {
        Ok(node
            .reports()
            .awards_report(pb::AwardsReportRequest {
                unit_id: unit.to_owned(),
                year,
                as_of: String::new(),
            })
            .await?
            .into_inner())
    };
    let rows = |r: &pb::AwardsReportResponse| -> Vec<(String, String, u32, u64)> {
        let mut v: Vec<_> = r
            .rows
            .iter()
            .map(|x| (x.award_type.clone(), x.level.clone(), x.year, x.count))
            .collect();
        v.sort();
        v
    };
    let row = |t: &str, level: &str, year: u32, n: u64| (t.to_owned(), level.to_owned(), year, n);

    let before = report(VN, Some(2026)).await?;
    assert_eq!(before.total.unwrap().count, 4);
    node.awards()
        .revoke_award(pb::RevokeAwardRequest {
            award_id: revoked.id.clone(),
            revoked_on: String::new(),
            reason: "Thu hồi".into(),
        })
        .await?;

    let vn = report(VN, Some(2026)).await?;
    assert_eq!(
        rows(&vn),
        [
            row("bang-khen-cap-tinh", "provincial", 2026, 1),
            row("bang-khen-tld", "central", 2026, 1),
            row("co-thi-dua-tld", "central", 2026, 1),
        ]
    );
    assert!(vn.rows.iter().all(|r| !r.award_name.is_empty()));
    let total = vn.total.unwrap();
    assert_eq!((total.count, total.year), (3, 2026));

    let all_years = report(VN, None).await?;
    assert_eq!(all_years.rows.len(), 4);
    assert!(
        rows(&all_years).contains(&row("bang-khen-cap-tinh", "provincial", 2025, 1)),
        "{all_years:?}"
    );
    assert_eq!(all_years.total.unwrap().count, 4);

    // A province sees the awards to its own people and units.
    let hg = report(HG, Some(2026)).await?;
    assert_eq!(
        rows(&hg),
        [
            row("bang-khen-cap-tinh", "provincial", 2026, 1),
            row("bang-khen-tld", "central", 2026, 1),
        ]
    );
    let lc = report(LC, None).await?;
    assert_eq!(rows(&lc), [row("co-thi-dua-tld", "central", 2026, 1)]);
    assert!(report(HG, Some(2024)).await?.rows.is_empty());
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_report_sums_value_and_plaques() -> Result<()> {
    let node = Node::with_tree().await?;
    node.launch(CAMPAIGN, VN, VN).await?;
    node.launch("hg-rieng", HG, HG).await?;
    node.work(HG_A, CAMPAIGN, "Nhà đa năng", 2_500_000_000, true)
        .await?;
    node.work(HG_B, CAMPAIGN, "Sân bóng", 500_000_000, false)
        .await?;
    node.work(HG_A, "hg-rieng", "Thư viện xanh", 100_000_000, true)
        .await?;
    node.work(LC_C, CAMPAIGN, "Cầu dân sinh", 1_000_000_000, true)
        .await?;

    let report = async |unit: &str, campaign: Option<&str>| -> Result<pb::WorksReportResponse> {
        Ok(node
            .reports()
            .works_report(pb::WorksReportRequest {
                unit_id: unit.to_owned(),
                campaign_id: campaign.map(str::to_owned),
                as_of: String::new(),
            })
            .await?
            .into_inner())
    };
    let sums = |r: &pb::WorksRow| (r.count, r.value_vnd, r.plaques);

    let all = report(VN, None).await?;
    let row = |r: &pb::WorksReportResponse, id: &str| {
        sums(r.rows.iter().find(|x| x.unit_id == id).unwrap())
    };
    assert_eq!(all.rows.len(), 2);
    assert_eq!(row(&all, HG), (3, 3_100_000_000, 2));
    assert_eq!(row(&all, LC), (1, 1_000_000_000, 1));
    assert_eq!(sums(&all.total.unwrap()), (4, 4_100_000_000, 3));

    let one = report(VN, Some(CAMPAIGN)).await?;
    assert_eq!(row(&one, HG), (2, 3_000_000_000, 1));
    assert_eq!(row(&one, LC), (1, 1_000_000_000, 1));
    assert_eq!(sums(&one.total.unwrap()), (3, 4_000_000_000, 2));

    let ct = report(HG_CT, Some(CAMPAIGN)).await?;
    assert_eq!(row(&ct, HG_A), (1, 2_500_000_000, 1));
    assert_eq!(row(&ct, HG_B), (1, 500_000_000, 0));
    // An empty campaign id means every campaign.
    assert_eq!(
        sums(&report(HG, Some("")).await?.total.unwrap()),
        (3, 3_100_000_000, 2)
    );

    expect_code(
        node.reports()
            .works_report(pb::WorksReportRequest {
                unit_id: VN.into(),
                campaign_id: Some("khong-co".into()),
                as_of: String::new(),
            })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

/// Hậu Giang's districts, from 2020, and their abolition: Phụng Hiệp's
/// grassroots union moved to Châu Thành by a decision of 1/11/2026
/// effective 1/7/2025, and Phụng Hiệp merged into Châu Thành that day.
const CT: &str = "hg-chau-thanh";
const PH: &str = "hg-phung-hiep";

async fn districts(node: &Node) -> Result<()> {
    for (id, name, kind, parent) in [
        (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
        (CT, "LĐLĐ huyện Châu Thành", "district", HG),
        (PH, "LĐLĐ huyện Phụng Hiệp", "district", HG),
        (HG_A, "CĐCS Trường THPT A", "grassroots", CT),
        (HG_B, "CĐCS Nhà máy B", "grassroots", PH),
    ] {
        node.units()
            .create_unit(pb::CreateUnitRequest {
                id: Some(id.to_owned()),
                name: name.to_owned(),
                kind: kind.to_owned(),
                parent_id: parent.to_owned(),
                effective_on: "2020-01-01".to_owned(),
                decision_no: "01/QĐ".to_owned(),
            })
            .await?;
    }
    Ok(())
}

async fn abolish_phung_hiep(node: &Node) -> Result<()> {
    node.units()
        .move_unit(pb::MoveUnitRequest {
            unit_id: HG_B.into(),
            new_parent_id: CT.into(),
            decided_on: "2026-11-01".into(),
            effective_on: "2025-07-01".into(),
            decision_no: "1656/QĐ".into(),
        })
        .await?;
    node.units()
        .close_unit(pb::CloseUnitRequest {
            unit_id: PH.into(),
            reason: "Sắp xếp đơn vị hành chính".into(),
            effective_on: "2025-07-01".into(),
            decision_no: "1657/QĐ".into(),
            successor_ids: vec![CT.into()],
            merged: true,
        })
        .await?;
    Ok(())
}

async fn members_on(node: &Node, unit: &str, as_of: &str) -> Result<pb::MembersReportResponse> {
    Ok(node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: unit.to_owned(),
            as_of: as_of.to_owned(),
        })
        .await?
        .into_inner())
}

fn by_unit(r: &pb::MembersReportResponse) -> Vec<(&str, [u64; 8])> {
    r.rows
        .iter()
        .map(|x| (x.unit_id.as_str(), counts(x)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_as_of_a_date_follow_the_tree_and_statuses_of_that_date() -> Result<()> {
    let node = Node::start().await?;
    districts(&node).await?;
    use pb::Gender::{Female, Male};
    node.add(HG_A, person("Nguyễn Văn An", "HG-0001", Male))
        .await?;
    let bich = node
        .add(HG_A, person("Trần Thị Bích", "HG-0002", Female))
        .await?;
    node.add(HG_B, person("Lê Hoàng Cường", "HG-0003", Male))
        .await?;
    node.members()
        .end_membership(pb::EndMembershipRequest {
            member_id: bich.id.clone(),
            status: pb::MemberStatus::Ceased as i32,
            reason: "giải thể tổ".into(),
            effective_on: "2026-03-01".into(),
        })
        .await?;
    // A 2023 campaign of the province: Phụng Hiệp 1 of 1, Châu Thành 1 of 2.
    node.campaigns()
        .launch_campaign(pb::LaunchCampaignRequest {
            id: Some("thi-dua-2023".into()),
            launching_unit_id: HG.into(),
            title: "Phong trào thi đua 2023".into(),
            theme: String::new(),
            starts_on: "2023-01-01".into(),
            ends_on: "2023-12-31".into(),
            scope_unit_id: HG.into(),
        })
        .await?;
    node.set_plans("thi-dua-2023", &[(HG_A, 2, 0), (HG_B, 1, 0)])
        .await?;
    node.valid_initiative(HG_A, "thi-dua-2023", "A1").await?;
    node.valid_initiative(HG_B, "thi-dua-2023", "B1").await?;
    abolish_phung_hiep(&node).await?;

    // Before the merger, both districts; from it, Châu Thành alone.
    let one = |m: u64, f: u64| [m + f, m + f, 0, 0, 0, m, f, 0];
    let before = members_on(&node, HG, "2025-06-30").await?;
    assert_eq!(before.as_of, "2025-06-30");
    assert_eq!(by_unit(&before), [(CT, one(1, 1)), (PH, one(1, 0))]);
    let on = members_on(&node, HG, "2025-07-01").await?;
    assert_eq!(by_unit(&on), [(CT, one(2, 1))]);
    // The node's own unit, recorded when the node first started, reports
    // on earlier dates too.
    let vn = members_on(&node, VN, "2025-06-30").await?;
    assert_eq!(by_unit(&vn), [(HG, one(2, 1))]);
    // The cessation counts from its day.
    let r = members_on(&node, HG, "2026-02-28").await?;
    assert_eq!(counts(&r.total.unwrap()), one(2, 1));
    let r = members_on(&node, HG, "2026-03-01").await?;
    assert_eq!(counts(&r.total.unwrap()), [3, 2, 0, 0, 1, 2, 0, 0]);
    // Without a date: today, by the node's clock.
    let today = members_on(&node, HG, "").await?;
    assert_eq!(today.as_of, TODAY);
    assert_eq!(by_unit(&today), [(CT, [3, 2, 0, 0, 1, 2, 0, 0])]);

    // A unit that did not exist on the date is refused, saying why.
    let m = expect_invalid(
        node.reports()
            .members_report(pb::MembersReportRequest {
                unit_id: PH.into(),
                as_of: "2025-07-01".into(),
            })
            .await,
        "as_of",
    );
    assert!(
        m.contains(PH) && m.contains(&format!("merged into {CT} on 2025-07-01")),
        "{m}"
    );
    let m = expect_invalid(
        node.reports()
            .works_report(pb::WorksReportRequest {
                unit_id: HG.into(),
                campaign_id: None,
                as_of: "2019-12-31".into(),
            })
            .await,
        "as_of",
    );
    assert!(m.contains("not yet created"), "{m}");
    expect_invalid(
        node.reports()
            .awards_report(pb::AwardsReportRequest {
                unit_id: HG.into(),
                year: None,
                as_of: "31/12/2025".into(),
            })
            .await,
        "as_of",
    );
    // Phụng Hiệp's own history stays readable.
    let ph = members_on(&node, PH, "2025-06-30").await?;
    assert_eq!(by_unit(&ph), [(HG_B, one(1, 0))]);

    // A campaign's report is as of its last day: its ranking stays.
    let initiatives = async |as_of: &str| -> Result<pb::InitiativesReportResponse> {
        Ok(node
            .reports()
            .initiatives_report(pb::InitiativesReportRequest {
                campaign_id: "thi-dua-2023".into(),
                unit_id: HG.into(),
                as_of: as_of.to_owned(),
            })
            .await?
            .into_inner())
    };
    let ranking = |r: &pb::InitiativesReportResponse| -> Vec<(String, u64, u64, u32)> {
        r.rows
            .iter()
            .map(|x| (x.unit_id.clone(), x.valid, x.plan, x.rank))
            .collect()
    };
    let r = initiatives("").await?;
    assert_eq!(r.as_of, "2023-12-31");
    assert_eq!(
        ranking(&r),
        [(CT.to_owned(), 1, 2, 2), (PH.to_owned(), 1, 1, 1)]
    );
    let r = initiatives("2025-07-01").await?;
    assert_eq!(ranking(&r), [(CT.to_owned(), 2, 3, 1)]);

    // Works and awards say which date they are of too.
    let works = node
        .reports()
        .works_report(pb::WorksReportRequest {
            unit_id: HG.into(),
            campaign_id: None,
            as_of: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(works.as_of, TODAY);
    let works = node
        .reports()
        .works_report(pb::WorksReportRequest {
            unit_id: HG.into(),
            campaign_id: Some("thi-dua-2023".into()),
            as_of: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        works.as_of, "2023-12-31",
        "a campaign's works: its last day"
    );
    let awards = node
        .reports()
        .awards_report(pb::AwardsReportRequest {
            unit_id: HG.into(),
            year: None,
            as_of: "2025-01-01".into(),
        })
        .await?
        .into_inner();
    assert_eq!(awards.as_of, "2025-01-01");
    node.stop().await
}
