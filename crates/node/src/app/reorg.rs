//! Reorganisation decisions: a plan checked whole against the tree
//! ([`reorg::simulate`]), its impact, and its application in one store
//! transaction: unit records created, renamed, moved and closed, the
//! rosters of merged grassroots unions transferred, members ceased, and
//! the `decision/{id}` document, all committed together or not at all.
//!
//! A dry run is the same path with the transaction dropped instead of
//! committed, so what it reports is what the application then does.

use std::collections::{BTreeMap, HashSet};

use hopluu_model::member::{self, MemberStatus};
use hopluu_model::reorg::{self, Effects, Facts, Outcome, Plan, PlanInput, Recorded};
use hopluu_model::unit::{self, NewUnit, UnitStatus};
use hopluu_model::{DecisionId, DocId, ModelError, UnitId, UnitTree};
use hopluu_store::WriteTx;
use hopluu_store::decisions::DecisionListRow;

use super::{App, Result, invalid};
use crate::NodeError;

/// What a node hosts before and after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHosting {
    pub node_id: String,
    pub unit: UnitId,
    pub units_before: u64,
    pub units_after: u64,
    pub units_gained: Vec<UnitId>,
    pub units_lost: Vec<UnitId>,
    pub members_gained: u64,
    pub members_lost: u64,
}

/// What a decision does, computed before anything is written.
#[derive(Debug, Clone, Default)]
pub struct Impact {
    pub created: Vec<UnitId>,
    pub renamed: Vec<UnitId>,
    pub moved: Vec<reorg::Moving>,
    pub closed: Vec<reorg::Closing>,
    /// Member records in the moved subtrees, by status.
    pub members_moved: BTreeMap<String, u64>,
    pub members_transferred: u64,
    pub members_ceased: u64,
    /// Unit records whose owner changes.
    pub docs_owner_changed: u64,
    /// Documents owned in the moved subtrees, by kind.
    pub docs_rehomed: BTreeMap<String, u64>,
    pub nodes: Vec<NodeHosting>,
}

/// A decision applied (or only tried, for a dry run).
#[derive(Debug, Clone)]
pub struct Applied {
    pub applied: bool,
    pub decision: Recorded,
    pub impact: Impact,
}

/// At most this many units are named per node in an impact's lists.
const LISTED: usize = 50;

impl App {
    /// Checks a reorganisation decision and applies it in one transaction
    /// (`dry_run`: reports its impact and writes nothing).
    pub async fn apply_decision(&self, input: &PlanInput, dry_run: bool) -> Result<Applied> {
        let today = self.today();
        let plan = Plan::parse(input, &self.kinds, today)?;
        self.check_not_applied(&plan).await?;
        let tree = self.tree();
        let facts = self.facts(&plan).await?;
        let fx = reorg::simulate(&plan, &tree, &self.kinds, &self.unit, &facts)
            .map_err(|e| self.where_to_apply(&plan, &tree, e))?;
        for (i, s) in plan.steps.iter().enumerate() {
            if let reorg::Step::Cease { on, .. } = s
                && *on > today
            {
                return Err(invalid(
                    &format!("steps[{i}].on"),
                    format!("{on} is in the future: members cease on a day that has come"),
                ));
            }
        }
        // The documents owned in the moved subtrees, with their heads
        // before the decision's own changes: what the impact counts, and
        // what the decision seals (what the moved units' hosts made until
        // now stays theirs to have made).
        let moved = fx.moved_units();
        let owned = self.store().docs_heads_owned_by(&moved).await?;
        let mut impact = self.impact(&tree, &fx, &moved, &owned).await?;
        let seals = if dry_run {
            Vec::new()
        } else {
            let mut sealed = owned;
            // The moved units' own records too (owned by their old
            // parents): a new host that cannot place the old parent must
            // still take the record's history, or it cannot place the unit
            // (and everything of it waits) until the old host's own seal
            // comes round.
            for m in &fx.moves {
                let id = DocId::Unit(m.unit.clone());
                if let Some(heads) = self.store().doc_heads(&id).await?
                    && !sealed.iter().any(|(d, _)| *d == id.to_string())
                {
                    sealed.push((id.to_string(), heads));
                }
            }
            sealed
                .into_iter()
                .map(|(doc, heads)| reorg::Seal::of(doc, &heads))
                .collect()
        };
        let give_up = self.give_up(&plan).await?;
        let mut tx = self.store().begin().await?;
        let outcome = self.write(&mut tx, &plan, &fx).await?;
        if !dry_run {
            // What the nodes given up made and this node holds back is
            // discarded with the decision, recorded as its doing.
            let by = format!("decision {}", plan.number);
            let now = self.clock.now_millis();
            for g in &give_up {
                for e in &g.held {
                    hopluu_sync::gate::discard(&mut tx, e, &by, now)
                        .await
                        .map_err(NodeError::Gate)?;
                }
            }
        }
        impact.members_transferred = outcome.members_transferred;
        impact.members_ceased = outcome.members_ceased;
        let decision = Recorded {
            plan: reorg::normal_input(&plan),
            id: plan.id.clone(),
            applied_at: if dry_run {
                String::new()
            } else {
                hopluu_model::member::utc_timestamp(self.clock.now_millis())
            },
            applied_by: if dry_run {
                String::new()
            } else {
                self.node_id.clone()
            },
            outcome,
            seals,
            given_up: give_up.into_iter().map(|g| g.given_up).collect(),
        };
        if dry_run {
            // Dropped, not committed: nothing of it is written.
            drop(tx);
            return Ok(Applied {
                applied: false,
                decision,
                impact,
            });
        }
        reorg::write(
            tx.doc(&DocId::Decision(plan.id.clone())).await?,
            &self.author(),
            &decision,
        )?;
        tx.commit().await?;
        tracing::info!(
            decision = %plan.id,
            number = %plan.number,
            steps = plan.steps.len(),
            units_moved = decision.outcome.units_moved,
            members_ceased = decision.outcome.members_ceased,
            "reorganisation decision applied"
        );
        Ok(Applied {
            applied: true,
            decision,
            impact,
        })
    }

    /// A decision is applied once: its id, or its number from the same
    /// issuing unit, already recorded refuses it (a plan file run twice).
    async fn check_not_applied(&self, plan: &Plan) -> Result<()> {
        if self.store().decision_row(&plan.id).await?.is_some() {
            return Err(NodeError::Refused(ModelError::AlreadyExists {
                what: "decision",
                id: plan.id.to_string(),
            }));
        }
        for id in self.store().decisions_numbered(&plan.number).await? {
            if let Some(row) = self.store().decision_row(&id).await?
                && row.issuing_unit == plan.issuing_unit.as_str()
            {
                return Err(invalid(
                    "number",
                    format!(
                        "decision {} of unit {} was applied already (id {}, at {}): it is not applied twice",
                        plan.number, plan.issuing_unit, row.id, row.applied_at
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refused for want of authority: names the unit whose node can apply
    /// the decision (and the node, when it is a peer of this one).
    fn where_to_apply(&self, plan: &Plan, tree: &UnitTree, e: ModelError) -> NodeError {
        let ModelError::NoAuthority { node_unit, target } = e else {
            return NodeError::Refused(e);
        };
        let hint = match reorg::applying_unit(plan, tree) {
            Some(u) => {
                let name = tree.get(&u).map(|n| n.name.clone()).unwrap_or_default();
                format!(
                    "{target}: apply this decision at the node hosting unit {u} ({name}), which holds authority over every unit it changes"
                )
            }
            None => target,
        };
        NodeError::Refused(ModelError::NoAuthority {
            node_unit,
            target: hint,
        })
    }

    /// What the plan's checks read from the projections.
    async fn facts(&self, plan: &Plan) -> Result<Facts> {
        let named = plan.named_units();
        let created_on = self.store().units_created_on(&named).await?;
        let members = plan.named_members();
        let member_units = self
            .store()
            .active_locations(&members)
            .await?
            .into_iter()
            .map(|(m, loc)| (m, loc.unit))
            .collect();
        Ok(Facts {
            created_on,
            active_members: self.store().active_member_counts(&named).await?,
            member_units,
        })
    }

    /// The impact of `fx` on the tree this node knows: units, the members
    /// and documents that move with them, and what this node and its peers
    /// host before and after.
    async fn impact(
        &self,
        before: &UnitTree,
        fx: &Effects,
        moved_units: &[UnitId],
        owned: &[(String, Vec<automerge::ChangeHash>)],
    ) -> Result<Impact> {
        let after = &fx.tree_after;
        let mut docs_rehomed: BTreeMap<String, u64> = BTreeMap::new();
        for (doc, _) in owned {
            let kind = DocId::parse("doc_id", doc).map(|d| d.kind().as_str().to_owned());
            *docs_rehomed.entry(kind?).or_default() += 1;
        }
        let mut nodes = vec![(self.node_id.clone(), self.unit.clone())];
        for p in self.store().peers().await? {
            if let Ok(u) = UnitId::parse("unit", &p.unit) {
                nodes.push((p.node_id, u));
            }
        }
        let active_set = |t: &UnitTree, root: &UnitId| -> HashSet<UnitId> {
            t.subtree(root)
                .into_iter()
                .filter(|u| t.get(u).is_some_and(|n| n.status == UnitStatus::Active))
                .collect()
        };
        let mut hosting = Vec::new();
        let mut counted: Vec<UnitId> = Vec::new();
        for (node_id, unit) in nodes {
            let (b, a) = (active_set(before, &unit), active_set(after, &unit));
            if b == a {
                continue;
            }
            let mut gained: Vec<UnitId> = a.difference(&b).cloned().collect();
            let mut lost: Vec<UnitId> = b.difference(&a).cloned().collect();
            gained.sort();
            lost.sort();
            counted.extend(gained.iter().cloned());
            counted.extend(lost.iter().cloned());
            hosting.push((
                NodeHosting {
                    node_id,
                    unit,
                    units_before: b.len() as u64,
                    units_after: a.len() as u64,
                    units_gained: Vec::new(),
                    units_lost: Vec::new(),
                    members_gained: 0,
                    members_lost: 0,
                },
                gained,
                lost,
            ));
        }
        counted.sort();
        counted.dedup();
        let active = self.store().active_member_counts(&counted).await?;
        let sum = |v: &[UnitId]| v.iter().map(|u| active.get(u).copied().unwrap_or(0)).sum();
        let nodes = hosting
            .into_iter()
            .map(|(mut h, gained, lost)| {
                h.members_gained = sum(&gained);
                h.members_lost = sum(&lost);
                h.units_gained = gained.into_iter().take(LISTED).collect();
                h.units_lost = lost.into_iter().take(LISTED).collect();
                h
            })
            .collect();
        Ok(Impact {
            created: fx.creates.iter().map(|c| c.0.clone()).collect(),
            renamed: fx.renames.iter().map(|r| r.0.clone()).collect(),
            moved: fx.moves.clone(),
            closed: fx.closes.clone(),
            members_moved: self.store().member_status_counts(moved_units).await?,
            members_transferred: 0,
            members_ceased: 0,
            docs_owner_changed: fx.moves.len() as u64,
            docs_rehomed,
            nodes,
        })
    }

    /// Writes the effects in `tx`, in order: units created, renamed and
    /// moved; rosters of merged units transferred; members ceased; units
    /// closed. Any refusal leaves `tx` to be dropped: nothing is written.
    async fn write(&self, tx: &mut WriteTx<'_>, plan: &Plan, fx: &Effects) -> Result<Outcome> {
        let author = self.author();
        let decision = plan.decision();
        let label = format!("{} ({})", plan.number, plan.id);
        let mut out = Outcome::default();
        for (id, name, kind, parent) in &fx.creates {
            let new = NewUnit {
                id: id.clone(),
                name: name.clone(),
                kind: kind.clone(),
                parent: Some(parent.clone()),
                decision: decision.clone(),
            };
            unit::create(tx.doc(&DocId::Unit(id.clone())).await?, &author, &new)?;
            out.units_created += 1;
        }
        for (id, name) in &fx.renames {
            unit::rename(
                tx.doc(&DocId::Unit(id.clone())).await?,
                &author,
                name,
                &decision,
            )?;
            out.units_renamed += 1;
        }
        for m in &fx.moves {
            unit::move_to(
                tx.doc(&DocId::Unit(m.unit.clone())).await?,
                &author,
                &m.to,
                &decision,
            )?;
            out.units_moved += 1;
        }
        for (from, to) in &fx.transfers {
            out.members_transferred += self.transfer_all(tx, from, to, plan, &label).await?;
        }
        // The k-th ceasing is the k-th cease step: a refusal here (a member
        // who joined after the day they would cease) names it.
        let cease_steps = plan
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, reorg::Step::Cease { .. }))
            .map(|(i, _)| format!("steps[{i}]."));
        for (c, step) in fx.ceases.iter().zip(cease_steps) {
            let in_step = |e: ModelError| e.in_field(&step);
            for u in &c.units {
                for b in tx.roster_buckets(u).await? {
                    let doc = tx.doc(&member::roster_doc(u, b)).await?;
                    let ended = member::end_many(
                        doc,
                        &author,
                        None,
                        MemberStatus::Ceased,
                        &c.reason,
                        c.on,
                        &label,
                    )
                    .map_err(in_step)?;
                    out.members_ceased += ended.len() as u64;
                }
            }
            for (u, ids) in &c.members {
                let mut by_bucket: BTreeMap<u32, Vec<hopluu_model::MemberId>> = BTreeMap::new();
                for loc in self.store().active_locations(ids).await?.into_values() {
                    by_bucket.entry(loc.bucket).or_default().push(loc.member);
                }
                for (b, ids) in by_bucket {
                    let doc = tx.doc(&member::roster_doc(u, b)).await?;
                    let ended = member::end_many(
                        doc,
                        &author,
                        Some(&ids),
                        MemberStatus::Ceased,
                        &c.reason,
                        c.on,
                        &label,
                    )
                    .map_err(in_step)?;
                    out.members_ceased += ended.len() as u64;
                }
            }
        }
        for c in &fx.closes {
            unit::close(
                tx.doc(&DocId::Unit(c.unit.clone())).await?,
                &author,
                &c.reason,
                &c.successors,
                c.status == UnitStatus::Merged,
                &decision,
            )?;
            out.units_closed += 1;
        }
        Ok(out)
    }

    /// Moves every active member of `from` to `to` (a grassroots union
    /// merged into another), with their personal data where this node
    /// holds it. Returns how many moved.
    async fn transfer_all(
        &self,
        tx: &mut WriteTx<'_>,
        from: &UnitId,
        to: &UnitId,
        plan: &Plan,
        label: &str,
    ) -> Result<u64> {
        let author = self.author();
        let reason = format!("merged into {to} by decision {}", plan.number);
        let on = plan.effective_on;
        let holds_private = self.holds_private();
        let mut counts = tx.bucket_counts(to).await?;
        let mut moved = 0;
        for b in tx.roster_buckets(from).await? {
            let members = member::read_many(tx.doc(&member::roster_doc(from, b)).await?, None)?;
            for m in members
                .into_iter()
                .filter(|m| m.status == MemberStatus::Active)
            {
                let private = if holds_private {
                    self.store().private_data(&m.id, from).await?
                } else {
                    None
                };
                let ended = member::end_by(
                    tx.doc(&member::roster_doc(from, b)).await?,
                    &author,
                    &m.id,
                    MemberStatus::Transferred,
                    &reason,
                    on.max(m.joined_on),
                    Some(to),
                    label,
                )?;
                let bucket = match tx
                    .member_locations(&m.id)
                    .await?
                    .iter()
                    .find(|l| l.unit == *to)
                {
                    Some(l) => l.bucket,
                    None => tx.bucket_for(&m.id, &counts),
                };
                *counts.entry(bucket).or_default() += 1;
                member::transfer_in_by(
                    tx.doc(&member::roster_doc(to, bucket)).await?,
                    &author,
                    to,
                    bucket,
                    &ended,
                    &reason,
                    on.max(m.joined_on),
                    label,
                )?;
                if let Some(p) = private.filter(|p| !p.is_empty()) {
                    member::put_private(
                        tx.doc(&member::private_doc(to, bucket)).await?,
                        &author,
                        to,
                        bucket,
                        &m.id,
                        &p,
                    )?;
                }
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Decisions issued in `unit`'s subtree (empty: every decision held).
    pub async fn list_decisions(&self, unit: &str) -> Result<Vec<DecisionListRow>> {
        let within = match unit.trim() {
            "" => None,
            u => {
                let u = self.parse_unit("unit_id", u)?;
                self.known_unit("unit_id", &u)?;
                Some(u)
            }
        };
        Ok(self.store().list_decisions(within.as_ref()).await?)
    }

    /// One decision, by id or by number (a number that names several
    /// decisions is refused, listing them).
    pub async fn get_decision(&self, id: &str) -> Result<(DecisionListRow, Recorded)> {
        let did = self.decision_named("id", id).await?;
        let row = self
            .store()
            .decision_row(&did)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("decision", &did)))?;
        let doc = DocId::Decision(did.clone());
        let rec = self
            .store()
            .read_doc(&doc, |d| reorg::read(&doc, d))
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("decision", &did)))??;
        Ok((row, rec))
    }

    /// The decision `id` names, by its id or by its number, held here: a
    /// number that names several decisions is refused naming `field` and
    /// listing them; none is NOT_FOUND.
    pub(crate) async fn decision_named(&self, field: &str, id: &str) -> Result<DecisionId> {
        let id = id.trim();
        if id.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if let Ok(d) = DecisionId::parse(field, id)
            && self.store().decision_row(&d).await?.is_some()
        {
            return Ok(d);
        }
        let mut ids = self.store().decisions_numbered(id).await?;
        match ids.len() {
            0 => Err(ModelError::not_found("decision", id).into()),
            1 => Ok(ids.remove(0)),
            _ => {
                let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
                Err(invalid(
                    field,
                    format!(
                        "decision number {id} names {} decisions ({}): give the id",
                        ids.len(),
                        list.join(", ")
                    ),
                ))
            }
        }
    }
}
