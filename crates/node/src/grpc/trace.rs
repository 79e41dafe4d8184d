//! `Trace`: where the latest change of a record has reached.
//!
//! The record's latest change is found in its document: for a member or
//! an initiative, the newest operation among the record's own fields (its
//! map in the roster or emulation document); for a whole-document record
//! (a campaign, an award, a unit, any document by id), the document's
//! newest head. Each level above this node is then looked up in the
//! delivery receipts: the first receipt from a node of that level whose
//! heads include the change says when it arrived there, by that node's
//! clock. Receipts come from the parent's acknowledgements and are carried
//! down from further up (`hopluu_store::receipts`). A change made above
//! this node (a national campaign) is at its maker's level since it was
//! made, and at every level between, which relayed it down (when is not
//! known here).

use automerge::{Automerge, ChangeHash, ObjId as ExId, ObjType, ReadDoc, Value};
use hopluu_model::{
    Author, AwardId, CampaignId, CardNumber, DocId, InitiativeId, MemberId, ModelError, UnitId,
    member,
};
use hopluu_proto::v1 as pb;
use hopluu_store::receipts::Receipt;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::error::to_status;
use crate::grpc::admin::AdminGrpc;
use crate::grpc::auth;

type R<T> = Result<Response<T>, Status>;

fn model(e: ModelError) -> Status {
    to_status(&NodeError::from(e))
}

fn st(e: hopluu_store::StoreError) -> Status {
    to_status(&NodeError::Store(e))
}

/// A record: its document, and the map of its fields inside it (none for
/// a record that is a whole document).
struct Record {
    doc: DocId,
    object: Option<(&'static str, String)>,
}

async fn locate(admin: &AdminGrpc, kind: pb::TraceKind, id: &str) -> Result<Record, Status> {
    let store = &admin.app.store;
    let whole = |doc: DocId| Record { doc, object: None };
    Ok(match kind {
        pb::TraceKind::Member => {
            let loc = match CardNumber::parse("id", id) {
                Ok(card) => store.active_card(&card).await.map_err(st)?,
                Err(_) => None,
            };
            let loc = match loc {
                Some(l) => Some(l),
                None => match MemberId::parse("id", id) {
                    Ok(m) => store.current_member_loc(&m).await.map_err(st)?,
                    Err(_) => None,
                },
            };
            let loc = loc.ok_or_else(|| {
                model(ModelError::not_found(
                    "member (card number or member id)",
                    id,
                ))
            })?;
            Record {
                doc: member::roster_doc(&loc.unit, loc.bucket),
                object: Some(("members", loc.member.to_string())),
            }
        }
        pb::TraceKind::Initiative => {
            let i = InitiativeId::parse("id", id).map_err(model)?;
            let doc = store
                .initiative_doc(&i)
                .await
                .map_err(st)?
                .ok_or_else(|| model(ModelError::not_found("initiative", id)))?;
            Record {
                doc,
                object: Some(("initiatives", i.to_string())),
            }
        }
        pb::TraceKind::Campaign => {
            whole(DocId::Campaign(CampaignId::parse("id", id).map_err(model)?))
        }
        pb::TraceKind::Award => whole(DocId::Award(AwardId::parse("id", id).map_err(model)?)),
        pb::TraceKind::Unit => whole(DocId::Unit(UnitId::parse("id", id).map_err(model)?)),
        pb::TraceKind::Doc => whole(DocId::parse("id", id).map_err(model)?),
        pb::TraceKind::Unspecified => {
            return Err(model(ModelError::invalid(
                "kind",
                "say what to trace: member, campaign, initiative, award, unit or doc",
            )));
        }
    })
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

/// The record's latest change: its hash, maker and time.
fn latest(doc: &Automerge, record: &Record) -> Result<ChangeHash, Status> {
    let not_there = || model(ModelError::not_found("record", record.doc.to_string()));
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
            .filter_map(|h| doc.get_change_by_hash(&h).map(|c| (c.timestamp(), h)))
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
        .filter(|h| doc.get_change_by_hash(h).is_some())
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

pub async fn trace(admin: &AdminGrpc, req: Request<pb::TraceRequest>) -> R<pb::TraceResponse> {
    let (_, r) = auth::admin(req, "Trace")?;
    let kind = pb::TraceKind::try_from(r.kind).map_err(|_| {
        model(ModelError::invalid(
            "kind",
            format!("unknown kind {}", r.kind),
        ))
    })?;
    if r.id.trim().is_empty() {
        return Err(model(ModelError::invalid(
            "id",
            "say which record to trace",
        )));
    }
    let record = locate(admin, kind, r.id.trim()).await?;
    let app = &admin.app;
    let bytes = app
        .store
        .doc_bytes(&record.doc)
        .await
        .map_err(st)?
        .ok_or_else(|| model(ModelError::not_found("document", record.doc.to_string())))?;
    let receipts = app.store.receipts_of(&record.doc).await.map_err(st)?;
    let tree = app.tree();
    let me = app.unit.clone();
    let node_id = app.node_id.clone();
    let doc_id = record.doc.to_string();
    let answer = tokio::task::spawn_blocking(move || -> Result<pb::TraceResponse, Status> {
        let doc = Automerge::load(&bytes).map_err(|e| {
            st(hopluu_store::StoreError::Corrupt {
                doc: doc_id.clone(),
                reason: e.to_string(),
            })
        })?;
        let change = latest(&doc, &record)?;
        let c = doc
            .get_change_by_hash(&change)
            .expect("found in this document");
        let origin = Author::origin(c.actor_id());
        let made_at = c.timestamp();
        let mut hops = vec![pb::TraceHop {
            unit_id: me.to_string(),
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
        // Levels between this node and the maker's relayed the change down
        // to here: they hold it, when they got it is not known here.
        let maker_at = origin
            .as_ref()
            .and_then(|o| ancestors.iter().position(|u| *u == o.unit));
        for (i, unit) in ancestors.into_iter().enumerate() {
            let first: Option<&Receipt> = receipts
                .iter()
                .filter(|r| r.unit == unit.as_str() && covers(&doc, &r.heads, &change))
                .min_by_key(|r| (r.at, r.id));
            let hop = match (first, &origin) {
                (Some(r), _) => pb::TraceHop {
                    node_id: r.node_id.clone(),
                    reached: true,
                    reached_at_millis: r.at,
                    ..Default::default()
                },
                // A change made above this node (a campaign from the
                // national node, say) is at its maker's level since it
                // was made.
                (None, Some(o)) if o.unit == unit => pb::TraceHop {
                    node_id: o.node.clone(),
                    reached: true,
                    reached_at_millis: made_at,
                    ..Default::default()
                },
                (None, _) if maker_at.is_some_and(|m| i < m) => pb::TraceHop {
                    reached: true,
                    ..Default::default()
                },
                (None, _) => pb::TraceHop::default(),
            };
            hops.push(pb::TraceHop {
                unit_id: unit.to_string(),
                depth: tree.depth(&unit) as u32,
                ..hop
            });
        }
        Ok(pb::TraceResponse {
            doc_id,
            change: change.to_string(),
            made_by_node: origin.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
            made_by_unit: origin.map(|o| o.unit.to_string()).unwrap_or_default(),
            made_at_millis: made_at,
            hops,
        })
    })
    .await
    .map_err(|e| Status::internal(format!("trace: {e}")))??;
    Ok(Response::new(answer))
}
