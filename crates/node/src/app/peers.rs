//! The convergence check, both sides ([`crate::check`]).

use hopluu_model::{DocId, UnitId};

use crate::check;

use super::{App, Result};

impl App {
    /// Unit names for report rows.
    /// `ReplicationService.ScopeHeads`: the documents held here in the
    /// scope of a node hosting `caller` (judged on this node's tree and
    /// private_depth, so a private roster is listed only to a node that
    /// may hold it), with their heads, a page after `after`.
    pub async fn scope_heads(
        &self,
        caller: &UnitId,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<check::ScopePage> {
        Ok(check::scope_page(&self.store, caller, self.private_depth, after, limit).await?)
    }

    /// `ReplicationService.MissingChanges`: of the changes a node hosting
    /// `caller` names, those not held here, for the documents in its
    /// scope.
    pub async fn missing_changes(
        &self,
        caller: &UnitId,
        asks: &[check::Heads],
    ) -> Result<Vec<check::Heads>> {
        Ok(check::missing_changes(&self.store, caller, self.private_depth, asks).await?)
    }

    /// `AdminService.CheckPeer`: this node's heads of every document in
    /// the scope of node `peer_node` against what that node answers for
    /// itself through `peer` ([`check::walk`]).
    pub async fn check_peer<P: check::PeerAnswers>(
        &self,
        peer_node: &str,
        peer: &mut P,
    ) -> Result<check::Comparison, check::CheckError> {
        check::walk(&self.store, self.private_depth, peer_node, peer).await
    }
}
