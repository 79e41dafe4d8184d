//! CampaignService: launch within the launching unit's subtree, plans
//! inside the scope, the campaigns that cover a unit, closing.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use tonic::Code;

use crate::harness::*;

fn ids(cs: &[pb::Campaign]) -> Vec<&str> {
    let mut v: Vec<&str> = cs.iter().map(|c| c.id.as_str()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_plan_list_and_close() -> Result<()> {
    let node = Node::with_tree().await?;
    let national = node.launch("thi-dua-2026", VN, VN).await?;
    assert_eq!(national.launching_unit_id, VN);
    assert_eq!(national.scope_unit_id, VN);
    assert_eq!(national.status, pb::CampaignStatus::Active as i32);
    assert_eq!(
        (national.starts_on.as_str(), national.ends_on.as_str()),
        ("2026-01-01", "2026-12-31")
    );
    assert!(national.plans.is_empty());
    assert!(national.closed_on.is_empty());
    node.launch("hg-lao-dong-gioi", HG, HG).await?;
    node.launch("hg-chau-thanh-xanh", HG, HG_CT).await?;
    node.launch("lc-thuy-dien", LC, LC).await?;

    // An empty scope means the launching unit's subtree; an absent id is
    // generated.
    let generated = node
        .campaigns()
        .launch_campaign(pb::LaunchCampaignRequest {
            id: None,
            launching_unit_id: LC.into(),
            title: "Tháng Công nhân".into(),
            starts_on: "2026-05-01".into(),
            ends_on: "2026-05-31".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(!generated.id.is_empty());
    assert_eq!(generated.scope_unit_id, LC);

    // A grassroots unit is covered by the campaigns scoped above it.
    let list = |unit: &str| pb::ListCampaignsRequest {
        unit_id: unit.to_owned(),
    };
    let mut campaigns = node.campaigns();
    let covering = campaigns
        .list_campaigns(list(HG_A))
        .await?
        .into_inner()
        .campaigns;
    assert_eq!(
        ids(&covering),
        ["hg-chau-thanh-xanh", "hg-lao-dong-gioi", "thi-dua-2026"]
    );
    let lc = campaigns
        .list_campaigns(list(LC_C))
        .await?
        .into_inner()
        .campaigns;
    assert_eq!(
        ids(&lc),
        [generated.id.as_str(), "lc-thuy-dien", "thi-dua-2026"]
    );
    // A province also sees the campaigns scoped inside it.
    let hg = campaigns
        .list_campaigns(list(HG))
        .await?
        .into_inner()
        .campaigns;
    assert_eq!(
        ids(&hg),
        ["hg-chau-thanh-xanh", "hg-lao-dong-gioi", "thi-dua-2026"]
    );
    // Without a unit: the node's own unit, which sees everything.
    let all = campaigns
        .list_campaigns(list(""))
        .await?
        .into_inner()
        .campaigns;
    assert_eq!(all.len(), 5);

    // Plans: set, replaced per unit, kept for the others.
    let c = node
        .set_plans("thi-dua-2026", &[(HG_A, 10, 2), (HG_B, 5, 1), (LC_C, 4, 0)])
        .await?;
    assert_eq!(c.plans.len(), 3);
    let c = node.set_plans("thi-dua-2026", &[(HG_A, 12, 3)]).await?;
    let plan = |c: &pb::Campaign, unit: &str| {
        c.plans
            .iter()
            .find(|p| p.unit_id == unit)
            .map(|p| (p.initiative_quota, p.works_quota))
    };
    assert_eq!(plan(&c, HG_A), Some((12, 3)));
    assert_eq!(plan(&c, HG_B), Some((5, 1)));
    let got = campaigns
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: "thi-dua-2026".into(),
        })
        .await?
        .into_inner();
    assert_eq!(got.plans.len(), 3);
    assert_eq!(plan(&got, LC_C), Some((4, 0)));

    // Closing.
    let closed = campaigns
        .close_campaign(pb::CloseCampaignRequest {
            campaign_id: "hg-lao-dong-gioi".into(),
            closed_on: "2026-11-20".into(),
        })
        .await?
        .into_inner();
    assert_eq!(closed.status, pb::CampaignStatus::Closed as i32);
    assert_eq!(closed.closed_on, "2026-11-20");
    let got = campaigns
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: "hg-lao-dong-gioi".into(),
        })
        .await?
        .into_inner();
    assert_eq!(got.status, pb::CampaignStatus::Closed as i32);
    assert_eq!(
        got.closed_on, "2026-11-20",
        "GetCampaign shows the closing date"
    );
    // Without a date it closes today, and says so.
    let today = campaigns
        .close_campaign(pb::CloseCampaignRequest {
            campaign_id: "lc-thuy-dien".into(),
            closed_on: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(today.closed_on, TODAY);

    // A closed campaign takes no more plans, closings or registrations.
    let mark = node.mark().await?;
    expect_invalid(
        campaigns
            .close_campaign(pb::CloseCampaignRequest {
                campaign_id: "hg-lao-dong-gioi".into(),
                closed_on: String::new(),
            })
            .await,
        "campaign_id",
    );
    expect_invalid(
        campaigns
            .set_plans(pb::SetPlansRequest {
                campaign_id: "hg-lao-dong-gioi".into(),
                plans: vec![pb::Plan {
                    unit_id: HG_A.into(),
                    initiative_quota: 1,
                    works_quota: 0,
                }],
            })
            .await,
        "campaign_id",
    );
    expect_invalid(
        node.emulation()
            .register(pb::RegisterRequest {
                unit_id: HG_A.into(),
                campaign_id: "hg-lao-dong-gioi".into(),
                ..Default::default()
            })
            .await,
        "campaign_id",
    );
    expect_invalid(
        campaigns
            .close_campaign(pb::CloseCampaignRequest {
                campaign_id: "thi-dua-2026".into(),
                closed_on: "2025-12-31".into(),
            })
            .await,
        "closed_on",
    );
    node.unchanged_since(mark).await?;
    // Closed campaigns are still listed (reports need them).
    let covering = campaigns
        .list_campaigns(list(HG_A))
        .await?
        .into_inner()
        .campaigns;
    assert_eq!(covering.len(), 3);
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_and_plans_refuse_bad_requests() -> Result<()> {
    let node = Node::with_tree().await?;
    node.launch("hg-lao-dong-gioi", HG, HG).await?;
    let mark = node.mark().await?;
    let launch = |id: &str, launching: &str, scope: &str, starts: &str, ends: &str| {
        pb::LaunchCampaignRequest {
            id: Some(id.to_owned()),
            launching_unit_id: launching.to_owned(),
            title: "Thi đua".into(),
            theme: String::new(),
            starts_on: starts.to_owned(),
            ends_on: ends.to_owned(),
            scope_unit_id: scope.to_owned(),
        }
    };
    let mut campaigns = node.campaigns();
    let y = ("2026-01-01", "2026-12-31");

    let m = expect_invalid(
        campaigns
            .launch_campaign(launch("c1", HG, LC, y.0, y.1))
            .await,
        "scope_unit_id",
    );
    assert!(m.contains(LC) && m.contains(HG), "{m}");
    expect_invalid(
        campaigns
            .launch_campaign(launch("c1", HG_CT, HG, y.0, y.1))
            .await,
        "scope_unit_id",
    );
    expect_invalid(
        campaigns
            .launch_campaign(launch("c1", HG, "khong-co", y.0, y.1))
            .await,
        "scope_unit_id",
    );
    let m = expect_invalid(
        campaigns
            .launch_campaign(launch("c1", HG, HG, "2026-06-01", "2026-05-31"))
            .await,
        "ends_on",
    );
    assert!(m.contains("2026-06-01"), "{m}");
    expect_invalid(
        campaigns
            .launch_campaign(launch("c1", HG, HG, "", y.1))
            .await,
        "starts_on",
    );
    expect_invalid(
        campaigns
            .launch_campaign(launch("c1", "khong-co", "", y.0, y.1))
            .await,
        "launching_unit_id",
    );
    let mut untitled = launch("c1", HG, HG, y.0, y.1);
    untitled.title = String::new();
    expect_invalid(campaigns.launch_campaign(untitled).await, "title");
    expect_code(
        campaigns
            .launch_campaign(launch("hg-lao-dong-gioi", HG, HG, y.0, y.1))
            .await,
        Code::AlreadyExists,
    );

    let plans = |units: &[&str]| pb::SetPlansRequest {
        campaign_id: "hg-lao-dong-gioi".into(),
        plans: units
            .iter()
            .map(|u| pb::Plan {
                unit_id: (*u).to_owned(),
                initiative_quota: 3,
                works_quota: 1,
            })
            .collect(),
    };
    let m = expect_invalid(
        campaigns.set_plans(plans(&[LC_C])).await,
        "plans[0].unit_id",
    );
    assert!(m.contains("scope"), "{m}");
    expect_invalid(
        campaigns.set_plans(plans(&[HG_A, VN])).await,
        "plans[1].unit_id",
    );
    expect_invalid(
        campaigns.set_plans(plans(&[HG_A, HG_B, "khong-co"])).await,
        "plans[2].unit_id",
    );
    expect_invalid(campaigns.set_plans(plans(&[])).await, "plans");
    expect_code(
        campaigns
            .set_plans(pb::SetPlansRequest {
                campaign_id: "khong-co".into(),
                ..plans(&[HG_A])
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        campaigns
            .get_campaign(pb::GetCampaignRequest {
                campaign_id: "khong-co".into(),
            })
            .await,
        Code::NotFound,
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}
