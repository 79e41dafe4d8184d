//! The per-caller limit on client API requests (`[limits]`): a caller over
//! its budget is answered RESOURCE_EXHAUSTED naming the limit and when to
//! retry, on every client service at once, while other callers, health
//! checks and replication go on; its budget refills with the node's clock.
//!
//! These nodes run on a clock the test moves ([`Manual`]), so that nothing
//! here depends on how fast the machine is: time stands still while a test
//! makes its requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::{Context, Result, anyhow};
use hopluu_model::{Clock, Date};
use hopluu_node::NodeError;
use hopluu_node::config::{Config, LimitsSection};
use hopluu_node::server::{NodeServer, Serve};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::admin_service_client::AdminServiceClient;
use hopluu_proto::v1::node_service_client::NodeServiceClient;
use hopluu_proto::v1::report_service_client::ReportServiceClient;
use hopluu_proto::v1::unit_service_client::UnitServiceClient;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::*;

/// A clock that moves only when told to.
#[derive(Debug)]
struct Manual {
    millis: AtomicI64,
}

impl Manual {
    fn advance_ms(&self, ms: i64) {
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for Manual {
    fn today(&self) -> Date {
        Date::from_days_since_epoch(self.now_millis().div_euclid(86_400_000))
    }
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// A root node `vn` on the [`Manual`] clock, over mutual TLS.
struct Limited {
    addr: std::net::SocketAddr,
    clock: Arc<Manual>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), NodeError>>>,
    _dir: TempDir,
}

impl Limited {
    async fn start(limits: LimitsSection) -> Result<Limited> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::embedded(dir.path());
        config.limits = limits;
        config.tls = Some(node_tls(dir.path(), &config.node.id, &config.node.unit)?);
        let clock = Arc::new(Manual {
            millis: AtomicI64::new(today().days_since_epoch() * 86_400_000),
        });
        let app = hopluu_node::server::open(&config, clock.clone())
            .await
            .context("opening the node")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = NodeServer::new(app, Serve::from(&config))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(listener, async {
            let _ = stopped.await;
        }));
        Ok(Limited {
            addr,
            clock,
            stop: Some(stop),
            server: Some(server),
            _dir: dir,
        })
    }

    async fn as_(&self, caller: &Caller) -> Result<Channel> {
        channel_as(self.addr, caller).await
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let server = self.server.take().context("stopped twice")?;
        tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .context("the server did not stop within 10 s")??
            .map_err(|e| anyhow!("{e}"))
    }
}

/// One cheap client request: reading the root unit.
async fn get_unit(channel: &Channel) -> Result<pb::Unit, Status> {
    UnitServiceClient::new(channel.clone())
        .get_unit(pb::GetUnitRequest {
            unit_id: VN.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// `n` requests in a row, all served.
async fn served(channel: &Channel, n: u32, who: &str) -> Result<()> {
    for i in 0..n {
        get_unit(channel)
            .await
            .with_context(|| format!("request {} of {who}", i + 1))?;
    }
    Ok(())
}

/// The request was refused for the caller's budget; returns the status.
#[track_caller]
fn over_budget<T: std::fmt::Debug>(r: Result<T, Status>) -> Status {
    match r {
        Ok(ok) => panic!("expected RESOURCE_EXHAUSTED, got a success: {ok:?}"),
        Err(s) => {
            assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
            s
        }
    }
}

fn limits(requests_per_second: u32, burst: u32) -> LimitsSection {
    LimitsSection {
        requests_per_second,
        burst,
        ..LimitsSection::default()
    }
}

/// With the default limits, a staff member's burst of 200 requests is
/// served and the 201st refused, naming the limit and when to retry; the
/// budget is shared by every client service; another staff member, an
/// administrator and health checks are served meanwhile; and once the
/// budget refills the staff member is served again.
#[tokio::test]
async fn a_caller_over_its_budget_is_refused_and_others_are_not() -> Result<()> {
    let defaults = LimitsSection::default();
    assert_eq!((defaults.requests_per_second, defaults.burst), (50, 200));
    let node = Limited::start(defaults).await?;
    let clerk = node.as_(&Caller::staff("clerk-1", VN)).await?;
    let other = node.as_(&Caller::staff("clerk-2", VN)).await?;
    let admin = node.as_(&Caller::admin()).await?;

    served(&clerk, 200, "clerk-1").await?;
    let s = over_budget(get_unit(&clerk).await);
    let m = s.message();
    for part in [
        "too many requests",
        "staff of unit vn",
        "50 client API requests a second",
        "bursts of up to 200",
        "limits.requests_per_second",
        "limits.burst",
        "retry in 20 ms",
    ] {
        assert!(m.contains(part), "{part:?} not in {m:?}");
    }
    // The account name is not in the message.
    assert!(!m.contains("clerk-1"), "{m}");
    let meta = |key: &str| {
        s.metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(meta("retry-after").as_deref(), Some("1"));
    assert_eq!(meta("grpc-retry-pushback-ms").as_deref(), Some("20"));

    // One budget for every client service.
    over_budget(
        ReportServiceClient::new(clerk.clone())
            .members_report(pb::MembersReportRequest::default())
            .await,
    );
    over_budget(
        NodeServiceClient::new(clerk.clone())
            .get_node_info(pb::GetNodeInfoRequest {})
            .await,
    );

    // Others are unaffected, and so are health checks of the same caller.
    served(&other, 200, "clerk-2").await?;
    served(&admin, 10, "the administrator").await?;
    AdminServiceClient::new(admin.clone())
        .status(pb::StatusRequest {})
        .await?;
    HealthClient::new(clerk.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    over_budget(get_unit(&clerk).await);

    // 20 ms later one request is back; a full refill takes 4 s.
    node.clock.advance_ms(20);
    served(&clerk, 1, "clerk-1 after 20 ms").await?;
    over_budget(get_unit(&clerk).await);
    node.clock.advance_ms(4_000);
    served(&clerk, 200, "clerk-1 after 4 s").await?;
    over_budget(get_unit(&clerk).await);
    node.stop().await
}

/// The administrator's own budget runs out too (the admin service shares
/// it), and a node's certificate on the client API is limited before it
/// is refused for its role.
#[tokio::test]
async fn administrators_and_nodes_have_budgets_too() -> Result<()> {
    let node = Limited::start(limits(1, 3)).await?;
    let admin = node.as_(&Caller::admin()).await?;
    served(&admin, 2, "the administrator").await?;
    AdminServiceClient::new(admin.clone())
        .status(pb::StatusRequest {})
        .await?;
    let s = over_budget(
        AdminServiceClient::new(admin.clone())
            .status(pb::StatusRequest {})
            .await,
    );
    assert!(s.message().contains("an administrator"), "{}", s.message());
    assert!(s.message().contains("retry in 1.0 s"), "{}", s.message());
    assert_eq!(
        s.metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    let peer = node.as_(&Caller::node("hg", HG)).await?;
    for _ in 0..3 {
        let s = get_unit(&peer)
            .await
            .expect_err("a node may not read units");
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    }
    over_budget(get_unit(&peer).await);
    node.clock.advance_ms(1_000);
    served(&admin, 1, "the administrator after 1 s").await?;
    node.stop().await
}

/// `enabled = false` serves every request.
#[tokio::test]
async fn off_means_no_limit() -> Result<()> {
    let node = Limited::start(LimitsSection {
        enabled: false,
        ..limits(1, 1)
    })
    .await?;
    let clerk = node.as_(&Caller::staff("clerk-1", VN)).await?;
    served(&clerk, 20, "clerk-1").await?;
    node.stop().await
}

/// Bad values are refused at start with the field named; a zero is never
/// read as "no limit".
#[tokio::test]
async fn bad_limits_name_the_field() -> Result<()> {
    let base = "[node]\nid = \"vn\"\nunit = \"vn\"\n";
    for (limits, field) in [
        ("requests_per_second = 0", "limits.requests_per_second"),
        ("requests_per_second = 100001", "limits.requests_per_second"),
        ("burst = 0", "limits.burst"),
        ("enabled = false\nburst = 0", "limits.burst"),
        ("max_callers = 0", "limits.max_callers"),
        // serde names the line of a value of the wrong type.
        ("requests_per_second = -1", "line 5"),
        ("per_minute = 10", "per_minute"),
    ] {
        let e = Config::from_toml(&format!("{base}[limits]\n{limits}\n"))
            .expect_err(limits)
            .to_string();
        assert!(e.contains(field), "{limits}: {e}");
    }
    let e = Config::from_toml(&format!("{base}[limits]\nburst = 0\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.enabled = false"), "{e}");
    let ok = Config::from_toml(&format!(
        "{base}[limits]\nrequests_per_second = 5\nburst = 20\nmax_callers = 500\n"
    ))?;
    assert_eq!(
        ok.limits,
        LimitsSection {
            enabled: true,
            requests_per_second: 5,
            burst: 20,
            max_callers: 500,
        }
    );

    // A server made without a validated configuration checks them too.
    let dir = tempfile::tempdir()?;
    let config = Config::embedded(dir.path());
    let app =
        hopluu_node::server::open(&config, Arc::new(hopluu_model::FixedClock(today()))).await?;
    let mut serve = Serve::from(&config);
    serve.insecure_plaintext = true;
    serve.limits.burst = 0;
    let e = NodeServer::new(app.clone(), serve)
        .expect_err("a zero burst")
        .to_string();
    assert!(e.contains("limits.burst"), "{e}");
    app.store().close().await;
    Ok(())
}
