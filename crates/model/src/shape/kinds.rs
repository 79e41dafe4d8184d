//! The shape of each document kind: every path hopluu writes, and what
//! each holds. The tables follow the writers (`Record`s and `put_*` calls
//! in the kind's module) and the limits the node's own writes apply
//! (`clean_text`'s lengths, dates, ids, enums, money).

use super::{Int, Shape, Str};
use crate::doc::DocId;

use Shape::{Bool, Keyed, List, Map};

const fn s(check: Str) -> Shape {
    Shape::Str(check)
}

/// `v`, `owner` and `addressed`: every document kind's routing fields.
const V: (&str, Shape) = ("v", Shape::Int(Int::Any));
const OWNER: (&str, Shape) = ("owner", s(Str::Unit));
const ADDRESSED: (&str, Shape) = ("addressed", List(&s(Str::Unit)));

const EVENT: Shape = Map(&[
    ("kind", s(Str::Text(100))),
    ("reason", s(Str::Text(2000))),
    ("decision", s(Str::Text(200))),
    ("on", s(Str::Date)),
    ("other_unit", s(Str::UnitOpt)),
]);

const DEIDENTIFIED: Shape = Map(&[
    ("at", s(Str::Text(200))),
    ("by", s(Str::Text(200))),
    ("operator", s(Str::Text(200))),
    ("reason", s(Str::Text(500))),
    ("reference", s(Str::Text(100))),
]);

const MEMBER: Shape = Map(&[
    ("full_name", s(Str::Text(100))),
    ("position", s(Str::Text(100))),
    ("status_reason", s(Str::Text(500))),
    ("birth_date", s(Str::DateOpt)),
    ("status_on", s(Str::DateOpt)),
    ("joined_on", s(Str::Date)),
    ("gender", s(Str::Gender)),
    ("status", s(Str::MemberStatus)),
    ("card_number", s(Str::Card)),
    ("history", List(&EVENT)),
    ("deidentified", DEIDENTIFIED),
]);

const PRIVATE_MEMBER: Shape = Map(&[
    ("national_id", s(Str::NationalIdOpt)),
    ("ethnicity", s(Str::Text(50))),
    ("religion", s(Str::Text(50))),
]);

const ROSTER: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("unit", s(Str::Unit)),
    ("bucket", Shape::Int(Int::NonNegative)),
    ("members", Keyed(Str::Member, &MEMBER)),
]);

const ROSTER_PRIVATE: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("unit", s(Str::Unit)),
    ("bucket", Shape::Int(Int::NonNegative)),
    ("members", Keyed(Str::Member, &PRIVATE_MEMBER)),
]);

const UNIT: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Unit)),
    ("name", s(Str::Text(200))),
    ("kind", s(Str::Kind)),
    ("parent", s(Str::UnitOpt)),
    ("status", s(Str::OneOf(&["active", "merged", "closed"]))),
    ("successors", List(&s(Str::Unit))),
    ("closed_on", s(Str::DateOpt)),
    ("close_reason", s(Str::Text(500))),
    ("close_decision_no", s(Str::Text(64))),
    (
        "names",
        List(&Map(&[
            ("name", s(Str::Text(200))),
            ("effective_on", s(Str::Date)),
            ("decision_no", s(Str::Text(64))),
        ])),
    ),
    (
        "parents",
        List(&Map(&[
            ("parent", s(Str::UnitOpt)),
            ("decided_on", s(Str::Date)),
            ("effective_on", s(Str::Date)),
            ("decision_no", s(Str::Text(64))),
        ])),
    ),
]);

const CAMPAIGN: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Campaign)),
    ("title", s(Str::Text(300))),
    ("theme", s(Str::Text(2000))),
    ("starts_on", s(Str::Date)),
    ("ends_on", s(Str::Date)),
    ("scope", s(Str::Unit)),
    ("status", s(Str::OneOf(&["active", "closed"]))),
    ("closed_on", s(Str::DateOpt)),
    (
        "plans",
        Keyed(
            Str::Unit,
            &Map(&[
                ("initiative_quota", Shape::Int(Int::NonNegative)),
                ("works_quota", Shape::Int(Int::NonNegative)),
            ]),
        ),
    ),
]);

const INITIATIVE: Shape = Map(&[
    ("title", s(Str::Text(500))),
    ("authors", List(&s(Str::Text(100)))),
    (
        "status",
        s(Str::OneOf(&[
            "submitted",
            "under_review",
            "valid",
            "rejected",
            "recognised",
        ])),
    ),
    ("recognised_level", s(Str::Text(100))),
    ("value_vnd", Shape::Int(Int::NonNegative)),
    ("submitted_on", s(Str::Date)),
    ("note", s(Str::Text(1000))),
]);

const WORK: Shape = Map(&[
    ("name", s(Str::Text(500))),
    ("value_vnd", Shape::Int(Int::NonNegative)),
    ("plaque", Bool),
    ("completed_on", s(Str::DateOpt)),
]);

const EMULATION: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("unit", s(Str::Unit)),
    ("campaign", s(Str::Campaign)),
    ("registered", Bool),
    ("registered_on", s(Str::DateOpt)),
    ("pledge", s(Str::Text(2000))),
    ("initiatives", Keyed(Str::Initiative, &INITIATIVE)),
    ("works", Keyed(Str::Work, &WORK)),
]);

const RECIPIENT: Shape = Map(&[("member", s(Str::MemberOpt)), ("unit", s(Str::Unit))]);

const PROPOSAL: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Proposal)),
    ("proposing_unit", s(Str::Unit)),
    ("addressed_unit", s(Str::Unit)),
    ("award_type", s(Str::Kind)),
    ("campaign", s(Str::CampaignOpt)),
    ("candidates", List(&RECIPIENT)),
    ("reason", s(Str::Text(2000))),
    ("proposed_on", s(Str::Date)),
    ("status", s(Str::OneOf(&["pending", "decided", "declined"]))),
    ("award_id", s(Str::AwardOpt)),
]);

const AWARD: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Award)),
    ("issuing_unit", s(Str::Unit)),
    ("decision_no", s(Str::Text(64))),
    ("decided_on", s(Str::Date)),
    ("effective_on", s(Str::Date)),
    ("award_type", s(Str::Kind)),
    ("level", s(Str::Kind)),
    ("recipients", List(&RECIPIENT)),
    ("campaign", s(Str::CampaignOpt)),
    ("proposal", s(Str::ProposalOpt)),
    ("reason", s(Str::Text(2000))),
    ("revoked", Bool),
    ("revoked_on", s(Str::DateOpt)),
    ("revoke_reason", s(Str::Text(2000))),
]);

const STEP: Shape = Map(&[
    (
        "kind",
        s(Str::OneOf(&[
            "create", "rename", "move", "merge", "split", "close", "cease", "seal",
        ])),
    ),
    ("unit", s(Str::UnitOpt)),
    ("name", s(Str::Text(200))),
    ("unit_kind", s(Str::KindOpt)),
    ("to", s(Str::UnitOpt)),
    ("units", List(&s(Str::Unit))),
    ("members", List(&s(Str::Member))),
    ("successors", List(&s(Str::Unit))),
    ("parts", List(&Map(&[("children", List(&s(Str::Unit)))]))),
    ("reason", s(Str::Text(500))),
    ("on", s(Str::DateOpt)),
    ("node", s(Str::NodeOpt)),
]);

const SEAL: Shape = Map(&[("doc", s(Str::Doc)), ("heads", List(&s(Str::Hash)))]);

const DECISION: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Decision)),
    ("number", s(Str::Text(64))),
    ("title", s(Str::Text(300))),
    ("decided_on", s(Str::Date)),
    ("effective_on", s(Str::Date)),
    ("issuing_unit", s(Str::Unit)),
    ("applied_at", s(Str::Text(100))),
    ("applied_by", s(Str::Text(200))),
    ("steps", List(&STEP)),
    (
        "outcome",
        Map(&[
            ("units_created", Shape::Int(Int::NonNegative)),
            ("units_renamed", Shape::Int(Int::NonNegative)),
            ("units_moved", Shape::Int(Int::NonNegative)),
            ("units_closed", Shape::Int(Int::NonNegative)),
            ("members_transferred", Shape::Int(Int::NonNegative)),
            ("members_ceased", Shape::Int(Int::NonNegative)),
        ]),
    ),
    ("seals", List(&SEAL)),
    (
        "given_up",
        List(&Map(&[
            ("node", s(Str::Node)),
            ("reason", s(Str::Text(500))),
            ("units", Shape::Int(Int::NonNegative)),
            ("members", Shape::Int(Int::NonNegative)),
            ("personal_data_here", Bool),
            ("held_discarded", Shape::Int(Int::NonNegative)),
        ])),
    ),
]);

const NODE: Shape = Map(&[
    V,
    OWNER,
    ADDRESSED,
    ("id", s(Str::Node)),
    ("unit", s(Str::Unit)),
    ("path", List(&s(Str::Unit))),
    ("upstream", s(Str::Text(500))),
    ("address", s(Str::Text(500))),
    ("status", s(Str::OneOf(&["active", "retired"]))),
    ("retired_at", s(Str::Text(100))),
    (
        "seals",
        Keyed(
            Str::Decision,
            &Map(&[
                ("at", s(Str::Text(100))),
                ("docs", Keyed(Str::Doc, &List(&s(Str::Hash)))),
            ]),
        ),
    ),
]);

/// The shape of document `id`'s kind.
pub(super) fn of(id: &DocId) -> &'static Shape {
    match id {
        DocId::Roster { .. } => &ROSTER,
        DocId::RosterPrivate { .. } => &ROSTER_PRIVATE,
        DocId::Unit(_) => &UNIT,
        DocId::Campaign(_) => &CAMPAIGN,
        DocId::Emulation { .. } => &EMULATION,
        DocId::Proposal(_) => &PROPOSAL,
        DocId::Award(_) => &AWARD,
        DocId::Decision(_) => &DECISION,
        DocId::Node(_) => &NODE,
    }
}
