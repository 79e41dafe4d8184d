//! `ListDocs`, `GetDoc` and `Compact`: the documents a node holds
//! (`hopluu docs list|show`, `hopluu compact`).
//!
//! A document is shown by its metadata and its history: each change's
//! hash, maker (the node and unit its actor names), sequence, time,
//! dependencies, size and operation count, never the values it writes
//! (those may be personal data). What each peer is known to have comes
//! from the heads replication records per peer and document.
//!
//! `Compact` is a server stream driven by the client's reading: each
//! document is compacted in its own short transaction
//! ([`hopluu_store::docs_admin`]), progress goes out every
//! [`PROGRESS_EVERY`] documents (or every second), and the last message has
//! `done` set. A client that goes away, or the node shutting down, stops it
//! between or inside a document's transaction; both leave every document
//! whole.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use automerge::Automerge;
use hopluu_model::{DocId, DocKind, ModelError, UnitId};
use hopluu_proto::v1 as pb;
use hopluu_store::StoreError;
use hopluu_store::docs_admin::{CompactProgress, Compaction, DocFilter, DocRow, PeerHeads};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::error::to_status;
use crate::grpc::admin::{AdminGrpc, CompactStream, change_pb};
use crate::grpc::auth;

type R<T> = Result<Response<T>, Status>;

/// Documents per page when the request asks for 0, and at most.
const DEFAULT_LIST: u32 = 100;
const MAX_LIST: u32 = 1000;

/// Changes of history when the request asks for 0, and at most.
const DEFAULT_HISTORY: u32 = 50;
const MAX_HISTORY: u32 = 1000;

/// A compaction reports progress after this many documents (or after
/// [`PROGRESS_INTERVAL`], whichever comes first).
pub const PROGRESS_EVERY: u64 = 25;
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

fn st(e: StoreError) -> Status {
    to_status(&NodeError::Store(e))
}

fn model(e: ModelError) -> Status {
    to_status(&NodeError::from(e))
}

fn kinds() -> String {
    DocKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary_pb(row: &DocRow) -> pb::DocSummary {
    pb::DocSummary {
        doc_id: row.id.to_string(),
        kind: row.id.kind().as_str().to_owned(),
        owner: row.owner.to_string(),
        addressed: row.addressed.iter().map(ToString::to_string).collect(),
        size_bytes: row.size().max(0) as u64,
        heads: row.heads.iter().map(ToString::to_string).collect(),
        seq: row.seq,
        changed_at_millis: row.changed_at,
        chunk_bytes: row.chunks_len.max(0) as u64,
    }
}

fn filter(r: &pb::ListDocsRequest) -> Result<DocFilter, Status> {
    let kind = match r.kind.trim() {
        "" => None,
        k => Some(DocKind::parse(k).ok_or_else(|| {
            model(ModelError::invalid(
                "kind",
                format!("unknown document kind {k:?}: expected one of {}", kinds()),
            ))
        })?),
    };
    let owner = match r.owner.trim() {
        "" => None,
        o => Some(UnitId::parse("owner", o).map_err(model)?),
    };
    if r.subtree && owner.is_none() {
        return Err(model(ModelError::invalid(
            "subtree",
            "needs an owner: the unit whose subtree to list",
        )));
    }
    let after = match r.after.trim() {
        "" => None,
        a => Some(DocId::parse("after", a).map_err(model)?),
    };
    Ok(DocFilter {
        kind,
        owner,
        subtree: r.subtree,
        after,
        limit: match r.limit {
            0 => DEFAULT_LIST,
            n => n.min(MAX_LIST),
        },
    })
}

pub async fn list(admin: &AdminGrpc, req: Request<pb::ListDocsRequest>) -> R<pb::ListDocsResponse> {
    let (_, r) = auth::admin(req, "ListDocs")?;
    let filter = filter(&r)?;
    let store = &admin.app.store;
    if filter.subtree
        && let Some(owner) = &filter.owner
        && !store.tree().contains(owner)
    {
        return Err(model(ModelError::not_found("unit", owner)).tap_field("owner"));
    }
    let (rows, total) = store.list_docs(&filter).await.map_err(st)?;
    Ok(Response::new(pb::ListDocsResponse {
        docs: rows.iter().map(summary_pb).collect(),
        total,
    }))
}

trait TapField {
    fn tap_field(self, field: &str) -> Self;
}

impl TapField for Status {
    /// `doc_id: document roster/x not found`: the message names the field.
    fn tap_field(self, field: &str) -> Status {
        Status::new(self.code(), format!("{field}: {}", self.message()))
    }
}

/// History, change count and peers' standing, from a copy of the document
/// (CPU work: run on a blocking thread).
fn describe(
    doc: &Automerge,
    limit: usize,
    peers: &[PeerHeads],
) -> (Vec<pb::ChangeSummary>, u64, Vec<pb::PeerDocHeads>) {
    // In the order applied here: causal.
    let changes = doc.get_changes(&[]);
    let history = changes.iter().rev().take(limit).map(change_pb).collect();
    let peers = peers
        .iter()
        .map(|p| {
            // Changes not covered by the peer's heads (hashes unknown
            // here, which the peer made or got elsewhere, cover nothing).
            let behind = doc.get_changes_meta(&p.heads).len() as u64;
            pb::PeerDocHeads {
                node_id: p.peer.clone(),
                heads: p.heads.iter().map(ToString::to_string).collect(),
                up_to_date: behind == 0,
                changes_behind: behind,
                unit_id: p.unit.clone(),
            }
        })
        .collect();
    (history, changes.len() as u64, peers)
}

pub async fn get(admin: &AdminGrpc, req: Request<pb::GetDocRequest>) -> R<pb::DocDetail> {
    let (_, r) = auth::admin(req, "GetDoc")?;
    let id = DocId::parse("doc_id", r.doc_id.trim()).map_err(model)?;
    let store = &admin.app.store;
    let not_found = || model(ModelError::not_found("document", &id)).tap_field("doc_id");
    let row = store
        .doc_row(&id)
        .await
        .map_err(st)?
        .ok_or_else(not_found)?;
    // A copy, so that the history is read off the cache's lock.
    let doc = store
        .read_doc(&id, Automerge::clone)
        .await
        .map_err(st)?
        .ok_or_else(not_found)?;
    let peers = store.peer_heads_of(&id).await.map_err(st)?;
    let conflicts = store.conflict_count(Some(&id)).await.map_err(st)?;
    let limit = match r.history_limit {
        0 => DEFAULT_HISTORY,
        n => n.min(MAX_HISTORY),
    } as usize;
    let (heads, (history, changes, peers)) =
        tokio::task::spawn_blocking(move || (doc.get_heads(), describe(&doc, limit, &peers)))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "GetDoc: reading the history failed");
                Status::internal("reading the history failed (see the node's log)")
            })?;
    let mut summary = summary_pb(&row);
    // The heads the history and the peers' standing were read against (a
    // write may have come in since the row was read).
    summary.heads = heads.iter().map(ToString::to_string).collect();
    Ok(Response::new(pb::DocDetail {
        doc: Some(summary),
        history,
        changes,
        peers,
        conflicts: conflicts.max(0) as u64,
    }))
}

fn progress_pb(p: &CompactProgress, done: bool) -> pb::CompactProgress {
    pb::CompactProgress {
        docs_done: p.docs_done,
        docs_total: p.docs_total,
        bytes_before: p.bytes_before,
        bytes_after: p.bytes_after,
        done,
        docs_compacted: p.docs_compacted,
        docs_skipped: p.docs_skipped,
    }
}

pub async fn compact(admin: &AdminGrpc, req: Request<pb::CompactRequest>) -> R<CompactStream> {
    let (who, r) = auth::admin(req, "Compact")?;
    let compaction = admin
        .app
        .store
        .compaction(r.min_chunk_bytes)
        .await
        .map_err(st)?;
    tracing::info!(
        caller = %who.identity,
        docs = compaction.progress().docs_total,
        min_chunk_bytes = r.min_chunk_bytes,
        "compaction started"
    );
    let driver = Driver {
        compaction,
        cancel: admin.replication.cancelled(),
        caller: who.identity.to_string(),
        started: false,
        finished: false,
        last_sent: Instant::now(),
        sent_at: 0,
    };
    Ok(Response::new(Box::pin(Progress {
        next: Some(Box::pin(advance(driver))),
    })))
}

/// A compaction and what the stream has sent of it.
struct Driver {
    compaction: Compaction,
    /// Cancelled when the node shuts down.
    cancel: CancellationToken,
    caller: String,
    started: bool,
    finished: bool,
    last_sent: Instant,
    /// `docs_done` at the last message.
    sent_at: u64,
}

type Item = Result<pb::CompactProgress, Status>;
type Next = Pin<Box<dyn Future<Output = Option<(Item, Driver)>> + Send>>;

/// Compacts documents until the next message is due.
async fn advance(mut d: Driver) -> Option<(Item, Driver)> {
    if d.finished {
        return None;
    }
    if !d.started {
        d.started = true;
        let first = progress_pb(&d.compaction.progress(), false);
        return Some((Ok(first), d));
    }
    loop {
        let step = tokio::select! {
            _ = d.cancel.cancelled() => {
                d.finished = true;
                tracing::info!(caller = %d.caller, progress = ?d.compaction.progress(), "compaction stopped: the node is shutting down");
                return Some((Err(Status::unavailable(
                    "the node is shutting down: compaction stopped with every document whole; run it again",
                )), d));
            }
            step = d.compaction.step() => step,
        };
        let p = d.compaction.progress();
        match step {
            Err(e) => {
                d.finished = true;
                tracing::warn!(caller = %d.caller, progress = ?p, error = %e, "compaction failed");
                return Some((Err(st(e)), d));
            }
            Ok(false) => {
                d.finished = true;
                tracing::info!(
                    caller = %d.caller,
                    docs = p.docs_done,
                    compacted = p.docs_compacted,
                    skipped = p.docs_skipped,
                    bytes_before = p.bytes_before,
                    bytes_after = p.bytes_after,
                    "compaction done"
                );
                return Some((Ok(progress_pb(&p, true)), d));
            }
            Ok(true) => {
                if p.docs_done - d.sent_at >= PROGRESS_EVERY
                    || d.last_sent.elapsed() >= PROGRESS_INTERVAL
                {
                    d.sent_at = p.docs_done;
                    d.last_sent = Instant::now();
                    return Some((Ok(progress_pb(&p, false)), d));
                }
            }
        }
    }
}

/// The response stream: polls [`advance`] one message at a time, so the
/// compaction runs only while the client reads and stops when the stream
/// is dropped.
struct Progress {
    next: Option<Next>,
}

impl tokio_stream::Stream for Progress {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let Some(next) = self.next.as_mut() else {
            return Poll::Ready(None);
        };
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.next = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some((item, driver))) => {
                self.next = Some(Box::pin(advance(driver)));
                Poll::Ready(Some(item))
            }
        }
    }
}
