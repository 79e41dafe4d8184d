//! `hopluu demo`: a small federation on loopback in one command.
//!
//! Real nodes, in this process (`hopluu_tests::federation`): the national
//! node `vn`, three provinces (Hậu Giang, Lai Châu, Kiên Giang) and four
//! district or commune nodes below them, each child dialling its parent
//! through a proxy the demo can cut. Each level creates the unit records of
//! the level below (a child node starts once its parent has created its
//! unit, and waits for that record on its first sync). The districts import
//! a few thousand members with Vietnamese names and create their grassroots
//! unions; the national node launches a campaign with quotas per province;
//! the districts register, record initiatives and dedicated works; the
//! provinces review the initiatives and Hậu Giang decides an award.
//!
//! Then Kiên Giang's link to the national node is cut while both sides keep
//! writing (new members below Kiên Giang; a new national campaign and a
//! national decision on a Kiên Giang initiative), the link is healed, and
//! the demo waits until every link is in step again. The national report
//! and the state of every link are printed before, during and after.
//!
//! A link's state is read from the two stores it joins: the documents one
//! side holds that the other should hold (by the scope rule, as the sender
//! decides it) and does not yet hold whole, each way; whether its proxy is
//! cut and holds a connection open; the last exchange either node recorded
//! of the other; and the bytes its proxy carried.
//!
//! Logs: only warnings by default (and the expected "sync session failed"
//! of a cut link is left out); `RUST_LOG` overrides.
//!
//! Every link is mutual TLS: the demo makes its CA and every node's
//! certificate in `DIR/pki` (the federation's), and an administrator's
//! certificate there for the command line; the `node.toml` files it leaves
//! name them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::{ChangeHash, ReadDoc};
use clap::Args;
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::pki::Caller;
use hopluu_devcluster::proxy::ProxyStats;
use hopluu_model::{Clock, Date, DocId, SystemClock};
use hopluu_proto::v1 as pb;
use hopluu_store::peer::FeedDoc;

use crate::output::{Table, vnd};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Members the districts import before the cut (about a tenth more are
    /// added below Kiên Giang while it is cut off).
    #[arg(long, default_value_t = 3000)]
    members: usize,
    /// Where the nodes keep their data: DIR/<node-id>/hopluu.sqlite (and a
    /// node.toml to serve it again). Must be empty or absent.
    #[arg(long, default_value = "hopluu-demo")]
    data_dir: PathBuf,
    /// Delete --data-dir first (only a directory an earlier demo made).
    #[arg(long)]
    fresh: bool,
    /// Put the national node on this (empty) PostgreSQL database instead of
    /// SQLite, e.g. postgres://postgres@127.0.0.1:5432/hopluu_demo.
    #[arg(long)]
    national_db: Option<String>,
    /// Longest wait, in seconds, for the federation to get in step.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

// ---- the federation ------------------------------------------------------

const NATIONAL: &str = "vn";
const NATIONAL_NAME: &str = "Tổng Liên đoàn Lao động Việt Nam";
/// The province whose link to the national node is cut.
const CUT: &str = "kien-giang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// Mekong delta: Kinh, some Khmer and Hoa.
    South,
    /// North-west highlands: Kinh, Thái, Mông, Dao.
    NorthWest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    School,
    Hospital,
    Factory,
    Hydro,
    Port,
    Water,
}

struct Province {
    id: &'static str,
    name: &'static str,
    /// Province code of the CCCD (citizen id) numbers of people born there.
    cccd: &'static str,
    /// Card number prefix.
    code: &'static str,
    region: Region,
    /// Initiatives and dedicated works the national node plans for it.
    quota: (u32, u32),
    districts: &'static [District],
}

struct District {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    code: &'static str,
    grassroots: &'static [Grassroots],
}

struct Grassroots {
    id: &'static str,
    name: &'static str,
    profile: Profile,
    /// Relative size of its roster.
    weight: usize,
}

const fn g(id: &'static str, name: &'static str, profile: Profile, weight: usize) -> Grassroots {
    Grassroots {
        id,
        name,
        profile,
        weight,
    }
}

const TREE: &[Province] = &[
    Province {
        id: "hau-giang",
        name: "Liên đoàn Lao động tỉnh Hậu Giang",
        cccd: "093",
        code: "HG",
        region: Region::South,
        quota: (12, 4),
        districts: &[
            District {
                id: "hg-chau-thanh-a",
                name: "Liên đoàn Lao động huyện Châu Thành A",
                kind: "district",
                code: "CTA",
                grassroots: &[
                    g(
                        "cta-thpt-chau-thanh-a",
                        "CĐCS Trường THPT Châu Thành A",
                        Profile::School,
                        6,
                    ),
                    g(
                        "cta-ttyt-chau-thanh-a",
                        "CĐCS Trung tâm Y tế huyện Châu Thành A",
                        Profile::Hospital,
                        9,
                    ),
                    g(
                        "cta-giay-da-tan-phu-thanh",
                        "CĐCS Công ty TNHH Giày da Tân Phú Thạnh",
                        Profile::Factory,
                        30,
                    ),
                ],
            },
            District {
                id: "hg-vi-thanh",
                name: "Liên đoàn Lao động thành phố Vị Thanh",
                kind: "district",
                code: "VT",
                grassroots: &[
                    g(
                        "vt-bvdk-hau-giang",
                        "CĐCS Bệnh viện Đa khoa tỉnh Hậu Giang",
                        Profile::Hospital,
                        14,
                    ),
                    g(
                        "vt-thpt-chuyen-vi-thanh",
                        "CĐCS Trường THPT chuyên Vị Thanh",
                        Profile::School,
                        5,
                    ),
                    g(
                        "vt-cap-thoat-nuoc",
                        "CĐCS Công ty Cổ phần Cấp thoát nước Hậu Giang",
                        Profile::Water,
                        5,
                    ),
                ],
            },
        ],
    },
    Province {
        id: "lai-chau",
        name: "Liên đoàn Lao động tỉnh Lai Châu",
        cccd: "012",
        code: "LC",
        region: Region::NorthWest,
        quota: (6, 2),
        districts: &[District {
            id: "lc-than-uyen",
            name: "Liên đoàn Lao động huyện Than Uyên",
            kind: "district",
            code: "TU",
            grassroots: &[
                g(
                    "tu-thuy-dien-huoi-quang",
                    "CĐCS Nhà máy Thủy điện Huội Quảng",
                    Profile::Hydro,
                    6,
                ),
                g(
                    "tu-ptdtbt-thcs-muong-kim",
                    "CĐCS Trường PTDTBT THCS Mường Kim",
                    Profile::School,
                    3,
                ),
                g(
                    "tu-ttyt-than-uyen",
                    "CĐCS Trung tâm Y tế huyện Than Uyên",
                    Profile::Hospital,
                    5,
                ),
            ],
        }],
    },
    Province {
        id: "kien-giang",
        name: "Liên đoàn Lao động tỉnh Kiên Giang",
        cccd: "091",
        code: "KG",
        region: Region::South,
        quota: (8, 3),
        districts: &[District {
            id: "kg-phu-quoc",
            name: "Công đoàn đặc khu Phú Quốc",
            kind: "commune",
            code: "PQ",
            grassroots: &[
                g(
                    "pq-bvdk-phu-quoc",
                    "CĐCS Bệnh viện Đa khoa Phú Quốc",
                    Profile::Hospital,
                    7,
                ),
                g(
                    "pq-thpt-phu-quoc",
                    "CĐCS Trường THPT Phú Quốc",
                    Profile::School,
                    4,
                ),
                g("pq-cang-an-thoi", "CĐCS Cảng An Thới", Profile::Port, 6),
            ],
        }],
    },
];

/// The grassroots unit (of the cut province) whose emulation record both
/// sides edit while the link is cut, and the node that hosts it.
const MERGE_UNIT: &str = "pq-bvdk-phu-quoc";
const MERGE_UNIT_NODE: &str = "kg-phu-quoc";

fn grassroots_count() -> usize {
    TREE.iter()
        .flat_map(|p| p.districts)
        .map(|d| d.grassroots.len())
        .sum()
}

/// Every link as (child, upstream), in tree order.
fn links_in_order() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for p in TREE {
        out.push((p.id, NATIONAL));
    }
    for p in TREE {
        for d in p.districts {
            out.push((d.id, p.id));
        }
    }
    out
}

// ---- running it ------------------------------------------------------------

/// A progress line, stamped with the time since the start.
struct Progress(Instant);

impl Progress {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

pub async fn run(args: DemoArgs) -> Result<()> {
    init_tracing();
    if args.members < grassroots_count() {
        bail!(
            "--members {}: give at least {} (one per grassroots union)",
            args.members,
            grassroots_count()
        );
    }
    prepare_dir(&args.data_dir, args.fresh)?;
    let dir = std::fs::canonicalize(&args.data_dir)
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    let started = Instant::now();
    println!(
        "hopluu demo: a federation of {} nodes on loopback, data in {}",
        1 + TREE.len() + TREE.iter().map(|p| p.districts.len()).sum::<usize>(),
        dir.display()
    );
    let mut fed = Federation::new(&dir);
    let outcome = script(&mut fed, &args, Progress(started)).await;
    // The command line's certificate, for the nodes served again later.
    let admin = fed.pki().and_then(|p| {
        let (cert, key) = p.write_client(&Caller::admin())?;
        Ok((p.ca_file(), cert, key))
    });
    let stopped = fed.shutdown().await;
    let summary = outcome?;
    stopped.context("stopping the nodes")?;
    let admin = admin.context("writing the administrator's certificate")?;
    write_configs(&dir, args.national_db.as_deref())?;
    finish(
        &args.data_dir,
        &summary,
        started.elapsed(),
        args.national_db.as_deref(),
        &admin,
    );
    Ok(())
}

/// Only warnings, without the expected complaints of a cut link.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,hopluu_node::replication=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The file that marks a directory as made by `hopluu demo` (so that
/// `--fresh` never deletes anything else).
const MARKER: &str = "hopluu-demo.txt";

fn prepare_dir(dir: &Path, fresh: bool) -> Result<()> {
    let non_empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if non_empty {
        if !fresh {
            bail!(
                "{} is not empty (an earlier demo?): pass --fresh to delete it first, \
                 or choose another --data-dir",
                dir.display()
            );
        }
        if !dir.join(MARKER).is_file() {
            bail!(
                "--fresh: refusing to delete {}: it has no {MARKER}, so it was not made by \
                 hopluu demo; choose another --data-dir",
                dir.display()
            );
        }
        println!(
            "--fresh: deleting {} and everything in it (an earlier demo's data)",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "Made by `hopluu demo`: one directory per node, each with its SQLite database\n\
         (hopluu.sqlite) and a node.toml to serve it again with\n\
         `hopluu serve --config DIR/<node>/node.toml`; pki/ holds the demo's CA, every\n\
         node's certificate and an administrator's (admin.pem, admin.key).\n\
         `hopluu demo --fresh` deletes this directory.\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(())
}

/// What the end of the demo reports.
struct Summary {
    nodes: Vec<NodeSummary>,
}

struct NodeSummary {
    id: String,
    database: String,
    documents: i64,
    members: u64,
}

/// Everything between starting the first node and stopping the last.
async fn script(fed: &mut Federation, args: &DemoArgs, p: Progress) -> Result<Summary> {
    let today = SystemClock.today();
    let mut demo = Demo {
        fed,
        args,
        p,
        limit: Duration::from_secs(args.timeout),
        today,
        year: today.year(),
        campaign: format!("ldg-ldst-{}", today.year()),
        rng: Rng(0x4855_4f50_4c55_5500 ^ args.members as u64),
        roster: Roster::default(),
        initiatives: Vec::new(),
    };
    demo.start_nodes().await?;
    demo.import_rosters().await?;
    demo.launch_campaign().await?;
    demo.emulate().await?;
    demo.review_and_award().await?;

    section("before: the federation in step");
    demo.report().await?;

    section(&format!("cut: the link {CUT} -> vn goes down"));
    let during_cut = demo.cut_and_write().await?;

    section(&format!("while {CUT} is cut off"));
    demo.report().await?;
    demo.report_cut(&during_cut).await?;

    section(&format!("heal: the link {CUT} -> vn comes back"));
    let (took, at_heal) = demo.heal().await?;

    section(&format!(
        "after: healed, in step {:.1} s later",
        took.as_secs_f64()
    ));
    demo.report().await?;
    print_bytes(demo.fed, &at_heal);
    demo.check(&during_cut).await?;
    demo.check_links().await?;
    demo.summary().await
}

/// The demo's state between its steps.
struct Demo<'a> {
    fed: &'a mut Federation,
    args: &'a DemoArgs,
    p: Progress,
    /// Longest wait for the federation to get in step.
    limit: Duration,
    today: Date,
    year: i32,
    /// The national campaign's id.
    campaign: String,
    rng: Rng,
    roster: Roster,
    initiatives: Vec<Recorded>,
}

/// What was written while the link was cut.
struct DuringCut {
    /// Members created before the cut.
    before: usize,
    /// The initiative the national node recognised.
    recognised: String,
    /// The initiative the district added to the same emulation record.
    added: String,
    /// The campaign the national node launched.
    campaign: String,
}

impl Demo<'_> {
    /// Waits until every link (but `except`) is in step.
    async fn converge(&self, except: Option<(&str, &str)>, what: &str) -> Result<Duration> {
        converge(self.fed, except, self.limit, what).await
    }

    /// The tree, one level at a time: a parent creates its child's unit
    /// record, then the child's node starts and receives it.
    async fn start_nodes(&mut self) -> Result<()> {
        let fed = &mut *self.fed;
        let mut root = NodeSpec::root(NATIONAL, NATIONAL, NATIONAL_NAME);
        if let Some(url) = &self.args.national_db {
            root = root.on_database(url);
        }
        let vn = fed.add(root).await.context("starting the national node")?;
        let docs = vn.app.store.doc_count().await?;
        if docs > 1 {
            bail!(
                "the national database already holds {docs} documents (an earlier demo?): \
                 give --national-db an empty database"
            );
        }
        self.p.say(format!(
            "national node vn ({NATIONAL_NAME}) started on {}",
            if self.args.national_db.is_some() {
                "PostgreSQL"
            } else {
                "SQLite"
            }
        ));
        for prov in TREE {
            fed.node(NATIONAL)
                .create_unit(prov.id, prov.name, "provincial", NATIONAL)
                .await?;
            fed.add(NodeSpec::child(prov.id, prov.id, &[NATIONAL]))
                .await?;
        }
        for prov in TREE {
            wait_knows_unit(fed, prov.id, self.limit).await?;
        }
        self.p.say(format!(
            "{} province nodes started, each with its unit record from vn: {}",
            TREE.len(),
            TREE.iter()
                .map(|p| short_name(p.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for prov in TREE {
            for d in prov.districts {
                fed.node(prov.id)
                    .create_unit(d.id, d.name, d.kind, prov.id)
                    .await?;
                fed.add(NodeSpec::child(d.id, d.id, &[prov.id])).await?;
            }
        }
        let mut names = Vec::new();
        for prov in TREE {
            for d in prov.districts {
                wait_knows_unit(fed, d.id, self.limit).await?;
                for g in d.grassroots {
                    fed.node(d.id)
                        .create_unit(g.id, g.name, "grassroots", d.id)
                        .await?;
                }
                names.push(short_name(d.name));
            }
        }
        self.p.say(format!(
            "{} district/commune nodes started, each with its unit record from its province ({}); \
             they created {} grassroots unions",
            names.len(),
            names.join(", "),
            grassroots_count()
        ));
        Ok(())
    }

    /// Rosters, imported at the district nodes.
    async fn import_rosters(&mut self) -> Result<()> {
        let shares = split(self.args.members, TREE.iter().flat_map(|p| p.districts));
        for prov in TREE {
            for d in prov.districts {
                let mut rows = Vec::new();
                for (g, n) in d.grassroots.iter().zip(&shares[d.id]) {
                    for k in 0..*n {
                        let m = person(
                            &mut self.rng,
                            &mut self.roster,
                            prov,
                            d,
                            g,
                            k == 0,
                            self.today,
                        );
                        rows.push((g, m));
                    }
                }
                import(self.fed.node(d.id), rows, &mut self.roster).await?;
            }
        }
        self.p.say(format!(
            "{} members imported at the district nodes (ImportMembers; names, dates, card and CCCD numbers)",
            self.roster.created
        ));
        Ok(())
    }

    /// The national campaign, with quotas per province.
    async fn launch_campaign(&mut self) -> Result<()> {
        let year = self.year;
        let vn = self.fed.node(NATIONAL);
        vn.campaigns()
            .launch_campaign(pb::LaunchCampaignRequest {
                id: Some(self.campaign.clone()),
                launching_unit_id: NATIONAL.into(),
                title: format!("Lao động giỏi, lao động sáng tạo {year}"),
                theme: "Đổi mới sáng tạo, nâng cao năng suất lao động".into(),
                starts_on: format!("{year}-01-01"),
                ends_on: format!("{year}-12-31"),
                scope_unit_id: NATIONAL.into(),
            })
            .await
            .context("launching the national campaign")?;
        vn.campaigns()
            .set_plans(pb::SetPlansRequest {
                campaign_id: self.campaign.clone(),
                plans: TREE
                    .iter()
                    .map(|prov| pb::Plan {
                        unit_id: prov.id.into(),
                        initiative_quota: prov.quota.0,
                        works_quota: prov.quota.1,
                    })
                    .collect(),
            })
            .await
            .context("setting the campaign's plans")?;
        self.p.say(format!(
            "vn launched \"Lao động giỏi, lao động sáng tạo {year}\" with initiative quotas per province ({})",
            TREE.iter()
                .map(|p| format!("{} {}", short_name(p.name), p.quota.0))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let took = self
            .converge(None, "the campaign reaching every node")
            .await?;
        self.p.say(format!(
            "the campaign reached every node ({:.1} s)",
            took.as_secs_f64()
        ));
        Ok(())
    }

    /// The districts register their grassroots unions and record their
    /// initiatives and dedicated works.
    async fn emulate(&mut self) -> Result<()> {
        let (today, year) = (self.today, self.year);
        let mut works = 0;
        for prov in TREE {
            for d in prov.districts {
                let node = self.fed.node(d.id);
                for g in d.grassroots {
                    node.emulation()
                        .register(pb::RegisterRequest {
                            unit_id: g.id.into(),
                            campaign_id: self.campaign.clone(),
                            registered_on: clamp(today, year, 2, 15).to_string(),
                            pledge: "Hoàn thành vượt kế hoạch sáng kiến; bảo đảm an toàn, vệ sinh lao động".into(),
                        })
                        .await
                        .with_context(|| format!("registering {}", g.id))?;
                    let count = if matches!(g.profile, Profile::Factory | Profile::Hospital) {
                        3
                    } else {
                        2
                    };
                    for (k, title) in initiative_titles(g.profile).iter().take(count).enumerate() {
                        let i = node
                            .emulation()
                            .record_initiative(pb::RecordInitiativeRequest {
                                unit_id: g.id.into(),
                                campaign_id: self.campaign.clone(),
                                title: (*title).into(),
                                authors: self.roster.authors(g.id, k),
                                value_vnd: 500_000 * (40 + self.rng.below(860) as i64),
                                submitted_on: clamp(today, year, 3 + k as u8 * 2, 10).to_string(),
                            })
                            .await
                            .with_context(|| format!("recording an initiative of {}", g.id))?
                            .into_inner();
                        self.initiatives.push(Recorded {
                            province: prov.id,
                            unit: g.id,
                            id: i.id,
                            title: i.title,
                        });
                    }
                    let count = if g.profile == Profile::Factory { 2 } else { 1 };
                    for (k, name) in work_names(g.profile).iter().take(count).enumerate() {
                        node.emulation()
                            .record_work(pb::RecordWorkRequest {
                                unit_id: g.id.into(),
                                campaign_id: self.campaign.clone(),
                                name: (*name).into(),
                                value_vnd: 1_000_000 * (50 + self.rng.below(850) as i64),
                                plaque: (works + k) % 3 == 0,
                                completed_on: clamp(today, year, 4 + k as u8 * 3, 30).to_string(),
                            })
                            .await
                            .with_context(|| format!("recording a work of {}", g.id))?;
                    }
                    works += count;
                }
            }
        }
        self.p.say(format!(
            "the districts registered their grassroots unions for the campaign and recorded \
             {} initiatives and {works} dedicated works",
            self.initiatives.len()
        ));
        let took = self
            .converge(None, "the initiatives reaching the provinces")
            .await?;
        self.p.say(format!(
            "the initiatives reached the provinces and vn ({:.1} s)",
            took.as_secs_f64()
        ));
        Ok(())
    }

    /// The provinces review their initiatives; Hậu Giang recognises one
    /// and decides an award for its authors and for a collective.
    async fn review_and_award(&mut self) -> Result<()> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut recognised = None;
        for i in &self.initiatives {
            let n = counts.entry(i.province).or_default();
            *n += 1;
            let (status, note) = match *n % 5 {
                4 => (
                    pb::InitiativeStatus::Rejected,
                    "Chưa chứng minh được hiệu quả áp dụng",
                ),
                3 => (pb::InitiativeStatus::UnderReview, "Hội đồng đang thẩm định"),
                _ => (
                    pb::InitiativeStatus::Valid,
                    "Hội đồng sáng kiến cấp tỉnh công nhận",
                ),
            };
            let node = self.fed.node(i.province);
            set_status(node, &self.campaign, i, status, "", note).await?;
            if i.province == "hau-giang"
                && status == pb::InitiativeStatus::Valid
                && recognised.is_none()
            {
                set_status(
                    node,
                    &self.campaign,
                    i,
                    pb::InitiativeStatus::Recognised,
                    "cấp tỉnh",
                    "Đề nghị Tổng Liên đoàn xét tặng Bằng Lao động sáng tạo",
                )
                .await?;
                recognised = Some(i);
            }
        }
        self.p.say(
            "the provinces reviewed the initiatives: valid, under review or rejected; \
             Hậu Giang recognised one at provincial level",
        );

        let r = recognised.context("Hậu Giang recognised no initiative")?;
        let mut recipients = vec![pb::Recipient {
            who: Some(pb::recipient::Who::UnitId(
                "cta-giay-da-tan-phu-thanh".into(),
            )),
        }];
        for id in self.roster.author_ids(r.unit, 0) {
            recipients.push(pb::Recipient {
                who: Some(pb::recipient::Who::MemberId(id)),
            });
        }
        let year = self.year;
        let award = self
            .fed
            .node("hau-giang")
            .awards()
            .decide_award(pb::DecideAwardRequest {
                issuing_unit_id: "hau-giang".into(),
                decision_no: format!("125/QĐ-LĐLĐ/{year}"),
                decided_on: self.today.to_string(),
                effective_on: self.today.to_string(),
                award_type: "bang-khen-cap-tinh".into(),
                recipients,
                campaign_id: Some(self.campaign.clone()),
                proposal_id: None,
                reason: format!(
                    "Có thành tích xuất sắc trong phong trào thi đua \"Lao động giỏi, lao động sáng tạo\" năm {year}"
                ),
            })
            .await
            .context("Hậu Giang deciding an award")?
            .into_inner();
        self.p.say(format!(
            "Hậu Giang decided award {} (Bằng khen của LĐLĐ tỉnh): one grassroots union and {} members",
            award.decision_no,
            award.recipients.len() - 1
        ));
        let took = self.converge(None, "the reviews and the award").await?;
        self.p.say(format!(
            "every node is in step ({:.1} s)",
            took.as_secs_f64()
        ));
        Ok(())
    }

    /// The national node's reports and every link's state.
    async fn report(&self) -> Result<()> {
        let active = national_report(self.fed, &self.campaign).await?;
        println!(
            "national members: {active} (created so far: {})",
            self.roster.created
        );
        print_edges(&edges(self.fed).await?);
        Ok(())
    }

    /// Cuts the link, and writes on both sides of it.
    async fn cut_and_write(&mut self) -> Result<DuringCut> {
        let before = self.roster.created;
        self.fed.link(CUT, NATIONAL).cut();
        self.p.say(format!(
            "link {CUT} -> vn cut (its open connections closed, new ones refused)"
        ));
        let kg = TREE.iter().find(|p| p.id == CUT).expect("the cut province");
        let pq = &kg.districts[0];
        let extra = (self.args.members / 10).max(3);
        let shares = split(extra, std::iter::once(pq));
        let mut rows = Vec::new();
        for (g, n) in pq.grassroots.iter().zip(&shares[pq.id]) {
            for _ in 0..*n {
                let mut m = person(
                    &mut self.rng,
                    &mut self.roster,
                    kg,
                    pq,
                    g,
                    false,
                    self.today,
                );
                m.joined_on = self.today.to_string();
                rows.push((g, m));
            }
        }
        import(self.fed.node(pq.id), rows, &mut self.roster).await?;
        self.p.say(format!(
            "{}: {} new members admitted below {CUT} (written at {})",
            pq.id,
            self.roster.created - before,
            pq.id
        ));

        // Both ends edit the same emulation record: the national node
        // recognises a valid initiative, the district adds one.
        let vn = self.fed.node(NATIONAL);
        let mut valid = None;
        for i in self.initiatives.iter().filter(|i| i.unit == MERGE_UNIT) {
            if initiative_status(vn, MERGE_UNIT, &self.campaign, &i.id).await?
                == pb::InitiativeStatus::Valid
            {
                valid = Some(i);
                break;
            }
        }
        let valid = valid.context("no valid initiative below the cut province to recognise")?;
        set_status(
            vn,
            &self.campaign,
            valid,
            pb::InitiativeStatus::Recognised,
            "Tổng Liên đoàn",
            "Tặng Bằng Lao động sáng tạo",
        )
        .await?;
        self.p.say(format!(
            "vn: initiative \"{}\" of {MERGE_UNIT} recognised by the Tổng Liên đoàn (written at vn)",
            valid.title
        ));
        let added = self
            .fed
            .node(pq.id)
            .emulation()
            .record_initiative(pb::RecordInitiativeRequest {
                unit_id: MERGE_UNIT.into(),
                campaign_id: self.campaign.clone(),
                title: "Sổ tay điện tử hướng dẫn người bệnh là du khách nước ngoài".into(),
                authors: self.roster.authors(MERGE_UNIT, 2),
                value_vnd: 85_000_000,
                submitted_on: self.today.to_string(),
            })
            .await
            .context("recording an initiative during the cut")?
            .into_inner();
        self.p.say(format!(
            "{}: a new initiative \"{}\" in the same emulation record of {MERGE_UNIT} (written at {})",
            pq.id, added.title, pq.id
        ));

        let year = self.year;
        let campaign = format!("xanh-sach-dep-{year}");
        let title = format!("Xanh - Sạch - Đẹp, bảo đảm an toàn, vệ sinh lao động {year}");
        vn.campaigns()
            .launch_campaign(pb::LaunchCampaignRequest {
                id: Some(campaign.clone()),
                launching_unit_id: NATIONAL.into(),
                title: title.clone(),
                theme: "Nơi làm việc an toàn, môi trường xanh".into(),
                starts_on: self.today.to_string(),
                ends_on: format!("{year}-12-31"),
                scope_unit_id: NATIONAL.into(),
            })
            .await
            .context("launching a campaign during the cut")?;
        self.p.say(format!(
            "vn: a new national campaign \"{title}\" ({campaign})"
        ));

        let took = self
            .converge(
                Some((CUT, NATIONAL)),
                "every link but the cut one getting in step",
            )
            .await?;
        self.p.say(format!(
            "every other link is in step ({:.1} s): the writes went everywhere the cut lets them",
            took.as_secs_f64()
        ));
        Ok(DuringCut {
            before,
            recognised: valid.id.clone(),
            added: added.id,
            campaign,
        })
    }

    /// What the two sides of the cut hold.
    async fn report_cut(&self, cut: &DuringCut) -> Result<()> {
        let kg_members = active_members(self.fed.node(CUT), CUT).await?;
        println!(
            "{CUT} members: {kg_members} at the province node, the {} new ones included",
            self.roster.created - cut.before
        );
        let (knows, lacks) = self.campaign_holders(&cut.campaign).await?;
        println!(
            "new campaign {}: held by {}; not yet by {}",
            cut.campaign,
            list_or_none(&knows),
            list_or_none(&lacks)
        );
        Ok(())
    }

    /// The nodes that hold campaign `id`, and those that do not.
    async fn campaign_holders(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let id = hopluu_model::CampaignId::parse("campaign", id)?;
        let (mut knows, mut lacks) = (Vec::new(), Vec::new());
        for n in self.fed.nodes() {
            if n.app.store.campaign(&id).await?.is_some() {
                knows.push(n.id.clone());
            } else {
                lacks.push(n.id.clone());
            }
        }
        Ok((knows, lacks))
    }

    /// Heals the link and waits until every link is in step; returns how
    /// long that took and the proxies' counters at the heal.
    async fn heal(&mut self) -> Result<(Duration, HashMap<(String, String), ProxyStats>)> {
        let at_heal = self
            .fed
            .links()
            .map(|(c, u, proxy)| ((c.to_owned(), u.to_owned()), proxy.stats()))
            .collect();
        self.fed.link(CUT, NATIONAL).heal();
        self.p.say(format!("link {CUT} -> vn healed"));
        let took = self.converge(None, "the federation after healing").await?;
        self.p.say(format!(
            "every link is in step again, {:.1} s after healing",
            took.as_secs_f64()
        ));
        Ok((took, at_heal))
    }

    /// Fails unless every write of the cut is everywhere it belongs.
    async fn check(&self, cut: &DuringCut) -> Result<()> {
        println!();
        let mut problems = Vec::new();
        let vn = active_members(self.fed.node(NATIONAL), NATIONAL).await?;
        if vn as usize != self.roster.created {
            problems.push(format!(
                "vn counts {vn} active members, {} were created",
                self.roster.created
            ));
        }
        let district = self.fed.node(MERGE_UNIT_NODE);
        for node in [self.fed.node(NATIONAL), district] {
            let e = node
                .emulation()
                .get_emulation(pb::GetEmulationRequest {
                    unit_id: MERGE_UNIT.into(),
                    campaign_id: self.campaign.clone(),
                })
                .await?
                .into_inner();
            let added = e.initiatives.iter().any(|i| i.id == cut.added);
            let recognised = e.initiatives.iter().any(|i| {
                i.id == cut.recognised
                    && i.status == pb::InitiativeStatus::Recognised as i32
                    && i.recognised_level == "Tổng Liên đoàn"
            });
            println!(
                "{MERGE_UNIT}'s emulation record at {}: {} initiatives; the one {} added during the cut: {}; vn's recognition: {}",
                node.id,
                e.initiatives.len(),
                district.id,
                present(added),
                present(recognised)
            );
            if !added || !recognised {
                problems.push(format!(
                    "{} lacks an edit made during the cut to {MERGE_UNIT}'s emulation record",
                    node.id
                ));
            }
        }
        let (knows, lacks) = self.campaign_holders(&cut.campaign).await?;
        if lacks.is_empty() {
            println!(
                "new campaign {}: held by all {} nodes",
                cut.campaign,
                knows.len()
            );
        } else {
            println!(
                "new campaign {}: MISSING at {}",
                cut.campaign,
                lacks.join(", ")
            );
        }
        if !lacks.is_empty() {
            problems.push(format!(
                "{} lack campaign {}",
                lacks.join(", "),
                cut.campaign
            ));
        }
        if !problems.is_empty() {
            bail!("replication lost data: {}", problems.join("; "));
        }
        Ok(())
    }

    /// `hopluu check` on every link, from its child's end: the child asks
    /// its parent (at its configured upstream address, the link's proxy)
    /// for the heads of every document in the child's scope, and compares
    /// them with its own, both ways. One line per link; fails naming the
    /// link and the documents if any differ.
    async fn check_links(&self) -> Result<()> {
        println!();
        println!(
            "Convergence check of every link (`hopluu check` at the child, against its parent):"
        );
        let mut problems = Vec::new();
        for (c, u) in links_in_order() {
            let r = self.fed.node(c).check_peer(u, None).await?;
            println!("  {}", crate::edges::check_summary(&r));
            if r.differing > 0 || r.compared == 0 {
                let docs: Vec<String> = r
                    .differences
                    .iter()
                    .map(|d| format!("{} {}", d.doc_id, crate::edges::check_state(d.state)))
                    .collect();
                problems.push(format!(
                    "{c} -> {u}: {} of {} documents differ: {}",
                    r.differing,
                    r.compared,
                    docs.join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            bail!(
                "the convergence check found links out of step: {}",
                problems.join("; ")
            );
        }
        Ok(())
    }

    /// Each node's database, documents and members.
    async fn summary(&self) -> Result<Summary> {
        let mut nodes = Vec::new();
        for n in self.fed.nodes() {
            nodes.push(NodeSummary {
                id: n.id.clone(),
                database: match &n.config.database.url {
                    Some(url) => hopluu_store::db::redact(url),
                    None => self
                        .args
                        .data_dir
                        .join(&n.id)
                        .join("hopluu.sqlite")
                        .display()
                        .to_string(),
                },
                documents: n.app.store.doc_count().await?,
                members: active_members(n, &n.unit).await?,
            });
        }
        Ok(Summary { nodes })
    }
}

// ---- sample data -----------------------------------------------------------

/// A small deterministic generator (splitmix64): the same arguments give
/// the same federation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn weighted<'a>(&mut self, xs: &'a [(&'a str, usize)]) -> &'a str {
        let total: usize = xs.iter().map(|(_, w)| w).sum();
        let mut k = self.below(total);
        for (x, w) in xs {
            if k < *w {
                return x;
            }
            k -= w;
        }
        xs[xs.len() - 1].0
    }
}

/// `n` members shared among each district's grassroots unions by weight,
/// every union getting at least one.
fn split<'a>(
    n: usize,
    districts: impl Iterator<Item = &'a District> + Clone,
) -> HashMap<&'static str, Vec<usize>> {
    let all: Vec<(&'static str, usize)> = districts
        .clone()
        .flat_map(|d| d.grassroots.iter().map(move |g| (d.id, g.weight)))
        .collect();
    let total: usize = all.iter().map(|(_, w)| w).sum();
    let mut shares: Vec<usize> = all.iter().map(|(_, w)| (n * w / total).max(1)).collect();
    let mut given: usize = shares.iter().sum();
    let mut i = 0;
    let len = shares.len();
    while given < n {
        shares[i % len] += 1;
        given += 1;
        i += 1;
    }
    while given > n {
        let biggest = (0..shares.len())
            .max_by_key(|&k| shares[k])
            .expect("at least one union");
        shares[biggest] -= 1;
        given -= 1;
    }
    let mut out: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for ((d, _), s) in all.iter().zip(shares) {
        out.entry(*d).or_default().push(s);
    }
    out
}

const FAMILY: &[(&str, usize)] = &[
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Huỳnh", 4),
    ("Hoàng", 3),
    ("Phan", 4),
    ("Võ", 4),
    ("Vũ", 2),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
];
const MIDDLE_MALE: &[&str] = &[
    "Văn", "Văn", "Văn", "Minh", "Hữu", "Quốc", "Đức", "Thanh", "Công", "Hoàng", "Tấn", "Chí",
];
const MIDDLE_FEMALE: &[&str] = &[
    "Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bích", "Hồng", "Thùy",
];
const GIVEN_MALE: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Hải", "Hiếu", "Hùng", "Khang", "Khoa", "Long", "Lộc", "Minh",
    "Nam", "Nghĩa", "Phát", "Phong", "Phúc", "Quang", "Sơn", "Tài", "Tâm", "Thắng", "Thành",
    "Thịnh", "Toàn", "Trung", "Tuấn", "Vinh", "Bảo", "Đạt", "Huy", "Kiệt", "Nhân", "Tín", "Trí",
];
const GIVEN_FEMALE: &[&str] = &[
    "Anh", "Chi", "Diễm", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Huyền", "Lan",
    "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Thư",
    "Trang", "Trinh", "Tuyết", "Uyên", "Vân", "Yến", "Thủy", "Hiền", "Ngọc", "Nhi",
];

/// A name and ethnicity; religion as the region's spread suggests.
fn name(rng: &mut Rng, region: Region, female: bool) -> (String, &'static str, &'static str) {
    let kinh = |rng: &mut Rng| {
        let family = rng.weighted(FAMILY);
        let (middle, given) = if female {
            (rng.pick(MIDDLE_FEMALE), rng.pick(GIVEN_FEMALE))
        } else {
            (rng.pick(MIDDLE_MALE), rng.pick(GIVEN_MALE))
        };
        format!("{family} {middle} {given}")
    };
    let pair = |rng: &mut Rng, families: &[&str], male: &[&str], fem: &[&str]| {
        let family = rng.pick(families).to_owned();
        let given = if female {
            rng.pick(fem)
        } else {
            rng.pick(male)
        };
        format!("{family} {given}")
    };
    match region {
        Region::South => {
            let ethnicity = rng.weighted(&[("Kinh", 92), ("Khmer", 6), ("Hoa", 2)]);
            match ethnicity {
                "Khmer" => (
                    pair(
                        rng,
                        &["Danh", "Thạch", "Sơn", "Kim", "Lâm"],
                        &["Hùng", "Sang", "Út", "Phương", "Tha", "Sơn"],
                        &["Thị Sa Rên", "Thị Phol", "Thị Mỹ", "Thị Nết", "Thị Út"],
                    ),
                    "Khmer",
                    "Phật giáo",
                ),
                "Hoa" => (
                    pair(
                        rng,
                        &["Lâm", "Quách", "Trương", "Lý", "Hứa"],
                        &["Văn Phát", "Minh Quang", "Hoàng Long", "Văn Tài"],
                        &["Ngọc Mai", "Mỹ Linh", "Thị Huệ", "Kim Phượng"],
                    ),
                    "Hoa",
                    rng.weighted(&[("Không", 60), ("Phật giáo", 40)]),
                ),
                _ => (
                    kinh(rng),
                    "Kinh",
                    rng.weighted(&[
                        ("Không", 64),
                        ("Phật giáo", 17),
                        ("Phật giáo Hòa Hảo", 11),
                        ("Công giáo", 5),
                        ("Cao Đài", 3),
                    ]),
                ),
            }
        }
        Region::NorthWest => {
            let ethnicity = rng.weighted(&[("Kinh", 42), ("Thái", 30), ("Mông", 18), ("Dao", 10)]);
            match ethnicity {
                "Thái" => (
                    pair(
                        rng,
                        &["Lò", "Tòng", "Lường", "Quàng", "Điêu", "Cầm"],
                        &[
                            "Văn Hặc",
                            "Văn Xuân",
                            "Văn Tiên",
                            "Văn Pánh",
                            "Văn Khiêm",
                            "Văn Chung",
                        ],
                        &["Thị Ánh", "Thị Phóng", "Thị Hương", "Thị Xuân", "Thị Ngoan"],
                    ),
                    "Thái",
                    "Không",
                ),
                "Mông" => (
                    pair(
                        rng,
                        &["Giàng", "Vàng", "Sùng", "Thào", "Lý", "Mùa", "Hờ"],
                        &["A Páo", "A Sử", "A Chứ", "A Lử", "A Dình", "A Tủa"],
                        &[
                            "Thị Mai",
                            "Thị Dợ",
                            "Thị Sua",
                            "Thị Mỷ",
                            "Thị Dung",
                            "Thị Pà",
                        ],
                    ),
                    "Mông",
                    rng.weighted(&[("Không", 85), ("Tin Lành", 15)]),
                ),
                "Dao" => (
                    pair(
                        rng,
                        &["Tẩn", "Phàn", "Chảo", "Lý", "Đặng"],
                        &["Láo Lở", "A Tả", "Văn Sơn", "Văn Chiêu"],
                        &["Thị Mẩy", "Thị Xuân", "Thị Chiêm", "Thị Lai"],
                    ),
                    "Dao",
                    "Không",
                ),
                _ => (kinh(rng), "Kinh", "Không"),
            }
        }
    }
}

fn positions(p: Profile) -> &'static [(&'static str, usize)] {
    match p {
        Profile::School => &[
            ("Giáo viên", 70),
            ("Tổ trưởng chuyên môn", 8),
            ("Nhân viên văn phòng", 8),
            ("Kế toán", 3),
            ("Thủ thư", 3),
            ("Nhân viên y tế trường học", 3),
            ("Bảo vệ", 5),
        ],
        Profile::Hospital => &[
            ("Điều dưỡng", 40),
            ("Bác sĩ", 22),
            ("Kỹ thuật viên xét nghiệm", 8),
            ("Dược sĩ", 7),
            ("Hộ lý", 10),
            ("Nhân viên hành chính", 8),
            ("Kế toán", 5),
        ],
        Profile::Factory => &[
            ("Công nhân may", 55),
            ("Công nhân gò", 15),
            ("Tổ trưởng sản xuất", 8),
            ("Kỹ thuật viên", 7),
            ("Nhân viên kho", 7),
            ("Nhân viên kiểm hàng", 8),
        ],
        Profile::Hydro => &[
            ("Kỹ sư vận hành", 25),
            ("Công nhân vận hành", 30),
            ("Công nhân sửa chữa", 20),
            ("Trưởng ca", 8),
            ("Nhân viên an toàn", 7),
            ("Nhân viên hành chính", 10),
        ],
        Profile::Port => &[
            ("Công nhân bốc xếp", 45),
            ("Lái cẩu", 15),
            ("Nhân viên điều độ", 12),
            ("Nhân viên giao nhận", 12),
            ("Thủ kho", 8),
            ("Kế toán", 8),
        ],
        Profile::Water => &[
            ("Công nhân lắp đặt", 35),
            ("Công nhân vận hành trạm bơm", 25),
            ("Kỹ sư cấp thoát nước", 15),
            ("Nhân viên thu ngân", 15),
            ("Kế toán", 10),
        ],
    }
}

fn female_percent(p: Profile) -> usize {
    match p {
        Profile::School => 72,
        Profile::Hospital => 65,
        Profile::Factory => 78,
        Profile::Hydro => 18,
        Profile::Port => 12,
        Profile::Water => 30,
    }
}

fn initiative_titles(p: Profile) -> &'static [&'static str] {
    match p {
        Profile::School => &[
            "Ứng dụng sổ điểm điện tử trong quản lý học tập",
            "Dạy học STEM với vật liệu tái chế",
            "Ngân hàng đề ôn thi tốt nghiệp THPT dùng chung",
        ],
        Profile::Hospital => &[
            "Rút ngắn thời gian chờ khám bằng đặt lịch trực tuyến",
            "Bệnh án điện tử tại khoa Nội tổng hợp",
            "Bảng kiểm phòng ngừa té ngã cho người bệnh cao tuổi",
        ],
        Profile::Factory => &[
            "Cải tiến đồ gá may mũ giày, giảm 12% thời gian thao tác",
            "Tận dụng da vụn làm phụ kiện xuất khẩu",
            "Bố trí chuyền may theo mô hình sản xuất tinh gọn",
        ],
        Profile::Hydro => &[
            "Cải tiến hệ thống làm mát ổ đỡ tổ máy",
            "Giám sát mực nước hồ chứa bằng cảm biến từ xa",
            "Rút ngắn thời gian dừng máy khi kiểm tra cánh hướng nước",
        ],
        Profile::Port => &[
            "Tối ưu sơ đồ xếp dỡ hàng tổng hợp tại cầu cảng",
            "Phần mềm theo dõi tàu cập cảng theo thời gian thực",
            "Cải tiến móc cẩu an toàn cho hàng bao",
        ],
        Profile::Water => &[
            "Dò tìm rò rỉ đường ống bằng thiết bị âm học",
            "Thu tiền nước qua ví điện tử",
            "Tự động hóa trạm bơm tăng áp",
        ],
    }
}

fn work_names(p: Profile) -> &'static [&'static str] {
    match p {
        Profile::School => &["Sửa chữa phòng học và nhà vệ sinh cho học sinh"],
        Profile::Hospital => &["Khám bệnh, cấp thuốc miễn phí cho đoàn viên khó khăn"],
        Profile::Factory => &[
            "Nhà trọ công nhân \"Mái ấm Công đoàn\"",
            "Nhà ăn ca đạt chuẩn an toàn thực phẩm",
        ],
        Profile::Hydro => &["Đường giao thông nông thôn vào bản"],
        Profile::Port => &["Nhà nghỉ giữa ca cho công nhân bốc xếp"],
        Profile::Water => &["Lắp đặt nước sạch miễn phí cho hộ nghèo"],
    }
}

/// Members created so far, and the first members of each union (the
/// authors of its initiatives).
#[derive(Default)]
struct Roster {
    created: usize,
    serial: usize,
    first: HashMap<&'static str, Vec<(String, String)>>,
}

impl Roster {
    /// One or two authors for a union's `k`-th initiative.
    fn authors(&self, unit: &str, k: usize) -> Vec<String> {
        self.author_pairs(unit, k)
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }
    fn author_ids(&self, unit: &str, k: usize) -> Vec<String> {
        self.author_pairs(unit, k)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }
    fn author_pairs(&self, unit: &str, k: usize) -> Vec<(String, String)> {
        let first = self.first.get(unit).map(Vec::as_slice).unwrap_or(&[]);
        if first.is_empty() {
            return vec![(String::new(), "Ban Chấp hành Công đoàn cơ sở".to_owned())];
        }
        let a = (1 + 2 * k) % first.len();
        let b = (2 + 2 * k) % first.len();
        let mut out = vec![first[a].clone()];
        if b != a {
            out.push(first[b].clone());
        }
        out
    }
}

/// A date of `year` no later than today.
fn clamp(today: Date, year: i32, month: u8, day: u8) -> Date {
    let d = Date::new(year, month.clamp(1, 12), day.min(28)).unwrap_or(today);
    if d > today { today } else { d }
}

fn person(
    rng: &mut Rng,
    roster: &mut Roster,
    prov: &Province,
    d: &District,
    g: &Grassroots,
    chair: bool,
    today: Date,
) -> pb::MemberInput {
    roster.serial += 1;
    let serial = roster.serial;
    let female = rng.percent(female_percent(g.profile));
    let (full_name, ethnicity, religion) = name(rng, prov.region, female);
    let age = 20 + rng.below(40) as i32;
    let birth = Date::new(
        today.year() - age,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
    .expect("a valid date");
    let joined_year = (birth.year() + 19 + rng.below(10) as i32).min(today.year());
    let joined = clamp(
        today,
        joined_year,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
    .max(birth.add_years(18));
    let century = if birth.year() >= 2000 { 2 } else { 0 };
    let national_id = format!(
        "{}{}{:02}{:06}",
        prov.cccd,
        century + usize::from(female),
        birth.year() % 100,
        serial % 1_000_000
    );
    let position = if chair {
        "Chủ tịch Công đoàn cơ sở"
    } else {
        rng.weighted(positions(g.profile))
    };
    pb::MemberInput {
        full_name,
        birth_date: birth.to_string(),
        gender: if female {
            pb::Gender::Female
        } else {
            pb::Gender::Male
        } as i32,
        card_number: format!("{}-{}-{serial:06}", prov.code, d.code),
        joined_on: joined.to_string(),
        position: position.into(),
        national_id,
        ethnicity: ethnicity.into(),
        religion: religion.into(),
    }
}

/// Imports `rows` at `node` in requests of 500 rows; every row must be
/// created.
async fn import(
    node: &LocalNode,
    rows: Vec<(&'static Grassroots, pb::MemberInput)>,
    roster: &mut Roster,
) -> Result<()> {
    for chunk in rows.chunks(500) {
        let request = pb::ImportMembersRequest {
            rows: chunk
                .iter()
                .enumerate()
                .map(|(i, (g, m))| pb::ImportRow {
                    line: i as u32 + 1,
                    unit_id: g.id.into(),
                    member: Some(m.clone()),
                })
                .collect(),
        };
        let results = node
            .members()
            .import_members(request)
            .await
            .with_context(|| format!("importing members at {}", node.id))?
            .into_inner()
            .results;
        for (r, (g, m)) in results.iter().zip(chunk) {
            if r.outcome != pb::ImportOutcome::Created as i32 {
                let outcome = pb::ImportOutcome::try_from(r.outcome)
                    .map(|o| o.as_str_name())
                    .unwrap_or("unknown outcome");
                let errors: Vec<String> = r
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.reason))
                    .collect();
                bail!(
                    "importing card {} at {}: {outcome} {}",
                    m.card_number,
                    node.id,
                    errors.join("; ")
                );
            }
            roster.created += 1;
            let first = roster.first.entry(g.id).or_default();
            if first.len() < 8 {
                first.push((r.member_id.clone(), m.full_name.clone()));
            }
        }
    }
    Ok(())
}

/// An initiative the demo recorded.
struct Recorded {
    province: &'static str,
    unit: &'static str,
    id: String,
    title: String,
}

async fn set_status(
    node: &LocalNode,
    campaign: &str,
    i: &Recorded,
    status: pb::InitiativeStatus,
    level: &str,
    note: &str,
) -> Result<()> {
    node.emulation()
        .set_initiative_status(pb::SetInitiativeStatusRequest {
            unit_id: i.unit.into(),
            campaign_id: campaign.into(),
            initiative_id: i.id.clone(),
            status: status as i32,
            recognised_level: level.into(),
            note: note.into(),
        })
        .await
        .with_context(|| format!("{} reviewing initiative \"{}\"", node.id, i.title))?;
    Ok(())
}

async fn initiative_status(
    node: &LocalNode,
    unit: &str,
    campaign: &str,
    id: &str,
) -> Result<pb::InitiativeStatus> {
    let e = node
        .emulation()
        .get_emulation(pb::GetEmulationRequest {
            unit_id: unit.into(),
            campaign_id: campaign.into(),
        })
        .await?
        .into_inner();
    let i = e
        .initiatives
        .iter()
        .find(|i| i.id == id)
        .with_context(|| format!("initiative {id} is not at {}", node.id))?;
    Ok(pb::InitiativeStatus::try_from(i.status).unwrap_or(pb::InitiativeStatus::Unspecified))
}

async fn wait_knows_unit(fed: &Federation, id: &str, limit: Duration) -> Result<()> {
    let node = fed.node(id);
    Federation::until(
        &format!("node {id} receiving its unit record from its parent"),
        limit,
        || async { Ok(node.knows_unit(&node.unit)) },
    )
    .await
}

// ---- reports ---------------------------------------------------------------

fn section(title: &str) {
    println!();
    println!("== {title} ==");
}

/// "Liên đoàn Lao động tỉnh Hậu Giang" -> "Hậu Giang".
fn short_name(name: &str) -> &str {
    for prefix in [
        "Liên đoàn Lao động tỉnh ",
        "Liên đoàn Lao động thành phố ",
        "Liên đoàn Lao động huyện ",
        "Công đoàn đặc khu ",
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return rest;
        }
    }
    name
}

async fn active_members(node: &LocalNode, unit: &str) -> Result<u64> {
    Ok(node
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: unit.into(),
        })
        .await
        .with_context(|| format!("members report at {}", node.id))?
        .into_inner()
        .total
        .map(|t| t.active)
        .unwrap_or(0))
}

/// Prints the national node's reports; returns its count of active members.
async fn national_report(fed: &Federation, campaign: &str) -> Result<u64> {
    let vn = fed.node(NATIONAL);
    let members = vn
        .reports()
        .members_report(pb::MembersReportRequest {
            unit_id: NATIONAL.into(),
        })
        .await
        .context("members report at vn")?
        .into_inner();
    println!("Members, as the national node vn sees them:");
    let mut t = Table::new(&["unit", "name", "active", "nam", "nữ", "records"]);
    for row in members.rows.iter().chain(members.total.as_ref()) {
        t.row(vec![
            row.unit_id.clone(),
            row.unit_name.clone(),
            row.active.to_string(),
            row.male.to_string(),
            row.female.to_string(),
            row.total.to_string(),
        ]);
    }
    print!("{}", t.render());

    let r = vn
        .reports()
        .initiatives_report(pb::InitiativesReportRequest {
            campaign_id: campaign.into(),
            unit_id: NATIONAL.into(),
        })
        .await
        .context("initiatives report at vn")?
        .into_inner();
    println!();
    println!("Initiatives in \"Lao động giỏi, lao động sáng tạo\" against plan, at vn:");
    print!("{}", crate::output::initiatives_table(&r).render());

    let w = vn
        .reports()
        .works_report(pb::WorksReportRequest {
            unit_id: NATIONAL.into(),
            campaign_id: Some(campaign.into()),
        })
        .await
        .context("works report at vn")?
        .into_inner()
        .total
        .unwrap_or_default();
    let a = vn
        .reports()
        .awards_report(pb::AwardsReportRequest {
            unit_id: NATIONAL.into(),
            year: None,
        })
        .await
        .context("awards report at vn")?
        .into_inner()
        .total
        .unwrap_or_default();
    println!();
    println!(
        "Dedicated works: {} worth {} ({} with a plaque); awards granted: {} (one per recipient)",
        w.count,
        vnd(w.value_vnd),
        w.plaques,
        a.count
    );
    Ok(members.total.map(|t| t.active).unwrap_or(0))
}

/// One link's state, read from the stores at its two ends.
struct Edge {
    child: String,
    upstream: String,
    cut: bool,
    open: u64,
    /// Documents the child holds, in the upstream's scope, that the
    /// upstream lacks (whole or in part).
    waiting_up: usize,
    /// The same the other way.
    waiting_down: usize,
    /// Unix milliseconds of the last exchange recorded at either end.
    last_seen: i64,
}

impl Edge {
    fn in_step(&self) -> bool {
        self.waiting_up == 0 && self.waiting_down == 0
    }
}

async fn docs_of(node: &LocalNode) -> Result<HashMap<DocId, FeedDoc>> {
    let scan = node.app.store.scan_feed(0, u32::MAX >> 1).await?;
    Ok(scan
        .docs
        .into_iter()
        .map(|f| (f.meta.id.clone(), f))
        .collect())
}

fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// Documents `from` holds that are in `to`'s scope (as `from` decides it,
/// as its sessions do) and that `to` does not hold whole.
async fn waiting(
    from: &LocalNode,
    from_docs: &HashMap<DocId, FeedDoc>,
    to: &LocalNode,
    to_docs: &HashMap<DocId, FeedDoc>,
) -> Result<usize> {
    let wanted: Vec<&FeedDoc> = {
        let tree = from.app.store.tree();
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
                .store
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

async fn edges(fed: &Federation) -> Result<Vec<Edge>> {
    let mut docs = HashMap::new();
    for n in fed.nodes() {
        docs.insert(n.id.clone(), docs_of(n).await?);
    }
    let mut out = Vec::new();
    for (c, u) in links_in_order() {
        let (child, up) = (fed.node(c), fed.node(u));
        let proxy = fed.link(c, u);
        let at_up = up.app.store.peer(c).await?;
        let at_child = child.app.store.peer(u).await?;
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
async fn converge(
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

fn print_edges(edges: &[Edge]) {
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

fn bytes(n: u64) -> String {
    if n < 10 * 1024 {
        format!("{n} B")
    } else if n < 10 * 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

fn print_bytes(fed: &Federation, at_heal: &HashMap<(String, String), ProxyStats>) {
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

fn list_or_none(xs: &[String]) -> String {
    if xs.is_empty() {
        "none".into()
    } else {
        xs.join(", ")
    }
}

fn present(b: bool) -> &'static str {
    if b { "present" } else { "MISSING" }
}

// ---- afterwards ------------------------------------------------------------

/// The port each node listens on when served again from its node.toml.
fn port_of(id: &str) -> u16 {
    let mut order = vec![NATIONAL];
    order.extend(TREE.iter().map(|p| p.id));
    order.extend(TREE.iter().flat_map(|p| p.districts.iter().map(|d| d.id)));
    7400 + order.iter().position(|x| *x == id).unwrap_or(0) as u16
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes DIR/<node>/node.toml for every node, so that each can be served
/// again as its own process on 127.0.0.1:74xx, dialling its parent there
/// over TLS with its certificate from DIR/pki.
fn write_configs(dir: &Path, national_db: Option<&str>) -> Result<()> {
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

fn finish(
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
