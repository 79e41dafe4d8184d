//! Running a node: open the store, build the [`App`], serve every gRPC
//! service (plus health and reflection) on an injected listener until an
//! injected shutdown signal, then close the store cleanly.
//!
//! A node serves mutual TLS ([`crate::tls`]): every client presents a
//! certificate from one of the trusted CAs. Without `[tls]` it refuses to
//! start, unless told to serve plaintext ([`Serve::insecure_plaintext`],
//! `hopluu serve --insecure-plaintext`), which it then warns about loudly.
//!
//! A client without a certificate reaches health only ([`crate::tls::accept`]).
//! Every client service (all but replication, health and reflection) is
//! wrapped in the node's per-caller request limit
//! ([`crate::grpc::auth::ClientLimits`], `[limits]`).
//!
//! With `[metrics]`, the Prometheus endpoint ([`crate::metrics`]) is served
//! beside gRPC, from the same task, and stops with it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hopluu_model::{Clock, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_store::{Store, StoreOptions};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;

use crate::NodeError;
use crate::app::{App, Bootstrap};
use crate::config::{Config, LimitsSection, MetricsSection, ReplicationSection, TlsSection};
use crate::grpc::Services;
use crate::grpc::admin::AdminGrpc;
use crate::grpc::auth::ClientLimits;
use crate::grpc::reflection::{Reflection, ReflectionV1, ReflectionV1alpha};
use crate::grpc::replication::ReplicationGrpc;
use crate::replication::Replication;
use crate::tls::NodeTls;
pub use crate::tls::Security;
use crate::tls::accept::Acceptor;

/// Opens the node's store and state as `config` describes.
pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<App>, NodeError> {
    config.validate()?;
    let url = config.database_url();
    let store = Store::open(
        &url,
        StoreOptions {
            max_connections: config.database.max_connections,
            cache_docs: config.database.cache_docs,
            cache_bytes: config.database.cache_mib << 20,
            bucket_size: config.roster.bucket_size,
            ..StoreOptions::default()
        },
        clock.clone(),
    )
    .await?;
    tracing::info!(
        node = %config.node.id,
        unit = %config.node.unit,
        database = %hopluu_store::db::redact(&url),
        "store open"
    );
    let bootstrap = match (&config.node.unit_name, &config.node.unit_kind) {
        _ if !config.replication.upstreams.is_empty() => Some(Bootstrap::FromUpstream),
        (Some(name), Some(kind)) => Some(Bootstrap::Create {
            name: name.clone(),
            kind: kind.clone(),
            parent: config
                .node
                .unit_parent
                .as_deref()
                .map(|p| UnitId::parse("node.unit_parent", p))
                .transpose()?,
        }),
        _ => None,
    };
    let app = App::new(
        store,
        config.node.id.clone(),
        config.unit_id(),
        config.replication.private_depth,
        bootstrap,
        clock,
    )
    .await?;
    Ok(Arc::new(app))
}

/// How to serve: what the configuration says beyond the store.
#[derive(Debug, Clone)]
pub struct Serve {
    pub max_message_bytes: usize,
    pub replication: ReplicationSection,
    /// Each caller's budget of client API requests (`[limits]`).
    pub limits: LimitsSection,
    /// The node's certificate and trusted CAs (`[tls]`).
    pub tls: Option<TlsSection>,
    /// Serve plaintext, without `[tls]`: for development and tests only.
    pub insecure_plaintext: bool,
    /// The metrics endpoint (`[metrics]`), if on.
    pub metrics: Option<MetricsSection>,
    /// Where other nodes reach this one (`node.address`), published in its
    /// node record.
    pub address: String,
}

impl From<&Config> for Serve {
    fn from(c: &Config) -> Serve {
        Serve {
            max_message_bytes: c.grpc.max_message_bytes,
            replication: c.replication.clone(),
            limits: c.limits.clone(),
            tls: c.tls.clone(),
            insecure_plaintext: false,
            metrics: c.metrics.clone(),
            address: c.node.address.clone(),
        }
    }
}

impl Serve {
    /// Checks how the node `node_id` hosting `unit` may serve, reading and
    /// checking its `[tls]` files; refuses plaintext unless it was asked
    /// for. `hopluu serve` calls it before opening the store, to fail fast.
    pub fn security(&self, node_id: &str, unit: &UnitId) -> Result<Security, NodeError> {
        match (&self.tls, self.insecure_plaintext) {
            (Some(tls), false) => Ok(Security::Tls(Arc::new(NodeTls::load(tls, node_id, unit)?))),
            (None, true) => Ok(Security::InsecurePlaintext),
            (None, false) => Err(NodeError::Config(
                "tls: no [tls] section: a node serves only mutual TLS. Configure [tls] cert, key \
                 and ca (make them with `hopluu cert`; `hopluu serve` also takes --tls-cert, \
                 --tls-key and --tls-ca), or pass --insecure-plaintext for development"
                    .into(),
            )),
            (Some(_), true) => Err(NodeError::Config(
                "tls: --insecure-plaintext with a [tls] section: remove one of them".into(),
            )),
        }
    }
}

/// A node ready to serve: its security checked, its replication made (so
/// that a caller can allow children before or while it runs).
pub struct NodeServer {
    app: Arc<App>,
    max_message_bytes: usize,
    security: Security,
    replication: Arc<Replication>,
    limits: Arc<ClientLimits>,
    metrics: Metrics,
    /// `[replication] in_flight`, for the metrics.
    in_flight_limit: usize,
    /// The TLS acceptor, unless serving plaintext.
    acceptor: Option<Arc<Acceptor>>,
}

/// The metrics endpoint: off, configured, or its listener bound.
enum Metrics {
    Off,
    At(SocketAddr),
    Bound(TcpListener),
}

impl std::fmt::Debug for NodeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServer")
            .field("node", &self.app.node_id)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl NodeServer {
    pub fn new(app: Arc<App>, serve: Serve) -> Result<NodeServer, NodeError> {
        serve.limits.validate()?;
        let security = serve.security(&app.node_id, &app.unit)?;
        match &security {
            Security::Tls(tls) => {
                let info = tls.info();
                let days = info.days_left(std::time::SystemTime::now());
                tracing::info!(
                    subject = %info.subject,
                    expires = %info.expires(),
                    cas = tls.cas().len(),
                    "serving mutual TLS"
                );
                if days < 30 {
                    tracing::warn!(
                        subject = %info.subject,
                        expires = %info.expires(),
                        "the node's certificate expires in {days} days: issue a new one (hopluu cert node)"
                    );
                }
            }
            Security::InsecurePlaintext => tracing::warn!(
                node = %app.node_id,
                "INSECURE: serving plaintext gRPC without TLS (--insecure-plaintext): anyone who \
                 reaches the port can read and write everything and claim to be any node; for \
                 development only"
            ),
        }
        let acceptor = match &security {
            Security::Tls(tls) => Some(Arc::new(Acceptor::new(tls)?)),
            Security::InsecurePlaintext => None,
        };
        let in_flight_limit = serve.replication.in_flight;
        let replication = Replication::new(
            app.clone(),
            serve.replication,
            security.clone(),
            serve.address,
        );
        if !serve.limits.enabled {
            tracing::warn!(
                node = %app.node_id,
                "client API requests are not limited (limits.enabled = false)"
            );
        }
        let limits = ClientLimits::new(serve.limits, app.clock.clone());
        Ok(NodeServer {
            app,
            max_message_bytes: serve.max_message_bytes,
            security,
            replication,
            limits,
            metrics: match serve.metrics {
                Some(m) => Metrics::At(m.listen),
                None => Metrics::Off,
            },
            in_flight_limit,
            acceptor,
        })
    }

    /// The node's replication: its edges, and `allow_child`.
    pub fn replication(&self) -> &Arc<Replication> {
        &self.replication
    }

    pub fn security(&self) -> &Security {
        &self.security
    }

    /// Binds the metrics endpoint's address (`[metrics] listen`) now, and
    /// returns the address bound (the port chosen, for port 0); None when
    /// the endpoint is off. [`NodeServer::run`] binds it if this was not
    /// called; calling it first makes a taken port fail before anything
    /// is served, and tells a test where to scrape.
    pub async fn bind_metrics(&mut self) -> Result<Option<SocketAddr>, NodeError> {
        match &self.metrics {
            Metrics::Off => Ok(None),
            Metrics::Bound(listener) => Ok(Some(listener.local_addr()?)),
            Metrics::At(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    NodeError::Config(format!("metrics.listen: cannot listen on {addr}: {e}"))
                })?;
                let bound = listener.local_addr()?;
                tracing::info!(addr = %bound, "serving metrics at http://{bound}/metrics");
                self.metrics = Metrics::Bound(listener);
                Ok(Some(bound))
            }
        }
    }

    /// Serves on `listener` until `shutdown` completes, and keeps a sync
    /// session open to the first reachable upstream. At shutdown the sync
    /// sessions stop first (writing what their peers acknowledged),
    /// in-flight requests finish (each write commits or rolls back whole),
    /// then the store's connections close.
    pub async fn run(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NodeError> {
        self.bind_metrics().await?;
        let NodeServer {
            app,
            max_message_bytes,
            security,
            replication,
            limits,
            metrics,
            in_flight_limit,
            acceptor,
        } = self;
        let services = Services { app: app.clone() };
        // The node's own record, before it serves: every node, and every
        // count of its documents, includes it from the start.
        if let Err(e) = replication.publish().await {
            tracing::warn!(error = %e, "could not publish this node's record");
        }
        replication.start();
        let stop_sessions = replication.clone();
        let stop_metrics = CancellationToken::new();
        let metrics = {
            let scrape = crate::metrics::Scrape {
                app: app.clone(),
                replication: replication.clone(),
                limits: limits.clone(),
                in_flight_limit,
                tls_refusals: acceptor.as_ref().map(|a| a.refusals()),
            };
            let stop = stop_metrics.clone();
            async move {
                if let Metrics::Bound(listener) = metrics
                    && let Err(e) = crate::metrics::serve(listener, scrape, stop).await
                {
                    tracing::error!(error = %e, "the metrics endpoint failed");
                }
            }
        };
        // Sync streams never end by themselves: end them when shutdown starts,
        // or the server would wait for them forever.
        let shutdown = {
            let stop_metrics = stop_metrics.clone();
            async move {
                shutdown.await;
                stop_metrics.cancel();
                stop_sessions.shutdown().await;
            }
        };
        // Every public service reports SERVING, so a probe of any one of them
        // (not only the overall "" service) sees a live node.
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<pb::unit_service_server::UnitServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::member_service_server::MemberServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::campaign_service_server::CampaignServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::emulation_service_server::EmulationServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::award_service_server::AwardServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::report_service_server::ReportServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::reorg_service_server::ReorgServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::node_service_server::NodeServiceServer<Services>>()
            .await;
        health
            .set_serving::<pb::admin_service_server::AdminServiceServer<AdminGrpc>>()
            .await;
        health
            .set_serving::<pb::replication_service_server::ReplicationServiceServer<ReplicationGrpc>>()
            .await;
        // Health and reflection answer for their own names too.
        health.set_serving::<HealthServer<HealthService>>().await;
        health.set_serving::<ReflectionV1>().await;
        health.set_serving::<ReflectionV1alpha>().await;
        let reflection =
            Reflection::new().map_err(|e| NodeError::Config(format!("reflection: {e}")))?;
        let addr = listener.local_addr()?;
        let tls = matches!(security, Security::Tls(_));
        tracing::info!(%addr, node = %app.node_id, tls, "serving gRPC");
        // A client service: its message sizes, and each request charged to
        // its caller's budget before its message is decoded.
        macro_rules! svc {
            ($m:ident :: $server:ident, $state:expr) => {
                InterceptedService::new(
                    pb::$m::$server::new($state)
                        .max_decoding_message_size(max_message_bytes)
                        .max_encoding_message_size(max_message_bytes),
                    limits.interceptor(),
                )
            };
            ($m:ident :: $server:ident) => {
                svc!($m::$server, services.clone())
            };
        }
        let grpc = Server::builder()
            // A child whose link goes silent (packets dropped, no FIN or
            // RST) is found by HTTP/2 pings, as the child finds its parent:
            // its session ends and its edge shows down within seconds.
            .http2_keepalive_interval(Some(replication.keepalive().interval))
            .http2_keepalive_timeout(Some(replication.keepalive().timeout))
            .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
            .add_service(health_service)
            // Reflection, like everything but health, for certificates
            // of the federation only.
            .add_service(InterceptedService::new(reflection.v1(), certified))
            .add_service(InterceptedService::new(reflection.v1alpha(), certified))
            .add_service(svc!(unit_service_server::UnitServiceServer))
            .add_service(svc!(member_service_server::MemberServiceServer))
            .add_service(svc!(campaign_service_server::CampaignServiceServer))
            .add_service(svc!(emulation_service_server::EmulationServiceServer))
            .add_service(svc!(award_service_server::AwardServiceServer))
            .add_service(svc!(report_service_server::ReportServiceServer))
            .add_service(svc!(reorg_service_server::ReorgServiceServer))
            .add_service(svc!(node_service_server::NodeServiceServer))
            .add_service(svc!(
                admin_service_server::AdminServiceServer,
                AdminGrpc::new(app.clone(), replication.clone(), &security)
            ))
            .add_service(
                pb::replication_service_server::ReplicationServiceServer::new(ReplicationGrpc(
                    replication.clone(),
                ))
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
            );
        // TLS by the node's own acceptor (it sees every handshake), or
        // plaintext when told.
        let grpc = async move {
            match acceptor {
                Some(acceptor) => {
                    grpc.serve_with_incoming_shutdown(acceptor.incoming(listener), shutdown)
                        .await
                }
                None => {
                    grpc.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                        .await
                }
            }
        };
        // The metrics endpoint runs beside gRPC and stops with it, however
        // gRPC ends.
        let grpc = async {
            let served = grpc.await;
            stop_metrics.cancel();
            served
        };
        let (served, ()) = tokio::join!(grpc, metrics);
        served?;
        replication.shutdown().await;
        tracing::info!("gRPC server stopped; closing the store");
        app.store().close().await;
        Ok(())
    }
}

/// Lets through a request that carries a hopluu identity (or any, on a
/// plaintext node): what reflection asks of its callers, who may be
/// anyone holding a certificate from the federation's CA.
fn certified(request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    crate::tls::Identity::of(&request)
        .map_err(|e| tonic::Status::unauthenticated(format!("certificate: {e}")))?;
    Ok(request)
}

/// Serves the node on `listener` until `shutdown` completes
/// ([`NodeServer::run`]); fails at once when its security is not in order
/// ([`Serve::security`]).
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    serve: Serve,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    NodeServer::new(app, serve)?.run(listener, shutdown).await
}
