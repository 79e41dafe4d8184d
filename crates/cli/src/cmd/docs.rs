//! `hopluu docs list|show` and `hopluu compact`: the documents a node
//! holds, through its `AdminService`.
//!
//! `docs show` prints a document's metadata, its history (who made each
//! change, and when; never the values) and the heads each peer is known to
//! have. `compact` shows a progress bar on a terminal; with `--json`, or
//! when stdout is not a terminal, it prints only the final summary.

use std::io::IsTerminal;
use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::output::{Table, bytes, kv, print, to_json};

#[derive(Subcommand, Debug)]
pub enum DocsCmd {
    /// Documents held here, by id: kind, owner, size, heads, last update.
    List {
        /// Only this kind: unit, roster, roster-private, campaign,
        /// emulation, proposal or award.
        #[arg(long)]
        kind: Option<String>,
        /// Only documents owned by this unit.
        #[arg(long)]
        owner: Option<String>,
        /// With --owner: also the documents of every unit under it.
        #[arg(long, requires = "owner")]
        subtree: bool,
        /// Documents after this id (paging: the last id shown).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One document: metadata, history newest first (each change's maker
    /// and time, never its values) and the heads each peer has.
    Show {
        /// E.g. roster/hg-truong-a, unit/vn, campaign/c-2025.
        doc_id: String,
        /// Changes of history to show.
        #[arg(long, default_value_t = 20)]
        history: u32,
    },
}

/// Milliseconds since the epoch as UTC; empty for 0.
fn when(millis: i64) -> String {
    if millis <= 0 {
        return String::new();
    }
    hopluu_node::tls::utc(UNIX_EPOCH + Duration::from_millis(millis as u64))
}

/// A hash as shown in tables: its first 12 hex digits.
fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

fn heads(heads: &[String]) -> String {
    match heads {
        [] => "(none)".to_owned(),
        hs => hs.iter().map(|h| short(h)).collect::<Vec<_>>().join(" "),
    }
}

/// Who made a change: the node and unit its actor names.
fn maker(c: &pb::ChangeSummary) -> String {
    let skeleton = hopluu_model::doc::skeleton_actor().to_hex_string();
    match (c.actor_node.as_str(), c.actor_unit.as_str()) {
        _ if c.actor == skeleton => "(document skeleton)".to_owned(),
        ("", _) => format!("(unknown actor {})", short(&c.actor)),
        (node, "") => node.to_owned(),
        (node, unit) => format!("{node} ({unit})"),
    }
}

fn docs_table(r: &pb::ListDocsResponse) -> Table {
    let mut t = Table::new(&[
        "doc", "kind", "owner", "bytes", "chunks", "heads", "seq", "changed", "scope",
    ]);
    for d in &r.docs {
        t.row(vec![
            d.doc_id.clone(),
            d.kind.clone(),
            d.owner.clone(),
            d.size_bytes.to_string(),
            d.chunk_bytes.to_string(),
            heads(&d.heads),
            d.seq.to_string(),
            when(d.changed_at_millis),
            scope(d).to_owned(),
        ]);
    }
    t.row(vec![format!("({} of {})", r.docs.len(), r.total)]);
    t
}

/// `left` for a document no longer in this node's scope (its unit moved
/// away by a reorganisation): kept, no longer written or received here.
fn scope(d: &pb::DocSummary) -> &'static str {
    if d.outside_scope { "left" } else { "" }
}

fn detail_text(d: &pb::DocDetail) -> String {
    let s = d.doc.clone().unwrap_or_default();
    let mut out = kv(&[
        ("doc", s.doc_id.clone()),
        ("kind", s.kind.clone()),
        ("owner", s.owner.clone()),
        ("addressed", s.addressed.join(", ")),
        (
            "size",
            format!("{} bytes ({} in chunks)", s.size_bytes, s.chunk_bytes),
        ),
        ("heads", s.heads.join(", ")),
        ("feed seq", s.seq.to_string()),
        ("changed", when(s.changed_at_millis)),
        ("changes", d.changes.to_string()),
        ("conflicts", d.conflicts.to_string()),
        (
            "scope",
            if s.outside_scope {
                "left this node's scope (its unit moved away): kept, no longer written here"
                    .to_owned()
            } else {
                "held here".to_owned()
            },
        ),
    ])
    .render();
    out.push_str(&format!(
        "\nhistory, newest first ({} of {} changes)\n",
        d.history.len(),
        d.changes
    ));
    let mut h = Table::new(&[
        "change", "made by", "seq", "time", "ops", "bytes", "deps", "message",
    ]);
    for c in &d.history {
        h.row(vec![
            short(&c.hash),
            maker(c),
            c.seq.to_string(),
            when(c.time_millis),
            c.op_count.to_string(),
            c.size_bytes.to_string(),
            c.deps
                .iter()
                .map(|x| short(x))
                .collect::<Vec<_>>()
                .join(" "),
            c.message.clone(),
        ]);
    }
    out.push_str(&h.render());
    out.push_str("\npeers (the heads each is known to have)\n");
    let mut p = Table::new(&["peer", "unit", "heads", "state"]);
    for peer in &d.peers {
        p.row(vec![
            peer.node_id.clone(),
            peer.unit_id.clone(),
            heads(&peer.heads),
            if peer.up_to_date {
                "up to date".to_owned()
            } else {
                format!("{} changes behind", peer.changes_behind)
            },
        ]);
    }
    if d.peers.is_empty() {
        p.row(vec!["(none known)".to_owned()]);
    }
    out.push_str(&p.render());
    out
}

/// `hopluu docs …`.
pub async fn docs(cmd: DocsCmd, channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(channel);
    match cmd {
        DocsCmd::List {
            kind,
            owner,
            subtree,
            after,
            limit,
        } => {
            let r = c
                .list_docs(pb::ListDocsRequest {
                    kind: kind.unwrap_or_default(),
                    owner: owner.unwrap_or_default(),
                    subtree,
                    after: after.unwrap_or_default(),
                    limit,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListDocsResponse", || docs_table(&r))
        }
        DocsCmd::Show { doc_id, history } => {
            let d = c
                .get_doc(pb::GetDocRequest {
                    doc_id,
                    history_limit: history,
                })
                .await?
                .into_inner();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&to_json(&d, "hopluu.v1.DocDetail")?)?
                );
            } else {
                print!("{}", detail_text(&d));
            }
            Ok(())
        }
    }
}

/// `hopluu compact`.
pub async fn compact(min_chunk_bytes: u64, channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(channel);
    let mut stream = c
        .compact(pb::CompactRequest { min_chunk_bytes })
        .await?
        .into_inner();
    let bar = if json || !std::io::stdout().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "compacting {bar:30} {pos}/{len} documents  {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    };
    let mut last = None;
    while let Some(p) = stream.message().await.inspect_err(|_| bar.abandon())? {
        bar.set_length(p.docs_total);
        bar.set_position(p.docs_done);
        bar.set_message(format!(
            "{} -> {}",
            bytes(p.bytes_before),
            bytes(p.bytes_after)
        ));
        let done = p.done;
        last = Some(p);
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    let p = last
        .filter(|p| p.done)
        .ok_or_else(|| anyhow::anyhow!("the node ended the compaction before it was done"))?;
    print(json, &p, "hopluu.v1.CompactProgress", || {
        kv(&[
            (
                "documents",
                format!(
                    "{} compacted of {} with chunks ({} already compacted by writes, {} skipped)",
                    p.docs_compacted,
                    p.docs_total,
                    p.docs_done
                        .saturating_sub(p.docs_compacted + p.docs_skipped),
                    p.docs_skipped
                ),
            ),
            (
                "stored",
                format!(
                    "{} -> {} ({} bytes -> {} bytes)",
                    bytes(p.bytes_before),
                    bytes(p.bytes_after),
                    p.bytes_before,
                    p.bytes_after
                ),
            ),
        ])
    })
}
