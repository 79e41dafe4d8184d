//! A small federation on loopback, in one process: real nodes (each its own
//! store and gRPC server, as `hopluu serve` runs them), each child dialling
//! its upstreams through a [`FaultProxy`] the caller controls. Used by the
//! end-to-end tests, `hopluu demo` and `hopluu bench sync`.
//!
//! A node's unit record is decided by its parent: create it at the parent
//! (with [`LocalNode::create_unit`]) before adding the child's node; the
//! child receives it on its first sync.
//!
//! Every link is mutual TLS. The federation keeps a CA in `ROOT/pki`
//! ([`Federation::pki`]) and gives every node a certificate there; a child
//! is allowed at each of its upstreams (at run time and in their
//! configuration, so that a restart keeps it). The proxies pass TLS
//! through untouched, and a child verifies its upstream by node id, not by
//! the proxy's address. [`Federation::channel_as`] connects to a node with
//! any identity.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hopluu_model::{Clock, SystemClock, UnitId};
use hopluu_node::app::App;
use hopluu_node::config::{Child, Config, Upstream};
use hopluu_node::replication::Replication;
use hopluu_node::server::{NodeServer, Serve};
use hopluu_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::pki::{Caller, Pki};
use crate::proxy::FaultProxy;

/// One node to start.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: String,
    pub unit: String,
    /// Node ids to dial, parent first (they must already be running).
    pub upstreams: Vec<String>,
    /// `postgres://…` for a PostgreSQL node; SQLite in its directory otherwise.
    pub database_url: Option<String>,
    /// For the root only: the name and kind of the unit it creates.
    pub root: Option<(String, String)>,
}

impl NodeSpec {
    /// The federation's root node, creating its own unit record.
    pub fn root(id: &str, unit: &str, name: &str) -> NodeSpec {
        NodeSpec {
            id: id.to_owned(),
            unit: unit.to_owned(),
            upstreams: Vec::new(),
            database_url: None,
            root: Some((name.to_owned(), "central".to_owned())),
        }
    }

    /// A node below `upstreams[0]` (then the fallbacks).
    pub fn child(id: &str, unit: &str, upstreams: &[&str]) -> NodeSpec {
        NodeSpec {
            id: id.to_owned(),
            unit: unit.to_owned(),
            upstreams: upstreams.iter().map(|s| (*s).to_owned()).collect(),
            database_url: None,
            root: None,
        }
    }

    pub fn on_database(mut self, url: &str) -> NodeSpec {
        self.database_url = Some(url.to_owned());
        self
    }
}

/// A running node.
pub struct LocalNode {
    pub id: String,
    pub unit: String,
    pub addr: SocketAddr,
    pub app: Arc<App>,
    /// Its replication: edges, `allow_child`.
    pub replication: Arc<Replication>,
    /// A channel as the PKI's administrator.
    pub channel: Channel,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), hopluu_node::NodeError>>>,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalNode {
    /// Starts a node from `config` (with its `[tls]`), serving on a fresh
    /// loopback port; its channel presents `pki`'s admin certificate.
    pub async fn start(config: Config, clock: Arc<dyn Clock>, pki: &Pki) -> Result<LocalNode> {
        std::fs::create_dir_all(&config.node.data_dir)
            .with_context(|| format!("creating {}", config.node.data_dir.display()))?;
        let app = hopluu_node::server::open(&config, clock)
            .await
            .with_context(|| format!("opening node {}", config.node.id))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut serve = Serve::from(&config);
        if serve.address.is_empty() {
            // Where the other nodes of the federation reach it (the old
            // host of a handover dials it there).
            serve.address = format!("https://{addr}");
        }
        let server = NodeServer::new(app.clone(), serve)
            .with_context(|| format!("starting node {}", config.node.id))?;
        let replication = server.replication().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async {
            let _ = stopped.await;
        }));
        let channel = pki.channel(addr, &Caller::admin()).await?;
        Ok(LocalNode {
            id: config.node.id.clone(),
            unit: config.node.unit.clone(),
            addr,
            app,
            replication,
            channel,
            config,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the node gracefully and waits until its store is closed.
    pub async fn stop(mut self) -> Result<()> {
        self.halt().await
    }

    async fn halt(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .context("the node did not stop within 30 s")?
                .context("the node's task panicked")?
                .context("the node stopped with an error")?;
        }
        Ok(())
    }

    pub fn units(&self) -> pb::unit_service_client::UnitServiceClient<Channel> {
        pb::unit_service_client::UnitServiceClient::new(self.channel.clone())
    }
    pub fn members(&self) -> pb::member_service_client::MemberServiceClient<Channel> {
        pb::member_service_client::MemberServiceClient::new(self.channel.clone())
    }
    pub fn campaigns(&self) -> pb::campaign_service_client::CampaignServiceClient<Channel> {
        pb::campaign_service_client::CampaignServiceClient::new(self.channel.clone())
    }
    pub fn emulation(&self) -> pb::emulation_service_client::EmulationServiceClient<Channel> {
        pb::emulation_service_client::EmulationServiceClient::new(self.channel.clone())
    }
    pub fn awards(&self) -> pb::award_service_client::AwardServiceClient<Channel> {
        pb::award_service_client::AwardServiceClient::new(self.channel.clone())
    }
    pub fn reports(&self) -> pb::report_service_client::ReportServiceClient<Channel> {
        pb::report_service_client::ReportServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> pb::admin_service_client::AdminServiceClient<Channel> {
        pb::admin_service_client::AdminServiceClient::new(self.channel.clone())
    }

    /// `hopluu check --peer PEER [--address ADDRESS]` at this node, as its
    /// administrator: this node's heads of every document in the peer's
    /// scope against what the peer reports itself. Without an address the
    /// node dials its configured upstream of that id (a proxy, here).
    pub async fn check_peer(
        &self,
        peer: &str,
        address: Option<&str>,
    ) -> Result<pb::CheckPeerResponse> {
        Ok(self
            .admin()
            .check_peer(pb::CheckPeerRequest {
                peer_node_id: peer.to_owned(),
                address: address.unwrap_or_default().to_owned(),
            })
            .await
            .with_context(|| format!("checking node {} against {peer}", self.id))?
            .into_inner())
    }

    /// Creates a unit record at this node (which must hold authority over
    /// its parent).
    pub async fn create_unit(
        &self,
        id: &str,
        name: &str,
        kind: &str,
        parent: &str,
    ) -> Result<pb::Unit> {
        Ok(self
            .units()
            .create_unit(pb::CreateUnitRequest {
                id: Some(id.to_owned()),
                name: name.to_owned(),
                kind: kind.to_owned(),
                parent_id: parent.to_owned(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating unit {id} at node {}", self.id))?
            .into_inner())
    }

    /// Allows node `child` hosting `unit` to sync with this node, now and
    /// after a restart from [`LocalNode::config`].
    pub fn allow_child(&mut self, child: &str, unit: &str) -> Result<()> {
        self.replication
            .allow_child(child, &UnitId::parse("unit", unit)?);
        let children = &mut self.config.replication.children;
        children.retain(|c| c.node_id != child);
        children.push(Child {
            node_id: child.to_owned(),
            unit: unit.to_owned(),
        });
        Ok(())
    }

    /// Whether this node has written its own record as it will stand
    /// (DESIGN §6): its unit placed under the root, with the path of
    /// ancestors that places it. Until then the node still has a write of
    /// its own to make once its unit's place arrives, so a test that
    /// compares documents right after start would see that write as a
    /// difference.
    pub async fn placed(&self) -> Result<bool> {
        Ok(self.app.placed().await?)
    }

    /// Whether this node knows `unit`.
    pub fn knows_unit(&self, unit: &str) -> bool {
        hopluu_model::UnitId::parse("unit", unit)
            .map(|u| self.app.store().tree().contains(&u))
            .unwrap_or(false)
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Several nodes and the proxies on their links.
pub struct Federation {
    root: PathBuf,
    /// The CA and certificates, in `root/pki`, made on first use.
    pki: OnceLock<Pki>,
    clock: Arc<dyn Clock>,
    nodes: BTreeMap<String, LocalNode>,
    /// (child, upstream) -> the proxy the child dials.
    links: BTreeMap<(String, String), FaultProxy>,
    /// Changes every node's configuration before it starts.
    tune: Arc<dyn Fn(&mut Config) + Send + Sync>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("root", &self.root)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// An empty federation keeping every node's data under `root`.
    pub fn new(root: &Path) -> Federation {
        Federation {
            root: root.to_owned(),
            pki: OnceLock::new(),
            clock: Arc::new(SystemClock),
            nodes: BTreeMap::new(),
            links: BTreeMap::new(),
            tune: Arc::new(|c: &mut Config| {
                // Quick reconnects on loopback.
                c.replication.backoff_min_ms = 20;
                c.replication.backoff_max_ms = 500;
                c.replication.ack_timeout_secs = 5;
            }),
        }
    }

    /// Uses `clock` for every node started from now on.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Federation {
        self.clock = clock;
        self
    }

    /// Applies `tune` (after the defaults) to every node's configuration.
    pub fn with_tuning(mut self, tune: impl Fn(&mut Config) + Send + Sync + 'static) -> Federation {
        let before = self.tune.clone();
        self.tune = Arc::new(move |c: &mut Config| {
            before(c);
            tune(c);
        });
        self
    }

    /// Where node `id` keeps its data.
    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The federation's CA and certificates (`ROOT/pki`), made on first use.
    pub fn pki(&self) -> Result<&Pki> {
        if let Some(p) = self.pki.get() {
            return Ok(p);
        }
        let made = Pki::create(&self.root.join("pki"), "hopluu federation CA")?;
        Ok(self.pki.get_or_init(|| made))
    }

    /// A channel to node `id` as `caller`.
    pub async fn channel_as(&self, id: &str, caller: &Caller) -> Result<Channel> {
        self.pki()?.channel(self.node(id).addr, caller).await
    }

    /// Allows node `child` hosting `unit` to sync with the running node
    /// `parent` (which [`Federation::add`] does for the nodes it starts).
    pub fn allow_child(&mut self, parent: &str, child: &str, unit: &str) -> Result<()> {
        self.nodes
            .get_mut(parent)
            .ok_or_else(|| anyhow!("node {parent} is not running"))?
            .allow_child(child, unit)
    }

    /// The configuration node `spec` runs with.
    fn config(&self, spec: &NodeSpec) -> Result<Config> {
        let dir = self.data_dir(&spec.id);
        let mut c = Config::embedded(&dir);
        c.node.id = spec.id.clone();
        c.node.unit = spec.unit.clone();
        c.node.unit_parent = None;
        match &spec.root {
            Some((name, kind)) => {
                c.node.unit_name = Some(name.clone());
                c.node.unit_kind = Some(kind.clone());
            }
            None => {
                c.node.unit_name = None;
                c.node.unit_kind = None;
            }
        }
        c.database.url = spec.database_url.clone();
        c.grpc.listen = "127.0.0.1:0".parse().expect("an address");
        c.tls = Some(self.pki()?.node_tls(&spec.id, &spec.unit)?);
        for up in &spec.upstreams {
            let proxy = self
                .links
                .get(&(spec.id.clone(), up.clone()))
                .ok_or_else(|| anyhow!("no link from {} to {up}", spec.id))?;
            // The proxy's address; the certificate checked is the
            // upstream's, by its node id.
            c.replication.upstreams.push(Upstream {
                node_id: up.clone(),
                address: format!("https://{}", proxy.addr()),
            });
        }
        (self.tune)(&mut c);
        c.validate().map_err(|e| anyhow!("{e}"))?;
        Ok(c)
    }

    /// Starts a node; its upstreams must be running. Each link gets its own
    /// proxy.
    pub async fn add(&mut self, spec: NodeSpec) -> Result<&LocalNode> {
        if self.nodes.contains_key(&spec.id) {
            bail!("node {} already runs", spec.id);
        }
        for up in &spec.upstreams {
            let target = self
                .nodes
                .get(up)
                .ok_or_else(|| anyhow!("upstream {up} of {} is not running", spec.id))?
                .addr;
            let proxy = FaultProxy::start(target).await?;
            self.links.insert((spec.id.clone(), up.clone()), proxy);
        }
        for up in &spec.upstreams {
            self.allow_child(up, &spec.id, &spec.unit)?;
        }
        let config = self.config(&spec)?;
        let node = LocalNode::start(config, self.clock.clone(), self.pki()?).await?;
        self.nodes.insert(spec.id.clone(), node);
        Ok(&self.nodes[&spec.id])
    }

    pub fn node(&self, id: &str) -> &LocalNode {
        self.nodes
            .get(id)
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    pub fn nodes(&self) -> impl Iterator<Item = &LocalNode> {
        self.nodes.values()
    }

    /// The proxy on the link from `child` to `upstream`.
    pub fn link(&self, child: &str, upstream: &str) -> &FaultProxy {
        self.links
            .get(&(child.to_owned(), upstream.to_owned()))
            .unwrap_or_else(|| panic!("no link from {child} to {upstream}"))
    }

    /// Every link, as (child, upstream, proxy).
    pub fn links(&self) -> impl Iterator<Item = (&str, &str, &FaultProxy)> {
        self.links
            .iter()
            .map(|((c, u), p)| (c.as_str(), u.as_str(), p))
    }

    /// Stops node `id` gracefully, keeping its data.
    pub async fn stop(&mut self, id: &str) -> Result<Config> {
        let node = self
            .nodes
            .remove(id)
            .ok_or_else(|| anyhow!("node {id} is not running"))?;
        let config = node.config.clone();
        node.stop().await?;
        Ok(config)
    }

    /// Starts node `id` again on its data, on a new port: the proxies in
    /// front of it are pointed at the new port.
    pub async fn restart(&mut self, config: Config) -> Result<&LocalNode> {
        let id = config.node.id.clone();
        let node = LocalNode::start(config, self.clock.clone(), self.pki()?).await?;
        let addr = node.addr;
        // The children keep dialling the same proxies, which now forward
        // to the new port.
        for ((_, up), proxy) in &self.links {
            if *up == id {
                proxy.set_target(addr);
            }
        }
        self.nodes.insert(id.clone(), node);
        Ok(&self.nodes[&id])
    }

    /// Stops every node (children first) and every proxy.
    pub async fn shutdown(mut self) -> Result<()> {
        let mut ids: Vec<String> = self.nodes.keys().cloned().collect();
        // Deeper nodes first: they dial the others.
        ids.sort_by_key(|id| {
            std::cmp::Reverse(
                self.nodes[id]
                    .app
                    .store()
                    .tree()
                    .depth(&self.nodes[id].app.unit),
            )
        });
        for id in ids {
            if let Some(n) = self.nodes.remove(&id) {
                n.stop().await?;
            }
        }
        for (_, p) in std::mem::take(&mut self.links) {
            p.shutdown().await;
        }
        Ok(())
    }

    /// Waits until `check` holds, polling every 20 ms, for at most `limit`.
    pub async fn until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if check().await.unwrap_or(false) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("not within {limit:?}: {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
