//! What each side of a session holds in quarantine of the other's
//! changes. A held change was sent but not delivered: the sender must
//! not count it as delivered (its acknowledgement moved the checkpoint
//! past it, and the ack named it as known so that it is not sent again),
//! so the receiver tells, in every ack, how many of the sender's changes
//! it holds, in how many documents, and since when. When that changes
//! between batches (an administrator released or discarded some, or a
//! change arrived by another path), the receiver sends an ack of batch 0
//! that acknowledges nothing and carries only the figures: a notice. A
//! peer that does not know the figures reads a notice as a stale ack and
//! ignores it.

use hopluu_store::quarantine::HeldFrom;

use super::Session;
use crate::SyncError;
use crate::frame::{Ack, Frame, HeldChanges};

impl Session {
    /// What this node holds of the peer's changes now, noted as told.
    pub(super) async fn held_now(&mut self) -> Result<HeldChanges, SyncError> {
        let Some(peer) = &self.peer else {
            return Ok(HeldChanges::default());
        };
        // Read before the quarantine: a commit after it moves the
        // generation again, and the next look sees it.
        let generation = self.replica.store.quarantine_generation();
        let HeldFrom {
            changes,
            docs,
            oldest_millis,
        } = self.replica.store.held_from(&peer.node_id).await?;
        let held = HeldChanges {
            changes,
            docs,
            oldest_millis,
        };
        self.told_held = Some(held);
        self.told_generation = Some(generation);
        Ok(held)
    }

    /// A notice for the peer when what this node holds of its changes
    /// differs from what it last told (looked up only when the
    /// quarantine was written since): called as often as the session
    /// flushes. At the start of a session the peer counts nothing held,
    /// so a notice goes only if something is.
    pub async fn next_notice(&mut self) -> Result<Option<Frame>, SyncError> {
        if self.peer.is_none()
            || self.told_generation == Some(self.replica.store.quarantine_generation())
        {
            return Ok(None);
        }
        let before = self.told_held;
        let held = self.held_now().await?;
        if before.unwrap_or_default() == held {
            return Ok(None);
        }
        Ok(Some(Frame::Ack(Ack {
            batch: 0,
            applied_upto: self.applied,
            docs: Vec::new(),
            at: 0,
            held,
        })))
    }
}
