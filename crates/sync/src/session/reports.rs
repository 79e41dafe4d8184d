//! The administrators' frames on a session: a child's edge reports to its
//! parent, and a parent's delivery receipts to its child.

use hopluu_model::{DocId, UnitId};
use hopluu_store::receipts::NewReceipt;

use super::{MAX_REPORTED_EDGES, RECEIPTS_PER_FRAME, Role, Session, refuse};
use crate::SyncError;
use crate::frame::{EdgeReport, Frame, Receipt, Receipts};

impl Session {
    /// A child's report of its edges (and those of the nodes below it):
    /// entries from outside its subtree are dropped.
    pub(super) fn on_report(&mut self, edges: Vec<EdgeReport>) -> Result<(), SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Err(refuse("protocol", "expected a hello, received a report"));
        };
        if !matches!(self.role, Role::Acceptor) {
            return Err(refuse(
                "protocol",
                "expected no report from the upstream (reports go from child to parent), received one",
            ));
        }
        if edges.len() > MAX_REPORTED_EDGES {
            return Err(refuse(
                "limit",
                format!(
                    "report of {} edges, over the limit of {MAX_REPORTED_EDGES}",
                    edges.len()
                ),
            ));
        }
        let Some(reports) = &self.reports else {
            return Ok(());
        };
        let tree = self.replica.store.tree();
        let total = edges.len();
        let edges: Vec<EdgeReport> = edges
            .into_iter()
            .filter(|e| {
                UnitId::parse("reporter_unit", &e.reporter_unit)
                    .is_ok_and(|u| tree.is_within(&u, &peer.unit))
            })
            .collect();
        if edges.len() < total {
            tracing::warn!(
                peer = %peer.node_id,
                dropped = total - edges.len(),
                "report entries from outside the child's subtree dropped"
            );
        }
        reports.reported(&peer, edges);
        Ok(())
    }

    /// Delivery receipts from the parent: stored with the parent's cursor,
    /// in one transaction.
    pub(super) async fn on_receipts(&mut self, r: Receipts) -> Result<(), SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Err(refuse("protocol", "expected a hello, received receipts"));
        };
        if !matches!(self.role, Role::Dialer { .. }) {
            return Err(refuse(
                "protocol",
                "expected no receipts from a child (receipts go from parent to child), received some",
            ));
        }
        if r.receipts.len() > 10 * RECEIPTS_PER_FRAME as usize {
            return Err(refuse(
                "limit",
                format!("{} receipts in one frame", r.receipts.len()),
            ));
        }
        let rows: Vec<NewReceipt> = r
            .receipts
            .into_iter()
            .filter(|x| DocId::parse("doc_id", &x.doc).is_ok() && !x.node_id.is_empty())
            .map(|x| NewReceipt {
                doc: x.doc,
                node_id: x.node_id,
                unit: x.unit,
                heads: x.heads,
                at: x.at,
            })
            .collect();
        let mut tx = self.replica.store.begin().await?;
        tx.add_receipts(&rows).await?;
        tx.set_receipt_cursor(&peer.node_id, r.upto.max(0)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// As a child with edge reports: the report to send the parent now.
    pub fn report(&self) -> Option<Frame> {
        if !matches!(self.role, Role::Dialer { .. }) || self.peer.is_none() {
            return None;
        }
        let reports = self.reports.as_ref()?;
        let mut edges = reports.report();
        edges.truncate(MAX_REPORTED_EDGES);
        Some(Frame::Report(edges))
    }

    /// As a parent: the delivery receipts of the child's subtree stored
    /// here since the last ones sent, if any.
    pub async fn next_receipts(&mut self) -> Result<Option<Frame>, SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Ok(None);
        };
        if !matches!(self.role, Role::Acceptor) {
            return Ok(None);
        }
        let rows = self
            .replica
            .store
            .receipts_after(self.receipts_sent, RECEIPTS_PER_FRAME)
            .await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok(None);
        };
        self.receipts_sent = last;
        let tree = self.replica.store.tree();
        let receipts: Vec<Receipt> = rows
            .into_iter()
            .filter(|r| {
                r.node_id != peer.node_id
                    && r.owner
                        .as_deref()
                        .and_then(|o| UnitId::parse("owner", o).ok())
                        .is_some_and(|o| tree.is_within(&o, &peer.unit))
            })
            .map(|r| Receipt {
                doc: r.doc,
                node_id: r.node_id,
                unit: r.unit,
                heads: r.heads,
                at: r.at,
            })
            .collect();
        Ok(Some(Frame::Receipts(Receipts {
            upto: last,
            receipts,
        })))
    }
}
