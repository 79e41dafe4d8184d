//! `hopluu status` and `hopluu quarantine …` against a real `hopluu serve`
//! over mutual TLS, as an administrator and as staff.
//!
//! The quarantine entries are put in the node's database the way its
//! replication gate would (a change made under a foreign node's actor, and
//! one depending on it), through the store, while the node runs.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ChangeHash, ReadDoc};
use hopluu_model::{Author, DocId, UnitId, member};
use hopluu_store::quarantine::NewQuarantine;
use hopluu_store::{Store, StoreOptions};

use super::*;

/// What the forged changes write: never shown by the CLI.
const SECRET: &str = "Giá trị bí mật 001090099999";

fn add_member(node: &Node) {
    node.ok(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Nguyễn Văn An",
        "--birth-date",
        "1990-03-15",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2015-05-01",
    ]);
}

/// Quarantines two changes to hg-truong-a's roster made by node `lc-node`
/// of lai-chau (the second depending on the first); returns their hashes.
fn quarantine_two(node: &Node) -> (DocId, ChangeHash, ChangeHash) {
    quarantine_two_writing(node, SECRET)
}

/// [`quarantine_two`], the changes writing `value` (automerge makes no
/// change that writes what is there already).
fn quarantine_two_writing(node: &Node, value: &'static str) -> (DocId, ChangeHash, ChangeHash) {
    let url = format!(
        "sqlite:{}",
        node._dir
            .path()
            .join("data")
            .join("hopluu.sqlite")
            .display()
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let store = Store::open(
                &url,
                StoreOptions::default(),
                std::sync::Arc::new(hopluu_model::SystemClock),
            )
                .await
                .expect("the node's database opens beside it");
            let doc = member::roster_doc(&UnitId::parse("unit", "hg-truong-a").unwrap(), 0);
            let bytes = store.doc_bytes(&doc).await.unwrap().expect("the roster");
            let mut d = Automerge::load(&bytes).unwrap();
            let lai_chau = UnitId::parse("unit", "lai-chau").unwrap();
            d.set_actor(Author::actor_for("lc-node", &lai_chau, b"forged"));
            // Fields a roster holds (its shape is checked): the first
            // member's.
            let members = d.get(automerge::ROOT, "members").unwrap().expect("members").1;
            let first = d.keys(&members).next().expect("a member");
            let member = d.get(&members, first.as_str()).unwrap().expect("the member").1;
            let mut changes = Vec::new();
            for (key, message) in [("position", "forged correction"), ("status_reason", "and another")] {
                let mut tx = d.transaction();
                tx.put(&member, key, value).unwrap();
                tx.commit_with(CommitOptions::default().with_message(message.to_owned()));
                let h = d.get_heads()[0];
                changes.push((h, d.get_change_by_hash(&h).unwrap().raw_bytes().to_vec()));
            }
            let (first, second) = (changes[0].0, changes[1].0);
            let mut tx = store.begin().await.unwrap();
            for (i, (hash, change)) in changes.into_iter().enumerate() {
                let (code, reason, waits_for) = if i == 0 {
                    (
                        "not-authorised",
                        format!("made by node lc-node for unit lai-chau, which holds no authority over {doc}"),
                        None,
                    )
                } else {
                    ("waits", format!("depends on quarantined change {first}"), Some(first))
                };
                tx.quarantine(
                    &NewQuarantine {
                        doc: doc.clone(),
                        hash,
                        origin_node: "lc-node".into(),
                        origin_unit: "lai-chau".into(),
                        peer_node: "lc-node".into(),
                        peer_unit: "lai-chau".into(),
                        code: code.into(),
                        reason,
                        waits_for,
                        made_at: 0,
                        change,
                    },
                    1_795_000_000_000,
                )
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
            store.close().await;
            (doc, first, second)
        })
}

#[test]
fn an_administrator_reviews_the_quarantine_with_the_cli() {
    let node = Node::start();
    build_tree(&node);
    add_member(&node);

    // Status: the certificate's expiry and an empty quarantine.
    let status = node.ok(&["status"]);
    for want in [
        "Tổng Liên đoàn Lao động Việt Nam",
        "sqlite",
        "expires",
        "days left",
        "0 held",
    ] {
        assert!(status.contains(want), "{want:?} in {status}");
    }
    let j = node.json(&["status"]);
    assert_eq!(j["node_id"], "vn");
    assert_eq!(j["tls"]["identity"], "urn:hopluu:node:vn:vn");
    assert!(
        j["tls"]["days_left"]
            .as_str()
            .is_some_and(|d| d.parse::<i64>().unwrap() > 300),
        "{j}"
    );
    assert_eq!(j["quarantine"]["held"], "0");

    let (doc, first, second) = quarantine_two(&node);
    let doc = doc.to_string();

    // List: a table by default, JSON for scripts, filters.
    let table = node.ok(&["quarantine", "list"]);
    for want in [
        doc.as_str(),
        "held",
        "not-authorised",
        "waits",
        "lc-node (lai-chau)",
    ] {
        assert!(table.contains(want), "{want:?} in {table}");
    }
    assert!(!table.contains(SECRET), "{table}");
    let listed = node.json(&["quarantine", "list", "--state", "all", "--doc", &doc]);
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listed}");
    assert_eq!(entries[0]["hash"], first.to_string());
    assert_eq!(entries[0]["state"], "QUARANTINE_STATE_HELD");
    assert_eq!(entries[1]["waits_for"], first.to_string());
    let (a, b) = (
        entries[0]["id"].as_str().unwrap().to_owned(),
        entries[1]["id"].as_str().unwrap().to_owned(),
    );
    for state in ["released", "archived"] {
        let none = node.json(&["quarantine", "list", "--state", state]);
        assert_eq!(
            none["entries"].as_array().map(Vec::len),
            Some(0),
            "{state}: {none}"
        );
    }

    // Show: what the change says of itself, never its values.
    let shown = node.ok(&["quarantine", "show", &a]);
    for want in [
        "forged correction",
        "lc-node (lai-chau)",
        "change ops",
        first.to_string().as_str(),
    ] {
        assert!(shown.contains(want), "{want:?} in {shown}");
    }
    assert!(!shown.contains(SECRET), "{shown}");
    let shown = node.json(&["quarantine", "show", &b]);
    assert_eq!(shown["change"]["message"], "and another");
    assert_eq!(shown["change"]["deps"][0], first.to_string());
    assert_eq!(shown["change"]["op_count"], "1");
    let err = node.fails(&["quarantine", "show", "9999"]);
    assert!(err.contains("id: ") && err.contains("NotFound"), "{err}");

    // Release: applied and into the feed; the dependent stays held.
    let feed = |n: &Node| {
        n.json(&["status"])["feed_position"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = feed(&node);
    let out = node.ok(&[
        "quarantine",
        "release",
        &a,
        "--note",
        "checked with Lai Châu",
    ]);
    assert!(
        out.contains("released") && out.contains("admin admin") && out.contains("1 applied"),
        "{out}"
    );
    assert_eq!(feed(&node), before + 1);
    let err = node.fails(&["quarantine", "release", &a]);
    assert!(
        err.contains("FailedPrecondition") && err.contains("released"),
        "{err}"
    );

    // Discard, as JSON.
    let out = node.json(&["quarantine", "discard", &b, "--note", "not theirs"]);
    assert_eq!(out["entry"]["state"], "QUARANTINE_STATE_DISCARDED");
    assert_eq!(out["entry"]["hash"], second.to_string());
    assert_eq!(out["changes"], "1");
    assert_eq!(feed(&node), before + 1);
    let status = node.ok(&["status"]);
    assert!(
        status.contains("0 held, 1 released, 1 discarded"),
        "{status}"
    );

    // Staff: the admin service refuses them; `status` shows the node info.
    let d = node.certs.file("");
    hopluu_ok(&[
        "cert",
        "staff",
        "--ca",
        &d,
        "--name",
        "clerk-1",
        "--unit",
        "hg-truong-a",
        "--out",
        &d,
    ]);
    let staff = |args: &[&str]| {
        let mut all = vec![
            "--addr".to_owned(),
            node.addr.clone(),
            "--ca".into(),
            node.certs.file("ca.pem"),
            "--cert".into(),
            node.certs.file("clerk-1.pem"),
            "--key".into(),
            node.certs.file("clerk-1.key"),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        hopluu(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = staff(&["quarantine", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PermissionDenied") && err.contains("ListQuarantine"),
        "{err}"
    );
    let out = staff(&["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("vn") && !text.contains("quarantine"),
        "{text}"
    );
    node.stop();
}

/// The entry ids and hashes a `quarantine list --json` answer shows.
fn listed(j: &serde_json::Value) -> Vec<String> {
    j["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|x| x["hash"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_administrator_releases_and_discards_by_filter_with_the_cli() {
    let node = Node::start();
    build_tree(&node);
    add_member(&node);
    let (doc, first, second) = quarantine_two(&node);
    let doc = doc.to_string();
    let feed = |n: &Node| {
        n.json(&["status"])["feed_position"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = feed(&node);

    // The list takes the same filters.
    let waits = node.json(&[
        "quarantine",
        "list",
        "--node",
        "lc-node",
        "--reason",
        "waits",
    ]);
    assert_eq!(listed(&waits), [second.to_string()], "{waits}");
    let both = node.json(&["quarantine", "list", "--doc", &doc, "--node", "lc-node"]);
    assert_eq!(listed(&both).len(), 2, "{both}");
    let err = node.fails(&["quarantine", "list", "--reason", "nope"]);
    assert!(
        err.contains("reason: ") && err.contains("not-authorised"),
        "{err}"
    );

    // No id and no filter: refused, naming the field and why.
    let err = node.fails(&["quarantine", "release"]);
    assert!(
        err.contains("filter: ") && err.contains("every held change"),
        "{err}"
    );
    let err = node.fails(&["quarantine", "discard", "--doc", "not a doc"]);
    assert!(err.contains("doc_id: "), "{err}");
    assert_eq!(feed(&node), before);

    // A dry run: the counts, nothing written.
    let out = node.ok(&["quarantine", "release", "--node", "lc-node", "--dry-run"]);
    for want in [
        "selected",
        "released",
        "left held",
        "dry run",
        "nothing written",
    ] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    assert_eq!(feed(&node), before);

    // The waiting change alone is left held, and the answer says why.
    let out = node.ok(&["quarantine", "release", "--reason", "waits"]);
    assert!(
        out.contains("1 missing-past") && out.contains(&first.to_string()),
        "{out}"
    );
    assert_eq!(feed(&node), before);

    // Both, in dependency order, in one commit.
    let out = node.json(&[
        "quarantine",
        "release",
        "--node",
        "lc-node",
        "--note",
        "checked with Lai Châu",
    ]);
    assert_eq!(
        (out["matched"].as_str(), out["released"].as_str()),
        (Some("2"), Some("2")),
        "{out}"
    );
    assert_eq!(feed(&node), before + 1);

    // Two more, discarded by document and reason: the one waiting goes too.
    let (_, third, _) = quarantine_two_writing(&node, "Một giá trị bí mật khác");
    let out = node.ok(&[
        "quarantine",
        "discard",
        "--doc",
        &doc,
        "--reason",
        "not-authorised",
    ]);
    assert!(
        out.contains("discarded") && out.contains("1 held changes that waited on them"),
        "{out}"
    );
    let gone = node.json(&[
        "quarantine",
        "list",
        "--state",
        "discarded",
        "--node",
        "lc-node",
    ]);
    assert_eq!(listed(&gone)[0], third.to_string(), "{gone}");
    let status = node.ok(&["status"]);
    assert!(
        status.contains("0 held, 2 released, 2 discarded"),
        "{status}"
    );
    node.stop();
}
