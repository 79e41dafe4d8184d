//! The `ReplicationService`: each `Sync` stream handed to
//! [`Replication::accept`], and the convergence check's questions answered
//! through the App.

use std::sync::Arc;

use hopluu_proto::v1 as pb;
use tonic::{Request, Response, Status, Streaming};

use crate::NodeError;
use crate::convert::frames::*;
use crate::replication::{Replication, ReplicationStream};
use crate::tls::{Identity, TlsError};

/// The tonic service: hands each stream to [`Replication::accept`], and
/// answers the convergence check's questions through the App.
#[derive(Clone)]
pub struct ReplicationGrpc(pub Arc<Replication>);

fn caller_identity<T>(request: &Request<T>, rpc: &str) -> Result<Identity, Status> {
    Identity::of(request).map_err(|e| {
        if e == TlsError::Missing {
            tracing::debug!(rpc, remote = ?request.remote_addr(), "refused: no certificate");
        } else {
            tracing::warn!(rpc, remote = ?request.remote_addr(), error = %e, "refused: no identity");
        }
        Status::unauthenticated(format!("certificate: {e}"))
    })
}

#[tonic::async_trait]
impl pb::replication_service_server::ReplicationService for ReplicationGrpc {
    type SyncStream = ReplicationStream;

    async fn sync(
        &self,
        request: Request<Streaming<pb::SyncFrame>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let remote = request.remote_addr();
        let who = caller_identity(&request, "Sync")?;
        Ok(Response::new(self.0.accept(
            request.into_inner(),
            remote,
            who,
        )))
    }

    async fn scope_heads(
        &self,
        request: Request<pb::ScopeHeadsRequest>,
    ) -> Result<Response<pb::ScopeHeadsResponse>, Status> {
        let who = caller_identity(&request, "ScopeHeads")?;
        let r = request.into_inner();
        let caller = self
            .0
            .node_caller(&who, &r.node_id, &r.unit_id, "ScopeHeads")?;
        let after = match r.after.trim() {
            "" => None,
            a => Some(hopluu_model::DocId::parse("after", a).map_err(NodeError::from)?),
        };
        let app = self.0.app();
        let page = app.scope_heads(&caller, after.as_ref(), r.limit).await?;
        Ok(Response::new(pb::ScopeHeadsResponse {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            docs: page.docs.into_iter().map(scope_doc_to_pb).collect(),
            next_after: page.next_after.map(|d| d.to_string()).unwrap_or_default(),
        }))
    }

    async fn missing_changes(
        &self,
        request: Request<pb::MissingChangesRequest>,
    ) -> Result<Response<pb::MissingChangesResponse>, Status> {
        let who = caller_identity(&request, "MissingChanges")?;
        let r = request.into_inner();
        let caller = self
            .0
            .node_caller(&who, &r.node_id, &r.unit_id, "MissingChanges")?;
        let asks = r
            .docs
            .into_iter()
            .map(|d| scope_doc_from_pb("docs", d).map_err(NodeError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let missing = self.0.app().missing_changes(&caller, &asks).await?;
        Ok(Response::new(pb::MissingChangesResponse {
            docs: missing.into_iter().map(scope_doc_to_pb).collect(),
        }))
    }
}
