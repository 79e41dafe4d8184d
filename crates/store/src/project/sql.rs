//! Writing projection rows: values bound into generated statements, many
//! rows per statement, and the [`Row`] trait that ties a typed row to its
//! table so that columns and values cannot drift apart.

use sqlx::{AnyConnection, AssertSqlSafe};

use crate::Result;

/// A value bound into a generated statement.
#[derive(Debug, Clone)]
pub(crate) enum V {
    S(String),
    I(i64),
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

/// One projection row of [`Row::TABLE`]. Declared with [`row!`], whose
/// field names are the columns, so the values bound are always in the
/// columns' order.
pub(crate) trait Row {
    const TABLE: &'static str;
    /// Every column written, in the order [`Row::bind`] pushes values.
    const COLUMNS: &'static [&'static str];
    /// The conflict target of the upsert.
    const KEY: &'static [&'static str];
    /// Replace an existing row only where this SQL condition (over
    /// `excluded` and the table) holds.
    const GUARD: Option<&'static str> = None;
    /// Pushes the row's values, one per column.
    fn bind(self, out: &mut Vec<V>);
}

/// Declares a [`Row`]: `Name in "table", key [..] (, guard ".." )? { column: type, .. }`.
macro_rules! row {
    (
        $(#[$meta:meta])*
        $name:ident in $table:literal, key [$($key:literal),+ $(,)?] $(, guard $guard:literal)? {
            $($(#[$fmeta:meta])* $field:ident: $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty),+
        }

        impl $crate::project::sql::Row for $name {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];
            const KEY: &'static [&'static str] = &[$($key),+];
            $(const GUARD: Option<&'static str> = Some($guard);)?
            fn bind(self, out: &mut Vec<$crate::project::sql::V>) {
                $(out.push(self.$field.into());)+
            }
        }
    };
}
pub(crate) use row;

/// Upserts typed rows into their table.
pub(crate) async fn write<R: Row>(
    conn: &mut AnyConnection,
    rows: impl IntoIterator<Item = R>,
) -> Result<()> {
    let rows = rows
        .into_iter()
        .map(|r| {
            let mut values = Vec::with_capacity(R::COLUMNS.len());
            r.bind(&mut values);
            values
        })
        .collect();
    upsert_where(conn, R::TABLE, R::COLUMNS, R::KEY, rows, R::GUARD).await
}

/// `AnyConnection::backend_name` of a SQLite connection.
const SQLITE: &str = "SQLite";

/// Upserts `rows` into `table`, many rows per statement, replacing an
/// existing row only where `guard` holds (an SQL condition over `excluded`
/// and the table).
async fn upsert_where(
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
    // SQLite gets anonymous `?` placeholders: for numbered ones sqlx asks
    // SQLite each parameter's name, and SQLite finds a name by scanning
    // the statement's list of them, so binding N numbered parameters
    // costs N²/2 steps (27 % of the national node's CPU in an initial
    // aggregation, at 4,000 parameters a statement).
    let numbered = conn.backend_name() != SQLITE;
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
                if numbered {
                    sql.push_str(&format!("${n}"));
                } else {
                    sql.push('?');
                }
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

/// Deletes the row `id` of `table` that document `doc` projected.
pub(crate) async fn delete_by_id(
    conn: &mut AnyConnection,
    table: &str,
    doc: i64,
    id: &str,
) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE doc = $1 AND id = $2"
    )))
    .bind(doc)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn delete_by_doc(conn: &mut AnyConnection, table: &str, doc: i64) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE doc = $1")))
        .bind(doc)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Row};

    use super::*;

    /// The SQLite path binds anonymous placeholders in order: thousands of
    /// rows over several statements come back as written (and the name
    /// the fast path keys on is the one sqlx gives SQLite).
    #[tokio::test]
    async fn many_rows_upsert_through_anonymous_placeholders_on_sqlite() {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        assert_eq!(conn.backend_name(), SQLITE);
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, a TEXT NOT NULL, n INTEGER NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = |tag: &str| -> Vec<Vec<V>> {
            (0..5_000i64)
                .map(|i| {
                    vec![
                        V::S(format!("k{i}")),
                        V::S(format!("{tag}{i}")),
                        V::I(i * 3),
                    ]
                })
                .collect()
        };
        let cols = ["k", "a", "n"];
        upsert_where(&mut conn, "t", &cols, &["k"], rows("a"), None)
            .await
            .unwrap();
        // Replaced where the guard holds only.
        upsert_where(
            &mut conn,
            "t",
            &cols,
            &["k"],
            rows("b"),
            Some("excluded.n % 2 = 0"),
        )
        .await
        .unwrap();
        let got = sqlx::query("SELECT k, a, n FROM t ORDER BY n")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(got.len(), 5_000);
        for (i, r) in got.iter().enumerate() {
            let tag = if (i * 3) % 2 == 0 { "b" } else { "a" };
            assert_eq!(r.get::<String, _>(0), format!("k{i}"));
            assert_eq!(r.get::<String, _>(1), format!("{tag}{i}"));
            assert_eq!(r.get::<i64, _>(2), i as i64 * 3);
        }
    }
}
