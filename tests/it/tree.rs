//! The whole tree under a bad network: a national node on PostgreSQL, two
//! provinces and two districts under each (SQLite), every district dialling
//! its province first and the national node as fallback, each link through
//! its own fault proxy.
//!
//! ```text
//! vn (central, PostgreSQL)
//! ├── hau-giang (provincial)
//! │   ├── hg-chau-thanh (district)   ── grassroots hg-chau-thanh-g1, -g2
//! │   └── hg-vi-thanh (commune)      ── grassroots hg-vi-thanh-g1, -g2
//! └── lai-chau (provincial)
//!     ├── lc-tam-duong (district)    ── grassroots …
//!     └── lc-phong-tho (commune)     ── grassroots …
//! ```
//!
//! Unit records are made where the authority is: the national node creates
//! the provinces', each province its districts' and their grassroots
//! unions'. A first campaign is launched nationally and reaches everyone.
//! Then, while links are cut and healed, delayed, truncated mid-message and
//! reset at random (and `lc-phong-tho` is offline throughout, `lai-chau`
//! cut from the national node for the first part), every node writes:
//! districts add, import and update members and record initiatives in the
//! campaign; provinces add members to their districts' grassroots unions
//! (concurrently with the districts, into the same roster documents),
//! update them and decide an award to a member; the national node launches
//! a second campaign and sets plans. Every acknowledged write goes in a
//! [`Ledger`]. The offline district comes back through its fallback (the
//! national node) first, then its province's link heals too. After
//! healing: [`check::wait_converged`] and every acknowledged write present
//! at the national node.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::proxy::FaultProxy;
use hopluu_proto::v1 as pb;
use rand::Rng;
use rand::rngs::StdRng;
use sqlx::AssertSqlSafe;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::check::{self, Ledger, View};

const VN: &str = "vn";
/// (province, [(district, kind)])
const TREE: [(&str, [(&str, &str); 2]); 2] = [
    (
        "hau-giang",
        [("hg-chau-thanh", "district"), ("hg-vi-thanh", "commune")],
    ),
    (
        "lai-chau",
        [("lc-tam-duong", "district"), ("lc-phong-tho", "commune")],
    ),
];
/// Offline (both links cut) for the whole write phase.
const OFFLINE_DISTRICT: &str = "lc-phong-tho";
/// Cut from the national node for the first part of the write phase.
const CUT_PROVINCE: &str = "lai-chau";
const CAMPAIGN: &str = "tt-2026";
const CAMPAIGN_2: &str = "tt-2026-dot-2";

fn grassroots(district: &str) -> [String; 2] {
    [format!("{district}-g1"), format!("{district}-g2")]
}

/// Where PostgreSQL is when `HOPLUU_TEST_PG` is not set.
const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own on the test server, dropped at the end (also when
/// the test panics). An unreachable server fails the test.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
    dropped: bool,
}

impl PgDatabase {
    async fn create() -> Result<PgDatabase> {
        let admin = std::env::var("HOPLUU_TEST_PG").unwrap_or_else(|_| PG_DEFAULT.to_owned());
        let name = format!("hopluu_e2e_{:016x}", rand::random::<u64>());
        hopluu_store::db::admin_execute(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| {
                format!(
                    "PostgreSQL at {} must be reachable (set HOPLUU_TEST_PG to another server): \
                     CREATE DATABASE {name}",
                    hopluu_store::db::redact(&admin)
                )
            })?;
        let url = pg_url_for(&admin, &name);
        Ok(PgDatabase {
            admin,
            name,
            url,
            dropped: false,
        })
    }

    async fn drop_now(mut self) -> Result<()> {
        self.dropped = true;
        hopluu_store::db::admin_execute(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
        .with_context(|| format!("DROP DATABASE {}", self.name))?;
        Ok(())
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The test failed: drop the database from a runtime of its own.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = rt.block_on(hopluu_store::db::admin_execute(&admin, &sql)) {
                    eprintln!("{sql}: {e}");
                }
            }
        })
        .join();
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_national_tree_converges_after_faults_on_every_link() -> Result<()> {
    check::init_tracing();
    let mut rng = check::rng("tree");
    let db = PgDatabase::create().await?;
    let dir = tempfile::tempdir()?;
    let mut fed = Federation::new(dir.path()).with_tuning(|c| {
        // Small roster buckets and batches: rosters split, and sessions
        // run many batches, so faults land between and inside them.
        c.roster.bucket_size = 6;
        c.replication.batch_docs = 8;
    });
    let result = run(&mut fed, &db.url, &mut rng).await;
    let stopped = fed.shutdown().await;
    let dropped = db.drop_now().await;
    result?;
    stopped?;
    dropped
}

async fn run(fed: &mut Federation, pg_url: &str, rng: &mut StdRng) -> Result<()> {
    let limit = Duration::from_secs(120);
    fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam").on_database(pg_url))
        .await?;
    // The tree, each record made by the node with authority over it.
    for (province, districts) in TREE {
        fed.node(VN)
            .create_unit(province, &format!("LĐLĐ tỉnh {province}"), "provincial", VN)
            .await?;
        fed.add(NodeSpec::child(province, province, &[VN])).await?;
        Federation::until("the province knows its unit", limit, || async {
            Ok(fed.node(province).knows_unit(province))
        })
        .await?;
        for (district, kind) in districts {
            let p = fed.node(province);
            p.create_unit(district, &format!("Công đoàn {district}"), kind, province)
                .await?;
            for g in grassroots(district) {
                p.create_unit(&g, &format!("CĐCS {g}"), "grassroots", district)
                    .await?;
            }
            fed.add(NodeSpec::child(district, district, &[province, VN]))
                .await?;
        }
    }
    for (_, districts) in TREE {
        for (district, _) in districts {
            Federation::until(
                &format!("{district} knows its grassroots unions"),
                limit,
                || async {
                    let n = fed.node(district);
                    Ok(grassroots(district).iter().all(|g| n.knows_unit(g)))
                },
            )
            .await?;
        }
    }
    // A national campaign, which every district records initiatives in.
    let mut ledger = Ledger::default();
    launch(fed.node(VN), CAMPAIGN, &mut ledger).await?;
    for (_, districts) in TREE {
        for (district, _) in districts {
            let store = fed.node(district).app.store().clone();
            Federation::until(&format!("{district} has {CAMPAIGN}"), limit, || async {
                Ok(store
                    .campaign(&hopluu_model::CampaignId::parse("c", CAMPAIGN)?)
                    .await?
                    .is_some())
            })
            .await?;
        }
    }

    // ---- writes everywhere, under faults ---------------------------------
    for up in [TREE[1].0, VN] {
        fed.link(OFFLINE_DISTRICT, up).cut();
    }
    fed.link(CUT_PROVINCE, VN).cut();
    let chaos_links: Vec<(String, String, FaultProxy)> = fed
        .links()
        .filter(|(c, u, _)| *c != OFFLINE_DISTRICT && !(*c == CUT_PROVINCE && *u == VN))
        .map(|(c, u, p)| (c.to_owned(), u.to_owned(), p.clone()))
        .collect();
    let stop = CancellationToken::new();
    let chaos = tokio::spawn(chaos(chaos_links, rng.random(), stop.clone()));

    let mut writers: JoinSet<Result<Ledger>> = JoinSet::new();
    for (province, districts) in TREE {
        for (district, _) in districts {
            let n = fed.node(district);
            writers.spawn(district_writes(
                n.members(),
                n.emulation(),
                district.to_owned(),
                rng.random(),
            ));
        }
        let n = fed.node(province);
        let units: Vec<String> = districts.iter().flat_map(|(d, _)| grassroots(d)).collect();
        writers.spawn(province_writes(
            n.members(),
            n.awards(),
            province.to_owned(),
            units,
            rng.random(),
        ));
    }
    // The national node: a second campaign and plans, during the faults.
    let national = fed.node(VN);
    let (campaigns, seed) = (national.campaigns(), rng.random());
    writers.spawn(national_writes(campaigns, seed));
    let mut half_done = false;
    let mut n_writers = writers.len();
    while let Some(r) = writers.join_next().await {
        ledger.merge(r.context("a writer panicked")??);
        n_writers -= 1;
        if !half_done && n_writers <= 4 {
            // Most writers are done: the province comes back meanwhile.
            half_done = true;
            fed.link(CUT_PROVINCE, VN).heal();
        }
    }
    // Some faults after the last write too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let faults = chaos.await?;
    println!("tree: faults injected: {faults:?}");

    // ---- heal, converge, check -------------------------------------------
    // The offline district comes back through its fallback first, while its
    // province's link stays cut: the national node receives its writes
    // (all but the private rosters, which stay below it). Once its parent
    // is reachable again it must go back to it, or its private rosters
    // would never reach the province.
    fed.link(OFFLINE_DISTRICT, VN).heal();
    let offline = Ledger {
        members: ledger
            .members
            .iter()
            .filter(|(_, m)| m.unit.starts_with(OFFLINE_DISTRICT))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect(),
        ..Ledger::default()
    };
    check::wait_all_present(&View::of(fed.node(VN)), &offline, limit)
        .await
        .context("the offline district syncs with its fallback")?;
    for (_, _, p) in fed.links() {
        p.calm();
    }
    let mut views = vec![View::of(fed.node(VN))];
    views.extend(fed.nodes().filter(|n| n.id != VN).map(View::of));
    let f = check::wait_converged(&views, Duration::from_secs(180)).await?;
    println!(
        "tree: converged: {} documents, {} holdings on {} nodes; {} acknowledged writes",
        f.docs,
        f.holdings,
        views.len(),
        ledger.writes()
    );
    // The check any operator can run, on every link: each child asks its
    // parent (through the link's proxy, its configured upstream) for the
    // heads of every document in its scope and compares them with its
    // own, both ways. The convergence check above reads the stores; this
    // one goes through the nodes, as `hopluu check --peer` does.
    for n in fed.nodes().filter(|n| n.id != VN) {
        let parent = &n.config.replication.upstreams[0].node_id;
        let r = n.check_peer(parent, None).await?;
        ensure!(
            r.compared > 0 && r.differing == 0 && r.in_step == r.compared,
            "hopluu check at {} against {parent}: {} of {} documents differ: {:?}",
            n.id,
            r.differing,
            r.compared,
            r.differences
                .iter()
                .take(10)
                .map(|d| (&d.doc_id, d.state, &d.heads_here, &d.heads_at_peer))
                .collect::<Vec<_>>()
        );
        println!(
            "tree: hopluu check at {} against {parent}: {} documents, all in step",
            n.id, r.compared
        );
    }
    let national = &views[0];
    let missing = check::missing(national, &ledger).await?;
    ensure!(
        missing.is_empty(),
        "{} acknowledged writes lost at the national node: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    // The check is not vacuous: the offline district's writes are among
    // them, private rosters stayed below the national node, and the award
    // reached the district of its recipient.
    ensure!(ledger.members.len() >= 200, "too few members written");
    ensure!(
        ledger
            .members
            .values()
            .any(|m| m.unit.starts_with(OFFLINE_DISTRICT)),
        "the offline district wrote no member"
    );
    let private: i64 = count(national, "SELECT COUNT(*) FROM member_private").await?;
    ensure!(private == 0, "the national node holds private data");
    let province_private: i64 = count(&views[1], "SELECT COUNT(*) FROM member_private").await?;
    ensure!(province_private > 0, "no private data reached a province");
    ensure!(ledger.awards.len() == 2 && ledger.initiatives.len() >= 12);
    Ok(())
}

async fn count(v: &View, sql: &str) -> Result<i64> {
    use sqlx::Row;
    Ok(sqlx::query(AssertSqlSafe(sql.to_owned()))
        .fetch_one(v.store.pool())
        .await?
        .get(0))
}

async fn launch(n: &LocalNode, id: &str, ledger: &mut Ledger) -> Result<()> {
    launch_with(&mut n.campaigns(), id, ledger).await
}

async fn launch_with(
    c: &mut pb::campaign_service_client::CampaignServiceClient<tonic::transport::Channel>,
    id: &str,
    ledger: &mut Ledger,
) -> Result<()> {
    let campaign = c
        .launch_campaign(pb::LaunchCampaignRequest {
            id: Some(id.to_owned()),
            launching_unit_id: VN.to_owned(),
            title: format!("Phong trào thi đua {id}"),
            theme: "Lao động giỏi, lao động sáng tạo".to_owned(),
            starts_on: "2026-01-01".to_owned(),
            ends_on: "2026-12-31".to_owned(),
            scope_unit_id: VN.to_owned(),
        })
        .await
        .with_context(|| format!("launching {id}"))?
        .into_inner();
    ledger.campaigns.insert(campaign.id);
    Ok(())
}

/// Injects a random fault on a random link every 30–250 ms until `stop`;
/// returns how many of each kind.
async fn chaos(
    links: Vec<(String, String, FaultProxy)>,
    seed: u64,
    stop: CancellationToken,
) -> [u32; 5] {
    use rand::SeedableRng;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = [0u32; 5];
    let mut heals = JoinSet::new();
    while !stop.is_cancelled() {
        let (_, _, p) = &links[rng.random_range(0..links.len())];
        let kind = rng.random_range(0..5);
        counts[kind] += 1;
        match kind {
            0 => {
                p.cut();
                let (p, ms) = (p.clone(), rng.random_range(100..1500));
                heals.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    p.heal();
                });
            }
            1 => p.reset(),
            2 => p.drop_mid_message(),
            3 => p.set_delay(Duration::from_millis(rng.random_range(1..80))),
            _ => p.set_delay(Duration::ZERO),
        }
        let pause = Duration::from_millis(rng.random_range(30..250));
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
    while heals.join_next().await.is_some() {}
    counts
}

async fn pause(rng: &mut StdRng) {
    tokio::time::sleep(Duration::from_millis(rng.random_range(5..60))).await;
}

/// A district: members added one by one and by import into its grassroots
/// unions (some with private data), positions updated, initiatives recorded.
async fn district_writes(
    mut members: pb::member_service_client::MemberServiceClient<tonic::transport::Channel>,
    mut emulation: pb::emulation_service_client::EmulationServiceClient<tonic::transport::Channel>,
    district: String,
    seed: u64,
) -> Result<Ledger> {
    use rand::SeedableRng;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger::default();
    let units = grassroots(&district);
    let tag = district.to_ascii_uppercase();
    let mut mine = Vec::new();
    for i in 0..30 {
        let unit = &units[i % 2];
        let cccd = format!("{:012}", 10_000_000 + i);
        let input = check::person(
            &format!("Nguyễn Văn {tag} {i}"),
            &format!("{tag}-{i:04}"),
            i.is_multiple_of(3).then_some(cccd.as_str()),
        );
        let m = members
            .add_member(pb::AddMemberRequest {
                unit_id: unit.clone(),
                member: Some(input),
            })
            .await
            .with_context(|| format!("AddMember at {district}"))?
            .into_inner();
        ledger.member_created(&m);
        mine.push(m.id);
        pause(&mut rng).await;
        if i % 10 == 9 {
            let rows: Vec<(String, pb::MemberInput)> = (0..25)
                .map(|j| {
                    let k = i * 100 + j;
                    let cccd = format!("{:012}", 20_000_000 + k);
                    (
                        units[j % 2].clone(),
                        check::person(
                            &format!("Trần Thị {tag} {k}"),
                            &format!("{tag}-I{k:05}"),
                            j.is_multiple_of(4).then_some(cccd.as_str()),
                        ),
                    )
                })
                .collect();
            mine.extend(check::import(&mut members, &rows, &mut ledger).await?);
        }
        if i % 12 == 11 {
            let unit = if i % 24 == 11 {
                district.clone()
            } else {
                units[0].clone()
            };
            let e = emulation
                .record_initiative(pb::RecordInitiativeRequest {
                    unit_id: unit.clone(),
                    campaign_id: CAMPAIGN.to_owned(),
                    title: format!("Sáng kiến {tag} {i}"),
                    authors: vec![format!("Nguyễn Văn {tag} {i}")],
                    value_vnd: 1_000_000 * i as i64,
                    submitted_on: String::new(),
                })
                .await
                .with_context(|| format!("RecordInitiative at {district}"))?
                .into_inner();
            ledger
                .initiatives
                .insert(e.id, (unit, CAMPAIGN.to_owned(), e.title));
        }
    }
    for i in 0..3 {
        let e = emulation
            .record_initiative(pb::RecordInitiativeRequest {
                unit_id: units[1].clone(),
                campaign_id: CAMPAIGN.to_owned(),
                title: format!("Cải tiến {tag} {i}"),
                authors: vec![format!("Lê Văn {tag}")],
                value_vnd: 0,
                submitted_on: String::new(),
            })
            .await
            .with_context(|| format!("RecordInitiative at {district}"))?
            .into_inner();
        ledger
            .initiatives
            .insert(e.id, (units[1].clone(), CAMPAIGN.to_owned(), e.title));
    }
    // Two rounds of updates of every other member of its own.
    for round in 0..2 {
        for id in mine.iter().step_by(2) {
            let position = format!("Tổ trưởng {round}");
            let r = members
                .update_member(pb::UpdateMemberRequest {
                    member_id: id.clone(),
                    position: Some(position.clone()),
                    ..Default::default()
                })
                .await;
            ledger.position(id, &position, r.is_ok());
            r.with_context(|| format!("UpdateMember at {district}"))?;
            if rng.random_bool(0.3) {
                pause(&mut rng).await;
            }
        }
    }
    Ok(ledger)
}

/// A province: members added to its districts' grassroots unions (the same
/// roster documents the districts write), updated, and an award decided to
/// one of them.
async fn province_writes(
    mut members: pb::member_service_client::MemberServiceClient<tonic::transport::Channel>,
    mut awards: pb::award_service_client::AwardServiceClient<tonic::transport::Channel>,
    province: String,
    units: Vec<String>,
    seed: u64,
) -> Result<Ledger> {
    use rand::SeedableRng;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger::default();
    let tag = format!("P-{}", province.to_ascii_uppercase());
    let mut mine = Vec::new();
    for i in 0..24 {
        let m = members
            .add_member(pb::AddMemberRequest {
                unit_id: units[i % units.len()].clone(),
                member: Some(check::person(
                    &format!("Phạm Văn {tag} {i}"),
                    &format!("{tag}-{i:04}"),
                    None,
                )),
            })
            .await
            .with_context(|| format!("AddMember at {province}"))?
            .into_inner();
        ledger.member_created(&m);
        mine.push(m.id);
        pause(&mut rng).await;
    }
    for id in mine.iter().skip(1).step_by(3) {
        let position = "Chủ tịch công đoàn".to_owned();
        let r = members
            .update_member(pb::UpdateMemberRequest {
                member_id: id.clone(),
                position: Some(position.clone()),
                ..Default::default()
            })
            .await;
        ledger.position(id, &position, r.is_ok());
        r.with_context(|| format!("UpdateMember at {province}"))?;
        pause(&mut rng).await;
    }
    let award = awards
        .decide_award(pb::DecideAwardRequest {
            issuing_unit_id: province.clone(),
            decision_no: "45/QĐ-LĐLĐ".to_owned(),
            award_type: "chien-si-thi-dua".to_owned(),
            recipients: vec![pb::Recipient {
                who: Some(pb::recipient::Who::MemberId(mine[0].clone())),
            }],
            reason: "Thành tích xuất sắc năm 2026".to_owned(),
            campaign_id: Some(CAMPAIGN.to_owned()),
            ..Default::default()
        })
        .await
        .with_context(|| format!("DecideAward at {province}"))?
        .into_inner();
    ledger.awards.insert(award.id, vec![mine[0].clone()]);
    Ok(ledger)
}

/// The national node: a second campaign, then plans for both provinces.
async fn national_writes(
    mut campaigns: pb::campaign_service_client::CampaignServiceClient<tonic::transport::Channel>,
    seed: u64,
) -> Result<Ledger> {
    use rand::SeedableRng;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger::default();
    tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
    launch_with(&mut campaigns, CAMPAIGN_2, &mut ledger).await?;
    for quota in 1..=3 {
        pause(&mut rng).await;
        campaigns
            .set_plans(pb::SetPlansRequest {
                campaign_id: CAMPAIGN_2.to_owned(),
                plans: TREE
                    .iter()
                    .map(|(p, _)| pb::Plan {
                        unit_id: (*p).to_owned(),
                        initiative_quota: 10 * quota,
                        works_quota: quota,
                    })
                    .collect(),
            })
            .await
            .context("SetPlans")?;
    }
    Ok(ledger)
}
