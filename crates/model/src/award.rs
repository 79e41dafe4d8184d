//! Awards (khen thưởng): a catalogue of award types (as data), proposals
//! sent up to the deciding unit, and award decisions sent down to the
//! recipients' units.
//!
//! ```text
//! proposal/{id}: { v, owner, addressed: [addressed_unit], id, proposing_unit,
//!                  addressed_unit, award_type, campaign, candidates: [ {member, unit} ],
//!                  reason, proposed_on, status, award_id }
//! award/{id}:    { v, owner, addressed: [recipient units], id, issuing_unit, decision_no,
//!                  decided_on, effective_on, award_type, level, recipients: [ {member, unit} ],
//!                  campaign, proposal, reason, revoked, revoked_on, revoke_reason }
//! ```

use automerge::Automerge;
use serde::{Deserialize, Serialize};

use crate::am::{self, Obj, Record};
use crate::date::Date;
use crate::doc::{Author, DocId, SCHEMA_VERSION, edit};
use crate::error::ModelError;
use crate::ids::{AwardId, CampaignId, KindId, MemberId, ProposalId, UnitId, clean_text};

/// Who an award type goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    Person,
    Collective,
    Both,
}

impl RecipientKind {
    pub fn accepts(self, r: &Recipient) -> bool {
        matches!(
            (self, r),
            (RecipientKind::Both, _)
                | (RecipientKind::Person, Recipient::Member { .. })
                | (RecipientKind::Collective, Recipient::Unit(_))
        )
    }
}

/// An award type of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwardType {
    pub id: KindId,
    pub name: String,
    pub recipient: RecipientKind,
    /// The unit kinds whose decisions may grant it.
    pub granting_kinds: Vec<KindId>,
}

/// The award types a federation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardCatalogue {
    types: Vec<AwardType>,
}

impl AwardCatalogue {
    pub fn new(types: Vec<AwardType>) -> Self {
        AwardCatalogue { types }
    }
    pub fn all(&self) -> &[AwardType] {
        &self.types
    }
    pub fn get(&self, id: &str) -> Option<&AwardType> {
        self.types.iter().find(|t| t.id.as_str() == id)
    }
    pub fn parse(&self, field: &str, id: &str) -> Result<&AwardType, ModelError> {
        self.get(id.trim()).ok_or_else(|| {
            ModelError::invalid(
                field,
                format!("{id:?} is not an award type in the catalogue"),
            )
        })
    }
}

impl Default for AwardCatalogue {
    /// The awards the union system grants or records (Emulation and Reward
    /// Law 2022, the federation's emulation regulations).
    fn default() -> Self {
        let kinds = |ks: &[&str]| {
            ks.iter()
                .map(|k| KindId::parse("kind", k).expect("built-in kind ids are valid"))
                .collect::<Vec<_>>()
        };
        let central = kinds(&["central"]);
        let provincial = kinds(&["provincial", "sector", "state-group"]);
        let upper = kinds(&[
            "district",
            "commune",
            "local-sector",
            "industrial-park",
            "direct-upper",
        ]);
        let mut upper_and_grassroots = upper.clone();
        upper_and_grassroots.extend(kinds(&["grassroots"]));
        let mut provincial_and_central = provincial.clone();
        provincial_and_central.extend(central.clone());
        let t = |id: &str, name: &str, recipient, granting_kinds: &Vec<KindId>| AwardType {
            id: KindId::parse("award_type", id).expect("built-in award ids are valid"),
            name: name.to_owned(),
            recipient,
            granting_kinds: granting_kinds.clone(),
        };
        use RecipientKind::*;
        AwardCatalogue::new(vec![
            t(
                "huan-chuong-lao-dong",
                "Huân chương Lao động (Chủ tịch nước quyết định, Tổng Liên đoàn ghi nhận)",
                Both,
                &central,
            ),
            t(
                "giai-thuong-nguyen-duc-canh",
                "Giải thưởng Nguyễn Đức Cảnh",
                Person,
                &central,
            ),
            t(
                "bang-lao-dong-sang-tao",
                "Bằng Lao động sáng tạo",
                Person,
                &central,
            ),
            t(
                "co-thi-dua-tld",
                "Cờ thi đua của Tổng Liên đoàn Lao động Việt Nam",
                Collective,
                &central,
            ),
            t(
                "bang-khen-tld",
                "Bằng khen của Tổng Liên đoàn Lao động Việt Nam",
                Both,
                &central,
            ),
            t(
                "co-thi-dua-cap-tinh",
                "Cờ thi đua của LĐLĐ tỉnh, thành phố, công đoàn ngành trung ương",
                Collective,
                &provincial,
            ),
            t(
                "bang-khen-cap-tinh",
                "Bằng khen của LĐLĐ tỉnh, thành phố, công đoàn ngành trung ương",
                Both,
                &provincial,
            ),
            t(
                "chien-si-thi-dua",
                "Chiến sĩ thi đua",
                Person,
                &provincial_and_central,
            ),
            t("giay-khen", "Giấy khen", Both, &upper_and_grassroots),
            t(
                "lao-dong-tien-tien",
                "Lao động tiên tiến",
                Person,
                &upper_and_grassroots,
            ),
        ])
    }
}

/// Who receives an award: a member (with the unit whose roster holds them)
/// or a collective (a unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Member { member: MemberId, unit: UnitId },
    Unit(UnitId),
}

impl Recipient {
    /// The unit the recipient belongs to (scope: the award flows there).
    pub fn unit(&self) -> &UnitId {
        match self {
            Recipient::Member { unit, .. } | Recipient::Unit(unit) => unit,
        }
    }
    fn record(&self) -> Record {
        match self {
            Recipient::Member { member, unit } => {
                Record::new().str("member", member).str("unit", unit)
            }
            Recipient::Unit(u) => Record::new().str("member", "").str("unit", u),
        }
    }
    fn read(o: &Obj<'_, Automerge>) -> Result<Recipient, ModelError> {
        let unit = UnitId::parse("unit", &o.str("unit"))?;
        Ok(match o.str("member").as_str() {
            "" => Recipient::Unit(unit),
            m => Recipient::Member {
                member: MemberId::parse("member", m)?,
                unit,
            },
        })
    }
}

fn addressed(recipients: &[Recipient]) -> Vec<String> {
    let mut units: Vec<String> = recipients.iter().map(|r| r.unit().to_string()).collect();
    units.sort();
    units.dedup();
    units
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    Pending,
    Decided,
    Declined,
}

impl ProposalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Decided => "decided",
            ProposalStatus::Declined => "declined",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: ProposalId,
    pub proposing_unit: UnitId,
    pub addressed_unit: UnitId,
    pub award_type: KindId,
    pub campaign: Option<CampaignId>,
    pub candidates: Vec<Recipient>,
    pub reason: String,
    pub proposed_on: Date,
    pub status: ProposalStatus,
    pub award: Option<AwardId>,
}

/// Checks the candidates or recipients against the award type.
pub fn check_recipients(
    field: &str,
    kind: &AwardType,
    recipients: &[Recipient],
) -> Result<(), ModelError> {
    if recipients.is_empty() {
        return Err(ModelError::invalid(field, "at least one is needed"));
    }
    if recipients.len() > 10_000 {
        return Err(ModelError::invalid(field, "at most 10000 per decision"));
    }
    if let Some(r) = recipients.iter().find(|r| !kind.recipient.accepts(r)) {
        let what = match r {
            Recipient::Member { .. } => "a person",
            Recipient::Unit(_) => "a collective",
        };
        return Err(ModelError::invalid(
            field,
            format!("{} is not granted to {what}", kind.name),
        ));
    }
    Ok(())
}

pub struct NewProposal<'a> {
    pub id: ProposalId,
    pub proposing_unit: UnitId,
    pub addressed_unit: UnitId,
    pub award_type: &'a AwardType,
    pub campaign: Option<CampaignId>,
    pub candidates: Vec<Recipient>,
    pub reason: String,
    pub proposed_on: Date,
}

pub fn propose(
    doc: &mut Automerge,
    author: &Author,
    p: &NewProposal<'_>,
) -> Result<Proposal, ModelError> {
    if !Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::AlreadyExists {
            what: "proposal",
            id: p.id.to_string(),
        });
    }
    check_recipients("candidates", p.award_type, &p.candidates)?;
    let reason = clean_text("reason", &p.reason, 2000, true)?;
    edit(doc, author, "propose award", |tx| {
        Record::new()
            .int("v", SCHEMA_VERSION)
            .str("owner", &p.proposing_unit)
            .strings("addressed", &[p.addressed_unit.to_string()])
            .str("id", &p.id)
            .str("proposing_unit", &p.proposing_unit)
            .str("addressed_unit", &p.addressed_unit)
            .str("award_type", &p.award_type.id)
            .str(
                "campaign",
                p.campaign.as_ref().map(CampaignId::as_str).unwrap_or(""),
            )
            .records(
                "candidates",
                p.candidates.iter().map(Recipient::record).collect(),
            )
            .str("reason", &reason)
            .str("proposed_on", p.proposed_on.to_string())
            .str("status", ProposalStatus::Pending.as_str())
            .str("award_id", "")
            .init_root(tx)
    })?;
    read_proposal(&DocId::Proposal(p.id.clone()), doc)
}

pub fn read_proposal(id: &DocId, doc: &Automerge) -> Result<Proposal, ModelError> {
    let root = Obj::root(doc);
    let bad = |e: ModelError| ModelError::document(id, e.to_string());
    Ok(Proposal {
        id: ProposalId::parse("id", &root.str("id")).map_err(bad)?,
        proposing_unit: UnitId::parse("proposing_unit", &root.str("proposing_unit"))
            .map_err(bad)?,
        addressed_unit: UnitId::parse("addressed_unit", &root.str("addressed_unit"))
            .map_err(bad)?,
        award_type: KindId::parse("award_type", &root.str("award_type")).map_err(bad)?,
        campaign: opt_campaign(&root.str("campaign")).map_err(bad)?,
        candidates: root
            .list("candidates")
            .iter()
            .map(Recipient::read)
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        reason: root.str("reason"),
        proposed_on: Date::parse("proposed_on", &root.str("proposed_on")).map_err(bad)?,
        status: match root.str("status").as_str() {
            "decided" => ProposalStatus::Decided,
            "declined" => ProposalStatus::Declined,
            _ => ProposalStatus::Pending,
        },
        award: match root.str("award_id").as_str() {
            "" => None,
            a => Some(AwardId::parse("award_id", a).map_err(bad)?),
        },
    })
}

/// Marks a proposal decided by an award.
pub fn mark_decided(
    doc: &mut Automerge,
    author: &Author,
    award: &AwardId,
) -> Result<(), ModelError> {
    edit(doc, author, "proposal decided", |tx| {
        am::put_str(
            tx,
            &automerge::ROOT,
            "status",
            ProposalStatus::Decided.as_str(),
        )?;
        am::put_str(tx, &automerge::ROOT, "award_id", award.as_str())
    })
}

fn opt_campaign(s: &str) -> Result<Option<CampaignId>, ModelError> {
    if s.is_empty() {
        Ok(None)
    } else {
        CampaignId::parse("campaign", s).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub id: AwardId,
    pub issuing_unit: UnitId,
    pub decision_no: String,
    pub decided_on: Date,
    pub effective_on: Date,
    pub award_type: KindId,
    /// The issuing unit's kind when it decided (central, provincial, …).
    pub level: KindId,
    pub recipients: Vec<Recipient>,
    pub campaign: Option<CampaignId>,
    pub proposal: Option<ProposalId>,
    pub reason: String,
    pub revoked: bool,
    pub revoked_on: Option<Date>,
    pub revoke_reason: String,
}

pub struct NewAward<'a> {
    pub id: AwardId,
    pub issuing_unit: UnitId,
    pub issuing_kind: KindId,
    pub decision_no: String,
    pub decided_on: Date,
    pub effective_on: Date,
    pub award_type: &'a AwardType,
    pub recipients: Vec<Recipient>,
    pub campaign: Option<CampaignId>,
    pub proposal: Option<ProposalId>,
    pub reason: String,
}

/// Checks that the issuing unit's kind may grant the award type.
pub fn check_grantable(kind: &AwardType, issuing_kind: &KindId) -> Result<(), ModelError> {
    if kind.granting_kinds.contains(issuing_kind) {
        Ok(())
    } else {
        Err(ModelError::invalid(
            "award_type",
            format!(
                "{} cannot be granted by a unit of kind {issuing_kind} (granted by: {})",
                kind.name,
                kind.granting_kinds
                    .iter()
                    .map(KindId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

pub fn decide(doc: &mut Automerge, author: &Author, a: &NewAward<'_>) -> Result<Award, ModelError> {
    if !Obj::root(&*doc).str("id").is_empty() {
        return Err(ModelError::AlreadyExists {
            what: "award",
            id: a.id.to_string(),
        });
    }
    check_grantable(a.award_type, &a.issuing_kind)?;
    check_recipients("recipients", a.award_type, &a.recipients)?;
    let decision_no = clean_text("decision_no", &a.decision_no, 64, true)?;
    let reason = clean_text("reason", &a.reason, 2000, false)?;
    edit(doc, author, "decide award", |tx| {
        Record::new()
            .int("v", SCHEMA_VERSION)
            .str("owner", &a.issuing_unit)
            .strings("addressed", &addressed(&a.recipients))
            .str("id", &a.id)
            .str("issuing_unit", &a.issuing_unit)
            .str("decision_no", &decision_no)
            .str("decided_on", a.decided_on.to_string())
            .str("effective_on", a.effective_on.to_string())
            .str("award_type", &a.award_type.id)
            .str("level", &a.issuing_kind)
            .records(
                "recipients",
                a.recipients.iter().map(Recipient::record).collect(),
            )
            .str(
                "campaign",
                a.campaign.as_ref().map(CampaignId::as_str).unwrap_or(""),
            )
            .str(
                "proposal",
                a.proposal.as_ref().map(ProposalId::as_str).unwrap_or(""),
            )
            .str("reason", &reason)
            .bool("revoked", false)
            .str("revoked_on", "")
            .str("revoke_reason", "")
            .init_root(tx)
    })?;
    read_award(&DocId::Award(a.id.clone()), doc)
}

pub fn revoke(
    doc: &mut Automerge,
    author: &Author,
    on: Date,
    reason: &str,
) -> Result<Award, ModelError> {
    let id = DocId::Award(AwardId::parse("award_id", &Obj::root(&*doc).str("id"))?);
    let award = read_award(&id, doc)?;
    if award.revoked {
        return Err(ModelError::invalid(
            "award_id",
            format!("award {} is already revoked", award.id),
        ));
    }
    if on < award.decided_on {
        return Err(ModelError::invalid(
            "revoked_on",
            format!("{on} is before the decision ({})", award.decided_on),
        ));
    }
    let reason = clean_text("reason", reason, 2000, true)?;
    edit(doc, author, "revoke award", |tx| {
        am::put_bool(tx, &automerge::ROOT, "revoked", true)?;
        am::put_str(tx, &automerge::ROOT, "revoked_on", &on.to_string())?;
        am::put_str(tx, &automerge::ROOT, "revoke_reason", &reason)
    })?;
    read_award(&id, doc)
}

pub fn read_award(id: &DocId, doc: &Automerge) -> Result<Award, ModelError> {
    let root = Obj::root(doc);
    let bad = |e: ModelError| ModelError::document(id, e.to_string());
    Ok(Award {
        id: AwardId::parse("id", &root.str("id")).map_err(bad)?,
        issuing_unit: UnitId::parse("issuing_unit", &root.str("issuing_unit")).map_err(bad)?,
        decision_no: root.str("decision_no"),
        decided_on: Date::parse("decided_on", &root.str("decided_on")).map_err(bad)?,
        effective_on: Date::parse("effective_on", &root.str("effective_on")).map_err(bad)?,
        award_type: KindId::parse("award_type", &root.str("award_type")).map_err(bad)?,
        level: KindId::parse("level", &root.str("level")).map_err(bad)?,
        recipients: root
            .list("recipients")
            .iter()
            .map(Recipient::read)
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        campaign: opt_campaign(&root.str("campaign")).map_err(bad)?,
        proposal: match root.str("proposal").as_str() {
            "" => None,
            p => Some(ProposalId::parse("proposal", p).map_err(bad)?),
        },
        reason: root.str("reason"),
        revoked: root.bool("revoked"),
        revoked_on: Date::parse_opt("revoked_on", &root.str("revoked_on")).map_err(bad)?,
        revoke_reason: root.str("revoke_reason"),
    })
}
