//! The strong consistency check (corrosion's `sqldiff`): every projection
//! table, read whole, equals the rows the stored documents imply, computed
//! here independently of `project.rs` from the model's readers; and every
//! document as the store serves it (through its cache) equals the document
//! as stored (snapshot + chunks, loaded here without the store's code).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail, ensure};
use automerge::{Automerge, ChangeHash};
use hopluu_model::award::{self, Recipient};
use hopluu_model::ids::fold;
use hopluu_model::{DocId, DocMeta, campaign, emulation, member, timeline, unit};
use hopluu_store::Store;
use sqlx::Row;
use sqlx::any::AnyRow;

type Rows = Vec<Vec<String>>;

/// One cell as text; NULL as `NULL` (distinct from the empty string).
fn cell(r: &AnyRow, i: usize) -> String {
    if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
        return v.map_or_else(|| "NULL".to_owned(), |v| v.to_string());
    }
    match r.try_get::<Option<String>, _>(i) {
        Ok(v) => v.unwrap_or_else(|| "NULL".to_owned()),
        Err(e) => panic!("column {i}: neither integer nor text: {e}"),
    }
}

async fn table(store: &Store, sql: &'static str) -> Result<Rows> {
    let rows = sqlx::query(sql).fetch_all(store.pool()).await?;
    let mut out: Rows = rows
        .iter()
        .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
        .collect();
    out.sort();
    Ok(out)
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Loads a document the way it is stored, without the store's loader.
async fn load_stored(store: &Store, row: i64) -> Result<Automerge> {
    let snapshot: Vec<u8> = sqlx::query("SELECT snapshot FROM docs WHERE id = $1")
        .bind(row)
        .fetch_one(store.pool())
        .await?
        .get(0);
    let mut doc = Automerge::load(&snapshot)?;
    for c in sqlx::query("SELECT data FROM doc_chunks WHERE doc = $1 ORDER BY seq")
        .bind(row)
        .fetch_all(store.pool())
        .await?
    {
        doc.load_incremental(&c.get::<Vec<u8>, _>(0))?;
    }
    Ok(doc)
}

fn sorted(mut h: Vec<ChangeHash>) -> Vec<ChangeHash> {
    h.sort();
    h
}

/// Checks every projection and the document bookkeeping of `store`.
pub async fn consistent(store: &Store) -> Result<()> {
    let ids = store.doc_ids().await?;
    let mut row_of: BTreeMap<String, i64> = BTreeMap::new();
    for r in sqlx::query("SELECT id, doc_id FROM docs")
        .fetch_all(store.pool())
        .await?
    {
        row_of.insert(r.get(1), r.get(0));
    }
    let position = store.feed_position().await?;
    let mut last_seq = 0;

    let mut want: BTreeMap<&'static str, Rows> = BTreeMap::new();
    let mut put = |t: &'static str, row: Vec<String>| want.entry(t).or_default().push(row);
    type Copies = BTreeMap<(String, String), (u32, Vec<String>)>;
    let mut members: Copies = BTreeMap::new();
    let mut private: Copies = BTreeMap::new();
    fn lowest(map: &mut Copies, key: (String, String), bucket: u32, row: Vec<String>) {
        match map.get(&key) {
            Some((b, _)) if *b <= bucket => {}
            _ => {
                map.insert(key, (bucket, row));
            }
        }
    }
    // unit -> parent, for the closure table.
    let mut parents: BTreeMap<String, Option<String>> = BTreeMap::new();

    for id in &ids {
        let key = id.to_string();
        let row = *row_of.get(&key).context("doc id without a row")?;
        // The document as served (cache or load) and as stored.
        let served = store
            .read_doc(id, |d| d.clone())
            .await?
            .with_context(|| format!("{id} is listed but not readable"))?;
        let stored = load_stored(store, row).await?;
        ensure!(
            sorted(served.get_heads()) == sorted(stored.get_heads()),
            "{id}: the store serves heads {:?} but stores {:?} (stale cache?)",
            served.get_heads(),
            stored.get_heads()
        );
        ensure!(
            served.hydrate(None) == stored.hydrate(None),
            "{id}: the document served differs from the one stored"
        );
        let doc = stored;

        // Bookkeeping in `docs`.
        let b = sqlx::query(
            "SELECT kind, owner, addressed, heads, seq, snapshot_len, chunks_len, \
             CAST(LENGTH(snapshot) AS BIGINT), \
             (SELECT CAST(COALESCE(SUM(LENGTH(c.data)), 0) AS BIGINT) FROM doc_chunks c WHERE c.doc = docs.id), \
             (SELECT MAX(f.seq) FROM feed f WHERE f.doc = docs.id) \
             FROM docs WHERE id = $1",
        )
        .bind(row)
        .fetch_one(store.pool())
        .await?;
        let meta = DocMeta::read(id.clone(), &doc)?;
        ensure!(b.get::<String, _>(0) == id.kind().as_str(), "{id}: kind");
        ensure!(
            b.get::<String, _>(1) == meta.owner.as_str(),
            "{id}: docs.owner {} but the document says {}",
            b.get::<String, _>(1),
            meta.owner
        );
        let addressed: Vec<&str> = meta.addressed.iter().map(|u| u.as_str()).collect();
        ensure!(
            b.get::<String, _>(2) == addressed.join(" "),
            "{id}: docs.addressed"
        );
        let heads: Vec<ChangeHash> = b
            .get::<Vec<u8>, _>(3)
            .chunks(32)
            .map(|c| ChangeHash::try_from(c).expect("32-byte hash"))
            .collect();
        ensure!(
            sorted(heads) == sorted(doc.get_heads()),
            "{id}: docs.heads differ from the stored document's heads"
        );
        let seq: i64 = b.get(4);
        ensure!(
            Some(seq) == b.get::<Option<i64>, _>(9),
            "{id}: docs.seq {seq} is not the document's last feed entry"
        );
        last_seq = last_seq.max(seq);
        ensure!(
            b.get::<i64, _>(5) == b.get::<i64, _>(7),
            "{id}: snapshot_len"
        );
        ensure!(
            b.get::<i64, _>(6) == b.get::<i64, _>(8),
            "{id}: chunks_len {} but the chunks hold {} bytes",
            b.get::<i64, _>(6),
            b.get::<i64, _>(8)
        );

        let r = s(row);
        match id {
            DocId::Unit(u) => {
                let x = unit::read(id, &doc)?;
                ensure!(x.id == *u, "{id}: holds unit {}", x.id);
                parents.insert(s(&x.id), x.parent.as_ref().map(s));
                put(
                    "units",
                    vec![
                        s(&x.id),
                        x.name.clone(),
                        s(&x.kind),
                        x.parent.as_ref().map_or_else(|| "NULL".to_owned(), s),
                        s(x.status.as_str()),
                        x.successors.iter().map(s).collect::<Vec<_>>().join(" "),
                        opt(x.closed_on),
                        x.close_reason.clone(),
                        r.clone(),
                    ],
                );
                for l in timeline::parent_links(&x) {
                    put(
                        "unit_links",
                        vec![
                            s(&x.id),
                            opt(l.parent.as_ref()),
                            s(l.from),
                            l.to.map_or_else(|| "9999-12-31".to_owned(), s),
                        ],
                    );
                }
            }
            DocId::Roster { unit, bucket } => {
                for m in member::read_many(&doc, None)? {
                    ensure!(m.unit == *unit, "{id}: member {} of unit {}", m.id, m.unit);
                    let row = vec![
                        s(&m.id),
                        s(unit),
                        r.clone(),
                        s(bucket),
                        m.full_name.clone(),
                        fold(&m.full_name),
                        opt(m.birth_date),
                        s(m.gender.as_str()),
                        s(&m.card_number),
                        s(m.joined_on),
                        m.position.clone(),
                        s(m.status.as_str()),
                        m.status_reason.clone(),
                        opt(m.status_on),
                        opt(m.deidentified.as_ref().map(|d| &d.at)),
                        opt(m.deidentified.as_ref().map(|d| &d.by)),
                        opt(m.deidentified.as_ref().map(|d| &d.operator)),
                        opt(m.deidentified.as_ref().map(|d| &d.reason)),
                        opt(m.deidentified.as_ref().map(|d| &d.reference)),
                        s(timeline::member_since(&m)),
                    ];
                    // A member with records in two buckets of one unit is
                    // projected from the lowest.
                    lowest(&mut members, (s(&m.id), s(unit)), *bucket, row);
                }
            }
            DocId::RosterPrivate { unit, bucket } => {
                for (m, p) in member::read_private(&doc, None)? {
                    let row = vec![
                        s(&m),
                        s(unit),
                        opt(p.national_id.as_ref().map(|n| n.as_str().to_owned())),
                        p.ethnicity.clone(),
                        p.religion.clone(),
                    ];
                    lowest(&mut private, (s(&m), s(unit)), *bucket, row);
                }
            }
            DocId::Campaign(_) => {
                let c = campaign::read(id, &doc)?;
                put(
                    "campaigns",
                    vec![
                        s(&c.id),
                        s(&c.launching_unit),
                        c.title.clone(),
                        c.theme.clone(),
                        s(c.starts_on),
                        s(c.ends_on),
                        s(&c.scope),
                        s(c.status.as_str()),
                        r.clone(),
                    ],
                );
                for (u, p) in &c.plans {
                    put(
                        "campaign_plans",
                        vec![s(&c.id), s(u), s(p.initiative_quota), s(p.works_quota)],
                    );
                }
            }
            DocId::Emulation { unit, campaign } => {
                let e = emulation::read(&doc)?;
                ensure!(e.unit == *unit && e.campaign == *campaign, "{id}: root");
                put(
                    "registrations",
                    vec![
                        s(unit),
                        s(campaign),
                        s(i64::from(e.registered)),
                        opt(e.registered_on),
                        e.pledge.clone(),
                        r.clone(),
                    ],
                );
                for i in &e.initiatives {
                    put(
                        "initiatives",
                        vec![
                            s(&i.id),
                            s(unit),
                            s(campaign),
                            i.title.clone(),
                            i.authors.join("; "),
                            s(i.status.as_str()),
                            i.recognised_level.clone(),
                            s(i.value_vnd),
                            s(i.submitted_on),
                            r.clone(),
                        ],
                    );
                }
                for w in &e.works {
                    put(
                        "works",
                        vec![
                            s(&w.id),
                            s(unit),
                            s(campaign),
                            w.name.clone(),
                            s(w.value_vnd),
                            s(i64::from(w.plaque)),
                            opt(w.completed_on),
                            r.clone(),
                        ],
                    );
                }
            }
            DocId::Proposal(_) => {
                let p = award::read_proposal(id, &doc)?;
                put(
                    "proposals",
                    vec![
                        s(&p.id),
                        s(&p.proposing_unit),
                        s(&p.addressed_unit),
                        s(&p.award_type),
                        opt(p.campaign.as_ref()),
                        p.reason.clone(),
                        s(p.proposed_on),
                        s(p.status.as_str()),
                        opt(p.award.as_ref()),
                        r.clone(),
                    ],
                );
            }
            DocId::Award(_) => {
                let a = award::read_award(id, &doc)?;
                put(
                    "awards",
                    vec![
                        s(&a.id),
                        s(&a.issuing_unit),
                        a.decision_no.clone(),
                        s(a.decided_on),
                        s(a.effective_on),
                        s(a.decided_on.year()),
                        s(&a.award_type),
                        s(&a.level),
                        opt(a.campaign.as_ref()),
                        opt(a.proposal.as_ref()),
                        a.reason.clone(),
                        s(i64::from(a.revoked)),
                        opt(a.revoked_on),
                        a.revoke_reason.clone(),
                        r.clone(),
                    ],
                );
                for (n, rc) in a.recipients.iter().enumerate() {
                    let member = match rc {
                        Recipient::Member { member, .. } => s(member),
                        Recipient::Unit(_) => String::new(),
                    };
                    put(
                        "award_recipients",
                        vec![s(&a.id), s(n), member, s(rc.unit())],
                    );
                }
            }
            DocId::Decision(_) => {
                let d = hopluu_model::reorg::read(id, &doc)?;
                let o = &d.outcome;
                put(
                    "decisions",
                    vec![
                        s(&d.id),
                        d.plan.number.clone(),
                        d.plan.title.clone(),
                        d.plan.issuing_unit.clone(),
                        d.plan.decided_on.clone(),
                        d.plan.effective_on.clone(),
                        d.applied_at.clone(),
                        d.applied_by.clone(),
                        s(d.plan.steps.len()),
                        s(o.units_created),
                        s(o.units_moved),
                        s(o.units_closed),
                        s(o.members_transferred),
                        s(o.members_ceased),
                        r.clone(),
                    ],
                );
                for seal in &d.seals {
                    for h in &seal.heads {
                        put(
                            "decision_seals",
                            vec![s(&d.id), seal.doc.clone(), h.clone()],
                        );
                    }
                }
            }
            DocId::Node(_) => {
                let n = hopluu_model::hosting::read(id, &doc)?;
                let i = &n.info;
                put(
                    "nodes",
                    vec![
                        i.id.clone(),
                        s(&i.unit),
                        i.upstream.clone(),
                        i.address.clone(),
                        s(i.status.as_str()),
                        i.retired_at.clone(),
                        r.clone(),
                    ],
                );
                for seal in &n.seals {
                    for d in &seal.docs {
                        for h in &d.heads {
                            put(
                                "host_seals",
                                vec![
                                    i.id.clone(),
                                    s(&seal.decision),
                                    d.doc.clone(),
                                    h.clone(),
                                    seal.at.clone(),
                                ],
                            );
                        }
                    }
                }
            }
        }
    }
    ensure!(
        store.doc_count().await? == ids.len() as i64,
        "doc_count differs from doc_ids"
    );
    let bytes: i64 = sqlx::query(
        "SELECT CAST((SELECT COALESCE(SUM(LENGTH(snapshot)), 0) FROM docs) \
         + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM doc_chunks) AS BIGINT)",
    )
    .fetch_one(store.pool())
    .await?
    .get(0);
    ensure!(
        store.stored_doc_bytes().await? == bytes,
        "stored_doc_bytes {} but snapshots and chunks hold {bytes}",
        store.stored_doc_bytes().await?
    );
    ensure!(
        last_seq == position,
        "feed position {position} but the last document update is {last_seq}"
    );

    for (_, row) in std::mem::take(&mut members).into_values() {
        put("members", row);
    }
    for (_, row) in std::mem::take(&mut private).into_values() {
        put("member_private", row);
    }

    // The closure table: every unit with each stored ancestor on its chain
    // of parent links (a chain stops at a parent not stored yet).
    for u in parents.keys() {
        let (mut cur, mut depth) = (u.clone(), 0);
        let mut seen = BTreeSet::new();
        loop {
            put("unit_closure", vec![cur.clone(), u.clone(), s(depth)]);
            if !seen.insert(cur.clone()) {
                bail!("the unit tree has a cycle through {cur}");
            }
            match parents.get(&cur) {
                Some(Some(p)) if parents.contains_key(p) => {
                    cur = p.clone();
                    depth += 1;
                }
                _ => break,
            }
        }
    }

    const TABLES: [(&str, &str); 18] = [
        (
            "units",
            "SELECT id, name, kind, parent, status, successors, closed_on, close_reason, doc FROM units",
        ),
        (
            "unit_closure",
            "SELECT ancestor, descendant, depth FROM unit_closure",
        ),
        (
            "unit_links",
            "SELECT unit, parent, valid_from, valid_to FROM unit_links",
        ),
        (
            "members",
            "SELECT member_id, unit_id, doc, bucket, full_name, name_key, birth_date, gender, \
             card_number, joined_on, position, status, status_reason, status_on, deidentified_at, \
             deidentified_by, deidentified_operator, deidentified_reason, deidentified_reference, \
             since_on FROM members",
        ),
        (
            "member_private",
            "SELECT member_id, unit_id, national_id, ethnicity, religion FROM member_private",
        ),
        (
            "campaigns",
            "SELECT id, launching_unit, title, theme, starts_on, ends_on, scope_unit, status, doc \
             FROM campaigns",
        ),
        (
            "campaign_plans",
            "SELECT campaign, unit_id, initiative_quota, works_quota FROM campaign_plans",
        ),
        (
            "registrations",
            "SELECT unit_id, campaign, registered, registered_on, pledge, doc FROM registrations",
        ),
        (
            "initiatives",
            "SELECT id, unit_id, campaign, title, authors, status, recognised_level, value_vnd, \
             submitted_on, doc FROM initiatives",
        ),
        (
            "works",
            "SELECT id, unit_id, campaign, name, value_vnd, plaque, completed_on, doc FROM works",
        ),
        (
            "proposals",
            "SELECT id, proposing_unit, addressed_unit, award_type, campaign, reason, proposed_on, \
             status, award_id, doc FROM proposals",
        ),
        (
            "awards",
            "SELECT id, issuing_unit, decision_no, decided_on, effective_on, year, award_type, \
             level, campaign, proposal, reason, revoked, revoked_on, revoke_reason, doc FROM awards",
        ),
        (
            "award_recipients",
            "SELECT award, n, member_id, unit_id FROM award_recipients",
        ),
        (
            "decisions",
            "SELECT id, number, title, issuing_unit, decided_on, effective_on, applied_at, \
             applied_by, steps, units_created, units_moved, units_closed, members_transferred, \
             members_ceased, doc FROM decisions",
        ),
        (
            "decision_seals",
            "SELECT decision, doc_id, head FROM decision_seals",
        ),
        (
            "nodes",
            "SELECT id, unit, upstream, address, status, retired_at, doc FROM nodes",
        ),
        (
            "host_seals",
            "SELECT node, decision, doc_id, head, sealed_at FROM host_seals",
        ),
        ("feed_docs", "SELECT DISTINCT CAST(doc AS BIGINT) FROM feed"),
    ];
    // Every feed entry names a stored document, and every stored document
    // has at least one.
    want.insert(
        "feed_docs",
        row_of.values().map(|r| vec![s(r)]).collect::<Rows>(),
    );
    let mut problems = Vec::new();
    for (name, sql) in TABLES {
        let mut expected = want.remove(name).unwrap_or_default();
        expected.sort();
        let actual = table(store, sql).await?;
        if expected != actual {
            let e: BTreeSet<&Vec<String>> = expected.iter().collect();
            let a: BTreeSet<&Vec<String>> = actual.iter().collect();
            problems.push(format!(
                "{name}: projected but not implied by the documents: {:?}\n  \
                 implied by the documents but not projected: {:?}{}",
                a.difference(&e).collect::<Vec<_>>(),
                e.difference(&a).collect::<Vec<_>>(),
                if e.len() != expected.len() || a.len() != actual.len() {
                    " (and duplicate rows)"
                } else {
                    ""
                }
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "projections differ from the documents:\n{}",
            problems.join("\n")
        );
    }
    Ok(())
}
