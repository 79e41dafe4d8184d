//! The attacks' tree of real nodes, what the tests observe of a node
//! before and after an attack, and the forging of changes and updates.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::pki::Caller;
use hopluu_model::{Author, DocId, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_tests::rogue::{self, Rogue};
use sqlx::{AssertSqlSafe, Row};
use tonic::transport::Channel;

use crate::check::{self, View};

pub(super) const VN: &str = "vn";
pub(super) const HG: &str = "hau-giang";
pub(super) const LC: &str = "lai-chau";
pub(super) const CT: &str = "hg-chau-thanh";
pub(super) const VT: &str = "hg-vi-thanh";
pub(super) const CAMPAIGN: &str = "hg-2026";
/// How long anything may take to propagate or be answered.
pub(super) const LIMIT: Duration = Duration::from_secs(90);
/// How long a peer may leave frames unread before the nodes drop it.
pub(super) const STALL_SECS: u64 = 10;

// The rogue's hellos claim the protocol real nodes speak.
const _: () = assert!(rogue::PROTOCOL == hopluu_sync::PROTOCOL_VERSION);

pub(super) fn grassroots(district: &str) -> String {
    format!("{district}-g1")
}

pub(super) fn roster(unit: &str) -> String {
    format!("roster/{unit}")
}

pub(super) fn private_roster(unit: &str) -> String {
    format!("roster-private/{unit}")
}

pub(super) fn campaign_doc() -> String {
    format!("campaign/{CAMPAIGN}")
}

// ------------------------------------------------------------------ the tree

/// The tree of the module doc, running.
pub(super) struct Tree {
    pub(super) fed: Federation,
    pub(super) _dir: tempfile::TempDir,
}

impl Tree {
    /// `vn` and `hau-giang`, the unit records, one member in each
    /// grassroots union (added by the province) and a campaign of the
    /// province; then a node for each of `districts`. The districts that
    /// get no node are allowed at `hau-giang` all the same, for rogues.
    pub(super) async fn start(districts: &[&str]) -> Result<Tree> {
        check::init_tracing();
        let dir = tempfile::tempdir()?;
        // A peer that never reads is dropped after 10 s here (60 s by
        // default), so the slowloris test does not wait a minute.
        let mut fed = Federation::new(dir.path()).with_tuning(|c| {
            c.replication.stall_timeout_secs = STALL_SECS;
        });
        fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
            .await?;
        for p in [HG, LC] {
            fed.node(VN)
                .create_unit(p, &format!("LĐLĐ tỉnh {p}"), "provincial", VN)
                .await?;
        }
        fed.add(NodeSpec::child(HG, HG, &[VN])).await?;
        Federation::until("hau-giang knows its unit", LIMIT, || async {
            Ok(fed.node(HG).knows_unit(HG))
        })
        .await?;
        let hg = fed.node(HG);
        for d in [CT, VT] {
            hg.create_unit(d, &format!("Công đoàn {d}"), "district", HG)
                .await?;
            let g = grassroots(d);
            hg.create_unit(&g, &format!("CĐCS {g}"), "grassroots", d)
                .await?;
            add_member(hg, &g, &format!("Trần Văn {d}"), &format!("{d}-0001"), None).await?;
        }
        hg.campaigns()
            .launch_campaign(pb::LaunchCampaignRequest {
                id: Some(CAMPAIGN.to_owned()),
                launching_unit_id: HG.to_owned(),
                title: "Thi đua lao động giỏi".to_owned(),
                theme: "Lao động giỏi, lao động sáng tạo".to_owned(),
                starts_on: "2026-01-01".to_owned(),
                ends_on: "2026-12-31".to_owned(),
                scope_unit_id: HG.to_owned(),
            })
            .await?;
        for d in [CT, VT] {
            if districts.contains(&d) {
                fed.add(NodeSpec::child(d, d, &[HG])).await?;
                let g = grassroots(d);
                Federation::until(&format!("{d} knows {g}"), LIMIT, || async {
                    Ok(fed.node(d).knows_unit(&g))
                })
                .await?;
            } else {
                fed.allow_child(HG, d, d)?;
            }
        }
        // Every node's own record has reached every node (a node whose
        // unit came from upstream publishes it once the unit is there):
        // what the attacks compare before and after is then settled.
        let ids: Vec<String> = fed.nodes().map(|n| n.id.clone()).collect();
        Federation::until("every node holds every node's record", LIMIT, || async {
            for n in fed.nodes() {
                let known = n.app.store().nodes().await?;
                if !ids.iter().all(|id| known.iter().any(|k| k.id == *id)) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
        let tree = Tree { fed, _dir: dir };
        tree.converged().await?;
        Ok(tree)
    }

    pub(super) fn node(&self, id: &str) -> &LocalNode {
        self.fed.node(id)
    }

    /// Every running node holds what it should, at the same heads.
    pub(super) async fn converged(&self) -> Result<()> {
        let mut views = vec![View::of(self.node(VN))];
        views.extend(self.fed.nodes().filter(|n| n.id != VN).map(View::of));
        check::wait_converged(&views, LIMIT).await.map(drop)
    }

    /// A channel to node `at` with node `node`'s certificate (hosting the
    /// unit of the same id).
    pub(super) async fn channel_as_node(&self, at: &str, node: &str) -> Result<Channel> {
        self.fed.channel_as(at, &Caller::node(node, node)).await
    }

    /// A session at `at` as node `node`, past the hellos.
    pub(super) async fn rogue(&self, at: &str, node: &str) -> Result<Rogue> {
        let channel = self.channel_as_node(at, node).await?;
        Ok(Rogue::connect(channel, node, node).await?.0)
    }

    /// The link from `hau-giang` to `vn` cut, and `vn` no longer in a
    /// session with it: the province's identity is free for a rogue.
    pub(super) async fn cut_province(&self) -> Result<()> {
        self.fed.link(HG, VN).cut();
        Federation::until("vn's session with hau-giang ends", LIMIT, || async {
            Ok(!edge(self.node(VN), HG).is_some_and(|e| e.connected))
        })
        .await
    }

    pub(super) async fn shutdown(self) -> Result<()> {
        self.fed.shutdown().await
    }
}

pub(super) async fn add_member(
    n: &LocalNode,
    unit: &str,
    name: &str,
    card: &str,
    national_id: Option<&str>,
) -> Result<pb::Member> {
    let mut m = check::person(name, card, national_id);
    if national_id.is_some() {
        m.religion = "Phật giáo".to_owned();
    }
    n.members()
        .add_member(pb::AddMemberRequest {
            unit_id: unit.to_owned(),
            member: Some(m),
        })
        .await
        .map(tonic::Response::into_inner)
        .with_context(|| format!("adding {card} to {unit} at {}", n.id))
}

// --------------------------------------------------------------- observing

/// Everything a node has written: its feed position, every document's
/// heads and the projection rows (each led by its document's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) feed: i64,
    pub(super) docs: BTreeMap<String, Vec<ChangeHash>>,
    pub(super) rows: Vec<String>,
}

pub(super) const ROWS: &[&str] = &[
    "SELECT d.doc_id, u.id, u.name, u.kind, u.status FROM units u JOIN docs d ON d.id = u.doc",
    "SELECT d.doc_id, m.member_id, m.unit_id, m.full_name, m.card_number, m.status \
     FROM members m JOIN docs d ON d.id = m.doc",
    "SELECT 'roster-private/' || p.unit_id, p.member_id, p.national_id, p.ethnicity, p.religion \
     FROM member_private p",
    "SELECT d.doc_id, c.id, c.title, c.status, c.scope_unit FROM campaigns c \
     JOIN docs d ON d.id = c.doc",
    "SELECT d.doc_id, a.id, a.issuing_unit, a.decision_no FROM awards a \
     JOIN docs d ON d.id = a.doc",
];

impl Snapshot {
    pub(super) async fn of(n: &LocalNode) -> Result<Snapshot> {
        let store = n.app.store();
        let mut docs = BTreeMap::new();
        for id in store.doc_ids().await? {
            let heads = store.doc_heads(&id).await?.unwrap_or_default();
            docs.insert(id.to_string(), heads);
        }
        let mut rows = Vec::new();
        for sql in ROWS {
            for r in sqlx::query(AssertSqlSafe(*sql))
                .fetch_all(store.pool())
                .await?
            {
                let cols: Vec<String> = (0..r.len()).map(|i| r.get::<String, _>(i)).collect();
                rows.push(cols.join(" | "));
            }
        }
        rows.sort();
        Ok(Snapshot {
            feed: store.feed_position().await?,
            docs,
            rows,
        })
    }

    /// The snapshot without document `doc` (what a test let change).
    pub(super) fn without(&self, doc: &str) -> Snapshot {
        let mut s = self.clone();
        s.docs.remove(doc);
        s.rows.retain(|r| !r.starts_with(&format!("{doc} |")));
        s.feed = 0;
        s
    }
}

/// Fails unless `n` wrote nothing since `before`.
pub(super) async fn unchanged(n: &LocalNode, before: &Snapshot) -> Result<()> {
    let now = Snapshot::of(n).await?;
    ensure!(
        now == *before,
        "{} wrote something: {}",
        n.id,
        difference(before, &now)
    );
    Ok(())
}

/// What differs between two snapshots, briefly.
pub(super) fn difference(a: &Snapshot, b: &Snapshot) -> String {
    let mut out = Vec::new();
    if a.feed != b.feed {
        out.push(format!("feed {} -> {}", a.feed, b.feed));
    }
    for (doc, heads) in &b.docs {
        match a.docs.get(doc) {
            None => out.push(format!("new document {doc}")),
            Some(h) if h != heads => out.push(format!("{doc}: heads moved")),
            Some(_) => {}
        }
    }
    for doc in a.docs.keys().filter(|d| !b.docs.contains_key(*d)) {
        out.push(format!("{doc} gone"));
    }
    for r in b.rows.iter().filter(|r| !a.rows.contains(r)) {
        out.push(format!("new row {r}"));
    }
    for r in a.rows.iter().filter(|r| !b.rows.contains(r)) {
        out.push(format!("row gone {r}"));
    }
    out.join("; ")
}

pub(super) async fn heads(n: &LocalNode, doc: &str) -> Result<Option<Vec<ChangeHash>>> {
    Ok(n.app.store().doc_heads(&DocId::parse("doc", doc)?).await?)
}

/// The node answers clients: its info, and its own unit record.
pub(super) async fn serving(n: &LocalNode) -> Result<()> {
    let info = pb::node_service_client::NodeServiceClient::new(n.channel.clone())
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .with_context(|| format!("{} answers GetNodeInfo", n.id))?
        .into_inner();
    ensure!(info.node_id == n.id, "{info:?}");
    n.units()
        .get_unit(pb::GetUnitRequest {
            unit_id: n.unit.clone(),
        })
        .await
        .with_context(|| format!("{} answers GetUnit", n.id))?;
    Ok(())
}

/// A member added at `writer` to grassroots union `unit` reaches every
/// node in `readers` (honest peers still sync).
pub(super) async fn write_flows(
    tree: &Tree,
    writer: &str,
    unit: &str,
    readers: &[&str],
    card: &str,
) -> Result<()> {
    add_member(tree.node(writer), unit, "Lê Thị Hoa", card, None).await?;
    let doc = roster(unit);
    let want = heads(tree.node(writer), &doc).await?;
    for r in readers {
        Federation::until(
            &format!("{doc} reaches {r} from {writer}"),
            LIMIT,
            || async { Ok(heads(tree.node(r), &doc).await? == want) },
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn quarantine(n: &LocalNode) -> Result<Vec<pb::QuarantineEntry>> {
    Ok(
        pb::admin_service_client::AdminServiceClient::new(n.channel.clone())
            .list_quarantine(pb::ListQuarantineRequest::default())
            .await
            .with_context(|| format!("listing {}'s quarantine", n.id))?
            .into_inner()
            .entries,
    )
}

pub(super) fn edge(n: &LocalNode, peer: &str) -> Option<hopluu_node::edge::EdgeStatus> {
    n.replication.edges().into_iter().find(|e| e.peer == peer)
}

// ------------------------------------------------------------------ forging

/// The actor of node `node` hosting the unit of the same id.
pub(super) fn actor(node: &str) -> Result<ActorId> {
    Ok(Author::actor_for(
        node,
        &UnitId::parse("unit", node)?,
        b"rogue",
    ))
}

pub(super) fn hash_bytes(hashes: &[ChangeHash]) -> Vec<Vec<u8>> {
    hashes.iter().map(|h| h.0.to_vec()).collect()
}

/// A change to `doc` as node `n` stores it, made under `by` (the root's
/// `note` set to `value`): the update carrying it, and its hash.
pub(super) async fn edit(
    n: &LocalNode,
    doc: &str,
    by: ActorId,
    value: &str,
) -> Result<(pb::DocUpdate, ChangeHash)> {
    let bytes = n
        .app
        .store()
        .doc_bytes(&DocId::parse("doc", doc)?)
        .await?
        .with_context(|| format!("{} holds no {doc}", n.id))?;
    let mut d = Automerge::load(&bytes)?;
    let before = d.get_heads();
    d.set_actor(by);
    // A field the document holds: in a roster (whose shape every node
    // checks), its first member's position; elsewhere a note on the root.
    let member = match d.get(automerge::ROOT, "members")? {
        Some((_, members)) if doc.starts_with("roster/") => {
            let first = d.keys(&members).next().context("a roster with a member")?;
            Some(d.get(&members, first.as_str())?.context("the member")?.1)
        }
        _ => None,
    };
    let mut tx = d.transaction();
    match &member {
        Some(m) => tx.put(m, "position", value)?,
        None => tx.put(automerge::ROOT, "note", value)?,
    }
    tx.commit();
    let heads = d.get_heads();
    let update = rogue::changes(doc, hash_bytes(&heads), d.save_after(&before));
    Ok((update, heads[0]))
}

/// A new document `doc` claiming `owner`, made under `by`.
pub(super) fn forge(doc: &str, owner: &str, by: ActorId) -> Result<(pb::DocUpdate, ChangeHash)> {
    let mut d = Automerge::new();
    d.set_actor(by);
    let mut tx = d.transaction();
    tx.put(automerge::ROOT, "v", hopluu_model::doc::SCHEMA_VERSION)?;
    tx.put(automerge::ROOT, "owner", owner)?;
    tx.put_object(automerge::ROOT, "addressed", automerge::ObjType::List)?;
    tx.commit();
    let heads = d.get_heads();
    Ok((rogue::changes(doc, hash_bytes(&heads), d.save()), heads[0]))
}

/// The acknowledgement's entry for `doc` (acknowledgements list the
/// batch's documents in no promised order).
pub(super) fn acked<'a>(ack: &'a pb::Ack, doc: &str) -> Result<&'a pb::DocHeads> {
    ack.docs
        .iter()
        .find(|d| d.doc_id == doc)
        .with_context(|| format!("no entry for {doc} in {ack:?}"))
}

pub(super) fn payload_of(u: &pb::DocUpdate) -> Vec<u8> {
    match &u.payload {
        Some(pb::doc_update::Payload::Changes(c) | pb::doc_update::Payload::Sync(c)) => c.clone(),
        None => Vec::new(),
    }
}
