//! Projections: SQL rows derived from documents, written in the same
//! transaction as the document change they come from.
//!
//! Rosters and emulation records are projected incrementally: the write's
//! own changes name the members (initiatives, works) they touched, and only
//! their rows are rewritten (a 1,000-member roster does not rewrite 1,000
//! rows for one edit); a write that merged concurrent changes takes them
//! from the automerge diff, which it needs for conflicts anyway. A roster
//! new here is projected from what the gate's shape check read of it.
//! Smaller documents are projected whole.
//!
//! - [`sql`]: the [`sql::Row`] trait and the batched upsert behind it.
//! - [`rows`]: one typed row per projection table.
//! - [`unit`]: units, their dated parent links and the closure table.

mod rows;
pub(crate) mod sql;
mod unit;

use std::collections::BTreeSet;

use automerge::{Automerge, ChangeHash};
use hopluu_model::{DocId, UnitId, am, award, campaign, emulation, hosting, member, reorg, shape};
use sqlx::{AnyConnection, Row as _};

use crate::{Result, conflicts};
pub(crate) use rows::ConflictRow;
use rows::{
    AwardRow, CampaignRow, DecisionRow, HostSealRow, InitiativeRow, MemberRow, NodeRow, PlanRow,
    PrivateRow, ProposalRow, RecipientRow, RegistrationRow, SealRow, WorkRow,
};
use sql::{delete_by_doc, delete_by_id, write};

/// Rewrites the projection rows that `doc` (stored as `docs.id = row`)
/// implies, given the heads it had before this write, and keeps the
/// document's recorded conflicts right ([`conflicts::track`]); `now` is
/// the commit's time. `read`: what checking the document whole read of
/// it, with the heads it has now ([`shape::check_whole`]).
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
    before: &[ChangeHash],
    read: Option<&shape::Read>,
    now: i64,
) -> Result<()> {
    // New here and read already: no diff (nothing to merge with), no
    // second read.
    if before.is_empty()
        && let Some(read) = read
        && project_read(conn, row, id, read).await?
    {
        return Ok(());
    }
    // The diff since `before` is computed once, and only for a write that
    // merged concurrent changes (to find new conflicts, and what they
    // touched); otherwise the changes themselves name what they touched.
    let (touched, found) = {
        let roster =
            !before.is_empty() && matches!(id, DocId::Roster { .. } | DocId::RosterPrivate { .. });
        let record = !before.is_empty() && matches!(id, DocId::Emulation { .. });
        let merged = !conflicts::linear(doc, before);
        let patches = merged.then(|| doc.diff(before, &doc.get_heads()));
        let patches = patches.as_deref().unwrap_or_default();
        let touched = if roster && merged {
            member::touched_members(patches).map(Touched::Members)
        } else if roster {
            // As for a record: the changes name the members they touched.
            am::touched_keys(doc, before, &["members"])
                .and_then(|mut k| k.pop())
                .map(Touched::Members)
        } else if record && merged {
            emulation::touched(patches).map(Touched::Entries)
        } else if record {
            // A record grows with every initiative: a diff would scan all
            // of it, the changes themselves name what they touched.
            emulation::touched_since(doc, before).map(Touched::Entries)
        } else {
            None
        };
        (touched, merged.then(|| conflicts::find(id, doc, patches)))
    };
    project(conn, row, id, doc, touched).await?;
    conflicts::track(conn, row, id, doc, found, now).await
}

/// What a write touched of a document whose rows are rewritten in part.
enum Touched {
    /// The members of a roster.
    Members(BTreeSet<String>),
    /// The initiatives and works of an emulation record.
    Entries(emulation::Touched),
}

/// The projection rows of one document; `touched`: what the write touched
/// of a roster or an emulation record (`None`: all of it).
async fn project(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
    touched: Option<Touched>,
) -> Result<()> {
    let (members, entries) = match touched {
        Some(Touched::Members(m)) => (Some(m), None),
        Some(Touched::Entries(e)) => (None, Some(e)),
        None => (None, None),
    };
    match id {
        DocId::Unit(_) => unit::project(conn, row, id, doc).await,
        DocId::Roster { bucket, .. } => project_roster(conn, row, *bucket, doc, members).await,
        DocId::RosterPrivate { unit, bucket } => {
            project_private(conn, unit, *bucket, doc, members).await
        }
        DocId::Campaign(_) => project_campaign(conn, row, id, doc).await,
        DocId::Emulation { .. } => project_emulation(conn, row, doc, entries).await,
        DocId::Proposal(_) => project_proposal(conn, row, id, doc).await,
        DocId::Award(_) => project_award(conn, row, id, doc).await,
        DocId::Decision(_) => project_decision(conn, row, id, doc).await,
        DocId::Node(_) => project_node(conn, row, id, doc).await,
    }
}

/// A node's entry and its seals (upserted: a seal never changes once made).
async fn project_node(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let n = hosting::read(id, doc)?;
    write(conn, [NodeRow::new(&n.info, row)]).await?;
    let mut seals = Vec::new();
    for s in &n.seals {
        for d in &s.docs {
            for h in &d.heads {
                seals.push(HostSealRow {
                    node: n.info.id.clone(),
                    decision: s.decision.to_string(),
                    doc_id: d.doc.clone(),
                    head: h.clone(),
                    sealed_at: s.at.clone(),
                });
            }
        }
    }
    write(conn, seals).await
}

/// A decision's list entry and its seals (rewritten whole).
async fn project_decision(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let d = reorg::read(id, doc)?;
    write(conn, [DecisionRow::new(&d, row)]).await?;
    sqlx::query("DELETE FROM decision_seals WHERE decision = $1")
        .bind(d.id.as_str())
        .execute(&mut *conn)
        .await?;
    let mut seals = Vec::new();
    for s in &d.seals {
        for h in &s.heads {
            seals.push(SealRow {
                decision: d.id.to_string(),
                doc_id: s.doc.clone(),
                head: h.clone(),
            });
        }
    }
    write(conn, seals).await
}

/// A public roster bucket: the touched members' rows.
async fn project_roster(
    conn: &mut AnyConnection,
    row: i64,
    bucket: u32,
    doc: &Automerge,
    touched: Option<BTreeSet<String>>,
) -> Result<()> {
    let members = member::read_many(doc, touched.as_ref())?;
    write(conn, members.iter().map(|m| MemberRow::new(m, row, bucket))).await
}

/// The rows of a roster new here, from what checking it read; `false`
/// (nothing written) if `read` is not what a document of `id`'s kind reads.
async fn project_read(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    read: &shape::Read,
) -> Result<bool> {
    match (id, read) {
        (DocId::Roster { bucket, .. }, shape::Read::Members(members)) => {
            write(
                conn,
                members.iter().map(|m| MemberRow::new(m, row, *bucket)),
            )
            .await?;
        }
        (DocId::RosterPrivate { unit, bucket }, shape::Read::Private(held)) => {
            let rows = held
                .iter()
                .map(|(m, p)| PrivateRow::new(m, unit, *bucket, p.clone()));
            write(conn, rows).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A private roster bucket: the touched members' rows, and the rows of
/// members it no longer holds removed.
async fn project_private(
    conn: &mut AnyConnection,
    unit: &UnitId,
    bucket: u32,
    doc: &Automerge,
    touched: Option<BTreeSet<String>>,
) -> Result<()> {
    let held = member::read_private(doc, touched.as_ref())?;
    forget_private_rows(conn, unit, bucket, touched, &held).await?;
    let rows = held
        .into_iter()
        .map(|(m, p)| PrivateRow::new(&m, unit, bucket, p));
    write(conn, rows).await
}

/// A campaign and its plans (the plans rewritten whole).
async fn project_campaign(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let c = campaign::read(id, doc)?;
    write(conn, [CampaignRow::new(&c, row)]).await?;
    sqlx::query("DELETE FROM campaign_plans WHERE campaign = $1")
        .bind(c.id.as_str())
        .execute(&mut *conn)
        .await?;
    write(conn, c.plans.iter().map(|(u, p)| PlanRow::new(&c, u, p))).await
}

/// An emulation record: its registration row, and the rows of the
/// initiatives and works the write touched (`None`: all of them, rewritten),
/// so that recording one more costs the same in a record of any size.
async fn project_emulation(
    conn: &mut AnyConnection,
    row: i64,
    doc: &Automerge,
    touched: Option<emulation::Touched>,
) -> Result<()> {
    let e = match &touched {
        Some(t) => emulation::read_touched(doc, t)?,
        None => emulation::read(doc)?,
    };
    write(conn, [RegistrationRow::new(&e, row)]).await?;
    match &touched {
        None => {
            delete_by_doc(conn, "initiatives", row).await?;
            delete_by_doc(conn, "works", row).await?;
        }
        Some(t) => {
            // A touched entry the record no longer holds: its row goes.
            for (table, ids, kept) in [
                (
                    "initiatives",
                    &t.initiatives,
                    e.initiatives
                        .iter()
                        .map(|i| i.id.as_str())
                        .collect::<Vec<_>>(),
                ),
                (
                    "works",
                    &t.works,
                    e.works.iter().map(|w| w.id.as_str()).collect(),
                ),
            ] {
                for gone in ids.iter().filter(|id| !kept.contains(&id.as_str())) {
                    delete_by_id(conn, table, row, gone).await?;
                }
            }
        }
    }
    let initiatives = e.initiatives.iter().map(|i| InitiativeRow::new(&e, i, row));
    write(conn, initiatives).await?;
    write(conn, e.works.iter().map(|w| WorkRow::new(&e, w, row))).await
}

async fn project_proposal(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let p = award::read_proposal(id, doc)?;
    write(conn, [ProposalRow::new(&p, row)]).await
}

/// An award decision and its recipients (rewritten whole).
async fn project_award(
    conn: &mut AnyConnection,
    row: i64,
    id: &DocId,
    doc: &Automerge,
) -> Result<()> {
    let a = award::read_award(id, doc)?;
    write(conn, [AwardRow::new(&a, row)]).await?;
    sqlx::query("DELETE FROM award_recipients WHERE award = $1")
        .bind(a.id.as_str())
        .execute(&mut *conn)
        .await?;
    let recipients = a
        .recipients
        .iter()
        .enumerate()
        .map(|(n, r)| RecipientRow::new(&a, n, r));
    write(conn, recipients).await
}

/// Deletes the `member_private` rows of this private roster bucket whose
/// member it no longer holds (removed by a de-identification): among the
/// touched members, or among all of the bucket's rows when the whole
/// document is re-read. A row projected from another bucket of the unit
/// (a member placed twice) is that bucket's to keep or remove.
async fn forget_private_rows(
    conn: &mut AnyConnection,
    unit: &UnitId,
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
