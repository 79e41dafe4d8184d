//! Opening the database: SQLite file (created if missing) or PostgreSQL,
//! connection settings that make a commit durable, and migrations.

use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hopluu_model::Clock;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Row};

use crate::{DocCache, Inner, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Parses the backend from a `sqlite:` or `postgres://` url.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Url(format!(
                "expected sqlite:PATH or postgres://…, got {:?}",
                redact(url)
            )))
        }
    }
}

/// A url with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some(s) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[s + 3..];
    // The authority ends at the first '/', '?' or '#'; the user info ends
    // at its *last* '@' (a password may hold '@', as a url parser reads it).
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let creds = &authority[..at];
    match creds.find(':') {
        Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Tunables of a store; the defaults suit a provincial node.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// Documents kept decoded in memory, at most.
    pub cache_docs: usize,
    /// The memory those documents may take, estimated from their
    /// operations and changes ([`crate::cache`]): the bound that binds
    /// where rosters are large or many.
    pub cache_bytes: usize,
    /// Members per roster bucket before a new bucket opens (DESIGN §3).
    pub bucket_size: usize,
    /// Chunks are folded into a new snapshot when their total size exceeds
    /// the snapshot's size times this factor (and at least `compact_min_bytes`).
    pub compact_factor: f64,
    pub compact_min_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            cache_docs: 10_000,
            cache_bytes: 256 << 20,
            bucket_size: 1000,
            compact_factor: 1.0,
            compact_min_bytes: 4096,
        }
    }
}

static MIGRATE_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATE_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens (creating if needed) the database at `url` and migrates it.
    ///
    /// SQLite: `sqlite:PATH` (the file and its directory are created);
    /// WAL journal, `synchronous=FULL` (a committed write survives a power
    /// loss), foreign keys on, a busy timeout, temporary data in memory.
    /// PostgreSQL: `postgres://…`.
    /// `clock` stamps every time the store writes.
    pub async fn open(url: &str, options: StoreOptions, clock: Arc<dyn Clock>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if path.is_empty() || path == ":memory:" {
                    return Err(StoreError::Url(
                        "an in-memory SQLite database would lose every write: give a file path"
                            .into(),
                    ));
                }
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Url(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                format!("sqlite://{path}?mode=rwc")
            }
            Backend::Postgres => url.to_owned(),
        };
        let mut pool = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Postgres {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    // Every statement planned for the table as it stands:
                    // a generic plan made while a table was small (a seq
                    // scan) stays cached as it grows, and a card-number
                    // lookup in a union of 50,000 members then scans them
                    // all on every import batch.
                    conn.execute("SET plan_cache_mode = force_custom_plan")
                        .await?;
                    Ok(())
                })
            });
        }
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    // Durability first: WAL with a full sync on every commit.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // Statement journals (a multi-row upsert's undo, needed
                    // only while the statement runs) kept in memory: in
                    // files they were a write and a seek per page, about a
                    // twentieth of the national node's aggregation CPU.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    Ok(())
                })
            });
        }
        let opts = sqlx::any::AnyConnectOptions::from_str(&url)?;
        let pool = pool.connect_with(opts).await?;
        match backend {
            Backend::Sqlite => MIGRATE_SQLITE.run(&pool).await?,
            Backend::Postgres => MIGRATE_POSTGRES.run(&pool).await?,
        }
        let incarnation = load_incarnation(&pool).await?;
        let tree = crate::read::load_tree(&pool).await?;
        let position = crate::read::load_feed_position(&pool).await?;
        let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
            .fetch_one(&pool)
            .await?;
        let sealed: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM decision_seals) + (SELECT COUNT(*) FROM host_seals)",
        )
        .fetch_one(&pool)
        .await?;
        let control: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM docs WHERE doc_id LIKE 'decision/%' OR doc_id LIKE 'node/%'",
        )
        .fetch_one(&pool)
        .await?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                backend,
                cache: Mutex::new(DocCache::new(options.cache_docs, options.cache_bytes)),
                options,
                clock,
                incarnation,
                writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
                ready: std::sync::Arc::new(tokio::sync::Semaphore::new(crate::READY_SLOTS)),
                tree: RwLock::new(Arc::new(tree)),
                feed: tokio::sync::watch::Sender::new(position),
                quarantine_hint: std::sync::atomic::AtomicBool::new(quarantined > 0),
                quarantine_generation: std::sync::atomic::AtomicU64::new(0),
                seals_hint: std::sync::atomic::AtomicBool::new(sealed > 0),
                control_seq: std::sync::atomic::AtomicI64::new(control.unwrap_or(0)),
            }),
        })
    }

    /// Checks the database's own consistency (SQLite `integrity_check`;
    /// PostgreSQL answers a query). Returns the problems found.
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        match self.inner.backend {
            Backend::Sqlite => {
                let rows = sqlx::query("PRAGMA integrity_check")
                    .fetch_all(&self.inner.pool)
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .filter(|s| s != "ok")
                    .collect())
            }
            Backend::Postgres => {
                sqlx::query("SELECT 1").execute(&self.inner.pool).await?;
                Ok(Vec::new())
            }
        }
    }
}

/// Runs one administrative statement (e.g. `CREATE DATABASE`) on a server
/// given by url; an empty statement only checks that the server answers.
/// Used by tests and benchmarks that make their own databases.
pub async fn admin_execute(url: &str, sql: &str) -> Result<()> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    if !sql.is_empty() {
        conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await?;
    }
    conn.close().await?;
    Ok(())
}

async fn load_incarnation(pool: &sqlx::AnyPool) -> Result<Vec<u8>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = 'incarnation'")
        .fetch_optional(pool)
        .await?;
    if let Some(row) = row {
        let hex: String = row.get(0);
        return Ok(decode_hex(&hex));
    }
    let bytes: [u8; 8] = rand::random();
    let hex = encode_hex(&bytes);
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('incarnation', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&hex)
    .execute(pool)
    .await?;
    // Another process may have won the race: read what is stored.
    let row = sqlx::query("SELECT value FROM meta WHERE key = 'incarnation'")
        .fetch_one(pool)
        .await?;
    Ok(decode_hex(&row.get::<String, _>(0)))
}

/// `$1, $2, …, $n`: the placeholders of an `IN` list bound value by value.
pub(crate) fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `'a','b'` for an `IN` list written inline. Only for unit and member
/// ids: they are slugs (`[a-z0-9-_]`, checked when parsed), so quoting
/// them inline is safe.
pub(crate) fn in_list<T: AsRef<str>>(ids: &[T]) -> String {
    ids.iter()
        .map(|u| format!("'{}'", u.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Backend::of_url("sqlite:data/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("postgres://postgres@127.0.0.1/test").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://x").is_err());
        assert_eq!(
            redact("postgres://hopluu:secret@db:5432/vn"),
            "postgres://hopluu:***@db:5432/vn"
        );
        assert_eq!(
            redact("postgres://postgres@db/vn"),
            "postgres://postgres@db/vn"
        );
        // A password holding '@' is hidden whole (the fuzzer's find).
        assert_eq!(
            redact("postgres://hopluu:p@ss@db:5432/hopluu"),
            "postgres://hopluu:***@db:5432/hopluu"
        );
        // An '@' after the authority is not user info.
        assert_eq!(
            redact("postgres://db:5432/vn?options=a@b"),
            "postgres://db:5432/vn?options=a@b"
        );
        assert_eq!(
            decode_hex(&encode_hex(&[0, 1, 254, 255])),
            vec![0, 1, 254, 255]
        );
    }
}
