//! Roster documents: which bucket a member goes in, the records as
//! automerge maps, and adding, reading, updating, ending and transferring
//! members.

use std::collections::BTreeSet;

use automerge::{Automerge, Patch, Prop};

use super::*;
use crate::am::{self, Obj, Record, Whole};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, Skel, edit};
use crate::error::ModelError;
use crate::ids::{CardNumber, MemberId, UnitId, clean_text, stable_hash};

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
    let r = Record::new()
        .str("kind", &e.kind)
        .str("on", e.on.to_string())
        .str("reason", &e.reason)
        .str(
            "other_unit",
            e.other_unit.as_ref().map(UnitId::as_str).unwrap_or(""),
        );
    // Written only when a decision made the change: the events of every
    // other change stay as they were (and cost no bytes more).
    if e.decision.is_empty() {
        r
    } else {
        r.str("decision", &e.decision)
    }
}

pub(super) fn deidentified_record(d: &Deidentified) -> Record {
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

pub(super) fn members_map<T: automerge::ReadDoc>(tx: &T) -> Result<automerge::ObjId, ModelError> {
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
    add_many(doc, author, unit, bucket, std::slice::from_ref(member))
}

/// Adds new members to a roster in one change (an import's rows for one
/// roster): one change's metadata for the lot, not one per member. Fails,
/// adding none, if any of them is already there.
pub fn add_many(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    members: &[Member],
) -> Result<(), ModelError> {
    if members.is_empty() {
        return Ok(());
    }
    init_roster_skeleton(doc, unit, bucket)?;
    let message = match members.len() {
        1 => "add member".to_owned(),
        n => format!("add {n} members"),
    };
    edit(doc, author, &message, |tx| {
        let map = members_map(tx)?;
        for member in members {
            if am::child(tx, &map, member.id.as_str()).is_some() {
                return Err(ModelError::AlreadyExists {
                    what: "member",
                    id: member.id.to_string(),
                });
            }
            member_record(member).create(tx, &map, member.id.as_str())?;
        }
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
    match members.obj(id.as_str()).and_then(|o| o.read_whole()) {
        Some(m) => read_obj(&unit, id.as_str(), Whole(&m)).map(Some),
        None => Ok(None),
    }
}

/// Reads the named members (or all when `ids` is `None`) from a roster,
/// in id order. Each member is read in one pass over its operations; all
/// of them, in one pass over the roster's members.
pub fn read_many(
    doc: &Automerge,
    ids: Option<&BTreeSet<String>>,
) -> Result<Vec<Member>, ModelError> {
    let root = Obj::root(doc);
    let unit = root.str("unit");
    let Some(members) = root.obj("members") else {
        return Ok(Vec::new());
    };
    match ids {
        None => match members.read_whole() {
            Some(all) => read_all(&unit, Whole(&all)),
            None => Ok(Vec::new()),
        },
        Some(ids) => {
            let mut out = Vec::with_capacity(ids.len());
            for k in ids {
                if let Some(m) = members.obj(k).and_then(|o| o.read_whole()) {
                    out.push(read_obj(&unit, k, Whole(&m))?);
                }
            }
            Ok(out)
        }
    }
}

/// Every member of a roster already read whole (`root`: the document's
/// root map), in id order.
pub fn read_members_of(root: Whole<'_>) -> Result<Vec<Member>, ModelError> {
    match root.obj("members") {
        Some(members) => read_all(&root.str("unit"), members),
        None => Ok(Vec::new()),
    }
}

fn read_all(unit: &str, members: Whole<'_>) -> Result<Vec<Member>, ModelError> {
    let mut out = Vec::new();
    for k in members.keys() {
        if let Some(o) = members.obj(k) {
            out.push(read_obj(unit, k, o)?);
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

fn read_obj(unit: &str, id: &str, o: Whole<'_>) -> Result<Member, ModelError> {
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
                decision: e.str("decision"),
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

pub(super) fn member_obj<T: automerge::ReadDoc>(
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
    end_by(doc, author, id, status, reason, on, other_unit, "")
}

/// Like [`end`], recording the reorganisation decision that made it.
#[allow(clippy::too_many_arguments)]
pub fn end_by(
    doc: &mut Automerge,
    author: &Author,
    id: &MemberId,
    status: MemberStatus,
    reason: &str,
    on: Date,
    other_unit: Option<&UnitId>,
    decision: &str,
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
        decision: decision.to_owned(),
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

/// Ends, in one change, the active memberships in this roster of `ids`
/// (every active member when `None`): ceased or left on `on`, with the
/// reason and the decision that ended them. Returns the ids of the members ended; a
/// named member who is not active here, or who joined after `on`, refuses
/// the whole change.
pub fn end_many(
    doc: &mut Automerge,
    author: &Author,
    ids: Option<&[MemberId]>,
    status: MemberStatus,
    reason: &str,
    on: Date,
    decision: &str,
) -> Result<Vec<MemberId>, ModelError> {
    if !matches!(status, MemberStatus::Left | MemberStatus::Ceased) {
        return Err(ModelError::invalid("status", "expected left or ceased"));
    }
    let reason = clean_text("reason", reason, 500, true)?;
    let unit = Obj::root(&*doc).str("unit");
    let Some(members) = Obj::root(&*doc).obj("members") else {
        return match ids {
            Some([first, ..]) => Err(ModelError::invalid(
                "members",
                format!("member {first} is not in this roster"),
            )),
            _ => Ok(Vec::new()),
        };
    };
    // Only the two fields the check needs are read: a roster of a
    // thousand members ends in one pass over them.
    let keys: Vec<String> = match ids {
        Some(ids) => ids.iter().map(ToString::to_string).collect(),
        None => members.keys(),
    };
    let mut ending = Vec::with_capacity(keys.len());
    for k in keys {
        let Some(o) = members.obj(&k) else {
            return Err(ModelError::invalid(
                "members",
                format!("member {k} is not in this roster"),
            ));
        };
        let current = o.str("status");
        if current != MemberStatus::Active.as_str() {
            if ids.is_some() {
                return Err(ModelError::invalid(
                    "members",
                    format!("member {k} is not active in unit {unit} (status {current})"),
                ));
            }
            continue;
        }
        let joined = Date::parse("joined_on", &o.str("joined_on")).map_err(|e| {
            ModelError::document(format!("roster/{unit} member {k}"), e.to_string())
        })?;
        if on < joined {
            return Err(ModelError::invalid(
                "on",
                format!("{on} is before member {k} joined ({joined})"),
            ));
        }
        ending.push(MemberId::parse("members", &k)?);
    }
    if ending.is_empty() {
        return Ok(ending);
    }
    let event = MemberEvent {
        kind: status.as_str().to_owned(),
        on,
        reason: reason.clone(),
        other_unit: None,
        decision: decision.to_owned(),
    };
    let on_s = on.to_string();
    edit(doc, author, status.as_str(), |tx| {
        let members = members_map(tx)?;
        for id in &ending {
            let obj = am::child(tx, &members, id.as_str())
                .ok_or_else(|| ModelError::not_found("member", id))?;
            am::put_str(tx, &obj, "status", status.as_str())?;
            am::put_str(tx, &obj, "status_reason", &reason)?;
            am::put_str(tx, &obj, "status_on", &on_s)?;
            let history = am::ensure_list(tx, &obj, "history")?;
            event_record(&event).append(tx, &history)?;
        }
        Ok(())
    })?;
    Ok(ending)
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
    transfer_in_by(doc, author, unit, bucket, from, reason, on, "")
}

/// Like [`transfer_in`], recording the reorganisation decision that made it.
#[allow(clippy::too_many_arguments)]
pub fn transfer_in_by(
    doc: &mut Automerge,
    author: &Author,
    unit: &UnitId,
    bucket: u32,
    from: &Member,
    reason: &str,
    on: Date,
    decision: &str,
) -> Result<Member, ModelError> {
    let event = MemberEvent {
        kind: "transferred_in".to_owned(),
        on,
        reason: clean_text("reason", reason, 500, false)?,
        other_unit: Some(from.unit.clone()),
        decision: decision.to_owned(),
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
            decision: String::new(),
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
