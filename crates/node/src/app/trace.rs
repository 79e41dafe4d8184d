//! Where a record's latest change has reached on the way up
//! (`hopluu trace`): this node, then each level above it, from the
//! delivery receipts the parents sent back.

use automerge::{Automerge, ChangeHash, ObjId as ExId, ObjType, ReadDoc, Value};
use hopluu_model::doc::change_time_millis;
use hopluu_model::{
    Author, AwardId, CampaignId, CardNumber, DocId, InitiativeId, MemberId, ModelError, UnitId,
    member,
};
use hopluu_store::StoreError;
use hopluu_store::receipts::Receipt;

use super::{App, Result};
use crate::NodeError;

/// What a trace names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// By card number or member id.
    Member,
    Initiative,
    Campaign,
    Award,
    Unit,
    /// Any document by its id.
    Doc,
}

/// A record's latest change and each level's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub doc_id: String,
    pub change: ChangeHash,
    /// The maker's node and unit, from the change's actor.
    pub made_by: Option<(String, UnitId)>,
    pub made_at_millis: i64,
    /// This node first, then its ancestors up to the root.
    pub hops: Vec<TraceHop>,
}

/// One level on the way up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHop {
    pub unit_id: UnitId,
    pub depth: u32,
    /// The node known to hold it there (empty: not known).
    pub node_id: String,
    pub reached: bool,
    /// When it was received there (0: not known).
    pub reached_at_millis: i64,
}

/// A record: its document, and the map of its fields inside it (none for
/// a record that is a whole document).
struct Record {
    doc: DocId,
    object: Option<(&'static str, String)>,
}

/// The newest operation id under `obj` (its own keys and everything
/// nested in them).
fn newest_op(doc: &Automerge, obj: &ExId) -> Option<(u64, automerge::ActorId)> {
    let mut best: Option<(u64, automerge::ActorId)> = None;
    let mut consider = |id: &ExId| {
        if let ExId::Id(counter, actor, _) = id
            && best.as_ref().is_none_or(|(c, _)| counter > c)
        {
            best = Some((*counter, actor.clone()));
        }
    };
    consider(obj);
    let mut stack = vec![obj.clone()];
    while let Some(o) = stack.pop() {
        let items: Vec<(bool, ExId)> = match doc.object_type(&o) {
            Ok(ObjType::Map) | Ok(ObjType::Table) => doc
                .map_range(&o, ..)
                .flat_map(|item| doc.get_all(&o, item.key.as_ref()).unwrap_or_default())
                .map(|(value, id)| (matches!(value, Value::Object(_)), id))
                .collect(),
            Ok(ObjType::List) | Ok(ObjType::Text) => doc
                .list_range(&o, ..)
                .map(|item| {
                    (
                        matches!(item.value, automerge::ValueRef::Object(_)),
                        item.id(),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for (object, id) in items {
            consider(&id);
            if object {
                stack.push(id);
            }
        }
    }
    best
}

/// The change holding operation `counter` of `actor`.
fn change_of(doc: &Automerge, counter: u64, actor: &automerge::ActorId) -> Option<ChangeHash> {
    doc.get_changes(&[])
        .into_iter()
        .find(|c| {
            c.actor_id() == actor
                && c.start_op().get() <= counter
                && counter < c.start_op().get() + c.len() as u64
        })
        .map(|c| c.hash())
}

/// The record's latest change.
fn latest(doc: &Automerge, record: &Record) -> Result<ChangeHash> {
    let not_there = || NodeError::Refused(ModelError::not_found("record", record.doc.to_string()));
    match &record.object {
        Some((map, key)) => {
            let (_, parent) = doc
                .get(automerge::ROOT, *map)
                .ok()
                .flatten()
                .ok_or_else(not_there)?;
            let (_, obj) = doc
                .get(&parent, key.as_str())
                .ok()
                .flatten()
                .ok_or_else(not_there)?;
            let (counter, actor) = newest_op(doc, &obj).ok_or_else(not_there)?;
            change_of(doc, counter, &actor).ok_or_else(not_there)
        }
        None => doc
            .get_heads()
            .into_iter()
            .filter_map(|h| {
                doc.get_change_meta_by_hash(&h)
                    .map(|c| (change_time_millis(c.timestamp), h))
            })
            .max()
            .map(|(_, h)| h)
            .ok_or_else(not_there),
    }
}

/// Whether heads `heads` include `change` (as far as this document knows
/// them: heads it lacks are left out).
fn covers(doc: &Automerge, heads: &[ChangeHash], change: &ChangeHash) -> bool {
    let known: Vec<ChangeHash> = heads
        .iter()
        .filter(|h| hopluu_model::am::knows(doc, h))
        .copied()
        .collect();
    if known.is_empty() {
        return false;
    }
    if known.contains(change) {
        return true;
    }
    !doc.get_changes(&known).iter().any(|c| c.hash() == *change)
}

impl App {
    /// Where the latest change of record `id` (of `kind`; `None`: the
    /// request did not say) has reached.
    pub async fn trace(&self, kind: Option<TraceKind>, id: &str) -> Result<Trace> {
        let id = id.trim();
        if id.is_empty() {
            return Err(ModelError::invalid("id", "say which record to trace").into());
        }
        let Some(kind) = kind else {
            return Err(ModelError::invalid(
                "kind",
                "say what to trace: member, campaign, initiative, award, unit or doc",
            )
            .into());
        };
        let record = self.locate(kind, id).await?;
        let bytes = self
            .store
            .doc_bytes(&record.doc)
            .await?
            .ok_or_else(|| ModelError::not_found("document", record.doc.to_string()))?;
        let receipts = self.store.receipts_of(&record.doc).await?;
        let tree = self.tree();
        let me = self.unit.clone();
        let node_id = self.node_id.clone();
        tokio::task::spawn_blocking(move || {
            let doc_id = record.doc.to_string();
            let doc = Automerge::load(&bytes).map_err(|e| StoreError::Corrupt {
                doc: doc_id.clone(),
                reason: e.to_string(),
            })?;
            let change = latest(&doc, &record)?;
            let c = doc
                .get_change_meta_by_hash(&change)
                .expect("found in this document");
            let origin = Author::origin(&c.actor);
            let made_at = change_time_millis(c.timestamp);
            let mut hops = vec![TraceHop {
                unit_id: me.clone(),
                depth: tree.depth(&me) as u32,
                node_id: node_id.clone(),
                reached: true,
                reached_at_millis: if origin.as_ref().is_some_and(|o| o.node == node_id) {
                    made_at
                } else {
                    0
                },
            }];
            let ancestors = tree.ancestors(&me);
            // Levels between this node and the maker's relayed the change
            // down to here: they hold it, when they got it is not known here.
            let maker_at = origin
                .as_ref()
                .and_then(|o| ancestors.iter().position(|u| *u == o.unit));
            for (i, unit) in ancestors.into_iter().enumerate() {
                let first: Option<&Receipt> = receipts
                    .iter()
                    .filter(|r| r.unit == unit.as_str() && covers(&doc, &r.heads, &change))
                    .min_by_key(|r| (r.at, r.id));
                let (node_id, reached, reached_at_millis) = match (first, &origin) {
                    (Some(r), _) => (r.node_id.clone(), true, r.at),
                    // A change made above this node (a campaign from the
                    // national node, say) is at its maker's level since it
                    // was made.
                    (None, Some(o)) if o.unit == unit => (o.node.clone(), true, made_at),
                    (None, _) if maker_at.is_some_and(|m| i < m) => (String::new(), true, 0),
                    (None, _) => (String::new(), false, 0),
                };
                hops.push(TraceHop {
                    depth: tree.depth(&unit) as u32,
                    unit_id: unit,
                    node_id,
                    reached,
                    reached_at_millis,
                });
            }
            Ok(Trace {
                doc_id,
                change,
                made_by: origin.map(|o| (o.node, o.unit)),
                made_at_millis: made_at,
                hops,
            })
        })
        .await
        .map_err(|e| NodeError::Internal(format!("trace: {e}")))?
    }

    async fn locate(&self, kind: TraceKind, id: &str) -> Result<Record> {
        let store = &self.store;
        let whole = |doc: DocId| Record { doc, object: None };
        Ok(match kind {
            TraceKind::Member => {
                let loc = match CardNumber::parse("id", id) {
                    Ok(card) => store.active_card(&card).await?,
                    Err(_) => None,
                };
                let loc = match loc {
                    Some(l) => Some(l),
                    None => match MemberId::parse("id", id) {
                        Ok(m) => store.current_member_loc(&m).await?,
                        Err(_) => None,
                    },
                };
                let loc = loc.ok_or_else(|| {
                    ModelError::not_found("member (card number or member id)", id)
                })?;
                Record {
                    doc: member::roster_doc(&loc.unit, loc.bucket),
                    object: Some(("members", loc.member.to_string())),
                }
            }
            TraceKind::Initiative => {
                let i = InitiativeId::parse("id", id)?;
                let doc = store
                    .initiative_doc(&i)
                    .await?
                    .ok_or_else(|| ModelError::not_found("initiative", id))?;
                Record {
                    doc,
                    object: Some(("initiatives", i.to_string())),
                }
            }
            TraceKind::Campaign => whole(DocId::Campaign(CampaignId::parse("id", id)?)),
            TraceKind::Award => whole(DocId::Award(AwardId::parse("id", id)?)),
            TraceKind::Unit => whole(DocId::Unit(UnitId::parse("id", id)?)),
            TraceKind::Doc => whole(DocId::parse("id", id)?),
        })
    }
}
