//! The receiver's gate: every change that arrives on a stream is checked
//! against the authority rule before it is applied.
//!
//! A change's actor names the node that made it and the unit that node
//! hosts ([`Author::origin`]). The change passes when
//! - the actor names a node at all (or it is exactly the document's
//!   deterministic skeleton change, which belongs to no node);
//! - coming from a child, the node that made it is in the child's subtree:
//!   a district cannot pass off a change as its province's, and a change it
//!   relays from elsewhere must come by a path that can vouch for it;
//! - the maker's unit holds authority over the document's owner unit
//!   (DESIGN §3: authority = subtree), both before the change and after
//!   it, so a unit record cannot be moved out of the maker's reach.
//!
//! A change that fails is quarantined with the reason (code and text),
//! and so is every change that depends on a quarantined one (code
//! `waits`). Neither is applied nor acknowledged as applied; the sender
//! is told their hashes, so it does not send them again, and unrelated
//! documents and changes go on. A quarantined change that later arrives
//! by a path that vouches for it (from the child whose subtree made it,
//! say) is applied then, and what waited on it follows.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use hopluu_model::doc::{Origin, skeleton_actor, skeleton_hash};
use hopluu_model::{Author, DocId, DocKind, DocMeta, UnitId, UnitTree};
use hopluu_store::quarantine::{NewQuarantine, QuarantineEntry, QuarantineState};
use hopluu_store::{Store, WriteTx};

use crate::SyncError;

/// Who sent the changes, as the session knows it.
#[derive(Debug, Clone)]
pub struct Sender {
    pub node: String,
    pub unit: UnitId,
    /// The sender is a child of this node (it dialled in): what it sends
    /// must be made inside its subtree. Changes from an upstream may come
    /// from anywhere above or beside, and are held to authority only.
    pub is_child: bool,
}

/// Why a change is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Stable code: `unknown-actor`, `unknown-unit`, `forged-skeleton`,
    /// `outside-sender`, `not-authorised`, `waits`.
    pub code: &'static str,
    pub reason: String,
    pub origin: Option<Origin>,
}

/// Checks one change's maker against the rule, for a document owned by
/// `owner` (`None` while the document's owner is not known yet).
pub fn check(
    tree: &UnitTree,
    sender: &Sender,
    doc: &DocId,
    owner: Option<&UnitId>,
    actor: &ActorId,
    hash: &ChangeHash,
) -> Result<(), Hold> {
    if *actor == skeleton_actor() {
        return if skeleton_hash(doc).as_ref() == Some(hash) {
            Ok(())
        } else {
            Err(Hold {
                code: "forged-skeleton",
                reason: format!("a change under the skeleton actor that is not {doc}'s skeleton"),
                origin: None,
            })
        };
    }
    let Some(origin) = Author::origin(actor) else {
        return Err(Hold {
            code: "unknown-actor",
            reason: "the change's actor names no node and unit".to_owned(),
            origin: None,
        });
    };
    // The root's record is its own owner: only the root's node writes it.
    let self_owned = matches!(doc, DocId::Unit(u) if Some(u) == owner && !tree.contains(u));
    if self_owned {
        return if owner == Some(&origin.unit) {
            Ok(())
        } else {
            Err(Hold {
                code: "not-authorised",
                reason: format!(
                    "node {} (unit {}) cannot write the record of unit {doc}, which owns itself",
                    origin.node, origin.unit
                ),
                origin: Some(origin),
            })
        };
    }
    if !tree.contains(&origin.unit) {
        return Err(Hold {
            code: "unknown-unit",
            reason: format!(
                "made by node {} for unit {}, which this node does not know (yet)",
                origin.node, origin.unit
            ),
            origin: Some(origin),
        });
    }
    if let Some(owner) = owner
        && !tree.contains(owner)
    {
        return Err(Hold {
            code: "unknown-unit",
            reason: format!("{doc} is owned by unit {owner}, which this node does not know (yet)"),
            origin: Some(origin),
        });
    }
    if sender.is_child && !tree.is_within(&origin.unit, &sender.unit) {
        return Err(Hold {
            code: "outside-sender",
            reason: format!(
                "made by node {} for unit {}, outside the subtree of the sending child {} ({})",
                origin.node, origin.unit, sender.node, sender.unit
            ),
            origin: Some(origin),
        });
    }
    if let Some(owner) = owner
        && !tree.has_authority(&origin.unit, owner)
    {
        return Err(Hold {
            code: "not-authorised",
            reason: format!(
                "node {} (unit {}) holds no authority over {doc}, owned by unit {owner}",
                origin.node, origin.unit
            ),
            origin: Some(origin),
        });
    }
    Ok(())
}

/// One piece of an automerge payload.
enum Piece {
    Change(Box<Change>),
    /// A whole document (a first-contact save, or a v2 sync message).
    Document(Box<Automerge>),
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Splits automerge bytes (change chunks and document chunks, as
/// `save`, `save_after` and sync messages carry them) into pieces, each
/// decoded and checksum-verified. Refuses anything else, bundles included.
fn split(data: &[u8]) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < 10 {
            return Err(format!("truncated chunk header at byte {at}"));
        }
        if rest[..4] != MAGIC {
            return Err(format!("not an automerge chunk at byte {at}"));
        }
        let kind = rest[8];
        let (len, n) =
            leb128(&rest[9..]).ok_or_else(|| format!("bad chunk length at byte {at}"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(9 + n))
            .filter(|e| *e <= rest.len())
            .ok_or_else(|| format!("truncated chunk at byte {at}"))?;
        let chunk = &rest[..end];
        match kind {
            0 => {
                let doc = guarded(|| Automerge::load(chunk))
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|e| format!("bad document chunk: {e}"))?;
                out.push(Piece::Document(Box::new(doc)));
            }
            1 | 2 => {
                let c = guarded(|| Change::try_from(chunk))
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|e| format!("bad change chunk: {e}"))?;
                if c.max_op() < c.start_op().get() {
                    return Err(format!("change {} holds no operations", c.hash()));
                }
                if c.max_op() >= u64::from(u32::MAX) {
                    return Err(format!("change {} has op counters past 2^32", c.hash()));
                }
                out.push(Piece::Change(Box::new(c)));
            }
            other => return Err(format!("chunk type {other} is not accepted")),
        }
        at += end;
    }
    Ok(out)
}

fn leb128(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Everything in an automerge payload, in causal order, with the whole
/// document when the payload was one (so that a document that passes can
/// be taken as it is, without applying its history change by change).
pub struct Incoming {
    /// Hash, maker and dependencies of every change: all the gate needs.
    metas: Vec<Meta>,
    /// The changes, index for index with `metas`; empty for a whole
    /// document until they are needed (a whole document that passes is
    /// taken as it is, and never split into changes).
    changes: Vec<Change>,
    whole: Option<Automerge>,
}

struct Meta {
    hash: ChangeHash,
    actor: ActorId,
    deps: Vec<ChangeHash>,
    start_op: u64,
    max_op: u64,
}

impl Meta {
    fn of(c: &Change) -> Meta {
        Meta {
            hash: c.hash(),
            actor: c.actor_id().clone(),
            deps: c.deps().to_vec(),
            start_op: c.start_op().get(),
            max_op: c.max_op(),
        }
    }
}

/// Runs automerge code on bytes from a peer, turning a panic inside
/// automerge (some crafted changes reach `unwrap`s and asserts in 0.12)
/// into an error: the update is refused, the session and the node go on.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "automerge failed on these bytes (refused)".to_owned())
}

/// Applies changes that passed the gate, guarded; on failure the document
/// is dropped from the transaction (it may be half changed) and the update
/// refused with the reason.
///
/// automerge 0.12 also takes a change whose bytes are not the canonical
/// encoding of its operations: it files it under the hash of the bytes
/// received while its change graph derives another, and panics on the
/// document later (`save_after` at the commit, `get_change_by_hash`), so
/// the session would fail on every reconnect. After applying, the changes
/// the document gained must be exactly among those applied; anything else
/// refuses the update.
fn apply_guarded(doc: &mut Automerge, id: &DocId, changes: &[Change]) -> Result<(), String> {
    let before = doc.get_heads();
    match guarded(|| doc.apply_changes(changes.iter().cloned())) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("{id}: changes refused: {e}")),
        Err(e) => return Err(format!("{id}: {e}")),
    }
    let sent: std::collections::HashSet<ChangeHash> = changes.iter().map(Change::hash).collect();
    let gained = guarded(|| {
        doc.get_changes(&before)
            .iter()
            .map(|c| c.hash())
            .collect::<Vec<_>>()
    })
    .map_err(|e| format!("{id}: {e}"))?;
    match gained.iter().find(|h| !sent.contains(h)) {
        None => Ok(()),
        Some(h) => Err(format!(
            "{id}: a change is not the encoding of its own operations (automerge derives {h}); refused"
        )),
    }
}

impl Incoming {
    /// Decodes a payload, refusing it whole if any part is malformed or it
    /// holds more than `max_changes` changes.
    pub fn decode(data: &[u8], max_changes: usize) -> Result<Incoming, String> {
        let mut pieces = split(data)?;
        let mut changes = Vec::new();
        if pieces.len() == 1
            && let Some(Piece::Document(_)) = pieces.first()
        {
            let Some(Piece::Document(doc)) = pieces.pop() else {
                unreachable!("checked above")
            };
            let metas: Vec<Meta> = doc
                .get_changes_meta(&[])
                .into_iter()
                .map(|m| Meta {
                    hash: m.hash,
                    actor: m.actor.into_owned(),
                    deps: m.deps,
                    start_op: m.start_op,
                    max_op: m.max_op,
                })
                .collect();
            if metas.len() > max_changes {
                return Err(format!("more than {max_changes} changes in one update"));
            }
            return Ok(Incoming {
                metas,
                changes,
                whole: Some(*doc),
            });
        } else {
            for p in pieces {
                match p {
                    Piece::Change(c) => changes.push(*c),
                    Piece::Document(doc) => changes.extend(doc.get_changes(&[])),
                }
                if changes.len() > max_changes {
                    return Err(format!("more than {max_changes} changes in one update"));
                }
            }
        }
        Ok(Incoming {
            metas: changes.iter().map(Meta::of).collect(),
            changes,
            whole: None,
        })
    }

    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// The changes at `picks` (indexes into `metas`), splitting a whole
    /// document into changes if that is what came.
    fn take(&mut self, picks: &[usize]) -> Vec<Change> {
        if picks.is_empty() {
            return Vec::new();
        }
        if self.changes.is_empty()
            && let Some(whole) = &self.whole
        {
            let mut by_hash: HashMap<ChangeHash, Change> = whole
                .get_changes(&[])
                .into_iter()
                .map(|c| (c.hash(), c))
                .collect();
            return picks
                .iter()
                .filter_map(|i| by_hash.remove(&self.metas[*i].hash))
                .collect();
        }
        picks.iter().map(|i| self.changes[*i].clone()).collect()
    }
}

/// What the gate did with one update.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Changes applied.
    pub applied: usize,
    /// Changes quarantined now (new entries).
    pub quarantined: Vec<ChangeHash>,
    /// Changes already quarantined, or discarded, seen again.
    pub known_bad: Vec<ChangeHash>,
    /// Changes the payload held that were already here.
    pub duplicates: usize,
    /// Changes left alone because something they depend on is neither in
    /// the document, nor held, nor in the payload: judging or holding them
    /// would let the sender count them as known here without what comes
    /// before them. The sender is asked to resend from the heads in the
    /// ack.
    pub orphans: Vec<ChangeHash>,
    /// The update was refused whole, with the reason (automerge could not
    /// apply it, or a change contradicts what it depends on); nothing of it
    /// was applied or quarantined.
    pub refused: Option<String>,
    /// Nothing was done: a change names a unit this node does not know
    /// yet, and the caller asked to wait for it (its record may come later
    /// in the same batch).
    pub deferred: bool,
}

/// The quarantine of one document as the gate sees it: hashes held or
/// discarded.
pub type Held = HashMap<ChangeHash, QuarantineState>;

/// The gate for one batch.
pub struct Gate<'a> {
    pub tree: &'a UnitTree,
    pub sender: &'a Sender,
    pub now: i64,
}

impl Gate<'_> {
    /// Checks `incoming` and applies what passes to the document `id` open
    /// in `tx`; quarantines the rest, with what depends on it.
    ///
    /// With `defer`, an update that names a unit this node does not know
    /// is left untouched ([`Admitted::deferred`]) for the caller to offer
    /// again once more unit records are in.
    pub async fn admit(
        &self,
        tx: &mut WriteTx<'_>,
        id: &DocId,
        mut incoming: Incoming,
        held: &mut Held,
        defer: bool,
    ) -> Result<Admitted, SyncError> {
        let mut out = Admitted::default();
        let doc = tx.doc(id).await?;
        let owner_before = DocMeta::read(id.clone(), doc).ok().map(|m| m.owner);
        let was_empty = doc.get_heads().is_empty();
        // The owner a new document claims: read from the incoming state.
        let owner = match &owner_before {
            Some(o) => Some(o.clone()),
            None => claimed_owner(id, &incoming),
        };
        let mut accepted_at: Vec<usize> = Vec::new();
        let mut holds_at: Vec<(usize, Hold, Option<ChangeHash>)> = Vec::new();
        // Each change must start its operations right after those of what
        // it depends on, as automerge makes them: one that does not would
        // leave a document that no longer loads once saved.
        {
            let mut max_ops: HashMap<ChangeHash, u64> = HashMap::new();
            for c in &incoming.metas {
                let mut expected = 1;
                let mut known = true;
                for d in &c.deps {
                    let max = match max_ops.get(d) {
                        Some(m) => Some(*m),
                        None => doc.get_change_meta_by_hash(d).map(|m| m.max_op),
                    };
                    match max {
                        Some(m) => expected = expected.max(m + 1),
                        None => known = false,
                    }
                }
                if known && c.start_op != expected && doc.get_change_by_hash(&c.hash).is_none() {
                    return Ok(Admitted {
                        refused: Some(format!(
                            "change {} starts at op {}, not {expected} after its dependencies",
                            c.hash, c.start_op
                        )),
                        ..Admitted::default()
                    });
                }
                if c.max_op < c.start_op {
                    return Ok(Admitted {
                        refused: Some(format!("change {} holds no operations", c.hash)),
                        ..Admitted::default()
                    });
                }
                max_ops.insert(c.hash, c.max_op);
            }
        }
        let rooted = rooted(doc, held, &incoming.metas);
        for (i, c) in incoming.metas.iter().enumerate() {
            let h = c.hash;
            if doc.get_change_by_hash(&h).is_some() {
                out.duplicates += 1;
                continue;
            }
            if !rooted.contains(&h) {
                out.orphans.push(h);
                continue;
            }
            let known = held.get(&h).copied();
            if known == Some(QuarantineState::Discarded) {
                out.known_bad.push(h);
                continue;
            }
            if let Some(dep) = c.deps.iter().find(|d| {
                held.get(d) == Some(&QuarantineState::Held)
                    || held.get(d) == Some(&QuarantineState::Discarded)
            }) {
                if known.is_none() {
                    held.insert(h, QuarantineState::Held);
                    holds_at.push((
                        i,
                        Hold {
                            code: "waits",
                            reason: format!("depends on quarantined change {dep}"),
                            origin: Author::origin(&c.actor),
                        },
                        Some(*dep),
                    ));
                } else {
                    out.known_bad.push(h);
                }
                continue;
            }
            match check(self.tree, self.sender, id, owner.as_ref(), &c.actor, &h) {
                Ok(()) => {
                    // A held change that passes now (it came by a path that
                    // vouches for it) no longer holds back what follows it
                    // in this update.
                    if known.is_some() {
                        held.remove(&h);
                    }
                    accepted_at.push(i);
                }
                Err(hold) => {
                    if known.is_none() {
                        held.insert(h, QuarantineState::Held);
                        holds_at.push((i, hold, None));
                    } else {
                        out.known_bad.push(h);
                    }
                }
            }
        }
        if defer && holds_at.iter().any(|(_, h, _)| h.code == "unknown-unit") {
            for (i, _, _) in &holds_at {
                held.remove(&incoming.metas[*i].hash);
            }
            return Ok(Admitted {
                deferred: true,
                ..Admitted::default()
            });
        }
        // A change that passes but moves the document to an owner its maker
        // holds no authority over is held too: apply, look, and undo.
        let all_passed = holds_at.is_empty() && out.known_bad.is_empty() && out.orphans.is_empty();
        if was_empty && all_passed && !accepted_at.is_empty() && incoming.whole.is_some() {
            let whole = incoming.whole.take().expect("checked");
            *tx.doc(id).await? = whole;
            out.applied = accepted_at.len();
            return Ok(out);
        }
        let picks: Vec<usize> = holds_at.iter().map(|(i, _, _)| *i).collect();
        let mut holds: Vec<(Change, Hold, Option<ChangeHash>)> = incoming
            .take(&picks)
            .into_iter()
            .zip(holds_at)
            .map(|(c, (_, hold, waits))| (c, hold, waits))
            .collect();
        let mut accepted = incoming.take(&accepted_at);
        if !accepted.is_empty() {
            let doc = tx.doc(id).await?;
            if let Err(reason) = apply_guarded(doc, id, &accepted) {
                tx.discard(id);
                return Ok(Admitted {
                    refused: Some(reason),
                    ..Admitted::default()
                });
            }
            let owner_after = DocMeta::read(id.clone(), doc).ok().map(|m| m.owner);
            if let (Some(before), Some(after)) = (&owner_before, &owner_after)
                && before != after
            {
                let moved: Vec<usize> = accepted
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| {
                        check(
                            self.tree,
                            self.sender,
                            id,
                            Some(after),
                            c.actor_id(),
                            &c.hash(),
                        )
                        .is_err()
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !moved.is_empty() {
                    tx.discard(id);
                    let mut keep = Vec::new();
                    for (i, c) in accepted.into_iter().enumerate() {
                        let hold_it =
                            moved.contains(&i) || c.deps().iter().any(|d| held.contains_key(d));
                        if hold_it {
                            let h = c.hash();
                            held.insert(h, QuarantineState::Held);
                            let origin = Author::origin(c.actor_id());
                            let reason = format!(
                                "moves {id} from unit {before} to unit {after}, outside its maker's authority"
                            );
                            holds.push((
                                c,
                                Hold {
                                    code: "not-authorised",
                                    reason,
                                    origin,
                                },
                                None,
                            ));
                        } else {
                            keep.push(c);
                        }
                    }
                    accepted = keep;
                    let doc = tx.doc(id).await?;
                    if let Err(reason) = apply_guarded(doc, id, &accepted) {
                        tx.discard(id);
                        return Ok(Admitted {
                            refused: Some(reason),
                            ..Admitted::default()
                        });
                    }
                }
            }
        }
        out.applied = accepted.len();
        for (c, hold, waits_for) in holds {
            let origin = hold.origin.clone();
            let entry = NewQuarantine {
                doc: id.clone(),
                hash: c.hash(),
                origin_node: origin.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
                origin_unit: origin
                    .as_ref()
                    .map(|o| o.unit.to_string())
                    .unwrap_or_default(),
                peer_node: self.sender.node.clone(),
                peer_unit: self.sender.unit.to_string(),
                code: hold.code.to_owned(),
                reason: hold.reason.clone(),
                waits_for,
                change: c.raw_bytes().to_vec(),
            };
            if tx.quarantine(&entry, self.now).await? {
                tracing::warn!(
                    peer = %self.sender.node,
                    doc = %id,
                    change = %c.hash(),
                    code = hold.code,
                    reason = %hold.reason,
                    "change quarantined"
                );
                out.quarantined.push(c.hash());
            } else {
                out.known_bad.push(c.hash());
            }
        }
        Ok(out)
    }
}

/// The incoming changes whose whole history is at hand: every dependency
/// is in the document, held in quarantine (applied or not, it is known
/// here), or itself such a change of the payload. Only those are judged.
///
/// A held change is what the ack reports as known, and the sender then
/// sends only what follows it; so a change may be held only with its
/// whole past here. (A change that came after a lost batch, with the
/// changes it builds on missing, was held as known: the sender never sent
/// those again, and the document never left its node; simulation seed
/// 100260.) The payload's own order does not matter: changes are taken
/// in dependency order (Kahn's algorithm), so a crafted payload out of
/// order costs linear time, and a cycle roots nothing.
fn rooted(doc: &Automerge, held: &Held, metas: &[Meta]) -> HashSet<ChangeHash> {
    let index: HashMap<ChangeHash, usize> =
        metas.iter().enumerate().map(|(i, c)| (c.hash, i)).collect();
    let mut waiting = vec![0usize; metas.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); metas.len()];
    let mut ready = Vec::new();
    for (i, c) in metas.iter().enumerate() {
        let mut lost = false;
        for d in &c.deps {
            match index.get(d) {
                Some(&j) => {
                    waiting[i] += 1;
                    dependents[j].push(i);
                }
                None => lost |= !held.contains_key(d) && doc.get_change_by_hash(d).is_none(),
            }
        }
        if lost {
            // Never ready: what depends on it is not rooted either.
            waiting[i] = usize::MAX;
        } else if waiting[i] == 0 {
            ready.push(i);
        }
    }
    let mut ok = HashSet::with_capacity(metas.len());
    while let Some(i) = ready.pop() {
        ok.insert(metas[i].hash);
        for &k in &dependents[i] {
            if waiting[k] != usize::MAX {
                waiting[k] -= 1;
                if waiting[k] == 0 {
                    ready.push(k);
                }
            }
        }
    }
    ok
}

impl Gate<'_> {
    /// The held and discarded changes of document `id` that count as
    /// known here *to this sender*: what the ack may name as quarantined,
    /// and what the sender's heads may name without the update being
    /// incomplete.
    ///
    /// A held change that this sender could deliver is not known to it:
    /// a campaign a district relayed up while on its fallback link is held
    /// at the national node (`outside-sender`), and when the province, its
    /// own path, names it among its heads the national node must ask for
    /// it, not take it as had. Counting it as had let the national node
    /// acknowledge the province's feed past the campaign, which then never
    /// came (simulation seed 303444). So a held change is *owed* by the
    /// sender when it passes the rule from this sender, or builds on a
    /// change that is owed; the others (and discarded ones) are known.
    /// `just_held` are the changes this very update brought and the gate
    /// held: judged from this sender already, they are not owed on their
    /// own account (else a change held for another reason would be asked
    /// for again and again).
    pub async fn known_held(
        &self,
        tx: &mut WriteTx<'_>,
        id: &DocId,
        held: &Held,
        just_held: &[ChangeHash],
    ) -> Result<HashSet<ChangeHash>, SyncError> {
        let mut known: HashSet<ChangeHash> = held
            .iter()
            .filter(|(_, s)| **s != QuarantineState::Held)
            .map(|(h, _)| *h)
            .collect();
        if known.len() == held.len() {
            return Ok(known);
        }
        let entries = tx.quarantine_held(id).await?;
        let doc = tx.doc(id).await?;
        let owner = DocMeta::read(id.clone(), doc)
            .ok()
            .map(|m| m.owner)
            .or_else(|| id.owner_from_id().cloned());
        // Each held change: whether it passes from this sender, and what it
        // builds on that is held too.
        let mut nodes: HashMap<ChangeHash, (bool, Vec<ChangeHash>)> = HashMap::new();
        for e in &entries {
            let change = entry_change(e);
            let passes = !just_held.contains(&e.hash)
                && e.code != "refused"
                && change.as_ref().is_some_and(|c| {
                    check(
                        self.tree,
                        self.sender,
                        id,
                        owner.as_ref(),
                        c.actor_id(),
                        &e.hash,
                    )
                    .is_ok()
                });
            let deps = change.map(|c| c.deps().to_vec()).unwrap_or_default();
            nodes.insert(e.hash, (passes, deps));
        }
        // Owed: passes, or builds on an owed change. Depth first, without
        // recursion (chains of held changes can be long).
        let mut owed: HashMap<ChangeHash, bool> = HashMap::new();
        for start in nodes.keys() {
            let mut stack = vec![(*start, false)];
            while let Some((h, expanded)) = stack.pop() {
                if owed.contains_key(&h) {
                    continue;
                }
                let (passes, deps) = &nodes[&h];
                if *passes {
                    owed.insert(h, true);
                    continue;
                }
                let mut held_deps = deps.iter().filter(|d| nodes.contains_key(*d));
                if expanded {
                    // Its held dependencies were decided before it.
                    let any = held_deps.any(|d| owed.get(d) == Some(&true));
                    owed.insert(h, any);
                    continue;
                }
                stack.push((h, true));
                stack.extend(
                    held_deps
                        .filter(|d| !owed.contains_key(*d))
                        .map(|d| (*d, false)),
                );
            }
        }
        known.extend(
            held.iter()
                .filter(|(h, s)| **s == QuarantineState::Held && owed.get(*h) != Some(&true))
                .map(|(h, _)| *h),
        );
        Ok(known)
    }
}

/// The owner a document that is new here claims in the incoming changes.
fn claimed_owner(id: &DocId, incoming: &Incoming) -> Option<UnitId> {
    if let Some(u) = id.owner_from_id() {
        return Some(u.clone());
    }
    if let Some(whole) = &incoming.whole {
        return DocMeta::read(id.clone(), whole).ok().map(|m| m.owner);
    }
    let mut scratch = Automerge::new();
    guarded(|| scratch.apply_changes(incoming.changes.iter().cloned()))
        .ok()?
        .ok()?;
    DocMeta::read(id.clone(), &scratch).ok().map(|m| m.owner)
}

/// Goes over the held changes of one document after it changed: a change
/// that is now here (it came by another path) is marked released, and a
/// change that waited for it is checked in its own right and applied if
/// it passes. Returns how many changes it applied.
pub async fn settle(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    now: i64,
) -> Result<usize, SyncError> {
    settle_with(tx, tree, me, id, now, false).await
}

/// After the unit tree changed: every held change is checked again, and
/// those that pass now (their maker's unit arrived after them, say) are
/// applied. Runs in its own transaction.
pub async fn settle_all(store: &Store, me: &UnitId, now: i64) -> Result<usize, SyncError> {
    let docs = store.quarantine_held_docs(10_000).await?;
    if docs.is_empty() {
        return Ok(0);
    }
    let mut tree = store.tree();
    let mut tx = store.begin().await?;
    let mut n = 0;
    // Unit records released here let further changes pass: go round
    // until a round releases nothing.
    loop {
        let mut progress = false;
        for id in &docs {
            let applied = settle_with(&mut tx, &tree, me, id, now, true).await?;
            if applied > 0 {
                n += applied;
                progress = true;
                if let DocId::Unit(_) = id
                    && let Ok(unit) = hopluu_model::unit::read(id, tx.doc(id).await?)
                {
                    std::sync::Arc::make_mut(&mut tree).upsert_unit(&unit);
                }
            }
        }
        if !progress {
            break;
        }
    }
    drop(tree);
    tx.commit().await?;
    if n > 0 {
        tracing::info!(
            changes = n,
            "held changes passed the gate after the unit tree changed"
        );
    }
    Ok(n)
}

async fn settle_with(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    now: i64,
    all: bool,
) -> Result<usize, SyncError> {
    let mut applied = 0;
    loop {
        let entries = tx.quarantine_held(id).await?;
        let mut progress = false;
        for e in entries {
            let doc = tx.doc(id).await?;
            if doc.get_change_by_hash(&e.hash).is_some() {
                tx.quarantine_decide(id, &e.hash, QuarantineState::Released, "arrived", now)
                    .await?;
                progress = true;
                continue;
            }
            if (e.code != "waits" && !all) || e.code == "refused" {
                continue;
            }
            let Some(change) = entry_change(&e) else {
                continue;
            };
            if change
                .deps()
                .iter()
                .any(|d| doc.get_change_by_hash(d).is_none())
            {
                continue;
            }
            let sender = sender_of(tree, me, &e);
            let owner = DocMeta::read(id.clone(), doc).ok().map(|m| m.owner);
            match check(
                tree,
                &sender,
                id,
                owner.as_ref(),
                change.actor_id(),
                &e.hash,
            ) {
                Ok(()) => {
                    if let Err(reason) =
                        apply_held(tx, id, change, &e.hash, "dependency released", now).await?
                    {
                        // Held for good: automerge cannot apply it.
                        tx.quarantine_recode(id, &e.hash, "refused", &reason)
                            .await?;
                        continue;
                    }
                    applied += 1;
                    progress = true;
                }
                Err(hold) => {
                    if hold.code != e.code || hold.reason != e.reason {
                        tx.quarantine_recode(id, &e.hash, hold.code, &hold.reason)
                            .await?;
                    }
                }
            }
        }
        if !progress {
            return Ok(applied);
        }
    }
}

fn entry_change(e: &QuarantineEntry) -> Option<Change> {
    Change::try_from(e.change.as_deref()?).ok()
}

/// The sender of a quarantined change, as it was when it came.
fn sender_of(tree: &UnitTree, me: &UnitId, e: &QuarantineEntry) -> Sender {
    let unit = UnitId::parse("peer_unit", &e.peer_unit).unwrap_or_else(|_| me.clone());
    Sender {
        node: e.peer_node.clone(),
        is_child: unit != *me && tree.is_within(&unit, me),
        unit,
    }
}

/// Whether a private roster may be held here at all: only at or below the
/// configured level, and only inside this node's subtree. `None` while
/// that cannot be told yet: this node's own place in the tree (its depth)
/// or the roster's owner unit has not arrived. Such an update waits (the
/// sender sends it again), where a refusal would be for good: a grassroots
/// node that judged its depth before its ancestors' records came refused
/// its own private roster, and the sender's checkpoint moved past it
/// (simulation seed 302977).
pub fn private_allowed(
    tree: &UnitTree,
    me: &UnitId,
    id: &DocId,
    private_depth: usize,
) -> Option<bool> {
    if id.kind() != DocKind::RosterPrivate {
        return Some(true);
    }
    let owner = id.owner_from_id()?;
    if !tree.is_rooted(me) {
        return None;
    }
    if tree.depth(me) < private_depth {
        return Some(false);
    }
    if tree.is_within(owner, me) {
        return Some(true);
    }
    // Not (yet) below this node: certain only once the owner's own place
    // is known.
    tree.is_rooted(owner).then_some(false)
}

/// Applies a held change on an administrator's word (`by`), then whatever
/// waited on it and now passes. Returns the changes applied.
pub async fn release(
    tx: &mut WriteTx<'_>,
    tree: &UnitTree,
    me: &UnitId,
    entry: &QuarantineEntry,
    by: &str,
    now: i64,
) -> Result<usize, SyncError> {
    let id = DocId::parse("doc_id", &entry.doc)
        .map_err(|e| SyncError::Link(format!("quarantine entry {}: {e}", entry.id)))?;
    let change = entry_change(entry)
        .ok_or_else(|| SyncError::Link(format!("quarantine entry {} holds no change", entry.id)))?;
    let doc = tx.doc(&id).await?;
    if let Some(missing) = change
        .deps()
        .iter()
        .find(|d| doc.get_change_by_hash(d).is_none())
    {
        return Err(SyncError::Link(format!(
            "quarantine entry {} depends on change {missing}, which is not here: release that first",
            entry.id
        )));
    }
    apply_held(tx, &id, change, &entry.hash, by, now)
        .await?
        .map_err(SyncError::Link)?;
    Ok(1 + settle(tx, tree, me, &id, now).await?)
}

/// Applies a held change whose dependencies are here and marks it
/// released, `why` recorded as the decision. `Ok(Err(reason))` when
/// automerge refuses it: the document is dropped from the transaction's
/// cache, so nothing of the attempt is written.
async fn apply_held(
    tx: &mut WriteTx<'_>,
    id: &DocId,
    change: Change,
    hash: &ChangeHash,
    why: &str,
    now: i64,
) -> Result<Result<(), String>, SyncError> {
    if let Err(reason) = apply_guarded(tx.doc(id).await?, id, &[change]) {
        tx.discard(id);
        return Ok(Err(reason));
    }
    tx.quarantine_decide(id, hash, QuarantineState::Released, why, now)
        .await?;
    Ok(Ok(()))
}

/// Discards a held change and every change that waits on it.
pub async fn discard(
    tx: &mut WriteTx<'_>,
    entry: &QuarantineEntry,
    by: &str,
    now: i64,
) -> Result<usize, SyncError> {
    let id = DocId::parse("doc_id", &entry.doc)
        .map_err(|e| SyncError::Link(format!("quarantine entry {}: {e}", entry.id)))?;
    let mut gone = vec![entry.hash];
    let mut n = 0;
    while let Some(h) = gone.pop() {
        if tx
            .quarantine_decide(&id, &h, QuarantineState::Discarded, by, now)
            .await?
        {
            n += 1;
        }
        for e in tx.quarantine_held(&id).await? {
            if e.waits_for == Some(h) {
                gone.push(e.hash);
            }
        }
    }
    Ok(n)
}
