//! gRPC server reflection over the wire, in both versions (`v1` and
//! `v1alpha`), with the generated clients: one stream per version lists
//! every service, resolves each to descriptors that decode and carry their
//! imports, answers an unknown symbol with an `ErrorResponse` inside the
//! stream, and goes on answering; and health reports SERVING for its own
//! name and reflection's.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use prost::Message;
use prost_types::FileDescriptorProto;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::*;

/// Every service a node serves, by its full name, sorted.
const SERVED: [&str; 13] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "hopluu.v1.AdminService",
    "hopluu.v1.AwardService",
    "hopluu.v1.CampaignService",
    "hopluu.v1.EmulationService",
    "hopluu.v1.MemberService",
    "hopluu.v1.NodeService",
    "hopluu.v1.ReorgService",
    "hopluu.v1.ReplicationService",
    "hopluu.v1.ReportService",
    "hopluu.v1.UnitService",
];

/// How long one answer on a reflection stream may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Decodes the files of a `FileDescriptorResponse`, and checks that every
/// file one of them imports came along.
fn decode_files(encoded: &[Vec<u8>]) -> Result<Vec<FileDescriptorProto>> {
    let files = encoded
        .iter()
        .map(|f| FileDescriptorProto::decode(f.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .context("a file descriptor that does not decode")?;
    let names: HashSet<&str> = files.iter().map(|f| f.name()).collect();
    for file in &files {
        for import in &file.dependency {
            ensure!(
                names.contains(import.as_str()),
                "{} imports {import}, which was not sent with it",
                file.name()
            );
        }
    }
    Ok(files)
}

/// Whether `file` declares the service `full_name`.
fn declares(file: &FileDescriptorProto, full_name: &str) -> bool {
    file.service
        .iter()
        .any(|s| format!("{}.{}", file.package(), s.name()) == full_name)
}

/// One test per version: the generated messages of `v1` and `v1alpha` have
/// the same names and fields, so one body checks both.
macro_rules! one_stream {
    ($version:ident) => {
        mod $version {
            use tonic::Streaming;
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, ServerReflectionResponse,
            };

            use super::*;

            /// One reflection stream, asked one request at a time.
            struct Stream {
                requests: mpsc::Sender<ServerReflectionRequest>,
                answers: Streaming<ServerReflectionResponse>,
            }

            impl Stream {
                async fn open(node: &Node) -> Result<Stream> {
                    let (requests, outbound) = mpsc::channel(1);
                    let answers = ServerReflectionClient::new(node.channel.clone())
                        .server_reflection_info(ReceiverStream::new(outbound))
                        .await?
                        .into_inner();
                    Ok(Stream { requests, answers })
                }

                /// Sends `request` and reads its answer, which echoes the
                /// host and the request.
                async fn ask(
                    &mut self,
                    request: Option<MessageRequest>,
                ) -> Result<MessageResponse> {
                    let request = ServerReflectionRequest {
                        host: "reflection-test".into(),
                        message_request: request,
                    };
                    self.requests.send(request.clone()).await?;
                    let answer = tokio::time::timeout(ANSWER_WITHIN, self.answers.message())
                        .await
                        .context("no answer within 10 s")??
                        .context("the stream ended")?;
                    ensure!(answer.valid_host == "reflection-test", "{answer:?}");
                    ensure!(answer.original_request == Some(request), "{answer:?}");
                    answer
                        .message_response
                        .context("an answer with no response")
                }

                /// The files declaring `symbol`, decoded, with their imports.
                async fn symbol(&mut self, symbol: &str) -> Result<Vec<FileDescriptorProto>> {
                    let ask = MessageRequest::FileContainingSymbol(symbol.into());
                    match self.ask(Some(ask)).await? {
                        MessageResponse::FileDescriptorResponse(files) => {
                            decode_files(&files.file_descriptor_proto)
                        }
                        other => bail!("expected the files declaring {symbol}, received {other:?}"),
                    }
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_stream_lists_resolves_refuses_and_goes_on() -> Result<()> {
                let node = Node::start().await?;
                let mut stream = Stream::open(&node).await?;

                let listed = stream
                    .ask(Some(MessageRequest::ListServices(String::new())))
                    .await?;
                let MessageResponse::ListServicesResponse(list) = listed else {
                    bail!("expected the list of services, received {listed:?}");
                };
                let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
                names.sort();
                assert_eq!(names, SERVED);

                for name in &names {
                    let files = stream.symbol(name).await?;
                    assert!(
                        declares(&files[0], name),
                        "{name} not in {:?}",
                        files[0].name()
                    );
                }

                // An unknown symbol is refused inside the stream, NOT_FOUND (5)...
                let unknown =
                    MessageRequest::FileContainingSymbol("hopluu.v1.NoSuchService".into());
                let MessageResponse::ErrorResponse(error) = stream.ask(Some(unknown)).await? else {
                    bail!("expected an error response for an unknown symbol");
                };
                assert_eq!(error.error_code, 5, "{error:?}");
                assert!(
                    error.error_message.contains("hopluu.v1.NoSuchService"),
                    "{error:?}"
                );
                // ... as is a request that asks nothing, INVALID_ARGUMENT (3) ...
                let MessageResponse::ErrorResponse(error) = stream.ask(None).await? else {
                    bail!("expected an error response for an empty request");
                };
                assert_eq!(error.error_code, 3, "{error:?}");

                // ... and the same stream goes on answering: a method, then its file by name.
                let files = stream.symbol("hopluu.v1.NodeService.GetNodeInfo").await?;
                assert!(declares(&files[0], "hopluu.v1.NodeService"));
                let by_name = MessageRequest::FileByFilename(files[0].name().into());
                let MessageResponse::FileDescriptorResponse(again) =
                    stream.ask(Some(by_name)).await?
                else {
                    bail!("expected {} by its name", files[0].name());
                };
                assert_eq!(decode_files(&again.file_descriptor_proto)?, files);

                // A stream the client closes ends cleanly, and the node stops.
                let Stream {
                    requests,
                    mut answers,
                } = stream;
                drop(requests);
                let end = tokio::time::timeout(ANSWER_WITHIN, answers.message())
                    .await
                    .context("the stream did not end within 10 s")??;
                assert!(end.is_none(), "{end:?}");
                node.stop().await
            }
        }
    };
}

one_stream!(v1);
one_stream!(v1alpha);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_for_health_and_reflection() -> Result<()> {
    let node = Node::start().await?;
    let mut health = HealthClient::new(node.channel.clone());
    for service in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .with_context(|| format!("health check of {service}"))?
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    node.stop().await
}
