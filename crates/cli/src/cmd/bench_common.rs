//! What `hopluu bench` and `hopluu bench-sync` share: the synthetic members
//! both load, and a throwaway PostgreSQL database for a run.

use anyhow::{Result, anyhow};
use hopluu_proto::v1 as pb;

/// The `i`-th synthetic member; the same `i` gives the same member, so a
/// re-import of a range updates rather than creates.
pub fn member_input(i: usize, position: &str) -> pb::MemberInput {
    pb::MemberInput {
        full_name: format!("Nguyễn Văn Thành {i}"),
        birth_date: format!("19{:02}-{:02}-{:02}", 60 + i % 40, 1 + i % 12, 1 + i % 28),
        gender: if i.is_multiple_of(2) {
            pb::Gender::Male
        } else {
            pb::Gender::Female
        } as i32,
        card_number: format!("CD{i:09}"),
        joined_on: "2020-05-01".into(),
        position: position.to_owned(),
        national_id: format!("{:012}", 1_000_000_000 + i),
        ethnicity: "Kinh".into(),
        religion: String::new(),
    }
}

/// A throwaway PostgreSQL database on the server of an administrative
/// connection, dropped by [`ThrowawayDb::drop`].
pub struct ThrowawayDb {
    admin: String,
    name: String,
    /// The connection URL of the new database.
    pub url: String,
}

impl ThrowawayDb {
    /// Creates the database `name` through `admin`, first dropping one an
    /// interrupted run may have left.
    pub async fn create(admin: &str, name: String) -> Result<ThrowawayDb> {
        admin_sql(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
        admin_sql(admin, &format!("CREATE DATABASE {name}")).await?;
        Ok(ThrowawayDb {
            admin: admin.to_owned(),
            url: database_url(admin, &name),
            name,
        })
    }

    pub async fn drop(self) -> Result<()> {
        admin_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

/// Runs `sql` over the administrative connection `admin`; an empty `sql`
/// only checks that the server answers.
pub async fn admin_sql(admin: &str, sql: &str) -> Result<()> {
    hopluu_store::db::admin_execute(admin, sql)
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// `admin` naming the database `name` instead of its own; the options
/// after `?` (`sslmode`, a socket `host=/run/postgresql`) stay, since the
/// new database is reached the way the administrative one is.
fn database_url(admin: &str, name: &str) -> String {
    let (rest, query) = match admin.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (admin, None),
    };
    let authority = rest.find("://").map_or(0, |i| i + 3);
    let server = match rest[authority..].find('/') {
        Some(path) => &rest[..authority + path],
        None => rest,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_new_database_keeps_the_server_and_its_options() {
        assert_eq!(
            database_url("postgres://h/db?sslmode=disable", "hopluu_bench_1"),
            "postgres://h/hopluu_bench_1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url("postgres://h/db?host=/run/postgresql&sslmode=disable", "x"),
            "postgres://h/x?host=/run/postgresql&sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
    }
}
