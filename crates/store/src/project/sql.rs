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

pub(crate) async fn delete_by_doc(conn: &mut AnyConnection, table: &str, doc: i64) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE doc = $1")))
        .bind(doc)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
