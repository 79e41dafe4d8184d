//! The node's operations: each request checked against the domain rules,
//! the unit tree and authority, then written as one store transaction.
//! Protobuf-free: the gRPC layer converts at the edge.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use automerge::ActorId;
use hopluu_model::award::{self, AwardCatalogue, Recipient};
use hopluu_model::campaign::{self, Campaign, Plan};
use hopluu_model::emulation::{
    self, Emulation, Initiative, InitiativeStatus, NewInitiative, NewWork, Work,
};
use hopluu_model::member::{
    self, Member, MemberInput, MemberStatus, MemberUpdate, NewMember, PrivateData, choose_bucket,
};
use hopluu_model::tree::UnitTree;
use hopluu_model::unit::{self, Decision, KindCatalogue, NewUnit, Unit};
use hopluu_model::{
    AwardId, CampaignId, CardNumber, Clock, Date, DocId, InitiativeId, MemberId, ModelError,
    ProposalId, UnitId,
};
use hopluu_store::read::{MemberLoc, UnitRow};
use hopluu_store::{Store, StoreError, WriteTx};

use crate::check;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn invalid(field: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Model(ModelError::invalid(field, reason))
}

/// What one row of an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(MemberId),
    Updated(MemberId),
    Unchanged(MemberId),
    Rejected(Vec<ModelError>),
}

/// An import row after validation: its unit and member, or every error.
type ParsedRow = Result<(UnitId, NewMember), Vec<ModelError>>;

/// One row of an import: its line in the file, its unit, its fields.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u32,
    pub unit: String,
    pub member: MemberInput,
}

/// The node's state shared by every service.
pub struct App {
    pub store: Store,
    pub node_id: String,
    pub unit: UnitId,
    /// `[replication] private_depth`: a node whose unit lies above this
    /// depth holds no personal data (CCCD, ethnicity, religion), so it
    /// refuses requests that carry or ask for them.
    pub private_depth: usize,
    pub kinds: KindCatalogue,
    pub awards: AwardCatalogue,
    pub clock: Arc<dyn Clock>,
    actor: ActorId,
    started: Instant,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("node_id", &self.node_id)
            .field("unit", &self.unit)
            .field("private_depth", &self.private_depth)
            .finish_non_exhaustive()
    }
}

/// What a node does the first time it starts without its unit's record.
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// Creates the record itself (the root of the federation, or a node
    /// running alone).
    Create {
        name: String,
        kind: String,
        parent: Option<UnitId>,
    },
    /// Waits for the record from its upstream, which decides it.
    FromUpstream,
}

impl App {
    /// Builds the node's state from its store; creates the hosted unit's
    /// record when the store does not know it yet.
    pub async fn new(
        store: Store,
        node_id: String,
        unit: UnitId,
        private_depth: usize,
        bootstrap: Option<Bootstrap>,
        clock: Arc<dyn Clock>,
    ) -> Result<App> {
        let actor = hopluu_model::Author::actor_for(&node_id, &unit, store.incarnation());
        let app = App {
            store,
            node_id,
            unit,
            private_depth,
            kinds: KindCatalogue::default(),
            awards: AwardCatalogue::default(),
            clock,
            actor,
            started: Instant::now(),
        };
        if !app.tree().contains(&app.unit) {
            let (name, kind, parent) = match bootstrap {
                Some(Bootstrap::Create { name, kind, parent }) => (name, kind, parent),
                Some(Bootstrap::FromUpstream) => {
                    tracing::info!(unit = %app.unit, "waiting for this unit's record from the upstream");
                    return Ok(app);
                }
                None => {
                    return Err(invalid(
                        "node.unit",
                        format!(
                            "this node hosts unit {} but does not know it: set node.unit_name and node.unit_kind to create it",
                            app.unit
                        ),
                    ));
                }
            };
            let today = app.clock.today();
            let decision = Decision::parse("", "", "", today)?;
            let new = NewUnit::parse(
                &app.kinds,
                Some(app.unit.as_str()),
                &name,
                &kind,
                parent.as_ref().map(|p| p.as_str()),
                decision,
            )?;
            let mut tx = app.store.begin().await?;
            let doc = tx.doc(&DocId::Unit(app.unit.clone())).await?;
            unit::create(doc, &app.author(), &new)?;
            tx.commit().await?;
            tracing::info!(unit = %app.unit, "created the hosted unit's record");
        }
        if !app.holds_private() {
            let rows = app.store.private_rows().await?;
            if rows > 0 {
                // Written before this node refused personal data, or under
                // another private_depth: not removed by itself.
                tracing::warn!(
                    rows,
                    private_depth = app.private_depth,
                    "this node lies above private_depth but its member_private table has rows: \
                     personal data a node at this level must not hold"
                );
            }
        }
        Ok(app)
    }

    pub fn author(&self) -> hopluu_model::Author {
        hopluu_model::Author {
            actor: self.actor.clone(),
            time_millis: self.clock.now_millis(),
        }
    }

    pub fn today(&self) -> Date {
        self.clock.today()
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The unit tree as of the last commit (kept by the store).
    pub fn tree(&self) -> Arc<UnitTree> {
        self.store.tree()
    }

    /// Whether this node holds personal data: its unit lies at or below
    /// `private_depth` ([`UnitTree::holds_private`]).
    pub fn holds_private(&self) -> bool {
        self.tree().holds_private(&self.unit, self.private_depth)
    }

    /// Refuses a request whose `field` carries or asks for personal data at
    /// a node that holds none, before anything is read or written.
    fn check_private(&self, field: &str) -> Result<()> {
        Ok(self
            .tree()
            .check_holds_private(&self.unit, self.private_depth, field)?)
    }

    fn parse_unit(&self, field: &str, s: &str) -> Result<UnitId> {
        Ok(UnitId::parse(field, s)?)
    }

    /// The unit must exist, be active, and lie in this node's subtree.
    fn writable_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        let tree = self.tree();
        tree.require_active(field, id)?;
        tree.check_authority(&self.unit, id)?;
        Ok(())
    }

    /// Like [`App::writable_unit`], and the unit keeps a member roster.
    fn roster_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        self.writable_unit(field, id)?;
        let kind = self
            .tree()
            .get(id)
            .map(|n| n.kind.clone())
            .expect("checked above");
        if !self
            .kinds
            .get(kind.as_str())
            .is_some_and(|k| k.holds_members)
        {
            return Err(invalid(
                field,
                format!(
                    "unit {id} is of kind {kind}, which keeps no member roster (members belong to grassroots unions)"
                ),
            ));
        }
        Ok(())
    }

    fn known_unit(&self, field: &str, id: &UnitId) -> Result<()> {
        if self.tree().contains(id) {
            Ok(())
        } else {
            Err(StoreError::Model(ModelError::not_found("unit", id)).tap_field(field))
        }
    }

    // ---- units -------------------------------------------------------

    pub async fn create_unit(
        &self,
        id: Option<&str>,
        name: &str,
        kind: &str,
        parent: &str,
        effective_on: &str,
        decision_no: &str,
    ) -> Result<Unit> {
        let decision = Decision::parse(decision_no, "", effective_on, self.today())?;
        let new = NewUnit::parse(&self.kinds, id, name, kind, Some(parent), decision)?;
        let Some(parent) = new.parent.clone() else {
            return Err(invalid(
                "parent_id",
                "must not be empty: every unit but the root has a parent",
            ));
        };
        self.writable_unit("parent_id", &parent)?;
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
            return Err(StoreError::Model(ModelError::AlreadyExists {
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
            .ok_or_else(|| StoreError::Model(ModelError::not_found("unit", id)))?;
        let owner = node.parent.clone().unwrap_or_else(|| id.clone());
        tree.check_authority(&self.unit, &owner)?;
        Ok(())
    }

    pub async fn rename_unit(
        &self,
        id: &str,
        name: &str,
        effective_on: &str,
        decision_no: &str,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let decision = Decision::parse(decision_no, "", effective_on, self.today())?;
        self.unit_owner_authority(&id)?;
        self.edit_unit(&id, |doc, a| unit::rename(doc, a, name, &decision))
            .await
    }

    pub async fn move_unit(
        &self,
        id: &str,
        new_parent: &str,
        decided_on: &str,
        effective_on: &str,
        decision_no: &str,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let new_parent = self.parse_unit("new_parent_id", new_parent)?;
        let decision = Decision::parse(decision_no, decided_on, effective_on, self.today())?;
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
        effective_on: &str,
        decision_no: &str,
        successors: &[String],
        merged: bool,
    ) -> Result<Unit> {
        let id = self.parse_unit("unit_id", id)?;
        let decision = Decision::parse(decision_no, "", effective_on, self.today())?;
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
            .ok_or_else(|| StoreError::Model(ModelError::not_found("unit", &id)))?;
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

    // ---- members -----------------------------------------------------

    /// Where a new member of `unit` goes, given the counts so far.
    fn place(&self, id: &MemberId, counts: &HashMap<u32, usize>) -> u32 {
        choose_bucket(id, self.store.options().bucket_size, |b| {
            counts.get(&b).copied().unwrap_or(0)
        })
    }

    async fn write_new_member(
        &self,
        tx: &mut WriteTx<'_>,
        unit: &UnitId,
        counts: &mut HashMap<u32, usize>,
        new: &NewMember,
    ) -> Result<Member> {
        let id = MemberId::generate();
        let bucket = self.place(&id, counts);
        *counts.entry(bucket).or_default() += 1;
        let m = member::joining(id.clone(), unit.clone(), new);
        let author = self.author();
        member::add(
            tx.doc(&member::roster_doc(unit, bucket)).await?,
            &author,
            unit,
            bucket,
            &m,
        )?;
        if !new.private.is_empty() {
            member::put_private(
                tx.doc(&member::private_doc(unit, bucket)).await?,
                &author,
                unit,
                bucket,
                &id,
                &new.private,
            )?;
        }
        Ok(m)
    }

    fn card_taken(card: &CardNumber, holder: &MemberLoc) -> StoreError {
        invalid(
            "card_number",
            format!(
                "card {card} is already held by active member {} of unit {}",
                holder.member, holder.unit
            ),
        )
    }

    pub async fn add_member(&self, unit: &str, input: &MemberInput) -> Result<Member> {
        if let Some(field) = input.private_field() {
            self.check_private(field)?;
        }
        let unit = self.parse_unit("unit_id", unit)?;
        let new = NewMember::parse(input, self.today())?;
        self.roster_unit("unit_id", &unit)?;
        let mut tx = self.store.begin().await?;
        if let Some(holder) = tx
            .active_cards(&[new.card_number.as_str()])
            .await?
            .values()
            .next()
        {
            return Err(Self::card_taken(&new.card_number, holder));
        }
        let mut counts = tx.bucket_counts(&unit).await?;
        let m = self
            .write_new_member(&mut tx, &unit, &mut counts, &new)
            .await?;
        tx.commit().await?;
        Ok(m)
    }

    /// Imports rows in one transaction. Idempotent: the card number is the
    /// key; a row whose card is active in the same unit updates that member
    /// (or leaves it unchanged). Bad rows are reported and skipped.
    pub async fn import_members(&self, rows: &[ImportRow]) -> Result<Vec<(u32, ImportOutcome)>> {
        self.check_import_private(rows)?;
        let today = self.today();
        let mut parsed: Vec<(u32, ParsedRow)> = Vec::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        for row in rows {
            let mut errors = Vec::new();
            let unit = UnitId::parse("unit_id", &row.unit)
                .map_err(|e| errors.push(e))
                .ok();
            if let Some(u) = &unit
                && let Err(StoreError::Model(e)) = self.roster_unit("unit_id", u)
            {
                errors.push(e);
            }
            let new = NewMember::parse_all(&row.member, today)
                .map_err(|e| errors.extend(e))
                .ok();
            if let Some(n) = &new {
                if let Some(first) = seen.get(n.card_number.as_str()) {
                    errors.push(ModelError::invalid(
                        "card_number",
                        format!(
                            "card {} appears again (first on line {first})",
                            n.card_number
                        ),
                    ));
                } else {
                    seen.insert(n.card_number.as_str().to_owned(), row.line);
                }
            }
            parsed.push((
                row.line,
                match (unit, new) {
                    (Some(u), Some(n)) if errors.is_empty() => Ok((u, n)),
                    _ => Err(errors),
                },
            ));
        }
        let mut tx = self.store.begin().await?;
        let cards: Vec<&str> = parsed
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().map(|(_, n)| n.card_number.as_str()))
            .collect();
        let holders = tx.active_cards(&cards).await?;
        let mut counts: HashMap<UnitId, HashMap<u32, usize>> = HashMap::new();
        let mut out = Vec::with_capacity(parsed.len());
        for (line, row) in parsed {
            let (unit, new) = match row {
                Ok(r) => r,
                Err(errors) => {
                    out.push((line, ImportOutcome::Rejected(errors)));
                    continue;
                }
            };
            let outcome = match holders.get(new.card_number.as_str()) {
                Some(h) if h.unit != unit => ImportOutcome::Rejected(vec![ModelError::invalid(
                    "card_number",
                    format!(
                        "card {} is already held by active member {} of unit {}",
                        new.card_number, h.member, h.unit
                    ),
                )]),
                Some(h) => self.reimport(&mut tx, h, &new).await?,
                None => {
                    if !counts.contains_key(&unit) {
                        let c = tx.bucket_counts(&unit).await?;
                        counts.insert(unit.clone(), c);
                    }
                    let c = counts.get_mut(&unit).expect("inserted");
                    let m = self.write_new_member(&mut tx, &unit, c, &new).await?;
                    ImportOutcome::Created(m.id)
                }
            };
            out.push((line, outcome));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Refuses, as a whole, an import that carries personal data to a node
    /// that holds none: the clerk is told once, and nothing is written.
    fn check_import_private(&self, rows: &[ImportRow]) -> Result<()> {
        let mut carrying = rows
            .iter()
            .filter_map(|r| r.member.private_field().map(|f| (r.line, f)));
        let Some((line, field)) = carrying.next() else {
            return Ok(());
        };
        match self.check_private(field) {
            Err(StoreError::Model(ModelError::Precondition { field, reason })) => {
                let more = match carrying.count() {
                    0 => String::new(),
                    n => format!(" (and {n} more rows carry CCCD, ethnicity or religion)"),
                };
                Err(ModelError::precondition(
                    field,
                    format!(
                        "{reason}. Line {line} carries it{more}: import at a node at depth {} or below, or leave those columns empty",
                        self.private_depth
                    ),
                )
                .into())
            }
            other => other,
        }
    }

    /// A re-imported row for a member already active in the same unit.
    async fn reimport(
        &self,
        tx: &mut WriteTx<'_>,
        h: &MemberLoc,
        new: &NewMember,
    ) -> Result<ImportOutcome> {
        let doc_id = member::roster_doc(&h.unit, h.bucket);
        let current = member::read(tx.doc(&doc_id).await?, &h.member)?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("member", &h.member)))?;
        if let Some(d) = &current.deidentified {
            return Ok(ImportOutcome::Rejected(vec![ModelError::precondition(
                "card_number",
                format!(
                    "card {}: member {} was de-identified on request at {}: their personal data is not recorded again",
                    current.card_number, h.member, d.at
                ),
            )]));
        }
        let upd = MemberUpdate {
            full_name: (current.full_name != new.full_name).then(|| new.full_name.clone()),
            birth_date: (current.birth_date != Some(new.birth_date)).then_some(new.birth_date),
            gender: (current.gender != new.gender).then_some(new.gender),
            position: (current.position != new.position).then(|| new.position.clone()),
            joined_on: (current.joined_on != new.joined_on).then_some(new.joined_on),
        };
        let author = self.author();
        let doc = tx.doc(&doc_id).await?;
        let before = doc.get_heads();
        member::update(doc, &author, &h.member, &upd, self.today())?;
        let mut changed = doc.get_heads() != before;
        if !new.private.is_empty() {
            let pdoc = tx.doc(&member::private_doc(&h.unit, h.bucket)).await?;
            let before = pdoc.get_heads();
            member::put_private(pdoc, &author, &h.unit, h.bucket, &h.member, &new.private)?;
            changed |= pdoc.get_heads() != before;
        }
        Ok(if changed {
            ImportOutcome::Updated(h.member.clone())
        } else {
            ImportOutcome::Unchanged(h.member.clone())
        })
    }

    /// The member's active record (members act through it), or an error
    /// saying where they are not active.
    async fn active_loc(&self, id: &MemberId) -> Result<MemberLoc> {
        let locs = self.store.member_locations(id).await?;
        if locs.is_empty() {
            return Err(ModelError::not_found("member", id).into());
        }
        locs.into_iter()
            .find(|l| l.status == MemberStatus::Active)
            .ok_or_else(|| invalid("member_id", format!("member {id} has no active membership")))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn update_member(
        &self,
        id: &str,
        upd: MemberUpdate,
        national_id: Option<&str>,
        ethnicity: Option<&str>,
        religion: Option<&str>,
    ) -> Result<Member> {
        let private_field = [
            ("national_id", national_id),
            ("ethnicity", ethnicity),
            ("religion", religion),
        ]
        .into_iter()
        .find_map(|(field, v)| v.map(|_| field));
        if let Some(field) = private_field {
            self.check_private(field)?;
        }
        let id = MemberId::parse("member_id", id)?;
        let loc = self.active_loc(&id).await?;
        self.writable_unit("unit_id", &loc.unit)?;
        let mut tx = self.store.begin().await?;
        let author = self.author();
        let m = member::update(
            tx.doc(&member::roster_doc(&loc.unit, loc.bucket)).await?,
            &author,
            &id,
            &upd,
            self.today(),
        )?;
        if let Some(field) = private_field {
            if let Some(d) = &m.deidentified {
                // Dropping the transaction drops the roster edit too.
                return Err(ModelError::precondition(
                    field,
                    format!(
                        "member {id} was de-identified on request at {}: their personal data is not recorded again",
                        d.at
                    ),
                )
                .into());
            }
            let old = self
                .store
                .private_data(&id, &loc.unit)
                .await?
                .unwrap_or_default();
            let data = PrivateData::parse(
                national_id.unwrap_or(old.national_id.as_ref().map(|n| n.as_str()).unwrap_or("")),
                ethnicity.unwrap_or(&old.ethnicity),
                religion.unwrap_or(&old.religion),
            )?;
            member::put_private(
                tx.doc(&member::private_doc(&loc.unit, loc.bucket)).await?,
                &author,
                &loc.unit,
                loc.bucket,
                &id,
                &data,
            )?;
        }
        tx.commit().await?;
        Ok(m)
    }

    pub async fn transfer_member(
        &self,
        id: &str,
        to: &str,
        effective_on: &str,
        reason: &str,
    ) -> Result<Member> {
        let id = MemberId::parse("member_id", id)?;
        let to = self.parse_unit("to_unit_id", to)?;
        let on = Date::parse_opt("effective_on", effective_on)?.unwrap_or(self.today());
        let loc = self.active_loc(&id).await?;
        if loc.unit == to {
            return Err(invalid(
                "to_unit_id",
                format!("member {id} is already in unit {to}"),
            ));
        }
        self.writable_unit("unit_id", &loc.unit)?;
        self.roster_unit("to_unit_id", &to)?;
        // A node above private_depth has none to move (and must not write
        // any it was left with).
        let private = if self.holds_private() {
            self.store.private_data(&id, &loc.unit).await?
        } else {
            None
        };
        let mut tx = self.store.begin().await?;
        let author = self.author();
        let from = member::end(
            tx.doc(&member::roster_doc(&loc.unit, loc.bucket)).await?,
            &author,
            &id,
            MemberStatus::Transferred,
            reason,
            on,
            Some(&to),
        )?;
        // Coming back to a unit they were in: the old record is reused.
        let bucket = match tx
            .member_locations(&id)
            .await?
            .iter()
            .find(|l| l.unit == to)
        {
            Some(l) => l.bucket,
            None => {
                let counts = tx.bucket_counts(&to).await?;
                self.place(&id, &counts)
            }
        };
        let m = member::transfer_in(
            tx.doc(&member::roster_doc(&to, bucket)).await?,
            &author,
            &to,
            bucket,
            &from,
            reason,
            on,
        )?;
        if let Some(p) = private.filter(|p| !p.is_empty()) {
            member::put_private(
                tx.doc(&member::private_doc(&to, bucket)).await?,
                &author,
                &to,
                bucket,
                &id,
                &p,
            )?;
        }
        tx.commit().await?;
        Ok(m)
    }

    pub async fn end_membership(
        &self,
        id: &str,
        status: MemberStatus,
        reason: &str,
        effective_on: &str,
    ) -> Result<Member> {
        let id = MemberId::parse("member_id", id)?;
        if !matches!(status, MemberStatus::Left | MemberStatus::Ceased) {
            return Err(invalid(
                "status",
                "expected left or ceased (use transfer for a move)",
            ));
        }
        let on = Date::parse_opt("effective_on", effective_on)?.unwrap_or(self.today());
        if on > self.today() {
            return Err(invalid("effective_on", format!("{on} is in the future")));
        }
        let loc = self.active_loc(&id).await?;
        self.writable_unit("unit_id", &loc.unit)?;
        let mut tx = self.store.begin().await?;
        let m = member::end(
            tx.doc(&member::roster_doc(&loc.unit, loc.bucket)).await?,
            &self.author(),
            &id,
            status,
            reason,
            on,
            None,
        )?;
        tx.commit().await?;
        Ok(m)
    }

    /// De-identifies a member on request (Law 91/2025), in one transaction:
    /// every record of the member this node holds loses its personal fields
    /// ([`member::deidentify`]: name, birth date, position, reasons) and the
    /// request is recorded in it; every private roster entry (CCCD,
    /// ethnicity, religion) is removed ([`member::forget_private`]). The
    /// change replicates like any other, so every holder's current state
    /// loses the data; the documents' history keeps it (automerge keeps
    /// every change).
    ///
    /// `operator` is who asked (the caller's identity, as the gRPC layer
    /// knows it); it is recorded with the node, the time, the reason and
    /// the reference. Refused at a node that holds no personal data (the
    /// private rosters to clean are not there), and when nothing is left to
    /// remove (the member was de-identified already).
    pub async fn deidentify_member(
        &self,
        id: Option<&str>,
        card: Option<&str>,
        operator: &str,
        reason: &str,
        reference: &str,
    ) -> Result<Deidentification> {
        let key = if card.is_some() && id.is_none() {
            "card_number"
        } else {
            "member_id"
        };
        self.check_private(key)?;
        let request = member::Deidentified::parse(
            self.clock.now_millis(),
            &self.node_id,
            operator,
            reason,
            reference,
        )?;
        let id = match (id, card) {
            (Some(id), _) => MemberId::parse("member_id", id)?,
            (None, Some(card)) => {
                let card = CardNumber::parse("card_number", card)?;
                let mut ids: Vec<MemberId> = self
                    .store
                    .card_records(&card)
                    .await?
                    .into_iter()
                    .map(|l| l.member)
                    .collect();
                ids.dedup();
                match ids.len() {
                    0 => return Err(ModelError::not_found("member with card", &card).into()),
                    1 => ids.remove(0),
                    n => {
                        let ids: Vec<&str> = ids.iter().map(MemberId::as_str).collect();
                        return Err(invalid(
                            "card_number",
                            format!(
                                "card {card} was held by {n} members ({}): give the member id",
                                ids.join(", ")
                            ),
                        ));
                    }
                }
            }
            (None, None) => return Err(invalid("key", "give a member_id or a card_number")),
        };
        let mut units: Vec<UnitId> = self
            .store
            .member_locations(&id)
            .await?
            .into_iter()
            .map(|l| l.unit)
            .collect();
        if units.is_empty() {
            return Err(ModelError::not_found("member", &id).into());
        }
        units.sort();
        units.dedup();
        {
            let tree = self.tree();
            for u in &units {
                tree.check_authority(&self.unit, u)?;
            }
        }
        let author = self.author();
        let mut tx = self.store.begin().await?;
        let mut changed_units = Vec::new();
        let mut already = None;
        let mut named = std::collections::BTreeSet::new();
        for unit in &units {
            let mut changed = false;
            // Every bucket: a member placed twice in one unit has two records.
            for bucket in tx.roster_buckets(unit).await? {
                let roster = member::roster_doc(unit, bucket);
                if tx.exists(&roster).await? {
                    let doc = tx.doc(&roster).await?;
                    if let Some(m) = member::read(doc, &id)? {
                        named.extend(m.history.iter().filter_map(|e| e.other_unit.clone()));
                        if member::needs_deidentify(doc, &id) {
                            member::deidentify(doc, &author, &id, &request)?;
                            changed = true;
                        } else if let Some(d) = m.deidentified {
                            already = Some(d);
                        }
                    }
                }
                let private = member::private_doc(unit, bucket);
                if tx.exists(&private).await? {
                    changed |= member::forget_private(tx.doc(&private).await?, &author, &id)?;
                }
            }
            if changed {
                changed_units.push(unit.clone());
            }
        }
        if changed_units.is_empty() {
            return Err(match already {
                Some(d) => ModelError::precondition(
                    key,
                    format!(
                        "member {id} was de-identified already, at {} by {}: nothing is left to remove here",
                        d.at, d.by
                    ),
                ),
                None => ModelError::not_found("member", &id),
            }
            .into());
        }
        tx.commit().await?;
        tracing::info!(member = %id, units = changed_units.len(), "member de-identified on request");
        let units_elsewhere = {
            let tree = self.tree();
            named
                .into_iter()
                .filter(|u| !tree.is_within(u, &self.unit))
                .collect()
        };
        let loc = self
            .store
            .current_member_loc(&id)
            .await?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("member", &id)))?;
        let member = self
            .store
            .member(&loc)
            .await?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("member", &id)))?;
        Ok(Deidentification {
            member,
            units: changed_units,
            units_elsewhere,
        })
    }

    /// A member by id or card, with history; private data when asked and held.
    pub async fn get_member(
        &self,
        id: Option<&str>,
        card: Option<&str>,
        include_private: bool,
    ) -> Result<(Member, Option<PrivateData>)> {
        if include_private {
            self.check_private("include_private")?;
        }
        let loc = match (id, card) {
            (Some(id), _) => {
                let id = MemberId::parse("member_id", id)?;
                self.store
                    .current_member_loc(&id)
                    .await?
                    .ok_or_else(|| StoreError::Model(ModelError::not_found("member", &id)))?
            }
            (None, Some(card)) => {
                let card = CardNumber::parse("card_number", card)?;
                self.store.active_card(&card).await?.ok_or_else(|| {
                    StoreError::Model(ModelError::not_found("active member with card", &card))
                })?
            }
            (None, None) => return Err(invalid("key", "give a member_id or a card_number")),
        };
        let m = self
            .store
            .member(&loc)
            .await?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("member", &loc.member)))?;
        let private = if include_private {
            self.store.private_data(&m.id, &m.unit).await?
        } else {
            None
        };
        Ok((m, private))
    }

    pub async fn list_members(
        &self,
        unit: &str,
        subtree: bool,
        status: Option<MemberStatus>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Member>, u64)> {
        let unit = self.parse_unit("unit_id", unit)?;
        self.known_unit("unit_id", &unit)?;
        let limit = if limit == 0 { 100 } else { limit };
        self.store
            .list_members(&unit, subtree, status, limit, offset)
            .await
    }

    pub async fn find_members(&self, query: &str, scope: &str, limit: u32) -> Result<Vec<Member>> {
        if query.trim().chars().count() < 2 {
            return Err(invalid("query", "give at least 2 characters"));
        }
        let scope = if scope.trim().is_empty() {
            self.unit.clone()
        } else {
            self.parse_unit("scope_unit_id", scope)?
        };
        let limit = if limit == 0 { 50 } else { limit };
        self.store.find_members(query, &scope, limit).await
    }

    // ---- campaigns ---------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub async fn launch_campaign(
        &self,
        id: Option<&str>,
        launching: &str,
        title: &str,
        theme: &str,
        starts_on: &str,
        ends_on: &str,
        scope: &str,
    ) -> Result<Campaign> {
        let new =
            campaign::NewCampaign::parse(id, launching, title, theme, starts_on, ends_on, scope)?;
        self.writable_unit("launching_unit_id", &new.launching_unit)?;
        {
            let tree = self.tree();
            tree.require_active("scope_unit_id", &new.scope)?;
            if !tree.is_within(&new.scope, &new.launching_unit) {
                return Err(invalid(
                    "scope_unit_id",
                    format!(
                        "{} is outside the launching unit {}'s subtree",
                        new.scope, new.launching_unit
                    ),
                ));
            }
        }
        let mut tx = self.store.begin().await?;
        let doc_id = DocId::Campaign(new.id.clone());
        if tx.exists(&doc_id).await? {
            return Err(StoreError::Model(ModelError::AlreadyExists {
                what: "campaign",
                id: new.id.to_string(),
            }));
        }
        let c = campaign::create(tx.doc(&doc_id).await?, &self.author(), &new)?;
        tx.commit().await?;
        Ok(c)
    }

    async fn existing_campaign(&self, id: &str) -> Result<Campaign> {
        let id = CampaignId::parse("campaign_id", id)?;
        self.store
            .campaign(&id)
            .await?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("campaign", &id)))
    }

    pub async fn get_campaign(&self, id: &str) -> Result<Campaign> {
        self.existing_campaign(id).await
    }

    pub async fn list_campaigns(&self, unit: &str) -> Result<Vec<Campaign>> {
        let unit = if unit.trim().is_empty() {
            self.unit.clone()
        } else {
            self.parse_unit("unit_id", unit)?
        };
        self.store.campaigns_covering(&unit).await
    }

    pub async fn set_plans(&self, id: &str, plans: &[(String, Plan)]) -> Result<Campaign> {
        let c = self.existing_campaign(id).await?;
        self.writable_unit("campaign_id", &c.launching_unit)
            .map_err(|e| e.tap_field("campaign_id"))?;
        if plans.is_empty() {
            return Err(invalid("plans", "give at least one plan"));
        }
        let mut parsed = Vec::new();
        {
            let tree = self.tree();
            for (i, (unit, plan)) in plans.iter().enumerate() {
                let field = format!("plans[{i}].unit_id");
                let unit = UnitId::parse(&field, unit)?;
                if !tree.contains(&unit) {
                    return Err(invalid(&field, format!("unit {unit} does not exist")));
                }
                if !tree.is_within(&unit, &c.scope) {
                    return Err(invalid(
                        &field,
                        format!("unit {unit} is outside the campaign's scope {}", c.scope),
                    ));
                }
                parsed.push((unit, *plan));
            }
        }
        let mut tx = self.store.begin().await?;
        let c = campaign::set_plans(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &self.author(),
            &parsed,
        )?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn close_campaign(&self, id: &str, closed_on: &str) -> Result<Campaign> {
        let c = self.existing_campaign(id).await?;
        self.writable_unit("campaign_id", &c.launching_unit)?;
        let on = Date::parse_opt("closed_on", closed_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let c = campaign::close(
            tx.doc(&DocId::Campaign(c.id.clone())).await?,
            &self.author(),
            on,
        )?;
        tx.commit().await?;
        Ok(c)
    }

    // ---- emulation ---------------------------------------------------

    /// The unit and an active campaign that covers it.
    async fn emulation_target(&self, unit: &str, campaign: &str) -> Result<(UnitId, Campaign)> {
        let unit = self.parse_unit("unit_id", unit)?;
        self.writable_unit("unit_id", &unit)?;
        let c = self.existing_campaign(campaign).await?;
        if c.status != campaign::CampaignStatus::Active {
            return Err(invalid(
                "campaign_id",
                format!("campaign {} is closed", c.id),
            ));
        }
        if !self.tree().is_within(&unit, &c.scope) {
            return Err(invalid(
                "unit_id",
                format!(
                    "unit {unit} is outside campaign {}'s scope {}",
                    c.id, c.scope
                ),
            ));
        }
        Ok((unit, c))
    }

    pub async fn register(
        &self,
        unit: &str,
        campaign: &str,
        registered_on: &str,
        pledge: &str,
    ) -> Result<Emulation> {
        let (unit, c) = self.emulation_target(unit, campaign).await?;
        let on = Date::parse_opt("registered_on", registered_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let e = emulation::register(
            tx.doc(&emulation::doc_id(&unit, &c.id)).await?,
            &self.author(),
            &unit,
            &c.id,
            on,
            pledge,
        )?;
        tx.commit().await?;
        Ok(e)
    }

    pub async fn record_initiative(
        &self,
        unit: &str,
        campaign: &str,
        title: &str,
        authors: &[String],
        value_vnd: i64,
        submitted_on: &str,
    ) -> Result<Initiative> {
        let new = NewInitiative::parse(title, authors, value_vnd, submitted_on, self.today())?;
        let (unit, c) = self.emulation_target(unit, campaign).await?;
        let mut tx = self.store.begin().await?;
        let i = emulation::record_initiative(
            tx.doc(&emulation::doc_id(&unit, &c.id)).await?,
            &self.author(),
            &unit,
            &c.id,
            &new,
        )?;
        tx.commit().await?;
        Ok(i)
    }

    pub async fn set_initiative_status(
        &self,
        unit: &str,
        campaign: &str,
        initiative: &str,
        status: InitiativeStatus,
        level: &str,
        note: &str,
    ) -> Result<Initiative> {
        let unit = self.parse_unit("unit_id", unit)?;
        let campaign = CampaignId::parse("campaign_id", campaign)?;
        let initiative = InitiativeId::parse("initiative_id", initiative)?;
        self.writable_unit("unit_id", &unit)?;
        let mut tx = self.store.begin().await?;
        let doc_id = emulation::doc_id(&unit, &campaign);
        if !tx.exists(&doc_id).await? {
            return Err(ModelError::not_found("initiative", &initiative).into());
        }
        let i = emulation::set_initiative_status(
            tx.doc(&doc_id).await?,
            &self.author(),
            &initiative,
            status,
            level,
            note,
        )?;
        tx.commit().await?;
        Ok(i)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn record_work(
        &self,
        unit: &str,
        campaign: &str,
        name: &str,
        value_vnd: i64,
        plaque: bool,
        completed_on: &str,
    ) -> Result<Work> {
        let new = NewWork::parse(name, value_vnd, plaque, completed_on, self.today())?;
        let (unit, c) = self.emulation_target(unit, campaign).await?;
        let mut tx = self.store.begin().await?;
        let w = emulation::record_work(
            tx.doc(&emulation::doc_id(&unit, &c.id)).await?,
            &self.author(),
            &unit,
            &c.id,
            &new,
        )?;
        tx.commit().await?;
        Ok(w)
    }

    pub async fn get_emulation(&self, unit: &str, campaign: &str) -> Result<Emulation> {
        let unit = self.parse_unit("unit_id", unit)?;
        let campaign = CampaignId::parse("campaign_id", campaign)?;
        self.store
            .emulation(&unit, &campaign)
            .await?
            .ok_or_else(|| {
                StoreError::Model(ModelError::not_found(
                    "emulation record",
                    format!("{unit}/{campaign}"),
                ))
            })
    }

    // ---- awards ------------------------------------------------------

    /// Resolves recipients: members to their active unit; every recipient
    /// must lie in `within`'s subtree.
    async fn recipients(
        &self,
        field: &str,
        raw: &[RawRecipient],
        within: &UnitId,
    ) -> Result<Vec<Recipient>> {
        let mut out = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let rec = match r {
                RawRecipient::Member(m) => {
                    let id = MemberId::parse(&f, m)?;
                    let loc = self.active_loc(&id).await.map_err(|e| e.tap_field(&f))?;
                    Recipient::Member {
                        member: id,
                        unit: loc.unit,
                    }
                }
                RawRecipient::Unit(u) => {
                    let id = UnitId::parse(&f, u)?;
                    self.tree().require_active(&f, &id)?;
                    Recipient::Unit(id)
                }
                RawRecipient::Missing => return Err(invalid(&f, "give a member_id or a unit_id")),
            };
            if !self.tree().is_within(rec.unit(), within) {
                return Err(invalid(
                    &f,
                    format!("{} is outside unit {within}'s subtree", rec.unit()),
                ));
            }
            out.push(rec);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn propose_award(
        &self,
        proposing: &str,
        addressed: &str,
        award_type: &str,
        campaign: Option<&str>,
        candidates: &[RawRecipient],
        reason: &str,
        proposed_on: &str,
    ) -> Result<award::Proposal> {
        let proposing = self.parse_unit("proposing_unit_id", proposing)?;
        let addressed = self.parse_unit("addressed_unit_id", addressed)?;
        let kind = self.awards.parse("award_type", award_type)?.clone();
        self.writable_unit("proposing_unit_id", &proposing)?;
        {
            let tree = self.tree();
            tree.require_active("addressed_unit_id", &addressed)?;
            if addressed == proposing || !tree.is_within(&proposing, &addressed) {
                return Err(invalid(
                    "addressed_unit_id",
                    format!("{addressed} is not above the proposing unit {proposing}"),
                ));
            }
        }
        let campaign = self.optional_campaign(campaign).await?;
        let candidates = self
            .recipients("candidates", candidates, &proposing)
            .await?;
        let on = Date::parse_opt("proposed_on", proposed_on)?.unwrap_or(self.today());
        let id = ProposalId::generate();
        let mut tx = self.store.begin().await?;
        let p = award::propose(
            tx.doc(&DocId::Proposal(id.clone())).await?,
            &self.author(),
            &award::NewProposal {
                id,
                proposing_unit: proposing,
                addressed_unit: addressed,
                award_type: &kind,
                campaign,
                candidates,
                reason: reason.to_owned(),
                proposed_on: on,
            },
        )?;
        tx.commit().await?;
        Ok(p)
    }

    async fn optional_campaign(&self, campaign: Option<&str>) -> Result<Option<CampaignId>> {
        match campaign.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(c) => Ok(Some(self.existing_campaign(c).await?.id)),
        }
    }

    pub async fn list_proposals(&self, unit: &str) -> Result<Vec<award::Proposal>> {
        let unit = self.parse_unit("unit_id", unit)?;
        self.store.proposals(&unit).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn decide_award(
        &self,
        issuing: &str,
        decision_no: &str,
        decided_on: &str,
        effective_on: &str,
        award_type: &str,
        recipients: &[RawRecipient],
        campaign: Option<&str>,
        proposal: Option<&str>,
        reason: &str,
    ) -> Result<award::Award> {
        let issuing = self.parse_unit("issuing_unit_id", issuing)?;
        let decision = Decision::parse(decision_no, decided_on, effective_on, self.today())?;
        let kind = self.awards.parse("award_type", award_type)?.clone();
        self.writable_unit("issuing_unit_id", &issuing)?;
        let issuing_kind = self
            .tree()
            .get(&issuing)
            .map(|n| n.kind.clone())
            .expect("checked");
        award::check_grantable(&kind, &issuing_kind)?;
        let recipients = self.recipients("recipients", recipients, &issuing).await?;
        let campaign = self.optional_campaign(campaign).await?;
        let proposal = match proposal.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(p) => {
                let id = ProposalId::parse("proposal_id", p)?;
                let prop = self
                    .store
                    .proposal(&id)
                    .await?
                    .ok_or_else(|| StoreError::Model(ModelError::not_found("proposal", &id)))?;
                if prop.status != award::ProposalStatus::Pending {
                    return Err(invalid(
                        "proposal_id",
                        format!("proposal {id} is already {}", prop.status.as_str()),
                    ));
                }
                Some(id)
            }
        };
        let id = AwardId::generate();
        let mut tx = self.store.begin().await?;
        let author = self.author();
        let a = award::decide(
            tx.doc(&DocId::Award(id.clone())).await?,
            &author,
            &award::NewAward {
                id: id.clone(),
                issuing_unit: issuing,
                issuing_kind,
                decision_no: decision.decision_no.clone(),
                decided_on: decision.decided_on,
                effective_on: decision.effective_on,
                award_type: &kind,
                recipients,
                campaign,
                proposal: proposal.clone(),
                reason: reason.to_owned(),
            },
        )?;
        if let Some(p) = proposal {
            award::mark_decided(tx.doc(&DocId::Proposal(p)).await?, &author, &id)?;
        }
        tx.commit().await?;
        Ok(a)
    }

    pub async fn revoke_award(
        &self,
        id: &str,
        revoked_on: &str,
        reason: &str,
    ) -> Result<award::Award> {
        let id = AwardId::parse("award_id", id)?;
        let a = self
            .store
            .award(&id)
            .await?
            .ok_or_else(|| StoreError::Model(ModelError::not_found("award", &id)))?;
        self.tree().check_authority(&self.unit, &a.issuing_unit)?;
        let on = Date::parse_opt("revoked_on", revoked_on)?.unwrap_or(self.today());
        let mut tx = self.store.begin().await?;
        let a = award::revoke(tx.doc(&DocId::Award(id)).await?, &self.author(), on, reason)?;
        tx.commit().await?;
        Ok(a)
    }

    pub async fn list_awards(&self, unit: &str, year: Option<u32>) -> Result<Vec<award::Award>> {
        let unit = self.parse_unit("unit_id", unit)?;
        self.store.awards(&unit, year).await
    }

    // ---- conflicts -----------------------------------------------------

    /// Resolves conflict `id` (this node's id for it) with `choice`, as one
    /// new change by this node ([`hopluu_store::conflicts::resolve`]):
    /// written through a store transaction like every other write, so the
    /// projection follows, the conflict leaves this node's list in the same
    /// commit, and the change replicates (each node that applies it drops
    /// the conflict from its own list). The node must hold authority over
    /// the document's owner, or its peers would quarantine the change.
    /// Nothing is written when the choice is refused. `operator` (the
    /// caller's identity) and `note` go to the log, not the document.
    /// Returns the conflict and the change's hash.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        choice: &hopluu_store::conflicts::Resolution,
        operator: &str,
        note: &str,
    ) -> Result<(hopluu_store::conflicts::Conflict, automerge::ChangeHash)> {
        use hopluu_store::conflicts;
        let mut tx = self.store.begin().await?;
        let c = tx
            .conflict(id)
            .await?
            .ok_or_else(|| invalid("id", format!("conflict {id} does not exist at this node")))?;
        let doc = tx.doc(&c.doc).await?;
        let owner = hopluu_model::DocMeta::read(c.doc.clone(), doc)?.owner;
        self.tree().check_authority(&self.unit, &owner)?;
        let change = conflicts::resolve(doc, &self.author(), &c, choice)?;
        tx.commit().await?;
        tracing::info!(
            caller = operator,
            conflict = id,
            doc = %c.doc,
            path = %c.path,
            kept = matches!(choice, conflicts::Resolution::Keep(_)),
            %change,
            note,
            "conflict resolved"
        );
        Ok((c, change))
    }

    /// Unit names for report rows.
    /// `ReplicationService.ScopeHeads`: the documents held here in the
    /// scope of a node hosting `caller` (judged on this node's tree and
    /// private_depth, so a private roster is listed only to a node that
    /// may hold it), with their heads, a page after `after`.
    pub async fn scope_heads(
        &self,
        caller: &UnitId,
        after: Option<&DocId>,
        limit: u32,
    ) -> Result<check::ScopePage> {
        check::scope_page(&self.store, caller, self.private_depth, after, limit).await
    }

    /// `ReplicationService.MissingChanges`: of the changes a node hosting
    /// `caller` names, those not held here, for the documents in its
    /// scope.
    pub async fn missing_changes(
        &self,
        caller: &UnitId,
        asks: &[check::Heads],
    ) -> Result<Vec<check::Heads>> {
        check::missing_changes(&self.store, caller, self.private_depth, asks).await
    }

    /// `AdminService.CheckPeer`: this node's heads of every document in
    /// the scope of node `peer_node` against what that node answers for
    /// itself through `peer` ([`check::walk`]).
    pub async fn check_peer<P: check::PeerAnswers>(
        &self,
        peer_node: &str,
        peer: &mut P,
    ) -> Result<check::Comparison, check::CheckError> {
        check::walk(&self.store, self.private_depth, peer_node, peer).await
    }

    pub fn unit_names(&self) -> BTreeMap<UnitId, String> {
        let tree = self.tree();
        tree.subtree(&self.unit)
            .into_iter()
            .filter_map(|u| tree.get(&u).map(|n| (u.clone(), n.name.clone())))
            .collect()
    }
}

/// What a de-identification did.
#[derive(Debug, Clone)]
pub struct Deidentification {
    /// The member's current record, de-identified.
    pub member: Member,
    /// The units whose records (or private entries) were changed here.
    pub units: Vec<UnitId>,
    /// Units the member's history names outside this node's subtree: their
    /// records are held elsewhere and were not changed.
    pub units_elsewhere: Vec<UnitId>,
}

/// A recipient as a request names it.
#[derive(Debug, Clone)]
pub enum RawRecipient {
    Member(String),
    Unit(String),
    Missing,
}

trait TapField {
    fn tap_field(self, field: &str) -> Self;
}

impl TapField for StoreError {
    /// Names the request field in a not-found error about it.
    fn tap_field(self, field: &str) -> Self {
        match self {
            StoreError::Model(ModelError::NotFound { what, id }) => StoreError::Model(
                ModelError::invalid(field, format!("{what} {id} does not exist")),
            ),
            other => other,
        }
    }
}
