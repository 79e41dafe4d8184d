//! The state of every link, read from the stores at its two ends: what
//! each side lacks, whether its proxy is cut, the bytes it carried; and
//! waiting until every link is in step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use automerge::{ChangeHash, ReadDoc};
use hopluu_devcluster::federation::{Federation, LocalNode};
use hopluu_devcluster::proxy::ProxyStats;
use hopluu_model::{Clock, DocId, SystemClock};
use hopluu_store::peer::FeedDoc;

use super::Edge;
use super::tree::links_in_order;
use crate::output::{Table, bytes};

impl Edge {
    pub(super) fn in_step(&self) -> bool {
        self.waiting_up == 0 && self.waiting_down == 0
    }
}

pub(super) async fn docs_of(node: &LocalNode) -> Result<HashMap<DocId, FeedDoc>> {
    let scan = node.app.store().scan_feed(0, u32::MAX >> 1).await?;
    Ok(scan
        .docs
        .into_iter()
        .map(|f| (f.meta.id.clone(), f))
        .collect())
}

pub(super) fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// Documents `from` holds that are in `to`'s scope (as `from` decides it,
/// as its sessions do) and that `to` does not hold whole.
pub(super) async fn waiting(
    from: &LocalNode,
    from_docs: &HashMap<DocId, FeedDoc>,
    to: &LocalNode,
    to_docs: &HashMap<DocId, FeedDoc>,
) -> Result<usize> {
    let wanted: Vec<&FeedDoc> = {
        let tree = from.app.store().tree();
        from_docs
            .values()
            .filter(|f| tree.in_scope(&to.app.unit, &f.meta, from.config.replication.private_depth))
            .collect()
    };
    let mut n = 0;
    for f in wanted {
        let held = match to_docs.get(&f.meta.id) {
            None => false,
            Some(g) if same_heads(&g.heads, &f.heads) => true,
            Some(_) => to
                .app
                .store()
                .read_doc(&f.meta.id, |d| d.get_missing_deps(&f.heads).is_empty())
                .await?
                .unwrap_or(false),
        };
        if !held {
            n += 1;
        }
    }
    Ok(n)
}

pub(super) async fn edges(fed: &Federation) -> Result<Vec<Edge>> {
    let mut docs = HashMap::new();
    for n in fed.nodes() {
        docs.insert(n.id.clone(), docs_of(n).await?);
    }
    let mut out = Vec::new();
    for (c, u) in links_in_order() {
        let (child, up) = (fed.node(c), fed.node(u));
        let proxy = fed.link(c, u);
        let at_up = up.app.store().peer(c).await?;
        let at_child = child.app.store().peer(u).await?;
        out.push(Edge {
            child: c.to_owned(),
            upstream: u.to_owned(),
            cut: proxy.is_cut(),
            open: proxy.stats().connections_open,
            waiting_up: waiting(child, &docs[c], up, &docs[u]).await?,
            waiting_down: waiting(up, &docs[u], child, &docs[c]).await?,
            last_seen: at_up
                .iter()
                .chain(at_child.iter())
                .map(|r| r.last_seen)
                .max()
                .unwrap_or(0),
        });
    }
    Ok(out)
}

/// Waits until every link (but `except`) is in step; on timeout, prints the
/// links and fails naming the ones still behind.
pub(super) async fn converge(
    fed: &Federation,
    except: Option<(&str, &str)>,
    limit: Duration,
    what: &str,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let all = edges(fed).await?;
        let behind: Vec<&Edge> = all
            .iter()
            .filter(|e| Some((e.child.as_str(), e.upstream.as_str())) != except)
            .filter(|e| !e.in_step())
            .collect();
        if behind.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            println!();
            println!("NOT IN STEP after {} s:", limit.as_secs());
            print_edges(&all);
            bail!(
                "replication did not converge within {} s ({what}): {}",
                limit.as_secs(),
                behind
                    .iter()
                    .map(|e| format!(
                        "{} -> {}: {} documents waiting up, {} down",
                        e.child, e.upstream, e.waiting_up, e.waiting_down
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn print_edges(edges: &[Edge]) {
    println!();
    println!("Sync state of every link (child -> upstream):");
    let mut t = Table::new(&[
        "link",
        "link state",
        "connection",
        "docs waiting ↑",
        "docs waiting ↓",
        "last exchange",
    ]);
    let now = SystemClock.now_millis();
    for e in edges {
        t.row(vec![
            format!("{} -> {}", e.child, e.upstream),
            if e.cut { "CUT".into() } else { "up".into() },
            if e.open > 0 {
                "open".into()
            } else {
                "closed".into()
            },
            e.waiting_up.to_string(),
            e.waiting_down.to_string(),
            if e.last_seen == 0 {
                "never".into()
            } else {
                format!("{:.1} s ago", (now - e.last_seen).max(0) as f64 / 1000.0)
            },
        ]);
    }
    print!("{}", t.render());
    let in_step = edges.iter().filter(|e| e.in_step()).count();
    println!(
        "{in_step} of {} links in step (docs waiting: documents one end holds that the other \
         should also hold and does not yet hold whole; ↑ child to upstream, ↓ back)",
        edges.len()
    );
}

pub(super) fn print_bytes(fed: &Federation, at_heal: &HashMap<(String, String), ProxyStats>) {
    println!();
    println!("Bytes through each link's proxy (gRPC/HTTP2 on the wire):");
    let mut t = Table::new(&[
        "link",
        "↑ total",
        "↓ total",
        "↑ since heal",
        "↓ since heal",
        "connections",
        "refused while cut",
    ]);
    for (c, u) in links_in_order() {
        let s = fed.link(c, u).stats();
        let h = at_heal
            .get(&(c.to_owned(), u.to_owned()))
            .copied()
            .unwrap_or_default();
        t.row(vec![
            format!("{c} -> {u}"),
            bytes(s.client_to_server_bytes),
            bytes(s.server_to_client_bytes),
            bytes(s.client_to_server_bytes - h.client_to_server_bytes),
            bytes(s.server_to_client_bytes - h.server_to_client_bytes),
            s.connections_accepted.to_string(),
            s.connections_refused.to_string(),
        ]);
    }
    print!("{}", t.render());
}

pub(super) fn list_or_none(xs: &[String]) -> String {
    if xs.is_empty() {
        "none".into()
    } else {
        xs.join(", ")
    }
}

pub(super) fn present(b: bool) -> &'static str {
    if b { "present" } else { "MISSING" }
}
