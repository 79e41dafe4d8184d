//! The checks every end-to-end test ends with, and what they check against.
//!
//! - [`converged`] / [`wait_converged`]: every node that should hold a
//!   document (by the scope rule, decided on the national node's tree) holds
//!   it, with identical heads everywhere (`Store::doc_heads`); no node holds
//!   a document outside its scope; and every projection row derived from a
//!   document (units, members, private data, campaigns and plans,
//!   registrations, initiatives, works, proposals, awards and recipients) is
//!   identical on every node that holds the document.
//! - [`Ledger`]: the writes a client saw acknowledged (gRPC `Ok`), with the
//!   ids the node answered; [`missing`] / [`wait_all_present`] check that
//!   each of them is present at a node (zero lost).
//!
//! A node is seen through a [`View`]: its name, hosted unit and a store,
//! either the in-process node's own or one opened on the database of a
//! node running in another process.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use automerge::ChangeHash;
use hopluu_devcluster::federation::{Federation, LocalNode};
use hopluu_model::{DocId, DocMeta, UnitId, UnitTree};
use hopluu_proto::v1 as pb;
use hopluu_store::quarantine::{QuarantineFilter, QuarantineState};
use hopluu_store::{Store, StoreOptions};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::{AssertSqlSafe, Row};

/// The configured depth at and below which private rosters are held
/// (`[replication] private_depth`, default 1: provinces and below).
pub const PRIVATE_DEPTH: usize = 1;

/// A node as the checks see it.
#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub unit: UnitId,
    pub store: Store,
}

impl View {
    /// An in-process node.
    pub fn of(n: &LocalNode) -> View {
        View {
            name: n.id.clone(),
            unit: n.app.unit.clone(),
            store: n.app.store().clone(),
        }
    }

    /// A store of our own on the database of a node that runs in another
    /// process (SQLite in WAL mode takes readers from other processes).
    pub async fn open(name: &str, unit: &str, url: &str) -> Result<View> {
        let store = Store::open(
            url,
            StoreOptions::default(),
            Arc::new(hopluu_model::SystemClock),
        )
        .await
        .with_context(|| format!("opening the database of node {name} at {url}"))?;
        Ok(View {
            name: name.to_owned(),
            unit: UnitId::parse("unit", unit)?,
            store,
        })
    }
}

/// One stored document: what scope is decided on, and its heads.
#[derive(Debug, Clone)]
struct Held {
    meta: DocMeta,
    heads: Vec<ChangeHash>,
}

/// What one node holds: documents by id, and the projection rows derived
/// from each document (`table: columns`, sorted).
#[derive(Debug, Default)]
struct NodeState {
    docs: BTreeMap<String, Held>,
    rows: BTreeMap<String, Vec<String>>,
}

/// Projection rows, each with the id of the document it is derived from.
/// Every column is read as text (numbers cast), so SQLite and PostgreSQL
/// rows compare equal; local row ids (`doc`) are left out.
const PROJECTIONS: &[(&str, &str)] = &[
    (
        "units",
        "SELECT d.doc_id, u.id, u.name, u.kind, COALESCE(u.parent, ''), u.status, u.successors, \
         u.closed_on, u.close_reason FROM units u JOIN docs d ON d.id = u.doc",
    ),
    (
        "members",
        "SELECT d.doc_id, m.member_id, m.unit_id, CAST(m.bucket AS TEXT), m.full_name, \
         m.name_key, m.birth_date, m.gender, m.card_number, m.joined_on, m.position, m.status, \
         m.status_reason, m.status_on FROM members m JOIN docs d ON d.id = m.doc",
    ),
    (
        "member_private",
        "SELECT COALESCE(CASE WHEN m.bucket = 0 THEN 'roster-private/' || p.unit_id \
         ELSE 'roster-private/' || p.unit_id || '/' || CAST(m.bucket AS TEXT) END, \
         'roster-private/' || p.unit_id || '/?'), \
         p.member_id, p.unit_id, p.national_id, p.ethnicity, p.religion \
         FROM member_private p LEFT JOIN members m \
         ON m.member_id = p.member_id AND m.unit_id = p.unit_id",
    ),
    (
        "campaigns",
        "SELECT d.doc_id, c.id, c.launching_unit, c.title, c.theme, c.starts_on, c.ends_on, \
         c.scope_unit, c.status FROM campaigns c JOIN docs d ON d.id = c.doc",
    ),
    (
        "campaign_plans",
        "SELECT 'campaign/' || campaign, campaign, unit_id, CAST(initiative_quota AS TEXT), \
         CAST(works_quota AS TEXT) FROM campaign_plans",
    ),
    (
        "registrations",
        "SELECT d.doc_id, r.unit_id, r.campaign, CAST(r.registered AS TEXT), r.registered_on, \
         r.pledge FROM registrations r JOIN docs d ON d.id = r.doc",
    ),
    (
        "initiatives",
        "SELECT d.doc_id, i.id, i.unit_id, i.campaign, i.title, i.authors, i.status, \
         i.recognised_level, CAST(i.value_vnd AS TEXT), i.submitted_on \
         FROM initiatives i JOIN docs d ON d.id = i.doc",
    ),
    (
        "works",
        "SELECT d.doc_id, w.id, w.unit_id, w.campaign, w.name, CAST(w.value_vnd AS TEXT), \
         CAST(w.plaque AS TEXT), w.completed_on FROM works w JOIN docs d ON d.id = w.doc",
    ),
    (
        "proposals",
        "SELECT d.doc_id, p.id, p.proposing_unit, p.addressed_unit, p.award_type, p.campaign, \
         p.reason, p.proposed_on, p.status, p.award_id FROM proposals p JOIN docs d ON d.id = p.doc",
    ),
    (
        "awards",
        "SELECT d.doc_id, a.id, a.issuing_unit, a.decision_no, a.decided_on, a.effective_on, \
         CAST(a.year AS TEXT), a.award_type, a.level, a.campaign, a.proposal, a.reason, \
         CAST(a.revoked AS TEXT), a.revoked_on, a.revoke_reason FROM awards a JOIN docs d ON d.id = a.doc",
    ),
    (
        "award_recipients",
        "SELECT 'award/' || award, award, CAST(n AS TEXT), member_id, unit_id FROM award_recipients",
    ),
];

async fn state(view: &View) -> Result<NodeState> {
    let pool = view.store.pool();
    let mut out = NodeState::default();
    let rows = sqlx::query("SELECT doc_id, owner, addressed FROM docs")
        .fetch_all(pool)
        .await?;
    for r in rows {
        let id = DocId::parse("doc_id", &r.get::<String, _>(0))?;
        let owner = UnitId::parse("owner", &r.get::<String, _>(1))?;
        let addressed = r
            .get::<String, _>(2)
            .split_whitespace()
            .map(|u| UnitId::parse("addressed", u))
            .collect::<Result<Vec<_>, _>>()?;
        let heads = view
            .store
            .doc_heads(&id)
            .await?
            .ok_or_else(|| anyhow!("{}: {id} listed but has no heads", view.name))?;
        out.docs.insert(
            id.to_string(),
            Held {
                meta: DocMeta {
                    id,
                    owner,
                    addressed,
                },
                heads,
            },
        );
    }
    for (table, sql) in PROJECTIONS {
        for r in sqlx::query(AssertSqlSafe(*sql)).fetch_all(pool).await? {
            let doc: String = r.get(0);
            let cols: Vec<String> = (1..r.len()).map(|i| r.get::<String, _>(i)).collect();
            out.rows
                .entry(doc)
                .or_default()
                .push(format!("{table}: {}", cols.join(" | ")));
        }
    }
    for rows in out.rows.values_mut() {
        rows.sort();
    }
    Ok(out)
}

/// What [`converged`] found: the number of documents checked, or the
/// problems.
#[derive(Debug, Default)]
pub struct Findings {
    pub docs: usize,
    pub holdings: usize,
    pub problems: Vec<String>,
}

impl Findings {
    fn report(&self) -> String {
        let mut s = String::new();
        for p in self.problems.iter().take(25) {
            let _ = writeln!(s, "  - {p}");
        }
        if self.problems.len() > 25 {
            let _ = writeln!(s, "  … and {} more", self.problems.len() - 25);
        }
        s
    }
}

/// Compares the nodes once. `views[0]` is the federation's root: its tree
/// decides scope (it holds every unit record).
pub async fn converged(views: &[View]) -> Result<Findings> {
    let tree: UnitTree = (*views[0].store.tree()).clone();
    let mut states = Vec::with_capacity(views.len());
    for v in views {
        states.push(
            state(v)
                .await
                .with_context(|| format!("reading {}", v.name))?,
        );
    }
    let mut f = Findings::default();
    let all: BTreeSet<&String> = states.iter().flat_map(|s| s.docs.keys()).collect();
    f.docs = all.len();
    for doc in all {
        let meta = &states
            .iter()
            .find_map(|s| s.docs.get(doc))
            .expect("listed")
            .meta;
        let mut reference: Option<(&str, &Held, Option<&Vec<String>>)> = None;
        for (v, s) in views.iter().zip(&states) {
            let should = tree.in_scope(&v.unit, meta, PRIVATE_DEPTH);
            let held = s.docs.get(doc);
            match (should, held) {
                (false, Some(_)) => f.problems.push(format!(
                    "{} holds {doc} (owner {}, addressed {:?}), which is outside its scope",
                    v.name, meta.owner, meta.addressed
                )),
                (true, None) => f.problems.push(format!("{} lacks {doc}", v.name)),
                (_, None) => {}
                (true, Some(h)) => {
                    f.holdings += 1;
                    let rows = s.rows.get(doc);
                    match &reference {
                        None => reference = Some((&v.name, h, rows)),
                        Some((first, r, rrows)) => {
                            if r.heads != h.heads {
                                f.problems.push(format!(
                                    "{doc}: heads differ between {first} {:?} and {} {:?}",
                                    short(&r.heads),
                                    v.name,
                                    short(&h.heads)
                                ));
                            } else if *rrows != rows {
                                f.problems.push(format!(
                                    "{doc}: same heads, different projection rows at {first} and {}:\n{}",
                                    v.name,
                                    row_diff(rrows.map(Vec::as_slice), rows.map(Vec::as_slice))
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    // Projection rows of a document the node does not hold.
    for (v, s) in views.iter().zip(&states) {
        for (doc, rows) in &s.rows {
            if !s.docs.contains_key(doc) {
                f.problems.push(format!(
                    "{}: {} projection rows of {doc}, which it does not hold (first: {})",
                    v.name,
                    rows.len(),
                    rows[0]
                ));
            }
        }
    }
    Ok(f)
}

fn short(heads: &[ChangeHash]) -> Vec<String> {
    heads
        .iter()
        .map(|h| h.to_string()[..12].to_owned())
        .collect()
}

fn row_diff(a: Option<&[String]>, b: Option<&[String]>) -> String {
    let a: BTreeSet<&String> = a.unwrap_or_default().iter().collect();
    let b: BTreeSet<&String> = b.unwrap_or_default().iter().collect();
    let mut s = String::new();
    for r in a.difference(&b).take(5) {
        let _ = writeln!(s, "      only at the first: {r}");
    }
    for r in b.difference(&a).take(5) {
        let _ = writeln!(s, "      only at the second: {r}");
    }
    s
}

/// Polls [`converged`] until it finds no problem, for at most `limit`;
/// the error lists what the last attempt found.
pub async fn wait_converged(views: &[View], limit: Duration) -> Result<Findings> {
    let last = Arc::new(Mutex::new(String::from("never compared")));
    let done = Arc::new(Mutex::new(None));
    let r = Federation::until("the federation converges", limit, || {
        let (last, done) = (last.clone(), done.clone());
        async move {
            let f = converged(views).await?;
            if f.problems.is_empty() {
                *done.lock().expect("lock") = Some(f);
                return Ok(true);
            }
            *last.lock().expect("lock") = f.report();
            Ok(false)
        }
    })
    .await;
    match r {
        Ok(()) => Ok(done.lock().expect("lock").take().expect("set on success")),
        Err(e) => {
            let held = quarantine_report(views).await;
            Err(e.context(format!(
                "at the last comparison:\n{}{held}",
                last.lock().expect("lock")
            )))
        }
    }
}

/// Every change any node still holds in quarantine, one line each: what a
/// failed convergence most often needs to be understood.
async fn quarantine_report(views: &[View]) -> String {
    let mut out = String::new();
    let held = QuarantineFilter {
        state: Some(QuarantineState::Held),
        limit: 100,
        ..QuarantineFilter::default()
    };
    for v in views {
        match v.store.quarantine_list(&held).await {
            Ok(entries) => {
                for e in entries {
                    out.push_str(&format!(
                        "  - {} holds {} on {} made by {}/{} from {}/{}: {} ({})\n",
                        v.name,
                        e.hash,
                        e.doc,
                        e.origin_node,
                        e.origin_unit,
                        e.peer_node,
                        e.peer_unit,
                        e.code,
                        e.reason
                    ));
                }
            }
            Err(err) => out.push_str(&format!("  - {}: quarantine unreadable: {err}\n", v.name)),
        }
    }
    if out.is_empty() {
        "nothing is held in quarantine\n".to_owned()
    } else {
        format!("held in quarantine:\n{out}")
    }
}

/// A member as the client last saw it acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedMember {
    pub unit: String,
    pub card: String,
    pub full_name: String,
    /// Every position written for this member, in order, and whether its
    /// write was acknowledged (the first is the creation's). Writes to one
    /// member come from one client, one at a time.
    pub positions: Vec<(String, bool)>,
}

impl AckedMember {
    /// Positions the member may now have: the last acknowledged one, or one
    /// attempted after it (a write can commit and lose its answer).
    fn acceptable(&self) -> &[(String, bool)] {
        let last = self.positions.iter().rposition(|(_, ok)| *ok).unwrap_or(0);
        &self.positions[last..]
    }
}

/// Writes acknowledged to clients, with the ids the nodes answered.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub members: BTreeMap<String, AckedMember>,
    /// initiative id -> (unit, campaign, title)
    pub initiatives: BTreeMap<String, (String, String, String)>,
    /// award id -> recipient member ids
    pub awards: BTreeMap<String, Vec<String>>,
    pub campaigns: BTreeSet<String>,
}

impl Ledger {
    pub fn merge(&mut self, other: Ledger) {
        self.members.extend(other.members);
        self.initiatives.extend(other.initiatives);
        self.awards.extend(other.awards);
        self.campaigns.extend(other.campaigns);
    }

    /// A member the node created (AddMember, or a `created` import row).
    pub fn member_created(&mut self, m: &pb::Member) {
        self.members.insert(
            m.id.clone(),
            AckedMember {
                unit: m.unit_id.clone(),
                card: m.card_number.clone(),
                full_name: m.full_name.clone(),
                positions: vec![(m.position.clone(), true)],
            },
        );
    }

    /// A member created by an import row (the answer carries only the id).
    pub fn member_imported(&mut self, id: &str, unit: &str, input: &pb::MemberInput) {
        self.members.insert(
            id.to_owned(),
            AckedMember {
                unit: unit.to_owned(),
                card: input.card_number.to_ascii_uppercase(),
                full_name: input.full_name.clone(),
                positions: vec![(input.position.clone(), true)],
            },
        );
    }

    /// A position written for a known member, acknowledged or not.
    pub fn position(&mut self, id: &str, position: &str, acked: bool) {
        if let Some(m) = self.members.get_mut(id) {
            m.positions.push((position.to_owned(), acked));
        }
    }

    pub fn writes(&self) -> usize {
        self.members
            .values()
            .map(|m| m.positions.len())
            .sum::<usize>()
            + self.initiatives.len()
            + self.awards.len()
            + self.campaigns.len()
    }
}

/// The acknowledged writes of `ledger` that `view` does not have (as its
/// projections show them): empty when nothing was lost.
pub async fn missing(view: &View, ledger: &Ledger) -> Result<Vec<String>> {
    let pool = view.store.pool();
    let mut out = Vec::new();
    let mut members: BTreeMap<String, (String, String, String, String)> = BTreeMap::new();
    for r in sqlx::query("SELECT member_id, unit_id, card_number, full_name, position FROM members")
        .fetch_all(pool)
        .await?
    {
        members.insert(r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4)));
    }
    for (id, m) in &ledger.members {
        match members.get(id) {
            None => out.push(format!("member {id} ({}, card {})", m.unit, m.card)),
            Some((unit, card, name, position)) => {
                if (unit, card, name) != (&m.unit, &m.card, &m.full_name) {
                    out.push(format!(
                        "member {id}: {unit} / {card} / {name}, acknowledged as {} / {} / {}",
                        m.unit, m.card, m.full_name
                    ));
                }
                if !m.acceptable().iter().any(|(p, _)| p == position) {
                    out.push(format!(
                        "member {id}: position {position:?}, acknowledged {:?}",
                        m.acceptable()
                    ));
                }
            }
        }
    }
    let ids = |sql: &'static str| async move {
        Ok::<_, anyhow::Error>(
            sqlx::query(sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<BTreeSet<String>>(),
        )
    };
    let initiatives = ids("SELECT id FROM initiatives").await?;
    for (id, (unit, campaign, title)) in &ledger.initiatives {
        if !initiatives.contains(id) {
            out.push(format!(
                "initiative {id} ({title:?} of {unit} in {campaign})"
            ));
        }
    }
    let recipients = ids("SELECT award || ' ' || member_id FROM award_recipients").await?;
    for (id, to) in &ledger.awards {
        for m in to {
            if !recipients.contains(&format!("{id} {m}")) {
                out.push(format!("award {id} to member {m}"));
            }
        }
    }
    let campaigns = ids("SELECT id FROM campaigns").await?;
    for id in &ledger.campaigns {
        if !campaigns.contains(id) {
            out.push(format!("campaign {id}"));
        }
    }
    Ok(out)
}

/// Polls [`missing`] until every acknowledged write is at `view`.
pub async fn wait_all_present(view: &View, ledger: &Ledger, limit: Duration) -> Result<()> {
    let last = Arc::new(Mutex::new(Vec::<String>::new()));
    let r = Federation::until(
        &format!(
            "{} acknowledged writes present at {}",
            ledger.writes(),
            view.name
        ),
        limit,
        || {
            let last = last.clone();
            async move {
                let m = missing(view, ledger).await?;
                let ok = m.is_empty();
                *last.lock().expect("lock") = m;
                Ok(ok)
            }
        },
    )
    .await;
    r.map_err(|e| {
        let m = last.lock().expect("lock");
        e.context(format!(
            "{} acknowledged writes missing, e.g. {:?}",
            m.len(),
            &m[..m.len().min(10)]
        ))
    })
}

// ---------------------------------------------------------------- fixtures

/// Logs to stderr when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Sends a request, and sends it again after the pause a node asks for
/// when a caller is over its request limit (`ResourceExhausted` with
/// `grpc-retry-pushback-ms`), as a well-behaved client does: a request
/// refused for that wrote nothing. A writer looping as fast as it can is
/// over the limit (50 a second, bursts of 200) within seconds on a fast
/// machine; the tests are about crashes and links, not about the limit.
pub async fn within_limit<T, F, Fut>(mut send: F) -> Result<tonic::Response<T>, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    loop {
        let r = send().await;
        let pushback = r.as_ref().err().and_then(|s| {
            (s.code() == tonic::Code::ResourceExhausted)
                .then(|| s.metadata().get("grpc-retry-pushback-ms"))
                .flatten()
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        });
        match pushback {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms.max(1))).await,
            None => return r,
        }
    }
}

/// The pushback is honoured, and only the limit's refusal is sent again.
#[tokio::test]
async fn within_limit_waits_out_the_limit_and_nothing_else() {
    let over = || {
        let mut s = tonic::Status::resource_exhausted("too many requests");
        s.metadata_mut().insert(
            "grpc-retry-pushback-ms",
            tonic::metadata::MetadataValue::from(5u64),
        );
        s
    };
    let tries = std::sync::atomic::AtomicU32::new(0);
    let r = within_limit(|| async {
        match tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 1 => Err(over()),
            _ => Ok(tonic::Response::new(7)),
        }
    })
    .await;
    assert_eq!(r.unwrap().into_inner(), 7);
    assert_eq!(tries.into_inner(), 3);
    // Too large a message is ResourceExhausted too, with no pushback: not
    // sent again.
    let tries = std::sync::atomic::AtomicU32::new(0);
    let r: Result<tonic::Response<()>, _> = within_limit(|| async {
        tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(tonic::Status::resource_exhausted("message too large"))
    })
    .await;
    assert_eq!(r.unwrap_err().code(), tonic::Code::ResourceExhausted);
    assert_eq!(tries.into_inner(), 1);
}

/// A random generator seeded from `HOPLUU_E2E_SEED` or at random; the seed
/// is printed so that a failed run's choices can be replayed.
pub fn rng(test: &str) -> StdRng {
    let seed = std::env::var("HOPLUU_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("{test}: HOPLUU_E2E_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// A member's form with plausible values.
pub fn person(name: &str, card: &str, national_id: Option<&str>) -> pb::MemberInput {
    pb::MemberInput {
        full_name: name.to_owned(),
        birth_date: "1988-04-17".to_owned(),
        gender: if card.len().is_multiple_of(2) {
            pb::Gender::Female
        } else {
            pb::Gender::Male
        } as i32,
        card_number: card.to_owned(),
        joined_on: "2016-09-01".to_owned(),
        position: "Công nhân".to_owned(),
        national_id: national_id.unwrap_or_default().to_owned(),
        ethnicity: if national_id.is_some() {
            "Kinh".to_owned()
        } else {
            String::new()
        },
        religion: String::new(),
    }
}

/// Imports `rows` (unit, form) in one request; records the created members
/// in `ledger` and fails on any rejected row. Returns the ids, in order.
pub async fn import(
    node: &mut pb::member_service_client::MemberServiceClient<tonic::transport::Channel>,
    rows: &[(String, pb::MemberInput)],
    ledger: &mut Ledger,
) -> Result<Vec<String>> {
    let req = pb::ImportMembersRequest {
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, (unit, m))| pb::ImportRow {
                line: i as u32 + 2,
                unit_id: unit.clone(),
                member: Some(m.clone()),
            })
            .collect(),
    };
    let results = within_limit(|| {
        let mut node = node.clone();
        let req = req.clone();
        async move { node.import_members(req).await }
    })
    .await?
    .into_inner()
    .results;
    let mut ids = Vec::with_capacity(rows.len());
    for (r, (unit, m)) in results.iter().zip(rows) {
        match pb::ImportOutcome::try_from(r.outcome) {
            Ok(pb::ImportOutcome::Created) => ledger.member_imported(&r.member_id, unit, m),
            Ok(pb::ImportOutcome::Updated | pb::ImportOutcome::Unchanged) => {
                ledger.position(&r.member_id, &m.position, true)
            }
            _ => return Err(anyhow!("import row {} rejected: {:?}", r.line, r.errors)),
        }
        ids.push(r.member_id.clone());
    }
    Ok(ids)
}
