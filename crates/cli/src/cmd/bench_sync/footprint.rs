//! What the national node's database holds, byte by byte: the whole
//! database (every page of the SQLite file and its WAL; PostgreSQL's
//! `pg_database_size`), and each table with its indexes and TOAST, so the
//! stored bytes per member can be told apart into documents and
//! projections.

use anyhow::{Context, Result};
use sqlx::Connection;

/// One table's bytes, its indexes' and (PostgreSQL) its TOAST's.
#[derive(Debug, Clone)]
pub(super) struct TableBytes {
    pub(super) table: String,
    pub(super) data: u64,
    pub(super) indexes: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Footprint {
    pub(super) total: u64,
    /// Largest first.
    pub(super) tables: Vec<TableBytes>,
}

impl Footprint {
    /// The tables holding at least `share` of the total, as
    /// `name data+indexes B/member`; the rest summed as `other`.
    pub(super) fn render(&self, members: usize, share: f64) -> String {
        let n = members.max(1) as f64;
        let mut parts = Vec::new();
        let mut other = 0u64;
        for t in &self.tables {
            let bytes = t.data + t.indexes;
            if (bytes as f64) < self.total as f64 * share {
                other += bytes;
                continue;
            }
            parts.push(format!(
                "{} {:.0}+{:.0}",
                t.table,
                t.data as f64 / n,
                t.indexes as f64 / n
            ));
        }
        if other > 0 {
            parts.push(format!("other {:.0}", other as f64 / n));
        }
        format!(
            "national store: {:.0} B/member; by table, data+indexes B/member: {}\n",
            self.total as f64 / n,
            parts.join(", ")
        )
    }
}

/// The footprint of the SQLite database at `path` (the node stopped).
pub(super) async fn sqlite(path: &std::path::Path) -> Result<Footprint> {
    let total = crate::cmd::bench_common::sqlite_bytes(path);
    let url = format!("sqlite:{}?mode=ro", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    // dbstat names each b-tree; the schema says which table an index is of.
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT COALESCE(m.tbl_name, d.name), \
                SUM(CASE WHEN m.type = 'index' THEN 0 ELSE d.pgsize END), \
                SUM(CASE WHEN m.type = 'index' THEN d.pgsize ELSE 0 END) \
         FROM dbstat d LEFT JOIN sqlite_schema m ON m.name = d.name \
         GROUP BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .context("reading dbstat")?;
    conn.close().await?;
    Ok(collect(total, rows))
}

/// The footprint of the PostgreSQL database at `url`.
pub(super) async fn postgres(url: &str) -> Result<Footprint> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the national database")?;
    // Sizes as the server writes them: VACUUM is what an operator runs,
    // and it leaves the file sizes the figures are about.
    let (total,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT c.relname::text, \
                (pg_table_size(c.oid))::bigint, \
                (pg_indexes_size(c.oid))::bigint \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r'",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(collect(total as u64, rows))
}

fn collect(total: u64, rows: Vec<(String, i64, i64)>) -> Footprint {
    let mut tables: Vec<TableBytes> = rows
        .into_iter()
        .map(|(table, data, indexes)| TableBytes {
            table,
            data: data.max(0) as u64,
            indexes: indexes.max(0) as u64,
        })
        .collect();
    tables.sort_by_key(|t| std::cmp::Reverse(t.data + t.indexes));
    Footprint { total, tables }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: &str = "INSERT INTO members (id, name) \
        SELECT 'member-' || i, 'Nguyễn Văn ' || i FROM ";

    /// Every byte is counted and each table carries its own indexes.
    fn check(f: &Footprint) {
        let members = f
            .tables
            .iter()
            .find(|t| t.table == "members")
            .expect("members listed");
        assert!(members.data >= 2_000 * 20, "{f:?}");
        assert!(members.indexes >= 2_000 * 8, "{f:?}");
        let listed: u64 = f.tables.iter().map(|t| t.data + t.indexes).sum();
        assert!(f.total >= listed, "{f:?}");
        assert_eq!(f.tables[0].table, "members", "largest first: {f:?}");
    }

    #[tokio::test]
    async fn a_sqlite_database_is_counted_table_by_table() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("hopluu.sqlite");
        let url = format!("sqlite:{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            "CREATE TABLE members (id TEXT PRIMARY KEY, name TEXT NOT NULL)".to_owned(),
            "CREATE INDEX members_name ON members (name)".to_owned(),
            "CREATE TABLE meta (k TEXT)".to_owned(),
            format!(
                "{ROWS} (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
        check(&sqlite(&path).await.unwrap());
    }

    /// Needs the PostgreSQL server of `HOPLUU_TEST_PG` (the default
    /// address otherwise); fails without it, as every PostgreSQL test does.
    #[tokio::test]
    async fn a_postgres_database_is_counted_table_by_table() {
        let admin = std::env::var("HOPLUU_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let db = crate::cmd::bench_common::ThrowawayDb::create(
            &admin,
            format!("hopluu_footprint_{}", std::process::id()),
        )
        .await
        .expect("PostgreSQL is needed: start it or point HOPLUU_TEST_PG at one");
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for sql in [
            "CREATE TABLE members (id TEXT PRIMARY KEY, name TEXT NOT NULL)".to_owned(),
            "CREATE INDEX members_name ON members (name)".to_owned(),
            "CREATE TABLE meta (k TEXT)".to_owned(),
            format!("{ROWS} generate_series(1, 2000) AS i"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
        let f = postgres(&db.url).await;
        db.drop().await.unwrap();
        check(&f.unwrap());
    }

    #[test]
    fn the_rendering_names_the_big_tables_and_sums_the_rest() {
        let f = collect(
            10_000,
            vec![
                ("members".into(), 5_000, 3_000),
                ("docs".into(), 1_500, 100),
                ("meta".into(), 10, 0),
                ("feed".into(), 90, 0),
            ],
        );
        assert_eq!(
            f.render(100, 0.05),
            "national store: 100 B/member; by table, data+indexes B/member: \
             members 50+30, docs 15+1, other 1\n"
        );
    }
}
