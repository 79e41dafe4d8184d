//! The receiving side of a session: the steps [`Session::apply`] takes a
//! batch through, all inside its one transaction. Each update is screened
//! (size, private data), decoded, admitted by the gate, taken in (plain
//! changes or an automerge sync message), then settled against the
//! quarantine and noted for the ack and the checkpoint.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ChangeHash};
use hopluu_model::{DocId, DocKind, DocMeta, UnitTree};
use hopluu_store::WriteTx;

use super::{PeerInfo, Session, payload_len};
use crate::SyncError;
use crate::frame::{Batch, DocHeads, DocUpdate, Payload};
use crate::gate::{self, Gate, Held, Incoming, Sender};

/// What the updates of one batch share while they are judged.
pub(super) struct Judging {
    peer: PeerInfo,
    sender: Sender,
    now: i64,
    /// The quarantine of the batch's documents, read under the writer
    /// lock.
    held_all: HashMap<DocId, Held>,
    /// The unit tree as of the last commit, plus the unit records this
    /// batch brings (a new unit's record and its first roster often
    /// travel together).
    tree: Arc<UnitTree>,
    pub(super) units_changed: bool,
    /// The tree grew during this pass over the deferred updates.
    grew: bool,
    /// No more unit records can come: whatever is left is judged now.
    last_pass: bool,
    /// Whether every update of the batch left this node with all of the
    /// sender's heads (or holds the missing ones in quarantine, where
    /// this sender could not deliver them: `Gate::known_held`). Only
    /// then does the batch's stretch of the sender's feed count as
    /// applied: a document still being found by the sync protocol must
    /// be sent again after a reconnect, and the sender resumes from the
    /// checkpoint.
    pub(super) complete: bool,
    /// The sealed heads of the batch's documents (what a reorganisation
    /// decision moved), plus the seals of decisions this batch brings.
    pub(super) seals: HashMap<DocId, Vec<hopluu_store::decisions::SealHeads>>,
    /// The batch brought a decision's seals.
    pub(super) sealed: bool,
}

impl Judging {
    pub(super) fn new(
        peer: PeerInfo,
        sender: Sender,
        now: i64,
        held_all: HashMap<DocId, Held>,
        tree: Arc<UnitTree>,
    ) -> Judging {
        Judging {
            peer,
            sender,
            now,
            held_all,
            tree,
            units_changed: false,
            grew: false,
            last_pass: false,
            complete: true,
            seals: HashMap::new(),
            sealed: false,
        }
    }

    /// Seals a document of this batch brought (a decision's, or an old
    /// host's): they count for the rest of the batch (the projection has
    /// them only once the batch commits), and for what is held already
    /// (settled after the commit).
    /// `by`: the old host that sealed (None: the decision's own seal).
    fn add_seals(
        &mut self,
        by: Option<&str>,
        seals: impl IntoIterator<Item = hopluu_model::reorg::Seal>,
    ) {
        for seal in seals {
            self.sealed = true;
            if let Ok(doc_id) = DocId::parse("doc", &seal.doc) {
                let entry = self.seals.entry(doc_id).or_default();
                for h in seal
                    .heads
                    .iter()
                    .filter_map(|h| h.parse::<ChangeHash>().ok())
                {
                    hopluu_store::decisions::SealHeads::add(entry, by, h);
                }
            }
        }
    }
}

/// One update's fate in this pass.
enum Judged {
    Ack(DocHeads),
    /// Left for a later pass: it names units whose records may come later
    /// in the batch.
    Wait(DocUpdate, DocId, Option<Decoded>),
}

/// An update's payload decoded: its changes for the gate, and a sync
/// message's remainder; or why it cannot be. (Boxed: it holds a whole
/// document, and waits in queues.)
pub(super) type Decoded = Box<Result<(Incoming, Option<sync::Message>), String>>;

/// An update of a batch as it waits to be judged: its place in the batch,
/// its document, and its payload if already decoded.
type Queued = (usize, DocUpdate, Option<DocId>, Option<Decoded>);

/// Whether an update may be looked at at all.
enum Screen {
    Pass,
    Wait,
    Refuse(String),
}

/// The gate's word on an update that it did not leave for later.
enum Received {
    /// Refused whole, nothing of it applied: the reason for the ack.
    Refused(String),
    Wait,
    Taken(Taken),
}

/// What an update left behind, for the peer state and the ack.
#[derive(Debug, Default)]
struct Taken {
    /// Why the update is not (wholly) applied; empty if it is.
    rejected: String,
    /// The update came before changes it depends on: what the gate
    /// applied is kept, and the sender resends from the ack's heads.
    missing_deps: bool,
    /// The heads to record as the peer's, and its sync state.
    peer_heads: Option<Vec<ChangeHash>>,
    sync_bytes: Option<Vec<u8>>,
    /// Quarantined changes the ack names as known here.
    quarantined: Vec<ChangeHash>,
    /// Held changes that count as had here, to this sender
    /// (`Gate::known_held`): the others it still owes.
    known_held: HashSet<ChangeHash>,
    /// Changes applied.
    changes: u64,
}

impl Session {
    /// Reads the stored sync states of the batch's documents whose heads
    /// are being found and that this session does not hold yet.
    pub(super) async fn load_sync_states(
        &mut self,
        peer: &str,
        docs: &[DocUpdate],
        ids: &[Option<DocId>],
    ) -> Result<(), SyncError> {
        let sync_ids: Vec<DocId> = docs
            .iter()
            .zip(ids)
            .filter(|(u, _)| matches!(u.payload, Payload::Sync(_)))
            .filter_map(|(_, id)| id.clone())
            .filter(|id| !self.sync_states.contains_key(id))
            .collect();
        if sync_ids.is_empty() {
            return Ok(());
        }
        let stored = self.replica.store.peer_docs(peer, &sync_ids).await?;
        for (id, pd) in stored {
            if let Some(bytes) = pd.sync {
                self.sync_states
                    .insert(id, sync::State::decode(&bytes).unwrap_or_default());
            }
        }
        Ok(())
    }

    /// Judges every update of the batch, and returns their acks in the
    /// batch's order. Updates that name units this node does not know yet
    /// wait for the rest of the batch (which may bring those units'
    /// records), pass after pass while passes make the tree grow; the last
    /// pass judges whatever is left.
    pub(super) async fn judge_updates(
        &mut self,
        tx: &mut WriteTx<'_>,
        j: &mut Judging,
        docs: Vec<DocUpdate>,
        ids: Vec<Option<DocId>>,
        decoded: Vec<Option<Decoded>>,
    ) -> Result<InOrder, SyncError> {
        let mut acks = InOrder::with_capacity(docs.len());
        let mut queue: VecDeque<Queued> = docs
            .into_iter()
            .zip(ids)
            .zip(decoded)
            .enumerate()
            .map(|(i, ((u, id), d))| (i, u, id, d))
            .collect();
        let mut deferred: Vec<Queued> = Vec::new();
        loop {
            let Some((pos, u, id, decoded)) = queue.pop_front() else {
                if deferred.is_empty() {
                    break;
                }
                j.last_pass = !j.grew;
                j.grew = false;
                queue.extend(deferred.drain(..));
                continue;
            };
            // Boxed: one update's judging is a deep future, and a
            // current-thread runtime polls it on its caller's stack.
            match Box::pin(self.judge_update(tx, j, u, id, decoded)).await? {
                Judged::Ack(d) => acks.push(pos, d),
                Judged::Wait(u, id, decoded) => deferred.push((pos, u, Some(id), decoded)),
            }
        }
        Ok(acks)
    }

    /// One update, from screening to its ack; `decoded`: its payload, if
    /// decoded ahead ([`decode_ahead`]).
    async fn judge_update(
        &mut self,
        tx: &mut WriteTx<'_>,
        j: &mut Judging,
        u: DocUpdate,
        id: Option<DocId>,
        decoded: Option<Decoded>,
    ) -> Result<Judged, SyncError> {
        let Some(id) = id else {
            return Ok(Judged::Ack(DocHeads {
                doc: u.doc.clone(),
                heads: Vec::new(),
                rejected: format!("{:?} is not a document id", u.doc),
                quarantined: Vec::new(),
            }));
        };
        let before = tx.doc(&id).await?.get_heads();
        let refuse_doc = |reason: String| DocHeads {
            doc: id.to_string(),
            heads: before.clone(),
            rejected: reason,
            quarantined: Vec::new(),
        };
        match self.screen(j, &id, &u) {
            Screen::Pass => {}
            Screen::Wait => return Ok(Judged::Wait(u, id, decoded)),
            Screen::Refuse(reason) => return Ok(Judged::Ack(refuse_doc(reason))),
        }
        let mut held = j.held_all.remove(&id).unwrap_or_default();
        let had_held = !held.is_empty();
        let decoded = match decoded {
            Some(d) => *d,
            None => decode_update(&u.payload, self.replica.limits.accept_changes),
        };
        let taken = match decoded {
            Err(e) => Taken {
                rejected: e,
                ..Taken::default()
            },
            Ok((incoming, msg)) => {
                match self
                    .receive(tx, j, &id, &u, incoming, msg, &mut held)
                    .await?
                {
                    Received::Wait => {
                        j.held_all.insert(id.clone(), held);
                        return Ok(Judged::Wait(u, id, None));
                    }
                    Received::Refused(reason) => return Ok(Judged::Ack(refuse_doc(reason))),
                    Received::Taken(t) => t,
                }
            }
        };
        let doc = tx.doc(&id).await?;
        if doc.get_heads() != before && DocMeta::read(id.clone(), doc).is_err() {
            // Changes that leave no readable document (a skeleton without
            // its first record, say) wait for the rest to arrive.
            tx.discard(&id);
            return Ok(Judged::Ack(DocHeads {
                rejected: "incomplete document: resend from the heads in this ack".into(),
                ..refuse_doc(String::new())
            }));
        }
        self.settle_and_grow(tx, j, &id, &before, had_held || !held.is_empty())
            .await?;
        self.note_update(tx, j, &id, &u, taken)
            .await
            .map(Judged::Ack)
    }

    /// The checks before anything of an update is read: its size, and
    /// whether a private roster may be held here.
    fn screen(&mut self, j: &mut Judging, id: &DocId, u: &DocUpdate) -> Screen {
        let limits = &self.replica.limits;
        if payload_len(&u.payload) > limits.accept_doc_bytes {
            self.stats.docs_rejected += 1;
            tracing::warn!(peer = %j.peer.node_id, doc = %id, bytes = payload_len(&u.payload), "update over the size limit");
            return Screen::Refuse(format!(
                "limit: update of {} bytes, over the limit of {} bytes",
                payload_len(&u.payload),
                limits.accept_doc_bytes
            ));
        }
        match gate::private_allowed(&j.tree, &self.replica.unit, id, self.replica.private_depth) {
            Some(true) => Screen::Pass,
            Some(false) => {
                self.stats.docs_rejected += 1;
                tracing::warn!(peer = %j.peer.node_id, doc = %id, "private roster refused: not held at this node");
                Screen::Refuse("private-data: private rosters are not held at this node".to_owned())
            }
            // The unit records that decide it may come later in the
            // batch; failing that, the sender sends it again (the
            // checkpoint waits for it).
            None if !j.last_pass => Screen::Wait,
            None => {
                self.stats.docs_rejected += 1;
                j.complete = false;
                Screen::Refuse(
                    "private-data: this node's place in the unit tree is not known yet: resend later"
                        .to_owned(),
                )
            }
        }
    }

    /// Passes the update's changes through the gate, then takes in what
    /// the update says of the peer's heads: plain changes name them, a
    /// sync message goes on to the sync protocol.
    #[allow(clippy::too_many_arguments)]
    async fn receive(
        &mut self,
        tx: &mut WriteTx<'_>,
        j: &Judging,
        id: &DocId,
        u: &DocUpdate,
        incoming: Incoming,
        msg: Option<sync::Message>,
        held: &mut Held,
    ) -> Result<Received, SyncError> {
        let gate = Gate {
            tree: &j.tree,
            sender: &j.sender,
            now: j.now,
        };
        let sealed = j.seals.get(id).map(Vec::as_slice).unwrap_or_default();
        let admitted = gate
            .admit(tx, id, incoming, held, sealed, !j.last_pass)
            .await?;
        if admitted.deferred {
            return Ok(Received::Wait);
        }
        if let Some(reason) = admitted.refused {
            self.stats.docs_rejected += 1;
            if msg.is_some() {
                self.sync_states.remove(id);
            }
            tracing::warn!(peer = %j.peer.node_id, doc = %id, reason = %reason, "update refused");
            return Ok(Received::Refused(format!("refused: {reason}")));
        }
        let mut t = Taken::default();
        let orphans = !admitted.orphans.is_empty();
        t.quarantined.extend(admitted.quarantined);
        t.quarantined.extend(admitted.known_bad);
        t.changes = admitted.applied as u64;
        if !held.is_empty() {
            t.known_held = gate.known_held(tx, id, held, &t.quarantined).await?;
            // The ack names as known only what this sender cannot
            // deliver; it sends the rest again.
            t.quarantined.retain(|h| t.known_held.contains(h));
        }
        let doc = tx.doc(id).await?;
        match msg {
            None => {
                // Changes whose past is not here were left alone: the
                // sender resends from our heads.
                match plain_heads(doc, &u.heads, orphans, &t.known_held) {
                    Some(heads) => t.peer_heads = Some(heads),
                    None => {
                        t.missing_deps = true;
                        t.rejected =
                            "missing dependencies: resend from the heads in this ack".to_owned();
                    }
                }
            }
            Some(msg) => {
                if let Err(e) = self.receive_sync(doc, id, msg, &mut t) {
                    t.rejected = format!("sync message refused: {e}");
                    // The document or the state may be half changed:
                    // start both afresh.
                    self.sync_states.remove(id);
                    tx.discard(id);
                }
            }
        }
        Ok(Received::Taken(t))
    }

    /// Hands a sync message (its changes already applied by the gate) to
    /// the automerge sync protocol: once the peer's heads are all known
    /// here it gets plain changes from now on; until then this side
    /// answers in the protocol.
    fn receive_sync(
        &mut self,
        doc: &mut Automerge,
        id: &DocId,
        msg: sync::Message,
        t: &mut Taken,
    ) -> Result<(), String> {
        let state = self.sync_states.entry(id.clone()).or_default();
        gate::guarded(|| doc.receive_sync_message(state, msg))
            .and_then(|r| r.map_err(|e| e.to_string()))?;
        let theirs = state.their_heads.clone().unwrap_or_default();
        if theirs
            .iter()
            .all(|h| hopluu_model::am::knows(doc, h) || t.known_held.contains(h))
        {
            // The peer's heads are all known here (or held): from now on
            // it gets plain changes.
            self.sync_states.remove(id);
            // A late answer to an earlier round (the peer had nothing
            // yet, say) names heads older than those it has acknowledged
            // since: forgetting those would send it the document again.
            let theirs = known_only(doc, &theirs);
            let stale = self
                .acked_heads
                .get(id)
                .is_some_and(|known| covers(doc, known, &theirs));
            if !stale {
                t.peer_heads = Some(theirs);
            }
            self.resend.insert(id.clone());
        } else {
            // The peer has changes this node lacks: answer in the sync
            // protocol, which finds them without resending history.
            if let Ok(Some(reply)) = gate::guarded(|| doc.generate_sync_message(state)) {
                self.sync_out.push_back(DocUpdate {
                    doc: id.to_string(),
                    heads: doc.get_heads(),
                    payload: Payload::Sync(reply.encode()),
                });
            }
            t.sync_bytes = Some(state.encode());
            t.peer_heads = Some(known_only(doc, &theirs));
        }
        Ok(())
    }

    /// After a document changed: held changes are settled against it (one
    /// may have arrived by another path, or what waited on one may pass
    /// now), and a unit record's change goes into the batch's tree.
    async fn settle_and_grow(
        &mut self,
        tx: &mut WriteTx<'_>,
        j: &mut Judging,
        id: &DocId,
        before: &[ChangeHash],
        has_held: bool,
    ) -> Result<(), SyncError> {
        let doc = tx.doc(id).await?;
        // A sealed document is settled whenever it holds changes: a change
        // judged before the sealed head that follows it came (in this
        // batch, or an earlier one) is in the seal's past only once that
        // head is at hand, held or not.
        let sealed = j.seals.contains_key(id);
        if has_held && (sealed || doc.get_heads() != before) {
            gate::settle(tx, &j.tree, &self.replica.unit, id, j.now).await?;
        }
        let doc = tx.doc(id).await?;
        if id.kind() == DocKind::Decision
            && doc.get_heads() != before
            && let Ok(d) = hopluu_model::reorg::read(id, doc)
        {
            j.add_seals(None, d.seals);
        }
        if id.kind() == DocKind::Node
            && doc.get_heads() != before
            && let Ok(n) = hopluu_model::hosting::read(id, doc)
        {
            // An old host's seals, likewise (the decision they name is
            // required once committed: see `WriteTx::sealed_heads`).
            let by = n.info.id.clone();
            j.add_seals(Some(&by), n.seals.into_iter().flat_map(|s| s.docs));
        }
        if id.kind() == DocKind::Unit
            && doc.get_heads() != before
            && let Ok(unit) = hopluu_model::unit::read(id, doc)
        {
            Arc::make_mut(&mut j.tree).upsert_unit(&unit);
            j.units_changed = true;
            j.grew = true;
        }
        Ok(())
    }

    /// Notes what an update left: whether the batch is still complete, the
    /// peer's heads, the counters; and returns its entry of the ack.
    async fn note_update(
        &mut self,
        tx: &mut WriteTx<'_>,
        j: &mut Judging,
        id: &DocId,
        u: &DocUpdate,
        t: Taken,
    ) -> Result<DocHeads, SyncError> {
        let doc = tx.doc(id).await?;
        let heads = doc.get_heads();
        // Incomplete: the sync protocol is still finding the difference,
        // or changes came before those they depend on (the sender sends
        // them again from the heads in the ack). Updates refused for good
        // (undecodable, or leaving no readable document) do not hold the
        // checkpoint back: sending them again would not help. Nor do
        // quarantined changes: they wait for an administrator.
        if (t.rejected.is_empty() || t.missing_deps)
            && !u
                .heads
                .iter()
                .all(|h| hopluu_model::am::knows(doc, h) || t.known_held.contains(h))
        {
            j.complete = false;
        }
        if let Some(ph) = &t.peer_heads {
            tx.set_peer_heads(&j.peer.node_id, id, ph, t.sync_bytes);
            if t.rejected.is_empty() {
                self.acked_heads.insert(id.clone(), ph.clone());
            }
        }
        if t.rejected.is_empty() {
            self.stats.docs_applied += 1;
        } else {
            self.stats.docs_rejected += 1;
            tracing::warn!(peer = %j.peer.node_id, doc = %id, reason = %t.rejected, "update not applied");
        }
        if t.rejected.is_empty() || t.missing_deps {
            // Committed with the batch; a discarded update's are not.
            self.stats.changes_applied += t.changes;
        }
        self.stats.changes_quarantined += t.quarantined.len() as u64;
        Ok(DocHeads {
            doc: id.to_string(),
            heads,
            rejected: t.rejected,
            quarantined: t.quarantined,
        })
    }

    /// Moves the checkpoint of the peer's feed to the end of the batch's
    /// stretch, when every update of it is complete here and the stretch
    /// follows on from what was applied before.
    pub(super) fn checkpoint(
        &mut self,
        tx: &mut WriteTx<'_>,
        peer: &PeerInfo,
        b: &Batch,
        complete: bool,
    ) {
        if complete && b.upto_seq > 0 && b.from_seq <= self.applied && b.upto_seq > self.applied {
            self.applied = b.upto_seq;
            tx.set_peer_applied(&peer.node_id, &peer.unit, self.applied);
        }
    }
}

/// The changes an update carries, and for a sync message the message
/// without them: the changes pass the gate first, the protocol sees the
/// rest.
pub(super) fn decode_update(
    payload: &Payload,
    max_changes: usize,
) -> Result<(Incoming, Option<sync::Message>), String> {
    match payload {
        Payload::Changes(data) => Incoming::decode(data, max_changes)
            .map(|i| (i, None))
            .map_err(|e| format!("undecodable changes: {e}")),
        Payload::Sync(msg) => match sync::Message::decode(msg) {
            Err(e) => Err(format!("undecodable sync message: {e}")),
            Ok(mut msg) => {
                let data: Vec<u8> = msg.changes.iter().flatten().copied().collect();
                msg.changes = sync::ChunkList::empty();
                Incoming::decode(&data, max_changes)
                    .map(|i| (i, Some(msg)))
                    .map_err(|e| format!("undecodable changes: {e}"))
            }
        },
    }
}

/// The heads a plain update names, as far as this node has them, or None
/// when changes they need are missing here (left alone as orphans, or
/// neither in the document nor held).
fn plain_heads(
    doc: &Automerge,
    heads: &[ChangeHash],
    orphans: bool,
    known_held: &HashSet<ChangeHash>,
) -> Option<Vec<ChangeHash>> {
    let missing = orphans
        || heads
            .iter()
            .any(|h| !hopluu_model::am::knows(doc, h) && !known_held.contains(h));
    (!missing).then(|| known_only(doc, heads))
}

/// An ack's documents in the order of the batch's updates, whatever order
/// they were judged in (an update that waits for unit records later in the
/// batch is judged after them).
pub(super) struct InOrder {
    items: Vec<(usize, DocHeads)>,
}

impl InOrder {
    fn with_capacity(n: usize) -> InOrder {
        InOrder {
            items: Vec::with_capacity(n),
        }
    }

    /// The update being judged, by its place in the batch.
    /// The ack of the update at `pos` in the batch.
    fn push(&mut self, pos: usize, d: DocHeads) {
        self.items.push((pos, d));
    }

    pub(super) fn into_vec(mut self) -> Vec<DocHeads> {
        self.items.sort_by_key(|(pos, _)| *pos);
        self.items.into_iter().map(|(_, d)| d).collect()
    }
}

/// The heads in `heads` this node has: what it may record as the peer's.
fn known_only(doc: &Automerge, heads: &[ChangeHash]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter(|h| hopluu_model::am::knows(doc, h))
        .copied()
        .collect()
}

/// Whether heads `known` include every change of `theirs` (each hash of
/// `theirs` is one of `known` or an ancestor of them), as far as `doc`
/// knows.
fn covers(doc: &Automerge, known: &[ChangeHash], theirs: &[ChangeHash]) -> bool {
    if !known.iter().all(|h| hopluu_model::am::knows(doc, h)) {
        return false;
    }
    if theirs.iter().all(|h| known.contains(h)) {
        return true;
    }
    let after: BTreeSet<ChangeHash> = doc
        .get_changes_meta(known)
        .into_iter()
        .map(|c| c.hash)
        .collect();
    theirs.iter().all(|h| !after.contains(h))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use automerge::sync::{self, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ChangeHash, ROOT};

    use super::{InOrder, covers, decode_update, plain_heads};
    use crate::frame::{DocHeads, Payload};

    fn doc_with(n: i64) -> Automerge {
        let mut doc = Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            tx.put(ROOT, "k", i).unwrap();
            tx.commit();
        }
        doc
    }

    fn hashes(doc: &Automerge) -> Vec<ChangeHash> {
        doc.get_changes(&[]).iter().map(|c| c.hash()).collect()
    }

    #[test]
    fn undecodable_payloads_say_which_part_failed() {
        let err = decode_update(&Payload::Changes(b"not automerge".to_vec()), 10)
            .err()
            .unwrap();
        assert_eq!(err, "undecodable changes: not an automerge chunk at byte 0");
        let err = decode_update(&Payload::Sync(vec![0xff, 0x00]), 10)
            .err()
            .unwrap();
        assert!(err.starts_with("undecodable sync message: "), "{err}");
    }

    #[test]
    fn a_sync_message_gives_its_changes_to_the_gate_and_keeps_the_rest() {
        let mut theirs = doc_with(2);
        let ours = Automerge::new();
        let (mut their_state, mut our_state) = (sync::State::new(), sync::State::new());
        // One round: this side says it has nothing; the peer answers with
        // its changes.
        let ask = ours.generate_sync_message(&mut our_state).unwrap();
        theirs.receive_sync_message(&mut their_state, ask).unwrap();
        let answer = theirs.generate_sync_message(&mut their_state).unwrap();
        let (incoming, msg) = decode_update(&Payload::Sync(answer.encode()), 10).unwrap();
        assert_eq!(incoming.len(), 2);
        let msg = msg.expect("a sync message");
        assert_eq!(msg.changes.iter().count(), 0, "changes go to the gate only");
        assert_eq!(msg.heads, theirs.get_heads());
    }

    #[test]
    fn plain_heads_need_every_head_here_or_held() {
        let doc = doc_with(2);
        let h = hashes(&doc);
        let unknown = ChangeHash([7; 32]);
        let none = HashSet::new();
        assert_eq!(plain_heads(&doc, &[h[1]], false, &none), Some(vec![h[1]]));
        assert_eq!(plain_heads(&doc, &[h[1], unknown], false, &none), None);
        // A held head counts as had, but is not recorded as the peer's.
        let held = HashSet::from([unknown]);
        assert_eq!(
            plain_heads(&doc, &[h[1], unknown], false, &held),
            Some(vec![h[1]])
        );
        // Orphans were left alone: the sender must resend.
        assert_eq!(plain_heads(&doc, &[h[1]], true, &none), None);
    }

    #[test]
    fn covers_reads_ancestry() {
        let doc = doc_with(2);
        let h = hashes(&doc);
        assert!(covers(&doc, &[h[1]], &[h[0]]));
        assert!(covers(&doc, &[h[1]], &[h[1]]));
        assert!(!covers(&doc, &[h[0]], &[h[1]]));
        assert!(!covers(&doc, &[ChangeHash([7; 32])], &[h[0]]));
    }

    #[test]
    fn acks_come_back_in_batch_order() {
        let entry = |doc: &str| DocHeads {
            doc: doc.to_owned(),
            heads: Vec::new(),
            rejected: String::new(),
            quarantined: Vec::new(),
        };
        let mut acks = InOrder::with_capacity(3);
        acks.push(2, entry("c"));
        acks.push(0, entry("a"));
        acks.push(1, entry("b"));
        let docs: Vec<String> = acks.into_vec().into_iter().map(|d| d.doc).collect();
        assert_eq!(docs, ["a", "b", "c"]);
    }
}
