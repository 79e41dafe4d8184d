//! The admit pipeline: one update's changes judged against the rule,
//! what passes applied to the document, the rest quarantined with what
//! depends on it.

use std::collections::{HashMap, HashSet};

use automerge::{Automerge, Change, ChangeHash};
use hopluu_model::{Author, DocId, DocMeta, UnitId, UnitTree, shape};
use hopluu_store::WriteTx;
use hopluu_store::decisions::SealHeads;
use hopluu_store::quarantine::{NewQuarantine, QuarantineState};

use super::guard::{apply_guarded, guarded};
use super::payload::{Incoming, Meta};
use super::policy::{Covered, Hold, Sender, check, check_sealed};
use super::quarantine::entry_change;
use crate::SyncError;

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

/// A change the gate holds back from this update, before it is stored.
struct Withheld {
    change: Change,
    hold: Hold,
    /// The quarantined change it waits for (code `waits`).
    waits_for: Option<ChangeHash>,
}

/// How the gate judged each change of one update, by index into the
/// payload's changes; nothing is applied or stored yet.
#[derive(Debug, Default)]
struct Verdicts {
    /// Changes that pass the rule.
    accepted: Vec<usize>,
    /// Changes newly held, with why and what they wait for.
    holds: Vec<(usize, Hold, Option<ChangeHash>)>,
    duplicates: usize,
    orphans: Vec<ChangeHash>,
    known_bad: Vec<ChangeHash>,
}

impl Verdicts {
    fn all_passed(&self) -> bool {
        self.holds.is_empty() && self.known_bad.is_empty() && self.orphans.is_empty()
    }

    fn names_unknown_unit(&self) -> bool {
        self.holds.iter().any(|(_, h, _)| h.code == "unknown-unit")
    }
}

impl Admitted {
    fn refused(reason: String) -> Admitted {
        Admitted {
            refused: Some(reason),
            ..Admitted::default()
        }
    }
}

impl Gate<'_> {
    /// Checks `incoming` and applies what passes to the document `id` open
    /// in `tx`; quarantines the rest, with what depends on it.
    ///
    /// With `defer`, an update that names a unit this node does not know
    /// is left untouched ([`Admitted::deferred`]) for the caller to offer
    /// again once more unit records are in. Changes `sealed` vouches for
    /// (the document's heads a reorganisation decision or an old host
    /// recorded, [`Covered`]) pass the authority rule: their makers held
    /// authority when they made them.
    pub async fn admit(
        &self,
        tx: &mut WriteTx<'_>,
        id: &DocId,
        mut incoming: Incoming,
        held: &mut Held,
        sealed: &[SealHeads],
        defer: bool,
    ) -> Result<Admitted, SyncError> {
        let doc = tx.doc(id).await?;
        let owner_before = DocMeta::read(id.clone(), doc).ok().map(|m| m.owner);
        let was_empty = doc.get_heads().is_empty();
        // The owner a new document claims: read from the incoming state.
        let owner = match &owner_before {
            Some(o) => Some(o.clone()),
            None => claimed_owner(id, &incoming),
        };
        if let Err(reason) = check_op_counters(doc, &incoming.metas) {
            return Ok(Admitted::refused(reason));
        }
        let covered = Covered::of(
            sealed,
            incoming.metas.iter().map(|m| (m.hash, m.deps.as_slice())),
        );
        let verdicts = self.judge(doc, id, owner.as_ref(), &incoming.metas, held, &covered);
        if defer && verdicts.names_unknown_unit() {
            for (i, _, _) in &verdicts.holds {
                held.remove(&incoming.metas[*i].hash);
            }
            return Ok(Admitted {
                deferred: true,
                ..Admitted::default()
            });
        }
        let all_passed = verdicts.all_passed();
        let Verdicts {
            accepted: accepted_at,
            holds: holds_at,
            duplicates,
            orphans,
            known_bad,
        } = verdicts;
        let mut out = Admitted {
            duplicates,
            orphans,
            known_bad,
            ..Admitted::default()
        };
        // A document new here that passes whole is taken as it came,
        // without applying its history change by change.
        // (Unless it is misshapen: then it is applied change by change,
        // and what is misshapen held.)
        // What checking it read is handed to the store, which projects it
        // instead of reading the document again.
        if was_empty
            && all_passed
            && !accepted_at.is_empty()
            && let Some(whole) = incoming.whole.take()
        {
            match incoming.take_checked(id, &whole) {
                Ok(read) => {
                    let saved = std::mem::take(&mut incoming.saved);
                    tx.adopt(id, whole, saved, read).await?;
                    out.applied = accepted_at.len();
                    return Ok(out);
                }
                _ => incoming.whole = Some(whole),
            }
        }
        let picks: Vec<usize> = holds_at.iter().map(|(i, _, _)| *i).collect();
        let mut holds: Vec<Withheld> = incoming
            .take(&picks)
            .into_iter()
            .zip(holds_at)
            .map(|(change, (_, hold, waits_for))| Withheld {
                change,
                hold,
                waits_for,
            })
            .collect();
        let accepted = incoming.take(&accepted_at);
        match self
            .apply_passed(tx, id, owner_before.as_ref(), accepted, held, &mut holds)
            .await?
        {
            Ok(applied) => out.applied = applied,
            Err(reason) => return Ok(Admitted::refused(reason)),
        }
        self.store_holds(tx, id, holds, &mut out).await?;
        Ok(out)
    }

    /// Judges each change of the payload in turn: already here, orphaned,
    /// known bad, waiting on a quarantined change, or checked against the
    /// rule. A change held here is entered in `held` at once, so that what
    /// depends on it later in the payload waits for it; one held before
    /// that passes now (it came by a path that vouches for it) leaves
    /// `held`.
    fn judge(
        &self,
        doc: &Automerge,
        id: &DocId,
        owner: Option<&UnitId>,
        metas: &[Meta],
        held: &mut Held,
        covered: &Covered,
    ) -> Verdicts {
        let mut v = Verdicts::default();
        let rooted = rooted(doc, held, metas);
        for (i, c) in metas.iter().enumerate() {
            let h = c.hash;
            if hopluu_model::am::knows(doc, &h) {
                v.duplicates += 1;
                continue;
            }
            if !rooted.contains(&h) {
                v.orphans.push(h);
                continue;
            }
            let known = held.get(&h).copied();
            if known == Some(QuarantineState::Discarded) {
                v.known_bad.push(h);
                continue;
            }
            if let Some(dep) = c.deps.iter().find(|d| {
                held.get(d) == Some(&QuarantineState::Held)
                    || held.get(d) == Some(&QuarantineState::Discarded)
            }) {
                if known.is_none() {
                    held.insert(h, QuarantineState::Held);
                    v.holds.push((
                        i,
                        Hold {
                            code: "waits",
                            reason: format!("depends on quarantined change {dep}"),
                            origin: Author::origin(&c.actor),
                        },
                        Some(*dep),
                    ));
                } else {
                    v.known_bad.push(h);
                }
                continue;
            }
            match check_sealed(self.tree, self.sender, id, owner, &c.actor, &h, covered) {
                Ok(()) => {
                    // A held change that passes now no longer holds back
                    // what follows it in this update.
                    if known.is_some() {
                        held.remove(&h);
                    }
                    v.accepted.push(i);
                }
                Err(hold) => {
                    if known.is_none() {
                        held.insert(h, QuarantineState::Held);
                        v.holds.push((i, hold, None));
                    } else {
                        v.known_bad.push(h);
                    }
                }
            }
        }
        v
    }

    /// Applies the changes that passed the rule. A change that passes but
    /// moves the document to an owner its maker holds no authority over is
    /// held too: apply, look, and undo (the document is dropped from the
    /// transaction and the rest applied again). Returns how many changes
    /// were applied, or why automerge refused the update.
    async fn apply_passed(
        &self,
        tx: &mut WriteTx<'_>,
        id: &DocId,
        owner_before: Option<&UnitId>,
        mut accepted: Vec<Change>,
        held: &mut Held,
        holds: &mut Vec<Withheld>,
    ) -> Result<Result<usize, String>, SyncError> {
        if accepted.is_empty() {
            return Ok(Ok(0));
        }
        let doc = tx.doc(id).await?;
        let heads_before = doc.get_heads();
        if let Err(reason) = apply_guarded(doc, id, &accepted) {
            tx.discard(id);
            return Ok(Err(reason));
        }
        // The shape of the document's kind: checked on all of it at once;
        // should anything be misshapen, again change by change, holding
        // the misshapen ones (and what builds on them).
        if !guarded(|| shape::check(id, doc, &heads_before)).is_ok_and(|r| r.is_ok()) {
            tx.discard(id);
            let doc = tx.doc(id).await?;
            match apply_shaped(doc, id, accepted, held, holds) {
                Ok(kept) => accepted = kept,
                Err(reason) => {
                    tx.discard(id);
                    return Ok(Err(reason));
                }
            }
        }
        let doc = tx.doc(id).await?;
        let owner_after = DocMeta::read(id.clone(), doc).ok().map(|m| m.owner);
        let (Some(before), Some(after)) = (owner_before, &owner_after) else {
            return Ok(Ok(accepted.len()));
        };
        if before == after {
            return Ok(Ok(accepted.len()));
        }
        let moved = self.outside_owner(id, after, &accepted);
        if moved.is_empty() {
            return Ok(Ok(accepted.len()));
        }
        tx.discard(id);
        accepted = hold_moved(id, before, after, accepted, &moved, held, holds);
        let doc = tx.doc(id).await?;
        if let Err(reason) = apply_guarded(doc, id, &accepted) {
            tx.discard(id);
            return Ok(Err(reason));
        }
        Ok(Ok(accepted.len()))
    }

    /// The changes among `accepted` (by index) whose maker holds no
    /// authority over the document once it is owned by `owner`.
    fn outside_owner(&self, id: &DocId, owner: &UnitId, accepted: &[Change]) -> Vec<usize> {
        accepted
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                check(
                    self.tree,
                    self.sender,
                    id,
                    Some(owner),
                    c.actor_id(),
                    &c.hash(),
                )
                .is_err()
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Stores the changes held back from this update in the quarantine,
    /// noting in `out` which are new entries and which were there already.
    async fn store_holds(
        &self,
        tx: &mut WriteTx<'_>,
        id: &DocId,
        holds: Vec<Withheld>,
        out: &mut Admitted,
    ) -> Result<(), SyncError> {
        for Withheld {
            change: c,
            hold,
            waits_for,
        } in holds
        {
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
                made_at: hopluu_model::doc::change_time_millis(c.timestamp()),
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
        Ok(())
    }
}

/// Applies `accepted` to `doc` one change at a time, in dependency order,
/// each tried on a copy of the document and checked against the shape of
/// the document's kind ([`shape::check`]) first. One that fails is held
/// (`invalid-value`, naming the field and the reason), and every change
/// that builds on it waits for it. Returns the changes applied, or why
/// automerge refused one.
fn apply_shaped(
    doc: &mut Automerge,
    id: &DocId,
    accepted: Vec<Change>,
    held: &mut Held,
    holds: &mut Vec<Withheld>,
) -> Result<Vec<Change>, String> {
    let mut applied = Vec::new();
    let mut bad: HashSet<ChangeHash> = HashSet::new();
    let mut left = accepted;
    while !left.is_empty() {
        let ready = left.iter().position(|c| {
            c.deps()
                .iter()
                .all(|d| hopluu_model::am::knows(doc, d) || bad.contains(d))
        });
        let Some(i) = ready else {
            // What is left depends on something not here: automerge
            // queues it, as it would have in one batch.
            apply_guarded(doc, id, &left)?;
            applied.extend(left);
            break;
        };
        let c = left.remove(i);
        let h = c.hash();
        let origin = Author::origin(c.actor_id());
        if let Some(dep) = c.deps().iter().find(|d| bad.contains(*d)).copied() {
            bad.insert(h);
            held.insert(h, QuarantineState::Held);
            holds.push(Withheld {
                change: c,
                hold: Hold {
                    code: "waits",
                    reason: format!("depends on quarantined change {dep}"),
                    origin,
                },
                waits_for: Some(dep),
            });
            continue;
        }
        let before = doc.get_heads();
        let mut trial = doc.fork();
        apply_guarded(&mut trial, id, std::slice::from_ref(&c))?;
        match guarded(|| shape::check(id, &trial, &before)) {
            Ok(Ok(())) => {
                *doc = trial;
                applied.push(c);
            }
            Ok(Err(e)) => {
                bad.insert(h);
                held.insert(h, QuarantineState::Held);
                holds.push(Withheld {
                    change: c,
                    hold: Hold {
                        code: "invalid-value",
                        reason: e.to_string(),
                        origin,
                    },
                    waits_for: None,
                });
            }
            Err(e) => return Err(format!("{id}: {e}")),
        }
    }
    Ok(applied)
}

/// Each change must start its operations right after those of what it
/// depends on, as automerge makes them: one that does not would leave a
/// document that no longer loads once saved. A change already in `doc` is
/// not judged again; one whose dependencies are not all known is judged
/// on what is.
fn check_op_counters(doc: &Automerge, metas: &[Meta]) -> Result<(), String> {
    let mut max_ops: HashMap<ChangeHash, u64> = HashMap::new();
    for c in metas {
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
        if known && c.start_op != expected && !hopluu_model::am::knows(doc, &c.hash) {
            return Err(format!(
                "change {} starts at op {}, not {expected} after its dependencies",
                c.hash, c.start_op
            ));
        }
        if c.max_op < c.start_op {
            return Err(format!("change {} holds no operations", c.hash));
        }
        max_ops.insert(c.hash, c.max_op);
    }
    Ok(())
}

/// Splits `accepted` after an owner change: the changes at `moved`, and
/// those that build on a held change (including one held just now), join
/// `holds`; the rest are returned to be applied.
fn hold_moved(
    id: &DocId,
    before: &UnitId,
    after: &UnitId,
    accepted: Vec<Change>,
    moved: &[usize],
    held: &mut Held,
    holds: &mut Vec<Withheld>,
) -> Vec<Change> {
    let mut keep = Vec::new();
    for (i, c) in accepted.into_iter().enumerate() {
        let hold_it = moved.contains(&i) || c.deps().iter().any(|d| held.contains_key(d));
        if hold_it {
            let h = c.hash();
            held.insert(h, QuarantineState::Held);
            let origin = Author::origin(c.actor_id());
            let reason = format!(
                "moves {id} from unit {before} to unit {after}, outside its maker's authority"
            );
            holds.push(Withheld {
                change: c,
                hold: Hold {
                    code: "not-authorised",
                    reason,
                    origin,
                },
                waits_for: None,
            });
        } else {
            keep.push(c);
        }
    }
    keep
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
                None => lost |= !held.contains_key(d) && !hopluu_model::am::knows(doc, d),
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

#[cfg(test)]
mod tests;
