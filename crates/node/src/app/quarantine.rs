//! Held changes chosen by what they are rather than by entry id: the
//! node that made them, the reason they are held, their document, or the
//! reorganisation decision that sealed their document. The same
//! selection lists them (`hopluu quarantine list --reason …`) and
//! releases or discards them all in one transaction
//! (`hopluu quarantine release --node … --reason …`), with a count of
//! what was released, discarded, or left held and why; a dry run makes
//! the same transaction and drops it.
//!
//! A bulk decision needs at least one filter: "release everything" is
//! never what an administrator meant by an empty command line.

use std::collections::BTreeMap;

use hopluu_model::{DocId, ModelError, UnitId};
use hopluu_store::quarantine::QuarantineFilter;
use hopluu_sync::gate::{self, HOLD_CODES};

use super::admin::{Decide, QuarantineDecision, check_note, gate_error};
use super::{App, Result, invalid};

/// Entries one bulk decision takes at most (oldest first); the answer
/// says how many more match, for the administrator to run it again.
pub const MAX_BULK: u32 = 5_000;

/// Which held entries to select, as the request gives them; an empty
/// field selects any.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuarantineSelect<'a> {
    /// The node that made the change (the node its actor names).
    pub node: &'a str,
    /// The reason code, e.g. `not-authorised`.
    pub reason: &'a str,
    /// The document, e.g. `roster/hg-truong-a`.
    pub doc_id: &'a str,
    /// A reorganisation decision, by id or by number: the documents it
    /// sealed.
    pub decision: &'a str,
}

impl QuarantineSelect<'_> {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        [self.node, self.reason, self.doc_id, self.decision]
            .iter()
            .all(|f| f.trim().is_empty())
    }
}

/// What a bulk release or discard did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkDecision {
    pub dry_run: bool,
    /// Held entries the selection matched (at most [`MAX_BULK`]).
    pub matched: u64,
    /// Matching held entries beyond those: run the decision again.
    pub more: u64,
    /// Matched entries applied (release).
    pub released: u64,
    /// Other held changes that passed the gate once those were applied.
    pub passed: u64,
    /// Matched entries discarded (discard).
    pub discarded: u64,
    /// Entries not matched that waited on a discarded one, discarded too.
    pub waiting_discarded: u64,
    /// Matched entries left held, by why (a [`gate::StillHeld`] code),
    /// with the first entry's id and reason as an example.
    pub left: BTreeMap<&'static str, LeftHeld>,
}

/// Matched entries left held for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftHeld {
    pub count: u64,
    /// One of them, and why it is held, in words.
    pub example_id: i64,
    pub example: String,
}

impl BulkDecision {
    /// Matched entries still held.
    pub fn left_held(&self) -> u64 {
        self.left.values().map(|l| l.count).sum()
    }

    fn leave(&mut self, left: Vec<gate::Left>) {
        for l in left {
            let e = self.left.entry(l.why.as_str()).or_insert_with(|| LeftHeld {
                example_id: l.id,
                example: l.reason.clone(),
                ..LeftHeld::default()
            });
            e.count += 1;
        }
    }
}

/// What a release or discard did, as the request named its entries.
#[derive(Debug, Clone)]
pub enum Decided {
    /// One entry, by id.
    Entry(Box<QuarantineDecision>),
    /// Every held entry a selection matched.
    Matching(BulkDecision),
}

impl App {
    /// Releases or discards what a request names: entry `id`, or (with
    /// `id` 0) every held entry `sel` selects; a dry run writes nothing.
    /// An id and filters together, a negative id, and neither are
    /// refused naming the field.
    pub async fn decide_held(
        &self,
        decide: Decide,
        id: i64,
        sel: &QuarantineSelect<'_>,
        operator: &str,
        note: &str,
        dry_run: bool,
    ) -> Result<Decided> {
        if id < 0 {
            return Err(invalid("id", format!("must not be negative, got {id}")));
        }
        if id > 0 && !sel.is_empty() {
            return Err(invalid(
                "id",
                "give an entry id or filters (node, reason, doc_id, decision), not both",
            ));
        }
        if id > 0 {
            return Ok(Decided::Entry(Box::new(
                self.decide_one(decide, id, operator, note, dry_run).await?,
            )));
        }
        Ok(Decided::Matching(
            self.decide_quarantine_matching(decide, sel, operator, note, dry_run)
                .await?,
        ))
    }

    /// The store's filter for `sel`, every field checked: an unknown
    /// reason code, a malformed node or document id, or a decision not
    /// held here is refused naming its field (`node`, `reason`,
    /// `doc_id`, `decision`).
    pub(crate) async fn quarantine_filter(
        &self,
        sel: &QuarantineSelect<'_>,
    ) -> Result<QuarantineFilter> {
        let node = match sel.node.trim() {
            "" => None,
            n => Some(UnitId::parse("node", n)?.to_string()),
        };
        let code = match sel.reason.trim() {
            "" => None,
            c if HOLD_CODES.contains(&c) => Some(c.to_owned()),
            c => {
                return Err(invalid(
                    "reason",
                    format!(
                        "unknown reason code {c:?}: one of {}",
                        HOLD_CODES.join(", ")
                    ),
                ));
            }
        };
        let doc = match sel.doc_id.trim() {
            "" => None,
            d => Some(DocId::parse("doc_id", d)?.to_string()),
        };
        let decision = match sel.decision.trim() {
            "" => None,
            d => Some(self.decision_named("decision", d).await?.to_string()),
        };
        Ok(QuarantineFilter {
            doc,
            origin_node: node,
            code,
            decision,
            ..QuarantineFilter::default()
        })
    }

    /// Releases or discards every held entry `sel` selects (the oldest
    /// [`MAX_BULK`]), in one transaction, recorded as decided by
    /// `operator`; `note` goes to the log. A dry run counts the same and
    /// writes nothing. Refused without a filter (`filter`), and for a bad
    /// filter or note before anything is read.
    pub async fn decide_quarantine_matching(
        &self,
        decide: Decide,
        sel: &QuarantineSelect<'_>,
        operator: &str,
        note: &str,
        dry_run: bool,
    ) -> Result<BulkDecision> {
        check_note(note)?;
        if sel.is_empty() {
            return Err(unfiltered(decide));
        }
        let filter = self.quarantine_filter(sel).await?;
        let now = self.clock.now_millis();
        let mut tx = self.store.begin().await?;
        let mut entries = tx.quarantine_matching(&filter, MAX_BULK + 1).await?;
        let more = if entries.len() > MAX_BULK as usize {
            entries.truncate(MAX_BULK as usize);
            let after = QuarantineFilter {
                after_id: entries.last().map(|e| e.id).unwrap_or(0),
                ..filter.clone()
            };
            tx.quarantine_matching_count(&after).await?
        } else {
            0
        };
        let mut out = BulkDecision {
            dry_run,
            matched: entries.len() as u64,
            more,
            ..BulkDecision::default()
        };
        match decide {
            Decide::Release => {
                let tree = self.store.tree();
                let r = gate::release_all(&mut tx, &tree, &self.unit, entries, operator, now)
                    .await
                    .map_err(gate_error)?;
                out.released = r.released.len() as u64;
                out.passed = r.passed as u64;
                out.leave(r.left);
            }
            Decide::Discard => {
                let d = gate::discard_all(&mut tx, entries, operator, now)
                    .await
                    .map_err(gate_error)?;
                out.discarded = d.discarded.len() as u64;
                out.waiting_discarded = d.waiting as u64;
                out.leave(d.left);
            }
        }
        if dry_run {
            drop(tx);
        } else {
            tx.commit().await?;
        }
        tracing::info!(
            caller = operator,
            rpc = decide.rpc(),
            node = sel.node,
            reason = sel.reason,
            doc = sel.doc_id,
            decision = sel.decision,
            dry_run,
            matched = out.matched,
            released = out.released,
            passed = out.passed,
            discarded = out.discarded + out.waiting_discarded,
            left_held = out.left_held(),
            note,
            "quarantine decision by filter"
        );
        Ok(out)
    }
}

/// The refusal of a bulk decision without a filter.
fn unfiltered(decide: Decide) -> crate::NodeError {
    let verb = match decide {
        Decide::Release => "release",
        Decide::Discard => "discard",
    };
    crate::NodeError::Refused(ModelError::invalid(
        "filter",
        format!(
            "give an entry id, or at least one of node, reason, doc_id, decision: \
             a {verb} of every held change at once is refused, so that none is made by accident"
        ),
    ))
}
