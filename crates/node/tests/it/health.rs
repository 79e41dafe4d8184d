//! NodeService (identity, database, feed position), the standard gRPC
//! health service and server reflection.

use anyhow::{Result, bail};
use hopluu_proto::v1 as pb;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::harness::*;

/// Every service of the public API, by its full name.
const SERVICES: [&str; 8] = [
    "hopluu.v1.UnitService",
    "hopluu.v1.MemberService",
    "hopluu.v1.CampaignService",
    "hopluu.v1.EmulationService",
    "hopluu.v1.AwardService",
    "hopluu.v1.ReportService",
    "hopluu.v1.NodeService",
    "hopluu.v1.AdminService",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_info_names_the_node_and_counts_writes() -> Result<()> {
    // A node that holds private data, for the roster and private roster below.
    let node = Node::start_with(tempfile::tempdir()?, |c| c.replication.private_depth = 0).await?;
    let info = node.info().await?;
    assert_eq!(info.node_id, "vn");
    assert_eq!(info.unit_id, "vn");
    assert_eq!(info.unit_name, "Tổng Liên đoàn Lao động Việt Nam");
    assert_eq!(info.database, "sqlite");
    assert!(!info.version.is_empty());
    // The hosted unit's record and the node's own record (node/vn) were
    // written at the first start.
    assert_eq!((info.feed_position, info.documents), (2, 2));

    node.create_unit(HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN)
        .await?;
    let after = node.info().await?;
    assert_eq!((after.feed_position, after.documents), (3, 3));

    // Reads write nothing.
    node.unit_ids(VN, None).await?;
    node.units()
        .list_unit_kinds(pb::ListUnitKindsRequest {})
        .await?;
    assert_eq!(node.feed().await?, 3);

    // One write of several documents (a roster and its private part)
    // advances the feed once per document.
    node.create_unit(HG_A, "CĐCS Trường A", "grassroots", HG)
        .await?;
    let mut input = person("Nguyễn Văn An", "HG-0001", pb::Gender::Male);
    input.national_id = "001090012345".into();
    node.add(HG_A, input).await?;
    let last = node.info().await?;
    assert_eq!((last.feed_position, last.documents), (6, 6));
    node.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_serving_for_every_service() -> Result<()> {
    let node = Node::start().await?;
    let mut health = HealthClient::new(node.channel.clone());
    for service in std::iter::once("").chain(SERVICES) {
        let r = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await;
        match r {
            Ok(r) => assert_eq!(
                r.into_inner().status(),
                ServingStatus::Serving,
                "service {service:?}"
            ),
            Err(s) => panic!("health check of {service:?} failed: {s:?}"),
        }
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "hopluu.v1.NoSuchService".into(),
        })
        .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);
    node.stop().await
}

async fn reflect(node: &Node, request: MessageRequest) -> Result<MessageResponse, Status> {
    let mut client = ServerReflectionClient::new(node.channel.clone());
    let mut stream = client
        .server_reflection_info(tokio_stream::once(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        }))
        .await?
        .into_inner();
    let response = stream
        .message()
        .await?
        .ok_or_else(|| Status::internal("the reflection stream ended without an answer"))?;
    response
        .message_response
        .ok_or_else(|| Status::internal("an empty reflection answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_services() -> Result<()> {
    let node = Node::start().await?;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&node, MessageRequest::ListServices(String::new())).await?
    else {
        bail!("expected a list of services");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in SERVICES.into_iter().chain([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]) {
        assert!(names.contains(&service), "{service} missing from {names:?}");
    }

    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &node,
        MessageRequest::FileContainingSymbol("hopluu.v1.UnitService".into()),
    )
    .await?
    else {
        bail!("expected the file declaring UnitService");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    // An unknown symbol is answered inside the stream (the reflection
    // tests check that the stream goes on).
    let MessageResponse::ErrorResponse(unknown) = reflect(
        &node,
        MessageRequest::FileContainingSymbol("hopluu.v1.NoSuchService".into()),
    )
    .await?
    else {
        bail!("expected an error response for an unknown symbol");
    };
    assert_eq!(unknown.error_code, i32::from(Code::NotFound));
    node.stop().await
}
