//! `hopluu docs list|show` and `hopluu compact` against a running tree
//! (vn → hau-giang → hg-vi-thanh): members added at the district travel to
//! vn, then the province's administrator lists and inspects the documents
//! (table and JSON), and compacts them without changing a head.

use std::collections::BTreeMap;

use hopluu_devcluster::federation::Federation;
use hopluu_model::{UnitId, member};
use serde_json::Value;

use crate::tree::{G1, HG, LIMIT, Tree, VN, VT};

/// The members added; their names must never show in a document's history.
const NAMES: [&str; 3] = ["Trần Thị Bích", "Lê Văn Cường", "Phạm Minh Đức"];

/// Adds a member to the district's grassroots union, at the district.
async fn add_member(tree: &Tree, name: &str, card: &str) {
    tree.ok(
        VT,
        &[
            "members",
            "add",
            "--unit",
            G1,
            "--name",
            name,
            "--birth-date",
            "1991-04-02",
            "--gender",
            "female",
            "--card",
            card,
            "--joined-on",
            "2016-06-01",
        ],
    )
    .await;
}

/// Waits until vn and hau-giang hold the district's roster with its
/// heads, and hau-giang knows that both its peers have them.
async fn until_synced(tree: &Tree) {
    let roster = member::roster_doc(&UnitId::parse("unit", G1).unwrap(), 0);
    Federation::until(
        "the roster reaches vn, and hau-giang knows it",
        LIMIT,
        || {
            let roster = roster.clone();
            async move {
                let heads = tree.fed.node(VT).app.store().doc_heads(&roster).await?;
                let hg = tree.fed.node(HG).app.store();
                let mut synced = heads.is_some()
                    && tree.fed.node(VN).app.store().doc_heads(&roster).await? == heads
                    && hg.doc_heads(&roster).await? == heads;
                let peers = hg.peer_heads_of(&roster).await?;
                for peer in [VN, VT] {
                    synced &= peers
                        .iter()
                        .any(|p| p.peer == peer && Some(&p.heads) == heads.as_ref());
                }
                Ok(synced)
            }
        },
    )
    .await
    .expect("the district's roster syncs");
}

/// A protobuf JSON integer: 64-bit ones come as strings.
fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("a number"),
        v => v.as_u64().expect("a number"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// `doc_id -> heads` of every document a node lists.
async fn listed_heads(tree: &Tree, node: &str) -> BTreeMap<String, Vec<String>> {
    let list = tree.json(node, &["docs", "list", "--limit", "1000"]).await;
    list["docs"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|d| {
            (
                d["doc_id"].as_str().unwrap().to_owned(),
                strings(&d["heads"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_administrator_inspects_and_compacts_documents_across_the_tree() {
    let tree = Tree::start().await;
    for (i, name) in NAMES.iter().enumerate() {
        add_member(&tree, name, &format!("VT-{i:04}")).await;
    }
    until_synced(&tree).await;
    let roster = format!("roster/{G1}");

    // ---------------------------------------------------------- docs list
    let table = tree.ok(HG, &["docs", "list"]).await;
    for want in [
        "doc",
        "kind",
        "owner",
        "heads",
        roster.as_str(),
        "unit/hg-vi-thanh",
        "unit/hau-giang",
    ] {
        assert!(table.contains(want), "{want:?} in {table}");
    }
    let list = tree.json(HG, &["docs", "list"]).await;
    let docs = list["docs"].as_array().expect("docs");
    assert_eq!(num(&list["total"]), docs.len() as u64, "{list}");
    assert!(
        table.contains(&format!("({} of {})", docs.len(), docs.len())),
        "{table}"
    );
    let ids: Vec<&str> = docs.iter().map(|d| d["doc_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "by id");
    let r = docs
        .iter()
        .find(|d| d["doc_id"] == roster.as_str())
        .expect("the roster is listed");
    assert_eq!(r["kind"], "roster");
    assert_eq!(r["owner"], G1);
    assert!(num(&r["size_bytes"]) > 0);
    let hg_heads = tree
        .fed
        .node(HG)
        .app
        .store()
        .doc_heads(&member::roster_doc(&UnitId::parse("unit", G1).unwrap(), 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        strings(&r["heads"]),
        hg_heads.iter().map(ToString::to_string).collect::<Vec<_>>()
    );

    // Filters: kind, owner, subtree; paging.
    let rosters = tree.json(HG, &["docs", "list", "--kind", "roster"]).await;
    let rosters = rosters["docs"].as_array().unwrap();
    assert!(!rosters.is_empty());
    assert!(rosters.iter().all(|d| d["kind"] == "roster"), "{rosters:?}");
    let owned = tree.json(HG, &["docs", "list", "--owner", G1]).await;
    let owned = owned["docs"].as_array().unwrap();
    assert!(owned.iter().any(|d| d["doc_id"] == roster.as_str()));
    assert!(owned.iter().all(|d| d["owner"] == G1), "{owned:?}");
    let sub = tree
        .json(HG, &["docs", "list", "--owner", HG, "--subtree"])
        .await;
    let sub_ids = strings(
        &sub["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["doc_id"].clone())
            .collect::<Value>(),
    );
    for want in ["unit/hg-vi-thanh", "unit/hg-vi-thanh-g1", roster.as_str()] {
        assert!(sub_ids.iter().any(|d| d == want), "{want} in {sub_ids:?}");
    }
    assert!(
        !sub_ids
            .iter()
            .any(|d| d == "unit/hau-giang" || d == "unit/vn"),
        "vn owns those: {sub_ids:?}"
    );
    let page = tree.json(HG, &["docs", "list", "--limit", "2"]).await;
    let first: Vec<&str> = page["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap())
        .collect();
    assert_eq!(first, ids[..2], "the first page");
    assert_eq!(num(&page["total"]), ids.len() as u64);
    let next = tree
        .json(HG, &["docs", "list", "--limit", "2", "--after", first[1]])
        .await;
    let second: Vec<&str> = next["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap())
        .collect();
    assert_eq!(second, ids[2..4.min(ids.len())], "the second page");

    // ---------------------------------------------------------- docs show
    let shown = tree.ok(HG, &["docs", "show", &roster]).await;
    for want in [
        "owner",
        G1,
        "history, newest first",
        "hg-vi-thanh (hg-vi-thanh)",
        "peers",
        "up to date",
    ] {
        assert!(shown.contains(want), "{want:?} in {shown}");
    }
    let peer_lines: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("vn ") || l.starts_with("hg-vi-thanh "))
        .collect();
    assert_eq!(peer_lines.len(), 2, "a line per peer: {shown}");
    assert!(
        peer_lines.iter().all(|l| l.ends_with("up to date")),
        "{shown}"
    );
    for name in NAMES {
        assert!(
            !shown.contains(name),
            "a value ({name}) in the history: {shown}"
        );
    }

    let d = tree.json(HG, &["docs", "show", &roster]).await;
    assert_eq!(d["doc"]["doc_id"], roster.as_str());
    assert_eq!(
        strings(&d["doc"]["heads"]),
        hg_heads.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    let history = d["history"].as_array().expect("history");
    // The skeleton, then one change per member added.
    assert!(num(&d["changes"]) > NAMES.len() as u64, "{d}");
    assert_eq!(history.len() as u64, num(&d["changes"]).min(50));
    let newest = &history[0];
    assert_eq!(newest["actor_node"], VT, "made at the district: {newest}");
    assert_eq!(newest["actor_unit"], VT);
    assert!(
        strings(&d["doc"]["heads"]).contains(&newest["hash"].as_str().unwrap().to_owned()),
        "the newest change is a head"
    );
    assert!(num(&newest["op_count"]) > 0 && num(&newest["size_bytes"]) > 0);
    assert!(newest["time_millis"].as_str().is_some() || newest["time_millis"].is_number());
    let made_here = history.iter().filter(|c| c["actor_node"] == VT).count();
    assert!(made_here >= NAMES.len(), "{history:?}");
    let peers = d["peers"].as_array().expect("peers");
    let mut peer_ids: Vec<&str> = peers
        .iter()
        .map(|p| p["node_id"].as_str().unwrap())
        .collect();
    peer_ids.sort();
    assert_eq!(peer_ids, [VT, VN], "{peers:?}");
    for p in peers {
        assert_eq!(p["up_to_date"], true, "{p}");
        assert_eq!(num(&p["changes_behind"]), 0, "{p}");
        assert_eq!(strings(&p["heads"]), strings(&d["doc"]["heads"]), "{p}");
    }
    assert!(!d.to_string().contains(NAMES[0]), "a value in {d}");
    let one = tree
        .json(HG, &["docs", "show", &roster, "--history", "1"])
        .await;
    assert_eq!(one["history"].as_array().unwrap().len(), 1);
    assert_eq!(one["history"][0]["hash"], newest["hash"]);
    assert_eq!(num(&one["changes"]), num(&d["changes"]));

    // ------------------------------------------------------------ compact
    // At the district every member was its own write: the roster holds
    // chunks.
    let before = listed_heads(&tree, VT).await;
    let chunked = tree.json(VT, &["docs", "list", "--kind", "roster"]).await;
    assert!(
        chunked["docs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| num(&d["chunk_bytes"]) > 0),
        "chunks to fold at the district: {chunked}"
    );
    let out = tree
        .run(VT, &["compact", "--min-chunk-bytes", "1000000000"])
        .await;
    assert!(out.status.success());
    let none = String::from_utf8(out.stdout).unwrap();
    assert!(none.contains("0 compacted of 0"), "{none}");
    assert!(out.stderr.is_empty(), "no progress bar off a terminal");

    let done = tree.json(VT, &["compact"]).await;
    assert_eq!(done["done"], true, "{done}");
    assert!(num(&done["docs_compacted"]) >= 1, "{done}");
    assert_eq!(num(&done["docs_done"]), num(&done["docs_total"]), "{done}");
    assert_eq!(num(&done["docs_skipped"]), 0, "{done}");
    assert!(num(&done["bytes_after"]) > 0);
    assert_eq!(listed_heads(&tree, VT).await, before, "heads unchanged");
    let after = tree.json(VT, &["docs", "list", "--limit", "1000"]).await;
    assert!(
        after["docs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| num(&d["chunk_bytes"]) == 0),
        "every chunk folded: {after}"
    );
    let again = tree.ok(VT, &["compact"]).await;
    assert!(again.contains("0 compacted of 0 with chunks"), "{again}");

    let hg_before = listed_heads(&tree, HG).await;
    let table = tree.ok(HG, &["compact"]).await;
    assert!(
        table.contains("documents") && table.contains("compacted of"),
        "{table}"
    );
    assert!(table.contains("stored"), "{table}");
    assert_eq!(listed_heads(&tree, HG).await, hg_before, "heads unchanged");

    // Replication goes on from the compacted documents.
    add_member(&tree, "Võ Thị Hạnh", "VT-0100").await;
    until_synced(&tree).await;
    let d = tree.json(VN, &["docs", "show", &roster]).await;
    assert!(num(&d["changes"]) > NAMES.len() as u64 + 1);

    // ---------------------------------------------------------- bad input
    for (args, field, code) in [
        (
            vec!["docs", "list", "--kind", "rosters"],
            "kind",
            "InvalidArgument",
        ),
        (
            vec!["docs", "list", "--owner", "Not A Unit"],
            "owner",
            "InvalidArgument",
        ),
        (
            vec!["docs", "list", "--owner", "nowhere", "--subtree"],
            "owner",
            "NotFound",
        ),
        (
            vec!["docs", "list", "--after", "roster/"],
            "after",
            "InvalidArgument",
        ),
        (
            vec!["docs", "show", "no-such-kind/x"],
            "doc_id",
            "InvalidArgument",
        ),
        (vec!["docs", "show", "roster/nowhere"], "doc_id", "NotFound"),
    ] {
        let err = tree.fails(HG, &args).await;
        assert!(
            err.contains(&format!("{field}:")) && err.contains(code),
            "{args:?}: {err}"
        );
    }

    tree.shutdown().await;
}
