//! Units: the `units` row, the unit's dated parent links (`unit_links`,
//! rewritten whole), and the closure table kept right when a unit is new
//! or its parent changed.

use automerge::Automerge;
use hopluu_model::{DocId, timeline, unit};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::rows::{UnitLinkRow, UnitRow};
use super::sql::write;
use crate::Result;

/// Projects a unit: its row, its dated links, and the closure table. When
/// the parent link is new or changed, the unit's whole subtree (found by
/// parent links, so a child that arrived before its parent is attached
/// too) is re-linked in the closure table.
pub(super) async fn project(
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
    write(conn, [UnitRow::new(&u, row)]).await?;
    // The root stores no parent: keep NULL rather than '' for it.
    if parent.is_none() {
        sqlx::query("UPDATE units SET parent = NULL WHERE id = $1")
            .bind(u.id.as_str())
            .execute(&mut *conn)
            .await?;
    }
    // Every decision may reshape the whole timeline (a later decision with
    // an earlier effective date replaces what follows it): rewrite it.
    sqlx::query("DELETE FROM unit_links WHERE unit = $1")
        .bind(u.id.as_str())
        .execute(&mut *conn)
        .await?;
    let links = timeline::parent_links(&u);
    write(conn, links.iter().map(|l| UnitLinkRow::new(&u, l))).await?;
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
