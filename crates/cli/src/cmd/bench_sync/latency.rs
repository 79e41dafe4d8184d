//! Parts 1 and 2: propagation latency of single edits along the chain,
//! and the bytes on the wire of one edit, a burst of edits and a roster
//! import, against the size of the changes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use hopluu_devcluster::proxy::ProxyStats;
use hopluu_model::{DocId, member};
use hopluu_proto::v1 as pb;

use super::aggregation::cpu_secs;
use super::chain::{
    Chain, DIST, DIST_GRASSROOTS, DIST_UNIT, EditKind, NAT, WARM_MEMBERS, grassroots_id,
};
use super::{BenchSyncArgs, Dist, bytes_delta, fmt_ms, ms, pct, quiet};
use crate::cmd::bench_common::member_input;
use crate::output::Table;

pub(super) struct Latency {
    pub(super) local_add: Dist,
    pub(super) local_update: Dist,
    pub(super) to_province: Dist,
    pub(super) to_national: Dist,
    pub(super) to_national_add: Dist,
    pub(super) to_national_update: Dist,
    /// National commit minus province commit, per edit.
    pub(super) province_hop: Dist,
    pub(super) total: Duration,
    /// CPU seconds of this process (all three nodes) over the edits.
    pub(super) cpu: Option<f64>,
    /// The same edits after the links were quiet (the bytes runs).
    pub(super) idle_local: Dist,
    pub(super) idle_to_province: Dist,
    pub(super) idle_to_national: Dist,
}

impl Latency {
    pub(super) fn render(&self, args: &BenchSyncArgs) -> String {
        let mut out = format!(
            "1. Propagation latency: {} single-member edits at the district, one after another (AddMember and UpdateMember alternately), from the district's gRPC response to the commit at each node; {:.1} s in all\n",
            args.edits,
            self.total.as_secs_f64()
        );
        let mut t = Table::new(&["measure", "edits", "p50", "p90", "p99", "max"]);
        t.row(
            self.local_add
                .row("floor: local commit at the district (AddMember response)"),
        );
        t.row(
            self.local_update
                .row("floor: local commit at the district (UpdateMember response)"),
        );
        t.row(self.to_province.row("district -> province committed"));
        t.row(self.to_national.row("district -> national committed"));
        t.row(self.to_national_add.row("  of which AddMember"));
        t.row(self.to_national_update.row("  of which UpdateMember"));
        t.row(
            self.province_hop
                .row("province -> national hop (national minus province)"),
        );
        if !self.idle_to_national.0.is_empty() {
            t.row(
                self.idle_local
                    .row("after 120 ms quiet: local commit at the district"),
            );
            t.row(
                self.idle_to_province
                    .row("after 120 ms quiet: district -> province committed"),
            );
            t.row(
                self.idle_to_national
                    .row("after 120 ms quiet: district -> national committed"),
            );
        }
        out.push_str(&t.render());
        if let Some(cpu) = self.cpu {
            out.push_str(&format!(
                "CPU (user+system) of the three nodes and the client together: {:.2} ms per edit, {:.2} cores busy on average\n",
                cpu * 1000.0 / args.edits.max(1) as f64,
                cpu / self.total.as_secs_f64().max(1e-9)
            ));
        }
        let s = self.to_national.sorted();
        let (p50, p99) = (pct(&s, 50.0), pct(&s, 99.0));
        out.push_str(&format!(
            "aim district -> national: p50 <= 5 ms ({}: {}), p99 <= 20 ms ({}: {})\n\n",
            fmt_ms(p50),
            if ms(p50) <= 5.0 { "met" } else { "MISSED" },
            fmt_ms(p99),
            if ms(p99) <= 20.0 { "met" } else { "MISSED" },
        ));
        out
    }
}

/// Bytes of one scenario on both links: (up, down) per link.
#[derive(Debug, Default, Clone)]
pub(super) struct Wire {
    pub(super) what: String,
    pub(super) edits: usize,
    pub(super) dp: (u64, u64),
    pub(super) pn: (u64, u64),
    pub(super) change_bytes: usize,
    /// Acknowledged at the district -> committed at the national node.
    pub(super) latency: Option<Duration>,
}

impl Wire {
    pub(super) fn add(&mut self, before: &[ProxyStats], after: &[ProxyStats], change: usize) {
        let dp = bytes_delta(&before[0], &after[0]);
        let pn = bytes_delta(&before[1], &after[1]);
        self.dp.0 += dp.0;
        self.dp.1 += dp.1;
        self.pn.0 += pn.0;
        self.pn.1 += pn.1;
        self.change_bytes += change;
    }

    pub(super) fn total(&self) -> u64 {
        self.dp.0 + self.dp.1 + self.pn.0 + self.pn.1
    }
}

pub(super) struct WireFigures {
    pub(super) rows: Vec<Wire>,
}

impl WireFigures {
    pub(super) fn render(&self) -> String {
        let mut out = String::from(
            "2. Bytes on the wire (TCP payload counted by the proxies: HTTP/2 frames, gRPC framing, batch and ack), per edit; up = towards the parent\n",
        );
        let mut t = Table::new(&[
            "scenario",
            "edits",
            "d->p up",
            "d->p down",
            "p->n up",
            "p->n down",
            "per link (both ways)",
            "both links",
            "roster change",
            "p->n up / change",
            "ack -> national",
        ]);
        for w in &self.rows {
            let n = w.edits.max(1) as f64;
            let per = |b: u64| format!("{:.0}", b as f64 / n);
            t.row(vec![
                w.what.clone(),
                w.edits.to_string(),
                per(w.dp.0),
                per(w.dp.1),
                per(w.pn.0),
                per(w.pn.1),
                format!(
                    "{:.0} / {:.0}",
                    (w.dp.0 + w.dp.1) as f64 / n,
                    (w.pn.0 + w.pn.1) as f64 / n
                ),
                per(w.total()),
                format!("{:.0}", w.change_bytes as f64 / n),
                if w.change_bytes > 0 {
                    format!("{:.2}", w.pn.0 as f64 / w.change_bytes as f64)
                } else {
                    "-".into()
                },
                w.latency.map(fmt_ms).unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&t.render());
        if let Some(w) = self.rows.first() {
            let n = w.edits.max(1) as f64;
            let link = ((w.dp.0 + w.dp.1).max(w.pn.0 + w.pn.1)) as f64 / n;
            out.push_str(&format!(
                "aim: a warm single edit <= 600 B both directions: {:.0} B on the costlier link ({}), {:.0} B over both links ({})\n",
                link,
                if link <= 600.0 { "met" } else { "MISSED" },
                w.total() as f64 / n,
                if w.total() as f64 / n <= 600.0 {
                    "met"
                } else {
                    "MISSED"
                },
            ));
        }
        out.push_str(
            "roster change = automerge save_after(heads before) of the roster documents at the district (what the session sends as Changes); the private roster goes on the d->p link only\n\n",
        );
        out
    }
}

pub(super) async fn latency_and_wire(
    args: &BenchSyncArgs,
    national_url: Option<&str>,
) -> Result<(Latency, WireFigures)> {
    let dir = tempfile::TempDir::new()?;
    eprintln!("bench-sync: starting district -> province -> national ...");
    let mut chain = Chain::start(dir.path(), national_url).await?;
    if args.roster_members > 0 {
        preload(&mut chain, args.roster_members).await?;
    }

    // Warm-up: the rosters exist, the sessions know each other's heads.
    for _ in 0..WARM_MEMBERS {
        chain.edit(EditKind::Add).await?;
    }
    for _ in 0..5 {
        chain.edit(EditKind::Update).await?;
    }

    eprintln!("bench-sync: {} timed edits ...", args.edits);
    let mut lat = Latency {
        local_add: Dist::default(),
        local_update: Dist::default(),
        to_province: Dist::default(),
        to_national: Dist::default(),
        to_national_add: Dist::default(),
        to_national_update: Dist::default(),
        province_hop: Dist::default(),
        total: Duration::ZERO,
        cpu: None,
        idle_local: Dist::default(),
        idle_to_province: Dist::default(),
        idle_to_national: Dist::default(),
    };
    let cpu0 = cpu_secs("/proc/self/stat");
    let started = Instant::now();
    for i in 0..args.edits {
        let kind = if i % 2 == 0 {
            EditKind::Add
        } else {
            EditKind::Update
        };
        let t = chain.edit(kind).await?;
        match kind {
            EditKind::Add => {
                lat.local_add.push(t.local);
                lat.to_national_add.push(t.to_national);
            }
            EditKind::Update => {
                lat.local_update.push(t.local);
                lat.to_national_update.push(t.to_national);
            }
        }
        lat.to_province.push(t.to_province);
        lat.to_national.push(t.to_national);
        lat.province_hop
            .push(t.to_national.saturating_sub(t.to_province));
    }
    lat.total = started.elapsed();
    lat.cpu = cpu_secs("/proc/self/stat").zip(cpu0).map(|(b, a)| b - a);

    eprintln!(
        "bench-sync: bytes on the wire, {} warm edits of each kind ...",
        args.wire_edits
    );
    let mut update = Wire {
        what: "warm UpdateMember (position), one at a time".into(),
        ..Wire::default()
    };
    let mut add = Wire {
        what: "AddMember into a warm roster, one at a time".into(),
        ..Wire::default()
    };
    let mut update_lat = Duration::ZERO;
    let mut add_lat = Duration::ZERO;
    for _ in 0..args.wire_edits {
        for (kind, w, l) in [
            (EditKind::Update, &mut update, &mut update_lat),
            (EditKind::Add, &mut add, &mut add_lat),
        ] {
            let before = quiet(&chain.links()).await;
            let t = chain.edit(kind).await?;
            let after = quiet(&chain.links()).await;
            w.add(&before, &after, t.change_bytes);
            w.edits += 1;
            *l += t.to_national;
            lat.idle_local.push(t.local);
            lat.idle_to_province.push(t.to_province);
            lat.idle_to_national.push(t.to_national);
        }
    }
    if args.wire_edits > 0 {
        update.latency = Some(update_lat / args.wire_edits as u32);
        add.latency = Some(add_lat / args.wire_edits as u32);
    }

    let burst = burst(&mut chain, args.burst).await?;
    let import = import_update(&mut chain, args.batch_edits).await?;
    chain.fed.shutdown().await?;
    Ok((
        lat,
        WireFigures {
            rows: vec![update, add, burst, import],
        },
    ))
}

/// Loads `per_unit` members into each of the district's grassroots unions
/// and waits until the national node holds them.
pub(super) async fn preload(chain: &mut Chain, per_unit: usize) -> Result<()> {
    eprintln!(
        "bench-sync: loading {per_unit} members into each of the district's {DIST_GRASSROOTS} grassroots unions (not timed) ..."
    );
    let mut nf = chain.node(NAT).app.store().watch_feed();
    let n0 = *nf.borrow_and_update();
    let mut client = chain.node(DIST).members();
    let mut docs = BTreeSet::new();
    for g in 0..DIST_GRASSROOTS {
        let unit = grassroots_id(g);
        let base = 10_000_000 + g * per_unit;
        let mut i = 0;
        while i < per_unit {
            let end = (i + 1000).min(per_unit);
            let rows = (i..end)
                .map(|k| pb::ImportRow {
                    line: (k + 1) as u32,
                    unit_id: unit.clone(),
                    member: Some(member_input(base + k, "Đoàn viên")),
                })
                .collect();
            client
                .import_members(pb::ImportMembersRequest { rows })
                .await?;
            i = end;
        }
        let unit = hopluu_model::UnitId::parse("unit", &unit)?;
        for b in 0..per_unit.div_ceil(1000) as u32 {
            docs.insert(member::roster_doc(&unit, b));
        }
    }
    chain.national_has(&mut nf, n0, &docs).await?;
    for (d, h) in chain.district_heads(&docs).await? {
        chain.heads.insert(d, h);
    }
    Ok(())
}

/// `n` UpdateMember requests in flight at once, on distinct members.
pub(super) async fn burst(chain: &mut Chain, n: usize) -> Result<Wire> {
    eprintln!("bench-sync: a burst of {n} concurrent UpdateMember ...");
    while chain.members.len() < n {
        chain.edit(EditKind::Add).await?;
    }
    let picked: Vec<(String, DocId)> = chain.members.iter().take(n).cloned().collect();
    let docs: BTreeSet<DocId> = picked.iter().map(|(_, d)| d.clone()).collect();
    let before_heads = chain.district_heads(&docs).await?;
    let mut nf = chain.node(NAT).app.store().watch_feed();
    let before = quiet(&chain.links()).await;
    let n0 = *nf.borrow_and_update();
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (id, _)) in picked.iter().enumerate() {
        let mut c = chain.node(DIST).members();
        let id = id.clone();
        let position = format!("Tổ phó {}-{k}", chain.edits);
        tasks.spawn(async move {
            c.update_member(pb::UpdateMemberRequest {
                member_id: id,
                position: Some(position),
                ..Default::default()
            })
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let acked = Instant::now();
    chain.edits += n;
    let at = chain.national_has(&mut nf, n0, &docs).await?;
    let after = quiet(&chain.links()).await;
    let change = chain.change_bytes(&before_heads).await?;
    for (d, h) in chain.district_heads(&docs).await? {
        chain.heads.insert(d, h);
    }
    let mut w = Wire {
        what: format!("{n} UpdateMember at once (burst)"),
        edits: n,
        latency: Some(at.saturating_duration_since(acked)),
        ..Wire::default()
    };
    w.add(&before, &after, change);
    Ok(w)
}

/// One ImportMembers that updates the position of `k` members of one
/// grassroots union (one roster document per 1,000 members).
pub(super) async fn import_update(chain: &mut Chain, k: usize) -> Result<Wire> {
    eprintln!("bench-sync: one ImportMembers updating {k} members ...");
    let unit = format!("{DIST_UNIT}-gb");
    chain
        .node(DIST)
        .create_unit(&unit, "CĐCS Công ty B", "grassroots", DIST_UNIT)
        .await?;
    let base = 5_000_000;
    let rows = |position: &str| -> Vec<pb::ImportRow> {
        (0..k)
            .map(|i| pb::ImportRow {
                line: (i + 1) as u32,
                unit_id: unit.clone(),
                member: Some(member_input(base + i, position)),
            })
            .collect()
    };
    let mut client = chain.node(DIST).members();
    let docs: BTreeSet<DocId> = (0..k.div_ceil(1000).max(1) as u32)
        .map(|b| {
            member::roster_doc(
                &hopluu_model::UnitId::parse("unit", &unit).expect("valid"),
                b,
            )
        })
        .collect();
    // Loaded first, and arrived at the national node.
    let mut nf = chain.node(NAT).app.store().watch_feed();
    let n0 = *nf.borrow_and_update();
    let r = client
        .import_members(pb::ImportMembersRequest {
            rows: rows("Đoàn viên"),
        })
        .await?
        .into_inner();
    ensure!(
        r.results
            .iter()
            .all(|r| r.outcome == pb::ImportOutcome::Created as i32),
        "the batch roster did not load"
    );
    let docs: BTreeSet<DocId> = {
        let mut present = BTreeSet::new();
        for d in docs {
            if chain.node(DIST).app.store().doc_heads(&d).await?.is_some() {
                present.insert(d);
            }
        }
        present
    };
    chain.national_has(&mut nf, n0, &docs).await?;
    let before_heads = chain.district_heads(&docs).await?;
    let before = quiet(&chain.links()).await;
    let n0 = *nf.borrow_and_update();
    let sent = Instant::now();
    let r = client
        .import_members(pb::ImportMembersRequest {
            rows: rows("Tổ trưởng công đoàn"),
        })
        .await?
        .into_inner();
    let acked = Instant::now();
    let updated = r
        .results
        .iter()
        .filter(|r| r.outcome == pb::ImportOutcome::Updated as i32)
        .count();
    ensure!(updated == k, "the import updated {updated} of {k} members");
    let at = chain.national_has(&mut nf, n0, &docs).await?;
    let after = quiet(&chain.links()).await;
    let change = chain.change_bytes(&before_heads).await?;
    let mut w = Wire {
        what: format!(
            "one ImportMembers updating {k} positions ({} ms at the district)",
            (acked - sent).as_millis()
        ),
        edits: k,
        latency: Some(at.saturating_duration_since(acked)),
        ..Wire::default()
    };
    w.add(&before, &after, change);
    Ok(w)
}
