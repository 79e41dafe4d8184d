//! The asking side of the convergence check: a peer dialled as the dialer
//! dials an upstream, and its answers over gRPC ([`crate::check::PeerAnswers`]).

use std::time::Duration;

use hopluu_model::UnitId;
use hopluu_proto::v1 as pb;
use tonic::Status;

use crate::check::{self, CheckError, Comparison, PeerAnswers, PeerPage};
use crate::config::Upstream;
use crate::convert::frames::*;
use crate::tls::error_chain;

use super::*;

impl Replication {
    /// Checks this node against node `peer` (`AdminService.CheckPeer`):
    /// dials it at `address`, or at the address of the configured upstream
    /// of that id, with this node's own certificate (the dialer's
    /// endpoint: the peer must hold node `peer`'s certificate, whatever
    /// the address), and compares what it answers for itself with what is
    /// held here ([`App::check_peer`]).
    pub async fn check_peer(
        &self,
        peer: &str,
        address: Option<&str>,
    ) -> Result<Comparison, CheckError> {
        let invalid = |field: &str, reason: String| {
            CheckError::from(hopluu_model::ModelError::invalid(field, reason))
        };
        let peer = peer.trim();
        if peer.is_empty() {
            return Err(invalid(
                "peer_node_id",
                "is required: the node to check this one against".into(),
            ));
        }
        UnitId::parse("peer_node_id", peer)?;
        if peer == self.app.node_id {
            return Err(invalid(
                "peer_node_id",
                format!("{peer} is this node itself"),
            ));
        }
        let address = match address.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => a.to_owned(),
            None => match self.config.upstreams.iter().find(|u| u.node_id == peer) {
                Some(up) => up.address.clone(),
                None => {
                    let ups: Vec<&str> = self
                        .config
                        .upstreams
                        .iter()
                        .map(|u| u.node_id.as_str())
                        .collect();
                    return Err(invalid(
                        "peer_node_id",
                        format!(
                            "no such upstream: node {peer} is not among this node's upstreams ({}); \
                             give its address to check any other node (children dial their \
                             parent, which does not know their address)",
                            if ups.is_empty() {
                                "none".to_owned()
                            } else {
                                ups.join(", ")
                            }
                        ),
                    ));
                }
            },
        };
        let up = Upstream {
            node_id: peer.to_owned(),
            address: address.clone(),
        };
        let endpoint = self
            .endpoint(&up)
            .map_err(|e| invalid("address", e))?
            .connect_timeout(Duration::from_secs(10))
            .timeout(CHECK_CALL_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|e| {
            CheckError::Unreachable(format!(
                "peer_node_id: cannot reach node {peer} at {address}: {}",
                error_chain(&e)
            ))
        })?;
        let max = self.app_max_message_bytes();
        let mut answers = GrpcPeer {
            client: pb::replication_service_client::ReplicationServiceClient::new(channel)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            node_id: self.app.node_id.clone(),
            unit: self.app.unit.to_string(),
            peer: peer.to_owned(),
            address,
        };
        self.app.check_peer(peer, &mut answers).await
    }
}

/// The peer of a check, over its `ReplicationService`.
struct GrpcPeer {
    client: pb::replication_service_client::ReplicationServiceClient<tonic::transport::Channel>,
    /// This node and its unit, as the requests name them.
    node_id: String,
    unit: String,
    /// The peer and where it was dialled, for messages.
    peer: String,
    address: String,
}

impl GrpcPeer {
    /// What a failed call means for the check.
    fn failed(&self, rpc: &str, s: &Status) -> CheckError {
        let (peer, address, message) = (&self.peer, &self.address, s.message());
        match s.code() {
            tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::Unknown => CheckError::Unreachable(format!(
                "peer_node_id: node {peer} at {address} did not answer {rpc}: {message}"
            )),
            tonic::Code::Unimplemented => CheckError::Refused(format!(
                "node {peer} does not answer {rpc}: it runs a version of hopluu without the \
                 convergence check"
            )),
            code => CheckError::Refused(format!("node {peer} refused {rpc} ({code:?}): {message}")),
        }
    }

    /// What the peer said, when it does not parse.
    fn garbled(&self, e: hopluu_model::ModelError) -> CheckError {
        CheckError::Refused(format!(
            "node {} answered what is not a list of documents: {e}",
            self.peer
        ))
    }
}

impl PeerAnswers for GrpcPeer {
    async fn scope_heads(
        &mut self,
        after: Option<&hopluu_model::DocId>,
    ) -> Result<PeerPage, CheckError> {
        let request = pb::ScopeHeadsRequest {
            node_id: self.node_id.clone(),
            unit_id: self.unit.clone(),
            after: after.map(ToString::to_string).unwrap_or_default(),
            limit: 0,
        };
        let r = match self.client.scope_heads(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(self.failed("ScopeHeads", &s)),
        };
        let docs = r
            .docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbled(e))?;
        let next_after = match r.next_after.as_str() {
            "" => None,
            n => Some(hopluu_model::DocId::parse("next_after", n).map_err(|e| self.garbled(e))?),
        };
        Ok(PeerPage {
            node_id: r.node_id,
            unit: r.unit_id,
            docs,
            next_after,
        })
    }

    async fn missing_changes(
        &mut self,
        asks: Vec<check::Heads>,
    ) -> Result<Vec<check::Heads>, CheckError> {
        let request = pb::MissingChangesRequest {
            node_id: self.node_id.clone(),
            unit_id: self.unit.clone(),
            docs: asks.into_iter().map(scope_doc_to_pb).collect(),
        };
        let r = match self.client.missing_changes(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(self.failed("MissingChanges", &s)),
        };
        r.docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.garbled(e))
    }
}
