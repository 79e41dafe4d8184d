//! The document cache: loaded documents kept decoded, so that a busy
//! roster is not decoded from its snapshot and chunks on every write.
//!
//! Bounded by count and by an estimate of the memory the documents take.
//! A national node holds thousands of rosters; a bound by count alone
//! either kept a few hundred of them (every edit of the rest paid a full
//! load) or, set high, let large rosters take memory without limit.

use std::collections::{BTreeMap, HashMap};

use automerge::{Automerge, ReadDoc};
use hopluu_model::DocId;

use crate::tx;

/// An estimate of the memory a decoded document takes, from its size
/// (automerge 0.12 on this machine's kind, documents loaded from saves:
/// about 110 KiB a document, 32 B an operation and 170 B a change; a
/// roster of 80 members one change each is 138 KiB, of 1,000 members
/// 650 KiB).
pub(crate) fn resident_bytes(doc: &Automerge) -> usize {
    let stats = doc.stats();
    DOC_BYTES + OP_BYTES * stats.num_ops as usize + CHANGE_BYTES * stats.num_changes as usize
}

const DOC_BYTES: usize = 110 << 10;
const OP_BYTES: usize = 32;
const CHANGE_BYTES: usize = 170;

struct Entry {
    loaded: tx::Loaded,
    bytes: usize,
    /// Its place in `DocCache::order`.
    tick: u64,
}

/// A least-recently-stored cache of loaded documents.
pub(crate) struct DocCache {
    max_docs: usize,
    max_bytes: usize,
    docs: HashMap<String, Entry>,
    /// Keys by the tick they were stored at, oldest first.
    order: BTreeMap<u64, String>,
    next_tick: u64,
    /// The estimated memory of what is held.
    bytes: usize,
    /// Counts commits that stored documents. A reader that loaded a
    /// document outside the writer lock caches it only if no commit came in
    /// between: otherwise its copy may be older than the committed one, and
    /// the next write would start from it (and a compaction save it).
    generation: u64,
}

impl DocCache {
    pub(crate) fn new(max_docs: usize, max_bytes: usize) -> Self {
        DocCache {
            max_docs,
            max_bytes,
            docs: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
            bytes: 0,
            generation: 0,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Called by a commit that stored documents, before it caches them.
    pub(crate) fn committed(&mut self) {
        self.generation += 1;
    }

    pub(crate) fn take(&mut self, id: &DocId) -> Option<tx::Loaded> {
        let e = self.docs.remove(&id.to_string())?;
        self.order.remove(&e.tick);
        self.bytes -= e.bytes;
        Some(e.loaded)
    }

    pub(crate) fn contains(&self, id: &DocId) -> bool {
        self.docs.contains_key(&id.to_string())
    }

    pub(crate) fn with<T>(&self, id: &DocId, f: impl FnOnce(&Automerge) -> T) -> Option<T> {
        self.docs.get(&id.to_string()).map(|e| f(&e.loaded.doc))
    }

    /// Keeps `doc` as the most recent, then drops the oldest until both
    /// bounds hold. A document larger than the whole budget is not kept.
    pub(crate) fn put(&mut self, id: &DocId, doc: tx::Loaded) {
        self.take(id);
        let bytes = resident_bytes(&doc.doc);
        if self.max_docs == 0 || bytes > self.max_bytes {
            return;
        }
        let key = id.to_string();
        let tick = self.next_tick;
        self.next_tick += 1;
        self.order.insert(tick, key.clone());
        self.docs.insert(
            key,
            Entry {
                loaded: doc,
                bytes,
                tick,
            },
        );
        self.bytes += bytes;
        while self.docs.len() > self.max_docs || self.bytes > self.max_bytes {
            let Some((_, old)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.docs.remove(&old) {
                self.bytes -= e.bytes;
            }
        }
    }

    /// Documents held and their estimated memory.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        (self.docs.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn loaded(id: &DocId, fields: usize) -> tx::Loaded {
        let mut doc = AutoCommit::new();
        for i in 0..fields {
            doc.put(ROOT, format!("f{i}"), i as i64).expect("put");
        }
        tx::Loaded {
            id: id.clone(),
            doc: doc.document().clone(),
            row: None,
            snapshot_len: 0,
            chunks_len: 0,
        }
    }

    fn id(n: usize) -> DocId {
        DocId::parse("doc_id", &format!("roster/g{n}")).expect("id")
    }

    #[test]
    fn the_oldest_documents_leave_once_their_memory_passes_the_budget() {
        let one = resident_bytes(&loaded(&id(0), 1000).doc);
        assert!(one > DOC_BYTES + 1000 * OP_BYTES, "{one}");
        // Room for three of them, and far more by count.
        let mut cache = DocCache::new(100, 3 * one + one / 2);
        for n in 0..5 {
            cache.put(&id(n), loaded(&id(n), 1000));
        }
        assert_eq!(cache.held(), (3, 3 * one));
        assert!(!cache.contains(&id(0)) && !cache.contains(&id(1)));
        assert!((2..5).all(|n| cache.contains(&id(n))));
        // Taking one and putting it back makes it the most recent.
        let two = cache.take(&id(2)).expect("held");
        assert_eq!(cache.held(), (2, 2 * one));
        cache.put(&id(2), two);
        cache.put(&id(5), loaded(&id(5), 1000));
        assert!(!cache.contains(&id(3)), "the oldest after the put left");
        assert!(cache.contains(&id(2)) && cache.contains(&id(5)));
        assert_eq!(cache.held(), (3, 3 * one));
        // Putting a document that is already held replaces it, once.
        cache.put(&id(5), loaded(&id(5), 10));
        let small = resident_bytes(&loaded(&id(5), 10).doc);
        assert_eq!(cache.held(), (3, 2 * one + small));
    }

    #[test]
    fn the_count_bounds_too_and_a_document_over_the_whole_budget_is_not_kept() {
        let mut cache = DocCache::new(2, usize::MAX);
        for n in 0..4 {
            cache.put(&id(n), loaded(&id(n), 1));
        }
        assert_eq!(cache.held().0, 2);
        assert!(cache.contains(&id(2)) && cache.contains(&id(3)));

        let big = resident_bytes(&loaded(&id(9), 2000).doc);
        let mut cache = DocCache::new(10, big - 1);
        cache.put(&id(1), loaded(&id(1), 1));
        cache.put(&id(9), loaded(&id(9), 2000));
        assert!(!cache.contains(&id(9)));
        assert!(cache.contains(&id(1)), "what was held stays");

        let mut none = DocCache::new(0, usize::MAX);
        none.put(&id(1), loaded(&id(1), 1));
        assert_eq!(none.held(), (0, 0));
    }
}
