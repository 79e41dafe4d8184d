//! Client roles over mutual TLS: what an administrator, office staff of a
//! unit and a node's certificate may do with the client API. Every denial
//! is PERMISSION_DENIED naming the operation and the units (never a
//! member's name), and writes nothing.

use anyhow::Result;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use hopluu_proto::v1::member_service_client::MemberServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::*;

/// The typed clients of one caller.
struct As {
    channel: Channel,
}

impl As {
    async fn new(node: &Node, caller: Caller) -> Result<As> {
        Ok(As {
            channel: node.channel_as(&caller).await?,
        })
    }

    fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.channel.clone())
    }

    fn units(&self) -> pb::unit_service_client::UnitServiceClient<Channel> {
        pb::unit_service_client::UnitServiceClient::new(self.channel.clone())
    }

    fn reports(&self) -> pb::report_service_client::ReportServiceClient<Channel> {
        pb::report_service_client::ReportServiceClient::new(self.channel.clone())
    }

    fn campaigns(&self) -> pb::campaign_service_client::CampaignServiceClient<Channel> {
        pb::campaign_service_client::CampaignServiceClient::new(self.channel.clone())
    }

    fn awards(&self) -> pb::award_service_client::AwardServiceClient<Channel> {
        pb::award_service_client::AwardServiceClient::new(self.channel.clone())
    }

    fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    async fn add(&self, unit: &str, name: &str, card: &str) -> Result<pb::Member, tonic::Status> {
        self.members()
            .add_member(pb::AddMemberRequest {
                unit_id: unit.to_owned(),
                member: Some(person(name, card, pb::Gender::Female)),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn list(&self, unit: &str) -> Result<Vec<pb::Member>, tonic::Status> {
        self.members()
            .list_members(pb::ListMembersRequest {
                unit_id: unit.to_owned(),
                include_subtree: false,
                status: None,
                limit: 100,
                offset: 0,
            })
            .await
            .map(|r| r.into_inner().members)
    }
}

/// A PERMISSION_DENIED whose message names every one of `names`.
#[track_caller]
fn denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>, names: &[&str]) -> String {
    let s = expect_code(r.map(tonic::Response::new), Code::PermissionDenied);
    let m = s.message().to_owned();
    for n in names {
        assert!(m.contains(n), "expected {n:?} in {m:?}");
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_write_and_read_only_within_their_unit() -> Result<()> {
    let node = Node::with_tree().await?;
    let sibling = node
        .add(
            HG_B,
            person("Trần Thị Bình", "HG-B-0001", pb::Gender::Female),
        )
        .await?;
    let clerk = As::new(&node, Caller::staff("clerk-a", HG_A)).await?;

    // Their own unit: write and read.
    let own = clerk.add(HG_A, "Nguyễn Thị Lan", "HG-A-0001").await?;
    assert_eq!(own.unit_id, HG_A);
    assert_eq!(clerk.list(HG_A).await?.len(), 1);
    let report = clerk
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: String::new(),
            as_of: String::new(),
        })
        .await?
        .into_inner();
    assert_eq!(
        report.total.expect("a total row").total,
        1,
        "an omitted unit is the clerk's own"
    );

    let mark = node.mark().await?;
    // A sibling's roster: no write, no read.
    let m = denied(
        clerk.add(HG_B, "Lê Văn Cường", "HG-B-0002").await,
        &["AddMember", HG_B, HG_A],
    );
    assert!(!m.contains("Lê Văn Cường"), "{m}");
    denied(clerk.list(HG_B).await, &["ListMembers", HG_B]);
    let m = denied(
        clerk
            .members()
            .get_member(pb::GetMemberRequest {
                key: Some(pb::get_member_request::Key::MemberId(sibling.id.clone())),
                include_private: false,
            })
            .await,
        &["GetMember", HG_A],
    );
    assert!(!m.contains("Trần Thị Bình") && !m.contains(HG_B), "{m}");
    denied(
        clerk
            .members()
            .update_member(pb::UpdateMemberRequest {
                member_id: sibling.id.clone(),
                position: Some("Tổ trưởng".into()),
                ..Default::default()
            })
            .await,
        &["UpdateMember", HG_A],
    );
    denied(
        clerk
            .members()
            .transfer_member(pb::TransferMemberRequest {
                member_id: own.id.clone(),
                to_unit_id: HG_B.into(),
                ..Default::default()
            })
            .await,
        &["TransferMember", HG_B],
    );
    denied(
        clerk
            .members()
            .import_members(pb::ImportMembersRequest {
                rows: vec![pb::ImportRow {
                    line: 2,
                    unit_id: HG_B.into(),
                    member: Some(person("Phạm Văn Dũng", "HG-B-0003", pb::Gender::Male)),
                }],
            })
            .await,
        &["ImportMembers", HG_B],
    );
    denied(
        clerk
            .reports()
            .members_report(pb::MembersReportRequest {
                unit_id: HG_CT.into(),
                as_of: String::new(),
            })
            .await,
        &["MembersReport", HG_CT],
    );
    // Its own unit's record is its parent's to change.
    denied(
        clerk
            .units()
            .rename_unit(pb::RenameUnitRequest {
                unit_id: HG_A.into(),
                name: "CĐCS Trường THPT A mới".into(),
                ..Default::default()
            })
            .await,
        &["RenameUnit", HG_A, HG_CT],
    );
    // The admin service is for administrators.
    denied(
        clerk.admin().status(pb::StatusRequest {}).await,
        &["Status", "administrators"],
    );
    denied(
        clerk
            .admin()
            .list_quarantine(pb::ListQuarantineRequest::default())
            .await,
        &["ListQuarantine"],
    );
    node.unchanged_since(mark).await?;

    // What is not personal stays readable: the tree, the node's info.
    assert!(
        clerk
            .units()
            .list_units(pb::ListUnitsRequest::default())
            .await?
            .into_inner()
            .units
            .len()
            >= 7
    );
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_of_a_unit_above_work_across_its_subtree() -> Result<()> {
    let node = Node::with_tree().await?;
    let commune = As::new(&node, Caller::staff("clerk-ct", HG_CT)).await?;
    let a = commune.add(HG_A, "Nguyễn Văn An", "HG-A-0001").await?;
    commune.add(HG_B, "Trần Thị Bình", "HG-B-0001").await?;
    let moved = commune
        .members()
        .transfer_member(pb::TransferMemberRequest {
            member_id: a.id.clone(),
            to_unit_id: HG_B.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(moved.unit_id, HG_B);
    let u = commune
        .units()
        .create_unit(pb::CreateUnitRequest {
            id: Some("hg-truong-c".into()),
            name: "CĐCS Trường C".into(),
            kind: "grassroots".into(),
            parent_id: HG_CT.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(u.parent_id, HG_CT);

    // Campaigns: launched by a unit its staff may write for; the plans of a
    // province's campaign are the province's to set.
    let province = As::new(&node, Caller::staff("clerk-hg", HG)).await?;
    let launched = province
        .campaigns()
        .launch_campaign(pb::LaunchCampaignRequest {
            id: Some("ld-gioi-hg".into()),
            launching_unit_id: HG.into(),
            title: "Lao động giỏi".into(),
            theme: String::new(),
            starts_on: "2026-01-01".into(),
            ends_on: "2026-12-31".into(),
            scope_unit_id: HG.into(),
        })
        .await?
        .into_inner();
    let mark = node.mark().await?;
    let other = As::new(&node, Caller::staff("clerk-lc", LC)).await?;
    denied(
        other
            .campaigns()
            .set_plans(pb::SetPlansRequest {
                campaign_id: launched.id.clone(),
                plans: vec![pb::Plan {
                    unit_id: HG_A.into(),
                    initiative_quota: 3,
                    works_quota: 1,
                }],
            })
            .await,
        &["SetPlans", HG, LC],
    );
    denied(
        commune
            .campaigns()
            .close_campaign(pb::CloseCampaignRequest {
                campaign_id: launched.id.clone(),
                closed_on: String::new(),
            })
            .await,
        &["CloseCampaign", HG, HG_CT],
    );
    denied(
        commune
            .awards()
            .decide_award(decision(
                HG,
                "bang-khen-cap-tinh",
                vec![unit_recipient(HG_A)],
            ))
            .await,
        &["DecideAward", HG],
    );
    node.unchanged_since(mark).await?;
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_gets_no_client_api() -> Result<()> {
    let node = Node::with_tree().await?;
    let peer = As::new(&node, Caller::node("hg-node", HG)).await?;
    let mark = node.mark().await?;
    denied(
        peer.add(HG_A, "Nguyễn Văn An", "HG-A-0001").await,
        &["AddMember", "hg-node", "replication"],
    );
    denied(peer.list(HG_A).await, &["ListMembers"]);
    denied(
        peer.units()
            .list_units(pb::ListUnitsRequest::default())
            .await,
        &["ListUnits"],
    );
    denied(peer.admin().status(pb::StatusRequest {}).await, &["Status"]);
    node.unchanged_since(mark).await?;
    // Node info is for peers too.
    let info = pb::node_service_client::NodeServiceClient::new(peer.channel.clone())
        .get_node_info(pb::GetNodeInfoRequest {})
        .await?
        .into_inner();
    assert_eq!(info.node_id, "vn");
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_may_do_everything() -> Result<()> {
    let node = Node::with_tree().await?;
    let admin = As::new(&node, Caller::admin()).await?;
    admin.add(HG_B, "Trần Thị Bình", "HG-B-0001").await?;
    admin.add(LC_C, "Lò Văn Páo", "LC-0001").await?;
    assert_eq!(admin.list(HG_B).await?.len(), 1);
    assert_eq!(admin.list(LC_C).await?.len(), 1);
    let status = admin
        .admin()
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    assert_eq!(status.node_id, "vn");
    assert!(
        admin
            .admin()
            .list_quarantine(pb::ListQuarantineRequest::default())
            .await?
            .into_inner()
            .entries
            .is_empty()
    );
    node.stop().await
}
