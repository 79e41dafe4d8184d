//! The demo's steps, in the order `script` runs them: start the nodes,
//! load the sample data, cut a province off while both sides write, heal
//! the link, and check that the federation is in step again.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hopluu_devcluster::federation::NodeSpec;
use hopluu_devcluster::proxy::ProxyStats;
use hopluu_proto::v1 as pb;

use super::links::{converge, edges, list_or_none, present, print_edges};
use super::people::{clamp, initiative_titles, person, split, work_names};
use super::records::{import, initiative_status, set_status, wait_knows_unit};
use super::report::{active_members, national_report, short_name};
use super::tree::{MERGE_UNIT, MERGE_UNIT_NODE, TREE, grassroots_count, links_in_order};
use super::{
    CUT, Demo, DuringCut, NATIONAL, NATIONAL_NAME, NodeSummary, Profile, Recorded, Summary,
};

impl Demo<'_> {
    /// Waits until every link (but `except`) is in step.
    pub(super) async fn converge(
        &self,
        except: Option<(&str, &str)>,
        what: &str,
    ) -> Result<Duration> {
        converge(self.fed, except, self.limit, what).await
    }

    /// The tree, one level at a time: a parent creates its child's unit
    /// record, then the child's node starts and receives it.
    pub(super) async fn start_nodes(&mut self) -> Result<()> {
        let fed = &mut *self.fed;
        let mut root = NodeSpec::root(NATIONAL, NATIONAL, NATIONAL_NAME);
        if let Some(url) = &self.args.national_db {
            root = root.on_database(url);
        }
        let vn = fed.add(root).await.context("starting the national node")?;
        // A fresh national node holds its unit's record and its node record.
        let docs = vn.app.store().doc_count().await?;
        if docs > 2 {
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
    pub(super) async fn import_rosters(&mut self) -> Result<()> {
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
    pub(super) async fn launch_campaign(&mut self) -> Result<()> {
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
    pub(super) async fn emulate(&mut self) -> Result<()> {
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
    pub(super) async fn review_and_award(&mut self) -> Result<()> {
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
    pub(super) async fn report(&self) -> Result<()> {
        let active = national_report(self.fed, &self.campaign).await?;
        println!(
            "national members: {active} (created so far: {})",
            self.roster.created
        );
        print_edges(&edges(self.fed).await?);
        Ok(())
    }

    /// Cuts the link, and writes on both sides of it.
    pub(super) async fn cut_and_write(&mut self) -> Result<DuringCut> {
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
    pub(super) async fn report_cut(&self, cut: &DuringCut) -> Result<()> {
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
    pub(super) async fn campaign_holders(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let id = hopluu_model::CampaignId::parse("campaign", id)?;
        let (mut knows, mut lacks) = (Vec::new(), Vec::new());
        for n in self.fed.nodes() {
            if n.app.store().campaign(&id).await?.is_some() {
                knows.push(n.id.clone());
            } else {
                lacks.push(n.id.clone());
            }
        }
        Ok((knows, lacks))
    }

    /// Heals the link and waits until every link is in step; returns how
    /// long that took and the proxies' counters at the heal.
    pub(super) async fn heal(
        &mut self,
    ) -> Result<(Duration, HashMap<(String, String), ProxyStats>)> {
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
    pub(super) async fn check(&self, cut: &DuringCut) -> Result<()> {
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
    pub(super) async fn check_links(&self) -> Result<()> {
        println!();
        println!(
            "Convergence check of every link (`hopluu check` at the child, against its parent):"
        );
        let mut problems = Vec::new();
        for (c, u) in links_in_order() {
            let r = self.fed.node(c).check_peer(u, None).await?;
            println!("  {}", crate::cmd::edges::check_summary(&r));
            if r.differing > 0 || r.compared == 0 {
                let docs: Vec<String> = r
                    .differences
                    .iter()
                    .map(|d| format!("{} {}", d.doc_id, crate::cmd::edges::check_state(d.state)))
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
    pub(super) async fn summary(&self) -> Result<Summary> {
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
                documents: n.app.store().doc_count().await?,
                members: active_members(n, &n.unit).await?,
            });
        }
        Ok(Summary { nodes })
    }
}
