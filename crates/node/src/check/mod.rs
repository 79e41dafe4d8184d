//! The convergence check (`hopluu check --peer NODE`, `AdminService.CheckPeer`):
//! for every document in a peer's scope, the heads this node holds against
//! the heads the peer reports itself, and what differs.
//!
//! The peer is asked, not this node's belief of it: `peer_docs` holds what
//! each peer acknowledged, and the bugs the check is for are exactly the
//! ones where that belief is wrong (an acknowledgement for a change that
//! was never applied, a document the scope rule left out on one side). The
//! peer answers for itself over `ReplicationService.ScopeHeads`: every
//! document it holds in the caller's scope, judged on its own unit tree,
//! with its heads, a page at a time in document id order (byte-wise, on
//! both backends). This node walks its own documents in the same order,
//! one window per page, so neither side holds more than a window of either
//! list: a national node checking a province of 100,000 documents stays
//! bounded, and so does the province answering.
//!
//! # What differs
//!
//! Per document of the union of the two lists (held here in the peer's
//! scope, or listed by the peer), [`compare`] decides:
//!
//! | state | meaning |
//! |---|---|
//! | `missing-at-peer` | held here, in the peer's scope; the peer does not list it |
//! | `missing-here` | the peer lists it (in this node's scope, by its tree); not held here |
//! | `peer-behind` | this node has every change the peer's heads name; the peer lacks some of ours |
//! | `here-behind` | this node lacks some of the peer's changes; the peer has all of ours |
//! | `diverged` | each side has changes the other lacks |
//! | `held-here` | every change of the peer's this node lacks is in its quarantine: an administrator's decision waits, not a replication fault |
//!
//! Heads alone tell `peer-behind` apart (this node has each of the peer's
//! heads, so it has everything before them), but not `here-behind` from
//! `diverged`: when this node lacks the peer's newest changes it cannot
//! see what they build on. The peer can, so it is asked
//! (`ReplicationService.MissingChanges`) which of this node's heads it
//! lacks, for just those documents.
//!
//! The check is not a snapshot: writes during it may show as differences
//! that the next check no longer finds. Run it on a quiet link, or twice.
//!
//! # Layout
//! - [`compare`]: the pure decision over one window of both lists and a
//!   [`Lookup`] of what each side has; unit-tested below.
//! - [`scope_page`], [`missing_changes`]: the answering side.
//! - [`walk`]: the asking side, over a [`PeerAnswers`] (the gRPC client in
//!   `replication.rs`, or anything in a test).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use automerge::ChangeHash;
use hopluu_model::{DocId, ModelError, UnitId};
use hopluu_store::{Store, StoreError};
use thiserror::Error;

/// Documents in a ScopeHeads answer when the request asks for 0, and at
/// most.
pub const DEFAULT_PAGE: u32 = 1000;
pub const MAX_PAGE: u32 = 5000;

/// Stored documents one ScopeHeads answer looks at, at most: for a caller
/// whose scope is a small part of what this node holds (a district asking
/// the national node), most of them are not in its scope, and an answer
/// must stay bounded all the same.
pub const MAX_SCAN: usize = 20_000;

/// Rows read from the store at a time.
const STORE_PAGE: u32 = 1000;

/// Documents and changes per MissingChanges request, at most.
pub const MAX_ASK_DOCS: usize = 1000;
pub const MAX_ASK_HASHES: usize = 64;

/// Differences listed in a check's answer, at most (all are counted).
pub const MAX_LISTED: usize = 1000;

/// Why a check could not be made.
#[derive(Debug, Error)]
pub enum CheckError {
    /// This node's store, or a request that names no peer to check
    /// (`StoreError::Model`, naming the field).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The peer could not be reached, or the connection broke off.
    #[error("{0}")]
    Unreachable(String),
    /// The peer answered, but refused the check or said something that
    /// does not fit (another node, a unit this node does not know, pages
    /// out of order).
    #[error("{0}")]
    Refused(String),
}

impl From<ModelError> for CheckError {
    fn from(e: ModelError) -> Self {
        CheckError::Store(e.into())
    }
}

/// A document and its heads, as one side lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heads {
    pub doc: DocId,
    pub heads: Vec<ChangeHash>,
}

/// How a document differs between this node and the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    MissingAtPeer,
    MissingHere,
    PeerBehind,
    HereBehind,
    Diverged,
    HeldHere,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::MissingAtPeer => "missing-at-peer",
            State::MissingHere => "missing-here",
            State::PeerBehind => "peer-behind",
            State::HereBehind => "here-behind",
            State::Diverged => "diverged",
            State::HeldHere => "held-here",
        }
    }
}

/// One document that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub doc: DocId,
    pub state: State,
    /// Heads here and at the peer (empty where the document is missing).
    pub here: Vec<ChangeHash>,
    pub there: Vec<ChangeHash>,
    /// Of the peer's heads, those this node's quarantine holds.
    pub held: Vec<ChangeHash>,
}

/// What the comparison of (part of) both lists found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Documents in the union of both lists.
    pub compared: u64,
    /// Of those, documents with the same heads on both sides.
    pub in_step: u64,
    /// Documents that differ, by id (at most [`MAX_LISTED`] once added up
    /// with [`Tally::add`]).
    pub differences: Vec<Difference>,
    /// Documents that differ, all of them.
    pub differing: u64,
}

impl Tally {
    /// Adds the tally of the next window.
    pub fn add(&mut self, next: Tally) {
        self.compared += next.compared;
        self.in_step += next.in_step;
        self.differing += next.differing;
        let room = MAX_LISTED.saturating_sub(self.differences.len());
        self.differences
            .extend(next.differences.into_iter().take(room));
    }
}

/// A whole check: the peer as it answered, and the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub peer_node: String,
    pub peer_unit: UnitId,
    pub tally: Tally,
}

/// What [`compare`] must know beyond the two lists, looked up beforehand.
pub trait Lookup {
    /// Whether this node has change `hash` of `doc` (applied).
    fn has_here(&self, doc: &DocId, hash: &ChangeHash) -> bool;
    /// Whether this node's quarantine holds change `hash` of `doc`,
    /// waiting for an administrator.
    fn held_here(&self, doc: &DocId, hash: &ChangeHash) -> bool;
    /// Whether the peer said it lacks change `hash` of `doc` (one of this
    /// node's heads); a document the peer did not answer about counts as
    /// lacking all.
    fn lacks_at_peer(&self, doc: &DocId, hash: &ChangeHash) -> bool;
}

/// The lookups of one window, as [`walk`] fills them.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// (document, change) this node has, of the peer's heads asked about.
    pub here: HashSet<(DocId, ChangeHash)>,
    /// (document, change) held in this node's quarantine.
    pub held: HashSet<(DocId, ChangeHash)>,
    /// The peer's answer: per document asked about, the changes it lacks.
    pub peer_lacks: HashMap<DocId, HashSet<ChangeHash>>,
}

impl Lookup for Known {
    fn has_here(&self, doc: &DocId, hash: &ChangeHash) -> bool {
        self.here.contains(&(doc.clone(), *hash))
    }
    fn held_here(&self, doc: &DocId, hash: &ChangeHash) -> bool {
        self.held.contains(&(doc.clone(), *hash))
    }
    fn lacks_at_peer(&self, doc: &DocId, hash: &ChangeHash) -> bool {
        self.peer_lacks.get(doc).is_none_or(|l| l.contains(hash))
    }
}

fn same(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let a: HashSet<&ChangeHash> = a.iter().collect();
    let b: HashSet<&ChangeHash> = b.iter().collect();
    a == b
}

/// The peer's heads this node lacks.
fn lacking_here(doc: &DocId, there: &[ChangeHash], lookup: &impl Lookup) -> Vec<ChangeHash> {
    there
        .iter()
        .filter(|h| !lookup.has_here(doc, h))
        .copied()
        .collect()
}

/// What to ask the peer about `doc`: this node's heads that are not among
/// the peer's, when this node lacks some of the peer's changes and not
/// only because its quarantine holds them (then the state depends on
/// whether the peer has ours). Empty: nothing to ask.
pub fn to_ask(
    doc: &DocId,
    here: &[ChangeHash],
    there: &[ChangeHash],
    lookup: &impl Lookup,
) -> Vec<ChangeHash> {
    if same(here, there) {
        return Vec::new();
    }
    let lacking = lacking_here(doc, there, lookup);
    if lacking.is_empty() || lacking.iter().all(|h| lookup.held_here(doc, h)) {
        return Vec::new();
    }
    here.iter()
        .filter(|h| !there.contains(h))
        .copied()
        .collect()
}

/// The state of a document both sides list with these heads, or None when
/// they are in step.
pub fn state_of(
    doc: &DocId,
    here: &[ChangeHash],
    there: &[ChangeHash],
    lookup: &impl Lookup,
) -> Option<State> {
    if same(here, there) {
        return None;
    }
    let lacking = lacking_here(doc, there, lookup);
    if lacking.is_empty() {
        return Some(State::PeerBehind);
    }
    if lacking.iter().all(|h| lookup.held_here(doc, h)) {
        return Some(State::HeldHere);
    }
    let peer_lacks_ours = here
        .iter()
        .any(|h| !there.contains(h) && lookup.lacks_at_peer(doc, h));
    Some(if peer_lacks_ours {
        State::Diverged
    } else {
        State::HereBehind
    })
}

/// A document of the union: its id, and its heads here and at the peer
/// (None where it is missing).
type Pair<'a> = (
    &'a DocId,
    Option<&'a [ChangeHash]>,
    Option<&'a [ChangeHash]>,
);

/// Compares one window of both lists: `here`, the documents held here
/// that are in the peer's scope or that the peer lists; `there`, the
/// documents the peer lists. Every document of the union is counted once;
/// the differences come out by id (byte-wise).
pub fn compare(here: &[Heads], there: &[Heads], lookup: &impl Lookup) -> Tally {
    let mut union: BTreeMap<String, Pair<'_>> = BTreeMap::new();
    for h in here {
        union
            .entry(h.doc.to_string())
            .or_insert((&h.doc, None, None))
            .1 = Some(&h.heads);
    }
    for t in there {
        union
            .entry(t.doc.to_string())
            .or_insert((&t.doc, None, None))
            .2 = Some(&t.heads);
    }
    let mut tally = Tally::default();
    for (doc, h, t) in union.into_values() {
        tally.compared += 1;
        let state = match (h, t) {
            (Some(h), Some(t)) => state_of(doc, h, t, lookup),
            (Some(_), None) => Some(State::MissingAtPeer),
            // Not held here: every change of the peer's is lacking, and
            // the quarantine may hold them all (a document whose first
            // change failed the gate).
            (None, Some(t)) if !t.is_empty() && t.iter().all(|x| lookup.held_here(doc, x)) => {
                Some(State::HeldHere)
            }
            (None, Some(_)) => Some(State::MissingHere),
            (None, None) => None,
        };
        let Some(state) = state else {
            tally.in_step += 1;
            continue;
        };
        let (here, there) = (
            h.unwrap_or_default().to_vec(),
            t.unwrap_or_default().to_vec(),
        );
        tally.differing += 1;
        tally.differences.push(Difference {
            held: there
                .iter()
                .filter(|x| lookup.held_here(doc, x))
                .copied()
                .collect(),
            doc: doc.clone(),
            state,
            here,
            there,
        });
    }
    tally
}

// ---- the answering side ------------------------------------------------------

/// One ScopeHeads answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopePage {
    /// Documents held here in the caller's scope, by id.
    pub docs: Vec<Heads>,
    /// The last id looked at, where the next page starts; None at the end.
    pub next_after: Option<DocId>,
}

/// The documents `store` holds in the scope of `caller` (a node hosting
/// that unit), as `private_depth` decides it, after `after`: at most
/// `limit`, looking at no more than [`MAX_SCAN`] stored documents.
pub async fn scope_page(
    store: &Store,
    caller: &UnitId,
    private_depth: usize,
    after: Option<&DocId>,
    limit: u32,
) -> Result<ScopePage, StoreError> {
    let limit = match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    } as usize;
    let tree = store.tree();
    let mut page = ScopePage::default();
    let mut cursor = after.cloned();
    let mut scanned = 0usize;
    loop {
        let rows = store.held_docs(cursor.as_ref(), None, STORE_PAGE).await?;
        let end = rows.len() < STORE_PAGE as usize;
        for row in rows {
            scanned += 1;
            cursor = Some(row.meta.id.clone());
            if tree.in_scope(caller, &row.meta, private_depth) {
                page.docs.push(Heads {
                    doc: row.meta.id,
                    heads: row.heads,
                });
                if page.docs.len() >= limit {
                    page.next_after = cursor;
                    return Ok(page);
                }
            }
            if scanned >= MAX_SCAN {
                page.next_after = cursor;
                return Ok(page);
            }
        }
        if end {
            return Ok(page);
        }
    }
}

/// Of the changes `asks` names, those `store` does not have, for each
/// document in `caller`'s scope (all of them for a document not held
/// here); documents held here outside its scope are left out.
pub async fn missing_changes(
    store: &Store,
    caller: &UnitId,
    private_depth: usize,
    asks: &[Heads],
) -> Result<Vec<Heads>, StoreError> {
    if asks.len() > MAX_ASK_DOCS {
        return Err(ModelError::invalid(
            "docs",
            format!("at most {MAX_ASK_DOCS} documents, got {}", asks.len()),
        )
        .into());
    }
    if let Some(a) = asks.iter().find(|a| a.heads.len() > MAX_ASK_HASHES) {
        return Err(ModelError::invalid(
            "docs.heads",
            format!(
                "at most {MAX_ASK_HASHES} changes per document, got {} for {}",
                a.heads.len(),
                a.doc
            ),
        )
        .into());
    }
    let tree = store.tree();
    let mut out = Vec::with_capacity(asks.len());
    for a in asks {
        let Some(row) = store.doc_row(&a.doc).await? else {
            out.push(a.clone());
            continue;
        };
        let meta = hopluu_model::DocMeta {
            id: row.id,
            owner: row.owner,
            addressed: row.addressed,
        };
        if !tree.in_scope(caller, &meta, private_depth) {
            continue;
        }
        let missing = split_heads(store, &a.doc, &a.heads)
            .await?
            .map_or_else(|| a.heads.clone(), |(_, lacks)| lacks);
        out.push(Heads {
            doc: a.doc.clone(),
            heads: missing,
        });
    }
    Ok(out)
}

/// `heads` split into the changes document `doc` holds here and those it
/// lacks; None when the document is not stored here.
async fn split_heads(
    store: &Store,
    doc: &DocId,
    heads: &[ChangeHash],
) -> Result<Option<(Vec<ChangeHash>, Vec<ChangeHash>)>, StoreError> {
    store
        .read_doc(doc, |d| {
            heads
                .iter()
                .copied()
                .partition(|h| hopluu_model::am::knows(d, h))
        })
        .await
}

// ---- the asking side ---------------------------------------------------------

/// One page of the peer's answer, as [`PeerAnswers::scope_heads`] returns
/// it (checked: ids parse, heads are hashes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPage {
    /// The node that answered and the unit it hosts (as it says).
    pub node_id: String,
    pub unit: String,
    pub docs: Vec<Heads>,
    pub next_after: Option<DocId>,
}

/// The peer's side of a check: what it answers for itself.
pub trait PeerAnswers {
    /// The page of documents it holds in this node's scope after `after`.
    fn scope_heads(
        &mut self,
        after: Option<&DocId>,
    ) -> impl Future<Output = Result<PeerPage, CheckError>> + Send;
    /// Of the changes `asks` names, those it lacks, per document it
    /// answered about.
    fn missing_changes(
        &mut self,
        asks: Vec<Heads>,
    ) -> impl Future<Output = Result<Vec<Heads>, CheckError>> + Send;
}

/// Checks one page against the window it claims: ids strictly
/// increasing, inside (after, next_after], and the cursor moving on (a
/// peer that repeats a page would keep the check going forever).
fn check_page(peer: &str, after: Option<&DocId>, page: &PeerPage) -> Result<(), CheckError> {
    let key = |d: &DocId| d.to_string();
    let lo = after.map(key);
    let hi = page.next_after.as_ref().map(key);
    let bad = |why: String| {
        Err(CheckError::Refused(format!(
            "node {peer} answered a page out of order ({why}): is it running this version?"
        )))
    };
    if let (Some(lo), Some(hi)) = (&lo, &hi)
        && hi <= lo
    {
        return bad(format!("next page after {hi}, not after {lo}"));
    }
    let mut prev = lo.clone();
    for d in &page.docs {
        let k = key(&d.doc);
        if prev.as_ref().is_some_and(|p| k <= *p) {
            return bad(format!("{k} after {}", prev.unwrap_or_default()));
        }
        if hi.as_ref().is_some_and(|h| k > *h) {
            return bad(format!(
                "{k} past the page's end {}",
                hi.clone().unwrap_or_default()
            ));
        }
        prev = Some(k);
    }
    Ok(())
}

/// Checks this node (its `store`, hosting `unit`, holding private rosters
/// down to `private_depth`) against `peer` (node `peer_node`): the peer's
/// pages one after the other, each against the window of this node's
/// documents it covers.
pub async fn walk<P: PeerAnswers>(
    store: &Store,
    private_depth: usize,
    peer_node: &str,
    peer: &mut P,
) -> Result<Comparison, CheckError> {
    let mut page = peer.scope_heads(None).await?;
    if page.node_id != peer_node {
        return Err(CheckError::Refused(format!(
            "the node at that address is {}, not {peer_node}",
            page.node_id
        )));
    }
    let peer_unit = UnitId::parse("unit", &page.unit)
        .map_err(|e| CheckError::Refused(format!("node {peer_node} names no valid unit: {e}")))?;
    if !store.tree().contains(&peer_unit) {
        return Err(CheckError::Refused(format!(
            "node {peer_node} hosts unit {peer_unit}, which this node does not know: \
             it cannot tell which documents that node should hold"
        )));
    }
    let mut tally = Tally::default();
    let mut after: Option<DocId> = None;
    loop {
        check_page(peer_node, after.as_ref(), &page)?;
        let upto = page.next_after.clone();
        let here = window(
            store,
            &peer_unit,
            private_depth,
            after.as_ref(),
            upto.as_ref(),
            &page.docs,
        )
        .await?;
        let known = lookups(store, &here, &page.docs, peer).await?;
        tally.add(compare(&here, &page.docs, &known));
        let Some(next) = upto else { break };
        page = peer.scope_heads(Some(&next)).await?;
        if page.node_id != peer_node {
            return Err(CheckError::Refused(format!(
                "node {peer_node} answered as {} midway",
                page.node_id
            )));
        }
        after = Some(next);
    }
    Ok(Comparison {
        peer_node: peer_node.to_owned(),
        peer_unit,
        tally,
    })
}

/// The documents held here with an id in (after, upto] that are in the
/// peer's scope (as this node decides it) or that the peer lists.
async fn window(
    store: &Store,
    peer_unit: &UnitId,
    private_depth: usize,
    after: Option<&DocId>,
    upto: Option<&DocId>,
    listed: &[Heads],
) -> Result<Vec<Heads>, StoreError> {
    let listed: HashSet<&DocId> = listed.iter().map(|h| &h.doc).collect();
    let tree = store.tree();
    let mut out = Vec::new();
    let mut cursor = after.cloned();
    loop {
        let rows = store.held_docs(cursor.as_ref(), upto, STORE_PAGE).await?;
        let end = rows.len() < STORE_PAGE as usize;
        cursor = rows.last().map(|r| r.meta.id.clone()).or(cursor);
        out.extend(
            rows.into_iter()
                .filter(|r| {
                    listed.contains(&r.meta.id) || tree.in_scope(peer_unit, &r.meta, private_depth)
                })
                .map(|r| Heads {
                    doc: r.meta.id,
                    heads: r.heads,
                }),
        );
        if end {
            return Ok(out);
        }
    }
}

/// What [`compare`] needs for one window: which of the peer's heads this
/// node has and which its quarantine holds, then, for the documents where
/// that leaves it open, whether the peer has this node's heads.
async fn lookups<P: PeerAnswers>(
    store: &Store,
    here: &[Heads],
    there: &[Heads],
    peer: &mut P,
) -> Result<Known, CheckError> {
    let mine: HashMap<&DocId, &[ChangeHash]> =
        here.iter().map(|h| (&h.doc, &h.heads[..])).collect();
    // Documents whose heads differ (or that are missing here): the only
    // ones looked at further.
    let differing: Vec<(&Heads, Option<&[ChangeHash]>)> = there
        .iter()
        .map(|t| (t, mine.get(&t.doc).copied()))
        .filter(|(t, h)| h.is_none_or(|h| !same(h, &t.heads)))
        .collect();
    let mut known = Known::default();
    if differing.is_empty() {
        return Ok(known);
    }
    for (t, h) in &differing {
        if h.is_none() {
            continue;
        }
        let has = split_heads(store, &t.doc, &t.heads)
            .await?
            .map(|(has, _)| has)
            .unwrap_or_default();
        known
            .here
            .extend(has.into_iter().map(|x| (t.doc.clone(), x)));
    }
    let docs: Vec<DocId> = differing.iter().map(|(t, _)| t.doc.clone()).collect();
    for chunk in docs.chunks(200) {
        for (doc, hashes) in store.quarantined_in(chunk).await? {
            known.held.extend(
                hashes
                    .into_iter()
                    .filter(|(_, s)| *s == hopluu_store::quarantine::QuarantineState::Held)
                    .map(|(h, _)| (doc.clone(), h)),
            );
        }
    }
    let asks: Vec<Heads> = differing
        .iter()
        .filter_map(|(t, h)| {
            let heads = to_ask(&t.doc, (*h)?, &t.heads, &known);
            (!heads.is_empty()).then(|| Heads {
                doc: t.doc.clone(),
                heads: heads.into_iter().take(MAX_ASK_HASHES).collect(),
            })
        })
        .collect();
    let mut asks = asks.into_iter().peekable();
    while asks.peek().is_some() {
        let batch: Vec<Heads> = asks.by_ref().take(MAX_ASK_DOCS).collect();
        for answer in peer.missing_changes(batch).await? {
            known
                .peer_lacks
                .entry(answer.doc)
                .or_default()
                .extend(answer.heads);
        }
    }
    Ok(known)
}

#[cfg(test)]
mod tests;
