//! Writing the federation's records on a node's store the way the node's
//! application layer does (`tx.doc(..)`, a model function, `tx.commit()`),
//! and reading back what the simulation needs to choose its next write.
//!
//! Every write returns what it committed as [`Written`]: each document it
//! changed with its heads right after the commit. Those are the writes the
//! node acknowledged to its user, which replication must never lose.
//!
//! Changes are made by the actor `Author::actor_for(node, unit, b"sim")` at a
//! time the caller passes (the simulation's step), so that the change
//! hashes of a run depend only on its seed (the store's random incarnation
//! is not used).

use std::path::Path;

use automerge::{Automerge, ChangeHash};
use hopluu_model::campaign::{self, NewCampaign, Plan};
use hopluu_model::emulation::{self, NewInitiative};
use hopluu_model::member::{self, MemberInput, MemberStatus, NewMember};
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit};
use hopluu_model::{Author, CampaignId, Date, DocId, MemberId, ModelError, UnitId};
use hopluu_store::{Committed, Store, StoreError, StoreOptions, WriteTx};
use sqlx::Row;

/// The day every write is made on.
pub const TODAY: &str = "2025-09-01";

pub fn today() -> Date {
    date(TODAY)
}

pub fn date(s: &str) -> Date {
    s.parse()
        .unwrap_or_else(|()| panic!("bad date in a test: {s}"))
}

pub fn uid(s: &str) -> UnitId {
    UnitId::parse("unit_id", s).unwrap()
}

pub fn mid(s: &str) -> MemberId {
    MemberId::parse("member_id", s).unwrap()
}

pub fn cid(s: &str) -> CampaignId {
    CampaignId::parse("campaign_id", s).unwrap()
}

/// The author of a node's changes at `time_millis`.
pub fn author(node_id: &str, unit: &str, time_millis: i64) -> Author {
    Author {
        actor: Author::actor_for(node_id, &uid(unit), b"sim"),
        time_millis,
    }
}

/// Small roster buckets and early compaction, so that replication meets
/// bucketed rosters and documents stored as snapshot plus chunks.
pub fn options(cache_docs: usize) -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        cache_docs,
        bucket_size: 4,
        compact_min_bytes: 256,
        ..StoreOptions::default()
    }
}

/// A directory for the nodes' databases: tmpfs when there is one (a
/// commit is an fsync), else the usual temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("hopluu-sync-")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::Builder::new()
        .prefix("hopluu-sync-")
        .tempdir()
        .expect("a temporary directory")
}

/// The SQLite url of a node's database file in `dir`.
pub fn store_url(dir: &Path, node: &str) -> String {
    format!("sqlite:{}/{node}.sqlite", dir.display())
}

pub async fn open(url: &str, options: StoreOptions) -> Store {
    open_with_clock(url, options, std::sync::Arc::new(hopluu_model::SystemClock)).await
}

/// [`open`] with the store's clock chosen by the test.
pub async fn open_with_clock(
    url: &str,
    options: StoreOptions,
    clock: std::sync::Arc<dyn hopluu_model::Clock>,
) -> Store {
    Store::open(url, options, clock)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

/// What one commit changed: each document with its heads after the commit.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub docs: Vec<(DocId, Vec<ChangeHash>)>,
}

async fn written(store: &Store, c: &Committed) -> Result<Written, StoreError> {
    let mut docs = Vec::new();
    for (id, _) in &c.docs {
        let heads = store.doc_heads(id).await?.unwrap_or_default();
        docs.push((id.clone(), heads));
    }
    Ok(Written { docs })
}

pub async fn commit(store: &Store, tx: WriteTx<'_>) -> Result<Written, StoreError> {
    let c = tx.commit().await?;
    written(store, &c).await
}

pub fn new_unit(id: &str, name: &str, kind: &str, parent: Option<&str>) -> NewUnit {
    let decision = Decision::parse("01/QĐ-TLĐ", "2025-07-01", "2025-07-01", today()).unwrap();
    NewUnit::parse(
        &KindCatalogue::default(),
        Some(id),
        name,
        kind,
        parent,
        decision,
    )
    .unwrap()
}

/// Creates a unit's record (at the node holding authority over it: its
/// parent's node, or the national node for the root).
pub async fn create_unit(
    store: &Store,
    author: &Author,
    id: &str,
    name: &str,
    kind: &str,
    parent: Option<&str>,
) -> Result<Written, StoreError> {
    let new = new_unit(id, name, kind, parent);
    let mut tx = store.begin().await?;
    unit::create(tx.doc(&DocId::Unit(uid(id))).await?, author, &new)?;
    commit(store, tx).await
}

/// A decision of the national node moving `unit` under `to`, written as
/// `apply_decision` writes it, in one transaction: the unit record's new
/// parent, and the decision with its seal (this node's heads of every
/// document the unit's subtree owns, and of the unit's record, before the
/// move).
pub async fn decide_move(
    store: &Store,
    author: &Author,
    id: &hopluu_model::DecisionId,
    number: &str,
    unit: &str,
    to: &str,
) -> Result<Written, StoreError> {
    use hopluu_model::reorg::{self, Outcome, PlanInput, Recorded, Seal, StepInput};
    let decision = Decision::parse(number, TODAY, TODAY, today())?;
    let units = store.tree().subtree(&uid(unit));
    let mut owned = store.docs_heads_owned_by(&units).await?;
    // The moved unit's own record too, as `apply_decision` seals it.
    let record = DocId::Unit(uid(unit));
    if let Some(heads) = store.doc_heads(&record).await? {
        owned.push((record.to_string(), heads));
    }
    let rec = Recorded {
        plan: PlanInput {
            id: id.to_string(),
            number: number.to_owned(),
            title: "Sắp xếp công đoàn cơ sở".to_owned(),
            decided_on: TODAY.to_owned(),
            effective_on: TODAY.to_owned(),
            issuing_unit: "vn".to_owned(),
            steps: vec![StepInput {
                kind: "move".to_owned(),
                units: vec![unit.to_owned()],
                to: to.to_owned(),
                ..StepInput::default()
            }],
        },
        id: id.clone(),
        applied_at: member::utc_timestamp(author.time_millis),
        applied_by: "node-vn".to_owned(),
        outcome: Outcome {
            units_moved: 1,
            ..Outcome::default()
        },
        seals: owned
            .into_iter()
            .map(|(doc, heads)| Seal::of(doc, &heads))
            .collect(),
        given_up: Vec::new(),
    };
    let mut tx = store.begin().await?;
    unit::move_to(
        tx.doc(&DocId::Unit(uid(unit))).await?,
        author,
        &uid(to),
        &decision,
    )?;
    reorg::write(tx.doc(&DocId::Decision(id.clone())).await?, author, &rec)?;
    commit(store, tx).await
}

/// Writes node `node`'s record (hosting `unit`, placed under `path`,
/// dialling `upstream`) as the node does, in this store: nothing when it
/// says that already.
pub async fn publish_node(
    store: &Store,
    author: &Author,
    node: &str,
    unit: &str,
    path: &[&str],
    upstream: &str,
) -> Result<Written, StoreError> {
    use hopluu_model::hosting::{self, NodeInfo, NodeStatus};
    let info = NodeInfo {
        id: node.to_owned(),
        unit: uid(unit),
        path: path.iter().map(|u| uid(u)).collect(),
        upstream: upstream.to_owned(),
        address: format!("sim://{node}"),
        status: NodeStatus::Active,
        retired_at: String::new(),
    };
    let mut tx = store.begin().await?;
    let id = DocId::Node(hopluu_model::NodeId::parse("node", node)?);
    hosting::publish(tx.doc(&id).await?, author, &info)?;
    commit(store, tx).await
}

fn member_input(name: &str, card: &str, national_id: &str) -> MemberInput {
    MemberInput {
        full_name: name.to_owned(),
        birth_date: "1990-05-17".to_owned(),
        gender: "nữ".to_owned(),
        card_number: card.to_owned(),
        joined_on: "2012-03-01".to_owned(),
        position: "Công nhân".to_owned(),
        national_id: national_id.to_owned(),
        ethnicity: if national_id.is_empty() { "" } else { "Kinh" }.to_owned(),
        religion: String::new(),
    }
}

/// A member's CCCD in the fixtures, from its id (empty: no personal data).
fn national_id(id: &MemberId, private: bool) -> String {
    if private {
        format!(
            "0011900{:05}",
            hopluu_model::ids::stable_hash(id.as_str()) % 100_000
        )
    } else {
        String::new()
    }
}

/// Adds a member to a grassroots unit as the node does: the bucket from
/// the projection's counts, the public record, then (when `private`) the
/// private one. Returns the commit and the bucket.
pub async fn add_member(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    id: &MemberId,
    name: &str,
    card: &str,
    private: bool,
) -> Result<(Written, u32), StoreError> {
    let national_id = national_id(id, private);
    let new = NewMember::parse(&member_input(name, card, &national_id), today())?;
    let mut tx = store.begin().await?;
    let mut counts = tx.bucket_counts(unit).await?;
    let (_, bucket) = tx
        .add_new_member(author, unit, id, &new, &mut counts)
        .await?;
    Ok((commit(store, tx).await?, bucket))
}

/// Adds several members to one grassroots unit in one commit, as the
/// node's roster import does: the buckets fill as the members are placed,
/// so one commit may write several roster documents.
pub async fn import_members(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    members: &[(MemberId, &str, String)],
    private: bool,
) -> Result<Written, StoreError> {
    let mut tx = store.begin().await?;
    let mut counts = tx.bucket_counts(unit).await?;
    for (id, name, card) in members {
        let national_id = national_id(id, private);
        let new = NewMember::parse(&member_input(name, card, &national_id), today())?;
        tx.add_new_member(author, unit, id, &new, &mut counts)
            .await?;
    }
    commit(store, tx).await
}

/// Changes a member's position in their roster.
pub async fn edit_member(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    id: &MemberId,
    position: &str,
) -> Result<Written, StoreError> {
    let upd = member::MemberUpdate {
        position: Some(position.to_owned()),
        ..Default::default()
    };
    let mut tx = store.begin().await?;
    member::update(
        tx.doc(&member::roster_doc(unit, bucket)).await?,
        author,
        id,
        &upd,
        today(),
    )?;
    commit(store, tx).await
}

/// Ends an active membership (the member left the union).
pub async fn end_member(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    id: &MemberId,
) -> Result<Written, StoreError> {
    let mut tx = store.begin().await?;
    member::end(
        tx.doc(&member::roster_doc(unit, bucket)).await?,
        author,
        id,
        MemberStatus::Left,
        "nghỉ việc",
        today(),
        None,
    )?;
    commit(store, tx).await
}

/// Transfers an active member between two grassroots units in one commit
/// (two roster documents), as the node does.
pub async fn transfer_member(
    store: &Store,
    author: &Author,
    id: &MemberId,
    from: (&UnitId, u32),
    to: &UnitId,
) -> Result<Written, StoreError> {
    let mut tx = store.begin().await?;
    let left = member::end(
        tx.doc(&member::roster_doc(from.0, from.1)).await?,
        author,
        id,
        MemberStatus::Transferred,
        "chuyển công tác",
        today(),
        Some(to),
    )?;
    let earlier = tx.member_locations(id).await?;
    let bucket = match earlier.iter().find(|l| l.unit == *to) {
        Some(l) => l.bucket,
        None => {
            let counts = tx.bucket_counts(to).await?;
            member::choose_bucket(id, store.options().bucket_size, |b| {
                counts.get(&b).copied().unwrap_or(0)
            })
        }
    };
    member::transfer_in(
        tx.doc(&member::roster_doc(to, bucket)).await?,
        author,
        to,
        bucket,
        &left,
        "chuyển đến",
        today(),
    )?;
    commit(store, tx).await
}

/// Launches campaign `id` of `launching` over `scope`.
pub async fn launch_campaign(
    store: &Store,
    author: &Author,
    id: &str,
    launching: &UnitId,
    scope: &UnitId,
) -> Result<Written, StoreError> {
    let new = NewCampaign::parse(
        Some(id),
        launching.as_str(),
        "Lao động giỏi, lao động sáng tạo",
        "Phong trào thi đua năm 2025",
        "2025-01-01",
        "2025-12-31",
        scope.as_str(),
    )?;
    let mut tx = store.begin().await?;
    campaign::create(
        tx.doc(&DocId::Campaign(new.id.clone())).await?,
        author,
        &new,
    )?;
    commit(store, tx).await
}

/// Sets a unit's initiative quota in a campaign.
pub async fn set_plan(
    store: &Store,
    author: &Author,
    campaign: &CampaignId,
    unit: &UnitId,
    initiatives: u32,
) -> Result<Written, StoreError> {
    let plans = [(
        unit.clone(),
        Plan {
            initiative_quota: initiatives,
            works_quota: 1,
        },
    )];
    let mut tx = store.begin().await?;
    let doc = tx.doc(&DocId::Campaign(campaign.clone())).await?;
    require_stored(doc, &DocId::Campaign(campaign.clone()))?;
    campaign::set_plans(doc, author, &plans)?;
    commit(store, tx).await
}

/// Registers a unit in a campaign, with a pledge.
pub async fn register(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    campaign: &CampaignId,
    pledge: &str,
) -> Result<Written, StoreError> {
    let mut tx = store.begin().await?;
    emulation::register(
        tx.doc(&emulation::doc_id(unit, campaign)).await?,
        author,
        unit,
        campaign,
        today(),
        pledge,
    )?;
    commit(store, tx).await
}

/// Records an initiative of a unit in a campaign.
pub async fn record_initiative(
    store: &Store,
    author: &Author,
    unit: &UnitId,
    campaign: &CampaignId,
    title: &str,
) -> Result<Written, StoreError> {
    let new = NewInitiative::parse(
        title,
        &["Nguyễn Văn An".to_owned()],
        5_000_000,
        "2025-03-10",
        today(),
    )?;
    let mut tx = store.begin().await?;
    emulation::record_initiative(
        tx.doc(&emulation::doc_id(unit, campaign)).await?,
        author,
        unit,
        campaign,
        &new,
    )?;
    commit(store, tx).await
}

fn require_stored(doc: &Automerge, id: &DocId) -> Result<(), ModelError> {
    if doc.get_heads().is_empty() {
        return Err(ModelError::not_found("document", id));
    }
    Ok(())
}

// ------------------------------------------------------------------ reads

/// A member record as the `members` projection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub member: MemberId,
    pub unit: UnitId,
    pub bucket: u32,
    pub active: bool,
}

/// Every member record the node holds, by unit then member.
pub async fn members(store: &Store) -> Result<Vec<MemberRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT member_id, unit_id, bucket, status FROM members ORDER BY unit_id, member_id",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| MemberRow {
            member: mid(&r.get::<String, _>(0)),
            unit: uid(&r.get::<String, _>(1)),
            bucket: r.get::<i64, _>(2) as u32,
            active: r.get::<String, _>(3) == "active",
        })
        .collect())
}

/// A campaign as the `campaigns` projection lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    pub id: CampaignId,
    pub launching: UnitId,
    pub scope: UnitId,
}

/// Every campaign the node holds, by id.
pub async fn campaigns(store: &Store) -> Result<Vec<CampaignRow>, StoreError> {
    let rows = sqlx::query("SELECT id, launching_unit, scope_unit FROM campaigns ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| CampaignRow {
            id: cid(&r.get::<String, _>(0)),
            launching: uid(&r.get::<String, _>(1)),
            scope: uid(&r.get::<String, _>(2)),
        })
        .collect())
}

/// Projection rows of the node, each under the document it derives from
/// (`roster-private/{unit}` for private rows, which carry no document),
/// as `doc -> rows`, every row one string of all its columns.
pub async fn projection_rows(
    store: &Store,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, StoreError> {
    const QUERIES: &[&str] = &[
        "SELECT d.doc_id, 'member|' || m.member_id || '|' || m.unit_id || '|' || m.bucket || '|' \
         || m.full_name || '|' || m.name_key || '|' || m.birth_date || '|' || m.gender || '|' \
         || m.card_number || '|' || m.joined_on || '|' || m.position || '|' || m.status || '|' \
         || m.status_reason || '|' || m.status_on \
         FROM members m JOIN docs d ON d.id = m.doc",
        "SELECT d.doc_id, 'unit|' || u.id || '|' || u.name || '|' || u.kind || '|' \
         || COALESCE(u.parent, '') || '|' || u.status || '|' || u.successors || '|' \
         || u.closed_on || '|' || u.close_reason \
         FROM units u JOIN docs d ON d.id = u.doc",
        "SELECT d.doc_id, 'campaign|' || c.id || '|' || c.launching_unit || '|' || c.title \
         || '|' || c.starts_on || '|' || c.ends_on || '|' || c.scope_unit || '|' || c.status \
         FROM campaigns c JOIN docs d ON d.id = c.doc",
        "SELECT 'campaign/' || p.campaign, 'plan|' || p.unit_id || '|' || p.initiative_quota \
         || '|' || p.works_quota FROM campaign_plans p",
        "SELECT d.doc_id, 'registration|' || r.unit_id || '|' || r.campaign || '|' \
         || r.registered || '|' || r.registered_on || '|' || r.pledge \
         FROM registrations r JOIN docs d ON d.id = r.doc",
        "SELECT d.doc_id, 'initiative|' || i.id || '|' || i.unit_id || '|' || i.campaign \
         || '|' || i.title || '|' || i.authors || '|' || i.status || '|' || i.value_vnd \
         FROM initiatives i JOIN docs d ON d.id = i.doc",
        "SELECT 'roster-private/' || p.unit_id, 'private|' || p.member_id || '|' \
         || p.national_id || '|' || p.ethnicity || '|' || p.religion FROM member_private p",
    ];
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for q in QUERIES {
        for r in sqlx::query(*q).fetch_all(store.pool()).await? {
            out.entry(r.get::<String, _>(0))
                .or_default()
                .push(r.get::<String, _>(1));
        }
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    Ok(out)
}

/// The heads of `id` as `doc` holds them, and whether every hash of
/// `heads` is in it.
pub fn contains_all(doc: &Automerge, heads: &[ChangeHash]) -> bool {
    heads.iter().all(|h| hopluu_model::am::knows(doc, h))
}

/// Members of a roster document as the document itself says, in the
/// projection's row format (without `name_key`).
pub fn roster_summary(doc: &Automerge) -> Result<Vec<String>, ModelError> {
    let mut v: Vec<String> = member::read_many(doc, None)?
        .into_iter()
        .map(|m| {
            format!(
                "{}|{}|{}|{}|{}|{}",
                m.id,
                m.unit,
                m.full_name,
                m.position,
                m.status.as_str(),
                m.card_number
            )
        })
        .collect();
    v.sort();
    Ok(v)
}

/// The same summary from the projection rows of one roster document.
pub fn projected_summary(rows: &[String]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .filter_map(|r| r.strip_prefix("member|"))
        .map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            // member|id|unit|bucket|full_name|name_key|birth|gender|card|joined|position|status|…
            format!("{}|{}|{}|{}|{}|{}", f[0], f[1], f[3], f[9], f[10], f[7])
        })
        .collect();
    v.sort();
    v
}
