//! Replication between real nodes in one process, over gRPC on loopback:
//! records flow up (district -> province -> national) and down (a national
//! campaign reaches the district), a restarted node resumes from its
//! checkpoint, and a child the parent does not know is refused. Every link
//! is mutual TLS; each upstream allows its children (`allow_child`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use hopluu_model::{Clock, FixedClock};
use hopluu_node::config::Upstream;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;

use crate::harness::*;

/// Polls `f` until it returns true, for at most 20 s.
pub async fn eventually<F, Fut>(what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if f().await.unwrap_or(false) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not within 20 s: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A child node hosting `unit`, dialling the first of `upstreams` (then
/// the others as fallbacks), each of which allows it as a child.
pub async fn child(id: &str, unit: &str, upstreams: &[(&str, &Node)]) -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let ups: Vec<Upstream> = upstreams
        .iter()
        .map(|(id, n)| Upstream {
            node_id: (*id).to_owned(),
            address: format!("https://{}", n.addr),
        })
        .collect();
    let unit_id = hopluu_model::UnitId::parse("unit", unit)?;
    for (_, n) in upstreams {
        n.replication.allow_child(id, &unit_id);
    }
    Node::start_with(dir, |c| {
        c.node.id = id.to_owned();
        c.node.unit = unit.to_owned();
        c.node.unit_name = None;
        c.node.unit_kind = None;
        c.replication.upstreams = ups;
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
    })
    .await
}

/// `node`'s edge to `peer`, as `hopluu peers` shows it, after measuring
/// what each edge lacks.
pub async fn peer(node: &Node, peer: &str) -> Result<pb::PeerStatus> {
    node.replication.refresh_pending().await?;
    AdminServiceClient::new(node.channel.clone())
        .list_peers(pb::ListPeersRequest {})
        .await?
        .into_inner()
        .peers
        .into_iter()
        .find(|p| p.node_id == peer)
        .with_context(|| format!("no edge to {peer}"))
}

/// Waits until `child` and its parent are in step: the child has written
/// its own node record as it will stand (it does so on its handover tick,
/// once its unit's record has come down), both ends are connected, and
/// each has acknowledged every update of the other in its scope. Only
/// then does a node's mark (feed position, documents) stay still until
/// someone writes: knowing some unit is not enough, as more of the
/// subtree, or the node's own record, may still be on its way.
pub async fn in_step(child: &Node, child_id: &str, parent: &Node, parent_id: &str) -> Result<()> {
    eventually(
        &format!("{child_id} is in step with {parent_id}"),
        || async {
            if !child.app.placed().await? {
                return Ok(false);
            }
            let up = peer(child, parent_id).await?;
            let down = peer(parent, child_id).await?;
            Ok(up.connected
                && down.connected
                && up.changes_pending == 0
                && down.changes_pending == 0)
        },
    )
    .await
}

async fn has_unit(n: &Node, id: &str) -> Result<bool> {
    Ok(n.unit(id).await.is_ok())
}

async fn members_in(n: &Node, unit: &str) -> Result<usize> {
    Ok(n.list(unit, true, None).await?.members.len())
}

#[tokio::test]
async fn records_flow_up_and_campaigns_flow_down_through_a_province() -> Result<()> {
    let national = Node::with_tree().await?;
    // The province creates the district's record before the district's
    // node first starts; the national node created the province's.
    let province = child("hg-node", HG, &[("vn", &national)]).await?;
    eventually("the province receives its own unit record", || {
        has_unit(&province, HG)
    })
    .await?;
    eventually("the province receives its commune", || {
        has_unit(&province, HG_CT)
    })
    .await?;
    let district = child(
        "hg-ct-node",
        HG_CT,
        &[("hg-node", &province), ("vn", &national)],
    )
    .await?;
    eventually("the district receives its unit record", || {
        has_unit(&district, HG_CT)
    })
    .await?;

    // Up: members added at the district reach the national node through
    // the province.
    for i in 0..7 {
        district
            .add(
                HG_A,
                person(
                    &format!("Nguyễn Văn {i}"),
                    &format!("CD-HG-{i:04}"),
                    pb::Gender::Male,
                ),
            )
            .await?;
    }
    eventually("7 members at the national node", || async {
        Ok(members_in(&national, HG_A).await? == 7)
    })
    .await?;
    assert_eq!(members_in(&province, HG_A).await?, 7);

    // Down: a campaign launched nationally reaches the district; one
    // launched for Lai Châu does not.
    national.launch("tt-2026", VN, VN).await?;
    national.launch("lc-2026", LC, LC).await?;
    eventually("the national campaign at the district", || async {
        Ok(district
            .campaigns()
            .get_campaign(pb::GetCampaignRequest {
                campaign_id: "tt-2026".into(),
            })
            .await
            .is_ok())
    })
    .await?;
    let lc = district
        .campaigns()
        .get_campaign(pb::GetCampaignRequest {
            campaign_id: "lc-2026".into(),
        })
        .await;
    assert!(
        lc.is_err(),
        "a sibling province's campaign reached the district"
    );
    // Nor does the district hold Lai Châu's unit records.
    assert!(!has_unit(&district, LC_C).await?);

    // A restart of the province resumes: writes made meanwhile arrive.
    let dir = province.stop_keeping_data().await?;
    for i in 7..10 {
        district
            .add(
                HG_B,
                person(
                    &format!("Trần Thị {i}"),
                    &format!("CD-HG-{i:04}"),
                    pb::Gender::Female,
                ),
            )
            .await?;
    }
    // The district fails over to the national node while its parent is down.
    eventually("3 more members at the national node", || async {
        Ok(members_in(&national, HG_B).await? == 3)
    })
    .await
    .context("through the fallback upstream")?;
    let province = Node::start_with(dir, |c| {
        as_child(c, "hg-node", HG, "vn", national.addr);
        // Its child, from the configuration this time.
        c.replication.children = vec![hopluu_node::config::Child {
            node_id: "hg-ct-node".into(),
            unit: HG_CT.into(),
        }];
    })
    .await?;
    eventually("the province catches up", || async {
        Ok(members_in(&province, HG_B).await? == 3)
    })
    .await?;

    district.stop().await?;
    province.stop().await?;
    national.stop().await
}

#[tokio::test]
async fn a_child_whose_unit_the_parent_does_not_know_is_refused() -> Result<()> {
    let national = Node::with_tree().await?;
    let stray = child("stray", "khong-co", &[("vn", &national)]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // It never receives anything: not even the national unit record.
    assert!(!has_unit(&stray, VN).await?);
    stray.stop().await?;
    national.stop().await
}

/// Edge times (connected since, last contact) come from the node's
/// injected clock, so a test clock pins them; nothing reads the system
/// clock behind it.
#[tokio::test]
async fn edge_times_come_from_the_node_clock() -> Result<()> {
    let national = Node::with_tree().await?;
    let province = child("hg-node", HG, &[("vn", &national)]).await?;
    let fixed = FixedClock(today()).now_millis();
    let edge = |n: &Node, peer: &str| n.replication.edges().into_iter().find(|e| e.peer == peer);
    eventually("both ends have been in contact", || async {
        Ok(
            edge(&province, "vn").is_some_and(|e| e.last_contact_millis != 0)
                && edge(&national, "hg-node").is_some_and(|e| e.last_contact_millis != 0),
        )
    })
    .await?;
    for (n, peer) in [(&province, "vn"), (&national, "hg-node")] {
        let e = edge(n, peer).context("the edge")?;
        assert!(e.connected, "{e:?}");
        assert_eq!(
            (e.since_millis, e.last_contact_millis),
            (fixed, fixed),
            "{peer}: {e:?}"
        );
    }
    province.stop().await?;
    national.stop().await
}
