//! The `NodeService`: who this node is, for peers and monitors.

use hopluu_proto::v1 as pb;
use tonic::{Request, Response};

use super::{R, Services, auth};

#[tonic::async_trait]
impl pb::node_service_server::NodeService for Services {
    async fn get_node_info(&self, req: Request<pb::GetNodeInfoRequest>) -> R<pb::NodeInfo> {
        // Any certificate: peers and monitors check a node's id and version.
        auth::anyone(req, "GetNodeInfo")?;
        let app = &self.app;
        let summary = app.summary().await?;
        Ok(Response::new(pb::NodeInfo {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            unit_name: app.unit_name(),
            database: summary.database.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            feed_position: summary.feed_position,
            documents: summary.documents,
            uptime_seconds: app.uptime_seconds(),
        }))
    }
}
