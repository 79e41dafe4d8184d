//! A real node in-process: [`Node::start`] opens a node on SQLite in a fresh
//! temporary directory, serves it over mutual TLS on a loopback port and
//! connects a channel as an administrator; [`Node::stop`] sends the
//! shutdown signal and waits for the server to close its store. Fixtures
//! build the usual tree and members through the public API only, and the
//! `expect_*` helpers check a refused request's code and the field its
//! message names.
//!
//! # Certificates
//!
//! One CA per test process ([`pki`], made once), plus a second trusted CA
//! (for rotation) and a foreign one nobody trusts. Each node gets a node
//! certificate for its id and unit, written with `ca.pem` into its data
//! directory (its `[tls]`). [`Node::channel_as`] connects with any
//! identity ([`Caller`]: admin, staff of a unit, a node, no certificate,
//! a foreign CA, plaintext), for attack and role tests.
//!
//! # Replication by hand
//!
//! [`hello`], [`SyncStream`], [`first_answer`] and [`refusal_of`] open a
//! node's sync stream as any caller and speak frames to it directly, for
//! the tests of who may replicate and of hostile peers.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use hopluu_model::{Clock, Date, FixedClock};
use hopluu_node::NodeError;
use hopluu_node::config::{Config, TlsSection};
use hopluu_node::replication::Replication;
use hopluu_node::server::{NodeServer, Serve};
use hopluu_node::tls::issue::{Ca, Subject};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::award_service_client::AwardServiceClient;
use hopluu_proto::v1::campaign_service_client::CampaignServiceClient;
use hopluu_proto::v1::emulation_service_client::EmulationServiceClient;
use hopluu_proto::v1::member_service_client::MemberServiceClient;
use hopluu_proto::v1::node_service_client::NodeServiceClient;
use hopluu_proto::v1::report_service_client::ReportServiceClient;
use hopluu_proto::v1::unit_service_client::UnitServiceClient;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};

/// The day every node in this suite lives on.
pub const TODAY: &str = "2026-11-22";

/// Members per roster document: small, so that rosters split into buckets.
pub const BUCKET_SIZE: usize = 3;

// The tree every fixture builds (ids are opaque; these read well in failures).
pub const VN: &str = "vn";
pub const HG: &str = "hau-giang";
pub const LC: &str = "lai-chau";
pub const HG_CT: &str = "hg-chau-thanh";
pub const HG_A: &str = "hg-truong-a";
pub const HG_B: &str = "hg-nha-may-b";
pub const LC_C: &str = "lc-thuy-dien";

pub fn today() -> Date {
    Date::new(2026, 11, 22).expect("a valid date")
}

/// The CAs of this test process.
pub struct Pki {
    /// What every node trusts and issues from.
    pub ca: Ca,
    /// A second CA, trusted by nodes that are told to (rotation).
    pub second: Ca,
    /// A CA no node trusts.
    pub foreign: Ca,
}

/// The process's CAs, made on first use.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki {
        ca: Ca::generate("hopluu test CA", 30).expect("a CA"),
        second: Ca::generate("hopluu test CA 2", 30).expect("a CA"),
        foreign: Ca::generate("someone else's CA", 30).expect("a CA"),
    })
}

/// Who a test client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An administrator's certificate.
    Admin(String),
    /// Office staff of `unit`.
    Staff { name: String, unit: String },
    /// A node's certificate (node `node_id` hosting `unit`).
    Node { node_id: String, unit: String },
    /// A certificate issued by the second trusted CA (admin `name`).
    SecondCa(String),
    /// An admin certificate from a CA the node does not trust.
    ForeignCa,
    /// TLS, but no client certificate.
    NoCert,
    /// Plaintext HTTP/2, no TLS at all.
    Plaintext,
}

impl Caller {
    pub fn admin() -> Caller {
        Caller::Admin("test-admin".into())
    }
    pub fn staff(name: &str, unit: &str) -> Caller {
        Caller::Staff {
            name: name.into(),
            unit: unit.into(),
        }
    }
    pub fn node(node_id: &str, unit: &str) -> Caller {
        Caller::Node {
            node_id: node_id.into(),
            unit: unit.into(),
        }
    }
}

/// An endpoint to `addr` (not connected) as `caller` would make it,
/// verifying that the server holds a certificate for 127.0.0.1 from the
/// process CA.
pub fn endpoint_as(addr: std::net::SocketAddr, caller: &Caller) -> Result<Endpoint> {
    let p = pki();
    let issued = match caller {
        Caller::Admin(name) => Some(p.ca.issue(&Subject::admin(name), 1)?),
        Caller::Staff { name, unit } => Some(p.ca.issue(&Subject::staff(name, unit), 1)?),
        Caller::Node { node_id, unit } => Some(p.ca.issue(&Subject::node(node_id, unit), 1)?),
        Caller::SecondCa(name) => Some(p.second.issue(&Subject::admin(name), 1)?),
        Caller::ForeignCa => Some(p.foreign.issue(&Subject::admin("intruder"), 1)?),
        Caller::NoCert => None,
        Caller::Plaintext => {
            return Ok(Channel::from_shared(format!("http://{addr}"))?
                .connect_timeout(Duration::from_secs(5)));
        }
    };
    // Clients trust both CAs, as during a rotation.
    let cas = format!("{}{}", p.ca.cert_pem(), p.second.cert_pem());
    let tls = hopluu_node::tls::client_config(
        &cas,
        issued
            .as_ref()
            .map(|i| (i.cert_pem.as_str(), i.key_pem.as_str())),
    );
    Ok(Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5)))
}

/// A channel to `addr` as `caller`, connected.
pub async fn channel_as(addr: std::net::SocketAddr, caller: &Caller) -> Result<Channel> {
    endpoint_as(addr, caller)?
        .connect()
        .await
        .map_err(|e| anyhow!(hopluu_node::tls::error_chain(&e)))
        .with_context(|| format!("connecting to {addr} as {caller:?}"))
}

/// Writes node `node_id`'s certificate and key (for `unit`, reachable at
/// 127.0.0.1) and the process CA into `dir`, and returns them as `[tls]`.
pub fn node_tls(dir: &Path, node_id: &str, unit: &str) -> Result<TlsSection> {
    let p = pki();
    let issued = p.ca.issue(
        &Subject::node(node_id, unit).reachable_at(&["localhost"], &["127.0.0.1".parse()?]),
        1,
    )?;
    let tls = TlsSection {
        cert: dir.join("node.pem"),
        key: dir.join("node.key"),
        ca: vec![dir.join("ca.pem")],
    };
    std::fs::write(&tls.cert, &issued.cert_pem)?;
    std::fs::write(&tls.key, &issued.key_pem)?;
    std::fs::write(&tls.ca[0], p.ca.cert_pem())?;
    Ok(tls)
}

/// A running node and a channel to it (as [`Caller::admin`]).
pub struct Node {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    /// Its replication: edges, `allow_child`.
    pub replication: Arc<Replication>,
    /// Its application state (the store, for tests that feed a sync
    /// session or look at the quarantine directly).
    pub app: Arc<hopluu_node::app::App>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), NodeError>>>,
    dir: Option<TempDir>,
}

/// Makes `c` the configuration of a child node `node_id` hosting `unit`
/// (its record comes from the parent) that dials one upstream, `upstream`
/// at `addr`.
pub fn as_child(
    c: &mut Config,
    node_id: &str,
    unit: &str,
    upstream: &str,
    addr: std::net::SocketAddr,
) {
    c.node.id = node_id.into();
    c.node.unit = unit.into();
    c.node.unit_name = None;
    c.node.unit_kind = None;
    c.replication.upstreams = vec![hopluu_node::config::Upstream {
        node_id: upstream.into(),
        address: format!("https://{addr}"),
    }];
}

impl Node {
    /// A fresh root node `vn` (kind central) on an empty SQLite database.
    pub async fn start() -> Result<Node> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        Node::start_in(dir).await
    }

    /// A node on the data directory `dir` (which may hold an earlier node's
    /// database).
    pub async fn start_in(dir: TempDir) -> Result<Node> {
        Node::start_with(dir, |_| {}).await
    }

    /// A node on `dir` with the suite's configuration changed by `edit`
    /// (to dial an upstream, say). Its `[tls]` is made for the node id and
    /// unit `edit` leaves (files in `dir`); `edit` may also change `tls`.
    pub async fn start_with(dir: TempDir, edit: impl FnOnce(&mut Config)) -> Result<Node> {
        Node::boot(dir, edit, false).await
    }

    /// Like [`Node::start_with`], serving plaintext without `[tls]`
    /// (`--insecure-plaintext`); its channel is plaintext.
    pub async fn start_insecure(dir: TempDir, edit: impl FnOnce(&mut Config)) -> Result<Node> {
        Node::boot(dir, edit, true).await
    }

    async fn boot(dir: TempDir, edit: impl FnOnce(&mut Config), insecure: bool) -> Result<Node> {
        let mut config = Config::embedded(dir.path());
        config.roster.bucket_size = BUCKET_SIZE;
        // Certificates for the node the edit makes, so made after it: a
        // placeholder section first, so that the edit sees TLS on.
        config.tls = (!insecure).then(|| TlsSection {
            cert: dir.path().join("node.pem"),
            key: dir.path().join("node.key"),
            ca: vec![dir.path().join("ca.pem")],
        });
        edit(&mut config);
        if !insecure {
            let made = node_tls(dir.path(), &config.node.id, &config.node.unit)?;
            // Keep what the edit chose (more CAs, say) over the defaults.
            if config.tls.is_none() {
                config.tls = Some(made);
            }
        }
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(today()));
        let app = hopluu_node::server::open(&config, clock)
            .await
            .context("opening the node")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        let addr = listener.local_addr()?;
        let mut serve = Serve::from(&config);
        serve.insecure_plaintext = insecure;
        // Where other nodes reach it (the old host of a handover dials it).
        serve.address = if insecure {
            format!("http://{addr}")
        } else {
            format!("https://{addr}")
        };
        let server = NodeServer::new(app.clone(), serve).context("starting the server")?;
        let replication = server.replication().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(listener, async {
            // A dropped sender (a test that panicked) also stops the server.
            let _ = rx.await;
        }));
        let caller = if insecure {
            Caller::Plaintext
        } else {
            Caller::admin()
        };
        let channel = channel_as(addr, &caller).await?;
        Ok(Node {
            addr,
            channel,
            replication,
            app,
            shutdown: Some(tx),
            server: Some(server),
            dir: Some(dir),
        })
    }

    /// A channel to this node as `caller` (connected; a refused handshake
    /// may show here or at the first call).
    pub async fn channel_as(&self, caller: &Caller) -> Result<Channel> {
        channel_as(self.addr, caller).await
    }

    /// A node with the usual tree:
    ///
    /// ```text
    /// vn (central)
    /// ├── hau-giang (provincial)
    /// │   └── hg-chau-thanh (commune)
    /// │       ├── hg-truong-a (grassroots)
    /// │       └── hg-nha-may-b (grassroots)
    /// └── lai-chau (provincial)
    ///     └── lc-thuy-dien (grassroots)
    /// ```
    pub async fn with_tree() -> Result<Node> {
        let node = Node::start().await?;
        for (id, name, kind, parent) in [
            (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
            (LC, "LĐLĐ tỉnh Lai Châu", "provincial", VN),
            (HG_CT, "Công đoàn xã Châu Thành", "commune", HG),
            (HG_A, "CĐCS Trường THPT A", "grassroots", HG_CT),
            (HG_B, "CĐCS Nhà máy B", "grassroots", HG_CT),
            (LC_C, "CĐCS Thủy điện Lai Châu", "grassroots", LC),
        ] {
            node.create_unit(id, name, kind, parent)
                .await
                .with_context(|| format!("creating {id}"))?;
        }
        Ok(node)
    }

    /// Stops the server and waits until it has closed its store.
    pub async fn stop(mut self) -> Result<()> {
        self.halt().await.map(drop)
    }

    /// Stops the server and hands back its data directory, for a restart.
    pub async fn stop_keeping_data(mut self) -> Result<TempDir> {
        self.halt().await
    }

    async fn halt(&mut self) -> Result<TempDir> {
        if let Some(tx) = self.shutdown.take() {
            tx.send(())
                .map_err(|()| anyhow!("the server stopped before it was told to"))?;
        }
        let server = self.server.take().context("stopped twice")?;
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .context("the server did not stop within 10 s")?
            .context("the server task panicked")?
            .context("the server returned an error")?;
        self.dir.take().context("stopped twice")
    }

    pub fn units(&self) -> UnitServiceClient<Channel> {
        UnitServiceClient::new(self.channel.clone())
    }
    pub fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.channel.clone())
    }
    pub fn campaigns(&self) -> CampaignServiceClient<Channel> {
        CampaignServiceClient::new(self.channel.clone())
    }
    pub fn emulation(&self) -> EmulationServiceClient<Channel> {
        EmulationServiceClient::new(self.channel.clone())
    }
    pub fn awards(&self) -> AwardServiceClient<Channel> {
        AwardServiceClient::new(self.channel.clone())
    }
    pub fn reports(&self) -> ReportServiceClient<Channel> {
        ReportServiceClient::new(self.channel.clone())
    }
    pub fn node(&self) -> NodeServiceClient<Channel> {
        NodeServiceClient::new(self.channel.clone())
    }

    pub async fn info(&self) -> Result<pb::NodeInfo> {
        Ok(self
            .node()
            .get_node_info(pb::GetNodeInfoRequest {})
            .await?
            .into_inner())
    }

    /// The node's change feed position: it moves on every committed write.
    pub async fn feed(&self) -> Result<u64> {
        Ok(self.info().await?.feed_position)
    }

    // ---- fixtures ------------------------------------------------------

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
            .await?
            .into_inner())
    }

    pub async fn unit(&self, id: &str) -> Result<pb::Unit> {
        Ok(self
            .units()
            .get_unit(pb::GetUnitRequest {
                unit_id: id.to_owned(),
            })
            .await?
            .into_inner())
    }

    /// Active units of `root`'s subtree, as ids in listing order.
    pub async fn unit_ids(&self, root: &str, max_depth: Option<u32>) -> Result<Vec<String>> {
        Ok(self
            .units()
            .list_units(pb::ListUnitsRequest {
                root_id: root.to_owned(),
                include_closed: false,
                max_depth,
            })
            .await?
            .into_inner()
            .units
            .into_iter()
            .map(|u| u.id)
            .collect())
    }

    pub async fn close_unit(&self, id: &str) -> Result<pb::Unit> {
        Ok(self
            .units()
            .close_unit(pb::CloseUnitRequest {
                unit_id: id.to_owned(),
                reason: "giải thể".to_owned(),
                ..Default::default()
            })
            .await?
            .into_inner())
    }

    pub async fn add(&self, unit: &str, input: pb::MemberInput) -> Result<pb::Member> {
        let card = input.card_number.clone();
        self.members()
            .add_member(pb::AddMemberRequest {
                unit_id: unit.to_owned(),
                member: Some(input),
            })
            .await
            .map(Response::into_inner)
            .with_context(|| format!("adding {card} to {unit}"))
    }

    pub async fn member(&self, id: &str, include_private: bool) -> Result<pb::Member> {
        Ok(self
            .members()
            .get_member(pb::GetMemberRequest {
                key: Some(pb::get_member_request::Key::MemberId(id.to_owned())),
                include_private,
            })
            .await?
            .into_inner())
    }

    /// Members of `unit` (with its subtree when `subtree`), at most 1000.
    pub async fn list(
        &self,
        unit: &str,
        subtree: bool,
        status: Option<pb::MemberStatus>,
    ) -> Result<pb::ListMembersResponse> {
        Ok(self
            .members()
            .list_members(pb::ListMembersRequest {
                unit_id: unit.to_owned(),
                include_subtree: subtree,
                status: status.map(|s| s as i32),
                limit: 1000,
                offset: 0,
            })
            .await?
            .into_inner())
    }

    pub async fn end(
        &self,
        member: &str,
        status: pb::MemberStatus,
        reason: &str,
    ) -> Result<pb::Member> {
        Ok(self
            .members()
            .end_membership(pb::EndMembershipRequest {
                member_id: member.to_owned(),
                status: status as i32,
                reason: reason.to_owned(),
                effective_on: String::new(),
            })
            .await?
            .into_inner())
    }

    pub async fn launch(&self, id: &str, launching: &str, scope: &str) -> Result<pb::Campaign> {
        Ok(self
            .campaigns()
            .launch_campaign(pb::LaunchCampaignRequest {
                id: Some(id.to_owned()),
                launching_unit_id: launching.to_owned(),
                title: format!("Phong trào thi đua {id}"),
                theme: "Lao động giỏi, lao động sáng tạo".to_owned(),
                starts_on: "2026-01-01".to_owned(),
                ends_on: "2026-12-31".to_owned(),
                scope_unit_id: scope.to_owned(),
            })
            .await?
            .into_inner())
    }

    pub async fn set_plans(
        &self,
        campaign: &str,
        plans: &[(&str, u32, u32)],
    ) -> Result<pb::Campaign> {
        Ok(self
            .campaigns()
            .set_plans(pb::SetPlansRequest {
                campaign_id: campaign.to_owned(),
                plans: plans
                    .iter()
                    .map(|(unit, initiatives, works)| pb::Plan {
                        unit_id: (*unit).to_owned(),
                        initiative_quota: *initiatives,
                        works_quota: *works,
                    })
                    .collect(),
            })
            .await?
            .into_inner())
    }

    pub async fn initiative(
        &self,
        unit: &str,
        campaign: &str,
        title: &str,
        value_vnd: i64,
    ) -> Result<pb::Initiative> {
        Ok(self
            .emulation()
            .record_initiative(pb::RecordInitiativeRequest {
                unit_id: unit.to_owned(),
                campaign_id: campaign.to_owned(),
                title: title.to_owned(),
                authors: vec!["Nguyễn Văn An".to_owned()],
                value_vnd,
                submitted_on: String::new(),
            })
            .await?
            .into_inner())
    }

    pub async fn set_status(
        &self,
        unit: &str,
        campaign: &str,
        initiative: &str,
        status: pb::InitiativeStatus,
        level: &str,
    ) -> Result<pb::Initiative, Status> {
        self.emulation()
            .set_initiative_status(pb::SetInitiativeStatusRequest {
                unit_id: unit.to_owned(),
                campaign_id: campaign.to_owned(),
                initiative_id: initiative.to_owned(),
                status: status as i32,
                recognised_level: level.to_owned(),
                note: String::new(),
            })
            .await
            .map(Response::into_inner)
    }

    /// Records an initiative and takes it to VALID.
    pub async fn valid_initiative(&self, unit: &str, campaign: &str, title: &str) -> Result<()> {
        let i = self.initiative(unit, campaign, title, 0).await?;
        self.set_status(unit, campaign, &i.id, pb::InitiativeStatus::Valid, "")
            .await?;
        Ok(())
    }

    pub async fn work(
        &self,
        unit: &str,
        campaign: &str,
        name: &str,
        value_vnd: i64,
        plaque: bool,
    ) -> Result<pb::Work, Status> {
        self.emulation()
            .record_work(pb::RecordWorkRequest {
                unit_id: unit.to_owned(),
                campaign_id: campaign.to_owned(),
                name: name.to_owned(),
                value_vnd,
                plaque,
                completed_on: "2026-09-02".to_owned(),
            })
            .await
            .map(Response::into_inner)
    }

    pub async fn decide(&self, req: pb::DecideAwardRequest) -> Result<pb::Award, Status> {
        self.awards()
            .decide_award(req)
            .await
            .map(Response::into_inner)
    }
}

/// A member's form with plausible defaults; CCCD and the other private
/// fields empty.
pub fn person(name: &str, card: &str, gender: pb::Gender) -> pb::MemberInput {
    pb::MemberInput {
        full_name: name.to_owned(),
        birth_date: "1990-05-12".to_owned(),
        gender: gender as i32,
        card_number: card.to_owned(),
        joined_on: "2015-03-01".to_owned(),
        position: "Giáo viên".to_owned(),
        ..Default::default()
    }
}

pub fn member_recipient(id: &str) -> pb::Recipient {
    pb::Recipient {
        who: Some(pb::recipient::Who::MemberId(id.to_owned())),
    }
}

pub fn unit_recipient(id: &str) -> pb::Recipient {
    pb::Recipient {
        who: Some(pb::recipient::Who::UnitId(id.to_owned())),
    }
}

/// An award decision of `issuing` with today's date.
pub fn decision(
    issuing: &str,
    award_type: &str,
    recipients: Vec<pb::Recipient>,
) -> pb::DecideAwardRequest {
    pb::DecideAwardRequest {
        issuing_unit_id: issuing.to_owned(),
        decision_no: "123/QĐ-LĐLĐ".to_owned(),
        award_type: award_type.to_owned(),
        recipients,
        reason: "Thành tích xuất sắc".to_owned(),
        ..Default::default()
    }
}

/// The request failed with `code`; returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(r: Result<Response<T>, Status>, code: Code) -> Status {
    match r {
        Ok(ok) => panic!("expected {code:?}, got a success: {:?}", ok.into_inner()),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status: {s:?}");
            s
        }
    }
}

/// The request was refused as INVALID_ARGUMENT with a message of the form
/// `{field}: reason`; returns the message.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(r: Result<Response<T>, Status>, field: &str) -> String {
    let s = expect_code(r, Code::InvalidArgument);
    let m = s.message().to_owned();
    assert!(
        m.starts_with(&format!("{field}: ")),
        "expected a message naming {field:?}, got {m:?}"
    );
    m
}

/// Like [`expect_invalid`] for results already unwrapped from a `Response`.
#[track_caller]
pub fn expect_invalid_inner<T: std::fmt::Debug>(r: Result<T, Status>, field: &str) -> String {
    expect_invalid(r.map(Response::new), field)
}

/// Where a node's change feed and document count stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub feed: u64,
    pub documents: u64,
}

impl Node {
    pub async fn mark(&self) -> Result<Mark> {
        let info = self.info().await?;
        Ok(Mark {
            feed: info.feed_position,
            documents: info.documents,
        })
    }

    /// Fails unless nothing was written since `mark`: a refused request
    /// must leave no document, feed entry or projection behind.
    pub async fn unchanged_since(&self, mark: Mark) -> Result<()> {
        let now = self.mark().await?;
        ensure!(
            now == mark,
            "a refused request wrote something: {mark:?} became {now:?}"
        );
        Ok(())
    }
}

// ---- replication streams by hand -------------------------------------------

pub use crate::sync_stream::*;
