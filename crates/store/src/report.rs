//! The federation's reports, computed in SQL over the projections as the
//! tree stood on a date: one row per unit directly below the report's unit
//! on that date (each summing its whole subtree then), one for records held
//! by the unit itself where it has any, and a total.
//!
//! The tree of a date comes from `unit_links` (each unit's parent links as
//! dated intervals, `hopluu_model::timeline`): a recursive query walks it
//! down from the report's unit, keeping at each level the links that hold
//! on the date, one index lookup per level. So a province merged in 2025
//! keeps its 2023 initiatives in a report as of 2023, and a district closed
//! in 2025 is no row of a report as of 2026. Members count by their
//! records' dates (`since_on`, `status_on`), works by completion, awards by
//! decision and revocation.

use std::collections::BTreeMap;

use hopluu_model::{CampaignId, Date, UnitId};
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersRow {
    pub unit_id: String,
    pub unit_name: String,
    pub total: u64,
    pub active: u64,
    pub transferred: u64,
    pub left: u64,
    pub ceased: u64,
    pub male: u64,
    pub female: u64,
    pub other_gender: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InitiativesRow {
    pub unit_id: String,
    pub unit_name: String,
    pub recorded: u64,
    pub valid: u64,
    pub plan: u64,
    /// Valid initiatives as a percentage of plan (0 without a plan).
    pub percent_of_plan: f64,
    /// 1 = best percentage among the rows (ties share a rank); 0 on the total.
    pub rank: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwardsRow {
    pub award_type: String,
    pub level: String,
    pub year: u32,
    /// Recipients in the subtree (revoked awards excluded).
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorksRow {
    pub unit_id: String,
    pub unit_name: String,
    pub count: u64,
    pub value_vnd: i64,
    pub plaques: u64,
}

/// Rows keyed by group unit: the units directly below `unit` on `as_of`,
/// and `unit` itself for records it holds directly.
async fn groups(store: &Store, unit: &UnitId, as_of: Date) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let me = sqlx::query("SELECT id, name FROM units WHERE id = $1")
        .bind(unit.as_str())
        .fetch_optional(store.pool())
        .await?;
    if let Some(r) = me {
        out.push((r.get(0), r.get(1)));
    }
    let rows = sqlx::query(
        "SELECT u.id, u.name FROM unit_links l JOIN units u ON u.id = l.unit \
         WHERE l.parent = $1 AND l.valid_from <= $2 AND l.valid_to > $2 AND l.unit <> $1 \
         ORDER BY u.name, u.id",
    )
    .bind(unit.as_str())
    .bind(as_of.to_string())
    .fetch_all(store.pool())
    .await?;
    out.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    Ok(out)
}

/// A report's row, summed over a group's subtree.
trait GroupRow: Default {
    fn name(&mut self, unit_id: String, unit_name: String);
    /// Adds this row's counts to `total`.
    fn add_to(&self, total: &mut Self);
}

/// The report's rows in [`groups`] order, each found in `by` or empty (the
/// unit's own row only where it holds records), and their total.
async fn rollup<R: GroupRow>(
    store: &Store,
    unit: &UnitId,
    as_of: Date,
    mut by: BTreeMap<String, R>,
) -> Result<(Vec<R>, R)> {
    let mut out = Vec::new();
    let mut total = R::default();
    total.name(unit.to_string(), "Tổng cộng".to_owned());
    for (id, name) in groups(store, unit, as_of).await? {
        let row = by.remove(&id);
        if row.is_none() && id == unit.as_str() {
            continue;
        }
        let mut row = row.unwrap_or_default();
        row.name(id, name);
        row.add_to(&mut total);
        out.push(row);
    }
    Ok((out, total))
}

impl GroupRow for MembersRow {
    fn name(&mut self, unit_id: String, unit_name: String) {
        (self.unit_id, self.unit_name) = (unit_id, unit_name);
    }
    fn add_to(&self, total: &mut Self) {
        total.total += self.total;
        total.active += self.active;
        total.transferred += self.transferred;
        total.left += self.left;
        total.ceased += self.ceased;
        total.male += self.male;
        total.female += self.female;
        total.other_gender += self.other_gender;
    }
}

impl GroupRow for InitiativesRow {
    fn name(&mut self, unit_id: String, unit_name: String) {
        (self.unit_id, self.unit_name) = (unit_id, unit_name);
    }
    fn add_to(&self, total: &mut Self) {
        total.recorded += self.recorded;
        total.valid += self.valid;
        total.plan += self.plan;
    }
}

impl GroupRow for WorksRow {
    fn name(&mut self, unit_id: String, unit_name: String) {
        (self.unit_id, self.unit_name) = (unit_id, unit_name);
    }
    fn add_to(&self, total: &mut Self) {
        total.count += self.count;
        total.value_vnd += self.value_vnd;
        total.plaques += self.plaques;
    }
}

/// `WITH` clauses naming, for the report's unit `$1` on the date `$2`,
/// `grp_of(unit, grp)`: every unit of its subtree then, with the group it
/// reports under (the unit directly below `$1` above it, or `$1` itself).
/// Each level keeps the links that hold on the date (one index lookup on
/// `unit_links (parent, valid_from)`); the depth bound and the exclusion
/// of `$1` keep a cycle in links from outside from looping or counting
/// twice.
const TREE_ON: &str = "WITH RECURSIVE sub(unit, grp, depth) AS ( \
        SELECT l.unit, l.unit, 1 FROM unit_links l \
        WHERE l.parent = $1 AND l.valid_from <= $2 AND l.valid_to > $2 AND l.unit <> $1 \
        UNION ALL SELECT l.unit, sub.grp, sub.depth + 1 FROM unit_links l JOIN sub ON l.parent = sub.unit \
        WHERE l.valid_from <= $2 AND l.valid_to > $2 AND l.unit <> $1 AND sub.depth < 64), \
    grp_of(unit, grp) AS (SELECT DISTINCT unit, grp FROM sub UNION ALL SELECT $1, $1)";

impl Store {
    /// Member records by status and gender on `as_of`: a record counts
    /// from the day it began (`since_on`), and is active until the day its
    /// membership ended (`status_on`, which counts as ended).
    pub async fn members_report(
        &self,
        unit: &UnitId,
        as_of: Date,
    ) -> Result<(Vec<MembersRow>, MembersRow)> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{TREE_ON} SELECT g.grp, \
             CASE WHEN m.status = 'active' OR m.status_on > $2 THEN 'active' ELSE m.status END, \
             m.gender, COUNT(*) FROM members m JOIN grp_of g ON g.unit = m.unit_id \
             WHERE m.since_on <= $2 GROUP BY 1, 2, 3"
        )))
        .bind(unit.as_str())
        .bind(as_of.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut by: BTreeMap<String, MembersRow> = BTreeMap::new();
        for r in rows {
            let grp: String = r.get(0);
            let status: String = r.get(1);
            let gender: String = r.get(2);
            let n = r.get::<i64, _>(3) as u64;
            let row = by.entry(grp).or_default();
            row.total += n;
            match status.as_str() {
                "active" => row.active += n,
                "transferred" => row.transferred += n,
                "left" => row.left += n,
                _ => row.ceased += n,
            }
            // Gender counts describe the members active on the date.
            if status == "active" {
                match gender.as_str() {
                    "male" => row.male += n,
                    "female" => row.female += n,
                    _ => row.other_gender += n,
                }
            }
        }
        rollup(self, unit, as_of, by).await
    }

    /// Initiatives against plan in `campaign`, both grouped by the tree of
    /// `as_of`, ranked by percentage of plan.
    pub async fn initiatives_report(
        &self,
        campaign: &CampaignId,
        unit: &UnitId,
        as_of: Date,
    ) -> Result<(Vec<InitiativesRow>, InitiativesRow)> {
        let counts = sqlx::query(AssertSqlSafe(format!(
            "{TREE_ON} SELECT g.grp, COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN i.status IN ('valid', 'recognised') THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM initiatives i JOIN grp_of g ON g.unit = i.unit_id \
             WHERE i.campaign = $3 GROUP BY g.grp"
        )))
        .bind(unit.as_str())
        .bind(as_of.to_string())
        .bind(campaign.as_str())
        .fetch_all(self.pool())
        .await?;
        let plans = sqlx::query(AssertSqlSafe(format!(
            "{TREE_ON} SELECT g.grp, CAST(COALESCE(SUM(p.initiative_quota), 0) AS BIGINT) \
             FROM campaign_plans p JOIN grp_of g ON g.unit = p.unit_id \
             WHERE p.campaign = $3 GROUP BY g.grp"
        )))
        .bind(unit.as_str())
        .bind(as_of.to_string())
        .bind(campaign.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut by: BTreeMap<String, InitiativesRow> = BTreeMap::new();
        for r in counts {
            let row = by.entry(r.get(0)).or_default();
            row.recorded = r.get::<i64, _>(1) as u64;
            row.valid = r.get::<i64, _>(2) as u64;
        }
        for r in plans {
            by.entry(r.get(0)).or_default().plan = r.get::<i64, _>(1) as u64;
        }
        let (mut out, mut total) = rollup(self, unit, as_of, by).await?;
        for row in &mut out {
            row.percent_of_plan = percent(row.valid, row.plan);
        }
        total.percent_of_plan = percent(total.valid, total.plan);
        // Rank by percentage of plan, then by valid count; ties share a rank.
        let mut order: Vec<usize> = (0..out.len()).collect();
        order.sort_by(|&a, &b| {
            out[b]
                .percent_of_plan
                .total_cmp(&out[a].percent_of_plan)
                .then(out[b].valid.cmp(&out[a].valid))
        });
        let mut rank = 0;
        let mut prev: Option<(f64, u64)> = None;
        for (i, &idx) in order.iter().enumerate() {
            let key = (out[idx].percent_of_plan, out[idx].valid);
            if prev != Some(key) {
                rank = i as u32 + 1;
                prev = Some(key);
            }
            out[idx].rank = rank;
        }
        Ok((out, total))
    }

    /// Award recipients in the subtree of `as_of`, by type, level and
    /// year: awards decided by then and not revoked by then.
    pub async fn awards_report(
        &self,
        unit: &UnitId,
        year: Option<u32>,
        as_of: Date,
    ) -> Result<Vec<AwardsRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{TREE_ON} SELECT a.award_type, a.level, a.year, COUNT(*) FROM awards a \
             JOIN award_recipients r ON r.award = a.id \
             JOIN grp_of g ON g.unit = r.unit_id \
             WHERE a.decided_on <= $2 AND (a.revoked = 0 OR a.revoked_on > $2) \
             AND ($3 = 0 OR a.year = $3) \
             GROUP BY a.award_type, a.level, a.year ORDER BY a.year DESC, a.level, a.award_type"
        )))
        .bind(unit.as_str())
        .bind(as_of.to_string())
        .bind(i64::from(year.unwrap_or(0)))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| AwardsRow {
                award_type: r.get(0),
                level: r.get(1),
                year: r.get::<i64, _>(2) as u32,
                count: r.get::<i64, _>(3) as u64,
            })
            .collect())
    }

    /// Dedicated works completed by `as_of` (or without a completion
    /// date), of one campaign or all, grouped by the tree of `as_of`.
    pub async fn works_report(
        &self,
        unit: &UnitId,
        campaign: Option<&CampaignId>,
        as_of: Date,
    ) -> Result<(Vec<WorksRow>, WorksRow)> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{TREE_ON} SELECT g.grp, COUNT(*), CAST(COALESCE(SUM(w.value_vnd), 0) AS BIGINT), \
             CAST(COALESCE(SUM(w.plaque), 0) AS BIGINT) \
             FROM works w JOIN grp_of g ON g.unit = w.unit_id \
             WHERE ($3 = '' OR w.campaign = $3) AND (w.completed_on = '' OR w.completed_on <= $2) \
             GROUP BY g.grp"
        )))
        .bind(unit.as_str())
        .bind(as_of.to_string())
        .bind(campaign.map(|c| c.as_str()).unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        let mut by: BTreeMap<String, WorksRow> = BTreeMap::new();
        for r in rows {
            let row = by.entry(r.get(0)).or_default();
            row.count = r.get::<i64, _>(1) as u64;
            row.value_vnd = r.get(2);
            row.plaques = r.get::<i64, _>(3) as u64;
        }
        rollup(self, unit, as_of, by).await
    }
}

fn percent(valid: u64, plan: u64) -> f64 {
    if plan == 0 {
        0.0
    } else {
        (valid as f64 * 10_000.0 / plan as f64).round() / 100.0
    }
}
