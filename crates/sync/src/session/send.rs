//! The sending side of a session: the next batch from replies, retries
//! and the feed, the peer's acknowledgements, rewinds after a loss, and
//! the peer state written back to the store.

use std::collections::HashSet;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash};
use hopluu_model::{DocId, DocKind};
use hopluu_store::peer::PeerDoc;
use hopluu_store::receipts::NewReceipt;

use super::{InFlight, MAX_RETRIES, PeerInfo, Role, Session, payload_len};
use crate::SyncError;
use crate::frame::{Ack, Batch, DocUpdate, Frame, Payload};

impl Session {
    /// Back to the last acknowledged sequence: batches in flight are
    /// presumed lost. Called when an acknowledgement is overdue.
    pub fn on_timeout(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        self.rewind(self.acked);
    }

    fn rewind(&mut self, to: i64) {
        self.stats.rewinds += 1;
        tracing::debug!(node = %self.replica.node_id, from = self.cursor, to, "rewinding");
        self.cursor = to;
        self.announced = to;
        self.in_flight.clear();
        self.stale_before = self.next_id;
        self.sent.clear();
        self.forget_sync_in_flight();
    }

    /// Sync messages in flight are presumed lost too: a sync state that
    /// still waits for their answer would generate nothing more, and the
    /// documents it is finding would never be sent again.
    pub(super) fn forget_sync_in_flight(&mut self) {
        for state in self.sync_states.values_mut() {
            *state = sync::State::decode(&state.encode()).unwrap_or_default();
        }
    }

    pub(super) fn on_ack(&mut self, a: Ack) {
        if a.batch >= self.next_id {
            tracing::warn!(batch = a.batch, "ack of a batch never sent; ignored");
            return;
        }
        self.acked = self.acked.max(a.applied_upto);
        if a.batch > 0 {
            self.stats.batches_acked += 1;
        }
        // Every ack (a notice too) tells what the peer holds now.
        self.stats.held_by_peer = a.held;
        let receipts_from = match (&self.role, &self.peer) {
            (Role::Dialer { .. }, Some(p)) if a.at > 0 => Some(p.clone()),
            _ => None,
        };
        for d in a.docs {
            let Ok(id) = DocId::parse("doc_id", &d.doc) else {
                continue;
            };
            if let Some(p) = &receipts_from
                && d.rejected.is_empty()
                && !d.heads.is_empty()
            {
                // The parent holds these heads of the document since `at`.
                self.receipts_pending.push(NewReceipt {
                    doc: d.doc.clone(),
                    node_id: p.node_id.clone(),
                    unit: p.unit.to_string(),
                    heads: d.heads.clone(),
                    at: a.at,
                });
            }
            // Changes the peer quarantined count as known there: they are
            // not sent again, and what follows them is sent after them.
            let mut heads = d.heads;
            if d.quarantined.is_empty() {
                self.held_there.remove(&id);
            } else {
                self.held_there.insert(id.clone(), d.quarantined.clone());
            }
            heads.extend(d.quarantined);
            if !d.rejected.is_empty() {
                if id.kind() == DocKind::RosterPrivate && d.rejected.starts_with("private-data:") {
                    self.refused_private.insert(id.clone());
                }
                self.stats.docs_rejected += 1;
                let n = self.retries.entry(id.clone()).or_insert(0);
                *n += 1;
                tracing::warn!(doc = %id, reason = %d.rejected, attempt = *n, "peer did not apply an update");
                self.sent.remove(&id);
                self.acked_heads.insert(id.clone(), heads);
                if *n <= MAX_RETRIES {
                    self.resend.insert(id);
                }
                continue;
            }
            self.retries.remove(&id);
            if id.kind() == DocKind::Unit && !self.refused_private.is_empty() {
                // The peer took a unit record: it may place what it refused.
                for p in std::mem::take(&mut self.refused_private) {
                    self.retries.remove(&p);
                    self.resend.insert(p);
                }
            }
            if self.sent.get(&id).is_some_and(|(b, _)| *b == a.batch) {
                self.sent.remove(&id);
            }
            if self.sync_states.contains_key(&id) {
                // The peer's heads are learnt: send what it lacks.
                self.resend.insert(id.clone());
            }
            self.dirty.insert(id.clone(), heads.clone());
            self.acked_heads.insert(id, heads);
        }
        if a.batch < self.stale_before {
            return;
        }
        while self.in_flight.front().is_some_and(|f| f.id <= a.batch) {
            let f = self.in_flight.pop_front().expect("checked");
            if f.id < a.batch {
                self.lost(f.id);
            }
            if f.id == a.batch && f.upto > 0 && a.applied_upto < f.upto {
                // The peer applied this batch but not one before it: one was
                // lost on the way. Go back to what it has.
                self.rewind(a.applied_upto);
                return;
            }
        }
    }

    /// A batch whose acknowledgement never came while a later one's did:
    /// it was lost. Its documents are sent again (the feed's are found
    /// again by the rewind the later acknowledgement triggers, but replies
    /// and retries are not in the feed), and the heads it carried are no
    /// longer expected at the peer.
    fn lost(&mut self, batch: u64) {
        let docs: Vec<DocId> = self
            .sent
            .iter()
            .filter(|(_, (b, _))| *b == batch)
            .map(|(d, _)| d.clone())
            .collect();
        for d in docs {
            self.sent.remove(&d);
            self.resend.insert(d);
        }
        self.forget_sync_in_flight();
    }

    /// The decisions and node records further on in the feed that the
    /// peer is not known to have as they stand: sent ahead of the rest.
    /// They let the peer judge the rest (a decision's seals, an old host's
    /// seals, where each node sits), so waiting in the feed behind what
    /// they would release, they could wait for ever: an old host's changes
    /// held until its seal comes; private rosters refused until the unit
    /// they belong to is placed, its record waiting for the decision.
    async fn control_updates(
        &mut self,
        peer: &PeerInfo,
        depth: Option<usize>,
        batch: u64,
    ) -> Result<Vec<DocUpdate>, SyncError> {
        let control = self.replica.store.control_seq();
        if control <= self.cursor || control == self.control_seen {
            return Ok(Vec::new());
        }
        let found = self.replica.store.feed_control_after(self.cursor).await?;
        let wanted: Vec<(DocId, Vec<ChangeHash>)> = {
            let tree = self.replica.store.tree();
            found
                .into_iter()
                .filter(|f| match depth {
                    Some(d) => tree.in_scope_at(&peer.unit, d, &f.meta, self.replica.private_depth),
                    None => tree.in_scope(&peer.unit, &f.meta, self.replica.private_depth),
                })
                .map(|f| (f.meta.id, f.heads))
                .collect()
        };
        let ids: Vec<DocId> = wanted.iter().map(|(d, _)| d.clone()).collect();
        self.load_known(&peer.node_id, &ids).await?;
        let mut out = Vec::new();
        for (id, heads) in wanted {
            if self.known(&id) == Some(&heads) || self.sync_states.contains_key(&id) {
                continue;
            }
            if let Some(u) = self.update_for(&id, batch).await? {
                out.push(u);
            }
            if out.len() >= self.replica.limits.batch_docs {
                return Ok(out);
            }
        }
        if out.is_empty() {
            self.control_seen = control;
        }
        Ok(out)
    }

    /// In a handover session to a new host whose unit is not placed in
    /// this node's tree (not rooted here), the depth its node record gives
    /// (its path; 0 while none is known, so no private roster goes to it
    /// before its depth is). None otherwise: the tree says.
    async fn handover_depth(&self, peer: &PeerInfo) -> Result<Option<usize>, SyncError> {
        if !matches!(self.role, Role::HandoverTo { .. })
            || self.replica.store.tree().is_rooted(&peer.unit)
        {
            return Ok(None);
        }
        let Ok(node) = hopluu_model::NodeId::parse("node", &peer.node_id) else {
            return Ok(Some(0));
        };
        let record = crate::handover::node_record(&self.replica.store, &node).await?;
        Ok(Some(
            record
                .filter(|r| r.info.unit == peer.unit)
                .map_or(0, |r| r.info.path.len()),
        ))
    }

    /// Whether the peer is known, from its acknowledgements, to have
    /// every change of `id` up to `heads`, applied or held in quarantine.
    /// A held change is not in the peer's heads, and the sync protocol
    /// does not send a change twice in a session: without counting what
    /// the peer holds, a document with a held change would look forever
    /// unanswered, and the stretch of the feed would stop before it for
    /// good (with what would release the change, an old host's seal,
    /// behind it).
    async fn peer_has(&self, id: &DocId, heads: &[ChangeHash]) -> Result<bool, SyncError> {
        let Some(acked) = self.acked_heads.get(id) else {
            return Ok(false);
        };
        let mut acked = acked.clone();
        acked.extend(self.held_there.get(id).into_iter().flatten().copied());
        if heads.iter().all(|h| acked.contains(h)) {
            return Ok(true);
        }
        Ok(self
            .replica
            .store
            .read_doc(id, move |d| {
                let here: Vec<ChangeHash> = acked
                    .iter()
                    .filter(|h| hopluu_model::am::knows(d, h))
                    .copied()
                    .collect();
                !here.is_empty() && d.get_changes(&here).is_empty()
            })
            .await?
            .unwrap_or(false))
    }

    /// The heads the peer has, or will have once what is in flight lands.
    fn known(&self, id: &DocId) -> Option<&Vec<ChangeHash>> {
        self.sent
            .get(id)
            .map(|(_, h)| h)
            .or_else(|| self.acked_heads.get(id))
    }

    /// The next batch to send, if the window allows and there is anything:
    /// replies and retries first, then the feed.
    pub async fn next_batch(&mut self) -> Result<Option<Frame>, SyncError> {
        let Some(peer) = self.peer.clone() else {
            return Ok(None);
        };
        if self.in_flight.len() >= self.replica.limits.in_flight {
            return Ok(None);
        }
        // Answers to the peer's own sync messages first, whatever this node
        // knows of the peer's place (an old host handing over, from a
        // subtree the new host does not hold, waits for them); but never
        // twice running while the rest waits: an exchange that cannot end
        // (each side holds changes of the other's in quarantine, until a
        // seal behind in the feed comes) must not starve the feed.
        if self.answered_last {
            self.answered_last = false;
            if let Some(frame) = self.next_not_answer(&peer).await? {
                return Ok(Some(frame));
            }
        }
        let limits = self.replica.limits.clone();
        let mut docs = Vec::new();
        let mut bytes = 0usize;
        let id = self.next_id;
        while let Some(u) = self.sync_out.pop_front() {
            bytes += u.doc.len() + payload_len(&u.payload);
            docs.push(u);
            if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                break;
            }
        }
        if !docs.is_empty() {
            self.answered_last = true;
            return Ok(Some(self.emit(id, 0, 0, docs, bytes)));
        }
        self.next_not_answer(&peer).await
    }

    /// The next batch that is not an answer to the peer's sync messages:
    /// decisions and node records ahead, retries, then the feed.
    async fn next_not_answer(&mut self, peer: &PeerInfo) -> Result<Option<Frame>, SyncError> {
        let peer = peer.clone();
        let limits = self.replica.limits.clone();
        let mut docs = Vec::new();
        let mut bytes = 0usize;
        let id = self.next_id;
        // Scope is decided on the tree: until the peer's unit is known here
        // (its record arrives with the first sync), nothing else is sent.
        // A handover's new host may sit in a subtree this node does not
        // hold: its node record says how deep.
        let handover_depth = self.handover_depth(&peer).await?;
        if handover_depth.is_none() && !self.replica.store.tree().contains(&peer.unit) {
            return Ok(None);
        }
        if !self.resend.is_empty() {
            let ids: Vec<DocId> = std::mem::take(&mut self.resend).into_iter().collect();
            self.load_known(&peer.node_id, &ids).await?;
            let mut rest = ids.into_iter();
            for d in rest.by_ref() {
                if let Some(u) = self.update_for(&d, id).await? {
                    bytes += u.doc.len() + payload_len(&u.payload);
                    docs.push(u);
                }
                if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                    break;
                }
            }
            self.resend.extend(rest);
            if !docs.is_empty() {
                return Ok(Some(self.emit(id, 0, 0, docs, bytes)));
            }
        }
        let control = self.control_updates(&peer, handover_depth, id).await?;
        if !control.is_empty() {
            let bytes = control
                .iter()
                .map(|u| u.doc.len() + payload_len(&u.payload))
                .sum();
            return Ok(Some(self.emit(id, 0, 0, control, bytes)));
        }
        let position = *self.replica.store.watch_feed().borrow();
        if position <= self.cursor {
            return Ok(None);
        }
        let mut upto = self.cursor;
        // Scan until the batch is full or the feed is exhausted; skipped
        // (out of scope, already known) documents cost no bytes.
        loop {
            let scan = self.replica.store.scan_feed(upto, limits.scan).await?;
            if scan.upto <= upto {
                break;
            }
            let (mut wanted, departed): (HashSet<i64>, HashSet<i64>) = {
                let tree = self.replica.store.tree();
                let (inside, outside): (Vec<_>, Vec<_>) =
                    scan.docs.iter().partition(|f| match handover_depth {
                        Some(depth) => {
                            tree.in_scope_at(&peer.unit, depth, &f.meta, self.replica.private_depth)
                        }
                        None => tree.in_scope(&peer.unit, &f.meta, self.replica.private_depth),
                    });
                (
                    inside.iter().map(|f| f.seq).collect(),
                    outside
                        .iter()
                        .filter(|f| f.meta.id.kind() == DocKind::Unit)
                        .map(|f| f.seq)
                        .collect(),
                )
            };
            let ids: Vec<DocId> = scan
                .docs
                .iter()
                .filter(|f| wanted.contains(&f.seq) || departed.contains(&f.seq))
                .map(|f| f.meta.id.clone())
                .collect();
            self.load_known(&peer.node_id, &ids).await?;
            // A unit record that left the peer's scope (the unit moved out
            // of its subtree) is still sent when the peer is known to hold
            // it: the peer learns the unit is no longer its to write for,
            // rather than keep writing what its upstream will refuse.
            wanted.extend(
                scan.docs
                    .iter()
                    .filter(|f| departed.contains(&f.seq) && self.known(&f.meta.id).is_some())
                    .map(|f| f.seq),
            );
            let mut full = false;
            let mut last_seq = scan.upto;
            for f in &scan.docs {
                if docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                    full = true;
                    last_seq = f.seq - 1;
                    break;
                }
                if !wanted.contains(&f.seq) {
                    continue;
                }
                if self.known(&f.meta.id) == Some(&f.heads) {
                    if self.acked_heads.get(&f.meta.id) == Some(&f.heads) {
                        continue;
                    }
                    // These heads are in flight in another batch (a reply or
                    // a retry) and not acknowledged yet. Were that batch lost,
                    // a checkpoint past this document would skip it for good
                    // (the next session resumes after the checkpoint): the
                    // stretch stops before it until the acknowledgement comes
                    // (or a timeout rewinds).
                    full = true;
                    last_seq = f.seq - 1;
                    break;
                }
                match self.update_for(&f.meta.id, id).await? {
                    Some(u) => {
                        bytes += u.doc.len() + payload_len(&u.payload);
                        docs.push(u);
                    }
                    // The sync protocol has nothing to say until the peer
                    // answers its last message, and the peer is not known to
                    // have these heads: as above, the stretch stops before
                    // the document.
                    None if self.sync_states.contains_key(&f.meta.id)
                        && !self.peer_has(&f.meta.id, &f.heads).await? =>
                    {
                        full = true;
                        last_seq = f.seq - 1;
                        break;
                    }
                    None => {}
                }
            }
            upto = last_seq;
            if full || docs.len() >= limits.batch_docs || bytes >= limits.batch_bytes {
                break;
            }
            if scan.docs.len() < limits.scan as usize {
                break;
            }
        }
        self.cursor = upto;
        let from = self.announced;
        // Nothing for the peer: move on silently, and tell it only once the
        // skipped stretch is long, so a busy feed of other units' documents
        // does not cost this link a transaction per write.
        // A stretch sent before a rewind is told again, though: the peer did
        // not take it (a batch was lost, or an update in it was incomplete),
        // and without it the peer's checkpoint would stay behind for good.
        if docs.is_empty() && upto - from < i64::from(limits.scan) * 4 && from >= self.told {
            return Ok(None);
        }
        if upto <= from {
            return Ok(None);
        }
        self.announced = upto;
        Ok(Some(self.emit(id, from, upto, docs, bytes)))
    }

    /// Whether the peer is due this side's position: nothing is in flight,
    /// and the feed was read past the last stretch told to the peer (what
    /// lay there was nothing for it), or nothing was told yet in this
    /// session.
    pub fn position_untold(&self) -> bool {
        self.peer.is_some()
            && self.in_flight.is_empty()
            && (self.cursor > self.announced || !self.position_told)
    }

    /// An empty batch covering the stretch of the feed read since the last
    /// one told, for a quiet session ([`crate::drive`] asks for it once
    /// nothing was sent for a moment): the peer's acknowledgement moves
    /// its checkpoint to the feed position, so the edge shows no lag
    /// where nothing is owed. The stretch held nothing for the peer, so
    /// acknowledging it skips nothing (what waits for an answer stopped
    /// the stretch before it). None when [`Session::position_untold`] is
    /// not.
    pub fn next_position(&mut self) -> Option<Frame> {
        if !self.position_untold() {
            return None;
        }
        let (from, upto) = (self.announced, self.cursor);
        self.announced = upto;
        self.position_told = true;
        Some(self.emit(self.next_id, from, upto, Vec::new(), 0))
    }

    fn emit(&mut self, id: u64, from: i64, upto: i64, docs: Vec<DocUpdate>, bytes: usize) -> Frame {
        self.next_id += 1;
        self.told = self.told.max(upto);
        self.in_flight.push_back(InFlight { id, upto });
        self.stats.in_flight = self.in_flight.len() as u64;
        self.stats.batches_sent += 1;
        self.stats.docs_sent += docs.len() as u64;
        self.stats.bytes_sent += bytes as u64;
        Frame::Batch(Batch {
            id,
            from_seq: from,
            upto_seq: upto,
            docs,
        })
    }

    /// Fills in what the store knows of the peer's heads for `ids`.
    async fn load_known(&mut self, peer: &str, ids: &[DocId]) -> Result<(), SyncError> {
        let missing: Vec<DocId> = ids
            .iter()
            .filter(|d| self.known(d).is_none() && !self.sync_states.contains_key(*d))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let stored = self.replica.store.peer_docs(peer, &missing).await?;
        for (id, PeerDoc { heads, sync }) in stored {
            match sync {
                // A sync state is decoded fresh for every session: its
                // in-flight part must not survive a reconnect (automerge
                // #1284 describes the loop it causes otherwise).
                Some(bytes) => {
                    let state = sync::State::decode(&bytes).unwrap_or_default();
                    self.sync_states.insert(id.clone(), state);
                    self.acked_heads.insert(id, heads);
                }
                None => {
                    self.acked_heads.insert(id, heads);
                }
            }
        }
        Ok(())
    }

    /// The update that brings the peer up to date with `id`, or None if it
    /// has everything: changes after the heads it is known to have, or, while
    /// those are unknown (or include changes this node lacks), an automerge
    /// sync message.
    async fn update_for(&mut self, id: &DocId, batch: u64) -> Result<Option<DocUpdate>, SyncError> {
        let known = self.known(id).cloned();
        let mut state = self.sync_states.remove(id);
        // A private roster this node holds but does not take in (its unit
        // left this node's subtree for one this node cannot place: an old
        // host's archive) goes one way: the peer's answers to a sync
        // message would be refused here, and the exchange would wait for
        // them for ever.
        // So does everything a handover session sends: the new host need
        // not answer an old host at all (it may not even place it).
        let one_way = matches!(self.role, Role::HandoverTo { .. })
            || crate::gate::private_allowed(
                &self.replica.store.tree(),
                &self.replica.unit,
                id,
                self.replica.private_depth,
            ) != Some(true);
        let built = self
            .replica
            .store
            .read_doc(id, |doc| {
                if one_way {
                    (plain_after_known_part(doc, known.as_deref()), true)
                } else {
                    build_update(doc, known.as_deref(), &mut state)
                }
            })
            .await?;
        let Some((update, plain)) = built else {
            // Not stored here (any more): nothing to send.
            return Ok(None);
        };
        if !plain && let Some(state) = state {
            self.sync_states.insert(id.clone(), state);
        }
        let Some((heads, payload)) = update else {
            return Ok(None);
        };
        if let Payload::Changes(_) = payload {
            self.sent.insert(id.clone(), (batch, heads.clone()));
        }
        Ok(Some(DocUpdate {
            doc: id.to_string(),
            heads,
            payload,
        }))
    }

    /// Writes what the peer acknowledged since the last write into `tx`.
    pub(super) fn flush_into(&mut self, tx: &mut hopluu_store::WriteTx<'_>) {
        let Some(peer) = &self.peer else { return };
        for (id, heads) in self.dirty.drain() {
            tx.set_peer_heads(&peer.node_id, &id, &heads, None);
        }
        tx.set_peer_acked(&peer.node_id, &peer.unit, self.acked);
        self.flushed_acked = self.acked;
    }

    /// Writes what the peer has acknowledged (its heads per document, its
    /// checkpoint) to the store. Cheap to call often: it writes only when
    /// something changed since the last call (a checkpoint moved by an
    /// acknowledgement of documents-free batches too).
    pub async fn flush(&mut self) -> Result<(), SyncError> {
        if self.peer.is_none()
            || (self.dirty.is_empty()
                && self.receipts_pending.is_empty()
                && self.acked == self.flushed_acked)
        {
            return Ok(());
        }
        let store = self.replica.store.clone();
        let mut tx = store.begin().await?;
        self.flush_into(&mut tx);
        tx.add_receipts(&self.receipts_pending).await?;
        tx.commit().await?;
        self.receipts_pending.clear();
        Ok(())
    }
}

/// Plain changes after the part of `known` this document holds (all of
/// it when the peer's heads are unknown), for a document whose sync
/// exchange cannot be finished: the peer may be sent changes it has
/// (merging them again is harmless), never denied one it lacks.
fn plain_after_known_part(
    doc: &Automerge,
    known: Option<&[ChangeHash]>,
) -> Option<(Vec<ChangeHash>, Payload)> {
    let heads = doc.get_heads();
    let here: Vec<ChangeHash> = known
        .unwrap_or_default()
        .iter()
        .filter(|h| hopluu_model::am::knows(doc, h))
        .copied()
        .collect();
    if here == heads {
        return None;
    }
    let data = if here.is_empty() {
        doc.save()
    } else {
        doc.save_after(&here)
    };
    (!data.is_empty()).then_some((heads, Payload::Changes(data)))
}

/// The update that brings a peer with `known` heads up to date: plain
/// changes when every known head is in this document (`.1` true: the sync
/// state is done with), otherwise an automerge sync message from `state`.
/// `.0` is None when the peer needs nothing.
#[allow(clippy::type_complexity)]
fn build_update(
    doc: &Automerge,
    known: Option<&[ChangeHash]>,
    state: &mut Option<sync::State>,
) -> (Option<(Vec<ChangeHash>, Payload)>, bool) {
    let heads = doc.get_heads();
    if let Some(known) = known
        && known.iter().all(|h| hopluu_model::am::knows(doc, h))
    {
        if known == heads.as_slice() {
            return (None, true);
        }
        if known.is_empty() {
            // The peer has none of it: the whole document, compressed.
            return (Some((heads, Payload::Changes(doc.save()))), true);
        }
        let data = doc.save_after(known);
        if data.is_empty() {
            return (None, true);
        }
        return (Some((heads, Payload::Changes(data))), true);
    }
    let st = state.get_or_insert_with(sync::State::new);
    match crate::gate::guarded(|| doc.generate_sync_message(st)) {
        Ok(msg) => (msg.map(|m| (heads, Payload::Sync(m.encode()))), false),
        Err(e) => {
            // A state built from what the peer sent that automerge cannot
            // answer: start the round afresh.
            tracing::warn!(error = %e, "sync state dropped");
            *state = Some(sync::State::new());
            (None, false)
        }
    }
}
