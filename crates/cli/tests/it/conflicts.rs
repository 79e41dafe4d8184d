//! `hopluu conflicts list|show|resolve` and `hopluu status` on a running
//! vn → hau-giang → hg-vi-thanh tree ([`Tree`]): a conflict made by
//! concurrent edits on two nodes is listed at both, resolved through the
//! CLI at one, and the resolution reaches both (and the national node);
//! bad input is refused and writes nothing.

use std::time::Duration;

use hopluu_devcluster::federation::Federation;
use hopluu_model::{DocId, UnitId, member};
use hopluu_proto::v1 as pb;
use serde_json::Value;

use crate::tree::{G1, HG, LIMIT, Tree, VN, VT};

async fn add_member(tree: &Tree) -> String {
    tree.fed
        .node(VT)
        .members()
        .add_member(pb::AddMemberRequest {
            unit_id: G1.into(),
            member: Some(pb::MemberInput {
                full_name: "Nguyễn Thị Mai".into(),
                birth_date: "1988-04-12".into(),
                gender: pb::Gender::Female as i32,
                card_number: "VT-G1-0001".into(),
                joined_on: "2012-09-01".into(),
                position: "Giáo viên".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("the member is added at the district")
        .into_inner()
        .id
}

async fn set_position(tree: &Tree, node: &str, member: &str, position: &str) {
    tree.fed
        .node(node)
        .members()
        .update_member(pb::UpdateMemberRequest {
            member_id: member.into(),
            position: Some(position.into()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{node} sets the position: {e}"));
}

/// The member's position as `node`'s MemberService reads it.
async fn position(tree: &Tree, node: &str, member: &str) -> anyhow::Result<String> {
    Ok(tree
        .fed
        .node(node)
        .members()
        .get_member(pb::GetMemberRequest {
            key: Some(pb::get_member_request::Key::MemberId(member.into())),
            include_private: false,
        })
        .await?
        .into_inner()
        .position)
}

/// The conflicts `node` lists, through its admin service.
async fn listed(tree: &Tree, node: &str) -> anyhow::Result<Vec<pb::Conflict>> {
    let mut admin =
        pb::admin_service_client::AdminServiceClient::new(tree.fed.node(node).channel.clone());
    Ok(admin
        .list_conflicts(pb::ListConflictsRequest::default())
        .await?
        .into_inner()
        .conflicts)
}

/// `hopluu --json status` at `node`: its conflicts count.
async fn status_conflicts(tree: &Tree, node: &str) -> String {
    let j = tree.json(node, &["status"]).await;
    j["conflicts"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| j["conflicts"].to_string())
}

fn ops(conflict: &Value) -> Vec<String> {
    let mut ops: Vec<String> = conflict["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v["op_id"].as_str().expect("an op id").to_owned())
        .collect();
    ops.sort();
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflict_made_on_two_nodes_is_listed_resolved_through_the_cli_and_reaches_both() {
    let tree = Tree::start().await;
    let member = add_member(&tree).await;
    Federation::until("hau-giang has the member", LIMIT, || async {
        Ok(position(&tree, HG, &member).await? == "Giáo viên")
    })
    .await
    .expect("the member reaches the province");
    let roster = member::roster_doc(&UnitId::parse("unit", G1).unwrap(), 0);
    let doc = roster.to_string();
    for node in [HG, VT] {
        assert_eq!(status_conflicts(&tree, node).await, "0", "at {node}");
        assert!(
            tree.json(node, &["conflicts", "list"]).await["conflicts"]
                .as_array()
                .is_none_or(Vec::is_empty)
        );
    }

    // The district's link is down; both offices set the position.
    tree.fed.link(VT, HG).cut();
    set_position(&tree, HG, &member, "Chủ tịch công đoàn").await;
    set_position(&tree, VT, &member, "Phó chủ tịch công đoàn").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    tree.fed.link(VT, HG).heal();
    for node in [HG, VT] {
        Federation::until(&format!("{node} holds both values"), LIMIT, || async {
            let l = listed(&tree, node).await?;
            Ok(l.len() == 1 && l[0].values.len() == 2)
        })
        .await
        .expect("the conflict is found at both nodes");
    }

    // Listed at both: a table by default, JSON for scripts, the same
    // values (by op id) everywhere, each with its writer.
    let mut seen_ops = Vec::new();
    for node in [HG, VT] {
        let table = tree.ok(node, &["conflicts", "list"]).await;
        for want in [
            doc.as_str(),
            member.as_str(),
            "position",
            "Chủ tịch công đoàn",
            "Phó chủ tịch công đoàn",
            "hau-giang (hau-giang)",
            "hg-vi-thanh (hg-vi-thanh)",
            "UTC",
        ] {
            assert!(table.contains(want), "{want:?} at {node} in\n{table}");
        }
        let j = tree.json(node, &["conflicts", "list", "--doc", &doc]).await;
        let list = j["conflicts"].as_array().expect("conflicts");
        assert_eq!(list.len(), 1, "{j}");
        let c = &list[0];
        assert_eq!(c["doc_id"], doc.as_str());
        assert_eq!(c["record"], member.as_str());
        assert_eq!(c["field"], "position");
        assert_eq!(c["path"], format!("members/{member}/position"));
        let by: Vec<(&str, &str)> = c["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["node_id"].as_str().unwrap(), v["value"].as_str().unwrap()))
            .collect();
        assert!(by.contains(&(HG, "Chủ tịch công đoàn")), "{by:?}");
        assert!(by.contains(&(VT, "Phó chủ tịch công đoàn")), "{by:?}");
        seen_ops.push(ops(c));
        assert_eq!(status_conflicts(&tree, node).await, "1", "at {node}");
        // Another document's filter lists nothing.
        let other = tree
            .json(node, &["conflicts", "list", "--doc", "unit/hau-giang"])
            .await;
        assert!(other["conflicts"].as_array().is_none_or(Vec::is_empty));
    }
    assert_eq!(seen_ops[0], seen_ops[1], "op ids name values everywhere");

    // Shown at the province, with the op ids `resolve --keep` takes.
    let hg_list = tree.json(HG, &["conflicts", "list"]).await;
    let c = &hg_list["conflicts"][0];
    let id = c["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| c["id"].to_string());
    let district_op = c["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["node_id"] == VT)
        .and_then(|v| v["op_id"].as_str())
        .expect("the district's value")
        .to_owned();
    let shown = tree.ok(HG, &["conflicts", "show", &id]).await;
    for want in [
        district_op.as_str(),
        "Chủ tịch công đoàn",
        "Phó chủ tịch công đoàn",
        "written by",
        &format!("members/{member}/position"),
    ] {
        assert!(shown.contains(want), "{want:?} in\n{shown}");
    }
    let j = tree.json(HG, &["conflicts", "show", &id]).await;
    assert_eq!(ops(&j), seen_ops[0]);

    // Bad input is refused, naming the field, and writes nothing.
    let heads = |node: &'static str| {
        let store = tree.fed.node(node).app.store().clone();
        let roster: DocId = roster.clone();
        async move { store.doc_heads(&roster).await.unwrap() }
    };
    let before = heads(HG).await;
    let e = tree
        .fails(HG, &["conflicts", "resolve", &id, "--keep", "1@00ff"])
        .await;
    assert!(e.contains("keep_op_id"), "{e}");
    let e = tree
        .fails(
            HG,
            &["conflicts", "resolve", "999999", "--keep", &district_op],
        )
        .await;
    assert!(e.contains("id: conflict 999999 not found"), "{e}");
    let e = tree
        .fails(HG, &["conflicts", "resolve", &id, "--value", "a\u{7}b"])
        .await;
    assert!(e.contains("value"), "{e}");
    let e = tree.fails(HG, &["conflicts", "resolve", &id]).await;
    assert!(e.contains("--keep"), "{e}");
    let e = tree
        .fails(
            HG,
            &[
                "conflicts",
                "resolve",
                &id,
                "--keep",
                &district_op,
                "--value",
                "x",
            ],
        )
        .await;
    assert!(e.contains("cannot be used with"), "{e}");
    assert_eq!(heads(HG).await, before, "nothing was written");
    assert_eq!(listed(&tree, HG).await.unwrap().len(), 1);

    // Resolved at the province, keeping the district's value.
    let out = tree
        .ok(
            HG,
            &[
                "conflicts",
                "resolve",
                &id,
                "--keep",
                &district_op,
                "--note",
                "agreed with the district office",
            ],
        )
        .await;
    assert!(out.contains("change written"), "{out}");
    assert!(out.contains("Phó chủ tịch công đoàn"), "{out}");
    assert_ne!(heads(HG).await, before);

    // The resolution reaches both nodes (and the national one): the
    // conflict is gone everywhere, and every node reads the kept value.
    for node in [HG, VT, VN] {
        Federation::until(&format!("{node} applies the resolution"), LIMIT, || async {
            Ok(listed(&tree, node).await?.is_empty()
                && position(&tree, node, &member).await? == "Phó chủ tịch công đoàn")
        })
        .await
        .expect("the resolution replicates");
    }
    for node in [HG, VT] {
        assert_eq!(status_conflicts(&tree, node).await, "0", "at {node}");
        let shown = tree.json(node, &["members", "show", &member]).await;
        assert_eq!(shown["position"], "Phó chủ tịch công đoàn", "at {node}");
        let table = tree.ok(node, &["conflicts", "list"]).await;
        assert!(!table.contains(&member), "{table}");
    }
    // Once resolved, the id is gone.
    let e = tree.fails(HG, &["conflicts", "show", &id]).await;
    assert!(e.contains("not found"), "{e}");
    tree.shutdown().await;
}
