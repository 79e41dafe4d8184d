//! The convergence check (`AdminService.CheckPeer`, answered by
//! `ReplicationService.ScopeHeads` and `MissingChanges`) between a national
//! node and a province syncing over real gRPC streams: both ends report
//! the link in step once it has converged, then, with the province's
//! dialer stopped, each kind of difference is listed with its state from
//! either end. Only administrators check; only nodes whose unit is known
//! answer, each for its own scope: a private roster is never listed to a
//! node above `private_depth`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use hopluu_proto::v1::replication_service_client::ReplicationServiceClient;
use tonic::Code;

use crate::harness::*;
use crate::replication::{child, eventually};

const PROVINCE_NODE: &str = "hg-node";

async fn check(node: &Node, peer: &str, address: Option<String>) -> Result<pb::CheckPeerResponse> {
    Ok(AdminServiceClient::new(node.channel.clone())
        .check_peer(pb::CheckPeerRequest {
            peer_node_id: peer.to_owned(),
            address: address.unwrap_or_default(),
        })
        .await
        .with_context(|| format!("CheckPeer {peer}"))?
        .into_inner())
}

/// The differences of a check, by document id: (state, heads here, heads
/// at the peer).
fn states(r: &pb::CheckPeerResponse) -> BTreeMap<String, (pb::CheckState, usize, usize)> {
    r.differences
        .iter()
        .map(|d| {
            (
                d.doc_id.clone(),
                (
                    pb::CheckState::try_from(d.state).unwrap_or(pb::CheckState::Unspecified),
                    d.heads_here.len(),
                    d.heads_at_peer.len(),
                ),
            )
        })
        .collect()
}

/// The state of the one difference whose document id starts with
/// `prefix`.
fn state_of(r: &pb::CheckPeerResponse, prefix: &str) -> Option<pb::CheckState> {
    let found: Vec<_> = states(r)
        .into_iter()
        .filter(|(d, _)| d.starts_with(prefix))
        .collect();
    assert!(found.len() <= 1, "more than one {prefix}: {found:?}");
    found.first().map(|(_, (s, _, _))| *s)
}

async fn update_position(node: &Node, member: &str, position: &str) -> Result<()> {
    node.members()
        .update_member(pb::UpdateMemberRequest {
            member_id: member.to_owned(),
            position: Some(position.to_owned()),
            ..Default::default()
        })
        .await
        .with_context(|| format!("updating {member}"))?;
    Ok(())
}

/// The national node with the usual tree and the province `hau-giang`'s
/// node below it, both holding two members in each of the province's
/// grassroots unions (one with a CCCD: a private roster at the province).
async fn national_and_province() -> Result<(Node, Node, Vec<pb::Member>)> {
    let national = Node::with_tree().await?;
    let province = child(PROVINCE_NODE, HG, &[("vn", &national)]).await?;
    eventually("the province knows its grassroots unions", || async {
        Ok(province.unit(HG_A).await.is_ok() && province.unit(HG_B).await.is_ok())
    })
    .await?;
    let mut members = Vec::new();
    for (i, unit) in [HG_A, HG_A, HG_B, HG_B].into_iter().enumerate() {
        let mut p = person(
            &format!("Nguyễn Thị {i}"),
            &format!("CD-CK-{i:04}"),
            pb::Gender::Female,
        );
        if i == 0 {
            p.national_id = "079912340000".into();
        }
        members.push(province.add(unit, p).await?);
    }
    eventually("the members at the national node", || async {
        Ok(national.list(HG, true, None).await?.members.len() == 4)
    })
    .await?;
    // Once the province has written its own record as it will stand (it
    // does once its unit's place arrives): else that write could land
    // between two reads of a test, which would then see two scopes.
    eventually("the province has placed its own record", || async {
        Ok(province.app.placed().await?)
    })
    .await?;
    Ok((national, province, members))
}

#[tokio::test]
async fn both_ends_of_a_link_report_it_in_step_then_list_each_difference() -> Result<()> {
    let (national, province, members) = national_and_province().await?;
    let child_address = Some(format!("https://{}", province.addr));

    // In step from both ends: the province through its configured
    // upstream, the national node given the child's address.
    let last = std::sync::Mutex::new(None);
    eventually("the province's check finds the link in step", || async {
        let r = check(&province, "vn", None).await?;
        let done = r.differing == 0;
        *last.lock().unwrap() = Some(r);
        Ok(done)
    })
    .await
    .with_context(|| format!("{:?}", last.lock().unwrap()))?;
    let up = check(&province, "vn", None).await?;
    let down = check(&national, PROVINCE_NODE, child_address.clone()).await?;
    for r in [&up, &down] {
        ensure!(r.differing == 0 && r.differences.is_empty(), "{r:?}");
        ensure!(r.compared > 5 && r.in_step == r.compared, "{r:?}");
    }
    ensure!(up.peer_node_id == "vn" && up.peer_unit_id == VN, "{up:?}");
    ensure!(
        down.peer_node_id == PROVINCE_NODE && down.peer_unit_id == HG,
        "{down:?}"
    );
    ensure!(up.node_id == PROVINCE_NODE && down.node_id == "vn");
    // Both ends compare the same documents: the link's.
    ensure!(
        up.compared == down.compared,
        "{} vs {}",
        up.compared,
        down.compared
    );

    // The province's dialer stops; both sides go on writing.
    province.replication.shutdown().await;
    // Only the province: its roster of hg-truong-a is ahead, and a new
    // unit's record exists only there.
    update_position(&province, &members[1].id, "Tổ trưởng").await?;
    province
        .create_unit("hg-moi", "CĐCS Công ty Mới", "grassroots", HG_CT)
        .await?;
    // Both: the roster of hg-nha-may-b diverges.
    update_position(&province, &members[2].id, "Tổ phó").await?;
    update_position(&national, &members[3].id, "Thủ quỹ").await?;

    let up = check(&province, "vn", None).await?;
    ensure!(up.differing == 3, "{up:#?}");
    ensure!(
        state_of(&up, "roster/hg-truong-a") == Some(pb::CheckState::PeerBehind),
        "{up:#?}"
    );
    ensure!(
        state_of(&up, "unit/hg-moi") == Some(pb::CheckState::MissingAtPeer),
        "{up:#?}"
    );
    ensure!(
        state_of(&up, "roster/hg-nha-may-b") == Some(pb::CheckState::Diverged),
        "{up:#?}"
    );
    let down = check(&national, PROVINCE_NODE, child_address.clone()).await?;
    ensure!(down.differing == 3, "{down:#?}");
    ensure!(
        state_of(&down, "roster/hg-truong-a") == Some(pb::CheckState::HereBehind),
        "{down:#?}"
    );
    ensure!(
        state_of(&down, "unit/hg-moi") == Some(pb::CheckState::MissingHere),
        "{down:#?}"
    );
    ensure!(
        state_of(&down, "roster/hg-nha-may-b") == Some(pb::CheckState::Diverged),
        "{down:#?}"
    );
    let missing = &states(&down)["unit/hg-moi"];
    ensure!(
        missing.1 == 0 && missing.2 == 1,
        "missing here: no heads here, one there"
    );
    ensure!(up.in_step + up.differing == up.compared && up.compared == down.compared);
    // The private roster is the province's alone: not compared with vn.
    ensure!(
        !up.differences
            .iter()
            .any(|d| d.doc_id.starts_with("roster-private/")),
        "{up:#?}"
    );

    province.stop().await?;
    national.stop().await
}

#[tokio::test]
async fn only_administrators_check_and_only_known_nodes_are_answered() -> Result<()> {
    let node = Node::with_tree().await?;
    // CheckPeer: administrators only.
    for caller in [Caller::staff("hg-clerk", HG), Caller::node("hg-node", HG)] {
        let r = AdminServiceClient::new(node.channel_as(&caller).await?)
            .check_peer(pb::CheckPeerRequest {
                peer_node_id: "hg-node".into(),
                address: String::new(),
            })
            .await;
        let s = expect_code(r, Code::PermissionDenied);
        ensure!(s.message().contains("CheckPeer"), "{caller:?}: {s:?}");
    }
    // Bad requests name their field.
    let admin = AdminServiceClient::new(node.channel.clone());
    for (peer, address, field) in [
        ("", "", "peer_node_id"),
        ("hg-node", "", "peer_node_id"),
        ("vn", "", "peer_node_id"),
        ("Not An Id", "https://127.0.0.1:1", "peer_node_id"),
        ("hg-node", "not a url", "address"),
    ] {
        let m = expect_invalid(
            admin
                .clone()
                .check_peer(pb::CheckPeerRequest {
                    peer_node_id: peer.into(),
                    address: address.into(),
                })
                .await,
            field,
        );
        if peer == "hg-node" && address.is_empty() {
            ensure!(m.contains("no such upstream"), "{m}");
        }
    }
    // A peer that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let s = expect_code(
        admin
            .clone()
            .check_peer(pb::CheckPeerRequest {
                peer_node_id: "hg-node".into(),
                address: format!("https://{closed}"),
            })
            .await,
        Code::Unavailable,
    );
    ensure!(
        s.message()
            .starts_with("peer_node_id: cannot reach node hg-node"),
        "{s:?}"
    );

    // ScopeHeads and MissingChanges: node certificates only, naming
    // themselves, hosting a unit this node knows.
    let ask = |node_id: &str, unit: &str| pb::ScopeHeadsRequest {
        node_id: node_id.into(),
        unit_id: unit.into(),
        ..Default::default()
    };
    for (caller, request, says) in [
        (Caller::admin(), ask("vn", VN), "administrator"),
        (Caller::staff("hg-clerk", HG), ask("hg-node", HG), "staff"),
        (
            Caller::node("hg-node", HG),
            ask("lc-node", LC),
            "certificate",
        ),
        (
            Caller::node("x-node", "khong-co"),
            ask("x-node", "khong-co"),
            "does not know",
        ),
    ] {
        let mut client = ReplicationServiceClient::new(node.channel_as(&caller).await?);
        let s = expect_code(
            client.scope_heads(request.clone()).await,
            Code::PermissionDenied,
        );
        ensure!(
            s.message().starts_with("ScopeHeads: ") && s.message().contains(says),
            "{caller:?}: {s:?}"
        );
        let s = expect_code(
            client
                .missing_changes(pb::MissingChangesRequest {
                    node_id: request.node_id,
                    unit_id: request.unit_id,
                    docs: Vec::new(),
                })
                .await,
            Code::PermissionDenied,
        );
        ensure!(
            s.message().starts_with("MissingChanges: "),
            "{caller:?}: {s:?}"
        );
    }
    // A known node is answered, in its scope only: Lai Châu's node sees
    // Hậu Giang's unit record (a child of its ancestor, where a move may
    // lead) but nothing below it, and not its roster.
    let mut lc =
        ReplicationServiceClient::new(node.channel_as(&Caller::node("lc-node", LC)).await?);
    let page = lc.scope_heads(ask("lc-node", LC)).await?.into_inner();
    let ids: Vec<&str> = page.docs.iter().map(|d| d.doc_id.as_str()).collect();
    ensure!(page.node_id == "vn" && page.unit_id == VN, "{page:?}");
    ensure!(
        ids.contains(&"unit/lai-chau") && ids.contains(&"unit/vn"),
        "{ids:?}"
    );
    ensure!(
        !ids.iter()
            .any(|d| d.contains("hg-") || (d.contains("hau-giang") && *d != "unit/hau-giang")),
        "{ids:?}"
    );
    ensure!(page.next_after.is_empty(), "one page: {page:?}");
    expect_invalid(
        lc.scope_heads(pb::ScopeHeadsRequest {
            after: "no such id".into(),
            ..ask("lc-node", LC)
        })
        .await,
        "after",
    );
    node.stop().await
}

/// The same questions on a node serving plaintext: the request's node id
/// and unit are taken at their word, as a hello is, and still checked
/// against the tree.
#[tokio::test]
async fn a_plaintext_node_answers_the_unit_the_request_names() -> Result<()> {
    let node = Node::start_insecure(tempfile::tempdir()?, |_| {}).await?;
    let mut client = ReplicationServiceClient::new(node.channel.clone());
    let page = client
        .scope_heads(pb::ScopeHeadsRequest {
            node_id: "vn-2".into(),
            unit_id: VN.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    ensure!(page.docs.iter().any(|d| d.doc_id == "unit/vn"), "{page:?}");
    let s = expect_code(
        client
            .scope_heads(pb::ScopeHeadsRequest {
                node_id: "stray".into(),
                unit_id: "khong-co".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
    ensure!(s.message().contains("does not know"), "{s:?}");
    expect_invalid(
        client
            .scope_heads(pb::ScopeHeadsRequest {
                node_id: "stray".into(),
                unit_id: String::new(),
                ..Default::default()
            })
            .await,
        "unit_id",
    );
    node.stop().await
}

/// A province holds a private roster; asked by the national node's
/// certificate (depth 0, above `private_depth` 1) it does not list it, nor
/// answer about it; asked by a node of its commune it does. Pages of one
/// document walk the same list as one page.
#[tokio::test]
async fn a_private_roster_is_listed_only_to_a_node_that_may_hold_it() -> Result<()> {
    let (national, province, _) = national_and_province().await?;
    let private = "roster-private/hg-truong-a";
    let ask = |node_id: &str, unit: &str, after: &str, limit: u32| pb::ScopeHeadsRequest {
        node_id: node_id.into(),
        unit_id: unit.into(),
        after: after.into(),
        limit,
    };
    let mut as_vn =
        ReplicationServiceClient::new(province.channel_as(&Caller::node("vn", VN)).await?);
    let mut as_commune = ReplicationServiceClient::new(
        province
            .channel_as(&Caller::node("hg-ct-node", HG_CT))
            .await?,
    );
    let above = as_vn.scope_heads(ask("vn", VN, "", 0)).await?.into_inner();
    let below = as_commune
        .scope_heads(ask("hg-ct-node", HG_CT, "", 0))
        .await?
        .into_inner();
    let ids = |p: &pb::ScopeHeadsResponse| -> Vec<String> {
        p.docs.iter().map(|d| d.doc_id.clone()).collect()
    };
    ensure!(
        !ids(&above).iter().any(|d| d.starts_with("roster-private/")),
        "{:?}",
        ids(&above)
    );
    ensure!(
        ids(&above)
            .iter()
            .any(|d| d.starts_with("roster/hg-truong-a")),
        "{:?}",
        ids(&above)
    );
    ensure!(
        ids(&below).iter().any(|d| d == private),
        "{:?}",
        ids(&below)
    );
    for d in &below.docs {
        ensure!(
            !d.heads.is_empty() && d.heads.iter().all(|h| h.len() == 32),
            "{d:?}"
        );
    }
    // Nor is it answered about above the level.
    let heads = below
        .docs
        .iter()
        .find(|d| d.doc_id == private)
        .map(|d| d.heads.clone())
        .unwrap_or_default();
    let ask_missing = |node_id: &str, unit: &str| pb::MissingChangesRequest {
        node_id: node_id.into(),
        unit_id: unit.into(),
        docs: vec![pb::ScopeDoc {
            doc_id: private.into(),
            heads: heads.clone(),
        }],
    };
    let r = as_vn
        .missing_changes(ask_missing("vn", VN))
        .await?
        .into_inner();
    ensure!(
        r.docs.is_empty(),
        "answered about a private roster above the level: {r:?}"
    );
    let r = as_commune
        .missing_changes(ask_missing("hg-ct-node", HG_CT))
        .await?
        .into_inner();
    ensure!(
        r.docs.len() == 1 && r.docs[0].doc_id == private && r.docs[0].heads.is_empty(),
        "the province has its own heads: {r:?}"
    );
    // Pages of one: the same documents, in the same order.
    let mut paged = Vec::new();
    let mut after = String::new();
    for _ in 0..1000 {
        let p = as_commune
            .scope_heads(ask("hg-ct-node", HG_CT, &after, 1))
            .await?
            .into_inner();
        ensure!(p.docs.len() <= 1, "{p:?}");
        paged.extend(ids(&p));
        if p.next_after.is_empty() {
            break;
        }
        after = p.next_after;
    }
    ensure!(paged == ids(&below), "{paged:?} vs {:?}", ids(&below));
    province.stop().await?;
    national.stop().await
}
