//! Units, members, campaigns, emulation, awards and report rows, and the
//! requests that carry them.

use hopluu_model::award::{Award, Proposal, ProposalStatus, Recipient, RecipientKind};
use hopluu_model::campaign::{Campaign, CampaignStatus};
use hopluu_model::emulation::{Emulation, Initiative, InitiativeStatus, Work};
use hopluu_model::member::{Gender, Member, MemberStatus, PrivateData};
use hopluu_model::unit::{Unit, UnitStatus};
use hopluu_proto::v1 as pb;
use hopluu_store::read::UnitRow;

use hopluu_model::Date;
use hopluu_model::member::MemberInput;
use tonic::Status;

use crate::app::RawRecipient;

/// A refusal of request field `field`, as a status.
pub fn bad(field: &str, reason: &str) -> Status {
    Status::from(crate::NodeError::from(hopluu_model::ModelError::invalid(
        field, reason,
    )))
}

pub fn unit_status(s: UnitStatus) -> pb::UnitStatus {
    match s {
        UnitStatus::Active => pb::UnitStatus::Active,
        UnitStatus::Merged => pb::UnitStatus::Merged,
        UnitStatus::Closed => pb::UnitStatus::Closed,
    }
}

pub fn unit(u: &Unit, depth: u32) -> pb::Unit {
    pb::Unit {
        id: u.id.to_string(),
        name: u.name.clone(),
        kind: u.kind.to_string(),
        parent_id: u
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        status: unit_status(u.status) as i32,
        successor_ids: u.successors.iter().map(ToString::to_string).collect(),
        closed_on: u.closed_on.map(|d| d.to_string()).unwrap_or_default(),
        close_reason: u.close_reason.clone(),
        depth,
        name_history: u
            .names
            .iter()
            .map(|n| pb::NameChange {
                name: n.name.clone(),
                effective_on: n.effective_on.to_string(),
                decision_no: n.decision_no.clone(),
            })
            .collect(),
        parent_history: u
            .parents
            .iter()
            .map(|p| pb::ParentChange {
                parent_id: p
                    .parent
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                decided_on: p.decided_on.to_string(),
                effective_on: p.effective_on.to_string(),
                decision_no: p.decision_no.clone(),
            })
            .collect(),
    }
}

pub fn unit_row(u: &UnitRow) -> pb::Unit {
    pb::Unit {
        id: u.id.to_string(),
        name: u.name.clone(),
        kind: u.kind.clone(),
        parent_id: u
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        status: unit_status(u.status) as i32,
        successor_ids: u.successors.iter().map(ToString::to_string).collect(),
        closed_on: u.closed_on.clone(),
        close_reason: u.close_reason.clone(),
        depth: u.depth,
        name_history: Vec::new(),
        parent_history: Vec::new(),
    }
}

pub fn gender(g: Gender) -> pb::Gender {
    match g {
        Gender::Male => pb::Gender::Male,
        Gender::Female => pb::Gender::Female,
        Gender::Other => pb::Gender::Other,
    }
}

/// The domain's word for a protobuf gender ("" when unspecified, which the
/// domain then rejects with the field named).
pub fn gender_str(g: i32) -> &'static str {
    match pb::Gender::try_from(g) {
        Ok(pb::Gender::Male) => "male",
        Ok(pb::Gender::Female) => "female",
        Ok(pb::Gender::Other) => "other",
        _ => "",
    }
}

pub fn member_status(s: MemberStatus) -> pb::MemberStatus {
    match s {
        MemberStatus::Active => pb::MemberStatus::Active,
        MemberStatus::Transferred => pb::MemberStatus::Transferred,
        MemberStatus::Left => pb::MemberStatus::Left,
        MemberStatus::Ceased => pb::MemberStatus::Ceased,
    }
}

pub fn member_status_from(s: i32) -> Option<MemberStatus> {
    match pb::MemberStatus::try_from(s) {
        Ok(pb::MemberStatus::Active) => Some(MemberStatus::Active),
        Ok(pb::MemberStatus::Transferred) => Some(MemberStatus::Transferred),
        Ok(pb::MemberStatus::Left) => Some(MemberStatus::Left),
        Ok(pb::MemberStatus::Ceased) => Some(MemberStatus::Ceased),
        _ => None,
    }
}

pub fn member(m: &Member, private: Option<&PrivateData>) -> pb::Member {
    pb::Member {
        id: m.id.to_string(),
        unit_id: m.unit.to_string(),
        full_name: m.full_name.clone(),
        birth_date: m.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        gender: gender(m.gender) as i32,
        card_number: m.card_number.to_string(),
        joined_on: m.joined_on.to_string(),
        position: m.position.clone(),
        status: member_status(m.status) as i32,
        status_reason: m.status_reason.clone(),
        status_on: m.status_on.map(|d| d.to_string()).unwrap_or_default(),
        history: m
            .history
            .iter()
            .map(|e| pb::MemberEvent {
                kind: e.kind.clone(),
                on: e.on.to_string(),
                reason: e.reason.clone(),
                unit_id: m.unit.to_string(),
                other_unit_id: e
                    .other_unit
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                decision: e.decision.clone(),
            })
            .collect(),
        private: private.map(|p| pb::PrivateData {
            national_id: p
                .national_id
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            ethnicity: p.ethnicity.clone(),
            religion: p.religion.clone(),
        }),
        deidentified: m.deidentified.as_ref().map(|d| pb::Deidentified {
            at: d.at.clone(),
            by: d.by.clone(),
            operator: d.operator.clone(),
            reason: d.reason.clone(),
            reference: d.reference.clone(),
        }),
    }
}

pub fn campaign(c: &Campaign) -> pb::Campaign {
    pb::Campaign {
        id: c.id.to_string(),
        launching_unit_id: c.launching_unit.to_string(),
        title: c.title.clone(),
        theme: c.theme.clone(),
        starts_on: c.starts_on.to_string(),
        ends_on: c.ends_on.to_string(),
        scope_unit_id: c.scope.to_string(),
        status: match c.status {
            CampaignStatus::Active => pb::CampaignStatus::Active,
            CampaignStatus::Closed => pb::CampaignStatus::Closed,
        } as i32,
        plans: c
            .plans
            .iter()
            .map(|(u, p)| pb::Plan {
                unit_id: u.to_string(),
                initiative_quota: p.initiative_quota,
                works_quota: p.works_quota,
            })
            .collect(),
        closed_on: c.closed_on.map(|d| d.to_string()).unwrap_or_default(),
    }
}

pub fn initiative_status(s: InitiativeStatus) -> pb::InitiativeStatus {
    match s {
        InitiativeStatus::Submitted => pb::InitiativeStatus::Submitted,
        InitiativeStatus::UnderReview => pb::InitiativeStatus::UnderReview,
        InitiativeStatus::Valid => pb::InitiativeStatus::Valid,
        InitiativeStatus::Rejected => pb::InitiativeStatus::Rejected,
        InitiativeStatus::Recognised => pb::InitiativeStatus::Recognised,
    }
}

pub fn initiative_status_from(s: i32) -> Option<InitiativeStatus> {
    match pb::InitiativeStatus::try_from(s) {
        Ok(pb::InitiativeStatus::Submitted) => Some(InitiativeStatus::Submitted),
        Ok(pb::InitiativeStatus::UnderReview) => Some(InitiativeStatus::UnderReview),
        Ok(pb::InitiativeStatus::Valid) => Some(InitiativeStatus::Valid),
        Ok(pb::InitiativeStatus::Rejected) => Some(InitiativeStatus::Rejected),
        Ok(pb::InitiativeStatus::Recognised) => Some(InitiativeStatus::Recognised),
        _ => None,
    }
}

pub fn initiative(i: &Initiative) -> pb::Initiative {
    pb::Initiative {
        id: i.id.to_string(),
        title: i.title.clone(),
        authors: i.authors.clone(),
        status: initiative_status(i.status) as i32,
        recognised_level: i.recognised_level.clone(),
        value_vnd: i.value_vnd,
        submitted_on: i.submitted_on.to_string(),
        note: i.note.clone(),
    }
}

pub fn work(w: &Work) -> pb::Work {
    pb::Work {
        id: w.id.to_string(),
        name: w.name.clone(),
        value_vnd: w.value_vnd,
        plaque: w.plaque,
        completed_on: w.completed_on.map(|d| d.to_string()).unwrap_or_default(),
    }
}

pub fn emulation(e: &Emulation) -> pb::Emulation {
    pb::Emulation {
        unit_id: e.unit.to_string(),
        campaign_id: e.campaign.to_string(),
        registered: e.registered,
        registered_on: e.registered_on.map(|d| d.to_string()).unwrap_or_default(),
        pledge: e.pledge.clone(),
        initiatives: e.initiatives.iter().map(initiative).collect(),
        works: e.works.iter().map(work).collect(),
    }
}

pub fn recipient(r: &Recipient) -> pb::Recipient {
    pb::Recipient {
        who: Some(match r {
            Recipient::Member { member, .. } => pb::recipient::Who::MemberId(member.to_string()),
            Recipient::Unit(u) => pb::recipient::Who::UnitId(u.to_string()),
        }),
    }
}

pub fn raw_recipient(r: &pb::Recipient) -> RawRecipient {
    match &r.who {
        Some(pb::recipient::Who::MemberId(m)) => RawRecipient::Member(m.clone()),
        Some(pb::recipient::Who::UnitId(u)) => RawRecipient::Unit(u.clone()),
        None => RawRecipient::Missing,
    }
}

pub fn recipient_kind(k: RecipientKind) -> pb::RecipientKind {
    match k {
        RecipientKind::Person => pb::RecipientKind::Person,
        RecipientKind::Collective => pb::RecipientKind::Collective,
        RecipientKind::Both => pb::RecipientKind::Both,
    }
}

pub fn proposal(p: &Proposal) -> pb::Proposal {
    pb::Proposal {
        id: p.id.to_string(),
        proposing_unit_id: p.proposing_unit.to_string(),
        addressed_unit_id: p.addressed_unit.to_string(),
        award_type: p.award_type.to_string(),
        campaign_id: p
            .campaign
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        candidates: p.candidates.iter().map(recipient).collect(),
        reason: p.reason.clone(),
        proposed_on: p.proposed_on.to_string(),
        status: match p.status {
            ProposalStatus::Pending => pb::ProposalStatus::Pending,
            ProposalStatus::Decided => pb::ProposalStatus::Decided,
            ProposalStatus::Declined => pb::ProposalStatus::Declined,
        } as i32,
        award_id: p
            .award
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

pub fn award(a: &Award) -> pb::Award {
    pb::Award {
        id: a.id.to_string(),
        issuing_unit_id: a.issuing_unit.to_string(),
        decision_no: a.decision_no.clone(),
        decided_on: a.decided_on.to_string(),
        effective_on: a.effective_on.to_string(),
        award_type: a.award_type.to_string(),
        recipients: a.recipients.iter().map(recipient).collect(),
        campaign_id: a
            .campaign
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        proposal_id: a
            .proposal
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        reason: a.reason.clone(),
        revoked: a.revoked,
        revoked_on: a.revoked_on.map(|d| d.to_string()).unwrap_or_default(),
        revoke_reason: a.revoke_reason.clone(),
    }
}

/// A member as a request gives it (`member` is required).
pub fn member_input(m: Option<pb::MemberInput>) -> Result<MemberInput, Status> {
    let m = m.ok_or_else(|| bad("member", "is required"))?;
    Ok(MemberInput {
        full_name: m.full_name,
        birth_date: m.birth_date,
        gender: gender_str(m.gender).to_owned(),
        card_number: m.card_number,
        joined_on: m.joined_on,
        position: m.position,
        national_id: m.national_id,
        ethnicity: m.ethnicity,
        religion: m.religion,
    })
}

/// An optional date field, checked.
pub fn opt_date(field: &str, s: Option<String>) -> Result<Option<Date>, Status> {
    s.map(|s| Date::parse(field, &s))
        .transpose()
        .map_err(|e| Status::from(crate::NodeError::from(e)))
}

pub fn members_row(r: &hopluu_store::report::MembersRow) -> pb::MembersRow {
    pb::MembersRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        total: r.total,
        active: r.active,
        transferred: r.transferred,
        left: r.left,
        ceased: r.ceased,
        male: r.male,
        female: r.female,
        other_gender: r.other_gender,
    }
}

pub fn initiatives_row(r: &hopluu_store::report::InitiativesRow) -> pb::InitiativesRow {
    pb::InitiativesRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        recorded: r.recorded,
        valid: r.valid,
        plan: r.plan,
        percent_of_plan: r.percent_of_plan,
        rank: r.rank,
    }
}

pub fn works_row(r: &hopluu_store::report::WorksRow) -> pb::WorksRow {
    pb::WorksRow {
        unit_id: r.unit_id.clone(),
        unit_name: r.unit_name.clone(),
        count: r.count,
        value_vnd: r.value_vnd,
        plaques: r.plaques,
    }
}
