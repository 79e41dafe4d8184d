//! Reading a peer's automerge payload into what the gate judges: each
//! chunk decoded and verified on its own, bundles and unknown chunk types
//! refused, before any of it reaches a document.

use std::collections::HashMap;

use automerge::{ActorId, Automerge, Change, ChangeHash};
use hopluu_model::{DocId, shape};

use super::guard::guarded;

/// [`shape::check_whole`], guarded: what it read, or `Err` if the
/// document is misshapen (or automerge fails on it).
fn check_whole(id: &DocId, whole: &Automerge) -> Result<Option<shape::Read>, ()> {
    guarded(|| shape::check_whole(id, whole))
        .ok()
        .and_then(Result::ok)
        .ok_or(())
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
    pub(super) metas: Vec<Meta>,
    /// The changes, index for index with `metas`; empty for a whole
    /// document until they are needed (a whole document that passes is
    /// taken as it is, and never split into changes).
    pub(super) changes: Vec<Change>,
    pub(super) whole: Option<Automerge>,
    /// The bytes `whole` was loaded from (the payload: one document
    /// chunk), stored as it is if the document is taken whole.
    pub(super) saved: Vec<u8>,
    /// The shape check of `whole`, made ahead ([`Incoming::check_ahead`]):
    /// what it read, or `Err` if `whole` is misshapen.
    pub(super) checked: Option<Result<Option<shape::Read>, ()>>,
}

pub(super) struct Meta {
    pub(super) hash: ChangeHash,
    pub(super) actor: ActorId,
    pub(super) deps: Vec<ChangeHash>,
    pub(super) start_op: u64,
    pub(super) max_op: u64,
}

impl Meta {
    pub(super) fn of(c: &Change) -> Meta {
        Meta {
            hash: c.hash(),
            actor: c.actor_id().clone(),
            deps: c.deps().to_vec(),
            start_op: c.start_op().get(),
            max_op: c.max_op(),
        }
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
                // One piece: the chunk is all of the payload.
                saved: data.to_vec(),
                checked: None,
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
            saved: Vec::new(),
            checked: None,
        })
    }

    /// Checks a whole document against the shape of `id`'s kind now, so
    /// that the gate need not when it takes the document (the check reads
    /// every value of it, and needs nothing the gate holds: it can run
    /// before the writer lock, beside other documents' checks).
    pub fn check_ahead(&mut self, id: &DocId) {
        if let Some(whole) = &self.whole {
            self.checked = Some(check_whole(id, whole));
        }
    }

    /// Whether this is a whole document (as a first sync sends it).
    pub fn is_whole(&self) -> bool {
        self.whole.is_some()
    }

    /// Whether the whole document was checked ahead, and if so whether it
    /// passed.
    #[cfg(test)]
    pub(crate) fn checked_ahead(&self) -> Option<bool> {
        self.checked.as_ref().map(Result::is_ok)
    }

    /// The shape check of the whole document: made ahead, or made now.
    pub(super) fn take_checked(
        &mut self,
        id: &DocId,
        whole: &Automerge,
    ) -> Result<Option<shape::Read>, ()> {
        self.checked
            .take()
            .unwrap_or_else(|| check_whole(id, whole))
    }

    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// The changes at `picks` (indexes into `metas`), splitting a whole
    /// document into changes if that is what came.
    pub(super) fn take(&mut self, picks: &[usize]) -> Vec<Change> {
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

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    use super::{Incoming, leb128, split};

    /// A document with `n` changes, one after the other.
    fn doc_with(n: i64) -> Automerge {
        let mut doc = Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            tx.put(ROOT, "k", i).unwrap();
            tx.commit();
        }
        doc
    }

    fn change_bytes(doc: &Automerge) -> Vec<Vec<u8>> {
        doc.get_changes(&[])
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    #[test]
    fn leb128_reads_what_it_may_and_no_more() {
        assert_eq!(leb128(&[0x05]), Some((5, 1)));
        assert_eq!(leb128(&[0x80, 0x01, 0xff]), Some((128, 2)));
        assert_eq!(leb128(&[]), None);
        // Never terminated within ten bytes.
        assert_eq!(leb128(&[0x80; 12]), None);
    }

    #[test]
    fn concatenated_change_chunks_decode_in_order() {
        let doc = doc_with(3);
        let chunks = change_bytes(&doc);
        let data: Vec<u8> = chunks.concat();
        let incoming = Incoming::decode(&data, 10).unwrap();
        assert_eq!(incoming.len(), 3);
        assert!(incoming.whole.is_none());
        let want: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
        let got: Vec<_> = incoming.metas.iter().map(|m| m.hash).collect();
        assert_eq!(got, want);
        assert_eq!(incoming.metas[1].deps, vec![want[0]]);
    }

    #[test]
    fn a_saved_document_is_kept_whole() {
        let doc = doc_with(2);
        let incoming = Incoming::decode(&doc.save(), 10).unwrap();
        assert_eq!(incoming.len(), 2);
        assert!(incoming.whole.is_some());
        assert!(incoming.changes.is_empty(), "not split until needed");
    }

    #[test]
    fn too_many_changes_refuse_the_payload() {
        let doc = doc_with(3);
        let err = Incoming::decode(&change_bytes(&doc).concat(), 2)
            .err()
            .unwrap();
        assert_eq!(err, "more than 2 changes in one update");
        let err = Incoming::decode(&doc.save(), 2).err().unwrap();
        assert_eq!(err, "more than 2 changes in one update");
    }

    #[test]
    fn crafted_chunks_are_refused_with_their_offset() {
        let doc = doc_with(2);
        let chunks = change_bytes(&doc);
        let first = chunks[0].len();

        let mut bad_magic = chunks.concat();
        bad_magic[first] ^= 0xff;
        assert_eq!(
            split(&bad_magic).err().unwrap(),
            format!("not an automerge chunk at byte {first}")
        );

        let mut truncated = chunks.concat();
        truncated.pop();
        assert_eq!(
            split(&truncated).err().unwrap(),
            format!("truncated chunk at byte {first}")
        );

        assert_eq!(
            split(&chunks[0][..5]).err().unwrap(),
            "truncated chunk header at byte 0"
        );

        let mut bundle = chunks[0].clone();
        bundle[8] = 3;
        assert_eq!(
            split(&bundle).err().unwrap(),
            "chunk type 3 is not accepted"
        );

        let mut corrupt = chunks[0].clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x01;
        let err = split(&corrupt).err().unwrap();
        assert!(err.starts_with("bad change chunk: "), "{err}");
    }
}
