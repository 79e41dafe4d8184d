//! Projections: SQL rows derived from documents, written in the same
//! transaction as the document change they come from.
//!
//! Roster documents are projected incrementally: the automerge diff between
//! the heads before and after the write names the members that changed, and
//! only their rows are rewritten (a 1,000-member roster does not rewrite
//! 1,000 rows for one edit). Smaller documents are projected whole.

use std::collections::BTreeSet;

use automerge::{Automerge, ChangeHash};
use hopluu_model::award::{self, Recipient};
use hopluu_model::{DocId, campaign, emulation, ids::fold, member, unit};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::{Result, conflicts};

/// A value bound into a generated statement.
#[derive(Debug, Clone)]
pub(crate) enum V {
    S(String),
    I(i64),
}

impl From<&str> for V {
    fn from(s: &str) -> V {
        V::S(s.to_owned())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::S(s)
    }
}
impl From<i64> for V {
    fn from(i: i64) -> V {
        V::I(i)
    }
}

/// Upserts `rows` into `table`, many rows per statement.
pub(crate) async fn upsert(
    conn: &mut AnyConnection,
    table: &str,
    cols: &[&str],
    key: &[&str],
    rows: Vec<Vec<V>>,
) -> Result<()> {
    upsert_where(conn, table, cols, key, rows, None).await
}

/// [`upsert`], replacing an existing row only where `guard` holds (an SQL
/// condition over `excluded` and the table).
pub(crate) async fn upsert_where(
    conn: &mut AnyConnection,
    table: &str,
    cols: &[&str],
    key: &[&str],
    rows: Vec<Vec<V>>,
    guard: Option<&str>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let per_stmt = (4000 / cols.len()).max(1);
    let updates: Vec<String> = cols
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let conflict = match (updates.is_empty(), guard) {
        (true, _) => "DO NOTHING".to_owned(),
        (false, None) => format!("DO UPDATE SET {}", updates.join(", ")),
        (false, Some(g)) => format!("DO UPDATE SET {} WHERE {g}", updates.join(", ")),
    };
    for chunk in rows.chunks(per_stmt) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..cols.len() {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        sql.push_str(&format!(" ON CONFLICT ({}) {conflict}", key.join(", ")));
        let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
        for row in chunk {
            for v in row {
                q = match v {
                    V::S(s) => q.bind(s.clone()),
                    V::I(i) => q.bind(*i),
                };
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn delete_by_doc(conn: &mut AnyConnection, table: &str, doc: i64) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE doc = $1")))
        .bind(doc)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Rewrites the projection rows that `doc` (stored as `docs.id = row`)
/// implies, given the heads it had before this write, and keeps the
/// document's recorded conflicts right ([`conflicts::track`]); `now` is
/// the commit's time.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
    before: &[ChangeHash],
    now: i64,
) -> Result<()> {
    // The diff since `before` is computed once, and only when needed: for
    // a roster written before (to re-read only the touched members), and
    // for a write that merged concurrent changes (to find new conflicts).
    let (touched, found) = {
        let roster =
            !before.is_empty() && matches!(id, DocId::Roster { .. } | DocId::RosterPrivate { .. });
        let merged = !conflicts::linear(doc, before);
        let patches = (roster || merged).then(|| doc.diff(before, &doc.get_heads()));
        let patches = patches.as_deref().unwrap_or_default();
        (
            roster.then(|| member::touched_members(patches)).flatten(),
            merged.then(|| conflicts::find(id, doc, patches)),
        )
    };
    project(conn, row, id, doc, touched).await?;
    conflicts::track(conn, row, id, doc, found, now).await
}

/// The projection rows of one document; `touched`: the members a roster
/// write touched (`None`: all of them).
async fn project(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
    touched: Option<BTreeSet<String>>,
) -> Result<()> {
    match id {
        DocId::Unit(_) => project_unit(conn, row, id, doc).await,
        DocId::Roster { bucket, .. } => {
            let members = member::read_many(doc, touched.as_ref())?;
            let rows = members
                .iter()
                .map(|m| {
                    let d = m.deidentified.as_ref();
                    let de = |f: fn(&member::Deidentified) -> &str| -> V {
                        d.map(f).unwrap_or_default().into()
                    };
                    vec![
                        m.id.as_str().into(),
                        m.unit.as_str().into(),
                        row.into(),
                        i64::from(*bucket).into(),
                        m.full_name.as_str().into(),
                        fold(&m.full_name).into(),
                        m.birth_date
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                            .into(),
                        m.gender.as_str().into(),
                        m.card_number.as_str().into(),
                        m.joined_on.to_string().into(),
                        m.position.as_str().into(),
                        m.status.as_str().into(),
                        m.status_reason.as_str().into(),
                        m.status_on
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                            .into(),
                        de(|d| &d.at),
                        de(|d| &d.by),
                        de(|d| &d.operator),
                        de(|d| &d.reason),
                        de(|d| &d.reference),
                    ]
                })
                .collect();
            upsert_where(
                conn,
                "members",
                &[
                    "member_id",
                    "unit_id",
                    "doc",
                    "bucket",
                    "full_name",
                    "name_key",
                    "birth_date",
                    "gender",
                    "card_number",
                    "joined_on",
                    "position",
                    "status",
                    "status_reason",
                    "status_on",
                    "deidentified_at",
                    "deidentified_by",
                    "deidentified_operator",
                    "deidentified_reason",
                    "deidentified_reference",
                ],
                &["member_id", "unit_id"],
                rows,
                // Two records of one member in one unit (placed concurrently
                // in two buckets): the lowest bucket's is projected, on
                // every node, whatever order the documents arrive in.
                Some("excluded.bucket <= members.bucket"),
            )
            .await
        }
        DocId::RosterPrivate { unit, bucket } => {
            let held = member::read_private(doc, touched.as_ref())?;
            forget_private_rows(conn, unit, *bucket, touched, &held).await?;
            let rows = held
                .into_iter()
                .map(|(m, p)| {
                    vec![
                        m.as_str().into(),
                        unit.as_str().into(),
                        p.national_id
                            .as_ref()
                            .map(|n| n.as_str().to_owned())
                            .unwrap_or_default()
                            .into(),
                        p.ethnicity.into(),
                        p.religion.into(),
                        i64::from(*bucket).into(),
                    ]
                })
                .collect();
            upsert_where(
                conn,
                "member_private",
                &[
                    "member_id",
                    "unit_id",
                    "national_id",
                    "ethnicity",
                    "religion",
                    "bucket",
                ],
                &["member_id", "unit_id"],
                rows,
                Some("excluded.bucket <= member_private.bucket"),
            )
            .await
        }
        DocId::Campaign(_) => {
            let c = campaign::read(id, doc)?;
            upsert(
                conn,
                "campaigns",
                &[
                    "id",
                    "launching_unit",
                    "title",
                    "theme",
                    "starts_on",
                    "ends_on",
                    "scope_unit",
                    "status",
                    "doc",
                ],
                &["id"],
                vec![vec![
                    c.id.as_str().into(),
                    c.launching_unit.as_str().into(),
                    c.title.as_str().into(),
                    c.theme.as_str().into(),
                    c.starts_on.to_string().into(),
                    c.ends_on.to_string().into(),
                    c.scope.as_str().into(),
                    c.status.as_str().into(),
                    row.into(),
                ]],
            )
            .await?;
            sqlx::query("DELETE FROM campaign_plans WHERE campaign = $1")
                .bind(c.id.as_str())
                .execute(&mut *conn)
                .await?;
            let plans = c
                .plans
                .iter()
                .map(|(u, p)| {
                    vec![
                        c.id.as_str().into(),
                        u.as_str().into(),
                        i64::from(p.initiative_quota).into(),
                        i64::from(p.works_quota).into(),
                    ]
                })
                .collect();
            upsert(
                conn,
                "campaign_plans",
                &["campaign", "unit_id", "initiative_quota", "works_quota"],
                &["campaign", "unit_id"],
                plans,
            )
            .await
        }
        DocId::Emulation { .. } => {
            let e = emulation::read(doc)?;
            upsert(
                conn,
                "registrations",
                &[
                    "unit_id",
                    "campaign",
                    "registered",
                    "registered_on",
                    "pledge",
                    "doc",
                ],
                &["unit_id", "campaign"],
                vec![vec![
                    e.unit.as_str().into(),
                    e.campaign.as_str().into(),
                    i64::from(e.registered).into(),
                    e.registered_on
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                        .into(),
                    e.pledge.as_str().into(),
                    row.into(),
                ]],
            )
            .await?;
            delete_by_doc(conn, "initiatives", row).await?;
            delete_by_doc(conn, "works", row).await?;
            let initiatives = e
                .initiatives
                .iter()
                .map(|i| {
                    vec![
                        i.id.as_str().into(),
                        e.unit.as_str().into(),
                        e.campaign.as_str().into(),
                        i.title.as_str().into(),
                        i.authors.join("; ").into(),
                        i.status.as_str().into(),
                        i.recognised_level.as_str().into(),
                        i.value_vnd.into(),
                        i.submitted_on.to_string().into(),
                        row.into(),
                    ]
                })
                .collect();
            upsert(
                conn,
                "initiatives",
                &[
                    "id",
                    "unit_id",
                    "campaign",
                    "title",
                    "authors",
                    "status",
                    "recognised_level",
                    "value_vnd",
                    "submitted_on",
                    "doc",
                ],
                &["id"],
                initiatives,
            )
            .await?;
            let works = e
                .works
                .iter()
                .map(|w| {
                    vec![
                        w.id.as_str().into(),
                        e.unit.as_str().into(),
                        e.campaign.as_str().into(),
                        w.name.as_str().into(),
                        w.value_vnd.into(),
                        i64::from(w.plaque).into(),
                        w.completed_on
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                            .into(),
                        row.into(),
                    ]
                })
                .collect();
            upsert(
                conn,
                "works",
                &[
                    "id",
                    "unit_id",
                    "campaign",
                    "name",
                    "value_vnd",
                    "plaque",
                    "completed_on",
                    "doc",
                ],
                &["id"],
                works,
            )
            .await
        }
        DocId::Proposal(_) => {
            let p = award::read_proposal(id, doc)?;
            upsert(
                conn,
                "proposals",
                &[
                    "id",
                    "proposing_unit",
                    "addressed_unit",
                    "award_type",
                    "campaign",
                    "reason",
                    "proposed_on",
                    "status",
                    "award_id",
                    "doc",
                ],
                &["id"],
                vec![vec![
                    p.id.as_str().into(),
                    p.proposing_unit.as_str().into(),
                    p.addressed_unit.as_str().into(),
                    p.award_type.as_str().into(),
                    p.campaign.as_ref().map(|c| c.as_str()).unwrap_or("").into(),
                    p.reason.as_str().into(),
                    p.proposed_on.to_string().into(),
                    p.status.as_str().into(),
                    p.award.as_ref().map(|a| a.as_str()).unwrap_or("").into(),
                    row.into(),
                ]],
            )
            .await
        }
        DocId::Award(_) => {
            let a = award::read_award(id, doc)?;
            upsert(
                conn,
                "awards",
                &[
                    "id",
                    "issuing_unit",
                    "decision_no",
                    "decided_on",
                    "effective_on",
                    "year",
                    "award_type",
                    "level",
                    "campaign",
                    "proposal",
                    "reason",
                    "revoked",
                    "revoked_on",
                    "revoke_reason",
                    "doc",
                ],
                &["id"],
                vec![vec![
                    a.id.as_str().into(),
                    a.issuing_unit.as_str().into(),
                    a.decision_no.as_str().into(),
                    a.decided_on.to_string().into(),
                    a.effective_on.to_string().into(),
                    i64::from(a.decided_on.year()).into(),
                    a.award_type.as_str().into(),
                    a.level.as_str().into(),
                    a.campaign.as_ref().map(|c| c.as_str()).unwrap_or("").into(),
                    a.proposal.as_ref().map(|p| p.as_str()).unwrap_or("").into(),
                    a.reason.as_str().into(),
                    i64::from(a.revoked).into(),
                    a.revoked_on
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                        .into(),
                    a.revoke_reason.as_str().into(),
                    row.into(),
                ]],
            )
            .await?;
            sqlx::query("DELETE FROM award_recipients WHERE award = $1")
                .bind(a.id.as_str())
                .execute(&mut *conn)
                .await?;
            let rows = a
                .recipients
                .iter()
                .enumerate()
                .map(|(n, r)| {
                    let member = match r {
                        Recipient::Member { member, .. } => member.as_str(),
                        Recipient::Unit(_) => "",
                    };
                    vec![
                        a.id.as_str().into(),
                        (n as i64).into(),
                        member.into(),
                        r.unit().as_str().into(),
                    ]
                })
                .collect();
            upsert(
                conn,
                "award_recipients",
                &["award", "n", "member_id", "unit_id"],
                &["award", "n"],
                rows,
            )
            .await
        }
    }
}

/// Deletes the `member_private` rows of this private roster bucket whose
/// member it no longer holds (removed by a de-identification): among the
/// touched members, or among all of the bucket's rows when the whole
/// document is re-read. A row projected from another bucket of the unit
/// (a member placed twice) is that bucket's to keep or remove.
async fn forget_private_rows(
    conn: &mut AnyConnection,
    unit: &hopluu_model::UnitId,
    bucket: u32,
    touched: Option<BTreeSet<String>>,
    held: &[(hopluu_model::MemberId, member::PrivateData)],
) -> Result<()> {
    let candidates: BTreeSet<String> = match touched {
        Some(t) => t,
        None => {
            sqlx::query("SELECT member_id FROM member_private WHERE unit_id = $1 AND bucket = $2")
                .bind(unit.as_str())
                .bind(i64::from(bucket))
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect()
        }
    };
    let held: BTreeSet<&str> = held.iter().map(|(m, _)| m.as_str()).collect();
    for gone in candidates.iter().filter(|c| !held.contains(c.as_str())) {
        sqlx::query(
            "DELETE FROM member_private WHERE member_id = $1 AND unit_id = $2 AND bucket = $3",
        )
        .bind(gone.as_str())
        .bind(unit.as_str())
        .bind(i64::from(bucket))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Projects a unit and keeps the closure table right. When the parent link
/// is new or changed, the unit's whole subtree (found by parent links, so a
/// child that arrived before its parent is attached too) is re-linked.
async fn project_unit(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let u = unit::read(id, doc)?;
    let old_parent: Option<Option<String>> = sqlx::query("SELECT parent FROM units WHERE id = $1")
        .bind(u.id.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.get(0));
    let parent = u.parent.as_ref().map(|p| p.to_string());
    upsert(
        conn,
        "units",
        &[
            "id",
            "name",
            "kind",
            "parent",
            "status",
            "successors",
            "closed_on",
            "close_reason",
            "doc",
        ],
        &["id"],
        vec![vec![
            u.id.as_str().into(),
            u.name.as_str().into(),
            u.kind.as_str().into(),
            parent.clone().unwrap_or_default().into(),
            u.status.as_str().into(),
            u.successors
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
            u.closed_on
                .map(|d| d.to_string())
                .unwrap_or_default()
                .into(),
            u.close_reason.as_str().into(),
            row.into(),
        ]],
    )
    .await?;
    // The root stores no parent: keep NULL rather than '' for it.
    if parent.is_none() {
        sqlx::query("UPDATE units SET parent = NULL WHERE id = $1")
            .bind(u.id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    if old_parent.as_ref() == Some(&parent) {
        return Ok(());
    }
    relink(conn, u.id.as_str(), parent.as_deref()).await
}

const SUBTREE: &str = "WITH RECURSIVE sub(id, d) AS ( \
        SELECT CAST($1 AS TEXT), 0 \
        UNION SELECT u.id, sub.d + 1 FROM units u JOIN sub ON u.parent = sub.id WHERE sub.d < 64)";

async fn relink(conn: &mut AnyConnection, unit: &str, parent: Option<&str>) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "{SUBTREE} DELETE FROM unit_closure WHERE descendant IN (SELECT id FROM sub)"
    )))
    .bind(unit)
    .execute(&mut *conn)
    .await?;
    // Paths inside the subtree.
    sqlx::query(AssertSqlSafe(format!(
        "{SUBTREE}, pairs(anc, des, d) AS ( \
            SELECT id, id, 0 FROM sub \
            UNION SELECT p.anc, u.id, p.d + 1 FROM pairs p JOIN units u ON u.parent = p.des WHERE p.d < 64) \
         INSERT INTO unit_closure (ancestor, descendant, depth) \
         SELECT anc, des, MIN(d) FROM pairs GROUP BY anc, des \
         ON CONFLICT (ancestor, descendant) DO NOTHING"
    )))
    .bind(unit)
    .execute(&mut *conn)
    .await?;
    // Paths from the parent's ancestors (and the parent) into the subtree.
    if let Some(parent) = parent {
        sqlx::query(AssertSqlSafe(format!(
            "{SUBTREE} INSERT INTO unit_closure (ancestor, descendant, depth) \
             SELECT c.ancestor, sub.id, MIN(c.depth + 1 + sub.d) FROM unit_closure c, sub \
             WHERE c.descendant = $2 AND c.ancestor NOT IN (SELECT id FROM sub) \
             GROUP BY c.ancestor, sub.id \
             ON CONFLICT (ancestor, descendant) DO NOTHING"
        )))
        .bind(unit)
        .bind(parent)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
