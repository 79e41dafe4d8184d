//! One typed row per projection table, each built from the model's value
//! it projects. A field is a column: [`row!`] names the columns after the
//! fields, so what is bound always lines up with what is named.

use hopluu_model::award::{Award, Proposal, Recipient};
use hopluu_model::campaign::{Campaign, Plan};
use hopluu_model::emulation::{Emulation, Initiative, Work};
use hopluu_model::hosting::NodeInfo;
use hopluu_model::member::{Deidentified, Member, PrivateData};
use hopluu_model::reorg::Recorded;
use hopluu_model::timeline::{Link, member_since};
use hopluu_model::unit::Unit;
use hopluu_model::{Date, MemberId, UnitId, ids::fold};

use super::sql::row;

/// An optional date as stored: empty when absent.
fn date(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

row! {
    UnitRow in "units", key ["id"] {
        id: String,
        name: String,
        kind: String,
        /// Empty here for the root; written as NULL after the upsert.
        parent: String,
        status: String,
        successors: String,
        closed_on: String,
        close_reason: String,
        doc: i64,
    }
}

impl UnitRow {
    pub(crate) fn new(u: &Unit, doc: i64) -> UnitRow {
        UnitRow {
            id: u.id.as_str().into(),
            name: u.name.as_str().into(),
            kind: u.kind.as_str().into(),
            parent: u.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            status: u.status.as_str().into(),
            successors: u
                .successors
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            closed_on: date(u.closed_on),
            close_reason: u.close_reason.as_str().into(),
            doc,
        }
    }
}

/// The end of a link that still holds, as stored.
pub(crate) const OPEN_END: &str = "9999-12-31";

row! {
    /// One interval of a unit's life under one parent.
    UnitLinkRow in "unit_links", key ["unit", "valid_from"] {
        unit: String,
        /// Empty for a root.
        parent: String,
        valid_from: String,
        /// [`OPEN_END`] while the link holds.
        valid_to: String,
    }
}

impl UnitLinkRow {
    pub(crate) fn new(u: &Unit, l: &Link) -> UnitLinkRow {
        UnitLinkRow {
            unit: u.id.as_str().into(),
            parent: l.parent.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            valid_from: l.from.to_string(),
            valid_to: l.to.map_or_else(|| OPEN_END.to_owned(), |d| d.to_string()),
        }
    }
}

row! {
    MemberRow in "members", key ["member_id", "unit_id"],
    // Two records of one member in one unit (placed concurrently in two
    // buckets): the lowest bucket's is projected, on every node, whatever
    // order the documents arrive in.
    guard "excluded.bucket <= members.bucket" {
        member_id: String,
        unit_id: String,
        doc: i64,
        bucket: i64,
        full_name: String,
        name_key: String,
        birth_date: String,
        gender: String,
        card_number: String,
        joined_on: String,
        position: String,
        status: String,
        status_reason: String,
        status_on: String,
        deidentified_at: String,
        deidentified_by: String,
        deidentified_operator: String,
        deidentified_reason: String,
        deidentified_reference: String,
        /// The day this record began ([`member_since`]).
        since_on: String,
    }
}

impl MemberRow {
    pub(crate) fn new(m: &Member, doc: i64, bucket: u32) -> MemberRow {
        let de = |f: fn(&Deidentified) -> &str| -> String {
            m.deidentified.as_ref().map(f).unwrap_or_default().into()
        };
        MemberRow {
            member_id: m.id.as_str().into(),
            unit_id: m.unit.as_str().into(),
            doc,
            bucket: i64::from(bucket),
            full_name: m.full_name.as_str().into(),
            name_key: fold(&m.full_name),
            birth_date: date(m.birth_date),
            gender: m.gender.as_str().into(),
            card_number: m.card_number.as_str().into(),
            joined_on: m.joined_on.to_string(),
            position: m.position.as_str().into(),
            status: m.status.as_str().into(),
            status_reason: m.status_reason.as_str().into(),
            status_on: date(m.status_on),
            deidentified_at: de(|d| &d.at),
            deidentified_by: de(|d| &d.by),
            deidentified_operator: de(|d| &d.operator),
            deidentified_reason: de(|d| &d.reason),
            deidentified_reference: de(|d| &d.reference),
            since_on: member_since(m).to_string(),
        }
    }
}

row! {
    PrivateRow in "member_private", key ["member_id", "unit_id"],
    guard "excluded.bucket <= member_private.bucket" {
        member_id: String,
        unit_id: String,
        national_id: String,
        ethnicity: String,
        religion: String,
        bucket: i64,
    }
}

impl PrivateRow {
    pub(crate) fn new(m: &MemberId, unit: &UnitId, bucket: u32, p: PrivateData) -> PrivateRow {
        PrivateRow {
            member_id: m.as_str().into(),
            unit_id: unit.as_str().into(),
            national_id: p
                .national_id
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            ethnicity: p.ethnicity,
            religion: p.religion,
            bucket: i64::from(bucket),
        }
    }
}

row! {
    CampaignRow in "campaigns", key ["id"] {
        id: String,
        launching_unit: String,
        title: String,
        theme: String,
        starts_on: String,
        ends_on: String,
        scope_unit: String,
        status: String,
        doc: i64,
    }
}

impl CampaignRow {
    pub(crate) fn new(c: &Campaign, doc: i64) -> CampaignRow {
        CampaignRow {
            id: c.id.as_str().into(),
            launching_unit: c.launching_unit.as_str().into(),
            title: c.title.as_str().into(),
            theme: c.theme.as_str().into(),
            starts_on: c.starts_on.to_string(),
            ends_on: c.ends_on.to_string(),
            scope_unit: c.scope.as_str().into(),
            status: c.status.as_str().into(),
            doc,
        }
    }
}

row! {
    PlanRow in "campaign_plans", key ["campaign", "unit_id"] {
        campaign: String,
        unit_id: String,
        initiative_quota: i64,
        works_quota: i64,
    }
}

impl PlanRow {
    pub(crate) fn new(c: &Campaign, unit: &UnitId, p: &Plan) -> PlanRow {
        PlanRow {
            campaign: c.id.as_str().into(),
            unit_id: unit.as_str().into(),
            initiative_quota: i64::from(p.initiative_quota),
            works_quota: i64::from(p.works_quota),
        }
    }
}

row! {
    RegistrationRow in "registrations", key ["unit_id", "campaign"] {
        unit_id: String,
        campaign: String,
        registered: i64,
        registered_on: String,
        pledge: String,
        doc: i64,
    }
}

impl RegistrationRow {
    pub(crate) fn new(e: &Emulation, doc: i64) -> RegistrationRow {
        RegistrationRow {
            unit_id: e.unit.as_str().into(),
            campaign: e.campaign.as_str().into(),
            registered: i64::from(e.registered),
            registered_on: date(e.registered_on),
            pledge: e.pledge.as_str().into(),
            doc,
        }
    }
}

row! {
    InitiativeRow in "initiatives", key ["id"] {
        id: String,
        unit_id: String,
        campaign: String,
        title: String,
        authors: String,
        status: String,
        recognised_level: String,
        value_vnd: i64,
        submitted_on: String,
        doc: i64,
    }
}

impl InitiativeRow {
    pub(crate) fn new(e: &Emulation, i: &Initiative, doc: i64) -> InitiativeRow {
        InitiativeRow {
            id: i.id.as_str().into(),
            unit_id: e.unit.as_str().into(),
            campaign: e.campaign.as_str().into(),
            title: i.title.as_str().into(),
            authors: i.authors.join("; "),
            status: i.status.as_str().into(),
            recognised_level: i.recognised_level.as_str().into(),
            value_vnd: i.value_vnd,
            submitted_on: i.submitted_on.to_string(),
            doc,
        }
    }
}

row! {
    WorkRow in "works", key ["id"] {
        id: String,
        unit_id: String,
        campaign: String,
        name: String,
        value_vnd: i64,
        plaque: i64,
        completed_on: String,
        doc: i64,
    }
}

impl WorkRow {
    pub(crate) fn new(e: &Emulation, w: &Work, doc: i64) -> WorkRow {
        WorkRow {
            id: w.id.as_str().into(),
            unit_id: e.unit.as_str().into(),
            campaign: e.campaign.as_str().into(),
            name: w.name.as_str().into(),
            value_vnd: w.value_vnd,
            plaque: i64::from(w.plaque),
            completed_on: date(w.completed_on),
            doc,
        }
    }
}

row! {
    ProposalRow in "proposals", key ["id"] {
        id: String,
        proposing_unit: String,
        addressed_unit: String,
        award_type: String,
        campaign: String,
        reason: String,
        proposed_on: String,
        status: String,
        award_id: String,
        doc: i64,
    }
}

impl ProposalRow {
    pub(crate) fn new(p: &Proposal, doc: i64) -> ProposalRow {
        ProposalRow {
            id: p.id.as_str().into(),
            proposing_unit: p.proposing_unit.as_str().into(),
            addressed_unit: p.addressed_unit.as_str().into(),
            award_type: p.award_type.as_str().into(),
            campaign: p.campaign.as_ref().map(|c| c.as_str()).unwrap_or("").into(),
            reason: p.reason.as_str().into(),
            proposed_on: p.proposed_on.to_string(),
            status: p.status.as_str().into(),
            award_id: p.award.as_ref().map(|a| a.as_str()).unwrap_or("").into(),
            doc,
        }
    }
}

row! {
    AwardRow in "awards", key ["id"] {
        id: String,
        issuing_unit: String,
        decision_no: String,
        decided_on: String,
        effective_on: String,
        year: i64,
        award_type: String,
        level: String,
        campaign: String,
        proposal: String,
        reason: String,
        revoked: i64,
        revoked_on: String,
        revoke_reason: String,
        doc: i64,
    }
}

impl AwardRow {
    pub(crate) fn new(a: &Award, doc: i64) -> AwardRow {
        AwardRow {
            id: a.id.as_str().into(),
            issuing_unit: a.issuing_unit.as_str().into(),
            decision_no: a.decision_no.as_str().into(),
            decided_on: a.decided_on.to_string(),
            effective_on: a.effective_on.to_string(),
            year: i64::from(a.decided_on.year()),
            award_type: a.award_type.as_str().into(),
            level: a.level.as_str().into(),
            campaign: a.campaign.as_ref().map(|c| c.as_str()).unwrap_or("").into(),
            proposal: a.proposal.as_ref().map(|p| p.as_str()).unwrap_or("").into(),
            reason: a.reason.as_str().into(),
            revoked: i64::from(a.revoked),
            revoked_on: date(a.revoked_on),
            revoke_reason: a.revoke_reason.as_str().into(),
            doc,
        }
    }
}

row! {
    RecipientRow in "award_recipients", key ["award", "n"] {
        award: String,
        /// The recipient's place in the decision's list.
        n: i64,
        /// Empty for a unit recipient.
        member_id: String,
        unit_id: String,
    }
}

impl RecipientRow {
    pub(crate) fn new(a: &Award, n: usize, r: &Recipient) -> RecipientRow {
        let member = match r {
            Recipient::Member { member, .. } => member.as_str(),
            Recipient::Unit(_) => "",
        };
        RecipientRow {
            award: a.id.as_str().into(),
            n: n as i64,
            member_id: member.into(),
            unit_id: r.unit().as_str().into(),
        }
    }
}

row! {
    ConflictRow in "conflicts", key ["doc", "obj", "field"] {
        doc: i64,
        doc_id: String,
        obj: String,
        field: String,
        path: String,
        record: String,
        detected_at: i64,
    }
}

row! {
    DecisionRow in "decisions", key ["id"] {
        id: String,
        number: String,
        title: String,
        issuing_unit: String,
        decided_on: String,
        effective_on: String,
        applied_at: String,
        applied_by: String,
        steps: i64,
        units_created: i64,
        units_moved: i64,
        units_closed: i64,
        members_transferred: i64,
        members_ceased: i64,
        doc: i64,
    }
}

impl DecisionRow {
    pub(crate) fn new(d: &Recorded, doc: i64) -> DecisionRow {
        let n = |v: u64| v as i64;
        let o = &d.outcome;
        DecisionRow {
            id: d.id.as_str().into(),
            number: d.plan.number.clone(),
            title: d.plan.title.clone(),
            issuing_unit: d.plan.issuing_unit.clone(),
            decided_on: d.plan.decided_on.clone(),
            effective_on: d.plan.effective_on.clone(),
            applied_at: d.applied_at.clone(),
            applied_by: d.applied_by.clone(),
            steps: d.plan.steps.len() as i64,
            units_created: n(o.units_created),
            units_moved: n(o.units_moved),
            units_closed: n(o.units_closed),
            members_transferred: n(o.members_transferred),
            members_ceased: n(o.members_ceased),
            doc,
        }
    }
}

row! {
    SealRow in "decision_seals", key ["decision", "doc_id", "head"] {
        decision: String,
        doc_id: String,
        /// A change hash, hex.
        head: String,
    }
}

row! {
    NodeRow in "nodes", key ["id"] {
        id: String,
        unit: String,
        upstream: String,
        address: String,
        status: String,
        retired_at: String,
        doc: i64,
    }
}

impl NodeRow {
    pub(crate) fn new(n: &NodeInfo, doc: i64) -> NodeRow {
        NodeRow {
            id: n.id.clone(),
            unit: n.unit.as_str().into(),
            upstream: n.upstream.clone(),
            address: n.address.clone(),
            status: n.status.as_str().into(),
            retired_at: n.retired_at.clone(),
            doc,
        }
    }
}

row! {
    HostSealRow in "host_seals", key ["node", "decision", "doc_id", "head"] {
        node: String,
        decision: String,
        doc_id: String,
        /// A change hash, hex.
        head: String,
        sealed_at: String,
    }
}
