//! The `AdminService`: a node's state for its administrator, and the
//! changes its replication gate holds in quarantine (`hopluu status`,
//! `hopluu quarantine …`).
//!
//! Every method takes an administrator's certificate ([`auth::admin`]).
//! A quarantined change is shown by its metadata and what the change says
//! of itself (actor, hash, dependencies, size, message, time, operation
//! count), never by the values it writes: those may be personal data.
//! Releasing and discarding go through `hopluu_sync::gate`, in one store
//! transaction each, recorded with the administrator's identity.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hopluu_model::{Author, DocId, ModelError};
use hopluu_proto::v1 as pb;
use hopluu_store::StoreError;
use hopluu_store::quarantine::{QuarantineEntry, QuarantineFilter, QuarantineState};
use hopluu_sync::SyncError;
use tonic::{Request, Response, Status};

use crate::NodeError;
use crate::app::App;
use crate::error::to_status;
use crate::grpc::{auth, conflicts, docs, peers, trace};
use crate::replication::Replication;
use crate::server::Security;
use crate::tls::NodeTls;

type R<T> = Result<Response<T>, Status>;

/// The stream of a compaction's progress.
pub type CompactStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::CompactProgress, Status>> + Send>>;

/// Entries per page when the request asks for more (or for 0: 100).
const MAX_LIST: u32 = 1000;

/// At most this much of a change's message is shown: a forged change may
/// carry anything there.
const MAX_MESSAGE_CHARS: usize = 200;

fn st(e: StoreError) -> Status {
    to_status(&NodeError::Store(e))
}

fn model(e: ModelError) -> Status {
    to_status(&NodeError::from(e))
}

/// A decision's note goes to the node's log: keep it short.
const MAX_NOTE_CHARS: usize = 500;

fn check_note(note: &str) -> Result<(), Status> {
    let n = note.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(model(ModelError::invalid(
            "note",
            format!("at most {MAX_NOTE_CHARS} characters, got {n}"),
        )));
    }
    Ok(())
}

/// A listing's filter: the document (empty: every one) and the id to
/// page after, checked (`doc_id`, `after_id`).
pub(crate) fn list_filter(doc_id: &str, after_id: i64) -> Result<Option<DocId>, Status> {
    if after_id < 0 {
        return Err(model(ModelError::invalid(
            "after_id",
            format!("must not be negative, got {after_id}"),
        )));
    }
    match doc_id.trim() {
        "" => Ok(None),
        d => DocId::parse("doc_id", d).map(Some).map_err(model),
    }
}

/// The admin service of one node.
#[derive(Clone, Debug)]
pub struct AdminGrpc {
    pub(crate) app: Arc<App>,
    /// The node's replication: its edges, reports and dialler.
    pub(crate) replication: Arc<Replication>,
    /// The node's TLS material, when it serves TLS.
    tls: Option<Arc<NodeTls>>,
}

impl AdminGrpc {
    pub fn new(app: Arc<App>, replication: Arc<Replication>, security: &Security) -> AdminGrpc {
        let tls = match security {
            Security::Tls(tls) => Some(tls.clone()),
            Security::InsecurePlaintext => None,
        };
        AdminGrpc {
            app,
            replication,
            tls,
        }
    }

    /// The entry `id`, which must exist and be held.
    async fn held(&self, id: i64, rpc: &str) -> Result<QuarantineEntry, Status> {
        let entry = self.entry(id).await?;
        if entry.state != QuarantineState::Held {
            let by = entry
                .decided_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            return Err(model(ModelError::precondition(
                "id",
                format!(
                    "quarantine entry {id} is {}{by}, not held: {rpc} takes held entries only",
                    entry.state.as_str()
                ),
            )));
        }
        Ok(entry)
    }

    async fn entry(&self, id: i64) -> Result<QuarantineEntry, Status> {
        self.app
            .store
            .quarantine_get(id)
            .await
            .map_err(st)?
            .ok_or_else(|| model(ModelError::not_found("quarantine entry", id)).tap_field("id"))
    }

    fn tls_status(&self) -> Option<pb::TlsStatus> {
        let tls = self.tls.as_ref()?;
        let info = tls.info();
        Some(pb::TlsStatus {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            identity: info
                .identity
                .as_ref()
                .and_then(|i| i.uri())
                .unwrap_or_default(),
            not_after: info.expires(),
            not_after_unix: unix_seconds(info.not_after),
            days_left: info.days_left(SystemTime::now()),
            trusted_cas: tls.cas().iter().map(|c| c.subject.clone()).collect(),
        })
    }

    /// Records a decision's outcome: the log line (with the note) and the
    /// answer with the entry as it now stands.
    async fn decided(
        &self,
        who: &auth::Caller,
        entry: &QuarantineEntry,
        changes: usize,
        note: &str,
    ) -> R<pb::QuarantineDecision> {
        tracing::info!(
            caller = %who.identity,
            rpc = who.rpc,
            id = entry.id,
            doc = %entry.doc,
            change = %entry.hash,
            changes,
            note,
            "quarantine decision"
        );
        let after = self.entry(entry.id).await?;
        Ok(Response::new(pb::QuarantineDecision {
            entry: Some(entry_pb(&after)),
            changes: changes as u64,
        }))
    }
}

trait TapField {
    fn tap_field(self, field: &str) -> Self;
}

impl TapField for Status {
    /// `id: quarantine entry 7 not found`: the message names the field.
    fn tap_field(self, field: &str) -> Status {
        Status::new(self.code(), format!("{field}: {}", self.message()))
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn state_pb(s: QuarantineState) -> pb::QuarantineState {
    match s {
        QuarantineState::Held => pb::QuarantineState::Held,
        QuarantineState::Released => pb::QuarantineState::Released,
        QuarantineState::Discarded => pb::QuarantineState::Discarded,
    }
}

fn entry_pb(e: &QuarantineEntry) -> pb::QuarantineEntry {
    pb::QuarantineEntry {
        id: e.id,
        doc_id: e.doc.clone(),
        hash: e.hash.to_string(),
        origin_node: e.origin_node.clone(),
        origin_unit: e.origin_unit.clone(),
        peer_node: e.peer_node.clone(),
        peer_unit: e.peer_unit.clone(),
        code: e.code.clone(),
        reason: e.reason.clone(),
        waits_for: e.waits_for.map(|h| h.to_string()).unwrap_or_default(),
        size_bytes: e.change_len.max(0) as u64,
        state: state_pb(e.state) as i32,
        received_at_millis: e.received_at,
        decided_at_millis: e.decided_at.unwrap_or(0),
        decided_by: e.decided_by.clone().unwrap_or_default(),
    }
}

/// What a stored change says of itself, without its operations' values.
fn change_summary(e: &QuarantineEntry, bytes: &[u8]) -> pb::ChangeSummary {
    match automerge::Change::try_from(bytes) {
        Err(err) => pb::ChangeSummary {
            hash: e.hash.to_string(),
            size_bytes: bytes.len() as u64,
            decode_error: err.to_string(),
            ..Default::default()
        },
        Ok(c) => pb::ChangeSummary {
            size_bytes: bytes.len() as u64,
            ..change_pb(&c)
        },
    }
}

/// What a change says of itself (its actor's node and unit, hash, seq,
/// dependencies, time, message, operation count), never the values it
/// writes. Shared with `GetDoc`'s history.
pub(crate) fn change_pb(c: &automerge::Change) -> pb::ChangeSummary {
    let origin = Author::origin(c.actor_id());
    pb::ChangeSummary {
        hash: c.hash().to_string(),
        actor: c.actor_id().to_hex_string(),
        actor_node: origin.as_ref().map(|o| o.node.clone()).unwrap_or_default(),
        actor_unit: origin.map(|o| o.unit.to_string()).unwrap_or_default(),
        seq: c.seq(),
        deps: c.deps().iter().map(ToString::to_string).collect(),
        size_bytes: c.raw_bytes().len() as u64,
        time_millis: c.timestamp(),
        message: c
            .message()
            .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect())
            .unwrap_or_default(),
        op_count: c.len() as u64,
        decode_error: String::new(),
    }
}

/// Errors of the gate's release and discard: a missing dependency is the
/// administrator's to resolve first.
fn gate_error(e: SyncError) -> Status {
    match e {
        SyncError::Store(s) => st(s),
        SyncError::Link(reason) => model(ModelError::precondition("id", reason)),
        other => {
            tracing::error!(error = %other, "quarantine decision failed");
            Status::internal("quarantine decision failed (see the node's log)")
        }
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminGrpc {
    async fn status(&self, req: Request<pb::StatusRequest>) -> R<pb::NodeStatus> {
        auth::admin(req, "Status")?;
        let app = &self.app;
        let unit_name = app
            .tree()
            .get(&app.unit)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let counts = app.store.quarantine_counts().await.map_err(st)?;
        let count = |s| counts.get(&s).copied().unwrap_or(0).max(0) as u64;
        let edges = self.replication.edges();
        Ok(Response::new(pb::NodeStatus {
            node_id: app.node_id.clone(),
            unit_id: app.unit.to_string(),
            unit_name,
            database: app.store.backend().as_str().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: app.uptime_seconds(),
            feed_position: app.store.feed_position().await.map_err(st)?.max(0) as u64,
            documents: app.store.doc_count().await.map_err(st)?.max(0) as u64,
            tls: self.tls_status(),
            quarantine: Some(pb::QuarantineCounts {
                held: count(QuarantineState::Held),
                released: count(QuarantineState::Released),
                discarded: count(QuarantineState::Discarded),
            }),
            conflicts: app.store.conflict_count(None).await.map_err(st)?.max(0) as u64,
            peers: edges.len() as u64,
            peers_connected: edges.iter().filter(|e| e.connected).count() as u64,
        }))
    }

    async fn list_quarantine(
        &self,
        req: Request<pb::ListQuarantineRequest>,
    ) -> R<pb::ListQuarantineResponse> {
        let (_, r) = auth::admin(req, "ListQuarantine")?;
        let state = match pb::QuarantineState::try_from(r.state) {
            Ok(pb::QuarantineState::Unspecified) => None,
            Ok(pb::QuarantineState::Held) => Some(QuarantineState::Held),
            Ok(pb::QuarantineState::Released) => Some(QuarantineState::Released),
            Ok(pb::QuarantineState::Discarded) => Some(QuarantineState::Discarded),
            Err(_) => {
                return Err(model(ModelError::invalid(
                    "state",
                    format!(
                        "unknown state {}: expected HELD, RELEASED or DISCARDED",
                        r.state
                    ),
                )));
            }
        };
        let doc = list_filter(&r.doc_id, r.after_id)?.map(|d| d.to_string());
        let entries = self
            .app
            .store
            .quarantine_list(&QuarantineFilter {
                state,
                doc,
                after_id: r.after_id,
                limit: r.limit.min(MAX_LIST),
            })
            .await
            .map_err(st)?;
        Ok(Response::new(pb::ListQuarantineResponse {
            entries: entries.iter().map(entry_pb).collect(),
        }))
    }

    async fn get_quarantine(
        &self,
        req: Request<pb::GetQuarantineRequest>,
    ) -> R<pb::QuarantineDetail> {
        let (_, r) = auth::admin(req, "GetQuarantine")?;
        let e = self.entry(r.id).await?;
        Ok(Response::new(pb::QuarantineDetail {
            entry: Some(entry_pb(&e)),
            change: e.change.as_deref().map(|b| change_summary(&e, b)),
        }))
    }

    async fn release_quarantine(
        &self,
        req: Request<pb::DecideQuarantineRequest>,
    ) -> R<pb::QuarantineDecision> {
        let (who, r) = auth::admin(req, "ReleaseQuarantine")?;
        check_note(&r.note)?;
        let entry = self.held(r.id, who.rpc).await?;
        let store = &self.app.store;
        let tree = store.tree();
        let by = who.identity.to_string();
        let now = self.app.clock.now_millis();
        let mut tx = store.begin().await.map_err(st)?;
        let n = hopluu_sync::gate::release(&mut tx, &tree, &self.app.unit, &entry, &by, now)
            .await
            .map_err(gate_error)?;
        tx.commit().await.map_err(st)?;
        self.decided(&who, &entry, n, &r.note).await
    }

    async fn discard_quarantine(
        &self,
        req: Request<pb::DecideQuarantineRequest>,
    ) -> R<pb::QuarantineDecision> {
        let (who, r) = auth::admin(req, "DiscardQuarantine")?;
        check_note(&r.note)?;
        let entry = self.held(r.id, who.rpc).await?;
        let store = &self.app.store;
        let by = who.identity.to_string();
        let now = self.app.clock.now_millis();
        let mut tx = store.begin().await.map_err(st)?;
        let n = hopluu_sync::gate::discard(&mut tx, &entry, &by, now)
            .await
            .map_err(gate_error)?;
        tx.commit().await.map_err(st)?;
        self.decided(&who, &entry, n, &r.note).await
    }

    async fn list_peers(&self, req: Request<pb::ListPeersRequest>) -> R<pb::ListPeersResponse> {
        peers::list(self, req).await
    }

    async fn tree(&self, req: Request<pb::TreeRequest>) -> R<pb::TreeResponse> {
        peers::tree(self, req).await
    }

    async fn sync_now(&self, req: Request<pb::SyncNowRequest>) -> R<pb::SyncNowResponse> {
        peers::sync_now(self, req).await
    }

    async fn list_docs(&self, req: Request<pb::ListDocsRequest>) -> R<pb::ListDocsResponse> {
        docs::list(self, req).await
    }

    async fn get_doc(&self, req: Request<pb::GetDocRequest>) -> R<pb::DocDetail> {
        docs::get(self, req).await
    }

    type CompactStream = CompactStream;

    async fn compact(&self, req: Request<pb::CompactRequest>) -> R<CompactStream> {
        docs::compact(self, req).await
    }

    async fn check_peer(&self, req: Request<pb::CheckPeerRequest>) -> R<pb::CheckPeerResponse> {
        peers::check_peer(self, req).await
    }

    async fn trace(&self, req: Request<pb::TraceRequest>) -> R<pb::TraceResponse> {
        trace::trace(self, req).await
    }

    async fn list_conflicts(
        &self,
        req: Request<pb::ListConflictsRequest>,
    ) -> R<pb::ListConflictsResponse> {
        conflicts::list(self, req).await
    }

    async fn get_conflict(&self, req: Request<pb::GetConflictRequest>) -> R<pb::Conflict> {
        conflicts::get(self, req).await
    }

    async fn resolve_conflict(
        &self,
        req: Request<pb::ResolveConflictRequest>,
    ) -> R<pb::ResolveConflictResponse> {
        conflicts::resolve(self, req).await
    }
}
