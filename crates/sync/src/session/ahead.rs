//! Work on a received batch that needs nothing the writer lock guards,
//! done before taking it: each update's payload decoded, and each whole
//! document checked against the shape of its kind, on the blocking pool,
//! several updates at once. Decoding a roster and reading it whole is most
//! of what receiving it costs; done under the lock, one session's batch at
//! a time, it left every other core idle while a province's first sync
//! came in.

use std::sync::Arc;

use hopluu_model::{DocId, UnitId, UnitTree};
use hopluu_store::Store;
use hopluu_store::fetch::Fetched;
use hopluu_store::tx::Loaded;

use super::payload_len;
use super::receive::{Decoded, decode_update};
use crate::SyncError;
use crate::frame::DocUpdate;
use crate::gate;

/// What decoding ahead needs to know of this node.
pub(super) struct Ahead {
    pub(super) tree: Arc<UnitTree>,
    pub(super) unit: UnitId,
    pub(super) private_depth: usize,
    pub(super) max_changes: usize,
    pub(super) max_bytes: usize,
    /// Payload bytes of a batch decoded ahead at most: what is decoded
    /// waits, decoded, for the writer (a roster decoded is some 60 times
    /// its bytes, and read whole more again); the rest of the batch is
    /// decoded by the gate, one update at a time, as it judges it.
    pub(super) budget: usize,
}

/// An update dealt to a lane: its place in the batch, its document, and
/// whether to decode it there.
type Lane = (usize, DocUpdate, Option<DocId>, bool);

/// [`Ahead::budget`] as the node sets it.
pub(super) const READ_AHEAD_BYTES: usize = 384 << 10;

impl Ahead {
    /// Whether the update is worth decoding now: its id is valid, its
    /// size within the limit, and it is no private roster this node
    /// refuses to hold (those are refused unread, as before).
    fn wanted(&self, u: &DocUpdate, id: Option<&DocId>) -> bool {
        id.is_some_and(|id| {
            payload_len(&u.payload) <= self.max_bytes
                && gate::private_allowed(&self.tree, &self.unit, id, self.private_depth)
                    != Some(false)
        })
    }

    /// Decodes what is wanted of `docs` (and checks the shape of every
    /// whole document), spread over `lanes` tasks on the blocking pool.
    /// Returns the updates as they came and, index for index, what was
    /// decoded (`None`: left for the gate to decode when it gets there).
    pub(super) async fn decode(
        self: Arc<Self>,
        docs: Vec<DocUpdate>,
        ids: &[Option<DocId>],
        lanes: usize,
    ) -> Result<(Vec<DocUpdate>, Vec<Option<Decoded>>), SyncError> {
        let n = docs.len();
        let lanes = lanes.clamp(1, n.max(1));
        let mut work: Vec<Vec<Lane>> = (0..lanes).map(|_| Vec::new()).collect();
        // Dealt round robin: a batch's large rosters are spread, not
        // left to one lane.
        let mut spent = 0usize;
        for (i, (u, id)) in docs.into_iter().zip(ids.iter().cloned()).enumerate() {
            let ahead = spent < self.budget && self.wanted(&u, id.as_ref());
            if ahead {
                spent += payload_len(&u.payload);
            }
            work[i % lanes].push((i, u, id, ahead));
        }
        let mut tasks = Vec::with_capacity(lanes);
        for lane in work {
            let ahead = Arc::clone(&self);
            tasks.push(tokio::task::spawn_blocking(move || {
                lane.into_iter()
                    .map(|(i, u, id, wanted)| {
                        let d = wanted.then(|| {
                            let id = id.as_ref().expect("wanted");
                            Box::new(decode_update(&u.payload, ahead.max_changes).map(
                                |(mut incoming, msg)| {
                                    incoming.check_ahead(id);
                                    (incoming, msg)
                                },
                            ))
                        });
                        (i, u, d)
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut done: Vec<(usize, DocUpdate, Option<Decoded>)> = Vec::with_capacity(n);
        for t in tasks {
            done.extend(
                t.await.map_err(|e| {
                    SyncError::Link(format!("decoding a received batch failed: {e}"))
                })?,
            );
        }
        done.sort_by_key(|(i, _, _)| *i);
        Ok(done.into_iter().map(|(_, u, d)| (u, d)).unzip())
    }
}

/// Loads, outside the writer lock, the stored documents that the decoded
/// updates change and the cache does not hold, decoded a lane per core,
/// for the write to take if they are still what is stored
/// ([`hopluu_store::WriteTx::offer`]). A document that arrives whole is
/// new here as a rule: it is not looked up. One that fails to load is
/// left for the write to load (and report).
pub(super) async fn load_changed(
    store: &Store,
    ids: &[Option<DocId>],
    decoded: &[Option<Decoded>],
    lanes: usize,
) -> Result<Vec<Loaded>, SyncError> {
    let changed: Vec<DocId> = ids
        .iter()
        .zip(decoded)
        .filter_map(|(id, d)| match d.as_deref() {
            Some(Ok((incoming, _))) if !incoming.is_empty() && !incoming.is_whole() => id.clone(),
            _ => None,
        })
        .collect();
    let fetched = store.fetch_uncached(&changed).await?;
    if fetched.is_empty() {
        return Ok(Vec::new());
    }
    let lanes = lanes.clamp(1, fetched.len());
    let mut work: Vec<Vec<Fetched>> = (0..lanes).map(|_| Vec::new()).collect();
    for (i, f) in fetched.into_iter().enumerate() {
        work[i % lanes].push(f);
    }
    let mut tasks = Vec::with_capacity(lanes);
    for lane in work {
        tasks.push(tokio::task::spawn_blocking(move || {
            lane.into_iter()
                .filter_map(|f| f.decode().ok())
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(
            t.await
                .map_err(|e| SyncError::Link(format!("loading documents failed: {e}")))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};
    use hopluu_model::{DocId, UnitId, UnitTree};

    use super::Ahead;
    use crate::frame::{DocUpdate, Payload};

    fn ahead(max_bytes: usize) -> Arc<Ahead> {
        Arc::new(Ahead {
            tree: Arc::new(UnitTree::default()),
            unit: UnitId::parse("unit", "vn").unwrap(),
            private_depth: 0,
            max_changes: 1000,
            max_bytes,
            budget: usize::MAX,
        })
    }

    fn update(doc: &str, payload: Vec<u8>) -> DocUpdate {
        DocUpdate {
            doc: doc.to_owned(),
            heads: Vec::new(),
            payload: Payload::Changes(payload),
        }
    }

    fn saved(n: i64) -> Vec<u8> {
        let mut d = Automerge::new();
        let mut tx = d.transaction();
        tx.put(ROOT, "n", n).unwrap();
        tx.commit();
        d.save()
    }

    #[tokio::test]
    async fn past_the_budget_updates_are_left_to_the_gate() {
        let ids = ["unit/a", "unit/b", "unit/c"];
        let docs: Vec<DocUpdate> = (0..3).map(|i| update(ids[i], saved(i as i64))).collect();
        let parsed: Vec<Option<DocId>> =
            ids.iter().map(|i| DocId::parse("doc_id", i).ok()).collect();
        let one = saved(0).len();
        let mut a = Arc::into_inner(ahead(1 << 20)).unwrap();
        a.budget = one + 1;
        let (_, decoded) = Arc::new(a).decode(docs, &parsed, 2).await.unwrap();
        let ahead: Vec<bool> = decoded.iter().map(Option::is_some).collect();
        assert_eq!(
            ahead,
            [true, true, false],
            "decoded until the budget is spent"
        );
    }

    #[tokio::test]
    async fn updates_come_back_in_batch_order_each_with_its_own_decoding() {
        let ids = ["unit/a", "unit/b", "nonsense", "unit/c", "unit/d"];
        let docs: Vec<DocUpdate> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| match i {
                3 => update(id, b"not automerge".to_vec()),
                4 => update(id, vec![0; 500]),
                _ => update(id, saved(i as i64)),
            })
            .collect();
        let parsed: Vec<Option<DocId>> =
            ids.iter().map(|i| DocId::parse("doc_id", i).ok()).collect();
        let (back, decoded) = ahead(400).decode(docs, &parsed, 3).await.unwrap();
        let order: Vec<&str> = back.iter().map(|u| u.doc.as_str()).collect();
        assert_eq!(order, ids, "the updates keep their order");
        assert!(
            matches!(decoded[0].as_deref(), Some(Ok((i, None))) if i.len() == 1 && i.checked_ahead() == Some(false)),
            "a whole document is decoded and checked (a unit record holding only `n` is misshapen)"
        );
        assert!(
            matches!(decoded[1].as_deref(), Some(Ok(_))),
            "each update its own decoding"
        );
        assert!(decoded[2].is_none(), "an invalid id is left to the judge");
        assert!(
            matches!(decoded[3].as_deref(), Some(Err(e)) if e.starts_with("undecodable changes")),
            "a bad payload is decoded to its reason: {:?}",
            decoded[3].as_deref().map(|d| d.as_ref().err())
        );
        assert!(
            decoded[4].is_none(),
            "an update over the size limit is not read at all"
        );
    }
}
