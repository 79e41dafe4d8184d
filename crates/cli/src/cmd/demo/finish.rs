//! What the demo leaves behind: a `node.toml` per node to serve its data
//! again, and the closing notes on looking at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::report::section;
use super::tree::TREE;
use super::{CUT, NATIONAL, Summary};
use crate::output::Table;

/// The port each node listens on when served again from its node.toml.
pub(super) fn port_of(id: &str) -> u16 {
    let mut order = vec![NATIONAL];
    order.extend(TREE.iter().map(|p| p.id));
    order.extend(TREE.iter().flat_map(|p| p.districts.iter().map(|d| d.id)));
    7400 + order.iter().position(|x| *x == id).unwrap_or(0) as u16
}

pub(super) fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes DIR/<node>/node.toml for every node, so that each can be served
/// again as its own process on 127.0.0.1:74xx, dialling its parent there
/// over TLS with its certificate from DIR/pki.
pub(super) fn write_configs(dir: &Path, national_db: Option<&str>) -> Result<()> {
    let mut nodes: Vec<(&str, Option<&str>)> = vec![(NATIONAL, None)];
    for p in TREE {
        nodes.push((p.id, Some(NATIONAL)));
        for d in p.districts {
            nodes.push((d.id, Some(p.id)));
        }
    }
    let pki = dir.join("pki");
    for &(id, parent) in &nodes {
        let node_dir = dir.join(id);
        let mut text = format!(
            "# Written by `hopluu demo`: serve this node again with\n\
             #   hopluu serve --config {}\n\n\
             [node]\nid = {}\nunit = {}\ndata_dir = {}\n",
            node_dir.join("node.toml").display(),
            toml_str(id),
            toml_str(id),
            toml_str(&node_dir.display().to_string()),
        );
        if id == NATIONAL
            && let Some(url) = national_db
        {
            if hopluu_store::db::redact(url) == url {
                text.push_str(&format!("\n[database]\nurl = {}\n", toml_str(url)));
            } else {
                text.push_str(&format!(
                    "\n[database]\n# the --national-db url, password left out:\n# url = {}\n",
                    toml_str(&hopluu_store::db::redact(url))
                ));
            }
        }
        text.push_str(&format!(
            "\n[grpc]\nlisten = \"127.0.0.1:{}\"\n\n[log]\nlevel = \"warn\"\n",
            port_of(id)
        ));
        text.push_str(&format!(
            "\n[tls]\ncert = {}\nkey = {}\nca = [{}]\n",
            toml_str(&pki.join(format!("{id}.pem")).display().to_string()),
            toml_str(&pki.join(format!("{id}.key")).display().to_string()),
            toml_str(&pki.join("ca.pem").display().to_string()),
        ));
        if let Some(parent) = parent {
            text.push_str(&format!(
                "\n[[replication.upstreams]]\nnode_id = {}\naddress = \"https://127.0.0.1:{}\"\n",
                toml_str(parent),
                port_of(parent)
            ));
        }
        for (child, _) in nodes.iter().filter(|(_, p)| *p == Some(id)) {
            text.push_str(&format!(
                "\n[[replication.children]]\nnode_id = {}\nunit = {}\n",
                toml_str(child),
                toml_str(child)
            ));
        }
        let path = node_dir.join("node.toml");
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub(super) fn finish(
    dir: &Path,
    summary: &Summary,
    took: Duration,
    national_db: Option<&str>,
    (ca, cert, key): &(PathBuf, PathBuf, PathBuf),
) {
    section("the data");
    let mut t = Table::new(&["node", "database", "documents", "active members held"]);
    for n in &summary.nodes {
        t.row(vec![
            n.id.clone(),
            n.database.clone(),
            n.documents.to_string(),
            n.members.to_string(),
        ]);
    }
    print!("{}", t.render());
    let d = dir.display();
    println!();
    println!("Every node is stopped; its data stays in {d}/<node>/ (hopluu.sqlite, node.toml).");
    println!("Look at it with sqlite3:");
    println!(
        "  sqlite3 {d}/hau-giang/hopluu.sqlite 'select unit_id, count(*) from members group by unit_id'"
    );
    let private = "'select count(*) from member_private'";
    match national_db {
        None => println!(
            "  sqlite3 {d}/vn/hopluu.sqlite {private}   # 0: CCCD, ethnicity and religion stay at provinces and below"
        ),
        Some(url) => println!(
            "  psql {} -c {private}   # vn, on PostgreSQL: 0, CCCD, ethnicity and religion stay at provinces and below",
            hopluu_store::db::redact(url)
        ),
    }
    println!("  sqlite3 {d}/{CUT}/hopluu.sqlite {private}");
    println!(
        "or serve a node again and use the hopluu commands against it, over mutual TLS with the\n\
         demo's administrator certificate (every certificate is in {d}/pki):"
    );
    println!("  hopluu serve --config {d}/vn/node.toml        # listens on 127.0.0.1:7400");
    println!(
        "  export HOPLUU_CA={} HOPLUU_CERT={} HOPLUU_KEY={}",
        ca.display(),
        cert.display(),
        key.display()
    );
    println!("  hopluu report members; hopluu members find \"nguyen van\"; hopluu units list");
    println!(
        "(each node.toml listens on its own port, 7400-74{:02}, and dials its parent there)",
        port_of("kg-phu-quoc") - 7400
    );
    println!();
    println!("hopluu demo finished in {:.1} s", took.as_secs_f64());
}
