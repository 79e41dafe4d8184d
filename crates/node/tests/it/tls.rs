//! Mutual TLS on loopback: who may connect, who may replicate, and what a
//! node refuses to start with.
//!
//! A refused handshake shows either when connecting or at the first call
//! (in TLS 1.3 a client learns that its certificate was rejected only
//! after it has sent it), so [`refused`] accepts either. A client without
//! a certificate connects, and is refused at its first call to anything
//! but health.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hopluu_model::UnitId;
use hopluu_node::config::{Config, TlsSection};
use hopluu_node::server::Serve;
use hopluu_node::tls::NodeTls;
use hopluu_node::tls::issue::Subject;
use hopluu_proto::v1 as pb;

use crate::harness::*;
use crate::replication::eventually;

/// Fails unless `caller` is turned away by `node`; returns the error.
async fn refused(node: &Node, caller: &Caller) -> Result<String> {
    let channel = match node.channel_as(caller).await {
        Err(e) => return Ok(format!("{e:#}")),
        Ok(c) => c,
    };
    let call = tokio::time::timeout(
        Duration::from_secs(10),
        pb::node_service_client::NodeServiceClient::new(channel)
            .get_node_info(pb::GetNodeInfoRequest {}),
    )
    .await
    .context("a refused client is answered within 10 s")?;
    match call {
        Ok(info) => bail!(
            "{caller:?} was let in: it read node {}",
            info.into_inner().node_id
        ),
        Err(status) => Ok(hopluu_node::tls::error_chain(&status)),
    }
}

async fn node_id_as(node: &Node, caller: &Caller) -> Result<String> {
    let channel = node.channel_as(caller).await?;
    Ok(pb::node_service_client::NodeServiceClient::new(channel)
        .get_node_info(pb::GetNodeInfoRequest {})
        .await
        .with_context(|| format!("NodeInfo as {caller:?}"))?
        .into_inner()
        .node_id)
}

/// Who gets in: the federation's certificates. A certificate from
/// another CA is turned away in the handshake; a client with no
/// certificate at all connects (a load balancer's health probe) and is
/// answered by health, and by nothing else.
#[tokio::test]
async fn clients_without_a_trusted_certificate_are_refused() -> Result<()> {
    let node = Node::start().await?;
    // The harness's own admin, and staff and node certificates, get in.
    assert_eq!(node_id_as(&node, &Caller::admin()).await?, "vn");
    assert_eq!(node_id_as(&node, &Caller::staff("clerk", HG)).await?, "vn");
    assert_eq!(node_id_as(&node, &Caller::node("hg-node", HG)).await?, "vn");
    // Turned away, each for its own reason.
    for (caller, why) in [
        (Caller::Plaintext, ""),
        (Caller::NoCert, "no client certificate"),
        (Caller::ForeignCa, "UnknownCA"),
    ] {
        let e = refused(&node, &caller).await?;
        assert!(e.contains(why), "{caller:?}: {e}");
    }
    // Without a certificate, the health service answers, for the node and
    // for any service it serves.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(node.channel_as(&Caller::NoCert).await?);
    for service in ["", "hopluu.v1.MemberService", "grpc.health.v1.Health"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .with_context(|| format!("health of {service:?} without a certificate"))?
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    // Every other service still asks for one: replication, the admin API.
    let status =
        pb::admin_service_client::AdminServiceClient::new(node.channel_as(&Caller::NoCert).await?)
            .status(pb::StatusRequest {})
            .await
            .expect_err("no status without a certificate");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("no client certificate"),
        "{status:?}"
    );
    // Reflection too.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
    };
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let status = ServerReflectionClient::new(node.channel_as(&Caller::NoCert).await?)
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .expect_err("no reflection without a certificate");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    // The node still serves after the failed handshakes.
    assert_eq!(node.info().await?.node_id, "vn");
    node.stop().await
}

#[tokio::test]
async fn a_second_trusted_ca_is_accepted_while_a_ca_is_rotated() -> Result<()> {
    // The national node trusts the old and the new CA.
    let dir = tempfile::tempdir()?;
    let ca2 = dir.path().join("ca2.pem");
    std::fs::write(&ca2, pki().second.cert_pem())?;
    let national = Node::start_with(dir, |c| {
        let tls = c.tls.as_mut().expect("TLS by default");
        tls.ca.push(ca2.clone());
    })
    .await?;
    for (id, name, kind, parent) in [
        (HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN),
        (HG_CT, "Công đoàn xã Châu Thành", "commune", HG),
    ] {
        national.create_unit(id, name, kind, parent).await?;
    }
    // Clients from either CA get in; a CA nobody listed does not.
    assert_eq!(
        node_id_as(&national, &Caller::SecondCa("new-admin".into())).await?,
        "vn"
    );
    assert_eq!(node_id_as(&national, &Caller::admin()).await?, "vn");
    refused(&national, &Caller::ForeignCa).await?;

    // A province re-issued by the new CA (and trusting both) syncs.
    let dir = tempfile::tempdir()?;
    let reissued = pki().second.issue(
        &Subject::node("hg-node", HG).reachable_at(&[], &["127.0.0.1".parse()?]),
        1,
    )?;
    let (cert, key) = reissued.write_new(dir.path(), "hg-node-new-ca")?;
    let ca2 = dir.path().join("ca2.pem");
    std::fs::write(&ca2, pki().second.cert_pem())?;
    national
        .replication
        .allow_child("hg-node", &UnitId::parse("unit", HG)?);
    let national_addr = national.addr;
    let province = Node::start_with(dir, |c| {
        as_child(c, "hg-node", HG, VN, national_addr);
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
        let tls = c.tls.as_mut().expect("TLS by default");
        tls.cert = cert.clone();
        tls.key = key.clone();
        tls.ca.push(ca2.clone());
    })
    .await?;
    eventually("the province, certified by the new CA, syncs", || async {
        Ok(province.unit(HG_CT).await.is_ok())
    })
    .await?;
    province.stop().await?;
    national.stop().await
}

#[tokio::test]
async fn a_child_must_be_the_node_its_certificate_names_and_a_configured_child() -> Result<()> {
    let national = Node::with_tree().await?;
    let hg = UnitId::parse("unit", HG)?;
    national.replication.allow_child("hg-node", &hg);
    national
        .replication
        .allow_child("lc-node", &UnitId::parse("unit", LC)?);

    // A valid certificate, and a hello claiming another (configured) node.
    let answer = first_answer(
        &national,
        &Caller::node("hg-node", HG),
        hello("lc-node", LC),
    )
    .await?;
    let (code, reason) = refusal_of(&answer)?;
    assert_eq!(code, "identity", "{reason}");
    assert!(
        reason.contains("hg-node") && reason.contains("lc-node"),
        "{reason}"
    );
    // Its own id with another unit is no better.
    let (code, _) = refusal_of(
        &first_answer(
            &national,
            &Caller::node("hg-node", HG),
            hello("hg-node", LC),
        )
        .await?,
    )?;
    assert_eq!(code, "identity");
    // An administrator's certificate cannot replicate.
    let (code, reason) =
        refusal_of(&first_answer(&national, &Caller::admin(), hello("hg-node", HG)).await?)?;
    assert_eq!(code, "identity", "{reason}");

    // A node the national node does not list, honest in its hello.
    let (code, reason) = refusal_of(
        &first_answer(
            &national,
            &Caller::node("hg-ct-node", HG_CT),
            hello("hg-ct-node", HG_CT),
        )
        .await?,
    )?;
    assert_eq!(code, "unknown-peer", "{reason}");
    assert!(reason.contains("hg-ct-node"), "{reason}");
    // Listed with another unit than its certificate names.
    national
        .replication
        .allow_child("hg-ct-node", &UnitId::parse("unit", HG_A)?);
    let (code, reason) = refusal_of(
        &first_answer(
            &national,
            &Caller::node("hg-ct-node", HG_CT),
            hello("hg-ct-node", HG_CT),
        )
        .await?,
    )?;
    assert_eq!(code, "unknown-peer", "{reason}");

    // The configured child, honest: the national node answers with its
    // own hello.
    let answer = first_answer(
        &national,
        &Caller::node("hg-node", HG),
        hello("hg-node", HG),
    )
    .await?;
    match answer.body {
        Some(pb::sync_frame::Body::Hello(h)) => assert_eq!(h.node_id, "vn"),
        other => bail!("expected the national node's hello, got {other:?}"),
    }
    // The session checks still follow: a unit the parent does not know.
    national
        .replication
        .allow_child("stray", &UnitId::parse("unit", "khong-co")?);
    let (code, _) = refusal_of(
        &first_answer(
            &national,
            &Caller::node("stray", "khong-co"),
            hello("stray", "khong-co"),
        )
        .await?,
    )?;
    assert_eq!(code, "unknown-unit");
    national.stop().await
}

#[tokio::test]
async fn a_real_child_that_is_not_configured_never_syncs() -> Result<()> {
    let national = Node::with_tree().await?;
    let national_addr = national.addr;
    let dir = tempfile::tempdir()?;
    let province = Node::start_with(dir, |c| {
        as_child(c, "hg-node", HG, VN, national_addr);
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
    })
    .await?;
    eventually("the province is refused as unknown-peer", || async {
        Ok(province
            .replication
            .edges()
            .iter()
            .any(|e| e.peer == VN && e.last_error.contains("unknown-peer")))
    })
    .await?;
    assert!(province.unit(HG).await.is_err(), "it received its unit");
    province.stop().await?;
    national.stop().await
}

#[tokio::test]
async fn the_dialer_refuses_an_upstream_whose_certificate_names_another_node() -> Result<()> {
    let national = Node::with_tree().await?;
    national
        .replication
        .allow_child("hg-node", &UnitId::parse("unit", HG)?);
    // The province expects its upstream to be node lc-node; the node at
    // that address holds vn's certificate.
    let national_addr = national.addr;
    let province = Node::start_with(tempfile::tempdir()?, |c| {
        as_child(c, "hg-node", HG, "lc-node", national_addr);
        c.replication.backoff_min_ms = 20;
        c.replication.backoff_max_ms = 200;
    })
    .await?;
    let mut seen = String::new();
    eventually("the province refuses the upstream's certificate", || {
        let edges = province.replication.edges();
        seen = format!("{edges:?}");
        async move {
            Ok(edges
                .iter()
                .any(|e| e.peer == "lc-node" && e.last_error.contains("lc-node.node.hopluu")))
        }
    })
    .await
    .with_context(|| format!("edges: {seen}"))?;
    println!("{seen}");
    assert!(province.unit(HG).await.is_err());
    // No session ever opened at the national node.
    assert!(national.replication.edges().is_empty());
    province.stop().await?;
    national.stop().await
}

#[tokio::test]
async fn without_tls_a_node_starts_only_when_told_to_serve_plaintext() -> Result<()> {
    // No [tls], no flag: refused, with what to do.
    let dir = tempfile::tempdir()?;
    let config = Config::embedded(dir.path());
    let serve = Serve::from(&config);
    let e = serve
        .security("vn", &UnitId::parse("unit", VN)?)
        .expect_err("plaintext without the flag")
        .to_string();
    assert!(
        e.contains("tls: no [tls] section") && e.contains("--insecure-plaintext"),
        "{e}"
    );
    // The flag and [tls] together are refused too.
    let mut both = Serve::from(&config);
    both.insecure_plaintext = true;
    both.tls = Some(TlsSection {
        cert: "n.pem".into(),
        key: "n.key".into(),
        ca: vec!["ca.pem".into()],
    });
    assert!(both.security("vn", &UnitId::parse("unit", VN)?).is_err());

    // With the flag: plaintext, and TLS clients find no TLS there.
    let node = Node::start_insecure(dir, |_| {}).await?;
    assert_eq!(node.info().await?.node_id, "vn");
    assert_eq!(node_id_as(&node, &Caller::Plaintext).await?, "vn");
    refused(&node, &Caller::admin()).await?;
    // A plaintext node trusts hellos as they come: no identity check.
    let answer = first_answer(&node, &Caller::Plaintext, hello("any-node", VN)).await?;
    let (code, _) = refusal_of(&answer)?;
    assert_eq!(
        code, "not-in-subtree",
        "only the session's own checks apply"
    );
    node.stop().await
}

#[tokio::test]
async fn the_tls_section_is_checked_when_the_node_starts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let tls = node_tls(d, "hg-node", HG)?;
    let hg = UnitId::parse("unit", HG)?;
    NodeTls::load(&tls, "hg-node", &hg).context("the harness's own files")?;
    let expect = |tls: &TlsSection, node: &str, unit: &str, field: &str, words: &[&str]| {
        let e = NodeTls::load(tls, node, &UnitId::parse("unit", unit).unwrap())
            .expect_err("a bad [tls]")
            .to_string();
        assert!(e.starts_with(&format!("configuration: {field}: ")), "{e}");
        for w in words {
            assert!(e.contains(w), "{w:?} missing from {e}");
        }
    };
    // The certificate is another node's.
    expect(&tls, "lc-node", LC, "tls.cert", &["hg-node", "lc-node"]);
    expect(&tls, "hg-node", LC, "tls.cert", &["hau-giang", "lai-chau"]);
    // Missing files.
    let mut missing = tls.clone();
    missing.cert = d.join("nope.pem");
    expect(
        &missing,
        "hg-node",
        HG,
        "tls.cert",
        &["cannot read", "nope.pem"],
    );
    let mut missing = tls.clone();
    missing.ca.push(d.join("nope-ca.pem"));
    expect(&missing, "hg-node", HG, "tls.ca[1]", &["cannot read"]);
    // An admin certificate is not a node's.
    let admin = pki().ca.issue(&Subject::admin("root"), 1)?;
    let (cert, key) = admin.write_new(d, "root")?;
    let mut wrong = tls.clone();
    wrong.cert = cert.clone();
    wrong.key = key.clone();
    expect(
        &wrong,
        "hg-node",
        HG,
        "tls.cert",
        &["admin root", "not of a node"],
    );
    // A key that is not the certificate's.
    let mut wrong = tls.clone();
    wrong.key = key;
    expect(&wrong, "hg-node", HG, "tls.key", &["is not the key"]);
    // A certificate from a CA the node does not trust.
    let foreign = pki().foreign.issue(&Subject::node("hg-node", HG), 1)?;
    let (cert, key) = foreign.write_new(d, "foreign")?;
    let mut wrong = tls.clone();
    wrong.cert = cert;
    wrong.key = key;
    expect(&wrong, "hg-node", HG, "tls.cert", &["not issued by any CA"]);
    // A CA file that is not a CA.
    let mut wrong = tls.clone();
    wrong.ca = vec![tls.cert.clone()];
    expect(&wrong, "hg-node", HG, "tls.ca[0]", &["not a CA"]);
    ensure!(std::fs::read_to_string(&tls.key)?.contains("PRIVATE KEY"));
    Ok(())
}
