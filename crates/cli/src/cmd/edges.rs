//! `hopluu peers`, `hopluu tree`, `hopluu trace`, `hopluu sync now` and
//! `hopluu check`: the replication edges of a node and of its whole
//! subtree, where a record's latest change has reached, waking the
//! dialler, and the convergence check of one edge.

use clap::{Subcommand, ValueEnum};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::cmd::admin::{when, who};
use crate::output::{Table, bytes, kv, print};

/// `hopluu sync …`.
#[derive(Subcommand, Debug, Clone)]
pub enum SyncCmd {
    /// Dial every disconnected upstream now, without waiting out the
    /// backoff (or only --peer).
    Now {
        #[arg(long)]
        peer: Option<String>,
    },
}

/// What `hopluu trace` follows.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum TraceKindArg {
    /// A member, by card number or member id.
    Member,
    Campaign,
    Initiative,
    Award,
    /// A unit's record.
    Unit,
    /// Any document, by id (e.g. roster/hg-vi-thanh-g1).
    Doc,
}

impl TraceKindArg {
    fn pb(self) -> pb::TraceKind {
        match self {
            TraceKindArg::Member => pb::TraceKind::Member,
            TraceKindArg::Campaign => pb::TraceKind::Campaign,
            TraceKindArg::Initiative => pb::TraceKind::Initiative,
            TraceKindArg::Award => pb::TraceKind::Award,
            TraceKindArg::Unit => pb::TraceKind::Unit,
            TraceKindArg::Doc => pb::TraceKind::Doc,
        }
    }
}

fn direction(d: i32) -> &'static str {
    match pb::PeerDirection::try_from(d) {
        Ok(pb::PeerDirection::Upstream) => "up",
        Ok(pb::PeerDirection::Child) => "down",
        Ok(pb::PeerDirection::Handover) => "handover",
        _ => "?",
    }
}

fn state(p: &pb::PeerStatus) -> String {
    if p.retired && !p.connected {
        // An archive now, not a link down.
        format!("retired {}", p.retired_at)
    } else if p.connected {
        format!("connected since {}", when(p.since_millis))
    } else if p.since_millis > 0 {
        format!("DOWN since {}", when(p.since_millis))
    } else {
        "never connected".to_owned()
    }
}

/// A duration in seconds, short.
fn secs(s: u64) -> String {
    match s {
        0 => "0".to_owned(),
        s if s < 120 => format!("{s} s"),
        s if s < 7_200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3_600),
        s => format!("{} d", s / 86_400),
    }
}

/// What the peer lacks: updates not acknowledged, and of those, changes
/// it holds in quarantine.
fn pending(p: &pb::PeerStatus) -> String {
    if p.held_by_peer > 0 {
        format!(
            "{} docs ({} updates, {} held by peer)",
            p.docs_pending, p.changes_pending, p.held_by_peer
        )
    } else {
        format!("{} docs ({} updates)", p.docs_pending, p.changes_pending)
    }
}

/// The edge's error with its time: the current one, or else the last one
/// it got over, marked resolved with when (never to be read as current).
fn error(p: &pb::PeerStatus) -> String {
    let at = |error: &str, millis: i64| match millis {
        0 => error.to_owned(),
        m => format!("{}: {error}", when(m)),
    };
    if !p.last_error.is_empty() {
        at(&p.last_error, p.last_error_millis)
    } else if !p.previous_error.is_empty() {
        format!(
            "(resolved {}) {}",
            when(p.error_resolved_millis),
            at(&p.previous_error, p.previous_error_millis)
        )
    } else {
        String::new()
    }
}

/// `hopluu peers`.
pub async fn peers(channel: Channel, json: bool) -> anyhow::Result<()> {
    let r = AdminServiceClient::new(channel)
        .list_peers(pb::ListPeersRequest {})
        .await?
        .into_inner();
    print(json, &r, "hopluu.v1.ListPeersResponse", || {
        let mut t = Table::new(&[
            "peer",
            "dir",
            "state",
            "last contact",
            "acked",
            "applied",
            "pending",
            "lag",
            "sent",
            "received",
            "refused",
            "held here",
            "last error",
        ]);
        for p in &r.peers {
            t.row(vec![
                who(&p.node_id, &p.unit_id),
                direction(p.direction).to_owned(),
                state(p),
                when(p.last_contact_millis),
                format!("{}/{}", p.acked_upto, r.feed_position),
                p.applied_upto.to_string(),
                pending(p),
                secs(p.lag_seconds),
                bytes(p.bytes_sent),
                bytes(p.bytes_received),
                p.rejected.to_string(),
                p.held_here.to_string(),
                error(p),
            ]);
        }
        t
    })
}

/// `hopluu tree`.
pub async fn tree(channel: Channel, json: bool, stale_after: u64) -> anyhow::Result<()> {
    let r = AdminServiceClient::new(channel)
        .tree(pb::TreeRequest {
            stale_after_seconds: stale_after,
        })
        .await?
        .into_inner();
    print(json, &r, "hopluu.v1.TreeResponse", || {
        let mut t = Table::new(&[
            "reporter",
            "peer",
            "dir",
            "state",
            "pending",
            "lag",
            "report age",
            "last error",
        ]);
        for e in &r.edges {
            let p = e.edge.clone().unwrap_or_default();
            let indent = "  ".repeat(e.reporter_depth as usize);
            let age = if e.stale {
                format!("{} STALE", secs(e.age_seconds))
            } else {
                secs(e.age_seconds)
            };
            t.row(vec![
                format!("{indent}{}", e.reporter_node),
                who(&p.node_id, &p.unit_id),
                direction(p.direction).to_owned(),
                state(&p),
                if p.held_by_peer > 0 {
                    format!("{} docs ({} held by peer)", p.docs_pending, p.held_by_peer)
                } else {
                    format!("{} docs", p.docs_pending)
                },
                secs(p.lag_seconds),
                age,
                error(&p),
            ]);
        }
        t
    })
}

/// `hopluu trace KIND ID`.
pub async fn trace(
    channel: Channel,
    json: bool,
    kind: TraceKindArg,
    id: String,
) -> anyhow::Result<()> {
    let r = AdminServiceClient::new(channel)
        .trace(pb::TraceRequest {
            kind: kind.pb() as i32,
            id,
        })
        .await?
        .into_inner();
    print(json, &r, "hopluu.v1.TraceResponse", || {
        let mut head = kv(&[
            ("document", r.doc_id.clone()),
            ("latest change", r.change.clone()),
            ("made by", who(&r.made_by_node, &r.made_by_unit)),
            ("made at", when(r.made_at_millis)),
        ]);
        head.row(vec![String::new(), String::new()]);
        let mut t = Table::new(&["level", "unit", "node", "reached"]);
        for h in &r.hops {
            t.row(vec![
                h.depth.to_string(),
                h.unit_id.clone(),
                h.node_id.clone(),
                if !h.reached {
                    "not yet".to_owned()
                } else if h.reached_at_millis > 0 {
                    when(h.reached_at_millis)
                } else {
                    "yes".to_owned()
                },
            ]);
        }
        head.rows.push(vec!["path up".to_owned(), String::new()]);
        let mut out = Table::new(&[]);
        out.header = head.header.clone();
        out.rows = head.rows;
        for line in t.render().lines() {
            out.rows.push(vec![String::new(), line.to_owned()]);
        }
        out
    })
}

/// `hopluu sync now`.
pub async fn sync(channel: Channel, json: bool, cmd: SyncCmd) -> anyhow::Result<()> {
    let SyncCmd::Now { peer } = cmd;
    let r = AdminServiceClient::new(channel)
        .sync_now(pb::SyncNowRequest {
            peer: peer.unwrap_or_default(),
        })
        .await?
        .into_inner();
    print(json, &r, "hopluu.v1.SyncNowResponse", || {
        kv(&[
            ("dialling now", r.woken.join(", ")),
            ("already connected", r.connected.join(", ")),
        ])
    })
}

/// A check that found differences: `hopluu` exits with status 1, without
/// an error line (the output already says what differs), so that scripts
/// can test it.
#[derive(Debug)]
pub struct Differences(pub u64);

impl std::fmt::Display for Differences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} documents differ", self.0)
    }
}

impl std::error::Error for Differences {}

pub(crate) fn check_state(s: i32) -> &'static str {
    match pb::CheckState::try_from(s) {
        Ok(pb::CheckState::MissingAtPeer) => "missing-at-peer",
        Ok(pb::CheckState::MissingHere) => "missing-here",
        Ok(pb::CheckState::PeerBehind) => "peer-behind",
        Ok(pb::CheckState::HereBehind) => "here-behind",
        Ok(pb::CheckState::Diverged) => "diverged",
        Ok(pb::CheckState::HeldHere) => "held-here",
        _ => "?",
    }
}

/// Heads as their count and short hashes: `2: 3f2a9c1b 77aa01de`.
fn short_heads(heads: &[String]) -> String {
    if heads.is_empty() {
        return "-".to_owned();
    }
    let mut shown: Vec<&str> = heads.iter().take(3).map(|h| &h[..h.len().min(8)]).collect();
    if heads.len() > 3 {
        shown.push("…");
    }
    format!("{}: {}", heads.len(), shown.join(" "))
}

/// The line under a check: what was compared and what differs, by state.
pub fn check_summary(r: &pb::CheckPeerResponse) -> String {
    let head = format!(
        "{} and {}: {} documents compared",
        r.node_id, r.peer_node_id, r.compared
    );
    if r.differing == 0 {
        return format!("{head}, all in step");
    }
    let mut by_state = std::collections::BTreeMap::<&str, u64>::new();
    for d in &r.differences {
        *by_state.entry(check_state(d.state)).or_default() += 1;
    }
    let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let listed = if (r.differences.len() as u64) < r.differing {
        format!(", the first {} listed", r.differences.len())
    } else {
        String::new()
    };
    format!(
        "{head}, {} differ ({}{listed})",
        r.differing,
        states.join(", ")
    )
}

/// `hopluu check --peer NODE [--address URL]`: exits with status 1 when any
/// document differs.
pub async fn check(
    channel: Channel,
    json: bool,
    peer: String,
    address: Option<String>,
) -> anyhow::Result<()> {
    let r = AdminServiceClient::new(channel)
        .check_peer(pb::CheckPeerRequest {
            peer_node_id: peer,
            address: address.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if json || !r.differences.is_empty() {
        print(json, &r, "hopluu.v1.CheckPeerResponse", || {
            let mut t = Table::new(&["document", "state", "heads here", "heads at peer", "held"]);
            for d in &r.differences {
                t.row(vec![
                    d.doc_id.clone(),
                    check_state(d.state).to_owned(),
                    short_heads(&d.heads_here),
                    short_heads(&d.heads_at_peer),
                    if d.held.is_empty() {
                        String::new()
                    } else {
                        short_heads(&d.held)
                    },
                ]);
            }
            t
        })?;
    }
    if !json {
        println!("{}", check_summary(&r));
    }
    if r.differing > 0 {
        return Err(Differences(r.differing).into());
    }
    Ok(())
}
