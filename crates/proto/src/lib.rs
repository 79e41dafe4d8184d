//! The wire format of hopluu: protobuf messages and tonic gRPC services for
//! the `hopluu.v1` API (units, members, campaigns, emulation, awards,
//! reports and node information).
//!
//! This crate owns the wire format and nothing else. Protobuf types never
//! leak into the signatures of `hopluu-model` or `hopluu-store`; conversions
//! between these messages and the domain types happen at the node boundary.
//!
//! The code is generated at build time from `proto/hopluu/v1/*.proto` with
//! `protox` (no system `protoc` needed) and `tonic-prost-build`. Each service
//! has a server trait, e.g. [`v1::unit_service_server::UnitService`], and a
//! client, e.g. [`v1::unit_service_client::UnitServiceClient`].

/// Generated messages, enums, clients and servers of package `hopluu.v1`.
// Generated code: not ours to lint; it is clean today but may not stay so
// across clippy releases.
#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("hopluu.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every hopluu proto
/// file (with source info), for `tonic-reflection`'s
/// `register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hopluu_descriptor.bin"));
