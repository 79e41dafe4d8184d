//! gRPC server reflection, in both versions clients ask for:
//! `grpc.reflection.v1` (grpcurl from 1.8.8, current Postman) and
//! `grpc.reflection.v1alpha` (grpcio-reflection's stock client, grpcurl
//! before 1.8.8, older Postman, Evans and Kreya). The two versions carry the
//! same messages under two packages, so one version-neutral [`Index`]
//! answers, and each version only converts its own messages to and from
//! [`Ask`] and [`Answer`].
//!
//! A lookup that fails is answered *inside* the stream, as the protocol
//! says: an `ErrorResponse` carrying the numeric gRPC code (`NOT_FOUND` for
//! an unknown symbol or file, `INVALID_ARGUMENT` for a request that asks
//! nothing), and the stream goes on answering. Only a broken inbound stream
//! ends it with a status.
//!
//! A file is answered with every file it imports, directly or not, as
//! grpc-go does, so a client resolves a service in one round trip.
//!
//! # Layout
//! - [`Reflection`]: the service state, served as [`ReflectionV1`] and
//!   [`ReflectionV1alpha`].
//! - [`Index`]: the descriptors of everything the node serves (hopluu,
//!   health, reflection itself), indexed by file and by symbol.
//! - [`Ask`], [`Answer`], [`Refusal`]: requests and answers of either
//!   version.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use prost_reflect::{DescriptorError, DescriptorPool, FileDescriptor};
use tokio_stream::Stream;
use tonic::Code;

/// The reflection services' state, shared by both versions and every stream.
#[derive(Clone, Debug)]
pub struct Reflection {
    index: Arc<Index>,
}

impl Reflection {
    /// Indexes the descriptors of every service the node serves: hopluu's,
    /// health's and reflection's own (both versions).
    pub fn new() -> Result<Reflection, DescriptorError> {
        Ok(Reflection {
            index: Arc::new(Index::new(&[
                hopluu_proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ])?),
        })
    }

    /// The `grpc.reflection.v1.ServerReflection` service.
    pub fn v1(&self) -> ReflectionV1 {
        v1::ServerReflectionServer::new(self.clone())
    }

    /// The `grpc.reflection.v1alpha.ServerReflection` service.
    pub fn v1alpha(&self) -> ReflectionV1alpha {
        v1alpha::ServerReflectionServer::new(self.clone())
    }
}

/// The `grpc.reflection.v1.ServerReflection` service, as served.
pub type ReflectionV1 = v1::ServerReflectionServer<Reflection>;

/// The `grpc.reflection.v1alpha.ServerReflection` service, as served.
pub type ReflectionV1alpha = v1alpha::ServerReflectionServer<Reflection>;

/// What a reflection request asks, in either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    ListServices,
    FileByFilename(String),
    FileContainingSymbol(String),
    FileContainingExtension {
        containing_type: String,
        number: i32,
    },
    AllExtensionNumbersOfType(String),
}

/// What the node answers to an [`Ask`] it can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Full names of the services served, sorted.
    Services(Vec<String>),
    /// Encoded `FileDescriptorProto`s: the file asked for first, then every
    /// file it imports, directly or not.
    Files(Vec<Vec<u8>>),
    /// The numbers of the extensions of `base_type_name`.
    ExtensionNumbers {
        base_type_name: String,
        numbers: Vec<i32>,
    },
}

/// Why an [`Ask`] has no [`Answer`]: sent inside the stream as an
/// `ErrorResponse`, whose `error_code` is `code`'s number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    fn not_found(message: String) -> Refusal {
        Refusal {
            code: Code::NotFound,
            message,
        }
    }
}

/// The descriptors the node serves, with the file that defines each symbol.
#[derive(Debug)]
pub struct Index {
    pool: DescriptorPool,
    /// Full name of every service, method, message, field, oneof, enum,
    /// enum value and extension -> index of its file in `pool`.
    symbols: HashMap<String, usize>,
    /// Each file of `pool`, encoded once (extension options included), by
    /// its index in `pool`.
    encoded: Vec<Vec<u8>>,
}

impl Index {
    /// Indexes encoded `FileDescriptorSet`s; a file in several sets is kept
    /// once.
    pub fn new(sets: &[&[u8]]) -> Result<Index, DescriptorError> {
        let mut pool = DescriptorPool::new();
        for set in sets {
            pool.decode_file_descriptor_set(*set)?;
        }
        let mut symbols = HashMap::new();
        let mut add = |name: &str, file: FileDescriptor| {
            symbols.insert(name.to_owned(), file.index());
        };
        for service in pool.services() {
            add(service.full_name(), service.parent_file());
            for method in service.methods() {
                add(method.full_name(), service.parent_file());
            }
        }
        for message in pool.all_messages() {
            add(message.full_name(), message.parent_file());
            for field in message.fields() {
                add(field.full_name(), message.parent_file());
            }
            for oneof in message.oneofs() {
                add(oneof.full_name(), message.parent_file());
            }
        }
        for enumeration in pool.all_enums() {
            add(enumeration.full_name(), enumeration.parent_file());
            // An enum value's full name is its enum's sibling
            // (`pkg.VALUE`), as protobuf scopes it.
            for value in enumeration.values() {
                add(value.full_name(), enumeration.parent_file());
            }
        }
        for extension in pool.all_extensions() {
            add(extension.full_name(), extension.parent_file());
        }
        let encoded = pool.files().map(|f| f.encode_to_vec()).collect();
        Ok(Index {
            pool,
            symbols,
            encoded,
        })
    }

    /// Answers one request; `None` is a request that asks nothing.
    pub fn answer(&self, ask: Option<Ask>) -> Result<Answer, Refusal> {
        match ask {
            None => Err(Refusal {
                code: Code::InvalidArgument,
                message: "message_request: expected one of list_services, file_by_filename, \
                          file_containing_symbol, file_containing_extension or \
                          all_extension_numbers_of_type, received none"
                    .into(),
            }),
            Some(Ask::ListServices) => {
                let mut names: Vec<String> = self
                    .pool
                    .services()
                    .map(|s| s.full_name().to_owned())
                    .collect();
                names.sort();
                Ok(Answer::Services(names))
            }
            Some(Ask::FileByFilename(name)) => match self.pool.get_file_by_name(&name) {
                Some(file) => Ok(self.files(file)),
                None => Err(Refusal::not_found(format!("file {name:?} not found"))),
            },
            Some(Ask::FileContainingSymbol(symbol)) => match self.symbols.get(&symbol) {
                Some(&index) => Ok(self.files(FileDescriptor::new(self.pool.clone(), index))),
                None => Err(Refusal::not_found(format!("symbol {symbol:?} not found"))),
            },
            Some(Ask::FileContainingExtension {
                containing_type,
                number,
            }) => {
                let extension = self
                    .pool
                    .get_message_by_name(&containing_type)
                    .zip(u32::try_from(number).ok())
                    .and_then(|(message, number)| message.get_extension(number));
                match extension {
                    Some(extension) => Ok(self.files(extension.parent_file())),
                    None => Err(Refusal::not_found(format!(
                        "no extension {number} of type {containing_type:?}"
                    ))),
                }
            }
            Some(Ask::AllExtensionNumbersOfType(name)) => {
                match self.pool.get_message_by_name(&name) {
                    Some(message) => Ok(Answer::ExtensionNumbers {
                        numbers: message
                            .extensions()
                            .filter_map(|e| i32::try_from(e.number()).ok())
                            .collect(),
                        base_type_name: name,
                    }),
                    None => Err(Refusal::not_found(format!(
                        "message type {name:?} not found"
                    ))),
                }
            }
        }
    }

    /// `file` and every file it imports, directly or not, each once, `file`
    /// first.
    fn files(&self, file: FileDescriptor) -> Answer {
        let mut seen = HashSet::from([file.index()]);
        let mut queue = VecDeque::from([file]);
        let mut out = Vec::new();
        while let Some(file) = queue.pop_front() {
            out.push(self.encoded[file.index()].clone());
            for dependency in file.dependencies() {
                if seen.insert(dependency.index()) {
                    queue.push_back(dependency);
                }
            }
        }
        Answer::Files(out)
    }
}

/// A stream of reflection answers, in either version.
type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// One version of the service: the conversions between its generated
/// messages and [`Ask`], [`Answer`] and [`Refusal`], and the stream. The
/// generated types of `v1` and `v1alpha` have the same fields and names, so
/// one body serves both.
macro_rules! reflection_version {
    ($version:ident) => {
        #[doc = concat!("`grpc.reflection.", stringify!($version), "`, to and from the core.")]
        pub mod $version {
            use tokio_stream::StreamExt;
            use tonic::{Request, Response, Status, Streaming};
            pub use tonic_reflection::pb::$version::server_reflection_server::{
                ServerReflection, ServerReflectionServer,
            };
            use tonic_reflection::pb::$version::{
                self as pb, server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };

            use super::{Answer, Answers, Ask, Index, Reflection};

            fn ask(request: MessageRequest) -> Ask {
                match request {
                    MessageRequest::ListServices(_) => Ask::ListServices,
                    MessageRequest::FileByFilename(name) => Ask::FileByFilename(name),
                    MessageRequest::FileContainingSymbol(symbol) => {
                        Ask::FileContainingSymbol(symbol)
                    }
                    MessageRequest::FileContainingExtension(e) => Ask::FileContainingExtension {
                        containing_type: e.containing_type,
                        number: e.extension_number,
                    },
                    MessageRequest::AllExtensionNumbersOfType(name) => {
                        Ask::AllExtensionNumbersOfType(name)
                    }
                }
            }

            /// The response to `request`, echoing its host and itself.
            pub(super) fn respond(
                index: &Index,
                request: pb::ServerReflectionRequest,
            ) -> pb::ServerReflectionResponse {
                let answer = index.answer(request.message_request.clone().map(ask));
                let message = match answer {
                    Ok(Answer::Services(names)) => {
                        MessageResponse::ListServicesResponse(pb::ListServiceResponse {
                            service: names
                                .into_iter()
                                .map(|name| pb::ServiceResponse { name })
                                .collect(),
                        })
                    }
                    Ok(Answer::Files(files)) => {
                        MessageResponse::FileDescriptorResponse(pb::FileDescriptorResponse {
                            file_descriptor_proto: files,
                        })
                    }
                    Ok(Answer::ExtensionNumbers {
                        base_type_name,
                        numbers,
                    }) => {
                        MessageResponse::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                            base_type_name,
                            extension_number: numbers,
                        })
                    }
                    Err(refusal) => MessageResponse::ErrorResponse(pb::ErrorResponse {
                        error_code: refusal.code.into(),
                        error_message: refusal.message,
                    }),
                };
                pb::ServerReflectionResponse {
                    valid_host: request.host.clone(),
                    original_request: Some(request),
                    message_response: Some(message),
                }
            }

            #[tonic::async_trait]
            impl ServerReflection for Reflection {
                type ServerReflectionInfoStream = Answers<pb::ServerReflectionResponse>;

                async fn server_reflection_info(
                    &self,
                    request: Request<Streaming<pb::ServerReflectionRequest>>,
                ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
                    let index = self.index.clone();
                    // An inbound error (a broken or undecodable request)
                    // passes through, and tonic ends the stream with it.
                    let answers = request
                        .into_inner()
                        .map(move |request| request.map(|r| respond(&index, r)));
                    Ok(Response::new(Box::pin(answers)))
                }
            }
        }
    };
}

reflection_version!(v1);
reflection_version!(v1alpha);

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorProto;

    use super::*;

    fn index() -> Arc<Index> {
        Reflection::new().unwrap().index
    }

    /// The files of an answer, decoded.
    fn files(answer: Result<Answer, Refusal>) -> Vec<FileDescriptorProto> {
        let Ok(Answer::Files(files)) = answer else {
            panic!("expected files, received {answer:?}");
        };
        files
            .iter()
            .map(|f| FileDescriptorProto::decode(f.as_slice()).unwrap())
            .collect()
    }

    fn symbol(index: &Index, name: &str) -> Vec<FileDescriptorProto> {
        files(index.answer(Some(Ask::FileContainingSymbol(name.into()))))
    }

    fn defines_service(file: &FileDescriptorProto, full_name: &str) -> bool {
        file.service
            .iter()
            .any(|s| format!("{}.{}", file.package(), s.name()) == full_name)
    }

    #[test]
    fn lists_every_service_served() {
        let Ok(Answer::Services(names)) = index().answer(Some(Ask::ListServices)) else {
            panic!("expected services");
        };
        for name in [
            "hopluu.v1.UnitService",
            "hopluu.v1.MemberService",
            "hopluu.v1.CampaignService",
            "hopluu.v1.EmulationService",
            "hopluu.v1.AwardService",
            "hopluu.v1.ReportService",
            "hopluu.v1.ReorgService",
            "hopluu.v1.NodeService",
            "hopluu.v1.AdminService",
            "hopluu.v1.ReplicationService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        assert_eq!(names.len(), 13, "{names:?}");
    }

    #[test]
    fn every_listed_service_resolves_to_its_file() {
        let index = index();
        let Ok(Answer::Services(names)) = index.answer(Some(Ask::ListServices)) else {
            panic!("expected services");
        };
        for name in names {
            let files = symbol(&index, &name);
            assert!(defines_service(&files[0], &name), "{name}");
        }
    }

    #[test]
    fn resolves_methods_messages_fields_nested_types_and_enums() {
        let index = index();
        let pool = &index.pool;
        let service = pool.get_service_by_name("hopluu.v1.MemberService").unwrap();
        let method = service.methods().next().unwrap();
        let input = method.input();
        let field = input.fields().next().unwrap();
        // hopluu's types are not nested; health's enum is.
        let enumeration = pool
            .all_enums()
            .find(|e| e.package_name() == "hopluu.v1")
            .unwrap();
        let value = enumeration.values().next().unwrap();
        for (name, file) in [
            (method.full_name(), service.parent_file()),
            (input.full_name(), input.parent_file()),
            (field.full_name(), input.parent_file()),
            (enumeration.full_name(), enumeration.parent_file()),
            (value.full_name(), enumeration.parent_file()),
        ] {
            assert_eq!(symbol(&index, name)[0].name(), file.name(), "{name}");
        }
        for nested in [
            "grpc.health.v1.HealthCheckResponse.ServingStatus",
            // An enum value is its enum's sibling.
            "grpc.health.v1.HealthCheckResponse.SERVING",
        ] {
            assert_eq!(symbol(&index, nested)[0].package(), "grpc.health.v1");
        }
    }

    #[test]
    fn a_file_comes_with_every_file_it_imports() {
        let index = index();
        let members =
            files(index.answer(Some(Ask::FileByFilename("hopluu/v1/members.proto".into()))));
        let names: Vec<&str> = members.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["hopluu/v1/members.proto", "hopluu/v1/common.proto"]);
        // The file found by a symbol comes with the same imports.
        assert_eq!(symbol(&index, "hopluu.v1.MemberService"), members);
    }

    /// A file of package `pkg` declaring the message `message`, importing
    /// `imports`.
    fn proto(name: &str, imports: &[&str], message: &str) -> FileDescriptorProto {
        FileDescriptorProto {
            name: Some(name.into()),
            package: Some("pkg".into()),
            dependency: imports.iter().map(|i| (*i).to_owned()).collect(),
            message_type: vec![prost_types::DescriptorProto {
                name: Some(message.into()),
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        }
    }

    #[test]
    fn imports_of_imports_come_too_each_once() {
        // a imports b and c, b imports c and d: a diamond and a second level.
        let set = prost_types::FileDescriptorSet {
            file: vec![
                proto("d.proto", &[], "D"),
                proto("c.proto", &[], "C"),
                proto("b.proto", &["c.proto", "d.proto"], "B"),
                proto("a.proto", &["b.proto", "c.proto"], "A"),
                proto("unrelated.proto", &[], "U"),
            ],
        };
        let index = Index::new(&[&set.encode_to_vec()]).unwrap();
        let names =
            |answer| -> Vec<String> { files(answer).iter().map(|f| f.name().to_owned()).collect() };
        let expected = ["a.proto", "b.proto", "c.proto", "d.proto"];
        assert_eq!(
            names(index.answer(Some(Ask::FileByFilename("a.proto".into())))),
            expected
        );
        assert_eq!(
            names(index.answer(Some(Ask::FileContainingSymbol("pkg.A".into())))),
            expected
        );
        assert_eq!(
            names(index.answer(Some(Ask::FileContainingSymbol("pkg.D".into())))),
            ["d.proto"]
        );
    }

    #[test]
    fn unknown_names_are_not_found() {
        let index = index();
        for ask in [
            Ask::FileContainingSymbol("hopluu.v1.NoSuchService".into()),
            Ask::FileContainingSymbol("hopluu.v1".into()),
            Ask::FileByFilename("hopluu/v1/nothing.proto".into()),
            Ask::FileContainingExtension {
                containing_type: "hopluu.v1.Unit".into(),
                number: 100,
            },
            Ask::AllExtensionNumbersOfType("hopluu.v1.NoSuchMessage".into()),
        ] {
            let refusal = index.answer(Some(ask.clone())).unwrap_err();
            assert_eq!(refusal.code, Code::NotFound, "{ask:?}");
        }
        let none = index.answer(None).unwrap_err();
        assert_eq!(none.code, Code::InvalidArgument);
    }

    #[test]
    fn a_message_without_extensions_has_no_extension_numbers() {
        let answer = index().answer(Some(Ask::AllExtensionNumbersOfType(
            "grpc.health.v1.HealthCheckRequest".into(),
        )));
        assert_eq!(
            answer,
            Ok(Answer::ExtensionNumbers {
                base_type_name: "grpc.health.v1.HealthCheckRequest".into(),
                numbers: vec![],
            })
        );
    }

    #[test]
    fn both_versions_echo_the_request_and_answer_errors_inside() {
        use tonic_reflection::pb::{v1 as one, v1alpha as alpha};

        let index = index();
        let request = alpha::ServerReflectionRequest {
            host: "node".into(),
            message_request: Some(
                alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "hopluu.v1.NoSuchService".into(),
                ),
            ),
        };
        let response = v1alpha::respond(&index, request.clone());
        assert_eq!(response.valid_host, "node");
        assert_eq!(response.original_request, Some(request));
        let Some(alpha::server_reflection_response::MessageResponse::ErrorResponse(error)) =
            response.message_response
        else {
            panic!("expected an error response");
        };
        assert_eq!(error.error_code, 5);

        let empty = one::ServerReflectionRequest {
            host: String::new(),
            message_request: None,
        };
        let Some(one::server_reflection_response::MessageResponse::ErrorResponse(error)) =
            v1::respond(&index, empty).message_response
        else {
            panic!("expected an error response");
        };
        assert_eq!(error.error_code, i32::from(Code::InvalidArgument));
    }
}
