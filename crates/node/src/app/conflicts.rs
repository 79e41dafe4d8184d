//! Concurrent-edit conflicts: listing them with the values the documents
//! hold now, and resolving one as a new change.

use std::collections::HashMap;

use automerge::{Automerge, ChangeHash};
use hopluu_model::{DocMeta, ModelError};
use hopluu_store::conflicts::{self, Conflict, ConflictFilter, ConflictValue, Resolution};

use super::admin::{check_note, list_filter};
use super::{App, Result, invalid};
use crate::NodeError;

/// Conflicts per page when the request asks for more.
const MAX_LIST: u32 = 1000;

/// A recorded conflict with its values as the document holds them now.
#[derive(Debug, Clone)]
pub struct ConflictView {
    pub conflict: Conflict,
    /// Empty when the document is not held here any more.
    pub values: Vec<ConflictValue>,
    /// The field's path as the document names it now (the recorded one if
    /// it cannot be read).
    pub path: String,
}

impl ConflictView {
    fn of(c: &Conflict, doc: Option<&Automerge>) -> ConflictView {
        let (values, path) = match doc {
            Some(d) => (conflicts::values(d, c), conflicts::current_path(d, c)),
            None => (Vec::new(), None),
        };
        ConflictView {
            path: path.unwrap_or_else(|| c.path.clone()),
            conflict: c.clone(),
            values,
        }
    }
}

/// A resolution as a request gives it: the op id of the value to keep, or
/// a new value; exactly one.
pub fn resolution(keep_op_id: &str, value: Option<String>) -> Result<Resolution> {
    match (keep_op_id.trim(), value) {
        ("", None) => Err(ModelError::invalid(
            "keep_op_id",
            "give the op id of the value to keep, or a new value",
        )
        .into()),
        ("", Some(v)) => Ok(Resolution::Value(v)),
        (op, None) => Ok(Resolution::Keep(op.to_owned())),
        (_, Some(_)) => Err(ModelError::invalid(
            "value",
            "give either keep_op_id or a new value, not both",
        )
        .into()),
    }
}

impl App {
    /// A page of conflicts (of one document, or all) after `after_id`.
    pub async fn conflicts(
        &self,
        doc_id: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ConflictView>> {
        let doc = list_filter(doc_id, after_id)?;
        let list = self
            .store
            .conflicts(&ConflictFilter {
                doc,
                after_id,
                limit: limit.min(MAX_LIST),
            })
            .await?;
        self.with_values(&list).await
    }

    /// Conflict `id`, which must exist here.
    pub async fn conflict(&self, id: i64) -> Result<ConflictView> {
        let c = self.existing_conflict(id).await?;
        let mut one = self.with_values(std::slice::from_ref(&c)).await?;
        Ok(one.pop().unwrap_or_else(|| ConflictView::of(&c, None)))
    }

    async fn existing_conflict(&self, id: i64) -> Result<Conflict> {
        self.store
            .conflict(id)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("id: conflict", id)))
    }

    /// The conflicts with their values, each document read once.
    async fn with_values(&self, list: &[Conflict]) -> Result<Vec<ConflictView>> {
        let mut by_doc: HashMap<&hopluu_model::DocId, Vec<&Conflict>> = HashMap::new();
        for c in list {
            by_doc.entry(&c.doc).or_default().push(c);
        }
        let mut out: HashMap<i64, ConflictView> = HashMap::new();
        for (doc, cs) in by_doc {
            let read = self
                .store
                .read_doc(doc, |d| {
                    cs.iter()
                        .map(|c| ConflictView::of(c, Some(d)))
                        .collect::<Vec<_>>()
                })
                .await?;
            let read =
                read.unwrap_or_else(|| cs.iter().map(|c| ConflictView::of(c, None)).collect());
            out.extend(read.into_iter().map(|c| (c.conflict.id, c)));
        }
        Ok(list.iter().filter_map(|c| out.remove(&c.id)).collect())
    }

    /// Resolves conflict `id` (this node's id for it) as the request says
    /// ([`resolution`]), as one new change by this node
    /// ([`hopluu_store::conflicts::resolve`]), and answers the conflict as
    /// it stands after and the change's hash. `operator` (the caller's
    /// identity) and `note` go to the log, not the document.
    pub async fn resolve_conflict_as(
        &self,
        id: i64,
        keep_op_id: &str,
        value: Option<String>,
        operator: &str,
        note: &str,
    ) -> Result<(ConflictView, ChangeHash)> {
        check_note(note)?;
        let choice = resolution(keep_op_id, value)?;
        self.existing_conflict(id).await?;
        let (c, change) = self.resolve_conflict(id, &choice, operator, note).await?;
        let mut after = self.with_values(std::slice::from_ref(&c)).await?;
        Ok((
            after.pop().unwrap_or_else(|| ConflictView::of(&c, None)),
            change,
        ))
    }

    /// Resolves conflict `id` with `choice`, as one new change by this
    /// node: written through a store transaction like every other write,
    /// so the projection follows, the conflict leaves this node's list in
    /// the same commit, and the change replicates (each node that applies
    /// it drops the conflict from its own list). The node must hold
    /// authority over the document's owner, or its peers would quarantine
    /// the change. Nothing is written when the choice is refused.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        choice: &Resolution,
        operator: &str,
        note: &str,
    ) -> Result<(Conflict, ChangeHash)> {
        let mut tx = self.store.begin().await?;
        let c = tx
            .conflict(id)
            .await?
            .ok_or_else(|| invalid("id", format!("conflict {id} does not exist at this node")))?;
        let doc = tx.doc(&c.doc).await?;
        let owner = DocMeta::read(c.doc.clone(), doc)?.owner;
        self.tree().check_authority(&self.unit, &owner)?;
        let change = conflicts::resolve(doc, &self.author(), &c, choice)?;
        tx.commit().await?;
        tracing::info!(
            caller = operator,
            conflict = id,
            doc = %c.doc,
            path = %c.path,
            kept = matches!(choice, Resolution::Keep(_)),
            %change,
            note,
            "conflict resolved"
        );
        Ok((c, change))
    }
}
