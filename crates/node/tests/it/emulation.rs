//! EmulationService: registration, initiatives through the review
//! workflow, dedicated works, and the refusals that name their field.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use pb::InitiativeStatus as S;
use tonic::Code;

use crate::harness::*;

const CAMPAIGN: &str = "thi-dua-2026";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_record_review_and_read_back() -> Result<()> {
    let node = Node::with_tree().await?;
    node.launch(CAMPAIGN, VN, VN).await?;
    let mut emulation = node.emulation();

    let e = emulation
        .register(pb::RegisterRequest {
            unit_id: HG_A.into(),
            campaign_id: CAMPAIGN.into(),
            registered_on: "2026-02-01".into(),
            pledge: "100% đoàn viên đạt lao động giỏi".into(),
        })
        .await?
        .into_inner();
    assert!(e.registered);
    assert_eq!(
        (e.unit_id.as_str(), e.campaign_id.as_str()),
        (HG_A, CAMPAIGN)
    );
    assert_eq!(e.registered_on, "2026-02-01");

    let i = emulation
        .record_initiative(pb::RecordInitiativeRequest {
            unit_id: HG_A.into(),
            campaign_id: CAMPAIGN.into(),
            title: "Phần mềm quản lý thư viện".into(),
            authors: vec!["Nguyễn Văn An".into(), "Trần Thị Bích".into()],
            value_vnd: 150_000_000,
            submitted_on: "2026-03-15".into(),
        })
        .await?
        .into_inner();
    assert_eq!(i.status, S::Submitted as i32);
    assert_eq!(i.value_vnd, 150_000_000);
    assert_eq!(i.authors.len(), 2);
    assert_eq!(i.submitted_on, "2026-03-15");

    // submitted -> under review -> valid -> recognised (with its level).
    let step = node
        .set_status(HG_A, CAMPAIGN, &i.id, S::UnderReview, "")
        .await?;
    assert_eq!(step.status, S::UnderReview as i32);
    node.set_status(HG_A, CAMPAIGN, &i.id, S::Valid, "").await?;
    let r = node
        .emulation()
        .set_initiative_status(pb::SetInitiativeStatusRequest {
            unit_id: HG_A.into(),
            campaign_id: CAMPAIGN.into(),
            initiative_id: i.id.clone(),
            status: S::Recognised as i32,
            recognised_level: "cấp tỉnh".into(),
            note: "Hội đồng sáng kiến tỉnh công nhận".into(),
        })
        .await?
        .into_inner();
    assert_eq!(r.status, S::Recognised as i32);
    assert_eq!(r.recognised_level, "cấp tỉnh");
    assert_eq!(r.note, "Hội đồng sáng kiến tỉnh công nhận");

    // A rejected initiative may be reviewed again.
    let other = node.initiative(HG_A, CAMPAIGN, "Tiết kiệm điện", 0).await?;
    node.set_status(HG_A, CAMPAIGN, &other.id, S::Rejected, "")
        .await?;
    node.set_status(HG_A, CAMPAIGN, &other.id, S::UnderReview, "")
        .await?;

    let w = node
        .work(HG_A, CAMPAIGN, "Nhà đa năng", 2_500_000_000, true)
        .await?;
    assert_eq!((w.value_vnd, w.plaque), (2_500_000_000, true));
    assert_eq!(w.completed_on, "2026-09-02");

    let e = emulation
        .get_emulation(pb::GetEmulationRequest {
            unit_id: HG_A.into(),
            campaign_id: CAMPAIGN.into(),
        })
        .await?
        .into_inner();
    assert!(e.registered);
    assert_eq!(e.pledge, "100% đoàn viên đạt lao động giỏi");
    assert_eq!(e.initiatives.len(), 2);
    let got = e.initiatives.iter().find(|x| x.id == i.id).unwrap();
    assert_eq!(got.status, S::Recognised as i32);
    assert_eq!(got.recognised_level, "cấp tỉnh");
    let got = e.initiatives.iter().find(|x| x.id == other.id).unwrap();
    assert_eq!(got.status, S::UnderReview as i32);
    assert_eq!(e.works.len(), 1);
    assert_eq!(e.works[0].id, w.id);

    // A unit may record without registering first.
    node.initiative(HG_B, CAMPAIGN, "Cải tiến dây chuyền", 0)
        .await?;
    let b = emulation
        .get_emulation(pb::GetEmulationRequest {
            unit_id: HG_B.into(),
            campaign_id: CAMPAIGN.into(),
        })
        .await?
        .into_inner();
    assert!(!b.registered);
    assert_eq!(b.initiatives.len(), 1);
    expect_code(
        emulation
            .get_emulation(pb::GetEmulationRequest {
                unit_id: LC_C.into(),
                campaign_id: CAMPAIGN.into(),
            })
            .await,
        Code::NotFound,
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulation_refuses_bad_requests_and_writes_nothing() -> Result<()> {
    let node = Node::with_tree().await?;
    node.launch(CAMPAIGN, HG, HG).await?;
    let submitted = node.initiative(HG_A, CAMPAIGN, "Sáng kiến A", 0).await?;
    let valid = node.initiative(HG_A, CAMPAIGN, "Sáng kiến B", 0).await?;
    node.set_status(HG_A, CAMPAIGN, &valid.id, S::Valid, "")
        .await?;
    let mark = node.mark().await?;
    let mut emulation = node.emulation();

    let initiative =
        |unit: &str, value_vnd: i64, authors: Vec<String>, on: &str| pb::RecordInitiativeRequest {
            unit_id: unit.to_owned(),
            campaign_id: CAMPAIGN.into(),
            title: "Sáng kiến".into(),
            authors,
            value_vnd,
            submitted_on: on.to_owned(),
        };
    let an = || vec!["Nguyễn Văn An".to_owned()];
    let m = expect_invalid(
        emulation
            .record_initiative(initiative(HG_A, -1, an(), ""))
            .await,
        "value_vnd",
    );
    assert!(m.contains("-1"), "{m}");
    expect_invalid(
        emulation
            .record_initiative(initiative(HG_A, 0, Vec::new(), ""))
            .await,
        "authors",
    );
    expect_invalid(
        emulation
            .record_initiative(initiative(HG_A, 0, an(), "2026-12-01"))
            .await,
        "submitted_on",
    );
    expect_invalid(
        emulation
            .record_initiative(initiative(LC_C, 0, an(), ""))
            .await,
        "unit_id",
    );
    expect_invalid(
        emulation
            .record_initiative(initiative("khong-co", 0, an(), ""))
            .await,
        "unit_id",
    );
    expect_code(
        emulation
            .record_initiative(pb::RecordInitiativeRequest {
                campaign_id: "khong-co".into(),
                ..initiative(HG_A, 0, an(), "")
            })
            .await,
        Code::NotFound,
    );

    // The workflow: no skipping to recognised, and recognition needs a level.
    let m = expect_invalid_inner(
        node.set_status(HG_A, CAMPAIGN, &submitted.id, S::Recognised, "cấp tỉnh")
            .await,
        "status",
    );
    assert!(m.contains("submitted") && m.contains("recognised"), "{m}");
    expect_invalid_inner(
        node.set_status(HG_A, CAMPAIGN, &valid.id, S::Submitted, "")
            .await,
        "status",
    );
    expect_invalid_inner(
        node.set_status(HG_A, CAMPAIGN, &valid.id, S::Unspecified, "")
            .await,
        "status",
    );
    expect_invalid_inner(
        node.set_status(HG_A, CAMPAIGN, &valid.id, S::Recognised, "")
            .await,
        "recognised_level",
    );
    expect_invalid_inner(
        node.set_status(HG_A, CAMPAIGN, &valid.id, S::Recognised, "  ")
            .await,
        "recognised_level",
    );
    let missing = node
        .set_status(HG_A, CAMPAIGN, "ikhongco", S::Valid, "")
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    let no_doc = node
        .set_status(HG_B, CAMPAIGN, &valid.id, S::Valid, "")
        .await;
    assert_eq!(no_doc.unwrap_err().code(), Code::NotFound);

    let m = expect_invalid_inner(
        node.work(HG_A, CAMPAIGN, "Công trình", -5_000_000, false)
            .await,
        "value_vnd",
    );
    assert!(m.contains("negative"), "{m}");
    expect_invalid_inner(node.work(HG_A, CAMPAIGN, "", 1, false).await, "name");
    expect_invalid_inner(
        node.work(LC_C, CAMPAIGN, "Đường", 1, false).await,
        "unit_id",
    );
    expect_invalid(
        emulation
            .record_work(pb::RecordWorkRequest {
                unit_id: HG_A.into(),
                campaign_id: CAMPAIGN.into(),
                name: "Công trình".into(),
                value_vnd: 1,
                plaque: false,
                completed_on: "2027-01-01".into(),
            })
            .await,
        "completed_on",
    );
    expect_invalid(
        emulation
            .register(pb::RegisterRequest {
                unit_id: LC_C.into(),
                campaign_id: CAMPAIGN.into(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );
    expect_invalid(
        emulation
            .register(pb::RegisterRequest {
                unit_id: HG_A.into(),
                campaign_id: CAMPAIGN.into(),
                registered_on: "1/2/2026".into(),
                ..Default::default()
            })
            .await,
        "registered_on",
    );

    node.unchanged_since(mark).await?;
    let e = emulation
        .get_emulation(pb::GetEmulationRequest {
            unit_id: HG_A.into(),
            campaign_id: CAMPAIGN.into(),
        })
        .await?
        .into_inner();
    assert_eq!(e.initiatives.len(), 2);
    assert!(e.works.is_empty());
    let still = e.initiatives.iter().find(|i| i.id == valid.id).unwrap();
    assert_eq!(still.status, S::Valid as i32);
    node.stop().await
}
