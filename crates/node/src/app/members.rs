//! Members: add, import, update, transfer, end, de-identify, read and find.

use std::collections::{BTreeMap, HashMap};

use hopluu_model::member::{
    self, Member, MemberInput, MemberStatus, MemberUpdate, NewMember, PrivateData,
};
use hopluu_model::{CardNumber, Date, MemberId, ModelError, UnitId};
use hopluu_store::WriteTx;
use hopluu_store::read::MemberLoc;

use super::{App, ImportOutcome, ImportRow, ParsedRow, Result, invalid};
use crate::NodeError;

/// When and why a membership changes (a transfer, an end), as a request
/// gives it: named, so the date and the reason cannot be swapped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Change<'a> {
    /// Empty: today.
    pub effective_on: &'a str,
    pub reason: &'a str,
}

impl App {
    // ---- members -----------------------------------------------------

    async fn write_new_member(
        &self,
        tx: &mut WriteTx<'_>,
        unit: &UnitId,
        counts: &mut HashMap<u32, usize>,
        new: &NewMember,
    ) -> Result<Member> {
        let id = MemberId::generate();
        let (m, _) = tx
            .add_new_member(&self.author(), unit, &id, new, counts)
            .await?;
        Ok(m)
    }

    fn card_taken(card: &CardNumber, holder: &MemberLoc) -> NodeError {
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
        self.roster_unit("unit_id", &unit).await?;
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
                && let Err(NodeError::Refused(e)) = self.roster_unit("unit_id", u).await
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
        // New members, written after the loop in one change per roster.
        let mut joining: BTreeMap<(UnitId, u32), Vec<(Member, PrivateData)>> = BTreeMap::new();
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
                    let id = MemberId::generate();
                    let bucket = tx.take_bucket(&id, c);
                    let m = member::joining(id.clone(), unit.clone(), &new);
                    joining
                        .entry((unit, bucket))
                        .or_default()
                        .push((m, new.private));
                    ImportOutcome::Created(id)
                }
            };
            out.push((line, outcome));
        }
        let author = self.author();
        for ((unit, bucket), members) in joining {
            let (records, private): (Vec<Member>, Vec<PrivateData>) = members.into_iter().unzip();
            tx.add_new_members(&author, &unit, bucket, &records, &private)
                .await?;
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
            Err(NodeError::Refused(ModelError::Precondition { field, reason })) => {
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
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("member", &h.member)))?;
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
    pub(super) async fn active_loc(&self, id: &MemberId) -> Result<MemberLoc> {
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
        self.writable_unit("unit_id", &loc.unit).await?;
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

    pub async fn transfer_member(&self, id: &str, to: &str, change: &Change<'_>) -> Result<Member> {
        let Change {
            effective_on,
            reason,
        } = *change;
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
        self.writable_unit("unit_id", &loc.unit).await?;
        self.roster_unit("to_unit_id", &to).await?;
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
                tx.bucket_for(&id, &counts)
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
        change: &Change<'_>,
    ) -> Result<Member> {
        let Change {
            effective_on,
            reason,
        } = *change;
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
        self.writable_unit("unit_id", &loc.unit).await?;
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
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("member", &id)))?;
        let member = self
            .store
            .member(&loc)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("member", &id)))?;
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
                    .ok_or_else(|| NodeError::Refused(ModelError::not_found("member", &id)))?
            }
            (None, Some(card)) => {
                let card = CardNumber::parse("card_number", card)?;
                self.card_holder(&card).await?
            }
            (None, None) => return Err(invalid("key", "give a member_id or a card_number")),
        };
        let m = self
            .store
            .member(&loc)
            .await?
            .ok_or_else(|| NodeError::Refused(ModelError::not_found("member", &loc.member)))?;
        let private = if include_private {
            self.store.private_data(&m.id, &m.unit).await?
        } else {
            None
        };
        Ok((m, private))
    }

    /// The member card `card` names: its active holder; with none, the one
    /// member whose records carry it, in whatever status (a member who
    /// left or ceased is still found by card). A card that passed from
    /// one person to another and is held by nobody now is ambiguous: the
    /// refusal names the members, to be asked by id.
    async fn card_holder(&self, card: &CardNumber) -> Result<MemberLoc> {
        if let Some(loc) = self.store.active_card(card).await? {
            return Ok(loc);
        }
        let ids = self.card_members(card).await?;
        match ids.as_slice() {
            [] => Err(ModelError::not_found("member with card", card).into()),
            [one] => self.store.current_member_loc(one).await?.ok_or_else(|| {
                NodeError::Refused(ModelError::not_found("member", one))
            }),
            many => Err(ModelError::precondition(
                "card_number",
                format!(
                    "card {card} was held by {} members, none of them active now ({}): ask by member_id",
                    many.len(),
                    many.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
            .into()),
        }
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
        Ok(self
            .store
            .list_members(&unit, subtree, status, limit, offset)
            .await?)
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
        Ok(self.store.find_members(query, &scope, limit).await?)
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
