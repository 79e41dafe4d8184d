//! What the benchmarks share: the synthetic members they load, a throwaway
//! PostgreSQL database for a run, and one node started in-process for
//! `hopluu bench` and `hopluu bench-reorg`.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use hopluu_devcluster::pki::{Caller, Pki};
use hopluu_model::FixedClock;
use hopluu_node::app::App;
use hopluu_node::config::Config;
use hopluu_proto::v1 as pb;
use tonic::transport::Channel;

/// The databases a benchmark measures on, as each `bench` command takes them.
#[derive(clap::Args, Debug)]
pub struct Backends {
    /// Backends to measure: sqlite, postgres or both.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// A PostgreSQL server where the bench may create (and drop) a database.
    #[arg(
        long,
        env = "HOPLUU_TEST_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
}

/// One node serving mutual TLS on loopback with a fresh database (a temp
/// directory for SQLite, a throwaway PostgreSQL database), as every node
/// does; an administrator's channel to it.
pub struct BenchNode {
    pub app: Arc<App>,
    pub channel: Channel,
    pub dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), hopluu_node::NodeError>>,
    pg: Option<ThrowawayDb>,
}

impl BenchNode {
    /// Starts the node hosting `vn` on `backend` (sqlite or postgres; the
    /// latter on a database made through `postgres`), its clock fixed on
    /// `today`.
    pub async fn start(
        backend: &str,
        postgres: &str,
        today: hopluu_model::Date,
    ) -> Result<BenchNode> {
        let dir = tempfile::TempDir::new()?;
        let mut config = Config::embedded(dir.path());
        config.grpc.listen = "127.0.0.1:0".parse()?;
        // One node holds everything here, private data included (a national
        // node of a federation holds none: `private_depth`).
        config.replication.private_depth = 0;
        let pki = Pki::create(&dir.path().join("pki"), "hopluu bench CA")?;
        config.tls = Some(pki.node_tls(&config.node.id, &config.node.unit)?);
        let mut pg = None;
        match backend {
            "sqlite" => {}
            "postgres" => {
                admin_sql(postgres, "").await.with_context(|| {
                    "PostgreSQL is needed for this run (--backends sqlite skips it)".to_string()
                })?;
                let db =
                    ThrowawayDb::create(postgres, format!("hopluu_bench_{}", std::process::id()))
                        .await?;
                config.database.url = Some(db.url.clone());
                pg = Some(db);
            }
            other => anyhow::bail!("unknown backend {other:?}: expected sqlite or postgres"),
        }
        // One administrator makes thousands of requests as fast as the node
        // answers them: the per-caller limit would measure itself, and its
        // budget never refills on the fixed clock.
        config.limits.enabled = false;
        let app = hopluu_node::server::open(&config, Arc::new(FixedClock(today))).await?;
        let listener = tokio::net::TcpListener::bind(config.grpc.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hopluu_node::server::run(
            app.clone(),
            listener,
            hopluu_node::server::Serve {
                max_message_bytes: 64 << 20,
                ..hopluu_node::server::Serve::from(&config)
            },
            async {
                let _ = stopped.await;
            },
        ));
        let channel = pki.channel(addr, &Caller::admin()).await?;
        Ok(BenchNode {
            app,
            channel,
            dir,
            stop,
            server,
            pg,
        })
    }

    /// Bytes of the SQLite database file and its WAL (`None` on PostgreSQL).
    pub fn sqlite_file_bytes(&self) -> Option<u64> {
        self.pg
            .is_none()
            .then(|| sqlite_bytes(&self.dir.path().join("hopluu.sqlite")))
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await??;
        if let Some(db) = self.pg {
            db.drop().await?;
        }
        Ok(())
    }
}

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

/// Bytes of the SQLite database at `db` and of its WAL: every byte the
/// store holds on disk.
pub fn sqlite_bytes(db: &std::path::Path) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    size(db) + size(&db.with_extension("sqlite-wal"))
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
