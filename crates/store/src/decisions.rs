//! Reorganisation decisions as listed (the `decisions` projection), and the
//! counts a decision's dry run and checks read: active members per unit,
//! member records by status, documents by owner with their heads, where
//! named members are.
//! Every query takes its units in chunks, so a decision over thousands of
//! units is a handful of statements.

use std::collections::{BTreeMap, HashMap};

use automerge::ChangeHash;
use hopluu_model::{Date, DecisionId, DocId, MemberId, UnitId};
use sqlx::{AssertSqlSafe, Row};

use crate::db::{in_list, placeholders};
use crate::read::MemberLoc;
use crate::tx::heads_from_bytes;
use crate::{Result, Store, WriteTx};

/// A decision as the `decisions` projection lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionListRow {
    pub id: String,
    pub number: String,
    pub title: String,
    pub issuing_unit: String,
    pub decided_on: String,
    pub effective_on: String,
    pub applied_at: String,
    pub applied_by: String,
    pub steps: u64,
    pub units_created: u64,
    pub units_moved: u64,
    pub units_closed: u64,
    pub members_transferred: u64,
    pub members_ceased: u64,
}

const COLUMNS: &str = "d.id, d.number, d.title, d.issuing_unit, d.decided_on, d.effective_on, \
    d.applied_at, d.applied_by, d.steps, d.units_created, d.units_moved, d.units_closed, \
    d.members_transferred, d.members_ceased";

fn list_row(r: &sqlx::any::AnyRow) -> DecisionListRow {
    let n = |i: usize| r.get::<i64, _>(i).max(0) as u64;
    DecisionListRow {
        id: r.get(0),
        number: r.get(1),
        title: r.get(2),
        issuing_unit: r.get(3),
        decided_on: r.get(4),
        effective_on: r.get(5),
        applied_at: r.get(6),
        applied_by: r.get(7),
        steps: n(8),
        units_created: n(9),
        units_moved: n(10),
        units_closed: n(11),
        members_transferred: n(12),
        members_ceased: n(13),
    }
}

const CHUNK: usize = 500;

impl Store {
    /// Decisions issued by `within` or a unit below it (all when `None`),
    /// newest effective date first.
    pub async fn list_decisions(&self, within: Option<&UnitId>) -> Result<Vec<DecisionListRow>> {
        let rows = match within {
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM decisions d ORDER BY d.effective_on DESC, d.applied_at DESC, d.id"
                )))
                .fetch_all(self.pool())
                .await?
            }
            Some(u) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM decisions d JOIN unit_closure c \
                     ON c.descendant = d.issuing_unit AND c.ancestor = $1 \
                     ORDER BY d.effective_on DESC, d.applied_at DESC, d.id"
                )))
                .bind(u.as_str())
                .fetch_all(self.pool())
                .await?
            }
        };
        Ok(rows.iter().map(list_row).collect())
    }

    /// One decision's list entry.
    pub async fn decision_row(&self, id: &DecisionId) -> Result<Option<DecisionListRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM decisions d WHERE d.id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(list_row))
    }

    /// The decisions carrying this number (numbers are unique only per
    /// issuing unit and year).
    pub async fn decisions_numbered(&self, number: &str) -> Result<Vec<DecisionId>> {
        let rows = sqlx::query("SELECT id FROM decisions WHERE number = $1 ORDER BY id")
            .bind(number.trim())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok(DecisionId::parse("id", &r.get::<String, _>(0))?))
            .collect()
    }

    /// Active members of each of `units` (units with none are absent).
    pub async fn active_member_counts(&self, units: &[UnitId]) -> Result<HashMap<UnitId, u64>> {
        let mut out = HashMap::new();
        for chunk in units.chunks(CHUNK) {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT unit_id, COUNT(*) FROM members WHERE status = 'active' \
                 AND unit_id IN ({}) GROUP BY unit_id",
                in_list(chunk)
            )))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                out.insert(
                    UnitId::parse("unit_id", &r.get::<String, _>(0))?,
                    r.get::<i64, _>(1) as u64,
                );
            }
        }
        Ok(out)
    }

    /// The day each of `units` came into existence: its first parent
    /// link's (units without links are absent).
    pub async fn units_created_on(&self, units: &[UnitId]) -> Result<HashMap<UnitId, Date>> {
        let mut out = HashMap::new();
        for chunk in units.chunks(CHUNK) {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT unit, MIN(valid_from) FROM unit_links WHERE unit IN ({}) GROUP BY unit",
                in_list(chunk)
            )))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                out.insert(
                    UnitId::parse("unit", &r.get::<String, _>(0))?,
                    Date::parse("valid_from", &r.get::<String, _>(1))?,
                );
            }
        }
        Ok(out)
    }

    /// Member records of `units`, by status.
    pub async fn member_status_counts(&self, units: &[UnitId]) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for chunk in units.chunks(CHUNK) {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT status, COUNT(*) FROM members WHERE unit_id IN ({}) GROUP BY status",
                in_list(chunk)
            )))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                *out.entry(r.get::<String, _>(0)).or_default() += r.get::<i64, _>(1) as u64;
            }
        }
        Ok(out)
    }

    /// Every stored document owned by `units`, with its heads: what a
    /// decision moving them seals.
    pub async fn docs_heads_owned_by(
        &self,
        units: &[UnitId],
    ) -> Result<Vec<(String, Vec<ChangeHash>)>> {
        let mut out = Vec::new();
        for chunk in units.chunks(CHUNK) {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT doc_id, heads FROM docs WHERE owner IN ({}) ORDER BY doc_id",
                in_list(chunk)
            )))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                out.push((
                    r.get::<String, _>(0),
                    heads_from_bytes(&r.get::<Vec<u8>, _>(1)),
                ));
            }
        }
        Ok(out)
    }

    /// Where each of `members` is active (members not active here are
    /// absent).
    pub async fn active_locations(
        &self,
        members: &[MemberId],
    ) -> Result<HashMap<MemberId, MemberLoc>> {
        let mut out = HashMap::new();
        for chunk in members.chunks(CHUNK) {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT member_id, unit_id, bucket, status, card_number FROM members \
                 WHERE status = 'active' AND member_id IN ({})",
                in_list(chunk)
            )))
            .fetch_all(self.pool())
            .await?;
            for r in &rows {
                let loc = crate::read::loc_row(r)?;
                out.insert(loc.member.clone(), loc);
            }
        }
        Ok(out)
    }
}

/// A seal's heads of one document, and whose changes they vouch for: a
/// decision's own seal for every maker (its applier held authority over
/// all of it), an old host's seal (`by`: that node) for the changes that
/// node made only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealHeads {
    pub heads: Vec<ChangeHash>,
    pub by: Option<String>,
}

impl SealHeads {
    /// Adds `h` to the heads of the seal by `by` in `seals`.
    pub fn add(seals: &mut Vec<SealHeads>, by: Option<&str>, h: ChangeHash) {
        match seals.iter_mut().find(|s| s.by.as_deref() == by) {
            Some(s) if s.heads.contains(&h) => {}
            Some(s) => s.heads.push(h),
            None => seals.push(SealHeads {
                heads: vec![h],
                by: by.map(str::to_owned),
            }),
        }
    }
}

impl WriteTx<'_> {
    /// The seals of each of `docs` that a decision held here moved, by the
    /// decision's applier or an old host (documents nobody sealed are
    /// absent). An old host's seal counts once the decision it names is
    /// held here. Read in the transaction, so a decision committed by
    /// another session before it counts.
    pub async fn sealed_heads(&mut self, docs: &[DocId]) -> Result<HashMap<DocId, Vec<SealHeads>>> {
        let mut out: HashMap<DocId, Vec<SealHeads>> = HashMap::new();
        if docs.is_empty() || !self.store().has_seals() {
            return Ok(out);
        }
        let keys: Vec<String> = docs.iter().map(DocId::to_string).collect();
        const QUERIES: [&str; 2] = [
            "SELECT doc_id, head, '' FROM decision_seals WHERE doc_id IN ({})",
            "SELECT s.doc_id, s.head, s.node FROM host_seals s \
             JOIN decisions d ON d.id = s.decision WHERE s.doc_id IN ({})",
        ];
        for chunk in keys.chunks(CHUNK) {
            for sql in QUERIES {
                let mut q =
                    sqlx::query(AssertSqlSafe(sql.replace("{}", &placeholders(chunk.len()))));
                for k in chunk {
                    q = q.bind(k.clone());
                }
                for r in q.fetch_all(&mut *self.conn()).await? {
                    let doc = DocId::parse("doc_id", &r.get::<String, _>(0))?;
                    let by: String = r.get(2);
                    if let Ok(h) = r.get::<String, _>(1).parse::<ChangeHash>() {
                        let by = (!by.is_empty()).then_some(by.as_str());
                        SealHeads::add(out.entry(doc).or_default(), by, h);
                    }
                }
            }
        }
        Ok(out)
    }
}
