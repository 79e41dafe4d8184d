//! The metrics endpoint (`[metrics]`): a province node serves it on a free
//! loopback port ([`NodeServer::bind_metrics`] says which), it is scraped
//! over plain HTTP/1.1 by hand (a raw GET on a TCP stream), and the answer
//! is read by a Prometheus text parser (`prometheus-parse`), every line of
//! it. While the province syncs with the national node, its per-peer
//! series appear, the changes it applies are counted, and the
//! apply-latency histogram stays consistent (cumulative buckets ending at
//! `le="+Inf"` equal to `_count`). Also: the `[metrics]` configuration
//! checks, the JSON log format with the sync spans' fields, and refused
//! TLS handshakes: logged once per peer and reason, and counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hopluu_model::{FixedClock, UnitId};
use hopluu_node::NodeError;
use hopluu_node::config::{Config, MetricsSection, Upstream};
use hopluu_node::server::{NodeServer, Serve};
use hopluu_proto::v1 as pb;
use hopluu_proto::v1::member_service_client::MemberServiceClient;
use prometheus_parse::{LineInfo, Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::harness::*;
use crate::replication::{child, eventually};

/// Every family the endpoint serves.
const FAMILIES: &[&str] = &[
    "hopluu_node_info",
    "hopluu_feed_position",
    "hopluu_documents",
    "hopluu_quarantined_changes",
    "hopluu_tls_refused_total",
    "hopluu_conflicts",
    "hopluu_client_callers_tracked",
    "hopluu_sync_in_flight_limit",
    "hopluu_peer_info",
    "hopluu_peer_connected",
    "hopluu_peer_state_changed_timestamp_seconds",
    "hopluu_peer_last_contact_timestamp_seconds",
    "hopluu_peer_sessions_total",
    "hopluu_sync_acked_upto",
    "hopluu_sync_applied_upto",
    "hopluu_sync_lag_sequences",
    "hopluu_sync_pending_documents",
    "hopluu_sync_pending_changes",
    "hopluu_sync_held_by_peer_changes",
    "hopluu_sync_held_here_changes",
    "hopluu_sync_lag_seconds",
    "hopluu_sync_batches_in_flight",
    "hopluu_sync_window_headroom_batches",
    "hopluu_sync_queued_replies",
    "hopluu_sync_queued_frames",
    "hopluu_sync_sent_bytes_total",
    "hopluu_sync_received_bytes_total",
    "hopluu_sync_sent_documents_total",
    "hopluu_sync_applied_documents_total",
    "hopluu_sync_rejected_documents_total",
    "hopluu_sync_applied_changes_total",
    "hopluu_sync_apply_duration_seconds",
];

/// A node with its metrics endpoint on, started by hand (the harness's
/// nodes do not say where their metrics are).
struct MetricsNode {
    addr: SocketAddr,
    metrics: SocketAddr,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<Result<(), NodeError>>,
    _dir: tempfile::TempDir,
}

impl MetricsNode {
    /// The province `hg-node` (hosting hau-giang), dialling `national`.
    async fn province(national: &Node) -> Result<MetricsNode> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::embedded(dir.path());
        config.node.id = "hg-node".into();
        config.node.unit = HG.into();
        config.node.unit_name = None;
        config.node.unit_kind = None;
        config.roster.bucket_size = BUCKET_SIZE;
        config.replication.upstreams = vec![Upstream {
            node_id: "vn".into(),
            address: format!("https://{}", national.addr),
        }];
        config.replication.backoff_min_ms = 20;
        config.replication.backoff_max_ms = 200;
        config.tls = Some(node_tls(dir.path(), "hg-node", HG)?);
        config.metrics = Some(MetricsSection {
            listen: "127.0.0.1:0".parse()?,
        });
        national
            .replication
            .allow_child("hg-node", &UnitId::parse("unit", HG)?);
        let app = hopluu_node::server::open(&config, Arc::new(FixedClock(today()))).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut server = NodeServer::new(app, Serve::from(&config))?;
        let metrics = server
            .bind_metrics()
            .await?
            .context("[metrics] is on: an address")?;
        ensure!(metrics.port() != 0, "the bound port, not 0");
        let (shutdown, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(listener, async {
            let _ = rx.await;
        }));
        Ok(MetricsNode {
            addr,
            metrics,
            shutdown,
            server,
            _dir: dir,
        })
    }

    async fn scrape(&self) -> Result<Scrape> {
        let r = get(self.metrics, "/metrics").await?;
        ensure!(r.status == 200, "GET /metrics: {} {}", r.status, r.body);
        let ct = r.headers.get("content-type").map(String::as_str);
        ensure!(
            ct.is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
            "content type {ct:?}"
        );
        parse(&r.body)
    }

    async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .context("the node did not stop within 10 s")???;
        Ok(())
    }
}

struct HttpResponse {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// `GET path` over HTTP/1.1, by hand.
async fn get(addr: SocketAddr, path: &str) -> Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .context("no answer within 10 s")??;
    let text = String::from_utf8(raw).context("a UTF-8 answer")?;
    let (head, body) = text.split_once("\r\n\r\n").context("an HTTP answer")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .context("a status line")?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    ensure!(
        !headers.contains_key("transfer-encoding"),
        "a body of known length"
    );
    if let Some(len) = headers.get("content-length") {
        ensure!(body.len() == len.parse::<usize>()?, "the whole body");
    }
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// Parses the exposition, refusing any line the parser would skip (it
/// ignores what it does not understand, and samples whose value is not a
/// number).
fn parse(text: &str) -> Result<Scrape> {
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Sample { value, .. } => ensure!(
                ["+Inf", "-Inf", "NaN"].contains(&value) || value.parse::<f64>().is_ok(),
                "not a sample value: {line:?}"
            ),
            LineInfo::Doc { .. } | LineInfo::Type { .. } => {}
            LineInfo::Empty | LineInfo::Ignored => bail!("not Prometheus text: {line:?}"),
        }
    }
    Ok(Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))?)
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .find(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .and_then(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Checks the apply-latency histogram of `peer` and returns its count.
fn histogram_count(s: &Scrape, peer: &str) -> Result<f64> {
    let name = "hopluu_sync_apply_duration_seconds";
    let h = s
        .samples
        .iter()
        .find(|x| x.metric == name && x.labels.get("peer") == Some(peer))
        .with_context(|| format!("{name} of {peer}"))?;
    let Value::Histogram(buckets) = &h.value else {
        bail!("{name} is not a histogram: {:?}", h.value);
    };
    ensure!(buckets.len() >= 2, "buckets: {buckets:?}");
    for w in buckets.windows(2) {
        ensure!(
            w[0].less_than < w[1].less_than && w[0].count <= w[1].count,
            "buckets ascend and are cumulative: {buckets:?}"
        );
    }
    let last = buckets.last().expect("checked");
    ensure!(last.less_than == f64::INFINITY, "the last bucket is +Inf");
    let count = value(s, &format!("{name}_count"), &[("peer", peer)]).context("_count")?;
    let sum = value(s, &format!("{name}_sum"), &[("peer", peer)]).context("_sum")?;
    ensure!(
        last.count == count,
        "+Inf bucket {} = _count {count}",
        last.count
    );
    ensure!(sum >= 0.0 && (count > 0.0 || sum == 0.0), "_sum {sum}");
    Ok(count)
}

#[tokio::test]
async fn the_metrics_endpoint_is_prometheus_text_with_series_per_peer() -> Result<()> {
    let national = Node::with_tree().await?;
    let province = MetricsNode::province(&national).await?;

    // Before anything is known of the parent, the node's own series are
    // there, every family is declared, and nothing else answers.
    let s = province.scrape().await?;
    for f in FAMILIES {
        ensure!(s.docs.contains_key(*f), "no HELP for {f}");
    }
    ensure!(
        value(&s, "hopluu_node_info", &[("node", "hg-node"), ("unit", HG)]) == Some(1.0),
        "hopluu_node_info"
    );
    ensure!(value(&s, "hopluu_sync_in_flight_limit", &[]) == Some(4.0));
    for state in ["held", "released", "discarded"] {
        ensure!(value(&s, "hopluu_quarantined_changes", &[("state", state)]) == Some(0.0));
    }
    for path in ["/", "/metrics/x", "/favicon.ico"] {
        let r = get(province.metrics, path).await?;
        ensure!(r.status == 404, "GET {path}: {}", r.status);
    }

    // The first sync: the parent's series, and the changes applied.
    let synced = || async {
        let s = province.scrape().await?;
        Ok(
            value(&s, "hopluu_peer_connected", &[("peer", "vn")]) == Some(1.0)
                && value(&s, "hopluu_sync_applied_changes_total", &[("peer", "vn")])
                    .is_some_and(|v| v > 0.0),
        )
    };
    eventually("the province's metrics show its parent", synced).await?;
    let s = province.scrape().await?;
    ensure!(
        value(
            &s,
            "hopluu_peer_info",
            &[("peer", "vn"), ("unit", VN), ("direction", "upstream")]
        ) == Some(1.0),
        "hopluu_peer_info of vn"
    );
    for f in [
        "hopluu_peer_sessions_total",
        "hopluu_peer_last_contact_timestamp_seconds",
        "hopluu_sync_acked_upto",
        "hopluu_sync_applied_upto",
        "hopluu_sync_lag_sequences",
        "hopluu_sync_pending_documents",
        "hopluu_sync_batches_in_flight",
        "hopluu_sync_window_headroom_batches",
        "hopluu_sync_received_bytes_total",
        "hopluu_sync_applied_documents_total",
    ] {
        ensure!(value(&s, f, &[("peer", "vn")]).is_some(), "no {f} for vn");
    }
    ensure!(value(&s, "hopluu_documents", &[]) > Some(0.0));
    let applied = value(&s, "hopluu_sync_applied_changes_total", &[("peer", "vn")])
        .context("applied changes")?;
    let batches = histogram_count(&s, "vn")?;
    ensure!(batches >= 1.0, "batches applied: {batches}");

    // A national campaign reaches the province: more changes applied,
    // more batches timed.
    national.launch("tt-2026", VN, VN).await?;
    eventually("the campaign's changes are counted", || async {
        let s = province.scrape().await?;
        Ok(
            value(&s, "hopluu_sync_applied_changes_total", &[("peer", "vn")])
                .is_some_and(|v| v > applied)
                && histogram_count(&s, "vn")? > batches,
        )
    })
    .await?;

    // Upward: a member added at the province is sent and acknowledged, so
    // nothing stays pending for the parent.
    let channel = channel_as(province.addr, &Caller::admin()).await?;
    eventually("the province knows its grassroots union", || async {
        Ok(has_unit_at(&channel, HG_A).await)
    })
    .await?;
    MemberServiceClient::new(channel.clone())
        .add_member(pb::AddMemberRequest {
            unit_id: HG_A.into(),
            member: Some(person("Lê Văn Mét", "CD-HG-0100", pb::Gender::Male)),
        })
        .await?;
    eventually("the member is sent and acknowledged", || async {
        let s = province.scrape().await?;
        Ok(
            value(&s, "hopluu_sync_sent_documents_total", &[("peer", "vn")])
                .is_some_and(|v| v > 0.0)
                && value(&s, "hopluu_sync_pending_documents", &[("peer", "vn")]) == Some(0.0),
        )
    })
    .await?;

    // A second national campaign reaches the province: its feed moves on
    // with what it applied from the parent, nothing to send back. No batch
    // is worth sending for that, but once the link is quiet the session
    // tells its position, so the parent's checkpoint reaches the feed and
    // no lag in sequences is left to page anyone.
    let before = province.scrape().await?;
    let applied = value(
        &before,
        "hopluu_sync_applied_changes_total",
        &[("peer", "vn")],
    )
    .context("applied changes")?;
    national.launch("tt-2026-b", VN, VN).await?;
    eventually("the second campaign reaches the province", || async {
        let s = province.scrape().await?;
        Ok(
            value(&s, "hopluu_sync_applied_changes_total", &[("peer", "vn")])
                .is_some_and(|v| v > applied),
        )
    })
    .await?;
    eventually("the quiet link shows no lag in sequences", || async {
        let s = province.scrape().await?;
        let position = value(&s, "hopluu_feed_position", &[]).context("feed position")?;
        Ok(
            value(&s, "hopluu_sync_lag_sequences", &[("peer", "vn")]) == Some(0.0)
                && value(&s, "hopluu_sync_acked_upto", &[("peer", "vn")]) == Some(position)
                && value(&s, "hopluu_sync_pending_documents", &[("peer", "vn")]) == Some(0.0),
        )
    })
    .await?;

    // The parent goes away: the edge shows it, and a write made meanwhile
    // is pending for it.
    national.stop().await?;
    MemberServiceClient::new(channel)
        .add_member(pb::AddMemberRequest {
            unit_id: HG_A.into(),
            member: Some(person("Lê Thị Đo", "CD-HG-0101", pb::Gender::Female)),
        })
        .await?;
    eventually("the parent shows as gone, the write as pending", || async {
        let s = province.scrape().await?;
        Ok(
            value(&s, "hopluu_peer_connected", &[("peer", "vn")]) == Some(0.0)
                && value(&s, "hopluu_sync_pending_documents", &[("peer", "vn")])
                    .is_some_and(|v| v >= 1.0)
                && value(&s, "hopluu_sync_lag_sequences", &[("peer", "vn")])
                    .is_some_and(|v| v >= 1.0)
                && value(&s, "hopluu_sync_batches_in_flight", &[("peer", "vn")]) == Some(0.0),
        )
    })
    .await?;
    let metrics = province.metrics;
    province.stop().await?;
    // Stopped with the node.
    ensure!(
        TcpStream::connect(metrics).await.is_err(),
        "the metrics endpoint outlived its node"
    );
    Ok(())
}

async fn has_unit_at(channel: &tonic::transport::Channel, unit: &str) -> bool {
    hopluu_proto::v1::unit_service_client::UnitServiceClient::new(channel.clone())
        .get_unit(pb::GetUnitRequest {
            unit_id: unit.into(),
        })
        .await
        .is_ok()
}

#[test]
fn the_metrics_section_is_checked() {
    let base = "[node]\nid = \"hg\"\nunit = \"hg\"\n";
    let c = Config::from_toml(base).expect("no [metrics]");
    assert_eq!(c.metrics, None, "off when absent");
    let c = Config::from_toml(&format!("{base}[metrics]\n")).expect("an empty [metrics]");
    assert_eq!(
        c.metrics.map(|m| m.listen.to_string()).as_deref(),
        Some("127.0.0.1:9464")
    );
    let c = Config::from_toml(&format!("{base}[metrics]\nlisten = \"0.0.0.0:9100\"\n"))
        .expect("an address");
    assert_eq!(c.metrics.map(|m| m.listen.port()), Some(9100));
    for (section, wanted) in [
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
        ("[metrics]\nlisten = \"127.0.0.1\"\n", "metrics.listen"),
        (
            "[metrics]\nlisten = \"127.0.0.1:99999\"\n",
            "metrics.listen",
        ),
        ("[metrics]\nlisten = 9464\n", "metrics.listen"),
        ("[metrics]\nport = 9464\n", "port"),
        (
            "[grpc]\nlisten = \"0.0.0.0:7400\"\n[metrics]\nlisten = \"127.0.0.1:7400\"\n",
            "metrics.listen",
        ),
    ] {
        let e = Config::from_toml(&format!("{base}{section}"))
            .expect_err(section)
            .to_string();
        assert!(e.contains(wanted), "{section}: {e}");
    }
}

/// A writer the JSON log lines go to.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lines").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `body` on a runtime of its own with tracing's JSON formatter
/// (`[log] format = "json"`, as `hopluu serve` sets it up) at `filter`;
/// its result, and every line logged meanwhile.
fn with_json_logs<T>(
    filter: &str,
    body: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, String)> {
    let lines = Lines::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer({
            let lines = lines.clone();
            move || lines.clone()
        })
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    // tracing caches whether a callsite is enabled when it is first hit;
    // with a single dispatcher registered it asks only the thread that hits
    // it, and another test's thread (which logs nowhere) would switch the
    // callsite off for this one too. With a second one registered, every
    // registered dispatcher is asked.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _default = tracing::dispatcher::set_default(&dispatch);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            move || std::mem::forget(tracing::dispatcher::set_default(&dispatch))
        })
        .build()?;
    let out = runtime.block_on(body)?;
    drop(runtime);
    let text = String::from_utf8(lines.0.lock().expect("lines").clone())?;
    Ok((out, text))
}

/// `[log] format = "json"` as `hopluu serve` sets it up (tracing's JSON
/// formatter with the current span and the span list): every line is a
/// JSON object, and a session's events carry the `sync_session` span with
/// this node's and the peer's ids and the role, and a batch's the `batch`
/// span with its id, documents and bytes.
#[test]
fn json_logs_carry_the_sync_session_and_batch_spans() -> Result<()> {
    let ((), text) = with_json_logs("hopluu_sync=debug,hopluu_node=info,warn", async {
        let national = Node::with_tree().await?;
        let province = child("hg-node", HG, &[("vn", &national)]).await?;
        eventually("the province receives its commune", || async {
            Ok(province.unit(HG_CT).await.is_ok())
        })
        .await?;
        province.stop().await?;
        national.stop().await
    })?;
    let mut session = false;
    let mut batch = false;
    for line in text.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        for key in ["timestamp", "level", "target", "fields"] {
            ensure!(event.get(key).is_some(), "no {key}: {line}");
        }
        let spans = event["spans"].as_array().cloned().unwrap_or_default();
        let span = |name: &str| spans.iter().find(|s| s["name"] == name).cloned();
        if let Some(s) = span("sync_session")
            && s["node"] == "hg-node"
            && s["unit"] == HG
            && s["role"] == "dialer"
            && s["peer"] == "vn"
            && s["peer_unit"] == VN
        {
            session = true;
            if let Some(b) = span("batch")
                && b["id"].is_u64()
                && b["docs"].is_u64()
                && b["bytes"].is_u64()
                && (b["direction"] == "in" || b["direction"] == "out")
            {
                batch = true;
            }
        }
    }
    ensure!(
        session,
        "no event in the province's sync_session span with both ids:\n{text}"
    );
    ensure!(batch, "no event in a batch span:\n{text}");
    // The acceptor side names its role too.
    ensure!(
        text.contains("\"role\":\"acceptor\""),
        "no acceptor session"
    );
    Ok(())
}

/// Refused TLS handshakes: a client from a CA the node does not trust,
/// and one without a certificate (let in for health only), each twice.
/// Each reason is one log line (with the presented certificate's
/// subject), and each connection counts in `hopluu_tls_refused_total`.
#[test]
fn refused_handshakes_are_logged_once_per_peer_and_reason_and_counted() -> Result<()> {
    let (s, text) = with_json_logs("hopluu_node=info,warn", async {
        let national = Node::with_tree().await?;
        let province = MetricsNode::province(&national).await?;
        for _ in 0..2 {
            // Refused in the handshake: the error shows at connect or at
            // the first call.
            if let Ok(channel) = channel_as(province.addr, &Caller::ForeignCa).await {
                pb::node_service_client::NodeServiceClient::new(channel)
                    .get_node_info(pb::GetNodeInfoRequest {})
                    .await
                    .expect_err("a foreign CA is refused");
            }
            let channel = channel_as(province.addr, &Caller::NoCert).await?;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .context("health without a certificate")?;
        }
        eventually("both refusals of the foreign CA are counted", || async {
            let s = province.scrape().await?;
            Ok(value(&s, "hopluu_tls_refused_total", &[("reason", "unknown-ca")]) == Some(2.0))
        })
        .await?;
        let s = province.scrape().await?;
        province.stop().await?;
        national.stop().await?;
        Ok::<_, anyhow::Error>(s)
    })?;
    ensure!(
        value(
            &s,
            "hopluu_tls_refused_total",
            &[("reason", "no-certificate")]
        ) == Some(2.0),
        "no-certificate connections counted"
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let with = |reason: &str| {
        events
            .iter()
            .filter(|e| e["fields"]["reason"] == reason)
            .collect::<Vec<_>>()
    };
    let foreign = with("unknown-ca");
    ensure!(foreign.len() == 1, "one line for the foreign CA:\n{text}");
    let f = &foreign[0]["fields"];
    ensure!(
        f["message"] == "TLS handshake refused"
            && f["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:"))
            && f["certificate_subject"]
                .as_str()
                .is_some_and(|s| s.contains("intruder"))
            && f["certificate_expires"]
                .as_str()
                .is_some_and(|e| e.ends_with("UTC")),
        "{f}"
    );
    ensure!(
        with("no-certificate").len() == 1,
        "one line for the client without a certificate:\n{text}"
    );
    Ok(())
}
