//! Units: create, rename, move, close, read and list.

use hopluu_model::member::MemberStatus;
use hopluu_model::unit::{self, Decision, NewUnit, Unit};
use hopluu_model::{DocId, ModelError, UnitId};
use hopluu_store::read::UnitRow;

use super::{App, Result, invalid};
use crate::NodeError;

/// The decision a change of the tree is made by, as a request gives it:
/// named fields, so two dates cannot be swapped unnoticed.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecisionInput<'a> {
    /// The decision's number (số quyết định); may be empty.
    pub number: &'a str,
    /// When it was decided (empty: not given).
    pub decided_on: &'a str,
    /// When it takes effect (empty: today).
    pub effective_on: &'a str,
}

impl DecisionInput<'_> {
    fn parse(&self, today: hopluu_model::Date) -> Result<Decision> {
        Ok(Decision::parse(
            self.number,
            self.decided_on,
            self.effective_on,
            today,
        )?)
    }
}

impl App {
    pub async fn create_unit(
        &self,
        id: Option<&str>,
        name: &str,
        kind: &str,
        parent: &str,
        decision: &DecisionInput<'_>,
    ) -> Result<Unit> {
        let decision = decision.parse(self.today())?;
        let new = NewUnit::parse(&self.kinds, id, name, kind, Some(parent), decision)?;
        let Some(parent) = new.parent.clone() else {
            return Err(invalid(
                "parent_id",
                "must not be empty: every unit but the root has a parent",
            ));
        };
        self.writable_unit("parent_id", &parent).await?;
        let parent_kind = self
            .tree()
            .get(&parent)
            .map(|n| n.kind.clone())
            .expect("checked");
        if !self
            .kinds
            .get(parent_kind.as_str())
            .is_some_and(|k| k.has_children)
        {
            return Err(invalid(
                "parent_id",
                format!("unit {parent} is of kind {parent_kind}, which has no child units"),
            ));
        }
        if self.tree().contains(&new.id) {
            return Err(NodeError::Refused(ModelError::AlreadyExists {
                what: "unit",
                id: new.id.to_string(),
            }));
        }
        let mut tx = self.store.begin().await?;
        let doc = tx.doc(&DocId::Unit(new.id.clone())).await?;
        let u = unit::create(doc, &self.author(), &new)?;
        tx.commit().await?;
        Ok(u)
    }

    async fn edit_unit(
        &self,
        id: &UnitId,
        f: impl FnOnce(&mut automerge::Automerge, &hopluu_model::Author) -> Result<Unit, ModelError>,
    ) -> Result<Unit> {
        let mut tx = self.store.begin().await?;
        let doc_id = DocId::Unit(id.clone());
        if !tx.exists(&doc_id).await? {
            return Err(ModelError::not_found("unit", id).into());
        }
        let u = f(tx.doc(&doc_id).await?, &self.author())?;
        tx.commit().await?;
        Ok(u)
    }

    fn unit_owner_authority(&self, id: &UnitId) -> Result<()> {
        let tree = self.tree();
        let node = tree
            .get(id)
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("unit", id)))?;
        let owner = node.parent.clone().unwrap_or_else(|| id.clone());
        tree.check_authority(&self.unit, &owner)?;
        Ok(())
    }

    pub async fn rename_unit(
        &self,
        id: &str,
        name: &str,
        decision: &DecisionInput<'_>,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let decision = decision.parse(self.today())?;
        self.unit_owner_authority(&id)?;
        self.edit_unit(&id, |doc, a| unit::rename(doc, a, name, &decision))
            .await
    }

    pub async fn move_unit(
        &self,
        id: &str,
        new_parent: &str,
        decision: &DecisionInput<'_>,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let new_parent = self.parse_unit("new_parent_id", new_parent)?;
        let decision = decision.parse(self.today())?;
        self.known_unit("unit_id", &id)?;
        {
            let tree = self.tree();
            tree.require_active("new_parent_id", &new_parent)?;
            tree.check_move(&self.unit, &id, &new_parent)?;
            let kind = tree
                .get(&new_parent)
                .map(|n| n.kind.clone())
                .expect("checked");
            if !self
                .kinds
                .get(kind.as_str())
                .is_some_and(|k| k.has_children)
            {
                return Err(invalid(
                    "new_parent_id",
                    format!("unit {new_parent} is of kind {kind}, which has no child units"),
                ));
            }
        }
        self.edit_unit(&id, |doc, a| unit::move_to(doc, a, &new_parent, &decision))
            .await
    }

    pub async fn close_unit(
        &self,
        id: &str,
        reason: &str,
        decision: &DecisionInput<'_>,
        successors: &[String],
        merged: bool,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let decision = decision.parse(self.today())?;
        let successors = successors
            .iter()
            .map(|s| UnitId::parse("successor_ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        self.unit_owner_authority(&id)?;
        {
            let tree = self.tree();
            for s in &successors {
                tree.require_active("successor_ids", s)?;
            }
            let open_children: Vec<String> = tree
                .children(&id)
                .iter()
                .filter(|c| {
                    tree.get(c)
                        .is_some_and(|n| n.status == unit::UnitStatus::Active)
                })
                .map(ToString::to_string)
                .collect();
            if !open_children.is_empty() {
                return Err(invalid(
                    "unit_id",
                    format!(
                        "unit {id} still has active child units ({}): move or close them first",
                        open_children.join(", ")
                    ),
                ));
            }
        }
        let (_, active) = self
            .store
            .list_members(&id, false, Some(MemberStatus::Active), 1, 0)
            .await?;
        if active > 0 {
            return Err(invalid(
                "unit_id",
                format!(
                    "unit {id} still has {active} active members: transfer them or end their membership first"
                ),
            ));
        }
        self.edit_unit(&id, |doc, a| {
            unit::close(doc, a, reason, &successors, merged, &decision)
        })
        .await
    }

    pub async fn get_unit(&self, id: &str) -> Result<(Unit, u32)> {
        let id = self.parse_unit("unit_id", id)?;
        let u = self
            .store
            .unit(&id)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("unit", &id)))?;
        let depth = self.tree().depth(&id) as u32;
        Ok((u, depth))
    }

    pub async fn list_units(
        &self,
        root: &str,
        include_closed: bool,
        max_depth: Option<u32>,
    ) -> Result<Vec<UnitRow>> {
        let root = if root.trim().is_empty() {
            self.unit.clone()
        } else {
            self.parse_unit("root_id", root)?
        };
        self.known_unit("root_id", &root)?;
        let mut rows = self
            .store
            .list_units(&root, include_closed, max_depth)
            .await?;
        // The store counts levels below the listing's root; a unit's depth
        // is its depth in the tree (the root of the federation is 0), as
        // GetUnit reports it.
        let base = self.tree().depth(&root) as u32;
        for r in &mut rows {
            r.depth += base;
        }
        Ok(rows)
    }
}
