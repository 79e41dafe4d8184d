//! Parts 1 and 2 run on a chain district -> province -> national, each
//! link through a counting proxy: its nodes, and the edits made at the
//! district with the time each reaches the levels above.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use automerge::ChangeHash;
use hopluu_devcluster::federation::{Federation, LocalNode, NodeSpec};
use hopluu_devcluster::proxy::FaultProxy;
use hopluu_model::{DocId, MemberId, member};
use hopluu_proto::v1 as pb;
use tokio::sync::watch;

use super::{EDIT_LIMIT, NATIONAL_NAME, confirm, first_move, wait_unit};
use crate::cmd::bench_common::member_input;

pub(super) const NAT: &str = "vn";

pub(super) const PROV: &str = "p00-node";

pub(super) const PROV_UNIT: &str = "p00";

pub(super) const DIST: &str = "p00-d0-node";

pub(super) const DIST_UNIT: &str = "p00-d0";

/// Grassroots unions at the district receiving the single edits.
pub(super) const DIST_GRASSROOTS: usize = 5;

/// Members added before anything is timed.
pub(super) const WARM_MEMBERS: usize = 20;

pub(super) struct Chain {
    pub(super) fed: Federation,
    /// Members at the district: (id, roster document).
    pub(super) members: Vec<(String, DocId)>,
    /// The district's heads of each roster document after the last edit.
    pub(super) heads: BTreeMap<DocId, Vec<ChangeHash>>,
    /// Next member number (card numbers are unique).
    pub(super) next: usize,
    /// Edits so far (positions are unique, so every update changes).
    pub(super) edits: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EditKind {
    Add,
    Update,
}

/// One timed edit.
pub(super) struct Timed {
    pub(super) local: Duration,
    pub(super) to_province: Duration,
    pub(super) to_national: Duration,
    /// Bytes of the roster change (`save_after` the heads before it).
    pub(super) change_bytes: usize,
}

impl Chain {
    pub(super) async fn start(root: &Path, national_url: Option<&str>) -> Result<Chain> {
        // The benchmark is one client driving the nodes as fast as they
        // answer: the per-caller request limit would measure itself.
        let mut fed = Federation::new(root).with_tuning(|c| c.limits.enabled = false);
        let mut spec = NodeSpec::root(NAT, NAT, NATIONAL_NAME);
        if let Some(url) = national_url {
            spec = spec.on_database(url);
        }
        fed.add(spec).await?;
        fed.node(NAT)
            .create_unit(PROV_UNIT, "LĐLĐ tỉnh P00", "provincial", NAT)
            .await?;
        fed.add(NodeSpec::child(PROV, PROV_UNIT, &[NAT])).await?;
        wait_unit(fed.node(PROV), PROV_UNIT).await?;
        fed.node(PROV)
            .create_unit(DIST_UNIT, "LĐLĐ huyện D0", "district", PROV_UNIT)
            .await?;
        fed.add(NodeSpec::child(DIST, DIST_UNIT, &[PROV])).await?;
        wait_unit(fed.node(DIST), DIST_UNIT).await?;
        for g in 0..DIST_GRASSROOTS {
            fed.node(DIST)
                .create_unit(
                    &grassroots_id(g),
                    &format!("CĐCS Trường {g}"),
                    "grassroots",
                    DIST_UNIT,
                )
                .await?;
        }
        for g in 0..DIST_GRASSROOTS {
            wait_unit(fed.node(NAT), &grassroots_id(g)).await?;
        }
        Ok(Chain {
            fed,
            members: Vec::new(),
            heads: BTreeMap::new(),
            next: 0,
            edits: 0,
        })
    }

    pub(super) fn node(&self, id: &str) -> &LocalNode {
        self.fed.node(id)
    }

    pub(super) fn links(&self) -> [&FaultProxy; 2] {
        [self.fed.link(DIST, PROV), self.fed.link(PROV, NAT)]
    }

    /// Makes one edit at the district and times its arrival at the
    /// province and the national node.
    pub(super) async fn edit(&mut self, kind: EditKind) -> Result<Timed> {
        let dist = self.node(DIST);
        let (prov, nat) = (self.node(PROV), self.node(NAT));
        let mut pf = prov.app.store().watch_feed();
        let mut nf = nat.app.store().watch_feed();
        let p0 = *pf.borrow_and_update();
        let n0 = *nf.borrow_and_update();
        let n = self.next;
        let e = self.edits;
        let mut known: Option<DocId> = None;
        let sent = Instant::now();
        let id = match kind {
            EditKind::Add => {
                let unit = grassroots_id(n % DIST_GRASSROOTS);
                dist.members()
                    .add_member(pb::AddMemberRequest {
                        unit_id: unit,
                        member: Some(member_input(n, "Đoàn viên")),
                    })
                    .await?
                    .into_inner()
                    .id
            }
            EditKind::Update => {
                let (id, doc) = self.members[e % self.members.len()].clone();
                known = Some(doc);
                dist.members()
                    .update_member(pb::UpdateMemberRequest {
                        member_id: id.clone(),
                        position: Some(format!("Tổ viên {e}")),
                        ..Default::default()
                    })
                    .await?;
                id
            }
        };
        let acked = Instant::now();
        let deadline = tokio::time::Instant::now() + EDIT_LIMIT;
        let store = dist.app.store();
        let locate = async {
            let doc = match known.clone() {
                Some(d) => d,
                None => {
                    let mid = MemberId::parse("member_id", &id)?;
                    let loc = store
                        .member_locations(&mid)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| anyhow!("member {id} not found at the district"))?;
                    member::roster_doc(&loc.unit, loc.bucket)
                }
            };
            let heads = store
                .doc_heads(&doc)
                .await?
                .ok_or_else(|| anyhow!("{doc} not stored at the district"))?;
            Ok::<_, anyhow::Error>((doc, heads))
        };
        let (pt, nt, located) = tokio::join!(
            first_move(&mut pf, p0, deadline),
            first_move(&mut nf, n0, deadline),
            locate
        );
        let (doc, heads) = located?;
        let targets = [(doc.clone(), heads.clone())];
        let pt = confirm(prov.app.store(), &mut pf, pt?, &targets, deadline)
            .await
            .context("at the province")?;
        let nt = confirm(nat.app.store(), &mut nf, nt?, &targets, deadline)
            .await
            .context("at the national node")?;
        let before = self.heads.get(&doc).cloned().unwrap_or_default();
        let change_bytes = store
            .read_doc(&doc, |d| d.save_after(&before).len())
            .await?
            .unwrap_or(0);
        self.heads.insert(doc.clone(), heads);
        if kind == EditKind::Add {
            self.members.push((id, doc));
            self.next += 1;
        }
        self.edits += 1;
        Ok(Timed {
            local: acked - sent,
            to_province: pt.saturating_duration_since(acked),
            to_national: nt.saturating_duration_since(acked),
            change_bytes,
        })
    }

    /// The district's heads of `docs`.
    pub(super) async fn district_heads(
        &self,
        docs: &BTreeSet<DocId>,
    ) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let mut out = Vec::new();
        for d in docs {
            let h = self
                .node(DIST)
                .app
                .store()
                .doc_heads(d)
                .await?
                .unwrap_or_default();
            out.push((d.clone(), h));
        }
        Ok(out)
    }

    /// Waits until the national node holds the district's heads of `docs`;
    /// returns when its feed last moved to get there.
    pub(super) async fn national_has(
        &self,
        nf: &mut watch::Receiver<i64>,
        n0: i64,
        docs: &BTreeSet<DocId>,
    ) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + EDIT_LIMIT * 4;
        let targets = self.district_heads(docs).await?;
        let at = first_move(nf, n0, deadline).await?;
        confirm(self.node(NAT).app.store(), nf, at, &targets, deadline).await
    }

    /// Bytes of the district's changes to `docs` since `before`.
    pub(super) async fn change_bytes(&self, before: &[(DocId, Vec<ChangeHash>)]) -> Result<usize> {
        let mut total = 0;
        for (doc, heads) in before {
            total += self
                .node(DIST)
                .app
                .store()
                .read_doc(doc, |d| d.save_after(heads).len())
                .await?
                .unwrap_or(0);
        }
        Ok(total)
    }
}

pub(super) fn grassroots_id(g: usize) -> String {
    format!("{DIST_UNIT}-g{g}")
}
