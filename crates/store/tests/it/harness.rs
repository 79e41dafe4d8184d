//! Backends, the runner, fixtures and write helpers.
//!
//! Time is explicit: [`TODAY`] is fixed, the store's clock is stopped on it
//! ([`clock`]), and every change is made at time 0 by the actor of node
//! `node-t` (with the store's incarnation).

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use automerge::Automerge;
use hopluu_model::award::{self, AwardCatalogue, AwardType, NewAward, NewProposal, Recipient};
use hopluu_model::campaign::{self, NewCampaign, Plan};
use hopluu_model::emulation::{self, InitiativeStatus, NewInitiative, NewWork};
use hopluu_model::member::{self, Member, MemberInput, MemberStatus, NewMember};
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit, Unit};
use hopluu_model::{
    Author, AwardId, CampaignId, Clock, Date, DocId, FixedClock, InitiativeId, KindId, MemberId,
    ModelError, ProposalId, UnitId,
};
use hopluu_store::{Backend, Store, StoreOptions};
use sqlx::{AssertSqlSafe, Connection, Row};

/// The day every case runs on.
pub const TODAY: &str = "2025-09-01";

/// Where PostgreSQL is when `HOPLUU_TEST_PG` is not set.
pub const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Which backend a generated test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Small buckets and an early compaction, so that every case exercises
/// roster splitting and snapshot folding.
pub fn options() -> StoreOptions {
    StoreOptions {
        bucket_size: 4,
        compact_min_bytes: 256,
        ..Default::default()
    }
}

/// The store's clock, stopped at [`TODAY`]: every time the store writes
/// is [`now`].
pub fn clock() -> Arc<dyn Clock> {
    Arc::new(FixedClock(today()))
}

/// The time every store write carries, ms since the epoch.
pub fn now() -> i64 {
    FixedClock(today()).now_millis()
}

/// Runs `case` on a fresh database of `kind`, then checks the store's
/// consistency and integrity, then removes the database.
pub async fn run<F, Fut>(kind: Kind, case: F) -> Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::TempDir::new().context("temporary directory")?;
            let url = format!("sqlite:{}/node.sqlite", dir.path().display());
            let store = Store::open(&url, options(), clock())
                .await
                .with_context(|| format!("opening SQLite at {url}"))?;
            run_on(store, case).await
        }
        Kind::Postgres => {
            let db = PgDatabase::create().await;
            let store = Store::open(&db.url, options(), clock())
                .await
                .with_context(|| format!("opening PostgreSQL database {}", db.name))?;
            let r = run_on(store, case).await;
            db.drop_now().await;
            r
        }
    }
}

async fn run_on<F, Fut>(store: Store, case: F) -> Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    case(store.clone()).await?;
    crate::check::consistent(&store)
        .await
        .context("after the case")?;
    let problems = store.integrity_check().await?;
    ensure!(problems.is_empty(), "integrity check: {problems:?}");
    store.close().await;
    Ok(())
}

/// The admin url of the test server.
pub fn pg_admin_url() -> String {
    std::env::var("HOPLUU_TEST_PG").unwrap_or_else(|_| PG_DEFAULT.to_owned())
}

/// `url` with its database name replaced by `db`.
fn pg_url_for(url: &str, db: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

/// A database of its own for one test; dropped by [`PgDatabase::drop_now`]
/// or, if the test panicked first, by `Drop` on a thread of its own.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
    dropped: bool,
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let shown = hopluu_store::db::redact(&admin);
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {shown} ({e}). The store suite runs every case on \
                 PostgreSQL too: start the server or point HOPLUU_TEST_PG at one."
            )
        });
        let name = format!("hopluu_t_{:016x}", rand::random::<u64>());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {shown}: {e}"));
        conn.close().await.ok();
        let url = pg_url_for(&admin, &name);
        PgDatabase {
            admin,
            name,
            url,
            dropped: false,
        }
    }

    async fn drop_now(mut self) {
        self.dropped = true;
        if let Err(e) = drop_database(&self.admin, &self.name).await {
            eprintln!("DROP DATABASE {}: {e}", self.name);
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The test panicked: drop the database from a runtime of its own
        // (this one may be unwinding) and never panic here.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => {
                    if let Err(e) = rt.block_on(drop_database(&admin, &name)) {
                        eprintln!("DROP DATABASE {name}: {e}");
                    }
                }
                Err(e) => eprintln!("DROP DATABASE {name}: no runtime: {e}"),
            }
        });
        let _ = done.join();
    }
}

async fn drop_database(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// A second, cold `Store` on the database of `store` (an empty document
/// cache, so every read goes through snapshot + chunks). Write only through
/// the original in a case: the original's cache does not see writes made
/// through another store.
pub async fn reopen(store: &Store) -> Result<Store> {
    reopen_with(store, store.options().clone()).await
}

/// [`reopen`] with other options.
pub async fn reopen_with(store: &Store, options: StoreOptions) -> Result<Store> {
    let url = match store.backend() {
        Backend::Sqlite => {
            let rows = sqlx::query("PRAGMA database_list")
                .fetch_all(store.pool())
                .await?;
            let file = rows
                .iter()
                .find(|r| r.get::<String, _>(1) == "main")
                .map(|r| r.get::<String, _>(2))
                .context("the main database of a SQLite store")?;
            format!("sqlite:{file}")
        }
        Backend::Postgres => {
            let name: String = sqlx::query("SELECT CAST(current_database() AS TEXT)")
                .fetch_one(store.pool())
                .await?
                .get(0);
            pg_url_for(&pg_admin_url(), &name)
        }
    };
    Ok(Store::open(&url, options, store.clock().clone()).await?)
}

// ---------------------------------------------------------------- fixtures

pub fn d(s: &str) -> Date {
    s.parse()
        .unwrap_or_else(|()| panic!("bad date in a test: {s}"))
}

pub fn today() -> Date {
    d(TODAY)
}

pub fn author(store: &Store) -> Author {
    Author {
        actor: Author::actor_for(
            "node-t",
            &hopluu_model::UnitId::parse("unit", "vn").unwrap(),
            store.incarnation(),
        ),
        time_millis: 0,
    }
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

pub fn unit_doc(id: &str) -> DocId {
    DocId::Unit(uid(id))
}

pub fn decision(no: &str, decided_on: &str, effective_on: &str) -> Decision {
    Decision::parse(no, decided_on, effective_on, today()).unwrap()
}

pub fn award_type(id: &str) -> AwardType {
    AwardCatalogue::default()
        .get(id)
        .unwrap_or_else(|| panic!("award type {id} is not in the catalogue"))
        .clone()
}

// ----------------------------------------------------------- write helpers

/// One write transaction editing one document: begin, load, `f`, commit.
pub async fn write<T>(
    store: &Store,
    id: &DocId,
    f: impl FnOnce(&mut Automerge, &Author) -> Result<T, ModelError>,
) -> Result<T> {
    let author = author(store);
    let mut tx = store.begin().await?;
    let doc = tx.doc(id).await?;
    let out = f(doc, &author).with_context(|| format!("editing {id}"))?;
    tx.commit().await?;
    Ok(out)
}

/// A unit as `unit::create` builds it (without writing it anywhere).
pub fn new_unit(id: &str, name: &str, kind: &str, parent: Option<&str>) -> NewUnit {
    NewUnit::parse(
        &KindCatalogue::default(),
        Some(id),
        name,
        kind,
        parent,
        decision("01/QĐ-TLĐ", "2020-01-15", "2020-02-01"),
    )
    .unwrap()
}

pub async fn create_unit(
    store: &Store,
    id: &str,
    name: &str,
    kind: &str,
    parent: Option<&str>,
) -> Result<Unit> {
    let new = new_unit(id, name, kind, parent);
    write(store, &unit_doc(id), |doc, a| unit::create(doc, a, &new)).await
}

/// Moves a unit under `to` by a decision of `decided_on`, effective
/// `effective_on` (which may lie before the decision).
pub async fn move_unit_on(
    store: &Store,
    id: &str,
    to: &str,
    decided_on: &str,
    effective_on: &str,
) -> Result<Unit> {
    let decision = decision("1656/QĐ-TLĐ", decided_on, effective_on);
    write(store, &unit_doc(id), |doc, a| {
        unit::move_to(doc, a, &uid(to), &decision)
    })
    .await
}

/// Closes a unit effective `on`; merged into `successors` when `merged`.
pub async fn close_unit_on(
    store: &Store,
    id: &str,
    successors: &[&str],
    merged: bool,
    on: &str,
) -> Result<Unit> {
    let decision = decision("1657/QĐ-TLĐ", on, on);
    let successors: Vec<UnitId> = successors.iter().map(|s| uid(s)).collect();
    write(store, &unit_doc(id), |doc, a| {
        unit::close(doc, a, "Sắp xếp tổ chức", &successors, merged, &decision)
    })
    .await
}

/// A member form; `gender` in any spelling `Gender::parse` accepts.
pub fn input(full_name: &str, gender: &str, card: &str) -> MemberInput {
    MemberInput {
        full_name: full_name.to_owned(),
        birth_date: "1990-05-17".to_owned(),
        gender: gender.to_owned(),
        card_number: card.to_owned(),
        joined_on: "2012-03-01".to_owned(),
        position: "Công nhân".to_owned(),
        national_id: "001190004005".to_owned(),
        ethnicity: "Kinh".to_owned(),
        religion: String::new(),
    }
}

/// Adds a member to a grassroots unit the way the node does: the bucket
/// from the projection's counts, the public record, then the private one.
/// Returns the member as written and its bucket.
pub async fn add_member(
    store: &Store,
    unit: &str,
    id: &str,
    full_name: &str,
    gender: &str,
    card: &str,
) -> Result<(Member, u32)> {
    let new = NewMember::parse(&input(full_name, gender, card), today())?;
    let u = uid(unit);
    let m = member::joining(mid(id), u.clone(), &new);
    let author = author(store);
    let mut tx = store.begin().await?;
    let counts = tx.bucket_counts(&u).await?;
    let bucket = member::choose_bucket(&m.id, store.options().bucket_size, |b| {
        counts.get(&b).copied().unwrap_or(0)
    });
    member::add(
        tx.doc(&member::roster_doc(&u, bucket)).await?,
        &author,
        &u,
        bucket,
        &m,
    )?;
    member::put_private(
        tx.doc(&member::private_doc(&u, bucket)).await?,
        &author,
        &u,
        bucket,
        &m.id,
        &new.private,
    )?;
    tx.commit().await?;
    Ok((m, bucket))
}

/// The roster document holding the member's record in `unit`.
pub async fn roster_of(store: &Store, member: &str, unit: &str) -> Result<DocId> {
    let locs = store.member_locations(&mid(member)).await?;
    let loc = locs
        .iter()
        .find(|l| l.unit.as_str() == unit)
        .with_context(|| format!("member {member} has no record in {unit}: {locs:?}"))?;
    Ok(member::roster_doc(&loc.unit, loc.bucket))
}

/// Ends a membership (left, ceased) in its unit.
pub async fn end_member(
    store: &Store,
    member: &str,
    unit: &str,
    status: MemberStatus,
    reason: &str,
    on: &str,
) -> Result<Member> {
    let roster = roster_of(store, member, unit).await?;
    let (m, on) = (mid(member), d(on));
    write(store, &roster, |doc, a| {
        member::end(doc, a, &m, status, reason, on, None)
    })
    .await
}

/// Transfers a member from one grassroots unit to another in one commit
/// (two roster documents). Returns the record in `to`.
pub async fn transfer(
    store: &Store,
    member: &str,
    from: &str,
    to: &str,
    on: &str,
) -> Result<Member> {
    let from_doc = roster_of(store, member, from).await?;
    let m = mid(member);
    let (to_u, on) = (uid(to), d(on));
    let author = author(store);
    let mut tx = store.begin().await?;
    let left = member::end(
        tx.doc(&from_doc).await?,
        &author,
        &m,
        MemberStatus::Transferred,
        "chuyển công tác",
        on,
        Some(&to_u),
    )?;
    // A member coming back to a unit returns to their record there;
    // otherwise the record goes where a new member would.
    let earlier = tx.member_locations(&m).await?;
    let bucket = match earlier.iter().find(|l| l.unit == to_u) {
        Some(l) => l.bucket,
        None => {
            let counts = tx.bucket_counts(&to_u).await?;
            member::choose_bucket(&m, store.options().bucket_size, |b| {
                counts.get(&b).copied().unwrap_or(0)
            })
        }
    };
    let arrived = member::transfer_in(
        tx.doc(&member::roster_doc(&to_u, bucket)).await?,
        &author,
        &to_u,
        bucket,
        &left,
        "chuyển đến",
        on,
    )?;
    tx.commit().await?;
    Ok(arrived)
}

/// Launches a campaign of `launching` over `scope`.
pub async fn launch(store: &Store, id: &str, launching: &str, scope: &str) -> Result<()> {
    let new = NewCampaign::parse(
        Some(id),
        launching,
        "Lao động giỏi, lao động sáng tạo",
        "Phong trào thi đua năm 2025",
        "2025-01-01",
        "2025-12-31",
        scope,
    )?;
    write(store, &DocId::Campaign(cid(id)), |doc, a| {
        campaign::create(doc, a, &new)
    })
    .await?;
    Ok(())
}

/// Sets initiative (and works) quotas: `(unit, initiatives, works)`.
pub async fn set_plans(store: &Store, campaign: &str, plans: &[(&str, u32, u32)]) -> Result<()> {
    let plans: Vec<(UnitId, Plan)> = plans
        .iter()
        .map(|(u, i, w)| {
            (
                uid(u),
                Plan {
                    initiative_quota: *i,
                    works_quota: *w,
                },
            )
        })
        .collect();
    write(store, &DocId::Campaign(cid(campaign)), |doc, a| {
        campaign::set_plans(doc, a, &plans)
    })
    .await?;
    Ok(())
}

/// Records an initiative and walks it to `status` through the review
/// workflow; returns its id.
pub async fn initiative(
    store: &Store,
    unit: &str,
    campaign: &str,
    title: &str,
    value_vnd: i64,
    status: InitiativeStatus,
) -> Result<InitiativeId> {
    let (u, c) = (uid(unit), cid(campaign));
    let new = NewInitiative::parse(
        title,
        &["Nguyễn Văn An".to_owned(), "Lê Thị Bình".to_owned()],
        value_vnd,
        "2025-03-10",
        today(),
    )?;
    let doc = emulation::doc_id(&u, &c);
    let i = write(store, &doc, |d, a| {
        emulation::record_initiative(d, a, &u, &c, &new)
    })
    .await?;
    use InitiativeStatus::*;
    let steps: &[InitiativeStatus] = match status {
        Submitted => &[],
        UnderReview => &[UnderReview],
        Valid => &[UnderReview, Valid],
        Rejected => &[UnderReview, Rejected],
        Recognised => &[UnderReview, Valid, Recognised],
    };
    for s in steps {
        let level = if *s == Recognised { "cấp tỉnh" } else { "" };
        write(store, &doc, |d, a| {
            emulation::set_initiative_status(d, a, &i.id, *s, level, "")
        })
        .await?;
    }
    Ok(i.id)
}

pub async fn work(
    store: &Store,
    unit: &str,
    campaign: &str,
    name: &str,
    value_vnd: i64,
    plaque: bool,
) -> Result<emulation::Work> {
    let (u, c) = (uid(unit), cid(campaign));
    let new = NewWork::parse(name, value_vnd, plaque, "2025-04-30", today())?;
    write(store, &emulation::doc_id(&u, &c), |d, a| {
        emulation::record_work(d, a, &u, &c, &new)
    })
    .await
}

pub fn member_recipient(member: &str, unit: &str) -> Recipient {
    Recipient::Member {
        member: mid(member),
        unit: uid(unit),
    }
}

/// Decides an award by `issuing` (of kind `issuing_kind`), optionally for a
/// proposal, which is marked decided in the same commit.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    store: &Store,
    id: &str,
    issuing: &str,
    issuing_kind: &str,
    kind: &str,
    decided_on: &str,
    recipients: Vec<Recipient>,
    proposal: Option<&str>,
) -> Result<()> {
    let t = award_type(kind);
    let a = NewAward {
        id: AwardId::parse("award_id", id)?,
        issuing_unit: uid(issuing),
        issuing_kind: KindId::parse("kind", issuing_kind)?,
        decision_no: format!("{id}/QĐ-KT"),
        decided_on: d(decided_on),
        effective_on: d(decided_on),
        award_type: &t,
        recipients,
        campaign: None,
        proposal: proposal
            .map(|p| ProposalId::parse("proposal", p))
            .transpose()?,
        reason: "Hoàn thành xuất sắc nhiệm vụ".to_owned(),
    };
    let author = author(store);
    let mut tx = store.begin().await?;
    award::decide(tx.doc(&DocId::Award(a.id.clone())).await?, &author, &a)?;
    if let Some(p) = &a.proposal {
        let doc = tx.doc(&DocId::Proposal(p.clone())).await?;
        if doc.get_heads().is_empty() {
            bail!("proposal {p} is not stored");
        }
        award::mark_decided(doc, &author, &a.id)?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn propose(
    store: &Store,
    id: &str,
    proposing: &str,
    addressed: &str,
    kind: &str,
    candidates: Vec<Recipient>,
) -> Result<()> {
    let t = award_type(kind);
    let p = NewProposal {
        id: ProposalId::parse("proposal_id", id)?,
        proposing_unit: uid(proposing),
        addressed_unit: uid(addressed),
        award_type: &t,
        campaign: Some(cid("c1")),
        candidates,
        reason: "Có thành tích xuất sắc".to_owned(),
        proposed_on: d("2025-06-01"),
    };
    write(store, &DocId::Proposal(p.id.clone()), |doc, a| {
        award::propose(doc, a, &p)
    })
    .await?;
    Ok(())
}

pub async fn revoke(store: &Store, id: &str, on: &str) -> Result<()> {
    let award = DocId::Award(AwardId::parse("award_id", id)?);
    let on = d(on);
    write(store, &award, |doc, a| {
        award::revoke(doc, a, on, "Sai thông tin")
    })
    .await?;
    Ok(())
}

/// vn → p1 → d1 → {g1, g2}, and p2 beside p1: the tree most cases use.
pub async fn small_tree(store: &Store) -> Result<()> {
    create_unit(
        store,
        "vn",
        "Tổng Liên đoàn Lao động Việt Nam",
        "central",
        None,
    )
    .await?;
    create_unit(store, "p1", "LĐLĐ tỉnh Hậu Giang", "provincial", Some("vn")).await?;
    create_unit(
        store,
        "p2",
        "LĐLĐ thành phố Cần Thơ",
        "provincial",
        Some("vn"),
    )
    .await?;
    create_unit(store, "d1", "LĐLĐ huyện Châu Thành", "district", Some("p1")).await?;
    create_unit(
        store,
        "g1",
        "CĐCS Công ty Mía đường",
        "grassroots",
        Some("d1"),
    )
    .await?;
    create_unit(
        store,
        "g2",
        "CĐCS Trường THPT Ngã Sáu",
        "grassroots",
        Some("d1"),
    )
    .await?;
    Ok(())
}
