//! Members and the roster documents that hold them.
//!
//! A grassroots union's members live in `roster/{unit}` (about 80 members on
//! average). Above a configurable size the roster continues in hash buckets
//! `roster/{unit}/{b}` ([`choose_bucket`]); a member is placed once and never
//! moved between documents, so no concurrent edit can be lost by a move.
//! Sensitive fields (CCCD, ethnicity, religion) live in the matching
//! `roster-private/...` document, which replicates only as far up as the
//! federation allows (Decree 13/2023, Law 91/2025).
//!
//! Document shape (`members` is a map keyed by member id):
//! ```text
//! { v, owner, addressed: [], unit, bucket,
//!   members: { m…: { full_name, birth_date, gender, card_number, joined_on,
//!                    position, status, status_reason, status_on,
//!                    history: [ { kind, on, reason, unit, other_unit } ],
//!                    deidentified?: { at, by, operator, reason, reference } } } }
//! ```
//!
//! # Personal data
//!
//! A member's name and birth date (in the roster) and CCCD, ethnicity and
//! religion (in the private roster) are personal data. They never appear
//! in an error message or a `Debug` output of this crate's types.
//! [`deidentify`] and [`forget_private`] remove them from a member's
//! current state on request (Law 91/2025), keeping what the federation's
//! statistics need (unit, gender, card number, membership dates and
//! status) and recording the request in the record itself. Automerge keeps
//! every change, so the removed values stay in the documents' history.

use std::collections::BTreeSet;

use automerge::{Automerge, Patch, Prop};

use crate::am::{self, Obj, Record};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, Skel, edit};
use crate::error::ModelError;
use crate::ids::{CardNumber, MemberId, NationalId, UnitId, clean_text, stable_hash};

/// The youngest age at which a worker may join a union.
pub const MIN_AGE: i32 = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Other,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
        }
    }
    pub fn parse(field: &str, s: &str) -> Result<Gender, ModelError> {
        match s.trim().to_lowercase().as_str() {
            "male" | "nam" | "m" => Ok(Gender::Male),
            "female" | "nữ" | "nu" | "f" => Ok(Gender::Female),
            "other" | "khác" | "khac" => Ok(Gender::Other),
            // Not repeated: a shifted spreadsheet column puts other
            // personal data here.
            _ => Err(ModelError::invalid(field, "expected male, female or other")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Active,
    /// Moved to another unit; the record there is the active one.
    Transferred,
    /// Left the union (resigned, retired, moved away).
    Left,
    /// Ceased to be a member by decision (e.g. the 2025 dissolution of
    /// grassroots unions in state agencies), with the reason.
    Ceased,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Transferred => "transferred",
            MemberStatus::Left => "left",
            MemberStatus::Ceased => "ceased",
        }
    }
    pub fn parse(s: &str) -> Option<MemberStatus> {
        match s {
            "active" => Some(MemberStatus::Active),
            "transferred" => Some(MemberStatus::Transferred),
            "left" => Some(MemberStatus::Left),
            "ceased" => Some(MemberStatus::Ceased),
            _ => None,
        }
    }
}

/// One entry of a member's history in a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// joined, transferred_in, transferred_out, left, ceased
    pub kind: String,
    pub on: Date,
    pub reason: String,
    pub other_unit: Option<UnitId>,
}

/// A member as the roster of one unit records them. `Debug` hides the
/// name and birth date.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    pub unit: UnitId,
    /// [`DEIDENTIFIED_NAME`] once the member was de-identified.
    pub full_name: String,
    /// `None` once the member was de-identified.
    pub birth_date: Option<Date>,
    pub gender: Gender,
    pub card_number: CardNumber,
    pub joined_on: Date,
    pub position: String,
    pub status: MemberStatus,
    pub status_reason: String,
    pub status_on: Option<Date>,
    pub history: Vec<MemberEvent>,
    /// The de-identification request this record carries out, if any.
    pub deidentified: Option<Deidentified>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("unit", &self.unit)
            .field("full_name", &"***")
            .field("birth_date", &"***")
            .field("gender", &self.gender)
            .field("card_number", &self.card_number)
            .field("joined_on", &self.joined_on)
            .field("status", &self.status)
            .field("status_on", &self.status_on)
            .field("history", &self.history.len())
            .field("deidentified", &self.deidentified)
            .finish_non_exhaustive()
    }
}

/// What replaces a de-identified member's name.
pub const DEIDENTIFIED_NAME: &str = "(de-identified)";

/// A de-identification request, as the member's record keeps it. It never
/// holds the removed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deidentified {
    /// When the node carried it out: UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: String,
    /// The node that carried it out.
    pub by: String,
    /// Who asked the node: the caller's certificate identity (e.g. `admin
    /// lan`), empty where the node does not know it.
    pub operator: String,
    /// Why (the member's request, a decision), as the operator gave it.
    pub reason: String,
    /// The request's document number, if any.
    pub reference: String,
}

impl Deidentified {
    /// Checks the operator's reason (required) and reference.
    pub fn parse(
        at_millis: i64,
        by: &str,
        operator: &str,
        reason: &str,
        reference: &str,
    ) -> Result<Deidentified, ModelError> {
        Ok(Deidentified {
            at: utc_timestamp(at_millis),
            by: by.to_owned(),
            operator: clean_text("operator", operator, 200, false)?,
            reason: clean_text("reason", reason, 500, true)?,
            reference: clean_text("reference", reference, 100, false)?,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the Unix epoch.
fn utc_timestamp(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let day = Date::from_days_since_epoch(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{day}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Sensitive personal data, kept in the private roster.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PrivateData {
    pub national_id: Option<NationalId>,
    pub ethnicity: String,
    pub religion: String,
}

impl std::fmt::Debug for PrivateData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateData(***)")
    }
}

impl PrivateData {
    pub fn is_empty(&self) -> bool {
        self.national_id.is_none() && self.ethnicity.is_empty() && self.religion.is_empty()
    }

    pub fn parse(national_id: &str, ethnicity: &str, religion: &str) -> Result<Self, ModelError> {
        Ok(PrivateData {
            national_id: if national_id.trim().is_empty() {
                None
            } else {
                Some(NationalId::parse("national_id", national_id)?)
            },
            ethnicity: clean_text("ethnicity", ethnicity, 50, false)?,
            religion: clean_text("religion", religion, 50, false)?,
        })
    }
}

/// The raw fields of a member as a form or a spreadsheet gives them.
/// `Debug` shows none of them but the card number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MemberInput {
    pub full_name: String,
    pub birth_date: String,
    pub gender: String,
    pub card_number: String,
    pub joined_on: String,
    pub position: String,
    pub national_id: String,
    pub ethnicity: String,
    pub religion: String,
}

impl MemberInput {
    /// The first sensitive field (CCCD, ethnicity, religion) the input
    /// fills, if any.
    pub fn private_field(&self) -> Option<&'static str> {
        [
            ("national_id", &self.national_id),
            ("ethnicity", &self.ethnicity),
            ("religion", &self.religion),
        ]
        .into_iter()
        .find(|(_, v)| !v.trim().is_empty())
        .map(|(field, _)| field)
    }
}

impl std::fmt::Debug for MemberInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberInput")
            .field("card_number", &self.card_number)
            .finish_non_exhaustive()
    }
}

/// A validated new member (not yet placed in a unit). `Debug` hides the
/// personal fields.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMember {
    pub full_name: String,
    pub birth_date: Date,
    pub gender: Gender,
    pub card_number: CardNumber,
    pub joined_on: Date,
    pub position: String,
    pub private: PrivateData,
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("full_name", &"***")
            .field("birth_date", &"***")
            .field("gender", &self.gender)
            .field("card_number", &self.card_number)
            .field("joined_on", &self.joined_on)
            .field("private", &self.private)
            .finish_non_exhaustive()
    }
}

pub fn full_name(s: &str) -> Result<String, ModelError> {
    clean_text("full_name", s, 100, true)
}

pub fn position(s: &str) -> Result<String, ModelError> {
    clean_text("position", s, 100, false)
}

/// Checks the dates of a membership against each other and today (a
/// de-identified member has no birth date left to check). The birth date is
/// personal data: no message repeats it.
pub fn check_dates(
    birth_date: Option<Date>,
    joined_on: Date,
    today: Date,
) -> Result<(), ModelError> {
    if birth_date.is_some_and(|b| b > today) {
        return Err(ModelError::invalid(
            "birth_date",
            format!("must not be in the future (today is {today})"),
        ));
    }
    // Nor the joining date: swapped date columns put the birth date there.
    if joined_on > today {
        return Err(ModelError::invalid(
            "joined_on",
            format!("must not be in the future (today is {today})"),
        ));
    }
    if birth_date.is_some_and(|b| joined_on < b.add_years(MIN_AGE)) {
        return Err(ModelError::invalid(
            "joined_on",
            format!("is before the member turned {MIN_AGE}"),
        ));
    }
    Ok(())
}

impl NewMember {
    /// Validates every field; the first bad field is reported.
    pub fn parse(input: &MemberInput, today: Date) -> Result<NewMember, ModelError> {
        let all = Self::parse_all(input, today);
        all.map_err(|mut errors| errors.remove(0))
    }

    /// Validates every field and reports every bad one (for imports).
    pub fn parse_all(input: &MemberInput, today: Date) -> Result<NewMember, Vec<ModelError>> {
        let mut errors = Vec::new();
        macro_rules! ok {
            ($e:expr) => {
                $e.map_err(|e| errors.push(e)).ok()
            };
        }
        let name = ok!(full_name(&input.full_name));
        let birth = ok!(Date::parse("birth_date", &input.birth_date));
        let gender = ok!(Gender::parse("gender", &input.gender));
        let card = ok!(CardNumber::parse("card_number", &input.card_number));
        let joined = ok!(Date::parse("joined_on", &input.joined_on));
        let pos = ok!(position(&input.position));
        let private = ok!(PrivateData::parse(
            &input.national_id,
            &input.ethnicity,
            &input.religion,
        ));
        if let (Some(b), Some(j)) = (birth, joined) {
            ok!(check_dates(Some(b), j, today));
        }
        match (name, birth, gender, card, joined, pos, private) {
            (
                Some(full_name),
                Some(birth_date),
                Some(gender),
                Some(card_number),
                Some(joined_on),
                Some(position),
                Some(private),
            ) if errors.is_empty() => Ok(NewMember {
                full_name,
                birth_date,
                gender,
                card_number,
                joined_on,
                position,
                private,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to a member's own fields; `None` leaves a field as it is.
/// `Debug` hides the name and birth date.
#[derive(Clone, Default)]
pub struct MemberUpdate {
    pub full_name: Option<String>,
    pub birth_date: Option<Date>,
    pub gender: Option<Gender>,
    pub position: Option<String>,
    pub joined_on: Option<Date>,
}

impl std::fmt::Debug for MemberUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: bool| if v { "***" } else { "unchanged" };
        f.debug_struct("MemberUpdate")
            .field("full_name", &set(self.full_name.is_some()))
            .field("birth_date", &set(self.birth_date.is_some()))
            .field("gender", &self.gender)
            .field("position", &self.position)
            .field("joined_on", &self.joined_on)
            .finish()
    }
}

/// Where a new member goes. Buckets are numbered `0..n` without gaps; a
/// new bucket `n` opens only when every existing bucket holds `bucket_size`
/// members, so a roster of `m` members spans `ceil(m / bucket_size)`
/// documents. Among the open buckets the member id's stable hash picks the
/// start (`h mod n`), then the next bucket with room, wrapping. Placement
/// depends only on the id and on how full the buckets are, and a placed
/// member never moves, so no concurrent edit can be lost by a move.
pub fn choose_bucket(member: &MemberId, bucket_size: usize, count: impl Fn(u32) -> usize) -> u32 {
    let size = bucket_size.max(1);
    let n = (0..u32::MAX).find(|b| count(*b) == 0).unwrap_or(u32::MAX);
    if n == 0 {
        return 0;
    }
    let start = (stable_hash(member.as_str()) % u64::from(n)) as u32;
    (0..n)
        .map(|i| (start + i) % n)
        .find(|b| count(*b) < size)
        .unwrap_or(n)
}

fn event_record(e: &MemberEvent) -> Record {
    Record::new()
        .str("kind", &e.kind)
        .str("on", e.on.to_string())
        .str("reason", &e.reason)
        .str(
            "other_unit",
            e.other_unit.as_ref().map(UnitId::as_str).unwrap_or(""),
        )
}

fn deidentified_record(d: &Deidentified) -> Record {
    Record::new()
        .str("at", &d.at)
        .str("by", &d.by)
        .str("operator", &d.operator)
        .str("reason", &d.reason)
        .str("reference", &d.reference)
}

fn member_record(m: &Member) -> Record {
    let r = Record::new()
        .str("full_name", &m.full_name)
        .str(
            "birth_date",
            m.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        )
        .str("gender", m.gender.as_str())
        .str("card_number", m.card_number.as_str())
        .str("joined_on", m.joined_on.to_string())
        .str("position", &m.position)
        .str("status", m.status.as_str())
        .str("status_reason", &m.status_reason)
        .str(
            "status_on",
            m.status_on.map(|d| d.to_string()).unwrap_or_default(),
        )
        .records("history", m.history.iter().map(event_record).collect());
    match &m.deidentified {
        Some(d) => r.record("deidentified", deidentified_record(d)),
        None => r,
    }
}

/// Makes sure the roster document has its skeleton. The skeleton is one
/// deterministic change ([`crate::doc::init_skeleton`]): when two nodes
/// create the same roster concurrently they create the *same* change, so
/// their `members` maps are one object and no member is hidden by a
/// conflict between two maps.
pub(crate) fn init_roster_skeleton(
    doc: &mut Automerge,
    unit: &UnitId,
    bucket: u32,
) -> Result<(), ModelError> {
    crate::doc::init_skeleton(
        doc,
        &[
            ("v", Skel::Int(SCHEMA_VERSION)),
            ("owner", Skel::Str(unit.to_string())),
            ("addressed", Skel::List),
            ("unit", Skel::Str(unit.to_string())),
            ("bucket", Skel::Int(i64::from(bucket))),
            ("members", Skel::Map),
        ],
    )
}

fn members_map<T: automerge::ReadDoc>(tx: &T) -> Result<automerge::ObjId, ModelError> {
    am::child(tx, &automerge::ROOT, "members")
        .ok_or_else(|| ModelError::document("roster", "no members map"))
}

/// The roster document a member lives in.
pub fn roster_doc(unit: &UnitId, bucket: u32) -> DocId {
    DocId::Roster {
        unit: unit.clone(),
        bucket,
    }
}

/// The private roster document matching a roster bucket.
pub fn private_doc(unit: &UnitId, bucket: u32) -> DocId {
    DocId::RosterPrivate {
        unit: unit.clone(),
        bucket,
    }
}

/// Adds a new member record (status active, history "joined").
pub fn add(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    member: &Member,
) -> Result<(), ModelError> {
    init_roster_skeleton(doc, unit, bucket)?;
    edit(doc, author, "add member", |tx| {
        let members = members_map(tx)?;
        if am::child(tx, &members, member.id.as_str()).is_some() {
            return Err(ModelError::AlreadyExists {
                what: "member",
                id: member.id.to_string(),
            });
        }
        member_record(member).create(tx, &members, member.id.as_str())?;
        Ok(())
    })
}

/// Reads one member from a roster document.
pub fn read(doc: &Automerge, id: &MemberId) -> Result<Option<Member>, ModelError> {
    let root = Obj::root(doc);
    let unit = root.str("unit");
    let Some(members) = root.obj("members") else {
        return Ok(None);
    };
    match members.obj(id.as_str()) {
        Some(o) => read_obj(&unit, id.as_str(), &o).map(Some),
        None => Ok(None),
    }
}

/// Reads the named members (or all when `ids` is `None`) from a roster.
pub fn read_many(
    doc: &Automerge,
    ids: Option<&BTreeSet<String>>,
) -> Result<Vec<Member>, ModelError> {
    let root = Obj::root(doc);
    let unit = root.str("unit");
    let Some(members) = root.obj("members") else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = match ids {
        Some(ids) => ids.iter().cloned().collect(),
        None => members.keys(),
    };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(o) = members.obj(&k) {
            out.push(read_obj(&unit, &k, &o)?);
        }
    }
    Ok(out)
}

/// How many members a roster document holds.
pub fn count(doc: &Automerge) -> usize {
    Obj::root(doc)
        .obj("members")
        .map(|m| m.keys().len())
        .unwrap_or(0)
}

fn read_obj(unit: &str, id: &str, o: &Obj<'_, Automerge>) -> Result<Member, ModelError> {
    let bad =
        |e: ModelError| ModelError::document(format!("roster/{unit} member {id}"), e.to_string());
    let history = o
        .list("history")
        .iter()
        .map(|e| {
            Ok(MemberEvent {
                kind: e.str("kind"),
                on: Date::parse("on", &e.str("on"))?,
                reason: e.str("reason"),
                other_unit: match e.str("other_unit").as_str() {
                    "" => None,
                    s => Some(UnitId::parse("other_unit", s)?),
                },
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()
        .map_err(bad)?;
    let deidentified = o.obj("deidentified").map(|d| Deidentified {
        at: d.str("at"),
        by: d.str("by"),
        operator: d.str("operator"),
        reason: d.str("reason"),
        reference: d.str("reference"),
    });
    // Once de-identified, a name or birth date written concurrently (at a
    // node that had not seen the request yet) is never shown: a repeated
    // request removes it from the document ([`needs_deidentify`]).
    let (full_name, birth_date) = match deidentified {
        Some(_) => (DEIDENTIFIED_NAME.to_owned(), None),
        None => (
            o.str("full_name"),
            Date::parse_opt("birth_date", &o.str("birth_date")).map_err(bad)?,
        ),
    };
    Ok(Member {
        id: MemberId::parse("id", id).map_err(bad)?,
        unit: UnitId::parse("unit", unit).map_err(bad)?,
        full_name,
        birth_date,
        gender: Gender::parse("gender", &o.str("gender")).map_err(bad)?,
        card_number: CardNumber::parse("card_number", &o.str("card_number")).map_err(bad)?,
        joined_on: Date::parse("joined_on", &o.str("joined_on")).map_err(bad)?,
        position: o.str("position"),
        status: MemberStatus::parse(&o.str("status"))
            .ok_or_else(|| bad(ModelError::invalid("status", "unknown status")))?,
        status_reason: o.str("status_reason"),
        status_on: Date::parse_opt("status_on", &o.str("status_on")).map_err(bad)?,
        history,
        deidentified,
    })
}

fn member_obj<T: automerge::ReadDoc>(
    tx: &T,
    id: &MemberId,
) -> Result<automerge::ObjId, ModelError> {
    am::child(tx, &automerge::ROOT, "members")
        .and_then(|m| am::child(tx, &m, id.as_str()))
        .ok_or_else(|| ModelError::not_found("member", id))
}

/// Updates a member's own fields, writing only those that change.
pub fn update(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
    upd: &MemberUpdate,
    today: Date,
) -> Result<Member, ModelError> {
    let current = read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))?;
    if let Some(d) = &current.deidentified {
        let field = match (&upd.full_name, &upd.birth_date) {
            (Some(_), _) => "full_name",
            (None, Some(_)) => "birth_date",
            (None, None) => "",
        };
        if !field.is_empty() {
            return Err(ModelError::precondition(
                field,
                format!(
                    "member {id} was de-identified on request at {}: their name and birth date are not recorded again",
                    d.at
                ),
            ));
        }
    }
    let birth = upd.birth_date.or(current.birth_date);
    let joined = upd.joined_on.unwrap_or(current.joined_on);
    check_dates(birth, joined, today)?;
    edit(doc, author, "update member", |tx| {
        let obj = member_obj(tx, id)?;
        if let Some(n) = &upd.full_name {
            am::put_str(tx, &obj, "full_name", &full_name(n)?)?;
        }
        if let Some(p) = &upd.position {
            am::put_str(tx, &obj, "position", &position(p)?)?;
        }
        if let Some(g) = upd.gender {
            am::put_str(tx, &obj, "gender", g.as_str())?;
        }
        if let Some(b) = birth {
            am::put_str(tx, &obj, "birth_date", &b.to_string())?;
        }
        am::put_str(tx, &obj, "joined_on", &joined.to_string())?;
        Ok(())
    })?;
    read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))
}

/// Ends an active membership in this roster: transferred out, left or
/// ceased, with the reason, the date and (for transfers) the other unit.
pub fn end(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
    status: MemberStatus,
    reason: &str,
    on: Date,
    other_unit: Option<&UnitId>,
) -> Result<Member, ModelError> {
    let current = read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))?;
    if current.status != MemberStatus::Active {
        return Err(ModelError::invalid(
            "member_id",
            format!(
                "member {id} is not active in unit {} (status {})",
                current.unit,
                current.status.as_str()
            ),
        ));
    }
    if status == MemberStatus::Active {
        return Err(ModelError::invalid(
            "status",
            "expected transferred, left or ceased",
        ));
    }
    if on < current.joined_on {
        return Err(ModelError::invalid(
            "effective_on",
            format!("{on} is before the member joined ({})", current.joined_on),
        ));
    }
    let reason = clean_text("reason", reason, 500, status == MemberStatus::Ceased)?;
    let kind = match status {
        MemberStatus::Transferred => "transferred_out",
        MemberStatus::Left => "left",
        _ => "ceased",
    };
    let event = MemberEvent {
        kind: kind.to_owned(),
        on,
        reason: reason.clone(),
        other_unit: other_unit.cloned(),
    };
    edit(doc, author, kind, |tx| {
        let obj = member_obj(tx, id)?;
        am::put_str(tx, &obj, "status", status.as_str())?;
        am::put_str(tx, &obj, "status_reason", &reason)?;
        am::put_str(tx, &obj, "status_on", &on.to_string())?;
        let history = am::ensure_list(tx, &obj, "history")?;
        event_record(&event).append(tx, &history)?;
        Ok(())
    })?;
    read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))
}

/// Receives a transferred member: a new record, or the old record made
/// active again when the member comes back to a unit they were in.
pub fn transfer_in(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    from: &Member,
    reason: &str,
    on: Date,
) -> Result<Member, ModelError> {
    let event = MemberEvent {
        kind: "transferred_in".to_owned(),
        on,
        reason: clean_text("reason", reason, 500, false)?,
        other_unit: Some(from.unit.clone()),
    };
    if let Some(existing) = read(doc, &from.id)?
        && existing.status == MemberStatus::Active
    {
        return Err(ModelError::invalid(
            "member_id",
            format!("member {} is already active in unit {unit}", from.id),
        ));
    }
    init_roster_skeleton(doc, unit, bucket)?;
    edit(doc, author, "transfer member in", |tx| {
        let members = members_map(tx)?;
        match am::child(tx, &members, from.id.as_str()) {
            Some(obj) => {
                // The returning member's record takes the current fields:
                // corrections made in the other unit are not lost.
                am::put_str(tx, &obj, "status", MemberStatus::Active.as_str())?;
                am::put_str(tx, &obj, "status_reason", "")?;
                am::put_str(tx, &obj, "status_on", &on.to_string())?;
                am::put_str(tx, &obj, "full_name", &from.full_name)?;
                am::put_str(tx, &obj, "position", &from.position)?;
                am::put_str(
                    tx,
                    &obj,
                    "birth_date",
                    &from.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                )?;
                am::put_str(tx, &obj, "gender", from.gender.as_str())?;
                am::put_str(tx, &obj, "card_number", from.card_number.as_str())?;
                am::put_str(tx, &obj, "joined_on", &from.joined_on.to_string())?;
                // A de-identified member stays so in every unit they come
                // back to: the old record loses what it still held.
                if let Some(d) = &from.deidentified
                    && am::child(tx, &obj, "deidentified").is_none()
                {
                    scrub(tx, &obj)?;
                    deidentified_record(d).create(tx, &obj, "deidentified")?;
                }
                let history = am::ensure_list(tx, &obj, "history")?;
                event_record(&event).append(tx, &history)?;
            }
            None => {
                let m = Member {
                    unit: unit.clone(),
                    status: MemberStatus::Active,
                    status_reason: String::new(),
                    status_on: Some(on),
                    history: vec![event.clone()],
                    ..from.clone()
                };
                member_record(&m).create(tx, &members, from.id.as_str())?;
            }
        }
        Ok(())
    })?;
    read(doc, &from.id)?.ok_or_else(|| ModelError::not_found("member", &from.id))
}

/// Builds the record of a member who joins `unit` today.
pub fn joining(id: MemberId, unit: UnitId, new: &NewMember) -> Member {
    Member {
        id,
        unit,
        full_name: new.full_name.clone(),
        birth_date: Some(new.birth_date),
        gender: new.gender,
        card_number: new.card_number.clone(),
        joined_on: new.joined_on,
        position: new.position.clone(),
        status: MemberStatus::Active,
        status_reason: String::new(),
        status_on: Some(new.joined_on),
        history: vec![MemberEvent {
            kind: "joined".to_owned(),
            on: new.joined_on,
            reason: String::new(),
            other_unit: None,
        }],
        deidentified: None,
    }
}

/// The member ids a set of patches touches in a roster (or private roster)
/// document; `None` when the patches touch something else (then everything
/// must be re-read).
pub fn touched_members(patches: &[Patch]) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for p in patches {
        match p.path.first() {
            Some((_, Prop::Map(k))) if k == "members" => match p.path.get(1) {
                Some((_, Prop::Map(id))) => {
                    out.insert(id.clone());
                }
                _ => match &p.action {
                    automerge::PatchAction::PutMap { key, .. }
                    | automerge::PatchAction::DeleteMap { key } => {
                        out.insert(key.clone());
                    }
                    _ => return None,
                },
            },
            None => match &p.action {
                // Root fields (owner, unit, bucket) are written once at
                // creation; the members map itself appears then too.
                automerge::PatchAction::PutMap { key, .. } if key != "members" => {}
                automerge::PatchAction::PutMap { .. } => {}
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(out)
}

/// Private data: writes (or overwrites) a member's sensitive fields.
pub fn put_private(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    id: &MemberId,
    data: &PrivateData,
) -> Result<(), ModelError> {
    init_roster_skeleton(doc, unit, bucket)?;
    edit(doc, author, "record private data", |tx| {
        let members = members_map(tx)?;
        let obj = am::ensure_map(tx, &members, id.as_str())?;
        am::put_str(
            tx,
            &obj,
            "national_id",
            data.national_id
                .as_ref()
                .map(NationalId::as_str)
                .unwrap_or(""),
        )?;
        am::put_str(tx, &obj, "ethnicity", &data.ethnicity)?;
        am::put_str(tx, &obj, "religion", &data.religion)?;
        Ok(())
    })
}

/// Reads the private data of the named members (all when `ids` is `None`).
pub fn read_private(
    doc: &Automerge,
    ids: Option<&BTreeSet<String>>,
) -> Result<Vec<(MemberId, PrivateData)>, ModelError> {
    let root = Obj::root(doc);
    let Some(members) = root.obj("members") else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = match ids {
        Some(ids) => ids.iter().cloned().collect(),
        None => members.keys(),
    };
    let mut out = Vec::new();
    for k in keys {
        if let Some(o) = members.obj(&k) {
            let bad = |e: ModelError| ModelError::document("roster-private", e.to_string());
            out.push((
                MemberId::parse("id", &k).map_err(bad)?,
                PrivateData::parse(
                    &o.str("national_id"),
                    &o.str("ethnicity"),
                    &o.str("religion"),
                )
                .map_err(bad)?,
            ));
        }
    }
    Ok(out)
}

/// The fields [`scrub`] clears, with the value it leaves.
const SCRUBBED: [(&str, &str); 4] = [
    ("full_name", DEIDENTIFIED_NAME),
    ("birth_date", ""),
    ("position", ""),
    ("status_reason", ""),
];

/// Whether `o[key]` holds anything but `v`: another value, or `v` beside a
/// conflicting one (a concurrent write keeps its value as a conflict).
fn holds_other<R: automerge::ReadDoc>(o: &Obj<'_, R>, key: &str, v: &str) -> bool {
    o.str(key) != v || o.conflicted(key)
}

/// The history entries of a record.
fn events<R: automerge::ReadDoc>(doc: &R, obj: &automerge::ObjId) -> Vec<automerge::ObjId> {
    Obj {
        doc,
        id: obj.clone(),
    }
    .list("history")
    .into_iter()
    .map(|e| e.id)
    .collect()
}

/// Removes the personal fields of a record's current state: the name
/// becomes [`DEIDENTIFIED_NAME`]; birth date, position and every free-text
/// reason (which may name the person or their health) become empty. A
/// field is written over when it holds another value or a conflict, so no
/// concurrent value survives beside the new one. Unit, gender, card number,
/// membership dates, status and the kinds, dates and units of the history
/// stay: the federation's statistics count them.
fn scrub<T: automerge::transaction::Transactable>(
    tx: &mut T,
    obj: &automerge::ObjId,
) -> Result<(), ModelError> {
    for (key, v) in SCRUBBED {
        if holds_other(
            &Obj {
                doc: &*tx,
                id: obj.clone(),
            },
            key,
            v,
        ) {
            tx.put(obj, key, v)?;
        }
    }
    for event in events(&*tx, obj) {
        if holds_other(
            &Obj {
                doc: &*tx,
                id: event.clone(),
            },
            "reason",
            "",
        ) {
            tx.put(&event, "reason", "")?;
        }
    }
    Ok(())
}

/// Whether a de-identification request has anything to do in this record:
/// it was not de-identified yet, or a personal value came back into its
/// current state (written concurrently, at a node that had not yet seen
/// the de-identification, or a later reason). `false` for an absent record.
pub fn needs_deidentify(doc: &Automerge, id: &MemberId) -> bool {
    let Ok(obj) = member_obj(doc, id) else {
        return false;
    };
    let o = Obj {
        doc,
        id: obj.clone(),
    };
    o.obj("deidentified").is_none()
        || SCRUBBED.iter().any(|(key, v)| holds_other(&o, key, v))
        || events(doc, &obj)
            .into_iter()
            .any(|e| holds_other(&Obj { doc, id: e }, "reason", ""))
}

/// De-identifies a member's record on request (Law 91/2025): removes the
/// personal fields from its current state ([`scrub`]) and records the
/// request in the record, without the removed values, in one change. A
/// record de-identified before keeps its first request and is scrubbed
/// again if a personal value came back ([`needs_deidentify`]); one with
/// nothing left to remove is refused. Earlier values stay in the
/// document's change history: automerge keeps every change.
pub fn deidentify(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
    request: &Deidentified,
) -> Result<Member, ModelError> {
    let current = read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))?;
    if let Some(d) = &current.deidentified
        && !needs_deidentify(doc, id)
    {
        return Err(ModelError::precondition(
            "member_id",
            format!(
                "member {id} was de-identified already, at {} by {}",
                d.at, d.by
            ),
        ));
    }
    edit(doc, author, "deidentify member", |tx| {
        let obj = member_obj(tx, id)?;
        scrub(tx, &obj)?;
        if am::child(tx, &obj, "deidentified").is_none() {
            deidentified_record(request).create(tx, &obj, "deidentified")?;
        }
        Ok(())
    })?;
    read(doc, id)?.ok_or_else(|| ModelError::not_found("member", id))
}

/// Removes a member's entry (CCCD, ethnicity, religion) from a private
/// roster's current state, in one change; `false` when it holds none.
pub fn forget_private(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
) -> Result<bool, ModelError> {
    let held = Obj::root(&*doc)
        .obj("members")
        .is_some_and(|m| m.obj(id.as_str()).is_some());
    if !held {
        return Ok(false);
    }
    edit(doc, author, "forget private data", |tx| {
        let members = members_map(tx)?;
        automerge::transaction::Transactable::delete(tx, &members, id.as_str())?;
        Ok(())
    })?;
    Ok(true)
}
