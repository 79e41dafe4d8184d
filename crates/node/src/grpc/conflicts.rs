//! `ListConflicts`, `GetConflict` and `ResolveConflict`: fields where
//! concurrent writes left more than one value (`hopluu conflicts …`).
//!
//! The store records where each conflict is, in the commit that made it
//! ([`hopluu_store::conflicts`]); the values are read here from the
//! document, with who wrote each (the node and unit its actor names) and
//! when (the time of the change holding it). Values may be personal data:
//! this service is for administrators only ([`auth::admin`]), and they
//! never go to the log. A resolution is written by [`App::resolve_conflict`]
//! as one new change by this node, logged with the administrator's
//! identity and note.
//!
//! [`App::resolve_conflict`]: crate::app::App::resolve_conflict

use std::collections::HashMap;

use hopluu_model::{DocId, ModelError};
use hopluu_proto::v1 as pb;
use hopluu_store::StoreError;
use hopluu_store::conflicts::{self, Conflict, ConflictFilter, ConflictValue, Resolution};
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::error::to_status;
use crate::grpc::admin::AdminGrpc;
use crate::grpc::auth;

type R<T> = Result<Response<T>, Status>;

/// Conflicts per page when the request asks for more.
const MAX_LIST: u32 = 1000;

/// A resolution's note goes to the node's log: keep it short.
const MAX_NOTE_CHARS: usize = 500;

fn st(e: StoreError) -> Status {
    to_status(&NodeError::Store(e))
}

fn model(e: ModelError) -> Status {
    to_status(&NodeError::from(e))
}

fn value_pb(v: ConflictValue) -> pb::ConflictValue {
    pb::ConflictValue {
        value: v.value,
        op_id: v.op_id,
        node_id: v.node,
        unit_id: v.unit,
        written_at_millis: v.written_at,
        change: v.change.map(|h| h.to_string()).unwrap_or_default(),
    }
}

/// A recorded conflict with its values as the document holds them now.
fn conflict_pb(c: &Conflict, doc: Option<&automerge::Automerge>) -> pb::Conflict {
    let (values, path) = match doc {
        Some(d) => (conflicts::values(d, c), conflicts::current_path(d, c)),
        None => (Vec::new(), None),
    };
    pb::Conflict {
        id: c.id,
        doc_id: c.doc.to_string(),
        record: c.record.clone(),
        path: path.unwrap_or_else(|| c.path.clone()),
        field: c.field.clone(),
        values: values.into_iter().map(value_pb).collect(),
        detected_at_millis: c.detected_at,
    }
}

/// The conflicts with their values, each document read once.
async fn with_values(admin: &AdminGrpc, list: &[Conflict]) -> Result<Vec<pb::Conflict>, Status> {
    let mut by_doc: HashMap<&DocId, Vec<&Conflict>> = HashMap::new();
    for c in list {
        by_doc.entry(&c.doc).or_default().push(c);
    }
    let mut out: HashMap<i64, pb::Conflict> = HashMap::new();
    for (doc, cs) in by_doc {
        let read = admin
            .app
            .store
            .read_doc(doc, |d| {
                cs.iter()
                    .map(|c| conflict_pb(c, Some(d)))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(st)?;
        let read = read.unwrap_or_else(|| cs.iter().map(|c| conflict_pb(c, None)).collect());
        out.extend(read.into_iter().map(|c| (c.id, c)));
    }
    Ok(list.iter().filter_map(|c| out.remove(&c.id)).collect())
}

/// The conflict `id`, which must exist here.
async fn existing(admin: &AdminGrpc, id: i64) -> Result<Conflict, Status> {
    admin
        .app
        .store
        .conflict(id)
        .await
        .map_err(st)?
        .ok_or_else(|| Status::not_found(format!("id: conflict {id} not found at this node")))
}

pub async fn list(
    admin: &AdminGrpc,
    req: Request<pb::ListConflictsRequest>,
) -> R<pb::ListConflictsResponse> {
    let (_, r) = auth::admin(req, "ListConflicts")?;
    let doc = crate::grpc::admin::list_filter(&r.doc_id, r.after_id)?;
    let list = admin
        .app
        .store
        .conflicts(&ConflictFilter {
            doc,
            after_id: r.after_id,
            limit: r.limit.min(MAX_LIST),
        })
        .await
        .map_err(st)?;
    Ok(Response::new(pb::ListConflictsResponse {
        conflicts: with_values(admin, &list).await?,
    }))
}

pub async fn get(admin: &AdminGrpc, req: Request<pb::GetConflictRequest>) -> R<pb::Conflict> {
    let (_, r) = auth::admin(req, "GetConflict")?;
    let c = existing(admin, r.id).await?;
    let mut one = with_values(admin, std::slice::from_ref(&c)).await?;
    Ok(Response::new(
        one.pop().unwrap_or_else(|| conflict_pb(&c, None)),
    ))
}

pub async fn resolve(
    admin: &AdminGrpc,
    req: Request<pb::ResolveConflictRequest>,
) -> R<pb::ResolveConflictResponse> {
    let (who, r) = auth::admin(req, "ResolveConflict")?;
    let n = r.note.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(model(ModelError::invalid(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters, got {n}"),
        )));
    }
    let choice = match (r.keep_op_id.trim(), r.value) {
        ("", None) => {
            return Err(model(ModelError::invalid(
                "keep_op_id",
                "give the op id of the value to keep, or a new value",
            )));
        }
        ("", Some(v)) => Resolution::Value(v),
        (op, None) => Resolution::Keep(op.to_owned()),
        (_, Some(_)) => {
            return Err(model(ModelError::invalid(
                "value",
                "give either keep_op_id or a new value, not both",
            )));
        }
    };
    existing(admin, r.id).await?;
    let (c, change) = admin
        .app
        .resolve_conflict(r.id, &choice, &who.identity.to_string(), &r.note)
        .await
        .map_err(st)?;
    let mut after = with_values(admin, std::slice::from_ref(&c)).await?;
    Ok(Response::new(pb::ResolveConflictResponse {
        conflict: Some(after.pop().unwrap_or_else(|| conflict_pb(&c, None))),
        change: change.to_string(),
    }))
}
