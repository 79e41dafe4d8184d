//! `hopluu status` and `hopluu quarantine …`: the `AdminService` of a node.
//!
//! `status` asks the admin service (certificate expiry, quarantine
//! counts); with a staff certificate, which the admin service refuses, it
//! falls back to the node info every certificate may read.

use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::output::{Table, kv, print};

#[derive(Subcommand, Debug)]
pub enum QuarantineCmd {
    /// Quarantined changes, oldest first (held ones by default).
    List {
        #[arg(long, value_enum, default_value_t = StateArg::Held)]
        state: StateArg,
        #[command(flatten)]
        filter: Filter,
        /// Entries after this id (paging: the last id shown).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One entry, with what its change says of itself (never its values).
    Show { id: i64 },
    /// Apply a held change (and what waited on it and now passes); or,
    /// with filters instead of an id, every held change they select, in
    /// dependency order.
    Release {
        /// The entry; leave it out to select by filters.
        id: Option<i64>,
        #[command(flatten)]
        filter: Filter,
        /// Only count what would be released or left held.
        #[arg(long)]
        dry_run: bool,
        /// Why, for the node's log.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Drop a held change (and what waits on it) for good; or, with
    /// filters instead of an id, every held change they select.
    Discard {
        /// The entry; leave it out to select by filters.
        id: Option<i64>,
        #[command(flatten)]
        filter: Filter,
        /// Only count what would be discarded.
        #[arg(long)]
        dry_run: bool,
        /// Why, for the node's log.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// Which held changes: every filter given must match.
#[derive(Args, Debug, Default)]
pub struct Filter {
    /// Only changes to this document, e.g. roster/hg-truong-a.
    #[arg(long)]
    doc: Option<String>,
    /// Only changes made by this node (the node their actor names).
    #[arg(long)]
    node: Option<String>,
    /// Only changes held for this reason: not-authorised, outside-sender,
    /// unknown-unit, unknown-actor, forged-skeleton, invalid-value, waits, refused.
    #[arg(long)]
    reason: Option<String>,
    /// Only changes to documents this reorganisation decision sealed (its
    /// id, or its number).
    #[arg(long)]
    decision: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateArg {
    Held,
    Released,
    Discarded,
    Archived,
    All,
}

impl StateArg {
    fn pb(self) -> pb::QuarantineState {
        match self {
            StateArg::Held => pb::QuarantineState::Held,
            StateArg::Released => pb::QuarantineState::Released,
            StateArg::Discarded => pb::QuarantineState::Discarded,
            StateArg::Archived => pb::QuarantineState::Archived,
            StateArg::All => pb::QuarantineState::Unspecified,
        }
    }
}

fn state(s: i32) -> &'static str {
    match pb::QuarantineState::try_from(s) {
        Ok(pb::QuarantineState::Held) => "held",
        Ok(pb::QuarantineState::Released) => "released",
        Ok(pb::QuarantineState::Discarded) => "discarded",
        Ok(pb::QuarantineState::Archived) => "archived",
        _ => "?",
    }
}

/// Milliseconds since the epoch as UTC; empty for 0.
pub(crate) fn when(millis: i64) -> String {
    if millis <= 0 {
        return String::new();
    }
    hopluu_node::tls::utc(UNIX_EPOCH + Duration::from_millis(millis as u64))
}

pub(crate) fn who(node: &str, unit: &str) -> String {
    match (node.is_empty(), unit.is_empty()) {
        (true, true) => "(nobody)".to_owned(),
        (false, true) => node.to_owned(),
        _ => format!("{node} ({unit})"),
    }
}

pub(crate) fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// `hopluu status`.
pub async fn status(channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut admin = AdminServiceClient::new(channel.clone());
    let s = match admin.status(pb::StatusRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) if e.code() == tonic::Code::PermissionDenied => {
            return node_info(channel, json).await;
        }
        Err(e) => return Err(e.into()),
    };
    print(json, &s, "hopluu.v1.NodeStatus", || {
        let mut rows = vec![
            ("node", s.node_id.clone()),
            ("unit", format!("{} ({})", s.unit_id, s.unit_name)),
            ("database", s.database.clone()),
            ("version", s.version.clone()),
            ("uptime", uptime(s.uptime_seconds)),
            ("feed position", s.feed_position.to_string()),
            ("documents", s.documents.to_string()),
        ];
        match &s.tls {
            None => rows.push(("tls", "off (--insecure-plaintext)".to_owned())),
            Some(t) => {
                rows.push(("certificate", t.subject.clone()));
                rows.push(("identity", t.identity.clone()));
                let left = match t.days_left {
                    d if d < 0 => format!("EXPIRED {} days ago", -d),
                    d if d < 30 => format!("{d} days left: renew it (hopluu cert node)"),
                    d => format!("{d} days left"),
                };
                rows.push(("expires", format!("{} ({left})", t.not_after)));
                rows.push(("trusted CAs", t.trusted_cas.join("; ")));
            }
        }
        let q = s.quarantine.unwrap_or_default();
        rows.push((
            "quarantine",
            if q.archived > 0 {
                format!(
                    "{} held, {} released, {} discarded, {} archived (units that left this node's subtree)",
                    q.held, q.released, q.discarded, q.archived
                )
            } else {
                format!(
                    "{} held, {} released, {} discarded",
                    q.held, q.released, q.discarded
                )
            },
        ));
        rows.push(("conflicts", s.conflicts.to_string()));
        rows.push((
            "peers",
            format!("{} connected of {}", s.peers_connected, s.peers),
        ));
        kv(&rows)
    })
}

/// `hopluu status` for a caller the admin service refuses.
async fn node_info(channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut c = pb::node_service_client::NodeServiceClient::new(channel);
    let i = c
        .get_node_info(pb::GetNodeInfoRequest {})
        .await?
        .into_inner();
    print(json, &i, "hopluu.v1.NodeInfo", || {
        kv(&[
            ("node", i.node_id.clone()),
            ("unit", format!("{} ({})", i.unit_id, i.unit_name)),
            ("database", i.database.clone()),
            ("version", i.version.clone()),
            ("uptime", uptime(i.uptime_seconds)),
            ("feed position", i.feed_position.to_string()),
            ("documents", i.documents.to_string()),
        ])
    })
}

fn entries_table(entries: &[pb::QuarantineEntry]) -> Table {
    let mut t = Table::new(&[
        "id", "state", "doc", "code", "made by", "from", "bytes", "received", "reason",
    ]);
    for e in entries {
        t.row(vec![
            e.id.to_string(),
            state(e.state).to_owned(),
            e.doc_id.clone(),
            e.code.clone(),
            who(&e.origin_node, &e.origin_unit),
            who(&e.peer_node, &e.peer_unit),
            e.size_bytes.to_string(),
            when(e.received_at_millis),
            e.reason.clone(),
        ]);
    }
    t
}

fn entry_rows(e: &pb::QuarantineEntry) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("id", e.id.to_string()),
        ("state", state(e.state).to_owned()),
        ("doc", e.doc_id.clone()),
        ("hash", e.hash.clone()),
        ("code", e.code.clone()),
        ("reason", e.reason.clone()),
        ("made by", who(&e.origin_node, &e.origin_unit)),
        ("from peer", who(&e.peer_node, &e.peer_unit)),
        ("bytes", e.size_bytes.to_string()),
        ("received", when(e.received_at_millis)),
    ];
    if !e.waits_for.is_empty() {
        rows.push(("waits for", e.waits_for.clone()));
    }
    if !e.decided_by.is_empty() {
        rows.push(("decided", when(e.decided_at_millis)));
        rows.push(("decided by", e.decided_by.clone()));
    }
    rows
}

/// `hopluu quarantine …`.
pub async fn quarantine(cmd: QuarantineCmd, channel: Channel, json: bool) -> anyhow::Result<()> {
    let mut c = AdminServiceClient::new(channel);
    match cmd {
        QuarantineCmd::List {
            state,
            filter,
            after,
            limit,
        } => {
            let r = c
                .list_quarantine(pb::ListQuarantineRequest {
                    state: state.pb() as i32,
                    doc_id: filter.doc.unwrap_or_default(),
                    node: filter.node.unwrap_or_default(),
                    reason: filter.reason.unwrap_or_default(),
                    decision: filter.decision.unwrap_or_default(),
                    after_id: after,
                    limit,
                })
                .await?
                .into_inner();
            print(json, &r, "hopluu.v1.ListQuarantineResponse", || {
                entries_table(&r.entries)
            })
        }
        QuarantineCmd::Show { id } => {
            let d = c
                .get_quarantine(pb::GetQuarantineRequest { id })
                .await?
                .into_inner();
            print(json, &d, "hopluu.v1.QuarantineDetail", || {
                let mut rows = d.entry.as_ref().map(entry_rows).unwrap_or_default();
                match &d.change {
                    None => rows.push(("change", "(dropped when discarded)".to_owned())),
                    Some(ch) if !ch.decode_error.is_empty() => {
                        rows.push(("change", format!("does not decode: {}", ch.decode_error)));
                    }
                    Some(ch) => {
                        rows.push(("change actor", who(&ch.actor_node, &ch.actor_unit)));
                        rows.push(("change seq", ch.seq.to_string()));
                        rows.push(("change deps", ch.deps.join(", ")));
                        rows.push(("change ops", ch.op_count.to_string()));
                        rows.push(("change time", when(ch.time_millis)));
                        rows.push(("change message", ch.message.clone()));
                    }
                }
                kv(&rows)
            })
        }
        QuarantineCmd::Release {
            id,
            filter,
            dry_run,
            note,
        } => {
            let d = c
                .release_quarantine(decide_request(id, filter, dry_run, note))
                .await?
                .into_inner();
            decision(json, &d, "applied")
        }
        QuarantineCmd::Discard {
            id,
            filter,
            dry_run,
            note,
        } => {
            let d = c
                .discard_quarantine(decide_request(id, filter, dry_run, note))
                .await?
                .into_inner();
            decision(json, &d, "discarded")
        }
    }
}

fn decide_request(
    id: Option<i64>,
    filter: Filter,
    dry_run: bool,
    note: String,
) -> pb::DecideQuarantineRequest {
    pb::DecideQuarantineRequest {
        id: id.unwrap_or(0),
        note,
        node: filter.node.unwrap_or_default(),
        reason: filter.reason.unwrap_or_default(),
        doc_id: filter.doc.unwrap_or_default(),
        decision: filter.decision.unwrap_or_default(),
        dry_run,
    }
}

fn decision(json: bool, d: &pb::QuarantineDecision, done: &'static str) -> anyhow::Result<()> {
    print(json, d, "hopluu.v1.QuarantineDecision", || {
        let mut rows = match &d.entry {
            Some(e) => {
                let mut rows = entry_rows(e);
                rows.push(("changes", format!("{} {done}", d.changes)));
                rows
            }
            None => counts_rows(d),
        };
        if d.dry_run {
            rows.push((
                "dry run",
                "nothing written: these are the counts".to_owned(),
            ));
        }
        kv(&rows)
    })
}

/// A decision by filter: what was selected, and what became of it.
fn counts_rows(d: &pb::QuarantineDecision) -> Vec<(&'static str, String)> {
    let mut rows = vec![("selected", d.matched.to_string())];
    if d.more > 0 {
        rows.push((
            "not selected",
            format!("{} more match: run the command again for them", d.more),
        ));
    }
    if d.released > 0 || d.passed > 0 || d.discarded == 0 {
        rows.push(("released", d.released.to_string()));
        if d.passed > 0 {
            rows.push((
                "also applied",
                format!(
                    "{} held changes that waited on them passed the gate",
                    d.passed
                ),
            ));
        }
    }
    if d.discarded > 0 || d.waiting_discarded > 0 {
        rows.push(("discarded", d.discarded.to_string()));
        if d.waiting_discarded > 0 {
            rows.push((
                "also discarded",
                format!("{} held changes that waited on them", d.waiting_discarded),
            ));
        }
    }
    let left: u64 = d.left.iter().map(|l| l.count).sum();
    rows.push(("left held", left.to_string()));
    for l in &d.left {
        rows.push((
            "  why",
            format!(
                "{} {}: {} (entry {}: {})",
                l.count, l.why, l.description, l.example_id, l.example
            ),
        ));
    }
    rows
}
